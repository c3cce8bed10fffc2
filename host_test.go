package pleooauth

import (
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestPlainASCIIHostMatchesIDNA: for every host plainASCIIHost lets past
// the IDNA mapping, the mapping gives its lowercase form, without error.
// The hosts are drawn, with a fixed seed, from the characters that matter:
// the allowed ones, their edges, and pieces of A-labels.
func TestPlainASCIIHostMatchesIDNA(t *testing.T) {
	t.Parallel()
	pieces := []string{"a", "Z", "0", "9", "-", "_", ".", "x", "X", "n", "N", "xn--", "XN--", "xn-", "é", "%", "ß", "\u00ad", "。", " ", "1"}
	rng := rand.New(rand.NewPCG(1, 2))
	passed := 0
	for range 200_000 {
		var b strings.Builder
		for range 1 + rng.IntN(12) {
			b.WriteString(pieces[rng.IntN(len(pieces))])
		}
		host := b.String()
		if !plainASCIIHost(host) {
			continue
		}
		passed++
		mapped, err := browserIDNA.ToASCII(host)
		require.NoError(t, err, "%q", host)
		require.Equal(t, strings.ToLower(host), strings.ToLower(mapped), "%q", host)
	}
	assert.Greater(t, passed, 10_000, "enough hosts took the short way")
	for _, host := range []string{"", ".", "a..b", ".a", "a.", "xn--bcher-kva.example", "a.XN--a.b", "bücher.example", "a b", "a%2e"} {
		assert.False(t, plainASCIIHost(host), "%q", host)
	}
	for _, host := range []string{"client.example", "Client.Example", "a-.b", "_x.y", "127.0.0.1", "xn-a.example", "axn--b.example"} {
		assert.True(t, plainASCIIHost(host), "%q", host)
	}
}

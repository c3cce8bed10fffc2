package connect

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/oauth2"
)

// testKey returns a key of n bytes that no other seed gives and that is
// not one byte repeated.
func testKey(n int, seed byte) []byte {
	k := make([]byte, n)
	for i := range k {
		k[i] = seed + byte(i*7)
	}
	return k
}

func testTokens() *oauth2.Token {
	return &oauth2.Token{AccessToken: "access-1", RefreshToken: "refresh-1", TokenType: "Bearer", Expiry: time.Unix(1700000000, 42)}
}

// TestKeyringOpensWithEveryKeyWhoseIDMatches: two keys whose 4-byte IDs
// collide (one in 2^32 for random keys, so the keyring is built by hand):
// a value sealed with the second still opens, AES-GCM's authentication
// telling which key is the right one.
func TestKeyringOpensWithEveryKeyWhoseIDMatches(t *testing.T) {
	t.Parallel()
	sk := func(key []byte) sealKey {
		t.Helper()
		block, err := aes.NewCipher(key)
		require.NoError(t, err)
		aead, err := cipher.NewGCM(block)
		require.NoError(t, err)
		return sealKey{id: [4]byte{1, 2, 3, 4}, aead: aead}
	}
	first, second := sk(testKey(32, 1)), sk(testKey(32, 2))
	kr := &keyring{keys: []sealKey{first, second}}

	for name, sealer := range map[string]*keyring{"first": {keys: []sealKey{first}}, "second": {keys: []sealKey{second}}} {
		sealed := sealer.seal("urn:pleo:company:1", testTokens())
		got, err := kr.open("urn:pleo:company:1", sealed)
		require.NoError(t, err, "sealed with the %s key", name)
		assert.Equal(t, "access-1", got.AccessToken)
		assert.Equal(t, "refresh-1", got.RefreshToken)
	}

	// A value no key with that ID opens is still refused.
	third := sk(testKey(32, 3))
	sealed := (&keyring{keys: []sealKey{third}}).seal("urn:pleo:company:1", testTokens())
	_, err := kr.open("urn:pleo:company:1", sealed)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "do not open")
}

// TestKeyringRefusesDegenerateAndRepeatedKeys: an all-zero key, a key of
// one repeated byte and a key given twice are refused, the error naming
// the key by its position and never showing it.
func TestKeyringRefusesDegenerateAndRepeatedKeys(t *testing.T) {
	t.Parallel()
	good, other := testKey(32, 1), testKey(16, 9)
	tests := []struct {
		name string
		keys [][]byte
		bad  []byte // the refused key, whose bytes the error must not show
		want string
	}{
		{"all zero", [][]byte{make([]byte, 32)}, make([]byte, 32), "connect: key 1 is all zero bytes"},
		{"all zero second", [][]byte{good, make([]byte, 16)}, make([]byte, 16), "connect: key 2 is all zero bytes"},
		{"constant", [][]byte{good, other, bytes.Repeat([]byte{0xa7}, 24)}, bytes.Repeat([]byte{0xa7}, 24), "connect: key 3 is one byte repeated"},
		{"duplicate", [][]byte{good, other, bytes.Clone(good)}, good, "connect: key 3 repeats key 1"},
		{"duplicate adjacent", [][]byte{other, good, bytes.Clone(good)}, good, "connect: key 3 repeats key 2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := newKeyring(tt.keys)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.want)
			msg := fmt.Sprintf("%v %+v %#v", err, err, err)
			for _, enc := range []string{
				hex.EncodeToString(tt.bad), fmt.Sprintf("%X", tt.bad), fmt.Sprint(tt.bad), fmt.Sprintf("%#v", tt.bad),
				base64.StdEncoding.EncodeToString(tt.bad), base64.RawURLEncoding.EncodeToString(tt.bad), string(tt.bad),
			} {
				assert.NotContains(t, msg, enc)
			}
		})
	}
}

// TestKeyringSealsWithTheFirstAndOpensWithEvery: 16, 24 and 32-byte keys;
// the first key seals, every key opens, a missing key is named by its ID,
// and a value sealed for one connection does not open for another.
func TestKeyringSealsWithTheFirstAndOpensWithEvery(t *testing.T) {
	t.Parallel()
	k16, k24, k32 := testKey(16, 1), testKey(24, 2), testKey(32, 3)
	for _, keys := range [][][]byte{{k16}, {k24}, {k32}, {k32, k24, k16}} {
		kr, err := newKeyring(keys)
		require.NoError(t, err, "keys of %d bytes first", len(keys[0]))
		sealed := kr.seal("c1", testTokens())
		got, err := kr.open("c1", sealed)
		require.NoError(t, err)
		assert.Equal(t, testTokens().AccessToken, got.AccessToken)
		assert.True(t, testTokens().Expiry.Equal(got.Expiry))
		first, err := newKeyring(keys[:1])
		require.NoError(t, err)
		_, err = first.open("c1", sealed)
		require.NoError(t, err, "the first key sealed it")
		_, err = kr.open("c2", sealed)
		assert.ErrorContains(t, err, "do not open", "sealed for another connection")
	}

	// Every key opens: a value sealed with an old key opens after a new
	// key is put first, and re-sealing uses the new key.
	old, err := newKeyring([][]byte{k16})
	require.NoError(t, err)
	sealed := old.seal("c1", testTokens())
	rotated, err := newKeyring([][]byte{k32, k16})
	require.NoError(t, err)
	_, err = rotated.open("c1", sealed)
	require.NoError(t, err)
	onlyNew, err := newKeyring([][]byte{k32})
	require.NoError(t, err)
	_, err = onlyNew.open("c1", sealed)
	assert.ErrorContains(t, err, "add it to WithKeys")
	_, err = onlyNew.open("c1", rotated.seal("c1", testTokens()))
	assert.NoError(t, err)

	// Sizes other than AES's are refused.
	for _, n := range []int{0, 15, 31, 33} {
		_, err := newKeyring([][]byte{k32, testKey(n, 5)})
		assert.ErrorContains(t, err, "key 2 must be 16, 24 or 32 bytes")
	}
	_, err = newKeyring(nil)
	assert.ErrorContains(t, err, "WithKeys")
}

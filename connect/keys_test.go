package connect_test

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/partnerkit/pleooauth"
	"github.com/partnerkit/pleooauth/connect"
	"github.com/partnerkit/pleooauth/pleooauthtest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/oauth2"
)

func b64(k []byte) string { return base64.StdEncoding.EncodeToString(k) }

func mustParseKeys(t testing.TB, s string) connect.Keys {
	t.Helper()
	keys, err := connect.ParseKeys(s)
	require.NoError(t, err)
	return keys
}

func TestParseKeysRefuses(t *testing.T) {
	t.Parallel()
	k1, k2 := b64(connect.SeededKey(32, 1)), b64(connect.SeededKey(32, 2))
	// 16 bytes whose last base64 character carries non-zero padding bits.
	loose := strings.TrimSuffix(b64(connect.SeededKey(16, 3)), "==")
	loose = loose[:len(loose)-1] + "B=="
	tests := []struct {
		name, in, want string
	}{
		{"empty", "", "no keys"},
		{"blank", " \t\n", "no keys"},
		{"only a comma", ",", "key 1 is empty"},
		{"empty entry", k1 + ",," + k2, "key 2 is empty"},
		{"trailing comma", k1 + ", ", "key 2 is empty"},
		{"leading comma", "," + k1, "key 1 is empty"},
		{"not base64", k1 + ",not-base64!", "key 2 is not base64"},
		{"hex with a prefix", "0x" + hex.EncodeToString(connect.SeededKey(16, 4)), "key 1 is not base64"},
		{"both alphabets", "+-" + k1[2:], "key 1 is not base64"},
		{"space inside", k1[:20] + " " + k1[20:], "key 1 is not base64"},
		{"newline inside", k1[:20] + "\n" + k1[20:], "key 1 is not base64"},
		{"bad padding", k1 + "=", "key 1 is not base64"},
		{"padding bits set", loose, "key 1 is not base64"},
		{"20 bytes", k1 + "," + b64(connect.SeededKey(20, 5)), "key 2 is 20 bytes; want 16, 24 or 32"},
		{"33 bytes", b64(connect.SeededKey(33, 6)), "key 1 is 33 bytes; want 16, 24 or 32"},
		{"5 bytes", "c2hvcnQ=", "key 1 is 5 bytes; want 16, 24 or 32"},
		{"64 bytes", b64(connect.SeededKey(64, 7)), "key 1 is 64 bytes; want 16, 24 or 32"},
		{"all zero", k1 + "," + b64(make([]byte, 32)), "key 2 is all zero bytes"},
		{"all zero, 16 bytes", b64(make([]byte, 16)), "key 1 is all zero bytes"},
		{"one byte repeated", b64(bytes.Repeat([]byte{0xa5}, 24)), "key 1 is one byte repeated"},
		{"given twice", k1 + "," + k2 + "," + k1, "key 3 repeats key 1"},
		{"given twice, spelled two ways", k1 + "," + base64.RawURLEncoding.EncodeToString(connect.SeededKey(32, 1)), "key 2 repeats key 1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			keys, err := connect.ParseKeys(tt.in)
			require.Error(t, err)
			assert.Equal(t, "connect: ParseKeys: "+tt.want, err.Error())
			assert.Nil(t, keys.Token())
			assert.Nil(t, keys.Flow())
			for entry := range strings.SplitSeq(tt.in, ",") {
				if entry = strings.TrimSpace(entry); len(entry) >= 4 {
					assert.NotContains(t, err.Error(), entry, "an error shows no key")
				}
			}
		})
	}
}

func TestParseKeysAccepts(t *testing.T) {
	t.Parallel()
	for _, n := range []int{16, 24, 32} {
		secret := connect.SeededKey(n, byte(n))
		want := mustParseKeys(t, b64(secret))
		for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
			for _, spelled := range []string{enc.EncodeToString(secret), " \t" + enc.EncodeToString(secret) + "\r\n"} {
				keys, err := connect.ParseKeys(spelled)
				require.NoError(t, err, "%d bytes: %q", n, spelled)
				assert.Equal(t, want.Token(), keys.Token(), "%d bytes: %q", n, spelled)
				assert.Equal(t, want.Flow(), keys.Flow(), "%d bytes: %q", n, spelled)
			}
		}
		require.Len(t, want.Token(), 1)
		assert.Len(t, want.Token()[0], 32, "derived keys are AES-256 whatever the size given")
		assert.Len(t, want.Flow(), 32)
	}
	// A key whose standard and URL spellings differ.
	secret := bytes.Repeat([]byte{0xfb, 0xff, 0xbf}, 8)
	std, url := base64.StdEncoding.EncodeToString(secret), base64.URLEncoding.EncodeToString(secret)
	require.NotEqual(t, std, url)
	assert.Equal(t, mustParseKeys(t, std).Token(), mustParseKeys(t, url).Token())
}

// TestKeysDerivation pins the derivation: a change would leave every
// deployed backend unable to open its tokens. The expected keys were
// computed apart from this package (Python's hmac, RFC 5869 by hand).
func TestKeysDerivation(t *testing.T) {
	t.Parallel()
	secret := make([]byte, 32)
	for i := range secret {
		secret[i] = byte(i)
	}
	keys := mustParseKeys(t, b64(secret))
	assert.Equal(t, "162fd003b7a1433a3f1e43b54a99438e3dda22bebae08a2fd5cae17550b2fc54", hex.EncodeToString(keys.Token()[0]))
	assert.Equal(t, "88f4da0cfd8f5779254bdc6121315a8313e67cecfac4ef8d6954f73fbb8c9a38", hex.EncodeToString(keys.Flow()))
}

func TestKeysFlowKeyIsNeverATokenKey(t *testing.T) {
	t.Parallel()
	secrets := [][]byte{connect.SeededKey(32, 1), connect.SeededKey(16, 2), connect.SeededKey(24, 3)}
	keys := mustParseKeys(t, b64(secrets[0])+" , "+b64(secrets[1])+","+b64(secrets[2]))
	tokens := keys.Token()
	require.Len(t, tokens, 3)
	for i, tk := range tokens {
		assert.NotEqual(t, keys.Flow(), tk, "token key %d", i+1)
		for j, s := range secrets {
			assert.NotEqual(t, s, tk, "token key %d is not key %d as given", i+1, j+1)
			assert.NotEqual(t, s, keys.Flow(), "the flow key is not key %d as given", j+1)
		}
		for j := range i {
			assert.NotEqual(t, tokens[j], tk, "token keys %d and %d", j+1, i+1)
		}
	}
	// The first key seals tokens and flows; the order of the others is kept.
	first := mustParseKeys(t, b64(secrets[0]))
	assert.Equal(t, first.Token()[0], tokens[0])
	assert.Equal(t, first.Flow(), keys.Flow())
	reordered := mustParseKeys(t, b64(secrets[2])+","+b64(secrets[0])+","+b64(secrets[1]))
	assert.Equal(t, [][]byte{tokens[2], tokens[0], tokens[1]}, reordered.Token())
	assert.NotEqual(t, keys.Flow(), reordered.Flow())

	// The keys handed out are copies.
	tokens[0][0] ^= 0xff
	keys.Flow()[0] ^= 0xff
	assert.Equal(t, first.Token(), keys.Token()[:1])
	assert.Equal(t, first.Flow(), keys.Flow())
}

func TestKeysPrintNoKey(t *testing.T) {
	t.Parallel()
	secret := connect.SeededKey(32, 9)
	keys := mustParseKeys(t, b64(secret))
	var logged bytes.Buffer
	slog.New(slog.NewJSONHandler(&logged, nil)).Info("keys", "keys", keys)
	slog.New(slog.NewTextHandler(&logged, nil)).Info("keys", "keys", keys)
	printed := fmt.Sprintf("%v %+v %#v", keys, keys, keys) + logged.String()
	for _, k := range [][]byte{secret, keys.Token()[0], keys.Flow()} {
		for _, spelled := range []string{fmt.Sprint(k), fmt.Sprintf("%#v", k), hex.EncodeToString(k), b64(k), fmt.Sprint(k[:4])} {
			assert.NotContains(t, printed, spelled)
		}
	}
}

func TestKeysZero(t *testing.T) {
	t.Parallel()
	var keys connect.Keys
	assert.Nil(t, keys.Token())
	assert.Nil(t, keys.Flow())
	cfg := &oauth2.Config{ClientID: "c"}
	_, err := connect.NewManager(cfg, connect.NewMemoryStore(), connect.WithKeys(keys.Token()...))
	assert.ErrorContains(t, err, "needs WithKeys")
	_, err = connect.NewFlow(cfg, keys.Flow())
	assert.ErrorContains(t, err, "flow key")
}

// keysConnect runs a flow sealed with fl and completes it with m.
func (f *flowFixture) keysConnect(t *testing.T, fl *connect.Flow, m *connect.Manager, account, subject string) *oauth2.Token {
	t.Helper()
	tok, got := f.finish(t, fl, account, subject)
	_, err := m.Complete(f.ctx, tok, got)
	require.NoError(t, err)
	return tok
}

// TestKeysRoundTrip: a Manager and a Flow made with parsed keys seal and
// open, and the keys rotate: "new,old" opens what "old" sealed, and saves
// with the new key.
func TestKeysRoundTrip(t *testing.T) {
	t.Parallel()
	const company = "urn:pleo:company:6b657973-0000-4000-8000-000000000001"
	f := newFlowFixture(t, redirect)
	oldS, newS := b64(connect.SeededKey(32, 11)), base64.RawURLEncoding.EncodeToString(connect.SeededKey(32, 12))
	old := mustParseKeys(t, oldS)
	store := connect.NewMemoryStore()

	m := f.manager(t, store, connect.WithKeys(old.Token()...))
	fl, err := connect.NewFlow(f.cfg, old.Flow(), connect.WithClock(f.clock.Now))
	require.NoError(t, err)
	tok := f.keysConnect(t, fl, m, "acme", company)
	rec, err := store.Get(t.Context(), company)
	require.NoError(t, err)
	opened, err := connect.OpenTokens(m, company, rec.Tokens)
	require.NoError(t, err)
	assert.Equal(t, tok.AccessToken, opened.AccessToken)
	assert.Equal(t, tok.RefreshToken, opened.RefreshToken)

	// The keys as given, not derived, open nothing ParseKeys's keys sealed.
	raw, err := base64.StdEncoding.DecodeString(oldS)
	require.NoError(t, err)
	_, err = f.manager(t, store, connect.WithKeys(raw)).Token(t.Context(), company)
	assert.ErrorContains(t, err, "add it to WithKeys")

	// Rotation: "new,old" opens what "old" sealed, and its flows are the new key's.
	rotatedKeys := mustParseKeys(t, newS+","+oldS)
	rotated := f.manager(t, store, connect.WithKeys(rotatedKeys.Token()...))
	got, err := rotated.Token(t.Context(), company)
	require.NoError(t, err)
	assert.Equal(t, tok.AccessToken, got.AccessToken)
	newFlow, err := connect.NewFlow(f.cfg, rotatedKeys.Flow(), connect.WithClock(f.clock.Now))
	require.NoError(t, err)
	_, sealedOld := fl.Start("acme")
	_, _, err = newFlow.Finish(t.Context(), httptest.NewRequest(http.MethodGet, "/oauth/callback?code=c&state=s", nil), sealedOld)
	assert.ErrorIs(t, err, connect.ErrFlowInvalid, "a flow sealed under the old first key")

	onlyNew := f.manager(t, store, connect.WithKeys(mustParseKeys(t, newS).Token()...))
	_, err = onlyNew.Token(t.Context(), company)
	require.ErrorContains(t, err, "add it to WithKeys", "not saved again yet")
	f.clock.Advance(pleooauthtest.DefaultAccessTokenTTL)
	_, err = rotated.Token(t.Context(), company) // refreshes, sealing with the new key
	require.NoError(t, err)
	_, err = onlyNew.Token(t.Context(), company)
	assert.NoError(t, err, "after a save, the new key alone opens it")

	// A second company connects through the rotated flow and Manager.
	f.keysConnect(t, newFlow, rotated, "globex", "urn:pleo:company:6b657973-0000-4000-8000-000000000002")
}

// errorShape is every error ParseKeys gives: positions and sizes, never a
// key's text.
var errorShape = regexp.MustCompile(`^connect: ParseKeys: (no keys|key \d+ (is empty|is not base64|is \d+ bytes; want 16, 24 or 32|is all zero bytes|is one byte repeated|repeats key \d+))$`)

// FuzzParseKeys feeds arbitrary settings to ParseKeys: it never panics,
// its errors have one of the known shapes, and the keys it returns are
// one AES-256 token key per entry, the flow key apart from all of them,
// and work with NewManager and NewFlow.
func FuzzParseKeys(f *testing.F) {
	for _, s := range []string{
		"", ",", b64(connect.SeededKey(32, 1)),
		b64(connect.SeededKey(32, 1)) + "," + base64.RawURLEncoding.EncodeToString(connect.SeededKey(16, 2)),
		b64(make([]byte, 32)), b64(connect.SeededKey(20, 3)), " " + b64(connect.SeededKey(24, 4)) + " ,\t",
	} {
		f.Add(s)
	}
	cfg := &oauth2.Config{ClientID: "c", Endpoint: oauth2.Endpoint{TokenURL: pleooauth.StagingEndpoints.TokenURL}}
	f.Fuzz(func(t *testing.T, s string) {
		keys, err := connect.ParseKeys(s)
		if err != nil {
			if !errorShape.MatchString(err.Error()) {
				t.Fatalf("unexpected error %q", err)
			}
			if keys.Token() != nil || keys.Flow() != nil {
				t.Fatal("keys with an error")
			}
			return
		}
		tokens := keys.Token()
		if len(tokens) != strings.Count(s, ",")+1 {
			t.Fatalf("%d token keys from %d entries", len(tokens), strings.Count(s, ",")+1)
		}
		for _, tk := range tokens {
			if len(tk) != 32 || bytes.Equal(tk, keys.Flow()) {
				t.Fatal("a token key of the wrong size, or equal to the flow key")
			}
		}
		if slices.ContainsFunc(tokens[1:], func(k []byte) bool { return bytes.Equal(k, tokens[0]) }) {
			t.Fatal("two token keys are the same")
		}
		if first := mustParseKeys(t, strings.Split(s, ",")[0]); !bytes.Equal(first.Flow(), keys.Flow()) || !bytes.Equal(first.Token()[0], tokens[0]) {
			t.Fatal("the first key does not decide the flow key and the sealing key")
		}
		if _, err := connect.NewManager(cfg, connect.NewMemoryStore(), connect.WithKeys(tokens...)); err != nil {
			t.Fatalf("NewManager: %v", err)
		}
		if _, err := connect.NewFlow(cfg, keys.Flow()); err != nil {
			t.Fatalf("NewFlow: %v", err)
		}
	})
}

// PLEO_KEYS holds the keys every instance shares, the newest first. Here
// a new key and the old one it replaces; make one with
// `openssl rand -base64 32`.
func ExampleParseKeys() {
	newKey, oldKey := make([]byte, 32), make([]byte, 32)
	_, _ = rand.Read(newKey)
	_, _ = rand.Read(oldKey)
	setting := base64.StdEncoding.EncodeToString(newKey) + "," + base64.StdEncoding.EncodeToString(oldKey) // os.Getenv("PLEO_KEYS")

	keys, err := connect.ParseKeys(setting)
	if err != nil {
		fmt.Println(err)
		return
	}
	// connect.NewManager(cfg, store, connect.WithKeys(keys.Token()...)) and
	// connect.NewFlow(cfg, keys.Flow()).
	fmt.Println(len(keys.Token()), "token keys, the first sealing")
	fmt.Println("the flow key is a token key:", slices.ContainsFunc(keys.Token(), func(k []byte) bool { return bytes.Equal(k, keys.Flow()) }))

	_, err = connect.ParseKeys(setting + ",c2hvcnQ=")
	fmt.Println(err)
	// Output:
	// 2 token keys, the first sealing
	// the flow key is a token key: false
	// connect: ParseKeys: key 3 is 5 bytes; want 16, 24 or 32
}

package pleooauth

import (
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"

	"github.com/partnerkit/pleooauth/internal/pkceverify"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/oauth2"
)

// RFC 7636 Appendix B.
const (
	rfcVerifier  = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
	rfcChallenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
)

func TestRFC7636AppendixB(t *testing.T) {
	t.Parallel()
	require.NoError(t, pkceverify.Verifier(rfcVerifier))
	require.NoError(t, pkceverify.Challenge(rfcChallenge))
	p := PKCE{Verifier: NewSecret(rfcVerifier), Challenge: rfcChallenge}
	cfg := &oauth2.Config{ClientID: "c", Endpoint: oauth2.Endpoint{AuthURL: StagingEndpoints.AuthURL, TokenURL: StagingEndpoints.TokenURL}}
	u, err := url.Parse(cfg.AuthCodeURL("state", p.AuthCodeOption()))
	require.NoError(t, err)
	assert.Equal(t, rfcChallenge, u.Query().Get("code_challenge"))
	assert.Equal(t, "S256", u.Query().Get("code_challenge_method"))
	assert.NotContains(t, u.String(), rfcVerifier)
}

func TestNewPKCE(t *testing.T) {
	t.Parallel()
	seen := map[string]bool{}
	for range 100 {
		p := NewPKCE()
		v := p.Verifier.Reveal()
		require.NoError(t, pkceverify.Verifier(v))
		assert.Len(t, v, 43)
		require.NoError(t, pkceverify.Challenge(p.Challenge))
		assert.False(t, seen[v], "verifier repeated")
		seen[v] = true
		assert.NotContains(t, fmt.Sprintf("%v %+v %#v", p, p, p), v)
	}
}

// TestPKCEOptions: the options send what RFC 7636 asks, checked against a
// challenge computed here (section 4.2) and the form a token endpoint
// receives (section 4.5).
func TestPKCEOptions(t *testing.T) {
	t.Parallel()
	p := NewPKCE()
	sum := sha256.Sum256([]byte(p.Verifier.Reveal()))
	challenge := base64.RawURLEncoding.EncodeToString(sum[:])
	assert.Equal(t, challenge, p.Challenge)

	var form url.Values
	tokenEndpoint := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = r.ParseForm()
		form = r.PostForm
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"access_token":"a","token_type":"Bearer"}`))
	}))
	t.Cleanup(tokenEndpoint.Close)
	cfg := &oauth2.Config{ClientID: "c", Endpoint: oauth2.Endpoint{AuthURL: StagingEndpoints.AuthURL, TokenURL: tokenEndpoint.URL}}

	u, err := url.Parse(cfg.AuthCodeURL("s", p.AuthCodeOption()))
	require.NoError(t, err)
	assert.Equal(t, challenge, u.Query().Get("code_challenge"))
	assert.Equal(t, "S256", u.Query().Get("code_challenge_method"))
	assert.False(t, u.Query().Has("code_verifier"))

	_, err = cfg.Exchange(t.Context(), "code", p.ExchangeOption())
	require.NoError(t, err)
	assert.Equal(t, p.Verifier.Reveal(), form.Get("code_verifier"))
	assert.False(t, form.Has("code_challenge"))
}

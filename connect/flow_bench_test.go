package connect

import (
	"crypto/rand"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/partnerkit/pleooauth"
	"golang.org/x/oauth2"
)

func benchConfig() *oauth2.Config {
	return &oauth2.Config{
		ClientID:    "12a3b456-78c9-0d12-34e5-f678ab9bcd0e",
		Endpoint:    oauth2.Endpoint{AuthURL: pleooauth.StagingEndpoints.AuthURL, TokenURL: pleooauth.StagingEndpoints.TokenURL},
		RedirectURL: "https://client.example/callback",
		Scopes:      []string{"users:read", "users:write"},
	}
}

// BenchmarkFlowStartFinish starts a flow and does everything Finish does
// before the network exchange: seal, unseal, expiry, state comparison,
// replay check. Compare it with its baseline:
//
//	go test -run '^$' -bench 'FlowStartFinish|AuthCodeURLWithPKCE' -benchmem ./connect
func BenchmarkFlowStartFinish(b *testing.B) {
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	f, err := NewFlow(benchConfig(), key)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		authURL, sealed := f.Start("account-1")
		i := strings.Index(authURL, "state=")
		state := authURL[i+len("state=") : i+len("state=")+43]
		req := &http.Request{URL: &url.URL{RawQuery: "code=c&state=" + state}}
		if _, _, err := f.verify(req, sealed); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkAuthCodeURLWithPKCE is the baseline: what a partner would write
// by hand with x/oauth2, a random state, a verifier and the URL.
func BenchmarkAuthCodeURLWithPKCE(b *testing.B) {
	cfg := benchConfig()
	b.ReportAllocs()
	for b.Loop() {
		state := rand.Text()
		verifier := oauth2.GenerateVerifier()
		_ = cfg.AuthCodeURL(state, oauth2.S256ChallengeOption(verifier))
	}
}

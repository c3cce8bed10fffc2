package pleooauthtest

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/partnerkit/pleooauth"
	"github.com/partnerkit/pleooauth/internal/examplereg"
	"golang.org/x/oauth2"
)

// BenchmarkAuthorizeAndExchange is one complete authorization on loopback:
// a PKCE pair, the authorization request and its redirect, and the code
// exchange through x/oauth2. Compare it with its floor:
//
//	go test -run '^$' -bench 'AuthorizeAndExchange|TwoRoundTrips' -benchmem ./pleooauthtest
func BenchmarkAuthorizeAndExchange(b *testing.B) {
	creds, err := pleooauth.NewCredentials(clientID, clientSecret)
	if err != nil {
		b.Fatal(err)
	}
	reg := examplereg.New("users:read", redirectURI)
	srv := NewServer(reg, creds)
	defer srv.Close()
	cfg, err := reg.OAuth2Config(pleooauth.Staging, creds, pleooauth.WithEndpoints(srv.Endpoints()))
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.WithValue(context.Background(), oauth2.HTTPClient, srv.Client())
	b.ReportAllocs()
	for b.Loop() {
		pkce := pleooauth.NewPKCE()
		callback, err := srv.Authorize(cfg.AuthCodeURL("state", pkce.AuthCodeOption()))
		if err != nil {
			b.Fatal(err)
		}
		if _, err := cfg.Exchange(ctx, callback.Query().Get("code"), pkce.ExchangeOption()); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkTwoRoundTrips is the physical floor for
// BenchmarkAuthorizeAndExchange: a GET and a form POST on loopback to an
// httptest handler that does nothing.
func BenchmarkTwoRoundTrips(b *testing.B) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
	}))
	defer srv.Close()
	client := srv.Client()
	b.ReportAllocs()
	for b.Loop() {
		resp, err := client.Get(srv.URL + authorizePath)
		if err != nil {
			b.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		resp, err = client.Post(srv.URL+tokenPath, "application/x-www-form-urlencoded", strings.NewReader("grant_type=authorization_code"))
		if err != nil {
			b.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
}

// BenchmarkXOAuth2AgainstNothing is the same client work as
// BenchmarkAuthorizeAndExchange (a PKCE pair, the authorization URL, a GET,
// x/oauth2's Exchange) against handlers that do nothing but answer a fixed
// redirect and token: the floor that x/oauth2 itself sets.
func BenchmarkXOAuth2AgainstNothing(b *testing.B) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		if r.Method == http.MethodGet {
			w.Header().Set("Location", redirectURI+"?code=c&state=state")
			w.WriteHeader(http.StatusFound)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"access_token":"DTzT3vUeLm8Jz5qY0n5b3Yk1nq3fU4sP1m3C2lVQeHk","token_type":"Bearer","expires_in":900,"refresh_token":"b8s8Yc0wqQ3k5bG7zQ1yX2mC4vN6pL8tR0uW3eS5dFa","scope":"users:read"}`)
	}))
	defer srv.Close()
	cfg := &oauth2.Config{
		ClientID: clientID, ClientSecret: clientSecret, RedirectURL: redirectURI, Scopes: []string{"users:read"},
		Endpoint: oauth2.Endpoint{AuthURL: srv.URL + authorizePath, TokenURL: srv.URL + tokenPath, AuthStyle: oauth2.AuthStyleInHeader},
	}
	client := srv.Client()
	ctx := context.WithValue(context.Background(), oauth2.HTTPClient, client)
	b.ReportAllocs()
	for b.Loop() {
		pkce := pleooauth.NewPKCE()
		req, err := http.NewRequest(http.MethodGet, cfg.AuthCodeURL("state", pkce.AuthCodeOption()), nil)
		if err != nil {
			b.Fatal(err)
		}
		resp, err := client.Transport.RoundTrip(req)
		if err != nil {
			b.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		callback, err := resp.Location()
		if err != nil {
			b.Fatal(err)
		}
		if _, err := cfg.Exchange(ctx, callback.Query().Get("code"), pkce.ExchangeOption()); err != nil {
			b.Fatal(err)
		}
	}
}

package connect_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/partnerkit/pleooauth/connect"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/oauth2"
)

// echoingProxy stands in front of the token endpoint and answers every
// request with an error page that repeats the request: its form and its
// Authorization header, as some proxies' 502 pages do. It remembers the
// last form it saw.
type echoingProxy struct {
	*httptest.Server
	mu   sync.Mutex
	form url.Values
	auth string
}

func newEchoingProxy(t *testing.T, status int, asOAuthError bool) *echoingProxy {
	t.Helper()
	p := &echoingProxy{}
	p.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		form, _ := url.ParseQuery(string(body))
		p.mu.Lock()
		p.form, p.auth = form, r.Header.Get("Authorization")
		p.mu.Unlock()
		echo := fmt.Sprintf("upstream failed for request %s with Authorization: %s", body, r.Header.Get("Authorization"))
		if asOAuthError {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(status)
			_ = json.NewEncoder(w).Encode(map[string]string{"error": "invalid_request", "error_description": echo, "error_uri": "https://proxy.example/?" + string(body)})
			return
		}
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(status)
		fmt.Fprintf(w, "<h1>502 Bad Gateway</h1><pre>%s</pre>", echo)
	}))
	t.Cleanup(p.Close)
	return p
}

// sent returns every value the proxy saw that must not be printed.
func (p *echoingProxy) sent(t *testing.T) []string {
	t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	require.NotNil(t, p.form, "the request reached the proxy")
	var out []string
	for _, k := range []string{"client_secret", "refresh_token", "code", "code_verifier"} {
		if v := p.form.Get(k); v != "" {
			out = append(out, v)
		}
	}
	if p.auth != "" {
		out = append(out, strings.TrimPrefix(p.auth, "Basic "))
	}
	return out
}

// assertScrubbed checks the error in every way a partner might print it.
func assertScrubbed(t *testing.T, err error, sent []string, status int) {
	t.Helper()
	require.Error(t, err)
	var rerr *oauth2.RetrieveError
	require.ErrorAs(t, err, &rerr, "errors.As still finds the RetrieveError")
	assert.Empty(t, rerr.Body, "the body is dropped")
	require.NotNil(t, rerr.Response)
	assert.Equal(t, status, rerr.Response.StatusCode)
	assert.Nil(t, rerr.Response.Request)
	assert.Contains(t, err.Error(), fmt.Sprint(status))
	for _, text := range []string{err.Error(), fmt.Sprintf("%+v", err), fmt.Sprintf("%#v", err), rerr.Error(), fmt.Sprintf("%+v", rerr), fmt.Sprintf("%+v", *rerr.Response)} {
		for _, secret := range sent {
			assert.NotContains(t, text, secret)
		}
	}
}

func TestTokenEndpointErrorsCarryNoSecrets(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name    string
		status  int
		asOAuth bool
	}{
		{"a proxy's 502 page", http.StatusBadGateway, false},
		{"an OAuth error that repeats the request", http.StatusBadRequest, true},
	} {
		t.Run(tt.name+": exchange", func(t *testing.T) {
			t.Parallel()
			f := newFlowFixture(t, redirect)
			proxy := newEchoingProxy(t, tt.status, tt.asOAuth)
			cfg := *f.cfg
			cfg.Endpoint.TokenURL = proxy.URL
			fl, err := connect.NewFlow(&cfg, f.key)
			require.NoError(t, err)
			authURL, sealed := fl.Start("acme")
			_, _, err = fl.Finish(f.ctx, f.callback(t, authURL), sealed)
			sent := proxy.sent(t)
			assert.Len(t, sent, 3, "code, verifier and the Basic credentials were sent")
			sent = append(sent, testClientSecret)
			assertScrubbed(t, err, sent, tt.status)
		})
		t.Run(tt.name+": refresh", func(t *testing.T) {
			t.Parallel()
			f := newFlowFixture(t, redirect)
			proxy := newEchoingProxy(t, tt.status, tt.asOAuth)
			store := connect.NewMemoryStore()
			tok, c := f.connect(t, f.manager(t, store), "acme", company1)
			// Another instance, whose token endpoint is behind the proxy,
			// refreshes once the token expires.
			cfg, endpoints := f.withTokenURL(proxy.URL)
			m, err := connect.NewManager(cfg, store, connect.WithKeys(f.key), connect.WithHTTPClient(f.srv.Client()),
				connect.WithEndpoints(endpoints), connect.WithClock(f.clock.Now))
			require.NoError(t, err)
			f.clock.Advance(time.Hour)
			_, err = m.Token(t.Context(), c.ID)
			sent := append(proxy.sent(t), testClientSecret, tok.RefreshToken)
			assertScrubbed(t, err, sent, tt.status)
			var rerr *oauth2.RetrieveError
			require.ErrorAs(t, err, &rerr)
			if tt.asOAuth {
				assert.Equal(t, "invalid_request", rerr.ErrorCode, "the OAuth error code is kept")
				assert.Contains(t, err.Error(), "invalid_request")
			}
		})
	}
}

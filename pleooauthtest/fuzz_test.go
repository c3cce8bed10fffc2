package pleooauthtest

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/partnerkit/pleooauth"
	"github.com/partnerkit/pleooauth/internal/examplereg"
	"github.com/partnerkit/pleooauth/internal/pkceverify"
)

// FuzzAuthorize sends arbitrary query strings to the authorization
// endpoint. It must answer a 400 error page or a redirect to a registered
// URI, and it may issue a code only for a request that keeps every rule.
func FuzzAuthorize(f *testing.F) {
	challenge := pleooauth.NewPKCE().Challenge
	good := url.Values{"response_type": {"code"}, "client_id": {clientID}, "redirect_uri": {redirectURI}, "scope": {"users:read"},
		"state": {"s"}, "code_challenge": {challenge}, "code_challenge_method": {"S256"}}
	f.Add(good.Encode())
	f.Add("response_type=code&client_id=" + clientID + "&redirect_uri=" + url.QueryEscape(redirectURI) + "&scope=users:read&state=s")
	f.Add("client_id=" + clientID + "&redirect_uri=" + url.QueryEscape(redirectURI+"/"))
	f.Add("%zz&client_id=;")
	creds, err := pleooauth.NewCredentials(clientID, clientSecret)
	if err != nil {
		f.Fatal(err)
	}
	srv := NewUnstartedServer(examplereg.New("users:read export-jobs:read", redirectURI), creds)
	f.Fuzz(func(t *testing.T, query string) {
		req := httptest.NewRequest(http.MethodGet, "http://127.0.0.1"+authorizePath, nil)
		req.URL.RawQuery = query
		rec := httptest.NewRecorder()
		srv.mux.ServeHTTP(rec, req)
		switch rec.Code {
		case http.StatusBadRequest:
			var body map[string]string
			if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil || body["error"] == "" {
				t.Fatalf("error page without an error code: %q", rec.Body.String())
			}
			return
		case http.StatusFound:
		default:
			t.Fatalf("status %d", rec.Code)
		}
		loc, err := url.Parse(rec.Header().Get("Location"))
		if err != nil {
			t.Fatal(err)
		}
		base := *loc
		base.RawQuery = ""
		q, _ := url.ParseQuery(query)
		if !strings.HasPrefix(loc.String(), redirectURI) || base.String() != q.Get("redirect_uri") {
			t.Fatalf("redirected to %s for redirect_uri %q", loc, q.Get("redirect_uri"))
		}
		if loc.Query().Get("code") == "" {
			if loc.Query().Get("error") == "" {
				t.Fatalf("redirect with neither code nor error: %s", loc)
			}
			return
		}
		// A code was issued: the request kept every rule.
		scopes, err := pleooauth.ParseScopes(q.Get("scope"))
		switch {
		case q.Get("response_type") != "code", q.Get("client_id") != clientID, q.Get("state") == "":
			t.Fatalf("code issued for %q", query)
		case err != nil || len(scopes) == 0 || !subset(scopes, []pleooauth.Scope{pleooauth.ScopeUsersRead, pleooauth.ScopeExportJobsRead}):
			t.Fatalf("code issued for scope %q", q.Get("scope"))
		case q.Get("code_challenge") != "" && (q.Get("code_challenge_method") != "S256" || pkceverify.Challenge(q.Get("code_challenge")) != nil):
			t.Fatalf("code issued for a bad challenge: %q", query)
		case repeated(q):
			t.Fatalf("code issued with a repeated parameter: %q", query)
		}
	})
}

func repeated(q url.Values) bool {
	for _, v := range q {
		if len(v) > 1 {
			return true
		}
	}
	return false
}

// FuzzToken sends arbitrary form bodies and Basic credentials to the token
// endpoint: it answers RFC 6749 JSON with a fitting status, and never issues
// a token to a request that does not authenticate.
func FuzzToken(f *testing.F) {
	f.Add("grant_type=refresh_token&refresh_token=x", clientID, clientSecret)
	f.Add("grant_type=authorization_code&code=x&redirect_uri="+url.QueryEscape(redirectURI), clientID, clientSecret)
	f.Add("grant_type=password&username=a&password=b", clientID, "wrong")
	f.Add("client_id="+clientID+"&client_secret="+clientSecret, "", "")
	creds, err := pleooauth.NewCredentials(clientID, clientSecret)
	if err != nil {
		f.Fatal(err)
	}
	srv := NewUnstartedServer(examplereg.New("users:read", redirectURI), creds)
	f.Fuzz(func(t *testing.T, body, user, pass string) {
		req := httptest.NewRequest(http.MethodPost, "http://127.0.0.1"+tokenPath, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if user != "" || pass != "" {
			req.SetBasicAuth(user, pass)
		}
		rec := httptest.NewRecorder()
		srv.mux.ServeHTTP(rec, req)
		data, _ := io.ReadAll(rec.Body)
		var resp map[string]any
		if err := json.Unmarshal(data, &resp); err != nil {
			t.Fatalf("not JSON: %q", data)
		}
		switch rec.Code {
		case http.StatusOK:
			// No code or refresh token was ever issued by this server, so
			// nothing may succeed.
			t.Fatalf("token issued for %q", body)
		case http.StatusBadRequest, http.StatusUnauthorized:
			if resp["error"] == "" || resp["error"] == nil {
				t.Fatalf("no error code: %q", data)
			}
		default:
			t.Fatalf("status %d", rec.Code)
		}
		if strings.Contains(string(data), clientSecret) {
			t.Fatal("the secret is echoed")
		}
	})
}

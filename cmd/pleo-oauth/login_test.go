package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/partnerkit/pleooauth"
	"github.com/partnerkit/pleooauth/pleooauthtest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// syncBuffer is a bytes.Buffer safe to read while run writes to it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

const loginSecret = "login-secret-0123456789"

// loginSetup writes a registration whose redirect URI is a free loopback
// port, starts a fake Pleo for it and sets the credentials; loginCLI points
// login at the fake.
func loginSetup(t *testing.T, opts ...pleooauthtest.Option) (manifest string, srv *pleooauthtest.Server) {
	t.Helper()
	manifest, srv, _ = loginSetupWith(t, "http://127.0.0.1:%d/oauth/callback", opts...)
	return manifest, srv
}

// loginSetupWith is loginSetup with the redirect URI given as a format
// with one %d, the port.
func loginSetupWith(t *testing.T, redirectFormat string, opts ...pleooauthtest.Option) (manifest string, srv *pleooauthtest.Server, redirect string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	port := ln.Addr().(*net.TCPAddr).Port
	require.NoError(t, ln.Close())
	dir := t.TempDir()
	manifest = filepath.Join(dir, "registration.yaml")
	data, err := os.ReadFile(seed)
	require.NoError(t, err)
	redirect = fmt.Sprintf(redirectFormat, port)
	data = bytes.Replace(data, []byte("https://client.example/callback"), []byte(redirect), 1)
	require.NoError(t, os.WriteFile(manifest, data, 0o644))
	reg, err := pleooauth.ParseRegistration(data)
	require.NoError(t, err)
	creds, err := pleooauth.NewCredentials("login-client", loginSecret)
	require.NoError(t, err)
	srv = pleooauthtest.NewServer(reg, creds, opts...)
	t.Cleanup(srv.Close)

	t.Setenv(pleooauth.EnvClientID, "login-client")
	t.Setenv(pleooauth.EnvClientSecret, loginSecret)
	return manifest, srv, redirect
}

// loginCLI is the command on these streams, with login pointed at srv.
func loginCLI(srv *pleooauthtest.Server, stdout, stderr io.Writer) *cli {
	c := newCLI(nil, stdout, stderr)
	ep := srv.Endpoints()
	c.loginEndpoint, c.loginHTTPClient = &ep, srv.Client()
	return c
}

var authURLLine = regexp.MustCompile(`(?m)^  (http://127\.0\.0\.1:\d+/oauth/authorize\?\S+)$`)

// waitForAuthURL waits for login to print the authorization URL.
func waitForAuthURL(t *testing.T, stdout *syncBuffer) string {
	t.Helper()
	var authURL string
	require.Eventually(t, func() bool {
		m := authURLLine.FindStringSubmatch(stdout.String())
		if m != nil {
			authURL = m[1]
		}
		return m != nil
	}, 10*time.Second, 10*time.Millisecond)
	return authURL
}

// browse waits for login to print the authorization URL, then plays the
// browser: Pleo, then the loopback redirect URI.
func browse(t *testing.T, srv *pleooauthtest.Server, stdout *syncBuffer) (int, string) {
	t.Helper()
	callback, err := srv.Authorize(waitForAuthURL(t, stdout))
	require.NoError(t, err)
	return get(t, callback.String())
}

func get(t *testing.T, u string) (int, string) {
	t.Helper()
	resp, err := http.Get(u)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err, "the whole page arrives")
	return resp.StatusCode, string(body)
}

// startLogin runs login in the background and returns its streams and
// a channel with its exit status.
func startLogin(t *testing.T, srv *pleooauthtest.Server, manifest string) (stdout, stderr *syncBuffer, status chan int) {
	t.Helper()
	out := filepath.Join(t.TempDir(), "tokens.json")
	stdout, stderr = &syncBuffer{}, &syncBuffer{}
	status = make(chan int, 1)
	go func() {
		status <- loginCLI(srv, stdout, stderr).run([]string{"login", "--registration", manifest, "--out", out, "--no-browser", "--timeout", "20s"})
	}()
	return stdout, stderr, status
}

func TestLogin(t *testing.T) {
	manifest, srv := loginSetup(t)
	out := filepath.Join(t.TempDir(), "tokens.json")
	stdout, stderr := &syncBuffer{}, &syncBuffer{}
	status := make(chan int, 1)
	go func() {
		status <- loginCLI(srv, stdout, stderr).run([]string{"login", "--env", "staging", "--registration", manifest, "--out", out, "--no-browser", "--timeout", "10s"})
	}()
	code, body := browse(t, srv, stdout)
	assert.Equal(t, http.StatusOK, code)
	assert.Contains(t, body, "Authorised")
	require.Equal(t, 0, <-status, "stderr: %s", stderr.String())

	fi, err := os.Stat(out)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), fi.Mode().Perm())
	var saved struct {
		AccessToken  string `json:"access_token"`
		RefreshToken string `json:"refresh_token"`
	}
	data, err := os.ReadFile(out)
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(data, &saved))
	require.NotEmpty(t, saved.AccessToken)
	require.NotEmpty(t, saved.RefreshToken)

	printed := stdout.String() + stderr.String()
	assert.Contains(t, printed, "Tokens written to "+out+" (mode 0600)")
	assert.Contains(t, printed, "scopes: users:read users:write")
	assert.Regexp(t, `access token expires \S+ \(in 1[45]m\d+s\)`, printed)
	for _, secret := range []string{saved.AccessToken, saved.RefreshToken, loginSecret} {
		assert.NotContains(t, printed, secret)
	}
}

func TestLoginDenied(t *testing.T) {
	manifest, srv := loginSetup(t, pleooauthtest.WithConsentDenied())
	out := filepath.Join(t.TempDir(), "tokens.json")
	stdout, stderr := &syncBuffer{}, &syncBuffer{}
	status := make(chan int, 1)
	go func() {
		status <- loginCLI(srv, stdout, stderr).run([]string{"login", "--registration", manifest, "--out", out, "--no-browser", "--timeout", "10s"})
	}()
	code, body := browse(t, srv, stdout)
	assert.Equal(t, http.StatusBadRequest, code)
	// The whole page arrives: login stops its server only after the
	// response is written.
	assert.Equal(t, "Authorisation did not complete: authorization failed: access_denied: the user denied the request. You can close this window.\n", body)
	assert.Equal(t, 1, <-status)
	assert.Contains(t, stderr.String(), "access was denied")
	assert.NoFileExists(t, out)
}

// TestLoginRedirectURISpellings: every redirect URI that validates for
// Staging works for login, sent to Pleo exactly as registered.
func TestLoginRedirectURISpellings(t *testing.T) {
	for _, format := range []string{
		"http://127.0.0.1:%d",                 // no path: the browser asks for /
		"http://127.0.0.1:%d/",                // the root
		"http://127.0.0.1:%d/a/../oauth/./cb", // dot segments
		"HTTP://127.0.0.1:%d/oauth/callback",  // an upper-case scheme
		"http://127.0.0.1:%d/a%%2Fb",          // an escaped slash
		"http://127.0.0.1:%d/caf%%C3%%A9?x=1", // an escaped path and a query
		"http://localhost:%d/oauth/callback",  // localhost
		"http://[::1]:%d/oauth/callback",      // IPv6 loopback
	} {
		t.Run(format, func(t *testing.T) {
			if strings.Contains(format, "[::1]") {
				ln, err := net.Listen("tcp", "[::1]:0")
				if err != nil {
					t.Skip("no IPv6 loopback on this machine:", err)
				}
				ln.Close()
			}
			manifest, srv, redirect := loginSetupWith(t, format)
			stdout, stderr, status := startLogin(t, srv, manifest)
			authURL := waitForAuthURL(t, stdout)
			u, err := url.Parse(authURL)
			require.NoError(t, err)
			assert.Equal(t, redirect, u.Query().Get("redirect_uri"), "the registered string itself is sent")
			callback, err := srv.Authorize(authURL)
			require.NoError(t, err)
			code, body := get(t, callback.String())
			assert.Equal(t, http.StatusOK, code, body)
			require.Equal(t, 0, <-status, "stderr: %s", stderr.String())
		})
	}
}

// TestLoginListensOnEveryLoopbackAddressOfLocalhost: a browser may resolve
// localhost to 127.0.0.1 or to ::1.
func TestLoginListensOnEveryLoopbackAddressOfLocalhost(t *testing.T) {
	ln, err := net.Listen("tcp", "[::1]:0")
	if err != nil {
		t.Skip("no IPv6 loopback on this machine:", err)
	}
	ln.Close()
	for _, host := range []string{"127.0.0.1", "[::1]"} {
		t.Run(host, func(t *testing.T) {
			manifest, srv, _ := loginSetupWith(t, "http://localhost:%d/oauth/callback")
			stdout, stderr, status := startLogin(t, srv, manifest)
			callback, err := srv.Authorize(waitForAuthURL(t, stdout))
			require.NoError(t, err)
			callback.Host = host + ":" + callback.Port()
			code, body := get(t, callback.String())
			assert.Equal(t, http.StatusOK, code, body)
			require.Equal(t, 0, <-status, "stderr: %s", stderr.String())
		})
	}
}

// TestLoginIgnoresCallbacksOfOtherStates: a page the user visits can make
// the browser call the loopback URI; only this login's state ends it.
func TestLoginIgnoresCallbacksOfOtherStates(t *testing.T) {
	manifest, srv := loginSetup(t)
	stdout, stderr, status := startLogin(t, srv, manifest)
	authURL := waitForAuthURL(t, stdout)
	callback, err := srv.Authorize(authURL)
	require.NoError(t, err)
	for _, forged := range []string{"state=forged&error=access_denied", "error=access_denied", "state=forged&code=abc", "code=abc", ""} {
		u := *callback
		u.RawQuery = forged
		code, body := get(t, u.String())
		assert.Equal(t, http.StatusBadRequest, code, forged)
		assert.Contains(t, body, "still waiting", forged)
	}
	select {
	case s := <-status:
		t.Fatalf("login ended on a forged callback with status %d: %s", s, stderr.String())
	default:
	}
	code, body := get(t, callback.String())
	assert.Equal(t, http.StatusOK, code, body)
	require.Equal(t, 0, <-status, "stderr: %s", stderr.String())
}

func TestLoginTimeout(t *testing.T) {
	manifest, srv := loginSetup(t)
	var stderr bytes.Buffer
	status := loginCLI(srv, io.Discard, &stderr).run([]string{"login", "--registration", manifest, "--no-browser", "--timeout", "200ms", "--out", filepath.Join(t.TempDir(), "t.json")})
	assert.Equal(t, 1, status)
	assert.Contains(t, stderr.String(), "no answer from the browser within 200ms")
}

func TestLoginRefuses(t *testing.T) {
	manifest, _ := loginSetup(t)
	for _, tt := range []struct {
		args   []string
		status int
		says   string
	}{
		{[]string{"login", "--env", "production", "--registration", manifest}, exitUsage, "Staging only"},
		{[]string{"login"}, exitUsage, "give --registration FILE"},
		{[]string{"login", "--registration", seed}, exitUsage, "no loopback redirect URI"},
		{[]string{"login", "--registration", "testdata/invalid.yaml"}, exitFindings, "invalid for staging"},
		{[]string{"login", "--registration", "testdata/missing.yaml"}, exitUsage, "no such file"},
	} {
		status, _, stderr := runCLI(t, "", tt.args...)
		assert.Equal(t, tt.status, status, strings.Join(tt.args, " "))
		assert.Contains(t, stderr, tt.says, strings.Join(tt.args, " "))
	}
	t.Setenv(pleooauth.EnvClientID, "")
	status, _, stderr := runCLI(t, "", "login", "--registration", manifest)
	assert.Equal(t, 2, status)
	assert.Contains(t, stderr, "PLEO_CLIENT_ID is not set")
}

func TestDemo(t *testing.T) {
	status, stdout, stderr := runCLI(t, "", "demo")
	require.Equal(t, 0, status, stderr)
	lines := strings.Split(strings.TrimSpace(stdout), "\n")
	require.Len(t, lines, 9, stdout)
	for i, want := range []string{"registration", "servers", "connect", "second company", "API call", "isolation", "refresh", "reuse", "disconnect"} {
		assert.True(t, strings.HasPrefix(lines[i], fmt.Sprintf("%d. %s", i+1, want)), lines[i])
	}
	assert.Contains(t, stdout, "2 employees")
	assert.Contains(t, stdout, "for company 1's connection: 404")
	assert.Contains(t, stdout, "1 refresh at Pleo, 0 reuse")
	assert.Contains(t, stdout, "B answers 401 and the connection is reauthorization_required")
	assert.Contains(t, stdout, "B sees it disconnected")
}

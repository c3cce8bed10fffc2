package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
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
// port, starts a fake Pleo for it and points login at it.
func loginSetup(t *testing.T, opts ...pleooauthtest.Option) (manifest string, srv *pleooauthtest.Server) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	port := ln.Addr().(*net.TCPAddr).Port
	require.NoError(t, ln.Close())
	dir := t.TempDir()
	manifest = filepath.Join(dir, "registration.yaml")
	data, err := os.ReadFile(seed)
	require.NoError(t, err)
	data = bytes.Replace(data, []byte("https://client.example/callback"), fmt.Appendf(nil, "http://127.0.0.1:%d/oauth/callback", port), 1)
	require.NoError(t, os.WriteFile(manifest, data, 0o644))
	reg, err := pleooauth.ParseRegistration(data)
	require.NoError(t, err)
	creds, err := pleooauth.NewCredentials("login-client", loginSecret)
	require.NoError(t, err)
	srv = pleooauthtest.NewServer(reg, creds, opts...)
	t.Cleanup(srv.Close)

	ep := srv.Endpoint()
	loginEndpoint, loginHTTPClient = &ep, srv.Client()
	t.Cleanup(func() { loginEndpoint, loginHTTPClient = nil, nil })
	t.Setenv(pleooauth.EnvClientID, "login-client")
	t.Setenv(pleooauth.EnvClientSecret, loginSecret)
	return manifest, srv
}

var authURLLine = regexp.MustCompile(`(?m)^  (http://127\.0\.0\.1:\d+/oauth/authorize\?\S+)$`)

// browse waits for login to print the authorization URL, then plays the
// browser: Pleo, then the loopback redirect URI.
func browse(t *testing.T, srv *pleooauthtest.Server, stdout *syncBuffer) (int, string) {
	t.Helper()
	var authURL string
	require.Eventually(t, func() bool {
		m := authURLLine.FindStringSubmatch(stdout.String())
		if m != nil {
			authURL = m[1]
		}
		return m != nil
	}, 5*time.Second, 10*time.Millisecond)
	callback, err := srv.Authorize(authURL)
	require.NoError(t, err)
	resp, err := http.Get(callback.String())
	require.NoError(t, err)
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

func TestLogin(t *testing.T) {
	manifest, srv := loginSetup(t)
	out := filepath.Join(t.TempDir(), "tokens.json")
	stdout, stderr := &syncBuffer{}, &syncBuffer{}
	status := make(chan int, 1)
	go func() {
		status <- run([]string{"login", "--env", "staging", "--registration", manifest, "--out", out, "--no-browser", "--timeout", "10s"}, nil, stdout, stderr)
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
		status <- run([]string{"login", "--registration", manifest, "--out", out, "--no-browser", "--timeout", "10s"}, nil, stdout, stderr)
	}()
	code, _ := browse(t, srv, stdout)
	assert.Equal(t, http.StatusBadRequest, code)
	assert.Equal(t, 1, <-status)
	assert.Contains(t, stderr.String(), "access was denied")
	assert.NoFileExists(t, out)
}

func TestLoginTimeout(t *testing.T) {
	manifest, _ := loginSetup(t)
	status, _, stderr := runCLI(t, "", "login", "--registration", manifest, "--no-browser", "--timeout", "200ms", "--out", filepath.Join(t.TempDir(), "t.json"))
	assert.Equal(t, 1, status)
	assert.Contains(t, stderr, "no answer from the browser within 200ms")
}

func TestLoginRefuses(t *testing.T) {
	manifest, _ := loginSetup(t)
	for _, tt := range []struct {
		args []string
		says string
	}{
		{[]string{"login", "--env", "production", "--registration", manifest}, "Staging only"},
		{[]string{"login"}, "give --registration FILE"},
		{[]string{"login", "--registration", seed}, "no loopback redirect URI"},
		{[]string{"login", "--registration", "testdata/invalid.yaml"}, "invalid for staging"},
	} {
		status, _, stderr := runCLI(t, "", tt.args...)
		assert.Contains(t, []int{1, 2}, status, strings.Join(tt.args, " "))
		assert.Contains(t, stderr, tt.says, strings.Join(tt.args, " "))
	}
	t.Setenv(pleooauth.EnvClientID, "")
	status, _, stderr := runCLI(t, "", "login", "--registration", manifest)
	assert.Equal(t, 2, status)
	assert.Contains(t, stderr, "PLEO_CLIENT_ID is not set")
}

func TestDemo(t *testing.T) {
	start := time.Now()
	status, stdout, stderr := runCLI(t, "", "demo")
	require.Equal(t, 0, status, stderr)
	assert.Less(t, time.Since(start), 2*time.Second)
	lines := strings.Split(strings.TrimSpace(stdout), "\n")
	require.Len(t, lines, 9, stdout)
	for i, want := range []string{"registration", "servers", "connect", "consent", "callback", "API call", "refresh", "rotation", "reuse"} {
		assert.True(t, strings.HasPrefix(lines[i], fmt.Sprintf("%d. %s", i+1, want)), lines[i])
	}
	assert.Contains(t, stdout, "2 employees")
	assert.Contains(t, stdout, "refreshed once (1 refresh request)")
	assert.Contains(t, stdout, "refused (invalid_grant)")
}

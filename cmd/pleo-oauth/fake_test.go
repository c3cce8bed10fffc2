package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/partnerkit/pleooauth"
	"github.com/partnerkit/pleooauth/internal/pleoapi"
	"github.com/partnerkit/pleooauth/pleooauthtest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// startFake runs fake in the background until ctx is done, and returns its
// streams, the environment it printed and a channel with its exit status.
func startFake(t *testing.T, ctx context.Context, args ...string) (stdout, stderr *syncBuffer, env map[string]string, status chan int) {
	t.Helper()
	stdout, stderr = &syncBuffer{}, &syncBuffer{}
	status = make(chan int, 1)
	c := newCLI(nil, stdout, stderr)
	c.fakeContext = ctx
	go func() { status <- c.run(append([]string{"fake"}, args...)) }()
	require.Eventually(t, func() bool {
		return strings.Contains(stdout.String(), "\n"+envAPIBaseURL+"=")
	}, 10*time.Second, 10*time.Millisecond, "stderr: %s", stderr)
	env = map[string]string{}
	for line := range strings.Lines(stdout.String()) {
		name, value, ok := strings.Cut(strings.TrimSuffix(line, "\n"), "=")
		require.True(t, ok, "a line that is not NAME=value: %q", line)
		env[name] = value
	}
	return stdout, stderr, env, status
}

// stopFake cancels the fake's context and returns its exit status.
func stopFake(t *testing.T, cancel context.CancelFunc, status chan int) int {
	t.Helper()
	cancel()
	select {
	case s := <-status:
		return s
	case <-time.After(10 * time.Second):
		t.Fatal("fake did not stop")
		return -1
	}
}

var (
	uuidShape = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)
	baseShape = regexp.MustCompile(`^http://127\.0\.0\.1:\d+$`)
)

// TestFake runs an app's whole flow against the fake with what it printed
// only: the consent page, the code exchange, introspection and the API.
func TestFake(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	_, stderr, env, status := startFake(t, ctx, "--registration", seed)

	base := env[envAPIBaseURL]
	assert.Regexp(t, baseShape, base)
	assert.Equal(t, map[string]string{
		pleooauth.EnvClientID:     env[pleooauth.EnvClientID],
		pleooauth.EnvClientSecret: env[pleooauth.EnvClientSecret],
		envAuthorizeURL:           base + pleoapi.AuthorizePath,
		envTokenURL:               base + pleoapi.TokenPath,
		envIntrospectionURL:       base + pleoapi.IntrospectPath,
		envAPIBaseURL:             base,
		envFakeURL:                base,
	}, env)
	assert.Equal(t, pleooauthtest.EndpointsAt(env[envFakeURL]), pleooauth.Endpoints{
		AuthURL: env[envAuthorizeURL], TokenURL: env[envTokenURL],
		IntrospectionURL: env[envIntrospectionURL], APIBaseURL: env[envAPIBaseURL],
	}, "EndpointsAt(PLEO_FAKE_URL) gives the four URLs")
	assert.Regexp(t, uuidShape, env[pleooauth.EnvClientID])
	assert.Regexp(t, `^[0-9a-f]{32}$`, env[pleooauth.EnvClientSecret])
	assert.Contains(t, stderr.String(), "a fake Pleo for Example Client at "+base+", for tests only\n")
	assert.Contains(t, stderr.String(), "redirect URIs, matched exactly: https://client.example/callback\n")
	assert.NotContains(t, stderr.String(), env[pleooauth.EnvClientSecret], "the secret goes to stdout only")

	// The app: its registration and what fake printed, nothing else.
	data, err := os.ReadFile(seed)
	require.NoError(t, err)
	reg, err := pleooauth.ParseRegistration(data)
	require.NoError(t, err)
	creds, err := pleooauth.NewCredentials(env[pleooauth.EnvClientID], env[pleooauth.EnvClientSecret])
	require.NoError(t, err)
	cfg, err := reg.OAuth2Config(pleooauth.Staging, creds, pleooauth.WithEndpoints(pleooauth.Endpoints{AuthURL: env[envAuthorizeURL], TokenURL: env[envTokenURL]}))
	require.NoError(t, err)
	pkce := pleooauth.NewPKCE()
	authURL := cfg.AuthCodeURL("state-1", pkce.AuthCodeOption())

	// The user's browser: the consent page, then Allow for Globex.
	browser := &http.Client{Timeout: 5 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := browser.Get(authURL)
	require.NoError(t, err)
	page, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode, "%s", page)
	assert.Contains(t, string(page), "Acme ApS")
	assert.Contains(t, string(page), "Globex A/S")
	u, err := url.Parse(authURL)
	require.NoError(t, err)
	form := u.Query()
	form.Set("decision", "approve")
	form.Set("subject", demoCompany2)
	resp, err = browser.PostForm(env[envAuthorizeURL], form)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusFound, resp.StatusCode)
	callback, err := resp.Location()
	require.NoError(t, err)
	assert.Equal(t, "https://client.example/callback", callback.Scheme+"://"+callback.Host+callback.Path)
	assert.Equal(t, "state-1", callback.Query().Get("state"))

	// The app's callback: exchange, introspection, the API.
	tok, err := cfg.Exchange(t.Context(), callback.Query().Get("code"), pkce.ExchangeOption())
	require.NoError(t, err)
	req, err := http.NewRequest(http.MethodPost, env[envIntrospectionURL], strings.NewReader(url.Values{"token": {tok.AccessToken}}.Encode()))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(env[pleooauth.EnvClientID], env[pleooauth.EnvClientSecret])
	resp, err = http.DefaultClient.Do(req)
	require.NoError(t, err)
	var intro struct {
		Active  bool   `json:"active"`
		Subject string `json:"urn:pleo:params:oauth:subject_urn"`
	}
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&intro))
	resp.Body.Close()
	assert.True(t, intro.Active)
	assert.Equal(t, demoCompany2, intro.Subject)
	resp, err = cfg.Client(t.Context(), tok).Get(env[envAPIBaseURL] + pleoapi.EmployeesPath)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode)

	require.Equal(t, exitOK, stopFake(t, cancel, status), "stderr: %s", stderr)
	assert.True(t, strings.HasSuffix(stderr.String(), "pleo-oauth fake: stopped\n"), stderr.String())
	_, err = http.Get(base + pleoapi.EmployeesPath)
	assert.Error(t, err, "the fake has stopped listening")
}

// TestFakePublicClient: a public client gets no secret to set.
func TestFakePublicClient(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	stdout, stderr, env, status := startFake(t, ctx, "--registration", "../../examples/public-client.yaml", "--addr", "127.0.0.1:0")
	assert.NotContains(t, env, pleooauth.EnvClientSecret)
	assert.Len(t, env, 6, stdout.String())
	assert.Equal(t, exitOK, stopFake(t, cancel, status), "stderr: %s", stderr)
}

// TestFakeAddr: --addr picks the address; a wildcard one is printed as the
// loopback address.
func TestFakeAddr(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())

	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	_, stderr, env, status := startFake(t, ctx, "--registration", seed, "--addr", addr)
	assert.Equal(t, "http://"+addr, env[envAPIBaseURL])
	assert.Equal(t, exitOK, stopFake(t, cancel, status), "stderr: %s", stderr)

	ctx, cancel = context.WithCancel(t.Context())
	defer cancel()
	_, stderr, env, status = startFake(t, ctx, "--registration", seed, "--addr", ":0")
	assert.Regexp(t, baseShape, env[envAPIBaseURL])
	resp, err := http.Get(env[envAPIBaseURL] + pleoapi.EmployeesPath)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusUnauthorized, resp.StatusCode, "served, and protected")
	assert.Equal(t, exitOK, stopFake(t, cancel, status), "stderr: %s", stderr)
}

// TestFakeFails: fake stops at once, with validate's status for the same
// file, and 2 for an address it cannot listen on.
func TestFakeFails(t *testing.T) {
	t.Parallel()
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { busy.Close() }) // after the parallel subtests
	// A fake that starts by mistake stops at once rather than hang the test.
	done, cancel := context.WithCancel(t.Context())
	cancel()

	for _, tt := range []struct {
		name   string
		args   []string
		status int
		says   string
	}{
		{"invalid", []string{"--registration", "testdata/invalid.yaml"}, exitFindings, "testdata/invalid.yaml: invalid for staging ("},
		{"with a secret", []string{"--registration", "testdata/with-secret.yaml"}, exitFindings, "client_secret"},
		{"not YAML", []string{"--registration", "testdata/broken.yaml"}, exitUsage, "testdata/broken.yaml"},
		{"missing", []string{"--registration", "testdata/nope.yaml"}, exitUsage, "no such file"},
		{"no registration", nil, exitUsage, "give --registration FILE"},
		{"an argument", []string{"--registration", seed, "extra"}, exitUsage, "no other arguments"},
		{"no port", []string{"--registration", seed, "--addr", "127.0.0.1"}, exitUsage, `--addr "127.0.0.1": listen tcp: address 127.0.0.1: missing port in address`},
		{"address in use", []string{"--registration", seed, "--addr", busy.Addr().String()}, exitUsage, "--addr \"" + busy.Addr().String() + "\": listen tcp"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var stdout, stderr bytes.Buffer
			c := newCLI(nil, &stdout, &stderr)
			c.fakeContext = done
			status := c.run(append([]string{"fake"}, tt.args...))
			assert.Equal(t, tt.status, status, "stderr: %s", &stderr)
			assert.Empty(t, stdout.String(), "no environment printed")
			assert.Contains(t, stderr.String(), tt.says)
			assert.NotContains(t, stderr.String(), exampleSecret)
			if tt.status == exitFindings || tt.name == "not YAML" || tt.name == "missing" {
				validate, _, _ := runCLI(t, "", "validate", "--env", "staging", tt.args[1])
				assert.Equal(t, validate, status, "the status validate gives the file")
			}
		})
	}
}

// TestFakeStopsOnInterrupt sends the test process SIGINT while fake
// serves: fake, not the process, takes it. Not parallel: every fake
// running would stop.
func TestFakeStopsOnInterrupt(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("no SIGINT to send on Windows")
	}
	_, stderr, _, status := startFake(t, context.Background(), "--registration", seed)
	p, err := os.FindProcess(os.Getpid())
	require.NoError(t, err)
	require.NoError(t, p.Signal(os.Interrupt))
	select {
	case s := <-status:
		assert.Equal(t, exitOK, s, "stderr: %s", stderr)
	case <-time.After(10 * time.Second):
		t.Fatal("fake did not stop on SIGINT")
	}
	assert.Contains(t, stderr.String(), "pleo-oauth fake: stopped\n")
}

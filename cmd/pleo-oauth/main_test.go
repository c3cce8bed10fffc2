package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/golden")

const (
	seed          = "../../examples/registration.yaml"
	exampleSecret = "12345a6bcd789ef012abcd34ef5a6b"
)

// runCLI runs the command in-process and returns its status and streams.
func runCLI(t *testing.T, stdin string, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	status := run(args, strings.NewReader(stdin), &stdout, &stderr)
	return status, stdout.String(), stderr.String()
}

// TestGolden runs each case and compares its exit status, stdout and
// stderr with testdata/golden/<name>.txt. Rewrite them with:
//
//	go test ./cmd/pleo-oauth -run TestGolden -update
func TestGolden(t *testing.T) {
	t.Parallel()
	seedJSON, err := os.ReadFile("../../testdata/seed-example.json")
	require.NoError(t, err)
	seedYAML, err := os.ReadFile(seed)
	require.NoError(t, err)

	tests := []struct {
		name   string
		stdin  string
		args   []string
		status int
	}{
		// validate
		{"validate-seed", "", []string{"validate", seed}, 0},
		{"validate-seed-staging", "", []string{"validate", "--env", "staging", seed}, 0},
		{"validate-seed-json", "", []string{"validate", "--format", "json", seed}, 0},
		{"validate-seed-strict", "", []string{"validate", "--strict", seed}, 1},
		{"validate-loopback-staging", "", []string{"validate", "--env", "staging", "../../examples/staging-loopback.yaml"}, 0},
		{"validate-loopback-production", "", []string{"validate", "../../examples/staging-loopback.yaml"}, 1},
		{"validate-invalid", "", []string{"validate", "testdata/invalid.yaml"}, 1},
		{"validate-invalid-json", "", []string{"validate", "--format", "json", "testdata/invalid.yaml"}, 1},
		{"validate-directory", "", []string{"validate", "testdata"}, 2},
		{"validate-missing-file", "", []string{"validate", "testdata/nope.yaml"}, 2},
		{"validate-broken-yaml", "", []string{"validate", "testdata/broken.yaml"}, 2},
		{"validate-broken-yaml-json", "", []string{"validate", "--format", "json", "testdata/broken.yaml"}, 2},
		{"validate-json-extension-not-json", "", []string{"validate", "testdata/not-json.json"}, 2},
		{"validate-wrong-type", "", []string{"validate", "testdata/wrong-type.yaml"}, 1},
		{"validate-unknown-field", "", []string{"validate", "testdata/unknown-field.yaml"}, 1},
		{"validate-client-secret", "", []string{"validate", "testdata/with-secret.yaml"}, 1},
		{"validate-client-secret-json", "", []string{"validate", "--format", "json", "testdata/with-secret.yaml"}, 1},
		{"validate-several-files", "", []string{"validate", seed, "testdata/invalid.yaml", "testdata/broken.yaml", "../../examples/public-client.yaml"}, 2},
		{"validate-several-files-json", "", []string{"validate", "--format", "json", seed, "testdata/unknown-field.yaml"}, 1},
		{"validate-stdin-yaml", string(seedYAML), []string{"validate", "-"}, 0},
		{"validate-stdin-json", string(seedJSON), []string{"validate", "--format", "json", "-"}, 0},
		{"validate-stdin-garbage", "\x00\x01 not yaml: [", []string{"validate", "-"}, 2},
		{"validate-stdin-empty", "", []string{"validate", "-"}, 2},
		{"validate-no-file", "", []string{"validate"}, 2},
		{"validate-unknown-env", "", []string{"validate", "--env", "dev", seed}, 2},
		{"validate-unknown-format", "", []string{"validate", "--format", "xml", seed}, 2},
		{"validate-unknown-flag", "", []string{"validate", "--colour", seed}, 2},
		{"validate-help", "", []string{"validate", "-h"}, 0},
		{"validate-flags-after-file", "", []string{"validate", "../../examples/staging-loopback.yaml", "--env", "staging"}, 0},
		{"validate-flags-between-files", "", []string{"validate", seed, "--format", "json", "../../examples/staging-loopback.yaml"}, 1},
		{"validate-double-dash", "", []string{"validate", "--env", "staging", "--", "--env"}, 2},
		{"validate-hostile-yaml", "client_name: " + strings.Repeat("[", 131072), []string{"validate", "-"}, 2},
		{"validate-duplicate-yaml-key", "client_name: A\nclient_name: B\n", []string{"validate", "-"}, 1},
		// form
		{"form-seed", "", []string{"form", seed}, 0},
		{"form-seed-json", "", []string{"form", "--format", "json", seed}, 0},
		{"form-complete", "", []string{"form", "../../examples/complete.json"}, 0},
		{"form-public-client", "", []string{"form", "../../examples/public-client.yaml"}, 0},
		{"form-invalid", "", []string{"form", "testdata/invalid.yaml"}, 1},
		{"form-broken", "", []string{"form", "testdata/broken.yaml"}, 2},
		{"form-two-files", "", []string{"form", seed, seed}, 2},
		{"form-unknown-format", "", []string{"form", "--format", "html", seed}, 2},
		// scopes
		{"scopes", "", []string{"scopes"}, 0},
		{"scopes-json", "", []string{"scopes", "--format", "json"}, 0},
		{"scopes-argument", "", []string{"scopes", "users:read"}, 2},
		// logo
		{"logo-square-png", "", []string{"logo", "testdata/logo-square.png"}, 0},
		{"logo-square-svg", "", []string{"logo", "testdata/logo-square.svg"}, 0},
		{"logo-wide-png", "", []string{"logo", "testdata/logo-wide.png"}, 1},
		{"logo-not-an-image", "", []string{"logo", "testdata/broken.yaml"}, 1},
		{"logo-missing", "", []string{"logo", "testdata/nope.png"}, 2},
		{"logo-http-url", "", []string{"logo", "http://client.example/logo.png"}, 2},
		{"logo-no-argument", "", []string{"logo"}, 2},
		// fake (its serving is tested in fake_test.go)
		{"fake-help", "", []string{"fake", "-h"}, 0},
		{"fake-no-registration", "", []string{"fake"}, 2},
		{"fake-with-secret", "", []string{"fake", "--registration", "testdata/with-secret.yaml"}, 1},
		{"fake-bad-addr", "", []string{"fake", "--registration", seed, "--addr", "localhost"}, 2},
		// the command itself
		{"no-arguments", "", nil, 2},
		{"help", "", []string{"--help"}, 0},
		{"help-command", "", []string{"help"}, 0},
		{"help-validate", "", []string{"help", "validate"}, 0},
		{"help-unknown", "", []string{"help", "deploy"}, 2},
		{"unknown-command", "", []string{"deploy"}, 2},
		{"mistyped-command", "", []string{"valdiate", seed}, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			status, stdout, stderr := runCLI(t, tt.stdin, tt.args...)
			assert.Equal(t, tt.status, status, "stdout:\n%s\nstderr:\n%s", stdout, stderr)
			got := fmt.Sprintf("$ pleo-oauth %s\nexit status %d\n-- stdout --\n%s-- stderr --\n%s", strings.Join(tt.args, " "), status, stdout, stderr)
			golden := filepath.Join("testdata", "golden", tt.name+".txt")
			if *update {
				require.NoError(t, os.WriteFile(golden, []byte(got), 0o644))
			}
			want, err := os.ReadFile(golden)
			require.NoError(t, err, "run with -update to create it")
			assert.Equal(t, string(want), got)
			// The secret in testdata/with-secret.yaml never comes out.
			assert.NotContains(t, stdout+stderr, exampleSecret)
			if strings.Contains(strings.Join(tt.args, " "), "--format json") && tt.args[0] == "validate" {
				assertJSONLines(t, stdout)
			}
		})
	}
}

// assertJSONLines checks that out is one JSON object per line, each with
// the fields the contract names.
func assertJSONLines(t *testing.T, out string) {
	t.Helper()
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	for _, line := range lines {
		var obj map[string]json.RawMessage
		require.NoError(t, json.Unmarshal([]byte(line), &obj), line)
		for _, k := range []string{"file", "environment", "valid", "errors", "warnings"} {
			assert.Contains(t, obj, k)
		}
		assert.NotEqual(t, "null", string(obj["errors"]))
		assert.NotEqual(t, "null", string(obj["warnings"]))
	}
}

func TestVersion(t *testing.T) {
	t.Parallel()
	status, stdout, _ := runCLI(t, "", "--version")
	assert.Equal(t, 0, status)
	assert.Equal(t, "pleo-oauth version (devel) "+runtime.Version()+"\n", stdout)
}

func TestValidateJSONMatchesTheLibraryOrder(t *testing.T) {
	t.Parallel()
	status, stdout, _ := runCLI(t, "", "validate", "--format", "json", "testdata/invalid.yaml")
	require.Equal(t, 1, status)
	var res struct {
		Errors []struct{ Field, Rule string }
	}
	require.NoError(t, json.Unmarshal([]byte(stdout), &res))
	var got []string
	for _, e := range res.Errors {
		got = append(got, e.Field+":"+e.Rule)
	}
	assert.Equal(t, []string{
		"client_name:pleo_branding",
		"client_uri:https_required",
		"contacts[0]:not_bare_email",
		"redirect_uris[0]:fragment",
		"redirect_uris[1]:https_required",
		"scope:malformed_scope",
		"scope:scope_typo",
		"pkce_supported:pkce_required",
	}, got)
}

// TestCommandRulesAreErrors: the rules validate files about a file it
// cannot check are errors, as package pleooauth would mark them.
func TestCommandRulesAreErrors(t *testing.T) {
	t.Parallel()
	assert.False(t, ruleSyntaxError.Warning())
	assert.False(t, ruleUnreadable.Warning())
}

func TestUseColor(t *testing.T) {
	t.Parallel()
	env := func(vars map[string]string) func(string) string {
		return func(k string) string { return vars[k] }
	}
	var buf bytes.Buffer
	assert.False(t, useColor(&buf, env(nil)), "not a terminal")
	f, err := os.CreateTemp(t.TempDir(), "out")
	require.NoError(t, err)
	defer f.Close()
	assert.False(t, useColor(f, env(nil)), "a regular file is not a terminal")
	t.Run("terminal", func(t *testing.T) {
		tty, err := os.OpenFile("/dev/tty", os.O_WRONLY, 0)
		if err != nil {
			t.Skip("no terminal to check colour on (run the tests from one to check it):", err)
		}
		defer tty.Close()
		assert.True(t, useColor(tty, env(nil)))
		assert.False(t, useColor(tty, env(map[string]string{"NO_COLOR": "1"})))
		assert.False(t, useColor(tty, env(map[string]string{"TERM": "dumb"})))
	})

	// With colour, the severity is coloured and the columns stay aligned.
	var out bytes.Buffer
	res := validateFile(newCLI(nil, nil, nil), "testdata/invalid.yaml", "production", false)
	writeText(&out, true, res, false)
	assert.Contains(t, out.String(), "\x1b[31merror  \x1b[0m  client_name ")
	assert.Contains(t, out.String(), "\x1b[33mwarning\x1b[0m  logo_uri          is not set")
}

func TestLogoURL(t *testing.T) {
	square, err := os.ReadFile("testdata/logo-square.png")
	require.NoError(t, err)
	wide, err := os.ReadFile("testdata/logo-wide.png")
	require.NoError(t, err)
	mux := http.NewServeMux()
	mux.HandleFunc("/square.png", func(w http.ResponseWriter, _ *http.Request) { w.Write(square) })
	mux.HandleFunc("/wide.png", func(w http.ResponseWriter, _ *http.Request) { w.Write(wide) })
	mux.HandleFunc("/huge.png", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Length", fmt.Sprint(6<<20))
		w.Write(square)
	})
	mux.HandleFunc("/endless.png", func(w http.ResponseWriter, _ *http.Request) {
		// No Content-Length: the size bound is hit while reading.
		w.Write(square)
		chunk := make([]byte, 64<<10)
		for range 100 {
			if _, err := w.Write(chunk); err != nil {
				return
			}
		}
	})
	// /slow.png never answers while the test runs, whatever happens to the
	// connection: only the client's time bound can end the fetch.
	never := make(chan struct{})
	mux.HandleFunc("/slow.png", func(w http.ResponseWriter, r *http.Request) { <-never })
	mux.HandleFunc("/evil.png", func(w http.ResponseWriter, r *http.Request) {
		// A status line with terminal escape sequences in it.
		conn, buf, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer conn.Close()
		buf.WriteString("HTTP/1.1 502 \x1b[2J\x1b[31mclear screen\x07\r\nContent-Length: 0\r\n\r\n")
		buf.Flush()
	})
	mux.HandleFunc("/redirect.png", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/redirect.png", http.StatusFound)
	})
	mux.HandleFunc("/missing.png", http.NotFound)
	srv := httptest.NewTLSServer(mux)
	defer srv.Close()
	defer close(never) // before Close, which waits for handlers

	// The command's logo client, trusting the test server's certificate.
	client := srv.Client()
	client.CheckRedirect = newLogoClient().CheckRedirect
	logo := func(timeout time.Duration, path string) (int, string, string) {
		var stdout, stderr bytes.Buffer
		c := newCLI(nil, &stdout, &stderr)
		c.logoClient, c.logoTimeout = client, timeout
		return c.run([]string{"logo", srv.URL + path}), stdout.String(), stderr.String()
	}

	for _, tt := range []struct {
		path   string
		status int
		says   string
	}{
		{"/square.png", 0, "square, as Pleo asks"},
		{"/wide.png", 1, "120x60 pixels"},
		{"/huge.png", 1, "over the 5 MiB size bound"},
		{"/endless.png", 1, "larger than 5 MiB"},
		{"/redirect.png", 2, "stopped after 3 redirects (the redirect bound)"},
		{"/missing.png", 2, "the server answered 404 Not Found"},
		{"/evil.png", 2, `the server answered 502 \x1b[2J\x1b[31mclear screen\a`},
	} {
		// Generous: only /slow.png, which never answers, may meet the bound.
		status, stdout, stderr := logo(time.Minute, tt.path)
		assert.Equal(t, tt.status, status, "%s: %s %s", tt.path, stdout, stderr)
		assert.Contains(t, stdout+stderr, tt.says, tt.path)
		assert.NotContains(t, stdout+stderr, "\x1b", "%s: nothing from the network reaches the terminal raw", tt.path)
	}

	status, stdout, stderr := logo(50*time.Millisecond, "/slow.png")
	assert.Equal(t, 2, status, "%s %s", stdout, stderr)
	assert.Contains(t, stderr, "gave up after 50ms (the time bound)")
}

// FuzzValidateJSON feeds arbitrary bytes through 'validate --format json'
// on standard input: the output is always one JSON object and the status
// is 0, 1 or 2, agreeing with "valid".
func FuzzValidateJSON(f *testing.F) {
	for _, name := range []string{seed, "../../examples/public-client.yaml", "../../testdata/seed-example.json", "testdata/broken.yaml", "testdata/wrong-type.yaml", "testdata/with-secret.yaml", "testdata/invalid.yaml"} {
		data, err := os.ReadFile(name)
		require.NoError(f, err)
		f.Add(data)
	}
	f.Add([]byte("\x00"))
	f.Fuzz(func(t *testing.T, data []byte) {
		var stdout, stderr bytes.Buffer
		status := run([]string{"validate", "--format", "json", "-"}, bytes.NewReader(data), &stdout, &stderr)
		if status < 0 || status > 2 {
			t.Fatalf("exit status %d", status)
		}
		out := stdout.Bytes()
		if bytes.Count(out, []byte("\n")) != 1 || !bytes.HasSuffix(out, []byte("\n")) {
			t.Fatalf("want one line, got %q", out)
		}
		var res struct {
			File     string
			Valid    bool
			Errors   []map[string]string
			Warnings []map[string]string
		}
		if err := json.Unmarshal(out, &res); err != nil {
			t.Fatalf("not JSON: %v: %q", err, out)
		}
		if res.Valid != (status == 0) || res.File != "-" || res.Errors == nil || res.Warnings == nil {
			t.Fatalf("status %d disagrees with %q", status, out)
		}
	})
}

// TestREADMEUsage: the README's usage block is what 'pleo-oauth help'
// prints, line for line.
func TestREADMEUsage(t *testing.T) {
	t.Parallel()
	readme, err := os.ReadFile("../../README.md")
	require.NoError(t, err)
	_, block, found := strings.Cut(string(readme), "## The pleo-oauth command\n\n```\n")
	require.True(t, found, "the README has no usage block")
	block, _, _ = strings.Cut(block, "```")
	var help bytes.Buffer
	usage(&help)
	var synopsis []string
	for line := range strings.Lines(help.String()) {
		if s, ok := strings.CutPrefix(line, "\tpleo-oauth "); ok {
			synopsis = append(synopsis, "pleo-oauth "+s)
		}
	}
	assert.Equal(t, strings.Join(synopsis, ""), block)
}

package pleooauth

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The example values from Pleo's registration page.
const (
	exampleClientID     = "12a3b456-78c9-0d12-34e5-f678ab9bcd0e"
	exampleClientSecret = "12345a6bcd789ef012abcd34ef5a6b"
)

// assertNoSecret fails if out holds the secret in any common encoding.
func assertNoSecret(t *testing.T, what, out, secret string) {
	t.Helper()
	for _, enc := range []string{
		secret,
		hex.EncodeToString([]byte(secret)),
		strings.ToUpper(hex.EncodeToString([]byte(secret))),
		base64.StdEncoding.EncodeToString([]byte(secret)),
		fmt.Sprint([]byte(secret)), // %d of the bytes
		secret[:12],                // a prefix is a leak too
	} {
		assert.NotContains(t, out, enc, "%s leaks the secret: %s", what, out)
	}
}

func TestSecretNeverLeaks(t *testing.T) {
	t.Parallel()
	creds, err := NewCredentials(exampleClientID, exampleClientSecret)
	require.NoError(t, err)
	type withCredentials struct {
		Registration *Registration
		Credentials  Credentials
		Pointer      *Credentials
		Secrets      []Secret
		Map          map[string]Secret
	}
	type unexported struct {
		creds  Credentials
		secret Secret
	}
	reg := seedExample()
	values := map[string]any{
		"Credentials":           creds,
		"*Credentials":          &creds,
		"Secret":                creds.ClientSecret,
		"*Secret":               &creds.ClientSecret,
		"registration+creds":    withCredentials{reg, creds, &creds, []Secret{creds.ClientSecret}, map[string]Secret{"k": creds.ClientSecret}},
		"unexported fields":     unexported{creds, creds.ClientSecret},
		"PKCE with this secret": PKCE{Verifier: NewSecret(exampleClientSecret)},
	}
	for name, v := range values {
		for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d", "%T %v"} {
			out := fmt.Sprintf(verb, v)
			assertNoSecret(t, name+" "+verb, out, exampleClientSecret)
		}
		assertNoSecret(t, name+" Sprint", fmt.Sprint(v), exampleClientSecret)
		assertNoSecret(t, name+" Sprintln", fmt.Sprintln(v), exampleClientSecret)

		data, err := json.Marshal(v)
		require.NoError(t, err, name)
		assertNoSecret(t, name+" JSON", string(data), exampleClientSecret)

		if xmlData, err := xml.Marshal(v); err == nil {
			assertNoSecret(t, name+" XML", string(xmlData), exampleClientSecret)
		}

		for handler, newHandler := range map[string]func(*bytes.Buffer) slog.Handler{
			"text": func(b *bytes.Buffer) slog.Handler { return slog.NewTextHandler(b, nil) },
			"json": func(b *bytes.Buffer) slog.Handler { return slog.NewJSONHandler(b, nil) },
		} {
			var buf bytes.Buffer
			logger := slog.New(newHandler(&buf))
			logger.Info("loaded", "value", v)
			logger.Info("grouped", slog.Group("g", slog.Any("value", v)))
			logger.With("ctx", v).Info("with")
			assertNoSecret(t, name+" slog "+handler, buf.String(), exampleClientSecret)
			assert.Contains(t, buf.String(), "loaded")
		}
	}
	// The redaction is visible, not an empty string.
	assert.Equal(t, "[REDACTED]", fmt.Sprint(creds.ClientSecret))
	assert.Equal(t, `{"client_id":"`+exampleClientID+`","client_secret":"[REDACTED]"}`, mustJSON(t, creds))
	assert.Equal(t, "{"+exampleClientID+" [REDACTED]}", fmt.Sprintf("%v", creds))
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	data, err := json.Marshal(v)
	require.NoError(t, err)
	return string(data)
}

func TestSecretReveal(t *testing.T) {
	t.Parallel()
	s := NewSecret(exampleClientSecret)
	assert.Equal(t, exampleClientSecret, s.Reveal())
	assert.False(t, s.IsZero())
	var zero Secret
	assert.True(t, zero.IsZero())
	assert.Equal(t, "", zero.Reveal())
	assert.Equal(t, "[REDACTED]", fmt.Sprint(zero))
	assert.True(t, s.Equal(NewSecret(exampleClientSecret)))
	assert.False(t, s.Equal(NewSecret(exampleClientSecret+"x")))
	assert.False(t, s.Equal(zero))
	assert.True(t, zero.Equal(Secret{}))
}

// TestSecretDeepEqual: reflect.DeepEqual, and so testify's assert.Equal,
// tells secrets apart by value, both ways, also inside Credentials.
func TestSecretDeepEqual(t *testing.T) {
	t.Parallel()
	// Same length and first letter: a pointer to the first byte would see
	// these as equal.
	a, b := NewSecret("s3cret-aaaa"), NewSecret("s3cret-bbbb")
	assert.False(t, reflect.DeepEqual(a, b))
	assert.NotEqual(t, a, b)
	// Equal values in different strings are equal.
	same := NewSecret(strings.Clone("s3cret-aaaa"))
	assert.True(t, reflect.DeepEqual(a, same))
	assert.Equal(t, a, same)
	assert.True(t, reflect.DeepEqual(Secret{}, NewSecret("")))
	assert.False(t, reflect.DeepEqual(Secret{}, a))

	loaded := Credentials{ClientID: exampleClientID, ClientSecret: NewSecret("s3cret-aaaa")}
	want := Credentials{ClientID: exampleClientID, ClientSecret: NewSecret("s3cret-bbbb")}
	assert.False(t, reflect.DeepEqual(loaded, want), "credentials with other secrets must not be equal")
	want.ClientSecret = NewSecret("s3cret-aaaa")
	assert.True(t, reflect.DeepEqual(loaded, want))
}

func TestNewCredentials(t *testing.T) {
	t.Parallel()
	c, err := NewCredentials(exampleClientID, exampleClientSecret)
	require.NoError(t, err)
	assert.Equal(t, exampleClientID, c.ClientID)
	assert.True(t, c.HasSecret())

	// Not UUID-shaped: accepted, Pleo states no format.
	c, err = NewCredentials("my-client", "")
	require.NoError(t, err)
	assert.False(t, c.HasSecret(), "a public client has no secret")

	for _, tt := range []struct{ id, secret, says string }{
		{"", exampleClientSecret, "client ID is empty"},
		{"id with space", exampleClientSecret, "client ID contains white space"},
		{"id\n", exampleClientSecret, "client ID contains white space"},
		{exampleClientID, exampleClientSecret + " ", "client secret contains white space"},
		{exampleClientID, "\x00" + exampleClientSecret, "client secret contains white space or control"},
	} {
		_, err := NewCredentials(tt.id, tt.secret)
		require.ErrorIs(t, err, ErrInvalidCredentials)
		assert.Contains(t, err.Error(), tt.says)
		assertNoSecret(t, "error", err.Error(), exampleClientSecret)
	}
}

func TestCredentialsFromEnv(t *testing.T) {
	dir := t.TempDir()
	secretFile := filepath.Join(dir, "secret")
	require.NoError(t, os.WriteFile(secretFile, []byte(exampleClientSecret+"\n"), 0o600))
	emptyFile := filepath.Join(dir, "empty")
	require.NoError(t, os.WriteFile(emptyFile, []byte("\n"), 0o600))
	hugeFile := filepath.Join(dir, "huge")
	require.NoError(t, os.WriteFile(hugeFile, bytes.Repeat([]byte("a"), maxSecretFileBytes+1), 0o600))

	tests := []struct {
		name       string
		env        map[string]string
		wantSecret string
		err        string
	}{
		{name: "id and secret", env: map[string]string{EnvClientID: exampleClientID, EnvClientSecret: exampleClientSecret}, wantSecret: exampleClientSecret},
		{name: "id and secret file", env: map[string]string{EnvClientID: exampleClientID, EnvClientSecretFile: secretFile}, wantSecret: exampleClientSecret},
		{name: "public client", env: map[string]string{EnvClientID: exampleClientID}},
		{name: "no id", env: map[string]string{EnvClientSecret: exampleClientSecret}, err: "PLEO_CLIENT_ID is not set"},
		{name: "both secrets", env: map[string]string{EnvClientID: exampleClientID, EnvClientSecret: exampleClientSecret, EnvClientSecretFile: secretFile}, err: "both PLEO_CLIENT_SECRET and PLEO_CLIENT_SECRET_FILE are set"},
		{name: "empty secret", env: map[string]string{EnvClientID: exampleClientID, EnvClientSecret: ""}, err: "PLEO_CLIENT_SECRET is set but empty"},
		{name: "missing file", env: map[string]string{EnvClientID: exampleClientID, EnvClientSecretFile: filepath.Join(dir, "nope")}, err: "reading PLEO_CLIENT_SECRET_FILE"},
		{name: "empty file", env: map[string]string{EnvClientID: exampleClientID, EnvClientSecretFile: emptyFile}, err: "is empty"},
		{name: "file over the bound", env: map[string]string{EnvClientID: exampleClientID, EnvClientSecretFile: hugeFile}, err: "larger than 4096 bytes"},
		{name: "secret with a space", env: map[string]string{EnvClientID: exampleClientID, EnvClientSecret: exampleClientSecret + " x"}, err: "client secret contains white space"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, k := range []string{EnvClientID, EnvClientSecret, EnvClientSecretFile} {
				t.Setenv(k, "")
				os.Unsetenv(k)
			}
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			c, err := CredentialsFromEnv()
			if tt.err != "" {
				require.ErrorIs(t, err, ErrInvalidCredentials)
				assert.Contains(t, err.Error(), tt.err)
				assertNoSecret(t, "error", err.Error(), exampleClientSecret)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, exampleClientID, c.ClientID)
			assert.Equal(t, tt.wantSecret, c.ClientSecret.Reveal())
		})
	}
}

// TestMissingSecretNamesItsVariables: a confidential client whose
// credentials came from an environment without a secret is refused with an
// error naming both variables the secret can come from, as a missing ID
// names PLEO_CLIENT_ID. No error here shows a secret.
func TestMissingSecretNamesItsVariables(t *testing.T) {
	for _, k := range []string{EnvClientID, EnvClientSecret, EnvClientSecretFile} {
		t.Setenv(k, "")
		os.Unsetenv(k)
	}
	t.Setenv(EnvClientID, exampleClientID)
	creds, err := CredentialsFromEnv()
	require.NoError(t, err, "no secret: credentials as for a public client")
	require.False(t, creds.HasSecret())

	for _, method := range []AuthMethod{"", AuthClientSecretBasic, AuthClientSecretPost} {
		r := seedExample()
		r.TokenEndpointAuthMethod = method
		_, err = r.OAuth2Config(Staging, creds)
		require.ErrorIs(t, err, ErrMissingSecret, "%q", method)
		assert.Contains(t, err.Error(), "PLEO_CLIENT_SECRET ", "%q", method)
		assert.Contains(t, err.Error(), "PLEO_CLIENT_SECRET_FILE", "%q", method)
	}

	// The errors around a secret that is there name the variables and
	// never the value.
	t.Setenv(EnvClientSecret, exampleClientSecret)
	creds, err = CredentialsFromEnv()
	require.NoError(t, err)
	r := seedExample()
	r.TokenEndpointAuthMethod = AuthNone
	r.PKCESupported = true
	_, err = r.OAuth2Config(Staging, creds)
	require.ErrorIs(t, err, ErrUnexpectedSecret)
	assertNoSecret(t, "unexpected secret", err.Error(), exampleClientSecret)
	t.Setenv(EnvClientSecret, exampleClientSecret+"\n")
	_, err = CredentialsFromEnv()
	require.ErrorIs(t, err, ErrInvalidCredentials)
	assertNoSecret(t, "secret with a newline", err.Error(), exampleClientSecret)
}

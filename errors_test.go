package pleooauth

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// sentinels are the sentinel errors of errors.go.
var sentinels = []error{
	ErrInvalidRegistration, ErrUnknownEnvironment, ErrInvalidCredentials,
	ErrMissingSecret, ErrUnexpectedSecret, ErrRedirectNotRegistered, ErrScopeNotRegistered,
	ErrInvalidScope,
}

func TestSentinelErrors(t *testing.T) {
	t.Parallel()
	for i, err := range sentinels {
		msg := err.Error()
		assert.True(t, strings.HasPrefix(msg, "pleooauth: "), msg)
		assert.False(t, strings.HasSuffix(msg, "."), "no trailing punctuation: %s", msg)
		for j, other := range sentinels {
			assert.Equal(t, i == j, errors.Is(err, other), "%v is %v", err, other)
		}
	}
}

func TestErrorTypes(t *testing.T) {
	t.Parallel()
	assert.ErrorIs(t, ValidationErrors{{Field: "scope", Rule: RuleRequired, Message: "scope is required"}}, ErrInvalidRegistration)
	var serr *SyntaxError
	assert.ErrorAs(t, fmt.Errorf("wrapped: %w", &SyntaxError{Line: 1, Column: 2, Msg: "x"}), &serr)
	assert.Equal(t, &SyntaxError{Line: 1, Column: 2, Msg: "x"}, serr)
	for _, s := range sentinels {
		assert.NotErrorIs(t, &SyntaxError{}, s)
	}
	assert.Equal(t, "pleooauth: scope is required", FieldError{Field: "scope", Rule: RuleRequired, Message: "scope is required"}.Error())
	assert.Equal(t, "pleooauth: registration is not valid JSON or YAML: line 1, column 2: x", (&SyntaxError{Line: 1, Column: 2, Msg: "x"}).Error())
	assert.Equal(t, "pleooauth: registration is not valid JSON or YAML: the document is empty", (&SyntaxError{Msg: "the document is empty"}).Error())
}

// TestSentinelsWhereDocumented calls each function where errors.go and the
// functions' own documentation say a sentinel is returned, and checks that
// it matches that sentinel and no other.
func TestSentinelsWhereDocumented(t *testing.T) {
	t.Setenv(EnvClientID, "")
	t.Setenv(EnvClientSecret, "")
	publicReg := seedExample()
	publicReg.TokenEndpointAuthMethod = AuthNone
	secret, err := NewCredentials("client", "secret-0123456789")
	require.NoError(t, err)
	noSecret, err := NewCredentials("client", "")
	require.NoError(t, err)
	config := func(r *Registration, env Environment, creds Credentials, opts ...ConfigOption) func() error {
		return func() error { _, err := r.OAuth2Config(env, creds, opts...); return err }
	}
	parse := func(doc string) func() error {
		return func() error { _, err := ParseRegistration([]byte(doc)); return err }
	}
	tests := []struct {
		where string
		want  error
		call  func() error
	}{
		{"Registration.Validate", ErrInvalidRegistration, func() error { return (&Registration{}).Validate(Staging) }},
		{"Report.Err", ErrInvalidRegistration, func() error { return (&Registration{}).Check(Staging).Err() }},
		{"ParseRegistration, a wrong type", ErrInvalidRegistration, parse(`{"client_name": 1}`)},
		{"Registration.OAuth2Config, an invalid registration", ErrInvalidRegistration, config(&Registration{}, Staging, secret)},
		{"ParseEnvironment", ErrUnknownEnvironment, func() error { _, err := ParseEnvironment("prod"); return err }},
		{"Environment.Endpoints", ErrUnknownEnvironment, func() error { _, err := Environment("dev").Endpoints(); return err }},
		{"Registration.OAuth2Config, an unknown environment", ErrUnknownEnvironment, config(seedExample(), "dev", secret)},
		{"NewCredentials, empty client ID", ErrInvalidCredentials, func() error { _, err := NewCredentials("", "s"); return err }},
		{"NewCredentials, white space", ErrInvalidCredentials, func() error { _, err := NewCredentials("client", "sec ret"); return err }},
		{"CredentialsFromEnv, nothing set", ErrInvalidCredentials, func() error { _, err := CredentialsFromEnv(); return err }},
		{"Registration.OAuth2Config, a confidential client without a secret", ErrMissingSecret, config(seedExample(), Staging, noSecret)},
		{"Registration.OAuth2Config, a public client with a secret", ErrUnexpectedSecret, config(publicReg, Staging, secret)},
		{"WithRedirectURL", ErrRedirectNotRegistered, config(seedExample(), Staging, secret, WithRedirectURL("https://client.example/other"))},
		{"WithScopes", ErrScopeNotRegistered, config(seedExample(), Staging, secret, WithScopes("expenses:read"))},
		{"ParseScopes", ErrInvalidScope, func() error { _, err := ParseScopes("users:read Users"); return err }},
	}
	covered := map[error]bool{}
	for _, tt := range tests {
		err := tt.call()
		require.Error(t, err, tt.where)
		for _, s := range sentinels {
			assert.Equal(t, s == tt.want, errors.Is(err, s), "%s: %v, matching %v", tt.where, err, s)
		}
		covered[tt.want] = true
	}
	for _, s := range sentinels {
		assert.True(t, covered[s], "no call returns %v", s)
	}

	// Input that is not JSON or YAML at all is a *SyntaxError, which
	// matches no sentinel.
	for _, tt := range []struct {
		where string
		call  func() error
	}{
		{"ParseRegistration, not JSON or YAML", parse(`{"client_name": `)},
		{"ParseAndCheck, not JSON or YAML", func() error { _, _, err := ParseAndCheck([]byte("- a\n- b\n"), Staging); return err }},
	} {
		err := tt.call()
		var serr *SyntaxError
		require.ErrorAs(t, err, &serr, tt.where)
		for _, s := range sentinels {
			assert.NotErrorIs(t, err, s, "%s: %v, matching %v", tt.where, err, s)
		}
	}
}

package pkceverify

import (
	"errors"
	"strings"
	"testing"

	"github.com/partnerkit/pleooauth"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// RFC 7636 Appendix B.
const (
	rfcVerifier  = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
	rfcChallenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
)

func TestRFC7636AppendixB(t *testing.T) {
	t.Parallel()
	require.NoError(t, S256(rfcVerifier, rfcChallenge))
}

// TestNewPKCEVerifies: every pair pleooauth.NewPKCE makes passes the
// server's check.
func TestNewPKCEVerifies(t *testing.T) {
	t.Parallel()
	for range 100 {
		p := pleooauth.NewPKCE()
		require.NoError(t, S256(p.Verifier.Reveal(), p.Challenge))
	}
}

func TestS256(t *testing.T) {
	t.Parallel()
	other := pleooauth.NewPKCE()
	assert.ErrorIs(t, S256(other.Verifier.Reveal(), rfcChallenge), ErrMismatch)
	// plain: the verifier itself as challenge must not pass.
	assert.Error(t, S256(rfcVerifier, rfcVerifier))
	assert.ErrorIs(t, S256("short", rfcChallenge), ErrInvalid)
	assert.ErrorIs(t, S256(rfcVerifier, rfcChallenge+"="), ErrInvalid)
	assert.ErrorIs(t, S256(rfcVerifier, strings.Replace(rfcChallenge, "-", "+", 1)), ErrInvalid)
	assert.ErrorIs(t, S256(rfcVerifier, ""), ErrInvalid)
	err := S256(other.Verifier.Reveal(), rfcChallenge)
	assert.NotContains(t, err.Error(), other.Verifier.Reveal())
	assert.NotContains(t, err.Error(), rfcChallenge)
}

// sentinels are every sentinel an S256 error could be confused with: this
// package's and pleooauth's.
var sentinels = []error{
	ErrMismatch,
	pleooauth.ErrInvalidRegistration, pleooauth.ErrUnknownEnvironment, pleooauth.ErrInvalidCredentials,
	pleooauth.ErrMissingSecret, pleooauth.ErrUnexpectedSecret, pleooauth.ErrRedirectNotRegistered,
	pleooauth.ErrScopeNotRegistered, pleooauth.ErrInvalidScope, ErrInvalid,
}

func TestSentinels(t *testing.T) {
	t.Parallel()
	for _, err := range []error{ErrMismatch, ErrInvalid} {
		msg := err.Error()
		assert.True(t, strings.HasPrefix(msg, "pkceverify: "), msg)
		assert.False(t, strings.HasSuffix(msg, "."), "no trailing punctuation: %s", msg)
		for _, s := range sentinels {
			assert.Equal(t, s == err, errors.Is(err, s), "%v is %v", err, s)
		}
	}
}

// TestSentinelsWhereDocumented: each S256 failure matches the sentinel its
// documentation names, and no other.
func TestSentinelsWhereDocumented(t *testing.T) {
	t.Parallel()
	other := pleooauth.NewPKCE()
	for _, tt := range []struct {
		where string
		want  error
		call  func() error
	}{
		{"S256, a malformed verifier", ErrInvalid, func() error { return S256("too-short", other.Challenge) }},
		{"Verifier", ErrInvalid, func() error { return Verifier("too-short") }},
		{"Challenge", ErrInvalid, func() error { return Challenge("too-short") }},
		{"S256, another verifier", ErrMismatch, func() error { return S256(pleooauth.NewPKCE().Verifier.Reveal(), other.Challenge) }},
	} {
		err := tt.call()
		require.Error(t, err, tt.where)
		for _, s := range sentinels {
			assert.Equal(t, s == tt.want, errors.Is(err, s), "%s: %v, matching %v", tt.where, err, s)
		}
	}
}

func TestVerifier(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		v    string
		says string
	}{
		{strings.Repeat("a", 42), "42 characters long"},
		{strings.Repeat("a", 129), "129 characters long"},
		{"", "0 characters long"},
		{strings.Repeat("a", 42) + "+", "character 43"},
		{strings.Repeat("a", 42) + "=", "character 43"},
		{"é" + strings.Repeat("a", 42), "character 1"},
	} {
		err := Verifier(tt.v)
		require.ErrorIs(t, err, ErrInvalid, tt.v)
		assert.Contains(t, err.Error(), tt.says)
		if len(tt.v) > 0 {
			assert.NotContains(t, err.Error(), tt.v)
		}
	}
	for _, v := range []string{strings.Repeat("a", 43), strings.Repeat("~", 128), "AZaz09-._~" + strings.Repeat("x", 33)} {
		assert.NoError(t, Verifier(v), v)
	}
}

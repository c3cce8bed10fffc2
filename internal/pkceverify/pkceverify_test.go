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
	assert.ErrorIs(t, S256("short", rfcChallenge), pleooauth.ErrInvalidVerifier)
	assert.ErrorIs(t, S256(rfcVerifier, rfcChallenge+"="), pleooauth.ErrInvalidVerifier)
	assert.ErrorIs(t, S256(rfcVerifier, strings.Replace(rfcChallenge, "-", "+", 1)), pleooauth.ErrInvalidVerifier)
	assert.ErrorIs(t, S256(rfcVerifier, ""), pleooauth.ErrInvalidVerifier)
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
	pleooauth.ErrScopeNotRegistered, pleooauth.ErrInvalidScope, pleooauth.ErrInvalidVerifier,
}

func TestErrMismatch(t *testing.T) {
	t.Parallel()
	msg := ErrMismatch.Error()
	assert.True(t, strings.HasPrefix(msg, "pkceverify: "), msg)
	assert.False(t, strings.HasSuffix(msg, "."), "no trailing punctuation: %s", msg)
	for _, s := range sentinels {
		assert.Equal(t, s == ErrMismatch, errors.Is(ErrMismatch, s), "%v is %v", ErrMismatch, s)
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
		{"S256, a malformed verifier", pleooauth.ErrInvalidVerifier, func() error { return S256("too-short", other.Challenge) }},
		{"S256, another verifier", ErrMismatch, func() error { return S256(pleooauth.NewPKCE().Verifier.Reveal(), other.Challenge) }},
	} {
		err := tt.call()
		require.Error(t, err, tt.where)
		for _, s := range sentinels {
			assert.Equal(t, s == tt.want, errors.Is(err, s), "%s: %v, matching %v", tt.where, err, s)
		}
	}
}

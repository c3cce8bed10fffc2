package pleooauth

import (
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestSentinelErrors(t *testing.T) {
	t.Parallel()
	sentinels := []error{
		ErrInvalidRegistration, ErrSyntax, ErrUnknownEnvironment, ErrInvalidCredentials,
		ErrMissingSecret, ErrUnexpectedSecret, ErrRedirectNotRegistered, ErrScopeNotRegistered,
		ErrInvalidScope, ErrInvalidVerifier, ErrVerifierMismatch,
	}
	for i, err := range sentinels {
		msg := err.Error()
		assert.True(t, strings.HasPrefix(msg, "pleooauth: "), msg)
		assert.False(t, strings.HasSuffix(msg, "."), "no trailing punctuation: %s", msg)
		for j, other := range sentinels {
			assert.Equal(t, i == j, errors.Is(err, other), "%v is %v", err, other)
		}
	}
}

func TestErrorTypesMatchTheirSentinels(t *testing.T) {
	t.Parallel()
	assert.ErrorIs(t, ValidationErrors{{Field: "scope", Rule: RuleRequired, Message: "scope is required"}}, ErrInvalidRegistration)
	assert.ErrorIs(t, &SyntaxError{Line: 1, Column: 2, Msg: "x"}, ErrSyntax)
	assert.NotErrorIs(t, &SyntaxError{}, ErrInvalidRegistration)
	assert.Equal(t, "pleooauth: registration is not valid JSON or YAML: line 1, column 2: x", (&SyntaxError{Line: 1, Column: 2, Msg: "x"}).Error())
	assert.Equal(t, "pleooauth: registration is not valid JSON or YAML: the document is empty", (&SyntaxError{Msg: "the document is empty"}).Error())
}

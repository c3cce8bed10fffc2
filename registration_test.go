package pleooauth

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestRegistrationJSONIsFlat(t *testing.T) {
	t.Parallel()
	data, err := json.Marshal(seedExample())
	require.NoError(t, err)
	assert.JSONEq(t, `{
		"client_name": "Example Client",
		"client_uri": "https://client.example/",
		"tos_uri": "https://client.example/legal/tos.html",
		"policy_uri": "https://client.example/legal/privacy.pdf",
		"contacts": ["name.surname@example.io"],
		"redirect_uris": ["https://client.example/callback"],
		"scope": "users:read users:write",
		"pkce_supported": true,
		"subject_type": "none"
	}`, string(data))

	// And it parses back to the same registration.
	back, err := ParseRegistration(data)
	require.NoError(t, err)
	assert.Equal(t, seedExample(), back)
}

func TestParseEnvironment(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]Environment{"staging": Staging, "Production": Production, " STAGING ": Staging} {
		got, err := ParseEnvironment(in)
		require.NoError(t, err)
		assert.Equal(t, want, got)
	}
	_, err := ParseEnvironment("prod")
	require.ErrorIs(t, err, ErrUnknownEnvironment)
	assert.Equal(t, `pleooauth: unknown environment "prod": use "staging" or "production"`, err.Error())
}

func TestAuthMethodDefault(t *testing.T) {
	t.Parallel()
	r := seedExample()
	assert.Equal(t, AuthClientSecretBasic, r.AuthMethod())
	assert.False(t, r.IsPublic())
	r.TokenEndpointAuthMethod = AuthNone
	assert.True(t, r.IsPublic())
}

package examplereg

import (
	"testing"

	"github.com/partnerkit/pleooauth"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestRegistrationChecks(t *testing.T) {
	t.Parallel()
	for _, env := range []pleooauth.Environment{pleooauth.Staging, pleooauth.Production} {
		report := New("users:read", "https://client.example/callback").Check(env)
		require.NoError(t, report.Err(), "%s", env)
		var warned []string
		for _, w := range report.Warnings {
			warned = append(warned, w.Field+":"+string(w.Rule))
		}
		assert.Equal(t, []string{"logo_uri:missing_recommended", "initiation_uri:missing_recommended", "settings_uri:missing_recommended"}, warned, "%s", env)
	}
	require.NoError(t, New("users:read", "http://127.0.0.1:8080/callback").Validate(pleooauth.Staging))
}

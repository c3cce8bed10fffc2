package sqlitestore_test

import (
	"path/filepath"
	"testing"

	"github.com/partnerkit/pleooauth/connect"
	"github.com/partnerkit/pleooauth/connect/sqlitestore"
	"github.com/partnerkit/pleooauth/connect/storetest"
	"github.com/stretchr/testify/require"
)

func open(t *testing.T) *sqlitestore.Store {
	t.Helper()
	s, err := sqlitestore.Open(t.Context(), filepath.Join(t.TempDir(), "connections.db"))
	require.NoError(t, err)
	t.Cleanup(func() { s.Close() })
	return s
}

func TestStore(t *testing.T) {
	storetest.Run(t, func(t *testing.T) connect.Store { return open(t) })
}

func TestOpenTwiceMigratesOnce(t *testing.T) {
	path := filepath.Join(t.TempDir(), "connections.db")
	for range 2 {
		s, err := sqlitestore.Open(t.Context(), path)
		require.NoError(t, err)
		var n int
		require.NoError(t, s.DB().QueryRow(`SELECT COUNT(*) FROM pleooauth_schema_migrations`).Scan(&n))
		require.Equal(t, 1, n)
		require.NoError(t, s.Close())
	}
}

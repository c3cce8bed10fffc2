package pgstore_test

import (
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/partnerkit/pleooauth/connect"
	"github.com/partnerkit/pleooauth/connect/pgstore"
	"github.com/partnerkit/pleooauth/connect/storetest"
	"github.com/partnerkit/pleooauth/internal/pgtest"
	"github.com/stretchr/testify/require"
)

func pool(t *testing.T) *pgxpool.Pool {
	t.Helper()
	p, err := pgxpool.New(t.Context(), pgtest.Database(t))
	require.NoError(t, err)
	t.Cleanup(p.Close)
	return p
}

func TestStore(t *testing.T) {
	storetest.Run(t, func(t *testing.T) connect.Store {
		s, err := pgstore.New(t.Context(), pool(t))
		require.NoError(t, err)
		return s
	})
}

func TestNewMigratesOnceWhenInstancesStartTogether(t *testing.T) {
	p := pool(t)
	errs := make(chan error, 4)
	for range 4 {
		go func() {
			_, err := pgstore.New(t.Context(), p)
			errs <- err
		}()
	}
	for range 4 {
		require.NoError(t, <-errs)
	}
	var n int
	require.NoError(t, p.QueryRow(t.Context(), `SELECT COUNT(*) FROM pleooauth_schema_migrations`).Scan(&n))
	require.Equal(t, 1, n)
}

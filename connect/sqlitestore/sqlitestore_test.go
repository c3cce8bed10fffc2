package sqlitestore_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/partnerkit/pleooauth/connect"
	"github.com/partnerkit/pleooauth/connect/internal/sqlstore/sqlstoretest"
	"github.com/partnerkit/pleooauth/connect/sqlitestore"
	"github.com/partnerkit/pleooauth/connect/storetest"
	"github.com/stretchr/testify/assert"
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
		require.Equal(t, 4, n)
		require.NoError(t, s.Close())
	}
}

// TestOpenTakesThePathLiterally: Open passes SQLite a "file:" URI, in
// which '?' starts the query, '#' the fragment and %XX is an escape; a
// path holding them must still open that very file, with the store's
// pragmas.
func TestOpenTakesThePathLiterally(t *testing.T) {
	for _, name := range []string{"a#b.db", "a?b.db", "a%25b.db", "a b.db", "x?_pragma=busy_timeout(1)#y %2F.db"} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, name)
			s, err := sqlitestore.Open(t.Context(), path)
			require.NoError(t, err)
			defer s.Close()
			_, err = s.Put(t.Context(), &connect.Record{Connection: connect.Connection{ID: "urn:pleo:company:1", Account: "acc"}})
			require.NoError(t, err)

			_, err = os.Stat(path)
			require.NoError(t, err, "the database is not at the path given")
			entries, err := os.ReadDir(dir)
			require.NoError(t, err)
			for _, e := range entries { // the database, its -wal and -shm
				assert.True(t, strings.HasPrefix(e.Name(), name), "another file was created: %q", e.Name())
			}
			var timeout int
			require.NoError(t, s.DB().QueryRow(`PRAGMA busy_timeout`).Scan(&timeout))
			assert.Equal(t, 10000, timeout)
			var mode string
			require.NoError(t, s.DB().QueryRow(`PRAGMA journal_mode`).Scan(&mode))
			assert.Equal(t, "wal", mode)
		})
	}
}

// TestWithClock: leases, refresh markers, flows and ReadAt are measured on
// the store's clock, which WithClock replaces.
func TestWithClock(t *testing.T) {
	now := time.Date(2031, 5, 6, 7, 8, 9, 123456000, time.UTC)
	s, err := sqlitestore.Open(t.Context(), filepath.Join(t.TempDir(), "connections.db"),
		sqlitestore.WithClock(func() time.Time { return now }))
	require.NoError(t, err)
	defer s.Close()
	sqlstoretest.Clock(t, s, func(d time.Duration) { now = now.Add(d) }, func() time.Time { return now })
}

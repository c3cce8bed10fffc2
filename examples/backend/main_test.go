package main

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestEmptyDatabaseURLIsRefused: a DATABASE_URL set but empty (or blank)
// stops the backend with a message naming it, rather than reaching pgx,
// which would fall back to its defaults, or a SQLite file.
func TestEmptyDatabaseURLIsRefused(t *testing.T) {
	for _, dsn := range []string{"", "  ", "\n"} {
		t.Setenv("DATABASE_URL", dsn)
		dbFile := filepath.Join(t.TempDir(), "connections.db")
		store, db, err := openStore(context.Background(), dbFile)
		require.Error(t, err, "%q", dsn)
		assert.Nil(t, store)
		assert.Nil(t, db)
		assert.Contains(t, err.Error(), "DATABASE_URL is set but empty")
		assert.NoFileExists(t, dbFile, "no SQLite file instead")
	}
}

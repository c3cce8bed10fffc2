package exampleapp

import (
	"context"
	"database/sql"
	"sync"
	"time"
)

// Accounts keeps the app's own customers. It stands in for the partner's
// real user database: a name, no password.
type Accounts interface {
	// SignIn records the customer name, creating it on first use.
	SignIn(ctx context.Context, name string) error
}

// MemoryAccounts keeps customers in memory.
type MemoryAccounts struct {
	mu    sync.Mutex
	names map[string]time.Time
}

// SignIn records name.
func (m *MemoryAccounts) SignIn(_ context.Context, name string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.names == nil {
		m.names = make(map[string]time.Time)
	}
	if _, ok := m.names[name]; !ok {
		m.names[name] = time.Now()
	}
	return nil
}

// SQLAccounts keeps customers in a table of the database the connections
// are in (SQLite or PostgreSQL through database/sql), created if missing.
type SQLAccounts struct {
	db *sql.DB
}

// NewSQLAccounts makes the table if need be.
func NewSQLAccounts(ctx context.Context, db *sql.DB) (*SQLAccounts, error) {
	_, err := db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS example_accounts (name TEXT PRIMARY KEY, created_at BIGINT NOT NULL)`)
	if err != nil {
		return nil, err
	}
	return &SQLAccounts{db: db}, nil
}

// SignIn records name.
func (a *SQLAccounts) SignIn(ctx context.Context, name string) error {
	_, err := a.db.ExecContext(ctx, `INSERT INTO example_accounts (name, created_at) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING`, name, time.Now().Unix())
	return err
}

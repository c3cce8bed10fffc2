// Package pgstore is a [connect.Store] in PostgreSQL, for a backend whose
// instances run on several machines. It uses github.com/jackc/pgx/v5
// through a *pgxpool.Pool the caller owns; only programs that import this
// package compile pgx.
//
// A refresh lease is a row's lease_owner and lease_until, taken by a
// conditional UPDATE: no connection of the pool is held across Pleo's HTTP
// call, as an advisory lock would hold one.
package pgstore

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/partnerkit/pleooauth/connect"
	"github.com/partnerkit/pleooauth/connect/internal/migrations"
	"github.com/partnerkit/pleooauth/connect/internal/sqlstore"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// Store is a [connect.Store] in PostgreSQL, safe for concurrent use by
// every instance sharing the database. Its methods (Get, List, Put,
// Acquire, Update, Release) run the statements connect/sqlitestore runs
// too.
type Store struct {
	*sqlStore
	pool *pgxpool.Pool
}

type sqlStore = sqlstore.Store

var _ connect.Store = (*Store)(nil)

// migrationLock is the transaction-scoped advisory lock key that makes
// instances starting together migrate one at a time.
const migrationLock = 0x706c656f6f617574 // "pleooaut"

// New returns the store over pool, after applying this package's
// migrations that are not applied yet, each in the transaction that
// records it in pleooauth_schema_migrations.
func New(ctx context.Context, pool *pgxpool.Pool) (*Store, error) {
	if pool == nil {
		return nil, errors.New("pgstore: New needs a *pgxpool.Pool")
	}
	s := &Store{sqlStore: &sqlstore.Store{Name: "pgstore", Driver: driver{pool}}, pool: pool}
	if err := s.migrate(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

func (s *Store) migrate(ctx context.Context) error {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("pgstore: migrating: %w", err)
	}
	defer tx.Rollback(ctx) //nolint:errcheck // a no-op after Commit
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, int64(migrationLock)); err != nil {
		return fmt.Errorf("pgstore: migrating: %w", err)
	}
	err = migrations.Apply(ctx, driver{tx}, migrationFiles, "migrations",
		`CREATE TABLE IF NOT EXISTS pleooauth_schema_migrations (version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())`,
		func(version int) (string, []any) {
			return `INSERT INTO pleooauth_schema_migrations (version) VALUES ($1)`, []any{version}
		})
	if err != nil {
		return fmt.Errorf("pgstore: %w", err)
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("pgstore: migrating: %w", err)
	}
	return nil
}

// driver runs statements on a pool or a transaction: times as
// timestamptz, scopes as text[].
type driver struct {
	q interface {
		Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
		Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
		QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
	}
}

// QueryInt runs a query that returns one integer.
func (d driver) QueryInt(ctx context.Context, query string) (n int, err error) {
	err = d.q.QueryRow(ctx, query).Scan(&n)
	return n, err
}

func (d driver) QueryRecord(ctx context.Context, query string, args ...any) (*connect.Record, error) {
	r, err := scan(d.q.QueryRow(ctx, query, args...))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, sqlstore.ErrNoRows
	}
	return r, err
}

func (d driver) QueryConnections(ctx context.Context, query string, args ...any) ([]connect.Connection, error) {
	rows, err := d.q.Query(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	return sqlstore.Connections(rows, func(r pgx.Rows) (*connect.Record, error) { return scan(r) })
}

func (d driver) Exec(ctx context.Context, query string, args ...any) error {
	_, err := d.q.Exec(ctx, query, args...)
	return err
}

func (driver) Time(t time.Time) any { return t }

func (driver) NullTime(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t
}

// Scopes binds no scopes as an empty array: the column is NOT NULL.
func (driver) Scopes(s []string) any {
	if s == nil {
		return []string{}
	}
	return s
}

func scan(row pgx.Row) (*connect.Record, error) {
	var (
		r                                              connect.Record
		status                                         string
		expiry, lastRefresh, leaseUntil, refreshSentAt *time.Time
	)
	err := row.Scan(&r.ID, &r.Account, &status, &r.Scopes, &r.CreatedAt, &r.UpdatedAt, &expiry, &lastRefresh,
		&r.LastError, &r.Tokens, &r.Version, &r.LeaseOwner, &leaseUntil, &refreshSentAt)
	if err != nil {
		return nil, err
	}
	r.Status = connect.Status(status)
	r.CreatedAt, r.UpdatedAt = r.CreatedAt.UTC(), r.UpdatedAt.UTC()
	r.TokenExpiry, r.LastRefreshAt = deref(expiry), deref(lastRefresh)
	r.LeaseUntil, r.RefreshSentAt = deref(leaseUntil), deref(refreshSentAt)
	if len(r.Scopes) == 0 {
		r.Scopes = nil
	}
	return &r, nil
}

func deref(t *time.Time) time.Time {
	if t == nil {
		return time.Time{}
	}
	return t.UTC()
}

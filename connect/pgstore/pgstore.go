// Package pgstore is a [connect.Store] in PostgreSQL, for a backend whose
// instances run on several machines. It uses github.com/jackc/pgx/v5
// through a *pgxpool.Pool the caller owns; only programs that import this
// package compile pgx.
//
// A refresh lease is a row's lease_owner and lease_until, taken by a
// conditional UPDATE: no connection of the pool is held across Pleo's HTTP
// call, as an advisory lock would hold one. Leases, refresh markers and
// every record's ReadAt are measured on the database's clock (now()), so
// instances whose clocks disagree still agree on when a lease expires.
// Finished authorization flows (UseFlow) are rows of pleooauth_flows, kept
// until they expire.
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
// Acquire, Claim, Update, Release, UseFlow) run the statements
// connect/sqlitestore runs too: each writes with one statement (UseFlow
// deletes the expired flows first), and Acquire, Claim and Update read the
// record with Get when their conditional UPDATE changed nothing.
type Store struct {
	*sqlStore
	pool *pgxpool.Pool
}

type sqlStore = sqlstore.Store

var _ connect.Store = (*Store)(nil)

// migrationLock is the transaction-scoped advisory lock key that makes
// instances starting together migrate one at a time.
const migrationLock = 0x706c656f6f617574 // "pleooaut"

// Option configures a Store that New makes.
type Option func(*options)

type options struct {
	now func() time.Time
}

// WithClock is for tests: measure leases on this clock instead of the
// database's. The store binds the time now returns, truncated to the
// microsecond, wherever it would read the database's now(): lease
// expiries, refresh markers, flow expiries and ReadAt.
func WithClock(now func() time.Time) Option {
	return func(o *options) { o.now = now }
}

// New returns the store over pool, after applying this package's
// migrations that are not applied yet, each in the transaction that
// records it in pleooauth_schema_migrations.
func New(ctx context.Context, pool *pgxpool.Pool, opts ...Option) (*Store, error) {
	if pool == nil {
		return nil, errors.New("pgstore: New needs a *pgxpool.Pool")
	}
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	s := &Store{sqlStore: &sqlstore.Store{Name: "pgstore", Driver: driver{q: pool, now: o.now}}, pool: pool}
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
	err = migrations.Apply(ctx, driver{q: tx}, migrationFiles, "migrations",
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
// timestamptz, scopes as text[], durations as microseconds. The store's
// time is the database's now(), or now's when it is not nil.
type driver struct {
	q interface {
		Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
		Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
		QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
	}
	now func() time.Time
}

// QueryInt runs a query that returns one integer.
func (d driver) QueryInt(ctx context.Context, query string) (n int, err error) {
	err = d.q.QueryRow(ctx, query).Scan(&n)
	return n, err
}

func (d driver) QueryRecord(ctx context.Context, query string, args ...any) (*connect.Record, error) {
	r, err := scanRecord(d.q.QueryRow(ctx, query, args...))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, sqlstore.ErrNoRows
	}
	return r, err
}

func (d driver) QueryConnections(ctx context.Context, query string, args ...any) ([]connect.Connection, error) {
	return queryAll(ctx, d, query, args, func(r pgx.CollectableRow) (connect.Connection, error) { return scanConnection(r) })
}

func (d driver) QueryEvents(ctx context.Context, query string, args ...any) ([]connect.Event, error) {
	return queryAll(ctx, d, query, args, func(r pgx.CollectableRow) (e connect.Event, err error) {
		err = r.Scan(&e.Seq, &e.ConnectionID, &e.Account, &e.OldAccount, &e.OldStatus, &e.NewStatus,
			&e.OldHealth, &e.NewHealth, &e.Grant, &e.Reason, &e.Version, &e.At)
		e.At = e.At.UTC()
		return e, err
	})
}

func (d driver) QueryCounts(ctx context.Context, query string, args ...any) ([]connect.StatusCount, error) {
	return queryAll(ctx, d, query, args, func(r pgx.CollectableRow) (c connect.StatusCount, err error) {
		return c, r.Scan(&c.Status, &c.Health, &c.N)
	})
}

// queryAll runs query and scans each row it returns with scan.
func queryAll[T any](ctx context.Context, d driver, query string, args []any, scan pgx.RowToFunc[T]) ([]T, error) {
	rows, err := d.q.Query(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, scan)
}

func (d driver) QueryPos(ctx context.Context, query string, args ...any) (pos int64, err error) {
	err = d.q.QueryRow(ctx, query, args...).Scan(&pos)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, sqlstore.ErrNoRows
	}
	return pos, err
}

// Exec runs a statement that returns no rows (for migrations).
func (d driver) Exec(ctx context.Context, query string, args ...any) error {
	_, err := d.q.Exec(ctx, query, args...)
	return err
}

func (d driver) ExecCount(ctx context.Context, query string, args ...any) (int64, error) {
	tag, err := d.q.Exec(ctx, query, args...)
	return tag.RowsAffected(), err
}

// Now is the database's now() when the parameter is NULL, as NowArg binds
// it without a clock.
func (driver) Now(p string) string { return "COALESCE(" + p + "::timestamptz, now())" }

func (d driver) NowArg() any {
	if d.now == nil {
		return nil
	}
	return d.now().UTC().Truncate(time.Microsecond)
}

func (driver) Plus(t, p string) string {
	return "(" + t + " + " + p + "::bigint * interval '1 microsecond')"
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

func scanConnection(row pgx.Row) (connect.Connection, error) {
	var (
		c                                 connect.Connection
		expiry, lastRefresh, failingSince *time.Time
	)
	if err := row.Scan(&c.ID, &c.Account, &c.Status, &c.Scopes, &c.CreatedAt, &c.UpdatedAt, &expiry, &lastRefresh,
		&c.LastError, &c.Health, &failingSince, &c.KeepAliveAt); err != nil {
		return c, err
	}
	normalize(&c, expiry, lastRefresh, failingSince)
	return c, nil
}

func scanRecord(row pgx.Row) (*connect.Record, error) {
	var (
		r                                                            connect.Record
		expiry, lastRefresh, failingSince, leaseUntil, refreshSentAt *time.Time
	)
	err := row.Scan(&r.ID, &r.Account, &r.Status, &r.Scopes, &r.CreatedAt, &r.UpdatedAt, &expiry, &lastRefresh,
		&r.LastError, &r.Health, &failingSince, &r.KeepAliveAt,
		&r.Tokens, &r.Version, &r.LeaseOwner, &leaseUntil, &refreshSentAt, &r.ReadAt)
	if err != nil {
		return nil, err
	}
	normalize(&r.Connection, expiry, lastRefresh, failingSince)
	r.LeaseUntil, r.RefreshSentAt, r.ReadAt = deref(leaseUntil), deref(refreshSentAt), r.ReadAt.UTC()
	return &r, nil
}

// normalize sets c's nullable times and makes every time UTC and no scopes
// nil.
func normalize(c *connect.Connection, expiry, lastRefresh, failingSince *time.Time) {
	c.CreatedAt, c.UpdatedAt, c.KeepAliveAt = c.CreatedAt.UTC(), c.UpdatedAt.UTC(), c.KeepAliveAt.UTC()
	c.TokenExpiry, c.LastRefreshAt, c.FailingSince = deref(expiry), deref(lastRefresh), deref(failingSince)
	if len(c.Scopes) == 0 {
		c.Scopes = nil
	}
}

func deref(t *time.Time) time.Time {
	if t == nil {
		return time.Time{}
	}
	return t.UTC()
}

// Package sqlitestore is a [connect.Store] in a SQLite database file: the
// embedded default, for a backend on one machine, whose instances (several
// processes too) share the file. It uses modernc.org/sqlite, pure Go, so
// no C compiler is needed; only programs that import this package compile
// it.
//
// The database runs in WAL mode with full synchronous commits, so that a
// saved token survives a crash. Leases, refresh markers and every record's
// ReadAt are measured on the Go process's clock, which the instances
// sharing the file share, being on one machine. Finished authorization
// flows (UseFlow) are rows of pleooauth_flows, kept until they expire. For
// instances on several machines, use connect/pgstore.
package sqlitestore

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"net/url"
	"path/filepath"
	"strings"
	"time"

	"github.com/partnerkit/pleooauth/connect"
	"github.com/partnerkit/pleooauth/connect/internal/migrations"
	"github.com/partnerkit/pleooauth/connect/internal/sqlstore"
	_ "modernc.org/sqlite" // the "sqlite" database/sql driver
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// Store is a [connect.Store] in a SQLite database. It is safe for
// concurrent use, and by several processes sharing the file. Its methods
// (Get, List, Put, Acquire, Claim, Update, Release, UseFlow) run the
// statements connect/pgstore runs too; Close closes the database and DB
// returns it.
type Store struct {
	*sqlStore
	db *sql.DB
}

type sqlStore = sqlstore.Store

var _ connect.Store = (*Store)(nil)

// Option configures a Store that Open returns.
type Option func(*options)

type options struct {
	now func() time.Time
}

// WithClock is for tests: measure leases, refresh markers, flow expiries
// and ReadAt on now instead of time.Now (to the microsecond).
func WithClock(now func() time.Time) Option {
	return func(o *options) { o.now = now }
}

// Open opens (creating it if need be) the SQLite database file at path,
// applies this package's migrations in a transaction, and returns the
// store. path is a file name, not a URI: every character in it is part of
// the name.
func Open(ctx context.Context, path string, opts ...Option) (*Store, error) {
	o := options{now: time.Now}
	for _, opt := range opts {
		opt(&o)
	}
	dsn, err := dsn(path)
	if err != nil {
		return nil, fmt.Errorf("sqlitestore: %w", err)
	}
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("sqlitestore: %w", err)
	}
	s := &Store{sqlStore: &sqlstore.Store{Name: "sqlitestore", Driver: driver{q: db, now: o.now}}, db: db}
	if err := s.migrate(ctx); err != nil {
		db.Close()
		return nil, err
	}
	return s, nil
}

// dsn returns the URI that opens the database file at path with the
// store's pragmas. The driver passes a "file:" URI to SQLite whole, which
// decodes %XX escapes in it and ends the path at '?' or '#': the path is
// made absolute and escaped (url.URL escapes '%', '?', '#' and spaces), so
// that it names that file and the query is the store's.
func dsn(path string) (string, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return "", err
	}
	abs = filepath.ToSlash(abs)
	if !strings.HasPrefix(abs, "/") {
		abs = "/" + abs // a Windows drive: file:///C:/...
	}
	q := url.Values{}
	q.Add("_pragma", "busy_timeout(10000)")
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "synchronous(FULL)")
	q.Set("_txlock", "immediate")
	u := url.URL{Scheme: "file", Path: abs, RawQuery: q.Encode()}
	return u.String(), nil
}

// Close closes the database.
func (s *Store) Close() error { return s.db.Close() }

// DB returns the database, for operators' queries and backups.
func (s *Store) DB() *sql.DB { return s.db }

// migrate applies the migrations not yet applied, each in the transaction
// that records it, in file-name order.
func (s *Store) migrate(ctx context.Context) error {
	tx, err := s.db.BeginTx(ctx, nil) // BEGIN IMMEDIATE: one migrator at a time
	if err != nil {
		return fmt.Errorf("sqlitestore: migrating: %w", err)
	}
	defer tx.Rollback()
	err = migrations.Apply(ctx, driver{q: tx}, migrationFiles, "migrations",
		`CREATE TABLE IF NOT EXISTS pleooauth_schema_migrations (version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)`,
		func(version int) (string, []any) {
			return `INSERT INTO pleooauth_schema_migrations (version, applied_at) VALUES ($1, $2)`, []any{version, time.Now().UnixMicro()}
		})
	if err != nil {
		return fmt.Errorf("sqlitestore: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("sqlitestore: migrating: %w", err)
	}
	return nil
}

// driver runs statements on a database or a transaction: parameters
// numbered ?1, ?2, ..., times and durations as microseconds (times since
// the Unix epoch), scopes as one space-separated string. The store's time
// is now's, bound as a parameter.
type driver struct {
	q interface {
		ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
		QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
		QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
	}
	now func() time.Time
}

// QueryInt runs a query that returns one integer.
func (d driver) QueryInt(ctx context.Context, query string) (n int, err error) {
	err = d.q.QueryRowContext(ctx, numbered(query)).Scan(&n)
	return n, err
}

// numbered rewrites the shared statements' $N parameters as SQLite's ?N.
func numbered(query string) string { return strings.ReplaceAll(query, "$", "?") }

func (d driver) QueryRecord(ctx context.Context, query string, args ...any) (*connect.Record, error) {
	r, err := scanRecord(d.q.QueryRowContext(ctx, numbered(query), args...))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, sqlstore.ErrNoRows
	}
	return r, err
}

func (d driver) QueryConnections(ctx context.Context, query string, args ...any) ([]connect.Connection, error) {
	return queryAll(ctx, d, query, args, func(r *sql.Rows) (connect.Connection, error) { return scanConnection(r) })
}

func (d driver) QueryEvents(ctx context.Context, query string, args ...any) ([]connect.Event, error) {
	return queryAll(ctx, d, query, args, func(r *sql.Rows) (e connect.Event, err error) {
		var at int64
		err = r.Scan(&e.Seq, &e.ConnectionID, &e.Account, &e.OldAccount, &e.OldStatus, &e.NewStatus,
			&e.OldHealth, &e.NewHealth, &e.Grant, &e.Reason, &e.Version, &at)
		e.At = time.UnixMicro(at).UTC()
		return e, err
	})
}

func (d driver) QueryCounts(ctx context.Context, query string, args ...any) ([]connect.StatusCount, error) {
	return queryAll(ctx, d, query, args, func(r *sql.Rows) (c connect.StatusCount, err error) {
		return c, r.Scan(&c.Status, &c.Health, &c.N)
	})
}

// queryAll runs query and scans each row it returns with scan, as
// pgx.CollectRows does for the PostgreSQL store.
func queryAll[T any](ctx context.Context, d driver, query string, args []any, scan func(*sql.Rows) (T, error)) ([]T, error) {
	rows, err := d.q.QueryContext(ctx, numbered(query), args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

func (d driver) QueryPos(ctx context.Context, query string, args ...any) (pos int64, err error) {
	err = d.q.QueryRowContext(ctx, numbered(query), args...).Scan(&pos)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, sqlstore.ErrNoRows
	}
	return pos, err
}

// Exec runs a statement that returns no rows (for migrations).
func (d driver) Exec(ctx context.Context, query string, args ...any) error {
	_, err := d.q.ExecContext(ctx, numbered(query), args...)
	return err
}

func (d driver) ExecCount(ctx context.Context, query string, args ...any) (int64, error) {
	res, err := d.q.ExecContext(ctx, numbered(query), args...)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

func (driver) Now(p string) string { return p }

func (d driver) NowArg() any { return d.now().UnixMicro() }

func (driver) Plus(t, p string) string { return "(" + t + " + " + p + ")" }

func (driver) Time(t time.Time) any { return t.UnixMicro() }

func (driver) NullTime(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UnixMicro()
}

func (driver) Scopes(s []string) any { return strings.Join(s, " ") }

type scanner interface{ Scan(dest ...any) error }

func scanConnection(row scanner) (connect.Connection, error) {
	var (
		c                                 connect.Connection
		scopes                            string
		created, updated, keepAlive       int64
		expiry, lastRefresh, failingSince sql.NullInt64
	)
	err := row.Scan(&c.ID, &c.Account, &c.Status, &scopes, &created, &updated, &expiry, &lastRefresh, &c.LastError,
		&c.Health, &failingSince, &keepAlive)
	if err != nil {
		return c, err
	}
	c.Scopes = splitScopes(scopes)
	c.CreatedAt, c.UpdatedAt = time.UnixMicro(created).UTC(), time.UnixMicro(updated).UTC()
	c.TokenExpiry, c.LastRefreshAt = fromNull(expiry), fromNull(lastRefresh)
	c.FailingSince, c.KeepAliveAt = fromNull(failingSince), time.UnixMicro(keepAlive).UTC()
	return c, nil
}

func scanRecord(row scanner) (*connect.Record, error) {
	var (
		r                                                            connect.Record
		scopes                                                       string
		created, updated, keepAlive, readAt                          int64
		expiry, lastRefresh, failingSince, leaseUntil, refreshSentAt sql.NullInt64
	)
	err := row.Scan(&r.ID, &r.Account, &r.Status, &scopes, &created, &updated, &expiry, &lastRefresh,
		&r.LastError, &r.Health, &failingSince, &keepAlive,
		&r.Tokens, &r.Version, &r.LeaseOwner, &leaseUntil, &refreshSentAt, &readAt)
	if err != nil {
		return nil, err
	}
	r.Scopes = splitScopes(scopes)
	r.CreatedAt, r.UpdatedAt = time.UnixMicro(created).UTC(), time.UnixMicro(updated).UTC()
	r.TokenExpiry, r.LastRefreshAt = fromNull(expiry), fromNull(lastRefresh)
	r.FailingSince, r.KeepAliveAt = fromNull(failingSince), time.UnixMicro(keepAlive).UTC()
	r.LeaseUntil, r.RefreshSentAt = fromNull(leaseUntil), fromNull(refreshSentAt)
	r.ReadAt = time.UnixMicro(readAt).UTC()
	return &r, nil
}

// splitScopes returns the scopes in s, nil for none.
func splitScopes(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Fields(s)
}

func fromNull(n sql.NullInt64) time.Time {
	if !n.Valid {
		return time.Time{}
	}
	return time.UnixMicro(n.Int64).UTC()
}

// Package sqlitestore is a [connect.Store] in a SQLite database file: the
// embedded default, for a backend on one machine, whose instances (several
// processes too) share the file. It uses modernc.org/sqlite, pure Go, so
// no C compiler is needed; only programs that import this package compile
// it.
//
// The database runs in WAL mode with full synchronous commits, so that a
// saved token survives a crash. For instances on several machines, use
// connect/pgstore.
package sqlitestore

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/partnerkit/pleooauth/connect"
	"github.com/partnerkit/pleooauth/connect/internal/migrations"
	"github.com/partnerkit/pleooauth/connect/internal/sqlrows"
	_ "modernc.org/sqlite" // the "sqlite" database/sql driver
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// Store is a [connect.Store] in a SQLite database. It is safe for
// concurrent use, and by several processes sharing the file.
type Store struct {
	db *sql.DB
}

// Open opens (creating it if need be) the SQLite database at path, applies
// this package's migrations in a transaction, and returns the store.
func Open(ctx context.Context, path string) (*Store, error) {
	q := url.Values{}
	q.Add("_pragma", "busy_timeout(10000)")
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "synchronous(FULL)")
	q.Set("_txlock", "immediate")
	db, err := sql.Open("sqlite", "file:"+path+"?"+q.Encode())
	if err != nil {
		return nil, fmt.Errorf("sqlitestore: %w", err)
	}
	s := &Store{db: db}
	if err := s.migrate(ctx); err != nil {
		db.Close()
		return nil, err
	}
	return s, nil
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
	if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS pleooauth_schema_migrations (version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)`); err != nil {
		return fmt.Errorf("sqlitestore: migrating: %w", err)
	}
	var current int
	if err := tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM pleooauth_schema_migrations`).Scan(&current); err != nil {
		return fmt.Errorf("sqlitestore: migrating: %w", err)
	}
	all, err := migrations.Load(migrationFiles, "migrations")
	if err != nil {
		return fmt.Errorf("sqlitestore: %w", err)
	}
	for _, m := range migrations.Pending(all, current) {
		if _, err := tx.ExecContext(ctx, m.SQL); err != nil {
			return fmt.Errorf("sqlitestore: migration %s: %w", m.Name, err)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO pleooauth_schema_migrations (version, applied_at) VALUES (?, ?)`, m.Version, time.Now().UnixMicro()); err != nil {
			return fmt.Errorf("sqlitestore: migration %s: %w", m.Name, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("sqlitestore: migrating: %w", err)
	}
	return nil
}

const columns = `id, account, status, scopes, created_at, updated_at, token_expiry, last_refresh_at, last_error, tokens, version, lease_owner, lease_until, refresh_sent_at`

type scanner interface{ Scan(dest ...any) error }

func scan(row scanner) (*connect.Record, error) {
	var (
		r                                              connect.Record
		scopes                                         string
		created, updated                               int64
		expiry, lastRefresh, leaseUntil, refreshSentAt sql.NullInt64
	)
	err := row.Scan(&r.ID, &r.Account, &r.Status, &scopes, &created, &updated, &expiry, &lastRefresh,
		&r.LastError, &r.Tokens, &r.Version, &r.LeaseOwner, &leaseUntil, &refreshSentAt)
	if err != nil {
		return nil, err
	}
	r.Scopes = strings.Fields(scopes)
	r.CreatedAt, r.UpdatedAt = time.UnixMicro(created).UTC(), time.UnixMicro(updated).UTC()
	r.TokenExpiry, r.LastRefreshAt = fromNull(expiry), fromNull(lastRefresh)
	r.LeaseUntil, r.RefreshSentAt = fromNull(leaseUntil), fromNull(refreshSentAt)
	return &r, nil
}

func fromNull(n sql.NullInt64) time.Time {
	if !n.Valid {
		return time.Time{}
	}
	return time.UnixMicro(n.Int64).UTC()
}

func toNull(t time.Time) sql.NullInt64 {
	if t.IsZero() {
		return sql.NullInt64{}
	}
	return sql.NullInt64{Int64: t.UnixMicro(), Valid: true}
}

// Get returns the record with that ID.
func (s *Store) Get(ctx context.Context, id string) (*connect.Record, error) {
	r, err := scan(s.db.QueryRowContext(ctx, `SELECT `+columns+` FROM pleooauth_connections WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("%w: %s", connect.ErrNoConnection, id)
	}
	if err != nil {
		return nil, fmt.Errorf("sqlitestore: %w", err)
	}
	return r, nil
}

// List returns the connections q selects, ordered by ID.
func (s *Store) List(ctx context.Context, q connect.Query) ([]connect.Connection, error) {
	limit := q.Limit
	if limit <= 0 {
		limit = 100
	}
	rows, err := s.db.QueryContext(ctx, `SELECT `+columns+` FROM pleooauth_connections
		WHERE (?1 = '' OR account = ?1) AND (?2 = '' OR status = ?2) AND id > ?3
		ORDER BY id LIMIT ?4`, q.Account, string(q.Status), q.After, limit)
	if err != nil {
		return nil, fmt.Errorf("sqlitestore: %w", err)
	}
	defer rows.Close()
	out, err := sqlrows.Connections(rows, func(r *sql.Rows) (*connect.Record, error) { return scan(r) })
	if err != nil {
		return nil, fmt.Errorf("sqlitestore: %w", err)
	}
	return out, nil
}

// Put stores the connection's new grant.
func (s *Store) Put(ctx context.Context, rec *connect.Record) (*connect.Record, error) {
	r, err := scan(s.db.QueryRowContext(ctx, `INSERT INTO pleooauth_connections (`+columns+`)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1, '', NULL, NULL)
		ON CONFLICT (id) DO UPDATE SET
			account = excluded.account, status = excluded.status, scopes = excluded.scopes,
			updated_at = excluded.updated_at, token_expiry = excluded.token_expiry,
			last_refresh_at = excluded.last_refresh_at, last_error = excluded.last_error,
			tokens = excluded.tokens, version = pleooauth_connections.version + 1,
			lease_owner = '', lease_until = NULL, refresh_sent_at = NULL
		RETURNING `+columns,
		rec.ID, rec.Account, string(rec.Status), strings.Join(rec.Scopes, " "), rec.CreatedAt.UnixMicro(), rec.UpdatedAt.UnixMicro(),
		toNull(rec.TokenExpiry), toNull(rec.LastRefreshAt), rec.LastError, rec.Tokens))
	if err != nil {
		return nil, fmt.Errorf("sqlitestore: %w", err)
	}
	return r, nil
}

// Acquire takes the refresh lease if it is free, expired or owner's.
func (s *Store) Acquire(ctx context.Context, id, owner string, now, until time.Time) (*connect.Record, bool, error) {
	r, err := scan(s.db.QueryRowContext(ctx, `UPDATE pleooauth_connections SET lease_owner = ?, lease_until = ?
		WHERE id = ? AND (lease_owner = '' OR lease_owner = ? OR lease_until IS NULL OR lease_until <= ?)
		RETURNING `+columns, owner, until.UnixMicro(), id, owner, now.UnixMicro()))
	if err == nil {
		return r, true, nil
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return nil, false, fmt.Errorf("sqlitestore: %w", err)
	}
	r, err = s.Get(ctx, id)
	if err != nil {
		return nil, false, err
	}
	return r, false, nil
}

// Update writes rec if its version is current and owner holds the lease.
func (s *Store) Update(ctx context.Context, rec *connect.Record, owner string, release bool) (*connect.Record, error) {
	r, err := scan(s.db.QueryRowContext(ctx, `UPDATE pleooauth_connections SET
			account = ?, status = ?, scopes = ?, updated_at = ?, token_expiry = ?, last_refresh_at = ?,
			last_error = ?, tokens = ?, refresh_sent_at = ?, version = version + 1,
			lease_owner = CASE WHEN ? THEN '' ELSE lease_owner END,
			lease_until = CASE WHEN ? THEN NULL ELSE lease_until END
		WHERE id = ? AND version = ? AND lease_owner = ? AND lease_owner <> ''
		RETURNING `+columns,
		rec.Account, string(rec.Status), strings.Join(rec.Scopes, " "), rec.UpdatedAt.UnixMicro(), toNull(rec.TokenExpiry),
		toNull(rec.LastRefreshAt), rec.LastError, rec.Tokens, toNull(rec.RefreshSentAt), release, release,
		rec.ID, rec.Version, owner))
	if err == nil {
		return r, nil
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("sqlitestore: %w", err)
	}
	if _, err := s.Get(ctx, rec.ID); err != nil {
		return nil, err
	}
	return nil, connect.ErrVersionConflict
}

// Release frees the lease if owner holds it.
func (s *Store) Release(ctx context.Context, id, owner string) error {
	if _, err := s.db.ExecContext(ctx, `UPDATE pleooauth_connections SET lease_owner = '', lease_until = NULL
		WHERE id = ? AND lease_owner = ? AND lease_owner <> ''`, id, owner); err != nil {
		return fmt.Errorf("sqlitestore: %w", err)
	}
	return nil
}

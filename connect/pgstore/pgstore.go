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
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/partnerkit/pleooauth/connect"
	"github.com/partnerkit/pleooauth/connect/internal/migrations"
	"github.com/partnerkit/pleooauth/connect/internal/sqlrows"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// Store is a [connect.Store] in PostgreSQL, safe for concurrent use by
// every instance sharing the database.
type Store struct {
	pool *pgxpool.Pool
}

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
	s := &Store{pool: pool}
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
	if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS pleooauth_schema_migrations (version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())`); err != nil {
		return fmt.Errorf("pgstore: migrating: %w", err)
	}
	var current int
	if err := tx.QueryRow(ctx, `SELECT COALESCE(MAX(version), 0) FROM pleooauth_schema_migrations`).Scan(&current); err != nil {
		return fmt.Errorf("pgstore: migrating: %w", err)
	}
	all, err := migrations.Load(migrationFiles, "migrations")
	if err != nil {
		return fmt.Errorf("pgstore: %w", err)
	}
	for _, m := range migrations.Pending(all, current) {
		if _, err := tx.Exec(ctx, m.SQL); err != nil {
			return fmt.Errorf("pgstore: migration %s: %w", m.Name, err)
		}
		if _, err := tx.Exec(ctx, `INSERT INTO pleooauth_schema_migrations (version) VALUES ($1)`, m.Version); err != nil {
			return fmt.Errorf("pgstore: migration %s: %w", m.Name, err)
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("pgstore: migrating: %w", err)
	}
	return nil
}

const columns = `id, account, status, scopes, created_at, updated_at, token_expiry, last_refresh_at, last_error, tokens, version, lease_owner, lease_until, refresh_sent_at`

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

func orNull(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

func scopes(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// Get returns the record with that ID.
func (s *Store) Get(ctx context.Context, id string) (*connect.Record, error) {
	r, err := scan(s.pool.QueryRow(ctx, `SELECT `+columns+` FROM pleooauth_connections WHERE id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("%w: %s", connect.ErrNoConnection, id)
	}
	if err != nil {
		return nil, fmt.Errorf("pgstore: %w", err)
	}
	return r, nil
}

// List returns the connections q selects, ordered by ID.
func (s *Store) List(ctx context.Context, q connect.Query) ([]connect.Connection, error) {
	limit := q.Limit
	if limit <= 0 {
		limit = 100
	}
	rows, err := s.pool.Query(ctx, `SELECT `+columns+` FROM pleooauth_connections
		WHERE ($1 = '' OR account = $1) AND ($2 = '' OR status = $2) AND id > $3
		ORDER BY id LIMIT $4`, q.Account, string(q.Status), q.After, limit)
	if err != nil {
		return nil, fmt.Errorf("pgstore: %w", err)
	}
	defer rows.Close()
	out, err := sqlrows.Connections(rows, func(r pgx.Rows) (*connect.Record, error) { return scan(r) })
	if err != nil {
		return nil, fmt.Errorf("pgstore: %w", err)
	}
	return out, nil
}

// Put stores the connection's new grant.
func (s *Store) Put(ctx context.Context, rec *connect.Record) (*connect.Record, error) {
	r, err := scan(s.pool.QueryRow(ctx, `INSERT INTO pleooauth_connections (`+columns+`)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 1, '', NULL, NULL)
		ON CONFLICT (id) DO UPDATE SET
			account = excluded.account, status = excluded.status, scopes = excluded.scopes,
			updated_at = excluded.updated_at, token_expiry = excluded.token_expiry,
			last_refresh_at = excluded.last_refresh_at, last_error = excluded.last_error,
			tokens = excluded.tokens, version = pleooauth_connections.version + 1,
			lease_owner = '', lease_until = NULL, refresh_sent_at = NULL
		RETURNING `+columns,
		rec.ID, rec.Account, string(rec.Status), scopes(rec.Scopes), rec.CreatedAt, rec.UpdatedAt,
		orNull(rec.TokenExpiry), orNull(rec.LastRefreshAt), rec.LastError, rec.Tokens))
	if err != nil {
		return nil, fmt.Errorf("pgstore: %w", err)
	}
	return r, nil
}

// Acquire takes the refresh lease if it is free, expired or owner's.
func (s *Store) Acquire(ctx context.Context, id, owner string, now, until time.Time) (*connect.Record, bool, error) {
	r, err := scan(s.pool.QueryRow(ctx, `UPDATE pleooauth_connections SET lease_owner = $2, lease_until = $3
		WHERE id = $1 AND (lease_owner = '' OR lease_owner = $2 OR lease_until IS NULL OR lease_until <= $4)
		RETURNING `+columns, id, owner, until, now))
	if err == nil {
		return r, true, nil
	}
	if !errors.Is(err, pgx.ErrNoRows) {
		return nil, false, fmt.Errorf("pgstore: %w", err)
	}
	r, err = s.Get(ctx, id)
	if err != nil {
		return nil, false, err
	}
	return r, false, nil
}

// Update writes rec if its version is current and owner holds the lease.
func (s *Store) Update(ctx context.Context, rec *connect.Record, owner string, release bool) (*connect.Record, error) {
	r, err := scan(s.pool.QueryRow(ctx, `UPDATE pleooauth_connections SET
			account = $1, status = $2, scopes = $3, updated_at = $4, token_expiry = $5, last_refresh_at = $6,
			last_error = $7, tokens = $8, refresh_sent_at = $9, version = version + 1,
			lease_owner = CASE WHEN $10 THEN '' ELSE lease_owner END,
			lease_until = CASE WHEN $10 THEN NULL ELSE lease_until END
		WHERE id = $11 AND version = $12 AND lease_owner = $13 AND lease_owner <> ''
		RETURNING `+columns,
		rec.Account, string(rec.Status), scopes(rec.Scopes), rec.UpdatedAt, orNull(rec.TokenExpiry),
		orNull(rec.LastRefreshAt), rec.LastError, rec.Tokens, orNull(rec.RefreshSentAt), release,
		rec.ID, rec.Version, owner))
	if err == nil {
		return r, nil
	}
	if !errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("pgstore: %w", err)
	}
	if _, err := s.Get(ctx, rec.ID); err != nil {
		return nil, err
	}
	return nil, connect.ErrVersionConflict
}

// Release frees the lease if owner holds it.
func (s *Store) Release(ctx context.Context, id, owner string) error {
	if _, err := s.pool.Exec(ctx, `UPDATE pleooauth_connections SET lease_owner = '', lease_until = NULL
		WHERE id = $1 AND lease_owner = $2 AND lease_owner <> ''`, id, owner); err != nil {
		return fmt.Errorf("pgstore: %w", err)
	}
	return nil
}

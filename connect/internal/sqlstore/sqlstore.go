// Package sqlstore is the SQL that connect/pgstore and connect/sqlitestore
// share: one statement for each [connect.Store] method, run through a
// [Driver] that binds and scans values the way its database wants them.
// The statements number their parameters $1, $2, ...; a driver whose
// database spells them otherwise rewrites them.
package sqlstore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/partnerkit/pleooauth/connect"
)

// Columns are the columns of pleooauth_connections, in the order
// Driver.QueryRecord scans them.
const Columns = `id, account, status, scopes, created_at, updated_at, token_expiry, last_refresh_at, last_error, tokens, version, lease_owner, lease_until, refresh_sent_at`

// ErrNoRows is what a Driver returns when a query that returns one row
// returned none.
var ErrNoRows = errors.New("no rows")

// Driver runs statements on one database and converts values for it.
type Driver interface {
	// QueryRecord runs query, which returns at most one row of Columns,
	// and scans that row; it returns ErrNoRows when there is none.
	QueryRecord(ctx context.Context, query string, args ...any) (*connect.Record, error)
	// QueryConnections runs query, which returns rows of Columns.
	QueryConnections(ctx context.Context, query string, args ...any) ([]connect.Connection, error)
	// Exec runs a statement that returns no rows.
	Exec(ctx context.Context, query string, args ...any) error
	// Time, NullTime and Scopes convert values for binding; NullTime
	// binds the zero time as NULL.
	Time(t time.Time) any
	NullTime(t time.Time) any
	Scopes(s []string) any
}

// Rows is what pgx.Rows and *sql.Rows have in common.
type Rows interface {
	Next() bool
	Err() error
}

// Connections scans every row with scan and returns the connections. The
// caller closes rows.
func Connections[R Rows](rows R, scan func(R) (*connect.Record, error)) ([]connect.Connection, error) {
	var out []connect.Connection
	for rows.Next() {
		r, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, r.Connection)
	}
	return out, rows.Err()
}

// Store implements connect.Store's methods but Close on a Driver. Its
// errors start with Name.
type Store struct {
	Name   string
	Driver Driver
}

func (s *Store) wrap(err error) error { return fmt.Errorf("%s: %w", s.Name, err) }

// Get returns the record with that ID.
func (s *Store) Get(ctx context.Context, id string) (*connect.Record, error) {
	r, err := s.Driver.QueryRecord(ctx, `SELECT `+Columns+` FROM pleooauth_connections WHERE id = $1`, id)
	if errors.Is(err, ErrNoRows) {
		return nil, fmt.Errorf("%w: %s", connect.ErrNoConnection, id)
	}
	if err != nil {
		return nil, s.wrap(err)
	}
	return r, nil
}

// List returns the connections q selects, ordered by ID.
func (s *Store) List(ctx context.Context, q connect.Query) ([]connect.Connection, error) {
	out, err := s.Driver.QueryConnections(ctx, `SELECT `+Columns+` FROM pleooauth_connections
		WHERE ($1 = '' OR account = $1) AND ($2 = '' OR status = $2) AND id > $3
		ORDER BY id LIMIT $4`, q.Account, string(q.Status), q.After, q.PageSize())
	if err != nil {
		return nil, s.wrap(err)
	}
	return out, nil
}

// Put stores the connection's new grant.
func (s *Store) Put(ctx context.Context, rec *connect.Record) (*connect.Record, error) {
	d := s.Driver
	r, err := d.QueryRecord(ctx, `INSERT INTO pleooauth_connections (`+Columns+`)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 1, '', NULL, NULL)
		ON CONFLICT (id) DO UPDATE SET
			account = excluded.account, status = excluded.status, scopes = excluded.scopes,
			updated_at = excluded.updated_at, token_expiry = excluded.token_expiry,
			last_refresh_at = excluded.last_refresh_at, last_error = excluded.last_error,
			tokens = excluded.tokens, version = pleooauth_connections.version + 1,
			lease_owner = '', lease_until = NULL, refresh_sent_at = NULL
		RETURNING `+Columns,
		rec.ID, rec.Account, string(rec.Status), d.Scopes(rec.Scopes), d.Time(rec.CreatedAt), d.Time(rec.UpdatedAt),
		d.NullTime(rec.TokenExpiry), d.NullTime(rec.LastRefreshAt), rec.LastError, rec.Tokens)
	if err != nil {
		return nil, s.wrap(err)
	}
	return r, nil
}

// Acquire takes the refresh lease if it is free, expired or owner's.
func (s *Store) Acquire(ctx context.Context, id, owner string, now, until time.Time) (*connect.Record, bool, error) {
	d := s.Driver
	r, err := d.QueryRecord(ctx, `UPDATE pleooauth_connections SET lease_owner = $2, lease_until = $3
		WHERE id = $1 AND (lease_owner = '' OR lease_owner = $2 OR lease_until IS NULL OR lease_until <= $4)
		RETURNING `+Columns, id, owner, d.Time(until), d.Time(now))
	if err == nil {
		return r, true, nil
	}
	if !errors.Is(err, ErrNoRows) {
		return nil, false, s.wrap(err)
	}
	r, err = s.Get(ctx, id)
	if err != nil {
		return nil, false, err
	}
	return r, false, nil
}

// Update writes rec if its version is current and owner holds the lease.
func (s *Store) Update(ctx context.Context, rec *connect.Record, owner string, release bool) (*connect.Record, error) {
	d := s.Driver
	r, err := d.QueryRecord(ctx, `UPDATE pleooauth_connections SET
			account = $1, status = $2, scopes = $3, updated_at = $4, token_expiry = $5, last_refresh_at = $6,
			last_error = $7, tokens = $8, refresh_sent_at = $9, version = version + 1,
			lease_owner = CASE WHEN $10 THEN '' ELSE lease_owner END,
			lease_until = CASE WHEN $10 THEN NULL ELSE lease_until END
		WHERE id = $11 AND version = $12 AND lease_owner = $13 AND lease_owner <> ''
		RETURNING `+Columns,
		rec.Account, string(rec.Status), d.Scopes(rec.Scopes), d.Time(rec.UpdatedAt), d.NullTime(rec.TokenExpiry),
		d.NullTime(rec.LastRefreshAt), rec.LastError, rec.Tokens, d.NullTime(rec.RefreshSentAt), release,
		rec.ID, rec.Version, owner)
	if err == nil {
		return r, nil
	}
	if !errors.Is(err, ErrNoRows) {
		return nil, s.wrap(err)
	}
	if _, err := s.Get(ctx, rec.ID); err != nil {
		return nil, err
	}
	return nil, connect.ErrVersionConflict
}

// Release frees the lease if owner holds it.
func (s *Store) Release(ctx context.Context, id, owner string) error {
	if err := s.Driver.Exec(ctx, `UPDATE pleooauth_connections SET lease_owner = '', lease_until = NULL
		WHERE id = $1 AND lease_owner = $2 AND lease_owner <> ''`, id, owner); err != nil {
		return s.wrap(err)
	}
	return nil
}

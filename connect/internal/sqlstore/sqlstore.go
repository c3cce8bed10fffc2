// Package sqlstore is the SQL that connect/pgstore and connect/sqlitestore
// share: one statement for each [connect.Store] method, run through a
// [Driver] that binds and scans values the way its database wants them.
// The statements number their parameters $1, $2, ...; a driver whose
// database spells them otherwise rewrites them.
//
// Coordination time is the store's: every statement that compares or sets
// a lease's expiry or a refresh marker, or returns records, reads the
// store's time through [Driver.Now] (the database's clock for PostgreSQL,
// a parameter for SQLite), and every record it returns carries that time
// in ReadAt.
package sqlstore

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/partnerkit/pleooauth/connect"
)

// ConnectionColumns are the columns of pleooauth_connections that hold a
// [connect.Connection], in the order Driver.QueryConnections scans them.
const ConnectionColumns = `id, account, status, scopes, created_at, updated_at, token_expiry, last_refresh_at, last_error,
	health, failing_since, keepalive_at`

// Columns are the columns of pleooauth_connections that hold a
// [connect.Record], in the order Driver.QueryRecord scans them (followed
// by the store's time).
const Columns = ConnectionColumns + `, tokens, version, lease_owner, lease_until, refresh_sent_at`

// EventColumns are the columns of pleooauth_events, in the order
// Driver.QueryEvents scans them.
const EventColumns = `seq, connection_id, account, old_account, old_status, new_status, old_health, new_health,
	grant_stored, reason, version, at`

// ErrNoRows is what a Driver returns when a query that returns one row
// returned none.
var ErrNoRows = errors.New("no rows")

// Driver runs statements on one database and converts values for it.
type Driver interface {
	// QueryRecord runs query, which returns at most one row of Columns
	// followed by the store's time, and scans that row, the time into
	// ReadAt; it returns ErrNoRows when there is none.
	QueryRecord(ctx context.Context, query string, args ...any) (*connect.Record, error)
	// QueryConnections runs query, which returns rows of
	// ConnectionColumns.
	QueryConnections(ctx context.Context, query string, args ...any) ([]connect.Connection, error)
	// QueryEvents runs query, which returns rows of EventColumns.
	QueryEvents(ctx context.Context, query string, args ...any) ([]connect.Event, error)
	// QueryCounts runs query, which returns rows of status, health and a
	// count.
	QueryCounts(ctx context.Context, query string, args ...any) ([]connect.StatusCount, error)
	// QueryPos runs query, which returns at most one row of one integer,
	// and returns it; ErrNoRows when there is none.
	QueryPos(ctx context.Context, query string, args ...any) (int64, error)
	// ExecCount runs a statement that returns no rows and returns how
	// many rows it inserted, updated or deleted.
	ExecCount(ctx context.Context, query string, args ...any) (int64, error)
	// Time, NullTime and Scopes convert values for binding; NullTime
	// binds the zero time as NULL.
	Time(t time.Time) any
	NullTime(t time.Time) any
	Scopes(s []string) any
	// Now returns the SQL expression of the store's time, given the
	// parameter p (such as "$3") that binds NowArg's value. Within one
	// statement it is one time.
	Now(p string) string
	// NowArg returns the value to bind to Now's parameter, once for each
	// statement.
	NowArg() any
	// Plus returns the SQL expression of the time t (an SQL expression)
	// plus the duration that parameter p binds, in microseconds.
	Plus(t, p string) string
}

// Store implements connect.Store's methods on a Driver. Its errors start
// with Name.
type Store struct {
	Name   string
	Driver Driver
}

func (s *Store) wrap(err error) error { return fmt.Errorf("%s: %w", s.Name, err) }

// returning is the RETURNING clause of a statement that returns the
// record, with the store's time bound to parameter p.
func (s *Store) returning(p string) string {
	return ` RETURNING ` + Columns + `, ` + s.Driver.Now(p)
}

// leaseFree is the condition that the lease is free, expired at the
// store's time (parameter now) or held by the owner (parameter owner).
func (s *Store) leaseFree(owner, now string) string {
	return `(lease_owner = '' OR lease_owner = ` + owner + ` OR lease_until IS NULL OR lease_until <= ` + s.Driver.Now(now) + `)`
}

// Get returns the record with that ID.
func (s *Store) Get(ctx context.Context, id string) (*connect.Record, error) {
	d := s.Driver
	r, err := d.QueryRecord(ctx, `SELECT `+Columns+`, `+d.Now("$2")+` FROM pleooauth_connections WHERE id = $1`,
		id, d.NowArg())
	if errors.Is(err, ErrNoRows) {
		return nil, fmt.Errorf("%w: %s", connect.ErrNoConnection, id)
	}
	if err != nil {
		return nil, s.wrap(err)
	}
	return r, nil
}

// ListStatement returns the statement that selects the connections q
// selects, ordered by ID, and its arguments, or the error of
// [connect.Query.Check]. Its WHERE clause has a condition for each filter
// q sets and none for the others, so that the index on (account, id) or
// (status, id) serves it.
func ListStatement(q connect.Query) (string, []any, error) {
	if err := q.Check(); err != nil {
		return "", nil, err
	}
	var (
		where []string
		args  []any
	)
	param := func(v any) string {
		args = append(args, v)
		return fmt.Sprintf("$%d", len(args))
	}
	if q.Account != "" {
		where = append(where, `account = `+param(q.Account))
	}
	if q.Status != "" {
		where = append(where, `status = `+param(string(q.Status)))
	}
	if q.After != "" {
		where = append(where, `id > `+param(q.After))
	}
	query := `SELECT ` + ConnectionColumns + ` FROM pleooauth_connections`
	if len(where) > 0 {
		query += ` WHERE ` + strings.Join(where, ` AND `)
	}
	query += ` ORDER BY id LIMIT ` + param(q.PageSize())
	return query, args, nil
}

// List returns the connections q selects, ordered by ID.
func (s *Store) List(ctx context.Context, q connect.Query) ([]connect.Connection, error) {
	query, args, err := ListStatement(q)
	if err != nil {
		return nil, err
	}
	out, err := s.Driver.QueryConnections(ctx, query, args...)
	if err != nil {
		return nil, s.wrap(err)
	}
	return out, nil
}

// Put stores the connection's new grant if rec.Version is the stored one
// (0: there is no record with that ID).
func (s *Store) Put(ctx context.Context, rec *connect.Record) (*connect.Record, error) {
	d := s.Driver
	var (
		r   *connect.Record
		err error
	)
	if rec.Version == 0 {
		r, err = d.QueryRecord(ctx, `INSERT INTO pleooauth_connections (`+Columns+`)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $12, $13, COALESCE($14, `+d.Now("$11")+`), $10, 1, '', NULL, NULL)
			ON CONFLICT (id) DO NOTHING`+s.returning("$11"),
			rec.ID, rec.Account, string(rec.Status), d.Scopes(rec.Scopes), d.Time(rec.CreatedAt), d.Time(rec.UpdatedAt),
			d.NullTime(rec.TokenExpiry), d.NullTime(rec.LastRefreshAt), rec.LastError, rec.Tokens, d.NowArg(),
			health(rec.Health), d.NullTime(rec.FailingSince), d.NullTime(rec.KeepAliveAt))
	} else {
		r, err = d.QueryRecord(ctx, `UPDATE pleooauth_connections SET
				account = $2, status = $3, scopes = $4, updated_at = $5, token_expiry = $6, last_refresh_at = $7,
				last_error = $8, tokens = $9, version = version + 1, grants = grants + 1,
				health = $12, failing_since = $13, keepalive_at = COALESCE($14, `+d.Now("$11")+`),
				lease_owner = '', lease_until = NULL, refresh_sent_at = NULL
			WHERE id = $1 AND version = $10`+s.returning("$11"),
			rec.ID, rec.Account, string(rec.Status), d.Scopes(rec.Scopes), d.Time(rec.UpdatedAt),
			d.NullTime(rec.TokenExpiry), d.NullTime(rec.LastRefreshAt), rec.LastError, rec.Tokens, rec.Version, d.NowArg(),
			health(rec.Health), d.NullTime(rec.FailingSince), d.NullTime(rec.KeepAliveAt))
	}
	if errors.Is(err, ErrNoRows) {
		return nil, fmt.Errorf("%w: %s", connect.ErrVersionConflict, rec.ID)
	}
	if err != nil {
		return nil, s.wrap(err)
	}
	return r, nil
}

// Acquire takes the refresh lease for ttl on the store's clock if it is
// free, expired or owner's.
func (s *Store) Acquire(ctx context.Context, id, owner string, ttl time.Duration) (*connect.Record, bool, error) {
	d := s.Driver
	r, err := d.QueryRecord(ctx, `UPDATE pleooauth_connections SET lease_owner = $2, lease_until = `+d.Plus(d.Now("$4"), "$3")+`
		WHERE id = $1 AND `+s.leaseFree("$2", "$4")+s.returning("$4"),
		id, owner, ttl.Microseconds(), d.NowArg())
	return s.attempted(ctx, id, r, err)
}

// Claim takes the refresh lease for ttl and marks a refresh as sent, if
// version is the stored one and the lease is free, expired or owner's.
func (s *Store) Claim(ctx context.Context, id, owner string, version int64, ttl time.Duration) (*connect.Record, bool, error) {
	d := s.Driver
	r, err := d.QueryRecord(ctx, `UPDATE pleooauth_connections SET
			lease_owner = $2, lease_until = `+d.Plus(d.Now("$5"), "$4")+`, refresh_sent_at = `+d.Now("$5")+`,
			version = version + 1
		WHERE id = $1 AND version = $3 AND `+s.leaseFree("$2", "$5")+s.returning("$5"),
		id, owner, version, ttl.Microseconds(), d.NowArg())
	return s.attempted(ctx, id, r, err)
}

// attempted returns the outcome of a conditional UPDATE of the record id
// that returned r, or err: r and true, or, when it updated no row, the
// record as Get reads it and false.
func (s *Store) attempted(ctx context.Context, id string, r *connect.Record, err error) (*connect.Record, bool, error) {
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

// Update writes rec if its version is the stored one, freeing the lease
// with release if owner holds it.
func (s *Store) Update(ctx context.Context, rec *connect.Record, owner string, release bool) (*connect.Record, error) {
	d := s.Driver
	const releasing = `$10 AND lease_owner = $11 AND lease_owner <> ''`
	r, err := d.QueryRecord(ctx, `UPDATE pleooauth_connections SET
			account = $1, status = $2, scopes = $3, updated_at = $4, token_expiry = $5, last_refresh_at = $6,
			last_error = $7, tokens = $8, refresh_sent_at = $9, version = version + 1,
			health = $15, failing_since = $16, keepalive_at = COALESCE($17, `+d.Now("$14")+`),
			lease_owner = CASE WHEN `+releasing+` THEN '' ELSE lease_owner END,
			lease_until = CASE WHEN `+releasing+` THEN NULL ELSE lease_until END
		WHERE id = $12 AND version = $13`+s.returning("$14"),
		rec.Account, string(rec.Status), d.Scopes(rec.Scopes), d.Time(rec.UpdatedAt), d.NullTime(rec.TokenExpiry),
		d.NullTime(rec.LastRefreshAt), rec.LastError, rec.Tokens, d.NullTime(rec.RefreshSentAt), release, owner,
		rec.ID, rec.Version, d.NowArg(), health(rec.Health), d.NullTime(rec.FailingSince), d.NullTime(rec.KeepAliveAt))
	if err == nil {
		return r, nil
	}
	if !errors.Is(err, ErrNoRows) {
		return nil, s.wrap(err)
	}
	if _, err := s.Get(ctx, rec.ID); err != nil {
		return nil, err
	}
	return nil, fmt.Errorf("%w: %s", connect.ErrVersionConflict, rec.ID)
}

// health is h as stored: HealthOK when unset.
func health(h connect.Health) string {
	if h == "" {
		return string(connect.HealthOK)
	}
	return string(h)
}

// DueStatement is the statement of Due on d's database, with the store's
// time bound to $1 and the limit to $2: the partial index on
// (keepalive_at, id) of the active connections serves it, reading the due
// rows in order and stopping after the limit.
func DueStatement(d Driver) string {
	return `SELECT ` + ConnectionColumns + ` FROM pleooauth_connections
		WHERE status = 'active' AND keepalive_at <= ` + d.Now("$1") + `
			AND (lease_owner = '' OR lease_until IS NULL OR lease_until <= ` + d.Now("$1") + `)
		ORDER BY keepalive_at, id LIMIT $2`
}

// Due returns at most limit active connections due for keep-alive,
// earliest first.
func (s *Store) Due(ctx context.Context, limit int) ([]connect.Connection, error) {
	out, err := s.Driver.QueryConnections(ctx, DueStatement(s.Driver), s.Driver.NowArg(), limit)
	if err != nil {
		return nil, s.wrap(err)
	}
	return out, nil
}

// Count returns how many connections there are of each status and
// health.
func (s *Store) Count(ctx context.Context) ([]connect.StatusCount, error) {
	out, err := s.Driver.QueryCounts(ctx, `SELECT status, health, COUNT(*) FROM pleooauth_connections
		GROUP BY status, health ORDER BY status, health`)
	if err != nil {
		return nil, s.wrap(err)
	}
	return out, nil
}

// Events returns the events after the one with Seq after, in order.
func (s *Store) Events(ctx context.Context, after int64, limit int) ([]connect.Event, error) {
	out, err := s.Driver.QueryEvents(ctx, `SELECT `+EventColumns+` FROM pleooauth_events
		WHERE seq > $1 ORDER BY seq LIMIT $2`, after, limit)
	if err != nil {
		return nil, s.wrap(err)
	}
	return out, nil
}

// TakeCursor takes the lease on the event cursor name for owner for ttl,
// if it is free, expired or owner's, and returns its position.
func (s *Store) TakeCursor(ctx context.Context, name, owner string, ttl time.Duration) (int64, bool, error) {
	d := s.Driver
	if _, err := d.ExecCount(ctx, `INSERT INTO pleooauth_cursors (name) VALUES ($1) ON CONFLICT (name) DO NOTHING`, name); err != nil {
		return 0, false, s.wrap(err)
	}
	pos, err := d.QueryPos(ctx, `UPDATE pleooauth_cursors SET owner = $2, until = `+d.Plus(d.Now("$4"), "$3")+`
		WHERE name = $1 AND (owner = '' OR owner = $2 OR until IS NULL OR until <= `+d.Now("$4")+`) RETURNING pos`,
		name, owner, ttl.Microseconds(), d.NowArg())
	if err == nil {
		return pos, true, nil
	}
	if !errors.Is(err, ErrNoRows) {
		return 0, false, s.wrap(err)
	}
	pos, err = d.QueryPos(ctx, `SELECT pos FROM pleooauth_cursors WHERE name = $1`, name)
	if err != nil {
		return 0, false, s.wrap(err)
	}
	return pos, false, nil
}

// MoveCursor sets the cursor's position and renews owner's lease, if owner
// holds a live one.
func (s *Store) MoveCursor(ctx context.Context, name, owner string, pos int64, ttl time.Duration) error {
	d := s.Driver
	n, err := d.ExecCount(ctx, `UPDATE pleooauth_cursors SET pos = $3, until = `+d.Plus(d.Now("$5"), "$4")+`
		WHERE name = $1 AND owner = $2 AND owner <> '' AND until > `+d.Now("$5"),
		name, owner, pos, ttl.Microseconds(), d.NowArg())
	if err != nil {
		return s.wrap(err)
	}
	if n == 0 {
		return fmt.Errorf("%w: %s", connect.ErrCursorLost, name)
	}
	return nil
}

// Release frees the lease if owner holds it.
func (s *Store) Release(ctx context.Context, id, owner string) error {
	if _, err := s.Driver.ExecCount(ctx, `UPDATE pleooauth_connections SET lease_owner = '', lease_until = NULL
		WHERE id = $1 AND lease_owner = $2 AND lease_owner <> ''`, id, owner); err != nil {
		return s.wrap(err)
	}
	return nil
}

// UseFlow records the finished flow id for ttl on the store's clock and
// reports whether this call was the first to record it. A row kept past
// its expiry is no previous use: the upsert takes it over, and the flows
// past their expiry are deleted first, to keep the table small.
func (s *Store) UseFlow(ctx context.Context, id string, ttl time.Duration) (bool, error) {
	d := s.Driver
	now := d.NowArg()
	if _, err := d.ExecCount(ctx, `DELETE FROM pleooauth_flows WHERE expires_at <= `+d.Now("$1"), now); err != nil {
		return false, s.wrap(err)
	}
	n, err := d.ExecCount(ctx, `INSERT INTO pleooauth_flows (id, expires_at) VALUES ($1, `+d.Plus(d.Now("$3"), "$2")+`)
		ON CONFLICT (id) DO UPDATE SET expires_at = excluded.expires_at
		WHERE pleooauth_flows.expires_at <= `+d.Now("$3"),
		id, ttl.Microseconds(), now)
	if err != nil {
		return false, s.wrap(err)
	}
	return n > 0, nil
}

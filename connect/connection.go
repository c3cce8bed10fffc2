package connect

import (
	"context"
	"fmt"
	"time"
)

// Status is the state of a [Connection].
type Status string

// The statuses of a connection.
const (
	// StatusActive: the grant is alive; tokens are handed out and
	// refreshed.
	StatusActive Status = "active"
	// StatusReauthorizationRequired: the grant is gone (see
	// [ErrReauthorizationRequired]); the company must connect again.
	StatusReauthorizationRequired Status = "reauthorization_required"
	// StatusDisconnected: the partner disconnected it; tokens are erased.
	StatusDisconnected Status = "disconnected"
)

// Health says whether an active connection's refreshes succeed.
type Health string

// The health of a connection.
const (
	// HealthOK: the last refresh attempt succeeded (or none failed yet).
	HealthOK Health = "ok"
	// HealthFailing: refreshes have failed without Pleo refusing the
	// grant (its token endpoint unreachable or answering 5xx, answers
	// lost) for longer than [WithFailingAfter]. The connection is still
	// active and still tried, with backoff; it is reported so that an
	// operator looks before the refresh token ages out.
	HealthFailing Health = "failing"
)

// StatusCount is how many connections have a status and health.
type StatusCount struct {
	Status Status
	Health Health
	N      int64 // how many connections have both
}

// Connection is one Pleo company's (or organisation's) grant to the
// partner's client: one per company, whichever of the partner's customers
// connected it. It holds what operators need and never a token.
type Connection struct {
	// ID is the Pleo subject URN the grant is for, such as
	// "urn:pleo:company:<uuid>", learned by introspecting the access token
	// after the code exchange (urn:pleo:params:oauth:subject_urn).
	ID string `json:"id"`
	// Account is the partner's own opaque reference for the customer who
	// connected it (their tenant or user ID), carried through the flow.
	Account string `json:"account"`
	// Status says whether tokens can be handed out.
	Status Status `json:"status"`
	// Scopes are the scopes Pleo granted.
	Scopes []string `json:"scopes"`
	// CreatedAt is when the company first connected; UpdatedAt when the
	// record last changed.
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
	// TokenExpiry is when the current access token expires.
	TokenExpiry time.Time `json:"token_expiry,omitzero"`
	// LastRefreshAt is when the tokens were last refreshed.
	LastRefreshAt time.Time `json:"last_refresh_at,omitzero"`
	// LastError is the OAuth error code (invalid_grant) or short reason of
	// the last failure, or "": refresh_outcome_unknown (a refresh's answer
	// was lost), revoked (Pleo's API refused a live-looking token and
	// introspection confirmed it), token_endpoint_unavailable (a refresh
	// never reached Pleo) or token_endpoint_NNN (Pleo answered status NNN
	// without an error code).
	LastError string `json:"last_error,omitempty"`
	// Health says whether refreshes succeed; FailingSince is when the
	// current run of failed refresh attempts began (zero after a success).
	Health       Health    `json:"health"`
	FailingSince time.Time `json:"failing_since,omitzero"`
	// KeepAliveAt is when [Manager.Run] next refreshes the connection if
	// nothing else does first: a keep-alive period after its last refresh,
	// or after a failed attempt the backoff's next try. On the store's
	// clock.
	KeepAliveAt time.Time `json:"keepalive_at,omitzero"`
}

// Record is what a [Store] keeps for one connection: the connection, its
// tokens sealed by the [Manager] (AES-GCM; the store never sees a token),
// and the fields that coordinate refreshes across instances. Every time in
// it but the Connection's is on the store's clock.
type Record struct {
	Connection
	// Tokens are the access and refresh token, sealed. nil once
	// disconnected.
	Tokens []byte
	// Version is the record's version: 1 for a new record, one more on
	// every write but a lease's (Put, Claim, Update). Every write the
	// Manager makes is fenced by it.
	Version int64
	// LeaseOwner and LeaseUntil are the refresh lease: the instance that
	// works on the connection, until when (the store's clock).
	LeaseOwner string
	LeaseUntil time.Time
	// RefreshSentAt is the store's time when a refresh was claimed: from
	// then until its answer is saved the refresh token may be spent. See
	// [Manager.Token] for what becomes of such a connection.
	RefreshSentAt time.Time
	// ReadAt is the store's clock when this copy was read or written. It
	// is not stored: every decision that compares times (has the lease
	// expired, can a lost refresh still be in flight) is made on it, so
	// that instances whose clocks disagree still agree on the store's.
	ReadAt time.Time
}

// Query selects connections for [Manager.List] and [Store.List]: one
// account's, or every account's when AllAccounts is set. A Query that
// names no account and does not set AllAccounts selects nothing and is an
// error, so that a tenant with an empty ID never sees every customer's
// connections.
type Query struct {
	Account     string // only this account's connections
	AllAccounts bool   // every account's connections (Account must be "")
	Status      Status // only connections with this status, when set
	After       string // only IDs after this one (the last ID of the page before)
	Limit       int    // at most this many; 0 means DefaultPageSize
}

// DefaultPageSize is how many connections a [Query] without a Limit
// selects at most.
const DefaultPageSize = 100

// PageSize returns how many connections q selects at most: its Limit, or
// [DefaultPageSize] when Limit is 0 or less. A [Store] reads it.
func (q Query) PageSize() int {
	if q.Limit <= 0 {
		return DefaultPageSize
	}
	return q.Limit
}

// Check returns an error matching [ErrInvalidQuery] when q selects no
// account and does not set AllAccounts, or sets both. A [Store] calls it
// first in List.
func (q Query) Check() error {
	switch {
	case q.Account == "" && !q.AllAccounts:
		return fmt.Errorf("%w: it names no account; set AllAccounts to list every account's connections", ErrInvalidQuery)
	case q.Account != "" && q.AllAccounts:
		return fmt.Errorf("%w: it names an account and sets AllAccounts", ErrInvalidQuery)
	}
	return nil
}

// Store keeps connections for a [Manager], shared by every instance of a
// backend. [connect/storetest.Run] is the definition of what a store must
// guarantee; run it on any store of your own. Implementations in this
// module: [MemoryStore] (one process, tests), connect/sqlitestore (the
// embedded default) and connect/pgstore (PostgreSQL).
//
// Coordination time comes from the store: a lease's expiry and a refresh
// marker's time are set and compared on the store's own clock, never on
// the caller's, and every record a method returns carries that clock's
// time in ReadAt. Instances whose clocks disagree (by minutes) still
// coordinate; the one clock that must run true is the store's.
type Store interface {
	// Get returns the record with that ID, or an error matching
	// [ErrNoConnection].
	Get(ctx context.Context, id string) (*Record, error)

	// List returns the connections q selects, ordered by ID. It returns
	// the error of [Query.Check] for a query that names no account
	// without AllAccounts.
	List(ctx context.Context, q Query) ([]Connection, error)

	// Put stores rec as the connection's new grant if the stored Version
	// is rec.Version, where 0 means there is no record with that ID yet.
	// It keeps the stored CreatedAt (rec's for a new ID), writes every
	// other Connection field and Tokens from rec, sets Version to one more
	// than the stored one (1 for a new ID), clears the lease and
	// RefreshSentAt, and returns the record as stored. Otherwise it
	// writes nothing and returns an error matching [ErrVersionConflict].
	Put(ctx context.Context, rec *Record) (*Record, error)

	// Acquire takes the connection's lease for owner for ttl on the
	// store's clock (LeaseUntil becomes the store's time plus ttl) if the
	// lease is free, expired (LeaseUntil not after the store's time) or
	// already owner's, and reports whether it did. It changes nothing
	// else, Version included. Either way it returns the record as it is
	// after the attempt, read in the same atomic step. A missing ID is an
	// error matching [ErrNoConnection].
	Acquire(ctx context.Context, id, owner string, ttl time.Duration) (*Record, bool, error)

	// Claim is Acquire and the start of a refresh in one atomic step: if
	// the stored Version is version and the lease is free, expired or
	// owner's, it takes the lease for owner for ttl, sets RefreshSentAt to
	// the store's time, adds one to Version, and reports true. Otherwise
	// it writes nothing and reports false. Either way it returns the
	// record as it is after the attempt. A missing ID is an error matching
	// [ErrNoConnection].
	Claim(ctx context.Context, id, owner string, version int64, ttl time.Duration) (*Record, bool, error)

	// Update writes rec's Connection fields (all but CreatedAt), Tokens
	// and RefreshSentAt if the stored Version is rec.Version, and adds one
	// to Version; with release it also frees the lease if owner holds it.
	// A lease held by another is left as it is. Otherwise it writes
	// nothing and returns an error matching [ErrVersionConflict] (or
	// [ErrNoConnection]). It returns the record as stored.
	Update(ctx context.Context, rec *Record, owner string, release bool) (*Record, error)

	// Release frees the lease if owner holds it, and does nothing
	// otherwise. It does not change Version.
	Release(ctx context.Context, id, owner string) error

	// Due returns at most limit active connections whose KeepAliveAt is
	// not after the store's time and whose lease is free or expired,
	// earliest KeepAliveAt first. It is how [Manager.Run] finds the
	// connections to keep alive; its cost must not grow with the number
	// of connections that are not due (an index on KeepAliveAt of the
	// active ones serves it).
	Due(ctx context.Context, limit int) ([]Connection, error)

	// Events returns at most limit of the events recorded after the one
	// whose Seq is after, in Seq order. A store records an [Event] in the
	// same atomic write as each change it stands for: every Put (a new or
	// replaced grant), and every Update that changes Status, Health or
	// Account; no other write records one. Seq increases in the order the
	// writes commit, so that a reader that has read up to a Seq never
	// misses an event committed later with a smaller one.
	Events(ctx context.Context, after int64, limit int) ([]Event, error)

	// TakeCursor takes the lease on the event cursor name for owner for
	// ttl on the store's clock, if it is free, expired or owner's, and
	// returns the cursor's position (0 for a new cursor) and whether it
	// did. It is how one instance at a time delivers events.
	TakeCursor(ctx context.Context, name, owner string, ttl time.Duration) (pos int64, ok bool, err error)

	// MoveCursor sets the cursor's position to pos and renews owner's
	// lease for ttl, if owner holds a live lease on it; otherwise it
	// changes nothing and returns an error matching [ErrCursorLost].
	MoveCursor(ctx context.Context, name, owner string, pos int64, ttl time.Duration) error

	// Count returns how many connections there are of each status and
	// health (pairs with none left out). The Manager's telemetry reads it
	// when metrics are collected.
	Count(ctx context.Context) ([]StatusCount, error)

	// UseFlow records that the authorization flow with this ID (a sealed
	// flow value's nonce) has been finished, and remembers it for ttl on
	// the store's clock; it reports whether this call was the first to
	// record it. It is how every instance refuses a callback that another
	// instance already took.
	UseFlow(ctx context.Context, id string, ttl time.Duration) (bool, error)
}

package connect

import (
	"context"
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
}

// Record is what a [Store] keeps for one connection: the connection, its
// tokens sealed by the [Manager] (AES-GCM; the store never sees a token),
// and the fields that coordinate refreshes across instances.
type Record struct {
	Connection
	// Tokens are the access and refresh token, sealed. nil once
	// disconnected.
	Tokens []byte
	// Version is the record's version: the store sets it to 1 on the
	// first Put and adds one on every Put and Update.
	Version int64
	// LeaseOwner and LeaseUntil are the refresh lease: the instance that
	// may refresh the tokens, until when.
	LeaseOwner string
	LeaseUntil time.Time
	// RefreshSentAt is set while a refresh request may have reached Pleo
	// and its answer is not saved; see [Manager.Token] for what becomes
	// of such a connection.
	RefreshSentAt time.Time
}

// Query selects connections for [Manager.List] and [Store.List]. The zero
// Query selects all.
type Query struct {
	Account string // only this account's connections, when set
	Status  Status // only connections with this status, when set
	After   string // only IDs after this one (the last ID of the page before)
	Limit   int    // at most this many; 0 means DefaultPageSize
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

// Store keeps connections for a [Manager], shared by every instance of a
// backend. [connect/storetest.Run] is the definition of what a store must
// guarantee; run it on any store of your own. Implementations in this
// module: [MemoryStore] (one process, tests), connect/sqlitestore (the
// embedded default) and connect/pgstore (PostgreSQL).
type Store interface {
	// Get returns the record with that ID, or an error matching
	// [ErrNoConnection].
	Get(ctx context.Context, id string) (*Record, error)

	// List returns the connections q selects, ordered by ID.
	List(ctx context.Context, q Query) ([]Connection, error)

	// Put stores rec as the connection's new grant, whatever was stored
	// before: it keeps the stored CreatedAt (rec's for a new ID), sets
	// UpdatedAt to rec's, sets Version to one more than the stored one (1
	// for a new ID), clears the lease and RefreshSentAt, and returns the
	// record as stored.
	Put(ctx context.Context, rec *Record) (*Record, error)

	// Acquire takes the refresh lease of the connection for owner until
	// until, if it is free, expired (LeaseUntil not after now) or already
	// owner's, and reports whether it did. Either way it returns the
	// record as it is after the attempt, read in the same atomic step.
	Acquire(ctx context.Context, id, owner string, now, until time.Time) (*Record, bool, error)

	// Update writes rec's Connection fields, Tokens and RefreshSentAt if the
	// stored Version is rec.Version and owner holds the lease; it adds one
	// to Version and, when release is true, frees the lease. Otherwise it
	// writes nothing and returns an error matching [ErrVersionConflict].
	// It returns the record as stored.
	Update(ctx context.Context, rec *Record, owner string, release bool) (*Record, error)

	// Release frees the lease if owner holds it, and does nothing
	// otherwise.
	Release(ctx context.Context, id, owner string) error
}

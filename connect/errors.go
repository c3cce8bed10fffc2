package connect

import "errors"

// Sentinel errors. Match them with [errors.Is]. None of them, nor any
// error this package returns, carries a token, a code, a PKCE verifier or
// the client secret.
var (
	// ErrNoConnection: no connection has that ID (the store has no record
	// of the company).
	ErrNoConnection = errors.New("connect: no such connection")

	// ErrReauthorizationRequired: the connection's grant is gone. Pleo
	// refused the refresh token (invalid_grant, or Pleo's
	// invalid_refresh_token: it expired, was revoked, or an old one was
	// reused and Pleo invalidated them all), or a refresh's answer was
	// lost after Pleo had rotated the refresh token. Pleo: "Always treat
	// refresh token failures as terminal." It is never retried; the
	// connection's status is [StatusReauthorizationRequired] until the
	// company connects again through the flow.
	ErrReauthorizationRequired = errors.New("connect: reauthorization required")

	// ErrDisconnected: the connection was disconnected; its tokens are
	// erased. The company can connect again through the flow.
	ErrDisconnected = errors.New("connect: connection disconnected")

	// ErrVersionConflict is what a [Store] returns from Put and Update when
	// the record changed since it was read (its Version moved on): the write
	// is refused, as a fence.
	ErrVersionConflict = errors.New("connect: the connection changed meanwhile")

	// ErrFlowExpired: the sealed flow value is past its expiry; the user
	// took too long, or the value is an old one.
	ErrFlowExpired = errors.New("connect: authorization flow expired")

	// ErrFlowInvalid: the sealed flow value is malformed, was tampered
	// with, was sealed with another key or for another client, or was
	// already used.
	ErrFlowInvalid = errors.New("connect: authorization flow value is invalid")

	// ErrStateMismatch: the callback's state is not the one this flow
	// sent; never exchange the code (Pleo: "Never proceed with token
	// exchange if the state validation fails.").
	ErrStateMismatch = errors.New("connect: callback state does not match")

	// ErrAccessDenied: the authorization server's callback said
	// access_denied (RFC 6749 section 4.1.2.1): the user said no. It is an
	// answer, not a failure. Any other error callback is an error whose
	// message names its code.
	ErrAccessDenied = errors.New("connect: the user denied access")

	// ErrNoAccount is returned by [Handlers] when the partner's Account
	// function gives no account for the request (nobody is signed in).
	ErrNoAccount = errors.New("connect: no account to connect for")

	// ErrConnectedToAnotherAccount: the Pleo company is connected under
	// another of the partner's accounts. [Manager.Complete] never moves a
	// connection from one account to another unless the Manager was made
	// with [WithAccountTakeover]; the grant just made is not stored.
	ErrConnectedToAnotherAccount = errors.New("connect: the company is connected under another account")

	// ErrRefreshPending: a refresh of the connection was sent and its
	// answer is not known yet, so no instance may present its refresh
	// token until the quarantine ([WithQuarantine]) has passed. The
	// connection is still active; ask again later.
	ErrRefreshPending = errors.New("connect: a refresh's outcome is not known yet")

	// ErrInvalidQuery: a [Query] that names no account without
	// AllAccounts, or both.
	ErrInvalidQuery = errors.New("connect: invalid connection query")
)

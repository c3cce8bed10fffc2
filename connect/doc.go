// Package connect is what a partner's backend runs per customer: the
// authorization flow, and one connection per Pleo company, kept alive
// across every instance of the backend.
//
// # The flow
//
// [Flow] runs the authorization code flow with PKCE (S256) and a state,
// with no session store: [Flow.Start] seals the state, the verifier and the
// partner's own account reference (who is connecting: their tenant or user
// ID) with AES-GCM into a value kept in a cookie; [Flow.Finish] opens it,
// checks the state in constant time and exchanges the code. Any instance
// holding the key finishes a flow another started. [Handlers] serves both
// ends over net/http and makes the connection.
//
// # Connections
//
// A [Connection] is one Pleo company's (or organisation's) grant, named by
// the subject URN Pleo's introspection gives (urn:pleo:company:<uuid>),
// and belongs to the partner's account that connected it.
// [Manager.Complete] makes one from a finished flow; [Manager.Token],
// [Manager.TokenSource] and [Manager.Client] hand out its access token;
// [Manager.Disconnect] revokes it at Pleo and erases it. A handler serving
// one of the partner's customers reaches only that account's connections
// through [Manager.ForAccount].
//
// # Guarantees
//
// Pleo rotates the refresh token on every refresh and, when an old one is
// presented again, revokes every token of the grant. Across every instance
// sharing a [Store], whatever their clocks, stalls, crashes and lost
// answers:
//
//   - no refresh token is presented twice, so no grant is lost to a reuse;
//   - Disconnect revokes the grant the store holds (and any stored
//     meanwhile) before the connection is shown disconnected;
//   - a connection never moves to another account unless the Manager was
//     made [WithAccountTakeover];
//   - a callback is exchanged once, whichever instances it reaches.
//
// A grant can still be lost when Pleo processed a refresh and its answer
// never reached a Manager that could save it (a crash at that moment, or a
// dropped answer): the connection then needs reauthorization (last error
// refresh_outcome_unknown), rather than risk presenting a spent token. A
// grant that a new one of the same company replaces is dropped, not
// revoked ([Manager.Complete] says why).
//
// # Refreshing
//
// Refreshes are coordinated through the store, never through a database
// lock held across Pleo's HTTP call:
//
//  1. An instance reads the record; if its access token expires within the
//     expiry delta, it claims the refresh: one conditional write that, if
//     the record's version is still the one read and no other instance
//     holds a live lease, takes the lease and records that a refresh is
//     being sent (the marker, at the store's time). The request's deadline
//     is fixed before that write, and the request is not sent if the
//     deadline has passed when the write returns.
//  2. It sends the refresh and saves the rotated tokens with the lease
//     released in one write, fenced by the record's version: a save lands
//     however long the store was away (tried with backoff for up to a
//     minute), unless another write came first. Instances that find the
//     lease taken wait for it and take the new tokens.
//  3. A refresh whose outcome is unknown (a time-out, a dropped connection,
//     a 5xx, a crash) keeps its marker. No instance presents or introspects
//     that refresh token until the quarantine ([WithQuarantine], five
//     minutes by default) has passed since the marker on the store's clock,
//     so that a request Pleo's edge still holds is processed or dropped.
//     Then Pleo's introspection settles it: still active, the refresh goes
//     ahead; inactive, the answer is lost. Meanwhile [Manager.Token] returns
//     [ErrRefreshPending].
//  4. Pleo refusing a refresh token (invalid_grant, invalid_refresh_token)
//     is terminal: [StatusReauthorizationRequired] until the company
//     connects again.
//
// # Clocks
//
// Coordination time comes from the store: leases, markers and the
// quarantine are set and compared on the store's clock (PostgreSQL's, the
// machine's for SQLite, the MemoryStore's Now). That clock is the one
// assumption left: it must run true. Instances may disagree with it by
// minutes. An instance's own clock ([WithClock]) only decides when its
// access token is due: an instance ahead refreshes early; one behind hands
// out a token Pleo has already expired, and Pleo's API answers 401. Report
// that with [Manager.ReportUnauthorized]: it refreshes the stored grant, and
// marks it only when Pleo refuses the refresh too, so a skewed clock costs
// a refresh, never a grant.
//
// # Keep-alive and health
//
// [Manager.Run], which every instance may run, refreshes each active
// connection that has gone a keep-alive period ([WithKeepAlive], a day by
// default) without a refresh, through the same claim and fencing as
// Token: however many instances sweep together, a due connection is
// refreshed once, and a company that uninstalled the app is found within a
// period rather than at its next sync. The store keeps when each
// connection is next due (KeepAliveAt), and [Store.Due] reads the due
// ones, earliest first, from an index.
//
// A refresh that fails without Pleo refusing the grant (its token endpoint
// unreachable, a 5xx or 429, an answer lost) is tried again with
// exponential backoff, at most hourly, the next attempt's time kept in the
// store for every instance. After [WithFailingAfter] (three days) of such
// failures the connection's [Health] becomes [HealthFailing]: still
// active, still tried, now reported. A success makes it [HealthOK] again.
//
// # Events
//
// The store records an [Event] in the same atomic write as each change
// of a connection: connected, reconnected, account changed (where
// allowed), reauthorization required, disconnected, failing, recovered.
// Events are numbered in the order their writes commit (the outbox
// pattern). [WithEventHandler] makes Run deliver them at least once and in
// that order, from one instance at a time, which holds a lease on the
// handler's cursor in the store; a handler error is retried with backoff
// before any later event, and an instance killed between a change and its
// delivery leaves the event for the next. [Manager.Events] reads the log
// for a partner who polls instead. An event never carries a token.
//
// Tokens are sealed at rest (AES-GCM, the connection ID as additional
// data, a key ID in each value so that keys rotate). A store sees only
// sealed bytes and the connection's metadata.
//
// # Telemetry
//
// A Manager reports to OpenTelemetry through [WithMeterProvider] and
// [WithTracerProvider] (the global providers by default, which record
// nothing until the program sets them), under the scope
// "github.com/partnerkit/pleooauth/connect". Metrics:
// pleooauth.connect.refreshes by outcome (ok, refused, unknown, not_sent,
// error, unsaved) and pleooauth.connect.refresh.duration;
// pleooauth.connect.lease.waits and pleooauth.connect.lease.wait.duration,
// an instance waiting for another's refresh; and
// pleooauth.connect.token.cache.lookups by result (hit, miss). Spans:
// pleooauth.connect.refresh, pleooauth.connect.introspect,
// pleooauth.connect.delete_installation (Disconnect) and
// pleooauth.connect.api (a call through [Manager.Client]), each with the
// connection's ID in pleo.connection.id (but Complete's introspection,
// which learns it). No token, code, verifier or secret is ever recorded:
// the errors on spans are this package's, which carry none.
//
// # Stores
//
// [NewMemoryStore] for tests and single-process backends; package
// connect/sqlitestore (SQLite, pure Go, the embedded default) and package
// connect/pgstore (PostgreSQL) for real ones. Package connect/storetest is
// the conformance suite every store passes.
package connect

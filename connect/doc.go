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
// the subject URN Pleo's introspection gives (urn:pleo:company:<uuid>).
// [Manager.Complete] makes one from a finished flow; [Manager.Token],
// [Manager.TokenSource] and [Manager.Client] hand out its access token;
// [Manager.Disconnect] revokes it at Pleo and erases it.
//
// Pleo rotates the refresh token on every refresh and, when an old one is
// presented again, revokes every token of the grant. So a connection is
// refreshed by one instance at a time, through a lease in the [Store] that
// every instance shares, and the new tokens are saved, fenced by the
// record's version, before the access token is handed out; see
// [Manager.Token] for the whole contract, including what becomes of a
// refresh whose answer is lost.
//
// Tokens are sealed at rest (AES-GCM, the connection ID as additional
// data, a key ID in each value so that keys rotate). A store sees only
// sealed bytes and the connection's metadata.
//
// # Stores
//
// [NewMemoryStore] for tests and single-process backends; package
// connect/sqlitestore (SQLite, pure Go, the embedded default) and package
// connect/pgstore (PostgreSQL) for real ones. Package connect/storetest is
// the conformance suite every store passes.
package connect

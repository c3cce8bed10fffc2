-- The connections of pleooauth/connect: one row per Pleo company (or
-- organisation). Times are Unix microseconds, UTC; NULL is "not set".
-- tokens holds the access and refresh token sealed with AES-GCM by the
-- Manager: no column holds a token in the clear.
CREATE TABLE pleooauth_connections (
	id              TEXT PRIMARY KEY,
	account         TEXT NOT NULL,
	status          TEXT NOT NULL,
	scopes          TEXT NOT NULL DEFAULT '',
	created_at      INTEGER NOT NULL,
	updated_at      INTEGER NOT NULL,
	token_expiry    INTEGER,
	last_refresh_at INTEGER,
	last_error      TEXT NOT NULL DEFAULT '',
	tokens          BLOB,
	version         INTEGER NOT NULL,
	lease_owner     TEXT NOT NULL DEFAULT '',
	lease_until     INTEGER,
	refresh_sent_at INTEGER
) STRICT;

CREATE INDEX pleooauth_connections_by_account ON pleooauth_connections (account, id);
CREATE INDEX pleooauth_connections_by_status ON pleooauth_connections (status, id);

-- The connections of pleooauth/connect: one row per Pleo company (or
-- organisation). tokens holds the access and refresh token sealed with
-- AES-GCM by the Manager: no column holds a token in the clear.
CREATE TABLE pleooauth_connections (
	id              text PRIMARY KEY,
	account         text NOT NULL,
	status          text NOT NULL,
	scopes          text[] NOT NULL DEFAULT '{}',
	created_at      timestamptz NOT NULL,
	updated_at      timestamptz NOT NULL,
	token_expiry    timestamptz,
	last_refresh_at timestamptz,
	last_error      text NOT NULL DEFAULT '',
	tokens          bytea,
	version         bigint NOT NULL,
	lease_owner     text NOT NULL DEFAULT '',
	lease_until     timestamptz,
	refresh_sent_at timestamptz
);

CREATE INDEX pleooauth_connections_by_account ON pleooauth_connections (account, id);
CREATE INDEX pleooauth_connections_by_status ON pleooauth_connections (status, id);

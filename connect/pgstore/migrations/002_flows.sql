-- The authorization flows that were finished (Store.UseFlow): one row per
-- sealed flow value's nonce, kept until expires_at (the database's clock)
-- so that no instance takes the same callback twice. Rows past their
-- expiry are deleted as new flows are recorded.
CREATE TABLE pleooauth_flows (
	id         text PRIMARY KEY,
	expires_at timestamptz NOT NULL
);

CREATE INDEX pleooauth_flows_by_expiry ON pleooauth_flows (expires_at);

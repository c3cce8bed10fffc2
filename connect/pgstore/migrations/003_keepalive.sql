-- Keep-alive and health (Manager.Run): each connection's health, when its
-- current run of failed refreshes began, and when it is next kept alive
-- (the database's clock). Existing connections are kept alive a day after
-- their last refresh. The partial index serves Store.Due, which reads the
-- earliest due active connections and nothing else.
ALTER TABLE pleooauth_connections ADD COLUMN health text NOT NULL DEFAULT 'ok';
ALTER TABLE pleooauth_connections ADD COLUMN failing_since timestamptz;
ALTER TABLE pleooauth_connections ADD COLUMN keepalive_at timestamptz;
UPDATE pleooauth_connections SET keepalive_at = COALESCE(last_refresh_at, created_at) + interval '1 day';
ALTER TABLE pleooauth_connections ALTER COLUMN keepalive_at SET NOT NULL;
ALTER TABLE pleooauth_connections ALTER COLUMN keepalive_at SET DEFAULT now();

CREATE INDEX pleooauth_connections_keepalive ON pleooauth_connections (keepalive_at, id) WHERE status = 'active';

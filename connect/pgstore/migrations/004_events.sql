-- Events (Store.Events): a row per change of a connection, written by a
-- trigger in the same transaction as the change (an outbox), and the
-- cursors of their readers. The trigger takes the one row of
-- pleooauth_event_seq for each event and holds its lock until the
-- transaction commits, so events are numbered in the order their changes
-- commit: a reader that has read up to a seq never misses a smaller one
-- committed later. grants counts the grants stored for a connection (Put
-- adds one), so that a new grant is an event too.
ALTER TABLE pleooauth_connections ADD COLUMN grants bigint NOT NULL DEFAULT 1;

CREATE TABLE pleooauth_event_seq (last bigint NOT NULL);
INSERT INTO pleooauth_event_seq VALUES (0);

CREATE TABLE pleooauth_events (
	seq           bigint PRIMARY KEY,
	connection_id text NOT NULL,
	account       text NOT NULL,
	old_account   text NOT NULL,
	old_status    text NOT NULL,
	new_status    text NOT NULL,
	old_health    text NOT NULL,
	new_health    text NOT NULL,
	grant_stored  boolean NOT NULL,
	reason        text NOT NULL,
	version       bigint NOT NULL,
	at            timestamptz NOT NULL
);

CREATE TABLE pleooauth_cursors (
	name  text PRIMARY KEY,
	pos   bigint NOT NULL DEFAULT 0,
	owner text NOT NULL DEFAULT '',
	until timestamptz
);

CREATE FUNCTION pleooauth_record_event() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
	n bigint;
BEGIN
	IF TG_OP = 'UPDATE' AND OLD.grants = NEW.grants AND OLD.status = NEW.status
		AND OLD.health = NEW.health AND OLD.account = NEW.account THEN
		RETURN NULL;
	END IF;
	UPDATE pleooauth_event_seq SET last = last + 1 RETURNING last INTO n;
	IF TG_OP = 'INSERT' THEN
		INSERT INTO pleooauth_events VALUES (n, NEW.id, NEW.account, '', '', NEW.status, '', NEW.health,
			true, NEW.last_error, NEW.version, NEW.updated_at);
	ELSE
		INSERT INTO pleooauth_events VALUES (n, NEW.id, NEW.account, OLD.account, OLD.status, NEW.status,
			OLD.health, NEW.health, OLD.grants <> NEW.grants, NEW.last_error, NEW.version, NEW.updated_at);
	END IF;
	RETURN NULL;
END
$$;

CREATE TRIGGER pleooauth_connections_events AFTER INSERT OR UPDATE ON pleooauth_connections
	FOR EACH ROW EXECUTE FUNCTION pleooauth_record_event();

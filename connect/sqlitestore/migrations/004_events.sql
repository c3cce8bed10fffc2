-- Events (Store.Events): a row per change of a connection, written by a
-- trigger in the same transaction as the change (an outbox), and the
-- cursors of their readers. SQLite has one writer at a time, so events
-- are numbered in the order their changes commit. grants counts the
-- grants stored for a connection (Put adds one), so that a new grant is
-- an event too. Times are Unix microseconds.
ALTER TABLE pleooauth_connections ADD COLUMN grants INTEGER NOT NULL DEFAULT 1;

CREATE TABLE pleooauth_events (
	seq           INTEGER PRIMARY KEY AUTOINCREMENT,
	connection_id TEXT NOT NULL,
	account       TEXT NOT NULL,
	old_account   TEXT NOT NULL,
	old_status    TEXT NOT NULL,
	new_status    TEXT NOT NULL,
	old_health    TEXT NOT NULL,
	new_health    TEXT NOT NULL,
	grant_stored  INTEGER NOT NULL,
	reason        TEXT NOT NULL,
	version       INTEGER NOT NULL,
	at            INTEGER NOT NULL
) STRICT;

CREATE TABLE pleooauth_cursors (
	name  TEXT PRIMARY KEY,
	pos   INTEGER NOT NULL DEFAULT 0,
	owner TEXT NOT NULL DEFAULT '',
	until INTEGER
) STRICT;

CREATE TRIGGER pleooauth_connections_inserted AFTER INSERT ON pleooauth_connections
BEGIN
	INSERT INTO pleooauth_events (connection_id, account, old_account, old_status, new_status, old_health,
		new_health, grant_stored, reason, version, at)
	VALUES (NEW.id, NEW.account, '', '', NEW.status, '', NEW.health, 1, NEW.last_error, NEW.version, NEW.updated_at);
END;

CREATE TRIGGER pleooauth_connections_updated AFTER UPDATE ON pleooauth_connections
WHEN OLD.grants <> NEW.grants OR OLD.status <> NEW.status OR OLD.health <> NEW.health OR OLD.account <> NEW.account
BEGIN
	INSERT INTO pleooauth_events (connection_id, account, old_account, old_status, new_status, old_health,
		new_health, grant_stored, reason, version, at)
	VALUES (NEW.id, NEW.account, OLD.account, OLD.status, NEW.status, OLD.health, NEW.health,
		OLD.grants <> NEW.grants, NEW.last_error, NEW.version, NEW.updated_at);
END;

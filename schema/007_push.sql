-- 007: tell a waiting dchat at once (dird/push.h, GET /v1/me/events).
--
-- Mail stored for a user sends NOTIFY dir_push with the user's id,
-- whoever stored it (this dird, another one on the same database, an
-- operator's SQL); every dird LISTENs and wakes the requests of that
-- user that wait on it.  Unlike dir_changed this is sent also when
-- dir.notify is off: a dird that is the only cache holder still has
-- waiters on other instances' sockets to wake, and posts to an inbox
-- are serialised by their own lock already (the quotas are sums).
CREATE FUNCTION dir_notify_push() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
	PERFORM pg_notify('dir_push', NEW.user_id::text);
	RETURN NULL;
END;
$$;

CREATE TRIGGER inbox_push AFTER INSERT ON inbox
	FOR EACH ROW EXECUTE FUNCTION dir_notify_push();

-- 002: announce changes to what lookups and certificate checks read.
--
-- A dird that caches lookups and authentication results must drop an
-- entry as soon as the user's row, one of its certificates or one of
-- its addresses changes, whoever made the change (dirctl, another dird,
-- an operator's SQL).  Every such row change sends NOTIFY dir_changed
-- with the user's id; dird LISTENs on a connection of its own.
--
-- A session that sets dir.notify = off is not announced: a dird that is
-- the only cache holder of its database drops its own entries itself,
-- and NOTIFY would serialise its commits (PostgreSQL takes a database-
-- wide lock from NOTIFY to the end of the commit).

CREATE FUNCTION dir_notify_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
	IF current_setting('dir.notify', true) IS DISTINCT FROM 'off' THEN
		-- TG_ARGV[0] names the column that holds the user id.
		IF TG_OP <> 'INSERT' THEN
			PERFORM pg_notify('dir_changed',
			    to_jsonb(OLD) ->> TG_ARGV[0]);
		END IF;
		IF TG_OP <> 'DELETE' THEN
			PERFORM pg_notify('dir_changed',
			    to_jsonb(NEW) ->> TG_ARGV[0]);
		END IF;
	END IF;
	RETURN NULL;
END;
$$;

CREATE TRIGGER users_notify AFTER INSERT OR UPDATE OR DELETE ON users
	FOR EACH ROW EXECUTE FUNCTION dir_notify_change('id');
CREATE TRIGGER certificates_notify
	AFTER INSERT OR UPDATE OR DELETE ON certificates
	FOR EACH ROW EXECUTE FUNCTION dir_notify_change('user_id');
CREATE TRIGGER addresses_notify
	AFTER INSERT OR UPDATE OR DELETE ON addresses
	FOR EACH ROW EXECUTE FUNCTION dir_notify_change('user_id');
-- TRUNCATE has no rows: announce "every user" (payload 0).
CREATE FUNCTION dir_notify_all() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
	IF current_setting('dir.notify', true) IS DISTINCT FROM 'off' THEN
		PERFORM pg_notify('dir_changed', '0');
	END IF;
	RETURN NULL;
END;
$$;
CREATE TRIGGER users_notify_truncate AFTER TRUNCATE ON users
	FOR EACH STATEMENT EXECUTE FUNCTION dir_notify_all();
CREATE TRIGGER certificates_notify_truncate AFTER TRUNCATE ON certificates
	FOR EACH STATEMENT EXECUTE FUNCTION dir_notify_all();
CREATE TRIGGER addresses_notify_truncate AFTER TRUNCATE ON addresses
	FOR EACH STATEMENT EXECUTE FUNCTION dir_notify_all();

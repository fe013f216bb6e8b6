-- 008: what is read and written most, made cheaper (measured with
-- tests/bench/run): an address refresh, which every online device makes
-- at half its TTL, and the federation rule of a federated lookup.
--
-- A refresh only moves updated_at and expires_at.  With expires_at in an
-- index every refresh wrote a new entry into it and into the unique
-- index beside it; with no index on either time the row is updated in
-- place on its page (a HOT update), which room left on each page makes
-- likely.  Lookups find a user's rows by user_id and filter the few they
-- get by time.
DROP INDEX addresses_user;
CREATE INDEX addresses_user ON addresses (user_id);
ALTER TABLE addresses SET (fillfactor = 70);

-- The change triggers of 002 ran a PL/pgSQL call for every row even in
-- a session that announces nothing (dir.notify = off, a dird that is the
-- only cache of its database); tested in WHEN, such a row queues no
-- trigger event at all.
DROP TRIGGER users_notify ON users;
DROP TRIGGER certificates_notify ON certificates;
DROP TRIGGER addresses_notify ON addresses;
CREATE TRIGGER users_notify AFTER INSERT OR UPDATE OR DELETE ON users
	FOR EACH ROW
	WHEN (current_setting('dir.notify', true) IS DISTINCT FROM 'off')
	EXECUTE FUNCTION dir_notify_change('id');
CREATE TRIGGER certificates_notify
	AFTER INSERT OR UPDATE OR DELETE ON certificates
	FOR EACH ROW
	WHEN (current_setting('dir.notify', true) IS DISTINCT FROM 'off')
	EXECUTE FUNCTION dir_notify_change('user_id');
CREATE TRIGGER addresses_notify
	AFTER INSERT OR UPDATE OR DELETE ON addresses
	FOR EACH ROW
	WHEN (current_setting('dir.notify', true) IS DISTINCT FROM 'off')
	EXECUTE FUNCTION dir_notify_change('user_id');

-- dird keeps federation rules in its answer cache (reading one on every
-- federated lookup was most of its cost): a change of any rule, which is
-- rare, announces "every user" so that each dird drops them at once.
CREATE TRIGGER federation_notify
	AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON federation
	FOR EACH STATEMENT EXECUTE FUNCTION dir_notify_all();

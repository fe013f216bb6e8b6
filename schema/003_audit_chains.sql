-- 003: audit rows on up to eight hash chains.
--
-- audit_append's one lock was held to the end of its transaction's
-- COMMIT, so every audited change (every certificate) committed after
-- the one before it and no two shared a WAL flush: enrolment ran at one
-- client's commit rate however many asked at once.  Each chain now has
-- a lock of its own.  An append takes the first free chain, which is
-- chain 0 whenever nothing else is appending, so a quiet registry keeps
-- one chain; a transaction that appends twice stays on the chain it
-- holds (no deadlock between two such transactions).  Within a chain the
-- lock still orders rows by id, so each chain links its rows as the one
-- chain did; `dirctl audit verify` follows every chain.  A row moved to
-- another chain breaks the links of both.  Existing rows are chain 0.

ALTER TABLE audit_log ADD COLUMN chain smallint NOT NULL DEFAULT 0
	CHECK (chain BETWEEN 0 AND 7);
CREATE INDEX audit_log_chain_id ON audit_log (chain, id);

-- The same text as before.  In plpgsql its plan is kept for the session;
-- a SQL function called from plpgsql was planned again at every append.
CREATE OR REPLACE FUNCTION audit_payload(a audit_log) RETURNS text
LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
	RETURN concat_ws('|', a.id::text,
	                 (extract(epoch FROM a.at) * 1000000)::bigint::text,
	                 a.actor, a.action, coalesce(a.target, ''),
	                 coalesce(a.serial, ''),
	                 coalesce(host(a.source), ''), coalesce(a.detail, ''));
END
$$;

CREATE OR REPLACE FUNCTION audit_append(p_actor text, p_action text,
                                        p_target text, p_serial text,
                                        p_source inet, p_detail text)
RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
	v_prev  bytea;
	v_row   audit_log;
	v_chain int := nullif(current_setting('dir.audit_chain', true), '')::int;
BEGIN
	IF v_chain IS NOT NULL AND v_chain BETWEEN 0 AND 7 THEN
		-- Ours already (advisory locks nest); a setting made by hand
		-- at worst waits here, it never forks a chain.
		PERFORM pg_advisory_xact_lock(4604001, v_chain);
	ELSE
		v_chain := NULL;
		FOR i IN 0..7 LOOP
			IF pg_try_advisory_xact_lock(4604001, i) THEN
				v_chain := i;
				EXIT;
			END IF;
		END LOOP;
		IF v_chain IS NULL THEN
			-- All eight busy: wait for one, spread by backend.
			v_chain := pg_backend_pid() % 8;
			PERFORM pg_advisory_xact_lock(4604001, v_chain);
		END IF;
		-- Held to the end of the transaction, and so is the lock.
		PERFORM set_config('dir.audit_chain', v_chain::text, true);
	END IF;
	SELECT hash INTO v_prev FROM audit_log WHERE chain = v_chain
	 ORDER BY id DESC LIMIT 1;
	IF v_prev IS NULL THEN
		v_prev := '\x0000000000000000000000000000000000000000000000000000000000000000'::bytea;
	END IF;
	v_row.id := nextval(pg_get_serial_sequence('audit_log', 'id'));
	v_row.at := date_trunc('milliseconds', clock_timestamp());
	v_row.actor := p_actor;
	v_row.action := p_action;
	v_row.target := p_target;
	v_row.serial := p_serial;
	v_row.source := p_source;
	v_row.detail := p_detail;
	v_row.prev_hash := v_prev;
	v_row.chain := v_chain;
	v_row.hash := sha256(v_prev || convert_to(audit_payload(v_row), 'UTF8'));
	INSERT INTO audit_log VALUES (v_row.*);
	RETURN v_row.id;
END
$$;

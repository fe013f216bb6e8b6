-- 001_init.sql - the first schema of the Domain Identity Registry.
--
-- Applied by dird at start-up and by `dirctl migrate`, inside one
-- transaction, and recorded in schema_version (the runner owns that table).
-- Constraints live here, not only in C: the database refuses what no
-- client may store, whoever the client is.

CREATE TABLE users (
	id            bigserial PRIMARY KEY,
	-- e-mail-like, stored lower case; the UID of certificate subjects
	userid        text NOT NULL UNIQUE
	              CHECK (userid = lower(userid)
	                     AND length(userid) BETWEEN 3 AND 254
	                     AND userid ~ '^[a-z0-9][a-z0-9._%+-]*@[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$'),
	name          text NOT NULL CHECK (length(name) BETWEEN 1 AND 128),
	email         text CHECK (email IS NULL OR
	                          (length(email) BETWEEN 3 AND 254 AND email ~ '^[^@[:space:]]+@[^@[:space:]]+$')),
	role          text NOT NULL DEFAULT 'user' CHECK (role IN ('user', 'admin')),
	-- Argon2id encoded hash ($argon2id$...), NULL when no password is set
	password_hash text CHECK (password_hash IS NULL OR password_hash LIKE '$argon2id$%'),
	enabled       boolean NOT NULL DEFAULT true,
	created_at    timestamptz NOT NULL DEFAULT now(),
	updated_at    timestamptz NOT NULL DEFAULT now()
);

-- One-time enrolment codes; only the SHA-256 of a code is stored.
CREATE TABLE enrol_codes (
	id         bigserial PRIMARY KEY,
	user_id    bigint NOT NULL REFERENCES users(id) ON DELETE CASCADE,
	code_hash  bytea NOT NULL UNIQUE CHECK (length(code_hash) = 32),
	created_at timestamptz NOT NULL DEFAULT now(),
	expires_at timestamptz NOT NULL,
	used_at    timestamptz,
	CHECK (expires_at > created_at),
	CHECK (used_at IS NULL OR used_at >= created_at)
);
CREATE INDEX enrol_codes_user ON enrol_codes (user_id);

CREATE TABLE certificates (
	id                bigserial PRIMARY KEY,
	-- SHA-256 fingerprint (hex) of the issuing CA certificate
	issuer            text NOT NULL CHECK (issuer ~ '^[0-9a-f]{64}$'),
	-- lower-case hex, no leading zeros, at most 20 octets
	serial            text NOT NULL CHECK (serial ~ '^[1-9a-f][0-9a-f]{0,39}$'),
	user_id           bigint NOT NULL REFERENCES users(id) ON DELETE RESTRICT,
	der               bytea NOT NULL CHECK (length(der) BETWEEN 64 AND 16384),
	fingerprint       text NOT NULL UNIQUE CHECK (fingerprint ~ '^[0-9a-f]{64}$'),
	not_before        timestamptz NOT NULL,
	not_after         timestamptz NOT NULL,
	status            text NOT NULL DEFAULT 'valid' CHECK (status IN ('valid', 'revoked')),
	revoked_at        timestamptz,
	revocation_reason smallint CHECK (revocation_reason IS NULL
	                                  OR revocation_reason BETWEEN 0 AND 10),
	issued_at         timestamptz NOT NULL DEFAULT now(),
	UNIQUE (issuer, serial),
	CHECK (not_after > not_before),
	CHECK ((status = 'revoked') = (revoked_at IS NOT NULL)),
	CHECK (status = 'revoked' OR revocation_reason IS NULL)
);
CREATE INDEX certificates_user ON certificates (user_id);
CREATE INDEX certificates_revoked ON certificates (issuer) WHERE status = 'revoked';

-- The CRL of each issuer: its number only grows.
CREATE TABLE crl_state (
	issuer      text PRIMARY KEY CHECK (issuer ~ '^[0-9a-f]{64}$'),
	number      bigint NOT NULL CHECK (number > 0),
	this_update timestamptz NOT NULL,
	next_update timestamptz NOT NULL,
	der         bytea,
	CHECK (next_update > this_update)
);

-- Current addresses, per certificate (one user may have several devices).
CREATE TABLE addresses (
	id             bigserial PRIMARY KEY,
	certificate_id bigint NOT NULL REFERENCES certificates(id) ON DELETE CASCADE,
	user_id        bigint NOT NULL REFERENCES users(id) ON DELETE CASCADE,
	ip             inet NOT NULL
	               CHECK (masklen(ip) = CASE family(ip) WHEN 4 THEN 32 ELSE 128 END),
	port           integer NOT NULL CHECK (port BETWEEN 1 AND 65535),
	kind           text NOT NULL CHECK (kind IN ('declared', 'observed')),
	updated_at     timestamptz NOT NULL DEFAULT now(),
	expires_at     timestamptz NOT NULL,
	CHECK (expires_at > updated_at),
	UNIQUE (certificate_id, ip, port, kind)
);
CREATE INDEX addresses_user ON addresses (user_id, expires_at);

-- The user's encrypted PKCS#12, stored as given.
CREATE TABLE backups (
	user_id    bigint PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
	data       bytea NOT NULL CHECK (length(data) BETWEEN 1 AND 1048576),
	sha256     bytea NOT NULL CHECK (length(sha256) = 32),
	updated_at timestamptz NOT NULL DEFAULT now()
);

-- Append-only audit log; each row carries the hash of the previous one,
-- so a removed or altered row is detectable (dirctl audit verify).
CREATE TABLE audit_log (
	id        bigserial PRIMARY KEY,
	at        timestamptz NOT NULL DEFAULT now(),
	actor     text NOT NULL,
	action    text NOT NULL CHECK (action ~ '^[a-z][a-z0-9_.]*$'),
	target    text,
	serial    text,
	source    inet,
	detail    text,
	prev_hash bytea NOT NULL CHECK (length(prev_hash) = 32),
	hash      bytea NOT NULL CHECK (length(hash) = 32)
);

-- The text that a row's hash covers.  dirctl audit verify recomputes the
-- hash from this text in C, independently of the database's sha256().
CREATE FUNCTION audit_payload(a audit_log) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
	SELECT concat_ws('|', a.id::text,
	                 (extract(epoch FROM a.at) * 1000000)::bigint::text,
	                 a.actor, a.action, coalesce(a.target, ''),
	                 coalesce(a.serial, ''),
	                 coalesce(host(a.source), ''), coalesce(a.detail, ''))
$$;

-- Append one audit row.  The advisory lock serialises writers so the
-- chain has no forks; it is released at the end of the transaction.
CREATE FUNCTION audit_append(p_actor text, p_action text, p_target text,
                             p_serial text, p_source inet, p_detail text)
RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
	v_prev bytea;
	v_row  audit_log;
BEGIN
	PERFORM pg_advisory_xact_lock(4604001);
	SELECT hash INTO v_prev FROM audit_log ORDER BY id DESC LIMIT 1;
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
	v_row.hash := sha256(v_prev || convert_to(audit_payload(v_row), 'UTF8'));
	INSERT INTO audit_log VALUES (v_row.*);
	RETURN v_row.id;
END
$$;

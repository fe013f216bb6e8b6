-- 009: enrolment requests an administrator approves.
--
-- Under the policy 'approve' an enrolment (by code or password) issues
-- nothing: its CSR is kept here as a pending request until an
-- administrator approves it (the certificate is issued then, and the
-- request points at it) or rejects it, or it expires.  The client polls
-- with a token it was given; only the token's SHA-256 is stored.  A
-- user's policy is theirs, or NULL for the registry's default
-- (dird.conf: enrol_policy).

ALTER TABLE users ADD COLUMN enrol_policy text
	CHECK (enrol_policy IS NULL OR enrol_policy IN ('auto', 'approve'));

CREATE TABLE cert_requests (
	id          bigserial PRIMARY KEY,
	token_hash  bytea NOT NULL UNIQUE CHECK (length(token_hash) = 32),
	user_id     bigint NOT NULL REFERENCES users(id) ON DELETE CASCADE,
	csr         text NOT NULL CHECK (length(csr) BETWEEN 1 AND 65536),
	-- how the requester proved who they are: 'code' or 'password'
	proof       text NOT NULL CHECK (proof IN ('code', 'password')),
	-- the SHA-256 of the code it spent: an EST client repeats its
	-- request with the same code (RFC 7030, 4.2.3)
	code_hash   bytea CHECK (code_hash IS NULL OR length(code_hash) = 32),
	source      inet,
	created_at  timestamptz NOT NULL DEFAULT now(),
	expires_at  timestamptz NOT NULL,
	status      text NOT NULL DEFAULT 'pending'
	            CHECK (status IN ('pending', 'approved', 'rejected')),
	decided_at  timestamptz,
	decided_by  text,
	reason      text CHECK (reason IS NULL OR length(reason) <= 256),
	cert_id     bigint REFERENCES certificates(id) ON DELETE SET NULL,
	CHECK (expires_at > created_at),
	-- a decision says who and when; an approval, what it issued
	CHECK ((status = 'pending') = (decided_at IS NULL)),
	CHECK ((status = 'pending') = (decided_by IS NULL)),
	CHECK (status <> 'approved' OR decided_at IS NOT NULL)
);
CREATE INDEX cert_requests_pending ON cert_requests (created_at)
	WHERE status = 'pending';
CREATE INDEX cert_requests_user ON cert_requests (user_id);
CREATE INDEX cert_requests_code ON cert_requests (code_hash)
	WHERE code_hash IS NOT NULL;

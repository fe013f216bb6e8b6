-- 010: key escrow, off unless an administrator turns it on.
--
-- With an escrow officer's certificate in force, devices deposit their
-- private key encrypted to it (CMS, which only the officer's key opens)
-- and keys the registry makes (PKCS#12) are deposited the same way.
-- The registry keeps ciphertext only; recovery happens offline.

-- The officer's certificate: at most one in force.
CREATE TABLE escrow_officer (
	id          smallint PRIMARY KEY CHECK (id = 1),
	cert_pem    text NOT NULL CHECK (length(cert_pem) BETWEEN 1 AND 65536),
	fingerprint text NOT NULL CHECK (fingerprint ~ '^[0-9a-f]{64}$'),
	set_at      timestamptz NOT NULL DEFAULT now(),
	set_by      text NOT NULL
);

-- One deposit per certificate (a new deposit for it replaces the old).
CREATE TABLE key_escrow (
	cert_id     bigint PRIMARY KEY REFERENCES certificates(id)
	            ON DELETE CASCADE,
	user_id     bigint NOT NULL REFERENCES users(id) ON DELETE CASCADE,
	officer_fp  text NOT NULL CHECK (officer_fp ~ '^[0-9a-f]{64}$'),
	cms         bytea NOT NULL CHECK (length(cms) BETWEEN 1 AND 65536),
	created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX key_escrow_user ON key_escrow (user_id);

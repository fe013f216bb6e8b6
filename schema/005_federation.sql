-- 005: federation: by which rule this registry accepts the CA of another
-- domain's registry.  One row per domain; a domain without a row is
-- refused.  'pinned' names the CA by the SHA-256 of its certificate,
-- 'dane' accepts what the domain publishes in DNSSEC-signed TLSA
-- records, 'refused' says so explicitly (and is logged as such).
CREATE TABLE federation (
	domain    text PRIMARY KEY
	          CHECK (length(domain) BETWEEN 1 AND 253
	                 AND domain = lower(domain)
	                 AND domain ~ '^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$'),
	rule      text NOT NULL CHECK (rule IN ('pinned', 'dane', 'refused')),
	ca_sha256 text CHECK (ca_sha256 ~ '^[0-9a-f]{64}$'),
	added_at  timestamptz NOT NULL DEFAULT now(),
	added_by  text NOT NULL,
	CHECK ((rule = 'pinned') = (ca_sha256 IS NOT NULL))
);

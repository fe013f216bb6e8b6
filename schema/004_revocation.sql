-- 004: revocations nobody can undo, and disabled users on the CRL.
--
-- A revocation reason is one an end entity may have: unspecified (0),
-- keyCompromise (1), affiliationChanged (3), superseded (4),
-- cessationOfOperation (5), privilegeWithdrawn (9).  cACompromise (2)
-- and aACompromise (10) are about authorities, certificateHold (6) is
-- what a disabled user's certificates get on the CRL (computed from the
-- user, never stored: enabling the user takes it back), and
-- removeFromCRL (8) would tell every relying party that the certificate
-- is good again.  A holder could choose any of them before: rows that
-- carry one become "unspecified", which keeps them revoked.
UPDATE certificates SET revocation_reason = 0
 WHERE revocation_reason IN (2, 6, 7, 8, 10);
ALTER TABLE certificates ADD CONSTRAINT certificates_reason_end_entity
	CHECK (revocation_reason IS NULL
	       OR revocation_reason IN (0, 1, 3, 4, 5, 9));

-- When a user was disabled: the revocation time of their certificates'
-- certificateHold entries.  Kept by a trigger, so that an operator's
-- own UPDATE of "enabled" keeps it right too.
ALTER TABLE users ADD COLUMN disabled_at timestamptz;
UPDATE users SET disabled_at = updated_at WHERE NOT enabled;

CREATE FUNCTION users_disabled_at() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
	IF NEW.enabled THEN
		NEW.disabled_at := NULL;
	ELSIF TG_OP = 'INSERT' OR OLD.enabled THEN
		NEW.disabled_at := now();
	ELSE
		NEW.disabled_at := OLD.disabled_at;
	END IF;
	RETURN NEW;
END;
$$;
CREATE TRIGGER users_disabled_at BEFORE INSERT OR UPDATE ON users
	FOR EACH ROW EXECUTE FUNCTION users_disabled_at();
ALTER TABLE users ADD CONSTRAINT users_disabled_at
	CHECK (enabled = (disabled_at IS NULL));

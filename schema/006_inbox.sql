-- 006: the inbox: S/MIME messages that wait for a user who was not
-- online (POST /v1/users/{userid}/inbox).  Opaque bytes, signed and
-- encrypted by the sender to the recipient's devices: nothing here can
-- read them.  sender is who posted, as authenticated (the one the
-- recipient checks the signature against); msg_id is the sender's id
-- of the message, once per sender and recipient, so that a message is
-- stored (and fetched) once.  Rows past expires_at are not served and
-- are purged.
CREATE TABLE inbox (
	id         bigserial PRIMARY KEY,
	user_id    bigint NOT NULL REFERENCES users(id) ON DELETE CASCADE,
	sender     text NOT NULL CHECK (length(sender) BETWEEN 3 AND 254),
	msg_id     text NOT NULL CHECK (msg_id ~ '^[A-Za-z0-9._@<>+-]{1,128}$'),
	size       integer NOT NULL CHECK (size > 0 AND size = octet_length(data)),
	data       bytea NOT NULL,
	stored_at  timestamptz NOT NULL DEFAULT now(),
	expires_at timestamptz NOT NULL,
	UNIQUE (user_id, sender, msg_id)
);
CREATE INDEX inbox_by_user ON inbox (user_id, id);
CREATE INDEX inbox_by_sender ON inbox (sender);
CREATE INDEX inbox_by_expiry ON inbox (expires_at);

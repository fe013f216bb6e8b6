/*
 * db.c - the PostgreSQL store: prepared statements, migrations, and the
 * translation of libpq results into struct db_err.
 *
 * All SQL of the daemon lives here and in schema/.  Parameters are always
 * $n; binary data travels in binary format.  Timestamps cross the border
 * as epoch seconds so that no time parsing is needed on either side.
 */
#include <sys/socket.h>

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "db.h"

#define EPOCH(col) "extract(epoch FROM " col ")::bigint"

enum stmt {
	S_USER_ADD,
	S_USER_GET,
	S_USER_BY_ID,
	S_USER_LIST,
	S_USER_ENABLE,
	S_USER_SETPW,
	S_USER_PW,
	S_CODE_ADD,
	S_CODE_USE,
	S_CODE_PEEK,
	S_CERT_RECORD,
	S_CERT_RECORD_CODE,
	S_USER_POLICY,
	S_USER_POLICY_SET,
	S_REQ_ADD,
	S_REQ_PENDING,
	S_REQ_BY_TOKEN,
	S_REQ_BY_ID,
	S_REQ_BY_CSR,
	S_REQ_LIST,
	S_REQ_LIST_ALL,
	S_REQ_DECIDE,
	S_ESCROW_OFFICER,
	S_ESCROW_OFFICER_SET,
	S_ESCROW_OFFICER_DEL,
	S_ESCROW_PUT,
	S_ESCROW_GET,
	S_ESCROW_HAS,
	S_AUDIT_RECENT,
	S_CERT_LIST,
	S_CERT_LIST_ALL,
	S_CERT_GET,
	S_CERT_REVOKE,
	S_CERT_RAISE,
	S_CERT_REVOKE_USER,
	S_CERT_STATUS,
	S_REVOKED,
	S_CRL_NEXT,
	S_CRL_STORE,
	S_AUDIT,
	S_AUDIT_ROWS,
	S_AUTH_CERT,
	S_OCSP,
	S_ADDR_DEL,
	S_ADDR_SET,
	S_LOOKUP,
	S_USER_LOOKUP,
	S_BACKUP_PUT,
	S_BACKUP_GET,
	S_CRL_GET,
	S_ONLINE,
	S_FED_SET,
	S_FED_DEL,
	S_FED_GET,
	S_FED_LIST,
	S_INBOX_LOCK,
	S_INBOX_PURGE,
	S_INBOX_USAGE,
	S_INBOX_PUT,
	S_INBOX_LIST,
	S_INBOX_GET,
	S_INBOX_DEL,
	S_INBOX_STATE,
	S_COUNT
};

#define CERT_COLS                                                           \
	"c.id, c.user_id, u.userid, c.serial, c.fingerprint, " EPOCH(         \
	    "c.not_before") ", " EPOCH("c.not_after") ", c.status = 'revoked', " \
	    "coalesce(" EPOCH("c.revoked_at") ", 0), "                       \
	    "coalesce(c.revocation_reason, 0), c.der "

#define USER_COLS                                                          \
	"id, userid, name, coalesce(email, ''), role = 'admin', enabled, " \
	"password_hash IS NOT NULL, " EPOCH("created_at") " "

#define USER_COLS_U                                                      \
	"u.id, u.userid, u.name, coalesce(u.email, ''), u.role = 'admin', " \
	"u.enabled, u.password_hash IS NOT NULL, " EPOCH("u.created_at") " "

/* A request (struct db_request); "expired" for a pending one too old. */
#define REQ_COLS                                                          \
	"r.id, r.user_id, u.userid, r.proof, coalesce(host(r.source), ''), " \
	"CASE WHEN r.status = 'pending' AND r.expires_at <= now() "          \
	"THEN 'expired' ELSE r.status END, " EPOCH("r.created_at") ", "      \
	EPOCH("r.expires_at") ", coalesce(" EPOCH("r.decided_at") ", 0), "   \
	"coalesce(r.decided_by, ''), coalesce(r.reason, ''), "               \
	"coalesce(c.serial, ''), r.csr "

/*
 * A lookup row (struct db_lookup_row), fetched in binary: the DER arrives
 * as its raw bytes, the numbers as int8 and the flags as bool.
 */
#define LOOKUP_COLS                                                      \
	"c.serial, c.fingerprint, c.der, " EPOCH("c.not_after") ", "     \
	"a.id IS NOT NULL, coalesce(host(a.ip), ''), "                 \
	"coalesce(a.port, 0)::bigint, "                                  \
	"coalesce(a.kind = 'observed', false), "                         \
	"coalesce(" EPOCH("a.updated_at") ", 0), "                       \
	"coalesce(" EPOCH("a.expires_at") ", 0) "
#define LOOKUP_ORDER \
	"ORDER BY c.issued_at, c.id, a.kind, family(a.ip) DESC, a.id"

/* The statement table: name = index, text, parameter count. */
static const struct {
	const char *sql;
	int nparams;
} stmts[S_COUNT] = {
	[S_USER_ADD] = { "INSERT INTO users (userid, name, email, role, "
			 "password_hash) VALUES ($1, $2, $3, $4, $5) "
			 "RETURNING id",
	    5 },
	[S_USER_GET] = { "SELECT " USER_COLS "FROM users WHERE userid = $1", 1 },
	[S_USER_BY_ID] = { "SELECT " USER_COLS "FROM users WHERE id = $1", 1 },
	[S_USER_LIST] = { "SELECT " USER_COLS "FROM users ORDER BY userid", 0 },
	[S_USER_ENABLE] = { "UPDATE users SET enabled = $2, updated_at = now() "
			    "WHERE userid = $1 RETURNING id",
	    2 },
	[S_USER_SETPW] = { "UPDATE users SET password_hash = $2, "
			   "updated_at = now() WHERE userid = $1 RETURNING id",
	    2 },
	[S_USER_PW] = { "SELECT coalesce(password_hash, '') FROM users "
			"WHERE userid = $1",
	    1 },
	[S_FED_SET] = { "INSERT INTO federation (domain, rule, ca_sha256, "
			"added_by) VALUES ($1, $2, nullif($3, ''), $4) "
			"ON CONFLICT (domain) DO UPDATE SET rule = $2, "
			"ca_sha256 = nullif($3, ''), added_at = now(), "
			"added_by = $4",
	    4 },
	[S_FED_DEL] = { "DELETE FROM federation WHERE domain = $1 "
			"RETURNING domain",
	    1 },
	[S_FED_GET] = { "SELECT domain, rule, coalesce(ca_sha256, ''), "
			EPOCH("added_at") ", added_by FROM federation "
			"WHERE domain = $1",
	    1 },
	[S_FED_LIST] = { "SELECT domain, rule, coalesce(ca_sha256, ''), "
			 EPOCH("added_at") ", added_by FROM federation "
			 "ORDER BY domain",
	    0 },
	[S_CODE_ADD] = { "INSERT INTO enrol_codes (user_id, code_hash, "
			 "expires_at) VALUES ($1, $2, to_timestamp($3))",
	    3 },
	[S_CODE_USE] = { "UPDATE enrol_codes SET used_at = now() "
			 "WHERE code_hash = $1 AND used_at IS NULL "
			 "AND expires_at > now() RETURNING user_id",
	    1 },
	[S_CODE_PEEK] = { "SELECT user_id FROM enrol_codes "
			  "WHERE code_hash = $1 AND used_at IS NULL "
			  "AND expires_at > now()",
	    1 },
	/*
	 * A certificate and its audit row in one statement: atomic on its
	 * own, one round trip, and the audit chain's lock (taken in
	 * audit_append) is held only until this statement commits.
	 */
	[S_CERT_RECORD] = { "WITH c AS (INSERT INTO certificates (issuer, "
			    "user_id, serial, fingerprint, der, not_before, "
			    "not_after) VALUES ($1, $2, $3, $4, $5, "
			    "to_timestamp($6), to_timestamp($7)) RETURNING id) "
			    "SELECT c.id, audit_append($8, $9, $10, $3, "
			    "$11::inet, NULL) FROM c",
	    11 },
	/*
	 * The same with the enrolment code it was issued for consumed:
	 * nothing is written unless the code is still unused and unexpired
	 * (no row comes back), so two requests with one code can not both
	 * have a certificate recorded.
	 */
	[S_USER_POLICY] = { "SELECT coalesce(enrol_policy, '') FROM users "
			    "WHERE id = $1",
	    1 },
	[S_USER_POLICY_SET] = { "UPDATE users SET enrol_policy = "
				"nullif($2, ''), updated_at = now() "
				"WHERE userid = $1 RETURNING id",
	    2 },
	/*
	 * A pending request and its audit row; with a code ($7), only when
	 * that code of the user is still usable, which it consumes (no row
	 * comes back otherwise).
	 */
	[S_REQ_ADD] = { "WITH k AS (UPDATE enrol_codes SET used_at = now() "
			"WHERE $7::bytea IS NOT NULL AND code_hash = $7 "
			"AND user_id = $2 AND used_at IS NULL "
			"AND expires_at > now() RETURNING 1), "
			"q AS (INSERT INTO cert_requests (token_hash, user_id, "
			"csr, proof, source, expires_at, code_hash) SELECT $1, "
			"$2, $3, $4, $5::inet, now() + make_interval(secs => "
			"$6), $7 "
			"WHERE $7::bytea IS NULL OR EXISTS (SELECT 1 FROM k) "
			"RETURNING id) "
			"SELECT q.id, audit_append($8, 'request.submit', $9, "
			"NULL, $5::inet, 'request ' || q.id) FROM q",
	    9 },
	[S_REQ_PENDING] = { "SELECT count(*) FROM cert_requests WHERE "
			    "user_id = $1 AND status = 'pending' AND "
			    "expires_at > now()",
	    1 },
	[S_REQ_BY_TOKEN] = { "SELECT " REQ_COLS "FROM cert_requests r JOIN "
			     "users u ON u.id = r.user_id LEFT JOIN "
			     "certificates c ON c.id = r.cert_id "
			     "WHERE r.token_hash = $1",
	    1 },
	[S_REQ_BY_ID] = { "SELECT " REQ_COLS "FROM cert_requests r JOIN "
			  "users u ON u.id = r.user_id LEFT JOIN "
			  "certificates c ON c.id = r.cert_id WHERE r.id = $1",
	    1 },
	/*
	 * The latest request for this CSR by this user, or (with a code,
	 * $3) the one that code was spent on.
	 */
	[S_REQ_BY_CSR] = { "SELECT " REQ_COLS "FROM cert_requests r JOIN "
			   "users u ON u.id = r.user_id LEFT JOIN "
			   "certificates c ON c.id = r.cert_id "
			   "WHERE r.csr = $2 AND (($3::bytea IS NULL AND "
			   "r.user_id = $1) OR r.code_hash = $3) "
			   "ORDER BY r.id DESC LIMIT 1",
	    3 },
	[S_REQ_LIST] = { "SELECT " REQ_COLS "FROM cert_requests r JOIN "
			 "users u ON u.id = r.user_id LEFT JOIN "
			 "certificates c ON c.id = r.cert_id "
			 "WHERE r.status = 'pending' AND r.expires_at > now() "
			 "ORDER BY r.id",
	    0 },
	[S_REQ_LIST_ALL] = { "SELECT " REQ_COLS "FROM cert_requests r JOIN "
			     "users u ON u.id = r.user_id LEFT JOIN "
			     "certificates c ON c.id = r.cert_id ORDER BY r.id",
	    0 },
	/* Only a pending request that has not expired is decided. */
	[S_REQ_DECIDE] = { "UPDATE cert_requests SET status = $2, "
			   "decided_at = now(), decided_by = $3, "
			   "reason = nullif($4, ''), cert_id = nullif($5, '0')"
			   "::bigint WHERE id = $1 AND status = 'pending' "
			   "AND expires_at > now() RETURNING id",
	    5 },
	[S_ESCROW_OFFICER] = { "SELECT cert_pem, fingerprint FROM "
			       "escrow_officer WHERE id = 1",
	    0 },
	[S_ESCROW_OFFICER_SET] = { "INSERT INTO escrow_officer (id, cert_pem, "
				   "fingerprint, set_by) VALUES (1, $1, $2, "
				   "$3) ON CONFLICT (id) DO UPDATE SET "
				   "cert_pem = $1, fingerprint = $2, "
				   "set_by = $3, set_at = now()",
	    3 },
	[S_ESCROW_OFFICER_DEL] = { "DELETE FROM escrow_officer RETURNING id",
	    0 },
	/* Only while the officer it was made for is the one in force. */
	[S_ESCROW_PUT] = { "INSERT INTO key_escrow (cert_id, user_id, "
			   "officer_fp, cms) SELECT $1, $2, fingerprint, $3 "
			   "FROM escrow_officer WHERE id = 1 AND "
			   "fingerprint = $4 ON CONFLICT (cert_id) DO UPDATE "
			   "SET officer_fp = excluded.officer_fp, "
			   "cms = excluded.cms, created_at = now() "
			   "RETURNING cert_id",
	    4 },
	[S_ESCROW_GET] = { "SELECT k.cms, u.userid FROM key_escrow k JOIN "
			   "certificates c ON c.id = k.cert_id JOIN users u "
			   "ON u.id = k.user_id WHERE c.issuer = $1 AND "
			   "c.serial = $2",
	    2 },
	[S_ESCROW_HAS] = { "SELECT officer_fp FROM key_escrow WHERE "
			   "cert_id = $1",
	    1 },
	[S_AUDIT_RECENT] = { "SELECT id, " EPOCH("at") ", actor, action, "
			     "coalesce(target, ''), coalesce(serial, ''), "
			     "coalesce(host(source), ''), coalesce(detail, '') "
			     "FROM audit_log ORDER BY id DESC LIMIT $1",
	    1 },
	[S_CERT_RECORD_CODE] = { "WITH k AS (UPDATE enrol_codes SET used_at = "
				 "now() WHERE code_hash = $12 AND user_id = $2 "
				 "AND used_at IS NULL AND expires_at > now() "
				 "RETURNING 1), c AS (INSERT INTO certificates "
				 "(issuer, user_id, serial, fingerprint, der, "
				 "not_before, not_after) SELECT $1, $2, $3, $4, "
				 "$5, to_timestamp($6), to_timestamp($7) FROM k "
				 "RETURNING id) "
				 "SELECT c.id, audit_append($8, $9, $10, $3, "
				 "$11::inet, NULL) FROM c",
	    12 },
	[S_CERT_LIST] = { "SELECT " CERT_COLS "FROM certificates c JOIN users u "
			  "ON u.id = c.user_id WHERE u.userid = $1 "
			  "ORDER BY c.issued_at, c.id",
	    1 },
	[S_CERT_LIST_ALL] = { "SELECT " CERT_COLS "FROM certificates c "
			      "JOIN users u ON u.id = c.user_id "
			      "ORDER BY c.issued_at, c.id",
	    0 },
	[S_CERT_GET] = { "SELECT " CERT_COLS "FROM certificates c JOIN users u "
			 "ON u.id = c.user_id WHERE c.issuer = $1 "
			 "AND c.serial = $2",
	    2 },
	[S_CERT_REVOKE] = { "UPDATE certificates SET status = 'revoked', "
			    "revoked_at = now(), revocation_reason = $3 "
			    "WHERE issuer = $1 AND serial = $2 "
			    "AND status = 'valid' RETURNING id, user_id",
	    3 },
	/* The one change to a revocation: its reason raised to keyCompromise. */
	[S_CERT_RAISE] = { "UPDATE certificates SET revocation_reason = 1 "
			   "WHERE issuer = $1 AND serial = $2 "
			   "AND status = 'revoked' "
			   "AND coalesce(revocation_reason, 0) <> 1 "
			   "RETURNING id, user_id",
	    2 },
	/*
	 * Every unexpired valid certificate of a user, revoked, and their
	 * addresses gone, in one statement.
	 */
	[S_CERT_REVOKE_USER] = { "WITH r AS (UPDATE certificates c SET "
				 "status = 'revoked', revoked_at = now(), "
				 "revocation_reason = $3 FROM users u "
				 "WHERE u.id = c.user_id AND u.userid = $2 "
				 "AND c.issuer = $1 AND c.status = 'valid' "
				 "AND c.not_after > now() "
				 "RETURNING c.id, c.user_id, c.serial), "
				 "d AS (DELETE FROM addresses a USING r "
				 "WHERE a.certificate_id = r.id) "
				 "SELECT user_id, serial FROM r ORDER BY serial",
	    3 },
	[S_CERT_STATUS] = { "SELECT status FROM certificates WHERE issuer = $1 "
			    "AND serial = $2",
	    2 },
	/*
	 * What the CRL lists: revoked certificates, and the unexpired valid
	 * ones of disabled users as certificateHold (6) since the user was
	 * disabled, so that peers refuse them too; enabling the user takes
	 * the entries back.
	 */
	[S_REVOKED] = { "SELECT " CERT_COLS "FROM certificates c JOIN users u "
			"ON u.id = c.user_id WHERE c.issuer = $1 "
			"AND c.status = 'revoked' "
			"UNION ALL SELECT c.id, c.user_id, u.userid, c.serial, "
			"c.fingerprint, " EPOCH("c.not_before") ", "
			EPOCH("c.not_after") ", true, "
			EPOCH("u.disabled_at") ", 6, c.der "
			"FROM certificates c JOIN users u "
			"ON u.id = c.user_id WHERE c.issuer = $1 "
			"AND c.status = 'valid' AND NOT u.enabled "
			"AND c.not_after > now() ORDER BY 9, 4",
	    1 },
	[S_CRL_NEXT] = { "INSERT INTO crl_state (issuer, number, this_update, "
			 "next_update) VALUES ($1, 1, now(), now() + "
			 "interval '1 second') ON CONFLICT (issuer) DO UPDATE "
			 "SET number = crl_state.number + 1 RETURNING number",
	    1 },
	[S_CRL_STORE] = { "UPDATE crl_state SET this_update = to_timestamp($3), "
			  "next_update = to_timestamp($4), der = $5 "
			  "WHERE issuer = $1 AND number = $2",
	    5 },
	[S_AUDIT] = { "SELECT audit_append($1, $2, $3, $4, $5::inet, $6)", 6 },
	[S_AUDIT_ROWS] = { "SELECT id, chain, audit_payload(a), prev_hash, "
			   "hash FROM audit_log a ORDER BY id",
	    0 },
	[S_AUTH_CERT] = { "SELECT c.id, c.status = 'revoked', "
			  EPOCH("c.not_after") ", " USER_COLS_U
			  "FROM certificates c JOIN users u "
			  "ON u.id = c.user_id WHERE c.issuer = $1 "
			  "AND c.serial = $2",
	    2 },
	/* What an OCSP answer says of a certificate (db_ocsp_status). */
	[S_OCSP] = { "SELECT c.user_id, c.status = 'revoked', "
		     "coalesce(" EPOCH("c.revoked_at") ", 0), "
		     "coalesce(c.revocation_reason, 0), u.enabled, "
		     "coalesce(" EPOCH("u.disabled_at") ", 0), "
		     EPOCH("c.not_after") " FROM certificates c "
		     "JOIN users u ON u.id = c.user_id "
		     "WHERE c.issuer = $1 AND c.serial = $2",
	    2 },
	[S_ADDR_DEL] = { "DELETE FROM addresses WHERE certificate_id = $1 "
			 "RETURNING user_id",
	    1 },
	/*
	 * A device's addresses replaced in one statement, one round trip:
	 * the arrays unnested in parallel; what is no longer given goes,
	 * what is given again only has its times moved on (a refresh, the
	 * common case, deletes and inserts nothing), what is new comes in.
	 */
	/*
	 * Many devices' addresses at once (group commit, commit.h): $1-$6
	 * are parallel arrays, one element per address, $7 the devices.
	 * What a device gives again only has its times moved on; what it
	 * no longer gives is deleted.  One statement: atomic by itself.
	 */
	[S_ADDR_SET] = { "WITH new AS (SELECT DISTINCT * FROM "
			 "unnest($1::bigint[], $2::bigint[], $3::inet[], "
			 "$4::int[], $5::text[], $6::int[]) "
			 "AS a(cert, uid, ip, port, kind, ttl)), "
			 "gone AS (DELETE FROM addresses d "
			 "WHERE d.certificate_id = ANY($7::bigint[]) AND "
			 "NOT EXISTS (SELECT 1 FROM new WHERE "
			 "new.cert = d.certificate_id AND new.ip = d.ip AND "
			 "new.port = d.port AND new.kind = d.kind)) "
			 "INSERT INTO addresses (certificate_id, user_id, ip, "
			 "port, kind, updated_at, expires_at) "
			 "SELECT cert, uid, ip, port, kind, now(), "
			 "now() + make_interval(secs => ttl) FROM new "
			 "ON CONFLICT (certificate_id, ip, port, kind) DO UPDATE "
			 "SET user_id = EXCLUDED.user_id, "
			 "updated_at = EXCLUDED.updated_at, "
			 "expires_at = EXCLUDED.expires_at "
			 "RETURNING certificate_id, " EPOCH("expires_at"),
	    7 },
	[S_LOOKUP] = { "SELECT " LOOKUP_COLS
		       "FROM certificates c LEFT JOIN addresses a "
		       "ON a.certificate_id = c.id AND a.expires_at > now() "
		       "WHERE c.user_id = $1 AND c.status = 'valid' "
		       "AND c.not_after > now() " LOOKUP_ORDER,
	    1 },
	/*
	 * S_LOOKUP by userid with the user's own columns in front: one row
	 * with NULL certificate columns when the user has no current
	 * certificate (or is disabled), none when there is no such user.
	 */
	[S_USER_LOOKUP] = { "SELECT " USER_COLS_U ", " LOOKUP_COLS
			    "FROM users u "
			    "LEFT JOIN certificates c ON c.user_id = u.id "
			    "AND u.enabled AND c.status = 'valid' "
			    "AND c.not_after > now() "
			    "LEFT JOIN addresses a "
			    "ON a.certificate_id = c.id "
			    "AND a.expires_at > now() "
			    "WHERE u.userid = $1 " LOOKUP_ORDER,
	    1 },
	[S_BACKUP_PUT] = { "INSERT INTO backups (user_id, data, sha256, "
			   "updated_at) VALUES ($1, $2, $3, now()) "
			   "ON CONFLICT (user_id) DO UPDATE SET "
			   "data = EXCLUDED.data, sha256 = EXCLUDED.sha256, "
			   "updated_at = now()",
	    3 },
	[S_BACKUP_GET] = { "SELECT data, " EPOCH("updated_at") " FROM backups "
			   "WHERE user_id = $1",
	    1 },
	/* One writer at a time: the quotas are sums over every row. */
	[S_INBOX_LOCK] = { "SELECT pg_advisory_xact_lock(4604006)", 0 },
	[S_INBOX_PURGE] = { "DELETE FROM inbox WHERE expires_at <= now()", 0 },
	[S_INBOX_USAGE] = { "SELECT "
			    "coalesce(sum(size) FILTER (WHERE user_id = $1), 0), "
			    "count(*) FILTER (WHERE user_id = $1), "
			    "coalesce(sum(size) FILTER (WHERE sender = $2), 0), "
			    "coalesce(sum(size), 0) FROM inbox",
	    2 },
	[S_INBOX_PUT] = { "INSERT INTO inbox (user_id, sender, msg_id, size, "
			  "data, expires_at) VALUES ($1, $2, $3, "
			  "octet_length($4::bytea), $4::bytea, "
			  "now() + make_interval(secs => $5::bigint)) "
			  "ON CONFLICT (user_id, sender, msg_id) DO NOTHING "
			  "RETURNING id, " EPOCH("stored_at") ", "
			  EPOCH("expires_at"),
	    5 },
	[S_INBOX_LIST] = { "SELECT id, sender, msg_id, size, "
			   EPOCH("stored_at") ", " EPOCH("expires_at")
			   " FROM inbox WHERE user_id = $1 AND "
			   "expires_at > now() ORDER BY id LIMIT $2",
	    2 },
	[S_INBOX_STATE] = { "SELECT count(*), coalesce(max(id), 0) FROM inbox "
			    "WHERE user_id = $1 AND expires_at > now()",
	    1 },
	[S_INBOX_GET] = { "SELECT data FROM inbox WHERE user_id = $1 AND "
			  "id = $2 AND expires_at > now()",
	    2 },
	[S_INBOX_DEL] = { "DELETE FROM inbox WHERE user_id = $1 AND id = $2 "
			  "RETURNING size",
	    2 },
	[S_CRL_GET] = { "SELECT der, " EPOCH("next_update") " FROM crl_state "
			"WHERE issuer = $1 AND der IS NOT NULL",
	    1 },
	[S_ONLINE] = { "SELECT count(DISTINCT user_id) FROM addresses "
		       "WHERE expires_at > now()",
	    0 },
};

struct db {
	PGconn *conn;
	char *conninfo;
	int prepared;
	int in_tx;
	int quiet;		/* SET dir.notify = off on every connection */
};

/* The channels of schema/002_change_notify.sql and 007_push.sql. */
#define DB_CHANNEL "dir_changed"
#define DB_PUSH_CHANNEL "dir_push"

static void
db_seterr(struct db_err *err, enum db_errcode code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
db_seterr(struct db_err *err, enum db_errcode code, const char *fmt, ...)
{
	va_list ap;

	if (err == NULL)
		return;
	err->code = code;
	err->sqlstate[0] = '\0';
	va_start(ap, fmt);
	vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
	va_end(ap);
}

/* libpq messages end with a newline; keep the first line only. */
static void
db_copymsg(char *dst, size_t len, const char *src)
{
	size_t n;

	if (src == NULL || *src == '\0')
		src = "unknown database error";
	n = strcspn(src, "\n");
	if (n >= len)
		n = len - 1;
	memcpy(dst, src, n);
	dst[n] = '\0';
}

/*
 * Translate a failed result.  A broken connection leaves the result with
 * no SQLSTATE at all, so PQstatus decides "unavailable" first.
 */
static void
db_result_err(struct db *db, PGresult *res, struct db_err *err)
{
	const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) :
				  NULL;
	const char *msg = res ? PQresultErrorField(res,
				    PG_DIAG_MESSAGE_PRIMARY) :
				NULL;

	if (err == NULL)
		return;
	if (msg == NULL)
		msg = PQerrorMessage(db->conn);
	db_copymsg(err->msg, sizeof(err->msg), msg);
	snprintf(err->sqlstate, sizeof(err->sqlstate), "%s",
	    state ? state : "");
	if (PQstatus(db->conn) != CONNECTION_OK || state == NULL ||
	    strncmp(state, "08", 2) == 0 || strncmp(state, "57P", 3) == 0)
		err->code = DB_ERR_UNAVAILABLE;
	else if (strcmp(state, "23505") == 0)
		err->code = DB_ERR_CONFLICT;
	else if (strncmp(state, "23", 2) == 0 || strncmp(state, "22", 2) == 0)
		err->code = DB_ERR_INVALID;
	else
		err->code = DB_ERR_INTERNAL;
}

static int
db_prepare_all(struct db *db, struct db_err *err)
{
	PGresult *res;
	char name[16];
	int i;

	for (i = 0; i < S_COUNT; i++) {
		snprintf(name, sizeof(name), "s%d", i);
		res = PQprepare(db->conn, name, stmts[i].sql, stmts[i].nparams,
		    NULL);
		if (PQresultStatus(res) != PGRES_COMMAND_OK) {
			/* A missing table means "not migrated yet": retry later. */
			db_result_err(db, res, err);
			PQclear(res);
			return -1;
		}
		PQclear(res);
	}
	db->prepared = 1;
	return 0;
}

/* Server NOTICEs ("relation already exists, skipping") are not ours. */
static void
db_notice(void *arg, const char *msg)
{
	(void)arg;
	(void)msg;
}

static int db_simple(struct db *, const char *, struct db_err *);

static int
db_open_conn(struct db *db, struct db_err *err)
{
	if (db->conn != NULL)
		PQfinish(db->conn);
	db->prepared = 0;
	db->in_tx = 0;
	db->conn = PQconnectdb(db->conninfo);
	if (db->conn == NULL || PQstatus(db->conn) != CONNECTION_OK) {
		db_seterr(err, DB_ERR_UNAVAILABLE, "cannot connect to the database");
		if (db->conn != NULL && err != NULL)
			db_copymsg(err->msg, sizeof(err->msg),
			    PQerrorMessage(db->conn));
		return -1;
	}
	PQsetNoticeProcessor(db->conn, db_notice, NULL);
	if (db->quiet && db_simple(db, "SET dir.notify = off", err) == -1)
		return -1;
	return 0;
}

struct db *
db_connect(const char *conninfo, struct db_err *err)
{
	struct db *db;

	if ((db = calloc(1, sizeof(*db))) == NULL ||
	    (db->conninfo = strdup(conninfo)) == NULL) {
		free(db);
		db_seterr(err, DB_ERR_INTERNAL, "out of memory");
		return NULL;
	}
	if (db_open_conn(db, err) == -1) {
		db_free(db);
		return NULL;
	}
	return db;
}

void
db_free(struct db *db)
{
	if (db == NULL)
		return;
	if (db->conn != NULL)
		PQfinish(db->conn);
	free(db->conninfo);
	free(db);
}

/*
 * After the server restarted, an idle connection still says CONNECTION_OK
 * until it is used, and its first request would fail with a 503.  What
 * the old server left is its farewell (a FATAL error, which libpq takes
 * as a notice while idle) and then EOF; only reading the EOF turns the
 * connection CONNECTION_BAD.  One PQconsumeInput may stop after the
 * farewell, so read for as long as something is pending.  A healthy idle
 * connection has nothing pending: one non-blocking peek.
 */
static void
db_read_pending(PGconn *conn)
{
	char c;
	int i;

	for (i = 0; i < 8 && PQstatus(conn) == CONNECTION_OK; i++) {
		if (recv(PQsocket(conn), &c, 1, MSG_PEEK | MSG_DONTWAIT) < 0 &&
		    (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		/* Data, EOF or an error (then libpq sees it too). */
		if (!PQconsumeInput(conn))
			return;
	}
}

int
db_ensure(struct db *db, struct db_err *err)
{
	if (db->conn != NULL && PQstatus(db->conn) == CONNECTION_OK &&
	    PQtransactionStatus(db->conn) == PQTRANS_IDLE)
		db_read_pending(db->conn);
	if (db->conn == NULL || PQstatus(db->conn) != CONNECTION_OK) {
		if (db_open_conn(db, err) == -1)
			return -1;
	}
	if (!db->prepared)
		return db_prepare_all(db, err);
	return 0;
}

/* Run a simple command outside the statement table (BEGIN, COMMIT ...). */
static int
db_simple(struct db *db, const char *sql, struct db_err *err)
{
	PGresult *res;
	int rv = -1;

	res = PQexec(db->conn, sql);
	if (PQresultStatus(res) == PGRES_COMMAND_OK ||
	    PQresultStatus(res) == PGRES_TUPLES_OK)
		rv = 0;
	else
		db_result_err(db, res, err);
	PQclear(res);
	return rv;
}

int
db_ping(struct db *db, struct db_err *err)
{
	if (db_ensure(db, err) == -1)
		return -1;
	return db_simple(db, "SELECT 1", err);
}

/*
 * Execute prepared statement `s`.  A parameter is sent in binary when
 * lens gives it a length > 0 (bytea), else as text.  rfmt 1 asks for
 * binary results (used where raw hashes are read).  NULL on failure, with
 * err filled; the caller PQclear()s the result.
 */
static PGresult *
db_exec(struct db *db, enum stmt s, const char *const *vals, const int *lens,
    int rfmt, ExecStatusType want, struct db_err *err)
{
	PGresult *res;
	char name[16];
	int fmts[16] = { 0 };
	int i;

	if (!db->in_tx && db_ensure(db, err) == -1)
		return NULL;
	if (!db->prepared) {
		db_seterr(err, DB_ERR_UNAVAILABLE, "database connection lost");
		return NULL;
	}
	for (i = 0; lens != NULL && i < stmts[s].nparams; i++)
		fmts[i] = lens[i] > 0;
	snprintf(name, sizeof(name), "s%d", (int)s);
	res = PQexecPrepared(db->conn, name, stmts[s].nparams, vals, lens,
	    lens ? fmts : NULL, rfmt);
	if (PQresultStatus(res) != want) {
		db_result_err(db, res, err);
		PQclear(res);
		return NULL;
	}
	return res;
}

/*
 * db_exec of a statement that reads one row: NULL with DB_ERR_NOTFOUND
 * and the message fmt, ... when there is none.
 */
static PGresult *
db_exec_row(struct db *db, enum stmt s, const char *const *vals,
    const int *lens, int rfmt, struct db_err *err, const char *fmt, ...)
    __attribute__((format(printf, 7, 8)));

static PGresult *
db_exec_row(struct db *db, enum stmt s, const char *const *vals,
    const int *lens, int rfmt, struct db_err *err, const char *fmt, ...)
{
	PGresult *res;
	va_list ap;

	if ((res = db_exec(db, s, vals, lens, rfmt, PGRES_TUPLES_OK,
	    err)) == NULL)
		return NULL;
	if (PQntuples(res) != 1) {
		PQclear(res);
		if (err != NULL) {
			err->code = DB_ERR_NOTFOUND;
			err->sqlstate[0] = '\0';
			va_start(ap, fmt);
			vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
			va_end(ap);
		}
		return NULL;
	}
	return res;
}

int
db_set_quiet(struct db *db, struct db_err *err)
{
	db->quiet = 1;
	if (db->conn == NULL || PQstatus(db->conn) != CONNECTION_OK)
		return 0; /* applied when the connection is made again */
	return db_simple(db, "SET dir.notify = off", err);
}

int
db_begin(struct db *db, struct db_err *err)
{
	if (db_ensure(db, err) == -1 || db_simple(db, "BEGIN", err) == -1)
		return -1;
	db->in_tx = 1;
	return 0;
}

int
db_commit(struct db *db, struct db_err *err)
{
	int rv = db_simple(db, "COMMIT", err);

	db->in_tx = 0;
	return rv;
}

int
db_in_tx(const struct db *db)
{
	return db->in_tx;
}

void
db_rollback(struct db *db)
{
	if (db->in_tx && PQstatus(db->conn) == CONNECTION_OK)
		(void)db_simple(db, "ROLLBACK", NULL);
	db->in_tx = 0;
}

/* ---- change notifications ------------------------------------------ */

static int db_conn_only(struct db *, struct db_err *);

int
db_listen_changes(struct db *db, struct db_err *err)
{
	if (db_conn_only(db, err) == -1)
		return -1;
	/* Named, so that an operator can tell it in pg_stat_activity. */
	return db_simple(db, "SET application_name = 'dird cache listener'; "
	    "LISTEN " DB_CHANNEL, err);
}

int
db_listen_push(struct db *db, struct db_err *err)
{
	if (db_conn_only(db, err) == -1)
		return -1;
	return db_simple(db, "SET application_name = 'dird push listener'; "
	    "LISTEN " DB_PUSH_CHANNEL, err);
}

int
db_listen_alone(struct db *db, int *alone, struct db_err *err)
{
	PGresult *res;

	*alone = 0;
	/* Session-level: it ends with this connection, also when dird dies. */
	res = PQexec(db->conn, "SELECT pg_try_advisory_lock(4604002)");
	if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1) {
		db_result_err(db, res, err);
		PQclear(res);
		return -1;
	}
	*alone = strcmp(PQgetvalue(res, 0, 0), "t") == 0;
	PQclear(res);
	return 0;
}

int
db_socket(const struct db *db)
{
	if (db->conn == NULL || PQstatus(db->conn) != CONNECTION_OK)
		return -1;
	return PQsocket(db->conn);
}

int
db_read_changes(struct db *db, db_change_fn *fn, void *arg,
    struct db_err *err)
{
	PGnotify *n;
	char *end;
	long long id;

	if (db->conn == NULL || PQconsumeInput(db->conn) == 0 ||
	    PQstatus(db->conn) != CONNECTION_OK) {
		db_seterr(err, DB_ERR_UNAVAILABLE, "the database connection "
		    "that listens for changes was lost");
		return -1;
	}
	while ((n = PQnotifies(db->conn)) != NULL) {
		/* Anything but a user id (a payload we did not write) is "all". */
		id = strtoll(n->extra, &end, 10);
		fn(arg, (*n->extra != '\0' && *end == '\0' && id > 0) ? id : 0,
		    0);
		PQfreemem(n);
	}
	return 0;
}

/* ---- migrations ---------------------------------------------------- */

static int
cmp_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static char *
slurp(const char *path, struct db_err *err)
{
	FILE *fp;
	char *buf = NULL;
	long n;

	if ((fp = fopen(path, "r")) == NULL) {
		db_seterr(err, DB_ERR_INTERNAL, "%s: %s", path, strerror(errno));
		return NULL;
	}
	if (fseek(fp, 0, SEEK_END) == -1 || (n = ftell(fp)) < 0 ||
	    fseek(fp, 0, SEEK_SET) == -1 || (buf = malloc(n + 1)) == NULL ||
	    fread(buf, 1, n, fp) != (size_t)n) {
		db_seterr(err, DB_ERR_INTERNAL, "%s: cannot read", path);
		free(buf);
		fclose(fp);
		return NULL;
	}
	buf[n] = '\0';
	fclose(fp);
	return buf;
}

/* Reconnect when needed, without preparing (tables may not exist yet). */
static int
db_conn_only(struct db *db, struct db_err *err)
{
	if (db->conn == NULL || PQstatus(db->conn) != CONNECTION_OK)
		return db_open_conn(db, err);
	return 0;
}

int
db_schema_version(struct db *db, int *version, struct db_err *err)
{
	PGresult *res;
	const char *state;
	int rv = -1;

	*version = 0;
	if (db_conn_only(db, err) == -1)
		return -1;
	res = PQexec(db->conn, "SELECT coalesce(max(version), 0) FROM "
			       "schema_version");
	state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
	if (PQresultStatus(res) == PGRES_TUPLES_OK) {
		*version = (int)strtol(PQgetvalue(res, 0, 0), NULL, 10);
		rv = 0;
	} else if (state != NULL && strcmp(state, "42P01") == 0) {
		rv = 0; /* no version table: an empty database */
	} else
		db_result_err(db, res, err);
	PQclear(res);
	return rv;
}

/* A migration file is NNN_name.sql with NNN >= 1. */
static int
migration_number(const char *name)
{
	char *end;
	long v;

	if (name[0] < '0' || name[0] > '9')
		return -1;
	v = strtol(name, &end, 10);
	if (*end != '_' || v < 1 || v > 9999)
		return -1;
	if (strlen(name) < 5 || strcmp(name + strlen(name) - 4, ".sql") != 0)
		return -1;
	return (int)v;
}

static int
db_apply_one(struct db *db, const char *dir, const char *name, int version,
    struct db_err *err)
{
	char path[4096], vbuf[16];
	const char *vals[1] = { vbuf };
	PGresult *res = NULL;
	char *sql;
	int rv = -1;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	if ((sql = slurp(path, err)) == NULL)
		return -1;
	if (db_simple(db, "BEGIN", err) == -1)
		goto err;
	/* Serialise concurrent migrators; the lock ends with the transaction. */
	if (db_simple(db, "SELECT pg_advisory_xact_lock(4604000)", err) == -1)
		goto err;
	snprintf(vbuf, sizeof(vbuf), "%d", version);
	res = PQexecParams(db->conn, "SELECT 1 FROM schema_version WHERE "
	    "version = $1", 1, NULL, vals, NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		db_result_err(db, res, err);
		goto err;
	}
	if (PQntuples(res) == 0) {
		if (db_simple(db, sql, err) == -1) {
			snprintf(err->msg + strlen(err->msg),
			    sizeof(err->msg) - strlen(err->msg), " (in %s)", name);
			goto err;
		}
		PQclear(res);
		res = PQexecParams(db->conn, "INSERT INTO schema_version "
		    "(version, name) VALUES ($1, $2)", 2, NULL,
		    (const char *[]){ vbuf, name }, NULL, NULL, 0);
		if (PQresultStatus(res) != PGRES_COMMAND_OK) {
			db_result_err(db, res, err);
			goto err;
		}
		rv = 1;
	} else
		rv = 0;
	if (db_simple(db, "COMMIT", err) == -1) {
		rv = -1;
		goto err;
	}
	PQclear(res);
	free(sql);
	return rv;
err:
	PQclear(res);
	(void)db_simple(db, "ROLLBACK", NULL);
	free(sql);
	return -1;
}

int
db_migrate(struct db *db, const char *schema_dir, int *applied,
    struct db_err *err)
{
	struct dirent *de;
	DIR *d = NULL;
	char **names = NULL, **tmp;
	size_t n = 0, i;
	int v, r, rv = -1;

	*applied = 0;
	if (db_conn_only(db, err) == -1)
		return -1;
	if (db_simple(db, "CREATE TABLE IF NOT EXISTS schema_version ("
			  "version integer PRIMARY KEY CHECK (version > 0), "
			  "name text NOT NULL, "
			  "applied_at timestamptz NOT NULL DEFAULT now())",
		err) == -1)
		return -1;
	if ((d = opendir(schema_dir)) == NULL) {
		db_seterr(err, DB_ERR_INTERNAL, "schema directory %s: %s",
		    schema_dir, strerror(errno));
		return -1;
	}
	while ((de = readdir(d)) != NULL) {
		if (migration_number(de->d_name) < 0)
			continue;
		if ((tmp = realloc(names, (n + 1) * sizeof(*names))) == NULL)
			goto nomem;
		names = tmp;
		if ((names[n] = strdup(de->d_name)) == NULL)
			goto nomem;
		n++;
	}
	if (n == 0) {
		db_seterr(err, DB_ERR_INTERNAL, "no migrations in %s", schema_dir);
		goto err;
	}
	qsort(names, n, sizeof(*names), cmp_names);
	for (i = 0; i < n; i++) {
		v = migration_number(names[i]);
		if ((r = db_apply_one(db, schema_dir, names[i], v, err)) == -1)
			goto err;
		*applied += r;
	}
	db->prepared = 0; /* new tables: prepare again on next use */
	rv = 0;
	goto err;
nomem:
	db_seterr(err, DB_ERR_INTERNAL, "out of memory");
err:
	for (i = 0; i < n; i++)
		free(names[i]);
	free(names);
	if (d != NULL)
		closedir(d);
	return rv;
}

/* ---- rows -> structs ------------------------------------------------ */

/*
 * The column readers take text and binary results alike: a statement
 * executed with rfmt 1 has int8 columns as 8 bytes in network order and
 * bool as one byte (text columns read the same in both, NUL-terminated by
 * libpq).  A NULL reads as 0, false or "".
 */
static long long
col_ll(PGresult *res, int row, int col)
{
	const unsigned char *p;
	uint64_t v = 0;
	int i;

	if (PQfformat(res, col) == 0)
		return strtoll(PQgetvalue(res, row, col), NULL, 10);
	if (PQgetlength(res, row, col) != 8)
		return 0;
	p = (const unsigned char *)PQgetvalue(res, row, col);
	for (i = 0; i < 8; i++)
		v = (v << 8) | p[i];
	return (long long)(int64_t)v;
}

static int
col_bool(PGresult *res, int row, int col)
{
	if (PQfformat(res, col) == 0)
		return PQgetvalue(res, row, col)[0] == 't';
	return PQgetlength(res, row, col) == 1 &&
	    PQgetvalue(res, row, col)[0] == 1;
}

static void
col_str(PGresult *res, int row, int col, char *dst, size_t len)
{
	snprintf(dst, len, "%s", PQgetvalue(res, row, col));
}

/* USER_COLS or USER_COLS_U, starting at column 0. */
#define USER_NCOLS 8
static void
row_user(PGresult *res, int r, struct db_user *u)
{
	memset(u, 0, sizeof(*u));
	u->id = col_ll(res, r, 0);
	col_str(res, r, 1, u->userid, sizeof(u->userid));
	col_str(res, r, 2, u->name, sizeof(u->name));
	col_str(res, r, 3, u->email, sizeof(u->email));
	u->is_admin = col_bool(res, r, 4);
	u->enabled = col_bool(res, r, 5);
	u->has_password = col_bool(res, r, 6);
	u->created_at = (time_t)col_ll(res, r, 7);
}

/*
 * Certificates come back in text format; the DER column is bytea in hex
 * ("\x..."), decoded with PQunescapeBytea into a buffer freed after the
 * callback.
 */
static int
rows_cert(PGresult *res, int (*cb)(const struct db_cert *, void *), void *arg,
    struct db_err *err)
{
	struct db_cert c;
	unsigned char *der;
	size_t len;
	int r, rc;

	for (r = 0; r < PQntuples(res); r++) {
		memset(&c, 0, sizeof(c));
		c.id = col_ll(res, r, 0);
		c.user_id = col_ll(res, r, 1);
		col_str(res, r, 2, c.userid, sizeof(c.userid));
		col_str(res, r, 3, c.serial, sizeof(c.serial));
		col_str(res, r, 4, c.fingerprint, sizeof(c.fingerprint));
		c.not_before = (time_t)col_ll(res, r, 5);
		c.not_after = (time_t)col_ll(res, r, 6);
		c.revoked = col_bool(res, r, 7);
		c.revoked_at = (time_t)col_ll(res, r, 8);
		c.reason = (int)col_ll(res, r, 9);
		der = PQunescapeBytea(
		    (const unsigned char *)PQgetvalue(res, r, 10), &len);
		if (der == NULL) {
			db_seterr(err, DB_ERR_INTERNAL, "out of memory");
			return -1;
		}
		c.der = der;
		c.der_len = len;
		rc = cb(&c, arg);
		PQfreemem(der);
		if (rc != 0) {
			db_seterr(err, DB_ERR_INTERNAL, "stopped by caller");
			return -1;
		}
	}
	return 0;
}

/* ---- users ------------------------------------------------------------ */

int
db_user_add(struct db *db, const char *userid, const char *name,
    const char *email, int is_admin, const char *password_hash, int64_t *id,
    struct db_err *err)
{
	const char *v[5] = { userid, name, (email && *email) ? email : NULL,
		is_admin ? "admin" : "user", password_hash };
	PGresult *res;

	if ((res = db_exec(db, S_USER_ADD, v, NULL, 0, PGRES_TUPLES_OK,
		 err)) == NULL) {
		if (err && err->code == DB_ERR_CONFLICT)
			snprintf(err->msg, sizeof(err->msg),
			    "user %s already exists", userid);
		return -1;
	}
	if (id != NULL)
		*id = col_ll(res, 0, 0);
	PQclear(res);
	return 0;
}

int
db_user_get(struct db *db, const char *userid, struct db_user *u,
    struct db_err *err)
{
	const char *v[1] = { userid };
	PGresult *res;

	if ((res = db_exec_row(db, S_USER_GET, v, NULL, 0, err, "no user %s",
	    userid)) == NULL)
		return -1;
	row_user(res, 0, u);
	PQclear(res);
	return 0;
}

int
db_user_by_id(struct db *db, int64_t id, struct db_user *u, struct db_err *err)
{
	char idbuf[24];
	const char *v[1] = { idbuf };
	PGresult *res;

	snprintf(idbuf, sizeof(idbuf), "%" PRId64, id);
	if ((res = db_exec_row(db, S_USER_BY_ID, v, NULL, 0, err,
	    "no user with id %" PRId64, id)) == NULL)
		return -1;
	row_user(res, 0, u);
	PQclear(res);
	return 0;
}

int
db_user_list(struct db *db, int (*cb)(const struct db_user *, void *),
    void *arg, struct db_err *err)
{
	struct db_user u;
	PGresult *res;
	int r;

	if ((res = db_exec(db, S_USER_LIST, NULL, NULL, 0, PGRES_TUPLES_OK,
		 err)) == NULL)
		return -1;
	for (r = 0; r < PQntuples(res); r++) {
		row_user(res, r, &u);
		if (cb(&u, arg) != 0)
			break;
	}
	PQclear(res);
	return 0;
}

/* Run an UPDATE that must touch exactly one user. */
static int
db_user_update(struct db *db, enum stmt s, const char *userid,
    const char *val, int64_t *id, struct db_err *err)
{
	const char *v[2] = { userid, val };
	PGresult *res;
	long n;

	if ((res = db_exec(db, s, v, NULL, 0, PGRES_TUPLES_OK, err)) == NULL)
		return -1;
	if ((n = PQntuples(res)) == 1 && id != NULL)
		*id = col_ll(res, 0, 0);
	PQclear(res);
	if (n != 1) {
		db_seterr(err, DB_ERR_NOTFOUND, "no user %s", userid);
		return -1;
	}
	return 0;
}

int
db_user_set_enabled(struct db *db, const char *userid, int enabled,
    int64_t *id, struct db_err *err)
{
	return db_user_update(db, S_USER_ENABLE, userid,
	    enabled ? "true" : "false", id, err);
}

int
db_user_set_password(struct db *db, const char *userid,
    const char *password_hash, int64_t *id, struct db_err *err)
{
	return db_user_update(db, S_USER_SETPW, userid, password_hash, id,
	    err);
}

int
db_user_password(struct db *db, const char *userid, char *buf, size_t buflen,
    struct db_err *err)
{
	const char *v[1] = { userid };
	PGresult *res;

	if ((res = db_exec_row(db, S_USER_PW, v, NULL, 0, err, "no user %s",
	    userid)) == NULL)
		return -1;
	col_str(res, 0, 0, buf, buflen);
	PQclear(res);
	return 0;
}

/* ---- enrolment codes ------------------------------------------------ */

int
db_code_add(struct db *db, int64_t user_id, const unsigned char hash[32],
    time_t expires_at, struct db_err *err)
{
	char idbuf[24], expbuf[24];
	const char *v[3] = { idbuf, (const char *)hash, expbuf };
	int lens[3] = { 0, 32, 0 };
	PGresult *res;

	snprintf(idbuf, sizeof(idbuf), "%" PRId64, user_id);
	snprintf(expbuf, sizeof(expbuf), "%lld", (long long)expires_at);
	if ((res = db_exec(db, S_CODE_ADD, v, lens, 0, PGRES_COMMAND_OK,
		 err)) == NULL)
		return -1;
	PQclear(res);
	return 0;
}

/* The user of the code with this hash, by statement st (check or use). */
static int
code_user(struct db *db, enum stmt st, const unsigned char hash[32],
    int64_t *user_id, struct db_err *err)
{
	const char *v[1] = { (const char *)hash };
	int lens[1] = { 32 };
	PGresult *res;

	if ((res = db_exec_row(db, st, v, lens, 0, err, "unknown, used or "
	    "expired enrolment code")) == NULL)
		return -1;
	*user_id = col_ll(res, 0, 0);
	PQclear(res);
	return 0;
}

int
db_code_check(struct db *db, const unsigned char hash[32], int64_t *user_id,
    struct db_err *err)
{
	return code_user(db, S_CODE_PEEK, hash, user_id, err);
}

int
db_code_consume(struct db *db, const unsigned char hash[32], int64_t *user_id,
    struct db_err *err)
{
	return code_user(db, S_CODE_USE, hash, user_id, err);
}

/* ---- enrolment requests ------------------------------------------- */

int
db_user_policy(struct db *db, int64_t user_id, char *policy, size_t len,
    struct db_err *err)
{
	char id[24];
	const char *v[1] = { id };
	PGresult *res;

	snprintf(id, sizeof(id), "%" PRId64, user_id);
	if ((res = db_exec_row(db, S_USER_POLICY, v, NULL, 0, err,
	    "no user %s", id)) == NULL)
		return -1;
	col_str(res, 0, 0, policy, len);
	PQclear(res);
	return 0;
}

int
db_user_policy_set(struct db *db, const char *userid, const char *policy,
    struct db_err *err)
{
	const char *v[2] = { userid, policy };
	PGresult *res;

	if ((res = db_exec_row(db, S_USER_POLICY_SET, v, NULL, 0, err,
	    "no user %s", userid)) == NULL)
		return -1;
	PQclear(res);
	return 0;
}

int
db_request_add(struct db *db, const struct db_request_new *q,
    int64_t *id, struct db_err *err)
{
	char uid[24], ttl[24];
	const char *v[9] = { (const char *)q->token_hash, uid, q->csr,
		q->proof, q->source, ttl, (const char *)q->code_hash, q->actor,
		q->target };
	/* The hashes go as their raw bytes (a length: binary). */
	int lens[9] = { 32, 0, 0, 0, 0, 0, q->code_hash ? 32 : 0, 0, 0 };
	PGresult *res;

	snprintf(uid, sizeof(uid), "%" PRId64, q->user_id);
	snprintf(ttl, sizeof(ttl), "%d", q->ttl);
	if ((res = db_exec_row(db, S_REQ_ADD, v, lens, 0, err, "unknown, used "
	    "or expired enrolment code")) == NULL)
		return -1;
	*id = col_ll(res, 0, 0);
	PQclear(res);
	return 0;
}

int
db_request_pending(struct db *db, int64_t user_id, long *n,
    struct db_err *err)
{
	char id[24];
	const char *v[1] = { id };
	PGresult *res;

	snprintf(id, sizeof(id), "%" PRId64, user_id);
	if ((res = db_exec(db, S_REQ_PENDING, v, NULL, 0, PGRES_TUPLES_OK,
	    err)) == NULL)
		return -1;
	*n = (long)col_ll(res, 0, 0);
	PQclear(res);
	return 0;
}

/* Row r of a REQ_COLS result; the CSR only when asked. */
static int
row_request(PGresult *res, int r, struct db_request *q, int with_csr)
{
	memset(q, 0, sizeof(*q));
	q->id = col_ll(res, r, 0);
	q->user_id = col_ll(res, r, 1);
	col_str(res, r, 2, q->userid, sizeof(q->userid));
	col_str(res, r, 3, q->proof, sizeof(q->proof));
	col_str(res, r, 4, q->source, sizeof(q->source));
	col_str(res, r, 5, q->status, sizeof(q->status));
	q->created_at = (time_t)col_ll(res, r, 6);
	q->expires_at = (time_t)col_ll(res, r, 7);
	q->decided_at = (time_t)col_ll(res, r, 8);
	col_str(res, r, 9, q->decided_by, sizeof(q->decided_by));
	col_str(res, r, 10, q->reason, sizeof(q->reason));
	col_str(res, r, 11, q->serial, sizeof(q->serial));
	if (with_csr && (q->csr = strdup(PQgetvalue(res, r, 12))) == NULL)
		return -1;
	return 0;
}

/* The one request statement s finds by v[0] (len: 32 for a hash). */
static int
request_one(struct db *db, enum stmt s, const char *key, int len,
    struct db_request *q, struct db_err *err)
{
	const char *v[1] = { key };
	int lens[1] = { len };
	PGresult *res;

	if ((res = db_exec_row(db, s, v, lens, 0, err, "no such request")) ==
	    NULL)
		return -1;
	if (row_request(res, 0, q, 1) == -1) {
		PQclear(res);
		db_seterr(err, DB_ERR_INTERNAL, "out of memory");
		return -1;
	}
	PQclear(res);
	return 0;
}

int
db_request_by_token(struct db *db, const unsigned char token_hash[32],
    struct db_request *q, struct db_err *err)
{
	return request_one(db, S_REQ_BY_TOKEN, (const char *)token_hash, 32,
	    q, err);
}

int
db_request_by_id(struct db *db, int64_t id, struct db_request *q,
    struct db_err *err)
{
	char v[24];

	snprintf(v, sizeof(v), "%" PRId64, id);
	return request_one(db, S_REQ_BY_ID, v, 0, q, err);
}

int
db_request_by_csr(struct db *db, int64_t user_id, const char *csr,
    const unsigned char *code_hash, struct db_request *q, struct db_err *err)
{
	char uid[24];
	const char *v[3] = { uid, csr, (const char *)code_hash };
	int lens[3] = { 0, 0, code_hash ? 32 : 0 };
	PGresult *res;

	snprintf(uid, sizeof(uid), "%" PRId64, user_id);
	if ((res = db_exec_row(db, S_REQ_BY_CSR, v, lens, 0, err,
	    "no request for that CSR")) == NULL)
		return -1;
	(void)row_request(res, 0, q, 0);
	PQclear(res);
	return 0;
}

int
db_request_list(struct db *db, int all,
    int (*cb)(const struct db_request *, void *), void *arg,
    struct db_err *err)
{
	struct db_request q;
	PGresult *res;
	int r, rv = 0;

	if ((res = db_exec(db, all ? S_REQ_LIST_ALL : S_REQ_LIST, NULL, NULL,
	    0, PGRES_TUPLES_OK, err)) == NULL)
		return -1;
	for (r = 0; r < PQntuples(res) && rv == 0; r++) {
		(void)row_request(res, r, &q, 0);
		rv = cb(&q, arg);
	}
	PQclear(res);
	return rv == 0 ? 0 : -1;
}

void
db_request_clear(struct db_request *q)
{
	free(q->csr);
	q->csr = NULL;
}

int
db_request_decide(struct db *db, int64_t id, int approve,
    const char *decided_by, const char *reason, int64_t cert_id,
    struct db_err *err)
{
	char idt[24], cid[24];
	const char *v[5] = { idt, approve ? "approved" : "rejected",
		decided_by, reason ? reason : "", cid };
	PGresult *res;

	snprintf(idt, sizeof(idt), "%" PRId64, id);
	snprintf(cid, sizeof(cid), "%" PRId64, cert_id);
	if ((res = db_exec_row(db, S_REQ_DECIDE, v, NULL, 0, err, "request %s "
	    "is not pending (decided already, or expired)", idt)) == NULL)
		return -1;
	PQclear(res);
	return 0;
}

int
db_audit_recent(struct db *db, int limit,
    int (*cb)(const struct db_audit_entry *, void *), void *arg,
    struct db_err *err)
{
	char lim[16];
	const char *v[1] = { lim };
	struct db_audit_entry a;
	PGresult *res;
	int r, rv = 0;

	snprintf(lim, sizeof(lim), "%d", limit);
	if ((res = db_exec(db, S_AUDIT_RECENT, v, NULL, 0, PGRES_TUPLES_OK,
	    err)) == NULL)
		return -1;
	for (r = 0; r < PQntuples(res) && rv == 0; r++) {
		a.id = col_ll(res, r, 0);
		a.at = (time_t)col_ll(res, r, 1);
		a.actor = PQgetvalue(res, r, 2);
		a.action = PQgetvalue(res, r, 3);
		a.target = PQgetvalue(res, r, 4);
		a.serial = PQgetvalue(res, r, 5);
		a.source = PQgetvalue(res, r, 6);
		a.detail = PQgetvalue(res, r, 7);
		rv = cb(&a, arg);
	}
	PQclear(res);
	return rv == 0 ? 0 : -1;
}

/* ---- key escrow ----------------------------------------------------- */

int
db_escrow_officer(struct db *db, char **pem, char fp[DB_FP_MAX],
    struct db_err *err)
{
	PGresult *res;

	*pem = NULL;
	if ((res = db_exec_row(db, S_ESCROW_OFFICER, NULL, NULL, 0, err,
	    "key escrow is off")) == NULL)
		return -1;
	col_str(res, 0, 1, fp, DB_FP_MAX);
	if ((*pem = strdup(PQgetvalue(res, 0, 0))) == NULL) {
		PQclear(res);
		db_seterr(err, DB_ERR_INTERNAL, "out of memory");
		return -1;
	}
	PQclear(res);
	return 0;
}

int
db_escrow_officer_set(struct db *db, const char *pem, const char *fp,
    const char *by, struct db_err *err)
{
	const char *v[3] = { pem, fp, by };
	PGresult *res;

	if ((res = db_exec(db, S_ESCROW_OFFICER_SET, v, NULL, 0,
	    PGRES_COMMAND_OK, err)) == NULL)
		return -1;
	PQclear(res);
	return 0;
}

int
db_escrow_officer_clear(struct db *db, struct db_err *err)
{
	PGresult *res;

	if ((res = db_exec_row(db, S_ESCROW_OFFICER_DEL, NULL, NULL, 0, err,
	    "key escrow is off already")) == NULL)
		return -1;
	PQclear(res);
	return 0;
}

int
db_escrow_put(struct db *db, int64_t cert_id, int64_t user_id,
    const char *officer_fp, const unsigned char *cms, size_t len,
    struct db_err *err)
{
	char cid[24], uid[24];
	const char *v[4] = { cid, uid, (const char *)cms, officer_fp };
	int lens[4] = { 0, 0, (int)len, 0 };
	PGresult *res;

	snprintf(cid, sizeof(cid), "%" PRId64, cert_id);
	snprintf(uid, sizeof(uid), "%" PRId64, user_id);
	if ((res = db_exec_row(db, S_ESCROW_PUT, v, lens, 0, err, "the "
	    "escrow officer changed: take its certificate again")) == NULL)
		return -1;
	PQclear(res);
	return 0;
}

int
db_escrow_get(struct db *db, const char *issuer, const char *serial,
    unsigned char **cms, size_t *len, char userid[DB_USERID_MAX],
    struct db_err *err)
{
	const char *v[2] = { issuer, serial };
	PGresult *res;

	*cms = NULL;
	if ((res = db_exec_row(db, S_ESCROW_GET, v, NULL, 1, err, "no key "
	    "escrowed for certificate %s", serial)) == NULL)
		return -1;
	*len = (size_t)PQgetlength(res, 0, 0);
	if ((*cms = malloc(*len ? *len : 1)) == NULL) {
		PQclear(res);
		db_seterr(err, DB_ERR_INTERNAL, "out of memory");
		return -1;
	}
	memcpy(*cms, PQgetvalue(res, 0, 0), *len);
	snprintf(userid, DB_USERID_MAX, "%.*s", PQgetlength(res, 0, 1),
	    PQgetvalue(res, 0, 1));
	PQclear(res);
	return 0;
}

int
db_escrow_has(struct db *db, int64_t cert_id, char fp[DB_FP_MAX],
    struct db_err *err)
{
	char cid[24];
	const char *v[1] = { cid };
	PGresult *res;

	fp[0] = '\0';
	snprintf(cid, sizeof(cid), "%" PRId64, cert_id);
	if ((res = db_exec(db, S_ESCROW_HAS, v, NULL, 0, PGRES_TUPLES_OK,
	    err)) == NULL)
		return -1;
	if (PQntuples(res) == 1)
		col_str(res, 0, 0, fp, DB_FP_MAX);
	PQclear(res);
	return 0;
}

/* ---- certificates --------------------------------------------------- */

int
db_cert_record(struct db *db, const struct db_cert_new *c,
    const struct db_audit_row *a, int64_t *id, struct db_err *err)
{
	char uid[24], nb[24], na[24];
	const char *v[12] = { c->issuer, uid, c->serial, c->fingerprint,
		(const char *)c->der, nb, na, a->actor, a->action, a->target,
		a->source, (const char *)c->code_hash };
	int lens[12] = { 0, 0, 0, 0, (int)c->der_len, 0, 0, 0, 0, 0, 0, 32 };
	int64_t user_id = c->user_id;
	PGresult *res;

	snprintf(uid, sizeof(uid), "%" PRId64, user_id);
	snprintf(nb, sizeof(nb), "%lld", (long long)c->not_before);
	snprintf(na, sizeof(na), "%lld", (long long)c->not_after);
	if (c->code_hash != NULL)
		res = db_exec_row(db, S_CERT_RECORD_CODE, v, lens, 0, err,
		    "unknown, used or expired enrolment code");
	else
		res = db_exec(db, S_CERT_RECORD, v, lens, 0, PGRES_TUPLES_OK,
		    err);
	if (res == NULL)
		return -1;
	if (id != NULL)
		*id = col_ll(res, 0, 0);
	PQclear(res);
	return 0;
}

int
db_cert_list(struct db *db, const char *userid,
    int (*cb)(const struct db_cert *, void *), void *arg, struct db_err *err)
{
	const char *v[1] = { userid };
	PGresult *res;
	int rv;

	res = db_exec(db, userid ? S_CERT_LIST : S_CERT_LIST_ALL,
	    userid ? v : NULL, NULL, 0, PGRES_TUPLES_OK, err);
	if (res == NULL)
		return -1;
	rv = rows_cert(res, cb, arg, err);
	PQclear(res);
	return rv;
}

int
db_cert_get(struct db *db, const char *issuer, const char *serial,
    int (*cb)(const struct db_cert *, void *), void *arg, struct db_err *err)
{
	const char *v[2] = { issuer, serial };
	PGresult *res;
	int rv;

	if ((res = db_exec(db, S_CERT_GET, v, NULL, 0, PGRES_TUPLES_OK,
		 err)) == NULL)
		return -1;
	if (PQntuples(res) == 0) {
		PQclear(res);
		db_seterr(err, DB_ERR_NOTFOUND, "no certificate with serial %s",
		    serial);
		return -1;
	}
	rv = rows_cert(res, cb, arg, err);
	PQclear(res);
	return rv;
}

int
db_cert_revoke(struct db *db, const char *issuer, const char *serial,
    int reason, int *raised, int64_t *user_id, struct db_err *err)
{
	char rbuf[8];
	const char *v[3] = { issuer, serial, rbuf };
	PGresult *res = NULL;
	int own_tx = !db->in_tx;

	*raised = 0;
	snprintf(rbuf, sizeof(rbuf), "%d", reason);
	if (own_tx && db_begin(db, err) == -1)
		return -1;
	if ((res = db_exec(db, S_CERT_REVOKE, v, NULL, 0, PGRES_TUPLES_OK,
		 err)) == NULL)
		goto err;
	if (PQntuples(res) != 1 && reason == DB_REASON_KEY_COMPROMISE) {
		PQclear(res);
		if ((res = db_exec(db, S_CERT_RAISE, v, NULL, 0,
		    PGRES_TUPLES_OK, err)) == NULL)
			goto err;
		if (PQntuples(res) == 1) {
			/* Its addresses went with the first revocation. */
			*raised = 1;
			*user_id = col_ll(res, 0, 1);
			PQclear(res);
			if (own_tx && db_commit(db, err) == -1)
				return -1;
			return 0;
		}
	}
	if (PQntuples(res) != 1) {
		PQclear(res);
		res = db_exec(db, S_CERT_STATUS, v, NULL, 0, PGRES_TUPLES_OK,
		    err);
		if (res == NULL)
			goto err;
		if (PQntuples(res) == 0)
			db_seterr(err, DB_ERR_NOTFOUND,
			    "no certificate with serial %s", serial);
		else
			db_seterr(err, DB_ERR_CONFLICT,
			    "certificate %s is already revoked", serial);
		goto err;
	}
	*user_id = col_ll(res, 0, 1);
	v[0] = PQgetvalue(res, 0, 0);
	{
		PGresult *r2 = db_exec(db, S_ADDR_DEL, v, NULL, 0,
		    PGRES_TUPLES_OK, err);
		if (r2 == NULL)
			goto err;
		PQclear(r2);
	}
	PQclear(res);
	res = NULL;
	if (own_tx && db_commit(db, err) == -1)
		return -1;
	return 0;
err:
	PQclear(res);
	if (own_tx)
		db_rollback(db);
	return -1;
}

int
db_cert_revoke_user(struct db *db, const char *issuer, const char *userid,
    int reason, int (*cb)(const char *serial, void *), void *arg,
    struct db_err *err)
{
	char rbuf[8];
	const char *v[3] = { issuer, userid, rbuf };
	PGresult *res;
	int r, rv = 0;

	snprintf(rbuf, sizeof(rbuf), "%d", reason);
	if ((res = db_exec(db, S_CERT_REVOKE_USER, v, NULL, 0,
	    PGRES_TUPLES_OK, err)) == NULL)
		return -1;
	for (r = 0; r < PQntuples(res) && rv == 0; r++)
		if (cb(PQgetvalue(res, r, 1), arg) != 0) {
			db_seterr(err, DB_ERR_INTERNAL, "stopped by caller");
			rv = -1;
		}
	PQclear(res);
	return rv;
}

int
db_revoked_list(struct db *db, const char *issuer,
    int (*cb)(const struct db_cert *, void *), void *arg, struct db_err *err)
{
	const char *v[1] = { issuer };
	PGresult *res;
	int rv;

	if ((res = db_exec(db, S_REVOKED, v, NULL, 0, PGRES_TUPLES_OK,
		 err)) == NULL)
		return -1;
	rv = rows_cert(res, cb, arg, err);
	PQclear(res);
	return rv;
}

/* ---- CRL state -------------------------------------------------------- */

int
db_crl_next_number(struct db *db, const char *issuer, long *number,
    struct db_err *err)
{
	const char *v[1] = { issuer };
	PGresult *res;

	if ((res = db_exec(db, S_CRL_NEXT, v, NULL, 0, PGRES_TUPLES_OK,
		 err)) == NULL)
		return -1;
	*number = (long)col_ll(res, 0, 0);
	PQclear(res);
	return 0;
}

int
db_crl_store(struct db *db, const char *issuer, long number,
    time_t this_update, time_t next_update, const unsigned char *der,
    size_t der_len, struct db_err *err)
{
	char nb[24], tu[24], nu[24];
	const char *v[5] = { issuer, nb, tu, nu, (const char *)der };
	int lens[5] = { 0, 0, 0, 0, (int)der_len };
	PGresult *res;

	snprintf(nb, sizeof(nb), "%ld", number);
	snprintf(tu, sizeof(tu), "%lld", (long long)this_update);
	snprintf(nu, sizeof(nu), "%lld", (long long)next_update);
	if ((res = db_exec(db, S_CRL_STORE, v, lens, 0, PGRES_COMMAND_OK,
		 err)) == NULL)
		return -1;
	PQclear(res);
	return 0;
}

/* ---- audit ------------------------------------------------------------ */

int
db_audit(struct db *db, const char *actor, const char *action,
    const char *target, const char *serial, const char *source,
    const char *detail, struct db_err *err)
{
	const char *v[6] = { actor, action, target, serial, source, detail };
	PGresult *res;

	if ((res = db_exec(db, S_AUDIT, v, NULL, 0, PGRES_TUPLES_OK,
		 err)) == NULL)
		return -1;
	PQclear(res);
	return 0;
}

int
db_audit_rows(struct db *db,
    int (*cb)(int64_t id, int chain, const char *payload,
	const unsigned char *prev, const unsigned char *hash, void *arg),
    void *arg, struct db_err *err)
{
	PGresult *res;
	int r, rv = 0;

	/* Binary results: the hashes arrive as their 32 raw bytes. */
	if ((res = db_exec(db, S_AUDIT_ROWS, NULL, NULL, 1, PGRES_TUPLES_OK,
		 err)) == NULL)
		return -1;
	for (r = 0; r < PQntuples(res) && rv == 0; r++) {
		const unsigned char *idp =
		    (const unsigned char *)PQgetvalue(res, r, 0);
		const unsigned char *chp =
		    (const unsigned char *)PQgetvalue(res, r, 1);
		int64_t id = 0;
		char *payload;
		int i, plen = PQgetlength(res, r, 2);

		if (PQgetlength(res, r, 0) != 8 ||
		    PQgetlength(res, r, 1) != 2 ||
		    PQgetlength(res, r, 3) != 32 ||
		    PQgetlength(res, r, 4) != 32) {
			db_seterr(err, DB_ERR_INTERNAL,
			    "audit row %d has a malformed hash", r);
			rv = -1;
			break;
		}
		for (i = 0; i < 8; i++)
			id = (int64_t)(((uint64_t)id << 8) | idp[i]);
		if ((payload = strndup(PQgetvalue(res, r, 2), plen)) == NULL) {
			db_seterr(err, DB_ERR_INTERNAL, "out of memory");
			rv = -1;
			break;
		}
		if (cb(id, (int)(int16_t)((chp[0] << 8) | chp[1]), payload,
			(const unsigned char *)PQgetvalue(res, r, 3),
			(const unsigned char *)PQgetvalue(res, r, 4),
			arg) != 0) {
			db_seterr(err, DB_ERR_INTERNAL, "stopped by caller");
			rv = -1;
		}
		free(payload);
	}
	PQclear(res);
	return rv;
}

/* ---- for dird's handlers ---------------------------------------------- */

int
db_auth_cert(struct db *db, const char *issuer, const char *serial,
    struct db_auth *a, struct db_err *err)
{
	const char *v[2] = { issuer, serial };
	PGresult *res;

	if ((res = db_exec_row(db, S_AUTH_CERT, v, NULL, 0, err,
	    "unknown certificate")) == NULL)
		return -1;
	a->cert_id = col_ll(res, 0, 0);
	a->revoked = col_bool(res, 0, 1);
	a->not_after = (time_t)col_ll(res, 0, 2);
	/* The user columns follow the three certificate columns. */
	{
		struct db_user *u = &a->user;

		memset(u, 0, sizeof(*u));
		u->id = col_ll(res, 0, 3);
		col_str(res, 0, 4, u->userid, sizeof(u->userid));
		col_str(res, 0, 5, u->name, sizeof(u->name));
		col_str(res, 0, 6, u->email, sizeof(u->email));
		u->is_admin = col_bool(res, 0, 7);
		u->enabled = col_bool(res, 0, 8);
		u->has_password = col_bool(res, 0, 9);
		u->created_at = (time_t)col_ll(res, 0, 10);
	}
	PQclear(res);
	return 0;
}

int
db_ocsp_status(struct db *db, const char *issuer, const char *serial,
    struct db_ocsp *o, struct db_err *err)
{
	const char *v[2] = { issuer, serial };
	PGresult *res;

	if ((res = db_exec_row(db, S_OCSP, v, NULL, 0, err,
	    "unknown certificate")) == NULL)
		return -1;
	memset(o, 0, sizeof(*o));
	o->user_id = col_ll(res, 0, 0);
	o->not_after = (time_t)col_ll(res, 0, 6);
	if (col_bool(res, 0, 1)) {
		o->revoked = 1;
		o->revoked_at = (time_t)col_ll(res, 0, 2);
		o->reason = (int)col_ll(res, 0, 3);
	} else if (!col_bool(res, 0, 4)) {
		/* A disabled user's certificate: on hold, as on the CRL. */
		o->revoked = 1;
		o->revoked_at = (time_t)col_ll(res, 0, 5);
		o->reason = DB_REASON_HOLD;
	}
	PQclear(res);
	return 0;
}

/* An array literal growing as elements are appended: {"a","b"}. */
struct arr {
	char *buf;
	size_t len, cap;
};

static int
arr_add(struct arr *a, const char *s)
{
	/* a comma or brace, two quotes, s; then arr_end's brace and NUL */
	size_t need = a->len + strlen(s) + 5;
	char *nb;

	if (need > a->cap) {
		size_t cap = a->cap ? a->cap : 256;

		while (cap < need)
			cap *= 2;
		if ((nb = realloc(a->buf, cap)) == NULL)
			return -1;
		a->buf = nb;
		a->cap = cap;
	}
	/* Opened by the first element, closed by arr_end. */
	a->len += (size_t)snprintf(a->buf + a->len, a->cap - a->len,
	    "%s\"%s\"", a->len == 0 ? "{" : ",", s);
	return 0;
}

static const char *
arr_end(struct arr *a)
{
	if (a->len == 0)
		return "{}";
	/* arr_add left room for these two. */
	a->buf[a->len] = '}';
	a->buf[a->len + 1] = '\0';
	return a->buf;
}

enum { A_CERT, A_UID, A_IP, A_PORT, A_KIND, A_TTL, A_DEV, A_COUNT };

/* The element arrays of S_ADDR_SET for sets[0..n-1]. */
static int
addr_arrays(struct arr *a, const struct db_addr_set *sets, size_t n)
{
	char cert[24], uid[24], ttl[16], port[8];
	size_t i, j;

	for (i = 0; i < n; i++) {
		const struct db_addr_set *s = &sets[i];

		snprintf(cert, sizeof(cert), "%" PRId64, s->cert_id);
		snprintf(uid, sizeof(uid), "%" PRId64, s->user_id);
		snprintf(ttl, sizeof(ttl), "%d", s->ttl);
		if (arr_add(&a[A_DEV], cert) == -1)
			return -1;
		for (j = 0; j < s->n; j++) {
			snprintf(port, sizeof(port), "%d", s->addrs[j].port);
			if (arr_add(&a[A_CERT], cert) == -1 ||
			    arr_add(&a[A_UID], uid) == -1 ||
			    arr_add(&a[A_IP], s->addrs[j].ip) == -1 ||
			    arr_add(&a[A_PORT], port) == -1 ||
			    arr_add(&a[A_KIND], s->addrs[j].observed ?
				"observed" : "declared") == -1 ||
			    arr_add(&a[A_TTL], ttl) == -1)
				return -1;
		}
	}
	return 0;
}

int
db_addr_replace_many(struct db *db, struct db_addr_set *sets, size_t n,
    struct db_err *err)
{
	struct arr a[A_COUNT];
	const char *v[A_COUNT];
	PGresult *res = NULL;
	size_t i;
	int k, r, rv = -1;

	memset(a, 0, sizeof(a));
	for (i = 0; i < n; i++) {
		if (sets[i].n > DB_ADDR_SET_MAX) {
			db_seterr(err, DB_ERR_INVALID, "too many addresses");
			return -1;
		}
		sets[i].expires_at = 0;
	}
	if (addr_arrays(a, sets, n) == -1) {
		db_seterr(err, DB_ERR_INTERNAL, "out of memory");
		goto err;
	}
	for (k = 0; k < A_COUNT; k++)
		v[k] = arr_end(&a[k]);
	if ((res = db_exec(db, S_ADDR_SET, v, NULL, 0, PGRES_TUPLES_OK,
		 err)) == NULL)
		goto err;
	/* Every row of a device has its expiry: the first one found. */
	for (r = 0; r < PQntuples(res); r++) {
		int64_t cert = col_ll(res, r, 0);

		for (i = 0; i < n; i++)
			if (sets[i].cert_id == cert && sets[i].expires_at == 0)
				sets[i].expires_at = (time_t)col_ll(res, r, 1);
	}
	for (i = 0; i < n; i++)
		if (sets[i].expires_at == 0)
			sets[i].expires_at = time(NULL) + sets[i].ttl;
	rv = 0;
err:
	PQclear(res);
	for (k = 0; k < A_COUNT; k++)
		free(a[k].buf);
	return rv;
}

int
db_addr_replace(struct db *db, int64_t cert_id, int64_t user_id,
    const struct db_addr *addrs, size_t n, int ttl, time_t *expires_at,
    struct db_err *err)
{
	struct db_addr_set s = { cert_id, user_id, addrs, n, ttl, 0 };

	if (db_addr_replace_many(db, &s, 1, err) == -1)
		return -1;
	*expires_at = s.expires_at;
	return 0;
}

int
db_addr_delete(struct db *db, int64_t cert_id, long *n, struct db_err *err)
{
	char id[24];
	const char *v[1] = { id };
	PGresult *res;

	snprintf(id, sizeof(id), "%" PRId64, cert_id);
	if ((res = db_exec(db, S_ADDR_DEL, v, NULL, 0, PGRES_TUPLES_OK,
		 err)) == NULL)
		return -1;
	*n = PQntuples(res);
	PQclear(res);
	return 0;
}

/*
 * Call cb for each LOOKUP_COLS row of a binary result, the columns
 * starting at column c0; the DER is borrowed from the result.
 */
static int
rows_lookup(PGresult *res, int c0,
    int (*cb)(const struct db_lookup_row *, void *), void *arg,
    struct db_err *err)
{
	struct db_lookup_row row;
	int r;

	for (r = 0; r < PQntuples(res); r++) {
		memset(&row, 0, sizeof(row));
		col_str(res, r, c0, row.serial, sizeof(row.serial));
		col_str(res, r, c0 + 1, row.fingerprint,
		    sizeof(row.fingerprint));
		row.der = (const unsigned char *)PQgetvalue(res, r, c0 + 2);
		row.der_len = (size_t)PQgetlength(res, r, c0 + 2);
		row.not_after = (time_t)col_ll(res, r, c0 + 3);
		row.has_addr = col_bool(res, r, c0 + 4);
		col_str(res, r, c0 + 5, row.ip, sizeof(row.ip));
		row.port = (int)col_ll(res, r, c0 + 6);
		row.observed = col_bool(res, r, c0 + 7);
		row.updated_at = (time_t)col_ll(res, r, c0 + 8);
		row.expires_at = (time_t)col_ll(res, r, c0 + 9);
		if (cb(&row, arg) != 0) {
			db_seterr(err, DB_ERR_INTERNAL, "stopped by caller");
			return -1;
		}
	}
	return 0;
}

int
db_lookup(struct db *db, int64_t user_id,
    int (*cb)(const struct db_lookup_row *, void *), void *arg,
    struct db_err *err)
{
	char id[24];
	const char *v[1] = { id };
	PGresult *res;
	int rv;

	snprintf(id, sizeof(id), "%" PRId64, user_id);
	if ((res = db_exec(db, S_LOOKUP, v, NULL, 1, PGRES_TUPLES_OK,
		 err)) == NULL)
		return -1;
	rv = rows_lookup(res, 0, cb, arg, err);
	PQclear(res);
	return rv;
}

int
db_user_lookup(struct db *db, const char *userid, struct db_user *u,
    int (*cb)(const struct db_lookup_row *, void *), void *arg,
    struct db_err *err)
{
	const char *v[1] = { userid };
	PGresult *res;
	int rv = 0;

	if ((res = db_exec(db, S_USER_LOOKUP, v, NULL, 1, PGRES_TUPLES_OK,
		 err)) == NULL)
		return -1;
	if (PQntuples(res) < 1) {
		PQclear(res);
		db_seterr(err, DB_ERR_NOTFOUND, "no user %s", userid);
		return -1;
	}
	row_user(res, 0, u);
	/* A user without a current certificate: one row, serial NULL. */
	if (!PQgetisnull(res, 0, USER_NCOLS))
		rv = rows_lookup(res, USER_NCOLS, cb, arg, err);
	PQclear(res);
	return rv;
}

int
db_backup_put(struct db *db, int64_t user_id, const unsigned char *data,
    size_t len, const unsigned char sha256[32], struct db_err *err)
{
	char id[24];
	const char *v[3] = { id, (const char *)data, (const char *)sha256 };
	int lens[3] = { 0, (int)len, 32 };
	PGresult *res;

	snprintf(id, sizeof(id), "%" PRId64, user_id);
	if ((res = db_exec(db, S_BACKUP_PUT, v, lens, 0, PGRES_COMMAND_OK,
		 err)) == NULL)
		return -1;
	PQclear(res);
	return 0;
}

/* Fetch one bytea (binary result) + one bigint into new memory. */
static int
db_get_blob(struct db *db, enum stmt s, const char *param,
    unsigned char **data, size_t *len, time_t *when, const char *what,
    struct db_err *err)
{
	const char *v[1] = { param };
	const unsigned char *t;
	PGresult *res;
	uint64_t w = 0;
	int i;

	*data = NULL;
	if ((res = db_exec(db, s, v, NULL, 1, PGRES_TUPLES_OK, err)) == NULL)
		return -1;
	if (PQntuples(res) != 1) {
		PQclear(res);
		db_seterr(err, DB_ERR_NOTFOUND, "no %s stored", what);
		return -1;
	}
	*len = (size_t)PQgetlength(res, 0, 0);
	if ((*data = malloc(*len ? *len : 1)) == NULL) {
		PQclear(res);
		db_seterr(err, DB_ERR_INTERNAL, "out of memory");
		return -1;
	}
	memcpy(*data, PQgetvalue(res, 0, 0), *len);
	/* int8 in binary: 8 bytes, network order. */
	t = (const unsigned char *)PQgetvalue(res, 0, 1);
	for (i = 0; i < 8 && PQgetlength(res, 0, 1) == 8; i++)
		w = (w << 8) | t[i];
	*when = (time_t)(int64_t)w;
	PQclear(res);
	return 0;
}

int
db_backup_get(struct db *db, int64_t user_id, unsigned char **data,
    size_t *len, time_t *updated_at, struct db_err *err)
{
	char id[24];

	snprintf(id, sizeof(id), "%" PRId64, user_id);
	return db_get_blob(db, S_BACKUP_GET, id, data, len, updated_at,
	    "backup", err);
}

int
db_crl_get(struct db *db, const char *issuer, unsigned char **der,
    size_t *len, time_t *next_update, struct db_err *err)
{
	return db_get_blob(db, S_CRL_GET, issuer, der, len, next_update, "CRL",
	    err);
}

int
db_online_users(struct db *db, long *n, struct db_err *err)
{
	PGresult *res;

	if ((res = db_exec(db, S_ONLINE, NULL, NULL, 0, PGRES_TUPLES_OK,
		 err)) == NULL)
		return -1;
	*n = (long)col_ll(res, 0, 0);
	PQclear(res);
	return 0;
}

/* ---- federation ------------------------------------------------------ */

static void
row_fed(PGresult *res, int r, struct db_fed *f)
{
	col_str(res, r, 0, f->domain, sizeof(f->domain));
	col_str(res, r, 1, f->rule, sizeof(f->rule));
	col_str(res, r, 2, f->ca_sha256, sizeof(f->ca_sha256));
	f->added_at = (time_t)col_ll(res, r, 3);
	col_str(res, r, 4, f->added_by, sizeof(f->added_by));
}

int
db_fed_set(struct db *db, const struct db_fed *f, struct db_err *err)
{
	const char *v[4] = { f->domain, f->rule, f->ca_sha256, f->added_by };
	PGresult *res;

	if ((res = db_exec(db, S_FED_SET, v, NULL, 0, PGRES_COMMAND_OK,
		 err)) == NULL)
		return -1;
	PQclear(res);
	return 0;
}

int
db_fed_remove(struct db *db, const char *domain, struct db_err *err)
{
	const char *v[1] = { domain };
	PGresult *res;
	int n;

	if ((res = db_exec(db, S_FED_DEL, v, NULL, 0, PGRES_TUPLES_OK,
		 err)) == NULL)
		return -1;
	n = PQntuples(res);
	PQclear(res);
	if (n == 0) {
		db_seterr(err, DB_ERR_NOTFOUND, "no federation rule for %s",
		    domain);
		return -1;
	}
	return 0;
}

int
db_fed_get(struct db *db, const char *domain, struct db_fed *f,
    struct db_err *err)
{
	const char *v[1] = { domain };
	PGresult *res;

	if ((res = db_exec_row(db, S_FED_GET, v, NULL, 0, err,
		 "no federation rule for %s", domain)) == NULL)
		return -1;
	row_fed(res, 0, f);
	PQclear(res);
	return 0;
}

int
db_fed_list(struct db *db, int (*cb)(const struct db_fed *, void *),
    void *arg, struct db_err *err)
{
	struct db_fed f;
	PGresult *res;
	int r;

	if ((res = db_exec(db, S_FED_LIST, NULL, NULL, 0, PGRES_TUPLES_OK,
		 err)) == NULL)
		return -1;
	for (r = 0; r < PQntuples(res); r++) {
		row_fed(res, r, &f);
		if (cb(&f, arg) != 0)
			break;
	}
	PQclear(res);
	return 0;
}

/* ---- the inbox ------------------------------------------------------ */

int
db_inbox_usage(struct db *db, int64_t user_id, const char *sender,
    struct db_inbox_usage *u, struct db_err *err)
{
	char id[24];
	const char *v[2] = { id, sender };
	PGresult *res;

	snprintf(id, sizeof(id), "%" PRId64, user_id);
	/* Under the lock, so that the sums below hold until the commit. */
	if ((res = db_exec(db, S_INBOX_LOCK, NULL, NULL, 0, PGRES_TUPLES_OK,
		 err)) == NULL)
		return -1;
	PQclear(res);
	if ((res = db_exec(db, S_INBOX_PURGE, NULL, NULL, 0, PGRES_COMMAND_OK,
		 err)) == NULL)
		return -1;
	PQclear(res);
	if ((res = db_exec_row(db, S_INBOX_USAGE, v, NULL, 0, err,
		 "no inbox")) == NULL)
		return -1;
	u->user_bytes = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
	u->user_count = strtoll(PQgetvalue(res, 0, 1), NULL, 10);
	u->sender_bytes = strtoll(PQgetvalue(res, 0, 2), NULL, 10);
	u->total_bytes = strtoll(PQgetvalue(res, 0, 3), NULL, 10);
	PQclear(res);
	return 0;
}

int
db_inbox_put(struct db *db, const struct db_inbox_new *m,
    struct db_inbox_msg *out, struct db_err *err)
{
	char id[24], ttl[24];
	const char *v[5] = { id, m->sender, m->msg_id, (const char *)m->data,
		ttl };
	int lens[5] = { 0, 0, 0, (int)m->len, 0 };
	PGresult *res;

	if (m->len == 0 || m->len > INT32_MAX) {
		db_seterr(err, DB_ERR_INVALID, "a message of %zu bytes", m->len);
		return -1;
	}
	snprintf(id, sizeof(id), "%" PRId64, m->user_id);
	snprintf(ttl, sizeof(ttl), "%lld", (long long)m->ttl);
	if ((res = db_exec_row(db, S_INBOX_PUT, v, lens, 0, err,
		 "a message %s from %s is stored already", m->msg_id,
		 m->sender)) == NULL) {
		if (err != NULL && err->code == DB_ERR_NOTFOUND)
			err->code = DB_ERR_CONFLICT;
		return -1;
	}
	memset(out, 0, sizeof(*out));
	out->id = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
	out->stored_at = (time_t)strtoll(PQgetvalue(res, 0, 1), NULL, 10);
	out->expires_at = (time_t)strtoll(PQgetvalue(res, 0, 2), NULL, 10);
	snprintf(out->sender, sizeof(out->sender), "%s", m->sender);
	snprintf(out->msg_id, sizeof(out->msg_id), "%s", m->msg_id);
	out->size = (int64_t)m->len;
	PQclear(res);
	return 0;
}

int
db_inbox_list(struct db *db, int64_t user_id, int max,
    int (*cb)(const struct db_inbox_msg *, void *), void *arg,
    struct db_err *err)
{
	char id[24], lim[16];
	const char *v[2] = { id, lim };
	struct db_inbox_msg m;
	PGresult *res;
	int r;

	snprintf(id, sizeof(id), "%" PRId64, user_id);
	snprintf(lim, sizeof(lim), "%d", max);
	if ((res = db_exec(db, S_INBOX_LIST, v, NULL, 0, PGRES_TUPLES_OK,
		 err)) == NULL)
		return -1;
	for (r = 0; r < PQntuples(res); r++) {
		memset(&m, 0, sizeof(m));
		m.id = strtoll(PQgetvalue(res, r, 0), NULL, 10);
		snprintf(m.sender, sizeof(m.sender), "%s",
		    PQgetvalue(res, r, 1));
		snprintf(m.msg_id, sizeof(m.msg_id), "%s",
		    PQgetvalue(res, r, 2));
		m.size = strtoll(PQgetvalue(res, r, 3), NULL, 10);
		m.stored_at = (time_t)strtoll(PQgetvalue(res, r, 4), NULL, 10);
		m.expires_at = (time_t)strtoll(PQgetvalue(res, r, 5), NULL, 10);
		if (cb(&m, arg) != 0)
			break;
	}
	PQclear(res);
	return 0;
}

int
db_inbox_state(struct db *db, int64_t user_id, int64_t *count, int64_t *newest,
    struct db_err *err)
{
	char id[24];
	const char *v[1] = { id };
	PGresult *res;

	snprintf(id, sizeof(id), "%" PRId64, user_id);
	if ((res = db_exec(db, S_INBOX_STATE, v, NULL, 0, PGRES_TUPLES_OK,
		 err)) == NULL)
		return -1;
	*count = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
	*newest = strtoll(PQgetvalue(res, 0, 1), NULL, 10);
	PQclear(res);
	return 0;
}

int
db_inbox_get(struct db *db, int64_t user_id, int64_t msg, unsigned char **data,
    size_t *len, struct db_err *err)
{
	char id[24], m[24];
	const char *v[2] = { id, m };
	PGresult *res;

	*data = NULL;
	snprintf(id, sizeof(id), "%" PRId64, user_id);
	snprintf(m, sizeof(m), "%" PRId64, msg);
	if ((res = db_exec_row(db, S_INBOX_GET, v, NULL, 1, err,
		 "no message %" PRId64 " waits here", msg)) == NULL)
		return -1;
	*len = (size_t)PQgetlength(res, 0, 0);
	if ((*data = malloc(*len ? *len : 1)) == NULL) {
		PQclear(res);
		db_seterr(err, DB_ERR_INTERNAL, "out of memory");
		return -1;
	}
	memcpy(*data, PQgetvalue(res, 0, 0), *len);
	PQclear(res);
	return 0;
}

int
db_inbox_delete(struct db *db, int64_t user_id, int64_t msg, int64_t *size,
    struct db_err *err)
{
	char id[24], m[24];
	const char *v[2] = { id, m };
	PGresult *res;

	snprintf(id, sizeof(id), "%" PRId64, user_id);
	snprintf(m, sizeof(m), "%" PRId64, msg);
	if ((res = db_exec_row(db, S_INBOX_DEL, v, NULL, 0, err,
		 "no message %" PRId64 " waits here", msg)) == NULL)
		return -1;
	*size = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
	PQclear(res);
	return 0;
}

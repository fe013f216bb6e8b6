/*
 * db.h - the PostgreSQL store of the registry.
 *
 * The only module that speaks libpq.  Every statement is a named prepared
 * statement with $n parameters (table in db.c); callers see plain C
 * structs and a struct db_err whose code maps onto an HTTP status.
 *
 * A struct db is one connection and must never be used by two threads at
 * once (one per worker thread).  After the server restarted, db_ensure()
 * reconnects and prepares the statements again.
 */
#ifndef DB_H
#define DB_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#define DB_WUR __attribute__((warn_unused_result))

enum db_errcode {
	DB_OK = 0,
	DB_ERR_UNAVAILABLE, /* no connection: the server is down (503) */
	DB_ERR_NOTFOUND,    /* no such row (404) */
	DB_ERR_CONFLICT,    /* unique violation or wrong state (409) */
	DB_ERR_INVALID,	    /* refused by a constraint (400) */
	DB_ERR_INTERNAL,    /* anything else (500) */
};

struct db_err {
	enum db_errcode code;
	char sqlstate[6];
	char msg[256];
};

#define DB_USERID_MAX 255
#define DB_NAME_MAX 129
#define DB_SERIAL_MAX 41
#define DB_FP_MAX 65

struct db_user {
	int64_t id;
	char userid[DB_USERID_MAX];
	char name[DB_NAME_MAX];
	char email[DB_USERID_MAX]; /* "" when none */
	int is_admin;
	int enabled;
	int has_password;
	time_t created_at;
};

struct db_cert {
	int64_t id;
	int64_t user_id;
	char userid[DB_USERID_MAX];
	char serial[DB_SERIAL_MAX];
	char fingerprint[DB_FP_MAX];
	time_t not_before;
	time_t not_after;
	int revoked;
	time_t revoked_at;
	int reason;
	const unsigned char *der; /* borrowed, valid during the callback */
	size_t der_len;
};

struct db;

/* Connect with a libpq conninfo string and prepare every statement. */
struct db *db_connect(const char *conninfo, struct db_err *err) DB_WUR;
void db_free(struct db *db);

/*
 * Make sure the connection is usable: reconnect (and prepare again) when
 * the server went away.  Cheap when the connection is fine.
 */
int db_ensure(struct db *db, struct db_err *err) DB_WUR;
/* 0 if a trivial query succeeds now. */
int db_ping(struct db *db, struct db_err *err) DB_WUR;

/*
 * Apply the numbered migrations NNN_name.sql found in schema_dir that are
 * not yet recorded in schema_version, each in its own transaction, under
 * an advisory lock (several instances may start at once).  *applied gets
 * how many ran; running it again on an up-to-date database applies none.
 */
int db_migrate(struct db *db, const char *schema_dir, int *applied,
    struct db_err *err) DB_WUR;
/* Highest applied migration, 0 for an empty database. */
int db_schema_version(struct db *db, int *version, struct db_err *err) DB_WUR;

/*
 * Changes made by anyone (dirctl, another dird, an operator's SQL) reach
 * a listener through PostgreSQL NOTIFY (schema/002_change_notify.sql):
 * db_listen_changes on a connection of its own, then db_read_changes
 * whenever db_socket is readable, which calls fn(arg, user_id, 0) for
 * each (user_id 0: any user); -1 means the connection is lost
 * (db_listen_changes again; changes in between were missed).
 * db_set_quiet stops this handle's own writes from being announced, for
 * a dird that is the only cache holder of its database (announcing
 * serialises commits in PostgreSQL); it drops its own entries itself
 * (reg.c, reg_changed).
 */
typedef void db_change_fn(void *arg, int64_t user_id, int listing);
int db_set_quiet(struct db *db, struct db_err *err) DB_WUR;
int db_listen_changes(struct db *db, struct db_err *err) DB_WUR;
/*
 * The same for what push.h waits for (schema/007_push.sql: NOTIFY
 * dir_push with the user's id when mail is stored for them), read with
 * db_read_changes too.
 */
int db_listen_push(struct db *db, struct db_err *err) DB_WUR;
/*
 * On a listening connection: claim to be the only dird that caches
 * without announcing its writes (cache = local).  *alone is 0 when
 * another live dird holds the claim; the claim ends with the connection.
 */
int db_listen_alone(struct db *db, int *alone, struct db_err *err) DB_WUR;
int db_socket(const struct db *db);
int db_read_changes(struct db *db, db_change_fn *fn, void *arg,
    struct db_err *err) DB_WUR;

/* Transactions for callers that combine several statements. */
int db_begin(struct db *db, struct db_err *err) DB_WUR;
int db_commit(struct db *db, struct db_err *err) DB_WUR;
void db_rollback(struct db *db);
/* 1 while a transaction opened with db_begin is open. */
int db_in_tx(const struct db *db);

/* Users.  userid must already be lower case. */
int db_user_add(struct db *db, const char *userid, const char *name,
    const char *email, int is_admin, const char *password_hash,
    int64_t *id, struct db_err *err) DB_WUR;
int db_user_get(struct db *db, const char *userid, struct db_user *u,
    struct db_err *err) DB_WUR;
int db_user_by_id(struct db *db, int64_t id, struct db_user *u,
    struct db_err *err) DB_WUR;
int db_user_list(struct db *db, int (*cb)(const struct db_user *, void *),
    void *arg, struct db_err *err) DB_WUR;
/* *id (may be NULL) gets the user's users.id. */
int db_user_set_enabled(struct db *db, const char *userid, int enabled,
    int64_t *id, struct db_err *err) DB_WUR;
int db_user_set_password(struct db *db, const char *userid,
    const char *password_hash, int64_t *id, struct db_err *err) DB_WUR;
/* The stored Argon2id hash into buf ("" when none). */
int db_user_password(struct db *db, const char *userid, char *buf,
    size_t buflen, struct db_err *err) DB_WUR;

/*
 * Federation: the rule by which another domain's CA is accepted (schema
 * 005).  rule is "pinned" (ca_sha256 set), "dane" or "refused".
 */
struct db_fed {
	char domain[254];
	char rule[8];
	char ca_sha256[65]; /* "" unless pinned */
	time_t added_at;
	char added_by[DB_USERID_MAX];
};
/* Set (or replace) the rule for f->domain; added_at is now. */
int db_fed_set(struct db *db, const struct db_fed *f, struct db_err *err)
    DB_WUR;
/* Remove the rule for domain; DB_ERR_NOTFOUND when there is none. */
int db_fed_remove(struct db *db, const char *domain, struct db_err *err)
    DB_WUR;
/* The rule for domain into *f; DB_ERR_NOTFOUND when there is none. */
int db_fed_get(struct db *db, const char *domain, struct db_fed *f,
    struct db_err *err) DB_WUR;
/* Every rule, by domain; cb returns non-zero to stop. */
int db_fed_list(struct db *db, int (*cb)(const struct db_fed *, void *),
    void *arg, struct db_err *err) DB_WUR;

/*
 * The inbox (schema 006): opaque messages waiting for a user.  A post
 * runs in a transaction: db_inbox_usage takes the inbox's lock, drops
 * what expired and sums what waits, the caller checks its quotas, then
 * db_inbox_put stores (DB_ERR_CONFLICT: that sender's msg_id is stored
 * already for this user).
 */
struct db_inbox_usage {
	int64_t user_bytes, user_count; /* waiting for the recipient */
	int64_t sender_bytes;		/* the sender has waiting, for all */
	int64_t total_bytes;
};
struct db_inbox_new {
	int64_t user_id; /* the recipient */
	const char *sender, *msg_id;
	const unsigned char *data;
	size_t len;
	long ttl; /* seconds */
};
struct db_inbox_msg {
	int64_t id;
	char sender[DB_USERID_MAX];
	char msg_id[129];
	int64_t size;
	time_t stored_at, expires_at;
};
int db_inbox_usage(struct db *db, int64_t user_id, const char *sender,
    struct db_inbox_usage *u, struct db_err *err) DB_WUR;
int db_inbox_put(struct db *db, const struct db_inbox_new *m,
    struct db_inbox_msg *out, struct db_err *err) DB_WUR;
/* What waits for user_id, oldest first, at most max; cb non-zero stops. */
int db_inbox_list(struct db *db, int64_t user_id, int max,
    int (*cb)(const struct db_inbox_msg *, void *), void *arg,
    struct db_err *err) DB_WUR;
/* How many messages wait for user_id, and the highest id among them. */
int db_inbox_state(struct db *db, int64_t user_id, int64_t *count,
    int64_t *newest, struct db_err *err) DB_WUR;
/* Message msg of user_id: *data new (free()); DB_ERR_NOTFOUND. */
int db_inbox_get(struct db *db, int64_t user_id, int64_t msg,
    unsigned char **data, size_t *len, struct db_err *err) DB_WUR;
/* Delete message msg of user_id, its size in *size; DB_ERR_NOTFOUND. */
int db_inbox_delete(struct db *db, int64_t user_id, int64_t msg,
    int64_t *size, struct db_err *err) DB_WUR;

/* Enrolment codes: stored as SHA-256 only. */
int db_code_add(struct db *db, int64_t user_id, const unsigned char hash[32],
    time_t expires_at, struct db_err *err) DB_WUR;
/*
 * Mark the unused, unexpired code with this hash as used and return its
 * user; DB_ERR_NOTFOUND for an unknown, used or expired code.
 */
int db_code_consume(struct db *db, const unsigned char hash[32],
    int64_t *user_id, struct db_err *err) DB_WUR;
/*
 * The user of the unused, unexpired code with this hash, leaving it
 * unused (a certificate recorded with it consumes it: db_cert_record);
 * DB_ERR_NOTFOUND for an unknown, used or expired code.
 */
int db_code_check(struct db *db, const unsigned char hash[32],
    int64_t *user_id, struct db_err *err) DB_WUR;

/*
 * A user's enrolment policy ("auto", "approve"; "" for the registry's
 * default), and setting it ("" for the default).
 */
int db_user_policy(struct db *db, int64_t user_id, char *policy,
    size_t len, struct db_err *err) DB_WUR;
int db_user_policy_set(struct db *db, const char *userid,
    const char *policy, struct db_err *err) DB_WUR;

/* Enrolment requests kept for an administrator's decision (schema 009). */
struct db_request_new {
	const unsigned char *token_hash; /* 32 bytes */
	int64_t user_id;
	const char *csr;
	const char *proof;  /* "code" or "password" */
	const char *source; /* IP address or NULL */
	int ttl;	    /* seconds it stays pending at most */
	/* the SHA-256 of the code it consumes, or NULL */
	const unsigned char *code_hash;
	const char *actor, *target; /* of its audit row, request.submit */
};
struct db_request {
	int64_t id;
	int64_t user_id;
	char userid[DB_USERID_MAX];
	char proof[16];
	char source[64];
	char status[16]; /* pending, approved, rejected, expired */
	time_t created_at, expires_at, decided_at; /* decided_at 0: not */
	char decided_by[256];
	char reason[257];
	char serial[DB_SERIAL_MAX]; /* of what an approval issued, or "" */
	char *csr;		    /* PEM, when read by one */
};
/*
 * Store q and its audit row in one statement; with q->code_hash only if
 * that code of q's user is still usable, and consumed with it
 * (DB_ERR_NOTFOUND otherwise).  *id: the new request.
 */
int db_request_add(struct db *db, const struct db_request_new *q,
    int64_t *id, struct db_err *err) DB_WUR;
/* How many requests of user_id wait for a decision. */
int db_request_pending(struct db *db, int64_t user_id, long *n,
    struct db_err *err) DB_WUR;
/* One request, with its CSR (db_request_clear); DB_ERR_NOTFOUND. */
int db_request_by_token(struct db *db, const unsigned char token_hash[32],
    struct db_request *q, struct db_err *err) DB_WUR;
int db_request_by_id(struct db *db, int64_t id, struct db_request *q,
    struct db_err *err) DB_WUR;
/*
 * The latest request for csr (PEM, as stored) by user_id, or with
 * code_hash the one that code was spent on (whoever's); no CSR in q.
 */
int db_request_by_csr(struct db *db, int64_t user_id, const char *csr,
    const unsigned char *code_hash, struct db_request *q,
    struct db_err *err) DB_WUR;
void db_request_clear(struct db_request *q);
/* The pending requests not expired (all: every one), oldest first. */
int db_request_list(struct db *db, int all,
    int (*cb)(const struct db_request *, void *), void *arg,
    struct db_err *err) DB_WUR;
/*
 * Decide request id (approve: with the certificate cert_id issued for
 * it), only if it is pending and not expired: DB_ERR_NOTFOUND otherwise.
 */
int db_request_decide(struct db *db, int64_t id, int approve,
    const char *decided_by, const char *reason, int64_t cert_id,
    struct db_err *err) DB_WUR;

/* An audit row as read for showing ("" for an empty field). */
struct db_audit_entry {
	int64_t id;
	time_t at;
	const char *actor, *action, *target, *serial, *source, *detail;
};
/* The latest limit audit rows, newest first (borrowed during cb). */
int db_audit_recent(struct db *db, int limit,
    int (*cb)(const struct db_audit_entry *, void *), void *arg,
    struct db_err *err) DB_WUR;

/*
 * Key escrow (schema 010).  The escrow officer's certificate in force
 * (*pem: free()) and its SHA-256 fingerprint; DB_ERR_NOTFOUND when
 * escrow is off.  Setting replaces it; clearing turns escrow off
 * (DB_ERR_NOTFOUND when it was).
 */
int db_escrow_officer(struct db *db, char **pem, char fp[DB_FP_MAX],
    struct db_err *err) DB_WUR;
int db_escrow_officer_set(struct db *db, const char *pem, const char *fp,
    const char *by, struct db_err *err) DB_WUR;
int db_escrow_officer_clear(struct db *db, struct db_err *err) DB_WUR;
/*
 * Deposit cms (encrypted to the officer officer_fp) for certificate
 * cert_id of user_id, replacing an earlier deposit; DB_ERR_NOTFOUND when
 * that officer is no longer the one in force.
 */
int db_escrow_put(struct db *db, int64_t cert_id, int64_t user_id,
    const char *officer_fp, const unsigned char *cms, size_t len,
    struct db_err *err) DB_WUR;
/* The deposit for a certificate (*cms: free()) and its user's id. */
int db_escrow_get(struct db *db, const char *issuer, const char *serial,
    unsigned char **cms, size_t *len, char userid[DB_USERID_MAX],
    struct db_err *err) DB_WUR;
/* fp: the officer a certificate's key is escrowed to, or "" for none. */
int db_escrow_has(struct db *db, int64_t cert_id, char fp[DB_FP_MAX],
    struct db_err *err) DB_WUR;

/* Certificates. */
/* A new certificate (all borrowed) and the audit row that records it. */
struct db_cert_new {
	const char *issuer;
	int64_t user_id;
	const char *serial;
	const char *fingerprint;
	const unsigned char *der;
	size_t der_len;
	time_t not_before, not_after;
	/*
	 * The SHA-256 of the enrolment code it was issued for, consumed in
	 * the same statement, or NULL.
	 */
	const unsigned char *code_hash;
};
struct db_audit_row {
	const char *actor, *action, *target;
	const char *source; /* IP address or NULL */
};
/*
 * Store c and append a (its serial is c's) in one statement: both or
 * neither, also outside a transaction.  *id (may be NULL): the new row.
 * With c->code_hash, DB_ERR_NOTFOUND and nothing written when that code
 * is no longer usable (used, expired, or not c's user's).
 */
int db_cert_record(struct db *db, const struct db_cert_new *c,
    const struct db_audit_row *a, int64_t *id, struct db_err *err) DB_WUR;
/* userid NULL: every certificate.  Ordered by issue time. */
int db_cert_list(struct db *db, const char *userid,
    int (*cb)(const struct db_cert *, void *), void *arg,
    struct db_err *err) DB_WUR;
int db_cert_get(struct db *db, const char *issuer, const char *serial,
    int (*cb)(const struct db_cert *, void *), void *arg,
    struct db_err *err) DB_WUR;
/*
 * Revoke a valid certificate and delete its addresses, in one transaction
 * (opened here unless one is open).  With reason keyCompromise, a
 * certificate revoked for another reason has its reason raised instead
 * (*raised = 1; the one change a revocation may see).  *user_id gets
 * the holder's users.id.  DB_ERR_NOTFOUND for an unknown serial,
 * DB_ERR_CONFLICT when it is already revoked.
 */
#define DB_REASON_KEY_COMPROMISE 1
int db_cert_revoke(struct db *db, const char *issuer, const char *serial,
    int reason, int *raised, int64_t *user_id, struct db_err *err) DB_WUR;
/*
 * Revoke every unexpired valid certificate of userid and delete their
 * addresses, in one statement; cb sees each serial revoked (none when
 * there was nothing to revoke, also for an unknown user).
 */
int db_cert_revoke_user(struct db *db, const char *issuer,
    const char *userid, int reason, int (*cb)(const char *serial, void *),
    void *arg, struct db_err *err) DB_WUR;
/*
 * What the CRL of issuer lists: every revoked certificate, and every
 * unexpired valid one of a disabled user (revoked 1, reason 6,
 * certificateHold, revoked_at when the user was disabled).
 */
int db_revoked_list(struct db *db, const char *issuer,
    int (*cb)(const struct db_cert *, void *), void *arg,
    struct db_err *err) DB_WUR;

/* CRL state: take the next CRL number (starting at 1). */
int db_crl_next_number(struct db *db, const char *issuer, long *number,
    struct db_err *err) DB_WUR;
int db_crl_store(struct db *db, const char *issuer, long number,
    time_t this_update, time_t next_update, const unsigned char *der,
    size_t der_len, struct db_err *err) DB_WUR;

/*
 * Append an audit row (actor, action, optional target, serial, source
 * address, detail).  Never pass a secret here.
 */
int db_audit(struct db *db, const char *actor, const char *action,
    const char *target, const char *serial, const char *source,
    const char *detail, struct db_err *err) DB_WUR;
/*
 * Each audit row in id order: id, its chain (0..DB_AUDIT_CHAINS-1, see
 * schema/003_audit_chains.sql), the hashed payload, prev_hash and hash.
 */
#define DB_AUDIT_CHAINS 8
int db_audit_rows(struct db *db,
    int (*cb)(int64_t id, int chain, const char *payload,
	const unsigned char *prev, const unsigned char *hash, void *arg),
    void *arg, struct db_err *err) DB_WUR;

/* What authentication needs about a presented certificate, in one query. */
struct db_auth {
	int64_t cert_id;
	int revoked;
	time_t not_after;
	struct db_user user;
};
int db_auth_cert(struct db *db, const char *issuer, const char *serial,
    struct db_auth *a, struct db_err *err) DB_WUR;

/*
 * The revocation status of one certificate as the CRL would give it:
 * revoked (with its time and reason), or on hold since its user was
 * disabled (reason certificateHold), or neither.  DB_ERR_NOTFOUND for a
 * serial that was never issued.
 */
#define DB_REASON_HOLD 6
struct db_ocsp {
	int64_t user_id;
	int revoked;
	time_t revoked_at;
	int reason;
	time_t not_after;
};
int db_ocsp_status(struct db *db, const char *issuer, const char *serial,
    struct db_ocsp *o, struct db_err *err) DB_WUR;

/* One address to store; ip is an IPv4 or IPv6 literal. */
struct db_addr {
	char ip[64];
	int port;
	int observed; /* 1: seen as the request's source, 0: declared */
};

/*
 * Replace every address of certificate cert_id with addrs, valid ttl
 * seconds, in one statement (what is given again only has its times
 * moved on).  *expires_at gets the expiry stored.
 */
int db_addr_replace(struct db *db, int64_t cert_id, int64_t user_id,
    const struct db_addr *addrs, size_t n, int ttl, time_t *expires_at,
    struct db_err *err) DB_WUR;
/* What db_addr_replace_many replaces for one device. */
#define DB_ADDR_SET_MAX 32
struct db_addr_set {
	int64_t cert_id;
	int64_t user_id;
	const struct db_addr *addrs; /* 0 to DB_ADDR_SET_MAX */
	size_t n;
	int ttl;
	time_t expires_at; /* out: the expiry stored */
};
/*
 * db_addr_replace for n devices in one statement, one transaction and one
 * commit (group commit): all of them are stored, or none.  No two sets
 * may name the same certificate.
 */
int db_addr_replace_many(struct db *db, struct db_addr_set *sets, size_t n,
    struct db_err *err) DB_WUR;
/* Delete the addresses of cert_id; *n gets how many went. */
int db_addr_delete(struct db *db, int64_t cert_id, long *n,
    struct db_err *err) DB_WUR;

/*
 * One row of a lookup: a current (valid, unexpired) certificate of the
 * user, and one of its unexpired addresses (has_addr 0 when it has none).
 */
struct db_lookup_row {
	char serial[DB_SERIAL_MAX];
	char fingerprint[DB_FP_MAX];
	const unsigned char *der; /* borrowed during the callback */
	size_t der_len;
	time_t not_after;
	int has_addr;
	char ip[64];
	int port;
	int observed;
	time_t updated_at;
	time_t expires_at;
};
int db_lookup(struct db *db, int64_t user_id,
    int (*cb)(const struct db_lookup_row *, void *), void *arg,
    struct db_err *err) DB_WUR;
/*
 * db_user_get and db_lookup of that user in one round trip: *u gets the
 * user (DB_ERR_NOTFOUND when there is none), then cb sees the rows
 * db_lookup would, in the same order; none for a disabled user.
 */
int db_user_lookup(struct db *db, const char *userid, struct db_user *u,
    int (*cb)(const struct db_lookup_row *, void *), void *arg,
    struct db_err *err) DB_WUR;

/* The PKCS#12 backup of a user. *data is new (free()). */
int db_backup_put(struct db *db, int64_t user_id, const unsigned char *data,
    size_t len, const unsigned char sha256[32], struct db_err *err) DB_WUR;
int db_backup_get(struct db *db, int64_t user_id, unsigned char **data,
    size_t *len, time_t *updated_at, struct db_err *err) DB_WUR;

/* The stored CRL of issuer; DB_ERR_NOTFOUND when none was built yet. */
int db_crl_get(struct db *db, const char *issuer, unsigned char **der,
    size_t *len, time_t *next_update, struct db_err *err) DB_WUR;

/* Users with at least one unexpired address (a metric). */
int db_online_users(struct db *db, long *n, struct db_err *err) DB_WUR;

#endif

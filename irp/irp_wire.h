/*
 * irp_wire.h - the bodies of the Identity Registry Protocol: one C struct
 * per request and reply, a build function (struct -> JSON) and a parse
 * function (JSON -> struct) for each, and the limits both sides check.
 *
 * dird builds its replies and reads its requests with these, the client
 * (irp_client.c) builds its requests and reads the replies with the same
 * functions, so the two can not drift apart.  docs/irp.md lists the
 * shapes; the field names and types here are that document's.
 *
 * Ownership.  A build function borrows its struct and returns a new
 * reference (json_decref()), or NULL when out of memory or when a string
 * is not UTF-8.  A parse function borrows the JSON; it fills a request
 * struct with strings borrowed from that JSON (valid while the caller
 * holds it) and a reply struct with copies (fixed buffers, and lists
 * that the struct's _clear() frees).
 *
 * Errors.  A parse function returns 0, or -1 with err filled: for a
 * request status 400 and the code and sentence dird answers with
 * ("unknown_field", "missing_field", "wrong_type", "too_long", ...); for a
 * reply status 200, code "bad_response" and a sentence naming the field,
 * or status 0 and code "memory".  On -1 a reply struct holds nothing to
 * free.  A string that does not fit its limit is refused, never cut.
 * Lists of a reply longer than their IRP_*_MAX are cut there (the
 * registry sends the newest first); lists of a request are refused.
 *
 * Thread safety: no state; every function may run in any thread.
 */
#ifndef IRP_WIRE_H
#define IRP_WIRE_H

#include <stddef.h>

#include <jansson.h>

#include "irp.h"

#define IRP_WUR __attribute__((warn_unused_result))

#define IRP_FP_MAX 65	/* SHA-256 as 64 hex digits + NUL */
#define IRP_IP_MAX 46	/* INET6_ADDRSTRLEN */
#define IRP_TIME_MAX 40 /* an RFC 3339 string as the registry sent it */
/* Declared addresses plus the one the registry observed. */
#define IRP_DEV_ADDR_MAX (IRP_ADDR_MAX + 2)
#define IRP_DEVICES_MAX 32
#define IRP_CERTS_MAX 64
/* Users listed by GET /v1/admin/users that a parser keeps. */
#define IRP_USERS_MAX 100000
/* Serials a user revocation names that a parser keeps. */
#define IRP_REVOKED_MAX 4096

/* A CSR in PEM, as /v1/enroll and /v1/renew take it. */
#define IRP_CSR_MAX 16384
/*
 * The wire's bound on the strings of the admin calls (user id, name,
 * e-mail, password, passphrase): generous, so that the registry's own
 * rules (IRP_NAME_MAX, IRP_EMAIL_MAX, ...) answer with their sentence.
 */
#define IRP_FIELD_MAX 1024
#define IRP_ROLE_MAX 16	  /* "user" or "admin" */
#define IRP_REASON_MAX 64 /* a revocation reason's name */
#define IRP_PASSPHRASE_MIN 8
#define IRP_CODE_MAX 64 /* an enrolment code, with its NUL */
#define IRP_WORD_MAX 32 /* status, role and reason words, with the NUL */

/* The words the protocol uses for roles and certificate states. */
#define IRP_ROLE_USER "user"
#define IRP_ROLE_ADMIN "admin"
#define IRP_CERT_VALID "valid"
#define IRP_CERT_REVOKED "revoked"
#define IRP_CERT_EXPIRED "expired"
#define IRP_ADDR_DECLARED "declared"
#define IRP_ADDR_OBSERVED "observed"

struct irp_err {
	int status;    /* HTTP status, 0 when no answer came */
	char code[40]; /* the registry's error code, or "transport", ... */
	char msg[256]; /* a sentence a person can act on */
};

/*
 * Copy src into dst (len bytes); 0, or -1 when it does not fit (dst
 * then holds "").  For filling the fixed buffers of a reply struct.
 */
int irp_copy(char *dst, size_t len, const char *src) IRP_WUR;

/* ---- the error object ------------------------------------------------ */

/* {"error":{"code":code,"message":msg}}; msg must be UTF-8. */
json_t *irp_error_build(const char *code, const char *msg);
/*
 * An answer with an unexpected HTTP status: fill err with the registry's
 * error object when root (may be NULL) holds one, else with the status
 * alone.  The registry's text is made fit to print (no control
 * characters, whole UTF-8 characters).
 */
void irp_error_parse(json_t *root, long status, struct irp_err *err);

/* ---- POST /v1/enroll, POST /v1/renew --------------------------------- */

/* {"csr": PEM}, at most IRP_CSR_MAX bytes. */
struct irp_csr_req {
	const char *csr;
};
json_t *irp_csr_req_build(const struct irp_csr_req *r);
int irp_csr_req_parse(json_t *body, struct irp_csr_req *out,
    struct irp_err *err) IRP_WUR;

/*
 * The 201 answer: {"userid","certificate","chain","serial","fingerprint",
 * "not_after"}.  certificate, chain and serial are required.  Parsed, the
 * PEMs are new (irp_cert_clear()); to build, they are only read.
 */
struct irp_cert {
	char userid[IRP_USERID_MAX + 1];
	char *cert_pem;	 /* the new certificate, NUL-terminated */
	char *chain_pem; /* the CA certificate */
	char serial[IRP_SERIAL_MAX + 1];
	char fingerprint[IRP_FP_MAX];
	char not_after[IRP_TIME_MAX];
};
json_t *irp_cert_build(const struct irp_cert *c);
int irp_cert_parse(json_t *root, struct irp_cert *out,
    struct irp_err *err) IRP_WUR;
void irp_cert_clear(struct irp_cert *cert);

/* ---- addresses, devices, lookups ------------------------------------- */

/*
 * One address as the registry answers it.  updated_at and expires_at
 * are left out of the JSON when "" (the answer to PUT /v1/me/addresses
 * has neither).
 */
struct irp_address {
	char ip[IRP_IP_MAX];
	int port;
	char kind[16];		       /* "declared" or "observed" */
	char updated_at[IRP_TIME_MAX]; /* "" when not sent */
	char expires_at[IRP_TIME_MAX];
};
json_t *irp_address_build(const struct irp_address *a);

/* One address to register. */
struct irp_addr_req {
	char ip[IRP_IP_MAX];
	int port;
};

/*
 * PUT /v1/me/addresses: {"addresses":[{"ip","port"}] (1 to IRP_ADDR_MAX),
 * "ttl"?}.  Parsed, every ip is checked and written in canonical form
 * (irp_ip_normalize) and every port is in 1-65535; has_ttl says whether
 * a "ttl" (an integer, any value: the registry judges it) was given.
 */
struct irp_addresses_req {
	size_t naddr;
	struct irp_addr_req addr[IRP_ADDR_MAX];
	int has_ttl;
	long long ttl;
};
json_t *irp_addresses_req_build(const struct irp_addresses_req *r);
int irp_addresses_req_parse(json_t *body, struct irp_addresses_req *out,
    struct irp_err *err) IRP_WUR;

/* Its answer: {"addresses":[{"ip","port","kind"}],"ttl","expires_at"}. */
struct irp_addresses_reply {
	size_t naddr;
	struct irp_address addr[IRP_DEV_ADDR_MAX];
	int ttl; /* the TTL the registry applied */
	char expires_at[IRP_TIME_MAX];
};
json_t *irp_addresses_reply_build(const struct irp_addresses_reply *r);
int irp_addresses_reply_parse(json_t *root, struct irp_addresses_reply *out,
    struct irp_err *err) IRP_WUR;

/* DELETE /v1/me/addresses answers {"deleted":N}. */
struct irp_deleted {
	long long deleted;
};
json_t *irp_deleted_build(const struct irp_deleted *d);
int irp_deleted_parse(json_t *root, struct irp_deleted *out,
    struct irp_err *err) IRP_WUR;

/*
 * An IP literal as people write them: IPv4 dotted quad or IPv6, no zone,
 * no prefix, at most 63 bytes.  Written to out in canonical form (an
 * IPv4-mapped IPv6 address as IPv4).  0, or -1 when s is none.
 */
int irp_ip_normalize(const char *s, char *out, size_t len) IRP_WUR;

/*
 * A device of a lookup: {"serial","fingerprint","certificate",
 * "not_after","addresses":[...]}.  cert_pem is owned by the irp_user.
 */
struct irp_device {
	char serial[IRP_SERIAL_MAX + 1];
	char fingerprint[IRP_FP_MAX];
	char not_after[IRP_TIME_MAX];
	char *cert_pem;
	size_t naddr;
	struct irp_address addr[IRP_DEV_ADDR_MAX];
};

/*
 * GET /v1/users/{userid}: {"userid","name","email" (null when none),
 * "online","devices":[...]} and, for another domain's user, "registry".
 * email is "" when there is none.
 */
struct irp_user {
	char userid[IRP_USERID_MAX + 1];
	char name[IRP_NAME_MAX + 1];
	char email[IRP_EMAIL_MAX + 1];
	int online;
	size_t ndev;
	struct irp_device *dev;
	struct irp_vouch *via; /* NULL: a user of the answering registry */
};

/*
 * A user of another domain, looked up by one's own registry on one's
 * behalf (federation): "registry":{"domain","trust","ca_sha256","ca"}.
 * The other domain's registry CA as one's own registry accepted it, and
 * by which rule: "pinned" (its administrator named the CA's SHA-256) or
 * "dane" (the other domain publishes it in DNSSEC-signed TLSA records).
 * The devices' certificates chain to ca_pem.
 */
#define IRP_DOMAIN_MAX 253
#define IRP_TRUST_PINNED "pinned"
#define IRP_TRUST_DANE "dane"
struct irp_vouch {
	char domain[IRP_DOMAIN_MAX + 1];
	char trust[IRP_WORD_MAX];
	char ca_sha256[IRP_FP_MAX];
	char *ca_pem;
	/* When the vouching registry last heard the other one ("" unsaid). */
	char checked_at[IRP_TIME_MAX];
	/* The other registry could not be asked: an earlier answer of it. */
	int stale;
};
json_t *irp_user_build(const struct irp_user *u);
/* *out is new (irp_user_free()), or NULL on -1. */
int irp_user_parse(json_t *root, struct irp_user **out,
    struct irp_err *err) IRP_WUR;
/*
 * Append a copy of d to u->dev; its cert_pem is taken (owned by u from
 * then on, also on -1).  0, or -1 when out of memory.
 */
int irp_user_add_device(struct irp_user *u, struct irp_device *d) IRP_WUR;
/*
 * Set u->via to a copy of v (its ca_pem duplicated).  0, or -1 when out
 * of memory.
 */
int irp_user_set_via(struct irp_user *u, const struct irp_vouch *v) IRP_WUR;
/* Free the devices and via of u and set ndev to 0; u itself stays. */
void irp_user_clear(struct irp_user *u);
/* irp_user_clear() and free(u). */
void irp_user_free(struct irp_user *u);

/* ---- GET /v1/me ------------------------------------------------------ */

struct irp_cert_status {
	char serial[IRP_SERIAL_MAX + 1];
	char fingerprint[IRP_FP_MAX];
	char not_before[IRP_TIME_MAX];
	char not_after[IRP_TIME_MAX];
	char status[16]; /* "valid", "revoked", "expired" */
};

/*
 * {"userid","name","email" (null when none),"role","serial",
 * "certificates":[{"serial","fingerprint","not_before","not_after",
 * "status"}],"addresses":[the asking certificate's]}.  The lists are
 * owned: irp_me_clear().
 */
struct irp_me {
	char userid[IRP_USERID_MAX + 1];
	char name[IRP_NAME_MAX + 1];
	char email[IRP_EMAIL_MAX + 1];
	char role[IRP_WORD_MAX];
	char serial[IRP_SERIAL_MAX + 1]; /* the certificate that asked */
	size_t ncert;
	struct irp_cert_status *cert;
	size_t naddr;
	struct irp_address *addr;
};
json_t *irp_me_build(const struct irp_me *me);
int irp_me_parse(json_t *root, struct irp_me *out, struct irp_err *err) IRP_WUR;
/* Append a copy; 0, or -1 when out of memory. */
int irp_me_add_cert(struct irp_me *me, const struct irp_cert_status *c) IRP_WUR;
int irp_me_add_address(struct irp_me *me, const struct irp_address *a) IRP_WUR;
void irp_me_clear(struct irp_me *me);

/* ---- PUT /v1/me/backup ----------------------------------------------- */

/* Its answer: {"sha256","size","updated_at"}. */
struct irp_backup_stored {
	char sha256[IRP_FP_MAX];
	long long size;
	char updated_at[IRP_TIME_MAX];
};
json_t *irp_backup_stored_build(const struct irp_backup_stored *b);
int irp_backup_stored_parse(json_t *root, struct irp_backup_stored *out,
    struct irp_err *err) IRP_WUR;

/* ---- the inbox ------------------------------------------------------- */

/*
 * What waits for a user who was away: POST /v1/users/{userid}/inbox
 * (an S/MIME message, the sender's id of it in IRP-Message-Id) answers
 * one item; GET /v1/me/inbox lists them ({"messages":[...]}), at most
 * IRP_INBOX_MAX.
 */
#define IRP_MSGID_MAX 129 /* 1-128 of [A-Za-z0-9._@<>+-], and the NUL */
#define IRP_INBOX_MAX 1000
struct irp_inbox_item {
	long long id;
	char sender[IRP_USERID_MAX + 1];
	char msg_id[IRP_MSGID_MAX];
	long long size;
	char stored_at[IRP_TIME_MAX];
	char expires_at[IRP_TIME_MAX];
};
json_t *irp_inbox_item_build(const struct irp_inbox_item *m);
int irp_inbox_item_parse(json_t *root, struct irp_inbox_item *out,
    struct irp_err *err) IRP_WUR;
struct irp_inbox {
	size_t n;
	struct irp_inbox_item *msg;
};
json_t *irp_inbox_build(const struct irp_inbox *l);
int irp_inbox_parse(json_t *root, struct irp_inbox *out,
    struct irp_err *err) IRP_WUR;
int irp_inbox_add(struct irp_inbox *l, const struct irp_inbox_item *m) IRP_WUR;
void irp_inbox_clear(struct irp_inbox *l);
/* 1 when s is a message id as the inbox takes it. */
int irp_msgid_ok(const char *s);

/* ---- events ---------------------------------------------------------- */

/*
 * GET /v1/me/events[?after=CURSOR[&wait=SECONDS]]: what happened for the
 * asking user since CURSOR, the opaque token of an earlier answer; at
 * once when something did (or without CURSOR), else after up to SECONDS
 * of nothing: {"cursor":"...","events":[{"type":"mail","waiting":N}]}.
 * A reader skips events of a type it does not know: later registries may
 * send more kinds on the same channel.
 */
#define IRP_CURSOR_MAX 64
#define IRP_EVENTS_MAX 16
#define IRP_WAIT_MAX 3600
struct irp_events {
	char cursor[IRP_CURSOR_MAX];
	long long mail_waiting; /* > 0: a "mail" event, that many wait */
};
/* 1 when s is a cursor: 1-63 of [A-Za-z0-9._-], safe in a URL as is. */
int irp_cursor_ok(const char *s);
json_t *irp_events_build(const struct irp_events *ev);
int irp_events_parse(json_t *root, struct irp_events *out,
    struct irp_err *err) IRP_WUR;

/* ---- revocation ------------------------------------------------------ */

/* {"reason"?}: the name of a CRL reason, NULL when not given. */
struct irp_revoke_req {
	const char *reason;
};
json_t *irp_revoke_req_build(const struct irp_revoke_req *r);
int irp_revoke_req_parse(json_t *body, struct irp_revoke_req *out,
    struct irp_err *err) IRP_WUR;

/* A certificate's revocation answers {"serial","status","reason"}. */
struct irp_revoked {
	char serial[IRP_SERIAL_MAX + 1];
	char status[IRP_WORD_MAX]; /* "revoked" */
	char reason[IRP_WORD_MAX];
};
json_t *irp_revoked_build(const struct irp_revoked *r);
int irp_revoked_parse(json_t *root, struct irp_revoked *out,
    struct irp_err *err) IRP_WUR;

/*
 * An enrolment kept for an administrator's approval (202), and its poll
 * while it waits: {"status":"pending","request":TOKEN,"expires_at":T}.
 * The client asks again at GET /v1/requests/TOKEN.
 */
struct irp_pending {
	char status[IRP_WORD_MAX]; /* "pending" */
	char request[IRP_TOKEN_LEN + 1];
	char expires_at[IRP_TIME_MAX];
};
json_t *irp_pending_build(const struct irp_pending *p);
int irp_pending_parse(json_t *root, struct irp_pending *out,
    struct irp_err *err) IRP_WUR;
/*
 * An enrolment request as an administrator sees it (GET
 * /v1/admin/requests: {"requests":[...]}, and the answer to a
 * decision).  Empty strings are left out.
 */
struct irp_request {
	long long id;
	char userid[IRP_USERID_MAX + 1];
	char proof[IRP_WORD_MAX];  /* code or password */
	char source[64];	   /* the requester's address */
	char status[IRP_WORD_MAX]; /* pending, approved, rejected, expired */
	char created_at[IRP_TIME_MAX];
	char expires_at[IRP_TIME_MAX];
	char decided_at[IRP_TIME_MAX];
	char decided_by[256];
	char reason[257];
	char serial[IRP_SERIAL_MAX + 1]; /* what an approval issued */
};
json_t *irp_request_build(const struct irp_request *q);

/* A user's revocation: {"userid","revoked":[serial...],"reason"}. */
struct irp_user_revoked {
	char userid[IRP_USERID_MAX + 1];
	size_t nserial;
	char (*serial)[IRP_SERIAL_MAX + 1]; /* owned: irp_user_revoked_clear */
	char reason[IRP_WORD_MAX];
};
json_t *irp_user_revoked_build(const struct irp_user_revoked *r);
int irp_user_revoked_parse(json_t *root, struct irp_user_revoked *out,
    struct irp_err *err) IRP_WUR;
/* Append a serial; 0, or -1 when it is too long or out of memory. */
int irp_user_revoked_add(struct irp_user_revoked *r,
    const char *serial) IRP_WUR;
void irp_user_revoked_clear(struct irp_user_revoked *r);

/* ---- the admin calls ------------------------------------------------- */

/*
 * POST /v1/admin/users: {"userid","name","email"?,"role"?,"password"?},
 * strings of at most IRP_FIELD_MAX bytes (role IRP_ROLE_MAX), role
 * "user" or "admin".  NULL for what is not given.
 */
struct irp_user_add_req {
	const char *userid;
	const char *name;
	const char *email;
	const char *role;
	const char *password;
};
json_t *irp_user_add_req_build(const struct irp_user_add_req *r);
int irp_user_add_req_parse(json_t *body, struct irp_user_add_req *out,
    struct irp_err *err) IRP_WUR;

/*
 * A user as the admin calls answer it: GET /v1/admin/users lists
 * {"userid","name","email","role","enabled","created_at"}; the 201 of
 * POST /v1/admin/users is {"userid","name","email","role"}
 * (irp_user_added_*).  email is "" (null on the wire) when there is none.
 */
struct irp_user_info {
	char userid[IRP_USERID_MAX + 1];
	char name[IRP_NAME_MAX + 1];
	char email[IRP_EMAIL_MAX + 1];
	char role[IRP_WORD_MAX];
	int enabled;
	char created_at[IRP_TIME_MAX];
};
json_t *irp_user_added_build(const struct irp_user_info *u);
int irp_user_added_parse(json_t *root, struct irp_user_info *out,
    struct irp_err *err) IRP_WUR;

/* {"users":[...]}; the list is owned: irp_user_list_clear(). */
struct irp_user_list {
	size_t n;
	struct irp_user_info *user;
};
json_t *irp_user_list_build(const struct irp_user_list *l);
int irp_user_list_parse(json_t *root, struct irp_user_list *out,
    struct irp_err *err) IRP_WUR;
int irp_user_list_add(struct irp_user_list *l,
    const struct irp_user_info *u) IRP_WUR;
void irp_user_list_clear(struct irp_user_list *l);

/* .../disable and .../enable answer {"userid","enabled"}. */
struct irp_user_enabled {
	char userid[IRP_USERID_MAX + 1];
	int enabled;
};
json_t *irp_user_enabled_build(const struct irp_user_enabled *e);
int irp_user_enabled_parse(json_t *root, struct irp_user_enabled *out,
    struct irp_err *err) IRP_WUR;

/* POST .../codes: {"ttl"?}, an integer of seconds (has_ttl: given). */
struct irp_code_req {
	int has_ttl;
	long long ttl;
};
json_t *irp_code_req_build(const struct irp_code_req *r);
int irp_code_req_parse(json_t *body, struct irp_code_req *out,
    struct irp_err *err) IRP_WUR;

/*
 * Its 201: {"userid","code","expires_at"}.  The code is a secret: whoever
 * fills or parses this struct wipes it (OPENSSL_cleanse) when done.
 */
struct irp_code {
	char userid[IRP_USERID_MAX + 1];
	char code[IRP_CODE_MAX];
	char expires_at[IRP_TIME_MAX];
};
json_t *irp_code_build(const struct irp_code *c);
int irp_code_parse(json_t *root, struct irp_code *out,
    struct irp_err *err) IRP_WUR;

/* POST .../p12: {"passphrase"}, IRP_PASSPHRASE_MIN to IRP_FIELD_MAX. */
struct irp_p12_req {
	const char *passphrase;
};
json_t *irp_p12_req_build(const struct irp_p12_req *r);
int irp_p12_req_parse(json_t *body, struct irp_p12_req *out,
    struct irp_err *err) IRP_WUR;

/* ---- GET /healthz ---------------------------------------------------- */

/* {"status":"ok"}. */
struct irp_health {
	char status[IRP_WORD_MAX];
};
json_t *irp_health_build(const struct irp_health *h);
int irp_health_parse(json_t *root, struct irp_health *out,
    struct irp_err *err) IRP_WUR;

#endif

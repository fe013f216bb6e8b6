/*
 * reg.h - the registry's environment and the operations that combine the
 * CA with the store, shared by dird and dirctl.
 *
 * struct reg is the one environment struct of a process: the data
 * directory, its configuration, the CA, the database location (the
 * embedded cluster or a DSN), the answer cache and, in dird, the
 * services its requests use.  Operations take a struct db of the calling
 * thread and report a struct reg_err that maps straight onto the IRP
 * error object (HTTP status, snake_case code, human sentence).
 */
#ifndef REG_H
#define REG_H

#include <limits.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "ca.h"
#include "ca_signer.h"
#include "irp.h"
#include "conf.h"
#include "commit.h"
#include "db.h"
#include "pgembed.h"

#define REG_WUR __attribute__((warn_unused_result))

/* Files in the data directory. */
#define REG_CA_KEY "ca.key"
#define REG_CA_CERT "ca.pem"
#define REG_SERVER_KEY "server.key"
#define REG_SERVER_CERT "server.pem"
#define REG_CONF "dird.conf"

#define REG_CODE_LEN 24 /* enrolment code characters */

struct reg_err {
	int status;	/* HTTP status */
	char code[40];	/* snake_case error code */
	char msg[256];	/* a sentence a person can act on */
	int retry_after; /* a 429's: seconds until trying again helps */
};

struct reg_live; /* a configuration taken on SIGHUP (reg.c) */
struct cache;	 /* cache.h */
struct metrics;	 /* metrics.h, dird's */
struct auth;	 /* auth.h, dird's */
struct fed;	 /* fed.h, dird's */
struct push;	 /* push.h, dird's */
struct commit;	 /* commit.h, dird's */

struct reg {
	char datadir[PATH_MAX];
	/*
	 * The configuration as started.  What requests read goes through
	 * reg_conf(), which a reload replaces as a whole.
	 */
	struct conf conf;
	_Atomic(struct reg_live *) live; /* NULL: conf */
	struct ca *ca;
	struct pgembed *pg; /* NULL when a DSN is used */
	char conninfo[PATH_MAX + 64];
	/*
	 * The answer cache, owned here: made by reg_cache_start, freed by
	 * reg_close; NULL when answers are not cached (dirctl, cache = off).
	 * quiet: this process is the only cache on its database, so its
	 * connections do not announce their writes (see reg_cache_start).
	 */
	struct cache *cache;
	int quiet;
	/*
	 * What dird's requests use besides (made and freed by its main(),
	 * around reg_open and reg_close; NULL in dirctl).
	 */
	struct metrics *metrics;
	struct auth *auth;
	struct fed *fed; /* fed.h: other domains' registries */
	struct push *push; /* push.h: requests that wait for events */
	struct commit *commit; /* commit.h: NULL, each write commits alone */
};

/* Build DATA/name into buf. */
void reg_path(const struct reg *r, const char *name, char *buf, size_t len);

/*
 * The absolute path of the data directory datadir into out, or -1 with
 * a sentence that says how to make one.
 */
int reg_datadir(const char *datadir, char out[PATH_MAX], char *errbuf,
    size_t errlen) REG_WUR;

/*
 * Open an existing data directory: read dird.conf, load the CA, start the
 * embedded cluster unless a DSN is configured (dsn overrides the file when
 * not NULL), and apply pending migrations from the schema directory.
 * The CA signs through signer (taken over, also on failure; dird's
 * signer process, signer.h); with NULL its key is read into this
 * process (dirctl).
 */
int reg_open(struct reg *r, const char *datadir, const char *dsn,
    struct ca_signer *signer, char *errbuf, size_t errlen) REG_WUR;
/*
 * Stop the cache's listener, stop the embedded cluster if we started it,
 * free the CA.  metrics and auth are the caller's.
 */
void reg_close(struct reg *r);

/*
 * dird's answer cache as the configuration's cache setting says (after
 * every override of it is in r->conf), with the listener that hears
 * other writers' changes (cache.h).  Sets r->cache and r->quiet.  0, or
 * -1 with a sentence.
 */
int reg_cache_start(struct reg *r, char *errbuf, size_t errlen) REG_WUR;

/*
 * The configuration in force, for code that runs per request: one
 * reload's values, never half of two (read it once per use).
 */
const struct conf *reg_conf(const struct reg *r);
/*
 * Put in force the keys of fresh that may change while running (conf.c's
 * live keys); fixed(key, arg) hears of every other key that differs (it
 * changes only at a restart).  Returns how many keys changed.  Earlier
 * configurations stay readable until reg_close(): a request may still
 * hold one.
 */
int reg_reload(struct reg *r, const struct conf *fresh,
    void (*fixed)(const char *key, void *arg), void *arg) REG_WUR;

/*
 * A new connection for the calling thread, set up as the environment
 * says (quiet when this process is the only cache on its database).
 */
struct db *reg_db(struct reg *r, struct db_err *err) REG_WUR;

/* Where the migrations are: $DIR_SCHEMA_DIR, installed, or the source. */
const char *reg_schema_dir(void);

/* Map a store error onto an IRP error. */
void reg_err_from_db(struct reg_err *e, const struct db_err *de);
void reg_seterr(struct reg_err *e, int status, const char *code,
    const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* How an actor proved who it is. */
enum reg_proof {
	REG_BY_NONE = 0,
	REG_BY_HOST,	 /* the operator, at the registry's host (dirctl) */
	REG_BY_CERT,	 /* a client certificate of this registry */
	REG_BY_CODE,	 /* a one-time enrolment code */
	REG_BY_PASSWORD, /* the user's password */
	REG_BY_REGISTRY, /* another domain's registry, for one of its users */
};

/*
 * Who asks for a change.  The rules of who may do what, and the audit
 * row's actor and source, come from here and nowhere else.
 */
struct reg_actor {
	const char *name;	/* audit actor: a user id, or "dirctl:USER" */
	const char *source;	/* the client's address; NULL: the host */
	const char *userid;	/* the user acting; NULL: the operator */
	int admin;		/* may act on every user's data */
	enum reg_proof by;
	int64_t user_id;	/* users.id of userid; 0: none */
	int64_t cert_id;	/* REG_BY_CERT: the certificate presented */
	const char *serial;	/* REG_BY_CERT: its serial; else NULL */
	const char *registry;	/* REG_BY_REGISTRY: that registry's domain */
};

/*
 * Check a CSR, issue a certificate for userid (it must exist and be
 * enabled), record it with its audit row, in one statement.  Who may:
 * an administrator for anyone ("cert.issue"); a user for themselves,
 * proved by an enrolment code ("enroll.code"), their password
 * ("enroll.password") or their certificate ("renew"); anyone else is
 * refused (403).  A transaction the caller opened (to consume the code
 * in it) is committed here, or rolled back on failure.
 */
int reg_issue(struct reg *r, struct db *db, const char *userid,
    const char *csr, size_t csr_len, const struct reg_actor *who,
    struct ca_issued *out, struct reg_err *e) REG_WUR;

/*
 * A certificate issued in steps around its record, so that the record
 * can be committed with others' (commit.h), as for addresses: a renewal
 * (the caller presents its certificate) or an enrolment by password or
 * by code (code_hash, consumed with the record; NULL otherwise).
 * reg_issue_begin checks the CSR and the actor as reg_issue does (for
 * a user record the caller read already: the request's own), issues,
 * and fills is->job with the certificate's record and audit row;
 * reg_write writes a job (on db at once, or with db NULL through
 * the group committer, which calls job->done when it is committed);
 * reg_issue_end then says how it went (401 invalid_code when the code
 * was consumed meanwhile).  is->is is the certificate, is->target its
 * user's userid.  reg_issuing_free frees one made with malloc and its
 * certificate.
 */
struct reg_issuing {
	struct commit_job job;
	struct ca_issued is;
	int64_t user_id;
	int has_code;
	unsigned char code_hash[32];
	char actor[256], target[256], source[64];
};
int reg_issue_begin(struct reg *r, const struct db_user *u, const char *csr,
    size_t csr_len, const struct reg_actor *who,
    const unsigned char *code_hash, struct reg_issuing *is,
    struct reg_err *e) REG_WUR;
int reg_issue_end(struct reg *r, const struct reg_issuing *is,
    struct reg_err *e) REG_WUR;
void reg_issuing_free(void *is);

/*
 * Centralized model: generate a key and certificate for userid and
 * return them as a PKCS#12 protected by passphrase (*p12 is new,
 * free()), audited as "cert.issue_p12".  An administrator's action (403
 * otherwise): the registry holds the key for a moment.
 */
int reg_issue_p12(struct reg *r, struct db *db, const char *userid,
    const char *passphrase, const struct reg_actor *who, unsigned char **p12,
    size_t *p12_len, struct ca_issued *out, struct reg_err *e) REG_WUR;


/* A new user, as an administrator describes them. */
struct reg_user_new {
	const char *userid;
	const char *name;
	const char *email;	/* NULL: none */
	const char *password;	/* NULL: none, enrolment by code only */
	int admin;
};

/*
 * Add a user: the one place the rules for a new user live (a valid user
 * id, a name of 1 to IRP_NAME_MAX bytes without control characters or
 * direction overrides, an e-mail address of the stored shape, a password
 * of REG_PASSWORD_MIN characters), audited as "user.add" in the same
 * transaction.  userid gets the id as stored.  400 invalid_userid,
 * too_long, invalid_value or weak_password; 409 conflict.
 */
int reg_user_add(struct reg *r, struct db *db, const struct reg_user_new *nu,
    const struct reg_actor *who, char userid[IRP_USERID_MAX + 1],
    struct reg_err *e) REG_WUR;
/* The checks of reg_user_add alone, without the database: 0 or -1. */
int reg_user_check(const struct reg_user_new *nu,
    char userid[IRP_USERID_MAX + 1], struct reg_err *e) REG_WUR;
/*
 * Enable or disable userid, audit it as "user.enable" or "user.disable",
 * and build the CRL that lists (or no longer lists) the user's
 * certificates as certificateHold, in one transaction.
 */
int reg_user_set_enabled(struct reg *r, struct db *db, const char *userid,
    int enabled, const struct reg_actor *who, struct reg_err *e) REG_WUR;
/*
 * Federation (an administrator's action): accept domain's CA by rule
 * ("pinned" with ca_sha256, 64 hex digits, ':' allowed; "dane"; or
 * "refused"), replacing any rule it had ("federation.set"), or remove
 * its rule ("federation.remove"; 404 when it had none).  The registry's
 * own domain takes no rule (400).
 */
int reg_fed_set(struct reg *r, struct db *db, const char *domain,
    const char *rule, const char *ca_sha256, const struct reg_actor *who,
    struct reg_err *e) REG_WUR;
int reg_fed_remove(struct reg *r, struct db *db, const char *domain,
    const struct reg_actor *who, struct reg_err *e) REG_WUR;
/* Set userid's password ("user.passwd"); the rules of reg_user_add. */
int reg_user_passwd(struct reg *r, struct db *db, const char *userid,
    const char *password, const struct reg_actor *who, struct reg_err *e)
    REG_WUR;

/*
 * 1 if a certificate may be revoked for RFC 5280 reason code `reason`
 * by its holder (by_admin 0) or by an administrator (by_admin 1).
 */
int reg_reason_allowed(int reason, int by_admin);
/*
 * Key escrow, off until an administrator sets the escrow officer's
 * certificate (reg_escrow_on; audited escrow.on with its fingerprint,
 * which fp gets; one that nothing can be encrypted to is a 400) and off
 * again with reg_escrow_off (escrow.off).  reg_escrow_officer gives the
 * certificate in force (*pem: free()), 404 escrow_off when there is
 * none.  reg_escrow_deposit keeps cms, a device's key encrypted to the
 * officer officer_fp (an S/MIME message the registry can not open;
 * anything not encrypted is a 400), for the certificate who presents
 * (audited key.escrow; 409 escrow_changed when that officer is no
 * longer in force).  reg_escrow_export gives an administrator the
 * deposit for a certificate (*cms: free()), audited escrow.export.
 * reg_issue_p12 escrows the keys it makes by itself.
 */
#define REG_ESCROW_MAX 65536
int reg_escrow_on(struct reg *r, struct db *db, const char *cert_pem,
    const struct reg_actor *who, char fp[DB_FP_MAX],
    struct reg_err *e) REG_WUR;
int reg_escrow_off(struct reg *r, struct db *db, const struct reg_actor *who,
    struct reg_err *e) REG_WUR;
int reg_escrow_officer(struct reg *r, struct db *db, char **pem,
    char fp[DB_FP_MAX], struct reg_err *e) REG_WUR;
int reg_escrow_deposit(struct reg *r, struct db *db,
    const struct reg_actor *who, const char *officer_fp,
    const unsigned char *cms, size_t len, struct reg_err *e) REG_WUR;
int reg_escrow_export(struct reg *r, struct db *db, const char *serial,
    const struct reg_actor *who, unsigned char **cms, size_t *len,
    struct reg_err *e) REG_WUR;

/*
 * Enrolment policy.  *approve: whether an enrolment of u by code or
 * password is kept for an administrator's decision (its own policy, or
 * the registry's enrol_policy).  reg_user_policy sets a user's: "auto",
 * "approve", or "default" (none of its own); an administrator's action,
 * audited "user.policy".
 */
int reg_enrol_approve(struct reg *r, struct db *db, const struct db_user *u,
    int *approve, struct reg_err *e) REG_WUR;
int reg_user_policy(struct reg *r, struct db *db, const char *userid,
    const char *policy, const struct reg_actor *who,
    struct reg_err *e) REG_WUR;
/*
 * Keep an enrolment of u (who: u, by code or password) as a pending
 * request: the CSR is checked now, the code (code_hash, or NULL) is
 * consumed with it, audited "request.submit".  token gets the secret
 * the client polls with (only its hash is stored), *expires when the
 * request lapses undecided.  429 when the user has
 * REG_REQUESTS_PENDING_MAX waiting already.
 */
#define REG_REQUESTS_PENDING_MAX 8 /* per user; beyond, 429 */
int reg_request_submit(struct reg *r, struct db *db, const struct db_user *u,
    const char *csr, size_t csr_len, const struct reg_actor *who,
    const unsigned char *code_hash, char token[IRP_TOKEN_LEN + 1],
    time_t *expires, struct reg_err *e) REG_WUR;
/*
 * The request of token: q->status is pending, approved (then *is is the
 * certificate issued: ca_issued_clear), rejected (q->reason says why)
 * or expired.  404 for an unknown token.
 */
int reg_request_poll(struct reg *r, struct db *db, const char *token,
    struct db_request *q, struct ca_issued *is, struct reg_err *e) REG_WUR;
/*
 * The same for the latest request of user_id for csr (PEM), or with
 * code_hash the one that code was spent on: how an EST client, which
 * repeats its request (RFC 7030, 4.2.3), finds it.  404 for none.
 */
int reg_request_for_csr(struct reg *r, struct db *db, int64_t user_id,
    const char *csr, const unsigned char *code_hash, struct db_request *q,
    struct ca_issued *is, struct reg_err *e) REG_WUR;
/*
 * An administrator's decision on pending request id: approve issues the
 * certificate for its CSR and records it with the decision (audited
 * "request.approve", with the serial; q gets the request as decided);
 * reject records why (audited "request.reject").  409 not_pending when
 * the request was decided already or expired.
 */
int reg_request_approve(struct reg *r, struct db *db, int64_t id,
    const struct reg_actor *who, struct db_request *q,
    struct reg_err *e) REG_WUR;
int reg_request_reject(struct reg *r, struct db *db, int64_t id,
    const char *reason, const struct reg_actor *who,
    struct reg_err *e) REG_WUR;

/*
 * Revoke serial (as irp_serial_normalize gives it; its addresses go in
 * the same transaction), audit "cert.revoke", new CRL.  Only its holder
 * or an administrator may (403).  A revoked certificate's reason can
 * only be raised to keyCompromise; any other second revocation is a
 * 409.  A reason the actor may not give is a 400 (reg_reason_allowed).
 */
int reg_revoke(struct reg *r, struct db *db, const char *serial, int reason,
    const struct reg_actor *who, struct reg_err *e) REG_WUR;
/*
 * The same in steps around its write, so that it can be committed with
 * others' (commit.h): reg_revoke_begin checks the reason and the actor
 * and fills rv->job; reg_write writes it; reg_revoke_end says how it
 * went and tells the cache.  reg_revoke is the three at once.
 */
struct reg_revocation {
	struct commit_job job;
	int reason;
	char serial[DB_SERIAL_MAX], actor[256], source[64];
};
int reg_revoke_begin(struct reg *r, struct db *db, const char *serial,
    int reason, const struct reg_actor *who, struct reg_revocation *rv,
    struct reg_err *e) REG_WUR;
int reg_revoke_end(struct reg *r, const struct reg_revocation *rv,
    struct reg_err *e) REG_WUR;
/*
 * The seal of a write with revocations (commit_seal_fn; arg is the
 * struct reg): a new CRL in its transaction.
 */
int reg_crl_seal(void *arg, struct db *db, struct db_err *err);
/*
 * Revoke every unexpired valid certificate of userid (a stolen device
 * whose certificate was renewed from the stolen one), one audit row
 * each, and a new CRL, in one transaction.  cb (may be NULL) sees each
 * serial; *n gets how many.  An administrator's action (403 otherwise).
 */
int reg_revoke_user(struct reg *r, struct db *db, const char *userid,
    int reason, const struct reg_actor *who,
    int (*cb)(const char *serial, void *), void *arg, int *n,
    struct reg_err *e) REG_WUR;

/*
 * The addresses of the actor's device, the certificate it presented
 * (403 for any other actor: an address belongs to one certificate).
 *
 * Replacing them takes three steps, so that the write can be committed
 * with others' (commit.h).  reg_addr_begin checks addrs[0..n-1] (1 to
 * IRP_ADDR_MAX, each an IPv4 or IPv6 literal, written in canonical form,
 * and a port of 1-65535; 400 too_many_addresses, invalid_address,
 * invalid_port) and fills job->set with them and the address the request
 * came from (who->source) as observed, with the first port.  asked is
 * the lifetime the device asked for (NULL: the configured default);
 * below 1 s is 400 invalid_value, anything else is clamped to the
 * configured range (job->set.ttl).  reg_write writes it: on db at
 * once, or with db NULL through the group committer, which calls
 * job->done when it is committed.  reg_addr_end then announces the
 * change and says how the write went (job->set.expires_at: their end).
 * Not audited: devices refresh them every half TTL, and the audit log
 * is for decisions, not for presence.
 */
int reg_addr_begin(struct reg *r, const struct reg_actor *who,
    struct db_addr *addrs, size_t n, const long long *asked,
    struct commit_job *job, struct reg_err *e) REG_WUR;
void reg_write(struct reg *r, struct db *db, struct commit_job *job);
int reg_addr_end(struct reg *r, const struct commit_job *job,
    struct reg_err *e) REG_WUR;
/* reg_addr_del takes them all away (a device going offline); *n: how many. */
int reg_addr_del(struct reg *r, struct db *db, const struct reg_actor *who,
    long *n, struct reg_err *e) REG_WUR;

/*
 * The actor's own encrypted PKCS#12 backup, stored as given (the server
 * never sees its passphrase).  Only its user reaches it, by certificate
 * to store it, by certificate, code or password to fetch it (a new
 * device has no certificate yet); an administrator has no way to others'.
 *
 * reg_backup_put: 1 byte to backup_max (400 empty_body, 413
 * body_too_large), a PKCS#12 with a MAC (400 invalid_pkcs12), so that a
 * truncated or wrong file is refused at once rather than on a new device;
 * audited as "backup.store".  sha256 gets its digest.
 */
int reg_backup_put(struct reg *r, struct db *db, const struct reg_actor *who,
    const unsigned char *data, size_t len, unsigned char sha256[32],
    struct reg_err *e) REG_WUR;
/*
 * reg_backup_get: *data is new (free()), 404 no_backup; audited as
 * "backup.fetch" with how the actor proved itself.  A transaction the
 * caller opened (to consume a code in it) is committed here with the
 * audit row; on failure it is rolled back.
 */
int reg_backup_get(struct reg *r, struct db *db, const struct reg_actor *who,
    unsigned char **data, size_t *len, struct reg_err *e) REG_WUR;

/* Build and store a new CRL listing every revoked certificate. */
int reg_crl_build(struct reg *r, struct db *db, unsigned char **der,
    size_t *der_len, struct reg_err *e) REG_WUR;

/* How long an enrolment code may be valid, in seconds. */
#define REG_CODE_TTL_MIN 60
#define REG_CODE_TTL_MAX (30 * 86400)
/*
 * A new one-time enrolment code for an enabled user, valid ttl seconds
 * (0: the configured default; else REG_CODE_TTL_MIN to _MAX, or 400
 * invalid_value), audited as "code.create".  code gets REG_CODE_LEN
 * characters + NUL; only its SHA-256 is stored.  *expires gets its end.
 */
int reg_code_new(struct reg *r, struct db *db, const char *userid, int ttl,
    const struct reg_actor *who, char code[REG_CODE_LEN + 1],
    long long *expires, struct reg_err *e) REG_WUR;
/* SHA-256 of a code as stored. */
void reg_code_hash(const char *code, unsigned char out[32]);


/* Argon2id parameters (OWASP's minimum): about 19 MiB, 2 passes, 1 lane. */
#define REG_ARGON2_T 2
#define REG_ARGON2_M 19456
#define REG_ARGON2_P 1
#define REG_PWHASH_MAX 128

#define REG_PASSWORD_MIN 8

/* Hash a password with Argon2id into out (encoded form); a password
 * shorter than REG_PASSWORD_MIN is refused (400 weak_password). */
int reg_password_hash(const char *password, char *out, size_t outlen,
    struct reg_err *e) REG_WUR;
/* 1 if password matches the encoded hash, else 0. */
int reg_password_verify(const char *encoded, const char *password);

/*
 * The audit log checked end to end: every row's hash recomputed from its
 * content and the previous row of its chain (each chain starts from 32
 * zero bytes).  rep gets how many rows and problems; problem (may be
 * NULL) hears of each.  -1 only when the store can not be read.
 */
struct reg_audit_report {
	int64_t rows;
	int64_t problems;
};
int reg_audit_verify(struct reg *r, struct db *db, struct reg_audit_report *rep,
    void (*problem)(int64_t id, const char *what, void *arg), void *arg,
    struct reg_err *e) REG_WUR;

#endif

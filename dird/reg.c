/*
 * reg.c - registry operations shared by dird and dirctl.
 */
#include <sys/stat.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <argon2.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "cache.h"
#include "commit.h"
#include "log.h"
#include "reg.h"

void
reg_seterr(struct reg_err *e, int status, const char *code, const char *fmt,
    ...)
{
	va_list ap;

	if (e == NULL)
		return;
	e->status = status;
	e->retry_after = 0;
	snprintf(e->code, sizeof(e->code), "%s", code);
	va_start(ap, fmt);
	vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
	va_end(ap);
}

void
reg_err_from_db(struct reg_err *e, const struct db_err *de)
{
	static const struct {
		int status;
		const char *code;
	} map[] = {
		[DB_OK] = { 500, "internal_error" },
		[DB_ERR_UNAVAILABLE] = { 503, "database_unavailable" },
		[DB_ERR_NOTFOUND] = { 404, "not_found" },
		[DB_ERR_CONFLICT] = { 409, "conflict" },
		[DB_ERR_INVALID] = { 400, "invalid_value" },
		[DB_ERR_INTERNAL] = { 500, "database_error" },
	};

	reg_seterr(e, map[de->code].status, map[de->code].code, "%s", de->msg);
}

void
reg_path(const struct reg *r, const char *name, char *buf, size_t len)
{
	snprintf(buf, len, "%s/%s", r->datadir, name);
}

/*
 * The migrations: $DIR_SCHEMA_DIR; else beside an installed program
 * (PREFIX/sbin/dird -> PREFIX/share/dir/schema, so a relocated or
 * DESTDIR install works); else the configured install directory; else
 * the source tree (running from the build directory).
 */
const char *
reg_schema_dir(void)
{
	static __thread char rel[PATH_MAX];
	const char *env = getenv("DIR_SCHEMA_DIR");
	char exe[PATH_MAX], probe[PATH_MAX + 32], *slash;
	ssize_t n;

	if (env != NULL && *env != '\0')
		return env;
	n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (n > 0) {
		exe[n] = '\0';
		if ((slash = strrchr(exe, '/')) != NULL) {
			*slash = '\0';
			snprintf(rel, sizeof(rel), "%s/../share/dir/schema", exe);
			snprintf(probe, sizeof(probe), "%s/001_init.sql", rel);
			if (access(probe, R_OK) == 0)
				return rel;
		}
	}
	snprintf(probe, sizeof(probe), "%s/001_init.sql",
	    DIR_SCHEMA_INSTALL_DIR);
	if (access(probe, R_OK) == 0)
		return DIR_SCHEMA_INSTALL_DIR;
	return DIR_SCHEMA_SOURCE_DIR;
}

int
reg_datadir(const char *datadir, char out[PATH_MAX], char *errbuf,
    size_t errlen)
{
	if (realpath(datadir, out) == NULL) {
		snprintf(errbuf, errlen, "data directory %s does not exist; "
		    "create it with 'dirctl --data %s init --domain DOMAIN'",
		    datadir, datadir);
		return -1;
	}
	return 0;
}

int
reg_open(struct reg *r, const char *datadir, const char *dsn,
    struct ca_signer *signer, char *errbuf, size_t errlen)
{
	char key[PATH_MAX + 16], cert[PATH_MAX + 16], conf[PATH_MAX + 16];
	struct ca_err ce;
	struct db_err de;
	struct db *db = NULL;
	int applied;

	memset(r, 0, sizeof(*r));
	if (reg_datadir(datadir, r->datadir, errbuf, errlen) == -1)
		goto err_signer;
	conf_defaults(&r->conf);
	reg_path(r, REG_CONF, conf, sizeof(conf));
	if (conf_load(conf, &r->conf, errbuf, errlen) == -1)
		goto err_signer;
	reg_path(r, REG_CA_KEY, key, sizeof(key));
	reg_path(r, REG_CA_CERT, cert, sizeof(cert));
	r->ca = signer != NULL ? ca_open_signer(cert, signer, &ce) :
	    ca_open(key, cert, &ce);
	if (r->ca == NULL) {
		snprintf(errbuf, errlen, "cannot load the CA: %s", ce.msg);
		return -1;
	}
	if (dsn == NULL && r->conf.dsn[0] != '\0')
		dsn = r->conf.dsn;
	if (dsn != NULL) {
		snprintf(r->conninfo, sizeof(r->conninfo), "%s", dsn);
	} else {
		if ((r->pg = pgembed_start(r->datadir, errbuf, errlen)) == NULL)
			goto err;
		snprintf(r->conninfo, sizeof(r->conninfo), "%s",
		    pgembed_conninfo(r->pg));
	}
	if ((db = db_connect(r->conninfo, &de)) == NULL ||
	    db_migrate(db, reg_schema_dir(), &applied, &de) == -1) {
		snprintf(errbuf, errlen, "database: %s", de.msg);
		goto err;
	}
	db_free(db);
	return 0;
err:
	db_free(db);
	reg_close(r);
	return -1;
err_signer:
	ca_signer_free(signer);
	return -1;
}

struct reg_live {
	struct conf conf;
	struct reg_live *prev;
};

const struct conf *
reg_conf(const struct reg *r)
{
	struct reg_live *l = atomic_load_explicit(&r->live,
	    memory_order_acquire);

	return l != NULL ? &l->conf : &r->conf;
}

int
reg_reload(struct reg *r, const struct conf *fresh,
    void (*fixed)(const char *key, void *arg), void *arg)
{
	struct reg_live *l;
	int n;

	if ((l = malloc(sizeof(*l))) == NULL)
		return -1;
	l->conf = *reg_conf(r);
	if ((n = conf_merge_live(&l->conf, fresh, fixed, arg)) == 0) {
		free(l);
		return 0;
	}
	/* Only the signal thread reloads: no other writer to race. */
	l->prev = atomic_load_explicit(&r->live, memory_order_relaxed);
	atomic_store_explicit(&r->live, l, memory_order_release);
	return n;
}

static void
live_free(struct reg *r)
{
	struct reg_live *l = atomic_exchange(&r->live, NULL), *prev;

	for (; l != NULL; l = prev) {
		prev = l->prev;
		free(l);
	}
}

void
reg_close(struct reg *r)
{
	/* Its listener first: it holds a connection to the cluster. */
	cache_free(r->cache);
	r->cache = NULL;
	live_free(r);
	(void)pgembed_stop(r->pg);
	r->pg = NULL;
	ca_free(r->ca);
	r->ca = NULL;
}

struct db *
reg_db(struct reg *r, struct db_err *err)
{
	struct db *db;

	if ((db = db_connect(r->conninfo, err)) == NULL)
		return NULL;
	if ((r->quiet && db_set_quiet(db, err) == -1) ||
	    db_ensure(db, err) == -1) {
		db_free(db);
		return NULL;
	}
	return db;
}

/*
 * What a change drops from this process's answer cache: CHANGED_USER,
 * what a certificate check and an OCSP status read too (the user's row,
 * a certificate's status); CHANGED_LISTING, what only a lookup reads (a
 * device's addresses, a new certificate); CHANGED_ALL, everything (a
 * federation rule, which the cache keeps beside the users' answers).
 */
enum changed { CHANGED_USER = 0, CHANGED_LISTING = 1, CHANGED_ALL = 2 };

/*
 * The one place where this process's own writes reach its cache.  Every
 * reg_ function that changes what a lookup, a certificate check or an
 * OCSP status answers calls it, beside the write, once the write has
 * committed (also when COMMIT reported a failure: it may have committed
 * all the same, and a needless drop costs one read).  Called before the
 * commit, a request in between could fill the cache with what is about
 * to go.
 *
 * Writes by anyone else (dirctl, another dird, SQL) arrive through the
 * NOTIFY that the triggers of schema/002_change_notify.sql send, which
 * the cache's listener, started by reg_cache_start, hears.  This
 * process's writes are announced that way too, unless it is the only
 * cache on its database (r->quiet, cache = local).
 */
static void
reg_changed(struct reg *r, int64_t user_id, enum changed what)
{
	if (r->cache != NULL && what == CHANGED_ALL)
		cache_changed(r->cache, 0, 0);
	else if (r->cache != NULL && user_id > 0)
		cache_changed(r->cache, user_id, what == CHANGED_LISTING);
}

/*
 * The answer cache (cache.h) as configured.  "local" means no other dird
 * caches on this database, so this one need not announce its writes;
 * its listener claims that (an advisory lock) and the claim is checked
 * here.  "auto" is local with the embedded cluster unless another dird
 * already runs on it: then this one does not cache and announces its
 * writes to the other.  With a DSN "auto" does not cache, since other
 * instances could change a record and a NOTIFY arrives a moment after
 * their commit.
 *
 * Every other dird announces its writes, whether it caches or not: only
 * the holder of the "local" claim knows that no other instance holds
 * answers its writes would make stale.  A dird with cache = off on a
 * database shared with caching ones used to stay quiet, and those never
 * heard of the revocations and disables made through it.
 */
int
reg_cache_start(struct reg *r, char *errbuf, size_t errlen)
{
	const char *mode = r->conf.cache;
	int is_auto = strcmp(mode, "auto") == 0, rv;

	if (is_auto)
		mode = r->pg != NULL ? "local" : "off";
	r->quiet = strcmp(mode, "local") == 0;
	if (strcmp(mode, "off") == 0) {
		log_info("cache: off (writes are announced to caching "
			 "instances)");
		return 0;
	}
	if ((r->cache = cache_new((size_t)r->conf.cache_entries)) == NULL) {
		snprintf(errbuf, errlen, "cache: out of memory");
		return -1;
	}
	rv = cache_listen(r->cache, r->conninfo, strcmp(mode, "local") == 0,
	    errbuf, errlen);
	if (rv == 1 && is_auto) {
		log_info("cache: off (another dird caches on this database; "
			 "this one announces its writes to it)");
		cache_free(r->cache);
		r->cache = NULL;
		r->quiet = 0;
		return 0;
	}
	if (rv == 1)
		snprintf(errbuf, errlen, "cache = local, but another dird with "
		    "cache = local runs on this database; give this one cache "
		    "= shared or off (every instance on one database should "
		    "use the same setting)");
	if (rv != 0) {
		cache_free(r->cache);
		r->cache = NULL;
		r->quiet = 0;
		return -1;
	}
	log_info("cache: %s, %d entries", mode, r->conf.cache_entries);
	return 0;
}

/* A store error about userid: an unknown one is an IRP unknown_user. */
static void
user_dberr(struct reg_err *e, const struct db_err *de, const char *userid)
{
	reg_err_from_db(e, de);
	if (de->code == DB_ERR_NOTFOUND)
		reg_seterr(e, 404, "unknown_user", "there is no user %s", userid);
}

/* Load an enabled user or fail with the fitting IRP error. */
static int
reg_user(struct db *db, const char *userid, struct db_user *u,
    struct reg_err *e)
{
	struct db_err de;

	if (db_user_get(db, userid, u, &de) == -1) {
		user_dberr(e, &de, userid);
		return -1;
	}
	if (!u->enabled) {
		reg_seterr(e, 403, "user_disabled", "user %s is disabled",
		    userid);
		return -1;
	}
	return 0;
}

/*
 * A failure of the CA to sign: status and code, unless the CA signer
 * process could not be asked, which is a 503 of its own (http.c).
 */
static void
sign_err(struct reg_err *e, const struct ca_err *ce, int status,
    const char *code)
{
	if (ce->code == CA_ERR_UNAVAILABLE)
		reg_seterr(e, 503, "signer_unavailable", "%s", ce->msg);
	else
		reg_seterr(e, status, code, "%s", ce->msg);
}

/* The revocation URLs of the configuration, for every certificate. */
static const struct ca_urls *
urls(const struct reg *r, struct ca_urls *u)
{
	const struct conf *c = reg_conf(r);

	u->crl = c->crl_url[0] ? c->crl_url : NULL;
	u->ocsp = c->ocsp_url[0] ? c->ocsp_url : NULL;
	u->issuer = c->ca_url[0] ? c->ca_url : NULL;
	return u;
}

/* The administrator's actions on other users. */
static int
admin_only(const struct reg_actor *who, struct reg_err *e)
{
	if (who->admin)
		return 0;
	reg_seterr(e, 403, "forbidden", "this needs an administrator");
	return -1;
}

/*
 * Who may have a certificate issued for u: an administrator (dirctl, the
 * admin API) for anyone; a user for themselves alone, proved by their
 * certificate (a renewal), an enrolment code or their password (a first
 * certificate: authentication made the code's user the actor).  The
 * audit action says which of these it was.
 */
static const char *
may_issue(const struct reg_actor *who, const struct db_user *u,
    struct reg_err *e)
{
	int self = who->user_id > 0 && who->user_id == u->id;

	if (self && who->by == REG_BY_CODE)
		return "enroll.code";
	if (self && who->by == REG_BY_PASSWORD)
		return "enroll.password";
	if (self && who->by == REG_BY_CERT)
		return "renew";
	if (who->admin)
		return "cert.issue";
	reg_seterr(e, 403, "forbidden", "a certificate is issued only for "
	    "its own user, or by an administrator");
	return NULL;
}

/* The row of the certificates table for is, issued to user_id. */
static struct db_cert_new
cert_row(struct reg *r, int64_t user_id, const struct ca_issued *is)
{
	return (struct db_cert_new){ ca_fingerprint(r->ca), user_id,
		is->serial, is->fingerprint, is->der, is->der_len,
		is->not_before, is->not_after, NULL };
}

/*
 * Record an issued certificate and its audit row: one statement, so they
 * land together or not at all.  A transaction the caller opened (to
 * consume an enrolment code in it) is committed with them.
 */
static int
reg_record(struct reg *r, struct db *db, const struct db_user *u,
    const struct ca_issued *is, const struct reg_actor *who,
    const char *action, struct reg_err *e)
{
	const struct db_cert_new c = cert_row(r, u->id, is);
	const struct db_audit_row a = { who->name, action, u->userid,
		who->source };
	struct db_err de;

	if (db_cert_record(db, &c, &a, NULL, &de) == -1) {
		db_rollback(db);
		reg_err_from_db(e, &de);
		return -1;
	}
	if (db_in_tx(db) && db_commit(db, &de) == -1) {
		reg_changed(r, u->id, CHANGED_LISTING);
		reg_err_from_db(e, &de);
		return -1;
	}
	/* No certificate check has read it yet; the user's lookup lists it. */
	reg_changed(r, u->id, CHANGED_LISTING);
	return 0;
}

/* Issue for u from a checked CSR; *action: what the audit row says. */
static int
reg_sign(struct reg *r, const struct db_user *u, struct ca_csr *req,
    const struct reg_actor *who, struct ca_issued *out, const char **action,
    struct reg_err *e)
{
	struct ca_subject subj;
	struct ca_urls cu;
	struct ca_err ce;

	if ((*action = may_issue(who, u, e)) == NULL)
		return -1;
	subj.userid = u->userid;
	subj.name = u->name;
	subj.email = u->email[0] ? u->email : NULL;
	if (ca_issue_user_csr(r->ca, req, &subj, reg_conf(r)->cert_days,
		urls(r, &cu), out, &ce) == -1) {
		sign_err(e, &ce, ce.code == CA_ERR_CRYPTO ? 500 : 400,
		    "invalid_csr");
		return -1;
	}
	return 0;
}

/* Issue for u from a checked CSR, and record it. */
static int
reg_issue_csr(struct reg *r, struct db *db, const struct db_user *u,
    struct ca_csr *req, const struct reg_actor *who, struct ca_issued *out,
    struct reg_err *e)
{
	const char *action;

	if (reg_sign(r, u, req, who, out, &action, e) == -1)
		return -1;
	if (reg_record(r, db, u, out, who, action, e) == -1) {
		ca_issued_clear(out);
		return -1;
	}
	return 0;
}

/*
 * Parsed and verified once, before the user is looked at (a bad CSR is a
 * 400 whoever sends it); the handle is issued for afterwards.
 */
static struct ca_csr *
reg_csr(const char *csr, size_t csr_len, struct reg_err *e)
{
	struct ca_csr *req;
	struct ca_err ce;

	if ((req = ca_csr_new(csr, csr_len, &ce)) == NULL)
		reg_seterr(e, 400, "invalid_csr", "%s", ce.msg);
	return req;
}

int
reg_issue(struct reg *r, struct db *db, const char *userid, const char *csr,
    size_t csr_len, const struct reg_actor *who, struct ca_issued *out,
    struct reg_err *e)
{
	struct ca_csr *req;
	struct db_user u;
	int rv = -1;

	memset(out, 0, sizeof(*out));
	if ((req = reg_csr(csr, csr_len, e)) == NULL) {
		db_rollback(db);
		return -1;
	}
	if (reg_user(db, userid, &u, e) == 0)
		rv = reg_issue_csr(r, db, &u, req, who, out, e);
	ca_csr_free(req);
	if (rv == -1)
		db_rollback(db);
	return rv;
}

int
reg_issue_begin(struct reg *r, const struct db_user *u, const char *csr,
    size_t csr_len, const struct reg_actor *who,
    const unsigned char *code_hash, struct reg_issuing *is,
    struct reg_err *e)
{
	struct commit_job *j = &is->job;
	struct ca_csr *req;
	const char *action;
	int rv;

	memset(is, 0, sizeof(*is));
	if ((req = reg_csr(csr, csr_len, e)) == NULL)
		return -1;
	rv = reg_sign(r, u, req, who, &is->is, &action, e);
	ca_csr_free(req);
	if (rv == -1)
		return -1;
	/* The request's strings are gone when the group commits. */
	is->user_id = u->id;
	snprintf(is->actor, sizeof(is->actor), "%s", who->name);
	snprintf(is->target, sizeof(is->target), "%s", u->userid);
	snprintf(is->source, sizeof(is->source), "%s",
	    who->source ? who->source : "");
	j->kind = COMMIT_CERT;
	j->cert = cert_row(r, u->id, &is->is);
	if (code_hash != NULL) {
		is->has_code = 1;
		memcpy(is->code_hash, code_hash, sizeof(is->code_hash));
		j->cert.code_hash = is->code_hash;
	}
	j->audit = (struct db_audit_row){ is->actor, action, is->target,
		who->source ? is->source : NULL };
	return 0;
}

int
reg_issue_end(struct reg *r, const struct reg_issuing *is,
    struct reg_err *e)
{
	/* No certificate check has read it yet; the user's lookup lists it. */
	reg_changed(r, is->user_id, CHANGED_LISTING);
	if (is->job.rv == -1) {
		if (is->has_code && is->job.err.code == DB_ERR_NOTFOUND) {
			reg_seterr(e, 401, "invalid_code", "the enrolment code "
			    "is unknown, already used or expired");
			return -1;
		}
		reg_err_from_db(e, &is->job.err);
		return -1;
	}
	return 0;
}

void
reg_issuing_free(void *p)
{
	struct reg_issuing *is = p;

	if (is == NULL)
		return;
	ca_issued_clear(&is->is);
	free(is);
}

/*
 * The escrow officer's certificate and fingerprint when escrow is on:
 * 1; 0 when it is off; -1 with e on a store error.
 */
static int
escrow_officer(struct db *db, char **pem, char fp[DB_FP_MAX],
    struct reg_err *e)
{
	struct db_err de;

	if (db_escrow_officer(db, pem, fp, &de) == 0)
		return 1;
	if (de.code == DB_ERR_NOTFOUND)
		return 0;
	reg_err_from_db(e, &de);
	return -1;
}

/* The key in a PKCS#12 just made, encrypted to the escrow officer. */
static int
escrow_p12(const unsigned char *p12, size_t len, const char *pass,
    const char *officer, unsigned char **cms, size_t *cms_len,
    struct reg_err *e)
{
	char *key = NULL, *cert = NULL;
	struct ca_err ce;
	int rv;

	if (ca_p12_unpack(p12, len, pass, &key, &cert, &ce) == -1) {
		sign_err(e, &ce, 500, "escrow_failed");
		return -1;
	}
	rv = ca_cms_envelope((const unsigned char *)key, strlen(key), officer,
	    cms, cms_len, &ce);
	ca_secret_free(key);
	free(cert);
	if (rv == -1)
		sign_err(e, &ce, 500, "escrow_failed");
	return rv;
}

int
reg_issue_p12(struct reg *r, struct db *db, const char *userid,
    const char *passphrase, const struct reg_actor *who, unsigned char **p12,
    size_t *p12_len, struct ca_issued *out, struct reg_err *e)
{
	char fp[DB_FP_MAX], *officer = NULL;
	unsigned char *cms = NULL;
	size_t cms_len = 0;
	struct ca_subject subj;
	struct db_cert_new c;
	struct db_audit_row a;
	struct ca_urls cu;
	struct db_user u;
	struct ca_err ce;
	struct db_err de;
	int64_t cert_id;
	int on, rv;

	memset(out, 0, sizeof(*out));
	*p12 = NULL;
	/* The server made the key: it is the registry's act, not a user's. */
	if (admin_only(who, e) == -1 || reg_user(db, userid, &u, e) == -1 ||
	    (on = escrow_officer(db, &officer, fp, e)) == -1) {
		db_rollback(db);
		return -1;
	}
	subj.userid = u.userid;
	subj.name = u.name;
	subj.email = u.email[0] ? u.email : NULL;
	if (ca_issue_p12(r->ca, &subj, CA_KEY_EC_P256, reg_conf(r)->cert_days,
		urls(r, &cu), passphrase, p12, p12_len, out, &ce) == -1) {
		db_rollback(db);
		sign_err(e, &ce, 500, "issue_failed");
		goto err;
	}
	/* Escrow on: the key is deposited with its record, or neither. */
	if (on && escrow_p12(*p12, *p12_len, passphrase, officer, &cms,
	    &cms_len, e) == -1)
		goto err;
	c = cert_row(r, u.id, out);
	a = (struct db_audit_row){ who->name, "cert.issue_p12", u.userid,
		who->source };
	if ((!db_in_tx(db) && db_begin(db, &de) == -1) ||
	    db_cert_record(db, &c, &a, &cert_id, &de) == -1 ||
	    (on && (db_escrow_put(db, cert_id, u.id, fp, cms, cms_len,
		&de) == -1 || db_audit(db, who->name, "key.escrow", u.userid,
		out->serial, who->source, "made here (PKCS#12)", &de) == -1)))
		goto dberr;
	rv = db_commit(db, &de);
	reg_changed(r, u.id, CHANGED_LISTING);
	if (rv == -1)
		goto dberr;
	free(officer);
	free(cms);
	return 0;
dberr:
	db_rollback(db);
	reg_err_from_db(e, &de);
err:
	if (*p12 != NULL) {
		OPENSSL_cleanse(*p12, *p12_len);
		free(*p12);
		*p12 = NULL;
	}
	ca_issued_clear(out);
	free(officer);
	free(cms);
	return -1;
}

/* ---- key escrow ------------------------------------------------------ */

int
reg_escrow_on(struct reg *r, struct db *db, const char *cert_pem,
    const struct reg_actor *who, char fp[DB_FP_MAX], struct reg_err *e)
{
	struct ca_cert_info info;
	unsigned char *probe = NULL;
	size_t probe_len;
	struct ca_err ce;
	struct db_err de;
	char detail[80];

	(void)r;
	if (admin_only(who, e) == -1)
		return -1;
	if (ca_cert_info((const unsigned char *)cert_pem, strlen(cert_pem),
		&info, &ce) == -1) {
		reg_seterr(e, 400, "invalid_certificate", "the escrow "
		    "officer's certificate: %s", ce.msg);
		return -1;
	}
	/* A key that can not receive CMS would make every deposit fail. */
	if (ca_cms_envelope((const unsigned char *)"probe", 5, cert_pem,
		&probe, &probe_len, &ce) == -1) {
		reg_seterr(e, 400, "invalid_certificate", "nothing can be "
		    "encrypted to that certificate: %s", ce.msg);
		return -1;
	}
	free(probe);
	snprintf(fp, DB_FP_MAX, "%s", info.fingerprint);
	snprintf(detail, sizeof(detail), "officer=%s", fp);
	if (db_begin(db, &de) == -1 ||
	    db_escrow_officer_set(db, cert_pem, fp, who->name, &de) == -1 ||
	    db_audit(db, who->name, "escrow.on", NULL, NULL, who->source,
		detail, &de) == -1 ||
	    db_commit(db, &de) == -1) {
		db_rollback(db);
		reg_err_from_db(e, &de);
		return -1;
	}
	return 0;
}

int
reg_escrow_off(struct reg *r, struct db *db, const struct reg_actor *who,
    struct reg_err *e)
{
	struct db_err de;

	(void)r;
	if (admin_only(who, e) == -1)
		return -1;
	if (db_begin(db, &de) == -1 ||
	    db_escrow_officer_clear(db, &de) == -1 ||
	    db_audit(db, who->name, "escrow.off", NULL, NULL, who->source,
		NULL, &de) == -1 ||
	    db_commit(db, &de) == -1) {
		db_rollback(db);
		reg_err_from_db(e, &de);
		if (de.code == DB_ERR_NOTFOUND)
			reg_seterr(e, 409, "escrow_off", "key escrow is off "
			    "already");
		return -1;
	}
	return 0;
}

int
reg_escrow_officer(struct reg *r, struct db *db, char **pem,
    char fp[DB_FP_MAX], struct reg_err *e)
{
	int on;

	(void)r;
	if ((on = escrow_officer(db, pem, fp, e)) == 1)
		return 0;
	if (on == 0)
		reg_seterr(e, 404, "escrow_off", "this registry does not "
		    "escrow keys");
	return -1;
}

int
reg_escrow_deposit(struct reg *r, struct db *db, const struct reg_actor *who,
    const char *officer_fp, const unsigned char *cms, size_t len,
    struct reg_err *e)
{
	char fp[DB_FP_MAX], *officer = NULL;
	struct ca_err ce;
	struct db_err de;
	int on;

	(void)r;
	if (who->by != REG_BY_CERT || who->cert_id == 0) {
		reg_seterr(e, 403, "forbidden", "a key is deposited with the "
		    "certificate it belongs to");
		return -1;
	}
	if (len == 0 || len > REG_ESCROW_MAX) {
		reg_seterr(e, 413, "too_large", "a deposit has 1 to %d bytes",
		    REG_ESCROW_MAX);
		return -1;
	}
	if ((on = escrow_officer(db, &officer, fp, e)) == -1)
		return -1;
	free(officer);
	if (on == 0) {
		reg_seterr(e, 409, "escrow_off", "this registry does not "
		    "escrow keys");
		return -1;
	}
	/* Ciphertext only: a key sent in clear is refused, not kept. */
	if (ca_cms_check(cms, len, &ce) == -1) {
		reg_seterr(e, 400, "not_encrypted", "a deposit is an S/MIME "
		    "message encrypted to the escrow officer: %s", ce.msg);
		return -1;
	}
	if (db_begin(db, &de) == -1 ||
	    db_escrow_put(db, who->cert_id, who->user_id, officer_fp, cms, len,
		&de) == -1 ||
	    db_audit(db, who->name, "key.escrow", who->userid, who->serial,
		who->source, NULL, &de) == -1 ||
	    db_commit(db, &de) == -1) {
		db_rollback(db);
		reg_err_from_db(e, &de);
		if (de.code == DB_ERR_NOTFOUND)
			reg_seterr(e, 409, "escrow_changed", "%s", de.msg);
		return -1;
	}
	return 0;
}

int
reg_escrow_export(struct reg *r, struct db *db, const char *serial,
    const struct reg_actor *who, unsigned char **cms, size_t *len,
    struct reg_err *e)
{
	char userid[DB_USERID_MAX];
	struct db_err de;

	*cms = NULL;
	if (admin_only(who, e) == -1)
		return -1;
	if (db_begin(db, &de) == -1 ||
	    db_escrow_get(db, ca_fingerprint(r->ca), serial, cms, len, userid,
		&de) == -1 ||
	    db_audit(db, who->name, "escrow.export", userid, serial,
		who->source, NULL, &de) == -1 ||
	    db_commit(db, &de) == -1) {
		db_rollback(db);
		free(*cms);
		*cms = NULL;
		reg_err_from_db(e, &de);
		if (de.code == DB_ERR_NOTFOUND)
			reg_seterr(e, 404, "not_escrowed", "%s", de.msg);
		return -1;
	}
	return 0;
}

struct revlist {
	struct ca_revoked *v;
	char (*serials)[DB_SERIAL_MAX];
	size_t n, cap;
};

static int
collect_revoked(const struct db_cert *c, void *arg)
{
	struct revlist *l = arg;

	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 64;
		void *v = realloc(l->v, cap * sizeof(*l->v));
		void *s;

		if (v == NULL)
			return -1;
		l->v = v;
		if ((s = realloc(l->serials, cap * sizeof(*l->serials))) == NULL)
			return -1;
		l->serials = s;
		l->cap = cap;
	}
	memcpy(l->serials[l->n], c->serial, DB_SERIAL_MAX);
	l->v[l->n].revoked_at = c->revoked_at;
	l->v[l->n].reason = c->reason;
	l->n++;
	return 0;
}

int
reg_crl_build(struct reg *r, struct db *db, unsigned char **der,
    size_t *der_len, struct reg_err *e)
{
	struct revlist l = { 0 };
	struct db_err de;
	struct ca_err ce;
	time_t now = time(NULL), next;
	long number;
	size_t i;
	int rv = -1;

	*der = NULL;
	next = now + (time_t)reg_conf(r)->crl_days * 86400;
	if (db_revoked_list(db, ca_fingerprint(r->ca), collect_revoked, &l,
		&de) == -1 ||
	    db_crl_next_number(db, ca_fingerprint(r->ca), &number, &de) == -1) {
		reg_err_from_db(e, &de);
		goto err;
	}
	/* Pointers only once the arrays stopped moving. */
	for (i = 0; i < l.n; i++)
		l.v[i].serial = l.serials[i];
	if (ca_crl_build(r->ca, l.v, l.n, number, now, next, der, der_len,
		&ce) == -1) {
		sign_err(e, &ce, 500, "crl_failed");
		goto err;
	}
	if (db_crl_store(db, ca_fingerprint(r->ca), number, now, next, *der,
		*der_len, &de) == -1) {
		reg_err_from_db(e, &de);
		free(*der);
		*der = NULL;
		goto err;
	}
	rv = 0;
err:
	free(l.v);
	free(l.serials);
	return rv;
}

/*
 * RFC 5280 5.3.1 reasons by who may give them.  Never: cACompromise and
 * aACompromise (about authorities), certificateHold (what a disabled
 * user's certificates get, computed, see db_revoked_list) and
 * removeFromCRL, which would tell relying parties that a revoked
 * certificate is good again.
 */
int
reg_reason_allowed(int reason, int by_admin)
{
	switch (reason) {
	case 0:	/* unspecified */
	case 1:	/* keyCompromise */
	case 3:	/* affiliationChanged */
	case 4:	/* superseded */
	case 5:	/* cessationOfOperation */
		return 1;
	case 9:	/* privilegeWithdrawn: the registry's decision */
		return by_admin;
	default:
		return 0;
	}
}

static int
reason_check(int reason, int by_admin, struct reg_err *e)
{
	if (reg_reason_allowed(reason, by_admin))
		return 0;
	reg_seterr(e, 400, "invalid_reason", "a certificate can not be "
	    "revoked for \"%s\"%s; use unspecified, keyCompromise, "
	    "affiliationChanged, superseded or cessationOfOperation%s",
	    ca_reason_name(reason) ? ca_reason_name(reason) : "?",
	    by_admin ? "" : " by its holder",
	    by_admin ? " (or privilegeWithdrawn)" : "");
	return -1;
}

/* A new CRL in the caller's transaction; only its state is kept. */
static int
crl_renew(struct reg *r, struct db *db, struct reg_err *e)
{
	unsigned char *der = NULL;
	size_t len;

	if (reg_crl_build(r, db, &der, &len, e) == -1)
		return -1;
	free(der);
	return 0;
}

/* The holder of serial, for the check that only they revoke it. */
static int
owner_cb(const struct db_cert *c, void *arg)
{
	snprintf(arg, DB_USERID_MAX, "%s", c->userid);
	return 0;
}

static int
may_revoke(struct reg *r, struct db *db, const char *serial,
    const struct reg_actor *who, struct reg_err *e)
{
	char owner[DB_USERID_MAX] = "";
	struct db_err de;

	if (who->admin)
		return 0;
	if (db_cert_get(db, ca_fingerprint(r->ca), serial, owner_cb, owner,
		&de) == -1) {
		reg_err_from_db(e, &de);
		if (de.code == DB_ERR_NOTFOUND)
			reg_seterr(e, 404, "unknown_certificate",
			    "no certificate with serial %s", serial);
		return -1;
	}
	if (who->userid == NULL || strcmp(owner, who->userid) != 0) {
		reg_seterr(e, 403, "forbidden",
		    "you may only revoke your own certificates");
		return -1;
	}
	return 0;
}

/* A refused revocation's store error, said as the IRP says it. */
static void
revoke_err(struct reg_err *e, const struct db_err *de, const char *serial)
{
	reg_err_from_db(e, de);
	if (de->code == DB_ERR_NOTFOUND)
		reg_seterr(e, 404, "unknown_certificate",
		    "no certificate with serial %s", serial);
	else if (de->code == DB_ERR_CONFLICT)
		reg_seterr(e, 409, "already_revoked",
		    "certificate %s is already revoked (a revocation can only "
		    "be raised to keyCompromise)", serial);
}

/*
 * The commit job's error says a store's failure; a CRL that could not be
 * signed is marked in it with this pseudo-SQLSTATE, so that the request
 * is told what it would have been told without group commit.
 */
#define SEAL_SIGNER "DIRSG"

int
reg_crl_seal(void *arg, struct db *db, struct db_err *de)
{
	struct reg *r = arg;
	struct reg_err e;

	if (crl_renew(r, db, &e) == 0)
		return 0;
	memset(de, 0, sizeof(*de));
	if (strcmp(e.code, "signer_unavailable") == 0) {
		/* Unavailable: the group is not tried again job by job. */
		de->code = DB_ERR_UNAVAILABLE;
		snprintf(de->sqlstate, sizeof(de->sqlstate), "%s",
		    SEAL_SIGNER);
		snprintf(de->msg, sizeof(de->msg), "%s", e.msg);
	} else {
		de->code = DB_ERR_INTERNAL;
		snprintf(de->msg, sizeof(de->msg), "the new CRL: %s", e.msg);
	}
	return -1;
}

int
reg_revoke_begin(struct reg *r, struct db *db, const char *serial,
    int reason, const struct reg_actor *who, struct reg_revocation *rv,
    struct reg_err *e)
{
	struct commit_job *j = &rv->job;

	memset(rv, 0, sizeof(*rv));
	if (reason_check(reason, who->admin, e) == -1 ||
	    may_revoke(r, db, serial, who, e) == -1)
		return -1;
	/* The request's strings are gone when the group commits. */
	snprintf(rv->serial, sizeof(rv->serial), "%s", serial);
	snprintf(rv->actor, sizeof(rv->actor), "%s", who->name);
	snprintf(rv->source, sizeof(rv->source), "%s",
	    who->source ? who->source : "");
	rv->reason = reason;
	j->kind = COMMIT_REVOKE;
	j->revoke = (struct commit_revoke){ ca_fingerprint(r->ca), rv->serial,
		ca_reason_name(reason), reason, 0, 0 };
	j->audit = (struct db_audit_row){ rv->actor, "cert.revoke", NULL,
		who->source ? rv->source : NULL };
	return 0;
}

int
reg_revoke_end(struct reg *r, const struct reg_revocation *rv,
    struct reg_err *e)
{
	/*
	 * Its checks, OCSP status and its place in lookups; also when the
	 * commit failed, whose outcome may be unknown.
	 */
	if (rv->job.revoke.holder != 0)
		reg_changed(r, rv->job.revoke.holder, CHANGED_USER);
	if (rv->job.rv == -1 && strcmp(rv->job.err.sqlstate,
	    SEAL_SIGNER) == 0) {
		reg_seterr(e, 503, "signer_unavailable", "%s",
		    rv->job.err.msg);
		return -1;
	}
	if (rv->job.rv == -1) {
		revoke_err(e, &rv->job.err, rv->serial);
		return -1;
	}
	return 0;
}

int
reg_revoke(struct reg *r, struct db *db, const char *serial, int reason,
    const struct reg_actor *who, struct reg_err *e)
{
	struct reg_revocation rv;

	if (reg_revoke_begin(r, db, serial, reason, who, &rv, e) == -1)
		return -1;
	reg_write(r, db, &rv.job);
	return reg_revoke_end(r, &rv, e);
}

struct revoke_all {
	struct db *db;
	const char *actor, *userid, *source, *detail;
	int (*cb)(const char *, void *);
	void *arg;
	struct db_err de;
	int n;
};

static int
revoke_all_one(const char *serial, void *arg)
{
	struct revoke_all *ra = arg;

	ra->n++;
	if (db_audit(ra->db, ra->actor, "cert.revoke", ra->userid, serial,
		ra->source, ra->detail, &ra->de) == -1)
		return -1;
	return ra->cb != NULL ? ra->cb(serial, ra->arg) : 0;
}

int
reg_revoke_user(struct reg *r, struct db *db, const char *userid, int reason,
    const struct reg_actor *who, int (*cb)(const char *serial, void *),
    void *arg, int *n, struct reg_err *e)
{
	struct revoke_all ra = { db, who->name, userid, who->source, NULL, cb,
		arg, { 0 }, 0 };
	struct db_user u;
	struct db_err de;
	char detail[64];
	int rv;

	*n = 0;
	if (admin_only(who, e) == -1 || reason_check(reason, 1, e) == -1)
		return -1;
	snprintf(detail, sizeof(detail), "reason=%s (every certificate of "
	    "the user)", ca_reason_name(reason));
	ra.detail = detail;
	if (db_begin(db, &de) == -1)
		goto dberr;
	/* Disabled users too: their held certificates become revoked. */
	if (db_user_get(db, userid, &u, &de) == -1) {
		user_dberr(e, &de, userid);
		goto err;
	}
	if (db_cert_revoke_user(db, ca_fingerprint(r->ca), userid, reason,
		revoke_all_one, &ra, &de) == -1) {
		if (ra.de.code != DB_OK)
			de = ra.de;
		goto dberr;
	}
	if (crl_renew(r, db, e) == -1)
		goto err;
	rv = db_commit(db, &de);
	reg_changed(r, u.id, CHANGED_USER);
	if (rv == -1)
		goto dberr;
	*n = ra.n;
	return 0;
dberr:
	reg_err_from_db(e, &de);
err:
	db_rollback(db);
	return -1;
}

/* A new user's fields, each against its one rule. */
int
reg_user_check(const struct reg_user_new *nu, char userid[IRP_USERID_MAX + 1],
    struct reg_err *e)
{
	const char *why;

	if (strlen(nu->userid) > IRP_USERID_MAX) {
		reg_seterr(e, 400, "too_long", "a user id has at most %d bytes",
		    IRP_USERID_MAX);
		return -1;
	}
	if (irp_userid_normalize(nu->userid, userid, IRP_USERID_MAX + 1,
		&why) == -1) {
		reg_seterr(e, 400, "invalid_userid", "'%.64s' is not a valid "
		    "user id: %s", nu->userid, why);
		return -1;
	}
	if (strlen(nu->name) > IRP_NAME_MAX) {
		reg_seterr(e, 400, "too_long", "a name has at most %d bytes",
		    IRP_NAME_MAX);
		return -1;
	}
	if (*nu->name == '\0' || !ca_name_ok(nu->name)) {
		reg_seterr(e, 400, "invalid_value", "a name must not be empty "
		    "or hold control characters or direction overrides");
		return -1;
	}
	if (nu->email != NULL && strlen(nu->email) > IRP_EMAIL_MAX) {
		reg_seterr(e, 400, "too_long", "an e-mail address has at most "
		    "%d bytes", IRP_EMAIL_MAX);
		return -1;
	}
	if (nu->email != NULL && !irp_email_ok(nu->email)) {
		reg_seterr(e, 400, "invalid_value", "'%.64s' is not an e-mail "
		    "address", nu->email);
		return -1;
	}
	/* An empty password would make HTTP Basic "userid:" a login. */
	if (nu->password != NULL && strlen(nu->password) < REG_PASSWORD_MIN) {
		reg_seterr(e, 400, "weak_password", "a password needs at least "
		    "%d characters", REG_PASSWORD_MIN);
		return -1;
	}
	return 0;
}

int
reg_user_add(struct reg *r, struct db *db, const struct reg_user_new *nu,
    const struct reg_actor *who, char userid[IRP_USERID_MAX + 1],
    struct reg_err *e)
{
	char hash[REG_PWHASH_MAX] = "";
	struct db_err de;
	int64_t id = 0;
	int rv = -1;

	if (admin_only(who, e) == -1 ||
	    reg_user_check(nu, userid, e) == -1)
		return -1;
	if (nu->password != NULL &&
	    reg_password_hash(nu->password, hash, sizeof(hash), e) == -1)
		return -1;
	if (db_begin(db, &de) == -1 ||
	    db_user_add(db, userid, nu->name, nu->email, nu->admin,
		hash[0] ? hash : NULL, &id, &de) == -1 ||
	    db_audit(db, who->name, "user.add", userid, NULL, who->source,
		nu->admin ? "role=admin" : "role=user", &de) == -1) {
		db_rollback(db);
		reg_err_from_db(e, &de);
		goto out;
	}
	rv = db_commit(db, &de);
	/* Nothing cached answers from a new row yet; dropped all the
	 * same, as for every change of a user. */
	reg_changed(r, id, CHANGED_USER);
	if (rv == -1)
		reg_err_from_db(e, &de);
out:
	OPENSSL_cleanse(hash, sizeof(hash));
	return rv;
}

int
reg_user_set_enabled(struct reg *r, struct db *db, const char *userid,
    int enabled, const struct reg_actor *who, struct reg_err *e)
{
	struct db_err de;
	int64_t id = 0;
	int rv;

	if (admin_only(who, e) == -1)
		return -1;
	if (db_begin(db, &de) == -1 ||
	    db_user_set_enabled(db, userid, enabled, &id, &de) == -1 ||
	    db_audit(db, who->name, enabled ? "user.enable" : "user.disable",
		userid, NULL, who->source, NULL, &de) == -1)
		goto dberr;
	/*
	 * Disabling puts the user's certificates on the CRL as
	 * certificateHold, enabling takes them off: peers learn of it from
	 * the next CRL they fetch, which is this one.
	 */
	if (crl_renew(r, db, e) == -1)
		goto err;
	rv = db_commit(db, &de);
	reg_changed(r, id, CHANGED_USER);
	if (rv == -1)
		goto dberr;
	return 0;
dberr:
	user_dberr(e, &de, userid);
err:
	db_rollback(db);
	return -1;
}

int
reg_user_passwd(struct reg *r, struct db *db, const char *userid,
    const char *password, const struct reg_actor *who, struct reg_err *e)
{
	char hash[REG_PWHASH_MAX];
	struct db_err de;
	int64_t id = 0;
	int rv = -1;

	if (admin_only(who, e) == -1 ||
	    reg_password_hash(password, hash, sizeof(hash), e) == -1)
		return -1;
	if (db_begin(db, &de) == -1 ||
	    db_user_set_password(db, userid, hash, &id, &de) == -1 ||
	    db_audit(db, who->name, "user.passwd", userid, NULL, who->source,
		NULL, &de) == -1) {
		db_rollback(db);
		user_dberr(e, &de, userid);
		goto out;
	}
	rv = db_commit(db, &de);
	/* The user's row, which certificate checks keep, changed. */
	reg_changed(r, id, CHANGED_USER);
	if (rv == -1)
		user_dberr(e, &de, userid);
out:
	OPENSSL_cleanse(hash, sizeof(hash));
	return rv;
}

void
reg_code_hash(const char *code, unsigned char out[32])
{
	char norm[128];
	size_t i, n = 0;
	unsigned int len = 32;

	/* People retype codes: ignore case, spaces and dashes. */
	for (i = 0; code[i] != '\0' && n < sizeof(norm) - 1; i++) {
		if (code[i] == '-' || code[i] == ' ')
			continue;
		norm[n++] = (char)toupper((unsigned char)code[i]);
	}
	EVP_Digest(norm, n, out, &len, EVP_sha256(), NULL);
	OPENSSL_cleanse(norm, sizeof(norm));
}

int
reg_code_new(struct reg *r, struct db *db, const char *userid, int ttl,
    const struct reg_actor *who, char code[REG_CODE_LEN + 1],
    long long *expires, struct reg_err *e)
{
	/* 32 symbols without 0/O and 1/I: 5 bits each, 120 bits in all. */
	static const char alphabet[] = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789";
	unsigned char rnd[REG_CODE_LEN], hash[32];
	struct db_user u;
	struct db_err de;
	char detail[48];
	int i;

	if (ttl == 0)
		ttl = reg_conf(r)->code_ttl;
	if (ttl < REG_CODE_TTL_MIN || ttl > REG_CODE_TTL_MAX) {
		reg_seterr(e, 400, "invalid_value", "a code is valid from %d "
		    "seconds to %d days", REG_CODE_TTL_MIN,
		    REG_CODE_TTL_MAX / 86400);
		return -1;
	}
	if (admin_only(who, e) == -1 || reg_user(db, userid, &u, e) == -1)
		return -1;
	if (RAND_bytes(rnd, sizeof(rnd)) != 1) {
		reg_seterr(e, 500, "internal_error", "no randomness available");
		return -1;
	}
	for (i = 0; i < REG_CODE_LEN; i++)
		code[i] = alphabet[rnd[i] & 31];
	code[REG_CODE_LEN] = '\0';
	OPENSSL_cleanse(rnd, sizeof(rnd));
	reg_code_hash(code, hash);
	snprintf(detail, sizeof(detail), "ttl=%d", ttl);
	*expires = (long long)time(NULL) + ttl;
	if (db_begin(db, &de) == -1 ||
	    db_code_add(db, u.id, hash, (time_t)*expires, &de) == -1 ||
	    db_audit(db, who->name, "code.create", u.userid, NULL, who->source,
		detail, &de) == -1 ||
	    db_commit(db, &de) == -1) {
		db_rollback(db);
		OPENSSL_cleanse(code, REG_CODE_LEN);
		reg_err_from_db(e, &de);
		return -1;
	}
	return 0;
}

/* ---- enrolment requests ---------------------------------------------- */

int
reg_enrol_approve(struct reg *r, struct db *db, const struct db_user *u,
    int *approve, struct reg_err *e)
{
	char policy[16];
	struct db_err de;

	if (db_user_policy(db, u->id, policy, sizeof(policy), &de) == -1) {
		reg_err_from_db(e, &de);
		return -1;
	}
	if (policy[0] == '\0')
		snprintf(policy, sizeof(policy), "%s",
		    reg_conf(r)->enrol_policy);
	*approve = strcmp(policy, "approve") == 0;
	return 0;
}

int
reg_user_policy(struct reg *r, struct db *db, const char *userid,
    const char *policy, const struct reg_actor *who, struct reg_err *e)
{
	struct db_err de;
	char detail[32];

	(void)r;
	if (admin_only(who, e) == -1)
		return -1;
	if (strcmp(policy, "auto") != 0 && strcmp(policy, "approve") != 0 &&
	    strcmp(policy, "default") != 0) {
		reg_seterr(e, 400, "invalid_value", "a policy is auto, approve "
		    "or default, not '%s'", policy);
		return -1;
	}
	snprintf(detail, sizeof(detail), "policy=%s", policy);
	if (db_begin(db, &de) == -1 ||
	    db_user_policy_set(db, userid, strcmp(policy, "default") == 0 ?
		"" : policy, &de) == -1 ||
	    db_audit(db, who->name, "user.policy", userid, NULL, who->source,
		detail, &de) == -1 ||
	    db_commit(db, &de) == -1) {
		db_rollback(db);
		user_dberr(e, &de, userid);
		return -1;
	}
	return 0;
}

/* The SHA-256 a token is stored as. */
static void
token_hash(const char *token, unsigned char out[32])
{
	unsigned int len = 32;

	EVP_Digest(token, strlen(token), out, &len, EVP_sha256(), NULL);
}

int
reg_request_submit(struct reg *r, struct db *db, const struct db_user *u,
    const char *csr, size_t csr_len, const struct reg_actor *who,
    const unsigned char *code_hash, char token[IRP_TOKEN_LEN + 1],
    time_t *expires, struct reg_err *e)
{
	unsigned char rnd[IRP_TOKEN_LEN / 2], hash[32];
	struct db_request_new q;
	struct ca_csr *req;
	struct db_err de;
	int64_t id;
	size_t i;
	long n;

	/* A CSR that could never be issued is refused now, not approved. */
	if ((req = reg_csr(csr, csr_len, e)) == NULL)
		return -1;
	ca_csr_free(req);
	if (may_issue(who, u, e) == NULL)
		return -1;
	/* A password may ask again and again: the requests are bounded. */
	if (db_request_pending(db, u->id, &n, &de) == -1) {
		reg_err_from_db(e, &de);
		return -1;
	}
	if (n >= REG_REQUESTS_PENDING_MAX) {
		reg_seterr(e, 429, "too_many_requests", "%ld enrolment "
		    "requests of %s wait for a decision already; ask an "
		    "administrator to decide them", n, u->userid);
		e->retry_after = reg_conf(r)->request_poll;
		return -1;
	}
	if (RAND_bytes(rnd, sizeof(rnd)) != 1) {
		reg_seterr(e, 500, "internal_error", "no randomness available");
		return -1;
	}
	for (i = 0; i < sizeof(rnd); i++)
		snprintf(token + 2 * i, 3, "%02x", rnd[i]);
	token_hash(token, hash);
	q = (struct db_request_new){ hash, u->id, csr,
		who->by == REG_BY_CODE ? "code" : "password", who->source,
		reg_conf(r)->request_ttl, code_hash, who->name, u->userid };
	*expires = time(NULL) + reg_conf(r)->request_ttl;
	if (db_request_add(db, &q, &id, &de) == -1) {
		OPENSSL_cleanse(token, IRP_TOKEN_LEN);
		if (code_hash != NULL && de.code == DB_ERR_NOTFOUND) {
			reg_seterr(e, 401, "invalid_code", "the enrolment code "
			    "is unknown, already used or expired");
			return -1;
		}
		reg_err_from_db(e, &de);
		return -1;
	}
	return 0;
}

/* The certificate an approval issued, as the enrolment's answer. */
static int
issued_cb(const struct db_cert *c, void *arg)
{
	struct ca_issued *is = arg;
	struct ca_err ce;

	if ((is->cert_pem = ca_der_to_pem(c->der, c->der_len, &ce)) == NULL ||
	    (is->der = malloc(c->der_len)) == NULL)
		return -1;
	memcpy(is->der, c->der, c->der_len);
	is->der_len = c->der_len;
	snprintf(is->serial, sizeof(is->serial), "%s", c->serial);
	snprintf(is->fingerprint, sizeof(is->fingerprint), "%s",
	    c->fingerprint);
	is->not_before = c->not_before;
	is->not_after = c->not_after;
	return 0;
}

/* For an approved request q: the certificate it issued, into is. */
static int
request_issued(struct reg *r, struct db *db, const struct db_request *q,
    struct ca_issued *is, struct reg_err *e)
{
	struct db_err de;

	if (strcmp(q->status, "approved") != 0)
		return 0;
	if (q->serial[0] == '\0' ||
	    db_cert_get(db, ca_fingerprint(r->ca), q->serial, issued_cb, is,
		&de) == -1) {
		ca_issued_clear(is);
		reg_seterr(e, 410, "certificate_gone", "the request was "
		    "approved, but its certificate is no longer kept");
		return -1;
	}
	return 0;
}

int
reg_request_poll(struct reg *r, struct db *db, const char *token,
    struct db_request *q, struct ca_issued *is, struct reg_err *e)
{
	unsigned char hash[32];
	struct db_err de;

	memset(is, 0, sizeof(*is));
	memset(q, 0, sizeof(*q));
	if (!irp_token_ok(token)) {
		reg_seterr(e, 404, "unknown_request", "no such request");
		return -1;
	}
	token_hash(token, hash);
	if (db_request_by_token(db, hash, q, &de) == -1) {
		reg_err_from_db(e, &de);
		if (de.code == DB_ERR_NOTFOUND)
			reg_seterr(e, 404, "unknown_request", "no such request");
		return -1;
	}
	db_request_clear(q);
	return request_issued(r, db, q, is, e);
}

int
reg_request_for_csr(struct reg *r, struct db *db, int64_t user_id,
    const char *csr, const unsigned char *code_hash, struct db_request *q,
    struct ca_issued *is, struct reg_err *e)
{
	struct db_err de;

	memset(is, 0, sizeof(*is));
	if (db_request_by_csr(db, user_id, csr, code_hash, q, &de) == -1) {
		reg_err_from_db(e, &de);
		if (de.code == DB_ERR_NOTFOUND)
			reg_seterr(e, 404, "unknown_request", "no request for "
			    "that CSR");
		return -1;
	}
	return request_issued(r, db, q, is, e);
}

/* Request id as the decision needs it: pending, with its CSR. */
static int
request_pending(struct db *db, int64_t id, struct db_request *q,
    struct reg_err *e)
{
	struct db_err de;

	if (db_request_by_id(db, id, q, &de) == -1) {
		reg_err_from_db(e, &de);
		if (de.code == DB_ERR_NOTFOUND)
			reg_seterr(e, 404, "unknown_request",
			    "no request %lld", (long long)id);
		return -1;
	}
	if (strcmp(q->status, "pending") != 0) {
		reg_seterr(e, 409, "not_pending", "request %lld is %s, not "
		    "pending", (long long)id, q->status);
		db_request_clear(q);
		return -1;
	}
	return 0;
}

int
reg_request_approve(struct reg *r, struct db *db, int64_t id,
    const struct reg_actor *who, struct db_request *q, struct reg_err *e)
{
	struct ca_issued is = { 0 };
	struct ca_csr *req = NULL;
	struct db_cert_new c;
	struct db_audit_row a;
	struct db_user u;
	struct db_err de;
	const char *action;
	int64_t cert_id;
	int rv;

	if (admin_only(who, e) == -1 || request_pending(db, id, q, e) == -1)
		return -1;
	if (db_user_by_id(db, q->user_id, &u, &de) == -1) {
		user_dberr(e, &de, q->userid);
		goto err;
	}
	if (!u.enabled) {
		reg_seterr(e, 409, "user_disabled", "the account %s is "
		    "disabled: enable it first, or reject the request",
		    u.userid);
		goto err;
	}
	if ((req = reg_csr(q->csr, strlen(q->csr), e)) == NULL ||
	    reg_sign(r, &u, req, who, &is, &action, e) == -1)
		goto err;
	c = cert_row(r, u.id, &is);
	a = (struct db_audit_row){ who->name, "request.approve", u.userid,
		who->source };
	/* The decision fails (nothing written) if another came first. */
	if (db_begin(db, &de) == -1 ||
	    db_cert_record(db, &c, &a, &cert_id, &de) == -1 ||
	    db_request_decide(db, id, 1, who->name, NULL, cert_id, &de) == -1)
		goto dberr;
	rv = db_commit(db, &de);
	reg_changed(r, u.id, CHANGED_LISTING);
	if (rv == -1)
		goto dberr;
	snprintf(q->serial, sizeof(q->serial), "%s", is.serial);
	snprintf(q->status, sizeof(q->status), "approved");
	ca_csr_free(req);
	ca_issued_clear(&is);
	return 0;
dberr:
	db_rollback(db);
	reg_err_from_db(e, &de);
	if (de.code == DB_ERR_NOTFOUND)
		reg_seterr(e, 409, "not_pending", "%s", de.msg);
err:
	ca_csr_free(req);
	ca_issued_clear(&is);
	db_request_clear(q);
	return -1;
}

int
reg_request_reject(struct reg *r, struct db *db, int64_t id,
    const char *reason, const struct reg_actor *who, struct reg_err *e)
{
	struct db_request q;
	struct db_err de;
	char detail[300];

	(void)r;
	if (admin_only(who, e) == -1)
		return -1;
	if (reason != NULL && strlen(reason) > 256) {
		reg_seterr(e, 400, "too_long", "a reason has at most 256 bytes");
		return -1;
	}
	if (reason != NULL && *reason != '\0' && !ca_name_ok(reason)) {
		reg_seterr(e, 400, "invalid_value", "a reason is UTF-8 text "
		    "without control characters");
		return -1;
	}
	if (request_pending(db, id, &q, e) == -1)
		return -1;
	db_request_clear(&q);
	snprintf(detail, sizeof(detail), "request %lld%s%s", (long long)id,
	    reason && *reason ? ": " : "", reason ? reason : "");
	if (db_begin(db, &de) == -1 ||
	    db_request_decide(db, id, 0, who->name, reason, 0, &de) == -1 ||
	    db_audit(db, who->name, "request.reject", q.userid, NULL,
		who->source, detail, &de) == -1 ||
	    db_commit(db, &de) == -1) {
		db_rollback(db);
		reg_err_from_db(e, &de);
		if (de.code == DB_ERR_NOTFOUND)
			reg_seterr(e, 409, "not_pending", "%s", de.msg);
		return -1;
	}
	return 0;
}

/* ---- federation ------------------------------------------------------ */

/* A CA fingerprint as people paste it: 64 hex digits, ':' allowed. */
static int
fp_normalize(const char *in, char out[65])
{
	size_t n = 0;

	for (; *in != '\0'; in++) {
		if (*in == ':')
			continue;
		if (!isxdigit((unsigned char)*in) || n == 64)
			return -1;
		out[n++] = (char)tolower((unsigned char)*in);
	}
	out[n] = '\0';
	return n == 64 ? 0 : -1;
}

/* The domain of a rule, checked and in lower case; not our own. */
static int
fed_domain(struct reg *r, const char *in, char out[254], struct reg_err *e)
{
	const char *why;

	if (irp_domain_normalize(in, out, 254, &why) == -1) {
		reg_seterr(e, 400, "invalid_domain", "%.80s: %s", in, why);
		return -1;
	}
	if (strcasecmp(out, reg_conf(r)->domain) == 0) {
		reg_seterr(e, 400, "invalid_domain", "%s is this registry's own "
		    "domain: its CA is trusted without a rule", out);
		return -1;
	}
	return 0;
}

int
reg_fed_set(struct reg *r, struct db *db, const char *domain,
    const char *rule, const char *ca_sha256, const struct reg_actor *who,
    struct reg_err *e)
{
	struct db_fed f = { 0 };
	struct db_err de;
	char detail[96];

	if (admin_only(who, e) == -1 || fed_domain(r, domain, f.domain, e) == -1)
		return -1;
	if (strcmp(rule, "pinned") != 0 && strcmp(rule, "dane") != 0 &&
	    strcmp(rule, "refused") != 0) {
		reg_seterr(e, 400, "invalid_value", "a federation rule is "
		    "pinned, dane or refused, not \"%.32s\"", rule);
		return -1;
	}
	if ((strcmp(rule, "pinned") == 0) != (ca_sha256 != NULL) ||
	    (ca_sha256 != NULL && fp_normalize(ca_sha256, f.ca_sha256) == -1)) {
		reg_seterr(e, 400, "invalid_value", "a pinned domain needs its "
		    "CA's SHA-256 fingerprint (64 hex digits, as 'dirctl ca' "
		    "prints it there), and only a pinned one");
		return -1;
	}
	snprintf(f.rule, sizeof(f.rule), "%s", rule);
	snprintf(f.added_by, sizeof(f.added_by), "%s", who->name);
	snprintf(detail, sizeof(detail), "rule=%s%s%s", f.rule,
	    f.ca_sha256[0] ? " ca=" : "", f.ca_sha256);
	if (db_begin(db, &de) == -1 || db_fed_set(db, &f, &de) == -1 ||
	    db_audit(db, who->name, "federation.set", f.domain, NULL,
		who->source, detail, &de) == -1 ||
	    db_commit(db, &de) == -1) {
		db_rollback(db);
		reg_changed(r, 0, CHANGED_ALL);
		reg_err_from_db(e, &de);
		return -1;
	}
	reg_changed(r, 0, CHANGED_ALL);
	return 0;
}

int
reg_fed_remove(struct reg *r, struct db *db, const char *domain,
    const struct reg_actor *who, struct reg_err *e)
{
	char d[254];
	struct db_err de;

	if (admin_only(who, e) == -1 || fed_domain(r, domain, d, e) == -1)
		return -1;
	if (db_begin(db, &de) == -1 || db_fed_remove(db, d, &de) == -1 ||
	    db_audit(db, who->name, "federation.remove", d, NULL, who->source,
		NULL, &de) == -1 ||
	    db_commit(db, &de) == -1) {
		db_rollback(db);
		reg_changed(r, 0, CHANGED_ALL);
		reg_err_from_db(e, &de);
		return -1;
	}
	reg_changed(r, 0, CHANGED_ALL);
	return 0;
}

/* ---- a device's addresses ------------------------------------------- */

/* Only a device, by the certificate it presented, has addresses. */
static int
own_device(const struct reg_actor *who, struct reg_err *e)
{
	if (who->by == REG_BY_CERT && who->cert_id > 0 && who->user_id > 0)
		return 0;
	reg_seterr(e, 403, "forbidden", "addresses belong to a device: "
	    "present its certificate");
	return -1;
}

/*
 * An IP literal as users write them: IPv4 dotted quad or IPv6, no zone,
 * no prefix; written back in canonical form (v4-mapped as IPv4).
 */
static int
ip_canonical(const char *s, char *out, size_t len)
{
	unsigned char buf[16];

	if (strnlen(s, 64) >= 64)
		return -1;
	if (inet_pton(AF_INET, s, buf) == 1)
		return inet_ntop(AF_INET, buf, out, (socklen_t)len) ? 0 : -1;
	if (inet_pton(AF_INET6, s, buf) != 1)
		return -1;
	if (IN6_IS_ADDR_V4MAPPED((struct in6_addr *)buf))
		return inet_ntop(AF_INET, buf + 12, out, (socklen_t)len) ?
		    0 : -1;
	return inet_ntop(AF_INET6, buf, out, (socklen_t)len) ? 0 : -1;
}

/* The declared addresses, each against its rule, in canonical form. */
static int
addr_check(struct db_addr *addrs, size_t n, struct reg_err *e)
{
	char ip[sizeof(addrs[0].ip)] = { 0 };
	size_t i;

	if (n < 1 || n > IRP_ADDR_MAX) {
		reg_seterr(e, 400, "too_many_addresses", "give 1 to %d "
		    "addresses, not %zu", IRP_ADDR_MAX, n);
		return -1;
	}
	for (i = 0; i < n; i++) {
		if (ip_canonical(addrs[i].ip, ip, sizeof(ip)) == -1) {
			reg_seterr(e, 400, "invalid_address", "address %zu: "
			    "\"%.64s\" is not an IPv4 or IPv6 address", i,
			    addrs[i].ip);
			return -1;
		}
		memcpy(addrs[i].ip, ip, sizeof(ip));
		if (addrs[i].port < 1 || addrs[i].port > 65535) {
			reg_seterr(e, 400, "invalid_port", "address %zu: port "
			    "%d is not in 1-65535", i, addrs[i].port);
			return -1;
		}
		addrs[i].observed = 0;
	}
	return 0;
}

/* The declared addresses and the observed one fit a job. */
_Static_assert(IRP_ADDR_MAX + 1 <= DB_ADDR_SET_MAX, "addresses of a job");

int
reg_addr_begin(struct reg *r, const struct reg_actor *who,
    struct db_addr *addrs, size_t n, const long long *asked,
    struct commit_job *job, struct reg_err *e)
{
	const struct conf *c = reg_conf(r);
	int ttl;

	if (own_device(who, e) == -1 || addr_check(addrs, n, e) == -1)
		return -1;
	/*
	 * No lifetime at all, or a negative one, is a client's mistake:
	 * refused.  A positive one is clamped, not refused: the server
	 * decides its range.
	 */
	if (asked != NULL && *asked < 1) {
		reg_seterr(e, 400, "invalid_value", "\"ttl\" must be 1 second "
		    "or more (it is kept within %d-%d), not %lld", c->ttl_min,
		    c->ttl_max, *asked);
		return -1;
	}
	if (asked == NULL)
		ttl = c->ttl_default;
	else if (*asked < c->ttl_min)
		ttl = c->ttl_min;
	else if (*asked > c->ttl_max)
		ttl = c->ttl_max;
	else
		ttl = (int)*asked;
	memset(job, 0, sizeof(*job));
	job->kind = COMMIT_ADDR;
	memcpy(job->addrs, addrs, n * sizeof(*addrs));
	/* The address the request came from, beside the declared ones. */
	if (who->source != NULL &&
	    ip_canonical(who->source, job->addrs[n].ip,
		sizeof(job->addrs[n].ip)) == 0) {
		job->addrs[n].port = addrs[0].port;
		job->addrs[n].observed = 1;
		n++;
	}
	job->set.cert_id = who->cert_id;
	job->set.user_id = who->user_id;
	job->set.addrs = job->addrs;
	job->set.n = n;
	job->set.ttl = ttl;
	return 0;
}

int
reg_addr_end(struct reg *r, const struct commit_job *job, struct reg_err *e)
{
	reg_changed(r, job->set.user_id, CHANGED_LISTING);
	if (job->rv == -1) {
		reg_err_from_db(e, &job->err);
		return -1;
	}
	return 0;
}

void
reg_write(struct reg *r, struct db *db, struct commit_job *job)
{
	if (db == NULL)
		commit_submit(r->commit, job);
	else
		commit_now(db, job, reg_crl_seal, r);
}

int
reg_addr_del(struct reg *r, struct db *db, const struct reg_actor *who,
    long *n, struct reg_err *e)
{
	struct db_err de;

	*n = 0;
	if (own_device(who, e) == -1)
		return -1;
	if (db_addr_delete(db, who->cert_id, n, &de) == -1) {
		reg_err_from_db(e, &de);
		return -1;
	}
	if (*n > 0)
		reg_changed(r, who->user_id, CHANGED_LISTING);
	return 0;
}

/* ---- backups --------------------------------------------------------- */

/* The actor's own backup: a user, by a proof a backup may be had with. */
static int
own_backup(const struct reg_actor *who, int by_secret, struct reg_err *e)
{
	if (who->user_id > 0 && who->userid != NULL &&
	    (who->by == REG_BY_CERT ||
		(by_secret && (who->by == REG_BY_CODE ||
				  who->by == REG_BY_PASSWORD))))
		return 0;
	reg_seterr(e, 403, "forbidden", "a backup is its user's alone%s",
	    by_secret ? "" : ", stored with their certificate");
	return -1;
}

int
reg_backup_put(struct reg *r, struct db *db, const struct reg_actor *who,
    const unsigned char *data, size_t len, unsigned char sha256[32],
    struct reg_err *e)
{
	unsigned int mdlen = 32;
	struct ca_err ce;
	struct db_err de;
	char detail[48];

	if (own_backup(who, 0, e) == -1)
		return -1;
	if (len == 0) {
		reg_seterr(e, 400, "empty_body",
		    "send the PKCS#12 file as the body");
		return -1;
	}
	if (len > (size_t)reg_conf(r)->backup_max) {
		reg_seterr(e, 413, "body_too_large", "a backup has at most %d "
		    "bytes", reg_conf(r)->backup_max);
		return -1;
	}
	if (ca_p12_check(data, len, &ce) == -1) {
		reg_seterr(e, 400, "invalid_pkcs12", "%s", ce.msg);
		return -1;
	}
	if (EVP_Digest(data, len, sha256, &mdlen, EVP_sha256(), NULL) != 1) {
		reg_seterr(e, 500, "internal_error", "no SHA-256 available");
		return -1;
	}
	snprintf(detail, sizeof(detail), "size=%zu", len);
	if (db_begin(db, &de) == -1 ||
	    db_backup_put(db, who->user_id, data, len, sha256, &de) == -1 ||
	    db_audit(db, who->name, "backup.store", who->userid, who->serial,
		who->source, detail, &de) == -1 ||
	    db_commit(db, &de) == -1) {
		db_rollback(db);
		reg_err_from_db(e, &de);
		return -1;
	}
	return 0;
}

int
reg_backup_get(struct reg *r, struct db *db, const struct reg_actor *who,
    unsigned char **data, size_t *len, struct reg_err *e)
{
	const char *by = who->by == REG_BY_CERT ? "by=certificate" :
	    who->by == REG_BY_CODE		    ? "by=code" :
						      "by=password";
	struct db_err de;
	time_t when;

	(void)r;
	*data = NULL;
	if (own_backup(who, 1, e) == -1)
		goto err;
	if (!db_in_tx(db) && db_begin(db, &de) == -1)
		goto dberr;
	if (db_backup_get(db, who->user_id, data, len, &when, &de) == -1) {
		if (de.code == DB_ERR_NOTFOUND) {
			reg_seterr(e, 404, "no_backup", "%s has no backup "
			    "stored", who->userid);
			goto err;
		}
		goto dberr;
	}
	if (db_audit(db, who->name, "backup.fetch", who->userid,
		who->by == REG_BY_CERT ? who->serial : NULL, who->source, by,
		&de) == -1 ||
	    db_commit(db, &de) == -1)
		goto dberr;
	return 0;
dberr:
	reg_err_from_db(e, &de);
err:
	db_rollback(db);
	free(*data);
	*data = NULL;
	return -1;
}

int
reg_password_hash(const char *password, char *out, size_t outlen,
    struct reg_err *e)
{
	unsigned char salt[16];
	int rc;

	/* One rule for dird's admin API and dirctl: an empty password would
	 * make HTTP Basic "userid:" a login. */
	if (strlen(password) < REG_PASSWORD_MIN) {
		reg_seterr(e, 400, "weak_password", "a password needs at least "
		    "%d characters", REG_PASSWORD_MIN);
		return -1;
	}
	if (RAND_bytes(salt, sizeof(salt)) != 1) {
		reg_seterr(e, 500, "internal_error", "no randomness available");
		return -1;
	}
	rc = argon2id_hash_encoded(REG_ARGON2_T, REG_ARGON2_M, REG_ARGON2_P,
	    password, strlen(password), salt, sizeof(salt), 32, out, outlen);
	if (rc != ARGON2_OK) {
		reg_seterr(e, 500, "internal_error", "password hashing failed: "
		    "%s", argon2_error_message(rc));
		return -1;
	}
	return 0;
}

int
reg_password_verify(const char *encoded, const char *password)
{
	if (encoded == NULL || *encoded == '\0')
		return 0;
	return argon2id_verify(encoded, password, strlen(password)) ==
	    ARGON2_OK;
}

/* ---- the audit log --------------------------------------------------- */

struct audit_walk {
	unsigned char prev[DB_AUDIT_CHAINS][32];
	struct reg_audit_report *rep;
	void (*problem)(int64_t id, const char *what, void *arg);
	void *arg;
};

static void
audit_problem(struct audit_walk *w, int64_t id, const char *what)
{
	w->rep->problems++;
	if (w->problem != NULL)
		w->problem(id, what, w->arg);
}

static int
audit_row(int64_t id, int chain, const char *payload,
    const unsigned char *prev, const unsigned char *hash, void *arg)
{
	struct audit_walk *w = arg;
	unsigned char want[32];
	unsigned int len = 32;
	EVP_MD_CTX *ctx;
	char what[128];

	w->rep->rows++;
	if (chain < 0 || chain >= DB_AUDIT_CHAINS) {
		snprintf(what, sizeof(what), "on chain %d, which does not "
		    "exist: altered", chain);
		audit_problem(w, id, what);
		return 0;
	}
	/* The hash computed here, independently of the database's. */
	if ((ctx = EVP_MD_CTX_new()) == NULL)
		return -1;
	EVP_DigestInit_ex(ctx, EVP_sha256(), NULL);
	EVP_DigestUpdate(ctx, prev, 32);
	EVP_DigestUpdate(ctx, payload, strlen(payload));
	EVP_DigestFinal_ex(ctx, want, &len);
	EVP_MD_CTX_free(ctx);
	if (CRYPTO_memcmp(prev, w->prev[chain], 32) != 0) {
		snprintf(what, sizeof(what), "chain broken: a row before it on "
		    "chain %d was removed, altered or moved", chain);
		audit_problem(w, id, what);
	}
	if (CRYPTO_memcmp(want, hash, 32) != 0)
		audit_problem(w, id, "content does not match its hash: altered");
	memcpy(w->prev[chain], hash, 32);
	return 0;
}

int
reg_audit_verify(struct reg *r, struct db *db, struct reg_audit_report *rep,
    void (*problem)(int64_t id, const char *what, void *arg), void *arg,
    struct reg_err *e)
{
	struct audit_walk w;
	struct db_err de;

	(void)r;
	memset(&w, 0, sizeof(w));
	memset(rep, 0, sizeof(*rep));
	w.rep = rep;
	w.problem = problem;
	w.arg = arg;
	if (db_audit_rows(db, audit_row, &w, &de) == -1) {
		reg_err_from_db(e, &de);
		return -1;
	}
	return 0;
}

/*
 * peertls.c - PeerTLS contexts and the verification policy.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/ocsp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "ca.h"
#include "peertls.h"
#include "peertls_internal.h"

/*
 * Good answers of the registry, by serial, kept until their nextUpdate:
 * used only when the registry can not be asked for a new one.
 */
#define PT_OCSP_CACHE 64
/* Clock skew allowed on an OCSP answer's thisUpdate / nextUpdate. */
#define PT_OCSP_SKEW 300

struct ocsp_good {
	char serial[41];
	time_t this_update, next_update;
};

struct peertls {
	SSL_CTX *ctx;
	const struct keystore *ks;
	const struct ks_list *allow;
	const struct ks_list *deny;
	int contact_requests;
	X509 *own; /* our certificate, to refuse it from a peer */
	char domain[PT_DOMAIN_MAX]; /* of our user id: whose CA is ca.pem */
	time_t crl_last, crl_next;
	pt_ocsp_fn *ocsp;
	void *ocsp_arg;
	pt_vouch_fn *vouch;
	pt_vouch_gate_fn *vouch_gate;
	void *vouch_arg;
	struct ocsp_good good[PT_OCSP_CACHE];
};

static const unsigned char alpn_wire[] = "\x07" PT_ALPN;

void
pt_ssl_error(char *buf, size_t len, const char *what)
{
	unsigned long e, first = 0;
	char tmp[200];

	while ((e = ERR_get_error()) != 0)
		if (first == 0)
			first = e;
	if (first == 0) {
		snprintf(buf, len, "%s failed", what);
		return;
	}
	ERR_error_string_n(first, tmp, sizeof(tmp));
	snprintf(buf, len, "%s: %s", what, tmp);
}

/*
 * The subject's first UID as UTF-8, read whole as ca_cert_info reads it
 * for pt_peer_info, so that the user id the verify callback judges is
 * the one the user is shown (the raw bytes of a BMPString or Latin-1 UID
 * are another name).  "" when there is none, or one that does not fit or
 * holds a NUL.
 */
void
pt_cert_uid(X509 *x, char *out, size_t len)
{
	X509_NAME *n = X509_get_subject_name(x);
	const X509_NAME_ENTRY *e;
	unsigned char *utf8 = NULL;
	int i, ulen;

	out[0] = '\0';
	if (n == NULL || (i = X509_NAME_get_index_by_NID(n, NID_userId,
	    -1)) < 0 || (e = X509_NAME_get_entry(n, i)) == NULL ||
	    (ulen = ASN1_STRING_to_UTF8(&utf8,
	    X509_NAME_ENTRY_get_data(e))) < 0)
		return;
	if ((size_t)ulen < len && memchr(utf8, '\0', (size_t)ulen) == NULL) {
		memcpy(out, utf8, (size_t)ulen);
		out[ulen] = '\0';
	}
	OPENSSL_free(utf8);
}

void
pt_uid_domain(const char *uid, char *out, size_t len)
{
	const char *at = strrchr(uid, '@');
	size_t i = 0;

	for (at = at ? at + 1 : ""; at[i] != '\0' && i + 1 < len; i++)
		out[i] = (char)tolower((unsigned char)at[i]);
	out[i] = '\0';
}

/*
 * The SHA-256 of x's DER as 64 lower-case hex digits, as the registry
 * gives each device's fingerprint; "" when it can not be had.
 */
static void
cert_sha256(X509 *x, char out[65])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int n = 0, i;

	out[0] = '\0';
	if (X509_digest(x, EVP_sha256(), md, &n) != 1 || n != 32)
		return;
	for (i = 0; i < n; i++)
		snprintf(out + 2 * i, 3, "%02x", md[i]);
}

static int
refuse(X509_STORE_CTX *sctx, struct pt_conn *pc, const char *fmt,
    const char *a, const char *b)
{
	snprintf(pc->reason, sizeof(pc->reason), fmt, a, b);
	X509_STORE_CTX_set_error(sctx, X509_V_ERR_APPLICATION_VERIFICATION);
	return 0;
}

static struct ocsp_good *
good_find(struct peertls *pt, const char *serial)
{
	size_t i;

	for (i = 0; i < PT_OCSP_CACHE; i++)
		if (strcmp(pt->good[i].serial, serial) == 0)
			return &pt->good[i];
	return NULL;
}

/* Keep a good answer; the slot of the one that ends first goes. */
static void
good_put(struct peertls *pt, const char *serial, time_t this_update,
    time_t next_update)
{
	struct ocsp_good *g = good_find(pt, serial);
	size_t i;

	if (g == NULL) {
		g = &pt->good[0];
		for (i = 1; i < PT_OCSP_CACHE; i++)
			if (pt->good[i].next_update < g->next_update)
				g = &pt->good[i];
	}
	snprintf(g->serial, sizeof(g->serial), "%s", serial);
	g->this_update = this_update;
	g->next_update = next_update;
}

static void
good_drop(struct peertls *pt, const char *serial)
{
	struct ocsp_good *g = good_find(pt, serial);

	if (g != NULL)
		memset(g, 0, sizeof(*g));
}

static time_t
asn1_epoch(const ASN1_GENERALIZEDTIME *t)
{
	struct tm tm;

	if (t == NULL || ASN1_TIME_to_tm(t, &tm) != 1)
		return 0;
	return timegm(&tm);
}

void
pt_cert_serial(X509 *x, char out[41])
{
	struct ca_cert_info info;
	struct ca_err cerr;
	unsigned char *der = NULL;
	int len;

	out[0] = '\0';
	if ((len = i2d_X509(x, &der)) > 0 &&
	    ca_cert_info(der, (size_t)len, &info, &cerr) == 0)
		snprintf(out, 41, "%s", info.serial);
	OPENSSL_free(der);
}

int
pt_ocsp_judge(struct peertls *pt, struct pt_conn *pc,
    const unsigned char *der, size_t len, OCSP_REQUEST *req,
    OCSP_CERTID *id, X509 *issuer, const char *serial)
{
	OCSP_RESPONSE *resp = NULL;
	OCSP_BASICRESP *bs = NULL;
	STACK_OF(X509) *signer = NULL;
	ASN1_GENERALIZEDTIME *rev, *thisupd, *nextupd;
	const unsigned char *p = der;
	int status, reason, rv = -1;

	if (len > PT_OCSP_MAX ||
	    (resp = d2i_OCSP_RESPONSE(NULL, &p, (long)len)) == NULL ||
	    p != der + len ||
	    OCSP_response_status(resp) != OCSP_RESPONSE_STATUS_SUCCESSFUL ||
	    (bs = OCSP_response_get1_basic(resp)) == NULL) {
		snprintf(pc->rev_why, sizeof(pc->rev_why), "the registry's "
		    "OCSP answer is not usable");
		goto out;
	}
	/*
	 * Signed by the pinned CA's own key (no delegated responder), about
	 * this certificate, for this request (our nonce), and current.
	 */
	if ((signer = sk_X509_new_null()) == NULL ||
	    !sk_X509_push(signer, issuer) ||
	    OCSP_basic_verify(bs, signer, SSL_CTX_get_cert_store(pt->ctx),
	    OCSP_TRUSTOTHER | OCSP_NOINTERN) != 1 ||
	    OCSP_check_nonce(req, bs) != 1 ||
	    OCSP_resp_find_status(bs, id, &status, &reason, &rev, &thisupd,
	    &nextupd) != 1 || nextupd == NULL ||
	    OCSP_check_validity(thisupd, nextupd, PT_OCSP_SKEW, -1) != 1) {
		snprintf(pc->rev_why, sizeof(pc->rev_why), "the registry's "
		    "OCSP answer did not verify");
		goto out;
	}
	switch (status) {
	case V_OCSP_CERTSTATUS_GOOD:
		good_put(pt, serial, asn1_epoch(thisupd), asn1_epoch(nextupd));
		rv = 1;
		break;
	case V_OCSP_CERTSTATUS_REVOKED:
		good_drop(pt, serial);
		snprintf(pc->reason, sizeof(pc->reason), "peer certificate "
		    "refused: the registry says it is %s",
		    reason == OCSP_REVOKED_STATUS_CERTIFICATEHOLD ?
		    "on hold (its user is disabled)" : reason ==
		    OCSP_REVOKED_STATUS_KEYCOMPROMISE ? "revoked (key "
		    "compromise)" : "revoked");
		rv = 0;
		break;
	default:
		good_drop(pt, serial);
		snprintf(pc->reason, sizeof(pc->reason), "peer certificate "
		    "refused: the registry does not know it");
		rv = 0;
		break;
	}
out:
	ERR_clear_error();
	sk_X509_free(signer);
	OCSP_BASICRESP_free(bs);
	OCSP_RESPONSE_free(resp);
	return rv;
}

/*
 * Ask the registry about x (issued by issuer): build the request and
 * send it.  What pt_ocsp_judge says of the answer; -1 too when there is
 * no answer (pc->rev_why says why).
 */
static int
ocsp_ask(struct peertls *pt, struct pt_conn *pc, X509 *x, X509 *issuer,
    const char *serial)
{
	OCSP_REQUEST *req = NULL;
	OCSP_CERTID *id = NULL;
	unsigned char *der = NULL, *rder = NULL;
	size_t rlen = 0;
	int len, rv = -1;

	if ((req = OCSP_REQUEST_new()) == NULL ||
	    (id = OCSP_cert_to_id(EVP_sha256(), x, issuer)) == NULL ||
	    OCSP_request_add0_id(req, OCSP_CERTID_dup(id)) == NULL ||
	    OCSP_request_add1_nonce(req, NULL, -1) != 1 ||
	    (len = i2d_OCSP_REQUEST(req, &der)) <= 0) {
		snprintf(pc->rev_why, sizeof(pc->rev_why), "cannot build an "
		    "OCSP request");
		goto out;
	}
	if (pt->ocsp(pt->ocsp_arg, der, (size_t)len, &rder, &rlen,
	    pc->rev_why, sizeof(pc->rev_why)) == -1)
		goto out;
	rv = pt_ocsp_judge(pt, pc, rder, rlen, req, id, issuer, serial);
out:
	ERR_clear_error();
	OCSP_CERTID_free(id);
	OCSP_REQUEST_free(req);
	OPENSSL_free(der);
	free(rder);
	return rv;
}

/*
 * The other side's certificate x passed every other check: ask the
 * registry now; without an answer, say how it was judged instead
 * (peertls.h).  1 to go on, 0 to refuse.
 */
static int
revocation_check(X509_STORE_CTX *sctx, struct pt_conn *pc, X509 *x)
{
	struct peertls *pt = pc->pt;
	STACK_OF(X509) *chain = X509_STORE_CTX_get0_chain(sctx);
	struct ocsp_good *g;
	char serial[41];
	time_t now = time(NULL);
	int r = -1;

	pt_cert_serial(x, serial);
	if (pt->ocsp == NULL)
		snprintf(pc->rev_why, sizeof(pc->rev_why), "no registry to "
		    "ask");
	else if (serial[0] == '\0' || chain == NULL ||
	    sk_X509_num(chain) < 2)
		snprintf(pc->rev_why, sizeof(pc->rev_why), "cannot read the "
		    "certificate");
	else
		r = ocsp_ask(pt, pc, x, sk_X509_value(chain, 1), serial);
	if (r == 0) {
		X509_STORE_CTX_set_error(sctx,
		    X509_V_ERR_APPLICATION_VERIFICATION);
		return 0;
	}
	if (r == 1) {
		pc->rev = PT_REV_ONLINE;
		return 1;
	}
	if ((g = good_find(pt, serial)) != NULL && serial[0] != '\0' &&
	    now < g->next_update) {
		pc->rev = PT_REV_CACHED;
		pc->rev_time = g->this_update;
	} else if (pc->crl_stale) {
		pc->rev = PT_REV_UNKNOWN;
		pc->rev_time = pt->crl_next;
	} else {
		pc->rev = PT_REV_CRL;
		pc->rev_time = pt->crl_last;
	}
	return 1;
}

/*
 * A certificate of the chain failed OpenSSL's own checks (preverify_ok
 * 0): 1 when that is let pass (see below), else 0 with the reason.
 */
static int
verify_failed(X509_STORE_CTX *sctx, struct pt_conn *pc)
{
	int e = X509_STORE_CTX_get_error(sctx);
	X509 *x;

	/*
	 * See peertls.h: an old CRL is still enforced (OpenSSL goes on to
	 * look the certificate up in it), and flagged.  The error is
	 * cleared, or it would stay the verify result and fail the session
	 * after the handshake.
	 */
	if (e == X509_V_ERR_CRL_HAS_EXPIRED && !pc->foreign) {
		pc->crl_stale = 1;
		X509_STORE_CTX_set_error(sctx, X509_V_OK);
		return 1;
	}
	if (X509_STORE_CTX_get_error_depth(sctx) == 0 &&
	    (x = X509_STORE_CTX_get_current_cert(sctx)) != NULL)
		pt_cert_uid(x, pc->peer_uid, sizeof(pc->peer_uid));
	if (pc->reason[0] == '\0')
		snprintf(pc->reason, sizeof(pc->reason),
		    "peer certificate refused: %s%s%s%s",
		    X509_verify_cert_error_string(e), pc->foreign ?
		    " (checked against the CA your registry vouches for " : "",
		    pc->foreign ? pc->domain : "", pc->foreign ? ")" : "");
	return 0;
}

/*
 * Who may be on the other end, by the user id alone: the one we called,
 * or a caller the deny and allow lists admit.  1 to go on, 0 refused.
 */
static int
uid_admit(X509_STORE_CTX *sctx, struct pt_conn *pc, const char *uid)
{
	struct peertls *pt = pc->pt;

	if (uid[0] == '\0')
		return refuse(sctx, pc, "the peer certificate names no user "
		    "id%s%s", "", "");
	if (pc->expect[0]) {
		if (strcasecmp(uid, pc->expect) != 0)
			return refuse(sctx, pc, "identity mismatch: called %s "
			    "but %s answered", pc->expect, uid);
		return 1;
	}
	if (ks_list_match(pt->deny, uid))
		return refuse(sctx, pc, "%s is on the deny list%s", uid, "");
	if (pt->allow->n > 0 && !ks_list_match(pt->allow, uid)) {
		if (!pt->contact_requests)
			return refuse(sctx, pc, "%s is not on the allow "
			    "list%s", uid, "");
		pc->restricted = 1;
	}
	return 1;
}

/*
 * A peer of another domain whose chain verified against the CA our
 * registry vouches for: its certificate must be one the fresh lookup
 * listed (a revoked one is not).  1 to go on, 0 to refuse.
 */
static int
lookup_check(X509_STORE_CTX *sctx, struct pt_conn *pc)
{
	if (!pc->listed)
		return refuse(sctx, pc, "peer certificate refused: the "
		    "registry of %s does not list it for %s (revoked, or not "
		    "this user's)", pc->domain, pc->peer_uid);
	pc->rev = PT_REV_LOOKUP;
	/*
	 * An earlier answer stood in (our registry could not be asked, or
	 * it could not ask the other one): say so, as for an earlier OCSP
	 * answer, with the time the other registry gave it.
	 */
	if (pc->rev_why[0] != '\0') {
		pc->rev = PT_REV_CACHED;
		pc->rev_time = pc->checked;
	}
	return 1;
}

/*
 * Runs once per certificate of the chain, after OpenSSL's own checks
 * (preverify_ok).  Policy is applied at depth 0, the peer's certificate.
 */
static int
verify_cb(int preverify_ok, X509_STORE_CTX *sctx)
{
	SSL *ssl = X509_STORE_CTX_get_ex_data(sctx,
	    SSL_get_ex_data_X509_STORE_CTX_idx());
	struct pt_conn *pc = ssl ? SSL_get_app_data(ssl) : NULL;
	char uid[256];
	X509 *x;

	if (pc == NULL)
		return 0;
	if (!preverify_ok)
		return verify_failed(sctx, pc);
	if (X509_STORE_CTX_get_error_depth(sctx) != 0)
		return 1;
	x = X509_STORE_CTX_get_current_cert(sctx);
	if (x == NULL)
		return 0;
	if (X509_cmp(x, pc->pt->own) == 0)
		return refuse(sctx, pc, "the peer presented our own "
		    "certificate%s%s", "", "");
	pt_cert_uid(x, uid, sizeof(uid));
	snprintf(pc->peer_uid, sizeof(pc->peer_uid), "%s", uid);
	if (!uid_admit(sctx, pc, uid))
		return 0;
	/* Last, so that nobody refused above costs the registry a query. */
	if (pc->foreign)
		return lookup_check(sctx, pc);
	return revocation_check(sctx, pc, x);
}

/*
 * Ask our registry about uid, a user of another domain, whose
 * certificate is x: *ca (X509_free), pc->trust and pc->listed; 0, or -1
 * with the reason in pc->reason.
 */
static int
ask_vouch(struct pt_conn *pc, const char *uid, X509 *x, X509 **ca)
{
	struct peertls *pt = pc->pt;
	char fp[65], why[320] = "";

	*ca = NULL;
	cert_sha256(x, fp);
	if (pt->vouch == NULL)
		snprintf(why, sizeof(why), "no registry to ask");
	if (pt->vouch == NULL || fp[0] == '\0' ||
	    pt->vouch(pt->vouch_arg, uid, fp, ca, pc->trust,
	    sizeof(pc->trust), &pc->listed, &pc->checked, why,
	    sizeof(why)) == -1 ||
	    *ca == NULL) {
		X509_free(*ca);
		*ca = NULL;
		snprintf(pc->reason, sizeof(pc->reason), "cannot check %s "
		    "with your registry (%s)", uid, why);
		return -1;
	}
	/* An earlier answer stands in: lookup_check shows it as one. */
	if (why[0] != '\0')
		snprintf(pc->rev_why, sizeof(pc->rev_why), "%s", why);
	return 0;
}

/* What the check in fx found, as the result of sctx's (OpenSSL's). */
static void
verify_result_copy(X509_STORE_CTX *sctx, X509_STORE_CTX *fx, int ok)
{
	STACK_OF(X509) *chain;

	X509_STORE_CTX_set_error(sctx, X509_STORE_CTX_get_error(fx));
	X509_STORE_CTX_set_error_depth(sctx,
	    X509_STORE_CTX_get_error_depth(fx));
	X509_STORE_CTX_set_current_cert(sctx,
	    X509_STORE_CTX_get_current_cert(fx));
	if (ok && (chain = X509_STORE_CTX_get1_chain(fx)) != NULL)
		X509_STORE_CTX_set0_verified_chain(sctx, chain);
}

/*
 * A check of x for ssl in a store of ca alone (*st, for the caller to
 * free), with the parameters of sctx (purpose, depth) but no CRL: that
 * CA's revocations are the lookup's to tell.  NULL when out of memory.
 */
static X509_STORE_CTX *
vouched_ctx(X509_STORE_CTX *sctx, SSL *ssl, X509 *ca, X509 *x,
    X509_STORE **st)
{
	X509_VERIFY_PARAM *param = NULL;
	X509_STORE_CTX *fx = NULL;

	if ((*st = X509_STORE_new()) == NULL ||
	    X509_STORE_add_cert(*st, ca) != 1 ||
	    (fx = X509_STORE_CTX_new()) == NULL ||
	    X509_STORE_CTX_init(fx, *st, x,
	    X509_STORE_CTX_get0_untrusted(sctx)) != 1 ||
	    (param = X509_STORE_CTX_get0_param(fx)) == NULL ||
	    X509_VERIFY_PARAM_set1(param,
	    X509_STORE_CTX_get0_param(sctx)) != 1 ||
	    X509_STORE_CTX_set_ex_data(fx,
	    SSL_get_ex_data_X509_STORE_CTX_idx(), ssl) != 1) {
		X509_STORE_CTX_free(fx);
		return NULL;
	}
	X509_VERIFY_PARAM_clear_flags(param, X509_V_FLAG_CRL_CHECK |
	    X509_V_FLAG_CRL_CHECK_ALL);
	X509_STORE_CTX_set_verify_cb(fx, verify_cb);
	return fx;
}

/* OpenSSL's verdict, unchanged (a store context needs a callback). */
static int
openssl_only_cb(int preverify_ok, X509_STORE_CTX *ctx)
{
	(void)ctx;
	return preverify_ok;
}

/*
 * Whether x chains to ca, the CA our registry vouched for pc->domain
 * last (pt_vouch_gate_fn), by OpenSSL's checks alone: 1, or 0 with the
 * reason in pc->reason.  No policy here: that runs after the lookup.
 */
static int
gate_verify(X509_STORE_CTX *sctx, SSL *ssl, struct pt_conn *pc, X509 *ca,
    X509 *x)
{
	X509_STORE *st = NULL;
	X509_STORE_CTX *fx;
	int ok = 0;

	if ((fx = vouched_ctx(sctx, ssl, ca, x, &st)) == NULL) {
		snprintf(pc->reason, sizeof(pc->reason), "cannot set up the "
		    "check of a certificate: out of memory");
		goto err;
	}
	X509_STORE_CTX_set_verify_cb(fx, openssl_only_cb);
	if (!(ok = X509_verify_cert(fx) == 1)) {
		verify_result_copy(sctx, fx, 0);
		snprintf(pc->reason, sizeof(pc->reason), "peer certificate "
		    "refused: %s (checked against the CA your registry vouches "
		    "for %s, as it said last)",
		    X509_verify_cert_error_string(X509_STORE_CTX_get_error(fx)),
		    pc->domain);
	}
err:
	X509_STORE_CTX_free(fx);
	X509_STORE_free(st);
	return ok;
}

/*
 * Verify x, of uid of another domain, against the CA our registry
 * vouches for that domain, with OpenSSL's checks and verify_cb's as for
 * anyone, in a store of that CA alone (vouched_ctx).  The registry is
 * asked only when uid passes the checks of its name.
 */
static int
foreign_verify(X509_STORE_CTX *sctx, SSL *ssl, struct pt_conn *pc, X509 *x,
    const char *uid)
{
	X509_STORE *st = NULL;
	X509_STORE_CTX *fx = NULL;
	X509 *ca = NULL;
	int ok = 0;

	snprintf(pc->peer_uid, sizeof(pc->peer_uid), "%s", uid);
	/* Refused, unless the check below runs and says otherwise. */
	X509_STORE_CTX_set_error(sctx, X509_V_ERR_APPLICATION_VERIFICATION);
	if (!uid_admit(sctx, pc, uid))
		goto err;
	if (pc->pt->vouch_gate != NULL &&
	    (ca = pc->pt->vouch_gate(pc->pt->vouch_arg, pc->domain)) != NULL) {
		ok = gate_verify(sctx, ssl, pc, ca, x);
		X509_free(ca);
		ca = NULL;
		if (!ok)
			goto err;
		ok = 0;
	}
	if (ask_vouch(pc, uid, x, &ca) == -1)
		goto err;
	if ((fx = vouched_ctx(sctx, ssl, ca, x, &st)) == NULL) {
		snprintf(pc->reason, sizeof(pc->reason), "cannot set up the "
		    "check of %s's certificate: out of memory", uid);
		goto err;
	}
	ok = X509_verify_cert(fx) == 1;
	verify_result_copy(sctx, fx, ok);
err:
	ERR_clear_error();
	X509_STORE_CTX_free(fx);
	X509_STORE_free(st);
	X509_free(ca);
	return ok;
}

/*
 * OpenSSL's check of the other side's chain, in the trust store its
 * domain calls for: ours (ca.pem and the CRL, unchanged) for a peer of
 * our own domain, else the CA our registry vouches for its domain
 * (foreign_verify).  verify_cb applies the policy either way.
 */
static int
chain_verify(X509_STORE_CTX *sctx, void *arg)
{
	SSL *ssl = X509_STORE_CTX_get_ex_data(sctx,
	    SSL_get_ex_data_X509_STORE_CTX_idx());
	struct pt_conn *pc = ssl ? SSL_get_app_data(ssl) : NULL;
	X509 *x = X509_STORE_CTX_get0_cert(sctx);
	char uid[256];

	(void)arg;
	if (pc == NULL || x == NULL)
		return X509_verify_cert(sctx);
	pt_cert_uid(x, uid, sizeof(uid));
	pt_uid_domain(uid, pc->domain, sizeof(pc->domain));
	pc->foreign = pt_foreign(pc->pt, uid);
	if (!pc->foreign) {
		snprintf(pc->trust, sizeof(pc->trust), "%s", PT_TRUST_OWN);
		return X509_verify_cert(sctx);
	}
	return foreign_verify(sctx, ssl, pc, x, uid);
}

int
pt_foreign(const struct peertls *pt, const char *uid)
{
	char d[PT_DOMAIN_MAX];

	pt_uid_domain(uid, d, sizeof(d));
	return d[0] != '\0' && strcmp(d, pt->domain) != 0;
}

static int
alpn_cb(SSL *ssl, const unsigned char **out, unsigned char *outlen,
    const unsigned char *in, unsigned int inlen, void *arg)
{
	unsigned char *sel;

	if (SSL_select_next_proto(&sel, outlen, alpn_wire,
	    sizeof(alpn_wire) - 1, in, inlen) != OPENSSL_NPN_NEGOTIATED)
		return SSL_TLSEXT_ERR_ALERT_FATAL;
	*out = sel;
	return SSL_TLSEXT_ERR_OK;
}

int
pt_crl_parse(const unsigned char *der, size_t len, X509_CRL **crl,
    time_t *last, time_t *next)
{
	const unsigned char *p = der;
	const ASN1_TIME *t;
	struct tm tm;

	*crl = NULL;
	*last = *next = 0;
	if (len > PT_CRL_MAX ||
	    (*crl = d2i_X509_CRL(NULL, &p, (long)len)) == NULL)
		return -1;
	if ((t = X509_CRL_get0_nextUpdate(*crl)) != NULL &&
	    ASN1_TIME_to_tm(t, &tm) == 1)
		*next = timegm(&tm);
	if ((t = X509_CRL_get0_lastUpdate(*crl)) != NULL &&
	    ASN1_TIME_to_tm(t, &tm) == 1)
		*last = timegm(&tm);
	return 0;
}

/* A trust store with the DIR CA and its CRL. */
static X509_STORE *
load_store(const struct keystore *ks, time_t *last, time_t *next, char *err,
    size_t errlen)
{
	X509_STORE *st = NULL;
	X509_CRL *crl = NULL;
	unsigned char *der = NULL;
	size_t len;
	time_t l, n;

	if ((st = X509_STORE_new()) == NULL ||
	    X509_STORE_load_file(st, ks->ca) != 1) {
		pt_ssl_error(err, errlen, "loading the DIR CA (ca.pem)");
		goto err;
	}
	if (ks_read_file(ks->crl, PT_CRL_MAX, &der, &len) == -1) {
		snprintf(err, errlen, "loading the CRL cache (crl.der); run "
		    "dchat while the DIR is reachable: %s", strerror(errno));
		goto err;
	}
	if (pt_crl_parse(der, len, &crl, &l, &n) == -1) {
		pt_ssl_error(err, errlen, "loading the CRL cache (crl.der); "
		    "run dchat while the DIR is reachable");
		goto err;
	}
	if (X509_STORE_add_crl(st, crl) != 1 ||
	    X509_STORE_set_flags(st, X509_V_FLAG_CRL_CHECK) != 1) {
		pt_ssl_error(err, errlen, "installing the CRL");
		goto err;
	}
	*last = l;
	*next = n;
	X509_CRL_free(crl);
	free(der);
	return st;
err:
	X509_CRL_free(crl);
	free(der);
	X509_STORE_free(st);
	return NULL;
}

/*
 * A context with our key and certificate as they are in ks now (the
 * caller holds the lock: ks_lock), the CA and the CRL; *own gets our
 * certificate (a reference).
 */
static SSL_CTX *
ctx_new(const struct keystore *ks, X509 **own, time_t *crl_last,
    time_t *crl_next, char *err, size_t errlen)
{
	SSL_CTX *ctx;
	X509_STORE *st = NULL;

	*own = NULL;
	if ((ctx = SSL_CTX_new(TLS_method())) == NULL)
		goto ssl_err;
	/* TLS 1.3 only; certificate-only (no tickets, no PSK, no 0-RTT). */
	if (SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION) != 1 ||
	    SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION) != 1)
		goto ssl_err;
	SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET | SSL_OP_NO_RENEGOTIATION |
	    SSL_OP_NO_COMPRESSION);
	SSL_CTX_set_num_tickets(ctx, 0);
	SSL_CTX_set_max_early_data(ctx, 0);
	SSL_CTX_set_recv_max_early_data(ctx, 0);
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE |
	    SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	if (SSL_CTX_use_certificate_chain_file(ctx, ks->cert) != 1) {
		pt_ssl_error(err, errlen, "loading our certificate (cert.pem)");
		goto err;
	}
	if (SSL_CTX_use_PrivateKey_file(ctx, ks->key, SSL_FILETYPE_PEM) !=
	    1 || SSL_CTX_check_private_key(ctx) != 1) {
		pt_ssl_error(err, errlen, "loading our key (key.pem)");
		goto err;
	}
	if ((*own = SSL_CTX_get0_certificate(ctx)) == NULL ||
	    X509_up_ref(*own) != 1) {
		*own = NULL;
		goto ssl_err;
	}
	if ((st = load_store(ks, crl_last, crl_next, err, errlen)) == NULL)
		goto err;
	SSL_CTX_set_cert_store(ctx, st);
	/*
	 * No list of acceptable CAs goes out with the CertificateRequest
	 * (SSL_CTX_set_client_CA_list is never called): a caller of another
	 * domain, whose CA is not ours, must still present its certificate.
	 */
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER |
	    SSL_VERIFY_FAIL_IF_NO_PEER_CERT, verify_cb);
	SSL_CTX_set_cert_verify_callback(ctx, chain_verify, NULL);
	SSL_CTX_set_verify_depth(ctx, 2);
	/*
	 * Both ends check the other for the TLS client purpose: user
	 * certificates carry clientAuth and never serverAuth (ca_issue.c),
	 * so that none can pass for a TLS server such as the registry.
	 */
	if (SSL_CTX_set_purpose(ctx, X509_PURPOSE_SSL_CLIENT) != 1)
		goto ssl_err;
	SSL_CTX_set_alpn_select_cb(ctx, alpn_cb, NULL);
	return ctx;
ssl_err:
	pt_ssl_error(err, errlen, "setting up TLS");
err:
	X509_free(*own);
	*own = NULL;
	SSL_CTX_free(ctx);
	return NULL;
}

/* Our domain, by our certificate's UID: peers of others are foreign. */
static void
own_domain(struct peertls *pt)
{
	char uid[256];

	pt_cert_uid(pt->own, uid, sizeof(uid));
	pt_uid_domain(uid, pt->domain, sizeof(pt->domain));
}

struct peertls *
pt_new(const struct keystore *ks, const struct ks_list *allow,
    const struct ks_list *deny, int contact_requests, char *err,
    size_t errlen)
{
	struct peertls *pt;

	if ((pt = calloc(1, sizeof(*pt))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	pt->ks = ks;
	pt->allow = allow;
	pt->deny = deny;
	pt->contact_requests = contact_requests;
	if ((pt->ctx = ctx_new(ks, &pt->own, &pt->crl_last, &pt->crl_next,
	    err, errlen)) == NULL) {
		pt_free(pt);
		return NULL;
	}
	own_domain(pt);
	return pt;
}

int
pt_reload_identity(struct peertls *pt, const char *userid, char *err,
    size_t errlen)
{
	SSL_CTX *ctx;
	X509 *own;
	time_t last, next;
	char uid[256];

	if ((ctx = ctx_new(pt->ks, &own, &last, &next, err, errlen)) == NULL)
		return -1;
	pt_cert_uid(own, uid, sizeof(uid));
	if (strcasecmp(uid, userid) != 0) {
		snprintf(err, errlen, "the certificate is now for '%s', not "
		    "%s: restart dchat to use it", uid, userid);
		X509_free(own);
		SSL_CTX_free(ctx);
		return -1;
	}
	/* Each SSL holds its context: sessions under way keep the old
	 * one, which goes with the last of them. */
	SSL_CTX_free(pt->ctx);
	X509_free(pt->own);
	pt->ctx = ctx;
	pt->own = own;
	pt->crl_last = last;
	pt->crl_next = next;
	own_domain(pt);
	return 0;
}

int
pt_own_info(const struct peertls *pt, struct ca_cert_info *info)
{
	struct ca_err cerr;
	unsigned char *der = NULL;
	int len, rv = -1;

	if ((len = i2d_X509(pt->own, &der)) > 0 &&
	    ca_cert_info(der, (size_t)len, info, &cerr) == 0)
		rv = 0;
	OPENSSL_free(der);
	return rv;
}

void
pt_free(struct peertls *pt)
{
	if (pt == NULL)
		return;
	SSL_CTX_free(pt->ctx);
	X509_free(pt->own);
	free(pt);
}

int
pt_reload_crl(struct peertls *pt, char *err, size_t errlen)
{
	X509_STORE *st;
	time_t last, next;

	if ((st = load_store(pt->ks, &last, &next, err, errlen)) == NULL)
		return -1;
	/* Handshakes in progress verify later with the new store; an SSL
	 * only reaches the store from inside SSL_do_handshake, and we are
	 * single-threaded, so swapping here is safe. */
	SSL_CTX_set_cert_store(pt->ctx, st);
	pt->crl_last = last;
	pt->crl_next = next;
	return 0;
}

void
pt_set_ocsp(struct peertls *pt, pt_ocsp_fn *fn, void *arg)
{
	pt->ocsp = fn;
	pt->ocsp_arg = arg;
}

void
pt_set_vouch(struct peertls *pt, pt_vouch_fn *fn, pt_vouch_gate_fn *gate,
    void *arg)
{
	pt->vouch = fn;
	pt->vouch_gate = gate;
	pt->vouch_arg = arg;
}

time_t
pt_crl_next_update(const struct peertls *pt)
{
	return pt->crl_next;
}

SSL *
pt_ssl_new(struct peertls *pt, int fd, const char *expect,
    struct pt_conn *pc)
{
	SSL *ssl;

	memset(pc, 0, sizeof(*pc));
	pc->pt = pt;
	if ((ssl = SSL_new(pt->ctx)) == NULL)
		return NULL;
	if (SSL_set_fd(ssl, fd) != 1)
		goto err;
	SSL_set_app_data(ssl, pc);
	if (expect) {
		snprintf(pc->expect, sizeof(pc->expect), "%s", expect);
		if (SSL_set_alpn_protos(ssl, alpn_wire,
		    sizeof(alpn_wire) - 1) != 0)
			goto err;
		SSL_set_connect_state(ssl);
	} else
		SSL_set_accept_state(ssl);
	return ssl;
err:
	SSL_free(ssl);
	return NULL;
}

/* "2026-12-04 10:00 UTC", or "?" */
static void
utc(time_t t, char *buf, size_t len)
{
	struct tm tm;

	if (t <= 0 || gmtime_r(&t, &tm) == NULL ||
	    strftime(buf, len, "%Y-%m-%d %H:%M UTC", &tm) == 0)
		snprintf(buf, len, "?");
}

/* How the revocation status was judged, for the user (peertls.h). */
static void
rev_describe(const struct pt_conn *pc, struct pt_peer *out)
{
	static const char *const names[] = {
		[PT_REV_ONLINE] = "good", [PT_REV_CACHED] = "cached",
		[PT_REV_CRL] = "crl", [PT_REV_UNKNOWN] = "unknown",
		[PT_REV_LOOKUP] = "lookup",
	};
	char t[32];

	snprintf(out->revocation, sizeof(out->revocation), "%s",
	    names[pc->rev]);
	utc(pc->rev_time, t, sizeof(t));
	switch (pc->rev) {
	case PT_REV_ONLINE:
		snprintf(out->revocation_note, sizeof(out->revocation_note),
		    "checked with the registry now");
		break;
	case PT_REV_CACHED:
		if (pc->foreign)
			snprintf(out->revocation_note,
			    sizeof(out->revocation_note), "%s; listed as of "
			    "%s by the registry of %s, through yours",
			    pc->rev_why, t, pc->domain);
		else
			snprintf(out->revocation_note,
			    sizeof(out->revocation_note), "the registry could "
			    "not be asked (%s): its answer of %s said good",
			    pc->rev_why, t);
		break;
	case PT_REV_CRL:
		snprintf(out->revocation_note, sizeof(out->revocation_note),
		    "the registry could not be asked (%s): checked against "
		    "the CRL of %s only", pc->rev_why, t);
		break;
	case PT_REV_UNKNOWN:
		snprintf(out->revocation_note, sizeof(out->revocation_note),
		    "revocation status unknown since %s: the registry could "
		    "not be asked (%s) and the CRL has expired", t,
		    pc->rev_why);
		break;
	case PT_REV_LOOKUP:
		snprintf(out->revocation_note, sizeof(out->revocation_note),
		    "listed by the registry of %s now, asked through yours",
		    pc->domain);
		break;
	}
}

int
pt_cert_describe(X509 *x, struct pt_peer *out)
{
	struct ca_cert_info info;
	struct ca_err cerr;
	unsigned char *der = NULL;
	int len, rv = -1;

	if ((len = i2d_X509(x, &der)) <= 0 ||
	    ca_cert_info(der, (size_t)len, &info, &cerr) == -1)
		goto err;
	snprintf(out->userid, sizeof(out->userid), "%s", info.userid);
	snprintf(out->name, sizeof(out->name), "%s", info.name);
	snprintf(out->issuer, sizeof(out->issuer), "%s", info.issuer);
	snprintf(out->serial, sizeof(out->serial), "%s", info.serial);
	snprintf(out->fingerprint, sizeof(out->fingerprint), "%s",
	    info.fingerprint);
	out->not_after = info.not_after;
	rv = 0;
err:
	OPENSSL_free(der);
	return rv;
}

int
pt_own_name(SSL *ssl, char *name, size_t len)
{
	struct pt_peer me;
	X509 *x;

	if ((x = SSL_get_certificate(ssl)) == NULL ||
	    pt_cert_describe(x, &me) == -1)
		return -1;
	snprintf(name, len, "%s", me.name);
	return 0;
}

int
pt_peer_info(SSL *ssl, const struct pt_conn *pc, struct pt_peer *out,
    char *err, size_t errlen)
{
	const unsigned char *alpn = NULL;
	unsigned int alen = 0;
	unsigned char km[4];
	X509 *x = NULL;
	uint32_t v;
	int rv = -1;

	memset(out, 0, sizeof(*out));
	SSL_get0_alpn_selected(ssl, &alpn, &alen);
	if (alen != strlen(PT_ALPN) || memcmp(alpn, PT_ALPN, alen) != 0) {
		snprintf(err, errlen, "the peer does not speak %s", PT_ALPN);
		return -1;
	}
	if (SSL_version(ssl) != TLS1_3_VERSION ||
	    (x = SSL_get1_peer_certificate(ssl)) == NULL ||
	    SSL_get_verify_result(ssl) != X509_V_OK) {
		snprintf(err, errlen, "the peer's certificate was not "
		    "verified");
		goto err;
	}
	if (pt_cert_describe(x, out) == -1) {
		snprintf(err, errlen, "cannot read the peer's certificate");
		goto err;
	}
	rev_describe(pc, out);
	snprintf(out->domain, sizeof(out->domain), "%s", pc->domain);
	snprintf(out->trust, sizeof(out->trust), "%s", pc->trust);
	/* Both ends derive the same code from the session's secrets: a man
	 * in the middle would have two sessions and two different codes. */
	if (SSL_export_keying_material(ssl, km, sizeof(km),
	    "EXPORTER-dchat-verification-code",
	    strlen("EXPORTER-dchat-verification-code"), NULL, 0, 0) != 1) {
		snprintf(err, errlen, "cannot derive the verification code");
		goto err;
	}
	v = ((uint32_t)km[0] << 24 | (uint32_t)km[1] << 16 |
	    (uint32_t)km[2] << 8 | km[3]) % 1000000u;
	snprintf(out->code, sizeof(out->code), "%03u %03u", v / 1000,
	    v % 1000);
	rv = 0;
err:
	X509_free(x);
	return rv;
}

/*
 * peertls.c - PeerTLS contexts and the verification policy.
 */
#include <stdio.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "ca.h"
#include "peertls.h"

struct peertls {
	SSL_CTX *ctx;
	const struct keystore *ks;
	const struct ks_list *allow;
	const struct ks_list *deny;
	int contact_requests;
	X509 *own; /* our certificate, to refuse it from a peer */
	time_t crl_next;
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

/* The subject's UID, or "" when it has none. */
static void
cert_uid(X509 *x, char *out, size_t len)
{
	X509_NAME *n = X509_get_subject_name(x);

	out[0] = '\0';
	if (n == NULL || X509_NAME_get_text_by_NID(n, NID_userId, out,
	    (int)len) < 0)
		out[0] = '\0';
}

static int
refuse(X509_STORE_CTX *sctx, struct pt_conn *pc, const char *fmt,
    const char *a, const char *b)
{
	snprintf(pc->reason, sizeof(pc->reason), fmt, a, b);
	X509_STORE_CTX_set_error(sctx, X509_V_ERR_APPLICATION_VERIFICATION);
	return 0;
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
	struct peertls *pt;
	char uid[256];
	X509 *x;
	int e;

	if (pc == NULL)
		return 0;
	pt = pc->pt;
	if (!preverify_ok) {
		e = X509_STORE_CTX_get_error(sctx);
		/* See peertls.h: an old CRL is still enforced, and flagged. */
		if (e == X509_V_ERR_CRL_HAS_EXPIRED) {
			pc->crl_stale = 1;
			return 1;
		}
		if (X509_STORE_CTX_get_error_depth(sctx) == 0 &&
		    (x = X509_STORE_CTX_get_current_cert(sctx)) != NULL)
			cert_uid(x, pc->peer_uid, sizeof(pc->peer_uid));
		if (pc->reason[0] == '\0')
			snprintf(pc->reason, sizeof(pc->reason),
			    "peer certificate refused: %s",
			    X509_verify_cert_error_string(e));
		return 0;
	}
	if (X509_STORE_CTX_get_error_depth(sctx) != 0)
		return 1;
	x = X509_STORE_CTX_get_current_cert(sctx);
	if (x == NULL)
		return 0;
	if (X509_cmp(x, pt->own) == 0)
		return refuse(sctx, pc, "the peer presented our own "
		    "certificate%s%s", "", "");
	cert_uid(x, uid, sizeof(uid));
	snprintf(pc->peer_uid, sizeof(pc->peer_uid), "%s", uid);
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

/* A trust store with the DIR CA and its CRL. */
static X509_STORE *
load_store(const struct keystore *ks, time_t *next, char *err, size_t errlen)
{
	X509_STORE *st = NULL;
	X509_CRL *crl = NULL;
	const ASN1_TIME *nu;
	struct tm tm;
	BIO *bio = NULL;

	if ((st = X509_STORE_new()) == NULL ||
	    X509_STORE_load_file(st, ks->ca) != 1) {
		pt_ssl_error(err, errlen, "loading the DIR CA (ca.pem)");
		goto err;
	}
	if ((bio = BIO_new_file(ks->crl, "rb")) == NULL ||
	    (crl = d2i_X509_CRL_bio(bio, NULL)) == NULL) {
		pt_ssl_error(err, errlen, "loading the CRL cache (crl.der); "
		    "run dchat while the DIR is reachable");
		goto err;
	}
	if (X509_STORE_add_crl(st, crl) != 1 ||
	    X509_STORE_set_flags(st, X509_V_FLAG_CRL_CHECK) != 1) {
		pt_ssl_error(err, errlen, "installing the CRL");
		goto err;
	}
	*next = 0;
	if ((nu = X509_CRL_get0_nextUpdate(crl)) != NULL &&
	    ASN1_TIME_to_tm(nu, &tm) == 1)
		*next = timegm(&tm);
	X509_CRL_free(crl);
	BIO_free(bio);
	return st;
err:
	X509_CRL_free(crl);
	BIO_free(bio);
	X509_STORE_free(st);
	return NULL;
}

struct peertls *
pt_new(const struct keystore *ks, const struct ks_list *allow,
    const struct ks_list *deny, int contact_requests, char *err,
    size_t errlen)
{
	struct peertls *pt;
	X509_STORE *st = NULL;

	if ((pt = calloc(1, sizeof(*pt))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	pt->ks = ks;
	pt->allow = allow;
	pt->deny = deny;
	pt->contact_requests = contact_requests;
	if ((pt->ctx = SSL_CTX_new(TLS_method())) == NULL)
		goto ssl_err;
	/* TLS 1.3 only; certificate-only (no tickets, no PSK, no 0-RTT). */
	if (SSL_CTX_set_min_proto_version(pt->ctx, TLS1_3_VERSION) != 1 ||
	    SSL_CTX_set_max_proto_version(pt->ctx, TLS1_3_VERSION) != 1)
		goto ssl_err;
	SSL_CTX_set_options(pt->ctx, SSL_OP_NO_TICKET | SSL_OP_NO_RENEGOTIATION |
	    SSL_OP_NO_COMPRESSION);
	SSL_CTX_set_num_tickets(pt->ctx, 0);
	SSL_CTX_set_max_early_data(pt->ctx, 0);
	SSL_CTX_set_recv_max_early_data(pt->ctx, 0);
	SSL_CTX_set_session_cache_mode(pt->ctx, SSL_SESS_CACHE_OFF);
	SSL_CTX_set_mode(pt->ctx, SSL_MODE_ENABLE_PARTIAL_WRITE |
	    SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	if (SSL_CTX_use_certificate_chain_file(pt->ctx, ks->cert) != 1) {
		pt_ssl_error(err, errlen, "loading our certificate (cert.pem)");
		goto err;
	}
	if (SSL_CTX_use_PrivateKey_file(pt->ctx, ks->key, SSL_FILETYPE_PEM) !=
	    1 || SSL_CTX_check_private_key(pt->ctx) != 1) {
		pt_ssl_error(err, errlen, "loading our key (key.pem)");
		goto err;
	}
	if ((pt->own = SSL_CTX_get0_certificate(pt->ctx)) == NULL ||
	    X509_up_ref(pt->own) != 1)
		goto ssl_err;
	if ((st = load_store(ks, &pt->crl_next, err, errlen)) == NULL)
		goto err;
	SSL_CTX_set_cert_store(pt->ctx, st);
	SSL_CTX_set_verify(pt->ctx, SSL_VERIFY_PEER |
	    SSL_VERIFY_FAIL_IF_NO_PEER_CERT, verify_cb);
	SSL_CTX_set_verify_depth(pt->ctx, 2);
	/*
	 * Both ends check the other for the TLS client purpose: user
	 * certificates carry clientAuth and never serverAuth (ca_issue.c),
	 * so that none can pass for a TLS server such as the registry.
	 */
	if (SSL_CTX_set_purpose(pt->ctx, X509_PURPOSE_SSL_CLIENT) != 1)
		goto ssl_err;
	SSL_CTX_set_alpn_select_cb(pt->ctx, alpn_cb, NULL);
	return pt;
ssl_err:
	pt_ssl_error(err, errlen, "setting up TLS");
err:
	pt_free(pt);
	return NULL;
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
	time_t next;

	if ((st = load_store(pt->ks, &next, err, errlen)) == NULL)
		return -1;
	/* Handshakes in progress verify later with the new store; an SSL
	 * only reaches the store from inside SSL_do_handshake, and we are
	 * single-threaded, so swapping here is safe. */
	SSL_CTX_set_cert_store(pt->ctx, st);
	pt->crl_next = next;
	return 0;
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

int
pt_peer_info(SSL *ssl, const struct pt_conn *pc, struct pt_peer *out,
    char *err, size_t errlen)
{
	const unsigned char *alpn = NULL;
	unsigned int alen = 0;
	unsigned char km[4], *der = NULL;
	struct ca_cert_info info;
	struct ca_err cerr;
	X509 *x = NULL;
	uint32_t v;
	int len, rv = -1;

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
	if ((len = i2d_X509(x, &der)) <= 0 ||
	    ca_cert_info(der, (size_t)len, &info, &cerr) == -1) {
		snprintf(err, errlen, "cannot read the peer's certificate");
		goto err;
	}
	snprintf(out->userid, sizeof(out->userid), "%s", info.userid);
	snprintf(out->name, sizeof(out->name), "%s", info.name);
	snprintf(out->issuer, sizeof(out->issuer), "%s", info.issuer);
	snprintf(out->serial, sizeof(out->serial), "%s", info.serial);
	snprintf(out->fingerprint, sizeof(out->fingerprint), "%s",
	    info.fingerprint);
	out->not_after = info.not_after;
	snprintf(out->revocation, sizeof(out->revocation), "%s",
	    pc->crl_stale ? "stale CRL" : "good");
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
	OPENSSL_free(der);
	X509_free(x);
	return rv;
}

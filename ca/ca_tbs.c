/*
 * ca_tbs.c - what every signer checks before the CA key signs anything
 * (ca_signer.h): in the signer process this is all that stands between
 * a compromised registry and a certificate of its own choosing.
 *
 * The TBS is parsed by OpenSSL as the object it claims to be (wrapped
 * with the signature algorithm and an empty signature), encoded again,
 * and must come out byte for byte as it came in: canonical DER, so that
 * the object checked here is the one every reader will see.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/err.h>

#include "ca_internal.h"

/* How far a new certificate's notBefore may be from now (clock skew). */
#define TBS_SKEW (2 * 86400)

static unsigned char *
wrap(const unsigned char *tbs, size_t len, const unsigned char *alg,
    size_t alg_len, size_t *out_len, struct ca_err *err)
{
	struct ca_der_span t = { tbs, len }, a = { alg, alg_len };

	return ca_der_signed(&t, &a, NULL, 0, NULL, out_len, err);
}

/*
 * The encoding an i2d made (n bytes in *buf, which it allocated; freed
 * here) is tbs.  buf is read only here, after the i2d has run.
 */
static int
same_der(int n, unsigned char **buf, const unsigned char *tbs, size_t len)
{
	int same = n > 0 && *buf != NULL && (size_t)n == len &&
	    memcmp(*buf, tbs, len) == 0;

	OPENSSL_free(*buf);
	*buf = NULL;
	return same;
}

/* Element i of the SEQUENCE tbs is the algorithm identifier alg. */
static int
alg_at(const unsigned char *tbs, size_t len, size_t i, int first_tag,
    const unsigned char *alg, size_t alg_len, struct ca_err *err)
{
	struct ca_der_span v[12];
	size_t n;

	if (ca_der_seq_split(tbs, len, v, 12, &n, err) == -1 || n <= i ||
	    v[0].p[0] != first_tag) {
		ca_err_set(err, CA_ERR_INVALID,
		    "not a DER to-be-signed "
		    "certificate or CRL of this version");
		return -1;
	}
	if (v[i].len != alg_len || memcmp(v[i].p, alg, alg_len) != 0) {
		ca_err_set(err, CA_ERR_POLICY,
		    "the signature algorithm is "
		    "not the CA key's");
		return -1;
	}
	return 0;
}

static int
cert_validity(X509 *x, struct ca_err *err)
{
	time_t now = time(NULL), nb, na;

	if (ca_time_epoch(X509_get0_notBefore(x), &nb, err) == -1 ||
	    ca_time_epoch(X509_get0_notAfter(x), &na, err) == -1)
		return -1;
	if (nb < now - TBS_SKEW || nb > now + TBS_SKEW || na <= nb ||
	    na - nb > (time_t)(CA_DAYS_MAX + 1) * 86400) {
		ca_err_set(err, CA_ERR_POLICY,
		    "refusing a certificate valid "
		    "from other than about now, or for more than %d days",
		    CA_DAYS_MAX);
		return -1;
	}
	return 0;
}

/* A leaf certificate of this CA, and nothing that could act as a CA. */
static int
cert_check(X509 *ca, X509 *x, struct ca_err *err)
{
	uint32_t flags;
	EVP_PKEY *pub;

	if (X509_get_version(x) != X509_VERSION_3) {
		ca_err_set(err, CA_ERR_POLICY,
		    "only v3 certificates are "
		    "signed");
		return -1;
	}
	if (X509_NAME_cmp(X509_get_issuer_name(x), X509_get_subject_name(ca)) !=
	    0) {
		ca_err_set(err, CA_ERR_POLICY, "the issuer is not this CA");
		return -1;
	}
	flags = X509_get_extension_flags(x);
	if (flags & EXFLAG_INVALID) {
		ca_err_set(err, CA_ERR_INVALID, "malformed extensions");
		return -1;
	}
	/* X509_check_ca also takes a v1 self-signed certificate for one. */
	if ((flags & EXFLAG_CA) ||
	    (X509_get_key_usage(x) & (KU_KEY_CERT_SIGN | KU_CRL_SIGN)) ||
	    X509_check_ca(x) != 0) {
		ca_err_set(err, CA_ERR_POLICY,
		    "refusing to sign a CA "
		    "certificate (basicConstraints cA, keyCertSign or "
		    "cRLSign)");
		return -1;
	}
	if (X509_NAME_cmp(X509_get_subject_name(x),
		X509_get_subject_name(ca)) == 0 ||
	    (pub = X509_get0_pubkey(x)) == NULL ||
	    EVP_PKEY_eq(pub, X509_get0_pubkey(ca)) == 1) {
		ca_err_set(err, CA_ERR_POLICY,
		    "refusing a certificate with "
		    "the CA's own name or key, or an unreadable key");
		return -1;
	}
	return cert_validity(x, err);
}

static int
check_cert(X509 *ca, const unsigned char *w, size_t wlen,
    const unsigned char *tbs, size_t len, struct ca_err *err)
{
	const unsigned char *p = w;
	unsigned char *re = NULL;
	X509 *x;
	int rv = -1;

	if ((x = d2i_X509(NULL, &p, (long)wlen)) == NULL || p != w + wlen) {
		ca_err_set(err, CA_ERR_INVALID, "not a DER TBSCertificate");
		goto err;
	}
	if (!same_der(i2d_re_X509_tbs(x, &re), &re, tbs, len)) {
		ca_err_set(err, CA_ERR_INVALID,
		    "a TBSCertificate not in "
		    "canonical DER");
		goto err;
	}
	rv = cert_check(ca, x, err);
err:
	X509_free(x);
	return rv;
}

static int
check_crl(X509 *ca, const unsigned char *w, size_t wlen,
    const unsigned char *tbs, size_t len, struct ca_err *err)
{
	const unsigned char *p = w;
	const ASN1_TIME *next;
	unsigned char *re = NULL;
	X509_CRL *crl;
	int rv = -1;

	if ((crl = d2i_X509_CRL(NULL, &p, (long)wlen)) == NULL ||
	    p != w + wlen) {
		ca_err_set(err, CA_ERR_INVALID, "not a DER TBSCertList");
		goto err;
	}
	if (!same_der(i2d_re_X509_CRL_tbs(crl, &re), &re, tbs, len)) {
		ca_err_set(err, CA_ERR_INVALID,
		    "a TBSCertList not in "
		    "canonical DER");
		goto err;
	}
	if (X509_CRL_get_version(crl) != X509_CRL_VERSION_2 ||
	    X509_NAME_cmp(X509_CRL_get_issuer(crl),
		X509_get_subject_name(ca)) != 0 ||
	    (next = X509_CRL_get0_nextUpdate(crl)) == NULL ||
	    ASN1_TIME_compare(X509_CRL_get0_lastUpdate(crl), next) >= 0) {
		ca_err_set(err, CA_ERR_POLICY,
		    "only v2 CRLs of this CA, "
		    "with a nextUpdate after thisUpdate, are signed");
		goto err;
	}
	rv = 0;
err:
	X509_CRL_free(crl);
	return rv;
}

/* The answer names this CA as responder, by key or by name. */
static int
ocsp_responder_ok(X509 *ca, OCSP_BASICRESP *bs)
{
	const ASN1_OCTET_STRING *pid = NULL;
	const X509_NAME *pname = NULL;
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen;

	if (!OCSP_resp_get0_id(bs, &pid, &pname))
		return 0;
	if (pname != NULL)
		return X509_NAME_cmp(pname, X509_get_subject_name(ca)) == 0;
	return pid != NULL && X509_pubkey_digest(ca, EVP_sha1(), md, &mdlen) &&
	    (size_t)ASN1_STRING_length(pid) == mdlen &&
	    memcmp(ASN1_STRING_get0_data(pid), md, mdlen) == 0;
}

static int
check_ocsp(X509 *ca, const unsigned char *w, size_t wlen,
    const unsigned char *tbs, size_t len, struct ca_err *err)
{
	const unsigned char *p = w;
	unsigned char *re = NULL;
	OCSP_BASICRESP *bs;
	int n, rv = -1;

	if ((bs = d2i_OCSP_BASICRESP(NULL, &p, (long)wlen)) == NULL ||
	    p != w + wlen) {
		ca_err_set(err, CA_ERR_INVALID, "not a DER OCSP ResponseData");
		goto err;
	}
	if (!same_der(i2d_OCSP_RESPDATA(OCSP_resp_get0_respdata(bs), &re), &re,
		tbs, len)) {
		ca_err_set(err, CA_ERR_INVALID,
		    "an OCSP ResponseData not in "
		    "canonical DER");
		goto err;
	}
	n = OCSP_resp_count(bs);
	if (!ocsp_responder_ok(ca, bs) || n < 1 || n > CA_OCSP_REQ_MAX) {
		ca_err_set(err, CA_ERR_POLICY,
		    "only OCSP answers by this CA "
		    "about 1 to %d certificates are signed",
		    CA_OCSP_REQ_MAX);
		goto err;
	}
	rv = 0;
err:
	OCSP_BASICRESP_free(bs);
	return rv;
}

int
ca_tbs_check(X509 *ca, const unsigned char *alg, size_t alg_len,
    enum ca_tbs what, const unsigned char *tbs, size_t len, struct ca_err *err)
{
	unsigned char *w = NULL;
	size_t wlen;
	int rv = -1;

	if (tbs == NULL || len == 0 || len > CA_TBS_MAX) {
		ca_err_set(err, CA_ERR_INVALID,
		    "a to-be-signed object is 1 "
		    "to %d bytes",
		    CA_TBS_MAX);
		return -1;
	}
	/*
	 * The algorithm inside: a TBSCertificate starts [0] version,
	 * serial, signature; a TBSCertList version, signature.
	 */
	if ((what == CA_TBS_CERT &&
		alg_at(tbs, len, 2,
		    V_ASN1_CONTEXT_SPECIFIC | V_ASN1_CONSTRUCTED, alg, alg_len,
		    err) == -1) ||
	    (what == CA_TBS_CRL &&
		alg_at(tbs, len, 1, V_ASN1_INTEGER, alg, alg_len, err) == -1))
		goto err;
	if ((w = wrap(tbs, len, alg, alg_len, &wlen, err)) == NULL)
		goto err;
	switch (what) {
	case CA_TBS_CERT:
		rv = check_cert(ca, w, wlen, tbs, len, err);
		break;
	case CA_TBS_CRL:
		rv = check_crl(ca, w, wlen, tbs, len, err);
		break;
	case CA_TBS_OCSP:
		rv = check_ocsp(ca, w, wlen, tbs, len, err);
		break;
	default:
		ca_err_set(err, CA_ERR_INVALID, "unknown kind of object %d",
		    (int)what);
		break;
	}
err:
	free(w);
	ERR_clear_error();
	return rv;
}

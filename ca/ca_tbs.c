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

#include <openssl/asn1t.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>

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

/* TBS_CERT and TBS_SPKI (ca_internal.h says why they exist). */
ASN1_SEQUENCE(TBS_SPKI) = {
	ASN1_SIMPLE(TBS_SPKI, alg, X509_ALGOR),
	ASN1_SIMPLE(TBS_SPKI, key, ASN1_BIT_STRING),
} ASN1_SEQUENCE_END(TBS_SPKI)

ASN1_SEQUENCE(TBS_CERT) = {
	ASN1_EXP_OPT(TBS_CERT, version, ASN1_INTEGER, 0),
	ASN1_SIMPLE(TBS_CERT, serial, ASN1_INTEGER),
	ASN1_SIMPLE(TBS_CERT, sigalg, X509_ALGOR),
	ASN1_SIMPLE(TBS_CERT, issuer, X509_NAME),
	ASN1_SIMPLE(TBS_CERT, validity, X509_VAL),
	ASN1_SIMPLE(TBS_CERT, subject, X509_NAME),
	ASN1_SIMPLE(TBS_CERT, spki, TBS_SPKI),
	ASN1_IMP_OPT(TBS_CERT, issuer_uid, ASN1_BIT_STRING, 1),
	ASN1_IMP_OPT(TBS_CERT, subject_uid, ASN1_BIT_STRING, 2),
	ASN1_EXP_SEQUENCE_OF_OPT(TBS_CERT, exts, X509_EXTENSION, 3),
} ASN1_SEQUENCE_END(TBS_CERT)

static int
cert_validity(const X509_VAL *v, struct ca_err *err)
{
	time_t now = time(NULL), nb, na;

	if (ca_time_epoch(v->notBefore, &nb, err) == -1 ||
	    ca_time_epoch(v->notAfter, &na, err) == -1)
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

/*
 * Whether key is the CA's public key.  An EC point may be written in
 * another form (compressed, hybrid) than the CA's certificate has it,
 * so for EC keys the x coordinate decides; it also names the point's
 * negation, whose private key the CA's holder has as well.
 */
static int
is_ca_key(X509 *ca, const TBS_SPKI *k)
{
	const unsigned char *ca_bits, *bits = ASN1_STRING_get0_data(k->key);
	ASN1_OBJECT *ca_oid;
	const ASN1_OBJECT *oid;
	int ca_len, len = ASN1_STRING_length(k->key), half;

	if (!X509_PUBKEY_get0_param(&ca_oid, &ca_bits, &ca_len, NULL,
		X509_get_X509_PUBKEY(ca)))
		return 1; /* unreadable: refuse rather than guess */
	X509_ALGOR_get0(&oid, NULL, NULL, k->alg);
	if (OBJ_cmp(oid, ca_oid) != 0)
		return 0;
	if (OBJ_obj2nid(oid) == NID_X9_62_id_ecPublicKey && ca_len > 1) {
		half = ca_bits[0] == 0x04 ? (ca_len - 1) / 2 : ca_len - 1;
		return len > half &&
		    memcmp(bits + 1, ca_bits + 1, (size_t)half) == 0;
	}
	return len == ca_len && memcmp(bits, ca_bits, (size_t)len) == 0;
}

/* The extensions this CA puts in a leaf: nothing else is signed. */
static const int leaf_ext_nids[] = { NID_basic_constraints, NID_key_usage,
	NID_ext_key_usage, NID_subject_key_identifier,
	NID_authority_key_identifier, NID_subject_alt_name,
	NID_crl_distribution_points, NID_info_access };

/* One extension: known, readable, once, and not one that makes a CA. */
static int
ext_check(const STACK_OF(X509_EXTENSION) * exts, int i, struct ca_err *err)
{
	X509_EXTENSION *ext = sk_X509_EXTENSION_value(exts, i);
	int nid = OBJ_obj2nid(X509_EXTENSION_get_object(ext)), ca = 0;
	BASIC_CONSTRAINTS *bc;
	ASN1_BIT_STRING *ku;
	size_t k;
	void *v;

	for (k = 0; k < sizeof(leaf_ext_nids) / sizeof(leaf_ext_nids[0]); k++)
		if (leaf_ext_nids[k] == nid)
			break;
	if (k == sizeof(leaf_ext_nids) / sizeof(leaf_ext_nids[0])) {
		ca_err_set(err, CA_ERR_POLICY,
		    "an extension this CA never "
		    "issues (%s)",
		    OBJ_nid2sn(nid));
		return -1;
	}
	if (X509v3_get_ext_by_NID(exts, nid, i) != -1) {
		ca_err_set(err, CA_ERR_INVALID,
		    "malformed extensions "
		    "(%s twice)",
		    OBJ_nid2sn(nid));
		return -1;
	}
	if ((v = X509V3_EXT_d2i(ext)) == NULL) {
		ca_err_set(err, CA_ERR_INVALID, "malformed extensions (%s)",
		    OBJ_nid2sn(nid));
		return -1;
	}
	if (nid == NID_basic_constraints) {
		bc = v;
		ca = bc->ca != 0;
		BASIC_CONSTRAINTS_free(bc);
	} else if (nid == NID_key_usage) {
		ku = v;
		ca = ASN1_BIT_STRING_get_bit(ku, 5) ||
		    ASN1_BIT_STRING_get_bit(ku, 6);
		ASN1_BIT_STRING_free(ku);
	} else {
		/* Every extension of leaf_ext_nids has an ASN.1 item. */
		ASN1_item_free(v, ASN1_ITEM_ptr(X509V3_EXT_get(ext)->it));
	}
	if (ca) {
		ca_err_set(err, CA_ERR_POLICY,
		    "refusing to sign a CA "
		    "certificate (basicConstraints cA, keyCertSign or "
		    "cRLSign)");
		return -1;
	}
	return 0;
}

/* A leaf certificate of this CA, and nothing that could act as a CA. */
static int
cert_check(X509 *ca, const TBS_CERT *t, struct ca_err *err)
{
	int i;

	if (t->version == NULL || ASN1_INTEGER_get(t->version) != 2 ||
	    t->issuer_uid != NULL || t->subject_uid != NULL) {
		ca_err_set(err, CA_ERR_POLICY,
		    "only v3 certificates, without unique identifiers, are "
		    "signed");
		return -1;
	}
	if (X509_NAME_cmp(t->issuer, X509_get_subject_name(ca)) != 0) {
		ca_err_set(err, CA_ERR_POLICY, "the issuer is not this CA");
		return -1;
	}
	for (i = 0; i < sk_X509_EXTENSION_num(t->exts); i++)
		if (ext_check(t->exts, i, err) == -1)
			return -1;
	if (X509_NAME_cmp(t->subject, X509_get_subject_name(ca)) == 0 ||
	    is_ca_key(ca, t->spki)) {
		ca_err_set(err, CA_ERR_POLICY,
		    "refusing a certificate with "
		    "the CA's own name or key, or an unreadable key");
		return -1;
	}
	return cert_validity(t->validity, err);
}

static int
check_cert(X509 *ca, const unsigned char *tbs, size_t len, struct ca_err *err)
{
	const unsigned char *p = tbs;
	unsigned char *re = NULL;
	TBS_CERT *t;
	int rv = -1;

	if ((t = (TBS_CERT *)ASN1_item_d2i(NULL, &p, (long)len,
		 ASN1_ITEM_rptr(TBS_CERT))) == NULL ||
	    p != tbs + len) {
		ca_err_set(err, CA_ERR_INVALID, "not a DER TBSCertificate");
		goto err;
	}
	if (!same_der(ASN1_item_i2d((ASN1_VALUE *)t, &re,
			  ASN1_ITEM_rptr(TBS_CERT)),
		&re, tbs, len)) {
		ca_err_set(err, CA_ERR_INVALID,
		    "a TBSCertificate not in "
		    "canonical DER");
		goto err;
	}
	rv = cert_check(ca, t, err);
err:
	ASN1_item_free((ASN1_VALUE *)t, ASN1_ITEM_rptr(TBS_CERT));
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
	if (what == CA_TBS_CERT) {
		rv = check_cert(ca, tbs, len, err);
		goto err;
	}
	if ((w = wrap(tbs, len, alg, alg_len, &wlen, err)) == NULL)
		goto err;
	switch (what) {
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

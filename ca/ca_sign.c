/*
 * ca_sign.c - signing certificates, CRLs and OCSP answers through the
 * CA's signer (ca_signer.h), which may hold the key in another process.
 *
 * OpenSSL 3.0 encodes no unsigned certificate or CRL: the signature
 * algorithm inside the to-be-signed part has no public setter (only
 * X509_REQ has one), and an OCSP answer's responder id is set only by
 * OCSP_basic_sign.  So each object is first signed here with a
 * throwaway key of the CA's kind, the stand-in: that fills in every
 * field as signing with the CA key would (the algorithm identifier
 * depends on the kind of key only), and the bytes it signed are the TBS
 * the CA key must sign.  The signer signs those bytes, and the object
 * is put together again from them and that signature (ca_der.c); the
 * stand-in's signature is thrown away with it.  For OCSP the responder
 * id names the stand-in and is replaced by the CA's before signing.
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>

#include "ca_internal.h"

/*
 * A key of the same kind as the CA's, so that its signature algorithm
 * is the same: the curve or size does not show in the algorithm.
 */
static EVP_PKEY *
standin_new(EVP_PKEY *pub, struct ca_err *err)
{
	EVP_PKEY *k = NULL;

	if (EVP_PKEY_is_a(pub, "EC"))
		k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	else if (EVP_PKEY_is_a(pub, "RSA"))
		/* Small: it signs every object once, for nothing. */
		k = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)1024);
	else if (EVP_PKEY_is_a(pub, "ED25519"))
		k = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	else if (EVP_PKEY_is_a(pub, "ED448"))
		k = EVP_PKEY_Q_keygen(NULL, NULL, "ED448");
	else {
		ca_err_set(err, CA_ERR_POLICY,
		    "a CA key of type %s is not "
		    "supported (EC, RSA, Ed25519 or Ed448)",
		    EVP_PKEY_get0_type_name(pub));
		return NULL;
	}
	if (k == NULL)
		ca_err_set(err, CA_ERR_CRYPTO, "cannot generate a key");
	return k;
}

/* The DER of a ResponderID byKey for cert's key. */
static int
respid_der(X509 *cert, unsigned char **der, size_t *len, struct ca_err *err)
{
	OCSP_RESPID *rid = NULL;
	unsigned char *p;
	int n, rv = -1;

	*der = NULL;
	if ((rid = OCSP_RESPID_new()) == NULL ||
	    !OCSP_RESPID_set_by_key(rid, cert) ||
	    (n = i2d_OCSP_RESPID(rid, NULL)) <= 0 ||
	    (*der = malloc((size_t)n)) == NULL)
		goto err;
	p = *der;
	if (i2d_OCSP_RESPID(rid, &p) != n)
		goto err;
	*len = (size_t)n;
	rv = 0;
err:
	if (rv == -1) {
		ca_err_set(err, CA_ERR_CRYPTO,
		    "cannot encode the OCSP "
		    "responder id");
		free(*der);
		*der = NULL;
	}
	OCSP_RESPID_free(rid);
	return rv;
}

int
ca_sign_init(struct ca *ca, struct ca_err *err)
{
	struct ca_der_span cert = { ca->der, ca->der_len };
	unsigned char *seq = NULL;
	const unsigned char *alg;
	size_t seq_len;
	int rv = -1;

	if ((ca->standin = standin_new(X509_get0_pubkey(ca->cert), err)) ==
	    NULL)
		goto err;
	if ((ca->standin_cert = X509_new()) == NULL ||
	    !X509_set_pubkey(ca->standin_cert, ca->standin)) {
		ca_err_set(err, CA_ERR_CRYPTO, "cannot build a certificate");
		goto err;
	}
	if (ca_sigalg_der(ca->standin, &ca->sigalg_der, &ca->sigalg_len, err) ==
	    -1)
		goto err;
	alg = ca->sigalg_der;
	if ((ca->sigalg = d2i_X509_ALGOR(NULL, &alg, (long)ca->sigalg_len)) ==
	    NULL) {
		ca_err_set(err, CA_ERR_CRYPTO,
		    "cannot read the CA key's "
		    "signature algorithm");
		goto err;
	}
	if (respid_der(ca->cert, &ca->respid, &ca->respid_len, err) == -1)
		goto err;
	/* certs [0] EXPLICIT SEQUENCE OF Certificate: the CA's own. */
	if ((seq = ca_der_tlv(1, V_ASN1_SEQUENCE, V_ASN1_UNIVERSAL, &cert, 1,
		 &seq_len, err)) == NULL)
		goto err;
	cert.p = seq;
	cert.len = seq_len;
	if ((ca->ocsp_certs = ca_der_tlv(1, 0, V_ASN1_CONTEXT_SPECIFIC, &cert,
		 1, &ca->ocsp_certs_len, err)) == NULL)
		goto err;
	rv = 0;
err:
	free(seq);
	return rv;
}

void
ca_sign_free(struct ca *ca)
{
	EVP_PKEY_free(ca->standin);
	X509_free(ca->standin_cert);
	X509_ALGOR_free(ca->sigalg);
	OPENSSL_free(ca->sigalg_der);
	ca->sigalg = NULL;
	ca->sigalg_der = NULL;
	free(ca->respid);
	free(ca->ocsp_certs);
	ca->standin = NULL;
	ca->standin_cert = NULL;
	ca->respid = NULL;
	ca->ocsp_certs = NULL;
}

/*
 * What an i2d call that was given &*buf (NULL) returned, n bytes in a
 * buffer it allocated (OPENSSL_free), as a span; -1 if it failed.
 */
static int
i2d_span(int n, unsigned char **buf, struct ca_der_span *s)
{
	if (n <= 0 || *buf == NULL)
		return -1;
	s->p = *buf;
	s->len = (size_t)n;
	return 0;
}

/*
 * Have the signer sign tbs and put the object together: SEQUENCE { tbs,
 * alg, signature [, extra] }, malloc'd.
 */
static unsigned char *
sign_tbs(const struct ca *ca, enum ca_tbs what, const struct ca_der_span *tbs,
    const struct ca_der_span *alg, const struct ca_der_span *extra, size_t *len,
    struct ca_err *err)
{
	unsigned char sig[CA_SIG_MAX];
	size_t sig_len = 0;

	if (ca_signer_sign(ca->signer, what, tbs->p, tbs->len, sig, &sig_len,
		err) == -1)
		return NULL;
	return ca_der_signed(tbs, alg, sig, sig_len, extra, len, err);
}

/*
 * The DER TBSCertificate of x (built, not signed) with the CA key's
 * signature algorithm, in a buffer from OPENSSL_malloc: encoded with
 * TBS_CERT rather than by signing x with the standin key first, which
 * would cost a signature and, to read the key back, a decoder.
 */
static int
tbs_encode(const struct ca *ca, X509 *x, unsigned char **der)
{
	X509_VAL validity = { (ASN1_TIME *)X509_get0_notBefore(x),
		(ASN1_TIME *)X509_get0_notAfter(x) };
	const unsigned char *p;
	unsigned char *spki_der = NULL;
	ASN1_INTEGER *v3;
	TBS_CERT t;
	int n = -1, spki_len;

	*der = NULL;
	memset(&t, 0, sizeof(t));
	if ((v3 = ASN1_INTEGER_new()) == NULL || !ASN1_INTEGER_set(v3, 2) ||
	    (spki_len = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(x), &spki_der)) <=
		0)
		goto err;
	p = spki_der;
	if ((t.spki = (TBS_SPKI *)ASN1_item_d2i(NULL, &p, spki_len,
		 ASN1_ITEM_rptr(TBS_SPKI))) == NULL)
		goto err;
	/* Borrowed from x and ca; only v3 and spki are this function's. */
	t.version = v3;
	t.serial = (ASN1_INTEGER *)X509_get0_serialNumber(x);
	t.sigalg = ca->sigalg;
	t.issuer = X509_get_issuer_name(x);
	t.validity = &validity;
	t.subject = X509_get_subject_name(x);
	t.exts = (STACK_OF(X509_EXTENSION) *)X509_get0_extensions(x);
	n = ASN1_item_i2d((ASN1_VALUE *)&t, der, ASN1_ITEM_rptr(TBS_CERT));
err:
	ASN1_item_free((ASN1_VALUE *)t.spki, ASN1_ITEM_rptr(TBS_SPKI));
	ASN1_INTEGER_free(v3);
	OPENSSL_free(spki_der);
	return n;
}

int
ca_sign_cert_der(const struct ca *ca, X509 *x, unsigned char **der, size_t *len,
    struct ca_err *err)
{
	struct ca_der_span tbs, alg = { ca->sigalg_der, ca->sigalg_len };
	unsigned char *tbs_der = NULL;

	*der = NULL;
	if (i2d_span(tbs_encode(ca, x, &tbs_der), &tbs_der, &tbs) == -1)
		ca_err_set(err, CA_ERR_CRYPTO, "cannot encode the certificate");
	else
		*der = sign_tbs(ca, CA_TBS_CERT, &tbs, &alg, NULL, len, err);
	OPENSSL_free(tbs_der);
	return *der != NULL ? 0 : -1;
}

X509 *
ca_sign_cert(const struct ca *ca, X509 *x, struct ca_err *err)
{
	unsigned char *der = NULL;
	const unsigned char *p;
	X509 *out = NULL;
	size_t len;

	if (ca_sign_cert_der(ca, x, &der, &len, err) == -1)
		return NULL;
	p = der;
	/*
	 * What relying parties will parse, checked against the CA's own
	 * key: a signer that answered anything else is found out here.
	 */
	if ((out = d2i_X509(NULL, &p, (long)len)) == NULL || p != der + len ||
	    X509_verify(out, X509_get0_pubkey(ca->cert)) != 1) {
		ca_err_set(err, CA_ERR_CRYPTO,
		    "the CA signer's signature of "
		    "a certificate does not verify with the CA certificate");
		X509_free(out);
		out = NULL;
	}
	free(der);
	return out;
}

int
ca_sign_crl(const struct ca *ca, X509_CRL *crl, unsigned char **der,
    size_t *len, struct ca_err *err)
{
	struct ca_der_span tbs, alg;
	const X509_ALGOR *palg;
	unsigned char *tbs_der = NULL, *alg_der = NULL;
	const unsigned char *p;
	X509_CRL *check = NULL;
	int rv = -1;

	*der = NULL;
	if (X509_CRL_sign(crl, ca->standin, ca_sign_md(ca->standin)) <= 0)
		goto crypto;
	X509_CRL_get0_signature(crl, NULL, &palg);
	if (i2d_span(i2d_re_X509_CRL_tbs(crl, &tbs_der), &tbs_der, &tbs) ==
		-1 ||
	    i2d_span(i2d_X509_ALGOR(palg, &alg_der), &alg_der, &alg) == -1)
		goto crypto;
	if ((*der = sign_tbs(ca, CA_TBS_CRL, &tbs, &alg, NULL, len, err)) ==
	    NULL)
		goto err;
	p = *der;
	if ((check = d2i_X509_CRL(NULL, &p, (long)*len)) == NULL ||
	    p != *der + *len ||
	    X509_CRL_verify(check, X509_get0_pubkey(ca->cert)) != 1) {
		ca_err_set(err, CA_ERR_CRYPTO,
		    "the CA signer's signature of "
		    "a CRL does not verify with the CA certificate");
		goto err;
	}
	rv = 0;
	goto err;
crypto:
	ca_err_set(err, CA_ERR_CRYPTO, "cannot encode the CRL");
err:
	if (rv == -1) {
		free(*der);
		*der = NULL;
	}
	X509_CRL_free(check);
	OPENSSL_free(tbs_der);
	OPENSSL_free(alg_der);
	return rv;
}

/*
 * The ResponseData the stand-in signed, with the CA's responder id in
 * place of the stand-in's: v1, so the id is the first element.
 */
static unsigned char *
ocsp_tbs(const struct ca *ca, const unsigned char *der, size_t len,
    size_t *out_len, struct ca_err *err)
{
	struct ca_der_span v[8];
	size_t n;

	if (ca_der_seq_split(der, len, v, 8, &n, err) == -1 || n < 3 ||
	    v[0].p[0] != (V_ASN1_CONTEXT_SPECIFIC | V_ASN1_CONSTRUCTED | 2)) {
		ca_err_set(err, CA_ERR_CRYPTO, "unexpected OCSP ResponseData");
		return NULL;
	}
	v[0].p = ca->respid;
	v[0].len = ca->respid_len;
	return ca_der_tlv(1, V_ASN1_SEQUENCE, V_ASN1_UNIVERSAL, v, n, out_len,
	    err);
}

/* id-pkix-ocsp-basic, as the DER of the OBJECT IDENTIFIER. */
static const unsigned char oid_ocsp_basic[] = { 0x06, 0x09, 0x2b, 0x06, 0x01,
	0x05, 0x05, 0x07, 0x30, 0x01, 0x01 };

/*
 * OCSPResponse { successful, [0] { id-pkix-ocsp-basic, OCTET STRING
 * basic } }: written here rather than parsed and encoded again, which
 * would decode the CA certificate inside on every answer.
 */
static unsigned char *
ocsp_response(const unsigned char *basic, size_t basic_len, size_t *len,
    struct ca_err *err)
{
	static const unsigned char successful[] = { 0x0a, 0x01, 0x00 };
	struct ca_der_span v[2], b = { basic, basic_len };
	unsigned char *oct = NULL, *rb = NULL, *x0 = NULL, *out = NULL;
	size_t oct_len, rb_len, x0_len;

	if ((oct = ca_der_tlv(0, V_ASN1_OCTET_STRING, V_ASN1_UNIVERSAL, &b, 1,
		 &oct_len, err)) == NULL)
		goto err;
	v[0].p = oid_ocsp_basic;
	v[0].len = sizeof(oid_ocsp_basic);
	v[1].p = oct;
	v[1].len = oct_len;
	if ((rb = ca_der_tlv(1, V_ASN1_SEQUENCE, V_ASN1_UNIVERSAL, v, 2,
		 &rb_len, err)) == NULL)
		goto err;
	b.p = rb;
	b.len = rb_len;
	if ((x0 = ca_der_tlv(1, 0, V_ASN1_CONTEXT_SPECIFIC, &b, 1, &x0_len,
		 err)) == NULL)
		goto err;
	v[0].p = successful;
	v[0].len = sizeof(successful);
	v[1].p = x0;
	v[1].len = x0_len;
	out = ca_der_tlv(1, V_ASN1_SEQUENCE, V_ASN1_UNIVERSAL, v, 2, len, err);
err:
	free(oct);
	free(rb);
	free(x0);
	return out;
}

/*
 * Unlike a certificate or a CRL, the answer is not verified here: it is
 * signed afresh for every request, and every client verifies it.
 */
int
ca_sign_ocsp(const struct ca *ca, OCSP_BASICRESP *bs, unsigned char **der,
    size_t *len, struct ca_err *err)
{
	struct ca_der_span tbs, alg,
	    certs = { ca->ocsp_certs, ca->ocsp_certs_len };
	unsigned char *rd_der = NULL, *alg_der = NULL, *tbs_der = NULL;
	unsigned char *basic = NULL;
	struct ca_der_span rd;
	size_t basic_len;
	int rv = -1;

	*der = NULL;
	if (!OCSP_basic_sign(bs, ca->standin_cert, ca->standin,
		ca_sign_md(ca->standin), NULL,
		OCSP_RESPID_KEY | OCSP_NOCERTS) ||
	    i2d_span(i2d_OCSP_RESPDATA(OCSP_resp_get0_respdata(bs), &rd_der),
		&rd_der, &rd) == -1 ||
	    i2d_span(i2d_X509_ALGOR(OCSP_resp_get0_tbs_sigalg(bs), &alg_der),
		&alg_der, &alg) == -1) {
		ca_err_set(err, CA_ERR_CRYPTO,
		    "cannot encode the OCSP "
		    "response");
		goto err;
	}
	if ((tbs_der = ocsp_tbs(ca, rd.p, rd.len, &tbs.len, err)) == NULL)
		goto err;
	tbs.p = tbs_der;
	if ((basic = sign_tbs(ca, CA_TBS_OCSP, &tbs, &alg, &certs, &basic_len,
		 err)) == NULL ||
	    (*der = ocsp_response(basic, basic_len, len, err)) == NULL)
		goto err;
	rv = 0;
err:
	OPENSSL_free(rd_der);
	OPENSSL_free(alg_der);
	free(tbs_der);
	free(basic);
	return rv;
}

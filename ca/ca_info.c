/*
 * ca_info.c - reading facts out of a certificate, and telling whether it
 * was signed by this CA.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/asn1.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "ca_internal.h"

/*
 * Copy the first entry nid of name, as UTF-8, into out ("" if absent).
 * A value that does not fit or holds a NUL is an error, not truncated:
 * these strings identify people.
 */
static int
name_entry(const X509_NAME *name, int nid, const char *what, char *out,
    size_t outsz, struct ca_err *err)
{
	const X509_NAME_ENTRY *ent;
	unsigned char *utf8 = NULL;
	int idx, n, rv = -1;

	out[0] = '\0';
	if ((idx = X509_NAME_get_index_by_NID(name, nid, -1)) < 0)
		return 0;
	if ((ent = X509_NAME_get_entry(name, idx)) == NULL ||
	    (n = ASN1_STRING_to_UTF8(&utf8,
	    X509_NAME_ENTRY_get_data(ent))) < 0) {
		ca_err_set(err, CA_ERR_INVALID, "cannot read the subject %s",
		    what);
		goto err;
	}
	if ((size_t)n >= outsz || memchr(utf8, '\0', (size_t)n) != NULL) {
		ca_err_set(err, CA_ERR_INVALID, "subject %s too long or "
		    "malformed", what);
		goto err;
	}
	memcpy(out, utf8, (size_t)n);
	out[n] = '\0';
	rv = 0;
 err:
	OPENSSL_free(utf8);
	return rv;
}

/* The issuer as one RFC 2253 line; only for display, so it may be cut. */
static int
issuer_line(const X509_NAME *name, char *out, size_t outsz,
    struct ca_err *err)
{
	BIO *bio = NULL;
	char *data;
	long n;
	int rv = -1;

	out[0] = '\0';
	if ((bio = BIO_new(BIO_s_mem())) == NULL ||
	    X509_NAME_print_ex(bio, name, 0, XN_FLAG_RFC2253) < 0) {
		ca_err_set(err, CA_ERR_CRYPTO, "cannot print the issuer");
		goto err;
	}
	n = BIO_get_mem_data(bio, &data);
	if (n < 0)
		n = 0;
	if ((size_t)n >= outsz)
		n = (long)outsz - 1;
	memcpy(out, data, (size_t)n);
	out[n] = '\0';
	rv = 0;
 err:
	BIO_free(bio);
	return rv;
}

int
ca_cert_info(const unsigned char *buf, size_t len, struct ca_cert_info *info,
    struct ca_err *err)
{
	X509 *x = NULL;
	unsigned char *der = NULL, *p;
	int dlen, rv = -1;

	ca_err_clear(err);
	memset(info, 0, sizeof(*info));
	if ((x = ca_x509_parse(buf, len, err)) == NULL)
		goto err;
	/* Fingerprint the canonical DER, whichever encoding we were given. */
	if ((dlen = i2d_X509(x, NULL)) <= 0 ||
	    (der = OPENSSL_malloc((size_t)dlen)) == NULL) {
		ca_err_set(err, CA_ERR_CRYPTO, "cannot encode the certificate");
		goto err;
	}
	p = der;
	if (i2d_X509(x, &p) != dlen) {
		ca_err_set(err, CA_ERR_CRYPTO, "cannot encode the certificate");
		goto err;
	}
	if (ca_fp_hex(der, (size_t)dlen, info->fingerprint, err) == -1 ||
	    ca_serial_hex(X509_get0_serialNumber(x), info->serial,
	    err) == -1 ||
	    name_entry(X509_get_subject_name(x), NID_userId, "UID",
	    info->userid, sizeof(info->userid), err) == -1 ||
	    name_entry(X509_get_subject_name(x), NID_commonName, "CN",
	    info->name, sizeof(info->name), err) == -1 ||
	    issuer_line(X509_get_issuer_name(x), info->issuer,
	    sizeof(info->issuer), err) == -1 ||
	    ca_time_epoch(X509_get0_notBefore(x), &info->not_before,
	    err) == -1 ||
	    ca_time_epoch(X509_get0_notAfter(x), &info->not_after, err) == -1)
		goto err;
	rv = 0;
 err:
	if (rv == -1)
		memset(info, 0, sizeof(*info));
	OPENSSL_free(der);
	X509_free(x);
	return rv;
}

int
ca_cert_is_ours(const struct ca *ca, const unsigned char *buf, size_t len,
    struct ca_err *err)
{
	X509 *x = NULL;
	int rv = -1;

	ca_err_clear(err);
	if ((x = ca_x509_parse(buf, len, err)) == NULL)
		goto err;
	/*
	 * Both the name and the signature: the name alone is easy to copy,
	 * and X509_verify can return -1 (e.g. another key type), which is
	 * just as much "not ours" as 0.
	 */
	if (X509_NAME_cmp(X509_get_issuer_name(x),
	    X509_get_subject_name(ca->cert)) != 0 ||
	    X509_verify(x, X509_get0_pubkey(ca->cert)) != 1) {
		ca_err_clear(err);
		rv = 0;
		goto err;
	}
	rv = 1;
 err:
	X509_free(x);
	return rv;
}

/*
 * PEM is base64 of the DER between two lines, so no parse is needed.
 * Parsing was most of the cost of a lookup: in OpenSSL 3.0 d2i_X509
 * decodes the public key through the provider decoders (about 0.2 ms a
 * certificate here, on every device of every answer).  The DER comes
 * from our own store; it is checked to be one definite-length SEQUENCE
 * that spans exactly len bytes, not that it is a certificate.
 */
char *
ca_der_to_pem(const unsigned char *der, size_t len, struct ca_err *err)
{
	const unsigned char *p = der;
	BIO *bio = NULL;
	char *pem = NULL;
	long olen;
	int tag, xclass;

	ca_err_clear(err);
	if (der == NULL || len == 0 || len > CA_PEM_MAX ||
	    ASN1_get_object(&p, &olen, &tag, &xclass, (long)len) !=
	    V_ASN1_CONSTRUCTED || tag != V_ASN1_SEQUENCE ||
	    xclass != V_ASN1_UNIVERSAL || olen < 0 ||
	    (size_t)(p - der) + (size_t)olen != len) {
		ca_err_set(err, CA_ERR_INVALID, "not a DER certificate");
		return NULL;
	}
	if ((bio = BIO_new(BIO_s_mem())) == NULL ||
	    PEM_write_bio(bio, PEM_STRING_X509, "", der, (long)len) <= 0)
		ca_err_set(err, CA_ERR_CRYPTO, "cannot encode a certificate");
	else
		pem = ca_bio_string(bio, "a certificate", NULL, err);
	BIO_free(bio);
	return pem;
}

void
ca_cert_status(const char *pem, const char *ca_file, const char *crl_file,
    char *buf, size_t len)
{
	X509_STORE_CTX *ctx = NULL;
	X509_STORE *st = NULL;
	X509_CRL *crl = NULL;
	X509 *x = NULL;
	BIO *bio = NULL;
	struct ca_err ce;
	int e;

	snprintf(buf, len, "unknown");
	if (pem == NULL || (x = ca_x509_parse((const unsigned char *)pem,
	    strlen(pem), &ce)) == NULL)
		goto err;
	if ((st = X509_STORE_new()) == NULL ||
	    X509_STORE_load_file(st, ca_file) != 1)
		goto err;
	/* Without a CRL the answer says nothing of revocation. */
	if (crl_file != NULL && (bio = BIO_new_file(crl_file, "rb")) != NULL &&
	    (crl = d2i_X509_CRL_bio(bio, NULL)) != NULL &&
	    X509_STORE_add_crl(st, crl) == 1)
		X509_STORE_set_flags(st, X509_V_FLAG_CRL_CHECK);
	if ((ctx = X509_STORE_CTX_new()) == NULL ||
	    X509_STORE_CTX_init(ctx, st, x, NULL) != 1)
		goto err;
	if (X509_verify_cert(ctx) == 1)
		snprintf(buf, len, "valid");
	else if ((e = X509_STORE_CTX_get_error(ctx)) == X509_V_ERR_CERT_REVOKED)
		snprintf(buf, len, "revoked");
	else if (e == X509_V_ERR_CERT_HAS_EXPIRED)
		snprintf(buf, len, "expired");
	else
		snprintf(buf, len, "invalid: %s",
		    X509_verify_cert_error_string(e));
 err:
	ERR_clear_error();
	X509_STORE_CTX_free(ctx);
	X509_STORE_free(st);
	X509_CRL_free(crl);
	X509_free(x);
	BIO_free(bio);
}

/*
 * ca_est.c - the bodies of EST (RFC 7030): certificates as a base64
 * PKCS#7 certs-only structure (section 4.1.3), and a CSR as base64
 * PKCS#10 (section 4.2.1).
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/pkcs7.h>
#include <openssl/x509.h>

#include "ca_internal.h"

int
ca_est_certs(const char *const *pems, size_t n, char **b64, size_t *len,
    struct ca_err *err)
{
	PKCS7 *p7 = NULL;
	unsigned char *der = NULL;
	X509 *x = NULL;
	size_t i;
	int dlen, blen, rv = -1;

	ca_err_clear(err);
	*b64 = NULL;
	if ((p7 = PKCS7_new()) == NULL ||
	    PKCS7_set_type(p7, NID_pkcs7_signed) != 1 ||
	    PKCS7_content_new(p7, NID_pkcs7_data) != 1)
		goto oom;
	for (i = 0; i < n; i++) {
		if ((x = ca_x509_parse((const unsigned char *)pems[i],
			 strlen(pems[i]), err)) == NULL)
			goto err;
		if (PKCS7_add_certificate(p7, x) != 1)
			goto oom;
		X509_free(x);
		x = NULL;
	}
	if ((dlen = i2d_PKCS7(p7, &der)) <= 0)
		goto oom;
	/* 4 characters for every 3 bytes, and a NUL. */
	if ((*b64 = malloc((size_t)(dlen + 2) / 3 * 4 + 1)) == NULL)
		goto oom;
	blen = EVP_EncodeBlock((unsigned char *)*b64, der, dlen);
	*len = (size_t)blen;
	rv = 0;
	goto err;
oom:
	ca_err_set(err, CA_ERR_CRYPTO, "cannot build the PKCS#7 certificates");
err:
	ERR_clear_error();
	X509_free(x);
	OPENSSL_free(der);
	PKCS7_free(p7);
	return rv;
}

/* The text of the first entry of nid in name, or "". */
static void
name_entry(const X509_NAME *name, int nid, char *out, size_t len)
{
	const X509_NAME_ENTRY *e;
	const ASN1_STRING *s;
	int i;

	out[0] = '\0';
	if ((i = X509_NAME_get_index_by_NID(name, nid, -1)) < 0 ||
	    (e = X509_NAME_get_entry(name, i)) == NULL ||
	    (s = X509_NAME_ENTRY_get_data(e)) == NULL ||
	    (size_t)ASN1_STRING_length(s) >= len)
		return;
	memcpy(out, ASN1_STRING_get0_data(s), (size_t)ASN1_STRING_length(s));
	out[ASN1_STRING_length(s)] = '\0';
}

int
ca_est_csr(const char *b64, size_t len, char **pem, char *who, size_t wholen,
    struct ca_err *err)
{
	unsigned char *clean = NULL, *der = NULL;
	const unsigned char *p;
	X509_REQ *req = NULL;
	BIO *b = NULL;
	BUF_MEM *mem;
	size_t i, n = 0;
	int dlen, rv = -1;

	ca_err_clear(err);
	*pem = NULL;
	who[0] = '\0';
	/* RFC 2045 base64: line breaks (and other white space) ignored. */
	if (len == 0 || len > 65536 || (clean = malloc(len + 1)) == NULL ||
	    (der = malloc(len)) == NULL) {
		ca_err_set(err, CA_ERR_INVALID,
		    "a CSR is 1 to 65536 bytes of base64");
		goto err;
	}
	for (i = 0; i < len; i++)
		if (b64[i] != '\r' && b64[i] != '\n' && b64[i] != ' ' &&
		    b64[i] != '\t')
			clean[n++] = (unsigned char)b64[i];
	if (n == 0 || n % 4 != 0 ||
	    (dlen = EVP_DecodeBlock(der, clean, (int)n)) < 0) {
		ca_err_set(err, CA_ERR_INVALID, "the body is not base64");
		goto err;
	}
	/* EVP_DecodeBlock counts the padding as zero bytes. */
	dlen -= (n >= 1 && clean[n - 1] == '=') +
	    (n >= 2 && clean[n - 2] == '=');
	p = der;
	if ((req = d2i_X509_REQ(NULL, &p, dlen)) == NULL || p != der + dlen) {
		ca_err_set(err, CA_ERR_INVALID,
		    "the body is not one DER PKCS#10 certificate request");
		goto err;
	}
	name_entry(X509_REQ_get_subject_name(req), NID_userId, who, wholen);
	if (who[0] == '\0')
		name_entry(X509_REQ_get_subject_name(req),
		    NID_pkcs9_emailAddress, who, wholen);
	if (who[0] == '\0') {
		name_entry(X509_REQ_get_subject_name(req), NID_commonName, who,
		    wholen);
		if (strchr(who, '@') == NULL)
			who[0] = '\0';
	}
	if ((b = BIO_new(BIO_s_mem())) == NULL ||
	    PEM_write_bio_X509_REQ(b, req) != 1 ||
	    BIO_get_mem_ptr(b, &mem) != 1 ||
	    (*pem = malloc(mem->length + 1)) == NULL) {
		ca_err_set(err, CA_ERR_CRYPTO, "out of memory");
		goto err;
	}
	memcpy(*pem, mem->data, mem->length);
	(*pem)[mem->length] = '\0';
	rv = 0;
err:
	ERR_clear_error();
	BIO_free(b);
	X509_REQ_free(req);
	free(clean);
	free(der);
	return rv;
}

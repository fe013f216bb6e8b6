/*
 * ca_cms.c - S/MIME messages (RFC 8551) for mail and for what waits in
 * a registry's store: signed by the sender (CMS SignedData, RFC 5652),
 * then encrypted to every certificate of the recipient
 * (AuthEnvelopedData with AES-256-GCM, RFC 5083 and 5084; ECDH key
 * agreement for EC keys, RFC 5753, key transport for RSA).
 *
 * Everything is OpenSSL's CMS: the same bytes `openssl cms -decrypt`
 * and `openssl cms -verify` read, and what they write is read here.
 * Nothing is trusted in ca_cms_open but the cryptography: whose the
 * signer's certificate is, and whether it is valid, the caller judges.
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/cms.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "ca_internal.h"

static BIO *
mem_bio(const void *p, size_t len)
{
	return len > (size_t)INT32_MAX ? NULL : BIO_new_mem_buf(p, (int)len);
}

/* What was written to the memory BIO b, as a new buffer. */
static int
take(BIO *b, unsigned char **out, size_t *len, struct ca_err *err)
{
	char *p;
	long n = BIO_get_mem_data(b, &p);

	if (n < 0 || (*out = malloc((size_t)n + 1)) == NULL) {
		ca_err_set(err, CA_ERR_CRYPTO, "out of memory");
		return -1;
	}
	memcpy(*out, p, (size_t)n);
	(*out)[n] = '\0';
	*len = (size_t)n;
	return 0;
}

/* The one certificate in pem (ca_x509_parse), or NULL. */
static X509 *
pem_cert(const char *pem)
{
	struct ca_err e;

	return ca_x509_parse((const unsigned char *)pem, strlen(pem), &e);
}

/* The unencrypted key in pem (ca_key_from_pem: never a prompt), or NULL. */
static EVP_PKEY *
pem_key(const char *pem)
{
	struct ca_err e;

	return ca_key_from_pem(pem, strlen(pem), &e);
}

/* content signed by cert/key, as an S/MIME entity (signed-data). */
static BIO *
sign_entity(const unsigned char *content, size_t len, X509 *cert, EVP_PKEY *key,
    struct ca_err *err)
{
	BIO *in = mem_bio(content, len), *out = BIO_new(BIO_s_mem());
	CMS_ContentInfo *cms = NULL;

	/* Opaque (content inside): no relay can rewrite it in transit. */
	if (in == NULL || out == NULL ||
	    (cms = CMS_sign(cert, key, NULL, in, CMS_BINARY)) == NULL ||
	    SMIME_write_CMS(out, cms, NULL, CMS_BINARY) != 1) {
		ca_err_set(err, CA_ERR_CRYPTO, "cannot sign the message");
		BIO_free(out);
		out = NULL;
	} else
		BIO_set_mem_eof_return(out, 0); /* read back to its end */
	CMS_ContentInfo_free(cms);
	BIO_free(in);
	return out;
}

/*
 * in encrypted with AES-256-GCM (AuthEnvelopedData) to every certificate
 * of recips, as an S/MIME entity in *out; what says what failed.
 */
static int
encrypt_to(STACK_OF(X509) * recips, BIO *in, const char *what,
    unsigned char **out, size_t *outlen, struct ca_err *err)
{
	CMS_ContentInfo *cms;
	BIO *b = NULL;
	int rv = -1;

	if ((cms = CMS_encrypt(recips, in, EVP_aes_256_gcm(), CMS_BINARY)) ==
		NULL ||
	    (b = BIO_new(BIO_s_mem())) == NULL ||
	    SMIME_write_CMS(b, cms, NULL, CMS_BINARY) != 1)
		ca_err_set(err, CA_ERR_CRYPTO, "%s", what);
	else
		rv = take(b, out, outlen, err);
	BIO_free(b);
	CMS_ContentInfo_free(cms);
	return rv;
}

int
ca_cms_seal(const unsigned char *content, size_t len, const char *cert_pem,
    const char *key_pem, const char *const *recip_pem, size_t nrecip,
    unsigned char **out, size_t *outlen, struct ca_err *err)
{
	STACK_OF(X509) *recips = NULL;
	EVP_PKEY *key = NULL;
	BIO *signed_bio = NULL;
	X509 *cert = NULL, *r;
	size_t i;
	int rv = -1;

	ca_err_clear(err);
	*out = NULL;
	if (nrecip == 0 || nrecip > CA_CMS_RECIPS_MAX) {
		ca_err_set(err, CA_ERR_INVALID,
		    "a message goes to 1 to %d "
		    "certificates, not %zu",
		    CA_CMS_RECIPS_MAX, nrecip);
		return -1;
	}
	if ((cert = pem_cert(cert_pem)) == NULL ||
	    (key = pem_key(key_pem)) == NULL ||
	    X509_check_private_key(cert, key) != 1) {
		ca_err_set(err, CA_ERR_INVALID,
		    "the sender's key and "
		    "certificate do not belong together");
		goto err;
	}
	if ((recips = sk_X509_new_null()) == NULL)
		goto oom;
	for (i = 0; i < nrecip; i++) {
		if ((r = pem_cert(recip_pem[i])) == NULL) {
			ca_err_set(err, CA_ERR_INVALID,
			    "recipient "
			    "certificate %zu is not a PEM certificate",
			    i + 1);
			goto err;
		}
		if (!sk_X509_push(recips, r)) {
			X509_free(r);
			goto oom;
		}
	}
	if ((signed_bio = sign_entity(content, len, cert, key, err)) == NULL)
		goto err;
	rv = encrypt_to(recips, signed_bio, "cannot encrypt the message", out,
	    outlen, err);
	goto err;
oom:
	ca_err_set(err, CA_ERR_CRYPTO, "out of memory");
err:
	BIO_free(signed_bio);
	sk_X509_pop_free(recips, X509_free);
	EVP_PKEY_free(key);
	X509_free(cert);
	return rv;
}

int
ca_cms_envelope(const unsigned char *content, size_t len, const char *recip_pem,
    unsigned char **out, size_t *outlen, struct ca_err *err)
{
	STACK_OF(X509) *recips = NULL;
	BIO *in = NULL;
	X509 *r = NULL;
	int rv = -1;

	ca_err_clear(err);
	*out = NULL;
	if ((r = pem_cert(recip_pem)) == NULL) {
		ca_err_set(err, CA_ERR_INVALID,
		    "the recipient is not a PEM certificate");
		goto err;
	}
	if ((recips = sk_X509_new_null()) == NULL || !sk_X509_push(recips, r))
		goto oom;
	r = NULL;
	if ((in = mem_bio(content, len)) == NULL)
		goto oom;
	rv = encrypt_to(recips, in, "cannot encrypt to that certificate", out,
	    outlen, err);
	goto err;
oom:
	ca_err_set(err, CA_ERR_CRYPTO, "out of memory");
err:
	ERR_clear_error();
	BIO_free(in);
	sk_X509_pop_free(recips, X509_free);
	X509_free(r);
	return rv;
}

/* Decrypt the S/MIME entity in with cert/key: the inner entity, in *plain. */
static BIO *
decrypt(BIO *in, X509 *cert, EVP_PKEY *key, struct ca_err *err)
{
	CMS_ContentInfo *cms;
	BIO *plain = BIO_new(BIO_s_mem());
	int nid;

	if ((cms = SMIME_read_CMS(in, NULL)) == NULL) {
		ca_err_set(err, CA_ERR_INVALID, "not an S/MIME message");
		goto err;
	}
	nid = OBJ_obj2nid(CMS_get0_type(cms));
	if (nid != NID_id_smime_ct_authEnvelopedData &&
	    nid != NID_pkcs7_enveloped) {
		ca_err_set(err, CA_ERR_POLICY,
		    "the message is not "
		    "encrypted");
		goto err;
	}
	/*
	 * With the certificate, only the RecipientInfo for it is tried;
	 * a GCM tag or a padding that does not check fails the whole.
	 */
	if (plain == NULL ||
	    CMS_decrypt(cms, key, cert, NULL, plain, CMS_BINARY) != 1) {
		ca_err_set(err, CA_ERR_SIGNATURE,
		    "the message can not be "
		    "decrypted with this key (not for it, or altered)");
		goto err;
	}
	CMS_ContentInfo_free(cms);
	/* Read back to its end, not "retry later" (a memory BIO's default). */
	BIO_set_mem_eof_return(plain, 0);
	return plain;
err:
	CMS_ContentInfo_free(cms);
	BIO_free(plain);
	return NULL;
}

/* The signingTime of the one signer si, or 0 when it gives none. */
static time_t
signing_time(CMS_SignerInfo *si)
{
	int i = CMS_signed_get_attr_by_NID(si, NID_pkcs9_signingTime, -1);
	X509_ATTRIBUTE *a = i >= 0 ? CMS_signed_get_attr(si, i) : NULL;
	ASN1_TYPE *t = a ? X509_ATTRIBUTE_get0_type(a, 0) : NULL;
	struct tm tm;

	if (t == NULL ||
	    (t->type != V_ASN1_UTCTIME && t->type != V_ASN1_GENERALIZEDTIME) ||
	    ASN1_TIME_to_tm((ASN1_TIME *)t->value.asn1_string, &tm) != 1)
		return 0;
	return timegm(&tm);
}

/* Verify the signed S/MIME entity in: its content and its signer. */
static int
verify(BIO *in, struct ca_cms_opened *o, struct ca_err *err)
{
	CMS_ContentInfo *cms = NULL;
	STACK_OF(CMS_SignerInfo) * sis;
	STACK_OF(X509) *signers = NULL;
	BIO *detached = NULL, *content = BIO_new(BIO_s_mem());
	unsigned char *der = NULL;
	int n, rv = -1;

	if ((cms = SMIME_read_CMS(in, &detached)) == NULL ||
	    OBJ_obj2nid(CMS_get0_type(cms)) != NID_pkcs7_signed) {
		ca_err_set(err, CA_ERR_POLICY, "the message is not signed");
		goto err;
	}
	if ((sis = CMS_get0_SignerInfos(cms)) == NULL ||
	    sk_CMS_SignerInfo_num(sis) != 1) {
		ca_err_set(err, CA_ERR_POLICY,
		    "a message signed by one "
		    "sender is expected, not by %d",
		    sis ? sk_CMS_SignerInfo_num(sis) : 0);
		goto err;
	}
	/*
	 * The signature alone: whose the certificate is and whether it is
	 * valid is for the caller to judge (its own CA, or another
	 * domain's as its registry vouches for it).
	 */
	if (content == NULL ||
	    CMS_verify(cms, NULL, NULL, detached, content,
		CMS_NO_SIGNER_CERT_VERIFY | CMS_BINARY) != 1 ||
	    (signers = CMS_get0_signers(cms)) == NULL ||
	    sk_X509_num(signers) != 1) {
		ca_err_set(err, CA_ERR_SIGNATURE,
		    "the signature does not "
		    "verify (the message was altered, or its signer's "
		    "certificate is missing)");
		goto err;
	}
	if ((n = i2d_X509(sk_X509_value(signers, 0), &der)) <= 0 ||
	    take(content, &o->content, &o->content_len, err) == -1) {
		ca_err_set(err, CA_ERR_CRYPTO, "out of memory");
		goto err;
	}
	if ((o->signer_der = malloc((size_t)n)) == NULL) {
		ca_err_set(err, CA_ERR_CRYPTO, "out of memory");
		goto err;
	}
	memcpy(o->signer_der, der, (size_t)n);
	o->signer_len = (size_t)n;
	o->signed_at = signing_time(sk_CMS_SignerInfo_value(sis, 0));
	rv = 0;
err:
	OPENSSL_free(der);
	sk_X509_free(signers);
	CMS_ContentInfo_free(cms);
	BIO_free(detached);
	BIO_free(content);
	return rv;
}

int
ca_cms_open(const unsigned char *msg, size_t len, const char *cert_pem,
    const char *key_pem, struct ca_cms_opened *out, struct ca_err *err)
{
	BIO *in = NULL, *inner = NULL;
	EVP_PKEY *key = NULL;
	X509 *cert = NULL;
	int rv = -1;

	ca_err_clear(err);
	memset(out, 0, sizeof(*out));
	if (len > CA_CMS_MAX) {
		ca_err_set(err, CA_ERR_INVALID,
		    "a message of more than %d "
		    "bytes",
		    CA_CMS_MAX);
		return -1;
	}
	if ((cert = pem_cert(cert_pem)) == NULL ||
	    (key = pem_key(key_pem)) == NULL) {
		ca_err_set(err, CA_ERR_INVALID,
		    "no key and certificate to "
		    "open the message with");
		goto err;
	}
	if ((in = mem_bio(msg, len)) == NULL ||
	    (inner = decrypt(in, cert, key, err)) == NULL ||
	    verify(inner, out, err) == -1)
		goto err;
	rv = 0;
err:
	if (rv == -1)
		ca_cms_opened_clear(out);
	ERR_clear_error();
	BIO_free(inner);
	BIO_free(in);
	EVP_PKEY_free(key);
	X509_free(cert);
	return rv;
}

void
ca_cms_opened_clear(struct ca_cms_opened *o)
{
	free(o->content);
	free(o->signer_der);
	memset(o, 0, sizeof(*o));
}

int
ca_cms_check(const unsigned char *msg, size_t len, struct ca_err *err)
{
	CMS_ContentInfo *cms = NULL;
	BIO *in;
	int nid, rv = -1;

	ca_err_clear(err);
	if (len > CA_CMS_MAX || (in = mem_bio(msg, len)) == NULL) {
		ca_err_set(err, CA_ERR_INVALID,
		    "a message of more than %d "
		    "bytes",
		    CA_CMS_MAX);
		return -1;
	}
	if ((cms = SMIME_read_CMS(in, NULL)) == NULL) {
		ca_err_set(err, CA_ERR_INVALID, "not an S/MIME message");
		goto err;
	}
	nid = OBJ_obj2nid(CMS_get0_type(cms));
	if (nid != NID_id_smime_ct_authEnvelopedData &&
	    nid != NID_pkcs7_enveloped) {
		ca_err_set(err, CA_ERR_POLICY,
		    "an S/MIME message that is not "
		    "encrypted (%s)",
		    OBJ_nid2sn(nid));
		goto err;
	}
	rv = 0;
err:
	ERR_clear_error();
	CMS_ContentInfo_free(cms);
	BIO_free(in);
	return rv;
}

int
ca_cms_signer_ok(const char *ca_pem, const unsigned char *der, size_t len,
    time_t at, struct ca_err *err)
{
	const unsigned char *p = der;
	X509_STORE_CTX *ctx = NULL;
	X509_STORE *st = NULL;
	X509 *ca = NULL, *x = NULL;
	int rv = -1;

	ca_err_clear(err);
	/*
	 * The DER exactly as the message carried it (d2i, whole length):
	 * ca_x509_parse would also take a PEM block found inside the
	 * bytes, and the certificate checked must be the one that signed.
	 */
	if ((ca = pem_cert(ca_pem)) == NULL ||
	    (x = d2i_X509(NULL, &p, (long)len)) == NULL || p != der + len) {
		ca_err_set(err, CA_ERR_INVALID, "not a certificate");
		goto err;
	}
	if ((st = X509_STORE_new()) == NULL ||
	    X509_STORE_add_cert(st, ca) != 1 ||
	    (ctx = X509_STORE_CTX_new()) == NULL ||
	    X509_STORE_CTX_init(ctx, st, x, NULL) != 1) {
		ca_err_set(err, CA_ERR_CRYPTO, "out of memory");
		goto err;
	}
	X509_STORE_CTX_set_purpose(ctx, X509_PURPOSE_SMIME_SIGN);
	if (at != 0)
		X509_STORE_CTX_set_time(ctx, 0, at);
	if (X509_verify_cert(ctx) != 1) {
		ca_err_set(err, CA_ERR_SIGNATURE, "%s",
		    X509_verify_cert_error_string(
			X509_STORE_CTX_get_error(ctx)));
		goto err;
	}
	rv = 0;
err:
	ERR_clear_error();
	X509_STORE_CTX_free(ctx);
	X509_STORE_free(st);
	X509_free(x);
	X509_free(ca);
	return rv;
}

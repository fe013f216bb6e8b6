/*
 * ca_peer.c - what one registry checks of another domain's registry:
 * that a certificate it presents was issued by the CA its domain is
 * trusted by, and whether a DANE TLSA record names that CA.
 */
#include <string.h>

#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "ca.h"
#include "ca_internal.h"

/* A DER certificate that spans exactly len bytes, or NULL. */
static X509 *
der_cert(const unsigned char *der, size_t len)
{
	const unsigned char *p = der;
	X509 *x;

	if (len == 0 || len > 65536 ||
	    (x = d2i_X509(NULL, &p, (long)len)) == NULL)
		return NULL;
	if (p != der + len) {
		X509_free(x);
		return NULL;
	}
	return x;
}

int
ca_der_sha256_hex(const unsigned char *der, size_t len, char out[CA_FP_HEX_LEN])
{
	struct ca_err err;

	return ca_fp_hex(der, len, out, &err);
}

/*
 * The registry certificate's own rule, as irp_client holds it of the
 * registries it talks to: serverAuth in its extended key usage and no
 * user id in its subject, so that no user certificate of that domain
 * can speak for its registry.
 */
static int
is_registry_cert(X509 *x, struct ca_err *err)
{
	if (X509_NAME_get_index_by_NID(X509_get_subject_name(x), NID_userId,
		-1) >= 0 ||
	    !(X509_get_extended_key_usage(x) & XKU_SSL_SERVER)) {
		ca_err_set(err, CA_ERR_POLICY,
		    "the certificate is not a "
		    "registry's (a user certificate, or no serverAuth)");
		return 0;
	}
	return 1;
}

int
ca_verify_registry(const unsigned char *ca_der, size_t ca_len,
    const unsigned char *leaf_der, size_t leaf_len, time_t now,
    struct ca_err *err)
{
	X509 *ca = NULL, *leaf = NULL;
	X509_STORE *store = NULL;
	X509_STORE_CTX *ctx = NULL;
	int rv = -1, e;

	ca_err_clear(err);
	if ((ca = der_cert(ca_der, ca_len)) == NULL ||
	    (leaf = der_cert(leaf_der, leaf_len)) == NULL) {
		ca_err_set(err, CA_ERR_INVALID,
		    "a certificate that is not "
		    "one DER certificate");
		goto err;
	}
	if (!is_registry_cert(leaf, err))
		goto err;
	if ((store = X509_STORE_new()) == NULL ||
	    X509_STORE_add_cert(store, ca) != 1 ||
	    (ctx = X509_STORE_CTX_new()) == NULL ||
	    X509_STORE_CTX_init(ctx, store, leaf, NULL) != 1) {
		ca_err_set(err, CA_ERR_CRYPTO, "out of memory");
		goto err;
	}
	/* Only the one CA: no intermediate, no system store, the time given. */
	X509_STORE_CTX_set_time(ctx, 0, now);
	X509_STORE_CTX_set_purpose(ctx, X509_PURPOSE_SSL_SERVER);
	if (X509_verify_cert(ctx) != 1) {
		e = X509_STORE_CTX_get_error(ctx);
		ca_err_set(err, CA_ERR_SIGNATURE, "%s",
		    X509_verify_cert_error_string(e));
		goto err;
	}
	rv = 0;
err:
	X509_STORE_CTX_free(ctx);
	X509_STORE_free(store);
	X509_free(leaf);
	X509_free(ca);
	return rv;
}

int
ca_tlsa_match(const unsigned char *ca_der, size_t ca_len, int selector,
    int mtype, const unsigned char *data, size_t len)
{
	unsigned char *spki = NULL, md[EVP_MAX_MD_SIZE];
	const unsigned char *what;
	unsigned int mdlen = 0;
	size_t what_len;
	X509 *x = NULL;
	int n, rv = 0;

	if ((x = der_cert(ca_der, ca_len)) == NULL)
		return 0;
	if (selector == 0) {
		what = ca_der;
		what_len = ca_len;
	} else if (selector == 1) {
		if ((n = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(x), &spki)) <= 0)
			goto err;
		what = spki;
		what_len = (size_t)n;
	} else
		goto err;
	switch (mtype) {
	case 0:
		rv = len == what_len && memcmp(data, what, len) == 0;
		break;
	case 1:
	case 2:
		if (EVP_Digest(what, what_len, md, &mdlen,
			mtype == 1 ? EVP_sha256() : EVP_sha512(), NULL) != 1)
			goto err;
		rv = len == mdlen && CRYPTO_memcmp(data, md, mdlen) == 0;
		break;
	default:
		break;
	}
err:
	OPENSSL_free(spki);
	X509_free(x);
	return rv;
}

int
ca_is_ca_cert(const unsigned char *der, size_t len)
{
	X509 *x = der_cert(der, len);
	int rv;

	if (x == NULL)
		return 0;
	/* A CA certificate that signed itself. */
	rv = X509_check_ca(x) == 1 && X509_check_issued(x, x) == X509_V_OK;
	X509_free(x);
	return rv;
}

/*
 * ca_csr.c - deciding whether a CSR is acceptable.
 *
 * A CSR comes from the network, so everything about it is checked: the
 * PEM type, that the DER ends where it should, the key policy and the
 * self-signature (proof that the requester holds the private key).
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "ca_internal.h"

/*
 * The key types DESIGN.md accepts: EC P-256/P-384, Ed25519, RSA of
 * 2048 bits or more.  Messages say what to use instead.
 */
static int
key_policy(EVP_PKEY *pk, struct ca_err *err)
{
	char group[80];
	const char *type;
	int bits;

	if (EVP_PKEY_is_a(pk, "EC")) {
		if (!EVP_PKEY_get_utf8_string_param(pk,
		    OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof(group), NULL)) {
			ca_err_set(err, CA_ERR_POLICY, "EC key without a "
			    "named curve; use P-256 or P-384");
			return -1;
		}
		if (strcmp(group, "prime256v1") != 0 &&
		    strcmp(group, "P-256") != 0 &&
		    strcmp(group, "secp384r1") != 0 &&
		    strcmp(group, "P-384") != 0) {
			ca_err_set(err, CA_ERR_POLICY, "EC curve %s is not "
			    "accepted; use P-256 or P-384", group);
			return -1;
		}
		return 0;
	}
	if (EVP_PKEY_is_a(pk, "ED25519"))
		return 0;
	if (EVP_PKEY_is_a(pk, "RSA")) {
		bits = EVP_PKEY_get_bits(pk);
		if (bits < 2048) {
			ca_err_set(err, CA_ERR_POLICY, "RSA key of %d bits is "
			    "too small; at least 2048 required", bits);
			return -1;
		}
		if (bits > CA_RSA_MAX_BITS) {
			ca_err_set(err, CA_ERR_POLICY, "RSA key of %d bits is "
			    "too large; at most %d accepted", bits,
			    CA_RSA_MAX_BITS);
			return -1;
		}
		return 0;
	}
	type = EVP_PKEY_get0_type_name(pk);
	ca_err_set(err, CA_ERR_POLICY, "%s keys are not accepted; use EC "
	    "P-256/P-384, Ed25519 or RSA of at least 2048 bits",
	    type != NULL ? type : "unknown");
	return -1;
}

/*
 * Parse and check a CSR; on success the caller owns the X509_REQ.  The
 * policy is checked before the signature so that we never run a
 * verification with a key we would refuse anyway.
 */
X509_REQ *
ca_csr_load(const char *pem, size_t len, struct ca_err *err)
{
	unsigned char *der = NULL;
	const unsigned char *p;
	long dlen;
	X509_REQ *req = NULL;
	EVP_PKEY *pk;

	if (ca_pem_block(pem, len, "CERTIFICATE REQUEST", "CSR", &der, &dlen,
	    err) == -1)
		goto err;
	p = der;
	if ((req = d2i_X509_REQ(NULL, &p, dlen)) == NULL || p != der + dlen) {
		ca_err_set(err, CA_ERR_INVALID, "CSR is not a valid "
		    "PKCS#10 request");
		goto err;
	}
	if ((pk = X509_REQ_get0_pubkey(req)) == NULL) {
		ca_err_set(err, CA_ERR_INVALID, "the public key of the CSR "
		    "can not be read");
		goto err;
	}
	if (key_policy(pk, err) == -1)
		goto err;
	/* X509_REQ_verify returns -1 for some malformed input: test == 1. */
	if (X509_REQ_verify(req, pk) != 1) {
		ca_err_set(err, CA_ERR_SIGNATURE, "the signature of the CSR "
		    "does not verify");
		goto err;
	}
	OPENSSL_free(der);
	return req;
 err:
	OPENSSL_free(der);
	X509_REQ_free(req);
	return NULL;
}

struct ca_csr *
ca_csr_new(const char *pem, size_t len, struct ca_err *err)
{
	struct ca_csr *csr;
	X509_REQ *req;

	ca_err_clear(err);
	if ((req = ca_csr_load(pem, len, err)) == NULL)
		return NULL;
	if ((csr = calloc(1, sizeof(*csr))) == NULL) {
		ca_err_set(err, CA_ERR_CRYPTO, "out of memory");
		X509_REQ_free(req);
		return NULL;
	}
	csr->req = req;
	return csr;
}

void
ca_csr_free(struct ca_csr *csr)
{
	if (csr == NULL)
		return;
	X509_REQ_free(csr->req);
	free(csr);
}

int
ca_csr_check(const char *pem, size_t len, struct ca_err *err)
{
	X509_REQ *req;

	ca_err_clear(err);
	if ((req = ca_csr_load(pem, len, err)) == NULL)
		return -1;
	X509_REQ_free(req);
	return 0;
}

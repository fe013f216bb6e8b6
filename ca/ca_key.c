/*
 * ca_key.c - client side helpers: a new private key and a CSR for it.
 * dchat and the tests use these; the registry itself never sees a user's
 * private key except in the centralized (PKCS#12) model.
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/pem.h>
#include <openssl/x509.h>

#include "ca_internal.h"

/*
 * A new private key of type kt as unencrypted PKCS#8 PEM.  The caller
 * owns the result and frees it with ca_secret_free().
 */
char *
ca_key_new_pem(enum ca_keytype kt, struct ca_err *err)
{
	EVP_PKEY *key = NULL;
	char *pem = NULL;

	ca_err_clear(err);
	if ((key = ca_keygen(kt, err)) == NULL)
		goto err;
	pem = ca_key_to_pem(key, NULL, err);
 err:
	EVP_PKEY_free(key);
	return pem;
}

/*
 * A CSR with subject UID=<userid>, CN=<cn> for the key in key_pem, signed
 * by that key.  The registry ignores the subject (it uses its own record),
 * but a meaningful one helps a person who looks at the file.  The caller
 * frees the PEM with free().
 */
char *
ca_csr_new_pem(const char *key_pem, const char *userid, const char *cn,
    struct ca_err *err)
{
	EVP_PKEY *key = NULL;
	X509_REQ *req = NULL;
	X509_NAME *name = NULL;
	BIO *bio = NULL;
	char *out = NULL;

	ca_err_clear(err);
	if (key_pem == NULL) {
		ca_err_set(err, CA_ERR_INVALID, "no private key given");
		goto err;
	}
	if ((key = ca_key_from_pem(key_pem, strlen(key_pem), err)) == NULL)
		goto err;
	if ((name = ca_name_new(userid, cn, NULL, err)) == NULL)
		goto err;
	if ((req = X509_REQ_new()) == NULL ||
	    !X509_REQ_set_version(req, X509_REQ_VERSION_1) ||
	    !X509_REQ_set_subject_name(req, name) ||
	    !X509_REQ_set_pubkey(req, key)) {
		ca_err_set(err, CA_ERR_CRYPTO, "cannot build the CSR");
		goto err;
	}
	if (X509_REQ_sign(req, key, ca_sign_md(key)) <= 0) {
		ca_err_set(err, CA_ERR_CRYPTO, "cannot sign the CSR");
		goto err;
	}
	if ((bio = BIO_new(BIO_s_mem())) == NULL ||
	    !PEM_write_bio_X509_REQ(bio, req))
		ca_err_set(err, CA_ERR_CRYPTO, "cannot encode the CSR");
	else
		out = ca_bio_string(bio, "the CSR", NULL, err);
 err:
	BIO_free(bio);
	X509_REQ_free(req);
	X509_NAME_free(name);
	EVP_PKEY_free(key);
	return out;
}

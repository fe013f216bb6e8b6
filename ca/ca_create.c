/*
 * ca_create.c - making a new CA, loading an existing one (its key in a
 * signer, ca_signer.h), and the accessors of struct ca.
 */
#include <sys/stat.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "ca_internal.h"

/* The self-signed CA certificate for key. */
static X509 *
ca_selfsign(EVP_PKEY *key, const char *cn, int days, struct ca_err *err)
{
	X509 *x = NULL;
	X509_NAME *name = NULL;
	X509V3_CTX ctx;

	if ((name = ca_name_new(NULL, cn, NULL, err)) == NULL)
		goto err;
	if ((x = X509_new()) == NULL ||
	    !X509_set_version(x, X509_VERSION_3) ||
	    !X509_set_subject_name(x, name) ||
	    !X509_set_issuer_name(x, name) ||
	    !X509_set_pubkey(x, key)) {
		ca_err_set(err, CA_ERR_CRYPTO,
		    "cannot build the CA certificate");
		goto err;
	}
	if (ca_serial_set_random(x, err) == -1 ||
	    ca_set_validity(x, days, err) == -1)
		goto err;
	memset(&ctx, 0, sizeof(ctx));
	X509V3_set_ctx(&ctx, x, x, NULL, NULL, 0);
	if (ca_ext_add(x, &ctx, NID_basic_constraints, "critical,CA:TRUE",
	    err) == -1 ||
	    ca_ext_add(x, &ctx, NID_key_usage, "critical,keyCertSign,cRLSign",
	    err) == -1 ||
	    ca_ext_add(x, &ctx, NID_subject_key_identifier, "hash",
	    err) == -1)
		goto err;
	/*
	 * Signed with the new key itself, not through a signer: making a CA
	 * is making its key, and signers refuse CA certificates.
	 */
	if (X509_sign(x, key, ca_sign_md(key)) <= 0) {
		ca_err_set(err, CA_ERR_CRYPTO,
		    "cannot sign the CA certificate");
		goto err;
	}
	X509_NAME_free(name);
	return x;
 err:
	X509_NAME_free(name);
	X509_free(x);
	return NULL;
}

int
ca_create(const char *key_path, const char *cert_path, enum ca_keytype kt,
    const char *cn, int days, struct ca_err *err)
{
	struct stat st;
	EVP_PKEY *key = NULL;
	X509 *x = NULL;
	char *key_pem = NULL, *cert_pem = NULL;
	unsigned char *der = NULL;
	size_t key_len = 0, der_len;
	int key_written = 0, rv = -1;

	ca_err_clear(err);
	if (key_path == NULL || cert_path == NULL) {
		ca_err_set(err, CA_ERR_INVALID, "key and certificate paths "
		    "are required");
		goto err;
	}
	/*
	 * Look first so that an existing CA is reported before we spend
	 * time on a key; O_EXCL below is what really protects it.
	 */
	if (lstat(key_path, &st) == 0 || lstat(cert_path, &st) == 0) {
		ca_err_set(err, CA_ERR_EXISTS, "%s exists; refusing to "
		    "overwrite a CA", lstat(key_path, &st) == 0 ?
		    key_path : cert_path);
		goto err;
	}
	if ((key = ca_keygen(kt, err)) == NULL ||
	    (x = ca_selfsign(key, cn, days, err)) == NULL)
		goto err;
	if ((key_pem = ca_key_to_pem(key, &key_len, err)) == NULL ||
	    ca_cert_encode(x, &cert_pem, &der, &der_len, err) == -1)
		goto err;
	if (ca_file_create(key_path, key_pem, key_len, 0600, err) == -1)
		goto err;
	key_written = 1;
	if (ca_file_create(cert_path, cert_pem, strlen(cert_pem), 0644,
	    err) == -1)
		goto err;
	rv = 0;
 err:
	if (rv == -1 && key_written)
		unlink(key_path);
	ca_secret_free(key_pem);
	free(cert_pem);
	free(der);
	X509_free(x);
	EVP_PKEY_free(key);
	return rv;
}

struct ca *
ca_open(const char *key_path, const char *cert_path, struct ca_err *err)
{
	struct ca_signer *s;

	ca_err_clear(err);
	if ((s = ca_signer_open_key(key_path, cert_path, err)) == NULL)
		return NULL;
	return ca_open_signer(cert_path, s, err);
}

/* Whether s signs with the key of cert. */
static int
signer_matches(struct ca_signer *s, X509 *cert)
{
	const unsigned char *spki, *p;
	EVP_PKEY *pub;
	size_t len;
	int ok;

	p = spki = ca_signer_spki(s, &len);
	if ((pub = d2i_PUBKEY(NULL, &p, (long)len)) == NULL)
		return 0;
	ok = p == spki + len && EVP_PKEY_eq(pub, X509_get0_pubkey(cert)) == 1;
	EVP_PKEY_free(pub);
	return ok;
}

struct ca *
ca_open_signer(const char *cert_path, struct ca_signer *s, struct ca_err *err)
{
	struct ca *ca = NULL;

	ca_err_clear(err);
	if (s == NULL || cert_path == NULL) {
		ca_err_set(err, CA_ERR_INVALID, "a signer and a certificate "
		    "path are required");
		goto err;
	}
	if ((ca = calloc(1, sizeof(*ca))) == NULL) {
		ca_err_sys(err, CA_ERR_IO, "calloc");
		goto err;
	}
	ca->signer = s;
	s = NULL;
	if ((ca->cert = ca_cert_load(cert_path, err)) == NULL)
		goto err;
	if (X509_check_ca(ca->cert) == 0) {
		ca_err_set(err, CA_ERR_POLICY, "%s is not a CA certificate",
		    cert_path);
		goto err;
	}
	if (!signer_matches(ca->signer, ca->cert)) {
		ca_err_set(err, CA_ERR_INVALID, "%s does not belong to the "
		    "key of the CA signer", cert_path);
		goto err;
	}
	/* Keep both encodings and the fingerprint: they never change. */
	if (ca_cert_encode(ca->cert, &ca->pem, &ca->der, &ca->der_len,
	    err) == -1 ||
	    ca_fp_hex(ca->der, ca->der_len, ca->fp, err) == -1 ||
	    ca_leaf_ext_init(ca, err) == -1 ||
	    ca_sign_init(ca, err) == -1)
		goto err;
	return ca;
 err:
	ca_signer_free(s);
	ca_free(ca);
	return NULL;
}

void
ca_free(struct ca *ca)
{
	if (ca == NULL)
		return;
	ca_leaf_ext_free(ca);
	ca_sign_free(ca);
	ca_signer_free(ca->signer);
	X509_free(ca->cert);
	free(ca->pem);
	free(ca->der);
	free(ca);
}

const char *
ca_cert_pem(const struct ca *ca)
{
	return ca->pem;
}

const unsigned char *
ca_cert_der(const struct ca *ca, size_t *len)
{
	if (len != NULL)
		*len = ca->der_len;
	return ca->der;
}

const char *
ca_fingerprint(const struct ca *ca)
{
	return ca->fp;
}

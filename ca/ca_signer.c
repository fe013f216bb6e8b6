/*
 * ca_signer.c - the signer seam (ca_signer.h), and the signer that holds
 * the CA key in this process: dirctl's, the tests', and what the signer
 * process of dird serves with.
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/err.h>

#include "ca_internal.h"

struct ca_signer {
	const struct ca_signer_ops *ops;
	void *impl;
	unsigned char *spki; /* DER SubjectPublicKeyInfo */
	size_t spki_len;
};

struct ca_signer *
ca_signer_new(const struct ca_signer_ops *ops, void *impl,
    const unsigned char *spki, size_t spki_len, struct ca_err *err)
{
	struct ca_signer *s;

	if ((s = calloc(1, sizeof(*s))) == NULL ||
	    (s->spki = malloc(spki_len)) == NULL) {
		ca_err_sys(err, CA_ERR_CRYPTO, "malloc");
		free(s);
		ops->free(impl);
		return NULL;
	}
	memcpy(s->spki, spki, spki_len);
	s->spki_len = spki_len;
	s->ops = ops;
	s->impl = impl;
	return s;
}

void
ca_signer_free(struct ca_signer *s)
{
	if (s == NULL)
		return;
	s->ops->free(s->impl);
	free(s->spki);
	free(s);
}

int
ca_signer_sign(struct ca_signer *s, enum ca_tbs what, const unsigned char *tbs,
    size_t len, unsigned char *sig, size_t *sig_len, struct ca_err *err)
{
	ca_err_clear(err);
	*sig_len = 0;
	return s->ops->sign(s->impl, what, tbs, len, sig, sig_len, err);
}

const unsigned char *
ca_signer_spki(const struct ca_signer *s, size_t *len)
{
	*len = s->spki_len;
	return s->spki;
}

/* ---- the key in this process ------------------------------------------ */

struct key_signer {
	EVP_PKEY *key;
	X509 *cert;	    /* the CA's: what the checks compare with */
	unsigned char *alg; /* the key's signature algorithm, DER */
	size_t alg_len;
};

static void
key_free(void *impl)
{
	struct key_signer *k = impl;

	if (k == NULL)
		return;
	EVP_PKEY_free(k->key);
	X509_free(k->cert);
	OPENSSL_free(k->alg);
	free(k);
}

static int
key_sign(void *impl, enum ca_tbs what, const unsigned char *tbs, size_t len,
    unsigned char *sig, size_t *sig_len, struct ca_err *err)
{
	struct key_signer *k = impl;
	EVP_MD_CTX *ctx = NULL;
	size_t n = CA_SIG_MAX;
	int rv = -1;

	if (ca_tbs_check(k->cert, k->alg, k->alg_len, what, tbs, len, err) ==
	    -1)
		return -1;
	/* The whole TBS in one call: Ed25519 knows no other way. */
	if ((ctx = EVP_MD_CTX_new()) == NULL ||
	    EVP_DigestSignInit(ctx, NULL, ca_sign_md(k->key), NULL, k->key) <=
		0 ||
	    EVP_DigestSign(ctx, sig, &n, tbs, len) <= 0) {
		ca_err_set(err, CA_ERR_CRYPTO, "the CA key cannot sign");
		goto err;
	}
	*sig_len = n;
	rv = 0;
err:
	EVP_MD_CTX_free(ctx);
	return rv;
}

static const struct ca_signer_ops key_ops = { key_sign, key_free };

/* The private key of key_path; the file's bytes are wiped after. */
static EVP_PKEY *
key_load(const char *key_path, struct ca_err *err)
{
	EVP_PKEY *key;
	char *buf = NULL;
	size_t len = 0;

	if (ca_file_read(key_path, CA_FILE_MAX, &buf, &len, err) == -1)
		return NULL;
	if ((key = ca_key_from_pem(buf, len, err)) == NULL)
		ca_err_prefix(err, key_path);
	OPENSSL_cleanse(buf, len);
	free(buf);
	return key;
}

/* The certificate of cert_path. */
X509 *
ca_cert_load(const char *cert_path, struct ca_err *err)
{
	X509 *x;
	char *buf = NULL;
	size_t len;

	if (ca_file_read(cert_path, CA_PEM_MAX, &buf, &len, err) == -1)
		return NULL;
	if ((x = ca_x509_parse((unsigned char *)buf, len, err)) == NULL)
		ca_err_prefix(err, cert_path);
	free(buf);
	return x;
}

struct ca_signer *
ca_signer_open_key(const char *key_path, const char *cert_path,
    struct ca_err *err)
{
	struct key_signer *k;
	unsigned char *spki = NULL;
	struct ca_signer *s = NULL;
	int n;

	ca_err_clear(err);
	if (key_path == NULL || cert_path == NULL) {
		ca_err_set(err, CA_ERR_INVALID,
		    "key and certificate paths "
		    "are required");
		return NULL;
	}
	if ((k = calloc(1, sizeof(*k))) == NULL) {
		ca_err_sys(err, CA_ERR_IO, "calloc");
		return NULL;
	}
	if ((k->key = key_load(key_path, err)) == NULL ||
	    (k->cert = ca_cert_load(cert_path, err)) == NULL)
		goto err;
	if (X509_check_private_key(k->cert, k->key) != 1) {
		ca_err_set(err, CA_ERR_INVALID,
		    "%s does not belong to the "
		    "key in %s",
		    cert_path, key_path);
		goto err;
	}
	if (X509_check_ca(k->cert) == 0) {
		ca_err_set(err, CA_ERR_POLICY, "%s is not a CA certificate",
		    cert_path);
		goto err;
	}
	if (EVP_PKEY_get_size(k->key) > CA_SIG_MAX) {
		ca_err_set(err, CA_ERR_POLICY,
		    "%s: the key's signatures are "
		    "longer than %d bytes",
		    key_path, CA_SIG_MAX);
		goto err;
	}
	if (ca_sigalg_der(k->key, &k->alg, &k->alg_len, err) == -1)
		goto err;
	if ((n = i2d_PUBKEY(k->key, &spki)) <= 0) {
		ca_err_set(err, CA_ERR_CRYPTO,
		    "cannot encode the CA's public "
		    "key");
		goto err;
	}
	s = ca_signer_new(&key_ops, k, spki, (size_t)n, err);
	OPENSSL_free(spki);
	return s;
err:
	key_free(k);
	return NULL;
}

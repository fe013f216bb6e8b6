/*
 * ca_p12.c - the centralized model: the registry generates the user's key
 * and hands it over, with the certificate and the CA certificate, in a
 * passphrase-protected PKCS#12 file.
 */
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/pkcs12.h>

#include "ca_internal.h"

/*
 * PBKDF2 iterations for the encryption and the MAC.  High enough to slow
 * down guessing, low enough that tests and enrolment stay quick.
 */
#define CA_P12_ITER 200000

/*
 * key, x and chain as one PKCS#12: AES-256-CBC for both parts, PBKDF2
 * with CA_P12_ITER iterations, a SHA-256 MAC.  *der is new (free()).
 */
static int
p12_encode(EVP_PKEY *key, X509 *x, STACK_OF(X509) *chain, const char *pass,
    const char *name, unsigned char **der, size_t *len, struct ca_err *err)
{
	PKCS12 *pk = NULL;
	unsigned char *buf = NULL, *p;
	int n, rv = -1;

	if (pass == NULL || pass[0] == '\0' || strlen(pass) > CA_PASS_MAX) {
		ca_err_set(err, CA_ERR_INVALID, "a PKCS#12 passphrase of 1 to "
		    "%d bytes is required", CA_PASS_MAX);
		return -1;
	}
	/* mac_iter -1: no MAC yet, PKCS12_set_mac adds it with SHA-256. */
	if ((pk = PKCS12_create_ex(pass, name, key, x, chain,
	    NID_aes_256_cbc, NID_aes_256_cbc, CA_P12_ITER, -1, 0, NULL,
	    NULL)) == NULL ||
	    !PKCS12_set_mac(pk, pass, -1, NULL, 0, CA_P12_ITER,
	    EVP_sha256())) {
		ca_err_set(err, CA_ERR_CRYPTO, "cannot build the PKCS#12");
		goto err;
	}
	if ((n = i2d_PKCS12(pk, NULL)) <= 0) {
		ca_err_set(err, CA_ERR_CRYPTO, "cannot encode the PKCS#12");
		goto err;
	}
	if ((buf = malloc((size_t)n)) == NULL) {
		ca_err_sys(err, CA_ERR_CRYPTO, "malloc");
		goto err;
	}
	p = buf;
	if (i2d_PKCS12(pk, &p) != n) {
		ca_err_set(err, CA_ERR_CRYPTO, "cannot encode the PKCS#12");
		goto err;
	}
	*der = buf;
	*len = (size_t)n;
	buf = NULL;
	rv = 0;
 err:
	free(buf);
	PKCS12_free(pk);
	return rv;
}

int
ca_issue_p12(const struct ca *ca, const struct ca_subject *subj,
    enum ca_keytype kt, int days, const struct ca_urls *urls,
    const char *passphrase,
    unsigned char **p12, size_t *p12_len, struct ca_issued *out,
    struct ca_err *err)
{
	EVP_PKEY *key = NULL;
	X509 *x = NULL;
	STACK_OF(X509) *chain = NULL;
	unsigned char *buf = NULL;
	size_t len;
	int rv = -1;

	ca_err_clear(err);
	memset(out, 0, sizeof(*out));
	*p12 = NULL;
	*p12_len = 0;
	if (passphrase == NULL || passphrase[0] == '\0' ||
	    strlen(passphrase) > CA_PASS_MAX) {
		ca_err_set(err, CA_ERR_INVALID, "a PKCS#12 passphrase of 1 to "
		    "%d bytes is required", CA_PASS_MAX);
		goto err;
	}
	if ((key = ca_keygen(kt, err)) == NULL)
		goto err;
	if ((x = ca_issue_for_subject(ca, key, NULL, subj, days, urls,
	    err)) == NULL)
		goto err;
	/* The stack borrows ca->cert: sk_X509_free, not sk_X509_pop_free. */
	if ((chain = sk_X509_new_null()) == NULL ||
	    !sk_X509_push(chain, ca->cert)) {
		ca_err_set(err, CA_ERR_CRYPTO, "cannot build the PKCS#12");
		goto err;
	}
	if (p12_encode(key, x, chain, passphrase, subj->userid, &buf, &len,
	    err) == -1)
		goto err;
	if (ca_issued_fill(x, out, err) == -1)
		goto err;
	*p12 = buf;
	*p12_len = len;
	buf = NULL;
	rv = 0;
 err:
	free(buf);
	sk_X509_free(chain);
	X509_free(x);
	EVP_PKEY_free(key);
	return rv;
}

/*
 * A backup is stored as given; this only makes sure it is one PKCS#12
 * structure, exactly the bytes given, protected by a MAC.
 */
int
ca_p12_check(const unsigned char *buf, size_t len, struct ca_err *err)
{
	const unsigned char *p = buf;
	PKCS12 *p12;
	int rv = -1;

	ca_err_clear(err);
	if (len == 0 || len > 16 * 1024 * 1024 || len > (size_t)LONG_MAX) {
		ca_err_set(err, CA_ERR_INVALID, "the PKCS#12 is empty or too "
		    "large");
		return -1;
	}
	if ((p12 = d2i_PKCS12(NULL, &p, (long)len)) == NULL) {
		ca_err_set(err, CA_ERR_INVALID, "not a PKCS#12 file (DER)");
		return -1;
	}
	if ((size_t)(p - buf) != len)
		ca_err_set(err, CA_ERR_INVALID, "trailing data after the "
		    "PKCS#12 structure");
	else if (!PKCS12_mac_present(p12))
		ca_err_set(err, CA_ERR_INVALID, "the PKCS#12 has no MAC; export "
		    "it with a passphrase");
	else
		rv = 0;
	PKCS12_free(p12);
	return rv;
}

int
ca_p12_pack(const char *key_pem, const char *cert_pem, const char *ca_pem,
    const char *passphrase, const char *name, unsigned char **der,
    size_t *len, struct ca_err *err)
{
	STACK_OF(X509) *chain = NULL;
	EVP_PKEY *key = NULL;
	X509 *x = NULL, *cax = NULL;
	int rv = -1;

	ca_err_clear(err);
	*der = NULL;
	*len = 0;
	if ((key = ca_key_from_pem(key_pem, strlen(key_pem), err)) == NULL ||
	    (x = ca_x509_parse((const unsigned char *)cert_pem,
	    strlen(cert_pem), err)) == NULL ||
	    (cax = ca_x509_parse((const unsigned char *)ca_pem,
	    strlen(ca_pem), err)) == NULL)
		goto err;
	if (X509_check_private_key(x, key) != 1) {
		ca_err_set(err, CA_ERR_INVALID, "the key and the certificate "
		    "do not match");
		goto err;
	}
	if ((chain = sk_X509_new_null()) == NULL || !sk_X509_push(chain, cax)) {
		ca_err_set(err, CA_ERR_CRYPTO, "cannot build the PKCS#12");
		goto err;
	}
	cax = NULL; /* the stack owns it */
	rv = p12_encode(key, x, chain, passphrase, name, der, len, err);
 err:
	ERR_clear_error();
	sk_X509_pop_free(chain, X509_free);
	X509_free(cax);
	X509_free(x);
	EVP_PKEY_free(key);
	return rv;
}

int
ca_p12_unpack(const unsigned char *der, size_t len, const char *passphrase,
    char **key_pem, char **cert_pem, struct ca_err *err)
{
	const unsigned char *p = der;
	STACK_OF(X509) *chain = NULL;
	EVP_PKEY *key = NULL;
	PKCS12 *p12 = NULL;
	X509 *x = NULL;
	unsigned char *cder = NULL;
	size_t cder_len;
	int rv = -1;

	ca_err_clear(err);
	*key_pem = *cert_pem = NULL;
	if (ca_p12_check(der, len, err) == -1)
		return -1;
	if ((p12 = d2i_PKCS12(NULL, &p, (long)len)) == NULL ||
	    PKCS12_parse(p12, passphrase, &key, &x, &chain) != 1 ||
	    key == NULL || x == NULL) {
		ca_err_set(err, CA_ERR_INVALID, "the PKCS#12 does not open "
		    "with this passphrase (or is damaged)");
		goto err;
	}
	if (X509_check_private_key(x, key) != 1) {
		ca_err_set(err, CA_ERR_INVALID, "the PKCS#12's key and "
		    "certificate do not match");
		goto err;
	}
	if ((*key_pem = ca_key_to_pem(key, NULL, err)) == NULL ||
	    ca_cert_encode(x, cert_pem, &cder, &cder_len, err) == -1)
		goto err;
	rv = 0;
 err:
	if (rv == -1) {
		ca_secret_free(*key_pem);
		*key_pem = NULL;
	}
	ERR_clear_error();
	free(cder);
	PKCS12_free(p12);
	sk_X509_pop_free(chain, X509_free);
	X509_free(x);
	EVP_PKEY_free(key);
	return rv;
}

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
static int p12_der(PKCS12 *, unsigned char **, size_t *, struct ca_err *);

static int
p12_encode(EVP_PKEY *key, X509 *x, STACK_OF(X509) *chain, const char *pass,
    const char *name, unsigned char **der, size_t *len, struct ca_err *err)
{
	PKCS12 *pk = NULL;
	int rv = -1;

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
	rv = p12_der(pk, der, len, err);
 err:
	PKCS12_free(pk);
	return rv;
}

/* pk as DER: *der new (free()). */
static int
p12_der(PKCS12 *pk, unsigned char **der, size_t *len, struct ca_err *err)
{
	unsigned char *buf = NULL, *p;
	int n, rv = -1;

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

/*
 * One more pair into the bags: the certificate into certs, the key
 * (encrypted, as PKCS12_create does it) into keys, tied by the SHA-1 of
 * the certificate as localKeyID; the first pair also gets the name.
 */
static int
bag_pair(STACK_OF(PKCS12_SAFEBAG) **certs, STACK_OF(PKCS12_SAFEBAG) **keys,
    EVP_PKEY *key, X509 *x, const char *pass, const char *name)
{
	unsigned char id[EVP_MAX_MD_SIZE];
	unsigned int idlen;
	PKCS12_SAFEBAG *cb, *kb;

	if (!X509_digest(x, EVP_sha1(), id, &idlen) ||
	    (cb = PKCS12_add_cert(certs, x)) == NULL ||
	    !PKCS12_add_localkeyid(cb, id, (int)idlen) ||
	    (kb = PKCS12_add_key_ex(keys, key, 0, CA_P12_ITER,
	    NID_aes_256_cbc, pass, NULL, NULL)) == NULL ||
	    !PKCS12_add_localkeyid(kb, id, (int)idlen))
		return -1;
	if (name != NULL && (!PKCS12_add_friendlyname(cb, name, -1) ||
	    !PKCS12_add_friendlyname(kb, name, -1)))
		return -1;
	return 0;
}

/* A key and a certificate that must belong together, read: 0 or -1. */
static int
pair_read(const char *key_pem, const char *cert_pem, EVP_PKEY **key,
    X509 **x, struct ca_err *err)
{
	if ((*key = ca_key_from_pem(key_pem, strlen(key_pem), err)) == NULL ||
	    (*x = ca_x509_parse((const unsigned char *)cert_pem,
	    strlen(cert_pem), err)) == NULL)
		return -1;
	if (X509_check_private_key(*x, *key) != 1) {
		ca_err_set(err, CA_ERR_INVALID, "a key and its certificate do "
		    "not match");
		return -1;
	}
	return 0;
}

int
ca_p12_pack_more(const char *key_pem, const char *cert_pem,
    const char *ca_pem, const struct ca_p12_pair *more, size_t nmore,
    const char *passphrase, const char *name, unsigned char **der,
    size_t *len, struct ca_err *err)
{
	STACK_OF(PKCS12_SAFEBAG) *certs = NULL, *keys = NULL;
	STACK_OF(PKCS7) *safes = NULL;
	PKCS12 *pk = NULL;
	EVP_PKEY *key = NULL;
	X509 *x = NULL;
	size_t i;
	int rv = -1;

	ca_err_clear(err);
	*der = NULL;
	*len = 0;
	if (passphrase == NULL || passphrase[0] == '\0' ||
	    strlen(passphrase) > CA_PASS_MAX) {
		ca_err_set(err, CA_ERR_INVALID, "a PKCS#12 passphrase of 1 to "
		    "%d bytes is required", CA_PASS_MAX);
		return -1;
	}
	if (nmore >= CA_P12_PAIRS_MAX) {
		ca_err_set(err, CA_ERR_INVALID, "at most %d keys go into one "
		    "PKCS#12", CA_P12_PAIRS_MAX);
		return -1;
	}
	for (i = 0; i <= nmore; i++) {
		if (pair_read(i == 0 ? key_pem : more[i - 1].key_pem,
		    i == 0 ? cert_pem : more[i - 1].cert_pem, &key, &x,
		    err) == -1)
			goto err;
		if (bag_pair(&certs, &keys, key, x, passphrase,
		    i == 0 ? name : NULL) == -1)
			goto crypto;
		EVP_PKEY_free(key);
		X509_free(x);
		key = NULL;
		x = NULL;
	}
	if ((x = ca_x509_parse((const unsigned char *)ca_pem, strlen(ca_pem),
	    err)) == NULL)
		goto err;
	/* As PKCS12_create lays it out: certificates encrypted, keys
	 * shrouded each, a SHA-256 MAC over it all. */
	if (PKCS12_add_cert(&certs, x) == NULL ||
	    !PKCS12_add_safe_ex(&safes, certs, NID_aes_256_cbc, CA_P12_ITER,
	    passphrase, NULL, NULL) ||
	    !PKCS12_add_safe_ex(&safes, keys, -1, 0, NULL, NULL, NULL) ||
	    (pk = PKCS12_add_safes_ex(safes, 0, NULL, NULL)) == NULL ||
	    !PKCS12_set_mac(pk, passphrase, -1, NULL, 0, CA_P12_ITER,
	    EVP_sha256()))
		goto crypto;
	rv = p12_der(pk, der, len, err);
	goto err;
 crypto:
	ca_err_set(err, CA_ERR_CRYPTO, "cannot build the PKCS#12");
 err:
	ERR_clear_error();
	sk_PKCS12_SAFEBAG_pop_free(certs, PKCS12_SAFEBAG_free);
	sk_PKCS12_SAFEBAG_pop_free(keys, PKCS12_SAFEBAG_free);
	sk_PKCS7_pop_free(safes, PKCS7_free);
	PKCS12_free(pk);
	X509_free(x);
	EVP_PKEY_free(key);
	return rv;
}

/* The keys and certificates of one safe of a PKCS#12, onto the stacks. */
struct p12_keys {
	EVP_PKEY *k[CA_P12_PAIRS_MAX];
	int n;
};

static int
safe_read(PKCS7 *p7, const char *pass, struct p12_keys *keys,
    STACK_OF(X509) *certs)
{
	STACK_OF(PKCS12_SAFEBAG) *bags = NULL;
	const PKCS12_SAFEBAG *bag;
	PKCS8_PRIV_KEY_INFO *p8;
	EVP_PKEY *key;
	X509 *x;
	int i, nid = OBJ_obj2nid(p7->type), rv = -1;

	if (nid == NID_pkcs7_data)
		bags = PKCS12_unpack_p7data(p7);
	else if (nid == NID_pkcs7_encrypted)
		bags = PKCS12_unpack_p7encdata(p7, pass, -1);
	if (bags == NULL)
		return -1;
	for (i = 0; i < sk_PKCS12_SAFEBAG_num(bags); i++) {
		bag = sk_PKCS12_SAFEBAG_value(bags, i);
		key = NULL;
		x = NULL;
		switch (PKCS12_SAFEBAG_get_nid(bag)) {
		case NID_keyBag:
			key = EVP_PKCS82PKEY(PKCS12_SAFEBAG_get0_p8inf(bag));
			break;
		case NID_pkcs8ShroudedKeyBag:
			if ((p8 = PKCS12_decrypt_skey(bag, pass, -1)) != NULL)
				key = EVP_PKCS82PKEY(p8);
			PKCS8_PRIV_KEY_INFO_free(p8);
			break;
		case NID_certBag:
			if (PKCS12_SAFEBAG_get_bag_nid(bag) ==
			    NID_x509Certificate)
				x = PKCS12_SAFEBAG_get1_cert(bag);
			break;
		}
		if ((key != NULL && keys->n >= CA_P12_PAIRS_MAX) ||
		    (x != NULL && (sk_X509_num(certs) > 2 * CA_P12_PAIRS_MAX ||
		    !sk_X509_push(certs, x)))) {
			EVP_PKEY_free(key);
			X509_free(x);
			goto err;
		}
		if (key != NULL)
			keys->k[keys->n++] = key;
	}
	rv = 0;
 err:
	sk_PKCS12_SAFEBAG_pop_free(bags, PKCS12_SAFEBAG_free);
	return rv;
}

void
ca_p12_pairs_free(struct ca_p12_pair *pairs, size_t n)
{
	size_t i;

	for (i = 0; pairs != NULL && i < n; i++) {
		ca_secret_free(pairs[i].key_pem);
		free(pairs[i].cert_pem);
	}
	free(pairs);
}

int
ca_p12_unpack_all(const unsigned char *der, size_t len,
    const char *passphrase, struct ca_p12_pair **pairs, size_t *n,
    struct ca_err *err)
{
	const unsigned char *p = der;
	STACK_OF(PKCS7) *safes = NULL;
	struct p12_keys keys = { { NULL }, 0 };
	STACK_OF(X509) *certs = NULL;
	struct ca_p12_pair *out = NULL;
	unsigned char *cder = NULL;
	PKCS12 *p12 = NULL;
	size_t cder_len, got = 0;
	int i, j, rv = -1;

	ca_err_clear(err);
	*pairs = NULL;
	*n = 0;
	if (ca_p12_check(der, len, err) == -1)
		return -1;
	if ((p12 = d2i_PKCS12(NULL, &p, (long)len)) == NULL ||
	    !PKCS12_verify_mac(p12, passphrase, -1) ||
	    (safes = PKCS12_unpack_authsafes(p12)) == NULL) {
		ca_err_set(err, CA_ERR_INVALID, "the PKCS#12 does not open "
		    "with this passphrase (or is damaged)");
		goto err;
	}
	if ((certs = sk_X509_new_null()) == NULL ||
	    (out = calloc(CA_P12_PAIRS_MAX, sizeof(*out))) == NULL) {
		ca_err_sys(err, CA_ERR_CRYPTO, "malloc");
		goto err;
	}
	for (i = 0; i < sk_PKCS7_num(safes); i++)
		if (safe_read(sk_PKCS7_value(safes, i), passphrase, &keys,
		    certs) == -1) {
			ca_err_set(err, CA_ERR_INVALID, "a part of the PKCS#12 "
			    "does not open with this passphrase (or is "
			    "damaged, or holds too many keys)");
			goto err;
		}
	/* Each key with the certificate it belongs to, in the file's order. */
	for (i = 0; i < keys.n; i++)
		for (j = 0; j < sk_X509_num(certs); j++) {
			if (X509_check_private_key(sk_X509_value(certs, j),
			    keys.k[i]) != 1)
				continue;
			if ((out[got].key_pem = ca_key_to_pem(keys.k[i], NULL,
			    err)) == NULL ||
			    ca_cert_encode(sk_X509_value(certs, j),
			    &out[got].cert_pem, &cder, &cder_len, err) == -1) {
				got++;
				goto err;
			}
			free(cder);
			cder = NULL;
			got++;
			break;
		}
	if (got == 0) {
		ca_err_set(err, CA_ERR_INVALID, "the PKCS#12 holds no key with "
		    "its certificate");
		goto err;
	}
	*pairs = out;
	*n = got;
	out = NULL;
	rv = 0;
 err:
	ERR_clear_error();
	ca_p12_pairs_free(out, got);
	free(cder);
	for (i = 0; i < keys.n; i++)
		EVP_PKEY_free(keys.k[i]);
	sk_X509_pop_free(certs, X509_free);
	sk_PKCS7_pop_free(safes, PKCS7_free);
	PKCS12_free(p12);
	return rv;
}

int
ca_p12_pack(const char *key_pem, const char *cert_pem, const char *ca_pem,
    const char *passphrase, const char *name, unsigned char **der,
    size_t *len, struct ca_err *err)
{
	return ca_p12_pack_more(key_pem, cert_pem, ca_pem, NULL, 0,
	    passphrase, name, der, len, err);
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

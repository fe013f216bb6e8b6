/*
 * identity.c - a new key and certificate for this device.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "identity.h"

/* 1 when cert_pem certifies the public half of key_pem. */
static int
pair_matches(const char *key_pem, const char *cert_pem)
{
	EVP_PKEY *pkey = NULL;
	X509 *x = NULL;
	BIO *b;
	int ok = 0;

	if ((b = BIO_new_mem_buf(key_pem, -1)) != NULL)
		pkey = PEM_read_bio_PrivateKey(b, NULL, NULL, NULL);
	BIO_free(b);
	if ((b = BIO_new_mem_buf(cert_pem, -1)) != NULL)
		x = PEM_read_bio_X509(b, NULL, NULL, NULL);
	BIO_free(b);
	if (pkey != NULL && x != NULL)
		ok = X509_check_private_key(x, pkey) == 1;
	ERR_clear_error();
	EVP_PKEY_free(pkey);
	X509_free(x);
	return ok;
}

/* The registry's certificate for csr, asked for as proof says. */
static int
ask(struct irp_client *c, const char *uid, const struct identity_proof *proof,
    const char *csr, struct irp_cert *cert, struct irp_err *ierr)
{
	if (proof == NULL)
		return irp_renew(c, csr, cert, ierr);
	if (proof->code != NULL)
		return irp_enroll(c, proof->code, csr, cert, ierr);
	return irp_enroll_password(c, uid, proof->password, csr, cert, ierr);
}

int
identity_request(struct irp_client *c, const char *uid,
    const struct identity_proof *proof, struct identity *id, char *err,
    size_t errlen)
{
	struct irp_cert cert = { 0 };
	struct irp_err ierr;
	struct ca_err cerr;
	char *csr = NULL;
	int rv = -1;

	memset(id, 0, sizeof(*id));
	if ((id->key = ca_key_new_pem(CA_KEY_EC_P256, &cerr)) == NULL ||
	    (csr = ca_csr_new_pem(id->key, uid, uid, &cerr)) == NULL) {
		snprintf(err, errlen, "%s", cerr.msg);
		goto err;
	}
	if (ask(c, uid, proof, csr, &cert, &ierr) == -1) {
		snprintf(err, errlen, "%s", ierr.msg);
		goto err;
	}
	if (ca_cert_info((const unsigned char *)cert.cert_pem,
		strlen(cert.cert_pem), &id->info, &cerr) == -1 ||
	    strcasecmp(id->info.userid, uid) != 0) {
		snprintf(err, errlen,
		    "the registry issued a certificate for '%s', not %s",
		    id->info.userid, uid);
		goto err;
	}
	/* Stored, a certificate for another key would leave this device
	 * with neither the old identity nor a working new one. */
	if (!pair_matches(id->key, cert.cert_pem)) {
		snprintf(err, errlen,
		    "the registry's certificate is not for the key sent; "
		    "nothing was changed");
		goto err;
	}
	id->cert = cert.cert_pem;
	cert.cert_pem = NULL;
	rv = 0;
err:
	if (rv == -1)
		identity_clear(id);
	irp_cert_clear(&cert);
	free(csr);
	return rv;
}

int
identity_store(const struct keystore *ks, const struct identity *id, char *err,
    size_t errlen)
{
	return ks_store_identity(ks, id->key, strlen(id->key), id->cert,
	    strlen(id->cert), err, errlen);
}

void
identity_clear(struct identity *id)
{
	ca_secret_free(id->key);
	free(id->cert);
	memset(id, 0, sizeof(*id));
}

int
identity_escrow(struct irp_client *c, const struct identity *id,
    char officer_fp[65], char *err, size_t errlen)
{
	unsigned char *cms = NULL;
	char fp[65], *officer = NULL;
	struct irp_err ierr;
	struct ca_err cerr;
	size_t len;
	int on, rv = -1;

	officer_fp[0] = '\0';
	if ((on = irp_escrow_officer(c, &officer, fp, &ierr)) == -1) {
		snprintf(err, errlen,
		    "cannot ask whether keys are escrowed: %s", ierr.msg);
		return -1;
	}
	if (on == 0)
		return 0;
	if (ca_cms_envelope((const unsigned char *)id->key, strlen(id->key),
		officer, &cms, &len, &cerr) == -1) {
		snprintf(err, errlen,
		    "cannot encrypt the key to the escrow "
		    "officer: %s",
		    cerr.msg);
		goto err;
	}
	if (irp_escrow_put(c, fp, cms, len, &ierr) == -1) {
		snprintf(err, errlen, "the key could not be escrowed: %s",
		    ierr.msg);
		goto err;
	}
	memcpy(officer_fp, fp, sizeof(fp));
	rv = 0;
err:
	free(officer);
	free(cms);
	return rv;
}

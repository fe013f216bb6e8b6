/*
 * ca_crl.c - building signed, numbered CRLs (RFC 5280 v2).
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/x509v3.h>

#include "ca_internal.h"

/* One revoked entry; the CRL takes it over on success. */
static int
crl_add_entry(X509_CRL *crl, const struct ca_revoked *r, struct ca_err *err)
{
	X509_REVOKED *rev = NULL;
	ASN1_INTEGER *serial = NULL;
	ASN1_TIME *when = NULL;
	ASN1_ENUMERATED *reason = NULL;
	int rv = -1;

	if (r->reason < 0 || ca_reason_name(r->reason) == NULL) {
		ca_err_set(err, CA_ERR_INVALID, "serial %.40s: %d is not a "
		    "CRL reason code", r->serial != NULL ? r->serial : "",
		    r->reason);
		goto err;
	}
	/*
	 * removeFromCRL belongs in delta CRLs; in a full CRL OpenSSL reads
	 * it as "not revoked", so an entry carrying it would un-revoke.
	 */
	if (r->reason == CA_REASON_REMOVE_FROM_CRL) {
		ca_err_set(err, CA_ERR_INVALID, "serial %.40s: a full CRL can "
		    "not list removeFromCRL", r->serial != NULL ? r->serial :
		    "");
		goto err;
	}
	if ((serial = ca_serial_parse(r->serial, err)) == NULL)
		goto err;
	if ((rev = X509_REVOKED_new()) == NULL ||
	    (when = ASN1_TIME_set(NULL, r->revoked_at)) == NULL ||
	    !X509_REVOKED_set_serialNumber(rev, serial) ||
	    !X509_REVOKED_set_revocationDate(rev, when)) {
		ca_err_set(err, CA_ERR_CRYPTO, "cannot build a CRL entry");
		goto err;
	}
	/* RFC 5280 5.3.1: "unspecified" is said by leaving the reason out. */
	if (r->reason != 0) {
		if ((reason = ASN1_ENUMERATED_new()) == NULL ||
		    !ASN1_ENUMERATED_set(reason, r->reason) ||
		    !X509_REVOKED_add1_ext_i2d(rev, NID_crl_reason, reason, 0,
		    0)) {
			ca_err_set(err, CA_ERR_CRYPTO,
			    "cannot add a CRL reason");
			goto err;
		}
	}
	if (!X509_CRL_add0_revoked(crl, rev)) {
		ca_err_set(err, CA_ERR_CRYPTO, "cannot add a CRL entry");
		goto err;
	}
	rev = NULL;
	rv = 0;
 err:
	ASN1_ENUMERATED_free(reason);
	ASN1_TIME_free(when);
	ASN1_INTEGER_free(serial);
	X509_REVOKED_free(rev);
	return rv;
}

int
ca_crl_build(const struct ca *ca, const struct ca_revoked *rev, size_t n,
    long number, time_t this_update, time_t next_update,
    unsigned char **der, size_t *der_len, struct ca_err *err)
{
	X509_CRL *crl = NULL;
	ASN1_TIME *last = NULL, *next = NULL;
	ASN1_INTEGER *num = NULL;
	X509_EXTENSION *aki = NULL;
	X509V3_CTX ctx;
	size_t i;
	int rv = -1;

	ca_err_clear(err);
	*der = NULL;
	*der_len = 0;
	if (n > 0 && rev == NULL) {
		ca_err_set(err, CA_ERR_INVALID, "no revoked entries given");
		goto err;
	}
	if (number < 0 || next_update <= this_update) {
		ca_err_set(err, CA_ERR_INVALID, "a CRL needs a number >= 0 "
		    "and nextUpdate after thisUpdate");
		goto err;
	}
	if ((crl = X509_CRL_new()) == NULL ||
	    !X509_CRL_set_version(crl, X509_CRL_VERSION_2) ||
	    !X509_CRL_set_issuer_name(crl, X509_get_subject_name(ca->cert)) ||
	    (last = ASN1_TIME_set(NULL, this_update)) == NULL ||
	    (next = ASN1_TIME_set(NULL, next_update)) == NULL ||
	    !X509_CRL_set1_lastUpdate(crl, last) ||
	    !X509_CRL_set1_nextUpdate(crl, next)) {
		ca_err_set(err, CA_ERR_CRYPTO, "cannot build the CRL");
		goto err;
	}
	for (i = 0; i < n; i++)
		if (crl_add_entry(crl, &rev[i], err) == -1)
			goto err;

	if ((num = ASN1_INTEGER_new()) == NULL ||
	    !ASN1_INTEGER_set(num, number) ||
	    !X509_CRL_add1_ext_i2d(crl, NID_crl_number, num, 0, 0)) {
		ca_err_set(err, CA_ERR_CRYPTO, "cannot add the CRL number");
		goto err;
	}
	memset(&ctx, 0, sizeof(ctx));
	X509V3_set_ctx(&ctx, ca->cert, NULL, NULL, crl, 0);
	if ((aki = X509V3_EXT_conf_nid(NULL, &ctx,
	    NID_authority_key_identifier, "keyid")) == NULL ||
	    !X509_CRL_add_ext(crl, aki, -1)) {
		ca_err_set(err, CA_ERR_CRYPTO,
		    "cannot add the authorityKeyIdentifier to the CRL");
		goto err;
	}
	/* Sorted by serial, as readers may search it. */
	if (!X509_CRL_sort(crl)) {
		ca_err_set(err, CA_ERR_CRYPTO, "cannot sort the CRL");
		goto err;
	}
	if (ca_sign_crl(ca, crl, der, der_len, err) == -1)
		goto err;
	rv = 0;
 err:
	X509_EXTENSION_free(aki);
	ASN1_INTEGER_free(num);
	ASN1_TIME_free(last);
	ASN1_TIME_free(next);
	X509_CRL_free(crl);
	return rv;
}

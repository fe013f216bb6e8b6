/*
 * ca_csr.c - deciding whether a CSR is acceptable.
 *
 * A CSR comes from the network, so everything about it is checked: the
 * PEM type, that the DER ends where it should, the key policy and the
 * self-signature (proof that the requester holds the private key).
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/asn1t.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/provider.h>
#include <openssl/x509.h>

#include "ca_internal.h"

/*
 * The key types the registry accepts: EC P-256/P-384, Ed25519, RSA of
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
 * OpenSSL 3.0's d2i of a CSR decodes its public key through the provider
 * decoders and builds a decoder context for that on every call, which
 * costs more than checking the signature (perf of enrolment: about a
 * third of dird's CPU per certificate).  So a CSR is first parsed in a
 * library context without algorithms (the null provider), where that
 * opportunistic decode finds nothing and leaves the key undecoded, and an
 * EC key on a curve we accept (what dchat and most clients send) is a
 * copy of that curve's parameters, made once, with the CSR's point set
 * in it: building the curve from its name took longer than the rest of
 * the key.  Any other key takes the usual path.
 */
static const int ec_nids[] = { NID_X9_62_prime256v1, NID_secp384r1 };
#define EC_NCURVES (sizeof(ec_nids) / sizeof(ec_nids[0]))

static struct {
	OSSL_LIB_CTX *bare;
	EVP_PKEY *curve[EC_NCURVES];	/* parameters only */
} fast;
static CRYPTO_ONCE fast_once = CRYPTO_ONCE_STATIC_INIT;

/* The parameters of the named curve nid, as a key without a point. */
static EVP_PKEY *
ec_params_new(int nid)
{
	OSSL_PARAM params[2];
	EVP_PKEY_CTX *ctx;
	EVP_PKEY *pk = NULL;

	params[0] = OSSL_PARAM_construct_utf8_string(
	    OSSL_PKEY_PARAM_GROUP_NAME, (char *)OBJ_nid2sn(nid), 0);
	params[1] = OSSL_PARAM_construct_end();
	if ((ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL)) == NULL ||
	    EVP_PKEY_fromdata_init(ctx) <= 0 ||
	    EVP_PKEY_fromdata(ctx, &pk, EVP_PKEY_KEY_PARAMETERS, params) <= 0)
		pk = NULL;
	EVP_PKEY_CTX_free(ctx);
	return pk;
}

/*
 * Whatever fails here only sends CSRs down the usual path.  Kept for the
 * life of the process, like the default library context.
 */
static void
fast_init(void)
{
	OSSL_LIB_CTX *c;
	size_t i;

	for (i = 0; i < EC_NCURVES; i++)
		fast.curve[i] = ec_params_new(ec_nids[i]);
	if ((c = OSSL_LIB_CTX_new()) == NULL)
		return;
	if (OSSL_PROVIDER_load(c, "null") == NULL) {
		OSSL_LIB_CTX_free(c);
		return;
	}
	fast.bare = c;
}

/*
 * The EC key of spki when it is on a curve of ec_nids, or NULL for
 * anything else (then: the usual path).
 */
static EVP_PKEY *
ec_key_from_spki(X509_PUBKEY *spki)
{
	ASN1_OBJECT *alg;
	const ASN1_OBJECT *palg;
	const unsigned char *pub;
	const void *pval;
	X509_ALGOR *algor;
	EVP_PKEY *pk;
	size_t i;
	int nid, publen, ptype;

	if (spki == NULL ||
	    !X509_PUBKEY_get0_param(&alg, &pub, &publen, &algor, spki) ||
	    OBJ_obj2nid(alg) != NID_X9_62_id_ecPublicKey || publen <= 0)
		return NULL;
	X509_ALGOR_get0(&palg, &ptype, &pval, algor);
	if (ptype != V_ASN1_OBJECT)
		return NULL;
	nid = OBJ_obj2nid(pval);
	for (i = 0; i < EC_NCURVES; i++)
		if (ec_nids[i] == nid && fast.curve[i] != NULL)
			break;
	if (i == EC_NCURVES || (pk = EVP_PKEY_dup(fast.curve[i])) == NULL)
		return NULL;
	/* Refused unless the point is on the curve. */
	if (!EVP_PKEY_set1_encoded_public_key(pk, pub, (size_t)publen)) {
		EVP_PKEY_free(pk);
		return NULL;
	}
	return pk;
}

/* The DER of a CSR as an X509_REQ and its public key (both owned). */
static int
csr_parse(const unsigned char *der, long dlen, X509_REQ **req,
    EVP_PKEY **pk)
{
	const unsigned char *p = der;

	*pk = NULL;
	CRYPTO_THREAD_run_once(&fast_once, fast_init);
	if (fast.bare != NULL &&
	    (*req = (X509_REQ *)ASN1_item_d2i_ex(NULL, &p, dlen,
	    ASN1_ITEM_rptr(X509_REQ), fast.bare, NULL)) != NULL) {
		if (p == der + dlen &&
		    (*pk = ec_key_from_spki(X509_REQ_get_X509_PUBKEY(*req))) !=
		    NULL)
			return 0;
		X509_REQ_free(*req);
	}
	p = der;
	if ((*req = d2i_X509_REQ(NULL, &p, dlen)) == NULL || p != der + dlen)
		return -1;
	if ((*pk = X509_REQ_get0_pubkey(*req)) != NULL)
		EVP_PKEY_up_ref(*pk);
	return 0;
}

/*
 * Parse and check a CSR into csr.  The policy is checked before the
 * signature so that we never run a verification with a key we would
 * refuse anyway.
 */
int
ca_csr_load(const char *pem, size_t len, struct ca_csr *csr,
    struct ca_err *err)
{
	unsigned char *der = NULL;
	long dlen;

	memset(csr, 0, sizeof(*csr));
	if (ca_pem_block(pem, len, "CERTIFICATE REQUEST", "CSR", &der, &dlen,
	    err) == -1)
		goto err;
	if (csr_parse(der, dlen, &csr->req, &csr->pub) == -1) {
		ca_err_set(err, CA_ERR_INVALID, "CSR is not a valid "
		    "PKCS#10 request");
		goto err;
	}
	if (csr->pub == NULL) {
		ca_err_set(err, CA_ERR_INVALID, "the public key of the CSR "
		    "can not be read");
		goto err;
	}
	if (key_policy(csr->pub, err) == -1)
		goto err;
	/*
	 * In the default library context, whichever one parsed it.
	 * X509_REQ_verify returns -1 for some malformed input: test == 1.
	 */
	if (X509_REQ_verify_ex(csr->req, csr->pub, NULL, NULL) != 1) {
		ca_err_set(err, CA_ERR_SIGNATURE, "the signature of the CSR "
		    "does not verify");
		goto err;
	}
	OPENSSL_free(der);
	return 0;
 err:
	OPENSSL_free(der);
	ca_csr_clear(csr);
	return -1;
}

void
ca_csr_clear(struct ca_csr *csr)
{
	X509_REQ_free(csr->req);
	EVP_PKEY_free(csr->pub);
	csr->req = NULL;
	csr->pub = NULL;
}

struct ca_csr *
ca_csr_new(const char *pem, size_t len, struct ca_err *err)
{
	struct ca_csr *csr;

	ca_err_clear(err);
	if ((csr = calloc(1, sizeof(*csr))) == NULL) {
		ca_err_set(err, CA_ERR_CRYPTO, "out of memory");
		return NULL;
	}
	if (ca_csr_load(pem, len, csr, err) == -1) {
		free(csr);
		return NULL;
	}
	return csr;
}

void
ca_csr_free(struct ca_csr *csr)
{
	if (csr == NULL)
		return;
	ca_csr_clear(csr);
	free(csr);
}

int
ca_csr_check(const char *pem, size_t len, struct ca_err *err)
{
	struct ca_csr csr;

	ca_err_clear(err);
	if (ca_csr_load(pem, len, &csr, err) == -1)
		return -1;
	ca_csr_clear(&csr);
	return 0;
}

/*
 * ca_ocsp.c - the responder side of OCSP (RFC 6960, and the RFC 5019
 * profile): parse a request, sign the answer with the CA's own key.
 *
 * The registry decides each certificate's status from its store; this
 * file only checks that a request asks about this CA and turns the
 * answers into a signed BasicOCSPResponse.  The CA certificate rides
 * along in the response, so that `openssl ocsp` and other clients find
 * the signer without being told.
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/ocsp.h>

#include "ca_internal.h"

/* The nonce extension's value: 32 octets and their DER header, with room. */
#define CA_OCSP_NONCE_MAX 64

/* RFC 6960 4.4.8, id-pkix-ocsp-extended-revoke. */
#define CA_OID_EXTENDED_REVOKE "1.3.6.1.5.5.7.48.1.9"

struct ca_ocsp_req {
	OCSP_REQUEST *req;
	size_t n;
	OCSP_CERTID *id[CA_OCSP_REQ_MAX];	/* borrowed from req */
	int ours[CA_OCSP_REQ_MAX];
	char serial[CA_OCSP_REQ_MAX][CA_SERIAL_HEX_MAX];
};

/* The hash functions a CertID may use here (SHA-1 is RFC 5019's). */
static const EVP_MD *
certid_md(const ASN1_OBJECT *alg)
{
	switch (OBJ_obj2nid(alg)) {
	case NID_sha1:
		return EVP_sha1();
	case NID_sha256:
		return EVP_sha256();
	case NID_sha384:
		return EVP_sha384();
	case NID_sha512:
		return EVP_sha512();
	default:
		return NULL;
	}
}

/* Whether cid names this CA as the issuer (its name and key hashes). */
static int
issued_here(const struct ca *ca, OCSP_CERTID *cid)
{
	ASN1_OBJECT *alg = NULL;
	OCSP_CERTID *mine;
	const EVP_MD *md;
	int ok;

	if (!OCSP_id_get0_info(NULL, &alg, NULL, NULL, cid) ||
	    (md = certid_md(alg)) == NULL ||
	    (mine = OCSP_cert_to_id(md, NULL, ca->cert)) == NULL)
		return 0;
	ok = OCSP_id_issuer_cmp(mine, cid) == 0;
	OCSP_CERTID_free(mine);
	return ok;
}

struct ca_ocsp_req *
ca_ocsp_req_parse(const struct ca *ca, const unsigned char *der, size_t len,
    struct ca_err *err)
{
	struct ca_ocsp_req *q = NULL;
	const unsigned char *p = der;
	OCSP_CERTID *copy;
	ASN1_INTEGER *serial;
	OCSP_ONEREQ *one;
	int i, n;

	ca_err_clear(err);
	if (len == 0 || len > CA_OCSP_DER_MAX) {
		ca_err_set(err, CA_ERR_INVALID, "an OCSP request is 1 to %d "
		    "bytes of DER", CA_OCSP_DER_MAX);
		return NULL;
	}
	if ((q = calloc(1, sizeof(*q))) == NULL) {
		ca_err_sys(err, CA_ERR_CRYPTO, "calloc");
		return NULL;
	}
	/* One DER OCSPRequest spanning the whole input. */
	if ((q->req = d2i_OCSP_REQUEST(NULL, &p, (long)len)) == NULL ||
	    p != der + len) {
		ca_err_set(err, CA_ERR_INVALID, "not a DER OCSP request");
		goto err;
	}
	/*
	 * The nonce is echoed in the signed answer: a long one would have
	 * the CA sign whatever a stranger sent (RFC 8954 has 32 octets at
	 * most; the extension's value wraps them in an OCTET STRING).
	 */
	if ((i = OCSP_REQUEST_get_ext_by_NID(q->req, NID_id_pkix_OCSP_Nonce,
	    -1)) >= 0 && ASN1_STRING_length(X509_EXTENSION_get_data(
	    OCSP_REQUEST_get_ext(q->req, i))) > CA_OCSP_NONCE_MAX) {
		ca_err_set(err, CA_ERR_INVALID, "an OCSP nonce is at most %d "
		    "bytes", CA_OCSP_NONCE_MAX);
		goto err;
	}
	n = OCSP_request_onereq_count(q->req);
	if (n < 1 || n > CA_OCSP_REQ_MAX) {
		ca_err_set(err, CA_ERR_INVALID, "an OCSP request asks about 1 "
		    "to %d certificates", CA_OCSP_REQ_MAX);
		goto err;
	}
	for (i = 0; i < n; i++) {
		one = OCSP_request_onereq_get0(q->req, i);
		q->id[i] = OCSP_onereq_get0_id(one);
		serial = NULL;
		if (q->id[i] == NULL || !OCSP_id_get0_info(NULL, NULL, NULL,
		    &serial, q->id[i]) || serial == NULL) {
			ca_err_set(err, CA_ERR_INVALID, "an OCSP request "
			    "without a certificate id");
			goto err;
		}
		/*
		 * The answer repeats the id, copied as OCSP_basic_add1_status
		 * copies it (encoded and decoded again).  The decoder takes
		 * hash parameters that can not be encoded again: refused
		 * here, or they fail the signing later as our fault.
		 */
		if ((copy = OCSP_CERTID_dup(q->id[i])) == NULL) {
			ca_err_set(err, CA_ERR_INVALID, "an OCSP request with "
			    "a malformed certificate id");
			goto err;
		}
		OCSP_CERTID_free(copy);
		/*
		 * A serial we can not write as ours (negative, too long)
		 * was not issued here whatever the issuer hashes say.
		 */
		q->ours[i] = issued_here(ca, q->id[i]) &&
		    ca_serial_hex(serial, q->serial[i], NULL) == 0;
		if (!q->ours[i])
			q->serial[i][0] = '\0';
	}
	q->n = (size_t)n;
	ERR_clear_error();
	return q;
err:
	ERR_clear_error();
	ca_ocsp_req_free(q);
	return NULL;
}

void
ca_ocsp_req_free(struct ca_ocsp_req *q)
{
	if (q == NULL)
		return;
	OCSP_REQUEST_free(q->req);
	free(q);
}

size_t
ca_ocsp_req_count(const struct ca_ocsp_req *q)
{
	return q->n;
}

const char *
ca_ocsp_req_serial(const struct ca_ocsp_req *q, size_t i)
{
	if (i >= q->n || !q->ours[i])
		return NULL;
	return q->serial[i];
}

/* RFC 6960 2.2: "revoked" for a serial never issued, flagged as such. */
static int
add_extended_revoke(OCSP_BASICRESP *bs)
{
	ASN1_OBJECT *obj = NULL;
	ASN1_OCTET_STRING *val = NULL;
	X509_EXTENSION *ext = NULL;
	static const unsigned char null_der[] = { 0x05, 0x00 };
	int ok = 0;

	if ((obj = OBJ_txt2obj(CA_OID_EXTENDED_REVOKE, 1)) != NULL &&
	    (val = ASN1_OCTET_STRING_new()) != NULL &&
	    ASN1_OCTET_STRING_set(val, null_der, sizeof(null_der)) &&
	    (ext = X509_EXTENSION_create_by_OBJ(NULL, obj, 0, val)) != NULL &&
	    OCSP_BASICRESP_add_ext(bs, ext, -1))
		ok = 1;
	X509_EXTENSION_free(ext);
	ASN1_OCTET_STRING_free(val);
	ASN1_OBJECT_free(obj);
	return ok;
}

/* One SingleResponse for request i. */
static int
add_single(OCSP_BASICRESP *bs, OCSP_CERTID *id,
    const struct ca_ocsp_answer *a, ASN1_TIME *this_up, ASN1_TIME *next_up,
    int *extended, struct ca_err *err)
{
	ASN1_TIME *rev = NULL;
	int status, reason = -1, ok;

	switch (a->status) {
	case CA_OCSP_GOOD:
		status = V_OCSP_CERTSTATUS_GOOD;
		break;
	case CA_OCSP_REVOKED:
		status = V_OCSP_CERTSTATUS_REVOKED;
		if (a->not_issued) {
			/* RFC 6960 2.2: certificateHold, since 1970. */
			reason = CA_REASON_HOLD;
			*extended = 1;
		} else if (a->reason > 0 && ca_reason_name(a->reason) != NULL) {
			reason = a->reason;
		}
		if ((rev = ASN1_TIME_set(NULL, a->not_issued ? 0 :
		    a->revoked_at)) == NULL)
			goto crypto;
		break;
	case CA_OCSP_UNKNOWN:
	default:
		status = V_OCSP_CERTSTATUS_UNKNOWN;
		break;
	}
	ok = OCSP_basic_add1_status(bs, id, status, reason, rev, this_up,
	    next_up) != NULL;
	ASN1_TIME_free(rev);
	if (ok)
		return 0;
crypto:
	ca_err_set(err, CA_ERR_CRYPTO, "cannot build an OCSP answer");
	return -1;
}

/* DER of an OCSPResponse, in a buffer for free(). */
static int
resp_der(OCSP_RESPONSE *resp, unsigned char **der, size_t *len)
{
	unsigned char *p;
	int n;

	if ((n = i2d_OCSP_RESPONSE(resp, NULL)) <= 0 ||
	    (*der = malloc((size_t)n)) == NULL)
		return -1;
	p = *der;
	if (i2d_OCSP_RESPONSE(resp, &p) != n) {
		free(*der);
		*der = NULL;
		return -1;
	}
	*len = (size_t)n;
	return 0;
}

int
ca_ocsp_respond(const struct ca *ca, const struct ca_ocsp_req *q,
    const struct ca_ocsp_answer *ans, time_t now, int validity,
    unsigned char **der, size_t *len, struct ca_err *err)
{
	OCSP_BASICRESP *bs = NULL;
	ASN1_TIME *this_up = NULL, *next_up = NULL;
	int extended = 0, rv = -1;
	size_t i;

	ca_err_clear(err);
	*der = NULL;
	*len = 0;
	if (validity < 1) {
		ca_err_set(err, CA_ERR_INVALID, "an OCSP answer must be valid "
		    "for a second at least");
		return -1;
	}
	if ((bs = OCSP_BASICRESP_new()) == NULL ||
	    (this_up = ASN1_TIME_set(NULL, now)) == NULL ||
	    (next_up = ASN1_TIME_set(NULL, now + validity)) == NULL)
		goto crypto;
	for (i = 0; i < q->n; i++)
		if (add_single(bs, q->id[i], &ans[i], this_up, next_up,
		    &extended, err) == -1)
			goto err;
	/* The client's nonce, if it sent one: proof the answer is fresh. */
	if (OCSP_copy_nonce(bs, q->req) <= 0 ||
	    (extended && !add_extended_revoke(bs)))
		goto crypto;
	/*
	 * Signed by the CA itself (through its signer) and identified by
	 * its key hash; the certificate is included so clients find the
	 * signer (ca_sign.c).
	 */
	if (ca_sign_ocsp(ca, bs, der, len, err) == -1)
		goto err;
	rv = 0;
	goto err;
crypto:
	ca_err_set(err, CA_ERR_CRYPTO, "cannot sign the OCSP response");
err:
	ERR_clear_error();
	OCSP_BASICRESP_free(bs);
	ASN1_TIME_free(this_up);
	ASN1_TIME_free(next_up);
	return rv;
}

int
ca_ocsp_error(enum ca_ocsp_error e, unsigned char **der, size_t *len)
{
	static const int status[] = {
		[CA_OCSP_MALFORMED] = OCSP_RESPONSE_STATUS_MALFORMEDREQUEST,
		[CA_OCSP_INTERNAL] = OCSP_RESPONSE_STATUS_INTERNALERROR,
		[CA_OCSP_TRY_LATER] = OCSP_RESPONSE_STATUS_TRYLATER,
		[CA_OCSP_UNAUTHORIZED] = OCSP_RESPONSE_STATUS_UNAUTHORIZED,
	};
	OCSP_RESPONSE *resp;
	int rv;

	*der = NULL;
	*len = 0;
	if ((unsigned int)e >= sizeof(status) / sizeof(status[0]) ||
	    (resp = OCSP_response_create(status[e], NULL)) == NULL)
		return -1;
	rv = resp_der(resp, der, len);
	OCSP_RESPONSE_free(resp);
	return rv;
}

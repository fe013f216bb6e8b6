/*
 * fuzz_ocsp.c - the registry's OCSP responder: ca_ocsp_req_parse, which
 * sees every request sent to /ocsp by anyone (no authentication), and
 * api_ocsp_b64, which decodes the request of an RFC 5019 GET
 * /ocsp/{base64}.  The CA is made once, in a temporary directory.
 *
 * Each input is tried as the DER of a POST body and as the text of a
 * GET path; a successful base64 decoding is then tried as DER as well,
 * as dird does.  The CA's key is new in every run, so no seed can name
 * it: a request that parses is also tried with every other certificate
 * id rewritten to name this CA, which reaches the answers for
 * certificates of ours.  Every request that parses is answered (good, revoked,
 * never issued, or unknown for another CA's certificate) and the answer
 * must be what any OCSP client can use: one DER OCSPResponse, signed by
 * the CA, one single response per certificate asked about, each about
 * that certificate and with the status given, and the request's nonce
 * echoed.
 */
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ocsp.h>
#include <openssl/x509.h>

#include "api.h"
#include "ca.h"
#include "fuzz.h"

#define VALIDITY 3600

static struct ca *ca;
static X509 *ca_x509;
static X509_STORE *store;
static STACK_OF(X509) *signers;

int LLVMFuzzerInitialize(int *argc, char ***argv);

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	char dir[] = "/tmp/fuzz_ocsp.XXXXXX", key[64], crt[64];
	const unsigned char *der, *p;
	struct ca_err err;
	size_t len;

	if (mkdtemp(dir) == NULL ||
	    (size_t)snprintf(key, sizeof(key), "%s/ca.key", dir) >=
	    sizeof(key) ||
	    (size_t)snprintf(crt, sizeof(crt), "%s/ca.pem", dir) >=
	    sizeof(crt) ||
	    ca_create(key, crt, CA_KEY_EC_P256, "Fuzz OCSP CA", 30, &err) ==
	    -1 || (ca = ca_open(key, crt, &err)) == NULL) {
		fprintf(stderr, "fuzz_ocsp: cannot make a CA in %s\n", dir);
		abort();
	}
	(void)unlink(key);
	(void)unlink(crt);
	(void)rmdir(dir);
	der = ca_cert_der(ca, &len);
	p = der;
	if ((ca_x509 = d2i_X509(NULL, &p, (long)len)) == NULL ||
	    (store = X509_STORE_new()) == NULL ||
	    X509_STORE_add_cert(store, ca_x509) != 1 ||
	    (signers = sk_X509_new_null()) == NULL ||
	    !sk_X509_push(signers, ca_x509))
		abort();
	return 0;
}

/* The answer the registry could give for certificate i. */
static void
answer_for(const struct ca_ocsp_req *q, size_t i, struct ca_ocsp_answer *a)
{
	/* Reasons in and out of use (7 is unused, 11 out of range). */
	static const int reasons[] = { 0, 1, 6, 7, 10, 11, -1 };

	memset(a, 0, sizeof(*a));
	if (ca_ocsp_req_serial(q, i) == NULL) {
		a->status = CA_OCSP_UNKNOWN;
		return;
	}
	switch (i % 3) {
	case 0:
		a->status = CA_OCSP_GOOD;
		break;
	case 1:
		a->status = CA_OCSP_REVOKED;
		a->revoked_at = 1700000000 + (time_t)i;
		a->reason = reasons[i % (sizeof(reasons) / sizeof(reasons[0]))];
		break;
	default:
		a->status = CA_OCSP_REVOKED;
		a->not_issued = 1;
		break;
	}
}

/* What the serial of a CertID reads as, in the registry's form. */
static void
check_serial(const char *s, OCSP_CERTID *id)
{
	ASN1_INTEGER *ai = NULL;
	BIGNUM *bn;
	char *hex;
	size_t i, n = strlen(s);

	FUZZ_CHECK(n >= 1 && n < CA_SERIAL_HEX_MAX);
	FUZZ_CHECK(s[0] != '0' || n == 1);
	for (i = 0; i < n; i++)
		FUZZ_CHECK((s[i] >= '0' && s[i] <= '9') ||
		    (s[i] >= 'a' && s[i] <= 'f'));
	FUZZ_CHECK(OCSP_id_get0_info(NULL, NULL, NULL, &ai, id) == 1);
	FUZZ_CHECK((bn = ASN1_INTEGER_to_BN(ai, NULL)) != NULL);
	FUZZ_CHECK(!BN_is_negative(bn));
	FUZZ_CHECK((hex = BN_bn2hex(bn)) != NULL);
	while (hex[0] == '0' && hex[1] != '\0')
		memmove(hex, hex + 1, strlen(hex));
	FUZZ_CHECK(strcasecmp(hex, s) == 0);
	OPENSSL_free(hex);
	BN_free(bn);
}

/* The answer to a request that parsed, checked as a client would. */
static void
check_response(const unsigned char *der, size_t len, OCSP_REQUEST *req,
    const struct ca_ocsp_req *q, const struct ca_ocsp_answer *ans)
{
	const unsigned char *p = der;
	OCSP_RESPONSE *resp;
	OCSP_BASICRESP *bs;
	OCSP_SINGLERESP *single;
	ASN1_GENERALIZEDTIME *rev, *thisupd, *nextupd;
	size_t i, n = ca_ocsp_req_count(q);
	int status, reason, want, nonce;

	FUZZ_CHECK((resp = d2i_OCSP_RESPONSE(NULL, &p, (long)len)) != NULL);
	FUZZ_CHECK(p == der + len);
	FUZZ_CHECK(OCSP_response_status(resp) ==
	    OCSP_RESPONSE_STATUS_SUCCESSFUL);
	FUZZ_CHECK((bs = OCSP_response_get1_basic(resp)) != NULL);
	/*
	 * Signed by the CA: for a client that trusts it as the responder
	 * (dchat; `openssl ocsp -VAfile`), always; for one that checks the
	 * signer is the issuer of what it asked about (`openssl ocsp
	 * -CAfile`), when every certificate asked about is ours.
	 */
	FUZZ_CHECK(OCSP_basic_verify(bs, signers, store,
	    OCSP_TRUSTOTHER | OCSP_NOINTERN) == 1);
	for (i = 0; i < n && ca_ocsp_req_serial(q, i) != NULL; i++)
		;
	if (i == n)
		FUZZ_CHECK(OCSP_basic_verify(bs, NULL, store, 0) == 1);
	nonce = OCSP_check_nonce(req, bs);
	FUZZ_CHECK(nonce == 1 || nonce == 2);
	FUZZ_CHECK(OCSP_resp_count(bs) == (int)n);
	for (i = 0; i < n; i++) {
		FUZZ_CHECK((single = OCSP_resp_get0(bs, (int)i)) != NULL);
		/* About the certificate asked, in the order asked. */
		FUZZ_CHECK(OCSP_id_cmp(OCSP_SINGLERESP_get0_id(single),
		    OCSP_onereq_get0_id(OCSP_request_onereq_get0(req,
		    (int)i))) == 0);
		status = OCSP_single_get0_status(single, &reason, &rev,
		    &thisupd, &nextupd);
		want = ans[i].status == CA_OCSP_GOOD ?
		    V_OCSP_CERTSTATUS_GOOD : ans[i].status == CA_OCSP_REVOKED ?
		    V_OCSP_CERTSTATUS_REVOKED : V_OCSP_CERTSTATUS_UNKNOWN;
		FUZZ_CHECK(status == want);
		FUZZ_CHECK(thisupd != NULL && nextupd != NULL);
		FUZZ_CHECK(OCSP_check_validity(thisupd, nextupd, 0, -1) == 1);
		if (ans[i].not_issued)
			FUZZ_CHECK(reason == OCSP_REVOKED_STATUS_CERTIFICATEHOLD &&
			    ASN1_TIME_cmp_time_t(rev, 0) == 0);
	}
	OCSP_BASICRESP_free(bs);
	OCSP_RESPONSE_free(resp);
}

/* One request as dird gets it, from a POST body or a decoded GET. */
static void
check_request(const unsigned char *data, size_t size)
{
	struct ca_ocsp_answer ans[CA_OCSP_REQ_MAX];
	struct ca_ocsp_req *q;
	struct ca_err err;
	OCSP_REQUEST *req;
	OCSP_CERTID *id, *mine;
	ASN1_OBJECT *alg;
	const EVP_MD *md;
	const unsigned char *p;
	unsigned char *buf, *der;
	const char *s;
	size_t i, n, len;

	/* An exact-size copy, so ASan sees any read past the body. */
	if ((buf = malloc(size ? size : 1)) == NULL)
		return;
	memcpy(buf, data, size);
	if ((q = ca_ocsp_req_parse(ca, buf, size, &err)) == NULL) {
		FUZZ_CHECK(err.code == CA_ERR_INVALID || err.code ==
		    CA_ERR_CRYPTO);
		FUZZ_CHECK(err.msg[0] != '\0' &&
		    memchr(err.msg, '\0', sizeof(err.msg)) != NULL);
		free(buf);
		return;
	}
	/* What was accepted is one whole DER request: read it ourselves. */
	p = buf;
	FUZZ_CHECK((req = d2i_OCSP_REQUEST(NULL, &p, (long)size)) != NULL);
	FUZZ_CHECK(p == buf + size);
	n = ca_ocsp_req_count(q);
	FUZZ_CHECK(n >= 1 && n <= CA_OCSP_REQ_MAX);
	FUZZ_CHECK((int)n == OCSP_request_onereq_count(req));
	FUZZ_CHECK(ca_ocsp_req_serial(q, n) == NULL);
	for (i = 0; i < n; i++) {
		answer_for(q, i, &ans[i]);
		if ((s = ca_ocsp_req_serial(q, i)) == NULL)
			continue;
		/* "Ours" only when the issuer hashes are this CA's. */
		id = OCSP_onereq_get0_id(OCSP_request_onereq_get0(req,
		    (int)i));
		check_serial(s, id);
		FUZZ_CHECK(OCSP_id_get0_info(NULL, &alg, NULL, NULL, id) == 1);
		FUZZ_CHECK((md = EVP_get_digestbyobj(alg)) != NULL);
		FUZZ_CHECK((mine = OCSP_cert_to_id(md, NULL, ca_x509)) !=
		    NULL);
		FUZZ_CHECK(OCSP_id_issuer_cmp(mine, id) == 0);
		OCSP_CERTID_free(mine);
	}
	if (ca_ocsp_respond(ca, q, ans, time(NULL), VALIDITY, &der, &len,
	    &err) == 0) {
		check_response(der, len, req, q, ans);
		free(der);
	} else {
		/* Nothing a client sends may keep it from being answered. */
		fprintf(stderr, "ca_ocsp_respond: %s\n", err.msg);
		FUZZ_CHECK(0);
	}
	OCSP_REQUEST_free(req);
	ca_ocsp_req_free(q);
	free(buf);
	ERR_clear_error();
}

/*
 * The same request with the certificate ids 0, 2, 4... naming this CA
 * (the same hash algorithm, our name and key hashes), re-encoded.
 */
static void
check_ours(const unsigned char *data, size_t size)
{
	const unsigned char *p = data;
	ASN1_OCTET_STRING *name, *key, *myname, *mykey;
	OCSP_CERTID *id, *mine;
	OCSP_REQUEST *req;
	ASN1_OBJECT *alg;
	const EVP_MD *md;
	unsigned char *der = NULL;
	int i, n, len;

	if ((req = d2i_OCSP_REQUEST(NULL, &p, (long)size)) == NULL)
		goto out;
	n = OCSP_request_onereq_count(req);
	for (i = 0; i < n; i += 2) {
		id = OCSP_onereq_get0_id(OCSP_request_onereq_get0(req, i));
		if (id == NULL || OCSP_id_get0_info(&name, &alg, &key, NULL,
		    id) != 1 || (md = EVP_get_digestbyobj(alg)) == NULL ||
		    (mine = OCSP_cert_to_id(md, NULL, ca_x509)) == NULL)
			continue;
		if (OCSP_id_get0_info(&myname, NULL, &mykey, NULL, mine) == 1)
			FUZZ_CHECK(ASN1_STRING_copy(name, myname) == 1 &&
			    ASN1_STRING_copy(key, mykey) == 1);
		OCSP_CERTID_free(mine);
	}
	/* (When nothing changed, check_request saw it already.) */
	if ((len = i2d_OCSP_REQUEST(req, &der)) > 0 &&
	    ((size_t)len != size || memcmp(der, data, size) != 0))
		check_request(der, (size_t)len);
out:
	OPENSSL_free(der);
	OCSP_REQUEST_free(req);
	ERR_clear_error();
}

/* The input as the base64 of a GET path; then its own base64. */
static void
check_b64(const uint8_t *data, size_t size)
{
	unsigned char der[HTTP_OCSP_GET_MAX];
	unsigned char again[HTTP_OCSP_GET_MAX / 3 * 4 + 1];
	char *s;
	size_t len;
	int n;

	if ((s = fuzz_cstr(data, size)) == NULL)
		return;
	if (api_ocsp_b64(s, der, sizeof(der), &len) == 0) {
		/* Only whole, canonical base64: it encodes back to itself. */
		FUZZ_CHECK(len >= 1 && len <= sizeof(der));
		n = EVP_EncodeBlock(again, der, (int)len);
		FUZZ_CHECK(n >= 0 && (size_t)n == strlen(s));
		FUZZ_CHECK(memcmp(again, s, (size_t)n) == 0);
		check_request(der, len);
		check_ours(der, len);
	}
	free(s);
	/* Any request that fits, base64-encoded, decodes to itself. */
	if (size >= 1 && size <= sizeof(der)) {
		n = EVP_EncodeBlock(again, data, (int)size);
		FUZZ_CHECK(n > 0 && (size_t)n < sizeof(again));
		FUZZ_CHECK(api_ocsp_b64((char *)again, der, sizeof(der),
		    &len) == 0);
		FUZZ_CHECK(len == size && memcmp(der, data, size) == 0);
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	check_request(data, size);
	check_ours(data, size);
	check_b64(data, size);
	return 0;
}

/*
 * api_ocsp.c - the OCSP responder (RFC 6960), by POST and by GET as RFC
 * 5019 describes them, on the IRP port and on the plain-HTTP listeners.
 *
 * A certificate's status comes from the same place as the database half
 * of a certificate check: the answer cache when it holds one, else the
 * store.  A revocation, or a user being disabled or enabled, drops the
 * cached status at once (through this dird) or on its NOTIFY (through
 * anything else), so the next answer says so.  Each answer is signed
 * afresh: it echoes the client's nonce, so dchat can tell it is not a
 * replay of an older "good".
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>

#include "api.h"
#include "log.h"

/* The status of a serial as cached: what db_ocsp_status said. */
static size_t
status_key(const char *serial, char *key, size_t len)
{
	return (size_t)snprintf(key, len, "o%s", serial);
}

/*
 * The answer for one serial of this CA.  -1 with *de filled when the
 * store can not be asked (the whole request is then "try later").
 */
static int
status_of(struct http_req *req, const char *serial, struct ca_ocsp_answer *a,
    struct db_err *de)
{
	struct cache *c = req->reg->cache;
	struct db_ocsp o;
	char key[CA_SERIAL_HEX_MAX + 2];
	uint64_t ticket = 0;
	size_t keylen = status_key(serial, key, sizeof(key)), len;
	time_t now = time(NULL), until;
	void *val;
	int hit = 0;

	memset(a, 0, sizeof(*a));
	if (c != NULL) {
		if (cache_get(c, key, keylen, now, &val, &len) == 1) {
			if ((hit = len == sizeof(o)))
				memcpy(&o, val, sizeof(o));
			free(val);
		}
		if (!hit)
			ticket = cache_ticket(c);
	}
	if (!hit && db_ocsp_status(req->db, ca_fingerprint(req->reg->ca),
	    serial, &o, de) == -1) {
		if (de->code != DB_ERR_NOTFOUND)
			return -1;
		/* Never issued here (a forgery, or a stranger's guess). */
		a->status = CA_OCSP_REVOKED;
		a->not_issued = 1;
		return 0;
	}
	if (!hit && c != NULL) {
		/* An hour at most, and not past the certificate's end. */
		until = o.not_after < now + 3600 ? o.not_after : now + 3600;
		cache_put(c, CACHE_CERT, key, keylen, o.user_id, until, ticket,
		    &o, sizeof(o));
	}
	if (o.revoked) {
		a->status = CA_OCSP_REVOKED;
		a->revoked_at = o.revoked_at;
		a->reason = o.reason;
	} else
		a->status = CA_OCSP_GOOD;
	return 0;
}

/* An unsigned OCSP error answer (HTTP 200, as RFC 6960 A.1 has it). */
static void
ocsp_error(struct http_resp *resp, enum ca_ocsp_error e)
{
	unsigned char *der;
	size_t len;

	if (ca_ocsp_error(e, &der, &len) == -1) {
		http_error(resp, 500, "internal_error", "out of memory");
		return;
	}
	http_blob(resp, 200, "application/ocsp-response", der, len);
	free(der);
}

static void
answer(struct http_req *req, const unsigned char *der, size_t len,
    struct http_resp *resp)
{
	struct ca_ocsp_answer ans[CA_OCSP_REQ_MAX];
	const struct reg *r = req->reg;
	struct ca_ocsp_req *q;
	struct ca_err ce;
	struct db_err de;
	unsigned char *out = NULL;
	const char *serial;
	size_t i, n, olen;

	if ((q = ca_ocsp_req_parse(r->ca, der, len, &ce)) == NULL) {
		ocsp_error(resp, CA_OCSP_MALFORMED);
		return;
	}
	n = ca_ocsp_req_count(q);
	for (i = 0; i < n; i++) {
		if ((serial = ca_ocsp_req_serial(q, i)) == NULL) {
			/* Another CA's certificate: not ours to judge. */
			memset(&ans[i], 0, sizeof(ans[i]));
			ans[i].status = CA_OCSP_UNKNOWN;
		} else if (status_of(req, serial, &ans[i], &de) == -1) {
			if (de.code == DB_ERR_INTERNAL)
				log_warnx("%s ocsp: %s", req->reqid, de.msg);
			ocsp_error(resp, CA_OCSP_TRY_LATER);
			goto out;
		}
	}
	if (ca_ocsp_respond(r->ca, q, ans, time(NULL), reg_conf(r)->ocsp_validity,
	    &out, &olen, &ce) == -1) {
		log_warnx("%s ocsp: %s", req->reqid, ce.msg);
		/* RFC 6960 tryLater: no answer now, none signed wrongly. */
		ocsp_error(resp, ce.code == CA_ERR_UNAVAILABLE ?
		    CA_OCSP_TRY_LATER : CA_OCSP_INTERNAL);
		goto out;
	}
	http_blob(resp, 200, "application/ocsp-response", out, olen);
out:
	free(out);
	ca_ocsp_req_free(q);
}

void
api_ocsp_post(struct http_req *req, struct http_resp *resp)
{
	answer(req, req->body, req->body_len, resp);
}

static const char b64_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/*
 * GET /ocsp/{base64 of the DER request}.  The path was percent-decoded
 * already; base64 must be whole: a length divisible by four, padding
 * only at its end.  And canonical (RFC 4648 3.5), one text for one
 * request: nothing but the alphabet before the padding (EVP_DecodeBlock
 * would skip blanks before the text, and blanks, line ends and '-'
 * after it), and the bits the padding leaves over zero.
 */
int
api_ocsp_b64(const char *b64, unsigned char *der, size_t cap, size_t *len)
{
	size_t n = strlen(b64), pad = 0, last;
	int out;

	if (n == 0 || n % 4 != 0 || n / 4 * 3 > cap)
		return -1;
	while (pad < 2 && b64[n - 1 - pad] == '=')
		pad++;
	if (strspn(b64, b64_alphabet) != n - pad)
		return -1;
	/* With "=" the last digit has 2 bits over, with "==" 4. */
	last = (size_t)(strchr(b64_alphabet, b64[n - 1 - pad]) -
	    b64_alphabet);
	if (pad > 0 && (last & (pad == 1 ? 0x3u : 0xfu)) != 0)
		return -1;
	if ((out = EVP_DecodeBlock(der, (const unsigned char *)b64,
	    (int)n)) < 0 || (size_t)out < pad)
		return -1;
	*len = (size_t)out - pad;
	return 0;
}

void
api_ocsp_get(struct http_req *req, struct http_resp *resp)
{
	unsigned char der[HTTP_OCSP_GET_MAX];
	size_t len;

	if (api_ocsp_b64(req->param, der, sizeof(der), &len) == -1) {
		ocsp_error(resp, CA_OCSP_MALFORMED);
		return;
	}
	answer(req, der, len, resp);
}

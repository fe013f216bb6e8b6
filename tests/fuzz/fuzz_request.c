/*
 * fuzz_request.c - the request bodies and path parameters dird checks
 * before it touches the database: enrolment and renewal, revocation,
 * and the admin calls (user add, enrolment code, server-side key).
 *
 * The first byte picks the request; the rest is the body, parsed as
 * http.c parses it, or for the last choice the serial of a path.
 * (PUT /v1/me/addresses has its own target, fuzz_addresses.)
 */
#include <ctype.h>

#include "api.h"
#include "fuzz.h"

enum which { ENROLL, REVOKE, USER_ADD, CODE, P12, SERIAL, NWHICH };

static void
serial(const uint8_t *data, size_t size)
{
	char out[IRP_SERIAL_MAX + 1], again[IRP_SERIAL_MAX + 1], *s;
	size_t i, n;

	if ((s = fuzz_cstr(data, size)) == NULL)
		return;
	if (irp_serial_normalize(s, out, sizeof(out)) == 0) {
		n = strlen(out);
		/* Stored form: 1-40 lower-case hex digits, no leading 0. */
		FUZZ_CHECK(n >= 1 && n <= 40 && (out[0] != '0' || n == 1));
		for (i = 0; i < n; i++)
			FUZZ_CHECK(isxdigit((unsigned char)out[i]) &&
			    !isupper((unsigned char)out[i]));
		FUZZ_CHECK(irp_serial_normalize(out, again, sizeof(again)) == 0 &&
		    strcmp(out, again) == 0);
	}
	free(s);
}

/* What a handler may use after a successful check. */
static void
body(enum which w, json_t *obj, struct http_resp *resp)
{
	char userid[IRP_USERID_MAX + 1], again[IRP_USERID_MAX + 1];
	struct reg_user_new nu;
	struct reg_err e;
	const char *s;
	int rv = -1, v;

	switch (w) {
	case ENROLL:
		if ((s = api_parse_csr(obj, resp)) != NULL) {
			FUZZ_CHECK(strlen(s) <= 16384);
			rv = 0;
		}
		break;
	case REVOKE:
		if ((rv = api_parse_revoke(obj, &v, resp)) == 0)
			FUZZ_CHECK(v >= 0 && (v == 0 || ca_reason_name(v)));
		break;
	case USER_ADD:
		/* The wire's checks, then the registry's rules for a user. */
		if ((rv = api_parse_user_add(obj, &nu, resp)) == 0 &&
		    reg_user_check(&nu, userid, &e) == 0) {
			FUZZ_CHECK(nu.name != NULL && *nu.name != '\0' &&
			    strlen(nu.name) <= IRP_NAME_MAX);
			FUZZ_CHECK(nu.email == NULL || irp_email_ok(nu.email));
			FUZZ_CHECK(nu.password == NULL ||
			    strlen(nu.password) >= REG_PASSWORD_MIN);
			FUZZ_CHECK(irp_userid_normalize(userid, again,
			    sizeof(again), NULL) == 0 &&
			    strcmp(userid, again) == 0);
		}
		break;
	case CODE:
		if ((rv = api_parse_code(obj, &v, resp)) == 0)
			/* -1 stands for every value no code may have. */
			FUZZ_CHECK(v >= -1);
		break;
	case P12:
		if ((s = api_parse_p12(obj, resp)) != NULL) {
			FUZZ_CHECK(strlen(s) >= 8 && strlen(s) <= 1024);
			rv = 0;
		}
		break;
	default:
		break;
	}
	/* Refused: a 400 with an error body; accepted: nothing written. */
	if (rv == -1)
		FUZZ_CHECK(resp->status == 400 && resp->body != NULL);
	else
		FUZZ_CHECK(resp->status == 0 && resp->body == NULL);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct http_resp resp;
	enum which w;
	json_t *obj;

	if (size < 1)
		return 0;
	w = (enum which)(data[0] % NWHICH);
	data++;
	size--;
	if (w == SERIAL) {
		serial(data, size);
		return 0;
	}
	memset(&resp, 0, sizeof(resp));
	if ((obj = http_parse_json(data, size, &resp)) == NULL)
		FUZZ_CHECK(resp.status == 400 && resp.body != NULL);
	else
		body(w, obj, &resp);
	json_decref(obj);
	free(resp.body);
	return 0;
}

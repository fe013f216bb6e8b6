/*
 * fuzz_basic.c - auth_basic_decode, which reads the HTTP Basic
 * credentials any client sends before anything else is known of it.
 *
 * The input is used twice: as the base64 text of a header, and as the
 * "userid:password" a client would encode.
 */
#include <openssl/evp.h>

#include "auth.h"
#include "fuzz.h"

/* Decoded bytes of well-formed base64 text b64 (n characters). */
static size_t
decoded_len(const char *b64, size_t n)
{
	size_t pad = 0;

	while (pad < 2 && pad < n && b64[n - 1 - pad] == '=')
		pad++;
	return n / 4 * 3 - pad;
}

static void
as_header(const char *b64)
{
	char u[AUTH_BASIC_FIELD_MAX], p[AUTH_BASIC_FIELD_MAX];
	char su[AUTH_BASIC_FIELD_MAX], sp[AUTH_BASIC_FIELD_MAX];
	size_t ul, pl;

	if (auth_basic_decode(b64, u, sizeof(u), p, sizeof(p)) == -1) {
		FUZZ_CHECK(u[0] == '\0' && p[0] == '\0');
		return;
	}
	ul = strlen(u);
	pl = strlen(p);
	FUZZ_CHECK(strlen(b64) >= 4 && strlen(b64) <= AUTH_BASIC_B64_MAX);
	/* Every decoded byte is in one part or the ':': no NUL cut one. */
	FUZZ_CHECK(ul + 1 + pl == decoded_len(b64, strlen(b64)));
	FUZZ_CHECK(strchr(u, ':') == NULL);
	/* A buffer one byte short for either part is refused; exactly
	 * large enough is not. */
	FUZZ_CHECK(auth_basic_decode(b64, su, ul, sp, sizeof(sp)) == -1);
	FUZZ_CHECK(sp[0] == '\0');
	FUZZ_CHECK(auth_basic_decode(b64, su, sizeof(su), sp, pl) == -1);
	FUZZ_CHECK(su[0] == '\0');
	FUZZ_CHECK(auth_basic_decode(b64, su, ul + 1, sp, pl + 1) == 0);
	FUZZ_CHECK(strcmp(su, u) == 0 && strcmp(sp, p) == 0);
}

/* What a client encodes comes back as it was. */
static void
as_credentials(const char *in)
{
	char b64[4 * ((AUTH_BASIC_FIELD_MAX + 2) / 3) + 1];
	char u[AUTH_BASIC_FIELD_MAX], p[AUTH_BASIC_FIELD_MAX];
	const char *colon;
	size_t n = strlen(in), un;
	int rv;

	if (n > AUTH_BASIC_FIELD_MAX)
		n = AUTH_BASIC_FIELD_MAX;
	if ((colon = memchr(in, ':', n)) == NULL)
		return;
	EVP_EncodeBlock((unsigned char *)b64, (const unsigned char *)in,
	    (int)n);
	rv = auth_basic_decode(b64, u, sizeof(u), p, sizeof(p));
	if (strlen(b64) > AUTH_BASIC_B64_MAX) {
		FUZZ_CHECK(rv == -1);
		return;
	}
	FUZZ_CHECK(rv == 0);
	un = (size_t)(colon - in);
	FUZZ_CHECK(strlen(u) == un && memcmp(u, in, un) == 0);
	FUZZ_CHECK(strlen(p) == n - un - 1 && memcmp(p, colon + 1,
	    n - un - 1) == 0);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *in;

	if ((in = fuzz_cstr(data, size)) == NULL)
		return 0;
	as_header(in);
	as_credentials(in);
	free(in);
	return 0;
}

/*
 * fuzz_userid.c - irp_userid_normalize, which sees user ids from request
 * paths, request bodies, HTTP Basic credentials and peer certificates.
 */
#include <ctype.h>

#include "fuzz.h"
#include "irp.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char out[IRP_USERID_MAX + 1], again[IRP_USERID_MAX + 1];
	const char *why, *at;
	char *in;
	size_t i, n;

	if ((in = fuzz_cstr(data, size)) == NULL)
		return 0;
	if (irp_userid_normalize(in, out, sizeof(out), &why) == -1) {
		FUZZ_CHECK(why != NULL && *why != '\0');
		goto out;
	}
	n = strlen(out);
	FUZZ_CHECK(why == NULL);
	FUZZ_CHECK(n == strlen(in) && n >= 3 && n <= IRP_USERID_MAX);
	/* Exactly one '@', with something on both sides. */
	FUZZ_CHECK((at = strchr(out, '@')) != NULL && at != out &&
	    at[1] != '\0' && strchr(at + 1, '@') == NULL);
	for (i = 0; i < n; i++)
		FUZZ_CHECK(!isupper((unsigned char)out[i]) &&
		    (unsigned char)out[i] > 0x20 && (unsigned char)out[i] < 0x7f);
	/* Normal form is a fixed point: compared ids stay equal. */
	FUZZ_CHECK(irp_userid_normalize(out, again, sizeof(again), NULL) == 0);
	FUZZ_CHECK(strcmp(out, again) == 0);
	/* A buffer one byte short (no room for the NUL) is refused. */
	FUZZ_CHECK(irp_userid_normalize(in, again, n, &why) == -1);
 out:
	free(in);
	return 0;
}

/*
 * fuzz_p12.c - ca_p12_check, which dird runs on every PUT /v1/me/backup
 * body before it stores it: the PKCS#12 decoder of OpenSSL and our checks
 * (exactly one structure, nothing after it, a MAC).
 */
#include <openssl/pkcs12.h>

#include "ca.h"
#include "fuzz.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const unsigned char *p;
	struct ca_err err;
	unsigned char *buf;
	PKCS12 *p12;

	/* An exact-size copy, so ASan sees any read past the body. */
	if ((buf = malloc(size ? size : 1)) == NULL)
		return 0;
	memcpy(buf, data, size);
	if (ca_p12_check(buf, size, &err) == 0) {
		FUZZ_CHECK(err.code == CA_ERR_NONE);
		/* What was accepted is one PKCS#12 with a MAC, all of it. */
		p = buf;
		FUZZ_CHECK((p12 = d2i_PKCS12(NULL, &p, (long)size)) != NULL);
		FUZZ_CHECK((size_t)(p - buf) == size);
		FUZZ_CHECK(PKCS12_mac_present(p12));
		PKCS12_free(p12);
	} else {
		/* A refusal says what was wrong, and never blames us. */
		FUZZ_CHECK(err.code == CA_ERR_INVALID);
		FUZZ_CHECK(err.msg[0] != '\0' &&
		    memchr(err.msg, '\0', sizeof(err.msg)) != NULL);
	}
	free(buf);
	return 0;
}

/*
 * fuzz_csr.c - ca_csr_check, which sees every CSR sent to /v1/enroll and
 * /v1/renew.  Each input is tried twice: as the PEM text a client sends,
 * and as the DER inside a well-formed PEM block, so that the fuzzer
 * reaches the PKCS#10 decoder, the key policy and the signature check
 * without having to discover base64.
 */
#include <openssl/bio.h>
#include <openssl/pem.h>

#include "ca.h"
#include "fuzz.h"

static void
check(const char *pem, size_t len)
{
	struct ca_err err;

	if (ca_csr_check(pem, len, &err) == 0) {
		FUZZ_CHECK(err.code == CA_ERR_NONE);
		return;
	}
	/* A refusal always says what was wrong, and never blames us. */
	FUZZ_CHECK(err.code == CA_ERR_INVALID ||
	    err.code == CA_ERR_SIGNATURE || err.code == CA_ERR_POLICY);
	FUZZ_CHECK(err.msg[0] != '\0' &&
	    memchr(err.msg, '\0', sizeof(err.msg)) != NULL);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	BIO *bio;
	char *pem;
	long n;

	check((const char *)data, size);
	if ((bio = BIO_new(BIO_s_mem())) == NULL)
		return 0;
	if (PEM_write_bio(bio, "CERTIFICATE REQUEST", "", data,
		(long)size) > 0 && (n = BIO_get_mem_data(bio, &pem)) > 0)
		check(pem, (size_t)n);
	BIO_free(bio);
	return 0;
}

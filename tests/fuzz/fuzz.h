/*
 * fuzz.h - what the libFuzzer targets in tests/fuzz share.
 *
 * Each target feeds one parser of untrusted input and, beyond "no crash"
 * (ASan and UBSan watch that), checks properties every accepted input
 * must have.  A broken property aborts, which libFuzzer reports as a
 * crash and saves the input.
 */
#ifndef FUZZ_H
#define FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FUZZ_CHECK(cond)                                                    \
	do {                                                                \
		if (!(cond)) {                                              \
			fprintf(stderr, "%s:%d: property failed: %s\n",     \
			    __FILE__, __LINE__, #cond);                     \
			abort();                                            \
		}                                                           \
	} while (0)

/* The input as a C string (a NUL inside ends it early, as in C callers). */
static inline char *
fuzz_cstr(const uint8_t *data, size_t size)
{
	char *s = malloc(size + 1);

	if (s == NULL)
		return NULL;
	memcpy(s, data, size);
	s[size] = '\0';
	return s;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#endif

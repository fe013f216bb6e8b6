/*
 * limit.c - the table of failed attempts described in limit.h.
 *
 * Why not one slot per key, owned by the last key that landed on it: a
 * key that takes a slot over starts it again at zero, and with an unkeyed
 * hash anybody can compute, offline, user ids that land on the slot of a
 * victim or of their own source; failing with those between guesses kept
 * both counts low for as long as one liked.  Here nothing but the window
 * ever lowers a count, and the places keys land are secret.
 */
#include <arpa/inet.h>
#include <limits.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "limit.h"

struct slot {
	time_t start;	/* when this slot's window began */
	int count;	/* failures of every key here since then */
};

struct limit {
	pthread_mutex_t lock;
	size_t width;
	int max;
	int window;
	EVP_MAC *mac;
	EVP_MAC_CTX *keyed;	/* SipHash with the key set; copied per hash */
	struct slot *rows[LIMIT_ROWS];
};

struct limit *
limit_new(size_t width, int max, int window, const unsigned char *key,
    char *errbuf, size_t errlen)
{
	unsigned char k[LIMIT_KEY_LEN];
	size_t outlen = 16, r;
	OSSL_PARAM params[2];
	struct limit *l;

	if (width < 1 || width > LIMIT_WIDTH_MAX || max < 1 || window < 1) {
		snprintf(errbuf, errlen, "limiter: width 1-%u, max and window "
		    "1 or more", LIMIT_WIDTH_MAX);
		return NULL;
	}
	if ((l = calloc(1, sizeof(*l))) == NULL)
		goto oom;
	pthread_mutex_init(&l->lock, NULL);
	l->width = width;
	l->max = max;
	l->window = window;
	for (r = 0; r < LIMIT_ROWS; r++)
		if ((l->rows[r] = calloc(width, sizeof(struct slot))) == NULL)
			goto oom;
	if (key != NULL)
		memcpy(k, key, sizeof(k));
	else if (RAND_bytes(k, sizeof(k)) != 1) {
		snprintf(errbuf, errlen, "limiter: no randomness for its key");
		goto err;
	}
	/* A 128-bit output: 32 bits of it index each row. */
	params[0] = OSSL_PARAM_construct_size_t(OSSL_MAC_PARAM_SIZE, &outlen);
	params[1] = OSSL_PARAM_construct_end();
	if ((l->mac = EVP_MAC_fetch(NULL, "SIPHASH", NULL)) == NULL ||
	    (l->keyed = EVP_MAC_CTX_new(l->mac)) == NULL ||
	    EVP_MAC_init(l->keyed, k, sizeof(k), params) != 1) {
		snprintf(errbuf, errlen, "limiter: OpenSSL has no SipHash "
		    "(is the default provider loaded?)");
		goto err;
	}
	OPENSSL_cleanse(k, sizeof(k));
	return l;
oom:
	snprintf(errbuf, errlen, "limiter: out of memory");
err:
	OPENSSL_cleanse(k, sizeof(k));
	limit_free(l);
	return NULL;
}

void
limit_free(struct limit *l)
{
	size_t r;

	if (l == NULL)
		return;
	pthread_mutex_destroy(&l->lock);
	EVP_MAC_CTX_free(l->keyed);
	EVP_MAC_free(l->mac);
	for (r = 0; r < LIMIT_ROWS; r++)
		free(l->rows[r]);
	free(l);
}

/*
 * The slot index of kind:value in each row.  The NUL after kind keeps
 * "a" "b:c" and "a:b" "c" apart.  -1 when OpenSSL fails (out of memory).
 */
static int
slots_of(struct limit *l, const char *kind, const char *value,
    size_t idx[LIMIT_ROWS])
{
	unsigned char md[16];
	size_t mdlen = 0, r;
	EVP_MAC_CTX *c;
	uint32_t w;
	int rv = -1;

	if ((c = EVP_MAC_CTX_dup(l->keyed)) == NULL)
		return -1;
	if (EVP_MAC_update(c, (const unsigned char *)kind,
		strlen(kind) + 1) != 1 ||
	    EVP_MAC_update(c, (const unsigned char *)value,
		strlen(value)) != 1 ||
	    EVP_MAC_final(c, md, &mdlen, sizeof(md)) != 1 ||
	    mdlen != sizeof(md))
		goto err;
	for (r = 0; r < LIMIT_ROWS; r++) {
		w = (uint32_t)md[4 * r] | (uint32_t)md[4 * r + 1] << 8 |
		    (uint32_t)md[4 * r + 2] << 16 |
		    (uint32_t)md[4 * r + 3] << 24;
		idx[r] = w % l->width;
	}
	rv = 0;
err:
	EVP_MAC_CTX_free(c);
	return rv;
}

int
limit_where(struct limit *l, const char *kind, const char *value,
    size_t idx[LIMIT_ROWS])
{
	int rv;

	pthread_mutex_lock(&l->lock);
	rv = slots_of(l, kind, value, idx);
	pthread_mutex_unlock(&l->lock);
	return rv;
}

static int
in_window(const struct limit *l, const struct slot *s, time_t now)
{
	return s->count > 0 && now - s->start < l->window;
}

void
limit_hit(struct limit *l, const char *kind, const char *value, time_t now)
{
	size_t idx[LIMIT_ROWS], r;
	struct slot *s;

	pthread_mutex_lock(&l->lock);
	if (slots_of(l, kind, value, idx) == 0) {
		for (r = 0; r < LIMIT_ROWS; r++) {
			s = &l->rows[r][idx[r]];
			if (!in_window(l, s, now)) {
				s->start = now;
				s->count = 0;
			}
			if (s->count < INT_MAX)
				s->count++;
		}
	}
	pthread_mutex_unlock(&l->lock);
}

int
limit_over(struct limit *l, const char *kind, const char *value, time_t now)
{
	size_t idx[LIMIT_ROWS], r;
	const struct slot *s;
	int least = INT_MAX;

	pthread_mutex_lock(&l->lock);
	/* Unable to tell, say "over": a refusal is the safe mistake. */
	if (slots_of(l, kind, value, idx) == -1) {
		pthread_mutex_unlock(&l->lock);
		return 1;
	}
	for (r = 0; r < LIMIT_ROWS; r++) {
		s = &l->rows[r][idx[r]];
		if (!in_window(l, s, now))
			least = 0;
		else if (s->count < least)
			least = s->count;
	}
	pthread_mutex_unlock(&l->lock);
	return least >= l->max;
}

int
limit_source_key(const char *source, char *out, size_t len)
{
	struct in_addr a4;
	struct in6_addr a6;
	char text[INET6_ADDRSTRLEN];
	const char *suffix = "";

	if (inet_pton(AF_INET, source, &a4) == 1) {
		if (inet_ntop(AF_INET, &a4, text, sizeof(text)) == NULL)
			return -1;
	} else if (inet_pton(AF_INET6, source, &a6) != 1) {
		if (strlen(source) >= sizeof(text))
			return -1;
		memcpy(text, source, strlen(source) + 1);
	} else if (IN6_IS_ADDR_V4MAPPED(&a6)) {
		if (inet_ntop(AF_INET, &a6.s6_addr[12], text,
			sizeof(text)) == NULL)
			return -1;
	} else {
		/* The interface identifier is the subscriber's to choose. */
		memset(&a6.s6_addr[8], 0, 8);
		if (inet_ntop(AF_INET6, &a6, text, sizeof(text)) == NULL)
			return -1;
		suffix = "/64";
	}
	if (len == 0 || strlen(text) + strlen(suffix) >= len)
		return -1;
	snprintf(out, len, "%s%s", text, suffix);
	return 0;
}

time_t
limit_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec;
}

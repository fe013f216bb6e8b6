/*
 * admit.c - room for callers while others hold connections open without
 * finishing the TLS handshake (see admit.h).
 */
#include <string.h>

#include <netinet/in.h>

#include "admit.h"

void
admit_key(const struct sockaddr *sa, unsigned char key[ADMIT_KEY_LEN])
{
	const struct sockaddr_in6 *s6;
	const struct sockaddr_in *s4;

	memset(key, 0, ADMIT_KEY_LEN);
	if (sa->sa_family == AF_INET) {
		s4 = (const struct sockaddr_in *)sa;
		key[0] = 4;
		memcpy(key + 1, &s4->sin_addr, 4);
	} else if (sa->sa_family == AF_INET6) {
		s6 = (const struct sockaddr_in6 *)sa;
		if (IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr)) {
			key[0] = 4;
			memcpy(key + 1, s6->sin6_addr.s6_addr + 12, 4);
		} else {
			key[0] = 6;
			memcpy(key + 1, s6->sin6_addr.s6_addr, 8);
		}
	}
}

int
admit_pick(const unsigned char (*pending)[ADMIT_KEY_LEN], size_t n,
    const unsigned char key[ADMIT_KEY_LEN], size_t nlive, size_t max)
{
	size_t i, same = 0, oldest_same = 0;

	for (i = n; i-- > 0;)
		if (memcmp(pending[i], key, ADMIT_KEY_LEN) == 0) {
			same++;
			oldest_same = i;
		}
	if (same >= ADMIT_PER_SOURCE)
		return (int)oldest_same;
	if (n >= ADMIT_PENDING_MAX || (nlive >= max && n > 0))
		return 0;
	if (nlive >= max)
		return ADMIT_REFUSE;
	return ADMIT_NONE;
}

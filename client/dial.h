/*
 * dial.h - TCP connection to a peer: every address, IPv6 first, staggered
 * by 250 ms (Happy Eyeballs, RFC 8305), non-blocking connect + poll.
 */
#ifndef DIAL_H
#define DIAL_H

#include <stddef.h>
#include <sys/socket.h>

#define DIAL_MAX 64
#define DIAL_STAGGER_MS 250

struct dial_addr {
	struct sockaddr_storage ss;
	socklen_t len;
	char text[80]; /* "ip port", for messages and the contacts file */
	char ip[64];
	int port;
};

/* Parse an IP literal and port; 0 or -1. */
int dial_addr_parse(const char *ip, int port, struct dial_addr *out);
/* Parse "IP:PORT" or "[IPv6]:PORT"; 0 or -1. */
int dial_hostport_parse(const char *s, struct dial_addr *out);
/* Drop duplicates, then order IPv6 first and alternate the families
 * (RFC 8305), each family in its given order; returns the new count. */
size_t dial_sort(struct dial_addr *a, size_t n);

/*
 * Connect to the first of a[0..n) that answers, starting one attempt every
 * DIAL_STAGGER_MS (or at once when the previous one failed).  Returns a
 * connected non-blocking socket and *which, or -1 with a reason in err
 * after timeout_ms.
 */
int dial_connect(const struct dial_addr *a, size_t n, int timeout_ms,
    size_t *which, char *err, size_t errlen);

#endif

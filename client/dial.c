/*
 * dial.c - Happy Eyeballs over a list of literal addresses.
 *
 * The addresses come from the DIR (or the contacts file), never from DNS,
 * so the RFC 8305 resolution phase does not apply; what remains is the
 * ordering (IPv6 first) and the staggered, racing connection attempts.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "dial.h"

int
dial_addr_parse(const char *ip, int port, struct dial_addr *out)
{
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&out->ss;
	struct sockaddr_in *s4 = (struct sockaddr_in *)&out->ss;

	memset(out, 0, sizeof(*out));
	if (port < 1 || port > 65535 || strlen(ip) >= sizeof(out->ip))
		return -1;
	if (inet_pton(AF_INET6, ip, &s6->sin6_addr) == 1) {
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons((uint16_t)port);
		out->len = sizeof(*s6);
	} else if (inet_pton(AF_INET, ip, &s4->sin_addr) == 1) {
		s4->sin_family = AF_INET;
		s4->sin_port = htons((uint16_t)port);
		out->len = sizeof(*s4);
	} else
		return -1;
	snprintf(out->ip, sizeof(out->ip), "%s", ip);
	out->port = port;
	snprintf(out->text, sizeof(out->text), "%s %d", ip, port);
	return 0;
}

int
dial_hostport_parse(const char *s, struct dial_addr *out)
{
	char host[64];
	const char *colon, *end;
	long port;
	char *ep;
	size_t n;

	if (s[0] == '[') {
		if ((end = strchr(s, ']')) == NULL || end[1] != ':')
			return -1;
		n = (size_t)(end - s - 1);
		colon = end + 1;
		s++;
	} else {
		/* One colon only: "2001:db8::5:4605" is ambiguous, so an
		 * IPv6 address must come in brackets. */
		if ((colon = strchr(s, ':')) == NULL ||
		    strchr(colon + 1, ':') != NULL)
			return -1;
		n = (size_t)(colon - s);
	}
	if (n == 0 || n >= sizeof(host))
		return -1;
	memcpy(host, s, n);
	host[n] = '\0';
	errno = 0;
	port = strtol(colon + 1, &ep, 10);
	if (errno || *ep || ep == colon + 1 || port < 1 || port > 65535)
		return -1;
	return dial_addr_parse(host, (int)port, out);
}

size_t
dial_sort(struct dial_addr *a, size_t n)
{
	struct dial_addr uniq[DIAL_MAX], v6[DIAL_MAX], v4[DIAL_MAX];
	size_t i, j, m = 0, n6 = 0, n4 = 0, k6 = 0, k4 = 0;

	if (n > DIAL_MAX)
		n = DIAL_MAX;
	for (i = 0; i < n; i++) {
		for (j = 0; j < m; j++)
			if (strcmp(uniq[j].text, a[i].text) == 0)
				break;
		if (j == m)
			uniq[m++] = a[i];
	}
	for (i = 0; i < m; i++) {
		if (uniq[i].ss.ss_family == AF_INET6)
			v6[n6++] = uniq[i];
		else
			v4[n4++] = uniq[i];
	}
	/* RFC 8305 section 4: IPv6 first, then alternate the families, so
	 * a broken IPv6 path costs one stagger step, not one per address. */
	for (i = 0; i < m; i++) {
		if ((i % 2 == 0 && k6 < n6) || k4 == n4)
			a[i] = v6[k6++];
		else
			a[i] = v4[k4++];
	}
	return m;
}

static long
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Start one non-blocking connect; -1 when it failed at once. */
static int
start(const struct dial_addr *a, int *failed_errno)
{
	int fd;

	fd = socket(a->ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
	    0);
	if (fd == -1) {
		*failed_errno = errno;
		return -1;
	}
	if (connect(fd, (const struct sockaddr *)&a->ss, a->len) == -1 &&
	    errno != EINPROGRESS) {
		*failed_errno = errno;
		close(fd);
		return -1;
	}
	return fd;
}

int
dial_connect(const struct dial_addr *a, size_t n, int timeout_ms,
    size_t *which, char *err, size_t errlen)
{
	struct pollfd pfd[DIAL_MAX];
	size_t idx[DIAL_MAX], live = 0, next = 0, i;
	long deadline = now_ms() + timeout_ms, next_at = 0, t;
	int last_errno = ETIMEDOUT, fd = -1, soerr, wait;
	socklen_t sl;

	if (n == 0) {
		snprintf(err, errlen, "no address to call");
		return -1;
	}
	if (n > DIAL_MAX)
		n = DIAL_MAX;
	for (;;) {
		t = now_ms();
		/* Next attempt when its turn came, or when nothing is in
		 * flight (a refused attempt should not cost 250 ms). */
		while (next < n && (t >= next_at || live == 0)) {
			int f = start(&a[next], &last_errno);

			if (f != -1) {
				pfd[live].fd = f;
				pfd[live].events = POLLOUT;
				idx[live++] = next;
			}
			next++;
			next_at = t + DIAL_STAGGER_MS;
			if (f != -1)
				break;
		}
		if (live == 0 && next == n)
			break;
		if (t >= deadline)
			break;
		wait = (int)(deadline - t);
		if (next < n && next_at - t < wait)
			wait = (int)(next_at - t);
		if (wait < 0)
			wait = 0;
		if (poll(pfd, live, wait) == -1 && errno != EINTR)
			break;
		for (i = 0; i < live; i++) {
			if (pfd[i].revents == 0)
				continue;
			soerr = 0;
			sl = sizeof(soerr);
			if (getsockopt(pfd[i].fd, SOL_SOCKET, SO_ERROR, &soerr,
			    &sl) == -1)
				soerr = errno;
			if (soerr == 0) {
				fd = pfd[i].fd;
				*which = idx[i];
				pfd[i] = pfd[--live];
				idx[i] = idx[live];
				goto done;
			}
			last_errno = soerr;
			close(pfd[i].fd);
			pfd[i] = pfd[--live];
			idx[i] = idx[live];
			i--;
		}
	}
done:
	for (i = 0; i < live; i++)
		close(pfd[i].fd);
	if (fd == -1)
		snprintf(err, errlen, "no answer from %s%s (%s)", a[0].text,
		    n > 1 ? " or the other addresses" : "",
		    strerror(last_errno));
	return fd;
}

/*
 * irp_dns.c - SRV, address and TLSA lookups through libunbound
 * (irp_dns.h).
 *
 * libunbound does the DNS: the transport, the retries, the parsing of
 * messages and the DNSSEC validation.  What comes back is the record
 * data of one answer; the numbers in it are read here and the one name
 * (an SRV target) is expanded by the C library's dn_expand().
 *
 * Queries are asynchronous inside, so that one can be given up after
 * the timeout: ub_resolve() alone waits as long as unbound's retries
 * take, over a quarter of a minute when the resolver is down.  libunbound
 * calls the callback from ub_process(), on the thread that asks, and one
 * query runs at a time (dns->lock), so an answer that comes after its
 * query was given up is freed by the callback on a later ub_process().
 */
#include <arpa/inet.h>
#include <resolv.h>

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/rand.h>
#include <unbound.h>

#include "irp_dns.h"
#include "irp_internal.h"

#define RR_A 1
#define RR_SRV 33
#define RR_AAAA 28
#define RR_TLSA 52
#define CLASS_IN 1
#define RCODE_SERVFAIL 2

struct irp_dns {
	struct ub_ctx *ub;
	pthread_mutex_t lock;
	int timeout_ms;
};

/* One query in flight; freed by the asker, or by the callback if given up. */
struct query {
	int done;
	int abandoned;
	int err;
	struct ub_result *res;
};

static void
on_answer(void *arg, int err, struct ub_result *res)
{
	struct query *q = arg;

	if (q->abandoned) {
		ub_resolve_free(res);
		free(q);
		return;
	}
	q->done = 1;
	q->err = err;
	q->res = res;
}

static long long
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* A host or domain name as the DNS may carry it: LDH labels, no dot at
 * either end.  Checked before asking, so that a user id's domain cannot
 * smuggle a query for something else. */
static int
name_ok(const char *name)
{
	size_t len = strlen(name), label = 0, i;
	unsigned char c;

	if (len == 0 || len > 253 || name[0] == '.' || name[len - 1] == '.')
		return 0;
	for (i = 0; i < len; i++) {
		c = (unsigned char)name[i];
		if (c == '.') {
			if (label == 0)
				return 0;
			label = 0;
			continue;
		}
		if (!(c >= 'a' && c <= 'z') && !(c >= 'A' && c <= 'Z') &&
		    !(c >= '0' && c <= '9') && c != '-' && c != '_')
			return 0;
		if (++label > 63)
			return 0;
	}
	return 1;
}

struct irp_dns *
irp_dns_new(const char *server, const char *anchor, int timeout_ms,
    struct irp_err *err)
{
	struct irp_dns *dns;
	int r;

	if ((dns = calloc(1, sizeof(*dns))) == NULL ||
	    pthread_mutex_init(&dns->lock, NULL) != 0) {
		free(dns);
		irp_seterr(err, 0, "memory", "out of memory");
		return NULL;
	}
	dns->timeout_ms = timeout_ms > 0 ? timeout_ms : IRP_DNS_TIMEOUT_MS;
	if ((dns->ub = ub_ctx_create()) == NULL) {
		irp_seterr(err, 0, "memory", "cannot start a DNS resolver");
		goto err;
	}
	/* A thread for the work in the background, never a forked process. */
	if ((r = ub_ctx_async(dns->ub, 1)) != 0)
		goto ub_err;
	if (server == NULL || server[0] == '\0') {
		if ((r = ub_ctx_resolvconf(dns->ub, NULL)) != 0 ||
		    (r = ub_ctx_hosts(dns->ub, NULL)) != 0)
			goto ub_err;
	} else if ((r = ub_ctx_set_fwd(dns->ub, server)) != 0) {
		irp_seterr(err, 0, "usage",
		    "the DNS server \"%s\" is not ADDR or ADDR@PORT: %s",
		    server, ub_strerror(r));
		goto err;
	}
	if (anchor != NULL && (r = ub_ctx_add_ta_file(dns->ub, anchor)) != 0) {
		irp_seterr(err, 0, "usage",
		    "cannot read DNSSEC trust anchors from %s: %s", anchor,
		    ub_strerror(r));
		goto err;
	}
	return dns;
ub_err:
	irp_seterr(err, 0, "dns_unavailable",
	    "cannot set up the DNS resolver: %s", ub_strerror(r));
err:
	irp_dns_free(dns);
	return NULL;
}

void
irp_dns_free(struct irp_dns *dns)
{
	if (dns == NULL)
		return;
	if (dns->ub != NULL)
		ub_ctx_delete(dns->ub);
	pthread_mutex_destroy(&dns->lock);
	free(dns);
}

/* Wait for q until deadline; 0 when it was answered. */
static int
wait_answer(struct irp_dns *dns, struct query *q, long long deadline)
{
	struct pollfd pfd;
	long long left;

	pfd.fd = ub_fd(dns->ub);
	pfd.events = POLLIN;
	while (!q->done) {
		if ((left = deadline - now_ms()) <= 0)
			return -1;
		if (poll(&pfd, 1, (int)left) == -1 && errno != EINTR)
			return -1;
		if (ub_process(dns->ub) != 0)
			return -1;
	}
	return 0;
}

/*
 * Ask for name's records of type; *res when it answered (an answer may
 * still be NXDOMAIN or empty).  A forged (bogus) answer or a failed
 * resolver is an error.
 */
static int
resolve(struct irp_dns *dns, const char *name, int type, struct ub_result **res,
    struct irp_err *err)
{
	struct query *q;
	int id, r, answered;

	*res = NULL;
	if ((q = calloc(1, sizeof(*q))) == NULL) {
		irp_seterr(err, 0, "memory", "out of memory");
		return -1;
	}
	pthread_mutex_lock(&dns->lock);
	r = ub_resolve_async(dns->ub, name, type, CLASS_IN, q, on_answer, &id);
	if (r != 0) {
		pthread_mutex_unlock(&dns->lock);
		free(q);
		irp_seterr(err, 0, "dns_unavailable",
		    "cannot ask the DNS for %s: %s", name, ub_strerror(r));
		return -1;
	}
	answered = wait_answer(dns, q, now_ms() + dns->timeout_ms) == 0;
	if (!answered) {
		/* Not found: the answer is on its way, and the callback frees q. */
		if (ub_cancel(dns->ub, id) != 0)
			q->abandoned = 1;
		else
			free(q);
		pthread_mutex_unlock(&dns->lock);
		irp_seterr(err, 0, "dns_unavailable",
		    "the DNS resolver gave no answer for %s within %d s", name,
		    (dns->timeout_ms + 999) / 1000);
		return -1;
	}
	pthread_mutex_unlock(&dns->lock);
	*res = q->res;
	r = q->err;
	free(q);
	if (r != 0) {
		irp_seterr(err, 0, "dns_unavailable",
		    "the DNS lookup of %s failed: %s", name, ub_strerror(r));
		goto err;
	}
	if ((*res)->bogus) {
		irp_seterr(err, 0, "dns_bogus",
		    "the DNS answer for %s failed DNSSEC validation (%s): "
		    "it may be forged",
		    name,
		    (*res)->why_bogus ? (*res)->why_bogus : "no reason given");
		goto err;
	}
	if ((*res)->rcode == RCODE_SERVFAIL) {
		irp_seterr(err, 0, "dns_unavailable",
		    "the DNS resolver could not answer for %s (SERVFAIL)",
		    name);
		goto err;
	}
	return 0;
err:
	ub_resolve_free(*res);
	*res = NULL;
	return -1;
}

static void
meta_set(struct irp_dns_meta *meta, const struct ub_result *res)
{
	if (meta == NULL)
		return;
	meta->secure = res->secure;
	meta->ttl = res->ttl > 0 ? (uint32_t)res->ttl : 0;
}

/* Both answers' worth: secure only if both are, the shorter life. */
static void
meta_join(struct irp_dns_meta *meta, const struct irp_dns_meta *other)
{
	meta->secure = meta->secure && other->secure;
	if (other->ttl < meta->ttl)
		meta->ttl = other->ttl;
}

static uint16_t
get16(const unsigned char *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

/* One SRV record's data into *srv; -1 when it is malformed. */
static int
srv_read(const unsigned char *p, int len, struct irp_srv *srv)
{
	if (len < 7)
		return -1;
	srv->priority = get16(p);
	srv->weight = get16(p + 2);
	srv->port = get16(p + 4);
	if (dn_expand(p, p + len, p + 6, srv->host, sizeof(srv->host)) !=
	    len - 6)
		return -1;
	return 0;
}

static uint32_t
rand_u32(void *arg)
{
	uint32_t r = 0;

	(void)arg;
	if (RAND_bytes((unsigned char *)&r, sizeof(r)) != 1)
		r = (uint32_t)now_ms();
	return r;
}

/* Move the record drawn among srv[0..n) by weight to srv[0]. */
static void
draw_first(struct irp_srv *srv, size_t n, uint32_t (*rnd)(void *), void *arg)
{
	struct irp_srv t;
	uint32_t total = 0, pick, sum = 0;
	size_t i, z = 0;

	/* Weight 0 first, as RFC 2782 asks: drawn only when the draw is 0. */
	for (i = 0; i < n; i++)
		if (srv[i].weight == 0) {
			t = srv[z];
			srv[z++] = srv[i];
			srv[i] = t;
		}
	for (i = 0; i < n; i++)
		total += srv[i].weight;
	if (total == 0) {
		/* All weight 0: "any order", so an even draw spreads the load. */
		i = rnd(arg) % n;
	} else {
		pick = rnd(arg) % (total + 1);
		for (i = 0; i < n; i++) {
			sum += srv[i].weight;
			if (sum >= pick)
				break;
		}
		if (i == n)
			i = n - 1;
	}
	t = srv[0];
	srv[0] = srv[i];
	srv[i] = t;
}

void
irp_srv_order(struct irp_srv *srv, size_t n, uint32_t (*rnd)(void *), void *arg)
{
	struct irp_srv t;
	size_t i, j, k;

	if (rnd == NULL)
		rnd = rand_u32;
	/* By priority; n is small (IRP_DNS_RR_MAX). */
	for (i = 1; i < n; i++)
		for (j = i; j > 0 && srv[j - 1].priority > srv[j].priority;
		     j--) {
			t = srv[j];
			srv[j] = srv[j - 1];
			srv[j - 1] = t;
		}
	for (i = 0; i < n; i = j) {
		for (j = i + 1; j < n && srv[j].priority == srv[i].priority;
		     j++)
			;
		for (k = i; k + 1 < j; k++)
			draw_first(srv + k, j - k, rnd, arg);
	}
}

int
irp_dns_srv(struct irp_dns *dns, const char *domain, struct irp_srv *out,
    size_t max, size_t *n, struct irp_dns_meta *meta, struct irp_err *err)
{
	char name[sizeof(IRP_SRV_PREFIX) + 254];
	struct ub_result *res;
	size_t i;

	*n = 0;
	if (!name_ok(domain)) {
		irp_seterr(err, 0, "usage", "\"%s\" is not a domain name",
		    domain);
		return -1;
	}
	snprintf(name, sizeof(name), "%s%s", IRP_SRV_PREFIX, domain);
	if (resolve(dns, name, RR_SRV, &res, err) == -1)
		return -1;
	if (res->nxdomain || !res->havedata) {
		irp_seterr(err, 0, res->nxdomain ? "no_domain" : "no_registry",
		    "%s publishes no registry: no SRV record %s", domain, name);
		goto err;
	}
	meta_set(meta, res);
	for (i = 0; res->data[i] != NULL && *n < max; i++) {
		if (srv_read((unsigned char *)res->data[i], res->len[i],
			&out[*n]) == -1) {
			irp_seterr(err, 0, "bad_response",
			    "a malformed SRV record for %s", name);
			goto err;
		}
		(*n)++;
	}
	/* A lone "." target: the domain says it runs no registry. */
	if (*n == 1 && out[0].host[0] == '\0') {
		irp_seterr(err, 0, "no_registry",
		    "%s says it runs no registry (SRV target \".\")", domain);
		goto err;
	}
	ub_resolve_free(res);
	irp_srv_order(out, *n, NULL, NULL);
	return 0;
err:
	*n = 0;
	ub_resolve_free(res);
	return -1;
}

/* The addresses of one family into out[*n...]; -1 on a failed query. */
static int
addrs_of(struct irp_dns *dns, const char *host, int type, char (*out)[46],
    size_t max, size_t *n, struct irp_dns_meta *meta, struct irp_err *err)
{
	struct ub_result *res;
	int af = type == RR_A ? AF_INET : AF_INET6,
	    want = af == AF_INET ? 4 : 16;
	size_t i;

	if (resolve(dns, host, type, &res, err) == -1)
		return -1;
	meta_set(meta, res);
	for (i = 0; res->havedata && res->data[i] != NULL && *n < max; i++)
		if (res->len[i] == want &&
		    inet_ntop(af, res->data[i], out[*n], 46) != NULL)
			(*n)++;
	ub_resolve_free(res);
	return 0;
}

int
irp_dns_addrs(struct irp_dns *dns, const char *host, char (*out)[46],
    size_t max, size_t *n, struct irp_dns_meta *meta, struct irp_err *err)
{
	struct irp_dns_meta m6 = { 0, 0 }, m4 = { 0, 0 };
	struct irp_err e6;
	int r6;

	*n = 0;
	if (!name_ok(host)) {
		irp_seterr(err, 0, "usage", "\"%s\" is not a host name", host);
		return -1;
	}
	r6 = addrs_of(dns, host, RR_AAAA, out, max, n, &m6, &e6);
	if (addrs_of(dns, host, RR_A, out, max, n, &m4, err) == -1 && *n == 0)
		return -1;
	if (*n == 0) {
		if (r6 == -1 && err != NULL)
			*err = e6;
		else
			irp_seterr(err, 0, "no_address",
			    "%s has no address in the DNS", host);
		return -1;
	}
	if (meta != NULL) {
		*meta = m4;
		meta_join(meta, &m6);
	}
	return 0;
}

int
irp_dns_tlsa(struct irp_dns *dns, const char *host, uint16_t port,
    struct irp_tlsa *out, size_t max, size_t *n, struct irp_dns_meta *meta,
    struct irp_err *err)
{
	char name[300];
	struct ub_result *res;
	const unsigned char *p;
	size_t i;

	*n = 0;
	if (!name_ok(host)) {
		irp_seterr(err, 0, "usage", "\"%s\" is not a host name", host);
		return -1;
	}
	snprintf(name, sizeof(name), "_%u._tcp.%s", (unsigned)port, host);
	if (resolve(dns, name, RR_TLSA, &res, err) == -1)
		return -1;
	meta_set(meta, res);
	for (i = 0; res->havedata && res->data[i] != NULL && *n < max; i++) {
		p = (const unsigned char *)res->data[i];
		if (res->len[i] < 4 ||
		    (size_t)res->len[i] - 3 > sizeof(out[*n].data))
			continue;
		out[*n].usage = p[0];
		out[*n].selector = p[1];
		out[*n].mtype = p[2];
		out[*n].len = (size_t)res->len[i] - 3;
		memcpy(out[*n].data, p + 3, out[*n].len);
		(*n)++;
	}
	ub_resolve_free(res);
	return 0;
}

/*
 * irp_dns.h - finding a domain's registry in the DNS, and the DANE
 * records that vouch for it, through libunbound.
 *
 * A domain publishes its registry as "_irp._tcp.DOMAIN" SRV records
 * (RFC 2782); a registry's TLS may be vouched for by "_PORT._tcp.HOST"
 * TLSA records (RFC 6698), which count only when DNSSEC validated them
 * ("secure").  Every query waits at most the timeout given to
 * irp_dns_new(); an answer that fails DNSSEC validation ("bogus") is an
 * error, never an answer.
 *
 * Thread safety: a struct irp_dns may be shared; its queries run one at
 * a time.
 */
#ifndef IRP_DNS_H
#define IRP_DNS_H

#include <stddef.h>
#include <stdint.h>

#include "irp_client.h"

/* The SRV service label of a registry. */
#define IRP_SRV_PREFIX "_irp._tcp."
/* Host names in SRV targets, as text without the final dot. */
#define IRP_HOST_MAX 256
/* Answers longer than this are cut to it. */
#define IRP_DNS_RR_MAX 16
/* The default wait for one query. */
#define IRP_DNS_TIMEOUT_MS 5000

struct irp_dns;

/* One SRV record: where a registry of the domain listens. */
struct irp_srv {
	char host[IRP_HOST_MAX];
	uint16_t port;
	uint16_t priority;
	uint16_t weight;
};

/* One TLSA record (RFC 6698 section 2.1). */
struct irp_tlsa {
	uint8_t usage;	  /* 0..3: PKIX-TA, PKIX-EE, DANE-TA, DANE-EE */
	uint8_t selector; /* 0 the whole certificate, 1 its public key */
	uint8_t mtype;	  /* 0 exact, 1 SHA-256, 2 SHA-512 */
	size_t len;
	unsigned char data[512];
};

/* What one query learnt besides its records. */
struct irp_dns_meta {
	int secure;   /* validated by DNSSEC up to a configured anchor */
	uint32_t ttl; /* seconds the answer may be kept */
};

/*
 * A resolver.  server: NULL or "" for the system's (resolv.conf and
 * /etc/hosts); otherwise "ADDR" or "ADDR@PORT", a recursive resolver
 * (or a name server for the zones asked about) to send every query to.
 * anchor: NULL, or a file of DS or DNSKEY records in zone-file form
 * (the root's is /usr/share/dns/root.key): the trust anchors for
 * DNSSEC; without one nothing is secure.  timeout_ms: the longest wait
 * for one query, 0 for IRP_DNS_TIMEOUT_MS.  NULL with err filled.
 */
struct irp_dns *irp_dns_new(const char *server, const char *anchor,
    int timeout_ms, struct irp_err *err) IRP_WUR;
void irp_dns_free(struct irp_dns *dns);

/*
 * The registries of domain, in the order to try them (RFC 2782:
 * priority, then weighted random).  At most max into out, *n of them.
 * -1 with err when there is none (code "no_registry"), the domain does
 * not exist ("no_domain"), DNSSEC says the answer was forged ("dns_bogus")
 * or the resolver did not answer ("dns_unavailable").
 */
int irp_dns_srv(struct irp_dns *dns, const char *domain, struct irp_srv *out,
    size_t max, size_t *n, struct irp_dns_meta *meta,
    struct irp_err *err) IRP_WUR;

/*
 * The IPv6 and IPv4 addresses of host, as text, IPv6 first; same errors
 * (code "no_address" when the name has none).
 */
int irp_dns_addrs(struct irp_dns *dns, const char *host, char (*out)[46],
    size_t max, size_t *n, struct irp_dns_meta *meta,
    struct irp_err *err) IRP_WUR;

/*
 * The TLSA records of "_PORT._tcp.HOST".  0 with *n == 0 when there are
 * none; meta->secure says whether they may be used.
 */
int irp_dns_tlsa(struct irp_dns *dns, const char *host, uint16_t port,
    struct irp_tlsa *out, size_t max, size_t *n, struct irp_dns_meta *meta,
    struct irp_err *err) IRP_WUR;

/*
 * Put n SRV records in RFC 2782's order: ascending priority, and within
 * one priority a weighted random draw (weight 0 rarely first).  rnd
 * returns a uniform random number; NULL for OpenSSL's generator.
 */
void irp_srv_order(struct irp_srv *srv, size_t n, uint32_t (*rnd)(void *),
    void *arg);

#endif

/*
 * registry.h - how dchat reaches its registry: found in the DNS by the
 * user id's domain when no address is given, its CA pinned by the
 * fingerprint the administrator handed out, and opened with the home's
 * settings (server, DNS server) for every later call.
 */
#ifndef REGISTRY_H
#define REGISTRY_H

#include <stddef.h>

#include "irp_client.h"
#include "keystore.h"

/*
 * The registry of domain: its "_irp._tcp" SRV records, tried in their
 * order (RFC 2782) until one serves a CA with the given fingerprint.
 * dns_server: NULL for the system's resolver, or "ADDR[@PORT]".  On
 * success server holds "https://HOST:PORT" and *ca_pem the CA (free()).
 * -1 with err: no registry published, DNS down, or no target with that
 * CA (the last target's reason, which says which).
 */
int registry_discover(const char *domain, const char *dns_server,
    const char *fingerprint, char *server, size_t len, char **ca_pem,
    struct irp_err *err);

/*
 * A client for the home's registry (ks->server, pinned to ks->ca), with
 * the device's certificate when with_cert, resolving the server's name
 * through ks->dns when the home names a DNS server.
 */
struct irp_client *registry_open(const struct keystore *ks, int with_cert,
    struct irp_err *err);

#endif

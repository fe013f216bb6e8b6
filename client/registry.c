/*
 * registry.c - finding and opening the home's registry (registry.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "irp_dns.h"
#include "registry.h"

int
registry_discover(const char *domain, const char *dns_server,
    const char *fingerprint, char *server, size_t len, char **ca_pem,
    struct irp_err *err)
{
	struct irp_srv srv[IRP_DNS_RR_MAX];
	struct irp_dns *dns;
	struct irp_err e = { 0, "", "" };
	size_t n, i;
	int rv = -1;

	*ca_pem = NULL;
	if ((dns = irp_dns_new(dns_server, NULL, 0, err)) == NULL)
		return -1;
	if (irp_dns_srv(dns, domain, srv, IRP_DNS_RR_MAX, &n, NULL, err) == -1)
		goto out;
	for (i = 0; i < n && rv == -1; i++) {
		snprintf(server, len, "https://%s:%u", srv[i].host,
		    (unsigned)srv[i].port);
		/* A named DNS server resolves the target too. */
		rv = irp_fetch_ca(server,
		    dns_server != NULL && dns_server[0] != '\0' ? dns : NULL,
		    fingerprint, ca_pem, &e);
	}
	if (rv == -1) {
		server[0] = '\0';
		if (err != NULL) {
			*err = e;
			snprintf(err->msg, sizeof(err->msg),
			    "the registry that %s publishes (SRV %s%s) did "
			    "not serve the CA: %s",
			    domain, IRP_SRV_PREFIX, domain, e.msg);
		}
	}
out:
	irp_dns_free(dns);
	return rv;
}

struct irp_client *
registry_open(const struct keystore *ks, int with_cert, struct irp_err *err)
{
	struct irp_client *c;
	struct irp_dns *dns;
	int r;

	if ((c = irp_client_new(ks->server, ks->ca, with_cert ? ks->cert : NULL,
		 with_cert ? ks->key : NULL, err)) == NULL)
		return NULL;
	if (ks->dns[0] == '\0')
		return c;
	if ((dns = irp_dns_new(ks->dns, NULL, 0, err)) == NULL) {
		irp_client_free(c);
		return NULL;
	}
	r = irp_client_use_dns(c, dns, err);
	irp_dns_free(dns);
	if (r == -1) {
		irp_client_free(c);
		return NULL;
	}
	return c;
}

/*
 * dnsq.c - irp_dns.h from the command line, for tests/integration/
 * test_dns.py: one query, its answer as one JSON line.
 *
 *   dnsq [--server ADDR@PORT] [--anchor FILE] [--timeout MS]
 *        srv DOMAIN | addrs HOST | tlsa HOST PORT
 *
 * Exit 0 with {"records": [...], "secure": B, "ttl": N}, or 1 with
 * {"code": C, "message": M}.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "irp_dns.h"

static json_t *
srv_json(const struct irp_srv *s, size_t n)
{
	json_t *a = json_array();
	size_t i;

	for (i = 0; i < n; i++)
		json_array_append_new(a,
		    json_pack("{s:s, s:i, s:i, s:i}", "host", s[i].host, "port",
			s[i].port, "priority", s[i].priority, "weight",
			s[i].weight));
	return a;
}

static json_t *
tlsa_json(const struct irp_tlsa *t, size_t n)
{
	json_t *a = json_array();
	char hex[2 * sizeof(t->data) + 1];
	size_t i, j;

	for (i = 0; i < n; i++) {
		for (j = 0; j < t[i].len; j++)
			snprintf(hex + 2 * j, 3, "%02x", t[i].data[j]);
		hex[2 * t[i].len] = '\0';
		json_array_append_new(a,
		    json_pack("{s:i, s:i, s:i, s:s}", "usage", t[i].usage,
			"selector", t[i].selector, "mtype", t[i].mtype, "data",
			hex));
	}
	return a;
}

static int
usage(void)
{
	fprintf(stderr,
	    "usage: dnsq [--server S] [--anchor F] [--timeout MS] "
	    "srv DOMAIN | addrs HOST | tlsa HOST PORT\n");
	return 2;
}

int
main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "server", required_argument, NULL, 's' },
		{ "anchor", required_argument, NULL, 'a' },
		{ "timeout", required_argument, NULL, 't' },
		{ NULL, 0, NULL, 0 },
	};
	const char *server = NULL, *anchor = NULL;
	struct irp_srv srv[IRP_DNS_RR_MAX];
	struct irp_tlsa tlsa[IRP_DNS_RR_MAX];
	char addrs[IRP_DNS_RR_MAX][46];
	struct irp_dns_meta meta = { 0, 0 };
	struct irp_err err;
	struct irp_dns *dns;
	json_t *recs = NULL, *out;
	size_t n = 0, i;
	int c, timeout = 0, r = -1;

	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (c == 's')
			server = optarg;
		else if (c == 'a')
			anchor = optarg;
		else if (c == 't')
			timeout = (int)strtol(optarg, NULL, 10);
		else
			return usage();
	}
	argc -= optind;
	argv += optind;
	if (argc < 2)
		return usage();
	if ((dns = irp_dns_new(server, anchor, timeout, &err)) == NULL)
		goto out;
	if (strcmp(argv[0], "srv") == 0) {
		r = irp_dns_srv(dns, argv[1], srv, IRP_DNS_RR_MAX, &n, &meta,
		    &err);
		recs = r == 0 ? srv_json(srv, n) : NULL;
	} else if (strcmp(argv[0], "addrs") == 0) {
		r = irp_dns_addrs(dns, argv[1], addrs, IRP_DNS_RR_MAX, &n,
		    &meta, &err);
		if (r == 0 && (recs = json_array()) != NULL)
			for (i = 0; i < n; i++)
				json_array_append_new(recs,
				    json_string(addrs[i]));
	} else if (strcmp(argv[0], "tlsa") == 0 && argc == 3) {
		r = irp_dns_tlsa(dns, argv[1],
		    (uint16_t)strtoul(argv[2], NULL, 10), tlsa, IRP_DNS_RR_MAX,
		    &n, &meta, &err);
		recs = r == 0 ? tlsa_json(tlsa, n) : NULL;
	} else {
		irp_dns_free(dns);
		return usage();
	}
	irp_dns_free(dns);
out:
	if (r == 0)
		out = json_pack("{s:o, s:b, s:i}", "records", recs, "secure",
		    meta.secure, "ttl", (json_int_t)meta.ttl);
	else
		out = json_pack("{s:s, s:s}", "code", err.code, "message",
		    err.msg);
	json_dumpf(out, stdout, JSON_COMPACT);
	putchar('\n');
	json_decref(out);
	return r == 0 ? 0 : 1;
}

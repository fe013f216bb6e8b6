/*
 * fuzz_addresses.c - the body of PUT /v1/me/addresses as dird reads it:
 * http_parse_json, then api_parse_addresses (JSON shape, IP literals,
 * ports), and api_parse_ip on the raw bytes, which also
 * reads the address a request came from.
 */
#include "api.h"
#include "fuzz.h"

/* The canonical form is a fixed point: what is stored parses to itself. */
static void
check_ip(const char *ip)
{
	char again[64];

	FUZZ_CHECK(api_parse_ip(ip, again, sizeof(again)) == 0);
	FUZZ_CHECK(strcmp(ip, again) == 0);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct db_addr addrs[IRP_ADDR_MAX + 1];
	struct http_resp resp;
	char ip[64], *s;
	long long ttl;
	json_t *body;
	size_t n, i;
	int has_ttl;

	memset(&resp, 0, sizeof(resp));
	if ((body = http_parse_json(data, size, &resp)) == NULL) {
		FUZZ_CHECK(resp.status == 400 && resp.body != NULL);
	} else if (api_parse_addresses(body, addrs, &n, &ttl, &has_ttl,
		       &resp) == -1) {
		FUZZ_CHECK(resp.status == 400 && resp.body != NULL);
	} else {
		FUZZ_CHECK(resp.status == 0);
		FUZZ_CHECK(n >= 1 && n <= IRP_ADDR_MAX);
		FUZZ_CHECK(has_ttl || ttl == 0);
		for (i = 0; i < n; i++) {
			FUZZ_CHECK(addrs[i].port >= 1 &&
			    addrs[i].port <= 65535 && !addrs[i].observed);
			check_ip(addrs[i].ip);
		}
	}
	json_decref(body);
	free(resp.body);

	if ((s = fuzz_cstr(data, size)) != NULL) {
		if (api_parse_ip(s, ip, sizeof(ip)) == 0)
			check_ip(ip);
		free(s);
	}
	return 0;
}

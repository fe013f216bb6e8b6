/*
 * conf.c - the configuration table and its INI reader.
 */
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <ini.h>

#include "conf.h"

enum conf_type { CT_INT, CT_STR, CT_LISTEN };

/*
 * One row per key: the single source of names, bounds and defaults, and
 * of which keys a running dird takes on SIGHUP ("live"): those read per
 * request.  The rest (listeners, threads, the database, the limiter and
 * the cache, built once at start) change only at a restart.
 */
static const struct conf_key {
	const char *name;
	enum conf_type type;
	size_t off;
	size_t size; /* for strings */
	long min, max;
	const char *def;
	const char *help;
	const char *choices; /* strings: "a|b|c" when only those are valid */
	int live;
} keys[] = {
#define I(n, f, lo, hi, d, h) \
	{ n, CT_INT, offsetof(struct conf, f), 0, lo, hi, d, h, NULL, 0 }
#define IL(n, f, lo, hi, d, h) \
	{ n, CT_INT, offsetof(struct conf, f), 0, lo, hi, d, h, NULL, 1 }
#define S(n, f, d, h) \
	{ n, CT_STR, offsetof(struct conf, f), sizeof(((struct conf *)0)->f), \
	    0, 0, d, h, NULL, 0 }
#define SL(n, f, d, h) \
	{ n, CT_STR, offsetof(struct conf, f), sizeof(((struct conf *)0)->f), \
	    0, 0, d, h, NULL, 1 }
	S("domain", domain, "", "the domain this registry serves"),
	S("dsn", dsn, "", "libpq conninfo; empty for the embedded cluster"),
	SL("crl_url", crl_url, "", "CRL distribution point put in certificates"),
	SL("ocsp_url", ocsp_url, "",
	    "OCSP responder put in certificates (authorityInfoAccess)"),
	SL("ca_url", ca_url, "",
	    "where the CA certificate is, put in certificates (caIssuers)"),
	{ "listen", CT_LISTEN, 0, 0, 0, 0, "[::]:4604",
	    "address:port for IRP over HTTPS, or http://address:port for "
	    "the CA, CRL and OCSP over plain HTTP; repeat the key for more",
	    NULL, 0 },
	IL("cert_days", cert_days, 1, 3650, "365",
	    "user certificate lifetime, days"),
	IL("crl_days", crl_days, 1, 365, "7", "CRL validity, days"),
	IL("code_ttl", code_ttl, 60, 30 * 86400, "86400",
	    "default enrolment code lifetime, seconds"),
	{ "enrol_policy", CT_STR, offsetof(struct conf, enrol_policy),
	    sizeof(((struct conf *)0)->enrol_policy), 0, 0, "auto",
	    "enrolments of users with no policy of their own: auto (issued "
	    "at once) or approve (kept for an administrator)",
	    "auto|approve", 1 },
	IL("request_ttl", request_ttl, 60, 90 * 86400, "604800",
	    "seconds an enrolment request waits for a decision at most"),
	IL("request_poll", request_poll, 1, 3600, "30",
	    "seconds a client waiting for a decision is told to wait before "
	    "asking again (Retry-After)"),
	IL("ttl_min", ttl_min, 10, 86400, "60", "shortest address TTL, seconds"),
	IL("ttl_max", ttl_max, 10, 7 * 86400, "3600",
	    "longest address TTL, seconds"),
	IL("ttl_default", ttl_default, 10, 7 * 86400, "300",
	    "address TTL when the client names none"),
	I("workers", workers, 1, 256, "4",
	    "worker threads (one database connection each)"),
	I("max_connections", max_conns, 1, 1000000, "2048",
	    "connections in total"),
	I("max_connections_per_ip", max_conns_ip, 1, 1000000, "256",
	    "connections per source address"),
	I("connection_timeout", conn_timeout, 1, 3600, "60",
	    "idle seconds before a connection is closed"),
	IL("body_max", body_max, 1024, 1048576, "65536",
	    "request body limit, bytes"),
	IL("inbox_msg_max", inbox_msg_max, 1024, 67108864, "16777216",
	    "bytes of one message posted to a user's inbox"),
	IL("inbox_user_mb", inbox_user_mb, 1, 1048576, "256",
	    "MiB of messages that may wait for one user"),
	IL("inbox_user_count", inbox_user_count, 1, 1000000, "1000",
	    "messages that may wait for one user"),
	IL("inbox_sender_mb", inbox_sender_mb, 1, 1048576, "64",
	    "MiB of messages one sender may have waiting, for all users"),
	IL("inbox_total_mb", inbox_total_mb, 1, 16777216, "4096",
	    "MiB of messages that may wait in all"),
	IL("inbox_ttl", inbox_ttl, 60, 31536000, "604800",
	    "seconds a message waits at most before it is dropped"),
	IL("bodies_mb", bodies_mb, 1, 65536, "512",
	    "MiB of request bodies held in memory at once, in all; a body "
	    "beyond is answered 503"),
	IL("push_wait_max", push_wait_max, 0, 3600, "60",
	    "seconds a request for events (a long poll) may wait at most; "
	    "0: never wait, answer at once"),
	I("push_waiters", push_waiters, 1, 100000, "1024",
	    "requests for events that may wait at once, in all"),
	I("commit_batch", commit_batch, 1, 1024, "256",
	    "address writes committed together at most (group commit); 1: "
	    "each commits alone on its worker thread"),
	I("commit_window_us", commit_window_us, 0, 1000000, "0",
	    "microseconds a group commit waits for more writes after its "
	    "first; 0: it takes those that arrived while the last one "
	    "committed"),
	I("push_user_waiters", push_user_waiters, 1, 1000, "8",
	    "requests for events that may wait at once for one user (one "
	    "per device that runs)"),
	IL("backup_max", backup_max, 1024, 16777216, "1048576",
	    "PKCS#12 backup limit, bytes"),
	IL("ocsp_validity", ocsp_validity, 60, 86400, "300",
	    "seconds an OCSP answer is valid (its nextUpdate)"),
	{ "metrics", CT_STR, offsetof(struct conf, metrics),
	    sizeof(((struct conf *)0)->metrics), 0, 0, "admin",
	    "who may read /metrics on the IRP port: admin (an administrator's "
	    "certificate) or public", "admin|public", 1 },
	S("metrics_listen", metrics_listen, "",
	    "address:port where /metrics and /healthz are served over plain "
	    "HTTP to anyone who can connect (for a private network); empty "
	    "for none"),
	I("auth_fail_max", auth_fail_max, 1, 10000, "5",
	    "failed code/password attempts per window before 429"),
	I("auth_fail_window", auth_fail_window, 1, 86400, "300",
	    "window of auth_fail_max, seconds"),
	{ "cache", CT_STR, offsetof(struct conf, cache),
	    sizeof(((struct conf *)0)->cache), 0, 0, "auto",
	    "answer lookups and certificate checks from memory: local (the "
	    "only dird on its database), shared (one of several), off, or "
	    "auto (see dird(8))",
	    "auto|local|shared|off", 0 },
	I("cache_entries", cache_entries, 16, 1 << 22, "16384",
	    "answers the cache holds at most"),
	S("federation_dns", fed_dns, "",
	    "the DNS resolver for other domains' registries, ADDR or "
	    "ADDR@PORT; empty for the system's (resolv.conf)"),
	S("federation_dns_anchor", fed_anchor, "",
	    "DNSSEC trust anchor file (e.g. /usr/share/dns/root.key); DANE "
	    "rules need one"),
	I("federation_timeout", fed_timeout, 1, 60, "5",
	    "seconds a DNS server or another registry has to answer"),
	IL("federation_cache_max", fed_cache_max, 0, 3600, "60",
	    "seconds an answer of another registry is kept at most"),
	IL("federation_negative_ttl", fed_negative_ttl, 1, 3600, "30",
	    "seconds a failure to reach or trust another registry is kept"),
	IL("federation_stale_max", fed_stale_max, 0, 86400, "600",
	    "seconds an answer of another registry may stand in when that "
	    "registry can not be reached now; 0: never"),
	I("federation_rate", fed_rate, 1, 100000, "60",
	    "lookups in other domains one user may cause per minute"),
	I("federation_inbound_rate", fed_inbound_rate, 1, 1000000, "600",
	    "lookups another domain's registry may make here per minute"),
	{ "federation_serve", CT_STR, offsetof(struct conf, fed_serve),
	    sizeof(((struct conf *)0)->fed_serve), 0, 0, "rules",
	    "which other registries may look users up here: rules (those of "
	    "domains with a pinned or dane rule) or off", "rules|off", 1 },
#undef I
#undef IL
#undef S
#undef SL
};

#define NKEYS (sizeof(keys) / sizeof(keys[0]))
_Static_assert(NKEYS <= 64, "struct load_ctx counts at most 64 keys");

struct load_ctx {
	struct conf *c;
	const char *path;
	char *errbuf;
	size_t errlen;
	int failed;
	int listen_from_file;
	int seen[64]; /* how often each key of the table was met */
};

/* Whether value is one of the '|'-separated choices. */
static int
is_choice(const char *choices, const char *value)
{
	size_t n = strlen(value);
	const char *p = choices, *bar;

	for (;;) {
		bar = strchr(p, '|');
		if ((bar ? (size_t)(bar - p) : strlen(p)) == n &&
		    strncmp(p, value, n) == 0)
			return 1;
		if (bar == NULL)
			return 0;
		p = bar + 1;
	}
}

static int
set_key(struct conf *c, const struct conf_key *k, const char *value,
    int append, char *msg, size_t msglen)
{
	char *end;
	long v;

	switch (k->type) {
	case CT_INT:
		errno = 0;
		v = strtol(value, &end, 10);
		if (errno != 0 || end == value || *end != '\0' || v < k->min ||
		    v > k->max) {
			snprintf(msg, msglen, "%s must be an integer from %ld "
			    "to %ld, not '%s'", k->name, k->min, k->max, value);
			return -1;
		}
		*(int *)((char *)c + k->off) = (int)v;
		return 0;
	case CT_STR:
		if (k->choices != NULL && !is_choice(k->choices, value)) {
			snprintf(msg, msglen, "%s must be one of %s, not '%s'",
			    k->name, k->choices, value);
			return -1;
		}
		if (strlen(value) >= k->size) {
			snprintf(msg, msglen, "%s is too long (at most %zu "
			    "bytes)", k->name, k->size - 1);
			return -1;
		}
		memcpy((char *)c + k->off, value, strlen(value) + 1);
		return 0;
	case CT_LISTEN:
		if (!append)
			c->nlisten = 0;
		if (c->nlisten >= CONF_LISTEN_MAX ||
		    strlen(value) >= sizeof(c->listen[0]) || *value == '\0') {
			snprintf(msg, msglen, "listen: at most %d addresses of "
			    "at most %zu bytes", CONF_LISTEN_MAX,
			    sizeof(c->listen[0]) - 1);
			return -1;
		}
		snprintf(c->listen[c->nlisten++], sizeof(c->listen[0]), "%s",
		    value);
		return 0;
	}
	return -1;
}

static const struct conf_key *
find_key(const char *name)
{
	size_t i;

	for (i = 0; i < NKEYS; i++)
		if (strcmp(keys[i].name, name) == 0)
			return &keys[i];
	return NULL;
}

void
conf_defaults(struct conf *c)
{
	char msg[256];
	size_t i;

	memset(c, 0, sizeof(*c));
	for (i = 0; i < NKEYS; i++)
		(void)set_key(c, &keys[i], keys[i].def, 0, msg, sizeof(msg));
}

/*
 * Debian's libinih does not pass line numbers to the handler, so the line
 * of a bad key is found again by reading the file: the nth line that
 * sets `name`.  0 when it can not be found.
 */
static int
find_line(const char *path, const char *name, int nth)
{
	char line[1024];
	FILE *fp;
	int lineno = 0, seen = 0;
	size_t len = strlen(name);

	if ((fp = fopen(path, "r")) == NULL)
		return 0;
	while (fgets(line, sizeof(line), fp) != NULL) {
		const char *p = line;

		lineno++;
		while (*p == ' ' || *p == '\t')
			p++;
		if (strncmp(p, name, len) == 0 &&
		    strchr(" \t=:", p[len]) != NULL && ++seen == nth) {
			fclose(fp);
			return lineno;
		}
	}
	fclose(fp);
	return 0;
}

static int
ini_cb(void *user, const char *section, const char *name, const char *value)
{
	struct load_ctx *ctx = user;
	const struct conf_key *k = NULL;
	char msg[256];
	int append, nth = 1;

	if (ctx->failed)
		return 0;
	if (strcmp(section, "dird") != 0) {
		snprintf(msg, sizeof(msg), "unknown section [%s]", section);
		goto bad;
	}
	if ((k = find_key(name)) == NULL) {
		snprintf(msg, sizeof(msg), "unknown key '%s'", name);
		goto bad;
	}
	nth = ++ctx->seen[k - keys];
	/* The first listen line of the file replaces the default. */
	append = k->type == CT_LISTEN && ctx->listen_from_file;
	if (k->type == CT_LISTEN)
		ctx->listen_from_file = 1;
	if (set_key(ctx->c, k, value, append, msg, sizeof(msg)) == -1)
		goto bad;
	return 1;
bad:
	snprintf(ctx->errbuf, ctx->errlen, "%s:%d: %s", ctx->path,
	    find_line(ctx->path, name, nth), msg);
	ctx->failed = 1;
	return 0;
}

/* Cross-key rules the table can not express. */
static int
conf_check(const struct conf *c, const char *path, char *errbuf, size_t errlen)
{
	if (c->ttl_min > c->ttl_max) {
		snprintf(errbuf, errlen, "%s: ttl_min (%d) is above ttl_max (%d)",
		    path, c->ttl_min, c->ttl_max);
		return -1;
	}
	return 0;
}


/*
 * "# " and the words of a and b, in lines of at most 72 columns: the
 * parser takes lines of INI_MAX_LINE (200) bytes, and cuts a longer
 * comment into a comment and garbage.
 */
static void
comment(FILE *fp, const char *a, const char *b)
{
	char text[1024], *w, *save = NULL;
	int col = 0, n;

	snprintf(text, sizeof(text), "%s%s", a, b);
	fputc('\n', fp);
	for (w = strtok_r(text, " ", &save); w != NULL;
	    w = strtok_r(NULL, " ", &save)) {
		n = (int)strlen(w);
		if (col > 0 && col + 1 + n > 72) {
			fputc('\n', fp);
			col = 0;
		}
		col += fprintf(fp, col == 0 ? "# %s" : " %s", w);
	}
	fputc('\n', fp);
}
/* A dird.conf larger than this is not a configuration file. */
#define CONF_FILE_MAX (1 << 20)

int
conf_load(const char *path, struct conf *c, char *errbuf, size_t errlen)
{
	struct load_ctx ctx = { c, path, errbuf, errlen, 0, 0, { 0 } };
	struct stat st;
	FILE *fp;
	char *text = NULL, *nul;
	size_t n;
	int rc, rv = -1;

	if ((fp = fopen(path, "r")) == NULL) {
		snprintf(errbuf, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	/*
	 * Read it whole and check it before parsing: ini_parse() takes a
	 * read error (a directory, EIO) for the end of the file and a NUL
	 * byte for the end of a line, so an unreadable or zero-filled file
	 * would silently become the defaults.
	 */
	if (fstat(fileno(fp), &st) == -1 || !S_ISREG(st.st_mode) ||
	    st.st_size > CONF_FILE_MAX) {
		snprintf(errbuf, errlen, "%s: not a regular file of at most %d "
		    "bytes", path, CONF_FILE_MAX);
		goto err;
	}
	if ((text = malloc((size_t)st.st_size + 1)) == NULL) {
		snprintf(errbuf, errlen, "%s: out of memory", path);
		goto err;
	}
	n = fread(text, 1, (size_t)st.st_size, fp);
	if (ferror(fp)) {
		snprintf(errbuf, errlen, "%s: %s", path, strerror(errno));
		goto err;
	}
	text[n] = '\0';
	if ((nul = memchr(text, '\0', n)) != NULL) {
		int line = 1;
		const char *q;

		for (q = text; q < nul; q++)
			line += *q == '\n';
		snprintf(errbuf, errlen, "%s:%d: a NUL byte: the file is "
		    "corrupt", path, line);
		goto err;
	}
	rc = ini_parse_string(text, ini_cb, &ctx);
	if (ctx.failed)
		goto err;
	if (rc < 0) {
		snprintf(errbuf, errlen, "%s: out of memory", path);
		goto err;
	}
	if (rc != 0) {
		snprintf(errbuf, errlen, "%s:%d: syntax error", path, rc);
		goto err;
	}
	rv = conf_check(c, path, errbuf, errlen);
err:
	free(text);
	fclose(fp);
	return rv;
}

int
conf_set(struct conf *c, const char *key, const char *value, char *errbuf,
    size_t errlen)
{
	const struct conf_key *k = find_key(key);

	if (k == NULL) {
		snprintf(errbuf, errlen, "unknown setting '%s'", key);
		return -1;
	}
	if (set_key(c, k, value, k->type == CT_LISTEN, errbuf, errlen) == -1)
		return -1;
	return conf_check(c, "flags", errbuf, errlen);
}

int
conf_write(const char *path, const struct conf *c, char *errbuf, size_t errlen)
{
	FILE *fp;
	size_t i;
	int fd, j;

	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	if (fd == -1 || (fp = fdopen(fd, "w")) == NULL) {
		snprintf(errbuf, errlen, "%s: %s", path, strerror(errno));
		if (fd != -1)
			close(fd);
		return -1;
	}
	fprintf(fp, "# dird.conf - written by dirctl init; see dird(8).\n"
		    "[dird]\n");
	for (i = 0; i < NKEYS; i++) {
		const struct conf_key *k = &keys[i];

		comment(fp, k->help,
		    k->live ? " (a running dird takes it on SIGHUP)" : "");
		switch (k->type) {
		case CT_INT:
			fprintf(fp, "%s = %d\n", k->name,
			    *(const int *)((const char *)c + k->off));
			break;
		case CT_STR:
			fprintf(fp, "%s = %s\n", k->name,
			    (const char *)c + k->off);
			break;
		case CT_LISTEN:
			for (j = 0; j < c->nlisten; j++)
				fprintf(fp, "listen = %s\n", c->listen[j]);
			break;
		}
	}
	if (fclose(fp) != 0) {
		snprintf(errbuf, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	return 0;
}

/* Whether k has the same value in a and b. */
static int
same_value(const struct conf_key *k, const struct conf *a,
    const struct conf *b)
{
	int i;

	switch (k->type) {
	case CT_INT:
		return *(const int *)((const char *)a + k->off) ==
		    *(const int *)((const char *)b + k->off);
	case CT_STR:
		return strcmp((const char *)a + k->off,
		    (const char *)b + k->off) == 0;
	case CT_LISTEN:
		if (a->nlisten != b->nlisten)
			return 0;
		for (i = 0; i < a->nlisten; i++)
			if (strcmp(a->listen[i], b->listen[i]) != 0)
				return 0;
		return 1;
	}
	return 0;
}

int
conf_merge_live(struct conf *dst, const struct conf *src,
    void (*fixed)(const char *key, void *arg), void *arg)
{
	size_t i;
	int n = 0;

	for (i = 0; i < NKEYS; i++) {
		const struct conf_key *k = &keys[i];

		if (same_value(k, dst, src))
			continue;
		if (!k->live) {
			if (fixed != NULL)
				fixed(k->name, arg);
			continue;
		}
		/* Live keys are ints and strings, never the listen list. */
		if (k->type == CT_INT)
			*(int *)((char *)dst + k->off) =
			    *(const int *)((const char *)src + k->off);
		else
			memcpy((char *)dst + k->off, (const char *)src + k->off,
			    k->size);
		n++;
	}
	return n;
}

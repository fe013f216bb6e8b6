/*
 * fuzz_keystore.c - the readers of dchat's own files (client/keystore.c):
 * the allow and deny lists, contacts, requests and config.  Another local
 * program or a restored backup may have written them.  The first input
 * byte chooses the file, the rest is written to it in a directory of our
 * own, then the readers (and the writers that read the old file first)
 * run on it.
 *
 * Beyond ASan and UBSan: what is read back ends within its buffer, stays
 * within the KS_* limits, and comes from one whole line of the file, never
 * from a piece of a longer line nor from a value cut to fit.
 */
#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fuzz.h"
#include "keystore.h"

#define TERMINATED(a) FUZZ_CHECK(memchr((a), '\0', sizeof(a)) != NULL)
/* Longer than any line the readers take (strtol skips leading blanks). */
#define KS_LINE_CHECK 2048

static char home[256];
static struct keystore ks;

/* The files the readers and writers use, and the directory. */
static void
cleanup(void)
{
	const char *f[] = { ks.config, ks.contacts, ks.allow, ks.deny,
		ks.requests };
	size_t i;

	for (i = 0; i < sizeof(f) / sizeof(f[0]); i++)
		(void)unlink(f[i]);
	(void)rmdir(home);
}

/*
 * A directory of our own for each input, removed after it: libFuzzer may
 * end without running atexit handlers.  /dev/shm when there is one: the
 * writers fsync, which on a disk would cost more than the parsing.
 */
static int
setup(void)
{
	const char *base = "/tmp";
	struct stat st;
	char err[300];

	if (stat("/dev/shm", &st) == 0 && S_ISDIR(st.st_mode) &&
	    access("/dev/shm", W_OK) == 0)
		base = "/dev/shm";
	if ((size_t)snprintf(home, sizeof(home), "%s/fuzz_keystore.XXXXXX",
	    base) >= sizeof(home) || mkdtemp(home) == NULL)
		return -1;
	if (ks_open(&ks, home, 0, err, sizeof(err)) == -1) {
		(void)rmdir(home);
		return -1;
	}
	return 0;
}

static int
put(const char *path, const uint8_t *data, size_t size)
{
	FILE *f;
	int rv = 0;

	if ((f = fopen(path, "w")) == NULL)
		return -1;
	if (size > 0 && fwrite(data, 1, size, f) != size)
		rv = -1;
	if (fclose(f) != 0)
		rv = -1;
	return rv;
}

/*
 * Line number i of data as the readers see it: up to '\n' (or the end),
 * as a C string (a NUL ends it).  Its start and length in *s, *n; false
 * past the last line.
 */
static bool
raw_line(const uint8_t *data, size_t size, size_t i, const char **s,
    size_t *n)
{
	const uint8_t *p = data, *end = data + size, *nl, *z;
	size_t len;

	for (;;) {
		if (p >= end)
			return false;
		nl = memchr(p, '\n', (size_t)(end - p));
		len = nl ? (size_t)(nl - p) : (size_t)(end - p);
		if (i-- == 0)
			break;
		p += len + 1;
	}
	if ((z = memchr(p, '\0', len)) != NULL)
		len = (size_t)(z - p);
	*s = (const char *)p;
	*n = len;
	return true;
}

/* The same, with blanks around it trimmed as keystore.c's trim() does. */
static bool
line_at(const uint8_t *data, size_t size, size_t i, const char **s,
    size_t *n)
{
	if (!raw_line(data, size, i, s, n))
		return false;
	while (*n > 0 && (**s == ' ' || **s == '\t')) {
		(*s)++;
		(*n)--;
	}
	while (*n > 0 && ((*s)[*n - 1] == ' ' || (*s)[*n - 1] == '\t' ||
	    (*s)[*n - 1] == '\r'))
		(*n)--;
	return true;
}

static bool
eq(const char *s, size_t n, const char *c)
{
	return strlen(c) == n && memcmp(s, c, n) == 0;
}

/* The next field of a contacts line: blank-separated. */
static bool
field(const char **s, size_t *n, const char **f, size_t *fn)
{
	while (*n > 0 && (**s == ' ' || **s == '\t')) {
		(*s)++;
		(*n)--;
	}
	*f = *s;
	while (*n > 0 && **s != ' ' && **s != '\t') {
		(*s)++;
		(*n)--;
	}
	*fn = (size_t)(*s - *f);
	return *fn > 0;
}

static void
check_list(const char *path, const uint8_t *data, size_t size)
{
	static struct ks_list l, again;
	const char *s;
	size_t i, j, n;
	bool found;

	if (ks_list_load(path, &l) == -1)
		return;
	FUZZ_CHECK(l.n <= KS_LIST_MAX);
	for (i = 0; i < l.n; i++) {
		TERMINATED(l.e[i]);
		FUZZ_CHECK(l.e[i][0] != '\0' && l.e[i][0] != '#');
		FUZZ_CHECK(strpbrk(l.e[i], " \t\r\n") == NULL);
		for (j = 0; j < i; j++)
			FUZZ_CHECK(strcmp(l.e[i], l.e[j]) != 0);
		/* An entry is a line of the file, all of it. */
		found = false;
		for (j = 0; !found && line_at(data, size, j, &s, &n); j++)
			found = eq(s, n, l.e[i]);
		FUZZ_CHECK(found);
	}
	(void)ks_list_match(&l, "alice@example.org");
	(void)ks_list_match(&l, l.n ? l.e[0] : "");
	/* What is saved reads back the same. */
	if (ks_list_save(path, &l) == 0 && ks_list_load(path, &again) == 0) {
		FUZZ_CHECK(again.n == l.n);
		for (i = 0; i < l.n; i++)
			FUZZ_CHECK(strcmp(again.e[i], l.e[i]) == 0);
	}
}

/* A contact read back is one line of the file: its four fields. */
static void
check_contact(const struct ks_contact *c, const char *userid,
    const uint8_t *data, size_t size)
{
	const char *s, *f[4];
	size_t i, n, fn[4];
	bool found = false;
	char port[KS_LINE_CHECK];

	TERMINATED(c->userid);
	TERMINATED(c->ip);
	TERMINATED(c->fingerprint);
	FUZZ_CHECK(strcasecmp(c->userid, userid) == 0);
	FUZZ_CHECK(c->port >= 1 && c->port <= 65535);
	for (i = 0; !found && raw_line(data, size, i, &s, &n); i++) {
		if (!field(&s, &n, &f[0], &fn[0]) ||
		    !field(&s, &n, &f[1], &fn[1]) ||
		    !field(&s, &n, &f[2], &fn[2]) ||
		    !field(&s, &n, &f[3], &fn[3]) || fn[2] >= sizeof(port))
			continue;
		memcpy(port, f[2], fn[2]);
		port[fn[2]] = '\0';
		found = eq(f[0], fn[0], c->userid) && eq(f[1], fn[1], c->ip) &&
		    strtol(port, NULL, 10) == c->port &&
		    eq(f[3], fn[3], c->fingerprint);
	}
	FUZZ_CHECK(found);
}

static void
check_contacts(const uint8_t *data, size_t size)
{
	struct ks_contact c, set = { .userid = "bob@example.org",
		.ip = "2001:db8::1", .port = 4605,
		.fingerprint = "0123456789abcdef0123456789abcdef"
		    "0123456789abcdef0123456789abcdef" };
	char first[300];
	const char *s, *f;
	size_t n, fn;

	/* Ask for the user the first line names, and for a fixed one. */
	if (raw_line(data, size, 0, &s, &n) && field(&s, &n, &f, &fn) &&
	    fn < sizeof(first)) {
		memcpy(first, f, fn);
		first[fn] = '\0';
		if (ks_contact_get(&ks, first, &c) == 0)
			check_contact(&c, first, data, size);
	}
	if (ks_contact_get(&ks, "alice@example.org", &c) == 0)
		check_contact(&c, "alice@example.org", data, size);
	/* A new address replaces the old one, whatever else the file holds. */
	if (ks_contact_set(&ks, &set) == 0) {
		FUZZ_CHECK(ks_contact_get(&ks, set.userid, &c) == 0);
		FUZZ_CHECK(strcmp(c.ip, set.ip) == 0 && c.port == set.port &&
		    strcmp(c.fingerprint, set.fingerprint) == 0);
	}
}

static void
check_requests(const uint8_t *data, size_t size)
{
	static const char who[] = "carol@example.org\t";
	unsigned char *buf;
	size_t len, i, n, mine = 0;
	const char *s, *last = NULL;

	if (ks_request_add(&ks, "carol@example.org", "Carol\tC.",
	    "let me in\n") == -1)
		return;
	FUZZ_CHECK(ks_read_file(ks.requests, KS_FILE_MAX, &buf, &len) == 0);
	FUZZ_CHECK(buf[len] == '\0');
	/* The old file plus one request of at most 1024 bytes. */
	FUZZ_CHECK(len <= size + 1 + 1024);
	/* One request per caller, the newest last, on one line. */
	for (i = 0; raw_line(buf, len, i, &s, &n); i++) {
		if (n >= sizeof(who) - 1 &&
		    memcmp(s, who, sizeof(who) - 1) == 0) {
			mine++;
			last = s;
		}
	}
	FUZZ_CHECK(mine == 1 && last != NULL);
	FUZZ_CHECK(strcmp(last, "carol@example.org\tCarol C.\tlet me in \n") ==
	    0);
	free(buf);
}

static void
check_config(const uint8_t *data, size_t size)
{
	struct keystore k;
	const char *s, *eqs, *v, *key;
	char err[300];
	size_t i, n, kn, vn;
	bool server = false, userid = false;

	FUZZ_CHECK(ks_open(&k, home, 0, err, sizeof(err)) == 0);
	TERMINATED(k.server);
	TERMINATED(k.userid);
	/* Each value is the whole value of a line naming its key. */
	for (i = 0; line_at(data, size, i, &s, &n); i++) {
		if ((eqs = memchr(s, '=', n)) == NULL)
			continue;
		key = s;
		kn = (size_t)(eqs - s);
		while (kn > 0 && (key[kn - 1] == ' ' || key[kn - 1] == '\t' ||
		    key[kn - 1] == '\r'))
			kn--;
		v = eqs + 1;
		vn = n - (size_t)(v - s);
		while (vn > 0 && (*v == ' ' || *v == '\t')) {
			v++;
			vn--;
		}
		if (eq(key, kn, "server") && eq(v, vn, k.server))
			server = true;
		if (eq(key, kn, "userid") && eq(v, vn, k.userid))
			userid = true;
	}
	FUZZ_CHECK(k.server[0] == '\0' || server);
	FUZZ_CHECK(k.userid[0] == '\0' || userid);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *path;
	int which;

	if (size == 0 || setup() == -1)
		return 0;
	which = data[0] % 5;
	data++;
	size--;
	path = which == 0 ? ks.allow : which == 1 ? ks.deny :
	    which == 2 ? ks.contacts : which == 3 ? ks.requests : ks.config;
	if (put(path, data, size) == -1) {
		cleanup();
		return 0;
	}
	switch (which) {
	case 0:
	case 1:
		check_list(path, data, size);
		break;
	case 2:
		check_contacts(data, size);
		break;
	case 3:
		check_requests(data, size);
		break;
	default:
		check_config(data, size);
		break;
	}
	cleanup();
	return 0;
}

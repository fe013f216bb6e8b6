/*
 * test_client.c - dchat's pure parts: address parsing and the Happy
 * Eyeballs order (dial.c), allow / deny list matching and the contacts
 * file, key and certificate replaced as one (keystore.c), when the
 * certificate is renewed and its end announced (expiry.c),
 * how text from others is shown on a terminal (vis.c), which unfinished
 * handshake makes way for a new caller (admit.c).
 * Table-driven, TAP output.
 *
 * Runs in a scratch working directory (the suite gives it one): the key
 * store test writes there.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/socket.h>
#include <unistd.h>

#include "admit.h"
#include "dial.h"
#include "event.h"
#include "expiry.h"
#include "keystore.h"
#include "tap.h"
#include "vis.h"

struct hp_case {
	const char *in;
	int ok;
	const char *ip; /* expected when ok */
	int port;
	int family;
};

static const struct hp_case hp_cases[] = {
	{ "127.0.0.1:4605", 1, "127.0.0.1", 4605, AF_INET },
	{ "[2001:db8::5]:4605", 1, "2001:db8::5", 4605, AF_INET6 },
	{ "[::]:1", 1, "::", 1, AF_INET6 },
	{ "10.0.0.1:65535", 1, "10.0.0.1", 65535, AF_INET },
	{ "10.0.0.1:0", 0, NULL, 0, 0 },
	{ "10.0.0.1:65536", 0, NULL, 0, 0 },
	{ "10.0.0.1:", 0, NULL, 0, 0 },
	{ "10.0.0.1:12x", 0, NULL, 0, 0 },
	{ "10.0.0.1", 0, NULL, 0, 0 },
	{ "2001:db8::5:4605", 0, NULL, 0, 0 }, /* v6 needs brackets */
	{ "[2001:db8::5]4605", 0, NULL, 0, 0 },
	{ "[2001:db8::5:4605", 0, NULL, 0, 0 },
	{ "example.org:4605", 0, NULL, 0, 0 }, /* literals only */
	{ ":4605", 0, NULL, 0, 0 },
	{ "", 0, NULL, 0, 0 },
	{ "999.1.1.1:4605", 0, NULL, 0, 0 },
};

static void
test_hostport(void)
{
	struct dial_addr a;
	char name[128];
	size_t i;
	int r, ok;

	for (i = 0; i < sizeof(hp_cases) / sizeof(hp_cases[0]); i++) {
		const struct hp_case *c = &hp_cases[i];

		memset(&a, 0, sizeof(a));
		r = dial_hostport_parse(c->in, &a);
		ok = c->ok ? r == 0 && strcmp(a.ip, c->ip) == 0 &&
		    a.port == c->port && a.ss.ss_family == c->family :
		    r == -1;
		snprintf(name, sizeof(name), "hostport '%s' %s", c->in,
		    c->ok ? "parses" : "is refused");
		check(ok, name);
	}
}

struct sort_case {
	const char *name;
	const char *in[8];  /* "ip port" */
	const char *out[8]; /* expected order */
};

static const struct sort_case sort_cases[] = {
	{ "IPv6 first, then the families alternate",
	    { "192.0.2.1 1", "192.0.2.2 1", "2001:db8::1 1", "2001:db8::2 1",
		"2001:db8::3 1" },
	    { "2001:db8::1 1", "192.0.2.1 1", "2001:db8::2 1", "192.0.2.2 1",
		"2001:db8::3 1" } },
	{ "duplicates dropped, first kept",
	    { "2001:db8::1 7", "192.0.2.1 7", "2001:db8::1 7", "192.0.2.1 7" },
	    { "2001:db8::1 7", "192.0.2.1 7" } },
	{ "same address, other port, is another address",
	    { "192.0.2.1 1", "192.0.2.1 2" },
	    { "192.0.2.1 1", "192.0.2.1 2" } },
	{ "only IPv4: order kept",
	    { "192.0.2.3 1", "192.0.2.1 1", "192.0.2.2 1" },
	    { "192.0.2.3 1", "192.0.2.1 1", "192.0.2.2 1" } },
	{ "more IPv4 than IPv6",
	    { "192.0.2.1 1", "192.0.2.2 1", "192.0.2.3 1", "2001:db8::1 1" },
	    { "2001:db8::1 1", "192.0.2.1 1", "192.0.2.2 1", "192.0.2.3 1" } },
};

static void
test_sort(void)
{
	struct dial_addr a[8];
	char ip[64];
	size_t i, k, m, want;
	int port, ok;

	for (i = 0; i < sizeof(sort_cases) / sizeof(sort_cases[0]); i++) {
		const struct sort_case *c = &sort_cases[i];

		ok = 1;
		for (k = 0; c->in[k]; k++)
			if (sscanf(c->in[k], "%63s %d", ip, &port) != 2 ||
			    dial_addr_parse(ip, port, &a[k]) == -1)
				ok = 0;
		m = dial_sort(a, k);
		for (want = 0; c->out[want]; want++)
			;
		ok = ok && m == want;
		for (k = 0; ok && k < m; k++)
			ok = strcmp(a[k].text, c->out[k]) == 0;
		check(ok, c->name);
	}
}

struct match_case {
	const char *entries[4];
	const char *userid;
	int want;
};

static const struct match_case match_cases[] = {
	{ { "alice@example.org" }, "alice@example.org", 1 },
	{ { "alice@example.org" }, "ALICE@Example.ORG", 1 },
	{ { "alice@example.org" }, "alice@example.org.evil", 0 },
	{ { "alice@example.org" }, "malice@example.org", 0 },
	{ { "@example.org" }, "bob@example.org", 1 },
	{ { "@example.org" }, "bob@sub.example.org", 0 },
	{ { "@example.org" }, "bob@notexample.org", 0 },
	{ { "*" }, "anyone@anywhere.example", 1 },
	{ { "" }, "bob@example.org", 0 },
	{ { "carol@example.org", "@example.net" }, "dan@example.net", 1 },
	{ { "carol@example.org", "@example.net" }, "dan@example.com", 0 },
};

static void
test_match(void)
{
	struct ks_list l;
	char name[160];
	size_t i, k;

	for (i = 0; i < sizeof(match_cases) / sizeof(match_cases[0]); i++) {
		const struct match_case *c = &match_cases[i];

		memset(&l, 0, sizeof(l));
		for (k = 0; c->entries[k]; k++)
			if (*c->entries[k])
				(void)ks_list_add(&l, c->entries[k]);
		snprintf(name, sizeof(name), "list [%s%s%s] %s %s",
		    c->entries[0], c->entries[1] ? " " : "",
		    c->entries[1] ? c->entries[1] : "",
		    c->want ? "matches" : "does not match", c->userid);
		check(ks_list_match(&l, c->userid) == c->want, name);
	}
}

static void
test_list_limits(void)
{
	static struct ks_list l;
	char e[KS_ENTRY_MAX + 8];
	size_t i;
	int ok = 1;

	memset(&l, 0, sizeof(l));
	check(ks_list_add(&l, "has space@example.org") == -1,
	    "an entry with white space is refused");
	memset(e, 'a', KS_ENTRY_MAX);
	e[KS_ENTRY_MAX] = '\0';
	check(ks_list_add(&l, e) == -1, "an over-long entry is refused");
	for (i = 0; i < KS_LIST_MAX && ok; i++) {
		snprintf(e, sizeof(e), "u%zu@example.org", i);
		ok = ks_list_add(&l, e) == 0;
	}
	check(ok && l.n == KS_LIST_MAX, "a list takes KS_LIST_MAX entries");
	check(ks_list_add(&l, "one.more@example.org") == -1,
	    "a full list refuses one more");
	check(ks_list_add(&l, "u3@example.org") == 0 && l.n == KS_LIST_MAX,
	    "adding a present entry is a no-op");
	check(ks_list_remove(&l, "u0@example.org") == 0 &&
	    l.n == KS_LIST_MAX - 1 && !ks_list_match(&l, "u0@example.org") &&
	    ks_list_match(&l, "u1@example.org"),
	    "remove takes exactly that entry");
	check(ks_list_remove(&l, "nobody@example.org") == -1,
	    "removing an absent entry fails");
}

/* A contact request's note is kept whole, as long as PeerTLS allows. */
static void
test_requests(const struct keystore *ks)
{
	char note[KS_NOTE_MAX + 1], want[KS_NOTE_MAX + 600];
	unsigned char *buf = NULL;
	size_t i, len = 0;

	/* 500 two-byte characters: 1000 bytes, cut nowhere. */
	for (i = 0; i < KS_NOTE_MAX; i += 2)
		memcpy(note + i, "\xc3\xa9", 2);
	note[KS_NOTE_MAX] = '\0';
	snprintf(want, sizeof(want), "carol@example.org\tCarol\t%s\n"
	    "alice@example.org\tAlice\t%s\n", "hi", note);
	check(ks_request_add(ks, "alice@example.org", "Alice", "short") == 0 &&
	    ks_request_add(ks, "carol@example.org", "Carol", "hi") == 0 &&
	    ks_request_add(ks, "alice@example.org", "Alice", note) == 0 &&
	    ks_read_file(ks->requests, KS_FILE_MAX, &buf, &len) == 0 &&
	    len == strlen(want) && memcmp(buf, want, len) == 0,
	    "a 1000-byte note is kept whole, and replaces the caller's "
	    "older request");
	free(buf);
}

static void
test_store(void)
{
	struct ks_contact c = { 0 }, got;
	struct ks_list l = { 0 }, back;
	struct keystore ks;
	struct stat st;
	char err[256];

	if (ks_open(&ks, "home", 1, err, sizeof(err)) == -1) {
		check(0, err);
		return;
	}
	check(stat("home", &st) == 0 && (st.st_mode & 0777) == 0700,
	    "the home directory is made 0700");
	snprintf(c.userid, sizeof(c.userid), "bob@example.org");
	snprintf(c.ip, sizeof(c.ip), "2001:db8::5");
	c.port = 4605;
	memset(c.fingerprint, 'a', 64);
	check(ks_contact_set(&ks, &c) == 0 &&
	    ks_contact_get(&ks, "bob@example.org", &got) == 0 &&
	    strcmp(got.ip, c.ip) == 0 && got.port == 4605 &&
	    strcmp(got.fingerprint, c.fingerprint) == 0,
	    "a contact round-trips through the contacts file");
	c.port = 4606;
	check(ks_contact_set(&ks, &c) == 0 &&
	    ks_contact_get(&ks, "bob@example.org", &got) == 0 &&
	    got.port == 4606, "a newer address replaces the old one");
	check(ks_contact_get(&ks, "carol@example.org", &got) == -1,
	    "an unknown contact is not found");
	(void)ks_list_add(&l, "@example.org");
	(void)ks_list_add(&l, "carol@example.net");
	check(ks_list_save(ks.allow, &l) == 0 &&
	    ks_list_load(ks.allow, &back) == 0 && back.n == 2 &&
	    strcmp(back.e[1], "carol@example.net") == 0,
	    "a list round-trips through its file");
	check(ks_list_load("home/no-such-list", &back) == 0 && back.n == 0,
	    "a missing list file is an empty list");
	test_requests(&ks);
}

/* The files of a key store as one string, "name=content;" each. */
static void
store_files(const struct keystore *ks, char *out, size_t len)
{
	const char *names[] = { ks->key, ks->cert, NULL };
	char pend[KS_PATH_MAX + 8];
	unsigned char *buf;
	size_t i, n, off = 0;
	int k;

	out[0] = '\0';
	for (i = 0; names[i]; i++) {
		for (k = 0; k < 2; k++) {
			snprintf(pend, sizeof(pend), "%s%s", names[i],
			    k ? ".new" : "");
			if (ks_read_file(pend, KS_FILE_MAX, &buf, &n) == -1)
				continue;
			off += (size_t)snprintf(out + off, len - off, "%s=%s;",
			    strrchr(pend, '/') + 1, buf);
			free(buf);
		}
	}
}

/*
 * Key and certificate replaced as one, and what the next ks_open makes
 * of a switch that a crash stopped at each step.
 */
static void
test_store_identity(void)
{
	struct ks_stamp before, after;
	struct keystore ks;
	struct stat st;
	char err[256], files[256];
	int opened;

	if (ks_open(&ks, "idhome", 1, err, sizeof(err)) == -1) {
		check(0, err);
		return;
	}
	ks_identity_stamp(&ks, &before);
	check(ks_store_identity(&ks, "K1", 2, "C1", 2, err, sizeof(err)) == 0,
	    "a first key and certificate are stored");
	store_files(&ks, files, sizeof(files));
	checkf(strcmp(files, "key.pem=K1;cert.pem=C1;") == 0, "both are in "
	    "place, nothing pending: %s", files);
	check(stat(ks.key, &st) == 0 && (st.st_mode & 0777) == 0600 &&
	    stat(ks.cert, &st) == 0 && (st.st_mode & 0777) == 0644,
	    "the key is 0600, the certificate 0644");
	ks_identity_stamp(&ks, &after);
	check(ks_stamp_changed(&before, &after), "the stamp sees new files");
	before = after;
	ks_identity_stamp(&ks, &after);
	check(!ks_stamp_changed(&before, &after), "and nothing else");
	check(ks_store_identity(&ks, "K2", 2, "C2", 2, err, sizeof(err)) == 0,
	    "a renewal replaces them");
	ks_identity_stamp(&ks, &after);
	store_files(&ks, files, sizeof(files));
	checkf(strcmp(files, "key.pem=K2;cert.pem=C2;") == 0 &&
	    ks_stamp_changed(&before, &after), "the new pair: %s", files);

	/* Crashed after writing the new key only: the old pair stays. */
	check(ks_write_file("idhome/key.pem.new", "K3", 2, 0600) == 0,
	    "a crash after the new key was written");
	opened = ks_open(&ks, "idhome", 0, err, sizeof(err)) == 0;
	store_files(&ks, files, sizeof(files));
	checkf(opened && strcmp(files, "key.pem=K2;cert.pem=C2;") == 0,
	    "... leaves the old pair: %s", files);
	/* Both new files written: the switch is finished. */
	check(ks_write_file("idhome/key.pem.new", "K4", 2, 0600) == 0 &&
	    ks_write_file("idhome/cert.pem.new", "C4", 2, 0644) == 0,
	    "a crash after both new files were written");
	opened = ks_open(&ks, "idhome", 0, err, sizeof(err)) == 0;
	store_files(&ks, files, sizeof(files));
	checkf(opened && strcmp(files, "key.pem=K4;cert.pem=C4;") == 0,
	    "... is finished: %s", files);
	/* The key went in already: the certificate follows. */
	check(ks_write_file("idhome/key.pem", "K5", 2, 0600) == 0 &&
	    ks_write_file("idhome/cert.pem.new", "C5", 2, 0644) == 0,
	    "a crash after the new key was renamed in");
	opened = ks_open(&ks, "idhome", 0, err, sizeof(err)) == 0;
	store_files(&ks, files, sizeof(files));
	checkf(opened && strcmp(files, "key.pem=K5;cert.pem=C5;") == 0,
	    "... is finished: %s", files);

	/* A key that can not be written leaves the old pair alone. */
	check(mkdir("idhome/key.pem.new", 0700) == 0 ||
	    access("idhome/key.pem.new", F_OK) == 0, "key.pem.new blocked");
	check(ks_store_identity(&ks, "K6", 2, "C6", 2, err, sizeof(err)) ==
	    -1 && strstr(err, "the previous key and certificate stay"),
	    "a renewal that can not write says so");
	(void)rmdir("idhome/key.pem.new");
	store_files(&ks, files, sizeof(files));
	checkf(strcmp(files, "key.pem=K5;cert.pem=C5;") == 0,
	    "... and changes nothing: %s", files);
}

#define DAY 86400
#define END 2000000000L	/* a certificate's notAfter */
#define WEEK_START (END - 7 * DAY) /* a week-long certificate's notBefore */
#define WEEK_RENEW (WEEK_START + 7 * DAY / 3 * 2)
#define YEAR_RENEW (END - 365 * DAY + 365 * DAY / 3 * 2)

static void
test_renew_schedule(void)
{
	time_t w;
	int i, ok;

	check(renew_due(WEEK_START, END) == WEEK_RENEW &&
	    END - WEEK_RENEW > 2 * DAY,
	    "a week-long certificate is renewed with over 2 days to spare");
	check(renew_due(END - 365 * DAY, END) == YEAR_RENEW &&
	    END - YEAR_RENEW > 121 * DAY,
	    "a year-long one four months before its end");
	check(renew_due(END, END - 1) == END,
	    "one that ends before it begins: at once");
	check(renew_backoff(1, 0) == 60 && renew_backoff(1, 15) == 45 &&
	    renew_backoff(1, 16) == 60,
	    "the first retry: after 45 to 60 s");
	check(renew_backoff(2, 0) == 120 && renew_backoff(3, 0) == 240 &&
	    renew_backoff(6, 0) == 1920 && renew_backoff(7, 0) == 3600,
	    "each retry waits twice as long, up to an hour");
	ok = 1;
	for (i = 1; i < 200; i++) {
		w = renew_backoff(i, (uint32_t)i * 2654435761u);
		ok = ok && w >= RENEW_RETRY_MIN * 3 / 4 &&
		    w <= RENEW_RETRY_MAX && (i > 1 ||
		    w <= RENEW_RETRY_MIN);
	}
	check(ok && renew_backoff(1000, 0xffffffffu) >= 2700,
	    "never sooner than 45 s, never later than an hour");
}

static const struct {
	const char *what;
	time_t now, renew_at, not_after;
	int due;
	time_t next;
} expiry_cases[] = {
	{ "unknown end: never", END, 0, 0, 0, EXPIRY_NEVER },
	{ "30 days left: quiet until 14 are", END - 30 * DAY,
	    END - 100 * DAY, END, 0, END - EXPIRY_WARN_SECS },
	{ "the last 14 days begin: warn", END - EXPIRY_WARN_SECS,
	    END - 100 * DAY, END, 1, END - EXPIRY_WARN_SECS + DAY },
	{ "3 days left: warn, again in a day", END - 3 * DAY,
	    END - 100 * DAY, END, 1, END - 2 * DAY },
	{ "an hour left: warn, again when it ends", END - 3600,
	    END - 100 * DAY, END, 1, END },
	{ "ended: warn, again in a day", END, END - 100 * DAY, END, 1,
	    END + DAY },
	{ "ended long ago: still daily", END + 40 * DAY, END - 100 * DAY, END,
	    1, END + 41 * DAY },
	{ "a week-long one before its renewal: quiet until then",
	    WEEK_START + DAY, WEEK_RENEW, END, 0, WEEK_RENEW },
	{ "... not renewed when due: warn", WEEK_RENEW, WEEK_RENEW, END, 1,
	    WEEK_RENEW + DAY },
};

static void
test_expiry(void)
{
	char what[128];
	size_t i;
	time_t next;
	int due;

	for (i = 0; i < sizeof(expiry_cases) / sizeof(expiry_cases[0]); i++) {
		next = 0;
		due = expiry_due(expiry_cases[i].now,
		    expiry_cases[i].renew_at, expiry_cases[i].not_after,
		    &next);
		snprintf(what, sizeof(what), "expiry: %s",
		    expiry_cases[i].what);
		check(due == expiry_cases[i].due &&
		    next == expiry_cases[i].next, what);
	}
}

/* Text a peer or the registry sent -> what the terminal shows. */
static const struct {
	const char *what, *in, *out;
} vis_cases[] = {
	{ "plain text", "hello Bob", "hello Bob" },
	{ "empty", "", "" },
	{ "UTF-8 letters and a snowman", "gr\xc3\xbc\xc3\x9f \xe2\x98\x83",
	    "gr\xc3\xbc\xc3\x9f \xe2\x98\x83" },
	{ "a 4-byte character", "\xf0\x9f\x98\x80", "\xf0\x9f\x98\x80" },
	{ "a backslash stays", "C:\\temp\\x1b", "C:\\temp\\x1b" },
	{ "ESC [2J clears no screen", "\x1b[2Jhi", "\\x1b[2Jhi" },
	{ "a faked line", "hi\r\n[2] connected to Mallory",
	    "hi\\r\\n[2] connected to Mallory" },
	{ "tab", "a\tb", "a\\tb" },
	{ "other C0: NUL-free BEL, BS, VT, FF", "\x07\x08\x0b\x0c",
	    "\\x07\\x08\\x0b\\x0c" },
	{ "C0 at both ends", "\x01x\x1f", "\\x01x\\x1f" },
	{ "DEL", "a\x7f", "a\\x7f" },
	{ "C1 CSI (U+009B) and NEL (U+0085)", "\xc2\x9b" "2J\xc2\x85",
	    "\\u009b2J\\u0085" },
	{ "C1 bounds: U+0080 and U+009F shown, U+00A0 kept",
	    "\xc2\x80\xc2\x9f\xc2\xa0", "\\u0080\\u009f\xc2\xa0" },
	{ "bidi override RLO (U+202E)", "abc\xe2\x80\xaetxt.exe",
	    "abc\\u202etxt.exe" },
	{ "bidi embeddings U+202A..U+202D", "\xe2\x80\xaa\xe2\x80\xab"
	    "\xe2\x80\xac\xe2\x80\xad", "\\u202a\\u202b\\u202c\\u202d" },
	{ "bidi isolates U+2066..U+2069", "\xe2\x81\xa6\xe2\x81\xa7"
	    "\xe2\x81\xa8\xe2\x81\xa9", "\\u2066\\u2067\\u2068\\u2069" },
	{ "neighbours of the bidi ranges are kept (U+2029, U+202F, U+2065)",
	    "\xe2\x80\xa9\xe2\x80\xaf\xe2\x81\xa5",
	    "\xe2\x80\xa9\xe2\x80\xaf\xe2\x81\xa5" },
	{ "a stray continuation byte", "a\x80z", "a\\x80z" },
	{ "a lone lead byte at the end", "ab\xc3", "ab\\xc3" },
	{ "a truncated 3-byte sequence", "\xe2\x98z", "\\xe2\\x98z" },
	{ "overlong ESC (C0 9B) is not UTF-8", "\xc0\x9b", "\\xc0\\x9b" },
	{ "overlong 3-byte slash", "\xe0\x80\xaf", "\\xe0\\x80\\xaf" },
	{ "a surrogate (U+D800)", "\xed\xa0\x80", "\\xed\\xa0\\x80" },
	{ "above U+10FFFF", "\xf4\x90\x80\x80", "\\xf4\\x90\\x80\\x80" },
	{ "0xFF", "\xff", "\\xff" },
};

static void
test_vis(void)
{
	char out[256], what[160], small[8];
	size_t i, n;

	for (i = 0; i < sizeof(vis_cases) / sizeof(vis_cases[0]); i++) {
		n = vis_str(out, sizeof(out), vis_cases[i].in);
		snprintf(what, sizeof(what), "vis: %s", vis_cases[i].what);
		check(strcmp(out, vis_cases[i].out) == 0 &&
		    n == strlen(vis_cases[i].out), what);
		check(vis_str(NULL, 0, vis_cases[i].in) == n,
		    "vis: the length alone is the same");
	}
	/* Too short: cut before an escape, never inside one. */
	n = vis_str(small, sizeof(small), "abcd\x1b[2J");
	check(n == strlen("abcd\\x1b[2J") && strcmp(small, "abcd") == 0,
	    "vis: a short buffer ends before an escape, not inside it");
	n = vis_str(small, sizeof(small), "ab\xe2\x98\x83\xe2\x98\x83");
	check(strcmp(small, "ab\xe2\x98\x83") == 0,
	    "vis: a short buffer does not split a character");
	check(vis_str(small, 1, "x") == 1 && small[0] == '\0',
	    "vis: room for the NUL only");
}

/* The source key of an address literal (via dial_addr_parse). */
static void
key_of(const char *ip, unsigned char key[ADMIT_KEY_LEN])
{
	struct dial_addr a;

	memset(key, 0xee, ADMIT_KEY_LEN);
	if (dial_addr_parse(ip, 4605, &a) == 0)
		admit_key((const struct sockaddr *)&a.ss, key);
}

static const struct {
	const char *a, *b;
	int same;
} key_cases[] = {
	{ "192.0.2.1", "192.0.2.1", 1 },
	{ "192.0.2.1", "192.0.2.2", 0 },	/* IPv4: per address */
	{ "192.0.2.1", "::ffff:192.0.2.1", 1 }, /* mapped is IPv4 */
	{ "::ffff:192.0.2.1", "::ffff:192.0.2.2", 0 },
	{ "2001:db8:1:2::1", "2001:db8:1:2:ffff:ffff:ffff:ffff", 1 },
	{ "2001:db8:1:2::1", "2001:db8:1:3::1", 0 }, /* another /64 */
	{ "2001:db8::1", "2001:db9::1", 0 },
	{ "::ffff:0:0", "::", 0 }, /* mapped 0.0.0.0 is not ::/64 */
	{ "0.0.0.0", "::", 0 },
};

static void
test_admit_key(void)
{
	unsigned char ka[ADMIT_KEY_LEN], kb[ADMIT_KEY_LEN];
	char what[160];
	size_t i;

	for (i = 0; i < sizeof(key_cases) / sizeof(key_cases[0]); i++) {
		key_of(key_cases[i].a, ka);
		key_of(key_cases[i].b, kb);
		snprintf(what, sizeof(what), "admit: %s and %s are %s",
		    key_cases[i].a, key_cases[i].b, key_cases[i].same ?
		    "one source" : "two sources");
		check(ka[0] != 0xee && kb[0] != 0xee &&
		    (memcmp(ka, kb, ADMIT_KEY_LEN) == 0) == key_cases[i].same,
		    what);
	}
}

/*
 * Pending connections as a string of source letters, oldest first, and
 * a newcomer: which one makes way.
 */
static const struct {
	const char *what, *pending;
	char newcomer;
	size_t nlive, max;
	int want;
} pick_cases[] = {
	{ "room: nothing goes", "aab", 'c', 3, 256, ADMIT_NONE },
	{ "nothing pending, room", "", 'a', 0, 256, ADMIT_NONE },
	{ "a source below its limit keeps all", "aaaaaaab", 'a', 8, 256,
	    ADMIT_NONE },
	{ "a source at its limit loses its oldest", "baaaaaaaa", 'a', 9, 256,
	    1 },
	{ "another source is not touched by that", "aaaaaaaab", 'b', 9, 256,
	    ADMIT_NONE },
	{ "all slots taken by finished handshakes: refuse", "", 'a', 256, 256,
	    ADMIT_REFUSE },
	{ "all slots taken, one pending: it goes", "b", 'a', 256, 256, 0 },
	{ "all slots taken: the oldest pending goes", "cba", 'a', 256, 256,
	    0 },
};

static void
test_admit_pick(void)
{
	unsigned char keys[ADMIT_PENDING_MAX + 1][ADMIT_KEY_LEN];
	unsigned char nk[ADMIT_KEY_LEN];
	char what[160];
	size_t i, j, n;
	int got;

	for (i = 0; i < sizeof(pick_cases) / sizeof(pick_cases[0]); i++) {
		memset(keys, 0, sizeof(keys));
		n = strlen(pick_cases[i].pending);
		for (j = 0; j < n; j++)
			keys[j][1] = (unsigned char)pick_cases[i].pending[j];
		memset(nk, 0, sizeof(nk));
		nk[1] = (unsigned char)pick_cases[i].newcomer;
		got = admit_pick((const unsigned char (*)[ADMIT_KEY_LEN])keys,
		    n, nk, pick_cases[i].nlive, pick_cases[i].max);
		snprintf(what, sizeof(what), "admit: %s", pick_cases[i].what);
		check(got == pick_cases[i].want, what);
	}
	/* ADMIT_PENDING_MAX pending from as many sources: the oldest of all
	 * goes for a newcomer from yet another one. */
	memset(keys, 0, sizeof(keys));
	for (j = 0; j < ADMIT_PENDING_MAX; j++) {
		keys[j][1] = (unsigned char)(j & 0xff);
		keys[j][2] = (unsigned char)(j >> 8);
	}
	memset(nk, 0xff, sizeof(nk));
	check(admit_pick((const unsigned char (*)[ADMIT_KEY_LEN])keys,
	    ADMIT_PENDING_MAX - 1, nk, ADMIT_PENDING_MAX - 1, 256) ==
	    ADMIT_NONE, "admit: one below the total limit: nothing goes");
	check(admit_pick((const unsigned char (*)[ADMIT_KEY_LEN])keys,
	    ADMIT_PENDING_MAX, nk, ADMIT_PENDING_MAX + 10, 256) == 0,
	    "admit: at the total limit the oldest of all goes");
	/* ... but a source at its own limit loses its own oldest first. */
	for (j = 10; j < 10 + ADMIT_PER_SOURCE; j++)
		memcpy(keys[j], nk, ADMIT_KEY_LEN);
	check(admit_pick((const unsigned char (*)[ADMIT_KEY_LEN])keys,
	    ADMIT_PENDING_MAX, nk, ADMIT_PENDING_MAX, 256) == 10,
	    "admit: at both limits the source's own oldest goes");
}

/* The home's config file: known keys fill their fields, others are
 * ignored, and a value too long for its field is left out. */
static void
test_config(void)
{
	struct keystore ks;
	char err[256], big[1200];
	FILE *f;

	if (ks_open(&ks, "cfghome", 1, err, sizeof(err)) == -1 ||
	    (f = fopen(ks.config, "w")) == NULL) {
		check(0, "cfghome: cannot write the config");
		return;
	}
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	fprintf(f, "server = https://dir.example.org:4604\n"
	    "colour=blue\nuserid=alice@example.org\nuserid=%.300s\n", big);
	fclose(f);
	check(ks_open(&ks, "cfghome", 0, err, sizeof(err)) == 0 &&
	    strcmp(ks.server, "https://dir.example.org:4604") == 0,
	    "config: server is read, blanks around it trimmed");
	check(strcmp(ks.userid, "alice@example.org") == 0,
	    "config: a value too long for its field is left out, not cut");
}

static json_t *
pack_event(enum ev_kind kind, const char *fmt, ...)
{
	va_list ap;
	json_t *ev;

	va_start(ap, fmt);
	ev = ev_vpack(kind, fmt, ap);
	va_end(ap);
	return ev;
}

/* Every kind of event has a name of its own; "event" comes first. */
static void
test_events(void)
{
	const char *a, *b;
	json_t *ev;
	char *txt;
	int i, j, named = 1, unique = 1;

	for (i = 0; i < EV_COUNT; i++) {
		a = ev_name((enum ev_kind)i);
		named &= strcmp(a, "?") != 0 && *a != '\0';
		for (j = 0; j < i; j++) {
			b = ev_name((enum ev_kind)j);
			unique &= strcmp(a, b) != 0;
		}
	}
	check(named, "events: every kind has a name");
	check(unique, "events: no two kinds share a name");
	check(strcmp(ev_name(EV_COUNT), "?") == 0,
	    "events: a kind out of range is named \"?\"");
	ev = pack_event(EV_SENT, "{s:i,s:I}", "session", 2, "id",
	    (json_int_t)7);
	txt = ev ? json_dumps(ev, JSON_COMPACT) : NULL;
	check(txt && strcmp(txt, "{\"event\":\"sent\",\"session\":2,"
	    "\"id\":7}") == 0, "events: ev_vpack puts \"event\" first");
	free(txt);
	json_decref(ev);
	check(pack_event(EV_ERROR, "{s:s}", "message", NULL) == NULL,
	    "events: a member that cannot be packed is no event");
}

int
main(void)
{
	test_hostport();
	test_sort();
	test_match();
	test_list_limits();
	test_store();
	test_store_identity();
	test_renew_schedule();
	test_expiry();
	test_vis();
	test_admit_key();
	test_admit_pick();
	test_config();
	test_events();
	return tap_done();
}

/*
 * mail.c - S/MIME mail: composed, sealed and left at the registry; fetched,
 * judged and kept in a Maildir (mail.h says what is checked).
 */
#include <sys/stat.h>

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "ca.h"
#include "irp.h"
#include "mail.h"

/*
 * One attachment, before base64.  Sealed, a message grows by about 2.6
 * times (base64 in the MIME part, in the signed S/MIME entity and in the
 * encrypted one): 6 MiB is what a registry's default inbox_msg_max
 * (16 MiB) takes.
 */
#define ATTACH_MAX (6 * 1024 * 1024)
#define SEEN_NAME ".dchat-seen"

/* ---- a growing buffer ------------------------------------------------ */

struct sbuf {
	char *p;
	size_t len, cap;
	int failed;
};

static void
sb_add(struct sbuf *b, const void *s, size_t n)
{
	char *np;
	size_t cap;

	if (b->failed)
		return;
	if (b->len + n + 1 > b->cap) {
		cap = b->cap ? b->cap : 4096;
		while (cap < b->len + n + 1)
			cap *= 2;
		if ((np = realloc(b->p, cap)) == NULL) {
			b->failed = 1;
			return;
		}
		b->p = np;
		b->cap = cap;
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

static void sb_printf(struct sbuf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
sb_printf(struct sbuf *b, const char *fmt, ...)
{
	char tmp[1024];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(tmp))
		b->failed = 1;
	else
		sb_add(b, tmp, (size_t)n);
}

/* ---- composing ------------------------------------------------------- */

static void
random_hex(char *out, size_t bytes)
{
	unsigned char r[32];
	size_t i;

	if (bytes > sizeof(r))
		bytes = sizeof(r);
	if (RAND_bytes(r, (int)bytes) != 1)
		memset(r, 0, sizeof(r)); /* still unique enough with the time */
	for (i = 0; i < bytes; i++)
		snprintf(out + 2 * i, 3, "%02x", r[i]);
}

/*
 * A header value as given: printable, no line breaks (no header can be
 * added through it).  Non-ASCII is written as an RFC 2047 encoded word.
 */
static int
header_value(struct sbuf *b, const char *name, const char *v, char *err,
    size_t errlen)
{
	const unsigned char *p;
	unsigned char enc[4 * MAIL_HDR_MAX];
	int ascii = 1;
	size_t n = strlen(v);

	if (n >= MAIL_HDR_MAX) {
		snprintf(err, errlen, "the %s is longer than %d bytes", name,
		    MAIL_HDR_MAX - 1);
		return -1;
	}
	for (p = (const unsigned char *)v; *p; p++) {
		if (*p < 0x20 || *p == 0x7f) {
			snprintf(err, errlen,
			    "the %s holds a control "
			    "character",
			    name);
			return -1;
		}
		if (*p >= 0x80)
			ascii = 0;
	}
	if (ascii) {
		sb_printf(b, "%s: %s\r\n", name, v);
		return 0;
	}
	EVP_EncodeBlock(enc, (const unsigned char *)v, (int)n);
	sb_printf(b, "%s: =?UTF-8?B?%s?=\r\n", name, (const char *)enc);
	return 0;
}

/* The text, its lines ending in CRLF as RFC 5322 wants them. */
static void
text_crlf(struct sbuf *b, const unsigned char *t, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		if (t[i] == '\n' && (i == 0 || t[i - 1] != '\r'))
			sb_add(b, "\r", 1);
		sb_add(b, &t[i], 1);
	}
	if (n == 0 || t[n - 1] != '\n')
		sb_add(b, "\r\n", 2);
}

/* A file name fit for a quoted MIME parameter, or "attachment". */
static void
attach_name(const char *path, char *out, size_t len)
{
	const char *base = strrchr(path, '/');
	const unsigned char *p;

	base = base ? base + 1 : path;
	snprintf(out, len, "%s", base);
	for (p = (const unsigned char *)out; *p; p++)
		if (*p < 0x20 || *p >= 0x7f || *p == '"' || *p == '\\') {
			snprintf(out, len, "attachment");
			return;
		}
	if (out[0] == '\0')
		snprintf(out, len, "attachment");
}

static int
attach(struct sbuf *b, const char *boundary, const char *path, char *err,
    size_t errlen)
{
	unsigned char *data = NULL, line[80];
	char name[128];
	size_t n, i, k;

	if (ks_read_file(path, ATTACH_MAX, &data, &n) == -1) {
		snprintf(err, errlen, "cannot read %s: %s", path,
		    errno == EFBIG ? "larger than 6 MiB" : strerror(errno));
		return -1;
	}
	attach_name(path, name, sizeof(name));
	sb_printf(b,
	    "--%s\r\nContent-Type: application/octet-stream; "
	    "name=\"%s\"\r\nContent-Disposition: attachment; "
	    "filename=\"%s\"\r\nContent-Transfer-Encoding: base64\r\n\r\n",
	    boundary, name, name);
	for (i = 0; i < n; i += 57) {
		k = n - i < 57 ? n - i : 57;
		EVP_EncodeBlock(line, data + i, (int)k);
		sb_add(b, line, strlen((char *)line));
		sb_add(b, "\r\n", 2);
	}
	free(data);
	return 0;
}

int
mail_compose(const struct mail_draft *d, char msgid[IRP_MSGID_MAX], char **out,
    size_t *len, char *err, size_t errlen)
{
	struct sbuf b = { 0 };
	char id[33], boundary[48], date[64];
	const char *at = strrchr(d->from, '@');
	time_t now = time(NULL);
	struct tm tm;
	size_t i;

	*out = NULL;
	random_hex(id, 16);
	snprintf(msgid, IRP_MSGID_MAX, "%s@%s", id, at ? at + 1 : "dchat");
	gmtime_r(&now, &tm);
	strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S +0000", &tm);
	if (header_value(&b, "From", d->from, err, errlen) == -1 ||
	    header_value(&b, "To", d->to, err, errlen) == -1 ||
	    header_value(&b, "Subject", d->subject ? d->subject : "", err,
		errlen) == -1)
		goto err;
	sb_printf(&b, "Date: %s\r\nMessage-ID: <%s>\r\nMIME-Version: 1.0\r\n",
	    date, msgid);
	if (d->kind != NULL)
		sb_printf(&b, "X-DChat-Kind: %s\r\n", d->kind);
	if (d->nattach == 0) {
		sb_printf(&b,
		    "Content-Type: text/plain; charset=utf-8\r\n"
		    "Content-Transfer-Encoding: 8bit\r\n\r\n");
		text_crlf(&b, d->text, d->text_len);
	} else {
		snprintf(boundary, sizeof(boundary), "dchat-%s", id);
		sb_printf(&b,
		    "Content-Type: multipart/mixed; boundary=\"%s\"\r\n\r\n"
		    "--%s\r\nContent-Type: text/plain; charset=utf-8\r\n"
		    "Content-Transfer-Encoding: 8bit\r\n\r\n",
		    boundary, boundary);
		text_crlf(&b, d->text, d->text_len);
		for (i = 0; i < d->nattach; i++)
			if (attach(&b, boundary, d->attach[i], err, errlen) ==
			    -1)
				goto err;
		sb_printf(&b, "--%s--\r\n", boundary);
	}
	if (b.failed) {
		snprintf(err, errlen, "out of memory");
		goto err;
	}
	*out = b.p;
	*len = b.len;
	return 0;
err:
	free(b.p);
	return -1;
}

/* ---- sending --------------------------------------------------------- */

int
mail_seal(struct irp_client *c, const struct keystore *ks, const char *to,
    const char *msg, size_t len, unsigned char **sealed, size_t *slen,
    char *err, size_t errlen)
{
	const char *recip[CA_CMS_RECIPS_MAX];
	unsigned char *key = NULL, *cert = NULL;
	struct irp_user *u = NULL;
	struct irp_err ie;
	struct ca_err ce;
	size_t klen = 0, clen, n = 0, i;
	int rv = -1;

	*sealed = NULL;
	if (irp_lookup(c, to, &u, &ie) == -1) {
		snprintf(err, errlen, "%s", ie.msg);
		return -1;
	}
	for (i = 0; i < u->ndev && n < CA_CMS_RECIPS_MAX; i++)
		if (u->dev[i].cert_pem != NULL)
			recip[n++] = u->dev[i].cert_pem;
	if (n == 0) {
		snprintf(err, errlen, "%s has no certificate to encrypt to",
		    to);
		goto err;
	}
	if (ks_read_file(ks->key, 64 * 1024, &key, &klen) == -1 ||
	    ks_read_file(ks->cert, 64 * 1024, &cert, &clen) == -1) {
		snprintf(err, errlen,
		    "cannot read this device's key or "
		    "certificate: %s",
		    strerror(errno));
		goto err;
	}
	if (ca_cms_seal((const unsigned char *)msg, len, (char *)cert,
		(char *)key, recip, n, sealed, slen, &ce) == -1) {
		snprintf(err, errlen, "%s", ce.msg);
		goto err;
	}
	rv = 0;
err:
	if (key != NULL) {
		OPENSSL_cleanse(key, klen);
		free(key);
	}
	free(cert);
	irp_user_free(u);
	return rv;
}

int
mail_post(struct irp_client *c, const char *to, const char *msgid,
    const unsigned char *sealed, size_t slen, struct irp_inbox_item *stored,
    char *err, size_t errlen)
{
	struct irp_err ie;

	if (irp_inbox_post(c, to, msgid, sealed, slen, stored, &ie) == -1) {
		snprintf(err, errlen, "%s", ie.msg);
		return -1;
	}
	return 0;
}

int
mail_send(struct irp_client *c, const struct keystore *ks, const char *to,
    const char *msg, size_t len, const char *msgid,
    struct irp_inbox_item *stored, char *err, size_t errlen)
{
	unsigned char *sealed = NULL;
	size_t slen = 0;
	int rv;

	if (mail_seal(c, ks, to, msg, len, &sealed, &slen, err, errlen) == -1)
		return -1;
	rv = mail_post(c, to, msgid, sealed, slen, stored, err, errlen);
	free(sealed);
	return rv;
}

/* ---- the Maildir ----------------------------------------------------- */

static int
mkdirs(const char *maildir, char *err, size_t errlen)
{
	static const char *const sub[] = { "", "/tmp", "/new", "/cur",
		"/.Rejected", "/.Rejected/tmp", "/.Rejected/new",
		"/.Rejected/cur" };
	char path[KS_PATH_MAX + 32];
	size_t i;

	for (i = 0; i < sizeof(sub) / sizeof(sub[0]); i++) {
		snprintf(path, sizeof(path), "%s%s", maildir, sub[i]);
		if (mkdir(path, 0700) == -1 && errno != EEXIST) {
			snprintf(err, errlen, "cannot make %s: %s", path,
			    strerror(errno));
			return -1;
		}
	}
	return 0;
}

/* Write head then body as a new message of folder (tmp, then new). */
static int
deliver(const char *folder, long long id, const char *head, size_t hlen,
    const unsigned char *body, size_t blen, char *path, size_t pathlen,
    char *err, size_t errlen)
{
	char name[96], tmp[KS_PATH_MAX + 128], dst[KS_PATH_MAX + 128], r[17];
	ssize_t w;
	size_t off;
	int fd, ok = 1, i;

	random_hex(r, 8);
	snprintf(name, sizeof(name), "%lld.%lld_%s.dchat",
	    (long long)time(NULL), id, r);
	snprintf(tmp, sizeof(tmp), "%s/tmp/%s", folder, name);
	snprintf(dst, sizeof(dst), "%s/new/%s", folder, name);
	if ((fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600)) ==
	    -1) {
		snprintf(err, errlen, "cannot write %s: %s", tmp,
		    strerror(errno));
		return -1;
	}
	for (i = 0; i < 2 && ok; i++) {
		const char *p = i == 0 ? head : (const char *)body;
		size_t n = i == 0 ? hlen : blen;

		for (off = 0; ok && off < n; off += (size_t)w)
			if ((w = write(fd, p + off, n - off)) <= 0)
				ok = 0;
	}
	if (!ok || fsync(fd) == -1 || close(fd) == -1 ||
	    rename(tmp, dst) == -1) {
		snprintf(err, errlen, "cannot write %s: %s", dst,
		    strerror(errno));
		if (!ok)
			close(fd);
		unlink(tmp);
		return -1;
	}
	snprintf(path, pathlen, "%s", dst);
	return 0;
}

/*
 * The value of header name in the header block of msg, if it is one
 * printable line: 1, else 0 (out "").
 */
static int
header_get(const char *msg, size_t len, const char *name, char *out,
    size_t outlen)
{
	size_t nl = strlen(name), i = 0, e, k;
	const char *v;

	out[0] = '\0';
	while (i < len) {
		for (e = i; e < len && msg[e] != '\n'; e++)
			;
		if (e == i || (e == i + 1 && msg[i] == '\r'))
			return 0; /* the blank line: headers end */
		if (e - i > nl && strncasecmp(msg + i, name, nl) == 0 &&
		    msg[i + nl] == ':') {
			v = msg + i + nl + 1;
			while (v < msg + e && (*v == ' ' || *v == '\t'))
				v++;
			k = (size_t)(msg + e - v);
			if (k > 0 && v[k - 1] == '\r')
				k--;
			if (k >= outlen)
				return 0;
			memcpy(out, v, k);
			out[k] = '\0';
			for (v = out; *v; v++)
				if ((unsigned char)*v < 0x20 ||
				    (unsigned char)*v == 0x7f) {
					out[0] = '\0';
					return 0;
				}
			return 1;
		}
		i = e + 1;
	}
	return 0;
}

/*
 * Whether sender's msgid is in the Maildir's list of those seen; add it
 * if not.  Per sender: nobody can make another's message pass for a
 * duplicate by sending its Message-ID first.
 */
static int
seen_before(const char *maildir, const char *sender, const char *msgid)
{
	char path[KS_PATH_MAX + 32], line[2 * MAIL_HDR_MAX + 4],
	    key[2 * MAIL_HDR_MAX + 4];
	FILE *f;
	int seen = 0;

	snprintf(key, sizeof(key), "%s %s", sender, msgid);
	snprintf(path, sizeof(path), "%s/%s", maildir, SEEN_NAME);
	if ((f = fopen(path, "a+")) == NULL)
		return 0;
	rewind(f);
	while (!seen && fgets(line, sizeof(line), f) != NULL) {
		line[strcspn(line, "\n")] = '\0';
		seen = strcmp(line, key) == 0;
	}
	if (!seen)
		fprintf(f, "%s\n", key);
	fclose(f);
	return seen;
}

/* ---- receiving ------------------------------------------------------- */

struct me {
	char *key, *cert, *ca;
	char maildir[KS_PATH_MAX + 16];
	struct ks_list allow, deny; /* as for calls: who may reach us */
	const struct keystore *ks;  /* restored/: keys of earlier devices */
	char domain[256];	    /* ours: its users chain to our CA */
};

/* What open_any tries each restored key with. */
struct open_try {
	const unsigned char *msg;
	size_t len;
	struct ca_cms_opened *o;
};

static int
try_restored(const char *key, size_t klen, const char *cert, size_t clen,
    void *arg)
{
	struct open_try *t = arg;
	struct ca_err ce;

	(void)klen;
	(void)clen;
	return ca_cms_open(t->msg, t->len, cert, key, t->o, &ce) == 0;
}

/*
 * Open msg with this device's key, else with a key restored from an
 * earlier device (mail sent to that one's certificate).  0, or -1 with
 * the first key's refusal in ce.
 */
static int
open_any(const struct me *me, const unsigned char *msg, size_t len,
    struct ca_cms_opened *o, struct ca_err *ce)
{
	struct open_try t = { msg, len, o };

	if (ca_cms_open(msg, len, me->cert, me->key, o, ce) == 0)
		return 0;
	if (ce->code != CA_ERR_SIGNATURE)
		return -1;
	return ks_each_restored(me->ks, try_restored, &t) == 1 ? 0 : -1;
}

/*
 * Whether o, posted by sender, is sender's: signed with a certificate of
 * sender's, valid when signed by the CA of sender's domain (ours, or the
 * one our registry vouches for: federation), still listed for sender by
 * the registry.  0, or -1 with why.
 */
/*
 * The CA that sender's certificates must chain to: ours for our domain;
 * for another, the one our registry vouched for in u, its lookup answer
 * (a registry that vouches for none, or for another domain, is not
 * believed).  0, or -1 with why.
 */
static int
ca_for(const struct me *me, const char *sender, const struct irp_user *u,
    const char **ca, char *why, size_t whylen)
{
	const char *domain = strrchr(sender, '@');

	*ca = me->ca;
	/* (A home from before the user id was kept knows no domain.) */
	if (u->via == NULL && domain != NULL &&
	    (me->domain[0] == '\0' || strcasecmp(domain + 1, me->domain) == 0))
		return 0;
	if (u->via == NULL || u->via->ca_pem == NULL || domain == NULL ||
	    strcasecmp(u->via->domain, domain + 1) != 0) {
		snprintf(why, whylen,
		    "your registry vouches for no CA of %.100s's domain",
		    sender);
		return -1;
	}
	*ca = u->via->ca_pem;
	return 0;
}

static int
judge(struct irp_client *c, const struct me *me, const char *sender,
    const struct ca_cms_opened *o, char *why, size_t whylen)
{
	struct ca_cert_info info;
	struct irp_user *u = NULL;
	const char *ca;
	struct irp_err ie;
	struct ca_err ce;
	size_t i;
	int listed = 0, rv = -1;

	/* Who may not call us may not leave us anything either. */
	if (ks_list_match(&me->deny, sender)) {
		snprintf(why, whylen, "%s is on your deny list", sender);
		return -1;
	}
	if (me->allow.n > 0 && !ks_list_match(&me->allow, sender)) {
		snprintf(why, whylen, "%s is not on your allow list", sender);
		return -1;
	}
	if (ca_cert_info(o->signer_der, o->signer_len, &info, &ce) == -1) {
		snprintf(why, whylen,
		    "its signer's certificate can not be "
		    "read: %s",
		    ce.msg);
		return -1;
	}
	if (strcasecmp(info.userid, sender) != 0) {
		snprintf(why, whylen, "signed by %.100s, but posted by %.100s",
		    info.userid[0] ? info.userid : "nobody known", sender);
		return -1;
	}
	if (irp_lookup(c, sender, &u, &ie) == -1) {
		snprintf(why, whylen, "%s can not be looked up: %s", sender,
		    ie.msg);
		return -1;
	}
	if (ca_for(me, sender, u, &ca, why, whylen) == -1)
		goto err;
	if (ca_cms_signer_ok(ca, o->signer_der, o->signer_len, o->signed_at,
		&ce) == -1) {
		snprintf(why, whylen,
		    "the certificate it was signed with is "
		    "not valid: %s",
		    ce.msg);
		goto err;
	}
	for (i = 0; i < u->ndev && !listed; i++) {
		struct ca_cert_info d;

		listed = u->dev[i].cert_pem != NULL &&
		    ca_cert_info((const unsigned char *)u->dev[i].cert_pem,
			strlen(u->dev[i].cert_pem), &d, &ce) == 0 &&
		    strcmp(d.fingerprint, info.fingerprint) == 0;
	}
	if (!listed) {
		snprintf(why, whylen,
		    "the registry lists the certificate it "
		    "was signed with for %s no more (revoked?)",
		    sender);
		goto err;
	}
	rv = 0;
err:
	irp_user_free(u);
	return rv;
}

/* The outer headers of a kept message, from the signed ones inside. */
static int
outer_headers(const struct ca_cms_opened *o, const char *sender, struct sbuf *h)
{
	static const char *const keep[] = { "From", "To", "Subject", "Date",
		"X-DChat-Kind" };
	char v[MAIL_HDR_MAX];
	size_t i;

	for (i = 0; i < sizeof(keep) / sizeof(keep[0]); i++)
		if (header_get((const char *)o->content, o->content_len,
			keep[i], v, sizeof(v)))
			sb_printf(h, "%s: %s\n", keep[i], v);
	sb_printf(h, "X-DChat-Verified: signed by %s\n", sender);
	return h->failed ? -1 : 0;
}

static int entry_read(const char *path, const char *rejected_dir,
    struct mail_entry *e);

/*
 * The From of the signed message must be its signer (RFC 8551 3.1: a
 * reader checks the sender against the certificate): nobody signs as
 * themselves a message that says it is from someone else.
 */
static void
from_check(const struct ca_cms_opened *o, const char *sender, char *why,
    size_t whylen)
{
	char from[MAIL_HDR_MAX], *a, *b;

	if (!header_get((const char *)o->content, o->content_len, "From", from,
		sizeof(from))) {
		snprintf(why, whylen, "it has no From");
		return;
	}
	/* "Name <addr>" or "addr". */
	a = strchr(from, '<');
	b = a != NULL ? strchr(a, '>') : NULL;
	if (a != NULL && b != NULL) {
		*b = '\0';
		a++;
	} else
		a = from;
	if (strcasecmp(a, sender) != 0)
		snprintf(why, whylen,
		    "it says it is from %.100s, but was "
		    "signed by %.100s",
		    a, sender);
}

/* A reason as a header value: no line breaks, nothing unprintable. */
static void
printable(char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || (unsigned char)*s == 0x7f)
			*s = '?';
}

/*
 * One message, posted by sender: judged, then kept in the Maildir (or
 * apart, rejected); id names it.  0 when it is dealt with (kept,
 * rejected, or a duplicate dropped), -1 when it could not be kept.
 */
static int
accept_one(struct irp_client *c, const struct me *me, const char *sender,
    long long id, const unsigned char *data, size_t len, struct mail_tally *t,
    mail_seen_fn *seen, void *arg)
{
	struct mail_entry e;
	char why[300] = "", msgid[MAIL_HDR_MAX], folder[KS_PATH_MAX + 32],
	     err[300], path[KS_PATH_MAX + 160];
	struct ca_cms_opened o;
	struct sbuf h = { 0 };
	struct ca_err ce;
	int ok, rv = -1;

	memset(&o, 0, sizeof(o));
	if (open_any(me, data, len, &o, &ce) == -1)
		snprintf(why, sizeof(why),
		    "it can not be opened and checked "
		    "with this device's key: %s",
		    ce.msg);
	else if (judge(c, me, sender, &o, why, sizeof(why)) == 0 &&
	    !header_get((const char *)o.content, o.content_len, "Message-ID",
		msgid, sizeof(msgid)))
		snprintf(why, sizeof(why), "it has no Message-ID");
	if (why[0] == '\0')
		from_check(&o, sender, why, sizeof(why));
	printable(why);
	ok = why[0] == '\0';
	if (ok && seen_before(me->maildir, sender, msgid)) {
		t->duplicates++;
		rv = 0;
		goto out;
	}
	if (ok) {
		outer_headers(&o, sender, &h);
		sb_printf(&h, "Message-ID: %s\n", msgid);
		snprintf(folder, sizeof(folder), "%s", me->maildir);
	} else {
		sb_printf(&h,
		    "From: %s\nSubject: (rejected)\n"
		    "X-DChat-Rejected: %s\n",
		    sender, why);
		snprintf(folder, sizeof(folder), "%s/.Rejected", me->maildir);
	}
	if (h.failed ||
	    deliver(folder, id, h.p, h.len, data, len, path, sizeof(path), err,
		sizeof(err)) == -1) {
		t->left++;
		goto out;
	}
	if (seen != NULL && entry_read(path, ok ? NULL : folder, &e) == 0)
		seen(arg, &e);
	if (ok)
		t->kept++;
	else
		t->rejected++;
	rv = 0;
out:
	free(h.p);
	ca_cms_opened_clear(&o);
	return rv;
}

/* One message of the inbox: fetched, accepted, then deleted there. */
static void
fetch_one(struct irp_client *c, const struct me *me,
    const struct irp_inbox_item *it, struct mail_tally *t, mail_seen_fn *seen,
    void *arg)
{
	unsigned char *data = NULL;
	struct irp_err ie;
	size_t len = 0;

	if (irp_inbox_get(c, it->id, MAIL_MAX, &data, &len, &ie) == -1) {
		t->left++;
		return;
	}
	if (accept_one(c, me, it->sender, it->id, data, len, t, seen, arg) ==
		0 &&
	    irp_inbox_delete(c, it->id, &ie) == -1)
		t->left++;
	free(data);
}

static void
me_clear(struct me *me)
{
	if (me->key != NULL) {
		OPENSSL_cleanse(me->key, strlen(me->key));
		free(me->key);
	}
	free(me->cert);
	free(me->ca);
	memset(me, 0, sizeof(*me));
}

static int
me_load(const struct keystore *ks, struct me *me, char *err, size_t errlen)
{
	size_t n;

	memset(me, 0, sizeof(*me));
	snprintf(me->maildir, sizeof(me->maildir), "%s/Maildir", ks->home);
	me->ks = ks;
	if (strchr(ks->userid, '@') != NULL)
		snprintf(me->domain, sizeof(me->domain), "%s",
		    strrchr(ks->userid, '@') + 1);
	if (ks_list_load(ks->allow, &me->allow) == -1 ||
	    ks_list_load(ks->deny, &me->deny) == -1) {
		snprintf(err, errlen, "cannot read the allow or deny list");
		return -1;
	}
	if (ks_read_file(ks->key, 64 * 1024, (unsigned char **)&me->key, &n) ==
		-1 ||
	    ks_read_file(ks->cert, 64 * 1024, (unsigned char **)&me->cert,
		&n) == -1 ||
	    ks_read_file(ks->ca, 64 * 1024, (unsigned char **)&me->ca, &n) ==
		-1) {
		snprintf(err, errlen,
		    "cannot read this device's key, "
		    "certificate or CA: %s",
		    strerror(errno));
		me_clear(me);
		return -1;
	}
	return mkdirs(me->maildir, err, errlen);
}

int
mail_dirs(const struct keystore *ks)
{
	char maildir[KS_PATH_MAX + 16], err[300];

	snprintf(maildir, sizeof(maildir), "%s/Maildir", ks->home);
	return mkdirs(maildir, err, sizeof(err));
}

int
mail_fetch(struct irp_client *c, const struct keystore *ks,
    struct mail_tally *t, mail_seen_fn *seen, void *arg, char *err,
    size_t errlen)
{
	struct irp_inbox l = { 0, NULL };
	struct irp_err ie;
	struct me me;
	size_t i;

	memset(t, 0, sizeof(*t));
	if (me_load(ks, &me, err, errlen) == -1)
		return -1;
	if (irp_inbox_list(c, &l, &ie) == -1) {
		snprintf(err, errlen, "%s", ie.msg);
		me_clear(&me);
		return -1;
	}
	for (i = 0; i < l.n; i++)
		fetch_one(c, &me, &l.msg[i], t, seen, arg);
	irp_inbox_clear(&l);
	me_clear(&me);
	return 0;
}

int
mail_accept(struct irp_client *c, const struct keystore *ks, const char *sender,
    const unsigned char *data, size_t len, struct mail_tally *t,
    mail_seen_fn *seen, void *arg, char *err, size_t errlen)
{
	struct me me;
	int rv;

	memset(t, 0, sizeof(*t));
	if (me_load(ks, &me, err, errlen) == -1)
		return -1;
	rv = accept_one(c, &me, sender, 0, data, len, t, seen, arg);
	if (rv == -1)
		snprintf(err, errlen, "the mail could not be kept");
	me_clear(&me);
	return rv;
}

/* ---- listing and reading --------------------------------------------- */

static int
entry_read(const char *path, const char *rejected_dir, struct mail_entry *e)
{
	char buf[16384];
	struct stat st;
	ssize_t n;
	int fd;

	memset(e, 0, sizeof(*e));
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1)
		return -1;
	n = read(fd, buf, sizeof(buf) - 1);
	if (n < 0 || fstat(fd, &st) == -1) {
		close(fd);
		return -1;
	}
	close(fd);
	buf[n] = '\0';
	snprintf(e->path, sizeof(e->path), "%s", path);
	e->when = st.st_mtime;
	header_get(buf, (size_t)n, "From", e->from, sizeof(e->from));
	header_get(buf, (size_t)n, "To", e->to, sizeof(e->to));
	header_get(buf, (size_t)n, "Subject", e->subject, sizeof(e->subject));
	header_get(buf, (size_t)n, "Date", e->date, sizeof(e->date));
	header_get(buf, (size_t)n, "Message-ID", e->msgid, sizeof(e->msgid));
	header_get(buf, (size_t)n, "X-DChat-Kind", e->kind, sizeof(e->kind));
	if (strcmp(e->kind, MAIL_KIND_CHAT) != 0 &&
	    strcmp(e->kind, MAIL_KIND_FILE) != 0)
		e->kind[0] = '\0';
	if (rejected_dir != NULL &&
	    !header_get(buf, (size_t)n, "X-DChat-Rejected", e->rejected,
		sizeof(e->rejected)))
		snprintf(e->rejected, sizeof(e->rejected), "rejected");
	return 0;
}

static int
scan(const char *dir, int rejected, struct mail_entry **out, size_t *n)
{
	char path[KS_PATH_MAX + 300];
	struct mail_entry *np;
	struct dirent *de;
	DIR *d;

	if ((d = opendir(dir)) == NULL)
		return errno == ENOENT ? 0 : -1;
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		if ((np = realloc(*out, (*n + 1) * sizeof(**out))) == NULL) {
			closedir(d);
			return -1;
		}
		*out = np;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		if (entry_read(path, rejected ? dir : NULL, &(*out)[*n]) == 0)
			(*n)++;
	}
	closedir(d);
	return 0;
}

static int
by_time(const void *a, const void *b)
{
	const struct mail_entry *x = a, *y = b;

	if (x->when != y->when)
		return x->when < y->when ? -1 : 1;
	return strcmp(x->path, y->path);
}

int
mail_list(const struct keystore *ks, struct mail_entry **out, size_t *n,
    char *err, size_t errlen)
{
	static const struct {
		const char *sub;
		int rejected;
	} dirs[] = { { "new", 0 }, { "cur", 0 }, { ".Rejected/new", 1 },
		{ ".Rejected/cur", 1 } };
	char dir[KS_PATH_MAX + 64];
	size_t i;

	*out = NULL;
	*n = 0;
	for (i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
		snprintf(dir, sizeof(dir), "%s/Maildir/%s", ks->home,
		    dirs[i].sub);
		if (scan(dir, dirs[i].rejected, out, n) == -1) {
			snprintf(err, errlen, "cannot read %s: %s", dir,
			    strerror(errno));
			free(*out);
			*out = NULL;
			*n = 0;
			return -1;
		}
	}
	if (*n > 1)
		qsort(*out, *n, sizeof(**out), by_time);
	return 0;
}

int
mail_read(const struct keystore *ks, const struct mail_entry *e, char **out,
    size_t *len, char *err, size_t errlen)
{
	struct ca_cms_opened o;
	unsigned char *data = NULL;
	struct ca_err ce;
	struct me me;
	size_t n;
	int rv = -1;

	*out = NULL;
	if (e->rejected[0] != '\0') {
		snprintf(err, errlen, "this message was rejected: %s",
		    e->rejected);
		return -1;
	}
	if (me_load(ks, &me, err, errlen) == -1)
		return -1;
	if (ks_read_file(e->path, MAIL_MAX + 65536, &data, &n) == -1) {
		snprintf(err, errlen, "cannot read %s: %s", e->path,
		    strerror(errno));
		goto err;
	}
	if (open_any(&me, data, n, &o, &ce) == -1) {
		snprintf(err, errlen, "%s", ce.msg);
		goto err;
	}
	*out = (char *)o.content;
	*len = o.content_len;
	o.content = NULL;
	ca_cms_opened_clear(&o);
	rv = 0;
err:
	free(data);
	me_clear(&me);
	return rv;
}

/* ---- the parts of a message ------------------------------------------ */

/* Where the blank line that ends the headers at p (n bytes) is, or NULL. */
static const char *
body_start(const char *p, size_t n)
{
	size_t i;

	for (i = 0; i + 1 < n; i++) {
		if (p[i] != '\n')
			continue;
		if (p[i + 1] == '\n')
			return p + i + 2;
		if (i + 2 < n && p[i + 1] == '\r' && p[i + 2] == '\n')
			return p + i + 3;
	}
	return NULL;
}

/* The next "\n--" at or after p before end (a MIME boundary), or end. */
static const char *
part_end(const char *p, const char *end)
{
	const char *q;

	for (q = p; q + 3 <= end; q++)
		if (q[0] == '\n' && q[1] == '-' && q[2] == '-')
			return q > p && q[-1] == '\r' ? q - 1 : q;
	return end;
}

int
mail_text_of(const char *msg, size_t len, char **text, size_t *tlen)
{
	const char *end = msg + len, *b, *p, *e;
	char ctype[MAIL_HDR_MAX];

	*text = NULL;
	if ((b = body_start(msg, len)) == NULL)
		return -1;
	header_get(msg, len, "Content-Type", ctype, sizeof(ctype));
	p = b;
	if (strncasecmp(ctype, "multipart/", 10) == 0) {
		/* The first part: after its boundary line and headers. */
		if ((p = strstr(b, "\n")) == NULL ||
		    (p = body_start(p - 1, (size_t)(end - p + 1))) == NULL)
			return -1;
		e = part_end(p, end);
	} else
		e = end;
	while (e > p && (e[-1] == '\n' || e[-1] == '\r'))
		e--;
	if ((*text = malloc((size_t)(e - p) + 1)) == NULL)
		return -1;
	memcpy(*text, p, (size_t)(e - p));
	(*text)[e - p] = '\0';
	*tlen = (size_t)(e - p);
	return 0;
}

/* name as a file name here: printable, no path, not hidden, or "file". */
static void
safe_name(const char *name, char *out, size_t len)
{
	const unsigned char *p;

	snprintf(out, len, "%s", name);
	for (p = (const unsigned char *)out; *p; p++)
		if (*p < 0x20 || *p >= 0x7f || *p == '/' || *p == '\\')
			break;
	if (*p != '\0' || out[0] == '\0' || out[0] == '.')
		snprintf(out, len, "file");
}

int
mail_attachment_of(const char *msg, size_t len, char *name, size_t namelen,
    unsigned char **data, size_t *dlen)
{
	const char *end = msg + len, *at, *q, *p, *e, *line;
	static const char tag[] = "filename=\"";
	char raw[128];
	unsigned char *out;
	size_t n = 0, k;
	int got;

	*data = NULL;
	/* msg is at most MAIL_MAX and NUL-terminated (ca_cms_open). */
	if ((at = strstr(msg, tag)) == NULL || at >= end)
		return -1;
	at += sizeof(tag) - 1;
	if ((q = strchr(at, '"')) == NULL || (size_t)(q - at) >= sizeof(raw))
		return -1;
	memcpy(raw, at, (size_t)(q - at));
	raw[q - at] = '\0';
	safe_name(raw, name, namelen);
	if ((p = body_start(q, (size_t)(end - q))) == NULL)
		return -1;
	e = part_end(p, end);
	if ((out = malloc((size_t)(e - p) / 4 * 3 + 3)) == NULL)
		return -1;
	for (line = p; line < e; line = q + 1) {
		for (q = line; q < e && *q != '\n'; q++)
			;
		k = (size_t)(q - line);
		if (k > 0 && line[k - 1] == '\r')
			k--;
		if (k == 0)
			continue;
		if (k % 4 != 0 || k > 76 ||
		    (got = EVP_DecodeBlock(out + n, (const unsigned char *)line,
			 (int)k)) < 0) {
			free(out);
			return -1;
		}
		/* EVP_DecodeBlock counts the padding as bytes. */
		n += (size_t)got;
		if (line[k - 1] == '=')
			n -= line[k - 2] == '=' ? 2 : 1;
	}
	*data = out;
	*dlen = n;
	return 0;
}

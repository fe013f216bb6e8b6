/*
 * main.c - dchat, the direct chat peer.
 *
 *   dchat [--home DIR] init --server URL --user USERID --code CODE
 *         --ca-fingerprint SHA256
 *   dchat backup --passphrase-file F
 *   dchat restore --server URL --user USERID --ca-fingerprint SHA256
 *         (--code CODE | --password-file F) --passphrase-file F
 *   dchat restore --backup-only --passphrase-file F
 *   dchat lookup USERID [--json]
 *   dchat run [--listen ADDR:PORT]... [--advertise ADDR:PORT]... [--json]
 *         [--ttl SECS] [--auto-accept] [--accept-files]
 *         [--no-contact-requests]
 *   dchat send USERID TEXT | dchat sendfile USERID PATH [--timeout SECS]
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "app.h"
#include "ca.h"
#include "identity.h"
#include "irp_client.h"
#include "irp_dns.h"
#include "keystore.h"
#include "mail.h"
#include "registry.h"
#include "ui.h"
#include "vis.h"
#include "vouch.h"

/*
 * A string from the registry or a certificate, rendered for the terminal
 * into buf (cut short rather than shown raw).
 */
#define VIS_BUF (256 * VIS_GROWTH)
#define VIS(buf, s) (vis_str((buf), sizeof(buf), (s)), (const char *)(buf))

#define PASS_MAX 1024

struct opts {
	const char *home;
	const char *server;
	const char *dns;
	const char *user;
	const char *code;
	const char *fingerprint;
	const char *passphrase_file;
	const char *password_file;
	const char *listen[APP_LISTEN_MAX];
	size_t nlisten;
	const char *advertise[IRP_ADDR_MAX];
	size_t nadvertise;
	int json;
	int ttl;
	int auto_accept;
	int accept_files;
	int timeout;
	int force;
	int backup_only; /* restore: only the backup, with our certificate */
	int no_requests;
	const char *subject;
	const char *attach[MAIL_ATTACH_MAX];
	size_t nattach;
	char **args; /* the words after the command */
};

static void usage(FILE *out);

static int
parse_int(const char *s, int lo, int hi, int *out)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || *end || end == s || v < lo || v > hi)
		return -1;
	*out = (int)v;
	return 0;
}

/* The first line of a file, for passphrases; wipe with OPENSSL_cleanse. */
static int
read_secret(const char *path, char *out, size_t len)
{
	unsigned char *buf = NULL;
	size_t n, i;

	if (path == NULL || ks_read_file(path, PASS_MAX, &buf, &n) == -1) {
		fprintf(stderr, "dchat: cannot read %s: %s\n",
		    path ? path : "(no file given)", strerror(errno));
		return -1;
	}
	for (i = 0; i < n && buf[i] != '\n' && buf[i] != '\r'; i++)
		;
	if (i == 0 || i >= len) {
		OPENSSL_cleanse(buf, n);
		free(buf);
		fprintf(stderr, "dchat: %s: empty or too long\n", path);
		return -1;
	}
	memcpy(out, buf, i);
	out[i] = '\0';
	OPENSSL_cleanse(buf, n);
	free(buf);
	return 0;
}

static int
need(const char *v, const char *name)
{
	if (v == NULL || *v == '\0') {
		fprintf(stderr, "dchat: %s is required\n", name);
		return -1;
	}
	return 0;
}

/* Fetch the CRL with our certificate in place; best effort. */
static void
fetch_crl(const struct keystore *ks)
{
	struct irp_client *c;
	struct irp_err err;
	unsigned char *der;
	size_t len;

	if ((c = registry_open(ks, 1, &err)) == NULL ||
	    irp_crl_get(c, &der, &len, &err) == -1) {
		fprintf(stderr, "dchat: warning: no CRL fetched: %s\n",
		    err.msg);
		irp_client_free(c);
		return;
	}
	if (ks_write_file(ks->crl, der, len, 0644) == -1)
		fprintf(stderr, "dchat: cannot write %s\n", ks->crl);
	free(der);
	irp_client_free(c);
}

/* Refuse to overwrite an identity unless asked. */
static int
check_fresh(const struct keystore *ks, int force)
{
	if (!force && access(ks->key, F_OK) == 0) {
		fprintf(stderr, "dchat: %s already holds a key; use --force to "
		    "replace it\n", ks->home);
		return -1;
	}
	return 0;
}

/* The CA of the registry at o->server, checked against o->fingerprint. */
static int
fetch_ca_at(const struct opts *o, char **ca, struct irp_err *err)
{
	struct irp_dns *dns = NULL;
	int rv;

	if (o->dns != NULL && (dns = irp_dns_new(o->dns, NULL, 0, err)) == NULL)
		return -1;
	rv = irp_fetch_ca(o->server, dns, o->fingerprint, ca, err);
	irp_dns_free(dns);
	return rv;
}

/*
 * The registry's CA, checked against the fingerprint the administrator
 * gave out (trust on first use is not enough), into the home; and the
 * registry's address into ks: --server, or else the registry the user
 * id's domain publishes in the DNS.
 */
static int
fetch_ca(const struct opts *o, const char *uid, struct keystore *ks)
{
	struct irp_err err;
	char *ca = NULL;
	int rv = -1;

	if (o->dns != NULL && strlen(o->dns) >= sizeof(ks->dns)) {
		fprintf(stderr, "dchat: --dns-server %s is too long\n", o->dns);
		return -1;
	}
	snprintf(ks->dns, sizeof(ks->dns), "%s", o->dns ? o->dns : "");
	snprintf(ks->server, sizeof(ks->server), "%s",
	    o->server ? o->server : "");
	if (o->server == NULL ?
		registry_discover(strchr(uid, '@') + 1, o->dns, o->fingerprint,
		    ks->server, sizeof(ks->server), &ca, &err) == -1 :
		fetch_ca_at(o, &ca, &err) == -1)
		fprintf(stderr, "dchat: %s\n", err.msg);
	else if (ks_write_file(ks->ca, ca, strlen(ca), 0644) == -1)
		fprintf(stderr, "dchat: cannot write %s\n", ks->ca);
	else
		rv = 0;
	free(ca);
	return rv;
}

static int
registry_open_checked(const struct keystore *ks, int with_cert,
    struct irp_client **out)
{
	struct irp_err err;

	if ((*out = registry_open(ks, with_cert, &err)) == NULL) {
		fprintf(stderr, "dchat: %s\n", err.msg);
		return -1;
	}
	return 0;
}

static void
print_identity(const char *what, const struct ca_cert_info *info)
{
	char exp[IRP_TIME_LEN];
	char v[2][VIS_BUF];

	irp_time(info->not_after, exp);

	printf("%s as %s (%s)\nserial %s\nfingerprint %s\nexpires %s\n",
	    what, VIS(v[0], info->userid), VIS(v[1], info->name), info->serial,
	    info->fingerprint, exp);
}

/*
 * Where the registry escrows keys, deposit the new one, with its
 * certificate; a failure is said, and the identity stays (the deposit
 * is the device's duty, and the next renewal tries again).
 */
static void
escrow(const struct keystore *ks, const struct identity *id)
{
	struct irp_client *c;
	struct irp_err ierr;
	char err[400], officer[65];

	if ((c = registry_open(ks, 1, &ierr)) == NULL) {
		fprintf(stderr, "dchat: warning: the key was not escrowed: "
				"%s\n",
		    ierr.msg);
		return;
	}
	if (identity_escrow(c, id, officer, err, sizeof(err)) == -1)
		fprintf(stderr, "dchat: warning: %s\n", err);
	else if (officer[0] != '\0')
		printf("the key is escrowed: the registry's escrow officer "
		       "(certificate %s) can recover it\n",
		    officer);
	irp_client_free(c);
}

/* Said once: the enrolment waits for an administrator. */
static int
say_pending(void *arg, const char *token, int secs, const char *expires_at)
{
	int *said = arg;

	if (!*said)
		fprintf(stderr, "dchat: the registry keeps this enrolment for "
				"an administrator's approval (request %.12s, "
				"until %s); waiting for the decision, asking "
				"every %d s (Ctrl-C stops)\n",
		    token, expires_at, secs);
	*said = 1;
	return 0;
}

/*
 * Enrol this device for uid: the registry's CA (fetch_ca), then a key
 * made here, certified as proof allows and stored as the device's own
 * identity, with the config, and the CRL.  0, or -1 after saying why.
 */
static int
enrol(const struct opts *o, const char *uid,
    const struct identity_proof *proof, struct keystore *ks,
    struct identity *id)
{
	struct irp_client *c = NULL;
	char kerr[300];
	int rv = -1, said = 0;

	if (check_fresh(ks, o->force) == -1 || fetch_ca(o, uid, ks) == -1 ||
	    registry_open_checked(ks, 0, &c) == -1)
		goto err;
	irp_client_on_pending(c, say_pending, &said);
	if (identity_request(c, uid, proof, id, kerr, sizeof(kerr)) == -1) {
		fprintf(stderr, "dchat: enrolment failed: %s\n", kerr);
		goto err;
	}
	if (identity_store(ks, id, kerr, sizeof(kerr)) == -1) {
		fprintf(stderr, "dchat: %s\n", kerr);
		goto err;
	}
	snprintf(ks->userid, sizeof(ks->userid), "%s", uid);
	if (ks_save_config(ks, kerr, sizeof(kerr)) == -1) {
		fprintf(stderr, "dchat: %s\n", kerr);
		goto err;
	}
	fetch_crl(ks);
	rv = 0;
err:
	irp_client_free(c);
	return rv;
}

static int
cmd_init(struct opts *o)
{
	char uid[IRP_USERID_MAX + 1], kerr[300];
	struct identity_proof proof = { .code = o->code };
	struct identity id = { 0 };
	struct keystore ks;
	const char *why;
	int rv = 1;

	if (need(o->user, "--user") || need(o->code, "--code") ||
	    need(o->fingerprint, "--ca-fingerprint"))
		return 2;
	if (irp_userid_normalize(o->user, uid, sizeof(uid), &why) == -1) {
		fprintf(stderr, "dchat: %s: %s\n", o->user, why);
		return 2;
	}
	if (ks_open(&ks, o->home, 1, kerr, sizeof(kerr)) == -1) {
		fprintf(stderr, "dchat: %s\n", kerr);
		return 1;
	}
	if (enrol(o, uid, &proof, &ks, &id) == 0) {
		print_identity("enrolled", &id.info);
		escrow(&ks, &id);
		rv = 0;
	}
	identity_clear(&id);
	return rv;
}

/*
 * dchat renew: a new key and certificate for this device, asked for with
 * the current certificate.  The old certificate stays valid at the DIR
 * until it expires or is revoked, but its addresses are taken off: this
 * device answers with the new one from now on, and a dchat run of this
 * home switches to it by itself.
 */
static int
cmd_renew(struct opts *o)
{
	struct irp_client *c = NULL;
	struct identity id = { 0 };
	struct keystore ks;
	struct irp_err err;
	char kerr[300];
	int rv = 1;

	if (ks_open(&ks, o->home, 0, kerr, sizeof(kerr)) == -1) {
		fprintf(stderr, "dchat: %s\n", kerr);
		return 1;
	}
	if (ks.server[0] == '\0' || ks.userid[0] == '\0') {
		fprintf(stderr, "dchat: %s holds no identity; run dchat init\n",
		    ks.home);
		return 1;
	}
	if (registry_open_checked(&ks, 1, &c) == -1)
		goto err;
	if (identity_request(c, ks.userid, NULL, &id, kerr, sizeof(kerr)) ==
	    -1) {
		fprintf(stderr, "dchat: renewal failed: %s\n", kerr);
		goto err;
	}
	/* While the old pair is still on disk, so that it is the old
	 * certificate whose addresses go; they would expire anyway. */
	if (irp_addresses_delete(c, NULL, &err) == -1)
		fprintf(stderr, "dchat: warning: the old certificate's "
		    "addresses stay registered until they expire: %s\n",
		    err.msg);
	if (identity_store(&ks, &id, kerr, sizeof(kerr)) == -1) {
		fprintf(stderr, "dchat: %s\n", kerr);
		goto err;
	}
	print_identity("renewed", &id.info);
	escrow(&ks, &id);
	rv = 0;
err:
	identity_clear(&id);
	irp_client_free(c);
	return rv;
}

/* A file of the home directory as a NUL-terminated string, or NULL. */
static char *
home_file(const char *path)
{
	unsigned char *buf;
	size_t len;

	if (ks_read_file(path, KS_FILE_MAX, &buf, &len) == -1) {
		fprintf(stderr, "dchat: cannot read %s\n", path);
		return NULL;
	}
	return (char *)buf;
}

/* The keys a restore kept (restored/), gathered for the backup. */
struct kept {
	struct ca_p12_pair p[CA_P12_PAIRS_MAX - 1];
	size_t n;
};

static int
keep_pair(const char *key, size_t klen, const char *cert, size_t clen,
    void *arg)
{
	struct kept *k = arg;

	(void)klen;
	(void)clen;
	if (k->n == sizeof(k->p) / sizeof(k->p[0]))
		return 1; /* as many as a backup holds */
	if ((k->p[k->n].key_pem = strdup(key)) == NULL ||
	    (k->p[k->n].cert_pem = strdup(cert)) == NULL) {
		ca_secret_free(k->p[k->n].key_pem);
		return -1;
	}
	k->n++;
	return 0;
}

static void
kept_clear(struct kept *k)
{
	size_t i;

	for (i = 0; i < k->n; i++) {
		ca_secret_free(k->p[i].key_pem);
		free(k->p[i].cert_pem);
	}
	k->n = 0;
}

/*
 * dchat backup: this device's key and certificate, and the keys of
 * earlier devices that a restore kept here, in one PKCS#12, so that the
 * backup of any device reads all the mail of the user.
 */
static int
cmd_backup(struct opts *o)
{
	char pass[PASS_MAX], kerr[300];
	char *key = NULL, *cert = NULL, *ca = NULL;
	struct irp_client *c = NULL;
	unsigned char *der = NULL;
	struct kept kept = { .n = 0 };
	struct keystore ks;
	struct irp_err err;
	struct ca_err ce;
	size_t len = 0;
	int lk, rv = 1;

	if (ks_open(&ks, o->home, 0, kerr, sizeof(kerr)) == -1) {
		fprintf(stderr, "dchat: %s\n", kerr);
		return 1;
	}
	if (read_secret(o->passphrase_file, pass, sizeof(pass)) == -1)
		return 2;
	/* Key and certificate as one pair: a renewal may be replacing them. */
	lk = ks_lock(&ks, 0);
	key = home_file(ks.key);
	cert = key != NULL ? home_file(ks.cert) : NULL;
	ks_unlock(lk);
	if (key == NULL || cert == NULL || (ca = home_file(ks.ca)) == NULL)
		goto err;
	if (ks_each_restored(&ks, keep_pair, &kept) == -1) {
		fprintf(stderr, "dchat: out of memory\n");
		goto err;
	}
	/* A high iteration count: the registry keeps it for anyone who
	 * gets a code to download it. */
	if (ca_p12_pack_more(key, cert, ca, kept.p, kept.n, pass, ks.userid,
	    &der, &len, &ce) == -1) {
		fprintf(stderr, "dchat: cannot build the PKCS#12: %s\n", ce.msg);
		goto err;
	}
	if ((c = registry_open(&ks, 1, &err)) == NULL ||
	    irp_backup_put(c, der, len, &err) == -1) {
		fprintf(stderr, "dchat: backup failed: %s\n", err.msg);
		goto err;
	}
	printf("backup stored in the DIR (%zu bytes, encrypted with your "
	    "passphrase): this device's key", len);
	if (kept.n > 0)
		printf(" and %zu of earlier devices", kept.n);
	printf("\n");
	rv = 0;
err:
	OPENSSL_cleanse(pass, sizeof(pass));
	irp_client_free(c);
	free(der);
	kept_clear(&kept);
	ca_secret_free(key);
	free(cert);
	free(ca);
	return rv;
}

/*
 * What restore needs, and whom it restores (into uid): 0, or -1.  With
 * --backup-only this device's certificate fetches the backup, so
 * nothing that names a registry, a user or a proof is taken: it would
 * not be used.
 */
static int
restore_args(const struct opts *o, char *uid, size_t len)
{
	const char *why;

	if (o->backup_only) {
		if (o->user || o->code || o->password_file || o->server ||
		    o->dns || o->fingerprint || o->force) {
			fprintf(stderr, "dchat: restore --backup-only takes only "
			    "--passphrase-file: this device's own certificate "
			    "fetches the backup\n");
			return -1;
		}
		return 0;
	}
	if (need(o->user, "--user") || need(o->fingerprint, "--ca-fingerprint"))
		return -1;
	if (o->code == NULL && o->password_file == NULL) {
		fprintf(stderr, "dchat: --code or --password-file is needed\n");
		return -1;
	}
	if (irp_userid_normalize(o->user, uid, len, &why) == -1) {
		fprintf(stderr, "dchat: %s: %s\n", o->user, why);
		return -1;
	}
	return 0;
}

/*
 * Open a backup (p12, len) with pass: every key in it with its
 * certificate (*pairs, ca_p12_pairs_free), all of which must be uid's.
 * 0, or -1 after saying why.
 */
static int
backup_open(const unsigned char *p12, size_t len, const char *pass,
    const char *uid, struct ca_p12_pair **pairs, size_t *n)
{
	struct ca_cert_info info;
	struct ca_err cerr;
	size_t i;

	if (ca_p12_unpack_all(p12, len, pass, pairs, n, &cerr) == -1) {
		fprintf(stderr, "dchat: the backup could not be opened: %s\n",
		    cerr.msg);
		return -1;
	}
	for (i = 0; i < *n; i++)
		if (ca_cert_info((const unsigned char *)(*pairs)[i].cert_pem,
		    strlen((*pairs)[i].cert_pem), &info, &cerr) == -1 ||
		    strcasecmp(info.userid, uid) != 0) {
			fprintf(stderr, "dchat: the backup holds a certificate "
			    "for another user; nothing was kept\n");
			ca_p12_pairs_free(*pairs, *n);
			*pairs = NULL;
			*n = 0;
			return -1;
		}
	return 0;
}

/*
 * The user's backup, fetched with this device's own certificate (a code
 * would be spent already: the enrolment took it), opened with pass and
 * checked to be uid's; every key in it of another device than
 * own_serial is kept with its certificate to read mail sent to that
 * device (ks_store_restored), never to present.  Their serials, comma
 * separated, into kept.  0; 1 when the registry holds no backup; -1
 * after saying why.
 */
static int
restore_backup(const struct keystore *ks, const char *uid, const char *pass,
    const char *own_serial, char *kept, size_t keptlen)
{
	struct ca_p12_pair *pairs = NULL;
	struct irp_client *c = NULL;
	unsigned char *p12 = NULL;
	struct irp_err err = { 0 };
	struct ca_cert_info old;
	struct ca_err cerr;
	size_t len = 0, n = 0, i, off = 0;
	char kerr[300];
	int rv = -1;

	kept[0] = '\0';
	if ((c = registry_open(ks, 1, &err)) == NULL ||
	    irp_backup_get(c, NULL, NULL, &p12, &len, &err) == -1) {
		if (err.status == 404 && strcmp(err.code, "no_backup") == 0)
			rv = 1;
		else
			fprintf(stderr, "dchat: cannot fetch the backup: %s\n",
			    err.msg);
		goto err;
	}
	if (backup_open(p12, len, pass, uid, &pairs, &n) == -1)
		goto err;
	for (i = 0; i < n; i++) {
		if (ca_cert_info((const unsigned char *)pairs[i].cert_pem,
		    strlen(pairs[i].cert_pem), &old, &cerr) == -1 ||
		    strcmp(old.serial, own_serial) == 0)
			continue;
		if (ks_store_restored(ks, old.serial, pairs[i].key_pem,
		    strlen(pairs[i].key_pem), pairs[i].cert_pem,
		    strlen(pairs[i].cert_pem), kerr, sizeof(kerr)) == -1) {
			fprintf(stderr, "dchat: %s\n", kerr);
			goto err;
		}
		if (off < keptlen)
			off += (size_t)snprintf(kept + off, keptlen - off,
			    "%s%s", off ? ", " : "", old.serial);
	}
	if (kept[0] == '\0') {
		fprintf(stderr, "dchat: the backup holds this device's own key "
		    "(certificate %s) only: there is no earlier key to keep\n",
		    own_serial);
		goto err;
	}
	rv = 0;
err:
	irp_client_free(c);
	if (p12) {
		OPENSSL_cleanse(p12, len);
		free(p12);
	}
	ca_p12_pairs_free(pairs, n);
	return rv;
}

/* The one line that says what a restore did. */
static void
print_restored(const struct ca_cert_info *own, const char *kept)
{
	char exp[IRP_TIME_LEN];
	char v[2][VIS_BUF];

	irp_time(own->not_after, exp);
	printf("restored %s (%s): this device's certificate %s, expires %s; "
	    "the key%s of certificate%s %s %s kept to read earlier mail\n",
	    VIS(v[0], own->userid), VIS(v[1], own->name), own->serial, exp,
	    strchr(kept, ',') ? "s" : "", strchr(kept, ',') ? "s" : "", kept,
	    strchr(kept, ',') ? "are" : "is");
}

/* What a restore without a backup in the registry did. */
static void
print_no_backup(const struct ca_cert_info *own)
{
	char exp[IRP_TIME_LEN];
	char v[2][VIS_BUF];

	irp_time(own->not_after, exp);
	printf("enrolled %s (%s): this device's certificate %s, expires %s; "
	    "no backup was found in the registry, so no earlier key was "
	    "kept\n", VIS(v[0], own->userid), VIS(v[1], own->name),
	    own->serial, exp);
	fprintf(stderr, "dchat: no backup was found: run dchat backup on the "
	    "earlier device, then dchat restore --backup-only here\n");
}

/*
 * The backup after the enrolment: the code is spent by then, so a backup
 * that can not be had leaves this device with its own, working identity,
 * and the way to try again takes no code.  0, or 1.
 */
static int
restore_after_enrol(const struct keystore *ks, const char *uid,
    const char *pass, const struct identity *id)
{
	char kept[600];

	switch (restore_backup(ks, uid, pass, id->info.serial, kept,
	    sizeof(kept))) {
	case 0:
		print_restored(&id->info, kept);
		return 0;
	case 1:
		print_no_backup(&id->info);
		return 0;
	}
	fprintf(stderr, "dchat: this device is enrolled as %s with a "
	    "certificate of its own (%s) and works, but no earlier key was "
	    "kept; to try again: dchat restore --backup-only "
	    "--passphrase-file F\n", uid, id->info.serial);
	return 1;
}

/*
 * dchat restore: this device enrolled as dchat init does (with a code or
 * the password), so that it has a certificate of its own and its
 * addresses are its own; then the backup, fetched with that
 * certificate, whose key is kept only to read mail sent to the earlier
 * device.
 */
static int
restore_with_enrolment(struct opts *o, const char *uid, const char *pass)
{
	struct identity_proof proof = { .code = o->code };
	struct identity id = { 0 };
	char pw[PASS_MAX], kerr[300];
	struct keystore ks;
	int rv = 1;

	pw[0] = '\0';
	if (o->code == NULL) {
		if (read_secret(o->password_file, pw, sizeof(pw)) == -1)
			goto err;
		proof.password = pw;
	}
	if (ks_open(&ks, o->home, 1, kerr, sizeof(kerr)) == -1) {
		fprintf(stderr, "dchat: %s\n", kerr);
		goto err;
	}
	if (enrol(o, uid, &proof, &ks, &id) == -1)
		goto err;
	rv = restore_after_enrol(&ks, uid, pass, &id);
	escrow(&ks, &id);
err:
	OPENSSL_cleanse(pw, sizeof(pw));
	identity_clear(&id);
	return rv;
}

/* This device's certificate, described into info: 0, or -1. */
static int
own_cert(const struct keystore *ks, struct ca_cert_info *info)
{
	unsigned char *pem = NULL;
	struct ca_err cerr;
	size_t len;
	int rv;

	rv = ks_read_file(ks->cert, KS_FILE_MAX, &pem, &len) == -1 ||
	    ca_cert_info(pem, len, info, &cerr) == -1 ? -1 : 0;
	free(pem);
	return rv;
}

/*
 * dchat restore --backup-only: the backup again, for a device enrolled
 * already (a first try had the wrong passphrase, or the backup came
 * later); its own certificate fetches it.
 */
static int
restore_backup_only(struct opts *o, const char *pass)
{
	struct ca_cert_info own;
	struct keystore ks;
	char kerr[300], kept[600];

	if (ks_open(&ks, o->home, 0, kerr, sizeof(kerr)) == -1) {
		fprintf(stderr, "dchat: %s\n", kerr);
		return 1;
	}
	if (ks.server[0] == '\0' || ks.userid[0] == '\0' ||
	    own_cert(&ks, &own) == -1) {
		fprintf(stderr, "dchat: %s holds no identity to fetch the backup "
		    "with; run dchat restore without --backup-only\n", ks.home);
		return 1;
	}
	switch (restore_backup(&ks, ks.userid, pass, own.serial, kept,
	    sizeof(kept))) {
	case 0:
		print_restored(&own, kept);
		return 0;
	case 1:
		fprintf(stderr, "dchat: the registry holds no backup for %s; "
		    "run dchat backup on the earlier device first\n",
		    ks.userid);
	}
	return 1;
}

static int
cmd_restore(struct opts *o)
{
	char pass[PASS_MAX], uid[IRP_USERID_MAX + 1];
	int rv;

	if (restore_args(o, uid, sizeof(uid)) == -1)
		return 2;
	/* Read before anything is spent: a code is good for one enrolment. */
	if (read_secret(o->passphrase_file, pass, sizeof(pass)) == -1)
		return 2;
	rv = o->backup_only ? restore_backup_only(o, pass) :
	    restore_with_enrolment(o, uid, pass);
	OPENSSL_cleanse(pass, sizeof(pass));
	return rv;
}

/* "valid", "revoked", "expired", ... for a device certificate, checked
 * locally against the CA and the CRL just fetched. */
static const char *
cert_status(const struct keystore *ks, const char *pem)
{
	static char buf[128];

	ca_cert_status(pem, ks->ca, ks->crl, buf, sizeof(buf));
	return buf;
}

/*
 * The status of the device certificate pem of u: against our CA and the
 * CRL, or for a user of another domain against the CA our registry
 * vouches for (kept in v).
 */
static const char *
device_status(const struct keystore *ks, const struct vouch *v,
    const struct irp_user *u, const char *pem)
{
	static char buf[128];

	if (u->via == NULL)
		return cert_status(ks, pem);
	vouch_cert_status(v, u->via->domain, pem, buf, sizeof(buf));
	return buf;
}

/* How dchat lookup --json shows u. */
static json_t *
lookup_json(const struct keystore *ks, const struct vouch *v,
    const struct irp_user *u)
{
	json_t *out, *devs, *addrs;
	size_t i, j;

	devs = json_array();
	out = json_pack("{s:s,s:s,s:s?,s:b,s:o}", "userid", u->userid, "name",
	    u->name, "email", u->email[0] ? u->email : NULL, "online",
	    u->online, "devices", devs);
	if (out != NULL && u->via != NULL)
		json_object_set_new(out, "registry", json_pack("{s:s,s:s,s:s}",
		    "domain", u->via->domain, "trust", u->via->trust,
		    "ca_sha256", u->via->ca_sha256));
	for (i = 0; i < u->ndev; i++) {
		const struct irp_device *d = &u->dev[i];

		addrs = json_array();
		for (j = 0; j < d->naddr; j++)
			json_array_append_new(addrs, json_pack(
			    "{s:s,s:i,s:s,s:s}", "ip", d->addr[j].ip, "port",
			    d->addr[j].port, "kind", d->addr[j].kind,
			    "expires_at", d->addr[j].expires_at));
		json_array_append_new(devs, json_pack("{s:s,s:s,s:s,s:s,s:o}",
		    "serial", d->serial, "fingerprint", d->fingerprint,
		    "not_after", d->not_after, "status",
		    device_status(ks, v, u, d->cert_pem), "addresses", addrs));
	}
	return out;
}

/* How dchat lookup shows u to a person. */
static void
lookup_print(const struct keystore *ks, const struct vouch *v,
    const struct irp_user *u)
{
	char s[3][VIS_BUF];
	size_t i, j;

	/* Every string the registry sent, shown safely (vis.h). */
	printf("%s (%s)%s%s: %s\n", VIS(s[0], u->userid),
	    VIS(s[1], u->name), u->email[0] ? " " : "",
	    VIS(s[2], u->email), u->online ? "online" : "offline");
	if (u->via != NULL)
		printf("  domain %s, CA %s by your registry\n"
		    "    CA SHA-256 %s\n", VIS(s[0], u->via->domain),
		    strcmp(u->via->trust, IRP_TRUST_DANE) == 0 ?
		    "accepted through DANE" : "pinned",
		    VIS(s[1], u->via->ca_sha256));
	for (i = 0; i < u->ndev; i++) {
		const struct irp_device *d = &u->dev[i];

		printf("  device %s: certificate %s, expires %s\n"
		    "    fingerprint %s\n", VIS(s[0], d->serial),
		    device_status(ks, v, u, d->cert_pem),
		    VIS(s[1], d->not_after), VIS(s[2], d->fingerprint));
		for (j = 0; j < d->naddr; j++)
			printf("    %s port %d (%s, until %s)\n",
			    VIS(s[0], d->addr[j].ip), d->addr[j].port,
			    VIS(s[1], d->addr[j].kind),
			    VIS(s[2], d->addr[j].expires_at));
	}
}

static int
cmd_lookup(struct opts *o)
{
	const char *userid = o->args[0];
	struct irp_client *c = NULL;
	struct irp_user *u = NULL;
	struct vouch *v = NULL;
	struct keystore ks;
	struct irp_err err;
	json_t *out = NULL;
	char kerr[300], *t;
	int rv = 1;

	if (ks_open(&ks, o->home, 0, kerr, sizeof(kerr)) == -1) {
		fprintf(stderr, "dchat: %s\n", kerr);
		return 1;
	}
	fetch_crl(&ks); /* the status below should be current */
	if ((c = registry_open(&ks, 1, &err)) == NULL ||
	    irp_lookup(c, userid, &u, &err) == -1) {
		fprintf(stderr, "dchat: %s\n", err.msg);
		goto err;
	}
	/* A user of another domain: as our registry vouches for it. */
	if (u->via != NULL && ((v = vouch_new()) == NULL ||
	    vouch_put(v, userid, u, kerr, sizeof(kerr)) == -1)) {
		fprintf(stderr, "dchat: your registry's answer about %s can "
		    "not be used: %s\n", userid, v ? kerr : "out of memory");
		goto err;
	}
	if (o->json) {
		out = lookup_json(&ks, v, u);
		t = out ? json_dumps(out, JSON_COMPACT) : NULL;
		printf("%s\n", t ? t : "{}");
		free(t);
	} else
		lookup_print(&ks, v, u);
	rv = 0;
err:
	json_decref(out);
	vouch_free(v);
	irp_user_free(u);
	irp_client_free(c);
	return rv;
}

/* Fill the parts of struct app that every peer command shares. */
static int
peer_setup(struct app *a, struct opts *o, enum app_mode mode)
{
	struct ca_cert_info info;
	unsigned char *pem = NULL;
	struct ca_err cerr;
	char kerr[300];
	size_t len, i;

	memset(a, 0, sizeof(*a));
	app_defaults(a);
	ui_attach(a);
	a->mode = mode;
	a->json = o->json;
	/* With a non-empty allow list, unlisted callers may leave one
	 * contact request unless the user turned that off. */
	a->contact_requests = !o->no_requests;
	a->ttl = o->ttl;
	a->stdin_open = 1;
	if (ks_open(&a->ks, o->home, 0, kerr, sizeof(kerr)) == -1) {
		fprintf(stderr, "dchat: %s\n", kerr);
		return -1;
	}
	if (ks_read_file(a->ks.cert, KS_FILE_MAX, &pem, &len) == -1 ||
	    ca_cert_info(pem, len, &info, &cerr) == -1) {
		fprintf(stderr, "dchat: no usable certificate in %s; run dchat "
		    "init\n", a->ks.home);
		free(pem);
		return -1;
	}
	free(pem);
	snprintf(a->userid, sizeof(a->userid), "%s", info.userid);
	snprintf(a->name, sizeof(a->name), "%s", info.name);
	a->env.auto_accept_calls = o->auto_accept;
	a->env.auto_accept_files = o->accept_files;
	for (i = 0; i < o->nlisten; i++)
		if (dial_hostport_parse(o->listen[i], &a->listen[i]) == -1) {
			fprintf(stderr, "dchat: --listen %s: want ADDR:PORT "
			    "([v6]:PORT)\n", o->listen[i]);
			return -1;
		}
	a->nlisten = o->nlisten;
	if (mode == APP_RUN && a->nlisten == 0) {
		(void)dial_addr_parse("::", IRP_PEER_PORT, &a->listen[0]);
		a->nlisten = 1;
	}
	for (i = 0; i < o->nadvertise; i++)
		if (dial_hostport_parse(o->advertise[i], &a->adv[i]) == -1) {
			fprintf(stderr, "dchat: --advertise %s: want ADDR:PORT\n",
			    o->advertise[i]);
			return -1;
		}
	a->nadv = o->nadvertise;
	return app_init(a);
}

/*
 * dchat send and sendfile to a peer that could not be reached: the text
 * or the file as S/MIME in their inbox at the registry (mail.h), shown
 * to them as delivered later.  The exit status.
 */
static int
send_later(struct opts *o, enum app_mode mode, const char *user,
    const char *payload)
{
	struct mail_draft d = { 0 };
	struct irp_client *c = NULL;
	struct irp_inbox_item st;
	struct keystore ks;
	struct irp_err err;
	char kerr[512], msgid[IRP_MSGID_MAX], *msg = NULL;
	size_t len;
	int rv = 1;

	if (ks_open(&ks, o->home, 0, kerr, sizeof(kerr)) == -1)
		return 1;
	d.from = ks.userid;
	d.to = user;
	if (mode == APP_SEND) {
		d.kind = MAIL_KIND_CHAT;
		d.subject = "(chat message)";
		d.text = (const unsigned char *)payload;
		d.text_len = strlen(payload);
	} else {
		d.kind = MAIL_KIND_FILE;
		d.subject = "(file)";
		d.text = (const unsigned char *)"";
		d.attach[d.nattach++] = payload;
	}
	if (mail_compose(&d, msgid, &msg, &len, kerr, sizeof(kerr)) == -1 ||
	    (c = registry_open(&ks, 1, &err)) == NULL ||
	    mail_send(c, &ks, user, msg, len, msgid, &st, kerr,
		sizeof(kerr)) == -1) {
		fprintf(stderr, "dchat: %s can not be reached, nor can the "
		    "%s be left at the registry: %s\n", user,
		    mode == APP_SEND ? "message" : "file",
		    c == NULL && msg != NULL ? err.msg : kerr);
		goto err;
	}
	printf("%s can not be reached now: the %s waits at the registry, "
	    "signed and encrypted, and is delivered later (until %s)\n",
	    user, mode == APP_SEND ? "message" : "file", st.expires_at);
	rv = 0;
err:
	irp_client_free(c);
	free(msg);
	return rv;
}

static int
cmd_peer(struct opts *o, enum app_mode mode, const char *user,
    const char *payload, int mail)
{
	struct app *a;
	int rv;

	/* Large (input buffer): on the heap, not the stack. */
	if ((a = calloc(1, sizeof(*a))) == NULL)
		return 1;
	if (peer_setup(a, o, mode) == -1) {
		app_free(a);
		free(a);
		return 1;
	}
	if (user)
		snprintf(a->target, sizeof(a->target), "%s", user);
	a->payload = payload;
	a->os_mail = mail;
	a->os_deadline = o->timeout > 0 ? time(NULL) + o->timeout : 0;
	rv = app_run(a);
	/*
	 * Nobody answered (offline, or no address reachable): what was to
	 * be sent waits at the registry.  Not when the peer refused us in
	 * TLS: its lists decide, and its dchat applies them to mail too.
	 */
	if (mode != APP_RUN && rv != 0 && a->os_unreached && !mail)
		rv = send_later(o, mode, user, payload);
	app_free(a);
	free(a);
	return rv;
}

static int
cmd_run(struct opts *o)
{
	return cmd_peer(o, APP_RUN, NULL, NULL, 0);
}

static int
cmd_send(struct opts *o)
{
	return cmd_peer(o, APP_SEND, o->args[0], o->args[1], 0);
}

static int
cmd_sendfile(struct opts *o)
{
	return cmd_peer(o, APP_SENDFILE, o->args[0], o->args[1], 0);
}

/* The text of a mail: a file, or standard input for "-". */
static int
mail_text(const char *src, unsigned char **text, size_t *len)
{
	unsigned char *b = NULL, *nb;
	size_t cap = 0, n = 0, r;

	if (strcmp(src, "-") != 0) {
		if (ks_read_file(src, 4 * 1024 * 1024, text, len) == -1) {
			fprintf(stderr, "dchat: cannot read %s: %s\n", src,
			    errno == EFBIG ? "larger than 4 MiB" :
					     strerror(errno));
			return -1;
		}
		return 0;
	}
	do {
		if (n == cap) {
			cap = cap ? cap * 2 : 4096;
			if (cap > 4 * 1024 * 1024 ||
			    (nb = realloc(b, cap + 1)) == NULL) {
				free(b);
				fprintf(stderr, "dchat: the text on standard "
				    "input is larger than 4 MiB\n");
				return -1;
			}
			b = nb;
		}
		r = fread(b + n, 1, cap - n, stdin);
		n += r;
	} while (r > 0);
	b[n] = '\0';
	*text = b;
	*len = n;
	return 0;
}

static int
cmd_mail(struct opts *o)
{
	struct mail_draft d = { 0 };
	struct irp_inbox_item st;
	struct irp_client *c = NULL;
	struct keystore ks;
	struct irp_err err;
	unsigned char *text = NULL;
	char kerr[512], msgid[IRP_MSGID_MAX], *msg = NULL;
	char tmp[KS_PATH_MAX + 200] = "";
	unsigned char *sealed = NULL;
	size_t len, i, slen = 0;
	int rv = 1;

	if (need(o->subject, "--subject") == -1)
		return 2;
	if (ks_open(&ks, o->home, 0, kerr, sizeof(kerr)) == -1) {
		fprintf(stderr, "dchat: %s\n", kerr);
		return 1;
	}
	if (mail_text(o->args[1], &text, &d.text_len) == -1)
		return 1;
	d.from = ks.userid;
	d.to = o->args[0];
	d.subject = o->subject;
	d.text = text;
	for (i = 0; i < o->nattach; i++)
		d.attach[d.nattach++] = o->attach[i];
	if (mail_compose(&d, msgid, &msg, &len, kerr, sizeof(kerr)) == -1) {
		fprintf(stderr, "dchat: %s\n", kerr);
		goto err;
	}
	if ((c = registry_open(&ks, 1, &err)) == NULL) {
		fprintf(stderr, "dchat: %s\n", err.msg);
		goto err;
	}
	if (mail_seal(c, &ks, o->args[0], msg, len, &sealed, &slen, kerr,
	    sizeof(kerr)) == -1) {
		fprintf(stderr, "dchat: mail for %s not sent: %s\n",
		    o->args[0], kerr);
		goto err;
	}
	/* Directly to the recipient if one of their devices answers. */
	if (o->timeout == 0)
		o->timeout = 60;
	snprintf(tmp, sizeof(tmp), "%s/Maildir/tmp/out-%s.p7m", ks.home,
	    msgid);
	if (mail_dirs(&ks) == 0 &&
	    ks_write_file(tmp, sealed, slen, 0600) == 0 &&
	    cmd_peer(o, APP_SENDFILE, o->args[0], tmp, 1) == 0) {
		printf("mail <%s> handed to %s directly (%zu bytes, signed "
		    "and encrypted)\n", msgid, o->args[0], slen);
		rv = 0;
		goto err;
	}
	if (mail_post(c, o->args[0], msgid, sealed, slen, &st, kerr,
	    sizeof(kerr)) == -1) {
		fprintf(stderr, "dchat: mail for %s not sent: %s\n",
		    o->args[0], kerr);
		goto err;
	}
	printf("mail <%s> for %s left at the registry (%lld bytes, "
	    "signed and encrypted); it waits there until %s\n", msgid,
	    o->args[0], st.size, st.expires_at);
	rv = 0;
err:
	if (tmp[0] != '\0')
		(void)unlink(tmp);
	irp_client_free(c);
	free(sealed);
	free(msg);
	free(text);
	return rv;
}

static json_t *
mail_json(size_t n, const struct mail_entry *e)
{
	return json_pack("{s:I,s:s,s:s,s:s,s:s,s:s,s:b,s:s*}", "n",
	    (json_int_t)n, "from", e->from, "to", e->to, "subject", e->subject,
	    "date", e->date, "message_id", e->msgid, "verified",
	    e->rejected[0] == '\0', "rejected",
	    e->rejected[0] ? e->rejected : NULL);
}

/* Fetch what waits (when the registry answers), then list the Maildir. */
static int
cmd_inbox(struct opts *o)
{
	struct mail_entry *e = NULL;
	struct irp_client *c = NULL;
	struct mail_tally t = { 0 };
	struct keystore ks;
	struct irp_err err;
	json_t *arr = NULL;
	char kerr[512], v[4][VIS_BUF], *s;
	size_t n = 0, i;

	if (ks_open(&ks, o->home, 0, kerr, sizeof(kerr)) == -1) {
		fprintf(stderr, "dchat: %s\n", kerr);
		return 1;
	}
	if ((c = registry_open(&ks, 1, &err)) == NULL)
		fprintf(stderr, "dchat: the registry can not be asked for new "
		    "mail: %s\n", err.msg);
	else if (mail_fetch(c, &ks, &t, NULL, NULL, kerr, sizeof(kerr)) == -1)
		fprintf(stderr, "dchat: no new mail fetched: %s\n", kerr);
	irp_client_free(c);
	if (!o->json && (t.kept || t.rejected || t.duplicates || t.left))
		printf("fetched: %d new, %d rejected, %d duplicates dropped, "
		    "%d left at the registry\n", t.kept, t.rejected,
		    t.duplicates, t.left);
	if (mail_list(&ks, &e, &n, kerr, sizeof(kerr)) == -1) {
		fprintf(stderr, "dchat: %s\n", kerr);
		return 1;
	}
	if (o->json)
		arr = json_array();
	for (i = 0; i < n; i++) {
		if (arr != NULL)
			json_array_append_new(arr, mail_json(i + 1, &e[i]));
		else if (e[i].rejected[0])
			printf("%3zu  REJECTED from %s: %s\n", i + 1,
			    VIS(v[0], e[i].from), VIS(v[1], e[i].rejected));
		else
			printf("%3zu  %s  %s  %s\n", i + 1,
			    VIS(v[0], e[i].date), VIS(v[1], e[i].from),
			    VIS(v[2], e[i].subject));
	}
	if (arr != NULL) {
		s = json_dumps(arr, JSON_COMPACT);
		printf("%s\n", s ? s : "[]");
		free(s);
		json_decref(arr);
	} else if (n == 0)
		printf("no mail\n");
	free(e);
	return 0;
}

static int
cmd_inbox_read(struct opts *o)
{
	struct mail_entry *e = NULL;
	struct keystore ks;
	json_t *j;
	char kerr[512], *text = NULL, *s;
	size_t n = 0, len;
	int k, rv = 1;

	if (parse_int(o->args[0], 1, 1000000, &k) == -1) {
		fprintf(stderr, "dchat: inbox N: N is a message's number, as "
		    "'dchat inbox' lists it\n");
		return 2;
	}
	if (ks_open(&ks, o->home, 0, kerr, sizeof(kerr)) == -1 ||
	    mail_list(&ks, &e, &n, kerr, sizeof(kerr)) == -1) {
		fprintf(stderr, "dchat: %s\n", kerr);
		return 1;
	}
	if ((size_t)k > n) {
		fprintf(stderr, "dchat: there is no message %d (%zu kept)\n",
		    k, n);
		goto err;
	}
	if (mail_read(&ks, &e[k - 1], &text, &len, kerr, sizeof(kerr)) ==
	    -1) {
		fprintf(stderr, "dchat: message %d: %s\n", k, kerr);
		goto err;
	}
	if (o->json) {
		j = mail_json((size_t)k, &e[k - 1]);
		json_object_set_new(j, "text", json_stringn(text, len));
		s = json_dumps(j, JSON_COMPACT);
		printf("%s\n", s ? s : "{}");
		free(s);
		json_decref(j);
	} else
		fwrite(text, 1, len, stdout);
	rv = 0;
err:
	free(text);
	free(e);
	return rv;
}

/* The commands: the words that follow each, and its usage line(s). */
static const struct command {
	const char *name;
	int nargs;
	int (*run)(struct opts *);
	const char *usage; /* after the name */
} commands[] = {
	{ "init", 0, cmd_init,
	    "[--server https://HOST:4604 | --dns-server ADDR[@PORT]]\n"
	    "          --user USERID --code CODE --ca-fingerprint SHA256"
	    " [--force]" },
	{ "renew", 0, cmd_renew, "" },
	{ "backup", 0, cmd_backup, "--passphrase-file F" },
	{ "restore", 0, cmd_restore,
	    "[--server URL | --dns-server ADDR[@PORT]] --user USERID\n"
	    "          --ca-fingerprint SHA256\n"
	    "          (--code CODE | --password-file F) --passphrase-file F"
	    " [--force]\n"
	    "  restore --backup-only --passphrase-file F" },
	{ "lookup", 1, cmd_lookup, "USERID [--json]" },
	{ "run", 0, cmd_run,
	    "[--listen ADDR:PORT]... [--advertise ADDR:PORT]... [--json]\n"
	    "      [--ttl SECS] [--auto-accept] [--accept-files]"
	    " [--no-contact-requests]" },
	{ "send", 2, cmd_send, "USERID TEXT [--timeout SECS]" },
	{ "mail", 2, cmd_mail, "USERID FILE|- --subject TEXT [--attach F]..." },
	{ "inbox", 0, cmd_inbox, "[--json]" },
	{ "inbox", 1, cmd_inbox_read, "N [--json]" },
	{ "sendfile", 2, cmd_sendfile, "USERID PATH [--timeout SECS]" },
};
#define NCOMMANDS (sizeof(commands) / sizeof(commands[0]))

static void
usage(FILE *out)
{
	size_t i;

	fputs("usage: dchat [--home DIR] COMMAND ...\n", out);
	for (i = 0; i < NCOMMANDS; i++)
		fprintf(out, "  %s%s%s\n", commands[i].name,
		    commands[i].usage[0] ? " " : "", commands[i].usage);
	fputs("  --help | --version\nSee dchat(1).\n", out);
}

/* The command named name that takes nargs words, or NULL. */
static const struct command *
command_find(const char *name, int nargs)
{
	size_t i;

	for (i = 0; i < NCOMMANDS; i++)
		if (strcmp(commands[i].name, name) == 0 &&
		    commands[i].nargs == nargs)
			return &commands[i];
	return NULL;
}


static const struct option longopts[] = {
	{ "home", required_argument, NULL, 'h' },
	{ "server", required_argument, NULL, 's' },
	{ "dns-server", required_argument, NULL, 'D' },
	{ "user", required_argument, NULL, 'u' },
	{ "code", required_argument, NULL, 'c' },
	{ "ca-fingerprint", required_argument, NULL, 'f' },
	{ "passphrase-file", required_argument, NULL, 'p' },
	{ "password-file", required_argument, NULL, 'P' },
	{ "listen", required_argument, NULL, 'l' },
	{ "advertise", required_argument, NULL, 'a' },
	{ "json", no_argument, NULL, 'j' },
	{ "ttl", required_argument, NULL, 't' },
	{ "auto-accept", no_argument, NULL, 'A' },
	{ "accept-files", no_argument, NULL, 'F' },
	{ "timeout", required_argument, NULL, 'T' },
	{ "force", no_argument, NULL, 'X' },
	{ "backup-only", no_argument, NULL, 'B' },
	{ "no-contact-requests", no_argument, NULL, 'N' },
	{ "subject", required_argument, NULL, 'S' },
	{ "attach", required_argument, NULL, 'M' },
	{ "help", no_argument, NULL, 'H' },
	{ "version", no_argument, NULL, 'V' },
	{ NULL, 0, NULL, 0 },
};

/* An address option's value: a bad address is a usage error. */
static int
addr_opt(const char *opt, const char *arg)
{
	struct dial_addr addr;

	if (dial_hostport_parse(arg, &addr) == -1) {
		fprintf(stderr, "dchat: %s %s: want ADDR:PORT ([v6]:PORT)\n",
		    opt, arg);
		return -1;
	}
	return 0;
}

/* --listen and --advertise: 0, or -1 after saying why. */
static int
take_addr(struct opts *o, int ch, const char *arg)
{
	if (ch == 'l' && o->nlisten == APP_LISTEN_MAX) {
		fprintf(stderr, "dchat: too many --listen\n");
		return -1;
	}
	if (ch == 'a' && o->nadvertise == IRP_ADDR_MAX) {
		fprintf(stderr, "dchat: at most %d --advertise\n",
		    IRP_ADDR_MAX);
		return -1;
	}
	if (addr_opt(ch == 'l' ? "--listen" : "--advertise", arg) == -1)
		return -1;
	if (ch == 'l')
		o->listen[o->nlisten++] = arg;
	else
		o->advertise[o->nadvertise++] = arg;
	return 0;
}

/* One option (not --help or --version): 0, or -1 on a usage error. */
static int
take_opt(struct opts *o, int ch, const char *arg)
{
	switch (ch) {
	case 'h': o->home = arg; break;
	case 's': o->server = arg; break;
	case 'D': o->dns = arg; break;
	case 'u': o->user = arg; break;
	case 'c': o->code = arg; break;
	case 'f': o->fingerprint = arg; break;
	case 'p': o->passphrase_file = arg; break;
	case 'P': o->password_file = arg; break;
	case 'j': o->json = 1; break;
	case 'A': o->auto_accept = 1; break;
	case 'F': o->accept_files = 1; break;
	case 'X': o->force = 1; break;
	case 'B': o->backup_only = 1; break;
	case 'N': o->no_requests = 1; break;
	case 'S': o->subject = arg; break;
	case 'M':
		if (o->nattach == MAIL_ATTACH_MAX) {
			fprintf(stderr, "dchat: at most %d attachments\n",
			    MAIL_ATTACH_MAX);
			return -1;
		}
		o->attach[o->nattach++] = arg;
		break;
	case 'l':
	case 'a':
		return take_addr(o, ch, arg);
	case 't':
		if (parse_int(arg, 30, 86400, &o->ttl) == -1) {
			fprintf(stderr, "dchat: --ttl: 30 to 86400\n");
			return -1;
		}
		break;
	case 'T':
		if (parse_int(arg, 1, 86400, &o->timeout) == -1) {
			fprintf(stderr, "dchat: --timeout: seconds\n");
			return -1;
		}
		break;
	default:
		usage(stderr);
		return -1;
	}
	return 0;
}

int
main(int argc, char **argv)
{
	const struct command *cmd;
	struct opts o = { 0 };
	int ch;

	o.timeout = 120;
	while ((ch = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		if (ch == 'H') {
			usage(stdout);
			return 0;
		}
		if (ch == 'V') {
			printf("dchat %s\n", DIR_VERSION);
			return 0;
		}
		if (take_opt(&o, ch, optarg) == -1)
			return 2;
	}
	if (optind >= argc ||
	    (cmd = command_find(argv[optind], argc - optind - 1)) == NULL) {
		usage(stderr);
		return 2;
	}
	o.args = argv + optind + 1;
	return cmd->run(&o);
}

/*
 * test_peertls.c - which CA a peer is checked against (client/peertls.c)
 * and what one's own registry vouches for another domain
 * (client/vouch.c), with CAs made here: real TLS 1.3 handshakes between
 * two peertls contexts over a socketpair, in one thread.
 *
 * The world: example.org (alice, alice2) and example.net (bob), each
 * with its own CA; an impostor with a CA of its own whose certificate
 * names bob@example.net; carol@example.net certified by example.org's
 * CA, and eve@example.org by example.net's.  Each peer's registry is a
 * struct vouch filled as a lookup's answer would fill it (vouch_put),
 * asked through pt_set_vouch as dchat asks it.
 *
 * Runs in a scratch working directory (the suite gives it one).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/pem.h>
#include <openssl/ssl.h>

#include "ca.h"
#include "peertls.h"
#include "peertls_internal.h"
#include "tap.h"
#include "vouch.h"

#define ORG "example.org"
#define NET "example.net"

/* One dchat home: its keystore, lists, TLS and registry. */
struct peer {
	const char *userid;
	struct keystore ks;
	struct ks_list allow, deny;
	struct peertls *pt;
	char *cert_pem;
	struct vouch *v; /* what its registry vouches for */
	int fail;	 /* its registry can not be asked */
	int asked;	 /* how often it was */
};

static struct ca *org, *net, *evil;
static struct peer alice = { .userid = "alice@" ORG },
		   alice2 = { .userid = "alice2@" ORG },
		   bob = { .userid = "bob@" NET },
		   impostor = { .userid = "bob@" NET },
		   carol = { .userid = "carol@" NET },
		   eve = { .userid = "eve@" ORG };

static struct ca *
make_ca(const char *name)
{
	char key[64], cert[64];
	struct ca_err err;
	struct ca *ca;

	snprintf(key, sizeof(key), "%s-ca.key", name);
	snprintf(cert, sizeof(cert), "%s-ca.pem", name);
	if (ca_create(key, cert, CA_KEY_EC_P256, name, 30, &err) == -1 ||
	    (ca = ca_open(key, cert, &err)) == NULL) {
		diag("CA %s: %s", name, err.msg);
		exit(1);
	}
	return ca;
}

/* Key, certificate (for p->userid, by ca), CA and CRL in dir. */
static void
write_home(struct peer *p, const char *dir, struct ca *ca)
{
	struct ca_subject subj = { p->userid, p->userid, NULL };
	struct ca_issued is;
	struct ca_err cerr;
	unsigned char *crl = NULL;
	char *key, *csr = NULL, err[300];
	size_t crl_len;
	time_t now = time(NULL);

	if (ks_open(&p->ks, dir, 1, err, sizeof(err)) == -1 ||
	    (key = ca_key_new_pem(CA_KEY_EC_P256, &cerr)) == NULL ||
	    (csr = ca_csr_new_pem(key, p->userid, p->userid, &cerr)) == NULL ||
	    ca_issue_user(ca, csr, strlen(csr), &subj, 30, NULL, &is, &cerr) ==
		-1 ||
	    ca_crl_build(ca, NULL, 0, 1, now - 60, now + 3600, &crl, &crl_len,
		&cerr) == -1) {
		diag("home %s: %s", dir, cerr.msg);
		exit(1);
	}
	if (ks_write_file(p->ks.key, key, strlen(key), 0600) == -1 ||
	    ks_write_file(p->ks.cert, is.cert_pem, strlen(is.cert_pem), 0644) ==
		-1 ||
	    ks_write_file(p->ks.ca, ca_cert_pem(ca), strlen(ca_cert_pem(ca)),
		0644) == -1 ||
	    ks_write_file(p->ks.crl, crl, crl_len, 0644) == -1) {
		diag("home %s: cannot write its files", dir);
		exit(1);
	}
	p->cert_pem = strdup(is.cert_pem);
	ca_issued_clear(&is);
	ca_secret_free(key);
	free(csr);
	free(crl);
}

/* How dchat asks its registry (run.c's vouch_check, without the fetch). */
static int
ask(void *arg, const char *userid, const char *fingerprint, X509 **ca,
    char *trust, size_t trustlen, int *listed, time_t *checked, char *why,
    size_t whylen)
{
	struct peer *p = arg;
	const char *t = "";

	p->asked++;
	if (p->fail) {
		snprintf(why, whylen, "it is unreachable");
		return -1;
	}
	if ((*ca = vouch_ca(p->v, strrchr(userid, '@') + 1, &t)) == NULL) {
		snprintf(why, whylen, "the registry says: no federation rule");
		return -1;
	}
	X509_up_ref(*ca);
	snprintf(trust, trustlen, "%s", t);
	*listed = vouch_listed(p->v, userid, fingerprint);
	*checked = vouch_checked(p->v, userid);
	if (!vouch_stale(p->v, userid, why, whylen))
		why[0] = '\0';
	return 0;
}

/* As run.c's vouch_gate_ca. */
static X509 *
gate(void *arg, const char *domain)
{
	struct peer *p = arg;

	return vouch_gate(p->v, domain);
}

static void
peer_start(struct peer *p, const char *dir, struct ca *ca)
{
	char err[300];

	write_home(p, dir, ca);
	if ((p->pt = pt_new(&p->ks, &p->allow, &p->deny, 0, err,
		 sizeof(err))) == NULL ||
	    (p->v = vouch_new()) == NULL) {
		diag("%s: %s", dir, err);
		exit(1);
	}
	pt_set_vouch(p->pt, ask, gate, p);
}

/*
 * What a lookup of userid at p's registry answers: a user of domain,
 * its CA ca trusted by trust, with the certificate cert_pem (NULL:
 * none).  vouch_put's status; err gets its sentence.
 */
static int
answer_at(struct peer *p, const char *userid, const char *domain,
    const char *trust, struct ca *ca, const char *sha, const char *cert_pem,
    const char *checked_at, int stale, char *err, size_t errlen)
{
	struct irp_device dev;
	struct irp_vouch via;
	struct irp_user u;

	memset(&u, 0, sizeof(u));
	memset(&dev, 0, sizeof(dev));
	memset(&via, 0, sizeof(via));
	snprintf(u.userid, sizeof(u.userid), "%s", userid);
	dev.cert_pem = (char *)cert_pem;
	u.dev = &dev;
	u.ndev = cert_pem != NULL;
	u.via = domain != NULL ? &via : NULL;
	snprintf(via.domain, sizeof(via.domain), "%s", domain ? domain : "");
	snprintf(via.trust, sizeof(via.trust), "%s", trust);
	snprintf(via.ca_sha256, sizeof(via.ca_sha256), "%s",
	    sha ? sha : ca_fingerprint(ca));
	via.ca_pem = (char *)ca_cert_pem(ca);
	snprintf(via.checked_at, sizeof(via.checked_at), "%s",
	    checked_at ? checked_at : "");
	via.stale = stale;
	return vouch_put(p->v, userid, &u, err, errlen);
}

/* answer_at, as a registry that does not say when it checked. */
static int
answer(struct peer *p, const char *userid, const char *domain,
    const char *trust, struct ca *ca, const char *sha, const char *cert_pem,
    char *err, size_t errlen)
{
	return answer_at(p, userid, domain, trust, ca, sha, cert_pem, NULL, 0,
	    err, errlen);
}

static void
step(SSL *ssl, int *rc)
{
	int r, e;

	if (*rc != 0)
		return;
	if ((r = SSL_do_handshake(ssl)) == 1) {
		*rc = 1;
		return;
	}
	e = SSL_get_error(ssl, r);
	if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE)
		*rc = -1;
}

/* The result of a call from d to l, who presents l's certificate. */
struct call {
	int ok;
	struct pt_conn dc, lc; /* dialer's and listener's verdicts */
	struct pt_peer dp, lp; /* who each saw, when ok */
};

static void
call(struct peer *d, const char *expect, struct peer *l, struct call *c)
{
	SSL *ssl[2] = { NULL, NULL };
	int sv[2], rc[2] = { 0, 0 }, i;
	char err[256];

	memset(c, 0, sizeof(*c));
	d->asked = l->asked = 0;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv) == -1)
		return;
	ssl[0] = pt_ssl_new(d->pt, sv[0], expect, &c->dc);
	ssl[1] = pt_ssl_new(l->pt, sv[1], NULL, &c->lc);
	for (i = 0; ssl[0] && ssl[1] && i < 1000 && (!rc[0] || !rc[1]); i++) {
		step(ssl[0], &rc[0]);
		step(ssl[1], &rc[1]);
	}
	c->ok = rc[0] == 1 && rc[1] == 1 &&
	    pt_peer_info(ssl[0], &c->dc, &c->dp, err, sizeof(err)) == 0 &&
	    pt_peer_info(ssl[1], &c->lc, &c->lp, err, sizeof(err)) == 0;
	if (!c->ok)
		diag("refused: dialer '%s', listener '%s'", c->dc.reason,
		    c->lc.reason);
	SSL_free(ssl[0]);
	SSL_free(ssl[1]);
	close(sv[0]);
	close(sv[1]);
}

static void
test_domains(void)
{
	static const struct {
		const char *uid, *domain;
		int foreign; /* to alice */
	} t[] = {
		{ "bob@example.net", NET, 1 },
		{ "Bob@Example.NET", NET, 1 },
		{ "alice2@example.org", ORG, 0 },
		{ "alice2@EXAMPLE.org", ORG, 0 },
		{ "x@sub.example.org", "sub.example.org", 1 },
		{ "nobody", "", 0 },
		{ "", "", 0 },
	};
	char d[PT_DOMAIN_MAX];
	size_t i;

	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		pt_uid_domain(t[i].uid, d, sizeof(d));
		checkf(strcmp(d, t[i].domain) == 0 &&
			pt_foreign(alice.pt, t[i].uid) == t[i].foreign,
		    "'%s' is of domain '%s', %s", t[i].uid, t[i].domain,
		    t[i].foreign ? "another" : "not another (ours, or none)");
	}
}

static void
test_vouch_put(void)
{
	char err[256];
	const char *trust = NULL;
	X509 *ca;

	check(answer(&alice, bob.userid, NET, "pinned", net, NULL, bob.cert_pem,
		  err, sizeof(err)) == 0,
	    "vouch: a lookup's answer about bob@example.net is kept");
	ca = vouch_ca(alice.v, NET, &trust);
	check(ca != NULL && strcmp(trust, "pinned") == 0,
	    "vouch: the CA of example.net is kept, pinned");
	check(vouch_ca(alice.v, "example.com", &trust) == NULL,
	    "vouch: no CA of a domain nobody vouched for");
	check(answer(&alice, bob.userid, NULL, "pinned", net, NULL,
		  bob.cert_pem, err, sizeof(err)) == -1 &&
		strstr(err, "names no registry") != NULL,
	    "vouch: an answer without a registry is refused");
	check(answer(&alice, bob.userid, "example.com", "pinned", net, NULL,
		  bob.cert_pem, err, sizeof(err)) == -1 &&
		strstr(err, "not of the user's domain") != NULL,
	    "vouch: a registry of another domain than the user's is refused");
	check(answer(&alice, bob.userid, NET, "pinned", net, "ab", bob.cert_pem,
		  err, sizeof(err)) == -1 &&
		strstr(err, "SHA-256") != NULL,
	    "vouch: a CA that is not the one the answer names is refused");
	check(answer(&alice, bob.userid, NET, "hope", net, NULL, bob.cert_pem,
		  err, sizeof(err)) == -1 &&
		strstr(err, "does not know (hope)") != NULL,
	    "vouch: a basis of trust nobody knows is refused");
	check(vouch_ca(alice.v, NET, &trust) == ca,
	    "vouch: what was refused left the kept CA alone");
}

static void
test_vouch_listed(void)
{
	char err[256], fp[65], status[128];
	struct ca_cert_info info;
	struct ca_err cerr;

	if (ca_cert_info((const unsigned char *)bob.cert_pem,
		strlen(bob.cert_pem), &info, &cerr) == -1)
		return;
	snprintf(fp, sizeof(fp), "%s", info.fingerprint);
	check(vouch_listed(alice.v, bob.userid, fp) &&
		vouch_listed(alice.v, "BOB@example.net", fp),
	    "vouch: bob's certificate is listed for bob");
	check(!vouch_listed(alice.v, "carol@" NET, fp),
	    "vouch: and for nobody else");
	vouch_cert_status(alice.v, NET, bob.cert_pem, status, sizeof(status));
	checkf(strcmp(status, "valid") == 0,
	    "vouch: bob's certificate is "
	    "valid by the CA of example.net (%s)",
	    status);
	vouch_cert_status(alice.v, NET, impostor.cert_pem, status,
	    sizeof(status));
	checkf(strncmp(status, "invalid", 7) == 0,
	    "vouch: the impostor's "
	    "is not (%s)",
	    status);
	check(answer(&alice, bob.userid, NET, "pinned", net, NULL, NULL, err,
		  sizeof(err)) == 0 &&
		!vouch_listed(alice.v, bob.userid, fp),
	    "vouch: a later answer without it (revoked) replaces the list");
}

static void
test_across_domains(void)
{
	char err[256], when[IRP_TIME_LEN];
	struct call c;

	(void)answer(&alice, bob.userid, NET, "pinned", net, NULL, bob.cert_pem,
	    err, sizeof(err));
	(void)answer(&bob, alice.userid, ORG, "dane", org, NULL, alice.cert_pem,
	    err, sizeof(err));
	call(&alice, bob.userid, &bob, &c);
	check(c.ok, "alice@example.org calls bob@example.net: connected");
	checkf(strcmp(c.dp.domain, NET) == 0 &&
		strcmp(c.dp.trust, "pinned") == 0 &&
		strcmp(c.dp.revocation, "lookup") == 0,
	    "alice sees example.net, pinned, revocation by lookup (%s %s %s)",
	    c.dp.domain, c.dp.trust, c.dp.revocation);
	checkf(strcmp(c.lp.domain, ORG) == 0 &&
		strcmp(c.lp.trust, "dane") == 0 &&
		strcmp(c.lp.revocation, "lookup") == 0,
	    "bob sees example.org, by DANE, revocation by lookup (%s %s %s)",
	    c.lp.domain, c.lp.trust, c.lp.revocation);
	check(alice.asked == 1 && bob.asked == 1,
	    "each asked its own registry once, in the handshake");
	call(&bob, alice.userid, &alice, &c);
	check(c.ok, "and the other way round");
	/* Said a minute ago, but asked now: a lookup, as above. */
	irp_time(time(NULL) - 60, when);
	(void)answer_at(&alice, bob.userid, NET, "pinned", net, NULL,
	    bob.cert_pem, when, 0, err, sizeof(err));
	call(&alice, bob.userid, &bob, &c);
	checkf(c.ok && strcmp(c.dp.revocation, "lookup") == 0,
	    "an answer checked now is a lookup (%s)", c.dp.revocation);
	/* Our registry stands in with what example.net said 10 minutes ago. */
	irp_time(time(NULL) - 600, when);
	(void)answer_at(&alice, bob.userid, NET, "pinned", net, NULL,
	    bob.cert_pem, when, 1, err, sizeof(err));
	call(&alice, bob.userid, &bob, &c);
	checkf(c.ok && strcmp(c.dp.revocation, "cached") == 0 &&
		c.dp.revocation_note[0] != '\0' &&
		strstr(c.dp.revocation_note,
		    "the registry of example.net did "
		    "not answer yours; listed as of ") != NULL,
	    "an earlier answer is shown as such (%s: %s)", c.dp.revocation,
	    c.dp.revocation_note);
	check(answer_at(&alice, bob.userid, NET, "pinned", net, NULL,
		  bob.cert_pem, "yesterday", 0, err, sizeof(err)) == -1 &&
		strstr(err, "no time") != NULL,
	    "a checked_at that is no time is refused");
	(void)answer(&alice, bob.userid, NET, "pinned", net, NULL, bob.cert_pem,
	    err, sizeof(err));
}

static void
test_own_domain(void)
{
	struct call c;

	call(&alice, alice2.userid, &alice2, &c);
	check(c.ok && strcmp(c.dp.trust, "own") == 0 &&
		strcmp(c.dp.domain, ORG) == 0 &&
		strcmp(c.dp.revocation, "crl") == 0,
	    "a peer of our own domain: our CA and CRL, trust \"own\"");
	check(alice.asked == 0 && alice2.asked == 0,
	    "and no registry is asked about it for a vouch");
	call(&alice, eve.userid, &eve, &c);
	check(!c.ok && strstr(c.dc.reason, "peer certificate refused") &&
		!strstr(c.dc.reason, "vouches") && alice.asked == 0,
	    "a certificate naming our domain from another domain's CA is "
	    "refused by our CA");
}

static void
test_refusals(void)
{
	char err[256];
	struct call c;
	int i;

	call(&alice, impostor.userid, &impostor, &c);
	checkf(!c.ok &&
		strstr(c.dc.reason,
		    "checked against the CA your "
		    "registry vouches for example.net") != NULL,
	    "an impostor with a CA of its own claiming example.net: %s",
	    c.dc.reason);
	/*
	 * Again and again: past the first, which may ask (the CA of
	 * example.net could have changed), the CA kept refuses it
	 * without a question to the registry.
	 */
	(void)answer(&impostor, alice.userid, ORG, "pinned", org, NULL,
	    alice.cert_pem, err, sizeof(err));
	for (i = 0; i < 5; i++)
		call(&impostor, alice.userid, &alice, &c);
	checkf(!c.ok && alice.asked == 0 &&
		strstr(c.lc.reason, "as it said last") != NULL,
	    "a stranger calling with made-up certificates of example.net "
	    "is refused by the CA kept, our registry not asked (%d; %s)",
	    alice.asked, c.lc.reason);
	(void)answer(&alice, carol.userid, NET, "pinned", net, NULL,
	    carol.cert_pem, err, sizeof(err));
	call(&alice, carol.userid, &carol, &c);
	checkf(!c.ok &&
		strstr(c.dc.reason,
		    "checked against the CA your "
		    "registry vouches for example.net") != NULL,
	    "example.net's user certified by our CA: refused (%s)",
	    c.dc.reason);
	(void)answer(&alice, bob.userid, NET, "pinned", net, NULL, NULL, err,
	    sizeof(err));
	call(&alice, bob.userid, &bob, &c);
	checkf(!c.ok &&
		strstr(c.dc.reason,
		    "the registry of example.net "
		    "does not list it for bob@example.net (revoked, or not this "
		    "user's)") != NULL,
	    "a certificate the lookup no longer lists: "
	    "%s",
	    c.dc.reason);
	alice.fail = 1;
	call(&alice, bob.userid, &bob, &c);
	checkf(!c.ok &&
		strstr(c.dc.reason,
		    "cannot check bob@example.net "
		    "with your registry (it is unreachable)") != NULL,
	    "our registry can not be asked: %s", c.dc.reason);
	alice.fail = 0;
	(void)answer(&alice, bob.userid, NET, "pinned", net, NULL, bob.cert_pem,
	    err, sizeof(err));
	call(&alice, "bob2@" NET, &bob, &c);
	check(!c.ok && strstr(c.dc.reason, "identity mismatch") &&
		alice.asked == 0,
	    "the wrong user answers: refused before the registry is asked");
}

static void
test_lists(void)
{
	struct call c;

	(void)ks_list_add(&alice.deny, "@" NET);
	call(&bob, alice.userid, &alice, &c);
	check(!c.ok &&
		strstr(c.lc.reason,
		    "bob@example.net is on the deny "
		    "list") &&
		alice.asked == 0,
	    "deny @example.net: bob refused, alice's registry not asked");
	(void)ks_list_remove(&alice.deny, "@" NET);
	(void)ks_list_add(&alice.allow, "@example.com");
	call(&bob, alice.userid, &alice, &c);
	check(!c.ok && strstr(c.lc.reason, "is not on the allow list") &&
		alice.asked == 0,
	    "allow @example.com only: bob refused");
	(void)ks_list_add(&alice.allow, "@" NET);
	call(&bob, alice.userid, &alice, &c);
	check(c.ok && !c.lc.restricted && alice.asked == 1,
	    "allow @example.net: bob admitted");
	(void)ks_list_remove(&alice.allow, "@example.com");
	(void)ks_list_remove(&alice.allow, "@" NET);
}

int
main(void)
{
	struct peer *all[] = { &alice, &alice2, &bob, &impostor, &carol, &eve };
	size_t i;

	org = make_ca(ORG);
	net = make_ca(NET);
	evil = make_ca("evil");
	peer_start(&alice, "alice", org);
	peer_start(&alice2, "alice2", org);
	peer_start(&bob, "bob", net);
	peer_start(&impostor, "impostor", evil);
	peer_start(&carol, "carol", org);
	peer_start(&eve, "eve", net);
	test_domains();
	test_vouch_put();
	test_vouch_listed();
	test_across_domains();
	test_own_domain();
	test_refusals();
	test_lists();
	for (i = 0; i < sizeof(all) / sizeof(all[0]); i++) {
		pt_free(all[i]->pt);
		vouch_free(all[i]->v);
		free(all[i]->cert_pem);
	}
	ca_free(org);
	ca_free(net);
	ca_free(evil);
	return tap_done();
}

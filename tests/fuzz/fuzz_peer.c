/*
 * fuzz_peer.c - what dchat reads from the other side and from the
 * registry (client/peertls.c): the peer's certificate, the cached CRL
 * (crl.der) and the registry's OCSP answer.  The first input byte
 * chooses one, the rest is given to it as dchat would.
 *
 * The environment is real and made once: a CA of the registry's own
 * library, a user certificate and a CRL of it, written as a dchat home
 * and loaded with pt_new.  The CA's key is new in every run, so no
 * input can carry its signature.
 *
 * Beyond ASan and UBSan (which see any read past the input, given an
 * exact-size copy): every string read ends within its buffer; the user
 * id the verify callback judges is the one the user is shown; a serial
 * is in the registry's form; a CRL's times are what OpenSSL reads of
 * it, and a CRL we did not sign never lets a certificate verify; and an
 * OCSP answer that does not verify (none can) never says "good", nor
 * anything else: it is never more than "not usable".
 */
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ocsp.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>

#include "ca.h"
#include "fuzz.h"
#include "keystore.h"
#include "peertls.h"
#include "peertls_internal.h"

#define TERMINATED(a) FUZZ_CHECK(memchr((a), '\0', sizeof(a)) != NULL)

enum which { CERT, CRL, OCSP, NWHICH };

static struct keystore ks;
static struct ks_list allow, deny;
static struct peertls *pt;
static X509 *ca_x509, *user_x509;
static char user_serial[41];
static OCSP_REQUEST *req;
static OCSP_CERTID *req_id;

int LLVMFuzzerInitialize(int *argc, char ***argv);

static X509 *
x509_of(const unsigned char *der, size_t len)
{
	const unsigned char *p = der;

	return d2i_X509(NULL, &p, (long)len);
}

static _Noreturn void
fail(const char *what, const char *why)
{
	fprintf(stderr, "fuzz_peer: %s: %s\n", what, why);
	abort();
}

/* A dchat home with a user of a new CA, its CRL, and pt on it. */
static void
setup(void)
{
	char home[] = "/tmp/fuzz_peer.XXXXXX", cakey[64], err[300];
	const struct ca_subject subj = { "alice@example.org", "Alice",
		"alice@example.org" };
	const struct ca_urls urls = { "http://localhost:4606/v1/crl",
		"http://localhost:4606/ocsp", "http://localhost:4606/v1/ca" };
	struct ca_revoked rev = { "1234abcd", 1700000000, 1 };
	struct ca_issued is;
	struct ca_err ce;
	struct ca *ca;
	const unsigned char *der;
	unsigned char *crl;
	char *key, *csr;
	size_t len, crl_len;
	time_t now = time(NULL);

	if (mkdtemp(home) == NULL ||
	    (size_t)snprintf(cakey, sizeof(cakey), "%s/ca.key", home) >=
	    sizeof(cakey) || ks_open(&ks, home, 0, err, sizeof(err)) == -1)
		fail("home", "cannot make one");
	if (ca_create(cakey, ks.ca, CA_KEY_EC_P256, "Fuzz Peer CA", 30,
	    &ce) == -1 || (ca = ca_open(cakey, ks.ca, &ce)) == NULL)
		fail("CA", ce.msg);
	if ((key = ca_key_new_pem(CA_KEY_EC_P256, &ce)) == NULL ||
	    (csr = ca_csr_new_pem(key, subj.userid, subj.name, &ce)) ==
	    NULL || ca_issue_user(ca, csr, strlen(csr), &subj, 30, &urls,
	    &is, &ce) == -1 || ca_crl_build(ca, &rev, 1, 1, now - 60,
	    now + 7 * 86400, &crl, &crl_len, &ce) == -1)
		fail("user", ce.msg);
	if (ks_write_file(ks.key, key, strlen(key), 0600) == -1 ||
	    ks_write_file(ks.cert, is.cert_pem, strlen(is.cert_pem),
	    0644) == -1 || ks_write_file(ks.crl, crl, crl_len, 0644) == -1)
		fail("home", "cannot write it");
	if ((pt = pt_new(&ks, &allow, &deny, 0, err, sizeof(err))) == NULL)
		fail("pt_new", err);
	der = ca_cert_der(ca, &len);
	if ((ca_x509 = x509_of(der, len)) == NULL ||
	    (user_x509 = x509_of(is.der, is.der_len)) == NULL)
		fail("certificates", "cannot read them back");
	snprintf(user_serial, sizeof(user_serial), "%s", is.serial);
	/* What ocsp_ask sends about the user (one nonce for the run). */
	if ((req = OCSP_REQUEST_new()) == NULL ||
	    (req_id = OCSP_cert_to_id(EVP_sha256(), user_x509, ca_x509)) ==
	    NULL || OCSP_request_add0_id(req, OCSP_CERTID_dup(req_id)) ==
	    NULL || OCSP_request_add1_nonce(req, NULL, -1) != 1)
		fail("OCSP request", "cannot build it");
	/* pt has read everything: the directory can go. */
	(void)unlink(ks.key);
	(void)unlink(ks.cert);
	(void)unlink(ks.ca);
	(void)unlink(ks.crl);
	(void)unlink(cakey);
	(void)unlink(ks.config);
	(void)rmdir(home);
	ca_secret_free(key);
	free(csr);
	free(crl);
	ca_issued_clear(&is);
	ca_free(ca);
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	setup();
	return 0;
}

static int
is_hex_serial(const char *s)
{
	size_t i, n = strlen(s);

	if (n < 1 || n > 40 || (s[0] == '0' && n > 1))
		return 0;
	for (i = 0; i < n; i++)
		if (!((s[i] >= '0' && s[i] <= '9') ||
		    (s[i] >= 'a' && s[i] <= 'f')))
			return 0;
	return 1;
}

/* The peer's certificate, as the TLS stack decodes it: all of it. */
static void
check_cert(const unsigned char *der, size_t len)
{
	const unsigned char *p = der;
	struct pt_peer peer;
	OCSP_CERTID *id;
	char uid[256], serial[41], domain[PT_DOMAIN_MAX];
	X509 *x;

	if ((x = d2i_X509(NULL, &p, (long)len)) == NULL)
		return;
	if (p != der + len)
		goto out;
	memset(uid, 'A', sizeof(uid));
	memset(serial, 'A', sizeof(serial));
	memset(&peer, 'A', sizeof(peer));
	pt_cert_uid(x, uid, sizeof(uid));
	TERMINATED(uid);
	/* The domain that chooses the CA a peer is checked against. */
	memset(domain, 'A', sizeof(domain));
	pt_uid_domain(uid, domain, sizeof(domain));
	TERMINATED(domain);
	FUZZ_CHECK(!pt_foreign(pt, uid) || domain[0] != '\0');
	pt_cert_serial(x, serial);
	TERMINATED(serial);
	FUZZ_CHECK(serial[0] == '\0' || is_hex_serial(serial));
	if (pt_cert_describe(x, &peer) == 0) {
		TERMINATED(peer.userid);
		TERMINATED(peer.name);
		TERMINATED(peer.issuer);
		TERMINATED(peer.serial);
		TERMINATED(peer.fingerprint);
		FUZZ_CHECK(strlen(peer.fingerprint) == 64);
		FUZZ_CHECK(strcmp(peer.serial, serial) == 0);
		/*
		 * The verify callback judges uid (the allow and deny lists,
		 * the user called); the user is shown peer.userid.
		 */
		FUZZ_CHECK(strcmp(uid, peer.userid) == 0);
	}
	/* What ocsp_ask would ask about it. */
	if ((id = OCSP_cert_to_id(EVP_sha256(), x, ca_x509)) != NULL)
		OCSP_CERTID_free(id);
out:
	X509_free(x);
}

/* ASN1_TIME t read as dchat does it (0 when absent or unreadable). */
static void
check_time(const ASN1_TIME *t, time_t got)
{
	struct tm tm;

	if (t == NULL || ASN1_TIME_to_tm(t, &tm) != 1)
		FUZZ_CHECK(got == 0);
	else
		FUZZ_CHECK(ASN1_TIME_cmp_time_t(t, got) == 0);
}

/* The cached CRL, as load_store reads crl.der. */
static void
check_crl(const unsigned char *der, size_t len)
{
	const unsigned char *p = der;
	X509_STORE_CTX *sctx = NULL;
	X509_STORE *st = NULL;
	X509_CRL *crl = NULL, *again = NULL;
	time_t last, next;

	if (pt_crl_parse(der, len, &crl, &last, &next) == -1) {
		FUZZ_CHECK(crl == NULL && last == 0 && next == 0);
		goto out;
	}
	FUZZ_CHECK(crl != NULL);
	/* The CRL OpenSSL reads of the same bytes, and its times. */
	FUZZ_CHECK((again = d2i_X509_CRL(NULL, &p, (long)len)) != NULL);
	FUZZ_CHECK(X509_CRL_cmp(crl, again) == 0);
	check_time(X509_CRL_get0_lastUpdate(again), last);
	check_time(X509_CRL_get0_nextUpdate(again), next);
	/*
	 * Installed as load_store installs it, it never lets the user's
	 * certificate verify: no input is signed by this run's CA.
	 */
	if ((st = X509_STORE_new()) == NULL ||
	    X509_STORE_add_cert(st, ca_x509) != 1 ||
	    X509_STORE_add_crl(st, crl) != 1 ||
	    X509_STORE_set_flags(st, X509_V_FLAG_CRL_CHECK) != 1 ||
	    (sctx = X509_STORE_CTX_new()) == NULL ||
	    X509_STORE_CTX_init(sctx, st, user_x509, NULL) != 1)
		goto out;
	FUZZ_CHECK(X509_verify_cert(sctx) != 1);
out:
	X509_STORE_CTX_free(sctx);
	X509_STORE_free(st);
	X509_CRL_free(again);
	X509_CRL_free(crl);
}

/* The registry's answer to our request about the user's certificate. */
static void
check_ocsp(const unsigned char *der, size_t len)
{
	struct pt_conn pc;
	int r;

	memset(&pc, 0, sizeof(pc));
	pc.pt = pt;
	r = pt_ocsp_judge(pt, &pc, der, len, req, req_id, ca_x509,
	    user_serial);
	FUZZ_CHECK(r == -1);
	TERMINATED(pc.rev_why);
	FUZZ_CHECK(pc.rev_why[0] != '\0');
	FUZZ_CHECK(pc.reason[0] == '\0');
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	unsigned char *buf;
	enum which w;

	if (size < 1)
		return 0;
	w = (enum which)(data[0] % NWHICH);
	data++;
	size--;
	/* An exact-size copy, so ASan sees any read past the input. */
	if ((buf = malloc(size ? size : 1)) == NULL)
		return 0;
	memcpy(buf, data, size);
	switch (w) {
	case CERT:
		check_cert(buf, size);
		break;
	case CRL:
		check_crl(buf, size);
		break;
	default:
		check_ocsp(buf, size);
		break;
	}
	free(buf);
	ERR_clear_error();
	return 0;
}

/*
 * test_signer.c - the CA signer (ca_signer.h): a signer process on a
 * socketpair, as dird runs one, signs what the CA builds and refuses a
 * CA certificate, a certificate of another issuer, garbage, and a peer
 * that breaks the protocol; when it is gone, signing fails plainly.
 *
 * TAP through tap.h.  The to-be-signed objects the signer must refuse
 * are made here with OpenSSL directly, as an attacker in dird would.
 */
#include <sys/socket.h>
#include <sys/wait.h>

#include <errno.h>
#include <ftw.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "ca.h"
#include "ca_signer.h"
#include "tap.h"

static char dir[64];
static char key_path[128], cert_path[128];

/* A signer process on a socketpair: its pid, and our end in *fd. */
static pid_t
signer_fork(const char *key, int *fd)
{
	struct ca_signer *s;
	struct ca_err e;
	int sv[2], rv;
	pid_t pid;

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == -1)
		return -1;
	if ((pid = fork()) == -1)
		return -1;
	if (pid == 0) {
		close(sv[0]);
		/* The key is read in the child only, as in dird. */
		if ((s = ca_signer_open_key(key, cert_path, &e)) == NULL) {
			(void)ca_signer_refuse(sv[1], &e);
			_exit(3);
		}
		rv = ca_signer_serve(s, sv[1], &e);
		ca_signer_free(s);
		_exit(rv == 0 ? 0 : 1);
	}
	close(sv[1]);
	*fd = sv[0];
	return pid;
}

static int
exit_status(pid_t pid)
{
	int st;

	if (waitpid(pid, &st, 0) != pid)
		return -1;
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/*
 * The DER TBSCertificate of a certificate issued by the test CA's name
 * for a new key, with the extension given in OpenSSL's configuration
 * syntax (NULL: none) and issuer as given (NULL: the CA's).  Encoded
 * by signing with a throwaway key of the CA's kind, which fills in the
 * signature algorithm.
 */
static unsigned char *
tbs_cert(X509 *ca, int nid, const char *value, const char *issuer_cn, int *len)
{
	EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	X509_NAME *subj = X509_NAME_new(), *iss = NULL;
	X509_EXTENSION *ext = NULL;
	unsigned char *der = NULL;
	X509V3_CTX ctx;
	X509 *x = X509_new();

	X509_NAME_add_entry_by_txt(subj, "CN", MBSTRING_ASC,
	    (const unsigned char *)"Mallory CA", -1, -1, 0);
	if (issuer_cn != NULL) {
		iss = X509_NAME_new();
		X509_NAME_add_entry_by_txt(iss, "CN", MBSTRING_ASC,
		    (const unsigned char *)issuer_cn, -1, -1, 0);
	}
	X509_set_version(x, X509_VERSION_3);
	ASN1_INTEGER_set(X509_get_serialNumber(x), 4711);
	X509_set_issuer_name(x, iss != NULL ? iss : X509_get_subject_name(ca));
	X509_set_subject_name(x, subj);
	X509_gmtime_adj(X509_getm_notBefore(x), 0);
	X509_gmtime_adj(X509_getm_notAfter(x), 86400);
	X509_set_pubkey(x, k);
	if (nid != NID_undef) {
		X509V3_set_ctx(&ctx, ca, x, NULL, NULL, 0);
		ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
		X509_add_ext(x, ext, -1);
	}
	X509_sign(x, k, EVP_sha256());
	*len = i2d_re_X509_tbs(x, &der);
	X509_EXTENSION_free(ext);
	X509_NAME_free(subj);
	X509_NAME_free(iss);
	X509_free(x);
	EVP_PKEY_free(k);
	return der;
}

/* A signature for a refused TBS: the code and a word of the message. */
static void
refused(struct ca_signer *s, const unsigned char *tbs, size_t len,
    enum ca_errcode code, const char *word, const char *what)
{
	unsigned char sig[CA_SIG_MAX];
	struct ca_err e;
	size_t n;
	int rv;

	rv = ca_signer_sign(s, CA_TBS_CERT, tbs, len, sig, &n, &e);
	checkf(rv == -1 && e.code == code && strstr(e.msg, word) != NULL,
	    "the signer refuses %s", what);
	if (rv != -1 || e.code != code)
		diag("rv %d, code %d: %s", rv, (int)e.code, e.msg);
}

/* Issue a user certificate through ca; 0 if it is ours. */
static int
issue(struct ca *ca, struct ca_err *e)
{
	static const struct ca_subject subj = { "alice@example.org",
		"Alice Example", NULL };
	struct ca_issued is;
	char *key, *csr;
	int rv = -1;

	if ((key = ca_key_new_pem(CA_KEY_EC_P256, e)) == NULL)
		return -1;
	if ((csr = ca_csr_new_pem(key, subj.userid, subj.name, e)) != NULL &&
	    ca_issue_user(ca, csr, strlen(csr), &subj, 30, NULL, &is, e) == 0) {
		rv = ca_cert_is_ours(ca, is.der, is.der_len, e) == 1 ? 0 : -1;
		ca_issued_clear(&is);
	}
	free(csr);
	ca_secret_free(key);
	return rv;
}

/* The CA works through a signer process, and its key never came here. */
static void
test_remote_ca(void)
{
	struct ca_revoked rev = { "1234abcd", 0, 1 };
	struct ca_signer *s;
	unsigned char *der = NULL;
	struct ca_err e;
	struct ca *ca;
	size_t len;
	pid_t pid;
	int fd;

	if ((pid = signer_fork(key_path, &fd)) == -1) {
		check(0, "fork a signer");
		return;
	}
	s = ca_signer_open_remote(fd, &e);
	check(s != NULL, "the signer process says it is ready");
	ca = s != NULL ? ca_open_signer(cert_path, s, &e) : NULL;
	check(ca != NULL,
	    "ca_open_signer: a CA whose key is in another "
	    "process");
	if (ca == NULL) {
		diag("%s", e.msg);
		return;
	}
	check(issue(ca, &e) == 0,
	    "a user certificate issued through the "
	    "signer process verifies with the CA");
	rev.revoked_at = time(NULL);
	check(ca_crl_build(ca, &rev, 1, 1, time(NULL), time(NULL) + 3600, &der,
		  &len, &e) == 0 &&
		len > 0,
	    "a CRL is signed through the "
	    "signer process");
	free(der);
	ca_free(ca);
	check(exit_status(pid) == 0,
	    "the signer process exits 0 when the "
	    "CA is freed (end of stream)");
}
/* How tbs_made varies the certificate it encodes. */
enum variant {
	V_CA_KEY,	     /* the CA's own public key */
	V_CA_KEY_COMPRESSED, /* ... as a compressed point */
	V_CA_NAME,	     /* the CA's own subject name */
	V_UNKNOWN_EXT,	     /* an extension this CA never issues */
	V_TWICE,	     /* keyUsage twice */
	V_V1,		     /* a version 1 certificate */
	V_LONG,		     /* valid for over a hundred years */
};

/* A TBSCertificate of this CA's issuer name, with one thing wrong. */
static unsigned char *
tbs_made(X509 *ca, enum variant v, int *len)
{
	EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	EVP_PKEY *pub = NULL;
	X509_NAME *subj = X509_NAME_new();
	X509_EXTENSION *ext = NULL;
	unsigned char *der = NULL;
	X509V3_CTX ctx;
	X509 *x = X509_new();

	X509_NAME_add_entry_by_txt(subj, "CN", MBSTRING_ASC,
	    (const unsigned char *)"Mallory", -1, -1, 0);
	X509_set_version(x, v == V_V1 ? X509_VERSION_1 : X509_VERSION_3);
	ASN1_INTEGER_set(X509_get_serialNumber(x), 4712);
	X509_set_issuer_name(x, X509_get_subject_name(ca));
	X509_set_subject_name(x,
	    v == V_CA_NAME ? X509_get_subject_name(ca) : subj);
	X509_gmtime_adj(X509_getm_notBefore(x), 0);
	X509_gmtime_adj(X509_getm_notAfter(x),
	    v == V_LONG ? 36600L * 86400 : 86400);
	if (v == V_CA_KEY || v == V_CA_KEY_COMPRESSED) {
		pub = EVP_PKEY_dup(X509_get0_pubkey(ca));
		if (v == V_CA_KEY_COMPRESSED)
			EVP_PKEY_set_utf8_string_param(pub,
			    OSSL_PKEY_PARAM_EC_POINT_CONVERSION_FORMAT,
			    "compressed");
		X509_set_pubkey(x, pub);
	} else {
		X509_set_pubkey(x, k);
	}
	X509V3_set_ctx(&ctx, ca, x, NULL, NULL, 0);
	if (v == V_UNKNOWN_EXT)
		ext = X509V3_EXT_conf_nid(NULL, &ctx, NID_netscape_comment,
		    "hello");
	else if (v != V_V1)
		ext = X509V3_EXT_conf_nid(NULL, &ctx, NID_key_usage,
		    "digitalSignature");
	if (ext != NULL)
		X509_add_ext(x, ext, -1);
	if (v == V_TWICE)
		X509_add_ext(x, ext, -1);
	X509_sign(x, k, EVP_sha256());
	*len = i2d_re_X509_tbs(x, &der);
	X509_EXTENSION_free(ext);
	X509_NAME_free(subj);
	X509_free(x);
	EVP_PKEY_free(pub);
	EVP_PKEY_free(k);
	return der;
}

static void
test_refusals(struct ca_signer *s, X509 *ca)
{
	static const struct {
		enum variant v;
		enum ca_errcode code;
		const char *word, *what;
	} made[] = {
		{ V_CA_KEY, CA_ERR_POLICY, "own name or key",
		    "a certificate for the CA's own key" },
		{ V_CA_KEY_COMPRESSED, CA_ERR_POLICY, "own name or key",
		    "the CA's key written as a compressed point" },
		{ V_CA_NAME, CA_ERR_POLICY, "own name or key",
		    "a certificate with the CA's own name" },
		{ V_UNKNOWN_EXT, CA_ERR_POLICY, "never issues",
		    "an extension this CA never issues" },
		{ V_TWICE, CA_ERR_INVALID, "twice", "an extension twice" },
		{ V_V1, CA_ERR_INVALID, "version", "a version 1 certificate" },
		{ V_LONG, CA_ERR_POLICY, "days",
		    "over 36500 days of validity" },
	};
	size_t i;

	static const unsigned char junk[] = "not a certificate at all";
	unsigned char *tbs;
	int len;

	tbs = tbs_cert(ca, NID_basic_constraints, "critical,CA:TRUE", NULL,
	    &len);
	refused(s, tbs, (size_t)len, CA_ERR_POLICY, "CA certificate",
	    "a CA certificate (basicConstraints CA:TRUE)");
	OPENSSL_free(tbs);
	tbs = tbs_cert(ca, NID_key_usage, "critical,keyCertSign", NULL, &len);
	refused(s, tbs, (size_t)len, CA_ERR_POLICY, "CA certificate",
	    "a certificate with keyUsage keyCertSign");
	OPENSSL_free(tbs);
	tbs = tbs_cert(ca, NID_key_usage, "cRLSign", NULL, &len);
	refused(s, tbs, (size_t)len, CA_ERR_POLICY, "CA certificate",
	    "a certificate with keyUsage cRLSign");
	OPENSSL_free(tbs);
	tbs = tbs_cert(ca, NID_basic_constraints, "CA:FALSE", "Other CA", &len);
	refused(s, tbs, (size_t)len, CA_ERR_POLICY, "issuer",
	    "a certificate of another issuer");
	OPENSSL_free(tbs);
	refused(s, junk, sizeof(junk), CA_ERR_INVALID, "DER",
	    "bytes that are no TBSCertificate");
	tbs = tbs_cert(ca, NID_basic_constraints, "CA:FALSE", NULL, &len);
	refused(s, tbs, (size_t)len - 3, CA_ERR_INVALID, "DER",
	    "a truncated TBSCertificate");
	OPENSSL_free(tbs);
	for (i = 0; i < sizeof(made) / sizeof(made[0]); i++) {
		tbs = tbs_made(ca, made[i].v, &len);
		refused(s, tbs, (size_t)len, made[i].code, made[i].word,
		    made[i].what);
		OPENSSL_free(tbs);
	}
}

/*
 * Every signer refuses the same: the key in this process, and remote.
 * The CA certificate is held by a global: a signer process forked here
 * must find it reachable too when a leak checker looks at its exit.
 */
static X509 *cert;

static void
test_policy(void)
{
	struct ca_signer *local, *remote;
	struct ca_err e;
	struct ca *ca;
	FILE *fp;
	pid_t pid;
	int fd;

	if ((fp = fopen(cert_path, "r")) == NULL ||
	    (cert = PEM_read_X509(fp, NULL, NULL, NULL)) == NULL) {
		check(0, "read the CA certificate");
		return;
	}
	fclose(fp);
	local = ca_signer_open_key(key_path, cert_path, &e);
	check(local != NULL, "ca_signer_open_key");
	diag("the key in this process");
	if (local != NULL)
		test_refusals(local, cert);
	ca_signer_free(local);
	diag("the signer process");
	pid = signer_fork(key_path, &fd);
	if ((remote = ca_signer_open_remote(fd, &e)) != NULL) {
		test_refusals(remote, cert);
		/* Refusals are answers: the signer still signs after them. */
		ca = ca_open_signer(cert_path, remote, &e);
		check(ca != NULL && issue(ca, &e) == 0,
		    "after refusing, the "
		    "signer process still signs a user certificate");
		ca_free(ca);
	} else {
		check(0, "the signer process says it is ready");
	}
	check(exit_status(pid) == 0, "and exits 0 at the end of the stream");
	X509_free(cert);
	cert = NULL;
}

/* Raw bytes to a fresh signer process; what comes back, and its exit. */
static void
raw(const void *msg, size_t len, int half_close, const char *what)
{
	struct ca_signer_hdr h;
	unsigned char buf[8192];
	ssize_t n;
	size_t got = 0;
	pid_t pid;
	int fd, saw_error, st;

	if ((pid = signer_fork(key_path, &fd)) == -1)
		return;
	/* The greeting: a READY and the key. */
	if (read(fd, &h, sizeof(h)) != (ssize_t)sizeof(h) ||
	    h.type != CA_SIGNER_READY || h.len > sizeof(buf) ||
	    read(fd, buf, h.len) != (ssize_t)h.len) {
		checkf(0, "%s: the greeting", what);
		return;
	}
	if (write(fd, msg, len) != (ssize_t)len)
		diag("write: %s", strerror(errno));
	if (half_close)
		shutdown(fd, SHUT_WR);
	while ((n = read(fd, buf + got, sizeof(buf) - got)) > 0)
		got += (size_t)n;
	memcpy(&h, buf, got >= sizeof(h) ? sizeof(h) : 0);
	saw_error = got >= sizeof(h) && h.type == CA_SIGNER_ERROR;
	st = exit_status(pid);
	checkf((saw_error || half_close) && st != 0,
	    "the signer process "
	    "refuses %s and stops (answer %s, exit %d)",
	    what,
	    saw_error	 ? "ERROR" :
		got == 0 ? "none" :
			   "other",
	    st);
	close(fd);
}

static void
test_protocol(void)
{
	struct ca_signer_hdr h;
	unsigned char msg[sizeof(h) + 16];

	h.type = 99;
	h.len = 4;
	memcpy(msg, &h, sizeof(h));
	memset(msg + sizeof(h), 'x', 4);
	raw(msg, sizeof(h) + 4, 0, "an unknown message type");
	h.type = CA_SIGNER_SIG;
	memcpy(msg, &h, sizeof(h));
	raw(msg, sizeof(h) + 4, 0, "a message only it may send");
	h.type = CA_SIGNER_SIGN_CERT;
	h.len = CA_TBS_MAX + 1;
	memcpy(msg, &h, sizeof(h));
	raw(msg, sizeof(h), 0, "a request longer than the limit");
	h.len = 0;
	memcpy(msg, &h, sizeof(h));
	raw(msg, sizeof(h), 0, "an empty request");
	h.len = 100;
	memcpy(msg, &h, sizeof(h));
	memset(msg + sizeof(h), 0x30, 16);
	raw(msg, sizeof(h) + 16, 1, "a request cut short");
	raw("\x01\x02\x03", 3, 1, "a header cut short");
}

/* When the signer process is gone, signing fails with a plain reason. */
static void
test_gone(void)
{
	struct ca_signer *s;
	struct ca_err e;
	struct ca *ca;
	pid_t pid;
	int fd;

	pid = signer_fork(key_path, &fd);
	if ((s = ca_signer_open_remote(fd, &e)) == NULL ||
	    (ca = ca_open_signer(cert_path, s, &e)) == NULL) {
		check(0, "a CA on a signer process");
		return;
	}
	kill(pid, SIGKILL);
	exit_status(pid);
	check(issue(ca, &e) == -1 && e.code == CA_ERR_UNAVAILABLE &&
		strstr(e.msg, "signer process") != NULL,
	    "with its signer "
	    "process killed, issuing fails with CA_ERR_UNAVAILABLE");
	diag("%s", e.msg);
	check(issue(ca, &e) == -1 && e.code == CA_ERR_UNAVAILABLE,
	    "and "
	    "again, at once");
	ca_free(ca);

	/* A signer process that could not load its key says why. */
	pid = signer_fork("/nonexistent/ca.key", &fd);
	s = ca_signer_open_remote(fd, &e);
	check(s == NULL && e.code == CA_ERR_IO &&
		strstr(e.msg, "/nonexistent/ca.key") != NULL,
	    "a signer process "
	    "without its key says why it could not start");
	diag("%s", e.msg);
	ca_signer_free(s);
	exit_status(pid);
}

static int
rm_one(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(p);
}

int
main(void)
{
	struct ca_err e;

	/* A write to a signer process that died must not kill us. */
	signal(SIGPIPE, SIG_IGN);
	snprintf(dir, sizeof(dir), "/tmp/test_signer.XXXXXX");
	if (mkdtemp(dir) == NULL) {
		perror("mkdtemp");
		return 1;
	}
	snprintf(key_path, sizeof(key_path), "%s/ca.key", dir);
	snprintf(cert_path, sizeof(cert_path), "%s/ca.pem", dir);
	check(ca_create(key_path, cert_path, CA_KEY_EC_P256, "DIR Test CA", 365,
		  &e) == 0,
	    "ca_create");
	test_remote_ca();
	test_policy();
	test_protocol();
	test_gone();
	nftw(dir, rm_one, 8, FTW_DEPTH | FTW_PHYS);
	return tap_done();
}

/*
 * test_ca.c - unit tests of the CA library.
 *
 * TAP through tap.h: one line per check, a non-zero exit if any failed.
 * Everything happens in a temporary directory, removed at the end unless
 * TEST_CA_KEEP is set (handy for running openssl or certtool on the
 * results by hand).  The tests use OpenSSL directly to make inputs the
 * library must refuse and to look inside what it produced.
 */
#include <sys/stat.h>

#include <arpa/inet.h>

#include <ctype.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ocsp.h>
#include <openssl/pem.h>
#include <openssl/pkcs12.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "ca.h"
#include "tap.h"

#define DAYS 30
#define CRL_URL "http://dir.example.org:4606/v1/crl"
#define OCSP_URL "http://dir.example.org:4606/ocsp"
#define CA_URL "http://dir.example.org:4606/v1/ca"
static const struct ca_urls URLS = { CRL_URL, OCSP_URL, CA_URL };
#define PASS "correct horse battery staple"

static char dir[64];

/*
 * A check whose failure is worth the library's message.  One that failed
 * on what a successful call gave has none.
 */
static void
check_err(int cond, const struct ca_err *err, const char *what)
{
	check(cond, what);
	if (!cond && err->code != CA_ERR_NONE)
		diag("code %d: %s", (int)err->code, err->msg);
}

static char *
path(const char *name)
{
	static char buf[8][256];
	static int i;

	i = (i + 1) % 8;
	snprintf(buf[i], sizeof(buf[i]), "%s/%s", dir, name);
	return buf[i];
}

static int
file_mode(const char *p)
{
	struct stat st;

	if (stat(p, &st) == -1)
		return -1;
	return (int)(st.st_mode & 07777);
}

static int
exists(const char *p)
{
	struct stat st;

	return lstat(p, &st) == 0;
}

static int
is_lower_hex(const char *s, size_t min, size_t max)
{
	size_t n = strlen(s), i;

	if (n < min || n > max)
		return 0;
	for (i = 0; i < n; i++)
		if (!isxdigit((unsigned char)s[i]) ||
		    isupper((unsigned char)s[i]))
			return 0;
	return 1;
}

static int
write_file(const char *p, const void *buf, size_t len)
{
	FILE *f;
	int rv;

	if ((f = fopen(p, "wb")) == NULL)
		return -1;
	rv = fwrite(buf, 1, len, f) == len ? 0 : -1;
	if (fclose(f) != 0)
		rv = -1;
	return rv;
}

static X509 *
x509_from_pem(const char *pem)
{
	BIO *bio = BIO_new_mem_buf(pem, -1);
	X509 *x = bio != NULL ? PEM_read_bio_X509(bio, NULL, NULL, NULL) : NULL;

	BIO_free(bio);
	return x;
}

/* Contents of a memory BIO as a malloc'd string. */
static char *
bio_string(BIO *bio)
{
	char *data, *s;
	long n = BIO_get_mem_data(bio, &data);

	if (n < 0 || (s = malloc((size_t)n + 1)) == NULL)
		return NULL;
	memcpy(s, data, (size_t)n);
	s[n] = '\0';
	return s;
}

/* A CSR made by OpenSSL directly, for keys the library would not make. */
static char *
csr_for_key(EVP_PKEY *key)
{
	X509_REQ *req = X509_REQ_new();
	X509_NAME *name = X509_NAME_new();
	BIO *bio = BIO_new(BIO_s_mem());
	char *s = NULL;

	if (req == NULL || name == NULL || bio == NULL ||
	    !X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
	    (const unsigned char *)"someone", -1, -1, 0) ||
	    !X509_REQ_set_subject_name(req, name) ||
	    !X509_REQ_set_pubkey(req, key) ||
	    X509_REQ_sign(req, key, EVP_sha256()) <= 0 ||
	    !PEM_write_bio_X509_REQ(bio, req))
		goto out;
	s = bio_string(bio);
 out:
	BIO_free(bio);
	X509_NAME_free(name);
	X509_REQ_free(req);
	return s;
}

static EVP_PKEY *
dsa_key(void)
{
	EVP_PKEY_CTX *pctx = NULL, *kctx = NULL;
	EVP_PKEY *params = NULL, *key = NULL;

	/* 1024-bit parameters are quick to make; DSA is refused by type. */
	if ((pctx = EVP_PKEY_CTX_new_from_name(NULL, "DSA", NULL)) == NULL ||
	    EVP_PKEY_paramgen_init(pctx) <= 0 ||
	    EVP_PKEY_CTX_set_dsa_paramgen_bits(pctx, 1024) <= 0 ||
	    EVP_PKEY_paramgen(pctx, &params) <= 0 ||
	    (kctx = EVP_PKEY_CTX_new_from_pkey(NULL, params, NULL)) == NULL ||
	    EVP_PKEY_keygen_init(kctx) <= 0 ||
	    EVP_PKEY_keygen(kctx, &key) <= 0)
		key = NULL;
	EVP_PKEY_CTX_free(kctx);
	EVP_PKEY_CTX_free(pctx);
	EVP_PKEY_free(params);
	return key;
}

/*
 * A valid CSR with one byte flipped, re-encoded as PEM: the last byte of
 * its signature, or (in_key) the last byte of its public key, which puts
 * an EC point off its curve.
 */
static char *
tampered_csr(const char *pem, int in_key)
{
	BIO *in = BIO_new_mem_buf(pem, -1), *out = BIO_new(BIO_s_mem());
	X509_REQ *req = NULL;
	unsigned char *der = NULL, *at;
	const unsigned char *pub;
	int len, publen;
	char *s = NULL;

	if (in == NULL || out == NULL ||
	    (req = PEM_read_bio_X509_REQ(in, NULL, NULL, NULL)) == NULL ||
	    (len = i2d_X509_REQ(req, &der)) <= 0)
		goto err;
	if (in_key) {
		if (!X509_PUBKEY_get0_param(NULL, &pub, &publen, NULL,
		    X509_REQ_get_X509_PUBKEY(req)) ||
		    (at = memmem(der, (size_t)len, pub, (size_t)publen)) ==
		    NULL)
			goto err;
		at[publen - 1] ^= 0x01;
	} else {
		/* The signature is the last thing in the DER. */
		der[len - 1] ^= 0x01;
	}
	if (!PEM_write_bio(out, "CERTIFICATE REQUEST", "", der, len))
		goto err;
	s = bio_string(out);
 err:
	OPENSSL_free(der);
	X509_REQ_free(req);
	BIO_free(in);
	BIO_free(out);
	return s;
}

/* Does the cert's SAN hold a name of this type and value? */
static int
san_has(X509 *x, int type, const void *val, int len)
{
	GENERAL_NAMES *gens;
	const GENERAL_NAME *gn;
	const ASN1_STRING *s;
	int i, found = 0;

	gens = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
	for (i = 0; i < sk_GENERAL_NAME_num(gens); i++) {
		gn = sk_GENERAL_NAME_value(gens, i);
		if (gn->type != type)
			continue;
		s = gn->d.ia5;	/* all three are ASN1_STRINGs */
		if (ASN1_STRING_length(s) == len &&
		    memcmp(ASN1_STRING_get0_data(s), val, (size_t)len) == 0)
			found = 1;
	}
	GENERAL_NAMES_free(gens);
	return found;
}

/* The keyUsage a user key of type kt gets, as a configuration string. */
static const char *
key_usage(enum ca_keytype kt)
{
	switch (kt) {
	case CA_KEY_RSA2048:
	case CA_KEY_RSA3072:
		return "critical,digitalSignature,keyEncipherment";
	case CA_KEY_EC_P256:
	case CA_KEY_EC_P384:
		return "critical,digitalSignature,keyAgreement";
	default:
		return "critical,digitalSignature";
	}
}

/*
 * The extensions of leaf x, in order, are exactly (DER) what OpenSSL's
 * configuration strings below give: dird builds the constant ones
 * once per CA and the key identifier itself.
 */
static int
leaf_ext_as_designed(const char *ca_pem, X509 *x, enum ca_keytype kt,
    const char *eku)
{
	const struct {
		int nid;
		const char *value;
	} want[] = {
		{ NID_basic_constraints, "critical,CA:FALSE" },
		{ NID_key_usage, key_usage(kt) },
		{ NID_ext_key_usage, eku },
		{ NID_subject_key_identifier, "hash" },
		{ NID_authority_key_identifier, "keyid" },
	};
	X509 *cax = x509_from_pem(ca_pem);
	X509_EXTENSION *e;
	X509V3_CTX ctx;
	unsigned char *a = NULL, *b = NULL;
	int alen, blen, i, ok = cax != NULL;

	X509V3_set_ctx(&ctx, cax, x, NULL, NULL, 0);
	for (i = 0; ok && i < (int)(sizeof(want) / sizeof(want[0])); i++) {
		e = X509V3_EXT_conf_nid(NULL, &ctx, want[i].nid, want[i].value);
		alen = e != NULL ? i2d_X509_EXTENSION(e, &a) : -1;
		blen = i < X509_get_ext_count(x) ?
		    i2d_X509_EXTENSION(X509_get_ext(x, i), &b) : -1;
		ok = alen > 0 && alen == blen && memcmp(a, b, (size_t)alen) == 0;
		if (!ok)
			diag("extension %d (%s) differs", i,
			    OBJ_nid2sn(want[i].nid));
		X509_EXTENSION_free(e);
		OPENSSL_free(a);
		OPENSSL_free(b);
		a = b = NULL;
	}
	X509_free(cax);
	return ok;
}

/* Verify x against the single CA certificate ca_pem, for a purpose. */
static int
chain_ok(const char *ca_pem, X509 *x, int purpose)
{
	X509_STORE *store = X509_STORE_new();
	X509_STORE_CTX *ctx = X509_STORE_CTX_new();
	X509 *cax = x509_from_pem(ca_pem);
	int ok = 0;

	if (store != NULL && ctx != NULL && cax != NULL &&
	    X509_STORE_add_cert(store, cax) &&
	    X509_STORE_CTX_init(ctx, store, x, NULL) &&
	    X509_STORE_CTX_set_purpose(ctx, purpose))
		ok = X509_verify_cert(ctx) == 1;
	if (!ok && ctx != NULL)
		diag("verify: %s", X509_verify_cert_error_string(
		    X509_STORE_CTX_get_error(ctx)));
	X509_free(cax);
	X509_STORE_CTX_free(ctx);
	X509_STORE_free(store);
	return ok;
}

static const struct {
	const char *name;
	enum ca_keytype kt;
} ca_types[] = {
	{ "p256", CA_KEY_EC_P256 },
	{ "rsa3072", CA_KEY_RSA3072 },
	{ "ed25519", CA_KEY_ED25519 },
};
#define NCA (sizeof(ca_types) / sizeof(ca_types[0]))

static const struct {
	const char *name;
	enum ca_keytype kt;
} csr_types[] = {
	{ "EC P-256", CA_KEY_EC_P256 },
	{ "EC P-384", CA_KEY_EC_P384 },
	{ "Ed25519", CA_KEY_ED25519 },
	{ "RSA 2048", CA_KEY_RSA2048 },
};
#define NCSR (sizeof(csr_types) / sizeof(csr_types[0]))

/*
 * TEST_CA_NO_RSA=1: every RSA key of the tables is made as EC P-256
 * instead.  Generating RSA keys takes minutes under valgrind; with this
 * the suite's valgrind run still covers every other path of ca/.
 */
static int no_rsa;

static enum ca_keytype
tkt(enum ca_keytype kt)
{
	if (no_rsa && (kt == CA_KEY_RSA2048 || kt == CA_KEY_RSA3072))
		return CA_KEY_EC_P256;
	return kt;
}

static const struct ca_subject alice = {
	"alice@example.org", "Alice Example", "Alice.Liddell@mail.example"
};

static struct ca *cas[NCA];

static void
test_parse_tables(void)
{
	static const struct {
		const char *s;
		int rv;
		enum ca_keytype kt;
	} kts[] = {
		{ "ec", 0, CA_KEY_EC_P256 },
		{ "p256", 0, CA_KEY_EC_P256 },
		{ "p384", 0, CA_KEY_EC_P384 },
		{ "rsa", 0, CA_KEY_RSA3072 },
		{ "rsa2048", 0, CA_KEY_RSA2048 },
		{ "RSA3072", 0, CA_KEY_RSA3072 },
		{ "ed25519", 0, CA_KEY_ED25519 },
		{ "dsa", -1, CA_KEY_EC_P256 },
		{ "", -1, CA_KEY_EC_P256 },
	};
	static const struct {
		const char *s;
		int code;
	} reasons[] = {
		{ "unspecified", 0 },
		{ "keyCompromise", 1 },
		{ "superseded", 4 },
		{ "cessationOfOperation", 5 },
		{ "aACompromise", 10 },
		{ "bogus", -1 },
	};
	enum ca_keytype kt;
	size_t i;
	int rv;

	for (i = 0; i < sizeof(kts) / sizeof(kts[0]); i++) {
		kt = CA_KEY_EC_P256;
		rv = ca_keytype_parse(kts[i].s, &kt);
		checkf(rv == kts[i].rv && (rv == -1 || kt == kts[i].kt),
		    "ca_keytype_parse(\"%s\")", kts[i].s);
	}
	for (i = 0; i < sizeof(reasons) / sizeof(reasons[0]); i++) {
		rv = ca_reason_parse(reasons[i].s);
		checkf(rv == reasons[i].code &&
		    (rv == -1 || strcmp(ca_reason_name(rv), reasons[i].s) == 0),
		    "ca_reason_parse/name(\"%s\")", reasons[i].s);
	}
	check(ca_reason_name(7) == NULL && ca_reason_name(11) == NULL &&
	    ca_reason_name(-1) == NULL, "ca_reason_name of unused codes");
}

/* Names that may go into a certificate (ca_name_ok). */
static void
test_names(void)
{
	static const struct {
		const char *s;
		int ok;
	} names[] = {
		{ "Alice Liddell", 1 },
		{ "J\xc3\xbcrgen M\xc3\xbcller", 1 },	/* UTF-8 */
		{ "\xd7\xa9\xd7\x9c\xd7\x95\xd7\x9d", 1 }, /* Hebrew */
		{ "dir.example.org", 1 },
		{ "", 0 },
		{ "Mal\x1b[2Jlory", 0 },			/* ESC */
		{ "Mal\rlory", 0 },
		{ "Mal\x7flory", 0 },				/* DEL */
		{ "Mal\xc2\x85lory", 0 },			/* U+0085 */
		{ "Mal\xc2\x9blory", 0 },			/* U+009B CSI */
		{ "Mal\xc2\xa0lory", 1 },			/* U+00A0 */
		{ "Mal\xe2\x80\xaelory", 0 },		/* U+202E */
		{ "Mal\xe2\x80\xaalory", 0 },		/* U+202A */
		{ "Mal\xe2\x81\xa6lory", 0 },		/* U+2066 */
		{ "Mal\xe2\x81\xa9lory", 0 },		/* U+2069 */
		{ "Mal\xe2\x80\xa9lory", 1 },		/* U+2029 */
	};
	size_t i;

	check(!ca_name_ok(NULL), "ca_name_ok(NULL)");
	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		checkf(ca_name_ok(names[i].s) == names[i].ok,
		    "ca_name_ok(\"%s\") is %d", names[i].s, names[i].ok);
}

static void
test_create(void)
{
	struct ca_err err;
	char key[64], crt[64];
	size_t i;
	int rv;

	for (i = 0; i < NCA; i++) {
		snprintf(key, sizeof(key), "ca-%s.key", ca_types[i].name);
		snprintf(crt, sizeof(crt), "ca-%s.pem", ca_types[i].name);
		rv = ca_create(path(key), path(crt), tkt(ca_types[i].kt),
		    "DIR Test CA", 3650, &err);
		check_err(rv == 0, &err, "ca_create");
		diag("CA %s", ca_types[i].name);
		checkf(file_mode(path(key)) == 0600, "%s CA key mode is 0600",
		    ca_types[i].name);
		rv = ca_create(path(key), path(crt), tkt(ca_types[i].kt),
		    "DIR Test CA", 3650, &err);
		checkf(rv == -1 && err.code == CA_ERR_EXISTS,
		    "%s: second ca_create refused with CA_ERR_EXISTS",
		    ca_types[i].name);
		cas[i] = ca_open(path(key), path(crt), &err);
		check_err(cas[i] != NULL, &err, "ca_open round trip");
	}
}

/* ca_create and ca_open failures, and that nothing is left behind. */
static void
test_create_errors(void)
{
	struct ca_err err;
	struct ca *ca;
	int rv;

	check(write_file(path("only.pem"), "x", 1) == 0, "write only.pem");
	rv = ca_create(path("only.key"), path("only.pem"), CA_KEY_EC_P256,
	    "X", 10, &err);
	check(rv == -1 && err.code == CA_ERR_EXISTS &&
	    !exists(path("only.key")),
	    "ca_create with an existing certificate leaves no key behind");
	rv = ca_create(path("bad.key"), path("bad.pem"), CA_KEY_EC_P256,
	    "X", 0, &err);
	check(rv == -1 && err.code == CA_ERR_INVALID &&
	    !exists(path("bad.key")) && !exists(path("bad.pem")),
	    "ca_create with 0 days fails and leaves nothing");
	ca = ca_open(path("ca-p256.key"), path("ca-rsa3072.pem"), &err);
	check(ca == NULL && err.code == CA_ERR_INVALID,
	    "ca_open refuses a key that does not match the certificate");
	ca_free(ca);
	ca = ca_open(path("nonexistent.key"), path("ca-p256.pem"), &err);
	check(ca == NULL && err.code == CA_ERR_IO,
	    "ca_open of a missing file is CA_ERR_IO");
	ca_free(ca);
	ca_free(NULL);
}

/* Issue from CSRs of every key type by every CA, and look inside. */
static void
test_issue(void)
{
	struct ca_issued is, is2;
	struct ca_cert_info info, info2;
	struct ca *other;
	struct ca_err err;
	char *key, *csr;
	X509 *x;
	size_t i, j;
	time_t now;
	long d;
	int rv;

	for (i = 0; i < NCA; i++) {
		for (j = 0; j < NCSR; j++) {
			diag("CA %s, CSR %s", ca_types[i].name,
			    csr_types[j].name);
			key = ca_key_new_pem(tkt(csr_types[j].kt), &err);
			check_err(key != NULL, &err, "ca_key_new_pem");
			/* The CSR asks for an identity it must not get. */
			csr = key == NULL ? NULL :
			    ca_csr_new_pem(key, "evil@x.org", "Evil", &err);
			check_err(csr != NULL, &err, "ca_csr_new_pem");
			if (csr == NULL) {
				ca_secret_free(key);
				continue;
			}
			rv = ca_csr_check(csr, strlen(csr), &err);
			check_err(rv == 0, &err, "ca_csr_check accepts it");
			rv = ca_issue_user(cas[i], csr, strlen(csr), &alice,
			    DAYS, &URLS, &is, &err);
			check_err(rv == 0, &err, "ca_issue_user");
			if (rv == -1) {
				ca_secret_free(key);
				free(csr);
				continue;
			}
			now = time(NULL);
			rv = ca_cert_info((unsigned char *)is.cert_pem,
			    strlen(is.cert_pem), &info, &err);
			check_err(rv == 0, &err, "ca_cert_info (PEM)");
			check(strcmp(info.userid, alice.userid) == 0 &&
			    strcmp(info.name, alice.name) == 0,
			    "UID and CN come from the subject record");
			x = x509_from_pem(is.cert_pem);
			{
				BIO *kb = BIO_new_mem_buf(key, -1);
				EVP_PKEY *k = kb == NULL ? NULL :
				    PEM_read_bio_PrivateKey(kb, NULL, NULL,
					NULL);

				check(x != NULL && k != NULL &&
				    EVP_PKEY_eq(X509_get0_pubkey(x), k) == 1,
				    "the certificate is for the CSR's key");
				EVP_PKEY_free(k);
				BIO_free(kb);
			}
			{
				BIO *b = BIO_new(BIO_s_mem());
				char *line;

				X509_NAME_print_ex(b, X509_get_subject_name(x),
				    0, XN_FLAG_RFC2253);
				line = bio_string(b);
				checkf(line != NULL &&
				    strstr(line, "evil") == NULL &&
				    strstr(line, "Evil") == NULL,
				    "nothing of the CSR's subject: %s",
				    line != NULL ? line : "?");
				free(line);
				BIO_free(b);
			}
			checkf(is_lower_hex(info.serial, 1, 32) &&
			    info.serial[0] != '0' &&
			    strcmp(info.serial, is.serial) == 0,
			    "serial %s: 1..32 lower-case hex, nonzero",
			    info.serial);
			d = (long)(info.not_after - now);
			checkf(d > DAYS * 86400L - 120 && d <= DAYS * 86400L,
			    "not_after is %d days from now", DAYS);
			check(now - info.not_before >= 290 &&
			    now - info.not_before < 400,
			    "not_before backdated 5 minutes");
			check(is_lower_hex(info.fingerprint, 64, 64) &&
			    strcmp(info.fingerprint, is.fingerprint) == 0,
			    "fingerprint is 64 hex digits and matches");
			checkf(strstr(info.issuer, "CN=DIR Test CA") != NULL,
			    "issuer %s", info.issuer);
			rv = ca_cert_info(is.der, is.der_len, &info2, &err);
			check_err(rv == 0 && memcmp(&info, &info2,
			    sizeof(info)) == 0, &err,
			    "ca_cert_info (DER) says the same");
			check(ca_cert_is_ours(cas[i], is.der, is.der_len,
			    &err) == 1, "ca_cert_is_ours: issued by us");
			{
				/* DER -> PEM without a parse: the same text
				 * as issued; not one byte more or less. */
				char *pem = ca_der_to_pem(is.der, is.der_len,
				    &err);

				check_err(pem != NULL && strcmp(pem,
				    is.cert_pem) == 0, &err,
				    "ca_der_to_pem gives the issued PEM");
				free(pem);
				pem = ca_der_to_pem(is.der, is.der_len - 1,
				    &err);
				check(pem == NULL, "ca_der_to_pem: short");
				free(pem);
				pem = ca_der_to_pem(is.der, is.der_len + 1,
				    &err);
				check(pem == NULL, "ca_der_to_pem: trailing");
				free(pem);
				pem = ca_der_to_pem(is.der + 4,
				    is.der_len - 4, &err);
				check(pem == NULL, "ca_der_to_pem: inner");
				free(pem);
			}
			check(x != NULL && chain_ok(ca_cert_pem(cas[i]), x,
			    X509_PURPOSE_SSL_CLIENT) && !chain_ok(
			    ca_cert_pem(cas[i]), x, X509_PURPOSE_SSL_SERVER),
			    "verifies for TLS client use, never as a server");
			check(x != NULL && (X509_get_extended_key_usage(x) &
			    (XKU_SSL_CLIENT | XKU_SSL_SERVER | XKU_SMIME)) ==
			    (XKU_SSL_CLIENT | XKU_SMIME) && !X509_check_ca(x),
			    "EKU clientAuth and emailProtection without "
			    "serverAuth, not a CA");
			check(x != NULL && ((X509_get_key_usage(x) &
			    KU_KEY_ENCIPHERMENT) != 0) ==
			    (tkt(csr_types[j].kt) == CA_KEY_RSA2048) &&
			    (X509_get_key_usage(x) & KU_DIGITAL_SIGNATURE),
			    "keyUsage fits the key type");
			check(x != NULL && san_has(x, GEN_EMAIL, alice.email,
			    (int)strlen(alice.email)) && san_has(x, GEN_EMAIL,
			    alice.userid, (int)strlen(alice.userid)),
			    "SAN e-mail: the user id and the email");
			check(x != NULL && X509_get_ext_by_NID(x,
			    NID_crl_distribution_points, -1) >= 0 &&
			    X509_get_ext_by_NID(x,
			    NID_authority_key_identifier, -1) >= 0 &&
			    X509_get_ext_by_NID(x,
			    NID_subject_key_identifier, -1) >= 0,
			    "CRL DP, AKI and SKI present");
			check(x != NULL && leaf_ext_as_designed(
			    ca_cert_pem(cas[i]), x, tkt(csr_types[j].kt),
			    "clientAuth,emailProtection"),
			    "extensions as OpenSSL's configuration strings give them");
			X509_free(x);

			rv = ca_issue_user(cas[i], csr, strlen(csr), &alice,
			    DAYS, NULL, &is2, &err);
			check_err(rv == 0 && strcmp(is.serial, is2.serial) != 0,
			    &err, "two issues give different serials");
			x = rv == 0 ? x509_from_pem(is2.cert_pem) : NULL;
			check(x != NULL && X509_get_ext_by_NID(x,
			    NID_crl_distribution_points, -1) < 0,
			    "no CRL DP without a URL");
			X509_free(x);
			/* The others CAs have the same name: only the
			 * signature tells them apart. */
			check(ca_cert_is_ours(cas[(i + 1) % NCA], is.der,
			    is.der_len, &err) == 0,
			    "ca_cert_is_ours: not by another CA of that name");
			/* Kept for checks by hand with TEST_CA_KEEP. */
			if (j == 0) {
				char name[64];

				snprintf(name, sizeof(name), "user-%s.pem",
				    ca_types[i].name);
				write_file(path(name), is.cert_pem,
				    strlen(is.cert_pem));
			}
			ca_issued_clear(&is);
			ca_issued_clear(&is2);
			ca_secret_free(key);
			free(csr);
		}
	}
	/* Same name, same key type, another key. */
	other = NULL;
	if (ca_create(path("other.key"), path("other.pem"), CA_KEY_EC_P256,
	    "DIR Test CA", 10, &err) == 0)
		other = ca_open(path("other.key"), path("other.pem"), &err);
	key = ca_key_new_pem(CA_KEY_EC_P256, &err);
	csr = key != NULL ? ca_csr_new_pem(key, "x", "x", &err) : NULL;
	rv = csr != NULL ? ca_issue_user(cas[0], csr, strlen(csr), &alice,
	    DAYS, NULL, &is, &err) : -1;
	check(other != NULL && rv == 0 && ca_cert_is_ours(other, is.der,
	    is.der_len, &err) == 0 && ca_cert_is_ours(cas[0], is.der,
	    is.der_len, &err) == 1,
	    "ca_cert_is_ours: not by another P-256 CA of the same name");
	if (rv == 0)
		ca_issued_clear(&is);
	ca_free(other);
	ca_secret_free(key);
	free(csr);
	check(ca_cert_is_ours(cas[0], (const unsigned char *)"junk", 4,
	    &err) == -1 && err.code == CA_ERR_INVALID,
	    "ca_cert_is_ours of junk is an error");
}

static void
test_refused(void)
{
	struct {
		const char *name;
		char *pem;
		size_t len;
		enum ca_errcode code;
		const char *msg;
	} rows[12];
	struct ca_issued is;
	struct ca_err err;
	struct ca_csr *h;
	EVP_PKEY *k;
	char *good, *key, *s;
	size_t n = 0, i;
	int rv;

	memset(rows, 0, sizeof(rows));
	key = ca_key_new_pem(CA_KEY_EC_P256, &err);
	good = ca_csr_new_pem(key, "bob@example.org", "Bob", &err);
	check(key != NULL && good != NULL, "a key and a CSR to spoil");
	if (good == NULL)
		return;

	rows[n].name = "garbage";
	rows[n].pem = strdup("this is not a CSR at all\n");
	rows[n].code = CA_ERR_INVALID;
	rows[n++].msg = "not valid PEM";

	rows[n].name = "empty";
	rows[n].pem = strdup("");
	rows[n].code = CA_ERR_INVALID;
	rows[n++].msg = "empty CSR";

	{
		struct ca_issued ci;

		rv = ca_issue_user(cas[0], good, strlen(good), &alice, DAYS,
		    NULL, &ci, &err);
		rows[n].name = "a certificate";
		rows[n].pem = rv == 0 ? strdup(ci.cert_pem) : NULL;
		rows[n].code = CA_ERR_INVALID;
		rows[n++].msg = "expected a PEM CERTIFICATE REQUEST, got "
		    "CERTIFICATE";
		if (rv == 0)
			ca_issued_clear(&ci);
	}

	rows[n].name = "a private key";
	rows[n].pem = strdup(key);
	rows[n].code = CA_ERR_INVALID;
	rows[n++].msg = "got PRIVATE KEY";

	if (!no_rsa) {
		k = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)1024);
		rows[n].name = "RSA 1024";
		rows[n].pem = k != NULL ? csr_for_key(k) : NULL;
		rows[n].code = CA_ERR_POLICY;
		rows[n++].msg = "RSA key of 1024 bits is too small; at least "
		    "2048 required";
		EVP_PKEY_free(k);
	}

	k = dsa_key();
	rows[n].name = "DSA";
	rows[n].pem = k != NULL ? csr_for_key(k) : NULL;
	rows[n].code = CA_ERR_POLICY;
	rows[n++].msg = "DSA keys are not accepted";
	EVP_PKEY_free(k);

	k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "secp256k1");
	rows[n].name = "EC secp256k1";
	rows[n].pem = k != NULL ? csr_for_key(k) : NULL;
	rows[n].code = CA_ERR_POLICY;
	rows[n++].msg = "EC curve secp256k1 is not accepted";
	EVP_PKEY_free(k);

	rows[n].name = "EC point off its curve";
	rows[n].pem = tampered_csr(good, 1);
	rows[n].code = CA_ERR_INVALID;
	rows[n++].msg = "public key of the CSR can not be read";

	rows[n].name = "tampered signature";
	rows[n].pem = tampered_csr(good, 0);
	rows[n].code = CA_ERR_SIGNATURE;
	rows[n++].msg = "signature";

	if ((s = malloc(strlen(good) + 8)) != NULL)
		snprintf(s, strlen(good) + 8, "%sjunk\n", good);
	rows[n].name = "trailing data";
	rows[n].pem = s;
	rows[n].code = CA_ERR_INVALID;
	rows[n++].msg = "unexpected data after";

	for (i = 0; i < n; i++) {
		if (rows[i].pem == NULL) {
			checkf(0, "make the %s CSR", rows[i].name);
			continue;
		}
		rows[i].len = strlen(rows[i].pem);
		rv = ca_csr_check(rows[i].pem, rows[i].len, &err);
		checkf(rv == -1 && err.code == rows[i].code &&
		    strstr(err.msg, rows[i].msg) != NULL,
		    "ca_csr_check refuses %s (code %d): %s", rows[i].name,
		    (int)err.code, err.msg);
		rv = ca_issue_user(cas[0], rows[i].pem, rows[i].len, &alice,
		    DAYS, &URLS, &is, &err);
		checkf(rv == -1 && err.code == rows[i].code &&
		    is.cert_pem == NULL,
		    "ca_issue_user refuses %s too", rows[i].name);
		h = ca_csr_new(rows[i].pem, rows[i].len, &err);
		checkf(h == NULL && err.code == rows[i].code,
		    "ca_csr_new refuses %s too", rows[i].name);
		free(rows[i].pem);
	}
	/* A checked handle is issued for, as often as asked. */
	h = ca_csr_new(good, strlen(good), &err);
	check_err(h != NULL, &err, "ca_csr_new accepts a good CSR");
	for (i = 0; h != NULL && i < 2; i++) {
		rv = ca_issue_user_csr(cas[0], h, &alice, DAYS, &URLS, &is,
		    &err);
		check_err(rv == 0 && is.cert_pem != NULL, &err,
		    "ca_issue_user_csr for a handle");
		ca_issued_clear(&is);
	}
	ca_csr_free(h);
	ca_csr_free(NULL);
	/* A length of 0 must win over the bytes behind the pointer. */
	rv = ca_csr_check(good, 0, &err);
	check(rv == -1 && err.code == CA_ERR_INVALID,
	    "ca_csr_check honours len = 0");
	free(good);
	ca_secret_free(key);
}

/* The CRL in der if it is exactly one and verifies with the key of ca. */
static X509_CRL *
crl_of(const struct ca *ca, const unsigned char *der, size_t len)
{
	const unsigned char *p = der;
	X509_CRL *crl;
	X509 *cax;

	if (der == NULL || (crl = d2i_X509_CRL(NULL, &p, (long)len)) == NULL)
		return NULL;
	cax = x509_from_pem(ca_cert_pem(ca));
	if (p != der + len || cax == NULL ||
	    X509_CRL_verify(crl, X509_get0_pubkey(cax)) != 1) {
		X509_CRL_free(crl);
		crl = NULL;
	}
	X509_free(cax);
	return crl;
}

/* Does crl list exactly one serial, this one, with this reason? */
static int
crl_lists_one(X509_CRL *crl, long serial, int code)
{
	STACK_OF(X509_REVOKED) *list = X509_CRL_get_REVOKED(crl);
	X509_REVOKED *r;
	ASN1_ENUMERATED *reason;
	int ok;

	if (sk_X509_REVOKED_num(list) != 1)
		return 0;
	r = sk_X509_REVOKED_value(list, 0);
	reason = X509_REVOKED_get_ext_d2i(r, NID_crl_reason, NULL, NULL);
	ok = ASN1_INTEGER_get(X509_REVOKED_get0_serialNumber(r)) == serial &&
	    reason != NULL && ASN1_ENUMERATED_get(reason) == code;
	ASN1_ENUMERATED_free(reason);
	return ok;
}

static void
test_crl(void)
{
	struct ca_revoked rev[2];
	struct ca_issued a, b;
	struct ca_err err;
	unsigned char *der = NULL;
	const unsigned char *p;
	size_t der_len = 0, i;
	X509_CRL *crl;
	X509 *cax;
	STACK_OF(X509_REVOKED) *list;
	ASN1_INTEGER *num;
	ASN1_ENUMERATED *reason;
	char *key, *csr;
	time_t now = time(NULL);
	int rv, found, k;

	key = ca_key_new_pem(CA_KEY_EC_P256, &err);
	csr = ca_csr_new_pem(key, "carol@example.org", "Carol", &err);
	for (i = 0; i < NCA; i++) {
		diag("CRL of CA %s", ca_types[i].name);
		if (ca_issue_user(cas[i], csr, strlen(csr), &alice, DAYS, NULL,
		    &a, &err) == -1 || ca_issue_user(cas[i], csr, strlen(csr),
		    &alice, DAYS, NULL, &b, &err) == -1) {
			check(0, "issue two certificates to revoke");
			continue;
		}
		rev[0].serial = a.serial;
		rev[0].revoked_at = now - 100;
		rev[0].reason = 1;	/* keyCompromise */
		rev[1].serial = b.serial;
		rev[1].revoked_at = now - 50;
		rev[1].reason = 0;
		rv = ca_crl_build(cas[i], rev, 2, 7, now, now + 86400, &der,
		    &der_len, &err);
		check_err(rv == 0, &err, "ca_crl_build");
		p = der;
		crl = rv == 0 ? d2i_X509_CRL(NULL, &p, (long)der_len) : NULL;
		check(crl != NULL && p == der + der_len, "d2i_X509_CRL");
		if (crl == NULL) {
			ca_issued_clear(&a);
			ca_issued_clear(&b);
			free(der);
			continue;
		}
		list = X509_CRL_get_REVOKED(crl);
		found = 0;
		for (k = 0; k < sk_X509_REVOKED_num(list); k++) {
			X509_REVOKED *r = sk_X509_REVOKED_value(list, k);
			const ASN1_INTEGER *sn = X509_REVOKED_get0_serialNumber(r);
			BIGNUM *bn = ASN1_INTEGER_to_BN(sn, NULL);
			char *hex = bn != NULL ? BN_bn2hex(bn) : NULL;
			char *h = hex;

			while (h != NULL && *h == '0')
				h++;
			reason = X509_REVOKED_get_ext_d2i(r, NID_crl_reason,
			    NULL, NULL);
			if (h != NULL && strcasecmp(h, a.serial) == 0 &&
			    reason != NULL && ASN1_ENUMERATED_get(reason) == 1)
				found |= 1;
			if (h != NULL && strcasecmp(h, b.serial) == 0 &&
			    reason == NULL)
				found |= 2;
			ASN1_ENUMERATED_free(reason);
			OPENSSL_free(hex);
			BN_free(bn);
		}
		check(sk_X509_REVOKED_num(list) == 2 && found == 3,
		    "both serials listed, reason only where given");
		num = X509_CRL_get_ext_d2i(crl, NID_crl_number, NULL, NULL);
		check(num != NULL && ASN1_INTEGER_get(num) == 7,
		    "CRL number is 7");
		ASN1_INTEGER_free(num);
		check(X509_CRL_get_version(crl) == X509_CRL_VERSION_2 &&
		    X509_CRL_get_ext_by_NID(crl, NID_authority_key_identifier,
		    -1) >= 0, "v2 with an AKI");
		cax = x509_from_pem(ca_cert_pem(cas[i]));
		check(cax != NULL && X509_CRL_verify(crl,
		    X509_get0_pubkey(cax)) == 1,
		    "X509_CRL_verify with the CA key is 1");
		check(cax != NULL && X509_NAME_cmp(X509_CRL_get_issuer(crl),
		    X509_get_subject_name(cax)) == 0,
		    "CRL issuer is the CA subject");
		X509_free(cax);
		X509_CRL_free(crl);
		if (i == 0)
			write_file(path("crl.der"), der, der_len);
		free(der);
		der = NULL;
		ca_issued_clear(&a);
		ca_issued_clear(&b);
	}
	/* An empty CRL is fine; a bad serial or reason is not. */
	rv = ca_crl_build(cas[0], NULL, 0, 1, now, now + 3600, &der, &der_len,
	    &err);
	crl = rv == 0 ? crl_of(cas[0], der, der_len) : NULL;
	check_err(crl != NULL && sk_X509_REVOKED_num(
	    X509_CRL_get_REVOKED(crl)) <= 0, &err,
	    "empty CRL, signed, lists nothing");
	X509_CRL_free(crl);
	free(der);
	der = NULL;
	rev[0].serial = "xyz";
	rev[0].reason = 0;
	rv = ca_crl_build(cas[0], rev, 1, 1, now, now + 3600, &der, &der_len,
	    &err);
	check(rv == -1 && err.code == CA_ERR_INVALID && der == NULL,
	    "CRL with a non-hex serial refused");
	rev[0].serial = "1a";
	rev[0].reason = 7;
	rv = ca_crl_build(cas[0], rev, 1, 1, now, now + 3600, &der, &der_len,
	    &err);
	check(rv == -1 && err.code == CA_ERR_INVALID,
	    "CRL with reason 7 refused");
	/* removeFromCRL in a full CRL reads as "not revoked" (OpenSSL). */
	rev[0].reason = CA_REASON_REMOVE_FROM_CRL;
	rv = ca_crl_build(cas[0], rev, 1, 1, now, now + 3600, &der, &der_len,
	    &err);
	check(rv == -1 && err.code == CA_ERR_INVALID && der == NULL,
	    "CRL with removeFromCRL refused");
	rev[0].reason = CA_REASON_HOLD;
	rv = ca_crl_build(cas[0], rev, 1, 1, now, now + 3600, &der, &der_len,
	    &err);
	crl = rv == 0 ? crl_of(cas[0], der, der_len) : NULL;
	check_err(crl != NULL && crl_lists_one(crl, 0x1a, CA_REASON_HOLD),
	    &err, "CRL with certificateHold lists 1a on hold");
	X509_CRL_free(crl);
	free(der);
	der = NULL;
	free(csr);
	ca_secret_free(key);
}

/* A DER OCSP request about x (issued by issuer), with a nonce of n bytes. */
static unsigned char *
ocsp_request(X509 *x, X509 *issuer, int nonce_len, size_t *len)
{
	OCSP_REQUEST *req = OCSP_REQUEST_new();
	OCSP_CERTID *id = OCSP_cert_to_id(NULL, x, issuer);
	unsigned char *der = NULL;
	int n = -1;

	if (req != NULL && id != NULL && OCSP_request_add0_id(req, id) != NULL) {
		id = NULL;
		if (nonce_len == 0 ||
		    OCSP_request_add1_nonce(req, NULL, nonce_len) == 1)
			n = i2d_OCSP_REQUEST(req, &der);
	}
	OCSP_CERTID_free(id);
	OCSP_REQUEST_free(req);
	*len = n > 0 ? (size_t)n : 0;
	return n > 0 ? der : NULL;
}

/* The status the signed answer der gives x, or -1 if it does not verify. */
static int
ocsp_status(const unsigned char *der, size_t len, X509 *x, X509 *issuer,
    int *reason)
{
	const unsigned char *p = der;
	OCSP_RESPONSE *resp = d2i_OCSP_RESPONSE(NULL, &p, (long)len);
	OCSP_BASICRESP *bs = resp ? OCSP_response_get1_basic(resp) : NULL;
	OCSP_CERTID *id = OCSP_cert_to_id(NULL, x, issuer);
	STACK_OF(X509) *signer = sk_X509_new_null();
	X509_STORE *st = X509_STORE_new();
	int status = -1;

	if (bs != NULL && id != NULL && signer != NULL && st != NULL &&
	    sk_X509_push(signer, issuer) &&
	    OCSP_basic_verify(bs, signer, st, OCSP_TRUSTOTHER) == 1 &&
	    OCSP_resp_find_status(bs, id, &status, reason, NULL, NULL,
	    NULL) != 1)
		status = -1;
	sk_X509_free(signer);
	X509_STORE_free(st);
	OCSP_CERTID_free(id);
	OCSP_BASICRESP_free(bs);
	OCSP_RESPONSE_free(resp);
	return status;
}

/*
 * The responseStatus of the OCSP answer der, or -1 unless it is one
 * answer of exactly len bytes.  *body says whether it carries a basic
 * (signed) response: an error answer must not.
 */
static int
ocsp_resp_status(const unsigned char *der, size_t len, int *body)
{
	const unsigned char *p = der;
	OCSP_RESPONSE *resp;
	OCSP_BASICRESP *bs;
	int status = -1;

	*body = 0;
	if (der == NULL ||
	    (resp = d2i_OCSP_RESPONSE(NULL, &p, (long)len)) == NULL)
		return -1;
	if (p == der + len) {
		status = OCSP_response_status(resp);
		if ((bs = OCSP_response_get1_basic(resp)) != NULL)
			*body = 1;
		OCSP_BASICRESP_free(bs);
	}
	OCSP_RESPONSE_free(resp);
	/* get1_basic of an answer without a body leaves an error queued. */
	ERR_clear_error();
	return status;
}

/* The unsigned answers for requests that could not be served. */
static void
test_ocsp_errors(void)
{
	static const struct {
		enum ca_ocsp_error e;
		int status;
		const char *name;
	} errs[] = {
		{ CA_OCSP_MALFORMED, OCSP_RESPONSE_STATUS_MALFORMEDREQUEST,
		    "malformedRequest" },
		{ CA_OCSP_INTERNAL, OCSP_RESPONSE_STATUS_INTERNALERROR,
		    "internalError" },
		{ CA_OCSP_TRY_LATER, OCSP_RESPONSE_STATUS_TRYLATER,
		    "tryLater" },
		{ CA_OCSP_UNAUTHORIZED, OCSP_RESPONSE_STATUS_UNAUTHORIZED,
		    "unauthorized" },
	};
	unsigned char *der;
	size_t i, len;
	int body, rv, status;

	for (i = 0; i < sizeof(errs) / sizeof(errs[0]); i++) {
		rv = ca_ocsp_error(errs[i].e, &der, &len);
		status = rv == 0 ? ocsp_resp_status(der, len, &body) : -1;
		checkf(rv == 0 && status == errs[i].status && !body,
		    "an unsigned %s answer", errs[i].name);
		if (status != errs[i].status)
			diag("rv %d, responseStatus %d, want %d", rv, status,
			    errs[i].status);
		free(der);
	}
}

/* The responder side: requests parsed, answers signed and verifiable. */
static void
test_ocsp(void)
{
	struct ca_ocsp_answer ans;
	struct ca_ocsp_req *q;
	struct ca_issued is;
	struct ca_err err;
	unsigned char *req = NULL, *long_req = NULL, *der = NULL;
	size_t len, dlen;
	X509 *x = NULL, *cax = NULL, *other = NULL;
	char *key = NULL, *csr = NULL;
	int reason = -2, rv;

	key = ca_key_new_pem(CA_KEY_EC_P256, &err);
	csr = key ? ca_csr_new_pem(key, "olga@example.org", "Olga", &err) :
	    NULL;
	rv = csr != NULL ? ca_issue_user(cas[0], csr, strlen(csr), &alice,
	    DAYS, &URLS, &is, &err) : -1;
	check_err(rv == 0, &err, "a certificate to ask about");
	if (rv == -1)
		goto out;
	x = x509_from_pem(is.cert_pem);
	cax = x509_from_pem(ca_cert_pem(cas[0]));
	other = x509_from_pem(ca_cert_pem(cas[1]));

	req = ocsp_request(x, cax, 16, &len);
	q = req != NULL ? ca_ocsp_req_parse(cas[0], req, len, &err) : NULL;
	check_err(q != NULL && ca_ocsp_req_count(q) == 1 &&
	    ca_ocsp_req_serial(q, 0) != NULL &&
	    strcmp(ca_ocsp_req_serial(q, 0), is.serial) == 0, &err,
	    "an OCSP request names our serial");
	memset(&ans, 0, sizeof(ans));
	ans.status = CA_OCSP_REVOKED;
	ans.revoked_at = time(NULL) - 10;
	ans.reason = 1;
	rv = q != NULL ? ca_ocsp_respond(cas[0], q, &ans, time(NULL), 300,
	    &der, &dlen, &err) : -1;
	check_err(rv == 0 && ocsp_status(der, dlen, x, cax, &reason) ==
	    V_OCSP_CERTSTATUS_REVOKED && reason == 1, &err,
	    "the signed answer says revoked, keyCompromise");
	free(der);
	der = NULL;
	ca_ocsp_req_free(q);
	OPENSSL_free(req);

	/* Another CA's certificate: no serial of ours to look up. */
	req = ocsp_request(x, other, 0, &len);
	q = req != NULL ? ca_ocsp_req_parse(cas[0], req, len, &err) : NULL;
	check(q != NULL && ca_ocsp_req_serial(q, 0) == NULL,
	    "a request naming another issuer is not ours");
	ca_ocsp_req_free(q);
	OPENSSL_free(req);

	/* A nonce the CA would sign whatever it holds: too long is refused. */
	req = ocsp_request(x, cax, 200, &len);
	q = req != NULL ? ca_ocsp_req_parse(cas[0], req, len, &err) : NULL;
	check(req != NULL && q == NULL && err.code == CA_ERR_INVALID,
	    "an OCSP nonce of 200 bytes is refused");
	ca_ocsp_req_free(q);
	OPENSSL_free(req);

	/* Garbage, and a request with something after it. */
	q = ca_ocsp_req_parse(cas[0], (const unsigned char *)"\x30\x00", 2,
	    &err);
	check(q == NULL && err.code == CA_ERR_INVALID, "garbage is refused");
	/* Made with a spare byte, so the check is never skipped. */
	req = ocsp_request(x, cax, 0, &len);
	if (req != NULL && (long_req = OPENSSL_malloc(len + 1)) != NULL) {
		memcpy(long_req, req, len);
		long_req[len] = 0;
	}
	q = long_req != NULL ? ca_ocsp_req_parse(cas[0], long_req, len + 1,
	    &err) : NULL;
	check(long_req != NULL && q == NULL && err.code == CA_ERR_INVALID,
	    "a request with a trailing byte is refused");
	ca_ocsp_req_free(q);
	OPENSSL_free(long_req);
	OPENSSL_free(req);
	ca_issued_clear(&is);
out:
	X509_free(x);
	X509_free(cax);
	X509_free(other);
	free(csr);
	ca_secret_free(key);
}

static void
test_p12(void)
{
	static const enum ca_keytype kts[] = { CA_KEY_EC_P256, CA_KEY_RSA2048 };
	struct ca_issued is;
	struct ca_cert_info info;
	struct ca_err err;
	unsigned char *buf = NULL;
	const unsigned char *p;
	size_t len = 0, i;
	PKCS12 *p12;
	EVP_PKEY *pkey = NULL;
	X509 *cert = NULL, *cax;
	STACK_OF(X509) *chain = NULL;
	int rv;

	for (i = 0; i < sizeof(kts) / sizeof(kts[0]); i++) {
		rv = ca_issue_p12(cas[0], &alice, tkt(kts[i]), DAYS, &URLS, PASS,
		    &buf, &len, &is, &err);
		check_err(rv == 0, &err, "ca_issue_p12");
		if (rv == -1)
			continue;
		rv = ca_cert_info(is.der, is.der_len, &info, &err);
		check(rv == 0 && strcmp(info.userid, alice.userid) == 0,
		    "the PKCS12 file's certificate is alice's");
		p = buf;
		p12 = d2i_PKCS12(NULL, &p, (long)len);
		check(p12 != NULL, "d2i_PKCS12");
		check(p12 != NULL && PKCS12_parse(p12, PASS, &pkey, &cert,
		    &chain) == 1, "PKCS12_parse with the passphrase");
		check(pkey != NULL && cert != NULL &&
		    X509_check_private_key(cert, pkey) == 1,
		    "key matches certificate");
		cax = x509_from_pem(ca_cert_pem(cas[0]));
		check(chain != NULL && sk_X509_num(chain) == 1 &&
		    X509_cmp(sk_X509_value(chain, 0), cax) == 0,
		    "the CA certificate is included");
		check(cert != NULL && chain_ok(ca_cert_pem(cas[0]), cert,
		    X509_PURPOSE_SSL_CLIENT), "the certificate verifies");
		X509_free(cax);
		EVP_PKEY_free(pkey);
		X509_free(cert);
		sk_X509_pop_free(chain, X509_free);
		pkey = NULL;
		cert = NULL;
		chain = NULL;
		ERR_clear_error();
		check(p12 != NULL && PKCS12_parse(p12, "wrong", &pkey, &cert,
		    &chain) == 0 && pkey == NULL,
		    "a wrong passphrase fails");
		check(p12 != NULL && PKCS12_mac_present(p12) &&
		    PKCS12_verify_mac(p12, PASS, -1) == 1 &&
		    PKCS12_verify_mac(p12, "wrong", -1) == 0,
		    "a MAC is present and checks the passphrase");
		ERR_clear_error();
		EVP_PKEY_free(pkey);
		X509_free(cert);
		sk_X509_pop_free(chain, X509_free);
		pkey = NULL;
		cert = NULL;
		chain = NULL;
		if (i == 0)
			write_file(path("alice.p12"), buf, len);
		PKCS12_free(p12);
		free(buf);
		buf = NULL;
		ca_issued_clear(&is);
	}
	rv = ca_issue_p12(cas[0], &alice, CA_KEY_EC_P256, DAYS, NULL, "",
	    &buf, &len, &is, &err);
	check(rv == -1 && err.code == CA_ERR_INVALID && buf == NULL,
	    "ca_issue_p12 refuses an empty passphrase");
}

/*
 * A backup with the key of an earlier device beside this one's: both
 * come back, this device's first, and ca_p12_unpack still gives it.
 */
static void
test_p12_more(const char *key, const char *cert, const char *key2)
{
	struct ca_p12_pair more, *got = NULL;
	struct ca_issued is2;
	struct ca_err err;
	unsigned char *der = NULL;
	char *csr, *k = NULL, *c = NULL;
	size_t len = 0, n = 0;
	int rv;

	memset(&is2, 0, sizeof(is2));
	csr = key2 != NULL ? ca_csr_new_pem(key2, "x", "x", &err) : NULL;
	rv = csr != NULL ? ca_issue_user(cas[0], csr, strlen(csr), &alice,
	    DAYS, NULL, &is2, &err) : -1;
	check_err(rv == 0, &err, "a certificate of an earlier device");
	if (rv == -1)
		goto out;
	more.key_pem = (char *)key2;
	more.cert_pem = is2.cert_pem;
	rv = ca_p12_pack_more(key, cert, ca_cert_pem(cas[0]), &more, 1, PASS,
	    alice.userid, &der, &len, &err);
	check_err(rv == 0 && ca_p12_check(der, len, &err) == 0, &err,
	    "ca_p12_pack_more packs two keys");
	rv = rv == 0 ? ca_p12_unpack_all(der, len, PASS, &got, &n, &err) : -1;
	check_err(rv == 0 && n == 2 && strcmp(got[0].cert_pem, cert) == 0 &&
	    strcmp(got[1].cert_pem, is2.cert_pem) == 0 &&
	    strstr(got[1].key_pem, "PRIVATE KEY") != NULL, &err,
	    "ca_p12_unpack_all gives both, this device's first");
	ca_p12_pairs_free(got, n);
	got = NULL;
	check(der != NULL && ca_p12_unpack(der, len, PASS, &k, &c, &err) == 0 &&
	    strcmp(c, cert) == 0, "ca_p12_unpack takes this device's pair");
	check(der != NULL && ca_p12_unpack_all(der, len, "wrong", &got, &n,
	    &err) == -1 && got == NULL && n == 0,
	    "ca_p12_unpack_all refuses a wrong passphrase");
	free(der);
	der = NULL;
	more.cert_pem = (char *)cert;
	check(ca_p12_pack_more(key, cert, ca_cert_pem(cas[0]), &more, 1, PASS,
	    alice.userid, &der, &len, &err) == -1 && der == NULL,
	    "ca_p12_pack_more refuses an earlier key that is not its "
	    "certificate's");
 out:
	ca_secret_free(k);
	free(c);
	free(der);
	free(csr);
	ca_issued_clear(&is2);
}

/* A device's own backup and the status a relying party reads. */
static void
test_p12_pack(void)
{
	char *key = NULL, *csr = NULL, *other = NULL, *k2 = NULL, *c2 = NULL;
	char st[128], crlpath[300], capath[300];
	struct ca_revoked rev;
	struct ca_issued is;
	struct ca_err err;
	unsigned char *der = NULL, *crl = NULL;
	size_t len = 0, crl_len = 0;
	time_t now = time(NULL);
	int rv;

	key = ca_key_new_pem(CA_KEY_EC_P256, &err);
	csr = key != NULL ? ca_csr_new_pem(key, "x", "x", &err) : NULL;
	rv = csr != NULL ? ca_issue_user(cas[0], csr, strlen(csr), &alice,
	    DAYS, NULL, &is, &err) : -1;
	check_err(rv == 0, &err, "a certificate to back up");
	if (rv == -1)
		goto out;
	rv = ca_p12_pack(key, is.cert_pem, ca_cert_pem(cas[0]), PASS,
	    alice.userid, &der, &len, &err);
	check_err(rv == 0 && ca_p12_check(der, len, &err) == 0, &err,
	    "ca_p12_pack makes a PKCS12 with a MAC");
	rv = rv == 0 ? ca_p12_unpack(der, len, PASS, &k2, &c2, &err) : -1;
	check_err(rv == 0 && strcmp(c2, is.cert_pem) == 0 &&
	    strstr(k2, "PRIVATE KEY") != NULL, &err,
	    "ca_p12_unpack gives back the certificate and a key");
	ca_secret_free(k2);
	free(c2);
	k2 = c2 = NULL;
	check(der != NULL && ca_p12_unpack(der, len, "wrong", &k2, &c2,
	    &err) == -1 && err.code == CA_ERR_INVALID && k2 == NULL &&
	    c2 == NULL, "ca_p12_unpack refuses a wrong passphrase");
	free(der);
	der = NULL;
	other = ca_key_new_pem(CA_KEY_EC_P256, &err);
	check(other != NULL && ca_p12_pack(other, is.cert_pem,
	    ca_cert_pem(cas[0]), PASS, alice.userid, &der, &len, &err) == -1 &&
	    err.code == CA_ERR_INVALID && der == NULL,
	    "ca_p12_pack refuses a key that is not the certificate's");
	test_p12_more(key, is.cert_pem, other);
	/* Status: valid, then revoked by a CRL, and unknown for junk. */
	snprintf(capath, sizeof(capath), "%s", path("status-ca.pem"));
	snprintf(crlpath, sizeof(crlpath), "%s", path("status.crl"));
	write_file(capath, ca_cert_pem(cas[0]), strlen(ca_cert_pem(cas[0])));
	ca_cert_status(is.cert_pem, capath, NULL, st, sizeof(st));
	checkf(strcmp(st, "valid") == 0, "status without a CRL: %s", st);
	rev.serial = is.serial;
	rev.revoked_at = now;
	rev.reason = 1;
	if (ca_crl_build(cas[0], &rev, 1, 7, now - 60, now + 3600, &crl,
	    &crl_len, &err) == 0)
		write_file(crlpath, crl, crl_len);
	ca_cert_status(is.cert_pem, capath, crlpath, st, sizeof(st));
	checkf(strcmp(st, "revoked") == 0, "status with the CRL: %s", st);
	ca_cert_status("junk", capath, NULL, st, sizeof(st));
	checkf(strcmp(st, "unknown") == 0, "status of junk: %s", st);
	ca_issued_clear(&is);
 out:
	free(crl);
	ca_secret_free(other);
	ca_secret_free(key);
	free(csr);
}

static void
test_server(void)
{
	static const char *const hosts[] = {
		"dir.example.org", "127.0.0.1", "::1"
	};
	static const char *const bad[] = { "bad host name" };
	unsigned char v4[4], v6[16];
	struct ca_err err;
	FILE *f;
	X509 *x = NULL;
	EVP_PKEY *k = NULL;
	struct ca *ca;
	int rv, round;

	inet_pton(AF_INET, "127.0.0.1", v4);
	inet_pton(AF_INET6, "::1", v6);
	/* The second round replaces the files of the first. */
	for (round = 0; round < 2; round++) {
		rv = ca_issue_server(cas[0], hosts, 3, CA_KEY_EC_P256, DAYS,
		    path("server.key"), path("server.pem"), &err);
		check_err(rv == 0, &err, round == 0 ? "ca_issue_server" :
		    "ca_issue_server replaces existing files");
		check(file_mode(path("server.key")) == 0600,
		    "server key mode 0600");
	}
	if ((f = fopen(path("server.pem"), "r")) != NULL) {
		x = PEM_read_X509(f, NULL, NULL, NULL);
		fclose(f);
	}
	if ((f = fopen(path("server.key"), "r")) != NULL) {
		k = PEM_read_PrivateKey(f, NULL, NULL, NULL);
		fclose(f);
	}
	check(x != NULL && k != NULL && X509_check_private_key(x, k) == 1,
	    "server key and certificate match");
	check(x != NULL && san_has(x, GEN_DNS, "dir.example.org", 15) &&
	    san_has(x, GEN_IPADD, v4, 4) && san_has(x, GEN_IPADD, v6, 16),
	    "SAN has the DNS name and both IP addresses");
	check(x != NULL && (X509_get_extended_key_usage(x) & XKU_SSL_SERVER) &&
	    !(X509_get_extended_key_usage(x) & XKU_SSL_CLIENT),
	    "EKU serverAuth");
	check(x != NULL && leaf_ext_as_designed(ca_cert_pem(cas[0]), x, 0,
	    "serverAuth"), "server extensions as OpenSSL's strings give them");
	check(x != NULL && chain_ok(ca_cert_pem(cas[0]), x,
	    X509_PURPOSE_SSL_SERVER) && X509_check_host(x, "dir.example.org",
	    0, 0, NULL) == 1 && X509_check_ip_asc(x, "::1", 0) == 1,
	    "server certificate verifies for its names");
	X509_free(x);
	EVP_PKEY_free(k);
	rv = ca_issue_server(cas[0], bad, 1, CA_KEY_EC_P256, DAYS,
	    path("bad.key"), path("bad.pem"), &err);
	check(rv == -1 && err.code == CA_ERR_INVALID &&
	    !exists(path("bad.key")), "ca_issue_server refuses a bad name");
	/* A server certificate is not a CA: ca_open says so. */
	ca = ca_open(path("server.key"), path("server.pem"), &err);
	check(ca == NULL && err.code == CA_ERR_POLICY,
	    "ca_open refuses a leaf certificate");
	ca_free(ca);
}

static int
rm_entry(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(p);
}

int
main(void)
{
	const char *tmp = getenv("TMPDIR");
	struct ca_cert_info info;
	struct ca_err err;
	size_t i, len;
	const unsigned char *der;

	snprintf(dir, sizeof(dir), "%s/test_ca.XXXXXX",
	    tmp != NULL && strlen(tmp) < 40 ? tmp : "/tmp");
	if (mkdtemp(dir) == NULL) {
		perror("mkdtemp");
		return 2;
	}
	diag("directory %s", dir);
	no_rsa = getenv("TEST_CA_NO_RSA") != NULL &&
	    strcmp(getenv("TEST_CA_NO_RSA"), "1") == 0;
	if (no_rsa)
		diag("TEST_CA_NO_RSA: RSA keys are made as EC P-256");

	test_parse_tables();
	test_names();
	test_create();
	for (i = 0; i < NCA; i++)
		if (cas[i] == NULL)
			goto out;
	der = ca_cert_der(cas[0], &len);
	check(ca_cert_info(der, len, &info, &err) == 0 &&
	    strcmp(info.fingerprint, ca_fingerprint(cas[0])) == 0 &&
	    strcmp(info.name, "DIR Test CA") == 0 && info.userid[0] == '\0',
	    "ca_cert_info of the CA certificate");
	test_create_errors();
	test_issue();
	test_refused();
	test_crl();
	test_ocsp();
	test_ocsp_errors();
	test_p12();
	test_p12_pack();
	test_server();
 out:
	for (i = 0; i < NCA; i++)
		ca_free(cas[i]);
	if (getenv("TEST_CA_KEEP") == NULL)
		nftw(dir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
	return tap_done();
}

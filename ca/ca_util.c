/*
 * ca_util.c - what the other files of ca/ share: error reporting, key
 * generation, serials, fingerprints, PEM/DER decoding and careful file I/O.
 */
#include <sys/stat.h>

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rand.h>

#include "ca_internal.h"

/* Bytes of a random serial: 128 bits, well above CA/B Forum's 64. */
#define CA_SERIAL_BYTES 16

/*
 * Start a public function with a clean slate: a stale OpenSSL error left
 * by someone else on this thread must not end up in our message.
 */
void
ca_err_clear(struct ca_err *err)
{
	ERR_clear_error();
	if (err == NULL)
		return;
	err->code = CA_ERR_NONE;
	err->msg[0] = '\0';
}

/* Append s to the NUL-terminated dst of size dstsz, cutting it if needed. */
static void
append(char *dst, size_t dstsz, const char *s)
{
	size_t used = strlen(dst), n = strlen(s);

	if (used + 1 >= dstsz)
		return;
	if (n > dstsz - used - 1)
		n = dstsz - used - 1;
	memcpy(dst + used, s, n);
	dst[used + n] = '\0';
}

/*
 * Append ": <reason>" for each error queued by OpenSSL on this thread, and
 * empty the queue, so that the next failure does not report this one.
 */
static void
err_drain(struct ca_err *err)
{
	unsigned long e;
	char buf[256];

	while ((e = ERR_get_error()) != 0) {
		if (err == NULL)
			continue;
		ERR_error_string_n(e, buf, sizeof(buf));
		append(err->msg, sizeof(err->msg), ": ");
		append(err->msg, sizeof(err->msg), buf);
	}
}

/* Put "prefix: " in front of the message, e.g. the name of a file. */
void
ca_err_prefix(struct ca_err *err, const char *prefix)
{
	char tmp[sizeof(err->msg)];

	if (err == NULL)
		return;
	tmp[0] = '\0';
	append(tmp, sizeof(tmp), prefix);
	append(tmp, sizeof(tmp), ": ");
	append(tmp, sizeof(tmp), err->msg);
	memcpy(err->msg, tmp, sizeof(err->msg));
}

static void
err_vset(struct ca_err *err, enum ca_errcode code, const char *fmt,
    va_list ap)
{
	if (err == NULL) {
		ERR_clear_error();
		return;
	}
	err->code = code;
	vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
	err_drain(err);
}

/* Fill err with code and a sentence, followed by OpenSSL's reasons. */
void
ca_err_set(struct ca_err *err, enum ca_errcode code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	err_vset(err, code, fmt, ap);
	va_end(ap);
}

/* Like ca_err_set, for a failed system call: appends strerror(errno). */
void
ca_err_sys(struct ca_err *err, enum ca_errcode code, const char *fmt, ...)
{
	va_list ap;
	int saved = errno;

	va_start(ap, fmt);
	err_vset(err, code, fmt, ap);
	va_end(ap);
	if (err == NULL)
		return;
	append(err->msg, sizeof(err->msg), ": ");
	append(err->msg, sizeof(err->msg), strerror(saved));
}

int
ca_keytype_parse(const char *s, enum ca_keytype *kt)
{
	static const struct {
		const char *name;
		enum ca_keytype kt;
	} names[] = {
		{ "ec", CA_KEY_EC_P256 },
		{ "p256", CA_KEY_EC_P256 },
		{ "p-256", CA_KEY_EC_P256 },
		{ "p384", CA_KEY_EC_P384 },
		{ "p-384", CA_KEY_EC_P384 },
		{ "rsa", CA_KEY_RSA3072 },
		{ "rsa3072", CA_KEY_RSA3072 },
		{ "rsa2048", CA_KEY_RSA2048 },
		{ "ed25519", CA_KEY_ED25519 },
	};
	size_t i;

	if (s == NULL || kt == NULL)
		return -1;
	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if (strcasecmp(s, names[i].name) == 0) {
			*kt = names[i].kt;
			return 0;
		}
	}
	return -1;
}

/* RFC 5280 CRLReason; 7 is not used. */
static const char *const reason_names[] = {
	"unspecified", "keyCompromise", "cACompromise", "affiliationChanged",
	"superseded", "cessationOfOperation", "certificateHold", NULL,
	"removeFromCRL", "privilegeWithdrawn", "aACompromise",
};

int
ca_reason_parse(const char *s)
{
	size_t i;

	if (s == NULL)
		return -1;
	for (i = 0; i < sizeof(reason_names) / sizeof(reason_names[0]); i++) {
		if (reason_names[i] != NULL &&
		    strcasecmp(s, reason_names[i]) == 0)
			return (int)i;
	}
	return -1;
}

const char *
ca_reason_name(int code)
{
	if (code < 0 ||
	    (size_t)code >= sizeof(reason_names) / sizeof(reason_names[0]))
		return NULL;
	return reason_names[code];
}

void
ca_secret_free(char *s)
{
	if (s == NULL)
		return;
	OPENSSL_cleanse(s, strlen(s));
	free(s);
}

/* A new key of type kt, from the default provider's random generator. */
EVP_PKEY *
ca_keygen(enum ca_keytype kt, struct ca_err *err)
{
	EVP_PKEY *key = NULL;

	switch (kt) {
	case CA_KEY_EC_P256:
		key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
		break;
	case CA_KEY_EC_P384:
		key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-384");
		break;
	case CA_KEY_RSA2048:
		key = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
		break;
	case CA_KEY_RSA3072:
		key = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)3072);
		break;
	case CA_KEY_ED25519:
		key = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
		break;
	default:
		ca_err_set(err, CA_ERR_INVALID, "unknown key type %d",
		    (int)kt);
		return NULL;
	}
	if (key == NULL)
		ca_err_set(err, CA_ERR_CRYPTO, "cannot generate a key");
	return key;
}

/* Ed25519 hashes internally: OpenSSL wants no digest for it. */
const EVP_MD *
ca_sign_md(EVP_PKEY *key)
{
	if (EVP_PKEY_is_a(key, "ED25519") || EVP_PKEY_is_a(key, "ED448"))
		return NULL;
	return EVP_sha256();
}

/*
 * What OpenSSL writes as the signature algorithm when it signs with key:
 * the provider says it (OSSL_SIGNATURE_PARAM_ALGORITHM_ID), as it does
 * for X509_sign.  A signer compares the TBS's algorithm with this.
 */
int
ca_sigalg_der(EVP_PKEY *key, unsigned char **der, size_t *len,
    struct ca_err *err)
{
	unsigned char buf[256];
	OSSL_PARAM params[2];
	EVP_PKEY_CTX *pctx = NULL;
	EVP_MD_CTX *mctx;
	int rv = -1;

	*der = NULL;
	params[0] = OSSL_PARAM_construct_octet_string(
	    OSSL_SIGNATURE_PARAM_ALGORITHM_ID, buf, sizeof(buf));
	params[1] = OSSL_PARAM_construct_end();
	if ((mctx = EVP_MD_CTX_new()) == NULL ||
	    EVP_DigestSignInit(mctx, &pctx, ca_sign_md(key), NULL, key) <= 0 ||
	    EVP_PKEY_CTX_get_params(pctx, params) <= 0 ||
	    params[0].return_size == 0 ||
	    params[0].return_size > sizeof(buf) ||
	    (*der = OPENSSL_memdup(buf, params[0].return_size)) == NULL) {
		ca_err_set(err, CA_ERR_CRYPTO, "cannot tell the signature "
		    "algorithm of the CA key");
		goto err;
	}
	*len = params[0].return_size;
	rv = 0;
 err:
	EVP_MD_CTX_free(mctx);
	return rv;
}

int
ca_key_is_rsa(EVP_PKEY *key)
{
	return EVP_PKEY_is_a(key, "RSA");
}

char *
ca_bio_string(BIO *bio, const char *what, size_t *len, struct ca_err *err)
{
	char *data, *out;
	long n;

	if ((n = BIO_get_mem_data(bio, &data)) <= 0) {
		ca_err_set(err, CA_ERR_CRYPTO, "cannot encode %s", what);
		return NULL;
	}
	if ((out = malloc((size_t)n + 1)) == NULL) {
		ca_err_sys(err, CA_ERR_CRYPTO, "malloc");
		return NULL;
	}
	memcpy(out, data, (size_t)n);
	out[n] = '\0';
	if (len != NULL)
		*len = (size_t)n;
	return out;
}

/*
 * A private key as unencrypted PKCS#8 PEM in a malloc'd, NUL-terminated
 * buffer.  The BIO is a secmem one so OpenSSL's copy is wiped on free.
 */
char *
ca_key_to_pem(EVP_PKEY *key, size_t *len, struct ca_err *err)
{
	BIO *bio = NULL;
	char *out = NULL;

	if ((bio = BIO_new(BIO_s_secmem())) == NULL ||
	    !PEM_write_bio_PrivateKey(bio, key, NULL, NULL, 0, NULL, NULL))
		ca_err_set(err, CA_ERR_CRYPTO, "cannot encode the private key");
	else
		out = ca_bio_string(bio, "the private key", len, err);
	BIO_free(bio);
	return out;
}

/* Never let OpenSSL prompt on a terminal for the passphrase of a key. */
static int
no_passphrase(char *buf, int size, int rwflag, void *u)
{
	(void)buf;
	(void)size;
	(void)rwflag;
	(void)u;
	return -1;
}

/* Decode a PEM private key (any format OpenSSL knows, unencrypted). */
EVP_PKEY *
ca_key_from_pem(const char *pem, size_t len, struct ca_err *err)
{
	BIO *bio = NULL;
	EVP_PKEY *key = NULL;

	if (len == 0 || len > CA_FILE_MAX) {
		ca_err_set(err, CA_ERR_INVALID, "private key is %s",
		    len == 0 ? "empty" : "too large");
		goto err;
	}
	if ((bio = BIO_new_mem_buf(pem, (int)len)) == NULL) {
		ca_err_set(err, CA_ERR_CRYPTO, "cannot read the private key");
		goto err;
	}
	key = PEM_read_bio_PrivateKey(bio, NULL, no_passphrase, NULL);
	if (key == NULL)
		ca_err_set(err, CA_ERR_INVALID,
		    "not an unencrypted PEM private key");
 err:
	BIO_free(bio);
	return key;
}

/*
 * A random positive serial of 128 bits.  The top bit is cleared so the
 * DER INTEGER stays 16 bytes, and zero is not a valid serial.
 */
int
ca_serial_set_random(X509 *x, struct ca_err *err)
{
	unsigned char buf[CA_SERIAL_BYTES];
	BIGNUM *bn = NULL;
	ASN1_INTEGER *ai = NULL;
	int rv = -1;

	if ((bn = BN_new()) == NULL) {
		ca_err_set(err, CA_ERR_CRYPTO, "cannot set the serial number");
		goto err;
	}
	for (;;) {
		if (RAND_bytes(buf, sizeof(buf)) != 1) {
			ca_err_set(err, CA_ERR_CRYPTO,
			    "cannot draw a random serial");
			goto err;
		}
		buf[0] &= 0x7f;
		if (BN_bin2bn(buf, sizeof(buf), bn) == NULL) {
			ca_err_set(err, CA_ERR_CRYPTO,
			    "cannot set the serial number");
			goto err;
		}
		if (!BN_is_zero(bn))
			break;
	}
	if ((ai = BN_to_ASN1_INTEGER(bn, NULL)) == NULL ||
	    !X509_set_serialNumber(x, ai)) {
		ca_err_set(err, CA_ERR_CRYPTO, "cannot set the serial number");
		goto err;
	}
	rv = 0;
 err:
	BN_free(bn);
	ASN1_INTEGER_free(ai);
	return rv;
}

/* Lower-case hex of a serial, without leading zeros ("0" for zero). */
int
ca_serial_hex(const ASN1_INTEGER *ai, char out[CA_SERIAL_HEX_MAX],
    struct ca_err *err)
{
	BIGNUM *bn = NULL;
	char *hex = NULL, *p;
	size_t i, n;
	int rv = -1;

	if ((bn = ASN1_INTEGER_to_BN(ai, NULL)) == NULL ||
	    (hex = BN_bn2hex(bn)) == NULL) {
		ca_err_set(err, CA_ERR_CRYPTO, "cannot read the serial number");
		goto err;
	}
	if (BN_is_negative(bn)) {
		ca_err_set(err, CA_ERR_INVALID, "negative serial number");
		goto err;
	}
	/* BN_bn2hex prints whole bytes, so "0A..." needs its 0 removed. */
	for (p = hex; p[0] == '0' && p[1] != '\0'; p++)
		;
	n = strlen(p);
	if (n >= CA_SERIAL_HEX_MAX) {
		ca_err_set(err, CA_ERR_INVALID,
		    "serial number longer than 20 bytes");
		goto err;
	}
	for (i = 0; i < n; i++)
		out[i] = (char)tolower((unsigned char)p[i]);
	out[n] = '\0';
	rv = 0;
 err:
	OPENSSL_free(hex);
	BN_free(bn);
	return rv;
}

/* The inverse of ca_serial_hex; accepts either case and leading zeros. */
ASN1_INTEGER *
ca_serial_parse(const char *hex, struct ca_err *err)
{
	BIGNUM *bn = NULL;
	ASN1_INTEGER *ai = NULL;
	size_t i, n;

	n = hex == NULL ? 0 : strlen(hex);
	if (n == 0 || n > 40) {
		ca_err_set(err, CA_ERR_INVALID,
		    "a serial number is 1 to 40 hex digits");
		goto err;
	}
	for (i = 0; i < n; i++) {
		if (!isxdigit((unsigned char)hex[i])) {
			ca_err_set(err, CA_ERR_INVALID,
			    "serial number \"%.40s\" is not hexadecimal", hex);
			goto err;
		}
	}
	if (BN_hex2bn(&bn, hex) != (int)n ||
	    (ai = BN_to_ASN1_INTEGER(bn, NULL)) == NULL)
		ca_err_set(err, CA_ERR_CRYPTO, "cannot convert serial %s", hex);
 err:
	BN_free(bn);
	return ai;
}

/* SHA-256 of DER bytes as 64 lower-case hex digits. */
int
ca_fp_hex(const unsigned char *der, size_t len, char out[CA_FP_HEX_LEN],
    struct ca_err *err)
{
	static const char digits[] = "0123456789abcdef";
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0, i;

	if (!EVP_Digest(der, len, md, &mdlen, EVP_sha256(), NULL) ||
	    mdlen * 2 + 1 != CA_FP_HEX_LEN) {
		ca_err_set(err, CA_ERR_CRYPTO, "cannot compute a fingerprint");
		return -1;
	}
	for (i = 0; i < mdlen; i++) {
		out[2 * i] = digits[md[i] >> 4];
		out[2 * i + 1] = digits[md[i] & 0xf];
	}
	out[2 * mdlen] = '\0';
	return 0;
}

int
ca_time_epoch(const ASN1_TIME *t, time_t *out, struct ca_err *err)
{
	struct tm tm;

	memset(&tm, 0, sizeof(tm));
	if (t == NULL || ASN1_TIME_to_tm(t, &tm) != 1) {
		ca_err_set(err, CA_ERR_INVALID, "invalid certificate time");
		return -1;
	}
	*out = timegm(&tm);
	return 0;
}

/* notBefore a few minutes ago for clock skew, notAfter `days` from now. */
int
ca_set_validity(X509 *x, int days, struct ca_err *err)
{
	if (days < 1 || days > CA_DAYS_MAX) {
		ca_err_set(err, CA_ERR_INVALID,
		    "validity of %d days is outside 1..%d", days, CA_DAYS_MAX);
		return -1;
	}
	if (X509_gmtime_adj(X509_getm_notBefore(x), -CA_BACKDATE) == NULL ||
	    X509_time_adj_ex(X509_getm_notAfter(x), days, 0, NULL) == NULL) {
		ca_err_set(err, CA_ERR_CRYPTO, "cannot set the validity");
		return -1;
	}
	return 0;
}

/*
 * Add one extension written in OpenSSL's configuration syntax.  Only
 * constant or checked values come here: anything user-supplied is built
 * as a structure instead, so a comma can not smuggle in another name.
 */
int
ca_ext_add(X509 *x, X509V3_CTX *ctx, int nid, const char *value,
    struct ca_err *err)
{
	X509_EXTENSION *ext;
	int rv = -1;

	if ((ext = X509V3_EXT_conf_nid(NULL, ctx, nid, value)) == NULL ||
	    !X509_add_ext(x, ext, -1)) {
		ca_err_set(err, CA_ERR_CRYPTO, "cannot add extension %s",
		    OBJ_nid2sn(nid));
		goto err;
	}
	rv = 0;
 err:
	X509_EXTENSION_free(ext);
	return rv;
}

/* Both encodings of x, in malloc'd buffers (pem NUL-terminated). */
int
ca_cert_encode(X509 *x, char **pem, unsigned char **der, size_t *der_len,
    struct ca_err *err)
{
	BIO *bio = NULL;
	unsigned char *p;
	int dlen, rv = -1;

	*pem = NULL;
	*der = NULL;
	if ((bio = BIO_new(BIO_s_mem())) == NULL || !PEM_write_bio_X509(bio, x) ||
	    (dlen = i2d_X509(x, NULL)) <= 0) {
		ca_err_set(err, CA_ERR_CRYPTO, "cannot encode a certificate");
		goto err;
	}
	if ((*pem = ca_bio_string(bio, "a certificate", NULL, err)) == NULL)
		goto err;
	if ((*der = malloc((size_t)dlen)) == NULL) {
		ca_err_sys(err, CA_ERR_CRYPTO, "malloc");
		goto err;
	}
	p = *der;
	if (i2d_X509(x, &p) != dlen) {
		ca_err_set(err, CA_ERR_CRYPTO, "cannot encode a certificate");
		goto err;
	}
	*der_len = (size_t)dlen;
	rv = 0;
 err:
	if (rv == -1) {
		free(*pem);
		free(*der);
		*pem = NULL;
		*der = NULL;
	}
	BIO_free(bio);
	return rv;
}

static int
only_space(const char *p, long n)
{
	long i;

	for (i = 0; i < n; i++)
		if (!isspace((unsigned char)p[i]))
			return 0;
	return 1;
}

/*
 * Decode the PEM block in buf, which must be of type `want` (OpenSSL's
 * older spelling with "NEW " or "X509 " in front is accepted too), and
 * be followed by nothing but white space.  `what` names the input in
 * messages.  On success *der (OPENSSL_free) holds the payload.
 */
int
ca_pem_block(const char *buf, size_t len, const char *want, const char *what,
    unsigned char **der, long *der_len, struct ca_err *err)
{
	BIO *bio = NULL;
	char *name = NULL, *header = NULL, *rest;
	unsigned char *data = NULL;
	long dlen = 0, nrest;
	int rv = -1;

	*der = NULL;
	if (len > CA_PEM_MAX) {
		ca_err_set(err, CA_ERR_INVALID, "%s larger than %d bytes",
		    what, CA_PEM_MAX);
		goto err;
	}
	if (buf == NULL || len == 0 || only_space(buf, (long)len)) {
		ca_err_set(err, CA_ERR_INVALID, "empty %s", what);
		goto err;
	}
	if ((bio = BIO_new_mem_buf(buf, (int)len)) == NULL) {
		ca_err_set(err, CA_ERR_CRYPTO, "cannot read the %s", what);
		goto err;
	}
	if (!PEM_read_bio(bio, &name, &header, &data, &dlen)) {
		ca_err_set(err, CA_ERR_INVALID, "%s is not valid PEM", what);
		goto err;
	}
	if (strcmp(name, want) != 0 &&
	    !(strncmp(name, "NEW ", 4) == 0 && strcmp(name + 4, want) == 0) &&
	    !(strncmp(name, "X509 ", 5) == 0 && strcmp(name + 5, want) == 0)) {
		ca_err_set(err, CA_ERR_INVALID, "expected a PEM %s, got %.64s",
		    want, name);
		goto err;
	}
	if (header[0] != '\0') {
		ca_err_set(err, CA_ERR_INVALID,
		    "unexpected headers in the PEM %s", want);
		goto err;
	}
	nrest = BIO_get_mem_data(bio, &rest);
	if (nrest > 0 && !only_space(rest, nrest)) {
		ca_err_set(err, CA_ERR_INVALID,
		    "unexpected data after the PEM %s", want);
		goto err;
	}
	*der = data;
	*der_len = dlen;
	data = NULL;
	rv = 0;
 err:
	OPENSSL_free(name);
	OPENSSL_free(header);
	OPENSSL_free(data);
	BIO_free(bio);
	return rv;
}

/* A certificate given as PEM (seen by its BEGIN line) or as DER. */
X509 *
ca_x509_parse(const unsigned char *buf, size_t len, struct ca_err *err)
{
	unsigned char *der = NULL;
	const unsigned char *p;
	long dlen;
	X509 *x = NULL;

	if (buf == NULL || len == 0) {
		ca_err_set(err, CA_ERR_INVALID, "empty certificate");
		goto err;
	}
	if (len > CA_PEM_MAX) {
		ca_err_set(err, CA_ERR_INVALID,
		    "certificate larger than %d bytes", CA_PEM_MAX);
		goto err;
	}
	if (memmem(buf, len, "-----BEGIN", 10) != NULL) {
		if (ca_pem_block((const char *)buf, len, "CERTIFICATE",
		    "certificate", &der, &dlen, err) == -1)
			goto err;
		p = der;
	} else {
		p = buf;
		dlen = (long)len;
	}
	{
		const unsigned char *start = p;

		x = d2i_X509(NULL, &p, dlen);
		if (x == NULL || p != start + dlen) {
			X509_free(x);
			x = NULL;
			ca_err_set(err, CA_ERR_INVALID,
			    "not a valid %s certificate",
			    der != NULL ? "PEM" : "DER");
			goto err;
		}
	}
 err:
	OPENSSL_free(der);
	return x;
}

/*
 * Read a whole regular file of at most max bytes into a malloc'd,
 * NUL-terminated buffer.  Key files come through here: the caller wipes.
 */
int
ca_file_read(const char *path, size_t max, char **buf, size_t *len,
    struct ca_err *err)
{
	struct stat st;
	char *b = NULL;
	size_t n = 0;
	ssize_t r;
	int fd = -1, rv = -1;

	*buf = NULL;
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1) {
		ca_err_sys(err, CA_ERR_IO, "%s", path);
		goto err;
	}
	if (fstat(fd, &st) == -1) {
		ca_err_sys(err, CA_ERR_IO, "%s", path);
		goto err;
	}
	if (!S_ISREG(st.st_mode) || st.st_size < 0 ||
	    (size_t)st.st_size > max) {
		ca_err_set(err, CA_ERR_IO, "%s: not a regular file of at most "
		    "%zu bytes", path, max);
		goto err;
	}
	if ((b = malloc(max + 1)) == NULL) {
		ca_err_sys(err, CA_ERR_IO, "malloc");
		goto err;
	}
	/* Read to EOF rather than trust st_size: the file may change. */
	while (n <= max) {
		r = read(fd, b + n, max + 1 - n);
		if (r == -1 && errno == EINTR)
			continue;
		if (r == -1) {
			ca_err_sys(err, CA_ERR_IO, "%s", path);
			goto err;
		}
		if (r == 0)
			break;
		n += (size_t)r;
	}
	if (n > max) {
		ca_err_set(err, CA_ERR_IO, "%s: larger than %zu bytes",
		    path, max);
		goto err;
	}
	b[n] = '\0';
	*buf = b;
	*len = n;
	b = NULL;
	rv = 0;
 err:
	if (b != NULL) {
		OPENSSL_cleanse(b, max + 1);
		free(b);
	}
	if (fd != -1)
		close(fd);
	return rv;
}

static int
write_all(int fd, const void *buf, size_t len)
{
	const unsigned char *p = buf;
	ssize_t w;

	while (len > 0) {
		w = write(fd, p, len);
		if (w == -1 && errno == EINTR)
			continue;
		if (w == -1)
			return -1;
		p += w;
		len -= (size_t)w;
	}
	return 0;
}

/*
 * Create path exclusively with mode and write buf to it; on any failure
 * the file is removed again.  An existing file is CA_ERR_EXISTS.
 */
int
ca_file_create(const char *path, const void *buf, size_t len, mode_t mode,
    struct ca_err *err)
{
	int fd, rv = -1;

	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW,
	    mode);
	if (fd == -1) {
		ca_err_sys(err, errno == EEXIST ? CA_ERR_EXISTS : CA_ERR_IO,
		    "%s", path);
		return -1;
	}
	if (write_all(fd, buf, len) == -1 || fsync(fd) == -1) {
		ca_err_sys(err, CA_ERR_IO, "%s", path);
		goto err;
	}
	if (close(fd) == -1) {
		fd = -1;
		ca_err_sys(err, CA_ERR_IO, "%s", path);
		goto err;
	}
	fd = -1;
	rv = 0;
 err:
	if (fd != -1)
		close(fd);
	if (rv == -1)
		unlink(path);
	return rv;
}

/*
 * Write buf to a new temporary file next to path (so a later rename(2)
 * is atomic) with the given mode.  *tmp receives its malloc'd name.
 */
int
ca_file_stage(const char *path, const void *buf, size_t len, mode_t mode,
    char **tmp, struct ca_err *err)
{
	char *name = NULL;
	size_t n;
	int fd = -1, rv = -1;

	*tmp = NULL;
	n = strlen(path) + sizeof(".XXXXXX");
	if ((name = malloc(n)) == NULL) {
		ca_err_sys(err, CA_ERR_IO, "malloc");
		goto err;
	}
	snprintf(name, n, "%s.XXXXXX", path);
	/* mkstemp creates the file 0600, before any byte is written. */
	if ((fd = mkstemp(name)) == -1) {
		ca_err_sys(err, CA_ERR_IO, "%s", name);
		free(name);
		name = NULL;
		goto err;
	}
	if (fchmod(fd, mode) == -1 || write_all(fd, buf, len) == -1 ||
	    fsync(fd) == -1) {
		ca_err_sys(err, CA_ERR_IO, "%s", name);
		goto err;
	}
	if (close(fd) == -1) {
		fd = -1;
		ca_err_sys(err, CA_ERR_IO, "%s", name);
		goto err;
	}
	fd = -1;
	*tmp = name;
	name = NULL;
	rv = 0;
 err:
	if (fd != -1)
		close(fd);
	ca_file_unstage(name);
	return rv;
}

/* Remove and forget a temporary file from ca_file_stage (NULL is a no-op). */
void
ca_file_unstage(char *tmp)
{
	if (tmp == NULL)
		return;
	unlink(tmp);
	free(tmp);
}

/*
 * Identity strings end up in logs and on screens, and people read them
 * to decide whom they talk to: no control characters (C0, DEL, and C1 as
 * UTF-8), and no bidirectional overrides or isolates, which would show
 * a name other than the one in the certificate.  OpenSSL checks that
 * the rest is UTF-8.
 */
static int
printable_utf8(const char *s)
{
	const unsigned char *p;

	for (p = (const unsigned char *)s; *p != '\0'; p++) {
		if (*p < 0x20 || *p == 0x7f)
			return 0;
		/* U+0080..U+009F */
		if (p[0] == 0xc2 && p[1] >= 0x80 && p[1] <= 0x9f)
			return 0;
		/* U+202A..U+202E and U+2066..U+2069 */
		if (p[0] == 0xe2 && ((p[1] == 0x80 && p[2] >= 0xaa &&
		    p[2] <= 0xae) || (p[1] == 0x81 && p[2] >= 0xa6 &&
		    p[2] <= 0xa9)))
			return 0;
	}
	return 1;
}

int
ca_name_ok(const char *s)
{
	return s != NULL && s[0] != '\0' && printable_utf8(s);
}

/*
 * A subject name UID=<userid>, CN=<cn>, emailAddress=<email>, in that
 * order; userid and email may be NULL.  OpenSSL checks the UTF-8 and the
 * RFC 5280 upper bounds (64 characters for a CN).
 */
X509_NAME *
ca_name_new(const char *userid, const char *cn, const char *email,
    struct ca_err *err)
{
	X509_NAME *name = NULL;
	const char *p;

	if (!ca_name_ok(cn)) {
		ca_err_set(err, CA_ERR_INVALID, "a name is required, without "
		    "control characters or direction overrides");
		goto err;
	}
	if (userid != NULL && (userid[0] == '\0' || strlen(userid) > 255 ||
	    !printable_utf8(userid))) {
		ca_err_set(err, CA_ERR_INVALID, "a user id is 1 to 255 "
		    "characters, without control characters");
		goto err;
	}
	if (email != NULL) {
		for (p = email; *p != '\0'; p++)
			if (*p <= ' ' || *p >= 0x7f)
				break;
		if (*p != '\0' || strchr(email, '@') == NULL ||
		    strlen(email) > 128) {
			ca_err_set(err, CA_ERR_INVALID, "e-mail address is not "
			    "a plain ASCII address of at most 128 characters");
			goto err;
		}
	}
	if ((name = X509_NAME_new()) == NULL) {
		ca_err_set(err, CA_ERR_CRYPTO, "cannot build a subject");
		goto err;
	}
	if (userid != NULL && !X509_NAME_add_entry_by_NID(name, NID_userId,
	    MBSTRING_UTF8, (const unsigned char *)userid, -1, -1, 0)) {
		ca_err_set(err, CA_ERR_INVALID, "user id not usable in a "
		    "certificate");
		goto err;
	}
	if (!X509_NAME_add_entry_by_NID(name, NID_commonName, MBSTRING_UTF8,
	    (const unsigned char *)cn, -1, -1, 0)) {
		ca_err_set(err, CA_ERR_INVALID, "name not usable in a "
		    "certificate (at most 64 characters)");
		goto err;
	}
	if (email != NULL && !X509_NAME_add_entry_by_NID(name,
	    NID_pkcs9_emailAddress, MBSTRING_ASC, (const unsigned char *)email,
	    -1, -1, 0)) {
		ca_err_set(err, CA_ERR_INVALID, "e-mail address not usable in "
		    "a certificate");
		goto err;
	}
	return name;
 err:
	X509_NAME_free(name);
	return NULL;
}

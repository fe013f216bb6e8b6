/*
 * test_cms.c - S/MIME messages of ca_cms.c: signed by the sender and
 * encrypted to each of the recipient's devices; opened only by one of
 * them, verified, and refused when altered, unsigned, unencrypted or
 * for someone else.  Messages made the way `openssl cms -sign` and
 * `-encrypt` make them (multipart/signed inside) are read too.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/cms.h>
#include <openssl/pem.h>

#include "ca.h"
#include "tap.h"

struct who {
	const char *userid;
	enum ca_keytype kt;
	char *key, *cert;
};

static struct ca *ca;
static struct who alice = { "alice@example.org", CA_KEY_EC_P256, 0, 0 },
		  bob1 = { "bob@example.org", CA_KEY_EC_P256, 0, 0 },
		  bob2 = { "bob@example.org", CA_KEY_RSA2048, 0, 0 },
		  carol = { "carol@example.org", CA_KEY_EC_P384, 0, 0 };

static void
make(struct who *w)
{
	struct ca_subject subj = { w->userid, w->userid, NULL };
	struct ca_issued is;
	struct ca_err err;
	char *csr = NULL;

	if ((w->key = ca_key_new_pem(w->kt, &err)) == NULL ||
	    (csr = ca_csr_new_pem(w->key, w->userid, w->userid, &err)) ==
		NULL ||
	    ca_issue_user(ca, csr, strlen(csr), &subj, 30, NULL, &is, &err) ==
		-1) {
		diag("%s: %s", w->userid, err.msg);
		exit(1);
	}
	w->cert = strdup(is.cert_pem);
	ca_issued_clear(&is);
	free(csr);
}

static X509 *
x509(const char *pem)
{
	BIO *b = BIO_new_mem_buf(pem, -1);
	X509 *x = PEM_read_bio_X509(b, NULL, NULL, NULL);

	BIO_free(b);
	return x;
}

static EVP_PKEY *
pkey(const char *pem)
{
	BIO *b = BIO_new_mem_buf(pem, -1);
	EVP_PKEY *k = PEM_read_bio_PrivateKey(b, NULL, NULL, NULL);

	BIO_free(b);
	return k;
}

/* The DER of a PEM certificate, compared with what a message carried. */
static int
same_cert(const char *pem, const unsigned char *der, size_t len)
{
	X509 *x = x509(pem);
	unsigned char *d = NULL;
	int n = x ? i2d_X509(x, &d) : -1;
	int same = n > 0 && (size_t)n == len && memcmp(d, der, len) == 0;

	OPENSSL_free(d);
	X509_free(x);
	return same;
}

/*
 * in, signed by w (detached: multipart/signed, as `openssl cms -sign`
 * writes; or not signed at all) and encrypted to to, as S/MIME text.
 */
static char *
by_hand(const char *in, const struct who *w, int detached, const struct who *to)
{
	STACK_OF(X509) *rs = sk_X509_new_null();
	CMS_ContentInfo *s = NULL, *e = NULL;
	BIO *b = BIO_new_mem_buf(in, -1), *mid = BIO_new(BIO_s_mem()),
	    *out = BIO_new(BIO_s_mem());
	X509 *cert = w ? x509(w->cert) : NULL;
	EVP_PKEY *key = w ? pkey(w->key) : NULL;
	char *p, *text = NULL;
	long n;

	sk_X509_push(rs, x509(to->cert));
	if (w != NULL && detached) {
		/* As openssl cms -sign: text, detached, streamed. */
		s = CMS_sign(cert, key, NULL, b, CMS_DETACHED | CMS_STREAM);
		SMIME_write_CMS(mid, s, b, CMS_DETACHED | CMS_STREAM);
	} else if (w != NULL) {
		s = CMS_sign(cert, key, NULL, b, CMS_BINARY);
		SMIME_write_CMS(mid, s, NULL, CMS_BINARY);
	} else
		BIO_puts(mid, in);
	BIO_set_mem_eof_return(mid, 0);
	e = CMS_encrypt(rs, mid, EVP_aes_256_gcm(), CMS_BINARY);
	if (e != NULL && SMIME_write_CMS(out, e, NULL, CMS_BINARY) == 1 &&
	    (n = BIO_get_mem_data(out, &p)) > 0 &&
	    (text = calloc(1, (size_t)n + 1)) != NULL)
		memcpy(text, p, (size_t)n);
	CMS_ContentInfo_free(s);
	CMS_ContentInfo_free(e);
	sk_X509_pop_free(rs, X509_free);
	X509_free(cert);
	EVP_PKEY_free(key);
	BIO_free(b);
	BIO_free(mid);
	BIO_free(out);
	return text;
}

static const char msg[] = "From: alice@example.org\r\n"
			  "To: bob@example.org\r\n"
			  "Subject: lunch\r\n\r\n"
			  "At noon, by the river.\r\n";

static void
test_round_trip(void)
{
	const char *to[] = { bob1.cert, bob2.cert };
	struct ca_cms_opened o;
	struct ca_err err;
	unsigned char *sealed = NULL;
	size_t len = 0;
	time_t now = time(NULL);

	check(ca_cms_seal((const unsigned char *)msg, strlen(msg), alice.cert,
		  alice.key, to, 2, &sealed, &len, &err) == 0,
	    "alice seals a message to both of bob's devices");
	check(sealed != NULL &&
		strstr((char *)sealed, "application/pkcs7-mime") != NULL &&
		strstr((char *)sealed, "authEnveloped-data") != NULL &&
		strstr((char *)sealed, "river") == NULL,
	    "an S/MIME entity, AuthEnvelopedData, nothing in clear");
	checkf(ca_cms_open(sealed, len, bob1.cert, bob1.key, &o, &err) == 0 &&
		o.content_len == strlen(msg) &&
		memcmp(o.content, msg, o.content_len) == 0 &&
		same_cert(alice.cert, o.signer_der, o.signer_len) &&
		o.signed_at >= now - 60 && o.signed_at <= now + 60,
	    "bob's EC device opens it: the content, alice's certificate, "
	    "when signed (%s)",
	    err.msg);
	ca_cms_opened_clear(&o);
	checkf(ca_cms_open(sealed, len, bob2.cert, bob2.key, &o, &err) == 0 &&
		memcmp(o.content, msg, o.content_len) == 0,
	    "bob's RSA device opens it too (%s)", err.msg);
	ca_cms_opened_clear(&o);
	checkf(ca_cms_open(sealed, len, carol.cert, carol.key, &o, &err) ==
		    -1 &&
		err.code == CA_ERR_SIGNATURE && o.content == NULL,
	    "carol, not a recipient, can not (%s)", err.msg);
	check(ca_cms_check(sealed, len, &err) == 0,
	    "ca_cms_check: an encrypted S/MIME message");
	check(ca_cms_check((const unsigned char *)msg, strlen(msg), &err) ==
		    -1 &&
		strstr(err.msg, "not an S/MIME message") != NULL,
	    "ca_cms_check: text in clear is refused");
	/* A character of the ciphertext changed: the GCM tag says so. */
	sealed[len / 2] = sealed[len / 2] == 'A' ? 'B' : 'A';
	checkf(ca_cms_open(sealed, len, bob1.cert, bob1.key, &o, &err) == -1,
	    "an altered message is refused (%s)", err.msg);
	free(sealed);
}

static void
test_refusals(void)
{
	const char *to[] = { bob1.cert };
	struct ca_cms_opened o;
	struct ca_err err;
	unsigned char *sealed = NULL;
	size_t len;
	char *m;

	check(ca_cms_seal((const unsigned char *)msg, strlen(msg), alice.cert,
		  alice.key, to, 0, &sealed, &len, &err) == -1 &&
		sealed == NULL,
	    "a message to nobody is refused");
	check(ca_cms_seal((const unsigned char *)msg, strlen(msg), alice.cert,
		  carol.key, to, 1, &sealed, &len, &err) == -1 &&
		strstr(err.msg, "do not belong together") != NULL,
	    "signing with a key that is not the certificate's is refused");
	m = by_hand(msg, NULL, 0, &bob1);
	checkf(m != NULL &&
		ca_cms_open((unsigned char *)m, strlen(m), bob1.cert, bob1.key,
		    &o, &err) == -1 &&
		err.code == CA_ERR_POLICY && strstr(err.msg, "not signed"),
	    "encrypted but not signed: refused (%s)", err.msg);
	free(m);
	checkf(ca_cms_open((const unsigned char *)msg, strlen(msg), bob1.cert,
		   bob1.key, &o, &err) == -1,
	    "plain text: refused (%s)", err.msg);
	checkf(ca_cms_open((const unsigned char *)"", 0, bob1.cert, bob1.key,
		   &o, &err) == -1,
	    "nothing: refused (%s)", err.msg);
}

static void
test_as_openssl_cms_writes(void)
{
	struct ca_cms_opened o;
	struct ca_err err;
	char *m;

	m = by_hand(msg, &alice, 1, &bob1);
	checkf(m != NULL &&
		ca_cms_open((unsigned char *)m, strlen(m), bob1.cert, bob1.key,
		    &o, &err) == 0 &&
		o.content_len == strlen(msg) &&
		memcmp(o.content, msg, o.content_len) == 0 &&
		same_cert(alice.cert, o.signer_der, o.signer_len),
	    "multipart/signed inside, as openssl cms -sign writes: read "
	    "(%s)",
	    err.msg);
	ca_cms_opened_clear(&o);
	free(m);
	m = by_hand(msg, &alice, 0, &bob1);
	checkf(m != NULL &&
		ca_cms_open((unsigned char *)m, strlen(m), bob1.cert, bob1.key,
		    &o, &err) == 0 &&
		memcmp(o.content, msg, o.content_len) == 0,
	    "opaque signed-data inside: read (%s)", err.msg);
	ca_cms_opened_clear(&o);
	free(m);
}

int
main(void)
{
	struct who *all[] = { &alice, &bob1, &bob2, &carol };
	struct ca_err err;
	size_t i;

	(void)unlink("cms-ca.key");
	(void)unlink("cms-ca.pem");
	if (ca_create("cms-ca.key", "cms-ca.pem", CA_KEY_EC_P256, "cms", 30,
		&err) == -1 ||
	    (ca = ca_open("cms-ca.key", "cms-ca.pem", &err)) == NULL) {
		diag("CA: %s", err.msg);
		return 1;
	}
	for (i = 0; i < sizeof(all) / sizeof(all[0]); i++)
		make(all[i]);
	test_round_trip();
	test_refusals();
	test_as_openssl_cms_writes();
	for (i = 0; i < sizeof(all) / sizeof(all[0]); i++) {
		ca_secret_free(all[i]->key);
		free(all[i]->cert);
	}
	ca_free(ca);
	(void)unlink("cms-ca.key");
	(void)unlink("cms-ca.pem");
	return tap_done();
}

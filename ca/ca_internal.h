/*
 * ca_internal.h - private declarations shared by the files of ca/.
 *
 * Nothing here is seen outside ca/; OpenSSL types are fine in this header.
 */
#ifndef CA_INTERNAL_H
#define CA_INTERNAL_H

#include <sys/types.h>

#include <stdarg.h>
#include <stddef.h>
#include <time.h>

#include <openssl/asn1t.h>
#include <openssl/evp.h>
#include <openssl/ocsp.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "ca.h"
#include "ca_signer.h"

/* Hard limits on what we accept as input: every input is bounded. */
#define CA_PEM_MAX	(64 * 1024)	/* a CSR or certificate */
#define CA_FILE_MAX	(1024 * 1024)	/* a key or certificate file */
#define CA_DAYS_MAX	36500
#define CA_RSA_MAX_BITS	8192		/* larger keys only cost us CPU */
#define CA_PASS_MAX	1024

/* Seconds a new certificate is backdated, for peers with a slow clock. */
#define CA_BACKDATE	300

/*
 * The extensions that are the same in every leaf a CA signs, built once
 * by ca_open (ca_issue.c): from their configuration strings they cost
 * more than the signature of the certificate.
 */
enum ca_leaf_ext {
	CA_EXT_BC,		/* basicConstraints CA:FALSE */
	CA_EXT_KU,		/* keyUsage for a signing-only key (Ed25519) */
	CA_EXT_KU_EC,		/* keyUsage for an EC key: also ECDH */
	CA_EXT_KU_RSA,		/* keyUsage for an RSA key */
	CA_EXT_EKU_PEER,	/* extendedKeyUsage of a user: both ends */
	CA_EXT_EKU_SERVER,	/* extendedKeyUsage of dird's certificate */
	CA_EXT_AKID,		/* authorityKeyIdentifier: this CA's key */
	CA_EXT_N
};

struct ca {
	struct ca_signer *signer;	/* holds the key, here or elsewhere */
	X509 *cert;			/* the CA certificate */
	char *pem;			/* cert as PEM, NUL-terminated */
	unsigned char *der;		/* cert as DER */
	size_t der_len;
	char fp[CA_FP_HEX_LEN];		/* SHA-256 of der */
	X509_EXTENSION *leaf_ext[CA_EXT_N];
	/* ca_sign.c: what putting signed objects together needs. */
	EVP_PKEY *standin;		/* a throwaway key of the CA's kind */
	X509_ALGOR *sigalg;		/* the CA key's signature algorithm */
	unsigned char *sigalg_der;	/* ... as DER */
	size_t sigalg_len;
	X509 *standin_cert;		/* holding standin, for OCSP */
	unsigned char *respid;		/* OCSP ResponderID byKey, DER */
	size_t respid_len;
	unsigned char *ocsp_certs;	/* [0] { the CA certificate }, DER */
	size_t ocsp_certs_len;
};

/*
 * A signer (ca_signer.h) is these operations on its own state: the
 * seam where another holder of the key (an HSM) fits in.  sign checks
 * the TBS as ca_signer_sign says and writes at most CA_SIG_MAX bytes.
 */
struct ca_signer_ops {
	int (*sign)(void *impl, enum ca_tbs what, const unsigned char *tbs,
	    size_t len, unsigned char *sig, size_t *sig_len,
	    struct ca_err *err);
	void (*free)(void *impl);
};
/* A signer of ops on impl (freed with it, also on failure). */
struct ca_signer *ca_signer_new(const struct ca_signer_ops *ops, void *impl,
    const unsigned char *spki, size_t spki_len, struct ca_err *err);

/*
 * What ca_issue.c puts into a leaf certificate besides the key.  Subject
 * and SAN are borrowed; eku is CA_EXT_EKU_PEER or CA_EXT_EKU_SERVER;
 * urls may be NULL.
 */
struct ca_profile {
	X509_NAME *subject;
	X509_PUBKEY *spki; /* when set, the key as it came; else pub encoded */
	GENERAL_NAMES *san;
	enum ca_leaf_ext eku;
	const struct ca_urls *urls;
};

/* ca_util.c: errors */
void ca_err_clear(struct ca_err *err);
void ca_err_set(struct ca_err *err, enum ca_errcode code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void ca_err_prefix(struct ca_err *err, const char *prefix);
void ca_err_sys(struct ca_err *err, enum ca_errcode code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* ca_util.c: keys */
EVP_PKEY *ca_keygen(enum ca_keytype kt, struct ca_err *err);
const EVP_MD *ca_sign_md(EVP_PKEY *key);
/* The AlgorithmIdentifier of key's signatures, DER (OPENSSL_free). */
int ca_sigalg_der(EVP_PKEY *key, unsigned char **der, size_t *len,
    struct ca_err *err);
int ca_key_is_rsa(EVP_PKEY *key);
char *ca_key_to_pem(EVP_PKEY *key, size_t *len, struct ca_err *err);
/*
 * What a memory BIO holds, as a malloc'd NUL-terminated string (*len, if
 * not NULL, without the NUL).  An empty BIO is "cannot encode <what>".
 */
char *ca_bio_string(BIO *bio, const char *what, size_t *len,
    struct ca_err *err);
EVP_PKEY *ca_key_from_pem(const char *pem, size_t len, struct ca_err *err);

/* ca_util.c: certificates */
int ca_serial_set_random(X509 *x, struct ca_err *err);
int ca_serial_hex(const ASN1_INTEGER *ai, char out[CA_SERIAL_HEX_MAX],
    struct ca_err *err);
ASN1_INTEGER *ca_serial_parse(const char *hex, struct ca_err *err);
int ca_fp_hex(const unsigned char *der, size_t len, char out[CA_FP_HEX_LEN],
    struct ca_err *err);
int ca_time_epoch(const ASN1_TIME *t, time_t *out, struct ca_err *err);
int ca_set_validity(X509 *x, int days, struct ca_err *err);
int ca_ext_add(X509 *x, X509V3_CTX *ctx, int nid, const char *value,
    struct ca_err *err);
int ca_cert_encode(X509 *x, char **pem, unsigned char **der, size_t *der_len,
    struct ca_err *err);
int ca_pem_block(const char *buf, size_t len, const char *want,
    const char *what, unsigned char **der, long *der_len, struct ca_err *err);
X509 *ca_x509_parse(const unsigned char *buf, size_t len, struct ca_err *err);
/* ca_signer.c: the certificate in the file cert_path. */
X509 *ca_cert_load(const char *cert_path, struct ca_err *err);

X509_NAME *ca_name_new(const char *userid, const char *cn, const char *email,
    struct ca_err *err);

/* ca_util.c: files */
int ca_file_read(const char *path, size_t max, char **buf, size_t *len,
    struct ca_err *err);
int ca_file_create(const char *path, const void *buf, size_t len, mode_t mode,
    struct ca_err *err);
int ca_file_stage(const char *path, const void *buf, size_t len, mode_t mode,
    char **tmp, struct ca_err *err);
void ca_file_unstage(char *tmp);

/* ca_der.c: a part of a DER buffer. */
struct ca_der_span {
	const unsigned char *p;
	size_t len;
};
/* The elements of the one SEQUENCE der is (at most max of them). */
int ca_der_seq_split(const unsigned char *der, size_t len,
    struct ca_der_span *v, size_t max, size_t *n, struct ca_err *err);
/* A TLV whose content is the n spans, malloc'd. */
unsigned char *ca_der_tlv(int constructed, int tag, int xclass,
    const struct ca_der_span *v, size_t n, size_t *out_len,
    struct ca_err *err);
/* SEQUENCE { tbs, alg, BIT STRING sig [, extra] }, malloc'd. */
unsigned char *ca_der_signed(const struct ca_der_span *tbs,
    const struct ca_der_span *alg, const unsigned char *sig, size_t sig_len,
    const struct ca_der_span *extra, size_t *out_len, struct ca_err *err);

/*
 * A TBSCertificate as the signer reads it and enrolment writes it:
 * OpenSSL's own X509_CINF would decode the subject's public key, which
 * OpenSSL 3.0 does through its provider decoders at about 90 us a time,
 * more than the signature.  Nothing needs the key as an object here:
 * the subjectPublicKeyInfo is its algorithm and its bits.  The ASN.1
 * items are in ca_tbs.c.
 */
typedef struct {
	X509_ALGOR *alg;
	ASN1_BIT_STRING *key;
} TBS_SPKI;

typedef struct {
	ASN1_INTEGER *version;
	ASN1_INTEGER *serial;
	X509_ALGOR *sigalg;
	X509_NAME *issuer;
	X509_VAL *validity;
	X509_NAME *subject;
	TBS_SPKI *spki;
	ASN1_BIT_STRING *issuer_uid;
	ASN1_BIT_STRING *subject_uid;
	STACK_OF(X509_EXTENSION) * exts;
} TBS_CERT;
DECLARE_ASN1_ITEM(TBS_SPKI)
DECLARE_ASN1_ITEM(TBS_CERT)

/* ca_tbs.c: what every signer checks before it signs (ca_signer.h). */
int ca_tbs_check(X509 *ca_cert, const unsigned char *alg, size_t alg_len,
    enum ca_tbs what, const unsigned char *tbs, size_t len,
    struct ca_err *err);

/* ca_sign.c: signing through ca->signer. */
int ca_sign_init(struct ca *ca, struct ca_err *err);
void ca_sign_free(struct ca *ca);
X509 *ca_sign_cert(const struct ca *ca, X509 *x, struct ca_err *err);
/*
 * x signed, as DER only (*der from malloc, *len bytes): what enrolment
 * uses.  Not parsed again nor verified, unlike ca_sign_cert: parsing a
 * certificate costs OpenSSL 3.0 about 90 us for its key alone, and a
 * signature that does not verify could only come from a compromised
 * signer process, which holds the key and could sign anything anyway.
 */
int ca_sign_cert_der(const struct ca *ca, X509 *x, unsigned char **der,
    size_t *len, struct ca_err *err);
int ca_sign_crl(const struct ca *ca, X509_CRL *crl, unsigned char **der,
    size_t *len, struct ca_err *err);
int ca_sign_ocsp(const struct ca *ca, OCSP_BASICRESP *bs, unsigned char **der,
    size_t *len, struct ca_err *err);

/* ca_csr.c: a checked CSR. */
struct ca_csr {
	X509_REQ *req;
	EVP_PKEY *pub; /* its key, owned: see ca_csr.c */
};
int ca_csr_load(const char *pem, size_t len, struct ca_csr *csr,
    struct ca_err *err);
void ca_csr_clear(struct ca_csr *csr);

/* ca_issue.c */
int ca_leaf_ext_init(struct ca *ca, struct ca_err *err);
void ca_leaf_ext_free(struct ca *ca);
X509 *ca_issue_leaf(const struct ca *ca, EVP_PKEY *pub,
    const struct ca_profile *p, int days, struct ca_err *err);
X509 *ca_issue_for_subject(const struct ca *ca, EVP_PKEY *pub,
    X509_PUBKEY *spki, const struct ca_subject *subj, int days,
    const struct ca_urls *urls,
    struct ca_err *err);
int ca_issued_fill(X509 *x, struct ca_issued *out, struct ca_err *err);
/*
 * The same for a user certificate of subj, described in *out from the
 * signer's DER (ca_sign_cert_der): the enrolment path, with no parsing
 * of the signed certificate.
 */
int ca_issue_for_subject_fill(const struct ca *ca, EVP_PKEY *pub,
    X509_PUBKEY *spki, const struct ca_subject *subj, int days,
    const struct ca_urls *urls, struct ca_issued *out, struct ca_err *err);

#endif

/*
 * ca.h - the DIR certificate authority library.
 *
 * Everything the registry needs from a CA: create one, issue the server
 * certificate for port 4604, check CSRs, issue user certificates whose
 * subject and extensions come from the user record (never from the CSR),
 * build numbered CRLs, and generate keys + PKCS#12 files for the
 * centralized model.  OpenSSL 3 only: no database, no HTTP, no printing.
 *
 * Borders are plain types: PEM/DER buffers, paths, strings.  No OpenSSL
 * type leaves this library.  Every fallible function returns 0 / -1 (or a
 * pointer / NULL) and fills the caller's struct ca_err, so reporting an
 * error never allocates.
 *
 * Thread safety: a struct ca is read-only after ca_open() and may be used by
 * several threads at once.
 */
#ifndef CA_H
#define CA_H

#include <stddef.h>
#include <time.h>

#define CA_WUR __attribute__((warn_unused_result))

enum ca_errcode {
	CA_ERR_NONE = 0,
	CA_ERR_INVALID,	/* malformed input: garbage, wrong PEM type, empty */
	CA_ERR_SIGNATURE, /* a CSR whose self-signature does not verify */
	CA_ERR_POLICY,	/* well-formed but refused: key type or size */
	CA_ERR_IO,	/* a file could not be read or written */
	CA_ERR_EXISTS,	/* refusing to overwrite an existing CA */
	CA_ERR_CRYPTO,	/* an OpenSSL failure that is not the input's fault */
	CA_ERR_UNAVAILABLE, /* the signer (ca_signer.h) can not be reached */
};

struct ca_err {
	enum ca_errcode code;
	char msg[256];
};

enum ca_keytype {
	CA_KEY_EC_P256 = 0, /* default */
	CA_KEY_EC_P384,
	CA_KEY_RSA2048,
	CA_KEY_RSA3072,
	CA_KEY_ED25519,
};

/* Hex serial: up to 20 bytes -> 40 hex digits, lower case, no leading 0s. */
#define CA_SERIAL_HEX_MAX 41
#define CA_FP_HEX_LEN 65 /* SHA-256, 64 lower-case hex digits + NUL */

/*
 * Where relying parties find the registry's revocation data, written
 * into every user certificate: a CRL distribution point (crl), the OCSP
 * responder and the CA certificate (authorityInfoAccess ocsp and
 * caIssuers).  Each may be NULL (left out); the whole struct may be NULL.
 */
struct ca_urls {
	const char *crl;
	const char *ocsp;
	const char *issuer;
};

/* Identity of a certificate holder, decided by the registry. */
struct ca_subject {
	const char *userid; /* UID, lower case e-mail-like; required */
	const char *name;   /* CN; required */
	const char *email;  /* emailAddress + SAN rfc822Name; may be NULL */
};

/* What was issued.  Free the buffers with ca_issued_clear(). */
struct ca_issued {
	char *cert_pem;	    /* NUL-terminated PEM */
	unsigned char *der; /* the same certificate as DER */
	size_t der_len;
	char serial[CA_SERIAL_HEX_MAX];
	char fingerprint[CA_FP_HEX_LEN]; /* SHA-256 of the DER */
	time_t not_before;
	time_t not_after;
};

/* Parsed facts about one certificate (see ca_cert_info). */
struct ca_cert_info {
	char serial[CA_SERIAL_HEX_MAX];
	char fingerprint[CA_FP_HEX_LEN];
	char userid[256]; /* subject UID, "" if none */
	char name[256];	  /* subject CN, "" if none */
	char issuer[512]; /* issuer DN, one line, RFC 2253 */
	time_t not_before;
	time_t not_after;
};

/* RFC 5280 CRLReason codes the library treats specially. */
#define CA_REASON_HOLD 6		/* certificateHold */
#define CA_REASON_REMOVE_FROM_CRL 8	/* never in a full CRL */

/* One entry of a CRL. */
struct ca_revoked {
	const char *serial; /* hex as in struct ca_issued */
	time_t revoked_at;
	int reason; /* RFC 5280 CRLReason code, 0 = unspecified */
};

struct ca;

/*
 * Create a new CA: a key of type kt written to key_path (mode 0600, created
 * exclusively) and a self-signed certificate (basicConstraints CA:TRUE
 * critical, keyUsage keyCertSign+cRLSign critical, SKI) with subject
 * "CN=<cn>" written to cert_path, valid for `days`.  Refuses (CA_ERR_EXISTS)
 * when either file exists.  Nothing is left behind on failure.
 */
int ca_create(const char *key_path, const char *cert_path, enum ca_keytype kt,
    const char *cn, int days, struct ca_err *err) CA_WUR;

/*
 * Load a CA from its key and certificate files; checks they match.  The
 * key stays in this process (a key signer, ca_signer.h); ca_open_signer
 * loads a CA whose key is elsewhere.
 */
struct ca *ca_open(const char *key_path, const char *cert_path,
    struct ca_err *err) CA_WUR;
void ca_free(struct ca *ca);

/* The CA certificate as PEM (NUL-terminated) or DER; borrowed from ca. */
const char *ca_cert_pem(const struct ca *ca);
const unsigned char *ca_cert_der(const struct ca *ca, size_t *len);
/* SHA-256 fingerprint of the CA certificate, lower-case hex; borrowed. */
const char *ca_fingerprint(const struct ca *ca);

/*
 * Issue the TLS server certificate of dird: a new key of type kt, subject
 * CN=hosts[0], SAN with every host (an IP literal becomes an iPAddress
 * entry, anything else a dNSName), EKU serverAuth, valid `days`.  Key and
 * certificate are written to key_path (0600) and cert_path, replacing them.
 */
int ca_issue_server(const struct ca *ca, const char *const *hosts,
    size_t nhosts, enum ca_keytype kt, int days, const char *key_path,
    const char *cert_path, struct ca_err *err) CA_WUR;

/*
 * Check a CSR (PEM, len bytes, need not be NUL-terminated): it parses, its
 * self-signature verifies, and its key is EC P-256/P-384, Ed25519 or RSA
 * >= 2048 bits.  Anything else fails with a reason a person can act on.
 */
int ca_csr_check(const char *pem, size_t len, struct ca_err *err) CA_WUR;

/*
 * A CSR that passed the checks of ca_csr_check, kept so that issuing for
 * it (ca_issue_user_csr) does not parse and verify it again; only its
 * public key is used.  ca_csr_new returns a new handle (free with
 * ca_csr_free; NULL is a no-op) or NULL with *err as ca_csr_check fills
 * it.  A handle is read-only once made and may be shared by threads.
 */
struct ca_csr;
struct ca_csr *ca_csr_new(const char *pem, size_t len, struct ca_err *err)
    CA_WUR;
void ca_csr_free(struct ca_csr *csr);

/*
 * Issue a user certificate for the key of a CSR that passes ca_csr_check.
 * Subject UID=<userid>, CN=<name> (+ emailAddress), SAN rfc822Name of
 * the user id and of the email when known and different (S/MIME readers
 * match the sender by them), random positive 128-bit serial, SKI/AKI,
 * keyUsage digitalSignature (+ keyAgreement for EC, keyEncipherment for
 * RSA), EKU clientAuth and emailProtection (never serverAuth: no user
 * certificate may pass for a TLS server), the revocation URLs
 * of urls (CRL distribution point, authorityInfoAccess), valid for `days`
 * from now (backdated 5 minutes for clock skew).  Nothing of the CSR but
 * its public key is used.  On success *out owns new buffers.
 */
int ca_issue_user(const struct ca *ca, const char *csr_pem, size_t csr_len,
    const struct ca_subject *subj, int days, const struct ca_urls *urls,
    struct ca_issued *out, struct ca_err *err) CA_WUR;
/* ca_issue_user for a CSR already checked by ca_csr_new (borrowed). */
int ca_issue_user_csr(const struct ca *ca, const struct ca_csr *csr,
    const struct ca_subject *subj, int days, const struct ca_urls *urls,
    struct ca_issued *out, struct ca_err *err) CA_WUR;
void ca_issued_clear(struct ca_issued *is);

/*
 * Build a signed CRL (v2, with a CRL number and AKI) listing `n` revoked
 * serials, thisUpdate = this_update, nextUpdate = next_update.  An entry
 * with reason removeFromCRL is refused (CA_ERR_INVALID).  On success
 * *der is a new buffer (free()) of *der_len bytes.
 */
int ca_crl_build(const struct ca *ca, const struct ca_revoked *rev, size_t n,
    long number, time_t this_update, time_t next_update,
    unsigned char **der, size_t *der_len, struct ca_err *err) CA_WUR;

/*
 * OCSP responder side (RFC 6960; RFC 5019's profile).  A request is
 * parsed once (ca_ocsp_req_parse: a DER OCSPRequest of at most
 * CA_OCSP_DER_MAX bytes asking about 1 to CA_OCSP_REQ_MAX certificates);
 * the caller looks up the status of each serial that names this CA
 * (ca_ocsp_req_serial; NULL for a certificate of another issuer, to be
 * answered CA_OCSP_UNKNOWN) and ca_ocsp_respond signs one answer per
 * certificate with the CA key, valid from `now` for `validity` seconds,
 * echoing the request's nonce.  A serial this CA never issued is
 * answered REVOKED with not_issued set (RFC 6960 2.2).  *der is a new
 * buffer (free()).  ca_ocsp_error makes the unsigned answer for a
 * request that could not be served; it returns 0 or -1 (no memory).
 */
#define CA_OCSP_REQ_MAX 8
#define CA_OCSP_DER_MAX 8192

enum ca_ocsp_status { CA_OCSP_GOOD, CA_OCSP_REVOKED, CA_OCSP_UNKNOWN };

struct ca_ocsp_answer {
	enum ca_ocsp_status status;
	time_t revoked_at;	/* CA_OCSP_REVOKED */
	int reason;		/* CA_OCSP_REVOKED: CRLReason, 0 unspecified */
	int not_issued;		/* CA_OCSP_REVOKED: no such certificate */
};

enum ca_ocsp_error {
	CA_OCSP_MALFORMED,	/* malformedRequest */
	CA_OCSP_INTERNAL,	/* internalError */
	CA_OCSP_TRY_LATER,	/* tryLater: the store is unavailable */
	CA_OCSP_UNAUTHORIZED,	/* unauthorized */
};

struct ca_ocsp_req;
struct ca_ocsp_req *ca_ocsp_req_parse(const struct ca *ca,
    const unsigned char *der, size_t len, struct ca_err *err) CA_WUR;
void ca_ocsp_req_free(struct ca_ocsp_req *q);
size_t ca_ocsp_req_count(const struct ca_ocsp_req *q);
const char *ca_ocsp_req_serial(const struct ca_ocsp_req *q, size_t i);
int ca_ocsp_respond(const struct ca *ca, const struct ca_ocsp_req *q,
    const struct ca_ocsp_answer *ans, time_t now, int validity,
    unsigned char **der, size_t *len, struct ca_err *err) CA_WUR;
int ca_ocsp_error(enum ca_ocsp_error e, unsigned char **der, size_t *len)
    CA_WUR;

/*
 * Centralized model: generate a key of type kt for subj, issue its
 * certificate as ca_issue_user does, and pack key + certificate + CA
 * certificate into a PKCS#12 protected by passphrase (AES-256-CBC,
 * PBKDF2 with a high iteration count, SHA-256 MAC).  *p12 is a new buffer
 * (free()); *out describes the certificate.
 */
int ca_issue_p12(const struct ca *ca, const struct ca_subject *subj,
    enum ca_keytype kt, int days, const struct ca_urls *urls,
    const char *passphrase,
    unsigned char **p12, size_t *p12_len, struct ca_issued *out,
    struct ca_err *err) CA_WUR;

/*
 * 1 if s may be a name (CN) in a certificate: not empty, no control
 * characters (C0, DEL, C1) and no bidirectional overrides or isolates.
 * The same rule for whoever records a user's name, so that no user is
 * made who could never get a certificate.
 */
int ca_name_ok(const char *s);

/*
 * Parse a certificate given as PEM or DER (detected) into *info.  Does not
 * verify anything.
 */
int ca_cert_info(const unsigned char *buf, size_t len,
    struct ca_cert_info *info, struct ca_err *err) CA_WUR;

/*
 * A DER certificate as PEM (new, NUL-terminated; free()).  Meant for
 * certificates from the registry's own store: it checks that der is one
 * DER SEQUENCE spanning len bytes, but does not parse the certificate.
 */
char *ca_der_to_pem(const unsigned char *der, size_t len,
    struct ca_err *err) CA_WUR;

/*
 * Check that buf is a well-formed PKCS#12 (DER, with a MAC), without
 * knowing its passphrase: what the registry can say about a backup.
 */
int ca_p12_check(const unsigned char *buf, size_t len, struct ca_err *err)
    CA_WUR;

/*
 * A device's own backup: its key, its certificate and the CA certificate
 * (each PEM) packed as ca_issue_p12 packs them, named `name`.  The key
 * must be the certificate's.  *der is new (free()).
 */
int ca_p12_pack(const char *key_pem, const char *cert_pem, const char *ca_pem,
    const char *passphrase, const char *name, unsigned char **der,
    size_t *len, struct ca_err *err) CA_WUR;

/* A key and its certificate, PEM each. */
struct ca_p12_pair {
	char *key_pem;
	char *cert_pem;
};
#define CA_P12_PAIRS_MAX 32
/*
 * ca_p12_pack with more pairs in the same file: the keys of earlier
 * devices that a restore kept, so that the backup of any device reads
 * all the mail of the user.  The device's own pair comes first, named
 * `name`; each pair is tied to its certificate by a localKeyID, so that
 * openssl pkcs12 and mail programs take the first as the identity.
 * Every key must be its certificate's; at most CA_P12_PAIRS_MAX in all.
 */
int ca_p12_pack_more(const char *key_pem, const char *cert_pem,
    const char *ca_pem, const struct ca_p12_pair *more, size_t nmore,
    const char *passphrase, const char *name, unsigned char **der,
    size_t *len, struct ca_err *err) CA_WUR;
/*
 * Every key in a PKCS#12 with the certificate it belongs to, the first
 * the one ca_p12_unpack gives (at most CA_P12_PAIRS_MAX; a key without
 * its certificate is left out).  *pairs new (ca_p12_pairs_free).
 */
int ca_p12_unpack_all(const unsigned char *der, size_t len,
    const char *passphrase, struct ca_p12_pair **pairs, size_t *n,
    struct ca_err *err) CA_WUR;
void ca_p12_pairs_free(struct ca_p12_pair *pairs, size_t n);
/*
 * Open a PKCS#12 with passphrase: its key (PEM, free with
 * ca_secret_free) and certificate (PEM, free()), which must belong
 * together.  Nothing is trusted: the caller checks whose it is.
 */
int ca_p12_unpack(const unsigned char *der, size_t len, const char *passphrase,
    char **key_pem, char **cert_pem, struct ca_err *err) CA_WUR;

/*
 * The status of a certificate (PEM) as a relying party sees it with only
 * the CA file and a CRL file (DER; NULL or missing: not checked): "valid",
 * "revoked", "expired" or "invalid: why", into buf.
 */
void ca_cert_status(const char *pem, const char *ca_file, const char *crl_file,
    char *buf, size_t len);

/* 1 if cert (PEM or DER) was signed by this CA's key, 0 if not, -1 on error. */
int ca_cert_is_ours(const struct ca *ca, const unsigned char *buf, size_t len,
    struct ca_err *err) CA_WUR;

/*
 * Another domain's registry (federation).  ca_verify_registry: leaf
 * (DER) is a registry's certificate (serverAuth, no user id) issued by
 * the CA ca_der and valid at now; 0, or -1 with the reason.
 * ca_tlsa_match: 1 if a DANE-TA TLSA record's selector (0 the whole
 * certificate, 1 its SubjectPublicKeyInfo), matching type (0 exact,
 * 1 SHA-256, 2 SHA-512) and data name the certificate ca_der, else 0.
 * ca_is_ca_cert: 1 if der is one self-signed CA certificate.
 * ca_der_sha256_hex: the SHA-256 of der as 64 lower-case hex digits.
 */
int ca_verify_registry(const unsigned char *ca_der, size_t ca_len,
    const unsigned char *leaf_der, size_t leaf_len, time_t now,
    struct ca_err *err) CA_WUR;
int ca_tlsa_match(const unsigned char *ca_der, size_t ca_len, int selector,
    int mtype, const unsigned char *data, size_t len);
int ca_is_ca_cert(const unsigned char *der, size_t len);
int ca_der_sha256_hex(const unsigned char *der, size_t len,
    char out[CA_FP_HEX_LEN]) CA_WUR;

/*
 * Client side helpers (dchat, tests): generate a private key (PEM, PKCS#8,
 * unencrypted; caller frees with ca_secret_free) and a CSR for it (PEM, free()).
 */
char *ca_key_new_pem(enum ca_keytype kt, struct ca_err *err) CA_WUR;
char *ca_csr_new_pem(const char *key_pem, const char *userid, const char *cn,
    struct ca_err *err) CA_WUR;
/* Wipe and free a NUL-terminated secret (NULL is a no-op). */
void ca_secret_free(char *s);

/*
 * Parse "ec", "p256", "p384", "rsa", "rsa3072", "rsa2048", "ed25519"
 * (case-insensitive; "ec" is P-256, "rsa" is RSA 3072).  0 or -1.
 */
int ca_keytype_parse(const char *s, enum ca_keytype *kt) CA_WUR;

/*
 * Map a reason name ("keyCompromise", "superseded", ..., case-insensitive)
 * to its RFC 5280 code, -1 if unknown; ca_reason_name is the inverse and
 * returns NULL for a code that is not used (7, or out of 0..10).
 */
int ca_reason_parse(const char *s);
const char *ca_reason_name(int code);

/*
 * S/MIME messages (ca_cms.c): RFC 8551, CMS signed then encrypted.
 * A message goes to at most CA_CMS_RECIPS_MAX certificates (the devices
 * of one recipient) and is at most CA_CMS_MAX bytes sealed.
 */
#define CA_CMS_RECIPS_MAX 16
#define CA_CMS_MAX (64 * 1024 * 1024)

/*
 * content (an RFC 5322 message or a MIME entity) signed with the
 * sender's certificate and key (opaque SignedData), then encrypted with
 * AES-256-GCM (AuthEnvelopedData) to every recipient certificate.  *out
 * (free()) is the S/MIME entity, "Content-Type: application/pkcs7-mime;
 * smime-type=authEnveloped-data" and its base64, NUL-terminated.
 */
int ca_cms_seal(const unsigned char *content, size_t len, const char *cert_pem,
    const char *key_pem, const char *const *recip_pem, size_t nrecip,
    unsigned char **out, size_t *outlen, struct ca_err *err) CA_WUR;

/*
 * content encrypted (AES-256-GCM, AuthEnvelopedData, not signed) to the
 * one certificate recip_pem: a key escrowed to an escrow officer, who
 * opens it with `openssl cms -decrypt`.  *out (free()) is the S/MIME
 * entity, NUL-terminated.
 */
int ca_cms_envelope(const unsigned char *content, size_t len,
    const char *recip_pem, unsigned char **out, size_t *outlen,
    struct ca_err *err) CA_WUR;

/*
 * EST (RFC 7030) bodies.  ca_est_certs: the n PEM certificates as a
 * PKCS#7 certs-only structure (DER), in base64 without line breaks (*b64:
 * free(), NUL-terminated).  ca_est_csr: a base64 DER PKCS#10 (white
 * space ignored) as PEM (*pem: free()); who gets the identity its
 * subject names (UID, else emailAddress, else a CN with an '@'), or "".
 * Its signature is checked where it is issued, as for any CSR.
 */
int ca_est_certs(const char *const *pems, size_t n, char **b64, size_t *len,
    struct ca_err *err) CA_WUR;
int ca_est_csr(const char *b64, size_t len, char **pem, char *who,
    size_t wholen, struct ca_err *err) CA_WUR;

/* What ca_cms_open found in a message. */
struct ca_cms_opened {
	unsigned char *content; /* what was signed, NUL-terminated */
	size_t content_len;
	unsigned char *signer_der; /* the signer's certificate, DER */
	size_t signer_len;
	time_t signed_at; /* its signingTime; 0 when it gives none */
};

/*
 * Decrypt an S/MIME message with our certificate and key, then verify
 * the signature inside (opaque, or multipart/signed as `openssl cms
 * -sign` writes it): exactly one signer, whose certificate the message
 * carries.  Only the cryptography is checked: the caller judges whose
 * that certificate is and whether it was valid at signed_at.  A message
 * not encrypted, not signed, not for this key, or altered is refused
 * (CA_ERR_POLICY, CA_ERR_SIGNATURE).  out is cleared on -1.
 */
int ca_cms_open(const unsigned char *msg, size_t len, const char *cert_pem,
    const char *key_pem, struct ca_cms_opened *out, struct ca_err *err) CA_WUR;
void ca_cms_opened_clear(struct ca_cms_opened *o);
/*
 * Whether msg is an S/MIME message encrypted to someone (AuthEnveloped
 * or EnvelopedData): what a store that can read none of it may check,
 * so that nothing is kept in clear by mistake.  0, or -1 with err.
 */
int ca_cms_check(const unsigned char *msg, size_t len, struct ca_err *err)
    CA_WUR;
/*
 * Whether the certificate (DER) a message was signed with chains to the
 * one CA certificate ca_pem, for S/MIME signing, as of at (0: now): 0,
 * or -1 with OpenSSL's reason in err.
 */
int ca_cms_signer_ok(const char *ca_pem, const unsigned char *der, size_t len,
    time_t at, struct ca_err *err) CA_WUR;

#endif

/*
 * ca_signer.h - who holds the CA key: the seam between the CA library,
 * which builds certificates, CRLs and OCSP answers, and the one thing
 * that signs them.
 *
 * A signer is asked to sign the DER to-be-signed part of an object and
 * answers the signature; the library puts the object together.  Every
 * signer checks what it is given before signing: it must parse as the
 * kind it claims to be, be canonical DER (so what was checked is what
 * relying parties will read), name this CA as issuer, and carry the
 * signature algorithm of the key.  A certificate that is or could act
 * as a CA (basicConstraints cA, keyCertSign or cRLSign, a v1
 * self-issued one) is refused: the key never signs another authority.
 *
 * Two signers exist: the key read from a file into this process
 * (ca_signer_open_key; dirctl and the tests), and a remote one that
 * asks a signer process over a socket (ca_signer_open_remote), where
 * the process at the other end runs ca_signer_serve with a key signer.
 * An HSM (PKCS#11) would be a third constructor behind the same calls.
 *
 * The protocol on the socket: messages of a header (type and length,
 * two 32-bit integers in host order: both ends are one program on one
 * machine) and a payload of bounded size.  The serving end says READY
 * (its public key) or ERROR first; then each SIGN_* request gets a SIG
 * or an ERROR.  A request that breaks the protocol is answered ERROR
 * and the server stops: a peer that is out of step is not trusted.
 *
 * Thread safety: a signer may be used by several threads at once; the
 * remote one sends one request at a time on each of its channels.
 */
#ifndef CA_SIGNER_H
#define CA_SIGNER_H

#include <stddef.h>

#include "ca.h"

/* What is to be signed: the DER to-be-signed part of ... */
enum ca_tbs {
	CA_TBS_CERT = 1, /* a leaf certificate: TBSCertificate */
	CA_TBS_CRL,	 /* a CRL: TBSCertList */
	CA_TBS_OCSP,	 /* an OCSP answer: ResponseData */
};

#define CA_SIG_MAX 1024		      /* RSA 8192 */
#define CA_TBS_MAX (16 * 1024 * 1024) /* a CRL of ~300000 entries */

/* Message types on the socket. */
enum ca_signer_msg {
	CA_SIGNER_READY = 1, /* the greeting: SubjectPublicKeyInfo */
	CA_SIGNER_ERROR,     /* code (32 bits) and a message */
	CA_SIGNER_SIGN_CERT, /* the TBS of a CA_TBS_CERT, and so on */
	CA_SIGNER_SIGN_CRL,
	CA_SIGNER_SIGN_OCSP,
	CA_SIGNER_SIG, /* the signature */
};

struct ca_signer_hdr {
	unsigned int type; /* enum ca_signer_msg */
	unsigned int len;  /* bytes of payload that follow */
};

struct ca_signer;

/*
 * A signer with the key of key_path, in this process, for the CA of
 * cert_path (the key must belong to it).  The key is read here and
 * nowhere else.
 */
struct ca_signer *ca_signer_open_key(const char *key_path,
    const char *cert_path, struct ca_err *err) CA_WUR;

/*
 * A signer that asks the process at the other end of the stream socket
 * fd (taken over, closed by ca_signer_free), once it said READY.  When
 * that process is gone, signing fails with CA_ERR_UNAVAILABLE.
 */
struct ca_signer *ca_signer_open_remote(int fd, struct ca_err *err) CA_WUR;
/*
 * The same over several sockets to one serving process (channels, at
 * most CA_SIGNER_CHANNELS_MAX), so that threads signing at once do not
 * wait for each other's round trips; every one must greet with the same
 * key.  The fds are the signer's from here on, also on failure.
 */
#define CA_SIGNER_CHANNELS_MAX 16
struct ca_signer *ca_signer_open_remote_many(const int *fds, size_t n,
    struct ca_err *err) CA_WUR;

void ca_signer_free(struct ca_signer *s);

/*
 * Check tbs (len bytes, the kind `what` says) and sign it: the
 * signature in sig (CA_SIG_MAX bytes), its length in *sig_len.  A
 * refusal is CA_ERR_POLICY or CA_ERR_INVALID with the reason.
 */
int ca_signer_sign(struct ca_signer *s, enum ca_tbs what,
    const unsigned char *tbs, size_t len, unsigned char *sig, size_t *sig_len,
    struct ca_err *err) CA_WUR;

/* The signer's public key as DER SubjectPublicKeyInfo; borrowed. */
const unsigned char *ca_signer_spki(const struct ca_signer *s, size_t *len);

/*
 * The serving end: say READY with s's key on fd, then answer requests
 * until the other end closes (0) or breaks the protocol or the socket
 * fails (-1, with *err saying why).  Does not close fd.
 */
int ca_signer_serve(struct ca_signer *s, int fd, struct ca_err *err) CA_WUR;
/*
 * Serve the n channels of ca_signer_open_remote_many, answering whatever
 * request is waiting on any of them, until the asking end has closed
 * them all (0) or one broke the protocol (-1, err says how).
 */
int ca_signer_serve_many(struct ca_signer *s, const int *fds, size_t n,
    struct ca_err *err) CA_WUR;

/*
 * What a serving end that could not load its key says instead of READY:
 * why, so that the other end can report it.  0 or -1.
 */
int ca_signer_refuse(int fd, const struct ca_err *why);

/*
 * Load the CA of cert_path that signs through s (taken over, freed by
 * ca_free, also when this fails).  The certificate is read here; the key
 * need not be in this process.  s's key must be the certificate's.
 */
struct ca *ca_open_signer(const char *cert_path, struct ca_signer *s,
    struct ca_err *err) CA_WUR;

#endif

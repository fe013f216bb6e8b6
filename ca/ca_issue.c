/*
 * ca_issue.c - issuing leaf certificates: users (from a CSR or, for
 * ca_p12.c, from a key we generated) and the server certificate of dird.
 *
 * The subject and every extension come from the caller's record; of a
 * CSR only the public key is used, so a requester can not ask for a name,
 * a SAN or CA:TRUE.
 */
#include <arpa/inet.h>

#include <ctype.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "ca_internal.h"

#define CA_URL_MAX 1024

/*
 * A URL goes through OpenSSL's configuration syntax, where a comma starts
 * another entry: allow only printable ASCII without commas or spaces.
 */
static int
url_ok(const char *url)
{
	const char *p;

	if (url[0] == '\0' || strlen(url) > CA_URL_MAX)
		return 0;
	for (p = url; *p != '\0'; p++)
		if (*p <= ' ' || *p >= 0x7f || *p == ',')
			return 0;
	return 1;
}

/* Append one name of the given type (GEN_EMAIL, GEN_DNS or GEN_IPADD). */
static int
san_push(GENERAL_NAMES *gens, int type, const void *data, int len,
    struct ca_err *err)
{
	GENERAL_NAME *gn = NULL;
	ASN1_STRING *s = NULL;

	s = type == GEN_IPADD ? ASN1_OCTET_STRING_new() : ASN1_IA5STRING_new();
	if (s == NULL || !ASN1_STRING_set(s, data, len) ||
	    (gn = GENERAL_NAME_new()) == NULL)
		goto err;
	GENERAL_NAME_set0_value(gn, type, s);
	s = NULL;
	if (!sk_GENERAL_NAME_push(gens, gn))
		goto err;
	return 0;
 err:
	ca_err_set(err, CA_ERR_CRYPTO, "cannot build a subjectAltName");
	ASN1_STRING_free(s);
	GENERAL_NAME_free(gn);
	return -1;
}

/*
 * Set the subjectPublicKeyInfo of x to a copy of spki.  X509_set_pubkey
 * would encode the key and decode it again through OpenSSL 3.0's
 * decoders, which cost more than the signature (perf of enrolment).
 * -1 for anything unusual (say explicit EC parameters): the caller then
 * falls back to X509_set_pubkey, which writes the key in its usual form.
 */
static int
spki_copy(X509 *x, X509_PUBKEY *spki)
{
	ASN1_OBJECT *alg, *aobj = NULL;
	const ASN1_OBJECT *palg;
	const unsigned char *pk;
	unsigned char *penc = NULL;
	const void *pval;
	void *val = NULL;
	X509_ALGOR *algor;
	int pklen, ptype;

	if (!X509_PUBKEY_get0_param(&alg, &pk, &pklen, &algor, spki) ||
	    pklen <= 0)
		return -1;
	X509_ALGOR_get0(&palg, &ptype, &pval, algor);
	/* Parameters: none (Ed25519), NULL (RSA) or a curve's OID (EC). */
	if (ptype == V_ASN1_OBJECT) {
		if ((val = OBJ_dup(pval)) == NULL)
			goto err;
	} else if (ptype != V_ASN1_UNDEF && ptype != V_ASN1_NULL) {
		goto err;
	}
	if ((aobj = OBJ_dup(palg)) == NULL ||
	    (penc = OPENSSL_memdup(pk, (size_t)pklen)) == NULL ||
	    !X509_PUBKEY_set0_param(X509_get_X509_PUBKEY(x), aobj, ptype,
	    val, penc, pklen))
		goto err;
	return 0;
 err:
	ASN1_OBJECT_free(val);
	ASN1_OBJECT_free(aobj);
	OPENSSL_free(penc);
	return -1;
}

/* What the leaf extensions of enum ca_leaf_ext say. */
static const struct {
	int nid;
	const char *value;
} leaf_ext_conf[CA_EXT_N] = {
	[CA_EXT_BC] = { NID_basic_constraints, "critical,CA:FALSE" },
	[CA_EXT_KU] = { NID_key_usage, "critical,digitalSignature" },
	/*
	 * Mail encrypted to an EC key (S/MIME, RFC 5753) is encrypted by
	 * ECDH with it, which readers allow only with keyAgreement.
	 */
	[CA_EXT_KU_EC] = { NID_key_usage,
	    "critical,digitalSignature,keyAgreement" },
	/* keyEncipherment only makes sense for RSA keys. */
	[CA_EXT_KU_RSA] = { NID_key_usage,
	    "critical,digitalSignature,keyEncipherment" },
	/*
	 * A peer is the TLS server of the calls it answers, but dchat checks
	 * peers for the client purpose on both ends (peertls.c): with
	 * serverAuth a user certificate would pass any TLS client's server
	 * check, so a user named "dir.example.org" could stand in for the
	 * registry where a client falls back to the subject CN (curl does
	 * when a certificate has no dNSName).  emailProtection: a user signs
	 * and receives S/MIME mail with it.
	 */
	[CA_EXT_EKU_PEER] = { NID_ext_key_usage,
	    "clientAuth,emailProtection" },
	[CA_EXT_EKU_SERVER] = { NID_ext_key_usage, "serverAuth" },
	[CA_EXT_AKID] = { NID_authority_key_identifier, "keyid" },
};

int
ca_leaf_ext_init(struct ca *ca, struct ca_err *err)
{
	X509V3_CTX ctx;
	int i;

	/* No subject: the authorityKeyIdentifier is the CA's own SKID. */
	memset(&ctx, 0, sizeof(ctx));
	X509V3_set_ctx(&ctx, ca->cert, NULL, NULL, NULL, 0);
	for (i = 0; i < CA_EXT_N; i++) {
		ca->leaf_ext[i] = X509V3_EXT_conf_nid(NULL, &ctx,
		    leaf_ext_conf[i].nid, leaf_ext_conf[i].value);
		if (ca->leaf_ext[i] == NULL) {
			ca_err_set(err, CA_ERR_CRYPTO, "cannot build extension "
			    "%s for the certificates of this CA",
			    OBJ_nid2sn(leaf_ext_conf[i].nid));
			ca_leaf_ext_free(ca);
			return -1;
		}
	}
	return 0;
}

void
ca_leaf_ext_free(struct ca *ca)
{
	int i;

	for (i = 0; i < CA_EXT_N; i++) {
		X509_EXTENSION_free(ca->leaf_ext[i]);
		ca->leaf_ext[i] = NULL;
	}
}

/*
 * subjectKeyIdentifier: the SHA-1 of the key's BIT STRING (RFC 5280
 * 4.2.1.2 method 1), what the configuration value "hash" gives.
 */
static int
skid_add(X509 *x, struct ca_err *err)
{
	ASN1_OCTET_STRING *oct = NULL;
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen;
	int rv = -1;

	if (!X509_pubkey_digest(x, EVP_sha1(), md, &mdlen) ||
	    (oct = ASN1_OCTET_STRING_new()) == NULL ||
	    !ASN1_OCTET_STRING_set(oct, md, (int)mdlen) ||
	    X509_add1_ext_i2d(x, NID_subject_key_identifier, oct, 0,
	    X509V3_ADD_DEFAULT) != 1) {
		ca_err_set(err, CA_ERR_CRYPTO, "cannot add extension "
		    "subjectKeyIdentifier");
		goto err;
	}
	rv = 0;
 err:
	ASN1_OCTET_STRING_free(oct);
	return rv;
}

/* The keyUsage of a user's key: what its type can do. */
static enum ca_leaf_ext
ku_for(EVP_PKEY *pub)
{
	if (ca_key_is_rsa(pub))
		return CA_EXT_KU_RSA;
	if (EVP_PKEY_is_a(pub, "EC"))
		return CA_EXT_KU_EC;
	return CA_EXT_KU;
}

/* Add the CA's prebuilt extension e to x. */
static int
leaf_ext_add(const struct ca *ca, X509 *x, enum ca_leaf_ext e,
    struct ca_err *err)
{
	if (!X509_add_ext(x, ca->leaf_ext[e], -1)) {
		ca_err_set(err, CA_ERR_CRYPTO, "cannot add extension %s",
		    OBJ_nid2sn(leaf_ext_conf[e].nid));
		return -1;
	}
	return 0;
}

/*
 * The revocation URLs of a leaf: a CRL distribution point, and an
 * authorityInfoAccess with the OCSP responder and the CA certificate.
 */
static int
urls_add(const struct ca *ca, X509 *x, const struct ca_urls *u,
    struct ca_err *err)
{
	char val[2 * CA_URL_MAX + 32];
	X509V3_CTX ctx;
	int n = 0;

	if (u == NULL)
		return 0;
	memset(&ctx, 0, sizeof(ctx));
	X509V3_set_ctx(&ctx, ca->cert, x, NULL, NULL, 0);
	if (u->crl != NULL) {
		snprintf(val, sizeof(val), "URI:%s", u->crl);
		if (ca_ext_add(x, &ctx, NID_crl_distribution_points, val,
		    err) == -1)
			return -1;
	}
	val[0] = '\0';
	if (u->ocsp != NULL)
		n = snprintf(val, sizeof(val), "OCSP;URI:%s", u->ocsp);
	if (u->issuer != NULL)
		snprintf(val + n, sizeof(val) - (size_t)n, "%scaIssuers;URI:%s",
		    n > 0 ? "," : "", u->issuer);
	if (val[0] != '\0' && ca_ext_add(x, &ctx, NID_info_access, val,
	    err) == -1)
		return -1;
	return 0;
}

/* The URLs go through OpenSSL's configuration syntax: see url_ok. */
static int
urls_ok(const struct ca_urls *u, struct ca_err *err)
{
	if (u == NULL || ((u->crl == NULL || url_ok(u->crl)) &&
	    (u->ocsp == NULL || url_ok(u->ocsp)) &&
	    (u->issuer == NULL || url_ok(u->issuer))))
		return 0;
	ca_err_set(err, CA_ERR_INVALID, "CRL, OCSP and CA URLs must be "
	    "printable ASCII without spaces or commas");
	return -1;
}

/* A leaf certificate for pub as described by p, not yet signed. */
static X509 *
leaf_build(const struct ca *ca, EVP_PKEY *pub, const struct ca_profile *p,
    int days, struct ca_err *err)
{
	X509 *x = NULL;

	if (urls_ok(p->urls, err) == -1)
		goto err;
	if ((x = X509_new()) == NULL ||
	    !X509_set_version(x, X509_VERSION_3) ||
	    !X509_set_issuer_name(x, X509_get_subject_name(ca->cert)) ||
	    !X509_set_subject_name(x, p->subject) ||
	    ((p->spki == NULL || spki_copy(x, p->spki) == -1) &&
	    !X509_set_pubkey(x, pub))) {
		ca_err_set(err, CA_ERR_CRYPTO, "cannot build a certificate");
		goto err;
	}
	if (ca_serial_set_random(x, err) == -1 ||
	    ca_set_validity(x, days, err) == -1)
		goto err;
	if (leaf_ext_add(ca, x, CA_EXT_BC, err) == -1 ||
	    leaf_ext_add(ca, x, ku_for(pub), err) == -1 ||
	    leaf_ext_add(ca, x, p->eku, err) == -1 ||
	    skid_add(x, err) == -1 ||
	    leaf_ext_add(ca, x, CA_EXT_AKID, err) == -1)
		goto err;
	if (p->san != NULL && sk_GENERAL_NAME_num(p->san) > 0 &&
	    X509_add1_ext_i2d(x, NID_subject_alt_name, p->san, 0,
	    X509V3_ADD_DEFAULT) != 1) {
		ca_err_set(err, CA_ERR_CRYPTO,
		    "cannot add extension subjectAltName");
		goto err;
	}
	if (urls_add(ca, x, p->urls, err) == -1)
		goto err;
	return x;
 err:
	X509_free(x);
	return NULL;
}

/* Sign a leaf certificate for pub as described by p. */
X509 *
ca_issue_leaf(const struct ca *ca, EVP_PKEY *pub, const struct ca_profile *p,
    int days, struct ca_err *err)
{
	X509 *x, *signed_x;

	if ((x = leaf_build(ca, pub, p, days, err)) == NULL)
		return NULL;
	signed_x = ca_sign_cert(ca, x, err);
	X509_free(x);
	return signed_x;
}

/* Describe x (unsigned) and its signed DER in *out, which takes der. */
static int
issued_fill_der(X509 *x, unsigned char *der, size_t len,
    struct ca_issued *out, struct ca_err *err)
{
	BIO *bio = NULL;
	int rv = -1;

	memset(out, 0, sizeof(*out));
	out->der = der;
	out->der_len = len;
	/* The PEM of exactly the bytes the signer signed: no re-encoding. */
	if ((bio = BIO_new(BIO_s_mem())) == NULL ||
	    PEM_write_bio(bio, PEM_STRING_X509, "", der, (long)len) <= 0) {
		ca_err_set(err, CA_ERR_CRYPTO, "cannot encode a certificate");
		goto err;
	}
	if ((out->cert_pem = ca_bio_string(bio, "a certificate", NULL,
	    err)) == NULL ||
	    ca_serial_hex(X509_get0_serialNumber(x), out->serial, err) == -1 ||
	    ca_fp_hex(der, len, out->fingerprint, err) == -1 ||
	    ca_time_epoch(X509_get0_notBefore(x), &out->not_before,
	    err) == -1 ||
	    ca_time_epoch(X509_get0_notAfter(x), &out->not_after, err) == -1)
		goto err;
	rv = 0;
 err:
	BIO_free(bio);
	if (rv == -1)
		ca_issued_clear(out);
	return rv;
}

/*
 * The profile of a user certificate: the subject and SAN come from subj.
 * *name and *san are new (free them after use).
 */
static int
user_profile(X509_PUBKEY *spki, const struct ca_subject *subj,
    const struct ca_urls *urls, struct ca_profile *prof, X509_NAME **name,
    GENERAL_NAMES **san, struct ca_err *err)
{
	*name = NULL;
	*san = NULL;
	if (subj == NULL || subj->userid == NULL || subj->name == NULL) {
		ca_err_set(err, CA_ERR_INVALID, "a user id and a name are "
		    "required");
		return -1;
	}
	if ((*name = ca_name_new(subj->userid, subj->name, subj->email,
	    err)) == NULL)
		return -1;
	if ((*san = sk_GENERAL_NAME_new_null()) == NULL) {
		ca_err_set(err, CA_ERR_CRYPTO, "cannot build a subjectAltName");
		return -1;
	}
	/*
	 * The user id is a mail address: mail readers match a sender against
	 * the rfc822Names of the SAN (RFC 8550 3), so it comes first, then a
	 * recorded email that differs from it.
	 */
	if (san_push(*san, GEN_EMAIL, subj->userid, (int)strlen(subj->userid),
	    err) == -1)
		return -1;
	if (subj->email != NULL && subj->email[0] != '\0' &&
	    strcasecmp(subj->email, subj->userid) != 0 &&
	    san_push(*san, GEN_EMAIL, subj->email, (int)strlen(subj->email),
	    err) == -1)
		return -1;
	memset(prof, 0, sizeof(*prof));
	prof->subject = *name;
	prof->san = *san;
	prof->spki = spki;
	prof->eku = CA_EXT_EKU_PEER;	/* a peer is both */
	prof->urls = urls;
	return 0;
}

/* A user certificate for pub: the subject and SAN come from subj. */
X509 *
ca_issue_for_subject(const struct ca *ca, EVP_PKEY *pub, X509_PUBKEY *spki,
    const struct ca_subject *subj, int days, const struct ca_urls *urls,
    struct ca_err *err)
{
	struct ca_profile prof;
	X509_NAME *name;
	GENERAL_NAMES *san;
	X509 *x = NULL;

	if (user_profile(spki, subj, urls, &prof, &name, &san, err) == 0)
		x = ca_issue_leaf(ca, pub, &prof, days, err);
	GENERAL_NAMES_free(san);
	X509_NAME_free(name);
	return x;
}

int
ca_issue_for_subject_fill(const struct ca *ca, EVP_PKEY *pub,
    X509_PUBKEY *spki, const struct ca_subject *subj, int days,
    const struct ca_urls *urls, struct ca_issued *out, struct ca_err *err)
{
	struct ca_profile prof;
	unsigned char *der = NULL;
	X509_NAME *name;
	GENERAL_NAMES *san;
	X509 *x = NULL;
	size_t len;
	int rv = -1;

	if (user_profile(spki, subj, urls, &prof, &name, &san, err) == -1 ||
	    (x = leaf_build(ca, pub, &prof, days, err)) == NULL ||
	    ca_sign_cert_der(ca, x, &der, &len, err) == -1)
		goto err;
	rv = issued_fill_der(x, der, len, out, err);
	der = NULL;
 err:
	free(der);
	X509_free(x);
	GENERAL_NAMES_free(san);
	X509_NAME_free(name);
	return rv;
}

/* Describe x in *out, which owns new buffers on success. */
int
ca_issued_fill(X509 *x, struct ca_issued *out, struct ca_err *err)
{
	memset(out, 0, sizeof(*out));
	if (ca_cert_encode(x, &out->cert_pem, &out->der, &out->der_len,
	    err) == -1 ||
	    ca_serial_hex(X509_get0_serialNumber(x), out->serial, err) == -1 ||
	    ca_fp_hex(out->der, out->der_len, out->fingerprint, err) == -1 ||
	    ca_time_epoch(X509_get0_notBefore(x), &out->not_before,
	    err) == -1 ||
	    ca_time_epoch(X509_get0_notAfter(x), &out->not_after, err) == -1) {
		ca_issued_clear(out);
		return -1;
	}
	return 0;
}

int
ca_issue_user(const struct ca *ca, const char *csr_pem, size_t csr_len,
    const struct ca_subject *subj, int days, const struct ca_urls *urls,
    struct ca_issued *out, struct ca_err *err)
{
	struct ca_csr *csr;
	int rv;

	memset(out, 0, sizeof(*out));
	if ((csr = ca_csr_new(csr_pem, csr_len, err)) == NULL)
		return -1;
	rv = ca_issue_user_csr(ca, csr, subj, days, urls, out, err);
	ca_csr_free(csr);
	return rv;
}

int
ca_issue_user_csr(const struct ca *ca, const struct ca_csr *csr,
    const struct ca_subject *subj, int days, const struct ca_urls *urls,
    struct ca_issued *out, struct ca_err *err)
{
	ca_err_clear(err);
	memset(out, 0, sizeof(*out));
	return ca_issue_for_subject_fill(ca, csr->pub,
	    X509_REQ_get_X509_PUBKEY(csr->req), subj, days, urls, out, err);
}

void
ca_issued_clear(struct ca_issued *is)
{
	if (is == NULL)
		return;
	free(is->cert_pem);
	free(is->der);
	memset(is, 0, sizeof(*is));
}

/* A host name as it may appear in a dNSName: letters, digits, - and . */
static int
dns_ok(const char *h)
{
	const char *p = h;
	size_t n = strlen(h);

	if (n == 0 || n > 253)
		return 0;
	if (strncmp(p, "*.", 2) == 0)	/* a leading wildcard label */
		p += 2;
	for (; *p != '\0'; p++)
		if (!isalnum((unsigned char)*p) && *p != '-' && *p != '.')
			return 0;
	return 1;
}

int
ca_issue_server(const struct ca *ca, const char *const *hosts,
    size_t nhosts, enum ca_keytype kt, int days, const char *key_path,
    const char *cert_path, struct ca_err *err)
{
	struct ca_profile prof;
	unsigned char ip[sizeof(struct in6_addr)];
	X509_NAME *name = NULL;
	GENERAL_NAMES *san = NULL;
	EVP_PKEY *key = NULL;
	X509 *x = NULL;
	char *key_pem = NULL, *cert_pem = NULL;
	char *key_tmp = NULL, *cert_tmp = NULL;
	unsigned char *der = NULL;
	size_t i, key_len = 0, der_len;
	int rv = -1;

	ca_err_clear(err);
	if (hosts == NULL || nhosts == 0 || key_path == NULL ||
	    cert_path == NULL) {
		ca_err_set(err, CA_ERR_INVALID, "at least one host name and "
		    "both paths are required");
		goto err;
	}
	if ((san = sk_GENERAL_NAME_new_null()) == NULL) {
		ca_err_set(err, CA_ERR_CRYPTO, "cannot build a subjectAltName");
		goto err;
	}
	for (i = 0; i < nhosts; i++) {
		if (hosts[i] == NULL) {
			ca_err_set(err, CA_ERR_INVALID, "host %zu is NULL", i);
			goto err;
		}
		if (inet_pton(AF_INET, hosts[i], ip) == 1) {
			if (san_push(san, GEN_IPADD, ip, 4, err) == -1)
				goto err;
		} else if (inet_pton(AF_INET6, hosts[i], ip) == 1) {
			if (san_push(san, GEN_IPADD, ip, 16, err) == -1)
				goto err;
		} else if (dns_ok(hosts[i])) {
			if (san_push(san, GEN_DNS, hosts[i],
			    (int)strlen(hosts[i]), err) == -1)
				goto err;
		} else {
			ca_err_set(err, CA_ERR_INVALID, "\"%.64s\" is neither "
			    "an IP address nor a host name", hosts[i]);
			goto err;
		}
	}
	if ((name = ca_name_new(NULL, hosts[0], NULL, err)) == NULL)
		goto err;
	if ((key = ca_keygen(kt, err)) == NULL)
		goto err;
	memset(&prof, 0, sizeof(prof));
	prof.subject = name;
	prof.san = san;
	prof.eku = CA_EXT_EKU_SERVER;
	if ((x = ca_issue_leaf(ca, key, &prof, days, err)) == NULL)
		goto err;
	if ((key_pem = ca_key_to_pem(key, &key_len, err)) == NULL ||
	    ca_cert_encode(x, &cert_pem, &der, &der_len, err) == -1)
		goto err;
	/* Write both files before replacing either, so they stay a pair. */
	if (ca_file_stage(key_path, key_pem, key_len, 0600, &key_tmp,
	    err) == -1 ||
	    ca_file_stage(cert_path, cert_pem, strlen(cert_pem), 0644,
	    &cert_tmp, err) == -1)
		goto err;
	if (rename(key_tmp, key_path) == -1) {
		ca_err_sys(err, CA_ERR_IO, "%s", key_path);
		goto err;
	}
	free(key_tmp);
	key_tmp = NULL;
	if (rename(cert_tmp, cert_path) == -1) {
		ca_err_sys(err, CA_ERR_IO, "%s (the key in %s was already "
		    "replaced)", cert_path, key_path);
		goto err;
	}
	free(cert_tmp);
	cert_tmp = NULL;
	rv = 0;
 err:
	ca_file_unstage(key_tmp);
	ca_file_unstage(cert_tmp);
	ca_secret_free(key_pem);
	free(cert_pem);
	free(der);
	X509_free(x);
	EVP_PKEY_free(key);
	X509_NAME_free(name);
	GENERAL_NAMES_free(san);
	return rv;
}

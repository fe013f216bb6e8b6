/*
 * ca_der.c - the few DER operations that OpenSSL's objects do not offer:
 * taking a SEQUENCE apart into its elements and writing one from parts.
 *
 * A signed object (Certificate, CertificateList, BasicOCSPResponse) is
 * SEQUENCE { to-be-signed, AlgorithmIdentifier, BIT STRING, ... }.  When
 * the key lives elsewhere (ca_signer.h) the to-be-signed part travels on
 * its own and the object is put together from it and the signature here.
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/asn1.h>

#include "ca_internal.h"

/*
 * The element at the start of buf (at most len bytes): its tag, class
 * and whole size.  Definite lengths only, as DER has them.
 */
static int
der_elem(const unsigned char *buf, size_t len, int *tag, int *xclass,
    int *constructed, size_t *hdr, size_t *total)
{
	const unsigned char *p = buf;
	long olen;
	int rv;

	if (len == 0 || len > CA_TBS_MAX)
		return -1;
	rv = ASN1_get_object(&p, &olen, tag, xclass, (long)len);
	/* 0x80: an error; constructed with bit 0: an indefinite length. */
	if ((rv & 0x80) != 0 || rv == (V_ASN1_CONSTRUCTED | 1) || olen < 0 ||
	    (size_t)olen > len - (size_t)(p - buf))
		return -1;
	*constructed = (rv & V_ASN1_CONSTRUCTED) != 0;
	*hdr = (size_t)(p - buf);
	*total = *hdr + (size_t)olen;
	return 0;
}

int
ca_der_seq_split(const unsigned char *der, size_t len, struct ca_der_span *v,
    size_t max, size_t *n, struct ca_err *err)
{
	const unsigned char *p;
	size_t total, left, hdr;
	int tag, xclass, cons;

	*n = 0;
	if (der_elem(der, len, &tag, &xclass, &cons, &hdr, &total) == -1 ||
	    total != len || !cons || tag != V_ASN1_SEQUENCE ||
	    xclass != V_ASN1_UNIVERSAL)
		goto bad;
	p = der + hdr;
	left = len - hdr;
	while (left > 0) {
		if (*n == max ||
		    der_elem(p, left, &tag, &xclass, &cons, &hdr, &total) == -1)
			goto bad;
		v[*n].p = p;
		v[*n].len = total;
		(*n)++;
		p += total;
		left -= total;
	}
	return 0;
bad:
	ca_err_set(err, CA_ERR_INVALID,
	    "not one DER SEQUENCE of at most %zu "
	    "elements",
	    max);
	return -1;
}

unsigned char *
ca_der_tlv(int constructed, int tag, int xclass, const struct ca_der_span *v,
    size_t n, size_t *out_len, struct ca_err *err)
{
	unsigned char *out, *p;
	size_t i, clen = 0;
	int total;

	for (i = 0; i < n; i++) {
		if (v[i].len > CA_TBS_MAX)
			goto toolong;
		clen += v[i].len;
	}
	if (clen > CA_TBS_MAX + 64 * 1024)
		goto toolong;
	if ((total = ASN1_object_size(constructed, (int)clen, tag)) <= 0) {
		ca_err_set(err, CA_ERR_CRYPTO, "cannot encode DER");
		return NULL;
	}
	if ((out = malloc((size_t)total)) == NULL) {
		ca_err_sys(err, CA_ERR_CRYPTO, "malloc");
		return NULL;
	}
	p = out;
	ASN1_put_object(&p, constructed, (int)clen, tag, xclass);
	for (i = 0; i < n; i++) {
		if (v[i].len == 0) /* p may be NULL then */
			continue;
		memcpy(p, v[i].p, v[i].len);
		p += v[i].len;
	}
	*out_len = (size_t)total;
	return out;
toolong:
	ca_err_set(err, CA_ERR_INVALID, "a signed object is at most %d bytes",
	    CA_TBS_MAX);
	return NULL;
}

unsigned char *
ca_der_signed(const struct ca_der_span *tbs, const struct ca_der_span *alg,
    const unsigned char *sig, size_t sig_len, const struct ca_der_span *extra,
    size_t *out_len, struct ca_err *err)
{
	static const unsigned char no_unused_bits = 0;
	struct ca_der_span bits[2] = { { &no_unused_bits, 1 },
		{ sig, sig_len } };
	struct ca_der_span parts[4];
	unsigned char *bs, *out;
	size_t bs_len;

	if ((bs = ca_der_tlv(0, V_ASN1_BIT_STRING, V_ASN1_UNIVERSAL, bits, 2,
		 &bs_len, err)) == NULL)
		return NULL;
	parts[0] = *tbs;
	parts[1] = *alg;
	parts[2].p = bs;
	parts[2].len = bs_len;
	if (extra != NULL)
		parts[3] = *extra;
	out = ca_der_tlv(1, V_ASN1_SEQUENCE, V_ASN1_UNIVERSAL, parts,
	    extra != NULL ? 4 : 3, out_len, err);
	free(bs);
	return out;
}

/*
 * vis.c - text from others, made safe to show on a terminal (see vis.h).
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "vis.h"

/*
 * The length of the well-formed UTF-8 sequence at p (RFC 3629: no
 * overlong forms, no surrogates, nothing above U+10FFFF) and its code
 * point, or 0 when p does not start one.  Stops at a NUL, which is never
 * a continuation byte.
 */
static size_t
utf8_seq(const unsigned char *p, uint32_t *cp)
{
	unsigned char lo = 0x80, hi = 0xbf;
	size_t n, i;

	if (p[0] < 0x80) {
		*cp = p[0];
		return 1;
	}
	if (p[0] >= 0xc2 && p[0] <= 0xdf) {
		n = 2;
		*cp = p[0] & 0x1f;
	} else if (p[0] >= 0xe0 && p[0] <= 0xef) {
		n = 3;
		*cp = p[0] & 0x0f;
		if (p[0] == 0xe0)
			lo = 0xa0;	/* overlong */
		else if (p[0] == 0xed)
			hi = 0x9f;	/* surrogates */
	} else if (p[0] >= 0xf0 && p[0] <= 0xf4) {
		n = 4;
		*cp = p[0] & 0x07;
		if (p[0] == 0xf0)
			lo = 0x90;	/* overlong */
		else if (p[0] == 0xf4)
			hi = 0x8f;	/* above U+10FFFF */
	} else
		return 0;
	for (i = 1; i < n; i++) {
		if (p[i] < lo || p[i] > hi)
			return 0;
		*cp = (*cp << 6) | (p[i] & 0x3f);
		lo = 0x80;
		hi = 0xbf;
	}
	return n;
}

/* Whether a terminal would act on the code point rather than show it. */
static int
is_control(uint32_t cp)
{
	return cp < 0x20 || (cp >= 0x7f && cp <= 0x9f) ||
	    (cp >= 0x202a && cp <= 0x202e) || (cp >= 0x2066 && cp <= 0x2069);
}

/* Append len bytes of s when they fit whole (with room for the NUL). */
static void
put(char *out, size_t outlen, size_t *off, int *full, const char *s,
    size_t len)
{
	if (!*full && *off + len < outlen)
		memcpy(out + *off, s, len);
	else
		*full = 1;
	*off += len;
}

size_t
vis_str(char *out, size_t outlen, const char *in)
{
	const unsigned char *p = (const unsigned char *)in;
	size_t off = 0, used = 0, n;
	char esc[8];
	uint32_t cp;
	int full = 0;

	while (*p) {
		n = utf8_seq(p, &cp);
		if (n == 0) {
			/* Not UTF-8: show the byte, go on with the next. */
			snprintf(esc, sizeof(esc), "\\x%02x", *p);
			put(out, outlen, &off, &full, esc, 4);
			p++;
		} else if (!is_control(cp)) {
			put(out, outlen, &off, &full, (const char *)p, n);
			p += n;
		} else {
			if (cp == '\t' || cp == '\n' || cp == '\r')
				snprintf(esc, sizeof(esc), "\\%c", cp == '\t' ?
				    't' : cp == '\n' ? 'n' : 'r');
			else if (cp < 0x80)
				snprintf(esc, sizeof(esc), "\\x%02x",
				    (unsigned)cp);
			else
				snprintf(esc, sizeof(esc), "\\u%04x",
				    (unsigned)cp);
			put(out, outlen, &off, &full, esc, strlen(esc));
			p += n;
		}
		if (!full)
			used = off;
	}
	if (outlen > 0)
		out[used] = '\0';
	return off;
}

/*
 * vis.h - text from others, made safe to show on a terminal.
 *
 * Chat text, notes, reasons and file names come from peers; names and
 * user ids from certificates the registry issued.  Printed as they are,
 * an escape sequence could clear or rewrite the screen, and a carriage
 * return or newline could fake a line dchat never wrote ("[2] connected
 * to ...").  vis_str shows what a terminal would act on as a visible
 * escape instead:
 *
 *   C0 controls       \t \n \r, the others \xNN (ESC is \x1b)
 *   DEL               \x7f
 *   C1 controls       U+0080..U+009F as \u0080 .. \u009f
 *   bidi overrides    U+202A..U+202E and isolates U+2066..U+2069 as \u202e
 *   invalid UTF-8     each byte as \xNN
 *
 * Everything else, valid UTF-8 included, is copied as it is.  A backslash
 * stays a backslash: a peer can make its text look like an escape, but
 * not act like one.
 */
#ifndef VIS_H
#define VIS_H

#include <stddef.h>

/* The most one input byte can become ("\xNN"). */
#define VIS_GROWTH 4

/*
 * Render in into out (outlen bytes, always NUL-terminated when outlen >
 * 0; an escape is never cut in half).  Returns the length of the whole
 * rendering without the NUL, like snprintf: out was big enough when the
 * result is below outlen.  out may be NULL when outlen is 0.
 */
size_t vis_str(char *out, size_t outlen, const char *in);

#endif

/*
 * edit.c - the prompt of the terminal interface (see edit.h).
 *
 * libedit in its unbuffered mode: each el_gets() runs one editing
 * command and returns, so the poll loop calls it whenever standard input
 * is readable and never waits on a person.  A line is finished when the
 * buffer ends in a newline.
 *
 * libedit sees the terminal's character set through a locale of its own
 * (uselocale around every call), not through setlocale(): the rest of
 * dchat keeps the C locale, whatever the person's environment says.
 */
#include <errno.h>
#include <langinfo.h>
#include <limits.h>
#include <locale.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <wchar.h>
#include <wctype.h>

#include <histedit.h>

#include "edit.h"

#define PROMPT "> "
#define HISTORY_MAX 500
/* Keys taken per loop turn, so a paste can not hold up the sessions. */
#define KEYS_PER_TURN 4096
/*
 * A key that is a sequence (an arrow's ESC [ A) arrives in one piece,
 * but libedit reads it a byte at a time and blocks until it is whole.
 * A lone Escape, or a ^V with nothing after it, would stop the loop
 * until the next key: past this the key is dropped instead.
 */
#define SEQUENCE_WAIT_MS 1000

struct edit {
	EditLine *el;
	History *hist;
	locale_t loc;	/* the terminal's character set, for libedit */
	int shown;	/* the prompt and the line are on the screen */
	int quiet;	/* the prompt is empty (while the line is reset) */
	int reads;	/* bytes read by this el_gets() */
	int stalled;	/* a key sequence did not come whole in time */
	int gone;	/* the terminal is gone */
};

/* Whether standard input has something (or an end) within ms. */
static int
waiting(int ms)
{
	struct pollfd p = { .fd = 0, .events = POLLIN };

	return poll(&p, 1, ms) == 1;
}

/*
 * libedit's reader (EL_GETCFN): one character from standard input.
 * The first byte of an el_gets() is known to be there; after it, the
 * rest of a key is waited for at most SEQUENCE_WAIT_MS.
 */
static int
getc_bounded(EditLine *el, wchar_t *wc)
{
	struct edit *e;
	char b[MB_LEN_MAX];
	mbstate_t mbs;
	size_t n = 0, r;
	ssize_t got;

	if (el_get(el, EL_CLIENTDATA, &e) != 0)
		return -1;
	for (;;) {
		if (e->reads++ > 0 && !waiting(SEQUENCE_WAIT_MS)) {
			e->stalled = 1;
			return 0;
		}
		if ((got = read(0, b + n, 1)) == -1 &&
		    (errno == EINTR || errno == EAGAIN)) {
			/* A signal: let the loop see it. */
			e->stalled = 1;
			return 0;
		}
		if (got != 1) {
			e->gone = 1;
			return got == 0 ? 0 : -1;
		}
		n++;
		memset(&mbs, 0, sizeof(mbs));
		r = mbrtowc(wc, b, n, &mbs);
		if (r == (size_t)-2 && n < sizeof(b))
			continue;	/* more of one character */
		if (r == (size_t)-1 || r == (size_t)-2) {
			n = 0;		/* not in the character set: dropped */
			continue;
		}
		return 1;
	}
}

static char *
prompt(EditLine *el)
{
	struct edit *e;
	static char none[] = "", shown[] = PROMPT;

	if (el_get(el, EL_CLIENTDATA, &e) != 0 || e->quiet)
		return none;
	return shown;
}

/*
 * The locale libedit reads and writes characters with: the person's, if
 * its character set is UTF-8, which is what a message must be; else
 * C.UTF-8, since text in another one could not be sent anyway.
 */
static locale_t
terminal_locale(void)
{
	locale_t l;

	if ((l = newlocale(LC_CTYPE_MASK, "", (locale_t)0)) != (locale_t)0) {
		if (strcmp(nl_langinfo_l(CODESET, l), "UTF-8") == 0)
			return l;
		freelocale(l);
	}
	return newlocale(LC_CTYPE_MASK, "C.UTF-8", (locale_t)0);
}

struct edit *
edit_new(char *err, size_t errlen)
{
	struct edit *e;
	locale_t old;
	HistEvent ev;

	if ((e = calloc(1, sizeof(*e))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	if ((e->loc = terminal_locale()) == (locale_t)0) {
		snprintf(err, errlen, "no UTF-8 locale (C.UTF-8)");
		free(e);
		return NULL;
	}
	old = uselocale(e->loc);
	e->el = el_init("dchat", stdin, stdout, stderr);
	e->hist = history_init();
	if (e->el == NULL || e->hist == NULL) {
		uselocale(old);
		snprintf(err, errlen, "cannot set up libedit");
		edit_free(e);
		return NULL;
	}
	history(e->hist, &ev, H_SETSIZE, HISTORY_MAX);
	history(e->hist, &ev, H_SETUNIQUE, 1);
	el_set(e->el, EL_CLIENTDATA, e);
	el_set(e->el, EL_EDITOR, "emacs");
	el_set(e->el, EL_PROMPT, prompt);
	el_set(e->el, EL_HIST, history, e->hist);
	el_set(e->el, EL_GETCFN, getc_bounded);
	/* Nothing to complete: a Tab, typed or pasted, is text. */
	el_set(e->el, EL_BIND, "^I", "ed-insert", NULL);
	/* The person's own bindings (~/.editrc), as other programs. */
	(void)el_source(e->el, NULL);
	/* Keys from now on, no prompt yet: edit_show() draws it. */
	e->quiet = 1;
	el_set(e->el, EL_UNBUFFERED, 1);
	e->quiet = 0;
	uselocale(old);
	return e;
}

/* Columns libedit takes for s to end, shown from column col on. */
static int
columns_of(int col, const char *s, const char *end)
{
	mbstate_t mbs;
	wchar_t wc;
	size_t r;
	int w;

	memset(&mbs, 0, sizeof(mbs));
	while (s < end) {
		r = mbrtowc(&wc, s, (size_t)(end - s), &mbs);
		if (r == (size_t)-1 || r == (size_t)-2) {
			memset(&mbs, 0, sizeof(mbs));
			s++;
			col++;
			continue;
		}
		s += r ? r : 1;
		if (wc == '\t')
			col = (col / 8 + 1) * 8;
		else if (wc < 0x100 && iswcntrl((wint_t)wc))
			col += 2;		/* ^X */
		else if (iswprint((wint_t)wc))
			col += (w = wcwidth(wc)) > 0 ? w : 0;
		else
			col += wc > 0xffff ? 8 : 7;	/* \U+XXXX */
	}
	return col;
}

/* A termcap string, without the padding ($<5>) only tputs would use. */
static void
put_cap(const char *cap)
{
	const char *q;

	for (; *cap; cap++) {
		if (cap[0] == '$' && cap[1] == '<' &&
		    (q = strchr(cap, '>')) != NULL) {
			cap = q;
			continue;
		}
		putchar(*cap);
	}
}

static const char *
cap(struct edit *e, const char *name)
{
	char *s = NULL;

	if (el_get(e->el, EL_GETTC, name, &s) != 0 || s == NULL)
		return "";
	return s;
}

void
edit_hide(struct edit *e)
{
	const LineInfo *li;
	const char *up, *cd, *ce;
	locale_t old;
	int cols = 80, at, end, rows;

	if (e == NULL || !e->shown)
		return;
	old = uselocale(e->loc);
	li = el_line(e->el);
	(void)el_get(e->el, EL_GETTC, "co", &cols);
	if (cols < 1)
		cols = 80;
	at = columns_of((int)strlen(PROMPT), li->buffer, li->cursor);
	end = columns_of(at, li->cursor, li->lastchar);
	up = cap(e, "up");
	cd = cap(e, "cd");
	ce = cap(e, "ce");
	/* To the prompt's first column: up as many rows as the cursor is
	 * below it, then clear to the end of the screen. */
	putchar('\r');
	for (rows = *up ? at / cols : 0; rows > 0; rows--)
		put_cap(up);
	if (*cd)
		put_cap(cd);
	else if (*ce)
		put_cap(ce);
	else {
		/* A terminal that can not clear: blanks over the line. */
		for (end = end < cols ? end : cols - 1; end > 0; end--)
			putchar(' ');
		putchar('\r');
	}
	fflush(stdout);
	uselocale(old);
	e->shown = 0;
}

void
edit_show(struct edit *e)
{
	locale_t old;

	if (e == NULL || e->shown)
		return;
	old = uselocale(e->loc);
	/* Redraw from the cursor's column 0, where edit_hide left it. */
	el_set(e->el, EL_REFRESH);
	uselocale(old);
	e->shown = 1;
}

void
edit_resize(struct edit *e)
{
	locale_t old;

	if (e == NULL)
		return;
	edit_hide(e);
	old = uselocale(e->loc);
	el_resize(e->el);
	uselocale(old);
}

/*
 * The finished line, without its newline; the editor starts a new one.
 * Switching the unbuffered mode off and on is how libedit resets a
 * line (also its history position); the prompt stays off the screen
 * until the output the line causes is printed.
 */
static char *
take_line(struct edit *e, const char *buf, int n)
{
	HistEvent ev;
	char *line;

	if ((line = strndup(buf, (size_t)n - 1)) != NULL &&
	    line[strspn(line, " \t")] != '\0')
		history(e->hist, &ev, H_ENTER, line);
	e->quiet = 1;
	el_set(e->el, EL_UNBUFFERED, 0);
	el_set(e->el, EL_UNBUFFERED, 1);
	e->quiet = 0;
	e->shown = 0;
	return line;
}

/*
 * A key that did not come whole in time was dropped.  After a ^V,
 * libedit took it for the end of the input: it moved to a new row and
 * put a ^D in the line, which is not the person's.
 */
static void
unstall(struct edit *e, const char *buf, int n)
{
	if (buf != NULL && n > 0 && buf[n - 1] == '\004') {
		el_deletestr(e->el, 1);
		e->shown = 0;
	}
}

int
edit_read(struct edit *e, char **line)
{
	const char *buf;
	locale_t old;
	int i, n, rv = 0;

	*line = NULL;
	old = uselocale(e->loc);
	for (i = 0; i < KEYS_PER_TURN && (i == 0 || waiting(0)); i++) {
		/* Keys are edited where the person can see them. */
		if (!e->shown) {
			el_set(e->el, EL_REFRESH);
			e->shown = 1;
		}
		e->reads = e->stalled = 0;
		buf = el_gets(e->el, &n);
		if (e->gone) {
			rv = -1;
			break;
		}
		if (e->stalled) {
			unstall(e, buf, n);
			break;
		}
		if (buf == NULL || n <= 0)
			continue;
		if (n == 1 && buf[0] == '\004') {
			rv = -1;	/* ^D on an empty line */
			break;
		}
		if (buf[n - 1] == '\n') {
			*line = take_line(e, buf, n);
			break;
		}
	}
	uselocale(old);
	if (rv == -1 && !e->gone)
		edit_hide(e);	/* the last output, not a "> ^D" */
	return rv;
}

void
edit_free(struct edit *e)
{
	locale_t old;

	if (e == NULL)
		return;
	old = uselocale(e->loc);
	if (e->shown && e->el != NULL) {
		/* Whatever was being typed stays; the shell starts below. */
		putchar('\n');
		fflush(stdout);
	}
	if (e->el != NULL)
		el_end(e->el);	/* the terminal's modes as they were */
	if (e->hist != NULL)
		history_end(e->hist);
	uselocale(old);
	freelocale(e->loc);
	free(e);
}

/*
 * console.h - the files of the web console (dird/console/), built into
 * dird by scripts/embed.py and served under /admin/ (api_console.c).
 */
#ifndef CONSOLE_H
#define CONSOLE_H

#include <stddef.h>

struct console_file {
	const char *name;  /* "index.html", "app.js", ... */
	const char *ctype; /* its Content-Type */
	const unsigned char *data;
	size_t len;
};

/* Ended by an entry whose name is NULL. */
extern const struct console_file console_files[];

#endif

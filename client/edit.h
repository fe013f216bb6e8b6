/*
 * edit.h - the prompt of the terminal interface: line editing and history
 * (libedit) inside the peer's poll loop.
 *
 * Only when standard input and output are both a terminal; dchat run
 * reads plain lines otherwise (pipes, --json).  Keys are read as they
 * come, never waiting for a whole line, so sessions go on while a person
 * types.  Whatever the peer prints meanwhile goes above the line being
 * typed: edit_hide() takes the prompt and the partial line off the
 * screen, edit_show() puts them back as they were.
 */
#ifndef EDIT_H
#define EDIT_H

#include <stddef.h>

struct edit;

/* The editor on the terminal at standard input and output, or NULL
 * with why in err.  The calls below do nothing with a NULL editor. */
struct edit *edit_new(char *err, size_t errlen);
/*
 * Standard input is readable: take the keys that are there.  *line is
 * a finished line (the caller frees it) or NULL.  0, or -1 at the end of
 * the input: ^D on an empty line, or the terminal gone.
 */
int edit_read(struct edit *e, char **line);
/* Before printing: the prompt and the partial line off the screen. */
void edit_hide(struct edit *e);
/* After printing: back as they were, the cursor where it was. */
void edit_show(struct edit *e);
/* The terminal changed size (SIGWINCH). */
void edit_resize(struct edit *e);
/* The terminal back as it was before edit_new. */
void edit_free(struct edit *e);

#endif

/*
 * ui.h - the faces of dchat run, send and sendfile: sentences for a
 * person, or with --json one JSON object a line each way (ui.c).
 */
#ifndef UI_H
#define UI_H

#include "app.h"

/* Make ui.c the face of a (struct app_face); a is borrowed for good. */
void ui_attach(struct app *a);

#endif

/*
 * api_console.c - the web console: the page, script and style of
 * dird/console/ under /admin/, to administrators only (the route's
 * authentication), with a Content-Security-Policy that lets the page run
 * its own script and talk to this origin and nothing else.  What the
 * page does, it does through the admin API.
 */
#include <string.h>

#include "api.h"
#include "console.h"

#define CONSOLE_CSP                                                 \
	"default-src 'none'; script-src 'self'; style-src 'self'; " \
	"connect-src 'self'; img-src 'self'; base-uri 'none'; "     \
	"form-action 'none'; frame-ancestors 'none'"

void
api_console(struct http_req *req, struct http_resp *resp)
{
	const struct console_file *f;
	const char *name = req->path + strlen("/admin/");

	if (*name == '\0')
		name = "index.html";
	for (f = console_files; f->name != NULL; f++)
		if (strcmp(f->name, name) == 0) {
			http_blob(resp, 200, f->ctype, f->data, f->len);
			resp->csp = CONSOLE_CSP;
			return;
		}
	http_error(resp, 404, "not_found", "no such page of the console");
}

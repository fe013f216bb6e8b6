/*
 * app.h - the running peer: listeners, registration, calls, sessions and
 * the user interface, in one single-threaded poll() loop.
 *
 * Blocking steps inside the loop, accepted because they are short: HTTP
 * calls to the DIR (registration, lookup, CRL, the renewal of the
 * certificate, and the OCSP question of each new session's handshake, or
 * for a peer of another domain the fresh lookup, at most 5 s each and
 * not repeated for 30 s after a failure) and the TCP
 * connect phase of a call (bounded by its timeout).  TLS handshakes and all session I/O
 * are non-blocking, so two peers calling each other at once, or several
 * callers at once, never wait on one another.
 */
#ifndef APP_H
#define APP_H

#include <stdint.h>
#include <time.h>

#include <jansson.h>

#include "dial.h"
#include "edit.h"
#include "event.h"
#include "irp_client.h"
#include "keystore.h"
#include "peertls.h"
#include "session.h"
#include "vouch.h"

#define APP_LISTEN_MAX 8
#define APP_STDIN_MAX (128 * 1024)
/* Sessions in all.  For an incoming connection beyond this a caller that
 * has not finished its handshake makes way (admit.h); when every session
 * is past its handshake it is closed at once.  Outgoing calls (placed by
 * the user) may add a few more. */
#define APP_SESSIONS_MAX 256

enum app_mode {
	APP_RUN,      /* dchat run: interactive or --json */
	APP_SEND,     /* dchat send: one message, wait for its ack */
	APP_SENDFILE, /* dchat sendfile: one file, wait for file_received */
};

/*
 * Whoever shows the peer to its user: ui.c's sentences for a person, or
 * its JSON lines with --json (ui.h).  The loop reports through this and
 * hands it each line of input; it knows nothing else of the face, which
 * in turn runs the commands through the app_ and session_ functions.
 */
struct app_face {
	/* One event of kind; ev["event"] names it.  Takes ev. */
	void (*event)(void *arg, enum ev_kind kind, json_t *ev);
	/* One line of input without its newline (the face may cut it up). */
	void (*line)(void *arg, char *line);
	void *arg;
};

struct app {
	enum app_mode mode;
	struct app_face face; /* none set: events are dropped */
	int json;
	int contact_requests; /* let unlisted callers leave a request */
	struct keystore ks;
	struct ks_list allow, deny;
	struct peertls *pt;
	struct irp_client *irp;
	struct vouch *vouch;  /* what our registry says of other domains */
	struct watch *watch;  /* hears of new mail at once (watch.h) */
	char watch_said[300]; /* the watch's trouble as last reported */
	/* Mail handed over directly, per sender, this window (mail_admit). */
	struct app_mail_rate {
		char userid[256];
		time_t start;
		int n;
	} mail_rate[16];
	struct session_env env;
	char userid[256];
	char name[256]; /* as our certificate in use says */

	/* The certificate in use, and its renewal (expiry.h). */
	char cert_serial[41];
	time_t cert_not_before, cert_not_after;
	time_t renew_next;	  /* renew, or try again, then */
	int renew_failures;	  /* attempts failed in a row */
	char renew_error[256];	  /* why the last one failed */
	struct ks_stamp id_stamp; /* key and certificate files as loaded */
	time_t id_checked;	  /* when they were last looked at */

	struct session *sessions;
	int next_sid;
	int current; /* the session "msg" talks to, 0 = none */

	struct dial_addr listen[APP_LISTEN_MAX];
	int lfd[APP_LISTEN_MAX];
	size_t nlisten;
	struct dial_addr adv[IRP_ADDR_MAX];
	size_t nadv; /* --advertise: 0 = discover from the interfaces */
	int ttl;
	int registered;
	char reg_sig[2048]; /* what is registered, to notice changes */
	time_t reg_next, if_next, crl_next, expiry_next;
	time_t mail_next;	 /* ask the registry for mail then (mail.h) */
	time_t ocsp_retry_at;	 /* the registry failed an OCSP question */
	char ocsp_failed_at[16]; /* when, "12:00:00 UTC" */

	int sigfd[2]; /* self-pipe: signals become events */
	int nlfd;     /* netlink: interface addresses changed, or -1 */
	int stdin_open;
	struct edit *ed; /* a person at a terminal: line editing, or NULL */
	char inbuf[APP_STDIN_MAX];
	size_t inlen;

	/* one-shot send / sendfile */
	char target[256];
	const char *payload; /* text or path */
	int os_sid;
	uint64_t os_id;
	int os_sent;
	int os_unreached; /* no address of the peer answered at all */
	int os_mail;	  /* sendfile of sealed mail (mail.h), not a file */
	char mail_tmp[KS_PATH_MAX + 16]; /* where mail handed over lands */
	time_t os_deadline;		 /* give up waiting for the peer */

	int quit;
	int exit_code;
};

/* Mark every descriptor closed; call first, so app_free is always safe. */
void app_defaults(struct app *a);
/* Set up listeners, TLS, the registry client; 0 or -1 (printed). */
int app_init(struct app *a);
/* The loop; returns the process exit status. */
int app_run(struct app *a);
void app_free(struct app *a);

/* Place a call; the session id, or -1 (the failure is reported). */
int app_call(struct app *a, const char *userid, int skip_cache);
struct session *app_session(struct app *a, int id);
/* Fetch the CRL and re-register now; renew now if that is due. */
void app_refresh(struct app *a);

#endif

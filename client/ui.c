/*
 * ui.c - what the user sees and types.
 *
 * Two faces over one command set.  With --json every input line is a JSON
 * command ({"cmd":"call","user":"bob@example.org"}) and every event one
 * JSON line on stdout ({"event":"connected","session":1,...}), so programs
 * and tests can drive the peer.  Without it a person types
 * "call bob@example.org", "msg hello", ... and reads sentences.  Typed
 * lines are turned into the same JSON commands, so both faces share one
 * implementation.
 */
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ui.h"
#include "vis.h"

static const char help_text[] =
    "commands:\n"
    "  call USERID              place a call (several at once are fine)\n"
    "  accept [N] | reject [N]  answer a ringing call\n"
    "  msg [N] TEXT             send TEXT (to session N, else the current)\n"
    "  TEXT                     same as msg to the current session\n"
    "  sessions | switch N      list sessions / choose the current one\n"
    "  file [N] PATH            offer a file\n"
    "  get ID [PATH]            accept offered file ID | decline ID\n"
    "  ping [N] | hangup [N]\n"
    "  request USERID NOTE      leave a contact request with USERID\n"
    "  requests                 contact requests left for you\n"
    "  allow USERID | deny USERID | unallow X | undeny X | lists\n"
    "    (an entry is a user id, @domain, or * for anyone from the DIR CA)\n"
    "  refresh                  fetch the CRL, re-register, renew the "
    "certificate if due\n"
    "  quit\n"
    "TEXT, PATH and NOTE run to the end of the line, blanks included.\n";

/*
 * The strings of one event, rendered by vis_str for the terminal: every
 * string an event carries may come from a peer or the registry, so print
 * only what went through here.
 */
#define SHOWN_MAX 16

struct shown {
	char *s[SHOWN_MAX];
	size_t n;
};

static const char *
show(struct shown *sh, const char *in)
{
	size_t need;
	char *r;

	if (in == NULL)
		return "";
	/* Nothing raw: without room to render it, say so instead. */
	if (sh->n == SHOWN_MAX ||
	    (r = malloc((need = vis_str(NULL, 0, in) + 1))) == NULL)
		return "(not shown)";
	(void)vis_str(r, need, in);
	sh->s[sh->n++] = r;
	return r;
}

static void
shown_free(struct shown *sh)
{
	while (sh->n > 0)
		free(sh->s[--sh->n]);
}

/*
 * The sentences of the terminal interface: one small function per kind
 * of event, found through the table below.  Each gets the event, its
 * session number and peer object, and prints through sh.
 */
struct ev_ctx {
	FILE *out;
	json_t *ev, *peer;
	long long sid;
	enum ev_kind kind;
	struct shown sh;
};

#define S(o, k) show(&c->sh, json_string_value(json_object_get((o), (k))))
#define I(o, k) ((long long)json_integer_value(json_object_get((o), (k))))
#define EV(k) S(c->ev, k)
#define P(k) S(c->peer, k)

static void
say_ready(struct ev_ctx *c)
{
	fprintf(c->out, "dchat: %s ready; type 'help' for commands\n",
	    EV("userid"));
}

static void
say_registered(struct ev_ctx *c)
{
	fprintf(c->out, "registered with the DIR until %s\n", EV("expires_at"));
}

static void
say_calling(struct ev_ctx *c)
{
	fprintf(c->out, "calling %s (address from the %s) ...\n", EV("user"),
	    EV("via"));
}

/* How a peer of another domain's CA is trusted, by its "trust". */
static const struct {
	const char *trust, *how;
} trust_words[] = {
	{ "pinned", "CA pinned by your registry" },
	{ "dane", "CA published by DANE (DNSSEC), accepted by your registry" },
};

/*
 * " - example.net, CA pinned by your registry" after a peer of another
 * domain; nothing after one of ours ("own").
 */
static void
say_domain(struct ev_ctx *c)
{
	const char *trust = P("trust");
	size_t i;

	for (i = 0; i < sizeof(trust_words) / sizeof(trust_words[0]); i++)
		if (strcmp(trust, trust_words[i].trust) == 0)
			fprintf(c->out, " - %s, %s", P("domain"),
			    trust_words[i].how);
}

/* Revocation checked for this very session: by OCSP or by the lookup. */
static const char *const rev_now[] = { "good", "lookup" };

static int
checked_now(const char *revocation)
{
	size_t i;

	for (i = 0; i < sizeof(rev_now) / sizeof(rev_now[0]); i++)
		if (strcmp(revocation, rev_now[i]) == 0)
			return 1;
	return 0;
}

static void
say_incoming(struct ev_ctx *c)
{
	fprintf(c->out, "[%lld] incoming call from %s <%s>", c->sid,
	    P("name"), P("userid"));
	say_domain(c);
	fprintf(c->out, ", verification code %s: 'accept %lld' or 'reject "
	    "%lld'\n", P("code"), c->sid, c->sid);
}

static void
say_connected(struct ev_ctx *c)
{
	fprintf(c->out, "[%lld] connected %s %s <%s>", c->sid,
	    strcmp(EV("direction"), "out") == 0 ? "to" : "with", P("name"),
	    P("userid"));
	say_domain(c);
	fprintf(c->out, "%s\n     issuer %s\n     expires %s, revocation "
	    "status: %s\n     fingerprint %s\n     verification code: %s\n",
	    json_is_true(json_object_get(c->ev, "restricted")) ?
	    " (contact request only)" : "", P("issuer"), P("not_after"),
	    P("revocation"), P("fingerprint"), P("code"));
	if (json_is_true(json_object_get(c->ev, "fingerprint_changed")))
		fprintf(c->out, "     WARNING: the certificate changed since "
		    "last time (was %s)\n", EV("previous_fingerprint"));
	/* Not checked with the registry for this session: say so. */
	if (!checked_now(P("revocation")))
		fprintf(c->out, "     WARNING: %s\n", P("revocation_note"));
}

static void
say_message(struct ev_ctx *c)
{
	fprintf(c->out, "[%lld] %s: %s\n", c->sid, EV("from"), EV("text"));
}

static void
say_ack(struct ev_ctx *c)
{
	fprintf(c->out, "[%lld] message %lld delivered\n", c->sid,
	    I(c->ev, "id"));
}

static void
say_closed(struct ev_ctx *c)
{
	fprintf(c->out, "[%lld] session closed: %s\n", c->sid, EV("reason"));
}

static void
say_call_failed(struct ev_ctx *c)
{
	fprintf(c->out, "call to %s failed: %s\n", EV("user"), EV("reason"));
}

static void
say_call_retry(struct ev_ctx *c)
{
	fprintf(c->out, "the last known address of %s failed (%s); asking the "
	    "DIR\n", EV("user"), EV("reason"));
}

static void
say_refused(struct ev_ctx *c)
{
	fprintf(c->out, "refused a caller (%s from %s): %s\n", EV("peer"),
	    EV("addr"), EV("reason"));
}

static void
say_file_offer(struct ev_ctx *c)
{
	fprintf(c->out, "[%lld] file offered: %s (%lld bytes): 'get %lld' or "
	    "'decline %lld'\n", c->sid, EV("name"), I(c->ev, "size"),
	    I(c->ev, "id"), I(c->ev, "id"));
}

static void
say_file_received(struct ev_ctx *c)
{
	fprintf(c->out, "[%lld] file saved to %s (SHA-256 checked)\n", c->sid,
	    EV("path"));
}

static void
say_file_delivered(struct ev_ctx *c)
{
	fprintf(c->out, "[%lld] file %lld delivered and checked\n", c->sid,
	    I(c->ev, "id"));
}

static void
say_contact_request(struct ev_ctx *c)
{
	fprintf(c->out, "[%lld] contact request from %s <%s>: %s ('allow %s' "
	    "to accept)\n", c->sid, EV("name"), EV("userid"), EV("note"),
	    EV("userid"));
}

static void
say_cert_expiring(struct ev_ctx *c)
{
	fprintf(c->out, "warning: %s (%lld days left)\n", EV("message"),
	    I(c->ev, "days"));
}

static void
say_renewed(struct ev_ctx *c)
{
	fprintf(c->out, "certificate %s: serial %s, valid until %s; the next "
	    "renewal is due %s\n", strcmp(EV("source"), "disk") == 0 ?
	    "replaced on disk, now in use" : "renewed", EV("serial"),
	    EV("not_after"), EV("next_renewal"));
}

static void
say_renew_failed(struct ev_ctx *c)
{
	fprintf(c->out, "warning: renewing the certificate failed: %s; trying "
	    "again at %s\n", EV("reason"), EV("next_attempt"));
}

static void
say_error(struct ev_ctx *c)
{
	fprintf(c->out, "%s: %s\n", ev_name(c->kind), EV("message"));
}

static void
say_help(struct ev_ctx *c)
{
	fputs(help_text, c->out);
}

static void
say_sent(struct ev_ctx *c)
{
	fprintf(c->out, "[%lld] message %lld sent, waiting for the peer\n",
	    c->sid, I(c->ev, "id"));
}

static void
say_file_offered(struct ev_ctx *c)
{
	fprintf(c->out, "[%lld] file offer %lld sent, waiting for the peer\n",
	    c->sid, I(c->ev, "id"));
}

static void
say_pong(struct ev_ctx *c)
{
	fprintf(c->out, "[%lld] pong\n", c->sid);
}

static void
say_refreshed(struct ev_ctx *c)
{
	fprintf(c->out, "CRL and registration refreshed\n");
}

static void
say_file_accepted(struct ev_ctx *c)
{
	fprintf(c->out, "[%lld] file %lld accepted, sending\n", c->sid,
	    I(c->ev, "id"));
}

static void
say_file_failed(struct ev_ctx *c)
{
	fprintf(c->out, "[%lld] file %lld not delivered: %s\n", c->sid,
	    I(c->ev, "id"), EV("reason"));
}

static void
say_duplicate(struct ev_ctx *c)
{
	fprintf(c->out, "both sides called at once: keeping session %lld, "
	    "closing %lld\n", I(c->ev, "kept"), I(c->ev, "dropped"));
}

static void
say_sessions(struct ev_ctx *c)
{
	json_t *l = json_object_get(c->ev, "sessions"), *v;
	size_t k;

	if (json_array_size(l) == 0)
		fprintf(c->out, "no sessions\n");
	json_array_foreach(l, k, v) {
		fprintf(c->out, "%s[%lld] %s %s (%s)\n",
		    json_is_true(json_object_get(v, "current")) ? "*" : " ",
		    I(v, "id"), S(v, "peer"), S(v, "direction"), S(v, "state"));
		shown_free(&c->sh);
	}
}

/* One line of user ids or patterns after a label. */
static void
print_names(struct ev_ctx *c, const char *label, json_t *arr)
{
	size_t k;
	json_t *v;

	fprintf(c->out, "%s:", label);
	json_array_foreach(arr, k, v) {
		fprintf(c->out, " %s", show(&c->sh, json_string_value(v)));
		shown_free(&c->sh);
	}
	fprintf(c->out, "\n");
}

static void
say_lists(struct ev_ctx *c)
{
	print_names(c, "allow", json_object_get(c->ev, "allow"));
	print_names(c, "deny", json_object_get(c->ev, "deny"));
}

static void
say_requests(struct ev_ctx *c)
{
	json_t *l = json_object_get(c->ev, "requests"), *v;
	size_t k;

	if (json_array_size(l) == 0)
		fprintf(c->out, "no contact requests\n");
	json_array_foreach(l, k, v) {
		fprintf(c->out, "%s <%s>: %s\n", S(v, "name"), S(v, "userid"),
		    S(v, "note"));
		shown_free(&c->sh);
	}
}

static void
say_mail(struct ev_ctx *c)
{
	fprintf(c->out, "new mail from %s: %s ('dchat inbox' lists it)\n",
	    EV("from"), EV("subject"));
}

static void
say_message_later(struct ev_ctx *c)
{
	fprintf(c->out, "<%s> (delivered later, sent %s): %s\n", EV("from"),
	    EV("date"), EV("text"));
}

static void
say_file_later(struct ev_ctx *c)
{
	fprintf(c->out, "<%s> (delivered later, sent %s) file %s saved as %s\n",
	    EV("from"), EV("date"), EV("name"), EV("path"));
}

static void
say_mail_rejected(struct ev_ctx *c)
{
	fprintf(c->out, "WARNING: mail said to be from %s was rejected: %s\n",
	    EV("from"), EV("reason"));
}

#undef S
#undef I
#undef EV
#undef P

/* Kinds without a sentence are shown as their JSON. */
static void (*const say[EV_COUNT])(struct ev_ctx *) = {
	[EV_READY] = say_ready,
	[EV_REGISTERED] = say_registered,
	[EV_CALLING] = say_calling,
	[EV_INCOMING] = say_incoming,
	[EV_CONNECTED] = say_connected,
	[EV_MESSAGE] = say_message,
	[EV_ACK] = say_ack,
	[EV_CLOSED] = say_closed,
	[EV_CALL_FAILED] = say_call_failed,
	[EV_CALL_RETRY] = say_call_retry,
	[EV_REFUSED] = say_refused,
	[EV_FILE_OFFER] = say_file_offer,
	[EV_FILE_RECEIVED] = say_file_received,
	[EV_FILE_DELIVERED] = say_file_delivered,
	[EV_CONTACT_REQUEST] = say_contact_request,
	[EV_CERT_EXPIRING] = say_cert_expiring,
	[EV_RENEWED] = say_renewed,
	[EV_RENEW_FAILED] = say_renew_failed,
	[EV_ERROR] = say_error,
	[EV_REGISTRY_ERROR] = say_error,
	[EV_HELP] = say_help,
	[EV_SENT] = say_sent,
	[EV_FILE_OFFERED] = say_file_offered,
	[EV_PONG] = say_pong,
	[EV_REFRESHED] = say_refreshed,
	[EV_FILE_ACCEPTED] = say_file_accepted,
	[EV_FILE_REJECTED] = say_file_failed,
	[EV_FILE_FAILED] = say_file_failed,
	[EV_DUPLICATE] = say_duplicate,
	[EV_SESSIONS] = say_sessions,
	[EV_LISTS] = say_lists,
	[EV_REQUESTS] = say_requests,
	[EV_MAIL] = say_mail,
	[EV_MAIL_REJECTED] = say_mail_rejected,
	[EV_MESSAGE_LATER] = say_message_later,
	[EV_FILE_LATER] = say_file_later,
};

static void
print_text(struct app *a, enum ev_kind kind, json_t *ev)
{
	struct ev_ctx c;
	char *txt;

	memset(&c, 0, sizeof(c));
	c.out = a->mode == APP_RUN ? stdout : stderr;
	c.ev = ev;
	c.peer = json_object_get(ev, "peer");
	c.sid = (long long)json_integer_value(json_object_get(ev, "session"));
	c.kind = kind;
	if ((unsigned int)kind < EV_COUNT && say[kind] != NULL)
		say[kind](&c);
	else {
		/* jansson escapes C0 controls, not DEL, C1 or bidi. */
		txt = json_dumps(ev, JSON_COMPACT);
		fprintf(c.out, "%s\n", show(&c.sh, txt ? txt : "?"));
		free(txt);
	}
	shown_free(&c.sh);
	fflush(c.out);
}

/* The face's report of one event (struct app_face): takes ev. */
static void
face_event(void *arg, enum ev_kind kind, json_t *ev)
{
	struct app *a = arg;
	char *txt;

	if (ev == NULL)
		return;
	if (a->json && a->mode == APP_RUN) {
		if ((txt = json_dumps(ev, JSON_COMPACT)) != NULL) {
			fprintf(stdout, "%s\n", txt);
			fflush(stdout);
			free(txt);
		}
	} else {
		edit_hide(a->ed); /* above the line being typed */
		print_text(a, kind, ev);
	}
	json_decref(ev);
}

/* An event of the face's own (the answer to a command). */
static void
tell(struct app *a, enum ev_kind kind, const char *fmt, ...)
{
	va_list ap;
	json_t *ev;

	va_start(ap, fmt);
	ev = ev_vpack(kind, fmt, ap);
	va_end(ap);
	face_event(a, kind, ev);
}

static void
fail(struct app *a, const char *cmd, const char *msg)
{
	tell(a, EV_ERROR, "{s:s,s:s}", "cmd", cmd ? cmd : "", "message", msg);
}

/* The session a command names, or the current one. */
static struct session *
target(struct app *a, json_t *cmd, const char *name)
{
	json_t *v = json_object_get(cmd, "session");
	struct session *s;
	char m[80];
	int id;

	id = json_is_integer(v) ? (int)json_integer_value(v) : a->current;
	if (id == 0) {
		fail(a, name, "no session chosen ('sessions', 'switch N')");
		return NULL;
	}
	if ((s = app_session(a, id)) == NULL ||
	    session_state(s) == SS_DEAD) {
		snprintf(m, sizeof(m), "no session %d", id);
		fail(a, name, m);
		return NULL;
	}
	return s;
}

static void
show_lists(struct app *a)
{
	json_t *al = json_array(), *dl = json_array();
	size_t i;

	for (i = 0; i < a->allow.n; i++)
		json_array_append_new(al, json_string(a->allow.e[i]));
	for (i = 0; i < a->deny.n; i++)
		json_array_append_new(dl, json_string(a->deny.e[i]));
	tell(a, EV_LISTS, "{s:o,s:o}", "allow", al, "deny", dl);
}

static void
show_requests(struct app *a)
{
	unsigned char *buf = NULL;
	char *line, *save = NULL, *f2, *f3;
	json_t *l = json_array();
	size_t len;

	if (ks_read_file(a->ks.requests, KS_FILE_MAX, &buf, &len) == 0) {
		for (line = strtok_r((char *)buf, "\n", &save); line;
		    line = strtok_r(NULL, "\n", &save)) {
			if ((f2 = strchr(line, '\t')) == NULL ||
			    (f3 = strchr(f2 + 1, '\t')) == NULL)
				continue;
			*f2++ = '\0';
			*f3++ = '\0';
			json_array_append_new(l, json_pack("{s:s,s:s,s:s}",
			    "userid", line, "name", f2, "note", f3));
		}
		free(buf);
	}
	tell(a, EV_REQUESTS, "{s:o}", "requests", l);
}

/* One session as "sessions" lists it: the peer, or whom we called. */
static json_t *
session_row(struct app *a, const struct session *s)
{
	const struct session_origin *o = session_origin(s);
	const char *peer = session_peer(s)->userid;

	return json_pack("{s:i,s:s,s:s,s:s,s:b}", "id", session_id(s), "peer",
	    peer[0] ? peer : o->target, "state",
	    session_state_name(session_state(s)), "direction",
	    o->dialer ? "out" : "in", "current", session_id(s) == a->current);
}

static void
show_sessions(struct app *a)
{
	json_t *l = json_array();
	struct session *s;

	for (s = a->sessions; s; s = session_next(s))
		json_array_append_new(l, session_row(a, s));
	tell(a, EV_SESSIONS, "{s:o}", "sessions", l);
}

/*
 * The commands, one small function each, found through the table
 * below.  A command is a JSON object; its fields are read where needed.
 */
struct cmd_ctx {
	struct app *a;
	json_t *cmd;
	const char *name;
};

static const char *
field(const struct cmd_ctx *c, const char *key)
{
	return json_string_value(json_object_get(c->cmd, key));
}

static void
cmd_call(struct cmd_ctx *c)
{
	if (field(c, "user") == NULL)
		fail(c->a, c->name, "call whom? (\"user\")");
	else
		(void)app_call(c->a, field(c, "user"), 0);
}

static void
cmd_request(struct cmd_ctx *c)
{
	const char *user = field(c, "user"), *text = field(c, "text");
	struct session *s;
	int sid;

	if (user == NULL || text == NULL)
		fail(c->a, c->name, "request needs \"user\" and \"text\"");
	else if ((sid = app_call(c->a, user, 0)) > 0 &&
	    (s = app_session(c->a, sid)) != NULL)
		session_set_note(s, text);
}

/* The session a call answer is for: named, or the oldest ringing. */
static struct session *
ringing(struct cmd_ctx *c)
{
	struct session *s;
	int sid = 0;

	if (json_is_integer(json_object_get(c->cmd, "session")))
		return target(c->a, c->cmd, c->name);
	for (s = c->a->sessions; s; s = session_next(s))
		if (session_state(s) == SS_RINGING)
			sid = session_id(s);
	if ((s = sid > 0 ? app_session(c->a, sid) : NULL) == NULL)
		fail(c->a, c->name, "no call is ringing");
	return s;
}

static void
cmd_accept(struct cmd_ctx *c)
{
	struct session *s;
	char err[300];

	if ((s = ringing(c)) == NULL)
		return;
	if (session_accept(s, err, sizeof(err)) == -1)
		fail(c->a, c->name, err);
	else
		c->a->current = session_id(s);
}

static void
cmd_reject(struct cmd_ctx *c)
{
	struct session *s;

	if ((s = ringing(c)) == NULL)
		return;
	if (session_state(s) != SS_RINGING)
		fail(c->a, c->name, "that session is not ringing");
	else
		session_close(s, "call rejected");
}

static void
cmd_msg(struct cmd_ctx *c)
{
	struct session *s;
	char err[300];
	uint64_t id;

	if (field(c, "text") == NULL)
		fail(c->a, c->name, "msg needs \"text\"");
	else if ((s = target(c->a, c->cmd, c->name)) == NULL)
		return;
	else if (session_chat(s, field(c, "text"), &id, err,
	    sizeof(err)) == -1)
		fail(c->a, c->name, err);
	else
		tell(c->a, EV_SENT, "{s:i,s:I}", "session", session_id(s), "id",
		    (json_int_t)id);
}

static void
cmd_ping(struct cmd_ctx *c)
{
	struct session *s;
	char err[300];
	uint64_t id;

	if ((s = target(c->a, c->cmd, c->name)) != NULL &&
	    session_ping(s, &id, err, sizeof(err)) == -1)
		fail(c->a, c->name, err);
}

static void
cmd_file(struct cmd_ctx *c)
{
	struct session *s;
	char err[300];
	uint64_t id;

	if (field(c, "path") == NULL)
		fail(c->a, c->name, "file needs \"path\"");
	else if ((s = target(c->a, c->cmd, c->name)) == NULL)
		return;
	else if (session_file_offer(s, field(c, "path"), &id, err,
	    sizeof(err)) == -1)
		fail(c->a, c->name, err);
	else
		tell(c->a, EV_FILE_OFFERED, "{s:i,s:I}", "session", session_id(s),
		    "id", (json_int_t)id);
}

/* The session and the id of the offer a file answer is for, or NULL. */
static struct session *
offer(struct cmd_ctx *c, uint64_t *id)
{
	json_t *idv = json_object_get(c->cmd, "id");

	if (!json_is_integer(idv) || json_integer_value(idv) < 1) {
		fail(c->a, c->name, "which file? (\"id\")");
		return NULL;
	}
	*id = (uint64_t)json_integer_value(idv);
	return target(c->a, c->cmd, c->name);
}

static void
cmd_file_accept(struct cmd_ctx *c)
{
	struct session *s;
	char err[300];
	uint64_t id;

	if ((s = offer(c, &id)) != NULL &&
	    session_file_accept(s, id, field(c, "path"), err,
	    sizeof(err)) == -1)
		fail(c->a, c->name, err);
}

static void
cmd_file_reject(struct cmd_ctx *c)
{
	struct session *s;
	char err[300];
	uint64_t id;

	if ((s = offer(c, &id)) != NULL &&
	    session_file_reject(s, id, err, sizeof(err)) == -1)
		fail(c->a, c->name, err);
}

static void
cmd_hangup(struct cmd_ctx *c)
{
	struct session *s;

	if ((s = target(c->a, c->cmd, c->name)) != NULL)
		session_close(s, "hung up");
}

static void
cmd_sessions(struct cmd_ctx *c)
{
	show_sessions(c->a);
}

static void
cmd_switch(struct cmd_ctx *c)
{
	struct session *s;

	if ((s = target(c->a, c->cmd, c->name)) != NULL) {
		c->a->current = session_id(s);
		show_sessions(c->a);
	}
}

/* The entry an allow, deny, unallow or undeny names, or NULL. */
static const char *
entry(struct cmd_ctx *c)
{
	const char *e = field(c, "user");

	if (e == NULL || *e == '\0') {
		fail(c->a, c->name, "which user? (a user id, @domain, or *)");
		return NULL;
	}
	return e;
}

/* The lists as they are now: onto the disk, and shown. */
static void
lists_changed(struct cmd_ctx *c)
{
	struct app *a = c->a;

	if (ks_list_save(a->ks.allow, &a->allow) == -1 ||
	    ks_list_save(a->ks.deny, &a->deny) == -1)
		fail(a, c->name, "cannot save the lists");
	show_lists(a);
}

/* One list wins: an entry added to one leaves the other. */
static void
list_add(struct cmd_ctx *c, struct ks_list *to, struct ks_list *other)
{
	const char *e;

	if ((e = entry(c)) == NULL)
		return;
	(void)ks_list_remove(other, e);
	if (ks_list_add(to, e) == -1)
		fail(c->a, c->name, "list full or entry invalid");
	else
		lists_changed(c);
}

static void
list_remove(struct cmd_ctx *c, struct ks_list *from)
{
	const char *e;

	if ((e = entry(c)) == NULL)
		return;
	if (ks_list_remove(from, e) == -1)
		fail(c->a, c->name, "not on the list");
	else
		lists_changed(c);
}

static void
cmd_allow(struct cmd_ctx *c)
{
	list_add(c, &c->a->allow, &c->a->deny);
}

static void
cmd_deny(struct cmd_ctx *c)
{
	list_add(c, &c->a->deny, &c->a->allow);
}

static void
cmd_unallow(struct cmd_ctx *c)
{
	list_remove(c, &c->a->allow);
}

static void
cmd_undeny(struct cmd_ctx *c)
{
	list_remove(c, &c->a->deny);
}

static void
cmd_lists(struct cmd_ctx *c)
{
	show_lists(c->a);
}

static void
cmd_requests(struct cmd_ctx *c)
{
	show_requests(c->a);
}

static void
cmd_refresh(struct cmd_ctx *c)
{
	app_refresh(c->a);
}

static void
cmd_help(struct cmd_ctx *c)
{
	tell(c->a, EV_HELP, "{s:s}", "text", help_text);
}

static void
cmd_quit(struct cmd_ctx *c)
{
	c->a->quit = 1;
}

/* What a typed command takes after its verb (parse_typed). */
enum cmd_args {
	CA_NONE,	 /* nothing */
	CA_USER,	 /* a user id or list entry */
	CA_USER_TEXT,	 /* a user id, then a note to the end of the line */
	CA_ID_PATH,	 /* a file offer's id, then perhaps a path */
	CA_SESSION,	 /* perhaps a session number */
	CA_SESSION_TEXT, /* perhaps a session number, then text */
	CA_SESSION_PATH, /* perhaps a session number, then a path */
};

static const struct cmd_def {
	const char *name;
	const char *typed; /* the typed verb when it differs, or NULL */
	enum cmd_args args;
	void (*run)(struct cmd_ctx *);
} cmd_table[] = {
	{ "call", NULL, CA_USER, cmd_call },
	{ "request", NULL, CA_USER_TEXT, cmd_request },
	{ "accept", NULL, CA_SESSION, cmd_accept },
	{ "reject", NULL, CA_SESSION, cmd_reject },
	{ "msg", NULL, CA_SESSION_TEXT, cmd_msg },
	{ "ping", NULL, CA_SESSION, cmd_ping },
	{ "file", NULL, CA_SESSION_PATH, cmd_file },
	{ "file_accept", "get", CA_ID_PATH, cmd_file_accept },
	{ "file_reject", "decline", CA_ID_PATH, cmd_file_reject },
	{ "hangup", NULL, CA_SESSION, cmd_hangup },
	{ "sessions", NULL, CA_NONE, cmd_sessions },
	{ "switch", NULL, CA_SESSION, cmd_switch },
	{ "allow", NULL, CA_USER, cmd_allow },
	{ "deny", NULL, CA_USER, cmd_deny },
	{ "unallow", NULL, CA_USER, cmd_unallow },
	{ "undeny", NULL, CA_USER, cmd_undeny },
	{ "lists", NULL, CA_NONE, cmd_lists },
	{ "requests", NULL, CA_NONE, cmd_requests },
	{ "refresh", NULL, CA_NONE, cmd_refresh },
	{ "help", NULL, CA_NONE, cmd_help },
	{ "quit", NULL, CA_NONE, cmd_quit },
};
#define NCMDS (sizeof(cmd_table) / sizeof(cmd_table[0]))

/*
 * The command named s (len bytes): by its JSON name, and when typed is
 * set also by the verb a person types for it.
 */
static const struct cmd_def *
cmd_find(const char *s, size_t len, int typed)
{
	const char *n;
	size_t i;

	for (i = 0; i < NCMDS; i++) {
		n = cmd_table[i].name;
		if (strlen(n) == len && strncmp(n, s, len) == 0)
			return &cmd_table[i];
		if (typed && (n = cmd_table[i].typed) != NULL &&
		    strlen(n) == len && strncmp(n, s, len) == 0)
			return &cmd_table[i];
	}
	return NULL;
}

/* Run one command (takes cmd). */
static void
run_command(struct app *a, json_t *cmd)
{
	struct cmd_ctx c = { a, cmd, NULL };
	const struct cmd_def *def;

	c.name = json_string_value(json_object_get(cmd, "cmd"));
	if (c.name == NULL)
		fail(a, NULL, "a command needs \"cmd\"");
	else if ((def = cmd_find(c.name, strlen(c.name), 0)) != NULL)
		def->run(&c);
	else
		fail(a, c.name, "unknown command; try help");
	json_decref(cmd);
}

/* Split off the first word of *p (blank-separated). */
static char *
word(char **p)
{
	char *s = *p, *w;

	while (*s == ' ' || *s == '\t')
		s++;
	if (*s == '\0')
		return NULL;
	w = s;
	while (*s && *s != ' ' && *s != '\t')
		s++;
	if (*s)
		*s++ = '\0';
	while (*s == ' ' || *s == '\t')
		s++;
	*p = s;
	return w;
}

/*
 * The session number that starts s ("2 hello" or "2"), with *after set
 * to what follows its blanks, or -1.  Only looks: the rest of the line
 * is free text or a path and must stay whole, blanks and all.
 */
static int
session_number(char **after, char *s)
{
	long n = 0;

	while (*s == ' ' || *s == '\t')
		s++;
	if (*s < '0' || *s > '9')
		return -1;
	for (; *s >= '0' && *s <= '9'; s++)
		if ((n = n * 10 + (*s - '0')) > INT_MAX)
			return -1;
	if (*s != '\0' && *s != ' ' && *s != '\t')
		return -1;
	while (*s == ' ' || *s == '\t')
		s++;
	*after = s;
	return (int)n;
}

static int
is_number(const char *s)
{
	if (s == NULL || *s == '\0')
		return 0;
	for (; *s; s++)
		if (*s < '0' || *s > '9')
			return 0;
	return 1;
}

/*
 * A typed line becomes a JSON command.  Whatever follows a command's
 * fixed words (a message, a path, a note) is taken as it stands, blanks
 * included, so nothing here may cut into it.
 */
static json_t *
parse_typed(struct app *a, char *line)
{
	char *rest = line, *arg, *peek;
	size_t skip = strspn(line, " \t");
	const struct cmd_def *def;
	json_t *cmd;
	int sid;

	if (line[skip] == '\0')
		return NULL;
	def = cmd_find(line + skip, strcspn(line + skip, " \t"), 1);
	if (def == NULL)
		/* Plain text: a message to the current session. */
		return json_pack("{s:s,s:s}", "cmd", "msg", "text", line);
	(void)word(&rest);
	cmd = json_pack("{s:s}", "cmd", def->name);
	switch (def->args) {
	case CA_NONE:
		break;
	case CA_USER:
	case CA_USER_TEXT:
		if ((arg = word(&rest)) != NULL)
			json_object_set_new(cmd, "user", json_string(arg));
		if (def->args == CA_USER_TEXT)
			json_object_set_new(cmd, "text", json_string(rest));
		break;
	case CA_ID_PATH:
		if ((arg = word(&rest)) != NULL && is_number(arg))
			json_object_set_new(cmd, "id",
			    json_integer(strtoll(arg, NULL, 10)));
		if (*rest)
			json_object_set_new(cmd, "path", json_string(rest));
		break;
	case CA_SESSION:
	case CA_SESSION_TEXT:
	case CA_SESSION_PATH:
		/* An optional session number first; a message may start
		 * with a number too, so for text only one naming a session
		 * counts. */
		if ((sid = session_number(&peek, rest)) != -1 &&
		    (def->args != CA_SESSION_TEXT ||
		    app_session(a, sid) != NULL)) {
			json_object_set_new(cmd, "session", json_integer(sid));
			rest = peek;
		}
		if (*rest && def->args != CA_SESSION)
			json_object_set_new(cmd, def->args == CA_SESSION_PATH ?
			    "path" : "text", json_string(rest));
		break;
	}
	return cmd;
}

/*
 * The face's reading of one line of input (struct app_face): a typed
 * command or, with --json, one JSON command.
 */
static void
face_line(void *arg, char *line)
{
	struct app *a = arg;
	json_error_t jerr;
	json_t *cmd;
	size_t n = strlen(line);

	if (n && line[n - 1] == '\r')
		line[--n] = '\0';
	if (n == 0)
		return;
	if (a->json) {
		cmd = json_loads(line, JSON_REJECT_DUPLICATES, &jerr);
		if (cmd == NULL || !json_is_object(cmd)) {
			json_decref(cmd);
			fail(a, NULL, "each line must be one JSON object");
			return;
		}
	} else if ((cmd = parse_typed(a, line)) == NULL)
		return;
	if (cmd == NULL) {
		fail(a, NULL, "invalid input (not UTF-8?)");
		return;
	}
	run_command(a, cmd);
}

void
ui_attach(struct app *a)
{
	a->face.event = face_event;
	a->face.line = face_line;
	a->face.arg = a;
}

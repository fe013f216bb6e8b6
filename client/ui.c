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
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app.h"
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
    "  refresh                  fetch the CRL, re-register, check the "
    "certificate\n"
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

static void
print_text(struct app *a, json_t *ev)
{
	const char *e = json_string_value(json_object_get(ev, "event"));
	json_int_t sid = json_integer_value(json_object_get(ev, "session"));
	FILE *out = a->mode == APP_RUN ? stdout : stderr;
	json_t *p = json_object_get(ev, "peer");
	struct shown sh = { .n = 0 };
#define S(o, k) show(&sh, json_string_value(json_object_get((o), (k))))
#define I(o, k) ((long long)json_integer_value(json_object_get((o), (k))))

	if (strcmp(e, "ready") == 0)
		fprintf(out, "dchat: %s ready; type 'help' for commands\n",
		    S(ev, "userid"));
	else if (strcmp(e, "registered") == 0)
		fprintf(out, "registered with the DIR until %s\n",
		    S(ev, "expires_at"));
	else if (strcmp(e, "calling") == 0)
		fprintf(out, "calling %s (address from the %s) ...\n",
		    S(ev, "user"), S(ev, "via"));
	else if (strcmp(e, "incoming") == 0)
		fprintf(out, "[%lld] incoming call from %s <%s>, verification "
		    "code %s: 'accept %lld' or 'reject %lld'\n", (long long)sid,
		    S(p, "name"), S(p, "userid"), S(p, "code"),
		    (long long)sid, (long long)sid);
	else if (strcmp(e, "connected") == 0) {
		fprintf(out, "[%lld] connected %s %s <%s>%s\n"
		    "     issuer %s\n     expires %s, revocation status: %s\n"
		    "     fingerprint %s\n     verification code: %s\n",
		    (long long)sid, strcmp(S(ev, "direction"), "out") == 0 ?
		    "to" : "with", S(p, "name"), S(p, "userid"),
		    json_is_true(json_object_get(ev, "restricted")) ?
		    " (contact request only)" : "", S(p, "issuer"),
		    S(p, "not_after"), S(p, "revocation"), S(p, "fingerprint"),
		    S(p, "code"));
		if (json_is_true(json_object_get(ev, "fingerprint_changed")))
			fprintf(out, "     WARNING: the certificate changed "
			    "since last time (was %s)\n",
			    S(ev, "previous_fingerprint"));
		/* Not checked with the registry for this session: say so. */
		if (strcmp(S(p, "revocation"), "good") != 0)
			fprintf(out, "     WARNING: %s\n",
			    S(p, "revocation_note"));
	} else if (strcmp(e, "message") == 0)
		fprintf(out, "[%lld] %s: %s\n", (long long)sid, S(ev, "from"),
		    S(ev, "text"));
	else if (strcmp(e, "ack") == 0)
		fprintf(out, "[%lld] message %lld delivered\n", (long long)sid,
		    I(ev, "id"));
	else if (strcmp(e, "closed") == 0)
		fprintf(out, "[%lld] session closed: %s\n", (long long)sid,
		    S(ev, "reason"));
	else if (strcmp(e, "call_failed") == 0)
		fprintf(out, "call to %s failed: %s\n", S(ev, "user"),
		    S(ev, "reason"));
	else if (strcmp(e, "call_retry") == 0)
		fprintf(out, "the last known address of %s failed (%s); asking "
		    "the DIR\n", S(ev, "user"), S(ev, "reason"));
	else if (strcmp(e, "refused") == 0)
		fprintf(out, "refused a caller (%s from %s): %s\n", S(ev, "peer"),
		    S(ev, "addr"), S(ev, "reason"));
	else if (strcmp(e, "file_offer") == 0)
		fprintf(out, "[%lld] file offered: %s (%lld bytes): 'get %lld' "
		    "or 'decline %lld'\n", (long long)sid, S(ev, "name"),
		    I(ev, "size"), I(ev, "id"), I(ev, "id"));
	else if (strcmp(e, "file_received") == 0)
		fprintf(out, "[%lld] file saved to %s (SHA-256 checked)\n",
		    (long long)sid, S(ev, "path"));
	else if (strcmp(e, "file_delivered") == 0)
		fprintf(out, "[%lld] file %lld delivered and checked\n",
		    (long long)sid, I(ev, "id"));
	else if (strcmp(e, "contact_request") == 0)
		fprintf(out, "[%lld] contact request from %s <%s>: %s ('allow "
		    "%s' to accept)\n", (long long)sid, S(ev, "name"),
		    S(ev, "userid"), S(ev, "note"), S(ev, "userid"));
	else if (strcmp(e, "cert_expiring") == 0)
		fprintf(out, "warning: %s (%lld days left)\n", S(ev, "message"),
		    I(ev, "days"));
	else if (strcmp(e, "error") == 0 || strcmp(e, "registry_error") == 0)
		fprintf(out, "%s: %s\n", e, S(ev, "message"));
	else if (strcmp(e, "help") == 0)
		fputs(help_text, out);
	else if (strcmp(e, "sent") == 0 || strcmp(e, "file_offered") == 0)
		fprintf(out, "[%lld] %s %lld sent, waiting for the peer\n",
		    (long long)sid, e[0] == 's' ? "message" : "file offer",
		    I(ev, "id"));
	else if (strcmp(e, "pong") == 0)
		fprintf(out, "[%lld] pong\n", (long long)sid);
	else if (strcmp(e, "refreshed") == 0)
		fprintf(out, "CRL and registration refreshed\n");
	else if (strcmp(e, "file_accepted") == 0)
		fprintf(out, "[%lld] file %lld accepted, sending\n",
		    (long long)sid, I(ev, "id"));
	else if (strcmp(e, "file_rejected") == 0 ||
	    strcmp(e, "file_failed") == 0)
		fprintf(out, "[%lld] file %lld not delivered: %s\n",
		    (long long)sid, I(ev, "id"), S(ev, "reason"));
	else if (strcmp(e, "duplicate") == 0)
		fprintf(out, "both sides called at once: keeping session %lld, "
		    "closing %lld\n", I(ev, "kept"), I(ev, "dropped"));
	else if (strcmp(e, "sessions") == 0) {
		json_t *l = json_object_get(ev, "sessions"), *v;
		size_t k;

		if (json_array_size(l) == 0)
			fprintf(out, "no sessions\n");
		json_array_foreach(l, k, v) {
			fprintf(out, "%s[%lld] %s %s (%s)\n",
			    json_is_true(json_object_get(v, "current")) ?
			    "*" : " ", I(v, "id"), S(v, "peer"),
			    S(v, "direction"), S(v, "state"));
			shown_free(&sh);
		}
	} else if (strcmp(e, "lists") == 0 || strcmp(e, "requests") == 0) {
		json_t *l, *v;
		size_t k;

		if (e[0] == 'l') {
			fprintf(out, "allow:");
			json_array_foreach(json_object_get(ev, "allow"), k, v) {
				fprintf(out, " %s", show(&sh,
				    json_string_value(v)));
				shown_free(&sh);
			}
			fprintf(out, "\ndeny:");
			json_array_foreach(json_object_get(ev, "deny"), k, v) {
				fprintf(out, " %s", show(&sh,
				    json_string_value(v)));
				shown_free(&sh);
			}
			fprintf(out, "\n");
		} else {
			l = json_object_get(ev, "requests");
			if (json_array_size(l) == 0)
				fprintf(out, "no contact requests\n");
			json_array_foreach(l, k, v) {
				fprintf(out, "%s <%s>: %s\n", S(v, "name"),
				    S(v, "userid"), S(v, "note"));
				shown_free(&sh);
			}
		}
	}
	else {
		/* jansson escapes C0 controls, not DEL, C1 or bidi. */
		char *txt = json_dumps(ev, JSON_COMPACT);

		fprintf(out, "%s\n", show(&sh, txt ? txt : e));
		free(txt);
	}
#undef S
#undef I
	shown_free(&sh);
	fflush(out);
}

void
ui_event(struct app *a, json_t *ev)
{
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
		print_text(a, ev);
	}
	json_decref(ev);
}

static void
fail(struct app *a, const char *cmd, const char *msg)
{
	ui_event(a, json_pack("{s:s,s:s,s:s}", "event", "error", "cmd",
	    cmd ? cmd : "", "message", msg));
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
	if ((s = app_session(a, id)) == NULL || s->st == SS_DEAD) {
		snprintf(m, sizeof(m), "no session %d", id);
		fail(a, name, m);
		return NULL;
	}
	return s;
}

static void
list_edit(struct app *a, const char *name, const char *entry)
{
	int add_allow = strcmp(name, "allow") == 0;
	int add_deny = strcmp(name, "deny") == 0;

	if (entry == NULL || *entry == '\0') {
		fail(a, name, "which user? (a user id, @domain, or *)");
		return;
	}
	if (add_allow || add_deny) {
		/* One list wins: moving an entry removes it from the other. */
		(void)ks_list_remove(add_allow ? &a->deny : &a->allow, entry);
		if (ks_list_add(add_allow ? &a->allow : &a->deny, entry) == -1) {
			fail(a, name, "list full or entry invalid");
			return;
		}
	} else if (ks_list_remove(strcmp(name, "unallow") == 0 ? &a->allow :
	    &a->deny, entry) == -1) {
		fail(a, name, "not on the list");
		return;
	}
	if (ks_list_save(a->ks.allow, &a->allow) == -1 ||
	    ks_list_save(a->ks.deny, &a->deny) == -1)
		fail(a, name, "cannot save the lists");
	ui_command(a, json_pack("{s:s}", "cmd", "lists"));
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
	ui_event(a, json_pack("{s:s,s:o,s:o}", "event", "lists", "allow", al,
	    "deny", dl));
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
	ui_event(a, json_pack("{s:s,s:o}", "event", "requests", "requests",
	    l));
}

static void
show_sessions(struct app *a)
{
	json_t *l = json_array();
	struct session *s;

	for (s = a->sessions; s; s = s->next)
		json_array_append_new(l, json_pack("{s:i,s:s,s:s,s:s,s:b}", "id",
		    s->id, "peer", s->peer.userid[0] ? s->peer.userid :
		    s->target, "state", session_state_name(s->st), "direction",
		    s->dialer ? "out" : "in", "current", s->id == a->current));
	ui_event(a, json_pack("{s:s,s:o}", "event", "sessions", "sessions", l));
}

void
ui_command(struct app *a, json_t *cmd)
{
	const char *name = json_string_value(json_object_get(cmd, "cmd"));
	const char *user = json_string_value(json_object_get(cmd, "user"));
	const char *text = json_string_value(json_object_get(cmd, "text"));
	const char *path = json_string_value(json_object_get(cmd, "path"));
	json_t *idv = json_object_get(cmd, "id");
	struct session *s;
	char err[300];
	uint64_t id;
	int sid;

	if (name == NULL) {
		fail(a, NULL, "a command needs \"cmd\"");
		goto out;
	}
	if (strcmp(name, "call") == 0) {
		if (user == NULL)
			fail(a, name, "call whom? (\"user\")");
		else
			(void)app_call(a, user, 0);
	} else if (strcmp(name, "request") == 0) {
		if (user == NULL || text == NULL)
			fail(a, name, "request needs \"user\" and \"text\"");
		else if ((sid = app_call(a, user, 0)) > 0 &&
		    (s = app_session(a, sid)) != NULL) {
			snprintf(s->note, sizeof(s->note), "%s", text);
			s->has_note = 1;
		}
	} else if (strcmp(name, "accept") == 0 || strcmp(name, "reject") == 0) {
		json_t *v = json_object_get(cmd, "session");

		s = NULL;
		sid = 0;
		if (!json_is_integer(v)) {
			/* The oldest ringing call. */
			for (s = a->sessions; s; s = s->next)
				if (s->st == SS_RINGING)
					sid = s->id;
			s = sid > 0 ? app_session(a, sid) : NULL;
			if (s == NULL)
				fail(a, name, "no call is ringing");
		} else
			s = target(a, cmd, name);
		if (s && strcmp(name, "reject") == 0) {
			if (s->st != SS_RINGING)
				fail(a, name, "that session is not ringing");
			else
				session_close(s, "call rejected");
		} else if (s && session_accept(s, err, sizeof(err)) == -1)
			fail(a, name, err);
		else if (s)
			a->current = s->id;
	} else if (strcmp(name, "msg") == 0) {
		if (text == NULL)
			fail(a, name, "msg needs \"text\"");
		else if ((s = target(a, cmd, name)) != NULL) {
			if (session_chat(s, text, &id, err, sizeof(err)) == -1)
				fail(a, name, err);
			else
				ui_event(a, json_pack("{s:s,s:i,s:I}", "event",
				    "sent", "session", s->id, "id",
				    (json_int_t)id));
		}
	} else if (strcmp(name, "ping") == 0) {
		if ((s = target(a, cmd, name)) != NULL &&
		    session_ping(s, &id, err, sizeof(err)) == -1)
			fail(a, name, err);
	} else if (strcmp(name, "file") == 0) {
		if (path == NULL)
			fail(a, name, "file needs \"path\"");
		else if ((s = target(a, cmd, name)) != NULL) {
			if (session_file_offer(s, path, &id, err,
			    sizeof(err)) == -1)
				fail(a, name, err);
			else
				ui_event(a, json_pack("{s:s,s:i,s:I}", "event",
				    "file_offered", "session", s->id, "id",
				    (json_int_t)id));
		}
	} else if (strcmp(name, "file_accept") == 0 ||
	    strcmp(name, "file_reject") == 0) {
		if (!json_is_integer(idv) || json_integer_value(idv) < 1)
			fail(a, name, "which file? (\"id\")");
		else if ((s = target(a, cmd, name)) != NULL) {
			id = (uint64_t)json_integer_value(idv);
			if ((strcmp(name, "file_accept") == 0 ?
			    session_file_accept(s, id, path, err, sizeof(err)) :
			    session_file_reject(s, id, err, sizeof(err))) == -1)
				fail(a, name, err);
		}
	} else if (strcmp(name, "hangup") == 0) {
		if ((s = target(a, cmd, name)) != NULL)
			session_close(s, "hung up");
	} else if (strcmp(name, "sessions") == 0) {
		show_sessions(a);
	} else if (strcmp(name, "switch") == 0) {
		if ((s = target(a, cmd, name)) != NULL) {
			a->current = s->id;
			show_sessions(a);
		}
	} else if (strcmp(name, "allow") == 0 || strcmp(name, "deny") == 0 ||
	    strcmp(name, "unallow") == 0 || strcmp(name, "undeny") == 0) {
		list_edit(a, name, user);
	} else if (strcmp(name, "lists") == 0) {
		show_lists(a);
	} else if (strcmp(name, "requests") == 0) {
		show_requests(a);
	} else if (strcmp(name, "refresh") == 0) {
		app_refresh(a);
	} else if (strcmp(name, "help") == 0) {
		ui_event(a, json_pack("{s:s,s:s}", "event", "help", "text",
		    help_text));
	} else if (strcmp(name, "quit") == 0) {
		a->quit = 1;
	} else
		fail(a, name, "unknown command; try help");
out:
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

/* What a typed line may start with; any other line is a message. */
static const char *const verbs[] = {
	"accept", "allow", "call", "decline", "deny", "file", "file_accept",
	"file_reject", "get", "hangup", "help", "lists", "msg", "ping", "quit",
	"refresh", "reject", "request", "requests", "sessions", "switch",
	"unallow", "undeny",
};

static int
is_verb(const char *s, size_t len)
{
	size_t i;

	for (i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++)
		if (strlen(verbs[i]) == len && strncmp(verbs[i], s, len) == 0)
			return 1;
	return 0;
}

/*
 * A typed line becomes a JSON command.  Whatever follows a command's
 * fixed words (a message, a path, a note) is taken as it stands, blanks
 * included, so nothing here may cut into it.
 */
static json_t *
parse_typed(struct app *a, char *line)
{
	char *rest = line, *verb, *arg, *peek;
	size_t skip = strspn(line, " \t");
	json_t *cmd;
	int sid;

	if (line[skip] == '\0')
		return NULL;
	if (!is_verb(line + skip, strcspn(line + skip, " \t")))
		/* Plain text: a message to the current session. */
		return json_pack("{s:s,s:s}", "cmd", "msg", "text", line);
	verb = word(&rest);
	if (strcmp(verb, "get") == 0)
		verb = "file_accept";
	else if (strcmp(verb, "decline") == 0)
		verb = "file_reject";
	cmd = json_pack("{s:s}", "cmd", verb);
	if (strcmp(verb, "call") == 0 || strcmp(verb, "allow") == 0 ||
	    strcmp(verb, "deny") == 0 || strcmp(verb, "unallow") == 0 ||
	    strcmp(verb, "undeny") == 0) {
		if ((arg = word(&rest)) != NULL)
			json_object_set_new(cmd, "user", json_string(arg));
	} else if (strcmp(verb, "request") == 0) {
		if ((arg = word(&rest)) != NULL)
			json_object_set_new(cmd, "user", json_string(arg));
		json_object_set_new(cmd, "text", json_string(rest));
	} else if (strcmp(verb, "file_accept") == 0 ||
	    strcmp(verb, "file_reject") == 0) {
		if ((arg = word(&rest)) != NULL && is_number(arg))
			json_object_set_new(cmd, "id",
			    json_integer(strtoll(arg, NULL, 10)));
		if (*rest)
			json_object_set_new(cmd, "path", json_string(rest));
	} else if (strcmp(verb, "msg") == 0 || strcmp(verb, "file") == 0 ||
	    strcmp(verb, "accept") == 0 || strcmp(verb, "reject") == 0 ||
	    strcmp(verb, "switch") == 0 || strcmp(verb, "ping") == 0 ||
	    strcmp(verb, "hangup") == 0) {
		/* An optional session number first; a message may start
		 * with a number too, so for msg only one naming a session
		 * counts. */
		if ((sid = session_number(&peek, rest)) != -1 &&
		    (strcmp(verb, "msg") != 0 || app_session(a, sid) != NULL)) {
			json_object_set_new(cmd, "session", json_integer(sid));
			rest = peek;
		}
		if (*rest)
			json_object_set_new(cmd, strcmp(verb, "file") == 0 ?
			    "path" : "text", json_string(rest));
	}
	return cmd;
}

void
ui_line(struct app *a, char *line)
{
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
	ui_command(a, cmd);
}

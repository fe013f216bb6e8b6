/*
 * run.c - the peer's event loop: listeners, calls, registration, CRL.
 */
#include <sys/stat.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "app.h"
#include "ca.h"
#include "expiry.h"
#include "identity.h"
#include "mail.h"
#include "msg.h"
#include "registry.h"
#include "watch.h"

#define CALL_CACHE_TIMEOUT_MS 1500
#define CALL_TIMEOUT_MS 5000
#define IFCHECK_SECS 30
#define RETRY_SECS 30
/*
 * How often a running dchat asks the registry for mail besides: the
 * watch (watch.h) hears of new mail at once; this is for a registry that
 * could not tell (its listener down) and a watch that lost its way.
 */
#define MAIL_POLL_SECS 300
#define CRL_REFRESH_SECS 3600
#define ACCEPT_BURST 64	/* connections taken per listener per loop turn */

static struct app *sig_app;

static void warn_expiry(struct app *a, time_t now);
static int renew(struct app *a);

static void
on_signal(int sig)
{
	int saved = errno;
	char c = (char)sig;

	if (sig_app)
		(void)write(sig_app->sigfd[1], &c, 1);
	errno = saved;
}

/* Hand an event to the face, which takes it. */
static void
show(struct app *a, enum ev_kind kind, json_t *ev)
{
	if (ev == NULL)
		return;
	if (a->face.event != NULL)
		a->face.event(a->face.arg, kind, ev);
	else
		json_decref(ev);
}

/* An event of kind with the members fmt packs (event.h). */
static void
tell(struct app *a, enum ev_kind kind, const char *fmt, ...)
{
	va_list ap;
	json_t *ev;

	va_start(ap, fmt);
	ev = ev_vpack(kind, fmt, ap);
	va_end(ap);
	show(a, kind, ev);
}

/* An error, or the registry's (EV_ERROR, EV_REGISTRY_ERROR). */
static void
report(struct app *a, enum ev_kind kind, const char *msg)
{
	tell(a, kind, "{s:s}", "message", msg);
}

struct session *
app_session(struct app *a, int id)
{
	struct session *s;

	for (s = a->sessions; s; s = session_next(s))
		if (session_id(s) == id)
			return s;
	return NULL;
}

/*
 * A session opened: note in ev a certificate that changed since the
 * contacts last saw this peer, and remember who it is and, for our
 * calls, the address that worked (tried first next time).
 */
static void
remember_peer(struct app *a, struct session *s, json_t *ev)
{
	const struct pt_peer *peer = session_peer(s);
	const struct session_origin *o = session_origin(s);
	struct ks_contact c;
	int known = ks_contact_get(&a->ks, peer->userid, &c) == 0;

	if (known && strcmp(c.fingerprint, "-") != 0 &&
	    strcmp(c.fingerprint, peer->fingerprint) != 0) {
		json_object_set_new(ev, "fingerprint_changed", json_true());
		json_object_set_new(ev, "previous_fingerprint",
		    json_string(c.fingerprint));
	}
	if (o->dialer) {
		memset(&c, 0, sizeof(c));
		snprintf(c.userid, sizeof(c.userid), "%s", peer->userid);
		if (sscanf(o->addr, "%63s %d", c.ip, &c.port) != 2)
			c.port = 0;
	} else if (!known)
		c.port = 0;
	snprintf(c.fingerprint, sizeof(c.fingerprint), "%s", peer->fingerprint);
	if (c.port > 0)
		(void)ks_contact_set(&a->ks, &c);
}

/* The remembered address of our call failed: ask the DIR (once). */
static void
retry_call(struct app *a, struct session *s, json_t *ev)
{
	int sid;

	json_object_set_new(ev, "event", json_string(ev_name(EV_CALL_RETRY)));
	show(a, EV_CALL_RETRY, ev);
	sid = app_call(a, session_origin(s)->target, 1);
	if (a->mode != APP_RUN && session_id(s) == a->os_sid)
		a->os_sid = sid;
}

/* One-shot: the message or the file offer, once connected. */
static void
one_shot_send(struct app *a, struct session *s)
{
	char err[256];
	int rc;

	if (a->mode == APP_SEND)
		rc = session_chat(s, a->payload, &a->os_id, err, sizeof(err));
	else if (a->os_mail)
		rc = session_mail_offer(s, a->payload, &a->os_id, err,
		    sizeof(err));
	else
		rc = session_file_offer(s, a->payload, &a->os_id, err,
		    sizeof(err));
	a->os_sent = 1;
	if (rc == -1) {
		report(a, EV_ERROR, err);
		session_close(s, "nothing to send");
		a->exit_code = 1;
	}
}

/* The event that says the peer has what dchat send(file) sent. */
static enum ev_kind
one_shot_confirmation(enum app_mode mode)
{
	return mode == APP_SENDFILE ? EV_FILE_DELIVERED : EV_ACK;
}

/* One-shot: send once connected, finish on the confirmation. */
static void
one_shot_event(struct app *a, struct session *s, enum ev_kind kind,
    json_t *ev)
{
	json_int_t id = json_integer_value(json_object_get(ev, "id"));

	show(a, kind, ev);
	switch (kind) {
	case EV_CONNECTED:
		if (!a->os_sent)
			one_shot_send(a, s);
		break;
	case EV_ACK:
	case EV_FILE_DELIVERED:
		if (kind == one_shot_confirmation(a->mode) &&
		    (uint64_t)id == a->os_id) {
			a->exit_code = 0;
			session_close(s, "done");
		}
		break;
	case EV_FILE_REJECTED:
	case EV_FILE_FAILED:
		a->exit_code = 1;
		session_close(s, "file not delivered");
		break;
	default:
		break;
	}
}

static void mail_seen(void *arg, const struct mail_entry *e);
static int mail_admit(void *arg, const char *userid);

/* Mail the peer of s handed over, at ev's path: judged and kept. */
static void
take_mail(struct app *a, struct session *s, json_t *ev)
{
	const char *path = json_string_value(json_object_get(ev, "path"));
	unsigned char *data = NULL;
	struct mail_tally t;
	char err[300];
	size_t len;

	if (path == NULL)
		return;
	if (ks_read_file(path, MSG_MAIL_SIZE_MAX, &data, &len) == -1)
		report(a, EV_ERROR, "mail handed over could not be read");
	else if (mail_accept(a->irp, &a->ks, session_peer(s)->userid, data,
	    len, &t, mail_seen, a, err, sizeof(err)) == -1)
		report(a, EV_ERROR, err);
	unlink(path);
	free(data);
}

/* Bookkeeping before the user sees a session's event, then the face. */
static void
on_session_event(void *arg, struct session *s, enum ev_kind kind,
    json_t *ev)
{
	struct app *a = arg;
	int sid = session_id(s);

	switch (kind) {
	case EV_FILE_RECEIVED:
		/* Mail handed over: checked and kept as mail, not a file. */
		if (json_is_true(json_object_get(ev, "mail"))) {
			take_mail(a, s, ev);
			json_decref(ev); /* not shown: mail_seen said it */
			return;
		}
		break;
	case EV_CONNECTED:
		remember_peer(a, s, ev);
		if (a->current == 0)
			a->current = sid;
		break;
	case EV_CONTACT_REQUEST:
		(void)ks_request_add(&a->ks, session_peer(s)->userid,
		    session_peer(s)->name,
		    json_string_value(json_object_get(ev, "note")));
		break;
	case EV_CALL_FAILED:
		if (session_origin(s)->from_cache) {
			retry_call(a, s, ev);
			return;
		}
		/* FALLTHROUGH */
	case EV_CLOSED:
		if (a->current == sid)
			a->current = 0;
		break;
	default:
		break;
	}
	if (a->mode != APP_RUN && sid == a->os_sid)
		one_shot_event(a, s, kind, ev);
	else
		show(a, kind, ev);
}

/* Listen on every --listen address (default [::]:4605, dual-stack). */
static int
open_listeners(struct app *a)
{
	size_t i;
	int fd, one = 1, zero = 0;

	for (i = 0; i < a->nlisten; i++) {
		const struct dial_addr *l = &a->listen[i];

		fd = socket(l->ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK |
		    SOCK_CLOEXEC, 0);
		if (fd == -1)
			goto err;
		(void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one,
		    sizeof(one));
		if (l->ss.ss_family == AF_INET6)
			(void)setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero,
			    sizeof(zero));
		if (bind(fd, (const struct sockaddr *)&l->ss, l->len) == -1 ||
		    listen(fd, 64) == -1) {
			close(fd);
			goto err;
		}
		a->lfd[i] = fd;
	}
	return 0;
err:
	fprintf(stderr, "dchat: cannot listen on %s: %s\n", a->listen[i].text,
	    strerror(errno));
	return -1;
}

/* Is this address worth registering?  Global scope only. */
static int
global_addr(const struct sockaddr *sa)
{
	if (sa->sa_family == AF_INET6) {
		const struct in6_addr *p =
		    &((const struct sockaddr_in6 *)sa)->sin6_addr;

		return !IN6_IS_ADDR_LOOPBACK(p) && !IN6_IS_ADDR_LINKLOCAL(p) &&
		    !IN6_IS_ADDR_MULTICAST(p) && !IN6_IS_ADDR_UNSPECIFIED(p) &&
		    !IN6_IS_ADDR_V4MAPPED(p) && (p->s6_addr[0] & 0xfe) != 0xfc;
	}
	if (sa->sa_family == AF_INET) {
		uint32_t v = ntohl(((const struct sockaddr_in *)sa)->sin_addr
		    .s_addr);

		/* Private IPv4 stays: a flat private network is a use case. */
		return (v >> 24) != 127 && (v >> 16) != 0xa9fe && v != 0;
	}
	return 0;
}

/* The addresses to register: --advertise, else the interfaces'. */
static size_t
collect_addrs(struct app *a, struct irp_addr_req *out)
{
	struct ifaddrs *ifa = NULL, *i;
	size_t n = 0, k;
	int port;

	if (a->nadv > 0) {
		for (k = 0; k < a->nadv; k++) {
			snprintf(out[n].ip, sizeof(out[n].ip), "%s",
			    a->adv[k].ip);
			out[n++].port = a->adv[k].port;
		}
		return n;
	}
	port = a->nlisten ? a->listen[0].port : IRP_PEER_PORT;
	if (getifaddrs(&ifa) == -1)
		return 0;
	for (i = ifa; i && n < IRP_ADDR_MAX; i = i->ifa_next) {
		if (i->ifa_addr == NULL || !(i->ifa_flags & IFF_UP) ||
		    (i->ifa_flags & IFF_LOOPBACK) || !global_addr(i->ifa_addr))
			continue;
		if (inet_ntop(i->ifa_addr->sa_family,
		    i->ifa_addr->sa_family == AF_INET6 ?
		    (const void *)&((struct sockaddr_in6 *)i->ifa_addr)
			->sin6_addr :
		    (const void *)&((struct sockaddr_in *)i->ifa_addr)
			->sin_addr, out[n].ip, sizeof(out[n].ip)) == NULL)
			continue;
		out[n++].port = port;
	}
	freeifaddrs(ifa);
	return n;
}

static void
do_register(struct app *a, int force)
{
	struct irp_addr_req addr[IRP_ADDR_MAX];
	char sig[sizeof(a->reg_sig)], exp[IRP_TIME_MAX] = "";
	struct irp_err err;
	json_t *list;
	size_t n, i, off = 0;
	int granted = 0, ttl;

	n = collect_addrs(a, addr);
	for (i = 0; i < n; i++)
		off += (size_t)snprintf(sig + off, sizeof(sig) - off, "%s/%d ",
		    addr[i].ip, addr[i].port);
	sig[off] = '\0';
	if (!force && a->registered && strcmp(sig, a->reg_sig) == 0)
		return;
	/* Our addresses changed (netlink or the periodic check): the kept
	 * registry connection may be bound to one that is gone. */
	if (a->registered && strcmp(sig, a->reg_sig) != 0 &&
	    irp_client_reconnect(a->irp) == -1)
		report(a, EV_ERROR, "out of memory");
	if (n == 0) {
		report(a, EV_REGISTRY_ERROR, "no global address on "
		    "any interface; use --advertise to name one");
		a->reg_next = time(NULL) + RETRY_SECS;
		return;
	}
	if (irp_addresses_put(a->irp, addr, n, a->ttl, &granted, exp,
	    &err) == -1) {
		report(a, EV_REGISTRY_ERROR, err.msg);
		a->reg_next = time(NULL) + RETRY_SECS;
		return;
	}
	a->registered = 1;
	snprintf(a->reg_sig, sizeof(a->reg_sig), "%s", sig);
	/* The registry may have clamped our TTL to its range: what it
	 * granted is what counts.  Renew at half of it so one lost request
	 * does not take us offline. */
	ttl = granted > 0 ? granted : a->ttl;
	a->reg_next = time(NULL) + (ttl / 2 > 5 ? ttl / 2 : 5);
	list = json_array();
	for (i = 0; i < n; i++)
		json_array_append_new(list, json_pack("{s:s,s:i}", "ip",
		    addr[i].ip, "port", addr[i].port));
	tell(a, EV_REGISTERED, "{s:o,s:s,s:i}", "addresses", list,
	    "expires_at", exp, "ttl", ttl);
}

/* Fetch the CRL; keep the cached one when the DIR is unreachable. */
static void
refresh_crl(struct app *a)
{
	unsigned char *der = NULL;
	struct irp_err err;
	char msg[256];
	size_t len;
	time_t next, now = time(NULL);

	a->crl_next = now + RETRY_SECS;
	if (irp_crl_get(a->irp, &der, &len, &err) == -1) {
		report(a, EV_REGISTRY_ERROR, err.msg);
		return;
	}
	if (ks_write_file(a->ks.crl, der, len, 0644) == -1) {
		free(der);
		report(a, EV_ERROR, "cannot write the CRL cache");
		return;
	}
	free(der);
	if (pt_reload_crl(a->pt, msg, sizeof(msg)) == -1) {
		report(a, EV_ERROR, msg);
		return;
	}
	next = pt_crl_next_update(a->pt);
	a->crl_next = now + CRL_REFRESH_SECS;
	if (next > now && next - 60 < a->crl_next)
		a->crl_next = next - 60 > now + RETRY_SECS ? next - 60 :
		    now + RETRY_SECS;
}

/*
 * How peertls asks the registry about a certificate (pt_set_ocsp).  It
 * runs inside a handshake and blocks the loop while it waits (at most
 * IRP_OCSP_TIMEOUT), so after a failure the registry is not asked again
 * for OCSP_RETRY_SECS: sessions meanwhile say they were judged without
 * it.
 */
#define OCSP_RETRY_SECS 30

static int
ocsp_fetch(void *arg, const unsigned char *req, size_t len,
    unsigned char **resp, size_t *resp_len, char *why, size_t whylen)
{
	struct app *a = arg;
	struct irp_err err;
	time_t now = time(NULL);

	if (now < a->ocsp_retry_at) {
		snprintf(why, whylen, "it did not answer at %s",
		    a->ocsp_failed_at);
		return -1;
	}
	if (irp_ocsp(a->irp, req, len, resp, resp_len, &err) == -1) {
		struct tm tm;

		a->ocsp_retry_at = now + OCSP_RETRY_SECS;
		if (gmtime_r(&now, &tm) == NULL ||
		    strftime(a->ocsp_failed_at, sizeof(a->ocsp_failed_at),
		    "%H:%M:%S UTC", &tm) == 0)
			snprintf(a->ocsp_failed_at, sizeof(a->ocsp_failed_at),
			    "?");
		snprintf(why, whylen, "%s", err.status ? "it refused the "
		    "question" : "it is unreachable");
		return -1;
	}
	a->ocsp_retry_at = 0;
	return 0;
}

/* The CA a foreign certificate must chain to before we ask (vouch.h). */
static X509 *
vouch_gate_ca(void *arg, const char *domain)
{
	struct app *a = arg;

	return vouch_gate(a->vouch, domain);
}

/*
 * How peertls checks a peer of another domain (pt_set_vouch): our
 * registry is asked afresh about userid inside the handshake, and blocks
 * the loop while it answers, as the OCSP question does (at most
 * IRP_LOOKUP_TIMEOUT; not asked again for VOUCH_RETRY_SECS after it did
 * not answer).
 */
static int
vouch_check(void *arg, const char *userid, const char *fingerprint,
    X509 **ca, char *trust, size_t trustlen, int *listed, time_t *checked,
    char *why, size_t whylen)
{
	struct app *a = arg;
	const char *t = "";
	int rv;

	*ca = NULL;
	if ((rv = vouch_fetch(a->vouch, a->irp, userid, why, whylen)) == -1)
		return -1;
	if (rv == 1) {
		/* vouch_fetch said why in why: our registry did not answer. */
		char cause[128];

		snprintf(cause, sizeof(cause), "%s", why);
		snprintf(why, whylen, "your registry could not be asked (%s)",
		    cause);
	} else if (!vouch_stale(a->vouch, userid, why, whylen))
		why[0] = '\0'; /* asked now, and it asked the other one */
	/* vouch_fetch checked the user id: it has its '@'. */
	if ((*ca = vouch_ca(a->vouch, strrchr(userid, '@') + 1, &t)) ==
	    NULL || X509_up_ref(*ca) != 1) {
		*ca = NULL;
		snprintf(why, whylen, "no CA kept for its domain");
		return -1;
	}
	snprintf(trust, trustlen, "%s", t);
	*listed = vouch_listed(a->vouch, userid, fingerprint);
	*checked = vouch_checked(a->vouch, userid);
	return 0;
}

/*
 * No CRL cached (an init or restore that could not fetch one, or a file
 * someone removed): fetch it before PeerTLS loads it, since without a
 * CRL no handshake can pass.  When the DIR can not be reached either,
 * say why; pt_new then names the missing file.
 */
static void
fetch_missing_crl(struct app *a)
{
	unsigned char *der = NULL;
	struct irp_err err;
	size_t len;

	if (access(a->ks.crl, F_OK) == 0)
		return;
	if (irp_crl_get(a->irp, &der, &len, &err) == -1) {
		fprintf(stderr, "dchat: no CRL cached, and none fetched: %s\n",
		    err.msg);
		return;
	}
	if (ks_write_file(a->ks.crl, der, len, 0644) == -1)
		fprintf(stderr, "dchat: cannot write %s\n", a->ks.crl);
	free(der);
}

void
app_refresh(struct app *a)
{
	refresh_crl(a);
	if (a->mode == APP_RUN) {
		/* A renewal that is due (waiting out a back-off, say) is
		 * tried now; it registers the new certificate itself. */
		if (time(NULL) < renew_due(a->cert_not_before,
		    a->cert_not_after) || renew(a) == -1)
			do_register(a, 1);
		/* Out of turn: say now where the certificate stands. */
		a->expiry_next = 0;
		warn_expiry(a, time(NULL));
		/* And any mail that waits, at the next turn. */
		a->mail_next = 0;
	}
	tell(a, EV_REFRESHED, "{}");
}

static size_t
count_sessions(const struct app *a)
{
	const struct session *s;
	size_t n = 0;

	for (s = a->sessions; s; s = session_next(s))
		n++;
	return n;
}

static struct session *
add_session(struct app *a, int fd, const struct session_origin *o)
{
	struct session *s;

	if ((s = session_new(++a->next_sid, fd, a->pt, o, &a->env)) == NULL)
		return NULL;
	session_set_next(s, a->sessions);
	a->sessions = s;
	/* Start the handshake now: the ClientHello goes out at once. */
	session_io(s, 0);
	return s;
}

/* Our call to uid at addr: its session, or NULL. */
static struct session *
add_call(struct app *a, int fd, const char *uid, const char *addr,
    int from_cache)
{
	struct session_origin o = { 0 };

	o.dialer = 1;
	o.target = uid;
	o.addr = addr;
	o.from_cache = from_cache;
	o.mail_only = a->mode == APP_SENDFILE && a->os_mail;
	return add_session(a, fd, &o);
}

static void
call_failed(struct app *a, const char *uid, const char *why)
{
	tell(a, EV_CALL_FAILED, "{s:s,s:s}", "user", uid, "reason", why);
}

int
app_call(struct app *a, const char *userid, int skip_cache)
{
	struct dial_addr addrs[DIAL_MAX];
	char uid[IRP_USERID_MAX + 1], err[300];
	struct irp_user *u = NULL;
	struct ks_contact c;
	struct irp_err ierr;
	struct session *s;
	const char *why;
	size_t n = 0, i, j, which;
	int fd, id = -1;

	if (irp_userid_normalize(userid, uid, sizeof(uid), &why) == -1) {
		call_failed(a, userid, why);
		return -1;
	}
	if (count_sessions(a) >= APP_SESSIONS_MAX + 8) {
		call_failed(a, uid, "too many sessions; hang up some first");
		return -1;
	}
	if (!skip_cache && ks_contact_get(&a->ks, uid, &c) == 0 &&
	    dial_addr_parse(c.ip, c.port, &addrs[0]) == 0) {
		tell(a, EV_CALLING, "{s:s,s:s}", "user", uid, "via",
		    "contacts");
		fd = dial_connect(addrs, 1, CALL_CACHE_TIMEOUT_MS, &which, err,
		    sizeof(err));
		if (fd != -1) {
			s = add_call(a, fd, uid, addrs[0].text, 1);
			return s ? session_id(s) : -1;
		}
		tell(a, EV_CALL_RETRY, "{s:s,s:s}", "user", uid, "reason",
		    err);
	}
	tell(a, EV_CALLING, "{s:s,s:s}", "user", uid, "via", "registry");
	if (irp_lookup(a->irp, uid, &u, &ierr) == -1) {
		call_failed(a, uid, ierr.msg);
		return -1;
	}
	for (i = 0; i < u->ndev; i++)
		for (j = 0; j < u->dev[i].naddr && n < DIAL_MAX; j++)
			if (dial_addr_parse(u->dev[i].addr[j].ip,
			    u->dev[i].addr[j].port, &addrs[n]) == 0)
				n++;
	irp_user_free(u);
	if ((n = dial_sort(addrs, n)) == 0) {
		snprintf(err, sizeof(err), "%s is offline (no registered "
		    "address)", uid);
		call_failed(a, uid, err);
		return -1;
	}
	if ((fd = dial_connect(addrs, n, CALL_TIMEOUT_MS, &which, err,
	    sizeof(err))) == -1) {
		call_failed(a, uid, err);
		return -1;
	}
	if ((s = add_call(a, fd, uid, addrs[which].text, 0)) != NULL)
		id = session_id(s);
	else
		call_failed(a, uid, "cannot set up TLS");
	return id;
}

/*
 * Room for a new caller from src (see admit.h): 0, with the oldest
 * pending connection of that source or of all dropped when a limit is
 * reached, or -1 when every slot holds a session past its handshake.
 */
static int
make_room(struct app *a, const unsigned char src[ADMIT_KEY_LEN])
{
	unsigned char keys[APP_SESSIONS_MAX + 8][ADMIT_KEY_LEN];
	struct session *pend[APP_SESSIONS_MAX + 8], *s;
	size_t n = 0, live = 0, i;
	int v;

	/* The list is newest first; admit_pick wants the oldest first. */
	for (s = a->sessions; s; s = session_next(s)) {
		if (session_state(s) == SS_DEAD)
			continue;
		live++;
		if (!session_origin(s)->dialer &&
		    session_state(s) == SS_HANDSHAKE &&
		    n < sizeof(pend) / sizeof(pend[0]))
			pend[n++] = s;
	}
	for (i = 0; i < n; i++)
		memcpy(keys[i], session_origin(pend[n - 1 - i])->src,
		    ADMIT_KEY_LEN);
	v = admit_pick((const unsigned char (*)[ADMIT_KEY_LEN])keys, n, src,
	    live, APP_SESSIONS_MAX);
	if (v == ADMIT_REFUSE)
		return -1;
	if (v >= 0) {
		s = pend[n - 1 - (size_t)v];
		session_evict(s, memcmp(session_origin(s)->src, src,
		    ADMIT_KEY_LEN) == 0 ?
		    "too many unfinished handshakes from its address; the "
		    "oldest made way for a newer one" : "too many unfinished "
		    "handshakes; the oldest made way for a newer one");
	}
	return 0;
}

static void
accept_calls(struct app *a, int lfd)
{
	struct sockaddr_storage ss;
	char ip[INET6_ADDRSTRLEN] = "?", addr[80];
	struct session_origin o = { 0 };
	socklen_t sl;
	int fd, port = 0, k;

	o.addr = addr;
	/* Bounded per loop turn, so a flood of connections can not keep
	 * the loop from serving the sessions it has. */
	for (k = 0; k < ACCEPT_BURST; k++) {
		sl = sizeof(ss);
		fd = accept4(lfd, (struct sockaddr *)&ss, &sl,
		    SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd == -1)
			return; /* EAGAIN, or a transient error: poll again */
		if (ss.ss_family == AF_INET6) {
			inet_ntop(AF_INET6,
			    &((struct sockaddr_in6 *)&ss)->sin6_addr, ip,
			    sizeof(ip));
			port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
		} else if (ss.ss_family == AF_INET) {
			inet_ntop(AF_INET, &((struct sockaddr_in *)&ss)->sin_addr,
			    ip, sizeof(ip));
			port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
		}
		snprintf(addr, sizeof(addr), "%s %d", ip, port);
		admit_key((const struct sockaddr *)&ss, o.src);
		if (make_room(a, o.src) == -1) {
			/* Every slot holds a caller past the handshake. */
			close(fd);
			continue;
		}
		(void)add_session(a, fd, &o);
	}
}

/*
 * Two peers that call each other at the same moment end up with two
 * sessions.  Both sides keep the one placed by the lower user id and end
 * the other, so they agree without talking about it.
 */
/* The user id of whoever placed the call that s is. */
static const char *
caller(const struct app *a, const struct session *s)
{
	return session_origin(s)->dialer ? a->userid : session_peer(s)->userid;
}

/* Is o the other call of such a pair: the same peer, the other way? */
static int
twin(const struct session *s, const struct session *o)
{
	enum sess_state st = session_state(o);

	return o != s &&
	    session_origin(o)->dialer != session_origin(s)->dialer &&
	    st != SS_DEAD && st != SS_CLOSING && st != SS_HANDSHAKE &&
	    strcasecmp(session_peer(o)->userid, session_peer(s)->userid) == 0;
}

static void
dedupe(struct app *a, struct session *s)
{
	struct session *o, *drop;

	for (o = a->sessions; o; o = session_next(o)) {
		if (!twin(s, o))
			continue;
		drop = strcasecmp(caller(a, s), caller(a, o)) < 0 ? o : s;
		tell(a, EV_DUPLICATE, "{s:i,s:i}", "kept",
		    session_id(drop == s ? o : s), "dropped", session_id(drop));
		session_close(drop, "duplicate session (both called at once)");
		if (drop == s)
			return;
	}
}

/* Free the dead sessions; a one-shot ends with its session. */
static void
reap(struct app *a)
{
	struct session *s, *next, *prev = NULL;

	for (s = a->sessions; s; s = next) {
		next = session_next(s);
		if (session_state(s) != SS_DEAD) {
			prev = s;
			continue;
		}
		if (prev)
			session_set_next(prev, next);
		else
			a->sessions = next;
		if (a->mode != APP_RUN && session_id(s) == a->os_sid)
			a->quit = 1;
		session_free(s);
	}
	/* One-shot: nothing left to wait for (a retry may have failed). */
	if (a->mode != APP_RUN && a->sessions == NULL)
		a->quit = 1;
}

/* A line of input is the face's to read: a command, typed or JSON. */
static void
take_line(struct app *a, char *line)
{
	if (a->face.line != NULL)
		a->face.line(a->face.arg, line);
}

static void
read_stdin(struct app *a)
{
	ssize_t r;
	char *nl;
	size_t used;

	r = read(0, a->inbuf + a->inlen, sizeof(a->inbuf) - 1 - a->inlen);
	if (r == -1 && (errno == EINTR || errno == EAGAIN))
		return;
	if (r <= 0) {
		a->stdin_open = 0;
		a->quit = 1; /* end of input is the end of the session */
		return;
	}
	a->inlen += (size_t)r;
	a->inbuf[a->inlen] = '\0';
	while ((nl = memchr(a->inbuf, '\n', a->inlen)) != NULL) {
		*nl = '\0';
		used = (size_t)(nl - a->inbuf) + 1;
		take_line(a, a->inbuf);
		memmove(a->inbuf, a->inbuf + used, a->inlen - used);
		a->inlen -= used;
		a->inbuf[a->inlen] = '\0';
	}
	if (a->inlen == sizeof(a->inbuf) - 1) {
		report(a, EV_ERROR, "input line too long, dropped");
		a->inlen = 0;
	}
}

/* A person at a terminal: keys go to the line editor. */
static void
read_terminal(struct app *a)
{
	char *line;

	if (edit_read(a->ed, &line) == -1) {
		a->stdin_open = 0;
		a->quit = 1; /* ^D, or the terminal is gone */
		return;
	}
	if (line != NULL) {
		take_line(a, line);
		free(line);
	}
}

/* The signals that came: 1 if one of them asks us to quit. */
static int
took_signals(struct app *a)
{
	int quit = 0;
	char c;

	while (read(a->sigfd[0], &c, 1) == 1) {
		if (c == SIGWINCH)
			edit_resize(a->ed);
		else
			quit = 1;
	}
	return quit;
}

void
app_defaults(struct app *a)
{
	size_t i;

	for (i = 0; i < APP_LISTEN_MAX; i++)
		a->lfd[i] = -1;
	a->sigfd[0] = a->sigfd[1] = -1;
	a->nlfd = -1;
}

/*
 * Ask the kernel to tell us when an interface address comes or goes, so
 * a new address is registered at once rather than at the next periodic
 * check.  Best effort: without it the IFCHECK_SECS poll still works.
 */
static void
open_addr_watch(struct app *a)
{
	struct sockaddr_nl snl;
	int fd;

	fd = socket(AF_NETLINK, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC,
	    NETLINK_ROUTE);
	if (fd == -1)
		return;
	memset(&snl, 0, sizeof(snl));
	snl.nl_family = AF_NETLINK;
	snl.nl_groups = RTMGRP_IPV4_IFADDR | RTMGRP_IPV6_IFADDR;
	if (bind(fd, (struct sockaddr *)&snl, sizeof(snl)) == -1) {
		close(fd);
		return;
	}
	a->nlfd = fd;
}

/* Drain the notifications; the addresses are read afresh anyway. */
static void
addr_watch_read(struct app *a)
{
	char buf[8192];

	while (recv(a->nlfd, buf, sizeof(buf), 0) > 0)
		;
	a->if_next = 0; /* re-check the interfaces in this loop turn */
}

/*
 * The certificate in use changed (or is loaded first): what it says, and
 * when it is renewed.
 */
static int
cert_in_use(struct app *a)
{
	struct ca_cert_info info;

	if (pt_own_info(a->pt, &info) == -1)
		return -1;
	snprintf(a->cert_serial, sizeof(a->cert_serial), "%s", info.serial);
	snprintf(a->name, sizeof(a->name), "%s", info.name);
	a->cert_not_before = info.not_before;
	a->cert_not_after = info.not_after;
	a->renew_next = renew_due(info.not_before, info.not_after);
	a->renew_failures = 0;
	a->renew_error[0] = '\0';
	a->expiry_next = 0; /* look again at what to warn of */
	return 0;
}

int
app_init(struct app *a)
{
	char err[300];
	struct irp_err ierr;
	struct sigaction sa;
	int lk;

	if (ks_list_load(a->ks.allow, &a->allow) == -1 ||
	    ks_list_load(a->ks.deny, &a->deny) == -1) {
		fprintf(stderr, "dchat: cannot read the allow/deny lists\n");
		return -1;
	}
	if (a->ks.server[0] == '\0') {
		fprintf(stderr, "dchat: %s has no registry; run dchat init\n",
		    a->ks.home);
		return -1;
	}
	if ((a->irp = registry_open(&a->ks, 1, &ierr)) == NULL) {
		fprintf(stderr, "dchat: %s\n", ierr.msg);
		return -1;
	}
	fetch_missing_crl(a);
	/* Key and certificate as one, even while a renewal replaces them;
	 * the stamp says which files these were (check_identity). */
	lk = ks_lock(&a->ks, 0);
	ks_identity_stamp(&a->ks, &a->id_stamp);
	a->pt = pt_new(&a->ks, &a->allow, &a->deny, a->contact_requests, err,
	    sizeof(err));
	ks_unlock(lk);
	if (a->pt == NULL || cert_in_use(a) == -1) {
		fprintf(stderr, "dchat: %s\n", a->pt ? "cannot read our "
		    "certificate" : err);
		return -1;
	}
	pt_set_ocsp(a->pt, ocsp_fetch, a);
	if ((a->vouch = vouch_new()) == NULL) {
		fprintf(stderr, "dchat: out of memory\n");
		return -1;
	}
	pt_set_vouch(a->pt, vouch_check, vouch_gate_ca, a);
	a->env.event = on_session_event;
	a->env.arg = a;
	a->env.mail_admit = mail_admit;
	a->env.userid = a->userid;
	a->env.name = a->name;
	a->env.downloads = a->ks.downloads;
	/* Mail handed over directly lands in the Maildir's tmp (mail.h). */
	snprintf(a->mail_tmp, sizeof(a->mail_tmp), "%s/Maildir/tmp",
	    a->ks.home);
	if (mail_dirs(&a->ks) == 0)
		a->env.mail_tmp = a->mail_tmp;
	if (a->ttl <= 0)
		a->ttl = 300;
	if (pipe2(a->sigfd, O_CLOEXEC | O_NONBLOCK) == -1)
		return -1;
	sig_app = a;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sa.sa_handler = SIG_IGN;
	sigaction(SIGPIPE, &sa, NULL);
	if (a->mode == APP_RUN && open_listeners(a) == -1)
		return -1;
	if (a->mode == APP_RUN && a->nadv == 0)
		open_addr_watch(a);
	/* A person at a terminal gets line editing; pipes get lines. */
	if (a->mode == APP_RUN && !a->json && isatty(0) && isatty(1)) {
		if ((a->ed = edit_new(err, sizeof(err))) == NULL)
			fprintf(stderr, "dchat: no line editing: %s\n", err);
		else {
			sa.sa_handler = on_signal;
			sigaction(SIGWINCH, &sa, NULL);
		}
	}
	return 0;
}

/*
 * Take key and certificate from disk for all that is new: the
 * listener's and the dialer's TLS, the registry client and the
 * registration.  Sessions under way keep the certificate they began
 * with.  source: "renewal" (ours) or "disk" (another program replaced
 * them: dchat renew, restore).  0; or -1 with err, the old ones stay in
 * use.
 */
static int
use_identity(struct app *a, const char *source, char *err, size_t errlen)
{
	char prev[sizeof(a->cert_serial)], na[IRP_TIME_LEN], ra[IRP_TIME_LEN];
	int lk, rc;

	lk = ks_lock(&a->ks, 0);
	/* What is loaded now counts as seen, whatever comes of it: files
	 * that can not be used are said once, not at every look. */
	ks_identity_stamp(&a->ks, &a->id_stamp);
	rc = pt_reload_identity(a->pt, a->userid, err, errlen);
	ks_unlock(lk);
	if (rc == -1)
		return -1;
	snprintf(prev, sizeof(prev), "%s", a->cert_serial);
	if (cert_in_use(a) == -1) {
		snprintf(err, errlen, "cannot read the new certificate");
		return -1;
	}
	if (strcmp(prev, a->cert_serial) == 0)
		return 0; /* the same certificate, written again */
	/* The kept connection to the registry presents the old one. */
	if (irp_client_reconnect(a->irp) == -1)
		report(a, EV_ERROR, "out of memory");
	irp_time(a->cert_not_after, na);
	irp_time(a->renew_next, ra);
	tell(a, EV_RENEWED, "{s:s,s:s,s:s,s:s,s:s}", "source", source,
	    "serial", a->cert_serial, "previous_serial", prev, "not_after", na,
	    "next_renewal", ra);
	/* Registered as the new certificate, so that a lookup finds it. */
	do_register(a, 1);
	return 0;
}

/* Renewal failed: say why, and when it is tried again (expiry.h). */
static int
renew_failed(struct app *a, const char *why)
{
	char at[IRP_TIME_LEN];
	time_t wait;

	if (a->renew_failures < 100)
		a->renew_failures++;
	wait = renew_backoff(a->renew_failures, arc4random());
	a->renew_next = time(NULL) + wait;
	snprintf(a->renew_error, sizeof(a->renew_error), "%s", why);
	irp_time(a->renew_next, at);
	tell(a, EV_RENEW_FAILED, "{s:s,s:i,s:I,s:s}", "reason", why,
	    "failures", a->renew_failures, "retry_in", (json_int_t)wait,
	    "next_attempt", at);
	return -1;
}

/*
 * Renew now: a new key and certificate from the registry, stored as one
 * (the old pair stays on disk until the new one is there in full), then
 * used for all that is new.  0, or -1 with the next attempt scheduled.
 */
static int
renew(struct app *a)
{
	struct identity id;
	struct irp_err ierr;
	char err[400], officer[65];

	if (identity_request(a->irp, a->userid, NULL, &id, err,
	    sizeof(err)) == -1)
		return renew_failed(a, err);
	/*
	 * The old certificate's addresses go now, while key and certificate
	 * on disk, and so what the registry client presents, are still the
	 * old ones; left, they would be listed until their TTL ran out.
	 */
	if (a->registered) {
		if (irp_addresses_delete(a->irp, NULL, &ierr) == -1)
			report(a, EV_REGISTRY_ERROR, ierr.msg);
		a->registered = 0;
	}
	if (identity_store(&a->ks, &id, err, sizeof(err)) == -1) {
		identity_clear(&id);
		do_register(a, 1); /* the old certificate is still ours */
		return renew_failed(a, err);
	}
	if (use_identity(a, "renewal", err, sizeof(err)) == -1) {
		identity_clear(&id);
		return renew_failed(a, err);
	}
	/* With the new certificate now: the deposit is for it. */
	if (identity_escrow(a->irp, &id, officer, err, sizeof(err)) == -1)
		report(a, EV_REGISTRY_ERROR, err);
	identity_clear(&id);
	return 0;
}

/*
 * Another program may have replaced key and certificate (dchat renew
 * while dchat run runs): use them, as if renewed here.
 */
static void
check_identity(struct app *a, time_t now)
{
	struct ks_stamp st;
	char err[300], msg[400];

	a->id_checked = now;
	ks_identity_stamp(&a->ks, &st);
	if (!ks_stamp_changed(&st, &a->id_stamp))
		return;
	if (use_identity(a, "disk", err, sizeof(err)) == -1) {
		snprintf(msg, sizeof(msg), "key.pem or cert.pem changed but "
		    "can not be used (%s); still using certificate %s", err,
		    a->cert_serial);
		report(a, EV_ERROR, msg);
	}
}

/* Peers refuse an expired certificate: say so while there is time. */
static void
warn_expiry(struct app *a, time_t now)
{
	time_t left = a->cert_not_after - now;
	char msg[512];

	if (!expiry_due(now, renew_due(a->cert_not_before, a->cert_not_after),
	    a->cert_not_after, &a->expiry_next))
		return;
	/* Only once the renewal is overdue: it failed so far. */
	if (left <= 0)
		snprintf(msg, sizeof(msg), "your certificate has expired, and "
		    "the registry renews no expired certificate: ask the "
		    "administrator for a new enrolment code (dchat init "
		    "--force)");
	else
		snprintf(msg, sizeof(msg), "your certificate expires soon and "
		    "is not renewed yet%s%s%s; dchat keeps trying, or run "
		    "'dchat renew'", a->renew_error[0] ? " (" : "",
		    a->renew_error, a->renew_error[0] ? ")" : "");
	tell(a, EV_CERT_EXPIRING, "{s:I,s:s}", "days",
	    (json_int_t)(left > 0 ? left / 86400 : 0), "message", msg);
}

/* dchat run: renewed if due, registered, and ready. */
static void
run_start(struct app *a)
{
	char na[IRP_TIME_LEN], ra[IRP_TIME_LEN];
	json_t *l = json_array();
	size_t i;

	/* Renewed first when due, so that it is the new certificate that
	 * is registered (a renewal registers it). */
	if (time(NULL) >= a->renew_next)
		(void)renew(a);
	if (!a->registered)
		do_register(a, 1);
	a->if_next = time(NULL) + IFCHECK_SECS;
	a->id_checked = time(NULL);
	for (i = 0; i < a->nlisten; i++)
		json_array_append_new(l, json_string(a->listen[i].text));
	irp_time(a->cert_not_after, na);
	irp_time(renew_due(a->cert_not_before, a->cert_not_after), ra);
	tell(a, EV_READY, "{s:o,s:s,s:s,s:s,s:s}", "listen", l, "userid",
	    a->userid, "serial", a->cert_serial, "not_after", na, "renew_at",
	    ra);
	warn_expiry(a, time(NULL));
}

/* dchat send and sendfile: the call; -1 when none could be placed. */
static int
one_shot_start(struct app *a)
{
	a->exit_code = 1; /* until the peer confirms */
	a->os_sid = app_call(a, a->target, 0);
	if (a->os_sid == -1 && app_session(a, a->os_sid) == NULL) {
		/* Offline or unreachable, as against refused in TLS. */
		a->os_unreached = 1;
		return -1;
	}
	return 0;
}

/* One turn of the loop: what poll() watches, and for whom. */
#define TURN_SESSIONS (APP_SESSIONS_MAX + 8)

struct turn {
	struct pollfd pfd[APP_LISTEN_MAX + 3 + TURN_SESSIONS];
	struct session *sess[TURN_SESSIONS];
	size_t n;  /* pfd in use */
	size_t nl; /* pfd[1 .. nl-1]: standard input and netlink */
	size_t ns; /* the last ns of pfd: sess[] */
	int timeout;
	int quitting;
	time_t quit_deadline;
	time_t last_tick;
};

static void
watch(struct turn *t, int fd, short events)
{
	t->pfd[t->n].fd = fd;
	t->pfd[t->n].events = events;
	t->pfd[t->n++].revents = 0;
}

/* Fill t: signals, input, netlink, listeners, then every session. */
static void
turn_setup(struct app *a, struct turn *t)
{
	struct session *s;
	size_t i;

	t->n = t->ns = 0;
	t->timeout = 1000;
	watch(t, a->sigfd[0], POLLIN);
	if (a->mode == APP_RUN && a->stdin_open && !t->quitting)
		watch(t, 0, POLLIN);
	if (a->nlfd != -1 && !t->quitting)
		watch(t, a->nlfd, POLLIN);
	if (a->watch != NULL && !t->quitting)
		watch(t, watch_fd(a->watch), POLLIN);
	t->nl = t->n;
	for (i = 0; i < a->nlisten && !t->quitting; i++)
		watch(t, a->lfd[i], POLLIN);
	for (s = a->sessions; s && t->ns < TURN_SESSIONS; s = session_next(s)) {
		session_pollfd(s, &t->pfd[t->n++]);
		t->sess[t->ns++] = s;
		if (session_has_pending(s))
			t->timeout = 0;
	}
}

/* Say bye everywhere, and give the byes 2 s to leave. */
static void
start_quitting(struct app *a, struct turn *t, time_t now)
{
	struct session *s;

	t->quitting = 1;
	t->quit_deadline = now + 2;
	for (s = a->sessions; s; s = session_next(s))
		session_close(s, "quit");
}

/* A one-shot that waited too long for its confirmation: 1, quitting. */
static int
one_shot_expired(struct app *a, time_t now)
{
	if (a->mode == APP_RUN || a->os_deadline == 0 || now < a->os_deadline)
		return 0;
	report(a, EV_ERROR, "no confirmation from the peer in time");
	a->exit_code = 1;
	a->quit = 1;
	return 1;
}

/* Standard input and the netlink socket. */
static void
serve_inputs(struct app *a, struct turn *t)
{
	size_t i;

	for (i = 1; i < t->nl; i++) {
		if (t->pfd[i].revents == 0)
			continue;
		if (t->pfd[i].fd == 0 && a->ed)
			read_terminal(a);
		else if (t->pfd[i].fd == 0)
			read_stdin(a);
		else if (t->pfd[i].fd == a->nlfd)
			addr_watch_read(a);
		else if (a->watch != NULL && t->pfd[i].fd == watch_fd(a->watch) &&
		    (watch_take(a->watch) & WATCH_MAIL))
			a->mail_next = 0; /* mail waits: fetch it now */
	}
}

static void
serve_listeners(struct app *a, struct turn *t)
{
	size_t i;

	for (i = t->nl; i < t->n - t->ns; i++)
		if (t->pfd[i].revents & POLLIN)
			accept_calls(a, t->pfd[i].fd);
}

/* Each session's I/O, and the once-a-second deadlines. */
static void
serve_sessions(struct app *a, struct turn *t)
{
	struct pollfd *p;
	struct session *s;
	time_t now;
	size_t i;

	for (i = 0; i < t->ns; i++) {
		p = &t->pfd[t->n - t->ns + i];
		s = t->sess[i];
		if (p->revents || session_has_pending(s))
			session_io(s, p->revents);
		if (session_take_identified(s))
			dedupe(a, s);
	}
	now = time(NULL);
	if (now != t->last_tick) {
		t->last_tick = now;
		for (s = a->sessions; s; s = session_next(s))
			session_tick(s, now);
	}
}

/*
 * How much mail one sender may hand over directly: MAIL_DIRECT_MAX
 * messages in MAIL_DIRECT_WINDOW seconds (each up to MSG_MAIL_SIZE_MAX,
 * checked and kept here).  Beyond, the sender leaves it at the registry,
 * whose quotas per sender and per recipient hold.  Senders are told
 * apart by their whole user id (no hashing); when the table is full the
 * oldest window makes room.
 */
#define MAIL_DIRECT_MAX 20
#define MAIL_DIRECT_WINDOW 600

static int
mail_admit(void *arg, const char *userid)
{
	struct app *a = arg;
	struct app_mail_rate *r, *oldest = &a->mail_rate[0];
	time_t now = time(NULL);
	size_t i;

	for (i = 0; i < sizeof(a->mail_rate) / sizeof(a->mail_rate[0]); i++) {
		r = &a->mail_rate[i];
		if (strcmp(r->userid, userid) == 0)
			break;
		if (r->start < oldest->start)
			oldest = r;
	}
	if (i == sizeof(a->mail_rate) / sizeof(a->mail_rate[0])) {
		r = oldest;
		snprintf(r->userid, sizeof(r->userid), "%s", userid);
		r->start = now;
		r->n = 0;
	}
	if (now - r->start >= MAIL_DIRECT_WINDOW) {
		r->start = now;
		r->n = 0;
	}
	if (r->n >= MAIL_DIRECT_MAX)
		return -1;
	r->n++;
	return 0;
}

/* A file that waited at the registry, into the downloads: its path. */
static int
save_later(struct app *a, const char *name, const unsigned char *data,
    size_t len, char *path, size_t pathlen)
{
	int fd = -1, i;
	size_t off;
	ssize_t w;

	if (mkdir(a->ks.downloads, 0700) == -1 && errno != EEXIST)
		return -1;
	/* The first free one of name, name.1, name.2, ... */
	for (i = 0; i < 1000 && fd == -1; i++) {
		if (i == 0)
			snprintf(path, pathlen, "%s/%s", a->ks.downloads, name);
		else
			snprintf(path, pathlen, "%s/%s.%d", a->ks.downloads,
			    name, i);
		fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
		if (fd == -1 && errno != EEXIST)
			return -1;
	}
	for (off = 0; fd != -1 && off < len; off += (size_t)w)
		if ((w = write(fd, data + off, len - off)) <= 0) {
			close(fd);
			unlink(path);
			return -1;
		}
	return fd == -1 || close(fd) == -1 ? -1 : 0;
}

/* A chat message or a file that waited: shown as delivered later. */
static void
later_seen(struct app *a, const struct mail_entry *e)
{
	unsigned char *data = NULL, md[32];
	char *msg = NULL, *text = NULL, name[128], path[KS_PATH_MAX + 160],
				       err[300], hex[65];
	size_t len, n;
	int i;

	if (mail_read(&a->ks, e, &msg, &len, err, sizeof(err)) == -1) {
		report(a, EV_ERROR, err);
		return;
	}
	if (strcmp(e->kind, MAIL_KIND_CHAT) == 0 &&
	    mail_text_of(msg, len, &text, &n) == 0)
		tell(a, EV_MESSAGE_LATER, "{s:s,s:s,s:s}", "from", e->from,
		    "text", text, "date", e->date);
	else if (strcmp(e->kind, MAIL_KIND_FILE) == 0 &&
	    mail_attachment_of(msg, len, name, sizeof(name), &data, &n) == 0 &&
	    save_later(a, name, data, n, path, sizeof(path)) == 0) {
		EVP_Digest(data, n, md, NULL, EVP_sha256(), NULL);
		for (i = 0; i < 32; i++)
			snprintf(hex + 2 * i, 3, "%02x", md[i]);
		tell(a, EV_FILE_LATER, "{s:s,s:s,s:s,s:I,s:s,s:s}", "from",
		    e->from, "name", name, "path", path, "size", (json_int_t)n,
		    "sha256", hex, "date", e->date);
	} else
		report(a, EV_ERROR, "a message that waited at the registry "
		    "could not be read; 'dchat inbox' lists it");
	free(data);
	free(text);
	free(msg);
}

static void
mail_seen(void *arg, const struct mail_entry *e)
{
	struct app *a = arg;

	if (e->rejected[0] != '\0')
		tell(a, EV_MAIL_REJECTED, "{s:s,s:s}", "from", e->from,
		    "reason", e->rejected);
	else if (e->kind[0] != '\0')
		later_seen(a, e);
	else
		tell(a, EV_MAIL, "{s:s,s:s,s:s,s:s}", "from", e->from,
		    "subject", e->subject, "date", e->date, "message_id",
		    e->msgid);
}

/*
 * Mail waiting at the registry: fetched, checked and kept in the Maildir
 * (mail.h), every MAIL_POLL_SECS while we are registered.
 */
static void
fetch_mail(struct app *a, time_t now)
{
	struct mail_tally t;
	char err[300];

	a->mail_next = now + MAIL_POLL_SECS;
	if (mail_fetch(a->irp, &a->ks, &t, mail_seen, a, err, sizeof(err)) ==
	    -1)
		report(a, EV_REGISTRY_ERROR, err);
}

/*
 * Once registered, listen for events at the registry (watch.h); say once
 * when that stops working, and when it works again.
 */
static void
keep_watching(struct app *a)
{
	char err[300], trouble[300];

	if (a->watch == NULL &&
	    (a->watch = watch_start(&a->ks, err, sizeof(err))) == NULL) {
		report(a, EV_ERROR, err);
		return;
	}
	watch_trouble(a->watch, trouble, sizeof(trouble));
	if (strcmp(trouble, a->watch_said) == 0)
		return;
	if (trouble[0] != '\0') {
		snprintf(err, sizeof(err), "not hearing of new mail at once "
		    "(asking every %d s): %s", MAIL_POLL_SECS, trouble);
		report(a, EV_REGISTRY_ERROR, err);
	}
	snprintf(a->watch_said, sizeof(a->watch_said), "%s", trouble);
}

/* What is due besides the sessions: certificate, registration, CRL. */
static void
run_due(struct app *a, time_t now)
{
	if (a->mode == APP_RUN) {
		if (now != a->id_checked)
			check_identity(a, now);
		if (now >= a->renew_next)
			(void)renew(a);
		if (now >= a->reg_next)
			do_register(a, 1);
		if (now >= a->if_next) {
			a->if_next = now + IFCHECK_SECS;
			do_register(a, 0); /* only if the addresses changed */
		}
		if (a->registered && now >= a->mail_next)
			fetch_mail(a, now);
		if (a->registered)
			keep_watching(a);
	}
	if (now >= a->crl_next)
		refresh_crl(a);
	if (a->mode == APP_RUN && now >= a->expiry_next)
		warn_expiry(a, now);
}

/*
 * One turn: poll, then serve what is ready.  0 to go on, -1 to leave
 * the loop at once (poll failed, or a second signal while quitting).
 */
static int
turn(struct app *a, struct turn *t)
{
	turn_setup(a, t);
	/* Output since the last turn went above the prompt: the prompt
	 * and what was being typed come back below it. */
	if (a->stdin_open && !t->quitting)
		edit_show(a->ed);
	if (poll(t->pfd, t->n, t->timeout) == -1 && errno != EINTR)
		return -1;
	if ((t->pfd[0].revents & POLLIN) && took_signals(a)) {
		if (t->quitting)
			return -1; /* a second signal: go now */
		a->quit = 1;
	}
	serve_inputs(a, t);
	if (!t->quitting)
		serve_listeners(a, t);
	serve_sessions(a, t);
	reap(a);
	if (!t->quitting)
		run_due(a, time(NULL));
	return 0;
}

/* Our addresses go when we do. */
static void
deregister(struct app *a)
{
	struct irp_err err;

	if (!a->registered)
		return;
	if (irp_addresses_delete(a->irp, NULL, &err) == -1)
		report(a, EV_REGISTRY_ERROR, err.msg);
	else
		a->registered = 0;
}

int
app_run(struct app *a)
{
	struct turn t;
	time_t now;

	memset(&t, 0, sizeof(t));
	refresh_crl(a);
	if (a->mode == APP_RUN)
		run_start(a);
	else if (one_shot_start(a) == -1)
		return 1;
	while (!t.quitting || a->sessions) {
		now = time(NULL);
		if (a->quit && !t.quitting)
			start_quitting(a, &t, now);
		if (t.quitting && now >= t.quit_deadline)
			break;
		if (!t.quitting && one_shot_expired(a, now))
			continue;
		if (turn(a, &t) == -1)
			break;
	}
	watch_stop(a->watch);
	a->watch = NULL;
	deregister(a);
	return a->exit_code;
}

void
app_free(struct app *a)
{
	struct session *s;
	size_t i;

	while ((s = a->sessions) != NULL) {
		a->sessions = session_next(s);
		session_free(s);
	}
	for (i = 0; i < APP_LISTEN_MAX; i++)
		if (a->lfd[i] != -1)
			close(a->lfd[i]);
	if (a->sigfd[0] != -1) {
		close(a->sigfd[0]);
		close(a->sigfd[1]);
	}
	if (a->nlfd != -1)
		close(a->nlfd);
	sig_app = NULL;
	edit_free(a->ed);
	a->ed = NULL;
	pt_free(a->pt);
	watch_stop(a->watch);
	a->watch = NULL;
	vouch_free(a->vouch);
	irp_client_free(a->irp);
}

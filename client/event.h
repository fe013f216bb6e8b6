/*
 * event.h - what dchat reports, one kind per event.
 *
 * An event is a JSON object whose "event" member names its kind; those
 * names are part of the --json interface (dchat(1)).  The kind travels
 * beside the object, from the session or the loop that made it to the
 * face that shows it, so nobody decides anything by comparing names.
 */
#ifndef EVENT_H
#define EVENT_H

#include <stdarg.h>

#include <jansson.h>

enum ev_kind {
	EV_READY,
	EV_REGISTERED,
	EV_REFRESHED,
	EV_RENEWED,
	EV_RENEW_FAILED,
	EV_CERT_EXPIRING,
	EV_CALLING,
	EV_CALL_RETRY,
	EV_CALL_FAILED,
	EV_REFUSED,
	EV_INCOMING,
	EV_CONNECTED,
	EV_DUPLICATE,
	EV_CLOSED,
	EV_MESSAGE,
	EV_SENT,
	EV_ACK,
	EV_PONG,
	EV_CONTACT_REQUEST,
	EV_FILE_OFFER,
	EV_FILE_OFFERED,
	EV_FILE_ACCEPTED,
	EV_FILE_REJECTED,
	EV_FILE_RECEIVED,
	EV_FILE_DELIVERED,
	EV_FILE_FAILED,
	EV_SESSIONS,
	EV_LISTS,
	EV_REQUESTS,
	EV_HELP,
	EV_ERROR,
	EV_REGISTRY_ERROR,
	EV_MAIL,	  /* mail fetched, checked and kept */
	EV_MAIL_REJECTED, /* mail fetched that failed a check */
	EV_MESSAGE_LATER, /* a chat message that waited at the registry */
	EV_FILE_LATER,	  /* a file that waited at the registry */
	EV_COUNT
};

/* The name of kind, as the "event" member carries it (static). */
const char *ev_name(enum ev_kind kind);

/*
 * A new event: {"event": the name of kind} followed by the members fmt
 * and ap pack as json_vpack_ex would (fmt "{}" for none; "o" steals, as
 * there).  The caller owns the result; NULL when out of memory or when
 * fmt does not fit the arguments.
 */
json_t *ev_vpack(enum ev_kind kind, const char *fmt, va_list ap);

#endif

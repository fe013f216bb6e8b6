/*
 * event.c - the names of the events (see event.h).
 */
#include "event.h"

static const char *const ev_names[EV_COUNT] = {
	[EV_READY] = "ready",
	[EV_REGISTERED] = "registered",
	[EV_REFRESHED] = "refreshed",
	[EV_RENEWED] = "renewed",
	[EV_RENEW_FAILED] = "renew_failed",
	[EV_CERT_EXPIRING] = "cert_expiring",
	[EV_CALLING] = "calling",
	[EV_CALL_RETRY] = "call_retry",
	[EV_CALL_FAILED] = "call_failed",
	[EV_REFUSED] = "refused",
	[EV_INCOMING] = "incoming",
	[EV_CONNECTED] = "connected",
	[EV_DUPLICATE] = "duplicate",
	[EV_CLOSED] = "closed",
	[EV_MESSAGE] = "message",
	[EV_SENT] = "sent",
	[EV_ACK] = "ack",
	[EV_PONG] = "pong",
	[EV_CONTACT_REQUEST] = "contact_request",
	[EV_FILE_OFFER] = "file_offer",
	[EV_FILE_OFFERED] = "file_offered",
	[EV_FILE_ACCEPTED] = "file_accepted",
	[EV_FILE_REJECTED] = "file_rejected",
	[EV_FILE_RECEIVED] = "file_received",
	[EV_FILE_DELIVERED] = "file_delivered",
	[EV_FILE_FAILED] = "file_failed",
	[EV_SESSIONS] = "sessions",
	[EV_LISTS] = "lists",
	[EV_REQUESTS] = "requests",
	[EV_HELP] = "help",
	[EV_ERROR] = "error",
	[EV_REGISTRY_ERROR] = "registry_error",
	[EV_MAIL] = "mail",
	[EV_MAIL_REJECTED] = "mail_rejected",
	[EV_MESSAGE_LATER] = "message_later",
	[EV_FILE_LATER] = "file_later",
};

const char *
ev_name(enum ev_kind kind)
{
	if ((unsigned int)kind >= EV_COUNT || ev_names[kind] == NULL)
		return "?";
	return ev_names[kind];
}

json_t *
ev_vpack(enum ev_kind kind, const char *fmt, va_list ap)
{
	json_t *ev, *members;

	members = json_vpack_ex(NULL, 0, fmt, ap);
	/* "event" first, as a reader of the --json lines sees it. */
	ev = json_pack("{s:s}", "event", ev_name(kind));
	if (ev == NULL || members == NULL ||
	    json_object_update(ev, members) == -1) {
		json_decref(ev);
		ev = NULL;
	}
	json_decref(members);
	return ev;
}

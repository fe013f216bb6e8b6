/*
 * log.c - levels, stderr or syslog, one line per event.
 *
 * The level and destination are set once at start-up, before any thread
 * exists; after that this module only reads them.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>

#include "log.h"

static enum log_level log_level = LOG_LEVEL_INFO;
static int log_syslog;

void
log_init(enum log_level level, int use_syslog)
{
	log_level = level;
	log_syslog = use_syslog;
	if (use_syslog)
		openlog("dird", LOG_PID | LOG_NDELAY, LOG_DAEMON);
}

void
log_detach(void)
{
	if (log_syslog)
		closelog();
}

void
log_reopen(void)
{
	if (log_syslog)
		openlog("dird", LOG_PID | LOG_NDELAY, LOG_DAEMON);
}

static void
vlog(int prio, const char *tag, const char *fmt, va_list ap, const char *err)
{
	char msg[2048], ts[32];
	struct timespec now;
	struct tm tm;

	vsnprintf(msg, sizeof(msg), fmt, ap);
	if (log_syslog) {
		if (err != NULL)
			syslog(prio, "%s: %s", msg, err);
		else
			syslog(prio, "%s", msg);
		return;
	}
	clock_gettime(CLOCK_REALTIME, &now);
	gmtime_r(&now.tv_sec, &tm);
	strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
	/* One fprintf per line: stdio locks the stream, lines stay whole. */
	if (err != NULL)
		fprintf(stderr, "%s.%03ldZ %s %s: %s\n", ts,
		    now.tv_nsec / 1000000, tag, msg, err);
	else
		fprintf(stderr, "%s.%03ldZ %s %s\n", ts, now.tv_nsec / 1000000,
		    tag, msg);
}

void
log_warn(const char *fmt, ...)
{
	char err[128];
	va_list ap;

	snprintf(err, sizeof(err), "%s", strerror(errno));
	va_start(ap, fmt);
	vlog(LOG_WARNING, "warn", fmt, ap, err);
	va_end(ap);
}

void
log_warnx(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog(LOG_WARNING, "warn", fmt, ap, NULL);
	va_end(ap);
}

void
log_info(const char *fmt, ...)
{
	va_list ap;

	if (log_level < LOG_LEVEL_INFO)
		return;
	va_start(ap, fmt);
	vlog(LOG_INFO, "info", fmt, ap, NULL);
	va_end(ap);
}

void
log_debug(const char *fmt, ...)
{
	va_list ap;

	if (log_level < LOG_LEVEL_DEBUG)
		return;
	va_start(ap, fmt);
	vlog(LOG_DEBUG, "debug", fmt, ap, NULL);
	va_end(ap);
}

void
fatalx(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog(LOG_CRIT, "fatal", fmt, ap, NULL);
	va_end(ap);
	exit(1);
}

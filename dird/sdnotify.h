/*
 * sdnotify.h - tell a service manager (systemd Type=notify) that dird is
 * ready or stopping, without linking libsystemd: one datagram to
 * $NOTIFY_SOCKET.  Does nothing when the variable is not set.
 */
#ifndef SDNOTIFY_H
#define SDNOTIFY_H

/* Send state ("READY=1", "STOPPING=1"); 0 sent or not asked, -1 error. */
int sdnotify(const char *state);

#endif

/*
 * hs.h - TLS handshakes and closes of the IRP listeners when they wait
 * with epoll: a stalled handshake is parked out of libmicrohttpd's loop
 * (which would spin on it), and a connection closed while its client
 * still sends is drained rather than reset.  See hs.c for why.
 *
 * One set per process: hs_init before the listeners start, hs_stop
 * before they stop, hs_free after.
 */
#ifndef DIRD_HS_H
#define DIRD_HS_H

struct MHD_Connection;

/*
 * Raise the open files limit as far as allowed (warning when it is
 * below max_conns), and start the table and its thread; a handshake
 * must end within conn_timeout seconds of its accept.  0, or -1 when
 * epoll can not be used: then the listeners poll().
 */
int hs_init(int conn_timeout, int max_conns);
/* 1 after hs_init succeeded (the listeners may use epoll), until hs_stop. */
int hs_running(void);
/*
 * A new connection of a TLS listener: its handshake reads through the
 * parking pull function.  Its descriptor, for hs_end, or -1 when it is
 * not tracked (no table, or no TLS session).
 */
int hs_start(struct MHD_Connection *conn);
/* conn, started on fd, is told closed (before its descriptor is). */
void hs_end(struct MHD_Connection *conn, int fd);
/* Every parked handshake back to libmicrohttpd, to fail; no more parking. */
void hs_stop(void);
/* After the listeners stopped. */
void hs_free(void);

#endif

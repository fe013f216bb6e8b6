/*
 * admit.h - room for callers while others hold connections open without
 * finishing the TLS handshake.
 *
 * Anyone can open a TCP connection to dchat; only the handshake shows
 * who is calling.  An incoming connection that has not finished it is
 * "pending".  Pending connections are limited per source and in all, and
 * a new connection never waits for room: when a limit is reached, the
 * oldest pending connection of the same source (else the oldest pending
 * one of all) makes way for it.  An attacker can then keep opening
 * connections for ever, but only ever holds a bounded share of the
 * session slots, and a caller whose handshake takes well under a second
 * gets through.  A session past the handshake (a peer with a valid
 * certificate) is never dropped to make room.
 */
#ifndef ADMIT_H
#define ADMIT_H

#include <stddef.h>
#include <sys/socket.h>

/* A source: family (4 or 6, 0 unknown), then the address bits that
 * count, the rest zero. */
#define ADMIT_KEY_LEN 17

/*
 * Pending connections from one source.  A TLS 1.3 handshake with a
 * person's certificate takes two round trips, well under a second, so
 * even several people behind one NAT address rarely have more than one
 * or two in flight at once; 8 leaves room for them while one address can
 * never hold more than 8 slots.
 */
#define ADMIT_PER_SOURCE 8

/*
 * Pending connections in all: a quarter of the session slots
 * (APP_SESSIONS_MAX, 256), so an attacker with many addresses holds at
 * most 64 while at least 192 stay for people with certificates, and each
 * pending connection's TLS state (some tens of KB) is bounded too.  A
 * caller is dropped only if 64 newer connections from other sources
 * arrive during its handshake.
 */
#define ADMIT_PENDING_MAX 64

#define ADMIT_NONE (-1)	  /* room enough: drop nothing */
#define ADMIT_REFUSE (-2) /* every slot holds a session past its handshake */

/*
 * The source of a connection from sa: an IPv4 address (also when it
 * arrives IPv4-mapped on a dual-stack socket), or the /64 of an IPv6
 * address, since one subscriber is usually given a whole /64 and can use
 * any address in it.
 */
void admit_key(const struct sockaddr *sa, unsigned char key[ADMIT_KEY_LEN]);

/*
 * A new connection from key arrives.  pending holds the sources of the n
 * pending connections, oldest first; nlive is the number of sessions now
 * (pending ones included), max the most there may be.  Returns the index
 * in pending of the connection to drop for it, ADMIT_NONE, or
 * ADMIT_REFUSE.
 */
int admit_pick(const unsigned char (*pending)[ADMIT_KEY_LEN], size_t n,
    const unsigned char key[ADMIT_KEY_LEN], size_t nlive, size_t max);

#endif

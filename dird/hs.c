/*
 * hs.c - TLS handshakes and closes of dird's IRP listeners when they
 * wait with epoll (hs.h).
 *
 * The listeners wait with epoll, not poll(): poll() hands the kernel
 * every descriptor of a pool thread at each wake-up and libmicrohttpd
 * then visits every connection, so idle connections slowed everyone
 * else (10,000 of them cut lookups to an eighth; tests/bench/run, the
 * memory rows).  epoll costs per event, not per connection.
 *
 * libmicrohttpd 0.9.75's epoll loop forgets that a connection is no
 * longer readable only when a read of a request finds nothing, never
 * when GnuTLS's own read in the middle of a handshake does: a client
 * that sends part of a ClientHello, or stalls before its Finished, kept
 * its pool thread spinning at 100% CPU until the idle timeout
 * (tests/integration/test_faults.py).  So GnuTLS reads through
 * hs_pull(): when a read in a handshake finds nothing, the connection is
 * suspended (out of libmicrohttpd's loop) and parked here, and one
 * thread (hs_main) waits for the parked descriptors with an epoll of its
 * own.  It resumes a connection when data arrives, or when its handshake
 * has had connection_timeout seconds since the accept: then the read
 * fails and libmicrohttpd closes the connection, as it did for a
 * handshake that took too long.  A handshake ends with the client's
 * Finished (hs_hook); from then on hs_pull() is a plain recv().
 *
 * The state is by descriptor, in one table for the process, not in the
 * http_server: GnuTLS gives its pull function nothing but the transport
 * pointer, which libmicrohttpd sets to the descriptor, and descriptors
 * are the process's (one dird has one set of listeners).  libmicrohttpd tells a connection closed
 * before it closes the descriptor, so a number is never reused under a
 * slot still in use.  Lock order: hs.lock, then libmicrohttpd's own.
 *
 * The same thread lingers over closed connections.  libmicrohttpd closes
 * a connection right after an error reply (431 for a header beyond the
 * connection's pool, say) while the client may still be sending, and
 * data unread at close(2) makes the kernel answer with a reset: the
 * client's send fails, or the reset overtakes the reply, and it never
 * reads why.  So a connection told closed whose client has not closed
 * its end (the rest of that header may still be on its way) is kept: a
 * duplicate of its descriptor, the sending side shut, and what the
 * client still sends is read and dropped until it closes, for at most
 * HS_LINGER_SECS and HS_LINGER_BYTES; HS_LINGER_MAX at once, beyond
 * which it is closed at once as before.
 */
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/types.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include <gnutls/gnutls.h>
#include <microhttpd.h>

#include "hs.h"
#include "log.h"
enum hs_state { HS_FREE, HS_SHAKING, HS_PARKED, HS_DONE };

struct hs_slot {
	struct MHD_Connection *conn;
	int64_t deadline;   /* CLOCK_MONOTONIC ms: the handshake's limit */
	uint32_t gen;	    /* per descriptor: events of an earlier use */
	uint8_t state;	    /* enum hs_state */
	uint8_t armed;	    /* in hs.epfd */
	int32_t prev, next; /* the parked list, by descriptor; -1 ends */
};

/*
 * An epoll event's data: gen << 32 | descriptor for a parked handshake
 * (gen has 31 bits), HS_LINGER | index for a lingering close, HS_WAKE
 * to wake hs_main (http_stop).
 */
#define HS_WAKE UINT64_MAX
#define HS_LINGER ((uint64_t)1 << 63)
#define HS_LINGER_MAX 256
#define HS_LINGER_SECS 2
#define HS_LINGER_BYTES (1 << 20)
/* The most descriptors the table covers (the open files limit). */
#define HS_SLOTS_MAX (1 << 22)

static struct {
	pthread_mutex_t lock;
	struct hs_slot *slot; /* by descriptor */
	int nslot;
	int epfd;
	int wakefd;
	int parked;	    /* head of the parked list, -1: none */
	int stopping;	    /* http_stop: no more parking */
	int64_t timeout_ms; /* connection_timeout */
	pthread_t thread;
	int running;
	struct {
		int fd; /* a duplicate; 0: a free entry */
		int64_t deadline;
		size_t read;
	} linger[HS_LINGER_MAX];
} hs = { .lock = PTHREAD_MUTEX_INITIALIZER,
	.epfd = -1,
	.wakefd = -1,
	.parked = -1 };

static int64_t
mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Out of the parked list and back to libmicrohttpd; under hs.lock. */
static void
hs_resume(int fd)
{
	struct hs_slot *s = &hs.slot[fd];

	if (s->prev >= 0)
		hs.slot[s->prev].next = s->next;
	else
		hs.parked = s->next;
	if (s->next >= 0)
		hs.slot[s->next].prev = s->prev;
	s->prev = s->next = -1;
	s->state = HS_SHAKING;
	MHD_resume_connection(s->conn);
}

/* Out of hs.epfd; under hs.lock. */
static void
hs_disarm(int fd)
{
	if (hs.slot[fd].armed) {
		(void)epoll_ctl(hs.epfd, EPOLL_CTL_DEL, fd, NULL);
		hs.slot[fd].armed = 0;
	}
}

/* GnuTLS's transport read for the connections of the IRP listeners. */
static ssize_t
hs_pull(gnutls_transport_ptr_t ptr, void *buf, size_t len)
{
	int fd = (int)(intptr_t)ptr;
	struct hs_slot *s = &hs.slot[fd];
	struct epoll_event ev;
	ssize_t n;
	int err = EAGAIN;

	if ((n = recv(fd, buf, len, 0)) >= 0 ||
	    (errno != EAGAIN && errno != EWOULDBLOCK))
		return n;
	/* Only this thread moves a connection it serves out of SHAKING. */
	if (s->state != HS_SHAKING)
		return -1;
	pthread_mutex_lock(&hs.lock);
	if (hs.stopping || mono_ms() >= s->deadline)
		err = ETIMEDOUT; /* the handshake fails: closed */
	else {
		ev.events = EPOLLIN | EPOLLONESHOT;
		ev.data.u64 = (uint64_t)s->gen << 32 | (uint32_t)fd;
		/* Should that fail, the connection stays in the loop and
		 * spins until the idle timeout, as it did. */
		if (epoll_ctl(hs.epfd, s->armed ? EPOLL_CTL_MOD : EPOLL_CTL_ADD,
			fd, &ev) == 0) {
			s->armed = 1;
			s->state = HS_PARKED;
			s->prev = -1;
			s->next = hs.parked;
			if (hs.parked >= 0)
				hs.slot[hs.parked].prev = fd;
			hs.parked = fd;
			MHD_suspend_connection(s->conn);
		}
	}
	pthread_mutex_unlock(&hs.lock);
	errno = err;
	return -1;
}

/* After the client's Finished: the handshake is over. */
static int
hs_hook(gnutls_session_t session, unsigned int htype, unsigned when,
    unsigned int incoming, const gnutls_datum_t *msg)
{
	int fd = gnutls_transport_get_int(session);

	(void)htype;
	(void)when;
	(void)msg;
	if (incoming && fd >= 0 && fd < hs.nslot) {
		pthread_mutex_lock(&hs.lock);
		hs_disarm(fd);
		hs.slot[fd].state = HS_DONE;
		pthread_mutex_unlock(&hs.lock);
	}
	return 0;
}

/* Keep the closing connection on fd to drain it; under hs.lock. */
static void
hs_linger(int fd)
{
	struct epoll_event ev = { .events = EPOLLIN };
	int i, unread = 0, dup;
	ssize_t n;
	char c;

	if (hs.stopping || ioctl(fd, FIONREAD, &unread) == -1)
		return;
	/* Nothing unread and the client's end closed (or failed): done. */
	if (unread == 0 &&
	    ((n = recv(fd, &c, 1, MSG_PEEK | MSG_DONTWAIT)) == 0 ||
		(n == -1 && errno != EAGAIN && errno != EWOULDBLOCK)))
		return;
	for (i = 0; i < HS_LINGER_MAX && hs.linger[i].fd != 0; i++)
		;
	if (i == HS_LINGER_MAX || (dup = fcntl(fd, F_DUPFD_CLOEXEC, 1)) == -1)
		return;
	ev.data.u64 = HS_LINGER | (uint64_t)i;
	if (epoll_ctl(hs.epfd, EPOLL_CTL_ADD, dup, &ev) == -1) {
		close(dup);
		return;
	}
	/* libmicrohttpd sends nothing more; its close(2) leaves this. */
	(void)shutdown(dup, SHUT_WR);
	hs.linger[i].fd = dup;
	hs.linger[i].deadline = mono_ms() + HS_LINGER_SECS * 1000;
	hs.linger[i].read = 0;
}

/* Read what arrived; closed at the client's end or out of bounds. */
static void
hs_linger_read(int i, int64_t now)
{
	static char sink[16384];
	ssize_t n = 0;

	while (hs.linger[i].read < HS_LINGER_BYTES &&
	    (n = recv(hs.linger[i].fd, sink, sizeof(sink), MSG_DONTWAIT)) > 0)
		hs.linger[i].read += (size_t)n;
	if (n == -1 && (errno == EAGAIN || errno == EWOULDBLOCK) &&
	    hs.linger[i].read < HS_LINGER_BYTES && now < hs.linger[i].deadline)
		return;
	(void)epoll_ctl(hs.epfd, EPOLL_CTL_DEL, hs.linger[i].fd, NULL);
	close(hs.linger[i].fd);
	hs.linger[i].fd = 0;
}

static void *
hs_main(void *arg)
{
	struct epoll_event ev[64];
	int64_t now, scanned = 0;
	uint32_t gen;
	int i, n, fd, next;

	(void)arg;
	for (;;) {
		n = epoll_wait(hs.epfd, ev, 64, 1000);
		pthread_mutex_lock(&hs.lock);
		if (hs.stopping) {
			pthread_mutex_unlock(&hs.lock);
			break;
		}
		now = mono_ms();
		for (i = 0; i < n; i++) {
			if (ev[i].data.u64 == HS_WAKE)
				continue;
			if (ev[i].data.u64 & HS_LINGER) {
				hs_linger_read((int)(ev[i].data.u64 &
						   (HS_LINGER_MAX - 1)),
				    now);
				continue;
			}
			fd = (int)(uint32_t)ev[i].data.u64;
			gen = (uint32_t)(ev[i].data.u64 >> 32);
			if (fd < hs.nslot && hs.slot[fd].gen == gen &&
			    hs.slot[fd].state == HS_PARKED)
				hs_resume(fd);
		}
		/* Handshakes and lingering out of time, once a second. */
		if (now - scanned >= 1000) {
			scanned = now;
			for (fd = hs.parked; fd >= 0; fd = next) {
				next = hs.slot[fd].next;
				if (hs.slot[fd].deadline <= now)
					hs_resume(fd);
			}
			for (i = 0; i < HS_LINGER_MAX; i++)
				if (hs.linger[i].fd != 0 &&
				    hs.linger[i].deadline <= now)
					hs_linger_read(i, now);
		}
		pthread_mutex_unlock(&hs.lock);
	}
	return NULL;
}

/* A connection is a descriptor: as many as allowed. */
int
hs_init(int conn_timeout, int max_conns)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.u64 = HS_WAKE };
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max &&
	    rl.rlim_cur < HS_SLOTS_MAX) {
		rl.rlim_cur = rl.rlim_max < HS_SLOTS_MAX ? rl.rlim_max :
							   HS_SLOTS_MAX;
		(void)setrlimit(RLIMIT_NOFILE, &rl);
	}
	if (getrlimit(RLIMIT_NOFILE, &rl) == -1)
		return -1;
	if (rl.rlim_cur < (rlim_t)max_conns + 256)
		log_warnx("max_connections is %d but the open files limit "
			  "%llu: connections beyond it are refused (raise "
			  "LimitNOFILE or ulimit -n)",
		    max_conns, (unsigned long long)rl.rlim_cur);
	if (MHD_is_feature_supported(MHD_FEATURE_EPOLL) != MHD_YES)
		return -1;
	hs.nslot = rl.rlim_cur < HS_SLOTS_MAX ? (int)rl.rlim_cur : HS_SLOTS_MAX;
	hs.timeout_ms = (int64_t)conn_timeout * 1000;
	hs.stopping = 0;
	hs.parked = -1;
	/* Pages of it are touched only for descriptors in use. */
	if ((hs.slot = calloc((size_t)hs.nslot, sizeof(*hs.slot))) == NULL ||
	    (hs.epfd = epoll_create1(EPOLL_CLOEXEC)) == -1 ||
	    (hs.wakefd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) == -1 ||
	    epoll_ctl(hs.epfd, EPOLL_CTL_ADD, hs.wakefd, &ev) == -1 ||
	    pthread_create(&hs.thread, NULL, hs_main, NULL) != 0) {
		log_warn("epoll for TLS handshakes");
		if (hs.wakefd != -1)
			close(hs.wakefd);
		if (hs.epfd != -1)
			close(hs.epfd);
		free(hs.slot);
		hs.slot = NULL;
		hs.epfd = hs.wakefd = -1;
		return -1;
	}
	hs.running = 1;
	return 0;
}

void
hs_stop(void)
{
	uint64_t one = 1;
	int i;

	if (!hs.running)
		return;
	pthread_mutex_lock(&hs.lock);
	hs.stopping = 1;
	while (hs.parked >= 0)
		hs_resume(hs.parked);
	pthread_mutex_unlock(&hs.lock);
	(void)write(hs.wakefd, &one, sizeof(one));
	pthread_join(hs.thread, NULL);
	hs.running = 0;
	for (i = 0; i < HS_LINGER_MAX; i++)
		if (hs.linger[i].fd != 0) {
			close(hs.linger[i].fd);
			hs.linger[i].fd = 0;
		}
}

void
hs_free(void)
{
	if (hs.epfd != -1)
		close(hs.epfd);
	if (hs.wakefd != -1)
		close(hs.wakefd);
	hs.epfd = hs.wakefd = -1;
	free(hs.slot);
	hs.slot = NULL;
	hs.nslot = 0;
}

int
hs_start(struct MHD_Connection *conn)
{
	const union MHD_ConnectionInfo *ci;
	gnutls_session_t session;
	struct hs_slot *s;
	int fd;

	if (hs.slot == NULL ||
	    (ci = MHD_get_connection_info(conn,
		 MHD_CONNECTION_INFO_GNUTLS_SESSION)) == NULL ||
	    ci->tls_session == NULL)
		return -1;
	session = (gnutls_session_t)ci->tls_session;
	if ((fd = gnutls_transport_get_int(session)) < 0 || fd >= hs.nslot)
		return -1;
	pthread_mutex_lock(&hs.lock);
	s = &hs.slot[fd];
	s->conn = conn;
	s->gen = (s->gen + 1) & 0x7fffffff;
	s->state = HS_SHAKING;
	s->armed = 0;
	s->prev = s->next = -1;
	s->deadline = mono_ms() + hs.timeout_ms;
	pthread_mutex_unlock(&hs.lock);
	gnutls_transport_set_pull_function(session, hs_pull);
	gnutls_handshake_set_hook_function(session, GNUTLS_HANDSHAKE_FINISHED,
	    GNUTLS_HOOK_POST, hs_hook);
	return fd;
}

int
hs_running(void)
{
	return hs.running;
}

void
hs_end(struct MHD_Connection *conn, int fd)
{
	struct hs_slot *s;

	if (fd < 0 || hs.slot == NULL)
		return;
	pthread_mutex_lock(&hs.lock);
	s = &hs.slot[fd];
	if (s->conn == conn) {
		/* Never parked: a suspended connection is not closed. */
		hs_disarm(fd);
		s->state = HS_FREE;
		s->conn = NULL;
		hs_linger(fd);
	}
	pthread_mutex_unlock(&hs.lock);
}

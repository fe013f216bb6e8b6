/*
 * conf.h - dird.conf: the configuration of a registry.
 *
 * An INI file in the data directory (read with libinih), section [dird].
 * Every key is described by one row of a table in conf.c (name, type,
 * bounds, default), so defaults, checks and documentation agree.  Command
 * line flags override the file.  dirctl reads the same file.
 */
#ifndef CONF_H
#define CONF_H

#include <stddef.h>

#define CONF_LISTEN_MAX 8
#define CONF_STR_MAX 512

struct conf {
	char domain[256];
	char dsn[CONF_STR_MAX];	    /* "" = the embedded cluster */
	char crl_url[CONF_STR_MAX]; /* written into every user certificate */
	char ocsp_url[CONF_STR_MAX]; /* authorityInfoAccess OCSP */
	char ca_url[CONF_STR_MAX];  /* authorityInfoAccess caIssuers */
	char listen[CONF_LISTEN_MAX][128];
	int nlisten;
	int cert_days;	 /* user certificate lifetime */
	int crl_days;	 /* CRL nextUpdate - thisUpdate */
	int code_ttl;	 /* default enrolment code lifetime, seconds */
	char enrol_policy[8]; /* auto or approve: users with none of their own */
	int request_ttl;      /* seconds a request stays pending at most */
	int request_poll;     /* Retry-After of a pending request, seconds */
	int ttl_min;	 /* address TTL clamp, seconds */
	int ttl_max;
	int ttl_default;
	int workers;	 /* HTTP worker threads = database connections */
	int max_conns;	 /* connections in total */
	int max_conns_ip; /* connections per source address */
	int conn_timeout; /* idle seconds before a connection is closed */
	int body_max;	 /* request body limit, bytes */
	int backup_max;	 /* PKCS#12 backup limit, bytes */
	int ocsp_validity; /* seconds from an OCSP answer to its nextUpdate */
	char metrics[8];   /* admin or public: who reads /metrics */
	char metrics_listen[128]; /* plain HTTP for /metrics, or "" */
	int auth_fail_max; /* failed attempts per window before 429 */
	int auth_fail_window; /* seconds */
	char cache[8];	 /* auto, local, shared or off */
	int cache_entries;
	/* Federation (fed.h). */
	char fed_dns[128];	       /* resolver ADDR[@PORT]; "" the system's */
	char fed_anchor[CONF_STR_MAX]; /* DNSSEC trust anchor file, or "" */
	int fed_timeout;	       /* seconds per question to a DNS or registry */
	int fed_cache_max;	       /* seconds an answer is kept at most */
	int fed_negative_ttl;	       /* seconds a failure is kept */
	int fed_stale_max; /* seconds an old answer stands in for one not had */
	int fed_rate;		       /* queries a user may cause per minute */
	int fed_inbound_rate;	       /* queries per other domain per minute */
	char fed_serve[8];	       /* rules or off: who may ask us */
	/* The inbox (schema 006): what waits for users who were away. */
	int inbox_msg_max;    /* bytes of one message */
	int inbox_user_mb;    /* MiB waiting for one recipient */
	int inbox_user_count; /* messages waiting for one recipient */
	int inbox_sender_mb;  /* MiB one sender has waiting, for all */
	int inbox_total_mb;   /* MiB waiting in all */
	int inbox_ttl;	      /* seconds a message waits at most */
	int bodies_mb;	       /* MiB of request bodies in memory, in all */
	/* Requests that wait for events (push.h). */
	int push_wait_max;     /* seconds one may wait at most */
	int push_waiters;      /* waiting at once, in all */
	int push_user_waiters; /* waiting at once, per user */
	/* Group commit of address writes (commit.h). */
	int commit_batch;     /* writes per commit at most; 1: each alone */
	int commit_window_us; /* how long a batch waits for more */
};

/* Fill c with the defaults. */
void conf_defaults(struct conf *c);

/*
 * Read path into c (which holds the defaults or earlier values).  On error
 * -1 and "file:line: message" in errbuf; c may be partly updated, so load
 * into a copy when an old configuration must survive (reload).
 */
int conf_load(const char *path, struct conf *c, char *errbuf, size_t errlen)
    __attribute__((warn_unused_result));

/* Set one key as the file would (for flags); same errors. */
int conf_set(struct conf *c, const char *key, const char *value, char *errbuf,
    size_t errlen) __attribute__((warn_unused_result));

/*
 * Take into dst the keys of src that a running dird may change (SIGHUP):
 * those read per request.  For every other key whose value differs,
 * fixed(key, arg) is called (may be NULL): it changes only at a restart.
 * Returns how many keys were taken.
 */
int conf_merge_live(struct conf *dst, const struct conf *src,
    void (*fixed)(const char *key, void *arg), void *arg);

/* Write a commented configuration file with c's values (dirctl init). */
int conf_write(const char *path, const struct conf *c, char *errbuf,
    size_t errlen) __attribute__((warn_unused_result));

#endif

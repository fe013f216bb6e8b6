/*
 * keystore.h - dchat's home directory: key, certificate, CA, CRL cache,
 * configuration, contacts and the allow / deny lists.
 *
 * Layout of DIR (default $XDG_CONFIG_HOME/dchat, else ~/.config/dchat):
 *   key.pem      the private key, mode 0600, never leaves the machine
 *   cert.pem     our certificate          ca.pem    the pinned DIR CA
 *   lock         taken while key and certificate are replaced or read
 *                (ks_lock), so that nobody sees one without the other
 *   crl.der      the last CRL fetched from the DIR (see peertls.h)
 *   config       "server = https://host:4604", "userid = ..." and
 *                "dns = ADDR[@PORT]" (only when a DNS server was named)
 *   contacts     "userid ip port fingerprint" per line: last working address
 *   allow, deny  one entry per line: a user id, "@domain", or "*" (anyone
 *                the DIR CA vouches for)
 *   requests     contact requests left by callers: "userid<TAB>name<TAB>note"
 *   downloads/   received files
 *   restored/    keys of earlier devices, kept only to read mail sent to
 *                them (S/MIME): SERIAL.key (0600) and SERIAL.pem per
 *                certificate restored from a backup (ks_store_restored);
 *                this device never presents them
 * Every file is replaced atomically (write to a temporary, rename); key
 * and certificate together (ks_store_identity).
 */
#ifndef KEYSTORE_H
#define KEYSTORE_H

#include <limits.h>
#include <stddef.h>
#include <sys/types.h>
#include <time.h>

#define KS_PATH_MAX 4096
#define KS_LIST_MAX 256	     /* entries per allow / deny list */
#define KS_ENTRY_MAX 256
#define KS_FILE_MAX (1024 * 1024)
/* A contact request's note: as long as PeerTLS allows (docs/peertls.md). */
#define KS_NOTE_MAX 1000

struct keystore {
	char home[KS_PATH_MAX];
	char key[KS_PATH_MAX];
	char cert[KS_PATH_MAX];
	char ca[KS_PATH_MAX];
	char crl[KS_PATH_MAX];
	char config[KS_PATH_MAX];
	char contacts[KS_PATH_MAX];
	char allow[KS_PATH_MAX];
	char deny[KS_PATH_MAX];
	char requests[KS_PATH_MAX];
	char downloads[KS_PATH_MAX];
	char restored[KS_PATH_MAX];
	char lock[KS_PATH_MAX];
	char server[1024]; /* from config, "" if none */
	char userid[256];  /* from config, "" if none */
	char dns[64];	   /* the DNS server to ask, "" for the system's */
};

/* A loaded allow or deny list. */
struct ks_list {
	size_t n;
	char e[KS_LIST_MAX][KS_ENTRY_MAX];
};

/* The last working address of a contact and the certificate seen there. */
struct ks_contact {
	char userid[256];
	char ip[64];
	int port;
	char fingerprint[65];
};

/*
 * Fill ks with the paths under home (NULL: the XDG default).  With create,
 * make the directory (0700).  Reads the config file if present.
 */
int ks_open(struct keystore *ks, const char *home, int create, char *err,
    size_t errlen) __attribute__((warn_unused_result));
/* Write server and userid to the config file. */
int ks_save_config(const struct keystore *ks, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* Replace path atomically with buf, created with mode. */
int ks_write_file(const char *path, const void *buf, size_t len, mode_t mode)
    __attribute__((warn_unused_result));
/* Read at most max bytes of path into a new NUL-terminated buffer. */
int ks_read_file(const char *path, size_t max, unsigned char **buf,
    size_t *len) __attribute__((warn_unused_result));

/*
 * Key and certificate as one.  Both are written in full to key.pem.new
 * and cert.pem.new first, and only then renamed over the old ones (key,
 * then certificate), all under the exclusive lock: a reader holding the
 * shared lock sees the old pair or the new one, never a mix, and the old
 * key is not gone before the new certificate is safely on disk.  A crash
 * in between is finished (both new files written) or undone (not both)
 * by the next ks_open.  0, or -1 with a sentence in err; on failure the
 * old pair is untouched.
 */
int ks_store_identity(const struct keystore *ks, const char *key_pem,
    size_t key_len, const char *cert_pem, size_t cert_len, char *err,
    size_t errlen) __attribute__((warn_unused_result));

/*
 * Keep the key and certificate of an earlier device of this user (from a
 * backup, dchat restore) only to read mail sent to it: restored/SERIAL.key
 * (0600) and restored/SERIAL.pem (0644), serial as ca_cert_info gives it.
 * One pair per certificate, so that a second restore adds to the first;
 * the same certificate again replaces its pair.  The key is written
 * before the certificate: a certificate found there has its key.  0, or
 * -1 with a sentence in err.
 */
int ks_store_restored(const struct keystore *ks, const char *serial,
    const char *key_pem, size_t key_len, const char *cert_pem,
    size_t cert_len, char *err, size_t errlen)
    __attribute__((warn_unused_result));
/*
 * Call cb with each restored key and its certificate (both PEM, NUL
 * terminated, wiped and freed after the call) until it returns non-zero,
 * which is returned; 0 when all were seen or there are none.
 */
int ks_each_restored(const struct keystore *ks,
    int (*cb)(const char *key_pem, size_t key_len, const char *cert_pem,
    size_t cert_len, void *arg), void *arg);

/*
 * The lock of the home directory (flock): shared to read key and
 * certificate, exclusive to replace them.  A descriptor for ks_unlock,
 * or -1 (no lock could be had: read anyway, it is only a shield against
 * a renewal at that very moment).
 */
int ks_lock(const struct keystore *ks, int exclusive);
void ks_unlock(int fd);

/* Key and certificate files as they are now: which file, what size, when
 * last written.  Another process that replaces them changes the stamp. */
struct ks_file_stamp {
	dev_t dev;
	ino_t ino;
	off_t size;
	struct timespec mtime;
};
struct ks_stamp {
	struct ks_file_stamp key, cert;
};
void ks_identity_stamp(const struct keystore *ks, struct ks_stamp *st);
/* 1 when a and b differ. */
int ks_stamp_changed(const struct ks_stamp *a, const struct ks_stamp *b);

int ks_list_load(const char *path, struct ks_list *l);
int ks_list_save(const char *path, const struct ks_list *l);
/* Add (or remove) an entry; 0, or -1 when full / not present. */
int ks_list_add(struct ks_list *l, const char *entry);
int ks_list_remove(struct ks_list *l, const char *entry);
/* 1 when userid matches an entry (exact, "@domain" or "*"). */
int ks_list_match(const struct ks_list *l, const char *userid);

/* 0 and *c filled when userid has a contact entry, -1 otherwise. */
int ks_contact_get(const struct keystore *ks, const char *userid,
    struct ks_contact *c);
int ks_contact_set(const struct keystore *ks, const struct ks_contact *c);

/* Append a contact request (one per caller: a newer one replaces); the
 * note is kept whole up to KS_NOTE_MAX bytes. */
int ks_request_add(const struct keystore *ks, const char *userid,
    const char *name, const char *note);

#endif

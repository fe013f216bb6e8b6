/*
 * keystore.c - files under dchat's home directory.
 */
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "keystore.h"

static int
path_join(char *dst, const char *dir, const char *name)
{
	return (size_t)snprintf(dst, KS_PATH_MAX, "%s/%s", dir, name) >=
	    KS_PATH_MAX ? -1 : 0;
}

/* Trim leading and trailing blanks in place; returns the start. */
static char *
trim(char *s)
{
	size_t n;

	while (*s == ' ' || *s == '\t')
		s++;
	n = strlen(s);
	while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\n' ||
	    s[n - 1] == '\r'))
		s[--n] = '\0';
	return s;
}

/*
 * fgets for the line files: a line longer than buf is skipped whole, never
 * read as several lines (the tail of a long comment would become an
 * entry).  A NUL in the input does not hide the end of the buffer: the
 * last byte of buf is set before and looked at after.
 */
static char *
get_line(char *buf, int size, FILE *f)
{
	int c;

	for (;;) {
		buf[size - 1] = 'x';
		if (fgets(buf, size, f) == NULL)
			return NULL;
		if (buf[size - 1] != '\0' || buf[size - 2] == '\n')
			return buf;
		while ((c = getc(f)) != EOF && c != '\n')
			;
	}
}

static int
mkdir_p(const char *path, mode_t mode)
{
	char tmp[KS_PATH_MAX], *p;

	if ((size_t)snprintf(tmp, sizeof(tmp), "%s", path) >= sizeof(tmp))
		return -1;
	for (p = tmp + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(tmp, 0700) == -1 && errno != EEXIST)
			return -1;
		*p = '/';
	}
	if (mkdir(tmp, mode) == -1 && errno != EEXIST)
		return -1;
	return 0;
}

/* The keys of the config file, and the field each fills. */
static const struct {
	const char *key;
	size_t off, size;
} config_keys[] = {
	{ "server", offsetof(struct keystore, server),
	    sizeof(((struct keystore *)0)->server) },
	{ "userid", offsetof(struct keystore, userid),
	    sizeof(((struct keystore *)0)->userid) },
	{ "dns", offsetof(struct keystore, dns),
	    sizeof(((struct keystore *)0)->dns) },
};

static void
load_config(struct keystore *ks)
{
	char line[1400], *k, *v, *eq;
	size_t i;
	FILE *f;

	if ((f = fopen(ks->config, "r")) == NULL)
		return;
	while (get_line(line, sizeof(line), f)) {
		if ((eq = strchr(line, '=')) == NULL)
			continue;
		*eq = '\0';
		k = trim(line);
		v = trim(eq + 1);
		/* A value too long for its field is left out, never cut. */
		for (i = 0; i < sizeof(config_keys) / sizeof(config_keys[0]); i++)
			if (strcmp(k, config_keys[i].key) == 0 &&
			    strlen(v) < config_keys[i].size)
				snprintf((char *)ks + config_keys[i].off,
				    config_keys[i].size, "%s", v);
	}
	fclose(f);
}

/* "key.pem.new" for "key.pem": where ks_store_identity puts it first. */
static int
pending_path(char *dst, size_t len, const char *path)
{
	return (size_t)snprintf(dst, len, "%s.new", path) >= len ? -1 : 0;
}

/* Make renames and creations in the directory path durable. */
static int
fsync_dir(const char *path)
{
	int fd, rv;

	if ((fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) == -1)
		return -1;
	rv = fsync(fd);
	close(fd);
	return rv;
}

static int
sync_dir(const struct keystore *ks)
{
	return fsync_dir(ks->home);
}

/*
 * A switch of key and certificate that stopped half-way
 * (ks_store_identity died): with both new files written, finish it;
 * with only the new certificate left, the key went in already: finish
 * it; with only a new key, the certificate never came: drop the key.
 * Looked at under the exclusive lock, so a switch under way is waited
 * for, not taken for a broken one.
 */
static void
recover_identity(const struct keystore *ks)
{
	char knew[KS_PATH_MAX + 8], cnew[KS_PATH_MAX + 8];
	int fd, has_key, has_cert;

	if (pending_path(knew, sizeof(knew), ks->key) == -1 ||
	    pending_path(cnew, sizeof(cnew), ks->cert) == -1 ||
	    (access(knew, F_OK) == -1 && access(cnew, F_OK) == -1))
		return;
	fd = ks_lock(ks, 1);
	has_key = access(knew, F_OK) == 0;
	has_cert = access(cnew, F_OK) == 0;
	if (has_key && has_cert) {
		if (rename(knew, ks->key) == 0)
			(void)rename(cnew, ks->cert);
	} else if (has_cert)
		(void)rename(cnew, ks->cert);
	else if (has_key)
		(void)unlink(knew);
	(void)sync_dir(ks);
	ks_unlock(fd);
}

int
ks_lock(const struct keystore *ks, int exclusive)
{
	int fd;

	if ((fd = open(ks->lock, O_RDWR | O_CREAT | O_CLOEXEC, 0600)) == -1 &&
	    (fd = open(ks->lock, O_RDONLY | O_CLOEXEC)) == -1)
		return -1;
	/* A signal (dchat run's) may interrupt the wait: wait on. */
	while (flock(fd, exclusive ? LOCK_EX : LOCK_SH) == -1) {
		if (errno != EINTR) {
			close(fd);
			return -1;
		}
	}
	return fd;
}

void
ks_unlock(int fd)
{
	int saved = errno;

	if (fd != -1)
		close(fd); /* releases the flock */
	errno = saved;
}

int
ks_store_identity(const struct keystore *ks, const char *key_pem,
    size_t key_len, const char *cert_pem, size_t cert_len, char *err,
    size_t errlen)
{
	char knew[KS_PATH_MAX + 8], cnew[KS_PATH_MAX + 8];
	const char *what;
	int fd, saved;

	if (pending_path(knew, sizeof(knew), ks->key) == -1 ||
	    pending_path(cnew, sizeof(cnew), ks->cert) == -1) {
		snprintf(err, errlen, "home directory path too long");
		return -1;
	}
	/* Exclusive for the whole switch: two renewals at once must not
	 * mix their new files. */
	if ((fd = ks_lock(ks, 1)) == -1) {
		snprintf(err, errlen, "cannot lock %s: %s", ks->lock,
		    strerror(errno));
		return -1;
	}
	what = knew;
	if (ks_write_file(knew, key_pem, key_len, 0600) == -1)
		goto undo;
	what = cnew;
	if (ks_write_file(cnew, cert_pem, cert_len, 0644) == -1)
		goto undo;
	what = ks->home;
	if (sync_dir(ks) == -1)
		goto undo;
	what = ks->key;
	if (rename(knew, ks->key) == -1)
		goto undo;
	/*
	 * From here on the new key is in place: should this rename fail,
	 * cert.pem.new stays, and the next ks_open puts it in place.
	 */
	if (rename(cnew, ks->cert) == -1) {
		snprintf(err, errlen, "cannot rename %s to %s: %s (dchat "
		    "finishes this the next time it starts)", cnew, ks->cert,
		    strerror(errno));
		ks_unlock(fd);
		return -1;
	}
	(void)sync_dir(ks);
	ks_unlock(fd);
	return 0;
undo:
	saved = errno;
	(void)unlink(knew);
	(void)unlink(cnew);
	ks_unlock(fd);
	snprintf(err, errlen, "cannot write %s: %s; the previous key and "
	    "certificate stay", what, strerror(saved));
	return -1;
}

/* A serial fit for a file name: lower-case hex, as ca_cert_info writes. */
static int
serial_ok(const char *serial)
{
	size_t n = strlen(serial);

	return n > 0 && n <= 40 && strspn(serial, "0123456789abcdef") == n;
}

int
ks_store_restored(const struct keystore *ks, const char *serial,
    const char *key_pem, size_t key_len, const char *cert_pem,
    size_t cert_len, char *err, size_t errlen)
{
	char key[KS_PATH_MAX], cert[KS_PATH_MAX];
	const char *what = ks->restored;

	if (!serial_ok(serial)) {
		snprintf(err, errlen, "the restored certificate has an unusual "
		    "serial (%.40s); nothing was kept", serial);
		return -1;
	}
	if ((size_t)snprintf(key, sizeof(key), "%s/%s.key", ks->restored,
	    serial) >= sizeof(key) || (size_t)snprintf(cert, sizeof(cert),
	    "%s/%s.pem", ks->restored, serial) >= sizeof(cert)) {
		snprintf(err, errlen, "home directory path too long");
		return -1;
	}
	/* 0700 like the home: what is in it is no one else's business. */
	if (mkdir(ks->restored, 0700) == -1 && errno != EEXIST)
		goto err;
	what = key;
	if (ks_write_file(key, key_pem, key_len, 0600) == -1)
		goto err;
	what = cert;
	if (ks_write_file(cert, cert_pem, cert_len, 0644) == -1)
		goto err;
	(void)fsync_dir(ks->restored);
	(void)sync_dir(ks);
	return 0;
err:
	snprintf(err, errlen, "cannot write %s: %s", what, strerror(errno));
	return -1;
}

int
ks_each_restored(const struct keystore *ks,
    int (*cb)(const char *key_pem, size_t key_len, const char *cert_pem,
    size_t cert_len, void *arg), void *arg)
{
	char kpath[KS_PATH_MAX + 300], cpath[KS_PATH_MAX + 300];
	unsigned char *key = NULL, *cert = NULL;
	struct dirent *de;
	size_t n, klen = 0, clen;
	DIR *d;
	int rv = 0;

	if ((d = opendir(ks->restored)) == NULL)
		return 0;
	while (rv == 0 && (de = readdir(d)) != NULL) {
		n = strlen(de->d_name);
		if (n < 5 || strcmp(de->d_name + n - 4, ".key") != 0)
			continue;
		snprintf(kpath, sizeof(kpath), "%s/%s", ks->restored,
		    de->d_name);
		snprintf(cpath, sizeof(cpath), "%s/%.*s.pem", ks->restored,
		    (int)(n - 4), de->d_name);
		/* A key without its certificate (a store cut short) is no
		 * pair: ks_store_restored writes the key first. */
		if (ks_read_file(kpath, KS_FILE_MAX, &key, &klen) == 0 &&
		    ks_read_file(cpath, KS_FILE_MAX, &cert, &clen) == 0)
			rv = cb((char *)key, klen, (char *)cert, clen, arg);
		if (key != NULL)
			explicit_bzero(key, klen);
		free(key);
		free(cert);
		key = cert = NULL;
	}
	closedir(d);
	return rv;
}

static void
file_stamp(const char *path, struct ks_file_stamp *f)
{
	struct stat st;

	memset(f, 0, sizeof(*f));
	if (stat(path, &st) == -1)
		return; /* missing: all zero */
	f->dev = st.st_dev;
	f->ino = st.st_ino;
	f->size = st.st_size;
	f->mtime = st.st_mtim;
}

void
ks_identity_stamp(const struct keystore *ks, struct ks_stamp *st)
{
	file_stamp(ks->key, &st->key);
	file_stamp(ks->cert, &st->cert);
}

static int
file_stamp_changed(const struct ks_file_stamp *a,
    const struct ks_file_stamp *b)
{
	return a->dev != b->dev || a->ino != b->ino || a->size != b->size ||
	    a->mtime.tv_sec != b->mtime.tv_sec ||
	    a->mtime.tv_nsec != b->mtime.tv_nsec;
}

int
ks_stamp_changed(const struct ks_stamp *a, const struct ks_stamp *b)
{
	return file_stamp_changed(&a->key, &b->key) ||
	    file_stamp_changed(&a->cert, &b->cert);
}

int
ks_open(struct keystore *ks, const char *home, int create, char *err,
    size_t errlen)
{
	const char *xdg, *h;
	int bad = 0;

	memset(ks, 0, sizeof(*ks));
	if (home == NULL) {
		if ((xdg = getenv("XDG_CONFIG_HOME")) != NULL && *xdg == '/')
			bad = (size_t)snprintf(ks->home, sizeof(ks->home),
			    "%s/dchat", xdg) >= sizeof(ks->home);
		else if ((h = getenv("HOME")) != NULL && *h)
			bad = (size_t)snprintf(ks->home, sizeof(ks->home),
			    "%s/.config/dchat", h) >= sizeof(ks->home);
		else {
			snprintf(err, errlen, "no --home given and neither "
			    "XDG_CONFIG_HOME nor HOME is set");
			return -1;
		}
	} else
		bad = (size_t)snprintf(ks->home, sizeof(ks->home), "%s",
		    home) >= sizeof(ks->home);
	if (bad || path_join(ks->key, ks->home, "key.pem") ||
	    path_join(ks->cert, ks->home, "cert.pem") ||
	    path_join(ks->ca, ks->home, "ca.pem") ||
	    path_join(ks->crl, ks->home, "crl.der") ||
	    path_join(ks->config, ks->home, "config") ||
	    path_join(ks->contacts, ks->home, "contacts") ||
	    path_join(ks->allow, ks->home, "allow") ||
	    path_join(ks->deny, ks->home, "deny") ||
	    path_join(ks->requests, ks->home, "requests") ||
	    path_join(ks->downloads, ks->home, "downloads") ||
	    path_join(ks->restored, ks->home, "restored") ||
	    path_join(ks->lock, ks->home, "lock")) {
		snprintf(err, errlen, "home directory path too long");
		return -1;
	}
	if (create && mkdir_p(ks->home, 0700) == -1) {
		snprintf(err, errlen, "cannot create %s: %s", ks->home,
		    strerror(errno));
		return -1;
	}
	recover_identity(ks);
	load_config(ks);
	return 0;
}

int
ks_save_config(const struct keystore *ks, char *err, size_t errlen)
{
	char buf[1400];
	int n;

	n = snprintf(buf, sizeof(buf), "server = %s\nuserid = %s\n%s%s%s",
	    ks->server, ks->userid, ks->dns[0] ? "dns = " : "", ks->dns,
	    ks->dns[0] ? "\n" : "");
	if (n < 0 || (size_t)n >= sizeof(buf) ||
	    ks_write_file(ks->config, buf, (size_t)n, 0600) == -1) {
		snprintf(err, errlen, "cannot write %s: %s", ks->config,
		    strerror(errno));
		return -1;
	}
	return 0;
}

int
ks_write_file(const char *path, const void *buf, size_t len, mode_t mode)
{
	char tmp[KS_PATH_MAX + 16];
	const unsigned char *p = buf;
	ssize_t w;
	int fd, saved;

	if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp%ld", path,
	    (long)getpid()) >= sizeof(tmp)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	/* O_EXCL + the mode at creation: a key is never readable by others,
	 * not even for a moment. */
	(void)unlink(tmp);
	if ((fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode)) ==
	    -1)
		return -1;
	while (len > 0) {
		if ((w = write(fd, p, len)) == -1) {
			if (errno == EINTR)
				continue;
			goto err;
		}
		p += w;
		len -= (size_t)w;
	}
	if (fsync(fd) == -1 || close(fd) == -1) {
		fd = -1;
		goto err;
	}
	fd = -1;
	if (rename(tmp, path) == -1)
		goto err;
	return 0;
err:
	saved = errno;
	if (fd != -1)
		close(fd);
	(void)unlink(tmp);
	errno = saved;
	return -1;
}

int
ks_read_file(const char *path, size_t max, unsigned char **buf, size_t *len)
{
	unsigned char *b = NULL;
	struct stat st;
	size_t got = 0;
	ssize_t r;
	int fd;

	*buf = NULL;
	*len = 0;
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1)
		return -1;
	if (fstat(fd, &st) == -1 || !S_ISREG(st.st_mode) ||
	    (size_t)st.st_size > max) {
		close(fd);
		errno = EFBIG;
		return -1;
	}
	if ((b = malloc((size_t)st.st_size + 1)) == NULL) {
		close(fd);
		return -1;
	}
	while (got < (size_t)st.st_size) {
		r = read(fd, b + got, (size_t)st.st_size - got);
		if (r == -1 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		got += (size_t)r;
	}
	close(fd);
	b[got] = '\0';
	*buf = b;
	*len = got;
	return 0;
}

int
ks_list_load(const char *path, struct ks_list *l)
{
	char line[KS_ENTRY_MAX + 8], *s;
	FILE *f;

	l->n = 0;
	if ((f = fopen(path, "r")) == NULL)
		return errno == ENOENT ? 0 : -1;
	while (get_line(line, sizeof(line), f)) {
		s = trim(line);
		if (*s == '\0' || *s == '#')
			continue;
		(void)ks_list_add(l, s);
	}
	fclose(f);
	return 0;
}

int
ks_list_save(const char *path, const struct ks_list *l)
{
	char *buf;
	size_t i, off = 0, cap = l->n * (KS_ENTRY_MAX + 1) + 1;
	int rv;

	if ((buf = malloc(cap)) == NULL)
		return -1;
	for (i = 0; i < l->n; i++)
		off += (size_t)snprintf(buf + off, cap - off, "%s\n", l->e[i]);
	rv = ks_write_file(path, buf, off, 0600);
	free(buf);
	return rv;
}

int
ks_list_add(struct ks_list *l, const char *entry)
{
	size_t i;

	if (strlen(entry) >= KS_ENTRY_MAX || strpbrk(entry, " \t\r\n"))
		return -1;
	for (i = 0; i < l->n; i++)
		if (strcmp(l->e[i], entry) == 0)
			return 0;
	if (l->n == KS_LIST_MAX)
		return -1;
	snprintf(l->e[l->n++], KS_ENTRY_MAX, "%s", entry);
	return 0;
}

int
ks_list_remove(struct ks_list *l, const char *entry)
{
	size_t i;

	for (i = 0; i < l->n; i++) {
		if (strcmp(l->e[i], entry) != 0)
			continue;
		memmove(l->e[i], l->e[i + 1], (l->n - i - 1) * KS_ENTRY_MAX);
		l->n--;
		return 0;
	}
	return -1;
}

int
ks_list_match(const struct ks_list *l, const char *userid)
{
	const char *at = strrchr(userid, '@');
	size_t i;

	for (i = 0; i < l->n; i++) {
		if (strcmp(l->e[i], "*") == 0 ||
		    strcasecmp(l->e[i], userid) == 0 ||
		    (l->e[i][0] == '@' && at && strcasecmp(l->e[i], at) == 0))
			return 1;
	}
	return 0;
}

/* Parse one contacts line "userid ip port fingerprint". */
static int
contact_parse(char *line, struct ks_contact *c)
{
	char *f[4], *save = NULL, *p, *end;
	long port;
	int i;

	p = line;
	for (i = 0; i < 4; i++) {
		f[i] = strtok_r(p, " \t\n", &save);
		p = NULL;
		if (f[i] == NULL)
			return -1;
	}
	port = strtol(f[2], &end, 10);
	if (*end || port < 1 || port > 65535 ||
	    strlen(f[0]) >= sizeof(c->userid) || strlen(f[1]) >= sizeof(c->ip) ||
	    strlen(f[3]) >= sizeof(c->fingerprint))
		return -1;
	snprintf(c->userid, sizeof(c->userid), "%s", f[0]);
	snprintf(c->ip, sizeof(c->ip), "%s", f[1]);
	snprintf(c->fingerprint, sizeof(c->fingerprint), "%s", f[3]);
	c->port = (int)port;
	return 0;
}

int
ks_contact_get(const struct keystore *ks, const char *userid,
    struct ks_contact *c)
{
	char line[512];
	FILE *f;
	int rv = -1;

	if ((f = fopen(ks->contacts, "r")) == NULL)
		return -1;
	while (get_line(line, sizeof(line), f)) {
		if (contact_parse(line, c) == 0 &&
		    strcasecmp(c->userid, userid) == 0) {
			rv = 0;
			break;
		}
	}
	fclose(f);
	return rv;
}

int
ks_contact_set(const struct keystore *ks, const struct ks_contact *c)
{
	unsigned char *old = NULL;
	char *out = NULL, *line, *save = NULL, copy[512];
	size_t len = 0, off = 0, cap;
	struct ks_contact e;
	int rv = -1;

	if (ks_read_file(ks->contacts, KS_FILE_MAX, &old, &len) == -1)
		len = 0;
	cap = len + 512;
	if ((out = malloc(cap)) == NULL)
		goto err;
	off = (size_t)snprintf(out, cap, "%s %s %d %s\n", c->userid, c->ip,
	    c->port, c->fingerprint[0] ? c->fingerprint : "-");
	for (line = old ? strtok_r((char *)old, "\n", &save) : NULL; line;
	    line = strtok_r(NULL, "\n", &save)) {
		snprintf(copy, sizeof(copy), "%s", line);
		if (contact_parse(copy, &e) == 0 &&
		    strcasecmp(e.userid, c->userid) == 0)
			continue; /* the new entry replaces it */
		if (off + strlen(line) + 2 > cap)
			break;
		off += (size_t)snprintf(out + off, cap - off, "%s\n", line);
	}
	rv = ks_write_file(ks->contacts, out, off, 0600);
err:
	free(old);
	free(out);
	return rv;
}

/* A request field on one line: no tabs or newlines, bounded. */
static void
clean_field(char *dst, size_t len, const char *src)
{
	size_t i;

	snprintf(dst, len, "%s", src ? src : "");
	for (i = 0; dst[i]; i++)
		if ((unsigned char)dst[i] < 0x20 || dst[i] == 0x7f)
			dst[i] = ' ';
}

int
ks_request_add(const struct keystore *ks, const char *userid,
    const char *name, const char *note)
{
	unsigned char *old = NULL;
	char *out = NULL, *line, *save = NULL, u[256], n[256];
	char t[KS_NOTE_MAX + 1];
	size_t len = 0, off, cap, ul;
	int rv = -1;

	clean_field(u, sizeof(u), userid);
	clean_field(n, sizeof(n), name);
	clean_field(t, sizeof(t), note);
	if (ks_read_file(ks->requests, KS_FILE_MAX, &old, &len) == -1)
		len = 0;
	/* The old lines (with their newlines), the new one, the NUL. */
	cap = len + 1 + sizeof(u) + sizeof(n) + sizeof(t) + 3;
	if ((out = malloc(cap)) == NULL)
		goto err;
	off = 0;
	ul = strlen(u);
	for (line = old ? strtok_r((char *)old, "\n", &save) : NULL; line;
	    line = strtok_r(NULL, "\n", &save)) {
		if (strncmp(line, u, ul) == 0 && line[ul] == '\t')
			continue; /* one request per caller */
		off += (size_t)snprintf(out + off, cap - off, "%s\n", line);
	}
	off += (size_t)snprintf(out + off, cap - off, "%s\t%s\t%s\n", u, n, t);
	rv = ks_write_file(ks->requests, out, off, 0600);
err:
	free(old);
	free(out);
	return rv;
}

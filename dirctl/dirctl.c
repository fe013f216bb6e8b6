/*
 * dirctl - the administrator's command line of a Domain Identity Registry.
 *
 * It works on the data directory directly: the CA files and the database
 * (the embedded cluster, or --dsn).  Every command checks its input before
 * it changes anything, prints a sentence on failure and exits non-zero.
 */
#include <sys/stat.h>

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "irp.h"
#include "irp_wire.h"
#include "reg.h"

#define MAX_INPUT_FILE (1024 * 1024)

static const char *progname = "dirctl";

static void usage(FILE *fp);

static void __attribute__((format(printf, 1, 2)))
warnx_(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s: ", progname);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

/* Global options, parsed before the command. */
struct opts {
	const char *data;
	const char *dsn;
};

/* ---- small helpers -------------------------------------------------- */

/* Read a whole file (at most MAX_INPUT_FILE bytes); NUL-terminated. */
static char *
read_file(const char *path, size_t *len)
{
	FILE *fp;
	char *buf = NULL;
	size_t n = 0, cap = 0, r;

	if (strcmp(path, "-") == 0)
		fp = stdin;
	else if ((fp = fopen(path, "rb")) == NULL) {
		warnx_("%s: %s", path, strerror(errno));
		return NULL;
	}
	for (;;) {
		if (n + 4096 + 1 > cap) {
			char *nb;

			cap = cap ? cap * 2 : 8192;
			if ((nb = realloc(buf, cap)) == NULL) {
				warnx_("out of memory");
				goto err;
			}
			buf = nb;
		}
		r = fread(buf + n, 1, 4096, fp);
		n += r;
		if (n > MAX_INPUT_FILE) {
			warnx_("%s: larger than %d bytes", path, MAX_INPUT_FILE);
			goto err;
		}
		if (r < 4096)
			break;
	}
	if (ferror(fp)) {
		warnx_("%s: read error", path);
		goto err;
	}
	buf[n] = '\0';
	*len = n;
	if (fp != stdin)
		fclose(fp);
	return buf;
err:
	free(buf);
	if (fp != stdin)
		fclose(fp);
	return NULL;
}

/* A passphrase file: its first line, without the newline. */
static char *
read_secret(const char *path)
{
	size_t len;
	char *s = read_file(path, &len);

	if (s == NULL)
		return NULL;
	s[strcspn(s, "\r\n")] = '\0';
	if (*s == '\0') {
		warnx_("%s: the passphrase is empty", path);
		free(s);
		return NULL;
	}
	return s;
}

static void
free_secret(char *s)
{
	if (s != NULL) {
		OPENSSL_cleanse(s, strlen(s));
		free(s);
	}
}

/* Write buf to path, created with mode `mode`, replacing it atomically. */
static int
write_file(const char *path, const void *buf, size_t len, mode_t mode)
{
	char tmp[4096];
	int fd;

	if (strcmp(path, "-") == 0)
		return fwrite(buf, 1, len, stdout) == len ? 0 : -1;
	snprintf(tmp, sizeof(tmp), "%s.tmpXXXXXX", path);
	if ((fd = mkstemp(tmp)) == -1) {
		warnx_("%s: %s", path, strerror(errno));
		return -1;
	}
	if (fchmod(fd, mode) == -1 || write(fd, buf, len) != (ssize_t)len ||
	    fsync(fd) == -1 || close(fd) == -1 || rename(tmp, path) == -1) {
		warnx_("%s: %s", path, strerror(errno));
		unlink(tmp);
		return -1;
	}
	return 0;
}

/* "90", "30s", "15m", "24h", "7d" -> seconds; -1 when malformed. */
static long
parse_duration(const char *s)
{
	char *end;
	long v, mul = 1;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno != 0 || end == s || v <= 0)
		return -1;
	if (*end == 's')
		mul = 1;
	else if (*end == 'm')
		mul = 60;
	else if (*end == 'h')
		mul = 3600;
	else if (*end == 'd')
		mul = 86400;
	else if (*end != '\0')
		return -1;
	if (*end != '\0' && end[1] != '\0')
		return -1;
	if (v > 365L * 86400 / mul)
		return -1;
	return v * mul;
}

static int
userid_arg(const char *in, char *out, size_t len)
{
	const char *why;

	if (irp_userid_normalize(in, out, len, &why) == -1) {
		warnx_("'%s' is not a valid user id: %s", in, why);
		return -1;
	}
	return 0;
}

/*
 * Who does this: the registry's operator, whom the audit log names by the
 * operating-system user behind the command.  buf holds the name.
 */
static const struct reg_actor *
operator(struct reg_actor *who, char *buf, size_t len)
{
	const char *u = getenv("USER");

	snprintf(buf, len, "dirctl:%s", u && *u ? u : "unknown");
	memset(who, 0, sizeof(*who));
	who->name = buf;
	who->source = NULL;
	who->userid = NULL;
	who->admin = 1;
	who->by = REG_BY_HOST;
	return who;
}

/*
 * Say why the registry refused: a value it found wrong is a mistake on
 * the command line (exit 2), anything else a failure (1).
 */
static int
refused(const struct reg_err *e)
{
	warnx_("%s", e->msg);
	return e->status == 400 ? 2 : 1;
}

/* Open the registry and a connection, or say why not. */
static int
open_reg(const struct opts *o, struct reg *r, struct db **db)
{
	char errbuf[512];
	struct db_err de;

	if (reg_open(r, o->data, o->dsn, NULL, errbuf, sizeof(errbuf)) == -1) {
		warnx_("%s", errbuf);
		return -1;
	}
	if ((*db = reg_db(r, &de)) == NULL) {
		warnx_("database: %s", de.msg);
		reg_close(r);
		return -1;
	}
	return 0;
}

static void
close_reg(struct reg *r, struct db *db)
{
	db_free(db);
	reg_close(r);
}

/*
 * Per-command option parsing: getopt_long over argv starting at the
 * command name.  Returns the index of the first operand.
 */
#define CMD_OPTS_BEGIN(longopts)                                         \
	int ch_;                                                         \
	optind = 0; /* glibc: 0 re-initialises the scanner */         \
	while ((ch_ = getopt_long(argc, argv, "", longopts, NULL)) != -1) { \
		switch (ch_) {
#define CMD_OPTS_END()                                                   \
		default:                                                 \
			return 2;                                        \
		}                                                        \
	}

/* ---- init ------------------------------------------------------------ */

static int
cmd_init(const struct opts *o, int argc, char **argv)
{
	static const struct option lo[] = {
		{ "domain", required_argument, NULL, 'd' },
		{ "host", required_argument, NULL, 'h' },
		{ "key-type", required_argument, NULL, 'k' },
		{ "ca-days", required_argument, NULL, 'c' },
		{ NULL, 0, NULL, 0 },
	};
	const char *hosts[16];
	const char *domain = NULL;
	size_t nhosts = 0;
	enum ca_keytype kt = CA_KEY_EC_P256;
	int ca_days = 3650;
	char key[PATH_MAX + 16], cert[PATH_MAX + 16], skey[PATH_MAX + 16];
	char scert[PATH_MAX + 16], conf[PATH_MAX + 16], cn[300], errbuf[512];
	struct conf c;
	struct reg r;
	struct ca_err ce;
	struct ca *ca = NULL;
	struct stat st;

	CMD_OPTS_BEGIN(lo)
	case 'd':
		domain = optarg;
		break;
	case 'h':
		if (nhosts == sizeof(hosts) / sizeof(hosts[0])) {
			warnx_("at most %zu --host names", nhosts);
			return 2;
		}
		hosts[nhosts++] = optarg;
		break;
	case 'k':
		if (ca_keytype_parse(optarg, &kt) == -1) {
			warnx_("unknown key type '%s' (p256, p384, rsa3072, "
			       "ed25519)", optarg);
			return 2;
		}
		break;
	case 'c':
		ca_days = (int)(parse_duration(optarg) / 86400);
		if (ca_days < 1) {
			warnx_("--ca-days wants a number of days like 3650d");
			return 2;
		}
		break;
	CMD_OPTS_END()
	if (optind != argc || domain == NULL) {
		warnx_("usage: dirctl --data DIR init --domain DOMAIN "
		       "[--host NAME]... [--key-type T]");
		return 2;
	}
	{
		char probe[IRP_USERID_MAX + 1], dom[IRP_USERID_MAX + 1];
		const char *why;

		snprintf(probe, sizeof(probe), "x@%s", domain);
		if (irp_userid_normalize(probe, dom, sizeof(dom), &why) == -1) {
			warnx_("'%s' is not a valid domain name", domain);
			return 2;
		}
	}
	if (nhosts == 0) {
		hosts[nhosts++] = "localhost";
		hosts[nhosts++] = "127.0.0.1";
		hosts[nhosts++] = "::1";
	}
	if (mkdir(o->data, 0700) == -1 && errno != EEXIST) {
		warnx_("cannot create %s: %s", o->data, strerror(errno));
		return 1;
	}
	if (stat(o->data, &st) == -1 || !S_ISDIR(st.st_mode)) {
		warnx_("%s is not a directory", o->data);
		return 1;
	}
	memset(&r, 0, sizeof(r));
	if (realpath(o->data, r.datadir) == NULL) {
		warnx_("%s: %s", o->data, strerror(errno));
		return 1;
	}
	reg_path(&r, REG_CA_KEY, key, sizeof(key));
	reg_path(&r, REG_CA_CERT, cert, sizeof(cert));
	reg_path(&r, REG_SERVER_KEY, skey, sizeof(skey));
	reg_path(&r, REG_SERVER_CERT, scert, sizeof(scert));
	reg_path(&r, REG_CONF, conf, sizeof(conf));
	if (access(key, F_OK) == 0 || access(cert, F_OK) == 0) {
		warnx_("%s already holds a CA; refusing to overwrite it",
		    r.datadir);
		return 1;
	}
	snprintf(cn, sizeof(cn), "DIR CA %s", domain);
	if (ca_create(key, cert, kt, cn, ca_days, &ce) == -1) {
		warnx_("cannot create the CA: %s", ce.msg);
		return 1;
	}
	if ((ca = ca_open(key, cert, &ce)) == NULL ||
	    ca_issue_server(ca, hosts, nhosts, CA_KEY_EC_P256, 825, skey, scert,
		&ce) == -1) {
		warnx_("cannot issue the server certificate: %s", ce.msg);
		goto undo;
	}
	conf_defaults(&c);
	snprintf(c.domain, sizeof(c.domain), "%s", domain);
	if (o->dsn != NULL)
		snprintf(c.dsn, sizeof(c.dsn), "%s", o->dsn);
	/*
	 * The revocation URLs in certificates are plain HTTP, as relying
	 * parties expect (and lint tools demand): what they fetch is signed.
	 * The IRP port serves the same paths over HTTPS.
	 */
	{
		const char *l = strchr(hosts[0], ':') ? "[" : "";
		const char *r = strchr(hosts[0], ':') ? "]" : "";

		snprintf(c.crl_url, sizeof(c.crl_url),
		    "http://%s%s%s:%d/v1/crl", l, hosts[0], r, IRP_HTTP_PORT);
		snprintf(c.ocsp_url, sizeof(c.ocsp_url),
		    "http://%s%s%s:%d/ocsp", l, hosts[0], r, IRP_HTTP_PORT);
		snprintf(c.ca_url, sizeof(c.ca_url),
		    "http://%s%s%s:%d/v1/ca", l, hosts[0], r, IRP_HTTP_PORT);
		snprintf(c.listen[c.nlisten++], sizeof(c.listen[0]),
		    "http://[::]:%d", IRP_HTTP_PORT);
	}
	if (access(conf, F_OK) != 0 &&
	    conf_write(conf, &c, errbuf, sizeof(errbuf)) == -1) {
		warnx_("%s", errbuf);
		goto undo;
	}
	ca_free(ca);
	ca = NULL;
	/* Database: start (or create) it and apply the schema. */
	if (reg_open(&r, o->data, o->dsn, NULL, errbuf,
	    sizeof(errbuf)) == -1) {
		warnx_("%s", errbuf);
		return 1;
	}
	printf("data directory: %s\n", r.datadir);
	printf("CA certificate: %s\n", cert);
	printf("CA fingerprint (SHA-256): %s\n", ca_fingerprint(r.ca));
	printf("database: %s\n", r.pg ? "embedded" : "external (--dsn)");
	reg_close(&r);
	return 0;
undo:
	/* A half-made CA is worse than none: remove what we wrote. */
	ca_free(ca);
	unlink(key);
	unlink(cert);
	unlink(skey);
	unlink(scert);
	return 1;
}

/* ---- migrate --------------------------------------------------------- */

static int
cmd_migrate(const struct opts *o, int argc, char **argv)
{
	struct reg r;
	struct db *db;
	struct db_err de;
	int v;

	if (argc != 1) {
		warnx_("usage: dirctl --data DIR migrate");
		return 2;
	}
	/* reg_open applies pending migrations. */
	if (open_reg(o, &r, &db) == -1)
		return 1;
	if (db_schema_version(db, &v, &de) == -1) {
		warnx_("database: %s", de.msg);
		close_reg(&r, db);
		return 1;
	}
	printf("schema version %d (migrations from %s)\n", v,
	    reg_schema_dir());
	close_reg(&r, db);
	return 0;
}

/* ---- users ----------------------------------------------------------- */

static int
print_user(const struct db_user *u, void *arg)
{
	char t[IRP_TIME_LEN];

	(void)arg;
	irp_time(u->created_at, t);
	printf("%-32s %-6s %-8s %s  %s", u->userid,
	    u->is_admin ? IRP_ROLE_ADMIN : IRP_ROLE_USER,
	    u->enabled ? "enabled" : "disabled",
	    t, u->name);
	if (u->email[0])
		printf(" <%s>", u->email);
	putchar('\n');
	return 0;
}

static int
cmd_user_add(const struct opts *o, int argc, char **argv)
{
	static const struct option lo[] = {
		{ "name", required_argument, NULL, 'n' },
		{ "email", required_argument, NULL, 'e' },
		{ "admin", no_argument, NULL, 'a' },
		{ "password-file", required_argument, NULL, 'p' },
		{ NULL, 0, NULL, 0 },
	};
	struct reg_user_new nu = { NULL, NULL, NULL, NULL, 0 };
	const char *pwfile = NULL;
	char userid[IRP_USERID_MAX + 1], name[64];
	char *pw = NULL;
	struct reg_actor who;
	struct reg r;
	struct db *db;
	struct reg_err e;
	int rv = 1;

	CMD_OPTS_BEGIN(lo)
	case 'n':
		nu.name = optarg;
		break;
	case 'e':
		nu.email = optarg;
		break;
	case 'a':
		nu.admin = 1;
		break;
	case 'p':
		pwfile = optarg;
		break;
	CMD_OPTS_END()
	if (optind + 1 != argc || nu.name == NULL) {
		warnx_("usage: dirctl user add USERID --name NAME [--email E] "
		       "[--admin] [--password-file F]");
		return 2;
	}
	nu.userid = argv[optind];
	/* Judged before the database is opened, by reg_user_add's rules. */
	if (reg_user_check(&nu, userid, &e) == -1)
		return refused(&e);
	if (pwfile != NULL && (pw = read_secret(pwfile)) == NULL)
		return 2;
	nu.password = pw;
	if (open_reg(o, &r, &db) == -1)
		goto out;
	if (reg_user_add(&r, db, &nu, operator(&who, name, sizeof(name)),
		userid, &e) == -1)
		rv = refused(&e);
	else {
		printf("added %s%s\n", userid, nu.admin ? " (admin)" : "");
		rv = 0;
	}
	close_reg(&r, db);
out:
	if (pw != NULL)
		free_secret(pw);
	return rv;
}

static int
cmd_user_simple(const struct opts *o, int argc, char **argv, int enable)
{
	char userid[IRP_USERID_MAX + 1], name[64];
	struct reg_actor who;
	struct reg r;
	struct db *db;
	struct reg_err e;
	int rv = 1;

	if (argc != 2) {
		warnx_("usage: dirctl user %s USERID",
		    enable ? "enable" : "disable");
		return 2;
	}
	if (userid_arg(argv[1], userid, sizeof(userid)) == -1)
		return 2;
	if (open_reg(o, &r, &db) == -1)
		return 1;
	if (reg_user_set_enabled(&r, db, userid, enable,
		operator(&who, name, sizeof(name)), &e) == -1)
		rv = refused(&e);
	else {
		printf("%s %s\n", enable ? "enabled" : "disabled", userid);
		rv = 0;
	}
	close_reg(&r, db);
	return rv;
}

static int
cmd_user_passwd(const struct opts *o, int argc, char **argv)
{
	static const struct option lo[] = {
		{ "password-file", required_argument, NULL, 'p' },
		{ NULL, 0, NULL, 0 },
	};
	const char *pwfile = NULL;
	char userid[IRP_USERID_MAX + 1], name[64];
	char *pw;
	struct reg_actor who;
	struct reg r;
	struct db *db;
	struct reg_err e;
	int rv = 1;

	CMD_OPTS_BEGIN(lo)
	case 'p':
		pwfile = optarg;
		break;
	CMD_OPTS_END()
	if (optind + 1 != argc || pwfile == NULL) {
		warnx_("usage: dirctl user passwd USERID --password-file F");
		return 2;
	}
	if (userid_arg(argv[optind], userid, sizeof(userid)) == -1)
		return 2;
	if ((pw = read_secret(pwfile)) == NULL)
		return 2;
	if (open_reg(o, &r, &db) == -1)
		goto out;
	if (reg_user_passwd(&r, db, userid, pw,
		operator(&who, name, sizeof(name)), &e) == -1)
		rv = refused(&e);
	else {
		printf("password set for %s\n", userid);
		rv = 0;
	}
	close_reg(&r, db);
out:
	free_secret(pw);
	return rv;
}

/* dirctl user policy USERID auto|approve|default */
static int
cmd_user_policy(const struct opts *o, int argc, char **argv)
{
	char userid[IRP_USERID_MAX + 1], name[64];
	struct reg_actor who;
	struct reg r;
	struct db *db;
	struct reg_err e;
	int rv;

	if (argc != 3) {
		warnx_("usage: dirctl user policy USERID auto|approve|default");
		return 2;
	}
	if (userid_arg(argv[1], userid, sizeof(userid)) == -1)
		return 2;
	if (open_reg(o, &r, &db) == -1)
		return 1;
	if (reg_user_policy(&r, db, userid, argv[2],
		operator(&who, name, sizeof(name)), &e) == -1)
		rv = e.status == 400 ? (warnx_("%s", e.msg), 2) : refused(&e);
	else {
		printf("enrolment policy of %s: %s\n", userid, argv[2]);
		rv = 0;
	}
	close_reg(&r, db);
	return rv;
}

static int
cmd_user(const struct opts *o, int argc, char **argv)
{
	struct reg r;
	struct db *db;
	struct db_err de;
	int rv = 0;

	if (argc < 2) {
		warnx_("usage: dirctl user add|list|disable|enable|passwd|"
		    "policy ...");
		return 2;
	}
	if (strcmp(argv[1], "add") == 0)
		return cmd_user_add(o, argc - 1, argv + 1);
	if (strcmp(argv[1], "disable") == 0)
		return cmd_user_simple(o, argc - 1, argv + 1, 0);
	if (strcmp(argv[1], "enable") == 0)
		return cmd_user_simple(o, argc - 1, argv + 1, 1);
	if (strcmp(argv[1], "passwd") == 0)
		return cmd_user_passwd(o, argc - 1, argv + 1);
	if (strcmp(argv[1], "policy") == 0)
		return cmd_user_policy(o, argc - 1, argv + 1);
	if (strcmp(argv[1], "list") != 0) {
		warnx_("unknown user command '%s'", argv[1]);
		return 2;
	}
	if (argc != 2) {
		warnx_("usage: dirctl user list");
		return 2;
	}
	if (open_reg(o, &r, &db) == -1)
		return 1;
	if (db_user_list(db, print_user, NULL, &de) == -1) {
		warnx_("%s", de.msg);
		rv = 1;
	}
	close_reg(&r, db);
	return rv;
}

/* ---- federation ---------------------------------------------------- */

static int
print_fed(const struct db_fed *f, void *arg)
{
	char t[IRP_TIME_LEN];

	(void)arg;
	irp_time(f->added_at, t);
	printf("%-32s %-7s %-64s %s %s\n", f->domain, f->rule,
	    f->ca_sha256[0] ? f->ca_sha256 : "-", t, f->added_by);
	return 0;
}

static int
cmd_federation_list(const struct opts *o, int argc)
{
	struct db_err de;
	struct reg r;
	struct db *db;
	int rv = 0;

	if (argc != 2) {
		warnx_("usage: dirctl federation list");
		return 2;
	}
	if (open_reg(o, &r, &db) == -1)
		return 1;
	if (db_fed_list(db, print_fed, NULL, &de) == -1) {
		warnx_("%s", de.msg);
		rv = 1;
	}
	close_reg(&r, db);
	return rv;
}

/* federation add DOMAIN (--ca-fingerprint F | --dane | --refuse) */
static int
cmd_federation_add(const struct opts *o, int argc, char **argv)
{
	static const struct option lo[] = {
		{ "ca-fingerprint", required_argument, NULL, 'f' },
		{ "dane", no_argument, NULL, 'd' },
		{ "refuse", no_argument, NULL, 'r' },
		{ NULL, 0, NULL, 0 },
	};
	const char *fp = NULL, *rule = NULL;
	struct reg_actor who;
	struct reg_err e;
	struct reg r;
	struct db *db;
	char name[64];
	int rv = 1, nrules = 0;

	CMD_OPTS_BEGIN(lo)
	case 'f':
		fp = optarg;
		rule = "pinned";
		nrules++;
		break;
	case 'd':
		rule = "dane";
		nrules++;
		break;
	case 'r':
		rule = "refused";
		nrules++;
		break;
	CMD_OPTS_END()
	if (optind + 1 != argc || nrules != 1) {
		warnx_("usage: dirctl federation add DOMAIN "
		       "(--ca-fingerprint SHA256 | --dane | --refuse)");
		return 2;
	}
	if (open_reg(o, &r, &db) == -1)
		return 1;
	if (reg_fed_set(&r, db, argv[optind], rule, fp,
		operator(&who, name, sizeof(name)), &e) == -1)
		rv = refused(&e);
	else {
		printf("%s: %s\n", argv[optind], rule);
		rv = 0;
	}
	close_reg(&r, db);
	return rv;
}

static int
cmd_federation_remove(const struct opts *o, int argc, char **argv)
{
	struct reg_actor who;
	struct reg_err e;
	struct reg r;
	struct db *db;
	char name[64];
	int rv;

	if (argc != 3) {
		warnx_("usage: dirctl federation remove DOMAIN");
		return 2;
	}
	if (open_reg(o, &r, &db) == -1)
		return 1;
	if (reg_fed_remove(&r, db, argv[2], operator(&who, name, sizeof(name)),
		&e) == -1)
		rv = refused(&e);
	else {
		printf("%s: no rule (refused)\n", argv[2]);
		rv = 0;
	}
	close_reg(&r, db);
	return rv;
}

static int
cmd_federation(const struct opts *o, int argc, char **argv)
{
	if (argc >= 2 && strcmp(argv[1], "add") == 0)
		return cmd_federation_add(o, argc - 1, argv + 1);
	if (argc >= 2 && strcmp(argv[1], "remove") == 0)
		return cmd_federation_remove(o, argc, argv);
	if (argc >= 2 && strcmp(argv[1], "list") == 0)
		return cmd_federation_list(o, argc);
	warnx_("usage: dirctl federation add|remove|list ...");
	return 2;
}

/* ---- enrolment codes ---------------------------------------------- */

static int
cmd_code(const struct opts *o, int argc, char **argv)
{
	static const struct option lo[] = {
		{ "ttl", required_argument, NULL, 't' },
		{ NULL, 0, NULL, 0 },
	};
	char userid[IRP_USERID_MAX + 1], name[64], code[REG_CODE_LEN + 1];
	char t[IRP_TIME_LEN];
	long ttl = 0;
	long long expires;
	struct reg_actor who;
	struct reg r;
	struct db *db;
	struct reg_err e;
	int rv = 1;

	CMD_OPTS_BEGIN(lo)
	case 't':
		/* Its range is reg_code_new's to judge. */
		if ((ttl = parse_duration(optarg)) < 0) {
			warnx_("--ttl must be a duration from 60s to 30d "
			       "(e.g. 15m, 24h, 7d), not '%s'", optarg);
			return 2;
		}
		break;
	CMD_OPTS_END()
	if (optind + 1 != argc) {
		warnx_("usage: dirctl code USERID [--ttl DURATION]");
		return 2;
	}
	if (userid_arg(argv[optind], userid, sizeof(userid)) == -1)
		return 2;
	if (open_reg(o, &r, &db) == -1)
		return 1;
	if (reg_code_new(&r, db, userid, (int)ttl,
		operator(&who, name, sizeof(name)), code, &expires, &e) == -1) {
		/* The user id was checked: a value refused is the --ttl. */
		if (e.status == 400) {
			warnx_("--ttl: %s", e.msg);
			rv = 2;
		} else
			rv = refused(&e);
	}
	else {
		irp_time(expires, t);
		printf("one-time enrolment code for %s, valid until %s:\n%s\n",
		    userid, t, code);
		OPENSSL_cleanse(code, sizeof(code));
		rv = 0;
	}
	close_reg(&r, db);
	return rv;
}

/* ---- certificates --------------------------------------------------- */

static int
print_cert(const struct db_cert *c, void *arg)
{
	char nb[IRP_TIME_LEN], na[IRP_TIME_LEN];

	(void)arg;
	irp_time(c->not_before, nb);
	irp_time(c->not_after, na);
	printf("%-32s %-24s %-7s %s %s %s\n", c->serial, c->userid,
	    c->revoked ? IRP_CERT_REVOKED :
	    (c->not_after < time(NULL) ? IRP_CERT_EXPIRED : IRP_CERT_VALID),
	    nb, na, c->fingerprint);
	return 0;
}

static int
cmd_cert_issue(const struct opts *o, int argc, char **argv)
{
	static const struct option lo[] = {
		{ "csr", required_argument, NULL, 'c' },
		{ "out", required_argument, NULL, 'o' },
		{ NULL, 0, NULL, 0 },
	};
	const char *csrpath = NULL, *out = NULL;
	char userid[IRP_USERID_MAX + 1], who[64];
	struct reg_actor op;
	char *csr;
	size_t len;
	struct reg r;
	struct db *db;
	struct reg_err e;
	struct ca_issued is;
	struct ca_err ce;
	int rv = 1;

	CMD_OPTS_BEGIN(lo)
	case 'c':
		csrpath = optarg;
		break;
	case 'o':
		out = optarg;
		break;
	CMD_OPTS_END()
	if (optind + 1 != argc || csrpath == NULL || out == NULL) {
		warnx_("usage: dirctl cert issue USERID --csr FILE --out FILE");
		return 2;
	}
	if (userid_arg(argv[optind], userid, sizeof(userid)) == -1)
		return 2;
	if ((csr = read_file(csrpath, &len)) == NULL)
		return 2;
	/* Refuse a bad CSR before touching the database. */
	if (ca_csr_check(csr, len, &ce) == -1) {
		warnx_("%s: %s", csrpath, ce.msg);
		free(csr);
		return 1;
	}
	if (open_reg(o, &r, &db) == -1) {
		free(csr);
		return 1;
	}
	if (reg_issue(&r, db, userid, csr, len, operator(&op, who,
		sizeof(who)), &is, &e) == -1) {
		warnx_("%s", e.msg);
		goto out;
	}
	if (write_file(out, is.cert_pem, strlen(is.cert_pem), 0644) == 0) {
		fprintf(stderr, "issued serial %s to %s\n", is.serial, userid);
		rv = 0;
	}
	ca_issued_clear(&is);
out:
	free(csr);
	close_reg(&r, db);
	return rv;
}

static int
print_serial(const char *serial, void *arg)
{
	(void)arg;
	printf("revoked %s\n", serial);
	return 0;
}

/* dirctl cert revoke --user USERID: every certificate of the user. */
static int
cert_revoke_user(const struct opts *o, const char *user, int reason)
{
	char userid[IRP_USERID_MAX + 1], name[64];
	struct reg_actor who;
	struct reg r;
	struct db *db;
	struct reg_err e;
	int n, rv = 1;

	if (userid_arg(user, userid, sizeof(userid)) == -1)
		return 2;
	if (open_reg(o, &r, &db) == -1)
		return 1;
	if (reg_revoke_user(&r, db, userid, reason,
		operator(&who, name, sizeof(name)), print_serial, NULL, &n,
		&e) == -1)
		rv = refused(&e);
	else {
		if (n == 0)
			printf("%s has no certificate to revoke\n", userid);
		rv = 0;
	}
	close_reg(&r, db);
	return rv;
}

static int
cmd_cert_revoke(const struct opts *o, int argc, char **argv)
{
	static const struct option lo[] = {
		{ "reason", required_argument, NULL, 'r' },
		{ "user", required_argument, NULL, 'u' },
		{ NULL, 0, NULL, 0 },
	};
	char serial[IRP_SERIAL_MAX + 1], name[64];
	const char *user = NULL;
	int reason = 0, rv = 1;
	struct reg_actor who;
	struct reg r;
	struct db *db;
	struct reg_err e;

	CMD_OPTS_BEGIN(lo)
	case 'r':
		if ((reason = ca_reason_parse(optarg)) < 0 ||
		    !reg_reason_allowed(reason, 1)) {
			warnx_("%s reason '%s' (unspecified, keyCompromise, "
			       "affiliationChanged, superseded, "
			       "cessationOfOperation, privilegeWithdrawn)",
			    reason < 0 ? "unknown" : "a certificate can not be "
			    "revoked for the", optarg);
			return 2;
		}
		break;
	case 'u':
		user = optarg;
		break;
	CMD_OPTS_END()
	if (user != NULL && optind == argc)
		return cert_revoke_user(o, user, reason);
	if (user != NULL || optind + 1 != argc) {
		warnx_("usage: dirctl cert revoke SERIAL [--reason R] | "
		    "cert revoke --user USERID [--reason R]");
		return 2;
	}
	if (irp_serial_normalize(argv[optind], serial, sizeof(serial)) == -1) {
		warnx_("'%s' is not a certificate serial (1 to %d hex digits)",
		    argv[optind], IRP_SERIAL_MAX);
		return 2;
	}
	if (open_reg(o, &r, &db) == -1)
		return 1;
	if (reg_revoke(&r, db, serial, reason,
		operator(&who, name, sizeof(name)), &e) == -1)
		rv = refused(&e);
	else {
		printf("revoked %s\n", serial);
		rv = 0;
	}
	close_reg(&r, db);
	return rv;
}

static int
cmd_cert(const struct opts *o, int argc, char **argv)
{
	char userid[IRP_USERID_MAX + 1];
	struct reg r;
	struct db *db;
	struct db_err de;
	int rv = 0;

	if (argc < 2) {
		warnx_("usage: dirctl cert issue|list|revoke ...");
		return 2;
	}
	if (strcmp(argv[1], "issue") == 0)
		return cmd_cert_issue(o, argc - 1, argv + 1);
	if (strcmp(argv[1], "revoke") == 0)
		return cmd_cert_revoke(o, argc - 1, argv + 1);
	if (strcmp(argv[1], "list") != 0) {
		warnx_("unknown cert command '%s'", argv[1]);
		return 2;
	}
	if (argc > 3) {
		warnx_("usage: dirctl cert list [USERID]");
		return 2;
	}
	if (argc == 3 && userid_arg(argv[2], userid, sizeof(userid)) == -1)
		return 2;
	if (open_reg(o, &r, &db) == -1)
		return 1;
	if (argc == 3) {
		struct db_user u;

		if (db_user_get(db, userid, &u, &de) == -1) {
			warnx_("%s", de.msg);
			rv = 1;
			goto out;
		}
	}
	if (db_cert_list(db, argc == 3 ? userid : NULL, print_cert, NULL,
		&de) == -1) {
		warnx_("%s", de.msg);
		rv = 1;
	}
out:
	close_reg(&r, db);
	return rv;
}

/* ---- CRL, PKCS#12, CA ------------------------------------------------- */

static int
cmd_crl(const struct opts *o, int argc, char **argv)
{
	static const struct option lo[] = {
		{ "out", required_argument, NULL, 'o' },
		{ NULL, 0, NULL, 0 },
	};
	const char *out = NULL;
	unsigned char *der = NULL;
	size_t len;
	struct reg r;
	struct db *db;
	struct reg_err e;
	struct db_err de;
	int rv = 1;

	CMD_OPTS_BEGIN(lo)
	case 'o':
		out = optarg;
		break;
	CMD_OPTS_END()
	if (optind != argc || out == NULL) {
		warnx_("usage: dirctl crl --out FILE");
		return 2;
	}
	if (open_reg(o, &r, &db) == -1)
		return 1;
	if (db_begin(db, &de) == -1) {
		warnx_("%s", de.msg);
		goto out;
	}
	if (reg_crl_build(&r, db, &der, &len, &e) == -1) {
		db_rollback(db);
		warnx_("%s", e.msg);
		goto out;
	}
	if (db_commit(db, &de) == -1) {
		warnx_("%s", de.msg);
		goto out;
	}
	if (write_file(out, der, len, 0644) == 0)
		rv = 0;
out:
	free(der);
	close_reg(&r, db);
	return rv;
}

static int
cmd_issue_p12(const struct opts *o, int argc, char **argv)
{
	static const struct option lo[] = {
		{ "out", required_argument, NULL, 'o' },
		{ "passphrase-file", required_argument, NULL, 'p' },
		{ NULL, 0, NULL, 0 },
	};
	const char *out = NULL, *pfile = NULL;
	char userid[IRP_USERID_MAX + 1], who[64];
	struct reg_actor op;
	char *pass;
	unsigned char *p12 = NULL;
	size_t len = 0;
	struct reg r;
	struct db *db;
	struct reg_err e;
	struct ca_issued is;
	int rv = 1;

	CMD_OPTS_BEGIN(lo)
	case 'o':
		out = optarg;
		break;
	case 'p':
		pfile = optarg;
		break;
	CMD_OPTS_END()
	if (optind + 1 != argc || out == NULL || pfile == NULL) {
		warnx_("usage: dirctl issue-p12 USERID --out FILE "
		       "--passphrase-file F");
		return 2;
	}
	if (userid_arg(argv[optind], userid, sizeof(userid)) == -1)
		return 2;
	if ((pass = read_secret(pfile)) == NULL)
		return 2;
	if (open_reg(o, &r, &db) == -1) {
		free_secret(pass);
		return 1;
	}
	if (reg_issue_p12(&r, db, userid, pass, operator(&op, who,
		sizeof(who)), &p12, &len, &is, &e) == -1) {
		warnx_("%s", e.msg);
		goto out;
	}
	/* Holds a private key: 0600. */
	if (write_file(out, p12, len, 0600) == 0) {
		fprintf(stderr, "issued serial %s to %s\n", is.serial, userid);
		rv = 0;
	}
	ca_issued_clear(&is);
out:
	if (p12 != NULL) {
		OPENSSL_cleanse(p12, len);
		free(p12);
	}
	free_secret(pass);
	close_reg(&r, db);
	return rv;
}

static int
cmd_ca(const struct opts *o, int argc, char **argv)
{
	char key[PATH_MAX + 16], cert[PATH_MAX + 16];
	struct reg r;
	struct ca *ca;
	struct ca_err ce;

	if (argc != 1) {
		warnx_("usage: dirctl --data DIR ca");
		return 2;
	}
	if (realpath(o->data, r.datadir) == NULL) {
		warnx_("%s: %s", o->data, strerror(errno));
		return 1;
	}
	reg_path(&r, REG_CA_KEY, key, sizeof(key));
	reg_path(&r, REG_CA_CERT, cert, sizeof(cert));
	if ((ca = ca_open(key, cert, &ce)) == NULL) {
		warnx_("%s", ce.msg);
		return 1;
	}
	printf("%s", ca_cert_pem(ca));
	printf("SHA-256 fingerprint: %s\n", ca_fingerprint(ca));
	ca_free(ca);
	return 0;
}

/* ---- audit ------------------------------------------------------------ */

static void
audit_problem(int64_t id, const char *what, void *arg)
{
	(void)arg;
	printf("row %" PRId64 ": %s\n", id, what);
}

static int
cmd_audit(const struct opts *o, int argc, char **argv)
{
	struct reg_audit_report rep;
	struct reg_err e;
	struct reg r;
	struct db *db;
	int rv = 1;

	if (argc != 2 || strcmp(argv[1], "verify") != 0) {
		warnx_("usage: dirctl audit verify");
		return 2;
	}
	if (open_reg(o, &r, &db) == -1)
		return 1;
	if (reg_audit_verify(&r, db, &rep, audit_problem, NULL, &e) == -1)
		warnx_("%s", e.msg);
	else if (rep.problems == 0) {
		printf("audit log intact: %" PRId64 " rows\n", rep.rows);
		rv = 0;
	} else
		printf("audit log damaged: %" PRId64 " problems in %" PRId64
		       " rows\n", rep.problems, rep.rows);
	close_reg(&r, db);
	return rv;
}

/* ---- key escrow ----------------------------------------------------- */

/*
 * dirctl escrow on --cert FILE | off | status |
 * export SERIAL --out FILE
 */
static int
cmd_escrow(const struct opts *o, int argc, char **argv)
{
	char name[64], fp[DB_FP_MAX], serial[IRP_SERIAL_MAX + 1];
	const char *sub = argc > 1 ? argv[1] : "";
	unsigned char *cms = NULL;
	char *pem = NULL;
	struct reg_actor who;
	struct reg_err e;
	struct reg r;
	struct db *db;
	size_t len;
	int rv = 1;

	if (strcmp(sub, "on") == 0 && argc == 4 &&
	    strcmp(argv[2], "--cert") == 0) {
		if ((pem = read_file(argv[3], &len)) == NULL)
			return 2;
	} else if (strcmp(sub, "export") == 0 && argc == 5 &&
	    strcmp(argv[3], "--out") == 0) {
		if (irp_serial_normalize(argv[2], serial, sizeof(serial)) ==
		    -1) {
			warnx_("'%s' is not a certificate serial", argv[2]);
			return 2;
		}
	} else if (!((strcmp(sub, "off") == 0 || strcmp(sub, "status") == 0) &&
	    argc == 2)) {
		warnx_("usage: dirctl escrow on --cert FILE | escrow off | "
		    "escrow status | escrow export SERIAL --out FILE");
		return 2;
	}
	if (open_reg(o, &r, &db) == -1) {
		free(pem);
		return 1;
	}
	operator(&who, name, sizeof(name));
	if (strcmp(sub, "on") == 0) {
		if (reg_escrow_on(&r, db, pem, &who, fp, &e) == -1)
			rv = e.status == 400 ? (warnx_("%s: %s", argv[3],
			    e.msg), 2) : refused(&e);
		else {
			printf("key escrow on: keys are deposited encrypted "
			       "to the officer %s\n", fp);
			rv = 0;
		}
	} else if (strcmp(sub, "off") == 0) {
		if (reg_escrow_off(&r, db, &who, &e) == -1)
			rv = refused(&e);
		else {
			printf("key escrow off (deposits made stay)\n");
			rv = 0;
		}
	} else if (strcmp(sub, "status") == 0) {
		free(pem);
		pem = NULL;
		if (reg_escrow_officer(&r, db, &pem, fp, &e) == 0) {
			printf("key escrow on, to the officer %s\n%s", fp,
			    pem);
			rv = 0;
		} else if (e.status == 404) {
			printf("key escrow off\n");
			rv = 0;
		} else
			rv = refused(&e);
	} else {
		if (reg_escrow_export(&r, db, serial, &who, &cms, &len,
		    &e) == -1)
			rv = refused(&e);
		else if (write_file(argv[4], cms, len, 0600) == 0) {
			printf("wrote the escrowed key of %s to %s (open it "
			       "with the officer's key: openssl cms "
			       "-decrypt)\n", serial, argv[4]);
			rv = 0;
		}
	}
	close_reg(&r, db);
	free(pem);
	free(cms);
	return rv;
}

/* ---- enrolment requests --------------------------------------------- */

static void
print_request(const struct db_request *q)
{
	char c[IRP_TIME_LEN], x[IRP_TIME_LEN];

	irp_time(q->created_at, c);
	irp_time(q->expires_at, x);
	printf("%-6lld %-8s %-32s %-8s %-15s %s %s%s%s\n", (long long)q->id,
	    q->status, q->userid, q->proof, q->source[0] ? q->source : "-", c,
	    x, q->serial[0] ? " " : "", q->serial);
}

static int
list_request(const struct db_request *q, void *arg)
{
	(void)arg;
	print_request(q);
	return 0;
}

/* A request id as given on the command line; 0 when it is not one. */
static int64_t
request_arg(const char *s)
{
	long long id;
	char *end;

	errno = 0;
	id = strtoll(s, &end, 10);
	if (*s < '1' || *s > '9' || *end != '\0' || errno != 0 || id <= 0) {
		warnx_("'%s' is not a request id (see dirctl request list)",
		    s);
		return 0;
	}
	return (int64_t)id;
}

static int
request_show(struct db *db, int64_t id)
{
	struct db_request q;
	struct db_err de;
	char t[IRP_TIME_LEN];

	if (db_request_by_id(db, id, &q, &de) == -1) {
		warnx_("%s", de.code == DB_ERR_NOTFOUND ? "no such request" :
		    de.msg);
		return 1;
	}
	irp_time(q.created_at, t);
	printf("request %lld\nuser     %s\nstatus   %s\nproof    %s\n"
	       "from     %s\nasked    %s\n", (long long)q.id, q.userid,
	    q.status, q.proof, q.source[0] ? q.source : "-", t);
	irp_time(q.expires_at, t);
	printf("expires  %s\n", t);
	if (q.decided_at != 0) {
		irp_time(q.decided_at, t);
		printf("decided  %s by %s\n", t, q.decided_by);
	}
	if (q.reason[0])
		printf("reason   %s\n", q.reason);
	if (q.serial[0])
		printf("serial   %s\n", q.serial);
	printf("%s", q.csr);
	db_request_clear(&q);
	return 0;
}

/*
 * dirctl request list [--all] | show ID | approve ID |
 * reject ID [--reason TEXT]
 */
static int
cmd_request(const struct opts *o, int argc, char **argv)
{
	char name[64];
	const char *sub = argc > 1 ? argv[1] : "";
	const char *reason = NULL;
	struct db_request q;
	struct reg_actor who;
	struct reg_err e;
	struct db_err de;
	struct reg r;
	struct db *db;
	int64_t id = 0;
	int all = 0, rv = 1;

	if (strcmp(sub, "list") == 0 && (argc == 2 || (argc == 3 &&
	    strcmp(argv[2], "--all") == 0)))
		all = argc == 3;
	else if ((strcmp(sub, "show") == 0 || strcmp(sub, "approve") == 0) &&
	    argc == 3) {
		if ((id = request_arg(argv[2])) == 0)
			return 2;
	} else if (strcmp(sub, "reject") == 0 && (argc == 3 || (argc == 5 &&
	    strcmp(argv[3], "--reason") == 0))) {
		if ((id = request_arg(argv[2])) == 0)
			return 2;
		reason = argc == 5 ? argv[4] : NULL;
	} else {
		warnx_("usage: dirctl request list [--all] | request show ID | "
		    "request approve ID | request reject ID [--reason TEXT]");
		return 2;
	}
	if (open_reg(o, &r, &db) == -1)
		return 1;
	operator(&who, name, sizeof(name));
	if (strcmp(sub, "list") == 0) {
		if (db_request_list(db, all, list_request, NULL, &de) == -1)
			warnx_("%s", de.msg);
		else
			rv = 0;
	} else if (strcmp(sub, "show") == 0)
		rv = request_show(db, id);
	else if (strcmp(sub, "approve") == 0) {
		if (reg_request_approve(&r, db, id, &who, &q, &e) == -1)
			rv = refused(&e);
		else {
			printf("approved request %lld: certificate %s issued "
			       "to %s\n", (long long)id, q.serial, q.userid);
			db_request_clear(&q);
			rv = 0;
		}
	} else {
		if (reg_request_reject(&r, db, id, reason, &who, &e) == -1)
			rv = e.status == 400 ? (warnx_("--reason: %s", e.msg),
			    2) : refused(&e);
		else {
			printf("rejected request %lld\n", (long long)id);
			rv = 0;
		}
	}
	close_reg(&r, db);
	return rv;
}

/* ---- main -------------------------------------------------------------- */

static const struct cmd {
	const char *name;
	int (*fn)(const struct opts *, int, char **);
	const char *synopsis;
} cmds[] = {
	{ "init", cmd_init, "init --domain DOMAIN [--host NAME]... "
			    "[--key-type p256|p384|rsa3072|ed25519]\n"
			    "       [--ca-days Nd]" },
	{ "migrate", cmd_migrate, "migrate" },
	{ "user", cmd_user, "user add USERID --name NAME [--email E] [--admin] "
			    "[--password-file F]\n"
			    "  user list | user disable USERID | "
			    "user enable USERID\n"
			    "  user passwd USERID --password-file F\n"
			    "  user policy USERID auto|approve|default" },
	{ "code", cmd_code, "code USERID [--ttl DURATION]" },
	{ "escrow", cmd_escrow, "escrow on --cert FILE | escrow off | "
				"escrow status\n"
				"  escrow export SERIAL --out FILE" },
	{ "request", cmd_request, "request list [--all] | request show ID\n"
				  "  request approve ID | "
				  "request reject ID [--reason TEXT]" },
	{ "federation", cmd_federation,
	    "federation add DOMAIN (--ca-fingerprint SHA256 | --dane | "
	    "--refuse)\n"
	    "  federation remove DOMAIN | federation list" },
	{ "cert", cmd_cert, "cert issue USERID --csr FILE --out FILE\n"
			    "  cert list [USERID] | "
			    "cert revoke SERIAL [--reason R]\n"
			    "  cert revoke --user USERID [--reason R]   every "
			    "certificate of a user" },
	{ "crl", cmd_crl, "crl --out FILE" },
	{ "issue-p12", cmd_issue_p12,
	    "issue-p12 USERID --out FILE --passphrase-file F" },
	{ "ca", cmd_ca, "ca" },
	{ "audit", cmd_audit, "audit verify" },
};

static void
usage(FILE *fp)
{
	size_t i;

	fprintf(fp, "usage: dirctl --data DIR [--dsn CONNINFO] COMMAND ...\n\n"
		    "commands:\n");
	for (i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
		fprintf(fp, "  %s\n", cmds[i].synopsis);
}

int
main(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "data", required_argument, NULL, 'D' },
		{ "dsn", required_argument, NULL, 'd' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	struct opts o = { getenv("DIR_DATA"), getenv("DIR_DSN") };
	size_t i;
	int ch;

	while ((ch = getopt_long(argc, argv, "+D:d:hV", lo, NULL)) != -1) {
		switch (ch) {
		case 'D':
			o.data = optarg;
			break;
		case 'd':
			o.dsn = optarg;
			break;
		case 'h':
			usage(stdout);
			return 0;
		case 'V':
			printf("dirctl %s\n", DIR_VERSION);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	argc -= optind;
	argv += optind;
	if (argc < 1) {
		usage(stderr);
		return 2;
	}
	if (o.data == NULL) {
		warnx_("no data directory: give --data DIR");
		return 2;
	}
	for (i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
		if (strcmp(argv[0], cmds[i].name) == 0)
			return cmds[i].fn(&o, argc, argv);
	warnx_("unknown command '%s'", argv[0]);
	usage(stderr);
	return 2;
}

/*
 * test_conf.c - dird.conf parsing: defaults, bounds, file:line errors,
 * and a round trip through conf_write.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conf.h"
#include "tap.h"

static void
write_text(const char *path, const char *text)
{
	FILE *fp = fopen(path, "w");

	if (fp == NULL) {
		perror(path);
		exit(2);
	}
	fputs(text, fp);
	fclose(fp);
}

static const struct {
	const char *text;
	const char *error; /* substring expected, NULL: accepted */
} cases[] = {
	{ "[dird]\ncert_days = 30\n", NULL },
	{ "[dird]\n\n# comment\ncert_days = 0\n", ":4: cert_days must be" },
	{ "[dird]\ncert_days = 12abc\n", "cert_days must be an integer" },
	{ "[dird]\nworkers = 9999\n", "workers must be" },
	{ "[dird]\nnonsense = 1\n", ":2: unknown key 'nonsense'" },
	{ "[other]\nworkers = 2\n", "unknown section [other]" },
	{ "[dird]\nttl_min = 600\nttl_max = 60\n", "ttl_min (600) is above" },
	{ "[dird]\nthis line has no equals sign\n", "syntax error" },
	{ "[dird]\nlisten = 127.0.0.1:4604\nlisten = [::1]:4604\n", NULL },
	{ "[dird]\ncache = shared\n", NULL },
	{ "[dird]\ncache = sometimes\n",
	    ":2: cache must be one of auto|local|shared|off, not 'sometimes'" },
	{ "[dird]\ncache = LOCAL\n", "cache must be one of" },
	{ "[dird]\ncache_entries = 8\n", "cache_entries must be" },
};

int
main(void)
{
	char dir[] = "/tmp/test_conf.XXXXXX", path[256], path2[256];
	char errbuf[512];
	struct conf c, d;
	size_t i;
	int rc;

	if (mkdtemp(dir) == NULL)
		return 2;
	snprintf(path, sizeof(path), "%s/dird.conf", dir);
	snprintf(path2, sizeof(path2), "%s/written.conf", dir);

	conf_defaults(&c);
	check(c.cert_days == 365 && c.workers == 4 && c.nlisten == 1 &&
		  strcmp(c.listen[0], "[::]:4604") == 0 &&
		  c.body_max == 65536 && c.backup_max == 1048576,
	    "defaults");

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		conf_defaults(&c);
		write_text(path, cases[i].text);
		errbuf[0] = '\0';
		rc = conf_load(path, &c, errbuf, sizeof(errbuf));
		if (cases[i].error == NULL)
			check(rc == 0, cases[i].text);
		else
			check(rc == -1 && strstr(errbuf, cases[i].error) != NULL,
			    errbuf);
	}

	conf_defaults(&c);
	write_text(path, "[dird]\nlisten = 127.0.0.1:4604\nlisten = [::1]:4604\n"
			 "cert_days = 30\n");
	rc = conf_load(path, &c, errbuf, sizeof(errbuf));
	check(rc == 0 && c.nlisten == 2 && c.cert_days == 30 &&
		  strcmp(c.listen[1], "[::1]:4604") == 0,
	    "listen lines replace the default and accumulate");

	rc = conf_set(&c, "workers", "8", errbuf, sizeof(errbuf));
	check(rc == 0 && c.workers == 8, "conf_set overrides");
	rc = conf_set(&c, "workers", "-1", errbuf, sizeof(errbuf));
	check(rc == -1 && c.workers == 8, "conf_set refuses out of range");

	snprintf(c.domain, sizeof(c.domain), "example.org");
	rc = conf_write(path2, &c, errbuf, sizeof(errbuf));
	conf_defaults(&d);
	rc = rc || conf_load(path2, &d, errbuf, sizeof(errbuf));
	check(rc == 0 && memcmp(&c, &d, sizeof(c)) == 0,
	    "conf_write then conf_load gives the same configuration");
	rc = conf_write(path2, &c, errbuf, sizeof(errbuf));
	check(rc == -1, "conf_write refuses to overwrite");

	unlink(path);
	unlink(path2);
	rmdir(dir);
	return tap_done();
}

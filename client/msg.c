/*
 * msg.c - checks of one decoded PeerTLS message (see msg.h).
 */
#include <string.h>

#include "msg.h"

json_t *
msg_decode(const unsigned char *p, size_t len, const char **type,
    const char **why)
{
	json_error_t jerr;
	json_t *m;

	*type = NULL;
	*why = NULL;
	m = json_loadb((const char *)p, len, JSON_REJECT_DUPLICATES, &jerr);
	if (m == NULL || !json_is_object(m)) {
		json_decref(m);
		*why = "a frame is not a JSON object";
		return NULL;
	}
	if ((*type = json_string_value(json_object_get(m, "type"))) == NULL) {
		json_decref(m);
		*why = "a message has no type";
		return NULL;
	}
	return m;
}

int
msg_id(json_t *m, uint64_t *id)
{
	json_t *v = json_object_get(m, "id");

	if (!json_is_integer(v) || json_integer_value(v) < 1)
		return -1;
	*id = (uint64_t)json_integer_value(v);
	return 0;
}

int
msg_safe_name(const char *in, char *out, size_t len)
{
	const char *b = strrchr(in, '/');
	size_t i, n;

	b = b ? b + 1 : in;
	n = strlen(b);
	if (n == 0 || n >= len || b[0] == '.')
		return -1;
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)b[i];

		out[i] = (c < 0x20 || c == 0x7f || c == '\\') ? '_' : (char)c;
	}
	out[n] = '\0';
	return 0;
}

int
msg_file_offer(json_t *m, struct msg_file_offer *fo, const char **why)
{
	json_t *size = json_object_get(m, "size");
	size_t i;

	*why = NULL;
	fo->name = json_string_value(json_object_get(m, "name"));
	fo->sha256 = json_string_value(json_object_get(m, "sha256"));
	if (msg_id(m, &fo->id) == -1 || fo->name == NULL ||
	    fo->sha256 == NULL || strlen(fo->sha256) != 64 ||
	    !json_is_integer(size) || json_integer_value(size) < 0 ||
	    (uint64_t)json_integer_value(size) > MSG_FILE_SIZE_MAX) {
		*why = "malformed file_offer";
		return -1;
	}
	/* strlen is 64, so no NUL among them: strchr never matches it. */
	for (i = 0; i < 64; i++)
		if (strchr("0123456789abcdef", fo->sha256[i]) == NULL) {
			*why = "file_offer sha256 is not lower-case hex";
			return -1;
		}
	fo->size = (uint64_t)json_integer_value(size);
	return 0;
}

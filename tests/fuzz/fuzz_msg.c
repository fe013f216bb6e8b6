/*
 * fuzz_msg.c - the checks session.c applies to one decoded PeerTLS
 * message (client/msg.h): the JSON object and its type, ids, file offers
 * and the file names a peer proposes.
 */
#include "fuzz.h"
#include "msg.h"

static void
check_safe_name(const char *in)
{
	char out[256];
	size_t i, n;

	if (msg_safe_name(in, out, sizeof(out)) == -1)
		return;
	n = strlen(out);
	/* Never a path, a hidden file, or a control character. */
	FUZZ_CHECK(n > 0 && n < sizeof(out) && out[0] != '.');
	FUZZ_CHECK(strchr(out, '/') == NULL && strchr(out, '\\') == NULL);
	for (i = 0; i < n; i++)
		FUZZ_CHECK((unsigned char)out[i] >= 0x20 &&
		    (unsigned char)out[i] != 0x7f);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct msg_file_offer fo;
	const char *type, *why;
	uint64_t id;
	json_t *m;
	char *s;
	size_t i;

	if ((m = msg_decode(data, size, &type, &why)) == NULL) {
		FUZZ_CHECK(why != NULL && type == NULL);
	} else {
		FUZZ_CHECK(json_is_object(m) && type != NULL && why == NULL);
		if (msg_id(m, &id) == 0)
			FUZZ_CHECK(id >= 1 && id <= INT64_MAX);
		if (msg_file_offer(m, &fo, &why) == 0) {
			FUZZ_CHECK(fo.id >= 1 && fo.size <= MSG_FILE_SIZE_MAX);
			FUZZ_CHECK(strlen(fo.sha256) == 64);
			for (i = 0; i < 64; i++)
				FUZZ_CHECK(strchr("0123456789abcdef",
				    fo.sha256[i]) != NULL);
			check_safe_name(fo.name);
		} else
			FUZZ_CHECK(why != NULL);
		json_decref(m);
	}
	/* File names straight from the bytes too. */
	if ((s = fuzz_cstr(data, size)) != NULL) {
		check_safe_name(s);
		free(s);
	}
	return 0;
}

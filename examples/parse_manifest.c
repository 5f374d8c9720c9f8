/* SPDX-License-Identifier: Apache-2.0 */
/*
 * parse_manifest: print where each object of a manifest.json would be
 * restored, using only the stable core of the libtrs API.
 *
 *     cc parse_manifest.c $(pkg-config --cflags --libs libtrs) -o parse_manifest
 *     ./parse_manifest manifest.json
 *
 * Output: "<N> objects", then one destination key per line.
 */
#include <stdio.h>
#include <stdlib.h>

#include <trs.h>

static char *read_file(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return NULL;
	size_t cap = 65536, used = 0;
	char *buf = malloc(cap);
	while (buf) {
		used += fread(buf + used, 1, cap - used, f);
		if (used < cap)
			break;
		char *bigger = realloc(buf, cap * 2);
		if (!bigger) {
			free(buf);
			buf = NULL;
			break;
		}
		buf = bigger;
		cap *= 2;
	}
	if (buf && ferror(f)) {
		free(buf);
		buf = NULL;
	}
	fclose(f);
	*len = used;
	return buf;
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: %s MANIFEST.json\n", argv[0]);
		return 2;
	}
	size_t len;
	char *json = read_file(argv[1], &len);
	if (!json) {
		perror(argv[1]);
		return 1;
	}

	trs_error err = TRS_ERROR_INIT;
	trs_manifest *m;
	if (trs_manifest_parse(json, len, &m, &err) < 0) {
		fprintf(stderr, "%s: %s\n", argv[1], err.message);
		trs_error_clear(&err);
		free(json);
		return 1;
	}
	free(json); /* the manifest owns copies of everything it needs */

	size_t n = trs_manifest_object_count(m);
	printf("%zu objects\n", n);
	for (size_t i = 0; i < n; i++) {
		const trs_manifest_object *obj = trs_manifest_object_at(m, i);
		char key[1100]; /* S3 keys are at most 1024 bytes */
		size_t need = trs_manifest_dest_key(obj, key, sizeof(key));
		if (need >= sizeof(key)) {
			/* Longer than S3 allows: still show it whole. */
			char *big = malloc(need + 1);
			if (!big)
				continue;
			trs_manifest_dest_key(obj, big, need + 1);
			printf("%s\n", big);
			free(big);
		} else {
			printf("%s\n", key);
		}
	}
	trs_manifest_free(m);
	return 0;
}

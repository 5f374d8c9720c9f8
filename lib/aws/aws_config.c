/* SPDX-License-Identifier: Apache-2.0 */
/* The AWS shared config and credentials files: the INI dialect and one profile's settings. */
#include "aws_config.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define MAX_FILE_BYTES (1u << 20)

const char *trs__env(const char *name)
{
	const char *v = getenv(name);
	return v && *v ? v : NULL;
}

char *trs__trim(char *s)
{
	while (isspace((unsigned char)*s))
		s++;
	char *e = s + strlen(s);
	while (e > s && isspace((unsigned char)e[-1]))
		*--e = '\0';
	return s;
}

char *trs__read_small_file(const char *path, size_t *len, trs_error *err)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return NULL;
	trs__buf b = TRS_BUF_INIT;
	char chunk[4096];
	size_t n;
	int rc = 0;
	while (rc == 0 && (n = fread(chunk, 1, sizeof(chunk), f)) > 0) {
		if (b.len + n > MAX_FILE_BYTES)
			rc = trs__error_set(err, TRS_ELIMIT, "%s is larger than %u bytes", TRS__SHORT(path),
					    MAX_FILE_BYTES);
		else
			rc = trs__buf_put(&b, chunk, n, err);
	}
	fclose(f);
	if (rc == 0)
		rc = trs__buf_puts(&b, "", err);
	if (rc < 0) {
		trs__buf_free(&b);
		return NULL;
	}
	if (len)
		*len = b.len;
	return b.data;
}

/* path, or $HOME/<home_rel>; "~/" in path is expanded too. */
static char *config_path(const char *env_name, const char *home_rel, trs_error *err)
{
	const char *p = trs__env(env_name);
	const char *home = trs__env("HOME");
	trs__buf b = TRS_BUF_INIT;
	int rc;
	if (p && strncmp(p, "~/", 2) == 0 && home)
		rc = trs__buf_printf(&b, err, "%s/%s", home, p + 2);
	else if (p)
		rc = trs__buf_puts(&b, p, err);
	else if (home)
		rc = trs__buf_printf(&b, err, "%s/%s", home, home_rel);
	else
		return NULL;
	if (rc < 0) {
		trs__buf_free(&b);
		return NULL;
	}
	return b.data;
}

/* "[profile  name]", "[ name ]" and "[profile default]" all occur in the wild. */
static void section_name(char *name, char *norm, size_t size)
{
	name = trs__trim(name);
	if (strncmp(name, "profile", 7) == 0 && isspace((unsigned char)name[7])) {
		const char *rest = trs__trim(name + 8);
		if (strcmp(rest, "default") == 0)
			snprintf(norm, size, "default");
		else
			snprintf(norm, size, "profile %s", rest);
	} else {
		snprintf(norm, size, "%s", name);
	}
}

static int kv_add(trs_kv **kv, size_t *n, const char *key, const char *value, trs_error *err)
{
	trs_kv *grown = realloc(*kv, (*n + 1) * sizeof(**kv));
	if (!grown)
		return trs__error_set(err, TRS_ENOMEM, "out of memory reading the AWS config files");
	*kv = grown;
	char *k = trs__strdup(key, err);
	char *v = k ? trs__strdup(value, err) : NULL;
	if (!v) {
		free(k);
		return TRS_ENOMEM;
	}
	for (char *c = k; *c; c++)
		*c = (char)tolower((unsigned char)*c);
	grown[*n].key = k;
	grown[(*n)++].value = v;
	return 0;
}

int trs__ini_section(const char *text, const char *section, trs_kv **kv, size_t *n, bool *found, trs_error *err)
{
	char *copy = trs__strdup(text, err);
	if (!copy)
		return TRS_ENOMEM;
	bool in_section = false, nested = false;
	int rc = 0;
	char *save = NULL;
	for (char *line = strtok_r(copy, "\n", &save); rc == 0 && line; line = strtok_r(NULL, "\n", &save)) {
		bool indented = *line == ' ' || *line == '\t';
		char *l = trs__trim(line);
		if (*l == '#' || *l == ';' || !*l)
			continue;
		if (*l == '[') {
			char *end = strchr(l, ']');
			if (!end)
				continue;
			*end = '\0';
			char norm[512];
			section_name(l + 1, norm, sizeof(norm));
			in_section = strcmp(norm, section) == 0;
			nested = false;
			if (in_section && found)
				*found = true;
			continue;
		}
		if (!in_section)
			continue;
		char *eq = strchr(l, '=');
		if (!eq)
			continue;
		*eq = '\0';
		char *key = trs__trim(l), *value = trs__trim(eq + 1);
		if (indented && nested)
			continue; /* a nested setting ("s3 =" then indented lines) */
		nested = !*value;
		/* The first occurrence wins, within the section and over a later file. */
		bool dup = false;
		for (size_t i = 0; i < *n && !dup; i++)
			dup = strcasecmp((*kv)[i].key, key) == 0;
		if (!dup)
			rc = kv_add(kv, n, key, value, err);
	}
	free(copy);
	return rc;
}

const char *trs__aws_profile_name(const trs_ctx *ctx)
{
	const char *p = TRS_CTX(ctx)->profile;
	if (!p || !*p)
		p = trs__env("AWS_PROFILE");
	if (!p)
		p = trs__env("AWS_DEFAULT_PROFILE");
	return p ? p : "default";
}

bool trs__aws_profile_explicit(const trs_ctx *ctx)
{
	const char *p = TRS_CTX(ctx)->profile;
	return (p && *p) || trs__env("AWS_PROFILE") != NULL;
}

int trs__aws_profile_load(const char *name, trs__aws_profile *out, trs_error *err)
{
	memset(out, 0, sizeof(*out));
	out->name = trs__strdup(name, err);
	if (!out->name)
		return TRS_ENOMEM;
	out->cred_path = config_path("AWS_SHARED_CREDENTIALS_FILE", ".aws/credentials", err);
	out->conf_path = config_path("AWS_CONFIG_FILE", ".aws/config", err);
	int rc = 0;
	/* The credentials file first: its values win. */
	for (int file = 0; rc == 0 && file < 2; file++) {
		const char *path = file == 0 ? out->cred_path : out->conf_path;
		if (!path)
			continue;
		trs_error ferr = TRS_ERROR_INIT;
		char *text = trs__read_small_file(path, NULL, &ferr);
		if (!text) {
			if (ferr.code)
				rc = trs__error_set(err, ferr.code, "%s", ferr.message);
			continue;
		}
		char section[512];
		if (file == 1 && strcmp(name, "default") != 0)
			snprintf(section, sizeof(section), "profile %s", name);
		else
			snprintf(section, sizeof(section), "%s", name);
		rc = trs__ini_section(text, section, &out->settings, &out->nsettings, &out->found, err);
		free(text);
	}
	if (rc < 0)
		trs__aws_profile_free(out);
	return rc;
}

const char *trs__aws_profile_get(const trs__aws_profile *p, const char *key)
{
	for (size_t i = 0; p && i < p->nsettings; i++)
		if (strcmp(p->settings[i].key, key) == 0)
			return *p->settings[i].value ? p->settings[i].value : NULL;
	return NULL;
}

void trs__aws_profile_free(trs__aws_profile *p)
{
	if (!p)
		return;
	for (size_t i = 0; i < p->nsettings; i++) {
		char *v = (char *)p->settings[i].value;
		memset(v, 0, strlen(v)); /* secrets among them */
		free(v);
		free((char *)p->settings[i].key);
	}
	free(p->settings);
	free(p->name);
	free(p->cred_path);
	free(p->conf_path);
	memset(p, 0, sizeof(*p));
}

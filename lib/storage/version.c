/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Newest wins: the rule that decides whether a write may replace what stands
 * at its key (include/trs/storage.h, trs_write_condition). Every backend
 * that writes conditionally applies this one rule; only how it reads the
 * key and keeps the decision atomic differs (S3's If-Match, the fs
 * backend's lock).
 *
 * A version is the source object's LastModified (the manifest's
 * creation_time) and its ETag. What stands at a key carries the version an
 * earlier restore wrote: the OriginalCreationTime / OriginalETag tags, or
 * the original-creation-time / original-etag user metadata (a restore
 * writes both; metadata alone when the tags were full).
 */
#include "internal.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

static int digits(const char **p, int n, int *out)
{
	int v = 0;
	for (int i = 0; i < n; i++, (*p)++) {
		if (!isdigit((unsigned char)**p))
			return -1;
		v = v * 10 + (**p - '0');
	}
	*out = v;
	return 0;
}

/* Days from 1970-01-01 to y-m-d of the proleptic Gregorian calendar (Howard Hinnant's days_from_civil). */
static int64_t days_from_civil(int64_t y, int m, int d)
{
	y -= m <= 2;
	int64_t era = (y >= 0 ? y : y - 399) / 400;
	int64_t yoe = y - era * 400;
	int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

/*
 * "YYYY-MM-DD HH:MM:SS" as the source side writes it (Python's
 * strftime('%Y-%m-%d %H:%M:%S') of an S3 LastModified, in UTC), and the ISO
 * 8601 forms around it: a 'T' for the space, fractions of a second
 * (dropped: the source's resolution is one second), and 'Z' or a +hh:mm,
 * +hhmm or +hh offset. No zone means UTC. Unix seconds, or -1 when `s` is
 * none of these.
 */
int trs__source_time_parse(const char *s, int64_t *out)
{
	int y, mo, d, h, mi, sec;
	const char *p = s;
	while (*p == ' ')
		p++;
	if (digits(&p, 4, &y) < 0 || *p++ != '-' || digits(&p, 2, &mo) < 0 || *p++ != '-' || digits(&p, 2, &d) < 0)
		return -1;
	if (*p != ' ' && *p != 'T' && *p != 't')
		return -1;
	p++;
	if (digits(&p, 2, &h) < 0 || *p++ != ':' || digits(&p, 2, &mi) < 0 || *p++ != ':' || digits(&p, 2, &sec) < 0)
		return -1;
	if (*p == '.' || *p == ',') {
		p++;
		if (!isdigit((unsigned char)*p))
			return -1;
		while (isdigit((unsigned char)*p))
			p++;
	}
	int offset = 0;
	if (*p == 'Z' || *p == 'z') {
		p++;
	} else if (*p == '+' || *p == '-') {
		int sign = *p++ == '-' ? -1 : 1, oh, om = 0;
		if (digits(&p, 2, &oh) < 0)
			return -1;
		if (*p == ':')
			p++;
		if (isdigit((unsigned char)*p) && digits(&p, 2, &om) < 0)
			return -1;
		if (oh > 23 || om > 59)
			return -1;
		offset = sign * (oh * 3600 + om * 60);
	} else if (!strncmp(p, " UTC", 4) || !strncmp(p, " GMT", 4)) {
		p += 4;
	}
	while (*p == ' ')
		p++;
	static const int mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	if (*p || mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1] || h > 23 || mi > 59 || sec > 60)
		return -1;
	*out = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec - offset;
	return 0;
}

/* An ETag without its quotes, lower-cased, into out (empty when NULL or too long). */
static void etag_norm(const char *etag, char *out, size_t size)
{
	out[0] = '\0';
	if (!etag)
		return;
	size_t len = strlen(etag);
	if (len >= 2 && etag[0] == '"' && etag[len - 1] == '"') {
		etag++;
		len -= 2;
	}
	if (len >= size)
		return;
	for (size_t i = 0; i < len; i++)
		out[i] = (char)tolower((unsigned char)etag[i]);
	out[len] = '\0';
}

static const char *find_kv(const trs_kv *kv, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (kv[i].key && kv[i].value && !strcasecmp(kv[i].key, name))
			return kv[i].value;
	return NULL;
}

/* The version an earlier restore recorded on `info`: its time (NULL when none) and ETag. */
void trs__recorded_version(const trs_object_info *info, const char **time, const char **etag)
{
	*time = find_kv(info->metadata, info->nmetadata, "original-creation-time");
	if (!*time)
		*time = find_kv(info->tags, info->ntags, "OriginalCreationTime");
	*etag = find_kv(info->metadata, info->nmetadata, "original-etag");
	if (!*etag)
		*etag = find_kv(info->tags, info->ntags, "OriginalETag");
}

TRS_EXTERN(int) trs_write_condition_check(const trs_write_condition *cond, const trs_object_info *current)
{
	if (!cond || !current)
		return TRS_WRITTEN;
	const char *their_time, *their_etag;
	trs__recorded_version(current, &their_time, &their_etag);
	int64_t ours, theirs;
	/* What cannot be compared is replaced, as before versions were compared: an object this
	 * library did not write, or an entry without a time. */
	if (!cond->source_time || trs__source_time_parse(cond->source_time, &ours) < 0)
		return TRS_WRITTEN;
	if (!their_time || trs__source_time_parse(their_time, &theirs) < 0)
		return TRS_WRITTEN;
	if (ours != theirs)
		return ours > theirs ? TRS_WRITTEN : TRS_KEPT_NEWER;
	/* One second, two versions: the larger ETag wins, so that every consumer, in every region and
	 * whatever the order of arrival, keeps the same one. */
	char a[80], b[80];
	etag_norm(cond->source_etag, a, sizeof(a));
	etag_norm(their_etag, b, sizeof(b));
	int cmp = strcmp(a, b);
	return cmp == 0 ? TRS_ALREADY_CURRENT : cmp > 0 ? TRS_WRITTEN : TRS_KEPT_NEWER;
}

const char *trs__write_outcome_name(int outcome)
{
	switch (outcome) {
	case TRS_WRITTEN: return "written";
	case TRS_KEPT_NEWER: return "kept_newer";
	case TRS_ALREADY_CURRENT: return "already_current";
	case TRS_WRITTEN_UNCHECKED: return "written_unchecked";
	default: return "failed";
	}
}

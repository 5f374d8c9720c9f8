/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The service's region, checked once where the context takes it. The region
 * picks which of a manifest's targets are ours, so a typo (eu-west-l)
 * restores nothing, quietly, everywhere: a region that is not shaped like an
 * AWS region name is refused, with the nearest real one named. A region of
 * the right shape that we do not know (one AWS opened after this release)
 * is taken as it is.
 */
#include "internal.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

/* The regions known when this was written; only for the suggestion. */
static const char *const known[] = {
	"us-east-1",      "us-east-2",      "us-west-1",      "us-west-2",      "af-south-1",     "ap-east-1",
	"ap-east-2",      "ap-south-1",     "ap-south-2",     "ap-northeast-1", "ap-northeast-2", "ap-northeast-3",
	"ap-southeast-1", "ap-southeast-2", "ap-southeast-3", "ap-southeast-4", "ap-southeast-5", "ap-southeast-6",
	"ap-southeast-7", "ca-central-1",   "ca-west-1",      "eu-central-1",   "eu-central-2",   "eu-west-1",
	"eu-west-2",      "eu-west-3",      "eu-south-1",     "eu-south-2",     "eu-north-1",     "il-central-1",
	"me-south-1",     "me-central-1",   "mx-central-1",   "sa-east-1",      "us-gov-east-1",  "us-gov-west-1",
	"cn-north-1",     "cn-northwest-1", "eusc-de-east-1",
};

/* Lower-case words joined by '-', at least two of them, then '-' and a number of one or two digits. */
bool trs__region_shaped(const char *r)
{
	size_t len = strlen(r), words = 0;
	if (len < 4 || len > 32)
		return false;
	const char *p = r;
	for (;;) {
		const char *start = p;
		while (*p >= 'a' && *p <= 'z')
			p++;
		if (p == start || *p != '-')
			return false;
		words++;
		p++;
		if (isdigit((unsigned char)*p))
			break;
	}
	const char *num = p;
	while (isdigit((unsigned char)*p))
		p++;
	return words >= 2 && !*p && p - num <= 2;
}

/* Levenshtein distance of two short strings (both at most 32 bytes here). */
static size_t distance(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	if (la > 64 || lb > 64)
		return SIZE_MAX;
	size_t row[65];
	for (size_t j = 0; j <= lb; j++)
		row[j] = j;
	for (size_t i = 1; i <= la; i++) {
		size_t diag = row[0];
		row[0] = i;
		for (size_t j = 1; j <= lb; j++) {
			size_t up = row[j];
			size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
			size_t best = diag + cost;
			if (row[j] + 1 < best)
				best = row[j] + 1;
			if (row[j - 1] + 1 < best)
				best = row[j - 1] + 1;
			row[j] = best;
			diag = up;
		}
	}
	return row[lb];
}

const char *trs__region_nearest(const char *r)
{
	char lower[65];
	size_t n = 0;
	for (; r[n] && n < sizeof(lower) - 1; n++)
		lower[n] = (char)tolower((unsigned char)r[n]);
	lower[n] = '\0';
	const char *best = known[0];
	size_t best_d = SIZE_MAX;
	for (size_t i = 0; i < TRS_ARRAY_SIZE(known); i++) {
		size_t d = distance(lower, known[i]);
		if (d < best_d) {
			best_d = d;
			best = known[i];
		}
	}
	return best;
}

int trs__region_check(const char *region, const char *from, trs_error *err)
{
	if (!*region || trs__region_shaped(region))
		return 0;
	return trs__error_set(err, TRS_EINVAL,
			      "region '%.64s' (%s) is not an AWS region name, which looks like eu-west-1; did you mean "
			      "%s? Only the manifest's targets in this region are restored, so a wrong one restores "
			      "nothing",
			      region, from, trs__region_nearest(region));
}

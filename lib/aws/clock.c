/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The clock AWS signs by. SigV4 refuses a request whose time is more than
 * 15 minutes from the service's (RequestTimeTooSkewed, RequestExpired,
 * InvalidSignatureException "Signature expired"), and a host whose clock
 * drifted would fail every request until someone fixed it. As the AWS SDKs
 * do, the answer's Date header tells the service's time: the client signs
 * with that offset from then on, retries, and says once that the clock is
 * wrong.
 */
#include "clock.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MEANINGFUL_S 60   /* offsets smaller than this change nothing SigV4 cares about */
#define SIGNATURE_S 240   /* a signature error is a clock's only when the clocks are this far apart */

static bool skew_code(const char *code, bool *signature)
{
	static const char *const skew[] = {"RequestTimeTooSkewed", "RequestExpired", "RequestInTheFuture"};
	static const char *const sig[] = {"InvalidSignatureException", "SignatureDoesNotMatch"};
	*signature = false;
	for (size_t i = 0; code && i < TRS_ARRAY_SIZE(skew); i++)
		if (!strcmp(code, skew[i]))
			return true;
	for (size_t i = 0; code && i < TRS_ARRAY_SIZE(sig); i++)
		if (!strcmp(code, sig[i]))
			return *signature = true;
	return false;
}

bool trs__aws_clock_correct(trs__http *http, const trs__http_response *resp, const char *code, const char *service)
{
	bool signature;
	if (!skew_code(code, &signature))
		return false;
	const char *date = trs__http_header(resp, "Date");
	time_t theirs = date ? curl_getdate(date, NULL) : -1;
	if (theirs < 0)
		return false;
	long offset = (long)(theirs - time(NULL));
	long was = trs__http_clock_offset(http);
	if (labs(offset - was) < MEANINGFUL_S || (signature && labs(offset) < SIGNATURE_S))
		return false; /* not the clock: the offset in use already matches, or the key is wrong */
	trs__http_set_clock_offset(http, offset);
	char off[32];
	snprintf(off, sizeof(off), "%ld", offset);
	trs__log(trs__http_ctx(http), TRS_LOG_WARN,
		 "this host's clock is off from AWS's: signing with AWS's time from now on. What to do: fix the "
		 "clock (NTP, chrony)",
		 "service", service, "offset_seconds", off, "code", code, NULL);
	return true;
}

/* SPDX-License-Identifier: Apache-2.0 */
/* The clock AWS signs by (lib/aws/clock.c). */
#ifndef TRS_AWS_CLOCK_H
#define TRS_AWS_CLOCK_H

#include "http.h"

/*
 * An answer refused for its time (code RequestTimeTooSkewed, RequestExpired,
 * RequestInTheFuture; InvalidSignatureException or SignatureDoesNotMatch
 * when the clocks are minutes apart): learn the service's time from its Date
 * header into `http`'s offset, log it once per change, and return true, so
 * that the caller retries; false when the answer says nothing of the clock.
 */
bool trs__aws_clock_correct(trs__http *http, const trs__http_response *resp, const char *code, const char *service);

#endif

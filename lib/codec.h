/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Byte codecs that S3 requests, SQS messages and manifest tags all need
 * (hex is in util.h, the digests in digest.h): percent-encoding as RFC 3986
 * and SigV4 want it, and base64.
 */
#ifndef TRS_CODEC_H
#define TRS_CODEC_H

#include "util.h"

/*
 * Percent-encode len bytes of s onto b: RFC 3986 unreserved characters
 * (A-Z a-z 0-9 - . _ ~) stay, every other byte becomes %XX (upper case).
 * keep_slash: leave '/' as is (S3 object keys in a path).
 */
int trs__uri_encode(trs__buf *b, const char *s, size_t len, bool keep_slash, trs_error *err);

/* Base64 of n bytes into out (4 * ceil(n / 3) + 1 bytes). */
void trs__base64(const unsigned char *in, size_t n, char *out);

#endif

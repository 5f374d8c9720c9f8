/* SPDX-License-Identifier: Apache-2.0 */
/*
 * One signed AWS request (lib/aws/send.c): what every service's attempt
 * does, S3, SQS, CloudWatch and STS alike. The caller describes the HTTP
 * request (method, URL, its own headers, body, sink, timeouts); this adds
 * Host, signs it with SigV4 (or not, for STS's web identity call) and sends
 * it through the shared pool (lib/aws/http.c). Retrying is the caller's loop,
 * driven by the policy of lib/aws/retry.h.
 */
#ifndef TRS_AWS_SEND_H
#define TRS_AWS_SEND_H

#include "credentials.h"
#include "sigv4.h"

typedef struct trs__aws_target {
	const char *authority;      /* "host[:port]": the Host header */
	const char *path;           /* the URL's path as sent ("/" at least), for the signature */
	const char *query;          /* as sent, without '?'; NULL: none */
	const char *payload_hash;   /* hex SHA-256 of the body; NULL: computed from req->body */
} trs__aws_target;

/* Send `req` signed with `creds` under `sign` (its region and service; `now`
 * is set here), or unsigned when creds is NULL. resp as trs__http_do. */
int trs__aws_send(trs__http *http, const trs__sigv4_options *sign, const trs__aws_credentials *creds,
		  const trs__aws_target *t, const trs__http_request *req, trs__http_response *resp, trs_error *err);

/* The same with the provider's credentials (refreshed first when `refresh`). */
int trs__aws_send_as(trs__http *http, trs__cred_provider *provider, bool refresh, const trs__sigv4_options *sign,
		     const trs__aws_target *t, const trs__http_request *req, trs__http_response *resp,
		     trs_error *err);

#endif

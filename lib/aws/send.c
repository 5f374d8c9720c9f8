/* SPDX-License-Identifier: Apache-2.0 */
/* One signed AWS request, for every service (see lib/aws/send.h). */
#include "send.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

int trs__aws_send(trs__http *http, const trs__sigv4_options *sign, const trs__aws_credentials *creds,
		  const trs__aws_target *t, const trs__http_request *req, trs__http_response *resp, trs_error *err)
{
	/* Host, the caller's headers, and what the signature adds. */
	size_t cap = req->nheaders + 1 + TRS_ARRAY_SIZE(((trs__sigv4_result *)0)->add_headers);
	trs_kv *h = trs__calloc(cap, sizeof(*h), err);
	if (!h)
		return TRS_ENOMEM;
	size_t nh = 0;
	h[nh++] = (trs_kv){"Host", t->authority};
	for (size_t i = 0; i < req->nheaders; i++)
		h[nh++] = req->headers[i];
	trs__sigv4_result sig;
	memset(&sig, 0, sizeof(sig));
	int rc = 0;
	if (creds) {
		char hash[TRS_SHA256_HEX_LEN + 1];
		const char *payload_hash = t->payload_hash;
		if (!payload_hash) {
			trs__sha256_hex(req->body ? req->body : "", req->body ? req->body_len : 0, hash);
			payload_hash = hash;
		}
		trs__sigv4_options o = *sign;
		o.now = time(NULL) + trs__http_clock_offset(http); /* AWS's time, once a skew error taught it */
		o.key_cache = trs__http_key_cache(http);
		trs__sigv4_credentials sc = {creds->access_key_id, creds->secret_access_key, creds->session_token};
		trs__sigv4_request sr = {req->method, t->path, t->query ? t->query : "", h, nh, payload_hash};
		rc = trs__sigv4_sign(&sc, &o, &sr, &sig, err);
		for (size_t i = 0; rc == 0 && i < sig.nadd_headers; i++)
			h[nh++] = sig.add_headers[i];
	}
	if (rc == 0) {
		trs__http_request r = *req;
		r.headers = h;
		r.nheaders = nh;
		rc = trs__http_do(http, &r, resp, err);
	}
	trs__sigv4_result_free(&sig);
	free(h);
	return rc;
}

int trs__aws_send_as(trs__http *http, trs__cred_provider *provider, bool refresh, const trs__sigv4_options *sign,
		     const trs__aws_target *t, const trs__http_request *req, trs__http_response *resp,
		     trs_error *err)
{
	trs__aws_credentials creds;
	int rc = trs__cred_provider_get(provider, refresh, &creds, err);
	if (rc < 0)
		return rc;
	rc = trs__aws_send(http, sign, &creds, t, req, resp, err);
	trs__aws_credentials_clear(&creds);
	return rc;
}

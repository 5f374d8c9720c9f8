/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The CA certificates a client trusts, loaded once and handed to every TLS
 * connection it opens.
 *
 * libcurl (7.88, Debian's, on OpenSSL 3) loads the CA bundle again for
 * every new connection: 146 certificates parsed in 26 ms, 40 to 60 ms when
 * 32 writers connect at once, 77% of the CPU of a restore of small objects
 * over https (docs/performance.md). Its own CA cache is per handle and off
 * when a CA directory is set, as Debian's build sets one. The store here is
 * loaded at the client's first https request from the same places libcurl
 * would use (the bundle: --ca-bundle or AWS_CA_BUNDLE, else libcurl's
 * built-in file; and libcurl's built-in directory, looked up lazily) and set
 * on each connection's SSL_CTX through CURLOPT_SSL_CTX_FUNCTION.
 *
 * When it cannot be used (libcurl on another TLS library than OpenSSL 3, a
 * bundle that does not load) the connection is set up as before and libcurl
 * loads and reports as it always did. A new bundle takes effect when the
 * client is made again (a restart of trs serve), as with most daemons.
 */
#ifndef TRS_TLS_STORE_H
#define TRS_TLS_STORE_H

#include "internal.h"

#include <pthread.h>

#include <curl/curl.h>

typedef struct trs__tls_store {
	pthread_mutex_t mu;
	int state;         /* 0 not loaded yet, 1 loaded, -1 libcurl loads as usual */
	void *store;       /* X509_STORE */
} trs__tls_store;

void trs__tls_store_init(trs__tls_store *s);
void trs__tls_store_free(trs__tls_store *s);

/* Set up c, about to request an https URL with peer verification on, to
 * verify with s (loaded now if it is not yet), or as libcurl does by itself
 * with ca_bundle (NULL: libcurl's default) when s cannot be used. */
void trs__tls_store_apply(trs__tls_store *s, CURL *c, const char *ca_bundle, const trs_ctx *ctx);

#endif

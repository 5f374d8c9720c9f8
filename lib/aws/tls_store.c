/* SPDX-License-Identifier: Apache-2.0 */
/* One CA store per client, loaded once (tls_store.h). */
#include "tls_store.h"

#include <stdio.h>
#include <string.h>

#include <openssl/opensslv.h>
#include <openssl/ssl.h>
#include <openssl/x509_vfy.h>

void trs__tls_store_init(trs__tls_store *s)
{
	memset(s, 0, sizeof(*s));
	pthread_mutex_init(&s->mu, NULL);
}

void trs__tls_store_free(trs__tls_store *s)
{
	X509_STORE_free(s->store);
	s->store = NULL;
	pthread_mutex_destroy(&s->mu);
}

/* libcurl speaks TLS through the OpenSSL 3 this library links: its SSL_CTX
 * is one our libssl can hand a store to. */
static bool curl_on_our_openssl(void)
{
	const curl_version_info_data *vi = curl_version_info(CURLVERSION_NOW);
	char want[24];
	snprintf(want, sizeof(want), "OpenSSL/%d.", OPENSSL_VERSION_MAJOR);
	return vi && vi->ssl_version && strncmp(vi->ssl_version, want, strlen(want)) == 0;
}

/* Load the store; 1 loaded, -1 left to libcurl. Called once, under s->mu. */
static int load(trs__tls_store *s, const char *ca_bundle, const trs_ctx *ctx)
{
	if (!curl_on_our_openssl())
		return -1;
	const curl_version_info_data *vi = curl_version_info(CURLVERSION_NOW);
	const char *file = ca_bundle ? ca_bundle : vi->cainfo;
	const char *dir = vi->capath; /* libcurl keeps its directory beside a bundle given to it */
	if (!file && !dir)
		return -1;
	X509_STORE *st = X509_STORE_new();
	if (!st)
		return -1;
	if ((file && X509_STORE_load_file(st, file) != 1) || (dir && X509_STORE_load_path(st, dir) != 1)) {
		/* libcurl loads it again on the connection and says what is wrong, as before */
		X509_STORE_free(st);
		trs__log(ctx, TRS_LOG_DEBUG, "TLS: the CA certificates did not load here; libcurl loads them per connection",
			 "file", file ? file : "", "directory", dir ? dir : "", NULL);
		return -1;
	}
	/* As libcurl sets on the store it makes: a certificate in the bundle is an
	 * anchor even when it is not a root (a proxy's intermediate). */
	X509_STORE_set_flags(st, X509_V_FLAG_PARTIAL_CHAIN);
	STACK_OF(X509_OBJECT) *objs = X509_STORE_get0_objects(st);
	char n[24];
	snprintf(n, sizeof(n), "%d", objs ? sk_X509_OBJECT_num(objs) : 0);
	trs__log(ctx, TRS_LOG_DEBUG, "TLS: CA certificates loaded once for this client", "certificates", n, "file",
		 file ? file : "", "directory", dir ? dir : "", NULL);
	s->store = st;
	return 1;
}

static CURLcode set_store(CURL *c, void *ssl_ctx, void *store)
{
	(void)c;
	/* up-references the store: each connection's SSL_CTX shares the one loaded */
	SSL_CTX_set1_cert_store(ssl_ctx, store);
	return CURLE_OK;
}

void trs__tls_store_apply(trs__tls_store *s, CURL *c, const char *ca_bundle, const trs_ctx *ctx)
{
	pthread_mutex_lock(&s->mu);
	if (s->state == 0)
		s->state = load(s, ca_bundle, ctx);
	int state = s->state;
	void *store = s->store;
	pthread_mutex_unlock(&s->mu);
	if (state == 1 && curl_easy_setopt(c, CURLOPT_SSL_CTX_FUNCTION, set_store) == CURLE_OK &&
	    curl_easy_setopt(c, CURLOPT_SSL_CTX_DATA, store) == CURLE_OK) {
		/* nothing for libcurl to load: the store comes with the SSL_CTX */
		curl_easy_setopt(c, CURLOPT_CAINFO, NULL);
		curl_easy_setopt(c, CURLOPT_CAPATH, NULL);
		return;
	}
	curl_easy_setopt(c, CURLOPT_SSL_CTX_FUNCTION, NULL);
	if (ca_bundle)
		curl_easy_setopt(c, CURLOPT_CAINFO, ca_bundle);
}

/* SPDX-License-Identifier: Apache-2.0 */
/* MD5, SHA-256 and HMAC-SHA256 through algorithms fetched once, and CRC-32
 * (digest.h). */
#include "digest.h"

#include <pthread.h>
#include <string.h>

#include <isa-l/crc.h>
#include <openssl/core_names.h>
#include <openssl/params.h>

#include "codec.h"
#include "util.h"

static pthread_once_t fetched = PTHREAD_ONCE_INIT;
static EVP_MD *md5_md, *sha256_md;
static EVP_MAC *hmac_alg;

static void fetch_all(void)
{
	md5_md = EVP_MD_fetch(NULL, "MD5", NULL);
	sha256_md = EVP_MD_fetch(NULL, "SHA2-256", NULL);
	hmac_alg = EVP_MAC_fetch(NULL, "HMAC", NULL);
}

const EVP_MD *trs__md5_md(void)
{
	pthread_once(&fetched, fetch_all);
	return md5_md ? md5_md : EVP_md5();
}

const EVP_MD *trs__sha256_md(void)
{
	pthread_once(&fetched, fetch_all);
	return sha256_md ? sha256_md : EVP_sha256();
}

void trs__sha256_hex(const void *data, size_t len, char out[TRS_SHA256_HEX_LEN + 1])
{
	unsigned char md[32];
	if (!EVP_Digest(data, len, md, NULL, trs__sha256_md(), NULL))
		memset(md, 0, sizeof(md));
	trs__hex(md, sizeof(md), out);
}

void trs__md5(const void *data, size_t len, unsigned char out[16])
{
	if (!EVP_Digest(data, len, out, NULL, trs__md5_md(), NULL))
		memset(out, 0, 16);
}

EVP_MAC_CTX *trs__hmac_new(const void *key, size_t keylen)
{
	pthread_once(&fetched, fetch_all);
	if (!hmac_alg)
		return NULL;
	EVP_MAC_CTX *c = EVP_MAC_CTX_new(hmac_alg);
	OSSL_PARAM params[] = {
		OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"SHA2-256", 0),
		OSSL_PARAM_construct_end(),
	};
	if (c && EVP_MAC_init(c, key, keylen, params))
		return c;
	EVP_MAC_CTX_free(c);
	return NULL;
}

int trs__hmac_finish(EVP_MAC_CTX *c, const void *msg, size_t len, unsigned char out[32])
{
	size_t outlen = 0;
	int ok = c && EVP_MAC_update(c, msg, len) && EVP_MAC_final(c, out, &outlen, 32) && outlen == 32;
	EVP_MAC_CTX_free(c);
	return ok ? 0 : -1;
}

int trs__hmac_keyed(const EVP_MAC_CTX *keyed, const void *msg, size_t len, unsigned char out[32])
{
	return trs__hmac_finish(keyed ? EVP_MAC_CTX_dup(keyed) : NULL, msg, len, out);
}

int trs__hmac(const void *key, size_t keylen, const void *msg, size_t len, unsigned char out[32])
{
	return trs__hmac_finish(trs__hmac_new(key, keylen), msg, len, out);
}

uint32_t trs__crc32(uint32_t crc, const void *data, size_t len)
{
	/* ISA-L takes a length in 64 bits; a size_t never exceeds it here. */
	return crc32_gzip_refl(crc, data, (uint64_t)len);
}

void trs__crc32_base64(const void *data, size_t len, char out[TRS_CRC32_B64_LEN + 1])
{
	uint32_t c = trs__crc32(0, data, len);
	unsigned char be[4] = {(unsigned char)(c >> 24), (unsigned char)(c >> 16), (unsigned char)(c >> 8),
			       (unsigned char)c};
	trs__base64(be, sizeof(be), out); /* 8 characters and a NUL */
}

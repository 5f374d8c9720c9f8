/* SPDX-License-Identifier: Apache-2.0 */
/* The digests libtrs computes (MD5, SHA-256, HMAC-SHA256), fetched from
 * OpenSSL once per process, and the CRC32 of multipart parts (ISA-L).
 *
 * OpenSSL 3 looks an algorithm up in its provider tables each time a context
 * is initialised with EVP_md5() or EVP_sha256(), and HMAC() looks up both the
 * MAC and the digest on every call (the "implicit fetch" that OpenSSL's own
 * performance notes warn about): for a 2 KiB PUT that lookup cost more than
 * the hashing. trs__md5_md() and trs__sha256_md() are fetched explicitly once
 * and live until the process exits. A keyed HMAC context (trs__hmac_new)
 * holds the key's inner and outer states; duplicating it costs a few copies
 * where a fresh HMAC costs two hashes of the key and the lookups. */
#ifndef TRS_DIGEST_H
#define TRS_DIGEST_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

#define TRS_SHA256_HEX_LEN 64

/* EVP_MD handles for EVP_DigestInit_ex and EVP_Digest, fetched once; never NULL
 * (OpenSSL's legacy handles if the fetch failed, which then fail as before). */
const EVP_MD *trs__md5_md(void);
const EVP_MD *trs__sha256_md(void);

/* Lower-case hex SHA-256 of data; all zeros if OpenSSL fails to allocate
 * (a signature over it is refused, never accepted). */
void trs__sha256_hex(const void *data, size_t len, char out[TRS_SHA256_HEX_LEN + 1]);
/* MD5 of data; all zeros if OpenSSL fails to allocate. */
void trs__md5(const void *data, size_t len, unsigned char out[16]);

/* An HMAC-SHA256 context keyed with key; NULL on failure. Free with
 * EVP_MAC_CTX_free (it holds the key: OpenSSL cleanses it on free). */
EVP_MAC_CTX *trs__hmac_new(const void *key, size_t keylen);
/* HMAC of msg under a keyed context, which is left as it was (a copy is
 * used): 0, or -1 when OpenSSL fails to allocate. */
int trs__hmac_keyed(const EVP_MAC_CTX *keyed, const void *msg, size_t len, unsigned char out[32]);
/* HMAC of msg under c, which is freed (NULL: -1). For a copy made under a
 * lock with EVP_MAC_CTX_dup, used outside it. */
int trs__hmac_finish(EVP_MAC_CTX *c, const void *msg, size_t len, unsigned char out[32]);
/* HMAC-SHA256 of msg under key, in one call: 0 or -1. */
int trs__hmac(const void *key, size_t keylen, const void *msg, size_t len, unsigned char out[32]);

/* CRC-32 (the polynomial of zlib, gzip and S3's x-amz-checksum-crc32) of data,
 * continuing from crc (0 to start), by ISA-L: about 20 GB/s where SHA-256 runs
 * at 1.2 to 1.4 and MD5 at 0.5 (docs/performance.md, "Parts over TLS"). */
uint32_t trs__crc32(uint32_t crc, const void *data, size_t len);
/* The CRC-32 of data as S3 writes it in x-amz-checksum-crc32: the base64 of
 * its four bytes, most significant first. */
#define TRS_CRC32_B64_LEN 8
void trs__crc32_base64(const void *data, size_t len, char out[TRS_CRC32_B64_LEN + 1]);

#endif

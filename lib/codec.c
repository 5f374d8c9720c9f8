/* SPDX-License-Identifier: Apache-2.0 */
/* Byte codecs shared by every layer (codec.h). */
#include "codec.h"

#include <openssl/evp.h>

void trs__base64(const unsigned char *in, size_t n, char *out)
{
	EVP_EncodeBlock((unsigned char *)out, in, (int)n);
}

static bool unreserved(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
	       c == '.' || c == '_' || c == '~';
}

int trs__uri_encode(trs__buf *b, const char *s, size_t len, bool keep_slash, trs_error *err)
{
	static const char digits[] = "0123456789ABCDEF";
	if (trs__buf_grow(b, len * 3, err) < 0)
		return TRS_ENOMEM;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (unreserved(c) || (keep_slash && c == '/')) {
			b->data[b->len++] = (char)c;
		} else {
			b->data[b->len++] = '%';
			b->data[b->len++] = digits[c >> 4];
			b->data[b->len++] = digits[c & 15];
		}
	}
	b->data[b->len] = '\0';
	return 0;
}

/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Throughput of the checksums a restore can compute over a body: OpenSSL's
 * SHA-256 (the signed payload hash) and MD5 (Content-MD5, the ETag), zlib's
 * CRC-32 and ISA-L's CRC-32 and CRC-32C (x-amz-checksum-crc32 and -crc32c).
 * Each is timed over the same 8 MiB buffer, RUNS times interleaved, and the
 * median GB/s printed. Built and run by bench/hashes.sh.
 */
#include <isa-l/crc.h>
#include <openssl/evp.h>
#include <zlib.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define BUF (8u << 20)
#define REPS 32
#define MAX_RUNS 64

static double now(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static const unsigned char *buf;
static unsigned long sink; /* keeps the results alive */

static void sha256(void)
{
	unsigned char d[32];
	EVP_Digest(buf, BUF, d, NULL, EVP_sha256(), NULL);
	sink += d[0];
}

static void md5(void)
{
	unsigned char d[16];
	EVP_Digest(buf, BUF, d, NULL, EVP_md5(), NULL);
	sink += d[0];
}

static void zlib_crc32(void) { sink += crc32(0, buf, BUF); }
static void isal_crc32(void) { sink += crc32_gzip_refl(0, buf, BUF); }
static void isal_crc32c(void) { sink += crc32_iscsi((unsigned char *)buf, BUF, 0xffffffffu); }

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
	int runs = argc > 1 ? atoi(argv[1]) : 5;
	if (runs < 1 || runs > MAX_RUNS)
		runs = 5;
	unsigned char *b = malloc(BUF);
	if (!b)
		return 1;
	srand(7);
	for (size_t i = 0; i < BUF; i++)
		b[i] = (unsigned char)rand();
	buf = b;
	static const struct {
		const char *name;
		void (*fn)(void);
	} algs[] = {
		{"SHA-256 (OpenSSL)", sha256}, {"MD5 (OpenSSL)", md5},       {"CRC-32 (zlib)", zlib_crc32},
		{"CRC-32 (ISA-L)", isal_crc32}, {"CRC-32C (ISA-L)", isal_crc32c},
	};
	enum { N = sizeof(algs) / sizeof(algs[0]) };
	static double gbs[N][MAX_RUNS];
	for (int r = 0; r < runs; r++)
		for (int a = 0; a < N; a++) {
			double t = now();
			for (int i = 0; i < REPS; i++)
				algs[a].fn();
			gbs[a][r] = (double)BUF * REPS / (now() - t) / 1e9;
		}
	printf("%-20s %12s  %s\n", "checksum", "median GB/s", "each run");
	for (int a = 0; a < N; a++) {
		double sorted[MAX_RUNS];
		memcpy(sorted, gbs[a], sizeof(double) * (size_t)runs);
		qsort(sorted, (size_t)runs, sizeof(double), cmp);
		printf("%-20s %12.2f ", algs[a].name, sorted[runs / 2]);
		for (int r = 0; r < runs; r++)
			printf(" %.2f", gbs[a][r]);
		printf("\n");
	}
	free(b);
	return sink == 42; /* never: the results were used */
}

/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A tiny unit-test harness. Each test is a function; main() runs them and
 * prints "PASS name" / "FAIL name: why" lines that tests/run counts.
 *
 *     TEST(manifest_rejects_non_list_tags) { ... CHECK(x == 1); ... }
 *     int main(void) { RUN(manifest_rejects_non_list_tags); return harness_done(); }
 */
#ifndef TRS_TEST_HARNESS_H
#define TRS_TEST_HARNESS_H

#include <stdio.h>
#include <string.h>
#include <time.h>

static int harness_failed_total;
static int harness_passed_total;
static int harness_current_failed __attribute__((unused));

#define TEST(name) static void test_##name(void)

#define CHECK(cond)                                                                      \
	do {                                                                             \
		if (!(cond)) {                                                           \
			printf("  %s:%d: CHECK(%s) failed\n", __FILE__, __LINE__, #cond); \
			harness_current_failed = 1;                                      \
			return;                                                          \
		}                                                                        \
	} while (0)

#define CHECK_STR(a, b)                                                                       \
	do {                                                                                  \
		const char *a_ = (a), *b_ = (b);                                              \
		if (!a_ || !b_ || strcmp(a_, b_) != 0) {                                      \
			printf("  %s:%d: \"%s\" != \"%s\"\n", __FILE__, __LINE__, a_ ? a_ : "(null)", \
			       b_ ? b_ : "(null)");                                           \
			harness_current_failed = 1;                                           \
			return;                                                               \
		}                                                                             \
	} while (0)

#define CHECK_CONTAINS(hay, needle)                                                       \
	do {                                                                              \
		const char *h_ = (hay), *n_ = (needle);                                   \
		if (!h_ || !strstr(h_, n_)) {                                             \
			printf("  %s:%d: \"%s\" does not contain \"%s\"\n", __FILE__, __LINE__, \
			       h_ ? h_ : "(null)", n_);                                   \
			harness_current_failed = 1;                                       \
			return;                                                           \
		}                                                                         \
	} while (0)

#define RUN(name)                                               \
	do {                                                    \
		harness_current_failed = 0;                     \
		test_##name();                                  \
		if (harness_current_failed) {                   \
			printf("FAIL %s\n", #name);             \
			harness_failed_total++;                 \
		} else {                                        \
			printf("PASS %s\n", #name);             \
			harness_passed_total++;                 \
		}                                               \
		fflush(stdout);                                 \
	} while (0)

/* CPU seconds the calling thread has used. A test of an algorithm's cost
 * measures this, not the wall clock, which other processes on a loaded
 * machine stretch at random. */
static inline double harness_thread_cpu_seconds(void)
{
	struct timespec t;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* How many times slower a build runs the same code than a plain one: a bound
 * in seconds that holds for a plain build is multiplied by it. */
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define HARNESS_SLOWDOWN 10.0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define HARNESS_SLOWDOWN 10.0
#endif
#endif
#ifndef HARNESS_SLOWDOWN
#define HARNESS_SLOWDOWN 1.0
#endif

static inline int harness_done(void)
{
	printf("%d passed, %d failed\n", harness_passed_total, harness_failed_total);
	return harness_failed_total ? 1 : 0;
}

#endif

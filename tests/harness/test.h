/* Minimal unit-test harness. One binary per module; each test binary prints
 * "unit <name>: N passed, N failed" and exits non-zero on failure. The Makefile adds
 * the counts of every binary into the final "tests: N passed, N failed" line by
 * reading the last line each binary prints ("TESTCOUNT passed failed"). */
#ifndef LIGHTR_TEST_H
#define LIGHTR_TEST_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int test_passed_, test_failed_, test_cur_failed_;
static const char *test_cur_name_;

#define CHECK(cond)                                                                                \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			fprintf(stderr, "  FAIL %s:%d: %s: %s\n", __FILE__, __LINE__,              \
			        test_cur_name_, #cond);                                            \
			test_cur_failed_ = 1;                                                      \
		}                                                                                  \
	} while (0)

#define CHECK_STR(got, want)                                                                       \
	do {                                                                                       \
		const char *g_ = (got), *w_ = (want);                                              \
		if (g_ == NULL || w_ == NULL ? g_ != w_ : strcmp(g_, w_) != 0) {                   \
			fprintf(stderr, "  FAIL %s:%d: %s: got \"%s\" want \"%s\"\n", __FILE__,    \
			        __LINE__, test_cur_name_, g_ ? g_ : "(null)", w_ ? w_ : "(null)"); \
			test_cur_failed_ = 1;                                                      \
		}                                                                                  \
	} while (0)

#define CHECK_INT(got, want)                                                                       \
	do {                                                                                       \
		long long g_ = (long long)(got), w_ = (long long)(want);                           \
		if (g_ != w_) {                                                                    \
			fprintf(stderr, "  FAIL %s:%d: %s: %s = %lld, want %lld\n", __FILE__,      \
			        __LINE__, test_cur_name_, #got, g_, w_);                           \
			test_cur_failed_ = 1;                                                      \
		}                                                                                  \
	} while (0)

/* Runs one test function and counts it. */
#define RUN(fn)                                                                                    \
	do {                                                                                       \
		test_cur_name_ = #fn;                                                              \
		test_cur_failed_ = 0;                                                              \
		fn();                                                                              \
		if (test_cur_failed_) {                                                            \
			test_failed_++;                                                            \
			fprintf(stderr, "not ok %s\n", #fn);                                       \
		} else {                                                                           \
			test_passed_++;                                                            \
		}                                                                                  \
	} while (0)

/* Prints the summary and returns the exit status for main(). */
static inline int
test_done(const char *suite)
{
	printf("unit %s: %d passed, %d failed\n", suite, test_passed_, test_failed_);
	printf("TESTCOUNT %d %d\n", test_passed_, test_failed_);
	return test_failed_ ? 1 : 0;
}

#endif

/* limit-bench: what a rate-limit check costs on a command path (issue 8). Measures ns per
 * limit_take with 1 and 4 threads on one shared key and on 100,000 keys, and ns per
 * limit_daily_reserve, and prints a Markdown table. Build: make bench-limit; run:
 * build/rel/limit-bench [ops per thread, default 2000000]. No thresholds: numbers only. */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "limit/limit.h"

#define KEYS_MANY 100000
#define OPS_MAX   100000000

enum bench_op { OP_TAKE, OP_DAILY };

struct bench {
	enum bench_op op;
	struct limit_table *t;
	struct limit_daily *d;
	char (*keys)[32];
	size_t nkeys;
	long ops;
	unsigned seed;
	long allowed;
};

static const struct limit_rule bench_rule = {"bench_per_second", 1000000000, 1000};

static int64_t
now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void *
bench_run(void *arg)
{
	struct bench *b = arg;
	unsigned x = b->seed;
	for (long i = 0; i < b->ops; i++) {
		x = x * 1103515245u + 12345u;
		const char *key = b->keys[b->nkeys > 1 ? (x >> 4) % b->nkeys : 0];
		bool ok;
		if (b->op == OP_TAKE)
			ok = limit_take(b->t, key, &bench_rule, 1, true, NULL);
		else
			ok = limit_daily_reserve(b->d, key, 1, 0, NULL);
		b->allowed += ok;
	}
	return NULL;
}

/* Runs nthreads for ops each; returns wall-clock ns per operation of one thread. */
static double
bench_case(enum bench_op op, int nthreads, size_t nkeys, char (*keys)[32], long ops)
{
	struct limit_table *t = limit_table_new(2 * KEYS_MANY, NULL);
	struct limit_daily *d = limit_daily_new(2 * KEYS_MANY, NULL);
	struct bench b[4];
	pthread_t th[4];
	/* warm the table so that the 100,000-key runs measure lookups, not first inserts */
	for (size_t i = 0; i < nkeys; i++) {
		if (op == OP_TAKE)
			limit_take(t, keys[i], &bench_rule, 1, true, NULL);
		else
			limit_daily_reserve(d, keys[i], 1, 0, NULL);
	}
	int64_t start = now_ns();
	for (int i = 0; i < nthreads; i++) {
		b[i] = (struct bench){op, t, d, keys, nkeys, ops, (unsigned)(i * 7919 + 1), 0};
		pthread_create(&th[i], NULL, bench_run, &b[i]);
	}
	for (int i = 0; i < nthreads; i++)
		pthread_join(th[i], NULL);
	int64_t el = now_ns() - start;
	limit_table_free(&t);
	limit_daily_free(&d);
	return (double)el / (double)ops;
}

int
main(int argc, char **argv)
{
	long ops = 2000000;
	if (argc > 1) {
		char *end;
		ops = strtol(argv[1], &end, 10);
		if (*end != '\0' || ops < 1 || ops > OPS_MAX) {
			fprintf(stderr, "usage: limit-bench [ops per thread, 1..%d]\n", OPS_MAX);
			return 2;
		}
	}
	char(*keys)[32] = calloc(KEYS_MANY, sizeof *keys);
	if (keys == NULL)
		return 1;
	for (int i = 0; i < KEYS_MANY; i++)
		snprintf(keys[i], sizeof keys[i], "acct:user%d@bench.example", i);

	static const struct {
		const char *what;
		enum bench_op op;
		int threads;
		size_t nkeys;
	} cases[] = {
	    {"limit_take", OP_TAKE, 1, 1},
	    {"limit_take", OP_TAKE, 4, 1},
	    {"limit_take", OP_TAKE, 1, KEYS_MANY},
	    {"limit_take", OP_TAKE, 4, KEYS_MANY},
	    {"limit_daily_reserve", OP_DAILY, 1, 1},
	    {"limit_daily_reserve", OP_DAILY, 4, 1},
	    {"limit_daily_reserve", OP_DAILY, 1, KEYS_MANY},
	    {"limit_daily_reserve", OP_DAILY, 4, KEYS_MANY},
	};
	printf(
	    "| operation | threads | keys | ns/op (wall, per thread) | Mops/s (all threads) |\n");
	printf("|---|---:|---:|---:|---:|\n");
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		double ns = bench_case(cases[i].op, cases[i].threads, cases[i].nkeys, keys, ops);
		printf("| %s | %d | %zu | %.1f | %.2f |\n", cases[i].what, cases[i].threads,
		       cases[i].nkeys, ns, cases[i].threads * 1000.0 / ns);
		fflush(stdout);
	}
	free(keys);
	return 0;
}

/* Concurrency tests of store/: group commit with 8 writer threads, readers listing while
 * writers insert, an online backup during a write burst, and durability across kill -9 (a
 * forked child writes in a loop and reports every acknowledged write through a pipe; after
 * SIGKILL the parent reopens the database and finds every acknowledged write). No timing is
 * asserted; batching is proven by commits < requests. */
#include <dirent.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "store/store.h"
#include "test.h"
#include "test_kill.h"
#include "test_tmp.h"
#include "util/log.h"
#include "util/xalloc.h"

#define N_THREADS 8
#define N_PUTS    200

static char tmpdir[64];
static char dbpath[128];

static void
tmp_setup(void)
{
	test_tmpdir(tmpdir, sizeof tmpdir, "writer");
	(void)snprintf(dbpath, sizeof dbpath, "%s/lightr.db", tmpdir);
}

static void
tmp_cleanup(void)
{
	test_tmpdir_remove(tmpdir);
}

static struct store *
open_fresh(void)
{
	tmp_setup();
	struct store *st = NULL;
	struct err err = {0};
	if (store_open(dbpath, &st, &err) < 0) {
		fprintf(stderr, "store_open: %s\n", err.msg);
		exit(1);
	}
	return st;
}

struct worker {
	struct store *st;
	int id;
	int n;             /* writes to do (0: until stop) */
	atomic_int *stop;  /* readers and open-ended writers stop when set */
	int failures;      /* unexpected results */
	int eexist;        /* expected EEXIST results seen */
	char (*sha)[65];   /* blob ids written (n entries) */
	size_t max_listed; /* readers: largest list seen */
};

/* Blob content of writer t, write i: distinct for every (t, i). */
static void
blob_content(int t, int i, char *out, size_t n)
{
	(void)snprintf(out, n, "Subject: w%d-%d\r\n\r\nbody of message %d from thread %d\r\n", t, i,
	               i, t);
}

static void *
blob_writer(void *arg)
{
	struct worker *w = arg;
	struct err err;
	for (int i = 0; i < w->n; i++) {
		char body[128];
		blob_content(w->id, i, body, sizeof body);
		if (store_blob_put(w->st, body, strlen(body), w->sha[i], &err) < 0)
			w->failures++;
		/* Every 50th request fails inside the same groups as the others succeed. */
		if (i % 50 == 0) {
			if (store_domain_add(w->st, "dup.example", &err) == 0 ||
			    err.code != STORE_EEXIST)
				w->failures++;
			else
				w->eexist++;
		}
	}
	store_thread_done(w->st);
	return NULL;
}

static void
test_group_commit(void)
{
	struct store *st = open_fresh();
	struct err err = {0};
	CHECK_INT(store_domain_add(st, "dup.example", &err), 0);
	uint64_t c0 = store_commit_count(st);
	pthread_t th[N_THREADS];
	struct worker w[N_THREADS];
	for (int t = 0; t < N_THREADS; t++) {
		w[t] = (struct worker){.st = st, .id = t, .n = N_PUTS};
		w[t].sha = xcalloc(N_PUTS, sizeof *w[t].sha);
		pthread_create(&th[t], NULL, blob_writer, &w[t]);
	}
	int failures = 0, eexist = 0;
	for (int t = 0; t < N_THREADS; t++) {
		pthread_join(th[t], NULL);
		failures += w[t].failures;
		eexist += w[t].eexist;
	}
	CHECK_INT(failures, 0);
	CHECK_INT(eexist, N_THREADS * (N_PUTS / 50));
	uint64_t requests = N_THREADS * N_PUTS + (uint64_t)eexist;
	uint64_t commits = store_commit_count(st) - c0;
	CHECK(commits > 0);
	CHECK(commits < requests); /* proves batching */
	printf("  group commit: %llu requests in %llu commits\n", (unsigned long long)requests,
	       (unsigned long long)commits);

	/* Every acknowledged blob is there with its bytes. */
	struct buf b;
	buf_init(&b, 0);
	int missing = 0;
	for (int t = 0; t < N_THREADS; t++) {
		for (int i = 0; i < N_PUTS; i++) {
			char body[128];
			blob_content(t, i, body, sizeof body);
			buf_reset(&b);
			if (store_blob_get(st, w[t].sha[i], &b, &err) < 0 ||
			    b.len != strlen(body) || memcmp(b.data, body, b.len) != 0)
				missing++;
		}
		free(w[t].sha);
	}
	buf_deinit(&b);
	CHECK_INT(missing, 0);
	store_close(&st);
	tmp_cleanup();
}

static void *
domain_writer(void *arg)
{
	struct worker *w = arg;
	struct err err;
	for (int i = 0; i < w->n; i++) {
		char name[64], addr[96];
		(void)snprintf(name, sizeof name, "w%d-%d.example", w->id, i);
		(void)snprintf(addr, sizeof addr, "user@%s", name);
		if (store_domain_add(w->st, name, &err) < 0 ||
		    store_account_add(w->st, addr, "h", 0, &err) < 0) {
			fprintf(stderr, "  writer %d: %s\n", w->id, err.msg);
			w->failures++;
		}
	}
	store_thread_done(w->st);
	return NULL;
}

/* Lists domains and accounts until told to stop; lists only ever grow. */
static void *
lister(void *arg)
{
	struct worker *w = arg;
	struct err err;
	size_t last_domains = 0;
	while (!atomic_load(w->stop)) {
		struct store_domain *d;
		struct store_account *a;
		size_t nd, na;
		if (store_domain_list(w->st, &d, &nd, &err) < 0) {
			fprintf(stderr, "  reader: %s\n", err.msg);
			w->failures++;
			break;
		}
		if (nd < last_domains)
			w->failures++;
		last_domains = nd;
		store_domain_list_free(&d, nd);
		if (store_account_list(w->st, NULL, &a, &na, &err) < 0) {
			fprintf(stderr, "  reader: %s\n", err.msg);
			w->failures++;
			break;
		}
		store_account_list_free(&a, na);
		if (nd > w->max_listed)
			w->max_listed = nd;
	}
	store_thread_done(w->st);
	return NULL;
}

static void
test_concurrent_readers(void)
{
	struct store *st = open_fresh();
	atomic_int stop = 0;
	enum { N_WRITERS = 4, N_READERS = 4, N_EACH = 50 };
	pthread_t wt[N_WRITERS], rt[N_READERS];
	struct worker ww[N_WRITERS], rw[N_READERS];
	for (int t = 0; t < N_READERS; t++) {
		rw[t] = (struct worker){.st = st, .id = t, .stop = &stop};
		pthread_create(&rt[t], NULL, lister, &rw[t]);
	}
	for (int t = 0; t < N_WRITERS; t++) {
		ww[t] = (struct worker){.st = st, .id = t, .n = N_EACH};
		pthread_create(&wt[t], NULL, domain_writer, &ww[t]);
	}
	int failures = 0;
	for (int t = 0; t < N_WRITERS; t++) {
		pthread_join(wt[t], NULL);
		failures += ww[t].failures;
	}
	atomic_store(&stop, 1);
	for (int t = 0; t < N_READERS; t++) {
		pthread_join(rt[t], NULL);
		failures += rw[t].failures;
	}
	CHECK_INT(failures, 0);
	struct store_domain *d;
	size_t n;
	struct err err;
	CHECK_INT(store_domain_list(st, &d, &n, &err), 0);
	CHECK_INT(n, N_WRITERS * N_EACH);
	store_domain_list_free(&d, n);
	store_close(&st);
	tmp_cleanup();
}

static void *
endless_blob_writer(void *arg)
{
	struct worker *w = arg;
	struct err err;
	for (int i = 0; !atomic_load(w->stop); i++) {
		char body[128], sha[65];
		blob_content(w->id, i, body, sizeof body);
		if (store_blob_put(w->st, body, strlen(body), sha, &err) < 0)
			w->failures++;
		w->n = i + 1;
	}
	store_thread_done(w->st);
	return NULL;
}

static void
test_backup_while_writing(void)
{
	struct store *st = open_fresh();
	struct err err = {0};
	CHECK_INT(store_domain_add(st, "example.com", &err), 0);
	atomic_int stop = 0;
	pthread_t th[4];
	struct worker w[4];
	for (int t = 0; t < 4; t++) {
		w[t] = (struct worker){.st = st, .id = t, .stop = &stop};
		pthread_create(&th[t], NULL, endless_blob_writer, &w[t]);
	}
	/* Let the burst get going (progress-based, not time-based). */
	uint64_t c0 = store_commit_count(st);
	while (store_commit_count(st) < c0 + 20)
		usleep(1000);
	char dest[160];
	(void)snprintf(dest, sizeof dest, "%s/backup.db", tmpdir);
	CHECK_INT(store_backup(st, dest, &err), 0);
	atomic_store(&stop, 1);
	int failures = 0;
	for (int t = 0; t < 4; t++) {
		pthread_join(th[t], NULL);
		failures += w[t].failures;
	}
	CHECK_INT(failures, 0);
	store_close(&st);

	CHECK_INT(store_open(dest, &st, &err), 0);
	if (st) {
		CHECK_INT(store_integrity_check(st, &err), 0);
		struct store_domain d;
		CHECK_INT(store_domain_get(st, "example.com", &d, &err), 0);
		store_domain_deinit(&d);
		store_close(&st);
	}
	tmp_cleanup();
}

/* ---- kill -9 during a write burst ---- */

#define ACK_LEN 80 /* fixed-size records: one write() each, atomic below PIPE_BUF */

struct kill_worker {
	struct store *st;
	int id, fd;
};

/* Child: writes forever; after each acknowledged write, reports "d <domain>" or "b <sha>". */
static void *
kill_writer(void *arg)
{
	struct kill_worker *k = arg;
	struct err err;
	for (int i = 0;; i++) {
		char rec[ACK_LEN] = {0};
		if (k->id % 2 == 0) {
			char name[64];
			(void)snprintf(name, sizeof name, "k%d-%d.example", k->id, i);
			if (store_domain_add(k->st, name, &err) < 0)
				_exit(3);
			(void)snprintf(rec, sizeof rec, "d %s", name);
		} else {
			char body[128], sha[65];
			blob_content(k->id, i, body, sizeof body);
			if (store_blob_put(k->st, body, strlen(body), sha, &err) < 0)
				_exit(3);
			(void)snprintf(rec, sizeof rec, "b %s", sha);
		}
		if (write(k->fd, rec, sizeof rec) != (ssize_t)sizeof rec)
			_exit(4);
	}
	return NULL;
}

static void
kill_child(int fd)
{
	struct store *st;
	struct err err;
	if (store_open(dbpath, &st, &err) < 0)
		_exit(2);
	pthread_t th[N_THREADS];
	struct kill_worker k[N_THREADS];
	for (int t = 0; t < N_THREADS; t++) {
		k[t] = (struct kill_worker){.st = st, .id = t, .fd = fd};
		pthread_create(&th[t], NULL, kill_writer, &k[t]);
	}
	for (int t = 0; t < N_THREADS; t++)
		pthread_join(th[t], NULL);
	_exit(0);
}

static void
test_kill9(void)
{
	tmp_setup();
	size_t n = 0;
	bool killed = false;
	char(*acks)[ACK_LEN] =
	    (char(*)[ACK_LEN])test_kill_burst(kill_child, ACK_LEN, 400, &n, &killed);
	CHECK(killed);

	struct store *st;
	struct err err;
	CHECK_INT(store_open(dbpath, &st, &err), 0);
	if (st) {
		CHECK_INT(store_integrity_check(st, &err), 0);
		struct buf b;
		buf_init(&b, 0);
		size_t missing = 0;
		for (size_t i = 0; i < n; i++) {
			acks[i][ACK_LEN - 1] = '\0';
			if (acks[i][0] == 'd') {
				struct store_domain d;
				if (store_domain_get(st, acks[i] + 2, &d, &err) < 0)
					missing++;
				store_domain_deinit(&d);
			} else {
				buf_reset(&b);
				if (store_blob_get(st, acks[i] + 2, &b, &err) < 0)
					missing++;
			}
		}
		buf_deinit(&b);
		CHECK_INT(missing, 0);
		printf("  kill -9: %zu acknowledged writes, all present\n", n);
		store_close(&st);
	}
	free(acks);
	tmp_cleanup();
}

int
main(void)
{
	log_set_level(LOG_WARN);
	signal(SIGPIPE, SIG_IGN);
	RUN(test_group_commit);
	RUN(test_concurrent_readers);
	RUN(test_backup_while_writing);
	RUN(test_kill9);
	return test_done("store-writer");
}

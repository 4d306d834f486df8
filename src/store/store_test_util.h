/* Test-only helpers shared by the store unit tests (the *_test.c files of src/store): a fresh store
 * in a temporary directory and a one-number SQL probe on its file. Included ONLY by *_test.c files,
 * never by production code; every function is static inline, like tests/harness/test.h. */
#ifndef LIGHTR_STORE_TEST_UTIL_H
#define LIGHTR_STORE_TEST_UTIL_H

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>

#include "store/store.h"
#include "test_tmp.h"

/* Opens a new store "lightr.db" in a fresh temporary directory named after name; the directory
 * into tmpdir[tn] and the database path into dbpath[dn]. Exits after printing why on failure. */
static inline struct store *
store_test_open(char *tmpdir, size_t tn, char *dbpath, size_t dn, const char *name)
{
	test_tmpdir(tmpdir, tn, name);
	(void)snprintf(dbpath, dn, "%s/lightr.db", tmpdir);
	struct store *st = NULL;
	struct err err = {0};
	if (store_open(dbpath, &st, &err) < 0) {
		fprintf(stderr, "store_open: %s\n", err.msg);
		exit(1);
	}
	return st;
}

/* The first column of the first row of sql, read through a separate read-only connection to
 * dbpath; -1 when there is none or it fails. */
static inline int64_t
store_test_sql_int(const char *dbpath, const char *sql)
{
	sqlite3 *db;
	int64_t v = -1;
	if (sqlite3_open_v2(dbpath, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK) {
		sqlite3_stmt *stmt;
		if (sqlite3_prepare_v2(db, sql, -1, &stmt, NULL) == SQLITE_OK) {
			if (sqlite3_step(stmt) == SQLITE_ROW)
				v = sqlite3_column_int64(stmt, 0);
			sqlite3_finalize(stmt);
		}
	}
	sqlite3_close(db);
	return v;
}

#endif

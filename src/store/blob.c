/* Message bodies stored once per distinct content, keyed by the lower-case hex SHA-256 of the raw
 * bytes (DESIGN.md §2). The digest is computed on the caller's thread so the writer spends its
 * time on SQLite only; the insert is a no-op when the blob exists, which is the deduplication.
 * Blobs live in the same database, so a backup copies bodies and metadata consistently. */
#include "store_private.h"

#include <openssl/evp.h>
#include <string.h>

#include "util/clock.h"
#include "util/rand.h"

#define STORE_SHA_HEX 64

struct blob_args {
	const void *data;
	size_t len;
	const char *sha_hex;
};

/* SHA-256 of data as lower-case hex into out (65 bytes). */
static int
blob_sha256(const void *data, size_t len, char out[STORE_SHA_HEX + 1], struct err *err)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int md_len = 0;
	if (EVP_Digest(data, len, md, &md_len, EVP_sha256(), NULL) != 1 || md_len != 32)
		return err_set(err, STORE_EINTERNAL, "SHA-256 failed");
	hex_encode(md, md_len, out);
	return 0;
}

static int
blob_put_fn(struct store_tx *tx, void *arg, struct err *err)
{
	struct blob_args *a = arg;
	sqlite3 *db = store_tx_db(tx);
	sqlite3_stmt *stmt;
	if (store_db_prepare(
	        db,
	        "INSERT INTO blobs (sha256, size, created, data) VALUES (?1, ?2, ?3, ?4)"
	        " ON CONFLICT (sha256) DO NOTHING",
	        &stmt, err) < 0)
		return -1;
	sqlite3_bind_text(stmt, 1, a->sha_hex, -1, SQLITE_STATIC);
	sqlite3_bind_int64(stmt, 2, (int64_t)a->len);
	sqlite3_bind_int64(stmt, 3, clock_now());
	/* A NULL pointer would bind SQL NULL; an empty body is a zero-length blob. */
	sqlite3_bind_blob64(stmt, 4, a->len ? a->data : "", a->len, SQLITE_STATIC);
	int rc = store_db_step_done(db, stmt, err, "blob-put");
	sqlite3_finalize(stmt);
	return rc;
}

int
store_blob_put(struct store *st, const void *data, size_t len, char sha_hex_r[65], struct err *err)
{
	if (len > INT64_MAX)
		return err_set(err, STORE_EINVAL, "blob too large");
	if (blob_sha256(data, len, sha_hex_r, err) < 0)
		return -1;
	struct blob_args a = {.data = data, .len = len, .sha_hex = sha_hex_r};
	return store_write(st, blob_put_fn, &a, err);
}

int
store_blob_get(struct store *st, const char *sha_hex, struct buf *out, struct err *err)
{
	if (sha_hex == NULL || strlen(sha_hex) != STORE_SHA_HEX ||
	    strspn(sha_hex, "0123456789abcdef") != STORE_SHA_HEX)
		return err_set(err, STORE_EINVAL, "bad blob id");
	sqlite3 *db = store_db_reader(st, err);
	if (db == NULL)
		return -1;
	sqlite3_stmt *stmt;
	if (store_db_prepare(db, "SELECT data FROM blobs WHERE sha256 = ?1", &stmt, err) < 0)
		return -1;
	sqlite3_bind_text(stmt, 1, sha_hex, -1, SQLITE_STATIC);
	int ret = 0;
	int rc = sqlite3_step(stmt);
	if (rc == SQLITE_ROW) {
		const void *p = sqlite3_column_blob(stmt, 0);
		size_t n = (size_t)sqlite3_column_bytes(stmt, 0);
		if (n > 0 && buf_append(out, p, n) < 0)
			ret = err_set(err, STORE_EINVAL, "blob %s (%zu bytes) exceeds the buffer",
			              sha_hex, n);
	} else if (rc == SQLITE_DONE) {
		ret = err_set(err, STORE_ENOTFOUND, "no blob %s", sha_hex);
	} else {
		ret = store_db_fail(db, err, "blob-get");
	}
	sqlite3_finalize(stmt);
	return ret;
}

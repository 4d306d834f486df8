/* Message bodies stored once per distinct content, keyed by the lower-case hex SHA-256 of the raw
 * bytes (DESIGN.md §2). The digest is computed on the caller's thread so the writer spends its
 * time on SQLite only; the insert is a no-op when the blob exists, which is the deduplication.
 * Blobs live in the same database, so a backup copies bodies and metadata consistently. */
#include "store_private.h"

#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>

#include "util/clock.h"
#include "util/rand.h"
#include "util/xalloc.h"

/* Bodies from this size on are inserted as a zeroblob and then written in place with
 * sqlite3_blob_write: a bound value would make SQLite assemble the whole record in memory first,
 * a second full copy of up to a gigabyte on the writer thread. */
#define BLOB_INCREMENTAL_MIN (1024 * 1024)
#define BLOB_WRITE_CHUNK     (64 * 1024 * 1024)

struct blob_args {
	const void *data;
	size_t len;
	const char *sha_hex;
};

int
store_blob_sha256(const void *data, size_t len, char out[STORE_SHA_HEX + 1], struct err *err)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int md_len = 0;
	if (EVP_Digest(len ? data : "", len, md, &md_len, EVP_sha256(), NULL) != 1 || md_len != 32)
		return err_set(err, STORE_EINTERNAL, "SHA-256 failed");
	hex_encode(md, md_len, out);
	return 0;
}

/* Fills the zeroblob of row rowid with data. */
static int
blob_write(sqlite3 *db, int64_t rowid, const unsigned char *data, size_t len, struct err *err)
{
	sqlite3_blob *b;
	if (sqlite3_blob_open(db, "main", "blobs", "data", rowid, 1, &b) != SQLITE_OK)
		return store_db_fail(db, err, "blob-open");
	int ret = 0;
	for (size_t off = 0; off < len && ret == 0;) {
		size_t n = len - off < BLOB_WRITE_CHUNK ? len - off : BLOB_WRITE_CHUNK;
		if (sqlite3_blob_write(b, data + off, (int)n, (int)off) != SQLITE_OK)
			ret = store_db_fail(db, err, "blob-write");
		off += n;
	}
	if (sqlite3_blob_close(b) != SQLITE_OK && ret == 0)
		ret = store_db_fail(db, err, "blob-close");
	return ret;
}

int
store_tx_blob_put(struct store_tx *tx, const char *sha_hex, const void *data, size_t len,
                  struct err *err)
{
	sqlite3 *db = store_tx_db(tx);
	int limit = sqlite3_limit(db, SQLITE_LIMIT_LENGTH, -1);
	if (len > (size_t)limit)
		return err_set(err, STORE_EINVAL, "body of %zu bytes exceeds the store limit of %d",
		               len, limit);
	sqlite3_stmt *stmt = store_tx_stmt(tx, STMT_DELIVER_BLOB, err);
	if (stmt == NULL)
		return -1;
	bool incremental = len >= BLOB_INCREMENTAL_MIN;
	sqlite3_bind_text(stmt, 1, sha_hex, STORE_SHA_HEX, SQLITE_STATIC);
	sqlite3_bind_int64(stmt, 2, (int64_t)len);
	sqlite3_bind_int64(stmt, 3, clock_now());
	if (incremental)
		sqlite3_bind_zeroblob64(stmt, 4, len);
	else /* a NULL pointer would bind SQL NULL; an empty body is a zero-length blob */
		sqlite3_bind_blob64(stmt, 4, len ? data : "", len, SQLITE_STATIC);
	if (store_stmt_done(db, stmt, err, "blob-put") < 0) {
		if (sqlite3_extended_errcode(db) == SQLITE_TOOBIG)
			err_set(err, STORE_EINVAL, "body of %zu bytes is too large for the store",
			        len);
		return -1;
	}
	if (!incremental || sqlite3_changes(db) == 0)
		return 0; /* small, or already stored */
	return blob_write(db, sqlite3_last_insert_rowid(db), data, len, err);
}

static int
blob_put_fn(struct store_tx *tx, void *arg, struct err *err)
{
	struct blob_args *a = arg;
	return store_tx_blob_put(tx, a->sha_hex, a->data, a->len, err);
}

int
store_blob_put(struct store *st, const void *data, size_t len, char sha_hex_r[65], struct err *err)
{
	if (len > INT64_MAX)
		return err_set(err, STORE_EINVAL, "blob too large");
	if (store_blob_sha256(data, len, sha_hex_r, err) < 0)
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

/* ---- reading a stored message by byte range ---- */

#define STORE_READ_CHUNK (256 * 1024) /* bytes per sqlite3_blob_read into the caller's buffer */

/* Appends body bytes [off, off + len) of blob rowid to out in chunks (incremental blob I/O: the
 * body is never loaded whole). */
static int
blob_read_range(sqlite3 *db, int64_t rowid, uint64_t off, uint64_t len, struct buf *out,
                struct err *err)
{
	sqlite3_blob *b;
	if (sqlite3_blob_open(db, "main", "blobs", "data", rowid, 0, &b) != SQLITE_OK)
		return store_db_fail(db, err, "blob-open");
	size_t chunk = len < STORE_READ_CHUNK ? (size_t)len : STORE_READ_CHUNK;
	unsigned char *tmp = xmalloc(chunk ? chunk : 1);
	int ret = 0;
	while (len > 0 && ret == 0) {
		size_t n = len < chunk ? (size_t)len : chunk;
		if (off > INT32_MAX || sqlite3_blob_read(b, tmp, (int)n, (int)off) != SQLITE_OK)
			ret = store_db_fail(db, err, "blob-read");
		else if (buf_append(out, tmp, n) < 0)
			ret = err_set(err, STORE_EINVAL, "message bytes exceed the buffer");
		off += n;
		len -= n;
	}
	free(tmp);
	(void)sqlite3_blob_close(b);
	return ret;
}

int
store_message_range(sqlite3 *db, const unsigned char *header, uint64_t header_len, int64_t rowid,
                    uint64_t body_len, uint64_t off, uint64_t len, struct buf *out, struct err *err)
{
	uint64_t size = header_len + body_len;
	uint64_t end = off >= size ? off : len > size - off ? size : off + len;
	if (off < header_len) {
		uint64_t hend = end < header_len ? end : header_len;
		if (buf_append(out, header + off, (size_t)(hend - off)) < 0)
			return err_set(err, STORE_EINVAL, "message bytes exceed the buffer");
	}
	if (end > header_len && end > off) {
		uint64_t boff = off > header_len ? off - header_len : 0;
		return blob_read_range(db, rowid, boff, end - header_len - boff, out, err);
	}
	return 0;
}

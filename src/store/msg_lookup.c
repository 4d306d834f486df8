/* Finding a message record from the queue side (a report that came back names the queue message
 * by its VERP token; its events belong to the record's public id and domain). */
#include <stdio.h>

#include "store_private.h"

int
store_api_message_by_queue(struct store *st, int64_t queue_msg_id, char *public_id,
                           size_t public_id_n, char *domain, size_t domain_n, struct err *err)
{
	sqlite3 *db = store_db_reader(st, err);
	if (db == NULL)
		return -1;
	sqlite3_stmt *stmt;
	if (store_db_prepare(db,
	                     "SELECT public_id, domain FROM api_messages WHERE queue_msg_id = ?1"
	                     " ORDER BY id LIMIT 1",
	                     &stmt, err) < 0)
		return -1;
	sqlite3_bind_int64(stmt, 1, queue_msg_id);
	int rc = sqlite3_step(stmt), ret = 0;
	if (rc == SQLITE_ROW) {
		(void)snprintf(public_id, public_id_n, "%s",
		               (const char *)sqlite3_column_text(stmt, 0));
		(void)snprintf(domain, domain_n, "%s", (const char *)sqlite3_column_text(stmt, 1));
	} else if (rc == SQLITE_DONE) {
		ret = err_set(err, STORE_ENOTFOUND, "no message record for queue message %lld",
		              (long long)queue_msg_id);
	} else {
		ret = store_db_fail(db, err, "api-message-by-queue");
	}
	sqlite3_finalize(stmt);
	return ret;
}

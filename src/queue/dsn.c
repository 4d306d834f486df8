/* DSN decisions and emission (RFC 3461, RFC 3464): see queue/dsn.h for the rules. The notice
 * itself is built by mail/dsn.c; this file reads the original from the queue, picks the
 * recipients and stores the DSN (INBOX for a local dsn_to, outbound queue otherwise). */
#include "queue/dsn.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "mail/dsn.h"
#include "mail/mime.h"
#include "util/buf.h"
#include "util/log.h"
#include "util/rand.h"
#include "util/xalloc.h"

#define QUEUE_DSN_HDRS_READ (64u * 1024u) /* bytes read for RET=HDRS (header section) */
#define QUEUE_DSN_MAX_AGE   (5 * 86400)   /* default delivery.max_age */

/* Does the comma-separated NOTIFY list contain word (ASCII case ignored)? */
static bool
notify_has(const char *notify, const char *word)
{
	size_t wl = strlen(word);
	const char *p = notify;
	while (*p) {
		size_t n = strcspn(p, ",");
		while (n > 0 && (*p == ' ' || *p == '\t')) {
			p++;
			n--;
		}
		size_t m = n;
		while (m > 0 && (p[m - 1] == ' ' || p[m - 1] == '\t'))
			m--;
		if (m == wl && strncasecmp(p, word, wl) == 0)
			return true;
		p += n;
		if (*p == ',')
			p++;
	}
	return false;
}

bool
queue_dsn_wanted(const char *notify, enum queue_dsn_kind kind)
{
	/* RFC 3461 §4.1: no NOTIFY means FAILURE,DELAY at the MTA's discretion. */
	if (notify == NULL || *notify == '\0')
		return kind != QUEUE_DSN_DELIVERED;
	if (notify_has(notify, "NEVER"))
		return false;
	switch (kind) {
	case QUEUE_DSN_FAILED:
		return notify_has(notify, "FAILURE");
	case QUEUE_DSN_DELAYED:
		return notify_has(notify, "DELAY");
	case QUEUE_DSN_DELIVERED:
		return notify_has(notify, "SUCCESS");
	}
	return false;
}

static enum dsn_action
action_of(enum queue_dsn_kind kind)
{
	switch (kind) {
	case QUEUE_DSN_DELAYED:
		return DSN_ACTION_DELAYED;
	case QUEUE_DSN_DELIVERED:
		return DSN_ACTION_DELIVERED;
	case QUEUE_DSN_FAILED:
		break;
	}
	return DSN_ACTION_FAILED;
}

/* The original as sent (queue header + body): all of it for RET=FULL within DSN_FULL_MAX,
 * else the first QUEUE_DSN_HDRS_READ bytes (the builder keeps the header section). */
static int
read_original(struct store *st, const struct store_queue_msg *msg, struct buf *out,
              enum dsn_ret *ret_r, struct err *err)
{
	bool full = msg->ret && strcasecmp(msg->ret, "FULL") == 0 && msg->size <= DSN_FULL_MAX;
	uint64_t len = full ? msg->size : QUEUE_DSN_HDRS_READ;
	if (len > msg->size)
		len = msg->size;
	*ret_r = full ? DSN_RET_FULL : DSN_RET_HDRS;
	if (len == 0)
		return 0;
	return store_queue_read(st, msg->id, 0, len, out, err);
}

/* Stores dsn (from the null sender) for dsn_to: INBOX copies for the local accounts it
 * resolves to, a queued copy for remote targets. An unknown or disabled dsn_to drops it. */
static int
store_dsn(struct store *st, const char *hostname, const char *dsn_to, char sep,
          const struct buf *dsn, int64_t now, bool *sent_r, struct err *err)
{
	struct store_rcpt r;
	if (store_rcpt_resolve(st, dsn_to, sep, 0, &r, err) < 0)
		return -1;
	struct store_local_rcpt *local = xcalloc(r.n_targets + 1, sizeof *local);
	struct store_remote_rcpt *remote = xcalloc(r.n_targets + 1, sizeof *remote);
	char **hdrs = xcalloc(r.n_targets + 1, sizeof *hdrs);
	size_t nl = 0, nr = 0;
	if (r.status == STORE_RCPT_REMOTE) {
		remote[nr++] = (struct store_remote_rcpt){.address = dsn_to, .notify = "NEVER"};
	} else if (r.status == STORE_RCPT_OK || r.status == STORE_RCPT_OVER_QUOTA) {
		for (size_t i = 0; i < r.n_targets; i++) {
			if (r.targets[i].remote) {
				remote[nr++] = (struct store_remote_rcpt){
				    .address = r.targets[i].address, .notify = "NEVER"};
				continue;
			}
			hdrs[nl] = xasprintf("Return-Path: <>\r\nDelivered-To: %s\r\n",
			                     r.targets[i].address);
			local[nl] = (struct store_local_rcpt){.account = r.targets[i].address,
			                                      .header = hdrs[nl],
			                                      .header_len = strlen(hdrs[nl])};
			nl++;
		}
	}
	int rc = 0;
	if (nl + nr == 0) {
		log_warn("dsn dropped to=%s reason=\"recipient unknown or disabled\"", dsn_to);
		goto out;
	}
	struct mime_meta meta = {0};
	if (nl > 0 && mime_meta_build(dsn->data, dsn->len, &meta) < 0) {
		mime_meta_deinit(&meta);
		meta = (struct mime_meta){0};
	}
	/* RET=FULL may return an 8-bit original inside message/rfc822 (RFC 6152 needed). */
	bool eightbit = false;
	for (size_t i = 0; i < dsn->len && !eightbit; i++)
		eightbit = dsn->data[i] >= 0x80;
	struct store_delivery d = {
	    .body = dsn->data,
	    .body_len = dsn->len,
	    .internal_date = now,
	    .local = local,
	    .n_local = nl,
	    .mail_from = "", /* RFC 3461 §6.2: DSNs go out with the null sender */
	    .eightbit = eightbit,
	    .queue_header = "",
	    .queue_header_len = 0,
	    .remote = remote,
	    .n_remote = nr,
	    .meta_envelope = meta.envelope,
	    .meta_body = meta.body,
	    .meta_bodystructure = meta.bodystructure,
	    .meta_parts = meta.parts.data,
	    .meta_parts_len = meta.parts.len,
	};
	int64_t qid = 0;
	rc = store_deliver(st, &d, &qid, err);
	mime_meta_deinit(&meta);
	if (rc == 0) {
		*sent_r = true;
		log_info("dsn stored to=%s local=%zu remote=%zu queue=%lld host=%s", dsn_to, nl, nr,
		         (long long)qid, hostname);
	}
out:
	for (size_t i = 0; i < nl; i++)
		free(hdrs[i]);
	free(hdrs);
	free(local);
	free(remote);
	store_rcpt_deinit(&r);
	return rc;
}

int
queue_dsn_emit(struct store *st, const char *hostname, const struct store_queue_msg *msg,
               const struct store_queue_item *const *items, size_t n, enum queue_dsn_kind kind,
               int64_t now, int64_t max_age, char subaddress_sep, bool *sent_r, struct err *err)
{
	bool sent_dummy;
	if (sent_r == NULL)
		sent_r = &sent_dummy;
	*sent_r = false;
	/* Never a DSN about a DSN (null sender), never without someone to tell. */
	if (msg->dsn_to == NULL || *msg->dsn_to == '\0' || msg->mail_from == NULL ||
	    *msg->mail_from == '\0' || n == 0)
		return 0;
	if (max_age <= 0)
		max_age = QUEUE_DSN_MAX_AGE;
	struct dsn_rcpt *rc = xcalloc(n, sizeof *rc);
	size_t k = 0;
	for (size_t i = 0; i < n; i++) {
		const struct store_queue_item *it = items[i];
		if (!queue_dsn_wanted(it->notify, kind))
			continue;
		rc[k++] = (struct dsn_rcpt){
		    .final_rcpt = it->rcpt,
		    .orcpt = it->orcpt,
		    .action = action_of(kind),
		    .status = it->last_dsn,
		    .remote_mta = it->relay,
		    .diagnostic = it->last_error,
		    .last_attempt = it->last_attempt ? it->last_attempt : now,
		    .will_retry_until = kind == QUEUE_DSN_DELAYED ? msg->created + max_age : 0,
		};
	}
	int ret = 0;
	struct buf orig, dsn;
	buf_init(&orig, 0);
	buf_init(&dsn, 0);
	if (k == 0)
		goto out;
	enum dsn_ret dret = DSN_RET_HDRS;
	if (read_original(st, msg, &orig, &dret, err) < 0) {
		ret = -1;
		goto out;
	}
	char token[25];
	rand_token(token, 24);
	char boundary[64], msgid[320];
	(void)snprintf(boundary, sizeof boundary, "=_lightr-dsn-%s", token);
	int mn = snprintf(msgid, sizeof msgid, "<dsn.%s@%s>", token, hostname);
	struct dsn_report r = {
	    .reporting_mta = hostname,
	    .to = msg->dsn_to,
	    .envid = msg->envid,
	    .arrival = msg->created,
	    .now = now,
	    .message_id = mn > 0 && (size_t)mn < sizeof msgid ? msgid : NULL,
	    .boundary = boundary,
	    .ret = dret,
	    .rcpts = rc,
	    .n_rcpts = k,
	    .original = orig.data,
	    .original_len = orig.len,
	};
	if (dsn_build(&r, &dsn) < 0) {
		ret = err_set(err, STORE_EINTERNAL, "dsn build failed");
		goto out;
	}
	ret = store_dsn(st, hostname, msg->dsn_to, subaddress_sep, &dsn, now, sent_r, err);
	if (ret == 0 && *sent_r)
		log_info("dsn sent queue=%lld kind=%s rcpts=%zu to=%s", (long long)msg->id,
		         dsn_action_name(action_of(kind)), k, msg->dsn_to);
out:
	buf_deinit(&orig);
	buf_deinit(&dsn);
	free(rc);
	return ret;
}

void
queue_dsn_hook(void *vctx, const struct queue_batch *b, enum queue_dsn_kind kind,
               const struct store_queue_item *const *items, size_t n)
{
	struct queue_dsn_ctx *ctx = vctx;
	struct err err = {0};
	if (queue_dsn_emit(ctx->store, ctx->hostname, &b->job.msg, items, n, kind, b->now,
	                   ctx->max_age, ctx->subaddress_sep, NULL, &err) < 0) {
		log_error("dsn failed queue=%lld error=\"%s\"", (long long)b->job.msg.id, err.msg);
		return; /* FAILED rows stay !dsn_done: a later pass may retry */
	}
	if (kind != QUEUE_DSN_FAILED || n == 0)
		return;
	int64_t *ids = xcalloc(n, sizeof *ids);
	for (size_t i = 0; i < n; i++)
		ids[i] = items[i]->id;
	if (store_queue_dsn_done(ctx->store, ids, n, &err) < 0)
		log_error("dsn done-mark failed queue=%lld error=\"%s\"", (long long)b->job.msg.id,
		          err.msg);
	free(ids);
}

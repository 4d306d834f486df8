/* Reports that come back (issue 7, DESIGN.md §7 "Bounces"): mail for a VERP address
 * bounce+<token>@<our domain> is matched to the queued message by its token, parsed as an RFC
 * 3464 DSN, an RFC 5965 feedback report or (best effort) a plain-text bounce, and becomes
 * events (message.bounced with source "dsn", message.complained) and suppression entries. It
 * is never stored in a mailbox. The token, not the report's headers, says which message it is;
 * the report says which recipient (falling back to the message's only recipient). */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>
#include <stdlib.h>
#include <time.h>

#include "mail/dsn.h"
#include "server/submit.h"
#include "server_private.h"
#include "util/log.h"
#include "util/xalloc.h"

#define BOUNCE_SOFT_LIMIT 3 /* consecutive soft bounces before an address is suppressed */

bool
server_bounce_token(const char *addr, char token[SERVER_VERP_TOKEN_LEN + 1])
{
	static const char prefix[] = "bounce+";
	if (strncasecmp(addr, prefix, sizeof prefix - 1) != 0)
		return false;
	const char *t = addr + sizeof prefix - 1, *at = strchr(t, '@');
	if (at == NULL || at - t != SERVER_VERP_TOKEN_LEN)
		return false;
	for (size_t i = 0; i < SERVER_VERP_TOKEN_LEN; i++) {
		char c = t[i];
		if (!((c >= 'a' && c <= 'z') || (c >= '2' && c <= '7')))
			return false;
		token[i] = c;
	}
	token[SERVER_VERP_TOKEN_LEN] = '\0';
	return true;
}

/* One event for message qid's recipient rcpt. */
static void
bounce_event(struct store *st, const char *type, const char *domain, const char *message,
             const char *rcpt, json_t *detail)
{
	char *text = json_dumps(detail, JSON_COMPACT);
	struct store_event_new e = {.type = type,
	                            .domain = domain,
	                            .message = message,
	                            .recipient = rcpt,
	                            .detail = text,
	                            .created = (int64_t)time(NULL)};
	struct err err = {0};
	if (store_event_add(st, &e, NULL, &err) < 0)
		log_error("bounce - event failed type=%s rcpt=%s error=\"%s\"", type, rcpt,
		          err.msg);
	free(text);
	json_decref(detail);
}

/* The queue recipient of m that the report's address names; NULL when none does and the
 * message has more than one. */
static const struct store_queue_item *
bounce_match(const struct store_queue_item *v, size_t n, const char *addr)
{
	for (size_t i = 0; i < n; i++)
		if (strcasecmp(v[i].rcpt, addr) == 0)
			return &v[i];
	return n == 1 ? &v[0] : NULL;
}

static void
bounce_suppress(struct store *st, const char *domain, const char *rcpt, char sep,
                const char *reason, const char *source)
{
	bool added = false;
	struct err err = {0};
	if (store_suppress_add(st, domain, rcpt, sep, reason, source, (int64_t)time(NULL), &added,
	                       &err) < 0)
		log_error("bounce - suppress failed rcpt=%s error=\"%s\"", rcpt, err.msg);
	else if (added)
		log_info("bounce - suppressed domain=%s rcpt=%s reason=%s", domain, rcpt, reason);
}

int
server_bounce_process(struct store *st, const char *token, const unsigned char *msg, size_t len,
                      char sep, const char *id)
{
	struct store_queue_msg m;
	struct store_queue_item *items = NULL;
	size_t n = 0;
	struct err err = {0};
	if (store_queue_by_token(st, token, &m, &err) < 0) {
		if (err.code != STORE_ENOTFOUND)
			return -1;
		log_info("smtp %s bounce-unknown token=%s (message no longer queued): dropped", id,
		         token);
		return 0;
	}
	int64_t qid = m.id;
	store_queue_msg_deinit(&m);
	if (store_queue_show(st, qid, &m, &items, &n, &err) < 0) {
		if (err.code != STORE_ENOTFOUND)
			return -1;
		log_info("smtp %s bounce-unknown token=%s: dropped", id, token);
		return 0;
	}
	char public_id[128] = "", domain[256] = "";
	if (store_api_message_by_queue(st, qid, public_id, sizeof public_id, domain, sizeof domain,
	                               &err) < 0) {
		const char *at = strrchr(m.mail_from, '@');
		(void)snprintf(domain, sizeof domain, "%s", at ? at + 1 : "");
	}
	struct dsn_parsed *p = xcalloc(1, sizeof *p);
	dsn_parse(msg, len, p);
	const char *msgid = public_id[0] ? public_id : NULL;
	size_t used = 0;
	if (p->kind == DSN_PARSE_ARF) {
		size_t nr = p->n_rcpts ? p->n_rcpts : 1;
		for (size_t i = 0; i < nr; i++) {
			const struct store_queue_item *it =
			    bounce_match(items, n, p->n_rcpts ? p->rcpts[i].address : "");
			if (it == NULL)
				continue;
			bounce_event(st, "message.complained", domain, msgid, it->rcpt,
			             json_pack("{s:s,s:s,s:s}", "source", "arf", "feedback_type",
			                       p->feedback_type, "reporting_mta",
			                       p->reporting_mta));
			bounce_suppress(st, domain, it->rcpt, sep, "complaint", p->feedback_type);
			used++;
		}
	} else if (p->kind != DSN_PARSE_NONE) {
		for (size_t i = 0; i < p->n_rcpts; i++) {
			const struct dsn_parsed_rcpt *r = &p->rcpts[i];
			bool failed = strcasecmp(r->action, "failed") == 0 ||
			              (r->action[0] == '\0' &&
			               (r->status[0] == '5' || dsn_parsed_is_hard(r)));
			if (!failed)
				continue;
			const struct store_queue_item *it = bounce_match(items, n, r->address);
			if (it == NULL)
				continue;
			bool hard = dsn_parsed_is_hard(r);
			bounce_event(st, "message.bounced", domain, msgid, it->rcpt,
			             json_pack("{s:s,s:b,s:s,s:s,s:s,s:s}", "source", "dsn", "hard",
			                       hard, "status", r->status, "reply", r->diagnostic,
			                       "reporting_mta", p->reporting_mta, "remote_mta",
			                       r->remote_mta));
			if (hard) {
				bounce_suppress(st, domain, it->rcpt, sep, "hard_bounce",
				                r->diagnostic[0] ? r->diagnostic : r->status);
			} else {
				uint32_t count = 0;
				if (store_bounce_soft(st, domain, it->rcpt, sep, &count, &err) ==
				        0 &&
				    count >= BOUNCE_SOFT_LIMIT)
					bounce_suppress(st, domain, it->rcpt, sep, "soft_bounces",
					                r->status);
			}
			used++;
		}
	}
	log_info("smtp %s bounce-report token=%s queue=%lld kind=%d recipients=%zu events=%zu", id,
	         token, (long long)qid, (int)p->kind, p->n_rcpts, used);
	free(p);
	store_queue_msg_deinit(&m);
	store_queue_items_free(&items, n);
	server_events_wake();
	return 0;
}

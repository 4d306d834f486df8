/* Accepting one message for delivery (DESIGN.md §7): the path shared by SMTP (MX and
 * submission, server/hooks.c) and `lightr send` (cli/cmd_send.c). Expands recipients (aliases,
 * forwarding), stores local copies in INBOXes and queues remote recipients in one durable
 * store_deliver. For submitted mail (opts->submission) with remote recipients it also:
 *   - signs with DKIM: every active key of the From: domain when that domain is ours, else of
 *     the envelope sender's domain; no key: sent unsigned, with a warning in the log. The
 *     DKIM-Signature fields go into the queue header (before the Received line), which is not
 *     in h=; the signatures cover the body as received. Local copies are not signed (they never
 *     leave the server);
 *   - gives the queued message a VERP envelope sender bounce+<token>@<sender domain> (token: 16
 *     random base32 characters) and dsn_to = the envelope sender (never for the null sender).
 * Thread safety: reentrant; the store is thread-safe. */
#ifndef LIGHTR_SERVER_SUBMIT_H
#define LIGHTR_SERVER_SUBMIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "smtp/server.h"
#include "store/store.h"

#define SERVER_VERP_TOKEN_LEN 16

struct server_submit_opts {
	char subaddress_sep;   /* '\0': off */
	const char *id;        /* for logs ("smtp <id>" / "send <id>") */
	const char *component; /* "smtp" or "send" */
	bool submission;       /* authenticated submitter or `lightr send`: DKIM, VERP, dsn_to */
	int64_t now;           /* internal date and DKIM t=; 0 = time(NULL) */
	const struct store_api_send *api; /* REST API send record (store_delivery.api) or NULL */
	struct err *err_r;                /* when not NULL: the store error of a failed delivery */
	/* Inbound authentication (issue 9): the Authentication-Results field for the local copies
	 * (before their Received line), the mailbox ("Junk" or NULL = INBOX), and the results as
	 * JSON for message.received. Each may be NULL. */
	const char *authres;
	const char *mailbox;
	const char *authres_json;
	/* Rate limits (issue 8): the daily usage counters the sender's limit take made
	 * (server_limit_take_send's struct server_limit_taken), added by store_deliver in the same
	 * transaction as the message. NULL/0: none. */
	const struct store_limit_inc *limit_incs;
	size_t n_limit_incs;
};

/* Delivers msg for env (env->rcpts classified: SMTP_RCPT_LOCAL / SMTP_RCPT_REMOTE;
 * env->received is the trace header prepended to every copy, may be ""). Returns 0 when stored
 * durably (*queue_id_r, may be NULL, gets the queue message id or 0), else -1 with *reply_r
 * set to the 4xx reply to give (details logged). */
int server_submit(struct store *st, const struct server_submit_opts *opts,
                  const struct smtp_envelope *env, const unsigned char *msg, size_t len,
                  int64_t *queue_id_r, struct smtp_hook_reply *reply_r);

/* The address of the first From: mailbox of msg's header, lower-cased domain, into out (size
 * n). Returns 0, or -1 when there is none or it does not parse or fit. */
int server_from_address(const unsigned char *msg, size_t len, char *out, size_t n);

#endif

/* lightr send [-f FROM] RCPT... < message: injects a message from a script through the same
 * path as SMTP submission (server/submit.h): sender check, Date/Message-ID added when missing
 * (RFC 6409 §8.2, §8.3), local recipients into their INBOX, remote ones queued with DKIM and the
 * VERP envelope sender, within the account's and domain's rate limits (refused: exit 1 with the
 * limit's text). The running server's scheduler picks queued mail up within a second. */
#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "cli_private.h"
#include "mail/addr.h"
#include "mail/hdr.h"
#include "server/server.h"
#include "server/submit.h"
#include "util/buf.h"
#include "util/rand.h"
#include "util/xalloc.h"

#define SEND_ADDR_MAX 320

/* RFC 5322 §3.3 date in UTC, locale-independent. */
static void
send_date(int64_t t, char *out, size_t n)
{
	static const char days[7][4] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
	static const char months[12][4] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
	                                   "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
	time_t tt = (time_t)t;
	struct tm tm;
	if (gmtime_r(&tt, &tm) == NULL) {
		(void)snprintf(out, n, "Thu, 1 Jan 1970 00:00:00 +0000");
		return;
	}
	(void)snprintf(out, n, "%s, %d %s %04d %02d:%02d:%02d +0000", days[tm.tm_wday % 7],
	               tm.tm_mday, months[tm.tm_mon % 12], tm.tm_year + 1900, tm.tm_hour, tm.tm_min,
	               tm.tm_sec);
}

/* Reads stdin into out with every line ending in CRLF (scripts write bare LF). Returns 0, -1 on
 * a read error, -2 when the message exceeds max. */
static int
read_message(size_t max, struct buf *out)
{
	unsigned char chunk[16384];
	bool cr = false;
	for (;;) {
		ssize_t r = read(STDIN_FILENO, chunk, sizeof chunk);
		if (r < 0)
			return -1;
		if (r == 0)
			break;
		for (ssize_t i = 0; i < r; i++) {
			if (chunk[i] == '\n' && !cr && buf_append_byte(out, '\r') < 0)
				return -2;
			if (buf_append_byte(out, chunk[i]) < 0)
				return -2;
			cr = chunk[i] == '\r';
		}
		if (out->len > max)
			return -2;
	}
	if (out->len > 0 && out->data[out->len - 1] != '\n' && buf_append_str(out, "\r\n") < 0)
		return -2;
	return out->len > max ? -2 : 0;
}

static bool
has_field(const unsigned char *msg, size_t len, const char *name, bool *bad_r)
{
	struct hdr_iter it;
	struct hdr_field f;
	const char *why;
	enum hdr_next nx;
	hdr_iter_init(&it, msg, len);
	while ((nx = hdr_iter_next(&it, &f, &why)) == HDR_FIELD)
		if (slice_eq_nocase(f.name, name))
			return true;
	if (nx == HDR_ERROR && bad_r)
		*bad_r = true;
	return false;
}

/* Is addr one of ours (account or alias, possibly disabled)? *account_r gets the account that
 * stands for it (the first local target), for the queue's auth_user. */
static int
sender_is_local(struct store *st, const char *addr, char sep, char *account_r, size_t n)
{
	struct store_rcpt r;
	struct err err = {0};
	if (store_rcpt_resolve(st, addr, sep, 0, &r, &err) < 0) {
		(void)cli_store_error(addr, &err);
		return -1;
	}
	int ok = 0;
	if (r.status != STORE_RCPT_REMOTE && r.status != STORE_RCPT_UNKNOWN) {
		for (size_t i = 0; i < r.n_targets && !ok; i++)
			if (!r.targets[i].remote) {
				(void)snprintf(account_r, n, "%s", r.targets[i].address);
				ok = 1;
			}
	}
	store_rcpt_deinit(&r);
	return ok;
}

static bool
is_ascii(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s >= 0x80)
			return false;
	return true;
}

int
cmd_send(struct cli_ctx *ctx, int argc, char **argv)
{
	static const struct cli_opt opts[] = {{"-f", true}, {NULL, false}};
	PARSE_ARGS(
	    opts, "lightr [-c FILE] send [-f FROM] RCPT... < MESSAGE",
	    "Reads a message (RFC 5322, LF or CRLF line ends) from standard input and sends it\n"
	    "through the submission path: local recipients get it in their INBOX, remote ones\n"
	    "are queued, DKIM-signed and relayed by the running server. FROM (default: the\n"
	    "From: address) and the From: address must be local accounts or aliases. Date and\n"
	    "Message-ID are added when missing; so is From: when -f is given without one.\n",
	    1, CLI_MAX_POS);
	struct config *cfg = cli_config(ctx);
	if (cfg == NULL)
		return EXIT_FAIL;
	const char *sep_s = cfg->smtp.subaddress_separator;
	char sep = sep_s == NULL || strcmp(sep_s, "none") == 0 ? '\0' : sep_s[0];

	struct buf raw;
	buf_init(&raw, cfg->smtp.max_message_size + 3);
	int rr = read_message(cfg->smtp.max_message_size, &raw);
	if (rr < 0) {
		buf_deinit(&raw);
		if (rr == -2)
			cli_error("message larger than smtp.max_message_size (%llu bytes)",
			          (unsigned long long)cfg->smtp.max_message_size);
		else
			cli_error("reading the message from standard input failed");
		return EXIT_FAIL;
	}
	int rc = EXIT_FAIL;
	struct buf msg;
	buf_init(&msg, 0);
	struct smtp_rcpt *rcpts = xcalloc((size_t)a.n_pos, sizeof *rcpts);
	char *received = NULL;
	bool bad = false;
	char hdr_from[SEND_ADDR_MAX] = "", from[SEND_ADDR_MAX] = "", account[SEND_ADDR_MAX];
	bool have_from = server_from_address(raw.data, raw.len, hdr_from, sizeof hdr_from) == 0;
	(void)has_field(raw.data, raw.len, "From", &bad);
	if (bad) {
		cli_error("the message's header section does not parse");
		goto out;
	}
	if (a.val[0]) {
		if (cli_address_arg(a.val[0], false, from, sizeof from) < 0)
			goto out;
	} else if (have_from) {
		(void)snprintf(from, sizeof from, "%s", hdr_from);
	} else {
		cli_error("no sender: give -f FROM or a From: header");
		goto out;
	}
	struct store *st = cli_store(ctx);
	if (st == NULL)
		goto out;
	int loc = sender_is_local(st, from, sep, account, sizeof account);
	if (loc <= 0) {
		if (loc == 0)
			cli_error("sender %s is not a local account or alias", from);
		goto out;
	}
	char acct2[SEND_ADDR_MAX];
	if (have_from && strcasecmp(hdr_from, from) != 0 &&
	    sender_is_local(st, hdr_from, sep, acct2, sizeof acct2) != 1) {
		cli_error("From: address %s is not a local account or alias", hdr_from);
		goto out;
	}
	/* Recipients: classified now; server_submit expands the local ones again. */
	bool utf8 = !is_ascii(from);
	for (int i = 0; i < a.n_pos; i++) {
		char addr[SEND_ADDR_MAX];
		if (cli_address_arg(a.pos[i], false, addr, sizeof addr) < 0)
			goto out;
		struct store_rcpt r;
		struct err err = {0};
		if (store_rcpt_resolve(st, addr, sep, 0, &r, &err) < 0) {
			rc = cli_store_error(addr, &err);
			goto out;
		}
		enum store_rcpt_status status = r.status;
		store_rcpt_deinit(&r);
		if (status == STORE_RCPT_UNKNOWN || status == STORE_RCPT_DISABLED) {
			cli_error("%s: %s", addr,
			          status == STORE_RCPT_UNKNOWN ? "no such user here"
			                                       : "mailbox disabled");
			goto out;
		}
		rcpts[i] = (struct smtp_rcpt){
		    .addr = xstrdup(addr),
		    .kind = status == STORE_RCPT_REMOTE ? SMTP_RCPT_REMOTE : SMTP_RCPT_LOCAL,
		};
		utf8 = utf8 || !is_ascii(addr);
	}
	/* RFC 6409 §8: a submission server may add Date, Message-ID (and From from -f). */
	int64_t now = (int64_t)time(NULL);
	char date[64], token[25], id[13];
	send_date(now, date, sizeof date);
	rand_token(token, 24);
	rand_token(id, 12);
	const char *domain = strrchr(from, '@') + 1;
	if (!have_from)
		(void)buf_printf(&msg, "From: <%s>\r\n", from);
	if (!has_field(raw.data, raw.len, "Date", NULL))
		(void)buf_printf(&msg, "Date: %s\r\n", date);
	if (!has_field(raw.data, raw.len, "Message-ID", NULL))
		(void)buf_printf(&msg, "Message-ID: <%s@%s>\r\n", token, domain);
	if (buf_append(&msg, raw.data, raw.len) < 0) {
		cli_error("out of memory");
		goto out;
	}
	bool eightbit = false;
	for (size_t i = 0; i < msg.len && !eightbit; i++)
		eightbit = msg.data[i] >= 0x80;
	received = xasprintf("Received: by %s (Lightr) via lightr send id %s;\r\n\t%s\r\n",
	                     cfg->hostname ? cfg->hostname : "localhost", id, date);
	struct smtp_envelope env = {
	    .mail_from = from,
	    .auth_user = account,
	    .helo = "localhost",
	    .smtputf8 = utf8,
	    .eightbit = eightbit,
	    .rcpts = rcpts,
	    .n_rcpts = (size_t)a.n_pos,
	    .received = received,
	    .id = id,
	};
	struct server_submit_opts o = {
	    .subaddress_sep = sep,
	    .id = id,
	    .component = "send",
	    .submission = true,
	    .now = now,
	};
	/* Rate limits (issue 8) of the sender's account and its domain: this process keeps its
	 * own per-minute/per-hour buckets, the daily counts come from the store (and are added
	 * with the message), so per-day limits hold across processes. */
	struct config *cur = config_current(); /* the limits read the current config */
	if (cur == NULL)
		config_set_current(config_ref(cfg));
	config_unref(&cur);
	char lacct[SEND_ADDR_MAX];
	size_t li = 0;
	for (; account[li] != '\0' && li + 1 < sizeof lacct; li++)
		lacct[li] = (char)tolower((unsigned char)account[li]);
	lacct[li] = '\0';
	const char *lat = strrchr(lacct, '@');
	struct server_limit_taken taken;
	struct server_limit_verdict verdict = {0};
	if (!server_limit_take_send(st, lacct, lat ? lat + 1 : NULL, (size_t)a.n_pos, &taken,
	                            &verdict)) {
		cli_error("not sent: %s", verdict.text[0] ? verdict.text : "rate limit reached");
		goto out;
	}
	o.limit_incs = taken.incs;
	o.n_limit_incs = taken.n_incs;
	struct smtp_hook_reply reply = {0};
	int64_t qid = 0;
	if (server_submit(st, &o, &env, msg.data, msg.len, &qid, &reply) < 0) {
		server_limit_refund(&taken);
		cli_error("not sent: %d %s %s", reply.code, reply.enhanced, reply.text);
		goto out;
	}
	server_limit_commit(&taken);
	if (qid > 0)
		printf("sent id=%s queue=%lld\n", id, (long long)qid);
	else
		printf("sent id=%s\n", id);
	rc = EXIT_OK;
out:
	for (int i = 0; i < a.n_pos; i++)
		free(rcpts[i].addr);
	free(rcpts);
	free(received);
	buf_deinit(&msg);
	buf_deinit(&raw);
	return rc;
}

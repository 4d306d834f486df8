/* End of a message (DATA end marker or BDAT LAST): the content verdict of data.c, the header
 * checks (hop count, RFC 5321 §6.3; on submission the sender authorisation of every From:
 * address), the Received trace field (RFC 5321 §4.4, protocol types of RFC 3848 and RFC 6531
 * §3.7.4.2) and the delivery hook. 250 is replied only when the hook says the message is durable.
 * The transaction and the message buffer are dropped afterwards whatever the outcome. */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "mail/hdr.h"
#include "smtp_private.h"
#include "util/log.h"

/* RFC 5322 §3.3 date-time in UTC, e.g. "Tue, 1 Jul 2025 12:00:00 +0000". */
static void
format_date(int64_t t, char *out, size_t n)
{
	static const char *const days[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
	static const char *const months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
	                                     "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
	time_t tt = (time_t)t;
	struct tm tm;
	if (gmtime_r(&tt, &tm) == NULL || tm.tm_wday < 0 || tm.tm_wday > 6 || tm.tm_mon < 0 ||
	    tm.tm_mon > 11) {
		(void)snprintf(out, n, "Thu, 1 Jan 1970 00:00:00 +0000");
		return;
	}
	(void)snprintf(out, n, "%s, %d %s %04d %02d:%02d:%02d +0000", days[tm.tm_wday], tm.tm_mday,
	               months[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

/* Keeps only bytes that may stand inside a comment or a Received clause. */
static void
safe(char *dst, size_t n, const char *src)
{
	size_t o = 0;
	for (; src && *src && o + 1 < n; src++) {
		unsigned char c = (unsigned char)*src;
		dst[o++] =
		    c > 0x20 && c < 0x7f && c != '(' && c != ')' && c != '\\' ? (char)c : '?';
	}
	dst[o] = '\0';
}

/* RFC 3848 / RFC 6531 §3.7.4.2 "with" protocol type. */
static void
protocol_type(const struct smtp_server *s, char *out, size_t n)
{
	if (!s->esmtp) {
		(void)snprintf(out, n, "SMTP");
		return;
	}
	(void)snprintf(out, n, "%s%s%s", s->tx.smtputf8 ? "UTF8SMTP" : "ESMTP", s->tls ? "S" : "",
	               s->auth_user ? "A" : "");
}

static char *
build_received(struct smtp_server *s, const char *id)
{
	char client[300], ip[64], proto[16], date[64], user[300];
	safe(client, sizeof client, s->info.client_name ? s->info.client_name : "unknown");
	safe(ip, sizeof ip, s->info.client_ip ? s->info.client_ip : "unknown");
	protocol_type(s, proto, sizeof proto);
	format_date(s->hooks.now ? s->hooks.now(s->hooks.ctx) : (int64_t)time(NULL), date,
	            sizeof date);
	struct buf b;
	buf_init(&b, 4096);
	(void)buf_printf(&b, "Received: from %s (%s [%s])\r\n\tby %s (Lightr) with %s id %s",
	                 s->helo[0] ? s->helo : "unknown", client, ip, smtp_hostname(s), proto, id);
	if (s->tls)
		(void)buf_printf(&b, "\r\n\t(version=%s cipher=%s)", s->tls_version, s->tls_cipher);
	if (s->auth_user) {
		safe(user, sizeof user, s->auth_user);
		(void)buf_printf(&b, "\r\n\t(authenticated user %s)", user);
	}
	if (s->tx.n_rcpts == 1)
		(void)buf_printf(&b, "\r\n\tfor <%s>", s->tx.rcpts[0].addr);
	(void)buf_printf(&b, ";\r\n\t%s\r\n", date);
	char *r = arena_strndup(s->tx.arena, buf_cstr(&b), b.len);
	buf_deinit(&b);
	return r;
}

/* Header checks. Returns NULL when the message may go on, else the refusal (text may point
 * into the tx arena). */
static const struct smtp_cmd_error *
check_headers(struct smtp_server *s, struct smtp_cmd_error *e)
{
	struct hdr_iter it;
	struct hdr_field f;
	const char *err = NULL;
	unsigned hops = 0, froms = 0;
	struct slice from = {NULL, 0};
	bool submission = s->role != SMTP_ROLE_MX;
	hdr_iter_init(&it, s->data.msg.data, s->data.msg.len);
	enum hdr_next r;
	while ((r = hdr_iter_next(&it, &f, &err)) == HDR_FIELD) {
		if (slice_eq_nocase(f.name, "Received"))
			hops++;
		else if (slice_eq_nocase(f.name, "From") && froms++ == 0)
			from = f.value;
	}
	if (hops > SMTP_HOPS_MAX) {
		*e = (struct smtp_cmd_error){554, "5.4.6", "Too many hops (mail loop?)"};
		return e;
	}
	if (!submission)
		return NULL; /* MX: the header is the sender's business (DMARC comes later) */
	if (r == HDR_ERROR) {
		*e = (struct smtp_cmd_error){550, "5.6.0", "Malformed message header"};
		return e;
	}
	/* RFC 5322 §3.6: exactly one From; several would let a client hide who it claims to be */
	if (froms != 1) {
		*e = (struct smtp_cmd_error){550, "5.6.0",
		                             "Message must have exactly one From field"};
		return e;
	}
	char **addrs;
	size_t n;
	if (hdr_addr_list(from, s->tx.arena, &addrs, &n, &err) < 0 || n == 0) {
		*e = (struct smtp_cmd_error){550, "5.6.0", "Malformed From field"};
		return e;
	}
	for (size_t i = 0; i < n; i++) {
		if (s->hooks.sender_ok(s->hooks.ctx, s->auth_user, addrs[i]))
			continue;
		char e1[128], e2[300];
		smtp_log(s, "from-refused", "user=\"%s\" from=<%s>",
		         log_escape(s->auth_user, e1, sizeof e1),
		         log_escape(addrs[i], e2, sizeof e2));
		*e = (struct smtp_cmd_error){553, "5.7.1",
		                             "From address not owned by the authenticated user"};
		return e;
	}
	return NULL;
}

static void
message_done(struct smtp_server *s)
{
	smtp_tx_reset(s);
	smtp_enter(s, smtp_idle_state(s));
}

void
smtp_message_end(struct smtp_server *s)
{
	s->attempts++;
	char id[96];
	(void)snprintf(id, sizeof id, "%s-%u", s->id, s->attempts); /* an Atom (§4.4) */
	enum smtp_data_result res = smtp_data_result(&s->data);
	if (res != SMTP_DATA_OK) {
		struct smtp_cmd_error e;
		smtp_data_reply(res, &e.code, &e.enhanced, &e.text);
		smtp_log(s, "message-refused", "id=%s reason=%s size=%llu", id,
		         smtp_data_result_name(res), (unsigned long long)s->data.size);
		smtp_out(s, e.code, e.enhanced, e.text);
		message_done(s);
		return;
	}
	struct smtp_cmd_error e;
	if (check_headers(s, &e) != NULL) {
		smtp_log(s, "message-refused", "id=%s reason=header code=%d", id, e.code);
		smtp_out(s, e.code, e.enhanced, e.text);
		message_done(s);
		return;
	}
	struct smtp_envelope env = {
	    .mail_from = s->tx.mail_from,
	    .auth_user = s->auth_user,
	    .helo = s->helo,
	    .ret = s->tx.ret,
	    .envid = s->tx.envid,
	    .smtputf8 = s->tx.smtputf8,
	    .eightbit = s->tx.eightbit,
	    .requiretls = s->tx.requiretls,
	    .rcpts = s->tx.rcpts,
	    .n_rcpts = s->tx.n_rcpts,
	    .received = build_received(s, id),
	    .id = id,
	};
	struct smtp_hook_reply hr = {0};
	const unsigned char *msg = s->data.msg.data ? s->data.msg.data : (const unsigned char *)"";
	if (s->hooks.deliver(s->hooks.ctx, &env, msg, s->data.msg.len, &hr) == 0) {
		s->messages++;
		smtp_outf(s, 250, "2.0.0", "Ok: queued as %s", id);
	} else {
		static const struct smtp_cmd_error fb = {
		    451, "4.3.0", "Temporary local problem, try again later"};
		smtp_hook_reply(s, &hr, &fb);
	}
	message_done(s);
}

void
smtp_bdat_end(struct smtp_server *s)
{
	if (s->bdat_bad) {
		s->bdat_bad = false;
		smtp_enter(s, s->bdat_return);
		smtp_reject(s, &s->bdat_err);
		return;
	}
	if (s->bdat_last) {
		smtp_data_chunk_end(&s->data);
		smtp_message_end(s);
		return;
	}
	/* RFC 3030 §2: a failed chunk fails the transaction; the client must not send more, and
	 * any further (pipelined) BDAT finds no transaction and gets 503 */
	enum smtp_data_result res = smtp_data_result(&s->data);
	if (res != SMTP_DATA_OK) {
		s->attempts++;
		struct smtp_cmd_error e;
		smtp_data_reply(res, &e.code, &e.enhanced, &e.text);
		smtp_log(s, "message-refused", "reason=%s size=%llu", smtp_data_result_name(res),
		         (unsigned long long)s->data.size);
		smtp_out(s, e.code, e.enhanced, e.text);
		message_done(s);
		return;
	}
	smtp_enter(s, SMTP_STATE_CHUNKING);
	smtp_outf(s, 250, "2.0.0", "%llu octets received", (unsigned long long)s->bdat_size);
}

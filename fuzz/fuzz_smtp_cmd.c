/* libFuzzer target: SMTP command-line framing and the MAIL/RCPT/BDAT/EHLO argument grammars.
 * The input is fed in two pieces split at data[0] % size (resumption), and every complete line
 * goes through each argument parser; accepted paths must lie inside the argument. */
#include <stdint.h>
#include <string.h>

#include "smtp/cmd_parser.h"
#include "smtp/server.h"
#include "util/log.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool
inside(struct slice part, struct slice whole)
{
	return part.len == 0 || (part.p >= whole.p && part.p + part.len <= whole.p + whole.len);
}

static void
args(const struct smtp_cmd *cmd)
{
	struct smtp_mail_args m;
	struct smtp_rcpt_args r;
	struct smtp_cmd_error e;
	if (smtp_cmd_parse_mail(cmd->arg, &m, &e) == 0) {
		ASSERT(inside(m.path, cmd->arg));
		ASSERT(m.path.len <= SMTP_PATH_MAX);
		ASSERT(strlen(m.envid) <= SMTP_ENVID_MAX);
	} else {
		ASSERT(e.code >= 500 && e.code <= 555 && e.enhanced && e.text);
	}
	if (smtp_cmd_parse_rcpt(cmd->arg, &r, &e) == 0) {
		ASSERT(inside(r.path, cmd->arg));
		ASSERT(r.path.len > 0);
		ASSERT(!(r.notify & SMTP_NOTIFY_NEVER) || r.notify == SMTP_NOTIFY_NEVER);
	}
	uint64_t n;
	bool last;
	(void)smtp_cmd_parse_bdat(cmd->arg, &n, &last);
	(void)smtp_cmd_helo_is_valid(cmd->arg);
	(void)smtp_cmd_domain_is_valid(cmd->arg, true);
	char out[64];
	(void)smtp_xtext_decode(cmd->arg, out, sizeof out);
}

static void
feed(struct smtp_cmd_parser *p, const uint8_t *data, size_t size)
{
	while (size > 0) {
		size_t used = 0;
		struct smtp_cmd cmd;
		const char *err = NULL;
		enum smtp_parse r = smtp_cmd_parse(p, data, size, &used, &cmd, &err);
		ASSERT(used <= size);
		if (r == SMTP_PARSE_CMD) {
			ASSERT(cmd.line.len + 2 <= SMTP_AUTH_LINE_MAX);
			ASSERT(memchr(cmd.line.p, '\r', cmd.line.len) == NULL);
			ASSERT(memchr(cmd.line.p, '\0', cmd.line.len) == NULL);
			args(&cmd);
		} else if (r == SMTP_PARSE_ERROR) {
			ASSERT(err != NULL);
		} else {
			ASSERT(used == size);
		}
		data += used;
		size -= used;
		if (used == 0)
			break;
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct smtp_cmd_parser *p = smtp_cmd_parser_new(&(struct smtp_cmd_limits){
	    .line_max = SMTP_CMD_LINE_MAX, .auth_line_max = SMTP_AUTH_LINE_MAX});
	size_t cut = size ? data[0] % size : 0;
	if (size && data[0] & 0x80)
		smtp_cmd_parser_set_auth(p, true);
	feed(p, data, cut);
	feed(p, data + cut, size - cut);
	smtp_cmd_parser_free(&p);
	return 0;
}

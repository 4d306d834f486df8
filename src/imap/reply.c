/* Response-formatting helpers shared by the IMAP commands (imap_private.h): tagged completions,
 * mailstore errors mapped onto response codes (RFC 5530, RFC 9051 §7.1), and IMAP strings
 * (quoted or literal, RFC 9051 §4.3). */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "imap/imap_private.h"
#include "mail/addr.h"

/* RFC 9051 §4.3: quoted strings are for short text; longer strings go as literals (and a
 * client's line limits stay comfortable). */
#define IMAP_QUOTED_MAX 1024

void
imap_reply_tagged(struct buf *out, const char *tag, const char *status, const char *code,
                  const char *fmt, ...)
{
	(void)buf_printf(out, "%s %s ", tag != NULL && tag[0] != '\0' ? tag : "*", status);
	if (code != NULL)
		(void)buf_printf(out, "[%s] ", code);
	char text[512];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(text, sizeof text, fmt, ap);
	va_end(ap);
	if (n < 0)
		text[0] = '\0';
	/* resp-text must not break the line (a name or store message could carry CR/LF) */
	for (char *p = text; *p != '\0'; p++)
		if (*p == '\r' || *p == '\n')
			*p = ' ';
	(void)buf_append_str(out, text[0] != '\0' ? text : "Failed");
	(void)buf_append(out, "\r\n", 2);
}

void
imap_reply_ms_error(struct buf *out, const char *tag, const struct err *err, bool trycreate)
{
	int code = err != NULL && err->code != 0 ? err->code : IMAP_MS_EINTERNAL;
	const char *msg = err != NULL && err->msg[0] != '\0' ? err->msg : NULL;
	const char *rc, *def;
	switch (code) {
	case IMAP_MS_ENONEXISTENT:
		rc = trycreate ? "TRYCREATE" : "NONEXISTENT";
		def = "Mailbox does not exist";
		break;
	case IMAP_MS_EEXISTS:
		rc = "ALREADYEXISTS";
		def = "Mailbox already exists";
		break;
	case IMAP_MS_EOVERQUOTA:
		rc = "OVERQUOTA";
		def = "Quota exceeded";
		break;
	case IMAP_MS_EINVAL:
		rc = "CANNOT";
		def = "Operation not permitted";
		break;
	case IMAP_MS_EHASCHILDREN:
		rc = "HASCHILDREN";
		def = "Mailbox has inferior hierarchical names";
		break;
	case IMAP_MS_EMODIFIED:
		rc = NULL;
		def = "Mailbox was modified";
		break;
	default:
		/* storage internals (SQL text, paths) are for the log, not the client */
		rc = "SERVERBUG";
		def = "Internal error occurred, try again later";
		msg = NULL;
		break;
	}
	imap_reply_tagged(out, tag, "NO", rc, "%s", msg != NULL ? msg : def);
}

void
imap_string_out(struct buf *out, const char *s, size_t len, bool utf8)
{
	if (s == NULL) {
		(void)buf_append_str(out, "NIL");
		return;
	}
	const unsigned char *u = (const unsigned char *)s;
	bool quoted = len <= IMAP_QUOTED_MAX, eight = false;
	for (size_t i = 0; i < len && quoted; i++) {
		if (u[i] == '\0' || u[i] == '\r' || u[i] == '\n')
			quoted = false;
		else if (u[i] >= 0x80)
			eight = true;
	}
	if (quoted && eight && (!utf8 || !addr_utf8_is_valid(slice_make(u, len))))
		quoted = false;
	if (!quoted) {
		(void)buf_printf(out, "{%zu}\r\n", len);
		(void)buf_append(out, s, len);
		return;
	}
	(void)buf_append_byte(out, '"');
	size_t run = 0;
	for (size_t i = 0; i < len; i++) {
		if (u[i] == '"' || u[i] == '\\') {
			(void)buf_append(out, s + run, i - run);
			(void)buf_append_byte(out, '\\');
			run = i;
		}
	}
	(void)buf_append(out, s + run, len - run);
	(void)buf_append_byte(out, '"');
}

/* ASTRING-CHAR (RFC 9051 §9): ATOM-CHAR or "]". */
static bool
is_astring_char(unsigned char c)
{
	if (c <= 0x20 || c >= 0x7f)
		return false;
	return strchr("(){%*\"\\", c) == NULL;
}

void
imap_astring_out(struct buf *out, const char *s, bool utf8)
{
	if (s == NULL)
		s = "";
	size_t len = strlen(s);
	bool atom = len > 0 && len <= IMAP_QUOTED_MAX && strcasecmp(s, "NIL") != 0;
	for (size_t i = 0; i < len && atom; i++)
		atom = is_astring_char((unsigned char)s[i]);
	if (atom)
		(void)buf_append(out, s, len);
	else
		imap_string_out(out, s, len, utf8);
}

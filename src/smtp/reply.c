/* SMTP reply formatting; see reply.h. */
#include "reply.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "util/log.h"

static bool
digits(const char **pp, char stop)
{
	const char *p = *pp;
	size_t n = 0;
	while (p[n] >= '0' && p[n] <= '9')
		n++;
	if (n < 1 || n > 3 || p[n] != stop)
		return false;
	*pp = p + n + (stop ? 1 : 0);
	return true;
}

bool
smtp_reply_enh_is_valid(const char *enh, int code)
{
	if (enh == NULL)
		return false;
	char cls = enh[0];
	if ((cls != '2' && cls != '4' && cls != '5') || enh[1] != '.')
		return false;
	if (code / 100 != cls - '0')
		return false;
	const char *p = enh + 2;
	return digits(&p, '.') && digits(&p, '\0');
}

/* One line: code, separator ('-' or ' '), enhanced code, sanitised text, CRLF. */
static int
reply_line(struct buf *out, int code, char sep, const char *enh, const char *text)
{
	ASSERT(code >= 200 && code <= 599);
	char line[SMTP_REPLY_LINE_MAX];
	int n = snprintf(line, sizeof line, "%03d%c", code, sep);
	size_t o = (size_t)n;
	if (enh != NULL) {
		char fixed[8];
		if (!smtp_reply_enh_is_valid(enh, code)) {
			(void)snprintf(fixed, sizeof fixed, "%d.0.0", code / 100);
			enh = fixed;
		}
		size_t el = strlen(enh);
		memcpy(line + o, enh, el);
		o += el;
		if (text[0] != '\0')
			line[o++] = ' ';
	}
	/* Room for the text: the line minus what is there and CRLF. */
	size_t room = sizeof line - o - 2;
	for (const char *t = text; *t && room > 0; t++, room--) {
		unsigned char c = (unsigned char)*t;
		line[o++] = (c >= 0x20 && c < 0x7f) || c == '\t' ? (char)c : '?';
	}
	line[o++] = '\r';
	line[o++] = '\n';
	return buf_append(out, line, o);
}

int
smtp_reply(struct buf *out, int code, const char *enh, const char *text)
{
	return reply_line(out, code, ' ', enh, text ? text : "");
}

int
smtp_replyf(struct buf *out, int code, const char *enh, const char *fmt, ...)
{
	char text[SMTP_REPLY_LINE_MAX];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(text, sizeof text, fmt, ap);
	va_end(ap);
	if (n < 0)
		text[0] = '\0';
	/* truncation is fine: reply_line cuts to the line limit anyway */
	return reply_line(out, code, ' ', enh, text);
}

int
smtp_reply_lines(struct buf *out, int code, const char *enh, const char *const *lines, size_t n)
{
	ASSERT(n >= 1);
	for (size_t i = 0; i < n; i++)
		if (reply_line(out, code, i + 1 < n ? '-' : ' ', enh, lines[i] ? lines[i] : "") < 0)
			return -1;
	return 0;
}

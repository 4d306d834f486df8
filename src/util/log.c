/* Line logger; see log.h. The level is an atomic so a SIGHUP reload can change it while other
 * threads log. */
#include "log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static _Atomic int cur_level = LOG_INFO;
static _Atomic int cur_fd = 2;
static const char *const names[] = {"debug", "info", "warn", "error"};

void
log_set_level(enum log_level level)
{
	cur_level = (int)level;
}

enum log_level
log_get_level(void)
{
	return (enum log_level)cur_level;
}

void
log_set_fd(int fd)
{
	cur_fd = fd;
}

int
log_level_parse(const char *name)
{
	for (int i = 0; i < 4; i++)
		if (strcmp(name, names[i]) == 0)
			return i;
	return -1;
}

const char *
log_level_name(enum log_level level)
{
	return (unsigned)level < 4 ? names[level] : "?";
}

static void
log_vwrite(const char *level, const char *fmt, va_list ap, int errnum)
{
	char line[2048];
	struct timespec ts;
	struct tm tm;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	int n = snprintf(line, sizeof line, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %s ",
	                 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
	                 tm.tm_sec, ts.tv_nsec / 1000000, level);
	size_t len = n > 0 ? (size_t)n : 0;
	n = vsnprintf(line + len, sizeof line - len, fmt, ap);
	len = n < 0 ? len : (len + (size_t)n >= sizeof line ? sizeof line - 1 : len + (size_t)n);
	if (errnum) {
		char ebuf[128];
		const char *etext = strerror_r(errnum, ebuf, sizeof ebuf); /* GNU variant */
		n = snprintf(line + len, sizeof line - len, " error=\"%s\"", etext);
		len = n < 0 ? len
		            : (len + (size_t)n >= sizeof line ? sizeof line - 1 : len + (size_t)n);
	}
	if (len >= sizeof line - 1)
		len = sizeof line - 2;
	line[len++] = '\n';
	(void)!write(cur_fd, line, len);
}

void
log_msg(enum log_level level, const char *fmt, ...)
{
	if ((int)level < cur_level)
		return;
	va_list ap;
	va_start(ap, fmt);
	log_vwrite(log_level_name(level), fmt, ap, 0);
	va_end(ap);
}

void
log_msg_errno(enum log_level level, const char *fmt, ...)
{
	int errnum = errno;
	if ((int)level < cur_level)
		return;
	va_list ap;
	va_start(ap, fmt);
	log_vwrite(log_level_name(level), fmt, ap, errnum);
	va_end(ap);
}

void
log_fatal(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	log_vwrite("fatal", fmt, ap, 0);
	va_end(ap);
	exit(1);
}

void
log_panic(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	log_vwrite("panic", fmt, ap, 0);
	va_end(ap);
	abort();
}

const char *
log_escape(const char *s, char *out, unsigned n)
{
	static const char hex[] = "0123456789abcdef";
	unsigned o = 0;
	if (n == 0)
		return out;
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		int plain = c >= 0x20 && c < 0x7f && c != '"' && c != '\\';
		unsigned need = plain ? 1 : 4;
		if (o + need + 4 > n) {
			if (o + 4 <= n) {
				memcpy(out + o, "...", 3);
				o += 3;
			}
			break;
		}
		if (plain) {
			out[o++] = (char)c;
		} else {
			out[o++] = '\\';
			out[o++] = 'x';
			out[o++] = hex[c >> 4];
			out[o++] = hex[c & 15];
		}
	}
	out[o < n ? o : n - 1] = '\0';
	return out;
}

const char *
log_session_line(char *line, size_t cap, const char *component, const char *id, const char *event,
                 const char *fmt, va_list ap)
{
	int n = snprintf(line, cap, "%s %s %s ", component, id, event);
	if (n < 0 || (size_t)n >= cap)
		return NULL;
	(void)vsnprintf(line + n, cap - (size_t)n, fmt, ap); /* cut is acceptable */
	return line;
}

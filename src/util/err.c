/* struct err helpers. strerror_r (the GNU variant, as we build with _GNU_SOURCE) is used: strerror
 * is not thread-safe. */
#include "err.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

int
err_set(struct err *err, int code, const char *fmt, ...)
{
	if (err == NULL)
		return -1;
	err->code = code;
	va_list ap;
	va_start(ap, fmt);
	(void)vsnprintf(err->msg, sizeof err->msg, fmt, ap);
	va_end(ap);
	return -1;
}

int
err_set_errno(struct err *err, int code, int errnum, const char *fmt, ...)
{
	if (err == NULL)
		return -1;
	err->code = code;
	va_list ap;
	va_start(ap, fmt);
	(void)vsnprintf(err->msg, sizeof err->msg, fmt, ap);
	va_end(ap);
	size_t len = strlen(err->msg);
	char ebuf[128];
	const char *etext = strerror_r(errnum, ebuf, sizeof ebuf); /* GNU variant (_GNU_SOURCE) */
	(void)snprintf(err->msg + len, sizeof err->msg - len, ": %s", etext);
	return -1;
}

void
err_clear(struct err *err)
{
	if (err) {
		err->code = 0;
		err->msg[0] = '\0';
	}
}

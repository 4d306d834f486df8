/* Caller-owned error details: thread-safe and allocation-free (STYLE.md B.7). Functions that
 * can fail return -1 (or an error enum) and fill a struct err when one is given. */
#ifndef LIGHTR_ERR_H
#define LIGHTR_ERR_H

struct err {
	int code; /* module-specific; 0 when unset */
	char msg[256];
};

/* Sets code and a formatted message (truncated to fit); err may be NULL. Returns -1. */
int err_set(struct err *err, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Like err_set, appending ": <strerror(errnum)>". */
int err_set_errno(struct err *err, int code, int errnum, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
void err_clear(struct err *err);

#endif

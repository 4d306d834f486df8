/* Logging: one line per event, "<time> <level> <component> <id> <event> key=value ...", built in
 * a local buffer and written with one write() so lines from threads never interleave. Never log
 * passwords, AUTH payloads or bodies (STYLE.md B.7). Thread-safe. */
#ifndef LIGHTR_LOG_H
#define LIGHTR_LOG_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>

enum log_level { LOG_DEBUG, LOG_INFO, LOG_WARN, LOG_ERROR };

/* Default: LOG_INFO to fd 2. */
void log_set_level(enum log_level level);
enum log_level log_get_level(void);
void log_set_fd(int fd);
/* "debug"/"info"/"warn"/"error" → level; -1 when unknown. */
int log_level_parse(const char *name);
const char *log_level_name(enum log_level level);

void log_msg(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Appends ": <strerror(errno)>" using the errno at call time. */
void log_msg_errno(enum log_level level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Environment problem at startup: logs at error and exit(1). */
void log_fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
/* Violated invariant: logs and abort()s for a core dump. */
void log_panic(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

#define log_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)
#define log_info(...)  log_msg(LOG_INFO, __VA_ARGS__)
#define log_warn(...)  log_msg(LOG_WARN, __VA_ARGS__)
#define log_error(...) log_msg(LOG_ERROR, __VA_ARGS__)

/* Always-on assertion (release builds too). */
#define ASSERT(cond)                                                                               \
	do {                                                                                       \
		if (!(cond))                                                                       \
			log_panic("assert %s:%d %s", __FILE__, __LINE__, #cond);                   \
	} while (0)

/* Copies s into out (size n) as a log-safe value: bytes outside printable ASCII, '"' and '\\'
 * become \xNN, and the result is cut with "..." past n. Returns out. */
const char *log_escape(const char *s, char *out, unsigned n);
/* Formats a protocol session's event line "<component> <id> <event> <fmt...>" into line (cap
 * bytes; a long tail is cut) and returns line, or NULL when even the prefix does not fit. The
 * sessions hand it to their log hook (they never write the log themselves). */
const char *log_session_line(char *line, size_t cap, const char *component, const char *id,
                             const char *event, const char *fmt, va_list ap)
    __attribute__((format(printf, 6, 0)));

#endif

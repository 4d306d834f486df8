/* Functions we do not call (STYLE.md B.5): unbounded copies, non-reentrant or locale-dependent
 * conversions. tools/check-deps.sh reads this list and fails the build when src/ calls one.
 * Use buf_printf/snprintf (checked), strconv_*, gmtime_r/localtime_r, strerror_r instead. */
#ifndef LIGHTR_BANNED_H
#define LIGHTR_BANNED_H
#pragma GCC poison strcpy strcat sprintf vsprintf gets strtok strncpy atoi atol gmtime localtime strerror
#endif

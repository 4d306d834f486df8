/* Writing a config back out ("lightr config dump [--defaults]") and comparing two configs for
 * SIGHUP reload. Both walk the table in params.c, so they cover every parameter by
 * construction. The dump is YAML that config_load() reads back to an equal config: sizes and
 * durations use the largest exact unit (300 s is "5m"), strings are quoted when plain style
 * could change their meaning, and unset optional keys are written as comments. */
#include "config/config_private.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

void
config_format_size(uint64_t v, char *out, size_t n)
{
	static const struct {
		const char *unit;
		uint64_t mult;
	} units[] = {{"GiB", 1024ULL * 1024 * 1024}, {"MiB", 1024 * 1024}, {"KiB", 1024}};
	for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
		if (v != 0 && v % units[i].mult == 0) {
			snprintf(out, n, "%" PRIu64 "%s", v / units[i].mult, units[i].unit);
			return;
		}
	}
	snprintf(out, n, "%" PRIu64, v);
}

void
config_format_duration(uint64_t v, char *out, size_t n)
{
	static const struct {
		const char *unit;
		uint64_t mult;
	} units[] = {{"d", 86400}, {"h", 3600}, {"m", 60}};
	for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
		if (v != 0 && v % units[i].mult == 0) {
			snprintf(out, n, "%" PRIu64 "%s", v / units[i].mult, units[i].unit);
			return;
		}
	}
	snprintf(out, n, "%" PRIu64 "s", v);
}

/* Plain style is safe for path- and name-like text that YAML cannot read as anything else. */
static bool
plain_safe(const char *s)
{
	if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
	      *s == '.' || *s == '/' || *s == '_'))
		return false;
	if (strcmp(s, "null") == 0 || strcmp(s, "Null") == 0 || strcmp(s, "NULL") == 0)
		return false;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
		      (*s >= '0' && *s <= '9') || strchr("._/@+-", *s) != NULL))
			return false;
	return true;
}

/* Decodes one UTF-8 sequence at s; returns its length (0 when invalid). */
static size_t
utf8_decode(const unsigned char *s, uint32_t *cp)
{
	size_t n;
	if (s[0] >= 0xf0 && s[0] < 0xf5)
		n = 4, *cp = s[0] & 0x07;
	else if (s[0] >= 0xe0)
		n = 3, *cp = s[0] & 0x0f;
	else if (s[0] >= 0xc2 && s[0] < 0xe0)
		n = 2, *cp = s[0] & 0x1f;
	else
		return 0;
	if (s[0] >= 0xf5)
		return 0;
	for (size_t i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		*cp = (*cp << 6) | (s[i] & 0x3f);
	}
	return n;
}

void
config_yaml_string(struct buf *out, const char *s, bool force_quotes)
{
	if (!force_quotes && plain_safe(s)) {
		buf_append_str(out, s);
		return;
	}
	/* Double-quoted style with escapes for everything outside printable ASCII, so the file
	 * stays ASCII and libyaml's reader accepts it whatever the string holds. */
	buf_append_byte(out, '"');
	for (const unsigned char *p = (const unsigned char *)s; *p;) {
		uint32_t cp;
		size_t n;
		if (*p == '"' || *p == '\\') {
			buf_printf(out, "\\%c", *p++);
		} else if (*p >= 0x20 && *p < 0x7f) {
			buf_append_byte(out, *p++);
		} else if (*p < 0x80 || (n = utf8_decode(p, &cp)) == 0) {
			/* libyaml rejects invalid UTF-8; this only serves values set in code */
			buf_printf(out, "\\x%02x", *p++);
		} else {
			buf_printf(out, cp > 0xffff ? "\\U%08" PRIx32 : "\\u%04" PRIx32, cp);
			p += n;
		}
	}
	buf_append_byte(out, '"');
}

static void
dump_listeners(const struct config *c, struct buf *out)
{
	buf_append_str(out, "listeners:\n");
	for (size_t i = 0; i < c->n_listeners; i++) {
		const struct config_listener *l = &c->listeners[i];
		buf_printf(out, "  - {role: %s,%*s address: ", config_role_name(l->role),
		           (int)(strlen("submissions") - strlen(config_role_name(l->role))), "");
		config_yaml_string(out, l->address, true);
		if (l->role == LISTENER_HTTP)
			buf_printf(out, ", tls: %s", l->tls ? "true" : "false");
		buf_append_str(out, "}\n");
	}
}

static void
dump_value(const struct config *c, const struct param *p, const char *key, const char *indent,
           struct buf *out)
{
	const void *f = config_cfield(c, p);
	char num[32];
	switch (p->type) {
	case PARAM_STRING:
	case PARAM_ENUM:
		if (*(char *const *)f == NULL) {
			buf_printf(out, "%s# %s: (not set)\n", indent, key);
			return;
		}
		if (p->flags & PARAM_SECRET) {
			buf_printf(out, "%s%s: \"(secret)\"\n", indent, key);
			return;
		}
		buf_printf(out, "%s%s: ", indent, key);
		config_yaml_string(out, *(char *const *)f, false);
		buf_append_byte(out, '\n');
		return;
	case PARAM_UINT:
		snprintf(num, sizeof num, "%" PRIu64, *(const uint64_t *)f);
		break;
	case PARAM_SIZE:
		config_format_size(*(const uint64_t *)f, num, sizeof num);
		break;
	case PARAM_DURATION:
		config_format_duration(*(const uint64_t *)f, num, sizeof num);
		break;
	case PARAM_BOOL:
		snprintf(num, sizeof num, "%s", *(const bool *)f ? "true" : "false");
		break;
	case PARAM_LISTENERS:
		dump_listeners(c, out);
		return;
	}
	buf_printf(out, "%s%s: %s\n", indent, key, num);
}

/* Writes c (or the built-in defaults) as YAML in table order; see config.h. */
void
config_dump(const struct config *c, bool defaults, struct buf *out)
{
	struct config *d = NULL;
	const char *prev = ""; /* the previous parameter's path: its sections are open */
	if (defaults || c == NULL)
		c = d = config_new_defaults();
	for (size_t i = 0; i < config_n_params; i++) {
		const struct param *p = &config_params[i];
		/* the section levels this path shares with the previous one stay open; a header
		 * (indented by its level) for each new one */
		const char *a = p->path, *b = prev;
		int level = 0;
		for (;;) {
			const char *da = strchr(a, '.'), *db = strchr(b, '.');
			if (da == NULL || db == NULL || da - a != db - b ||
			    memcmp(a, b, (size_t)(da - a)) != 0)
				break;
			a = da + 1;
			b = db + 1;
			level++;
		}
		for (const char *dot; (dot = strchr(a, '.')) != NULL; a = dot + 1, level++)
			buf_printf(out, "%*s%.*s:\n", 2 * level, "", (int)(dot - a), a);
		char indent[32];
		(void)snprintf(indent, sizeof indent, "%*s", 2 * level, "");
		dump_value(c, p, a, indent, out);
		prev = p->path;
	}
	config_unref(&d);
}

static bool
listeners_equal(const struct config *a, const struct config *b)
{
	if (a->n_listeners != b->n_listeners)
		return false;
	for (size_t i = 0; i < a->n_listeners; i++) {
		const struct config_listener *x = &a->listeners[i], *y = &b->listeners[i];
		if (x->role != y->role || x->tls != y->tls || strcmp(x->address, y->address) != 0)
			return false;
	}
	return true;
}

static bool
field_equal(const struct config *a, const struct config *b, const struct param *p)
{
	const void *fa = config_cfield(a, p), *fb = config_cfield(b, p);
	switch (p->type) {
	case PARAM_STRING:
	case PARAM_ENUM: {
		const char *sa = *(char *const *)fa, *sb = *(char *const *)fb;
		return sa == NULL || sb == NULL ? sa == sb : strcmp(sa, sb) == 0;
	}
	case PARAM_UINT:
	case PARAM_SIZE:
	case PARAM_DURATION:
		return *(const uint64_t *)fa == *(const uint64_t *)fb;
	case PARAM_BOOL:
		return *(const bool *)fa == *(const bool *)fb;
	case PARAM_LISTENERS:
		return listeners_equal(a, b);
	}
	return false;
}

int
config_diff_nonreloadable(const struct config *old, const struct config *neu, struct buf *out)
{
	int n = 0;
	for (size_t i = 0; i < config_n_params; i++) {
		const struct param *p = &config_params[i];
		if (!p->reloadable && !field_equal(old, neu, p)) {
			buf_printf(out, "%s\n", p->path);
			n++;
		}
	}
	return n;
}

/* The parameter table: the one schema of lightr.yaml (DESIGN.md §5, STYLE.md B.9). Loading,
 * validation, "config dump [--defaults]" and the reload diff all walk this table, so adding a
 * parameter is one row here plus one field in struct config. Defaults are written as a user would
 * write them and go through the same parser as the file, so they are checked like user input.
 * Rows of one section must be adjacent (dump.c writes each section once). */
#include "config/config_private.h"

#include <string.h>
#include <unistd.h>

#include "util/log.h"
#include "util/xalloc.h"

#define OFF(field) offsetof(struct config, field)
#define KIB        1024ULL
#define MIB        (1024ULL * 1024)
#define GIB        (1024ULL * 1024 * 1024)

static const char *const log_levels[] = {"debug", "info", "warn", "error", NULL};
static const char *const subaddress_seps[] = {"+", "-", "_", "none", NULL};

/* clang-format off */
const struct param config_params[] = {
	{"hostname", PARAM_STRING, OFF(hostname), NULL, 0, 0, false, PARAM_DEFAULT_HOST, NULL,
	    config_check_hostname},
	{"data_dir", PARAM_STRING, OFF(data_dir), "./lightr-data", 0, 0, false, 0, NULL,
	    config_check_plain},
	{"user", PARAM_STRING, OFF(user), "lightr", 0, 0, false, 0, NULL, config_check_plain},
	{"tls.cert", PARAM_STRING, OFF(tls.cert), NULL, 0, 0, false, PARAM_NULLABLE, NULL,
	    config_check_plain},
	{"tls.key", PARAM_STRING, OFF(tls.key), NULL, 0, 0, false, PARAM_NULLABLE, NULL,
	    config_check_plain},
	{"listeners", PARAM_LISTENERS, OFF(listeners), NULL, 0, 0, false, 0, NULL, NULL},
	{"log.level", PARAM_ENUM, OFF(log.level), "info", 0, 0, true, 0, log_levels, NULL},
	{"smtp.max_message_size", PARAM_SIZE, OFF(smtp.max_message_size), "25MiB", KIB, 512 * MIB, true,
	    0, NULL, NULL},
	{"smtp.max_recipients", PARAM_UINT, OFF(smtp.max_recipients), "100", 1, 10000, true, 0,
	    NULL, NULL},
	{"smtp.max_messages_per_connection", PARAM_UINT, OFF(smtp.max_messages_per_connection),
	    "1000", 1, 100000, true, 0, NULL, NULL},
	{"smtp.max_errors", PARAM_UINT, OFF(smtp.max_errors), "10", 1, 1000, true, 0, NULL, NULL},
	{"smtp.max_auth_failures", PARAM_UINT, OFF(smtp.max_auth_failures), "3", 1, 100, true, 0,
	    NULL, NULL},
	{"smtp.auth_failure_delay", PARAM_DURATION, OFF(smtp.auth_failure_delay), "1s", 0, 30, true,
	    0, NULL, NULL},
	{"smtp.subaddress_separator", PARAM_ENUM, OFF(smtp.subaddress_separator), "+", 0, 0, true, 0,
	    subaddress_seps, NULL},
	{"smtp.timeout", PARAM_DURATION, OFF(smtp.timeout), "5m", 5, 3600, true, 0, NULL, NULL},
	/* RFC 9051 §4: servers should accept command lines of at least 8000 octets. */
	{"imap.max_line", PARAM_SIZE, OFF(imap.max_line), "64KiB", 8000, 16 * MIB, true, 0, NULL,
	    NULL},
	/* STYLE.md B.1.2: a smaller budget before login (LOGIN or AUTHENTICATE PLAIN fit). */
	{"imap.preauth_max_line", PARAM_SIZE, OFF(imap.preauth_max_line), "8KiB", KIB, 16 * MIB,
	    true, 0, NULL, NULL},
	/* APPEND size limit (RFC 7889 APPENDLIMIT); same default as smtp.max_message_size. */
	{"imap.max_literal", PARAM_SIZE, OFF(imap.max_literal), "25MiB", KIB, 512 * MIB, true, 0,
	    NULL, NULL},
	{"imap.preauth_max_literal", PARAM_SIZE, OFF(imap.preauth_max_literal), "8KiB", 256,
	    512 * MIB, true, 0, NULL, NULL},
	/* A whole command with its literals (RFC 9051 §4.3: servers may limit it). */
	{"imap.max_command", PARAM_SIZE, OFF(imap.max_command), "32MiB", 64 * KIB, GIB, true, 0,
	    NULL, NULL},
	/* Parenthesis nesting in SEARCH/FETCH/BODY lists (parsers recurse). */
	{"imap.max_depth", PARAM_UINT, OFF(imap.max_depth), "64", 8, 256, true, 0, NULL, NULL},
	{"imap.max_errors", PARAM_UINT, OFF(imap.max_errors), "20", 1, 1000, true, 0, NULL, NULL},
	{"imap.max_auth_failures", PARAM_UINT, OFF(imap.max_auth_failures), "3", 1, 100, true, 0,
	    NULL, NULL},
	{"imap.auth_failure_delay", PARAM_DURATION, OFF(imap.auth_failure_delay), "1s", 0, 30, true,
	    0, NULL, NULL},
	/* RFC 9051 §5.4: the autologout timer before login may be shorter than 30 minutes. */
	{"imap.preauth_timeout", PARAM_DURATION, OFF(imap.preauth_timeout), "1m", 1, 1800, true, 0,
	    NULL, NULL},
	/* RFC 9051 §5.4: the autologout timer after login is at least 30 minutes. */
	{"imap.timeout", PARAM_DURATION, OFF(imap.timeout), "30m", 1800, 86400, true, 0, NULL, NULL},
	/* RFC 9051 §6.2.3 (LOGINDISABLED): no login without TLS, except from 127.0.0.0/8 and ::1
	 * when this is true (tests, a local webmail). */
	{"imap.plaintext_auth_loopback", PARAM_BOOL, OFF(imap.plaintext_auth_loopback), "false", 0,
	    0, true, 0, NULL, NULL},
	{"limits.max_connections", PARAM_UINT, OFF(limits.max_connections), "1000", 1, 100000,
	    true, 0, NULL, NULL},
	{"limits.max_connections_per_ip", PARAM_UINT, OFF(limits.max_connections_per_ip), "20", 1,
	    10000, true, 0, NULL, NULL},
	{"limits.shutdown_timeout", PARAM_DURATION, OFF(limits.shutdown_timeout), "10s", 0, 600,
	    true, 0, NULL, NULL},
	{"auth.max_concurrent_hashes", PARAM_UINT, OFF(auth.max_concurrent_hashes), "4", 1, 64,
	    false, 0, NULL, NULL},
};
/* clang-format on */
const size_t config_n_params = sizeof config_params / sizeof config_params[0];

/* DESIGN.md §4: loopback, unprivileged ports, so that a plain "lightr serve" works. */
static const struct config_listener default_listeners[] = {
    {LISTENER_MX, "127.0.0.1:2525", false},         {LISTENER_SUBMISSION, "127.0.0.1:2587", false},
    {LISTENER_SUBMISSIONS, "127.0.0.1:2465", true}, {LISTENER_IMAP, "127.0.0.1:2143", false},
    {LISTENER_IMAPS, "127.0.0.1:2993", true},       {LISTENER_HTTP, "127.0.0.1:8080", false},
};

static const char *const role_names[] = {
    [LISTENER_MX] = "mx",
    [LISTENER_SUBMISSION] = "submission",
    [LISTENER_SUBMISSIONS] = "submissions",
    [LISTENER_IMAP] = "imap",
    [LISTENER_IMAPS] = "imaps",
    [LISTENER_HTTP] = "http",
};

/* Returns the role's name as written in lightr.yaml ("mx", "imaps", ...); "?" when unknown. */
const char *
config_role_name(enum listener_role role)
{
	if ((unsigned)role >= sizeof role_names / sizeof role_names[0])
		return "?";
	return role_names[role];
}

int
config_role_parse(const char *s)
{
	for (size_t i = 0; i < sizeof role_names / sizeof role_names[0]; i++)
		if (strcmp(s, role_names[i]) == 0)
			return (int)i;
	return -1;
}

const struct param *
config_param_find(struct slice path)
{
	for (size_t i = 0; i < config_n_params; i++)
		if (slice_eq(path, config_params[i].path))
			return &config_params[i];
	return NULL;
}

bool
config_is_section(struct slice name)
{
	for (size_t i = 0; i < config_n_params; i++) {
		const char *p = config_params[i].path;
		if (strlen(p) > name.len && memcmp(p, name.p, name.len) == 0 && p[name.len] == '.')
			return true;
	}
	return false;
}

void
config_free_listeners(struct config *c)
{
	for (size_t i = 0; i < c->n_listeners; i++)
		free(c->listeners[i].address);
	x_free(&c->listeners);
	c->n_listeners = 0;
}

void
config_set_default_listeners(struct config *c)
{
	size_t n = sizeof default_listeners / sizeof default_listeners[0];
	config_free_listeners(c);
	c->listeners = xcalloc(n, sizeof *c->listeners);
	for (size_t i = 0; i < n; i++) {
		c->listeners[i] = default_listeners[i];
		c->listeners[i].address = xstrdup(default_listeners[i].address);
	}
	c->n_listeners = n;
}

/* This machine's name from gethostname() when it is a valid hostname, else "localhost". */
static char *
default_hostname(void)
{
	char name[256];
	if (gethostname(name, sizeof name) == 0) {
		name[sizeof name - 1] = '\0';
		if (config_check_hostname(name) == NULL)
			return xstrdup(name);
	}
	return xstrdup("localhost");
}

struct config *
config_new_defaults(void)
{
	struct config *c = xcalloc(1, sizeof *c);
	c->refs_ = 1;
	for (size_t i = 0; i < config_n_params; i++) {
		const struct param *p = &config_params[i];
		char msg[128];
		if (p->type == PARAM_LISTENERS) {
			config_set_default_listeners(c);
		} else if (p->flags & PARAM_DEFAULT_HOST) {
			*(char **)config_field(c, p) = default_hostname();
		} else if (p->def != NULL) {
			if (config_set_scalar(c, p, p->def, strlen(p->def), msg, sizeof msg) !=
			    NULL)
				log_panic("config: default of %s: %s", p->path, msg);
		}
	}
	return c;
}

void
config_free(struct config *c)
{
	if (c == NULL)
		return;
	for (size_t i = 0; i < config_n_params; i++) {
		const struct param *p = &config_params[i];
		if (p->type == PARAM_STRING || p->type == PARAM_ENUM)
			x_free(config_field(c, p));
	}
	config_free_listeners(c);
	free(c->path);
	free(c);
}

/* Takes one more reference; returns c (accepts NULL). */
struct config *
config_ref(struct config *c)
{
	if (c != NULL)
		__atomic_fetch_add(&c->refs_, 1, __ATOMIC_RELAXED);
	return c;
}

void
config_unref(struct config **cp)
{
	struct config *c = *cp;
	*cp = NULL;
	if (c != NULL && __atomic_sub_fetch(&c->refs_, 1, __ATOMIC_ACQ_REL) == 0)
		config_free(c);
}

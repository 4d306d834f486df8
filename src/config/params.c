/* The parameter table: the one schema of lightr.yaml (DESIGN.md §5, STYLE.md B.9). Loading,
 * validation, "config dump [--defaults]" and the reload diff all walk this table, so adding a
 * parameter is one row here plus one field in struct config. Defaults are written as a user would
 * write them and go through the same parser as the file, so they are checked like user input.
 * Rows of one section must be adjacent (dump.c writes each section once). */
#include "config/config_private.h"

#include <arpa/inet.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "util/log.h"
#include "util/strconv.h"
#include "util/xalloc.h"

#define OFF(field) offsetof(struct config, field)
#define KIB        1024ULL
#define MIB        (1024ULL * 1024)
#define GIB        (1024ULL * 1024 * 1024)

static const char *const log_levels[] = {"debug", "info", "warn", "error", NULL};
static const char *const subaddress_seps[] = {"+", "-", "_", "none", NULL};
static const char *const relay_tls_modes[] = {"none", "starttls", "tls", NULL};
static const char *const policy_actions[] = {"reject", "quarantine", "none", NULL};

/* ---- checks of the delivery.* and dns.* strings (lists are comma-separated strings) ---- */

#define RETRY_MAX_ENTRIES 32          /* queue/sched.h QUEUE_RETRY_MAX */
#define RETRY_MAX_STEP    (7 * 86400) /* seconds */

/* Calls fn on each trimmed comma-separated item of s (none may be empty); first message wins. */
static const char *
each_item(const char *s, const char *(*fn)(struct slice item), size_t max_items)
{
	struct slice rest = slice_from(s);
	size_t n = 0;
	if (rest.len == 0)
		return "must not be empty";
	while (rest.p != NULL) {
		struct slice item;
		rest = slice_cut(rest, ',', &item);
		item = slice_trim(item);
		if (item.len == 0)
			return "empty list entry";
		if (++n > max_items)
			return "too many entries";
		const char *msg = fn(item);
		if (msg)
			return msg;
	}
	return NULL;
}

static const char *
retry_item(struct slice item)
{
	uint64_t v;
	if (strconv_duration(item, RETRY_MAX_STEP, &v) < 0 || v == 0)
		return "expected durations 1s..7d separated by commas, like 1m,5m,1h";
	return NULL;
}

static const char *
check_retry_schedule(const char *s)
{
	return each_item(s, retry_item, RETRY_MAX_ENTRIES);
}

/* An IPv4 or IPv6 literal (no brackets). */
static bool
is_ip(struct slice s)
{
	char tmp[64];
	unsigned char bin[16];
	if (s.len == 0 || s.len >= sizeof tmp)
		return false;
	memcpy(tmp, s.p, s.len);
	tmp[s.len] = '\0';
	return inet_pton(AF_INET, tmp, bin) == 1 || inet_pton(AF_INET6, tmp, bin) == 1;
}

static bool
is_port(struct slice s)
{
	uint64_t v;
	return strconv_u64(s, 65535, &v) == 0 && v > 0;
}

static bool
is_hostname(struct slice s)
{
	char tmp[256];
	if (s.len == 0 || s.len >= sizeof tmp)
		return false;
	memcpy(tmp, s.p, s.len);
	tmp[s.len] = '\0';
	return config_check_hostname(tmp) == NULL;
}

/* "host", "host:port", "ip", "ip:port", "[v6]", "[v6]:port". */
static bool
is_hostport(struct slice s)
{
	struct slice host = s, port = {NULL, 0};
	if (s.len > 0 && s.p[0] == '[') {
		const char *end = memchr(s.p, ']', s.len);
		if (end == NULL)
			return false;
		host = slice_make(s.p + 1, (size_t)(end - s.p - 1));
		size_t used = (size_t)(end - s.p) + 1;
		if (used < s.len) {
			if (s.p[used] != ':')
				return false;
			port = slice_make(s.p + used + 1, s.len - used - 1);
			if (!is_port(port))
				return false;
		}
		return is_ip(host) && memchr(host.p, ':', host.len) != NULL;
	}
	const char *colon = memchr(s.p, ':', s.len);
	if (colon) {
		host = slice_make(s.p, (size_t)(colon - s.p));
		port = slice_make(colon + 1, s.len - host.len - 1);
		if (!is_port(port))
			return false;
	}
	return is_ip(host) || is_hostname(host);
}

static const char *
check_relay(const char *s)
{
	return is_hostport(slice_from(s)) ? NULL : "expected host:port, like smtp.example.com:587";
}

static const char *
check_base_url(const char *s)
{
	size_t n = strlen(s);
	bool scheme = strncmp(s, "https://", 8) == 0 || strncmp(s, "http://", 7) == 0;
	if (!scheme || n > 200 || s[n - 1] == '/' || strpbrk(s, " \t\"'<>?#") != NULL)
		return "expected http(s)://host[:port][/path] without a final '/'";
	return NULL;
}

static const char *
route_item(struct slice item)
{
	struct slice dom;
	struct slice hop = slice_cut(item, '=', &dom);
	if (hop.p == NULL || !is_hostname(slice_trim(dom)) || !is_hostport(slice_trim(hop)))
		return "expected domain=host:port entries separated by commas";
	return NULL;
}

static const char *
check_routes(const char *s)
{
	return each_item(s, route_item, 1000);
}

static const char *
forwarder_item(struct slice item)
{
	struct slice ip;
	struct slice port = slice_cut(item, '@', &ip);
	if (!is_ip(ip) || (port.p != NULL && !is_port(port)))
		return "expected IP addresses (optionally ip@port) separated by commas";
	return NULL;
}

static const char *
check_forwarders(const char *s)
{
	return each_item(s, forwarder_item, 16);
}

static const char *
check_ip(const char *s)
{
	return is_ip(slice_from(s)) ? NULL : "expected an IP address";
}

static const char *
check_helo(const char *s)
{
	size_t n = strlen(s);
	if (config_check_hostname(s) == NULL)
		return NULL;
	if (n > 2 && s[0] == '[' && s[n - 1] == ']' && is_ip(slice_make(s + 1, n - 2)))
		return NULL; /* RFC 5321 4.1.3 address literal (IPv6 without the "IPv6:" tag) */
	return "expected a hostname or an address literal like [192.0.2.1]";
}

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
	/* REST API request bodies (issue 6): a send carries base64 attachments (4/3 of their size). */
	{"api.max_send_size", PARAM_SIZE, OFF(api.max_send_size), "30MiB", MIB, 512 * MIB, false, 0,
	    NULL, NULL},
	{"api.max_body_size", PARAM_SIZE, OFF(api.max_body_size), "1MiB", 64 * KIB, 64 * MIB, false,
	    0, NULL, NULL},
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
	/* Issue 8: outbound limits per account and per sending domain (0 = unlimited), read per
	 * message from the current config (SIGHUP applies); overrides per account/domain through
	 * the API and the CLI. */
	{"limits.account.messages_per_minute", PARAM_UINT, OFF(limits.account.messages_per_minute),
	    "60", 0, 1000000, true, 0, NULL, NULL},
	{"limits.account.messages_per_hour", PARAM_UINT, OFF(limits.account.messages_per_hour),
	    "1000", 0, 10000000, true, 0, NULL, NULL},
	{"limits.account.messages_per_day", PARAM_UINT, OFF(limits.account.messages_per_day), "5000",
	    0, 100000000, true, 0, NULL, NULL},
	{"limits.account.recipients_per_day", PARAM_UINT, OFF(limits.account.recipients_per_day),
	    "10000", 0, 100000000, true, 0, NULL, NULL},
	{"limits.account.recipients_per_message", PARAM_UINT,
	    OFF(limits.account.recipients_per_message), "100", 0, 100000, true, 0, NULL, NULL},
	{"limits.domain.messages_per_minute", PARAM_UINT, OFF(limits.domain.messages_per_minute),
	    "600", 0, 1000000, true, 0, NULL, NULL},
	{"limits.domain.messages_per_hour", PARAM_UINT, OFF(limits.domain.messages_per_hour),
	    "10000", 0, 10000000, true, 0, NULL, NULL},
	{"limits.domain.messages_per_day", PARAM_UINT, OFF(limits.domain.messages_per_day), "50000",
	    0, 100000000, true, 0, NULL, NULL},
	{"limits.domain.recipients_per_day", PARAM_UINT, OFF(limits.domain.recipients_per_day),
	    "100000", 0, 100000000, true, 0, NULL, NULL},
	{"limits.domain.recipients_per_message", PARAM_UINT,
	    OFF(limits.domain.recipients_per_message), "0", 0, 100000, true, 0, NULL, NULL},
	/* Inbound per client IP on the MX listener (counted apart from outbound). */
	{"limits.ip.connections_per_minute", PARAM_UINT, OFF(limits.ip.connections_per_minute), "60",
	    0, 1000000, true, 0, NULL, NULL},
	{"limits.ip.messages_per_minute", PARAM_UINT, OFF(limits.ip.messages_per_minute), "120", 0,
	    1000000, true, 0, NULL, NULL},
	{"limits.ip.recipients_per_minute", PARAM_UINT, OFF(limits.ip.recipients_per_minute), "600",
	    0, 10000000, true, 0, NULL, NULL},
	/* Authentication failures per client IP: growing delays, then a lockout of that IP. */
	{"limits.auth.delay_after", PARAM_UINT, OFF(limits.auth.delay_after), "3", 0, 1000, false, 0,
	    NULL, NULL},
	{"limits.auth.lockout_after", PARAM_UINT, OFF(limits.auth.lockout_after), "10", 1, 10000,
	    false, 0, NULL, NULL},
	{"limits.auth.lockout", PARAM_DURATION, OFF(limits.auth.lockout), "15m", 1, 86400, false, 0,
	    NULL, NULL},
	{"limits.api.requests_per_second", PARAM_UINT, OFF(limits.api.requests_per_second), "100", 0,
	    1000000, true, 0, NULL, NULL},
	{"auth.max_concurrent_hashes", PARAM_UINT, OFF(auth.max_concurrent_hashes), "4", 1, 64,
	    false, 0, NULL, NULL},
	/* Outbound delivery (issue 5). Retry waits after the n-th failed attempt; the last one
	 * repeats until max_age (RFC 5321 §4.5.4.1: give up after 4-5 days). */
	/* delivery.*: read when the queue starts; a change needs a restart (SIGHUP says so). */
	{"delivery.retry_schedule", PARAM_STRING, OFF(delivery.retry_schedule),
	    "1m,5m,15m,30m,1h,2h,4h,8h", 0, 0, false, 0, NULL, check_retry_schedule},
	{"delivery.max_age", PARAM_DURATION, OFF(delivery.max_age), "5d", 3600, 30 * 86400, false, 0,
	    NULL, NULL},
	{"delivery.delay_warning", PARAM_DURATION, OFF(delivery.delay_warning), "4h", 0,
	    30 * 86400, false, 0, NULL, NULL},
	{"delivery.workers", PARAM_UINT, OFF(delivery.workers), "8", 1, 256, false, 0, NULL, NULL},
	{"delivery.max_per_destination", PARAM_UINT, OFF(delivery.max_per_destination), "4", 1, 100,
	    false, 0, NULL, NULL},
	{"delivery.helo_name", PARAM_STRING, OFF(delivery.helo_name), NULL, 0, 0, false,
	    PARAM_NULLABLE, NULL, check_helo},
	{"delivery.source_address", PARAM_STRING, OFF(delivery.source_address), NULL, 0, 0, false,
	    PARAM_NULLABLE, NULL, check_ip},
	{"delivery.relay", PARAM_STRING, OFF(delivery.relay), NULL, 0, 0, false, PARAM_NULLABLE, NULL,
	    check_relay},
	{"delivery.relay_user", PARAM_STRING, OFF(delivery.relay_user), NULL, 0, 0, false,
	    PARAM_NULLABLE, NULL, config_check_plain},
	{"delivery.relay_password", PARAM_STRING, OFF(delivery.relay_password), NULL, 0, 0, false,
	    PARAM_NULLABLE | PARAM_SECRET, NULL, config_check_plain},
	{"delivery.relay_tls", PARAM_ENUM, OFF(delivery.relay_tls), "starttls", 0, 0, false, 0,
	    relay_tls_modes, NULL},
	{"delivery.routes", PARAM_STRING, OFF(delivery.routes), NULL, 0, 0, false, PARAM_NULLABLE,
	    NULL, check_routes},
	{"delivery.connect_timeout", PARAM_DURATION, OFF(delivery.connect_timeout), "30s", 1, 600,
	    false, 0, NULL, NULL},
	{"delivery.mx_port", PARAM_UINT, OFF(delivery.mx_port), "25", 1, 65535, false, 0, NULL, NULL},
	{"dns.forwarders", PARAM_STRING, OFF(dns.forwarders), NULL, 0, 0, false, PARAM_NULLABLE,
	    NULL, check_forwarders},
	/* Issue 7. SSRF guard: webhook receivers must resolve to public addresses unless this. */
	{"webhooks.allow_private_addresses", PARAM_BOOL, OFF(webhooks.allow_private_addresses),
	    "false", 0, 0, false, 0, NULL, NULL},
	{"webhooks.timeout", PARAM_DURATION, OFF(webhooks.timeout), "10s", 1, 60, false, 0, NULL,
	    NULL},
	{"webhooks.workers", PARAM_UINT, OFF(webhooks.workers), "4", 1, 64, false, 0, NULL, NULL},
	{"webhooks.retry_schedule", PARAM_STRING, OFF(webhooks.retry_schedule),
	    "1m,2m,5m,10m,30m,1h,2h,4h,8h,8h", 0, 0, false, 0, NULL, check_retry_schedule},
	{"tracking.base_url", PARAM_STRING, OFF(tracking.base_url), NULL, 0, 0, false,
	    PARAM_NULLABLE, NULL, check_base_url},
	/* Issue 9: inbound authentication on the MX listener and what failures lead to. */
	{"inbound.authenticate", PARAM_BOOL, OFF(inbound.authenticate), "true", 0, 0, true, 0, NULL,
	    NULL},
	{"inbound.dmarc_reject", PARAM_ENUM, OFF(inbound.dmarc_reject), "reject", 0, 0, true, 0,
	    policy_actions, NULL},
	{"inbound.spf_fail", PARAM_ENUM, OFF(inbound.spf_fail), "none", 0, 0, true, 0,
	    policy_actions, NULL},
	{"events.retention", PARAM_DURATION, OFF(events.retention), "30d", 3600, 3650 * 86400,
	    true, 0, NULL, NULL},
	{"events.received_body_max", PARAM_SIZE, OFF(events.received_body_max), "64KiB", 0,
	    16 * MIB, true, 0, NULL, NULL},
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

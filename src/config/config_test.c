/* Unit tests for the config module: built-in defaults, a full file, every kind of problem with
 * its exact line, many problems at once, dump → load round trips, the reload diff, reference
 * counting and the current-config swap, and where the file is found. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config/config.h"
#include "config/config_private.h"
#include "test.h"

static char tmpdir[64];

/* Writes text to a file in tmpdir and returns its path (static storage). */
static const char *
write_file(const char *name, const char *text)
{
	static char path[128];
	snprintf(path, sizeof path, "%s/%s", tmpdir, name);
	FILE *f = fopen(path, "wb");
	if (f == NULL) {
		perror(path);
		exit(2);
	}
	fputs(text, f);
	fclose(f);
	return path;
}

/* Loads text as "t.yaml" from memory; returns the messages (static) and sets *c_r. */
static const char *
load_text(const char *text, struct config **c_r)
{
	static char out[8192];
	struct buf errs;
	buf_init(&errs, 0);
	*c_r = config_load_buffer("t.yaml", text, strlen(text), &errs);
	snprintf(out, sizeof out, "%s", buf_cstr(&errs));
	buf_deinit(&errs);
	return out;
}

static int
count_lines(const char *s)
{
	int n = 0;
	for (; *s; s++)
		n += *s == '\n';
	return n;
}

static void
test_defaults(void)
{
	struct buf errs;
	buf_init(&errs, 0);
	struct config *c = config_load(NULL, &errs);
	CHECK(c != NULL);
	CHECK_INT(errs.len, 0);
	CHECK(c->path == NULL);
	CHECK(c->hostname != NULL && config_check_hostname(c->hostname) == NULL);
	CHECK_STR(c->data_dir, "./lightr-data");
	CHECK_STR(c->user, "lightr");
	CHECK(c->tls.cert == NULL && c->tls.key == NULL);
	CHECK_INT(c->n_listeners, 6);
	static const struct {
		enum listener_role role;
		const char *address;
		bool tls;
	} want[] = {
	    {LISTENER_MX, "127.0.0.1:2525", false},
	    {LISTENER_SUBMISSION, "127.0.0.1:2587", false},
	    {LISTENER_SUBMISSIONS, "127.0.0.1:2465", true},
	    {LISTENER_IMAP, "127.0.0.1:2143", false},
	    {LISTENER_IMAPS, "127.0.0.1:2993", true},
	    {LISTENER_HTTP, "127.0.0.1:8080", false},
	};
	for (size_t i = 0; i < 6 && i < c->n_listeners; i++) {
		CHECK_INT(c->listeners[i].role, want[i].role);
		CHECK_STR(c->listeners[i].address, want[i].address);
		CHECK_INT(c->listeners[i].tls, want[i].tls);
	}
	CHECK_STR(c->log.level, "info");
	CHECK_INT(c->smtp.max_message_size, 25 * 1024 * 1024);
	CHECK_INT(c->smtp.max_recipients, 100);
	CHECK_INT(c->smtp.timeout, 300);
	CHECK_INT(c->smtp.max_messages_per_connection, 1000);
	CHECK_INT(c->smtp.max_errors, 10);
	CHECK_INT(c->smtp.max_auth_failures, 3);
	CHECK_INT(c->smtp.auth_failure_delay, 1);
	CHECK_STR(c->smtp.subaddress_separator, "+");
	CHECK_INT(c->imap.timeout, 1800);
	CHECK_INT(c->imap.preauth_timeout, 60);
	CHECK_INT(c->imap.max_line, 64 * 1024);
	CHECK_INT(c->imap.preauth_max_line, 8192);
	CHECK_INT(c->imap.max_literal, 25 * 1024 * 1024);
	CHECK_INT(c->imap.preauth_max_literal, 8192);
	CHECK_INT(c->imap.max_command, 32 * 1024 * 1024);
	CHECK_INT(c->imap.max_depth, 64);
	CHECK_INT(c->imap.max_errors, 20);
	CHECK_INT(c->imap.max_auth_failures, 3);
	CHECK_INT(c->imap.auth_failure_delay, 1);
	CHECK_INT(c->imap.plaintext_auth_loopback, 0);
	CHECK_INT(c->limits.max_connections, 1000);
	CHECK_INT(c->limits.max_connections_per_ip, 20);
	CHECK_INT(c->limits.shutdown_timeout, 10);
	CHECK_INT(c->auth.max_concurrent_hashes, 4);
	config_unref(&c);
	CHECK(c == NULL);
	config_unref(&c); /* accepts NULL */
	buf_deinit(&errs);
}

/* An empty file, a comments-only file and empty sections all mean the built-in defaults. */
static void
test_empty_file(void)
{
	static const char *const texts[] = {
	    "", "# nothing here\n\n", "---\n", "~\n", "smtp:\nlimits:\n  # max_connections: 5\n",
	};
	for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
		struct config *c;
		CHECK_STR(load_text(texts[i], &c), "");
		CHECK(c != NULL);
		if (c != NULL)
			CHECK_INT(c->smtp.max_recipients, 100);
		config_unref(&c);
	}
}

static const char full_yaml[] =
    "# every key\n"
    "hostname: mail.example.com\n"
    "data_dir: /var/lib/lightr\n"
    "user: mail\n"
    "tls: {cert: /etc/lightr/cert.pem, key: /etc/lightr/key.pem}\n"
    "listeners:\n"
    "  - {role: mx,          address: \"0.0.0.0:25\"}\n"
    "  - {role: submission,  address: \":587\"}\n"
    "  - {role: submissions, address: \"[::]:465\", tls: true}\n"
    "  - {role: imap,        address: \"[::1]:143\", tls: false}\n"
    "  - role: imaps\n"
    "    address: \"localhost:993\"\n"
    "  - {role: http,        address: \"127.0.0.1:443\", tls: yes}\n"
    "log:\n"
    "  level: debug\n"
    "smtp: {max_message_size: 512k, max_recipients: \"250\", timeout: 10m}\n"
    "imap:\n"
    "  timeout: 1h\n"
    "  preauth_timeout: 10s\n"
    "  max_line: 16KiB\n"
    "  max_literal: 1MiB\n"
    "  max_depth: 8\n"
    "  plaintext_auth_loopback: true\n"
    "limits:\n"
    "  max_connections: 5000\n"
    "  max_connections_per_ip: 50\n"
    "  shutdown_timeout: 0\n"
    "auth:\n"
    "  max_concurrent_hashes: 8\n";

static void
check_full(const struct config *c)
{
	CHECK_STR(c->hostname, "mail.example.com");
	CHECK_STR(c->data_dir, "/var/lib/lightr");
	CHECK_STR(c->user, "mail");
	CHECK_STR(c->tls.cert, "/etc/lightr/cert.pem");
	CHECK_STR(c->tls.key, "/etc/lightr/key.pem");
	CHECK_INT(c->n_listeners, 6);
	if (c->n_listeners == 6) {
		CHECK_INT(c->listeners[0].role, LISTENER_MX);
		CHECK_STR(c->listeners[0].address, "0.0.0.0:25");
		CHECK_INT(c->listeners[0].tls, 0);
		CHECK_STR(c->listeners[1].address, ":587");
		CHECK_INT(c->listeners[2].role, LISTENER_SUBMISSIONS);
		CHECK_INT(c->listeners[2].tls, 1);
		CHECK_STR(c->listeners[3].address, "[::1]:143");
		CHECK_INT(c->listeners[4].role, LISTENER_IMAPS);
		CHECK_INT(c->listeners[4].tls, 1); /* implicit */
		CHECK_STR(c->listeners[4].address, "localhost:993");
		CHECK_INT(c->listeners[5].role, LISTENER_HTTP);
		CHECK_INT(c->listeners[5].tls, 1);
	}
	CHECK_STR(c->log.level, "debug");
	CHECK_INT(c->smtp.max_message_size, 512 * 1024);
	CHECK_INT(c->smtp.max_recipients, 250);
	CHECK_INT(c->smtp.timeout, 600);
	CHECK_INT(c->imap.timeout, 3600);
	CHECK_INT(c->imap.preauth_timeout, 10);
	CHECK_INT(c->imap.max_line, 16 * 1024);
	CHECK_INT(c->imap.max_literal, 1024 * 1024);
	CHECK_INT(c->imap.max_depth, 8);
	CHECK_INT(c->imap.plaintext_auth_loopback, 1);
	CHECK_INT(c->limits.max_connections, 5000);
	CHECK_INT(c->limits.max_connections_per_ip, 50);
	CHECK_INT(c->limits.shutdown_timeout, 0);
	CHECK_INT(c->auth.max_concurrent_hashes, 8);
}

static void
test_full_file(void)
{
	struct buf errs;
	buf_init(&errs, 0);
	const char *path = write_file("full.yaml", full_yaml);
	struct config *c = config_load(path, &errs);
	CHECK_STR(buf_cstr(&errs), "");
	CHECK(c != NULL);
	if (c != NULL) {
		CHECK_STR(c->path, path);
		check_full(c);
	}
	config_unref(&c);
	buf_deinit(&errs);
	unlink(path);
}

/* One problem per input, with the exact message and line. */
static void
test_errors(void)
{
	static const struct {
		const char *yaml, *want;
	} cases[] = {
	    /* unknown keys */
	    {"hostname: a.example\nfoo: 1\n", "t.yaml:2: foo: unknown key\n"},
	    {"smtp:\n  max_recipients: 5\n  max_rcpt: 5\n",
	     "t.yaml:3: smtp.max_rcpt: unknown key\n"},
	    {"smtp.timeout: 5m\n", "t.yaml:1: smtp.timeout: unknown key\n"},
	    {"queue:\n  max_age: 5d\n", "t.yaml:1: queue: unknown key\n"},
	    /* delivery.* and dns.* (issue 5) */
	    {"delivery:\n  retry_schedule: 1m,,5m\n",
	     "t.yaml:2: delivery.retry_schedule: empty list entry\n"},
	    {"delivery:\n  retry_schedule: 1m,8d\n",
	     "t.yaml:2: delivery.retry_schedule: expected durations 1s..7d separated by commas, "
	     "like 1m,5m,1h\n"},
	    {"delivery:\n  retry_schedule: 0s\n",
	     "t.yaml:2: delivery.retry_schedule: expected durations 1s..7d separated by commas, "
	     "like 1m,5m,1h\n"},
	    {"delivery:\n  max_age: 10m\n",
	     "t.yaml:2: delivery.max_age: 10m is below minimum 1h\n"},
	    {"delivery:\n  workers: 0\n", "t.yaml:2: delivery.workers: 0 is below minimum 1\n"},
	    {"delivery:\n  max_per_destination: 101\n",
	     "t.yaml:2: delivery.max_per_destination: 101 is above maximum 100\n"},
	    {"delivery:\n  relay: smtp.example.com:0\n",
	     "t.yaml:2: delivery.relay: expected host:port, like smtp.example.com:587\n"},
	    {"delivery:\n  relay: \"bad host:25\"\n",
	     "t.yaml:2: delivery.relay: expected host:port, like smtp.example.com:587\n"},
	    {"delivery:\n  relay_tls: ssl\n",
	     "t.yaml:2: delivery.relay_tls: must be one of none, starttls, tls\n"},
	    {"delivery:\n  routes: example.com\n",
	     "t.yaml:2: delivery.routes: expected domain=host:port entries separated by commas\n"},
	    {"delivery:\n  source_address: example.com\n",
	     "t.yaml:2: delivery.source_address: expected an IP address\n"},
	    {"delivery:\n  helo_name: \"a b\"\n",
	     "t.yaml:2: delivery.helo_name: expected a hostname or an address literal like "
	     "[192.0.2.1]\n"},
	    {"dns:\n  forwarders: 127.0.0.1@99999\n",
	     "t.yaml:2: dns.forwarders: expected IP addresses (optionally ip@port) separated by "
	     "commas\n"},
	    {"dns:\n  forwarders: resolver.example\n",
	     "t.yaml:2: dns.forwarders: expected IP addresses (optionally ip@port) separated by "
	     "commas\n"},
	    {"[a]: 1\n", "t.yaml:1: a key must be a string\n"},
	    /* wrong types */
	    {"smtp:\n  max_recipients: abc\n",
	     "t.yaml:2: smtp.max_recipients: expected a number\n"},
	    {"smtp:\n  max_recipients: 1.5\n",
	     "t.yaml:2: smtp.max_recipients: expected a number\n"},
	    {"smtp:\n  max_recipients: +1\n", "t.yaml:2: smtp.max_recipients: expected a number\n"},
	    {"smtp:\n  max_recipients:\n    - 1\n",
	     "t.yaml:3: smtp.max_recipients: expected a number\n"},
	    {"hostname: {a: b}\n", "t.yaml:1: hostname: expected a string\n"},
	    {"smtp: 5\n", "t.yaml:1: smtp: expected a mapping\n"},
	    {"\nlimits: [1]\n", "t.yaml:2: limits: expected a mapping\n"},
	    {"user:\n", "t.yaml:1: user: missing value\n"},
	    {"- a\n", "t.yaml:1: expected a mapping of keys\n"},
	    /* negative, below minimum, above maximum */
	    {"smtp:\n  max_recipients: -5\n",
	     "t.yaml:2: smtp.max_recipients: -5 is not a valid number\n"},
	    {"smtp: {max_recipients: 0}\n",
	     "t.yaml:1: smtp.max_recipients: 0 is below minimum 1\n"},
	    {"limits:\n  max_connections_per_ip: 20000\n",
	     "t.yaml:2: limits.max_connections_per_ip: 20000 is above maximum 10000\n"},
	    {"smtp:\n  max_recipients: 99999999999999999999999\n",
	     "t.yaml:2: smtp.max_recipients: 99999999999999999999999 is above maximum 10000\n"},
	    {"auth:\n  max_concurrent_hashes: 65\n",
	     "t.yaml:2: auth.max_concurrent_hashes: 65 is above maximum 64\n"},
	    /* sizes */
	    {"smtp:\n\n  max_message_size: 25 MB\n",
	     "t.yaml:3: smtp.max_message_size: expected a size like 25MiB\n"},
	    {"smtp:\n  max_message_size: 25TiB\n",
	     "t.yaml:2: smtp.max_message_size: expected a size like 25MiB\n"},
	    {"smtp:\n  max_message_size: 512\n",
	     "t.yaml:2: smtp.max_message_size: 512 is below minimum 1KiB\n"},
	    {"smtp:\n  max_message_size: 2GiB\n",
	     "t.yaml:2: smtp.max_message_size: 2GiB is above maximum 512MiB\n"},
	    {"smtp:\n  max_message_size: -1M\n",
	     "t.yaml:2: smtp.max_message_size: -1M is not a valid number\n"},
	    /* durations */
	    {"smtp: {timeout: 5 minutes}\n",
	     "t.yaml:1: smtp.timeout: expected a duration like 5m\n"},
	    {"smtp: {timeout: 5M}\n", "t.yaml:1: smtp.timeout: expected a duration like 5m\n"},
	    {"smtp: {timeout: 4s}\n", "t.yaml:1: smtp.timeout: 4s is below minimum 5s\n"},
	    {"smtp: {auth_failure_delay: 31s}\n",
	     "t.yaml:1: smtp.auth_failure_delay: 31s is above maximum 30s\n"},
	    {"smtp: {max_errors: 0}\n", "t.yaml:1: smtp.max_errors: 0 is below minimum 1\n"},
	    {"imap:\n  timeout: 2d\n", "t.yaml:2: imap.timeout: 2d is above maximum 1d\n"},
	    /* imap: RFC 9051 §5.4 (autologout >= 30m), §4 (lines >= 8000 octets) */
	    {"imap:\n  timeout: 29m\n", "t.yaml:2: imap.timeout: 29m is below minimum 30m\n"},
	    {"imap: {preauth_timeout: 0}\n",
	     "t.yaml:1: imap.preauth_timeout: 0 is below minimum 1s\n"},
	    {"imap: {preauth_timeout: 31m}\n",
	     "t.yaml:1: imap.preauth_timeout: 31m is above maximum 30m\n"},
	    {"imap: {max_line: 7999}\n", "t.yaml:1: imap.max_line: 7999 is below minimum 8000\n"},
	    {"imap: {max_line: 17MiB}\n",
	     "t.yaml:1: imap.max_line: 17MiB is above maximum 16MiB\n"},
	    {"imap: {preauth_max_line: 1000}\n",
	     "t.yaml:1: imap.preauth_max_line: 1000 is below minimum 1KiB\n"},
	    {"imap: {max_literal: 1GiB}\n",
	     "t.yaml:1: imap.max_literal: 1GiB is above maximum 512MiB\n"},
	    {"imap: {preauth_max_literal: 255}\n",
	     "t.yaml:1: imap.preauth_max_literal: 255 is below minimum 256\n"},
	    {"imap: {max_command: 2GiB}\n",
	     "t.yaml:1: imap.max_command: 2GiB is above maximum 1GiB\n"},
	    {"imap: {max_depth: 7}\n", "t.yaml:1: imap.max_depth: 7 is below minimum 8\n"},
	    {"imap: {max_depth: 257}\n", "t.yaml:1: imap.max_depth: 257 is above maximum 256\n"},
	    {"imap: {max_errors: 0}\n", "t.yaml:1: imap.max_errors: 0 is below minimum 1\n"},
	    {"imap: {max_auth_failures: 101}\n",
	     "t.yaml:1: imap.max_auth_failures: 101 is above maximum 100\n"},
	    {"imap: {auth_failure_delay: 31s}\n",
	     "t.yaml:1: imap.auth_failure_delay: 31s is above maximum 30s\n"},
	    {"imap: {plaintext_auth_loopback: maybe}\n",
	     "t.yaml:1: imap.plaintext_auth_loopback: expected true or false\n"},
	    /* imap: cross-field rules */
	    {"imap:\n  max_line: 8000\n  preauth_max_line: 9000\n",
	     "t.yaml:3: imap.preauth_max_line: 9000 is above imap.max_line (8000)\n"},
	    {"imap:\n  max_line: 8000\n",
	     "t.yaml:2: imap.max_line: 8000 is below imap.preauth_max_line (8KiB)\n"},
	    {"imap:\n  max_literal: 4KiB\n",
	     "t.yaml:2: imap.max_literal: 4KiB is below imap.preauth_max_literal (8KiB)\n"},
	    {"imap:\n  max_command: 1MiB\n",
	     "t.yaml:2: imap.max_command: 1MiB is below imap.max_literal (25MiB)\n"},
	    {"imap:\n  max_literal: 64MiB\n",
	     "t.yaml:2: imap.max_literal: 64MiB is above imap.max_command (32MiB)\n"},
	    {"limits: {shutdown_timeout: 11m}\n",
	     "t.yaml:1: limits.shutdown_timeout: 11m is above maximum 10m\n"},
	    /* enum and strings */
	    {"log:\n  level: verbose\n",
	     "t.yaml:2: log.level: must be one of debug, info, warn, error\n"},
	    {"smtp:\n  subaddress_separator: \"#\"\n",
	     "t.yaml:2: smtp.subaddress_separator: must be one of +, -, _, none\n"},
	    {"log:\n  level: INFO\n",
	     "t.yaml:2: log.level: must be one of debug, info, warn, error\n"},
	    {"hostname: -bad-.example\n", "t.yaml:1: hostname: not a valid hostname\n"},
	    {"hostname: mail.example.com.\n", "t.yaml:1: hostname: not a valid hostname\n"},
	    {"hostname: \"\"\n", "t.yaml:1: hostname: must not be empty\n"},
	    {"data_dir: \"a\\nb\"\n", "t.yaml:1: data_dir: must not contain control characters\n"},
	    {"user: \"a\\0b\"\n", "t.yaml:1: user: must not contain NUL bytes\n"},
	    /* duplicates */
	    {"user: a\nuser: b\n", "t.yaml:2: user: duplicate key (first at line 1)\n"},
	    {"smtp: {timeout: 5m}\nsmtp: {max_recipients: 5}\n",
	     "t.yaml:2: smtp: duplicate key (first at line 1)\n"},
	    /* listeners */
	    {"listeners:\n  - {role: mx, address: \":25\"}\n  - {role: pop3, address: \":110\"}\n",
	     "t.yaml:3: listeners[1].role: must be one of mx, submission, submissions, imap, "
	     "imaps, http\n"},
	    {"listeners:\n  - {role: mx, address: \":0\"}\n",
	     "t.yaml:2: listeners[0].address: port must be a number from 1 to 65535\n"},
	    {"listeners:\n  - {role: mx, address: \":65536\"}\n",
	     "t.yaml:2: listeners[0].address: port must be a number from 1 to 65535\n"},
	    {"listeners:\n  - {role: mx, address: \"25\"}\n",
	     "t.yaml:2: listeners[0].address: expected host:port, like 127.0.0.1:25 or :25\n"},
	    {"listeners:\n  - {role: mx, address: \"::1:25\"}\n",
	     "t.yaml:2: listeners[0].address: an IPv6 address must be in brackets, like "
	     "[::1]:25\n"},
	    {"listeners:\n  - {role: mx, address: \"[::g]:25\"}\n",
	     "t.yaml:2: listeners[0].address: not a valid IPv6 address\n"},
	    {"listeners:\n  - {role: mx, address: \"mail.example.com:25\"}\n",
	     "t.yaml:2: listeners[0].address: host must be an IP address, localhost or empty "
	     "(all addresses)\n"},
	    {"listeners:\n  - {role: mx, address: \"1.2.3:25\"}\n",
	     "t.yaml:2: listeners[0].address: host must be an IP address, localhost or empty "
	     "(all addresses)\n"},
	    {"listeners:\n  - {role: mx, address: \":25\", port: 25}\n",
	     "t.yaml:2: listeners[0].port: unknown key\n"},
	    {"listeners:\n  - {role: mx, address: \":25\"}\n  - {role: imap, address: "
	     "\"1.2.3.4:25\"}\n",
	     "t.yaml:3: listeners[1].address: 1.2.3.4:25: same address as listeners[0]\n"},
	    {"listeners:\n  - {role: mx, address: \"[::1]:25\"}\n  - {role: imap, address: "
	     "\"[0::1]:25\"}\n",
	     "t.yaml:3: listeners[1].address: [0::1]:25: same address as listeners[0]\n"},
	    {"listeners:\n  - {role: mx}\n", "t.yaml:2: listeners[0]: missing address\n"},
	    {"listeners:\n  - address: \":25\"\n", "t.yaml:2: listeners[0]: missing role\n"},
	    {"listeners:\n  - mx\n",
	     "t.yaml:2: listeners[0]: expected a mapping like {role: mx, address: \":25\"}\n"},
	    {"listeners:\n  - {role: mx, address: \":25\", role: imap}\n",
	     "t.yaml:2: listeners[0].role: duplicate key (first at line 2)\n"},
	    {"listeners:\n  - {role: http, address: \":80\", tls: maybe}\n",
	     "t.yaml:2: listeners[0].tls: expected true or false\n"},
	    {"listeners:\n  - {role: mx, address: \":25\", tls: true}\n",
	     "t.yaml:2: listeners[0].tls: only http listeners take tls: true (mx uses "
	     "STARTTLS)\n"},
	    {"listeners:\n  - {role: imaps, address: \":993\",\n     tls: false}\n",
	     "t.yaml:3: listeners[0].tls: imaps always uses implicit TLS\n"},
	    {"listeners: []\n", "t.yaml:1: listeners: must list at least one listener\n"},
	    {"listeners:\n", "t.yaml:1: listeners: must list at least one listener\n"},
	    {"listeners: {role: mx}\n", "t.yaml:1: listeners: expected a list\n"},
	    /* cross-field */
	    {"tls:\n  cert: /x\n",
	     "t.yaml:2: tls.cert: tls.cert and tls.key must be given together\n"},
	    {"tls:\n  key: /x\n  cert: ~\n",
	     "t.yaml:2: tls.key: tls.cert and tls.key must be given together\n"},
	    /* YAML syntax, documents */
	    {"smtp:\n  timeout: [1, 2\n", "t.yaml:3: syntax error: did not find expected ',' or "
	                                  "']' (while parsing a flow sequence)\n"},
	    {"a: b: c\n", "t.yaml:1: syntax error: mapping values are not allowed in this "
	                  "context\n"},
	    {"user: x\n---\nuser: y\n", "t.yaml:2: only one YAML document is allowed\n"},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct config *c;
		const char *got = load_text(cases[i].yaml, &c);
		if (strcmp(got, cases[i].want) != 0)
			fprintf(stderr, "  case %zu:\n%s", i, cases[i].yaml);
		CHECK_STR(got, cases[i].want);
		CHECK(c == NULL);
		config_unref(&c);
	}
}

static void
test_file_errors(void)
{
	struct buf errs;
	buf_init(&errs, 0);
	char path[128], want[256];
	snprintf(path, sizeof path, "%s/missing.yaml", tmpdir);
	CHECK(config_load(path, &errs) == NULL);
	snprintf(want, sizeof want, "%s: cannot open: No such file or directory\n", path);
	CHECK_STR(buf_cstr(&errs), want);

	/* A syntax error read from a file names the file as given. */
	buf_reset(&errs);
	const char *p = write_file("bad.yaml", "hostname: x\n  bad: [\n");
	CHECK(config_load(p, &errs) == NULL);
	snprintf(want, sizeof want, "%s:2: syntax error: ", p);
	CHECK(strncmp(buf_cstr(&errs), want, strlen(want)) == 0);
	CHECK_INT(count_lines(buf_cstr(&errs)), 1);
	unlink(p);

	/* A directory cannot be read. */
	buf_reset(&errs);
	CHECK(config_load(tmpdir, &errs) == NULL);
	CHECK(strstr(buf_cstr(&errs), ": cannot ") != NULL);

	/* Larger than 1 MiB: refused, whatever is inside. */
	buf_reset(&errs);
	size_t big = CONFIG_MAX_FILE + 1;
	char *text = malloc(big + 1);
	memset(text, '#', big);
	text[big] = '\0';
	p = write_file("big.yaml", text);
	CHECK(config_load(p, &errs) == NULL);
	snprintf(want, sizeof want, "%s: file is larger than 1024 KiB\n", p);
	CHECK_STR(buf_cstr(&errs), want);
	text[big - 1] = '\0';
	p = write_file("big.yaml", text);
	buf_reset(&errs);
	struct config *c = config_load(p, &errs);
	CHECK(c != NULL);
	CHECK_STR(buf_cstr(&errs), "");
	config_unref(&c);
	unlink(p);
	free(text);
	buf_deinit(&errs);
}

/* Every problem in a file is reported in one pass, in file order. */
static void
test_many_errors(void)
{
	struct config *c;
	const char *got = load_text("hostname: mail.example.com\n"
	                            "colour: blue\n"
	                            "smtp:\n"
	                            "  max_recipients: 0\n"
	                            "  max_message_size: lots\n"
	                            "  timeout: -5\n"
	                            "log: {level: loud}\n"
	                            "listeners:\n"
	                            "  - {role: mx, address: \":25\"}\n"
	                            "  - {role: web, address: \":25\", x: 1}\n"
	                            "limits:\n"
	                            "  max_connections: 100001\n"
	                            "tls:\n"
	                            "  cert: /c.pem\n",
	                            &c);
	CHECK(c == NULL);
	CHECK_STR(got, "t.yaml:2: colour: unknown key\n"
	               "t.yaml:4: smtp.max_recipients: 0 is below minimum 1\n"
	               "t.yaml:5: smtp.max_message_size: expected a size like 25MiB\n"
	               "t.yaml:6: smtp.timeout: -5 is not a valid number\n"
	               "t.yaml:7: log.level: must be one of debug, info, warn, error\n"
	               "t.yaml:10: listeners[1].role: must be one of mx, submission, submissions, "
	               "imap, imaps, http\n"
	               "t.yaml:10: listeners[1].address: :25: same address as listeners[0]\n"
	               "t.yaml:10: listeners[1].x: unknown key\n"
	               "t.yaml:12: limits.max_connections: 100001 is above maximum 100000\n");
	CHECK_INT(count_lines(got), 9);

	/* A flood of problems is cut off. */
	struct buf text;
	buf_init(&text, 0);
	for (int i = 0; i < 500; i++)
		buf_printf(&text, "k%d: 1\n", i);
	got = load_text(buf_cstr(&text), &c);
	CHECK(c == NULL);
	CHECK_INT(count_lines(got), CONFIG_MAX_ERRORS + 1);
	CHECK(strstr(got, "t.yaml: too many errors, giving up\n") != NULL);
	buf_deinit(&text);
}

/* Inputs that would make libyaml slow are refused early; anchors and aliases still work. */
static void
test_limits(void)
{
	struct config *c;
	struct buf text;
	buf_init(&text, 0);
	buf_append_str(&text, "smtp:\n  timeout: ");
	for (int i = 0; i < 300000; i++)
		buf_append_byte(&text, '[');
	CHECK_STR(load_text(buf_cstr(&text), &c), "t.yaml:2: nested deeper than 32 levels\n");
	CHECK(c == NULL);
	buf_reset(&text);
	for (int i = 0; i < 31; i++)
		buf_printf(&text, "%*sa:\n", i, "");
	CHECK_STR(load_text(buf_cstr(&text), &c), "t.yaml:1: a: unknown key\n");
	buf_reset(&text);
	buf_append_str(&text, "x: [");
	for (int i = 0; i < 65; i++)
		buf_printf(&text, "&a%d 1, ", i);
	buf_append_str(&text, "]\n");
	CHECK_STR(load_text(buf_cstr(&text), &c), "t.yaml:1: more than 64 anchors\n");
	buf_deinit(&text);

	CHECK_STR(load_text("base: &b {max_recipients: 5}\nsmtp: *b\n", &c),
	          "t.yaml:1: base: unknown key\n");
	CHECK_STR(
	    load_text("smtp: &b {max_recipients: 5}\nlimits: {max_connections: &n 77}\n"
	              "auth: {max_concurrent_hashes: *n}\n",
	              &c),
	    "t.yaml:2: auth.max_concurrent_hashes: 77 is above maximum 64\n"); /* the anchor */
	CHECK_STR(
	    load_text("smtp: {max_recipients: &n 7}\nauth: {max_concurrent_hashes: *n}\n", &c), "");
	CHECK(c != NULL && c->auth.max_concurrent_hashes == 7 && c->smtp.max_recipients == 7);
	config_unref(&c);
}

/* dump(c) loads back to a config whose dump is the same text. */
static void
check_round_trip(const struct config *c, bool defaults)
{
	struct buf out, again, errs;
	buf_init(&out, 0);
	buf_init(&again, 0);
	buf_init(&errs, 0);
	config_dump(c, defaults, &out);
	struct config *back = config_load_buffer("dump.yaml", out.data, out.len, &errs);
	CHECK_STR(buf_cstr(&errs), "");
	CHECK(back != NULL);
	if (back != NULL) {
		config_dump(back, false, &again);
		CHECK_STR(buf_cstr(&again), buf_cstr(&out));
		struct buf diff;
		buf_init(&diff, 0);
		if (!defaults)
			CHECK_INT(config_diff_nonreloadable(c, back, &diff), 0);
		buf_deinit(&diff);
	}
	config_unref(&back);
	buf_deinit(&out);
	buf_deinit(&again);
	buf_deinit(&errs);
}

static void
test_dump(void)
{
	struct config *d = config_load(NULL, NULL);
	struct buf out;
	buf_init(&out, 0);
	config_dump(d, false, &out);
	CHECK(strstr(buf_cstr(&out), "\nsmtp:\n  max_message_size: 25MiB\n  max_recipients: 100\n"
	                             "  max_messages_per_connection: 1000\n  max_errors: 10\n"
	                             "  max_auth_failures: 3\n  auth_failure_delay: 1s\n"
	                             "  subaddress_separator: \"+\"\n  timeout: 5m\n") != NULL);
	CHECK(strstr(buf_cstr(&out), "  - {role: http,        address: \"127.0.0.1:8080\", tls: "
	                             "false}\n") != NULL);
	CHECK(strstr(buf_cstr(&out), "  # cert: (not set)\n") != NULL);
	CHECK(strstr(buf_cstr(&out), "\nimap:\n  max_line: 64KiB\n  preauth_max_line: 8KiB\n") !=
	      NULL);
	CHECK(strstr(buf_cstr(&out), "  preauth_timeout: 1m\n  timeout: 30m\n"
	                             "  plaintext_auth_loopback: false\n") != NULL);
	CHECK(strncmp(buf_cstr(&out), "hostname: ", 10) == 0);
	/* --defaults ignores the values of c. */
	struct buf out2;
	buf_init(&out2, 0);
	struct config *c;
	load_text(full_yaml, &c);
	config_dump(c, true, &out2);
	CHECK_STR(buf_cstr(&out2), buf_cstr(&out));
	buf_reset(&out2);
	config_dump(NULL, true, &out2);
	CHECK_STR(buf_cstr(&out2), buf_cstr(&out));
	buf_deinit(&out2);
	config_unref(&c);
	config_unref(&d);
	buf_deinit(&out);
}

static void
test_round_trip(void)
{
	struct config *c = config_load(NULL, NULL);
	check_round_trip(c, false);
	check_round_trip(NULL, true);
	config_unref(&c);

	CHECK_STR(load_text(full_yaml, &c), "");
	CHECK(c != NULL);
	if (c != NULL) {
		check_round_trip(c, false);
		struct buf out, errs;
		buf_init(&out, 0);
		buf_init(&errs, 0);
		config_dump(c, false, &out);
		struct config *back = config_load_buffer("x", out.data, out.len, &errs);
		CHECK(back != NULL);
		if (back != NULL)
			check_full(back);
		config_unref(&back);
		buf_deinit(&out);
		buf_deinit(&errs);
	}
	config_unref(&c);

	/* Strings that need quoting, and odd sizes/durations. */
	CHECK_STR(load_text("data_dir: \"/srv/my dir/\\u00fcber \\\"x\\\" \\\\ #y\"\n"
	                    "user: \"null\"\n"
	                    "tls: {cert: \"- a: b\", key: \"\\U0001F600\"}\n"
	                    "smtp: {max_message_size: 1025, timeout: 3599}\n"
	                    "imap: {timeout: 86400}\n"
	                    "limits: {shutdown_timeout: 0s}\n"
	                    "listeners: [{role: http, address: \":8080\"}]\n",
	                    &c),
	          "");
	CHECK(c != NULL);
	if (c != NULL) {
		CHECK_STR(c->data_dir, "/srv/my dir/\xc3\xbc"
		                       "ber \"x\" \\ #y");
		CHECK_STR(c->user, "null");
		CHECK_STR(c->tls.key, "\xf0\x9f\x98\x80");
		check_round_trip(c, false);
	}
	config_unref(&c);
}

static void
test_format(void)
{
	static const struct {
		uint64_t v;
		const char *size, *duration;
	} cases[] = {
	    {0, "0", "0s"},
	    {1, "1", "1s"},
	    {60, "60", "1m"},
	    {1024, "1KiB", "1024s"},
	    {3600, "3600", "1h"},
	    {86400, "86400", "1d"},
	    {1024 * 1024 * 3, "3MiB", "3145728s"},
	    {1024ULL * 1024 * 1024, "1GiB", "1073741824s"},
	    {UINT64_MAX, "18446744073709551615", "18446744073709551615s"},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		char buf[32];
		config_format_size(cases[i].v, buf, sizeof buf);
		CHECK_STR(buf, cases[i].size);
		config_format_duration(cases[i].v, buf, sizeof buf);
		CHECK_STR(buf, cases[i].duration);
	}
}

static void
test_addresses(void)
{
	static const struct {
		const char *s;
		bool ok;
		const char *host;
		unsigned port;
	} cases[] = {
	    {":25", true, "", 25},
	    {"0.0.0.0:25", true, "0.0.0.0", 25},
	    {"127.0.0.1:65535", true, "127.0.0.1", 65535},
	    {"[::]:993", true, "::", 993},
	    {"[0:0::1]:1", true, "::1", 1},
	    {"localhost:8080", true, "localhost", 8080},
	    {":", false, NULL, 0},
	    {":-1", false, NULL, 0},
	    {":+25", false, NULL, 0},
	    {": 25", false, NULL, 0},
	    {"[::1]", false, NULL, 0},
	    {"[]:25", false, NULL, 0},
	    {"[1.2.3.4]:25", false, NULL, 0},
	    {"256.0.0.1:25", false, NULL, 0},
	    {"01.2.3.4:25", false, NULL, 0},
	    {"", false, NULL, 0},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct config_addr a;
		const char *why = config_check_address(cases[i].s, &a);
		CHECK_INT(why == NULL, cases[i].ok);
		if (why == NULL && cases[i].ok) {
			CHECK_STR(a.host, cases[i].host);
			CHECK_INT(a.port, cases[i].port);
		}
	}
	struct config_addr a, b;
	config_check_address(":25", &a);
	config_check_address("127.0.0.1:25", &b);
	CHECK(config_addr_conflict(&a, &b));
	config_check_address("127.0.0.2:25", &a);
	CHECK(!config_addr_conflict(&a, &b));
	config_check_address("127.0.0.1:26", &a);
	CHECK(!config_addr_conflict(&a, &b));
}

static void
test_hostname(void)
{
	CHECK(config_check_hostname("localhost") == NULL);
	CHECK(config_check_hostname("a-b.example.COM") == NULL);
	CHECK(config_check_hostname("1.example") == NULL);
	CHECK(config_check_hostname("") != NULL);
	CHECK(config_check_hostname(".example") != NULL);
	CHECK(config_check_hostname("a..example") != NULL);
	CHECK(config_check_hostname("a_b.example") != NULL);
	CHECK(config_check_hostname("a-.example") != NULL);
	char label[80];
	memset(label, 'a', 64);
	label[64] = '\0';
	CHECK(config_check_hostname(label) != NULL);
	label[63] = '\0';
	CHECK(config_check_hostname(label) == NULL);
}

static void
test_diff(void)
{
	struct config *a, *b;
	load_text(full_yaml, &a);
	load_text("hostname: other.example.com\n"
	          "user: mail\n"
	          "data_dir: /var/lib/lightr\n"
	          "tls: {cert: /etc/lightr/cert.pem, key: /etc/lightr/key.pem}\n"
	          "listeners: [{role: mx, address: \":25\"}]\n"
	          "smtp: {max_recipients: 7}\n"
	          "log: {level: error}\n"
	          "auth: {max_concurrent_hashes: 2}\n",
	          &b);
	CHECK(a != NULL && b != NULL);
	if (a != NULL && b != NULL) {
		struct buf out;
		buf_init(&out, 0);
		CHECK_INT(config_diff_nonreloadable(a, a, &out), 0);
		CHECK_STR(buf_cstr(&out), "");
		CHECK_INT(config_diff_nonreloadable(a, b, &out), 3);
		CHECK_STR(buf_cstr(&out), "hostname\nlisteners\nauth.max_concurrent_hashes\n");
		buf_reset(&out);
		struct config *d = config_load(NULL, NULL);
		CHECK_INT(config_diff_nonreloadable(a, d, &out), 7);
		CHECK_STR(buf_cstr(&out), "hostname\ndata_dir\nuser\ntls.cert\ntls.key\nlisteners\n"
		                          "auth.max_concurrent_hashes\n");
		config_unref(&d);
		buf_deinit(&out);
	}
	config_unref(&a);
	config_unref(&b);
}

static void
test_current(void)
{
	CHECK(config_current() == NULL);
	struct config *a = config_load(NULL, NULL), *b = config_load(NULL, NULL);
	CHECK_INT(a->refs_, 1);
	struct config *keep_a = config_ref(a);
	CHECK(keep_a == a);
	CHECK_INT(a->refs_, 2);
	config_set_current(a); /* takes our first reference */
	struct config *cur = config_current();
	CHECK(cur == a);
	CHECK_INT(a->refs_, 3);
	config_unref(&cur);
	config_set_current(b);
	CHECK_INT(keep_a->refs_, 1); /* the old current was dropped */
	cur = config_current();
	CHECK(cur == b);
	CHECK_INT(b->refs_, 2);
	config_unref(&cur);
	config_unref(&keep_a);
	config_set_current(NULL);
	CHECK(config_current() == NULL);
	CHECK(config_ref(NULL) == NULL);
}

static void
test_find_path(void)
{
	char cwd[4096];
	CHECK(getcwd(cwd, sizeof cwd) != NULL);
	CHECK(chdir(tmpdir) == 0);
	unsetenv("LIGHTR_CONFIG");
	CHECK_STR(config_find_path("/etc/x.yaml"), "/etc/x.yaml");
	CHECK(config_find_path(NULL) == NULL);
	const char *p = write_file("lightr.yaml", "");
	CHECK_STR(config_find_path(NULL), "lightr.yaml");
	setenv("LIGHTR_CONFIG", "/env.yaml", 1);
	CHECK_STR(config_find_path(NULL), "/env.yaml");
	CHECK_STR(config_find_path("cli.yaml"), "cli.yaml");
	unsetenv("LIGHTR_CONFIG");
	unlink(p);
	CHECK(chdir(cwd) == 0);
}

/* The table itself: sections adjacent (dump writes each once), defaults within bounds. */
static void
test_table(void)
{
	for (size_t i = 0; i < config_n_params; i++) {
		const struct param *p = &config_params[i];
		/* every section level ("limits.", "limits.account.") is one run of the table */
		for (const char *dot = strchr(p->path, '.'); dot != NULL;
		     dot = strchr(dot + 1, '.')) {
			size_t n = (size_t)(dot - p->path) + 1;
			for (size_t j = i + 2; j < config_n_params; j++)
				if (strncmp(config_params[j].path, p->path, n) == 0)
					CHECK(strncmp(config_params[j - 1].path, p->path, n) == 0);
		}
		CHECK(config_param_find(slice_from(p->path)) == p);
		CHECK(p->type != PARAM_ENUM || p->choices != NULL);
	}
	CHECK(config_is_section(slice_from("smtp")));
	CHECK(config_is_section(slice_from("limits.account")));
	CHECK(!config_is_section(slice_from("smt")));
	CHECK(!config_is_section(slice_from("hostname")));
	CHECK_STR(config_role_name(LISTENER_IMAPS), "imaps");
	CHECK_STR(config_role_name((enum listener_role)99), "?");
}

/* delivery.* and dns.* defaults and accepted forms. */
static void
test_delivery(void)
{
	struct config *c;
	CHECK_STR(load_text("", &c), "");
	if (c != NULL) {
		CHECK_STR(c->delivery.retry_schedule, "1m,5m,15m,30m,1h,2h,4h,8h");
		CHECK_INT(c->delivery.max_age, 5 * 86400);
		CHECK_INT(c->delivery.delay_warning, 4 * 3600);
		CHECK_INT(c->delivery.workers, 8);
		CHECK_INT(c->delivery.max_per_destination, 4);
		CHECK(c->delivery.helo_name == NULL);
		CHECK(c->delivery.source_address == NULL);
		CHECK(c->delivery.relay == NULL);
		CHECK(c->delivery.relay_user == NULL);
		CHECK(c->delivery.relay_password == NULL);
		CHECK_STR(c->delivery.relay_tls, "starttls");
		CHECK(c->delivery.routes == NULL);
		CHECK_INT(c->delivery.connect_timeout, 30);
		CHECK(c->dns.forwarders == NULL);
	}
	config_unref(&c);
	CHECK_STR(load_text("delivery:\n"
	                    "  retry_schedule: \"30s, 2m,1h\"\n"
	                    "  max_age: 2d\n"
	                    "  delay_warning: 0\n"
	                    "  workers: 2\n"
	                    "  max_per_destination: 1\n"
	                    "  helo_name: \"[192.0.2.1]\"\n"
	                    "  source_address: \"::1\"\n"
	                    "  relay: \"[::1]:2525\"\n"
	                    "  relay_user: bob\n"
	                    "  relay_password: secret\n"
	                    "  relay_tls: tls\n"
	                    "  routes: \"example.com=127.0.0.1:2525, b.test=mx.b.test\"\n"
	                    "  connect_timeout: 5s\n"
	                    "dns:\n"
	                    "  forwarders: \"127.0.0.1@5353,::1\"\n",
	                    &c),
	          "");
	if (c != NULL) {
		CHECK_STR(c->delivery.retry_schedule, "30s, 2m,1h");
		CHECK_INT(c->delivery.max_age, 2 * 86400);
		CHECK_INT(c->delivery.delay_warning, 0);
		CHECK_INT(c->delivery.workers, 2);
		CHECK_STR(c->delivery.helo_name, "[192.0.2.1]");
		CHECK_STR(c->delivery.relay, "[::1]:2525");
		CHECK_STR(c->delivery.relay_password, "secret");
		CHECK_STR(c->delivery.relay_tls, "tls");
		CHECK_STR(c->delivery.routes, "example.com=127.0.0.1:2525, b.test=mx.b.test");
		CHECK_INT(c->delivery.connect_timeout, 5);
		CHECK_STR(c->dns.forwarders, "127.0.0.1@5353,::1");
		/* config dump never shows a password */
		struct buf out;
		buf_init(&out, 0);
		config_dump(c, false, &out);
		CHECK(strstr(buf_cstr(&out), "relay_password: \"(secret)\"") != NULL);
		CHECK(strstr(buf_cstr(&out), "secret\n") == NULL);
		buf_deinit(&out);
	}
	config_unref(&c);
	CHECK_STR(load_text("delivery:\n  relay: smtp.example.com:587\n", &c), "");
	config_unref(&c);
}

int
main(void)
{
	snprintf(tmpdir, sizeof tmpdir, "/tmp/lightr-config-test-XXXXXX");
	if (mkdtemp(tmpdir) == NULL) {
		perror("mkdtemp");
		return 2;
	}
	RUN(test_defaults);
	RUN(test_empty_file);
	RUN(test_full_file);
	RUN(test_errors);
	RUN(test_file_errors);
	RUN(test_many_errors);
	RUN(test_limits);
	RUN(test_dump);
	RUN(test_round_trip);
	RUN(test_format);
	RUN(test_addresses);
	RUN(test_hostname);
	RUN(test_diff);
	RUN(test_current);
	RUN(test_find_path);
	RUN(test_table);
	RUN(test_delivery);
	rmdir(tmpdir);
	return test_done("config");
}

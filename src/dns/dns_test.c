/* Tests for src/dns: the pure MX helpers, then the resolver against tests/zonedns.py (spawned
 * here with /usr/bin/python3; run from the repository root). */
#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "dns/resolver.h"
#include "test.h"
#include "test_tmp.h"

extern char **environ;

static void
mx_set(struct dns_mx *m, const char *host, uint16_t pref)
{
	(void)snprintf(m->host, sizeof m->host, "%s", host);
	m->pref = pref;
}

static uint32_t
rnd_zero(void *ctx, uint32_t bound)
{
	(void)ctx;
	(void)bound;
	return 0;
}

static uint32_t
rnd_broken(void *ctx, uint32_t bound)
{
	(void)ctx;
	return bound + 7;
}

/* Returns the values of a fixed sequence in turn (modulo bound). */
static uint32_t
rnd_seq(void *ctx, uint32_t bound)
{
	unsigned *i = ctx;
	static const uint32_t seq[] = {1, 0, 2, 1, 0};
	return seq[(*i)++ % 5] % bound;
}

static void
test_mx_sort_pref_order(void)
{
	struct dns_mx m[5];
	mx_set(&m[0], "c.example", 30);
	mx_set(&m[1], "a.example", 10);
	mx_set(&m[2], "e.example", 50);
	mx_set(&m[3], "b.example", 20);
	mx_set(&m[4], "d.example", 0);
	dns_mx_sort(m, 5, rnd_zero, NULL);
	CHECK_STR(m[0].host, "d.example");
	CHECK_STR(m[1].host, "a.example");
	CHECK_STR(m[2].host, "b.example");
	CHECK_STR(m[3].host, "c.example");
	CHECK_STR(m[4].host, "e.example");
	CHECK_INT(m[4].pref, 50);
	dns_mx_sort(m, 0, NULL, NULL);
	dns_mx_sort(m, 1, NULL, NULL);
	CHECK_STR(m[0].host, "d.example");
}

static void
test_mx_sort_equal_fixed_rnd(void)
{
	struct dns_mx m[4];
	mx_set(&m[0], "z.example", 20);
	mx_set(&m[1], "c.example", 10);
	mx_set(&m[2], "a.example", 10);
	mx_set(&m[3], "b.example", 10);
	/* Name order a,b,c, then Fisher-Yates with j = 0: i=3 swaps c<->a, i=2 swaps b<->c. */
	dns_mx_sort(m, 4, rnd_zero, NULL);
	CHECK_STR(m[0].host, "b.example");
	CHECK_STR(m[1].host, "c.example");
	CHECK_STR(m[2].host, "a.example");
	CHECK_STR(m[3].host, "z.example");
	/* Same input, another sequence: i=3 j=1 swaps c<->b -> a,c,b; i=2 j=0 swaps c<->a. */
	mx_set(&m[0], "z.example", 20);
	mx_set(&m[1], "c.example", 10);
	mx_set(&m[2], "a.example", 10);
	mx_set(&m[3], "b.example", 10);
	unsigned i = 0;
	dns_mx_sort(m, 4, rnd_seq, &i);
	CHECK_STR(m[0].host, "c.example");
	CHECK_STR(m[1].host, "a.example");
	CHECK_STR(m[2].host, "b.example");
	CHECK_STR(m[3].host, "z.example");
	CHECK_INT(i, 2);
	/* An out-of-range rnd must not break the array. */
	dns_mx_sort(m, 4, rnd_broken, NULL);
	CHECK_INT(m[0].pref, 10);
	CHECK_INT(m[3].pref, 20);
	CHECK_STR(m[3].host, "z.example");
}

static void
test_mx_sort_random_default(void)
{
	int first_a = 0, first_b = 0;
	for (int k = 0; k < 200; k++) {
		struct dns_mx m[3];
		mx_set(&m[0], "b.example", 5);
		mx_set(&m[1], "a.example", 5);
		mx_set(&m[2], "low.example", 1);
		dns_mx_sort(m, 3, NULL, NULL);
		CHECK_STR(m[0].host, "low.example");
		if (strcmp(m[1].host, "a.example") == 0)
			first_a++;
		else
			first_b++;
	}
	CHECK(first_a > 20);
	CHECK(first_b > 20);
}

static void
test_mx_is_null(void)
{
	struct dns_mx m[2];
	mx_set(&m[0], "", 0);
	CHECK(dns_mx_is_null(m, 1));
	mx_set(&m[0], ".", 0);
	CHECK(dns_mx_is_null(m, 1));
	mx_set(&m[0], ".", 10); /* preference is not checked */
	CHECK(dns_mx_is_null(m, 1));
	mx_set(&m[1], "mx.example", 10);
	CHECK(!dns_mx_is_null(m, 2));
	CHECK(!dns_mx_is_null(m, 0));
	mx_set(&m[0], "mx.example", 0);
	CHECK(!dns_mx_is_null(m, 1));
}

static void
test_ip_literal(void)
{
	CHECK(dns_is_ip_literal("192.0.2.1"));
	CHECK(dns_is_ip_literal("[192.0.2.1]"));
	CHECK(dns_is_ip_literal("::1"));
	CHECK(dns_is_ip_literal("[IPv6:2001:db8::1]"));
	CHECK(dns_is_ip_literal("[2001:db8::1]"));
	CHECK(!dns_is_ip_literal("mx.example"));
	CHECK(!dns_is_ip_literal("1.2.3"));
	CHECK(!dns_is_ip_literal(""));
	CHECK(!dns_is_ip_literal("[]"));
	CHECK(!dns_is_ip_literal("[192.0.2.1"));
	CHECK(!dns_is_ip_literal("192.0.2.256"));
}

static void
test_resolver_bad_forwarder(void)
{
	struct err err = {0};
	const char *bad[] = {"mx.example"};
	CHECK(dns_resolver_new(bad, 1, &err) == NULL);
	CHECK_INT(err.code, DNS_EPERM);
	const char *badport[] = {"127.0.0.1@70000"};
	CHECK(dns_resolver_new(badport, 1, &err) == NULL);
	const char *forms[] = {"127.0.0.1", "127.0.0.1@5353", "127.0.0.1:5353", "[::1]:5353",
	                       "::1"};
	struct dns_resolver *r = dns_resolver_new(forms, 5, &err);
	CHECK(r != NULL);
	dns_resolver_free(&r);
	CHECK(r == NULL);
	dns_resolver_free(&r);
}

/* ---- against tests/zonedns.py ---- */

static char zone_dir[256], zone_path[300];
static pid_t dnsd_pid = -1;
static int dnsd_port;
static struct dns_resolver *res_;

static void
zone_write(const char *json)
{
	char tmp[320];
	(void)snprintf(tmp, sizeof tmp, "%s.tmp", zone_path);
	FILE *f = fopen(tmp, "w");
	if (f == NULL || fputs(json, f) == EOF || fclose(f) != 0) {
		perror("zone_write");
		exit(1);
	}
	if (rename(tmp, zone_path) != 0) {
		perror("rename");
		exit(1);
	}
}

static const char zone_main[] =
    "{\"ttl\": 0, \"servfail\": [\"broken.example\", \"9.0.18.198.in-addr.arpa\"], "
    "\"records\": {\n"
    " \"multi.example\": {\"MX\": [[20, \"mx2.example\"], [10, \"mx1.example\"],"
    "   [10, \"mx1b.example\"], [30, \"mx3.example\"]]},\n"
    " \"implicit.example\": {\"A\": [\"127.0.0.2\"]},\n"
    " \"noaddr.example\": {\"TXT\": [\"hello\"]},\n"
    " \"nullmx.example\": {\"MX\": [[0, \".\"]]},\n"
    " \"literal.example\": {\"MX\": [[10, \"192.0.2.1\"]]},\n"
    " \"mixed.example\": {\"MX\": [[10, \"192.0.2.1\"], [20, \"mx1.example\"], [5, \".\"]]},\n"
    " \"cnamemx.example\": {\"CNAME\": \"multi.example\"},\n"
    " \"mx1.example\": {\"A\": [\"127.0.0.1\", \"127.0.0.3\"], \"AAAA\": [\"::1\"]},\n"
    " \"v6only.example\": {\"AAAA\": [\"2001:db8::5\"]},\n"
    " \"alias.example\": {\"CNAME\": \"mx1.example\"},\n"
    " \"spf.example\": {\"TXT\": [\"v=spf1 -all\", [\"v=DMARC1; \", \"p=none\"]]},\n"
    " \"change.example\": {\"A\": [\"127.0.0.10\"]},\n"
    " \"host.test\": {\"A\": [\"127.0.0.20\"]},\n"
    " \"7.0.18.198.in-addr.arpa\": {\"PTR\": [\"Mail.Example.\", \"alt.example\"]},\n"
    " \"1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.f.f.f.3.ip6.arpa\":"
    " {\"PTR\": [\"v6.example\"]},\n"
    " \"8.0.18.198.in-addr.arpa\": {\"TXT\": [\"no ptr\"]}\n"
    "}}\n";

static int
dnsd_start(void)
{
	test_tmpdir(zone_dir, sizeof zone_dir, "dns");
	(void)snprintf(zone_path, sizeof zone_path, "%s/zone.json", zone_dir);
	zone_write(zone_main);
	int p[2];
	if (pipe(p) != 0)
		return -1;
	posix_spawn_file_actions_t fa;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, p[1], 1);
	posix_spawn_file_actions_addclose(&fa, p[0]);
	posix_spawn_file_actions_addclose(&fa, p[1]);
	char *argv[] = {"/usr/bin/python3", "tests/zonedns.py", "--port", "0",
	                "--zone",           zone_path,          NULL};
	int rc = posix_spawn(&dnsd_pid, argv[0], &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	close(p[1]);
	if (rc != 0) {
		close(p[0]);
		dnsd_pid = -1;
		return -1;
	}
	char line[32];
	size_t n = 0;
	while (n + 1 < sizeof line) {
		struct pollfd pf = {.fd = p[0], .events = POLLIN};
		if (poll(&pf, 1, 15000) <= 0)
			break;
		ssize_t r = read(p[0], line + n, 1);
		if (r <= 0 || line[n] == '\n')
			break;
		n++;
	}
	line[n] = '\0';
	close(p[0]);
	dnsd_port = 0;
	for (size_t i = 0; i < n && line[i] >= '0' && line[i] <= '9'; i++)
		dnsd_port = dnsd_port * 10 + (line[i] - '0');
	if (dnsd_port <= 0 || dnsd_port > 65535) {
		fprintf(stderr, "zonedns did not print a port (\"%s\")\n", line);
		return -1;
	}
	char fwd[64];
	(void)snprintf(fwd, sizeof fwd, "127.0.0.1@%d", dnsd_port);
	const char *fw[] = {fwd};
	struct err err = {0};
	res_ = dns_resolver_new(fw, 1, &err);
	if (res_ == NULL) {
		fprintf(stderr, "dns_resolver_new: %s\n", err.msg);
		return -1;
	}
	return 0;
}

static void
dnsd_stop(void)
{
	dns_resolver_free(&res_);
	if (dnsd_pid > 0) {
		(void)kill(dnsd_pid, SIGTERM);
		int st;
		while (waitpid(dnsd_pid, &st, 0) < 0 && errno == EINTR)
			;
		dnsd_pid = -1;
	}
	test_tmpdir_remove(zone_dir);
}

static void
test_mx_multi(void)
{
	struct dns_mx_result r;
	struct err err = {0};
	CHECK_INT(dns_mx(res_, "Multi.Example.", &r, &err), 0);
	CHECK_INT(r.n, 4);
	CHECK(!r.implicit && !r.null_mx && !r.nxdomain);
	CHECK_INT(r.mx[0].pref, 10);
	CHECK_INT(r.mx[1].pref, 10);
	CHECK_INT(r.mx[2].pref, 20);
	CHECK_INT(r.mx[3].pref, 30);
	CHECK(strcmp(r.mx[0].host, "mx1.example") == 0 ||
	      strcmp(r.mx[0].host, "mx1b.example") == 0);
	CHECK(strcmp(r.mx[0].host, r.mx[1].host) != 0);
	CHECK_STR(r.mx[2].host, "mx2.example");
	CHECK_STR(r.mx[3].host, "mx3.example");
	/* A CNAME at the domain is followed. */
	CHECK_INT(dns_mx(res_, "cnamemx.example", &r, &err), 0);
	CHECK_INT(r.n, 4);
}

static void
test_mx_implicit(void)
{
	struct dns_mx_result r;
	struct err err = {0};
	CHECK_INT(dns_mx(res_, "implicit.example", &r, &err), 0);
	CHECK_INT(r.n, 1);
	CHECK(r.implicit);
	CHECK_STR(r.mx[0].host, "implicit.example");
	/* Exists, but neither MX nor address. */
	CHECK_INT(dns_mx(res_, "noaddr.example", &r, &err), -1);
	CHECK_INT(err.code, DNS_EPERM);
	CHECK(!r.nxdomain);
}

static void
test_mx_null_and_literal(void)
{
	struct dns_mx_result r;
	struct err err = {0};
	CHECK_INT(dns_mx(res_, "nullmx.example", &r, &err), -1);
	CHECK_INT(err.code, DNS_EPERM);
	CHECK(r.null_mx);
	CHECK_INT(r.n, 0);
	err.code = 0;
	CHECK_INT(dns_mx(res_, "literal.example", &r, &err), -1);
	CHECK_INT(err.code, DNS_EPERM);
	CHECK(!r.null_mx);
	/* The literal and the "." are dropped, the real host stays. */
	CHECK_INT(dns_mx(res_, "mixed.example", &r, &err), 0);
	CHECK_INT(r.n, 1);
	CHECK_STR(r.mx[0].host, "mx1.example");
}

static void
test_mx_errors(void)
{
	struct dns_mx_result r;
	struct err err = {0};
	CHECK_INT(dns_mx(res_, "nope.example", &r, &err), -1);
	CHECK_INT(err.code, DNS_EPERM);
	CHECK(r.nxdomain);
	err.code = 0;
	CHECK_INT(dns_mx(res_, "broken.example", &r, &err), -1);
	CHECK_INT(err.code, DNS_ETEMP);
	CHECK(!r.nxdomain);
	err.code = 0;
	CHECK_INT(dns_mx(res_, "bad..example", &r, &err), -1);
	CHECK_INT(err.code, DNS_EPERM);
	CHECK_INT(dns_mx(res_, "", &r, &err), -1);
	CHECK_INT(dns_mx(res_, "sp ace.example", &r, &err), -1);
}

static void
test_addrs(void)
{
	struct dns_addr_result a;
	struct err err = {0};
	CHECK_INT(dns_addrs(res_, "mx1.example", true, &a, &err), 0);
	CHECK_INT(a.n, 3);
	CHECK_INT(a.a[0].family, AF_INET6);
	CHECK_STR(a.a[0].addr, "::1");
	CHECK_INT(a.a[1].family, AF_INET);
	CHECK(strcmp(a.a[1].addr, "127.0.0.1") == 0 || strcmp(a.a[1].addr, "127.0.0.3") == 0);
	CHECK_INT(dns_addrs(res_, "mx1.example", false, &a, &err), 0);
	CHECK_INT(a.n, 2);
	CHECK_INT(a.a[0].family, AF_INET);
	/* CNAME */
	CHECK_INT(dns_addrs(res_, "alias.example", true, &a, &err), 0);
	CHECK_INT(a.n, 3);
	CHECK_INT(dns_addrs(res_, "v6only.example", true, &a, &err), 0);
	CHECK_INT(a.n, 1);
	CHECK_STR(a.a[0].addr, "2001:db8::5");
	CHECK_INT(dns_addrs(res_, "v6only.example", false, &a, &err), -1);
	CHECK_INT(err.code, DNS_EPERM);
	CHECK(!a.nxdomain);
	CHECK_INT(dns_addrs(res_, "nope.example", true, &a, &err), -1);
	CHECK_INT(err.code, DNS_EPERM);
	CHECK(a.nxdomain);
	CHECK_INT(dns_addrs(res_, "broken.example", true, &a, &err), -1);
	CHECK_INT(err.code, DNS_ETEMP);
	/* Built-in local zones are off with forwarders: .test comes from the forwarder. */
	CHECK_INT(dns_addrs(res_, "host.test", true, &a, &err), 0);
	CHECK_STR(a.a[0].addr, "127.0.0.20");
	/* Literals need no lookup. */
	CHECK_INT(dns_addrs(res_, "[192.0.2.7]", true, &a, &err), 0);
	CHECK_INT(a.n, 1);
	CHECK_STR(a.a[0].addr, "192.0.2.7");
	CHECK_INT(dns_addrs(res_, "[IPv6:2001:DB8::1]", true, &a, &err), 0);
	CHECK_STR(a.a[0].addr, "2001:db8::1");
	CHECK_INT(a.a[0].family, AF_INET6);
	CHECK_INT(dns_addrs(res_, "::1", false, &a, &err), -1);
}

static void
test_txt(void)
{
	struct dns_txt_result t;
	struct err err = {0};
	CHECK_INT(dns_txt(res_, "spf.example", &t, &err), 0);
	CHECK_INT(t.n, 2);
	int seen_spf = 0, seen_dmarc = 0;
	for (size_t i = 0; i < t.n; i++) {
		if (strcmp(t.txt[i], "v=spf1 -all") == 0 && t.len[i] == 11)
			seen_spf = 1;
		if (strcmp(t.txt[i], "v=DMARC1; p=none") == 0 && t.len[i] == 16)
			seen_dmarc = 1;
	}
	CHECK(seen_spf && seen_dmarc);
	dns_txt_result_free(&t);
	CHECK(t.txt == NULL && t.n == 0);
	CHECK_INT(dns_txt(res_, "mx1.example", &t, &err), 0);
	CHECK_INT(t.n, 0);
	CHECK(!t.nxdomain);
	dns_txt_result_free(&t);
	CHECK_INT(dns_txt(res_, "nope.example", &t, &err), 0);
	CHECK_INT(t.n, 0);
	CHECK(t.nxdomain);
	dns_txt_result_free(&t);
	CHECK_INT(dns_txt(res_, "broken.example", &t, &err), -1);
	CHECK_INT(err.code, DNS_ETEMP);
	dns_txt_result_free(&t);
}

static void
test_ptr_name(void)
{
	char out[80];
	CHECK_INT(dns_ptr_name("192.0.2.1", out, sizeof out), 0);
	CHECK_STR(out, "1.2.0.192.in-addr.arpa");
	CHECK_INT(dns_ptr_name("2001:db8::abc:1", out, sizeof out), 0);
	CHECK_STR(out, "1.0.0.0.c.b.a.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa");
	CHECK_INT(strlen(out), 72);
	CHECK_INT(dns_ptr_name("::ffff:192.0.2.1", out, sizeof out), 0);
	CHECK_STR(out, "1.0.2.0.0.0.0.c.f.f.f.f.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.ip6.arpa");
	CHECK_INT(dns_ptr_name("2001:db8::1", out, 73), 0);
	CHECK_INT(dns_ptr_name("2001:db8::1", out, 72), -1);
	CHECK_INT(dns_ptr_name("255.255.255.255", out, 30), 0);
	CHECK_STR(out, "255.255.255.255.in-addr.arpa");
	CHECK_INT(dns_ptr_name("255.255.255.255", out, 28), -1);
	CHECK_INT(dns_ptr_name("192.0.2", out, sizeof out), -1);
	CHECK_INT(dns_ptr_name("[192.0.2.1]", out, sizeof out), -1);
	CHECK_INT(dns_ptr_name("mail.example", out, sizeof out), -1);
	CHECK_INT(dns_ptr_name("", out, sizeof out), -1);
	CHECK_INT(dns_ptr_name(NULL, out, sizeof out), -1);
}

static void
test_ptr(void)
{
	/* reverse names of 198.18.0.0/15 (RFC 2544) and 3fff::/20 (RFC 9637): outside
	 * libunbound's built-in local zones (127., ::1, RFC 1918, documentation nets); nothing is
	 * contacted at these addresses, the zone server on loopback answers */
	struct dns_txt_result t;
	struct err err = {0};
	CHECK_INT(dns_ptr(res_, "198.18.0.7", &t, &err), 0);
	CHECK_INT(t.n, 2);
	if (t.n == 2) {
		int seen = 0;
		for (size_t i = 0; i < 2; i++)
			seen |= (strcmp(t.txt[i], "mail.example") == 0 && t.len[i] == 12 ? 1 : 0) |
			        (strcmp(t.txt[i], "alt.example") == 0 ? 2 : 0);
		CHECK_INT(seen, 3);
	}
	dns_txt_result_free(&t);
	CHECK_INT(dns_ptr(res_, "3fff::1", &t, &err), 0);
	CHECK_INT(t.n, 1);
	if (t.n == 1)
		CHECK_STR(t.txt[0], "v6.example");
	dns_txt_result_free(&t);
	/* the name exists without PTR: no data */
	CHECK_INT(dns_ptr(res_, "198.18.0.8", &t, &err), 0);
	CHECK_INT(t.n, 0);
	CHECK(!t.nxdomain);
	dns_txt_result_free(&t);
	CHECK_INT(dns_ptr(res_, "198.18.0.99", &t, &err), 0);
	CHECK_INT(t.n, 0);
	CHECK(t.nxdomain);
	dns_txt_result_free(&t);
	CHECK_INT(dns_ptr(res_, "198.18.0.9", &t, &err), -1);
	CHECK_INT(err.code, DNS_ETEMP);
	dns_txt_result_free(&t);
	err.code = 0;
	CHECK_INT(dns_ptr(res_, "not-an-ip", &t, &err), -1);
	CHECK_INT(err.code, DNS_EPERM);
	CHECK_INT(t.n, 0);
}

/* Limits and a changed zone (TTL 0: nothing cached). */
static void
test_limits_and_reload(void)
{
	static char json[16384];
	size_t o = 0;
	o += (size_t)snprintf(json + o, sizeof json - o,
	                      "{\"ttl\": 0, \"records\": {\"many.example\": {\"MX\": [");
	for (int i = 0; i < 100; i++)
		o += (size_t)snprintf(json + o, sizeof json - o, "%s[%d, \"h%d.example\"]",
		                      i ? "," : "", 100 - i, i);
	o += (size_t)snprintf(json + o, sizeof json - o, "]}, \"addrs.example\": {\"A\": [");
	for (int i = 0; i < 40; i++)
		o += (size_t)snprintf(json + o, sizeof json - o, "%s\"127.0.1.%d\"", i ? "," : "",
		                      i + 1);
	o += (size_t)snprintf(json + o, sizeof json - o,
	                      "]}, \"change.example\": {\"A\": [\"127.0.0.11\"]}, "
	                      "\"long.example\": {\"TXT\": [\"%0300d\"]}}}\n",
	                      0);
	CHECK(o < sizeof json);
	zone_write(json);

	struct dns_mx_result r;
	struct err err = {0};
	CHECK_INT(dns_mx(res_, "many.example", &r, &err), 0);
	CHECK_INT(r.n, DNS_MX_MAX);
	CHECK_INT(r.mx[0].pref, 1);
	CHECK_STR(r.mx[0].host, "h99.example");
	CHECK_INT(r.mx[DNS_MX_MAX - 1].pref, 64);
	struct dns_addr_result a;
	CHECK_INT(dns_addrs(res_, "addrs.example", true, &a, &err), 0);
	CHECK_INT(a.n, DNS_ADDRS_MAX);
	CHECK_INT(dns_addrs(res_, "change.example", true, &a, &err), 0);
	CHECK_INT(a.n, 1);
	CHECK_STR(a.a[0].addr, "127.0.0.11");
	struct dns_txt_result t;
	CHECK_INT(dns_txt(res_, "long.example", &t, &err), 0);
	CHECK_INT(t.n, 1);
	if (t.n == 1) {
		CHECK_INT(t.len[0], 300); /* two character-strings (255 + 45) joined */
		CHECK_INT(strspn(t.txt[0], "0"), 300);
	}
	dns_txt_result_free(&t);
	zone_write(zone_main);
}

static void *
lookup_thread(void *arg)
{
	int *failures = arg;
	for (int i = 0; i < 20; i++) {
		struct dns_mx_result r;
		struct dns_addr_result a;
		struct err err = {0};
		if (dns_mx(res_, "multi.example", &r, &err) != 0 || r.n != 4)
			(*failures)++;
		if (dns_addrs(res_, "mx1.example", true, &a, &err) != 0 || a.n != 3)
			(*failures)++;
	}
	return NULL;
}

static void
test_threads(void)
{
	pthread_t th[4];
	int failures[4] = {0};
	for (int i = 0; i < 4; i++)
		CHECK_INT(pthread_create(&th[i], NULL, lookup_thread, &failures[i]), 0);
	for (int i = 0; i < 4; i++) {
		pthread_join(th[i], NULL);
		CHECK_INT(failures[i], 0);
	}
}

int
main(void)
{
	RUN(test_mx_sort_pref_order);
	RUN(test_mx_sort_equal_fixed_rnd);
	RUN(test_mx_sort_random_default);
	RUN(test_mx_is_null);
	RUN(test_ip_literal);
	RUN(test_resolver_bad_forwarder);
	RUN(test_ptr_name);
	if (dnsd_start() != 0) {
		fprintf(stderr, "not ok: cannot start tests/zonedns.py (run from the repo root)\n");
		test_failed_++;
		dnsd_stop();
		return test_done("dns");
	}
	RUN(test_mx_multi);
	RUN(test_mx_implicit);
	RUN(test_mx_null_and_literal);
	RUN(test_mx_errors);
	RUN(test_addrs);
	RUN(test_txt);
	RUN(test_ptr);
	RUN(test_limits_and_reload);
	RUN(test_threads);
	dnsd_stop();
	return test_done("dns");
}

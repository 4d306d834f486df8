/* Unit tests of events/webhook.c: the signature against values computed with
 * `openssl dgst -sha256 -hmac`, the delivery body, the SSRF table of events_url_check, and the
 * sender end to end on a temporary store with a fake clock: a loopback HTTP server scripted to
 * answer 500, 500, 200 (attempts recorded, signature verified), a server that never answers
 * (timeout), and a private address refused before any connection. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <jansson.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "events/events.h"
#include "test.h"
#include "test_tmp.h"
#include "util/clock.h"
#include "util/log.h"

/* ---- signature ---- */

static void
test_sign(void)
{
	/* printf '%s' '1700000000.{"id":"evt_1","type":"message.delivered"}' |
	 *   openssl dgst -sha256 -hmac 'whsec_test' */
	const char *body = "{\"id\":\"evt_1\",\"type\":\"message.delivered\"}";
	char sig[EVENTS_SIGNATURE_MAX];
	events_webhook_sign("whsec_test", 1700000000, body, strlen(body), sig);
	CHECK_STR(sig, "t=1700000000,v1="
	               "cebf924d8e4237db8f7cc65f16141ca7f25b8bbf1c3fea75e47d77686d95e468");
	/* printf '%s' '0.' | openssl dgst -sha256 -hmac '' */
	events_webhook_sign("", 0, "", 0, sig);
	CHECK_STR(sig, "t=0,v1=b849d5a581847b281957065739df36df2463d1977ea8d6e1e4e6cf33fadc68c3");
	/* the longest timestamp fits */
	events_webhook_sign("k", INT64_MIN, "x", 1, sig);
	CHECK(strncmp(sig, "t=-9223372036854775808,v1=", 26) == 0);
	CHECK_INT(strlen(sig), 26 + 64);
}

/* ---- body ---- */

static void
test_event_json(void)
{
	struct store_event_row e = {
	    .ev = {.id = 42,
	           .created = 1700000000,
	           .type = "message.delivered",
	           .recipient = "bob@example.org",
	           .detail = "{\"dsn\":\"2.0.0\",\"domain\":\"evil.example\",\"n\":3}"},
	    .domain = "example.com",
	    .message = "msg_abc",
	    .tags_json = "[\"a\",\"b\"]",
	    .metadata_json = "{\"k\":\"v\"}",
	};
	char *s = events_event_json(&e);
	json_t *j = json_loads(s, 0, NULL);
	CHECK(j != NULL && json_is_object(j));
	CHECK_STR(json_string_value(json_object_get(j, "id")), "evt_42");
	CHECK_STR(json_string_value(json_object_get(j, "type")), "message.delivered");
	CHECK_STR(json_string_value(json_object_get(j, "created_at")), "2023-11-14T22:13:20Z");
	json_t *d = json_object_get(j, "data");
	CHECK(json_is_object(d));
	CHECK_STR(json_string_value(json_object_get(d, "domain")), "example.com"); /* not evil */
	CHECK_STR(json_string_value(json_object_get(d, "message")), "msg_abc");
	CHECK_STR(json_string_value(json_object_get(d, "recipient")), "bob@example.org");
	CHECK_INT(json_array_size(json_object_get(d, "tags")), 2);
	CHECK_STR(json_string_value(json_array_get(json_object_get(d, "tags"), 1)), "b");
	CHECK_STR(json_string_value(json_object_get(json_object_get(d, "metadata"), "k")), "v");
	CHECK_STR(json_string_value(json_object_get(d, "dsn")), "2.0.0");
	CHECK_INT(json_integer_value(json_object_get(d, "n")), 3);
	json_decref(j);
	free(s);

	/* nothing optional, and junk where JSON is expected */
	struct store_event_row z = {
	    .ev =
	        {.id = 7, .created = 0, .type = "message.opened", .recipient = "", .detail = "[1"},
	    .tags_json = "{\"not\":\"array\"}",
	    .metadata_json = "nope",
	};
	s = events_event_json(&z);
	j = json_loads(s, 0, NULL);
	CHECK(j != NULL);
	CHECK_STR(json_string_value(json_object_get(j, "created_at")), "1970-01-01T00:00:00Z");
	d = json_object_get(j, "data");
	CHECK(json_is_null(json_object_get(d, "message")));
	CHECK(json_is_null(json_object_get(d, "domain")));
	CHECK_STR(json_string_value(json_object_get(d, "recipient")), "");
	CHECK(json_is_array(json_object_get(d, "tags")) &&
	      json_array_size(json_object_get(d, "tags")) == 0);
	CHECK(json_is_object(json_object_get(d, "metadata")) &&
	      json_object_size(json_object_get(d, "metadata")) == 0);
	CHECK_INT(json_object_size(d), 5);
	json_decref(j);
	free(s);
}

/* ---- SSRF table ---- */

static void
test_url_check(void)
{
	static const struct {
		const char *url;
		bool allow_private;
		int want;
		const char *addr; /* when want == 0 */
		unsigned port;
	} cases[] = {
	    {"http://8.8.8.8/hook", false, 0, "8.8.8.8", 80},
	    {"https://1.1.1.1/", false, 0, "1.1.1.1", 443},
	    {"HTTPS://1.1.1.1:8443/x?y=1", false, 0, "1.1.1.1", 8443},
	    {"http://172.32.0.1/", false, 0, "172.32.0.1", 80},   /* just past 172.16/12 */
	    {"http://100.128.0.1/", false, 0, "100.128.0.1", 80}, /* just past 100.64/10 */
	    {"http://127.0.0.1/", false, -1, NULL, 0},
	    {"http://127.0.0.1:9/", true, 0, "127.0.0.1", 9},
	    {"http://0x7f.1/", false, -1, NULL, 0},
	    {"http://0.0.0.0/", false, -1, NULL, 0},
	    {"http://10.1.2.3/", false, -1, NULL, 0},
	    {"http://100.64.0.1/", false, -1, NULL, 0},
	    {"http://169.254.169.254/latest/meta-data/", false, -1, NULL, 0},
	    {"http://172.16.0.1/", false, -1, NULL, 0},
	    {"http://172.31.255.255/", false, -1, NULL, 0},
	    {"http://192.0.0.8/", false, -1, NULL, 0},
	    {"http://192.168.1.1/", false, -1, NULL, 0},
	    {"http://198.19.0.1/", false, -1, NULL, 0},
	    {"http://224.0.0.1/", false, -1, NULL, 0},
	    {"http://240.0.0.1/", false, -1, NULL, 0},
	    {"http://255.255.255.255/", false, -1, NULL, 0},
	    {"http://[2606:4700:4700::1111]/", false, 0, "2606:4700:4700::1111", 80},
	    {"http://[::1]:8080/", false, -1, NULL, 0},
	    {"http://[::1]:8080/", true, 0, "::1", 8080},
	    {"http://[::]/", false, -1, NULL, 0},
	    {"http://[fc00::1]/", false, -1, NULL, 0},
	    {"http://[fd12:3456::1]/", false, -1, NULL, 0},
	    {"http://[fe80::1]/", false, -1, NULL, 0},
	    {"http://[ff02::1]/", false, -1, NULL, 0},
	    {"http://[::ffff:127.0.0.1]/", false, -1, NULL, 0},
	    {"http://[::ffff:10.0.0.1]/", false, -1, NULL, 0},
	    {"http://[::ffff:8.8.8.8]/", false, 0, "::ffff:8.8.8.8", 80},
	    {"http://[64:ff9b::10.0.0.1]/", false, -1, NULL, 0},
	    {"http://[64:ff9b::8.8.8.8]/", false, 0, "64:ff9b::808:808", 80},
	    {"http://localhost/", false, -1, NULL, 0},
	    {"ftp://8.8.8.8/", false, -1, NULL, 0},
	    {"file:///etc/passwd", true, -1, NULL, 0},
	    {"gopher://8.8.8.8/", true, -1, NULL, 0},
	    {"http:///nohost", true, -1, NULL, 0},
	    {"8.8.8.8/no-scheme", true, -1, NULL, 0},
	    {"http://8.8.8.8:99999/", true, -1, NULL, 0},
	    {"", true, -1, NULL, 0},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		char addr[64] = "";
		unsigned port = 0;
		struct err err = {0};
		int rc = events_url_check(cases[i].url, cases[i].allow_private, addr, &port, &err);
		if (rc != cases[i].want)
			fprintf(stderr, "  case %zu %s: rc %d (%s)\n", i, cases[i].url, rc,
			        err.msg);
		CHECK_INT(rc, cases[i].want);
		if (rc == 0 && cases[i].want == 0) {
			CHECK_STR(addr, cases[i].addr);
			CHECK_INT(port, cases[i].port);
		}
		if (rc < 0)
			CHECK(err.msg[0] != '\0');
	}
	/* localhost is fine when private addresses are allowed (either family) */
	char addr[64];
	CHECK_INT(events_url_check("http://localhost:1/", true, addr, NULL, NULL), 0);
	CHECK(strcmp(addr, "127.0.0.1") == 0 || strcmp(addr, "::1") == 0);
	/* too long */
	char *big = malloc(8200);
	memcpy(big, "http://8.8.8.8/", 15);
	memset(big + 15, 'a', 8200 - 16);
	big[8199] = '\0';
	struct err err = {0};
	CHECK_INT(events_url_check(big, false, NULL, NULL, &err), -1);
	free(big);
}

/* ---- a loopback HTTP server scripted with status codes ---- */

#define SRV_MAX_REQ 8
struct srv {
	int fd;
	unsigned port;
	int statuses[SRV_MAX_REQ];
	int n_statuses;
	_Atomic int n_req;
	char *req[SRV_MAX_REQ]; /* headers + body, NUL-terminated */
	size_t hdr_len[SRV_MAX_REQ];
	pthread_t thread;
};

/* Listens on a free port of the loopback address addr ("127.0.0.1" or "::1"). */
static int
listen_on(const char *addr, unsigned *port_r)
{
	bool v6 = strchr(addr, ':') != NULL;
	struct sockaddr_storage ss = {0};
	struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
	socklen_t sl = v6 ? sizeof *s6 : sizeof *s4;
	ss.ss_family = v6 ? AF_INET6 : AF_INET;
	if (inet_pton(ss.ss_family, addr, v6 ? (void *)&s6->sin6_addr : (void *)&s4->sin_addr) != 1)
		exit(1);
	int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || bind(fd, (struct sockaddr *)&ss, sl) < 0 || listen(fd, 8) < 0 ||
	    getsockname(fd, (struct sockaddr *)&ss, &sl) < 0) {
		perror("listen_on");
		exit(1);
	}
	*port_r = ntohs(v6 ? s6->sin6_port : s4->sin_port);
	return fd;
}

static int
listen_loopback(unsigned *port_r)
{
	return listen_on("127.0.0.1", port_r);
}

static void *
srv_main(void *arg)
{
	struct srv *s = arg;
	for (int k = 0; k < s->n_statuses; k++) {
		struct pollfd p = {.fd = s->fd, .events = POLLIN};
		if (poll(&p, 1, 20000) <= 0)
			break;
		int c = accept(s->fd, NULL, NULL);
		if (c < 0)
			break;
		size_t cap = 65536, len = 0, want = 0;
		char *b = calloc(1, cap + 1);
		char *eoh = NULL;
		while (len < cap) {
			struct pollfd cp = {.fd = c, .events = POLLIN};
			if (poll(&cp, 1, 5000) <= 0)
				break;
			ssize_t n = read(c, b + len, cap - len);
			if (n <= 0)
				break;
			len += (size_t)n;
			b[len] = '\0';
			if (eoh == NULL && (eoh = strstr(b, "\r\n\r\n")) != NULL) {
				const char *cl = strcasestr(b, "\r\nContent-Length:");
				size_t body = cl ? strtoul(cl + 17, NULL, 10) : 0;
				want = (size_t)(eoh + 4 - b) + body;
			}
			if (eoh && len >= want)
				break;
		}
		s->req[k] = b;
		s->hdr_len[k] = eoh ? (size_t)(eoh + 4 - b) : len;
		char resp[128];
		int rn = snprintf(resp, sizeof resp,
		                  "HTTP/1.1 %d Scripted\r\nContent-Length: 2\r\n"
		                  "Connection: close\r\n\r\nok",
		                  s->statuses[k]);
		(void)!write(c, resp, (size_t)rn);
		close(c);
		atomic_fetch_add(&s->n_req, 1);
	}
	return NULL;
}

/* The value of header name in request k (copied into out), or NULL. */
static const char *
srv_header(const struct srv *s, int k, const char *name, char *out, size_t n)
{
	char pat[64];
	(void)snprintf(pat, sizeof pat, "\r\n%s:", name);
	const char *h = strcasestr(s->req[k], pat);
	if (h == NULL || (size_t)(h - s->req[k]) >= s->hdr_len[k])
		return NULL;
	h += strlen(pat);
	while (*h == ' ')
		h++;
	size_t l = strcspn(h, "\r\n");
	(void)snprintf(out, n, "%.*s", (int)l, h);
	return out;
}

/* ---- store and clock ---- */

static _Atomic int64_t fake_now;

static int64_t
fake_clock(void)
{
	return atomic_load(&fake_now);
}

static char tmpdir[64];

static struct store *
open_fresh(const char *name)
{
	char path[128];
	test_tmpdir(tmpdir, sizeof tmpdir, name);
	(void)snprintf(path, sizeof path, "%s/lightr.db", tmpdir);
	struct store *st = NULL;
	struct err err = {0};
	if (store_open(path, &st, &err) < 0 || store_domain_add(st, "example.com", &err) < 0) {
		fprintf(stderr, "store: %s\n", err.msg);
		exit(1);
	}
	return st;
}

static void
close_store(struct store **st)
{
	store_close(st);
	test_tmpdir_remove(tmpdir);
}

/* A webhook to url and one event for it; returns the webhook id, the event id in *eid. */
static int64_t
add_hook_and_event(struct store *st, const char *url, const char *secret, int64_t *eid)
{
	struct err err = {0};
	int64_t wid = 0;
	if (store_webhook_add(st, url, secret, "", NULL, fake_clock(), &wid, &err) < 0)
		fprintf(stderr, "  store_webhook_add: %s\n", err.msg);
	struct store_event_new ev = {
	    .type = "message.delivered",
	    .domain = "example.com",
	    .message = "msg_1",
	    .recipient = "rcpt@example.org",
	    .detail = "{\"dsn\":\"2.0.0\"}",
	    .created = fake_clock(),
	};
	if (store_event_add(st, &ev, eid, &err) < 0)
		fprintf(stderr, "  store_event_add: %s\n", err.msg);
	return wid;
}

/* Polls the webhook's only delivery until it has n_tries attempts and (when status is not NULL)
 * that status, for up to 10 s. Returns the deliveries (caller frees) or NULL on timeout. */
static struct store_webhook_delivery *
wait_delivery(struct store *st, int64_t wid, size_t n_tries, const char *status)
{
	int64_t end = clock_mono_ms() + 10000;
	while (clock_mono_ms() < end) {
		struct store_webhook_delivery *v = NULL;
		size_t n = 0;
		struct err err = {0};
		if (store_webhook_deliveries(st, wid, 0, 10, &v, &n, &err) == 0 && n == 1 &&
		    v[0].n_tries == n_tries && (status == NULL || strcmp(v[0].status, status) == 0))
			return v;
		store_webhook_deliveries_free(&v, n);
		usleep(20000);
	}
	fprintf(stderr, "  wait_delivery: timed out waiting for %zu tries (%s)\n", n_tries,
	        status ? status : "any");
	return NULL;
}

/* The attempts in the order they were made. */
static void
sort_tries(struct store_webhook_delivery *d)
{
	for (size_t i = 1; i < d->n_tries; i++)
		for (size_t j = i; j > 0 && d->tries[j].at < d->tries[j - 1].at; j--) {
			struct store_webhook_attempt t = d->tries[j];
			d->tries[j] = d->tries[j - 1];
			d->tries[j - 1] = t;
		}
}

static void
test_end_to_end(void)
{
	atomic_store(&fake_now, 1000);
	struct store *st = open_fresh("webhook-e2e");
	struct srv s = {.statuses = {500, 500, 200}, .n_statuses = 3};
	s.fd = listen_loopback(&s.port);
	pthread_create(&s.thread, NULL, srv_main, &s);
	char url[128];
	(void)snprintf(url, sizeof url, "http://127.0.0.1:%u/hooks/lightr?x=1", s.port);
	int64_t eid = 0;
	int64_t wid = add_hook_and_event(st, url, "whsec_e2e", &eid);

	static const uint32_t retry[] = {1, 1, 1};
	struct events_webhook_config cfg = {
	    .st = st,
	    .allow_private = true,
	    .timeout_s = 5,
	    .workers = 2,
	    .retry = retry,
	    .n_retry = 3,
	    .clock = fake_clock,
	    .user_agent = "Lightr/test",
	};
	struct events_webhooks *w = NULL;
	struct err err = {0};
	CHECK_INT(events_webhooks_start(&cfg, &w, &err), 0);
	events_webhooks_wake(w);

	struct store_webhook_delivery *d = wait_delivery(st, wid, 1, "pending");
	CHECK(d != NULL);
	if (d) {
		CHECK_INT(d[0].attempts, 1);
		CHECK_INT(d[0].next_attempt, 1001);
		store_webhook_deliveries_free(&d, 1);
	}
	atomic_store(&fake_now, 1001);
	events_webhooks_wake(w);
	d = wait_delivery(st, wid, 2, "pending");
	CHECK(d != NULL);
	store_webhook_deliveries_free(&d, d ? 1 : 0);
	atomic_store(&fake_now, 1002);
	events_webhooks_wake(w);
	d = wait_delivery(st, wid, 3, "delivered");
	CHECK(d != NULL);
	if (d) {
		sort_tries(&d[0]);
		CHECK_INT(d[0].tries[0].status_code, 500);
		CHECK_INT(d[0].tries[1].status_code, 500);
		CHECK_INT(d[0].tries[2].status_code, 200);
		CHECK_STR(d[0].tries[0].error, "HTTP 500");
		CHECK(d[0].tries[2].error == NULL || d[0].tries[2].error[0] == '\0');
		CHECK_INT(d[0].tries[0].at, 1000);
		CHECK_INT(d[0].tries[2].at, 1002);
		CHECK_INT(d[0].attempts, 3);
		CHECK_INT(d[0].event_id, eid);
		store_webhook_deliveries_free(&d, 1);
	}
	events_webhooks_stop(&w);
	CHECK(w == NULL);
	pthread_join(s.thread, NULL);
	close(s.fd);

	CHECK_INT(atomic_load(&s.n_req), 3);
	for (int k = 0; k < atomic_load(&s.n_req); k++) {
		char v[256], want[64];
		CHECK(strncmp(s.req[k], "POST /hooks/lightr?x=1 HTTP/1.1\r\n", 33) == 0);
		(void)snprintf(want, sizeof want, "evt_%" PRId64, eid);
		CHECK_STR(srv_header(&s, k, "Lightr-Event-Id", v, sizeof v), want);
		CHECK_STR(srv_header(&s, k, "Content-Type", v, sizeof v), "application/json");
		CHECK_STR(srv_header(&s, k, "User-Agent", v, sizeof v), "Lightr/test");
		const char *body = s.req[k] + s.hdr_len[k];
		const char *sig = srv_header(&s, k, "Lightr-Signature", v, sizeof v);
		CHECK(sig != NULL);
		long long t = 0;
		if (sig && sscanf(sig, "t=%lld,", &t) == 1) {
			CHECK_INT(t, 1000 + k);
			char mine[EVENTS_SIGNATURE_MAX];
			events_webhook_sign("whsec_e2e", t, body, strlen(body), mine);
			CHECK_STR(sig, mine);
		} else {
			CHECK(!"no t= in signature");
		}
		json_t *j = json_loads(body, 0, NULL);
		CHECK(j != NULL);
		CHECK_STR(json_string_value(json_object_get(j, "id")), want);
		json_t *data = json_object_get(j, "data");
		CHECK_STR(json_string_value(json_object_get(data, "domain")), "example.com");
		CHECK_STR(json_string_value(json_object_get(data, "message")), "msg_1");
		CHECK_STR(json_string_value(json_object_get(data, "recipient")),
		          "rcpt@example.org");
		CHECK_STR(json_string_value(json_object_get(data, "dsn")), "2.0.0");
		json_decref(j);
	}
	for (int k = 0; k < SRV_MAX_REQ; k++)
		free(s.req[k]);
	close_store(&st);
}

static void
test_timeout(void)
{
	atomic_store(&fake_now, 5000);
	struct store *st = open_fresh("webhook-timeout");
	unsigned port;
	int fd = listen_loopback(&port); /* never accepted: the kernel queues, nobody answers */
	char url[128];
	(void)snprintf(url, sizeof url, "http://127.0.0.1:%u/", port);
	int64_t eid;
	int64_t wid = add_hook_and_event(st, url, "s", &eid);
	static const uint32_t retry[] = {30};
	struct events_webhook_config cfg = {.st = st,
	                                    .allow_private = true,
	                                    .timeout_s = 1,
	                                    .workers = 1,
	                                    .retry = retry,
	                                    .n_retry = 1,
	                                    .clock = fake_clock};
	struct events_webhooks *w = NULL;
	struct err err = {0};
	int64_t t0 = clock_mono_ms();
	CHECK_INT(events_webhooks_start(&cfg, &w, &err), 0);
	events_webhooks_wake(w);
	struct store_webhook_delivery *d = wait_delivery(st, wid, 1, "pending");
	CHECK(d != NULL);
	if (d) {
		CHECK_INT(d[0].tries[0].status_code, 0);
		CHECK_STR(d[0].tries[0].error, "timeout");
		CHECK(d[0].tries[0].duration_ms >= 900);
		CHECK_INT(d[0].next_attempt, 5030);
		store_webhook_deliveries_free(&d, 1);
	}
	CHECK(clock_mono_ms() - t0 < 5000);
	events_webhooks_stop(&w);
	close(fd);
	close_store(&st);
}

static void
test_private_refused(void)
{
	atomic_store(&fake_now, 7000);
	struct store *st = open_fresh("webhook-ssrf");
	unsigned port;
	int fd = listen_loopback(&port);
	char url[128];
	(void)snprintf(url, sizeof url, "http://127.0.0.1:%u/", port);
	int64_t eid;
	int64_t wid = add_hook_and_event(st, url, "s", &eid);
	struct events_webhook_config cfg = {.st = st,
	                                    .allow_private = false,
	                                    .timeout_s = 2,
	                                    .workers = 1,
	                                    .retry = (const uint32_t[]){1},
	                                    .n_retry = 0, /* no retries: failed at once */
	                                    .clock = fake_clock};
	struct events_webhooks *w = NULL;
	struct err err = {0};
	CHECK_INT(events_webhooks_start(&cfg, &w, &err), 0);
	events_webhooks_wake(w);
	struct store_webhook_delivery *d = wait_delivery(st, wid, 1, "failed");
	CHECK(d != NULL);
	if (d) {
		CHECK_INT(d[0].tries[0].status_code, 0);
		CHECK(d[0].tries[0].error && strstr(d[0].tries[0].error, "not public") != NULL);
		store_webhook_deliveries_free(&d, 1);
	}
	events_webhooks_stop(&w);
	/* nothing ever connected */
	CHECK(fcntl(fd, F_SETFL, O_NONBLOCK) == 0);
	int c = accept(fd, NULL, NULL);
	CHECK(c < 0 && (errno == EAGAIN || errno == EWOULDBLOCK));
	if (c >= 0)
		close(c);
	close(fd);
	close_store(&st);
}

/* A host name goes through the CURLOPT_RESOLVE pin: the connection reaches the address the
 * check approved, and the request still names the host. */
static void
test_hostname(void)
{
	atomic_store(&fake_now, 9000);
	char addr[64];
	if (events_url_check("http://localhost:1/", true, addr, NULL, NULL) < 0) {
		fprintf(stderr, "  test_hostname: localhost does not resolve here, skipped\n");
		return;
	}
	struct store *st = open_fresh("webhook-host");
	struct srv s = {.statuses = {204}, .n_statuses = 1};
	s.fd = listen_on(addr, &s.port);
	pthread_create(&s.thread, NULL, srv_main, &s);
	char url[128];
	(void)snprintf(url, sizeof url, "http://LocalHost:%u/h", s.port);
	int64_t eid;
	int64_t wid = add_hook_and_event(st, url, "s", &eid);
	struct events_webhook_config cfg = {
	    .st = st, .allow_private = true, .timeout_s = 5, .workers = 3, .clock = fake_clock};
	struct events_webhooks *w = NULL;
	struct err err = {0};
	CHECK_INT(events_webhooks_start(&cfg, &w, &err), 0);
	struct store_webhook_delivery *d = wait_delivery(st, wid, 1, "delivered");
	CHECK(d != NULL);
	if (d) {
		CHECK_INT(d[0].tries[0].status_code, 204);
		store_webhook_deliveries_free(&d, 1);
	}
	events_webhooks_stop(&w);
	pthread_join(s.thread, NULL);
	close(s.fd);
	CHECK_INT(atomic_load(&s.n_req), 1);
	if (s.req[0]) {
		char v[128], want[64];
		(void)snprintf(want, sizeof want, "LocalHost:%u", s.port);
		const char *host = srv_header(&s, 0, "Host", v, sizeof v);
		CHECK(host != NULL && strcasecmp(host, want) == 0);
	}
	free(s.req[0]);
	close_store(&st);
}

static void
test_start_stop(void)
{
	/* a sender with nothing to do stops promptly; bad configs are refused */
	atomic_store(&fake_now, 100);
	struct store *st = open_fresh("webhook-idle");
	struct events_webhooks *w = NULL;
	struct err err = {0};
	struct events_webhook_config cfg = {.st = st, .clock = fake_clock};
	CHECK_INT(events_webhooks_start(&cfg, &w, &err), 0);
	events_webhooks_wake(w);
	usleep(50000);
	int64_t t0 = clock_mono_ms();
	events_webhooks_stop(&w);
	CHECK(clock_mono_ms() - t0 < 2000);
	events_webhooks_stop(&w); /* NULL: no-op */
	events_webhooks_wake(NULL);
	cfg.n_retry = EVENTS_WEBHOOK_RETRY_MAX + 1;
	cfg.retry = (const uint32_t[]){1};
	CHECK_INT(events_webhooks_start(&cfg, &w, &err), -1);
	CHECK(w == NULL);
	struct events_webhook_config none = {0};
	CHECK_INT(events_webhooks_start(&none, &w, &err), -1);
	close_store(&st);
}

int
main(void)
{
	log_set_level(getenv("WEBHOOK_TEST_LOG") ? LOG_DEBUG : LOG_WARN);
	RUN(test_sign);
	RUN(test_event_json);
	RUN(test_url_check);
	RUN(test_start_stop);
	RUN(test_end_to_end);
	RUN(test_timeout);
	RUN(test_private_refused);
	RUN(test_hostname);
	return test_done("events_webhook");
}

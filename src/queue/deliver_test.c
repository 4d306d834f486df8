/* Unit tests for src/queue/deliver (routing without network: route/relay/MX order, null MX, DNS
 * failure classes, host:port parsing) and src/net/client (connect to a loopback listener, a
 * refused connect, client TLS context). */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "net/client.h"
#include "net/tls.h"
#include "queue/deliver.h"
#include "test.h"

/* ---- fake DNS ---- */

struct fake_dns {
	enum queue_dns_rc mx_rc;
	const char *mx[4];
	size_t n_mx;
	int mx_calls;
};

static enum queue_dns_rc
fake_mx(void *ctx, const char *domain, char (*hosts)[QUEUE_HOST_MAX], size_t max, size_t *n_r,
        char *why, size_t why_len)
{
	struct fake_dns *f = ctx;
	f->mx_calls++;
	*n_r = 0;
	if (f->mx_rc != QUEUE_DNS_OK) {
		(void)snprintf(why, why_len, "fake failure for %s", domain);
		return f->mx_rc;
	}
	for (size_t i = 0; i < f->n_mx && i < max; i++)
		(void)snprintf(hosts[(*n_r)++], QUEUE_HOST_MAX, "%s", f->mx[i]);
	return QUEUE_DNS_OK;
}

static enum queue_dns_rc
fake_addrs(void *ctx, const char *host, char (*ips)[QUEUE_IP_MAX], size_t max, size_t *n_r,
           char *why, size_t why_len)
{
	(void)ctx;
	(void)host;
	(void)why;
	(void)why_len;
	*n_r = 0;
	if (max > 0)
		(void)snprintf(ips[(*n_r)++], QUEUE_IP_MAX, "127.0.0.1");
	return QUEUE_DNS_OK;
}

static struct queue_deliver *
make(struct fake_dns *f, const char *relay, const struct queue_route *routes, size_t n_routes,
     uint16_t mx_port)
{
	struct queue_dns_ops ops = {.mx = fake_mx, .addrs = fake_addrs, .ctx = f};
	struct queue_deliver_config cfg = {
	    .dns_ops = &ops,
	    .helo = "me.example",
	    .relay = relay,
	    .routes = routes,
	    .n_routes = n_routes,
	    .mx_port = mx_port,
	    .max_hosts = 3,
	};
	struct queue_deliver *d = NULL;
	struct err err = {0};
	CHECK_INT(queue_deliver_new(&cfg, &d, &err), 0);
	return d;
}

static void
test_target_parse(void)
{
	struct queue_target t;
	struct err err = {0};
	CHECK_INT(queue_target_parse("mx.example:2525", 25, &t, &err), 0);
	CHECK_STR(t.host, "mx.example");
	CHECK_INT(t.port, 2525);
	CHECK_INT(queue_target_parse("mx.example", 25, &t, &err), 0);
	CHECK_INT(t.port, 25);
	CHECK_INT(queue_target_parse("[::1]:26", 25, &t, &err), 0);
	CHECK_STR(t.host, "::1");
	CHECK_INT(t.port, 26);
	CHECK_INT(queue_target_parse("::1", 25, &t, &err), 0);
	CHECK_STR(t.host, "::1");
	CHECK_INT(t.port, 25);
	CHECK_INT(queue_target_parse("127.0.0.1:2526", 25, &t, &err), 0);
	CHECK_STR(t.host, "127.0.0.1");
	CHECK_INT(t.port, 2526);
	CHECK_INT(queue_target_parse("h:0", 25, &t, &err), -1);
	CHECK_INT(queue_target_parse("h:65536", 25, &t, &err), -1);
	CHECK_INT(queue_target_parse("h:x", 25, &t, &err), -1);
	CHECK_INT(queue_target_parse(":25", 25, &t, &err), -1);
	CHECK_INT(queue_target_parse("[::1", 25, &t, &err), -1);
	CHECK_INT(queue_target_parse("[::1]x", 25, &t, &err), -1);
}

static void
test_route_first(void)
{
	struct fake_dns f = {.mx_rc = QUEUE_DNS_OK, .mx = {"mx1.x"}, .n_mx = 1};
	struct queue_route routes[] = {{"dest.example", "127.0.0.1:2526"}};
	struct queue_deliver *d = make(&f, "smart.example:587", routes, 1, 0);
	struct queue_target t[4];
	size_t n = 0;
	char why[200];
	/* route wins over relay, case-insensitively, no DNS */
	CHECK_INT(queue_deliver_targets(d, "DEST.example", t, 4, &n, why, sizeof why),
	          QUEUE_DNS_OK);
	CHECK_INT(n, 1);
	CHECK_STR(t[0].host, "127.0.0.1");
	CHECK_INT(t[0].port, 2526);
	CHECK(!t[0].from_mx);
	/* other domains go to the relay */
	CHECK_INT(queue_deliver_targets(d, "other.example", t, 4, &n, why, sizeof why),
	          QUEUE_DNS_OK);
	CHECK_INT(n, 1);
	CHECK_STR(t[0].host, "smart.example");
	CHECK_INT(t[0].port, 587);
	CHECK_INT(f.mx_calls, 0);
	queue_deliver_free(&d);
	CHECK(d == NULL);
}

static void
test_mx_order(void)
{
	struct fake_dns f = {
	    .mx_rc = QUEUE_DNS_OK, .mx = {"mx1.x", "mx2.x", "mx3.x", "mx4.x"}, .n_mx = 4};
	struct queue_deliver *d = make(&f, NULL, NULL, 0, 2525);
	struct queue_target t[8];
	size_t n = 0;
	char why[200];
	CHECK_INT(queue_deliver_targets(d, "x", t, 8, &n, why, sizeof why), QUEUE_DNS_OK);
	CHECK_INT(n, 3); /* max_hosts */
	CHECK_STR(t[0].host, "mx1.x");
	CHECK_STR(t[1].host, "mx2.x");
	CHECK_STR(t[2].host, "mx3.x");
	CHECK_INT(t[0].port, 2525);
	CHECK(t[0].from_mx);
	CHECK_INT(f.mx_calls, 1);
	queue_deliver_free(&d);
}

static void
test_mx_failures(void)
{
	struct fake_dns f = {.mx_rc = QUEUE_DNS_NULLMX};
	struct queue_deliver *d = make(&f, NULL, NULL, 0, 0);
	struct queue_target t[4];
	size_t n = 9;
	char why[200];
	CHECK_INT(queue_deliver_targets(d, "x", t, 4, &n, why, sizeof why), QUEUE_DNS_NULLMX);
	CHECK_INT(n, 0);
	f.mx_rc = QUEUE_DNS_TEMP;
	CHECK_INT(queue_deliver_targets(d, "x", t, 4, &n, why, sizeof why), QUEUE_DNS_TEMP);
	CHECK(strstr(why, "fake failure") != NULL);
	f.mx_rc = QUEUE_DNS_NOTFOUND;
	CHECK_INT(queue_deliver_targets(d, "x", t, 4, &n, why, sizeof why), QUEUE_DNS_NOTFOUND);
	/* an empty answer is never "deliverable" */
	f.mx_rc = QUEUE_DNS_OK;
	f.n_mx = 0;
	CHECK_INT(queue_deliver_targets(d, "x", t, 4, &n, why, sizeof why), QUEUE_DNS_TEMP);
	queue_deliver_free(&d);
	/* a malformed route is a temporary (config) problem, not a bounce */
	struct queue_route bad[] = {{"x", "h:99999"}};
	d = make(&f, NULL, bad, 1, 0);
	CHECK_INT(queue_deliver_targets(d, "x", t, 4, &n, why, sizeof why), QUEUE_DNS_TEMP);
	CHECK(strstr(why, "bad route") != NULL);
	queue_deliver_free(&d);
}

static void
test_new_rejects(void)
{
	struct queue_deliver_config cfg = {0};
	struct queue_deliver *d = NULL;
	struct err err = {0};
	CHECK_INT(queue_deliver_new(&cfg, &d, &err), -1);
	CHECK(d == NULL);
	queue_deliver_free(&d);
}

/* ---- net client ---- */

static int
listen_loopback(uint16_t *port_r)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in sa = {.sin_family = AF_INET};
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(fd, 4) < 0)
		return -1;
	socklen_t len = sizeof sa;
	getsockname(fd, (struct sockaddr *)&sa, &len);
	*port_r = ntohs(sa.sin_port);
	return fd;
}

static void
test_connect(void)
{
	uint16_t port = 0;
	int lfd = listen_loopback(&port);
	CHECK(lfd >= 0);
	struct err err = {0};
	struct conn *c =
	    net_client_connect("127.0.0.1", port, "127.0.0.1", conn_deadline(2000), &err);
	CHECK(c != NULL);
	int afd = accept(lfd, NULL, NULL);
	CHECK(afd >= 0);
	if (c) {
		CHECK(!conn_is_tls(c));
		CHECK_INT(conn_write(c, "hi\r\n", 4, conn_deadline(1000)), 0);
		char b[8] = {0};
		CHECK_INT(read(afd, b, sizeof b), 4);
		CHECK_INT(write(afd, "ok\r\n", 4), 4);
		struct conn_lines l;
		conn_lines_init(&l, 64);
		struct slice line;
		CHECK_INT(conn_read_line(c, &l, conn_deadline(1000), &line), CONN_LINE);
		CHECK_INT(line.len, 2);
		conn_lines_deinit(&l);
	}
	conn_free(&c);
	close(afd);
	close(lfd); /* now the port is closed: refused */
	c = net_client_connect("127.0.0.1", port, NULL, conn_deadline(2000), &err);
	CHECK(c == NULL);
	CHECK(strstr(err.msg, "connect 127.0.0.1:") != NULL);
	/* not a literal */
	c = net_client_connect("mx.example", 25, NULL, conn_deadline(2000), &err);
	CHECK(c == NULL);
	CHECK(strstr(err.msg, "not a numeric address") != NULL);
}

static void
test_tls_ctx(void)
{
	struct err err = {0};
	SSL_CTX *ctx = net_tls_client_ctx(&err);
	CHECK(ctx != NULL);
	if (ctx) {
		CHECK_INT(SSL_CTX_get_min_proto_version(ctx), TLS1_2_VERSION);
		SSL_CTX_free(ctx);
	}
}

struct tls_server {
	int lfd;
	SSL_CTX *ctx;
	int rc;
};

static void *
tls_server_run(void *arg)
{
	struct tls_server *t = arg;
	int fd = accept(t->lfd, NULL, NULL);
	if (fd < 0)
		return NULL;
	struct conn *c = conn_new(fd);
	t->rc = conn_start_tls(c, t->ctx, NULL, conn_deadline(5000), NULL);
	if (t->rc == 0)
		(void)conn_write(c, "hi\r\n", 4, conn_deadline(5000));
	conn_free(&c);
	return NULL;
}

/* Opportunistic client TLS against a self-signed server: the handshake succeeds, the
 * certificate is reported unverified with the reason, and data flows over TLS. */
static void
test_tls_unverified(void)
{
	char dir[] = "/tmp/deliver-test-XXXXXX";
	CHECK(mkdtemp(dir) != NULL);
	enum net_tls_selfsigned what;
	struct err err = {0};
	CHECK_INT(net_tls_selfsigned_ensure(dir, "mx.test.example", &what, &err), 0);
	char cert[256], key[256];
	(void)snprintf(cert, sizeof cert, "%s/cert.pem", dir);
	(void)snprintf(key, sizeof key, "%s/key.pem", dir);
	struct tls_server t = {.rc = 99};
	t.ctx = net_tls_server_ctx(cert, key, &err);
	CHECK(t.ctx != NULL);
	uint16_t port = 0;
	t.lfd = listen_loopback(&port);
	pthread_t th;
	CHECK_INT(pthread_create(&th, NULL, tls_server_run, &t), 0);
	SSL_CTX *cctx = net_tls_client_ctx(&err);
	struct conn *c = net_client_connect("127.0.0.1", port, NULL, conn_deadline(2000), &err);
	CHECK(c != NULL);
	if (c && cctx) {
		bool verified = true;
		CHECK_INT(net_tls_client_start(c, cctx, "mx.test.example", conn_deadline(5000),
		                               &verified),
		          0);
		CHECK(!verified);
		CHECK(strstr(c->err, "certificate verify failed") != NULL);
		CHECK(conn_is_tls(c));
		CHECK(strncmp(conn_tls_version(c), "TLSv1.", 6) == 0);
		char b[8] = {0};
		CHECK_INT(conn_read(c, b, sizeof b, conn_deadline(2000)), 4);
		CHECK(memcmp(b, "hi\r\n", 4) == 0);
		/* a second handshake on the same conn is refused */
		CHECK_INT(net_tls_client_start(c, cctx, "x", conn_deadline(100), &verified),
		          CONN_ERROR);
	}
	conn_free(&c);
	pthread_join(th, NULL);
	CHECK_INT(t.rc, 0);
	close(t.lfd);
	net_tls_ctx_free(&t.ctx);
	SSL_CTX_free(cctx);
	char path[300];
	(void)snprintf(path, sizeof path, "%s/cert.pem", dir);
	unlink(path);
	(void)snprintf(path, sizeof path, "%s/key.pem", dir);
	unlink(path);
	rmdir(dir);
}

int
main(void)
{
	RUN(test_target_parse);
	RUN(test_route_first);
	RUN(test_mx_order);
	RUN(test_mx_failures);
	RUN(test_new_rejects);
	RUN(test_connect);
	RUN(test_tls_ctx);
	RUN(test_tls_unverified);
	return test_done("queue_deliver");
}

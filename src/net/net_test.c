/* Unit tests for net/: listener address parsing, binding, deadlines, line reading, the STARTTLS
 * upgrade (with plaintext pipelined after STARTTLS thrown away) against an OpenSSL client thread
 * that verifies the self-signed certificate, the per-IP admission table and the accept loop. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "net/conn.h"
#include "net/listen.h"
#include "net/pool.h"
#include "net/tls.h"
#include "test.h"
#include "util/clock.h"
#include "util/log.h"

static const struct {
	const char *in;
	int ok;
	int family;
	int port;
	int any;
} addr_cases[] = {
    {"127.0.0.1:25", 1, AF_INET, 25, 0},
    {"0.0.0.0:0", 1, AF_INET, 0, 0},
    {"192.0.2.1:65535", 1, AF_INET, 65535, 0},
    {"[::1]:587", 1, AF_INET6, 587, 0},
    {"[::]:993", 1, AF_INET6, 993, 0},
    {"[2001:db8::1]:143", 1, AF_INET6, 143, 0},
    {":2525", 1, AF_INET6, 2525, 1},
    {"*:8080", 1, AF_INET6, 8080, 1},
    {"", 0, 0, 0, 0},
    {"127.0.0.1", 0, 0, 0, 0},
    {"127.0.0.1:", 0, 0, 0, 0},
    {"127.0.0.1:65536", 0, 0, 0, 0},
    {"127.0.0.1:-1", 0, 0, 0, 0},
    {"127.0.0.1:+25", 0, 0, 0, 0},
    {"127.0.0.1:0x19", 0, 0, 0, 0},
    {"127.0.0.1:25 ", 0, 0, 0, 0},
    {" 127.0.0.1:25", 0, 0, 0, 0},
    {"127.0.0.1:99999999999999999999999", 0, 0, 0, 0},
    {"localhost:25", 0, 0, 0, 0},
    {"mail.example.com:25", 0, 0, 0, 0},
    {"1.2.3:25", 0, 0, 0, 0},
    {"256.1.1.1:25", 0, 0, 0, 0},
    {"::1:25", 0, 0, 0, 0},
    {"[::1]", 0, 0, 0, 0},
    {"[::1]25", 0, 0, 0, 0},
    {"[::1:25", 0, 0, 0, 0},
    {"[]:25", 0, 0, 0, 0},
    {"[zz::1]:25", 0, 0, 0, 0},
    {"[127.0.0.1]:25", 0, 0, 0, 0},
};

static void
test_addr_parse(void)
{
	for (size_t i = 0; i < sizeof addr_cases / sizeof addr_cases[0]; i++) {
		struct net_addr a;
		struct err err = {0};
		int rc = net_addr_parse(addr_cases[i].in, &a, &err);
		if ((rc == 0) != addr_cases[i].ok) {
			fprintf(stderr, "  case \"%s\": rc %d (%s)\n", addr_cases[i].in, rc,
			        err.msg);
			CHECK(0);
			continue;
		}
		if (rc < 0) {
			CHECK(err.msg[0] != '\0');
			continue;
		}
		CHECK_INT(a.ss.ss_family, addr_cases[i].family);
		CHECK_INT(a.any, addr_cases[i].any);
		int port = a.ss.ss_family == AF_INET
		               ? ntohs(((struct sockaddr_in *)&a.ss)->sin_port)
		               : ntohs(((struct sockaddr_in6 *)&a.ss)->sin6_port);
		CHECK_INT(port, addr_cases[i].port);
	}
	struct net_addr a;
	struct err err = {0};
	CHECK_INT(net_addr_parse("localhost:25", &a, &err), -1);
	CHECK(strstr(err.msg, "localhost:25") != NULL);
}

static void
test_addr_format(void)
{
	char out[NET_ADDR_STR_MAX];
	struct sockaddr_in6 s6 = {.sin6_family = AF_INET6, .sin6_port = htons(5555)};
	inet_pton(AF_INET6, "::ffff:192.0.2.7", &s6.sin6_addr);
	CHECK_STR(net_addr_format((struct sockaddr *)&s6, sizeof s6, true, out), "192.0.2.7:5555");
	CHECK_STR(net_addr_format((struct sockaddr *)&s6, sizeof s6, false, out), "192.0.2.7");
	inet_pton(AF_INET6, "2001:db8::1", &s6.sin6_addr);
	CHECK_STR(net_addr_format((struct sockaddr *)&s6, sizeof s6, true, out),
	          "[2001:db8::1]:5555");
	CHECK_STR(net_addr_format((struct sockaddr *)&s6, sizeof s6, false, out), "2001:db8::1");
	struct sockaddr_in s4 = {.sin_family = AF_INET, .sin_port = htons(25)};
	inet_pton(AF_INET, "127.0.0.1", &s4.sin_addr);
	CHECK_STR(net_addr_format((struct sockaddr *)&s4, sizeof s4, true, out), "127.0.0.1:25");
}

/* A blocking client socket connected to 127.0.0.1:port. */
static int
connect_local(int port)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (connect(fd, (struct sockaddr *)&sin, sizeof sin) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

/* accept() on a non-blocking listener, waiting up to a second. */
static int
accept_wait(int lfd)
{
	struct pollfd p = {.fd = lfd, .events = POLLIN};
	if (poll(&p, 1, 1000) != 1)
		return -1;
	return accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
}

static void
test_listen_and_timeout(void)
{
	struct err err = {0};
	int lfd = net_listen("127.0.0.1:0", &err);
	CHECK(lfd >= 0);
	if (lfd < 0)
		return;
	int port = net_local_port(lfd);
	CHECK(port > 0);
	char where[NET_ADDR_STR_MAX], want[NET_ADDR_STR_MAX];
	snprintf(want, sizeof want, "127.0.0.1:%d", port);
	CHECK_STR(net_local_addr(lfd, where), want);

	/* The same address again: a clear "in use" error naming it. */
	char again[64];
	snprintf(again, sizeof again, "127.0.0.1:%d", port);
	CHECK_INT(net_listen(again, &err), -1);
	CHECK(strstr(err.msg, again) != NULL);
	CHECK(strstr(err.msg, "in use") != NULL);

	int cfd = connect_local(port);
	int sfd = accept_wait(lfd);
	CHECK(cfd >= 0 && sfd >= 0);
	struct conn *c = conn_new(sfd);
	CHECK_STR(c->peer_ip, "127.0.0.1");
	CHECK(strncmp(c->peer, "127.0.0.1:", 10) == 0);

	char buf[64];
	int64_t t0 = clock_mono_ms();
	CHECK_INT(conn_read(c, buf, sizeof buf, conn_deadline(120)), CONN_TIMEOUT);
	int64_t took = clock_mono_ms() - t0;
	CHECK(took >= 110 && took < 1000);

	/* Lines: CRLF and bare LF end a line; a partial line at EOF is EOF. */
	struct conn_lines l;
	conn_lines_init(&l, 16);
	const char *in =
	    "hello\r\nworld\nxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\r\nNOOP\r\npart";
	CHECK(write(cfd, in, strlen(in)) == (ssize_t)strlen(in));
	struct slice line;
	int64_t dl = conn_deadline(1000);
	CHECK_INT(conn_read_line(c, &l, dl, &line), CONN_LINE);
	CHECK(slice_eq(line, "hello"));
	CHECK_INT(conn_read_line(c, &l, dl, &line), CONN_LINE);
	CHECK(slice_eq(line, "world"));
	CHECK_INT(conn_read_line(c, &l, dl, &line), CONN_LINE_TOO_LONG);
	CHECK_INT(conn_read_line(c, &l, dl, &line), CONN_LINE);
	CHECK(slice_eq(line, "NOOP"));
	CHECK_INT(conn_read_line(c, &l, conn_deadline(50), &line), CONN_TIMEOUT);
	close(cfd);
	CHECK_INT(conn_read_line(c, &l, dl, &line), CONN_EOF);
	conn_lines_deinit(&l);
	CHECK(c->bytes_in == strlen(in));
	conn_free(&c);
	CHECK(c == NULL);
	close(lfd);
}

/* ---- TLS ---- */

struct tls_client {
	int port;
	const char *ca_file;
	char reply[128]; /* what the client read over TLS */
	int ok;
	char err[160];
};

/* Plays a STARTTLS client that pipelines plaintext after STARTTLS, then verifies the
 * server certificate (CA file = the self-signed cert, host name "localhost"). */
static void *
tls_client_thread(void *arg)
{
	struct tls_client *t = arg;
	int fd = connect_local(t->port);
	if (fd < 0)
		return NULL;
	const char *pre = "STARTTLS\r\nINJECTED\r\n";
	(void)!write(fd, pre, strlen(pre));
	char go[16] = {0};
	size_t got = 0;
	while (got < 8) {
		ssize_t n = read(fd, go + got, 8 - got);
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
	SSL_CTX_load_verify_locations(ctx, t->ca_file, NULL);
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	SSL *ssl = SSL_new(ctx);
	SSL_set_fd(ssl, fd);
	SSL_set_tlsext_host_name(ssl, "localhost");
	SSL_set1_host(ssl, "localhost");
	if (strcmp(go, "220 go\r\n") == 0 && SSL_connect(ssl) == 1) {
		SSL_write(ssl, "after\r\n", 7);
		int n = SSL_read(ssl, t->reply, sizeof t->reply - 1);
		if (n > 0)
			t->reply[n] = '\0';
		t->ok = 1;
		SSL_shutdown(ssl);
	} else {
		ERR_error_string_n(ERR_get_error(), t->err, sizeof t->err);
	}
	SSL_free(ssl);
	SSL_CTX_free(ctx);
	ERR_clear_error();
	close(fd);
	return NULL;
}

static void
test_tls_starttls(void)
{
	char dir[] = "/tmp/lightr-net-test-XXXXXX";
	CHECK(mkdtemp(dir) != NULL);
	char tlsdir[128], cert[160], key[160];
	snprintf(tlsdir, sizeof tlsdir, "%s/tls", dir);
	snprintf(cert, sizeof cert, "%s/cert.pem", tlsdir);
	snprintf(key, sizeof key, "%s/key.pem", tlsdir);

	struct err err = {0};
	enum net_tls_selfsigned what;
	CHECK_INT(net_tls_selfsigned_ensure(tlsdir, "mail.example.com", &what, &err), 0);
	CHECK_INT(what, NET_TLS_CREATED);
	struct stat st;
	CHECK(stat(key, &st) == 0 && (st.st_mode & 0777) == 0600);
	CHECK(stat(cert, &st) == 0);
	CHECK_INT(net_tls_selfsigned_ensure(tlsdir, "mail.example.com", &what, &err), 0);
	CHECK_INT(what, NET_TLS_REUSED);

	SSL_CTX *ctx = net_tls_server_ctx(cert, key, &err);
	CHECK(ctx != NULL);
	CHECK(net_tls_server_ctx(cert, "/nonexistent/key.pem", &err) == NULL);
	CHECK(strstr(err.msg, "/nonexistent/key.pem") != NULL);
	if (ctx == NULL)
		return;

	int lfd = net_listen("127.0.0.1:0", &err);
	struct tls_client t = {.port = net_local_port(lfd), .ca_file = cert};
	pthread_t th;
	pthread_create(&th, NULL, tls_client_thread, &t);
	int sfd = accept_wait(lfd);
	CHECK(sfd >= 0);
	struct conn *c = conn_new(sfd);
	struct conn_lines l;
	conn_lines_init(&l, 512);
	struct slice line;
	int64_t dl = conn_deadline(5000);
	CHECK_INT(conn_read_line(c, &l, dl, &line), CONN_LINE);
	CHECK(slice_eq(line, "STARTTLS"));
	/* Give the pipelined line time to arrive if it came in a second segment. */
	for (int i = 0; i < 50 && conn_lines_pending(&l) == 0; i++) {
		char peek;
		if (recv(sfd, &peek, 1, MSG_PEEK | MSG_DONTWAIT) == 1)
			break;
		usleep(10 * 1000);
	}
	CHECK_INT(conn_write(c, "220 go\r\n", 8, dl), 0);
	size_t dropped = 0;
	int rc = conn_start_tls(c, ctx, &l, dl, &dropped);
	CHECK_INT(rc, 0);
	if (rc != 0)
		fprintf(stderr, "  server: %s\n", c->err);
	CHECK(conn_is_tls(c));
	CHECK(strncmp(conn_tls_version(c), "TLSv1.", 6) == 0);
	/* "INJECTED\r\n" was dropped, either from the line buffer or (when it had not been read
	 * yet) by the handshake, which would then have failed: rc == 0 shows it was buffered. */
	CHECK_INT(dropped, 10);
	CHECK_INT(conn_read_line(c, &l, dl, &line), CONN_LINE);
	CHECK(slice_eq(line, "after"));
	CHECK_INT(conn_write(c, "echo: after\r\n", 13, dl), 0);
	CHECK_INT(conn_read_line(c, &l, dl, &line), CONN_EOF);
	pthread_join(th, NULL);
	CHECK_INT(t.ok, 1);
	if (!t.ok)
		fprintf(stderr, "  client: %s\n", t.err);
	CHECK_STR(t.reply, "echo: after\r\n");
	/* A second upgrade on the same connection is refused. */
	CHECK_INT(conn_start_tls(c, ctx, NULL, dl, NULL), CONN_ERROR);
	conn_lines_deinit(&l);
	conn_free(&c);
	net_tls_ctx_free(&ctx);
	CHECK(ctx == NULL);
	close(lfd);

	/* A handshake that never comes times out. */
	ctx = net_tls_server_ctx(cert, key, &err);
	lfd = net_listen("127.0.0.1:0", &err);
	int cfd = connect_local(net_local_port(lfd));
	sfd = accept_wait(lfd);
	c = conn_new(sfd);
	CHECK_INT(conn_start_tls(c, ctx, NULL, conn_deadline(100), NULL), CONN_TIMEOUT);
	CHECK(strstr(c->err, "timeout") != NULL);
	conn_free(&c);
	close(cfd);
	close(lfd);
	net_tls_ctx_free(&ctx);

	unlink(cert);
	unlink(key);
	rmdir(tlsdir);
	rmdir(dir);
}

/* ---- admission table ---- */

static void
test_pool_limits(void)
{
	struct net_pool *p = net_pool_new(&(struct net_limits){3, 2});
	struct net_slot *s[8] = {0};
	CHECK_INT(net_pool_admit(p, 0, "192.0.2.1", -1, &s[0]), NET_ADMIT_OK);
	CHECK_INT(net_pool_admit(p, 0, "192.0.2.1", -1, &s[1]), NET_ADMIT_OK);
	CHECK_INT(net_pool_admit(p, 0, "192.0.2.1", -1, &s[2]), NET_ADMIT_IP_FULL);
	CHECK_INT(net_pool_count_ip(p, 0, "192.0.2.1"), 2);
	/* Another kind is counted apart per IP, but in the same total. */
	CHECK_INT(net_pool_admit(p, 1, "192.0.2.1", -1, &s[2]), NET_ADMIT_OK);
	CHECK_INT(net_pool_count_ip(p, 1, "192.0.2.1"), 1);
	CHECK_INT(net_pool_admit(p, 0, "192.0.2.2", -1, &s[3]), NET_ADMIT_FULL);
	CHECK_INT(net_pool_count(p), 3);
	net_pool_leave(p, &s[0]);
	CHECK(s[0] == NULL);
	CHECK_INT(net_pool_count_ip(p, 0, "192.0.2.1"), 1);
	CHECK_INT(net_pool_admit(p, 0, "192.0.2.2", -1, &s[3]), NET_ADMIT_OK);
	/* Raising the limits on reload admits more. */
	net_pool_set_limits(p, &(struct net_limits){0, 0});
	CHECK_INT(net_pool_admit(p, 0, "192.0.2.1", -1, &s[4]), NET_ADMIT_OK);
	CHECK_INT(net_pool_admit(p, 0, "192.0.2.1", -1, &s[5]), NET_ADMIT_OK);
	CHECK_INT(net_pool_count_ip(p, 0, "192.0.2.1"), 3);
	int64_t t0 = clock_mono_ms();
	CHECK(!net_pool_wait_idle(p, conn_deadline(60)));
	CHECK(clock_mono_ms() - t0 >= 55);
	for (int i = 0; i < 8; i++)
		net_pool_leave(p, &s[i]);
	CHECK_INT(net_pool_count(p), 0);
	CHECK_INT(net_pool_count_ip(p, 0, "192.0.2.1"), 0);
	CHECK(net_pool_wait_idle(p, conn_deadline(10)));
	net_pool_free(&p);
	CHECK(p == NULL);
}

/* ---- the accept loop ---- */

/* Session: greet, then wait for the client to close (or the pool to cut us). */
static void
echo_session(struct conn *c, void *arg)
{
	(void)arg;
	(void)conn_write(c, "hi\r\n", 4, conn_deadline(1000));
	char buf[64];
	while (conn_read(c, buf, sizeof buf, conn_deadline(10000)) > 0)
		;
}

struct serve_args {
	struct net_pool *pool;
	struct net_service sv;
	int stop_fd;
};

static void *
serve_thread(void *arg)
{
	struct serve_args *a = arg;
	net_pool_serve(a->pool, &a->sv, 1, a->stop_fd);
	return NULL;
}

/* Reads what the server sent first (up to a newline or EOF). */
static void
read_greeting(int fd, char *out, size_t n)
{
	size_t got = 0;
	struct pollfd p = {.fd = fd, .events = POLLIN};
	while (got < n - 1 && poll(&p, 1, 2000) == 1) {
		ssize_t r = read(fd, out + got, n - 1 - got);
		if (r <= 0)
			break;
		got += (size_t)r;
		if (memchr(out, '\n', got))
			break;
	}
	out[got] = '\0';
}

static void
test_pool_serve(void)
{
	struct err err = {0};
	int lfd = net_listen("127.0.0.1:0", &err);
	int stop[2];
	CHECK(pipe(stop) == 0);
	struct serve_args a = {
	    .pool = net_pool_new(&(struct net_limits){10, 2}),
	    .sv = {.fd = lfd,
	           .kind = 0,
	           .component = "test",
	           .listener = "t",
	           .busy_reply = "421 busy\r\n",
	           .run = echo_session},
	    .stop_fd = stop[0],
	};
	pthread_t th;
	pthread_create(&th, NULL, serve_thread, &a);
	int port = net_local_port(lfd);
	int c1 = connect_local(port), c2 = connect_local(port);
	char g[64];
	read_greeting(c1, g, sizeof g);
	CHECK_STR(g, "hi\r\n");
	read_greeting(c2, g, sizeof g);
	CHECK_STR(g, "hi\r\n");
	int c3 = connect_local(port);
	read_greeting(c3, g, sizeof g);
	CHECK_STR(g, "421 busy\r\n");
	close(c3);
	CHECK_INT(net_pool_count(a.pool), 2);
	/* Closing one frees its place. */
	close(c1);
	CHECK(net_pool_wait_idle(a.pool, conn_deadline(50)) == false);
	for (int i = 0; i < 100 && net_pool_count(a.pool) != 1; i++)
		usleep(10 * 1000);
	CHECK_INT(net_pool_count(a.pool), 1);
	c1 = connect_local(port);
	read_greeting(c1, g, sizeof g);
	CHECK_STR(g, "hi\r\n");
	/* Stop accepting, then cut the live sessions. */
	CHECK(write(stop[1], "x", 1) == 1);
	pthread_join(th, NULL);
	net_pool_shutdown_all(a.pool, SHUT_RDWR);
	CHECK(net_pool_wait_idle(a.pool, conn_deadline(2000)));
	net_pool_free(&a.pool);
	close(c1);
	close(c2);
	close(lfd);
	close(stop[0]);
	close(stop[1]);
}

int
main(void)
{
	log_set_level(LOG_WARN);
	RUN(test_addr_parse);
	RUN(test_addr_format);
	RUN(test_listen_and_timeout);
	RUN(test_tls_starttls);
	RUN(test_pool_limits);
	RUN(test_pool_serve);
	return test_done("net");
}

/* IMAP connection driver (roles imap, imaps): the only code that touches an IMAP client's socket
 * (STYLE.md B.1). It reads whatever bytes arrive, hands them to the protocol session
 * (src/imap/imap.h), writes the queued responses, and acts on the session's requests:
 *   - STARTTLS: the handshake on the same socket (the session already threw away the plaintext
 *     pipelined after the command, CVE-2011-0411; this driver keeps no read-ahead of its own);
 *   - COMPRESS=DEFLATE (RFC 4978): raw deflate (zlib, windowBits -15) in both directions from
 *     then on, with a Z_SYNC_FLUSH after each batch of responses; inflated input is fed in
 *     bounded chunks, so a small "zip bomb" never needs more memory than a plain one;
 *   - the delay before the reply to a failed login;
 *   - IDLE (RFC 2177): waits for input in short slices, checking the mailstore's change_seq of
 *     the selected mailbox after each, and asks the session for untagged updates when it moved
 *     (and at least every IMAP_CONN_REPOLL_MS, for changes made by another process such as the
 *     CLI). Before sitting idle it lets the mailstore release the thread's database connection,
 *     frees its read buffer and returns the unused part of the thread stack to the kernel, so
 *     that thousands of IDLE connections cost little memory.
 * Deadlines: before login a response must be produced within imap.preauth_timeout (a client
 * dribbling bytes without completing commands is cut off); after login the connection may be
 * silent for imap.timeout (the autologout timer, RFC 9051 §5.4; IDLE included). */
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include <zlib.h>

#include "imap/imap.h"
#include "imap/mailstore.h"
#include "server_private.h"
#include "util/buf.h"
#include "util/clock.h"
#include "util/log.h"
#include "util/xalloc.h"

#define IMAP_CONN_READ_BUF   16384 /* one TLS record; freed while idle */
#define IMAP_CONN_IDLE_READ  512   /* IDLE input is "DONE" (and what is pipelined after it) */
#define IMAP_CONN_SLICE_MS   250   /* IDLE: how often change_seq is looked at */
#define IMAP_CONN_REPOLL_MS  30000 /* IDLE: a full look even when change_seq did not move */
#define IMAP_CONN_ZCHUNK     8192  /* deflate/inflate staging buffers (heap, once COMPRESS) */
#define IMAP_CONN_STACK_KEEP 4096  /* stack kept below the current frame when trimming */

/* COMPRESS=DEFLATE state: both directions (RFC 4978 §4: raw deflate, no zlib header). */
struct imap_conn_z {
	z_stream in, out;
	bool in_more;                         /* the last inflate filled its output: call again */
	unsigned char raw[IMAP_CONN_ZCHUNK];  /* compressed bytes read, not yet inflated */
	unsigned char zout[IMAP_CONN_ZCHUNK]; /* compressed bytes to write */
};

struct imap_conn_drv {
	struct conn *c;
	const struct server_listener *l;
	const char *id;
	uint64_t timeout_ms;         /* autologout after login */
	uint64_t preauth_timeout_ms; /* before login */
	struct imap_session *s;
	struct imap_mailstore *ms; /* owned by s; used for change_seq and idle_release */
	struct imap_conn_z *z;     /* NULL until COMPRESS */
	unsigned char *rbuf;       /* IMAP_CONN_READ_BUF bytes; NULL while idle */
};

/* ---- compression (RFC 4978) ---- */

static int
imap_conn_z_start(struct imap_conn_drv *d)
{
	struct imap_conn_z *z = xcalloc(1, sizeof *z);
	if (inflateInit2(&z->in, -15) != Z_OK) {
		free(z);
		return -1;
	}
	if (deflateInit2(&z->out, Z_DEFAULT_COMPRESSION, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY) !=
	    Z_OK) {
		inflateEnd(&z->in);
		free(z);
		return -1;
	}
	d->z = z;
	return 0;
}

static void
imap_conn_z_free(struct imap_conn_drv *d)
{
	if (d->z == NULL)
		return;
	inflateEnd(&d->z->in);
	deflateEnd(&d->z->out);
	free(d->z);
	d->z = NULL;
}

/* ---- I/O through the optional compression layer ---- */

/* Timeout for reads and writes now: shorter before login. */
static uint64_t
imap_conn_timeout(const struct imap_conn_drv *d)
{
	if (imap_session_user(d->s) == NULL)
		return d->preauth_timeout_ms;
	return imap_session_timeout_ms(d->s, d->timeout_ms);
}

/* Writes b (plain or deflated) and empties it. 0 or a negative conn result. */
static int
imap_conn_write(struct imap_conn_drv *d, struct buf *b)
{
	if (b->len == 0)
		return 0;
	int64_t deadline = conn_deadline(imap_conn_timeout(d));
	if (d->z == NULL)
		return conn_write_buf(d->c, b, deadline);
	z_stream *zs = &d->z->out;
	zs->next_in = b->data;
	zs->avail_in = (uInt)b->len;
	do {
		zs->next_out = d->z->zout;
		zs->avail_out = sizeof d->z->zout;
		int zr = deflate(zs, Z_SYNC_FLUSH);
		if (zr != Z_OK && zr != Z_BUF_ERROR) {
			snprintf(d->c->err, sizeof d->c->err, "deflate failed (%d)", zr);
			buf_reset(b);
			return CONN_ERROR;
		}
		size_t n = sizeof d->z->zout - zs->avail_out;
		if (n > 0) {
			int rc = conn_write(d->c, d->z->zout, n, deadline);
			if (rc < 0) {
				buf_reset(b);
				return rc;
			}
		}
	} while (zs->avail_out == 0 || zs->avail_in > 0);
	buf_reset(b);
	return 0;
}

/* Like conn_read(), returning plaintext: inflated when COMPRESS is active. */
static ssize_t
imap_conn_read(struct imap_conn_drv *d, unsigned char *out, size_t cap, int64_t deadline)
{
	if (d->z == NULL)
		return conn_read(d->c, out, cap, deadline);
	z_stream *zs = &d->z->in;
	for (;;) {
		if (zs->avail_in > 0 || d->z->in_more) {
			zs->next_out = out;
			zs->avail_out = (uInt)cap;
			int zr = inflate(zs, Z_SYNC_FLUSH);
			if (zr != Z_OK && zr != Z_BUF_ERROR) {
				/* Z_STREAM_END too: RFC 4978 has no end of the compressed stream */
				snprintf(d->c->err, sizeof d->c->err, "inflate failed (%d)", zr);
				return CONN_ERROR;
			}
			size_t got = cap - zs->avail_out;
			d->z->in_more = zs->avail_out == 0;
			if (got > 0)
				return (ssize_t)got;
		}
		ssize_t n = conn_read(d->c, d->z->raw, sizeof d->z->raw, deadline);
		if (n <= 0)
			return n;
		zs->next_in = d->z->raw;
		zs->avail_in = (uInt)n;
	}
}

/* Writes the session's queued responses, after the failed-login delay when one is due. */
static int
imap_conn_flush(struct imap_conn_drv *d)
{
	unsigned delay = imap_session_delay_ms(d->s);
	if (delay)
		(void)poll(NULL, 0, (int)delay);
	return imap_conn_write(d, imap_session_output(d->s));
}

/* ---- session hooks ---- */

static int
imap_conn_hook_flush(void *ctx, struct buf *out)
{
	return imap_conn_write(ctx, out) < 0 ? -1 : 0;
}

static void
imap_conn_hook_log(void *ctx, const char *line)
{
	(void)ctx;
	log_info("%s", line);
}

/* Auth-failure tracking (issue 8, hooks.c server_auth_wait): the growing delay before the
 * check, and a locked-out IP gets NO [AUTHENTICATIONFAILED] with no password check. */
static bool
imap_conn_hook_auth_gate(void *ctx, const char *user)
{
	struct imap_conn_drv *d = ctx;
	return server_auth_wait("imap", d->id, d->c->peer_ip, user);
}

static void
imap_conn_hook_auth_result(void *ctx, const char *user, bool ok)
{
	struct imap_conn_drv *d = ctx;
	server_auth_done(d->c->peer_ip, user, ok);
}

/* ---- idle memory ---- */

/* Returns the pages of this thread's stack below the current frame (minus a margin) to the
 * kernel: a session that once ran a deep FETCH or SEARCH would otherwise keep those pages
 * resident for as long as it sits in IDLE. The memory stays mapped and reads back as zeros;
 * nothing lives below the stack pointer. */
static void
imap_conn_trim_stack(void)
{
	pthread_attr_t a;
	void *lo;
	size_t size;
	if (pthread_getattr_np(pthread_self(), &a) != 0)
		return;
	int rc = pthread_attr_getstack(&a, &lo, &size);
	pthread_attr_destroy(&a);
	long page = sysconf(_SC_PAGESIZE);
	if (rc != 0 || page <= 0)
		return;
	uintptr_t mask = (uintptr_t)page - 1;
	volatile char here = 0;
	uintptr_t sp = (uintptr_t)&here;
	uintptr_t base = ((uintptr_t)lo + mask) & ~mask;
	if (sp < base + IMAP_CONN_STACK_KEEP + (uintptr_t)page)
		return;
	uintptr_t top = (sp - IMAP_CONN_STACK_KEEP) & ~mask;
	if (top > base)
		(void)madvise((void *)base, top - base, MADV_DONTNEED);
}

/* Before a long wait: nothing held that can be got back later. */
static void
imap_conn_go_idle(struct imap_conn_drv *d)
{
	if (d->ms->ops->idle_release != NULL)
		d->ms->ops->idle_release(d->ms);
	x_free(&d->rbuf);
	imap_conn_trim_stack();
}

/* ---- the session loop ---- */

/* Timeout or EOF: the goodbye and the disconnect reason. */
static const char *
imap_conn_end(struct imap_conn_drv *d, ssize_t n)
{
	if (n == CONN_TIMEOUT) {
		imap_session_close(d->s, false);
		(void)imap_conn_flush(d);
		return "timeout";
	}
	if (n == CONN_EOF) {
		if (!server_is_stopping())
			return "eof";
		imap_session_close(d->s, true);
		(void)imap_conn_flush(d);
		return "shutdown";
	}
	log_debug("imap %s read-error error=\"%s\"", d->id, d->c->err);
	return "error";
}

/* After input: the requests the session made. NULL to go on, else the disconnect reason. */
static const char *
imap_conn_after_input(struct imap_conn_drv *d)
{
	if (imap_conn_flush(d) < 0)
		return "error";
	if (imap_session_wants_tls(d->s)) {
		const char *why = server_tls_begin("imap", d->id, d->c, d->l->tls, NULL, true,
		                                   (int)imap_conn_timeout(d));
		if (why)
			return why;
		imap_session_tls_started(d->s);
		if (imap_conn_flush(d) < 0)
			return "error";
	}
	if (imap_session_wants_compress(d->s)) {
		if (d->z != NULL || imap_conn_z_start(d) < 0) {
			log_error("imap %s compress failed error=\"zlib init\"", d->id);
			return "error";
		}
		imap_session_compress_started(d->s);
		log_debug("imap %s compress deflate", d->id);
		if (imap_conn_flush(d) < 0)
			return "error";
	}
	return NULL;
}

/* IDLE: waits for input or for the selected mailbox to change. NULL when IDLE ended (the
 * session left it), else the disconnect reason. */
static const char *
imap_conn_idle(struct imap_conn_drv *d)
{
	unsigned char in[IMAP_CONN_IDLE_READ];
	int64_t mbox = imap_session_mailbox(d->s);
	uint64_t (*change_seq)(struct imap_mailstore *, int64_t) = d->ms->ops->change_seq;
	uint64_t seq = mbox && change_seq ? change_seq(d->ms, mbox) : 0;
	int64_t deadline = conn_deadline(imap_conn_timeout(d));
	int64_t repoll = clock_mono_ms() + IMAP_CONN_REPOLL_MS;
	bool released = false;
	while (imap_session_idling(d->s) && !imap_session_done(d->s)) {
		if (!released) {
			imap_conn_go_idle(d);
			released = true;
		}
		int64_t now = clock_mono_ms();
		int64_t until =
		    now + IMAP_CONN_SLICE_MS < deadline ? now + IMAP_CONN_SLICE_MS : deadline;
		ssize_t n = imap_conn_read(d, in, sizeof in, until);
		if (n == CONN_TIMEOUT && clock_mono_ms() < deadline) {
			mbox = imap_session_mailbox(d->s);
			uint64_t cur = mbox && change_seq ? change_seq(d->ms, mbox) : 0;
			if (cur == seq && clock_mono_ms() < repoll)
				continue;
			seq = cur; /* read before the poll: a change during it moves it again */
			repoll = clock_mono_ms() + IMAP_CONN_REPOLL_MS;
			imap_session_poll(d->s);
			released = false;
			if (imap_conn_flush(d) < 0)
				return "error";
			continue;
		}
		if (n <= 0)
			return imap_conn_end(d, n);
		imap_session_input(d->s, in, (size_t)n);
		released = false;
		const char *why = imap_conn_after_input(d);
		if (why)
			return why;
	}
	return NULL;
}

static const char *
imap_conn_session(struct imap_conn_drv *d)
{
	if (imap_conn_flush(d) < 0) /* the greeting */
		return "error";
	int64_t deadline = conn_deadline(imap_conn_timeout(d));
	while (!imap_session_done(d->s)) {
		if (imap_session_idling(d->s)) {
			const char *why = imap_conn_idle(d);
			if (why)
				return why;
			deadline = conn_deadline(imap_conn_timeout(d));
			continue;
		}
		if (d->rbuf == NULL)
			d->rbuf = xmalloc(IMAP_CONN_READ_BUF);
		ssize_t n = imap_conn_read(d, d->rbuf, IMAP_CONN_READ_BUF, deadline);
		if (n <= 0)
			return imap_conn_end(d, n);
		imap_session_input(d->s, d->rbuf, (size_t)n);
		/* Before login only a response restarts the timer (a client dribbling bytes is cut
		 * off); after login any input does (autologout counts inactivity). The timer starts
		 * once the response is out, after any failed-login delay. */
		bool restart =
		    imap_session_output(d->s)->len > 0 || imap_session_user(d->s) != NULL;
		const char *why = imap_conn_after_input(d);
		if (why)
			return why;
		if (restart)
			deadline = conn_deadline(imap_conn_timeout(d));
	}
	return "logout";
}

/* 127.0.0.0/8, ::1 and ::ffff:127.0.0.0/104: the plaintext-login exception applies. */
static bool
imap_conn_is_loopback(const char *ip)
{
	return strncmp(ip, "127.", 4) == 0 || strcmp(ip, "::1") == 0 ||
	       strncmp(ip, "::ffff:127.", 11) == 0;
}

void
server_imap_conn(struct conn *c, void *arg)
{
	const struct server_listener *l = arg;
	char id[SERVER_ID_LEN];
	server_conn_id(id);
	int64_t t0 = clock_mono_ms();
	log_info("imap %s connect client=%s listener=%s", id, c->peer, l->name);

	struct config *cfg = config_current();
	struct imap_conn_drv d = {
	    .c = c,
	    .l = l,
	    .id = id,
	    .timeout_ms = cfg->imap.timeout * 1000,
	    .preauth_timeout_ms = cfg->imap.preauth_timeout * 1000,
	};
	struct imap_limits lim = {
	    .hostname = l->hostname,
	    .line_max = (size_t)cfg->imap.max_line,
	    .preauth_line_max = (size_t)cfg->imap.preauth_max_line,
	    .literal_max = (size_t)cfg->imap.max_literal,
	    .preauth_literal_max = (size_t)cfg->imap.preauth_max_literal,
	    .command_max = (size_t)cfg->imap.max_command,
	    .depth_max = (unsigned)cfg->imap.max_depth,
	    .max_errors = (unsigned)cfg->imap.max_errors,
	    .max_auth_failures = (unsigned)cfg->imap.max_auth_failures,
	    .auth_fail_delay_ms = (unsigned)(cfg->imap.auth_failure_delay * 1000),
	    .plaintext_auth_ok =
	        cfg->imap.plaintext_auth_loopback && imap_conn_is_loopback(c->peer_ip),
	};
	/* Large APPEND literals are spooled next to the database, not to a RAM-backed /tmp. */
	char *spool_dir = xstrdup(cfg->data_dir);
	config_unref(&cfg);
	struct imap_hooks hooks = {
	    .ctx = &d,
	    .flush = imap_conn_hook_flush,
	    .log = imap_conn_hook_log,
	    .now = NULL,
	    .auth_gate = imap_conn_hook_auth_gate,
	    .auth_result = imap_conn_hook_auth_result,
	};
	struct imap_conn_info info = {.client_ip = c->peer_ip, .listener = l->name};

	const char *reason = NULL;
	if (l->implicit_tls)
		reason =
		    server_tls_begin("imap", id, c, l->tls, NULL, false, (int)d.preauth_timeout_ms);
	if (reason == NULL) {
		d.ms = imap_mailstore_sql(l->store);
		imap_mailstore_sql_set_spool_dir(d.ms, spool_dir);
		d.s = imap_session_new(&lim, &hooks, &info, d.ms, l->implicit_tls, l->starttls, id);
		reason = imap_conn_session(&d);
	}
	int64_t ms = clock_mono_ms() - t0;
	const char *user = d.s ? imap_session_user(d.s) : NULL;
	char ubuf[256];
	log_info("imap %s disconnect client=%s user=%s duration=%lld.%03lld reason=%s in=%llu "
	         "out=%llu",
	         id, c->peer, user ? log_escape(user, ubuf, sizeof ubuf) : "-",
	         (long long)(ms / 1000), (long long)(ms % 1000), reason,
	         (unsigned long long)c->bytes_in, (unsigned long long)c->bytes_out);
	imap_session_free(&d.s); /* frees the mailstore */
	imap_conn_z_free(&d);
	x_free(&d.rbuf);
	x_free(&spool_dir);
	store_thread_done(l->store);
}

/* The daemon (`lightr serve`, DESIGN.md §1): start-up in the only safe order, then the accept
 * loop, signals and shutdown.
 *
 * Start-up: log level; data_dir; TLS context (configured files or the self-signed pair in
 * data_dir/tls, made before the privilege drop so root-only keys can be read); bind every
 * listener (ports below 1024 need root); read the HTTP cert/key PEM text; as root, give data_dir
 * to the service user and drop to it (setgroups/setresgid/setresuid) BEFORE any connection is
 * accepted and before the store is opened, so no parser runs as root and no SQLite file is
 * created root-owned; open the store; start the HTTP daemons and the signal thread; accept.
 *
 * Signals are blocked in every thread (the mask is set before any thread exists) and handled by
 * one thread with sigwait(): SIGHUP reloads, SIGTERM/SIGINT stop. SIGPIPE is ignored: a write to
 * a closed socket must fail with EPIPE, not kill the process (OpenSSL writes with write(2)). */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "auth/passwd.h"
#include "dns/resolver.h"
#include "net/client.h"
#include "net/listen.h"
#include "net/tls.h"
#include "queue/deliver.h"
#include "queue/dsn.h"
#include "queue/sched.h"
#include "server.h"
#include "server_private.h"
#include "store/store.h"
#include "util/buf.h"
#include "util/clock.h"
#include "util/log.h"
#include "util/privs.h"
#include "util/rand.h"
#include "util/xalloc.h"

#define SERVER_HTTP_TIMEOUT_S 60        /* idle HTTP connection timeout (no config key yet) */
#define SERVER_PEM_MAX        (1 << 20) /* a certificate chain file larger than this is wrong */
#define SERVER_CUT_GRACE_MS   2000      /* after shutdown_timeout: time to say goodbye */

static atomic_bool stopping;

bool
server_is_stopping(void)
{
	return atomic_load(&stopping);
}

void
server_conn_id(char out[SERVER_ID_LEN])
{
	unsigned char b[4];
	rand_bytes(b, sizeof b);
	hex_encode(b, sizeof b, out);
}

const char *
server_tls_begin(const char *component, const char *id, struct conn *c, SSL_CTX *ctx,
                 struct conn_lines *discard, bool starttls, int timeout_ms)
{
	size_t dropped = 0;
	const char *what = starttls ? "starttls" : "tls";
	int rc = conn_start_tls(c, ctx, discard, conn_deadline(timeout_ms), &dropped);
	if (dropped)
		log_info("%s %s starttls-discard bytes=%zu (plaintext pipelined after STARTTLS)",
		         component, id, dropped);
	if (rc < 0) {
		log_info("%s %s tls-failed error=\"%s\"", component, id, c->err);
		return "tls-failed";
	}
	log_info("%s %s %s version=%s cipher=%s", component, id, what, conn_tls_version(c),
	         conn_tls_cipher(c));
	return NULL;
}

struct daemon {
	struct config *cfg; /* start-up config: the source of every non-reloadable value */
	SSL_CTX *tls;
	char cert_file[PATH_MAX], key_file[PATH_MAX];
	char *cert_pem, *key_pem; /* for MHD, read before the privilege drop */
	struct store *store;
	struct net_pool *pool;
	struct server_listener *ls; /* [n_sv], parallel to sv */
	struct net_service *sv;
	size_t n_sv;
	int *http_fd; /* [n_http] bound, not yet handed to MHD (-1 once handed over) */
	char (*http_addr)[NET_ADDR_STR_MAX];
	bool *http_tls;
	struct server_http **http;
	size_t n_http;
	int stop_pipe[2];
	sigset_t sigs;
	pthread_t sig_thread;
	bool sig_thread_started;
	/* outbound delivery (issue 5) */
	struct dns_resolver *dns;
	SSL_CTX *client_tls;
	struct queue_deliver *deliver;
	struct queue_dsn_ctx dsn;
	struct queue_sched *sched;
};

/* The running scheduler, for server_queue_wake (NULL when none). */
static _Atomic(struct queue_sched *) running_sched;

void
server_queue_wake(void)
{
	struct queue_sched *s = atomic_load(&running_sched);
	if (s)
		queue_sched_wake(s);
}

/* Splits a comma-separated list into trimmed items (in place in a copy *store_r). */
static size_t
server_split(const char *s, char **store_r, char ***items_r)
{
	*store_r = xstrdup(s ? s : "");
	*items_r = NULL;
	size_t n = 0, cap = 0;
	char *save = NULL;
	for (char *p = strtok_r(*store_r, ",", &save); p; p = strtok_r(NULL, ",", &save)) {
		while (*p == ' ' || *p == '\t')
			p++;
		size_t len = strlen(p);
		while (len > 0 && (p[len - 1] == ' ' || p[len - 1] == '\t'))
			p[--len] = '\0';
		if (len == 0)
			continue;
		if (n == cap) {
			cap = cap ? cap * 2 : 8;
			*items_r = xrealloc(*items_r, cap * sizeof **items_r);
		}
		(*items_r)[n++] = p;
	}
	return n;
}

/* Outbound delivery: the resolver (dns.forwarders), the client TLS context, the delivery worker
 * and the scheduler with its threads. Runs after the privilege drop and store_open. */
static int
server_start_queue(struct daemon *d, struct err *err)
{
	const struct config *c = d->cfg;
	char *fw_store = NULL, **fw = NULL;
	size_t n_fw = server_split(c->dns.forwarders, &fw_store, &fw);
	d->dns = dns_resolver_new((const char *const *)fw, n_fw, err);
	free(fw);
	free(fw_store);
	if (d->dns == NULL)
		return -1;
	server_authcheck_set_resolver(d->dns); /* inbound SPF/DKIM/DMARC use it too */
	d->client_tls = net_tls_client_ctx(err);
	if (d->client_tls == NULL)
		return -1;

	char *rt_store = NULL, **rt = NULL;
	size_t n_rt = server_split(c->delivery.routes, &rt_store, &rt);
	struct queue_route *routes = xcalloc(n_rt ? n_rt : 1, sizeof *routes);
	size_t n_routes = 0;
	for (size_t i = 0; i < n_rt; i++) {
		char *eq = strchr(rt[i], '=');
		if (eq == NULL)
			continue; /* validated by config; cannot happen */
		*eq = '\0';
		char *dom = rt[i], *hop = eq + 1;
		for (size_t k = strlen(dom); k > 0 && dom[k - 1] == ' '; k--)
			dom[k - 1] = '\0';
		while (*hop == ' ')
			hop++;
		routes[n_routes++] = (struct queue_route){.domain = dom, .hostport = hop};
	}
	const char *rtls = c->delivery.relay_tls ? c->delivery.relay_tls : "starttls";
	struct queue_deliver_config dc = {
	    .dns = d->dns,
	    .tls = d->client_tls,
	    .helo = c->delivery.helo_name ? c->delivery.helo_name : c->hostname,
	    .relay = c->delivery.relay,
	    .relay_user = c->delivery.relay_user,
	    .relay_pass = c->delivery.relay_password,
	    .relay_tls = strcmp(rtls, "none") == 0  ? QUEUE_RELAY_NONE
	                 : strcmp(rtls, "tls") == 0 ? QUEUE_RELAY_TLS
	                                            : QUEUE_RELAY_STARTTLS,
	    .routes = routes,
	    .n_routes = n_routes,
	    .mx_port = (uint16_t)c->delivery.mx_port,
	    .connect_timeout = (uint32_t)c->delivery.connect_timeout,
	    .source_address4 = c->delivery.source_address,
	    .source_address6 = c->delivery.source_address,
	};
	int rc = queue_deliver_new(&dc, &d->deliver, err);
	free(routes);
	free(rt);
	free(rt_store);
	if (rc < 0)
		return -1;

	const char *sep = c->smtp.subaddress_separator;
	d->dsn = (struct queue_dsn_ctx){
	    .store = d->store,
	    .hostname = c->hostname,
	    .max_age = (int64_t)c->delivery.max_age,
	    .subaddress_sep = sep && strcmp(sep, "none") != 0 ? sep[0] : '\0',
	};
	struct queue_sched_config sc = {
	    .max_age = (int64_t)c->delivery.max_age,
	    .delay_warning = (int64_t)c->delivery.delay_warning,
	    .workers = (unsigned)c->delivery.workers,
	    .max_per_destination = (unsigned)c->delivery.max_per_destination,
	    .deliver = queue_deliver_batch,
	    .deliver_ctx = d->deliver,
	    .dsn = queue_dsn_hook,
	    .dsn_ctx = &d->dsn,
	};
	if (c->delivery.retry_schedule &&
	    queue_retry_parse(c->delivery.retry_schedule, sc.retry, &sc.n_retry, err) < 0)
		return -1;
	if (queue_sched_new(d->store, &sc, &d->sched, err) < 0 ||
	    queue_sched_start(d->sched, err) < 0)
		return -1;
	atomic_store(&running_sched, d->sched);
	log_info("queue - delivery relay=%s routes=%zu forwarders=%zu mx_port=%u helo=%s",
	         c->delivery.relay ? c->delivery.relay : "-", n_routes, n_fw, (unsigned)dc.mx_port,
	         dc.helo);
	return 0;
}

/* Stops the scheduler (waits for deliveries in flight) and frees the delivery state; before
 * store_close. */
static void
server_stop_queue(struct daemon *d)
{
	atomic_store(&running_sched, NULL);
	if (d->sched) {
		queue_sched_free(&d->sched);
		log_info("queue - stopped");
	}
	queue_deliver_free(&d->deliver);
	server_authcheck_set_resolver(NULL);
	dns_resolver_free(&d->dns);
	net_tls_ctx_free(&d->client_tls);
}

static struct net_limits
server_limits(const struct config *c)
{
	return (struct net_limits){
	    .max_connections = c->limits.max_connections,
	    .max_connections_per_ip = c->limits.max_connections_per_ip,
	};
}

static void
server_apply_log_level(const struct config *c)
{
	int lv = c->log.level ? log_level_parse(c->log.level) : -1;
	if (lv >= 0)
		log_set_level((enum log_level)lv);
}

/* Reads a whole (small) file into a NUL-terminated heap string. */
static char *
server_read_file(const char *path, struct err *err)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		err_set_errno(err, errno, errno, "%s: cannot open", path);
		return NULL;
	}
	struct buf b;
	buf_init(&b, SERVER_PEM_MAX);
	char tmp[8192];
	ssize_t n;
	while ((n = read(fd, tmp, sizeof tmp)) > 0)
		if (buf_append(&b, tmp, (size_t)n) < 0)
			break;
	int e = errno;
	close(fd);
	if (n < 0 || b.overflow) {
		if (b.overflow)
			err_set(err, EFBIG, "%s: larger than %d bytes", path, SERVER_PEM_MAX);
		else
			err_set_errno(err, e, e, "%s: read", path);
		buf_deinit(&b);
		return NULL;
	}
	char *s = xstrdup(buf_cstr(&b));
	buf_deinit(&b);
	return s;
}

/* The configured certificate, or the self-signed one in data_dir/tls. */
static int
server_setup_tls(struct daemon *d, struct err *err)
{
	const struct config *c = d->cfg;
	if (c->tls.cert && c->tls.key) {
		(void)snprintf(d->cert_file, sizeof d->cert_file, "%s", c->tls.cert);
		(void)snprintf(d->key_file, sizeof d->key_file, "%s", c->tls.key);
	} else {
		char dir[PATH_MAX];
		if (snprintf(dir, sizeof dir, "%s/tls", c->data_dir) >= (int)sizeof dir)
			return err_set(err, ENAMETOOLONG, "data_dir is too long");
		enum net_tls_selfsigned what;
		if (net_tls_selfsigned_ensure(dir, c->hostname, &what, err) < 0)
			return -1;
		if (snprintf(d->cert_file, sizeof d->cert_file, "%s/cert.pem", dir) >=
		        (int)sizeof d->cert_file ||
		    snprintf(d->key_file, sizeof d->key_file, "%s/key.pem", dir) >=
		        (int)sizeof d->key_file)
			return err_set(err, ENAMETOOLONG, "data_dir is too long");
		static const char *const whats[] = {"reused", "created", "renewed"};
		log_info("server - tls self-signed certificate %s path=%s hostname=%s", whats[what],
		         d->cert_file, c->hostname);
	}
	d->tls = net_tls_server_ctx(d->cert_file, d->key_file, err);
	return d->tls ? 0 : -1;
}

/* Binds every listener. SMTP/IMAP ones become net services; HTTP ones wait for MHD. */
static int
server_bind(struct daemon *d, struct err *err)
{
	const struct config *c = d->cfg;
	d->ls = xcalloc(c->n_listeners + 1, sizeof *d->ls);
	d->sv = xcalloc(c->n_listeners + 1, sizeof *d->sv);
	d->http_fd = xcalloc(c->n_listeners + 1, sizeof *d->http_fd);
	d->http_addr = xcalloc(c->n_listeners + 1, sizeof *d->http_addr);
	d->http_tls = xcalloc(c->n_listeners + 1, sizeof *d->http_tls);
	d->http = xcalloc(c->n_listeners + 1, sizeof *d->http);
	for (size_t i = 0; i < c->n_listeners; i++) {
		const struct config_listener *cl = &c->listeners[i];
		int fd = net_listen(cl->address, err);
		if (fd < 0)
			return -1;
		char where[NET_ADDR_STR_MAX];
		net_local_addr(fd, where);
		bool tls =
		    cl->tls || cl->role == LISTENER_SUBMISSIONS || cl->role == LISTENER_IMAPS;
		log_info("server - listening role=%s address=%s tls=%s", config_role_name(cl->role),
		         where, tls ? "yes" : "no");
		if (cl->role == LISTENER_HTTP) {
			d->http_fd[d->n_http] = fd;
			(void)snprintf(d->http_addr[d->n_http], NET_ADDR_STR_MAX, "%s", where);
			d->http_tls[d->n_http] = cl->tls;
			d->n_http++;
			continue;
		}
		bool smtp = cl->role == LISTENER_MX || cl->role == LISTENER_SUBMISSION ||
		            cl->role == LISTENER_SUBMISSIONS;
		struct server_listener *l = &d->ls[d->n_sv];
		l->role = cl->role;
		l->name = config_role_name(cl->role);
		l->implicit_tls = tls;
		l->starttls =
		    !tls && (cl->role == LISTENER_SUBMISSION || cl->role == LISTENER_IMAP);
		l->tls = d->tls;
		l->hostname = c->hostname;
		if (tls)
			l->busy_reply[0] = '\0'; /* no plaintext before the handshake */
		else if (smtp)
			(void)snprintf(l->busy_reply, sizeof l->busy_reply,
			               "421 4.7.0 %s Too many connections, try again later\r\n",
			               c->hostname);
		else
			(void)snprintf(l->busy_reply, sizeof l->busy_reply,
			               "* BYE [UNAVAILABLE] Too many connections\r\n");
		d->sv[d->n_sv] = (struct net_service){
		    .fd = fd,
		    .kind = smtp ? SERVER_KIND_SMTP : SERVER_KIND_IMAP,
		    .component = smtp ? "smtp" : "imap",
		    .listener = l->name,
		    .busy_reply = l->busy_reply[0] ? l->busy_reply : NULL,
		    .run = smtp ? server_smtp_conn : server_imap_conn,
		    .arg = l,
		};
		d->n_sv++;
	}
	bool http_tls = false;
	for (size_t i = 0; i < d->n_http; i++)
		http_tls |= d->http_tls[i];
	if (http_tls) {
		d->cert_pem = server_read_file(d->cert_file, err);
		d->key_pem = d->cert_pem ? server_read_file(d->key_file, err) : NULL;
		if (d->key_pem == NULL)
			return -1;
	}
	return 0;
}

/* As root: hand data_dir to the service user and become it. Otherwise: say so. */
static int
server_drop_privileges(struct daemon *d, struct err *err)
{
	const struct config *c = d->cfg;
	if (geteuid() != 0) {
		log_info("server - not started as root; no privilege drop uid=%u gid=%u",
		         (unsigned)geteuid(), (unsigned)getegid());
		return 0;
	}
	uid_t uid;
	gid_t gid;
	if (privs_lookup(c->user, &uid, &gid, err) < 0)
		return -1;
	char real[PATH_MAX];
	if (realpath(c->data_dir, real) != NULL && strcmp(real, "/") == 0)
		return err_set(err, EINVAL, "data_dir must not be /");
	if (privs_chown_tree(c->data_dir, uid, gid, err) < 0 || privs_drop(uid, gid, err) < 0)
		return -1;
	log_info("server - privileges dropped user=%s uid=%u gid=%u", c->user, (unsigned)uid,
	         (unsigned)gid);
	return 0;
}

static int
server_start_http(struct daemon *d, struct err *err)
{
	const struct config *c = d->cfg;
	for (size_t i = 0; i < d->n_http; i++) {
		struct server_http_opts o = {
		    .fd = d->http_fd[i],
		    .listener = d->http_addr[i],
		    .tls = d->http_tls[i],
		    .cert_pem = d->cert_pem,
		    .key_pem = d->key_pem,
		    .max_connections = (unsigned)c->limits.max_connections,
		    .max_connections_per_ip = (unsigned)c->limits.max_connections_per_ip,
		    .timeout_s = SERVER_HTTP_TIMEOUT_S,
		    .store = d->store,
		    .send_max = (size_t)c->api.max_send_size,
		    .webhooks_allow_private = c->webhooks.allow_private_addresses,
		    .tracking_base = c->tracking.base_url,
		    .body_max = (size_t)c->api.max_body_size,
		    .subaddress_sep = c->smtp.subaddress_separator &&
		                              strcmp(c->smtp.subaddress_separator, "none") != 0
		                          ? c->smtp.subaddress_separator[0]
		                          : '\0',
		};
		d->http_fd[i] = -1; /* owned by the HTTP server now, even on failure */
		d->http[i] = server_http_start(&o, err);
		if (d->http[i] == NULL)
			return -1;
	}
	return 0;
}

/* ---- signals ---- */

static void
server_reload(struct daemon *d)
{
	struct config *old = config_current();
	const char *path = old->path ? old->path : "(built-in defaults)";
	struct buf errs;
	buf_init(&errs, 64 * 1024);
	struct config *neu = config_load(old->path, &errs);
	if (neu == NULL) {
		struct slice rest = buf_slice(&errs), line;
		while (rest.len > 0) {
			rest = slice_cut(rest, '\n', &line);
			if (line.len > 0)
				log_error("server - reload error: %.*s", (int)line.len, line.p);
		}
		log_error("server - reload failed path=%s; keeping the running configuration",
		          path);
		buf_deinit(&errs);
		config_unref(&old);
		return;
	}
	buf_reset(&errs);
	if (config_diff_nonreloadable(old, neu, &errs) > 0) {
		struct slice rest = buf_slice(&errs), line;
		while (rest.len > 0) {
			rest = slice_cut(rest, '\n', &line);
			if (line.len > 0)
				log_warn(
				    "server - reload key=%.*s changed but needs a restart; the "
				    "running value stays",
				    (int)line.len, line.p);
		}
	}
	buf_deinit(&errs);
	server_apply_log_level(neu);
	struct net_limits lim = server_limits(neu);
	net_pool_set_limits(d->pool, &lim);
	if (d->n_http > 0 &&
	    (neu->limits.max_connections != old->limits.max_connections ||
	     neu->limits.max_connections_per_ip != old->limits.max_connections_per_ip))
		log_warn("server - reload: HTTP connection limits apply after a restart");
	config_set_current(neu);
	config_unref(&old);
	log_info("server - reloaded path=%s log_level=%s", path, log_level_name(log_get_level()));
}

static void *
server_signal_thread(void *arg)
{
	struct daemon *d = arg;
	for (;;) {
		int sig = 0;
		if (sigwait(&d->sigs, &sig) != 0)
			continue;
		if (sig == SIGUSR2)
			return NULL; /* server_run is done with us */
		if (sig == SIGHUP) {
			if (!server_is_stopping())
				server_reload(d);
			continue;
		}
		const char *name = sig == SIGTERM ? "SIGTERM" : "SIGINT";
		if (atomic_exchange(&stopping, true)) {
			log_warn("server - second signal=%s; exiting without waiting", name);
			_exit(1);
		}
		log_info("server - signal=%s stopping", name);
		(void)!write(d->stop_pipe[1], "x", 1);
	}
}

/* ---- shutdown ---- */

/* Lets sessions finish for shutdown_timeout, then asks the rest to go: their reads see EOF (they
 * answer "shutting down"), and finally their sockets are cut. True when none is left. */
static bool
server_drain(struct daemon *d)
{
	uint64_t secs = d->cfg->limits.shutdown_timeout;
	struct config *cur = config_current();
	if (cur) {
		secs = cur->limits.shutdown_timeout;
		config_unref(&cur);
	}
	unsigned live = net_pool_count(d->pool);
	if (live == 0)
		return true;
	log_info("server - waiting sessions=%u timeout=%llus", live, (unsigned long long)secs);
	if (net_pool_wait_idle(d->pool, clock_mono_ms() + (int64_t)secs * 1000))
		return true;
	log_info("server - closing sessions=%u", net_pool_count(d->pool));
	net_pool_shutdown_all(d->pool, SHUT_RD);
	if (net_pool_wait_idle(d->pool, conn_deadline(SERVER_CUT_GRACE_MS)))
		return true;
	net_pool_shutdown_all(d->pool, SHUT_RDWR);
	return net_pool_wait_idle(d->pool, conn_deadline(SERVER_CUT_GRACE_MS));
}

/* Frees what start-up made; idle says whether no session thread can still use shared state. */
static void
server_cleanup(struct daemon *d, bool idle)
{
	if (d->sig_thread_started) {
		pthread_kill(d->sig_thread, SIGUSR2);
		pthread_join(d->sig_thread, NULL);
	}
	for (size_t i = 0; i < d->n_http; i++) {
		server_http_stop(&d->http[i]);
		if (d->http_fd && d->http_fd[i] >= 0)
			close(d->http_fd[i]);
	}
	for (size_t i = 0; i < d->n_sv; i++)
		if (d->sv[i].fd >= 0)
			close(d->sv[i].fd);
	server_events_stop();
	server_stop_queue(d);
	store_close(&d->store);
	for (int i = 0; i < 2; i++)
		if (d->stop_pipe[i] >= 0)
			close(d->stop_pipe[i]);
	if (d->key_pem)
		memset(d->key_pem, 0, strlen(d->key_pem));
	x_free(&d->cert_pem);
	x_free(&d->key_pem);
	if (!idle)
		return; /* sessions past the deadline still read these; the process exits next */
	net_pool_free(&d->pool);
	net_tls_ctx_free(&d->tls);
	x_free(&d->ls);
	x_free(&d->sv);
	x_free(&d->http_fd);
	x_free(&d->http_addr);
	x_free(&d->http_tls);
	x_free(&d->http);
	config_set_current(NULL);
	config_unref(&d->cfg);
}

int
server_run(struct config *cfg)
{
	struct daemon d = {.cfg = cfg, .stop_pipe = {-1, -1}};
	struct err err = {0};
	server_apply_log_level(cfg);
	atomic_store(&stopping, false);

	/* Before any thread exists (the store writer, MHD, sessions): they inherit the mask. */
	sigemptyset(&d.sigs);
	sigaddset(&d.sigs, SIGTERM);
	sigaddset(&d.sigs, SIGINT);
	sigaddset(&d.sigs, SIGHUP);
	sigaddset(&d.sigs, SIGUSR2);
	pthread_sigmask(SIG_BLOCK, &d.sigs, NULL);
	signal(SIGPIPE, SIG_IGN);

	config_set_current(config_ref(cfg));
	char db[PATH_MAX];
	if (snprintf(db, sizeof db, "%s/lightr.db", cfg->data_dir) >= (int)sizeof db) {
		err_set(&err, ENAMETOOLONG, "data_dir is too long");
		goto fail;
	}
	if (privs_mkdir(cfg->data_dir, &err) < 0 || server_setup_tls(&d, &err) < 0 ||
	    server_bind(&d, &err) < 0 || server_drop_privileges(&d, &err) < 0)
		goto fail;
	if (store_open(db, &d.store, &err) < 0) {
		char msg[sizeof err.msg];
		memcpy(msg, err.msg, sizeof msg);
		err_set(&err, err.code, "%s: %s", db, msg);
		goto fail;
	}
	for (size_t i = 0; i < d.n_sv; i++)
		d.ls[i].store = d.store;
	if (auth_init((unsigned)cfg->auth.max_concurrent_hashes) < 0) {
		err_set(&err, 1, "libsodium cannot start");
		goto fail;
	}
	struct net_limits lim = server_limits(cfg);
	d.pool = net_pool_new(&lim);
	if (server_start_http(&d, &err) < 0 || server_start_queue(&d, &err) < 0 ||
	    server_events_start(d.store, d.cfg, &err) < 0)
		goto fail;
	if (pipe2(d.stop_pipe, O_CLOEXEC) < 0) {
		err_set_errno(&err, errno, errno, "pipe");
		goto fail;
	}
	if (pthread_create(&d.sig_thread, NULL, server_signal_thread, &d) != 0) {
		err_set(&err, 1, "cannot start the signal thread");
		goto fail;
	}
	d.sig_thread_started = true;
	log_info("server - started listeners=%zu pid=%ld version=%s hostname=%s data_dir=%s",
	         cfg->n_listeners, (long)getpid(), LIGHTR_VERSION, cfg->hostname, cfg->data_dir);

	net_pool_serve(d.pool, d.sv, d.n_sv, d.stop_pipe[0]);

	/* Stop accepting first: close the listeners, then let sessions finish. */
	for (size_t i = 0; i < d.n_sv; i++) {
		close(d.sv[i].fd);
		d.sv[i].fd = -1;
	}
	for (size_t i = 0; i < d.n_http; i++)
		server_http_stop(&d.http[i]);
	bool idle = server_drain(&d);
	if (!idle)
		log_warn("server - sessions still running=%u; exiting anyway",
		         net_pool_count(d.pool));
	server_cleanup(&d, idle);
	log_info("server - stopped");
	return 0;

fail:
	log_error("server - start failed: %s", err.msg);
	server_cleanup(&d, true);
	return 1;
}

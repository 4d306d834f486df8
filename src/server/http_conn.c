/* HTTP listener glue (libmicrohttpd): MHD runs its own threads (a poll thread plus a thread
 * per connection) on the socket server/ bound and enforces the connection limits and the idle
 * timeout. Each request body is read into memory up to http_api_body_limit (a Content-Length
 * above it gets 413 before anything is read; a chunked body that grows past it gets 413 when
 * it does), then handed whole to the REST API (src/http/), which does no I/O. With tls it
 * serves HTTPS from PEM text (Debian's MHD uses GnuTLS), TLS 1.2 minimum as for the mail
 * listeners.
 *
 * The API's hooks (http_hooks) are implemented here on top of the submission path (submit.c)
 * and the shared administration functions (admin.c). */
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "server.h"
#include "server_private.h"
#include "submit.h"
#include "util/log.h"
#include "util/rand.h"
#include "util/xalloc.h"

#define HTTP_STACK_SIZE (256 * 1024)

struct server_http {
	struct MHD_Daemon *mhd;
	char *cert_pem, *key_pem; /* kept alive while the daemon runs */
	char listener[NET_ADDR_STR_MAX];
	struct store *store;
	char subaddress_sep;
	bool tls;
	struct http_hooks hooks;
	struct http_api *api;
	char *tracking_base; /* owned copy for http_limits */
};

/* One request in progress (MHD's per-request pointer). */
struct http_req {
	struct buf body;
	size_t limit;
	bool too_large;
	size_t dropped; /* bytes read and dropped after the limit */
};

static void
http_conn_mhd_log(void *cls, const char *fmt, va_list ap)
{
	(void)cls;
	char msg[512], esc[512];
	int n = vsnprintf(msg, sizeof msg, fmt, ap);
	if (n < 0)
		return;
	size_t len = strlen(msg);
	while (len > 0 && (msg[len - 1] == '\n' || msg[len - 1] == '\r'))
		msg[--len] = '\0';
	log_warn("http - mhd message=\"%s\"", log_escape(msg, esc, sizeof esc));
}

/* ---- hooks for the API ---- */

static const char *
http_hostname(void)
{
	struct config *c = config_current();
	static __thread char host[256];
	(void)snprintf(host, sizeof host, "%s", c && c->hostname ? c->hostname : "localhost");
	config_unref(&c);
	return host;
}

static int
hook_submit(void *ctx, const struct http_submit *s, int64_t *queue_id_r, struct err *err)
{
	struct server_http *h = ctx;
	struct smtp_rcpt *rcpts = xcalloc(s->n_rcpts, sizeof *rcpts);
	bool eightbit = false;
	for (size_t i = 0; i < s->len && !eightbit; i++)
		eightbit = s->msg[i] >= 0x80;
	for (size_t i = 0; i < s->n_rcpts; i++)
		rcpts[i] = (struct smtp_rcpt){.addr = (char *)s->rcpts[i].address,
		                              .kind = s->rcpts[i].local ? SMTP_RCPT_LOCAL
		                                                        : SMTP_RCPT_REMOTE};
	time_t now = time(NULL);
	struct tm tm;
	char date[64] = "";
	if (gmtime_r(&now, &tm))
		(void)strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S +0000", &tm);
	char *received = xasprintf("Received: by %s (Lightr) with %s id %s;\r\n\t%s\r\n",
	                           http_hostname(), h->tls ? "HTTPS" : "HTTP", s->request_id, date);
	struct smtp_envelope env = {
	    .mail_from = s->from,
	    .helo = "localhost",
	    .eightbit = eightbit,
	    .rcpts = rcpts,
	    .n_rcpts = s->n_rcpts,
	    .received = received,
	    .id = s->request_id,
	};
	struct err serr = {0};
	struct server_submit_opts o = {
	    .subaddress_sep = h->subaddress_sep,
	    .id = s->request_id,
	    .component = "http",
	    .submission = true,
	    .now = (int64_t)now,
	    .api = s->api,
	    .err_r = &serr,
	};
	const struct server_limit_taken *lt = s->limit_taken;
	if (lt) {
		o.limit_incs = lt->incs;
		o.n_limit_incs = lt->n_incs;
	}
	struct smtp_hook_reply reply = {0};
	int rc = server_submit(h->store, &o, &env, s->msg, s->len, queue_id_r, &reply);
	if (rc < 0) {
		if (serr.code)
			*err = serr;
		else
			err_set(err, STORE_EINTERNAL, "%d %s %s", reply.code, reply.enhanced,
			        reply.text);
	}
	free(received);
	free(rcpts);
	return rc;
}

static int
hook_dkim_default_keys(void *ctx, const char *domain, struct err *err)
{
	struct server_http *h = ctx;
	return server_dkim_default_keys(h->store, domain, err);
}

static int
hook_dkim_generate(void *ctx, const char *domain, const char *algo, unsigned bits,
                   const char *selector, char *selector_r, struct err *err)
{
	struct server_http *h = ctx;
	return server_dkim_generate(h->store, domain, algo, bits, selector, (int64_t)time(NULL),
	                            selector_r, err);
}

static int
hook_dkim_rotate(void *ctx, const char *domain, unsigned keep_days, struct err *err)
{
	struct server_http *h = ctx;
	return server_dkim_rotate(h->store, domain, keep_days, (int64_t)time(NULL), NULL, err);
}

static void
hook_events_added(void *ctx)
{
	(void)ctx;
	server_events_wake();
}

static int
hook_domain_dns(void *ctx, const char *domain, struct http_dns_record **v_r, size_t *n_r,
                struct err *err)
{
	struct server_http *h = ctx;
	return server_domain_dns(h->store, domain, http_hostname(), v_r, n_r, err);
}

/* ---- rate limits (issue 8) ---- */

static void
hook_verdict(const struct server_limit_verdict *sv, struct http_limit_verdict *v)
{
	v->rule = sv->rule;
	(void)snprintf(v->who, sizeof v->who, "%s", sv->who);
	v->limit = sv->limit;
	v->retry_after_s = sv->retry_after_s;
	(void)snprintf(v->text, sizeof v->text, "%s", sv->text);
}

/* The handle is a heap struct server_limit_taken, freed by limit_refund or limit_done. */
static int
hook_limit_send(void *ctx, const char *from, const char *domain, size_t n, void **taken_r,
                struct http_limit_verdict *v)
{
	struct server_http *h = ctx;
	struct server_limit_taken *t = xcalloc(1, sizeof *t);
	struct server_limit_verdict sv = {0};
	/* a From address that is an account of ours spends that account's budget too */
	struct store_account acct;
	struct err err = {0};
	bool is_account = from != NULL && store_account_get(h->store, from, &acct, &err) == 0;
	if (is_account)
		store_account_deinit(&acct);
	if (!server_limit_take_send(h->store, is_account ? from : NULL, domain, n, t, &sv)) {
		free(t);
		hook_verdict(&sv, v);
		return 1;
	}
	*taken_r = t;
	return 0;
}

static void
hook_limit_refund(void *ctx, void *taken)
{
	(void)ctx;
	struct server_limit_taken *t = taken;
	server_limit_refund(t);
	free(t);
}

static void
hook_limit_done(void *ctx, void *taken)
{
	(void)ctx;
	server_limit_commit(taken);
	free(taken);
}

static bool
hook_limit_request(void *ctx, int64_t key_id, struct http_limit_verdict *v)
{
	(void)ctx;
	struct server_limit_verdict sv = {0};
	if (server_limit_apikey(key_id, &sv))
		return true;
	hook_verdict(&sv, v);
	return false;
}

static int64_t
hook_auth_gate(void *ctx, const char *ip)
{
	(void)ctx;
	return server_auth_gate(ip, "apikey");
}

static void
hook_auth_result(void *ctx, const char *ip, bool ok)
{
	(void)ctx;
	server_auth_result(ip, "apikey", ok);
}

static int
hook_limit_usage(void *ctx, bool domain, const char *name,
                 struct http_limit_usage out[HTTP_LIMIT_RULES], struct err *err)
{
	struct server_http *h = ctx;
	struct server_limit_usage u[SERVER_LIMIT_RULES];
	memset(u, 0, sizeof u);
	if (server_limit_usage(h->store, domain ? SERVER_LIMIT_DOMAIN : SERVER_LIMIT_ACCOUNT, name,
	                       u, err) < 0)
		return -1;
	for (size_t i = 0; i < HTTP_LIMIT_RULES; i++)
		out[i] = i < SERVER_LIMIT_RULES
		             ? (struct http_limit_usage){.rule = u[i].rule,
		                                         .limit = u[i].limit,
		                                         .used = u[i].used,
		                                         .resets_in_s = u[i].resets_in_s,
		                                         .overridden = u[i].overridden}
		             : (struct http_limit_usage){0};
	return 0;
}

/* ---- requests ---- */

static enum MHD_Result
http_conn_send(struct MHD_Connection *mc, struct http_response *resp)
{
	struct MHD_Response *r = MHD_create_response_from_buffer(
	    resp->body.len, resp->body.len ? resp->body.data : (void *)"", MHD_RESPMEM_MUST_COPY);
	if (r == NULL)
		return MHD_NO;
	if (resp->body.len || resp->status != 204)
		(void)MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, resp->content_type);
	(void)MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
	if (resp->retry_after[0])
		(void)MHD_add_response_header(r, MHD_HTTP_HEADER_RETRY_AFTER, resp->retry_after);
	if (resp->location[0])
		(void)MHD_add_response_header(r, MHD_HTTP_HEADER_LOCATION, resp->location);
	if (resp->replayed)
		(void)MHD_add_response_header(r, "Idempotent-Replayed", "true");
	if (resp->status == 401)
		(void)MHD_add_response_header(r, MHD_HTTP_HEADER_WWW_AUTHENTICATE,
		                              "Bearer realm=\"lightr\"");
	enum MHD_Result rc = MHD_queue_response(mc, resp->status, r);
	MHD_destroy_response(r);
	return rc;
}

struct query_collect {
	struct http_kv kv[HTTP_QUERY_MAX];
	size_t n;
};

static enum MHD_Result
http_conn_query_kv(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
	(void)kind;
	struct query_collect *q = cls;
	if (q->n < HTTP_QUERY_MAX)
		q->kv[q->n++] = (struct http_kv){key, value};
	return MHD_YES;
}

static void
http_conn_peer(struct MHD_Connection *mc, char peer[NET_ADDR_STR_MAX])
{
	(void)snprintf(peer, NET_ADDR_STR_MAX, "?");
	const union MHD_ConnectionInfo *ci =
	    MHD_get_connection_info(mc, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	if (ci && ci->client_addr)
		net_addr_format(ci->client_addr,
		                ci->client_addr->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6)
		                                                       : sizeof(struct sockaddr_in),
		                true, peer);
}

static enum MHD_Result
http_conn_request(void *cls, struct MHD_Connection *mc, const char *url, const char *method,
                  const char *version, const char *upload_data, size_t *upload_data_size,
                  void **req_cls)
{
	(void)version;
	struct server_http *h = cls;
	struct http_req *rq = *req_cls;
	if (rq == NULL) {
		rq = xcalloc(1, sizeof *rq);
		rq->limit = http_api_body_limit(h->api, method, url);
		buf_init(&rq->body, rq->limit + 1);
		*req_cls = rq;
		const char *cl = MHD_lookup_connection_value(mc, MHD_HEADER_KIND,
		                                             MHD_HTTP_HEADER_CONTENT_LENGTH);
		if (cl && strtoull(cl, NULL, 10) > rq->limit)
			rq->too_large = true;
		if (!rq->too_large)
			return MHD_YES; /* MHD calls again with the body, then with size 0 */
	} else if (*upload_data_size > 0) {
		/* Past the limit the rest is read and dropped: MHD only takes a response once the
		 * upload ended (the final call with size 0), unless nothing was read yet.
		 * A body that goes on far past it gets the connection closed instead. */
		if (!rq->too_large && buf_append(&rq->body, upload_data, *upload_data_size) < 0) {
			rq->too_large = true;
			buf_deinit(&rq->body);
			buf_init(&rq->body, 0);
		}
		if (rq->too_large) {
			rq->dropped += *upload_data_size;
			if (rq->dropped > rq->limit)
				return MHD_NO;
		}
		*upload_data_size = 0;
		return MHD_YES;
	}
	struct http_response resp = {0};
	buf_init(&resp.body, 0);
	if (rq->too_large) {
		/* Answering before the body was read: MHD closes the connection afterwards. */
		char msg[96];
		(void)snprintf(msg, sizeof msg, "the request body is larger than %zu bytes",
		               rq->limit);
		http_api_error(&resp, 413, "payload_too_large", msg, NULL);
	} else {
		struct query_collect q = {.n = 0};
		(void)MHD_get_connection_values(mc, MHD_GET_ARGUMENT_KIND, http_conn_query_kv, &q);
		char peer[NET_ADDR_STR_MAX];
		http_conn_peer(mc, peer);
		struct http_request req = {
		    .method = method,
		    .path = url,
		    .query = q.kv,
		    .n_query = q.n,
		    .authorization = MHD_lookup_connection_value(mc, MHD_HEADER_KIND,
		                                                 MHD_HTTP_HEADER_AUTHORIZATION),
		    .content_type = MHD_lookup_connection_value(mc, MHD_HEADER_KIND,
		                                                MHD_HTTP_HEADER_CONTENT_TYPE),
		    .idempotency_key =
		        MHD_lookup_connection_value(mc, MHD_HEADER_KIND, "Idempotency-Key"),
		    .user_agent = MHD_lookup_connection_value(mc, MHD_HEADER_KIND,
		                                              MHD_HTTP_HEADER_USER_AGENT),
		    .body = (const unsigned char *)rq->body.data,
		    .body_len = rq->body.len,
		    .client = peer,
		};
		http_api_handle(h->api, &req, &resp);
	}
	enum MHD_Result rc = http_conn_send(mc, &resp);
	buf_deinit(&resp.body);
	return rc;
}

static void
http_conn_completed(void *cls, struct MHD_Connection *mc, void **req_cls,
                    enum MHD_RequestTerminationCode toe)
{
	(void)cls;
	(void)mc;
	(void)toe;
	struct http_req *rq = *req_cls;
	if (rq == NULL)
		return;
	buf_deinit(&rq->body);
	free(rq);
	*req_cls = NULL;
}

struct server_http *
server_http_start(const struct server_http_opts *o, struct err *err)
{
	struct server_http *h = xcalloc(1, sizeof *h);
	(void)snprintf(h->listener, sizeof h->listener, "%s", o->listener);
	h->store = o->store;
	h->subaddress_sep = o->subaddress_sep;
	h->tls = o->tls;
	h->tracking_base = o->tracking_base ? xstrdup(o->tracking_base) : NULL;
	h->hooks = (struct http_hooks){.ctx = h,
	                               .submit = hook_submit,
	                               .dkim_default_keys = hook_dkim_default_keys,
	                               .dkim_generate = hook_dkim_generate,
	                               .dkim_rotate = hook_dkim_rotate,
	                               .domain_dns = hook_domain_dns,
	                               .events_added = hook_events_added,
	                               .limit_send = hook_limit_send,
	                               .limit_refund = hook_limit_refund,
	                               .limit_done = hook_limit_done,
	                               .limit_request = hook_limit_request,
	                               .auth_gate = hook_auth_gate,
	                               .auth_result = hook_auth_result,
	                               .limit_usage = hook_limit_usage};
	struct http_limits lim = {.body_max = o->body_max ? o->body_max : HTTP_BODY_MAX_DEFAULT,
	                          .send_max = o->send_max ? o->send_max : HTTP_SEND_MAX_DEFAULT,
	                          .subaddress_sep = o->subaddress_sep,
	                          .webhooks_allow_private = o->webhooks_allow_private,
	                          .tracking_base = h->tracking_base};
	h->api = http_api_new(h->store, &h->hooks, &lim);
	unsigned flags = MHD_USE_POLL_INTERNAL_THREAD | MHD_USE_THREAD_PER_CONNECTION |
	                 MHD_USE_ERROR_LOG | MHD_USE_ITC;
	struct MHD_OptionItem opts[16];
	size_t n = 0;
	opts[n++] =
	    (struct MHD_OptionItem){MHD_OPTION_EXTERNAL_LOGGER, (intptr_t)http_conn_mhd_log, NULL};
	opts[n++] = (struct MHD_OptionItem){MHD_OPTION_LISTEN_SOCKET, o->fd, NULL};
	opts[n++] = (struct MHD_OptionItem){MHD_OPTION_CONNECTION_LIMIT,
	                                    (intptr_t)o->max_connections, NULL};
	opts[n++] = (struct MHD_OptionItem){MHD_OPTION_PER_IP_CONNECTION_LIMIT,
	                                    (intptr_t)o->max_connections_per_ip, NULL};
	opts[n++] =
	    (struct MHD_OptionItem){MHD_OPTION_CONNECTION_TIMEOUT, (intptr_t)o->timeout_s, NULL};
	opts[n++] = (struct MHD_OptionItem){MHD_OPTION_THREAD_STACK_SIZE,
	                                    (intptr_t)net_pool_stack_size(), NULL};
	opts[n++] = (struct MHD_OptionItem){MHD_OPTION_CONNECTION_MEMORY_LIMIT,
	                                    (intptr_t)(64 * 1024), NULL};
	opts[n++] = (struct MHD_OptionItem){MHD_OPTION_NOTIFY_COMPLETED,
	                                    (intptr_t)http_conn_completed, NULL};
	if (o->tls) {
		if (MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES) {
			err_set(err, 1, "listener %s: this libmicrohttpd has no TLS support",
			        o->listener);
			close(o->fd);
			http_api_free(&h->api);
			free(h->tracking_base);
			free(h);
			return NULL;
		}
		flags |= MHD_USE_TLS;
		h->cert_pem = xstrdup(o->cert_pem);
		h->key_pem = xstrdup(o->key_pem);
		opts[n++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_CERT, 0, h->cert_pem};
		opts[n++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_KEY, 0, h->key_pem};
		opts[n++] =
		    (struct MHD_OptionItem){MHD_OPTION_HTTPS_PRIORITIES, 0,
		                            (void *)"NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2"};
	}
	opts[n++] = (struct MHD_OptionItem){MHD_OPTION_END, 0, NULL};
	h->mhd = MHD_start_daemon(flags, 0, NULL, NULL, http_conn_request, h, MHD_OPTION_ARRAY,
	                          opts, MHD_OPTION_END);
	if (h->mhd == NULL) {
		err_set(err, 1,
		        "listener %s: cannot start the HTTP server (see the mhd lines above)",
		        o->listener);
		close(o->fd);
		http_api_free(&h->api);
		free(h->tracking_base);
		free(h->cert_pem);
		free(h->key_pem);
		free(h);
		return NULL;
	}
	return h;
}

void
server_http_stop(struct server_http **hp)
{
	struct server_http *h = *hp;
	if (h == NULL)
		return;
	*hp = NULL;
	/* Quiesce first: MHD hands the listening socket back, and we close it ourselves. */
	MHD_socket fd = MHD_quiesce_daemon(h->mhd);
	MHD_stop_daemon(h->mhd);
	if (fd != MHD_INVALID_SOCKET)
		close(fd);
	if (h->key_pem)
		memset(h->key_pem, 0, strlen(h->key_pem));
	http_api_free(&h->api);
	free(h->tracking_base);
	free(h->cert_pem);
	free(h->key_pem);
	free(h);
}

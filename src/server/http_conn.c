/* HTTP listener glue (libmicrohttpd) until src/http/ arrives: GET /health answers
 * {"status":"ok","version":...}; every other request gets 503 with a JSON error body. MHD runs
 * its own threads (a poll thread plus a thread per connection) on the socket server/ bound, and
 * enforces the connection limits and the idle timeout itself. With tls it serves HTTPS from PEM
 * text (Debian's MHD uses GnuTLS), TLS 1.2 minimum as for the mail listeners.
 *
 * The REST API (src/http/) takes over the request callback; start and stop stay here. */
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "server_private.h"
#include "util/log.h"
#include "util/xalloc.h"

#define HTTP_STACK_SIZE (256 * 1024)

struct server_http {
	struct MHD_Daemon *mhd;
	char *cert_pem, *key_pem; /* kept alive while the daemon runs */
	char listener[NET_ADDR_STR_MAX];
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

static enum MHD_Result
http_conn_send_json(struct MHD_Connection *mc, unsigned status, const char *json)
{
	struct MHD_Response *r =
	    MHD_create_response_from_buffer(strlen(json), (void *)json, MHD_RESPMEM_PERSISTENT);
	if (r == NULL)
		return MHD_NO;
	(void)MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
	(void)MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
	if (status == MHD_HTTP_SERVICE_UNAVAILABLE)
		(void)MHD_add_response_header(r, MHD_HTTP_HEADER_RETRY_AFTER, "60");
	enum MHD_Result rc = MHD_queue_response(mc, status, r);
	MHD_destroy_response(r);
	return rc;
}

static const char health_body[] = "{\"status\":\"ok\",\"version\":\"" LIGHTR_VERSION "\"}";
static const char unavailable_body[] =
    "{\"error\":\"not_available\",\"message\":\"the REST API is not available yet\"}";

/* Answers on the first call, before any request body is read: MHD then closes the connection
 * after the response instead of reading an unwanted upload. */
static enum MHD_Result
http_conn_request(void *cls, struct MHD_Connection *mc, const char *url, const char *method,
                  const char *version, const char *upload_data, size_t *upload_data_size,
                  void **req_cls)
{
	(void)cls;
	(void)version;
	(void)upload_data;
	(void)upload_data_size;
	(void)req_cls;
	bool health = strcmp(url, "/health") == 0 && (strcmp(method, MHD_HTTP_METHOD_GET) == 0 ||
	                                              strcmp(method, MHD_HTTP_METHOD_HEAD) == 0);
	unsigned status = health ? MHD_HTTP_OK : MHD_HTTP_SERVICE_UNAVAILABLE;
	if (log_get_level() == LOG_DEBUG) {
		char peer[NET_ADDR_STR_MAX] = "?", m[40], u[160];
		const union MHD_ConnectionInfo *ci =
		    MHD_get_connection_info(mc, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
		if (ci && ci->client_addr)
			net_addr_format(ci->client_addr,
			                ci->client_addr->sa_family == AF_INET6
			                    ? sizeof(struct sockaddr_in6)
			                    : sizeof(struct sockaddr_in),
			                true, peer);
		log_debug("http - request client=%s method=\"%s\" path=\"%s\" status=%u", peer,
		          log_escape(method, m, sizeof m), log_escape(url, u, sizeof u), status);
	}
	return http_conn_send_json(mc, status, health ? health_body : unavailable_body);
}

struct server_http *
server_http_start(const struct server_http_opts *o, struct err *err)
{
	struct server_http *h = xcalloc(1, sizeof *h);
	(void)snprintf(h->listener, sizeof h->listener, "%s", o->listener);
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
	if (o->tls) {
		if (MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES) {
			err_set(err, 1, "listener %s: this libmicrohttpd has no TLS support",
			        o->listener);
			close(o->fd);
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
	free(h->cert_pem);
	free(h->key_pem);
	free(h);
}

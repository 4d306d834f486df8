/* Durable, signed webhook delivery (issue 7, DESIGN.md §8). The store holds one
 * webhook_deliveries row per (webhook, event); this sender claims the due ones, POSTs each with
 * libcurl and records every attempt. One dispatcher thread polls the store (at least every
 * second, and at once on events_webhooks_wake) and hands claimed jobs to a fixed pool of worker
 * threads; it claims only as many jobs as there are idle workers, so nothing waits in memory
 * for long. A job claimed but not started when the sender stops stays 'sending' and is put
 * back by store_webhook_recover (at stop, and at the next start after a crash).
 * SSRF guard: the host is resolved here, every address must be public unless allow_private,
 * and curl is pinned to the checked address (CURLOPT_RESOLVE); no proxy, no redirects. */
#include "events/events.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <netdb.h>
#include <netinet/in.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "util/clock.h"
#include "util/log.h"
#include "util/xalloc.h"

#define WEBHOOK_URL_MAX      4096        /* longer webhook URLs are refused */
#define WEBHOOK_RESPONSE_MAX (64 * 1024) /* response bytes read before we stop listening */
#define WEBHOOK_TIMEOUT_DEF  10          /* seconds per attempt when the config says 0 */
#define WEBHOOK_WORKERS_DEF  4
#define WEBHOOK_WORKERS_MAX  64
#define WEBHOOK_POLL_MS      1000 /* the dispatcher looks at the store at least this often */
#define WEBHOOK_POLL_MIN_MS  50   /* and never more often than this without a wake-up */
#define WEBHOOK_ADDR_MAX     64

/* The default retry schedule of events.h: 1m, 2m, 5m, 10m, 30m, 1h, 2h, 4h, 8h, 8h. */
static const uint32_t webhook_retry_default[] = {60,   120,  300,   600,   1800,
                                                 3600, 7200, 14400, 28800, 28800};

/* ---- address classification (SSRF guard) ---- */

/* IPv4 ranges that are not public (RFC 6890 special-purpose registry and friends). */
static const struct {
	uint32_t net;
	unsigned bits;
} v4_private[] = {
    {0x00000000, 8},  /* 0/8 "this network" */
    {0x0a000000, 8},  /* 10/8 private (RFC 1918) */
    {0x64400000, 10}, /* 100.64/10 CGNAT (RFC 6598) */
    {0x7f000000, 8},  /* 127/8 loopback */
    {0xa9fe0000, 16}, /* 169.254/16 link-local */
    {0xac100000, 12}, /* 172.16/12 private */
    {0xc0000000, 24}, /* 192.0.0/24 IETF protocol assignments */
    {0xc0000200, 24}, /* 192.0.2/24 TEST-NET-1 */
    {0xc0a80000, 16}, /* 192.168/16 private */
    {0xc6120000, 15}, /* 198.18/15 benchmarking */
    {0xc6336400, 24}, /* 198.51.100/24 TEST-NET-2 */
    {0xcb007100, 24}, /* 203.0.113/24 TEST-NET-3 */
    {0xe0000000, 4},  /* 224/4 multicast */
    {0xf0000000, 4},  /* 240/4 reserved, includes 255.255.255.255 */
};

static bool
v4_is_public(uint32_t a)
{
	for (size_t i = 0; i < sizeof v4_private / sizeof v4_private[0]; i++) {
		uint32_t mask = (uint32_t)(0xffffffffu << (32 - v4_private[i].bits));
		if ((a & mask) == v4_private[i].net)
			return false;
	}
	return true;
}

static uint32_t
v4_at(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

/* IPv6 prefixes: either never public, or embedding an IPv4 address that decides. */
enum v6_kind { V6_PRIVATE, V6_EMBEDS_V4 };
static const struct {
	unsigned char net[16];
	unsigned bits;
	enum v6_kind kind;
	unsigned v4_at; /* byte offset of the embedded IPv4 address */
} v6_ranges[] = {
    {{0}, 96, V6_PRIVATE, 0}, /* ::/96: ::, ::1, v4-compat */
    {{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff}, 96, V6_EMBEDS_V4, 12}, /* ::ffff:0:0/96 */
    {{0, 0x64, 0xff, 0x9b}, 96, V6_EMBEDS_V4, 12},                      /* 64:ff9b::/96 NAT64 */
    {{0, 0x64, 0xff, 0x9b, 0, 1}, 48, V6_PRIVATE, 0}, /* 64:ff9b:1::/48 local NAT64 */
    {{0x01}, 64, V6_PRIVATE, 0},                      /* 100::/64 discard */
    {{0x20, 0x01, 0x0d, 0xb8}, 32, V6_PRIVATE, 0},    /* 2001:db8::/32 docs */
    {{0x20, 0x02}, 16, V6_EMBEDS_V4, 2},              /* 2002::/16 6to4 */
    {{0xfc}, 7, V6_PRIVATE, 0},                       /* fc00::/7 ULA */
    {{0xfe, 0x80}, 10, V6_PRIVATE, 0},                /* fe80::/10 link-local */
    {{0xfe, 0xc0}, 10, V6_PRIVATE, 0},                /* fec0::/10 site-local */
    {{0xff}, 8, V6_PRIVATE, 0},                       /* ff00::/8 multicast */
};

static bool
v6_in(const unsigned char *a, const unsigned char *net, unsigned bits)
{
	unsigned full = bits / 8, rest = bits % 8;
	if (memcmp(a, net, full) != 0)
		return false;
	if (rest == 0)
		return true;
	unsigned char mask = (unsigned char)(0xff << (8 - rest));
	return (a[full] & mask) == (net[full] & mask);
}

static bool
v6_is_public(const unsigned char *a)
{
	for (size_t i = 0; i < sizeof v6_ranges / sizeof v6_ranges[0]; i++) {
		if (!v6_in(a, v6_ranges[i].net, v6_ranges[i].bits))
			continue;
		if (v6_ranges[i].kind == V6_PRIVATE)
			return false;
		return v4_is_public(v4_at(a + v6_ranges[i].v4_at));
	}
	return true;
}

static bool
sockaddr_is_public(const struct sockaddr *sa)
{
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *s4 = (const struct sockaddr_in *)(const void *)sa;
		return v4_is_public(ntohl(s4->sin_addr.s_addr));
	}
	if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)(const void *)sa;
		return v6_is_public(s6->sin6_addr.s6_addr);
	}
	return false;
}

static void
sockaddr_text(const struct sockaddr *sa, char *out, size_t n)
{
	const void *p = NULL;
	if (sa->sa_family == AF_INET)
		p = &((const struct sockaddr_in *)(const void *)sa)->sin_addr;
	else if (sa->sa_family == AF_INET6)
		p = &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr;
	if (p == NULL || inet_ntop(sa->sa_family, p, out, (socklen_t)n) == NULL)
		(void)snprintf(out, n, "?");
}

/* ---- URL check ---- */

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_rc = CURLE_FAILED_INIT;

static void
curl_init_once(void)
{
	curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

static int
curl_ready(struct err *err)
{
	pthread_once(&curl_once, curl_init_once);
	if (curl_init_rc != CURLE_OK)
		return err_set(err, 0, "curl_global_init: %s", curl_easy_strerror(curl_init_rc));
	return 0;
}

/* What a checked URL resolves to: the normalised URL, its host as curl sees it (IPv6 literals
 * in brackets), the port and the approved address. */
struct url_target {
	char url[WEBHOOK_URL_MAX + 64];
	char host[512];
	bool host_is_ip;
	unsigned port;
	char addr[WEBHOOK_ADDR_MAX];
};

static int
url_resolve(const char *url, bool allow_private, struct url_target *t, struct err *err)
{
	if (url == NULL || url[0] == '\0')
		return err_set(err, 0, "empty URL");
	if (strlen(url) > WEBHOOK_URL_MAX)
		return err_set(err, 0, "URL longer than %d bytes", WEBHOOK_URL_MAX);
	if (curl_ready(err) < 0)
		return -1;
	CURLU *u = curl_url();
	if (u == NULL)
		return err_set(err, 0, "out of memory");
	int rc = -1;
	char *scheme = NULL, *host = NULL, *port = NULL, *full = NULL;
	CURLUcode uc = curl_url_set(u, CURLUPART_URL, url, 0);
	if (uc != CURLUE_OK) {
		err_set(err, 0, "bad URL: %s", curl_url_strerror(uc));
		goto out;
	}
	if (curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
	    (strcmp(scheme, "http") != 0 && strcmp(scheme, "https") != 0)) {
		err_set(err, 0, "URL scheme must be http or https");
		goto out;
	}
	if (curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK || host[0] == '\0') {
		err_set(err, 0, "URL has no host");
		goto out;
	}
	if (curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_URL, &full, 0) != CURLUE_OK) {
		err_set(err, 0, "bad URL");
		goto out;
	}
	unsigned long pn = strtoul(port, NULL, 10);
	if (pn == 0 || pn > 65535) {
		err_set(err, 0, "bad URL port");
		goto out;
	}
	if ((size_t)snprintf(t->url, sizeof t->url, "%s", full) >= sizeof t->url ||
	    (size_t)snprintf(t->host, sizeof t->host, "%s", host) >= sizeof t->host) {
		err_set(err, 0, "URL too long");
		goto out;
	}
	t->port = (unsigned)pn;

	/* getaddrinfo wants an IPv6 literal without its brackets (and without a zone id) */
	char name[512];
	size_t hl = strlen(host);
	if (host[0] == '[' && hl >= 2 && host[hl - 1] == ']') {
		(void)snprintf(name, sizeof name, "%.*s", (int)(hl - 2), host + 1);
		char *pct = strchr(name, '%');
		if (pct)
			*pct = '\0';
	} else {
		(void)snprintf(name, sizeof name, "%s", host);
	}
	struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
	struct addrinfo *res = NULL, hints_num = hints;
	hints_num.ai_flags = AI_NUMERICHOST;
	t->host_is_ip = getaddrinfo(name, NULL, &hints_num, &res) == 0;
	if (res)
		freeaddrinfo(res);
	res = NULL;
	int g = getaddrinfo(name, NULL, &hints, &res);
	if (g != 0) {
		err_set(err, 0, "cannot resolve %s: %s", name,
		        g == EAI_SYSTEM ? "system error" : gai_strerror(g));
		goto out;
	}
	t->addr[0] = '\0';
	for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
		if (ai->ai_family != AF_INET && ai->ai_family != AF_INET6)
			continue;
		char text[WEBHOOK_ADDR_MAX];
		sockaddr_text(ai->ai_addr, text, sizeof text);
		if (!allow_private && !sockaddr_is_public(ai->ai_addr)) {
			err_set(err, 0, "address %s of %s is not public", text, name);
			freeaddrinfo(res);
			goto out;
		}
		if (t->addr[0] == '\0')
			(void)snprintf(t->addr, sizeof t->addr, "%s", text);
	}
	freeaddrinfo(res);
	if (t->addr[0] == '\0') {
		err_set(err, 0, "no address for %s", name);
		goto out;
	}
	rc = 0;
out:
	curl_free(scheme);
	curl_free(host);
	curl_free(port);
	curl_free(full);
	curl_url_cleanup(u);
	return rc;
}

int
events_url_check(const char *url, bool allow_private, char *addr_r, unsigned *port_r,
                 struct err *err)
{
	struct url_target *t = xcalloc(1, sizeof *t);
	int rc = url_resolve(url, allow_private, t, err);
	if (rc == 0) {
		if (addr_r)
			(void)snprintf(addr_r, WEBHOOK_ADDR_MAX, "%s", t->addr);
		if (port_r)
			*port_r = t->port;
	}
	free(t);
	return rc;
}

/* ---- signature and body ---- */

void
events_webhook_sign(const char *secret, int64_t t, const char *body, size_t len,
                    char out[EVENTS_SIGNATURE_MAX])
{
	char ts[32];
	int tn = snprintf(ts, sizeof ts, "%" PRId64 ".", t);
	unsigned char mac[EVP_MAX_MD_SIZE];
	size_t maclen = 0;
	if (secret == NULL)
		secret = "";
	EVP_MAC *m = EVP_MAC_fetch(NULL, "HMAC", NULL);
	EVP_MAC_CTX *ctx = m ? EVP_MAC_CTX_new(m) : NULL;
	char digest[] = "SHA256";
	OSSL_PARAM params[] = {
	    OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
	    OSSL_PARAM_construct_end(),
	};
	/* an empty key is valid HMAC; OpenSSL wants a non-NULL pointer for it */
	static const unsigned char empty_key[1] = {0};
	const unsigned char *key = secret[0] ? (const unsigned char *)secret : empty_key;
	if (ctx == NULL || EVP_MAC_init(ctx, key, strlen(secret), params) != 1 ||
	    EVP_MAC_update(ctx, (const unsigned char *)ts, (size_t)tn) != 1 ||
	    EVP_MAC_update(ctx, (const unsigned char *)body, len) != 1 ||
	    EVP_MAC_final(ctx, mac, &maclen, sizeof mac) != 1 || maclen != 32)
		log_panic("webhook HMAC-SHA256 failed in OpenSSL");
	EVP_MAC_CTX_free(ctx);
	EVP_MAC_free(m);
	static const char hex[] = "0123456789abcdef";
	char h[65];
	for (size_t i = 0; i < 32; i++) {
		h[2 * i] = hex[mac[i] >> 4];
		h[2 * i + 1] = hex[mac[i] & 15];
	}
	h[64] = '\0';
	(void)snprintf(out, EVENTS_SIGNATURE_MAX, "t=%" PRId64 ",v1=%s", t, h);
}

static json_t *
json_str_or_null(const char *s)
{
	return s ? json_string(s) : json_null();
}

/* Parses text as JSON of the wanted type (JSON_ARRAY or JSON_OBJECT); NULL when it is not. */
static json_t *
json_parse_as(const char *text, json_type want)
{
	if (text == NULL || text[0] == '\0')
		return NULL;
	json_t *v = json_loads(text, JSON_REJECT_DUPLICATES, NULL);
	if (v && json_typeof(v) != want) {
		json_decref(v);
		v = NULL;
	}
	return v;
}

char *
events_event_json(const struct store_event_row *e)
{
	char created[32] = "1970-01-01T00:00:00Z";
	time_t ct = (time_t)e->ev.created;
	struct tm tm;
	if (gmtime_r(&ct, &tm) != NULL)
		(void)strftime(created, sizeof created, "%Y-%m-%dT%H:%M:%SZ", &tm);
	char id[32];
	(void)snprintf(id, sizeof id, "evt_%" PRId64, e->ev.id);

	json_t *data = json_object();
	json_object_set_new(data, "domain", json_str_or_null(e->domain));
	json_object_set_new(data, "message", json_str_or_null(e->message));
	json_object_set_new(data, "recipient", json_string(e->ev.recipient ? e->ev.recipient : ""));
	json_t *tags = json_parse_as(e->tags_json, JSON_ARRAY);
	json_object_set_new(data, "tags", tags ? tags : json_array());
	json_t *meta = json_parse_as(e->metadata_json, JSON_OBJECT);
	json_object_set_new(data, "metadata", meta ? meta : json_object());
	/* the event's detail fields follow; they never replace the common ones above */
	json_t *detail = json_parse_as(e->ev.detail, JSON_OBJECT);
	if (detail) {
		const char *k;
		json_t *v;
		json_object_foreach(detail, k, v)
		{
			if (json_object_get(data, k) == NULL)
				json_object_set(data, k, v);
		}
		json_decref(detail);
	}

	json_t *root = json_object();
	json_object_set_new(root, "id", json_string(id));
	json_object_set_new(root, "type", json_string(e->ev.type ? e->ev.type : ""));
	json_object_set_new(root, "created_at", json_string(created));
	json_object_set_new(root, "data", data);
	char *s = json_dumps(root, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(root);
	if (s == NULL)
		log_panic("webhook: json_dumps failed (out of memory?)");
	return s;
}

/* ---- the sender ---- */

/* A claimed batch; freed when its last job is done (or dropped at stop). */
struct webhook_batch {
	struct store_webhook_job *v;
	size_t n, left;
};
struct webhook_item {
	struct webhook_batch *b;
	size_t i;
};

struct events_webhooks {
	struct store *st;
	bool allow_private;
	unsigned timeout_s, workers;
	uint32_t retry[EVENTS_WEBHOOK_RETRY_MAX];
	size_t n_retry;
	int64_t (*clock)(void);
	char *user_agent;

	pthread_mutex_t mu;
	pthread_cond_t kick_cond; /* dispatcher: a wake-up or a worker became idle */
	pthread_cond_t work_cond; /* workers: a job was queued, or stop */
	bool stopping, kicked;
	struct webhook_item *q; /* ring of 'workers' entries */
	unsigned q_head, q_len;
	unsigned busy; /* jobs queued or running */

	pthread_t dispatcher;
	bool dispatcher_started;
	pthread_t *threads;
	unsigned n_threads;
};

static int64_t
webhook_now(const struct events_webhooks *w)
{
	return w->clock ? w->clock() : (int64_t)time(NULL);
}

/* Called with w->mu held. */
static void
batch_release(struct webhook_batch *b)
{
	if (--b->left > 0)
		return;
	store_webhook_jobs_free(&b->v, b->n);
	free(b);
}

struct post_result {
	int status; /* HTTP status, 0 = none */
	char error[CURL_ERROR_SIZE + 32];
	bool delivered;
};

static size_t
post_sink(char *p, size_t size, size_t nmemb, void *arg)
{
	size_t *total = arg;
	size_t n = size * nmemb;
	if (n > WEBHOOK_RESPONSE_MAX - *total)
		return 0; /* enough: aborts the transfer (CURLE_WRITE_ERROR) */
	*total += n;
	return n;
}

static void
webhook_post(const struct events_webhooks *w, const struct url_target *t, int64_t event_id,
             const char *sig, const char *body, struct post_result *r)
{
	CURL *c = curl_easy_init();
	if (c == NULL) {
		(void)snprintf(r->error, sizeof r->error, "curl_easy_init failed");
		return;
	}
	char line[WEBHOOK_ADDR_MAX + 600];
	struct curl_slist *resolve = NULL, *hdrs = NULL;
	if (!t->host_is_ip) {
		bool v6 = strchr(t->addr, ':') != NULL;
		(void)snprintf(line, sizeof line, "%s:%u:%s%s%s", t->host, t->port, v6 ? "[" : "",
		               t->addr, v6 ? "]" : "");
		resolve = curl_slist_append(resolve, line);
	}
	hdrs = curl_slist_append(hdrs, "Content-Type: application/json");
	hdrs = curl_slist_append(hdrs, "Expect:");
	(void)snprintf(line, sizeof line, "Lightr-Event-Id: evt_%" PRId64, event_id);
	hdrs = curl_slist_append(hdrs, line);
	(void)snprintf(line, sizeof line, "Lightr-Signature: %s", sig);
	hdrs = curl_slist_append(hdrs, line);

	char errbuf[CURL_ERROR_SIZE] = "";
	size_t got = 0;
	curl_easy_setopt(c, CURLOPT_URL, t->url);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(c, CURLOPT_PROXY, ""); /* a proxy would bypass the address pinning */
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, (long)w->timeout_s);
	curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 1L);
	curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 2L);
	if (resolve)
		curl_easy_setopt(c, CURLOPT_RESOLVE, resolve);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
	if (w->user_agent)
		curl_easy_setopt(c, CURLOPT_USERAGENT, w->user_agent);
	curl_easy_setopt(c, CURLOPT_POST, 1L);
	curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(body));
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, post_sink);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &got);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);

	CURLcode cc = curl_easy_perform(c);
	long code = 0;
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
	r->status = code > 0 && code < 1000 ? (int)code : 0;
	bool ok2xx = r->status >= 200 && r->status <= 299;
	if (cc == CURLE_OK || (cc == CURLE_WRITE_ERROR && ok2xx)) {
		/* a 2xx whose long body we stopped reading is still an answer */
		if (ok2xx)
			r->delivered = true;
		else
			(void)snprintf(r->error, sizeof r->error, "HTTP %d", r->status);
	} else if (cc == CURLE_OPERATION_TIMEDOUT) {
		(void)snprintf(r->error, sizeof r->error, "timeout");
	} else if (cc == CURLE_WRITE_ERROR) {
		(void)snprintf(r->error, sizeof r->error, "HTTP %d, response too long", r->status);
	} else {
		(void)snprintf(r->error, sizeof r->error, "%s",
		               errbuf[0] ? errbuf : curl_easy_strerror(cc));
	}
	curl_easy_cleanup(c);
	curl_slist_free_all(resolve);
	curl_slist_free_all(hdrs);
}

/* One attempt of one job, recorded in the store. */
static void
webhook_attempt(struct events_webhooks *w, const struct store_webhook_job *j)
{
	int64_t t0 = clock_mono_ms();
	char *body = events_event_json(&j->event);
	char sig[EVENTS_SIGNATURE_MAX];
	events_webhook_sign(j->secret, webhook_now(w), body, strlen(body), sig);
	struct post_result pr = {0};
	struct url_target *t = xcalloc(1, sizeof *t);
	struct err uerr = {0};
	if (url_resolve(j->url, w->allow_private, t, &uerr) < 0)
		(void)snprintf(pr.error, sizeof pr.error, "%s", uerr.msg);
	else
		webhook_post(w, t, j->event_id, sig, body, &pr);
	free(body);

	int64_t now = webhook_now(w);
	struct store_webhook_result r = {
	    .delivery_id = j->delivery_id,
	    .status_code = pr.status,
	    .error = pr.delivered ? NULL : pr.error,
	    .duration_ms = clock_mono_ms() - t0,
	};
	const char *what;
	if (pr.delivered) {
		r.outcome = STORE_WEBHOOK_DELIVERED;
		what = "delivered";
	} else if (j->attempts < w->n_retry) {
		r.outcome = STORE_WEBHOOK_RETRY;
		r.next_attempt = now + w->retry[j->attempts];
		what = "deferred";
	} else {
		r.outcome = STORE_WEBHOOK_FAILED;
		what = "failed";
	}
	char host[128], esc[160], emsg[200] = "";
	log_escape(t->host[0] ? t->host : "?", host, sizeof host);
	if (!pr.delivered)
		(void)snprintf(emsg, sizeof emsg, " error=\"%s\"",
		               log_escape(pr.error, esc, sizeof esc));
	log_info("webhook %" PRId64 " %s webhook=%" PRId64 " event=%" PRId64
	         " host=%s attempt=%u status=%d ms=%" PRId64 "%s",
	         j->delivery_id, what, j->webhook_id, j->event_id, host, j->attempts + 1, pr.status,
	         r.duration_ms, emsg);
	free(t);
	struct err err = {0};
	if (store_webhook_record(w->st, &r, now, &err) < 0)
		log_error("webhook %" PRId64 " record failed code=%d msg=\"%s\"", j->delivery_id,
		          err.code, err.msg);
}

static void *
webhook_worker(void *arg)
{
	struct events_webhooks *w = arg;
	pthread_mutex_lock(&w->mu);
	for (;;) {
		while (!w->stopping && w->q_len == 0)
			pthread_cond_wait(&w->work_cond, &w->mu);
		if (w->stopping)
			break;
		struct webhook_item it = w->q[w->q_head];
		w->q_head = (w->q_head + 1) % w->workers;
		w->q_len--;
		pthread_mutex_unlock(&w->mu);
		webhook_attempt(w, &it.b->v[it.i]);
		pthread_mutex_lock(&w->mu);
		batch_release(it.b);
		w->busy--;
		w->kicked = true;
		pthread_cond_signal(&w->kick_cond);
	}
	pthread_mutex_unlock(&w->mu);
	store_thread_done(w->st);
	return NULL;
}

/* Waits on kick_cond for at most ms, unless kicked or stopping; w->mu held. */
static void
webhook_wait(struct events_webhooks *w, int64_t ms)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	ts.tv_sec += (time_t)(ms / 1000);
	ts.tv_nsec += (long)(ms % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	while (!w->kicked && !w->stopping) {
		if (pthread_cond_timedwait(&w->kick_cond, &w->mu, &ts) == ETIMEDOUT)
			break;
	}
}

static void *
webhook_dispatcher(void *arg)
{
	struct events_webhooks *w = arg;
	struct err err;
	pthread_mutex_lock(&w->mu);
	while (!w->stopping) {
		unsigned idle = w->workers - w->busy;
		w->kicked = false;
		pthread_mutex_unlock(&w->mu);

		int64_t now = webhook_now(w);
		struct store_webhook_job *v = NULL;
		size_t n = 0;
		if (idle > 0) {
			err_clear(&err);
			if (store_webhook_claim(w->st, now, idle, &v, &n, &err) < 0) {
				log_error("webhook - claim failed code=%d msg=\"%s\"", err.code,
				          err.msg);
				v = NULL;
				n = 0;
			}
		}
		int64_t wait_ms = WEBHOOK_POLL_MS;
		int64_t next = 0;
		err_clear(&err);
		if (n < idle && store_webhook_next_due(w->st, &next, &err) == 0 && next > 0) {
			int64_t d = (next - webhook_now(w)) * 1000;
			if (d < wait_ms)
				wait_ms = d < WEBHOOK_POLL_MIN_MS ? WEBHOOK_POLL_MIN_MS : d;
		}

		pthread_mutex_lock(&w->mu);
		if (n > 0) {
			if (n > idle) /* never more than asked for; keep the ring bounded */
				log_panic("webhook claim returned %zu jobs for %u slots", n, idle);
			struct webhook_batch *b = xcalloc(1, sizeof *b);
			b->v = v;
			b->n = b->left = n;
			for (size_t i = 0; i < n; i++) {
				unsigned at = (w->q_head + w->q_len) % w->workers;
				w->q[at] = (struct webhook_item){b, i};
				w->q_len++;
				w->busy++;
			}
			pthread_cond_broadcast(&w->work_cond);
			continue; /* look again at once: more may be due */
		}
		webhook_wait(w, wait_ms);
	}
	pthread_mutex_unlock(&w->mu);
	store_thread_done(w->st);
	return NULL;
}

static void
webhooks_join_free(struct events_webhooks *w)
{
	pthread_mutex_lock(&w->mu);
	w->stopping = true;
	pthread_cond_broadcast(&w->kick_cond);
	pthread_cond_broadcast(&w->work_cond);
	pthread_mutex_unlock(&w->mu);
	if (w->dispatcher_started)
		pthread_join(w->dispatcher, NULL);
	for (unsigned i = 0; i < w->n_threads; i++)
		pthread_join(w->threads[i], NULL);
	/* jobs claimed but never started are still 'sending': free them and put them back */
	bool left = w->q_len > 0;
	while (w->q_len > 0) {
		batch_release(w->q[w->q_head].b);
		w->q_head = (w->q_head + 1) % w->workers;
		w->q_len--;
	}
	if (left) {
		struct err err = {0};
		if (store_webhook_recover(w->st, webhook_now(w), &err) < 0)
			log_error("webhook - recover at stop failed code=%d msg=\"%s\"", err.code,
			          err.msg);
	}
	pthread_mutex_destroy(&w->mu);
	pthread_cond_destroy(&w->kick_cond);
	pthread_cond_destroy(&w->work_cond);
	free(w->threads);
	free(w->q);
	free(w->user_agent);
	free(w);
}

int
events_webhooks_start(const struct events_webhook_config *cfg, struct events_webhooks **w_r,
                      struct err *err)
{
	*w_r = NULL;
	if (cfg == NULL || cfg->st == NULL)
		return err_set(err, 0, "webhooks: no store");
	if (cfg->retry != NULL && cfg->n_retry > EVENTS_WEBHOOK_RETRY_MAX)
		return err_set(err, 0, "webhooks: more than %d retries", EVENTS_WEBHOOK_RETRY_MAX);
	if (cfg->workers > WEBHOOK_WORKERS_MAX)
		return err_set(err, 0, "webhooks: more than %d workers", WEBHOOK_WORKERS_MAX);
	if (curl_ready(err) < 0)
		return -1;
	struct events_webhooks *w = xcalloc(1, sizeof *w);
	w->st = cfg->st;
	w->allow_private = cfg->allow_private;
	w->timeout_s = cfg->timeout_s ? cfg->timeout_s : WEBHOOK_TIMEOUT_DEF;
	w->workers = cfg->workers ? cfg->workers : WEBHOOK_WORKERS_DEF;
	const uint32_t *retry = cfg->retry ? cfg->retry : webhook_retry_default;
	w->n_retry = cfg->retry ? cfg->n_retry
	                        : sizeof webhook_retry_default / sizeof webhook_retry_default[0];
	memcpy(w->retry, retry, w->n_retry * sizeof w->retry[0]);
	w->clock = cfg->clock;
	w->user_agent = cfg->user_agent ? xstrdup(cfg->user_agent) : NULL;
	w->q = xcalloc(w->workers, sizeof w->q[0]);
	w->threads = xcalloc(w->workers, sizeof w->threads[0]);

	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_mutex_init(&w->mu, NULL);
	pthread_cond_init(&w->kick_cond, &ca);
	pthread_cond_init(&w->work_cond, NULL);
	pthread_condattr_destroy(&ca);

	if (store_webhook_recover(w->st, webhook_now(w), err) < 0) {
		webhooks_join_free(w);
		return -1;
	}
	for (unsigned i = 0; i < w->workers; i++) {
		int e = pthread_create(&w->threads[i], NULL, webhook_worker, w);
		if (e != 0) {
			webhooks_join_free(w);
			return err_set_errno(err, 0, e, "webhooks: pthread_create");
		}
		w->n_threads++;
	}
	int e = pthread_create(&w->dispatcher, NULL, webhook_dispatcher, w);
	if (e != 0) {
		webhooks_join_free(w);
		return err_set_errno(err, 0, e, "webhooks: pthread_create");
	}
	w->dispatcher_started = true;
	log_info("webhook - started workers=%u timeout=%u retries=%zu allow_private=%s", w->workers,
	         w->timeout_s, w->n_retry, w->allow_private ? "yes" : "no");
	*w_r = w;
	return 0;
}

void
events_webhooks_wake(struct events_webhooks *w)
{
	if (w == NULL)
		return;
	pthread_mutex_lock(&w->mu);
	w->kicked = true;
	pthread_cond_signal(&w->kick_cond);
	pthread_mutex_unlock(&w->mu);
}

void
events_webhooks_stop(struct events_webhooks **wp)
{
	struct events_webhooks *w = *wp;
	if (w == NULL)
		return;
	*wp = NULL;
	webhooks_join_free(w);
	log_info("webhook - stopped");
}

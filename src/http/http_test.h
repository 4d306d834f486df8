/* Test-only helpers shared by the REST API unit tests (src/http/routes_*_test.c): a store in a
 * temporary directory, API keys made directly in it, and one request through http_api_handle
 * without libmicrohttpd. Included ONLY by *_test.c files, never by production code or another
 * header; every function is static inline, like tests/harness/test.h. Setup failures print a
 * line and exit(1): a test cannot go on without its store. */
#ifndef LIGHTR_HTTP_TEST_H
#define LIGHTR_HTTP_TEST_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "auth/passwd.h"
#include "http/http.h"
#include "store/store.h"
#include "test.h"
#include "test_tmp.h"
#include "util/buf.h"

/* Opens a new store "lightr.db" in a fresh temporary directory named after name (its path into
 * tmpdir[n]) and adds the given domains (NULL-terminated list, or NULL for none). */
static inline struct store *
http_test_store_open(char *tmpdir, size_t n, const char *name, const char *const *domains)
{
	struct store *st = NULL;
	char path[128];
	struct err err = {0};
	test_tmpdir(tmpdir, n, name);
	(void)snprintf(path, sizeof path, "%s/lightr.db", tmpdir);
	int rc = store_open(path, &st, &err);
	for (size_t i = 0; rc == 0 && domains && domains[i]; i++)
		rc = store_domain_add(st, domains[i], &err);
	if (rc < 0) {
		fprintf(stderr, "setup: %s\n", err.msg);
		exit(1);
	}
	return st;
}

/* Frees the API and the store and removes the temporary directory. */
static inline void
http_test_teardown(struct http_api **api, struct store **st, const char *tmpdir)
{
	http_api_free(api);
	store_close(st);
	test_tmpdir_remove(tmpdir);
}

/* Makes a key (domain NULL = admin) created at `created` directly in the store; its token into
 * tok[AUTH_APIKEY_TOKEN_SIZE or more]. Returns its id, 0 (with a line on stderr) on failure. */
static inline int64_t
http_test_make_key(struct store *st, const char *domain, int64_t created, char *tok)
{
	char hash[AUTH_APIKEY_HASH_MAX], prefix[AUTH_APIKEY_PREFIX_SIZE];
	auth_apikey_new(tok, hash, prefix);
	int64_t id = 0;
	struct err err = {0};
	if (store_apikey_add(st, hash, prefix, "test", domain, created, &id, &err) < 0)
		fprintf(stderr, "  store_apikey_add: %s\n", err.msg);
	return id;
}

/* One request. target is the path, optionally followed by "?k=v&k=v" (no percent-decoding). */
struct http_test_req {
	const char *tok; /* NULL = no Authorization header */
	const char *method;
	const char *target;
	const char *ctype;  /* NULL = application/json when there is a body */
	const char *body;   /* NULL = none */
	const char *ua;     /* User-Agent, may be NULL */
	const char *client; /* NULL = "127.0.0.1" */
};

/* One answer, kept whole; the caller owns body (buf_deinit). */
struct http_test_answer {
	unsigned status;
	const char *ctype;
	char location[4096];
	struct buf body;
};

static inline void
http_test_request(struct http_api *api, const struct http_test_req *rq,
                  struct http_test_answer *out)
{
	char path[2048], qs[2048] = "", auth[160];
	struct http_kv q[HTTP_QUERY_MAX];
	size_t nq = 0;
	const char *qm = strchr(rq->target, '?');
	(void)snprintf(path, sizeof path, "%.*s",
	               (int)(qm ? (size_t)(qm - rq->target) : strlen(rq->target)), rq->target);
	if (qm)
		(void)snprintf(qs, sizeof qs, "%s", qm + 1);
	for (char *save = NULL, *t = strtok_r(qs, "&", &save); t && nq < HTTP_QUERY_MAX;
	     t = strtok_r(NULL, "&", &save)) {
		char *eq = strchr(t, '=');
		if (eq)
			*eq = '\0';
		q[nq++] = (struct http_kv){t, eq ? eq + 1 : ""};
	}
	if (rq->tok)
		(void)snprintf(auth, sizeof auth, "Bearer %s", rq->tok);
	struct http_request r = {
	    .method = rq->method,
	    .path = path,
	    .query = q,
	    .n_query = nq,
	    .authorization = rq->tok ? auth : NULL,
	    .content_type = rq->ctype  ? rq->ctype
	                    : rq->body ? "application/json"
	                               : NULL,
	    .user_agent = rq->ua,
	    .body = (const unsigned char *)rq->body,
	    .body_len = rq->body ? strlen(rq->body) : 0,
	    .client = rq->client ? rq->client : "127.0.0.1",
	};
	struct http_response resp;
	memset(&resp, 0, sizeof resp);
	buf_init(&resp.body, 0);
	http_api_handle(api, &r, &resp);
	out->status = resp.status;
	out->ctype = resp.content_type;
	(void)snprintf(out->location, sizeof out->location, "%s", resp.location);
	out->body = resp.body;
}

/* One request; returns the status and, when j_r, the parsed body (NULL when empty or not JSON,
 * the latter with a line on stderr). A 204 with a body is reported on stderr. */
static inline unsigned
http_test_call(struct http_api *api, const struct http_test_req *rq, json_t **j_r)
{
	struct http_test_answer a;
	http_test_request(api, rq, &a);
	if (j_r) {
		*j_r =
		    a.body.len ? json_loadb((const char *)a.body.data, a.body.len, 0, NULL) : NULL;
		if (a.body.len && *j_r == NULL)
			fprintf(stderr, "  unparsable answer: %s\n", buf_cstr(&a.body));
	}
	if (a.status == 204 && a.body.len != 0)
		fprintf(stderr, "  204 with a body\n");
	buf_deinit(&a.body);
	return a.status;
}

/* The string member key of o, or NULL. */
static inline const char *
http_test_jstr(const json_t *o, const char *key)
{
	return json_string_value(json_object_get(o, key));
}

/* The status of a request, checking the error code (and field when not NULL) of its answer. */
static inline unsigned
http_test_err(struct http_api *api, const struct http_test_req *rq, const char *code,
              const char *field)
{
	json_t *j = NULL;
	unsigned s = http_test_call(api, rq, &j);
	json_t *e = json_object_get(j, "error");
	CHECK_STR(http_test_jstr(e, "code"), code);
	if (field)
		CHECK_STR(http_test_jstr(e, "field"), field);
	json_decref(j);
	return s;
}

/* The number of items of the list answered at target (-1 unless 200). */
static inline long long
http_test_list_len(struct http_api *api, const char *tok, const char *target)
{
	json_t *j;
	if (http_test_call(api,
	                   &(struct http_test_req){.tok = tok, .method = "GET", .target = target},
	                   &j) != 200) {
		json_decref(j);
		return -1;
	}
	long long n = (long long)json_array_size(json_object_get(j, "data"));
	json_decref(j);
	return n;
}

#endif

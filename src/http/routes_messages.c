/* Sending through the API (issue 6): POST /api/v1/messages (compose from fields or a template),
 * POST /api/v1/messages/raw (an RFC 5322 message plus envelope recipients), GET
 * /api/v1/messages/{id} (per-recipient status and history).
 *
 * A send is checked whole before anything is stored: the From domain must be ours and in the
 * key's scope, every address must parse, the recipients are resolved (local mailbox, remote,
 * or rejected with a reason). The accepted ones go through the submission path (server/, via
 * hooks->submit: DKIM, VERP, queue) in one commit together with the API record and the
 * idempotency key; 202 comes only after that commit.
 *
 * Idempotency-Key (at most 255 printable ASCII characters): the first answer for (API key,
 * Idempotency-Key) is stored with the message; the same key within 24 h gets that answer again
 * (with Idempotent-Replayed: true) and sends nothing. While the first request is still being
 * processed in this process, a second one with the same key gets 409 conflict. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "http_private.h"
#include "events/events.h"
#include "tmpl/tmpl.h"
#include "util/base64.h"
#include "util/log.h"
#include "util/rand.h"
#include "util/xalloc.h"

#define MSG_IDEM_KEY_MAX     255
#define MSG_IDEM_WINDOW      86400 /* seconds */
#define MSG_SUBJECT_MAX      (16 * 1024)
#define MSG_NAME_MAX         256 /* display name, bytes */
#define MSG_HEADER_VALUE_MAX (8 * 1024)
#define MSG_FILENAME_MAX     255
#define MSG_TAGS_MAX         20
#define MSG_TAG_LEN_MAX      128
#define MSG_METADATA_MAX     (8 * 1024) /* serialised bytes */
#define MSG_PUBLIC_ID_LEN    26
#define MSG_INFLIGHT_MAX     1024

/* ---- idempotency keys in flight ---- */

struct inflight {
	pthread_mutex_t mu;
	size_t n;
	struct {
		int64_t key_id;
		char key[MSG_IDEM_KEY_MAX + 1];
	} v[MSG_INFLIGHT_MAX];
};

static pthread_mutex_t inflight_init_mu = PTHREAD_MUTEX_INITIALIZER;

static struct inflight *
inflight_of(struct http_api *api)
{
	pthread_mutex_lock(&inflight_init_mu);
	if (api->inflight == NULL) {
		struct inflight *f = xcalloc(1, sizeof *f);
		pthread_mutex_init(&f->mu, NULL);
		api->inflight = f;
	}
	pthread_mutex_unlock(&inflight_init_mu);
	return api->inflight;
}

/* false when (key_id, key) is already in flight or the table is full */
static bool
inflight_enter(struct http_api *api, int64_t key_id, const char *key)
{
	struct inflight *f = inflight_of(api);
	bool ok = f->n < MSG_INFLIGHT_MAX;
	pthread_mutex_lock(&f->mu);
	for (size_t i = 0; i < f->n && ok; i++)
		ok = !(f->v[i].key_id == key_id && strcmp(f->v[i].key, key) == 0);
	if (ok) {
		f->v[f->n].key_id = key_id;
		(void)snprintf(f->v[f->n].key, sizeof f->v[f->n].key, "%s", key);
		f->n++;
	}
	pthread_mutex_unlock(&f->mu);
	return ok;
}

static void
inflight_leave(struct http_api *api, int64_t key_id, const char *key)
{
	struct inflight *f = inflight_of(api);
	pthread_mutex_lock(&f->mu);
	for (size_t i = 0; i < f->n; i++)
		if (f->v[i].key_id == key_id && strcmp(f->v[i].key, key) == 0) {
			f->v[i] = f->v[--f->n];
			break;
		}
	pthread_mutex_unlock(&f->mu);
}

void
http_messages_cleanup(struct http_api *api)
{
	struct inflight *f = api->inflight;
	if (f == NULL)
		return;
	pthread_mutex_destroy(&f->mu);
	free(f);
	api->inflight = NULL;
}

/* ---- one send being assembled ---- */

struct msg_rcpt {
	char address[ADDR_MAX + 1];
	char *name; /* display name or NULL (heap) */
	const char *kind;
	const char *status;
	char error[120];
	bool local;
};

struct msg_send {
	char public_id[4 + MSG_PUBLIC_ID_LEN + 1]; /* "msg_..." */
	char from[ADDR_MAX + 1];
	char *from_name;
	const char *from_domain; /* points into from */
	struct msg_rcpt *rcpts;  /* to, cc, bcc in request order */
	size_t n_rcpts;
	struct compose_addr *reply_to;
	size_t n_reply_to;
	json_t *tags, *metadata; /* borrowed from the body */
	struct buf msg;          /* the message to send */
	char message_id[TMPL_MSGID_MAX];
	const char *subject;
	char *subject_owned;
};

static void
msg_send_deinit(struct msg_send *s)
{
	free(s->from_name);
	for (size_t i = 0; i < s->n_rcpts; i++)
		free(s->rcpts[i].name);
	free(s->rcpts);
	for (size_t i = 0; i < s->n_reply_to; i++) {
		free((char *)s->reply_to[i].name);
		free((char *)s->reply_to[i].email);
	}
	free(s->reply_to);
	free(s->subject_owned);
	buf_deinit(&s->msg);
}

/* "addr", "Name <addr>" or {"name": ..., "email": ...} into address (lower-cased domain) and a
 * heap display name (NULL when none). */
static int
msg_parse_addr(struct http_ctx *c, const json_t *v, const char *field, char *address, char **name_r)
{
	const char *email = NULL, *name = NULL;
	char *name_buf = NULL, *email_buf = NULL;
	*name_r = NULL;
	if (json_is_object(v)) {
		static const char *const allowed[] = {"name", "email", NULL};
		char f2[96];
		if (http_json_only(c, v, allowed) < 0)
			return -1;
		(void)snprintf(f2, sizeof f2, "%s.email", field);
		if (http_json_str_at(c, json_object_get(v, "email"), f2, true, ADDR_MAX, &email) <
		    0)
			return -1;
		(void)snprintf(f2, sizeof f2, "%s.name", field);
		if (http_json_str_at(c, json_object_get(v, "name"), f2, false, MSG_NAME_MAX,
		                     &name) < 0)
			return -1;
	} else {
		if (http_json_str_at(c, v, field, true, ADDR_MAX + MSG_NAME_MAX + 3, &email) < 0)
			return -1;
		const char *lt = strrchr(email, '<');
		size_t len = strlen(email);
		if (lt && email[len - 1] == '>') { /* Name <addr>, the name maybe quoted */
			size_t nlen = (size_t)(lt - email);
			while (nlen > 0 && email[nlen - 1] == ' ')
				nlen--;
			size_t q = nlen >= 2 && email[0] == '"' && email[nlen - 1] == '"';
			name = name_buf = xstrndup(email + q, nlen - 2 * q);
			email = email_buf = xstrndup(lt + 1, len - 2 - (size_t)(lt - email));
		}
	}
	int rc = 0;
	if (!http_addr_norm(email, false, address))
		rc = http_error(c, 422, "invalid", field, "%s: not a valid email address", field);
	else if (name && strpbrk(name, "\r\n"))
		rc = http_error(c, 422, "invalid", field, "%s: line breaks in a name", field);
	else
		*name_r = name && *name ? xstrdup(name) : NULL;
	free(name_buf);
	free(email_buf);
	return rc;
}

/* Appends the addresses of member key (a string, an object or an array of them). */
static int
msg_parse_rcpts(struct http_ctx *c, const json_t *body, const char *key, struct msg_send *s)
{
	const json_t *v = json_object_get(body, key);
	if (v == NULL || json_is_null(v))
		return 0;
	size_t n = json_is_array(v) ? json_array_size(v) : 1;
	if (s->n_rcpts + n > COMPOSE_MAX_RCPTS)
		return http_error(c, 422, "out_of_range", key, "at most %d recipients",
		                  COMPOSE_MAX_RCPTS);
	s->rcpts = xrealloc(s->rcpts, (s->n_rcpts + n) * sizeof *s->rcpts);
	for (size_t i = 0; i < n; i++) {
		const json_t *e = json_is_array(v) ? json_array_get(v, i) : v;
		char field[64];
		if (json_is_array(v))
			(void)snprintf(field, sizeof field, "%s[%zu]", key, i);
		else
			(void)snprintf(field, sizeof field, "%s", key);
		struct msg_rcpt *r = &s->rcpts[s->n_rcpts];
		memset(r, 0, sizeof *r);
		if (msg_parse_addr(c, e, field, r->address, &r->name) < 0)
			return -1;
		r->kind = key;
		s->n_rcpts++;
	}
	return 0;
}

/* Resolves every recipient; duplicates (same address) keep the first. Returns the number
 * accepted. */
static int
msg_resolve(struct http_ctx *c, struct msg_send *s, size_t size_hint, size_t *n_ok_r)
{
	size_t n_ok = 0;
	for (size_t i = 0; i < s->n_rcpts; i++) {
		struct msg_rcpt *r = &s->rcpts[i];
		bool dup = false;
		for (size_t j = 0; j < i && !dup; j++)
			dup = strcasecmp(s->rcpts[j].address, r->address) == 0;
		if (dup) {
			r->status = "duplicate";
			continue;
		}
		struct store_rcpt res;
		struct err err;
		if (store_rcpt_resolve(c->st, r->address, c->api->lim.subaddress_sep, size_hint,
		                       &res, &err) < 0)
			return http_store_error(c, &err, "recipient lookup");
		switch (res.status) {
		case STORE_RCPT_OK: {
			bool remote = false;
			for (size_t t = 0; t < res.n_targets; t++)
				remote |= res.targets[t].remote;
			r->local = true;
			r->status = remote ? "queued" : "delivered";
			break;
		}
		case STORE_RCPT_REMOTE: {
			/* the sending domain's suppression list (issue 7): not attempted */
			int hit = store_suppress_check(c->st, s->from_domain, r->address,
			                               c->api->lim.subaddress_sep, NULL, &err);
			if (hit < 0) {
				store_rcpt_deinit(&res);
				return http_store_error(c, &err, "suppression check");
			}
			r->status = hit ? "suppressed" : "queued";
			if (hit)
				(void)snprintf(r->error, sizeof r->error,
				               "on the suppression list");
			break;
		}
		case STORE_RCPT_UNKNOWN:
			r->status = "rejected";
			(void)snprintf(r->error, sizeof r->error, "no such mailbox here");
			break;
		case STORE_RCPT_DISABLED:
			r->status = "rejected";
			(void)snprintf(r->error, sizeof r->error, "mailbox disabled");
			break;
		case STORE_RCPT_OVER_QUOTA:
			r->status = "rejected";
			(void)snprintf(r->error, sizeof r->error, "mailbox full");
			break;
		}
		store_rcpt_deinit(&res);
		if (strcmp(r->status, "rejected") != 0)
			n_ok++;
	}
	*n_ok_r = n_ok;
	return 0;
}

/* The From address: ours and in scope. */
static int
msg_check_from(struct http_ctx *c, struct msg_send *s, const char *field)
{
	s->from_domain = strchr(s->from, '@') + 1;
	if (http_scope_domain(c, s->from_domain) < 0)
		return -1;
	struct store_domain d;
	struct err err;
	if (store_domain_get(c->st, s->from_domain, &d, &err) < 0) {
		if (err.code == STORE_ENOTFOUND)
			return http_error(c, 422, "invalid", field,
			                  "%s: %s is not a domain of this server", field,
			                  s->from_domain);
		return http_store_error(c, &err, "domain lookup");
	}
	store_domain_deinit(&d);
	return 0;
}

static int
msg_tags_metadata(struct http_ctx *c, const json_t *body, struct msg_send *s)
{
	json_t *tags = json_object_get(body, "tags");
	if (tags && !json_is_null(tags)) {
		if (!json_is_array(tags))
			return http_error(c, 422, "invalid_type", "tags",
			                  "tags must be an array of strings");
		if (json_array_size(tags) > MSG_TAGS_MAX)
			return http_error(c, 422, "out_of_range", "tags", "at most %d tags",
			                  MSG_TAGS_MAX);
		for (size_t i = 0; i < json_array_size(tags); i++) {
			char f[32];
			const char *t;
			(void)snprintf(f, sizeof f, "tags[%zu]", i);
			if (http_json_str_at(c, json_array_get(tags, i), f, true, MSG_TAG_LEN_MAX,
			                     &t) < 0)
				return -1;
		}
		s->tags = tags;
	}
	json_t *md = json_object_get(body, "metadata");
	if (md && !json_is_null(md)) {
		if (!json_is_object(md))
			return http_error(c, 422, "invalid_type", "metadata",
			                  "metadata must be an object");
		char *text = json_dumps(md, JSON_COMPACT);
		size_t len = text ? strlen(text) : 0;
		free(text);
		if (len > MSG_METADATA_MAX)
			return http_error(c, 422, "too_long", "metadata",
			                  "metadata is larger than %d bytes", MSG_METADATA_MAX);
		s->metadata = md;
	}
	bool b;
	if (http_json_bool(c, body, "track_opens", &b, NULL) < 0 ||
	    http_json_bool(c, body, "track_clicks", &b, NULL) < 0)
		return -1;
	return 0;
}

/* ---- composing from fields ---- */

struct msg_parts {
	const char *subject, *text, *html;
	struct buf r_subject, r_text, r_html; /* rendered template parts */
};

static int
msg_render_part(struct http_ctx *c, const char *src, bool html, const json_t *vars, struct buf *out,
                const char **res, const char *field)
{
	*res = NULL;
	if (src == NULL)
		return 0;
	struct tmpl_error te;
	struct tmpl *t = tmpl_compile(src, strlen(src), html, &te);
	if (t == NULL)
		return http_error(c, 422, "template_syntax", field,
		                  "template %s: line %u, column %u: %s", field, te.line, te.column,
		                  te.msg);
	struct err err;
	int rc = tmpl_render(t, vars, out, NULL, &err);
	tmpl_free(&t);
	if (rc < 0)
		return http_error(c, 422, "too_long", field, "rendered %s: %s", field, err.msg);
	*res = buf_cstr(out);
	return 0;
}

static int
msg_template(struct http_ctx *c, const json_t *body, struct msg_send *s, struct msg_parts *p)
{
	const char *name;
	if (http_json_str(c, body, "template", false, 64, &name) < 0)
		return -1;
	const json_t *vars = json_object_get(body, "variables");
	if (name == NULL) {
		if (vars && !json_is_null(vars))
			return http_error(c, 422, "invalid", "variables",
			                  "variables need a template");
		return 0;
	}
	if (vars && !json_is_null(vars) && !json_is_object(vars))
		return http_error(c, 422, "invalid_type", "variables",
		                  "variables must be an object");
	if (p->text || p->html)
		return http_error(c, 422, "invalid", "template",
		                  "give either a template or text/html, not both");
	struct store_template t;
	struct err err;
	if (store_template_get(c->st, s->from_domain, name, &t, &err) < 0) {
		if (err.code == STORE_ENOTFOUND)
			return http_error(c, 422, "invalid", "template",
			                  "no template \"%s\" in domain %s", name, s->from_domain);
		return http_store_error(c, &err, "template lookup");
	}
	const char *subj = NULL;
	int rc = msg_render_part(c, p->subject ? NULL : t.subject, false, vars, &p->r_subject,
	                         &subj, "subject");
	if (rc == 0)
		rc = msg_render_part(c, t.text, false, vars, &p->r_text, &p->text, "text");
	if (rc == 0)
		rc = msg_render_part(c, t.html, true, vars, &p->r_html, &p->html, "html");
	if (rc == 0 && p->subject == NULL)
		p->subject = subj;
	store_template_deinit(&t);
	return rc;
}

static int
msg_attachments(struct http_ctx *c, const json_t *body, struct compose_attachment **att_r,
                size_t *n_r, struct buf **data_r)
{
	const json_t *a = json_object_get(body, "attachments");
	*att_r = NULL;
	*n_r = 0;
	*data_r = NULL;
	if (a == NULL || json_is_null(a))
		return 0;
	if (!json_is_array(a))
		return http_error(c, 422, "invalid_type", "attachments",
		                  "attachments must be an array");
	size_t n = json_array_size(a);
	if (n > COMPOSE_MAX_ATTACHMENTS)
		return http_error(c, 422, "out_of_range", "attachments", "at most %d attachments",
		                  COMPOSE_MAX_ATTACHMENTS);
	struct compose_attachment *att = xcalloc(n ? n : 1, sizeof *att);
	struct buf *data = xcalloc(n ? n : 1, sizeof *data);
	*att_r = att;
	*data_r = data;
	*n_r = n;
	for (size_t i = 0; i < n; i++)
		buf_init(&data[i], 0);
	for (size_t i = 0; i < n; i++) {
		const json_t *e = json_array_get(a, i);
		char f[64];
		(void)snprintf(f, sizeof f, "attachments[%zu]", i);
		if (!json_is_object(e))
			return http_error(c, 422, "invalid_type", f, "%s must be an object", f);
		static const char *const allowed[] = {"filename", "content_type", "content",
		                                      "content_id", NULL};
		if (http_json_only(c, e, allowed) < 0)
			return -1;
		char ff[96];
		const char *content;
		(void)snprintf(ff, sizeof ff, "%s.filename", f);
		if (http_json_str_at(c, json_object_get(e, "filename"), ff, true, MSG_FILENAME_MAX,
		                     &att[i].filename) < 0)
			return -1;
		(void)snprintf(ff, sizeof ff, "%s.content_type", f);
		if (http_json_str_at(c, json_object_get(e, "content_type"), ff, false, 255,
		                     &att[i].content_type) < 0)
			return -1;
		(void)snprintf(ff, sizeof ff, "%s.content_id", f);
		if (http_json_str_at(c, json_object_get(e, "content_id"), ff, false, 255,
		                     &att[i].content_id) < 0)
			return -1;
		(void)snprintf(ff, sizeof ff, "%s.content", f);
		if (http_json_str_at(c, json_object_get(e, "content"), ff, true, SIZE_MAX,
		                     &content) < 0)
			return -1;
		if (base64_decode(content, strlen(content), 1, &data[i]) < 0)
			return http_error(c, 422, "invalid", ff, "%s is not valid base64", ff);
		att[i].data = (const unsigned char *)data[i].data;
		att[i].len = data[i].len;
	}
	return 0;
}

/* ---- the send ---- */

static json_t *
msg_response(const struct msg_send *s, const char *public_id)
{
	json_t *rcpts = json_array();
	for (size_t i = 0; i < s->n_rcpts; i++) {
		const struct msg_rcpt *r = &s->rcpts[i];
		json_t *o = json_pack("{s:s,s:s,s:s}", "email", r->address, "kind", r->kind,
		                      "status", r->status);
		if (r->error[0])
			json_object_set_new(o, "error", json_string(r->error));
		json_array_append_new(rcpts, o);
	}
	return json_pack("{s:s,s:s,s:o}", "id", public_id, "message_id", s->message_id,
	                 "recipients", rcpts);
}

/* Stores and answers: resolution, the API record, the hook, 202. */
static void
msg_commit(struct http_ctx *c, struct msg_send *s, const char *subject, const char *idem)
{
	size_t n_ok = 0;
	if (msg_resolve(c, s, s->msg.len, &n_ok) < 0)
		return;
	if (n_ok == 0) {
		http_error(c, 422, "no_valid_recipients", "to",
		           "no recipient can be accepted (%s: %s)", s->rcpts[0].address,
		           s->rcpts[0].error[0] ? s->rcpts[0].error : "rejected");
		return;
	}
	/* Rate limits (issue 8): the recipients that will be attempted (queued or delivered, not
	 * rejected, suppressed or duplicate) count against the From domain's budgets; refused →
	 * 429 and nothing is sent. A send whose recipients were all suppressed sends nothing and
	 * takes nothing. */
	void *taken = NULL;
	size_t n_try = 0;
	for (size_t i = 0; i < s->n_rcpts; i++)
		if (strcmp(s->rcpts[i].status, "duplicate") != 0 &&
		    strcmp(s->rcpts[i].status, "rejected") != 0 &&
		    strcmp(s->rcpts[i].status, "suppressed") != 0)
			n_try++;
	if (n_try > 0 && c->hooks && c->hooks->limit_send) {
		struct http_limit_verdict v = {0};
		if (c->hooks->limit_send(c->hooks->ctx, s->from, s->from_domain, n_try, &taken,
		                         &v) != 0) {
			log_info("http %s limited from=<%s> recipients=%zu rule=%s", c->request_id,
			         s->from, n_try, v.rule ? v.rule : "-");
			http_error_limited(c, &v);
			return;
		}
	}
	const char *public_id = s->public_id;
	json_t *resp = msg_response(s, public_id);
	char *resp_text = json_dumps(resp, JSON_COMPACT);
	char *tags = s->tags ? json_dumps(s->tags, JSON_COMPACT) : NULL;
	char *md = s->metadata ? json_dumps(s->metadata, JSON_COMPACT) : NULL;
	struct store_api_rcpt *ar = xcalloc(s->n_rcpts, sizeof *ar);
	struct http_submit_rcpt *sr = xcalloc(s->n_rcpts, sizeof *sr);
	size_t n_ar = 0, n_sr = 0;
	for (size_t i = 0; i < s->n_rcpts; i++) {
		const struct msg_rcpt *r = &s->rcpts[i];
		if (strcmp(r->status, "duplicate") == 0)
			continue;
		ar[n_ar++] = (struct store_api_rcpt){.address = r->address,
		                                     .kind = r->kind,
		                                     .status = r->status,
		                                     .error = r->error[0] ? r->error : NULL};
		if (strcmp(r->status, "rejected") != 0 && strcmp(r->status, "suppressed") != 0)
			sr[n_sr++] =
			    (struct http_submit_rcpt){.address = r->address, .local = r->local};
	}
	struct store_api_send api = {.public_id = public_id,
	                             .apikey_id = c->key_id,
	                             .domain = s->from_domain,
	                             .from = s->from,
	                             .subject = subject,
	                             .message_id = s->message_id[0] ? s->message_id : NULL,
	                             .tags_json = tags,
	                             .metadata_json = md,
	                             .rcpts = ar,
	                             .n_rcpts = n_ar,
	                             .idempotency_key = idem,
	                             .response = resp_text,
	                             .created = c->now};
	struct http_submit sub = {.from = s->from,
	                          .msg = (const unsigned char *)s->msg.data,
	                          .len = s->msg.len,
	                          .rcpts = sr,
	                          .n_rcpts = n_sr,
	                          .api = &api,
	                          .request_id = c->request_id,
	                          .limit_taken = taken};
	int64_t qid = 0;
	struct err err = {0};
	int rc = c->hooks && c->hooks->submit
	             ? c->hooks->submit(c->hooks->ctx, &sub, &qid, &err)
	             : err_set(&err, STORE_EINTERNAL, "sending is not available here");
	if (taken && rc == 0 && c->hooks->limit_done)
		c->hooks->limit_done(c->hooks->ctx, taken);
	else if (taken && rc != 0 && c->hooks->limit_refund)
		c->hooks->limit_refund(c->hooks->ctx, taken);
	if (rc == 0) {
		log_info("http %s sent id=%s from=<%s> size=%zu recipients=%zu queue=%lld",
		         c->request_id, public_id, s->from, s->msg.len, n_sr, (long long)qid);
		http_reply(c, 202, resp);
		resp = NULL;
	} else if (err.code == STORE_EEXIST && idem) {
		char *stored = NULL;
		struct err e2;
		if (store_idempotency_get(c->st, c->key_id, idem, c->now - MSG_IDEM_WINDOW, &stored,
		                          &e2) == 0) {
			json_t *o = json_loads(stored, 0, NULL);
			free(stored);
			c->resp->replayed = true;
			http_reply(c, 202, o);
		} else {
			http_error(c, 409, "conflict", NULL,
			           "a request with this Idempotency-Key is being processed");
		}
	} else {
		http_store_error(c, &err, "send");
	}
	json_decref(resp);
	free(resp_text);
	free(tags);
	free(md);
	free(ar);
	free(sr);
}

/* Idempotency: answers a replay (returns 1), refuses a concurrent duplicate (-1), or lets the
 * request run (0). */
static int
msg_idem_check(struct http_ctx *c, const char *key)
{
	size_t len = strlen(key);
	if (len == 0 || len > MSG_IDEM_KEY_MAX)
		return http_error(c, 400, "bad_request", "Idempotency-Key",
		                  "Idempotency-Key must be 1 to %d characters", MSG_IDEM_KEY_MAX);
	for (size_t i = 0; i < len; i++)
		if (key[i] < 0x21 || key[i] > 0x7e)
			return http_error(c, 400, "bad_request", "Idempotency-Key",
			                  "Idempotency-Key must be printable ASCII without spaces");
	char *stored = NULL;
	struct err err;
	if (store_idempotency_get(c->st, c->key_id, key, c->now - MSG_IDEM_WINDOW, &stored, &err) ==
	    0) {
		json_t *o = json_loads(stored, 0, NULL);
		free(stored);
		c->resp->replayed = true;
		http_reply(c, 202, o);
		return 1;
	}
	if (err.code != STORE_ENOTFOUND)
		return http_store_error(c, &err, "idempotency lookup");
	return 0;
}

static void
msg_new_id(struct msg_send *s)
{
	memcpy(s->public_id, "msg_", 4);
	rand_token(s->public_id + 4, MSG_PUBLIC_ID_LEN);
}

/* Open/click tracking (issue 7) of the HTML body: per message (track_opens/track_clicks), else
 * the domain's defaults; needs tracking.base_url. One recipient: its index is in the tokens;
 * several recipients share one copy, so their opens and clicks cannot be told apart (the
 * events then name no recipient). The original URLs are stored for the redirects. */
static int
msg_track(struct http_ctx *c, const json_t *body, struct msg_send *s, const char **html,
          struct buf *out)
{
	const char *base = c->api->lim.tracking_base;
	if (*html == NULL || base == NULL || *base == '\0')
		return 0;
	bool opens = false, clicks = false, p_opens = false, p_clicks = false;
	struct err err;
	if (store_domain_tracking(c->st, s->from_domain, &opens, &clicks, &err) < 0)
		return http_store_error(c, &err, "domain tracking");
	if (http_json_bool(c, body, "track_opens", &opens, &p_opens) < 0 ||
	    http_json_bool(c, body, "track_clicks", &clicks, &p_clicks) < 0)
		return -1;
	if (!opens && !clicks)
		return 0;
	unsigned char key[TRACK_KEY_LEN];
	if (store_secret(c->st, "tracking", key, sizeof key, &err) < 0)
		return http_store_error(c, &err, "tracking key");
	size_t n_real = 0;
	for (size_t i = 0; i < s->n_rcpts; i++) {
		bool dup = false;
		for (size_t j = 0; j < i && !dup; j++)
			dup = strcasecmp(s->rcpts[j].address, s->rcpts[i].address) == 0;
		n_real += !dup;
	}
	struct track_opts o = {.base_url = base,
	                       .key = key,
	                       .message = s->public_id,
	                       .rcpt = n_real == 1 ? 0 : TRACK_RCPT_ALL,
	                       .opens = opens,
	                       .clicks = clicks};
	char **urls = NULL;
	size_t n_urls = 0;
	int rc = 0;
	if (track_rewrite_html(*html, strlen(*html), &o, out, &urls, &n_urls, &err) < 0) {
		log_warn("http %s tracking skipped (html does not parse): %s", c->request_id,
		         err.msg);
	} else {
		if (n_urls > 0 &&
		    store_track_links_add(c->st, s->public_id, (const char *const *)urls, n_urls,
		                          &err) < 0)
			rc = http_store_error(c, &err, "tracking links");
		*html = buf_cstr(out);
	}
	track_urls_free(&urls, n_urls);
	explicit_bzero(key, sizeof key);
	return rc;
}

static void
msg_send_fields(struct http_ctx *c, json_t *body, const char *idem)
{
	static const char *const allowed[] = {
	    "from", "to",       "cc",          "bcc",          "reply_to", "subject",
	    "text", "html",     "template",    "variables",    "headers",  "attachments",
	    "tags", "metadata", "track_opens", "track_clicks", NULL};
	struct msg_send s = {0};
	struct msg_parts p = {0};
	struct buf tracked;
	buf_init(&tracked, 0);
	msg_new_id(&s);
	buf_init(&s.msg, 0);
	buf_init(&p.r_subject, 0);
	buf_init(&p.r_text, 0);
	buf_init(&p.r_html, 0);
	struct compose_attachment *att = NULL;
	struct buf *att_data = NULL;
	size_t n_att = 0;
	struct compose_header *hdrs = NULL;
	size_t n_hdrs = 0;
	struct compose_addr *to = NULL, *cc = NULL;
	size_t n_to = 0, n_cc = 0;
	if (http_json_only(c, body, allowed) < 0)
		goto out;
	if (json_object_get(body, "from") == NULL) {
		http_error(c, 422, "missing_field", "from", "from is required");
		goto out;
	}
	if (msg_parse_addr(c, json_object_get(body, "from"), "from", s.from, &s.from_name) < 0 ||
	    msg_check_from(c, &s, "from") < 0)
		goto out;
	if (msg_parse_rcpts(c, body, "to", &s) < 0 || msg_parse_rcpts(c, body, "cc", &s) < 0 ||
	    msg_parse_rcpts(c, body, "bcc", &s) < 0)
		goto out;
	if (s.n_rcpts == 0) {
		http_error(c, 422, "missing_field", "to", "at least one recipient (to, cc or bcc)");
		goto out;
	}
	const json_t *rt = json_object_get(body, "reply_to");
	if (rt && !json_is_null(rt)) {
		size_t n = json_is_array(rt) ? json_array_size(rt) : 1;
		if (n > 50) {
			http_error(c, 422, "out_of_range", "reply_to", "at most 50 addresses");
			goto out;
		}
		s.reply_to = xcalloc(n ? n : 1, sizeof *s.reply_to);
		for (size_t i = 0; i < n; i++) {
			char a[ADDR_MAX + 1], f[32], *name;
			(void)snprintf(f, sizeof f,
			               json_is_array(rt) ? "reply_to[%zu]" : "reply_to", i);
			if (msg_parse_addr(c, json_is_array(rt) ? json_array_get(rt, i) : rt, f, a,
			                   &name) < 0)
				goto out;
			s.reply_to[s.n_reply_to++] =
			    (struct compose_addr){.name = name, .email = xstrdup(a)};
		}
	}
	if (http_json_str(c, body, "subject", false, MSG_SUBJECT_MAX, &p.subject) < 0 ||
	    http_json_str(c, body, "text", false, SIZE_MAX, &p.text) < 0 ||
	    http_json_str(c, body, "html", false, SIZE_MAX, &p.html) < 0)
		goto out;
	if (p.subject && strpbrk(p.subject, "\r\n")) {
		http_error(c, 422, "invalid", "subject", "subject must be one line");
		goto out;
	}
	if (msg_template(c, body, &s, &p) < 0)
		goto out;
	if (p.text == NULL && p.html == NULL) {
		http_error(c, 422, "missing_field", "text", "give text, html or a template");
		goto out;
	}
	const json_t *h = json_object_get(body, "headers");
	if (h && !json_is_null(h)) {
		if (!json_is_object(h) || json_object_size(h) > COMPOSE_MAX_HEADERS) {
			http_error(c, 422, json_is_object(h) ? "out_of_range" : "invalid_type",
			           "headers", "headers must be an object of at most %d strings",
			           COMPOSE_MAX_HEADERS);
			goto out;
		}
		hdrs = xcalloc(json_object_size(h) + 1, sizeof *hdrs);
		const char *key;
		json_t *v;
		json_object_foreach((json_t *)h, key, v)
		{
			char f[300];
			(void)snprintf(f, sizeof f, "headers.%s", key);
			const char *val;
			if (http_json_str_at(c, v, f, true, MSG_HEADER_VALUE_MAX, &val) < 0)
				goto out;
			hdrs[n_hdrs++] = (struct compose_header){.name = key, .value = val};
		}
	}
	if (msg_attachments(c, body, &att, &n_att, &att_data) < 0 ||
	    msg_tags_metadata(c, body, &s) < 0)
		goto out;
	if (msg_track(c, body, &s, &p.html, &tracked) < 0)
		goto out;
	to = xcalloc(s.n_rcpts, sizeof *to);
	cc = xcalloc(s.n_rcpts, sizeof *cc);
	for (size_t i = 0; i < s.n_rcpts; i++) {
		struct compose_addr a = {.name = s.rcpts[i].name, .email = s.rcpts[i].address};
		if (strcmp(s.rcpts[i].kind, "to") == 0)
			to[n_to++] = a;
		else if (strcmp(s.rcpts[i].kind, "cc") == 0)
			cc[n_cc++] = a;
	}
	struct compose_msg m = {.from = {.name = s.from_name, .email = s.from},
	                        .to = to,
	                        .n_to = n_to,
	                        .cc = cc,
	                        .n_cc = n_cc,
	                        .reply_to = s.reply_to,
	                        .n_reply_to = s.n_reply_to,
	                        .subject = p.subject,
	                        .text = p.text,
	                        .html = p.html,
	                        .att = att,
	                        .n_att = n_att,
	                        .headers = hdrs,
	                        .n_headers = n_hdrs,
	                        .date = c->now};
	struct err err;
	if (compose_build(&m, &s.msg, s.message_id, &err) < 0) {
		http_error(c, 422, "invalid", NULL, "%s", err.msg);
		goto out;
	}
	msg_commit(c, &s, p.subject, idem);
out:
	buf_deinit(&tracked);
	free(to);
	free(cc);
	free(hdrs);
	for (size_t i = 0; i < n_att; i++)
		buf_deinit(&att_data[i]);
	free(att_data);
	free(att);
	buf_deinit(&p.r_subject);
	buf_deinit(&p.r_text);
	buf_deinit(&p.r_html);
	msg_send_deinit(&s);
}

/* The first From: address of a raw message's header into out (lower-cased domain). */
static int
msg_raw_from(const unsigned char *m, size_t len, char *out)
{
	/* header ends at the first empty line */
	size_t i = 0;
	while (i < len) {
		size_t e = i;
		while (e < len && m[e] != '\n')
			e++;
		size_t ll = e - i;
		if (ll > 0 && m[i + ll - 1] == '\r')
			ll--;
		if (ll == 0)
			break;
		if (ll > 5 && strncasecmp((const char *)m + i, "From:", 5) == 0) {
			/* the field with its continuation lines */
			size_t fe = e;
			while (fe + 1 < len && (m[fe + 1] == ' ' || m[fe + 1] == '\t')) {
				fe++;
				while (fe < len && m[fe] != '\n')
					fe++;
			}
			char *v = xstrndup((const char *)m + i + 5, fe - i - 5);
			const char *lt = strrchr(v, '<');
			const char *a = lt ? lt + 1 : v;
			char *gt = strchr(a, '>');
			if (gt)
				*gt = '\0';
			char *t = (char *)a;
			while (*t == ' ' || *t == '\t')
				t++;
			size_t tl = strcspn(t, " \t\r\n");
			t[tl] = '\0';
			int rc = http_addr_norm(t, false, out) ? 0 : -1;
			free(v);
			return rc;
		}
		i = e + 1;
	}
	return -1;
}

/* The value of header field name in m's header section (unfolded to one line, trimmed) into out;
 * false when absent. */
static bool
msg_raw_field(const unsigned char *m, size_t len, const char *name, char *out, size_t n)
{
	size_t nl = strlen(name), i = 0;
	while (i < len) {
		size_t e = i;
		while (e < len && m[e] != '\n')
			e++;
		size_t ll = e - i;
		if (ll > 0 && m[i + ll - 1] == '\r')
			ll--;
		if (ll == 0)
			return false;
		if (ll > nl && m[i + nl] == ':' &&
		    strncasecmp((const char *)m + i, name, nl) == 0) {
			size_t o = 0;
			for (size_t k = i + nl + 1; k < i + ll && o + 1 < n; k++)
				if (o > 0 || (m[k] != ' ' && m[k] != '\t'))
					out[o++] = (char)m[k];
			while (o > 0 && (out[o - 1] == ' ' || out[o - 1] == '\t'))
				o--;
			out[o] = '\0';
			return true;
		}
		i = e + 1;
	}
	return false;
}

/* RFC 6409 §8.3: a submission server may add a missing Date and Message-ID. Records the
 * Message-ID (without <>) in s->message_id. */
static void
msg_raw_complete(struct msg_send *s, int64_t now)
{
	char v[TMPL_MSGID_MAX + 2];
	struct buf pre;
	buf_init(&pre, 0);
	if (msg_raw_field((const unsigned char *)s->msg.data, s->msg.len, "Message-ID", v,
	                  sizeof v)) {
		const char *a = v[0] == '<' ? v + 1 : v;
		(void)snprintf(s->message_id, sizeof s->message_id, "%.*s", (int)strcspn(a, ">"),
		               a);
	} else {
		char token[25];
		rand_token(token, 24);
		(void)snprintf(s->message_id, sizeof s->message_id, "%s@%s", token, s->from_domain);
		(void)buf_printf(&pre, "Message-ID: <%s>\r\n", s->message_id);
	}
	if (!msg_raw_field((const unsigned char *)s->msg.data, s->msg.len, "Date", v, sizeof v)) {
		time_t t = (time_t)now;
		struct tm tm;
		char date[64];
		if (gmtime_r(&t, &tm) &&
		    strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S +0000", &tm) > 0)
			(void)buf_printf(&pre, "Date: %s\r\n", date);
	}
	if (pre.len > 0) {
		(void)buf_append(&pre, s->msg.data, s->msg.len);
		struct buf tmp = s->msg;
		s->msg = pre;
		pre = tmp;
	}
	buf_deinit(&pre);
}

static void
msg_send_raw(struct http_ctx *c, json_t *body, const char *idem)
{
	static const char *const allowed[] = {"from", "to",       "message", "message_base64",
	                                      "tags", "metadata", NULL};
	struct msg_send s = {0};
	msg_new_id(&s);
	buf_init(&s.msg, 0);
	struct buf raw;
	buf_init(&raw, 0);
	if (http_json_only(c, body, allowed) < 0)
		goto out;
	const char *text, *b64;
	if (http_json_str(c, body, "message", false, SIZE_MAX, &text) < 0 ||
	    http_json_str(c, body, "message_base64", false, SIZE_MAX, &b64) < 0)
		goto out;
	if ((text == NULL) == (b64 == NULL)) {
		http_error(c, 422, "missing_field", "message",
		           "give the message as message (text) or message_base64");
		goto out;
	}
	if (text)
		(void)buf_append_str(&raw, text);
	else if (base64_decode(b64, strlen(b64), 1, &raw) < 0) {
		http_error(c, 422, "invalid", "message_base64", "not valid base64");
		goto out;
	}
	/* CRLF line endings, as SMTP would have made them */
	for (size_t i = 0; i < raw.len; i++) {
		unsigned char ch = (unsigned char)raw.data[i];
		if (ch == '\n' && (i == 0 || raw.data[i - 1] != '\r'))
			(void)buf_append_byte(&s.msg, '\r');
		(void)buf_append_byte(&s.msg, ch);
	}
	char hdr_from[ADDR_MAX + 1];
	if (msg_raw_from((const unsigned char *)s.msg.data, s.msg.len, hdr_from) < 0) {
		http_error(c, 422, "invalid", "message", "the message has no valid From: field");
		goto out;
	}
	if (json_object_get(body, "from")) {
		if (msg_parse_addr(c, json_object_get(body, "from"), "from", s.from, &s.from_name) <
		    0)
			goto out;
	} else {
		memcpy(s.from, hdr_from, sizeof s.from);
	}
	/* both the envelope sender and the From: field must be ours and in scope */
	char saved[ADDR_MAX + 1];
	memcpy(saved, s.from, sizeof saved);
	memcpy(s.from, hdr_from, sizeof s.from);
	if (msg_check_from(c, &s, "message") < 0)
		goto out;
	memcpy(s.from, saved, sizeof s.from);
	if (msg_check_from(c, &s, "from") < 0)
		goto out;
	const json_t *to = json_object_get(body, "to");
	if (to == NULL || json_is_null(to)) {
		http_error(c, 422, "missing_field", "to", "the envelope recipients are required");
		goto out;
	}
	if (msg_parse_rcpts(c, body, "to", &s) < 0 || msg_tags_metadata(c, body, &s) < 0)
		goto out;
	/* the From: domain signs (DKIM) and is recorded as the sending domain */
	s.from_domain = strchr(hdr_from, '@') + 1;
	msg_raw_complete(&s, c->now);
	char subject[512];
	bool has_subject = msg_raw_field((const unsigned char *)s.msg.data, s.msg.len, "Subject",
	                                 subject, sizeof subject);
	msg_commit(c, &s, has_subject ? subject : NULL, idem);
out:
	buf_deinit(&raw);
	msg_send_deinit(&s);
}

static void
msg_send(struct http_ctx *c, bool raw)
{
	const char *idem = c->req->idempotency_key;
	if (idem) {
		int rc = msg_idem_check(c, idem);
		if (rc != 0)
			return;
		if (!inflight_enter(c->api, c->key_id, idem)) {
			http_error(c, 409, "conflict", "Idempotency-Key",
			           "a request with this Idempotency-Key is being processed");
			return;
		}
	}
	json_t *body = http_body_object(c);
	if (body) {
		if (raw)
			msg_send_raw(c, body, idem);
		else
			msg_send_fields(c, body, idem);
		json_decref(body);
	}
	if (idem)
		inflight_leave(c->api, c->key_id, idem);
}

static void
route_send(struct http_ctx *c)
{
	msg_send(c, false);
}

static void
route_send_raw(struct http_ctx *c)
{
	msg_send(c, true);
}

/* ---- status ---- */

static void
route_get(struct http_ctx *c)
{
	struct store_api_message m;
	struct err err;
	if (store_api_message_get(c->st, c->params[0], &m, &err) < 0) {
		http_store_error(c, &err, "message lookup");
		return;
	}
	/* Another domain's message is "not found": ids are not guessable, and nothing about it
	 * may leak. */
	if (!c->admin && strcasecmp(m.domain, c->key_domain) != 0) {
		store_api_message_deinit(&m);
		http_error(c, 404, "not_found", NULL, "no such message");
		return;
	}
	json_t *rcpts = json_array();
	for (size_t i = 0; i < m.n_rcpts; i++) {
		const struct store_api_rcpt_status *r = &m.rcpts[i];
		json_t *hist = json_array();
		for (size_t e = 0; e < m.n_events; e++) {
			if (m.events[e].recipient == NULL ||
			    strcasecmp(m.events[e].recipient, r->address) != 0)
				continue;
			json_t *d =
			    json_loads(m.events[e].detail ? m.events[e].detail : "{}", 0, NULL);
			json_array_append_new(hist, json_pack("{s:I,s:s,s:o,s:o}", "id",
			                                      (json_int_t)m.events[e].id, "event",
			                                      m.events[e].type, "at",
			                                      http_json_time(m.events[e].created),
			                                      "detail", d ? d : json_object()));
		}
		json_array_append_new(
		    rcpts, json_pack("{s:s,s:s,s:s,s:o,s:I,s:o,s:o,s:o,s:o,s:o}", "email",
		                     r->address, "kind", r->kind, "status", r->status, "error",
		                     http_json_strn(r->error), "attempts", (json_int_t)r->attempts,
		                     "next_attempt",
		                     http_json_time(strcmp(r->status, "queued") == 0 ||
		                                            strcmp(r->status, "deferred") == 0
		                                        ? r->next_attempt
		                                        : 0),
		                     "last_attempt", http_json_time(r->last_attempt),
		                     "delivered_at", http_json_time(r->delivered_at), "dsn",
		                     http_json_strn(r->last_dsn), "history", hist));
	}
	json_t *tags = m.tags_json ? json_loads(m.tags_json, 0, NULL) : NULL;
	json_t *md = m.metadata_json ? json_loads(m.metadata_json, 0, NULL) : NULL;
	json_t *o = json_pack("{s:s,s:s,s:s,s:o,s:o,s:o,s:o,s:o,s:o}", "id", m.public_id, "domain",
	                      m.domain, "from", m.from, "subject", http_json_strn(m.subject),
	                      "message_id", http_json_strn(m.message_id), "created",
	                      http_json_time(m.created), "tags", tags ? tags : json_array(),
	                      "metadata", md ? md : json_object(), "recipients", rcpts);
	store_api_message_deinit(&m);
	http_reply(c, 200, o);
}

const struct http_route http_routes_messages[] = {
    {"POST", "/api/v1/messages", route_send, HTTP_ROUTE_SEND},
    {"POST", "/api/v1/messages/raw", route_send_raw, HTTP_ROUTE_SEND},
    {"GET", "/api/v1/messages/{id}", route_get, 0},
};
const size_t http_routes_messages_n = sizeof http_routes_messages / sizeof http_routes_messages[0];

/* Open and click tracking (issue 7, DESIGN.md §8): GET /t/o/{token} answers the 1×1 pixel and
 * GET /t/c/{token} redirects (302) to the link of the message, both without an API key since
 * mail clients fetch them. A token is HMAC-signed with the server's "tracking" secret
 * (events/track.c) and names message, recipient and link index, so a forged or cut token is
 * 404 and a redirect goes only to a URL stored for that message: never an open redirect.
 *
 * Each valid fetch records message.opened / message.clicked with the user agent, the client IP,
 * whether it looks automated (track_is_machine: known proxies and scanners, or a fetch within
 * seconds of delivery) and whether it is the first of its kind for that message and recipient,
 * then wakes the webhook sender. A token for several recipients who shared one copy
 * (TRACK_RCPT_ALL) records the event without a recipient. Recording is best effort: a store failure
 * is logged and the pixel or redirect is answered anyway, because the reader is waiting. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "events/events.h"
#include "http_private.h"
#include "util/log.h"

#define TRACK_MESSAGE_ID_MAX 128
#define TRACK_UA_MAX         512 /* user agent kept in the event */
#define TRACK_IP_MAX         64

/* A 1×1 transparent GIF89a (43 bytes): header, logical screen 1×1 with a 2-entry global colour
 * table, a graphic control extension making index 0 transparent, one image of 1×1 whose LZW
 * data (min code size 2) is clear, 0, end; then the trailer. */
static const unsigned char track_gif[43] = {
    'G',  'I',  'F',  '8',  '9',  'a',  0x01, 0x00, 0x01, 0x00, 0x80, 0x00, 0x00, 0x00, 0x00,
    0x00, 0xff, 0xff, 0xff, 0x21, 0xf9, 0x04, 0x01, 0x00, 0x00, 0x00, 0x00, 0x2c, 0x00, 0x00,
    0x00, 0x00, 0x01, 0x00, 0x01, 0x00, 0x00, 0x02, 0x02, 0x44, 0x01, 0x00, 0x3b,
};

/* The IP of "1.2.3.4:5555", "[::1]:5555", "1.2.3.4" or "::1" into out. */
static void
track_client_ip(const char *client, char out[TRACK_IP_MAX])
{
	if (client == NULL || *client == '\0') {
		out[0] = '\0';
		return;
	}
	const char *p = client;
	size_t len = strlen(client);
	if (p[0] == '[') {
		const char *e = strchr(p, ']');
		p++;
		len = e ? (size_t)(e - p) : strlen(p);
	} else {
		const char *colon = strchr(p, ':');
		if (colon && strchr(colon + 1, ':') == NULL) /* IPv4 with a port */
			len = (size_t)(colon - p);
	}
	(void)snprintf(out, TRACK_IP_MAX, "%.*s", (int)len, p);
}

/* Verifies the token of the path: 0 with message, rcpt and link; -1 after answering 404 (or
 * 500 when the secret cannot be read). */
static int
track_verify(struct http_ctx *c, char message[TRACK_MESSAGE_ID_MAX], uint32_t *rcpt_r,
             uint32_t *link_r)
{
	if (c->n_params < 1 || strlen(c->params[0]) >= TRACK_TOKEN_MAX)
		return http_error(c, 404, "not_found", NULL, "no such link");
	unsigned char key[TRACK_KEY_LEN];
	struct err err;
	if (store_secret(c->st, "tracking", key, sizeof key, &err) < 0)
		return http_store_error(c, &err, "tracking secret");
	int rc =
	    track_token_parse(key, c->params[0], message, TRACK_MESSAGE_ID_MAX, rcpt_r, link_r);
	memset(key, 0, sizeof key);
	if (rc < 0)
		return http_error(c, 404, "not_found", NULL, "no such link");
	return 0;
}

/* Has message+recipient an event of type already? -1 when unknown (store error). */
static int
track_seen(struct http_ctx *c, const char *type, const char *message, const char *recipient)
{
	struct store_event_filter f = {
	    .type = type, .message = message, .recipient = recipient, .limit = 1};
	struct store_event_row *v;
	size_t n;
	struct err err;
	if (store_event_list(c->st, &f, &v, &n, &err) < 0) {
		char esc[300];
		log_error("http %s tracking: event lookup: %s", c->request_id,
		          log_escape(err.msg, esc, sizeof esc));
		return -1;
	}
	store_event_rows_free(&v, n);
	return n > 0;
}

/* Records type for recipient rcpt of message (url for clicks, else NULL). Logs problems. */
static void
track_record(struct http_ctx *c, const char *type, const char *message, uint32_t rcpt,
             const char *url)
{
	char esc[300];
	struct store_api_message m;
	struct err err;
	if (store_api_message_get(c->st, message, &m, &err) < 0) {
		/* ENOTFOUND: the record went with retention; the reader still gets an answer */
		log_msg(err.code == STORE_ENOTFOUND ? LOG_WARN : LOG_ERROR,
		        "http %s tracking %s: message %s: %s", c->request_id, type,
		        log_escape(message, esc, sizeof esc), err.msg);
		return;
	}
	/* TRACK_RCPT_ALL: several recipients shared one copy, so the reader is not known; the
	 * event then has no recipient and the latest delivery stands for "since delivery" */
	const char *recipient = "";
	int64_t delivered = 0;
	if (rcpt == TRACK_RCPT_ALL) {
		for (size_t i = 0; i < m.n_rcpts; i++)
			if (m.rcpts[i].delivered_at > delivered)
				delivered = m.rcpts[i].delivered_at;
	} else if (rcpt < m.n_rcpts) {
		recipient = m.rcpts[rcpt].address ? m.rcpts[rcpt].address : "";
		delivered = m.rcpts[rcpt].delivered_at;
	} else {
		log_warn("http %s tracking %s: message %s has no recipient %u", c->request_id, type,
		         log_escape(message, esc, sizeof esc), rcpt);
		store_api_message_deinit(&m);
		return;
	}
	char ua[TRACK_UA_MAX + 1], ip[TRACK_IP_MAX];
	(void)snprintf(ua, sizeof ua, "%s", c->req->user_agent ? c->req->user_agent : "");
	track_client_ip(c->req->client, ip);
	int64_t since = delivered > 0 && c->now >= delivered ? c->now - delivered : -1;
	int seen = track_seen(c, type, message, recipient);
	json_t *d = json_object();
	json_t *uas = json_string(ua); /* NULL when not valid UTF-8 */
	json_object_set_new(d, "user_agent", uas ? uas : json_string(""));
	json_object_set_new(d, "ip", json_string(ip));
	json_object_set_new(d, "machine", json_boolean(track_is_machine(ua, since)));
	json_object_set_new(d, "first", json_boolean(seen == 0));
	if (url)
		json_object_set_new(d, "url", http_json_strn(url));
	char *detail = json_dumps(d, JSON_COMPACT);
	json_decref(d);
	struct store_event_new e = {
	    .type = type,
	    .domain = m.domain,
	    .message = message,
	    .recipient = recipient,
	    .detail = detail,
	    .created = c->now,
	};
	if (detail == NULL || store_event_add(c->st, &e, NULL, &err) < 0)
		log_error("http %s tracking %s: message %s: %s", c->request_id, type,
		          log_escape(message, esc, sizeof esc),
		          detail ? err.msg : "event not encodable");
	else if (c->hooks && c->hooks->events_added)
		c->hooks->events_added(c->hooks->ctx);
	free(detail);
	store_api_message_deinit(&m);
}

static void
route_open(struct http_ctx *c)
{
	char message[TRACK_MESSAGE_ID_MAX];
	uint32_t rcpt, link;
	if (track_verify(c, message, &rcpt, &link) < 0)
		return;
	if (link != TRACK_LINK_OPEN) {
		http_error(c, 404, "not_found", NULL, "no such link");
		return;
	}
	track_record(c, "message.opened", message, rcpt, NULL);
	http_reply_raw(c, 200, "image/gif", track_gif, sizeof track_gif, NULL);
}

static void
route_click(struct http_ctx *c)
{
	char message[TRACK_MESSAGE_ID_MAX];
	uint32_t rcpt, link;
	if (track_verify(c, message, &rcpt, &link) < 0)
		return;
	if (link == TRACK_LINK_OPEN) {
		http_error(c, 404, "not_found", NULL, "no such link");
		return;
	}
	char *url = NULL;
	struct err err;
	if (store_track_link(c->st, message, link, &url, &err) < 0) {
		if (err.code == STORE_ENOTFOUND)
			http_error(c, 404, "not_found", NULL, "no such link");
		else
			http_store_error(c, &err, "tracking link");
		return;
	}
	if (strlen(url) >= sizeof c->resp->location) {
		/* stored by the rewriter, so never this long; refuse rather than cut it */
		free(url);
		http_error(c, 404, "not_found", NULL, "no such link");
		return;
	}
	track_record(c, "message.clicked", message, rcpt, url);
	http_reply_raw(c, 302, "text/plain", NULL, 0, url);
	free(url);
}

const struct http_route http_routes_track[] = {
    {"GET", "/t/o/{token}", route_open, HTTP_ROUTE_NOAUTH},
    {"GET", "/t/c/{token}", route_click, HTTP_ROUTE_NOAUTH},
};
const size_t http_routes_track_n = sizeof http_routes_track / sizeof http_routes_track[0];

/* Unit tests for src/events/track.c: tokens (roundtrip, tampering, wrong key, cuts), the HTML
 * rewriter (which links are tracked, indexes, the open pixel, documents without body/html,
 * entities and non-ASCII text, the link limit) and the automated-fetch heuristic. */
#include <stdint.h>
#include <string.h>

#include "events/events.h"
#include "test.h"
#include "util/xalloc.h"

static const unsigned char key[TRACK_KEY_LEN] = "0123456789abcdef0123456789abcdef";
static const unsigned char key2[TRACK_KEY_LEN] = "0123456789abcdef0123456789abcdeF";

#define BASE "https://t.example"

static void
test_token_roundtrip(void)
{
	static const struct {
		const char *msg;
		uint32_t rcpt, link;
	} cases[] = {
	    {"msg_AbC123", 0, 0},
	    {"msg_AbC123", 7, TRACK_LINK_OPEN},
	    {"m", UINT32_MAX, 499},
	    {"msg_0123456789012345678901234567890123456789012345678901234567890123456789012345678"
	     "901234567890123456789012345678901234567",
	     UINT32_MAX, UINT32_MAX}, /* 127 characters */
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		char tok[TRACK_TOKEN_MAX], msg[128];
		uint32_t r = 1, l = 1;
		CHECK_INT(strlen(cases[i].msg) <= 127, 1);
		CHECK_INT(track_token(key, cases[i].msg, cases[i].rcpt, cases[i].link, tok), 0);
		CHECK(strlen(tok) < TRACK_TOKEN_MAX);
		CHECK(strspn(tok,
		             "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.") ==
		      strlen(tok));
		CHECK_INT(track_token_parse(key, tok, msg, sizeof msg, &r, &l), 0);
		CHECK_STR(msg, cases[i].msg);
		CHECK_INT(r, cases[i].rcpt);
		CHECK_INT(l, cases[i].link);
		/* the message must fit the caller's buffer */
		CHECK_INT(track_token_parse(key, tok, msg, strlen(cases[i].msg), &r, &l), -1);
		CHECK_INT(track_token_parse(key2, tok, msg, sizeof msg, &r, &l), -1);
	}
	/* message ids: letters, digits, '_', 1..127 */
	char tok[TRACK_TOKEN_MAX];
	static const char *const bad[] = {"", "msg.1", "msg 1", "msg/1", "msg-1", "mség"};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		CHECK_INT(track_token(key, bad[i], 0, 0, tok), -1);
	char longmsg[129];
	memset(longmsg, 'a', 128);
	longmsg[128] = '\0';
	CHECK_INT(track_token(key, longmsg, 0, 0, tok), -1);
	/* deterministic */
	char tok2[TRACK_TOKEN_MAX];
	CHECK_INT(track_token(key, "msg_x", 1, 2, tok), 0);
	CHECK_INT(track_token(key, "msg_x", 1, 2, tok2), 0);
	CHECK_STR(tok, tok2);
	CHECK_INT(track_token(key2, "msg_x", 1, 2, tok2), 0);
	CHECK(strcmp(tok, tok2) != 0);
}

static void
test_token_tampered(void)
{
	char tok[TRACK_TOKEN_MAX], msg[128];
	uint32_t r, l;
	CHECK_INT(track_token(key, "msg_AbC123", 3, 42, tok), 0);
	size_t n = strlen(tok);
	for (size_t i = 0; i < n; i++) {
		for (int bit = 0; bit < 8; bit++) {
			char t[TRACK_TOKEN_MAX];
			memcpy(t, tok, n + 1);
			t[i] = (char)(t[i] ^ (1 << bit));
			if (t[i] == '\0')
				continue; /* that is a cut, tested below */
			if (track_token_parse(key, t, msg, sizeof msg, &r, &l) == 0) {
				fprintf(stderr, "  tampered byte %zu bit %d accepted\n", i, bit);
				CHECK(0);
			}
		}
	}
	/* every cut, and extra bytes */
	for (size_t i = 0; i < n; i++) {
		char t[TRACK_TOKEN_MAX];
		memcpy(t, tok, i);
		t[i] = '\0';
		CHECK_INT(track_token_parse(key, t, msg, sizeof msg, &r, &l), -1);
		/* the middle removed */
		memcpy(t, tok, n + 1);
		memmove(t + i, t + i + 1, n - i);
		CHECK_INT(track_token_parse(key, t, msg, sizeof msg, &r, &l), -1);
	}
	char t[TRACK_TOKEN_MAX + 8];
	(void)snprintf(t, sizeof t, "%sA", tok);
	CHECK_INT(track_token_parse(key, t, msg, sizeof msg, &r, &l), -1);
	(void)snprintf(t, sizeof t, "%s.", tok);
	CHECK_INT(track_token_parse(key, t, msg, sizeof msg, &r, &l), -1);
	/* junk */
	static const char *const junk[] = {"", ".", "..", "abc", "abc.def", "====.====", "a.b.c"};
	for (size_t i = 0; i < sizeof junk / sizeof junk[0]; i++)
		CHECK_INT(track_token_parse(key, junk[i], msg, sizeof msg, &r, &l), -1);
	char huge[400];
	memset(huge, 'A', sizeof huge - 1);
	huge[sizeof huge - 1] = '\0';
	huge[200] = '.';
	CHECK_INT(track_token_parse(key, huge, msg, sizeof msg, &r, &l), -1);
}

/* Rewrites html; returns the output (heap) and the URLs. */
static char *
rewrite(const char *html, bool opens, bool clicks, char ***urls, size_t *n)
{
	struct track_opts o = {.base_url = BASE,
	                       .key = key,
	                       .message = "msg_AbC123",
	                       .rcpt = 2,
	                       .opens = opens,
	                       .clicks = clicks};
	struct buf out;
	struct err err = {0};
	buf_init(&out, 0);
	int rc = track_rewrite_html(html, strlen(html), &o, &out, urls, n, &err);
	CHECK_INT(rc, 0);
	if (rc < 0)
		fprintf(stderr, "  err: %s\n", err.msg);
	char *s = xstrdup(buf_cstr(&out));
	buf_deinit(&out);
	return s;
}

/* The link index in the token of the n-th (from 0) "/t/<kind>/" URL in s, or -1. */
static long long
token_at(const char *s, char kind, size_t nth)
{
	char pat[32];
	(void)snprintf(pat, sizeof pat, BASE "/t/%c/", kind);
	const char *p = s;
	for (size_t i = 0;; i++) {
		p = strstr(p, pat);
		if (p == NULL)
			return -1;
		p += strlen(pat);
		if (i == nth)
			break;
	}
	char tok[TRACK_TOKEN_MAX], msg[128];
	size_t len = strcspn(p, "\"' >");
	if (len >= sizeof tok)
		return -1;
	memcpy(tok, p, len);
	tok[len] = '\0';
	uint32_t r, l;
	if (track_token_parse(key, tok, msg, sizeof msg, &r, &l) < 0 || strcmp(msg, "msg_AbC123") ||
	    r != 2)
		return -1;
	return l;
}

static size_t
count(const char *s, const char *needle)
{
	size_t n = 0;
	for (const char *p = strstr(s, needle); p != NULL; p = strstr(p + 1, needle))
		n++;
	return n;
}

static void
test_rewrite_links(void)
{
	char **urls;
	size_t n;
	char *s = rewrite("<html><body>"
	                  "<a href=\"http://a.example/1\">one</a>"
	                  "<a href=\"mailto:x@example.com\">m</a>"
	                  "<a href=\"tel:+123\">t</a>"
	                  "<a href=\"#x\">anchor</a>"
	                  "<a href=\"/relative/path\">rel</a>"
	                  "<a href=\"rel.html\">rel2</a>"
	                  "<a href=\"javascript:alert(1)\">js</a>"
	                  "<a href=\"ftp://f.example/\">ftp</a>"
	                  "<a name=\"nohref\">n</a>"
	                  "<a href=\"https://b.example/2\">two</a>"
	                  "<a href=\"http://a.example/1\">one again</a>"
	                  "<a href=\"  HTTPS://C.example/3 \n\">spaces</a>"
	                  "<a data-lightr-track=\"off\" href=\"https://d.example/off\">off</a>"
	                  "<a href=\"https://e.example/kept\" data-lightr-track=\"on\">on</a>"
	                  "<map><area href=\"https://f.example/area\" shape=\"rect\"></map>"
	                  "</body></html>",
	                  false, true, &urls, &n);
	CHECK_INT(n, 6);
	static const char *const want[] = {"http://a.example/1",     "https://b.example/2",
	                                   "http://a.example/1",     "HTTPS://C.example/3",
	                                   "https://e.example/kept", "https://f.example/area"};
	for (size_t i = 0; i < n && i < 6; i++) {
		CHECK_STR(urls[i], want[i]);
		CHECK_INT(token_at(s, 'c', i), i);
	}
	CHECK_INT(count(s, BASE "/t/c/"), 6);
	CHECK_INT(count(s, BASE "/t/o/"), 0);
	/* untouched ones */
	static const char *const kept[] = {
	    "href=\"mailto:x@example.com\"", "href=\"tel:+123\"",    "href=\"#x\"",
	    "href=\"/relative/path\"",       "href=\"rel.html\"",    "href=\"javascript:alert(1)\"",
	    "href=\"ftp://f.example/\"",     "https://d.example/off"};
	for (size_t i = 0; i < sizeof kept / sizeof kept[0]; i++)
		CHECK(strstr(s, kept[i]) != NULL);
	/* the marker attribute is dropped, whatever its value */
	CHECK(strstr(s, "data-lightr-track") == NULL);
	CHECK(strstr(s, "a.example") == NULL);
	CHECK(strstr(s, ">one again</a>") != NULL);
	CHECK(strstr(s, "shape=\"rect\"") != NULL);
	track_urls_free(&urls, n);
	CHECK(urls == NULL);
	free(s);
}

static void
test_rewrite_pixel(void)
{
	char **urls;
	size_t n;
	char *s = rewrite("<html><head><title>t</title></head><body><p>Hello</p></body></html>",
	                  true, true, &urls, &n);
	CHECK_INT(n, 0);
	CHECK(urls == NULL);
	CHECK_INT(token_at(s, 'o', 0), TRACK_LINK_OPEN);
	const char *img = strstr(s, "<img src=\"" BASE "/t/o/");
	const char *p = strstr(s, "<p>Hello</p>"), *end = strstr(s, "</body>");
	CHECK(img != NULL && p != NULL && end != NULL && p < img && img < end);
	CHECK(strstr(s, "width=\"1\" height=\"1\" alt=\"\" style=\"display:none\">") != NULL);
	CHECK(strstr(s, "<!DOCTYPE") == NULL); /* no default doctype added */
	free(s);

	/* no body, no html: both are implied; plain text too */
	static const char *const docs[] = {
	    "<p>just a fragment <a href=\"https://x.example/\">x</a></p>",
	    "plain text only",
	    "<html><head><title>no body</title></head></html>",
	    "<!DOCTYPE html><html><body>doctype kept</body></html>",
	    "<!-- only a comment -->",
	};
	for (size_t i = 0; i < sizeof docs / sizeof docs[0]; i++) {
		s = rewrite(docs[i], true, true, &urls, &n);
		CHECK_INT(count(s, BASE "/t/o/"), 1);
		CHECK_INT(token_at(s, 'o', 0), TRACK_LINK_OPEN);
		CHECK(strstr(s, "<body") != NULL);
		const char *q = strstr(s, "/t/o/");
		CHECK(q != NULL && strstr(q, "</body>") != NULL);
		if (i == 0) {
			CHECK_INT(n, 1);
			CHECK_INT(token_at(s, 'c', 0), 0);
		}
		if (i == 3)
			CHECK(strstr(s, "<!DOCTYPE html>") != NULL);
		track_urls_free(&urls, n);
		free(s);
	}
}

static void
test_rewrite_text(void)
{
	char **urls;
	size_t n;
	char *s = rewrite("<html><body><p>Grüße, 日本語 &eacute; &amp; &lt;ok&gt;</p>"
	                  "<a href=\"https://x.example/p?x=1&amp;y=2&z=3#frag\">q</a>"
	                  "<a href=\"https://x.example/ü?q=é\">u</a>"
	                  "<a href=\"https://x.example/&#x61;\">e</a>"
	                  "</body></html>",
	                  true, true, &urls, &n);
	CHECK_INT(n, 3);
	if (n == 3) {
		CHECK_STR(urls[0], "https://x.example/p?x=1&y=2&z=3#frag");
		CHECK_STR(urls[1], "https://x.example/ü?q=é");
		CHECK_STR(urls[2], "https://x.example/a");
	}
	/* UTF-8 out, not entities; markup characters still escaped */
	CHECK(strstr(s, "<p>Grüße, 日本語 é &amp; &lt;ok&gt;</p>") != NULL);
	track_urls_free(&urls, n);
	free(s);
}

static void
test_rewrite_limit(void)
{
	struct buf in;
	buf_init(&in, 0);
	buf_append_str(&in, "<html><body>");
	for (int i = 0; i < TRACK_LINKS_MAX + 20; i++)
		buf_printf(&in, "<a href=\"https://x.example/%d\">%d</a>\n", i, i);
	buf_append_str(&in, "</body></html>");
	char **urls;
	size_t n;
	char *s = rewrite(buf_cstr(&in), true, true, &urls, &n);
	CHECK_INT(n, TRACK_LINKS_MAX);
	if (n == TRACK_LINKS_MAX) {
		CHECK_STR(urls[0], "https://x.example/0");
		CHECK_STR(urls[TRACK_LINKS_MAX - 1], "https://x.example/499");
	}
	CHECK_INT(count(s, BASE "/t/c/"), TRACK_LINKS_MAX);
	CHECK_INT(token_at(s, 'c', TRACK_LINKS_MAX - 1), TRACK_LINKS_MAX - 1);
	CHECK(strstr(s, "href=\"https://x.example/499\"") == NULL);
	CHECK(strstr(s, "href=\"https://x.example/500\"") != NULL);
	CHECK(strstr(s, "href=\"https://x.example/519\"") != NULL);
	CHECK_INT(count(s, BASE "/t/o/"), 1);
	track_urls_free(&urls, n);
	free(s);
	buf_deinit(&in);
}

static void
test_rewrite_modes(void)
{
	const char *html = "<body><a href=\"https://x.example/\">x</a></body>";
	char **urls;
	size_t n;
	char *s = rewrite(html, true, false, &urls, &n); /* opens only */
	CHECK_INT(n, 0);
	CHECK(urls == NULL);
	CHECK(strstr(s, "href=\"https://x.example/\"") != NULL);
	CHECK_INT(count(s, BASE "/t/o/"), 1);
	free(s);
	s = rewrite(html, false, true, &urls, &n); /* clicks only */
	CHECK_INT(n, 1);
	CHECK_INT(count(s, BASE "/t/c/"), 1);
	CHECK_INT(count(s, BASE "/t/o/"), 0);
	CHECK(strstr(s, "<img") == NULL);
	track_urls_free(&urls, n);
	free(s);
	s = rewrite(html, false, false, &urls, &n); /* neither: serialised unchanged */
	CHECK_INT(n, 0);
	CHECK(strstr(s, "href=\"https://x.example/\"") != NULL);
	CHECK(strstr(s, "/t/") == NULL);
	free(s);

	/* errors: nothing to parse, bad options; the output is left alone */
	struct track_opts o = {
	    .base_url = BASE, .key = key, .message = "bad id", .opens = true, .clicks = true};
	struct buf out;
	struct err err = {0};
	buf_init(&out, 0);
	CHECK_INT(track_rewrite_html(html, strlen(html), &o, &out, &urls, &n, &err), -1);
	CHECK(err.msg[0] != '\0');
	o.message = "msg_1";
	err.msg[0] = '\0';
	CHECK_INT(track_rewrite_html("", 0, &o, &out, &urls, &n, &err), -1);
	CHECK(err.msg[0] != '\0');
	CHECK(urls == NULL && n == 0);
	CHECK_INT(out.len, 0);
	/* output over the buffer's max */
	buf_deinit(&out);
	buf_init(&out, 16);
	err.msg[0] = '\0';
	CHECK_INT(track_rewrite_html(html, strlen(html), &o, &out, &urls, &n, &err), -1);
	CHECK(err.msg[0] != '\0');
	CHECK(urls == NULL && n == 0);
	buf_deinit(&out);
}

static void
test_is_machine(void)
{
	static const struct {
		const char *ua;
		int64_t since;
		bool want;
	} cases[] = {
	    {"Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0 (via ggpht.com "
	     "GoogleImageProxy)",
	     3600, true},
	    {"YahooMailProxy; https://help.yahoo.com/kb/yahoo-mail-proxy-SLN28749.html", 3600,
	     true},
	    {"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
	     "BingPreview/1.0b",
	     3600, true},
	    {"Proofpoint URL Defense", 3600, true},
	    {"Mimecast-Scanner/1.0", 3600, true},
	    {"Barracuda Sentinel (EE)", 3600, true},
	    {"Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)", 3600,
	     true},
	    {"curl/7.88.1", 3600, true},
	    {"Wget/1.21", 3600, true},
	    {"python-requests/2.28", 3600, true},
	    {"Go-http-client/1.1", 3600, true},
	    {"", 3600, true},
	    {"   ", 3600, true},
	    {NULL, -1, true},
	    {"Mozilla/5.0 (X11; Linux x86_64; rv:115.0) Gecko/20100101 Firefox/115.0", 3600, false},
	    {"Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, "
	     "like Gecko) Mobile/15E148",
	     -1, false},
	    {"Mozilla/5.0 (X11; Linux x86_64; rv:115.0) Gecko/20100101 Firefox/115.0", 0, true},
	    {"Mozilla/5.0 (X11; Linux x86_64; rv:115.0) Gecko/20100101 Firefox/115.0", 10, true},
	    {"Mozilla/5.0 (X11; Linux x86_64; rv:115.0) Gecko/20100101 Firefox/115.0", 11, false},
	    {"Thunderbird/115.0", -1, false},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
		if (track_is_machine(cases[i].ua, cases[i].since) != cases[i].want) {
			fprintf(stderr, "  case %zu: %s\n", i,
			        cases[i].ua ? cases[i].ua : "(null)");
			CHECK(0);
		}
}

int
main(void)
{
	RUN(test_token_roundtrip);
	RUN(test_token_tampered);
	RUN(test_rewrite_links);
	RUN(test_rewrite_pixel);
	RUN(test_rewrite_text);
	RUN(test_rewrite_limit);
	RUN(test_rewrite_modes);
	RUN(test_is_machine);
	return test_done("events/track");
}

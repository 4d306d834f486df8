/* libFuzzer target: open/click tracking. Arbitrary bytes as HTML through track_rewrite_html with
 * opens and clicks on. Checks: output or -1 with err; every returned URL is http(s) and, in
 * order, the trimmed href of an <a>/<area> of the input (parsed independently here); the output
 * re-parses; every base_url/t/c/ href of the output parses back as a token of this message and
 * recipient with a link index below the number of URLs (unless the input itself held such an
 * href, which is left alone when it is not tracked), and the open pixel is there once. */
#include <stdint.h>
#include <string.h>
#include <strings.h>

#include <libxml/HTMLparser.h>
#include <libxml/tree.h>

#include "events/events.h"
#include "util/log.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define BASE  "https://t.example"
#define CLICK BASE "/t/c/"
#define OPEN  BASE "/t/o/"
#define OPTS                                                                                       \
	(HTML_PARSE_RECOVER | HTML_PARSE_NOERROR | HTML_PARSE_NOWARNING | HTML_PARSE_NONET |       \
	 HTML_PARSE_NODEFDTD | HTML_PARSE_IGNORE_ENC)

static const unsigned char key[TRACK_KEY_LEN] = "fuzz-key-fuzz-key-fuzz-key-fuzz";

static xmlNode *
next_node(xmlNode *n)
{
	if (n->type == XML_ELEMENT_NODE && n->children != NULL)
		return n->children;
	while (n != NULL) {
		if (n->next != NULL)
			return n->next;
		n = n->parent;
		if (n != NULL && n->type != XML_ELEMENT_NODE)
			return NULL;
	}
	return NULL;
}

static bool
is_link(const xmlNode *n)
{
	return n->type == XML_ELEMENT_NODE && n->name != NULL &&
	       (strcasecmp((const char *)n->name, "a") == 0 ||
	        strcasecmp((const char *)n->name, "area") == 0);
}

static bool
is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\f' || c == '\r';
}

/* Does href, trimmed, equal url? */
static bool
trimmed_eq(const char *href, const char *url)
{
	size_t n = strlen(href), i = 0;
	while (i < n && is_space(href[i]))
		i++;
	while (n > i && is_space(href[n - 1]))
		n--;
	return n - i == strlen(url) && memcmp(href + i, url, n - i) == 0;
}

/* Every URL is the trimmed href of an input link, in order; sets *had_click when an input href
 * already looks like one of ours. */
static void
check_urls(const uint8_t *data, size_t size, char **urls, size_t n, bool *had_click)
{
	xmlDoc *doc = htmlReadMemory((const char *)data, (int)size, NULL, "UTF-8", OPTS);
	ASSERT(doc != NULL);
	size_t i = 0;
	for (xmlNode *x = doc->children; x != NULL; x = next_node(x)) {
		if (!is_link(x))
			continue;
		xmlChar *href = xmlGetProp(x, (const xmlChar *)"href");
		if (href == NULL)
			continue;
		if (strstr((const char *)href, "/t/"))
			*had_click = true;
		if (i < n && trimmed_eq((const char *)href, urls[i]))
			i++;
		xmlFree(href);
	}
	ASSERT(i == n);
	xmlFreeDoc(doc);
	for (i = 0; i < n; i++)
		ASSERT(strncasecmp(urls[i], "http:", 5) == 0 ||
		       strncasecmp(urls[i], "https:", 6) == 0);
}

static void
check_output(const struct buf *out, size_t n_urls, bool had_click)
{
	xmlDoc *doc = htmlReadMemory((const char *)out->data, (int)out->len, NULL, "UTF-8", OPTS);
	ASSERT(doc != NULL);
	size_t opens = 0;
	for (xmlNode *x = doc->children; x != NULL; x = next_node(x)) {
		if (x->type != XML_ELEMENT_NODE)
			continue;
		const char *attr = is_link(x) ? "href" : "src";
		xmlChar *v = xmlGetProp(x, (const xmlChar *)attr);
		if (v == NULL)
			continue;
		const char *s = (const char *)v;
		char msg[128];
		uint32_t r, l;
		if (is_link(x) && strncmp(s, CLICK, strlen(CLICK)) == 0) {
			if (track_token_parse(key, s + strlen(CLICK), msg, sizeof msg, &r, &l) ==
			    0) {
				ASSERT(strcmp(msg, "msg_Fuzz1") == 0 && r == 7 && l < n_urls);
			} else {
				ASSERT(had_click);
			}
		} else if (!is_link(x) && strcasecmp((const char *)x->name, "img") == 0 &&
		           strncmp(s, OPEN, strlen(OPEN)) == 0 &&
		           track_token_parse(key, s + strlen(OPEN), msg, sizeof msg, &r, &l) == 0) {
			ASSERT(strcmp(msg, "msg_Fuzz1") == 0 && r == 7 && l == TRACK_LINK_OPEN);
			opens++;
		}
		xmlFree(v);
	}
	ASSERT(opens >= 1);
	xmlFreeDoc(doc);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > 256 * 1024)
		return 0;
	struct track_opts o = {.base_url = BASE,
	                       .key = key,
	                       .message = "msg_Fuzz1",
	                       .rcpt = 7,
	                       .opens = true,
	                       .clicks = true};
	struct buf out;
	struct err err = {0};
	char **urls = NULL;
	size_t n = 0;
	buf_init(&out, 0);
	int rc = track_rewrite_html((const char *)data, size, &o, &out, &urls, &n, &err);
	if (rc < 0) {
		ASSERT(err.msg[0] != '\0' && urls == NULL && n == 0);
	} else {
		ASSERT(rc == 0 && out.len > 0 && n <= TRACK_LINKS_MAX &&
		       (n == 0) == (urls == NULL));
		bool had_click = false;
		check_urls(data, size, urls, n, &had_click);
		check_output(&out, n, had_click);
	}
	track_urls_free(&urls, n);
	buf_deinit(&out);
	return 0;
}

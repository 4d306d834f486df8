/* Open and click tracking (issue 7, DESIGN.md §8): signed tokens and the HTML rewriter.
 * A token names <message, recipient index, link index> and carries a truncated HMAC-SHA256, so
 * the /t/o and /t/c endpoints can trust it without a lookup. The rewriter parses the body with
 * libxml2's HTML parser (recovering, never fetching anything), rewrites <a>/<area> hrefs and
 * appends the open pixel, then serialises the tree as UTF-8.
 * Choices not spelled out in events.h: the data-lightr-track attribute is dropped from every
 * <a>/<area> in the output (it is our marker, not the recipient's business); links whose URL is
 * longer than TRACK_URL_MAX stay untracked; no default DOCTYPE is added (it would change the
 * rendering mode) and <meta charset> is ignored (the body handed to us is UTF-8).
 * HTML_PARSE_RECOVER makes <script>/<style> text end only at its own end tag (without it libxml2
 * cuts "x = '</p>'" short). Untouched hrefs are re-escaped by libxml2's serialiser (non-ASCII
 * and spaces become %XX, as browsers would send them anyway). */
#include "events.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <libxml/HTMLparser.h>
#include <libxml/HTMLtree.h>
#include <libxml/parser.h>
#include <libxml/tree.h>
#include <libxml/xmlIO.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "util/slice.h"
#include "util/strconv.h"
#include "util/xalloc.h"

#define TRACK_MESSAGE_MAX 127  /* public message id in a token */
#define TRACK_MAC_LEN     16   /* bytes of HMAC-SHA256 kept */
#define TRACK_TEXT_MAX    160  /* "<message>.<rcpt>.<link>": 127 + 1 + 10 + 1 + 10 */
#define TRACK_URL_MAX     8192 /* longer link URLs are left untracked */

/* ---- base64url without padding (RFC 4648 §5) ---- */

static const char b64url_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/* Writes the encoding of in (4 * ceil(len / 3) bytes at most) and a NUL; returns its length. */
static size_t
b64url_encode(const unsigned char *in, size_t len, char *out)
{
	size_t o = 0, i = 0;
	for (; i + 3 <= len; i += 3) {
		uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
		out[o++] = b64url_alphabet[v >> 18 & 63];
		out[o++] = b64url_alphabet[v >> 12 & 63];
		out[o++] = b64url_alphabet[v >> 6 & 63];
		out[o++] = b64url_alphabet[v & 63];
	}
	if (len - i == 1) {
		uint32_t v = (uint32_t)in[i] << 16;
		out[o++] = b64url_alphabet[v >> 18 & 63];
		out[o++] = b64url_alphabet[v >> 12 & 63];
	} else if (len - i == 2) {
		uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8;
		out[o++] = b64url_alphabet[v >> 18 & 63];
		out[o++] = b64url_alphabet[v >> 12 & 63];
		out[o++] = b64url_alphabet[v >> 6 & 63];
	}
	out[o] = '\0';
	return o;
}

static int
b64url_value(char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '-')
		return 62;
	if (c == '_')
		return 63;
	return -1;
}

/* Strict decode into out (at most out_n bytes): only the URL alphabet, no padding, and the
 * unused bits of the last character must be zero, so every byte string has one encoding.
 * Returns the decoded length or -1. */
static long
b64url_decode(const char *in, size_t len, unsigned char *out, size_t out_n)
{
	if (len % 4 == 1 || len / 4 * 3 + (len % 4 ? len % 4 - 1 : 0) > out_n)
		return -1;
	size_t o = 0;
	uint32_t acc = 0;
	unsigned bits = 0;
	for (size_t i = 0; i < len; i++) {
		int v = b64url_value(in[i]);
		if (v < 0)
			return -1;
		acc = (acc << 6 | (uint32_t)v) & 0xffffff;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			out[o++] = (unsigned char)(acc >> bits);
		}
	}
	if (acc & ((1u << bits) - 1))
		return -1;
	return (long)o;
}

/* ---- tokens ---- */

static bool
track_message_ok(const char *m, size_t n)
{
	if (n == 0 || n > TRACK_MESSAGE_MAX)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = m[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '_'))
			return false;
	}
	return true;
}

static void
track_mac(const unsigned char key[TRACK_KEY_LEN], const char *text, size_t len,
          unsigned char mac[EVP_MAX_MD_SIZE])
{
	unsigned mac_len = 0;
	if (HMAC(EVP_sha256(), key, TRACK_KEY_LEN, (const unsigned char *)text, len, mac,
	         &mac_len) == NULL)
		memset(mac, 0, EVP_MAX_MD_SIZE); /* cannot happen with SHA-256; never verifies */
}

int
track_token(const unsigned char key[TRACK_KEY_LEN], const char *message, uint32_t rcpt,
            uint32_t link, char out[TRACK_TOKEN_MAX])
{
	out[0] = '\0';
	if (key == NULL || message == NULL || !track_message_ok(message, strlen(message)))
		return -1;
	char text[TRACK_TEXT_MAX];
	int n = snprintf(text, sizeof text, "%s.%u.%u", message, rcpt, link);
	if (n < 0 || (size_t)n >= sizeof text)
		return -1;
	unsigned char mac[EVP_MAX_MD_SIZE];
	track_mac(key, text, (size_t)n, mac);
	/* 4 * ceil(159 / 3) + 1 + 22 + NUL = 236 < TRACK_TOKEN_MAX */
	size_t o = b64url_encode((const unsigned char *)text, (size_t)n, out);
	out[o++] = '.';
	b64url_encode(mac, TRACK_MAC_LEN, out + o);
	OPENSSL_cleanse(mac, sizeof mac);
	return 0;
}

/* A decimal uint32 without leading zeros (the form track_token writes). */
static int
track_u32(struct slice s, uint32_t *v_r)
{
	uint64_t v;
	if (s.len == 0 || (s.len > 1 && s.p[0] == '0') || strconv_u64(s, UINT32_MAX, &v) < 0)
		return -1;
	*v_r = (uint32_t)v;
	return 0;
}

int
track_token_parse(const unsigned char key[TRACK_KEY_LEN], const char *token, char *message,
                  size_t message_n, uint32_t *rcpt_r, uint32_t *link_r)
{
	if (key == NULL || token == NULL)
		return -1;
	size_t len = strnlen(token, TRACK_TOKEN_MAX);
	if (len >= TRACK_TOKEN_MAX)
		return -1;
	const char *dot = memchr(token, '.', len);
	if (dot == NULL)
		return -1;
	size_t text_enc = (size_t)(dot - token), mac_enc = len - text_enc - 1;
	char text[TRACK_TEXT_MAX];
	unsigned char got[TRACK_MAC_LEN + 2], want[EVP_MAX_MD_SIZE];
	long n = b64url_decode(token, text_enc, (unsigned char *)text, sizeof text - 1);
	if (n <= 0 || mac_enc != 22 || b64url_decode(dot + 1, mac_enc, got, sizeof got) != 16)
		return -1;
	track_mac(key, text, (size_t)n, want);
	int same = CRYPTO_memcmp(got, want, TRACK_MAC_LEN) == 0;
	OPENSSL_cleanse(want, sizeof want);
	if (!same)
		return -1;
	/* Authentic, so written by track_token; still checked in full. */
	struct slice msg, rcpt, link;
	struct slice rest = slice_cut(slice_make(text, (size_t)n), '.', &msg);
	if (rest.p == NULL)
		return -1;
	link = slice_cut(rest, '.', &rcpt);
	uint32_t r, l;
	if (link.p == NULL || !track_message_ok(msg.p, msg.len) || msg.len >= message_n ||
	    track_u32(rcpt, &r) < 0 || track_u32(link, &l) < 0)
		return -1;
	memcpy(message, msg.p, msg.len);
	message[msg.len] = '\0';
	*rcpt_r = r;
	*link_r = l;
	return 0;
}

/* ---- HTML rewriting ---- */

static pthread_once_t track_xml_once = PTHREAD_ONCE_INIT;

static void
track_xml_init(void)
{
	xmlInitParser();
}

static bool
track_is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\f' || c == '\r';
}

/* The URL of value without HTML whitespace around it, when it is http: or https:. */
static bool
track_url_trackable(const char *value, struct slice *url_r)
{
	size_t n = strlen(value), i = 0;
	while (i < n && track_is_space(value[i]))
		i++;
	while (n > i && track_is_space(value[n - 1]))
		n--;
	struct slice s = slice_make(value + i, n - i);
	if (s.len > TRACK_URL_MAX ||
	    !(slice_has_prefix_nocase(s, "http:") || slice_has_prefix_nocase(s, "https:")))
		return false;
	*url_r = s;
	return true;
}

static bool
track_name_is(const xmlNode *n, const char *name)
{
	return n->type == XML_ELEMENT_NODE && n->name != NULL &&
	       xmlStrcasecmp(n->name, (const xmlChar *)name) == 0;
}

/* Pre-order successor of n without recursion (the tree may be deep). */
static xmlNode *
track_next(xmlNode *n)
{
	if (n->type == XML_ELEMENT_NODE && n->children != NULL)
		return n->children;
	while (n != NULL) {
		if (n->next != NULL)
			return n->next;
		n = n->parent;
		if (n != NULL && n->type != XML_ELEMENT_NODE)
			return NULL; /* back at the document */
	}
	return NULL;
}

struct track_ctx {
	const struct track_opts *o;
	char **urls;
	size_t n_urls;
	struct buf url; /* scratch: base_url/t/x/<token> */
};

static int
track_make_url(struct track_ctx *c, char kind, uint32_t link)
{
	char tok[TRACK_TOKEN_MAX];
	if (track_token(c->o->key, c->o->message, c->o->rcpt, link, tok) < 0)
		return -1;
	buf_reset(&c->url);
	return buf_printf(&c->url, "%s/t/%c/%s", c->o->base_url, kind, tok);
}

/* One <a> or <area>: drop our marker attribute, rewrite the href when it is tracked. */
static int
track_link(struct track_ctx *c, xmlNode *n)
{
	bool off = false;
	xmlAttr *marker = xmlHasProp(n, (const xmlChar *)"data-lightr-track");
	if (marker != NULL) {
		xmlChar *v = xmlNodeGetContent((xmlNode *)marker);
		if (v != NULL) {
			struct slice s = slice_trim(slice_from((const char *)v));
			off = slice_eq_nocase(s, "off");
			xmlFree(v);
		}
		xmlRemoveProp(marker);
	}
	if (off || !c->o->clicks || c->n_urls >= TRACK_LINKS_MAX)
		return 0;
	xmlChar *href = xmlGetProp(n, (const xmlChar *)"href");
	if (href == NULL)
		return 0;
	struct slice url;
	int rc = 0;
	if (track_url_trackable((const char *)href, &url)) {
		if (track_make_url(c, 'c', (uint32_t)c->n_urls) < 0) {
			rc = -1;
		} else {
			xmlSetProp(n, (const xmlChar *)"href", (const xmlChar *)buf_cstr(&c->url));
			c->urls[c->n_urls++] = xstrndup(url.p, url.len);
		}
	}
	xmlFree(href);
	return rc;
}

static xmlNode *
track_new_child(xmlDoc *doc, xmlNode *parent, const char *name)
{
	xmlNode *n = xmlNewDocNode(doc, NULL, (const xmlChar *)name, NULL);
	if (n == NULL)
		return NULL;
	if (parent == NULL) {
		xmlDocSetRootElement(doc, n);
		return n;
	}
	return xmlAddChild(parent, n);
}

static int
track_pixel(struct track_ctx *c, xmlDoc *doc, xmlNode *body)
{
	if (body == NULL) {
		xmlNode *root = xmlDocGetRootElement(doc);
		if (root == NULL && (root = track_new_child(doc, NULL, "html")) == NULL)
			return -1;
		if ((body = track_new_child(doc, root, "body")) == NULL)
			return -1;
	}
	if (track_make_url(c, 'o', TRACK_LINK_OPEN) < 0)
		return -1;
	xmlNode *img = track_new_child(doc, body, "img");
	if (img == NULL)
		return -1;
	static const char *const attrs[][2] = {
	    {"width", "1"}, {"height", "1"}, {"alt", ""}, {"style", "display:none"}};
	xmlNewProp(img, (const xmlChar *)"src", (const xmlChar *)buf_cstr(&c->url));
	for (size_t i = 0; i < sizeof attrs / sizeof attrs[0]; i++)
		xmlNewProp(img, (const xmlChar *)attrs[i][0], (const xmlChar *)attrs[i][1]);
	return 0;
}

static int
track_serialise(xmlDoc *doc, struct buf *out, struct err *err)
{
	xmlOutputBuffer *ob = xmlAllocOutputBuffer(NULL); /* no encoder: UTF-8 as in the tree */
	if (ob == NULL)
		return err_set(err, ENOMEM, "tracking: cannot allocate the HTML output");
	htmlDocContentDumpFormatOutput(ob, doc, NULL, 0);
	const xmlChar *p = xmlOutputBufferGetContent(ob);
	size_t n = xmlOutputBufferGetSize(ob);
	int rc = 0;
	if (ob->error != 0 || p == NULL)
		rc = err_set(err, EINVAL, "tracking: cannot serialise the HTML");
	else if (buf_append(out, p, n) < 0)
		rc = err_set(err, EFBIG, "tracking: rewritten HTML too large");
	xmlOutputBufferClose(ob);
	return rc;
}

int
track_rewrite_html(const char *html, size_t len, const struct track_opts *o, struct buf *out,
                   char ***urls_r, size_t *n_urls_r, struct err *err)
{
	*urls_r = NULL;
	*n_urls_r = 0;
	if ((o->opens || o->clicks) &&
	    (o->base_url == NULL || o->key == NULL || o->message == NULL ||
	     !track_message_ok(o->message, strlen(o->message))))
		return err_set(err, EINVAL, "tracking: bad options");
	if (html == NULL || len == 0 || len > INT_MAX)
		return err_set(err, EINVAL, "tracking: no HTML or HTML too large");
	pthread_once(&track_xml_once, track_xml_init);
	xmlDoc *doc =
	    htmlReadMemory(html, (int)len, NULL, "UTF-8",
	                   HTML_PARSE_RECOVER | HTML_PARSE_NOERROR | HTML_PARSE_NOWARNING |
	                       HTML_PARSE_NONET | HTML_PARSE_NODEFDTD | HTML_PARSE_IGNORE_ENC);
	if (doc == NULL)
		return err_set(err, EINVAL, "tracking: HTML cannot be parsed");

	struct track_ctx c = {.o = o};
	c.urls = xcalloc(o->clicks ? TRACK_LINKS_MAX : 1, sizeof *c.urls);
	buf_init(&c.url, 0);
	int rc = 0;
	xmlNode *body = NULL;
	for (xmlNode *n = doc->children; n != NULL && rc == 0; n = track_next(n)) {
		if (body == NULL && track_name_is(n, "body"))
			body = n;
		if (track_name_is(n, "a") || track_name_is(n, "area"))
			rc = track_link(&c, n);
	}
	if (rc < 0)
		err_set(err, EINVAL, "tracking: cannot build a link token");
	else if (o->opens && track_pixel(&c, doc, body) < 0)
		rc = err_set(err, EINVAL, "tracking: cannot add the open pixel");
	if (rc == 0)
		rc = track_serialise(doc, out, err);
	buf_deinit(&c.url);
	xmlFreeDoc(doc);
	if (rc < 0 || c.n_urls == 0) {
		track_urls_free(&c.urls, c.n_urls);
		return rc;
	}
	*urls_r = c.urls;
	*n_urls_r = c.n_urls;
	return 0;
}

void
track_urls_free(char ***urlsp, size_t n)
{
	char **urls = *urlsp;
	if (urls == NULL)
		return;
	*urlsp = NULL;
	for (size_t i = 0; i < n; i++)
		free(urls[i]);
	free(urls);
}

/* ---- automated fetches ---- */

/* User-Agent substrings (case-insensitive) of image proxies, link scanners and tools. */
static const char *const track_machine_agents[] = {
    "GoogleImageProxy", /* Gmail: "... (via ggpht.com GoogleImageProxy)" */
    "ggpht.com",
    "YahooMailProxy", /* Yahoo Mail image proxy */
    "BingPreview",    /* Microsoft link preview / Safe Links */
    "SafeLinks",
    "Microsoft Office Existence Discovery",
    "Proofpoint",
    "Mimecast",
    "Barracuda",
    "bot", /* Googlebot, bingbot, generic bots */
    "crawler",
    "spider",
    "scanner",
    "HeadlessChrome",
    "PhantomJS",
    "curl/",
    "Wget/",
    "python-requests",
    "python-urllib",
    "aiohttp",
    "Go-http-client",
    "libwww-perl",
    "Java/",
    "okhttp",
    "Apache-HttpClient",
    "node-fetch",
    "axios/",
};

static bool
track_contains_nocase(const char *hay, const char *needle)
{
	size_t n = strlen(needle);
	for (const char *p = hay; *p != '\0'; p++)
		if (strncasecmp(p, needle, n) == 0)
			return true;
	return false;
}

bool
track_is_machine(const char *user_agent, int64_t seconds_since_delivery)
{
	if (seconds_since_delivery >= 0 && seconds_since_delivery <= 10)
		return true;
	if (user_agent == NULL)
		return true;
	struct slice ua = slice_trim(slice_from(user_agent));
	if (ua.len == 0 || slice_eq(ua, "-"))
		return true;
	for (size_t i = 0; i < sizeof track_machine_agents / sizeof track_machine_agents[0]; i++)
		if (track_contains_nocase(user_agent, track_machine_agents[i]))
			return true;
	return false;
}

/* Message composition for API sends (see tmpl.h, part 2). Everything the caller gives is checked
 * first (names, values, limits, syntax), so a bad request never gets as far as GMime; then the
 * MIME tree is built bottom-up:
 *
 *   body     = text/plain | text/html | multipart/alternative(text, html)
 *   related  = multipart/related(body, inline parts...)     when there are inline parts and html
 *   mixed    = multipart/mixed(related|body, attachments...) when there are regular attachments
 *
 * Text parts are charset=utf-8, normalised to one line break kind, and 7bit unless they hold
 * non-ASCII or a line longer than RFC 5322's 998 octets (then quoted-printable). Attachments
 * are always base64. GMime writes the whole message with DOS newlines, so every line ends in CRLF;
 * it also does the RFC 2047 encoded-words (display names, subject, extra header values), the
 * RFC 2231 parameter encoding (non-ASCII filenames) and header folding. The message is serialised
 * to memory first and appended to out only when it fits, so a failure appends nothing.
 *
 * The output is 7-bit except for an address with a non-ASCII local part (SMTPUTF8), which GMime
 * writes as UTF-8; a non-ASCII domain comes out as its A-label (punycode). */
#include <gmime/gmime.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "mail/mime.h"
#include "tmpl/tmpl.h"
#include "util/buf.h"
#include "util/rand.h"
#include "util/xalloc.h"

/* Bounds on single fields; the API layer has its own (smaller) ones, these keep compose safe
 * on its own. */
#define COMPOSE_FIELD_MAX      8192 /* display name, address, subject, header value, filename */
#define COMPOSE_NAME_MAX       76   /* header field name: must fit a 78-octet line with ": " */
#define COMPOSE_CTYPE_PART_MAX 127  /* RFC 6838 §4.2: type and subtype names, each */
#define COMPOSE_CID_MAX        250
#define COMPOSE_LINE_MAX       998 /* RFC 5322 §2.1.1: longer lines force quoted-printable */
#define COMPOSE_TOKEN_LEN      24  /* random part of a generated Message-ID */
#define COMPOSE_DATE_MAX       253402300799LL /* 9999-12-31T23:59:59Z */

enum { COMPOSE_EINVAL = 1, COMPOSE_ETOOBIG, COMPOSE_EINTERNAL };

/* Header fields compose writes itself; an extra header may not use these names. "Content-*"
 * is checked separately as a prefix. */
static const char *const compose_owned[] = {
    "From", "To", "Cc", "Bcc", "Subject", "Date", "Message-ID", "MIME-Version", "Reply-To", NULL,
};

/* ---- validation ---- */

static bool
is_owned_name(const char *name)
{
	if (strncasecmp(name, "Content-", 8) == 0)
		return true;
	for (size_t i = 0; compose_owned[i]; i++)
		if (strcasecmp(name, compose_owned[i]) == 0)
			return true;
	return false;
}

/* RFC 5322 §3.6.8 field-name: 1*ftext, ftext = %d33-57 / %d59-126. */
static bool
is_field_name(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n > COMPOSE_NAME_MAX)
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c < 33 || c > 126 || c == ':')
			return false;
	}
	return true;
}

/* A header-ish UTF-8 string: bounded, valid UTF-8, no control characters except HTAB (so no
 * CR/LF: a value can never start a new header line). */
static int
check_field(const char *s, const char *what, struct err *err)
{
	size_t n = strlen(s);
	if (n > COMPOSE_FIELD_MAX)
		return err_set(err, COMPOSE_EINVAL, "%s is longer than %d bytes", what,
		               COMPOSE_FIELD_MAX);
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '\r' || c == '\n')
			return err_set(err, COMPOSE_EINVAL, "%s contains a line break", what);
		if ((c < 32 && c != '\t') || c == 127)
			return err_set(err, COMPOSE_EINVAL, "%s contains a control character",
			               what);
	}
	if (!g_utf8_validate(s, (gssize)n, NULL))
		return err_set(err, COMPOSE_EINVAL, "%s is not valid UTF-8", what);
	return 0;
}

/* RFC 2045 §5.1 token: printable ASCII except SPACE and tspecials. */
static bool
is_token_char(unsigned char c)
{
	return c > 32 && c < 127 && strchr("()<>@,;:\\\"/[]?=", c) == NULL;
}

/* "type/subtype", both tokens; the two halves go into type_r/sub_r (size
 * COMPOSE_CTYPE_PART_MAX + 1). multipart and message types are refused: RFC 2045 §6.4 and
 * RFC 2046 §5.2.1 forbid base64 for them, and an opaque attachment of that kind is really
 * application/octet-stream. */
static int
parse_ctype(const char *ct, char *type_r, char *sub_r, const char *what, struct err *err)
{
	const char *slash = strchr(ct, '/');
	size_t tl = slash ? (size_t)(slash - ct) : 0, sl = slash ? strlen(slash + 1) : 0;
	bool ok = slash && tl > 0 && sl > 0 && tl <= COMPOSE_CTYPE_PART_MAX &&
	          sl <= COMPOSE_CTYPE_PART_MAX;
	for (size_t i = 0; ok && i < tl; i++)
		ok = is_token_char((unsigned char)ct[i]);
	for (size_t i = 0; ok && i < sl; i++)
		ok = is_token_char((unsigned char)slash[1 + i]);
	if (!ok)
		return err_set(err, COMPOSE_EINVAL, "%s: content_type must be \"type/subtype\"",
		               what);
	memcpy(type_r, ct, tl);
	type_r[tl] = '\0';
	memcpy(sub_r, slash + 1, sl);
	sub_r[sl] = '\0';
	if (strcasecmp(type_r, "multipart") == 0 || strcasecmp(type_r, "message") == 0)
		return err_set(err, COMPOSE_EINVAL,
		               "%s: content_type %s/* cannot be an attachment (use "
		               "application/octet-stream)",
		               what, type_r);
	return 0;
}

/* Content-ID / Message-ID id: printable ASCII without '<', '>' (we add them) or whitespace. */
static bool
is_id_text(const char *s, size_t max)
{
	size_t n = strlen(s);
	if (n == 0 || n > max)
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c < 33 || c > 126 || c == '<' || c == '>')
			return false;
	}
	return true;
}

static int
check_addrs(const struct compose_addr *a, size_t n, const char *what, struct err *err)
{
	if (n > 0 && a == NULL)
		return err_set(err, COMPOSE_EINVAL, "%s: no addresses", what);
	for (size_t i = 0; i < n; i++) {
		if (a[i].email == NULL || a[i].email[0] == '\0')
			return err_set(err, COMPOSE_EINVAL, "%s: empty address", what);
		if (check_field(a[i].email, what, err) < 0 ||
		    (a[i].name && check_field(a[i].name, what, err) < 0))
			return -1;
	}
	return 0;
}

static int
compose_check(const struct compose_msg *m, struct err *err)
{
	if (m->text == NULL && m->html == NULL)
		return err_set(err, COMPOSE_EINVAL, "the message needs text or html");
	if (m->text && !g_utf8_validate(m->text, -1, NULL))
		return err_set(err, COMPOSE_EINVAL, "text is not valid UTF-8");
	if (m->html && !g_utf8_validate(m->html, -1, NULL))
		return err_set(err, COMPOSE_EINVAL, "html is not valid UTF-8");
	if (m->from.email == NULL || m->from.email[0] == '\0')
		return err_set(err, COMPOSE_EINVAL, "from: empty address");
	if (check_addrs(&m->from, 1, "from", err) < 0 ||
	    check_addrs(m->to, m->n_to, "to", err) < 0 ||
	    check_addrs(m->cc, m->n_cc, "cc", err) < 0 ||
	    check_addrs(m->reply_to, m->n_reply_to, "reply_to", err) < 0)
		return -1;
	if (m->n_to > COMPOSE_MAX_RCPTS || m->n_cc > COMPOSE_MAX_RCPTS ||
	    m->n_reply_to > COMPOSE_MAX_RCPTS ||
	    m->n_to + m->n_cc + m->n_reply_to > COMPOSE_MAX_RCPTS)
		return err_set(err, COMPOSE_EINVAL, "more than %d addresses in to, cc and reply_to",
		               COMPOSE_MAX_RCPTS);
	if (m->subject && check_field(m->subject, "subject", err) < 0)
		return -1;
	if (m->n_headers > COMPOSE_MAX_HEADERS)
		return err_set(err, COMPOSE_EINVAL, "more than %d headers", COMPOSE_MAX_HEADERS);
	for (size_t i = 0; i < m->n_headers; i++) {
		const struct compose_header *h = &m->headers[i];
		if (h->name == NULL || !is_field_name(h->name))
			return err_set(err, COMPOSE_EINVAL,
			               "header name \"%.64s\" is not a field name",
			               h->name ? h->name : "");
		if (is_owned_name(h->name))
			return err_set(err, COMPOSE_EINVAL, "header %s cannot be set", h->name);
		char what[COMPOSE_NAME_MAX + 16];
		(void)snprintf(what, sizeof what, "header %s", h->name);
		if (h->value == NULL)
			return err_set(err, COMPOSE_EINVAL, "%s has no value", what);
		if (check_field(h->value, what, err) < 0)
			return -1;
	}
	if (m->n_att > COMPOSE_MAX_ATTACHMENTS)
		return err_set(err, COMPOSE_EINVAL, "more than %d attachments",
		               COMPOSE_MAX_ATTACHMENTS);
	for (size_t i = 0; i < m->n_att; i++) {
		const struct compose_attachment *a = &m->att[i];
		char what[48], t[COMPOSE_CTYPE_PART_MAX + 1], s[COMPOSE_CTYPE_PART_MAX + 1];
		(void)snprintf(what, sizeof what, "attachment %zu", i);
		if (a->filename == NULL || a->filename[0] == '\0')
			return err_set(err, COMPOSE_EINVAL, "%s: filename is required", what);
		if (check_field(a->filename, what, err) < 0)
			return -1;
		if (a->content_type && parse_ctype(a->content_type, t, s, what, err) < 0)
			return -1;
		if (a->content_id && !is_id_text(a->content_id, COMPOSE_CID_MAX))
			return err_set(err, COMPOSE_EINVAL,
			               "%s: content_id must be 1..%d printable ASCII characters "
			               "without <, > or spaces",
			               what, COMPOSE_CID_MAX);
		if (a->len > 0 && a->data == NULL)
			return err_set(err, COMPOSE_EINVAL, "%s: no data", what);
	}
	if (m->message_id) {
		const char *at = strchr(m->message_id, '@');
		if (!is_id_text(m->message_id, TMPL_MSGID_MAX - 1) || at == NULL ||
		    at == m->message_id || at[1] == '\0')
			return err_set(
			    err, COMPOSE_EINVAL,
			    "message_id must be left@right in printable ASCII without <, > "
			    "or spaces");
	}
	if (m->date < 0 || m->date > COMPOSE_DATE_MAX)
		return err_set(err, COMPOSE_EINVAL, "date out of range");
	return 0;
}

/* ---- parts ---- */

/* A text part of subtype sub holding s with every CRLF or lone CR turned into LF (GMime writes
 * LF as CRLF); quoted-printable when s has non-ASCII bytes or a line over COMPOSE_LINE_MAX. */
static GMimeObject *
text_part(const char *sub, const char *s)
{
	size_t n = strlen(s), o = 0, line = 0;
	bool qp = false;
	char *t = xmalloc(n + 1);
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '\r') {
			if (i + 1 < n && s[i + 1] == '\n')
				i++;
			c = '\n';
		}
		if (c == '\n') {
			line = 0;
		} else if (++line > COMPOSE_LINE_MAX || c >= 0x80) {
			qp = true;
		}
		t[o++] = (char)c;
	}
	GMimeTextPart *p = g_mime_text_part_new_with_subtype(sub);
	GMimeStream *st = g_mime_stream_mem_new_with_buffer(t, o);
	free(t);
	GMimeDataWrapper *w =
	    g_mime_data_wrapper_new_with_stream(st, GMIME_CONTENT_ENCODING_DEFAULT);
	g_mime_part_set_content(GMIME_PART(p), w);
	g_object_unref(w);
	g_object_unref(st);
	g_mime_text_part_set_charset(p, "utf-8");
	g_mime_part_set_content_encoding(GMIME_PART(p), qp ? GMIME_CONTENT_ENCODING_QUOTEDPRINTABLE
	                                                   : GMIME_CONTENT_ENCODING_7BIT);
	return GMIME_OBJECT(p);
}

/* An attachment (inline with its Content-ID when inline is set), base64. Checked before. */
static GMimeObject *
attachment_part(const struct compose_attachment *a, bool inline_part)
{
	char t[COMPOSE_CTYPE_PART_MAX + 1] = "application",
	                                s[COMPOSE_CTYPE_PART_MAX + 1] = "octet-stream";
	if (a->content_type)
		(void)parse_ctype(a->content_type, t, s, "", NULL);
	GMimePart *p = g_mime_part_new_with_type(t, s);
	GMimeStream *st = a->len ? g_mime_stream_mem_new_with_buffer((const char *)a->data, a->len)
	                         : g_mime_stream_mem_new();
	GMimeDataWrapper *w =
	    g_mime_data_wrapper_new_with_stream(st, GMIME_CONTENT_ENCODING_DEFAULT);
	g_mime_part_set_content(p, w);
	g_object_unref(w);
	g_object_unref(st);
	/* The filename goes into both Content-Disposition filename and Content-Type name (older
	 * clients read only the latter), as UTF-8 (GMime would pick ISO-8859-1 when it can). */
	GMimeContentType *ct = g_mime_content_type_new(t, s);
	g_mime_content_type_set_parameter(ct, "name", a->filename);
	g_mime_param_set_charset(
	    g_mime_param_list_get_parameter(g_mime_content_type_get_parameters(ct), "name"),
	    "utf-8");
	g_mime_object_set_content_type(GMIME_OBJECT(p), ct);
	g_object_unref(ct);
	GMimeContentDisposition *cd = g_mime_content_disposition_new();
	g_mime_content_disposition_set_disposition(cd, inline_part ? "inline" : "attachment");
	g_mime_content_disposition_set_parameter(cd, "filename", a->filename);
	g_mime_param_set_charset(g_mime_param_list_get_parameter(
	                             g_mime_content_disposition_get_parameters(cd), "filename"),
	                         "utf-8");
	g_mime_object_set_content_disposition(GMIME_OBJECT(p), cd);
	g_object_unref(cd);
	if (inline_part)
		g_mime_object_set_content_id(GMIME_OBJECT(p), a->content_id);
	g_mime_part_set_content_encoding(p, GMIME_CONTENT_ENCODING_BASE64);
	return GMIME_OBJECT(p);
}

/* The body tree described at the top of the file. Returns a new reference. */
static GMimeObject *
body_tree(const struct compose_msg *m)
{
	GMimeObject *body;
	if (m->text && m->html) {
		GMimeMultipart *alt = g_mime_multipart_new_with_subtype("alternative");
		GMimeObject *t = text_part("plain", m->text), *h = text_part("html", m->html);
		g_mime_multipart_add(alt, t);
		g_mime_multipart_add(alt, h);
		g_object_unref(t);
		g_object_unref(h);
		body = GMIME_OBJECT(alt);
	} else {
		body = m->text ? text_part("plain", m->text) : text_part("html", m->html);
	}
	size_t n_inline = 0, n_regular = 0;
	for (size_t i = 0; i < m->n_att; i++) {
		if (m->att[i].content_id && m->html)
			n_inline++;
		else
			n_regular++;
	}
	if (n_inline > 0) {
		GMimeMultipart *rel = g_mime_multipart_new_with_subtype("related");
		/* RFC 2387 §3.1: type names the root part's content type */
		g_mime_object_set_content_type_parameter(
		    GMIME_OBJECT(rel), "type", m->text ? "multipart/alternative" : "text/html");
		g_mime_multipart_add(rel, body);
		g_object_unref(body);
		for (size_t i = 0; i < m->n_att; i++) {
			if (m->att[i].content_id == NULL)
				continue;
			GMimeObject *a = attachment_part(&m->att[i], true);
			g_mime_multipart_add(rel, a);
			g_object_unref(a);
		}
		body = GMIME_OBJECT(rel);
	}
	if (n_regular > 0) {
		GMimeMultipart *mix = g_mime_multipart_new_with_subtype("mixed");
		g_mime_multipart_add(mix, body);
		g_object_unref(body);
		for (size_t i = 0; i < m->n_att; i++) {
			if (m->att[i].content_id && m->html)
				continue;
			GMimeObject *a = attachment_part(&m->att[i], false);
			g_mime_multipart_add(mix, a);
			g_object_unref(a);
		}
		body = GMIME_OBJECT(mix);
	}
	return body;
}

/* ---- header ---- */

static void
add_addrs(GMimeMessage *msg, GMimeAddressType type, const struct compose_addr *a, size_t n)
{
	InternetAddressList *l = g_mime_message_get_addresses(msg, type);
	for (size_t i = 0; i < n; i++) {
		const char *name = a[i].name;
		if (name && name[strspn(name, " \t")] == '\0')
			name = NULL; /* empty or blank: no display name */
		InternetAddress *ia = internet_address_mailbox_new(name, a[i].email);
		internet_address_set_charset(ia, "utf-8"); /* not GMime's ISO-8859-1 pick */
		internet_address_list_add(l, ia);
		g_object_unref(ia);
	}
}

/* Extra header fields in the order given, each as unstructured text (RFC 2047 for non-ASCII,
 * folded at whitespace). GMime would otherwise pick a formatter by name (addresses for Sender
 * and Resent-*, message ids for References and In-Reply-To) and those drop what they cannot
 * parse: "Sender: not an address" came out as an empty value that swallowed the next line. */
static void
add_extra_headers(GMimeMessage *msg, const struct compose_msg *m, GMimeFormatOptions *fo)
{
	GMimeHeaderList *hl = g_mime_object_get_header_list(GMIME_OBJECT(msg));
	for (size_t i = 0; i < m->n_headers; i++) {
		g_mime_header_list_append(hl, m->headers[i].name, "", NULL);
		GMimeHeader *h =
		    g_mime_header_list_get_header_at(hl, g_mime_header_list_get_count(hl) - 1);
		char *raw = g_mime_header_format_default(h, fo, m->headers[i].value, "utf-8");
		g_mime_header_set_raw_value(h, raw);
		g_free(raw);
	}
}

/* The Message-ID (without <>) into id_r (size TMPL_MSGID_MAX): the given one, or a random
 * token at from's domain. */
static int
message_id(const struct compose_msg *m, char *id_r, struct err *err)
{
	if (m->message_id) {
		(void)snprintf(id_r, TMPL_MSGID_MAX, "%s", m->message_id); /* length checked */
		return 0;
	}
	const char *at = strrchr(m->from.email, '@');
	const char *dom = at && at[1] ? at + 1 : "localhost";
	if (!is_id_text(dom, TMPL_MSGID_MAX - COMPOSE_TOKEN_LEN - 2))
		return err_set(err, COMPOSE_EINVAL, "from domain cannot be used in a Message-ID");
	char tok[COMPOSE_TOKEN_LEN + 1];
	rand_token(tok, COMPOSE_TOKEN_LEN);
	(void)snprintf(id_r, TMPL_MSGID_MAX, "%s@%s", tok, dom); /* fits: checked above */
	return 0;
}

int
compose_build(const struct compose_msg *m, struct buf *out, char *message_id_r, struct err *err)
{
	if (!mime_init())
		return err_set(err, COMPOSE_EINVAL, "GMime cannot be initialised");
	if (compose_check(m, err) < 0)
		return -1;
	char id[TMPL_MSGID_MAX];
	if (message_id(m, id, err) < 0)
		return -1;
	GDateTime *date = g_date_time_new_from_unix_utc(m->date ? m->date : (int64_t)time(NULL));
	if (date == NULL)
		return err_set(err, COMPOSE_EINVAL, "date out of range");

	GMimeFormatOptions *fo = g_mime_format_options_new();
	g_mime_format_options_set_newline_format(fo, GMIME_NEWLINE_FORMAT_DOS);
	g_mime_format_options_set_param_encoding_method(fo, GMIME_PARAM_ENCODING_METHOD_RFC2231);
	/* Header order: as added (no "pretty" placeholders). */
	GMimeMessage *msg = g_mime_message_new(FALSE);
	add_addrs(msg, GMIME_ADDRESS_TYPE_FROM, &m->from, 1);
	add_addrs(msg, GMIME_ADDRESS_TYPE_TO, m->to, m->n_to);
	add_addrs(msg, GMIME_ADDRESS_TYPE_CC, m->cc, m->n_cc);
	add_addrs(msg, GMIME_ADDRESS_TYPE_REPLY_TO, m->reply_to, m->n_reply_to);
	if (m->subject)
		g_mime_message_set_subject(msg, m->subject, "utf-8");
	g_mime_message_set_date(msg, date);
	g_date_time_unref(date);
	char bracketed[TMPL_MSGID_MAX + 2];
	(void)snprintf(bracketed, sizeof bracketed, "<%s>", id);
	g_mime_object_append_header(GMIME_OBJECT(msg), "Message-ID", bracketed, NULL);
	g_mime_object_append_header(GMIME_OBJECT(msg), "MIME-Version", "1.0", NULL);
	add_extra_headers(msg, m, fo);
	GMimeObject *body = body_tree(m);
	g_mime_message_set_mime_part(msg, body);
	g_object_unref(body);

	GMimeStream *st = g_mime_stream_mem_new();
	ssize_t w = g_mime_object_write_to_stream(GMIME_OBJECT(msg), fo, st);
	GByteArray *ba = g_mime_stream_mem_get_byte_array(GMIME_STREAM_MEM(st));
	int rc = 0;
	if (w < 0 || ba == NULL) {
		rc = err_set(err, COMPOSE_EINTERNAL, "writing the message failed");
	} else {
		/* a multipart ends with its close delimiter; end the message with CRLF anyway */
		bool crlf =
		    ba->len >= 2 && ba->data[ba->len - 2] == '\r' && ba->data[ba->len - 1] == '\n';
		size_t need = ba->len + (crlf ? 0 : 2);
		if (need > out->max - out->len) {
			out->overflow = true;
			rc = err_set(err, COMPOSE_ETOOBIG, "the message is larger than %zu bytes",
			             out->max - out->len);
		} else {
			(void)buf_append(out, ba->data, ba->len);
			if (!crlf)
				(void)buf_append(out, "\r\n", 2);
		}
	}
	g_object_unref(st);
	g_mime_format_options_free(fo);
	g_object_unref(msg);
	if (rc == 0 && message_id_r)
		(void)snprintf(message_id_r, TMPL_MSGID_MAX, "%s", id);
	return rc;
}

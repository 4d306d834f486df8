/* A summary of a message for message.received events (see mime.h): GMime parses the message,
 * decodes the header values (RFC 2047 words, RFC 2231 parameters) and the text parts (transfer
 * encoding and charset to UTF-8, g_mime_text_part_get_text); this file picks the parts. Every
 * string handed out is valid UTF-8 (bad sequences become U+FFFD), so it can go into JSON as is.
 *
 * Which part is what: the first text/plain and the first text/html leaf that is neither
 * Content-Disposition: attachment nor named (filename or name parameter) are the bodies; every
 * other leaf, and every message/rfc822 part (not descended into), is an attachment. Multiparts
 * are walked to MIME_DEPTH_MAX levels and MIME_PARTS_MAX parts. */
#include <gmime/gmime.h>
#include <string.h>

#include "mail/mime.h"
#include "util/xalloc.h"

/* A heap copy of s (n bytes, or up to the NUL when n is -1) as valid UTF-8, or NULL for NULL. */
static char *
utf8_dup(const char *s, gssize n)
{
	if (s == NULL)
		return NULL;
	char *v = g_utf8_make_valid(s, n);
	char *r = xstrdup(v);
	g_free(v);
	return r;
}

/* A header value trimmed of surrounding whitespace, NULL when absent or empty. */
static char *
header_dup(GMimeObject *o, const char *name)
{
	const char *v = g_mime_object_get_header(o, name);
	if (v == NULL)
		return NULL;
	while (*v == ' ' || *v == '\t' || *v == '\r' || *v == '\n')
		v++;
	size_t n = strlen(v);
	while (n > 0 &&
	       (v[n - 1] == ' ' || v[n - 1] == '\t' || v[n - 1] == '\r' || v[n - 1] == '\n'))
		n--;
	return n ? utf8_dup(v, (gssize)n) : NULL;
}

static char *
addresses_dup(InternetAddressList *l)
{
	if (l == NULL || internet_address_list_length(l) == 0)
		return NULL;
	char *s = internet_address_list_to_string(l, NULL, FALSE);
	char *r = s && *s ? utf8_dup(s, -1) : NULL;
	g_free(s);
	return r;
}

struct sum_walk {
	struct mime_summary *s;
	size_t body_max, parts, att_cap;
};

/* Sets *dst to at most max bytes of UTF-8 text t, cut before a character that does not fit. */
static void
set_body(char **dst, bool *trunc_r, const char *t, size_t max)
{
	char *v = g_utf8_make_valid(t, -1);
	size_t n = strlen(v);
	if (n > max) {
		size_t k = max;
		while (k > 0 && ((unsigned char)v[k] & 0xc0) == 0x80)
			k--;
		n = k;
		*trunc_r = true;
	}
	*dst = xstrndup(v, n);
	g_free(v);
}

/* Decoded size of a leaf part's content. */
static uint64_t
part_size(GMimePart *p)
{
	GMimeDataWrapper *w = g_mime_part_get_content(p);
	if (w == NULL)
		return 0;
	GMimeStream *null = g_mime_stream_null_new();
	ssize_t n = g_mime_data_wrapper_write_to_stream(w, null);
	g_object_unref(null);
	return n > 0 ? (uint64_t)n : 0;
}

static struct mime_summary_att *
att_new(struct sum_walk *w)
{
	struct mime_summary *s = w->s;
	if (s->n_att >= MIME_SUMMARY_MAX_ATTACHMENTS)
		return NULL;
	if (s->n_att == w->att_cap) {
		w->att_cap = w->att_cap ? w->att_cap * 2 : 4;
		s->att = xrealloc(s->att, w->att_cap * sizeof *s->att);
	}
	struct mime_summary_att *a = &s->att[s->n_att++];
	memset(a, 0, sizeof *a);
	return a;
}

static void
att_type(struct mime_summary_att *a, GMimeObject *o)
{
	GMimeContentType *ct = g_mime_object_get_content_type(o);
	if (ct == NULL)
		return;
	char *t = g_mime_content_type_get_mime_type(ct);
	a->content_type = utf8_dup(t, -1);
	g_free(t);
}

static char *
disposition_filename(GMimeObject *o)
{
	GMimeContentDisposition *d = g_mime_object_get_content_disposition(o);
	const char *f = d ? g_mime_content_disposition_get_parameter(d, "filename") : NULL;
	if (f == NULL) {
		GMimeContentType *ct = g_mime_object_get_content_type(o);
		f = ct ? g_mime_content_type_get_parameter(ct, "name") : NULL;
	}
	return f && *f ? utf8_dup(f, -1) : NULL;
}

static void
sum_leaf(struct sum_walk *w, GMimePart *p)
{
	GMimeObject *o = GMIME_OBJECT(p);
	const char *fname = g_mime_part_get_filename(p);
	GMimeContentDisposition *d = g_mime_object_get_content_disposition(o);
	bool is_att = (d != NULL && g_mime_content_disposition_is_attachment(d)) ||
	              (fname != NULL && *fname != '\0');
	GMimeContentType *ct = g_mime_object_get_content_type(o);
	if (!is_att && GMIME_IS_TEXT_PART(p) && ct != NULL) {
		char **dst = NULL;
		bool *trunc = NULL;
		if (g_mime_content_type_is_type(ct, "text", "plain")) {
			dst = &w->s->text;
			trunc = &w->s->text_truncated;
		} else if (g_mime_content_type_is_type(ct, "text", "html")) {
			dst = &w->s->html;
			trunc = &w->s->html_truncated;
		}
		if (dst != NULL) {
			if (*dst == NULL) {
				char *t = g_mime_text_part_get_text(GMIME_TEXT_PART(p));
				set_body(dst, trunc, t ? t : "", w->body_max);
				g_free(t);
			}
			return; /* a second text body is not an attachment */
		}
	}
	struct mime_summary_att *a = att_new(w);
	if (a == NULL)
		return;
	a->filename = fname && *fname ? utf8_dup(fname, -1) : NULL;
	att_type(a, o);
	const char *cid = g_mime_part_get_content_id(p);
	a->content_id = cid && *cid ? utf8_dup(cid, -1) : NULL;
	a->size = part_size(p);
}

static void
sum_message_part(struct sum_walk *w, GMimeMessagePart *mp)
{
	GMimeObject *o = GMIME_OBJECT(mp);
	struct mime_summary_att *a = att_new(w);
	if (a == NULL)
		return;
	a->filename = disposition_filename(o);
	att_type(a, o);
	const char *cid = g_mime_object_get_content_id(o);
	a->content_id = cid && *cid ? utf8_dup(cid, -1) : NULL;
	GMimeMessage *m = g_mime_message_part_get_message(mp);
	if (m != NULL) {
		GMimeStream *null = g_mime_stream_null_new();
		ssize_t n = g_mime_object_write_to_stream(GMIME_OBJECT(m), NULL, null);
		g_object_unref(null);
		a->size = n > 0 ? (uint64_t)n : 0;
	}
}

static void
sum_walk(struct sum_walk *w, GMimeObject *o, unsigned depth)
{
	if (o == NULL || depth > MIME_DEPTH_MAX || w->parts >= MIME_PARTS_MAX)
		return;
	w->parts++;
	if (GMIME_IS_MULTIPART(o)) {
		GMimeMultipart *mp = GMIME_MULTIPART(o);
		int n = g_mime_multipart_get_count(mp);
		for (int i = 0; i < n; i++)
			sum_walk(w, g_mime_multipart_get_part(mp, i), depth + 1);
	} else if (GMIME_IS_MESSAGE_PART(o)) {
		sum_message_part(w, GMIME_MESSAGE_PART(o));
	} else if (GMIME_IS_PART(o)) {
		sum_leaf(w, GMIME_PART(o));
	}
}

int
mime_summary_build(const unsigned char *msg, size_t len, size_t body_max, struct mime_summary *s_r)
{
	memset(s_r, 0, sizeof *s_r);
	if (!mime_init())
		return -1;
	if (msg == NULL || len == 0)
		return 0;
	GMimeStream *st = g_mime_stream_mem_new_with_buffer((const char *)msg, len);
	GMimeParser *ps = g_mime_parser_new_with_stream(st);
	GMimeMessage *m = g_mime_parser_construct_message(ps, NULL);
	if (m != NULL) {
		GMimeObject *mo = GMIME_OBJECT(m);
		s_r->from = addresses_dup(g_mime_message_get_from(m));
		s_r->to = addresses_dup(g_mime_message_get_to(m));
		s_r->cc = addresses_dup(g_mime_message_get_cc(m));
		const char *subj = g_mime_message_get_subject(m);
		s_r->subject = subj ? utf8_dup(subj, -1) : NULL;
		s_r->date = header_dup(mo, "Date");
		s_r->message_id = header_dup(mo, "Message-ID");
		struct sum_walk w = {.s = s_r, .body_max = body_max};
		sum_walk(&w, g_mime_message_get_mime_part(m), 0);
		g_object_unref(m);
	}
	g_object_unref(ps);
	g_object_unref(st);
	return 0;
}

void
mime_summary_deinit(struct mime_summary *s)
{
	if (s == NULL)
		return;
	free(s->from);
	free(s->to);
	free(s->cc);
	free(s->subject);
	free(s->date);
	free(s->message_id);
	free(s->text);
	free(s->html);
	for (size_t i = 0; i < s->n_att; i++) {
		free(s->att[i].filename);
		free(s->att[i].content_type);
		free(s->att[i].content_id);
	}
	free(s->att);
	memset(s, 0, sizeof *s);
}

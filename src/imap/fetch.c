/* FETCH (RFC 9051 §6.4.5, §7.5.2; RFC 3501 §6.4.5, §7.4.2; CONDSTORE/QRESYNC RFC 7162): parses
 * the fetch-att list into a spec once per command, then emits one "* n FETCH (...)" per message.
 * ENVELOPE and BODY[STRUCTURE] are stored texts; sections are served from the stored raw bytes by
 * the offsets of the part table (mail/mime.h), streamed through ops->read in bounded chunks with
 * a flush whenever the output passes IMAP_OUT_FLUSH, so a large body never sits in memory. */
#include "imap/fetch.h"

#include <ctype.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "imap/imap.h"
#include "mail/mime.h"
#include "util/strconv.h"
#include "util/xalloc.h"

#define FETCH_CHUNK       (64 * 1024) /* bytes per ops->read while streaming a section */
#define FETCH_ITEMS_MAX   100         /* fetch-atts per command: policy, far above any client */
#define FETCH_FIELDS_MAX  200         /* names in one HEADER.FIELDS list: policy */
#define FETCH_HEADER_MAX  (4u << 20)  /* header bytes read for HEADER.FIELDS filtering: policy */
#define FETCH_SECTION_MAX MIME_DEPTH_MAX

enum fetch_kind {
	FI_FLAGS,
	FI_UID,
	FI_INTERNALDATE,
	FI_SIZE,
	FI_ENVELOPE,
	FI_BODY,
	FI_BODYSTRUCTURE,
	FI_MODSEQ,
	FI_SECTION,
};

enum fetch_sec { SEC_ALL, SEC_HEADER, SEC_FIELDS, SEC_FIELDS_NOT, SEC_TEXT, SEC_MIME };

struct fetch_item {
	enum fetch_kind kind;
	/* FI_SECTION only: */
	enum fetch_sec sec;
	uint32_t path[FETCH_SECTION_MAX];
	size_t npath;
	char **fields; /* HEADER.FIELDS(.NOT) names as sent */
	size_t nfields;
	bool partial;
	uint64_t off, len;
	bool peek;
	char *name; /* response name without the partial origin: "BODY[1.MIME]", "RFC822.TEXT" */
};

struct imap_fetch_spec {
	struct fetch_item *v;
	size_t n;
	bool uid, flags, modseq; /* asked for (emitted in a fixed place) */
	bool needs_meta;
	bool sets_seen;
	uint64_t changedsince;
	bool vanished;
};

static void
item_free(struct fetch_item *it)
{
	for (size_t i = 0; i < it->nfields; i++)
		free(it->fields[i]);
	free(it->fields);
	free(it->name);
}

void
imap_fetch_spec_free(struct imap_fetch_spec **sp)
{
	struct imap_fetch_spec *s = *sp;
	if (s == NULL)
		return;
	*sp = NULL;
	for (size_t i = 0; i < s->n; i++)
		item_free(&s->v[i]);
	free(s->v);
	free(s);
}

static struct fetch_item *
spec_add(struct imap_fetch_spec *s, enum fetch_kind kind)
{
	if (s->n >= FETCH_ITEMS_MAX)
		return NULL;
	s->v = xrealloc(s->v, (s->n + 1) * sizeof *s->v);
	struct fetch_item *it = &s->v[s->n++];
	memset(it, 0, sizeof *it);
	it->kind = kind;
	if (kind != FI_FLAGS && kind != FI_UID && kind != FI_MODSEQ)
		s->needs_meta = true;
	return it;
}

/* Simple items: the flag-like ones are remembered on the spec, the rest appended in order. */
static bool
add_simple(struct imap_fetch_spec *s, enum fetch_kind kind)
{
	switch (kind) {
	case FI_UID:
		s->uid = true;
		return true;
	case FI_FLAGS:
		s->flags = true;
		return true;
	case FI_MODSEQ:
		s->modseq = true;
		return true;
	default:
		return spec_add(s, kind) != NULL;
	}
}

static bool
is_field_char(unsigned char ch)
{
	/* RFC 5322 ftext minus what cannot appear in an IMAP atom. */
	return ch > 0x20 && ch < 0x7f && ch != ':' && ch != '(' && ch != ')' && ch != '{' &&
	       ch != '"' && ch != '\\' && ch != ']' && ch != '%' && ch != '*';
}

/* header-list = "(" header-fld-name *(SP header-fld-name) ")" with astring names; atoms and
 * quoted strings (a literal inside a fetch-att is not supported: XXX, no client sends one). */
static const char *
parse_fields(const char **pp, const char *end, struct fetch_item *it)
{
	const char *p = *pp;
	if (p >= end || *p != '(')
		return "Missing header field list";
	p++;
	for (;;) {
		if (it->nfields >= FETCH_FIELDS_MAX)
			return "Too many header fields";
		struct buf name;
		buf_init(&name, 1024);
		if (p < end && *p == '"') {
			p++;
			while (p < end && *p != '"') {
				if (*p == '\\' && p + 1 < end)
					p++;
				buf_append_byte(&name, (unsigned char)toupper((unsigned char)*p));
				p++;
			}
			if (p >= end) {
				buf_deinit(&name);
				return "Unterminated quoted string";
			}
			p++;
		} else {
			while (p < end && is_field_char((unsigned char)*p)) {
				buf_append_byte(&name, (unsigned char)toupper((unsigned char)*p));
				p++;
			}
		}
		bool ok = name.len > 0 && !name.overflow;
		for (size_t i = 0; ok && i < name.len; i++) /* RFC 5322 §2.2 ftext, and quotable */
			ok = name.data[i] > 0x20 && name.data[i] < 0x7f && name.data[i] != ':' &&
			     name.data[i] != '"' && name.data[i] != '\\';
		if (!ok) {
			buf_deinit(&name);
			return "Invalid header field name";
		}
		it->fields = xrealloc(it->fields, (it->nfields + 1) * sizeof *it->fields);
		it->fields[it->nfields++] = xstrdup(buf_cstr(&name));
		buf_deinit(&name);
		if (p < end && *p == ')') {
			*pp = p + 1;
			return NULL;
		}
		if (p >= end || *p != ' ')
			return "Invalid header field list";
		p++;
	}
}

/* section-spec inside [...]: [part *("." part)] ["." section-msgtext / "." "MIME"] */
static const char *
parse_section(const char **pp, const char *end, struct fetch_item *it)
{
	const char *p = *pp;
	while (p < end && isdigit((unsigned char)*p)) {
		const char *q = p;
		while (q < end && isdigit((unsigned char)*q))
			q++;
		uint64_t v;
		if (strconv_u64(slice_make(p, (size_t)(q - p)), UINT32_MAX, &v) < 0 || v == 0)
			return "Invalid section part number";
		if (it->npath >= FETCH_SECTION_MAX)
			return "Section nested too deeply";
		it->path[it->npath++] = (uint32_t)v;
		p = q;
		if (p < end && *p == '.') {
			p++;
			if (p >= end || *p == ']')
				return "Invalid section";
		} else {
			break;
		}
	}
	const char *w = p;
	while (p < end && *p != ']' && *p != ' ')
		p++;
	struct slice word = slice_make(w, (size_t)(p - w));
	if (word.len == 0) {
		if (it->npath > 0 && w[-1] == '.')
			return "Invalid section";
		it->sec = SEC_ALL;
	} else if (it->npath > 0 && w[-1] != '.') {
		return "Invalid section";
	} else if (slice_eq_nocase(word, "HEADER")) {
		it->sec = SEC_HEADER;
	} else if (slice_eq_nocase(word, "TEXT")) {
		it->sec = SEC_TEXT;
	} else if (slice_eq_nocase(word, "MIME")) {
		if (it->npath == 0)
			return "MIME needs a part number";
		it->sec = SEC_MIME;
	} else if (slice_eq_nocase(word, "HEADER.FIELDS") ||
	           slice_eq_nocase(word, "HEADER.FIELDS.NOT")) {
		it->sec = word.len == 13 ? SEC_FIELDS : SEC_FIELDS_NOT;
		if (p >= end || *p != ' ')
			return "Missing header field list";
		p++;
		const char *e = parse_fields(&p, end, it);
		if (e != NULL)
			return e;
	} else {
		return "Unknown section";
	}
	*pp = p;
	return NULL;
}

static void
section_name(struct fetch_item *it, const char *prefix)
{
	static const char *const secs[] = {"",     "HEADER", "HEADER.FIELDS", "HEADER.FIELDS.NOT",
	                                   "TEXT", "MIME"};
	struct buf b;
	buf_init(&b, 0);
	buf_printf(&b, "%s[", prefix);
	for (size_t i = 0; i < it->npath; i++)
		buf_printf(&b, "%s%u", i ? "." : "", it->path[i]);
	if (it->sec != SEC_ALL)
		buf_printf(&b, "%s%s", it->npath ? "." : "", secs[it->sec]);
	if (it->sec == SEC_FIELDS || it->sec == SEC_FIELDS_NOT) {
		buf_append_str(&b, " (");
		for (size_t i = 0; i < it->nfields; i++) {
			const char *f = it->fields[i];
			bool atom = true;
			for (const char *q = f; *q; q++)
				if (!is_field_char((unsigned char)*q))
					atom = false;
			if (atom)
				buf_printf(&b, "%s%s", i ? " " : "", f);
			else
				buf_printf(&b, "%s\"%s\"", i ? " " : "",
				           f); /* no " or \ in names */
		}
		buf_append_str(&b, ")");
	}
	buf_append_str(&b, "]");
	it->name = xstrdup(buf_cstr(&b));
	buf_deinit(&b);
}

static struct fetch_item *
add_section(struct imap_fetch_spec *s, enum fetch_sec sec, bool peek, const char *name)
{
	struct fetch_item *it = spec_add(s, FI_SECTION);
	if (it == NULL)
		return NULL;
	it->sec = sec;
	it->peek = peek;
	if (!peek)
		s->sets_seen = true;
	if (name != NULL)
		it->name = xstrdup(name);
	return it;
}

static const struct {
	const char *name;
	enum fetch_kind kind;
} simple_items[] = {
    {"FLAGS", FI_FLAGS},
    {"UID", FI_UID},
    {"INTERNALDATE", FI_INTERNALDATE},
    {"RFC822.SIZE", FI_SIZE},
    {"ENVELOPE", FI_ENVELOPE},
    {"BODY", FI_BODY},
    {"BODYSTRUCTURE", FI_BODYSTRUCTURE},
    {"MODSEQ", FI_MODSEQ},
};

/* One fetch-att, as the bytes imap_cur_fetch_att returned. */
static const char *
parse_att(struct imap_fetch_spec *s, struct slice att)
{
	const char *p = att.p, *end = att.p + att.len;
	const char *br = memchr(p, '[', att.len);
	struct slice word = slice_make(p, br ? (size_t)(br - p) : att.len);
	if (br == NULL) {
		for (size_t i = 0; i < sizeof simple_items / sizeof simple_items[0]; i++)
			if (slice_eq_nocase(word, simple_items[i].name))
				return add_simple(s, simple_items[i].kind) ? NULL
				                                           : "Too many items";
		struct fetch_item *it = NULL;
		if (slice_eq_nocase(word, "RFC822"))
			it = add_section(s, SEC_ALL, false, "RFC822");
		else if (slice_eq_nocase(word, "RFC822.HEADER"))
			it = add_section(s, SEC_HEADER, true, "RFC822.HEADER");
		else if (slice_eq_nocase(word, "RFC822.TEXT"))
			it = add_section(s, SEC_TEXT, false, "RFC822.TEXT");
		else
			return "Unknown FETCH item";
		return it ? NULL : "Too many items";
	}
	bool peek;
	if (slice_eq_nocase(word, "BODY"))
		peek = false;
	else if (slice_eq_nocase(word, "BODY.PEEK"))
		peek = true;
	else
		return "Unknown FETCH item";
	struct fetch_item *it = add_section(s, SEC_ALL, peek, NULL);
	if (it == NULL)
		return "Too many items";
	p = br + 1;
	const char *e = parse_section(&p, end, it);
	if (e != NULL)
		return e;
	if (p >= end || *p != ']')
		return "Invalid section";
	p++;
	section_name(it, "BODY");
	if (p < end && *p == '<') {
		const char *dot = memchr(p, '.', (size_t)(end - p));
		if (dot == NULL || end[-1] != '>')
			return "Invalid partial";
		if (strconv_u64(slice_make(p + 1, (size_t)(dot - p - 1)), UINT32_MAX, &it->off) <
		        0 ||
		    strconv_u64(slice_make(dot + 1, (size_t)(end - 1 - dot - 1)), UINT32_MAX,
		                &it->len) < 0 ||
		    it->len == 0)
			return "Invalid partial";
		it->partial = true;
		p = end;
	}
	return p == end ? NULL : "Invalid FETCH item";
}

static bool
add_macro(struct imap_fetch_spec *s, struct slice w)
{
	bool all = slice_eq_nocase(w, "ALL"), fast = slice_eq_nocase(w, "FAST");
	bool full = slice_eq_nocase(w, "FULL");
	if (!all && !fast && !full)
		return false;
	add_simple(s, FI_FLAGS);
	add_simple(s, FI_INTERNALDATE);
	add_simple(s, FI_SIZE);
	if (!fast)
		add_simple(s, FI_ENVELOPE);
	if (full)
		add_simple(s, FI_BODY);
	return true;
}

/* fetch-modifiers (RFC 7162 §3.1.4.1, §3.2.6): "(" CHANGEDSINCE n [SP VANISHED] ")" in any
 * order. */
static const char *
parse_modifiers(struct imap_cursor *c, struct imap_fetch_spec *s, bool uid_cmd)
{
	if (!imap_cur_list_open(c))
		return c->error ? c->error : "Invalid FETCH modifiers";
	bool have_cs = false;
	for (;;) {
		struct slice w;
		if (!imap_cur_atom(c, &w))
			return "Invalid FETCH modifier";
		if (slice_eq_nocase(w, "CHANGEDSINCE") && !have_cs) {
			if (!imap_cur_sp(c) || !imap_cur_number64(c, &s->changedsince) ||
			    s->changedsince == 0)
				return "Invalid CHANGEDSINCE value";
			have_cs = true;
		} else if (slice_eq_nocase(w, "VANISHED") && !s->vanished) {
			if (!uid_cmd)
				return "VANISHED needs UID FETCH";
			s->vanished = true;
		} else {
			return "Unknown FETCH modifier";
		}
		if (imap_cur_peek(c) == ')')
			break;
		if (!imap_cur_sp(c))
			return "Invalid FETCH modifiers";
	}
	if (!imap_cur_list_close(c))
		return "Invalid FETCH modifiers";
	if (s->vanished && !have_cs)
		return "VANISHED needs CHANGEDSINCE";
	return NULL;
}

static const char *
parse_one(struct imap_cursor *c, struct imap_fetch_spec *s)
{
	struct slice att;
	if (!imap_cur_fetch_att(c, &att))
		return "Invalid FETCH item";
	return parse_att(s, att);
}

struct imap_fetch_spec *
imap_fetch_parse(struct imap_cursor *c, bool uid_cmd, const char **err_r)
{
	struct imap_fetch_spec *s = xcalloc(1, sizeof *s);
	const char *e = NULL;
	if (imap_cur_peek(c) == '(') {
		if (!imap_cur_list_open(c)) {
			e = c->error ? c->error : "Invalid FETCH list";
			goto fail;
		}
		for (;;) {
			if ((e = parse_one(c, s)) != NULL)
				goto fail;
			if (imap_cur_peek(c) == ')')
				break;
			if (!imap_cur_sp(c)) {
				e = "Invalid FETCH list";
				goto fail;
			}
		}
		if (!imap_cur_list_close(c)) {
			e = "Invalid FETCH list";
			goto fail;
		}
	} else {
		struct imap_cursor save = *c;
		struct slice w;
		if (imap_cur_atom(c, &w) && add_macro(s, w) &&
		    (imap_cur_at_end(c) || imap_cur_peek(c) == ' ')) {
			/* macro */
		} else {
			*c = save;
			if ((e = parse_one(c, s)) != NULL)
				goto fail;
		}
	}
	if (!imap_cur_at_end(c)) {
		if (!imap_cur_sp(c)) {
			e = "Invalid FETCH arguments";
			goto fail;
		}
		if ((e = parse_modifiers(c, s, uid_cmd)) != NULL)
			goto fail;
	}
	if (!imap_cur_eol(c)) {
		e = c->error ? c->error : "Unexpected extra arguments";
		goto fail;
	}
	if (uid_cmd)
		s->uid = true;
	return s;
fail:
	*err_r = e;
	imap_fetch_spec_free(&s);
	return NULL;
}

bool
imap_fetch_sets_seen(const struct imap_fetch_spec *sp)
{
	return sp->sets_seen;
}

uint64_t
imap_fetch_changedsince(const struct imap_fetch_spec *sp)
{
	return sp->changedsince;
}

bool
imap_fetch_vanished(const struct imap_fetch_spec *sp)
{
	return sp->vanished;
}

bool
imap_fetch_wants_modseq(const struct imap_fetch_spec *sp)
{
	return sp->modseq || sp->changedsince > 0;
}

void
imap_fetch_flags(struct buf *out, uint32_t flags, const char *keywords)
{
	static const struct {
		uint32_t bit;
		const char *name;
	} names[] = {
	    {IMAP_FLAG_ANSWERED, "\\Answered"}, {IMAP_FLAG_FLAGGED, "\\Flagged"},
	    {IMAP_FLAG_DELETED, "\\Deleted"},   {IMAP_FLAG_SEEN, "\\Seen"},
	    {IMAP_FLAG_DRAFT, "\\Draft"},
	};
	bool first = true;
	buf_append_byte(out, '(');
	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
		if (flags & names[i].bit) {
			if (!first)
				buf_append_byte(out, ' ');
			buf_append_str(out, names[i].name);
			first = false;
		}
	}
	if (keywords != NULL && *keywords != '\0') {
		if (!first)
			buf_append_byte(out, ' ');
		buf_append_str(out, keywords);
	}
	buf_append_byte(out, ')');
}

/* ---- serving sections ---- */

static void
buf_truncate(struct buf *b, size_t n)
{
	b->len = n;
	if (b->data != NULL)
		b->data[n] = '\0';
}

static int
maybe_flush(struct imap_out *o)
{
	if (o->flush != NULL && o->out->len >= IMAP_OUT_FLUSH)
		return o->flush(o->ctx, o->out) < 0 ? -2 : 0;
	return 0;
}

/* Streams [off, off + len) of the message into the output as the literal's bytes. */
static int
stream_range(struct imap_mailstore *ms, const struct imap_ms_meta *meta, uint64_t off, uint64_t len,
             struct imap_out *o, struct err *err)
{
	while (len > 0) {
		uint64_t n = len < FETCH_CHUNK ? len : FETCH_CHUNK;
		size_t before = o->out->len;
		if (ms->ops->read(ms, meta, off, n, o->out, err) < 0) {
			/* XXX: the literal length is already sent; pad to keep the stream in sync,
			 * the client sees spaces instead of the lost bytes. */
			buf_truncate(o->out, before);
		}
		size_t got = o->out->len - before;
		if (got > n)
			buf_truncate(o->out, before + (size_t)n);
		for (; got < n; got++)
			if (buf_append_byte(o->out, ' ') < 0)
				return err_set(err, IMAP_MS_EINTERNAL, "output buffer full");
		off += n;
		len -= n;
		int r = maybe_flush(o);
		if (r < 0)
			return r;
	}
	return 0;
}

static bool
field_listed(const struct fetch_item *it, const char *name, size_t len)
{
	for (size_t i = 0; i < it->nfields; i++)
		if (strlen(it->fields[i]) == len && strncasecmp(it->fields[i], name, len) == 0)
			return true;
	return false;
}

/* HEADER.FIELDS(.NOT): whole (folded) fields chosen by name, then the blank line. */
static void
filter_header(const struct fetch_item *it, const unsigned char *h, size_t len, struct buf *out)
{
	size_t pos = 0;
	while (pos < len) {
		/* the blank line ends the header */
		if (h[pos] == '\n' || (h[pos] == '\r' && pos + 1 < len && h[pos + 1] == '\n'))
			break;
		size_t start = pos, end = pos;
		for (;;) { /* one field: its first line and its continuation lines */
			const unsigned char *nl = memchr(h + end, '\n', len - end);
			end = nl ? (size_t)(nl - h) + 1 : len;
			if (end >= len || (h[end] != ' ' && h[end] != '\t'))
				break;
		}
		const unsigned char *colon = memchr(h + start, ':', end - start);
		if (colon != NULL) {
			size_t nlen = (size_t)(colon - (h + start));
			while (nlen > 0 &&
			       (h[start + nlen - 1] == ' ' || h[start + nlen - 1] == '\t'))
				nlen--;
			bool listed = field_listed(it, (const char *)h + start, nlen);
			if (listed == (it->sec == SEC_FIELDS)) {
				buf_append(out, h + start, end - start);
				if (h[end - 1] != '\n')
					buf_append_str(out, "\r\n");
			}
		}
		pos = end;
	}
	buf_append_str(out, "\r\n");
}

static void
literal_head(struct imap_out *o, const struct fetch_item *it, uint64_t n)
{
	buf_append_str(o->out, it->name);
	if (it->partial)
		buf_printf(o->out, "<%llu>", (unsigned long long)it->off);
	if (n == 0)
		buf_append_str(o->out, " \"\"");
	else
		buf_printf(o->out, " {%llu}\r\n", (unsigned long long)n);
}

static void
clip_partial(const struct fetch_item *it, uint64_t *start, uint64_t *len)
{
	if (!it->partial)
		return;
	if (it->off >= *len) {
		*len = 0;
		return;
	}
	*start += it->off;
	*len -= it->off;
	if (*len > it->len)
		*len = it->len;
}

static int
emit_section(const struct fetch_item *it, struct imap_mailstore *ms,
             const struct imap_ms_meta *meta, struct imap_out *o, struct err *err)
{
	struct mime_section sec;
	bool found = mime_parts_find(buf_slice(&meta->parts), it->path, it->npath, &sec);
	uint64_t hl = meta->header_len, start = 0, end = 0;
	if (found) {
		switch (it->sec) {
		case SEC_ALL:
			if (it->npath == 0) {
				end = meta->size;
			} else {
				start = hl + sec.body_start;
				end = hl + sec.body_end;
			}
			break;
		case SEC_HEADER:
		case SEC_FIELDS:
		case SEC_FIELDS_NOT:
			if (it->npath == 0) {
				end = hl + sec.msg_header_end;
			} else if (sec.is_message) {
				start = hl + sec.msg_header_start;
				end = hl + sec.msg_header_end;
			}
			break;
		case SEC_TEXT:
			if (it->npath == 0 || sec.is_message) {
				start = hl + sec.text_start;
				end = hl + sec.text_end;
			}
			break;
		case SEC_MIME:
			start = hl + sec.header_start;
			end = hl + sec.header_end;
			break;
		}
	}
	if (end > meta->size)
		end = meta->size;
	if (start > end)
		start = end;
	uint64_t len = end - start;
	if (it->sec == SEC_FIELDS || it->sec == SEC_FIELDS_NOT) {
		struct buf h, f;
		buf_init(&h, 0);
		buf_init(&f, 0);
		if (len > FETCH_HEADER_MAX)
			len = FETCH_HEADER_MAX;
		if (len > 0 && ms->ops->read(ms, meta, start, len, &h, err) < 0) {
			buf_deinit(&h);
			buf_deinit(&f);
			return -1;
		}
		if (found && (it->npath == 0 || sec.is_message))
			filter_header(it, h.data, h.len, &f);
		uint64_t s0 = 0, n = f.len;
		clip_partial(it, &s0, &n);
		literal_head(o, it, n);
		if (n > 0)
			buf_append(o->out, f.data + s0, (size_t)n);
		buf_deinit(&h);
		buf_deinit(&f);
		return maybe_flush(o);
	}
	clip_partial(it, &start, &len);
	literal_head(o, it, len);
	return stream_range(ms, meta, start, len, o, err);
}

static void
internaldate(struct buf *out, int64_t t)
{
	static const char *const mon[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
	                                  "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
	time_t tt = (time_t)t;
	struct tm tm;
	if (gmtime_r(&tt, &tm) == NULL)
		memset(&tm, 0, sizeof tm);
	buf_printf(out, "INTERNALDATE \"%2d-%s-%04d %02d:%02d:%02d +0000\"", tm.tm_mday,
	           mon[tm.tm_mon % 12], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

int
imap_fetch_one(const struct imap_fetch_spec *sp, struct imap_mailstore *ms, int64_t mailbox,
               const struct imap_msgref *m, bool with_flags, bool modseq_on, struct imap_out *o,
               struct err *err)
{
	struct imap_ms_meta meta;
	memset(&meta, 0, sizeof meta);
	buf_init(&meta.parts, 0);
	if (sp->needs_meta && ms->ops->meta(ms, mailbox, m->uid, &meta, err) < 0)
		return -1;
	struct buf *out = o->out;
	const char *sep = "";
	int r = 0;
	size_t mark = out->len;
	buf_printf(out, "* %u FETCH (", m->seq);
	if (sp->uid) {
		buf_printf(out, "UID %u", m->uid);
		sep = " ";
	}
	bool flags = sp->flags || with_flags;
	if (flags) {
		buf_printf(out, "%sFLAGS ", sep);
		imap_fetch_flags(out, m->flags, m->keywords);
		sep = " ";
	}
	if (imap_fetch_wants_modseq(sp) || (modseq_on && flags)) {
		buf_printf(out, "%sMODSEQ (%llu)", sep, (unsigned long long)m->modseq);
		sep = " ";
	}
	for (size_t i = 0; i < sp->n && r == 0; i++) {
		const struct fetch_item *it = &sp->v[i];
		buf_append_str(out, sep);
		sep = " ";
		switch (it->kind) {
		case FI_INTERNALDATE:
			internaldate(out, meta.internal_date);
			break;
		case FI_SIZE:
			buf_printf(out, "RFC822.SIZE %llu", (unsigned long long)meta.size);
			break;
		case FI_ENVELOPE:
			buf_printf(out, "ENVELOPE %s", meta.envelope ? meta.envelope : "NIL");
			break;
		case FI_BODY:
			buf_printf(out, "BODY %s", meta.body ? meta.body : "NIL");
			break;
		case FI_BODYSTRUCTURE:
			buf_printf(out, "BODYSTRUCTURE %s",
			           meta.bodystructure ? meta.bodystructure : "NIL");
			break;
		case FI_SECTION:
			r = emit_section(it, ms, &meta, o, err);
			break;
		default:
			break;
		}
	}
	if (r == 0) {
		buf_append_str(out, ")\r\n");
		if (out->overflow)
			r = err_set(err, IMAP_MS_EINTERNAL, "output buffer full");
		else
			r = maybe_flush(o);
	} else if (r == -1 && out->len >= mark) {
		buf_truncate(out,
		             mark); /* nothing of it was flushed yet: drop the partial response */
	}
	if (sp->needs_meta)
		imap_ms_meta_deinit(&meta);
	else
		buf_deinit(&meta.parts);
	return r;
}

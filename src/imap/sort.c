/* SORT (RFC 5256 §3): criteria ARRIVAL, CC, DATE, FROM, SIZE, SUBJECT, TO, each optionally
 * REVERSE, with the sequence number as the final tie-breaker. The search part runs first
 * (search.c); then, per matching message, only the keys the criteria need are loaded (metadata
 * for ARRIVAL/SIZE, the header bytes for the others) and the records are sorted in memory.
 * Strings compare with i;ascii-casemap (RFC 4790 §9.2), the collation RFC 5256 requires. */
#include "imap/fetch.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "imap/imap_private.h"
#include "mail/hdr.h"
#include "mail/mime.h"
#include "util/arena.h"
#include "util/xalloc.h"

#define SORT_CRITERIA_MAX 16 /* policy: there are 7 keys */

enum sort_key { S_ARRIVAL, S_CC, S_DATE, S_FROM, S_SIZE, S_SUBJECT, S_TO };

struct sort_crit {
	enum sort_key key;
	bool reverse;
};

struct imap_sort {
	struct sort_crit crit[SORT_CRITERIA_MAX];
	size_t n;
	struct imap_search *search;
};

void
imap_sort_free(struct imap_sort **sp)
{
	struct imap_sort *s = *sp;
	if (s == NULL)
		return;
	*sp = NULL;
	imap_search_free(&s->search);
	free(s);
}

static const char *const key_names[] = {"ARRIVAL", "CC", "DATE", "FROM", "SIZE", "SUBJECT", "TO"};

static const char *
parse_criteria(struct imap_cursor *c, struct imap_sort *s)
{
	if (!imap_cur_list_open(c))
		return "Missing sort criteria";
	for (;;) {
		struct slice a;
		if (!imap_cur_atom(c, &a))
			return "Invalid sort criterion";
		bool reverse = false;
		if (slice_eq_nocase(a, "REVERSE")) {
			reverse = true;
			if (!imap_cur_sp(c) || !imap_cur_atom(c, &a))
				return "Invalid sort criterion";
		}
		size_t k;
		for (k = 0; k < sizeof key_names / sizeof key_names[0]; k++)
			if (slice_eq_nocase(a, key_names[k]))
				break;
		if (k == sizeof key_names / sizeof key_names[0])
			return "Unknown sort criterion";
		if (s->n >= SORT_CRITERIA_MAX)
			return "Too many sort criteria";
		s->crit[s->n].key = (enum sort_key)k;
		s->crit[s->n].reverse = reverse;
		s->n++;
		if (imap_cur_peek(c) == ')')
			break;
		if (!imap_cur_sp(c))
			return "Invalid sort criteria";
	}
	if (!imap_cur_list_close(c) || !imap_cur_sp(c))
		return "Invalid sort criteria";
	return NULL;
}

struct imap_sort *
imap_sort_parse(struct imap_cursor *c, bool *badcharset_r, const char **err_r)
{
	*badcharset_r = false;
	struct imap_sort *s = xcalloc(1, sizeof *s);
	const char *e = parse_criteria(c, s);
	if (e != NULL) {
		*err_r = e;
		imap_sort_free(&s);
		return NULL;
	}
	struct buf cs;
	buf_init(&cs, 256);
	if (!imap_cur_astring(c, &cs) || !imap_cur_sp(c)) {
		buf_deinit(&cs);
		*err_r = "Missing charset";
		imap_sort_free(&s);
		return NULL;
	}
	struct slice v = buf_slice(&cs);
	bool ok = slice_eq_nocase(v, "UTF-8") || slice_eq_nocase(v, "US-ASCII");
	buf_deinit(&cs);
	if (!ok) {
		*badcharset_r = true;
		*err_r = "Unsupported charset";
		imap_sort_free(&s);
		return NULL;
	}
	s->search = imap_search_parse_keys(c, err_r);
	if (s->search == NULL)
		imap_sort_free(&s);
	return s;
}

struct sort_rec {
	size_t idx;
	uint32_t seq;
	int64_t arrival, date;
	uint64_t size;
	char *str[3]; /* S_CC / S_FROM / S_TO mailbox, or the base subject in str[0] slot below */
	char *subject;
};

static int
str_slot(enum sort_key k)
{
	return k == S_CC ? 0 : k == S_FROM ? 1 : 2;
}

/* RFC 5256 §3: the addr-mailbox (local part) of the first address of the field, or "". */
static char *
first_mailbox(const struct buf *hdr, const char *field)
{
	struct hdr_iter it;
	struct hdr_field f;
	const char *why;
	char *r = NULL;
	hdr_iter_init(&it, hdr->data, hdr->len);
	while (r == NULL && hdr_iter_next(&it, &f, &why) == HDR_FIELD) {
		if (!slice_eq_nocase(f.name, field))
			continue;
		struct buf v;
		buf_init(&v, 0);
		hdr_unfold(f.value, &v);
		struct arena *a = arena_new("imap-sort", 0);
		char **addrs;
		size_t n;
		if (hdr_addr_list(buf_slice(&v), a, &addrs, &n, &why) == 0 && n > 0) {
			const char *at = strrchr(addrs[0], '@');
			r = xstrndup(addrs[0], at ? (size_t)(at - addrs[0]) : strlen(addrs[0]));
		} else {
			r = xstrdup("");
		}
		arena_free(&a);
		buf_deinit(&v);
	}
	return r ? r : xstrdup("");
}

static char *
base_subject(const struct buf *hdr)
{
	struct buf all, base;
	buf_init(&all, 0);
	buf_init(&base, 0);
	mime_search_header(hdr->data, hdr->len, "Subject", &all);
	const unsigned char *nl = all.len ? memchr(all.data, '\n', all.len) : NULL;
	size_t len = nl ? (size_t)(nl - all.data) : all.len;
	mime_base_subject(slice_make(all.data, len), &base, NULL);
	char *r = xstrdup(buf_cstr(&base));
	buf_deinit(&all);
	buf_deinit(&base);
	return r;
}

static int
cmp_i64(int64_t a, int64_t b)
{
	return a < b ? -1 : a > b;
}

static int
cmp_recs(const void *pa, const void *pb, void *arg)
{
	const struct sort_rec *a = pa, *b = pb;
	const struct imap_sort *s = arg;
	for (size_t i = 0; i < s->n; i++) {
		int r = 0;
		switch (s->crit[i].key) {
		case S_ARRIVAL:
			r = cmp_i64(a->arrival, b->arrival);
			break;
		case S_DATE:
			r = cmp_i64(a->date, b->date);
			break;
		case S_SIZE:
			r = a->size < b->size ? -1 : a->size > b->size;
			break;
		case S_SUBJECT:
			r = strcasecmp(a->subject ? a->subject : "", b->subject ? b->subject : "");
			break;
		default: {
			int k = str_slot(s->crit[i].key);
			r = strcasecmp(a->str[k] ? a->str[k] : "", b->str[k] ? b->str[k] : "");
		}
		}
		if (r != 0)
			return s->crit[i].reverse ? -r : r;
	}
	return a->seq < b->seq ? -1 : a->seq > b->seq;
}

int
imap_sort_run(const struct imap_sort *sp, const struct imap_search_ctx *ctx, size_t **idx_r,
              size_t *n_r, struct err *err)
{
	size_t *idx, n;
	if (imap_search_run(sp->search, ctx, &idx, &n, err) < 0)
		return -1;
	bool need_hdr = false;
	for (size_t i = 0; i < sp->n; i++)
		if (sp->crit[i].key != S_ARRIVAL && sp->crit[i].key != S_SIZE)
			need_hdr = true;
	struct sort_rec *v = xcalloc(n ? n : 1, sizeof *v);
	int rc = 0;
	for (size_t i = 0; i < n; i++) {
		const struct imap_msgref *m = &ctx->msgs[idx[i]];
		struct sort_rec *r = &v[i];
		r->idx = idx[i];
		r->seq = m->seq;
		struct imap_ms_meta meta;
		struct buf hdr;
		buf_init(&hdr, 0);
		memset(&meta, 0, sizeof meta);
		int lr;
		if (need_hdr)
			lr = imap_search_load_header(ctx->ms, ctx->mailbox, m->uid, &meta, &hdr,
			                             err);
		else
			lr = ctx->ms->ops->meta(ctx->ms, ctx->mailbox, m->uid, &meta, err);
		if (lr < 0) {
			buf_deinit(&hdr);
			if (err->code == IMAP_MS_ENONEXISTENT)
				continue; /* vanished meanwhile: sorts with empty keys */
			rc = -1;
			break;
		}
		r->arrival = meta.internal_date;
		r->size = meta.size;
		for (size_t c = 0; c < sp->n && need_hdr; c++) {
			switch (sp->crit[c].key) {
			case S_DATE:
				r->date = imap_search_sent_date(&hdr, meta.internal_date, NULL);
				break;
			case S_SUBJECT:
				if (r->subject == NULL)
					r->subject = base_subject(&hdr);
				break;
			case S_CC:
			case S_FROM:
			case S_TO: {
				int k = str_slot(sp->crit[c].key);
				if (r->str[k] == NULL)
					r->str[k] = first_mailbox(&hdr, key_names[sp->crit[c].key]);
				break;
			}
			default:
				break;
			}
		}
		imap_ms_meta_deinit(&meta);
		buf_deinit(&hdr);
	}
	if (rc == 0) {
		qsort_r(v, n, sizeof *v, cmp_recs, (void *)sp);
		for (size_t i = 0; i < n; i++)
			idx[i] = v[i].idx;
	}
	for (size_t i = 0; i < n; i++) {
		free(v[i].subject);
		for (int k = 0; k < 3; k++)
			free(v[i].str[k]);
	}
	free(v);
	if (rc < 0) {
		free(idx);
		return -1;
	}
	*idx_r = idx;
	*n_r = n;
	return 0;
}

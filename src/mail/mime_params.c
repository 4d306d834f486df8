/* Content-Type and Content-Disposition parameters (RFC 2045 §5.1) as Dovecot 2.3 reads them:
 * tolerant of broken input (a bad parameter is skipped up to the next ';'), RFC 2231
 * continuations and extended values merged the way its BODYSTRUCTURE shows them, and the
 * type/subtype of a Content-Type. At most MIME_PARAMS_MAX parameters per header; the merge sorts
 * those with an insertion sort, so the work stays linear in the header times that bound. Used by
 * the structure scanner (boundary, charset) and the BODYSTRUCTURE writer (mime_private.h). */
#include <stdio.h>
#include <string.h>

#include "mail/mime_private.h"

static void
plist_add(struct plist *pl, const void *k, size_t kl, const void *v, size_t vl)
{
	if (pl->n >= MIME_PARAMS_MAX)
		return;
	struct param *p = &pl->p[pl->n++];
	memset(p, 0, sizeof *p);
	p->k_off = pl->sb.len;
	buf_append(&pl->sb, k, kl);
	p->k_len = kl;
	p->v_off = pl->sb.len;
	buf_append(&pl->sb, v, vl);
	p->v_len = vl;
}

/* Parses ";" key "=" value pairs of s[i, e) into raw (unmerged) entries of pl. Broken input is
 * skipped up to the next ';', as Dovecot's rfc2231_parse does. */
static void
params_parse_raw(struct plist *pl, const unsigned char *s, size_t i, size_t e)
{
	uint32_t carry = 0;
	while (i < e && pl->n < MIME_PARAMS_MAX) {
		if (s[i] != ';') {
			i++;
			continue;
		}
		i = skip_lwsp(s, i + 1, e);
		size_t k0 = i;
		while (i < e && is_token(s[i]))
			i++;
		/* on an error, Dovecot skips the byte it stopped at (even a ';') and looks for the
		 * next ';' */
		size_t k1 = i;
		if (k1 == k0) {
			i++;
			continue;
		}
		i = skip_lwsp(s, i, e);
		if (i >= e || s[i] != '=') {
			i++;
			continue;
		}
		size_t cs = SIZE_MAX, ce = 0;
		i = mime_skip_cfws(s, i + 1, e, &cs, &ce);
		if (cs != SIZE_MAX && ce == e) /* unterminated comment: dropped (as Dovecot) */
			continue;
		size_t v0, vlen;
		size_t mark = pl->sb.len;
		if (i < e && s[i] == '"') {
			bool closed;
			i = mime_parse_quoted(s, i, e, &pl->sb, &closed);
			if (!closed) { /* unterminated: the parameter is dropped (as Dovecot) */
				pl->sb.len = mark;
				continue;
			}
			v0 = mark;
			vlen = pl->sb.len - mark;
		} else {
			size_t t0 = i;
			if (i < e &&
			    s[i] == '=') /* broken name==?utf-8?...: taken up to ';' or WSP */
				while (i < e && s[i] != ';' && !is_wsp(s[i]) && s[i] != '\r' &&
				       s[i] != '\n')
					i++;
			else
				while (i < e && is_token(s[i]))
					i++;
			v0 = pl->sb.len;
			buf_append(&pl->sb, s + t0, i - t0);
			vlen = i - t0;
		}
		/* key after the value so both live in sb; store the key now */
		size_t koff = pl->sb.len;
		buf_append(&pl->sb, s + k0, k1 - k0);
		struct param *p = &pl->p[pl->n++];
		memset(p, 0, sizeof *p);
		p->k_off = koff;
		p->k_len = k1 - k0;
		p->v_off = v0;
		p->v_len = vlen;
		/* RFC 2231 §3/§4 name: key*N, key*N*, key* */
		const unsigned char *k = s + k0, *star = memchr(k, '*', k1 - k0);
		if (star != NULL) {
			size_t j = (size_t)(star - k), kl = k1 - k0;
			/* XXX: a bare "key*" takes the section number of the previous one, a
			 * Dovecot 2.3 quirk we copy so BODYSTRUCTURE matches it */
			uint32_t idx = carry;
			if (j + 1 < kl) {
				j++;
				idx = 0;
				while (j < kl && k[j] >= '0' && k[j] <= '9') {
					if (idx < 100000)
						idx = idx * 10 + (uint32_t)(k[j] - '0');
					j++;
				}
				carry = idx;
			}
			bool ext = false;
			if (j < kl && k[j] == '*') {
				ext = true;
				j++;
			}
			if (j == kl) {
				p->is2231 = true;
				p->ext = ext;
				p->idx = idx;
				p->k_len = (size_t)(star - k);
			}
		}
		i = skip_lwsp(s, i, e);
	}
}

static int
param_key_cmp(const struct plist *pl, const struct param *a, const struct param *b)
{
	size_t n = a->k_len < b->k_len ? a->k_len : b->k_len;
	int r = memcmp(pk(pl, a), pk(pl, b), n);
	if (r != 0)
		return r;
	return a->k_len < b->k_len ? -1 : a->k_len > b->k_len ? 1 : 0;
}

/* Parses the parameters of s[i, e) into out (reset first), merging RFC 2231 continuations:
 * plain parameters first in their order, then the RFC 2231 ones sorted by name; a complete
 * sequence key*0..key*N becomes "key" (or "key*" with its charset'lang' prefix when any piece
 * was extended); an incomplete one is kept piece by piece. */
void
mime_params_parse(struct plist *raw, struct plist *out, const unsigned char *s, size_t i, size_t e)
{
	raw->n = 0;
	buf_reset(&raw->sb);
	out->n = 0;
	buf_reset(&out->sb);
	params_parse_raw(raw, s, i, e);
	size_t order[MIME_PARAMS_MAX], no = 0;
	for (size_t j = 0; j < raw->n; j++) {
		const struct param *p = &raw->p[j];
		if (!p->is2231)
			plist_add(out, pk(raw, p), p->k_len, pv(raw, p), p->v_len);
		else
			order[no++] = j;
	}
	/* stable insertion sort by (key, idx); n <= MIME_PARAMS_MAX */
	for (size_t a = 1; a < no; a++) {
		size_t v = order[a], b = a;
		while (b > 0) {
			const struct param *x = &raw->p[order[b - 1]], *y = &raw->p[v];
			int c = param_key_cmp(raw, x, y);
			if (c < 0 || (c == 0 && x->idx <= y->idx))
				break;
			order[b] = order[b - 1];
			b--;
		}
		order[b] = v;
	}
	struct buf val;
	buf_init(&val, 0);
	for (size_t a = 0, next; a < no; a = next) {
		const struct param *first = &raw->p[order[a]];
		bool ok = true, have_ext = false;
		uint32_t want = 0;
		for (next = a; next < no; next++) {
			const struct param *p = &raw->p[order[next]];
			if (param_key_cmp(raw, first, p) != 0)
				break;
			if (p->idx != want)
				ok = false;
			if (p->ext)
				have_ext = true;
			want++;
		}
		if (!ok) {
			for (size_t j = a; j < next; j++) {
				const struct param *p = &raw->p[order[j]];
				buf_reset(&val);
				buf_append(&val, pk(raw, p), p->k_len);
				buf_printf(&val, p->ext ? "*%u*" : "*%u", p->idx);
				plist_add(out, val.data, val.len, pv(raw, p), p->v_len);
			}
			continue;
		}
		buf_reset(&val);
		if (!first->ext && have_ext)
			buf_append(&val, "''", 2);
		for (size_t j = a; j < next; j++) {
			const struct param *p = &raw->p[order[j]];
			const unsigned char *v = pv(raw, p);
			if (!p->ext && have_ext) {
				for (size_t x = 0; x < p->v_len; x++) {
					if (v[x] == '%')
						buf_append(&val, "%25", 3);
					else
						buf_append_byte(&val, v[x]);
				}
			} else {
				buf_append(&val, v, p->v_len);
			}
		}
		size_t vl = val.len;
		buf_append(&val, pk(raw, first), first->k_len);
		if (have_ext)
			buf_append_byte(&val, '*');
		plist_add(out, val.data + vl, val.len - vl, val.data, vl);
	}
	buf_deinit(&val);
}

const struct param *
mime_plist_find(const struct plist *pl, const char *key)
{
	for (size_t j = 0; j < pl->n; j++)
		if (slice_ieq(pk(pl, &pl->p[j]), pl->p[j].k_len, key))
			return &pl->p[j];
	return NULL;
}

/* Content-Type: type "/" subtype (RFC 2045 §5.1). Returns true when both parsed and nothing but
 * parameters follow (then *params_r is where they start). On false, *type_r is empty (an invalid
 * field) or the lone type of "Content-Type: text" (kept without subtype, as Dovecot). */
bool
mime_ctype_parse(const unsigned char *s, size_t e, struct slice *type_r, struct slice *sub_r,
                 size_t *params_r)
{
	size_t i = skip_lwsp(s, 0, e), t0 = i;
	*type_r = *sub_r = slice_make("", 0);
	while (i < e && is_token(s[i]))
		i++;
	if (i == t0)
		return false;
	size_t t1 = i;
	i = skip_lwsp(s, i, e);
	if (i >= e) { /* "text" alone: kept without subtype and parameters (as Dovecot) */
		*type_r = slice_make(s + t0, t1 - t0);
		return false;
	}
	if (s[i] != '/')
		return false;
	i = skip_lwsp(s, i + 1, e);
	size_t s0 = i;
	while (i < e && is_token(s[i]))
		i++;
	size_t s1 = i;
	i = skip_lwsp(s, i, e);
	if (i < e && s[i] != ';')
		return false; /* junk after the subtype: the whole field is invalid */
	*type_r = slice_make(s + t0, t1 - t0);
	*sub_r = slice_make(s + s0, s1 - s0);
	*params_r = i;
	return true;
}

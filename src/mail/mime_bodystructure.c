/* BODY and BODYSTRUCTURE (RFC 9051 §7.5.2, RFC 3501 §7.4.2) of a parsed part tree, written as
 * Dovecot 2.3 writes them: its defaults for a missing or invalid Content-Type (text/plain
 * us-ascii, message/rfc822 in a digest, application/octet-stream past a limit), the lower-case
 * default for a bare top-level text/plain 7bit part, parameters merged per RFC 2231
 * (mime_params.c), and sizes and line counts from the raw bytes. Recursion follows the tree,
 * whose depth mime.c bounds by MIME_DEPTH_MAX. */
#include <stdio.h>
#include <string.h>

#include "mail/mime_private.h"

static size_t
count_lines(const unsigned char *m, size_t s, size_t e)
{
	size_t n = 0;
	while (s < e) {
		const unsigned char *lf = memchr(m + s, '\n', e - s);
		if (lf == NULL)
			break;
		n++;
		s = (size_t)(lf - m) + 1;
	}
	return n;
}

static void
bs_cstr(struct buf *out, const char *s)
{
	mime_out_string(out, (const unsigned char *)s, strlen(s));
}

static bool
field_get(const struct mp *p, const struct node *nd, int f, const unsigned char **v, size_t *n)
{
	if (!(nd->fields & (1u << f)))
		return false;
	size_t o = nd->f_off[f], l = nd->f_len[f];
	trim_value(p->m, &o, &l);
	*v = p->m + o;
	*n = l;
	return true;
}

static void
write_nstring_field(struct wctx *w, const struct node *nd, int f, struct buf *out)
{
	const unsigned char *v;
	size_t n;
	if (field_get(w->p, nd, f, &v, &n))
		mime_out_string(out, v, n);
	else
		buf_append_str(out, "NIL");
}

/* The Content-Transfer-Encoding token, or NULL when absent or not a single token. */
bool
mime_cte_get(const struct mp *p, const struct node *nd, struct slice *tok)
{
	const unsigned char *v;
	size_t n;
	if (!field_get(p, nd, F_CTE, &v, &n))
		return false;
	size_t i = 0;
	while (i < n && is_token(v[i]))
		i++;
	if (i == 0 || skip_lwsp(v, i, n) != n)
		return false;
	*tok = slice_make(v, i);
	return true;
}

/* Parameter list "(k v ...)" or NIL; text parts get "charset" "us-ascii" when they have no
 * charset (as Dovecot). */
static void
write_params(struct wctx *w, const unsigned char *s, size_t i, size_t e, bool text, struct buf *out)
{
	struct plist *pl = &w->p->pl;
	mime_params_parse(&w->p->raw, pl, s, i, e);
	bool add_cs = text && mime_plist_find(pl, "charset") == NULL;
	if (pl->n == 0 && !add_cs) {
		buf_append_str(out, "NIL");
		return;
	}
	buf_append_byte(out, '(');
	for (size_t j = 0; j < pl->n; j++) {
		if (j > 0)
			buf_append_byte(out, ' ');
		mime_out_string(out, pk(pl, &pl->p[j]), pl->p[j].k_len);
		buf_append_byte(out, ' ');
		mime_out_string(out, pv(pl, &pl->p[j]), pl->p[j].v_len);
	}
	if (add_cs)
		buf_append_str(out, pl->n > 0 ? " \"charset\" \"us-ascii\""
		                              : "\"charset\" \"us-ascii\"");
	buf_append_byte(out, ')');
}

static void
write_ct_params(struct wctx *w, const struct node *nd, bool text, struct buf *out)
{
	struct slice t, s;
	size_t pa = 0;
	const unsigned char *ct = w->p->m + nd->f_off[F_CT];
	if ((nd->flags & N_HAS_CT) && mime_ctype_parse(ct, nd->f_len[F_CT], &t, &s, &pa))
		write_params(w, ct, pa, nd->f_len[F_CT], text, out);
	else
		write_params(w, ct, 0, 0, text, out);
}

static void
write_disposition(struct wctx *w, const struct node *nd, struct buf *out)
{
	const unsigned char *v;
	size_t n;
	if (!field_get(w->p, nd, F_CDISP, &v, &n)) {
		buf_append_str(out, "NIL");
		return;
	}
	size_t i = skip_lwsp(v, 0, n), t0 = i;
	while (i < n && is_token(v[i]))
		i++;
	if (i == t0) {
		buf_append_str(out, "NIL");
		return;
	}
	buf_append_byte(out, '(');
	mime_out_string(out, v + t0, i - t0);
	buf_append_byte(out, ' ');
	write_params(w, v, skip_lwsp(v, i, n), n, false, out);
	buf_append_byte(out, ')');
}

static void
write_language(struct wctx *w, const struct node *nd, struct buf *out)
{
	const unsigned char *v;
	size_t n, count = 0;
	if (field_get(w->p, nd, F_CLANG, &v, &n)) {
		size_t i = skip_lwsp(v, 0, n);
		while (i < n) {
			size_t a = i;
			while (i < n && is_atext(v[i]))
				i++;
			if (i == a)
				break;
			buf_append_str(out, count++ == 0 ? "(" : " ");
			mime_out_string(out, v + a, i - a);
			i = skip_lwsp(v, i, n);
			if (i >= n || v[i] != ',')
				break;
			i = skip_lwsp(v, i + 1, n);
		}
	}
	buf_append_str(out, count > 0 ? ")" : "NIL");
}

static void
write_ext_common(struct wctx *w, const struct node *nd, struct buf *out)
{
	buf_append_byte(out, ' ');
	write_disposition(w, nd, out);
	buf_append_byte(out, ' ');
	write_language(w, nd, out);
	buf_append_byte(out, ' ');
	write_nstring_field(w, nd, F_CLOC, out);
}

#define EMPTY_TEXT "(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 0 0"
#define EMPTY_EXT  " NIL NIL NIL NIL"

/* Dovecot writes a top-level text/plain; charset=us-ascii 7bit part with nothing else in its
 * header as the lower-case default (imap_bodystructure_is_plain_7bit). */
static bool
is_plain_7bit(struct wctx *w, const struct node *nd)
{
	if (!(nd->flags & N_TEXT) || (nd->flags & N_DIGEST))
		return false;
	if (nd->flags & N_HAS_CT) {
		struct slice t, s;
		size_t pa = 0;
		const unsigned char *ct = w->p->m + nd->f_off[F_CT];
		if (!mime_ctype_parse(ct, nd->f_len[F_CT], &t, &s, &pa) ||
		    !slice_ieq((const unsigned char *)s.p, s.len, "plain"))
			return false;
		struct plist *pl = &w->p->pl;
		mime_params_parse(&w->p->raw, pl, ct, pa, nd->f_len[F_CT]);
		if (pl->n > 1 ||
		    (pl->n == 1 && !(slice_ieq(pk(pl, &pl->p[0]), pl->p[0].k_len, "charset") &&
		                     slice_ieq(pv(pl, &pl->p[0]), pl->p[0].v_len, "us-ascii"))))
			return false;
	}
	struct slice cte;
	if (mime_cte_get(w->p, nd, &cte) &&
	    !slice_ieq((const unsigned char *)cte.p, cte.len, "7bit"))
		return false;
	uint32_t other = 1u << F_CID | 1u << F_CDESC | 1u << F_CMD5 | 1u << F_CDISP |
	                 1u << F_CLANG | 1u << F_CLOC;
	return (nd->fields & other) == 0;
}

void
mime_write_part(struct wctx *w, uint32_t ni, bool ext, struct buf *out)
{
	const struct mp *p = w->p;
	const struct node *nd = &p->nodes[ni];
	struct slice type = slice_make("", 0), sub = slice_make("", 0);
	size_t pa;
	if (nd->flags & N_HAS_CT)
		mime_ctype_parse(p->m + nd->f_off[F_CT], nd->f_len[F_CT], &type, &sub, &pa);
	if (nd->flags & N_MULTIPART) {
		buf_append_byte(out, '(');
		if (nd->nchildren == 0) {
			buf_append_str(out, EMPTY_TEXT);
			buf_append_str(out, ext ? EMPTY_EXT ")" : ")");
		}
		for (uint32_t c = ni + 1, k = 0; k < nd->nchildren; k++) {
			mime_write_part(w, c, ext, out);
			c += p->nodes[c].subtree;
		}
		buf_append_byte(out, ' ');
		mime_out_string(out, (const unsigned char *)sub.p, sub.len);
		if (ext) {
			buf_append_byte(out, ' ');
			write_ct_params(w, nd, false, out);
			write_ext_common(w, nd, out);
		}
		buf_append_byte(out, ')');
		return;
	}
	size_t size = nd->body_end - nd->body_start;
	bool text = nd->flags & N_TEXT;
	if (ni == 0 && is_plain_7bit(w, nd)) {
		buf_printf(out, EMPTY_TEXT);
		out->len -= 4; /* " 0 0" */
		buf_printf(out, " %zu %zu%s)", size,
		           count_lines(p->m, nd->body_start, nd->body_end), ext ? EMPTY_EXT : "");
		return;
	}
	buf_append_byte(out, '(');
	if (nd->flags & N_OPAQUE) {
		buf_append_str(out, "\"application\" \"octet-stream\"");
	} else if (!(nd->flags & N_HAS_CT)) {
		buf_append_str(out, nd->flags & N_DIGEST ? "\"message\" \"rfc822\""
		                                         : "\"text\" \"plain\"");
	} else {
		mime_out_string(out, (const unsigned char *)type.p, type.len);
		buf_append_byte(out, ' ');
		mime_out_string(out, (const unsigned char *)sub.p, sub.len);
	}
	buf_append_byte(out, ' ');
	write_ct_params(w, nd, text, out);
	buf_append_byte(out, ' ');
	write_nstring_field(w, nd, F_CID, out);
	buf_append_byte(out, ' ');
	write_nstring_field(w, nd, F_CDESC, out);
	buf_append_byte(out, ' ');
	struct slice cte;
	if (mime_cte_get(p, nd, &cte))
		mime_out_string(out, (const unsigned char *)cte.p, cte.len);
	else
		bs_cstr(out, "7bit");
	buf_printf(out, " %zu", size);
	if (text)
		buf_printf(out, " %zu", count_lines(p->m, nd->body_start, nd->body_end));
	if (nd->flags & N_RFC822) {
		buf_append_byte(out, ' ');
		if (nd->nchildren == 1) {
			mime_write_envelope(w, &p->nodes[ni + 1], out);
			buf_append_byte(out, ' ');
			mime_write_part(w, ni + 1, ext, out);
		} else {
			buf_append_str(out,
			               "(NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL) " EMPTY_TEXT);
			buf_append_str(out, ext ? EMPTY_EXT ")" : ")");
		}
		buf_printf(out, " %zu", count_lines(p->m, nd->body_start, nd->body_end));
	}
	if (ext) {
		buf_append_byte(out, ' ');
		write_nstring_field(w, nd, F_CMD5, out);
		write_ext_common(w, nd, out);
	}
	buf_append_byte(out, ')');
}

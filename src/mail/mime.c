/* MIME structure of a stored message (see mime.h): one linear pass over the raw bytes finds the
 * header and body of every part (boundary lines are matched the way Dovecot's message parser
 * does: "--" + boundary as a prefix of the line, innermost boundary first, the line break before
 * a boundary belongs to the boundary). mime_meta_build then has ENVELOPE (mime_envelope.c), BODY
 * and BODYSTRUCTURE (mime_bodystructure.c) written from the part tree with Dovecot 2.3's choices
 * (checked against a live Dovecot: tests/testdata/mime/, tools/update-golden.sh) and the part
 * table serialised (mime_parts.c). Offsets are always those of the raw input, so FETCH serves
 * the stored bytes. GMime is used for what it is good at (RFC 2047 words, charsets, transfer
 * decoding) in mime_search.c, which walks the text parts found here.
 *
 * Work is bounded: MIME_DEPTH_MAX nesting, MIME_PARTS_MAX parts, MIME_PARAMS_MAX parameters per
 * header; every scan is linear in the input (times the nesting depth at worst). */
#include "mail/mime.h"

#include <gmime/gmime.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "mail/mime_private.h"
#include "util/xalloc.h"

/* ---- one-time GMime init ---- */

static pthread_once_t mime_once = PTHREAD_ONCE_INIT;
static bool mime_ok;

static void
mime_init_once(void)
{
	g_mime_init();
	mime_ok = true;
}

bool
mime_init(void)
{
	pthread_once(&mime_once, mime_init_once);
	return mime_ok;
}

/* ---- header fields ---- */

static size_t
line_next(const unsigned char *m, size_t pos, size_t e)
{
	const unsigned char *lf = memchr(m + pos, '\n', e - pos);
	return lf ? (size_t)(lf - m) + 1 : e;
}

/* Next field of the header section m[*pos, e): its name and raw value (after ':' up to the end
 * of its last line, folds included, final line break excluded). Lines that are neither a field
 * nor a fold are skipped. */
bool
mime_field_next(const unsigned char *m, size_t e, size_t *pos, struct slice *name_r, size_t *voff_r,
                size_t *vlen_r)
{
	while (*pos < e) {
		size_t ls = *pos, next = line_next(m, ls, e);
		*pos = next;
		if (is_wsp(m[ls]))
			continue;
		size_t le = next;
		if (le > ls && m[le - 1] == '\n')
			le--;
		const unsigned char *colon = memchr(m + ls, ':', le - ls);
		if (colon == NULL)
			continue;
		size_t vend = le;
		while (next < e && is_wsp(m[next])) {
			size_t n2 = line_next(m, next, e);
			vend = n2;
			if (vend > next && m[vend - 1] == '\n')
				vend--;
			next = n2;
		}
		if (vend > ls && m[vend - 1] == '\r')
			vend--;
		*pos = next;
		size_t nend = (size_t)(colon - m);
		while (nend > ls && is_wsp(m[nend - 1]))
			nend--;
		*name_r = slice_make(m + ls, nend - ls);
		*voff_r = (size_t)(colon - m) + 1;
		*vlen_r = vend > *voff_r ? vend - *voff_r : 0;
		return true;
	}
	return false;
}

/* ---- the part tree ---- */

static const char *const field_names[F_N] = {
    "Content-Type", "Content-Transfer-Encoding", "Content-ID",       "Content-Description",
    "Content-MD5",  "Content-Disposition",       "Content-Language", "Content-Location",
};

/* Index of the boundary (innermost first) that the line at pos is a delimiter for, or -1.
 * *close_r: the closing delimiter "--b--". */
static int
boundary_at(const struct mp *p, size_t pos, bool *close_r)
{
	if (p->nbnd == 0 || p->len - pos < 2 || p->m[pos] != '-' || p->m[pos + 1] != '-')
		return -1;
	size_t rest = p->len - pos - 2;
	const unsigned char *l = p->m + pos + 2;
	int best = -1;
	size_t best_len = 0;
	/* innermost first; the longest matching prefix wins (as Dovecot's boundary_find) */
	for (size_t i = p->nbnd; i-- > 0;) {
		const struct buf *b = &p->bnd[i].b;
		if (rest >= b->len && (best < 0 || b->len > best_len) &&
		    memcmp(l, b->data ? b->data : (const unsigned char *)"", b->len) == 0) {
			best = (int)i;
			best_len = b->len;
		}
	}
	if (best >= 0)
		*close_r = rest - best_len >= 2 && l[best_len] == '-' && l[best_len + 1] == '-';
	return best;
}

/* The end of the content before the boundary line at pos: its line break belongs to the
 * boundary (RFC 2046 §5.1.1). */
static size_t
before_break(const struct mp *p, size_t pos, size_t floor)
{
	if (pos > floor && p->m[pos - 1] == '\n') {
		pos--;
		if (pos > floor && p->m[pos - 1] == '\r')
			pos--;
	}
	return pos;
}

static uint32_t
node_new(struct mp *p, uint32_t depth)
{
	if (p->n == p->cap) {
		p->cap = p->cap ? p->cap * 2 : 16;
		p->nodes = xrealloc(p->nodes, p->cap * sizeof *p->nodes);
	}
	struct node *nd = &p->nodes[p->n];
	memset(nd, 0, sizeof *nd);
	nd->depth = depth;
	nd->subtree = 1;
	return (uint32_t)p->n++;
}

/* Skips lines from p->pos up to a boundary line (returns its index, p->pos at the line) or the
 * end (returns -1, p->pos == len). */
static int
skip_to_boundary(struct mp *p, bool *close_r)
{
	while (p->pos < p->len) {
		int b = boundary_at(p, p->pos, close_r);
		if (b >= 0)
			return b;
		p->pos = line_next(p->m, p->pos, p->len);
	}
	return -1;
}

static int parse_part(struct mp *p, uint32_t ni, bool in_digest, bool *close_r);

/* Reads the header of node ni at p->pos: up to the blank line (included), a boundary line, or
 * the end. Returns the boundary hit (-1 for none). */
static int
parse_header(struct mp *p, uint32_t ni, bool in_digest, bool *close_r)
{
	size_t start = p->pos;
	int hit = -1;
	struct node *nd = &p->nodes[ni];
	nd->hdr_start = start;
	for (;;) {
		if (p->pos >= p->len) {
			nd->hdr_end = nd->body_start = p->len;
			break;
		}
		hit = boundary_at(p, p->pos, close_r);
		if (hit >= 0) {
			nd->hdr_end = nd->body_start = before_break(p, p->pos, start);
			break;
		}
		size_t next = line_next(p->m, p->pos, p->len);
		size_t l = next - p->pos;
		if ((l == 1 && p->m[p->pos] == '\n') ||
		    (l == 2 && p->m[p->pos] == '\r' && p->m[p->pos + 1] == '\n')) {
			p->pos = next;
			nd->hdr_end = nd->body_start = next;
			break;
		}
		p->pos = next;
	}
	/* the Content-* fields: first occurrence wins (as Dovecot) */
	size_t fp = nd->hdr_start, voff, vlen;
	struct slice name;
	bool mime_version = false;
	while (mime_field_next(p->m, nd->hdr_end, &fp, &name, &voff, &vlen)) {
		if (slice_ieq((const unsigned char *)name.p, name.len, "MIME-Version"))
			mime_version = true;
		if (name.len < 10 || strncasecmp(name.p, "Content-", 8) != 0)
			continue;
		for (int f = 0; f < F_N; f++) {
			if (!(nd->fields & (1u << f)) &&
			    slice_ieq((const unsigned char *)name.p, name.len, field_names[f])) {
				nd->fields |= 1u << f;
				nd->f_off[f] = voff;
				nd->f_len[f] = vlen;
			}
		}
	}
	/* a message's Content-* fields count only in a MIME message: one with MIME-Version or
	 * Content-Type (as Dovecot); parts of a multipart always are MIME */
	if ((nd->flags & N_MESSAGE) && !mime_version && !(nd->fields & (1u << F_CT)))
		nd->fields = 0;
	struct slice type, sub;
	size_t params_at = 0;
	bool have_sub = false;
	if (nd->fields & (1u << F_CT)) {
		have_sub = mime_ctype_parse(p->m + nd->f_off[F_CT], nd->f_len[F_CT], &type, &sub,
		                            &params_at);
		if (type.len > 0)
			nd->flags |= N_HAS_CT;
	}
	if (!(nd->flags & N_HAS_CT)) {
		nd->flags |= in_digest ? N_DIGEST | N_RFC822 : N_TEXT;
	} else if (slice_ieq((const unsigned char *)type.p, type.len, "text")) {
		nd->flags |= N_TEXT;
	} else if (slice_ieq((const unsigned char *)type.p, type.len, "multipart")) {
		/* without a subtype it is opaque data (as Dovecot) */
		nd->flags |= have_sub ? N_MULTIPART : N_OPAQUE;
	} else if (slice_ieq((const unsigned char *)type.p, type.len, "message") &&
	           slice_ieq((const unsigned char *)sub.p, sub.len, "rfc822")) {
		nd->flags |= N_RFC822;
	}
	if ((nd->flags & (N_MULTIPART | N_RFC822)) &&
	    (nd->depth >= MIME_DEPTH_MAX || p->n >= MIME_PARTS_MAX)) {
		nd->flags &= ~(uint32_t)(N_MULTIPART | N_RFC822 | N_DIGEST);
		nd->flags |= N_OPAQUE;
	}
	/* the boundary, pushed by the caller once the header is done */
	if ((nd->flags & N_MULTIPART) && have_sub) {
		if (slice_ieq((const unsigned char *)sub.p, sub.len, "digest"))
			nd->flags |= N_IS_DIGEST;
		const unsigned char *ct = p->m + nd->f_off[F_CT];
		mime_params_parse(&p->raw, &p->pl, ct, params_at, nd->f_len[F_CT]);
		const struct param *b = mime_plist_find(&p->pl, "boundary");
		if (b != NULL && p->nbnd < MIME_DEPTH_MAX + 1) {
			struct buf *bb = &p->bnd[p->nbnd].b;
			buf_reset(bb);
			buf_append(bb, pv(&p->pl, b), b->v_len);
			p->nbnd++;
			return hit < 0 ? -2 : hit; /* -2: no hit, boundary pushed */
		}
	}
	return hit;
}

/* Parses node ni from p->pos (its header) to the end of its body, which is a boundary line of
 * an ancestor (returned, p->pos at that line) or the end of the input (-1). */
static int
parse_part(struct mp *p, uint32_t ni, bool in_digest, bool *close_r)
{
	size_t depth = p->nodes[ni].depth;
	size_t nbnd_before = p->nbnd;
	int hit = parse_header(p, ni, in_digest, close_r);
	bool pushed = p->nbnd > nbnd_before;
	if (hit == -2)
		hit = -1;
	if (hit >= 0 && hit < (int)nbnd_before) {
		/* the header was cut by an ancestor's boundary: empty body */
		p->nbnd = nbnd_before;
		p->nodes[ni].body_end = p->nodes[ni].body_start;
		if (p->nodes[ni].hdr_end < p->pos)
			p->gave_break_at = p->pos; /* its ancestors keep that break */
		return hit;
	}
	/* floor: a line break that ended a delimiter line stays in this body (as Dovecot) */
	size_t floor = p->nodes[ni].body_start;
	if (pushed) {
		int own = (int)nbnd_before;
		bool digest = p->nodes[ni].flags & N_IS_DIGEST;
		hit = skip_to_boundary(p, close_r); /* preamble */
		while (hit == own && !*close_r) {
			p->pos = line_next(p->m, p->pos, p->len);
			floor = p->pos;
			if (p->n >= MIME_PARTS_MAX) { /* the rest is not described */
				hit = skip_to_boundary(p, close_r);
				continue;
			}
			uint32_t ci = node_new(p, (uint32_t)depth + 1);
			hit = parse_part(p, ci, digest, close_r);
			p->nodes[ni].nchildren++;
			p->nodes[ni].subtree += p->nodes[ci].subtree;
		}
		p->nbnd = nbnd_before;
		if (hit == own) { /* closing delimiter, then the epilogue */
			p->pos = line_next(p->m, p->pos, p->len);
			floor = p->pos;
			hit = skip_to_boundary(p, close_r);
		}
	} else if (p->nodes[ni].flags & N_RFC822) {
		uint32_t ci = node_new(p, (uint32_t)depth + 1);
		p->nodes[ci].flags |= N_MESSAGE;
		hit = parse_part(p, ci, false, close_r);
		struct node *nd = &p->nodes[ni], *c = &p->nodes[ci];
		nd->nchildren = 1;
		nd->subtree += c->subtree;
		/* a child that gave its blank line to the boundary still has it in here */
		nd->body_end = hit >= 0 && p->pos == p->gave_break_at ? p->pos : c->body_end;
		if (hit >= 0 && c->hdr_start == c->body_end && nd->hdr_end == nd->body_start &&
		    c->body_end == nd->body_start) {
			/* empty message right before a boundary: as for an empty body below */
			size_t at = before_break(p, nd->body_start, nd->hdr_start);
			nd->hdr_end = nd->body_start = nd->body_end = at;
			c->hdr_start = c->hdr_end = c->body_start = c->body_end = at;
		}
		return hit;
	} else {
		hit = skip_to_boundary(p, close_r);
	}
	struct node *nd = &p->nodes[ni];
	if (hit >= 0 && p->pos == nd->body_start && nd->hdr_end == nd->body_start &&
	    floor == nd->body_start) {
		/* empty body right before an ancestor's boundary: the blank line's break is the
		 * boundary's (as Dovecot) */
		nd->hdr_end = nd->body_start = nd->body_end =
		    before_break(p, p->pos, nd->hdr_start);
		p->gave_break_at = p->pos;
		return hit;
	}
	if (hit < 0)
		nd->body_end = p->len;
	else if (p->pos == p->gave_break_at) /* ancestors of that part keep the break */
		nd->body_end = p->pos;
	else
		nd->body_end = before_break(p, p->pos, floor);
	return hit;
}

static void
mp_deinit(struct mp *p)
{
	for (size_t i = 0; i <= MIME_DEPTH_MAX; i++)
		buf_deinit(&p->bnd[i].b);
	buf_deinit(&p->raw.sb);
	buf_deinit(&p->pl.sb);
	x_free(&p->nodes);
}

static void
mp_parse(struct mp *p, const unsigned char *msg, size_t len)
{
	memset(p, 0, sizeof *p);
	p->m = msg ? msg : (const unsigned char *)"";
	p->len = msg ? len : 0;
	for (size_t i = 0; i <= MIME_DEPTH_MAX; i++)
		buf_init(&p->bnd[i].b, 0);
	buf_init(&p->raw.sb, 0);
	buf_init(&p->pl.sb, 0);
	p->gave_break_at = SIZE_MAX;
	uint32_t root = node_new(p, 0);
	bool close;
	p->nodes[root].flags |= N_MESSAGE;
	parse_part(p, root, false, &close);
}

/* ---- mime_meta_build ---- */

static char *
buf_steal(struct buf *b)
{
	char *s = b->data ? (char *)b->data : xstrdup("");
	b->data = NULL;
	b->len = b->cap = 0;
	return s;
}

int
mime_meta_build(const unsigned char *msg, size_t len, struct mime_meta *m)
{
	memset(m, 0, sizeof *m);
	buf_init(&m->parts, 0);
	if (!mime_init())
		return -1;
	struct mp p;
	mp_parse(&p, msg, len);
	struct wctx w;
	mime_wctx_init(&w, &p);
	struct buf b;
	buf_init(&b, 0);
	mime_write_envelope(&w, &p.nodes[0], &b);
	m->envelope = buf_steal(&b);
	mime_write_part(&w, 0, false, &b);
	m->body = buf_steal(&b);
	mime_write_part(&w, 0, true, &b);
	m->bodystructure = buf_steal(&b);
	mime_parts_write(&p, &m->parts);
	mime_wctx_deinit(&w);
	mp_deinit(&p);
	return 0;
}

void
mime_meta_deinit(struct mime_meta *m)
{
	x_free(&m->envelope);
	x_free(&m->body);
	x_free(&m->bodystructure);
	buf_deinit(&m->parts);
}

/* ---- for mime_search.c (mime_private.h) ---- */

size_t
mime_header_end(const unsigned char *msg, size_t len)
{
	size_t pos = 0;
	while (pos < len) {
		size_t next = line_next(msg, pos, len), l = next - pos;
		if ((l == 1 && msg[pos] == '\n') ||
		    (l == 2 && msg[pos] == '\r' && msg[pos + 1] == '\n'))
			return next;
		pos = next;
	}
	return len;
}

void
mime_text_parts(const unsigned char *msg, size_t len, mime_text_fn *fn, void *ctx)
{
	struct mp p;
	mp_parse(&p, msg, len);
	char cs[64];
	for (size_t i = 0; i < p.n; i++) {
		const struct node *nd = &p.nodes[i];
		if (i > 0 && (nd->flags & N_MESSAGE)) {
			struct mime_text_part hp = {
			    .body = slice_make(p.m + nd->hdr_start, nd->hdr_end - nd->hdr_start),
			    .is_header = true,
			};
			if (!fn(ctx, &hp))
				break;
		}
		if (!(nd->flags & N_TEXT))
			continue;
		struct mime_text_part tp = {
		    .body = slice_make(p.m + nd->body_start, nd->body_end - nd->body_start),
		    .charset = slice_make("", 0),
		    .cte = slice_make("", 0),
		};
		struct slice t, s;
		size_t pa = 0;
		const unsigned char *ct = p.m + nd->f_off[F_CT];
		if ((nd->flags & N_HAS_CT) && mime_ctype_parse(ct, nd->f_len[F_CT], &t, &s, &pa)) {
			mime_params_parse(&p.raw, &p.pl, ct, pa, nd->f_len[F_CT]);
			const struct param *c = mime_plist_find(&p.pl, "charset");
			if (c != NULL && c->v_len < sizeof cs) {
				memcpy(cs, pv(&p.pl, c), c->v_len);
				cs[c->v_len] = '\0';
				tp.charset = slice_make(cs, c->v_len);
			}
		}
		mime_cte_get(&p, nd, &tp.cte);
		if (!fn(ctx, &tp))
			break;
	}
	mp_deinit(&p);
}

/* The part table: the byte ranges of every part of a message, serialised at delivery next to
 * ENVELOPE and BODYSTRUCTURE (mime_meta.parts) so that FETCH BODY[section] finds a section by
 * offsets without parsing the message again. mime_parts_find reads the table defensively (it
 * comes from storage): every record index and subtree size is checked against the count and the
 * length before use. */
#include <string.h>

#include "mail/mime_private.h"

/* Format:
 * "LMP1", u32 count, then count records in pre-order (little-endian): u64 hdr_start, hdr_end,
 * body_start, body_end; u32 nchildren, subtree (nodes in the subtree, itself included), flags. */
#define PT_MAGIC "LMP1"
#define PT_HDR   8
#define PT_REC   44
enum { PT_MULTIPART = 1, PT_MESSAGE = 2 };

/* n-byte little-endian integers (n is 4 or 8) */
static void
put_le(unsigned char *d, uint64_t v, int n)
{
	for (int i = 0; i < n; i++)
		d[i] = (unsigned char)(v >> (8 * i));
}

static uint64_t
get_le(const unsigned char *d, int n)
{
	uint64_t v = 0;
	for (int i = n - 1; i >= 0; i--)
		v = v << 8 | d[i];
	return v;
}

void
mime_parts_write(const struct mp *p, struct buf *out)
{
	unsigned char h[PT_HDR], r[PT_REC];
	memcpy(h, PT_MAGIC, 4);
	put_le(h + 4, (uint32_t)p->n, 4);
	buf_append(out, h, sizeof h);
	for (size_t i = 0; i < p->n; i++) {
		const struct node *nd = &p->nodes[i];
		put_le(r, nd->hdr_start, 8);
		put_le(r + 8, nd->hdr_end, 8);
		put_le(r + 16, nd->body_start, 8);
		put_le(r + 24, nd->body_end, 8);
		put_le(r + 32, nd->nchildren, 4);
		put_le(r + 36, nd->subtree, 4);
		uint32_t fl = 0;
		if (nd->flags & N_MULTIPART)
			fl |= PT_MULTIPART;
		if ((nd->flags & N_RFC822) && nd->nchildren == 1)
			fl |= PT_MESSAGE;
		put_le(r + 40, fl, 4);
		buf_append(out, r, sizeof r);
	}
}

struct pt_rec {
	uint64_t hs, he, bs, be;
	uint32_t nchildren, subtree, flags;
};

static bool
pt_get(struct slice parts, uint32_t count, uint32_t i, struct pt_rec *r)
{
	if (i >= count)
		return false;
	const unsigned char *d = (const unsigned char *)parts.p + PT_HDR + (size_t)i * PT_REC;
	r->hs = get_le(d, 8);
	r->he = get_le(d + 8, 8);
	r->bs = get_le(d + 16, 8);
	r->be = get_le(d + 24, 8);
	r->nchildren = (uint32_t)get_le(d + 32, 4);
	r->subtree = (uint32_t)get_le(d + 36, 4);
	r->flags = (uint32_t)get_le(d + 40, 4);
	return r->subtree >= 1;
}

bool
mime_parts_find(struct slice parts, const uint32_t *path, size_t n, struct mime_section *s_r)
{
	memset(s_r, 0, sizeof *s_r);
	if (parts.len < PT_HDR || memcmp(parts.p, PT_MAGIC, 4) != 0)
		return false;
	uint32_t count = (uint32_t)get_le((const unsigned char *)parts.p + 4, 4);
	if (count == 0 || (parts.len - PT_HDR) / PT_REC < count)
		return false;
	uint32_t cur = 0;
	struct pt_rec r;
	if (!pt_get(parts, count, cur, &r))
		return false;
	if (n == 0) {
		s_r->header_start = s_r->msg_header_start = r.hs;
		s_r->header_end = s_r->msg_header_end = r.he;
		s_r->body_start = s_r->text_start = r.bs;
		s_r->body_end = s_r->text_end = r.be;
		s_r->is_message = true;
		s_r->is_multipart = r.flags & PT_MULTIPART;
		return true;
	}
	for (size_t k = 0; k < n; k++) {
		uint32_t num = path[k];
		if (num == 0)
			return false;
		if (r.flags & PT_MULTIPART) {
			if (num > r.nchildren)
				return false;
			uint32_t c = cur + 1;
			struct pt_rec cr;
			for (uint32_t j = 1;; j++) {
				if (!pt_get(parts, count, c, &cr))
					return false;
				if (j == num)
					break;
				if (cr.subtree > count - c)
					return false;
				c += cr.subtree;
			}
			cur = c;
			r = cr;
		} else if (num != 1) {
			return false; /* a non-multipart has only part 1: itself (RFC 9051 §6.4.5)
			               */
		}
		if (k + 1 < n && (r.flags & PT_MESSAGE)) { /* continue inside message/rfc822 */
			cur++;
			if (!pt_get(parts, count, cur, &r))
				return false;
		}
	}
	s_r->header_start = r.hs;
	s_r->header_end = r.he;
	s_r->body_start = s_r->text_start = r.bs;
	s_r->body_end = s_r->text_end = r.be;
	s_r->is_multipart = r.flags & PT_MULTIPART;
	struct pt_rec er;
	if ((r.flags & PT_MESSAGE) && pt_get(parts, count, cur + 1, &er)) {
		s_r->is_message = true;
		s_r->text_start = er.bs;
		s_r->text_end = er.be;
		s_r->msg_header_start = er.hs;
		s_r->msg_header_end = er.he;
	}
	return true;
}

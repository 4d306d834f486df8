/* DKIM tag=value lists (RFC 6376 §3.2), shared by DKIM-Signature fields and key records.
 * Zero-copy: names and values are slices of the input. The grammar:
 *   tag-list = tag-spec *( ";" tag-spec ) [ ";" ]
 *   tag-spec = [FWS] tag-name [FWS] "=" [FWS] tag-value [FWS]
 *   tag-name = ALPHA *( ALPHA / DIGIT / "_" ); tag-value = VALCHARs separated by FWS.
 * Bytes above 0x7E are accepted in values (8-bit z= copies exist in the wild). */
#include "dkim_private.h"

#include <string.h>

static bool
is_fws(unsigned char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static bool
is_alpha(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool
is_valchar(unsigned char c)
{
	return (c >= 0x21 && c <= 0x7e && c != ';') || c >= 0x80;
}

static size_t
skip_fws(const char *s, size_t len, size_t i)
{
	while (i < len && is_fws((unsigned char)s[i]))
		i++;
	return i;
}

int
dkim_tags_parse(const char *s, size_t len, struct dkim_tags *t, const char **err_r)
{
	t->n = 0;
	size_t i = skip_fws(s, len, 0);
	while (i < len) {
		/* tag-name */
		size_t ns = i;
		if (!is_alpha((unsigned char)s[i])) {
			*err_r = "tag list syntax error";
			return -1;
		}
		while (i < len && (is_alpha((unsigned char)s[i]) || (s[i] >= '0' && s[i] <= '9') ||
		                   s[i] == '_'))
			i++;
		size_t ne = i;
		i = skip_fws(s, len, i);
		if (i >= len || s[i] != '=') {
			*err_r = "tag list syntax error";
			return -1;
		}
		i++;
		size_t raw_start = i;
		i = skip_fws(s, len, i);
		size_t vs = i, ve = i;
		while (i < len && s[i] != ';') {
			unsigned char c = (unsigned char)s[i];
			if (is_valchar(c)) {
				ve = i + 1;
			} else if (!is_fws(c)) {
				*err_r = "tag list syntax error";
				return -1;
			}
			i++;
		}
		struct slice name = slice_make(s + ns, ne - ns);
		for (size_t k = 0; k < t->n; k++) {
			if (t->v[k].name.len == name.len &&
			    memcmp(t->v[k].name.p, name.p, name.len) == 0) {
				*err_r = "duplicate tag";
				return -1;
			}
		}
		if (t->n == DKIM_TAGS_MAX) {
			*err_r = "too many tags";
			return -1;
		}
		struct dkim_tag *tag = &t->v[t->n++];
		tag->name = name;
		tag->value = slice_make(s + vs, ve - vs);
		tag->raw_start = raw_start;
		tag->raw_end = i;
		if (i < len)
			i++; /* the ';' */
		i = skip_fws(s, len, i);
	}
	return 0;
}

const struct dkim_tag *
dkim_tags_get(const struct dkim_tags *t, const char *name)
{
	for (size_t k = 0; k < t->n; k++)
		if (slice_eq(t->v[k].name, name))
			return &t->v[k];
	return NULL;
}

bool
dkim_tags_list_next(struct slice v, size_t *pos, struct slice *elem_r)
{
	if (*pos > v.len || (*pos == v.len && (v.len == 0 || v.p[v.len - 1] != ':')))
		return false;
	size_t i = *pos;
	while (i < v.len && v.p[i] != ':')
		i++;
	size_t s = *pos, e = i;
	while (s < e && is_fws((unsigned char)v.p[s]))
		s++;
	while (e > s && is_fws((unsigned char)v.p[e - 1]))
		e--;
	*elem_r = slice_make(v.p + s, e - s);
	*pos = i + 1;
	return true;
}

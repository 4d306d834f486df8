/* Mustache-style templates for the REST API (DESIGN.md §7); the syntax and limits are in tmpl.h.
 * tmpl_compile() turns the source into a flat node array in which a section node records the
 * index just past its body, so rendering is a loop that recurses only into section bodies (at
 * most TMPL_DEPTH_MAX deep). Names are interned once per template: render-time missing-name
 * bookkeeping is a bitmap indexed by name id, so a name missing inside a 10,000-element list is
 * reported (or counted as dropped) once. A compiled template is never written after compile.
 *
 * Error positions (struct tmpl_error): the start of the offending tag ("{{"), also for an
 * unclosed tag (more useful than the end of input, which is where the scan gave up); for an
 * unclosed section, its opening tag; for an over-long source, the first byte past the limit. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tmpl/tmpl.h"
#include "util/xalloc.h"

/* Work bound for one render, in node visits plus section iterations: nested sections over
 * lists whose bodies print nothing would otherwise loop for a very long time without ever
 * reaching TMPL_OUTPUT_MAX. Exceeding it is an error like an oversize output. */

/* Room for names quoted in error messages (struct tmpl_error.msg has 160 bytes). */
#define TMPL_MSG_NAME 48

enum tmpl_kind {
	TMPL_TEXT,     /* src[off, off + len) */
	TMPL_VAR,      /* value of names[name], escaped when t->html */
	TMPL_RAW,      /* value of names[name], never escaped */
	TMPL_SECTION,  /* body is nodes (i, end) */
	TMPL_INVERTED, /* body is nodes (i, end) */
};

struct tmpl_node {
	enum tmpl_kind kind;
	uint32_t off, len; /* TMPL_TEXT */
	uint32_t name;     /* index into names; tags */
	uint32_t end;      /* sections: index of the first node after the body */
};

struct tmpl_name {
	char *full; /* NUL-terminated, as written (validated: [A-Za-z0-9_.-]+ or ".") */
	size_t len;
	uint32_t hash;
};

struct tmpl {
	char *src; /* owned copy of the source; text nodes point into it */
	size_t src_len;
	struct tmpl_node *nodes;
	size_t n_nodes;
	struct tmpl_name *names;
	size_t n_names;
	bool html;
};

/* ---- compile ---- */

struct compile {
	struct tmpl *t;
	const char *src; /* for error positions */
	size_t src_len;
	size_t cap_nodes, cap_names;
	uint32_t *table; /* open-addressed name index: name id + 1, 0 = empty */
	size_t table_cap;
	struct tmpl_error *e;
};

static void error_at(struct compile *c, size_t off, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
error_at(struct compile *c, size_t off, const char *fmt, ...)
{
	if (c->e == NULL)
		return;
	unsigned line = 1;
	size_t line_start = 0;
	for (size_t i = 0; i < off && i < c->src_len; i++)
		if (c->src[i] == '\n') {
			line++;
			line_start = i + 1;
		}
	c->e->line = line;
	c->e->column = (unsigned)(off - line_start + 1);
	va_list ap;
	va_start(ap, fmt);
	/* Truncation of a message is harmless; names in messages are already bounded. */
	(void)vsnprintf(c->e->msg, sizeof c->e->msg, fmt, ap);
	va_end(ap);
}

/* Length of a name as quoted in an error message. */
static int
msg_len(size_t len)
{
	return len > TMPL_MSG_NAME ? TMPL_MSG_NAME : (int)len;
}

static uint32_t
name_hash(const char *p, size_t len)
{
	uint32_t h = 2166136261u; /* FNV-1a */
	for (size_t i = 0; i < len; i++) {
		h ^= (unsigned char)p[i];
		h *= 16777619u;
	}
	return h;
}

static void
table_insert(uint32_t *table, size_t cap, uint32_t hash, uint32_t id)
{
	size_t i = hash & (cap - 1);
	while (table[i] != 0)
		i = (i + 1) & (cap - 1);
	table[i] = id + 1;
}

/* Returns the id of the name p[0..len), adding it when new. */
static uint32_t
name_intern(struct compile *c, const char *p, size_t len)
{
	struct tmpl *t = c->t;
	uint32_t h = name_hash(p, len);
	if (c->table_cap != 0) {
		for (size_t i = h & (c->table_cap - 1); c->table[i] != 0;
		     i = (i + 1) & (c->table_cap - 1)) {
			const struct tmpl_name *n = &t->names[c->table[i] - 1];
			if (n->hash == h && n->len == len && memcmp(n->full, p, len) == 0)
				return c->table[i] - 1;
		}
	}
	if ((t->n_names + 1) * 2 > c->table_cap) {
		size_t cap = c->table_cap ? c->table_cap * 2 : 64;
		uint32_t *table = xcalloc(cap, sizeof *table);
		for (size_t i = 0; i < t->n_names; i++)
			table_insert(table, cap, t->names[i].hash, (uint32_t)i);
		free(c->table);
		c->table = table;
		c->table_cap = cap;
	}
	if (t->n_names == c->cap_names) {
		c->cap_names = c->cap_names ? c->cap_names * 2 : 16;
		t->names = xrealloc(t->names, c->cap_names * sizeof *t->names);
	}
	uint32_t id = (uint32_t)t->n_names++;
	t->names[id] = (struct tmpl_name){xstrndup(p, len), len, h};
	table_insert(c->table, c->table_cap, h, id);
	return id;
}

static struct tmpl_node *
node_add(struct compile *c, enum tmpl_kind kind)
{
	struct tmpl *t = c->t;
	if (t->n_nodes == c->cap_nodes) {
		c->cap_nodes = c->cap_nodes ? c->cap_nodes * 2 : 32;
		t->nodes = xrealloc(t->nodes, c->cap_nodes * sizeof *t->nodes);
	}
	struct tmpl_node *n = &t->nodes[t->n_nodes++];
	*n = (struct tmpl_node){.kind = kind};
	return n;
}

static bool
is_space(char ch)
{
	return ch == ' ' || ch == '\t' || ch == '\r' || ch == '\n';
}

static bool
is_name_char(unsigned char ch)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
	       ch == '_' || ch == '.' || ch == '-';
}

/* Checks the (trimmed) name p[0..len) of the tag starting at tag_off. */
static bool
name_check(struct compile *c, size_t tag_off, const char *p, size_t len)
{
	if (len == 0) {
		error_at(c, tag_off, "empty tag name");
		return false;
	}
	for (size_t i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)p[i];
		if (is_name_char(ch))
			continue;
		if (ch >= 0x20 && ch < 0x7f)
			error_at(c, tag_off, "invalid character '%c' in tag name", ch);
		else
			error_at(c, tag_off, "invalid byte 0x%02x in tag name", ch);
		return false;
	}
	if (len > TMPL_NAME_MAX) {
		error_at(c, tag_off, "tag name longer than %d bytes", TMPL_NAME_MAX);
		return false;
	}
	/* "." alone is the current context; otherwise no empty part in a dotted name. */
	if (!(len == 1 && p[0] == '.') &&
	    (p[0] == '.' || p[len - 1] == '.' || memmem(p, len, "..", 2) != NULL)) {
		error_at(c, tag_off, "invalid name '%.*s'", msg_len(len), p);
		return false;
	}
	return true;
}

static bool
name_eq(const struct tmpl_name *n, const char *p, size_t len)
{
	return n->len == len && memcmp(n->full, p, len) == 0;
}

static int
compile_source(struct compile *c)
{
	struct tmpl *t = c->t;
	const char *s = t->src;
	size_t len = t->src_len;
	size_t open_node[TMPL_DEPTH_MAX], open_off[TMPL_DEPTH_MAX];
	size_t depth = 0, pos = 0;

	while (pos < len) {
		const char *tag = memmem(s + pos, len - pos, "{{", 2);
		size_t tag_off = tag ? (size_t)(tag - s) : len;
		if (tag_off > pos) {
			struct tmpl_node *n = node_add(c, TMPL_TEXT);
			n->off = (uint32_t)pos;
			n->len = (uint32_t)(tag_off - pos);
		}
		if (tag == NULL)
			break;

		size_t p = tag_off + 2;
		char sigil = p < len ? s[p] : '\0';
		bool triple = sigil == '{';
		if (sigil == '{' || sigil == '&' || sigil == '#' || sigil == '^' || sigil == '/' ||
		    sigil == '!')
			p++;
		else
			sigil = '\0';
		const char *close = memmem(s + p, len - p, "}}", 2);
		if (close == NULL || (triple && (size_t)(close - s) + 2 >= len) ||
		    (triple && close[2] != '}')) {
			error_at(c, tag_off, "unclosed tag '%s'", triple ? "{{{" : "{{");
			return -1;
		}
		size_t close_off = (size_t)(close - s);
		pos = close_off + (triple ? 3 : 2);
		if (sigil == '!')
			continue;

		const char *name = s + p;
		size_t name_len = close_off - p;
		while (name_len > 0 && is_space(name[0])) {
			name++;
			name_len--;
		}
		while (name_len > 0 && is_space(name[name_len - 1]))
			name_len--;
		if (!name_check(c, tag_off, name, name_len))
			return -1;

		if (sigil == '/') {
			if (depth == 0) {
				error_at(c, tag_off, "unexpected {{/%.*s}} without an open section",
				         msg_len(name_len), name);
				return -1;
			}
			struct tmpl_node *open = &t->nodes[open_node[depth - 1]];
			const struct tmpl_name *want = &t->names[open->name];
			if (!name_eq(want, name, name_len)) {
				error_at(c, tag_off, "unexpected {{/%.*s}}, expected {{/%.*s}}",
				         msg_len(name_len), name, msg_len(want->len), want->full);
				return -1;
			}
			open->end = (uint32_t)t->n_nodes;
			depth--;
			continue;
		}
		enum tmpl_kind kind = TMPL_VAR;
		if (sigil == '{' || sigil == '&')
			kind = TMPL_RAW;
		else if (sigil == '#')
			kind = TMPL_SECTION;
		else if (sigil == '^')
			kind = TMPL_INVERTED;
		if (kind == TMPL_SECTION || kind == TMPL_INVERTED) {
			if (depth == TMPL_DEPTH_MAX) {
				error_at(c, tag_off, "sections nested deeper than %d",
				         TMPL_DEPTH_MAX);
				return -1;
			}
			open_node[depth] = t->n_nodes;
			open_off[depth] = tag_off;
			depth++;
		}
		uint32_t id = name_intern(c, name, name_len);
		node_add(c, kind)->name = id;
	}
	if (depth > 0) {
		const struct tmpl_name *n = &t->names[t->nodes[open_node[depth - 1]].name];
		error_at(c, open_off[depth - 1], "unclosed section '%.*s'", msg_len(n->len),
		         n->full);
		return -1;
	}
	return 0;
}

struct tmpl *
tmpl_compile(const char *src, size_t len, bool html, struct tmpl_error *e)
{
	struct tmpl *t = xcalloc(1, sizeof *t);
	struct compile c = {.t = t, .src = src, .src_len = len, .e = e};
	t->html = html;
	if (e != NULL)
		*e = (struct tmpl_error){0};
	if (len > TMPL_SOURCE_MAX) {
		error_at(&c, TMPL_SOURCE_MAX, "template longer than %d bytes", TMPL_SOURCE_MAX);
		tmpl_free(&t);
		return NULL;
	}
	t->src = xmalloc(len + 1);
	if (len > 0)
		memcpy(t->src, src, len);
	t->src[len] = '\0';
	t->src_len = len;
	int rc = compile_source(&c);
	free(c.table);
	if (rc != 0)
		tmpl_free(&t);
	return t;
}

void
tmpl_free(struct tmpl **tp)
{
	struct tmpl *t = *tp;
	if (t == NULL)
		return;
	for (size_t i = 0; i < t->n_names; i++)
		free(t->names[i].full);
	free(t->names);
	free(t->nodes);
	free(t->src);
	free(t);
	*tp = NULL;
}

void
tmpl_missing_deinit(struct tmpl_missing *m)
{
	if (m == NULL)
		return;
	for (size_t i = 0; i < m->n; i++)
		free(m->names[i]);
	*m = (struct tmpl_missing){0};
}

/* ---- render ---- */

struct render {
	const struct tmpl *t;
	const json_t *stack[TMPL_DEPTH_MAX + 1]; /* contexts, innermost last */
	size_t n_stack;
	struct buf *out;
	size_t out_start; /* out->len when the render began */
	size_t steps;
	struct tmpl_missing *missing;
	bool *seen; /* per name id: already reported as missing in this render */
	struct err *err;
};

static void
missing_add(struct render *r, uint32_t id)
{
	if (r->missing == NULL || r->seen[id])
		return;
	r->seen[id] = true;
	const char *name = r->t->names[id].full;
	struct tmpl_missing *m = r->missing;
	for (size_t i = 0; i < m->n; i++) /* the caller may reuse m across renders */
		if (strcmp(m->names[i], name) == 0)
			return;
	if (m->n < TMPL_MISSING_MAX)
		m->names[m->n++] = xstrdup(name);
	else
		m->n_dropped++;
}

/* Resolves name id against the context stack; NULL when it is not found. */
static const json_t *
lookup(struct render *r, uint32_t id)
{
	const struct tmpl_name *n = &r->t->names[id];
	if (n->len == 1 && n->full[0] == '.') {
		if (r->n_stack > 0)
			return r->stack[r->n_stack - 1];
		missing_add(r, id);
		return NULL;
	}
	const char *p = n->full, *end = n->full + n->len;
	const char *dot = memchr(p, '.', n->len);
	size_t part = dot ? (size_t)(dot - p) : n->len;
	const json_t *v = NULL;
	for (size_t i = r->n_stack; i > 0 && v == NULL; i--)
		if (json_is_object(r->stack[i - 1]))
			v = json_object_getn(r->stack[i - 1], p, part);
	/* Later parts are members of the value found; a broken chain is missing (no fallback to
	 * outer contexts, as in Mustache). */
	while (v != NULL && p + part < end) {
		p += part + 1;
		dot = memchr(p, '.', (size_t)(end - p));
		part = dot ? (size_t)(dot - p) : (size_t)(end - p);
		v = json_is_object(v) ? json_object_getn(v, p, part) : NULL;
	}
	if (v == NULL)
		missing_add(r, id);
	return v;
}

static int
emit(struct render *r, const void *p, size_t n)
{
	if (n > TMPL_OUTPUT_MAX - (r->out->len - r->out_start))
		return err_set(r->err, 0, "rendered output exceeds %d bytes", TMPL_OUTPUT_MAX);
	if (buf_append(r->out, p, n) != 0)
		return err_set(r->err, 0, "rendered output exceeds the buffer limit");
	return 0;
}

/* HTML escapes of {{name}} (tmpl.h); NULL = the byte as it is. */
static const char *const html_escape[256] = {
    ['&'] = "&amp;", ['<'] = "&lt;", ['>'] = "&gt;", ['"'] = "&quot;", ['\''] = "&#39;",
};

static int
emit_escaped(struct render *r, const char *p, size_t n)
{
	size_t run = 0;
	for (size_t i = 0; i < n; i++) {
		const char *rep = html_escape[(unsigned char)p[i]];
		if (rep == NULL)
			continue;
		if (emit(r, p + run, i - run) != 0 || emit(r, rep, strlen(rep)) != 0)
			return -1;
		run = i + 1;
	}
	return emit(r, p + run, n - run);
}

/* Shortest "%.*g" form that reads back as the same double, in JSON notation ("1.0", not "1"). */
static void
format_real(double d, char *out, size_t size)
{
	for (int prec = 1; prec <= 17; prec++) {
		(void)snprintf(out, size, "%.*g", prec, d); /* at most 24 bytes: fits */
		if (strtod(out, NULL) == d)
			break;
	}
	if (strpbrk(out, ".eEn") == NULL) {
		size_t len = strlen(out);
		if (len + 3 <= size)
			memcpy(out + len, ".0", 3);
	}
}

static int
emit_value(struct render *r, const json_t *v, bool escape)
{
	char num[40];
	const char *s = NULL;
	size_t n = 0;
	switch (json_typeof(v)) {
	case JSON_STRING:
		s = json_string_value(v);
		n = json_string_length(v);
		break;
	case JSON_INTEGER:
		n = (size_t)snprintf(num, sizeof num, "%lld", (long long)json_integer_value(v));
		s = num;
		break;
	case JSON_REAL:
		format_real(json_real_value(v), num, sizeof num);
		s = num;
		n = strlen(num);
		break;
	case JSON_TRUE:
		s = "true";
		n = 4;
		break;
	case JSON_FALSE:
		s = "false";
		n = 5;
		break;
	default:
		return 0; /* null, objects and arrays render empty */
	}
	return escape ? emit_escaped(r, s, n) : emit(r, s, n);
}

static bool
is_truthy(const json_t *v)
{
	switch (v ? json_typeof(v) : JSON_NULL) {
	case JSON_NULL:
	case JSON_FALSE:
		return false;
	case JSON_STRING:
		return json_string_length(v) > 0;
	case JSON_INTEGER:
		return json_integer_value(v) != 0;
	case JSON_REAL:
		return json_real_value(v) != 0.0;
	case JSON_ARRAY:
		return json_array_size(v) > 0;
	default:
		return true; /* true, objects (even empty ones) */
	}
}

static int
step(struct render *r)
{
	if (++r->steps > TMPL_STEPS_MAX)
		return err_set(r->err, 0, "template rendering exceeds %u steps", TMPL_STEPS_MAX);
	return 0;
}

static int render_nodes(struct render *r, size_t from, size_t to);

static int
render_body(struct render *r, const json_t *ctx, size_t from, size_t to)
{
	r->stack[r->n_stack++] = ctx; /* n_stack <= nesting depth + 1 by construction */
	int rc = render_nodes(r, from, to);
	r->n_stack--;
	return rc;
}

/* Renders nodes [from, to); recursion depth is bounded by the section nesting. */
static int
render_nodes(struct render *r, size_t from, size_t to)
{
	const struct tmpl *t = r->t;
	for (size_t i = from; i < to; i++) {
		const struct tmpl_node *n = &t->nodes[i];
		if (step(r) != 0)
			return -1;
		if (n->kind == TMPL_TEXT) {
			if (emit(r, t->src + n->off, n->len) != 0)
				return -1;
			continue;
		}
		const json_t *v = lookup(r, n->name);
		switch (n->kind) {
		case TMPL_VAR:
		case TMPL_RAW:
			if (v != NULL && emit_value(r, v, n->kind == TMPL_VAR && t->html) != 0)
				return -1;
			break;
		case TMPL_SECTION:
			if (json_is_array(v)) {
				for (size_t k = 0; k < json_array_size(v); k++)
					if (step(r) != 0 || render_body(r, json_array_get(v, k),
					                                i + 1, n->end) != 0)
						return -1;
			} else if (is_truthy(v)) {
				if (render_body(r, v, i + 1, n->end) != 0)
					return -1;
			}
			i = n->end - 1;
			break;
		case TMPL_INVERTED:
			if (!is_truthy(v) && render_nodes(r, i + 1, n->end) != 0)
				return -1;
			i = n->end - 1;
			break;
		case TMPL_TEXT:
			break;
		}
	}
	return 0;
}

int
tmpl_render(const struct tmpl *t, const json_t *vars, struct buf *out, struct tmpl_missing *missing,
            struct err *err)
{
	struct render r = {
	    .t = t, .out = out, .out_start = out->len, .missing = missing, .err = err};
	if (vars != NULL)
		r.stack[r.n_stack++] = vars;
	if (missing != NULL && t->n_names > 0)
		r.seen = xcalloc(t->n_names, sizeof *r.seen);
	int rc = render_nodes(&r, 0, t->n_nodes);
	free(r.seen);
	return rc;
}

/* SEARCH (RFC 9051 §6.4.4, RFC 3501 §6.4.4) with ESEARCH RETURN options (RFC 4731), MODSEQ
 * (RFC 7162 §3.1.5), YOUNGER/OLDER (RFC 5032) and $ (RFC 5182). The program is parsed into a
 * tree once; the children of every AND/OR are ordered cheapest first (flags, numbers, then
 * metadata, then header, then body), so that most messages are decided without touching
 * storage. Per message, metadata, header and text are loaded at most once (struct mcache).
 * Text keys match MIME-decoded UTF-8 text case-insensitively (mail/mime.h). Also holds the
 * header-loading and RFC 5322 date helpers SORT and THREAD share (sort.c, thread.c). */
#include "imap/fetch.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "imap/imap_private.h"
#include "mail/mime.h"
#include "util/xalloc.h"

#define SEARCH_RAW_MAX                                                                             \
	(32u << 20)                    /* message bytes read for BODY/TEXT: policy (XXX: the       \
	                                * rest of a larger message is not searched) */
#define SEARCH_BODY_MAX    (16u << 20) /* decoded body text searched: policy */
#define SEARCH_HEADER_MAX  (1u << 20)  /* header bytes read when the part table has none */
#define SEARCH_DEPTH_FLOOR 8           /* nesting allowed when the cursor sets no limit */

enum skind {
	K_ALL,
	K_NONE,
	K_AND,
	K_OR,
	K_NOT,
	K_FLAG, /* flag bits all set (or, with neg, not set) */
	K_KEYWORD,
	K_SEQ,
	K_UID,
	K_MODSEQ,
	K_LARGER,
	K_SMALLER,
	K_BEFORE,
	K_ON,
	K_SINCE,
	K_SENTBEFORE,
	K_SENTON,
	K_SENTSINCE,
	K_YOUNGER,
	K_OLDER,
	K_HEADER, /* field name + text; empty text: the field is present */
	K_BODY,
	K_TEXT,
};

struct skey {
	enum skind kind;
	bool neg; /* K_FLAG, K_KEYWORD: UN... */
	int cost;
	struct skey **kids;
	size_t nkids;
	uint32_t flag;
	uint64_t num;
	int64_t day; /* dates: days since the epoch */
	char *field; /* K_HEADER field name; K_KEYWORD keyword */
	char *str;   /* text to find (UTF-8) */
	size_t len;
	struct imap_seqset set;
	size_t set_idx;
};

struct imap_search {
	struct skey *root;
	bool modseq;
	size_t nsets;
};

static void
skey_free(struct skey *k)
{
	if (k == NULL)
		return;
	for (size_t i = 0; i < k->nkids; i++)
		skey_free(k->kids[i]);
	free(k->kids);
	free(k->field);
	free(k->str);
	imap_seqset_deinit(&k->set);
	free(k);
}

void
imap_search_free(struct imap_search **sp)
{
	struct imap_search *s = *sp;
	if (s == NULL)
		return;
	*sp = NULL;
	skey_free(s->root);
	free(s);
}

bool
imap_search_uses_modseq(const struct imap_search *sp)
{
	return sp->modseq;
}

/* ---- parsing ---- */

enum sarg { A_NONE, A_STR, A_HEADER, A_DATE, A_NUM, A_NZ, A_ATOM, A_UIDSET, A_NOT, A_OR, A_MODSEQ };

static const struct {
	const char *name;
	enum skind kind;
	enum sarg arg;
	uint32_t flag;
	bool neg;
	const char *field;
} keys[] = {
    {"ALL", K_ALL, A_NONE, 0, false, NULL},
    {"ANSWERED", K_FLAG, A_NONE, IMAP_FLAG_ANSWERED, false, NULL},
    {"BCC", K_HEADER, A_STR, 0, false, "Bcc"},
    {"BEFORE", K_BEFORE, A_DATE, 0, false, NULL},
    {"BODY", K_BODY, A_STR, 0, false, NULL},
    {"CC", K_HEADER, A_STR, 0, false, "Cc"},
    {"DELETED", K_FLAG, A_NONE, IMAP_FLAG_DELETED, false, NULL},
    {"DRAFT", K_FLAG, A_NONE, IMAP_FLAG_DRAFT, false, NULL},
    {"FLAGGED", K_FLAG, A_NONE, IMAP_FLAG_FLAGGED, false, NULL},
    {"FROM", K_HEADER, A_STR, 0, false, "From"},
    {"HEADER", K_HEADER, A_HEADER, 0, false, NULL},
    {"KEYWORD", K_KEYWORD, A_ATOM, 0, false, NULL},
    {"LARGER", K_LARGER, A_NUM, 0, false, NULL},
    /* NEW = RECENT UNSEEN and \Recent is never set (mailstore.h), so NEW matches nothing and
     * OLD everything. */
    {"NEW", K_NONE, A_NONE, 0, false, NULL},
    {"NOT", K_NOT, A_NOT, 0, false, NULL},
    {"OLD", K_ALL, A_NONE, 0, false, NULL},
    {"OLDER", K_OLDER, A_NZ, 0, false, NULL},
    {"ON", K_ON, A_DATE, 0, false, NULL},
    {"OR", K_OR, A_OR, 0, false, NULL},
    {"RECENT", K_NONE, A_NONE, 0, false, NULL},
    {"SEEN", K_FLAG, A_NONE, IMAP_FLAG_SEEN, false, NULL},
    {"SENTBEFORE", K_SENTBEFORE, A_DATE, 0, false, NULL},
    {"SENTON", K_SENTON, A_DATE, 0, false, NULL},
    {"SENTSINCE", K_SENTSINCE, A_DATE, 0, false, NULL},
    {"SINCE", K_SINCE, A_DATE, 0, false, NULL},
    {"SMALLER", K_SMALLER, A_NUM, 0, false, NULL},
    {"SUBJECT", K_HEADER, A_STR, 0, false, "Subject"},
    {"TEXT", K_TEXT, A_STR, 0, false, NULL},
    {"TO", K_HEADER, A_STR, 0, false, "To"},
    {"UID", K_UID, A_UIDSET, 0, false, NULL},
    {"UNANSWERED", K_FLAG, A_NONE, IMAP_FLAG_ANSWERED, true, NULL},
    {"UNDELETED", K_FLAG, A_NONE, IMAP_FLAG_DELETED, true, NULL},
    {"UNDRAFT", K_FLAG, A_NONE, IMAP_FLAG_DRAFT, true, NULL},
    {"UNFLAGGED", K_FLAG, A_NONE, IMAP_FLAG_FLAGGED, true, NULL},
    {"UNKEYWORD", K_KEYWORD, A_ATOM, 0, true, NULL},
    {"UNSEEN", K_FLAG, A_NONE, IMAP_FLAG_SEEN, true, NULL},
    {"YOUNGER", K_YOUNGER, A_NZ, 0, false, NULL},
    {"MODSEQ", K_MODSEQ, A_MODSEQ, 0, false, NULL},
};

struct pstate {
	struct imap_cursor *c;
	struct imap_search *s;
	unsigned depth_max;
	const char *err;
};

static struct skey *
skey_new(enum skind kind)
{
	struct skey *k = xcalloc(1, sizeof *k);
	k->kind = kind;
	imap_seqset_init(&k->set);
	return k;
}

static void
skey_add_kid(struct skey *k, struct skey *kid)
{
	k->kids = xrealloc(k->kids, (k->nkids + 1) * sizeof *k->kids);
	k->kids[k->nkids++] = kid;
	if (kid->cost > k->cost)
		k->cost = kid->cost;
}

static int
kind_cost(enum skind kind)
{
	switch (kind) {
	case K_LARGER:
	case K_SMALLER:
	case K_BEFORE:
	case K_ON:
	case K_SINCE:
	case K_YOUNGER:
	case K_OLDER:
		return 1;
	case K_HEADER:
	case K_SENTBEFORE:
	case K_SENTON:
	case K_SENTSINCE:
		return 2;
	case K_BODY:
	case K_TEXT:
		return 3;
	default:
		return 0;
	}
}

/* Cheapest first (stable): an AND stops at the first miss, an OR at the first hit. */
static void
sort_kids(struct skey *k)
{
	for (size_t i = 1; i < k->nkids; i++) {
		struct skey *x = k->kids[i];
		size_t j = i;
		while (j > 0 && k->kids[j - 1]->cost > x->cost) {
			k->kids[j] = k->kids[j - 1];
			j--;
		}
		k->kids[j] = x;
	}
}

static bool
fail(struct pstate *ps, const char *why)
{
	if (ps->err == NULL)
		ps->err = ps->c->error ? ps->c->error : why;
	return false;
}

static struct skey *parse_key(struct pstate *ps, unsigned depth);

static bool
parse_string(struct pstate *ps, char **s_r, size_t *len_r)
{
	struct buf b;
	buf_init(&b, 0);
	if (!imap_cur_astring(ps->c, &b)) {
		buf_deinit(&b);
		return fail(ps, "Missing search string");
	}
	*len_r = b.len;
	*s_r = xstrndup((const char *)(b.data ? b.data : (unsigned char *)""), b.len);
	buf_deinit(&b);
	return true;
}

static bool
parse_modseq(struct pstate *ps, struct skey *k)
{
	if (imap_cur_peek(ps->c) == '"') {
		struct buf name;
		buf_init(&name, 1024);
		bool ok = imap_cur_string(ps->c, &name, NULL);
		bool flags = ok && slice_has_prefix_nocase(buf_slice(&name), "/flags/");
		buf_deinit(&name);
		if (!flags)
			return fail(ps, "Invalid MODSEQ entry name");
		struct slice type;
		if (!imap_cur_sp(ps->c) || !imap_cur_atom(ps->c, &type) ||
		    !(slice_eq_nocase(type, "priv") || slice_eq_nocase(type, "shared") ||
		      slice_eq_nocase(type, "all")) ||
		    !imap_cur_sp(ps->c))
			return fail(ps, "Invalid MODSEQ entry type");
	}
	if (!imap_cur_number64(ps->c, &k->num))
		return fail(ps, "Invalid MODSEQ value");
	ps->s->modseq = true;
	return true;
}

static bool
parse_args(struct pstate *ps, struct skey *k, enum sarg arg, unsigned depth)
{
	struct imap_cursor *c = ps->c;
	if (arg == A_NONE)
		return true;
	if (!imap_cur_sp(c))
		return fail(ps, "Missing search argument");
	switch (arg) {
	case A_STR:
		return parse_string(ps, &k->str, &k->len);
	case A_HEADER: {
		size_t flen;
		if (!parse_string(ps, &k->field, &flen))
			return false;
		if (!imap_cur_sp(c))
			return fail(ps, "Missing search argument");
		return parse_string(ps, &k->str, &k->len);
	}
	case A_DATE: {
		int64_t t;
		if (!imap_cur_date(c, &t))
			return fail(ps, "Invalid date");
		k->day = t >= 0 ? t / 86400 : -((-t + 86399) / 86400);
		return true;
	}
	case A_NUM:
		if (!imap_cur_number64(c, &k->num))
			return fail(ps, "Invalid number");
		return true;
	case A_NZ: {
		uint32_t v;
		if (!imap_cur_nz_number(c, &v))
			return fail(ps, "Invalid number");
		k->num = v;
		return true;
	}
	case A_ATOM: {
		struct slice a;
		if (!imap_cur_atom(c, &a))
			return fail(ps, "Invalid keyword");
		k->field = xstrndup(a.p, a.len);
		return true;
	}
	case A_UIDSET:
		if (!imap_cur_seqset(c, &k->set, true))
			return fail(ps, "Invalid UID set");
		k->set_idx = ps->s->nsets++;
		return true;
	case A_NOT: {
		struct skey *kid = parse_key(ps, depth + 1);
		if (kid == NULL)
			return false;
		skey_add_kid(k, kid);
		return true;
	}
	case A_OR:
		for (int i = 0; i < 2; i++) {
			if (i == 1 && !imap_cur_sp(c))
				return fail(ps, "Missing search argument");
			struct skey *kid = parse_key(ps, depth + 1);
			if (kid == NULL)
				return false;
			skey_add_kid(k, kid);
		}
		sort_kids(k);
		return true;
	case A_MODSEQ:
		return parse_modseq(ps, k);
	default:
		return fail(ps, "Invalid search key");
	}
}

/* search-key *(SP search-key) up to ")" (in a list) or the end of the command. */
static struct skey *
parse_list(struct pstate *ps, unsigned depth, bool in_parens)
{
	struct skey *and = skey_new(K_AND);
	for (;;) {
		struct skey *k = parse_key(ps, depth);
		if (k == NULL) {
			skey_free(and);
			return NULL;
		}
		skey_add_kid(and, k);
		if (in_parens ? imap_cur_peek(ps->c) == ')' : imap_cur_at_end(ps->c))
			break;
		if (!imap_cur_sp(ps->c)) {
			fail(ps, "Invalid search program");
			skey_free(and);
			return NULL;
		}
	}
	sort_kids(and);
	return and;
}

static struct skey *
parse_key(struct pstate *ps, unsigned depth)
{
	struct imap_cursor *c = ps->c;
	if (depth > ps->depth_max) {
		fail(ps, "Too deeply nested");
		return NULL;
	}
	int ch = imap_cur_peek(c);
	if (ch == '(') {
		if (!imap_cur_list_open(c)) {
			fail(ps, "Too deeply nested");
			return NULL;
		}
		struct skey *k = parse_list(ps, depth + 1, true);
		if (k != NULL && !imap_cur_list_close(c)) {
			fail(ps, "Missing )");
			skey_free(k);
			return NULL;
		}
		return k;
	}
	if ((ch >= '0' && ch <= '9') || ch == '*' || ch == '$') {
		struct skey *k = skey_new(K_SEQ);
		if (!imap_cur_seqset(c, &k->set, true)) {
			fail(ps, "Invalid sequence set");
			skey_free(k);
			return NULL;
		}
		k->set_idx = ps->s->nsets++;
		return k;
	}
	struct slice a;
	if (!imap_cur_atom(c, &a)) {
		fail(ps, "Missing search key");
		return NULL;
	}
	for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
		if (!slice_eq_nocase(a, keys[i].name))
			continue;
		struct skey *k = skey_new(keys[i].kind);
		k->flag = keys[i].flag;
		k->neg = keys[i].neg;
		k->cost = kind_cost(k->kind);
		if (keys[i].field != NULL)
			k->field = xstrdup(keys[i].field);
		if (!parse_args(ps, k, keys[i].arg, depth)) {
			skey_free(k);
			return NULL;
		}
		return k;
	}
	fail(ps, "Unknown search key");
	return NULL;
}

static unsigned
depth_limit(const struct imap_cursor *c)
{
	return c->depth_max > SEARCH_DEPTH_FLOOR ? c->depth_max : SEARCH_DEPTH_FLOOR;
}

struct imap_search *
imap_search_parse_keys(struct imap_cursor *c, const char **err_r)
{
	struct imap_search *s = xcalloc(1, sizeof *s);
	struct pstate ps = {.c = c, .s = s, .depth_max = depth_limit(c)};
	if (imap_cur_at_end(c)) {
		*err_r = "Missing search key";
		free(s);
		return NULL;
	}
	s->root = parse_list(&ps, 0, false);
	if (s->root == NULL) {
		*err_r = ps.err ? ps.err : "Invalid search program";
		imap_search_free(&s);
		return NULL;
	}
	return s;
}

static const char *
parse_return(struct imap_cursor *c, unsigned *ret_r)
{
	static const struct {
		const char *name;
		unsigned bit;
	} opts[] = {
	    {"MIN", IMAP_SEARCH_RET_MIN},   {"MAX", IMAP_SEARCH_RET_MAX},
	    {"ALL", IMAP_SEARCH_RET_ALL},   {"COUNT", IMAP_SEARCH_RET_COUNT},
	    {"SAVE", IMAP_SEARCH_RET_SAVE},
	};
	if (!imap_cur_sp(c) || !imap_cur_list_open(c))
		return "Invalid RETURN options";
	unsigned ret = 0;
	while (imap_cur_peek(c) != ')') {
		struct slice a;
		if (ret != 0 && !imap_cur_sp(c))
			return "Invalid RETURN options";
		if (!imap_cur_atom(c, &a))
			return "Invalid RETURN options";
		size_t i;
		for (i = 0; i < sizeof opts / sizeof opts[0]; i++)
			if (slice_eq_nocase(a, opts[i].name))
				break;
		if (i == sizeof opts / sizeof opts[0])
			return "Unknown RETURN option";
		ret |= opts[i].bit;
	}
	if (!imap_cur_list_close(c) || !imap_cur_sp(c))
		return "Invalid RETURN options";
	*ret_r = ret ? ret : IMAP_SEARCH_RET_ALL; /* RFC 4731 §3.1: "RETURN ()" is ALL */
	return NULL;
}

/* CHARSET astring: UTF-8 and US-ASCII only (RFC 9051 §6.4.4). Returns 1 good, 0 bad charset,
 * -1 syntax. */
static int
parse_charset(struct imap_cursor *c)
{
	struct buf cs;
	buf_init(&cs, 256);
	if (!imap_cur_astring(c, &cs) || !imap_cur_sp(c)) {
		buf_deinit(&cs);
		return -1;
	}
	struct slice v = buf_slice(&cs);
	int r = slice_eq_nocase(v, "UTF-8") || slice_eq_nocase(v, "US-ASCII") ? 1 : 0;
	buf_deinit(&cs);
	return r;
}

struct imap_search *
imap_search_parse(struct imap_cursor *c, bool with_return, unsigned *ret_r, bool *badcharset_r,
                  const char **err_r)
{
	*ret_r = 0;
	*badcharset_r = false;
	struct imap_cursor save = *c;
	struct slice a;
	if (imap_cur_atom(c, &a) && slice_eq_nocase(a, "RETURN") && with_return) {
		const char *e = parse_return(c, ret_r);
		if (e != NULL) {
			*err_r = e;
			return NULL;
		}
		save = *c;
	} else {
		*c = save;
	}
	if (imap_cur_atom(c, &a) && slice_eq_nocase(a, "CHARSET")) {
		int r = imap_cur_sp(c) ? parse_charset(c) : -1;
		if (r < 0) {
			*err_r = "Invalid CHARSET";
			return NULL;
		}
		if (r == 0) {
			*badcharset_r = true;
			*err_r = "Unsupported charset";
			return NULL;
		}
	} else {
		*c = save;
	}
	return imap_search_parse_keys(c, err_r);
}

/* ---- RFC 5322 dates (§3.3, with the obsolete forms of §4.3) ---- */

static int64_t
days_from_civil(int64_t y, unsigned m, unsigned d)
{
	y -= m <= 2;
	int64_t era = (y >= 0 ? y : y - 399) / 400;
	unsigned yoe = (unsigned)(y - era * 400);
	unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + (int64_t)doe - 719468;
}

static int
month_index(const char *w)
{
	static const char *const mon[] = {"jan", "feb", "mar", "apr", "may", "jun",
	                                  "jul", "aug", "sep", "oct", "nov", "dec"};
	for (int i = 0; i < 12; i++)
		if (strncasecmp(w, mon[i], 3) == 0)
			return i + 1;
	return 0;
}

static bool
zone_offset(const char *w, int *min_r)
{
	static const struct {
		const char *name;
		int hours;
	} zones[] = {{"UT", 0},   {"UTC", 0},  {"GMT", 0},  {"Z", 0},    {"EST", -5}, {"EDT", -4},
	             {"CST", -6}, {"CDT", -5}, {"MST", -7}, {"MDT", -6}, {"PST", -8}, {"PDT", -7}};
	if ((w[0] == '+' || w[0] == '-') && strlen(w) == 5) {
		for (int i = 1; i < 5; i++)
			if (!isdigit((unsigned char)w[i]))
				return false;
		int v = ((w[1] - '0') * 10 + (w[2] - '0')) * 60 + (w[3] - '0') * 10 + (w[4] - '0');
		*min_r = w[0] == '-' ? -v : v;
		return true;
	}
	for (size_t i = 0; i < sizeof zones / sizeof zones[0]; i++) {
		if (strcasecmp(w, zones[i].name) == 0) {
			*min_r = zones[i].hours * 60;
			return true;
		}
	}
	*min_r = 0; /* RFC 5322 §4.3: other (military) zones are treated as +0000 */
	return isalpha((unsigned char)w[0]) != 0;
}

bool
imap_search_date_parse(struct slice v, int64_t *t_r, int64_t *day_r)
{
	char tok[8][32];
	size_t nt = 0, tl = 0;
	int comment = 0;
	for (size_t i = 0; i <= v.len && nt < 8; i++) {
		char ch = i < v.len ? v.p[i] : ' ';
		if (ch == '(')
			comment++;
		if (comment > 0) {
			if (ch == ')')
				comment--;
			ch = ' ';
		}
		bool sep = ch == ' ' || ch == '\t' || ch == '\r' || ch == '\n' || ch == ',';
		if (!sep && tl < sizeof tok[0] - 1) {
			tok[nt][tl++] = ch;
			continue;
		}
		if (sep && tl > 0) {
			tok[nt][tl] = '\0';
			nt++;
			tl = 0;
		}
	}
	size_t i = 0;
	if (i < nt && isalpha((unsigned char)tok[i][0]))
		i++; /* day-of-week */
	if (i + 3 > nt)
		return false;
	char *end;
	long day = strtol(tok[i], &end, 10);
	int mon = month_index(tok[i + 1]);
	long year = strtol(tok[i + 2], &end, 10);
	if (day < 1 || day > 31 || mon == 0 || *end != '\0' || year < 0 || year > 9999)
		return false;
	if (strlen(tok[i + 2]) <= 2)
		year += year < 50 ? 2000 : 1900;
	else if (strlen(tok[i + 2]) == 3)
		year += 1900;
	i += 3;
	int hh = 0, mm = 0, ss = 0, zone = 0;
	if (i < nt) {
		int part[3] = {0, 0, 0}, np = 0, digits = 0;
		for (const char *q = tok[i]; *q && np < 3; q++) {
			if (isdigit((unsigned char)*q) && digits < 2) {
				part[np] = part[np] * 10 + (*q - '0');
				digits++;
			} else if (*q == ':' && digits > 0) {
				np++;
				digits = 0;
			} else {
				np = -1;
				break;
			}
		}
		if (np >= 1 && digits > 0 && part[0] <= 23 && part[1] <= 59 && part[2] <= 60) {
			hh = part[0];
			mm = part[1];
			ss = part[2];
		}
		i++;
		if (i < nt)
			zone_offset(tok[i], &zone);
	}
	int64_t d = days_from_civil(year, (unsigned)mon, (unsigned)day);
	*day_r = d;
	*t_r = d * 86400 + hh * 3600 + mm * 60 + ss - (int64_t)zone * 60;
	return true;
}

int
imap_search_load_header(struct imap_mailstore *ms, int64_t mailbox, uint32_t uid,
                        struct imap_ms_meta *meta_r, struct buf *hdr_r, struct err *err)
{
	if (ms->ops->meta(ms, mailbox, uid, meta_r, err) < 0)
		return -1;
	struct mime_section sec;
	uint64_t end = SEARCH_HEADER_MAX;
	if (mime_parts_find(buf_slice(&meta_r->parts), NULL, 0, &sec))
		end = sec.msg_header_end;
	end += meta_r->header_len;
	if (end > meta_r->size)
		end = meta_r->size;
	if (end > 0 && ms->ops->read(ms, meta_r, 0, end, hdr_r, err) < 0) {
		imap_ms_meta_deinit(meta_r);
		return -1;
	}
	return 0;
}

/* First value of field in the header bytes, decoded (mime_search_header), into out. */
static void
first_value(const struct buf *hdr, const char *field, struct buf *out)
{
	struct buf all;
	buf_init(&all, 0);
	mime_search_header(hdr->data, hdr->len, field, &all);
	const unsigned char *nl = all.len ? memchr(all.data, '\n', all.len) : NULL;
	if (all.len > 0)
		buf_append(out, all.data, nl ? (size_t)(nl - all.data) : all.len);
	buf_deinit(&all);
}

int64_t
imap_search_sent_date(const struct buf *hdr, int64_t fallback, int64_t *day_r)
{
	struct buf v;
	buf_init(&v, 0);
	first_value(hdr, "Date", &v);
	int64_t t, day;
	if (!imap_search_date_parse(buf_slice(&v), &t, &day)) {
		t = fallback;
		day = t >= 0 ? t / 86400 : -((-t + 86399) / 86400);
	}
	buf_deinit(&v);
	if (day_r != NULL)
		*day_r = day;
	return t;
}

/* ---- evaluation ---- */

struct mcache {
	const struct imap_search_ctx *ctx;
	const struct imap_msgref *m;
	struct err *err;
	int state; /* 0 nothing loaded, 1 meta, -1 gone (vanished meanwhile) */
	struct imap_ms_meta meta;
	bool have_hdr, have_raw, have_body, have_sent;
	struct buf hdr, raw, body;
	int64_t sent_day;
	struct imap_seqset *sets; /* resolved copies, by set_idx */
	uint32_t *saved;          /* sorted */
	size_t n_saved;
};

/* 1 loaded, 0 the message vanished (no match), -1 storage failure. */
static int
need_meta(struct mcache *mc)
{
	if (mc->state != 0)
		return mc->state > 0 ? 1 : 0;
	if (mc->ctx->ms->ops->meta(mc->ctx->ms, mc->ctx->mailbox, mc->m->uid, &mc->meta, mc->err) <
	    0) {
		if (mc->err->code != IMAP_MS_ENONEXISTENT)
			return -1;
		mc->state = -1;
		return 0;
	}
	mc->state = 1;
	return 1;
}

static int
need_header(struct mcache *mc)
{
	int r = need_meta(mc);
	if (r <= 0 || mc->have_hdr)
		return r;
	struct mime_section sec;
	uint64_t end = SEARCH_HEADER_MAX;
	if (mime_parts_find(buf_slice(&mc->meta.parts), NULL, 0, &sec))
		end = sec.msg_header_end;
	end += mc->meta.header_len;
	if (end > mc->meta.size)
		end = mc->meta.size;
	if (end > 0 &&
	    mc->ctx->ms->ops->read(mc->ctx->ms, &mc->meta, 0, end, &mc->hdr, mc->err) < 0)
		return -1;
	mc->have_hdr = true;
	return 1;
}

static int
need_body(struct mcache *mc)
{
	int r = need_meta(mc);
	if (r <= 0 || mc->have_body)
		return r;
	uint64_t len = mc->meta.size < SEARCH_RAW_MAX ? mc->meta.size : SEARCH_RAW_MAX;
	if (len > 0 &&
	    mc->ctx->ms->ops->read(mc->ctx->ms, &mc->meta, 0, len, &mc->raw, mc->err) < 0)
		return -1;
	mime_search_body(mc->raw.data, mc->raw.len, SEARCH_BODY_MAX, &mc->body);
	if (!mc->have_hdr) { /* the header is a prefix of what we just read */
		mc->have_hdr = true;
		buf_reset(&mc->hdr);
		struct mime_section sec;
		uint64_t end = mc->raw.len;
		if (mime_parts_find(buf_slice(&mc->meta.parts), NULL, 0, &sec) &&
		    sec.msg_header_end + mc->meta.header_len < end)
			end = sec.msg_header_end + mc->meta.header_len;
		buf_append(&mc->hdr, mc->raw.data, (size_t)end);
	}
	buf_deinit(&mc->raw); /* only the decoded text is kept */
	mc->have_raw = false;
	mc->have_body = true;
	return 1;
}

static int64_t
day_of(int64_t t)
{
	return t >= 0 ? t / 86400 : -((-t + 86399) / 86400);
}

static bool
has_keyword(const char *list, const char *kw)
{
	size_t n = strlen(kw);
	for (const char *p = list; p != NULL && *p;) {
		const char *sp = strchr(p, ' ');
		size_t l = sp ? (size_t)(sp - p) : strlen(p);
		if (l == n && strncasecmp(p, kw, n) == 0)
			return true;
		p = sp ? sp + 1 : NULL;
	}
	return false;
}

static bool
in_saved(const struct mcache *mc, uint32_t uid)
{
	size_t lo = 0, hi = mc->n_saved;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (mc->saved[mid] == uid)
			return true;
		if (mc->saved[mid] < uid)
			lo = mid + 1;
		else
			hi = mid;
	}
	return false;
}

static int
header_match(struct mcache *mc, const struct skey *k)
{
	int r = need_header(mc);
	if (r <= 0)
		return r;
	struct buf v;
	buf_init(&v, 0);
	mime_search_header(mc->hdr.data, mc->hdr.len, k->field, &v);
	/* HEADER name "": every message that has the field (RFC 9051 §6.4.4) */
	bool hit = k->len == 0 ? v.len > 0
	                       : mime_search_contains(buf_slice(&v), slice_make(k->str, k->len));
	buf_deinit(&v);
	return hit;
}

static int
eval(struct mcache *mc, const struct skey *k)
{
	const struct imap_msgref *m = mc->m;
	int r;
	switch (k->kind) {
	case K_ALL:
		return 1;
	case K_NONE:
		return 0;
	case K_AND:
		for (size_t i = 0; i < k->nkids; i++)
			if ((r = eval(mc, k->kids[i])) <= 0)
				return r;
		return 1;
	case K_OR:
		for (size_t i = 0; i < k->nkids; i++)
			if ((r = eval(mc, k->kids[i])) != 0)
				return r;
		return 0;
	case K_NOT:
		r = eval(mc, k->kids[0]);
		return r < 0 ? r : !r;
	case K_FLAG:
		return ((m->flags & k->flag) != 0) != k->neg;
	case K_KEYWORD:
		return has_keyword(m->keywords, k->field) != k->neg;
	case K_SEQ:
	case K_UID: {
		uint32_t v = k->kind == K_SEQ ? m->seq : m->uid;
		if (k->set.dollar)
			return in_saved(mc, m->uid);
		return imap_seqset_contains(&mc->sets[k->set_idx], v);
	}
	case K_MODSEQ:
		return m->modseq >= k->num;
	default:
		break;
	}
	if (k->kind == K_HEADER)
		return header_match(mc, k);
	if ((r = need_meta(mc)) <= 0)
		return r;
	int64_t iday = day_of(mc->meta.internal_date);
	switch (k->kind) {
	case K_LARGER:
		return mc->meta.size > k->num;
	case K_SMALLER:
		return mc->meta.size < k->num;
	case K_BEFORE:
		return iday < k->day;
	case K_ON:
		return iday == k->day;
	case K_SINCE:
		return iday >= k->day;
	case K_YOUNGER:
		return mc->meta.internal_date >= mc->ctx->now - (int64_t)k->num;
	case K_OLDER:
		return mc->meta.internal_date < mc->ctx->now - (int64_t)k->num;
	case K_SENTBEFORE:
	case K_SENTON:
	case K_SENTSINCE:
		if ((r = need_header(mc)) <= 0)
			return r;
		if (!mc->have_sent) {
			imap_search_sent_date(&mc->hdr, mc->meta.internal_date, &mc->sent_day);
			mc->have_sent = true;
		}
		if (k->kind == K_SENTBEFORE)
			return mc->sent_day < k->day;
		return k->kind == K_SENTON ? mc->sent_day == k->day : mc->sent_day >= k->day;
	case K_BODY:
	case K_TEXT: {
		if ((r = need_body(mc)) <= 0)
			return r;
		struct slice needle = slice_make(k->str, k->len);
		if (mime_search_contains(buf_slice(&mc->body), needle))
			return 1;
		if (k->kind == K_BODY)
			return 0;
		struct buf all;
		buf_init(&all, 0);
		mime_search_header(mc->hdr.data, mc->hdr.len, NULL, &all);
		bool hit = mime_search_contains(buf_slice(&all), needle);
		buf_deinit(&all);
		return hit;
	}
	default:
		return 0;
	}
}

static void
collect_sets(const struct skey *k, struct imap_seqset *sets, uint32_t nmax, uint32_t uidmax)
{
	if (k->kind == K_SEQ || k->kind == K_UID) {
		struct imap_seqset *s = &sets[k->set_idx];
		for (size_t i = 0; i < k->set.n; i++)
			imap_seqset_add(s, k->set.v[i].lo, k->set.v[i].hi);
		imap_seqset_resolve(s, k->kind == K_SEQ ? nmax : uidmax);
	}
	for (size_t i = 0; i < k->nkids; i++)
		collect_sets(k->kids[i], sets, nmax, uidmax);
}

static int
cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return x < y ? -1 : x > y;
}

static void
mcache_clear(struct mcache *mc)
{
	if (mc->state > 0)
		imap_ms_meta_deinit(&mc->meta);
	mc->state = 0;
	buf_deinit(&mc->hdr);
	buf_deinit(&mc->raw);
	buf_deinit(&mc->body);
	mc->have_hdr = mc->have_raw = mc->have_body = mc->have_sent = false;
}

int
imap_search_run(const struct imap_search *sp, const struct imap_search_ctx *ctx, size_t **idx_r,
                size_t *n_r, struct err *err)
{
	struct mcache mc;
	memset(&mc, 0, sizeof mc);
	mc.ctx = ctx;
	mc.err = err;
	buf_init(&mc.hdr, 0);
	buf_init(&mc.raw, 0);
	buf_init(&mc.body, 0);
	mc.sets = xcalloc(sp->nsets ? sp->nsets : 1, sizeof *mc.sets);
	for (size_t i = 0; i < sp->nsets; i++)
		imap_seqset_init(&mc.sets[i]);
	collect_sets(sp->root, mc.sets, (uint32_t)ctx->n, ctx->n ? ctx->msgs[ctx->n - 1].uid : 0);
	if (ctx->n_saved > 0) {
		mc.saved = xmalloc(ctx->n_saved * sizeof *mc.saved);
		memcpy(mc.saved, ctx->saved, ctx->n_saved * sizeof *mc.saved);
		qsort(mc.saved, ctx->n_saved, sizeof *mc.saved, cmp_u32);
		mc.n_saved = ctx->n_saved;
	}
	size_t *idx = xmalloc((ctx->n ? ctx->n : 1) * sizeof *idx), n = 0;
	int rc = 0;
	for (size_t i = 0; i < ctx->n; i++) {
		mc.m = &ctx->msgs[i];
		int r = eval(&mc, sp->root);
		mcache_clear(&mc);
		if (r < 0) {
			rc = -1;
			break;
		}
		if (r > 0)
			idx[n++] = i;
	}
	for (size_t i = 0; i < sp->nsets; i++)
		imap_seqset_deinit(&mc.sets[i]);
	free(mc.sets);
	free(mc.saved);
	if (rc < 0) {
		free(idx);
		*idx_r = NULL;
		*n_r = 0;
		return -1;
	}
	*idx_r = idx;
	*n_r = n;
	return 0;
}

/* Unit tests for src/tmpl/template.c: variables, escaping, dotted names, sections, inverted
 * sections, comments, syntax errors with positions, limits, the missing-name report, and every
 * template truncated or extended by a byte. */
#include <string.h>

#include "test.h"
#include "tmpl/tmpl.h"
#include "util/buf.h"
#include "util/err.h"
#include "util/xalloc.h"

/* Renders src against the JSON text vars_json (NULL = no variables); returns the output (static
 * buffer) or "<compile error>" / "<render error>". missing may be NULL. */
static const char *
render_m(const char *src, bool html, const char *vars_json, struct tmpl_missing *missing)
{
	static char result[4096];
	json_t *vars = NULL;
	if (vars_json != NULL) {
		json_error_t je;
		vars = json_loads(vars_json, JSON_DECODE_ANY, &je);
		if (vars == NULL) {
			fprintf(stderr, "  bad test JSON: %s\n", vars_json);
			return "<bad json>";
		}
	}
	struct tmpl_error e;
	struct tmpl *t = tmpl_compile(src, strlen(src), html, &e);
	if (t == NULL) {
		json_decref(vars);
		return "<compile error>";
	}
	struct buf out;
	buf_init(&out, 0);
	struct err err = {0};
	int rc = tmpl_render(t, vars, &out, missing, &err);
	(void)snprintf(result, sizeof result, "%s", rc == 0 ? buf_cstr(&out) : "<render error>");
	buf_deinit(&out);
	tmpl_free(&t);
	CHECK(t == NULL);
	json_decref(vars);
	return result;
}

static const char *
render(const char *src, bool html, const char *vars_json)
{
	return render_m(src, html, vars_json, NULL);
}

static void
test_variables(void)
{
	CHECK_STR(render("Hello {{name}}!", false, "{\"name\":\"World\"}"), "Hello World!");
	CHECK_STR(render("", false, "{}"), "");
	CHECK_STR(render("no tags", false, NULL), "no tags");
	CHECK_STR(render("{{a}}{{b}}", false, "{\"a\":\"x\",\"b\":\"y\"}"), "xy");
	CHECK_STR(render("{{n}}", false, "{\"n\":42}"), "42");
	CHECK_STR(render("{{n}}", false, "{\"n\":-9223372036854775807}"), "-9223372036854775807");
	CHECK_STR(render("{{r}}", false, "{\"r\":1.5}"), "1.5");
	CHECK_STR(render("{{r}}", false, "{\"r\":0.1}"), "0.1");
	CHECK_STR(render("{{r}}", false, "{\"r\":-2.0}"), "-2.0");
	CHECK_STR(render("{{r}}", false, "{\"r\":1e300}"), "1e+300");
	CHECK_STR(render("{{r}}", false, "{\"r\":0.30000000000000004}"), "0.30000000000000004");
	CHECK_STR(render("{{t}}/{{f}}", false, "{\"t\":true,\"f\":false}"), "true/false");
	CHECK_STR(render("[{{z}}]", false, "{\"z\":null}"), "[]");
	CHECK_STR(render("[{{o}}{{a}}]", false, "{\"o\":{\"x\":1},\"a\":[1,2]}"), "[]");
	CHECK_STR(render("[{{x}}]", false, NULL), "[]");
	CHECK_STR(render("[{{x}}]", false, "{}"), "[]");
	/* the same name twice */
	CHECK_STR(render("{{a}}-{{a}}", true, "{\"a\":\"q\"}"), "q-q");
	/* braces that are not tags are text */
	CHECK_STR(render("{ } }} {x} {{a}}}", false, "{\"a\":1}"), "{ } }} {x} 1}");
	/* strings with NUL bytes come out whole */
	json_t *v = json_pack("{s:s%}", "s", "a\0b", (size_t)3);
	struct tmpl *t = tmpl_compile("<{{s}}>", 7, true, NULL);
	struct buf out;
	buf_init(&out, 0);
	CHECK_INT(tmpl_render(t, v, &out, NULL, NULL), 0);
	CHECK_INT(out.len, 5);
	CHECK(memcmp(out.data, "<a\0b>", 5) == 0);
	buf_deinit(&out);
	tmpl_free(&t);
	json_decref(v);
}

static void
test_escaping(void)
{
	const char *vars = "{\"x\":\"<a href=\\\"u?a=1&b='2'\\\">\"}";
	CHECK_STR(render("{{x}}", true, vars),
	          "&lt;a href=&quot;u?a=1&amp;b=&#39;2&#39;&quot;&gt;");
	CHECK_STR(render("{{x}}", false, vars), "<a href=\"u?a=1&b='2'\">");
	CHECK_STR(render("{{{x}}}", true, vars), "<a href=\"u?a=1&b='2'\">");
	CHECK_STR(render("{{&x}}", true, vars), "<a href=\"u?a=1&b='2'\">");
	CHECK_STR(render("{{& x }}", true, vars), "<a href=\"u?a=1&b='2'\">");
	CHECK_STR(render("{{{ x }}}", true, vars), "<a href=\"u?a=1&b='2'\">");
	/* template text is never escaped */
	CHECK_STR(render("<b>{{x}}</b>", true, "{\"x\":\"&&\"}"), "<b>&amp;&amp;</b>");
	CHECK_STR(render("{{x}}", true, "{\"x\":\"plain\"}"), "plain");
	CHECK_STR(render("{{x}}", true, "{\"x\":\"&\"}"), "&amp;");
}

static void
test_dotted(void)
{
	const char *vars = "{\"a\":{\"b\":{\"c\":\"deep\"},\"s\":\"str\"},\"c\":\"top\"}";
	CHECK_STR(render("{{a.b.c}}", false, vars), "deep");
	CHECK_STR(render("[{{a.x.c}}]", false, vars), "[]");
	CHECK_STR(render("[{{a.s.c}}]", false, vars), "[]");
	CHECK_STR(render("[{{a.b}}]", false, vars), "[]");
	/* a broken chain does not fall back to outer contexts */
	CHECK_STR(render("{{#a}}[{{b.c}}|{{x.c}}|{{c}}]{{/a}}", false, vars), "[deep||top]");
	struct tmpl_missing m = {0};
	CHECK_STR(render_m("{{a.x.c}}{{a.b.c}}{{q.r}}", false, vars, &m), "deep");
	CHECK_INT(m.n, 2);
	CHECK_STR(m.names[0], "a.x.c");
	CHECK_STR(m.names[1], "q.r");
	tmpl_missing_deinit(&m);
	CHECK_INT(m.n, 0);
	/* names with - and _ and digits; keys with dots cannot be reached */
	CHECK_STR(render("{{a-b_1}}", false, "{\"a-b_1\":\"ok\",\"x.y\":\"no\"}"), "ok");
	CHECK_STR(render("[{{x.y}}]", false, "{\"x.y\":\"no\"}"), "[]");
}

static void
test_sections(void)
{
	const char *vars =
	    "{\"items\":[{\"n\":\"a\",\"p\":1},{\"n\":\"b\",\"p\":2.5}],"
	    "\"tags\":[\"x\",\"<y>\",3,true,null],\"empty\":[],\"obj\":{\"k\":\"v\"},"
	    "\"title\":\"T\"}";
	CHECK_STR(render("{{#items}}{{n}}={{p}};{{/items}}", false, vars), "a=1;b=2.5;");
	CHECK_STR(render("{{#tags}}[{{.}}]{{/tags}}", true, vars), "[x][&lt;y&gt;][3][true][]");
	CHECK_STR(render("{{#tags}}[{{{.}}}]{{/tags}}", true, vars), "[x][<y>][3][true][]");
	CHECK_STR(render("a{{#empty}}x{{/empty}}b", false, vars), "ab");
	CHECK_STR(render("{{#obj}}{{k}}{{/obj}}", false, vars), "v");
	/* outer-context lookup from inside a list element */
	CHECK_STR(render("{{#items}}{{title}}{{n}}{{/items}}", false, vars), "TaTb");
	/* nested sections */
	CHECK_STR(render("{{#items}}{{#tags}}{{n}}{{/tags}}|{{/items}}", false, vars),
	          "aaaaa|bbbbb|");
	CHECK_STR(render("{{#obj}}{{#items}}{{k}}{{n}}{{/items}}{{/obj}}", false, vars), "vavb");
	/* the inner element shadows outer names */
	CHECK_STR(render("{{#o}}{{n}}{{#i}}{{n}}{{/i}}{{n}}{{/o}}", false,
	                 "{\"n\":0,\"o\":{\"n\":1,\"i\":[{\"n\":2},{}]}}"),
	          "1211");
	/* lists of lists */
	CHECK_STR(render("{{#l}}({{#.}}{{.}}{{/.}}){{/l}}", false, "{\"l\":[[1,2],[],[3]]}"),
	          "(12)()(3)");
	/* "." of the root object renders empty; a truthy scalar is pushed */
	CHECK_STR(render("[{{.}}]", false, "{\"a\":1}"), "[]");
	CHECK_STR(render("{{#s}}{{.}}{{/s}}", false, "{\"s\":\"val\"}"), "val");
	/* elements that are falsy still render the body once each */
	CHECK_STR(render("{{#l}}x{{/l}}", false, "{\"l\":[false,0,null,\"\"]}"), "xxxx");
	/* text keeps its whitespace and newlines byte for byte */
	CHECK_STR(render("{{#l}}\n  - {{.}}\n{{/l}}\n", false, "{\"l\":[1,2]}"),
	          "\n  - 1\n\n  - 2\n\n");
	/* a section named like the same name twice */
	CHECK_STR(render("{{#a}}1{{/a}}{{#a}}2{{/a}}", false, "{\"a\":true}"), "12");
}

static void
test_truthy(void)
{
	static const struct {
		const char *value;
		bool truthy;
	} cases[] = {
	    {"false", false}, {"null", false}, {"\"\"", false},     {"0", false},
	    {"0.0", false},   {"-0.0", false}, {"[]", false},       {"true", true},
	    {"\"0\"", true},  {"\" \"", true}, {"1", true},         {"-1", true},
	    {"0.5", true},    {"{}", true},    {"{\"a\":0}", true}, {"[0]", true},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		char vars[64];
		(void)snprintf(vars, sizeof vars, "{\"v\":%s}", cases[i].value);
		CHECK_STR(render("{{#v}}yes{{/v}}{{^v}}no{{/v}}", false, vars),
		          cases[i].truthy ? "yes" : "no");
	}
	/* missing is falsy */
	CHECK_STR(render("{{#v}}yes{{/v}}{{^v}}no{{/v}}", false, "{}"), "no");
	CHECK_STR(render("{{#v}}yes{{/v}}{{^v}}no{{/v}}", false, NULL), "no");
}

static void
test_inverted(void)
{
	const char *vars = "{\"items\":[],\"name\":\"N\",\"full\":[1]}";
	CHECK_STR(render("{{^items}}none {{name}}{{/items}}", false, vars), "none N");
	CHECK_STR(render("{{^full}}none{{/full}}", false, vars), "");
	CHECK_STR(render("{{#full}}{{^items}}in{{.}}{{/items}}{{/full}}", false, vars), "in1");
	CHECK_STR(render("{{^a}}{{^b}}ab{{/b}}{{/a}}", false, "{\"a\":0,\"b\":\"\"}"), "ab");
}

static void
test_comments_whitespace(void)
{
	const char *vars = "{\"a\":\"A\",\"l\":[1,2]}";
	CHECK_STR(render("x{{! a comment }}y", false, vars), "xy");
	CHECK_STR(render("x{{!}}y", false, vars), "xy");
	CHECK_STR(render("x{{! multi\nline {{ { } \n}}y{{a}}", false, vars), "xyA");
	CHECK_STR(render("{{!{{a}}}}", false, vars), "}}");
	CHECK_STR(render("{{ a }}{{\ta\t}}{{\na\r\n}}", false, vars), "AAA");
	CHECK_STR(render("{{# l }}{{ . }}{{/ l }}", false, vars), "12");
	CHECK_STR(render("{{#l}}{{.}}{{/  l}}", false, vars), "12");
	CHECK_STR(render("{{^ a }}x{{/a}}", false, vars), "");
}

static void
test_utf8(void)
{
	const char *src = "Grüße, {{name}} — ☃ {{#l}}{{.}}{{/l}} 😀";
	CHECK_STR(render(src, true, "{\"name\":\"Zoë <ü>\",\"l\":[\"日本\",\"語\"]}"),
	          "Grüße, Zoë &lt;ü&gt; — ☃ 日本語 😀");
}

struct err_case {
	const char *src;
	unsigned line, column;
	const char *msg;
};

static void
check_error(const char *src, size_t len, unsigned line, unsigned column, const char *msg)
{
	struct tmpl_error e;
	struct tmpl *t = tmpl_compile(src, len, true, &e);
	CHECK(t == NULL);
	tmpl_free(&t);
	if (e.line != line || e.column != column)
		fprintf(stderr, "  for %.60s: got %u:%u %s\n", src, e.line, e.column, e.msg);
	CHECK_INT(e.line, line);
	CHECK_INT(e.column, column);
	CHECK_STR(e.msg, msg);
}

static const struct err_case err_cases[] = {
    {"ab{{x", 1, 3, "unclosed tag '{{'"},
    {"ab{{", 1, 3, "unclosed tag '{{'"},
    {"{{", 1, 1, "unclosed tag '{{'"},
    {"a\nbc {{ x }", 2, 4, "unclosed tag '{{'"},
    {"a\nb {{{x}}", 2, 3, "unclosed tag '{{{'"},
    {"{{{x}} y", 1, 1, "unclosed tag '{{{'"},
    {"{{{x}", 1, 1, "unclosed tag '{{{'"},
    {"{{!x", 1, 1, "unclosed tag '{{'"},
    {"x\n{{#a}}y", 2, 1, "unclosed section 'a'"},
    {"{{#a}}\n  {{#b}}{{/b}}{{^c}}\n", 2, 15, "unclosed section 'c'"},
    {"{{#a}}\n  {{#b}}{{/a}}", 2, 9, "unexpected {{/a}}, expected {{/b}}"},
    {"{{#a}}{{/ b }}", 1, 7, "unexpected {{/b}}, expected {{/a}}"},
    {"{{^a.b}}{{/a}}", 1, 9, "unexpected {{/a}}, expected {{/a.b}}"},
    {"x{{/a}}", 1, 2, "unexpected {{/a}} without an open section"},
    {"{{#a}}{{/a}}{{/a}}", 1, 13, "unexpected {{/a}} without an open section"},
    {"{{}}", 1, 1, "empty tag name"},
    {"a {{ }}", 1, 3, "empty tag name"},
    {"\n\n{{#}}", 3, 1, "empty tag name"},
    {"{{/ }}", 1, 1, "empty tag name"},
    {"{{{}}}", 1, 1, "empty tag name"},
    {"{{&}}", 1, 1, "empty tag name"},
    {"{{^\t}}", 1, 1, "empty tag name"},
    {"{{a b}}", 1, 1, "invalid character ' ' in tag name"},
    {"{{a}b}}", 1, 1, "invalid character '}' in tag name"},
    {"{{>partial}}", 1, 1, "invalid character '>' in tag name"},
    {"{{=<% %>=}}", 1, 1, "invalid character '=' in tag name"},
    {"{{ #a}}", 1, 1, "invalid character '#' in tag name"},
    {"{{{{x}}}}", 1, 1, "invalid character '{' in tag name"},
    {"{{a\x01}}", 1, 1, "invalid byte 0x01 in tag name"},
    {"{{n\xc3\xa4me}}", 1, 1, "invalid byte 0xc3 in tag name"},
    {"{{a..b}}", 1, 1, "invalid name 'a..b'"},
    {"{{.a}}", 1, 1, "invalid name '.a'"},
    {"{{#a.}}", 1, 1, "invalid name 'a.'"},
    {"{{..}}", 1, 1, "invalid name '..'"},
};

static void
test_syntax_errors(void)
{
	for (size_t i = 0; i < sizeof err_cases / sizeof err_cases[0]; i++)
		check_error(err_cases[i].src, strlen(err_cases[i].src), err_cases[i].line,
		            err_cases[i].column, err_cases[i].msg);
	/* NUL bytes: in text they are data, in a name an error */
	check_error("a\0{{b\0}}", 8, 1, 3, "invalid byte 0x00 in tag name");
	struct tmpl *t = tmpl_compile("a\0b{{!\0}}", 9, false, NULL);
	CHECK(t != NULL);
	tmpl_free(&t);
	/* name length: TMPL_NAME_MAX is fine, one more is not */
	char src[TMPL_NAME_MAX + 16];
	memcpy(src, "{{", 2);
	memset(src + 2, 'n', TMPL_NAME_MAX);
	memcpy(src + 2 + TMPL_NAME_MAX, "}}", 3);
	CHECK_STR(render(src, false, NULL), "");
	memset(src + 2, 'n', TMPL_NAME_MAX + 1);
	memcpy(src + 3 + TMPL_NAME_MAX, "}}", 3);
	check_error(src, strlen(src), 1, 1, "tag name longer than 128 bytes");
	/* long names are shortened in messages */
	char src2[400];
	(void)snprintf(src2, sizeof src2, "{{#%0100d}}{{/%0120d}}", 1, 2);
	check_error(src2, strlen(src2), 1, 106,
	            "unexpected {{/000000000000000000000000000000000000000000000000}}, expected "
	            "{{/000000000000000000000000000000000000000000000000}}");
}

static void
test_limits(void)
{
	/* nesting: TMPL_DEPTH_MAX sections are fine, one more is an error at its tag */
	struct buf src;
	buf_init(&src, 0);
	for (int i = 0; i < TMPL_DEPTH_MAX; i++)
		buf_append_str(&src, "{{#a}}");
	buf_append_str(&src, "{{x}}");
	for (int i = 0; i < TMPL_DEPTH_MAX; i++)
		buf_append_str(&src, "{{/a}}");
	CHECK_STR(render(buf_cstr(&src), false, "{\"a\":{\"a\":true},\"x\":\"X\"}"), "X");
	buf_reset(&src);
	for (int i = 0; i <= TMPL_DEPTH_MAX; i++)
		buf_append_str(&src, "{{#a}}\n");
	check_error(buf_cstr(&src), src.len, TMPL_DEPTH_MAX + 1, 1,
	            "sections nested deeper than 32");

	/* source size: TMPL_SOURCE_MAX bytes are fine, one more is an error */
	buf_reset(&src);
	while (src.len < TMPL_SOURCE_MAX)
		buf_append_str(&src, "line {{x}}\n"); /* 11 bytes */
	struct tmpl *t = tmpl_compile((const char *)src.data, TMPL_SOURCE_MAX, false, NULL);
	CHECK(t != NULL); /* ends in a text node (524288 % 11 == 6: "line {") */
	tmpl_free(&t);
	check_error(buf_cstr(&src), TMPL_SOURCE_MAX + 1, TMPL_SOURCE_MAX / 11 + 1,
	            TMPL_SOURCE_MAX % 11 + 1, "template longer than 524288 bytes");
	buf_deinit(&src);

	/* output size: an error, not truncation; the limit counts only what this render adds */
	char *big = xmalloc(1024 * 1024 + 1);
	memset(big, 'x', 1024 * 1024);
	big[1024 * 1024] = '\0';
	json_t *vars = json_pack("{s:s,s:[iiiiiiii]}", "s", big, "l", 1, 2, 3, 4, 5, 6, 7, 8);
	t = tmpl_compile("{{#l}}{{s}}{{/l}}", 17, true, NULL);
	struct buf out;
	buf_init(&out, 0);
	buf_append_str(&out, "prefix");
	struct err err = {0};
	CHECK_INT(tmpl_render(t, vars, &out, NULL, &err), 0);
	CHECK_INT(out.len, 6 + TMPL_OUTPUT_MAX);
	json_array_append_new(json_object_get(vars, "l"), json_integer(9));
	buf_reset(&out);
	CHECK_INT(tmpl_render(t, vars, &out, NULL, &err), -1);
	CHECK_STR(err.msg, "rendered output exceeds 8388608 bytes");
	CHECK(out.len <= TMPL_OUTPUT_MAX);
	tmpl_free(&t);
	/* escaping counts: twice 1 MiB of '&' become 10 MiB */
	memset(big, '&', 1024 * 1024);
	json_object_set_new(vars, "s", json_string(big));
	t = tmpl_compile("{{s}}{{s}}", 10, true, NULL);
	buf_reset(&out);
	CHECK_INT(tmpl_render(t, vars, &out, NULL, &err), -1);
	buf_reset(&out);
	tmpl_free(&t);
	t = tmpl_compile("{{s}}{{s}}", 10, false, NULL);
	CHECK_INT(tmpl_render(t, vars, &out, NULL, &err), 0);
	tmpl_free(&t);
	/* the caller's buffer limit is honoured too */
	struct buf small;
	buf_init(&small, 10);
	t = tmpl_compile("0123456789{{s}}", 15, false, NULL);
	CHECK_INT(tmpl_render(t, vars, &small, NULL, &err), -1);
	buf_deinit(&small);
	tmpl_free(&t);
	buf_deinit(&out);
	json_decref(vars);
	free(big);

	/* nested sections over lists with empty bodies stop at the work limit, quickly */
	json_t *l = json_array();
	for (int i = 0; i < 1000; i++)
		json_array_append_new(l, json_integer(i));
	vars = json_pack("{s:o}", "l", l);
	const char *nest = "{{#l}}{{#l}}{{#l}}{{#l}}{{/l}}{{/l}}{{/l}}{{/l}}";
	t = tmpl_compile(nest, strlen(nest), false, NULL);
	buf_init(&out, 0);
	CHECK_INT(tmpl_render(t, vars, &out, NULL, &err), -1);
	CHECK(strstr(err.msg, "steps") != NULL);
	tmpl_free(&t);
	buf_deinit(&out);
	json_decref(vars);
}

static void
test_missing(void)
{
	struct tmpl_missing m = {0};
	const char *vars = "{\"z\":null,\"l\":[{\"a\":1},{\"b\":2},{}],\"o\":{}}";
	CHECK_STR(
	    render_m("{{z}}{{x}}{{#l}}{{a}}{{b}}{{y}}{{/l}}{{x}}{{^w}}{{/w}}{{o.p}}{{o}}{{.}}",
	             false, vars, &m),
	    "12");
	/* z is null (present), a and b exist in some elements but not others */
	CHECK_INT(m.n, 6);
	CHECK_INT(m.n_dropped, 0);
	if (m.n == 6) {
		CHECK_STR(m.names[0], "x");
		CHECK_STR(m.names[1], "b");
		CHECK_STR(m.names[2], "y");
		CHECK_STR(m.names[3], "a");
		CHECK_STR(m.names[4], "w");
		CHECK_STR(m.names[5], "o.p");
	}
	/* reused across renders: names stay unique */
	CHECK_STR(render_m("{{x}}{{q}}", false, "{}", &m), "");
	CHECK_INT(m.n, 7);
	CHECK_STR(m.names[6], "q");
	tmpl_missing_deinit(&m);
	tmpl_missing_deinit(&m);
	tmpl_missing_deinit(NULL);

	/* "." without variables is missing */
	CHECK_STR(render_m("{{.}}", false, NULL, &m), "");
	CHECK_INT(m.n, 1);
	tmpl_missing_deinit(&m);

	/* more than TMPL_MISSING_MAX names: the rest counted once each, even inside a list */
	struct buf src;
	buf_init(&src, 0);
	buf_append_str(&src, "{{#l}}");
	for (int i = 0; i < TMPL_MISSING_MAX + 10; i++)
		buf_printf(&src, "{{m%d}}", i);
	buf_append_str(&src, "{{/l}}");
	CHECK_STR(render_m(buf_cstr(&src), false, "{\"l\":[1,2,3]}", &m), "");
	CHECK_INT(m.n, TMPL_MISSING_MAX);
	CHECK_INT(m.n_dropped, 10);
	CHECK_STR(m.names[0], "m0");
	CHECK_STR(m.names[TMPL_MISSING_MAX - 1], "m63");
	tmpl_missing_deinit(&m);
	buf_deinit(&src);
}

/* Every template of the tests, cut short at every length and extended by a byte: compile
 * errors or renders, never crashes (ASan/UBSan watch). */
static const char *const sweep_templates[] = {
    "Hello {{name}}!",
    "{{#items}}{{n}}={{p}};{{/items}}",
    "{{#tags}}[{{{.}}}]{{/tags}}",
    "{{^items}}none {{name}}{{/items}}",
    "x{{! multi\nline {{ { } \n}}y{{a}}",
    "{{& x }}{{{ y }}}{{a.b.c}}",
    "{{#o}}{{n}}{{#i}}{{n}}{{/i}}{{n}}{{/o}}",
    "{{#l}}({{#.}}{{.}}{{/.}}){{/l}}",
    "Grüße, {{name}} — ☃ {{#l}}{{.}}{{/l}} 😀",
};

static void
sweep_one(const char *src, size_t len, const json_t *vars)
{
	struct tmpl_error e;
	struct tmpl *t = tmpl_compile(src, len, true, &e);
	if (t == NULL) {
		CHECK(e.line >= 1 && e.column >= 1 && e.msg[0] != '\0');
		return;
	}
	struct buf out;
	buf_init(&out, 0);
	struct tmpl_missing m = {0};
	struct err err = {0};
	CHECK_INT(tmpl_render(t, vars, &out, &m, &err), 0);
	tmpl_missing_deinit(&m);
	buf_deinit(&out);
	tmpl_free(&t);
}

static void
test_truncations(void)
{
	json_t *vars =
	    json_loads("{\"name\":\"N\",\"items\":[{\"n\":1}],\"tags\":[\"<\"],\"l\":[[1]],"
	               "\"o\":{\"i\":[{}]},\"a\":{\"b\":{}}}",
	               0, NULL);
	CHECK(vars != NULL);
	static const char extra[] = "{}}#/^!&. \n\0x";
	size_t n_all = sizeof sweep_templates / sizeof sweep_templates[0];
	size_t n_err = sizeof err_cases / sizeof err_cases[0];
	for (size_t i = 0; i < n_all + n_err; i++) {
		const char *s = i < n_all ? sweep_templates[i] : err_cases[i - n_all].src;
		size_t len = strlen(s);
		/* heap copies so that ASan sees reads past the given length */
		for (size_t cut = 0; cut <= len; cut++) {
			char *p = xmalloc(cut ? cut : 1);
			memcpy(p, s, cut);
			sweep_one(p, cut, vars);
			sweep_one(p, cut, NULL);
			free(p);
		}
		for (size_t k = 0; k < sizeof extra - 1; k++) {
			char *p = xmalloc(len + 1);
			memcpy(p, s, len);
			p[len] = extra[k];
			sweep_one(p, len + 1, vars);
			free(p);
		}
	}
	/* a full template stays valid; its prefix without the last byte must not */
	const char *s = "{{#l}}{{/l}}";
	struct tmpl *t = tmpl_compile(s, strlen(s) - 1, false, NULL);
	CHECK(t == NULL);
	json_decref(vars);
}

int
main(void)
{
	RUN(test_variables);
	RUN(test_escaping);
	RUN(test_dotted);
	RUN(test_sections);
	RUN(test_truthy);
	RUN(test_inverted);
	RUN(test_comments_whitespace);
	RUN(test_utf8);
	RUN(test_syntax_errors);
	RUN(test_limits);
	RUN(test_missing);
	RUN(test_truncations);
	return test_done("tmpl_template");
}

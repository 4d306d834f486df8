/* Unit tests for src/util: buf, slice, arena, strconv, base64, err, log, rand, clock, xalloc,
 * privs. */
#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "test.h"
#include "util/arena.h"
#include "util/base64.h"
#include "util/buf.h"
#include "util/clock.h"
#include "util/err.h"
#include "util/log.h"
#include "util/privs.h"
#include "util/rand.h"
#include "util/strconv.h"
#include "util/xalloc.h"

static void
test_buf_basic(void)
{
	struct buf b;
	buf_init(&b, 16);
	CHECK_STR(buf_cstr(&b), "");
	CHECK_INT(buf_append_str(&b, "hello"), 0);
	CHECK_INT(buf_printf(&b, " %d", 42), 0);
	CHECK_STR(buf_cstr(&b), "hello 42");
	buf_consume(&b, 6);
	CHECK_STR(buf_cstr(&b), "42");
	CHECK_INT(b.len, 2);
	buf_reset(&b);
	CHECK_INT(b.len, 0);
	buf_deinit(&b);
}

static void
test_buf_max(void)
{
	struct buf b;
	buf_init(&b, 8);
	CHECK_INT(buf_append(&b, "12345678", 8), 0);
	CHECK(!b.overflow);
	CHECK_INT(buf_append_byte(&b, 'x'), -1);
	CHECK(b.overflow);
	CHECK_INT(b.len, 8);
	CHECK_INT(buf_printf(&b, "%s", "y"), -1);
	buf_reset(&b);
	CHECK(!b.overflow);
	/* NUL bytes are data */
	CHECK_INT(buf_append(&b, "a\0b", 3), 0);
	CHECK_INT(b.len, 3);
	CHECK_INT(b.data[3], 0);
	buf_deinit(&b);
	/* growth past the first allocation */
	buf_init(&b, 0);
	for (int i = 0; i < 1000; i++)
		CHECK_INT(buf_append(&b, "abcdefghij", 10), 0);
	CHECK_INT(b.len, 10000);
	buf_deinit(&b);
}

static void
test_slice(void)
{
	struct slice head, rest = slice_cut(slice_from("key=value=x"), '=', &head);
	CHECK(slice_eq(head, "key"));
	CHECK(slice_eq(rest, "value=x"));
	rest = slice_cut(slice_from("novalue"), '=', &head);
	CHECK(rest.p == NULL && rest.len == 0);
	CHECK(slice_eq(head, "novalue"));
	CHECK(slice_eq_nocase(slice_from("EHLO"), "ehlo"));
	CHECK(!slice_eq_nocase(slice_from("EHLOX"), "ehlo"));
	CHECK(slice_has_prefix_nocase(slice_from("MAIL FROM:"), "mail from"));
	CHECK(!slice_has_prefix_nocase(slice_from("MA"), "mail"));
	CHECK(slice_eq(slice_trim(slice_from(" \t x y \t")), "x y"));
	CHECK(slice_eq(slice_trim(slice_from("   ")), ""));
}

static void
test_arena(void)
{
	struct arena *a = arena_new("test", 64);
	char *s = arena_strdup(a, "hello");
	CHECK_STR(s, "hello");
	CHECK_STR(arena_strndup(a, "abcdef", 3), "abc");
	void *big = arena_alloc(a, 10000); /* larger than a chunk */
	memset(big, 1, 10000);
	for (int i = 0; i < 100; i++) {
		uintptr_t p = (uintptr_t)arena_alloc(a, (size_t)i + 1);
		CHECK_INT(p % 16, 0);
	}
	unsigned char *z = arena_zalloc(a, 32);
	CHECK_INT(z[0] | z[31], 0);
	CHECK(arena_used(a) > 10000);
	CHECK_STR(s, "hello"); /* earlier allocations stay valid */
	arena_free(&a);
	CHECK(a == NULL);
	arena_free(&a); /* accepts NULL */
}

static void
test_strconv_u64(void)
{
	static const struct {
		const char *in;
		uint64_t max;
		int rc;
		uint64_t want;
	} cases[] = {
	    {"0", 10, 0, 0},
	    {"10", 10, 0, 10},
	    {"11", 10, -1, 0},
	    {"18446744073709551615", UINT64_MAX, 0, UINT64_MAX},
	    {"18446744073709551616", UINT64_MAX, -1, 0},
	    {"99999999999999999999999", UINT64_MAX, -1, 0},
	    {"", 10, -1, 0},
	    {"-5", 10, -1, 0},
	    {"+5", 10, -1, 0},
	    {" 5", 10, -1, 0},
	    {"5 ", 10, -1, 0},
	    {"5x", 10, -1, 0},
	    {"0x10", 100, -1, 0},
	    {"007", 10, 0, 7},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		uint64_t v = 12345;
		int rc = strconv_u64(slice_from(cases[i].in), cases[i].max, &v);
		CHECK_INT(rc, cases[i].rc);
		if (rc == 0)
			CHECK(v == cases[i].want);
		else
			CHECK_INT(v, 12345); /* untouched on error */
	}
	uint64_t v;
	CHECK_INT(strconv_u64(slice_make("12\0003", 4), 1000, &v), -1); /* embedded NUL */
}

static void
test_strconv_units(void)
{
	uint64_t v;
	CHECK_INT(strconv_size(slice_from("25MiB"), UINT64_MAX, &v), 0);
	CHECK(v == 25ULL * 1024 * 1024);
	CHECK_INT(strconv_size(slice_from("512k"), UINT64_MAX, &v), 0);
	CHECK(v == 512 * 1024);
	CHECK_INT(strconv_size(slice_from("1GB"), UINT64_MAX, &v), 0);
	CHECK(v == 1024ULL * 1024 * 1024);
	CHECK_INT(strconv_size(slice_from("1000"), UINT64_MAX, &v), 0);
	CHECK(v == 1000);
	CHECK_INT(strconv_size(slice_from("5TB"), UINT64_MAX, &v), -1);
	CHECK_INT(strconv_size(slice_from("MiB"), UINT64_MAX, &v), -1);
	CHECK_INT(strconv_size(slice_from("-1MiB"), UINT64_MAX, &v), -1);
	CHECK_INT(strconv_size(slice_from("2GiB"), 1024ULL * 1024 * 1024, &v), -1);
	CHECK_INT(strconv_size(slice_from("99999999999999999G"), UINT64_MAX, &v), -1);
	CHECK_INT(strconv_duration(slice_from("5d"), UINT64_MAX, &v), 0);
	CHECK(v == 5 * 86400);
	CHECK_INT(strconv_duration(slice_from("90"), UINT64_MAX, &v), 0);
	CHECK(v == 90);
	CHECK_INT(strconv_duration(slice_from("1m"), UINT64_MAX, &v), 0);
	CHECK(v == 60);
	CHECK_INT(strconv_duration(slice_from("2w"), UINT64_MAX, &v), 0);
	CHECK(v == 14 * 86400);
	CHECK_INT(strconv_duration(slice_from("1M"), UINT64_MAX, &v), -1);
	CHECK_INT(strconv_duration(slice_from("1h30m"), UINT64_MAX, &v), -1);
	int b;
	CHECK_INT(strconv_bool(slice_from("Yes"), &b), 0);
	CHECK_INT(b, 1);
	CHECK_INT(strconv_bool(slice_from("off"), &b), 0);
	CHECK_INT(b, 0);
	CHECK_INT(strconv_bool(slice_from("2"), &b), -1);
}

static void
test_base64(void)
{
	static const struct {
		const char *plain, *enc;
	} vec[] = {/* RFC 4648 §10 test vectors */
	           {"", ""},
	           {"f", "Zg=="},
	           {"fo", "Zm8="},
	           {"foo", "Zm9v"},
	           {"foob", "Zm9vYg=="},
	           {"fooba", "Zm9vYmE="},
	           {"foobar", "Zm9vYmFy"}};
	for (size_t i = 0; i < sizeof vec / sizeof vec[0]; i++) {
		struct buf b;
		buf_init(&b, 0);
		CHECK_INT(
		    base64_encode((const unsigned char *)vec[i].plain, strlen(vec[i].plain), &b),
		    0);
		CHECK_STR(buf_cstr(&b), vec[i].enc);
		buf_reset(&b);
		CHECK_INT(base64_decode(vec[i].enc, strlen(vec[i].enc), 0, &b), 0);
		CHECK_STR(buf_cstr(&b), vec[i].plain);
		buf_deinit(&b);
	}
	static const char *bad[] = {
	    "Zg", "Zg=", "Z===", "Zm9v!", "Zg==Zg==", "=Zg=", "Zh==", "Zm9=", "Zm 9v", "Zm9vYg=x"};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		struct buf b;
		buf_init(&b, 0);
		CHECK_INT(base64_decode(bad[i], strlen(bad[i]), 0, &b), -1);
		buf_deinit(&b);
	}
	struct buf b;
	buf_init(&b, 0);
	CHECK_INT(base64_decode("Zm9v\r\n YmFy", 11, 1, &b), 0); /* DKIM p= folding */
	CHECK_STR(buf_cstr(&b), "foobar");
	buf_deinit(&b);
	buf_init(&b, 2);
	CHECK_INT(base64_decode("Zm9v", 4, 0, &b), -1); /* output bound */
	buf_deinit(&b);
	/* round trip of every byte value */
	unsigned char all[256];
	for (int i = 0; i < 256; i++)
		all[i] = (unsigned char)i;
	struct buf e, d;
	buf_init(&e, 0);
	buf_init(&d, 0);
	CHECK_INT(base64_encode(all, 256, &e), 0);
	CHECK_INT(base64_decode((const char *)e.data, e.len, 0, &d), 0);
	CHECK(d.len == 256 && memcmp(d.data, all, 256) == 0);
	buf_deinit(&e);
	buf_deinit(&d);
}

static void
test_err(void)
{
	struct err err;
	CHECK_INT(err_set(&err, 7, "bad %s", "thing"), -1);
	CHECK_INT(err.code, 7);
	CHECK_STR(err.msg, "bad thing");
	err_set_errno(&err, 2, 2, "open %s", "x");
	CHECK_STR(err.msg, "open x: No such file or directory");
	char longs[600];
	memset(longs, 'a', sizeof longs - 1);
	longs[sizeof longs - 1] = '\0';
	err_set(&err, 1, "%s", longs);
	CHECK_INT(strlen(err.msg), sizeof err.msg - 1);
	CHECK_INT(err_set(NULL, 1, "x"), -1);
	err_clear(&err);
	CHECK_STR(err.msg, "");
}

static void
test_log_escape(void)
{
	char out[32];
	CHECK_STR(log_escape("plain text", out, sizeof out), "plain text");
	CHECK_STR(log_escape("a\"b\\c\r\n", out, sizeof out), "a\\x22b\\x5cc\\x0d\\x0a");
	CHECK_STR(log_escape("0123456789012345678901234567890123456789", out, 16),
	          "012345678901...");
	CHECK_INT(log_level_parse("warn"), LOG_WARN);
	CHECK_INT(log_level_parse("loud"), -1);
}

static void
test_rand(void)
{
	char a[25], b[25];
	rand_token(a, 24);
	rand_token(b, 24);
	CHECK_INT(strlen(a), 24);
	CHECK(strcmp(a, b) != 0);
	for (int i = 0; i < 24; i++)
		CHECK((a[i] >= 'a' && a[i] <= 'z') || (a[i] >= 'A' && a[i] <= 'Z') ||
		      (a[i] >= '0' && a[i] <= '9'));
	char hex[9];
	hex_encode((const unsigned char *)"\x01\xab\xff\x00", 4, hex);
	CHECK_STR(hex, "01abff00");
	char *p = xasprintf("%s-%d", "x", 5);
	CHECK_STR(p, "x-5");
	x_free(&p);
	CHECK(p == NULL);
}

/* Lines go to the configured fd, one write each, filtered by level, with the errno text. */
static void
test_log_lines(void)
{
	int fds[2];
	CHECK_INT(pipe(fds), 0);
	log_set_fd(fds[1]);
	log_set_level(LOG_INFO);
	log_debug("smtp %s hidden", "S1");
	log_info("smtp %s connect client=%s", "S1", "127.0.0.1");
	log_set_level(LOG_WARN);
	log_info("smtp %s also-hidden", "S1");
	errno = ENOENT;
	log_msg_errno(LOG_ERROR, "store - open path=%s", "/x");
	log_set_fd(2);
	log_set_level(LOG_INFO);
	close(fds[1]);
	char got[1024];
	ssize_t n = read(fds[0], got, sizeof got - 1);
	close(fds[0]);
	CHECK(n > 0);
	got[n > 0 ? n : 0] = '\0';
	/* "YYYY-MM-DDTHH:MM:SS.mmmZ level component id event key=value" */
	const char *l1 = got, *l2 = strchr(got, '\n');
	CHECK(l2 != NULL && strchr(l2 + 1, '\n') != NULL && strchr(l2 + 1, '\n')[1] == '\0');
	CHECK(strlen(l1) > 25 && l1[4] == '-' && l1[10] == 'T' && l1[23] == 'Z');
	CHECK(strncmp(l1 + 25, "info smtp S1 connect client=127.0.0.1\n", 38) == 0);
	CHECK(l2 != NULL && strncmp(l2 + 26, "error store - open path=/x error=\"", 34) == 0);
	CHECK(strstr(got, "hidden") == NULL);
	CHECK_STR(log_level_name(LOG_ERROR), "error");
}

static void
test_clock(void)
{
	int64_t a = clock_mono_ms();
	struct timespec ts = {0, 20 * 1000 * 1000};
	nanosleep(&ts, NULL);
	int64_t b = clock_mono_ms();
	CHECK(b - a >= 20);
	int64_t now = clock_now(), t = (int64_t)time(NULL);
	CHECK(now >= t - 1 && now <= t + 1);
}

static void
test_xalloc(void)
{
	char *s = xstrndup("abcdef", 3);
	CHECK_STR(s, "abc");
	s = xrealloc(s, 100);
	CHECK_STR(s, "abc");
	x_free(&s);
	CHECK(s == NULL);
	x_free(&s); /* NULL is accepted */
	int *z = xcalloc(16, sizeof *z);
	for (int i = 0; i < 16; i++)
		CHECK_INT(z[i], 0);
	x_free(&z);
	char *d = xstrdup("");
	CHECK_STR(d, "");
	x_free(&d);
}

static void
test_privs(void)
{
	uid_t uid;
	gid_t gid;
	struct err err = {0};
	CHECK_INT(privs_lookup("no-such-user-lightr", &uid, &gid, &err), -1);
	CHECK(strstr(err.msg, "no-such-user-lightr") != NULL);
	CHECK_INT(privs_lookup("root", &uid, &gid, &err), 0);
	CHECK_INT(uid, 0);
	char dir[] = "/tmp/lightr-privs-XXXXXX";
	CHECK(mkdtemp(dir) != NULL);
	char *sub = xasprintf("%s/data", dir);
	CHECK_INT(privs_mkdir(sub, &err), 0);
	CHECK_INT(privs_mkdir(sub, &err), 0); /* existing: fine */
	struct stat st;
	CHECK_INT(stat(sub, &st), 0);
	CHECK_INT(st.st_mode & 0777, 0750);
	if (geteuid() == 0 && privs_lookup("nobody", &uid, &gid, &err) == 0) {
		CHECK_INT(privs_chown_tree(dir, uid, gid, &err), 0);
		CHECK_INT(stat(sub, &st), 0);
		CHECK_INT(st.st_uid, uid);
		pid_t pid = fork();
		if (pid == 0) {
			/* In the child: drop, then root must be gone for good. */
			if (privs_drop(uid, gid, &err) < 0)
				_exit(2);
			_exit(setuid(0) == 0 || geteuid() != uid ? 3 : 0);
		}
		int status = -1;
		CHECK_INT(waitpid(pid, &status, 0), pid);
		CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	}
	rmdir(sub);
	rmdir(dir);
	x_free(&sub);
}

int
main(void)
{
	RUN(test_buf_basic);
	RUN(test_buf_max);
	RUN(test_slice);
	RUN(test_arena);
	RUN(test_strconv_u64);
	RUN(test_strconv_units);
	RUN(test_base64);
	RUN(test_err);
	RUN(test_log_escape);
	RUN(test_rand);
	RUN(test_log_lines);
	RUN(test_clock);
	RUN(test_xalloc);
	RUN(test_privs);
	return test_done("util");
}

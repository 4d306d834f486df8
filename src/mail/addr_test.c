/* Unit tests for mail/addr: domain and address syntax, lengths, lower-casing. */
#include <string.h>

#include "mail/addr.h"
#include "test.h"

static void
test_domains(void)
{
	static const struct {
		const char *in;
		bool ok;
	} cases[] = {
	    {"example.com", true},
	    {"mail.example.co.uk", true},
	    {"xn--bcher-kva.example", true},
	    {"a-b.example", true},
	    {"EXAMPLE.COM", true},
	    {"123.example", true},
	    {"localhost", false},    /* one label */
	    {"example..com", false}, /* empty label */
	    {".example.com", false},
	    {"example.com.", false},
	    {"-mail.example", false},
	    {"mail-.example", false},
	    {"ex_ample.com", false},
	    {"exa mple.com", false},
	    {"192.168.1.1", false}, /* last label all digits */
	    {"", false},
	    {"user@example.com", false},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		bool got = addr_domain_is_valid(slice_from(cases[i].in));
		if (got != cases[i].ok)
			fprintf(stderr, "  case %s\n", cases[i].in);
		CHECK(got == cases[i].ok);
	}
	char label[80], dom[300];
	memset(label, 'a', 63);
	label[63] = '\0';
	snprintf(dom, sizeof dom, "%s.example", label);
	CHECK(addr_domain_is_valid(slice_from(dom)));
	label[63] = 'a';
	label[64] = '\0';
	snprintf(dom, sizeof dom, "%s.example", label);
	CHECK(!addr_domain_is_valid(slice_from(dom))); /* 64-octet label */
	/* 254 octets in all: too long */
	memset(dom, 'a', 254);
	for (int i = 60; i < 254; i += 61)
		dom[i] = '.';
	dom[254] = '\0';
	CHECK(!addr_domain_is_valid(slice_from(dom)));
	dom[253] = '\0';
	CHECK(addr_domain_is_valid(slice_from(dom)));
	CHECK(!addr_domain_is_valid(slice_make("exa\0mple.com", 12)));
}

static void
test_addresses(void)
{
	static const struct {
		const char *in;
		bool ok;
		const char *local, *domain;
	} cases[] = {
	    {"alice@example.com", true, "alice", "example.com"},
	    {"first.last+tag@example.com", true, "first.last+tag", "example.com"},
	    {"o'brien@example.com", true, "o'brien", "example.com"},
	    {"a@b.example", true, "a", "b.example"},
	    {"@example.com", false, NULL, NULL},
	    {"alice@", false, NULL, NULL},
	    {"alice", false, NULL, NULL},
	    {".alice@example.com", false, NULL, NULL},
	    {"alice.@example.com", false, NULL, NULL},
	    {"al..ice@example.com", false, NULL, NULL},
	    {"al ice@example.com", false, NULL, NULL},
	    {"\"quoted\"@example.com", false, NULL, NULL},
	    {"a@b@example.com", false, NULL, NULL},
	    {"alice@localhost", false, NULL, NULL},
	    {"al<ice@example.com", false, NULL, NULL},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct slice l = {0}, d = {0};
		bool got = addr_parse(slice_from(cases[i].in), &l, &d);
		if (got != cases[i].ok)
			fprintf(stderr, "  case %s\n", cases[i].in);
		CHECK(got == cases[i].ok);
		if (got && cases[i].ok) {
			CHECK(slice_eq(l, cases[i].local));
			CHECK(slice_eq(d, cases[i].domain));
		}
	}
	char local[80], a[400];
	struct slice l, d;
	memset(local, 'x', 64);
	local[64] = '\0';
	snprintf(a, sizeof a, "%s@example.com", local);
	CHECK(addr_parse(slice_from(a), &l, &d));
	local[64] = 'x';
	local[65] = '\0';
	snprintf(a, sizeof a, "%s@example.com", local);
	CHECK(!addr_parse(slice_from(a), &l, &d)); /* local part over 64 octets */
}

static void
test_lower(void)
{
	char out[16];
	CHECK_INT(addr_lower(slice_from("ExAmPlE.COM"), out, sizeof out), 0);
	CHECK_STR(out, "example.com");
	CHECK_INT(addr_lower(slice_from("0123456789abcdef"), out, sizeof out), -1);
}

int
main(void)
{
	RUN(test_domains);
	RUN(test_addresses);
	RUN(test_lower);
	return test_done("mail_addr");
}

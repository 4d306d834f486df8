/* Checked integer parsing; see strconv.h. */
#include "strconv.h"

int
strconv_u64(struct slice s, uint64_t max, uint64_t *v_r)
{
	if (s.len == 0 || s.len > 20)
		return -1;
	uint64_t v = 0;
	for (size_t i = 0; i < s.len; i++) {
		unsigned char c = (unsigned char)s.p[i];
		if (c < '0' || c > '9')
			return -1;
		unsigned d = c - '0';
		if (v > (UINT64_MAX - d) / 10)
			return -1;
		v = v * 10 + d;
	}
	if (v > max)
		return -1;
	*v_r = v;
	return 0;
}

/* Splits "123unit" into digits and unit. */
static struct slice
split_unit(struct slice s, struct slice *unit_r)
{
	size_t i = 0;
	while (i < s.len && s.p[i] >= '0' && s.p[i] <= '9')
		i++;
	*unit_r = (struct slice){s.p + i, s.len - i};
	return (struct slice){s.p, i};
}

static int
scaled(struct slice digits, uint64_t mult, uint64_t max, uint64_t *v_r)
{
	uint64_t v;
	if (strconv_u64(digits, UINT64_MAX, &v) < 0)
		return -1;
	if (mult != 0 && v > UINT64_MAX / mult)
		return -1;
	v *= mult;
	if (v > max)
		return -1;
	*v_r = v;
	return 0;
}

int
strconv_size(struct slice s, uint64_t max, uint64_t *v_r)
{
	struct slice unit;
	struct slice digits = split_unit(s, &unit);
	static const struct {
		const char *name;
		uint64_t mult;
	} units[] = {
	    {"", 1},
	    {"b", 1},
	    {"k", 1024},
	    {"kb", 1024},
	    {"kib", 1024},
	    {"m", 1024 * 1024},
	    {"mb", 1024 * 1024},
	    {"mib", 1024 * 1024},
	    {"g", 1024ULL * 1024 * 1024},
	    {"gb", 1024ULL * 1024 * 1024},
	    {"gib", 1024ULL * 1024 * 1024},
	};
	for (size_t i = 0; i < sizeof units / sizeof units[0]; i++)
		if (slice_eq_nocase(unit, units[i].name))
			return scaled(digits, units[i].mult, max, v_r);
	return -1;
}

int
strconv_duration(struct slice s, uint64_t max, uint64_t *v_r)
{
	struct slice unit;
	struct slice digits = split_unit(s, &unit);
	static const struct {
		const char *name;
		uint64_t mult;
	} units[] = {
	    {"", 1}, {"s", 1}, {"m", 60}, {"h", 3600}, {"d", 86400}, {"w", 7 * 86400},
	};
	for (size_t i = 0; i < sizeof units / sizeof units[0]; i++)
		if (slice_eq(unit, units[i].name))
			return scaled(digits, units[i].mult, max, v_r);
	return -1;
}

int
strconv_bool(struct slice s, int *v_r)
{
	static const char *yes[] = {"true", "yes", "on"}, *no[] = {"false", "no", "off"};
	for (size_t i = 0; i < 3; i++) {
		if (slice_eq_nocase(s, yes[i])) {
			*v_r = 1;
			return 0;
		}
		if (slice_eq_nocase(s, no[i])) {
			*v_r = 0;
			return 0;
		}
	}
	return -1;
}

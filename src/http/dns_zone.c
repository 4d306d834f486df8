/* DNS records as zone-file text, as `lightr domain dns` prints them and GET
 * /api/v1/domains/{domain}/dns returns them (http.h). */
#include <stdlib.h>
#include <string.h>

#include "http.h"

/* DNS character-strings hold at most 255 octets (RFC 1035 §3.3); longer TXT values are split
 * into several quoted strings. The values we publish (SPF, DKIM, DMARC) contain no '"' or '\\'. */
#define DNS_TXT_STRING_MAX 255

void
http_dns_zone(const char *domain, const struct http_dns_record *v, size_t n, struct buf *out)
{
	(void)buf_printf(out, "; DNS records for %s (zone-file lines; names are absolute)\n",
	                 domain);
	for (size_t i = 0; i < n; i++) {
		if (v[i].comment)
			(void)buf_printf(out, "; %s\n", v[i].comment);
		(void)buf_printf(out, "%s\tIN\t%s\t", v[i].name, v[i].type);
		if (strcmp(v[i].type, "TXT") != 0) {
			(void)buf_printf(out, "%s\n", v[i].value);
			continue;
		}
		size_t len = strlen(v[i].value), off = 0;
		do {
			size_t k = len - off < DNS_TXT_STRING_MAX ? len - off : DNS_TXT_STRING_MAX;
			(void)buf_printf(out, "%s\"%.*s\"", off ? " " : "", (int)k,
			                 v[i].value + off);
			off += k;
		} while (off < len);
		(void)buf_append_str(out, "\n");
	}
}

void
http_dns_records_free(struct http_dns_record **vp, size_t n)
{
	struct http_dns_record *v = *vp;
	if (v == NULL)
		return;
	for (size_t i = 0; i < n; i++) {
		free(v[i].name);
		free(v[i].type);
		free(v[i].value);
		free(v[i].comment);
	}
	free(v);
	*vp = NULL;
}

/* Listener address parsing and binding; see listen.h. Every failure names the address, so a
 * start-up error reads "address 0.0.0.0:25: address already in use" and the operator knows which
 * listener to fix. */
#include "listen.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "util/slice.h"
#include "util/strconv.h"

/* Parses the port part (decimal, 0..65535). */
static int
parse_port(struct slice p, uint16_t *port_r, const char *s, struct err *err)
{
	uint64_t v;
	if (p.len == 0)
		return err_set(err, EINVAL, "address %s: missing port", s);
	if (strconv_u64(p, 65535, &v) < 0)
		return err_set(err, EINVAL, "address %s: bad port (want 0..65535)", s);
	*port_r = (uint16_t)v;
	return 0;
}

int
net_addr_parse(const char *s, struct net_addr *a_r, struct err *err)
{
	memset(a_r, 0, sizeof *a_r);
	size_t n = strlen(s);
	char host[INET6_ADDRSTRLEN + 1];
	struct slice port;
	bool v6 = false;

	if (n == 0)
		return err_set(err, EINVAL, "empty address");
	if (s[0] == '[') {
		const char *close = memchr(s, ']', n);
		if (close == NULL)
			return err_set(err, EINVAL, "address %s: missing ']'", s);
		size_t hl = (size_t)(close - s - 1);
		if (close[1] != ':')
			return err_set(err, EINVAL, "address %s: missing port (want [v6]:port)", s);
		if (hl == 0 || hl >= sizeof host)
			return err_set(err, EINVAL, "address %s: bad IPv6 address", s);
		memcpy(host, s + 1, hl);
		host[hl] = '\0';
		port = slice_make(close + 2, n - (size_t)(close + 2 - s));
		v6 = true;
	} else {
		const char *colon = strrchr(s, ':');
		if (colon == NULL)
			return err_set(err, EINVAL, "address %s: missing port (want host:port)", s);
		size_t hl = (size_t)(colon - s);
		if (memchr(s, ':', hl) != NULL)
			return err_set(err, EINVAL,
			               "address %s: IPv6 addresses need brackets: [addr]:port", s);
		if (hl >= sizeof host)
			return err_set(err, EINVAL, "address %s: not a numeric IP address", s);
		memcpy(host, s, hl);
		host[hl] = '\0';
		port = slice_make(colon + 1, n - hl - 1);
	}

	uint16_t pnum;
	if (parse_port(port, &pnum, s, err) < 0)
		return -1;

	if (!v6 && (host[0] == '\0' || strcmp(host, "*") == 0)) {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&a_r->ss;
		sin6->sin6_family = AF_INET6;
		sin6->sin6_addr = in6addr_any;
		sin6->sin6_port = htons(pnum);
		a_r->len = sizeof *sin6;
		a_r->any = true;
		return 0;
	}
	if (v6) {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&a_r->ss;
		if (inet_pton(AF_INET6, host, &sin6->sin6_addr) != 1)
			return err_set(err, EINVAL, "address %s: bad IPv6 address", s);
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons(pnum);
		a_r->len = sizeof *sin6;
		return 0;
	}
	struct sockaddr_in *sin = (struct sockaddr_in *)&a_r->ss;
	if (inet_pton(AF_INET, host, &sin->sin_addr) != 1)
		return err_set(err, EINVAL,
		               "address %s: not a numeric IP address (host names are not allowed)",
		               s);
	sin->sin_family = AF_INET;
	sin->sin_port = htons(pnum);
	a_r->len = sizeof *sin;
	return 0;
}

/* socket + options + bind + listen for one concrete address; -1 with errno set. */
static int
listen_one(const struct sockaddr *sa, socklen_t len, bool v6only)
{
	int fd = socket(sa->sa_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -1;
	int one = 1, v6 = v6only ? 1 : 0;
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0)
		goto fail;
	if (sa->sa_family == AF_INET6 &&
	    setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &v6, sizeof v6) < 0)
		goto fail;
	if (bind(fd, sa, len) < 0 || listen(fd, NET_LISTEN_BACKLOG) < 0)
		goto fail;
	return fd;
fail:;
	int e = errno;
	close(fd);
	errno = e;
	return -1;
}

int
net_listen(const char *address, struct err *err)
{
	struct net_addr a;
	if (net_addr_parse(address, &a, err) < 0)
		return -1;
	int fd = listen_one((const struct sockaddr *)&a.ss, a.len, !a.any);
	if (fd < 0 && a.any && (errno == EAFNOSUPPORT || errno == EADDRNOTAVAIL)) {
		/* No IPv6 on this host: fall back to every IPv4 address. */
		struct sockaddr_in sin = {.sin_family = AF_INET,
		                          .sin_port = ((struct sockaddr_in6 *)&a.ss)->sin6_port,
		                          .sin_addr.s_addr = htonl(INADDR_ANY)};
		fd = listen_one((const struct sockaddr *)&sin, sizeof sin, false);
	}
	if (fd < 0) {
		int e = errno;
		const char *hint = "";
		if (e == EACCES)
			hint = " (ports below 1024 need root)";
		else if (e == EADDRNOTAVAIL)
			hint = " (no local interface has this address)";
		return err_set_errno(err, e, e, "address %s: cannot listen%s", address, hint);
	}
	return fd;
}

const char *
net_addr_format(const struct sockaddr *sa, socklen_t len, bool with_port, char *out)
{
	char ip[INET6_ADDRSTRLEN];
	unsigned port = 0;
	bool bracket = false;
	out[0] = '?';
	out[1] = '\0';
	if (sa->sa_family == AF_INET && len >= sizeof(struct sockaddr_in)) {
		const struct sockaddr_in *sin = (const struct sockaddr_in *)sa;
		if (inet_ntop(AF_INET, &sin->sin_addr, ip, sizeof ip) == NULL)
			return out;
		port = ntohs(sin->sin_port);
	} else if (sa->sa_family == AF_INET6 && len >= sizeof(struct sockaddr_in6)) {
		const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)sa;
		port = ntohs(sin6->sin6_port);
		if (IN6_IS_ADDR_V4MAPPED(&sin6->sin6_addr)) {
			if (inet_ntop(AF_INET, &sin6->sin6_addr.s6_addr[12], ip, sizeof ip) == NULL)
				return out;
		} else {
			if (inet_ntop(AF_INET6, &sin6->sin6_addr, ip, sizeof ip) == NULL)
				return out;
			bracket = true;
		}
	} else if (sa->sa_family == AF_UNIX) {
		(void)snprintf(out, NET_ADDR_STR_MAX, "unix");
		return out;
	} else {
		return out;
	}
	if (!with_port)
		(void)snprintf(out, NET_ADDR_STR_MAX, "%s", ip);
	else if (bracket)
		(void)snprintf(out, NET_ADDR_STR_MAX, "[%s]:%u", ip, port);
	else
		(void)snprintf(out, NET_ADDR_STR_MAX, "%s:%u", ip, port);
	return out;
}

const char *
net_local_addr(int fd, char *out)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof ss;
	if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0) {
		(void)snprintf(out, NET_ADDR_STR_MAX, "?");
		return out;
	}
	return net_addr_format((const struct sockaddr *)&ss, len, true, out);
}

int
net_local_port(int fd)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof ss;
	if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0)
		return -1;
	if (ss.ss_family == AF_INET)
		return ntohs(((struct sockaddr_in *)&ss)->sin_port);
	if (ss.ss_family == AF_INET6)
		return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
	return -1;
}

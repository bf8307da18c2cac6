/*
 * netaddr.c: the class of an IP address for egress checks (netaddr.h):
 * which addresses http.fetch may never reach unless an operator allowed
 * private addresses for the host.
 *
 * Runs in palyra-worker (worker/fetch.c) and the unit tests; touches
 * nothing but its arguments. The tables follow the IANA special-purpose
 * address registries (RFC 6890 and its updates); anything an address
 * could be used to reach inside the host or its network is not PUBLIC.
 * IPv6 forms that carry an IPv4 address (mapped, compatible, SIIT, NAT64,
 * 6to4) are classed by that address, so that no spelling of 127.0.0.1
 * passes for a public address.
 */
#include <sys/socket.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <stdint.h>
#include <string.h>

#include "netaddr.h"

/* One IPv4 prefix of the table below, host byte order. */
struct v4_range {
	uint32_t net;
	unsigned bits;
	enum netaddr_class class;
};

/*
 * Most specific first: the first match wins (169.254.169.254 before
 * 169.254/16).
 */
static const struct v4_range v4_ranges[] = {
    {0xa9fea9feu, 32, NETADDR_METADATA},   /* 169.254.169.254 */
    {0xffffffffu, 32, NETADDR_MULTICAST},  /* limited broadcast */
    {0x00000000u, 8, NETADDR_UNSPECIFIED}, /* 0/8 "this network" */
    {0x0a000000u, 8, NETADDR_PRIVATE},	   /* 10/8 */
    {0x64400000u, 10, NETADDR_PRIVATE},	   /* 100.64/10 CGNAT */
    {0x7f000000u, 8, NETADDR_LOOPBACK},	   /* 127/8 */
    {0xa9fe0000u, 16, NETADDR_LINK_LOCAL}, /* 169.254/16 */
    {0xac100000u, 12, NETADDR_PRIVATE},	   /* 172.16/12 */
    {0xc0000000u, 24, NETADDR_RESERVED},   /* 192.0.0/24 IETF */
    {0xc0000200u, 24, NETADDR_RESERVED},   /* 192.0.2/24 TEST-NET-1 */
    {0xc0586300u, 24, NETADDR_RESERVED},   /* 192.88.99/24 6to4 relay */
    {0xc0a80000u, 16, NETADDR_PRIVATE},	   /* 192.168/16 */
    {0xc6120000u, 15, NETADDR_RESERVED},   /* 198.18/15 benchmark */
    {0xc6336400u, 24, NETADDR_RESERVED},   /* 198.51.100/24 TEST-NET-2 */
    {0xcb007100u, 24, NETADDR_RESERVED},   /* 203.0.113/24 TEST-NET-3 */
    {0xe0000000u, 4, NETADDR_MULTICAST},   /* 224/4 */
    {0xf0000000u, 4, NETADDR_RESERVED},	   /* 240/4 */
};

static enum netaddr_class
classify_v4(uint32_t a)
{
	size_t i;
	uint32_t mask;

	for (i = 0; i < sizeof(v4_ranges) / sizeof(v4_ranges[0]); i++) {
		mask = v4_ranges[i].bits == 0
			   ? 0
			   : 0xffffffffu << (32 - v4_ranges[i].bits);
		if ((a & mask) == v4_ranges[i].net)
			return v4_ranges[i].class;
	}
	return NETADDR_PUBLIC;
}

static uint32_t
v4_at(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	       (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

/* The first n bytes of a are zero. */
static int
zeros(const unsigned char *a, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (a[i] != 0)
			return 0;
	return 1;
}

static enum netaddr_class
classify_v6(const unsigned char a[16])
{
	static const unsigned char metadata[16] = {0xfd, 0x00, 0x0e, 0xc2, 0, 0,
	    0, 0, 0, 0, 0, 0, 0, 0, 0x02, 0x54}; /* fd00:ec2::254 */
	static const unsigned char nat64[12] = {0x00, 0x64, 0xff, 0x9b};

	if (zeros(a, 15) && a[15] == 0)
		return NETADDR_UNSPECIFIED; /* :: */
	if (zeros(a, 15) && a[15] == 1)
		return NETADDR_LOOPBACK; /* ::1 */
	/* ::a.b.c.d (compatible), ::ffff:a.b.c.d (mapped) and
	 * ::ffff:0:a.b.c.d (SIIT): the IPv4 address they carry. */
	if (zeros(a, 12) || (zeros(a, 10) && a[10] == 0xff && a[11] == 0xff) ||
	    (zeros(a, 8) && a[8] == 0xff && a[9] == 0xff && a[10] == 0 &&
		a[11] == 0))
		return classify_v4(v4_at(a + 12));
	if (memcmp(a, nat64, sizeof(nat64)) == 0) /* 64:ff9b::/96 */
		return classify_v4(v4_at(a + 12));
	if (a[0] == 0x20 && a[1] == 0x02) /* 2002::/16 6to4 */
		return classify_v4(v4_at(a + 2));
	if (memcmp(a, metadata, 16) == 0)
		return NETADDR_METADATA;
	if (a[0] == 0xff)
		return NETADDR_MULTICAST; /* ff00::/8 */
	if (a[0] == 0xfe && (a[1] & 0xc0) == 0x80)
		return NETADDR_LINK_LOCAL; /* fe80::/10 */
	if (a[0] == 0xfe && (a[1] & 0xc0) == 0xc0)
		return NETADDR_PRIVATE; /* fec0::/10 site-local */
	if ((a[0] & 0xfe) == 0xfc)
		return NETADDR_PRIVATE; /* fc00::/7 ULA */
	/* 64:ff9b:1::/48 (local-use NAT64), 100::/64 (discard), 2001::/23
	 * (IETF: Teredo, benchmarking, ORCHID), 2001:db8::/32 and 3fff::/20
	 * (documentation) and everything outside 2000::/3 (global
	 * unicast): nothing a fetch has to reach. */
	if ((a[0] & 0xe0) != 0x20)
		return NETADDR_RESERVED;
	if (a[0] == 0x20 && a[1] == 0x01 && a[2] < 0x02)
		return NETADDR_RESERVED; /* 2001::/23 */
	if (a[0] == 0x20 && a[1] == 0x01 && a[2] == 0x0d && a[3] == 0xb8)
		return NETADDR_RESERVED; /* 2001:db8::/32 */
	if (a[0] == 0x3f && a[1] == 0xff && (a[2] & 0xf0) == 0)
		return NETADDR_RESERVED; /* 3fff::/20 */
	return NETADDR_PUBLIC;
}

enum netaddr_class
netaddr_classify(const struct sockaddr *sa)
{
	const struct sockaddr_in *sin;
	const struct sockaddr_in6 *sin6;

	if (sa == NULL)
		return NETADDR_RESERVED;
	switch (sa->sa_family) {
	case AF_INET:
		sin = (const struct sockaddr_in *)(const void *)sa;
		return classify_v4(ntohl(sin->sin_addr.s_addr));
	case AF_INET6:
		sin6 = (const struct sockaddr_in6 *)(const void *)sa;
		return classify_v6(sin6->sin6_addr.s6_addr);
	default:
		return NETADDR_RESERVED;
	}
}

/*
 * A canonical dotted quad: four decimal numbers 0-255 without leading
 * zeros. inet_aton() would take "127.1", "0x7f.1" and "017.1" too, and
 * those spellings are how a name check is fooled.
 */
static int
parse_v4(const char *s, unsigned char out[4])
{
	unsigned part, value, digits;

	for (part = 0; part < 4; part++) {
		if (part > 0 && *s++ != '.')
			return -1;
		value = 0;
		digits = 0;
		while (*s >= '0' && *s <= '9') {
			if (digits > 0 && value == 0)
				return -1; /* a leading zero */
			value = value * 10 + (unsigned)(*s - '0');
			if (value > 255)
				return -1;
			digits++;
			s++;
		}
		if (digits == 0)
			return -1;
		out[part] = (unsigned char)value;
	}
	return *s == '\0' ? 0 : -1;
}

int
netaddr_parse(const char *text, struct sockaddr_storage *ss)
{
	char v6[INET6_ADDRSTRLEN + 1];
	unsigned char v4[4];
	struct sockaddr_in *sin = (struct sockaddr_in *)(void *)ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)(void *)ss;
	size_t len;

	if (text == NULL || ss == NULL)
		return -1;
	memset(ss, 0, sizeof(*ss));
	if (parse_v4(text, v4) == 0) {
		sin->sin_family = AF_INET;
		memcpy(&sin->sin_addr, v4, 4);
		return 0;
	}
	len = strlen(text);
	if (len >= 2 && text[0] == '[' && text[len - 1] == ']') {
		text++;
		len -= 2;
	} else if (strpbrk(text, "[]") != NULL)
		return -1;
	/* inet_pton() takes no zone ("%eth0") and no brackets. */
	if (len == 0 || len >= sizeof(v6) || memchr(text, '[', len) != NULL ||
	    memchr(text, ']', len) != NULL)
		return -1;
	memcpy(v6, text, len);
	v6[len] = '\0';
	if (strchr(v6, ':') == NULL ||
	    inet_pton(AF_INET6, v6, &sin6->sin6_addr) != 1) {
		memset(ss, 0, sizeof(*ss));
		return -1;
	}
	sin6->sin6_family = AF_INET6;
	return 0;
}

const char *
netaddr_class_name(enum netaddr_class c)
{
	switch (c) {
	case NETADDR_PUBLIC:
		return "public";
	case NETADDR_LOOPBACK:
		return "loopback";
	case NETADDR_PRIVATE:
		return "private";
	case NETADDR_LINK_LOCAL:
		return "link-local";
	case NETADDR_METADATA:
		return "cloud metadata";
	case NETADDR_UNSPECIFIED:
		return "unspecified";
	case NETADDR_MULTICAST:
		return "multicast or broadcast";
	case NETADDR_RESERVED:
		return "reserved";
	}
	return "reserved";
}

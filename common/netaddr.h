/*
 * netaddr.h: classification of IP addresses for egress checks
 * (worker/fetch.c): which addresses a tool may never reach unless an
 * operator allowed private addresses for that host.
 */
#ifndef PALYRA_NETADDR_H
#define PALYRA_NETADDR_H

#include <sys/socket.h>

enum netaddr_class {
	NETADDR_PUBLIC = 0,
	NETADDR_LOOPBACK,	/* 127/8, ::1 */
	NETADDR_PRIVATE,	/* 10/8, 172.16/12, 192.168/16, 100.64/10, fc00::/7 */
	NETADDR_LINK_LOCAL,	/* 169.254/16 (but metadata), fe80::/10 */
	NETADDR_METADATA,	/* 169.254.169.254, fd00:ec2::254 */
	NETADDR_UNSPECIFIED,	/* 0/8, :: */
	NETADDR_MULTICAST,	/* 224/4, ff00::/8, 255.255.255.255 */
	NETADDR_RESERVED,	/* 240/4, 192.0.0/24, documentation, benchmark */
};

/* The class of a sockaddr_in or sockaddr_in6; IPv4-mapped (::ffff:a.b.c.d),
 * IPv4-compatible (::a.b.c.d), NAT64 (64:ff9b::/96) and 6to4 (2002::/16)
 * addresses are classed by the IPv4 address they carry. Unknown families:
 * NETADDR_RESERVED. */
enum netaddr_class netaddr_classify(const struct sockaddr *);

/* A numeric address text (IPv4 dotted quad, or IPv6 with or without
 * brackets): fills ss and returns 0, or -1 when text is not numeric. Only
 * canonical dotted quads count as IPv4 ("127.1", "0x7f.0.0.1" and
 * "017.0.0.1" are not numeric: such hosts are names, and names are only
 * reached through the allow-list's pinned addresses). */
int	netaddr_parse(const char *text, struct sockaddr_storage *ss);

/* "loopback", "private", ... for messages; "public" for NETADDR_PUBLIC. */
const char *netaddr_class_name(enum netaddr_class);

#endif

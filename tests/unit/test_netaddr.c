/*
 * test_netaddr.c: unit tests of common/netaddr.c, the address classes
 * http.fetch refuses: every class in IPv4 and IPv6, the IPv6 forms that
 * carry an IPv4 address (mapped, compatible, SIIT, NAT64, 6to4), and the
 * spellings that are not numeric addresses.
 */
#include <sys/socket.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "netaddr.h"

struct case_ {
	const char *text;
	enum netaddr_class class;
};

/* Parses text (which must be numeric) and returns its class. */
static enum netaddr_class
class_of(const char *text)
{
	struct sockaddr_storage ss;

	if (netaddr_parse(text, &ss) != 0)
		fail_msg("%s: not parsed as numeric", text);
	return netaddr_classify((struct sockaddr *)&ss);
}

static void
check_cases(const struct case_ *c, size_t n)
{
	size_t i;
	enum netaddr_class got;

	for (i = 0; i < n; i++) {
		got = class_of(c[i].text);
		if (got != c[i].class)
			fail_msg("%s: class %s, expected %s", c[i].text,
			    netaddr_class_name(got),
			    netaddr_class_name(c[i].class));
	}
}

#define CHECK(cases) check_cases(cases, sizeof(cases) / sizeof(cases[0]))

static void
test_ipv4_classes(void **state)
{
	static const struct case_ cases[] = {
	    {"8.8.8.8", NETADDR_PUBLIC},
	    {"1.1.1.1", NETADDR_PUBLIC},
	    {"93.184.216.34", NETADDR_PUBLIC},
	    {"223.255.255.255", NETADDR_PUBLIC},
	    {"127.0.0.1", NETADDR_LOOPBACK},
	    {"127.255.255.254", NETADDR_LOOPBACK},
	    {"10.0.0.1", NETADDR_PRIVATE},
	    {"10.255.255.255", NETADDR_PRIVATE},
	    {"172.16.0.1", NETADDR_PRIVATE},
	    {"172.31.255.255", NETADDR_PRIVATE},
	    {"172.15.255.255", NETADDR_PUBLIC},
	    {"172.32.0.0", NETADDR_PUBLIC},
	    {"192.168.1.1", NETADDR_PRIVATE},
	    {"100.64.0.1", NETADDR_PRIVATE},
	    {"100.127.255.255", NETADDR_PRIVATE},
	    {"100.128.0.0", NETADDR_PUBLIC},
	    {"169.254.0.1", NETADDR_LINK_LOCAL},
	    {"169.254.169.253", NETADDR_LINK_LOCAL},
	    {"169.254.169.254", NETADDR_METADATA},
	    {"0.0.0.0", NETADDR_UNSPECIFIED},
	    {"0.1.2.3", NETADDR_UNSPECIFIED},
	    {"224.0.0.1", NETADDR_MULTICAST},
	    {"239.255.255.250", NETADDR_MULTICAST},
	    {"255.255.255.255", NETADDR_MULTICAST},
	    {"240.0.0.1", NETADDR_RESERVED},
	    {"255.255.255.254", NETADDR_RESERVED},
	    {"192.0.0.8", NETADDR_RESERVED},
	    {"192.0.2.1", NETADDR_RESERVED},
	    {"198.51.100.7", NETADDR_RESERVED},
	    {"203.0.113.9", NETADDR_RESERVED},
	    {"198.18.0.1", NETADDR_RESERVED},
	    {"198.19.255.255", NETADDR_RESERVED},
	    {"198.20.0.0", NETADDR_PUBLIC},
	    {"192.88.99.1", NETADDR_RESERVED},
	};

	(void)state;
	CHECK(cases);
}

static void
test_ipv6_classes(void **state)
{
	static const struct case_ cases[] = {
	    {"2606:4700:4700::1111", NETADDR_PUBLIC},
	    {"2a00:1450:4007:80e::200e", NETADDR_PUBLIC},
	    {"[2001:4860:4860::8888]", NETADDR_PUBLIC},
	    {"::1", NETADDR_LOOPBACK},
	    {"[::1]", NETADDR_LOOPBACK},
	    {"0:0:0:0:0:0:0:1", NETADDR_LOOPBACK},
	    {"::", NETADDR_UNSPECIFIED},
	    {"[::]", NETADDR_UNSPECIFIED},
	    {"fc00::1", NETADDR_PRIVATE},
	    {"fd12:3456:789a::1", NETADDR_PRIVATE},
	    {"fec0::1", NETADDR_PRIVATE},
	    {"fe80::1", NETADDR_LINK_LOCAL},
	    {"febf:ffff::1", NETADDR_LINK_LOCAL},
	    {"fd00:ec2::254", NETADDR_METADATA},
	    {"ff02::1", NETADDR_MULTICAST},
	    {"ff05::1:3", NETADDR_MULTICAST},
	    {"2001:db8::1", NETADDR_RESERVED},
	    {"2001::1", NETADDR_RESERVED},
	    {"2001:2::1", NETADDR_RESERVED},
	    {"2001:1ff::1", NETADDR_RESERVED},
	    {"2001:200::1", NETADDR_PUBLIC},
	    {"100::1", NETADDR_RESERVED},
	    {"3fff::1", NETADDR_RESERVED},
	    {"3fff:fff::1", NETADDR_RESERVED},
	    {"3fff:1000::1", NETADDR_PUBLIC},
	    {"4000::1", NETADDR_RESERVED},
	    {"64:ff9b:1::1", NETADDR_RESERVED},
	};

	(void)state;
	CHECK(cases);
}

/* IPv6 forms of an IPv4 address take the class of that address. */
static void
test_ipv6_carrying_ipv4(void **state)
{
	static const struct case_ cases[] = {
	    /* IPv4-mapped */
	    {"::ffff:127.0.0.1", NETADDR_LOOPBACK},
	    {"[::ffff:127.0.0.1]", NETADDR_LOOPBACK},
	    {"::ffff:7f00:1", NETADDR_LOOPBACK},
	    {"::ffff:10.0.0.1", NETADDR_PRIVATE},
	    {"::ffff:169.254.169.254", NETADDR_METADATA},
	    {"::ffff:169.254.1.1", NETADDR_LINK_LOCAL},
	    {"::ffff:0.0.0.0", NETADDR_UNSPECIFIED},
	    {"::ffff:8.8.8.8", NETADDR_PUBLIC},
	    /* IPv4-compatible (deprecated, still routed by some stacks) */
	    {"::127.0.0.1", NETADDR_LOOPBACK},
	    {"::10.1.2.3", NETADDR_PRIVATE},
	    {"::8.8.8.8", NETADDR_PUBLIC},
	    {"::0.0.0.2", NETADDR_UNSPECIFIED},
	    /* SIIT IPv4-translated */
	    {"::ffff:0:127.0.0.1", NETADDR_LOOPBACK},
	    /* NAT64 well-known prefix */
	    {"64:ff9b::127.0.0.1", NETADDR_LOOPBACK},
	    {"64:ff9b::a00:1", NETADDR_PRIVATE},
	    {"64:ff9b::169.254.169.254", NETADDR_METADATA},
	    {"64:ff9b::8.8.8.8", NETADDR_PUBLIC},
	    /* 6to4: 2002:AABB:CCDD::/48 carries AA.BB.CC.DD */
	    {"2002:7f00:1::1", NETADDR_LOOPBACK},
	    {"2002:c0a8:101::1", NETADDR_PRIVATE},
	    {"2002:a9fe:a9fe::", NETADDR_METADATA},
	    {"2002:e000:1::", NETADDR_MULTICAST},
	    {"2002:808:808::1", NETADDR_PUBLIC},
	};

	(void)state;
	CHECK(cases);
}

/* Spellings a resolver or inet_aton() would take, but which are names
 * here: only canonical numeric forms are addresses. */
static void
test_not_numeric(void **state)
{
	static const char *names[] = {
	    "",
	    "localhost",
	    "example.com",
	    "127.1",
	    "127.0.1",
	    "0x7f.0.0.1",
	    "0x7f000001",
	    "2130706433",
	    "017.0.0.1",
	    "127.0.0.01",
	    "127.00.0.1",
	    "256.0.0.1",
	    "1.2.3.4.5",
	    "1.2.3.",
	    ".1.2.3",
	    "1..2.3",
	    "1.2.3.4 ",
	    " 1.2.3.4",
	    "+1.2.3.4",
	    "1.2.3.-4",
	    "[127.0.0.1]",
	    "[::1",
	    "::1]",
	    "[[::1]]",
	    "[]",
	    "fe80::1%eth0",
	    "[fe80::1%25eth0]",
	    ":::",
	    "1:2:3:4:5:6:7:8:9",
	    "::ffff:017.0.0.1",
	    "::g",
	    "[::1]:80",
	    "127.0.0.1:80",
	};
	struct sockaddr_storage ss;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (netaddr_parse(names[i], &ss) != -1)
			fail_msg("\"%s\" parsed as numeric", names[i]);
	assert_int_equal(netaddr_parse(NULL, &ss), -1);
}

static void
test_parse_fills(void **state)
{
	struct sockaddr_storage ss;
	struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
	char buf[INET6_ADDRSTRLEN];

	(void)state;
	assert_int_equal(netaddr_parse("192.0.2.33", &ss), 0);
	assert_int_equal(ss.ss_family, AF_INET);
	assert_int_equal(ntohl(sin->sin_addr.s_addr), 0xc0000221u);
	assert_int_equal(netaddr_parse("[2001:db8::7]", &ss), 0);
	assert_int_equal(ss.ss_family, AF_INET6);
	assert_non_null(
	    inet_ntop(AF_INET6, &sin6->sin6_addr, buf, sizeof(buf)));
	assert_string_equal(buf, "2001:db8::7");
}

static void
test_classify_sockaddrs(void **state)
{
	struct sockaddr_in sin;
	struct sockaddr_in6 sin6;
	struct sockaddr sa;

	(void)state;
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(0x7f000001u);
	assert_int_equal(
	    netaddr_classify((struct sockaddr *)&sin), NETADDR_LOOPBACK);
	memset(&sin6, 0, sizeof(sin6));
	sin6.sin6_family = AF_INET6;
	sin6.sin6_addr = in6addr_loopback;
	assert_int_equal(
	    netaddr_classify((struct sockaddr *)&sin6), NETADDR_LOOPBACK);
	memset(&sa, 0, sizeof(sa));
	sa.sa_family = AF_UNIX;
	assert_int_equal(netaddr_classify(&sa), NETADDR_RESERVED);
	assert_int_equal(netaddr_classify(NULL), NETADDR_RESERVED);
}

static void
test_class_names(void **state)
{
	(void)state;
	assert_string_equal(netaddr_class_name(NETADDR_PUBLIC), "public");
	assert_string_equal(netaddr_class_name(NETADDR_LOOPBACK), "loopback");
	assert_string_equal(netaddr_class_name(NETADDR_PRIVATE), "private");
	assert_string_equal(
	    netaddr_class_name(NETADDR_LINK_LOCAL), "link-local");
	assert_string_equal(
	    netaddr_class_name(NETADDR_METADATA), "cloud metadata");
	assert_string_equal(
	    netaddr_class_name(NETADDR_UNSPECIFIED), "unspecified");
	assert_string_equal(
	    netaddr_class_name(NETADDR_MULTICAST), "multicast or broadcast");
	assert_string_equal(netaddr_class_name(NETADDR_RESERVED), "reserved");
	assert_string_equal(
	    netaddr_class_name((enum netaddr_class)99), "reserved");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_ipv4_classes),
	    cmocka_unit_test(test_ipv6_classes),
	    cmocka_unit_test(test_ipv6_carrying_ipv4),
	    cmocka_unit_test(test_not_numeric),
	    cmocka_unit_test(test_parse_fills),
	    cmocka_unit_test(test_classify_sockaddrs),
	    cmocka_unit_test(test_class_names),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

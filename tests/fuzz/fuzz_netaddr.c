/*
 * fuzz_netaddr.c: libFuzzer target for numeric address parsing and
 * classification (common/netaddr.c), which the fetch tool's SSRF guard
 * and the allow-lists rely on.
 *
 * The input is an address text. One that netaddr_parse() accepts must be
 * an IPv4 or IPv6 address that classifies, and printed back by
 * inet_ntop() it must parse again to the same address and class (no two
 * readings of one text).
 * Runs in the fuzzer only; touches nothing but memory.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "netaddr.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int
same(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
	if (a->ss_family != b->ss_family)
		return 0;
	if (a->ss_family == AF_INET)
		return memcmp(&((const struct sockaddr_in *)a)->sin_addr,
		    &((const struct sockaddr_in *)b)->sin_addr, 4) == 0;
	return memcmp(&((const struct sockaddr_in6 *)a)->sin6_addr,
	    &((const struct sockaddr_in6 *)b)->sin6_addr, 16) == 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sockaddr_storage	 ss, again;
	enum netaddr_class	 cls;
	char			 text[128], back[INET6_ADDRSTRLEN];
	const void		*addr;

	if (size >= sizeof(text))
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';
	memset(&ss, 0, sizeof(ss));
	if (netaddr_parse(text, &ss) != 0)
		return 0;
	if (ss.ss_family == AF_INET)
		addr = &((struct sockaddr_in *)&ss)->sin_addr;
	else if (ss.ss_family == AF_INET6)
		addr = &((struct sockaddr_in6 *)&ss)->sin6_addr;
	else
		abort();
	cls = netaddr_classify((struct sockaddr *)&ss);
	if (cls > NETADDR_RESERVED || netaddr_class_name(cls) == NULL)
		abort();
	if (inet_ntop(ss.ss_family, addr, back, sizeof(back)) == NULL)
		abort();
	memset(&again, 0, sizeof(again));
	if (netaddr_parse(back, &again) != 0 || !same(&ss, &again) ||
	    netaddr_classify((struct sockaddr *)&again) != cls)
		abort();
	return 0;
}

/*
 * filter.c - the network safety policy (see filter.h for what passes).
 *
 * The frame is the driver's private copy: the client cannot change it
 * between this check and slirp_input(). Every length is checked before the
 * byte it covers is read.
 */
#include "filter.h"

#include "slirp_net.h"

#include <stdbool.h>
#include <string.h>

#define ETH_HLEN 14
#define ETHERTYPE_IPV4 0x0800
#define ETHERTYPE_ARP 0x0806
#define ETHERTYPE_IPV6 0x86dd

#define PROTO_ICMP 1
#define PROTO_TCP 6
#define PROTO_UDP 17
#define PROTO_ICMPV6 58

#define PORT_DNS 53
#define PORT_BOOTPS 67
#define PORT_DHCPV6_SERVER 547

static uint16_t be16(const uint8_t *p)
{
    return (uint16_t)(p[0] << 8 | p[1]);
}

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static filter_verdict_t filter_arp(const uint8_t *arp, size_t len)
{
    /* Ethernet (1) / IPv4 (0x0800), 6-byte and 4-byte addresses, request or reply. */
    if (len < 28 || be16(arp) != 1 || be16(arp + 2) != ETHERTYPE_IPV4 || arp[4] != 6 ||
        arp[5] != 4 || (be16(arp + 6) != 1 && be16(arp + 6) != 2))
        return FILTER_MALFORMED;
    return FILTER_PASS;
}

/* Transport destination port of a TCP or UDP header of `len` bytes. */
static bool l4_dport(const uint8_t *l4, size_t len, uint16_t *port)
{
    if (len < 4)
        return false;
    *port = be16(l4 + 2);
    return true;
}

static filter_verdict_t filter_ipv4(const uint8_t *ip, size_t len)
{
    if (len < 20 || ip[0] >> 4 != 4)
        return FILTER_MALFORMED;
    size_t ihl = (size_t)(ip[0] & 0x0f) * 4;
    size_t total = be16(ip + 2);
    if (ihl < 20 || total < ihl || total > len)
        return FILTER_MALFORMED;
    uint8_t proto = ip[9];
    uint16_t frag = be16(ip + 6);
    bool more_fragments = (frag & 0x2000) != 0;
    bool first = (frag & 0x1fff) == 0; /* offset 0: carries the transport header */
    uint32_t dst = be32(ip + 16);
    const uint8_t *l4 = ip + ihl;
    size_t l4len = total - ihl;
    uint16_t dport = 0;

    if (dst == SLIRP_HOST4) {
        if (proto != PROTO_TCP && proto != PROTO_UDP && proto != PROTO_ICMP)
            return FILTER_PROTO;
        if (proto == PROTO_ICMP || !first)
            return FILTER_PASS; /* later fragments: ports were checked in the first */
        if (!l4_dport(l4, l4len, &dport))
            return FILTER_MALFORMED; /* a first fragment must hold the ports */
        return dport == PORT_DNS ? FILTER_PORT : FILTER_PASS;
    }
    if (dst == 0xffffffffu) {
        if (proto != PROTO_UDP)
            return FILTER_PROTO;
        if (more_fragments || !first)
            return FILTER_FRAGMENT;
        if (l4len < 8 || !l4_dport(l4, l4len, &dport))
            return FILTER_MALFORMED;
        return dport == PORT_BOOTPS ? FILTER_PASS : FILTER_PORT;
    }
    return FILTER_DEST;
}

static filter_verdict_t filter_ipv6(const uint8_t *ip, size_t len)
{
    static const uint8_t host6[16] = SLIRP_HOST6;
    static const uint8_t dhcp6[16] = {0xff, 0x02, [13] = 1, [15] = 2}; /* ff02::1:2 */
    if (len < 40 || ip[0] >> 4 != 6)
        return FILTER_MALFORMED;
    size_t payload = be16(ip + 4);
    if (payload > len - 40)
        return FILTER_MALFORMED;
    uint8_t next = ip[6];
    const uint8_t *dst = ip + 24;
    const uint8_t *l4 = ip + 40;
    uint16_t dport = 0;
    /* No extension headers: slirp drops them anyway, and the ports must be
     * where we look for them. */
    if (next != PROTO_TCP && next != PROTO_UDP && next != PROTO_ICMPV6)
        return FILTER_PROTO;

    if (memcmp(dst, host6, 16) == 0) {
        if (next == PROTO_ICMPV6)
            return FILTER_PASS;
        if (!l4_dport(l4, payload, &dport))
            return FILTER_MALFORMED;
        return dport == PORT_DNS ? FILTER_PORT : FILTER_PASS;
    }
    bool multicast_link = dst[0] == 0xff && dst[1] == 0x02;
    bool link_local = dst[0] == 0xfe && (dst[1] & 0xc0) == 0x80;
    if (!multicast_link && !link_local)
        return FILTER_DEST;
    if (next == PROTO_ICMPV6) {
        if (payload < 1)
            return FILTER_MALFORMED;
        return l4[0] >= 133 && l4[0] <= 137 ? FILTER_PASS : FILTER_PROTO; /* RS RA NS NA redirect */
    }
    if (next == PROTO_UDP && memcmp(dst, dhcp6, 16) == 0) {
        if (payload < 8 || !l4_dport(l4, payload, &dport))
            return FILTER_MALFORMED;
        return dport == PORT_DHCPV6_SERVER ? FILTER_PASS : FILTER_PORT;
    }
    return FILTER_PROTO;
}

filter_verdict_t filter_frame(const uint8_t *frame, size_t len)
{
    if (frame == NULL || len < ETH_HLEN)
        return FILTER_MALFORMED;
    const uint8_t *payload = frame + ETH_HLEN;
    size_t plen = len - ETH_HLEN;
    switch (be16(frame + 12)) {
    case ETHERTYPE_ARP:
        return filter_arp(payload, plen);
    case ETHERTYPE_IPV4:
        return filter_ipv4(payload, plen);
    case ETHERTYPE_IPV6:
        return filter_ipv6(payload, plen);
    default:
        return FILTER_ETHERTYPE;
    }
}

const char *filter_verdict_name(filter_verdict_t v)
{
    static const char *const names[FILTER_NVERDICTS] = {
        [FILTER_PASS] = "pass",           [FILTER_MALFORMED] = "malformed",
        [FILTER_ETHERTYPE] = "ethertype", [FILTER_DEST] = "destination",
        [FILTER_PROTO] = "protocol",      [FILTER_PORT] = "port",
        [FILTER_FRAGMENT] = "fragment",
    };
    return (unsigned)v < FILTER_NVERDICTS ? names[v] : "?";
}

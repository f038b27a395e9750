/*
 * frames.h - building and reading the Ethernet frames the NIC tests send and
 * expect (ARP, IPv4 with UDP/ICMP/TCP, IPv6, DHCP). Test helpers only.
 *
 * Every address used by the tests is either inside slirp's virtual network,
 * the host alias, or a documentation address (TEST-NET-1 192.0.2.0/24,
 * 2001:db8::/32) that the driver must drop: nothing here ever names a real
 * external host.
 */
#ifndef FERRY_TEST_FRAMES_H
#define FERRY_TEST_FRAMES_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define FR_ETH_HLEN 14
#define FR_IP4(a, b, c, d) ((uint32_t)(a) << 24 | (uint32_t)(b) << 16 | (uint32_t)(c) << 8 | (d))

static const uint8_t fr_mac_guest[6] = {0x52, 0x54, 0x00, 0x12, 0x34, 0x56};
static const uint8_t fr_mac_bcast[6] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};

static inline void fr_put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

static inline void fr_put32(uint8_t *p, uint32_t v)
{
    fr_put16(p, (uint16_t)(v >> 16));
    fr_put16(p + 2, (uint16_t)v);
}

static inline uint16_t fr_get16(const uint8_t *p)
{
    return (uint16_t)(p[0] << 8 | p[1]);
}

static inline uint32_t fr_get32(const uint8_t *p)
{
    return (uint32_t)fr_get16(p) << 16 | fr_get16(p + 2);
}

static inline uint32_t fr_sum(const uint8_t *p, size_t n, uint32_t s)
{
    for (size_t i = 0; i + 1 < n; i += 2)
        s += fr_get16(p + i);
    if (n & 1)
        s += (uint32_t)p[n - 1] << 8;
    return s;
}

static inline uint16_t fr_fold(uint32_t s)
{
    while (s >> 16)
        s = (s & 0xffff) + (s >> 16);
    return (uint16_t)~s;
}

static inline size_t fr_eth(uint8_t *f, const uint8_t dst[6], uint16_t type)
{
    memcpy(f, dst, 6);
    memcpy(f + 6, fr_mac_guest, 6);
    fr_put16(f + 12, type);
    return FR_ETH_HLEN;
}

/* ARP request "who has `target`? tell `sender`" from the guest MAC. */
static inline size_t fr_arp_request(uint8_t *f, uint32_t sender, uint32_t target)
{
    size_t n = fr_eth(f, fr_mac_bcast, 0x0806);
    uint8_t *a = f + n;
    fr_put16(a, 1);
    fr_put16(a + 2, 0x0800);
    a[4] = 6;
    a[5] = 4;
    fr_put16(a + 6, 1);
    memcpy(a + 8, fr_mac_guest, 6);
    fr_put32(a + 14, sender);
    memset(a + 18, 0, 6);
    fr_put32(a + 24, target);
    return n + 28;
}

/* ARP reply to `to_mac`/`to_ip`: `ip` is at the guest MAC. */
static inline size_t fr_arp_reply(uint8_t *f, const uint8_t to_mac[6], uint32_t to_ip, uint32_t ip)
{
    size_t n = fr_eth(f, to_mac, 0x0806);
    uint8_t *a = f + n;
    fr_put16(a, 1);
    fr_put16(a + 2, 0x0800);
    a[4] = 6;
    a[5] = 4;
    fr_put16(a + 6, 2);
    memcpy(a + 8, fr_mac_guest, 6);
    fr_put32(a + 14, ip);
    memcpy(a + 18, to_mac, 6);
    fr_put32(a + 24, to_ip);
    return n + 28;
}

/* Ethernet + IPv4 header around `len` bytes of payload already at f + 34. */
static inline size_t fr_ipv4(uint8_t *f, const uint8_t dst_mac[6], uint32_t src, uint32_t dst,
                             uint8_t proto, size_t len)
{
    fr_eth(f, dst_mac, 0x0800);
    uint8_t *ip = f + FR_ETH_HLEN;
    memset(ip, 0, 20);
    ip[0] = 0x45;
    fr_put16(ip + 2, (uint16_t)(20 + len));
    fr_put16(ip + 4, 0x1234);
    ip[8] = 64;
    ip[9] = proto;
    fr_put32(ip + 12, src);
    fr_put32(ip + 16, dst);
    fr_put16(ip + 10, fr_fold(fr_sum(ip, 20, 0)));
    return FR_ETH_HLEN + 20 + len;
}

/* IPv4 UDP datagram (checksum 0 = none, allowed for IPv4). */
static inline size_t fr_udp4(uint8_t *f, const uint8_t dst_mac[6], uint32_t src, uint16_t sport,
                             uint32_t dst, uint16_t dport, const void *data, size_t len)
{
    uint8_t *u = f + FR_ETH_HLEN + 20;
    fr_put16(u, sport);
    fr_put16(u + 2, dport);
    fr_put16(u + 4, (uint16_t)(8 + len));
    fr_put16(u + 6, 0);
    memcpy(u + 8, data, len);
    return fr_ipv4(f, dst_mac, src, dst, 17, 8 + len);
}

/* IPv4 TCP SYN with a correct checksum. */
static inline size_t fr_tcp4_syn(uint8_t *f, const uint8_t dst_mac[6], uint32_t src, uint16_t sport,
                                 uint32_t dst, uint16_t dport)
{
    uint8_t *t = f + FR_ETH_HLEN + 20;
    memset(t, 0, 20);
    fr_put16(t, sport);
    fr_put16(t + 2, dport);
    fr_put32(t + 4, 1000);
    t[12] = 5 << 4;
    t[13] = 0x02; /* SYN */
    fr_put16(t + 14, 8192);
    uint8_t ph[12];
    fr_put32(ph, src);
    fr_put32(ph + 4, dst);
    ph[8] = 0;
    ph[9] = 6;
    fr_put16(ph + 10, 20);
    fr_put16(t + 16, fr_fold(fr_sum(t, 20, fr_sum(ph, 12, 0))));
    return fr_ipv4(f, dst_mac, src, dst, 6, 20);
}

/* IPv4 ICMP echo request with `len` bytes of data. */
static inline size_t fr_icmp4_echo(uint8_t *f, const uint8_t dst_mac[6], uint32_t src, uint32_t dst,
                                   uint16_t id, uint16_t seq, size_t len)
{
    uint8_t *c = f + FR_ETH_HLEN + 20;
    c[0] = 8;
    c[1] = 0;
    fr_put16(c + 2, 0);
    fr_put16(c + 4, id);
    fr_put16(c + 6, seq);
    for (size_t i = 0; i < len; i++)
        c[8 + i] = (uint8_t)i;
    fr_put16(c + 2, fr_fold(fr_sum(c, 8 + len, 0)));
    return fr_ipv4(f, dst_mac, src, dst, 1, 8 + len);
}

/* DHCP DISCOVER from the guest MAC (0.0.0.0:68 -> 255.255.255.255:67). */
static inline size_t fr_dhcp_discover(uint8_t *f, uint32_t xid)
{
    uint8_t b[300];
    memset(b, 0, sizeof b);
    b[0] = 1; /* BOOTREQUEST */
    b[1] = 1; /* Ethernet */
    b[2] = 6;
    fr_put32(b + 4, xid);
    fr_put16(b + 10, 0x8000); /* broadcast reply */
    memcpy(b + 28, fr_mac_guest, 6);
    fr_put32(b + 236, 0x63825363); /* magic cookie */
    uint8_t *o = b + 240;
    *o++ = 53; /* DHCP message type */
    *o++ = 1;
    *o++ = 1; /* DISCOVER */
    *o++ = 255;
    return fr_udp4(f, fr_mac_bcast, 0, 68, 0xffffffffu, 67, b, sizeof b);
}

/* Ethernet + IPv6 header around `len` bytes of payload already at f + 54. */
static inline size_t fr_ipv6(uint8_t *f, const uint8_t dst_mac[6], const uint8_t src[16],
                             const uint8_t dst[16], uint8_t next, size_t len)
{
    fr_eth(f, dst_mac, 0x86dd);
    uint8_t *ip = f + FR_ETH_HLEN;
    memset(ip, 0, 8);
    ip[0] = 0x60;
    fr_put16(ip + 4, (uint16_t)len);
    ip[6] = next;
    ip[7] = 64;
    memcpy(ip + 8, src, 16);
    memcpy(ip + 24, dst, 16);
    return FR_ETH_HLEN + 40 + len;
}

/* IPv6 UDP datagram (checksum left 0: the filter does not look at it). */
static inline size_t fr_udp6(uint8_t *f, const uint8_t dst_mac[6], const uint8_t src[16],
                             uint16_t sport, const uint8_t dst[16], uint16_t dport, size_t len)
{
    uint8_t *u = f + FR_ETH_HLEN + 40;
    fr_put16(u, sport);
    fr_put16(u + 2, dport);
    fr_put16(u + 4, (uint16_t)(8 + len));
    fr_put16(u + 6, 0);
    memset(u + 8, 0x5a, len);
    return fr_ipv6(f, dst_mac, src, dst, 17, 8 + len);
}

/* ICMPv6 message of `type` with 4 zero bytes of body (checksum left 0). */
static inline size_t fr_icmp6(uint8_t *f, const uint8_t dst_mac[6], const uint8_t src[16],
                              const uint8_t dst[16], uint8_t type)
{
    uint8_t *c = f + FR_ETH_HLEN + 40;
    memset(c, 0, 8);
    c[0] = type;
    return fr_ipv6(f, dst_mac, src, dst, 58, 8);
}

/* ICMPv6 message with a correct checksum: `body` (len bytes) follows the
 * 4-byte type/code/checksum header. NDP needs hop limit 255. */
static inline size_t fr_icmp6_full(uint8_t *f, const uint8_t dst_mac[6], const uint8_t src[16],
                                   const uint8_t dst[16], uint8_t type, uint8_t hop_limit,
                                   const uint8_t *body, size_t len)
{
    uint8_t *c = f + FR_ETH_HLEN + 40;
    c[0] = type;
    c[1] = 0;
    fr_put16(c + 2, 0);
    memcpy(c + 4, body, len);
    uint8_t ph[40];
    memcpy(ph, src, 16);
    memcpy(ph + 16, dst, 16);
    fr_put32(ph + 32, (uint32_t)(4 + len));
    ph[36] = ph[37] = ph[38] = 0;
    ph[39] = 58;
    fr_put16(c + 2, fr_fold(fr_sum(c, 4 + len, fr_sum(ph, 40, 0))));
    size_t n = fr_ipv6(f, dst_mac, src, dst, 58, 4 + len);
    f[FR_ETH_HLEN + 7] = hop_limit;
    return n;
}

/* Neighbour solicitation for `target` from `src` (with our MAC as source
 * link-layer address), to target's solicited-node multicast group. */
static inline size_t fr_ndp_ns(uint8_t *f, const uint8_t src[16], const uint8_t target[16])
{
    uint8_t group[16] = {0xff, 0x02, [11] = 1, [12] = 0xff};
    memcpy(group + 13, target + 13, 3);
    uint8_t mac[6] = {0x33, 0x33, 0xff, target[13], target[14], target[15]};
    uint8_t body[28] = {0};
    memcpy(body + 4, target, 16);
    body[20] = 1; /* source link-layer address option */
    body[21] = 1;
    memcpy(body + 22, fr_mac_guest, 6);
    return fr_icmp6_full(f, mac, src, group, 135, 255, body, sizeof body);
}

/* Neighbour advertisement: `target` (ours) is at our MAC; solicited. */
static inline size_t fr_ndp_na(uint8_t *f, const uint8_t dst_mac[6], const uint8_t src[16],
                               const uint8_t dst[16])
{
    uint8_t body[28] = {0};
    body[0] = 0x60; /* solicited, override */
    memcpy(body + 4, src, 16);
    body[20] = 2; /* target link-layer address option */
    body[21] = 1;
    memcpy(body + 22, fr_mac_guest, 6);
    return fr_icmp6_full(f, dst_mac, src, dst, 136, 255, body, sizeof body);
}

#endif

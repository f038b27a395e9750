/*
 * wire.h - Ethernet, ARP, IPv4/ICMP and IPv6/ICMPv6 frames for the netsrv
 * tests: builders for what the test injects and parsers for what netsrv
 * sends. Everything is byte-exact and in network order; checksums are
 * computed here (or spoilt on purpose).
 */
#ifndef FERRY_TEST_NETSRV_WIRE_H
#define FERRY_TEST_NETSRV_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define W_ETH_HDR 14u
#define W_ETH_ARP 0x0806u
#define W_ETH_IP4 0x0800u
#define W_ETH_IP6 0x86ddu
#define W_IP4(a, b, c, d) \
    (((uint32_t)(a) << 24) | ((uint32_t)(b) << 16) | ((uint32_t)(c) << 8) | (uint32_t)(d))

typedef struct w_ip6 {
    uint8_t b[16];
} w_ip6_t;

static inline void w_put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

static inline void w_put32(uint8_t *p, uint32_t v)
{
    w_put16(p, (uint16_t)(v >> 16));
    w_put16(p + 2, (uint16_t)v);
}

static inline uint16_t w_get16(const uint8_t *p)
{
    return (uint16_t)(p[0] << 8 | p[1]);
}

static inline uint32_t w_get32(const uint8_t *p)
{
    return (uint32_t)w_get16(p) << 16 | w_get16(p + 2);
}

static inline uint32_t w_sum(uint32_t acc, const uint8_t *p, size_t n)
{
    for (size_t i = 0; i + 1 < n; i += 2)
        acc += (uint32_t)(p[i] << 8 | p[i + 1]);
    if (n & 1)
        acc += (uint32_t)p[n - 1] << 8;
    return acc;
}

static inline uint16_t w_fold(uint32_t acc)
{
    while (acc >> 16)
        acc = (acc & 0xffffu) + (acc >> 16);
    return (uint16_t)~acc;
}

/* ---- Ethernet, ARP ----------------------------------------------------------------------- */

static inline size_t w_eth(uint8_t *f, const uint8_t dst[6], const uint8_t src[6], uint16_t type)
{
    memcpy(f, dst, 6);
    memcpy(f + 6, src, 6);
    w_put16(f + 12, type);
    return W_ETH_HDR;
}

/* ARP request or reply (op 1 or 2); 42 bytes. */
static inline size_t w_arp(uint8_t *f, uint16_t op, const uint8_t eth_dst[6], const uint8_t sha[6],
                           uint32_t spa, const uint8_t tha[6], uint32_t tpa)
{
    size_t n = w_eth(f, eth_dst, sha, W_ETH_ARP);
    uint8_t *a = f + n;
    w_put16(a, 1);
    w_put16(a + 2, W_ETH_IP4);
    a[4] = 6;
    a[5] = 4;
    w_put16(a + 6, op);
    memcpy(a + 8, sha, 6);
    w_put32(a + 14, spa);
    memcpy(a + 18, tha, 6);
    w_put32(a + 24, tpa);
    return n + 28;
}

/* An ARP frame's fields; false if `f` is not ARP for Ethernet/IPv4. */
typedef struct w_arp_info {
    uint16_t op;
    uint8_t sha[6], tha[6];
    uint32_t spa, tpa;
} w_arp_info_t;

static inline bool w_parse_arp(const uint8_t *f, size_t len, w_arp_info_t *out)
{
    if (len < 42 || w_get16(f + 12) != W_ETH_ARP || w_get16(f + 14) != 1 ||
        w_get16(f + 16) != W_ETH_IP4)
        return false;
    const uint8_t *a = f + 14;
    out->op = w_get16(a + 6);
    memcpy(out->sha, a + 8, 6);
    out->spa = w_get32(a + 14);
    memcpy(out->tha, a + 18, 6);
    out->tpa = w_get32(a + 24);
    return true;
}

/* ---- IPv4 + ICMP echo -------------------------------------------------------------------- */

#define W_BAD_IP_SUM 1u   /* spoil the IPv4 header checksum */
#define W_BAD_ICMP_SUM 2u /* spoil the ICMP checksum */

/* ICMP echo (type 8 request, 0 reply) with `size` payload bytes i & 0xff. */
static inline size_t w_icmp_echo(uint8_t *f, const uint8_t dst_mac[6], const uint8_t src_mac[6],
                                 uint32_t src, uint32_t dst, uint8_t type, uint16_t id,
                                 uint16_t seq, size_t size, unsigned spoil)
{
    size_t n = w_eth(f, dst_mac, src_mac, W_ETH_IP4);
    uint8_t *ip = f + n, *icmp = ip + 20;
    size_t icmp_len = 8 + size;
    memset(ip, 0, 20);
    ip[0] = 0x45;
    w_put16(ip + 2, (uint16_t)(20 + icmp_len));
    w_put16(ip + 4, seq);
    ip[8] = 64;
    ip[9] = 1;
    w_put32(ip + 12, src);
    w_put32(ip + 16, dst);
    w_put16(ip + 10, (uint16_t)(w_fold(w_sum(0, ip, 20)) ^ ((spoil & W_BAD_IP_SUM) ? 0x5a5a : 0)));
    icmp[0] = type;
    icmp[1] = 0;
    w_put16(icmp + 2, 0);
    w_put16(icmp + 4, id);
    w_put16(icmp + 6, seq);
    for (size_t i = 0; i < size; i++)
        icmp[8 + i] = (uint8_t)i;
    w_put16(icmp + 2,
            (uint16_t)(w_fold(w_sum(0, icmp, icmp_len)) ^ ((spoil & W_BAD_ICMP_SUM) ? 0x0101 : 0)));
    return n + 20 + icmp_len;
}

typedef struct w_icmp_info {
    uint32_t src, dst;
    uint8_t type;
    uint16_t id, seq;
    size_t payload_len;
    const uint8_t *payload;
} w_icmp_info_t;

/* An IPv4 ICMP echo request/reply with valid checksums; false otherwise. */
static inline bool w_parse_icmp_echo(const uint8_t *f, size_t len, w_icmp_info_t *out)
{
    if (len < W_ETH_HDR + 28 || w_get16(f + 12) != W_ETH_IP4)
        return false;
    const uint8_t *ip = f + W_ETH_HDR;
    size_t ihl = (size_t)(ip[0] & 15) * 4, tot = w_get16(ip + 2);
    if ((ip[0] >> 4) != 4 || ihl < 20 || tot > len - W_ETH_HDR || tot < ihl + 8 || ip[9] != 1 ||
        w_fold(w_sum(0, ip, ihl)) != 0)
        return false;
    const uint8_t *icmp = ip + ihl;
    size_t icmp_len = tot - ihl;
    if (w_fold(w_sum(0, icmp, icmp_len)) != 0 || (icmp[0] != 0 && icmp[0] != 8))
        return false;
    out->src = w_get32(ip + 12);
    out->dst = w_get32(ip + 16);
    out->type = icmp[0];
    out->id = w_get16(icmp + 4);
    out->seq = w_get16(icmp + 6);
    out->payload = icmp + 8;
    out->payload_len = icmp_len - 8;
    return true;
}

/* Turn a valid echo request frame into its reply (peer side). */
static inline size_t w_icmp_reply_to(uint8_t *out, const uint8_t *req, size_t len,
                                     const uint8_t peer_mac[6])
{
    w_icmp_info_t in;
    if (!w_parse_icmp_echo(req, len, &in) || in.type != 8 || in.payload_len > 1500)
        return 0;
    size_t n =
        w_icmp_echo(out, req + 6, peer_mac, in.dst, in.src, 0, in.id, in.seq, in.payload_len, 0);
    memcpy(out + W_ETH_HDR + 28, in.payload, in.payload_len); /* echo the data as it came */
    uint8_t *icmp = out + W_ETH_HDR + 20;
    w_put16(icmp + 2, 0);
    w_put16(icmp + 2, w_fold(w_sum(0, icmp, 8 + in.payload_len)));
    return n;
}

/* ---- IPv6 + ICMPv6 ----------------------------------------------------------------------- */

/* fe80::EUI-64 of a MAC (U/L bit flipped), as lwIP and Linux form it. */
static inline w_ip6_t w_ip6_linklocal(const uint8_t mac[6])
{
    w_ip6_t a = {{0xfe, 0x80}};
    a.b[8] = mac[0] ^ 2;
    a.b[9] = mac[1];
    a.b[10] = mac[2];
    a.b[11] = 0xff;
    a.b[12] = 0xfe;
    a.b[13] = mac[3];
    a.b[14] = mac[4];
    a.b[15] = mac[5];
    return a;
}

static inline w_ip6_t w_ip6_solicited(const w_ip6_t *target)
{
    w_ip6_t a = {{0xff, 0x02, [11] = 1, [12] = 0xff}};
    memcpy(a.b + 13, target->b + 13, 3);
    return a;
}

static inline void w_mac_multicast6(uint8_t mac[6], const w_ip6_t *group)
{
    mac[0] = mac[1] = 0x33;
    memcpy(mac + 2, group->b + 12, 4);
}

/* IPv6 header + ICMPv6 message `msg` (its checksum field at msg[2..3] is
 * filled in here). */
static inline size_t w_icmp6(uint8_t *f, const uint8_t dst_mac[6], const uint8_t src_mac[6],
                             const w_ip6_t *src, const w_ip6_t *dst, uint8_t hop_limit,
                             const uint8_t *msg, size_t msg_len)
{
    size_t n = w_eth(f, dst_mac, src_mac, W_ETH_IP6);
    uint8_t *ip = f + n, *icmp = ip + 40;
    memset(ip, 0, 40);
    ip[0] = 0x60;
    w_put16(ip + 4, (uint16_t)msg_len);
    ip[6] = 58;
    ip[7] = hop_limit;
    memcpy(ip + 8, src->b, 16);
    memcpy(ip + 24, dst->b, 16);
    memcpy(icmp, msg, msg_len);
    w_put16(icmp + 2, 0);
    uint32_t acc = w_sum(w_sum(0, src->b, 16), dst->b, 16) + (uint32_t)msg_len + 58;
    w_put16(icmp + 2, w_fold(w_sum(acc, icmp, msg_len)));
    return n + 40 + msg_len;
}

typedef struct w_icmp6_info {
    w_ip6_t src, dst;
    uint8_t hop_limit;
    const uint8_t *msg;
    size_t msg_len;
} w_icmp6_info_t;

/* An IPv6 packet whose next header is ICMPv6, with a valid checksum. */
static inline bool w_parse_icmp6(const uint8_t *f, size_t len, w_icmp6_info_t *out)
{
    if (len < W_ETH_HDR + 44 || w_get16(f + 12) != W_ETH_IP6)
        return false;
    const uint8_t *ip = f + W_ETH_HDR;
    size_t plen = w_get16(ip + 4);
    if ((ip[0] >> 4) != 6 || ip[6] != 58 || plen < 4 || plen > len - W_ETH_HDR - 40)
        return false;
    memcpy(out->src.b, ip + 8, 16);
    memcpy(out->dst.b, ip + 24, 16);
    out->hop_limit = ip[7];
    out->msg = ip + 40;
    out->msg_len = plen;
    uint32_t acc = w_sum(w_sum(0, out->src.b, 16), out->dst.b, 16) + (uint32_t)plen + 58;
    return w_fold(w_sum(acc, out->msg, plen)) == 0;
}

/* ICMPv6 neighbor solicitation for `target` from `src` (with a source
 * link-layer address option), to the target's solicited-node group. */
static inline size_t w_ns(uint8_t *f, const uint8_t src_mac[6], const w_ip6_t *src,
                          const w_ip6_t *target)
{
    uint8_t msg[32] = {135};
    memcpy(msg + 8, target->b, 16);
    msg[24] = 1; /* source link-layer address, 8 bytes */
    msg[25] = 1;
    memcpy(msg + 26, src_mac, 6);
    w_ip6_t group = w_ip6_solicited(target);
    uint8_t dst_mac[6];
    w_mac_multicast6(dst_mac, &group);
    return w_icmp6(f, dst_mac, src_mac, src, &group, 255, msg, sizeof msg);
}

/* Neighbor advertisement (solicited, override) for `target`, to `dst`. */
static inline size_t w_na(uint8_t *f, const uint8_t dst_mac[6], const uint8_t src_mac[6],
                          const w_ip6_t *target, const w_ip6_t *dst)
{
    uint8_t msg[32] = {136};
    msg[4] = 0x60; /* S | O */
    memcpy(msg + 8, target->b, 16);
    msg[24] = 2; /* target link-layer address */
    msg[25] = 1;
    memcpy(msg + 26, src_mac, 6);
    return w_icmp6(f, dst_mac, src_mac, target, dst, 255, msg, sizeof msg);
}

/* ICMPv6 echo (128 request, 129 reply) with `size` payload bytes i & 0xff. */
static inline size_t w_echo6(uint8_t *f, const uint8_t dst_mac[6], const uint8_t src_mac[6],
                             const w_ip6_t *src, const w_ip6_t *dst, uint8_t type, uint16_t id,
                             uint16_t seq, size_t size)
{
    uint8_t msg[8 + 1400] = {type};
    w_put16(msg + 4, id);
    w_put16(msg + 6, seq);
    for (size_t i = 0; i < size && i < 1400; i++)
        msg[8 + i] = (uint8_t)i;
    return w_icmp6(f, dst_mac, src_mac, src, dst, 64, msg, 8 + size);
}

/* Router advertisement from `src` (link-local) to all nodes, with one
 * prefix (/64, on-link, autonomous). */
static inline size_t w_ra(uint8_t *f, const uint8_t src_mac[6], const w_ip6_t *src,
                          const w_ip6_t *prefix)
{
    uint8_t msg[16 + 32] = {134};
    msg[4] = 64; /* current hop limit */
    /* router lifetime 0: not a default router; reachable, retrans 0 */
    uint8_t *o = msg + 16;
    o[0] = 3; /* prefix information */
    o[1] = 4;
    o[2] = 64;
    o[3] = 0xc0; /* L | A */
    w_put32(o + 4, 86400);
    w_put32(o + 8, 14400);
    memcpy(o + 16, prefix->b, 16);
    w_ip6_t all = {{0xff, 0x02, [15] = 1}};
    const uint8_t dst_mac[6] = {0x33, 0x33, 0, 0, 0, 1};
    return w_icmp6(f, dst_mac, src_mac, src, &all, 255, msg, sizeof msg);
}

#endif /* FERRY_TEST_NETSRV_WIRE_H */

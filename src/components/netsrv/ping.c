/*
 * ping.c - netsrv.idl's ping: ICMP and ICMPv6 echo through two raw PCBs.
 *
 * A ping call takes a slot (NETSRV_PINGS_MAX at once) whose ICMP identifier
 * is ping_id_base + slot, sends its first request at once and keeps the
 * caller's reply capability: the answer is deferred, so netsrv goes on
 * serving while the pings are in flight. An lwIP timer sends the next
 * request every interval_ms; timeout_ms after the last one (or as soon as
 * every request is answered) the result goes back with netsrv_ping_reply().
 *
 * The raw PCBs see every ICMP(v6) packet before lwIP's ICMP code does. They
 * take only echo replies that belong to an active slot (identifier, source
 * address, length, checksum and payload all match) and leave everything else
 * to lwIP (return 0), so echo requests are still answered and ND6 still
 * works. Round-trip times are measured with mk_time_ns() against the send
 * time netsrv recorded, never against anything the reply carries.
 */
#include <string.h>

#include "lwip/inet_chksum.h"
#include "lwip/ip.h"
#include "lwip/prot/icmp.h"
#include "lwip/prot/icmp6.h"
#include "lwip/raw.h"
#include "lwip/timeouts.h"
#include "netsrv_priv.h"

#define ICMP_HDR_LEN 8u
#define PING_MS_MAX 60000u

static uint8_t payload_byte(uint32_t i)
{
    return (uint8_t)(0x20u + i % 95u); /* printable, like ping(8)'s pattern */
}

static bool map_test(const uint8_t *m, uint32_t i)
{
    return (m[i >> 3] & (1u << (i & 7))) != 0;
}

static void map_set(uint8_t *m, uint32_t i)
{
    m[i >> 3] = (uint8_t)(m[i >> 3] | (1u << (i & 7)));
}

/* ---- Checksums (RFC 1071), over plain bytes ---------------------------------------------- */

static uint32_t sum16(uint32_t acc, const uint8_t *p, size_t n)
{
    for (size_t i = 0; i + 1 < n; i += 2)
        acc += (uint32_t)p[i] << 8 | p[i + 1];
    if (n & 1)
        acc += (uint32_t)p[n - 1] << 8;
    return acc;
}

static uint16_t fold(uint32_t acc)
{
    while (acc >> 16)
        acc = (acc & 0xffffu) + (acc >> 16);
    return (uint16_t)acc;
}

static uint32_t sum_ip6(uint32_t acc, const ip6_addr_t *a)
{
    for (int i = 0; i < 4; i++) {
        uint32_t w = lwip_ntohl(a->addr[i]);
        acc += (w >> 16) + (w & 0xffffu);
    }
    return acc;
}

/* ICMPv6 checksum pseudo-header (RFC 8200 8.1) + message. 0xffff if valid. */
static uint16_t icmp6_sum(const ip6_addr_t *src, const ip6_addr_t *dst, const uint8_t *msg,
                          size_t len)
{
    uint32_t acc = sum_ip6(sum_ip6(0, src), dst);
    acc += (uint32_t)(len >> 16) + (uint32_t)(len & 0xffffu) + IP6_NEXTH_ICMP6;
    return fold(sum16(acc, msg, len));
}

/* ---- Sending ----------------------------------------------------------------------------- */

static void ping_finish(netsrv_ping_t *pg)
{
    if (pg->res.received > 0)
        pg->res.rtt_avg_ns = pg->rtt_sum / pg->res.received;
    netsrv_ping_reply(pg->reply, 0, &pg->res); /* MK_EDEAD: the caller is gone, nothing to do */
    pg->active = false;
}

static bool ping_complete(const netsrv_ping_t *pg)
{
    return pg->sent == pg->count && pg->res.received + pg->res.send_errors >= pg->count;
}

/* Send request number pg->sent. */
static err_t ping_send(netsrv_ping_t *pg)
{
    netsrv_t *s = pg->srv;
    bool v6 = IP_IS_V6(&pg->dst);
    uint32_t seq = pg->sent++;
    uint16_t len = (uint16_t)(ICMP_HDR_LEN + pg->size);
    struct pbuf *p = pbuf_alloc(PBUF_IP, len, PBUF_RAM); /* one contiguous buffer */
    if (p == NULL) {
        pg->res.send_errors++;
        return ERR_MEM;
    }
    uint8_t *b = p->payload;
    b[0] = v6 ? ICMP6_TYPE_EREQ : ICMP_ECHO;
    b[1] = 0;
    b[2] = b[3] = 0; /* checksum: below for IPv4, by lwIP for IPv6 (chksum_reqd) */
    b[4] = (uint8_t)(pg->id >> 8);
    b[5] = (uint8_t)pg->id;
    b[6] = (uint8_t)(seq >> 8);
    b[7] = (uint8_t)seq;
    for (uint32_t i = 0; i < pg->size; i++)
        b[ICMP_HDR_LEN + i] = payload_byte(i);
    if (!v6) {
        uint16_t c = (uint16_t)~fold(sum16(0, b, len));
        b[2] = (uint8_t)(c >> 8);
        b[3] = (uint8_t)c;
    }
    pg->sent_ns[seq] = mk_time_ns();
    err_t err = raw_sendto(v6 ? s->ping6 : s->ping4, p, &pg->dst);
    pbuf_free(p);
    if (err == ERR_OK) {
        map_set(pg->transmitted, seq);
        pg->res.transmitted++;
    } else {
        pg->res.send_errors++;
    }
    return err;
}

static void ping_expire(void *arg)
{
    ping_finish(arg);
}

static void ping_tick(void *arg)
{
    netsrv_ping_t *pg = arg;
    ping_send(pg);
    if (pg->sent < pg->count)
        sys_timeout(pg->interval_ms, ping_tick, pg);
    else if (ping_complete(pg))
        ping_finish(pg);
    else
        sys_timeout(pg->timeout_ms, ping_expire, pg);
}

/* ---- Receiving --------------------------------------------------------------------------- */

/* Does the receiving netif want ICMP checksums checked? lwIP's loopback
 * netif neither generates nor checks them (NETIF_CHECKSUM_DISABLE_ALL), so
 * an echo reply looped back carries the request's checksum. */
static bool checksum_checked(bool v6)
{
#if LWIP_CHECKSUM_CTRL_PER_NETIF
    const struct netif *in = ip_current_input_netif();
    return in == NULL ||
           (in->chksum_flags & (v6 ? NETIF_CHECKSUM_CHECK_ICMP6 : NETIF_CHECKSUM_CHECK_ICMP)) != 0;
#else
    (void)v6;
    return true;
#endif
}

/* An echo reply of slot pg? `msg` is the whole ICMP message. */
static bool reply_matches(const netsrv_ping_t *pg, const uint8_t *msg, uint16_t len, bool v6)
{
    if (len != ICMP_HDR_LEN + pg->size)
        return false;
    if (!checksum_checked(v6)) {
        /* looped back inside netsrv: nothing to check */
    } else if (v6) {
        if (icmp6_sum(ip6_current_src_addr(), ip6_current_dest_addr(), msg, len) != 0xffffu)
            return false;
    } else if (fold(sum16(0, msg, len)) != 0xffffu) {
        return false;
    }
    for (uint32_t i = 0; i < pg->size; i++)
        if (msg[ICMP_HDR_LEN + i] != payload_byte(i))
            return false;
    return true;
}

static u8_t ping_recv(void *arg, struct raw_pcb *pcb, struct pbuf *p, const ip_addr_t *src)
{
    static uint8_t msg[ICMP_HDR_LEN + NETSRV_PING_SIZE_MAX];
    netsrv_t *s = arg;
    bool v6 = pcb == s->ping6;
    uint16_t hlen = ip_current_header_tot_len();
    if (p->tot_len < hlen + ICMP_HDR_LEN || (size_t)(p->tot_len - hlen) > sizeof msg)
        return 0;
    uint16_t len = (uint16_t)(p->tot_len - hlen);
    if (pbuf_copy_partial(p, msg, len, hlen) != len)
        return 0;
    if (msg[0] != (v6 ? ICMP6_TYPE_EREP : ICMP_ER) || msg[1] != 0)
        return 0;
    uint16_t slot = (uint16_t)(((uint16_t)(msg[4] << 8 | msg[5])) - s->ping_id_base);
    if (slot >= NETSRV_PINGS_MAX)
        return 0;
    netsrv_ping_t *pg = &s->pings[slot];
    if (!pg->active || IP_IS_V6(&pg->dst) != v6 || !ip_addr_cmp_zoneless(src, &pg->dst) ||
        !reply_matches(pg, msg, len, v6))
        return 0;
    uint32_t seq = (uint32_t)(msg[6] << 8 | msg[7]);
    pbuf_free(p); /* ours from here on: eaten */
    if (seq >= pg->sent || !map_test(pg->transmitted, seq) || map_test(pg->answered, seq))
        return 1; /* a duplicate or a forgery */
    map_set(pg->answered, seq);
    uint64_t rtt = mk_time_ns() - pg->sent_ns[seq];
    pg->res.received++;
    pg->rtt_sum += rtt;
    if (pg->res.received == 1 || rtt < pg->res.rtt_min_ns)
        pg->res.rtt_min_ns = rtt;
    if (rtt > pg->res.rtt_max_ns)
        pg->res.rtt_max_ns = rtt;
    if (ping_complete(pg)) {
        sys_untimeout(ping_expire, pg);
        ping_finish(pg);
    }
    return 1;
}

/* ---- Set-up and the IDL entry ------------------------------------------------------------ */

int netsrv_ping_init(netsrv_t *s)
{
    s->ping4 = raw_new_ip_type(IPADDR_TYPE_V4, IP_PROTO_ICMP);
    s->ping6 = raw_new_ip_type(IPADDR_TYPE_V6, IP6_NEXTH_ICMP6);
    if (s->ping4 == NULL || s->ping6 == NULL) {
        mk_log("cannot create the ping PCBs (MEMP_NUM_RAW_PCB)");
        return -1;
    }
    s->ping6->chksum_reqd = 1; /* lwIP fills the ICMPv6 checksum (pseudo-header) */
    s->ping6->chksum_offset = 2;
    raw_recv(s->ping4, ping_recv, s);
    raw_recv(s->ping6, ping_recv, s);
    s->ping_id_base = (uint16_t)LWIP_RAND();
    for (int i = 0; i < NETSRV_PINGS_MAX; i++) {
        s->pings[i].srv = s;
        s->pings[i].id = (uint16_t)(s->ping_id_base + i);
    }
    return 0;
}

/* netsrv.idl addr -> lwIP address; false if not a unicast destination. */
static bool dst_from_idl(netsrv_t *s, const netsrv_addr_t *a, ip_addr_t *out)
{
    if (a->family == NETSRV_AF_INET) {
        if (a->hi != 0 || a->lo > 0xffffffffu || a->scope != 0)
            return false;
        ip_addr_set_ip4_u32_val(*out, lwip_htonl((uint32_t)a->lo));
        return !ip4_addr_isany(ip_2_ip4(out)) && !ip4_addr_ismulticast(ip_2_ip4(out)) &&
               ip4_addr_get_u32(ip_2_ip4(out)) != IPADDR_BROADCAST;
    }
    if (a->family != NETSRV_AF_INET6)
        return false;
    IP_ADDR6(out, lwip_htonl((uint32_t)(a->hi >> 32)), lwip_htonl((uint32_t)a->hi),
             lwip_htonl((uint32_t)(a->lo >> 32)), lwip_htonl((uint32_t)a->lo));
    ip6_addr_t *a6 = ip_2_ip6(out);
    if (ip6_addr_isany(a6) || ip6_addr_ismulticast(a6))
        return false;
    if (ip6_addr_islinklocal(a6)) { /* needs its interface */
        struct netif *netif = a->scope != 0 ? netsrv_netif_at(s, a->scope - 1) : NULL;
        if (netif == NULL)
            return false;
        ip6_addr_set_zone(a6, netif_get_index(netif));
    } else if (a->scope != 0) {
        return false;
    }
    return true;
}

int32_t netsrv_ping_start(netsrv_t *s, const mk_recv_info_t *info, const netsrv_addr_t *dst,
                          uint32_t count, uint32_t size, uint32_t interval_ms, uint32_t timeout_ms,
                          netsrv_ping_result_t *r)
{
    ip_addr_t to;
    if (count < 1 || count > NETSRV_PING_COUNT_MAX || size > NETSRV_PING_SIZE_MAX ||
        interval_ms < 1 || interval_ms > PING_MS_MAX || timeout_ms < 1 ||
        timeout_ms > PING_MS_MAX || !dst_from_idl(s, dst, &to))
        return NETSRV_EINVAL;
    netsrv_ping_t *pg = NULL;
    for (int i = 0; i < NETSRV_PINGS_MAX && pg == NULL; i++)
        if (!s->pings[i].active)
            pg = &s->pings[i];
    if (pg == NULL)
        return NETSRV_EBUSY;
    netsrv_t *srv = pg->srv;
    uint16_t id = pg->id;
    memset(pg, 0, sizeof *pg);
    pg->srv = srv;
    pg->id = id;
    pg->dst = to;
    pg->count = count;
    pg->size = size;
    pg->interval_ms = interval_ms;
    pg->timeout_ms = timeout_ms;
    if (ping_send(pg) == ERR_RTE)
        return NETSRV_ENETUNREACH; /* the slot stays free */
    if (ping_complete(pg)) {       /* one request, refused: nothing to wait for */
        *r = pg->res;
        return 0;
    }
    pg->active = true;
    pg->reply = info->reply;
    if (count > 1)
        sys_timeout(interval_ms, ping_tick, pg);
    else
        sys_timeout(timeout_ms, ping_expire, pg);
    return IDL_DEFERRED;
}

/*
 * test_lwip_timers.c - lwIP's cyclic timers run only while they have work
 * (src/lwip/timers.c), and lwIP's protocols keep their timing.
 *
 * lwIP runs as netsrv runs it: a loop that delivers looped packets, runs
 * the due timers and then sleeps until sys_timeouts_sleeptime() says (for
 * ever when it says "infinite"), on a fake clock, so every time below is
 * exact and the test does not depend on the machine's speed. A fake
 * Ethernet interface "te" (10.0.0.1/24, fe80::ff:fe00:1) records every frame
 * lwIP sends with its time; the test plays the peer (10.0.0.2, a router, a
 * DHCP server) by injecting frames.
 *
 * What this proves:
 *  - Nothing to do, no timer: lwIP with only its loopback interface sleeps
 *    for ever, at once when lo sends no router solicitations (as netsrv
 *    sets it up), else once lwIP's three solicitations on lo are out. A
 *    listening TCP PCB needs no timer; a connection does until its
 *    TIME-WAIT ends (2 x TCP_MSL), then the timer stops.
 *  - ARP: a pending entry sends its 5 requests 1 s apart and is freed;
 *    then no timer. A stable entry ages in 10 s steps (a few wake-ups a
 *    minute, not 60), expires after ARP_MAXAGE (300 s, within 10 s), is
 *    re-requested when used near the end of its life and lives on when the
 *    reply comes; a gratuitous ARP at link-up costs only a few ticks.
 *  - IGMP: a join sends its report and the delayed one within 500 ms; a
 *    general query is answered within its maximum response time; then no
 *    timer. MLD alike for IPv6 groups.
 *  - ND6: duplicate address detection, then three router solicitations
 *    exactly 4 s apart; address resolution of a silent neighbour sends 3
 *    solicitations 1 s apart and gives up; a reachable neighbour turns
 *    stale after its reachable time (30 s, within 10 s) and then needs no
 *    timer; SLAAC addresses deprecate and expire on time (within 10 s) and
 *    their ageing costs a wake-up per 10 s.
 *  - DHCP: DISCOVER retransmissions at 2, 4, 8 s (the fine timer runs at its
 *    500 ms while a request waits), OFFER/REQUEST/ACK and the ARP check,
 *    the renewal exactly at T1 (the coarse timer), and no timer once DHCP
 *    is stopped.
 *  - Reassembly: an incomplete IPv4 datagram is dropped after IP_REASS_MAXAGE
 *    (15-16 s) with an ICMP time exceeded, an IPv6 one after 60-61 s; then no
 *    timer.
 */
#include <check.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../netsrv/wire.h"
#include "ferry/mk.h"
#include "ferry_timers.h"
#include "lwip/dhcp.h"
#include "lwip/etharp.h"
#include "lwip/ethip6.h"
#include "lwip/igmp.h"
#include "lwip/init.h"
#include "lwip/ip_addr.h"
#include "lwip/memp.h"
#include "lwip/mld6.h"
#include "lwip/nd6.h"
#include "lwip/netif.h"
#include "lwip/pbuf.h"
#include "lwip/priv/nd6_priv.h"
#include "lwip/priv/tcp_priv.h"
#include "lwip/stats.h"
#include "lwip/tcp.h"
#include "lwip/timeouts.h"
#include "lwip/udp.h"
#include "netif/ethernet.h"

#define MS_NS 1000000ull
#define INFINITE SYS_TIMEOUTS_SLEEPTIME_INFINITE
#define ARP_BUSY_MS 6000u /* etharp.c's ARP_MAXPENDING (5) ticks, and one */

/* ---- Fake clock and netsrv's loop ---------------------------------------------------------- */

static uint64_t now_ns = 1000000 * MS_NS; /* the port's sys_now() reads this */

uint64_t mk_time_ns(void)
{
    return now_ns;
}

static uint64_t now_ms(void)
{
    return now_ns / MS_NS;
}

static bool loopback_pending(void)
{
    struct netif *n;
    NETIF_FOREACH(n)
    {
        if (n->loop_first != NULL)
            return true;
    }
    return false;
}

/* Run the loop for `ms` of fake time: a turn, then sleep until the next
 * timer (not at all while looped packets wait). Returns the wake-ups by a
 * timer. */
static unsigned run(uint64_t ms)
{
    uint64_t end = now_ns + ms * MS_NS;
    unsigned wakeups = 0;
    for (unsigned turns = 0;; turns++) {
        ck_assert_uint_lt(turns, 1000000);
        netif_poll_all();
        sys_check_timeouts();
        u32_t sleep = loopback_pending() ? 0 : sys_timeouts_sleeptime();
        if (sleep == INFINITE || now_ns + sleep * MS_NS > end) {
            now_ns = end;
            netif_poll_all();
            sys_check_timeouts();
            return wakeups;
        }
        if (sleep > 0)
            wakeups++;
        now_ns += sleep * MS_NS;
    }
}

/* Run until no timer runs (the loop would sleep for ever); fail if that
 * takes more than `max_ms`. Returns how long it took. */
static uint64_t run_until_quiet(uint64_t max_ms)
{
    uint64_t start = now_ms();
    for (;;) {
        netif_poll_all();
        sys_check_timeouts();
        u32_t sleep = loopback_pending() ? 0 : sys_timeouts_sleeptime();
        if (sleep == INFINITE)
            return now_ms() - start;
        ck_assert_msg(now_ms() + sleep - start <= max_ms,
                      "timers still running after %llu ms (lwip_cyclic_timers bits %#x)",
                      (unsigned long long)max_ms, (unsigned)ferry_timers_running());
        now_ns += sleep * MS_NS;
    }
}

static void assert_quiet(void)
{
    ck_assert_msg(sys_timeouts_sleeptime() == INFINITE && ferry_timers_running() == 0,
                  "a timer runs: sleep %u ms, lwip_cyclic_timers bits %#x",
                  (unsigned)sys_timeouts_sleeptime(), (unsigned)ferry_timers_running());
}

/* ---- The fake interface and the wire ------------------------------------------------------- */

#define TE_IP W_IP4(10, 0, 0, 1)
#define PEER_IP W_IP4(10, 0, 0, 2)
#define SILENT_IP W_IP4(10, 0, 0, 9)
#define FRAMES_MAX 2048

static const uint8_t te_mac[6] = {0x02, 0, 0, 0, 0, 1};
static const uint8_t peer_mac[6] = {0x02, 0, 0, 0, 0, 2};
static const uint8_t bcast_mac[6] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
static struct netif te;

typedef struct sent {
    uint64_t ms;
    size_t len;
    uint8_t f[1514];
} sent_t;

static sent_t sent[FRAMES_MAX];
static size_t nsent;

static err_t te_linkoutput(struct netif *netif, struct pbuf *p)
{
    (void)netif;
    ck_assert_uint_lt(nsent, FRAMES_MAX);
    sent_t *s = &sent[nsent++];
    s->ms = now_ms();
    s->len = pbuf_copy_partial(p, s->f, sizeof s->f, 0);
    return ERR_OK;
}

static err_t te_init(struct netif *netif)
{
    netif->name[0] = 't';
    netif->name[1] = 'e';
    netif->output = etharp_output;
    netif->output_ip6 = ethip6_output;
    netif->linkoutput = te_linkoutput;
    netif->mtu = 1500;
    netif->hwaddr_len = 6;
    memcpy(netif->hwaddr, te_mac, 6);
    /* as netsrv's NICs */
    netif->flags = NETIF_FLAG_BROADCAST | NETIF_FLAG_ETHARP | NETIF_FLAG_ETHERNET |
                   NETIF_FLAG_MLD6 | NETIF_FLAG_IGMP;
    return ERR_OK;
}

/* Bring "te" up: a static IPv4 address unless DHCP is to configure it, and
 * the link-local IPv6 address if asked. */
static void te_up(bool static_ip4, bool ip6)
{
    ip4_addr_t a, m, g;
    ip4_addr_set_u32(&a, lwip_htonl(static_ip4 ? TE_IP : 0));
    ip4_addr_set_u32(&m, lwip_htonl(static_ip4 ? 0xffffff00u : 0));
    ip4_addr_set_u32(&g, lwip_htonl(static_ip4 ? PEER_IP : 0));
    ck_assert_ptr_nonnull(netif_add(&te, &a, &m, &g, NULL, te_init, ethernet_input));
    netif_set_default(&te);
    if (ip6) {
        netif_create_ip6_linklocal_address(&te, 1);
        te.ip6_autoconfig_enabled = 1; /* SLAAC, as netsrv */
    }
    netif_set_up(&te);
    netif_set_link_up(&te);
}

static void inject(const uint8_t *f, size_t n)
{
    struct pbuf *p = pbuf_alloc(PBUF_RAW, (u16_t)n, PBUF_POOL);
    ck_assert_ptr_nonnull(p);
    pbuf_take(p, f, (u16_t)n);
    if (te.input(p, &te) != ERR_OK)
        pbuf_free(p);
}

typedef bool (*match_fn)(const sent_t *s, uint32_t arg);

/* The frames sent since index `from` that match, and their times. */
static size_t find(size_t from, match_fn m, uint32_t arg, uint64_t *times, size_t max)
{
    size_t n = 0;
    for (size_t i = from; i < nsent; i++)
        if (m(&sent[i], arg)) {
            if (n < max)
                times[n] = sent[i].ms;
            n++;
        }
    return n;
}

static size_t count(size_t from, match_fn m, uint32_t arg)
{
    return find(from, m, arg, NULL, 0);
}

static bool arp_request_for(const sent_t *s, uint32_t ip)
{
    w_arp_info_t a;
    return w_parse_arp(s->f, s->len, &a) && a.op == 1 && a.tpa == ip && a.spa != ip;
}

/* IPv4 payload of a frame (NULL if not IPv4 with protocol `proto`). */
static const uint8_t *ip4_payload(const sent_t *s, uint8_t proto, size_t *len)
{
    if (s->len < W_ETH_HDR + 20 || w_get16(s->f + 12) != W_ETH_IP4)
        return NULL;
    const uint8_t *ip = s->f + W_ETH_HDR;
    size_t hl = (size_t)(ip[0] & 15) * 4, tot = w_get16(ip + 2);
    if (ip[9] != proto || tot < hl || W_ETH_HDR + tot > s->len)
        return NULL;
    *len = tot - hl;
    return ip + hl;
}

static bool igmp_report_for(const sent_t *s, uint32_t group)
{
    size_t len;
    const uint8_t *g = ip4_payload(s, 2, &len);
    return g != NULL && len >= 8 && g[0] == 0x16 && w_get32(g + 4) == group;
}

static bool icmp4_type(const sent_t *s, uint32_t type)
{
    size_t len;
    const uint8_t *m = ip4_payload(s, 1, &len);
    return m != NULL && len >= 8 && m[0] == type;
}

/* An ICMPv6 message of this type, also behind a hop-by-hop options header
 * (MLD's router alert). */
static bool icmp6_type(const sent_t *s, uint32_t type)
{
    if (s->len < W_ETH_HDR + 40 + 8 || w_get16(s->f + 12) != W_ETH_IP6)
        return false;
    const uint8_t *ip = s->f + W_ETH_HDR;
    size_t off = 40;
    uint8_t next = ip[6];
    if (next == 0) { /* hop-by-hop options */
        next = ip[40];
        off += (size_t)(ip[41] + 1) * 8;
    }
    return next == 58 && W_ETH_HDR + off < s->len && ip[off] == type;
}

/* A DHCP message from the client; its type (option 53) in *type, xid. */
static bool dhcp_parse(const sent_t *s, uint8_t *type, uint32_t *xid)
{
    size_t len;
    const uint8_t *u = ip4_payload(s, 17, &len);
    if (u == NULL || len < 8 + 240 || w_get16(u + 2) != 67)
        return false;
    const uint8_t *b = u + 8;
    *xid = w_get32(b + 4);
    for (size_t o = 240; o + 2 <= len - 8 && b[o] != 255;)
        if (b[o] == 0) {
            o++;
        } else {
            if (b[o] == 53) {
                *type = b[o + 2];
                return true;
            }
            o += 2u + b[o + 1];
        }
    return false;
}

static bool dhcp_type(const sent_t *s, uint32_t type)
{
    uint8_t t;
    uint32_t xid;
    return dhcp_parse(s, &t, &xid) && t == type;
}

/* The xid of the client's last DHCP message. */
static uint32_t dhcp_last_xid(void)
{
    for (size_t i = nsent; i-- > 0;) {
        uint8_t t;
        uint32_t xid;
        if (dhcp_parse(&sent[i], &t, &xid))
            return xid;
    }
    ck_abort_msg("no DHCP message sent");
    return 0;
}

/* An IPv4 packet from the peer: header (id, fragment field) + payload. */
static size_t ip4_packet(uint8_t *f, const uint8_t dst_mac[6], uint32_t src, uint32_t dst,
                         uint8_t proto, uint8_t ttl, uint16_t frag, const uint8_t *payload,
                         size_t len)
{
    size_t n = w_eth(f, dst_mac, peer_mac, W_ETH_IP4);
    uint8_t *ip = f + n;
    memset(ip, 0, 20);
    ip[0] = 0x45;
    w_put16(ip + 2, (uint16_t)(20 + len));
    w_put16(ip + 4, 0x4242);
    w_put16(ip + 6, frag);
    ip[8] = ttl;
    ip[9] = proto;
    w_put32(ip + 12, src);
    w_put32(ip + 16, dst);
    w_put16(ip + 10, w_fold(w_sum(0, ip, 20)));
    memcpy(ip + 20, payload, len);
    return n + 20 + len;
}

static void inject_arp_reply(uint32_t from)
{
    uint8_t f[64];
    inject(f, w_arp(f, 2, te_mac, peer_mac, from, te_mac, TE_IP));
}

/* A DHCP OFFER (2) or ACK (5) from 10.0.0.2 for 10.0.0.1, lease `lease` s
 * (T1 and T2 by lwIP's defaults: half and seven eighths). */
static void inject_dhcp(uint8_t type, uint32_t xid, uint32_t lease)
{
    uint8_t u[8 + 300] = {0}, f[400];
    uint8_t *b = u + 8;
    b[0] = 2; /* BOOTREPLY */
    b[1] = 1;
    b[2] = 6;
    w_put32(b + 4, xid);
    w_put32(b + 16, TE_IP); /* yiaddr */
    memcpy(b + 28, te_mac, 6);
    w_put32(b + 236, 0x63825363u);
    uint8_t *o = b + 240;
    const uint8_t opts[] = {53, 1,    type, 54, 4, 10, 0, 0, 2, 1, 4, 255, 255, 255,
                            0,  3,    4,    10, 0, 0,  2, 51, 4};
    memcpy(o, opts, sizeof opts);
    o += sizeof opts;
    w_put32(o, lease);
    o += 4;
    *o++ = 255;
    size_t blen = (size_t)(o - b);
    w_put16(u, 67);
    w_put16(u + 2, 68);
    w_put16(u + 4, (uint16_t)(8 + blen));
    /* UDP checksum 0: none (IPv4) */
    inject(f, ip4_packet(f, bcast_mac, PEER_IP, 0xffffffffu, 17, 64, 0, u, 8 + blen));
}

static const w_ip6_t prefix6 = {{0x20, 0x01, 0x0d, 0xb8, 0x00, 0x01}};

/* A router advertisement from the peer's link-local address: router
 * lifetime `router_s`, one autonomous /64 prefix with the given lifetimes. */
static void inject_ra(uint16_t router_s, uint32_t valid_s, uint32_t pref_s)
{
    uint8_t msg[16 + 32] = {134}, f[200];
    msg[4] = 64;
    w_put16(msg + 6, router_s);
    uint8_t *o = msg + 16;
    o[0] = 3;
    o[1] = 4;
    o[2] = 64;
    o[3] = 0xc0; /* on-link, autonomous */
    w_put32(o + 4, valid_s);
    w_put32(o + 8, pref_s);
    memcpy(o + 16, prefix6.b, 16);
    w_ip6_t src = w_ip6_linklocal(peer_mac), all = {{0xff, 0x02, [15] = 1}};
    const uint8_t dst_mac[6] = {0x33, 0x33, 0, 0, 0, 1};
    inject(f, w_icmp6(f, dst_mac, peer_mac, &src, &all, 255, msg, sizeof msg));
}

/* A UDP datagram from lwIP to `dst` (IPv4 or the peer's link-local). */
static void send_udp(const ip_addr_t *dst)
{
    struct udp_pcb *pcb = udp_new_ip_type(IPADDR_TYPE_ANY);
    ck_assert_ptr_nonnull(pcb);
    struct pbuf *p = pbuf_alloc(PBUF_TRANSPORT, 8, PBUF_RAM);
    memset(p->payload, 'x', 8);
    ip_addr_t d = *dst;
    if (IP_IS_V6(&d))
        ip6_addr_assign_zone(ip_2_ip6(&d), IP6_UNICAST, &te);
    ck_assert_int_eq(udp_sendto_if(pcb, p, &d, 9, &te), ERR_OK);
    pbuf_free(p);
    udp_remove(pcb);
}

static ip_addr_t ip4_of(uint32_t a)
{
    ip_addr_t r;
    IP_ADDR4(&r, a >> 24, (a >> 16) & 255, (a >> 8) & 255, a & 255);
    return r;
}

static ip_addr_t peer6(void)
{
    w_ip6_t p = w_ip6_linklocal(peer_mac);
    ip_addr_t r;
    IP_ADDR6(&r, lwip_htonl(w_get32(p.b)), lwip_htonl(w_get32(p.b + 4)),
             lwip_htonl(w_get32(p.b + 8)), lwip_htonl(w_get32(p.b + 12)));
    return r;
}

static bool arp_has(uint32_t ip)
{
    for (size_t i = 0; i < ARP_TABLE_SIZE; i++) {
        ip4_addr_t *a;
        struct netif *n;
        struct eth_addr *e;
        if (etharp_get_entry(i, &a, &n, &e) && lwip_ntohl(ip4_addr_get_u32(a)) == ip)
            return true;
    }
    return false;
}

/* The state of the peer's neighbour cache entry (ND6_NO_ENTRY if none). */
static u8_t neighbor_state(void)
{
    ip_addr_t p = peer6();
    for (int i = 0; i < LWIP_ND6_NUM_NEIGHBORS; i++)
        if (neighbor_cache[i].state != ND6_NO_ENTRY &&
            ip6_addr_cmp_zoneless(&neighbor_cache[i].next_hop_address, ip_2_ip6(&p)))
            return neighbor_cache[i].state;
    return ND6_NO_ENTRY;
}

/* The address slot of te holding an address of prefix6, or -1. */
static int slaac_slot(void)
{
    for (int i = 0; i < LWIP_IPV6_NUM_ADDRESSES; i++)
        if (!ip6_addr_isinvalid(netif_ip6_addr_state(&te, i)) &&
            lwip_ntohl(netif_ip6_addr(&te, i)->addr[0]) == 0x20010db8u &&
            lwip_ntohl(netif_ip6_addr(&te, i)->addr[1]) == 0x00010000u)
            return i;
    return -1;
}

/* ---- Fixture ------------------------------------------------------------------------------- */

/* Each test in its own process (Check's fork mode): lwIP afresh. */
static void setup(void)
{
    lwip_init();
    nsent = 0;
}

/* As netsrv: no router solicitations on lo. */
static void lo_quiet(void)
{
    struct netif *lo = netif_find("lo0");
    ck_assert_ptr_nonnull(lo);
    lo->rs_count = 0;
}

/* te up, its start-up traffic (gratuitous ARP, DAD, MLD, router
 * solicitations) over and every timer stopped. */
static void te_quiet(bool static_ip4, bool ip6)
{
    lo_quiet();
    te_up(static_ip4, ip6);
    run_until_quiet(20000);
}

/* ---- Idle ---------------------------------------------------------------------------------- */

START_TEST(idle_loopback)
{
    /* lwIP on its own sends three router solicitations on lo, 4 s apart,
     * and then has nothing to do. */
    uint64_t took = run_until_quiet(20000);
    ck_assert_uint_ge(took, 8000);
    ck_assert_uint_eq(run(600000), 0);
    assert_quiet();
}
END_TEST

START_TEST(idle_as_netsrv)
{
    lo_quiet();
    assert_quiet();
    ck_assert_uint_eq(run(600000), 0);
    /* A listener needs no timer. */
    struct tcp_pcb *l = tcp_new_ip_type(IPADDR_TYPE_ANY);
    ck_assert_int_eq(tcp_bind(l, IP_ANY_TYPE, 7), ERR_OK);
    l = tcp_listen(l);
    ck_assert_ptr_nonnull(l);
    ck_assert_uint_eq(run(60000), 0);
    assert_quiet();
    tcp_close(l);
    /* Nor an interface once its start-up is over. */
    te_up(true, true);
    run_until_quiet(20000);
    ck_assert_uint_eq(run(600000), 0);
}
END_TEST

/* ---- TCP ----------------------------------------------------------------------------------- */

static struct tcp_pcb *accepted;

static err_t on_accept(void *arg, struct tcp_pcb *pcb, err_t err)
{
    (void)arg;
    ck_assert_int_eq(err, ERR_OK);
    accepted = pcb;
    return ERR_OK;
}

static bool connected;

static err_t on_connected(void *arg, struct tcp_pcb *pcb, err_t err)
{
    (void)arg;
    (void)pcb;
    ck_assert_int_eq(err, ERR_OK);
    connected = true;
    return ERR_OK;
}

START_TEST(tcp_timer_follows_pcbs)
{
    lo_quiet();
    struct tcp_pcb *l = tcp_new_ip_type(IPADDR_TYPE_V4);
    ck_assert_int_eq(tcp_bind(l, IP4_ADDR_ANY, 7), ERR_OK);
    l = tcp_listen(l);
    tcp_accept(l, on_accept);
    struct tcp_pcb *c = tcp_new_ip_type(IPADDR_TYPE_V4);
    ip_addr_t lo4 = ip4_of(W_IP4(127, 0, 0, 1));
    uint64_t idle_since = now_ms(); /* the handshake's are the last segments counted */
    ck_assert_int_eq(tcp_connect(c, &lo4, 7, on_connected), ERR_OK);
    run(1000);
    ck_assert(connected);
    ck_assert_ptr_nonnull(accepted);
    /* An open connection: lwIP's TCP timer runs (every 250 ms). */
    ck_assert_uint_ge(run(10000), 39);
    tcp_close(c); /* the active closer ends in TIME-WAIT */
    tcp_close(accepted);
    run(5000);
    ck_assert_ptr_nonnull(tcp_tw_pcbs);
    ck_assert_ptr_null(tcp_active_pcbs);
    /* TIME-WAIT lasts 2 x TCP_MSL from the last segment lwIP counted (its
     * own close stops the count: TF_RXCLOSED), then the timer stops. */
    run_until_quiet(2 * TCP_MSL);
    ck_assert_uint_ge(now_ms() - idle_since, 2 * TCP_MSL);
    ck_assert_uint_le(now_ms() - idle_since, 2 * TCP_MSL + 12000);
    ck_assert_ptr_null(tcp_tw_pcbs);
    tcp_close(l);
    ck_assert_uint_eq(run(60000), 0);
}
END_TEST

/* ---- ARP ----------------------------------------------------------------------------------- */

START_TEST(arp_link_up_is_cheap)
{
    lo_quiet();
    te_up(true, false);
    ck_assert_uint_eq(count(0, arp_request_for, TE_IP), 0);
    /* The gratuitous ARP at link-up: a few ticks in case an entry waits. */
    ck_assert_uint_le(run_until_quiet(10000), ARP_BUSY_MS);
    ck_assert_uint_eq(run(600000), 0);
}
END_TEST

START_TEST(arp_pending_retries)
{
    te_quiet(true, false);
    size_t mark = nsent;
    uint64_t t0 = now_ms();
    ip_addr_t silent = ip4_of(SILENT_IP);
    send_udp(&silent);
    run(10000);
    /* As lwIP: the request at once, then one per second, 5 in all; the
     * entry (and the queued datagram) goes at the fifth tick. */
    uint64_t t[8];
    ck_assert_uint_eq(find(mark, arp_request_for, SILENT_IP, t, 8), 5);
    ck_assert_uint_eq(t[0], t0);
    for (int i = 1; i < 5; i++)
        ck_assert_uint_eq(t[i] - t[i - 1], 1000);
    ck_assert_uint_eq(lwip_stats.memp[MEMP_ARP_QUEUE]->used, 0);
    assert_quiet();
}
END_TEST

START_TEST(arp_stable_entry_ages)
{
    te_quiet(true, false);
    ip_addr_t peer = ip4_of(PEER_IP);
    send_udp(&peer);
    inject_arp_reply(PEER_IP);
    uint64_t learnt = now_ms();
    ck_assert(arp_has(PEER_IP));
    /* Ageing: a wake-up per 10 s instead of one per second. */
    unsigned wakeups = run(120000);
    ck_assert_uint_le(wakeups, 5 + 13);
    ck_assert(arp_has(PEER_IP));
    run(learnt + 295000 - now_ms());
    ck_assert(arp_has(PEER_IP));
    run(learnt + 311000 - now_ms());
    ck_assert(!arp_has(PEER_IP)); /* ARP_MAXAGE: 300 s, in 10 s steps */
    run_until_quiet(10000);
    ck_assert_uint_eq(run(600000), 0);
}
END_TEST

START_TEST(arp_rerequest_when_used_late)
{
    te_quiet(true, false);
    ip_addr_t peer = ip4_of(PEER_IP);
    send_udp(&peer);
    inject_arp_reply(PEER_IP);
    uint64_t learnt = now_ms();
    run(285000);
    /* Used near the end of its life: lwIP asks again before it expires. */
    size_t mark = nsent;
    send_udp(&peer);
    ck_assert_uint_eq(count(mark, arp_request_for, PEER_IP), 1);
    run(500);
    inject_arp_reply(PEER_IP);
    run(learnt + 330000 - now_ms());
    ck_assert(arp_has(PEER_IP)); /* refreshed: lives on */
    ck_assert_uint_eq(count(mark, arp_request_for, PEER_IP), 1);
}
END_TEST

/* ---- IGMP and MLD -------------------------------------------------------------------------- */

START_TEST(igmp_join_and_query)
{
    te_quiet(true, false);
    const uint32_t group = W_IP4(224, 1, 2, 3);
    ip4_addr_t g;
    ip4_addr_set_u32(&g, lwip_htonl(group));
    size_t mark = nsent;
    uint64_t t0 = now_ms(), t[4];
    ck_assert_int_eq(igmp_joingroup_netif(&te, &g), ERR_OK);
    run(1000);
    /* A report at once and the delayed one within 500 ms. */
    ck_assert_uint_eq(find(mark, igmp_report_for, group, t, 4), 2);
    ck_assert_uint_eq(t[0], t0);
    ck_assert_uint_le(t[1] - t0, 500);
    run_until_quiet(10000); /* ARP's ticks after the reports' destinations */
    /* A general query with 1 s maximum response time: answered in time. */
    uint8_t q[8] = {0x11, 10}, f[64];
    w_put16(q + 2, w_fold(w_sum(0, q, 8)));
    const uint8_t mc_mac[6] = {0x01, 0x00, 0x5e, 0, 0, 1};
    mark = nsent;
    t0 = now_ms();
    inject(f, ip4_packet(f, mc_mac, PEER_IP, W_IP4(224, 0, 0, 1), 2, 1, 0, q, 8));
    run(2000);
    ck_assert_uint_eq(find(mark, igmp_report_for, group, t, 4), 1);
    ck_assert_uint_le(t[0] - t0, 1000);
    run_until_quiet(10000);
    ck_assert_uint_eq(run(600000), 0);
}
END_TEST

START_TEST(mld_join)
{
    te_quiet(false, true);
    ip6_addr_t g;
    IP6_ADDR(&g, PP_HTONL(0xff020000ul), 0, 0, PP_HTONL(0x00001234ul));
    size_t mark = nsent;
    uint64_t t0 = now_ms(), t[4];
    ck_assert_int_eq(mld6_joingroup_netif(&te, &g), ERR_OK);
    run(1000);
    ck_assert_uint_eq(find(mark, icmp6_type, 131, t, 4), 2); /* MLD report, and again */
    ck_assert_uint_eq(t[0], t0);
    ck_assert_uint_le(t[1] - t0, 500);
    run_until_quiet(10000);
    ck_assert_uint_eq(run(600000), 0);
}
END_TEST

/* ---- ND6 ----------------------------------------------------------------------------------- */

START_TEST(nd6_start_up)
{
    lo_quiet();
    te_up(false, true);
    run_until_quiet(20000);
    /* DAD, then the address is usable; three router solicitations 4 s apart. */
    ck_assert(ip6_addr_ispreferred(netif_ip6_addr_state(&te, 0)));
    uint64_t t[8];
    ck_assert_uint_ge(count(0, icmp6_type, 135), 1); /* DAD's neighbour solicitation */
    ck_assert_uint_eq(find(0, icmp6_type, 133, t, 8), 3);
    ck_assert_uint_eq(t[1] - t[0], 4000);
    ck_assert_uint_eq(t[2] - t[1], 4000);
    ck_assert_uint_eq(run(600000), 0);
}
END_TEST

START_TEST(nd6_resolution_and_reachability)
{
    te_quiet(false, true);
    ip_addr_t peer = peer6();
    /* Nobody answers: three solicitations a second apart, then lwIP gives up. */
    size_t mark = nsent;
    uint64_t t0 = now_ms(), t[8];
    send_udp(&peer);
    run(10000);
    ck_assert_uint_eq(find(mark, icmp6_type, 135, t, 8), 3);
    ck_assert_uint_eq(t[0], t0);
    ck_assert_uint_eq(t[1] - t[0], 1000); /* nd6_tmr sends the others */
    ck_assert_uint_eq(t[2] - t[1], 1000);
    ck_assert_uint_eq(neighbor_state(), ND6_NO_ENTRY);
    run_until_quiet(10000);

    /* It answers: reachable for 30 s (in 10 s steps), then stale, which
     * needs no timer. */
    send_udp(&peer);
    run(1500);
    uint8_t f[128];
    w_ip6_t target = w_ip6_linklocal(peer_mac), mine = w_ip6_linklocal(te_mac);
    inject(f, w_na(f, te_mac, peer_mac, &target, &mine));
    uint64_t reached = now_ms();
    ck_assert_uint_eq(neighbor_state(), ND6_REACHABLE);
    run(19000);
    ck_assert_uint_eq(neighbor_state(), ND6_REACHABLE);
    run(reached + 41000 - now_ms());
    ck_assert_uint_eq(neighbor_state(), ND6_STALE);
    run_until_quiet(10000);
    ck_assert_uint_eq(run(600000), 0);
    ck_assert_uint_eq(neighbor_state(), ND6_STALE);
}
END_TEST

START_TEST(nd6_slaac_lifetimes)
{
    te_quiet(false, true);
    /* Not a default router; a prefix valid 100 s, preferred 50 s. */
    inject_ra(0, 100, 50);
    uint64_t t0 = now_ms();
    run(5000);
    int i = slaac_slot();
    ck_assert_int_ge(i, 0);
    ck_assert(ip6_addr_ispreferred(netif_ip6_addr_state(&te, i)));
    /* While only lifetimes count down: a wake-up per 10 s. */
    unsigned wakeups = run(t0 + 39000 - now_ms());
    ck_assert_uint_le(wakeups, 8);
    ck_assert(ip6_addr_ispreferred(netif_ip6_addr_state(&te, i)));
    run(t0 + 61000 - now_ms());
    ck_assert(ip6_addr_isdeprecated(netif_ip6_addr_state(&te, i)));
    run(t0 + 89000 - now_ms());
    ck_assert_int_eq(slaac_slot(), i);
    run(t0 + 111000 - now_ms());
    ck_assert_int_eq(slaac_slot(), -1); /* expired */
    run_until_quiet(20000);
    ck_assert_uint_eq(run(600000), 0);
}
END_TEST

/* ---- DHCP ---------------------------------------------------------------------------------- */

START_TEST(dhcp_discover_bind_renew)
{
    lo_quiet();
    te_up(false, false);
    uint64_t t0 = now_ms(), t[8];
    ck_assert_int_eq(dhcp_start(&te), ERR_OK);
    run(15000);
    /* DISCOVER at once, then after 2, 4 and 8 s (lwIP's back-off). */
    ck_assert_uint_eq(find(0, dhcp_type, 1, t, 8), 4);
    ck_assert_uint_eq(t[0], t0);
    ck_assert_uint_eq(t[1] - t[0], 2000);
    ck_assert_uint_eq(t[2] - t[1], 4000);
    ck_assert_uint_eq(t[3] - t[2], 8000);

    inject_dhcp(2, dhcp_last_xid(), 120); /* OFFER */
    ck_assert_uint_eq(count(0, dhcp_type, 3), 1); /* REQUEST */
    inject_dhcp(5, dhcp_last_xid(), 120); /* ACK; lwIP checks the address by ARP */
    run(3000);
    ck_assert(dhcp_supplied_address(&te));
    uint64_t bound = now_ms();
    inject_arp_reply(PEER_IP); /* the renewal goes to the server by unicast */
    size_t mark = nsent;
    /* Bound: the lease is timed (T1 60 s), the server's ARP entry ages. */
    unsigned wakeups = run(57000);
    ck_assert_uint_le(wakeups, 5 + 1 + 6);
    ck_assert_uint_eq(count(mark, dhcp_type, 3), 0);
    run(4000);
    ck_assert_uint_eq(find(mark, dhcp_type, 3, t, 8), 1);
    ck_assert_uint_ge(t[0], bound - 3000 + 60000);
    ck_assert_uint_le(t[0], bound + 60000);
    inject_dhcp(5, dhcp_last_xid(), 120);
    run(1000);
    ck_assert(dhcp_supplied_address(&te));
    dhcp_release_and_stop(&te);
    run_until_quiet(320000); /* the server's ARP entry expires too */
    ck_assert_uint_eq(run(600000), 0);
}
END_TEST

/* ---- Reassembly ---------------------------------------------------------------------------- */

START_TEST(ip4_reassembly_times_out)
{
    te_quiet(true, false);
    uint8_t payload[64] = {0}, f[200];
    w_put16(payload, 9); /* UDP header of the first fragment */
    w_put16(payload + 2, 9);
    w_put16(payload + 4, 200);
    inject(f, ip4_packet(f, te_mac, PEER_IP, TE_IP, 17, 64, 0x2000 /* MF */, payload, 64));
    uint64_t t0 = now_ms();
    ck_assert_uint_eq(lwip_stats.memp[MEMP_REASSDATA]->used, 1);
    run(14900);
    ck_assert_uint_eq(lwip_stats.memp[MEMP_REASSDATA]->used, 1);
    run(t0 + 16100 - now_ms());
    ck_assert_uint_eq(lwip_stats.memp[MEMP_REASSDATA]->used, 0);
    inject_arp_reply(PEER_IP); /* the ICMP error waits for ARP */
    run(100);
    ck_assert_uint_eq(count(0, icmp4_type, 11), 1); /* time exceeded */
    run_until_quiet(320000);                        /* the peer's ARP entry ages out */
    ck_assert_uint_eq(run(60000), 0);
}
END_TEST

START_TEST(ip6_reassembly_times_out)
{
    te_quiet(false, true);
    uint8_t m[8 + 64] = {17, 0, 0, 1 /* offset 0, M */}, f[200];
    w_put32(m + 4, 77);
    uint8_t *ip;
    size_t n = w_eth(f, te_mac, peer_mac, W_ETH_IP6);
    ip = f + n;
    memset(ip, 0, 40);
    ip[0] = 0x60;
    w_put16(ip + 4, sizeof m);
    ip[6] = 44; /* fragment header */
    ip[7] = 64;
    w_ip6_t src = w_ip6_linklocal(peer_mac), dst = w_ip6_linklocal(te_mac);
    memcpy(ip + 8, src.b, 16);
    memcpy(ip + 24, dst.b, 16);
    memcpy(ip + 40, m, sizeof m);
    inject(f, n + 40 + sizeof m);
    uint64_t t0 = now_ms();
    ck_assert_uint_eq(lwip_stats.memp[MEMP_IP6_REASSDATA]->used, 1);
    run(59900);
    ck_assert_uint_eq(lwip_stats.memp[MEMP_IP6_REASSDATA]->used, 1);
    run(t0 + 61100 - now_ms());
    ck_assert_uint_eq(lwip_stats.memp[MEMP_IP6_REASSDATA]->used, 0);
    run_until_quiet(20000);
    ck_assert_uint_eq(run(60000), 0);
}
END_TEST

/* ---- Runner -------------------------------------------------------------------------------- */

static Suite *lwip_timers_suite(void)
{
    Suite *s = suite_create("lwip_timers");
    TCase *tc = tcase_create("timers");
    tcase_add_checked_fixture(tc, setup, NULL);
    tcase_add_test(tc, idle_loopback);
    tcase_add_test(tc, idle_as_netsrv);
    tcase_add_test(tc, tcp_timer_follows_pcbs);
    tcase_add_test(tc, arp_link_up_is_cheap);
    tcase_add_test(tc, arp_pending_retries);
    tcase_add_test(tc, arp_stable_entry_ages);
    tcase_add_test(tc, arp_rerequest_when_used_late);
    tcase_add_test(tc, igmp_join_and_query);
    tcase_add_test(tc, mld_join);
    tcase_add_test(tc, nd6_start_up);
    tcase_add_test(tc, nd6_resolution_and_reachability);
    tcase_add_test(tc, nd6_slaac_lifetimes);
    tcase_add_test(tc, dhcp_discover_bind_renew);
    tcase_add_test(tc, ip4_reassembly_times_out);
    tcase_add_test(tc, ip6_reassembly_times_out);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(lwip_timers_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

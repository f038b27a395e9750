/*
 * test_netsrv.c - proves netsrv (src/components/netsrv) as a task in the
 * simulator, with a fake NIC driver task that plays the wire (fake_nic.c)
 * and the test as netsrv.idl client:
 *
 *  - start-up: the NIC session opens with the configured geometry; the
 *    static address, gateway, MAC, MTU, flags, the loopback interface, the
 *    IPv6 link-local address, lwIP's memory and protocol statistics and the
 *    loop statistics are reported through netsrv.idl;
 *  - ARP: netsrv answers an ARP request for its address (and only for it);
 *  - ICMP: netsrv answers an echo request injected on RX, byte for byte;
 *  - ping (netsrv.idl): to a peer on the wire, to a silent address (all
 *    lost), over loopback (127.0.0.1, ::1, its own address, nothing on the
 *    wire), IPv6 to the peer's link-local address; bad arguments (EINVAL),
 *    too many at once (EBUSY, while the others go on), no route
 *    (ENETUNREACH);
 *  - IPv6: neighbor solicitation answered, ICMPv6 echo answered, SLAAC from
 *    a router advertisement;
 *  - counters: rx/tx packets and bytes move by exactly what was exchanged;
 *    runt and oversized frames are rx_errors; bad IP and ICMP checksums are
 *    lwIP's chkerr and get no answer; hostile descriptors (outside the
 *    region, length 0, longer than a buffer, wrapping, not a buffer start,
 *    a buffer handed back twice) and an impossible tail are ring_errors,
 *    and netsrv keeps working; with every TX buffer held by the driver,
 *    frames are tx_drops and traffic resumes once buffers come back;
 *  - signalling: the driver never waits in vain for a signal netsrv owed it
 *    (fake_nic counts lost wake-ups);
 *  - one thread: a call into lwIP from another thread aborts
 *    (LWIP_ASSERT_CORE_LOCKED);
 *  - idle: with nothing to do (and no NIC driver to watch) the loop waits
 *    with no timeout, before and after pings ran their timers;
 *  - start-up errors: bad arguments end netsrv with status 2 and a message;
 *    a missing endpoint with status 1; a missing NIC capability or a
 *    refused open leaves that NIC out and netsrv runs; a second netsrv in
 *    the same address space is refused.
 *
 * Each test runs in its own process (Check's fork mode): lwIP's state is
 * global, so one netsrv per process. Network safety: every frame stays
 * between netsrv and the fake driver inside this process (10.0.0.0/24,
 * fe80::/64, 2001:db8:1::/64 exist only on that fake wire).
 */
#include "fake_nic.h"
#include "wire.h"

#include "lwip/timeouts.h"

#include <check.h>
#include <ferry/mk.h>
#include <ferry/sim.h>
#include <netsrv_client.h>
#include <netsrv_component.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MS 1000000ull
#define CALL (5000 * MS)
#define NETSRV_PINGS_MAX_TEST 4 /* netsrv's concurrent ping slots (NETSRV_PINGS_MAX) */

static mk_cap_t nic_client; /* send capability to the fake driver's endpoint */
static mk_cap_t srv;        /* send capability to netsrv's endpoint */
static mk_cap_t srv_task;
static uint8_t frame[FNIC_FRAME_MAX];
static uint8_t got[FNIC_FRAME_MAX];

/* ---- Fixture ----------------------------------------------------------------------------- */

static void setup(void)
{
    ck_assert_int_eq(sim_init(), MK_OK);
    nic_client = fnic_setup();
}

static void teardown(void)
{
    sim_shutdown();
}

/* Start netsrv (argv[0] "netsrv" + args) as task `name`, serving endpoint
 * `ep_name` (NULL: give it none) with the fake driver as "nic0". */
static mk_cap_t start_netsrv_as(const char *name, const char *ep_name, const char *const *args,
                                mk_cap_t *client)
{
    mk_cap_t ep, task;
    ck_assert_int_eq(mk_task_create(name, &task), MK_OK);
    if (ep_name != NULL) {
        ck_assert_int_eq(mk_ep_create(&ep), MK_OK);
        ck_assert_int_eq(mk_cap_mint(ep, MK_RIGHT_SEND, 7, client), MK_OK);
        ck_assert_int_eq(mk_task_give(task, ep, MK_RIGHT_RECV, 0, ep_name, NULL), MK_OK);
    }
    ck_assert_int_eq(mk_task_give(task, nic_client, MK_RIGHT_SEND, 1, "nic0", NULL), MK_OK);
    char *argv[24] = {"netsrv"};
    int argc = 1;
    for (; args[argc - 1] != NULL && argc < 23; argc++)
        argv[argc] = (char *)args[argc - 1];
    ck_assert_int_eq(mk_task_start(task, netsrv_main, argc, argv), MK_OK);
    return task;
}

/* Start netsrv and wait until it serves (start-up is over then). */
static void netsrv_up(const char *const *args)
{
    srv_task = start_netsrv_as("netsrv", "netsrv", args, &srv);
    uint32_t n = 0;
    ck_assert_int_eq(netsrv_get_netif_count(srv, CALL, &n), 0);
}

static const char *const static_args[] = {"--nic", "nic0",     "--ip", "10.0.0.1/24",
                                          "--gw",  "10.0.0.2", NULL};

static netsrv_counters_t counters(void)
{
    char name[NETSRV_NAME_MAX + 1];
    netsrv_netif_info_t ni;
    netsrv_counters_t c;
    ck_assert_int_eq(netsrv_get_netif(srv, CALL, 0, name, &ni, &c), 0);
    return c;
}

static netsrv_proto_stats_t proto(const char *which)
{
    char name[NETSRV_STAT_NAME_MAX + 1];
    netsrv_proto_stats_t st;
    for (uint32_t i = 0; netsrv_get_proto_stats(srv, CALL, i, name, &st) == 0; i++)
        if (strcmp(name, which) == 0)
            return st;
    ck_abort_msg("no protocol statistics '%s'", which);
    return st;
}

/* Poll the interface counters until `field` reaches `want` (2 s). */
#define WAIT_COUNTER(field, want)                                     \
    do {                                                              \
        uint64_t deadline_ = mk_time_ns() + 2000 * MS;                \
        while (counters().field < (want) && mk_time_ns() < deadline_) \
            usleep(2000);                                             \
        ck_assert_uint_eq(counters().field, (want));                  \
    } while (0)

static void set_flag(bool *flag, bool v)
{
    pthread_mutex_lock(&fnic.lock);
    *flag = v;
    pthread_mutex_unlock(&fnic.lock);
    fnic_kick();
}

/* The fake driver never slept through a signal netsrv owed it. */
static void check_no_lost_wakeup(void)
{
    pthread_mutex_lock(&fnic.lock);
    uint32_t lost = fnic.lost_wakeups;
    pthread_mutex_unlock(&fnic.lock);
    ck_assert_uint_eq(lost, 0);
}

/* ---- Frame matchers ---------------------------------------------------------------------- */

static bool is_arp_reply(const uint8_t *f, size_t len, const void *arg)
{
    (void)arg;
    w_arp_info_t a;
    return w_parse_arp(f, len, &a) && a.op == 2;
}

typedef struct echo_want {
    uint8_t type;
    uint32_t src, dst;
    uint16_t id, seq;
} echo_want_t;

static bool is_echo(const uint8_t *f, size_t len, const void *arg)
{
    const echo_want_t *w = arg;
    w_icmp_info_t i;
    return w_parse_icmp_echo(f, len, &i) && i.type == w->type && i.src == w->src &&
           i.dst == w->dst && (w->id == 0 || (i.id == w->id && i.seq == w->seq));
}

static bool is_icmp6_type(const uint8_t *f, size_t len, const void *arg)
{
    w_icmp6_info_t i;
    return w_parse_icmp6(f, len, &i) && i.msg[0] == *(const uint8_t *)arg;
}

/* Inject an echo request from the peer and wait for netsrv's reply. */
static void echo_exchange(uint16_t id, uint16_t seq, size_t size)
{
    uint32_t mark = fnic_mark();
    size_t n = w_icmp_echo(frame, fnic_mac, peer_mac, W_PEER_IP, W_NETSRV_IP, 8, id, seq, size, 0);
    fnic_inject(frame, n);
    echo_want_t w = {0, W_NETSRV_IP, W_PEER_IP, id, seq};
    size_t len = fnic_wait(&mark, is_echo, &w, 2000 * MS, got);
    ck_assert_msg(len == n, "no echo reply (got %zu bytes)", len);
    ck_assert_mem_eq(got, peer_mac, 6);
    ck_assert_mem_eq(got + 6, fnic_mac, 6);
    ck_assert_mem_eq(got + W_ETH_HDR + 28, frame + W_ETH_HDR + 28, size);
}

static netsrv_addr_t ip4(uint32_t a)
{
    return (netsrv_addr_t){.family = NETSRV_AF_INET, .lo = a};
}

static netsrv_ping_result_t ping(netsrv_addr_t dst, uint32_t count, uint32_t timeout_ms)
{
    netsrv_ping_result_t r;
    int32_t st = netsrv_ping(srv, CALL + count * 20 * MS + timeout_ms * MS, &dst, count, 56, 20,
                             timeout_ms, &r);
    ck_assert_msg(st == 0, "ping failed: %d", st);
    return r;
}

/* ---- Start-up and reporting -------------------------------------------------------------- */

START_TEST(test_reports)
{
    netsrv_up(static_args);
    uint32_t n = 0;
    ck_assert_int_eq(netsrv_get_netif_count(srv, CALL, &n), 0);
    ck_assert_uint_eq(n, 2);

    char name[NETSRV_NAME_MAX + 1];
    netsrv_netif_info_t ni;
    netsrv_counters_t c;
    ck_assert_int_eq(netsrv_get_netif(srv, CALL, 0, name, &ni, &c), 0);
    ck_assert_str_eq(name, "nic0");
    ck_assert_uint_eq(ni.mac, 0x020000000001ull);
    ck_assert_uint_eq(ni.mtu, 1500);
    ck_assert_uint_eq(ni.ipv4_addr, W_NETSRV_IP);
    ck_assert_uint_eq(ni.ipv4_mask, 0xffffff00u);
    ck_assert_uint_eq(ni.ipv4_gw, W_PEER_IP);
    ck_assert_uint_eq(ni.flags, NETSRV_IF_UP | NETSRV_IF_LINK_UP | NETSRV_IF_DEFAULT |
                                    NETSRV_IF_IP6_AUTOCONFIG);

    ck_assert_int_eq(netsrv_get_netif(srv, CALL, 1, name, &ni, &c), 0);
    ck_assert_str_eq(name, "lo");
    ck_assert_uint_eq(ni.ipv4_addr, W_IP4(127, 0, 0, 1));
    ck_assert_uint_eq(ni.flags & (NETSRV_IF_UP | NETSRV_IF_LOOPBACK),
                      NETSRV_IF_UP | NETSRV_IF_LOOPBACK);
    ck_assert_int_eq(netsrv_get_netif(srv, CALL, 2, name, &ni, &c), NETSRV_ENOENT);

    /* IPv6: the link-local address from the MAC, and ::1 on lo. */
    netsrv_ip6_addr_t a6[NETSRV_IP6_ADDRS];
    uint32_t n6 = 0;
    ck_assert_int_eq(netsrv_get_netif_ip6(srv, CALL, 0, a6, &n6), 0);
    ck_assert_uint_ge(n6, 1);
    ck_assert_uint_eq(a6[0].hi, 0xfe80000000000000ull);
    ck_assert_uint_eq(a6[0].lo, 0x000000fffe000001ull);
    ck_assert_int_eq(netsrv_get_netif_ip6(srv, CALL, 1, a6, &n6), 0);
    ck_assert_uint_eq(a6[0].lo, 1);
    ck_assert_int_eq(netsrv_get_netif_ip6(srv, CALL, 9, a6, &n6), NETSRV_ENOENT);

    /* lwIP's statistics: the heap first, then every pool, then ENOENT. */
    netsrv_mem_stats_t ms;
    char sname[NETSRV_STAT_NAME_MAX + 1];
    ck_assert_int_eq(netsrv_get_mem_stats(srv, CALL, 0, sname, &ms), 0);
    ck_assert_str_eq(sname, "MEM");
    ck_assert_uint_gt(ms.avail, 0);
    bool pbuf_pool = false;
    uint32_t i = 1;
    for (; netsrv_get_mem_stats(srv, CALL, i, sname, &ms) == 0; i++)
        if (strcmp(sname, "PBUF_POOL") == 0) {
            pbuf_pool = true;
            ck_assert_uint_eq(ms.avail, 256); /* PBUF_POOL_SIZE */
        }
    ck_assert(pbuf_pool);
    ck_assert_uint_gt(i, 10);
    const char *protos[] = {"LINK", "ETHARP", "IP_FRAG",  "IP",    "ICMP", "UDP",
                            "TCP",  "IP6",    "IP6_FRAG", "ICMP6", "ND6"};
    netsrv_proto_stats_t ps;
    for (i = 0; i < sizeof protos / sizeof protos[0]; i++) {
        ck_assert_int_eq(netsrv_get_proto_stats(srv, CALL, i, sname, &ps), 0);
        ck_assert_str_eq(sname, protos[i]);
    }
    ck_assert_int_eq(netsrv_get_proto_stats(srv, CALL, i, sname, &ps), NETSRV_ENOENT);

    netsrv_loop_stats_t ls;
    ck_assert_int_eq(netsrv_get_loop_stats(srv, CALL, &ls), 0);
    ck_assert_uint_gt(ls.iterations, 0);
    ck_assert_uint_ge(ls.requests, 10);
    ck_assert_uint_gt(ls.uptime_ns, 0);
    ck_assert_uint_eq(ls.stray_signals, 0);

    /* A request of another interface (bad hash) is refused; netsrv goes on. */
    mk_msg_t m = {.label = 1, .words = 1, .mr = {0x1234}};
    ck_assert_int_eq(mk_call(srv, &m, CALL), MK_OK);
    ck_assert_int_eq(idl_label_to_status(m.label), IDL_EHASH);
    ck_assert_int_eq(netsrv_get_netif_count(srv, CALL, &n), 0);
}
END_TEST

/* ---- ARP and ICMP ------------------------------------------------------------------------ */

START_TEST(test_arp)
{
    netsrv_up(static_args);
    netsrv_counters_t before = counters();
    uint32_t mark = fnic_mark();
    const uint8_t bcast[6] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, zero[6] = {0};
    /* For someone else: no answer. */
    size_t n = w_arp(frame, 1, bcast, peer_mac, W_PEER_IP, zero, W_IP4(10, 0, 0, 9));
    fnic_inject(frame, n);
    /* For netsrv: an answer with its MAC, to the asker. */
    n = w_arp(frame, 1, bcast, peer_mac, W_PEER_IP, zero, W_NETSRV_IP);
    fnic_inject(frame, n);
    size_t len = fnic_wait(&mark, is_arp_reply, NULL, 2000 * MS, got);
    ck_assert_uint_eq(len, 42);
    w_arp_info_t a;
    ck_assert(w_parse_arp(got, len, &a));
    ck_assert_mem_eq(got, peer_mac, 6);
    ck_assert_mem_eq(a.sha, fnic_mac, 6);
    ck_assert_uint_eq(a.spa, W_NETSRV_IP);
    ck_assert_mem_eq(a.tha, peer_mac, 6);
    ck_assert_uint_eq(a.tpa, W_PEER_IP);
    ck_assert_uint_eq(fnic_wait(&mark, is_arp_reply, NULL, 200 * MS, got), 0); /* only one */
    netsrv_counters_t after = counters();
    ck_assert_uint_eq(after.rx_packets - before.rx_packets, 2);
    ck_assert_uint_eq(after.rx_bytes - before.rx_bytes, 84);
    ck_assert_uint_ge(after.tx_packets - before.tx_packets, 1);
    ck_assert_uint_eq(after.rx_errors + after.rx_drops + after.ring_errors, 0);
    check_no_lost_wakeup();
}
END_TEST

START_TEST(test_icmp_echo)
{
    set_flag(&fnic.respond, true); /* netsrv resolves the peer by ARP */
    netsrv_up(static_args);
    netsrv_proto_stats_t icmp0 = proto("ICMP");
    echo_exchange(0x1234, 1, 100);
    echo_exchange(0x1234, 2, 1472); /* a full-size frame */
    echo_exchange(0x1234, 3, 0);
    netsrv_proto_stats_t icmp1 = proto("ICMP");
    ck_assert_uint_eq(icmp1.recv - icmp0.recv, 3);
    ck_assert_uint_eq(icmp1.xmit - icmp0.xmit, 3);
    ck_assert_uint_eq(icmp1.chkerr, 0);
    check_no_lost_wakeup();
}
END_TEST

/* ---- Ping -------------------------------------------------------------------------------- */

START_TEST(test_ping_peer)
{
    set_flag(&fnic.respond, true);
    netsrv_up(static_args);
    netsrv_counters_t before = counters();
    netsrv_ping_result_t r = ping(ip4(W_PEER_IP), 5, 1000);
    ck_assert_uint_eq(r.transmitted, 5);
    ck_assert_uint_eq(r.received, 5);
    ck_assert_uint_eq(r.send_errors, 0);
    ck_assert_uint_gt(r.rtt_min_ns, 0);
    ck_assert_uint_le(r.rtt_min_ns, r.rtt_avg_ns);
    ck_assert_uint_le(r.rtt_avg_ns, r.rtt_max_ns);
    ck_assert_uint_lt(r.rtt_max_ns, 1000 * MS);
    netsrv_counters_t after = counters();
    ck_assert_uint_ge(after.tx_packets - before.tx_packets, 5);
    ck_assert_uint_ge(after.rx_packets - before.rx_packets, 5);

    /* Off the subnet: the request goes to the gateway's (the peer's) MAC;
     * the peer answers only for itself, so it stays unanswered. */
    uint32_t mark = fnic_mark();
    r = ping(ip4(W_IP4(192, 0, 2, 1)), 1, 200);
    ck_assert_uint_eq(r.transmitted, 1);
    ck_assert_uint_eq(r.received, 0);
    echo_want_t w = {8, W_NETSRV_IP, W_IP4(192, 0, 2, 1), 0, 0};
    ck_assert_uint_gt(fnic_wait(&mark, is_echo, &w, 1000 * MS, got), 0);
    ck_assert_mem_eq(got, peer_mac, 6); /* sent to the gateway */

    /* Nobody at 10.0.0.3: ARP stays unanswered, nothing comes back. */
    r = ping(ip4(W_SILENT_IP), 2, 200);
    ck_assert_uint_eq(r.received, 0);
    ck_assert_uint_eq(r.rtt_max_ns, 0);
    check_no_lost_wakeup();
}
END_TEST

START_TEST(test_ping_loopback)
{
    netsrv_up(static_args);
    uint32_t mark = fnic_mark();
    netsrv_ping_result_t r = ping(ip4(W_IP4(127, 0, 0, 1)), 3, 1000);
    ck_assert_uint_eq(r.received, 3);
    r = ping(ip4(W_NETSRV_IP), 3, 1000); /* its own address: looped back too */
    ck_assert_uint_eq(r.received, 3);
    netsrv_addr_t lo6 = {.family = NETSRV_AF_INET6, .hi = 0, .lo = 1};
    r = ping(lo6, 3, 1000);
    ck_assert_uint_eq(r.transmitted, 3);
    ck_assert_uint_eq(r.received, 3);
    /* None of it on the wire. */
    echo_want_t w = {8, W_NETSRV_IP, W_NETSRV_IP, 0, 0};
    ck_assert_uint_eq(fnic_wait(&mark, is_echo, &w, 100 * MS, got), 0);
}
END_TEST

/* Four pings keep every slot busy while a fifth is refused. */
static void slow_ping(void *arg)
{
    netsrv_ping_result_t *r = arg;
    netsrv_addr_t dst = ip4(W_SILENT_IP);
    if (netsrv_ping(srv, CALL, &dst, 1, 0, 1, 800, r) != 0)
        r->transmitted = 99;
}

START_TEST(test_ping_errors)
{
    netsrv_up(static_args);
    netsrv_ping_result_t r;
    netsrv_addr_t good = ip4(W_PEER_IP);
    ck_assert_int_eq(netsrv_ping(srv, CALL, &good, 0, 56, 10, 100, &r), NETSRV_EINVAL);
    ck_assert_int_eq(netsrv_ping(srv, CALL, &good, 1001, 56, 10, 100, &r), NETSRV_EINVAL);
    ck_assert_int_eq(netsrv_ping(srv, CALL, &good, 1, 1453, 10, 100, &r), NETSRV_EINVAL);
    ck_assert_int_eq(netsrv_ping(srv, CALL, &good, 1, 56, 0, 100, &r), NETSRV_EINVAL);
    ck_assert_int_eq(netsrv_ping(srv, CALL, &good, 1, 56, 10, 0, &r), NETSRV_EINVAL);
    ck_assert_int_eq(netsrv_ping(srv, CALL, &good, 1, 56, 10, 60001, &r), NETSRV_EINVAL);
    netsrv_addr_t bad[] = {
        {.family = 7, .lo = W_PEER_IP},
        {.family = NETSRV_AF_INET, .lo = 0},
        {.family = NETSRV_AF_INET, .lo = 0xffffffffu},
        {.family = NETSRV_AF_INET, .lo = W_IP4(224, 0, 0, 1)},
        {.family = NETSRV_AF_INET, .lo = 1ull << 32},
        {.family = NETSRV_AF_INET, .hi = 1, .lo = W_PEER_IP},
        {.family = NETSRV_AF_INET6, .hi = 0, .lo = 0},
        {.family = NETSRV_AF_INET6, .hi = 0xff02000000000000ull, .lo = 1},
        {.family = NETSRV_AF_INET6, .hi = 0xfe80000000000000ull, .lo = 2}, /* no scope */
        {.family = NETSRV_AF_INET6, .scope = 9, .hi = 0xfe80000000000000ull, .lo = 2},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        ck_assert_msg(netsrv_ping(srv, CALL, &bad[i], 1, 56, 10, 100, &r) == NETSRV_EINVAL,
                      "address %zu accepted", i);

    netsrv_ping_result_t res[NETSRV_PINGS_MAX_TEST];
    uint32_t tids[NETSRV_PINGS_MAX_TEST];
    netsrv_loop_stats_t ls0, ls;
    ck_assert_int_eq(netsrv_get_loop_stats(srv, CALL, &ls0), 0);
    for (int i = 0; i < NETSRV_PINGS_MAX_TEST; i++) {
        memset(&res[i], 0, sizeof res[i]);
        ck_assert_int_eq(mk_thread_create(slow_ping, &res[i], &tids[i]), MK_OK);
    }
    /* Wait until all four are in flight: netsrv counted their requests
     * (each of these polls is a request too, counted before it is served). */
    uint64_t deadline = mk_time_ns() + 2000 * MS, polls = 0;
    do {
        usleep(5000);
        ck_assert_int_eq(netsrv_get_loop_stats(srv, CALL, &ls), 0);
        polls++;
    } while (ls.requests - ls0.requests - polls < NETSRV_PINGS_MAX_TEST && mk_time_ns() < deadline);
    ck_assert_int_eq(netsrv_ping(srv, CALL, &good, 1, 56, 10, 100, &r), NETSRV_EBUSY);
    uint32_t count;
    ck_assert_int_eq(netsrv_get_netif_count(srv, CALL, &count), 0); /* still serving */
    for (int i = 0; i < NETSRV_PINGS_MAX_TEST; i++) {
        ck_assert_int_eq(mk_thread_join(tids[i]), MK_OK);
        ck_assert_uint_eq(res[i].transmitted, 1);
        ck_assert_uint_eq(res[i].received, 0);
    }
    /* Slots free again. */
    set_flag(&fnic.respond, true);
    r = ping(good, 1, 1000);
    ck_assert_uint_eq(r.received, 1);
}
END_TEST

/* No NIC: only lo; anything off 127/8 is unreachable. */
START_TEST(test_no_nic)
{
    const char *const args[] = {NULL};
    netsrv_up(args);
    uint32_t n = 0;
    ck_assert_int_eq(netsrv_get_netif_count(srv, CALL, &n), 0);
    ck_assert_uint_eq(n, 1);
    netsrv_ping_result_t r;
    netsrv_addr_t dst = ip4(W_PEER_IP);
    ck_assert_int_eq(netsrv_ping(srv, CALL, &dst, 1, 56, 10, 100, &r), NETSRV_ENETUNREACH);
    r = ping(ip4(W_IP4(127, 0, 0, 1)), 2, 1000);
    ck_assert_uint_eq(r.received, 2);
}
END_TEST

/* Nothing to do, no timer: without a NIC (no driver to watch) netsrv's loop
 * waits with no timeout (loop_stats.idle_waits) from the start, as lwIP's
 * cyclic timers run only while they have work (src/lwip/timers.c); pings
 * run their timers, and afterwards every wait has no timeout again. */
static void assert_waits_untimed(void)
{
    netsrv_loop_stats_t a, b;
    ck_assert_int_eq(netsrv_get_loop_stats(srv, CALL, &a), 0);
    ck_assert_int_eq(netsrv_get_loop_stats(srv, CALL, &b), 0);
    ck_assert_uint_gt(b.iterations, a.iterations);
    ck_assert_uint_eq(b.idle_waits - a.idle_waits, b.iterations - a.iterations);
}

START_TEST(test_idle_no_timer)
{
    const char *const args[] = {NULL};
    netsrv_up(args);
    assert_waits_untimed();
    netsrv_loop_stats_t ls;
    ck_assert_int_eq(netsrv_get_loop_stats(srv, CALL, &ls), 0);
    ck_assert_uint_eq(ls.timer_wakeups, 0);
    netsrv_ping_result_t r = ping(ip4(W_IP4(127, 0, 0, 1)), 3, 1000);
    ck_assert_uint_eq(r.received, 3);
    netsrv_addr_t lo6 = {.family = NETSRV_AF_INET6, .hi = 0, .lo = 1};
    r = ping(lo6, 2, 1000);
    ck_assert_uint_eq(r.received, 2);
    ck_assert_int_eq(netsrv_get_loop_stats(srv, CALL, &ls), 0);
    ck_assert_uint_ge(ls.timer_wakeups, 3); /* the pings' intervals */
    assert_waits_untimed();
}
END_TEST

/* ---- Bad frames, hostile driver, TX exhaustion ------------------------------------------- */

START_TEST(test_bad_frames)
{
    set_flag(&fnic.respond, true);
    netsrv_up(static_args);
    echo_exchange(1, 1, 10); /* ARP settled: from now on RX is only what the test injects */
    netsrv_counters_t c0 = counters();
    netsrv_proto_stats_t ip0 = proto("IP"), icmp0 = proto("ICMP");
    uint32_t mark = fnic_mark();

    memset(frame, 0xab, sizeof frame);
    fnic_inject(frame, 10);   /* runt: not even an Ethernet header */
    fnic_inject(frame, 1600); /* longer than the link's largest frame (1514) */
    WAIT_COUNTER(rx_errors, c0.rx_errors + 2);

    size_t n1 =
        w_icmp_echo(frame, fnic_mac, peer_mac, W_PEER_IP, W_NETSRV_IP, 8, 2, 1, 20, W_BAD_IP_SUM);
    fnic_inject(frame, n1);
    size_t n2 =
        w_icmp_echo(frame, fnic_mac, peer_mac, W_PEER_IP, W_NETSRV_IP, 8, 2, 2, 20, W_BAD_ICMP_SUM);
    fnic_inject(frame, n2);
    WAIT_COUNTER(rx_packets, c0.rx_packets + 2);
    echo_exchange(2, 3, 20); /* still answering; the two before got no reply */
    echo_want_t w = {0, W_NETSRV_IP, W_PEER_IP, 0, 0};
    w_icmp_info_t info;
    size_t len = fnic_wait(&mark, is_echo, &w, 100 * MS, got);
    ck_assert(len > 0 && w_parse_icmp_echo(got, len, &info));
    ck_assert_uint_eq(info.seq, 3); /* the first reply after the bad ones is seq 3 */

    netsrv_counters_t c1 = counters();
    ck_assert_uint_eq(c1.rx_packets - c0.rx_packets, 3);
    ck_assert_uint_eq(c1.rx_bytes - c0.rx_bytes, n1 + n2 + n1);
    ck_assert_uint_eq(c1.rx_errors - c0.rx_errors, 2);
    ck_assert_uint_eq(c1.ring_errors, 0);
    ck_assert_uint_eq(proto("IP").chkerr - ip0.chkerr, 1);
    ck_assert_uint_eq(proto("ICMP").chkerr - icmp0.chkerr, 1);
    check_no_lost_wakeup();
}
END_TEST

START_TEST(test_hostile_descriptors)
{
    set_flag(&fnic.respond, true);
    netsrv_up(static_args);
    echo_exchange(1, 1, 10);
    netsrv_counters_t c0 = counters();
    ck_assert_uint_eq(c0.ring_errors, 0);
    const uint32_t area = 256 * 2048; /* the RX data area */
    pthread_mutex_lock(&fnic.lock);
    const uint32_t raw[][2] = {
        {area, 60},         /* outside the region */
        {2048, 0},          /* zero length */
        {2048, 4096},       /* longer than a buffer */
        {0xfffffff0u, 100}, /* offset + length wraps */
        {2048 + 64, 60},    /* inside, aligned, but not the start of a buffer */
        {100, 60},          /* misaligned */
    };
    for (size_t i = 0; i < sizeof raw / sizeof raw[0]; i++) {
        fnic.raw[fnic.nraw].offset = raw[i][0];
        fnic.raw[fnic.nraw++].len = raw[i][1];
    }
    pthread_mutex_unlock(&fnic.lock);
    fnic_kick();
    WAIT_COUNTER(ring_errors, c0.ring_errors + 6);

    /* A buffer handed back twice: the frame is taken once, the copy refused. */
    pthread_mutex_lock(&fnic.lock);
    fnic.twice = true;
    pthread_mutex_unlock(&fnic.lock);
    const uint8_t bcast[6] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, zero[6] = {0};
    uint32_t mark = fnic_mark();
    size_t n = w_arp(frame, 1, bcast, peer_mac, W_PEER_IP, zero, W_NETSRV_IP);
    fnic_inject(frame, n);
    WAIT_COUNTER(ring_errors, c0.ring_errors + 7);
    ck_assert_uint_eq(fnic_wait(&mark, is_arp_reply, NULL, 1000 * MS, got), 42);
    ck_assert_uint_eq(fnic_wait(&mark, is_arp_reply, NULL, 200 * MS, got), 0);

    /* An impossible tail: counted, nothing taken, no spinning. */
    netsrv_loop_stats_t ls0, ls1;
    ck_assert_int_eq(netsrv_get_loop_stats(srv, CALL, &ls0), 0);
    set_flag(&fnic.bad_tail, true);
    uint64_t deadline = mk_time_ns() + 2000 * MS;
    while (counters().ring_errors < c0.ring_errors + 8 && mk_time_ns() < deadline)
        usleep(2000);
    ck_assert_uint_ge(counters().ring_errors, c0.ring_errors + 8);
    usleep(200 * 1000);
    ck_assert_int_eq(netsrv_get_loop_stats(srv, CALL, &ls1), 0);
    ck_assert_uint_lt(ls1.iterations - ls0.iterations, 1000);

    /* The session goes on once the driver behaves. */
    echo_exchange(1, 2, 10);
    netsrv_counters_t c1 = counters();
    ck_assert_uint_eq(c1.rx_packets - c0.rx_packets, 2); /* the ARP request, the echo */
    ck_assert_uint_eq(c1.rx_errors, 0);
}
END_TEST

START_TEST(test_tx_exhaustion)
{
    pthread_mutex_lock(&fnic.lock);
    fnic.respond = true;
    fnic.hold_tx = true; /* the driver keeps every TX buffer */
    pthread_mutex_unlock(&fnic.lock);
    const char *const args[] = {"--nic", "nic0", "--ip", "10.0.0.1/24", "--bufs", "8", NULL};
    netsrv_up(args);
    size_t n = w_icmp_echo(frame, fnic_mac, peer_mac, W_PEER_IP, W_NETSRV_IP, 8, 5, 0, 10, 0);
    for (int i = 0; i < 20 && counters().tx_drops == 0; i++) {
        fnic_inject(frame, n);
        usleep(10 * 1000);
    }
    netsrv_counters_t c = counters();
    ck_assert_uint_gt(c.tx_drops, 0);
    /* Every frame netsrv queued reaches the driver (which takes them in its
     * own time), and then it holds all 8 buffers. */
    uint64_t deadline = mk_time_ns() + 2000 * MS;
    pthread_mutex_lock(&fnic.lock);
    while (fnic.held < 8 && mk_time_ns() < deadline) {
        pthread_mutex_unlock(&fnic.lock);
        usleep(2000);
        pthread_mutex_lock(&fnic.lock);
    }
    ck_assert_uint_eq(fnic.held, 8);
    ck_assert_uint_eq(fnic.nsent, c.tx_packets);
    fnic.release = true;
    pthread_mutex_unlock(&fnic.lock);
    fnic_kick();
    echo_exchange(6, 1, 10);
    ck_assert_uint_eq(counters().ring_errors, 0);
}
END_TEST

/* ---- IPv6 -------------------------------------------------------------------------------- */

/* Wait until interface 0 has `want` in state PREFERRED (5 s). */
static void wait_ip6(uint64_t hi, uint64_t lo)
{
    uint64_t deadline = mk_time_ns() + 5000 * MS;
    for (;;) {
        netsrv_ip6_addr_t a[NETSRV_IP6_ADDRS];
        uint32_t n = 0;
        ck_assert_int_eq(netsrv_get_netif_ip6(srv, CALL, 0, a, &n), 0);
        for (uint32_t i = 0; i < n; i++)
            if (a[i].hi == hi && a[i].lo == lo && a[i].state == NETSRV_IP6_PREFERRED)
                return;
        ck_assert_msg(mk_time_ns() < deadline, "IPv6 address %016llx%016llx not preferred",
                      (unsigned long long)hi, (unsigned long long)lo);
        usleep(20 * 1000);
    }
}

START_TEST(test_ipv6)
{
    set_flag(&fnic.respond, true);
    netsrv_up(static_args);
    wait_ip6(0xfe80000000000000ull, 0x000000fffe000001ull); /* DAD done */
    w_ip6_t mine = w_ip6_linklocal(fnic_mac), peer = w_ip6_linklocal(peer_mac);

    /* Neighbor solicitation -> advertisement. */
    uint32_t mark = fnic_mark();
    fnic_inject(frame, w_ns(frame, peer_mac, &peer, &mine));
    uint8_t type = 136;
    size_t len = fnic_wait(&mark, is_icmp6_type, &type, 2000 * MS, got);
    ck_assert_uint_gt(len, 0);
    w_icmp6_info_t i6;
    ck_assert(w_parse_icmp6(got, len, &i6));
    ck_assert_mem_eq(i6.msg + 8, mine.b, 16);
    ck_assert_mem_eq(i6.dst.b, peer.b, 16);
    ck_assert_uint_eq(i6.hop_limit, 255);

    /* ICMPv6 echo -> reply. */
    mark = fnic_mark();
    fnic_inject(frame, w_echo6(frame, fnic_mac, peer_mac, &peer, &mine, 128, 9, 1, 64));
    type = 129;
    len = fnic_wait(&mark, is_icmp6_type, &type, 2000 * MS, got);
    ck_assert_uint_gt(len, 0);
    ck_assert(w_parse_icmp6(got, len, &i6));
    ck_assert_uint_eq(i6.msg_len, 8 + 64);
    ck_assert_uint_eq(w_get16(i6.msg + 4), 9);

    /* ping6 to the peer's link-local address (scope: interface 0 + 1). */
    netsrv_addr_t dst = {.family = NETSRV_AF_INET6,
                         .scope = 1,
                         .hi = 0xfe80000000000000ull,
                         .lo = 0x000000fffe000002ull};
    netsrv_ping_result_t r = ping(dst, 3, 1000);
    ck_assert_uint_eq(r.received, 3);

    /* SLAAC: a router advertises 2001:db8:1::/64. */
    w_ip6_t prefix = {{0x20, 0x01, 0x0d, 0xb8, 0x00, 0x01}};
    fnic_inject(frame, w_ra(frame, peer_mac, &peer, &prefix));
    wait_ip6(0x20010db800010000ull, 0x000000fffe000001ull);
    check_no_lost_wakeup();
}
END_TEST

/* ---- Start-up errors --------------------------------------------------------------------- */

static int run_netsrv(const char *const *args)
{
    mk_cap_t client;
    mk_cap_t task = start_netsrv_as("netsrv", "netsrv", args, &client);
    int status = -100;
    ck_assert_int_eq(mk_task_wait(task, &status, CALL), MK_OK);
    return status;
}

START_TEST(test_bad_arguments)
{
    static const char *const bad[][8] = {
        {"--bogus", NULL},
        {"--nic", NULL},
        {"--ip", "dhcp", NULL},
        {"--nic", "nic0", "--ip", "10.0.0.1", NULL},
        {"--nic", "nic0", "--ip", "10.0.0.1/33", NULL},
        {"--nic", "nic0", "--ip", "10.0.0.256/24", NULL},
        {"--nic", "nic0", "--ip", "10.1/8", NULL},
        {"--nic", "nic0", "--ip", "10.0.0.0/24", NULL},
        {"--nic", "nic0", "--ip", "224.0.0.1/4", NULL},
        {"--nic", "nic0", "--gw", "10.0.0.2", NULL},
        {"--nic", "nic0", "--ip", "10.0.0.1/24", "--gw", "10.0.1.1", NULL},
        {"--nic", "nic0", "--ip6", "maybe", NULL},
        {"--nic", "nic0", "--bufs", "3", NULL},
        {"--nic", "nic0", "--bufs", "8192", NULL},
        {"--nic", "nic0", "--buf-size", "1000", NULL},
        {"--nic", "nic0", "--nic", "nic0", NULL},
        {"--nic", "lo", NULL},
        {"--nic", "a b", NULL},
        {"--nic", "a-name-that-is-too-long", NULL},
        {"--ep", "", NULL},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        ck_assert_msg(run_netsrv(bad[i]) == 2, "argument set %zu accepted", i);
}
END_TEST

START_TEST(test_no_endpoint)
{
    mk_cap_t client;
    mk_cap_t task = start_netsrv_as("netsrv", NULL, static_args, &client);
    int status = -100;
    ck_assert_int_eq(mk_task_wait(task, &status, CALL), MK_OK);
    ck_assert_int_eq(status, 1);
}
END_TEST

START_TEST(test_nic_left_out)
{
    /* nic9 was never given: left out, nic0 still comes up. */
    const char *const args[] = {"--nic", "nic9", "--nic", "nic0", "--ip", "10.0.0.1/24", NULL};
    netsrv_up(args);
    uint32_t n = 0;
    ck_assert_int_eq(netsrv_get_netif_count(srv, CALL, &n), 0);
    ck_assert_uint_eq(n, 2);
    char name[NETSRV_NAME_MAX + 1];
    netsrv_netif_info_t ni;
    netsrv_counters_t c;
    ck_assert_int_eq(netsrv_get_netif(srv, CALL, 0, name, &ni, &c), 0);
    ck_assert_str_eq(name, "nic0");
}
END_TEST

START_TEST(test_open_refused)
{
    set_flag(&fnic.refuse_open, true);
    netsrv_up(static_args);
    uint32_t n = 0;
    ck_assert_int_eq(netsrv_get_netif_count(srv, CALL, &n), 0);
    ck_assert_uint_eq(n, 1); /* lo only */
    netsrv_ping_result_t r = ping(ip4(W_IP4(127, 0, 0, 1)), 1, 1000);
    ck_assert_uint_eq(r.received, 1);
}
END_TEST

START_TEST(test_second_instance)
{
    netsrv_up(static_args);
    mk_cap_t client;
    mk_cap_t task = start_netsrv_as("netsrv2", "netsrv", static_args, &client);
    int status = -100;
    ck_assert_int_eq(mk_task_wait(task, &status, CALL), MK_OK);
    ck_assert_int_eq(status, 1);
    uint32_t n = 0;
    ck_assert_int_eq(netsrv_get_netif_count(srv, CALL, &n), 0); /* the first one is fine */
    ck_assert_uint_eq(n, 2);
}
END_TEST

/* ---- The one-thread rule ----------------------------------------------------------------- */

/* lwIP belongs to netsrv's loop thread: any other thread calling into it
 * hits LWIP_ASSERT_CORE_LOCKED and the process aborts. */
START_TEST(test_lwip_other_thread)
{
    netsrv_up(static_args);
    (void)sys_timeouts_sleeptime(); /* from the test's thread: must abort */
    ck_abort_msg("lwIP let another thread in");
}
END_TEST

/* ---- Runner ------------------------------------------------------------------------------ */

static Suite *netsrv_suite(void)
{
    Suite *s = suite_create("netsrv");
    TCase *tc = tcase_create("netsrv");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_reports);
    tcase_add_test(tc, test_arp);
    tcase_add_test(tc, test_icmp_echo);
    tcase_add_test(tc, test_ping_peer);
    tcase_add_test(tc, test_ping_loopback);
    tcase_add_test(tc, test_ping_errors);
    tcase_add_test(tc, test_no_nic);
    tcase_add_test(tc, test_idle_no_timer);
    tcase_add_test(tc, test_bad_frames);
    tcase_add_test(tc, test_hostile_descriptors);
    tcase_add_test(tc, test_tx_exhaustion);
    tcase_add_test(tc, test_ipv6);
    tcase_add_test(tc, test_bad_arguments);
    tcase_add_test(tc, test_no_endpoint);
    tcase_add_test(tc, test_nic_left_out);
    tcase_add_test(tc, test_open_refused);
    tcase_add_test(tc, test_second_instance);
    tcase_add_test_raise_signal(tc, test_lwip_other_thread, SIGABRT);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(netsrv_suite());
    srunner_set_fork_status(sr, CK_FORK); /* one netsrv (one lwIP) per process */
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

/*
 * test_nic.c - proves the NIC driver on libslirp (component nic-slirp) end
 * to end: the test plays netsrv with raw Ethernet frames against the real
 * driver, started as a task in the simulator.
 *
 *  - get_info; open validates everything (geometry, region type, size and
 *    rights, client signal, header) and a refused open changes nothing;
 *    a second open is EBUSY; close and get_stats check the generation;
 *    generations grow per open;
 *  - DHCP DISCOVER gets an OFFER of 10.0.2.15; ARP for 10.0.2.2 gets a
 *    reply; an ICMP echo to 10.0.2.2 is answered; IPv6 neighbour discovery
 *    and an ICMPv6 echo to fec0::2 are answered;
 *  - a TCP SYN to the host alias 10.0.2.2:P reaches the test's listener on
 *    127.0.0.1:P (and the guest gets the SYN-ACK);
 *  - a real Linux TCP connection to the host forward 127.0.0.1:<port>
 *    arrives as a SYN to 10.0.2.15:80 on rx_active;
 *  - frames to forbidden addresses (TEST-NET-1, 2001:db8::, slirp's DNS,
 *    another virtual address) are counted in tx_filtered and never reach
 *    slirp (tx_frames unchanged, nothing comes back);
 *  - hostile TX descriptors (zero length, longer than a frame, longer than a
 *    buffer, outside the region, misaligned) and an impossible tail are
 *    counted and the driver keeps working; bad rx_free descriptors are
 *    skipped;
 *  - with no RX buffers lent, frames are counted in rx_dropped;
 *  - client death: a client task that opened a session and moved frames is
 *    killed, or returns without close, or is killed while writing garbage
 *    into every index, slot and header field of its region and signalling:
 *    the driver (death notices) ends the session by itself (counted as
 *    reaped, not closed), deletes its capabilities and mapping (the
 *    client's shared memory and notification objects are freed, no mapping
 *    is left), survives the garbage, and the next client opens generation
 *    2 with fresh counters and reaches 10.0.2.2 (ARP, ping); the death of a
 *    client without a session leaves the open one alone; probe never
 *    blocks and reports MK_EDEAD once the driver is gone;
 *  - a bad argument or a forward port already in use ends the driver with a
 *    non-zero status.
 *
 * Network safety: the only host traffic is the test's own TCP connection to
 * 127.0.0.1; forbidden frames use documentation addresses and must be
 * dropped by the driver. Every wait is bounded.
 */
#include "frames.h"

#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <ferry/mk.h>
#include <ferry/nic_region.h>
#include <ferry/ring.h>
#include <ferry/sim.h>
#include <netinet/in.h>
#include <nic_client.h>
#include <nic_slirp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define MS 1000000ull
#define CALL_TIMEOUT (5000 * MS)
#define HOST4 FR_IP4(10, 0, 2, 2)
#define GUEST4 FR_IP4(10, 0, 2, 15)
#define TESTNET FR_IP4(192, 0, 2, 1) /* TEST-NET-1: stands for "outside" */
#define NBUFS 16u
#define BUFSZ 2048u

static const uint8_t mac_slirp[6] = {0x52, 0x55, 0x0a, 0x00, 0x02, 0x02};
static const uint8_t guest6[16] = {0xfe, 0xc0, [15] = 0x15}; /* our IPv6 address */
static const uint8_t host6[16] = {0xfe, 0xc0, [15] = 2};     /* slirp's host alias */

static mk_cap_t drv_ep;      /* send capability to the driver's endpoint (badge 1) */
static mk_cap_t drv_ep_root; /* the endpoint with all rights, to give other badges */
static mk_cap_t drv_task;    /* the driver task */
static uint16_t fwd_port;    /* host side of the driver's TCP forward */

/* ---- Fixture: the driver as a task ---------------------------------------------- */

/* A free TCP port on 127.0.0.1 (bind to port 0, read it, close). */
static uint16_t free_port(void)
{
    int s = socket(AF_INET, SOCK_STREAM, 0);
    ck_assert_int_ge(s, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    ck_assert_int_eq(bind(s, (struct sockaddr *)&a, sizeof a), 0);
    socklen_t len = sizeof a;
    ck_assert_int_eq(getsockname(s, (struct sockaddr *)&a, &len), 0);
    close(s);
    return ntohs(a.sin_port);
}

/* Start nic-slirp with `args` (argv[1..]); returns its task capability. */
static mk_cap_t start_driver(const char *const *args, int nargs, mk_cap_t *ep_out)
{
    mk_cap_t ep, task;
    ck_assert_int_eq(mk_ep_create(&ep), MK_OK);
    ck_assert_int_eq(mk_cap_mint(ep, MK_RIGHT_SEND, 1, ep_out), MK_OK);
    ck_assert_int_eq(mk_task_create("nic", &task), MK_OK);
    ck_assert_int_eq(mk_task_give(task, ep, MK_RIGHT_RECV, 0, "nic", NULL), MK_OK);
    char *argv[8] = {"nic-slirp"};
    for (int i = 0; i < nargs && i < 6; i++)
        argv[i + 1] = (char *)args[i];
    ck_assert_int_eq(mk_task_start(task, nic_slirp_main, nargs + 1, argv), MK_OK);
    drv_ep_root = ep;
    return task;
}

static void setup(void)
{
    ck_assert_int_eq(sim_init(), MK_OK);
    fwd_port = free_port();
    char spec[96];
    snprintf(spec, sizeof spec, "tcp:127.0.0.1:%u-10.0.2.15:80", fwd_port);
    const char *args[] = {"--forward", spec};
    drv_task = start_driver(args, 2, &drv_ep);
}

static void teardown(void)
{
    sim_shutdown();
}

/* ---- The client side of a session (what netsrv does) ---------------------------- */

typedef struct client {
    mk_cap_t ep; /* the driver's endpoint in the client's task (drv_ep for the test) */
    nic_layout_t l;
    ring_region_t data;
    mk_cap_t shm, ntfn, drv_signal;
    uint8_t *base;
    size_t size;
    ring_prod_t rx_free, tx_active;
    ring_cons_t rx_active, tx_free;
    uint32_t gen;
    uint32_t tx_held[NBUFS]; /* offsets of the TX buffers the client holds */
    uint32_t ntx;
} client_t;

/* Create and lay out a region (optionally of another size than needed), the
 * notification, and the client's ends of the rings. */
static void client_init(client_t *c, size_t shm_size, bool fill_rx)
{
    memset(c, 0, sizeof *c);
    c->ep = drv_ep;
    ck_assert_int_eq(nic_layout(NBUFS, BUFSZ, &c->l), 0);
    c->data = nic_data_region(&c->l);
    if (shm_size == 0)
        shm_size = c->l.size;
    ck_assert_int_eq(mk_shm_create(shm_size, &c->shm), MK_OK);
    void *base;
    ck_assert_int_eq(mk_shm_map(c->shm, MK_RIGHT_READ | MK_RIGHT_WRITE, &base, &c->size), MK_OK);
    c->base = base;
    ck_assert_int_eq(mk_ntfn_create(&c->ntfn), MK_OK);
    if (c->size < c->l.size)
        return; /* too small to lay out: only for the refusal test */
    nic_region_hdr_t h = {.magic = NIC_REGION_MAGIC,
                          .version = NIC_REGION_VERSION,
                          .nbufs = NBUFS,
                          .buf_size = BUFSZ};
    memcpy(c->base, &h, sizeof h);
    size_t qs[4] = {c->l.rx_free, c->l.rx_active, c->l.tx_active, c->l.tx_free};
    for (int i = 0; i < 4; i++)
        ck_assert_int_eq(ring_queue_init(nic_queue(c->base, qs[i]), NBUFS, 0), RING_OK);
    ck_assert_int_eq(ring_prod_attach(&c->rx_free, nic_queue(c->base, c->l.rx_free), NBUFS),
                     RING_OK);
    ck_assert_int_eq(ring_prod_attach(&c->tx_active, nic_queue(c->base, c->l.tx_active), NBUFS),
                     RING_OK);
    ck_assert_int_eq(
        ring_cons_attach(&c->rx_active, nic_queue(c->base, c->l.rx_active), NBUFS, &c->data, 0),
        RING_OK);
    ck_assert_int_eq(ring_cons_attach(&c->tx_free, nic_queue(c->base, c->l.tx_free), NBUFS,
                                      &c->data, RING_F_ZERO_LEN_OK),
                     RING_OK);
    if (fill_rx)
        ck_assert_int_eq(ring_prod_fill(&c->rx_free, &c->data), RING_OK);
    for (uint32_t i = 0; i < NBUFS; i++)
        c->tx_held[c->ntx++] = i * BUFSZ;
}

static int32_t client_open_with(client_t *c, mk_cap_t region, mk_cap_t signal, uint32_t nbufs,
                                uint32_t buf_size)
{
    return nic_open(c->ep, CALL_TIMEOUT, region, signal, nbufs, buf_size, &c->drv_signal, &c->gen);
}

static void client_open(client_t *c, bool fill_rx)
{
    client_init(c, 0, fill_rx);
    ck_assert_int_eq(client_open_with(c, c->shm, c->ntfn, NBUFS, BUFSZ), 0);
    ck_assert_uint_ge(c->gen, 1);
    mk_cap_info_t ci;
    ck_assert_int_eq(mk_cap_info(c->drv_signal, &ci), MK_OK);
    ck_assert_uint_eq(ci.type, MK_OBJ_NOTIFICATION);
    ck_assert(ci.rights & MK_RIGHT_SEND);
}

static nic_stats_t client_stats(client_t *c)
{
    nic_stats_t st;
    ck_assert_int_eq(nic_get_stats(c->ep, CALL_TIMEOUT, c->gen, &st), 0);
    return st;
}

/* Take back TX buffers the driver is done with. */
static void client_reclaim(client_t *c)
{
    ring_desc_t d;
    while (ring_cons_dequeue(&c->tx_free, &d) == RING_OK)
        if (c->ntx < NBUFS)
            c->tx_held[c->ntx++] = d.offset;
    ring_cons_publish(&c->tx_free);
}

/* Publish tx_active and signal the driver if it asked. */
static void client_tx_publish(client_t *c)
{
    ring_prod_publish(&c->tx_active);
    if (ring_prod_need_signal(&c->tx_active))
        ck_assert_int_eq(mk_signal(c->drv_signal), MK_OK);
}

/* Put a descriptor on tx_active as is (hostile tests use any offset/len). */
static void client_tx_desc(client_t *c, uint32_t offset, uint32_t len)
{
    ck_assert_int_eq(ring_prod_enqueue(&c->tx_active, (ring_desc_t){offset, len}), RING_OK);
    client_tx_publish(c);
}

static void client_send(client_t *c, const uint8_t *frame, size_t len)
{
    for (int i = 0; i < 500 && c->ntx == 0; i++) {
        client_reclaim(c);
        if (c->ntx == 0)
            mk_sleep_ns(2 * MS);
    }
    ck_assert_uint_gt(c->ntx, 0);
    uint32_t off = c->tx_held[--c->ntx];
    memcpy(c->base + c->l.tx_data + off, frame, len);
    client_tx_desc(c, off, (uint32_t)len);
}

/* Receive one frame within `timeout_ns` (0 if none). The buffer goes back to
 * rx_free at once. */
static size_t client_recv(client_t *c, uint8_t *out, uint64_t timeout_ns)
{
    uint64_t deadline = mk_time_ns() + timeout_ns;
    for (;;) {
        ring_desc_t d;
        ring_err_t e = ring_cons_dequeue(&c->rx_active, &d);
        ck_assert_msg(e == RING_OK || e == RING_EEMPTY, "rx_active: %s", ring_strerror(e));
        if (e == RING_OK) {
            size_t len = d.len;
            memcpy(out, c->base + c->l.rx_data + d.offset, len);
            ring_cons_publish(&c->rx_active);
            d.len = 0;
            ck_assert_int_eq(ring_prod_enqueue(&c->rx_free, d), RING_OK);
            ring_prod_publish(&c->rx_free);
            if (ring_prod_need_signal(&c->rx_free))
                mk_signal(c->drv_signal);
            return len;
        }
        if (!ring_cons_prepare_sleep(&c->rx_active))
            continue;
        uint64_t now = mk_time_ns();
        if (now >= deadline)
            return 0;
        mk_word_t bits;
        mk_wait(c->ntfn, &bits, deadline - now);
    }
}

/* ---- Reading what comes back ------------------------------------------------------ */

typedef bool (*frame_pred_t)(const uint8_t *f, size_t len, uint32_t arg);

static bool is_ipv4(const uint8_t *f, size_t len, uint8_t proto)
{
    return len >= FR_ETH_HLEN + 20 && fr_get16(f + 12) == 0x0800 && f[FR_ETH_HLEN + 9] == proto;
}

static const uint8_t *l4_of(const uint8_t *f)
{
    return f + FR_ETH_HLEN + (f[FR_ETH_HLEN] & 0x0f) * 4;
}

static bool is_arp_request_for(const uint8_t *f, size_t len, uint32_t ip)
{
    return len >= FR_ETH_HLEN + 28 && fr_get16(f + 12) == 0x0806 && fr_get16(f + 20) == 1 &&
           fr_get32(f + 38) == ip;
}

static bool is_arp_reply_from(const uint8_t *f, size_t len, uint32_t ip)
{
    return len >= FR_ETH_HLEN + 28 && fr_get16(f + 12) == 0x0806 && fr_get16(f + 20) == 2 &&
           memcmp(f + 22, mac_slirp, 6) == 0 && fr_get32(f + 28) == ip &&
           memcmp(f + 32, fr_mac_guest, 6) == 0 && fr_get32(f + 38) == GUEST4;
}

/* A DHCP OFFER for our MAC with transaction id `xid`, offering 10.0.2.15. */
static bool is_dhcp_offer(const uint8_t *f, size_t len, uint32_t xid)
{
    if (!is_ipv4(f, len, 17))
        return false;
    const uint8_t *u = l4_of(f);
    const uint8_t *b = u + 8;
    if ((size_t)(b + 244 - f) > len || fr_get16(u) != 67 || fr_get16(u + 2) != 68 || b[0] != 2 ||
        fr_get32(b + 4) != xid || memcmp(b + 28, fr_mac_guest, 6) != 0 ||
        fr_get32(b + 16) != GUEST4 || fr_get32(b + 236) != 0x63825363)
        return false;
    for (const uint8_t *o = b + 240; o + 2 <= f + len && *o != 255;) {
        if (*o == 0) {
            o++;
            continue;
        }
        if (o[0] == 53 && o[1] == 1 && o + 3 <= f + len)
            return o[2] == 2; /* DHCPOFFER */
        o += 2 + o[1];
    }
    return false;
}

static bool is_echo_reply(const uint8_t *f, size_t len, uint32_t id)
{
    if (!is_ipv4(f, len, 1))
        return false;
    const uint8_t *c = l4_of(f);
    return (size_t)(c + 8 - f) <= len && fr_get32(f + FR_ETH_HLEN + 12) == HOST4 &&
           fr_get32(f + FR_ETH_HLEN + 16) == GUEST4 && c[0] == 0 && fr_get16(c + 4) == id;
}

static bool is_syn_to(const uint8_t *f, size_t len, uint32_t port)
{
    if (!is_ipv4(f, len, 6))
        return false;
    const uint8_t *t = l4_of(f);
    return (size_t)(t + 20 - f) <= len && fr_get32(f + FR_ETH_HLEN + 16) == GUEST4 &&
           fr_get16(t + 2) == port && (t[13] & 0x12) == 0x02;
}

/* An ICMPv6 message of `type` from fec0::2 to us. For neighbour
 * advertisements the target must be fec0::2. */
static bool is_icmp6_from_host(const uint8_t *f, size_t len, uint32_t type)
{
    if (len < FR_ETH_HLEN + 40 + 8 || fr_get16(f + 12) != 0x86dd || f[FR_ETH_HLEN + 6] != 58)
        return false;
    const uint8_t *ip = f + FR_ETH_HLEN, *c = ip + 40;
    if (memcmp(ip + 8, host6, 16) != 0 || c[0] != type)
        return false;
    if (type == 136)
        return len >= FR_ETH_HLEN + 40 + 24 && memcmp(c + 8, host6, 16) == 0;
    return memcmp(ip + 24, guest6, 16) == 0;
}

static bool is_ns_for_us(const uint8_t *f, size_t len)
{
    return len >= FR_ETH_HLEN + 40 + 24 && fr_get16(f + 12) == 0x86dd && f[FR_ETH_HLEN + 6] == 58 &&
           f[FR_ETH_HLEN + 40] == 135 && memcmp(f + FR_ETH_HLEN + 40 + 8, guest6, 16) == 0;
}

/* A TCP segment from 10.0.2.2:`port` with SYN and ACK set. */
static bool is_synack_from(const uint8_t *f, size_t len, uint32_t port)
{
    if (!is_ipv4(f, len, 6))
        return false;
    const uint8_t *t = l4_of(f);
    return (size_t)(t + 20 - f) <= len && fr_get32(f + FR_ETH_HLEN + 12) == HOST4 &&
           fr_get16(t) == port && (t[13] & 0x12) == 0x12;
}

/* Receive until a frame satisfies pred (answering slirp's ARP requests for
 * 10.0.2.15 on the way). Returns its length, 0 on timeout. */
static size_t client_expect(client_t *c, frame_pred_t pred, uint32_t arg, uint8_t *out,
                            uint64_t timeout_ns)
{
    uint64_t deadline = mk_time_ns() + timeout_ns;
    for (int n = 0; n < 1000; n++) {
        uint64_t now = mk_time_ns();
        if (now >= deadline)
            return 0;
        size_t len = client_recv(c, out, deadline - now);
        if (len == 0)
            return 0;
        if (is_arp_request_for(out, len, GUEST4)) {
            uint8_t reply[64];
            size_t rl = fr_arp_reply(reply, out + 6, fr_get32(out + 28), GUEST4);
            client_send(c, reply, rl);
            continue;
        }
        if (is_ns_for_us(out, len)) {
            uint8_t reply[128];
            size_t rl = fr_ndp_na(reply, out + 6, guest6, out + FR_ETH_HLEN + 8);
            client_send(c, reply, rl);
            continue;
        }
        if (pred(out, len, arg))
            return len;
    }
    return 0;
}

/* Wait until get_stats satisfies a condition (the wire thread counts
 * asynchronously). */
#define WAIT_STATS(c, st, cond)                               \
    do {                                                      \
        for (int i_ = 0; i_ < 1000; i_++) {                   \
            st = client_stats(c);                             \
            if (cond)                                         \
                break;                                        \
            mk_sleep_ns(2 * MS);                              \
        }                                                     \
        ck_assert_msg(cond, "stats never satisfied: " #cond); \
    } while (0)

/* ---- Tests ------------------------------------------------------------------------- */

START_TEST(test_get_info)
{
    nic_info_t i;
    ck_assert_int_eq(nic_get_info(drv_ep, CALL_TIMEOUT, &i), 0);
    ck_assert_uint_eq(i.mac, 0x525400123456ull);
    ck_assert_uint_eq(i.mtu, 1500);
    ck_assert_uint_eq(i.max_frame, 1514);
    ck_assert(i.link_up);
    ck_assert_uint_eq(i.features, NIC_FEATURE_NONE);
}
END_TEST

START_TEST(test_open_refusals)
{
    client_t c;
    client_init(&c, 0, true);
    /* Bad geometry: not a power of two, too small buffers, misaligned, too many. */
    ck_assert_int_eq(client_open_with(&c, c.shm, c.ntfn, 3, BUFSZ), NIC_EINVAL);
    ck_assert_int_eq(client_open_with(&c, c.shm, c.ntfn, NBUFS, 1000), NIC_EINVAL);
    ck_assert_int_eq(client_open_with(&c, c.shm, c.ntfn, NBUFS, BUFSZ + 1), NIC_EINVAL);
    ck_assert_int_eq(client_open_with(&c, c.shm, c.ntfn, 8192, BUFSZ), NIC_EINVAL);
    /* A geometry larger than the region. */
    ck_assert_int_eq(client_open_with(&c, c.shm, c.ntfn, 2 * NBUFS, BUFSZ), NIC_EINVAL);
    /* Read-only region capability. */
    mk_cap_t ro;
    ck_assert_int_eq(mk_cap_mint(c.shm, MK_RIGHT_READ | MK_RIGHT_GRANT, 0, &ro), MK_OK);
    ck_assert_int_eq(client_open_with(&c, ro, c.ntfn, NBUFS, BUFSZ), NIC_EINVAL);
    /* Region is not shared memory; client signal is not a notification, or
     * cannot signal. */
    ck_assert_int_eq(client_open_with(&c, c.ntfn, c.ntfn, NBUFS, BUFSZ), NIC_EINVAL);
    ck_assert_int_eq(client_open_with(&c, c.shm, c.shm, NBUFS, BUFSZ), NIC_EINVAL);
    mk_cap_t wait_only;
    ck_assert_int_eq(mk_cap_mint(c.ntfn, MK_RIGHT_RECV | MK_RIGHT_GRANT, 0, &wait_only), MK_OK);
    ck_assert_int_eq(client_open_with(&c, c.shm, wait_only, NBUFS, BUFSZ), NIC_EINVAL);
    /* Header that does not match the geometry. */
    ((nic_region_hdr_t *)c.base)->magic ^= 1;
    ck_assert_int_eq(client_open_with(&c, c.shm, c.ntfn, NBUFS, BUFSZ), NIC_EINVAL);
    ((nic_region_hdr_t *)c.base)->magic ^= 1;
    ((nic_region_hdr_t *)c.base)->nbufs = 2 * NBUFS;
    ck_assert_int_eq(client_open_with(&c, c.shm, c.ntfn, NBUFS, BUFSZ), NIC_EINVAL);
    ((nic_region_hdr_t *)c.base)->nbufs = NBUFS;
    /* A region too small for the geometry. */
    client_t small;
    client_init(&small, c.l.size - 2 * 4096, true);
    ck_assert_int_eq(client_open_with(&small, small.shm, small.ntfn, NBUFS, BUFSZ), NIC_EINVAL);
    /* None of that changed anything: no session, and the first real open
     * gets generation 1. */
    ck_assert_int_eq(nic_close(drv_ep, CALL_TIMEOUT, 0), NIC_ESTALE);
    ck_assert_int_eq(nic_close(drv_ep, CALL_TIMEOUT, 1), NIC_ESTALE);
    ck_assert_int_eq(client_open_with(&c, c.shm, c.ntfn, NBUFS, BUFSZ), 0);
    ck_assert_uint_eq(c.gen, 1);
}
END_TEST

START_TEST(test_generations)
{
    client_t a, b;
    client_open(&a, true);
    ck_assert_uint_eq(a.gen, 1);
    /* A second open while one is open: EBUSY, and the first is untouched. */
    client_init(&b, 0, true);
    ck_assert_int_eq(client_open_with(&b, b.shm, b.ntfn, NBUFS, BUFSZ), NIC_EBUSY);
    nic_stats_t st;
    ck_assert_int_eq(nic_get_stats(drv_ep, CALL_TIMEOUT, a.gen, &st), 0);
    ck_assert_int_eq(nic_get_stats(drv_ep, CALL_TIMEOUT, a.gen + 1, &st), NIC_ESTALE);
    ck_assert_int_eq(nic_get_stats(drv_ep, CALL_TIMEOUT, 0, &st), NIC_ESTALE);
    ck_assert_int_eq(nic_close(drv_ep, CALL_TIMEOUT, a.gen + 7), NIC_ESTALE);
    ck_assert_int_eq(nic_close(drv_ep, CALL_TIMEOUT, a.gen), 0);
    /* Closed: the old generation is stale everywhere. */
    ck_assert_int_eq(nic_close(drv_ep, CALL_TIMEOUT, a.gen), NIC_ESTALE);
    ck_assert_int_eq(nic_get_stats(drv_ep, CALL_TIMEOUT, a.gen, &st), NIC_ESTALE);
    /* Reopen (another region): the generation grows. */
    ck_assert_int_eq(client_open_with(&b, b.shm, b.ntfn, NBUFS, BUFSZ), 0);
    ck_assert_uint_eq(b.gen, 2);
    ck_assert_int_eq(nic_get_stats(drv_ep, CALL_TIMEOUT, 1, &st), NIC_ESTALE);
    ck_assert_int_eq(nic_close(drv_ep, CALL_TIMEOUT, 2), 0);
    /* And the same region again, after close. */
    client_t a2;
    client_open(&a2, true);
    ck_assert_uint_eq(a2.gen, 3);
    /* The new session works. */
    uint8_t f[128], r[2048];
    size_t n = fr_arp_request(f, GUEST4, HOST4);
    client_send(&a2, f, n);
    ck_assert_uint_gt(client_expect(&a2, is_arp_reply_from, HOST4, r, 3000 * MS), 0);
}
END_TEST

START_TEST(test_dhcp_offer)
{
    client_t c;
    client_open(&c, true);
    uint8_t f[600], r[2048];
    size_t n = fr_dhcp_discover(f, 0x1f2e3d4c);
    client_send(&c, f, n);
    ck_assert_msg(client_expect(&c, is_dhcp_offer, 0x1f2e3d4c, r, 3000 * MS) > 0,
                  "no DHCP OFFER of 10.0.2.15");
    nic_stats_t st;
    WAIT_STATS(&c, st, st.tx_frames == 1 && st.rx_frames >= 1);
    ck_assert_uint_eq(st.tx_bytes, n);
    ck_assert_uint_eq(st.tx_filtered, 0);
    ck_assert_uint_eq(st.tx_rejected, 0);
}
END_TEST

START_TEST(test_arp_reply)
{
    client_t c;
    client_open(&c, true);
    uint8_t f[128], r[2048];
    size_t n = fr_arp_request(f, GUEST4, HOST4);
    client_send(&c, f, n);
    size_t len = client_expect(&c, is_arp_reply_from, HOST4, r, 3000 * MS);
    ck_assert_msg(len > 0, "no ARP reply for 10.0.2.2");
    ck_assert_mem_eq(r, fr_mac_guest, 6); /* sent to us */
    nic_stats_t st;
    WAIT_STATS(&c, st, st.rx_frames >= 1);
    ck_assert_uint_ge(st.rx_bytes, len);
}
END_TEST

START_TEST(test_icmp_echo)
{
    client_t c;
    client_open(&c, true);
    uint8_t f[256], r[2048];
    size_t n = fr_arp_request(f, GUEST4, HOST4); /* slirp learns our MAC */
    client_send(&c, f, n);
    ck_assert_uint_gt(client_expect(&c, is_arp_reply_from, HOST4, r, 3000 * MS), 0);
    for (uint16_t seq = 1; seq <= 3; seq++) {
        n = fr_icmp4_echo(f, mac_slirp, GUEST4, HOST4, 0x4242, seq, 56);
        client_send(&c, f, n);
        ck_assert_msg(client_expect(&c, is_echo_reply, 0x4242, r, 3000 * MS) > 0,
                      "no echo reply from 10.0.2.2 (seq %u)", seq);
    }
}
END_TEST

START_TEST(test_host_forward)
{
    client_t c;
    client_open(&c, true);
    int s = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    ck_assert_int_ge(s, 0);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons(fwd_port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    int r = connect(s, (struct sockaddr *)&a, sizeof a);
    ck_assert_msg(r == 0 || errno == EINPROGRESS, "connect to 127.0.0.1:%u: %s", fwd_port,
                  strerror(errno));
    uint8_t fr[2048];
    /* slirp accepts on the host and opens the guest side: ARP for 10.0.2.15
     * (answered by client_expect), then a SYN to 10.0.2.15:80. */
    ck_assert_msg(client_expect(&c, is_syn_to, 80, fr, 5000 * MS) > 0,
                  "no SYN to 10.0.2.15:80 after connecting to 127.0.0.1:%u", fwd_port);
    ck_assert_uint_eq(fr_get32(fr + FR_ETH_HLEN + 12), HOST4); /* from the host alias */
    close(s);
}
END_TEST

START_TEST(test_icmp6_echo)
{
    client_t c;
    client_open(&c, true);
    uint8_t f[256], r[2048];
    /* Neighbour discovery: who is fec0::2? (slirp also learns us.) */
    size_t n = fr_ndp_ns(f, guest6, host6);
    client_send(&c, f, n);
    ck_assert_msg(client_expect(&c, is_icmp6_from_host, 136, r, 3000 * MS) > 0,
                  "no neighbour advertisement for fec0::2");
    uint8_t body[4 + 32];
    fr_put16(body, 0x6666);
    fr_put16(body + 2, 1);
    for (int i = 0; i < 32; i++)
        body[4 + i] = (uint8_t)i;
    n = fr_icmp6_full(f, r + 6, guest6, host6, 128, 64, body, sizeof body);
    client_send(&c, f, n);
    ck_assert_msg(client_expect(&c, is_icmp6_from_host, 129, r, 3000 * MS) > 0,
                  "no ICMPv6 echo reply from fec0::2");
    nic_stats_t st = client_stats(&c);
    ck_assert_uint_eq(st.tx_filtered, 0);
}
END_TEST

/* The host alias reaches the host's loopback: a SYN to 10.0.2.2:P becomes a
 * connection to the test's listener on 127.0.0.1:P. */
START_TEST(test_host_alias_tcp)
{
    int ls = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    ck_assert_int_ge(ls, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    ck_assert_int_eq(bind(ls, (struct sockaddr *)&a, sizeof a), 0);
    ck_assert_int_eq(listen(ls, 1), 0);
    socklen_t alen = sizeof a;
    ck_assert_int_eq(getsockname(ls, (struct sockaddr *)&a, &alen), 0);
    uint16_t port = ntohs(a.sin_port);

    client_t c;
    client_open(&c, true);
    uint8_t f[256], r[2048];
    size_t n = fr_arp_request(f, GUEST4, HOST4);
    client_send(&c, f, n);
    ck_assert_uint_gt(client_expect(&c, is_arp_reply_from, HOST4, r, 3000 * MS), 0);
    n = fr_tcp4_syn(f, mac_slirp, GUEST4, 41000, HOST4, port);
    client_send(&c, f, n);
    ck_assert_msg(client_expect(&c, is_synack_from, port, r, 3000 * MS) > 0,
                  "no SYN-ACK from 10.0.2.2:%u", port);
    int cs = -1;
    for (int i = 0; i < 300 && cs < 0; i++) {
        cs = accept(ls, NULL, NULL);
        if (cs < 0)
            mk_sleep_ns(10 * MS);
    }
    ck_assert_msg(cs >= 0, "slirp did not connect to 127.0.0.1:%u", port);
    struct sockaddr_in peer;
    socklen_t plen = sizeof peer;
    ck_assert_int_eq(getpeername(cs, (struct sockaddr *)&peer, &plen), 0);
    ck_assert_uint_eq(ntohl(peer.sin_addr.s_addr) >> 24, 127); /* from loopback */
    close(cs);
    close(ls);
}
END_TEST

START_TEST(test_forbidden_destinations)
{
    client_t c;
    client_open(&c, true);
    static const uint8_t doc6[16] = {0x20, 0x01, 0x0d, 0xb8, [15] = 1};
    static const uint8_t dns6[16] = {0xfe, 0xc0, [15] = 3};
    uint8_t f[256], r[2048];
    size_t n;
    n = fr_udp4(f, mac_slirp, GUEST4, 40000, TESTNET, 9, "discard", 7);
    client_send(&c, f, n);
    n = fr_tcp4_syn(f, mac_slirp, GUEST4, 40001, TESTNET, 80);
    client_send(&c, f, n);
    n = fr_icmp4_echo(f, mac_slirp, GUEST4, TESTNET, 7, 1, 8);
    client_send(&c, f, n);
    n = fr_udp4(f, mac_slirp, GUEST4, 40002, FR_IP4(10, 0, 2, 3), 53, "query", 5);
    client_send(&c, f, n);
    n = fr_icmp4_echo(f, mac_slirp, GUEST4, FR_IP4(10, 0, 2, 77), 7, 2, 8);
    client_send(&c, f, n);
    n = fr_udp6(f, mac_slirp, guest6, 40003, doc6, 9, 4);
    client_send(&c, f, n);
    n = fr_udp6(f, mac_slirp, guest6, 40004, dns6, 53, 4);
    client_send(&c, f, n);
    nic_stats_t st;
    WAIT_STATS(&c, st, st.tx_filtered == 7);
    ck_assert_uint_eq(st.tx_frames, 0); /* nothing reached slirp */
    ck_assert_uint_eq(st.tx_bytes, 0);
    ck_assert_uint_eq(st.tx_rejected, 0);
    /* Nothing comes back (no ICMP error, no reply). */
    ck_assert_uint_eq(client_recv(&c, r, 200 * MS), 0);
    /* Every buffer came back on tx_free. */
    for (int i = 0; i < 100 && c.ntx < NBUFS; i++) {
        client_reclaim(&c);
        mk_sleep_ns(2 * MS);
    }
    ck_assert_uint_eq(c.ntx, NBUFS);
}
END_TEST

START_TEST(test_hostile_descriptors)
{
    client_t c;
    client_open(&c, true);
    uint8_t f[128], r[2048];
    uint32_t data_size = NBUFS * BUFSZ;
    /* Zero length and longer than a frame (but inside a buffer): refused,
     * the buffer comes back. */
    uint32_t b0 = c.tx_held[--c.ntx], b1 = c.tx_held[--c.ntx];
    client_tx_desc(&c, b0, 0);
    client_tx_desc(&c, b1, 1515);
    /* Longer than a buffer, outside the region, misaligned, wrapping. */
    client_tx_desc(&c, 0, BUFSZ + 1);
    client_tx_desc(&c, data_size, 60);
    client_tx_desc(&c, data_size - 64, 60); /* its buffer would end outside */
    client_tx_desc(&c, 3, 60);
    client_tx_desc(&c, UINT32_MAX - 63, 100);
    nic_stats_t st;
    WAIT_STATS(&c, st, st.tx_rejected == 7);
    ck_assert_uint_eq(st.tx_frames, 0);
    for (int i = 0; i < 100 && c.ntx < NBUFS; i++) {
        client_reclaim(&c);
        mk_sleep_ns(2 * MS);
    }
    ck_assert_uint_eq(c.ntx, NBUFS); /* b0 and b1 came back */

    /* An impossible tail: counted, nothing consumed. Then the real tail
     * again, and the driver carries on. */
    ring_queue_t *q = nic_queue(c.base, c.l.tx_active);
    uint32_t tail = atomic_load(&q->tail);
    atomic_store(&q->tail, tail + NBUFS + 5);
    mk_signal(c.drv_signal);
    WAIT_STATS(&c, st, st.ring_errors >= 1);
    atomic_store(&q->tail, tail);

    size_t n = fr_arp_request(f, GUEST4, HOST4);
    client_send(&c, f, n);
    ck_assert_msg(client_expect(&c, is_arp_reply_from, HOST4, r, 3000 * MS) > 0,
                  "the driver stopped working after hostile descriptors");
    WAIT_STATS(&c, st, st.tx_frames == 1);
    ck_assert_uint_eq(st.tx_rejected, 7);
}
END_TEST

START_TEST(test_hostile_rx_free)
{
    client_t c;
    client_open(&c, false); /* rx_free empty: we lend the buffers ourselves */
    uint32_t data_size = NBUFS * BUFSZ;
    ck_assert_int_eq(ring_prod_enqueue(&c.rx_free, (ring_desc_t){data_size, 0}), RING_OK);
    ck_assert_int_eq(ring_prod_enqueue(&c.rx_free, (ring_desc_t){5, 0}), RING_OK);
    ck_assert_int_eq(ring_prod_enqueue(&c.rx_free, (ring_desc_t){BUFSZ, 0}), RING_OK);
    ring_prod_publish(&c.rx_free);
    uint8_t f[128], r[2048];
    size_t n = fr_arp_request(f, GUEST4, HOST4);
    client_send(&c, f, n);
    ck_assert_uint_gt(client_expect(&c, is_arp_reply_from, HOST4, r, 3000 * MS), 0);
    nic_stats_t st;
    WAIT_STATS(&c, st, st.ring_errors == 2 && st.rx_frames == 1);
    ck_assert_uint_eq(st.rx_dropped, 0);
}
END_TEST

START_TEST(test_rx_dropped)
{
    client_t c;
    client_open(&c, false); /* no RX buffers lent */
    uint8_t f[128], r[2048];
    size_t n = fr_arp_request(f, GUEST4, HOST4);
    client_send(&c, f, n);
    client_send(&c, f, n);
    nic_stats_t st;
    WAIT_STATS(&c, st, st.tx_frames == 2 && st.rx_dropped == 2);
    ck_assert_uint_eq(st.rx_frames, 0);
    ck_assert_uint_eq(client_recv(&c, r, 50 * MS), 0);
    /* Lend buffers: the next reply arrives. */
    ck_assert_int_eq(ring_prod_fill(&c.rx_free, &c.data), RING_OK);
    client_send(&c, f, n);
    ck_assert_uint_gt(client_expect(&c, is_arp_reply_from, HOST4, r, 3000 * MS), 0);
    WAIT_STATS(&c, st, st.rx_frames == 1);
    ck_assert_uint_eq(st.rx_dropped, 2);
}
END_TEST

/* ---- Client death ------------------------------------------------------------------ */

/* A client task that opens a session, moves frames (ARP for 10.0.2.2 and its
 * reply), then, by mode: waits to be killed, returns without close, or
 * scribbles over its rings while signalling until it is killed. It never
 * closes. Its ck_asserts run only while it is alive; after its death it
 * only returns. */
enum victim_mode { VICTIM_HOLD, VICTIM_EXIT, VICTIM_SCRIBBLE };

#define VICTIM_SCRIBBLES_MAX 2000000u /* bound of the scribble loop (it is killed long before) */

static struct {
    enum victim_mode mode;
    client_t c;
    _Atomic int stage; /* 1: session open and frames moved; 2: scribbling */
    _Atomic int go;    /* set by the test: VICTIM_EXIT may return now */
    _Atomic uint32_t scribbles;
} victim;

/* Garbage into every shared index, slot and header field of the region,
 * then a signal to the driver; until the signal fails (the task is dead). */
static int victim_scribble(client_t *c)
{
    uint64_t x = 0x9e3779b97f4a7c15ull;
    size_t qs[4] = {c->l.rx_free, c->l.rx_active, c->l.tx_active, c->l.tx_free};
    for (uint32_t i = 0; i < VICTIM_SCRIBBLES_MAX; i++) {
        x ^= x << 13; /* xorshift64 */
        x ^= x >> 7;
        x ^= x << 17;
        ring_queue_t *q = nic_queue(c->base, qs[x & 3]);
        uint32_t r = (uint32_t)(x >> 32);
        switch ((x >> 2) & 7) {
        case 0:
            atomic_store(&q->tail, r);
            break;
        case 1:
            atomic_store(&q->head, r);
            break;
        case 2:
            atomic_store(&q->tail, atomic_load(&q->head) + (r & 31));
            break;
        case 3:
            atomic_store(&q->signal_wanted, r);
            break;
        case 4:
            ((nic_region_hdr_t *)c->base)->magic = r;
            break;
        default:
            atomic_store(&q->slot[r % NBUFS].offset, (uint32_t)x);
            atomic_store(&q->slot[r % NBUFS].len, r >> 20);
            break;
        }
        atomic_store(&victim.scribbles, i + 1);
        atomic_store(&victim.stage, 2);
        if (mk_signal(c->drv_signal) != MK_OK)
            return 0; /* killed */
    }
    return 0;
}

static int victim_main(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    client_t *c = &victim.c;
    mk_cap_t ep;
    if (mk_cap_lookup("nic", &ep) != MK_OK)
        return 10;
    client_init(c, 0, true);
    c->ep = ep;
    ck_assert_int_eq(client_open_with(c, c->shm, c->ntfn, NBUFS, BUFSZ), 0);
    uint8_t f[128], r[2048];
    size_t n = fr_arp_request(f, GUEST4, HOST4);
    client_send(c, f, n);
    ck_assert_uint_gt(client_expect(c, is_arp_reply_from, HOST4, r, 3000 * MS), 0);
    atomic_store(&victim.stage, 1);
    uint64_t end = mk_time_ns() + 10000 * MS;
    if (victim.mode == VICTIM_EXIT) {
        while (!atomic_load(&victim.go) && mk_time_ns() < end)
            mk_sleep_ns(1 * MS);
        return 0; /* dies without close */
    }
    if (victim.mode == VICTIM_SCRIBBLE) {
        /* Echo requests whose replies arrive while the rings are garbage. */
        for (uint16_t seq = 1; seq <= NBUFS / 2; seq++) {
            n = fr_icmp4_echo(f, mac_slirp, GUEST4, HOST4, 0x7777, seq, 56);
            client_send(c, f, n);
        }
        return victim_scribble(c);
    }
    while (mk_time_ns() < end) {
        mk_word_t bits;
        mk_err_t e = mk_wait(c->ntfn, &bits, 100 * MS);
        if (e != MK_OK && e != MK_ETIMEDOUT)
            return 0; /* killed */
    }
    return 0;
}

/* Start a task with a send capability of `badge` to the driver's endpoint
 * (named "nic"), running `fn`. */
static mk_cap_t start_client_task(const char *name, mk_badge_t badge, mk_task_main_t fn)
{
    mk_cap_t task;
    ck_assert_int_eq(mk_task_create(name, &task), MK_OK);
    ck_assert_int_eq(
        mk_task_give(task, drv_ep_root, MK_RIGHT_SEND | MK_RIGHT_GRANT, badge, "nic", NULL), MK_OK);
    char *argv[] = {(char *)name};
    ck_assert_int_eq(mk_task_start(task, fn, 1, argv), MK_OK);
    return task;
}

static nic_driver_stats_t driver_stats(void)
{
    nic_driver_stats_t st;
    ck_assert_int_eq(nic_get_driver_stats(drv_ep, CALL_TIMEOUT, &st), 0);
    return st;
}

/* Wait until the driver's own counters satisfy a condition. */
#define WAIT_DRIVER(st, cond)                                        \
    do {                                                             \
        for (int i_ = 0; i_ < 1000; i_++) {                          \
            st = driver_stats();                                     \
            if (cond)                                                \
                break;                                               \
            mk_sleep_ns(2 * MS);                                     \
        }                                                            \
        ck_assert_msg(cond, "driver stats never satisfied: " #cond); \
    } while (0)

/* Wait (bounded) until `get` returns `want`. */
static void wait_count(size_t (*get)(void), size_t want, const char *what)
{
    size_t got = get();
    for (int i = 0; i < 1000 && got != want; i++) {
        mk_sleep_ns(2 * MS);
        got = get();
    }
    ck_assert_msg(got == want, "%s: %zu, expected %zu", what, got, want);
}

static size_t shm_objects(void)
{
    return sim_count_objects(MK_OBJ_SHM);
}

static size_t ntfn_objects(void)
{
    return sim_count_objects(MK_OBJ_NOTIFICATION);
}

/* Notification objects while the driver serves and no client has a session
 * (the driver's own). */
static size_t ntfn_baseline(void)
{
    nic_info_t info;
    ck_assert_int_eq(nic_get_info(drv_ep, CALL_TIMEOUT, &info), 0); /* the driver is set up */
    return ntfn_objects();
}

/* The victim's session is open and has moved frames; the test's own open is
 * refused meanwhile. */
static void victim_run(enum victim_mode mode, mk_cap_t *task)
{
    ck_assert_uint_eq(shm_objects(), 0);
    victim.mode = mode;
    *task = start_client_task("victim", 2, victim_main);
    uint64_t end = mk_time_ns() + 5000 * MS;
    while (atomic_load(&victim.stage) < 1 && mk_time_ns() < end)
        mk_sleep_ns(1 * MS);
    ck_assert_msg(atomic_load(&victim.stage) >= 1, "the victim did not get its session going");
    nic_driver_stats_t st = driver_stats();
    ck_assert_uint_eq(st.session, 1);
    ck_assert_uint_eq(st.opened, 1);
    ck_assert_uint_eq(st.reaped + st.closed + st.client_deaths, 0);
    client_t b;
    client_init(&b, 0, true);
    ck_assert_int_eq(client_open_with(&b, b.shm, b.ntfn, NBUFS, BUFSZ), NIC_EBUSY);
    mk_cap_delete(b.shm);
    mk_shm_unmap(b.base, b.size);
    mk_cap_delete(b.ntfn);
}

/* After the victim died: the driver ended its session by itself (counted as
 * reaped, not closed), let go of the region and the capabilities (the
 * victim's shared memory and notification objects are freed, no mapping is
 * left), and a new client opens generation 2 with fresh counters and
 * reaches 10.0.2.2 (ARP, ping). */
static void after_victim(size_t ntfn_before)
{
    nic_driver_stats_t st;
    WAIT_DRIVER(st, st.reaped == 1);
    ck_assert_uint_eq(st.session, 0);
    ck_assert_uint_eq(st.closed, 0);
    ck_assert_uint_eq(st.client_deaths, 1);
    wait_count(shm_objects, 0, "shared memory objects after the reap");
    wait_count(ntfn_objects, ntfn_before, "notification objects after the reap");
    wait_count(sim_shm_mappings, 0, "mappings after the reap");

    client_t c;
    client_open(&c, true);
    ck_assert_uint_eq(c.gen, 2);
    nic_stats_t ns;
    ck_assert_int_eq(nic_get_stats(drv_ep, CALL_TIMEOUT, 1, &ns), NIC_ESTALE);
    ns = client_stats(&c);
    ck_assert_uint_eq(ns.tx_frames + ns.tx_rejected + ns.tx_filtered + ns.ring_errors, 0);
    uint8_t f[256], r[2048];
    size_t n = fr_arp_request(f, GUEST4, HOST4);
    client_send(&c, f, n);
    ck_assert_msg(client_expect(&c, is_arp_reply_from, HOST4, r, 3000 * MS) > 0,
                  "no ARP reply in the new session");
    n = fr_icmp4_echo(f, mac_slirp, GUEST4, HOST4, 0x5151, 1, 56);
    client_send(&c, f, n);
    ck_assert_msg(client_expect(&c, is_echo_reply, 0x5151, r, 3000 * MS) > 0,
                  "no echo reply from 10.0.2.2 in the new session");
    WAIT_STATS(&c, ns, ns.tx_frames == 2);
    ck_assert_uint_eq(ns.ring_errors, 0);
    st = driver_stats();
    ck_assert_uint_eq(st.session, 2);
    ck_assert_uint_eq(st.opened, 2);
    ck_assert_int_eq(nic_close(drv_ep, CALL_TIMEOUT, 2), 0);
    ck_assert_uint_eq(driver_stats().closed, 1);
}

START_TEST(test_client_killed)
{
    size_t ntfn_before = ntfn_baseline();
    mk_cap_t task;
    victim_run(VICTIM_HOLD, &task);
    ck_assert_int_eq(mk_task_kill(task, 9), MK_OK);
    int status = 0;
    ck_assert_int_eq(mk_task_wait(task, &status, CALL_TIMEOUT), MK_OK);
    ck_assert_int_eq(status, 9);
    after_victim(ntfn_before);
}
END_TEST

START_TEST(test_client_exits_without_close)
{
    size_t ntfn_before = ntfn_baseline();
    mk_cap_t task;
    victim_run(VICTIM_EXIT, &task);
    atomic_store(&victim.go, 1);
    int status = -1;
    ck_assert_int_eq(mk_task_wait(task, &status, CALL_TIMEOUT), MK_OK);
    ck_assert_int_eq(status, 0);
    after_victim(ntfn_before);
}
END_TEST

/* The client dies while it writes garbage into every index, slot and the
 * header of its region and keeps signalling: the driver counts what it
 * sees, never crashes, ends the session at the death notice, and the next
 * client works. */
START_TEST(test_client_dies_scribbling)
{
    size_t ntfn_before = ntfn_baseline();
    mk_cap_t task;
    victim_run(VICTIM_SCRIBBLE, &task);
    uint64_t end = mk_time_ns() + 5000 * MS;
    while (atomic_load(&victim.scribbles) < 20000 && mk_time_ns() < end)
        mk_sleep_ns(1 * MS);
    ck_assert_uint_ge(atomic_load(&victim.scribbles), 20000);
    /* The driver meets the garbage (impossible indices, bad descriptors)
     * and counts it. */
    nic_stats_t ns;
    for (int i = 0; i < 2500; i++) {
        ck_assert_int_eq(nic_get_stats(drv_ep, CALL_TIMEOUT, 1, &ns), 0);
        if (ns.ring_errors + ns.tx_rejected >= 10)
            break;
        mk_sleep_ns(2 * MS);
    }
    ck_assert_uint_ge(ns.ring_errors + ns.tx_rejected, 10);
    ck_assert_int_eq(mk_task_kill(task, 9), MK_OK); /* mid-scribble */
    ck_assert_int_eq(mk_task_wait(task, NULL, CALL_TIMEOUT), MK_OK);
    after_victim(ntfn_before);
    ck_assert_int_eq(mk_task_wait(drv_task, NULL, MK_NOWAIT), MK_ETIMEDOUT); /* still running */
}
END_TEST

static int bystander_main(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    return 0; /* holds a badged capability and dies at once */
}

/* A client that dies without a session (another badge) does not touch the
 * open one; the death is counted. */
START_TEST(test_other_client_dies)
{
    client_t c;
    client_open(&c, true);
    mk_cap_t task = start_client_task("bystander", 3, bystander_main);
    ck_assert_int_eq(mk_task_wait(task, NULL, CALL_TIMEOUT), MK_OK);
    nic_driver_stats_t st;
    WAIT_DRIVER(st, st.client_deaths == 1);
    ck_assert_uint_eq(st.reaped, 0);
    ck_assert_uint_eq(st.session, c.gen);
    uint8_t f[128], r[2048];
    size_t n = fr_arp_request(f, GUEST4, HOST4);
    client_send(&c, f, n);
    ck_assert_uint_gt(client_expect(&c, is_arp_reply_from, HOST4, r, 3000 * MS), 0);
    nic_stats_t ns;
    ck_assert_int_eq(nic_get_stats(drv_ep, CALL_TIMEOUT, c.gen, &ns), 0);
}
END_TEST

/* probe: one-way, no effect, never blocks; MK_EDEAD once the driver is gone. */
START_TEST(test_probe)
{
    for (int i = 0; i < 100; i++) {
        mk_err_t e = nic_probe(drv_ep, MK_NOWAIT);
        ck_assert_msg(e == MK_OK || e == MK_ETIMEDOUT, "probe: %s", mk_strerror(e));
    }
    nic_info_t info;
    ck_assert_int_eq(nic_get_info(drv_ep, CALL_TIMEOUT, &info), 0);
    ck_assert_uint_eq(driver_stats().opened, 0);
    /* The driver task's death takes its endpoint (nobody else may receive on
     * it once the test drops its own copy). */
    ck_assert_int_eq(mk_cap_delete(drv_ep_root), MK_OK);
    ck_assert_int_eq(mk_task_kill(drv_task, 9), MK_OK);
    ck_assert_int_eq(mk_task_wait(drv_task, NULL, CALL_TIMEOUT), MK_OK);
    ck_assert_int_eq(nic_probe(drv_ep, MK_NOWAIT), MK_EDEAD);
    ck_assert_int_eq(nic_get_info(drv_ep, CALL_TIMEOUT, &info), MK_EDEAD);
}
END_TEST

/* ---- Start-up failures (no fixture driver) ------------------------------------------ */

static void setup_bare(void)
{
    ck_assert_int_eq(sim_init(), MK_OK);
}

static int driver_status(const char *const *args, int nargs)
{
    mk_cap_t ep;
    mk_cap_t task = start_driver(args, nargs, &ep);
    int status = -1;
    ck_assert_int_eq(mk_task_wait(task, &status, 5000 * MS), MK_OK);
    return status;
}

START_TEST(test_bad_arguments)
{
    const char *a1[] = {"--forward", "tcp:0.0.0.0:8080-10.0.2.15:80"};
    ck_assert_int_eq(driver_status(a1, 2), 2);
    const char *a2[] = {"--bogus"};
    ck_assert_int_eq(driver_status(a2, 1), 2);
    const char *a3[] = {"--endpoint", "no-such-endpoint"};
    ck_assert_int_eq(driver_status(a3, 2), 1);
}
END_TEST

START_TEST(test_forward_port_in_use)
{
    int s = socket(AF_INET, SOCK_STREAM, 0);
    ck_assert_int_ge(s, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    ck_assert_int_eq(bind(s, (struct sockaddr *)&a, sizeof a), 0);
    ck_assert_int_eq(listen(s, 1), 0);
    socklen_t len = sizeof a;
    ck_assert_int_eq(getsockname(s, (struct sockaddr *)&a, &len), 0);
    char spec[96];
    snprintf(spec, sizeof spec, "tcp:127.0.0.1:%u-10.0.2.15:80", ntohs(a.sin_port));
    const char *args[] = {"--forward", spec};
    ck_assert_int_eq(driver_status(args, 2), 1);
    close(s);
}
END_TEST

static Suite *nic_suite(void)
{
    Suite *s = suite_create("nic");
    TCase *tc = tcase_create("session");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_get_info);
    tcase_add_test(tc, test_open_refusals);
    tcase_add_test(tc, test_generations);
    tcase_add_test(tc, test_dhcp_offer);
    tcase_add_test(tc, test_arp_reply);
    tcase_add_test(tc, test_icmp_echo);
    tcase_add_test(tc, test_icmp6_echo);
    tcase_add_test(tc, test_host_alias_tcp);
    tcase_add_test(tc, test_host_forward);
    tcase_add_test(tc, test_forbidden_destinations);
    tcase_add_test(tc, test_hostile_descriptors);
    tcase_add_test(tc, test_hostile_rx_free);
    tcase_add_test(tc, test_rx_dropped);
    suite_add_tcase(s, tc);
    TCase *td = tcase_create("death");
    tcase_add_checked_fixture(td, setup, teardown);
    tcase_set_timeout(td, 30);
    tcase_add_test(td, test_client_killed);
    tcase_add_test(td, test_client_exits_without_close);
    tcase_add_test(td, test_client_dies_scribbling);
    tcase_add_test(td, test_other_client_dies);
    tcase_add_test(td, test_probe);
    suite_add_tcase(s, td);
    TCase *ts = tcase_create("startup");
    tcase_add_checked_fixture(ts, setup_bare, teardown);
    tcase_set_timeout(ts, 30);
    tcase_add_test(ts, test_bad_arguments);
    tcase_add_test(ts, test_forward_port_in_use);
    suite_add_tcase(s, ts);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(nic_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

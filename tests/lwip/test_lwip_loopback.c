/*
 * test_lwip_loopback.c - lwIP as Ferry builds it, end to end over loopback.
 *
 * What this proves:
 *  - lwIP compiled with Ferry's lwipopts.h (NO_SYS=1, raw API) comes up and
 *    its "lo" netif carries TCP over IPv4 (127.0.0.1) and IPv6 (::1).
 *  - A whole TCP connection works when lwIP is driven only by polling, as
 *    netsrv's event loop will do: listen, connect, accept, data both ways
 *    (more than one receive window, so window updates must work), orderly
 *    close from both sides.
 *  - Every byte arrives, once, in order, with the right content; every
 *    segment sent was received (tcp.xmit == tcp.recv), and no protocol,
 *    checksum, memory or routing error was counted.
 *  - Window scaling (RFC 7323) is negotiated and a window larger than
 *    64 KiB is advertised and filled: a receiver that stops reading takes
 *    TCP_WND (256 KiB) before its window closes.
 *  - When both applications stop reading, both windows close and the
 *    connection goes quiet instead of ACK-storming (an lwIP 2.1.3 bug, fixed
 *    by a patch in subprojects/packagefiles/), and recovers once they read.
 *  - A delayed ACK due while Nagle holds data back is sent (another lwIP
 *    2.1.3 bug, fixed by a patch in subprojects/packagefiles/), so two ends
 *    that both owe an ACK and both hold a small segment do not sit until a
 *    retransmission timeout.
 *  - The port's sys_now() (mk_time_ns() in ms) drives lwIP's timers: the
 *    active closer stays in TIME_WAIT until 2 * TCP_MSL of clock time passed,
 *    then is freed.
 *  - Nothing leaks: afterwards every memp pool and the heap are back to what
 *    they were before the connection (lwIP's MEM/MEMP stats).
 *
 * The clock is fake (mk_time_ns below, advanced by the poll loop), so the
 * test is deterministic and needs no simulator; every loop is bounded.
 */
#include <check.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ferry/mk.h"
#include "lwip/init.h"
#include "lwip/ip_addr.h"
#include "lwip/memp.h"
#include "lwip/netif.h"
#include "lwip/priv/tcp_priv.h" /* TCP_MSL, tcp_send_fin, tcp_split_unsent_seg */
#include "lwip/stats.h"
#include "lwip/tcp.h"
#include "lwip/timeouts.h"

/* ---- Fake clock: the port's sys_now() reads this --------------------------- */

#define MS_NS 1000000ull
#define STEP_NS (10 * MS_NS) /* fake time that passes per poll step */

static uint64_t fake_now_ns = 1000 * MS_NS;

uint64_t mk_time_ns(void)
{
    return fake_now_ns;
}

/* One turn of a NO_SYS event loop: deliver looped packets, run due timers,
 * let time pass. */
static void poll_step(void)
{
    netif_poll_all();
    sys_check_timeouts();
    fake_now_ns += STEP_NS;
}

/* ---- One end of a connection ------------------------------------------------ */

#define CLIENT_BYTES (2u * TCP_WND + 100000u) /* > TCP_WND: needs window updates */
#define SERVER_BYTES (TCP_WND + 60000u)
#define CHUNK 1024u

typedef struct side {
    const char *name;
    struct tcp_pcb *pcb; /* NULL until connected/accepted, and after an error */
    uint8_t tx_seed;     /* content this side sends */
    uint8_t rx_seed;     /* content it expects */
    size_t tx_total;     /* bytes to send */
    size_t rx_total;     /* bytes expected */
    size_t tx_queued;    /* handed to tcp_write */
    size_t tx_acked;     /* reported by the sent callback */
    size_t rx_bytes;     /* received and verified */
    size_t rx_bad;       /* received bytes with wrong content */
    int connected;       /* connected (client) / accepted (server) callbacks */
    int errors;          /* error callbacks */
    bool eof;            /* peer's FIN seen (recv callback with NULL) */
    bool closed;         /* we called tcp_close */
    bool stalled;        /* the application "stops reading": no tcp_recved */
    size_t rx_held;      /* received while stalled, not yet tcp_recved */
} side_t;

static uint8_t pattern(uint8_t seed, size_t i)
{
    return (uint8_t)(seed + i * 31u + (i >> 8));
}

/* Queue as much of the remaining data as lwIP takes now. */
static void side_push(side_t *s)
{
    uint8_t buf[CHUNK];

    while (s->pcb != NULL && !s->closed && s->tx_queued < s->tx_total) {
        size_t len = s->tx_total - s->tx_queued;
        if (len > sizeof(buf))
            len = sizeof(buf);
        if (len > tcp_sndbuf(s->pcb))
            len = tcp_sndbuf(s->pcb);
        if (len == 0 || tcp_sndqueuelen(s->pcb) >= TCP_SND_QUEUELEN - 4)
            break;
        for (size_t i = 0; i < len; i++)
            buf[i] = pattern(s->tx_seed, s->tx_queued + i);
        err_t err = tcp_write(s->pcb, buf, (u16_t)len, TCP_WRITE_FLAG_COPY);
        ck_assert_msg(err == ERR_OK, "%s: tcp_write: %d", s->name, err);
        s->tx_queued += len;
    }
    if (s->pcb != NULL && !s->closed)
        ck_assert_int_eq(tcp_output(s->pcb), ERR_OK);
}

static err_t on_recv(void *arg, struct tcp_pcb *pcb, struct pbuf *p, err_t err)
{
    side_t *s = arg;

    ck_assert_int_eq(err, ERR_OK);
    if (p == NULL) {
        ck_assert_msg(!s->eof, "%s: second FIN", s->name);
        s->eof = true;
        return ERR_OK;
    }
    for (struct pbuf *q = p; q != NULL; q = q->next) {
        const uint8_t *data = q->payload;
        for (u16_t i = 0; i < q->len; i++) {
            if (data[i] != pattern(s->rx_seed, s->rx_bytes))
                s->rx_bad++;
            s->rx_bytes++;
        }
    }
    if (s->stalled)
        s->rx_held += p->tot_len;
    else
        tcp_recved(pcb, p->tot_len);
    pbuf_free(p);
    return ERR_OK;
}

static err_t on_sent(void *arg, struct tcp_pcb *pcb, u16_t len)
{
    side_t *s = arg;

    (void)pcb;
    s->tx_acked += len;
    side_push(s);
    return ERR_OK;
}

static void on_error(void *arg, err_t err)
{
    side_t *s = arg;

    s->errors++;
    s->pcb = NULL; /* lwIP has freed it */
    ck_abort_msg("%s: connection error %d", s->name, err);
}

static void side_attach(side_t *s, struct tcp_pcb *pcb)
{
    s->pcb = pcb;
    tcp_arg(pcb, s);
    tcp_recv(pcb, on_recv);
    tcp_sent(pcb, on_sent);
    tcp_err(pcb, on_error);
}

static err_t on_connected(void *arg, struct tcp_pcb *pcb, err_t err)
{
    side_t *s = arg;

    ck_assert_int_eq(err, ERR_OK);
    ck_assert_ptr_eq(pcb, s->pcb);
    s->connected++;
    side_push(s);
    return ERR_OK;
}

static err_t on_accept(void *arg, struct tcp_pcb *newpcb, err_t err)
{
    side_t *s = arg;

    ck_assert_int_eq(err, ERR_OK);
    ck_assert_ptr_nonnull(newpcb);
    ck_assert_msg(s->pcb == NULL, "server: second connection accepted");
    side_attach(s, newpcb);
    s->connected++;
    side_push(s);
    return ERR_OK;
}

static void side_close(side_t *s)
{
    ck_assert_ptr_nonnull(s->pcb);
    ck_assert_int_eq(tcp_close(s->pcb), ERR_OK);
    s->closed = true;
    /* The pcb now belongs to lwIP; its callbacks stay set so that the FIN
     * still reaches on_recv. */
}

/* The application reads again: give the held bytes back to the window. */
static void side_resume(side_t *s)
{
    s->stalled = false;
    while (s->rx_held > 0) {
        u16_t len = s->rx_held > 0xffff ? 0xffff : (u16_t)s->rx_held;
        tcp_recved(s->pcb, len);
        s->rx_held -= len;
    }
}

/* A receiver that stopped reading got its whole window: TCP_WND, less what
 * scaling cannot announce (a window below one unit of 2^TCP_RCV_SCALE
 * bytes shows as 0, and lwIP's persist probes repeat the same byte). */
static bool window_full(const side_t *s)
{
    return s->rx_bytes <= TCP_WND && s->rx_bytes + (1u << TCP_RCV_SCALE) > TCP_WND;
}

static bool side_done(const side_t *s)
{
    return s->tx_acked == s->tx_total && s->rx_bytes == s->rx_total;
}

/* ---- Leak and error accounting ----------------------------------------------- */

typedef struct snapshot {
    mem_size_t memp_used[MEMP_MAX];
    mem_size_t mem_used;
    struct stats_proto link, tcp, ip, ip6, icmp, icmp6;
} snapshot_t;

static snapshot_t before;

static void snapshot_take(snapshot_t *snap)
{
    for (int i = 0; i < MEMP_MAX; i++)
        snap->memp_used[i] = lwip_stats.memp[i]->used;
    snap->mem_used = lwip_stats.mem.used;
    snap->link = lwip_stats.link;
    snap->tcp = lwip_stats.tcp;
    snap->ip = lwip_stats.ip;
    snap->ip6 = lwip_stats.ip6;
    snap->icmp = lwip_stats.icmp;
    snap->icmp6 = lwip_stats.icmp6;
}

static void setup(void)
{
    snapshot_take(&before);
}

static void check_no_leaks(void)
{
    for (int i = 0; i < MEMP_MAX; i++) {
        const struct stats_mem *m = lwip_stats.memp[i];
        ck_assert_msg(m->used == before.memp_used[i], "memp pool %s: %u in use, %u before", m->name,
                      (unsigned)m->used, (unsigned)before.memp_used[i]);
        ck_assert_msg(m->err == 0, "memp pool %s: %u allocation failures", m->name,
                      (unsigned)m->err);
        ck_assert_msg(m->illegal == 0, "memp pool %s: %u illegal frees", m->name,
                      (unsigned)m->illegal);
    }
    ck_assert_msg(lwip_stats.mem.used == before.mem_used, "heap: %u bytes in use, %u before",
                  (unsigned)lwip_stats.mem.used, (unsigned)before.mem_used);
    ck_assert_uint_eq(lwip_stats.mem.err, 0);
    ck_assert_uint_eq(lwip_stats.mem.illegal, 0);
}

/* Counters that must not have moved on a lossless loopback. */
static void check_no_errors(const char *what, const struct stats_proto *now,
                            const struct stats_proto *then)
{
#define UNCHANGED(field)                                                               \
    ck_assert_msg(now->field == then->field, "%s.%s went from %u to %u", what, #field, \
                  (unsigned)then->field, (unsigned)now->field)
    UNCHANGED(drop);
    UNCHANGED(chkerr);
    UNCHANGED(lenerr);
    UNCHANGED(memerr);
    UNCHANGED(rterr);
    UNCHANGED(proterr);
    UNCHANGED(opterr);
    UNCHANGED(err);
#undef UNCHANGED
}

static unsigned delta(STAT_COUNTER now, STAT_COUNTER then)
{
    return (unsigned)(STAT_COUNTER)(now - then);
}

/* ---- The scenario --------------------------------------------------------- */

#define MAX_STEPS_OPEN 1000
#define MAX_STEPS_TRANSFER 20000 /* 200 s of fake time; needs far fewer */
#define MAX_STEPS_CLOSE 1000
#define TIME_WAIT_NS ((uint64_t)2 * TCP_MSL * MS_NS)
#define MAX_STEPS_TIME_WAIT ((TIME_WAIT_NS + 10000 * MS_NS) / STEP_NS)

typedef struct conn {
    side_t client, server;
    struct tcp_pcb *listener;
    const ip_addr_t *addr;
    u8_t iptype;
} conn_t;

static void conn_init(conn_t *c, const ip_addr_t *addr, u8_t iptype)
{
    *c = (conn_t){
        .client = {.name = "client",
                   .tx_seed = 0x11,
                   .rx_seed = 0x77,
                   .tx_total = CLIENT_BYTES,
                   .rx_total = SERVER_BYTES},
        .server = {.name = "server",
                   .tx_seed = 0x77,
                   .rx_seed = 0x11,
                   .tx_total = SERVER_BYTES,
                   .rx_total = CLIENT_BYTES},
        .addr = addr,
        .iptype = iptype,
    };
}

static mem_size_t tcp_pcbs_in_use(void)
{
    return lwip_stats.memp[MEMP_TCP_PCB]->used;
}

/* listen, connect, accept */
static void conn_open(conn_t *c, u16_t port)
{
    struct tcp_pcb *pcb = tcp_new_ip_type(c->iptype);
    ck_assert_ptr_nonnull(pcb);
    ck_assert_int_eq(tcp_bind(pcb, c->addr, port), ERR_OK);
    c->listener = tcp_listen_with_backlog(pcb, 1);
    ck_assert_ptr_nonnull(c->listener);
    tcp_arg(c->listener, &c->server);
    tcp_accept(c->listener, on_accept);

    pcb = tcp_new_ip_type(c->iptype);
    ck_assert_ptr_nonnull(pcb);
    side_attach(&c->client, pcb);
    ck_assert_int_eq(tcp_connect(pcb, c->addr, port, on_connected), ERR_OK);

    for (int steps = 0; steps < MAX_STEPS_OPEN; steps++) {
        if (c->client.connected && c->server.connected)
            break;
        poll_step();
    }
    ck_assert_int_eq(c->client.connected, 1);
    ck_assert_int_eq(c->server.connected, 1);
    ck_assert_uint_eq(c->server.pcb->remote_port, c->client.pcb->local_port);
    ck_assert_uint_eq(c->client.pcb->remote_port, port);
    ck_assert(ip_addr_cmp(&c->server.pcb->remote_ip, c->addr));

    /* one connection is all this test wants */
    ck_assert_int_eq(tcp_close(c->listener), ERR_OK);
    c->listener = NULL;
}

/* data both ways at once, until every byte is delivered and acknowledged */
static void conn_transfer(conn_t *c)
{
    side_t *cl = &c->client, *sv = &c->server;
    int steps;

    for (steps = 0; steps < MAX_STEPS_TRANSFER; steps++) {
        if (side_done(cl) && side_done(sv))
            break;
        side_push(cl);
        side_push(sv);
        poll_step();
    }
    ck_assert_msg(
        steps < MAX_STEPS_TRANSFER,
        "transfer stalled: client sent %zu/%zu got %zu/%zu, server sent %zu/%zu got %zu/%zu",
        cl->tx_acked, cl->tx_total, cl->rx_bytes, cl->rx_total, sv->tx_acked, sv->tx_total,
        sv->rx_bytes, sv->rx_total);
    ck_assert_uint_eq(cl->rx_bytes, SERVER_BYTES);
    ck_assert_uint_eq(sv->rx_bytes, CLIENT_BYTES);
    ck_assert_uint_eq(cl->rx_bad, 0);
    ck_assert_uint_eq(sv->rx_bad, 0);
    ck_assert_uint_eq(cl->tx_queued, CLIENT_BYTES);
    ck_assert_uint_eq(sv->tx_queued, SERVER_BYTES);
}

/* Orderly close, client first (it ends in TIME_WAIT), then the server; then
 * prove that TIME_WAIT ends on time and nothing leaked. */
static void conn_close_and_check(conn_t *c)
{
    side_t *cl = &c->client, *sv = &c->server;
    int steps;

    side_close(cl);
    for (steps = 0; steps < MAX_STEPS_CLOSE && !sv->eof; steps++)
        poll_step();
    ck_assert_msg(sv->eof, "server never saw the client's FIN");
    ck_assert(!cl->eof);
    side_close(sv);
    for (steps = 0; steps < MAX_STEPS_CLOSE && !(cl->eof && tcp_pcbs_in_use() == 1); steps++)
        poll_step();
    ck_assert_msg(cl->eof, "client never saw the server's FIN");
    ck_assert_msg(tcp_pcbs_in_use() == 1, "%u TCP pcbs in use, expected 1 (TIME_WAIT)",
                  (unsigned)tcp_pcbs_in_use());

    /* TIME_WAIT ends after 2 * TCP_MSL of sys_now() time, not before */
    uint64_t tw_start = fake_now_ns;
    for (steps = 0; steps < (int)MAX_STEPS_TIME_WAIT && tcp_pcbs_in_use() != 0; steps++)
        poll_step();
    ck_assert_msg(tcp_pcbs_in_use() == 0, "TIME_WAIT pcb never freed");
    uint64_t tw_ns = fake_now_ns - tw_start;
    ck_assert_msg(tw_ns + 1000 * MS_NS >= TIME_WAIT_NS, "TIME_WAIT lasted only %llu ms",
                  (unsigned long long)(tw_ns / MS_NS));
    /* one more second: lwIP's TCP timer notices there is nothing left */
    for (steps = 0; steps < 100; steps++)
        poll_step();

    ck_assert_int_eq(cl->errors, 0);
    ck_assert_int_eq(sv->errors, 0);

    /* every segment sent was received; at least the data segments were sent */
    unsigned xmit = delta(lwip_stats.tcp.xmit, before.tcp.xmit);
    unsigned recv = delta(lwip_stats.tcp.recv, before.tcp.recv);
    unsigned data_segs =
        (CLIENT_BYTES + TCP_MSS - 1) / TCP_MSS + (SERVER_BYTES + TCP_MSS - 1) / TCP_MSS;
    ck_assert_uint_eq(xmit, recv);
    ck_assert_uint_ge(xmit, data_segs);
    ck_assert_uint_eq(delta(lwip_stats.link.xmit, before.link.xmit),
                      delta(lwip_stats.link.recv, before.link.recv));
    check_no_errors("tcp", &lwip_stats.tcp, &before.tcp);
    check_no_errors("link", &lwip_stats.link, &before.link);
    check_no_errors("ip", &lwip_stats.ip, &before.ip);
    check_no_errors("ip6", &lwip_stats.ip6, &before.ip6);
    /* IP carried our TCP segments and nothing else (but ICMP, if any) */
    if (c->iptype == IPADDR_TYPE_V4) {
        ck_assert_uint_eq(delta(lwip_stats.ip.recv, before.ip.recv),
                          recv + delta(lwip_stats.icmp.recv, before.icmp.recv));
    } else {
        ck_assert_uint_eq(delta(lwip_stats.ip6.recv, before.ip6.recv),
                          recv + delta(lwip_stats.icmp6.recv, before.icmp6.recv));
    }

    check_no_leaks();
}

static void tcp_roundtrip(const char *addr_str, u8_t iptype, u16_t port)
{
    ip_addr_t addr;
    conn_t c;

    ck_assert(ipaddr_aton(addr_str, &addr));
    ck_assert_int_eq(IP_GET_TYPE(&addr), iptype);
    conn_init(&c, &addr, iptype);
    conn_open(&c, port);
    conn_transfer(&c);
    conn_close_and_check(&c);
}

START_TEST(tcp_over_ipv4_loopback)
{
    tcp_roundtrip("127.0.0.1", IPADDR_TYPE_V4, 7001);
}
END_TEST

START_TEST(tcp_over_ipv6_loopback)
{
    tcp_roundtrip("::1", IPADDR_TYPE_V6, 7002);
}
END_TEST

/* Both applications stop reading while both have data queued: both windows
 * close. The connection must go quiet (only persist probes and their ACKs),
 * not ACK-storm (lwIP 2.1.3 did, inside netif_poll(), for ever: see
 * subprojects/packagefiles/lwip-2.1.3-tcp-zero-window-ack-storm.diff), and
 * must finish normally once the applications read again. */
START_TEST(tcp_both_windows_closed)
{
    ip_addr_t addr;
    conn_t c;
    int steps;

    ck_assert(ipaddr_aton("127.0.0.1", &addr));
    conn_init(&c, &addr, IPADDR_TYPE_V4);
    c.client.stalled = true;
    c.server.stalled = true;
    conn_open(&c, 7003);

    for (steps = 0; steps < MAX_STEPS_TRANSFER; steps++) {
        if (window_full(&c.client) && window_full(&c.server))
            break;
        side_push(&c.client);
        side_push(&c.server);
        poll_step();
    }
    ck_assert_msg(window_full(&c.client) && window_full(&c.server),
                  "windows not filled: client got %zu, server %zu of %u", c.client.rx_bytes,
                  c.server.rx_bytes, (unsigned)TCP_WND);

    /* 60 s with both windows closed: a few probes, no storm, no data */
    size_t client_got = c.client.rx_bytes, server_got = c.server.rx_bytes;
    STAT_COUNTER xmit0 = lwip_stats.tcp.xmit;
    for (steps = 0; steps < 6000; steps++)
        poll_step();
    unsigned quiet_xmit = delta(lwip_stats.tcp.xmit, xmit0);
    ck_assert_msg(quiet_xmit < 100, "%u segments sent while both windows were closed", quiet_xmit);
    /* (a probe may carry one of the last few bytes the window holds) */
    ck_assert_msg(window_full(&c.client) && c.client.rx_bytes >= client_got,
                  "client: %zu bytes, %zu before", c.client.rx_bytes, client_got);
    ck_assert_msg(window_full(&c.server) && c.server.rx_bytes >= server_got,
                  "server: %zu bytes, %zu before", c.server.rx_bytes, server_got);
    ck_assert_int_eq(c.client.errors + c.server.errors, 0);

    side_resume(&c.client);
    side_resume(&c.server);
    conn_transfer(&c);
    conn_close_and_check(&c);
}
END_TEST

/* Window scaling: both ends agree on it in the handshake, each advertises
 * a window beyond what 16 bits can say, and a receiver that stops reading
 * lets the sender fill all of it (more than 64 KiB in flight), not more. */
START_TEST(tcp_window_scaled)
{
    ip_addr_t addr;
    conn_t c;
    int steps;

    ck_assert_uint_gt(TCP_WND, 0xffff);
    ck_assert(ipaddr_aton("127.0.0.1", &addr));
    conn_init(&c, &addr, IPADDR_TYPE_V4);
    c.server.stalled = true;
    conn_open(&c, 7005);
    side_t *sides[2] = {&c.client, &c.server};
    for (int k = 0; k < 2; k++) {
        struct tcp_pcb *pcb = sides[k]->pcb;
        ck_assert_msg(tcp_is_flag_set(pcb, TF_WND_SCALE), "%s: no window scaling", sides[k]->name);
        ck_assert_uint_eq(pcb->rcv_scale, TCP_RCV_SCALE);
        ck_assert_uint_eq(pcb->snd_scale, TCP_RCV_SCALE);
    }
    /* Each learnt the other's window from a scaled announcement (a SYN's
     * own window field is never scaled: at most 65535). */
    ck_assert_msg(c.client.pcb->snd_wnd_max > 0xffff, "the client saw a window of %u at most",
                  (unsigned)c.client.pcb->snd_wnd_max);
    ck_assert_msg(c.server.pcb->snd_wnd_max > 0xffff, "the server saw a window of %u at most",
                  (unsigned)c.server.pcb->snd_wnd_max);
    for (steps = 0; steps < MAX_STEPS_TRANSFER && !window_full(&c.server); steps++) {
        side_push(&c.client);
        side_push(&c.server);
        poll_step();
    }
    ck_assert_msg(window_full(&c.server), "the server got %zu of %u", c.server.rx_bytes,
                  (unsigned)TCP_WND);
    size_t got = c.server.rx_bytes;
    for (steps = 0; steps < 100; steps++) { /* nothing beyond the window */
        side_push(&c.client);
        poll_step();
    }
    ck_assert_uint_eq(c.server.rx_bytes, got);
    ck_assert_uint_eq(c.server.rx_bad, 0);
    side_resume(&c.server);
    conn_transfer(&c);
    conn_close_and_check(&c);
}
END_TEST

/* Both ends close (for tests that wrote by hand: no byte counts to
 * check); every PCB is gone after TIME-WAIT, nothing leaked. */
static void conn_close_by_hand(conn_t *c)
{
    side_close(&c->client);
    side_close(&c->server);
    for (int steps = 0; steps < (int)MAX_STEPS_TIME_WAIT + 200 && tcp_pcbs_in_use() != 0; steps++)
        poll_step();
    ck_assert_uint_eq(tcp_pcbs_in_use(), 0);
    ck_assert_int_eq(c->client.errors + c->server.errors, 0);
    check_no_leaks();
}

/* Queue n bytes of s's pattern (continuing its stream) and try to send. */
static void side_write(side_t *s, size_t n)
{
    uint8_t buf[64];
    ck_assert_uint_le(n, sizeof buf);
    for (size_t i = 0; i < n; i++)
        buf[i] = pattern(s->tx_seed, s->tx_queued + i);
    ck_assert_int_eq(tcp_write(s->pcb, buf, (u16_t)n, TCP_WRITE_FLAG_COPY), ERR_OK);
    s->tx_queued += n;
    s->tx_total = s->tx_queued;
    ck_assert_int_eq(tcp_output(s->pcb), ERR_OK);
}

/* A delayed ACK is due on both ends while both have a small segment held
 * back by Nagle's algorithm (each waits for the ACK of its own earlier
 * segment). lwIP 2.1.3's tcp_output() then sent neither the data nor the
 * ACK, and tcp_fasttmr() cleared the ACK flags afterwards: both ends sat
 * until a retransmission timeout. With
 * subprojects/packagefiles/lwip-2.1.3-tcp-ack-held-by-nagle.diff one run
 * of the fast timer sends both ACKs, and the held segments follow. */
START_TEST(tcp_delayed_ack_with_nagle_held_data)
{
    ip_addr_t addr;
    conn_t c;

    ck_assert(ipaddr_aton("127.0.0.1", &addr));
    conn_init(&c, &addr, IPADDR_TYPE_V4);
    c.client.tx_total = c.server.tx_total = 0; /* this test writes by hand */
    c.client.rx_total = c.server.rx_total = 20;
    conn_open(&c, 7004);
    side_t *sides[2] = {&c.client, &c.server};

    /* 1. Both send 10 bytes before either receives: neither segment
     * acknowledges anything new; each end then owes a delayed ACK. */
    for (int k = 0; k < 2; k++)
        side_write(sides[k], 10);
    netif_poll_all();
    for (int k = 0; k < 2; k++) {
        ck_assert_uint_eq(sides[k]->rx_bytes, 10);
        ck_assert_ptr_nonnull(sides[k]->pcb->unacked);
        ck_assert(tcp_is_flag_set(sides[k]->pcb, TF_ACK_DELAY));
    }
    /* 2. 10 more bytes each: Nagle holds them (a small segment while data
     * is unacknowledged). */
    for (int k = 0; k < 2; k++) {
        side_write(sides[k], 10);
        ck_assert_ptr_nonnull(sides[k]->pcb->unsent);
    }
    netif_poll_all();
    ck_assert_uint_eq(c.client.rx_bytes + c.server.rx_bytes, 20);
    /* 3. One run of the fast timer, no time passing otherwise: the ACKs go
     * out, and the held data after them. */
    tcp_fasttmr();
    netif_poll_all();
    for (int k = 0; k < 2; k++) {
        ck_assert_msg(sides[k]->rx_bytes == 20, "%s received %zu of 20 bytes", sides[k]->name,
                      sides[k]->rx_bytes);
        ck_assert_uint_eq(sides[k]->rx_bad, 0);
    }

    conn_close_by_hand(&c);
}
END_TEST

/* A segment that carries the FIN is cut to fit a window (lwIP's persist
 * timer and netsrv's tx_fit_window call tcp_split_unsent_seg). lwIP 2.1.3
 * left the FIN on the first part as well: the peer ended the stream at the
 * cut and the rest was lost behind a clean end of file. With
 * subprojects/packagefiles/lwip-2.1.3-tcp-split-keeps-fin.diff only the
 * remainder carries it, and the peer gets every byte, then the FIN. */
START_TEST(tcp_split_keeps_fin_last)
{
    ip_addr_t addr;
    conn_t c;
    uint8_t buf[40];

    ck_assert(ipaddr_aton("127.0.0.1", &addr));
    conn_init(&c, &addr, IPADDR_TYPE_V4);
    c.client.tx_total = c.server.tx_total = 0; /* this test writes by hand */
    c.client.rx_total = 0;
    c.server.rx_total = sizeof buf;
    conn_open(&c, 7006);
    struct tcp_pcb *pcb = c.client.pcb;

    /* 40 bytes queued and the FIN on the same segment, nothing sent yet
     * (what tcp_shutdown() does, without its tcp_output()). */
    for (size_t i = 0; i < sizeof buf; i++)
        buf[i] = pattern(c.client.tx_seed, i);
    ck_assert_int_eq(tcp_write(pcb, buf, sizeof buf, TCP_WRITE_FLAG_COPY), ERR_OK);
    c.client.tx_queued = c.client.tx_total = sizeof buf;
    ck_assert_int_eq(tcp_send_fin(pcb), ERR_OK);
    pcb->state = FIN_WAIT_1;
    ck_assert_ptr_nonnull(pcb->unsent);
    ck_assert_ptr_null(pcb->unsent->next);
    ck_assert(TCPH_FLAGS(pcb->unsent->tcphdr) & TCP_FIN);

    ck_assert_int_eq(tcp_split_unsent_seg(pcb, 16), ERR_OK);
    struct tcp_seg *first = pcb->unsent, *rest = first->next;
    ck_assert_ptr_nonnull(rest);
    ck_assert_uint_eq(first->len, 16);
    ck_assert_uint_eq(rest->len, sizeof buf - 16);
    ck_assert_msg(!(TCPH_FLAGS(first->tcphdr) & TCP_FIN), "the first part kept the FIN");
    ck_assert(TCPH_FLAGS(rest->tcphdr) & TCP_FIN);

    ck_assert_int_eq(tcp_output(pcb), ERR_OK);
    for (int steps = 0; steps < MAX_STEPS_CLOSE && !c.server.eof; steps++)
        poll_step();
    ck_assert_uint_eq(c.server.rx_bytes, sizeof buf);
    ck_assert_uint_eq(c.server.rx_bad, 0);
    ck_assert(c.server.eof);

    conn_close_by_hand(&c);
}
END_TEST

/* The loopback netif is there and up with both addresses. */
START_TEST(loopif_is_up)
{
    ip_addr_t v4, v6;
    struct netif *lo = netif_find("lo0");

    ck_assert_ptr_nonnull(lo);
    ck_assert(netif_is_up(lo));
    ck_assert(netif_is_link_up(lo));
    ck_assert(ipaddr_aton("127.0.0.1", &v4));
    ck_assert(ip4_addr_cmp(netif_ip4_addr(lo), ip_2_ip4(&v4)));
    ck_assert(ipaddr_aton("::1", &v6));
    ck_assert(ip6_addr_cmp_zoneless(netif_ip6_addr(lo, 0), ip_2_ip6(&v6)));
    ck_assert(ip6_addr_isvalid(netif_ip6_addr_state(lo, 0)));
}
END_TEST

Suite *lwip_loopback_suite(void);

Suite *lwip_loopback_suite(void)
{
    Suite *s = suite_create("lwip_loopback");
    TCase *tc = tcase_create("tcp");

    tcase_add_checked_fixture(tc, setup, NULL);
    tcase_add_test(tc, loopif_is_up);
    tcase_add_test(tc, tcp_over_ipv4_loopback);
    tcase_add_test(tc, tcp_over_ipv6_loopback);
    tcase_add_test(tc, tcp_both_windows_closed);
    tcase_add_test(tc, tcp_window_scaled);
    tcase_add_test(tc, tcp_delayed_ack_with_nagle_held_data);
    tcase_add_test(tc, tcp_split_keeps_fin_last);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    /* Once: with CK_FORK every test starts from this state. Let lwIP's
     * start-up chatter on "lo" (three IPv6 router solicitations, 4 s apart)
     * pass first, so the tests can account for every packet. */
    lwip_init();
    for (int i = 0; i < (int)(30000 * MS_NS / STEP_NS); i++)
        poll_step();

    SRunner *sr = srunner_create(lwip_loopback_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

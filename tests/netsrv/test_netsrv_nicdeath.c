/*
 * test_netsrv_nicdeath.c - proves what netsrv does when a NIC driver dies
 * under an open session, and when a driver comes back.
 *
 * With the fake driver (fake_nic.c; the test keeps no receive right to its
 * endpoint, so the endpoint dies with the driver task):
 *  - the driver task is killed while two applications (tasks on
 *    libferrysock) run a TCP echo over netsrv's loopback: within about a
 *    second nic0 shows down, link down and IF_NO_DRIVER, driver_deaths is
 *    1, the session region is freed; netsrv keeps answering netsrv.idl, the
 *    echo goes on (bytes keep flowing, verified byte for byte), ping to
 *    127.0.0.1 works;
 *  - traffic toward the dead interface fails at once and nothing hangs: a
 *    netsrv.idl ping of the peer gets ENETUNREACH, a TCP connect from an
 *    application gets ENETUNREACH, a UDP datagram is dropped and counted in
 *    the sender's client counters;
 *  - a new driver task on a new endpoint, given to netsrv under the NIC's
 *    name, is found: the session reopens (reattaches 1), the interface is
 *    up again with its static address, and the peer answers pings;
 *  - a capability whose endpoint is already dead is tried, deleted, and the
 *    next good one still works.
 *
 * With the real slirp driver (nic-slirp, started as a task): DHCP gives
 * 10.0.2.15; the driver is killed: the interface goes down and the DHCP
 * address is removed; a new nic-slirp given under the same name: DHCP
 * runs again (10.0.2.15 bound) and 10.0.2.2 answers pings.
 *
 * Each test runs in its own process (lwIP is global). Network safety: the
 * fake wire never leaves the process (10.0.0.0/24); slirp traffic goes only
 * to slirp's own DHCP server and its host alias 10.0.2.2 (ICMP echo,
 * answered by slirp). Every wait is bounded.
 */
#include "fake_nic.h"
#include "wire.h"

#include <check.h>
#include <errno.h>
#include <ferry/mk.h>
#include <ferry/sim.h>
#include <ferry/socket.h>
#include <netsrv_client.h>
#include <netsrv_component.h>
#include <nic_slirp.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MS 1000000ull
#define CALL (5000 * MS)
#define NIC0 0u /* netsrv.idl index of nic0 */

static mk_cap_t srv_ep;   /* netsrv's endpoint, all rights (to mint the apps' badges) */
static mk_cap_t srv;      /* the test's netsrv.idl capability (badge 7) */
static mk_cap_t srv_task; /* netsrv's task */

/* ---- netsrv ------------------------------------------------------------------------------ */

/* Start netsrv with `args`; `nic` (a send capability to a driver's
 * endpoint) becomes its "nic0" with badge 1. Returns once it serves. */
static void netsrv_start(const char *const *args, mk_cap_t nic)
{
    ck_assert_int_eq(mk_ep_create(&srv_ep), MK_OK);
    ck_assert_int_eq(mk_cap_mint(srv_ep, MK_RIGHT_SEND, 7, &srv), MK_OK);
    ck_assert_int_eq(mk_task_create("netsrv", &srv_task), MK_OK);
    ck_assert_int_eq(mk_task_give(srv_task, srv_ep, MK_RIGHT_RECV, 0, "netsrv", NULL), MK_OK);
    ck_assert_int_eq(mk_task_give(srv_task, nic, MK_RIGHT_SEND, 1, "nic0", NULL), MK_OK);
    char *argv[16] = {"netsrv"};
    int argc = 1;
    for (; args[argc - 1] != NULL && argc < 15; argc++)
        argv[argc] = (char *)args[argc - 1];
    ck_assert_int_eq(mk_task_start(srv_task, netsrv_main, argc, argv), MK_OK);
    uint32_t n = 0;
    ck_assert_int_eq(netsrv_get_netif_count(srv, CALL, &n), 0);
    ck_assert_uint_eq(n, 2);
}

/* Give netsrv a driver capability under "nic0" again (the name is free once
 * netsrv noticed the death). */
static void netsrv_give_nic(mk_cap_t nic)
{
    ck_assert_int_eq(mk_task_give(srv_task, nic, MK_RIGHT_SEND, 1, "nic0", NULL), MK_OK);
}

typedef struct netif_view {
    netsrv_netif_info_t ni;
    netsrv_counters_t c;
} netif_view_t;

static netif_view_t nic0(void)
{
    char name[NETSRV_NAME_MAX + 1];
    netif_view_t v;
    ck_assert_int_eq(netsrv_get_netif(srv, CALL, NIC0, name, &v.ni, &v.c), 0);
    ck_assert_str_eq(name, "nic0");
    return v;
}

/* Wait (bounded) until nic0's view satisfies a condition. */
#define WAIT_NIC0(v, cond, timeout_ms)                                                  \
    do {                                                                                \
        uint64_t end_ = mk_time_ns() + (timeout_ms)*MS;                                 \
        for (;;) {                                                                      \
            v = nic0();                                                                 \
            if ((cond) || mk_time_ns() >= end_)                                         \
                break;                                                                  \
            mk_sleep_ns(5 * MS);                                                        \
        }                                                                               \
        ck_assert_msg(cond, "nic0 never satisfied: " #cond " (flags %#x)", v.ni.flags); \
    } while (0)

#define IF_WORKING (NETSRV_IF_UP | NETSRV_IF_LINK_UP)

static netsrv_addr_t ip4(uint32_t a)
{
    return (netsrv_addr_t){.family = NETSRV_AF_INET, .lo = a};
}

static int32_t ping(uint32_t dst, uint32_t count, netsrv_ping_result_t *r)
{
    netsrv_addr_t a = ip4(dst);
    return netsrv_ping(srv, CALL + count * 20 * MS + 1000 * MS, &a, count, 56, 20, 1000, r);
}

/* netsrv.idl's counters of the socket service client with `badge`. */
static bool client_stats(mk_badge_t badge, netsrv_client_stats_t *out)
{
    uint32_t n = 0;
    ck_assert_int_eq(netsrv_get_client_count(srv, CALL, &n), 0);
    for (uint32_t i = 0; i < n; i++) {
        uint64_t b;
        if (netsrv_get_client_stats(srv, CALL, i, &b, out) == 0 && b == badge)
            return true;
    }
    return false;
}

/* ---- Applications (tasks on libferrysock) ------------------------------------------------ */

#define JOBS 4

typedef struct job job_t;
struct job {
    int (*fn)(job_t *j);
    const char *name;
    mk_cap_t task;
    job_t *peer;
    _Atomic int stage;
    _Atomic int port;
    _Atomic int release; /* set by the test: stop */
    _Atomic uint64_t bytes;
    int err;     /* errno of the operation a job reports */
    uint64_t ns; /* how long it took */
    char why[200];
};

static job_t jobs[JOBS];

static int jfail(job_t *j, const char *what)
{
    snprintf(j->why, sizeof j->why, "%s (errno %d)", what, errno);
    return 1;
}

#define JCHECK(j, cond, what)          \
    do {                               \
        if (!(cond))                   \
            return jfail((j), (what)); \
    } while (0)

static int job_main(int argc, char **argv)
{
    if (argc < 2)
        return 99;
    job_t *j = &jobs[atoi(argv[1])];
    int st = j->fn(j);
    fs_session_close();
    return st;
}

static void spawn(int i, const char *name, mk_badge_t badge, int (*fn)(job_t *j))
{
    job_t *j = &jobs[i];
    j->fn = fn;
    j->name = name;
    ck_assert_int_eq(mk_task_create(name, &j->task), MK_OK);
    ck_assert_int_eq(mk_task_give(j->task, srv_ep, MK_RIGHT_SEND, badge, "netsrv", NULL), MK_OK);
    char idx[8];
    snprintf(idx, sizeof idx, "%d", i);
    char *argv[] = {"job", idx};
    ck_assert_int_eq(mk_task_start(j->task, job_main, 2, argv), MK_OK);
}

static void join(job_t *j)
{
    int st = -100;
    ck_assert_msg(mk_task_wait(j->task, &st, 10000 * MS) == MK_OK, "%s did not end (stage %d)",
                  j->name, atomic_load(&j->stage));
    ck_assert_msg(st == 0, "%s failed: %s", j->name, j->why);
}

static void wait_stage(job_t *j, int stage)
{
    uint64_t end = mk_time_ns() + 5000 * MS;
    while (atomic_load(&j->stage) < stage && mk_time_ns() < end)
        mk_sleep_ns(1 * MS);
    ck_assert_msg(atomic_load(&j->stage) >= stage, "%s stuck at stage %d: %s", j->name,
                  atomic_load(&j->stage), j->why);
}

static void wait_bytes(job_t *j, uint64_t want)
{
    uint64_t end = mk_time_ns() + 5000 * MS;
    while (atomic_load(&j->bytes) < want && mk_time_ns() < end)
        mk_sleep_ns(1 * MS);
    ck_assert_msg(atomic_load(&j->bytes) >= want, "%s moved %llu bytes, not %llu: %s", j->name,
                  (unsigned long long)atomic_load(&j->bytes), (unsigned long long)want, j->why);
}

static struct fs_sockaddr_in sin4(uint32_t addr, uint16_t port)
{
    struct fs_sockaddr_in a = {
        .sin_family = FS_AF_INET, .sin_port = fs_htons(port), .sin_addr.s_addr = fs_htonl(addr)};
    return a;
}

/* Wait up to 2 s until fd is readable. */
static bool readable(int fd)
{
    struct fs_pollfd p = {.fd = fd, .events = FS_POLLIN};
    return fs_poll(&p, 1, 2000) == 1;
}

static uint8_t pat(uint64_t i)
{
    return (uint8_t)((i * 2654435761u) >> 13);
}

/* TCP echo server on 127.0.0.1: one connection, until EOF. */
static int echo_server(job_t *j)
{
    int l = fs_socket(FS_AF_INET, FS_SOCK_STREAM, 0);
    struct fs_sockaddr_in a = sin4(0x7f000001u, 0);
    JCHECK(j, l >= 0 && fs_bind(l, (struct fs_sockaddr *)&a, sizeof a) == 0 && fs_listen(l, 1) == 0,
           "listen");
    fs_socklen_t len = sizeof a;
    JCHECK(j, fs_getsockname(l, (struct fs_sockaddr *)&a, &len) == 0, "getsockname");
    atomic_store(&j->port, fs_ntohs(a.sin_port));
    atomic_store(&j->stage, 1);
    int c = fs_accept(l, NULL, NULL);
    JCHECK(j, c >= 0, "accept");
    static uint8_t buf[8192];
    for (;;) {
        JCHECK(j, readable(c), "nothing to echo for 2 s");
        fs_ssize_t n = fs_recv(c, buf, sizeof buf, 0);
        JCHECK(j, n >= 0, "recv");
        if (n == 0)
            break;
        for (fs_ssize_t off = 0; off < n;) {
            fs_ssize_t w = fs_send(c, buf + off, (size_t)(n - off), 0);
            JCHECK(j, w > 0, "send");
            off += w;
        }
    }
    JCHECK(j, fs_close(c) == 0 && fs_close(l) == 0, "close");
    return 0;
}

/* TCP echo client: 4 KiB at a time, each echoed back and checked, until
 * released (at most 60 s); j->bytes counts what came back. */
static int echo_client(job_t *j)
{
    job_t *s = j->peer;
    uint64_t end = mk_time_ns() + 5000 * MS;
    while (atomic_load(&s->stage) < 1 && mk_time_ns() < end)
        mk_sleep_ns(1 * MS);
    int fd = fs_socket(FS_AF_INET, FS_SOCK_STREAM, 0);
    struct fs_sockaddr_in a = sin4(0x7f000001u, (uint16_t)atomic_load(&s->port));
    JCHECK(j, fd >= 0 && fs_connect(fd, (struct fs_sockaddr *)&a, sizeof a) == 0, "connect");
    atomic_store(&j->stage, 1);
    static uint8_t out[4096], in[4096];
    uint64_t done = 0;
    end = mk_time_ns() + 60000 * MS;
    while (!atomic_load(&j->release) && mk_time_ns() < end) {
        for (size_t i = 0; i < sizeof out; i++)
            out[i] = pat(done + i);
        for (size_t off = 0; off < sizeof out;) {
            fs_ssize_t w = fs_send(fd, out + off, sizeof out - off, 0);
            JCHECK(j, w > 0, "send");
            off += (size_t)w;
        }
        for (size_t got = 0; got < sizeof in;) {
            JCHECK(j, readable(fd), "no echo for 2 s");
            fs_ssize_t n = fs_recv(fd, in + got, sizeof in - got, 0);
            JCHECK(j, n > 0, "recv");
            got += (size_t)n;
        }
        JCHECK(j, memcmp(in, out, sizeof in) == 0, "echoed bytes differ");
        done += sizeof in;
        atomic_store(&j->bytes, done);
    }
    JCHECK(j, fs_shutdown(fd, FS_SHUT_WR) == 0, "shutdown");
    char c;
    JCHECK(j, readable(fd) && fs_recv(fd, &c, 1, 0) == 0, "EOF");
    JCHECK(j, fs_close(fd) == 0, "close");
    return 0;
}

/* Toward the dead interface: a UDP datagram to the peer (queued: the
 * socket service drops it and counts it), then a TCP connect to the peer
 * (ENETUNREACH or EHOSTUNREACH, at once). Keeps its session until released
 * (at most 10 s), so that the test can read its counters. */
static int dead_route(job_t *j)
{
    int u = fs_socket(FS_AF_INET, FS_SOCK_DGRAM, 0);
    struct fs_sockaddr_in peer = sin4(W_PEER_IP, 9);
    JCHECK(j, u >= 0, "socket");
    JCHECK(j, fs_sendto(u, "lost", 4, 0, (struct fs_sockaddr *)&peer, sizeof peer) == 4, "sendto");
    atomic_store(&j->stage, 1);
    int t = fs_socket(FS_AF_INET, FS_SOCK_STREAM, 0);
    JCHECK(j, t >= 0, "socket");
    peer = sin4(W_PEER_IP, 80);
    uint64_t t0 = mk_time_ns();
    int r = fs_connect(t, (struct fs_sockaddr *)&peer, sizeof peer);
    j->ns = mk_time_ns() - t0;
    j->err = r == 0 ? 0 : errno;
    atomic_store(&j->stage, 2);
    uint64_t end = mk_time_ns() + 10000 * MS;
    while (!atomic_load(&j->release) && mk_time_ns() < end)
        mk_sleep_ns(1 * MS);
    JCHECK(j, fs_close(t) == 0 && fs_close(u) == 0, "close");
    return 0;
}

/* ---- Fake driver fixture ----------------------------------------------------------------- */

static mk_cap_t fnic_task;

static const char *const static_args[] = {"--nic", "nic0",     "--ip", "10.0.0.1/24",
                                          "--gw",  "10.0.0.2", NULL};

static void setup(void)
{
    ck_assert_int_eq(sim_init(), MK_OK);
    memset(jobs, 0, sizeof jobs);
    pthread_mutex_lock(&fnic.lock);
    fnic.respond = true; /* the peer 10.0.0.2 answers ARP and pings */
    pthread_mutex_unlock(&fnic.lock);
    mk_cap_t nic = fnic_start(&fnic_task);
    netsrv_start(static_args, nic);
}

static void teardown(void)
{
    sim_shutdown();
}

static void peer_answers(void)
{
    netsrv_ping_result_t r;
    ck_assert_int_eq(ping(W_PEER_IP, 2, &r), 0);
    ck_assert_uint_eq(r.received, 2);
}

/* Kill the fake driver; nic0 goes down within ~1 s (one probe period). */
static netif_view_t kill_driver(void)
{
    ck_assert_int_eq(mk_task_kill(fnic_task, 9), MK_OK);
    ck_assert_int_eq(mk_task_wait(fnic_task, NULL, CALL), MK_OK);
    netif_view_t v;
    WAIT_NIC0(v, v.ni.flags & NETSRV_IF_NO_DRIVER, 3000);
    ck_assert_uint_eq(v.ni.flags & IF_WORKING, 0);
    ck_assert_uint_eq(v.c.driver_deaths, 1);
    ck_assert_uint_eq(v.c.reattaches, 0);
    return v;
}

/* ---- Tests: fake driver ------------------------------------------------------------------ */

START_TEST(test_driver_killed)
{
    netif_view_t v = nic0();
    ck_assert_uint_eq(v.ni.flags & (IF_WORKING | NETSRV_IF_NO_DRIVER), IF_WORKING);
    ck_assert_uint_eq(v.c.driver_deaths, 0);
    peer_answers();

    /* Two applications talk over netsrv's loopback. */
    jobs[1].peer = &jobs[0];
    spawn(0, "echo-server", 10, echo_server);
    spawn(1, "echo-client", 11, echo_client);
    wait_stage(&jobs[1], 1);
    wait_bytes(&jobs[1], 64 * 1024);
    uint32_t shm_before = sim_count_objects(MK_OBJ_SHM);

    v = kill_driver();
    ck_assert_uint_eq(v.ni.ipv4_addr, W_NETSRV_IP); /* a static address is kept */
    /* The session's region is gone: the driver's capability died with it,
     * netsrv deleted its own. */
    ck_assert_uint_eq(sim_count_objects(MK_OBJ_SHM), shm_before - 1);

    /* netsrv goes on: netsrv.idl, the loopback interface, the echo. */
    uint32_t n = 0;
    ck_assert_int_eq(netsrv_get_netif_count(srv, CALL, &n), 0);
    ck_assert_uint_eq(n, 2);
    char name[NETSRV_NAME_MAX + 1];
    netsrv_netif_info_t lo;
    netsrv_counters_t c;
    ck_assert_int_eq(netsrv_get_netif(srv, CALL, 1, name, &lo, &c), 0);
    ck_assert_str_eq(name, "lo");
    ck_assert_uint_eq(lo.flags & NETSRV_IF_UP, NETSRV_IF_UP);
    netsrv_loop_stats_t ls;
    ck_assert_int_eq(netsrv_get_loop_stats(srv, CALL, &ls), 0);
    uint64_t at_death = atomic_load(&jobs[1].bytes);
    wait_bytes(&jobs[1], at_death + 256 * 1024);
    netsrv_ping_result_t r;
    ck_assert_int_eq(ping(0x7f000001u, 1, &r), 0);
    ck_assert_uint_eq(r.received, 1);

    /* Toward the dead interface: no route, at once. */
    uint64_t t0 = mk_time_ns();
    ck_assert_int_eq(ping(W_PEER_IP, 1, &r), NETSRV_ENETUNREACH);
    ck_assert_uint_lt(mk_time_ns() - t0, 1000 * MS);
    spawn(2, "dead-route", 12, dead_route);
    wait_stage(&jobs[2], 2);
    ck_assert_msg(jobs[2].err == ENETUNREACH || jobs[2].err == EHOSTUNREACH,
                  "connect toward the dead interface: errno %d", jobs[2].err);
    ck_assert_uint_lt(jobs[2].ns, 1000 * MS);
    netsrv_client_stats_t cs = {0};
    uint64_t end = mk_time_ns() + 2000 * MS;
    while ((!client_stats(12, &cs) || cs.drops == 0) && mk_time_ns() < end)
        mk_sleep_ns(5 * MS);
    ck_assert_uint_ge(cs.drops, 1); /* the datagram */
    atomic_store(&jobs[2].release, 1);
    join(&jobs[2]);

    /* The echo ends cleanly, every byte checked. */
    atomic_store(&jobs[1].release, 1);
    join(&jobs[1]);
    join(&jobs[0]);
    v = nic0();
    ck_assert_uint_eq(v.c.driver_deaths, 1);
    ck_assert_uint_eq(v.ni.flags & NETSRV_IF_NO_DRIVER, NETSRV_IF_NO_DRIVER);
}
END_TEST

START_TEST(test_driver_returns)
{
    peer_answers();
    netif_view_t before = nic0();
    kill_driver();
    netsrv_ping_result_t r;
    ck_assert_int_eq(ping(W_PEER_IP, 1, &r), NETSRV_ENETUNREACH);

    mk_cap_t task2;
    netsrv_give_nic(fnic_start(&task2));
    netif_view_t v;
    WAIT_NIC0(v, (v.ni.flags & IF_WORKING) == IF_WORKING, 3000);
    ck_assert_uint_eq(v.ni.flags & NETSRV_IF_NO_DRIVER, 0);
    ck_assert_uint_eq(v.c.driver_deaths, 1);
    ck_assert_uint_eq(v.c.reattaches, 1);
    ck_assert_uint_eq(v.ni.ipv4_addr, W_NETSRV_IP);
    ck_assert_uint_eq(v.ni.ipv4_gw, W_PEER_IP);
    ck_assert_uint_eq(v.ni.mac, before.ni.mac);
    pthread_mutex_lock(&fnic.lock);
    bool open = fnic.open;
    pthread_mutex_unlock(&fnic.lock);
    ck_assert(open);
    peer_answers(); /* ARP again, then echo, through the new session */
    v = nic0();
    ck_assert_uint_gt(v.c.tx_packets, before.c.tx_packets);
    ck_assert_uint_eq(v.c.ring_errors, 0);

    /* And it can die again. */
    fnic_task = task2;
    ck_assert_int_eq(mk_task_kill(fnic_task, 9), MK_OK);
    WAIT_NIC0(v, v.ni.flags & NETSRV_IF_NO_DRIVER, 3000);
    ck_assert_uint_eq(v.c.driver_deaths, 2);
}
END_TEST

/* A capability whose endpoint is dead already is tried once and deleted
 * (the name is free again); the next capability works. */
START_TEST(test_dead_capability_given)
{
    kill_driver();
    mk_cap_t ep, dead;
    ck_assert_int_eq(mk_ep_create(&ep), MK_OK);
    ck_assert_int_eq(mk_cap_mint(ep, MK_RIGHT_SEND | MK_RIGHT_GRANT, 0, &dead), MK_OK);
    ck_assert_int_eq(mk_cap_delete(ep), MK_OK); /* no receiver left: the endpoint is dead */
    netsrv_give_nic(dead);
    /* netsrv deletes it: giving the name again succeeds (bounded retry). */
    mk_cap_t task2;
    mk_cap_t good = fnic_start(&task2);
    mk_err_t e = MK_EBUSY;
    for (int i = 0; i < 400 && e == MK_EBUSY; i++) {
        e = mk_task_give(srv_task, good, MK_RIGHT_SEND, 1, "nic0", NULL);
        if (e == MK_EBUSY)
            mk_sleep_ns(5 * MS);
    }
    ck_assert_int_eq(e, MK_OK);
    netif_view_t v;
    WAIT_NIC0(v, (v.ni.flags & IF_WORKING) == IF_WORKING, 5000);
    ck_assert_uint_eq(v.c.reattaches, 1);
    peer_answers();
}
END_TEST

/* ---- Test: the slirp driver -------------------------------------------------------------- */

#define SLIRP_GUEST4 W_IP4(10, 0, 2, 15)
#define SLIRP_HOST4 W_IP4(10, 0, 2, 2)

/* Start nic-slirp serving a new endpoint (named "nic" in its task); the
 * test keeps no receive right. Returns a send capability to it. */
static mk_cap_t slirp_start(mk_cap_t *task)
{
    mk_cap_t ep, client;
    ck_assert_int_eq(mk_ep_create(&ep), MK_OK);
    ck_assert_int_eq(mk_cap_mint(ep, MK_RIGHT_SEND | MK_RIGHT_GRANT, 0, &client), MK_OK);
    ck_assert_int_eq(mk_task_create("slirp", task), MK_OK);
    ck_assert_int_eq(mk_task_give(*task, ep, MK_RIGHT_RECV, 0, "nic", NULL), MK_OK);
    ck_assert_int_eq(mk_cap_delete(ep), MK_OK);
    char *argv[] = {"nic-slirp"};
    ck_assert_int_eq(mk_task_start(*task, nic_slirp_main, 1, argv), MK_OK);
    return client;
}

static void setup_slirp(void)
{
    ck_assert_int_eq(sim_init(), MK_OK);
}

static void dhcp_bound(void)
{
    netif_view_t v;
    WAIT_NIC0(v, (v.ni.flags & NETSRV_IF_DHCP_BOUND) && v.ni.ipv4_addr == SLIRP_GUEST4, 10000);
    netsrv_ping_result_t r;
    ck_assert_int_eq(ping(SLIRP_HOST4, 2, &r), 0);
    ck_assert_uint_ge(r.received, 1);
}

START_TEST(test_slirp_restart)
{
    mk_cap_t task;
    const char *const args[] = {"--nic", "nic0", "--ip", "dhcp", "--ip6", "link-local", NULL};
    netsrv_start(args, slirp_start(&task));
    dhcp_bound();

    ck_assert_int_eq(mk_task_kill(task, 9), MK_OK);
    ck_assert_int_eq(mk_task_wait(task, NULL, CALL), MK_OK);
    netif_view_t v;
    WAIT_NIC0(v, v.ni.flags & NETSRV_IF_NO_DRIVER, 3000);
    ck_assert_uint_eq(v.ni.flags & (IF_WORKING | NETSRV_IF_DHCP_BOUND), 0);
    ck_assert_uint_eq(v.ni.ipv4_addr, 0); /* DHCP stopped with the link */
    netsrv_ping_result_t r;
    ck_assert_int_eq(ping(SLIRP_HOST4, 1, &r), NETSRV_ENETUNREACH);

    netsrv_give_nic(slirp_start(&task));
    dhcp_bound(); /* DHCP ran again on the new driver */
    v = nic0();
    ck_assert_uint_eq(v.c.driver_deaths, 1);
    ck_assert_uint_eq(v.c.reattaches, 1);
}
END_TEST

/* ---- Runner ------------------------------------------------------------------------------ */

static Suite *nicdeath_suite(void)
{
    Suite *s = suite_create("netsrv_nicdeath");
    TCase *tc = tcase_create("fake");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_driver_killed);
    tcase_add_test(tc, test_driver_returns);
    tcase_add_test(tc, test_dead_capability_given);
    suite_add_tcase(s, tc);
    TCase *ts = tcase_create("slirp");
    tcase_add_checked_fixture(ts, setup_slirp, teardown);
    tcase_set_timeout(ts, 60);
    tcase_add_test(ts, test_slirp_restart);
    suite_add_tcase(s, ts);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(nicdeath_suite());
    srunner_set_fork_status(sr, CK_FORK); /* one netsrv (one lwIP) per process */
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

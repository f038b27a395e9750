/*
 * test_sock_opts.c - proves the socket service's listener queue, TCP
 * window scaling and its IP-level options (docs/socket-session.md,
 * Options), end to end in the simulator:
 *
 *  - several threads of one client block in accept on the same listener:
 *    each arriving connection wakes exactly one, the oldest (FIFO); a
 *    waiter whose call timed out is skipped; at most 64 wait (ENOBUFS for
 *    another); closing the listener answers every blocked accept with
 *    EBADF; a client that dies with blocked accepts loses them (and its
 *    listener) without harm to netsrv;
 *  - TCP window scaling: with 256 KiB rings a reader that stops reading
 *    still receives 256 KiB into its ring (the window it advertised was
 *    larger than an unscaled TCP window can be), nothing waits in netsrv
 *    beyond the window, and SO_RCVBUF 100 KiB caps the window from the
 *    start;
 *  - IP multicast over netsrv's loopback: IP_ADD_MEMBERSHIP and
 *    IP_DROP_MEMBERSHIP (struct ip_mreq and ip_mreqn), IPV6_JOIN_GROUP and
 *    IPV6_LEAVE_GROUP (a global and a link-scoped group), an IPv4 group on
 *    a dual-stack socket: delivered to every member once while joined, not
 *    after leaving or closing; IP_MULTICAST_IF, IPV6_MULTICAST_IF, TTL,
 *    hops and loop read back, one-byte values as Linux takes them; bad
 *    requests change nothing: a unicast group (EINVAL), an unknown family
 *    (EINVAL), an IPv6 group on an IPv4 socket (ENOPROTOOPT), TCP
 *    (EPROTO), no such interface or none (ENODEV), joining twice
 *    (EADDRINUSE), leaving without joining (EADDRNOTAVAIL), a 21st group
 *    (ENOBUFS), bad option values (EINVAL, EADDRNOTAVAIL, ENODEV);
 *    unsupported options stay ENOPROTOOPT;
 *  - SO_BROADCAST: a datagram to 255.255.255.255 without it is not sent
 *    and the socket's error is EACCES; with it, no error;
 *  - on a NIC (the fake driver of tests/netsrv plays the wire): a join
 *    sends an IGMP report (MLD for IPv6) and a leave or close a leave
 *    (MLD done); the socket's multicast goes on the wire with its TTL or
 *    hop limit and the group's MAC, and comes back to local members only
 *    with IP_MULTICAST_LOOP / IPV6_MULTICAST_LOOP 1; datagrams from the
 *    wire reach members while joined, not after; the default interface;
 *    IP_TTL, IP_TOS and IPV6_UNICAST_HOPS show in UDP datagrams and TCP
 *    SYNs; subnet and limited broadcasts reach the wire only with
 *    SO_BROADCAST.
 *
 * Each test runs in its own process (netsrv's lwIP is global). Network
 * safety: netsrv's loopback, or the fake NIC inside the process; nothing
 * leaves it.
 */
#include "harness.h"

#include <ferry/sock_region.h>
#include <sock_client.h>

#include "fake_nic.h"
#include "wire.h"

/* ---- Raw sessions (several threads may use one) ----------------------------------------- */

typedef struct raw {
    mk_cap_t ep, region, ntfn, sig, srv_sig;
    uint8_t *base;
    size_t size;
    sock_layout_t l;
    uint32_t number;
} raw_t;

/* A session made by hand, so that several threads can quote its number. */
static int32_t raw_open(raw_t *r, uint32_t max_sockets, uint32_t ring)
{
    memset(r, 0, sizeof *r);
    void *base;
    if (mk_cap_lookup("netsrv", &r->ep) != MK_OK || sock_layout(max_sockets, ring, &r->l) != 0 ||
        mk_shm_create(r->l.size, &r->region) != MK_OK ||
        mk_shm_map(r->region, MK_RIGHT_READ | MK_RIGHT_WRITE, &base, &r->size) != MK_OK ||
        mk_ntfn_create(&r->ntfn) != MK_OK ||
        mk_cap_mint(r->ntfn, MK_RIGHT_SEND | MK_RIGHT_GRANT, 1, &r->sig) != MK_OK)
        return -1;
    r->base = base;
    sock_region_hdr_t *h = base;
    h->magic = SOCK_REGION_MAGIC;
    h->version = SOCK_REGION_VERSION;
    h->max_sockets = max_sockets;
    h->ring_size = ring;
    for (uint32_t i = 0; i < max_sockets; i++) {
        bytering_init(sock_rx_ring(r->base, &r->l, i), ring, 0);
        bytering_init(sock_tx_ring(r->base, &r->l, i), ring, 0);
    }
    return sock_session_open(r->ep, CALL, r->region, r->sig, max_sockets, ring, &r->srv_sig,
                             &r->number);
}

/* A TCP listener on 127.0.0.1 in the raw session; its port in *port. */
static int32_t raw_listener(raw_t *r, uint32_t backlog, uint32_t *id, uint16_t *port)
{
    sock_addr_t a = {.family = FS_AF_INET, .lo = 0x7f000001u};
    int32_t st = sock_socket(r->ep, CALL, r->number, FS_AF_INET, FS_SOCK_STREAM, 0, id);
    if (st == 0)
        st = sock_bind(r->ep, CALL, r->number, *id, &a);
    if (st == 0)
        st = sock_listen(r->ep, CALL, r->number, *id, backlog);
    if (st == 0)
        st = sock_getsockname(r->ep, CALL, r->number, *id, &a);
    *port = a.port;
    return st;
}

/* ---- Several blocked accepts ------------------------------------------------------------- */

#define ACCEPTORS_MAX 72

/* One thread blocked in accept on the raw session's listener. */
typedef struct acceptor {
    raw_t *r;
    uint32_t listener;
    uint64_t timeout;
    uint32_t tid;
    _Atomic int calling, done;
    int32_t status;
    uint32_t id;
    sock_addr_t peer;
} acceptor_t;

static acceptor_t acc[ACCEPTORS_MAX];
static _Atomic int acc_done;
static uint16_t conn_port[8]; /* the connector's local ports, in order */

static void accept_thread(void *arg)
{
    acceptor_t *a = arg;
    atomic_store(&a->calling, 1);
    a->status = sock_accept(a->r->ep, a->timeout, a->r->number, a->listener, false, &a->id, &a->peer);
    atomic_store(&a->done, 1);
    atomic_fetch_add(&acc_done, 1);
}

/* Start acceptor i; `settle`: wait until its call surely reached netsrv
 * (it set `calling`, then 50 ms, then a call of this thread went through
 * netsrv after it), so that the FIFO order is the order of i. */
static bool acceptor_start(raw_t *r, uint32_t listener, int i, uint64_t timeout, bool settle)
{
    acceptor_t *a = &acc[i];
    memset(a, 0, sizeof *a);
    a->r = r;
    a->listener = listener;
    a->timeout = timeout;
    if (mk_thread_create(accept_thread, a, &a->tid) != MK_OK)
        return false;
    if (!settle)
        return true;
    for (int k = 0; k < 5000 && !atomic_load(&a->calling); k++)
        mk_sleep_ns(MS);
    mk_sleep_ns(50 * MS);
    sock_addr_t x;
    return sock_getsockname(r->ep, CALL, r->number, listener, &x) == 0;
}

static bool acceptor_wait(int i, uint64_t timeout_ns)
{
    uint64_t end = mk_time_ns() + timeout_ns;
    while (!atomic_load(&acc[i].done) && mk_time_ns() < end)
        mk_sleep_ns(MS);
    return atomic_load(&acc[i].done);
}

static int count_done(int from, int to)
{
    int n = 0;
    for (int i = from; i < to; i++)
        n += atomic_load(&acc[i].done);
    return n;
}

/* Connects when the acceptor asks (its stage 10 + k), records its local
 * port in conn_port[k], reports stage k + 1; ends at acceptor stage 99. */
static int connector(job_t *j)
{
    job_t *a = j->arg;
    JCHECK(j, job_wait_stage(a, 1, 5000 * MS), "listener");
    int fds[8];
    int n = 0;
    for (;;) {
        uint64_t end = mk_time_ns() + 10000 * MS;
        while (atomic_load(&a->stage) != 10 + n && atomic_load(&a->stage) != 99 &&
               !atomic_load(&a->done) && mk_time_ns() < end)
            mk_sleep_ns(MS);
        int st = atomic_load(&a->stage);
        if (st == 99 || atomic_load(&a->done))
            break;
        JCHECK(j, st == 10 + n && n < 8, "acceptor at stage %d, connector at %d", st, n);
        fds[n] = connect_to(false, (uint16_t)atomic_load(&a->port));
        JCHECK(j, fds[n] >= 0, "connect %d", n);
        addr_t me;
        fs_socklen_t ml = sizeof me;
        JCHECK(j, fs_getsockname(fds[n], &me.sa, &ml) == 0, "getsockname");
        conn_port[n] = addr_port(&me);
        n++;
        atomic_store(&j->stage, n);
    }
    /* The listener is closed by now: nobody accepts any more. */
    JCHECK(j, connect_to(false, (uint16_t)atomic_load(&a->port)) < 0 && errno == ECONNREFUSED,
           "connect to the closed listener");
    for (int i = 0; i < n; i++)
        fs_close(fds[i]);
    return 0;
}

/* Ask the connector for connection k and wait until it is made. */
static bool connect_one(job_t *j, job_t *c, int k)
{
    atomic_store(&j->stage, 10 + k);
    return job_wait_stage(c, k + 1, 5000 * MS);
}

static int accept_fifo(job_t *j)
{
    job_t *c = j->arg;
    static raw_t r;
    uint32_t l, id;
    uint16_t port;
    JCHECK(j, raw_open(&r, 96, 4096) == 0, "session_open");
    JCHECK(j, raw_listener(&r, 16, &l, &port) == 0, "listener");
    atomic_store(&j->port, port);
    sock_addr_t peer;
    JCHECK(j, sock_accept(r.ep, CALL, r.number, l, true, &id, &peer) == SOCK_EAGAIN, "EAGAIN");
    atomic_store(&j->stage, 1);
    /* Four blocked accepts, in a known order; each connection wakes the
     * oldest, and only it. */
    for (int i = 0; i < 4; i++)
        JCHECK(j, acceptor_start(&r, l, i, CALL, true), "acceptor %d", i);
    JCHECK(j, count_done(0, 4) == 0, "an accept returned without a connection");
    JCHECK(j, sock_accept(r.ep, CALL, r.number, l, true, &id, &peer) == SOCK_EAGAIN,
           "EAGAIN while others wait");
    for (int k = 0; k < 4; k++) {
        JCHECK(j, connect_one(j, c, k), "connection %d", k);
        JCHECK(j, acceptor_wait(k, 5000 * MS), "acceptor %d not woken by connection %d", k, k);
        mk_sleep_ns(20 * MS); /* a second wake-up would show by now */
        JCHECK(j, count_done(0, 4) == k + 1, "connection %d woke %d acceptors", k,
               count_done(0, 4) - k);
        JCHECK(j, acc[k].status == 0, "acceptor %d: status %d", k, acc[k].status);
        JCHECK(j, acc[k].peer.port == conn_port[k], "acceptor %d got port %u, not %u", k,
               acc[k].peer.port, conn_port[k]);
        for (int i = 0; i < k; i++)
            JCHECK(j, acc[i].id != acc[k].id, "socket id %u twice", acc[k].id);
    }
    for (int i = 0; i < 4; i++)
        mk_thread_join(acc[i].tid);
    /* A waiter whose call timed out is skipped: the next one gets it. */
    JCHECK(j, acceptor_start(&r, l, 4, 100 * MS, true), "acceptor 4");
    JCHECK(j, acceptor_wait(4, 5000 * MS) && acc[4].status == MK_ETIMEDOUT, "timed out: %d",
           acc[4].status);
    JCHECK(j, acceptor_start(&r, l, 5, CALL, true), "acceptor 5");
    JCHECK(j, connect_one(j, c, 4), "connection 4");
    JCHECK(j, acceptor_wait(5, 5000 * MS) && acc[5].status == 0 &&
                  acc[5].peer.port == conn_port[4],
           "acceptor 5: status %d", acc[5].status);
    mk_thread_join(acc[4].tid);
    mk_thread_join(acc[5].tid);
    /* At most NSOCK_ACCEPT_WAITERS_MAX (64) wait: of 65, one is refused
     * (ENOBUFS) at once. Closing the listener answers the rest (EBADF). */
    atomic_store(&acc_done, 0);
    for (int i = 6; i < 6 + 65; i++)
        JCHECK(j, acceptor_start(&r, l, i, CALL, false), "acceptor %d", i);
    uint64_t end = mk_time_ns() + 5000 * MS;
    while (atomic_load(&acc_done) == 0 && mk_time_ns() < end)
        mk_sleep_ns(MS);
    mk_sleep_ns(100 * MS);
    JCHECK(j, atomic_load(&acc_done) == 1, "%d of 65 accepts returned", atomic_load(&acc_done));
    int refused = -1;
    for (int i = 6; i < 6 + 65; i++)
        if (atomic_load(&acc[i].done))
            refused = i;
    JCHECK(j, acc[refused].status == SOCK_ENOBUFS, "the 65th: %d", acc[refused].status);
    JCHECK(j, sock_close(r.ep, CALL, r.number, l) == 0, "close the listener");
    end = mk_time_ns() + 5000 * MS;
    while (atomic_load(&acc_done) < 65 && mk_time_ns() < end)
        mk_sleep_ns(MS);
    for (int i = 6; i < 6 + 65; i++) {
        JCHECK(j, atomic_load(&acc[i].done), "acceptor %d still blocked", i);
        JCHECK(j, i == refused || acc[i].status == SOCK_EBADF, "acceptor %d: %d", i,
               acc[i].status);
        mk_thread_join(acc[i].tid);
    }
    JCHECK(j, sock_accept(r.ep, CALL, r.number, l, false, &id, &peer) == SOCK_EBADF,
           "accept on the closed listener");
    atomic_store(&j->stage, 99);
    return sock_session_close(r.ep, CALL, r.number) == 0 ? 0 : jfail(j, "session_close");
}

START_TEST(test_accept_fifo)
{
    netsrv_start(NULL);
    jobs[0].arg = &jobs[1];
    jobs[1].arg = &jobs[0];
    spawn(0, "acceptor", 10, accept_fifo);
    spawn(1, "connector", 11, connector);
    join(&jobs[0], 30000 * MS);
    join(&jobs[1], 10000 * MS);
    ck_assert_uint_eq(sock_totals().bad_requests, 1); /* the accept on the closed listener */
    uint64_t end = mk_time_ns() + 5000 * MS; /* background closes end */
    while (sock_totals().sockets != 0 && mk_time_ns() < end)
        mk_sleep_ns(2 * MS);
    ck_assert_uint_eq(sock_totals().sockets, 0);
    netsrv_stop();
}
END_TEST

/* A client dies with three accepts blocked on its listener: netsrv drops
 * them with the rest of its state and goes on serving. */
static int doomed(job_t *j)
{
    static raw_t r;
    uint32_t l;
    uint16_t port;
    JCHECK(j, raw_open(&r, 8, 4096) == 0, "session_open");
    JCHECK(j, raw_listener(&r, 4, &l, &port) == 0, "listener");
    atomic_store(&j->port, port);
    for (int i = 0; i < 3; i++)
        JCHECK(j, acceptor_start(&r, l, i, CALL, true), "acceptor %d", i);
    atomic_store(&j->stage, 1);
    job_hold(j); /* killed here */
    return 0;
}

static int after_death(job_t *j)
{
    job_t *d = j->arg;
    JCHECK(j, connect_to(false, (uint16_t)atomic_load(&d->port)) < 0 && errno == ECONNREFUSED,
           "the dead client's listener still accepts");
    /* netsrv still serves: a connection of our own. */
    uint16_t port;
    int l = listen_on(false, 0, 1, &port);
    int c = connect_to(false, port);
    int s = fs_accept(l, NULL, NULL);
    JCHECK(j, l >= 0 && c >= 0 && s >= 0, "a new connection");
    JCHECK(j, fs_send(c, "x", 1, 0) == 1, "send");
    char ch;
    JCHECK(j, fs_recv(s, &ch, 1, 0) == 1 && ch == 'x', "recv");
    fs_close(s);
    fs_close(c);
    fs_close(l);
    return 0;
}

START_TEST(test_accept_client_dies)
{
    netsrv_start(NULL);
    spawn(0, "doomed", 12, doomed);
    wait_stage(&jobs[0], 1, 10000 * MS);
    netsrv_sock_stats_t before = sock_totals();
    ck_assert_int_eq(mk_task_kill(jobs[0].task, 9), MK_OK);
    netsrv_client_stats_t st;
    uint64_t end = mk_time_ns() + 5000 * MS;
    while (client_stats(12, &st) && mk_time_ns() < end)
        mk_sleep_ns(2 * MS);
    ck_assert_msg(!client_stats(12, &st), "the dead client is still known");
    netsrv_sock_stats_t after = sock_totals();
    ck_assert_uint_eq(after.client_deaths, before.client_deaths + 1);
    ck_assert_uint_eq(after.sockets_reaped, before.sockets_reaped + 1);
    ck_assert_uint_eq(after.sockets, 0);
    jobs[1].arg = &jobs[0];
    spawn(1, "after", 13, after_death);
    join(&jobs[1], 10000 * MS);
    netsrv_stop();
}
END_TEST

/* ---- TCP window scaling ------------------------------------------------------------------ */

#define BIG_RING (256u * 1024)

/* Accepts one connection per round (param[0] rounds; round 1 with
 * SO_RCVBUF 100 KiB on the listener), reads nothing until the writer has
 * stalled, notes what netsrv put into its RX ring meanwhile (its rx_bytes
 * counter) and what netsrv holds for it beyond the ring, then reads and
 * checks everything. */
static int window_reader(job_t *j)
{
    job_t *w = j->arg;
    JCHECK(j, fs_session_configure("netsrv", 4, BIG_RING) == 0, "configure");
    uint16_t port;
    int l = listen_on(false, 0, 1, &port);
    JCHECK(j, l >= 0, "listen");
    atomic_store(&j->port, port);
    static uint8_t buf[65536];
    for (int round = 0; round < 2; round++) {
        if (round == 1) {
            int v = 100 * 1024;
            JCHECK(j, fs_setsockopt(l, FS_SOL_SOCKET, FS_SO_RCVBUF, &v, sizeof v) == 0, "RCVBUF");
        }
        JCHECK(j, job_stats(j), "stats");
        uint64_t rx0 = j->st.rx_bytes, mem0 = j->st.memory;
        atomic_store(&j->stage, 1 + 2 * round); /* connect now */
        int c = fs_accept(l, NULL, NULL);
        JCHECK(j, c >= 0, "accept");
        JCHECK(j, job_wait_stage(w, 1 + round, 10000 * MS), "writer did not stall");
        JCHECK(j, job_stats(j), "stats");
        j->param[1 + round] = (long)(j->st.rx_bytes - rx0); /* in the ring, unread */
        /* Beyond the ring: received data netsrv holds for us (our memory). */
        long pending = (long)(j->st.memory - mem0);
        if (round == 0)
            j->bytes = (uint64_t)pending;
        else
            j->param[3] = pending;
        uint64_t got = 0;
        for (;;) {
            fs_ssize_t n = fs_recv(c, buf, sizeof buf, 0);
            JCHECK(j, n >= 0, "recv");
            if (n == 0)
                break;
            JCHECK(j, pat_check(buf, 9, got, (size_t)n) < 0, "data at %llu",
                   (unsigned long long)got);
            got += (uint64_t)n;
        }
        JCHECK(j, got == (uint64_t)w->param[1 + round], "got %llu of %ld", (unsigned long long)got,
               w->param[1 + round]);
        fs_close(c);
        atomic_store(&j->stage, 2 + 2 * round);
    }
    fs_close(l);
    return 0;
}

/* Writes until the reader's window and both rings are full (100 ms
 * without progress), then 1 MiB more, blocking; param[1 + round]: all it
 * sent. */
static int window_writer(job_t *j)
{
    job_t *r = j->arg;
    JCHECK(j, fs_session_configure("netsrv", 4, BIG_RING) == 0, "configure");
    static uint8_t buf[16384];
    for (int round = 0; round < 2; round++) {
        JCHECK(j, job_wait_stage(r, 1 + 2 * round, 10000 * MS), "reader");
        int fd = connect_to(false, (uint16_t)atomic_load(&r->port));
        JCHECK(j, fd >= 0, "connect");
        uint64_t sent = 0;
        for (int idle = 0; idle < 100;) {
            pat_fill(buf, 9, sent, sizeof buf);
            fs_ssize_t n = fs_send(fd, buf, sizeof buf, FS_MSG_DONTWAIT);
            if (n > 0) {
                sent += (uint64_t)n;
                idle = 0;
                continue;
            }
            JCHECK(j, errno == EAGAIN, "send");
            mk_sleep_ns(MS);
            idle++;
        }
        atomic_store(&j->stage, 1 + round);
        for (int i = 0; i < 64; i++) {
            pat_fill(buf, 9, sent, sizeof buf);
            JCHECK(j, send_all(fd, buf, sizeof buf) == 0, "send");
            sent += sizeof buf;
        }
        j->param[1 + round] = (long)sent;
        JCHECK(j, fs_close(fd) == 0, "close");
        JCHECK(j, job_wait_stage(r, 2 + 2 * round, 10000 * MS), "reader");
    }
    return 0;
}

START_TEST(test_window_scaled)
{
    netsrv_start(NULL);
    jobs[0].arg = &jobs[1];
    jobs[1].arg = &jobs[0];
    spawn(0, "reader", 10, window_reader);
    spawn(1, "writer", 11, window_writer);
    join(&jobs[1], 30000 * MS);
    join(&jobs[0], 30000 * MS);
    long full = jobs[0].param[1], capped = jobs[0].param[2];
    /* Round 0: the 256 KiB ring filled while the reader read nothing (to
     * within a segment, 16,000 bytes on loopback: lwIP does not split a
     * segment for the last bytes of a window): the window netsrv advertised was 256 KiB, beyond the 65535
     * bytes an unscaled window can be (the writer's ring held the rest). */
    ck_assert_msg(full > 0xffff && full <= (long)BIG_RING && full + 16000 > (long)BIG_RING,
                  "the reader's ring took %ld bytes unread", full);
    ck_assert_msg(jobs[0].bytes == 0, "%llu bytes pending beyond the window",
                  (unsigned long long)jobs[0].bytes);
    /* Round 1: SO_RCVBUF 100 KiB caps the window, and the window started
     * there: nothing waited in netsrv beyond the ring's 100 KiB. */
    ck_assert_msg(capped > 0xffff && capped <= 100 * 1024 && capped + 16000 > 100 * 1024,
                  "with SO_RCVBUF 100 KiB the ring took %ld bytes", capped);
    ck_assert_msg(jobs[0].param[3] == 0, "%ld bytes pending beyond the window", jobs[0].param[3]);
    ck_assert_uint_eq(sock_totals().pending_bytes, 0);
    netsrv_stop();
}
END_TEST

/* ---- Helpers for datagram options ------------------------------------------------------- */

#define IP4 W_IP4

static int getint(int fd, int level, int name)
{
    int v = -1;
    fs_socklen_t len = sizeof v;
    return fs_getsockopt(fd, level, name, &v, &len) == 0 ? v : -1000;
}

static int setint(int fd, int level, int name, int v)
{
    return fs_setsockopt(fd, level, name, &v, sizeof v);
}

/* -1 and errno e expected. */
static bool fails(int rc, int e)
{
    return rc < 0 && errno == e;
}

/* A UDP socket with SO_REUSEADDR bound to the wildcard and *port (0: any;
 * the port it got in *port). */
static int udp_bound(bool v6, uint16_t *port)
{
    int fd = fs_socket(v6 ? FS_AF_INET6 : FS_AF_INET, FS_SOCK_DGRAM, 0);
    if (fd < 0 || setint(fd, FS_SOL_SOCKET, FS_SO_REUSEADDR, 1) != 0)
        return -1;
    addr_t a;
    fs_socklen_t len = any_addr(v6, *port, &a);
    if (fs_bind(fd, &a.sa, len) != 0)
        return -1;
    len = sizeof a;
    if (fs_getsockname(fd, &a.sa, &len) != 0)
        return -1;
    *port = addr_port(&a);
    return fd;
}

/* IP_ADD/DROP_MEMBERSHIP with struct fs_ip_mreq (interface by address). */
static int join4(int fd, bool join, uint32_t group, uint32_t ifaddr)
{
    struct fs_ip_mreq m = {{fs_htonl(group)}, {fs_htonl(ifaddr)}};
    return fs_setsockopt(fd, FS_IPPROTO_IP, join ? FS_IP_ADD_MEMBERSHIP : FS_IP_DROP_MEMBERSHIP, &m,
                         sizeof m);
}

/* The same with struct fs_ip_mreqn (interface by index). */
static int join4n(int fd, bool join, uint32_t group, int ifindex)
{
    struct fs_ip_mreqn m = {{fs_htonl(group)}, {0}, ifindex};
    return fs_setsockopt(fd, FS_IPPROTO_IP, join ? FS_IP_ADD_MEMBERSHIP : FS_IP_DROP_MEMBERSHIP, &m,
                         sizeof m);
}

static int join6(int fd, bool join, const uint8_t group[16], unsigned ifindex)
{
    struct fs_ipv6_mreq m;
    memcpy(m.ipv6mr_multiaddr.s6_addr, group, 16);
    m.ipv6mr_interface = ifindex;
    return fs_setsockopt(fd, FS_IPPROTO_IPV6, join ? FS_IPV6_JOIN_GROUP : FS_IPV6_LEAVE_GROUP, &m,
                         sizeof m);
}

static bool send4(int fd, uint32_t dst, uint16_t port, const char *msg)
{
    addr_t a;
    memset(&a, 0, sizeof a);
    a.in.sin_family = FS_AF_INET;
    a.in.sin_port = fs_htons(port);
    a.in.sin_addr.s_addr = fs_htonl(dst);
    size_t n = strlen(msg);
    return fs_sendto(fd, msg, n, 0, &a.sa, sizeof a.in) == (fs_ssize_t)n;
}

static bool send6(int fd, const uint8_t dst[16], uint16_t port, const char *msg)
{
    addr_t a;
    memset(&a, 0, sizeof a);
    a.in6.sin6_family = FS_AF_INET6;
    a.in6.sin6_port = fs_htons(port);
    memcpy(a.in6.sin6_addr.s6_addr, dst, 16);
    size_t n = strlen(msg);
    return fs_sendto(fd, msg, n, 0, &a.sa, sizeof a.in6) == (fs_ssize_t)n;
}

/* Did `msg` arrive on fd within ms milliseconds (and nothing else first)?
 * The sender's address in *from if not NULL. */
static bool got(int fd, const char *msg, int ms, addr_t *from)
{
    struct fs_pollfd p = {fd, FS_POLLIN, 0};
    if (fs_poll(&p, 1, ms) != 1)
        return false;
    char buf[256];
    addr_t a;
    fs_socklen_t al = sizeof a;
    fs_ssize_t n = fs_recvfrom(fd, buf, sizeof buf - 1, FS_MSG_DONTWAIT, &a.sa, &al);
    if (n < 0)
        return false;
    buf[n] = '\0';
    if (from != NULL)
        *from = a;
    return strcmp(buf, msg) == 0;
}

/* Nothing arrives on fd within ms milliseconds. */
static bool quiet(int fd, int ms)
{
    struct fs_pollfd p = {fd, FS_POLLIN, 0};
    return fs_poll(&p, 1, ms) == 0;
}

/* The sock.idl interface index (netsrv.idl's index + 1) of "lo": the last. */
static unsigned lo_index(void)
{
    mk_cap_t ep;
    uint32_t n = 0;
    if (mk_cap_lookup("netsrv", &ep) != MK_OK || netsrv_get_netif_count(ep, CALL, &n) != 0)
        return 0;
    return n;
}

/* ---- Multicast and broadcast on netsrv's loopback ---------------------------------------- */

static const uint8_t G6[16] = {0xff, 0x1e, [13] = 1, [15] = 2};   /* ff1e::1:2, global */
static const uint8_t G6LL[16] = {0xff, 0x02, [13] = 1, [15] = 3}; /* ff02::1:3, link */
static const uint8_t NOT_MC6[16] = {0x20, 0x01, 0x0d, 0xb8, [15] = 1};

/* Option values and bad requests; nothing is joined by any of them. */
static int mcast_options(job_t *j, int s, int r, unsigned lo)
{
    const uint32_t G = IP4(239, 1, 2, 3), LO = IP4(127, 0, 0, 1);
    /* Defaults, then values, also as one byte, as Linux takes them. */
    JCHECK(j, getint(s, FS_IPPROTO_IP, FS_IP_MULTICAST_TTL) == 1, "default multicast TTL");
    JCHECK(j, getint(s, FS_IPPROTO_IP, FS_IP_MULTICAST_LOOP) == 1, "default multicast loop");
    uint8_t b = 7;
    JCHECK(j, fs_setsockopt(s, FS_IPPROTO_IP, FS_IP_MULTICAST_TTL, &b, 1) == 0, "TTL as a byte");
    fs_socklen_t bl = 1;
    b = 0;
    JCHECK(j, fs_getsockopt(s, FS_IPPROTO_IP, FS_IP_MULTICAST_TTL, &b, &bl) == 0 && bl == 1 && b == 7,
           "TTL read as a byte");
    JCHECK(j, fails(setint(s, FS_IPPROTO_IP, FS_IP_MULTICAST_TTL, 256), EINVAL), "TTL 256");
    JCHECK(j, setint(s, FS_IPPROTO_IP, FS_IP_MULTICAST_TTL, -1) == 0 &&
                  getint(s, FS_IPPROTO_IP, FS_IP_MULTICAST_TTL) == 1,
           "TTL -1: the default");
    JCHECK(j, getint(s, FS_IPPROTO_IP, FS_IP_TTL) == 255, "default TTL %d",
           getint(s, FS_IPPROTO_IP, FS_IP_TTL));
    JCHECK(j, fails(setint(s, FS_IPPROTO_IP, FS_IP_TTL, 0), EINVAL), "TTL 0");
    JCHECK(j, setint(s, FS_IPPROTO_IP, FS_IP_TTL, 64) == 0 && getint(s, FS_IPPROTO_IP, FS_IP_TTL) == 64,
           "TTL 64");
    JCHECK(j, fails(setint(s, FS_IPPROTO_IP, FS_IP_TOS, 300), EINVAL), "TOS 300");
    JCHECK(j, setint(s, FS_IPPROTO_IP, FS_IP_TOS, 0x28) == 0 &&
                  getint(s, FS_IPPROTO_IP, FS_IP_TOS) == 0x28,
           "TOS");
    /* IP_MULTICAST_IF: an address or an index of an interface that exists. */
    struct fs_in_addr ia = {fs_htonl(IP4(10, 9, 9, 9))};
    JCHECK(j, fails(fs_setsockopt(s, FS_IPPROTO_IP, FS_IP_MULTICAST_IF, &ia, sizeof ia), EADDRNOTAVAIL),
           "IP_MULTICAST_IF on no interface");
    struct fs_ip_mreqn mn = {{0}, {0}, 99};
    JCHECK(j, fails(fs_setsockopt(s, FS_IPPROTO_IP, FS_IP_MULTICAST_IF, &mn, sizeof mn), EADDRNOTAVAIL),
           "IP_MULTICAST_IF index 99");
    ia.s_addr = fs_htonl(LO);
    JCHECK(j, fs_setsockopt(s, FS_IPPROTO_IP, FS_IP_MULTICAST_IF, &ia, sizeof ia) == 0,
           "IP_MULTICAST_IF 127.0.0.1");
    struct fs_in_addr back = {0};
    fs_socklen_t al = sizeof back;
    JCHECK(j, fs_getsockopt(s, FS_IPPROTO_IP, FS_IP_MULTICAST_IF, &back, &al) == 0 &&
                  al == sizeof back && back.s_addr == ia.s_addr,
           "IP_MULTICAST_IF read back");
    /* Bad membership requests change nothing. */
    struct fs_ip_mreq short_m = {{fs_htonl(G)}, {fs_htonl(LO)}};
    JCHECK(j, fails(fs_setsockopt(r, FS_IPPROTO_IP, FS_IP_ADD_MEMBERSHIP, &short_m, 4), EINVAL),
           "a short ip_mreq");
    JCHECK(j, fails(join4(r, true, IP4(10, 0, 0, 1), LO), EINVAL), "a unicast group");
    JCHECK(j, fails(join4(r, true, G, IP4(10, 9, 9, 9)), ENODEV), "no interface with that address");
    JCHECK(j, fails(join4n(r, true, G, 99), ENODEV), "no interface 99");
    JCHECK(j, fails(join4(r, true, G, 0), ENODEV), "no default interface without a NIC");
    JCHECK(j, fails(join4(r, false, G, LO), EADDRNOTAVAIL), "leave without join");
    JCHECK(j, fails(join4(r, false, G, 0), EADDRNOTAVAIL), "leave without join, any interface");
    JCHECK(j, fails(join6(r, true, G6, lo), ENOPROTOOPT), "an IPv6 group on an IPv4 socket");
    int t = fs_socket(FS_AF_INET, FS_SOCK_STREAM, 0);
    JCHECK(j, fails(join4(t, true, G, LO), EPROTO), "TCP");
    fs_close(t);
    /* Unsupported options are still ENOPROTOOPT. */
    JCHECK(j, fails(setint(s, FS_IPPROTO_IP, 8 /* IP_PKTINFO */, 1), ENOPROTOOPT), "IP_PKTINFO");
    JCHECK(j, fails(setint(s, FS_IPPROTO_IPV6, FS_IPV6_MULTICAST_HOPS, 1), ENOPROTOOPT),
           "IPv6 option on an IPv4 socket");
    return 0;
}

/* The raw membership call: what the library cannot send. */
static int mcast_raw(job_t *j)
{
    static raw_t r;
    uint32_t id;
    JCHECK(j, raw_open(&r, 4, 4096) == 0, "session_open");
    JCHECK(j, sock_socket(r.ep, CALL, r.number, FS_AF_INET, FS_SOCK_DGRAM, 0, &id) == 0, "socket");
    sock_addr_t g = {.family = 7, .lo = 0xef010203u}, local = {0};
    JCHECK(j, sock_membership(r.ep, CALL, r.number, id, true, &g, &local, 0) == SOCK_EINVAL,
           "an unknown family");
    g.family = FS_AF_INET;
    g.hi = 1;
    JCHECK(j, sock_membership(r.ep, CALL, r.number, id, true, &g, &local, 0) == SOCK_EINVAL,
           "an IPv4 group with high bits");
    JCHECK(j, sock_membership(r.ep, CALL, r.number, id + 1, true, &g, &local, 0) == SOCK_EBADF,
           "no such socket");
    JCHECK(j, sock_setsockopt(r.ep, CALL, r.number, id, FS_IPPROTO_IP, FS_IP_ADD_MEMBERSHIP, 1, 0) ==
                  SOCK_EINVAL,
           "a membership through setsockopt");
    return sock_session_close(r.ep, CALL, r.number) == 0 ? 0 : jfail(j, "session_close");
}

static int mcast_loopback(job_t *j)
{
    const uint32_t G = IP4(239, 1, 2, 3), LO = IP4(127, 0, 0, 1);
    unsigned lo = lo_index();
    JCHECK(j, lo == 1, "lo is interface %u", lo);
    uint16_t port = 0;
    int r1 = udp_bound(false, &port), r2 = udp_bound(false, &port);
    int s = fs_socket(FS_AF_INET, FS_SOCK_DGRAM, 0);
    JCHECK(j, r1 >= 0 && r2 >= 0 && s >= 0, "sockets");
    if (mcast_options(j, s, r1, lo) != 0 || mcast_raw(j) != 0)
        return 1;
    /* Two members of one group on the loopback interface (by address and
     * by index); a datagram reaches both, once. */
    JCHECK(j, join4(r1, true, G, LO) == 0, "join");
    JCHECK(j, fails(join4(r1, true, G, LO), EADDRINUSE), "join twice");
    JCHECK(j, join4n(r2, true, G, (int)lo) == 0, "join by index");
    JCHECK(j, send4(s, G, port, "m1"), "send m1");
    addr_t from;
    JCHECK(j, got(r1, "m1", 2000, &from) && got(r2, "m1", 2000, NULL), "m1 not delivered");
    JCHECK(j, from.in.sin_addr.s_addr == fs_htonl(LO), "source");
    JCHECK(j, quiet(r1, 50) && quiet(r2, 0), "m1 twice");
    /* IP_MULTICAST_LOOP makes no difference on the loopback interface: it
     * carries the datagram to this host either way, once. */
    JCHECK(j, setint(s, FS_IPPROTO_IP, FS_IP_MULTICAST_LOOP, 0) == 0 &&
                  getint(s, FS_IPPROTO_IP, FS_IP_MULTICAST_LOOP) == 0,
           "loop off");
    JCHECK(j, send4(s, G, port, "m2"), "send m2");
    JCHECK(j, got(r1, "m2", 2000, NULL) && got(r2, "m2", 2000, NULL), "m2 not delivered");
    JCHECK(j, quiet(r1, 50), "m2 twice");
    /* r1 leaves; r2 is still a member, so the host still takes the group,
     * and every socket bound to the port gets it (Linux's default,
     * IP_MULTICAST_ALL). Then r2 leaves too: nobody gets it. */
    JCHECK(j, join4(r1, false, G, LO) == 0, "leave");
    JCHECK(j, send4(s, G, port, "m3"), "send m3");
    JCHECK(j, got(r2, "m3", 2000, NULL) && got(r1, "m3", 2000, NULL), "m3 not delivered");
    JCHECK(j, join4(r2, false, G, 0) == 0, "leave, any interface");
    JCHECK(j, fails(join4(r2, false, G, 0), EADDRNOTAVAIL), "leave twice");
    JCHECK(j, send4(s, G, port, "m4"), "send m4");
    JCHECK(j, quiet(r1, 200) && quiet(r2, 0), "delivered after both left");
    /* Closing a member leaves its groups. */
    int r3 = udp_bound(false, &port);
    JCHECK(j, r3 >= 0 && join4(r3, true, G, LO) == 0, "join r3");
    JCHECK(j, send4(s, G, port, "m5") && got(r1, "m5", 2000, NULL), "m5 not delivered");
    JCHECK(j, fs_close(r3) == 0, "close r3");
    JCHECK(j, send4(s, G, port, "m6") && quiet(r1, 200), "the closed socket's group stayed");
    /* At most 20 groups per socket, as on Linux. */
    int r4 = udp_bound(false, &port);
    for (uint32_t i = 0; i < 20; i++)
        JCHECK(j, join4(r4, true, IP4(239, 2, 0, 1 + i), LO) == 0, "join %u", i);
    JCHECK(j, fails(join4(r4, true, IP4(239, 2, 0, 21), LO), ENOBUFS), "a 21st group");
    JCHECK(j, fs_close(r4) == 0, "close r4");
    /* A broadcast needs SO_BROADCAST: without, the datagram is not sent
     * and the socket's error is EACCES. */
    JCHECK(j, getint(s, FS_SOL_SOCKET, FS_SO_BROADCAST) == 0, "SO_BROADCAST default");
    JCHECK(j, send4(s, 0xffffffffu, port, "b1"), "send b1");
    struct fs_pollfd p = {s, 0, 0};
    JCHECK(j, fs_poll(&p, 1, 2000) == 1 && (p.revents & FS_POLLERR), "no error shown");
    JCHECK(j, getint(s, FS_SOL_SOCKET, FS_SO_ERROR) == EACCES, "SO_ERROR");
    JCHECK(j, getint(s, FS_SOL_SOCKET, FS_SO_ERROR) == 0, "SO_ERROR cleared");
    JCHECK(j, setint(s, FS_SOL_SOCKET, FS_SO_BROADCAST, 1) == 0 &&
                  getint(s, FS_SOL_SOCKET, FS_SO_BROADCAST) == 1,
           "SO_BROADCAST");
    JCHECK(j, send4(s, 0xffffffffu, port, "b2"), "send b2");
    p.revents = 0;
    JCHECK(j, fs_poll(&p, 1, 200) == 0 && getint(s, FS_SOL_SOCKET, FS_SO_ERROR) == 0,
           "an error with SO_BROADCAST");
    fs_close(r1);
    fs_close(r2);
    fs_close(s);
    return 0;
}

static int mcast_loopback6(job_t *j)
{
    const uint32_t G = IP4(239, 1, 2, 4), LO = IP4(127, 0, 0, 1);
    unsigned lo = lo_index();
    uint16_t port = 0;
    int r = udp_bound(true, &port);
    int s = fs_socket(FS_AF_INET6, FS_SOCK_DGRAM, 0), s4 = fs_socket(FS_AF_INET, FS_SOCK_DGRAM, 0);
    JCHECK(j, r >= 0 && s >= 0 && s4 >= 0, "sockets");
    /* Options. */
    JCHECK(j, getint(s, FS_IPPROTO_IPV6, FS_IPV6_MULTICAST_HOPS) == 1, "default hops");
    JCHECK(j, setint(s, FS_IPPROTO_IPV6, FS_IPV6_MULTICAST_HOPS, 5) == 0 &&
                  getint(s, FS_IPPROTO_IPV6, FS_IPV6_MULTICAST_HOPS) == 5,
           "hops 5");
    JCHECK(j, fails(setint(s, FS_IPPROTO_IPV6, FS_IPV6_MULTICAST_HOPS, 256), EINVAL), "hops 256");
    JCHECK(j, fails(setint(s, FS_IPPROTO_IPV6, FS_IPV6_MULTICAST_LOOP, 2), EINVAL), "loop 2");
    JCHECK(j, fails(setint(s, FS_IPPROTO_IPV6, FS_IPV6_UNICAST_HOPS, -2), EINVAL), "unicast -2");
    JCHECK(j, setint(s, FS_IPPROTO_IPV6, FS_IPV6_UNICAST_HOPS, 9) == 0 &&
                  getint(s, FS_IPPROTO_IPV6, FS_IPV6_UNICAST_HOPS) == 9,
           "unicast hops");
    JCHECK(j, fails(setint(s, FS_IPPROTO_IPV6, FS_IPV6_MULTICAST_IF, 99), ENODEV), "interface 99");
    JCHECK(j, setint(s, FS_IPPROTO_IPV6, FS_IPV6_MULTICAST_IF, (int)lo) == 0 &&
                  getint(s, FS_IPPROTO_IPV6, FS_IPV6_MULTICAST_IF) == (int)lo,
           "IPV6_MULTICAST_IF lo");
    JCHECK(j, fails(join6(r, true, G6, 0), ENODEV), "no default interface without a NIC");
    JCHECK(j, fails(join6(r, true, NOT_MC6, lo), EINVAL), "a unicast group");
    JCHECK(j, fails(join6(r, false, G6, lo), EADDRNOTAVAIL), "leave without join");
    /* A global and a link-scoped group. */
    JCHECK(j, join6(r, true, G6, lo) == 0, "join");
    JCHECK(j, fails(join6(r, true, G6, lo), EADDRINUSE), "join twice");
    JCHECK(j, join6(r, true, G6LL, lo) == 0, "join link-scoped");
    JCHECK(j, send6(s, G6, port, "v1") && got(r, "v1", 2000, NULL), "v1 not delivered");
    JCHECK(j, send6(s, G6LL, port, "v2") && got(r, "v2", 2000, NULL), "v2 not delivered");
    JCHECK(j, quiet(r, 50), "twice");
    JCHECK(j, join6(r, false, G6, lo) == 0 && join6(r, false, G6LL, 0) == 0, "leave");
    JCHECK(j, fails(join6(r, false, G6, lo), EADDRNOTAVAIL), "leave twice");
    JCHECK(j, send6(s, G6, port, "v3") && quiet(r, 200), "delivered after leaving");
    /* An IPv4 group on a dual-stack socket. */
    struct fs_in_addr ia = {fs_htonl(LO)};
    JCHECK(j, fs_setsockopt(s4, FS_IPPROTO_IP, FS_IP_MULTICAST_IF, &ia, sizeof ia) == 0, "IF");
    JCHECK(j, join4(r, true, G, LO) == 0, "IPv4 group on an IPv6 socket");
    addr_t from;
    JCHECK(j, send4(s4, G, port, "v4") && got(r, "v4", 2000, &from), "v4 not delivered");
    static const uint8_t mapped[16] = {[10] = 0xff, [11] = 0xff, 127, 0, 0, 1};
    JCHECK(j, from.sa.sa_family == FS_AF_INET6 && memcmp(from.in6.sin6_addr.s6_addr, mapped, 16) == 0,
           "source ::ffff:127.0.0.1");
    fs_close(r);
    fs_close(s);
    fs_close(s4);
    return 0;
}

START_TEST(test_multicast_loopback)
{
    netsrv_start(NULL);
    spawn(0, "mcast4", 10, mcast_loopback);
    join(&jobs[0], 30000 * MS);
    spawn(1, "mcast6", 11, mcast_loopback6);
    join(&jobs[1], 30000 * MS);
    netsrv_client_stats_t st;
    (void)st;
    ck_assert_uint_eq(sock_totals().sockets, 0);
    netsrv_stop();
}
END_TEST

/* ---- Multicast, broadcast, TTL and TOS on a NIC (a fake driver plays the wire) ---------- */

/* netsrv with the fake NIC of tests/netsrv as nic0: 10.0.0.1/24 (the
 * peer 10.0.0.2 answers ARP and neighbour solicitations), IPv6 link-local.
 * The NIC is interface index 1 (sock.idl), lo 2. */
static void netsrv_start_nic(void)
{
    ck_assert_int_eq(sim_init(), MK_OK);
    fnic.respond = true;
    mk_cap_t nic = fnic_setup();
    ck_assert_int_eq(mk_ep_create(&h_ep), MK_OK);
    ck_assert_int_eq(mk_cap_mint(h_ep, MK_RIGHT_SEND, 1000, &h_admin), MK_OK);
    ck_assert_int_eq(mk_task_create("netsrv", &h_netsrv), MK_OK);
    ck_assert_int_eq(mk_task_give(h_netsrv, h_ep, MK_RIGHT_RECV, 0, "netsrv", NULL), MK_OK);
    ck_assert_int_eq(mk_task_give(h_netsrv, nic, MK_RIGHT_SEND, 1, "nic0", NULL), MK_OK);
    char *argv[] = {"netsrv", "--nic", "nic0", "--ip", "10.0.0.1/24", "--ip6", "link-local"};
    ck_assert_int_eq(mk_task_start(h_netsrv, netsrv_main, 7, argv), MK_OK);
    uint32_t n = 0;
    ck_assert_int_eq(netsrv_get_netif_count(h_admin, CALL, &n), 0);
    ck_assert_uint_eq(n, 2);
    /* IPv6 needs a source address: wait for DAD to finish on nic0. */
    uint64_t end = mk_time_ns() + 10000 * MS;
    for (bool ready = false; !ready; mk_sleep_ns(10 * MS)) {
        netsrv_ip6_addr_t a[NETSRV_IP6_ADDRS];
        uint32_t na = 0;
        ck_assert_int_eq(netsrv_get_netif_ip6(h_admin, CALL, 0, a, &na), 0);
        for (uint32_t i = 0; i < na; i++)
            ready |= a[i].state == NETSRV_IP6_PREFERRED;
        ck_assert_msg(ready || mk_time_ns() < end, "nic0's link-local address never got ready");
    }
    memset(jobs, 0, sizeof jobs);
}

/* A frame netsrv sent, parsed: Ethernet, IPv4 or IPv6 (past a hop-by-hop
 * header), then UDP or ICMPv6 or IGMP. */
typedef struct frame {
    const uint8_t *dmac;
    bool v6;
    uint8_t ttl, tos, proto; /* proto: 17 UDP, 2 IGMP, 58 ICMPv6 */
    uint8_t dst[16];         /* IPv4: 4 bytes */
    const uint8_t *l4;
    size_t l4_len;
} frame_t;

static bool parse(const uint8_t *f, size_t len, frame_t *o)
{
    if (len < W_ETH_HDR + 20)
        return false;
    o->dmac = f;
    const uint8_t *ip = f + W_ETH_HDR;
    size_t left = len - W_ETH_HDR;
    if (w_get16(f + 12) == W_ETH_IP4) {
        size_t ihl = (size_t)(ip[0] & 15) * 4;
        size_t tot = w_get16(ip + 2);
        if ((ip[0] >> 4) != 4 || ihl < 20 || tot < ihl || tot > left)
            return false;
        o->v6 = false;
        o->tos = ip[1];
        o->ttl = ip[8];
        o->proto = ip[9];
        memcpy(o->dst, ip + 16, 4);
        o->l4 = ip + ihl;
        o->l4_len = tot - ihl;
        return true;
    }
    if (w_get16(f + 12) != W_ETH_IP6 || left < 40 || (ip[0] >> 4) != 6)
        return false;
    size_t plen = w_get16(ip + 4);
    if (40 + plen > left)
        return false;
    o->v6 = true;
    o->tos = 0;
    o->ttl = ip[7];
    o->proto = ip[6];
    memcpy(o->dst, ip + 24, 16);
    o->l4 = ip + 40;
    o->l4_len = plen;
    if (o->proto == 0) { /* hop-by-hop options (MLD's router alert) */
        size_t ext = ((size_t)o->l4[1] + 1) * 8;
        if (plen < 8 || ext > plen)
            return false;
        o->proto = o->l4[0];
        o->l4 += ext;
        o->l4_len -= ext;
    }
    return true;
}

/* A UDP datagram (either family) whose payload is the string arg. */
static bool match_udp(const uint8_t *f, size_t len, const void *arg)
{
    frame_t fr;
    const char *msg = arg;
    size_t n = strlen(msg);
    return parse(f, len, &fr) && fr.proto == 17 && fr.l4_len == 8 + n &&
           memcmp(fr.l4 + 8, msg, n) == 0;
}

/* A TCP SYN to port *(const uint16_t *)arg, either family. */
static bool match_syn(const uint8_t *f, size_t len, const void *arg)
{
    frame_t fr;
    return parse(f, len, &fr) && fr.proto == 6 && fr.l4_len >= 20 &&
           w_get16(fr.l4 + 2) == *(const uint16_t *)arg && (fr.l4[13] & 0x12) == 0x02;
}

/* An IGMPv2 report (0x16) or leave (0x17) for a group. */
typedef struct igmp_want {
    uint8_t type;
    uint32_t group;
} igmp_want_t;

static bool match_igmp(const uint8_t *f, size_t len, const void *arg)
{
    const igmp_want_t *w = arg;
    frame_t fr;
    return parse(f, len, &fr) && !fr.v6 && fr.proto == 2 && fr.l4_len >= 8 &&
           fr.l4[0] == w->type && w_get32(fr.l4 + 4) == w->group;
}

/* An MLDv1 report (131) or done (132) for a group. */
typedef struct mld_want {
    uint8_t type;
    const uint8_t *group;
} mld_want_t;

static bool match_mld(const uint8_t *f, size_t len, const void *arg)
{
    const mld_want_t *w = arg;
    frame_t fr;
    return parse(f, len, &fr) && fr.v6 && fr.proto == 58 && fr.l4_len >= 24 &&
           fr.l4[0] == w->type && memcmp(fr.l4 + 8, w->group, 16) == 0;
}

/* Wait (2 s at most) for a frame netsrv sends after *mark; parsed in *fr
 * (its bytes in buf). */
static bool on_wire(uint32_t *mark, bool (*match)(const uint8_t *, size_t, const void *),
                    const void *arg, uint8_t *buf, frame_t *fr, uint64_t timeout_ns)
{
    size_t n = fnic_wait(mark, match, arg, timeout_ns, buf);
    return n > 0 && parse(buf, n, fr);
}

/* The peer 10.0.0.2 sends a UDP datagram to dst:port. */
static void inject_udp4(uint32_t dst, uint16_t port, const char *msg)
{
    uint8_t f[256];
    uint8_t mac[6] = {0x01, 0x00, 0x5e, (uint8_t)((dst >> 16) & 0x7f), (uint8_t)(dst >> 8),
                      (uint8_t)dst};
    size_t n = w_eth(f, mac, peer_mac, W_ETH_IP4);
    uint8_t *ip = f + n, *udp = ip + 20;
    size_t len = strlen(msg);
    memset(ip, 0, 28);
    ip[0] = 0x45;
    w_put16(ip + 2, (uint16_t)(28 + len));
    ip[8] = 1;
    ip[9] = 17;
    w_put32(ip + 12, W_PEER_IP);
    w_put32(ip + 16, dst);
    w_put16(ip + 10, w_fold(w_sum(0, ip, 20)));
    w_put16(udp, 4242);
    w_put16(udp + 2, port);
    w_put16(udp + 4, (uint16_t)(8 + len)); /* checksum 0: none, allowed in IPv4 */
    memcpy(udp + 8, msg, len);
    fnic_inject(f, n + 28 + len);
}

/* Everything the test injected has reached netsrv, and netsrv has worked
 * through it: the fake driver's queue is empty, and netsrv answered a call
 * made after that (it drains its NICs before each answer). Then a datagram
 * that was going to be delivered is in the socket's ring already. */
static bool wire_settle(int fd)
{
    uint64_t end = mk_time_ns() + 2000 * MS;
    for (;;) {
        pthread_mutex_lock(&fnic.lock);
        uint32_t left = fnic.ninject;
        pthread_mutex_unlock(&fnic.lock);
        if (left == 0)
            break;
        if (mk_time_ns() > end)
            return false;
        mk_sleep_ns(MS);
    }
    mk_sleep_ns(10 * MS); /* the driver publishes after it dequeued */
    return getint(fd, FS_SOL_SOCKET, 3 /* SO_TYPE */) == FS_SOCK_DGRAM &&
           getint(fd, FS_SOL_SOCKET, 3 /* SO_TYPE */) == FS_SOCK_DGRAM;
}

static int nic_ipv4(job_t *j)
{
    const uint32_t G = IP4(239, 1, 2, 3), ME = W_NETSRV_IP;
    static const uint8_t mc_mac[6] = {0x01, 0x00, 0x5e, 0x01, 0x02, 0x03};
    static const uint8_t bc_mac[6] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
    static uint8_t buf[FNIC_FRAME_MAX];
    frame_t fr;
    uint16_t port = 0;
    int r = udp_bound(false, &port), s = fs_socket(FS_AF_INET, FS_SOCK_DGRAM, 0);
    JCHECK(j, r >= 0 && s >= 0, "sockets");
    /* Joining on the NIC reports the membership on the wire. */
    uint32_t mark = fnic_mark();
    JCHECK(j, join4(r, true, G, ME) == 0, "join on nic0");
    igmp_want_t rep = {0x16, G};
    JCHECK(j, on_wire(&mark, match_igmp, &rep, buf, &fr, 2000 * MS), "no IGMP report");
    JCHECK(j, memcmp(fr.dmac, mc_mac, 6) == 0, "IGMP report's MAC");
    /* The socket's own datagrams: on the wire with the multicast TTL, and
     * back to this host's member only with IP_MULTICAST_LOOP. */
    struct fs_ip_mreq via = {{0}, {fs_htonl(ME)}}; /* IP_MULTICAST_IF as an ip_mreq */
    JCHECK(j, fs_setsockopt(s, FS_IPPROTO_IP, FS_IP_MULTICAST_IF, &via, sizeof via) == 0, "IF");
    JCHECK(j, setint(s, FS_IPPROTO_IP, FS_IP_MULTICAST_TTL, 4) == 0, "TTL");
    mark = fnic_mark();
    JCHECK(j, send4(s, G, port, "n1"), "send n1");
    JCHECK(j, on_wire(&mark, match_udp, "n1", buf, &fr, 2000 * MS), "n1 not on the wire");
    JCHECK(j, memcmp(fr.dmac, mc_mac, 6) == 0 && w_get32(fr.dst) == G && fr.ttl == 4,
           "n1: MAC, group or TTL %u", fr.ttl);
    JCHECK(j, got(r, "n1", 2000, NULL), "n1 not looped back");
    JCHECK(j, quiet(r, 50), "n1 twice");
    JCHECK(j, setint(s, FS_IPPROTO_IP, FS_IP_MULTICAST_LOOP, 0) == 0, "loop off");
    JCHECK(j, send4(s, G, port, "n2"), "send n2");
    JCHECK(j, on_wire(&mark, match_udp, "n2", buf, &fr, 2000 * MS), "n2 not on the wire");
    JCHECK(j, wire_settle(r) && quiet(r, 100), "n2 looped back with IP_MULTICAST_LOOP 0");
    /* From the wire: delivered while a member, not after leaving. */
    addr_t from;
    inject_udp4(G, port, "n3");
    JCHECK(j, got(r, "n3", 2000, &from), "n3 from the wire not delivered");
    JCHECK(j, from.in.sin_addr.s_addr == fs_htonl(W_PEER_IP), "n3's source");
    mark = fnic_mark();
    JCHECK(j, join4(r, false, G, ME) == 0, "leave");
    igmp_want_t leave = {0x17, G};
    JCHECK(j, on_wire(&mark, match_igmp, &leave, buf, &fr, 2000 * MS), "no IGMP leave");
    inject_udp4(G, port, "n4");
    JCHECK(j, wire_settle(r) && quiet(r, 100), "n4 delivered after leaving");
    /* The default interface (the first NIC) when none is named. */
    mark = fnic_mark();
    JCHECK(j, join4(r, true, G, 0) == 0, "join on the default interface");
    JCHECK(j, on_wire(&mark, match_igmp, &rep, buf, &fr, 2000 * MS), "no IGMP report (default)");
    inject_udp4(G, port, "n5");
    JCHECK(j, got(r, "n5", 2000, NULL), "n5 not delivered");
    /* Unicast: IP_TTL and IP_TOS show in the packet. */
    JCHECK(j, setint(s, FS_IPPROTO_IP, FS_IP_TTL, 17) == 0 && setint(s, FS_IPPROTO_IP, FS_IP_TOS, 0x28) == 0,
           "TTL, TOS");
    mark = fnic_mark();
    JCHECK(j, send4(s, W_PEER_IP, 9, "u1"), "send u1");
    JCHECK(j, on_wire(&mark, match_udp, "u1", buf, &fr, 2000 * MS), "u1 not on the wire");
    JCHECK(j, fr.ttl == 17 && fr.tos == 0x28, "u1: TTL %u, TOS 0x%x", fr.ttl, fr.tos);
    /* And TCP's: the SYN to the peer (which does not answer TCP). */
    int t = fs_socket(FS_AF_INET, FS_SOCK_STREAM | FS_SOCK_NONBLOCK, 0);
    JCHECK(j, t >= 0 && setint(t, FS_IPPROTO_IP, FS_IP_TTL, 19) == 0 &&
                  setint(t, FS_IPPROTO_IP, FS_IP_TOS, 0x10) == 0,
           "TCP TTL, TOS");
    addr_t pa;
    memset(&pa, 0, sizeof pa);
    pa.in.sin_family = FS_AF_INET;
    pa.in.sin_port = fs_htons(9);
    pa.in.sin_addr.s_addr = fs_htonl(W_PEER_IP);
    mark = fnic_mark();
    JCHECK(j, fails(fs_connect(t, &pa.sa, sizeof pa.in), EINPROGRESS), "connect");
    uint16_t nine = 9;
    JCHECK(j, on_wire(&mark, match_syn, &nine, buf, &fr, 2000 * MS), "no SYN on the wire");
    JCHECK(j, !fr.v6 && fr.ttl == 19 && fr.tos == 0x10, "SYN: TTL %u, TOS 0x%x", fr.ttl, fr.tos);
    fs_close(t);
    /* Broadcast: refused without SO_BROADCAST (EACCES, nothing on the
     * wire), sent with it: the subnet's and the limited broadcast. */
    mark = fnic_mark();
    JCHECK(j, send4(s, IP4(10, 0, 0, 255), 9, "b1"), "send b1");
    struct fs_pollfd p = {s, 0, 0};
    JCHECK(j, fs_poll(&p, 1, 2000) == 1 && (p.revents & FS_POLLERR), "b1: no error");
    JCHECK(j, getint(s, FS_SOL_SOCKET, FS_SO_ERROR) == EACCES, "b1: not EACCES");
    JCHECK(j, setint(s, FS_SOL_SOCKET, FS_SO_BROADCAST, 1) == 0, "SO_BROADCAST");
    JCHECK(j, send4(s, IP4(10, 0, 0, 255), 9, "b2"), "send b2");
    JCHECK(j, on_wire(&mark, match_udp, "b2", buf, &fr, 2000 * MS), "b2 not on the wire");
    JCHECK(j, memcmp(fr.dmac, bc_mac, 6) == 0, "b2's MAC");
    JCHECK(j, send4(s, 0xffffffffu, 9, "b3"), "send b3");
    JCHECK(j, on_wire(&mark, match_udp, "b3", buf, &fr, 2000 * MS), "b3 not on the wire");
    uint32_t all = fnic_mark();
    mark = 0;
    JCHECK(j, all > 0 && fnic_wait(&mark, match_udp, "b1", 0, buf) == 0, "b1 reached the wire");
    /* Closing the member leaves its group (a leave on the wire). */
    mark = fnic_mark();
    JCHECK(j, fs_close(r) == 0, "close");
    JCHECK(j, on_wire(&mark, match_igmp, &leave, buf, &fr, 2000 * MS), "no IGMP leave on close");
    fs_close(s);
    return 0;
}

static int nic_ipv6(job_t *j)
{
    static uint8_t buf[FNIC_FRAME_MAX];
    frame_t fr;
    uint16_t port = 0;
    int r = udp_bound(true, &port), s = fs_socket(FS_AF_INET6, FS_SOCK_DGRAM, 0);
    JCHECK(j, r >= 0 && s >= 0, "sockets");
    uint32_t mark = fnic_mark();
    JCHECK(j, join6(r, true, G6, 1) == 0, "join on nic0");
    mld_want_t rep = {131, G6};
    JCHECK(j, on_wire(&mark, match_mld, &rep, buf, &fr, 2000 * MS), "no MLD report");
    JCHECK(j, setint(s, FS_IPPROTO_IPV6, FS_IPV6_MULTICAST_IF, 1) == 0 &&
                  setint(s, FS_IPPROTO_IPV6, FS_IPV6_MULTICAST_HOPS, 6) == 0,
           "IF, hops");
    mark = fnic_mark();
    JCHECK(j, send6(s, G6, port, "w1"), "send w1");
    JCHECK(j, on_wire(&mark, match_udp, "w1", buf, &fr, 2000 * MS), "w1 not on the wire");
    static const uint8_t mc_mac[6] = {0x33, 0x33, 0x00, 0x01, 0x00, 0x02};
    JCHECK(j, fr.v6 && memcmp(fr.dst, G6, 16) == 0 && memcmp(fr.dmac, mc_mac, 6) == 0 && fr.ttl == 6,
           "w1: group, MAC or hop limit %u", fr.ttl);
    JCHECK(j, got(r, "w1", 2000, NULL), "w1 not looped back");
    JCHECK(j, setint(s, FS_IPPROTO_IPV6, FS_IPV6_MULTICAST_LOOP, 0) == 0, "loop off");
    JCHECK(j, send6(s, G6, port, "w2"), "send w2");
    JCHECK(j, on_wire(&mark, match_udp, "w2", buf, &fr, 2000 * MS), "w2 not on the wire");
    JCHECK(j, wire_settle(r) && quiet(r, 100), "w2 looped back with IPV6_MULTICAST_LOOP 0");
    mark = fnic_mark();
    JCHECK(j, join6(r, false, G6, 1) == 0, "leave");
    mld_want_t done = {132, G6};
    JCHECK(j, on_wire(&mark, match_mld, &done, buf, &fr, 2000 * MS), "no MLD done");
    /* The unicast hop limit of a TCP connection: its SYN to the peer's
     * link-local address (which does not answer TCP). */
    int t = fs_socket(FS_AF_INET6, FS_SOCK_STREAM | FS_SOCK_NONBLOCK, 0);
    JCHECK(j, t >= 0 && setint(t, FS_IPPROTO_IPV6, FS_IPV6_UNICAST_HOPS, 33) == 0, "unicast hops");
    w_ip6_t peer = w_ip6_linklocal(peer_mac);
    addr_t a;
    memset(&a, 0, sizeof a);
    a.in6.sin6_family = FS_AF_INET6;
    a.in6.sin6_port = fs_htons(9);
    a.in6.sin6_scope_id = 1;
    memcpy(a.in6.sin6_addr.s6_addr, peer.b, 16);
    mark = fnic_mark();
    JCHECK(j, fails(fs_connect(t, &a.sa, sizeof a.in6), EINPROGRESS), "connect");
    uint16_t nine = 9;
    JCHECK(j, on_wire(&mark, match_syn, &nine, buf, &fr, 3000 * MS), "no SYN on the wire");
    JCHECK(j, fr.v6 && fr.ttl == 33, "SYN: hop limit %u", fr.ttl);
    fs_close(t);
    fs_close(r);
    fs_close(s);
    return 0;
}

START_TEST(test_multicast_nic)
{
    netsrv_start_nic();
    spawn(0, "nic4", 10, nic_ipv4);
    join(&jobs[0], 30000 * MS);
    spawn(1, "nic6", 11, nic_ipv6);
    join(&jobs[1], 30000 * MS);
    netsrv_stop();
}
END_TEST

/* ---- Runner ------------------------------------------------------------------------------- */


static Suite *opts_suite(void)
{
    Suite *s = suite_create("sock_opts");
    TCase *tc = tcase_create("sock_opts");
    tcase_set_timeout(tc, 60);
    SOCK_ADD(tc, test_accept_fifo);
    SOCK_ADD(tc, test_accept_client_dies);
    SOCK_ADD(tc, test_window_scaled);
    SOCK_ADD(tc, test_multicast_loopback);
    SOCK_ADD(tc, test_multicast_nic);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return sock_run_suite(opts_suite());
}

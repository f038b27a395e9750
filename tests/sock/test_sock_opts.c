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
 *
 * Each test runs in its own process (netsrv's lwIP is global). Network
 * safety: netsrv's loopback; nothing leaves the process.
 */
#include "harness.h"

#include <ferry/sock_region.h>
#include <sock_client.h>

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
     * within a segment: lwIP does not split a segment for the last bytes of
     * a window): the window netsrv advertised was 256 KiB, beyond the 65535
     * bytes an unscaled window can be (the writer's ring held the rest). */
    ck_assert_msg(full > 0xffff && full <= (long)BIG_RING && full + 1460 > (long)BIG_RING,
                  "the reader's ring took %ld bytes unread", full);
    ck_assert_msg(jobs[0].bytes == 0, "%llu bytes pending beyond the window",
                  (unsigned long long)jobs[0].bytes);
    /* Round 1: SO_RCVBUF 100 KiB caps the window, and the window started
     * there: nothing waited in netsrv beyond the ring's 100 KiB. */
    ck_assert_msg(capped > 0xffff && capped <= 100 * 1024 && capped + 1460 > 100 * 1024,
                  "with SO_RCVBUF 100 KiB the ring took %ld bytes", capped);
    ck_assert_msg(jobs[0].param[3] == 0, "%ld bytes pending beyond the window", jobs[0].param[3]);
    ck_assert_uint_eq(sock_totals().pending_bytes, 0);
    netsrv_stop();
}
END_TEST

/* ---- Runner ------------------------------------------------------------------------------- */

/* SOCK_TEST=name runs only that test (debugging). */
#define ADD(tc, t)                                                                     \
    do {                                                                               \
        const char *only_ = getenv("SOCK_TEST");                                       \
        if (only_ == NULL || strcmp(only_, #t) == 0)                                   \
            tcase_add_test(tc, t);                                                     \
    } while (0)

static Suite *opts_suite(void)
{
    Suite *s = suite_create("sock_opts");
    TCase *tc = tcase_create("sock_opts");
    tcase_set_timeout(tc, 60);
    ADD(tc, test_accept_fifo);
    ADD(tc, test_accept_client_dies);
    ADD(tc, test_window_scaled);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(opts_suite());
    srunner_set_fork_status(sr, CK_FORK); /* one netsrv (one lwIP) per process */
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

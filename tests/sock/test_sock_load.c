/*
 * test_sock_load.c - the socket service under load, inside the simulator
 * over netsrv's loopback:
 *
 *  - 1,000 TCP connections open at once between two tasks (one poll loop
 *    each, non-blocking sockets, 4 KiB rings): every connection carries
 *    its own 8 KiB pattern to an echo server and back, all verified; with
 *    1,000 sockets sending at once lwIP's heap runs short and sends wait
 *    on the starved list (counted), nothing is lost;
 *  - a 100 MiB transfer checked byte for byte (and its rate printed);
 *  - afterwards nothing is left: no socket, no pending byte, every PCB
 *    back in lwIP's pool except TIME-WAIT ones.
 *
 * Network safety: netsrv has no NIC here; everything stays on its loopback.
 */
#include "harness.h"

#define CONNS 1000
#define PER_CONN 8192
#define RING 4096

/* ---- 1,000 connections ------------------------------------------------------------------ */

typedef struct echo_conn {
    int fd;
    uint32_t have, off; /* echo buffer */
    uint8_t buf[RING];
} echo_conn_t;

static int many_server(job_t *j)
{
    JCHECK(j, fs_session_configure("netsrv", CONNS + 8, RING) == 0, "configure");
    uint16_t port;
    int l = listen_on(false, 0, 255, &port);
    JCHECK(j, l >= 0 && fs_fcntl(l, FS_F_SETFL, FS_O_NONBLOCK) == 0, "listen");
    atomic_store(&j->port, port);
    atomic_store(&j->stage, 1);
    static echo_conn_t conns[CONNS];
    static struct fs_pollfd pfd[CONNS + 1];
    int n = 0, closed = 0, most = 0;
    pfd[0] = (struct fs_pollfd){.fd = l, .events = FS_POLLIN};
    uint64_t end = mk_time_ns() + 60000 * MS;
    while (closed < CONNS && mk_time_ns() < end) {
        for (int i = 0; i < n; i++)
            pfd[i + 1] = (struct fs_pollfd){
                .fd = conns[i].fd, .events = (short)(conns[i].have ? FS_POLLOUT : FS_POLLIN)};
        JCHECK(j, fs_poll(pfd, (unsigned long)n + 1, 1000) >= 0, "poll");
        for (int i = n - 1; i >= 0; i--) {
            echo_conn_t *c = &conns[i];
            if (pfd[i + 1].revents == 0 || c->fd < 0)
                continue;
            if (c->have == 0) {
                fs_ssize_t k = fs_recv(c->fd, c->buf, sizeof c->buf, FS_MSG_DONTWAIT);
                if (k < 0) {
                    JCHECK(j, errno == EAGAIN, "recv");
                    continue;
                }
                if (k == 0) { /* the client is done: close */
                    JCHECK(j, fs_close(c->fd) == 0, "close");
                    c->fd = -1;
                    closed++;
                    continue;
                }
                c->have = (uint32_t)k;
                c->off = 0;
            }
            fs_ssize_t k = fs_send(c->fd, c->buf + c->off, c->have - c->off, FS_MSG_DONTWAIT);
            if (k < 0) {
                JCHECK(j, errno == EAGAIN, "send");
                continue;
            }
            c->off += (uint32_t)k;
            if (c->off == c->have)
                c->have = 0;
        }
        /* Compact closed connections away. */
        int w = 0;
        for (int i = 0; i < n; i++)
            if (conns[i].fd >= 0)
                conns[w++] = conns[i];
        n = w;
        if (pfd[0].revents & FS_POLLIN) {
            int fd;
            while (n < CONNS && (fd = fs_accept(l, NULL, NULL)) >= 0) {
                fs_fcntl(fd, FS_F_SETFL, FS_O_NONBLOCK);
                conns[n++] = (echo_conn_t){.fd = fd};
            }
        }
        if (n > most)
            most = n;
        if (n == CONNS)
            atomic_store(&j->stage, 2); /* all accepted, none closed yet */
    }
    j->param[1] = most;
    JCHECK(j, closed == CONNS, "%d of %d connections done", closed, CONNS);
    JCHECK(j, fs_close(l) == 0, "close");
    JCHECK(j, job_stats(j), "stats");
    return 0;
}

typedef struct client_conn {
    int fd;
    uint32_t sent, got;
    bool connected;
} client_conn_t;

static int many_client(job_t *j)
{
    job_t *srv = j->arg;
    JCHECK(j, fs_session_configure("netsrv", CONNS + 8, RING) == 0, "configure");
    JCHECK(j, job_wait_stage(srv, 1, 5000 * MS), "server");
    static client_conn_t c[CONNS];
    static struct fs_pollfd pfd[CONNS];
    addr_t a;
    fs_socklen_t len = loop_addr(false, (uint16_t)atomic_load(&srv->port), &a);
    /* All 1,000 connected before any data moves: concurrent for real. They
     * are opened in waves of 200, each wave once the previous one is
     * established: a listen backlog holds at most 255, and a SYN beyond it
     * would only be retried after lwIP's 3 s initial timeout. */
    int connected = 0;
    uint64_t end = mk_time_ns() + 30000 * MS;
    for (int opened = 0; opened < CONNS || connected < CONNS;) {
        JCHECK(j, mk_time_ns() < end, "%d of %d connected", connected, CONNS);
        if (opened == connected && opened < CONNS)
            for (int w = 0; w < 200 && opened < CONNS; w++, opened++) {
                int i = opened;
                c[i] = (client_conn_t){
                    .fd = fs_socket(FS_AF_INET, FS_SOCK_STREAM | FS_SOCK_NONBLOCK, 0)};
                JCHECK(j, c[i].fd >= 0, "socket %d", i);
                JCHECK(j, fs_connect(c[i].fd, &a.sa, len) < 0 && errno == EINPROGRESS,
                       "connect %d", i);
            }
        for (int i = 0; i < opened; i++)
            pfd[i] = (struct fs_pollfd){.fd = c[i].connected ? -1 : c[i].fd, .events = FS_POLLOUT};
        JCHECK(j, fs_poll(pfd, (unsigned long)opened, 1000) >= 0, "poll");
        for (int i = 0; i < opened; i++) {
            if (c[i].connected || !(pfd[i].revents & (FS_POLLOUT | FS_POLLERR)))
                continue;
            int err = -1;
            fs_socklen_t el = sizeof err;
            JCHECK(j, fs_getsockopt(c[i].fd, FS_SOL_SOCKET, FS_SO_ERROR, &err, &el) == 0 && err == 0,
                   "connection %d: SO_ERROR %d", i, err);
            c[i].connected = true;
            connected++;
        }
    }
    JCHECK(j, connected == CONNS, "%d of %d connected", connected, CONNS);
    atomic_store(&j->stage, 1);
    job_hold(j); /* the test counts them first */
    int done = 0;
    static uint8_t buf[RING];
    end = mk_time_ns() + 60000 * MS;
    while (done < CONNS && mk_time_ns() < end) {
        for (int i = 0; i < CONNS; i++) {
            short ev = c[i].got < PER_CONN ? FS_POLLIN : 0;
            if (c[i].sent < PER_CONN)
                ev |= FS_POLLOUT;
            pfd[i] = (struct fs_pollfd){.fd = ev ? c[i].fd : -1, .events = ev};
        }
        JCHECK(j, fs_poll(pfd, CONNS, 1000) >= 0, "poll");
        for (int i = 0; i < CONNS; i++) {
            client_conn_t *k = &c[i];
            if (pfd[i].revents & FS_POLLOUT) {
                uint32_t n = PER_CONN - k->sent < sizeof buf ? PER_CONN - k->sent : sizeof buf;
                pat_fill(buf, (uint32_t)i, k->sent, n);
                fs_ssize_t s = fs_send(k->fd, buf, n, 0);
                JCHECK(j, s > 0 || errno == EAGAIN, "send %d", i);
                if (s > 0)
                    k->sent += (uint32_t)s;
            }
            if (pfd[i].revents & FS_POLLIN) {
                fs_ssize_t r = fs_recv(k->fd, buf, sizeof buf, 0);
                JCHECK(j, r > 0 || (r < 0 && errno == EAGAIN), "recv %d: %ld", i, (long)r);
                if (r <= 0)
                    continue;
                JCHECK(j, k->got + (uint32_t)r <= PER_CONN, "connection %d: too much", i);
                JCHECK(j, pat_check(buf, (uint32_t)i, k->got, (size_t)r) < 0,
                       "connection %d: data differs at %u", i, k->got);
                k->got += (uint32_t)r;
                if (k->got == PER_CONN) {
                    JCHECK(j, fs_close(k->fd) == 0, "close %d", i);
                    done++;
                }
            }
        }
    }
    JCHECK(j, done == CONNS, "%d of %d connections echoed", done, CONNS);
    j->bytes = (uint64_t)done * PER_CONN;
    return 0;
}

START_TEST(test_thousand_connections)
{
    netsrv_start(NULL);
    uint64_t pcbs0 = pool_used("TCP_PCB");
    uint64_t t0 = mk_time_ns();
    spawn(0, "server", 10, many_server);
    jobs[1].arg = &jobs[0];
    spawn(1, "client", 11, many_client);
    wait_stage(&jobs[1], 1, 40000 * MS);
    wait_stage(&jobs[0], 2, 10000 * MS);
    uint64_t t1 = mk_time_ns();
    /* All of them open at once: 1,000 on each side plus the listener. */
    netsrv_sock_stats_t t = sock_totals();
    ck_assert_uint_ge(t.sockets, 2 * CONNS + 1);
    ck_assert_uint_ge(pool_used("TCP_PCB"), pcbs0 + 2 * CONNS);
    atomic_store(&jobs[1].release, 1);
    join(&jobs[1], 90000 * MS);
    join(&jobs[0], 30000 * MS);
    uint64_t t2 = mk_time_ns();
    ck_assert_uint_eq(jobs[1].bytes, (uint64_t)CONNS * PER_CONN);
    ck_assert_uint_eq(jobs[0].st.rx_bytes, (uint64_t)CONNS * PER_CONN);
    ck_assert_uint_eq(jobs[0].st.tx_bytes, (uint64_t)CONNS * PER_CONN);
    t = sock_totals();
    ck_assert_uint_eq(t.sockets, 0);
    ck_assert_uint_eq(t.pending_bytes, 0);
    /* Nothing was lost on the way: no packet dropped on lwIP's loopback
     * queue, no heap allocation failed (send data waits instead). */
    char pname[NETSRV_STAT_NAME_MAX + 1];
    netsrv_proto_stats_t ps;
    for (uint32_t i = 0; netsrv_get_proto_stats(h_admin, CALL, i, pname, &ps) == 0; i++)
        if (strcmp(pname, "LINK") == 0 || strcmp(pname, "TCP") == 0)
            ck_assert_msg(ps.drop == 0 && ps.memerr == 0, "%s: %llu dropped, %llu memory errors",
                          pname, (unsigned long long)ps.drop, (unsigned long long)ps.memerr);
    netsrv_mem_stats_t ms;
    ck_assert_int_eq(netsrv_get_mem_stats(h_admin, CALL, 0, pname, &ms), 0);
    ck_assert_uint_eq(ms.err, 0);
    printf("1000 connections, 8 KiB each way each: connected in %.2f s, echoed in %.2f s; lwIP "
           "heap peak %llu KiB; %llu sends waited for lwIP memory\n",
           (double)(t1 - t0) / 1e9, (double)(t2 - t1) / 1e9, (unsigned long long)(ms.max >> 10),
           (unsigned long long)t.tx_starved);
    netsrv_stop();
}
END_TEST

/* ---- 100 MiB ------------------------------------------------------------------------------- */

#define BIG (100ull << 20)

static int big_sink(job_t *j)
{
    uint16_t port;
    int l = listen_on(j->param[0], 0, 1, &port);
    JCHECK(j, l >= 0, "listen");
    atomic_store(&j->port, port);
    atomic_store(&j->stage, 1);
    int c = fs_accept(l, NULL, NULL);
    JCHECK(j, c >= 0, "accept");
    static uint8_t buf[65536];
    uint64_t got = 0;
    for (;;) {
        fs_ssize_t n = fs_recv(c, buf, sizeof buf, 0);
        JCHECK(j, n >= 0, "recv at %llu", (unsigned long long)got);
        if (n == 0)
            break;
        long bad = pat_check(buf, 9, got, (size_t)n);
        JCHECK(j, bad < 0, "byte %llu differs", (unsigned long long)(got + (uint64_t)bad));
        got += (uint64_t)n;
    }
    j->bytes = got;
    fs_close(c);
    fs_close(l);
    return 0;
}

static int big_source(job_t *j)
{
    job_t *srv = j->arg;
    JCHECK(j, job_wait_stage(srv, 1, 5000 * MS), "server");
    int fd = connect_to(j->param[0], (uint16_t)atomic_load(&srv->port));
    JCHECK(j, fd >= 0, "connect");
    static uint8_t buf[65536];
    uint64_t sent = 0;
    uint64_t t0 = mk_time_ns();
    while (sent < BIG) {
        pat_fill(buf, 9, sent, sizeof buf);
        JCHECK(j, send_all(fd, buf, sizeof buf) == 0, "send at %llu", (unsigned long long)sent);
        sent += sizeof buf;
    }
    JCHECK(j, fs_close(fd) == 0, "close");
    j->bytes = sent;
    j->param[1] = (long)(mk_time_ns() - t0);
    return 0;
}

static void big_transfer(bool v6)
{
    netsrv_start(NULL);
    jobs[0].param[0] = v6;
    jobs[1].param[0] = v6;
    jobs[1].arg = &jobs[0];
    uint64_t t0 = mk_time_ns();
    spawn(0, "sink", 10, big_sink);
    spawn(1, "source", 11, big_source);
    join(&jobs[1], 120000 * MS);
    join(&jobs[0], 30000 * MS);
    double s = (double)(mk_time_ns() - t0) / 1e9;
    ck_assert_uint_eq(jobs[0].bytes, BIG);
    printf("100 MiB over %s: %.2f s, %.0f MiB/s (both ends check every byte)\n",
           v6 ? "::1" : "127.0.0.1", s, 100.0 / s);
    netsrv_sock_stats_t t = sock_totals();
    ck_assert_uint_eq(t.pending_bytes, 0);
    netsrv_stop();
}

START_TEST(test_100mib_ipv4)
{
    big_transfer(false);
}
END_TEST

START_TEST(test_100mib_ipv6)
{
    big_transfer(true);
}
END_TEST

static Suite *load_suite(void)
{
    Suite *s = suite_create("sock_load");
    TCase *tc = tcase_create("load");
    tcase_set_timeout(tc, 240);
    if (sock_test_selected("thousand"))
        tcase_add_test(tc, test_thousand_connections);
    if (sock_test_selected("big4"))
        tcase_add_test(tc, test_100mib_ipv4);
    if (sock_test_selected("big6"))
        tcase_add_test(tc, test_100mib_ipv6);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return sock_run_suite(load_suite());
}

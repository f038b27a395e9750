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
    job_t *s = &jobs[0], *c = &jobs[1];
    s->param[0] = v6; /* before the job runs */
    c->arg = s;
    c->param[0] = v6;
    spawn(0, "server", 10, echo_server);
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

/* ---- UDP ------------------------------------------------------------------------------------ */

#define UDP_COUNT 200

/* Echo datagrams back to their source until one of 1 byte "q". */
static int udp_echo_server(job_t *j)
{
    bool v6 = j->param[0];
    int fd = fs_socket(v6 ? FS_AF_INET6 : FS_AF_INET, FS_SOCK_DGRAM, 0);
    JCHECK(j, fd >= 0, "socket");
    addr_t a;
    fs_socklen_t len = loop_addr(v6, 0, &a);
    JCHECK(j, fs_bind(fd, &a.sa, len) == 0, "bind");
    len = sizeof a;
    JCHECK(j, fs_getsockname(fd, &a.sa, &len) == 0 && addr_port(&a) != 0, "getsockname");
    atomic_store(&j->port, addr_port(&a));
    atomic_store(&j->stage, 1);
    static uint8_t buf[65536];
    for (;;) {
        addr_t from;
        fs_socklen_t fl = sizeof from;
        fs_ssize_t n = fs_recvfrom(fd, buf, sizeof buf, 0, &from.sa, &fl);
        JCHECK(j, n >= 0, "recvfrom");
        JCHECK(j, from.sa.sa_family == (v6 ? FS_AF_INET6 : FS_AF_INET), "source family");
        if (n == 1 && buf[0] == 'q')
            break;
        JCHECK(j, fs_sendto(fd, buf, (size_t)n, 0, &from.sa, fl) == n, "sendto");
        j->bytes += (uint64_t)n;
    }
    JCHECK(j, job_stats(j), "stats");
    return fs_close(fd) == 0 ? 0 : jfail(j, "close");
}

static int udp_client(job_t *j)
{
    job_t *srv = j->arg;
    bool v6 = j->param[0];
    JCHECK(j, job_wait_stage(srv, 1, 5000 * MS), "server not bound");
    int fd = fs_socket(v6 ? FS_AF_INET6 : FS_AF_INET, FS_SOCK_DGRAM, 0);
    JCHECK(j, fd >= 0, "socket");
    char c = 'x';
    JCHECK(j, fs_send(fd, &c, 1, 0) < 0 && errno == EDESTADDRREQ, "send without a peer");
    addr_t to;
    fs_socklen_t tl = loop_addr(v6, (uint16_t)atomic_load(&srv->port), &to);
    static uint8_t out[60000], in[60000];
    /* Datagrams of many sizes, one at a time, each echoed whole. */
    for (uint32_t i = 0; i < UDP_COUNT; i++) {
        atomic_store(&j->stage, (int)i + 1); /* progress, for failure messages */
        size_t n = i == 0 ? 0 : (i * 7919u) % 60000u;
        pat_fill(out, i, 0, n);
        JCHECK(j, fs_sendto(fd, out, n, 0, &to.sa, tl) == (fs_ssize_t)n, "sendto %u", i);
        addr_t from;
        fs_socklen_t fl = sizeof from;
        fs_ssize_t got = fs_recvfrom(fd, in, sizeof in, 0, &from.sa, &fl);
        JCHECK(j, got == (fs_ssize_t)n, "datagram %u: %ld bytes, not %zu", i, (long)got, n);
        JCHECK(j, pat_check(in, i, 0, n) < 0, "datagram %u differs", i);
        JCHECK(j, addr_port(&from) == atomic_load(&srv->port), "source port");
    }
    /* Connected: send/recv without addresses. */
    JCHECK(j, fs_connect(fd, &to.sa, tl) == 0, "connect");
    addr_t peer;
    fs_socklen_t pl = sizeof peer;
    JCHECK(j, fs_getpeername(fd, &peer.sa, &pl) == 0 && addr_port(&peer) == addr_port(&to), "peer");
    JCHECK(j, fs_send(fd, "hello", 5, 0) == 5, "send connected");
    JCHECK(j, fs_recv(fd, in, sizeof in, 0) == 5 && memcmp(in, "hello", 5) == 0, "recv connected");
    /* Too big for a record in the ring. */
    JCHECK(j, fs_send(fd, out, 65536, 0) < 0 && errno == EMSGSIZE, "EMSGSIZE");
    JCHECK(j, fs_send(fd, "q", 1, 0) == 1, "quit");
    return fs_close(fd) == 0 ? 0 : jfail(j, "close");
}

static void udp_echo(bool v6)
{
    netsrv_start(NULL);
    job_t *s = &jobs[0];
    s->param[0] = v6; /* before the job runs */
    jobs[1].arg = s;
    jobs[1].param[0] = v6;
    spawn(0, "server", 10, udp_echo_server);
    spawn(1, "client", 11, udp_client);
    join(&jobs[1], 20000 * MS);
    join(s, 5000 * MS);
    /* The server's counters just before it closed: every datagram in and
     * out (the quit datagram is not echoed), none dropped. */
    ck_assert_uint_eq(s->st.rx_packets, UDP_COUNT + 2);
    ck_assert_uint_eq(s->st.tx_packets, UDP_COUNT + 1);
    ck_assert_uint_eq(s->st.drops, 0);
    ck_assert_uint_eq(s->st.sockets, 1);
    netsrv_stop();
}

START_TEST(test_udp_ipv4)
{
    udp_echo(false);
}
END_TEST

START_TEST(test_udp_ipv6)
{
    udp_echo(true);
}
END_TEST

/* A receiver that does not read: datagrams beyond its ring are dropped and
 * counted; those in the ring are whole. */
static int udp_sink(job_t *j)
{
    JCHECK(j, fs_session_configure("netsrv", 4, 16384) == 0, "configure");
    int fd = fs_socket(FS_AF_INET, FS_SOCK_DGRAM, 0);
    addr_t a;
    fs_socklen_t len = loop_addr(false, 0, &a);
    JCHECK(j, fd >= 0 && fs_bind(fd, &a.sa, len) == 0, "bind");
    len = sizeof a;
    JCHECK(j, fs_getsockname(fd, &a.sa, &len) == 0, "getsockname");
    atomic_store(&j->port, addr_port(&a));
    atomic_store(&j->stage, 1);
    JCHECK(j, job_wait_stage(j->arg, 1, 10000 * MS), "sender did not finish");
    static uint8_t buf[2048];
    int got = 0;
    for (;;) {
        fs_ssize_t n = fs_recv(fd, buf, sizeof buf, FS_MSG_DONTWAIT);
        if (n < 0) {
            JCHECK(j, errno == EAGAIN, "recv");
            break;
        }
        JCHECK(j, n == 1000 && buf[0] == buf[999], "a torn datagram (%ld bytes)", (long)n);
        got++;
    }
    j->bytes = (uint64_t)got;
    JCHECK(j, job_stats(j), "stats");
    return 0;
}

static int udp_flood(job_t *j)
{
    job_t *sink = j->arg;
    JCHECK(j, job_wait_stage(sink, 1, 5000 * MS), "sink");
    int fd = fs_socket(FS_AF_INET, FS_SOCK_DGRAM, 0);
    addr_t to;
    fs_socklen_t tl = loop_addr(false, (uint16_t)atomic_load(&sink->port), &to);
    uint8_t buf[1000];
    for (int i = 0; i < 100; i++) {
        memset(buf, i, sizeof buf);
        JCHECK(j, fs_sendto(fd, buf, sizeof buf, 0, &to.sa, tl) == 1000, "sendto");
    }
    /* Every datagram has left the TX ring once netsrv answered this. */
    addr_t me;
    fs_socklen_t ml = sizeof me;
    JCHECK(j, fs_getsockname(fd, &me.sa, &ml) == 0, "getsockname");
    mk_sleep_ns(50 * MS);
    atomic_store(&j->stage, 1);
    return fs_close(fd);
}

START_TEST(test_udp_drops_when_full)
{
    netsrv_start(NULL);
    jobs[0].arg = &jobs[1];
    jobs[1].arg = &jobs[0];
    spawn(0, "sink", 10, udp_sink);
    spawn(1, "flood", 11, udp_flood);
    join(&jobs[1], 10000 * MS);
    join(&jobs[0], 10000 * MS);
    /* 16 KiB ring, 1024-byte records: 16 fit, the rest were dropped. */
    ck_assert_uint_eq(jobs[0].bytes, 16);
    ck_assert_uint_eq(jobs[0].st.rx_packets, 16);
    ck_assert_uint_eq(jobs[0].st.drops, 84);
    netsrv_stop();
}
END_TEST

/* ---- Non-blocking sockets and poll ------------------------------------------------------ */

#define POLL_CONNS 40

/* One poll loop: a non-blocking listener and every client; echo. */
static int poll_server(job_t *j)
{
    uint16_t port;
    int l = listen_on(false, 0, 64, &port);
    JCHECK(j, l >= 0 && fs_fcntl(l, FS_F_SETFL, FS_O_NONBLOCK) == 0, "listen");
    JCHECK(j, fs_accept(l, NULL, NULL) < 0 && errno == EAGAIN, "EAGAIN from accept");
    atomic_store(&j->port, port);
    atomic_store(&j->stage, 1);
    struct fs_pollfd pfd[POLL_CONNS + 1];
    int nconn = 0, closed = 0;
    pfd[0] = (struct fs_pollfd){.fd = l, .events = FS_POLLIN};
    uint64_t end = mk_time_ns() + 20000 * MS;
    while (closed < POLL_CONNS && mk_time_ns() < end) {
        int r = fs_poll(pfd, (unsigned long)nconn + 1, 1000);
        JCHECK(j, r >= 0, "poll");
        if (pfd[0].revents & FS_POLLIN) {
            int c;
            while ((c = fs_accept(l, NULL, NULL)) >= 0) {
                JCHECK(j, nconn < POLL_CONNS, "too many connections");
                fs_fcntl(c, FS_F_SETFL, FS_O_NONBLOCK);
                pfd[++nconn] = (struct fs_pollfd){.fd = c, .events = FS_POLLIN | FS_POLLRDHUP};
            }
            JCHECK(j, errno == EAGAIN, "accept");
        }
        for (int i = 1; i <= nconn; i++) {
            if (pfd[i].fd < 0 || pfd[i].revents == 0)
                continue;
            char buf[256];
            fs_ssize_t n = fs_recv(pfd[i].fd, buf, sizeof buf, 0);
            if (n > 0) {
                JCHECK(j, fs_send(pfd[i].fd, buf, (size_t)n, 0) == n, "send");
                continue;
            }
            JCHECK(j, n == 0 || errno == EAGAIN, "recv");
            if (n == 0) {
                JCHECK(j, pfd[i].revents & FS_POLLRDHUP, "EOF without POLLRDHUP");
                fs_close(pfd[i].fd);
                pfd[i].fd = -1;
                closed++;
            }
        }
    }
    JCHECK(j, closed == POLL_CONNS, "%d of %d connections closed", closed, POLL_CONNS);
    return fs_close(l);
}

static int poll_client(job_t *j)
{
    job_t *srv = j->arg;
    JCHECK(j, job_wait_stage(srv, 1, 5000 * MS), "server");
    struct fs_pollfd pfd[POLL_CONNS];
    addr_t a;
    fs_socklen_t len = loop_addr(false, (uint16_t)atomic_load(&srv->port), &a);
    for (int i = 0; i < POLL_CONNS; i++) {
        int fd = fs_socket(FS_AF_INET, FS_SOCK_STREAM | FS_SOCK_NONBLOCK, 0);
        JCHECK(j, fd >= 0, "socket");
        char c;
        JCHECK(j, fs_recv(fd, &c, 1, 0) < 0 && errno == ENOTCONN, "ENOTCONN before connect");
        JCHECK(j, fs_connect(fd, &a.sa, len) < 0 && errno == EINPROGRESS, "EINPROGRESS");
        JCHECK(j, fs_connect(fd, &a.sa, len) < 0 && (errno == EALREADY || errno == EISCONN),
               "EALREADY");
        pfd[i] = (struct fs_pollfd){.fd = fd, .events = FS_POLLOUT};
    }
    /* Wait until every one is writable (connected). */
    int writable = 0;
    uint64_t end = mk_time_ns() + 10000 * MS;
    while (writable < POLL_CONNS && mk_time_ns() < end) {
        JCHECK(j, fs_poll(pfd, POLL_CONNS, 1000) >= 0, "poll");
        for (int i = 0; i < POLL_CONNS; i++)
            if (pfd[i].events && (pfd[i].revents & FS_POLLOUT)) {
                int err = -1;
                fs_socklen_t el = sizeof err;
                JCHECK(j, fs_getsockopt(pfd[i].fd, FS_SOL_SOCKET, FS_SO_ERROR, &err, &el) == 0 &&
                              err == 0,
                       "SO_ERROR %d", err);
                pfd[i].events = 0;
                writable++;
            }
    }
    JCHECK(j, writable == POLL_CONNS, "%d of %d connected", writable, POLL_CONNS);
    for (int i = 0; i < POLL_CONNS; i++) {
        char msg[32];
        int n = snprintf(msg, sizeof msg, "message %d", i);
        JCHECK(j, fs_send(pfd[i].fd, msg, (size_t)n, 0) == n, "send");
        pfd[i].events = FS_POLLIN;
    }
    int answered = 0;
    end = mk_time_ns() + 10000 * MS;
    while (answered < POLL_CONNS && mk_time_ns() < end) {
        JCHECK(j, fs_poll(pfd, POLL_CONNS, 1000) >= 0, "poll");
        for (int i = 0; i < POLL_CONNS; i++) {
            if (!(pfd[i].events && (pfd[i].revents & FS_POLLIN)))
                continue;
            char msg[32], got[32];
            int n = snprintf(msg, sizeof msg, "message %d", i);
            JCHECK(j, fs_recv(pfd[i].fd, got, sizeof got, 0) == n && memcmp(got, msg, (size_t)n) == 0,
                   "answer %d", i);
            pfd[i].events = 0;
            answered++;
        }
    }
    JCHECK(j, answered == POLL_CONNS, "%d of %d answered", answered, POLL_CONNS);
    for (int i = 0; i < POLL_CONNS; i++)
        JCHECK(j, fs_close(pfd[i].fd) == 0, "close");
    return 0;
}

/* A client blocked in accept() holds nobody up. */
static int blocked_acceptor(job_t *j)
{
    uint16_t port;
    int l = listen_on(false, 0, 1, &port);
    JCHECK(j, l >= 0, "listen");
    atomic_store(&j->stage, 1);
    fs_accept(l, NULL, NULL); /* never returns: nobody connects */
    return jfail(j, "accept returned");
}

START_TEST(test_nonblocking_poll)
{
    netsrv_start(NULL);
    spawn(2, "blocked", 12, blocked_acceptor);
    wait_stage(&jobs[2], 1, 5000 * MS);
    spawn(0, "server", 10, poll_server);
    jobs[1].arg = &jobs[0];
    spawn(1, "client", 11, poll_client);
    join(&jobs[1], 30000 * MS);
    join(&jobs[0], 30000 * MS);
    ck_assert(!atomic_load(&jobs[2].done));
    netsrv_stop();
}
END_TEST

/* ---- errno ------------------------------------------------------------------------------ */

static int errno_cases(job_t *j)
{
    addr_t a;
    fs_socklen_t len;
    char c = 0;
    /* Families, types. */
    JCHECK(j, fs_socket(99, FS_SOCK_STREAM, 0) < 0 && errno == EAFNOSUPPORT, "EAFNOSUPPORT");
    JCHECK(j, fs_socket(FS_AF_INET, FS_SOCK_STREAM, 17) < 0 && errno == EPROTONOSUPPORT,
           "EPROTONOSUPPORT");
    JCHECK(j, fs_send(63, &c, 1, 0) < 0 && errno == EBADF, "EBADF");
    /* ECONNREFUSED on a closed port, blocking and not. */
    int fd = connect_to(false, 9);
    JCHECK(j, fd < 0 && errno == ECONNREFUSED, "ECONNREFUSED (blocking)");
    fd = connect_to(true, 9);
    JCHECK(j, fd < 0 && errno == ECONNREFUSED, "ECONNREFUSED (IPv6)");
    fd = fs_socket(FS_AF_INET, FS_SOCK_STREAM | FS_SOCK_NONBLOCK, 0);
    len = loop_addr(false, 9, &a);
    JCHECK(j, fs_connect(fd, &a.sa, len) < 0 && errno == EINPROGRESS, "EINPROGRESS");
    struct fs_pollfd p = {.fd = fd, .events = FS_POLLOUT};
    JCHECK(j, fs_poll(&p, 1, 5000) == 1 && (p.revents & FS_POLLERR), "POLLERR");
    int err = 0;
    fs_socklen_t el = sizeof err;
    JCHECK(j, fs_getsockopt(fd, FS_SOL_SOCKET, FS_SO_ERROR, &err, &el) == 0 && err == ECONNREFUSED,
           "SO_ERROR %d", err);
    JCHECK(j, fs_getsockopt(fd, FS_SOL_SOCKET, FS_SO_ERROR, &err, &el) == 0 && err == 0,
           "SO_ERROR cleared");
    /* A failed socket may try again (as on Linux). */
    uint16_t port;
    int l = listen_on(false, 0, 4, &port);
    JCHECK(j, l >= 0, "listen");
    fs_fcntl(fd, FS_F_SETFL, 0);
    len = loop_addr(false, port, &a);
    JCHECK(j, fs_connect(fd, &a.sa, len) == 0, "connect again");
    JCHECK(j, fs_connect(fd, &a.sa, len) < 0 && errno == EISCONN, "EISCONN");
    /* EADDRINUSE: bind, and listen with SO_REUSEADDR on both. */
    int b = fs_socket(FS_AF_INET, FS_SOCK_STREAM, 0);
    JCHECK(j, fs_bind(b, &a.sa, len) < 0 && errno == EADDRINUSE, "EADDRINUSE (bind)");
    JCHECK(j, fs_bind(b, &a.sa, len) < 0 && errno == EADDRINUSE, "EADDRINUSE (again)");
    fs_close(b);
    /* EAGAIN: nothing to accept, nothing to read. */
    int s = fs_accept(l, NULL, NULL); /* the connection made above */
    JCHECK(j, s >= 0, "accept");
    fs_fcntl(l, FS_F_SETFL, FS_O_NONBLOCK);
    JCHECK(j, fs_accept(l, NULL, NULL) < 0 && errno == EAGAIN, "EAGAIN (accept)");
    JCHECK(j, fs_recv(s, &c, 1, FS_MSG_DONTWAIT) < 0 && errno == EAGAIN, "EAGAIN (recv)");
    /* EPIPE after shutdown(SHUT_WR); the peer sees EOF. */
    JCHECK(j, fs_shutdown(fd, FS_SHUT_WR) == 0, "shutdown");
    JCHECK(j, fs_send(fd, &c, 1, 0) < 0 && errno == EPIPE, "EPIPE after shutdown");
    JCHECK(j, fs_recv(s, &c, 1, 0) == 0, "EOF at the peer");
    JCHECK(j, fs_send(s, "x", 1, 0) == 1 && fs_recv(fd, &c, 1, 0) == 1, "half-closed still reads");
    fs_close(s);
    JCHECK(j, fs_recv(fd, &c, 1, 0) == 0, "EOF");
    fs_close(fd);
    /* EPIPE after the peer closed: the first send may pass, then RST. */
    fd = connect_to(false, port);
    s = -1;
    for (int i = 0; i < 1000 && s < 0; i++)
        if ((s = fs_accept(l, NULL, NULL)) < 0)
            mk_sleep_ns(MS);
    JCHECK(j, fd >= 0 && s >= 0, "connect/accept");
    JCHECK(j, fs_close(s) == 0, "peer close");
    JCHECK(j, fs_recv(fd, &c, 1, 0) == 0, "EOF from the closed peer");
    int e = 0;
    for (int i = 0; i < 100 && e == 0; i++) {
        if (fs_send(fd, "data", 4, 0) < 0)
            e = errno;
        else
            mk_sleep_ns(5 * MS);
    }
    JCHECK(j, e == EPIPE || e == ECONNRESET, "send to a closed peer: errno %d", e);
    if (e == ECONNRESET)
        JCHECK(j, fs_send(fd, "data", 4, 0) < 0 && errno == EPIPE, "EPIPE after the reset");
    fs_close(fd);
    /* ECONNRESET: the peer closes with SO_LINGER 0. */
    fd = connect_to(false, port);
    s = -1;
    for (int i = 0; i < 1000 && s < 0; i++)
        if ((s = fs_accept(l, NULL, NULL)) < 0)
            mk_sleep_ns(MS);
    struct fs_linger lg = {1, 0};
    JCHECK(j, fs_setsockopt(s, FS_SOL_SOCKET, FS_SO_LINGER, &lg, sizeof lg) == 0, "SO_LINGER");
    JCHECK(j, fs_close(s) == 0, "abortive close");
    JCHECK(j, fs_recv(fd, &c, 1, 0) < 0 && errno == ECONNRESET, "ECONNRESET");
    fs_close(fd);
    /* ENOTCONN. */
    fd = fs_socket(FS_AF_INET, FS_SOCK_STREAM, 0);
    len = sizeof a;
    JCHECK(j, fs_getpeername(fd, &a.sa, &len) < 0 && errno == ENOTCONN, "ENOTCONN (getpeername)");
    JCHECK(j, fs_shutdown(fd, FS_SHUT_RDWR) < 0 && errno == ENOTCONN, "ENOTCONN (shutdown)");
    JCHECK(j, fs_send(fd, &c, 1, 0) < 0 && errno == ENOTCONN, "ENOTCONN (send)");
    JCHECK(j, fs_accept(fd, NULL, NULL) < 0 && errno == EINVAL, "EINVAL (accept, not listening)");
    fs_close(fd);
    fs_close(l);
    return 0;
}

START_TEST(test_errno)
{
    netsrv_start(NULL);
    spawn(0, "errno", 10, errno_cases);
    join(&jobs[0], 30000 * MS);
    netsrv_stop();
}
END_TEST

/* EMFILE: the session's own limit, then netsrv's per-client limit. */
static int emfile(job_t *j)
{
    JCHECK(j, fs_session_configure("netsrv", 4, 4096) == 0, "configure");
    int fds[4];
    for (int i = 0; i < 4; i++)
        JCHECK(j, (fds[i] = fs_socket(FS_AF_INET, FS_SOCK_DGRAM, 0)) >= 0, "socket %d", i);
    JCHECK(j, fs_socket(FS_AF_INET, FS_SOCK_DGRAM, 0) < 0 && errno == EMFILE, "EMFILE (session)");
    JCHECK(j, fs_close(fds[2]) == 0, "close");
    JCHECK(j, fs_socket(FS_AF_INET, FS_SOCK_STREAM, 0) == 2, "the freed slot again");
    JCHECK(j, fs_session_configure("netsrv", 8, 4096) < 0 && errno == EINVAL, "configure late");
    return 0;
}

static int emfile_client(job_t *j)
{
    int n = 0;
    while (fs_socket(FS_AF_INET, FS_SOCK_STREAM, 0) >= 0)
        n++;
    JCHECK(j, errno == EMFILE && n == 5, "EMFILE after %d sockets", n);
    JCHECK(j, job_stats(j), "stats");
    return 0;
}

START_TEST(test_emfile)
{
    const char *args[] = {"--client-sockets", "5", NULL};
    netsrv_start(args);
    spawn(0, "session", 10, emfile);
    join(&jobs[0], 10000 * MS);
    spawn(1, "client", 11, emfile_client);
    join(&jobs[1], 10000 * MS);
    ck_assert_uint_eq(jobs[1].st.sockets, 5);
    ck_assert_uint_eq(jobs[1].st.sockets_max, 5);
    netsrv_stop();
}
END_TEST

/* ---- Options -------------------------------------------------------------------------------- */

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

static int options(job_t *j)
{
    JCHECK(j, fs_session_configure("netsrv", 16, 8192) == 0, "configure");
    int fd = fs_socket(FS_AF_INET6, FS_SOCK_STREAM, 0);
    JCHECK(j, getint(fd, FS_SOL_SOCKET, FS_SO_RCVBUF) == 8192, "SO_RCVBUF = the ring");
    JCHECK(j, setint(fd, FS_SOL_SOCKET, FS_SO_RCVBUF, 1 << 20) == 0 &&
                  getint(fd, FS_SOL_SOCKET, FS_SO_RCVBUF) == 8192,
           "SO_RCVBUF clamped to the ring");
    JCHECK(j, setint(fd, FS_SOL_SOCKET, FS_SO_SNDBUF, 1000) == 0 &&
                  getint(fd, FS_SOL_SOCKET, FS_SO_SNDBUF) == 1000,
           "SO_SNDBUF");
    JCHECK(j, setint(fd, FS_SOL_SOCKET, FS_SO_SNDBUF, -1) < 0 && errno == EINVAL, "EINVAL");
    JCHECK(j, getint(fd, FS_IPPROTO_TCP, FS_TCP_NODELAY) == 0 &&
                  setint(fd, FS_IPPROTO_TCP, FS_TCP_NODELAY, 1) == 0 &&
                  getint(fd, FS_IPPROTO_TCP, FS_TCP_NODELAY) == 1,
           "TCP_NODELAY");
    JCHECK(j, setint(fd, FS_SOL_SOCKET, FS_SO_KEEPALIVE, 1) == 0 &&
                  getint(fd, FS_SOL_SOCKET, FS_SO_KEEPALIVE) == 1,
           "SO_KEEPALIVE");
    JCHECK(j, setint(fd, FS_SOL_SOCKET, 12345, 1) < 0 && errno == ENOPROTOOPT, "ENOPROTOOPT");
    struct fs_linger lg = {1, 7}, got = {0, 0};
    fs_socklen_t len = sizeof got;
    JCHECK(j, fs_setsockopt(fd, FS_SOL_SOCKET, FS_SO_LINGER, &lg, sizeof lg) == 0 &&
                  fs_getsockopt(fd, FS_SOL_SOCKET, FS_SO_LINGER, &got, &len) == 0 &&
                  got.l_onoff == 1 && got.l_linger == 7,
           "SO_LINGER");
    /* Dual stack: an IPv6 listener (V6ONLY off) takes IPv4 connections and
     * names their peers ::ffff:127.0.0.1. */
    JCHECK(j, getint(fd, FS_IPPROTO_IPV6, FS_IPV6_V6ONLY) == 0, "V6ONLY off by default");
    addr_t a;
    fs_socklen_t alen = any_addr(true, 0, &a);
    JCHECK(j, fs_bind(fd, &a.sa, alen) == 0 && fs_listen(fd, 4) == 0, "listen on ::");
    JCHECK(j, setint(fd, FS_IPPROTO_IPV6, FS_IPV6_V6ONLY, 1) < 0 && errno == EINVAL,
           "V6ONLY after bind");
    alen = sizeof a;
    JCHECK(j, fs_getsockname(fd, &a.sa, &alen) == 0, "getsockname");
    uint16_t port = addr_port(&a);
    int c4 = connect_to(false, port);
    JCHECK(j, c4 >= 0, "IPv4 connect to a dual-stack listener");
    alen = sizeof a;
    int s = fs_accept(fd, &a.sa, &alen);
    JCHECK(j, s >= 0 && a.sa.sa_family == FS_AF_INET6, "accept");
    static const uint8_t mapped[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 127, 0, 0, 1};
    JCHECK(j, memcmp(a.in6.sin6_addr.s6_addr, mapped, 16) == 0, "peer ::ffff:127.0.0.1");
    JCHECK(j, getint(s, FS_IPPROTO_TCP, FS_TCP_NODELAY) == 1, "TCP_NODELAY inherited");
    fs_close(s);
    fs_close(c4);
    fs_close(fd);
    /* V6ONLY on: IPv4 is refused. */
    fd = fs_socket(FS_AF_INET6, FS_SOCK_STREAM, 0);
    JCHECK(j, setint(fd, FS_IPPROTO_IPV6, FS_IPV6_V6ONLY, 1) == 0, "V6ONLY");
    alen = any_addr(true, 0, &a);
    JCHECK(j, fs_bind(fd, &a.sa, alen) == 0 && fs_listen(fd, 4) == 0, "listen v6only");
    alen = sizeof a;
    fs_getsockname(fd, &a.sa, &alen);
    JCHECK(j, connect_to(false, addr_port(&a)) < 0 && errno == ECONNREFUSED, "v4 refused");
    int c6 = connect_to(true, addr_port(&a));
    JCHECK(j, c6 >= 0, "v6 accepted");
    fs_close(c6);
    fs_close(fd);
    /* SO_REUSEADDR: the server closes first (TIME-WAIT on its side); a new
     * listener needs SO_REUSEADDR to bind the port again. */
    int l = listen_on(false, 0, 4, &port);
    int c = connect_to(false, port);
    s = fs_accept(l, NULL, NULL);
    JCHECK(j, l >= 0 && c >= 0 && s >= 0, "connection");
    fs_close(s);
    char ch;
    JCHECK(j, fs_recv(c, &ch, 1, 0) == 0, "EOF");
    fs_close(c);
    fs_close(l);
    mk_sleep_ns(20 * MS); /* the last ACK of the close */
    int l2 = fs_socket(FS_AF_INET, FS_SOCK_STREAM, 0);
    alen = loop_addr(false, port, &a);
    JCHECK(j, fs_bind(l2, &a.sa, alen) < 0 && errno == EADDRINUSE, "TIME-WAIT holds the port");
    JCHECK(j, setint(l2, FS_SOL_SOCKET, FS_SO_REUSEADDR, 1) == 0 &&
                  getint(l2, FS_SOL_SOCKET, FS_SO_REUSEADDR) == 1,
           "SO_REUSEADDR");
    JCHECK(j, fs_bind(l2, &a.sa, alen) == 0 && fs_listen(l2, 4) == 0, "rebind with SO_REUSEADDR");
    int l3 = fs_socket(FS_AF_INET, FS_SOCK_STREAM, 0);
    setint(l3, FS_SOL_SOCKET, FS_SO_REUSEADDR, 1);
    JCHECK(j, fs_bind(l3, &a.sa, alen) == 0, "a second bind with SO_REUSEADDR");
    JCHECK(j, fs_listen(l3, 4) < 0 && errno == EADDRINUSE, "but not a second listener");
    fs_close(l3);
    fs_close(l2);
    return 0;
}

START_TEST(test_options)
{
    netsrv_start(NULL);
    spawn(0, "options", 10, options);
    join(&jobs[0], 20000 * MS);
    netsrv_stop();
}
END_TEST

/* ---- Flow control, linger ----------------------------------------------------------------- */

/* The reader stops: the writer runs into EAGAIN after a bounded amount
 * (rings plus TCP's window), netsrv holds bounded memory; then the reader
 * drains everything. */
static int slow_reader(job_t *j)
{
    JCHECK(j, fs_session_configure("netsrv", 4, 16384) == 0, "configure");
    uint16_t port;
    int l = listen_on(false, 0, 1, &port);
    atomic_store(&j->port, port);
    atomic_store(&j->stage, 1);
    int c = fs_accept(l, NULL, NULL);
    JCHECK(j, c >= 0, "accept");
    JCHECK(j, job_wait_stage(j->arg, 1, 10000 * MS), "writer did not stall");
    atomic_store(&j->stage, 2); /* now read */
    static uint8_t buf[8192];
    uint64_t got = 0;
    for (;;) {
        fs_ssize_t n = fs_recv(c, buf, sizeof buf, 0);
        JCHECK(j, n >= 0, "recv");
        if (n == 0)
            break;
        JCHECK(j, pat_check(buf, 3, got, (size_t)n) < 0, "data at %llu", (unsigned long long)got);
        got += (uint64_t)n;
    }
    j->bytes = got;
    fs_close(c);
    fs_close(l);
    return 0;
}

static int fast_writer(job_t *j)
{
    job_t *r = j->arg;
    JCHECK(j, fs_session_configure("netsrv", 4, 16384) == 0, "configure");
    JCHECK(j, job_wait_stage(r, 1, 5000 * MS), "reader");
    int fd = connect_to(false, (uint16_t)atomic_load(&r->port));
    JCHECK(j, fd >= 0, "connect");
    static uint8_t buf[4096];
    uint64_t sent = 0;
    int idle = 0;
    while (idle < 100) { /* 100 ms without progress: stalled */
        pat_fill(buf, 3, sent, sizeof buf);
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
    j->param[1] = (long)sent; /* what went before the stall */
    JCHECK(j, sent < 256 * 1024, "no back-pressure: %llu bytes accepted", (unsigned long long)sent);
    atomic_store(&j->stage, 1);
    JCHECK(j, job_wait_stage(r, 2, 5000 * MS), "reader");
    for (int i = 0; i < 256; i++) { /* 1 MiB more, blocking */
        pat_fill(buf, 3, sent, sizeof buf);
        JCHECK(j, send_all(fd, buf, sizeof buf) == 0, "send");
        sent += sizeof buf;
    }
    j->bytes = sent;
    return fs_close(fd);
}

START_TEST(test_flow_control)
{
    netsrv_start(NULL);
    jobs[0].arg = &jobs[1];
    jobs[1].arg = &jobs[0];
    spawn(0, "reader", 10, slow_reader);
    spawn(1, "writer", 11, fast_writer);
    wait_stage(&jobs[1], 1, 10000 * MS);
    /* Stalled: what netsrv holds for the reader is bounded by TCP's window. */
    netsrv_client_stats_t st;
    ck_assert(client_stats(10, &st));
    netsrv_sock_stats_t t = sock_totals();
    ck_assert_uint_le(t.pending_bytes, 64 * 1024);
    join(&jobs[1], 20000 * MS);
    join(&jobs[0], 20000 * MS);
    ck_assert_uint_eq(jobs[0].bytes, jobs[1].bytes);
    ck_assert_uint_eq(sock_totals().pending_bytes, 0);
    netsrv_stop();
}
END_TEST

/* SO_LINGER > 0: close() returns once the data is acknowledged; the peer
 * reads all of it. */
static int linger_sender(job_t *j)
{
    job_t *r = j->arg;
    JCHECK(j, job_wait_stage(r, 1, 5000 * MS), "reader");
    int fd = connect_to(false, (uint16_t)atomic_load(&r->port));
    JCHECK(j, fd >= 0, "connect");
    struct fs_linger lg = {1, 5};
    JCHECK(j, fs_setsockopt(fd, FS_SOL_SOCKET, FS_SO_LINGER, &lg, sizeof lg) == 0, "SO_LINGER");
    static uint8_t buf[60000];
    pat_fill(buf, 3, 0, sizeof buf);
    JCHECK(j, send_all(fd, buf, sizeof buf) == 0, "send");
    JCHECK(j, fs_close(fd) == 0, "close");
    j->bytes = sizeof buf;
    return 0;
}

START_TEST(test_linger)
{
    netsrv_start(NULL);
    jobs[0].arg = &jobs[1];
    jobs[1].arg = &jobs[0];
    jobs[1].stage = 1; /* the reader reads at once */
    spawn(0, "reader", 10, slow_reader);
    spawn(1, "sender", 11, linger_sender);
    join(&jobs[1], 10000 * MS);
    join(&jobs[0], 10000 * MS);
    ck_assert_uint_eq(jobs[0].bytes, 60000);
    netsrv_stop();
}
END_TEST

/* ---- A client killed mid-transfer --------------------------------------------------------- */

/* Receive and check until EOF or reset; param[0]: stream key. */
static int sink_server(job_t *j)
{
    uint16_t port;
    int l = listen_on(false, 0, 1, &port);
    JCHECK(j, l >= 0, "listen");
    atomic_store(&j->port, port);
    atomic_store(&j->stage, 1);
    int c = fs_accept(l, NULL, NULL);
    JCHECK(j, c >= 0, "accept");
    static _Thread_local uint8_t buf[65536];
    uint64_t got = 0;
    for (;;) {
        fs_ssize_t n = fs_recv(c, buf, sizeof buf, 0);
        if (n < 0) {
            JCHECK(j, errno == ECONNRESET, "recv");
            j->param[2] = 1; /* reset */
            break;
        }
        if (n == 0)
            break;
        JCHECK(j, pat_check(buf, (uint32_t)j->param[0], got, (size_t)n) < 0, "data at %llu",
               (unsigned long long)got);
        got += (uint64_t)n;
        if (got > (1u << 20))
            atomic_store(&j->stage, 2);
    }
    j->bytes = got;
    fs_close(c);
    fs_close(l);
    atomic_store(&j->stage, 3);
    job_hold(j); /* stay alive until the test has looked */
    return 0;
}

/* Send param[1] bytes (0: for ever) of stream param[0]. */
static int source_client(job_t *j)
{
    job_t *srv = j->arg;
    JCHECK(j, job_wait_stage(srv, 1, 5000 * MS), "server");
    int fd = connect_to(false, (uint16_t)atomic_load(&srv->port));
    JCHECK(j, fd >= 0, "connect");
    static _Thread_local uint8_t buf[32768];
    uint64_t sent = 0, total = (uint64_t)j->param[1];
    while (total == 0 || sent < total) {
        size_t n = sizeof buf;
        if (total != 0 && total - sent < n)
            n = (size_t)(total - sent);
        pat_fill(buf, (uint32_t)j->param[0], sent, n);
        JCHECK(j, send_all(fd, buf, n) == 0, "send at %llu", (unsigned long long)sent);
        sent += n;
    }
    j->bytes = sent;
    return fs_close(fd);
}

START_TEST(test_killed_client)
{
    netsrv_start(NULL);
    uint64_t pcbs0 = pool_used("TCP_PCB");
    /* Pair A: killed while sending for ever. Pair B: 16 MiB, checked. */
    jobs[0].param[0] = 1;
    jobs[1].param[0] = 1;
    jobs[1].arg = &jobs[0];
    jobs[2].param[0] = 2;
    jobs[3].param[0] = 2;
    jobs[3].param[1] = 16 << 20;
    jobs[3].arg = &jobs[2];
    spawn(0, "sinkA", 10, sink_server);
    spawn(1, "victim", 11, source_client);
    spawn(2, "sinkB", 12, sink_server);
    spawn(3, "sourceB", 13, source_client);
    wait_stage(&jobs[0], 2, 10000 * MS); /* A is mid-transfer */
    wait_stage(&jobs[2], 2, 10000 * MS); /* so is B */
    netsrv_client_stats_t st;
    ck_assert(client_stats(11, &st));
    ck_assert_uint_eq(st.sockets, 1);
    ck_assert_uint_gt(st.memory, 0);
    netsrv_sock_stats_t before = sock_totals();
    ck_assert_int_eq(mk_task_kill(jobs[1].task, 9), MK_OK);
    /* netsrv learns of the death and frees everything of the victim. */
    uint64_t end = mk_time_ns() + 5000 * MS;
    while (client_stats(11, &st) && mk_time_ns() < end)
        mk_sleep_ns(2 * MS);
    ck_assert_msg(!client_stats(11, &st), "the dead client is still known");
    netsrv_sock_stats_t after = sock_totals();
    ck_assert_uint_eq(after.client_deaths, before.client_deaths + 1);
    ck_assert_uint_eq(after.sessions_reaped, before.sessions_reaped + 1);
    ck_assert_uint_eq(after.sockets_reaped, before.sockets_reaped + 1);
    /* At most: B's source may finish and leave meanwhile (its own close). */
    ck_assert_uint_le(after.sessions, before.sessions - 1);
    ck_assert_uint_le(after.sockets, before.sockets - 1);
    /* Its peer sees the connection reset; B's transfer completes intact. */
    wait_stage(&jobs[0], 3, 5000 * MS);
    atomic_store(&jobs[0].release, 1);
    atomic_store(&jobs[2].release, 1);
    join(&jobs[0], 5000 * MS);
    ck_assert_int_eq(jobs[0].param[2], 1);
    join(&jobs[3], 30000 * MS);
    join(&jobs[2], 5000 * MS);
    ck_assert_uint_eq(jobs[2].bytes, 16u << 20);
    ck_assert_uint_eq(sock_totals().pending_bytes, 0);
    /* Every PCB of the victim's connection is gone (the others end in
     * TIME-WAIT at most: B's two, A's listener's peer closed by RST). */
    ck_assert_uint_le(pool_used("TCP_PCB"), pcbs0 + 2);
    netsrv_stop();
}
END_TEST

/* ---- Malformed requests -------------------------------------------------------------------- */

/* A raw request to netsrv: label, words (mr[0] = hash unless hash 0),
 * caps. Returns the reply label (a status), or the kernel error. */
static int32_t raw_call(mk_cap_t ep, uint32_t label, uint64_t hash, const uint64_t *args,
                        uint16_t nargs, const mk_cap_t *caps, uint16_t ncaps)
{
    mk_msg_t m = {.label = label, .words = (uint16_t)(nargs + (hash != 0)), .ncaps = ncaps};
    uint16_t w = 0;
    if (hash != 0)
        m.mr[w++] = hash;
    for (uint16_t i = 0; i < nargs; i++)
        m.mr[w++] = args[i];
    for (uint16_t i = 0; i < ncaps; i++)
        m.caps[i] = caps[i];
    mk_err_t e = mk_call(ep, &m, CALL);
    return e != MK_OK ? e : (int32_t)m.label;
}

/* A session made by hand (not through the library), so that its region
 * can be broken on purpose. */
typedef struct raw_session {
    mk_cap_t region, ntfn, sig, srv_sig;
    uint8_t *base;
    size_t size;
    sock_layout_t l;
    uint32_t number;
} raw_session_t;

static int32_t raw_open(mk_cap_t ep, raw_session_t *r, uint32_t max_sockets, uint32_t ring,
                        size_t shm_size, bool good_header)
{
    memset(r, 0, sizeof *r);
    if (sock_layout(max_sockets, ring, &r->l) != 0)
        r->l.size = 1 << 20; /* a geometry netsrv must refuse */
    void *base;
    if (mk_shm_create(shm_size ? shm_size : r->l.size, &r->region) != MK_OK ||
        mk_shm_map(r->region, MK_RIGHT_READ | MK_RIGHT_WRITE, &base, &r->size) != MK_OK ||
        mk_ntfn_create(&r->ntfn) != MK_OK ||
        mk_cap_mint(r->ntfn, MK_RIGHT_SEND | MK_RIGHT_GRANT, 1, &r->sig) != MK_OK)
        return -1;
    r->base = base;
    sock_region_hdr_t *h = base;
    h->magic = good_header ? SOCK_REGION_MAGIC : 0xbad;
    h->version = SOCK_REGION_VERSION;
    h->max_sockets = max_sockets;
    h->ring_size = ring;
    return sock_session_open(ep, CALL, r->region, r->sig, max_sockets, ring, &r->srv_sig,
                             &r->number);
}

static int hostile(job_t *j)
{
    mk_cap_t ep;
    JCHECK(j, mk_cap_lookup("netsrv", &ep) == MK_OK, "lookup");
    uint64_t a[40] = {0};
    /* IDL level: method, hash, sizes, capabilities, values. */
    JCHECK(j, raw_call(ep, 999, SOCK_HASH, NULL, 0, NULL, 0) == IDL_EMETHOD, "bad method");
    JCHECK(j, raw_call(ep, SOCK_SOCKET_ID, 0x1234, a, 4, NULL, 0) == IDL_EHASH, "bad hash");
    JCHECK(j, raw_call(ep, SOCK_SOCKET_ID, 0, NULL, 0, NULL, 0) == IDL_EHASH, "no hash");
    JCHECK(j, raw_call(ep, SOCK_SOCKET_ID, SOCK_HASH, a, 2, NULL, 0) == IDL_ESIZE, "short");
    JCHECK(j, raw_call(ep, SOCK_SOCKET_ID, SOCK_HASH, a, 30, NULL, 0) == IDL_ESIZE, "long");
    uint64_t big[4] = {1, 1ull << 40, 1, 0};
    JCHECK(j, raw_call(ep, SOCK_SOCKET_ID, SOCK_HASH, big, 4, NULL, 0) == IDL_EVALUE, "value");
    mk_cap_t n;
    JCHECK(j, mk_ntfn_create(&n) == MK_OK, "ntfn");
    mk_cap_t g;
    JCHECK(j, mk_cap_mint(n, MK_RIGHT_SEND | MK_RIGHT_GRANT, 0, &g) == MK_OK, "mint");
    JCHECK(j, raw_call(ep, SOCK_SOCKET_ID, SOCK_HASH, a, 4, &g, 1) == IDL_ECAPS, "caps");
    /* session_open: bad geometry, a region too small, not a region, a
     * bad header, no write right. */
    raw_session_t r;
    JCHECK(j, raw_open(ep, &r, 8, 100, 0, true) == SOCK_EINVAL, "ring size not a power of 2");
    JCHECK(j, raw_open(ep, &r, 8, 4096, 4096, true) == SOCK_EINVAL, "region too small");
    JCHECK(j, raw_open(ep, &r, 8, 4096, 0, false) == SOCK_EINVAL, "bad header");
    mk_cap_t caps2[2] = {g, g};
    uint64_t geo[2] = {8, 4096};
    JCHECK(j, raw_call(ep, SOCK_SESSION_OPEN_ID, SOCK_HASH, geo, 2, caps2, 2) == SOCK_EINVAL,
           "a notification as the region");
    /* A good session; then requests that name what is not ours. */
    JCHECK(j, raw_open(ep, &r, 8, 4096, 0, true) == 0, "session_open");
    uint32_t id;
    JCHECK(j, sock_socket(ep, CALL, r.number, FS_AF_INET, FS_SOCK_DGRAM, 0, &id) == 0, "socket");
    for (uint32_t other = 0; other < 4096; other++) /* every other session number */
        if (other != r.number) {
            uint32_t x;
            int32_t st = sock_socket(ep, CALL, other, FS_AF_INET, FS_SOCK_DGRAM, 0, &x);
            JCHECK(j, st == SOCK_ESTALE, "session %u: %d", other, st);
        }
    JCHECK(j, sock_close(ep, CALL, r.number, 8) == SOCK_EBADF, "socket id past the session");
    JCHECK(j, sock_close(ep, CALL, r.number, 0xffffffffu) == SOCK_EBADF, "socket id ~0");
    JCHECK(j, sock_close(ep, CALL, r.number, id + 1) == SOCK_EBADF, "a socket never made");
    int64_t v, v2;
    JCHECK(j, sock_getsockopt(ep, CALL, r.number, id, 1, 77, &v, &v2) == SOCK_ENOPROTOOPT, "opt");
    /* The region: an impossible TX tail, doorbell bits past max_sockets,
     * a broken UDP record; netsrv counts and goes on. */
    bytering_t *tx = sock_tx_ring(r.base, &r.l, id);
    atomic_store(&tx->tail, 1u << 31);
    _Atomic uint64_t *db = sock_map(r.base, r.l.doorbell);
    atomic_store(&db[0], ~0ull);
    mk_signal(r.srv_sig);
    mk_sleep_ns(20 * MS);
    atomic_store(&tx->tail, 0);
    atomic_store(&tx->head, 0);
    JCHECK(j, sock_close(ep, CALL, r.number, id) == 0, "close");
    JCHECK(j, sock_socket(ep, CALL, r.number, FS_AF_INET, FS_SOCK_DGRAM, 0, &id) == 0, "socket");
    tx = sock_tx_ring(r.base, &r.l, id);
    sock_dgram_hdr_t h = {.len = 60000, .family = FS_AF_INET, .port = 9};
    memcpy(tx->data, &h, sizeof h);
    atomic_store(&tx->tail, 64); /* a header promising more than is there */
    sock_bit_set(db, id);
    mk_signal(r.srv_sig);
    mk_sleep_ns(20 * MS);
    /* A session of its own still works after all that. */
    JCHECK(j, sock_close(ep, CALL, r.number, id) == 0, "close");
    JCHECK(j, job_stats(j), "stats");
    JCHECK(j, j->st.failures >= 4100, "failures counted: %llu", (unsigned long long)j->st.failures);
    JCHECK(j, sock_session_close(ep, CALL, r.number) == 0, "session_close");
    JCHECK(j, sock_session_close(ep, CALL, r.number) == SOCK_ESTALE, "closed session");
    return 0;
}

START_TEST(test_malformed)
{
    netsrv_start(NULL);
    /* A transfer goes on while the hostile client does its worst. */
    jobs[0].param[0] = 5;
    jobs[1].param[0] = 5;
    jobs[1].param[1] = 32 << 20;
    jobs[1].arg = &jobs[0];
    jobs[0].release = 1;
    spawn(0, "sink", 10, sink_server);
    spawn(1, "source", 11, source_client);
    wait_stage(&jobs[0], 2, 10000 * MS);
    spawn(2, "hostile", 12, hostile);
    join(&jobs[2], 30000 * MS);
    join(&jobs[1], 30000 * MS);
    join(&jobs[0], 5000 * MS);
    ck_assert_uint_eq(jobs[0].bytes, 32u << 20);
    ck_assert_int_eq(jobs[0].param[2], 0); /* no reset */
    ck_assert_uint_ge(sock_totals().bad_requests, 4100);
    /* An unbadged client cannot open a session. */
    mk_cap_t anon;
    ck_assert_int_eq(mk_cap_mint(h_ep, MK_RIGHT_SEND, 0, &anon), MK_OK);
    raw_session_t r;
    ck_assert_int_eq(raw_open(anon, &r, 8, 4096, 0, true), SOCK_EINVAL);
    /* netsrv.idl still answers. */
    uint32_t count;
    ck_assert_int_eq(netsrv_get_netif_count(h_admin, CALL, &count), 0);
    netsrv_stop();
}
END_TEST

/* ---- Runner ------------------------------------------------------------------------------- */


static Suite *sock_suite(void)
{
    Suite *s = suite_create("sock");
    TCase *tc = tcase_create("sock");
    tcase_set_timeout(tc, 60);
    SOCK_ADD(tc, test_tcp_echo_ipv4);
    SOCK_ADD(tc, test_tcp_echo_ipv6);
    SOCK_ADD(tc, test_udp_ipv4);
    SOCK_ADD(tc, test_udp_ipv6);
    SOCK_ADD(tc, test_udp_drops_when_full);
    SOCK_ADD(tc, test_nonblocking_poll);
    SOCK_ADD(tc, test_errno);
    SOCK_ADD(tc, test_emfile);
    SOCK_ADD(tc, test_options);
    SOCK_ADD(tc, test_flow_control);
    SOCK_ADD(tc, test_linger);
    SOCK_ADD(tc, test_killed_client);
    SOCK_ADD(tc, test_malformed);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return sock_run_suite(sock_suite());
}

/*
 * test_sock_close.c - the connection path's short cuts (sock.idl
 * close_nowait, libferrysock's non-blocking accept), by behaviour and
 * counters, not by timing:
 *
 *  - close without a reply: a client whose session has 4 sockets opens,
 *    uses and closes 300 TCP connections and 300 UDP sockets one after the
 *    other: every socket() right after a close finds the slot free (netsrv
 *    took the close before the next call), never EMFILE; the server, also
 *    on a 4-socket session, accepts each with non-blocking accepts until
 *    EAGAIN and closes it the same way; nothing is left open at netsrv, no
 *    request was refused; SO_LINGER 0 still resets (the peer sees
 *    ECONNRESET) and SO_LINGER > 0, inherited by an accepted socket, still
 *    closes cleanly;
 *  - a non-blocking accept with nothing queued says EAGAIN (from the
 *    listener's slot), one with a connection queued takes it;
 *  - a non-blocking connect to a local address (IPv4, IPv6) answers
 *    EINPROGRESS with the handshake done: writable, no error, the
 *    listener showing the connection, all at once; a refused one shows
 *    POLLERR and ECONNREFUSED at once;
 *  - options set without a reply (TCP_NODELAY, SO_KEEPALIVE, SO_REUSEADDR)
 *    read back at once; SO_ERROR without a pending error is 0; TCP_NODELAY
 *    on a UDP socket still fails;
 *  - hostile close_nowait and setsockopt_nowait requests (a stale session, ids past the session,
 *    a socket never made, the oneway method called with a reply) are
 *    counted as refused and change nothing: the session's socket stays
 *    open and usable.
 *
 * Each test runs in its own process (netsrv's lwIP is global). Network
 * safety: netsrv has no NIC here; everything stays on its loopback.
 */
#include "harness.h"

#include <ferry/socket.h>

#define CONNS 300

/* Non-blocking listener on a 4-socket session: accept param[0]
 * connections (accepting until EAGAIN after each wake-up), answer each
 * connection's byte, close each at its EOF. param[1]: SO_LINGER seconds to
 * set on the listener (0: none). param[2] out: EAGAINs seen. */
static int crr_server(job_t *j)
{
    JCHECK(j, fs_session_configure("netsrv", 4, 4096) == 0, "configure");
    uint16_t port;
    int l = listen_on(false, 0, 16, &port);
    JCHECK(j, l >= 0, "listen");
    JCHECK(j, fs_fcntl(l, FS_F_SETFL, FS_O_NONBLOCK) == 0, "O_NONBLOCK");
    if (j->param[1] > 0) {
        struct fs_linger lg = {.l_onoff = 1, .l_linger = (int)j->param[1]};
        JCHECK(j, fs_setsockopt(l, FS_SOL_SOCKET, FS_SO_LINGER, &lg, sizeof lg) == 0, "linger");
    }
    /* Nothing queued yet: EAGAIN. */
    JCHECK(j, fs_accept(l, NULL, NULL) < 0 && errno == EAGAIN, "EAGAIN before any connection");
    atomic_store(&j->port, port);
    atomic_store(&j->stage, 1);
    long accepted = 0, closed = 0;
    int conn = -1;
    while (closed < j->param[0]) {
        struct fs_pollfd p[2] = {{.fd = l, .events = FS_POLLIN}, {.fd = conn, .events = FS_POLLIN}};
        JCHECK(j, fs_poll(p, conn >= 0 ? 2 : 1, 5000) > 0, "poll (%ld closed)", closed);
        if (conn >= 0 && p[1].revents) {
            char c;
            fs_ssize_t n = fs_recv(conn, &c, 1, FS_MSG_DONTWAIT);
            if (n == 1) {
                JCHECK(j, fs_send(conn, &c, 1, 0) == 1, "send %ld", closed);
            } else if (n == 0 || (n < 0 && errno != EAGAIN)) {
                JCHECK(j, fs_close(conn) == 0, "close %ld", closed);
                conn = -1;
                closed++;
            }
        }
        if (p[0].revents & FS_POLLIN) {
            for (;;) {
                int fd = fs_accept(l, NULL, NULL);
                if (fd < 0) {
                    JCHECK(j, errno == EAGAIN, "accept: %s", strerror(errno));
                    j->param[2]++;
                    break;
                }
                JCHECK(j, conn < 0, "a second connection at once");
                conn = fd;
                accepted++;
            }
        }
    }
    JCHECK(j, accepted == j->param[0], "accepted %ld", accepted);
    JCHECK(j, fs_close(l) == 0, "close the listener");
    return 0;
}

/* On a 4-socket session: param[0] times connect, a byte there and back,
 * close; a UDP socket made and closed in between. */
static int crr_client(job_t *j)
{
    job_t *srv = j->arg;
    JCHECK(j, fs_session_configure("netsrv", 4, 4096) == 0, "configure");
    JCHECK(j, job_wait_stage(srv, 1, 5000 * MS), "server not listening");
    uint16_t port = (uint16_t)atomic_load(&srv->port);
    for (long i = 0; i < j->param[0]; i++) {
        int fd = connect_to(false, port);
        JCHECK(j, fd >= 0, "connect %ld: %s", i, strerror(errno));
        char c = (char)i, back = 0;
        JCHECK(j, fs_send(fd, &c, 1, 0) == 1, "send %ld", i);
        JCHECK(j, fs_recv(fd, &back, 1, 0) == 1 && back == c, "answer %ld", i);
        JCHECK(j, fs_close(fd) == 0, "close %ld", i);
        /* The slot just closed is the lowest free one: netsrv hands it out
         * again only if it took the close first. */
        int u = fs_socket(FS_AF_INET, FS_SOCK_DGRAM, 0);
        JCHECK(j, u == fd, "UDP socket %ld: %d after closing %d (%s)", i, u, fd,
               u < 0 ? strerror(errno) : "another slot");
        JCHECK(j, fs_close(u) == 0, "close UDP %ld", i);
        j->bytes++;
    }
    return 0;
}

START_TEST(test_close_nowait_churn)
{
    netsrv_start(NULL);
    netsrv_sock_stats_t t0 = sock_totals();
    job_t *s = &jobs[0], *c = &jobs[1];
    s->param[0] = c->param[0] = CONNS;
    c->arg = s;
    spawn(0, "server", 10, crr_server);
    spawn(1, "client", 11, crr_client);
    join(c, 60000 * MS);
    join(s, 10000 * MS);
    ck_assert_uint_eq(c->bytes, CONNS);
    ck_assert_int_ge(s->param[2], CONNS); /* each wake-up's accepts ended in EAGAIN */
    netsrv_sock_stats_t t = sock_totals();
    ck_assert_uint_eq(t.bad_requests, t0.bad_requests);
    ck_assert_uint_eq(t.sockets, 0);
    ck_assert_uint_ge(t.sockets_created, t0.sockets_created + 3 * CONNS);
    netsrv_stop();
}
END_TEST

/* The same with SO_LINGER 5 s on the listener, inherited by every
 * accepted socket: their closes wait for netsrv's reply (two-way) and
 * still end cleanly, at once (nothing is unacknowledged). */
START_TEST(test_close_linger_inherited)
{
    netsrv_start(NULL);
    job_t *s = &jobs[0], *c = &jobs[1];
    s->param[0] = c->param[0] = 50;
    s->param[1] = 5;
    c->arg = s;
    spawn(0, "server", 10, crr_server);
    spawn(1, "client", 11, crr_client);
    join(c, 60000 * MS);
    join(s, 10000 * MS);
    ck_assert_uint_eq(c->bytes, 50);
    netsrv_sock_stats_t t = sock_totals();
    ck_assert_uint_eq(t.sockets, 0);
    ck_assert_uint_eq(t.bad_requests, 0);
    netsrv_stop();
}
END_TEST

/* Accept one connection, read until the peer's reset, report the error. */
static int reset_server(job_t *j)
{
    uint16_t port;
    int l = listen_on(false, 0, 4, &port);
    JCHECK(j, l >= 0, "listen");
    atomic_store(&j->port, port);
    atomic_store(&j->stage, 1);
    int c = fs_accept(l, NULL, NULL);
    JCHECK(j, c >= 0, "accept");
    char buf[16];
    fs_ssize_t n;
    while ((n = fs_recv(c, buf, sizeof buf, 0)) > 0)
        ;
    JCHECK(j, n < 0 && errno == ECONNRESET, "recv: %ld (%s), not ECONNRESET", (long)n,
           strerror(errno));
    fs_close(c);
    fs_close(l);
    return 0;
}

/* SO_LINGER 0: close (without a reply) resets the connection. */
static int reset_client(job_t *j)
{
    job_t *srv = j->arg;
    JCHECK(j, job_wait_stage(srv, 1, 5000 * MS), "server not listening");
    int fd = connect_to(false, (uint16_t)atomic_load(&srv->port));
    JCHECK(j, fd >= 0, "connect");
    JCHECK(j, fs_send(fd, "x", 1, 0) == 1, "send");
    struct fs_linger lg = {.l_onoff = 1, .l_linger = 0};
    JCHECK(j, fs_setsockopt(fd, FS_SOL_SOCKET, FS_SO_LINGER, &lg, sizeof lg) == 0, "linger 0");
    JCHECK(j, fs_close(fd) == 0, "close");
    return 0;
}

START_TEST(test_close_nowait_linger_zero_resets)
{
    netsrv_start(NULL);
    jobs[1].arg = &jobs[0];
    spawn(0, "server", 10, reset_server);
    spawn(1, "client", 11, reset_client);
    join(&jobs[1], 10000 * MS);
    join(&jobs[0], 10000 * MS);
    ck_assert_uint_eq(sock_totals().sockets, 0);
    netsrv_stop();
}
END_TEST

/* Hostile close_nowait requests: counted, nothing changes. */
static int hostile_close(job_t *j)
{
    mk_cap_t ep;
    JCHECK(j, mk_cap_lookup("netsrv", &ep) == MK_OK, "lookup");
    int fd = fs_socket(FS_AF_INET, FS_SOCK_DGRAM, 0); /* opens the library's session */
    JCHECK(j, fd >= 0, "socket");
    JCHECK(j, job_stats(j), "stats");
    uint64_t failures0 = j->st.failures;
    /* The session number is the library's own; find it as a hostile
     * client would: every number but one is ESTALE. */
    uint32_t session = 0;
    bool found = false;
    for (uint32_t n = 0; n < 4096 && !found; n++) {
        int64_t v, v2;
        if (sock_getsockopt(ep, CALL, n, (uint32_t)fd, 1, 3 /* SO_TYPE */, &v, &v2) == 0) {
            session = n;
            found = true;
        }
    }
    JCHECK(j, found, "no session answers");
    JCHECK(j, job_stats(j), "stats");
    uint64_t failures1 = j->st.failures;
    JCHECK(j, sock_close_nowait(ep, CALL, session + 1, (uint32_t)fd) == 0, "stale session");
    JCHECK(j, sock_close_nowait(ep, CALL, session, 4096) == 0, "id past the session");
    JCHECK(j, sock_close_nowait(ep, CALL, session, 0xffffffffu) == 0, "id ~0");
    JCHECK(j, sock_close_nowait(ep, CALL, session, (uint32_t)fd + 1) == 0, "never made");
    /* setsockopt without a reply: a stale session, an id past the
     * session, an option netsrv refuses (on a UDP socket). */
    JCHECK(j, sock_setsockopt_nowait(ep, CALL, session + 1, (uint32_t)fd, 6, 1, 1, 0) == 0,
           "setsockopt_nowait: stale session");
    JCHECK(j, sock_setsockopt_nowait(ep, CALL, session, 4096, 1, 2, 1, 0) == 0,
           "setsockopt_nowait: id past the session");
    JCHECK(j, sock_setsockopt_nowait(ep, CALL, session, (uint32_t)fd, 6, 1, 1, 0) == 0,
           "setsockopt_nowait: TCP_NODELAY on UDP");
    /* The oneway method called with a reply: refused by the dispatcher. */
    mk_msg_t m = {.label = SOCK_CLOSE_NOWAIT_ID, .words = 3, .mr = {SOCK_HASH, session, 0}};
    m.mr[2] = (uint64_t)fd;
    JCHECK(j, mk_call(ep, &m, CALL) == MK_OK && (int32_t)m.label == IDL_EKIND, "called: %d",
           (int32_t)m.label);
    /* Taken in order: the next call sees them done, and the socket open. */
    int type = 0;
    fs_socklen_t len = sizeof type;
    JCHECK(j, fs_getsockopt(fd, FS_SOL_SOCKET, 3 /* SO_TYPE */, &type, &len) == 0 && type == 2,
           "the socket is still open");
    JCHECK(j, job_stats(j), "stats");
    JCHECK(j, j->st.failures >= failures1 + 8 && failures1 >= failures0 + 1,
           "failures %llu -> %llu -> %llu", (unsigned long long)failures0,
           (unsigned long long)failures1, (unsigned long long)j->st.failures);
    JCHECK(j, fs_close(fd) == 0, "close");
    int64_t v, v2;
    JCHECK(j, sock_getsockopt(ep, CALL, session, (uint32_t)fd, 1, 3, &v, &v2) == SOCK_EBADF,
           "closed without a reply, gone before the next call");
    return 0;
}

START_TEST(test_close_nowait_hostile)
{
    netsrv_start(NULL);
    spawn(0, "hostile", 10, hostile_close);
    join(&jobs[0], 30000 * MS);
    ck_assert_uint_ge(sock_totals().bad_requests, 8);
    ck_assert_uint_eq(sock_totals().sockets, 0);
    netsrv_stop();
}
END_TEST

/* A non-blocking connect to a local address comes back with the handshake
 * done (netsrv delivers its looped packets before answering): EINPROGRESS,
 * and the socket writable at once; a refused one shows its error at once.
 * The listener is this job's own. */
static int settled_connect(job_t *j)
{
    for (int v6 = 0; v6 <= 1; v6++) {
        uint16_t port;
        int l = listen_on(v6, 0, 4, &port);
        JCHECK(j, l >= 0, "listen (v6 %d)", v6);
        int fd = fs_socket(v6 ? FS_AF_INET6 : FS_AF_INET, FS_SOCK_STREAM | FS_SOCK_NONBLOCK, 0);
        JCHECK(j, fd >= 0, "socket");
        addr_t a;
        fs_socklen_t len = loop_addr(v6, port, &a);
        JCHECK(j, fs_connect(fd, &a.sa, len) < 0 && errno == EINPROGRESS, "EINPROGRESS");
        struct fs_pollfd p = {.fd = fd, .events = FS_POLLOUT};
        JCHECK(j, fs_poll(&p, 1, 0) == 1 && p.revents == FS_POLLOUT, "writable at once (%#x)",
               (unsigned)p.revents);
        int err = -1;
        fs_socklen_t elen = sizeof err;
        JCHECK(j, fs_getsockopt(fd, FS_SOL_SOCKET, FS_SO_ERROR, &err, &elen) == 0 && err == 0,
               "SO_ERROR %d", err);
        struct fs_pollfd lp = {.fd = l, .events = FS_POLLIN};
        JCHECK(j, fs_poll(&lp, 1, 0) == 1, "the listener shows the connection at once");
        int c = fs_accept(l, NULL, NULL);
        JCHECK(j, c >= 0, "accept");
        JCHECK(j, fs_send(fd, "y", 1, 0) == 1, "send");
        char b = 0;
        JCHECK(j, fs_recv(c, &b, 1, 0) == 1 && b == 'y', "recv");
        JCHECK(j, fs_close(c) == 0 && fs_close(fd) == 0, "close");
        /* The listener gone, the port refuses: the error shows at once. */
        JCHECK(j, fs_close(l) == 0, "close the listener");
        fd = fs_socket(v6 ? FS_AF_INET6 : FS_AF_INET, FS_SOCK_STREAM | FS_SOCK_NONBLOCK, 0);
        JCHECK(j, fd >= 0, "socket");
        JCHECK(j, fs_connect(fd, &a.sa, len) < 0 && errno == EINPROGRESS, "EINPROGRESS (refused)");
        p = (struct fs_pollfd){.fd = fd, .events = FS_POLLOUT};
        JCHECK(j, fs_poll(&p, 1, 0) == 1 && (p.revents & FS_POLLERR),
               "the error at once (%#x)", (unsigned)p.revents);
        JCHECK(j, fs_getsockopt(fd, FS_SOL_SOCKET, FS_SO_ERROR, &err, &elen) == 0 &&
                      err == ECONNREFUSED,
               "SO_ERROR %d", err);
        JCHECK(j, fs_close(fd) == 0, "close");
    }
    return 0;
}

START_TEST(test_connect_nonblock_settled)
{
    netsrv_start(NULL);
    spawn(0, "client", 10, settled_connect);
    join(&jobs[0], 10000 * MS);
    ck_assert_uint_eq(sock_totals().sockets, 0);
    netsrv_stop();
}
END_TEST

/* Options set without a reply hold for the next call; SO_ERROR without a
 * pending error is 0 (read from the slot); an option that can fail still
 * fails. */
static int nowait_options(job_t *j)
{
    int fd = fs_socket(FS_AF_INET, FS_SOCK_STREAM, 0);
    JCHECK(j, fd >= 0, "socket");
    int names[3][2] = {{FS_IPPROTO_TCP, FS_TCP_NODELAY},
                       {FS_SOL_SOCKET, FS_SO_KEEPALIVE},
                       {FS_SOL_SOCKET, FS_SO_REUSEADDR}};
    for (int k = 0; k < 3; k++)
        for (int want = 1; want >= 0; want--) {
            JCHECK(j, fs_setsockopt(fd, names[k][0], names[k][1], &want, sizeof want) == 0,
                   "set %d", k);
            int got = -1;
            fs_socklen_t len = sizeof got;
            JCHECK(j, fs_getsockopt(fd, names[k][0], names[k][1], &got, &len) == 0 && got == want,
                   "option %d: %d, set %d", k, got, want);
        }
    int one = 1;
    JCHECK(j, fs_setsockopt(fd, FS_IPPROTO_TCP, FS_TCP_NODELAY, &one, 1) < 0 && errno == EINVAL,
           "short value");
    int err = -1;
    fs_socklen_t elen = sizeof err;
    JCHECK(j, fs_getsockopt(fd, FS_SOL_SOCKET, FS_SO_ERROR, &err, &elen) == 0 && err == 0 &&
                  elen == sizeof err,
           "SO_ERROR %d", err);
    elen = 1;
    JCHECK(j, fs_getsockopt(fd, FS_SOL_SOCKET, FS_SO_ERROR, &err, &elen) < 0 && errno == EINVAL,
           "SO_ERROR into 1 byte");
    int u = fs_socket(FS_AF_INET, FS_SOCK_DGRAM, 0);
    JCHECK(j, u >= 0, "UDP socket");
    JCHECK(j, fs_setsockopt(u, FS_IPPROTO_TCP, FS_TCP_NODELAY, &one, sizeof one) < 0 &&
                  errno == ENOPROTOOPT,
           "TCP_NODELAY on UDP: %s", strerror(errno));
    JCHECK(j, fs_close(u) == 0 && fs_close(fd) == 0, "close");
    JCHECK(j, job_stats(j), "stats");
    JCHECK(j, j->st.failures == 0, "failures %llu", (unsigned long long)j->st.failures);
    return 0;
}

START_TEST(test_setsockopt_nowait)
{
    netsrv_start(NULL);
    spawn(0, "options", 10, nowait_options);
    join(&jobs[0], 10000 * MS);
    ck_assert_uint_eq(sock_totals().bad_requests, 0);
    netsrv_stop();
}
END_TEST

static Suite *close_suite(void)
{
    Suite *s = suite_create("sock_close");
    TCase *tc = tcase_create("close");
    tcase_set_timeout(tc, 120);
    SOCK_ADD(tc, test_close_nowait_churn);
    SOCK_ADD(tc, test_close_linger_inherited);
    SOCK_ADD(tc, test_close_nowait_linger_zero_resets);
    SOCK_ADD(tc, test_close_nowait_hostile);
    SOCK_ADD(tc, test_connect_nonblock_settled);
    SOCK_ADD(tc, test_setsockopt_nowait);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return sock_run_suite(close_suite());
}

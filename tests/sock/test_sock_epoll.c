/*
 * test_sock_epoll.c - proves libferrysock's readiness machinery and its
 * client-side socket features, with tasks talking through netsrv's
 * loopback in the simulator:
 *
 *  - epoll over many sockets of which few are ready: exactly those are
 *    reported, and the library looked at a handful of sockets, not at every
 *    registered one (fs_session_stats counts what it examined: no timing);
 *    fs_poll's wake-up re-checks only the flagged sockets (same counters);
 *  - level-triggered, edge-triggered and one-shot semantics, MOD and DEL,
 *    a closed socket leaving its sets, fairness with a small maxevents;
 *  - errors: EBADF, EINVAL, ENOENT, EEXIST, EFAULT, EPERM, EMFILE,
 *    ENOTSOCK, and a refused call changes nothing;
 *  - readiness taken by a blocking recv is still reported by a later
 *    epoll_wait (even edge-triggered, even with timeout 0);
 *  - timeouts of epoll_wait;
 *  - MSG_PEEK (TCP and UDP), MSG_WAITALL, MSG_TRUNC, MSG_DONTWAIT;
 *    SO_RCVTIMEO / SO_SNDTIMEO (recv, send, accept; EDOM, EINVAL);
 *  - fs_sendmsg / fs_recvmsg: gather, scatter, names, MSG_TRUNC in
 *    msg_flags, and their errors.
 *
 * Each test runs in its own process (netsrv's lwIP is global). Network
 * safety: netsrv has no NIC here; everything stays on its loopback.
 */
#include "harness.h"

#include <ferry/sock_region.h>

/* ---- Helpers -------------------------------------------------------------------------------- */

/* A connected TCP pair in the calling job's session: *c connected to
 * listener l (port), *a accepted. */
static int pair(int l, uint16_t port, int *c, int *a)
{
    int one = 1;
    *c = connect_to(false, port);
    if (*c < 0)
        return -1;
    *a = fs_accept(l, NULL, NULL);
    /* No Nagle: a second small send must not wait for the first's ACK. */
    if (*a < 0 || fs_setsockopt(*c, FS_IPPROTO_TCP, FS_TCP_NODELAY, &one, sizeof one) != 0)
        return -1;
    return 0;
}

static struct fs_session_stats stats(void)
{
    struct fs_session_stats st;
    if (fs_session_stats(&st) != 0)
        memset(&st, 0xff, sizeof st); /* makes every bound below fail */
    return st;
}

static uint64_t ms_since(uint64_t t0)
{
    return (mk_time_ns() - t0) / MS;
}

/* ---- Many sockets, few ready -------------------------------------------------------------- */

#define MANY 200
static const int hot[3] = {7, 100, 199}; /* the connections that get data (epoll) */
#define POLL_HOT 42                      /* the one that gets data (poll) */

/* Accepts MANY connections, watches them with epoll, then with fs_poll. */
static int many_server(job_t *j)
{
    JCHECK(j, fs_session_configure("netsrv", 512, 4096) == 0, "configure");
    uint16_t port;
    int l = listen_on(false, 0, 255, &port);
    JCHECK(j, l >= 0, "listen");
    atomic_store(&j->port, port);
    atomic_store(&j->stage, 1);
    static int fd[MANY];
    for (int i = 0; i < MANY; i++) {
        fd[i] = fs_accept(l, NULL, NULL);
        JCHECK(j, fd[i] >= 0, "accept %d", i);
    }
    JCHECK(j, job_wait_stage(j->arg, 1, 10000 * MS), "client did not connect");
    int ep = fs_epoll_create1(0);
    JCHECK(j, ep >= 0, "epoll_create1");
    for (int i = 0; i < MANY; i++) {
        struct fs_epoll_event e = {.events = FS_EPOLLIN, .data.u64 = 1000u + (uint64_t)i};
        JCHECK(j, fs_epoll_ctl(ep, FS_EPOLL_CTL_ADD, fd[i], &e) == 0, "ADD %d", i);
    }
    struct fs_epoll_event ev[64];
    JCHECK(j, fs_epoll_wait(ep, ev, 64, 0) == 0, "nothing is ready yet");
    struct fs_session_stats st0 = stats();
    atomic_store(&j->stage, 2); /* the client sends to the hot three */
    bool seen[3] = {false, false, false};
    int nseen = 0, calls = 0;
    uint64_t end = mk_time_ns() + 5000 * MS;
    while (nseen < 3 && mk_time_ns() < end) {
        int n = fs_epoll_wait(ep, ev, 64, 1000);
        calls++;
        JCHECK(j, n >= 0, "epoll_wait");
        for (int k = 0; k < n; k++) {
            uint64_t d = ev[k].data.u64;
            int h = d == 1000u + hot[0]   ? 0
                    : d == 1000u + hot[1] ? 1
                    : d == 1000u + hot[2] ? 2
                                          : -1;
            JCHECK(j, h >= 0, "socket %llu reported, it got nothing", (unsigned long long)d - 1000);
            JCHECK(j, ev[k].events == FS_EPOLLIN, "events %#x", ev[k].events);
            JCHECK(j, !seen[h], "socket %d reported after it was read", hot[h]);
            char c;
            JCHECK(j, fs_recv(fd[hot[h]], &c, 1, 0) == 1 && c == 'a' + h, "data of %d", hot[h]);
            nseen++;
            seen[h] = true;
        }
    }
    JCHECK(j, nseen == 3, "%d of 3 ready sockets reported (%d %d %d)", nseen, seen[0], seen[1],
           seen[2]);
    struct fs_session_stats st1 = stats();
    uint64_t checks = st1.epoll_checks - st0.epoll_checks;
    /* Each call looks at what was flagged (a reported socket is read at
     * once, so level-triggered ones do not stay ready): a handful in all.
     * Scanning the set would be MANY per call. */
    JCHECK(j, checks <= 2u * (unsigned)calls + 6 && checks < MANY / 4,
           "%llu sockets examined in %d waits, %d registered", (unsigned long long)checks, calls,
           MANY);
    JCHECK(j, st1.ready_bits - st0.ready_bits < MANY / 4, "%llu ready bits",
           (unsigned long long)(st1.ready_bits - st0.ready_bits));
    st0 = stats();
    JCHECK(j, fs_epoll_wait(ep, ev, 64, 0) == 0, "read: nothing ready");
    st1 = stats();
    JCHECK(j, st1.epoll_checks - st0.epoll_checks <= 3, "%llu examined after reading",
           (unsigned long long)(st1.epoll_checks - st0.epoll_checks));
    JCHECK(j, fs_close(ep) == 0, "close epoll");

    /* fs_poll: one full pass, then only the flagged sockets. */
    static struct fs_pollfd pfd[MANY];
    for (int i = 0; i < MANY; i++)
        pfd[i] = (struct fs_pollfd){.fd = fd[i], .events = FS_POLLIN};
    st0 = stats();
    atomic_store(&j->stage, 3); /* the client waits, then sends to POLL_HOT */
    int n = fs_poll(pfd, MANY, 5000);
    st1 = stats();
    JCHECK(j, n == 1, "poll: %d", n);
    for (int i = 0; i < MANY; i++)
        JCHECK(j, pfd[i].revents == (i == POLL_HOT ? FS_POLLIN : 0), "revents[%d] %#x", i,
               pfd[i].revents);
    uint64_t pchecks = st1.poll_checks - st0.poll_checks;
    JCHECK(j, st1.waits > st0.waits, "poll never slept: the test proves nothing");
    JCHECK(j, pchecks >= MANY && pchecks <= MANY + 8, "poll examined %llu entries for %d",
           (unsigned long long)pchecks, MANY);
    char c;
    JCHECK(j, fs_recv(fd[POLL_HOT], &c, 1, 0) == 1 && c == 'p', "poll data");
    atomic_store(&j->stage, 4);
    for (int i = 0; i < MANY; i++)
        fs_close(fd[i]);
    return fs_close(l);
}

static int many_client(job_t *j)
{
    job_t *srv = j->arg;
    JCHECK(j, fs_session_configure("netsrv", 256, 4096) == 0, "configure");
    JCHECK(j, job_wait_stage(srv, 1, 5000 * MS), "server");
    static int fd[MANY];
    for (int i = 0; i < MANY; i++) {
        fd[i] = connect_to(false, (uint16_t)atomic_load(&srv->port));
        JCHECK(j, fd[i] >= 0, "connect %d", i);
    }
    atomic_store(&j->stage, 1);
    JCHECK(j, job_wait_stage(srv, 2, 10000 * MS), "server stage 2");
    for (int h = 0; h < 3; h++) {
        char c = (char)('a' + h);
        JCHECK(j, fs_send(fd[hot[h]], &c, 1, 0) == 1, "send %d", hot[h]);
    }
    JCHECK(j, job_wait_stage(srv, 3, 10000 * MS), "server stage 3");
    mk_sleep_ns(200 * MS); /* let it sleep in fs_poll (checked there) */
    JCHECK(j, fs_send(fd[POLL_HOT], "p", 1, 0) == 1, "send poll");
    JCHECK(j, job_wait_stage(srv, 4, 10000 * MS), "server stage 4");
    for (int i = 0; i < MANY; i++)
        fs_close(fd[i]);
    return 0;
}

START_TEST(test_epoll_many_few_ready)
{
    netsrv_start(NULL);
    jobs[0].arg = &jobs[1];
    jobs[1].arg = &jobs[0];
    spawn(0, "server", 10, many_server);
    spawn(1, "client", 11, many_client);
    join(&jobs[0], 40000 * MS);
    join(&jobs[1], 10000 * MS);
    netsrv_stop();
}
END_TEST

/* ---- LT, ET, ONESHOT, MOD, DEL -------------------------------------------------------------- */

/* epoll_wait until it returns something (at most 2 s); its result. */
static int wait_some(int ep, struct fs_epoll_event *ev, int max)
{
    uint64_t end = mk_time_ns() + 2000 * MS;
    int n;
    do
        n = fs_epoll_wait(ep, ev, max, 200);
    while (n == 0 && mk_time_ns() < end);
    return n;
}

static int drain(int fd)
{
    char buf[256];
    int total = 0;
    fs_ssize_t n;
    while ((n = fs_recv(fd, buf, sizeof buf, FS_MSG_DONTWAIT)) > 0)
        total += (int)n;
    return total;
}

static int semantics(job_t *j)
{
    uint16_t port;
    int l = listen_on(false, 0, 8, &port), c, a, c2, a2;
    JCHECK(j, l >= 0 && pair(l, port, &c, &a) == 0 && pair(l, port, &c2, &a2) == 0, "pairs");
    int ep = fs_epoll_create1(FS_EPOLL_CLOEXEC);
    JCHECK(j, ep >= 0, "epoll_create1");
    struct fs_epoll_event e = {.events = FS_EPOLLIN, .data.u64 = 0x1122334455667788ull};
    struct fs_epoll_event ev[8];
    JCHECK(j, fs_epoll_ctl(ep, FS_EPOLL_CTL_ADD, a, &e) == 0, "ADD");
    JCHECK(j, fs_epoll_wait(ep, ev, 8, 0) == 0, "nothing yet");

    /* Level-triggered: reported while data is there. */
    JCHECK(j, fs_send(c, "hello", 5, 0) == 5, "send");
    JCHECK(j,
           wait_some(ep, ev, 8) == 1 && ev[0].events == FS_EPOLLIN &&
               ev[0].data.u64 == 0x1122334455667788ull,
           "LT report");
    JCHECK(j, fs_epoll_wait(ep, ev, 8, 0) == 1, "LT: again, nothing read");
    char buf[64];
    JCHECK(j, fs_recv(a, buf, 2, 0) == 2, "read part");
    JCHECK(j, fs_epoll_wait(ep, ev, 8, 0) == 1, "LT: again, data left");
    JCHECK(j, drain(a) == 3, "read the rest");
    JCHECK(j, fs_epoll_wait(ep, ev, 8, 0) == 0, "LT: nothing after reading");

    /* Edge-triggered: once per change, even with data left. */
    e = (struct fs_epoll_event){.events = FS_EPOLLIN | FS_EPOLLET, .data.u64 = 2};
    JCHECK(j, fs_epoll_ctl(ep, FS_EPOLL_CTL_MOD, a, &e) == 0, "MOD to ET");
    JCHECK(j, fs_epoll_wait(ep, ev, 8, 0) == 0, "ET: nothing yet");
    JCHECK(j, fs_send(c, "x", 1, 0) == 1, "send x");
    JCHECK(j, wait_some(ep, ev, 8) == 1 && ev[0].data.u64 == 2, "ET report");
    JCHECK(j, fs_epoll_wait(ep, ev, 8, 100) == 0, "ET: no second report without new data");
    JCHECK(j, fs_send(c, "y", 1, 0) == 1, "send y");
    JCHECK(j, wait_some(ep, ev, 8) == 1, "ET: new data, new report");
    JCHECK(j, fs_epoll_wait(ep, ev, 8, 0) == 0, "ET: quiet again");
    JCHECK(j, drain(a) == 2, "read x y");

    /* One-shot: one report, then nothing until MOD re-arms it. */
    e = (struct fs_epoll_event){.events = FS_EPOLLIN | FS_EPOLLONESHOT, .data.u64 = 3};
    JCHECK(j, fs_epoll_ctl(ep, FS_EPOLL_CTL_MOD, a, &e) == 0, "MOD to ONESHOT");
    JCHECK(j, fs_send(c, "z", 1, 0) == 1, "send z");
    JCHECK(j, wait_some(ep, ev, 8) == 1 && ev[0].data.u64 == 3, "ONESHOT report");
    JCHECK(j, fs_send(c, "w", 1, 0) == 1, "send w");
    JCHECK(j, fs_epoll_wait(ep, ev, 8, 200) == 0, "ONESHOT: disarmed");
    JCHECK(j, fs_epoll_ctl(ep, FS_EPOLL_CTL_MOD, a, &e) == 0, "MOD re-arms");
    JCHECK(j, fs_epoll_wait(ep, ev, 8, 0) == 1 && ev[0].data.u64 == 3, "re-armed and ready");
    JCHECK(j, drain(a) == 2, "read z w");

    /* EPOLLOUT, and fairness: with maxevents 1 two ready sockets take turns. */
    e = (struct fs_epoll_event){.events = FS_EPOLLOUT | FS_EPOLLWRNORM, .data.u64 = 10};
    JCHECK(j, fs_epoll_ctl(ep, FS_EPOLL_CTL_ADD, c, &e) == 0, "ADD c");
    e.data.u64 = 11;
    JCHECK(j, fs_epoll_ctl(ep, FS_EPOLL_CTL_ADD, c2, &e) == 0, "ADD c2");
    uint64_t got[4];
    for (int i = 0; i < 4; i++) {
        JCHECK(j, fs_epoll_wait(ep, ev, 1, 0) == 1, "OUT %d", i);
        JCHECK(j, ev[0].events == (FS_EPOLLOUT | FS_EPOLLWRNORM), "OUT events %#x", ev[0].events);
        got[i] = ev[0].data.u64;
    }
    JCHECK(j, got[0] != got[1] && got[0] == got[2] && got[1] == got[3],
           "turns: %llu %llu %llu %llu", (unsigned long long)got[0], (unsigned long long)got[1],
           (unsigned long long)got[2], (unsigned long long)got[3]);

    /* DEL: gone; DEL again: ENOENT. */
    JCHECK(j, fs_epoll_ctl(ep, FS_EPOLL_CTL_DEL, c2, NULL) == 0, "DEL");
    JCHECK(j, fs_epoll_ctl(ep, FS_EPOLL_CTL_DEL, c2, NULL) < 0 && errno == ENOENT, "DEL again");
    int n = fs_epoll_wait(ep, ev, 8, 0);
    JCHECK(j, n == 1 && ev[0].data.u64 == 10, "only c left (%d)", n);

    /* The peer's FIN: IN and RDHUP (asked for). */
    e = (struct fs_epoll_event){.events = FS_EPOLLIN | FS_EPOLLRDHUP | FS_EPOLLET, .data.u64 = 4};
    JCHECK(j, fs_epoll_ctl(ep, FS_EPOLL_CTL_MOD, a, &e) == 0, "MOD RDHUP");
    JCHECK(j, fs_epoll_ctl(ep, FS_EPOLL_CTL_DEL, c, NULL) == 0, "DEL c");
    JCHECK(j, fs_shutdown(c, FS_SHUT_WR) == 0, "shutdown");
    JCHECK(j,
           wait_some(ep, ev, 8) == 1 && ev[0].data.u64 == 4 &&
               ev[0].events == (FS_EPOLLIN | FS_EPOLLRDHUP),
           "RDHUP report (events %#x)", ev[0].events);

    /* A closed socket leaves the set: its id, reused, is not registered. */
    JCHECK(j, fs_epoll_ctl(ep, FS_EPOLL_CTL_ADD, c2, &e) == 0, "ADD c2 again");
    JCHECK(j, fs_close(c2) == 0 && fs_close(a2) == 0, "close pair 2");
    int r = fs_socket(FS_AF_INET, FS_SOCK_DGRAM, 0);
    JCHECK(j, r == c2 || r == a2, "ids reused (%d)", r);
    JCHECK(j, fs_epoll_ctl(ep, FS_EPOLL_CTL_DEL, r, NULL) < 0 && errno == ENOENT,
           "a closed socket's registration survived");
    e = (struct fs_epoll_event){.events = FS_EPOLLOUT, .data.u64 = 5};
    JCHECK(j, fs_epoll_ctl(ep, FS_EPOLL_CTL_ADD, r, &e) == 0, "ADD the new socket");
    int n2 = fs_epoll_wait(ep, ev, 8, 0);
    JCHECK(j, n2 == 1 && ev[0].data.u64 == 5 && ev[0].events == FS_EPOLLOUT,
           "the new socket alone (%d)", n2);
    /* Closing the instance; it is gone afterwards. */
    JCHECK(j, fs_close(ep) == 0, "close epoll");
    JCHECK(j, fs_close(ep) < 0 && errno == EBADF, "close epoll twice");
    JCHECK(j, fs_epoll_wait(ep, ev, 8, 0) < 0 && errno == EBADF, "wait on a closed instance");
    JCHECK(j, fs_close(r) == 0 && fs_close(a) == 0 && fs_close(c) == 0 && fs_close(l) == 0,
           "close");
    return 0;
}

START_TEST(test_epoll_semantics)
{
    netsrv_start(NULL);
    spawn(0, "semantics", 10, semantics);
    join(&jobs[0], 30000 * MS);
    netsrv_stop();
}
END_TEST

/* ---- Errors ------------------------------------------------------------------------------------
 */

static int errors(job_t *j)
{
    struct fs_epoll_event e = {.events = FS_EPOLLIN, .data.u64 = 77}, ev[4];
    JCHECK(j, fs_epoll_create1(1) < 0 && errno == EINVAL, "create1: bad flags");
    int ep = fs_epoll_create1(0);
    JCHECK(j, ep >= 0, "create1");
    uint16_t port;
    int l = listen_on(false, 0, 4, &port), c, a;
    JCHECK(j, l >= 0 && pair(l, port, &c, &a) == 0, "pair");
    /* EBADF: no such descriptor, as epfd or as fd. */
    JCHECK(j, fs_epoll_ctl(ep + 1, FS_EPOLL_CTL_ADD, a, &e) < 0 && errno == EBADF, "EBADF epfd");
    JCHECK(j, fs_epoll_ctl(-1, FS_EPOLL_CTL_ADD, a, &e) < 0 && errno == EBADF, "EBADF -1");
    JCHECK(j, fs_epoll_ctl(ep, FS_EPOLL_CTL_ADD, 50, &e) < 0 && errno == EBADF, "EBADF fd");
    JCHECK(j, fs_epoll_wait(ep + 1, ev, 4, 0) < 0 && errno == EBADF, "EBADF wait");
    /* EINVAL: a socket as epfd, fd == epfd, bad op, bad bits, bad maxevents. */
    JCHECK(j, fs_epoll_ctl(l, FS_EPOLL_CTL_ADD, a, &e) < 0 && errno == EINVAL,
           "EINVAL socket as epfd");
    JCHECK(j, fs_epoll_wait(l, ev, 4, 0) < 0 && errno == EINVAL, "EINVAL wait on a socket");
    JCHECK(j, fs_epoll_ctl(ep, FS_EPOLL_CTL_ADD, ep, &e) < 0 && errno == EINVAL,
           "EINVAL fd == epfd");
    JCHECK(j, fs_epoll_ctl(ep, 0, a, &e) < 0 && errno == EINVAL, "EINVAL op 0");
    JCHECK(j, fs_epoll_ctl(ep, 4, a, &e) < 0 && errno == EINVAL, "EINVAL op 4");
    struct fs_epoll_event bad = {.events = FS_EPOLLIN | (1u << 20)};
    JCHECK(j, fs_epoll_ctl(ep, FS_EPOLL_CTL_ADD, a, &bad) < 0 && errno == EINVAL, "EINVAL bits");
    bad.events = FS_EPOLLIN | FS_EPOLLEXCLUSIVE | FS_EPOLLONESHOT;
    JCHECK(j, fs_epoll_ctl(ep, FS_EPOLL_CTL_ADD, a, &bad) < 0 && errno == EINVAL,
           "EINVAL exclusive + oneshot");
    JCHECK(j, fs_epoll_wait(ep, ev, 0, 0) < 0 && errno == EINVAL, "EINVAL maxevents 0");
    JCHECK(j, fs_epoll_wait(ep, ev, -1, 0) < 0 && errno == EINVAL, "EINVAL maxevents -1");
    JCHECK(j, fs_epoll_wait(ep, NULL, 4, 0) < 0 && errno == EFAULT, "EFAULT events");
    JCHECK(j, fs_epoll_ctl(ep, FS_EPOLL_CTL_ADD, a, NULL) < 0 && errno == EFAULT, "EFAULT event");
    /* ENOENT, EEXIST; a refused call changes nothing. */
    JCHECK(j, fs_epoll_ctl(ep, FS_EPOLL_CTL_MOD, a, &e) < 0 && errno == ENOENT, "ENOENT MOD");
    JCHECK(j, fs_epoll_ctl(ep, FS_EPOLL_CTL_DEL, a, NULL) < 0 && errno == ENOENT, "ENOENT DEL");
    JCHECK(j, fs_epoll_wait(ep, ev, 4, 0) == 0, "nothing registered by the refused calls");
    JCHECK(j, fs_epoll_ctl(ep, FS_EPOLL_CTL_ADD, a, &e) == 0, "ADD");
    struct fs_epoll_event other = {.events = FS_EPOLLOUT, .data.u64 = 88};
    JCHECK(j, fs_epoll_ctl(ep, FS_EPOLL_CTL_ADD, a, &other) < 0 && errno == EEXIST, "EEXIST");
    bad.events = FS_EPOLLOUT | (1u << 21);
    JCHECK(j, fs_epoll_ctl(ep, FS_EPOLL_CTL_MOD, a, &bad) < 0 && errno == EINVAL, "EINVAL MOD");
    bad.events = FS_EPOLLOUT | FS_EPOLLEXCLUSIVE;
    JCHECK(j, fs_epoll_ctl(ep, FS_EPOLL_CTL_MOD, a, &bad) < 0 && errno == EINVAL,
           "EINVAL MOD exclusive");
    /* Still IN with 77: a writable socket that asked for IN only is quiet. */
    JCHECK(j, fs_epoll_wait(ep, ev, 4, 0) == 0, "EEXIST/EINVAL changed the registration");
    JCHECK(j, fs_send(c, "q", 1, 0) == 1, "send");
    JCHECK(j, wait_some(ep, ev, 4) == 1 && ev[0].data.u64 == 77 && ev[0].events == FS_EPOLLIN,
           "the original registration");
    /* EPERM: an instance inside another; ENOTSOCK: socket calls on an instance. */
    int ep2 = fs_epoll_create1(0);
    JCHECK(j, ep2 >= 0 && ep2 != ep, "second instance");
    JCHECK(j, fs_epoll_ctl(ep, FS_EPOLL_CTL_ADD, ep2, &e) < 0 && errno == EPERM, "EPERM nesting");
    char ch;
    JCHECK(j, fs_send(ep2, "x", 1, 0) < 0 && errno == ENOTSOCK, "ENOTSOCK send");
    JCHECK(j, fs_recv(ep2, &ch, 1, 0) < 0 && errno == ENOTSOCK, "ENOTSOCK recv");
    struct fs_pollfd p = {.fd = ep2, .events = FS_POLLIN};
    JCHECK(j, fs_poll(&p, 1, 0) == 1 && p.revents == FS_POLLNVAL, "an instance in fs_poll");
    /* EMFILE: 32 instances per session. */
    int eps[40], made = 0;
    for (; made < 40; made++) {
        eps[made] = fs_epoll_create1(0);
        if (eps[made] < 0)
            break;
    }
    JCHECK(j, made == 30 && errno == EMFILE, "EMFILE after %d more", made);
    for (int i = 0; i < made; i++)
        JCHECK(j, fs_close(eps[i]) == 0, "close %d", i);
    JCHECK(j, fs_close(ep2) == 0 && fs_close(ep) == 0, "close instances");
    JCHECK(j, fs_close(a) == 0 && fs_close(c) == 0 && fs_close(l) == 0, "close");
    /* No socket was touched by any of it: the session still works. */
    struct fs_session_stats st;
    JCHECK(j, fs_session_stats(&st) == 0 && st.epoll_checks > 0, "stats");
    JCHECK(j, fs_session_stats(NULL) < 0 && errno == EFAULT, "stats EFAULT");
    return 0;
}

START_TEST(test_epoll_errors)
{
    netsrv_start(NULL);
    spawn(0, "errors", 10, errors);
    join(&jobs[0], 30000 * MS);
    netsrv_stop();
}
END_TEST

/* ---- Readiness taken by a blocking call --------------------------------------------------------
 */

/* Holds the peers: sends on the second connection, then (later) on the
 * first, while the other job is blocked in recv on the first. */
static int late_sender(job_t *j)
{
    job_t *srv = j->arg;
    JCHECK(j, job_wait_stage(srv, 1, 5000 * MS), "server");
    uint16_t port = (uint16_t)atomic_load(&srv->port);
    int c1 = connect_to(false, port), c2 = connect_to(false, port);
    JCHECK(j, c1 >= 0 && c2 >= 0, "connect");
    atomic_store(&j->stage, 1);
    JCHECK(j, job_wait_stage(srv, 2, 5000 * MS), "server stage 2");
    mk_sleep_ns(100 * MS); /* the server is blocked in recv by now (checked there) */
    JCHECK(j, fs_send(c2, "2", 1, 0) == 1, "send 2");
    mk_sleep_ns(100 * MS);
    JCHECK(j, fs_send(c1, "1", 1, 0) == 1, "send 1");
    JCHECK(j, job_wait_stage(srv, 3, 5000 * MS), "server stage 3");
    fs_close(c1);
    fs_close(c2);
    return 0;
}

static int blocked_reader(job_t *j)
{
    uint16_t port;
    int l = listen_on(false, 0, 4, &port);
    JCHECK(j, l >= 0, "listen");
    atomic_store(&j->port, port);
    atomic_store(&j->stage, 1);
    int a1 = fs_accept(l, NULL, NULL), a2 = fs_accept(l, NULL, NULL);
    JCHECK(j, a1 >= 0 && a2 >= 0, "accept");
    JCHECK(j, job_wait_stage(j->arg, 1, 5000 * MS), "client");
    int ep = fs_epoll_create1(0);
    struct fs_epoll_event e = {.events = FS_EPOLLIN | FS_EPOLLET, .data.u64 = 2}, ev[4];
    JCHECK(j, ep >= 0 && fs_epoll_ctl(ep, FS_EPOLL_CTL_ADD, a2, &e) == 0, "ADD a2");
    JCHECK(j, fs_epoll_wait(ep, ev, 4, 0) == 0, "nothing yet");
    struct fs_session_stats st0 = stats();
    atomic_store(&j->stage, 2);
    char c;
    JCHECK(j, fs_recv(a1, &c, 1, 0) == 1 && c == '1', "blocking recv");
    struct fs_session_stats st1 = stats();
    JCHECK(j, st1.waits > st0.waits && st1.ready_bits - st0.ready_bits >= 2,
           "recv did not sleep through both bits (%llu waits, %llu bits): the test proves nothing",
           (unsigned long long)(st1.waits - st0.waits),
           (unsigned long long)(st1.ready_bits - st0.ready_bits));
    /* a2's bit went to the blocking recv; epoll must still report a2, at
     * once (timeout 0) and without a new bit. */
    int n = fs_epoll_wait(ep, ev, 4, 0);
    struct fs_session_stats st2 = stats();
    JCHECK(j, n == 1 && ev[0].data.u64 == 2 && ev[0].events == FS_EPOLLIN,
           "readiness lost: %d events", n);
    JCHECK(j, st2.ready_bits == st1.ready_bits, "a new bit came: the test proves nothing");
    /* fs_poll sees it too. */
    struct fs_pollfd p = {.fd = a2, .events = FS_POLLIN};
    JCHECK(j, fs_poll(&p, 1, 0) == 1 && p.revents == FS_POLLIN, "poll");
    JCHECK(j, fs_recv(a2, &c, 1, 0) == 1 && c == '2', "a2's byte");
    atomic_store(&j->stage, 3);
    fs_close(ep);
    fs_close(a1);
    fs_close(a2);
    return fs_close(l);
}

START_TEST(test_epoll_after_blocking_recv)
{
    netsrv_start(NULL);
    jobs[0].arg = &jobs[1];
    jobs[1].arg = &jobs[0];
    spawn(0, "reader", 10, blocked_reader);
    spawn(1, "sender", 11, late_sender);
    join(&jobs[0], 20000 * MS);
    join(&jobs[1], 10000 * MS);
    netsrv_stop();
}
END_TEST

/* ---- epoll_wait timeouts -----------------------------------------------------------------------
 */

static int timeouts(job_t *j)
{
    int ep = fs_epoll_create1(0);
    JCHECK(j, ep >= 0, "create1");
    struct fs_epoll_event ev[2];
    uint64_t t0 = mk_time_ns();
    JCHECK(j, fs_epoll_wait(ep, ev, 2, 0) == 0 && ms_since(t0) < 1000, "timeout 0: at once");
    t0 = mk_time_ns();
    JCHECK(j, fs_epoll_wait(ep, ev, 2, 150) == 0, "timeout 150 ms");
    uint64_t took = ms_since(t0);
    JCHECK(j, took >= 150 && took < 3000, "150 ms took %llu ms", (unsigned long long)took);
    /* A socket that becomes ready ends a long wait early. */
    uint16_t port;
    int l = listen_on(false, 0, 4, &port), c, a;
    JCHECK(j, l >= 0 && pair(l, port, &c, &a) == 0, "pair");
    struct fs_epoll_event e = {.events = FS_EPOLLIN, .data.u64 = 9};
    JCHECK(j, fs_epoll_ctl(ep, FS_EPOLL_CTL_ADD, a, &e) == 0, "ADD");
    JCHECK(j, fs_send(c, "t", 1, 0) == 1, "send");
    t0 = mk_time_ns();
    JCHECK(j, fs_epoll_wait(ep, ev, 2, 10000) == 1 && ev[0].data.u64 == 9, "woken");
    JCHECK(j, ms_since(t0) < 5000, "woken late (%llu ms)", (unsigned long long)ms_since(t0));
    fs_close(ep);
    fs_close(a);
    fs_close(c);
    return fs_close(l);
}

START_TEST(test_epoll_timeouts)
{
    netsrv_start(NULL);
    spawn(0, "timeouts", 10, timeouts);
    join(&jobs[0], 30000 * MS);
    netsrv_stop();
}
END_TEST

/* ---- MSG_PEEK, MSG_WAITALL, MSG_TRUNC -----------------------------------------------------------
 */

/* Wait (bounded) until fd has at least n bytes to read, by peeking. */
static bool peek_until(int fd, void *buf, size_t n)
{
    uint64_t end = mk_time_ns() + 2000 * MS;
    while (mk_time_ns() < end) {
        if (fs_recv(fd, buf, n, FS_MSG_PEEK) == (fs_ssize_t)n)
            return true;
        mk_sleep_ns(MS);
    }
    return false;
}

static int udp_socket(addr_t *a, fs_socklen_t *len)
{
    int fd = fs_socket(FS_AF_INET, FS_SOCK_DGRAM, 0);
    *len = loop_addr(false, 0, a);
    if (fd < 0 || fs_bind(fd, &a->sa, *len) != 0)
        return -1;
    *len = sizeof *a;
    return fs_getsockname(fd, &a->sa, len) == 0 ? fd : -1;
}

static int peek_cases(job_t *j)
{
    uint16_t port;
    int l = listen_on(false, 0, 4, &port), c, a;
    JCHECK(j, l >= 0 && pair(l, port, &c, &a) == 0, "pair");
    char buf[64];
    /* TCP peek: the bytes stay. */
    JCHECK(j, fs_recv(a, buf, 4, FS_MSG_PEEK | FS_MSG_DONTWAIT) < 0 && errno == EAGAIN,
           "peek on nothing: EAGAIN");
    JCHECK(j, fs_send(c, "abcdef", 6, 0) == 6, "send");
    JCHECK(j, peek_until(a, buf, 6) && memcmp(buf, "abcdef", 6) == 0, "peek all");
    JCHECK(j, fs_recv(a, buf, 3, FS_MSG_PEEK) == 3 && memcmp(buf, "abc", 3) == 0, "peek 3");
    JCHECK(j, fs_recv(a, buf, 64, FS_MSG_PEEK) == 6, "peek more than there is");
    JCHECK(j, fs_recv(a, buf, 2, 0) == 2 && memcmp(buf, "ab", 2) == 0, "read 2");
    JCHECK(j, fs_recv(a, buf, 64, FS_MSG_PEEK) == 4 && memcmp(buf, "cdef", 4) == 0,
           "peek the rest");
    /* TCP MSG_TRUNC: consumed, not copied (NULL buffer allowed). */
    JCHECK(j, fs_recv(a, NULL, 2, FS_MSG_TRUNC) == 2, "discard 2");
    JCHECK(j, fs_recv(a, buf, 64, 0) == 2 && memcmp(buf, "ef", 2) == 0, "after the discard");
    /* MSG_WAITALL: the whole length across sends... */
    JCHECK(j, fs_send(c, "123", 3, 0) == 3, "send 123");
    struct fs_timeval tv = {.tv_sec = 0, .tv_usec = 300000};
    JCHECK(j, fs_setsockopt(a, FS_SOL_SOCKET, FS_SO_RCVTIMEO, &tv, sizeof tv) == 0, "RCVTIMEO");
    uint64_t t0 = mk_time_ns();
    JCHECK(j, fs_recv(a, buf, 6, FS_MSG_WAITALL) == 3 && memcmp(buf, "123", 3) == 0,
           "WAITALL with a timeout: what came");
    JCHECK(j, ms_since(t0) >= 300, "WAITALL returned before the timeout");
    JCHECK(j, fs_send(c, "45", 2, 0) == 2 && fs_send(c, "6789", 4, 0) == 4, "send 45 6789");
    JCHECK(j, fs_recv(a, buf, 6, FS_MSG_WAITALL) == 6 && memcmp(buf, "456789", 6) == 0,
           "WAITALL across sends");
    /* ... or less at EOF. */
    JCHECK(j, fs_send(c, "xy", 2, 0) == 2 && fs_shutdown(c, FS_SHUT_WR) == 0, "send, FIN");
    JCHECK(j, fs_recv(a, buf, 10, FS_MSG_WAITALL) == 2, "WAITALL stops at EOF");
    JCHECK(j, fs_recv(a, buf, 10, FS_MSG_WAITALL) == 0, "EOF");
    /* Flags the library does not know, or cannot do. */
    JCHECK(j, fs_recv(a, buf, 1, FS_MSG_OOB) < 0 && errno == EOPNOTSUPP, "MSG_OOB recv");
    JCHECK(j, fs_send(a, "z", 1, FS_MSG_OOB) < 0 && errno == EOPNOTSUPP, "MSG_OOB send");
    JCHECK(j, fs_recv(a, buf, 1, 0x10000) < 0 && errno == EINVAL, "unknown recv flag");
    JCHECK(j, fs_send(a, "z", 1, FS_MSG_PEEK) < 0 && errno == EINVAL, "PEEK on send");
    fs_close(a);
    fs_close(c);
    fs_close(l);

    /* UDP peek: the same datagram until it is read; TRUNC gives its length. */
    addr_t ra, sa;
    fs_socklen_t rl, sl;
    int r = udp_socket(&ra, &rl), s = udp_socket(&sa, &sl);
    JCHECK(j, r >= 0 && s >= 0, "udp sockets");
    JCHECK(j, fs_sendto(s, "first", 5, 0, &ra.sa, rl) == 5, "send first");
    JCHECK(j, fs_sendto(s, "second!", 7, 0, &ra.sa, rl) == 7, "send second");
    for (int i = 0; i < 2; i++) {
        addr_t from;
        fs_socklen_t fl = sizeof from;
        memset(buf, 0, sizeof buf);
        JCHECK(j,
               fs_recvfrom(r, buf, sizeof buf, FS_MSG_PEEK, &from.sa, &fl) == 5 &&
                   memcmp(buf, "first", 5) == 0,
               "peek first (%d)", i);
        JCHECK(j, fl == sizeof(struct fs_sockaddr_in) && addr_port(&from) == addr_port(&sa),
               "peek: the source");
    }
    JCHECK(j, fs_recv(r, buf, sizeof buf, 0) == 5, "read first");
    JCHECK(j, fs_recv(r, buf, 3, FS_MSG_PEEK | FS_MSG_TRUNC) == 7 && memcmp(buf, "sec", 3) == 0,
           "peek with TRUNC: the real length");
    JCHECK(j, fs_recv(r, buf, 3, 0) == 3, "read truncated");
    JCHECK(j, fs_recv(r, buf, sizeof buf, FS_MSG_DONTWAIT) < 0 && errno == EAGAIN,
           "the rest of a truncated datagram is gone");
    fs_close(r);
    fs_close(s);
    return 0;
}

START_TEST(test_msg_flags)
{
    netsrv_start(NULL);
    spawn(0, "flags", 10, peek_cases);
    join(&jobs[0], 30000 * MS);
    netsrv_stop();
}
END_TEST

/* ---- SO_RCVTIMEO, SO_SNDTIMEO -------------------------------------------------------------------
 */

static int timeo_cases(job_t *j)
{
    JCHECK(j, fs_session_configure("netsrv", 16, 4096) == 0, "configure");
    uint16_t port;
    int l = listen_on(false, 0, 4, &port), c, a;
    JCHECK(j, l >= 0 && pair(l, port, &c, &a) == 0, "pair");
    struct fs_timeval tv = {.tv_sec = 0, .tv_usec = 200000}, got;
    fs_socklen_t gl = sizeof got;
    JCHECK(j,
           fs_getsockopt(a, FS_SOL_SOCKET, FS_SO_RCVTIMEO, &got, &gl) == 0 && got.tv_sec == 0 &&
               got.tv_usec == 0 && gl == sizeof got,
           "default: none");
    JCHECK(j, fs_setsockopt(a, FS_SOL_SOCKET, FS_SO_RCVTIMEO, &tv, sizeof tv) == 0, "set");
    gl = sizeof got;
    JCHECK(j,
           fs_getsockopt(a, FS_SOL_SOCKET, FS_SO_RCVTIMEO, &got, &gl) == 0 && got.tv_sec == 0 &&
               got.tv_usec == 200000,
           "read back");
    /* Bad values: EDOM / EINVAL, the timeout unchanged. */
    struct fs_timeval badv = {.tv_sec = 1, .tv_usec = 1000000};
    JCHECK(j,
           fs_setsockopt(a, FS_SOL_SOCKET, FS_SO_RCVTIMEO, &badv, sizeof badv) < 0 && errno == EDOM,
           "EDOM usec");
    badv = (struct fs_timeval){.tv_sec = -1, .tv_usec = 0};
    JCHECK(j,
           fs_setsockopt(a, FS_SOL_SOCKET, FS_SO_RCVTIMEO, &badv, sizeof badv) < 0 && errno == EDOM,
           "EDOM negative");
    JCHECK(j, fs_setsockopt(a, FS_SOL_SOCKET, FS_SO_RCVTIMEO, &badv, 4) < 0 && errno == EINVAL,
           "EINVAL length");
    gl = sizeof got;
    JCHECK(j,
           fs_getsockopt(a, FS_SOL_SOCKET, FS_SO_RCVTIMEO, &got, &gl) == 0 && got.tv_usec == 200000,
           "unchanged by the refusals");
    char buf[64];
    uint64_t t0 = mk_time_ns();
    JCHECK(j, fs_recv(a, buf, sizeof buf, 0) < 0 && errno == EAGAIN && errno == EWOULDBLOCK,
           "recv: EAGAIN after the timeout");
    uint64_t took = ms_since(t0);
    JCHECK(j, took >= 200 && took < 3000, "recv timeout took %llu ms", (unsigned long long)took);
    /* Data within the timeout is returned as usual. */
    JCHECK(j, fs_send(c, "ok", 2, 0) == 2 && fs_recv(a, buf, sizeof buf, 0) == 2, "data in time");

    /* SO_SNDTIMEO: the peer does not read; the ring and the window fill. */
    JCHECK(j, fs_setsockopt(c, FS_SOL_SOCKET, FS_SO_SNDTIMEO, &tv, sizeof tv) == 0, "SNDTIMEO");
    static uint8_t big[1 << 20];
    fs_ssize_t n = fs_send(c, big, sizeof big, 0);
    JCHECK(j, n > 0 && (size_t)n < sizeof big, "send: part after the timeout (%ld)", (long)n);
    t0 = mk_time_ns();
    fs_ssize_t n2;
    do /* the window may still take a little */
        n2 = fs_send(c, big, sizeof big, 0);
    while (n2 > 0 && ms_since(t0) < 5000);
    JCHECK(j, n2 < 0 && errno == EAGAIN, "send: EAGAIN when nothing fits (%ld)", (long)n2);
    JCHECK(j, ms_since(t0) >= 200, "send timeout early");

    /* accept with SO_RCVTIMEO: EAGAIN, then a connection still comes. */
    JCHECK(j, fs_setsockopt(l, FS_SOL_SOCKET, FS_SO_RCVTIMEO, &tv, sizeof tv) == 0, "listener");
    t0 = mk_time_ns();
    JCHECK(j, fs_accept(l, NULL, NULL) < 0 && errno == EAGAIN, "accept: EAGAIN");
    JCHECK(j, ms_since(t0) >= 200, "accept timeout early");
    int c2 = connect_to(false, port);
    int a2 = fs_accept(l, NULL, NULL);
    JCHECK(j, c2 >= 0 && a2 >= 0, "accept within the timeout");
    gl = sizeof got;
    JCHECK(j, fs_getsockopt(a2, FS_SOL_SOCKET, FS_SO_RCVTIMEO, &got, &gl) == 0 &&
                  got.tv_usec == 200000,
           "the accepted socket inherits SO_RCVTIMEO");

    /* UDP recv. */
    addr_t ua;
    fs_socklen_t ul;
    int u = udp_socket(&ua, &ul);
    JCHECK(j, u >= 0 && fs_setsockopt(u, FS_SOL_SOCKET, FS_SO_RCVTIMEO, &tv, sizeof tv) == 0,
           "udp");
    t0 = mk_time_ns();
    JCHECK(j, fs_recv(u, buf, sizeof buf, 0) < 0 && errno == EAGAIN && ms_since(t0) >= 200,
           "udp recv timeout");
    fs_close(u);
    fs_close(a2);
    fs_close(c2);
    fs_close(a);
    fs_close(c);
    return fs_close(l);
}

START_TEST(test_timeouts)
{
    netsrv_start(NULL);
    spawn(0, "timeo", 10, timeo_cases);
    join(&jobs[0], 30000 * MS);
    netsrv_stop();
}
END_TEST

/* ---- sendmsg / recvmsg -------------------------------------------------------------------------
 */

static int msg_cases(job_t *j)
{
    uint16_t port;
    int l = listen_on(false, 0, 4, &port), c, a;
    JCHECK(j, l >= 0 && pair(l, port, &c, &a) == 0, "pair");
    /* TCP gather, then scatter. */
    struct fs_iovec out[3] = {{"ab", 2}, {NULL, 0}, {"cdefg", 5}};
    struct fs_msghdr m = {.msg_iov = out, .msg_iovlen = 3};
    JCHECK(j, fs_sendmsg(c, &m, 0) == 7, "sendmsg TCP");
    char b1[1], b2[3], b3[10], tmp[8];
    JCHECK(j, peek_until(a, tmp, 7), "all arrived");
    struct fs_iovec in[4] = {{b1, 1}, {NULL, 0}, {b2, 3}, {b3, 10}};
    addr_t name;
    m = (struct fs_msghdr){.msg_name = &name,
                           .msg_namelen = sizeof name,
                           .msg_iov = in,
                           .msg_iovlen = 4,
                           .msg_flags = -1};
    JCHECK(j, fs_recvmsg(a, &m, 0) == 7, "recvmsg TCP");
    JCHECK(j, b1[0] == 'a' && memcmp(b2, "bcd", 3) == 0 && memcmp(b3, "efg", 3) == 0, "scattered");
    JCHECK(j, m.msg_flags == 0 && m.msg_namelen == 0, "TCP: flags %d, namelen %u", m.msg_flags,
           (unsigned)m.msg_namelen);

    /* UDP: one datagram from two iovecs, to a name; read into 4 + 3 bytes. */
    addr_t ra, sa;
    fs_socklen_t rl, sl;
    int r = udp_socket(&ra, &rl), s = udp_socket(&sa, &sl);
    JCHECK(j, r >= 0 && s >= 0, "udp sockets");
    struct fs_iovec hv[2] = {{"hello ", 6}, {"world", 5}};
    m = (struct fs_msghdr){.msg_name = &ra, .msg_namelen = rl, .msg_iov = hv, .msg_iovlen = 2};
    JCHECK(j, fs_sendmsg(s, &m, 0) == 11, "sendmsg UDP");
    JCHECK(j, fs_sendmsg(s, &m, 0) == 11, "sendmsg UDP again");
    char u1[4], u2[3];
    struct fs_iovec uv[2] = {{u1, 4}, {u2, 3}};
    m = (struct fs_msghdr){
        .msg_name = &name, .msg_namelen = sizeof name, .msg_iov = uv, .msg_iovlen = 2};
    JCHECK(j, fs_recvmsg(r, &m, 0) == 7, "recvmsg UDP");
    JCHECK(j, memcmp(u1, "hell", 4) == 0 && memcmp(u2, "o w", 3) == 0, "UDP scattered");
    JCHECK(j, m.msg_flags == FS_MSG_TRUNC, "MSG_TRUNC in msg_flags (%#x)", m.msg_flags);
    JCHECK(j, m.msg_namelen == sizeof(struct fs_sockaddr_in) && addr_port(&name) == addr_port(&sa),
           "UDP source");
    m = (struct fs_msghdr){.msg_iov = uv, .msg_iovlen = 2};
    JCHECK(j, fs_recvmsg(r, &m, FS_MSG_TRUNC) == 11 && m.msg_flags == FS_MSG_TRUNC,
           "MSG_TRUNC: the real length");

    /* Errors, none of which consumes anything. */
    JCHECK(j, fs_sendmsg(s, NULL, 0) < 0 && errno == EFAULT, "sendmsg NULL");
    JCHECK(j, fs_recvmsg(r, NULL, 0) < 0 && errno == EFAULT, "recvmsg NULL");
    char ctl[16];
    m = (struct fs_msghdr){.msg_name = &ra,
                           .msg_namelen = rl,
                           .msg_iov = hv,
                           .msg_iovlen = 2,
                           .msg_control = ctl,
                           .msg_controllen = sizeof ctl};
    JCHECK(j, fs_sendmsg(s, &m, 0) < 0 && errno == EINVAL, "ancillary data");
    m.msg_control = NULL;
    m.msg_controllen = 0;
    m.msg_iovlen = FS_IOV_MAX + 1;
    JCHECK(j, fs_sendmsg(s, &m, 0) < 0 && errno == EMSGSIZE, "too many iovecs");
    struct fs_iovec huge[2] = {{u1, (size_t)-1 / 2}, {u2, (size_t)-1 / 2}};
    m = (struct fs_msghdr){.msg_iov = huge, .msg_iovlen = 2};
    JCHECK(j, fs_recvmsg(r, &m, 0) < 0 && errno == EINVAL, "total beyond ssize_t");
    struct fs_iovec nul[1] = {{NULL, 5}};
    m = (struct fs_msghdr){.msg_iov = nul, .msg_iovlen = 1};
    JCHECK(j, fs_recvmsg(r, &m, 0) < 0 && errno == EFAULT, "NULL buffer");
    m = (struct fs_msghdr){.msg_iov = uv, .msg_iovlen = 2};
    JCHECK(j, fs_recvmsg(r, &m, FS_MSG_OOB) < 0 && errno == EOPNOTSUPP, "MSG_OOB");
    JCHECK(j, fs_sendmsg(s, &m, 0x10000) < 0 && errno == EINVAL, "unknown flag");
    JCHECK(j, fs_recvmsg(r, &m, FS_MSG_DONTWAIT) < 0 && errno == EAGAIN,
           "nothing left: both datagrams were read, none by the refused calls");
    fs_close(r);
    fs_close(s);
    fs_close(a);
    fs_close(c);
    return fs_close(l);
}

START_TEST(test_sendmsg_recvmsg)
{
    netsrv_start(NULL);
    spawn(0, "msg", 10, msg_cases);
    join(&jobs[0], 30000 * MS);
    netsrv_stop();
}
END_TEST

/* ---- Runner ------------------------------------------------------------------------------------
 */


static Suite *epoll_suite(void)
{
    Suite *s = suite_create("sock_epoll");
    TCase *tc = tcase_create("sock_epoll");
    tcase_set_timeout(tc, 60);
    SOCK_ADD(tc, test_epoll_many_few_ready);
    SOCK_ADD(tc, test_epoll_semantics);
    SOCK_ADD(tc, test_epoll_errors);
    SOCK_ADD(tc, test_epoll_after_blocking_recv);
    SOCK_ADD(tc, test_epoll_timeouts);
    SOCK_ADD(tc, test_msg_flags);
    SOCK_ADD(tc, test_timeouts);
    SOCK_ADD(tc, test_sendmsg_recvmsg);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return sock_run_suite(epoll_suite());
}

/*
 * echo - TCP and UDP echo server (RFC 862) on ferry/socket.h; the same
 * source runs on Ferry and on native Linux sockets.
 *
 * usage: echo [--port N] [--max-clients N] [--tcp-only | --udp-only] [--quiet]
 * One thread, one epoll set over the listeners (IPv4 and IPv6), the UDP
 * sockets and the clients (level-triggered), so a turn costs what is ready,
 * not what is connected; every socket non-blocking; what a client's peer
 * does not take at once waits in that client's buffer (and the client is
 * not read meanwhile, its interest switched from IN to OUT: back-pressure
 * instead of unbounded memory).
 */
#include "apps.h"
#include "apputil.h"

#include <errno.h>
#include <ferry/mk.h>
#include <stdlib.h>
#include <string.h>

#define ECHO_BUF 16384
#define ECHO_EVENTS 64 /* events taken per epoll wait */

/* What an epoll event names (its data.ptr): a socket and its role. */
typedef enum { W_LISTEN, W_UDP, W_CLIENT } watch_kind_t;

typedef struct watch {
    int fd;
    watch_kind_t kind;
} watch_t;

typedef struct client {
    watch_t w;          /* first: an event's watch_t is its client */
    uint32_t index;     /* in echo_t.clients */
    uint32_t have, off; /* bytes in buf, and how many of them are sent */
    uint64_t echoed;
    uint8_t buf[ECHO_BUF];
} client_t;

typedef struct echo {
    uint32_t port, max_clients;
    bool tcp, udp, quiet;
    watch_t fixed[4]; /* TCP IPv4, IPv6, UDP IPv4, IPv6; fd -1 = none */
    int ep;
    uint32_t nclients;
    client_t **clients;
    uint64_t accepted, datagrams;
} echo_t;

static int usage(const char *bad)
{
    mk_log("usage: echo [--port N] [--max-clients N] [--tcp-only | --udp-only] [--quiet] (bad: '%s')", bad);
    return 2;
}

/* Interest in the socket (fs_epoll_ctl op ADD or MOD): IN, or OUT while
 * its peer has not taken everything. */
static int watch_set(echo_t *e, client_t *c, int op)
{
    struct fs_epoll_event ev = {.events = c->have ? FS_EPOLLOUT : FS_EPOLLIN};
    ev.data.u64 = 0;
    ev.data.ptr = &c->w;
    return fs_epoll_ctl(e->ep, op, c->w.fd, &ev);
}

static void client_close(echo_t *e, client_t *c)
{
    if (!e->quiet)
        mk_log("client %d closed after %llu bytes", c->w.fd, (unsigned long long)c->echoed);
    fs_close(c->w.fd); /* leaves the epoll set too */
    client_t *last = e->clients[--e->nclients];
    e->clients[c->index] = last;
    last->index = c->index;
    free(c);
}

/* Send what is pending; false if the client must go. */
static bool client_flush(client_t *c)
{
    while (c->off < c->have) {
        fs_ssize_t n = fs_send(c->w.fd, c->buf + c->off, c->have - c->off, FS_MSG_DONTWAIT);
        if (n < 0)
            return errno == EAGAIN;
        c->off += (uint32_t)n;
        c->echoed += (uint64_t)n;
    }
    c->have = c->off = 0;
    return true;
}

/* Read and echo; false if the client must go. */
static bool client_read(client_t *c)
{
    fs_ssize_t n = fs_recv(c->w.fd, c->buf, sizeof c->buf, FS_MSG_DONTWAIT);
    if (n == 0 || (n < 0 && errno != EAGAIN))
        return false;
    if (n < 0)
        return true;
    c->have = (uint32_t)n;
    c->off = 0;
    return client_flush(c);
}

static void accept_all(echo_t *e, int lfd)
{
    for (;;) {
        struct fs_sockaddr_storage ss;
        fs_socklen_t len = sizeof ss;
        int fd = fs_accept(lfd, (struct fs_sockaddr *)&ss, &len);
        if (fd < 0) {
            if (errno != EAGAIN)
                mk_log("accept: %s", strerror(errno));
            return;
        }
        e->accepted++;
        client_t *c = e->nclients < e->max_clients ? malloc(sizeof *c) : NULL;
        if (c == NULL) {
            mk_log("refusing a client: %u clients already", (unsigned)e->nclients);
            fs_close(fd);
            continue;
        }
        fs_fcntl(fd, FS_F_SETFL, FS_O_NONBLOCK);
        c->w = (watch_t){.fd = fd, .kind = W_CLIENT};
        c->have = c->off = 0;
        c->echoed = 0;
        if (watch_set(e, c, FS_EPOLL_CTL_ADD) != 0) {
            mk_log("refusing a client: epoll: %s", strerror(errno));
            fs_close(fd);
            free(c);
            continue;
        }
        c->index = e->nclients;
        e->clients[e->nclients++] = c;
        if (!e->quiet) {
            char name[64];
            mk_log("client %d from %s", fd, app_addr_str((struct fs_sockaddr *)&ss, name, sizeof name));
        }
    }
}

static void udp_echo(echo_t *e, int fd)
{
    static uint8_t buf[65536];
    for (int i = 0; i < 256; i++) {
        struct fs_sockaddr_storage ss;
        fs_socklen_t len = sizeof ss;
        fs_ssize_t n = fs_recvfrom(fd, buf, sizeof buf, FS_MSG_DONTWAIT, (struct fs_sockaddr *)&ss, &len);
        if (n < 0)
            return;
        e->datagrams++;
        fs_sendto(fd, buf, (size_t)n, FS_MSG_DONTWAIT, (struct fs_sockaddr *)&ss, len);
    }
}

static int echo_setup(echo_t *e)
{
    int fams[2] = {FS_AF_INET, FS_AF_INET6};
    for (int f = 0; f < 2; f++) {
        e->fixed[f].fd = e->tcp ? app_listen(fams[f], FS_SOCK_STREAM, (uint16_t)e->port, 128) : -1;
        e->fixed[f].kind = W_LISTEN;
        e->fixed[2 + f].fd = e->udp ? app_listen(fams[f], FS_SOCK_DGRAM, (uint16_t)e->port, 0) : -1;
        e->fixed[2 + f].kind = W_UDP;
    }
    /* IPv4 is required; IPv6 is used when the system has it. */
    if ((e->tcp && e->fixed[0].fd < 0) || (e->udp && e->fixed[2].fd < 0))
        return -1;
    e->ep = fs_epoll_create1(0);
    if (e->ep < 0)
        return -1;
    for (int k = 0; k < 4; k++) {
        if (e->fixed[k].fd < 0)
            continue;
        struct fs_epoll_event ev = {.events = FS_EPOLLIN};
        ev.data.u64 = 0;
        ev.data.ptr = &e->fixed[k];
        if (fs_epoll_ctl(e->ep, FS_EPOLL_CTL_ADD, e->fixed[k].fd, &ev) != 0)
            return -1;
    }
    e->clients = calloc(e->max_clients, sizeof *e->clients);
    return e->clients ? 0 : -1;
}

/* One client's event: flush or read, then follow its state (IN or OUT). */
static void client_event(echo_t *e, client_t *c, uint32_t events)
{
    bool busy = c->have != 0;
    bool keep = (events & FS_EPOLLERR) == 0;
    if (keep && c->have)
        keep = client_flush(c);
    else if (keep && (events & (FS_EPOLLIN | FS_EPOLLHUP)))
        keep = client_read(c);
    if (keep && (c->have != 0) != busy)
        keep = watch_set(e, c, FS_EPOLL_CTL_MOD) == 0;
    if (!keep)
        client_close(e, c);
}

int echo_main(int argc, char **argv)
{
    echo_t e = {.port = 7, .max_clients = 64, .tcp = true, .udp = true};
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--port") == 0 && i + 1 < argc) {
            if (app_parse_u32(argv[++i], 1, 65535, &e.port))
                return usage(argv[i]);
        } else if (strcmp(argv[i], "--max-clients") == 0 && i + 1 < argc) {
            if (app_parse_u32(argv[++i], 1, 4096, &e.max_clients))
                return usage(argv[i]);
        } else if (strcmp(argv[i], "--tcp-only") == 0) {
            e.udp = false;
        } else if (strcmp(argv[i], "--udp-only") == 0) {
            e.tcp = false;
        } else if (strcmp(argv[i], "--quiet") == 0) {
            e.quiet = true;
        } else {
            return usage(argv[i]);
        }
    }
    if (!e.tcp && !e.udp)
        return usage("--tcp-only with --udp-only");
    if (echo_setup(&e) != 0) {
        mk_log("cannot set up");
        return 1;
    }
    mk_log("echoing on port %u (%s%s%s)", (unsigned)e.port, e.tcp ? "TCP" : "", e.tcp && e.udp ? " and " : "",
           e.udp ? "UDP" : "");
    struct fs_epoll_event ev[ECHO_EVENTS];
    for (;;) {
        int n = fs_epoll_wait(e.ep, ev, ECHO_EVENTS, -1);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            mk_log("stopping: epoll_wait: %s (%llu connections, %llu datagrams served)",
                   strerror(errno), (unsigned long long)e.accepted, (unsigned long long)e.datagrams);
            return 0;
        }
        /* Each socket appears once per batch, so closing a client never
         * leaves a later event naming it. */
        for (int i = 0; i < n; i++) {
            watch_t *w = ev[i].data.ptr;
            if (w->kind == W_LISTEN)
                accept_all(&e, w->fd);
            else if (w->kind == W_UDP)
                udp_echo(&e, w->fd);
            else
                client_event(&e, (client_t *)w, ev[i].events);
        }
    }
}

/*
 * echo - TCP and UDP echo server (RFC 862) on ferry/socket.h; the same
 * source runs on Ferry and on native Linux sockets.
 *
 * usage: echo [--port N] [--max-clients N] [--tcp-only | --udp-only] [--quiet]
 * One thread, one poll loop over the listeners (IPv4 and IPv6), the UDP
 * sockets and the clients; every socket non-blocking; what a client's peer
 * does not take at once waits in that client's buffer (and the client is
 * not read meanwhile: back-pressure instead of unbounded memory).
 */
#include "apps.h"
#include "apputil.h"

#include <errno.h>
#include <ferry/mk.h>
#include <stdlib.h>
#include <string.h>

#define ECHO_BUF 16384

typedef struct client {
    int fd;
    uint32_t have, off; /* bytes in buf, and how many of them are sent */
    uint64_t echoed;
    uint8_t buf[ECHO_BUF];
} client_t;

typedef struct echo {
    uint32_t port, max_clients;
    bool tcp, udp, quiet;
    int lfd[2], ufd[2]; /* IPv4, IPv6; -1 = none */
    uint32_t nclients;
    client_t **clients;
    struct fs_pollfd *pfd;
    uint64_t accepted, datagrams;
} echo_t;

static int usage(const char *bad)
{
    mk_log("usage: echo [--port N] [--max-clients N] [--tcp-only | --udp-only] [--quiet] (bad: '%s')", bad);
    return 2;
}

static void client_close(echo_t *e, uint32_t i)
{
    client_t *c = e->clients[i];
    if (!e->quiet)
        mk_log("client %d closed after %llu bytes", c->fd, (unsigned long long)c->echoed);
    fs_close(c->fd);
    free(c);
    e->clients[i] = e->clients[--e->nclients];
}

/* Send what is pending; false if the client must go. */
static bool client_flush(client_t *c)
{
    while (c->off < c->have) {
        fs_ssize_t n = fs_send(c->fd, c->buf + c->off, c->have - c->off, FS_MSG_DONTWAIT);
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
    fs_ssize_t n = fs_recv(c->fd, c->buf, sizeof c->buf, FS_MSG_DONTWAIT);
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
        c->fd = fd;
        c->have = c->off = 0;
        c->echoed = 0;
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
        e->lfd[f] = e->tcp ? app_listen(fams[f], FS_SOCK_STREAM, (uint16_t)e->port, 128) : -1;
        e->ufd[f] = e->udp ? app_listen(fams[f], FS_SOCK_DGRAM, (uint16_t)e->port, 0) : -1;
    }
    /* IPv4 is required; IPv6 is used when the system has it. */
    if ((e->tcp && e->lfd[0] < 0) || (e->udp && e->ufd[0] < 0))
        return -1;
    e->clients = calloc(e->max_clients, sizeof *e->clients);
    e->pfd = calloc(e->max_clients + 4, sizeof *e->pfd);
    return e->clients && e->pfd ? 0 : -1;
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
    for (;;) {
        int fixed[4] = {e.lfd[0], e.lfd[1], e.ufd[0], e.ufd[1]};
        for (int k = 0; k < 4; k++)
            e.pfd[k] = (struct fs_pollfd){.fd = fixed[k], .events = FS_POLLIN};
        for (uint32_t i = 0; i < e.nclients; i++) {
            client_t *c = e.clients[i];
            e.pfd[4 + i] = (struct fs_pollfd){.fd = c->fd, .events = (short)(c->have ? FS_POLLOUT : FS_POLLIN)};
        }
        uint32_t n = e.nclients;
        if (fs_poll(e.pfd, 4 + n, -1) < 0) {
            if (errno == EINTR)
                continue;
            mk_log("stopping: poll: %s (%llu connections, %llu datagrams served)", strerror(errno),
                   (unsigned long long)e.accepted, (unsigned long long)e.datagrams);
            return 0;
        }
        /* Clients first, from the end, so that closing (swap with the last)
         * never skips one. */
        for (uint32_t i = n; i-- > 0;) {
            short r = e.pfd[4 + i].revents;
            if (r == 0)
                continue;
            client_t *c = e.clients[i];
            bool keep = (r & (FS_POLLERR | FS_POLLNVAL)) == 0;
            if (keep && c->have)
                keep = client_flush(c);
            else if (keep && (r & (FS_POLLIN | FS_POLLHUP)))
                keep = client_read(c);
            if (!keep)
                client_close(&e, i);
        }
        for (int k = 0; k < 2; k++) {
            if (e.pfd[k].revents)
                accept_all(&e, e.pfd[k].fd);
            if (e.pfd[2 + k].revents)
                udp_echo(&e, e.pfd[2 + k].fd);
        }
    }
}

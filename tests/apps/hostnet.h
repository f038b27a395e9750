/*
 * hostnet.h - host-side socket helpers of the application tests (real Linux
 * sockets on 127.0.0.1 and ::1 only).
 */
#ifndef FERRY_TESTS_HOSTNET_H
#define FERRY_TESTS_HOSTNET_H

#include <arpa/inet.h>
#include <check.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

/* A port free for TCP and UDP on 127.0.0.1 and ::1 (picked by the kernel). */
static inline int host_free_port(void)
{
    for (int tries = 0; tries < 50; tries++) {
        int s = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        socklen_t l = sizeof a;
        ck_assert_int_eq(bind(s, (void *)&a, sizeof a), 0);
        getsockname(s, (void *)&a, &l);
        close(s);
        int ok = 1;
        int types[2] = {SOCK_STREAM, SOCK_DGRAM};
        for (int t = 0; t < 2; t++) {
            int u = socket(AF_INET6, types[t], 0);
            struct sockaddr_in6 b = {.sin6_family = AF_INET6, .sin6_port = a.sin_port, .sin6_addr = in6addr_loopback};
            int one = 1;
            setsockopt(u, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
            ok &= bind(u, (void *)&b, sizeof b) == 0;
            close(u);
            int v = socket(AF_INET, types[t], 0);
            ok &= bind(v, (void *)&a, sizeof a) == 0;
            close(v);
        }
        if (ok)
            return ntohs(a.sin_port);
    }
    ck_abort_msg("no free port");
    return -1;
}

/* One TCP connection attempt to the loopback address of `family` at
 * `port`; the socket (receive timeout `rcv_timeout_s`) or -1. */
static inline int host_connect(int family, int port, int rcv_timeout_s)
{
    int s = socket(family, SOCK_STREAM, 0);
    int r;
    if (family == AF_INET) {
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                                .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        r = connect(s, (void *)&a, sizeof a);
    } else {
        struct sockaddr_in6 a = {.sin6_family = AF_INET6, .sin6_port = htons((uint16_t)port),
                                 .sin6_addr = in6addr_loopback};
        r = connect(s, (void *)&a, sizeof a);
    }
    if (r != 0) {
        close(s);
        return -1;
    }
    struct timeval tv = {.tv_sec = rcv_timeout_s};
    setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    return s;
}

#endif

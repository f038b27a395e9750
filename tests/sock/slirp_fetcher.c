/*
 * slirp_fetcher.c - the in-simulator side of test_sock_slirp.c: a task on
 * libferrysock that reaches the host through slirp's host aliases. Its own
 * file because ferry/socket.h and the Linux socket headers cannot meet in
 * one translation unit (s6_addr is a macro on Linux).
 */
#include "slirp_fetcher.h"

#include <errno.h>
#include <ferry/mk.h>
#include <ferry/socket.h>
#include <stdio.h>
#include <string.h>

#define MS 1000000ull

fetch_t fetch;

/* Inside Ferry: connect to the host alias (retrying while netsrv has no
 * address or route yet), send FETCH_BYTES, read them back, check. */
static int fetch_one(bool v6, uint64_t *got)
{
    union {
        struct fs_sockaddr sa;
        struct fs_sockaddr_in in;
        struct fs_sockaddr_in6 in6;
    } a;
    memset(&a, 0, sizeof a);
    fs_socklen_t len;
    if (v6) {
        static const uint8_t fec0_2[16] = {0xfe, 0xc0, [15] = 2};
        a.in6.sin6_family = FS_AF_INET6;
        a.in6.sin6_port = fs_htons(fetch.port);
        memcpy(a.in6.sin6_addr.s6_addr, fec0_2, 16);
        len = sizeof a.in6;
    } else {
        a.in.sin_family = FS_AF_INET;
        a.in.sin_port = fs_htons(fetch.port);
        a.in.sin_addr.s_addr = fs_htonl(0x0a000202u); /* 10.0.2.2 */
        len = sizeof a.in;
    }
    int fd = -1;
    for (int i = 0; i < 300 && fd < 0; i++) { /* 15 s: DHCP, SLAAC */
        fd = fs_socket(v6 ? FS_AF_INET6 : FS_AF_INET, FS_SOCK_STREAM, 0);
        if (fd >= 0 && fs_connect(fd, &a.sa, len) != 0) {
            fs_close(fd);
            fd = -1;
            mk_sleep_ns(50 * MS);
        }
    }
    if (fd < 0) {
        snprintf(fetch.why, sizeof fetch.why, "connect to the host alias (v6 %d): errno %d", v6,
                 errno);
        return -1;
    }
    static uint8_t buf[8192];
    uint64_t sent = 0;
    uint32_t k = v6 ? 6 : 4;
    while (*got < FETCH_BYTES) {
        if (sent < FETCH_BYTES) {
            size_t n = sizeof buf;
            for (size_t i = 0; i < n; i++)
                buf[i] = pat(k, sent + i);
            fs_ssize_t w = fs_send(fd, buf, n, 0);
            if (w <= 0)
                break;
            sent += (uint64_t)w;
        }
        while (*got < FETCH_BYTES) { /* what is there (all of it once everything is sent) */
            fs_ssize_t r = fs_recv(fd, buf, sizeof buf, sent < FETCH_BYTES ? FS_MSG_DONTWAIT : 0);
            if (r <= 0)
                break;
            for (fs_ssize_t i = 0; i < r; i++)
                if (buf[i] != pat(k, *got + (uint64_t)i)) {
                    snprintf(fetch.why, sizeof fetch.why, "byte %llu differs",
                             (unsigned long long)(*got + (uint64_t)i));
                    return -1;
                }
            *got += (uint64_t)r;
        }
    }
    fs_close(fd);
    return *got == FETCH_BYTES ? 0 : -1;
}

int fetcher_main(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fetch.stage = 1;
    if (fetch_one(false, &fetch.got4) != 0)
        return 1;
    fetch.stage = 2;
    if (fetch_one(true, &fetch.got6) != 0)
        return 2;
    fetch.stage = 3;
    return 0;
}


/*
 * apputil.c - see apputil.h. Portable: libc and ferry/socket.h only.
 */
#include "apputil.h"

#include <errno.h>
#include <ferry/mk.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int app_parse_u32(const char *s, uint32_t min, uint32_t max, uint32_t *out)
{
    if (s == NULL || *s < '0' || *s > '9')
        return -1;
    char *end;
    unsigned long long v = strtoull(s, &end, 10);
    if (*end != '\0' || v < min || v > max)
        return -1;
    *out = (uint32_t)v;
    return 0;
}

int app_listen(int family, int type, uint16_t port, int backlog)
{
    int fd = fs_socket(family, type | FS_SOCK_NONBLOCK, 0);
    if (fd < 0) {
        mk_log("socket(%s): %s", family == FS_AF_INET ? "IPv4" : "IPv6", strerror(errno));
        return -1;
    }
    int one = 1;
    fs_setsockopt(fd, FS_SOL_SOCKET, FS_SO_REUSEADDR, &one, sizeof one);
    struct fs_sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    fs_socklen_t len;
    if (family == FS_AF_INET) {
        struct fs_sockaddr_in *in = (void *)&ss;
        in->sin_family = FS_AF_INET;
        in->sin_port = fs_htons(port);
        len = sizeof *in;
    } else {
        fs_setsockopt(fd, FS_IPPROTO_IPV6, FS_IPV6_V6ONLY, &one, sizeof one);
        struct fs_sockaddr_in6 *in6 = (void *)&ss;
        in6->sin6_family = FS_AF_INET6;
        in6->sin6_port = fs_htons(port);
        len = sizeof *in6;
    }
    if (fs_bind(fd, (struct fs_sockaddr *)&ss, len) != 0 ||
        (type == FS_SOCK_STREAM && fs_listen(fd, backlog) != 0)) {
        mk_log("bind/listen %s port %u: %s", family == FS_AF_INET ? "IPv4" : "IPv6", port, strerror(errno));
        fs_close(fd);
        return -1;
    }
    return fd;
}

static int parse_v4(const char *t, uint8_t out[4])
{
    unsigned a[4];
    char tail;
    if (sscanf(t, "%u.%u.%u.%u%c", &a[0], &a[1], &a[2], &a[3], &tail) != 4)
        return -1;
    for (int i = 0; i < 4; i++) {
        if (a[i] > 255)
            return -1;
        out[i] = (uint8_t)a[i];
    }
    return 0;
}

/* IPv6 text with at most one "::" and no embedded IPv4. */
static int parse_v6(const char *t, uint8_t out[16])
{
    uint16_t head[8], tail[8];
    int nh = 0, nt = 0, gap = 0;
    const char *p = t;
    if (p[0] == ':' && p[1] == ':') {
        gap = 1;
        p += 2;
    }
    while (*p) {
        char *end;
        unsigned long v = strtoul(p, &end, 16);
        if (end == p || end - p > 4 || v > 0xffff)
            return -1;
        if (gap ? nt >= 8 : nh >= 8)
            return -1;
        if (gap)
            tail[nt++] = (uint16_t)v;
        else
            head[nh++] = (uint16_t)v;
        p = end;
        if (*p == '\0')
            break;
        if (*p != ':')
            return -1;
        p++;
        if (*p == ':') {
            if (gap)
                return -1;
            gap = 1;
            p++;
        } else if (*p == '\0') {
            return -1;
        }
    }
    if (nh + nt > 8 || (!gap && nh != 8) || (gap && nh + nt == 8))
        return -1;
    memset(out, 0, 16);
    for (int i = 0; i < nh; i++) {
        out[2 * i] = (uint8_t)(head[i] >> 8);
        out[2 * i + 1] = (uint8_t)head[i];
    }
    for (int i = 0; i < nt; i++) {
        out[16 - 2 * nt + 2 * i] = (uint8_t)(tail[i] >> 8);
        out[16 - 2 * nt + 2 * i + 1] = (uint8_t)tail[i];
    }
    return 0;
}

fs_socklen_t app_addr(const char *text, uint16_t port, struct fs_sockaddr_storage *ss)
{
    memset(ss, 0, sizeof *ss);
    uint8_t b[16];
    if (parse_v4(text, b) == 0) {
        struct fs_sockaddr_in *in = (void *)ss;
        in->sin_family = FS_AF_INET;
        in->sin_port = fs_htons(port);
        memcpy(&in->sin_addr.s_addr, b, 4);
        return sizeof *in;
    }
    if (parse_v6(text, b) == 0) {
        struct fs_sockaddr_in6 *in6 = (void *)ss;
        in6->sin6_family = FS_AF_INET6;
        in6->sin6_port = fs_htons(port);
        memcpy(in6->sin6_addr.s6_addr, b, 16);
        return sizeof *in6;
    }
    return 0;
}

const char *app_addr_str(const struct fs_sockaddr *sa, char *buf, unsigned len)
{
    if (sa->sa_family == FS_AF_INET) {
        const struct fs_sockaddr_in *in = (const void *)sa;
        const uint8_t *a = (const uint8_t *)&in->sin_addr.s_addr;
        snprintf(buf, len, "%u.%u.%u.%u:%u", a[0], a[1], a[2], a[3], fs_ntohs(in->sin_port));
    } else if (sa->sa_family == FS_AF_INET6) {
        const struct fs_sockaddr_in6 *in6 = (const void *)sa;
        const uint8_t *a = in6->sin6_addr.s6_addr;
        int n = snprintf(buf, len, "[");
        for (int i = 0; i < 16 && n > 0 && (unsigned)n < len; i += 2)
            n += snprintf(buf + n, len - (unsigned)n, "%s%x", i ? ":" : "", (unsigned)(a[i] << 8 | a[i + 1]));
        if (n > 0 && (unsigned)n < len)
            snprintf(buf + n, len - (unsigned)n, "]:%u", fs_ntohs(in6->sin6_port));
    } else {
        snprintf(buf, len, "?");
    }
    return buf;
}

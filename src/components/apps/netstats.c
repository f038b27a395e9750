/*
 * netstats.c - httpd's /stats page on Ferry: the network server's live
 * counters, read through netsrv.idl at each request (Ferry only: not in the
 * native builds), and the "httpd" component, which is httpd_main with that
 * provider set.
 *
 * What the page shows: netsrv's uptime and loop, each interface (address,
 * link, packets, bytes, drops, errors), the socket service (sessions,
 * sockets, clients with their own counters, deaths), and lwIP's TCP/UDP
 * counters and heap. Every call is bounded (1 s); a failed one ends the page
 * with what it had.
 */
#include "apps.h"

#include <ferry/mk.h>
#include <netsrv_client.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#define STATS_CALL_NS 1000000000ull

typedef struct page {
    char *buf;
    size_t len, at;
} page_t;

static void put(page_t *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void put(page_t *p, const char *fmt, ...)
{
    if (p->at + 1 >= p->len)
        return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(p->buf + p->at, p->len - p->at, fmt, ap);
    va_end(ap);
    if (n > 0)
        p->at = p->at + (size_t)n < p->len ? p->at + (size_t)n : p->len - 1;
}

static const char *ip4(uint32_t a, char *buf, size_t len)
{
    snprintf(buf, len, "%u.%u.%u.%u", (unsigned)(a >> 24), (unsigned)(a >> 16) & 255u,
             (unsigned)(a >> 8) & 255u, (unsigned)a & 255u);
    return buf;
}

static unsigned prefix_len(uint32_t mask)
{
    unsigned n = 0;
    for (; mask & 0x80000000u; mask <<= 1)
        n++;
    return n;
}

static void interfaces(page_t *p, mk_cap_t ep)
{
    uint32_t count = 0;
    if (netsrv_get_netif_count(ep, STATS_CALL_NS, &count) != 0)
        return;
    for (uint32_t i = 0; i < count; i++) {
        char name[NETSRV_NAME_MAX + 1], a[16], g[16];
        netsrv_netif_info_t ni;
        netsrv_counters_t c;
        if (netsrv_get_netif(ep, STATS_CALL_NS, i, name, &ni, &c) != 0)
            return;
        bool gw = ni.ipv4_gw != 0 && !(ni.flags & NETSRV_IF_LOOPBACK);
        put(p, "%-4s %s/%u%s%s%s%s\n", name, ip4(ni.ipv4_addr, a, sizeof a),
            prefix_len(ni.ipv4_mask), gw ? " gw " : "", gw ? ip4(ni.ipv4_gw, g, sizeof g) : "",
            (ni.flags & NETSRV_IF_DHCP_BOUND) ? " (DHCP)" : "",
            (ni.flags & NETSRV_IF_LINK_UP) ? ", link up" : "");
        if (ni.flags & NETSRV_IF_LOOPBACK)
            continue;
        put(p,
            "     rx %llu frames %llu bytes (%llu dropped, %llu bad); tx %llu frames %llu bytes "
            "(%llu dropped); ring faults %llu\n",
            (unsigned long long)c.rx_packets, (unsigned long long)c.rx_bytes,
            (unsigned long long)c.rx_drops, (unsigned long long)c.rx_errors,
            (unsigned long long)c.tx_packets, (unsigned long long)c.tx_bytes,
            (unsigned long long)c.tx_drops, (unsigned long long)c.ring_errors);
    }
}

static void sockets(page_t *p, mk_cap_t ep)
{
    netsrv_sock_stats_t s;
    if (netsrv_get_sock_stats(ep, STATS_CALL_NS, &s) != 0)
        return;
    put(p,
        "\nsockets: %u open in %u sessions; since start %llu created, %llu sessions, %llu client "
        "deaths (%llu sockets reaped), %llu bad requests; %llu bytes waiting for ring space\n",
        (unsigned)s.sockets, (unsigned)s.sessions, (unsigned long long)s.sockets_created,
        (unsigned long long)s.sessions_opened, (unsigned long long)s.client_deaths,
        (unsigned long long)s.sockets_reaped, (unsigned long long)s.bad_requests,
        (unsigned long long)s.pending_bytes);
    uint32_t n = 0;
    if (netsrv_get_client_count(ep, STATS_CALL_NS, &n) != 0)
        return;
    for (uint32_t i = 0; i < n; i++) {
        uint64_t badge;
        netsrv_client_stats_t c;
        if (netsrv_get_client_stats(ep, STATS_CALL_NS, i, &badge, &c) != 0)
            return;
        put(p,
            "  client %llu: %u sockets, %llu KiB; sent %llu bytes, received %llu bytes; %llu "
            "dropped, %llu refused requests\n",
            (unsigned long long)badge, (unsigned)c.sockets, (unsigned long long)(c.memory >> 10),
            (unsigned long long)c.tx_bytes, (unsigned long long)c.rx_bytes,
            (unsigned long long)c.drops, (unsigned long long)c.failures);
    }
}

static void lwip(page_t *p, mk_cap_t ep)
{
    char name[NETSRV_STAT_NAME_MAX + 1];
    netsrv_proto_stats_t ps;
    put(p, "\n");
    for (uint32_t i = 0; netsrv_get_proto_stats(ep, STATS_CALL_NS, i, name, &ps) == 0; i++)
        if (strcmp(name, "TCP") == 0 || strcmp(name, "UDP") == 0 || strcmp(name, "IP") == 0 ||
            strcmp(name, "IP6") == 0)
            put(p, "%-4s sent %llu, received %llu, dropped %llu\n", name,
                (unsigned long long)ps.xmit, (unsigned long long)ps.recv,
                (unsigned long long)ps.drop);
    netsrv_mem_stats_t ms;
    if (netsrv_get_mem_stats(ep, STATS_CALL_NS, 0, name, &ms) == 0)
        put(p, "lwIP heap: %llu of %llu bytes in use (peak %llu)\n", (unsigned long long)ms.used,
            (unsigned long long)ms.avail, (unsigned long long)ms.max);
}

/* httpd_stats_fn: the page, or -1 if netsrv cannot be asked. */
static int netsrv_page(char *buf, size_t len)
{
    mk_cap_t ep;
    netsrv_loop_stats_t loop;
    if (len == 0 || mk_cap_lookup("netsrv", &ep) != MK_OK ||
        netsrv_get_loop_stats(ep, STATS_CALL_NS, &loop) != 0)
        return -1;
    page_t p = {.buf = buf, .len = len};
    buf[0] = '\0';
    put(&p, "netsrv: up %.1f s; %llu loop turns, %llu requests, %llu notifications\n\n",
        (double)loop.uptime_ns / 1e9, (unsigned long long)loop.iterations,
        (unsigned long long)loop.requests, (unsigned long long)loop.notifications);
    interfaces(&p, ep);
    sockets(&p, ep);
    lwip(&p, ep);
    return (int)p.at;
}

int httpd_ferry_main(int argc, char **argv)
{
    httpd_set_stats(netsrv_page);
    return httpd_main(argc, argv);
}

/*
 * netmem - the network server's memory, read through netsrv.idl, as JSON
 * lines on stdout (Ferry only: the benchmark's probe for the memory an idle
 * TCP connection costs in netsrv).
 *
 * usage: netmem [--netsrv NAME] [--until-sockets N] [--timeout S]
 * Prints a snapshot at once. With --until-sockets, then waits until netsrv
 * has at least N sockets open and that number has not moved for 200 ms,
 * and prints a second snapshot (exit 1 if that does not happen within
 * --timeout seconds, default 120). Each snapshot is one line:
 *   {"netmem":K,"uptime_ns":T,"sockets":S,"heap_used":B,
 *    "pools":{"TCP_PCB":used,...},"clients":{"<badge>":bytes,...}}
 * K counts the snapshots from 0; heap_used is lwIP's heap in bytes; pools
 * are lwIP's memory pools in elements in use (their sizes are lwIP's build
 * constants, which netsrv.idl does not give: tools/bench/lwip-pools prints
 * them); clients are the socket service's clients by badge with the bytes
 * netsrv holds for each (session regions, socket tables, pending data).
 */
#include "apps.h"
#include "apputil.h"

#include <ferry/mk.h>
#include <netsrv_client.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#define NETMEM_CALL_NS 2000000000ull
#define NETMEM_POLL_NS 100000000ull
#define NETMEM_LINE 8192

typedef struct line {
    char buf[NETMEM_LINE];
    size_t at;
} line_t;

static void put(line_t *l, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void put(line_t *l, const char *fmt, ...)
{
    if (l->at + 1 >= sizeof l->buf)
        return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(l->buf + l->at, sizeof l->buf - l->at, fmt, ap);
    va_end(ap);
    if (n > 0)
        l->at = l->at + (size_t)n < sizeof l->buf ? l->at + (size_t)n : sizeof l->buf - 1;
}

/* One snapshot as a JSON line on stdout; -1 if a call failed. */
static int netmem_snapshot(mk_cap_t ep, unsigned k)
{
    static line_t l; /* one task runs this component at a time; 8 KiB off the stack */
    netsrv_sock_stats_t ss;
    netsrv_loop_stats_t ls;
    netsrv_mem_stats_t ms;
    char name[NETSRV_STAT_NAME_MAX + 1];
    if (netsrv_get_sock_stats(ep, NETMEM_CALL_NS, &ss) != 0 || netsrv_get_loop_stats(ep, NETMEM_CALL_NS, &ls) != 0 ||
        netsrv_get_mem_stats(ep, NETMEM_CALL_NS, 0, name, &ms) != 0)
        return -1;
    l.at = 0;
    put(&l, "{\"netmem\":%u,\"uptime_ns\":%llu,\"sockets\":%u,\"heap_used\":%llu,\"pools\":{", k,
        (unsigned long long)ls.uptime_ns, (unsigned)ss.sockets, (unsigned long long)ms.used);
    for (uint32_t i = 1; i < 256 && netsrv_get_mem_stats(ep, NETMEM_CALL_NS, i, name, &ms) == 0; i++)
        put(&l, "%s\"%s\":%llu", i > 1 ? "," : "", name, (unsigned long long)ms.used);
    put(&l, "},\"clients\":{");
    uint32_t n = 0;
    if (netsrv_get_client_count(ep, NETMEM_CALL_NS, &n) != 0)
        return -1;
    for (uint32_t i = 0; i < n; i++) {
        uint64_t badge;
        netsrv_client_stats_t cs;
        if (netsrv_get_client_stats(ep, NETMEM_CALL_NS, i, &badge, &cs) != 0)
            break; /* a client went in between: the list is shorter */
        put(&l, "%s\"%llu\":%llu", i ? "," : "", (unsigned long long)badge, (unsigned long long)cs.memory);
    }
    put(&l, "}}");
    printf("%s\n", l.buf);
    fflush(stdout);
    return 0;
}

static int netmem_sockets(mk_cap_t ep, uint32_t *n)
{
    netsrv_sock_stats_t ss;
    if (netsrv_get_sock_stats(ep, NETMEM_CALL_NS, &ss) != 0)
        return -1;
    *n = ss.sockets;
    return 0;
}

/* Until at least `want` sockets are open and their number stood still for
 * two polls; -1 on a failed call or at the deadline. */
static int netmem_settle(mk_cap_t ep, uint32_t want, uint64_t deadline)
{
    uint32_t last = UINT32_MAX, same = 0, n = 0;
    while (mk_time_ns() < deadline) {
        if (netmem_sockets(ep, &n) != 0)
            return -1;
        same = n == last ? same + 1 : 0;
        last = n;
        if (n >= want && same >= 2)
            return 0;
        mk_sleep_ns(NETMEM_POLL_NS);
    }
    mk_log("netsrv has %u sockets open, not %u, after the timeout", (unsigned)n, (unsigned)want);
    return -1;
}

int netmem_main(int argc, char **argv)
{
    const char *cap = "netsrv";
    uint32_t until = 0, timeout_s = 120;
    for (int i = 1; i < argc; i++) {
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(argv[i], "--netsrv") == 0 && v) {
            cap = v;
        } else if (strcmp(argv[i], "--until-sockets") == 0 && v) {
            if (app_parse_u32(v, 1, 1000000, &until) != 0) {
                mk_log("bad --until-sockets '%s'", v);
                return 2;
            }
        } else if (strcmp(argv[i], "--timeout") == 0 && v) {
            if (app_parse_u32(v, 1, 3600, &timeout_s) != 0) {
                mk_log("bad --timeout '%s' (seconds, 1 .. 3600)", v);
                return 2;
            }
        } else {
            mk_log("usage: netmem [--netsrv NAME] [--until-sockets N] [--timeout S]");
            return 2;
        }
        i++;
    }
    mk_cap_t ep;
    if (mk_cap_lookup(cap, &ep) != MK_OK) {
        mk_log("no capability '%s'", cap);
        return 1;
    }
    uint64_t deadline = mk_time_ns() + (uint64_t)timeout_s * 1000000000ull;
    if (netmem_snapshot(ep, 0) != 0 || (until > 0 && (netmem_settle(ep, until, deadline) != 0 ||
                                                       netmem_snapshot(ep, 1) != 0))) {
        mk_log("netsrv could not be asked, or did not get there");
        return 1;
    }
    return 0;
}

/*
 * ping - ICMP / ICMPv6 echo through the network server: Ferry only (no
 * native build: raw ICMP needs privileges on Linux).
 *
 * usage: ping [-c N] [-i MS] [-W MS] [-s BYTES] [--netsrv NAME] ADDR
 *   -c N       echo requests to send (1 .. 1000, default 4)
 *   -i MS      interval between requests in milliseconds (1 .. 60000, default 1000)
 *   -W MS      how long to wait for each reply (1 .. 60000, default 1000)
 *   -s BYTES   payload bytes per request (0 .. 1452, default 56)
 *   --netsrv   name of the netsrv endpoint capability (default "netsrv")
 *   ADDR       IPv4 (a.b.c.d) or IPv6 address; a link-local IPv6 address
 *              takes netsrv's interface number as "%N" (interface index + 1)
 *
 * Each request is one netsrv.idl `ping` call with count 1 (netsrv defers
 * the answer until the reply or -W has passed; it goes on serving others
 * meanwhile), so every reply gets its own line with its round-trip time as
 * netsrv measured it. Then a summary: transmitted, received, loss, rtt
 * min/avg/max. "Network unreachable" (no route yet: a ping task may start
 * before DHCP is done) counts as a lost request, and ping goes on; any
 * other refusal by netsrv or a failed call ends it. Exit status: 0 if any
 * reply came, 1 if none or on an error, 2 for a bad command line.
 */
#include "apps.h"
#include "apputil.h"

#include <errno.h>
#include <ferry/mk.h>
#include <netsrv_client.h>
#include <stdio.h>
#include <string.h>

#define PING_MS 1000000ull
#define PING_BUSY_RETRIES 20 /* netsrv's ping slots are all taken: wait and retry */

typedef struct ping {
    uint32_t count, interval_ms, wait_ms, size;
    const char *netsrv, *target;
    netsrv_addr_t dst;
    mk_cap_t ep;
    uint32_t transmitted, received, errors;
    uint64_t rtt_min, rtt_max, rtt_sum;
} ping_t;

static int ping_usage(const char *why, const char *what)
{
    mk_log("%s%s%s", why, what ? ": " : "", what ? what : "");
    mk_log("usage: ping [-c N] [-i MS] [-W MS] [-s BYTES] [--netsrv NAME] ADDR");
    return 2;
}

/* ADDR (with an optional "%N" scope for IPv6) into netsrv's address form. */
static int ping_parse_addr(const char *text, netsrv_addr_t *a)
{
    char host[64];
    uint32_t scope = 0;
    const char *pct = strchr(text, '%');
    size_t len = pct ? (size_t)(pct - text) : strlen(text);
    if (len >= sizeof host)
        return -1;
    memcpy(host, text, len);
    host[len] = '\0';
    if (pct != NULL && app_parse_u32(pct + 1, 1, 255, &scope) != 0)
        return -1;
    _Alignas(8) struct fs_sockaddr_storage ss; /* only 2-byte aligned by itself */
    if (app_addr(host, 0, &ss) == 0)
        return -1;
    memset(a, 0, sizeof *a);
    if (ss.ss_family == FS_AF_INET) {
        if (pct != NULL)
            return -1;
        const uint8_t *b = (const uint8_t *)&((struct fs_sockaddr_in *)&ss)->sin_addr.s_addr;
        a->family = NETSRV_AF_INET;
        a->lo = (uint64_t)b[0] << 24 | (uint64_t)b[1] << 16 | (uint64_t)b[2] << 8 | b[3];
        return 0;
    }
    const uint8_t *b = ((struct fs_sockaddr_in6 *)&ss)->sin6_addr.s6_addr;
    a->family = NETSRV_AF_INET6;
    a->scope = scope;
    for (int i = 0; i < 8; i++) {
        a->hi = a->hi << 8 | b[i];
        a->lo = a->lo << 8 | b[8 + i];
    }
    return 0;
}

static const char *ping_strerror(int32_t st)
{
    switch (st) {
    case NETSRV_EINVAL: return "netsrv refused the request (address or argument out of range)";
    case NETSRV_EBUSY: return "netsrv is busy (all ping slots in use)";
    case NETSRV_ENETUNREACH: return "network unreachable";
    default: return idl_is_protocol_error(st) ? idl_protocol_strerror(st) : mk_strerror(st);
    }
}

/* One echo request; 1 if answered, 0 if not, -1 on an error. */
static int ping_one(ping_t *p, uint32_t seq)
{
    netsrv_ping_result_t r;
    uint64_t call_timeout = ((uint64_t)p->wait_ms + 2000) * PING_MS;
    int32_t st;
    for (int k = 0;; k++) {
        st = netsrv_ping(p->ep, call_timeout, &p->dst, 1, p->size, 1, p->wait_ms, &r);
        if (st != NETSRV_EBUSY || k == PING_BUSY_RETRIES)
            break;
        mk_sleep_ns(50 * PING_MS);
    }
    if (st == NETSRV_ENETUNREACH) {
        /* Counted as sent and lost, as ping(8) does; the route may come
         * (a ping task may start before DHCP is done). */
        p->transmitted++;
        p->errors++;
        printf("seq=%u: %s\n", (unsigned)seq, ping_strerror(st));
        return 0;
    }
    if (st != 0) {
        printf("ping %s: %s\n", p->target, ping_strerror(st));
        return -1;
    }
    p->transmitted += r.transmitted;
    if (r.received == 0) {
        if (r.send_errors)
            printf("seq=%u: not sent (netsrv could not send it)\n", (unsigned)seq);
        else
            printf("seq=%u: no reply within %u ms\n", (unsigned)seq, (unsigned)p->wait_ms);
        return 0;
    }
    uint64_t rtt = r.rtt_min_ns;
    p->received++;
    p->rtt_sum += rtt;
    if (p->received == 1 || rtt < p->rtt_min)
        p->rtt_min = rtt;
    if (rtt > p->rtt_max)
        p->rtt_max = rtt;
    printf("%u bytes from %s: seq=%u time=%.3f ms\n", (unsigned)(p->size + 8), p->target, (unsigned)seq,
           (double)rtt / 1e6);
    return 1;
}

static void ping_summary(const ping_t *p)
{
    uint32_t lost = p->transmitted > p->received ? p->transmitted - p->received : 0;
    printf("--- %s ping statistics ---\n", p->target);
    char errs[32] = "";
    if (p->errors)
        snprintf(errs, sizeof errs, ", +%u errors", (unsigned)p->errors);
    printf("%u packets transmitted, %u received%s, %.1f%% packet loss\n", (unsigned)p->transmitted,
           (unsigned)p->received, errs, p->transmitted ? (double)lost * 100.0 / p->transmitted : 0.0);
    if (p->received > 0)
        printf("rtt min/avg/max = %.3f/%.3f/%.3f ms\n", (double)p->rtt_min / 1e6,
               (double)p->rtt_sum / p->received / 1e6, (double)p->rtt_max / 1e6);
    fflush(stdout);
}

static int ping_args(ping_t *p, int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        uint32_t *dst = NULL, lo = 0, hi = 0;
        if (strcmp(a, "-c") == 0) {
            dst = &p->count, lo = 1, hi = NETSRV_PING_COUNT_MAX;
        } else if (strcmp(a, "-i") == 0) {
            dst = &p->interval_ms, lo = 1, hi = 60000;
        } else if (strcmp(a, "-W") == 0) {
            dst = &p->wait_ms, lo = 1, hi = 60000;
        } else if (strcmp(a, "-s") == 0) {
            dst = &p->size, lo = 0, hi = NETSRV_PING_SIZE_MAX;
        } else if (strcmp(a, "--netsrv") == 0 && v != NULL && *v != '\0') {
            p->netsrv = argv[++i];
            continue;
        } else if (a[0] != '-' && p->target == NULL) {
            p->target = a;
            continue;
        } else {
            return ping_usage(p->target && a[0] != '-' ? "more than one address" : "unknown argument or missing value", a);
        }
        if (v == NULL || app_parse_u32(v, lo, hi, dst) != 0) {
            mk_log("%s takes a number %u .. %u", a, (unsigned)lo, (unsigned)hi);
            return ping_usage("bad value", v);
        }
        i++;
    }
    if (p->target == NULL)
        return ping_usage("missing address", NULL);
    if (ping_parse_addr(p->target, &p->dst) != 0)
        return ping_usage("not an IPv4 or IPv6 address", p->target);
    if (p->dst.family == NETSRV_AF_INET6 && (p->dst.hi >> 54) == 0x3fa && p->dst.scope == 0)
        return ping_usage("a link-local address needs its interface: ADDR%N (N = netsrv's interface index + 1)",
                          p->target);
    return 0;
}

int ping_main(int argc, char **argv)
{
    ping_t p = {.count = 4, .interval_ms = 1000, .wait_ms = 1000, .size = 56, .netsrv = "netsrv"};
    int r = ping_args(&p, argc, argv);
    if (r != 0)
        return r;
    mk_err_t e = mk_cap_lookup(p.netsrv, &p.ep);
    if (e != MK_OK) {
        mk_log("no netsrv endpoint capability '%s': %s", p.netsrv, mk_strerror(e));
        return 1;
    }
    printf("PING %s: %u data bytes\n", p.target, (unsigned)p.size);
    fflush(stdout);
    int status = 0;
    for (uint32_t seq = 1; seq <= p.count && status == 0; seq++) {
        uint64_t t0 = mk_time_ns();
        if (ping_one(&p, seq) < 0)
            status = 1;
        fflush(stdout);
        uint64_t next = t0 + (uint64_t)p.interval_ms * PING_MS, now = mk_time_ns();
        if (status == 0 && seq < p.count && now < next)
            mk_sleep_ns(next - now);
    }
    ping_summary(&p);
    return status != 0 || p.received == 0 ? 1 : 0;
}

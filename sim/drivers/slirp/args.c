/*
 * args.c - the slirp driver's command line.
 *
 * A forward is PROTO:HOSTADDR:HOSTPORT-GUESTADDR:GUESTPORT with PROTO tcp or
 * udp, IPv6 addresses in brackets. The host side must be loopback
 * (127.0.0.0/8 or ::1): slirp listens there, and binding anything else would
 * open the simulator to the network. The guest side must be an address of
 * the virtual network that slirp may hand to the guest (not the network,
 * host, DNS or broadcast address).
 */
#include "args.h"

#include "slirp_net.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Split "ADDR:PORT" (ADDR may be "[v6]") at `s`; returns the address in
 * addr (without brackets) and the port. */
static int split_addr_port(const char *s, char *addr, size_t addrlen, long *port, bool *v6)
{
    const char *colon;
    if (s[0] == '[') {
        const char *close = strchr(s, ']');
        if (close == NULL || close[1] != ':' || (size_t)(close - s - 1) >= addrlen)
            return -1;
        memcpy(addr, s + 1, (size_t)(close - s - 1));
        addr[close - s - 1] = '\0';
        colon = close + 1;
        *v6 = true;
    } else {
        colon = strchr(s, ':');
        if (colon == NULL || (size_t)(colon - s) >= addrlen)
            return -1;
        memcpy(addr, s, (size_t)(colon - s));
        addr[colon - s] = '\0';
        *v6 = false;
    }
    char *end;
    errno = 0;
    *port = strtol(colon + 1, &end, 10);
    if (colon[1] == '\0' || *end != '\0' || errno != 0)
        return -1;
    return 0;
}

static int fail(char *err, size_t errlen, const char *spec, const char *why)
{
    snprintf(err, errlen, "--forward '%s': %s", spec, why);
    return -1;
}

static bool guest4_ok(uint32_t a)
{
    uint32_t host = a & ~SLIRP_MASK4;
    return (a & SLIRP_MASK4) == SLIRP_NET4 && a != SLIRP_HOST4 && a != SLIRP_DNS4 && host != 0 &&
           host != 0xff;
}

static bool guest6_ok(const struct in6_addr *a)
{
    static const uint8_t prefix[16] = SLIRP_PREFIX6;
    static const uint8_t host[16] = SLIRP_HOST6;
    static const uint8_t dns[16] = SLIRP_DNS6;
    static const uint8_t zero[8] = {0};
    return memcmp(a->s6_addr, prefix, SLIRP_PREFIX6_LEN / 8) == 0 &&
           memcmp(a->s6_addr, host, 16) != 0 && memcmp(a->s6_addr, dns, 16) != 0 &&
           memcmp(a->s6_addr + 8, zero, 8) != 0;
}

int slirp_forward_parse(const char *spec, slirp_forward_t *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    size_t speclen = strlen(spec);
    if (speclen >= sizeof out->spec)
        return fail(err, errlen, spec, "too long");
    memcpy(out->spec, spec, speclen + 1);
    const char *rest;
    if (strncmp(spec, "tcp:", 4) == 0) {
        rest = spec + 4;
    } else if (strncmp(spec, "udp:", 4) == 0) {
        rest = spec + 4;
        out->udp = true;
    } else {
        return fail(err, errlen, spec, "must start with tcp: or udp:");
    }
    /* The '-' between the two halves: the first one after the host port
     * (addresses contain no '-'). */
    const char *dash = strchr(rest, '-');
    if (dash == NULL)
        return fail(err, errlen, spec, "expected HOSTADDR:PORT-GUESTADDR:PORT");
    char host_part[64], guest_part[64];
    if ((size_t)(dash - rest) >= sizeof host_part || strlen(dash + 1) >= sizeof guest_part)
        return fail(err, errlen, spec, "address too long");
    memcpy(host_part, rest, (size_t)(dash - rest));
    host_part[dash - rest] = '\0';
    snprintf(guest_part, sizeof guest_part, "%s", dash + 1);

    char haddr[INET6_ADDRSTRLEN], gaddr[INET6_ADDRSTRLEN];
    long hport, gport;
    bool hv6, gv6;
    if (split_addr_port(host_part, haddr, sizeof haddr, &hport, &hv6) != 0)
        return fail(err, errlen, spec, "bad host side (expected ADDR:PORT or [ADDR6]:PORT)");
    if (split_addr_port(guest_part, gaddr, sizeof gaddr, &gport, &gv6) != 0)
        return fail(err, errlen, spec, "bad guest side (expected ADDR:PORT or [ADDR6]:PORT)");
    if (hport < 1 || hport > 65535 || gport < 1 || gport > 65535)
        return fail(err, errlen, spec, "ports must be 1..65535");
    if (hv6 != gv6)
        return fail(err, errlen, spec, "host and guest addresses must be of one family");

    if (!hv6) {
        struct sockaddr_in *h = (struct sockaddr_in *)&out->host;
        struct sockaddr_in *g = (struct sockaddr_in *)&out->guest;
        if (inet_pton(AF_INET, haddr, &h->sin_addr) != 1)
            return fail(err, errlen, spec, "host address is not an IPv4 address");
        if (inet_pton(AF_INET, gaddr, &g->sin_addr) != 1)
            return fail(err, errlen, spec, "guest address is not an IPv4 address");
        if ((ntohl(h->sin_addr.s_addr) >> 24) != 127)
            return fail(err, errlen, spec, "host address must be loopback (127.0.0.0/8)");
        if (!guest4_ok(ntohl(g->sin_addr.s_addr)))
            return fail(err, errlen, spec,
                        "guest address must be a guest address in 10.0.2.0/24 "
                        "(not .0, .2, .3 or .255)");
        h->sin_family = g->sin_family = AF_INET;
        h->sin_port = htons((uint16_t)hport);
        g->sin_port = htons((uint16_t)gport);
        out->len = sizeof(struct sockaddr_in);
    } else {
        struct sockaddr_in6 *h = (struct sockaddr_in6 *)&out->host;
        struct sockaddr_in6 *g = (struct sockaddr_in6 *)&out->guest;
        if (inet_pton(AF_INET6, haddr, &h->sin6_addr) != 1)
            return fail(err, errlen, spec, "host address is not an IPv6 address");
        if (inet_pton(AF_INET6, gaddr, &g->sin6_addr) != 1)
            return fail(err, errlen, spec, "guest address is not an IPv6 address");
        if (!IN6_IS_ADDR_LOOPBACK(&h->sin6_addr))
            return fail(err, errlen, spec, "host address must be loopback ([::1])");
        if (!guest6_ok(&g->sin6_addr))
            return fail(err, errlen, spec,
                        "guest address must be a guest address in fec0::/64 "
                        "(not fec0::, fec0::2 or fec0::3)");
        h->sin6_family = g->sin6_family = AF_INET6;
        h->sin6_port = htons((uint16_t)hport);
        g->sin6_port = htons((uint16_t)gport);
        out->len = sizeof(struct sockaddr_in6);
    }
    return 0;
}

int slirp_args_parse(int argc, char **argv, slirp_args_t *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    out->endpoint = "nic";
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        bool has_value = i + 1 < argc;
        if (strcmp(a, "--endpoint") == 0 && has_value) {
            out->endpoint = argv[++i];
            if (out->endpoint[0] == '\0') {
                snprintf(err, errlen, "--endpoint: empty name");
                return -1;
            }
        } else if (strcmp(a, "--forward") == 0 && has_value) {
            if (out->nforwards == SLIRP_ARGS_MAX_FORWARDS) {
                snprintf(err, errlen, "--forward '%s': more than %d forwards", argv[i + 1],
                         SLIRP_ARGS_MAX_FORWARDS);
                return -1;
            }
            if (slirp_forward_parse(argv[++i], &out->forwards[out->nforwards], err, errlen) != 0)
                return -1;
            out->nforwards++;
        } else if (strcmp(a, "--endpoint") == 0 || strcmp(a, "--forward") == 0) {
            snprintf(err, errlen, "%s: missing value", a);
            return -1;
        } else {
            snprintf(err, errlen,
                     "unknown argument '%s' (expected --endpoint NAME, --forward SPEC)", a);
            return -1;
        }
    }
    return 0;
}

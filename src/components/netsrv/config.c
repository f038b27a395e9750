/*
 * config.c - netsrv's command line, checked completely before anything
 * starts. Options after a --nic apply to that NIC.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "netsrv_priv.h"

const char netsrv_usage[] =
    "usage: netsrv [--ep NAME] [--hostname NAME] [--client-sockets N] [--client-memory N[K|M|G]] "
    "[--nic NAME [--ip dhcp|off|A.B.C.D/NN] [--gw A.B.C.D] [--ip6 slaac|link-local|off] "
    "[--bufs N] [--buf-size N]]...";

static int fail(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int fail(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return -1;
}

/* Decimal number without sign, leading junk or overflow past `max`. */
static int parse_uint(const char *s, uint32_t max, uint32_t *out)
{
    uint64_t v = 0;
    if (*s == '\0')
        return -1;
    for (; *s; s++) {
        if (*s < '0' || *s > '9')
            return -1;
        v = v * 10 + (uint64_t)(*s - '0');
        if (v > max)
            return -1;
    }
    *out = (uint32_t)v;
    return 0;
}

/* A byte count: decimal with an optional K, M or G suffix (powers of 1024). */
static int parse_bytes(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
    uint64_t v = 0;
    const char *c = s;
    for (; *c >= '0' && *c <= '9'; c++) {
        v = v * 10 + (uint64_t)(*c - '0');
        if (v > max)
            return -1;
    }
    if (c == s)
        return -1;
    unsigned shift = 0;
    if (*c == 'K' || *c == 'k')
        shift = 10;
    else if (*c == 'M' || *c == 'm')
        shift = 20;
    else if (*c == 'G' || *c == 'g')
        shift = 30;
    if (shift != 0)
        c++;
    if (*c != '\0' || v > (max >> shift))
        return -1;
    v <<= shift;
    if (v < min)
        return -1;
    *out = v;
    return 0;
}

char *netsrv_ip4_format(uint32_t a, char buf[static NETSRV_IP4_STRLEN])
{
    snprintf(buf, NETSRV_IP4_STRLEN, "%u.%u.%u.%u", (unsigned)(a >> 24), (unsigned)(a >> 16) & 255u,
             (unsigned)(a >> 8) & 255u, (unsigned)a & 255u);
    return buf;
}

/* Strict dotted quad: four decimal numbers 0..255 (no "10.1" shorthand,
 * no octal, no hex). Result in host order. `end` (may be NULL) receives the
 * first character after the address; without it the string must end. */
static int parse_ip4(const char *s, uint32_t *out, const char **end)
{
    uint32_t v = 0;
    for (int part = 0; part < 4; part++) {
        uint32_t octet = 0;
        int digits = 0;
        while (*s >= '0' && *s <= '9' && digits < 4) {
            octet = octet * 10 + (uint32_t)(*s++ - '0');
            digits++;
        }
        if (digits == 0 || digits > 3 || octet > 255)
            return -1;
        v = (v << 8) | octet;
        if (part < 3 && *s++ != '.')
            return -1;
    }
    if (end != NULL)
        *end = s;
    else if (*s != '\0')
        return -1;
    *out = v;
    return 0;
}

static int check_name(const char *what, const char *name, size_t max, char *err, size_t errlen)
{
    size_t len = strlen(name);
    if (len == 0 || len > max)
        return fail(err, errlen, "%s '%s': must have 1 to %zu characters", what, name, max);
    for (const char *c = name; *c; c++)
        if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') ||
              *c == '-' || *c == '_' || *c == '.'))
            return fail(err, errlen, "%s '%s': only letters, digits, '-', '_' and '.' are allowed",
                        what, name);
    return 0;
}

/* --ip A.B.C.D/NN: a unicast host address of its subnet. */
static int parse_static(netsrv_nic_config_t *n, const char *v, char *err, size_t errlen)
{
    const char *rest;
    uint32_t addr, prefix;
    if (parse_ip4(v, &addr, &rest) != 0 || *rest != '/' || parse_uint(rest + 1, 32, &prefix) != 0 ||
        prefix == 0)
        return fail(err, errlen, "--ip '%s': expected dhcp, off or A.B.C.D/NN with NN in 1..32", v);
    uint32_t mask = prefix == 32 ? 0xffffffffu : ~(0xffffffffu >> prefix);
    uint32_t top = addr >> 24;
    if (top == 0 || top == 127 || top >= 224)
        return fail(err, errlen, "--ip '%s': not a unicast host address", v);
    if (prefix <= 30 && ((addr & ~mask) == 0 || (addr & ~mask) == ~mask))
        return fail(err, errlen,
                    "--ip '%s': that is the network or broadcast address of the subnet", v);
    n->ip4 = NETSRV_IP4_STATIC;
    n->addr = addr;
    n->mask = mask;
    return 0;
}

/* The value of option argv[*i], or NULL after reporting it missing. */
static const char *value_of(int argc, char **argv, int *i, char *err, size_t errlen)
{
    if (*i + 1 >= argc) {
        fail(err, errlen, "%s needs a value", argv[*i]);
        return NULL;
    }
    return argv[++*i];
}

static int parse_nic_option(netsrv_nic_config_t *n, const char *opt, const char *v, char *err,
                            size_t errlen)
{
    if (strcmp(opt, "--ip") == 0) {
        if (strcmp(v, "dhcp") == 0)
            n->ip4 = NETSRV_IP4_DHCP;
        else if (strcmp(v, "off") == 0)
            n->ip4 = NETSRV_IP4_OFF;
        else
            return parse_static(n, v, err, errlen);
        return 0;
    }
    if (strcmp(opt, "--gw") == 0) {
        if (parse_ip4(v, &n->gw, NULL) != 0 || n->gw == 0)
            return fail(err, errlen, "--gw '%s': expected an address A.B.C.D", v);
        return 0;
    }
    if (strcmp(opt, "--ip6") == 0) {
        if (strcmp(v, "slaac") == 0)
            n->ip6 = NETSRV_IP6_SLAAC;
        else if (strcmp(v, "link-local") == 0)
            n->ip6 = NETSRV_IP6_LINKLOCAL;
        else if (strcmp(v, "off") == 0)
            n->ip6 = NETSRV_IP6_OFF;
        else
            return fail(err, errlen, "--ip6 '%s': expected slaac, link-local or off", v);
        return 0;
    }
    if (strcmp(opt, "--bufs") == 0) {
        if (parse_uint(v, NIC_REGION_BUFS_MAX, &n->nbufs) != 0 || n->nbufs < NIC_REGION_BUFS_MIN ||
            (n->nbufs & (n->nbufs - 1)) != 0)
            return fail(err, errlen, "--bufs '%s': expected a power of two from %u to %u", v,
                        (unsigned)NIC_REGION_BUFS_MIN, (unsigned)NIC_REGION_BUFS_MAX);
        return 0;
    }
    /* --buf-size */
    if (parse_uint(v, NIC_REGION_BUF_MAX, &n->buf_size) != 0 || n->buf_size < NIC_REGION_BUF_MIN ||
        n->buf_size % NIC_REGION_ALIGN != 0)
        return fail(err, errlen, "--buf-size '%s': expected a multiple of %u from %u to %u", v,
                    (unsigned)NIC_REGION_ALIGN, (unsigned)NIC_REGION_BUF_MIN,
                    (unsigned)NIC_REGION_BUF_MAX);
    return 0;
}

/* Rules that involve several options of one NIC. */
static int check_nic(const netsrv_nic_config_t *n, char *err, size_t errlen)
{
    if (n->gw == 0)
        return 0;
    if (n->ip4 != NETSRV_IP4_STATIC)
        return fail(err, errlen, "--nic %s: --gw needs a static --ip A.B.C.D/NN", n->name);
    if ((n->gw & n->mask) != (n->addr & n->mask) || n->gw == n->addr)
        return fail(err, errlen, "--nic %s: gateway %s is not another address of the subnet",
                    n->name, netsrv_ip4_format(n->gw, (char[NETSRV_IP4_STRLEN]){0}));
    return 0;
}

int netsrv_config_parse(netsrv_config_t *cfg, int argc, char **argv, char *err, size_t errlen)
{
    memset(cfg, 0, sizeof *cfg);
    strcpy(cfg->ep_name, "netsrv");
    strcpy(cfg->hostname, "ferry");
    cfg->client_sockets = NETSRV_CLIENT_SOCKETS_DEFAULT;
    cfg->client_memory = NETSRV_CLIENT_MEMORY_DEFAULT;
    netsrv_nic_config_t *nic = NULL;

    for (int i = 1; i < argc; i++) {
        const char *opt = argv[i];
        bool per_nic = strcmp(opt, "--ip") == 0 || strcmp(opt, "--gw") == 0 ||
                       strcmp(opt, "--ip6") == 0 || strcmp(opt, "--bufs") == 0 ||
                       strcmp(opt, "--buf-size") == 0;
        if (!per_nic && strcmp(opt, "--nic") != 0 && strcmp(opt, "--ep") != 0 &&
            strcmp(opt, "--hostname") != 0 && strcmp(opt, "--client-sockets") != 0 &&
            strcmp(opt, "--client-memory") != 0)
            return fail(err, errlen, "unknown argument '%s'", opt);
        const char *v = value_of(argc, argv, &i, err, errlen);
        if (v == NULL)
            return -1;
        if (strcmp(opt, "--ep") == 0) {
            if (check_name("--ep", v, NETSRV_CAPNAME_MAX, err, errlen) != 0)
                return -1;
            strcpy(cfg->ep_name, v);
        } else if (strcmp(opt, "--hostname") == 0) {
            if (check_name("--hostname", v, NETSRV_HOSTNAME_MAX, err, errlen) != 0)
                return -1;
            strcpy(cfg->hostname, v);
        } else if (strcmp(opt, "--client-sockets") == 0) {
            if (parse_uint(v, NETSRV_CLIENT_SOCKETS_DEFAULT, &cfg->client_sockets) != 0 ||
                cfg->client_sockets == 0)
                return fail(err, errlen, "--client-sockets '%s': expected a number from 1 to %u",
                            v, NETSRV_CLIENT_SOCKETS_DEFAULT);
        } else if (strcmp(opt, "--client-memory") == 0) {
            if (parse_bytes(v, NETSRV_CLIENT_MEMORY_MIN, NETSRV_CLIENT_MEMORY_MAX,
                            &cfg->client_memory) != 0)
                return fail(err, errlen,
                            "--client-memory '%s': expected bytes (N, NK, NM or NG) from 64K to 64G",
                            v);
        } else if (strcmp(opt, "--nic") == 0) {
            if (nic != NULL && check_nic(nic, err, errlen) != 0)
                return -1;
            if (cfg->nnics == NETSRV_NICS_MAX)
                return fail(err, errlen, "--nic %s: at most %d NICs", v, NETSRV_NICS_MAX);
            if (check_name("--nic", v, NETSRV_NAME_MAX, err, errlen) != 0)
                return -1;
            if (strcmp(v, "lo") == 0)
                return fail(err, errlen, "--nic lo: the name is taken by the loopback interface");
            for (unsigned k = 0; k < cfg->nnics; k++)
                if (strcmp(cfg->nics[k].name, v) == 0)
                    return fail(err, errlen, "--nic %s: named twice", v);
            nic = &cfg->nics[cfg->nnics++];
            strcpy(nic->name, v);
            nic->nbufs = NETSRV_BUFS_DEFAULT;
            nic->buf_size = NETSRV_BUF_SIZE_DEFAULT;
        } else if (nic == NULL) {
            return fail(err, errlen, "%s applies to a NIC: put it after --nic NAME", opt);
        } else if (parse_nic_option(nic, opt, v, err, errlen) != 0) {
            return -1;
        }
    }
    if (nic != NULL && check_nic(nic, err, errlen) != 0)
        return -1;
    return 0;
}

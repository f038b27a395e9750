/*
 * control.c - netsrv.idl: handlers only. The generated dispatcher has
 * decoded and validated every request before a handler runs (decode), so a
 * handler only looks things up (invoke); none blocks.
 *
 * Interface indices: 0 .. nnics - 1 are the NIC netifs in --nic order (those
 * whose session opened), nnics is lwIP's loopback netif "lo".
 */
#include <string.h>

#include "lwip/dhcp.h"
#include "lwip/memp.h"
#include "lwip/stats.h"
#include "netsrv_priv.h"

uint32_t netsrv_ip4_host(const ip4_addr_t *a)
{
    return a != NULL ? lwip_ntohl(ip4_addr_get_u32(a)) : 0;
}

struct netif *netsrv_netif_at(netsrv_t *s, uint32_t index)
{
    if (index < s->nnics)
        return &s->nics[index]->netif;
    return index == s->nnics ? s->loopif : NULL;
}

static void copy_name(char *dst, size_t size, const char *src)
{
    strncpy(dst, src != NULL ? src : "?", size - 1);
    dst[size - 1] = '\0';
}

static int32_t get_netif_count(void *ctx, const mk_recv_info_t *info, uint32_t *count)
{
    netsrv_t *s = ctx;
    (void)info;
    *count = s->nnics + 1;
    return 0;
}

static uint32_t netif_flags(const netsrv_t *s, struct netif *netif)
{
    uint32_t f = 0;
    if (netif_is_up(netif))
        f |= NETSRV_IF_UP;
    if (netif_is_link_up(netif))
        f |= NETSRV_IF_LINK_UP;
    if (netif == s->loopif)
        f |= NETSRV_IF_LOOPBACK;
    if (netif == netif_default)
        f |= NETSRV_IF_DEFAULT;
    if (netif->ip6_autoconfig_enabled)
        f |= NETSRV_IF_IP6_AUTOCONFIG;
    if (netif->state != NULL && ((const netsrv_nic_t *)netif->state)->cfg->ip4 == NETSRV_IP4_DHCP)
        f |= NETSRV_IF_DHCP;
    if (netif->state != NULL && ((const netsrv_nic_t *)netif->state)->gone)
        f |= NETSRV_IF_NO_DRIVER;
    if (dhcp_supplied_address(netif))
        f |= NETSRV_IF_DHCP_BOUND;
    return f;
}

static int32_t get_netif(void *ctx, const mk_recv_info_t *info, uint32_t index,
                         char name[static NETSRV_NAME_MAX + 1], netsrv_netif_info_t *n,
                         netsrv_counters_t *c)
{
    netsrv_t *s = ctx;
    (void)info;
    struct netif *netif = netsrv_netif_at(s, index);
    if (netif == NULL)
        return NETSRV_ENOENT;
    copy_name(name, NETSRV_NAME_MAX + 1, netsrv_netif_name(netif));
    for (int i = 0; i < netif->hwaddr_len && i < 6; i++)
        n->mac = (n->mac << 8) | netif->hwaddr[i];
    n->mtu = netif->mtu;
    n->flags = netif_flags(s, netif);
    n->ipv4_addr = netsrv_ip4_host(netif_ip4_addr(netif));
    n->ipv4_mask = netsrv_ip4_host(netif_ip4_netmask(netif));
    n->ipv4_gw = netsrv_ip4_host(netif_ip4_gw(netif));
    if (index < s->nnics)
        netsrv_nic_counters(s->nics[index], c);
    return 0;
}

static uint32_t ip6_state(u8_t st)
{
    if (ip6_addr_istentative(st))
        return NETSRV_IP6_TENTATIVE;
    if (ip6_addr_ispreferred(st))
        return NETSRV_IP6_PREFERRED;
    if (ip6_addr_isdeprecated(st))
        return NETSRV_IP6_DEPRECATED;
    return NETSRV_IP6_DUPLICATED;
}

static int32_t get_netif_ip6(void *ctx, const mk_recv_info_t *info, uint32_t index,
                             netsrv_ip6_addr_t addrs[static NETSRV_IP6_ADDRS], uint32_t *addrs_len)
{
    netsrv_t *s = ctx;
    (void)info;
    struct netif *netif = netsrv_netif_at(s, index);
    if (netif == NULL)
        return NETSRV_ENOENT;
    _Static_assert(LWIP_IPV6_NUM_ADDRESSES <= NETSRV_IP6_ADDRS, "netsrv.idl IP6_ADDRS");
    for (int i = 0; i < LWIP_IPV6_NUM_ADDRESSES; i++) {
        u8_t st = netif_ip6_addr_state(netif, i);
        if (ip6_addr_isinvalid(st))
            continue;
        const ip6_addr_t *a = netif_ip6_addr(netif, i);
        netsrv_ip6_addr_t *o = &addrs[(*addrs_len)++];
        o->hi = (uint64_t)lwip_ntohl(a->addr[0]) << 32 | lwip_ntohl(a->addr[1]);
        o->lo = (uint64_t)lwip_ntohl(a->addr[2]) << 32 | lwip_ntohl(a->addr[3]);
        o->state = ip6_state(st);
    }
    return 0;
}

static int32_t get_mem_stats(void *ctx, const mk_recv_info_t *info, uint32_t index,
                             char name[static NETSRV_STAT_NAME_MAX + 1], netsrv_mem_stats_t *st)
{
    (void)ctx;
    (void)info;
    const struct stats_mem *m;
    if (index == 0)
        m = &lwip_stats.mem;
    else if (index - 1 < MEMP_MAX)
        m = lwip_stats.memp[index - 1];
    else
        return NETSRV_ENOENT;
    copy_name(name, NETSRV_STAT_NAME_MAX + 1, index == 0 ? "MEM" : m->name);
    *st = (netsrv_mem_stats_t){
        .avail = m->avail, .used = m->used, .max = m->max, .err = m->err, .illegal = m->illegal};
    if (index == 0)
        st->avail = MEM_SIZE; /* the heap's budget (lwIP counts no "avail" for a C library heap) */
    return 0;
}

static const struct proto_entry {
    const char *name;
    const struct stats_proto *stats;
} protos[] = {
    {"LINK", &lwip_stats.link},         {"ETHARP", &lwip_stats.etharp},
    {"IP_FRAG", &lwip_stats.ip_frag},   {"IP", &lwip_stats.ip},
    {"ICMP", &lwip_stats.icmp},         {"UDP", &lwip_stats.udp},
    {"TCP", &lwip_stats.tcp},           {"IP6", &lwip_stats.ip6},
    {"IP6_FRAG", &lwip_stats.ip6_frag}, {"ICMP6", &lwip_stats.icmp6},
    {"ND6", &lwip_stats.nd6},
};

static int32_t get_proto_stats(void *ctx, const mk_recv_info_t *info, uint32_t index,
                               char name[static NETSRV_STAT_NAME_MAX + 1], netsrv_proto_stats_t *st)
{
    (void)ctx;
    (void)info;
    if (index >= sizeof protos / sizeof protos[0])
        return NETSRV_ENOENT;
    const struct stats_proto *p = protos[index].stats;
    copy_name(name, NETSRV_STAT_NAME_MAX + 1, protos[index].name);
    *st = (netsrv_proto_stats_t){.xmit = p->xmit,
                                 .recv = p->recv,
                                 .fw = p->fw,
                                 .drop = p->drop,
                                 .chkerr = p->chkerr,
                                 .lenerr = p->lenerr,
                                 .memerr = p->memerr,
                                 .rterr = p->rterr,
                                 .proterr = p->proterr,
                                 .opterr = p->opterr,
                                 .err = p->err,
                                 .cachehit = p->cachehit};
    return 0;
}

static int32_t get_loop_stats(void *ctx, const mk_recv_info_t *info, netsrv_loop_stats_t *st)
{
    netsrv_t *s = ctx;
    (void)info;
    *st = s->loop;
    st->uptime_ns = mk_time_ns() - s->start_ns;
    return 0;
}

static int32_t ping(void *ctx, const mk_recv_info_t *info, const netsrv_addr_t *dst, uint32_t count,
                    uint32_t size, uint32_t interval_ms, uint32_t timeout_ms,
                    netsrv_ping_result_t *r)
{
    return netsrv_ping_start(ctx, info, dst, count, size, interval_ms, timeout_ms, r);
}

static int32_t get_client_count(void *ctx, const mk_recv_info_t *info, uint32_t *count)
{
    (void)ctx;
    (void)info;
    *count = netsrv_sock_client_count();
    return 0;
}

static int32_t get_client_stats(void *ctx, const mk_recv_info_t *info, uint32_t index,
                                uint64_t *badge, netsrv_client_stats_t *st)
{
    (void)ctx;
    (void)info;
    return netsrv_sock_client_at(index, badge, st) ? 0 : NETSRV_ENOENT;
}

static int32_t get_sock_stats(void *ctx, const mk_recv_info_t *info, netsrv_sock_stats_t *st)
{
    (void)ctx;
    (void)info;
    netsrv_sock_totals(st);
    return 0;
}

static const netsrv_ops_t ops = {
    .get_netif_count = get_netif_count,
    .get_netif = get_netif,
    .get_netif_ip6 = get_netif_ip6,
    .get_mem_stats = get_mem_stats,
    .get_proto_stats = get_proto_stats,
    .get_loop_stats = get_loop_stats,
    .ping = ping,
    .get_client_count = get_client_count,
    .get_client_stats = get_client_stats,
    .get_sock_stats = get_sock_stats,
};

mk_cap_t netsrv_control_dispatch(void *ctx, const mk_recv_info_t *info, mk_msg_t *msg)
{
    return netsrv_dispatch(&ops, ctx, info, msg);
}

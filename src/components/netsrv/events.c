/*
 * events.c - one log line for each event an operator wants to see: link up
 * or down, an IPv4 address configured (static, or a DHCP lease) or lost, an
 * IPv6 address ready (link-local or SLAAC) or found duplicated. lwIP reports
 * them through its extended netif status callback, from inside the event
 * loop's calls into lwIP.
 */
#include <stdio.h>

#include "lwip/dhcp.h"
#include "lwip/ip6_addr.h"
#include "lwip/netif.h"
#include "netsrv_priv.h"

/* Every netif but lwIP's loopback one is a NIC's, with the NIC as state. */
const char *netsrv_netif_name(const struct netif *netif)
{
    if (netif->state != NULL)
        return ((const netsrv_nic_t *)netif->state)->cfg->name;
    return netif->name[0] == 'l' && netif->name[1] == 'o' ? "lo" : "?";
}

static unsigned prefix_len(uint32_t mask)
{
    unsigned n = 0;
    while (mask & 0x80000000u) {
        n++;
        mask <<= 1;
    }
    return n;
}

static void log_ip4(struct netif *netif)
{
    const char *name = netsrv_netif_name(netif);
    uint32_t a = netsrv_ip4_host(netif_ip4_addr(netif));
    if (a == 0) {
        mk_log("%s: IPv4 address removed", name);
        return;
    }
    uint32_t gw = netsrv_ip4_host(netif_ip4_gw(netif));
    char as[NETSRV_IP4_STRLEN], gws[NETSRV_IP4_STRLEN + 4] = "";
    if (gw != 0)
        snprintf(gws, sizeof gws, " gw %s", netsrv_ip4_format(gw, (char[NETSRV_IP4_STRLEN]){0}));
    char how[48] = "static";
#if LWIP_DHCP
    if (dhcp_supplied_address(netif))
        snprintf(how, sizeof how, "DHCP lease, %lu s",
                 (unsigned long)netif_dhcp_data(netif)->offered_t0_lease);
#endif
    mk_log("%s: IPv4 %s/%u%s (%s)", name, netsrv_ip4_format(a, as),
           prefix_len(netsrv_ip4_host(netif_ip4_netmask(netif))), gws, how);
}

static void log_ip6(struct netif *netif, s8_t idx, u8_t old_state)
{
    if (idx < 0 || idx >= LWIP_IPV6_NUM_ADDRESSES)
        return;
    const char *name = netsrv_netif_name(netif);
    u8_t st = netif_ip6_addr_state(netif, idx);
    const ip6_addr_t *a = netif_ip6_addr(netif, idx);
    char buf[IP6ADDR_STRLEN_MAX];
    ip6addr_ntoa_r(a, buf, sizeof buf);
    for (char *c = buf; *c; c++) /* lwIP writes upper case; RFC 5952 says lower */
        if (*c >= 'A' && *c <= 'F')
            *c = (char)(*c - 'A' + 'a');
    const char *kind = ip6_addr_islinklocal(a) ? "link-local" : "autoconfigured";
    if (ip6_addr_isvalid(st) && !ip6_addr_isvalid(old_state))
        mk_log("%s: IPv6 %s (%s) ready", name, buf, kind);
    else if (ip6_addr_isduplicated(st))
        mk_log("%s: IPv6 %s (%s) is used by another node (duplicate address detection): not used",
               name, buf, kind);
    else if (ip6_addr_isinvalid(st) && ip6_addr_isvalid(old_state))
        mk_log("%s: IPv6 %s removed", name, buf);
}

static void on_netif_event(struct netif *netif, netif_nsc_reason_t reason,
                           const netif_ext_callback_args_t *args)
{
    if (reason & LWIP_NSC_LINK_CHANGED)
        mk_log("%s: link %s", netsrv_netif_name(netif), args->link_changed.state ? "up" : "down");
    if (reason & (LWIP_NSC_IPV4_ADDRESS_CHANGED | LWIP_NSC_IPV4_NETMASK_CHANGED |
                  LWIP_NSC_IPV4_GATEWAY_CHANGED))
        log_ip4(netif);
    if (reason & LWIP_NSC_IPV6_ADDR_STATE_CHANGED)
        log_ip6(netif, args->ipv6_addr_state_changed.addr_index,
                args->ipv6_addr_state_changed.old_state);
}

void netsrv_events_init(void)
{
    static netif_ext_callback_t cb;
    netif_add_ext_callback(&cb, on_netif_event);
}

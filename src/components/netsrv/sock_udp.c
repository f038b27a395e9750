/*
 * sock_udp.c - UDP sockets of the socket service on lwIP's raw API.
 *
 * Both rings carry records (sock_dgram_hdr_t + payload + padding, see
 * ferry/sock_region.h):
 *   rx_record   lwIP's recv callback: one datagram -> one record in the RX
 *               ring, whole or not at all; no room (SO_RCVBUF counts) means
 *               the datagram is dropped and counted, as a full socket buffer
 *               drops on Linux
 *   tx_records  the client's records -> udp_sendto / udp_send, at most
 *               NSOCK_UDP_BUDGET per socket per turn (the rest next turn).
 *               A record that cannot be right (longer than the ring, not
 *               published whole, an unknown family) means the client broke
 *               the ring: everything queued is skipped and counted.
 *               Per datagram: the TTL/hop limit and TOS of the destination's
 *               family; multicast leaves by IP_MULTICAST_IF's interface (or
 *               the route) with the multicast TTL, and comes back to this
 *               host's members if IP_MULTICAST_LOOP; a broadcast without
 *               SO_BROADCAST is not sent (EACCES in SO_ERROR, counted).
 *   membership  sock.idl membership: igmp/mld6 join or leave on one
 *               interface, each kept in the socket's list and left on close
 */
#include <stdlib.h>
#include <string.h>

#include "lwip/igmp.h"
#include "lwip/mld6.h"
#include "sock_priv.h"

static void recv_cb(void *arg, struct udp_pcb *pcb, struct pbuf *p, const ip_addr_t *addr,
                    u16_t port);

int32_t nsock_udp_open(nsock_t *ns)
{
    struct udp_pcb *pcb =
        udp_new_ip_type(ns->family == NSOCK_AF_INET ? IPADDR_TYPE_V4 : IPADDR_TYPE_ANY);
    if (pcb == NULL)
        return SOCK_ENOBUFS;
    ns->pcb.udp = pcb;
    udp_recv(pcb, recv_cb, ns);
    return 0;
}

int32_t nsock_udp_bind(nsock_t *ns, const ip_addr_t *ip, uint16_t port)
{
    err_t err = udp_bind(ns->pcb.udp, ip, port);
    return err == ERR_OK ? 0 : err == ERR_USE ? SOCK_EADDRINUSE : SOCK_EINVAL;
}

int32_t nsock_udp_connect(nsock_t *ns, const ip_addr_t *ip, uint16_t port)
{
    if (port == 0)
        return SOCK_EINVAL;
    err_t err = udp_connect(ns->pcb.udp, ip, port);
    if (err != ERR_OK)
        return err == ERR_USE ? SOCK_EADDRINUSE : SOCK_EINVAL;
    ns->udp_connected = true;
    ns->bound = true;
    return 0;
}

bool nsock_udp_name(nsock_t *ns, bool local, sock_addr_t *a)
{
    struct udp_pcb *pcb = ns->pcb.udp;
    if (local) {
        nsock_addr_from_lwip(ns, &pcb->local_ip, pcb->local_port, a);
        return true;
    }
    if (!ns->udp_connected)
        return false;
    nsock_addr_from_lwip(ns, &pcb->remote_ip, pcb->remote_port, a);
    return true;
}

static void tx_records(nsock_t *ns, int budget);

/* close(2): what the client queued before closing still goes out (it may
 * not have been seen yet: the doorbell is handled once per turn, this
 * request may come first). Client death: nothing is sent. */
void nsock_udp_close(nsock_t *ns, bool flush)
{
    if (flush && ns->pcb.udp != NULL)
        tx_records(ns, (int)(ns->sess->l.ring_size / SOCK_DGRAM_ALIGN));
    if (ns->pcb.udp != NULL) {
        udp_recv(ns->pcb.udp, NULL, NULL);
        udp_remove(ns->pcb.udp);
        ns->pcb.udp = NULL;
    }
    nsock_free(ns);
}

/* ---- Receive ------------------------------------------------------------------------------ */

static void hdr_from_addr(const sock_addr_t *a, sock_dgram_hdr_t *h)
{
    h->family = a->family;
    h->port = a->port;
    if (a->family == NSOCK_AF_INET) {
        for (int i = 0; i < 4; i++)
            h->addr[i] = (uint8_t)(a->lo >> (24 - 8 * i));
        return;
    }
    for (int i = 0; i < 8; i++) {
        h->addr[i] = (uint8_t)(a->hi >> (56 - 8 * i));
        h->addr[8 + i] = (uint8_t)(a->lo >> (56 - 8 * i));
    }
}

static void recv_cb(void *arg, struct udp_pcb *pcb, struct pbuf *p, const ip_addr_t *addr,
                    u16_t port)
{
    nsock_t *ns = arg;
    (void)pcb;
    if (ns == NULL || ns->rd_shut) {
        pbuf_free(p);
        return;
    }
    uint32_t len = p->tot_len;
    uint32_t total = sock_dgram_size(len);
    uint32_t space = 0;
    if (bytering_prod_space(&ns->rx, &space) != BYTERING_OK)
        nsock_cst(ns)->failures++;
    uint32_t hold = ns->sess->l.ring_size - ns->rcvbuf;
    if (space < hold || space - hold < total) {
        nsock_cst(ns)->drops++; /* receive buffer full */
        pbuf_free(p);
        return;
    }
    sock_dgram_hdr_t h;
    memset(&h, 0, sizeof h);
    sock_addr_t from;
    nsock_addr_from_lwip(ns, addr, port, &from);
    hdr_from_addr(&from, &h);
    h.len = (uint16_t)len;
    static const uint8_t zeros[SOCK_DGRAM_ALIGN];
    bytering_prod_write_all(&ns->rx, &h, sizeof h);
    for (struct pbuf *q = p; q != NULL; q = q->next)
        bytering_prod_write_all(&ns->rx, q->payload, q->len);
    bytering_prod_write_all(&ns->rx, zeros, total - (uint32_t)sizeof h - len);
    bytering_prod_publish(&ns->rx); /* the whole record at once */
    pbuf_free(p);
    nsock_cst(ns)->rx_packets++;
    nsock_cst(ns)->rx_bytes += len;
    nsock_update(ns);
}

/* ---- Send --------------------------------------------------------------------------------- */

static bool addr_from_hdr(const nsock_t *ns, const sock_dgram_hdr_t *h, ip_addr_t *ip)
{
    sock_addr_t a;
    memset(&a, 0, sizeof a);
    a.family = h->family;
    a.port = h->port;
    if (h->family == NSOCK_AF_INET) {
        for (int i = 0; i < 4; i++)
            a.lo = (a.lo << 8) | h->addr[i];
    } else {
        for (int i = 0; i < 8; i++) {
            a.hi = (a.hi << 8) | h->addr[i];
            a.lo = (a.lo << 8) | h->addr[8 + i];
        }
    }
    return h->port != 0 && nsock_addr_to_lwip(ns, &a, ip, false) == 0;
}

/* A broadcast destination (the limited broadcast, or the broadcast
 * address of the interface the route takes) without SO_BROADCAST. */
static bool broadcast_refused(const nsock_t *ns, const ip_addr_t *ip)
{
    if (ns->broadcast || !IP_IS_V4(ip))
        return false;
    const ip4_addr_t *a = ip_2_ip4(ip);
    if (ip4_addr_get_u32(a) == IPADDR_BROADCAST)
        return true;
    struct netif *n = ip4_addr_isany(a) ? NULL : ip4_route(a);
    return n != NULL && ip4_addr_isbroadcast(a, n);
}

/* The interface a multicast datagram leaves by: IP_MULTICAST_IF /
 * IPV6_MULTICAST_IF, else the route. Sets the multicast TTL and whether
 * it comes back to this host: lwIP's loopback interface delivers what it
 * sends here anyway, so a loop copy there would be a duplicate. A scoped
 * IPv6 group gets the interface's zone. NULL: no way out. */
static struct netif *mcast_prepare(nsock_t *ns, ip_addr_t *ip)
{
    struct udp_pcb *pcb = ns->pcb.udp;
    bool v4 = IP_IS_V4(ip);
    uint8_t idx = v4 ? ns->mif4 : ns->mif6;
    struct netif *n = idx != 0 ? netif_get_by_index(idx) : ip_route(&pcb->local_ip, ip);
    if (n == NULL)
        return NULL;
    if (!v4 && ip6_addr_lacks_zone(ip_2_ip6(ip), IP6_MULTICAST))
        ip6_addr_assign_zone(ip_2_ip6(ip), IP6_MULTICAST, n);
    udp_set_multicast_ttl(pcb, v4 ? ns->mttl4 : ns->mhops6);
    if ((v4 ? ns->mloop4 : ns->mloop6) && n != nsock.srv->loopif)
        udp_set_flags(pcb, UDP_FLAGS_MULTICAST_LOOP);
    else
        udp_clear_flags(pcb, UDP_FLAGS_MULTICAST_LOOP);
    return n;
}

/* Send one record's datagram; false: stop for this turn (lwIP has no
 * memory; the record stays). */
static bool tx_one(nsock_t *ns, const sock_dgram_hdr_t *h)
{
    struct udp_pcb *pcb = ns->pcb.udp;
    ip_addr_t ip;
    uint16_t port = h->port;
    bool to_peer = h->family == 0;
    if (to_peer ? !ns->udp_connected : !addr_from_hdr(ns, h, &ip)) {
        nsock_cst(ns)->drops++; /* no destination */
        return true;
    }
    if (to_peer) {
        ip_addr_copy(ip, pcb->remote_ip);
        port = pcb->remote_port;
    }
    struct netif *mc = NULL;
    if (ip_addr_ismulticast(&ip)) {
        mc = mcast_prepare(ns, &ip);
        if (mc == NULL) {
            nsock_cst(ns)->drops++; /* no interface for the group */
            return true;
        }
    } else if (broadcast_refused(ns, &ip)) {
        nsock_cst(ns)->drops++;
        nsock_set_error(ns, NSOCK_ERRNO(SOCK_EACCES)); /* Linux fails the sendto */
        return true;
    }
    pcb->ttl = nsock_ttl(ns, IP_IS_V4(&ip));
    pcb->tos = nsock_tos(ns, IP_IS_V4(&ip));
    struct pbuf *p = pbuf_alloc(PBUF_TRANSPORT, h->len, PBUF_RAM);
    if (p == NULL) {
        nsock_starve(ns);
        return false;
    }
    bytering_cons_peek(&ns->tx, sizeof *h, p->payload, h->len);
    err_t err = mc != NULL ? udp_sendto_if(pcb, p, &ip, port, mc) : udp_sendto(pcb, p, &ip, port);
    pbuf_free(p);
    if (err != ERR_OK) {
        nsock_cst(ns)->drops++; /* no route, too big, no memory for headers */
        return true;
    }
    nsock_cst(ns)->tx_packets++;
    nsock_cst(ns)->tx_bytes += h->len;
    return true;
}

void nsock_udp_doorbell(nsock_t *ns)
{
    if (ns->state != NS_OPEN || ns->pcb.udp == NULL)
        return;
    tx_records(ns, NSOCK_UDP_BUDGET);
}

/* Send up to `budget` records; if more are left, ring our own doorbell for
 * the next turn. */
static void tx_records(nsock_t *ns, int budget)
{
    bool took = false;
    for (int k = 0; k < budget; k++) {
        uint32_t avail;
        sock_dgram_hdr_t h;
        if (bytering_cons_avail(&ns->tx, &avail) != BYTERING_OK) {
            nsock_cst(ns)->failures++;
            break;
        }
        if (avail == 0)
            break;
        uint32_t total = 0;
        if (bytering_cons_peek(&ns->tx, 0, &h, sizeof h) == BYTERING_OK)
            total = sock_dgram_size(h.len);
        if (total == 0 || total > avail ||
            (h.family != 0 && h.family != NSOCK_AF_INET && h.family != NSOCK_AF_INET6)) {
            nsock_cst(ns)->failures++; /* a broken record: skip everything */
            bytering_cons_skip(&ns->tx, avail);
            took = true;
            break;
        }
        if (!tx_one(ns, &h))
            break;
        bytering_cons_skip(&ns->tx, total);
        took = true;
        if (k == budget - 1) { /* fairness: the rest next turn */
            sock_bit_set(sock_map(ns->sess->base, ns->sess->l.doorbell), ns->id);
            nsock.again = true;
        }
    }
    if (took) {
        bytering_cons_publish(&ns->tx); /* space for the client */
        nsock_update(ns);
    }
}

/* ---- Multicast memberships ------------------------------------------------------------------ */

/* The group as lwIP's address; EINVAL if it is not a multicast group of a
 * known family, ENOPROTOOPT for an IPv6 group on an AF_INET socket. */
static int32_t group_of(const nsock_t *ns, const sock_addr_t *g, ip_addr_t *ip)
{
    if (g->family == NSOCK_AF_INET) {
        if (g->hi != 0 || g->lo > 0xffffffffu)
            return SOCK_EINVAL;
        ip_addr_set_ip4_u32_val(*ip, lwip_htonl((uint32_t)g->lo));
    } else if (g->family == NSOCK_AF_INET6) {
        if (ns->family != NSOCK_AF_INET6)
            return SOCK_ENOPROTOOPT; /* IPV6_JOIN_GROUP on an IPv4 socket */
        IP_ADDR6(ip, lwip_htonl((uint32_t)(g->hi >> 32)), lwip_htonl((uint32_t)g->hi),
                 lwip_htonl((uint32_t)(g->lo >> 32)), lwip_htonl((uint32_t)g->lo));
    } else {
        return SOCK_EINVAL;
    }
    return ip_addr_ismulticast(ip) ? 0 : SOCK_EINVAL;
}

/* The interface of a membership request: by index, else (IPv4) by local
 * address, else the default interface. `any`: the request named none
 * (a leave then matches the group on any interface). */
static int32_t group_netif(const ip_addr_t *group, const sock_addr_t *local, uint32_t ifindex,
                           struct netif **out, bool *any)
{
    *any = false;
    if (ifindex != 0) {
        *out = nsock_netif_of_scope(ifindex);
        return *out != NULL ? 0 : SOCK_ENODEV;
    }
    if (IP_IS_V4(group) && local->family == NSOCK_AF_INET && local->lo != 0) {
        if (local->hi != 0 || local->lo > 0xffffffffu)
            return SOCK_EINVAL;
        struct netif *n;
        NETIF_FOREACH(n)
        {
            if (ip4_addr_get_u32(netif_ip4_addr(n)) == lwip_htonl((uint32_t)local->lo)) {
                *out = n;
                return 0;
            }
        }
        return SOCK_ENODEV;
    }
    *any = true;
    *out = netif_default;
    return *out != NULL ? 0 : SOCK_ENODEV;
}

static bool group_match(const nsock_group_t *m, const ip_addr_t *group)
{
    if (IP_IS_V4(group) != IP_IS_V4(&m->group))
        return false;
    if (IP_IS_V4(group))
        return ip4_addr_cmp(ip_2_ip4(&m->group), ip_2_ip4(group));
    return ip6_addr_cmp_zoneless(ip_2_ip6(&m->group), ip_2_ip6(group));
}

/* Join or leave in lwIP (which counts the joins of a group per netif).
 * IPv4's all-systems group is always joined on an IGMP interface: nothing
 * to do there (lwIP refuses it). */
static err_t group_lwip(struct netif *n, const ip_addr_t *group, bool join)
{
    if (IP_IS_V4(group)) {
        if ((n->flags & NETIF_FLAG_IGMP) == 0)
            return ERR_IF;
        if (ip4_addr_get_u32(ip_2_ip4(group)) == PP_HTONL(0xe0000001ul)) /* 224.0.0.1 */
            return ERR_OK;
        return join ? igmp_joingroup_netif(n, ip_2_ip4(group))
                    : igmp_leavegroup_netif(n, ip_2_ip4(group));
    }
    return join ? mld6_joingroup_netif(n, ip_2_ip6(group))
                : mld6_leavegroup_netif(n, ip_2_ip6(group));
}

int32_t nsock_udp_membership(nsock_t *ns, bool join, const sock_addr_t *g,
                             const sock_addr_t *local, uint32_t ifindex)
{
    ip_addr_t group;
    int32_t st = group_of(ns, g, &group);
    struct netif *n = NULL;
    bool any = false;
    if (st == 0)
        st = group_netif(&group, local, ifindex, &n, &any);
    if (st != 0 && !(st == SOCK_ENODEV && !join && any))
        return st; /* a leave naming no interface needs no default one */
    nsock_group_t **p = &ns->groups;
    for (; *p != NULL; p = &(*p)->next)
        if (group_match(*p, &group) &&
            ((!join && any) || (n != NULL && (*p)->netif == netif_get_index(n))))
            break;
    if (!join) {
        nsock_group_t *m = *p;
        if (m == NULL)
            return SOCK_EADDRNOTAVAIL; /* not a member there: as Linux */
        struct netif *mn = netif_get_by_index(m->netif);
        if (mn != NULL)
            (void)group_lwip(mn, &m->group, false);
        *p = m->next;
        free(m);
        ns->ngroups--;
        return 0;
    }
    if (*p != NULL)
        return SOCK_EADDRINUSE; /* joined there already: as Linux */
    if (ns->ngroups >= NSOCK_GROUPS_MAX)
        return SOCK_ENOBUFS;
    nsock_group_t *m = malloc(sizeof *m);
    if (m == NULL)
        return SOCK_ENOBUFS;
    err_t err = group_lwip(n, &group, true);
    if (err != ERR_OK) {
        free(m);
        return err == ERR_MEM ? SOCK_ENOBUFS : SOCK_ENODEV;
    }
    ip_addr_copy(m->group, group);
    m->netif = netif_get_index(n);
    m->next = ns->groups;
    ns->groups = m;
    ns->ngroups++;
    return 0;
}

void nsock_udp_groups_drop(nsock_t *ns)
{
    while (ns->groups != NULL) {
        nsock_group_t *m = ns->groups;
        struct netif *n = netif_get_by_index(m->netif);
        if (n != NULL)
            (void)group_lwip(n, &m->group, false);
        ns->groups = m->next;
        free(m);
    }
    ns->ngroups = 0;
}

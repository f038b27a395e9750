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
 */
#include <string.h>

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

/* Send one record's datagram; false: stop for this turn (lwIP has no
 * memory; the record stays). */
static bool tx_one(nsock_t *ns, const sock_dgram_hdr_t *h)
{
    ip_addr_t ip;
    bool to_peer = h->family == 0;
    if (to_peer ? !ns->udp_connected : !addr_from_hdr(ns, h, &ip)) {
        nsock_cst(ns)->drops++; /* no destination */
        return true;
    }
    struct pbuf *p = pbuf_alloc(PBUF_TRANSPORT, h->len, PBUF_RAM);
    if (p == NULL) {
        nsock_starve(ns);
        return false;
    }
    bytering_cons_peek(&ns->tx, sizeof *h, p->payload, h->len);
    err_t err = to_peer ? udp_send(ns->pcb.udp, p) : udp_sendto(ns->pcb.udp, p, &ip, h->port);
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

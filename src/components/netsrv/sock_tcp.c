/*
 * sock_tcp.c - TCP sockets of the socket service on lwIP's raw API.
 *
 * Data flow, by the names of the steps:
 *   rx_put      lwIP's recv callback: the pbuf chain -> the RX ring, as far
 *               as it fits (and SO_RCVBUF allows); the rest waits in `pend`
 *   rx_credit   the client consumed n ring bytes (doorbell) -> tcp_recved(n):
 *               the window lwIP advertises follows the client's reading, so
 *               pending data is bounded by the window per socket (SO_RCVBUF,
 *               or the unscaled 65535 of the SYN if that is larger)
 *   rx_refill   pend -> RX ring when space came back; FIN is shown (RDHUP)
 *               only once every byte before it is in the ring
 *   tx_drain    TX ring -> tcp_write (copies) as far as tcp_sndbuf, SO_SNDBUF
 *               and lwIP's heap allow; continued from the sent callback; a
 *               socket that found lwIP out of memory waits on the starved
 *               list until memory comes back
 *   close       SO_LINGER off: the reply at once, the TX ring drained in the
 *               background, then tcp_close (the slot stays reserved until
 *               then); l_linger 0: RST; l_linger > 0: the reply is deferred
 *               until the data is acknowledged or the time is up
 *
 * Blocking accept and connect keep the caller's reply capability (deferred
 * replies), so a blocked client never stalls the loop; a listener keeps
 * the blocked accepts in a FIFO, each arriving connection answers the
 * oldest.
 */
#include <stdlib.h>
#include <string.h>

#include "lwip/priv/tcp_priv.h" /* tcp_tw_pcbs, tcp_pcb_remove, tcp_free, tcp_split_unsent_seg */
#include "lwip/stats.h"
#include "sock_priv.h"

static err_t recv_cb(void *arg, struct tcp_pcb *pcb, struct pbuf *p, err_t err);
static err_t sent_cb(void *arg, struct tcp_pcb *pcb, u16_t len);
static err_t poll_cb(void *arg, struct tcp_pcb *pcb);
static void err_cb(void *arg, err_t err);
static err_t connected_cb(void *arg, struct tcp_pcb *pcb, err_t err);
static err_t accept_cb(void *arg, struct tcp_pcb *newpcb, err_t err);

static void attach(nsock_t *ns, struct tcp_pcb *pcb)
{
    ns->pcb.tcp = pcb;
    tcp_arg(pcb, ns);
    tcp_recv(pcb, recv_cb);
    tcp_sent(pcb, sent_cb);
    tcp_err(pcb, err_cb);
    tcp_poll(pcb, poll_cb, NSOCK_POLL_INTERVAL);
}

/* Hand the PCB back to lwIP: no callback names this slot any more. */
static void detach(nsock_t *ns)
{
    struct tcp_pcb *pcb = ns->pcb.tcp;
    ns->pcb.tcp = NULL;
    if (pcb == NULL)
        return;
    tcp_arg(pcb, NULL);
    if (pcb->state == LISTEN) {
        tcp_accept(pcb, NULL);
        return;
    }
    tcp_recv(pcb, NULL); /* lwIP's tcp_recv_null from now on */
    tcp_sent(pcb, NULL);
    tcp_err(pcb, NULL);
    tcp_poll(pcb, NULL, 0);
}

/* The receive window follows SO_RCVBUF. lwIP's window may reach
 * TCP_WND_MAX (TCP_WND when the peer scales windows, else 65535) and grows
 * back only by what netsrv credits (tcp_recved), so withholding
 * TCP_WND_MAX - SO_RCVBUF of the credits caps the window at the ring space
 * the socket may use, as a socket buffer does on Linux. wnd_start takes
 * what it can of that at once; the rest is reached by withholding future
 * credits (wnd_debt), never by lowering lwIP's rcv_wnd below what was
 * already announced: lwIP drops segments beyond rcv_wnd even inside the
 * announced window, and the peer would only recover by retransmission
 * timeout. Until the debt is paid the peer may send up to the first
 * announced window; what the ring cannot take waits in `pend`. */
static void wnd_apply(nsock_t *ns)
{
    struct tcp_pcb *pcb = ns->pcb.tcp;
    if (pcb == NULL || ns->tstate != TS_CONNECTED)
        return;
    uint32_t max = TCP_WND_MAX(pcb);
    uint32_t want = ns->rcvbuf < max ? max - ns->rcvbuf : 0;
    if (want > ns->wnd_withheld) {
        ns->wnd_debt += want - ns->wnd_withheld;
    } else if (want < ns->wnd_withheld) {
        uint32_t back = ns->wnd_withheld - want;
        uint32_t paid = back < ns->wnd_debt ? back : ns->wnd_debt;
        ns->wnd_debt -= paid;
        for (uint32_t k = back - paid; k > 0;) {
            uint16_t c = k > 0xffff ? 0xffff : (uint16_t)k;
            tcp_recved(pcb, c);
            k -= c;
        }
    }
    ns->wnd_withheld = want;
}

/* The connection is established and lwIP has taken none of its data yet:
 * lwIP's window is TCP_WND_MAX, but the peer has seen only the window of
 * the SYN (never scaled: at most 65535). Start lwIP's window at the cap if
 * that is larger than what the SYN showed, else at what it showed, so that
 * a large TCP_WND is offered only to sockets whose SO_RCVBUF takes it; the
 * rest of the way down to the cap is withheld from credits (wnd_apply). */
static void wnd_start(nsock_t *ns)
{
    struct tcp_pcb *pcb = ns->pcb.tcp;
    uint32_t max = TCP_WND_MAX(pcb);
    uint32_t shown = max < 0xffff ? max : 0xffff;
    uint32_t start = ns->rcvbuf > shown ? (ns->rcvbuf < max ? ns->rcvbuf : max) : shown;
    ns->wnd_withheld = ns->wnd_debt = 0;
    if (pcb->rcv_wnd == max && start < max) {
        pcb->rcv_wnd = pcb->rcv_ann_wnd = (tcpwnd_size_t)start;
        pcb->rcv_ann_right_edge = pcb->rcv_nxt + start;
        ns->wnd_withheld = max - start;
    }
    wnd_apply(ns);
}

void nsock_tcp_apply_options(nsock_t *ns)
{
    struct tcp_pcb *pcb = ns->pcb.tcp;
    if (pcb == NULL)
        return;
    wnd_apply(ns);
    if (ns->reuseaddr)
        ip_set_option(pcb, SOF_REUSEADDR);
    else
        ip_reset_option(pcb, SOF_REUSEADDR);
    if (ns->keepalive)
        ip_set_option(pcb, SOF_KEEPALIVE);
    else
        ip_reset_option(pcb, SOF_KEEPALIVE);
    /* IP_TTL or IPV6_UNICAST_HOPS, and IP_TOS: by the peer's family once
     * there is one (a dual-stack socket may talk IPv4). */
    bool v4 = ns->family == NSOCK_AF_INET || IP_IS_V4_VAL(pcb->remote_ip);
    pcb->ttl = nsock_ttl(ns, v4);
    pcb->tos = nsock_tos(ns, v4);
    if (pcb->state == LISTEN)
        return;
    if (ns->nodelay)
        tcp_nagle_disable(pcb);
    else
        tcp_nagle_enable(pcb);
}

static uint8_t pcb_type(const nsock_t *ns)
{
    return ns->family == NSOCK_AF_INET ? IPADDR_TYPE_V4 : IPADDR_TYPE_ANY;
}

int32_t nsock_tcp_open(nsock_t *ns)
{
    struct tcp_pcb *pcb = tcp_new_ip_type(pcb_type(ns));
    if (pcb == NULL)
        return SOCK_ENOBUFS;
    attach(ns, pcb);
    ns->tstate = TS_NEW;
    return 0;
}

static int32_t bind_status(err_t err)
{
    switch (err) {
    case ERR_OK: return 0;
    case ERR_USE:
    case ERR_BUF: return SOCK_EADDRINUSE;
    default: return SOCK_EINVAL;
    }
}

int32_t nsock_tcp_bind(nsock_t *ns, const ip_addr_t *ip, uint16_t port)
{
    if (ns->tstate != TS_NEW || ns->pcb.tcp == NULL)
        return SOCK_EINVAL;
    nsock_tcp_apply_options(ns);
    return bind_status(tcp_bind(ns->pcb.tcp, ip, port));
}

/* Listening or connecting without bind(): the wildcard address of the
 * socket's family and an ephemeral port, as Linux does. */
static int32_t autobind(nsock_t *ns)
{
    if (ns->bound)
        return 0;
    const ip_addr_t *any = ns->family == NSOCK_AF_INET ? IP4_ADDR_ANY
                           : ns->v6only                ? IP6_ADDR_ANY
                                                       : IP_ANY_TYPE;
    int32_t st = bind_status(tcp_bind(ns->pcb.tcp, any, 0));
    if (st == 0)
        ns->bound = true;
    return st;
}

int32_t nsock_tcp_listen(nsock_t *ns, uint32_t backlog)
{
    uint8_t bl = backlog == 0 ? 1 : backlog > 255 ? 255 : (uint8_t)backlog;
    if (ns->tstate == TS_LISTEN) { /* listen() again: a new backlog */
        tcp_backlog_set(ns->pcb.tcp, bl);
        return 0;
    }
    if (ns->tstate != TS_NEW || ns->pcb.tcp == NULL)
        return SOCK_EINVAL;
    nsock_tcp_apply_options(ns);
    int32_t st = autobind(ns);
    if (st != 0)
        return st;
    err_t err = ERR_OK;
    struct tcp_pcb *lpcb = tcp_listen_with_backlog_and_err(ns->pcb.tcp, bl, &err);
    if (lpcb == NULL)
        return err == ERR_USE ? SOCK_EADDRINUSE : SOCK_ENOBUFS;
    /* The old PCB is freed by lwIP; the listen PCB takes its place. */
    ns->pcb.tcp = lpcb;
    tcp_arg(lpcb, ns);
    tcp_accept(lpcb, accept_cb);
    ns->tstate = TS_LISTEN;
    nsock_update(ns);
    return 0;
}

bool nsock_tcp_name(nsock_t *ns, bool local, sock_addr_t *a)
{
    struct tcp_pcb *pcb = ns->pcb.tcp;
    if (local) {
        if (pcb == NULL)
            return false;
        nsock_addr_from_lwip(ns, &pcb->local_ip, pcb->local_port, a);
        return true;
    }
    if (pcb == NULL || ns->tstate != TS_CONNECTED)
        return false;
    nsock_addr_from_lwip(ns, &pcb->remote_ip, pcb->remote_port, a);
    return true;
}

/* ---- Accept ------------------------------------------------------------------------------- */

static void queue_remove(nsock_t *child)
{
    nsock_t *l = child->parent;
    if (l == NULL)
        return;
    for (nsock_t **p = &l->q_head; *p != NULL; p = &(*p)->q_next)
        if (*p == child) {
            *p = child->q_next;
            if (l->q_tail == child) {
                l->q_tail = NULL;
                for (nsock_t *q = l->q_head; q != NULL; q = q->q_next)
                    l->q_tail = q;
            }
            l->q_len--;
            break;
        }
    child->parent = child->q_next = NULL;
    nsock_update(l);
}

static nsock_t *queue_take(nsock_t *l)
{
    nsock_t *child = l->q_head;
    if (child != NULL)
        queue_remove(child);
    return child;
}

/* The client takes a queued connection. */
static void hand_over(nsock_t *child, uint32_t *newsock, sock_addr_t *peer)
{
    if (child->pcb.tcp != NULL)
        tcp_backlog_accepted(child->pcb.tcp);
    nsock_claim(child);
    *newsock = child->id;
    if (!nsock_tcp_name(child, false, peer))
        nsock_addr_from_lwip(child, NULL, 0, peer);
    nsock_update(child);
}

/* Blocked accepts wait in the listener's FIFO; each arriving connection
 * answers the oldest. */
static bool waiter_push(nsock_t *l, mk_cap_t reply)
{
    nsock_waiter_t *w = malloc(sizeof *w);
    if (w == NULL)
        return false;
    w->reply = reply;
    w->next = NULL;
    if (l->w_tail != NULL)
        l->w_tail->next = w;
    else
        l->w_head = w;
    l->w_tail = w;
    l->w_len++;
    return true;
}

static mk_cap_t waiter_pop(nsock_t *l)
{
    nsock_waiter_t *w = l->w_head;
    if (w == NULL)
        return MK_CAP_NULL;
    l->w_head = w->next;
    if (l->w_head == NULL)
        l->w_tail = NULL;
    l->w_len--;
    mk_cap_t reply = w->reply;
    free(w);
    return reply;
}

/* Put a connection back in front of the listener's queue. */
static void queue_push_front(nsock_t *l, nsock_t *child)
{
    child->parent = l;
    child->q_next = l->q_head;
    l->q_head = child;
    if (l->q_tail == NULL)
        l->q_tail = child;
    l->q_len++;
    if (child->pcb.tcp != NULL)
        tcp_backlog_delayed(child->pcb.tcp);
}

/* Pair queued connections with blocked accepts, oldest with oldest. A
 * waiter whose caller is gone (its call timed out, or its thread died) is
 * skipped: the connection goes to the next waiter, or back in front of the
 * queue. Bounded by the waiters (each is taken once). */
static void accept_waiters(nsock_t *l)
{
    while (l->w_head != NULL && l->q_head != NULL) {
        mk_cap_t reply = waiter_pop(l);
        nsock_t *child = queue_take(l);
        uint32_t id;
        sock_addr_t peer;
        hand_over(child, &id, &peer); /* the slot shows it before the caller wakes */
        if (sock_accept_reply(reply, 0, id, &peer) != MK_OK) {
            nsock_unclaim(child);
            queue_push_front(l, child);
        }
    }
    nsock_update(l);
}

void nsock_tcp_accept_fail(nsock_t *l, int32_t status)
{
    while (l->w_head != NULL) {
        mk_cap_t reply = waiter_pop(l);
        if (status == 0)
            mk_cap_delete(reply); /* the caller's call ends with MK_EDEAD */
        else
            sock_accept_reply(reply, status, 0, &(sock_addr_t){0});
    }
}

int32_t nsock_tcp_accept(nsock_t *ns, const mk_recv_info_t *info, bool nonblock, uint32_t *newsock,
                         sock_addr_t *peer)
{
    if (ns->tstate != TS_LISTEN)
        return SOCK_EINVAL;
    nsock_t *child = queue_take(ns);
    if (child != NULL) {
        hand_over(child, newsock, peer);
        return 0;
    }
    if (nonblock)
        return SOCK_EAGAIN;
    if (ns->w_len >= NSOCK_ACCEPT_WAITERS_MAX || !waiter_push(ns, info->reply))
        return SOCK_ENOBUFS;
    return IDL_DEFERRED;
}

static err_t accept_cb(void *arg, struct tcp_pcb *newpcb, err_t err)
{
    nsock_t *l = arg;
    if (err != ERR_OK || newpcb == NULL || l == NULL)
        return ERR_VAL;
    nsock_t *child = nsock_alloc(l->sess, false, l->family);
    if (child == NULL) { /* the client's socket limit: refuse the connection */
        l->sess->client->st.drops++;
        tcp_abort(newpcb);
        return ERR_ABRT;
    }
    child->tstate = TS_CONNECTED;
    child->bound = true;
    child->reuseaddr = l->reuseaddr;
    child->keepalive = l->keepalive;
    child->nodelay = l->nodelay;
    child->linger_on = l->linger_on;
    child->linger_s = l->linger_s;
    child->rcvbuf = l->rcvbuf;
    child->sndbuf = l->sndbuf;
    child->v6only = l->v6only;
    child->ttl4 = l->ttl4;
    child->hops6 = l->hops6;
    child->tos = l->tos;
    attach(child, newpcb);
    wnd_start(child); /* the handshake's data, if any, comes after this callback */
    nsock_tcp_apply_options(child);
    tcp_backlog_delayed(newpcb); /* counts against the backlog until accepted */
    child->parent = l;
    if (l->q_tail != NULL)
        l->q_tail->q_next = child;
    else
        l->q_head = child;
    l->q_tail = child;
    l->q_len++;
    accept_waiters(l);
    return ERR_OK;
}

/* ---- Connect ------------------------------------------------------------------------------ */

static int32_t connect_status(err_t err)
{
    switch (err) {
    case ERR_RTE: return SOCK_ENETUNREACH;
    case ERR_USE:
    case ERR_BUF: return SOCK_EADDRNOTAVAIL;
    case ERR_MEM: return SOCK_ENOBUFS;
    case ERR_ISCONN: return SOCK_EISCONN;
    case ERR_ALREADY: return SOCK_EALREADY;
    default: return SOCK_EINVAL;
    }
}

/* A connection to a local address (127.0.0.1, ::1, a NIC's own address)
 * goes through lwIP's loop queues: the SYN, the SYN-ACK, the ACK, one
 * netif_poll each. The loop would deliver one of them per turn, answering
 * the connect after the first: the client would then find the socket still
 * connecting and sleep until netsrv signals it. Delivering them now (a
 * bounded number of rounds, as the loop would a little later anyway)
 * answers a non-blocking connect with the handshake done, so the client
 * sees OUT at once, and a blocking one in this same turn. A remote peer
 * leaves the loop queues empty: nothing to deliver. */
#define SETTLE_ROUNDS 3

int32_t nsock_tcp_connect(nsock_t *ns, const mk_recv_info_t *info, const ip_addr_t *ip,
                          uint16_t port, bool nonblock)
{
    switch (ns->tstate) {
    case TS_CONNECTING: return SOCK_EALREADY;
    case TS_CONNECTED: return SOCK_EISCONN;
    case TS_LISTEN: return SOCK_EINVAL;
    case TS_DOWN: /* a failed attempt: try again on a new PCB, as Linux allows */
        if (nsock_tcp_open(ns) != 0)
            return SOCK_ENOBUFS;
        ns->bound = false;
        ns->peer_fin = ns->fin_delivered = ns->wr_shut_req = ns->wr_shut_done = false;
        break;
    default: break;
    }
    if (ns->pcb.tcp == NULL || port == 0)
        return port == 0 ? SOCK_ECONNREFUSED : SOCK_EINVAL;
    nsock_tcp_apply_options(ns);
    ns->pcb.tcp->ttl = nsock_ttl(ns, IP_IS_V4(ip)); /* the SYN's already */
    ns->pcb.tcp->tos = nsock_tos(ns, IP_IS_V4(ip));
    err_t err = tcp_connect(ns->pcb.tcp, ip, port, connected_cb);
    if (err != ERR_OK)
        return connect_status(err);
    ns->bound = true;
    ns->tstate = TS_CONNECTING; /* the window starts in connected_cb (wnd_start) */
    if (ns->error != 0)
        nsock_set_error(ns, 0);
    nsock_update(ns);
    if (!nonblock) {
        ns->wait = WAIT_CONNECT; /* before the settling: connected_cb may answer it */
        ns->reply = info->reply;
    }
    netsrv_loop_settle(SETTLE_ROUNDS);
    return nonblock ? SOCK_EINPROGRESS : IDL_DEFERRED;
}

static err_t connected_cb(void *arg, struct tcp_pcb *pcb, err_t err)
{
    nsock_t *ns = arg;
    (void)pcb;
    (void)err; /* always ERR_OK in lwIP 2.1 */
    if (ns == NULL)
        return ERR_OK;
    ns->tstate = TS_CONNECTED;
    wnd_start(ns); /* before lwIP sends the ACK that announces it */
    nsock_tcp_apply_options(ns);
    nsock_update(ns); /* the slot shows it before the caller wakes */
    nsock_reply_status(ns, 0);
    return ERR_OK;
}

/* ---- Receive ------------------------------------------------------------------------------ */

/* Bytes the RX ring may take now (SO_RCVBUF counts against the ring). */
static uint32_t rx_room(nsock_t *ns)
{
    uint32_t space;
    if (bytering_prod_space(&ns->rx, &space) != BYTERING_OK) {
        nsock_cst(ns)->failures++; /* the client wrote an impossible head */
        return 0;
    }
    uint32_t hold = ns->sess->l.ring_size - ns->rcvbuf; /* reserved by SO_RCVBUF */
    return space > hold ? space - hold : 0;
}

/* Copy up to `max` bytes of the chain into the RX ring; returns how many.
 * Not published. */
static uint32_t rx_copy(nsock_t *ns, struct pbuf *p, uint32_t max)
{
    uint32_t done = 0;
    for (struct pbuf *q = p; q != NULL && done < max; q = q->next) {
        uint32_t n = q->len < max - done ? q->len : max - done;
        uint32_t w = 0;
        bytering_prod_write(&ns->rx, q->payload, n, &w);
        done += w;
        if (w < n)
            break;
    }
    return done;
}

/* Drop `n` leading bytes of the pending chain. */
static void pend_drop(nsock_t *ns, uint32_t n)
{
    while (n > 0 && ns->pend != NULL) {
        uint16_t k = n > 0xffff ? 0xffff : (uint16_t)n;
        ns->pend = pbuf_free_header(ns->pend, k);
        n -= k;
    }
}

static void fin_check(nsock_t *ns)
{
    if (ns->peer_fin && ns->pend == NULL && !ns->fin_delivered) {
        ns->fin_delivered = true;
        nsock_update(ns);
    }
}

/* Pending bytes -> ring, as far as they fit. */
static void rx_refill(nsock_t *ns)
{
    if (ns->pend == NULL) {
        fin_check(ns);
        return;
    }
    uint32_t n = rx_copy(ns, ns->pend, rx_room(ns));
    if (n == 0)
        return;
    bytering_prod_publish(&ns->rx);
    pend_drop(ns, n);
    ns->pend_len -= n;
    nsock_mem_release(ns, n);
    ns->rx_queued += n;
    nsock_cst(ns)->rx_bytes += n;
    nsock_update(ns);
    fin_check(ns);
}

/* The client consumed ring bytes: give them back to lwIP's window. */
static void rx_credit(nsock_t *ns)
{
    uint32_t space;
    if (bytering_prod_space(&ns->rx, &space) != BYTERING_OK) {
        nsock_cst(ns)->failures++;
        return;
    }
    uint32_t used = ns->sess->l.ring_size - space;
    if (used > ns->rx_queued) { /* the head went backwards: a broken client */
        nsock_cst(ns)->failures++;
        return;
    }
    uint32_t consumed = ns->rx_queued - used;
    ns->rx_queued = used;
    uint32_t debt = consumed < ns->wnd_debt ? consumed : ns->wnd_debt;
    ns->wnd_debt -= debt; /* the window cap is still being reached */
    consumed -= debt;
    struct tcp_pcb *pcb = ns->pcb.tcp;
    if (consumed == 0 || pcb == NULL || ns->tstate != TS_CONNECTED)
        return;
    uint32_t before = pcb->rcv_ann_wnd;
    for (uint32_t k = consumed; k > 0;) {
        uint16_t c = k > 0xffff ? 0xffff : (uint16_t)k;
        tcp_recved(pcb, c);
        k -= c;
    }
    /* lwIP announces a grown window at once only past
     * TCP_WND_UPDATE_THRESHOLD (4 segments, 5840 bytes), never for a window
     * capped below that: it would wait for a delayed ACK or the sender's
     * persist timer. Announce it when it opened from less than a segment,
     * or by half the cap (receiver-side SWS avoidance, RFC 1122 4.2.3.3). */
    uint32_t cap = TCP_WND_MAX(pcb) - ns->wnd_withheld;
    uint32_t half = cap / 2 < pcb->mss ? cap / 2 : pcb->mss;
    bool update = pcb->rcv_ann_wnd > before && (before < pcb->mss || consumed >= half) &&
                  pcb->rcv_wnd >= half;
    /* A delayed ACK is due for data the client has now read: send it. The
     * sender frees its copy only on the ACK, and with many connections that
     * memory is what the others wait for (up to 250 ms otherwise). */
    if (update || tcp_is_flag_set(pcb, TF_ACK_DELAY)) {
        tcp_set_flags(pcb, TF_ACK_NOW); /* tcp_ack_now(), which is lwIP-private */
        tcp_output(pcb);
    }
}

static err_t recv_cb(void *arg, struct tcp_pcb *pcb, struct pbuf *p, err_t err)
{
    nsock_t *ns = arg;
    (void)err; /* always ERR_OK in lwIP 2.1 */
    if (ns == NULL || ns->state == NS_CLOSING || ns->rd_shut) {
        if (p != NULL) { /* nobody reads any more: drop it, keep the window open */
            tcp_recved(pcb, p->tot_len);
            pbuf_free(p);
        }
        if (ns != NULL && p == NULL)
            ns->peer_fin = true;
        return ERR_OK;
    }
    if (p == NULL) {
        ns->peer_fin = true;
        fin_check(ns);
        return ERR_OK;
    }
    uint32_t total = p->tot_len;
    uint32_t room = ns->pend == NULL ? rx_room(ns) : 0;
    uint32_t rest = total > room ? total - room : 0;
    /* What does not fit waits, if the client's memory allows; otherwise
     * lwIP keeps the whole pbuf and offers it again later. */
    if (rest > 0 && !nsock_mem_charge(ns, rest))
        return ERR_MEM;
    nsock_cst(ns)->rx_packets++;
    uint32_t n = total - rest;
    if (n > 0) {
        rx_copy(ns, p, n);
        bytering_prod_publish(&ns->rx);
        ns->rx_queued += n;
        nsock_cst(ns)->rx_bytes += n;
    }
    if (rest == 0) {
        pbuf_free(p);
    } else {
        struct pbuf *tail = p;
        for (uint32_t k = n; k > 0;) { /* drop the bytes that went to the ring */
            uint16_t c = k > 0xffff ? 0xffff : (uint16_t)k;
            tail = pbuf_free_header(tail, c);
            k -= c;
        }
        if (ns->pend == NULL)
            ns->pend = tail;
        else
            pbuf_cat(ns->pend, tail);
        ns->pend_len += rest;
    }
    nsock_update(ns);
    return ERR_OK;
}

/* ---- Send --------------------------------------------------------------------------------- */

static uint32_t heap_free(void)
{
    mem_size_t used = lwip_stats.mem.used;
    return used < MEM_SIZE ? (uint32_t)(MEM_SIZE - used) : 0;
}

static bool tx_empty(nsock_t *ns)
{
    uint32_t avail = 0;
    return bytering_cons_avail(&ns->tx, &avail) != BYTERING_OK || avail == 0;
}

/* lwIP sends a queued segment only whole: one larger than the window the
 * peer offers waits for lwIP's persist timer (1.5 s, then doubling) even
 * when that window is open. Segments are up to 16,000 bytes on loopback
 * and lwIP sizes them by half the largest window the peer ever showed (the
 * SYN's 65535), so a peer whose SO_RCVBUF is below two segments would
 * crawl. With nothing in flight, send the part that fits now, as the
 * persist timer would later (and as RFC 1122 4.2.3.4 lets a sender: with
 * nothing unacknowledged it is no silly-window trickle). */
static void tx_fit_window(struct tcp_pcb *pcb)
{
    struct tcp_seg *seg = pcb->unsent;
    if (seg == NULL || pcb->unacked != NULL || pcb->snd_wnd == 0 || seg->len <= pcb->snd_wnd)
        return;
    if (tcp_split_unsent_seg(pcb, (u16_t)pcb->snd_wnd) == ERR_OK)
        tcp_output(pcb);
}

/* A segment arrived for a PCB (LWIP_HOOK_TCP_INPACKET_PCB, before lwIP
 * processes it): if it may be the window update that lets a held-back
 * segment out (tx_fit_window), look at the socket once lwIP is done. An
 * ACK of data in flight comes back through sent_cb anyway. */
static void inpacket(struct tcp_pcb *pcb)
{
    if (pcb->state != ESTABLISHED && pcb->state != CLOSE_WAIT)
        return; /* listeners have no unsent list; others send no data */
    if (pcb->unsent != NULL && pcb->unacked == NULL && pcb->callback_arg != NULL)
        nsock_later(pcb->callback_arg);
}

void nsock_tcp_init(void)
{
    ferry_lwip_tcp_inpacket_fn = inpacket;
}

/* TX ring -> lwIP, as far as lwIP takes it. */
static void tx_drain(nsock_t *ns)
{
    struct tcp_pcb *pcb = ns->pcb.tcp;
    if (pcb == NULL || ns->tstate != TS_CONNECTED || ns->wr_shut_done)
        return;
    bool wrote = false;
    for (;;) {
        /* snd_buf itself: tcp_sndbuf() clamps to 16 bits with window
         * scaling, and TCP_SND_BUF is larger. */
        uint32_t room = pcb->snd_buf;
        uint32_t inflight = TCP_SND_BUF - room;
        uint32_t allowed = ns->sndbuf > inflight ? ns->sndbuf - inflight : 0;
        if (allowed < room)
            room = allowed;
        if (room > 0xffff)
            room = 0xffff;
        if (room == 0 || pcb->snd_queuelen >= TCP_SND_QUEUELEN - 1)
            break; /* the sent callback comes back here */
        const void *ptr;
        uint32_t len;
        if (bytering_cons_span(&ns->tx, 0, &ptr, &len) != BYTERING_OK) {
            nsock_cst(ns)->failures++; /* an impossible tail */
            break;
        }
        if (len == 0)
            break;
        uint16_t n = (uint16_t)(len < room ? len : room);
        if (heap_free() < n + NSOCK_MEM_RESERVE) {
            nsock_starve(ns);
            break;
        }
        err_t err = tcp_write(pcb, ptr, n, TCP_WRITE_FLAG_COPY);
        if (err == ERR_MEM) {
            nsock_starve(ns);
            break;
        }
        if (err != ERR_OK)
            break;
        bytering_cons_skip(&ns->tx, n);
        wrote = true;
        nsock_cst(ns)->tx_bytes += n;
        nsock_cst(ns)->tx_packets++;
    }
    if (wrote) {
        bytering_cons_publish(&ns->tx); /* space for the client */
        nsock_update(ns);
        tcp_output(pcb);
    }
    tx_fit_window(pcb);
    if (ns->wr_shut_req && !ns->wr_shut_done && tx_empty(ns) &&
        tcp_shutdown(pcb, 0, 1) == ERR_OK) {
        ns->wr_shut_done = true;
        nsock_update(ns);
    }
}

/* ---- Close -------------------------------------------------------------------------------- */

static void abort_pcb(nsock_t *ns)
{
    struct tcp_pcb *pcb = ns->pcb.tcp;
    if (pcb == NULL)
        return;
    bool listening = pcb->state == LISTEN;
    detach(ns);
    if (listening)
        tcp_close(pcb); /* never fails for a listen PCB */
    else
        tcp_abort(pcb);
}

static void free_queue(nsock_t *l)
{
    nsock_t *child;
    while ((child = queue_take(l)) != NULL) {
        abort_pcb(child);
        nsock_free(child);
    }
}

void nsock_tcp_abort(nsock_t *ns)
{
    if (ns->parent != NULL)
        queue_remove(ns);
    free_queue(ns);
    abort_pcb(ns);
    nsock_free(ns);
}

/* A closing socket: once the TX ring is in lwIP (and, while a close with
 * SO_LINGER > 0 waits, acknowledged), FIN, detach, free the slot. Never
 * from inside an lwIP callback (tcp_close may free the PCB lwIP is working
 * on): callbacks queue the socket with nsock_later(). */
static void close_finish(nsock_t *ns, bool hold_for_ack)
{
    struct tcp_pcb *pcb = ns->pcb.tcp;
    if (pcb == NULL || ns->tstate != TS_CONNECTED) {
        nsock_reply_status(ns, 0);
        nsock_free(ns);
        return;
    }
    tx_drain(ns);
    if (!tx_empty(ns))
        return; /* sent_cb or poll_cb comes back */
    if (hold_for_ack && (pcb->unsent != NULL || pcb->unacked != NULL))
        return;
    /* Every byte received was read (else close() reset the connection):
     * lwIP must see its whole window back, or it answers tcp_close with RST. */
    if (ns->rx_queued == 0 && ns->pend == NULL)
        pcb->rcv_wnd = TCP_WND_MAX(pcb);
    ns->close_err_mem = tcp_close(pcb) != ERR_OK;
    if (ns->close_err_mem)
        return; /* no memory for the FIN: poll_cb retries */
    detach(ns);
    nsock_reply_status(ns, 0);
    nsock_free(ns);
}

int32_t nsock_tcp_close(nsock_t *ns, const mk_recv_info_t *info)
{
    if (ns->tstate != TS_CONNECTED || ns->pcb.tcp == NULL) {
        if (ns->tstate == TS_CONNECTING)
            nsock_reply_status(ns, SOCK_ECONNRESET);
        nsock_tcp_abort(ns); /* listeners close, new PCBs are freed */
        return 0;
    }
    rx_credit(ns);
    bool unread = ns->rx_queued > 0 || ns->pend != NULL;
    if ((ns->linger_on && ns->linger_s == 0) || unread) {
        /* RST: SO_LINGER 0, or data the client never read (as Linux). */
        nsock_tcp_abort(ns);
        return 0;
    }
    ns->state = NS_CLOSING;
    ns->claimed = 0; /* no more ready bits; the slot shows closed */
    sock_slot_t *sl = sock_slot(ns->sess->base, &ns->sess->l, ns->id);
    atomic_store_explicit(&sl->open, 0, memory_order_relaxed);
    atomic_store_explicit(&sl->events, 0, memory_order_release);
    ns->deadline_ms = sys_now() + NSOCK_CLOSE_TIMEOUT_MS;
    bool linger = ns->linger_on && info != NULL;
    close_finish(ns, linger); /* may be over at once (the slot is then free) */
    if (!linger || ns->state != NS_CLOSING)
        return 0;
    ns->wait = WAIT_CLOSE;
    ns->reply = info->reply;
    ns->deadline_ms = sys_now() + ns->linger_s * 1000u;
    return IDL_DEFERRED;
}

int32_t nsock_tcp_shutdown(nsock_t *ns, uint32_t how)
{
    if (ns->tstate != TS_CONNECTED)
        return SOCK_ENOTCONN;
    if (how != 1) { /* SHUT_RD or SHUT_RDWR: drop what waits and what comes */
        ns->rd_shut = true;
        if (ns->pend != NULL) {
            uint32_t n = ns->pend_len;
            if (ns->pcb.tcp != NULL)
                for (uint32_t k = n; k > 0;) {
                    uint16_t c = k > 0xffff ? 0xffff : (uint16_t)k;
                    tcp_recved(ns->pcb.tcp, c);
                    k -= c;
                }
            pbuf_free(ns->pend);
            ns->pend = NULL;
            ns->pend_len = 0;
            nsock_mem_release(ns, n);
        }
    }
    if (how != 0)
        ns->wr_shut_req = true;
    tx_drain(ns); /* FIN once the TX ring is empty */
    nsock_update(ns);
    return 0;
}

/* ---- lwIP's other callbacks --------------------------------------------------------------- */

static err_t sent_cb(void *arg, struct tcp_pcb *pcb, u16_t len)
{
    nsock_t *ns = arg;
    (void)pcb;
    (void)len;
    nsock.mem_freed = true;
    if (ns == NULL)
        return ERR_OK;
    tx_drain(ns);
    if (ns->state == NS_CLOSING)
        nsock_later(ns); /* close_finish from the loop */
    return ERR_OK;
}

static err_t poll_cb(void *arg, struct tcp_pcb *pcb)
{
    nsock_t *ns = arg;
    if (ns == NULL)
        return ERR_OK;
    if (ns->state == NS_CLOSING) {
        if (ns->wait == WAIT_CLOSE && (int32_t)(sys_now() - ns->deadline_ms) >= 0) {
            nsock_reply_status(ns, 0); /* the linger time is up: go on in the background */
            ns->deadline_ms = sys_now() + NSOCK_CLOSE_TIMEOUT_MS;
        }
        if ((int32_t)(sys_now() - ns->deadline_ms) >= 0) {
            detach(ns);
            tcp_abort(pcb); /* a peer that never takes the data */
            nsock_free(ns);
            return ERR_ABRT;
        }
        nsock_later(ns);
        return ERR_OK;
    }
    tx_drain(ns); /* a safety net for starved sockets */
    return ERR_OK;
}

static uint32_t errno_of(const nsock_t *ns, err_t err)
{
    if (ns->tstate == TS_CONNECTING)
        return NSOCK_ERRNO(err == ERR_RST ? SOCK_ECONNREFUSED : SOCK_ETIMEDOUT);
    switch (err) {
    case ERR_RST: return NSOCK_ERRNO(SOCK_ECONNRESET);
    case ERR_ABRT: return NSOCK_ERRNO(SOCK_ETIMEDOUT);
    case ERR_CLSD: return 0; /* both sides closed: no error */
    default: return NSOCK_ERRNO(SOCK_ECONNABORTED);
    }
}

/* The PCB is gone (lwIP freed it): reset, refused, timed out, or closed
 * on both sides. */
static void err_cb(void *arg, err_t err)
{
    nsock_t *ns = arg;
    if (ns == NULL)
        return;
    ns->pcb.tcp = NULL;
    uint32_t e = errno_of(ns, err);
    bool was_connecting = ns->tstate == TS_CONNECTING;
    ns->tstate = TS_DOWN;
    if (ns->state == NS_CLOSING || !ns->claimed) { /* nobody will read it */
        if (ns->parent != NULL)
            queue_remove(ns);
        nsock_reply_status(ns, 0);
        nsock_free(ns);
        return;
    }
    if (e != 0 && ns->pend != NULL) { /* a reset discards what was not read */
        nsock_mem_release(ns, ns->pend_len);
        pbuf_free(ns->pend);
        ns->pend = NULL;
        ns->pend_len = 0;
    }
    if (was_connecting && ns->wait == WAIT_CONNECT) {
        nsock_update(ns);
        nsock_reply_status(ns, -(int32_t)(IDL_EUSER + e)); /* the error goes to connect() */
        return;
    }
    if (e != 0)
        nsock_set_error(ns, e);
    else
        nsock_update(ns);
}

/* ---- TIME-WAIT ---------------------------------------------------------------------------- */

/* netsrv keeps at most FERRY_TCP_TIME_WAIT_MAX PCBs in TIME-WAIT
 * (lwipopts.h says why) and recycles the oldest beyond, without walking
 * lwIP's list for every connection:
 *
 *   - lwIP puts a PCB that enters TIME-WAIT at the head of tcp_tw_pcbs
 *     and never reorders the list, so it is newest first. Once per loop
 *     turn the PCBs new since the last turn (the head of the list, down to
 *     the first one already seen) are counted and marked as seen: their
 *     callback argument becomes &tw_seen. lwIP calls nothing back on a PCB
 *     in TIME-WAIT, and one netsrv closed has no callbacks left. So a turn
 *     costs one look at the head, plus one step per new PCB.
 *   - The count (nsock.tw_count) is at least the truth: lwIP frees expired
 *     PCBs without telling (tcp_slowtmr), and when its pool runs dry
 *     (tcp_alloc). When the count passes the bound, the list is walked and
 *     counted; if it does hold more than the bound, it is cut down to
 *     TW_KEEP, freeing the oldest. The walk is paid once per TW_BATCH new
 *     entries at most (a few steps per connection), or, below about 8.5
 *     connections ending per second, when entries meet expiries near the
 *     bound, at that low rate.
 *   - A socket whose PCB entered TIME-WAIT (shutdown(SHUT_WR), then the
 *     peer's FIN: the client has not closed it) lets go of the PCB when it
 *     is seen, as if lwIP had reported the close (ERR_CLSD): lwIP frees
 *     TIME-WAIT PCBs without a callback, so the socket must not keep one.
 *     Linux's socket is closed at that point too. */
#define TW_BATCH (FERRY_TCP_TIME_WAIT_MAX / 8)
#define TW_KEEP (FERRY_TCP_TIME_WAIT_MAX - TW_BATCH)
_Static_assert(TW_BATCH > 0, "FERRY_TCP_TIME_WAIT_MAX too small for batches");

static char tw_seen; /* the callback argument of a TIME-WAIT PCB counted already */

/* A PCB in TIME-WAIT, new since the last turn. */
static void tw_see(struct tcp_pcb *pcb)
{
    nsock_t *ns = pcb->callback_arg;
    if (ns != NULL) { /* a socket's: the connection is over on both sides */
        detach(ns);
        err_cb(ns, ERR_CLSD);
    }
    tcp_arg(pcb, &tw_seen);
    nsock.tw_count++;
}

/* Count the list; beyond the bound, free the oldest down to TW_KEEP. */
static void tw_trim(void)
{
    struct tcp_pcb *last = NULL, *p = tcp_tw_pcbs;
    uint32_t n = 0;
    for (; p != NULL && n < FERRY_TCP_TIME_WAIT_MAX; p = p->next, n++)
        if (n + 1 == TW_KEEP)
            last = p;
    if (p == NULL) {
        nsock.tw_count = n; /* within the bound: only the count was high */
        return;
    }
    struct tcp_pcb *cut = last->next; /* the oldest, all of them seen */
    last->next = NULL;
    while (cut != NULL) {
        struct tcp_pcb *pcb = cut;
        tcp_pcb_remove(&cut, pcb); /* the head of `cut`: no search; CLOSED */
        tcp_free(pcb);
        nsock.st.tcp_time_wait_recycled++;
    }
    nsock.tw_count = TW_KEEP;
}

void nsock_tcp_time_wait_turn(void)
{
    for (struct tcp_pcb *p = tcp_tw_pcbs; p != NULL && p->callback_arg != &tw_seen; p = p->next)
        tw_see(p);
    if (nsock.tw_count > FERRY_TCP_TIME_WAIT_MAX)
        tw_trim();
}

uint32_t nsock_tcp_time_wait_count(void)
{
    uint32_t n = 0;
    for (struct tcp_pcb *p = tcp_tw_pcbs; p != NULL; p = p->next)
        n++;
    return n;
}

void nsock_tcp_doorbell(nsock_t *ns)
{
    if (ns->state == NS_CLOSING) {
        close_finish(ns, ns->wait == WAIT_CLOSE);
        return;
    }
    rx_credit(ns);
    rx_refill(ns);
    tx_drain(ns);
}

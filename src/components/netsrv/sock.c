/*
 * sock.c - netsrv's socket service (sock.idl on netsrv's endpoint): clients
 * and sessions, decoding of every request down to a socket of the caller's
 * own session, the doorbell and ready bitmaps, client death, counters.
 * TCP and UDP live in sock_tcp.c and sock_udp.c. Protocol:
 * docs/socket-session.md.
 *
 * Identity: a client is the badge of its send capability to netsrv's
 * endpoint (given by the boot configuration); an unbadged caller cannot
 * open a session. Every request names a session, which must be one of the
 * caller's own (else ESTALE), and a socket id, which must be an open,
 * accepted socket of that session (else EBADF). So a client can only ever
 * name its own sockets.
 *
 * Each loop turn (loop.c):
 *   netsrv_sock_signals   death notices -> tear the dead client's sessions down
 *   netsrv_sock_work      doorbells: for each bit set by a client, credit the
 *                         RX bytes it consumed (the TCP window opens), refill
 *                         the RX ring from pending pbufs, drain the TX ring
 *                         into lwIP; retry sockets starved of lwIP memory
 *   ... lwIP runs (loopback delivery, timers): callbacks fill RX rings ...
 *   netsrv_sock_flush     count the PCBs lwIP put in TIME-WAIT and keep at
 *                         most FERRY_TCP_TIME_WAIT_MAX (sock_tcp.c); signal
 *                         each client that has new ready bits, if it asked
 *                         (client_wanted)
 *   netsrv_sock_prepare_sleep   ask every client for a doorbell signal
 *                         (server_wanted), re-check the doorbells
 */
#include <stdlib.h>
#include <string.h>

#include "lwip/mem.h"
#include "lwip/stats.h"
#include "sock_priv.h"

nsock_srv_t nsock;

/* ---- Clients and counters ----------------------------------------------------------------- */

static nsock_client_t *client_find(mk_badge_t badge)
{
    for (unsigned i = 0; i < NSOCK_CLIENTS_MAX; i++)
        if (nsock.clients[i].used && nsock.clients[i].badge == badge)
            return &nsock.clients[i];
    return NULL;
}

static nsock_client_t *client_get(mk_badge_t badge)
{
    nsock_client_t *c = client_find(badge);
    if (c != NULL)
        return c;
    for (unsigned i = 0; i < NSOCK_CLIENTS_MAX; i++)
        if (!nsock.clients[i].used) {
            c = &nsock.clients[i];
            memset(c, 0, sizeof *c);
            c->used = true;
            c->badge = badge;
            c->st.sockets_max = nsock.sockets_max;
            c->st.memory_max = nsock.memory_max;
            return c;
        }
    return NULL;
}

/* A refused request: counted for the caller, if it is a client. */
static int32_t refuse(const mk_recv_info_t *info, int32_t status)
{
    nsock.st.bad_requests++;
    nsock_client_t *c = client_find(info->badge);
    if (c != NULL)
        c->st.failures++;
    return status;
}

bool nsock_mem_charge(nsock_t *ns, uint32_t bytes)
{
    sock_client_stats_t *st = nsock_cst(ns);
    if (st->memory + bytes > st->memory_max)
        return false;
    st->memory += bytes;
    nsock.st.pending_bytes += bytes;
    return true;
}

void nsock_mem_release(nsock_t *ns, uint32_t bytes)
{
    nsock_cst(ns)->memory -= bytes;
    nsock.st.pending_bytes -= bytes;
    nsock.mem_freed = true;
}

/* ---- Events, errors, ready bits ----------------------------------------------------------- */

static sock_slot_t *slot_of(nsock_t *ns)
{
    return sock_slot(ns->sess->base, &ns->sess->l, ns->id);
}

/* The level state a socket shows (ferry/sock_region.h SOCK_EV_*). Data in
 * the RX ring and space in the TX ring are not events: the rings say so. */
static uint32_t events_of(const nsock_t *ns)
{
    uint32_t ev = ns->error != 0 ? SOCK_EV_ERR : 0;
    bool eof = ns->pend == NULL; /* every byte received is in the ring */
    if (ns->udp)
        return ev | SOCK_EV_OUT | (ns->rd_shut ? SOCK_EV_IN | SOCK_EV_RDHUP : 0);
    switch (ns->tstate) {
    case TS_LISTEN:
        if (ns->q_len > 0)
            ev |= SOCK_EV_IN;
        break;
    case TS_CONNECTED:
        if (!ns->wr_shut_req)
            ev |= SOCK_EV_OUT;
        if (ns->fin_delivered || ns->rd_shut)
            ev |= SOCK_EV_IN | SOCK_EV_RDHUP;
        if (ns->fin_delivered && ns->wr_shut_done)
            ev |= SOCK_EV_HUP;
        break;
    case TS_DOWN:
        ev |= SOCK_EV_OUT;
        if (eof)
            ev |= SOCK_EV_IN | SOCK_EV_RDHUP | SOCK_EV_HUP;
        break;
    default:
        break;
    }
    return ev;
}

static void mark_ready(nsock_t *ns)
{
    if (!ns->claimed || ns->sess->dead)
        return;
    sock_bit_set(sock_map(ns->sess->base, ns->sess->l.ready), ns->id);
    ns->sess->signal_due = true;
}

void nsock_update(nsock_t *ns)
{
    if (ns->state == NS_FREE)
        return;
    uint32_t ev = events_of(ns);
    if (ev != ns->events && ns->claimed) {
        ns->events = ev;
        /* After the ring publishes that led here (release), before the
         * ready bit (SB1 in sock_region.h). */
        atomic_store_explicit(&slot_of(ns)->events, ev, memory_order_release);
    }
    mark_ready(ns);
}

void nsock_set_error(nsock_t *ns, uint32_t err)
{
    ns->error = err;
    if (ns->claimed)
        atomic_store_explicit(&slot_of(ns)->error, err, memory_order_release);
    nsock_update(ns);
}

/* ---- Slots -------------------------------------------------------------------------------- */

nsock_t *nsock_alloc(nsock_session_t *se, bool udp, uint16_t family)
{
    sock_client_stats_t *st = &se->client->st;
    if (st->sockets >= st->sockets_max)
        return NULL;
    for (uint32_t i = 0; i < se->l.max_sockets; i++) {
        nsock_t *ns = &se->socks[i];
        if (ns->state != NS_FREE)
            continue;
        memset(ns, 0, sizeof *ns);
        ns->sess = se;
        ns->id = i;
        ns->state = NS_OPEN;
        ns->udp = udp;
        ns->family = family;
        ns->rcvbuf = ns->sndbuf = se->l.ring_size;
        ns->ttl4 = ns->hops6 = IP_DEFAULT_TTL;
        ns->mttl4 = ns->mhops6 = 1; /* multicast stays on the link unless asked */
        ns->mloop4 = ns->mloop6 = true;
        /* The client attaches only after it learns the id, so netsrv may
         * reset the rings now: both indices 0. */
        bytering_t *rx = sock_rx_ring(se->base, &se->l, i);
        bytering_t *tx = sock_tx_ring(se->base, &se->l, i);
        bytering_init(rx, se->l.ring_size, 0);
        bytering_init(tx, se->l.ring_size, 0);
        bytering_prod_attach(&ns->rx, rx, se->l.ring_size);
        bytering_cons_attach(&ns->tx, tx, se->l.ring_size);
        sock_slot_t *sl = sock_slot(se->base, &se->l, i);
        atomic_store_explicit(&sl->events, 0, memory_order_relaxed);
        atomic_store_explicit(&sl->error, 0, memory_order_relaxed);
        atomic_store_explicit(&sl->open, 0, memory_order_release);
        se->nopen++;
        st->sockets++;
        nsock.st.sockets++;
        nsock.st.sockets_created++;
        return ns;
    }
    return NULL;
}

/* The client learns the socket (socket() or accept() answered). */
static void claim(nsock_t *ns)
{
    ns->claimed = 1;
    sock_slot_t *sl = slot_of(ns);
    ns->events = events_of(ns);
    atomic_store_explicit(&sl->error, ns->error, memory_order_relaxed);
    atomic_store_explicit(&sl->events, ns->events, memory_order_relaxed);
    atomic_store_explicit(&sl->open, 1, memory_order_release);
}

static void unstarve(nsock_t *ns)
{
    if (!ns->starved)
        return;
    nsock_t *prev = NULL;
    for (nsock_t *p = nsock.starved; p != NULL; prev = p, p = p->starved_next)
        if (p == ns) {
            if (prev != NULL)
                prev->starved_next = ns->starved_next;
            else
                nsock.starved = ns->starved_next;
            if (nsock.starved_tail == ns)
                nsock.starved_tail = prev;
            break;
        }
    ns->starved = false;
}

void nsock_later(nsock_t *ns)
{
    if (ns->later)
        return;
    ns->later = true;
    ns->later_next = nsock.later;
    nsock.later = ns;
}

static void unlater(nsock_t *ns)
{
    if (!ns->later)
        return;
    for (nsock_t **p = &nsock.later; *p != NULL; p = &(*p)->later_next)
        if (*p == ns) {
            *p = ns->later_next;
            break;
        }
    ns->later = false;
}

void nsock_starve(nsock_t *ns)
{
    if (ns->starved)
        return;
    ns->starved = true;
    ns->starved_next = NULL;
    if (nsock.starve_front) { /* a retry that found no memory either */
        ns->starved_next = nsock.starved;
        nsock.starved = ns;
        if (nsock.starved_tail == NULL)
            nsock.starved_tail = ns;
        return;
    }
    if (nsock.starved_tail != NULL)
        nsock.starved_tail->starved_next = ns;
    else
        nsock.starved = ns;
    nsock.starved_tail = ns;
    nsock.st.tx_starved++;
}

static void session_destroy(nsock_session_t *se);

void nsock_free(nsock_t *ns)
{
    nsock_session_t *se = ns->sess;
    if (ns->state == NS_FREE)
        return;
    unstarve(ns);
    unlater(ns);
    if (ns->pend != NULL) {
        nsock_mem_release(ns, ns->pend_len);
        pbuf_free(ns->pend);
        ns->pend = NULL;
        ns->pend_len = 0;
    }
    if (ns->wait != WAIT_NONE) {
        mk_cap_delete(ns->reply); /* the caller's call ends with MK_EDEAD */
        ns->wait = WAIT_NONE;
    }
    if (ns->w_head != NULL) /* blocked accepts: EBADF, or dropped with a dead client */
        nsock_tcp_accept_fail(ns, se->dead ? 0 : SOCK_EBADF);
    nsock_udp_groups_drop(ns);
    if (ns->claimed && !se->dead) {
        sock_slot_t *sl = slot_of(ns);
        atomic_store_explicit(&sl->open, 0, memory_order_relaxed);
        atomic_store_explicit(&sl->events, 0, memory_order_release);
    }
    ns->state = NS_FREE;
    se->nopen--;
    se->client->st.sockets--;
    nsock.st.sockets--;
    if (se->dead && se->nopen == 0)
        session_destroy(se);
}

void nsock_reply_status(nsock_t *ns, int32_t status)
{
    if (ns->wait == WAIT_NONE)
        return;
    uint8_t wait = ns->wait;
    ns->wait = WAIT_NONE;
    if (wait == WAIT_CONNECT)
        sock_connect_reply(ns->reply, status);
    else
        sock_close_reply(ns->reply, status);
}

/* ---- Addresses ---------------------------------------------------------------------------- */

/* netsrv.idl's interface index + 1 of an lwIP netif index, 0 if none. */
uint32_t nsock_scope_of(uint8_t zone)
{
    for (uint32_t i = 0;; i++) {
        struct netif *n = netsrv_netif_at(nsock.srv, i);
        if (n == NULL)
            return 0;
        if (netif_get_index(n) == zone)
            return i + 1;
    }
}

struct netif *nsock_netif_of_scope(uint32_t scope)
{
    return scope != 0 ? netsrv_netif_at(nsock.srv, scope - 1) : NULL;
}

static bool addr_is_local(const ip_addr_t *ip)
{
    struct netif *n;
    if (IP_IS_V4(ip) && ip4_addr_isloopback(ip_2_ip4(ip)))
        return true;
    NETIF_FOREACH(n)
    {
        if (IP_IS_V4(ip) && ip4_addr_cmp(netif_ip4_addr(n), ip_2_ip4(ip)))
            return true;
        if (IP_IS_V6(ip) && netif_get_ip6_addr_match(n, ip_2_ip6(ip)) >= 0)
            return true;
    }
    return false;
}

int32_t nsock_addr_to_lwip(const nsock_t *ns, const sock_addr_t *a, ip_addr_t *ip, bool local)
{
    if (a->family != ns->family)
        return SOCK_EAFNOSUPPORT;
    if (a->family == NSOCK_AF_INET) {
        if (a->hi != 0 || a->lo > 0xffffffffu || a->scope != 0)
            return SOCK_EINVAL;
        ip_addr_set_ip4_u32_val(*ip, lwip_htonl((uint32_t)a->lo));
    } else if (a->hi == 0 && (a->lo >> 32) == 0xffffu) { /* ::ffff:a.b.c.d */
        if (ns->v6only)
            return local ? SOCK_EADDRNOTAVAIL : SOCK_ENETUNREACH;
        ip_addr_set_ip4_u32_val(*ip, lwip_htonl((uint32_t)a->lo));
    } else {
        IP_ADDR6(ip, lwip_htonl((uint32_t)(a->hi >> 32)), lwip_htonl((uint32_t)a->hi),
                 lwip_htonl((uint32_t)(a->lo >> 32)), lwip_htonl((uint32_t)a->lo));
        ip6_addr_t *a6 = ip_2_ip6(ip);
        if (ip6_addr_isany(a6)) {
            if (local && !ns->v6only)
                *ip = *IP_ANY_TYPE; /* dual stack: IPv4 too */
            return local || a->scope == 0 ? 0 : SOCK_EINVAL;
        }
        if (ip6_addr_islinklocal(a6)) {
            struct netif *n = a->scope != 0 ? netsrv_netif_at(nsock.srv, a->scope - 1) : NULL;
            if (n == NULL)
                return SOCK_EINVAL;
            ip6_addr_set_zone(a6, netif_get_index(n));
        } else if (a->scope != 0) {
            return SOCK_EINVAL;
        }
    }
    if (local && !ip_addr_isany(ip) && !addr_is_local(ip))
        return SOCK_EADDRNOTAVAIL;
    return 0;
}

void nsock_addr_from_lwip(const nsock_t *ns, const ip_addr_t *ip, uint16_t port, sock_addr_t *a)
{
    memset(a, 0, sizeof *a);
    a->family = ns->family;
    a->port = port;
    if (ip == NULL || IP_IS_ANY_TYPE_VAL(*ip))
        return; /* unbound: 0.0.0.0 or :: */
    if (IP_IS_V4(ip)) {
        uint32_t v4 = lwip_ntohl(ip4_addr_get_u32(ip_2_ip4(ip)));
        if (ns->family == NSOCK_AF_INET)
            a->lo = v4;
        else if (v4 != 0)
            a->lo = 0xffff00000000ull | v4; /* ::ffff:a.b.c.d */
        return;
    }
    const ip6_addr_t *a6 = ip_2_ip6(ip);
    a->hi = (uint64_t)lwip_ntohl(a6->addr[0]) << 32 | lwip_ntohl(a6->addr[1]);
    a->lo = (uint64_t)lwip_ntohl(a6->addr[2]) << 32 | lwip_ntohl(a6->addr[3]);
    if (ip6_addr_has_zone(a6))
        a->scope = nsock_scope_of(ip6_addr_zone(a6));
}

/* ---- Sessions ----------------------------------------------------------------------------- */

static void session_destroy(nsock_session_t *se)
{
    mk_shm_unmap(se->base, se->map_size);
    mk_cap_delete(se->client_signal);
    mk_cap_delete(se->server_signal);
    free(se->socks);
    nsock_client_t *c = se->client;
    c->st.memory -= se->memory;
    if (--c->sessions == 0)
        c->used = false;
    nsock.st.sessions--;
    se->used = false;
}

static nsock_session_t *session_of(const mk_recv_info_t *info, uint32_t number)
{
    nsock_session_t *se = &nsock.sessions[number % NSOCK_SESSIONS_MAX];
    if (!se->used || se->dead || se->number != number || se->client->badge != info->badge)
        return NULL;
    return se;
}

/* Decode (session, socket) of a request: the caller's own open, accepted
 * socket, or an error status. */
static int32_t sock_get(const mk_recv_info_t *info, uint32_t session, uint32_t id, nsock_t **out)
{
    nsock_session_t *se = session_of(info, session);
    if (se == NULL)
        return refuse(info, SOCK_ESTALE);
    if (id >= se->l.max_sockets || se->socks[id].state != NS_OPEN || !se->socks[id].claimed)
        return refuse(info, SOCK_EBADF);
    *out = &se->socks[id];
    return 0;
}

static bool caps_ok(mk_cap_t region, mk_cap_t signal, size_t need)
{
    mk_cap_info_t ri, si;
    return mk_cap_info(region, &ri) == MK_OK && ri.type == MK_OBJ_SHM &&
           (ri.rights & (MK_RIGHT_READ | MK_RIGHT_WRITE)) == (MK_RIGHT_READ | MK_RIGHT_WRITE) &&
           ri.size >= need && mk_cap_info(signal, &si) == MK_OK &&
           si.type == MK_OBJ_NOTIFICATION && (si.rights & MK_RIGHT_SEND) != 0;
}

static bool header_ok(const sock_region_hdr_t *h, uint32_t max_sockets, uint32_t ring_size)
{
    return h->magic == SOCK_REGION_MAGIC && h->version == SOCK_REGION_VERSION &&
           h->max_sockets == max_sockets && h->ring_size == ring_size;
}

static int32_t session_open(const mk_recv_info_t *info, mk_cap_t region, mk_cap_t client_signal,
                            uint32_t max_sockets, uint32_t ring_size, mk_cap_t *server_signal,
                            uint32_t *number)
{
    sock_layout_t l;
    if (info->badge == 0 || sock_layout(max_sockets, ring_size, &l) != 0 ||
        !caps_ok(region, client_signal, l.size))
        return SOCK_EINVAL;
    nsock_client_t *c = client_get(info->badge);
    if (c == NULL)
        return SOCK_ENOBUFS;
    if (c->sessions >= NSOCK_SESSIONS_PER_CLIENT)
        return SOCK_EMFILE;
    nsock_session_t *se = NULL;
    for (unsigned i = 0; i < NSOCK_SESSIONS_MAX && se == NULL; i++)
        if (!nsock.sessions[i].used)
            se = &nsock.sessions[i];
    size_t memory = l.size + (size_t)max_sockets * sizeof(nsock_t);
    int32_t st = 0;
    void *base = NULL;
    size_t map_size = 0;
    if (se == NULL || c->st.memory + memory > c->st.memory_max)
        st = SOCK_ENOBUFS;
    else if (mk_shm_map(region, MK_RIGHT_READ | MK_RIGHT_WRITE, &base, &map_size) != MK_OK)
        st = SOCK_EINVAL;
    else if (!header_ok(base, max_sockets, ring_size))
        st = SOCK_EINVAL;
    nsock_t *socks = st == 0 ? calloc(max_sockets, sizeof *socks) : NULL;
    mk_cap_t sig = MK_CAP_NULL;
    if (st == 0) {
        uint64_t bit = 1ull << (NSOCK_SESSION_BIT0 + (unsigned)(se - nsock.sessions) % 32);
        if (socks == NULL || mk_cap_mint(nsock.srv->ntfn, MK_RIGHT_SEND | MK_RIGHT_GRANT, bit,
                                         &sig) != MK_OK)
            st = SOCK_ENOBUFS;
    }
    if (st != 0) {
        free(socks);
        if (base != NULL)
            mk_shm_unmap(base, map_size);
        if (c->sessions == 0)
            c->used = false;
        return st;
    }
    mk_cap_delete(region); /* the mapping stays */
    if (++nsock.generation == 0)
        nsock.generation = 1;
    *se = (nsock_session_t){.used = true,
                            .index = (uint32_t)(se - nsock.sessions),
                            .client = c,
                            .client_signal = client_signal,
                            .server_signal = sig,
                            .base = base,
                            .map_size = map_size,
                            .l = l,
                            .memory = memory,
                            .socks = socks};
    se->number = nsock.generation * NSOCK_SESSIONS_MAX + se->index;
    fence_store_relaxed_u32(sock_wanted(base, l.srv_wanted), 0);
    c->sessions++;
    c->st.memory += memory;
    nsock.st.sessions++;
    nsock.st.sessions_opened++;
    *server_signal = sig;
    *number = se->number;
    return 0;
}

/* Abort every open socket of the session; background closes go on. The
 * caller destroys the session afterwards if nothing is left (nopen == 0):
 * the loop holds a reference of its own meanwhile, so that freeing the last
 * socket of a dead session cannot free the table it walks. */
static void session_abort_all(nsock_session_t *se, bool count)
{
    se->nopen++;
    for (uint32_t i = 0; i < se->l.max_sockets; i++) {
        nsock_t *ns = &se->socks[i];
        if (ns->state != NS_OPEN)
            continue;
        if (count)
            nsock.st.sockets_reaped++;
        if (ns->udp)
            nsock_udp_close(ns, false);
        else
            nsock_tcp_abort(ns);
    }
    se->nopen--;
}

/* ---- Handlers ------------------------------------------------------------------------------ */

static int32_t h_session_open(void *ctx, const mk_recv_info_t *info, mk_cap_t region,
                              mk_cap_t client_signal, uint32_t max_sockets, uint32_t ring_size,
                              mk_cap_t *server_signal, uint32_t *session)
{
    (void)ctx;
    int32_t st =
        session_open(info, region, client_signal, max_sockets, ring_size, server_signal, session);
    if (st != 0) {
        mk_cap_delete(region);
        mk_cap_delete(client_signal);
    }
    return st;
}

static int32_t h_session_close(void *ctx, const mk_recv_info_t *info, uint32_t session)
{
    (void)ctx;
    nsock_session_t *se = session_of(info, session);
    if (se == NULL)
        return refuse(info, SOCK_ESTALE);
    nsock.st.sessions_closed++;
    /* As close(2) on each socket: graceful closes continue in the
     * background (the region stays mapped until they are over). */
    for (uint32_t i = 0; i < se->l.max_sockets; i++) {
        nsock_t *ns = &se->socks[i];
        if (ns->state != NS_OPEN || !ns->claimed)
            continue;
        ns->linger_on = ns->linger_on && ns->linger_s == 0; /* nobody waits for a linger */
        if (ns->udp)
            nsock_udp_close(ns, true);
        else
            nsock_tcp_close(ns, NULL);
    }
    session_abort_all(se, false); /* connections not accepted yet */
    se->dead = true;
    if (se->nopen == 0)
        session_destroy(se);
    return 0;
}

static int32_t h_socket(void *ctx, const mk_recv_info_t *info, uint32_t session, uint16_t family,
                        uint16_t type, uint16_t protocol, uint32_t *sock)
{
    (void)ctx;
    nsock_session_t *se = session_of(info, session);
    if (se == NULL)
        return refuse(info, SOCK_ESTALE);
    if (family != NSOCK_AF_INET && family != NSOCK_AF_INET6)
        return SOCK_EAFNOSUPPORT;
    if (type != 1 && type != 2)
        return SOCK_EINVAL;
    bool udp = type == 2;
    if (protocol != 0 && protocol != (udp ? NSOCK_IPPROTO_UDP : NSOCK_IPPROTO_TCP))
        return SOCK_EPROTONOSUPPORT;
    nsock_t *ns = nsock_alloc(se, udp, family);
    if (ns == NULL)
        return SOCK_EMFILE;
    int32_t st = udp ? nsock_udp_open(ns) : nsock_tcp_open(ns);
    if (st != 0) {
        nsock_free(ns);
        return st;
    }
    claim(ns);
    *sock = ns->id;
    return 0;
}

static int32_t h_bind(void *ctx, const mk_recv_info_t *info, uint32_t session, uint32_t sock,
                      const sock_addr_t *a)
{
    (void)ctx;
    nsock_t *ns;
    int32_t st = sock_get(info, session, sock, &ns);
    ip_addr_t ip;
    if (st == 0)
        st = nsock_addr_to_lwip(ns, a, &ip, true);
    if (st != 0)
        return st;
    if (ns->bound)
        return SOCK_EINVAL;
    st = ns->udp ? nsock_udp_bind(ns, &ip, a->port) : nsock_tcp_bind(ns, &ip, a->port);
    if (st == 0)
        ns->bound = true;
    return st;
}

static int32_t h_listen(void *ctx, const mk_recv_info_t *info, uint32_t session, uint32_t sock,
                        uint32_t backlog)
{
    (void)ctx;
    nsock_t *ns;
    int32_t st = sock_get(info, session, sock, &ns);
    if (st != 0)
        return st;
    if (ns->udp)
        return SOCK_EOPNOTSUPP;
    return nsock_tcp_listen(ns, backlog);
}

static int32_t h_accept(void *ctx, const mk_recv_info_t *info, uint32_t session, uint32_t sock,
                        bool nonblock, uint32_t *newsock, sock_addr_t *peer)
{
    (void)ctx;
    nsock_t *ns;
    int32_t st = sock_get(info, session, sock, &ns);
    if (st != 0)
        return st;
    if (ns->udp)
        return SOCK_EOPNOTSUPP;
    return nsock_tcp_accept(ns, info, nonblock, newsock, peer);
}

void nsock_claim(nsock_t *ns)
{
    claim(ns);
}

void nsock_unclaim(nsock_t *ns)
{
    ns->claimed = 0;
    sock_slot_t *sl = slot_of(ns);
    atomic_store_explicit(&sl->open, 0, memory_order_relaxed);
    atomic_store_explicit(&sl->events, 0, memory_order_release);
}

static int32_t h_connect(void *ctx, const mk_recv_info_t *info, uint32_t session, uint32_t sock,
                         const sock_addr_t *a, bool nonblock)
{
    (void)ctx;
    nsock_t *ns;
    int32_t st = sock_get(info, session, sock, &ns);
    if (st != 0)
        return st;
    if (ns->udp && a->family == 0) { /* AF_UNSPEC: dissolve the association */
        udp_disconnect(ns->pcb.udp);
        ns->udp_connected = false;
        return 0;
    }
    ip_addr_t ip;
    st = nsock_addr_to_lwip(ns, a, &ip, false);
    if (st != 0)
        return st;
    if (ns->udp)
        return nsock_udp_connect(ns, &ip, a->port);
    return nsock_tcp_connect(ns, info, &ip, a->port, nonblock);
}

static int32_t h_shutdown(void *ctx, const mk_recv_info_t *info, uint32_t session, uint32_t sock,
                          uint32_t how)
{
    (void)ctx;
    nsock_t *ns;
    int32_t st = sock_get(info, session, sock, &ns);
    if (st != 0)
        return st;
    if (how > 2)
        return SOCK_EINVAL;
    if (ns->udp) {
        if (!ns->udp_connected)
            return SOCK_ENOTCONN;
        if (how != 1)
            ns->rd_shut = true;
        nsock_update(ns);
        return 0;
    }
    return nsock_tcp_shutdown(ns, how);
}

static int32_t h_close(void *ctx, const mk_recv_info_t *info, uint32_t session, uint32_t sock)
{
    (void)ctx;
    nsock_t *ns;
    int32_t st = sock_get(info, session, sock, &ns);
    if (st != 0)
        return st;
    if (ns->udp) {
        nsock_udp_close(ns, true);
        return 0;
    }
    return nsock_tcp_close(ns, info);
}

/* close(2) without a reply (libferrysock's close of a socket without
 * SO_LINGER > 0): the same close, nobody waits for it. A bad session or
 * socket can only be counted (sock_get does). */
static void h_close_nowait(void *ctx, const mk_recv_info_t *info, uint32_t session, uint32_t sock)
{
    (void)ctx;
    nsock_t *ns;
    if (sock_get(info, session, sock, &ns) != 0)
        return;
    if (ns->udp)
        nsock_udp_close(ns, true);
    else
        nsock_tcp_close(ns, NULL); /* NULL: no reply to keep, SO_LINGER > 0 goes on behind */
}

static int32_t int_opt(int64_t v, int64_t max, uint32_t *out)
{
    if (v < 0 || v > max)
        return SOCK_EINVAL;
    *out = (uint32_t)v;
    return 0;
}

static int32_t set_sol_socket(nsock_t *ns, int32_t name, int64_t v, int64_t v2)
{
    uint32_t u;
    switch (name) {
    case NSOCK_SO_REUSEADDR:
        ns->reuseaddr = v != 0;
        break;
    case NSOCK_SO_KEEPALIVE:
        ns->keepalive = v != 0;
        break;
    case NSOCK_SO_BROADCAST:
        ns->broadcast = v != 0;
        break;
    case NSOCK_SO_RCVBUF:
    case NSOCK_SO_SNDBUF:
        if (v < 0)
            return SOCK_EINVAL;
        /* Within the ring: at least the smallest ring, at most this one. */
        u = v > (int64_t)ns->sess->l.ring_size ? ns->sess->l.ring_size : (uint32_t)v;
        if (u < BYTERING_SIZE_MIN)
            u = BYTERING_SIZE_MIN;
        if (name == NSOCK_SO_RCVBUF)
            ns->rcvbuf = u;
        else
            ns->sndbuf = u;
        break;
    case NSOCK_SO_LINGER:
        if (int_opt(v2, 3600, &ns->linger_s) != 0)
            return SOCK_EINVAL;
        ns->linger_on = v != 0;
        break;
    default:
        return SOCK_ENOPROTOOPT;
    }
    return 0;
}

/* A TTL or hop limit: -1 is the default, else 0..255 (IPv4's TTL 1..255). */
static int32_t ttl_opt(int64_t v, int64_t min, uint8_t dflt, uint8_t *out)
{
    if (v == -1) {
        *out = dflt;
        return 0;
    }
    if (v < min || v > 255)
        return SOCK_EINVAL;
    *out = (uint8_t)v;
    return 0;
}

/* The netif that has IPv4 address `a` (host order); NULL if none. */
static struct netif *netif_with_ip4(uint32_t a)
{
    struct netif *n;
    NETIF_FOREACH(n)
    {
        if (ip4_addr_get_u32(netif_ip4_addr(n)) == lwip_htonl(a))
            return n;
    }
    return NULL;
}

/* IP_MULTICAST_IF: an interface by index (v2), else by address (v), or
 * none (both 0). EADDRNOTAVAIL for an interface that is not there, as on
 * Linux. */
static int32_t set_mcast_if4(nsock_t *ns, int64_t v, int64_t v2)
{
    if (v < 0 || v > 0xffffffffll || v2 < 0 || v2 > 0xffffffffll)
        return SOCK_EINVAL;
    struct netif *n = NULL;
    if (v2 != 0)
        n = nsock_netif_of_scope((uint32_t)v2);
    else if (v != 0)
        n = netif_with_ip4((uint32_t)v);
    if (n == NULL && (v != 0 || v2 != 0))
        return SOCK_EADDRNOTAVAIL;
    ns->mif4 = n != NULL ? netif_get_index(n) : 0;
    ns->mif4_addr = (uint32_t)v;
    return 0;
}

/* IPPROTO_IP (on AF_INET and, for IPv4 traffic, AF_INET6 sockets). */
static int32_t set_ip(nsock_t *ns, int32_t name, int64_t v, int64_t v2)
{
    switch (name) {
    case NSOCK_IP_TOS:
        if (v < 0 || v > 255)
            return SOCK_EINVAL;
        ns->tos = (uint8_t)v;
        return 0;
    case NSOCK_IP_TTL: return ttl_opt(v, 1, IP_DEFAULT_TTL, &ns->ttl4);
    case NSOCK_IP_MULTICAST_IF: return set_mcast_if4(ns, v, v2);
    case NSOCK_IP_MULTICAST_TTL: return ttl_opt(v, 0, 1, &ns->mttl4);
    case NSOCK_IP_MULTICAST_LOOP: ns->mloop4 = v != 0; return 0;
    case NSOCK_IP_ADD_MEMBERSHIP:
    case NSOCK_IP_DROP_MEMBERSHIP: return SOCK_EINVAL; /* the membership method */
    default: return SOCK_ENOPROTOOPT;
    }
}

/* IPPROTO_IPV6 (AF_INET6 sockets). */
static int32_t set_ipv6(nsock_t *ns, int32_t name, int64_t v)
{
    switch (name) {
    case NSOCK_IPV6_V6ONLY:
        /* Only before the socket has an address (as on Linux). */
        if (ns->bound || (!ns->udp && ns->tstate != TS_NEW) || (ns->udp && ns->udp_connected))
            return SOCK_EINVAL;
        ns->v6only = v != 0;
        return 0;
    case NSOCK_IPV6_UNICAST_HOPS: return ttl_opt(v, 0, IP_DEFAULT_TTL, &ns->hops6);
    case NSOCK_IPV6_MULTICAST_HOPS: return ttl_opt(v, 0, 1, &ns->mhops6);
    case NSOCK_IPV6_MULTICAST_LOOP:
        if (v != 0 && v != 1)
            return SOCK_EINVAL; /* as Linux */
        ns->mloop6 = v != 0;
        return 0;
    case NSOCK_IPV6_MULTICAST_IF: {
        if (v < 0 || v > 0xffffffffll)
            return SOCK_EINVAL;
        struct netif *n = nsock_netif_of_scope((uint32_t)v);
        if (v != 0 && n == NULL)
            return SOCK_ENODEV; /* as Linux */
        ns->mif6 = n != NULL ? netif_get_index(n) : 0;
        return 0;
    }
    case NSOCK_IPV6_JOIN_GROUP:
    case NSOCK_IPV6_LEAVE_GROUP: return SOCK_EINVAL; /* the membership method */
    default: return SOCK_ENOPROTOOPT;
    }
}

static int32_t h_setsockopt(void *ctx, const mk_recv_info_t *info, uint32_t session, uint32_t sock,
                            int32_t level, int32_t name, int64_t value, int64_t value2)
{
    (void)ctx;
    nsock_t *ns;
    int32_t st = sock_get(info, session, sock, &ns);
    if (st != 0)
        return st;
    if (level == NSOCK_SOL_SOCKET) {
        st = set_sol_socket(ns, name, value, value2);
    } else if (level == NSOCK_IPPROTO_TCP && name == NSOCK_TCP_NODELAY && !ns->udp) {
        ns->nodelay = value != 0;
    } else if (level == NSOCK_IPPROTO_IP) {
        st = set_ip(ns, name, value, value2);
    } else if (level == NSOCK_IPPROTO_IPV6 && ns->family == NSOCK_AF_INET6) {
        st = set_ipv6(ns, name, value);
    } else {
        return SOCK_ENOPROTOOPT;
    }
    if (st == 0 && !ns->udp)
        nsock_tcp_apply_options(ns);
    if (st == 0 && ns->udp && ns->pcb.udp != NULL) {
        if (ns->reuseaddr)
            ip_set_option(ns->pcb.udp, SOF_REUSEADDR);
        else
            ip_reset_option(ns->pcb.udp, SOF_REUSEADDR);
        if (ns->broadcast)
            ip_set_option(ns->pcb.udp, SOF_BROADCAST);
        else
            ip_reset_option(ns->pcb.udp, SOF_BROADCAST);
    }
    return st;
}

/* setsockopt without a reply (libferrysock, for options that cannot fail):
 * the same work; a failure can only be counted. */
static void h_setsockopt_nowait(void *ctx, const mk_recv_info_t *info, uint32_t session,
                                uint32_t sock, int32_t level, int32_t name, int64_t value,
                                int64_t value2)
{
    nsock_t *ns;
    if (sock_get(info, session, sock, &ns) != 0)
        return; /* counted */
    int32_t st = h_setsockopt(ctx, info, session, sock, level, name, value, value2);
    if (st != 0)
        refuse(info, st);
}

static int32_t h_getsockopt(void *ctx, const mk_recv_info_t *info, uint32_t session, uint32_t sock,
                            int32_t level, int32_t name, int64_t *value, int64_t *value2)
{
    (void)ctx;
    nsock_t *ns;
    int32_t st = sock_get(info, session, sock, &ns);
    if (st != 0)
        return st;
    *value2 = 0;
    if (level == NSOCK_SOL_SOCKET) {
        switch (name) {
        case NSOCK_SO_REUSEADDR: *value = ns->reuseaddr; break;
        case NSOCK_SO_KEEPALIVE: *value = ns->keepalive; break;
        case NSOCK_SO_BROADCAST: *value = ns->broadcast; break;
        case NSOCK_SO_RCVBUF: *value = ns->rcvbuf; break;
        case NSOCK_SO_SNDBUF: *value = ns->sndbuf; break;
        case NSOCK_SO_TYPE: *value = ns->udp ? 2 : 1; break;
        case NSOCK_SO_ACCEPTCONN: *value = !ns->udp && ns->tstate == TS_LISTEN; break;
        case NSOCK_SO_LINGER:
            *value = ns->linger_on;
            *value2 = ns->linger_s;
            break;
        case NSOCK_SO_ERROR: /* read and clear */
            *value = ns->error;
            if (ns->error != 0)
                nsock_set_error(ns, 0);
            break;
        default: return SOCK_ENOPROTOOPT;
        }
        return 0;
    }
    if (level == NSOCK_IPPROTO_TCP && name == NSOCK_TCP_NODELAY && !ns->udp) {
        *value = ns->nodelay;
        return 0;
    }
    if (level == NSOCK_IPPROTO_IP) {
        switch (name) {
        case NSOCK_IP_TOS: *value = ns->tos; break;
        case NSOCK_IP_TTL: *value = ns->ttl4; break;
        case NSOCK_IP_MULTICAST_IF: *value = ns->mif4_addr; break;
        case NSOCK_IP_MULTICAST_TTL: *value = ns->mttl4; break;
        case NSOCK_IP_MULTICAST_LOOP: *value = ns->mloop4; break;
        default: return SOCK_ENOPROTOOPT;
        }
        return 0;
    }
    if (level == NSOCK_IPPROTO_IPV6 && ns->family == NSOCK_AF_INET6) {
        switch (name) {
        case NSOCK_IPV6_V6ONLY: *value = ns->v6only; break;
        case NSOCK_IPV6_UNICAST_HOPS: *value = ns->hops6; break;
        case NSOCK_IPV6_MULTICAST_IF: *value = nsock_scope_of(ns->mif6); break;
        case NSOCK_IPV6_MULTICAST_HOPS: *value = ns->mhops6; break;
        case NSOCK_IPV6_MULTICAST_LOOP: *value = ns->mloop6; break;
        default: return SOCK_ENOPROTOOPT;
        }
        return 0;
    }
    return SOCK_ENOPROTOOPT;
}

static int32_t h_getsockname(void *ctx, const mk_recv_info_t *info, uint32_t session, uint32_t sock,
                             sock_addr_t *a)
{
    (void)ctx;
    nsock_t *ns;
    int32_t st = sock_get(info, session, sock, &ns);
    if (st != 0)
        return st;
    bool ok = ns->udp ? nsock_udp_name(ns, true, a) : nsock_tcp_name(ns, true, a);
    if (!ok)
        nsock_addr_from_lwip(ns, NULL, 0, a);
    return 0;
}

static int32_t h_getpeername(void *ctx, const mk_recv_info_t *info, uint32_t session, uint32_t sock,
                             sock_addr_t *a)
{
    (void)ctx;
    nsock_t *ns;
    int32_t st = sock_get(info, session, sock, &ns);
    if (st != 0)
        return st;
    bool ok = ns->udp ? nsock_udp_name(ns, false, a) : nsock_tcp_name(ns, false, a);
    return ok ? 0 : SOCK_ENOTCONN;
}

static int32_t h_membership(void *ctx, const mk_recv_info_t *info, uint32_t session, uint32_t sock,
                            bool join, const sock_addr_t *group, const sock_addr_t *local,
                            uint32_t ifindex)
{
    (void)ctx;
    nsock_t *ns;
    int32_t st = sock_get(info, session, sock, &ns);
    if (st != 0)
        return st;
    if (!ns->udp)
        return SOCK_EPROTO; /* as Linux */
    return nsock_udp_membership(ns, join, group, local, ifindex);
}

static int32_t h_stats(void *ctx, const mk_recv_info_t *info, sock_client_stats_t *s)
{
    (void)ctx;
    nsock_client_t *c = client_find(info->badge);
    if (c != NULL) {
        *s = c->st;
    } else {
        s->sockets_max = nsock.sockets_max;
        s->memory_max = nsock.memory_max;
    }
    return 0;
}

static const sock_ops_t ops = {
    .session_open = h_session_open,
    .session_close = h_session_close,
    .socket = h_socket,
    .bind = h_bind,
    .listen = h_listen,
    .accept = h_accept,
    .connect = h_connect,
    .shutdown = h_shutdown,
    .close = h_close,
    .setsockopt = h_setsockopt,
    .getsockopt = h_getsockopt,
    .getsockname = h_getsockname,
    .getpeername = h_getpeername,
    .stats = h_stats,
    .membership = h_membership,
    .close_nowait = h_close_nowait,
    .setsockopt_nowait = h_setsockopt_nowait,
};

static mk_cap_t dispatch(void *ctx, const mk_recv_info_t *info, mk_msg_t *msg)
{
    mk_cap_t reply = sock_dispatch(&ops, ctx, info, msg);
    /* Malformed at the IDL level (method, size, capabilities, values). */
    if (reply != MK_CAP_NULL && idl_is_protocol_error((int32_t)msg->label))
        refuse(info, 0);
    return reply;
}

/* ---- Administration (netsrv.idl 32..47) --------------------------------------------------- */

uint32_t netsrv_sock_client_count(void)
{
    uint32_t n = 0;
    for (unsigned i = 0; i < NSOCK_CLIENTS_MAX; i++)
        n += nsock.clients[i].used;
    return n;
}

bool netsrv_sock_client_at(uint32_t index, mk_badge_t *badge, netsrv_client_stats_t *st)
{
    for (unsigned i = 0; i < NSOCK_CLIENTS_MAX; i++) {
        const nsock_client_t *c = &nsock.clients[i];
        if (!c->used || index-- != 0)
            continue;
        *badge = c->badge;
        *st = (netsrv_client_stats_t){.sockets = c->st.sockets,
                                      .sockets_max = c->st.sockets_max,
                                      .memory = c->st.memory,
                                      .memory_max = c->st.memory_max,
                                      .tx_bytes = c->st.tx_bytes,
                                      .rx_bytes = c->st.rx_bytes,
                                      .tx_packets = c->st.tx_packets,
                                      .rx_packets = c->st.rx_packets,
                                      .drops = c->st.drops,
                                      .failures = c->st.failures};
        return true;
    }
    return false;
}

void netsrv_sock_totals(netsrv_sock_stats_t *st)
{
    *st = nsock.st;
    st->tcp_time_wait = nsock_tcp_time_wait_count();
    st->tcp_time_wait_max = FERRY_TCP_TIME_WAIT_MAX;
}

/* ---- The loop's hooks ------------------------------------------------------------------------ */

int netsrv_sock_init(netsrv_t *s)
{
    memset(&nsock, 0, sizeof nsock);
    nsock.srv = s;
    nsock.sockets_max = s->cfg.client_sockets;
    nsock.memory_max = s->cfg.client_memory;
    nsock_tcp_init();
    mk_err_t e = mk_cap_mint(s->ntfn, MK_RIGHT_SEND, 1ull << NSOCK_DEATH_BIT, &nsock.death_signal);
    if (e == MK_OK)
        e = mk_ep_death_ntfn(s->ep, nsock.death_signal);
    if (e != MK_OK)
        mk_log("socket service: no death notices (%s): dead clients' sockets will linger",
               mk_strerror(e));
    return netsrv_service_add(s, SOCK_HASH, dispatch, s);
}

static void reap(mk_badge_t badge)
{
    nsock_client_t *c = client_find(badge);
    if (c == NULL)
        return; /* a control client, or one without sessions */
    nsock.st.client_deaths++;
    for (unsigned i = 0; i < NSOCK_SESSIONS_MAX; i++) {
        nsock_session_t *se = &nsock.sessions[i];
        if (!se->used || se->client != c || se->dead)
            continue;
        nsock.st.sessions_reaped++;
        se->dead = true; /* no ready bits, no signals from now on */
        session_abort_all(se, true);
        if (se->used && se->nopen == 0)
            session_destroy(se);
    }
}

mk_word_t netsrv_sock_signals(netsrv_t *s, mk_word_t bits)
{
    if (bits & (1ull << NSOCK_DEATH_BIT)) {
        mk_badge_t dead[32];
        uint32_t n = 0;
        for (int round = 0; round < 64; round++) { /* the kernel queue holds 1024 */
            if (mk_ep_dead_badges(s->ep, dead, 32, &n) != MK_OK || n == 0)
                break;
            for (uint32_t i = 0; i < n; i++)
                reap(dead[i]);
        }
    }
    if (bits & NSOCK_SESSION_BITS)
        nsock.st.signals_in++;
    return bits & ~(NSOCK_SESSION_BITS | (1ull << NSOCK_DEATH_BIT));
}

static void doorbell(nsock_t *ns)
{
    if (ns->udp)
        nsock_udp_doorbell(ns);
    else
        nsock_tcp_doorbell(ns);
}

static void session_doorbells(nsock_session_t *se)
{
    _Atomic uint64_t *map = sock_map(se->base, se->l.doorbell);
    /* Awake now: clients need not signal until the next prepare_sleep. */
    fence_store_relaxed_u32(sock_wanted(se->base, se->l.srv_wanted), 0);
    for (uint32_t w = 0; w < se->l.map_words && !se->dead; w++) {
        uint64_t bits = sock_bits_take(map, w); /* SB3 */
        while (bits != 0 && !se->dead) {
            uint32_t i = w * 64 + (uint32_t)__builtin_ctzll(bits);
            bits &= bits - 1;
            if (i >= se->l.max_sockets) {
                se->client->st.failures++;
                continue;
            }
            if (se->socks[i].state != NS_FREE) {
                doorbell(&se->socks[i]);
                netsrv_loop_relieve();
            }
        }
    }
}

bool netsrv_sock_work(netsrv_t *s)
{
    (void)s;
    nsock.again = false;
    for (unsigned i = 0; i < NSOCK_SESSIONS_MAX; i++)
        if (nsock.sessions[i].used && !nsock.sessions[i].dead)
            session_doorbells(&nsock.sessions[i]);
    /* Pop one at a time from the shared lists (a doorbell may free other
     * sockets, even a whole session); only as many as were there. */
    uint32_t n = 0;
    for (nsock_t *ns = nsock.later; ns != NULL; ns = ns->later_next)
        n++;
    for (; n > 0 && nsock.later != NULL; n--) {
        nsock_t *ns = nsock.later;
        nsock.later = ns->later_next;
        ns->later = false;
        doorbell(ns);
        netsrv_loop_relieve();
    }
    /* Memory came back: the oldest starved sockets first, until one finds
     * none again (it stays in front). */
    if (nsock.mem_freed && nsock.starved != NULL) {
        nsock.mem_freed = false;
        nsock.starve_front = true;
        while (nsock.starved != NULL) {
            nsock_t *ns = nsock.starved;
            nsock.starved = ns->starved_next;
            if (nsock.starved == NULL)
                nsock.starved_tail = NULL;
            ns->starved = false;
            doorbell(ns);
            netsrv_loop_relieve();
            if (nsock.starved == ns) /* starved again (put back in front); ns may be freed otherwise */
                break;
        }
        nsock.starve_front = false;
    }
    return nsock.again;
}

void netsrv_sock_flush(netsrv_t *s)
{
    (void)s;
    /* lwIP ran this turn (loopback, NICs, timers): connections it put in
     * TIME-WAIT are counted and bounded before netsrv sleeps or answers. */
    nsock_tcp_time_wait_turn();
    for (unsigned i = 0; i < NSOCK_SESSIONS_MAX; i++) {
        nsock_session_t *se = &nsock.sessions[i];
        if (!se->used || !se->signal_due)
            continue;
        se->signal_due = false;
        if (!se->dead && sock_need_signal(sock_wanted(se->base, se->l.cli_wanted))) {
            mk_signal(se->client_signal);
            nsock.st.signals_out++;
        }
    }
}

bool netsrv_sock_prepare_sleep(netsrv_t *s)
{
    (void)s;
    if (nsock.again || nsock.later != NULL || (nsock.mem_freed && nsock.starved != NULL))
        return false;
    for (unsigned i = 0; i < NSOCK_SESSIONS_MAX; i++) {
        nsock_session_t *se = &nsock.sessions[i];
        if (!se->used || se->dead)
            continue;
        if (!sock_prepare_sleep(sock_wanted(se->base, se->l.srv_wanted),
                                sock_map(se->base, se->l.doorbell), se->l.map_words))
            return false;
    }
    return true;
}

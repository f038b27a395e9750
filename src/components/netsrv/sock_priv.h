/*
 * sock_priv.h - netsrv's socket service (sock.idl): private state shared by
 * sock.c (sessions, clients, requests, doorbells, death), sock_tcp.c and
 * sock_udp.c. Protocol: docs/socket-session.md.
 *
 * Single-threaded like the rest of netsrv: everything here belongs to the
 * event loop thread (the one that claimed lwIP).
 *
 * Ownership, per socket slot i of a session:
 *   - the region (client memory, mapped read-write here) holds the slot's
 *     shared state (events, error, open) which only netsrv writes, and two
 *     byte rings: RX (netsrv produces) and TX (netsrv consumes). Nothing
 *     netsrv reads from the region is trusted: ring indices are validated by
 *     the ring library, records by sock_udp.c, bits beyond max_sockets are
 *     ignored. netsrv keeps its own copy of everything it wrote.
 *   - nsock_t (netsrv memory) is the truth: state, lwIP PCB, options, the
 *     pbufs waiting for RX ring space (`pend`, owned here until copied into
 *     the ring or freed), a kept reply capability (deferred accept, connect
 *     or close).
 *   - lwIP PCBs carry the nsock_t as their callback argument while the
 *     socket owns them; the argument and callbacks are cleared before a PCB
 *     is handed back to lwIP (tcp_close done, tcp_abort, udp_remove), so no
 *     callback ever names a freed slot.
 */
#ifndef FERRY_NETSRV_SOCK_PRIV_H
#define FERRY_NETSRV_SOCK_PRIV_H

#include <ferry/sock_region.h>
#include <sock_server.h>

#include "lwip/pbuf.h"
#include "lwip/sys.h"
#include "lwip/tcp.h"
#include "lwip/udp.h"
#include "netsrv_priv.h"

#define NSOCK_CLIENTS_MAX 64            /* badges with sessions at once */
#define NSOCK_SESSIONS_MAX 128          /* sessions at once, all clients */
#define NSOCK_SESSIONS_PER_CLIENT 8     /* EMFILE beyond */
#define NSOCK_DEATH_BIT 31              /* notification bit: death notices */
#define NSOCK_SESSION_BIT0 32           /* session k signals bit 32 + k % 32 */
#define NSOCK_SESSION_BITS 0xffffffff00000000ull
#define NSOCK_UDP_BUDGET 64             /* datagrams per socket per turn */
#define NSOCK_CLOSE_TIMEOUT_MS 60000    /* background close: abort after this */
/* Send data may fill lwIP's heap only up to half: local (looped-back)
 * connections need a second copy of every segment in flight, and received
 * data waiting for ring space lives there too. */
#define NSOCK_MEM_RESERVE ((uint32_t)MEM_SIZE / 2)
#define NSOCK_POLL_INTERVAL 2           /* tcp_poll: every 2 x 500 ms */
#define NSOCK_ACCEPT_WAITERS_MAX 64     /* blocked accepts per listener (ENOBUFS beyond) */
#define NSOCK_GROUPS_MAX 20             /* multicast memberships per socket (Linux's default) */

/* Linux numbers on the wire (sock.idl). */
#define NSOCK_AF_INET 2
#define NSOCK_AF_INET6 10
#define NSOCK_SOL_SOCKET 1
#define NSOCK_IPPROTO_IP 0
#define NSOCK_IPPROTO_TCP 6
#define NSOCK_IPPROTO_UDP 17
#define NSOCK_IPPROTO_IPV6 41
#define NSOCK_SO_REUSEADDR 2
#define NSOCK_SO_TYPE 3
#define NSOCK_SO_ERROR 4
#define NSOCK_SO_SNDBUF 7
#define NSOCK_SO_RCVBUF 8
#define NSOCK_SO_BROADCAST 6
#define NSOCK_SO_KEEPALIVE 9
#define NSOCK_SO_LINGER 13
#define NSOCK_SO_ACCEPTCONN 30
#define NSOCK_TCP_NODELAY 1
#define NSOCK_IPV6_V6ONLY 26
#define NSOCK_IP_TOS 1
#define NSOCK_IP_TTL 2
#define NSOCK_IP_MULTICAST_IF 32
#define NSOCK_IP_MULTICAST_TTL 33
#define NSOCK_IP_MULTICAST_LOOP 34
#define NSOCK_IP_ADD_MEMBERSHIP 35
#define NSOCK_IP_DROP_MEMBERSHIP 36
#define NSOCK_IPV6_UNICAST_HOPS 16
#define NSOCK_IPV6_MULTICAST_IF 17
#define NSOCK_IPV6_MULTICAST_HOPS 18
#define NSOCK_IPV6_MULTICAST_LOOP 19
#define NSOCK_IPV6_JOIN_GROUP 20
#define NSOCK_IPV6_LEAVE_GROUP 21

/* The errno number (Linux) of a sock.idl error status, for the slot's
 * `error` (SO_ERROR). */
#define NSOCK_ERRNO(status) idl_error_number(status)

typedef enum nsock_state {
    NS_FREE = 0,
    NS_OPEN,    /* the client's socket (or a connection queued on a listener) */
    NS_CLOSING, /* the client closed it; netsrv finishes the close in the background */
} nsock_state_t;

typedef enum nsock_tcp_state {
    TS_NEW = 0,    /* no connection, maybe bound */
    TS_LISTEN,     /* listening: pcb is the listen PCB */
    TS_CONNECTING, /* SYN sent */
    TS_CONNECTED,  /* established (possibly half closed) */
    TS_DOWN,       /* reset, refused, timed out or aborted: no PCB any more */
} nsock_tcp_state_t;

/* A blocked call whose reply netsrv keeps (one per socket; blocked accepts
 * wait in the listener's FIFO of nsock_waiter_t instead). */
typedef enum nsock_wait {
    WAIT_NONE = 0,
    WAIT_CONNECT, /* blocking connect */
    WAIT_CLOSE,   /* close with SO_LINGER > 0 */
} nsock_wait_t;

struct nsock_session;

/* A blocked accept: the caller's kept reply capability, owned by netsrv
 * until answered or deleted. Listeners keep them in a FIFO (malloc'ed
 * nodes, at most NSOCK_ACCEPT_WAITERS_MAX per listener). */
typedef struct nsock_waiter {
    mk_cap_t reply;
    struct nsock_waiter *next;
} nsock_waiter_t;

/* A multicast group a UDP socket joined (malloc'ed list, at most
 * NSOCK_GROUPS_MAX): lwIP counts the joins per netif and group, each of
 * these is one of them and is left when the socket closes. */
typedef struct nsock_group {
    ip_addr_t group;
    uint8_t netif; /* lwIP netif index */
    struct nsock_group *next;
} nsock_group_t;

typedef struct nsock {
    struct nsock_session *sess;
    uint32_t id;
    uint8_t state;   /* nsock_state_t */
    uint8_t udp;     /* 0: TCP, 1: UDP */
    uint8_t tstate;  /* nsock_tcp_state_t */
    uint8_t claimed; /* the client knows it (a connection not yet accepted does not) */
    uint16_t family; /* NSOCK_AF_INET / NSOCK_AF_INET6 */
    bool v6only, reuseaddr, nodelay, keepalive, linger_on, bound;
    bool peer_fin;      /* FIN received */
    bool fin_delivered; /* ...and every byte before it is in the RX ring */
    bool rd_shut;       /* shutdown(SHUT_RD): received data is dropped */
    bool wr_shut_req;   /* shutdown(SHUT_WR) asked: FIN once the TX ring is drained */
    bool wr_shut_done;  /* FIN queued */
    bool close_err_mem; /* tcp_close said ERR_MEM: retry from poll/sent */
    bool starved;       /* on the starved list: TX waits for lwIP memory */
    bool udp_connected;
    bool broadcast;          /* SO_BROADCAST */
    bool mloop4, mloop6;     /* IP_MULTICAST_LOOP, IPV6_MULTICAST_LOOP */
    uint8_t ttl4, hops6;     /* IP_TTL, IPV6_UNICAST_HOPS */
    uint8_t tos;             /* IP_TOS (IPv4 packets only) */
    uint8_t mttl4, mhops6;   /* IP_MULTICAST_TTL, IPV6_MULTICAST_HOPS */
    uint8_t mif4, mif6;      /* multicast interface: lwIP netif index, 0: by the route */
    uint32_t mif4_addr;      /* IP_MULTICAST_IF's address as set (read back) */
    nsock_group_t *groups;   /* multicast memberships (UDP) */
    uint32_t ngroups;
    uint32_t linger_s;
    uint32_t rcvbuf, sndbuf; /* effective SO_RCVBUF / SO_SNDBUF (bytes) */
    union {
        struct tcp_pcb *tcp;
        struct udp_pcb *udp;
    } pcb;
    bytering_prod_t rx;
    bytering_cons_t tx;
    uint32_t rx_queued; /* bytes in the RX ring not yet credited back (tcp_recved) */
    uint32_t wnd_withheld; /* TCP_WND_MAX - the window cap (SO_RCVBUF) */
    uint32_t wnd_debt;     /* part of it still to take from future credits */
    struct pbuf *pend;  /* received, waiting for ring space (TCP) */
    uint32_t pend_len;
    uint32_t events; /* what netsrv last published in the slot */
    uint32_t error;  /* pending SO_ERROR, errno value */
    uint8_t wait;    /* nsock_wait_t */
    mk_cap_t reply;  /* kept reply capability of `wait` */
    uint32_t deadline_ms; /* sys_now() deadline of WAIT_CLOSE or of a background close */
    /* Listener: connections arrived but not yet accepted (FIFO of slots),
     * and blocked accepts (FIFO, oldest first). Never both at once: an
     * arriving connection answers the oldest blocked accept. */
    struct nsock *q_head, *q_tail;
    uint32_t q_len;
    nsock_waiter_t *w_head, *w_tail;
    uint32_t w_len;
    struct nsock *parent, *q_next; /* a queued connection's listener and successor */
    struct nsock *starved_next;
    bool later;              /* on the `later` list */
    struct nsock *later_next;
} nsock_t;

typedef struct nsock_client {
    bool used;
    mk_badge_t badge;
    uint32_t sessions;
    sock_client_stats_t st; /* sockets, memory and the counters */
} nsock_client_t;

typedef struct nsock_session {
    bool used;
    bool dead; /* the client died; only background closes are left */
    uint32_t index, number;
    nsock_client_t *client;
    mk_cap_t client_signal; /* signals the client's notification */
    mk_cap_t server_signal; /* minted for the client (our slot, kept until the end) */
    uint8_t *base;          /* the region, mapped read-write */
    size_t map_size;
    sock_layout_t l;
    size_t memory; /* region + socket table, counted for the client */
    nsock_t *socks; /* [l.max_sockets] */
    uint32_t nopen; /* slots not NS_FREE */
    bool signal_due; /* ready bits set this turn: signal the client if it asked */
} nsock_session_t;

typedef struct nsock_srv {
    netsrv_t *srv;
    uint32_t sockets_max; /* per client */
    uint64_t memory_max;  /* per client */
    uint32_t generation;  /* session numbers */
    nsock_client_t clients[NSOCK_CLIENTS_MAX];
    nsock_session_t sessions[NSOCK_SESSIONS_MAX];
    mk_cap_t death_signal;
    nsock_t *starved, *starved_tail; /* TX waiting for lwIP memory, oldest first */
    bool starve_front;               /* a retry that starves again goes back in front */
    nsock_t *later;   /* work an lwIP callback could not do itself */
    bool mem_freed;   /* lwIP memory came back this turn: retry the starved */
    bool again;       /* work left for the next turn (budgets) */
    uint32_t tw_count; /* TCP PCBs in TIME-WAIT: at least as many (sock_tcp.c) */
    netsrv_sock_stats_t st;
} nsock_srv_t;

extern nsock_srv_t nsock;

/* ---- sock.c: shared helpers --------------------------------------------------------------- */

/* Publish the socket's events (computed from its state) if they changed,
 * and flag it ready for the client either way. */
void nsock_update(nsock_t *ns);
/* Set the pending error (SO_ERROR) and publish. */
void nsock_set_error(nsock_t *ns, uint32_t err);
/* Give the slot back: pending pbufs freed, a kept reply deleted, counters. */
void nsock_free(nsock_t *ns);
/* A free slot of the session (rings reset, netsrv attached), counted
 * against the client's socket limit; NULL if none (EMFILE). */
nsock_t *nsock_alloc(nsock_session_t *sess, bool udp, uint16_t family);
/* Answer a kept reply (accept/connect/close) with a status. */
void nsock_reply_status(nsock_t *ns, int32_t status);
/* Memory accounting for the socket's client (pending pbufs). */
bool nsock_mem_charge(nsock_t *ns, uint32_t bytes);
void nsock_mem_release(nsock_t *ns, uint32_t bytes);
/* Put the socket on the list of those whose TX waits for lwIP memory. */
void nsock_starve(nsock_t *ns);
/* Run the socket's doorbell work from the loop, outside lwIP's callbacks. */
void nsock_later(nsock_t *ns);
/* The client learns a connection that was queued on a listener; unclaim
 * takes it back (the reply that would have told the client failed). */
void nsock_claim(nsock_t *ns);
void nsock_unclaim(nsock_t *ns);
/* The client's counters. */
static inline sock_client_stats_t *nsock_cst(nsock_t *ns)
{
    return &ns->sess->client->st;
}

/* IP options: the TTL (hop limit) and TOS of a packet of the socket to an
 * IPv4 (v4 true) or IPv6 destination; IP_TOS is IPv4's only. */
static inline uint8_t nsock_ttl(const nsock_t *ns, bool v4)
{
    return v4 ? ns->ttl4 : ns->hops6;
}
static inline uint8_t nsock_tos(const nsock_t *ns, bool v4)
{
    return v4 ? ns->tos : 0;
}
/* Interfaces as sock.idl names them (scope: netsrv.idl's index + 1) <->
 * lwIP netifs; NULL / 0 if none. */
struct netif *nsock_netif_of_scope(uint32_t scope);
uint32_t nsock_scope_of(uint8_t netif_index);

/* Addresses: sock.idl <-> lwIP. to_lwip returns 0 or a sock.idl error
 * status. A v4-mapped IPv6 address becomes IPv4 on a dual-stack socket. */
int32_t nsock_addr_to_lwip(const nsock_t *ns, const sock_addr_t *a, ip_addr_t *ip, bool local);
void nsock_addr_from_lwip(const nsock_t *ns, const ip_addr_t *ip, uint16_t port, sock_addr_t *a);

/* ---- sock_tcp.c --------------------------------------------------------------------------- */

void nsock_tcp_init(void);
int32_t nsock_tcp_open(nsock_t *ns);
int32_t nsock_tcp_bind(nsock_t *ns, const ip_addr_t *ip, uint16_t port);
int32_t nsock_tcp_listen(nsock_t *ns, uint32_t backlog);
int32_t nsock_tcp_accept(nsock_t *ns, const mk_recv_info_t *info, bool nonblock, uint32_t *newsock,
                         sock_addr_t *peer);
int32_t nsock_tcp_connect(nsock_t *ns, const mk_recv_info_t *info, const ip_addr_t *ip,
                          uint16_t port, bool nonblock);
int32_t nsock_tcp_shutdown(nsock_t *ns, uint32_t how);
int32_t nsock_tcp_close(nsock_t *ns, const mk_recv_info_t *info);
/* Answer every blocked accept of a listener with `status` (a sock.idl
 * error), or drop them (status 0: their callers' calls end with MK_EDEAD). */
void nsock_tcp_accept_fail(nsock_t *l, int32_t status);
/* The client rang the doorbell: credit consumed RX, refill from pending,
 * drain TX. */
void nsock_tcp_doorbell(nsock_t *ns);
/* Tear down at once (client death, session close): RST, everything freed. */
void nsock_tcp_abort(nsock_t *ns);
/* Apply the options kept in ns to its PCB (SO_RCVBUF: the window cap). */
void nsock_tcp_apply_options(nsock_t *ns);
/* Local/peer address of the PCB; false if there is none. */
bool nsock_tcp_name(nsock_t *ns, bool local, sock_addr_t *a);
/* Once per loop turn, after lwIP ran: count the PCBs that entered
 * TIME-WAIT and keep at most FERRY_TCP_TIME_WAIT_MAX. */
void nsock_tcp_time_wait_turn(void);
/* The PCBs in TIME-WAIT now, counted (for the statistics). */
uint32_t nsock_tcp_time_wait_count(void);

/* ---- sock_udp.c --------------------------------------------------------------------------- */

int32_t nsock_udp_open(nsock_t *ns);
int32_t nsock_udp_bind(nsock_t *ns, const ip_addr_t *ip, uint16_t port);
int32_t nsock_udp_connect(nsock_t *ns, const ip_addr_t *ip, uint16_t port);
void nsock_udp_doorbell(nsock_t *ns);
/* flush: send what the TX ring holds first (close(2)); not on death. */
void nsock_udp_close(nsock_t *ns, bool flush);
/* sock.idl membership (join or leave a multicast group); returns 0 or a
 * sock.idl error status, and changes nothing on error. */
int32_t nsock_udp_membership(nsock_t *ns, bool join, const sock_addr_t *group,
                             const sock_addr_t *local, uint32_t ifindex);
/* Leave every group the socket joined (close, death). */
void nsock_udp_groups_drop(nsock_t *ns);
bool nsock_udp_name(nsock_t *ns, bool local, sock_addr_t *a);

#endif /* FERRY_NETSRV_SOCK_PRIV_H */

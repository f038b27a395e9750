/*
 * netsrv_priv.h - netsrv's private state and the functions its files share.
 *
 * Single-threaded: everything here belongs to netsrv's event loop thread,
 * which is also the only thread that touches lwIP (checked by
 * LWIP_ASSERT_CORE_LOCKED, see src/lwip/sys_arch.c). Nothing is locked.
 *
 *   config.c   command line -> netsrv_config_t (checked before anything starts)
 *   main.c     netsrv_main: start-up (lwIP, NIC sessions, services)
 *   loop.c     the event loop: IPC, NIC signals and lwIP timers in one thread
 *   nic.c      a NIC session as an lwIP netif: rx_drain, tx (linkoutput), tx_reclaim;
 *              the driver's death (interface down) and return (session reopened)
 *   events.c   log lines for link, DHCP and IPv6 address events
 *   control.c  netsrv.idl handlers
 *   ping.c     ICMP/ICMPv6 echo for netsrv.idl's ping
 *   sock.c     the socket service (sock.idl): sessions, requests, doorbells, death
 *   sock_tcp.c / sock_udp.c   its TCP and UDP sockets (private header sock_priv.h)
 */
#ifndef FERRY_NETSRV_PRIV_H
#define FERRY_NETSRV_PRIV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <ferry/mk.h>
#include <ferry/nic_region.h>
#include <ferry/ring.h>
#include <netsrv_component.h>
#include <netsrv_server.h>

#include "lwip/ip_addr.h"
#include "lwip/netif.h"

/* ---- Configuration (config.c) ------------------------------------------------------------ */

#define NETSRV_NICS_MAX 8        /* NIC sessions; notification bit i = NIC i */
#define NETSRV_CAPNAME_MAX 31    /* capability names (the kernel's limit) */
#define NETSRV_HOSTNAME_MAX 31   /* sent in DHCP requests */
#define NETSRV_BUFS_DEFAULT 256u /* buffers per direction per NIC */
#define NETSRV_BUF_SIZE_DEFAULT 2048u

typedef enum netsrv_ip4_mode {
    NETSRV_IP4_DHCP = 0, /* default */
    NETSRV_IP4_STATIC,
    NETSRV_IP4_OFF,
} netsrv_ip4_mode_t;

typedef enum netsrv_ip6_mode {
    NETSRV_IP6_SLAAC = 0, /* default: link-local + stateless autoconfiguration */
    NETSRV_IP6_LINKLOCAL,
    NETSRV_IP6_OFF,
} netsrv_ip6_mode_t;

typedef struct netsrv_nic_config {
    char name[NETSRV_NAME_MAX + 1]; /* capability name of the driver's endpoint */
    netsrv_ip4_mode_t ip4;
    uint32_t addr, mask, gw; /* static IPv4, host order (gw 0 = none) */
    netsrv_ip6_mode_t ip6;
    uint32_t nbufs, buf_size; /* region geometry (nic_layout rules) */
} netsrv_nic_config_t;

#define NETSRV_CLIENT_SOCKETS_DEFAULT 4096u              /* per client, all its sessions */
#define NETSRV_CLIENT_MEMORY_DEFAULT (256ull << 20)      /* bytes per client */
#define NETSRV_CLIENT_MEMORY_MIN (64ull << 10)           /* smallest --client-memory */
#define NETSRV_CLIENT_MEMORY_MAX (64ull << 30)           /* largest --client-memory */

typedef struct netsrv_config {
    char ep_name[NETSRV_CAPNAME_MAX + 1];
    char hostname[NETSRV_HOSTNAME_MAX + 1];
    uint32_t client_sockets; /* socket service: sockets per client (EMFILE beyond) */
    uint64_t client_memory;  /* socket service: bytes per client (ENOBUFS beyond) */
    unsigned nnics;
    netsrv_nic_config_t nics[NETSRV_NICS_MAX];
} netsrv_config_t;

/* Parse argv (argv[0] is the program name) into *cfg. Returns 0, or -1 with
 * a one-line explanation in err. */
int netsrv_config_parse(netsrv_config_t *cfg, int argc, char **argv, char *err, size_t errlen);

/* "A.B.C.D" of a host-order IPv4 address, into buf; returns buf. */
#define NETSRV_IP4_STRLEN 16
char *netsrv_ip4_format(uint32_t a, char buf[static NETSRV_IP4_STRLEN]);

/* The usage line, for error messages. */
extern const char netsrv_usage[];

/* ---- NIC sessions (nic.c) ---------------------------------------------------------------- */

/* One NIC session and the lwIP netif on top of it. Buffer ownership (see
 * ferry/nic_region.h): every buffer belongs to netsrv; RX buffers are lent
 * to the driver on rx_free and come back on rx_active, TX buffers go out on
 * tx_active and come back on tx_free. rx_lent / tx_lent record which buffers
 * the driver holds, so a buffer handed back twice or never lent is caught
 * (counted in ring_errors) instead of being used. */
typedef struct netsrv_nic {
    const netsrv_nic_config_t *cfg;
    uint32_t bit; /* this NIC's notification bit (badge 1 << bit) */
    mk_cap_t ep;  /* driver's endpoint (nic.idl) */
    mk_cap_t shm; /* the session region */
    mk_cap_t driver_signal;
    uint32_t generation;

    uint8_t *base; /* region mapping */
    size_t size;
    nic_layout_t layout;
    ring_region_t data; /* geometry of each data area, for validation */
    uint8_t *rx_data, *tx_data;
    ring_prod_t rx_free;   /* netsrv -> driver: empty RX buffers */
    ring_cons_t rx_active; /* driver -> netsrv: received frames */
    ring_prod_t tx_active; /* netsrv -> driver: frames to send */
    ring_cons_t tx_free;   /* driver -> netsrv: sent TX buffers */

    uint32_t max_frame;                       /* largest frame either way */
    uint32_t mtu;                             /* the netif's MTU */
    const char *hostname;                     /* for DHCP */
    uint8_t rx_lent[NIC_REGION_BUFS_MAX / 8]; /* bit i: RX buffer i is the driver's */
    uint8_t tx_lent[NIC_REGION_BUFS_MAX / 8]; /* bit i: TX buffer i is the driver's */
    uint16_t
        rx_stack[NIC_REGION_BUFS_MAX]; /* RX buffers netsrv holds (between drain and provide) */
    uint32_t rx_held;                  /* entries in rx_stack */
    uint16_t tx_stack[NIC_REGION_BUFS_MAX]; /* TX buffers netsrv holds */
    uint32_t tx_held;                       /* entries in tx_stack */
    uint32_t tx_unpublished;                /* enqueued on tx_active, not yet published */

    netsrv_counters_t
        counters; /* ring_errors: netsrv's own finds; the ring library's are added on read */
    struct netif netif;

    /* Driver death (nic.c): a probe finds the driver's endpoint dead ->
     * `gone`: session released, netif down, the capability deleted so that a
     * new one can be given under the same name; then nic.c tries that name
     * and reopens with back-off. */
    bool gone;
    mk_cap_t ntfn;     /* netsrv's notification, to mint the signal capability */
    uint64_t retry_ns; /* gone: no open attempt before this time */
    uint32_t retry_ms; /* gone: back-off after a failed attempt */
} netsrv_nic_t;

struct netsrv;

/* Set up the session (region, rings, nic.open) and its netif. 0, or -1
 * after logging why (the NIC is then unusable and left out). The first NIC
 * opened starts the driver watch (netsrv_nic_watch, and a timer while the
 * loop sleeps), which handles death and return on its own. */
int netsrv_nic_open(struct netsrv *s, netsrv_nic_t *n, const netsrv_nic_config_t *cfg,
                    uint32_t bit);

/* One turn: reclaim sent TX buffers, take up to NETSRV_RX_BUDGET frames
 * into lwIP and give their buffers back. Returns the number of RX
 * descriptors taken: NETSRV_RX_BUDGET means more may be waiting. */
uint32_t netsrv_nic_poll(netsrv_nic_t *n);

/* Publish queued TX frames (and RX buffers a hostile driver made netsrv
 * keep) and signal the driver if it asked. */
void netsrv_nic_flush(netsrv_nic_t *n);

/* Before the loop sleeps: ask the driver for a signal on rx_active (and on
 * tx_free while netsrv holds no TX buffer). false: something arrived
 * meanwhile, do not sleep. */
bool netsrv_nic_prepare_sleep(netsrv_nic_t *n);

/* The counters as netsrv.idl reports them. */
void netsrv_nic_counters(const netsrv_nic_t *n, netsrv_counters_t *c);

/* The loop woke up: probe every driver (and look for returning ones) if
 * that was last done NETSRV_NIC_WATCH_MS ago or more, before a request is
 * served. */
void netsrv_nic_watch(struct netsrv *s);

#define NETSRV_RX_BUDGET 64u /* frames per NIC per turn: IPC is never starved */
#define NETSRV_TX_BATCH 32u  /* publish at the latest after this many frames */

/* Every driver is probed (nic.probe) at most this often, whenever the loop
 * wakes up; while one is gone, its capability name is looked up as often. */
#define NETSRV_NIC_WATCH_MS 500u
/* While nothing wakes the loop, a timer probes this often (a gone driver's
 * name: after 0.5 s, then twice as long each time up to this). */
#define NETSRV_NIC_IDLE_WATCH_MS 10000u

/* ---- Ping (ping.c) ----------------------------------------------------------------------- */

#define NETSRV_PINGS_MAX 4 /* concurrent ping calls */

typedef struct netsrv_ping {
    struct netsrv *srv;
    bool active;
    mk_cap_t reply; /* the caller's reply capability (deferred) */
    ip_addr_t dst;
    uint16_t id;
    uint32_t count, size, interval_ms, timeout_ms;
    uint32_t sent; /* requests attempted so far (sequence numbers 0 .. sent - 1) */
    netsrv_ping_result_t res;
    uint64_t rtt_sum;
    uint64_t sent_ns[NETSRV_PING_COUNT_MAX];              /* by sequence number */
    uint8_t transmitted[(NETSRV_PING_COUNT_MAX + 7) / 8]; /* bit seq: lwIP took the request */
    uint8_t answered[(NETSRV_PING_COUNT_MAX + 7) / 8];    /* bit seq: its reply came */
} netsrv_ping_t;

/* Create the raw PCBs. 0 or -1 (logged). */
int netsrv_ping_init(struct netsrv *s);

/* netsrv.idl ping: validates, sends the first request, keeps the reply
 * capability. Returns IDL_DEFERRED, 0 with *r filled when the call is over
 * at once (a single request lwIP refused), or an error status. */
int32_t netsrv_ping_start(struct netsrv *s, const mk_recv_info_t *info, const netsrv_addr_t *dst,
                          uint32_t count, uint32_t size, uint32_t interval_ms, uint32_t timeout_ms,
                          netsrv_ping_result_t *r);

/* ---- Server state ------------------------------------------------------------------------ */

/* A service on netsrv's endpoint, chosen by the interface hash in mr[0]
 * (netsrv.idl now; the socket service joins here). */
typedef mk_cap_t (*netsrv_dispatch_fn_t)(void *ctx, const mk_recv_info_t *info, mk_msg_t *msg);
typedef struct netsrv_service {
    uint64_t hash;
    netsrv_dispatch_fn_t dispatch;
    void *ctx;
} netsrv_service_t;

#define NETSRV_SERVICES_MAX 4

typedef struct netsrv {
    netsrv_config_t cfg;
    mk_cap_t ep;   /* service endpoint */
    mk_cap_t ntfn; /* bound to the loop thread; NICs signal bit i */
    uint64_t start_ns;

    netsrv_nic_t *nics[NETSRV_NICS_MAX]; /* the open sessions, by bit */
    unsigned nnics;
    struct netif *loopif; /* lwIP's "lo" */

    netsrv_service_t services[NETSRV_SERVICES_MAX];
    unsigned nservices;

    mk_word_t pending; /* notification bits not yet accounted */
    netsrv_loop_stats_t loop;

    uint64_t watch_ns; /* the drivers were last probed then (nic.c) */
    uint32_t watch_ms; /* a driver is gone: the idle timer's last interval; else 0 */

    struct raw_pcb *ping4, *ping6;
    uint16_t ping_id_base;
    netsrv_ping_t pings[NETSRV_PINGS_MAX];
} netsrv_t;

/* ---- The socket service (sock.c, sock_tcp.c, sock_udp.c) --------------------------------- */

/* Register sock.idl on the endpoint and death notices. 0, or -1. */
int netsrv_sock_init(netsrv_t *s);
/* Notification bits of the socket service (death notices, doorbell
 * signals) are handled and removed; returns the rest. */
mk_word_t netsrv_sock_signals(netsrv_t *s, mk_word_t bits);
/* Doorbells and retries; true if work is left for the next turn. */
bool netsrv_sock_work(netsrv_t *s);
/* Signal the clients that have new ready bits (if they asked). */
void netsrv_sock_flush(netsrv_t *s);
/* Before sleeping: ask every client for a doorbell signal. false: a
 * doorbell rang meanwhile, do not sleep. */
bool netsrv_sock_prepare_sleep(netsrv_t *s);
/* netsrv.idl's view of the socket service's clients and totals. */
uint32_t netsrv_sock_client_count(void);
bool netsrv_sock_client_at(uint32_t index, mk_badge_t *badge, netsrv_client_stats_t *st);
void netsrv_sock_totals(netsrv_sock_stats_t *st);

/* ---- The rest ---------------------------------------------------------------------------- */

/* loop.c: register a service (before the loop runs); run the loop until the
 * endpoint dies. Returns the task's exit status. */
int netsrv_service_add(netsrv_t *s, uint64_t hash, netsrv_dispatch_fn_t dispatch, void *ctx);
int netsrv_loop_run(netsrv_t *s);
/* Deliver looped-back packets now if lwIP's loopback queue of a netif is
 * filling up (a quarter of LWIP_LOOPBACK_MAX_PBUFS): beyond the limit lwIP
 * drops them and TCP has to retransmit. For work that sends a lot in one
 * turn (the socket service's doorbells). */
void netsrv_loop_relieve(void);
/* Deliver looped-back packets now, for at most `rounds` rounds (a local
 * TCP handshake takes three): for a request answered better in this turn
 * (the socket service's connect). */
void netsrv_loop_settle(unsigned rounds);

/* events.c */
void netsrv_events_init(void);
const char *netsrv_netif_name(const struct netif *netif);

/* control.c */
mk_cap_t netsrv_control_dispatch(void *ctx, const mk_recv_info_t *info, mk_msg_t *msg);
/* The netif with netsrv.idl index `index` (NICs, then lo), or NULL. */
struct netif *netsrv_netif_at(netsrv_t *s, uint32_t index);

/* IPv4 in host order (as netsrv.idl) from lwIP's network-order address. */
uint32_t netsrv_ip4_host(const ip4_addr_t *a);

#endif /* FERRY_NETSRV_PRIV_H */

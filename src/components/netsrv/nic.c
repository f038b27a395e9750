/*
 * nic.c - one NIC session as an lwIP netif (netsrv is the session's client).
 *
 * Data flow, by the names of the steps:
 *   rx_drain    rx_active -> copy into a PBUF_POOL chain -> netif->input
 *   rx_provide  buffers netsrv holds -> rx_free (back to the driver)
 *   tx_output   lwIP's linkoutput: pbuf -> a held TX buffer -> tx_active
 *   tx_flush    publish tx_active once per batch, signal the driver if asked
 *   tx_reclaim  tx_free -> buffers netsrv holds
 *
 * The driver is not trusted: the ring library validates every descriptor
 * against netsrv's own copy of the geometry, and netsrv also checks that a
 * returned buffer is one the driver holds (rx_lent / tx_lent), so a buffer
 * handed back twice is never used twice. Frames are copied out of shared
 * memory exactly once, so lwIP parses memory the driver can no longer change.
 * Every fault is counted (ring_errors) and the session goes on.
 *
 * Driver death (nic_watch: whenever the loop wakes up, at most every
 * NETSRV_NIC_WATCH_MS; while nothing wakes it, an lwIP timer every
 * NETSRV_NIC_IDLE_WATCH_MS):
 *   nic_probe_driver  nic.probe by mk_send, MK_NOWAIT: never blocks; MK_EDEAD
 *                     means the driver's endpoint died with the driver
 *   nic_gone          netif link down and down (DHCP stopped), region and
 *                     capabilities released, the endpoint capability deleted
 *                     so its name is free; counted (driver_deaths)
 *   nic_return        while gone: a capability under the NIC's name again?
 *                     open a session on it (back-off after failures), bring
 *                     the netif up, restart DHCP; counted (reattaches)
 * The kernel keeps a dead endpoint dead, so a restarted driver has a new
 * endpoint and netsrv needs a new capability: whoever restarts the driver
 * gives it under the same name (mk_task_give).
 *
 * Why probing, and why it may be slow while idle: the kernel's death notices
 * tell a server that a client died (a task holding a badged send capability
 * to an endpoint it serves), never a client that its server did, and nic.idl
 * gives the driver no capability of netsrv's to hold. A dead driver matters
 * only to what would use its interface: a request (a connect, a send, a
 * ping, a look at the interface) or lwIP's own traffic, and each of those
 * wakes the loop first, which then probes if the last probe is older than
 * NETSRV_NIC_WATCH_MS, before it serves the request. So every request sees
 * the driver's state as of at most 0.5 s ago, as with a probe every 0.5 s;
 * only while nothing at all happens is a death noticed later (at most
 * NETSRV_NIC_IDLE_WATCH_MS, which then costs one wake-up per 10 s). While a
 * driver is gone, the timer looks for its return sooner: 0.5 s, then twice
 * as long each time up to the idle interval.
 */
#include <string.h>

#include <nic_client.h>

#include "lwip/dhcp.h"
#include "lwip/etharp.h"
#include "lwip/ethip6.h"
#include "lwip/pbuf.h"
#include "lwip/prot/ethernet.h"
#include "lwip/sys.h"
#include "lwip/timeouts.h"
#include "ferry_timers.h"
#include "netif/ethernet.h"
#include "netsrv_priv.h"

#define NIC_CALL_TIMEOUT_NS 2000000000ull  /* a driver must answer control calls in 2 s */
#define NIC_REOPEN_TIMEOUT_NS 500000000ull /* at run time the loop waits at most this per call */
#define NIC_RETRY_MAX_MS 30000u            /* longest back-off between reopen attempts */
#define NIC_MTU_MIN 576u                   /* below this IPv4 barely works */
#define NIC_REFUSED 1                      /* session_open: netsrv refused the device */

/* ---- Buffer bookkeeping ------------------------------------------------------------------ */

static bool bit_test(const uint8_t *map, uint32_t i)
{
    return (map[i >> 3] & (1u << (i & 7))) != 0;
}

static void bit_set(uint8_t *map, uint32_t i)
{
    map[i >> 3] = (uint8_t)(map[i >> 3] | (1u << (i & 7)));
}

static void bit_clear(uint8_t *map, uint32_t i)
{
    map[i >> 3] = (uint8_t)(map[i >> 3] & ~(1u << (i & 7)));
}

/* A descriptor the ring accepted lies inside the data area; netsrv also
 * wants it to name the start of one of its buffers. */
static bool buf_index(const netsrv_nic_t *n, ring_desc_t d, uint32_t *idx)
{
    if (d.offset % n->layout.buf_size != 0)
        return false;
    *idx = d.offset / n->layout.buf_size;
    return *idx < n->layout.nbufs;
}

static void signal_driver(netsrv_nic_t *n)
{
    if (mk_signal(n->driver_signal) == MK_OK)
        n->counters.signals_out++;
}

/* ---- RX ---------------------------------------------------------------------------------- */

/* Give every RX buffer netsrv holds back to the driver (not published). */
static void rx_provide(netsrv_nic_t *n)
{
    while (n->rx_held > 0) {
        uint32_t idx = n->rx_stack[n->rx_held - 1];
        ring_desc_t d = {.offset = idx * n->layout.buf_size, .len = 0};
        ring_err_t err = ring_prod_enqueue(&n->rx_free, d);
        if (err != RING_OK) {
            /* Only a hostile driver gets here (an impossible head, counted by
             * the ring, or a full queue): keep the buffer, retry next turn. */
            if (err == RING_EFULL)
                n->counters.ring_errors++;
            return;
        }
        bit_set(n->rx_lent, idx);
        n->rx_held--;
    }
}

/* One received frame into lwIP. */
static void rx_deliver(netsrv_nic_t *n, const uint8_t *frame, uint32_t len)
{
    if (len < SIZEOF_ETH_HDR || len > n->max_frame) {
        n->counters.rx_errors++;
        return;
    }
    struct pbuf *p = pbuf_alloc(PBUF_RAW, (u16_t)len, PBUF_POOL);
    if (p == NULL) {
        n->counters.rx_drops++;
        return;
    }
    pbuf_take(p, frame, (u16_t)len); /* the one read of the frame */
    n->counters.rx_packets++;
    n->counters.rx_bytes += len;
    if (n->netif.input(p, &n->netif) != ERR_OK) {
        pbuf_free(p);
        n->counters.rx_drops++;
    }
}

/* Take up to NETSRV_RX_BUDGET descriptors from rx_active. Returns how many
 * were taken (valid or not). */
static uint32_t rx_drain(netsrv_nic_t *n)
{
    uint32_t taken = 0;
    while (taken < NETSRV_RX_BUDGET) {
        ring_desc_t d;
        ring_err_t err = ring_cons_dequeue(&n->rx_active, &d);
        if (err == RING_EEMPTY || err == RING_EINDEX)
            break; /* nothing (more), or an impossible tail: counted, nothing taken */
        taken++;
        if (err != RING_OK)
            continue; /* bad descriptor: counted by the ring, dropped */
        uint32_t idx;
        if (!buf_index(n, d, &idx) || !bit_test(n->rx_lent, idx)) {
            n->counters.ring_errors++; /* not a buffer the driver holds */
            continue;
        }
        bit_clear(n->rx_lent, idx);
        rx_deliver(n, n->rx_data + d.offset, d.len);
        n->rx_stack[n->rx_held++] = (uint16_t)idx;
    }
    if (taken == 0)
        return 0;
    ring_cons_publish(&n->rx_active); /* slots back before the buffers (ring.h rule 3) */
    rx_provide(n);
    ring_prod_publish(&n->rx_free);
    if (ring_prod_need_signal(&n->rx_free))
        signal_driver(n);
    return taken;
}

/* ---- TX ---------------------------------------------------------------------------------- */

/* Take back the TX buffers the driver is done with. Bounded by the number
 * of buffers, so a driver that keeps publishing cannot keep netsrv here. */
static void tx_reclaim(netsrv_nic_t *n)
{
    uint32_t seen = 0;
    while (seen < n->layout.nbufs) {
        ring_desc_t d;
        ring_err_t err = ring_cons_dequeue(&n->tx_free, &d);
        if (err == RING_EEMPTY || err == RING_EINDEX)
            break;
        seen++;
        if (err != RING_OK)
            continue;
        uint32_t idx;
        if (!buf_index(n, d, &idx) || !bit_test(n->tx_lent, idx)) {
            n->counters.ring_errors++;
            continue;
        }
        bit_clear(n->tx_lent, idx);
        n->tx_stack[n->tx_held++] = (uint16_t)idx;
    }
    if (seen > 0)
        ring_cons_publish(&n->tx_free);
}

static void tx_flush(netsrv_nic_t *n)
{
    if (n->tx_unpublished == 0)
        return;
    n->tx_unpublished = 0;
    ring_prod_publish(&n->tx_active);
    if (ring_prod_need_signal(&n->tx_active))
        signal_driver(n);
}

/* lwIP's linkoutput: one whole frame. ERR_MEM when no TX buffer is free
 * (TCP retransmits later; a datagram is lost, as on a busy wire). */
static err_t tx_output(struct netif *netif, struct pbuf *p)
{
    netsrv_nic_t *n = netif->state;
    if (n->gone) { /* lwIP routes nothing here any more; DHCP's release, ARP */
        n->counters.tx_drops++;
        return ERR_IF;
    }
    if (p->tot_len > n->max_frame) {
        n->counters.tx_errors++;
        return ERR_BUF;
    }
    if (n->tx_held == 0)
        tx_reclaim(n);
    if (n->tx_held == 0) {
        n->counters.tx_drops++;
        return ERR_MEM;
    }
    uint32_t idx = n->tx_stack[n->tx_held - 1];
    ring_desc_t d = {.offset = idx * n->layout.buf_size, .len = p->tot_len};
    pbuf_copy_partial(p, n->tx_data + d.offset, p->tot_len, 0);
    ring_err_t err = ring_prod_enqueue(&n->tx_active, d);
    if (err != RING_OK) {
        if (err == RING_EFULL)
            n->counters.ring_errors++; /* impossible with an honest driver */
        n->counters.tx_drops++;
        return ERR_MEM;
    }
    n->tx_held--;
    bit_set(n->tx_lent, idx);
    n->counters.tx_packets++;
    n->counters.tx_bytes += p->tot_len;
    if (++n->tx_unpublished >= NETSRV_TX_BATCH)
        tx_flush(n);
    return ERR_OK;
}

/* ---- The loop's view --------------------------------------------------------------------- */

uint32_t netsrv_nic_poll(netsrv_nic_t *n)
{
    if (n->gone)
        return 0;
    tx_reclaim(n);
    return rx_drain(n);
}

void netsrv_nic_flush(netsrv_nic_t *n)
{
    if (n->gone)
        return;
    if (n->rx_held > 0) { /* buffers a hostile driver made us keep: retry */
        rx_provide(n);
        ring_prod_publish(&n->rx_free);
        if (ring_prod_need_signal(&n->rx_free))
            signal_driver(n);
    }
    tx_flush(n);
}

bool netsrv_nic_prepare_sleep(netsrv_nic_t *n)
{
    if (n->gone)
        return true;
    if (!ring_cons_prepare_sleep(&n->rx_active))
        return false;
    /* Out of TX buffers: also ask to hear when some come back (otherwise
     * they are reclaimed lazily, at the next turn or the next frame). */
    return n->tx_held > 0 || ring_cons_prepare_sleep(&n->tx_free);
}

/* The driver faults the ring library counted (its counters are private to
 * netsrv; all zero while no session is open). */
static uint64_t ring_faults(const netsrv_nic_t *n)
{
    uint64_t sum = 0;
    for (int32_t e = RING_EINDEX; e >= RING_EBOUNDS; e--)
        sum += (uint64_t)ring_cons_errors(&n->rx_active, e) + ring_cons_errors(&n->tx_free, e) +
               ring_prod_errors(&n->rx_free, e) + ring_prod_errors(&n->tx_active, e);
    return sum;
}

void netsrv_nic_counters(const netsrv_nic_t *n, netsrv_counters_t *c)
{
    *c = n->counters;
    c->ring_errors += ring_faults(n);
}

/* ---- Set-up ------------------------------------------------------------------------------ */

static const char *status_str(int32_t st)
{
    if (st > -256)
        return mk_strerror(st);
    if (idl_is_protocol_error(st))
        return idl_protocol_strerror(st);
    switch (st) {
    case NIC_EINVAL:
        return "EINVAL (geometry refused)";
    case NIC_EBUSY:
        return "EBUSY (a session is already open)";
    case NIC_ENOMEM:
        return "ENOMEM (the driver cannot map the region)";
    default:
        return "unexpected status";
    }
}

/* Create the region, lay it out, initialise the four queues, lend every RX
 * buffer. */
static int region_setup(netsrv_nic_t *n)
{
    const netsrv_nic_config_t *cfg = n->cfg;
    if (nic_layout(cfg->nbufs, cfg->buf_size, &n->layout) != 0) {
        mk_log("%s: bad geometry %u x %u bytes", cfg->name, (unsigned)cfg->nbufs,
               (unsigned)cfg->buf_size);
        return -1;
    }
    mk_err_t e = mk_shm_create(n->layout.size, &n->shm);
    if (e == MK_OK)
        e = mk_shm_map(n->shm, MK_RIGHT_READ | MK_RIGHT_WRITE, (void **)&n->base, &n->size);
    if (e != MK_OK) {
        mk_log("%s: cannot create the %zu-byte session region: %s", cfg->name, n->layout.size,
               mk_strerror(e));
        return -1;
    }
    const nic_layout_t *l = &n->layout;
    nic_region_hdr_t *hdr = (nic_region_hdr_t *)n->base;
    hdr->magic = NIC_REGION_MAGIC;
    hdr->version = NIC_REGION_VERSION;
    hdr->nbufs = l->nbufs;
    hdr->buf_size = l->buf_size;
    n->data = nic_data_region(l);
    n->rx_data = n->base + l->rx_data;
    n->tx_data = n->base + l->tx_data;
    ring_queue_t *qs[4] = {nic_queue(n->base, l->rx_free), nic_queue(n->base, l->rx_active),
                           nic_queue(n->base, l->tx_active), nic_queue(n->base, l->tx_free)};
    for (int i = 0; i < 4; i++)
        ring_queue_init(qs[i], l->nbufs, 0);
    if (ring_prod_attach(&n->rx_free, qs[0], l->nbufs) != RING_OK ||
        ring_cons_attach(&n->rx_active, qs[1], l->nbufs, &n->data, 0) != RING_OK ||
        ring_prod_attach(&n->tx_active, qs[2], l->nbufs) != RING_OK ||
        ring_cons_attach(&n->tx_free, qs[3], l->nbufs, &n->data, RING_F_ZERO_LEN_OK) != RING_OK ||
        ring_prod_fill(&n->rx_free, &n->data) != RING_OK) {
        mk_log("%s: cannot set up the rings", cfg->name); /* a bug: the layout was checked */
        return -1;
    }
    for (uint32_t i = 0; i < l->nbufs; i++) {
        bit_set(n->rx_lent, i);       /* ring_prod_fill lent them all */
        n->tx_stack[i] = (uint16_t)i; /* TX buffers start with netsrv */
    }
    n->tx_held = l->nbufs;
    return 0;
}

/* Forget the region and everything that pointed into it: the rings (their
 * private error counts too), which buffers were lent or held. */
static void region_teardown(netsrv_nic_t *n)
{
    if (n->base != NULL)
        mk_shm_unmap(n->base, n->size);
    if (n->shm != MK_CAP_NULL)
        mk_cap_delete(n->shm);
    n->base = NULL;
    n->shm = MK_CAP_NULL;
    n->rx_data = n->tx_data = NULL;
    n->rx_free = n->tx_active = (ring_prod_t){0};
    n->rx_active = n->tx_free = (ring_cons_t){0};
    memset(n->rx_lent, 0, sizeof n->rx_lent);
    memset(n->tx_lent, 0, sizeof n->tx_lent);
    n->rx_held = n->tx_held = n->tx_unpublished = 0;
}

/* Check what the driver says about the device; sets max_frame. */
static int check_info(netsrv_nic_t *n, const nic_info_t *info)
{
    const char *name = n->cfg->name;
    uint32_t max = info->max_frame;
    if (max > n->cfg->buf_size)
        max = n->cfg->buf_size;
    if (max > 0xffffu)
        max = 0xffffu; /* lwIP's pbufs are at most 64 KiB */
    if (max < SIZEOF_ETH_HDR + NIC_MTU_MIN) {
        mk_log("%s: the driver's largest frame (%u bytes) is too small", name,
               (unsigned)info->max_frame);
        return -1;
    }
    n->mtu = info->mtu < max - SIZEOF_ETH_HDR ? info->mtu : max - SIZEOF_ETH_HDR;
    if (n->mtu < NIC_MTU_MIN) {
        mk_log("%s: MTU %u is below %u", name, (unsigned)info->mtu, NIC_MTU_MIN);
        return -1;
    }
    if (info->mac == 0 || info->mac > 0xffffffffffffull || (info->mac >> 40) & 1) {
        mk_log("%s: the driver reports no usable unicast MAC address (%#llx)", name,
               (unsigned long long)info->mac);
        return -1;
    }
    n->max_frame = max;
    return 0;
}

static err_t netif_init_nic(struct netif *netif)
{
    const netsrv_nic_t *n = netif->state;
    netif->name[0] = 'e';
    netif->name[1] = 'n';
    netif->output = etharp_output;
    netif->output_ip6 = ethip6_output;
    netif->linkoutput = tx_output;
    netif->mtu = (u16_t)n->mtu;
#if LWIP_ND6_ALLOW_RA_UPDATES
    netif->mtu6 = (u16_t)n->mtu;
#endif
    netif->hwaddr_len = ETH_HWADDR_LEN;
    /* IGMP: IPv4 multicast for the socket service (a join sends a report) */
    netif->flags = NETIF_FLAG_BROADCAST | NETIF_FLAG_ETHARP | NETIF_FLAG_ETHERNET | NETIF_FLAG_MLD6 |
                   NETIF_FLAG_IGMP;
    netif_set_hostname(netif, n->hostname);
    return ERR_OK;
}

/* Add the netif and configure its addresses (the NIC session is open). */
static void netif_setup(netsrv_t *s, netsrv_nic_t *n, const nic_info_t *info)
{
    const netsrv_nic_config_t *cfg = n->cfg;
    ip4_addr_t addr, mask, gw;
    ip4_addr_set_u32(&addr, lwip_htonl(cfg->ip4 == NETSRV_IP4_STATIC ? cfg->addr : 0));
    ip4_addr_set_u32(&mask, lwip_htonl(cfg->ip4 == NETSRV_IP4_STATIC ? cfg->mask : 0));
    ip4_addr_set_u32(&gw, lwip_htonl(cfg->ip4 == NETSRV_IP4_STATIC ? cfg->gw : 0));
    n->hostname = s->cfg.hostname;
    struct netif *netif = &n->netif;
    for (int i = 0; i < ETH_HWADDR_LEN; i++)
        netif->hwaddr[i] = (u8_t)(info->mac >> (8 * (ETH_HWADDR_LEN - 1 - i)));
    netif_add(netif, &addr, &mask, &gw, n, netif_init_nic, ethernet_input);
    if (s->nnics == 0)
        netif_set_default(netif); /* the first NIC carries the default route */
    if (cfg->ip6 != NETSRV_IP6_OFF) {
        netif_create_ip6_linklocal_address(netif, 1);
        netif_set_ip6_autoconfig_enabled(netif, cfg->ip6 == NETSRV_IP6_SLAAC);
    }
    netif_set_up(netif);
    if (info->link_up)
        netif_set_link_up(netif);
    else
        mk_log("%s: no carrier", cfg->name);
    if (cfg->ip4 == NETSRV_IP4_DHCP && dhcp_start(netif) != ERR_OK)
        mk_log("%s: cannot start DHCP (out of memory)", cfg->name);
}

/* Ask the driver behind `ep` what it is, lay out a new region and open the
 * session. 0, or what failed (a status of nic.idl or the kernel, or
 * NIC_REFUSED), logged, with nothing of the attempt left behind. */
static int32_t session_open(netsrv_nic_t *n, mk_cap_t ep, uint64_t timeout_ns, nic_info_t *info)
{
    const netsrv_nic_config_t *cfg = n->cfg;
    int32_t st = nic_get_info(ep, timeout_ns, info);
    if (st != 0) {
        mk_log("%s: nic.get_info failed: %s", cfg->name, status_str(st));
        return st;
    }
    if (check_info(n, info) != 0 || region_setup(n) != 0) {
        region_teardown(n);
        return NIC_REFUSED;
    }
    mk_cap_t sig;
    mk_err_t e =
        mk_cap_mint(n->ntfn, MK_RIGHT_SEND | MK_RIGHT_GRANT, (mk_badge_t)1 << n->bit, &sig);
    if (e != MK_OK) {
        mk_log("%s: cannot mint a signal capability: %s", cfg->name, mk_strerror(e));
        region_teardown(n);
        return e;
    }
    st = nic_open(ep, timeout_ns, n->shm, sig, cfg->nbufs, cfg->buf_size, &n->driver_signal,
                  &n->generation);
    mk_cap_delete(sig); /* the driver has its copy */
    if (st != 0) {
        mk_log("%s: nic.open failed: %s", cfg->name, status_str(st));
        region_teardown(n);
        return st;
    }
    n->ep = ep;
    mk_log("%s: session open (generation %u): MAC %02x:%02x:%02x:%02x:%02x:%02x, MTU %u, %u x "
           "%u-byte buffers "
           "each way",
           cfg->name, (unsigned)n->generation, (unsigned)(info->mac >> 40) & 255u,
           (unsigned)(info->mac >> 32) & 255u, (unsigned)(info->mac >> 24) & 255u,
           (unsigned)(info->mac >> 16) & 255u, (unsigned)(info->mac >> 8) & 255u,
           (unsigned)info->mac & 255u, (unsigned)n->mtu, (unsigned)cfg->nbufs,
           (unsigned)cfg->buf_size);
    return 0;
}

/* ---- Driver death and return ------------------------------------------------------------- */

/* The driver died: nothing will ever serve these rings again. The netif
 * goes down (lwIP then routes nothing through it: connects and pings get
 * ENETUNREACH, datagrams are dropped), the region and the capabilities of
 * the session go, and the endpoint capability is deleted so that a new
 * one can be given under the same name. */
static void nic_gone(netsrv_nic_t *n)
{
    const netsrv_nic_config_t *cfg = n->cfg;
    n->gone = true; /* tx_output drops from here on */
    n->counters.driver_deaths++;
    n->counters.ring_errors += ring_faults(n); /* before the rings' counters go */
    mk_log("%s: the driver is gone (its endpoint died): interface down, session %u released",
           cfg->name, (unsigned)n->generation);
    if (cfg->ip4 == NETSRV_IP4_DHCP)
        dhcp_release_and_stop(&n->netif); /* the lease went with the link; restarted on return */
    netif_set_link_down(&n->netif);
    netif_set_down(&n->netif); /* lwIP forgets its ARP and neighbour entries */
    region_teardown(n);
    mk_cap_delete(n->driver_signal);
    mk_cap_delete(n->ep);
    n->driver_signal = n->ep = MK_CAP_NULL;
    n->generation = 0;
    n->retry_ns = 0;
    n->retry_ms = NETSRV_NIC_WATCH_MS;
}

/* How many drivers are gone. */
static unsigned nic_gone_count(const netsrv_t *s)
{
    unsigned n = 0;
    for (unsigned i = 0; i < s->nnics; i++)
        n += s->nics[i]->gone;
    return n;
}

/* nic.probe never blocks: MK_EDEAD means nobody can receive on the
 * driver's endpoint any more. Every call also returns MK_EDEAD once netsrv
 * itself is being killed; then its own capabilities no longer read back. */
static void nic_probe_driver(netsrv_nic_t *n)
{
    mk_cap_info_t ci;
    if (nic_probe(n->ep, MK_NOWAIT) == MK_EDEAD && mk_cap_info(n->ep, &ci) == MK_OK)
        nic_gone(n);
}

/* The session is open again: the netif takes the (possibly new) device's
 * MAC and MTU and comes back up; DHCP starts again, a static address was
 * kept. */
static void netif_restart(netsrv_nic_t *n, const nic_info_t *info)
{
    struct netif *netif = &n->netif;
    u8_t mac[ETH_HWADDR_LEN];
    for (int i = 0; i < ETH_HWADDR_LEN; i++)
        mac[i] = (u8_t)(info->mac >> (8 * (ETH_HWADDR_LEN - 1 - i)));
    bool new_mac = memcmp(mac, netif->hwaddr, ETH_HWADDR_LEN) != 0;
    memcpy(netif->hwaddr, mac, ETH_HWADDR_LEN);
    netif->mtu = (u16_t)n->mtu;
#if LWIP_ND6_ALLOW_RA_UPDATES
    netif->mtu6 = (u16_t)n->mtu;
#endif
    if (new_mac && n->cfg->ip6 != NETSRV_IP6_OFF)
        netif_create_ip6_linklocal_address(netif, 1); /* derived from the MAC */
    netif_set_up(netif);
    if (info->link_up)
        netif_set_link_up(netif);
    else
        mk_log("%s: no carrier", n->cfg->name);
    if (n->cfg->ip4 == NETSRV_IP4_DHCP && dhcp_start(netif) != ERR_OK)
        mk_log("%s: cannot start DHCP (out of memory)", n->cfg->name);
}

/* While gone: if a capability is found under the NIC's name (a restarted
 * driver's endpoint), open a session on it. A failed attempt waits twice as
 * long as the previous one (at most NIC_RETRY_MAX_MS); a capability whose
 * endpoint is dead as well is deleted to make room for the next. */
static void nic_return(netsrv_nic_t *n)
{
    mk_cap_t ep;
    uint64_t now = mk_time_ns();
    if (now < n->retry_ns || mk_cap_lookup(n->cfg->name, &ep) != MK_OK)
        return;
    nic_info_t info;
    int32_t st = session_open(n, ep, NIC_REOPEN_TIMEOUT_NS, &info);
    if (st != 0) {
        if (st == MK_EDEAD)
            mk_cap_delete(ep);
        n->retry_ns = now + (uint64_t)n->retry_ms * 1000000u;
        mk_log("%s: no session with the new driver; next attempt in %u ms", n->cfg->name,
               (unsigned)n->retry_ms);
        n->retry_ms = n->retry_ms >= NIC_RETRY_MAX_MS / 2 ? NIC_RETRY_MAX_MS : 2 * n->retry_ms;
        return;
    }
    n->gone = false;
    n->counters.reattaches++;
    netif_restart(n, &info);
}

static void nic_watch_timer(void *arg);

/* Probe the drivers, look for returning ones; then the idle timer again. */
static void nic_watch(netsrv_t *s, uint64_t now)
{
    unsigned gone_before = nic_gone_count(s);
    s->watch_ns = now;
    for (unsigned i = 0; i < s->nnics; i++) {
        if (s->nics[i]->gone)
            nic_return(s->nics[i]);
        else
            nic_probe_driver(s->nics[i]);
    }
    unsigned gone = nic_gone_count(s);
    uint32_t ms;
    if (gone == 0) {
        /* All there: on the grid lwIP's ageing timers use, so that an idle
         * netsrv wakes once for both (ferry_timers.h). */
        s->watch_ms = 0;
        ms = ferry_timers_grid_ms(sys_now(), NETSRV_NIC_IDLE_WATCH_MS / 2);
    } else {
        /* A driver is gone: look for its return soon, then less often. */
        if (gone > gone_before || s->watch_ms == 0)
            ms = NETSRV_NIC_WATCH_MS;
        else
            ms = s->watch_ms >= NETSRV_NIC_IDLE_WATCH_MS / 2 ? NETSRV_NIC_IDLE_WATCH_MS
                                                             : 2 * s->watch_ms;
        s->watch_ms = ms;
    }
    sys_untimeout(nic_watch_timer, s);
    sys_timeout(ms, nic_watch_timer, s);
}

/* Nothing woke the loop for a while. */
static void nic_watch_timer(void *arg)
{
    nic_watch(arg, mk_time_ns());
}

void netsrv_nic_watch(netsrv_t *s)
{
    if (s->nnics == 0)
        return;
    uint64_t now = mk_time_ns();
    if (now - s->watch_ns >= NETSRV_NIC_WATCH_MS * 1000000ull)
        nic_watch(s, now);
}

int netsrv_nic_open(netsrv_t *s, netsrv_nic_t *n, const netsrv_nic_config_t *cfg, uint32_t bit)
{
    static bool watching; /* one timer for all NICs */
    memset(n, 0, sizeof *n);
    n->cfg = cfg;
    n->bit = bit;
    n->ntfn = s->ntfn;
    mk_cap_t ep;
    mk_err_t e = mk_cap_lookup(cfg->name, &ep);
    if (e != MK_OK) {
        mk_log("%s: no capability '%s' (%s): the boot configuration must give netsrv the driver's "
               "endpoint",
               cfg->name, cfg->name, mk_strerror(e));
        return -1;
    }
    nic_info_t info;
    if (session_open(n, ep, NIC_CALL_TIMEOUT_NS, &info) != 0)
        return -1;
    netif_setup(s, n, &info);
    if (!watching) {
        watching = true;
        s->watch_ns = mk_time_ns();
        sys_timeout(ferry_timers_grid_ms(sys_now(), NETSRV_NIC_IDLE_WATCH_MS / 2), nic_watch_timer,
                    s);
    }
    return 0;
}

/*
 * driver.c - the slirp driver's control thread: start-up, and the NIC
 * session (src/interfaces/nic.idl) served through the generated dispatch.
 *
 * Each request is decoded (everything checked; a bad request gets its error
 * and changes nothing) before it is carried out. The frames themselves never
 * pass here: they go through the region's rings to and from the wire thread
 * (wire.c), which owns libslirp. Threads and ownership: drv.h.
 *
 * Client death: the driver registers for death notices on its endpoint
 * (mk_ep_death_ntfn). When the task that opened the session dies (the
 * kernel reports the badge of its capability), the session ends exactly as
 * a close would: the wire thread lets go of the rings, the region is
 * unmapped and the session's capabilities deleted, so the next client can
 * open. The notification bound to this thread carries both kinds of news:
 * DRV_SIG_RING (a client's ring signal) and DRV_SIG_DEATH (death notices).
 */
#include "drv.h"
#include "nic_slirp.h"
#include "slirp_net.h"

#include <nic_server.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Badges of the capabilities that signal our notification. */
#define DRV_SIG_RING 1u  /* driver_signal, handed to the client in open */
#define DRV_SIG_DEATH 2u /* death notices of the endpoint's clients */

#define DRV_DEAD_BATCH 32u  /* badges taken per mk_ep_dead_badges */
#define DRV_DEAD_ROUNDS 64u /* bound per wake-up: the kernel queue holds 1024 */

typedef struct drv {
    slirp_args_t args;
    mk_cap_t ep;            /* our endpoint */
    mk_cap_t ntfn;          /* our notification, bound to this thread */
    uint32_t generation;    /* of the last session opened */
    drv_session_t *session; /* the open session, or NULL */
    wire_t *wire;
    nic_driver_stats_t st; /* over the driver's life (session: kept current) */
} drv_t;

static void drv_reap(drv_t *d);

/* ---- get_info ------------------------------------------------------------------ */

static int32_t drv_get_info(void *ctx, const mk_recv_info_t *info, nic_info_t *i)
{
    (void)ctx;
    (void)info;
    *i = (nic_info_t){.mac = SLIRP_NIC_MAC,
                      .mtu = SLIRP_NIC_MTU,
                      .max_frame = SLIRP_NIC_MAX_FRAME,
                      .link_up = true,
                      .features = NIC_FEATURE_NONE};
    return 0;
}

/* ---- open: decode ---------------------------------------------------------------- */

/* Everything open needs, checked; nothing is changed until all of it is. */
typedef struct open_req {
    nic_layout_t layout;
    uint8_t *base;
    size_t map_size;
} open_req_t;

static int32_t open_check_caps(mk_cap_t region, mk_cap_t client_signal, const nic_layout_t *l)
{
    mk_cap_info_t ci;
    if (mk_cap_info(region, &ci) != MK_OK || ci.type != MK_OBJ_SHM) {
        mk_log("open refused: the region is not shared memory");
        return NIC_EINVAL;
    }
    uint32_t rw = MK_RIGHT_READ | MK_RIGHT_WRITE;
    if ((ci.rights & rw) != rw) {
        mk_log("open refused: the region capability is not read-write");
        return NIC_EINVAL;
    }
    if (ci.size < l->size) {
        mk_log("open refused: region of %llu bytes, the geometry needs %zu",
               (unsigned long long)ci.size, l->size);
        return NIC_EINVAL;
    }
    if (mk_cap_info(client_signal, &ci) != MK_OK || ci.type != MK_OBJ_NOTIFICATION ||
        !(ci.rights & MK_RIGHT_SEND)) {
        mk_log("open refused: client_signal cannot signal a notification");
        return NIC_EINVAL;
    }
    return 0;
}

static bool open_header_ok(const uint8_t *base, const nic_layout_t *l)
{
    nic_region_hdr_t h;
    memcpy(&h, base, sizeof h); /* one copy: the client may be writing it */
    return h.magic == NIC_REGION_MAGIC && h.version == NIC_REGION_VERSION && h.nbufs == l->nbufs &&
           h.buf_size == l->buf_size;
}

static int32_t open_decode(drv_t *d, mk_cap_t region, mk_cap_t client_signal, uint32_t nbufs,
                           uint32_t buf_size, open_req_t *req)
{
    if (d->session != NULL)
        drv_reap(d); /* its owner may have died a moment ago: notices first */
    if (d->session != NULL) {
        mk_log("open refused: session %u is open", d->session->generation);
        return NIC_EBUSY;
    }
    if (nic_layout(nbufs, buf_size, &req->layout) != 0) {
        mk_log("open refused: bad geometry (%u buffers of %u bytes)", nbufs, buf_size);
        return NIC_EINVAL;
    }
    int32_t st = open_check_caps(region, client_signal, &req->layout);
    if (st != 0)
        return st;
    void *base;
    mk_err_t e = mk_shm_map(region, MK_RIGHT_READ | MK_RIGHT_WRITE, &base, &req->map_size);
    if (e != MK_OK) {
        mk_log("open refused: cannot map the region: %s", mk_strerror(e));
        return NIC_ENOMEM;
    }
    req->base = base;
    if (req->map_size < req->layout.size || !open_header_ok(req->base, &req->layout)) {
        mk_log("open refused: the region header does not match the geometry");
        mk_shm_unmap(req->base, req->map_size);
        return NIC_EINVAL;
    }
    return 0;
}

/* Attach to the four queues: consumer of rx_free and tx_active, producer of
 * rx_active and tx_free. Fails only on impossible indices left by the
 * client. */
static int32_t open_attach_rings(drv_session_t *s)
{
    const nic_layout_t *l = &s->layout;
    uint32_t cap = l->nbufs;
    if (ring_cons_attach(&s->rx_free, nic_queue(s->base, l->rx_free), cap, &s->data,
                         RING_F_ZERO_LEN_OK) != RING_OK ||
        ring_prod_attach(&s->rx_active, nic_queue(s->base, l->rx_active), cap) != RING_OK ||
        ring_cons_attach(&s->tx_active, nic_queue(s->base, l->tx_active), cap, &s->data,
                         RING_F_ZERO_LEN_OK) != RING_OK ||
        ring_prod_attach(&s->tx_free, nic_queue(s->base, l->tx_free), cap) != RING_OK) {
        mk_log("open refused: impossible ring indices in the region");
        return NIC_EINVAL;
    }
    return 0;
}

/* ---- open: invoke ----------------------------------------------------------------- */

static int32_t drv_open(void *ctx, const mk_recv_info_t *info, mk_cap_t region,
                        mk_cap_t client_signal, uint32_t nbufs, uint32_t buf_size,
                        mk_cap_t *driver_signal, uint32_t *generation)
{
    drv_t *d = ctx;
    open_req_t req = {0};
    drv_session_t *s = NULL;
    int32_t st = open_decode(d, region, client_signal, nbufs, buf_size, &req);
    if (st == 0 && (s = calloc(1, sizeof *s)) == NULL)
        st = NIC_ENOMEM;
    if (st == 0) {
        *s = (drv_session_t){.generation = d->generation + 1,
                             .layout = req.layout,
                             .data = nic_data_region(&req.layout),
                             .base = req.base,
                             .map_size = req.map_size,
                             .region = region,
                             .client_signal = client_signal,
                             .owner = info->badge};
        st = open_attach_rings(s);
    }
    if (st == 0 && mk_cap_mint(d->ntfn, MK_RIGHT_SEND | MK_RIGHT_GRANT, DRV_SIG_RING,
                               &s->driver_signal) != MK_OK)
        st = NIC_ENOMEM;
    if (st == 0 && wire_attach(d->wire, s) != 0) {
        mk_cap_delete(s->driver_signal);
        st = NIC_ENOMEM;
    }
    if (st != 0) {
        if (req.base)
            mk_shm_unmap(req.base, req.map_size);
        free(s);
        mk_cap_delete(region); /* an accepted request's caps are ours to drop */
        mk_cap_delete(client_signal);
        return st;
    }
    d->generation = s->generation;
    d->session = s;
    d->st.session = s->generation;
    d->st.opened++;
    *driver_signal = s->driver_signal;
    *generation = s->generation;
    mk_log("session %u open: %u buffers of %u bytes per direction", s->generation, nbufs, buf_size);
    if (s->owner == 0)
        mk_log("session %u: the client's capability is unbadged: its death cannot be noticed "
               "(only close ends this session)",
               s->generation);
    return 0;
}

/* ---- close, get_stats ------------------------------------------------------------- */

/* Take the session back from the wire thread and unmap its region. */
static void drv_session_end(drv_t *d)
{
    drv_session_t *s = d->session;
    if (wire_detach(d->wire) != 0) {
        /* The wire thread may still use the region: keep it mapped. */
        mk_log("session %u: wire thread unresponsive, region left mapped", s->generation);
    } else {
        mk_shm_unmap(s->base, s->map_size);
        free(s);
    }
    d->session = NULL;
    d->st.session = 0;
}

/* End the open session (close, or its client died): log its counters, stop
 * using the region, delete the capabilities it brought and the one minted
 * for it. Afterwards the driver holds nothing of it. */
static void drv_session_close(drv_t *d, const char *why)
{
    drv_session_t *s = d->session;
    mk_log("session %u %s: rx %llu frames (%llu dropped), tx %llu frames (%llu rejected, "
           "%llu filtered), %llu ring errors",
           s->generation, why, (unsigned long long)drv_counter(&s->c.rx_frames),
           (unsigned long long)drv_counter(&s->c.rx_dropped),
           (unsigned long long)drv_counter(&s->c.tx_frames),
           (unsigned long long)drv_counter(&s->c.tx_rejected),
           (unsigned long long)drv_counter(&s->c.tx_filtered),
           (unsigned long long)drv_counter(&s->c.ring_errors));
    mk_cap_t caps[3] = {s->region, s->client_signal, s->driver_signal};
    drv_session_end(d);
    for (int i = 0; i < 3; i++)
        mk_cap_delete(caps[i]);
}

static int32_t drv_close(void *ctx, const mk_recv_info_t *info, uint32_t generation)
{
    (void)info;
    drv_t *d = ctx;
    drv_session_t *s = d->session;
    if (s == NULL || s->generation != generation)
        return NIC_ESTALE;
    drv_session_close(d, "closed");
    d->st.closed++;
    return 0;
}

/* ---- Client death ----------------------------------------------------------------- */

/* Take the queued death notices (bounded); end the session if its opener
 * is among the dead. A badge is one client: every task holding it counts
 * as that client. */
static void drv_reap(drv_t *d)
{
    for (uint32_t round = 0; round < DRV_DEAD_ROUNDS; round++) {
        mk_badge_t dead[DRV_DEAD_BATCH];
        uint32_t n = 0;
        mk_err_t e = mk_ep_dead_badges(d->ep, dead, DRV_DEAD_BATCH, &n);
        if (e != MK_OK || n == 0)
            return;
        for (uint32_t i = 0; i < n && i < DRV_DEAD_BATCH; i++) {
            d->st.client_deaths++;
            drv_session_t *s = d->session;
            if (s == NULL || s->owner == 0 || s->owner != dead[i])
                continue; /* a client without the session */
            char why[64];
            snprintf(why, sizeof why, "ended: its client (badge %llu) died",
                     (unsigned long long)dead[i]);
            drv_session_close(d, why);
            d->st.reaped++;
        }
    }
}

static int32_t drv_get_stats(void *ctx, const mk_recv_info_t *info, uint32_t generation,
                             nic_stats_t *st)
{
    (void)info;
    drv_t *d = ctx;
    drv_session_t *s = d->session;
    if (s == NULL || s->generation != generation)
        return NIC_ESTALE;
    drv_counters_t *c = &s->c;
    *st = (nic_stats_t){.rx_frames = drv_counter(&c->rx_frames),
                        .rx_bytes = drv_counter(&c->rx_bytes),
                        .rx_dropped = drv_counter(&c->rx_dropped),
                        .tx_frames = drv_counter(&c->tx_frames),
                        .tx_bytes = drv_counter(&c->tx_bytes),
                        .tx_rejected = drv_counter(&c->tx_rejected),
                        .tx_filtered = drv_counter(&c->tx_filtered),
                        .ring_errors = drv_counter(&c->ring_errors)};
    return 0;
}

static void drv_probe(void *ctx, const mk_recv_info_t *info)
{
    (void)ctx; /* a client checking that we are alive: nothing to do */
    (void)info;
}

static int32_t drv_get_driver_stats(void *ctx, const mk_recv_info_t *info, nic_driver_stats_t *st)
{
    (void)info;
    const drv_t *d = ctx;
    *st = d->st;
    return 0;
}

static const nic_ops_t drv_ops = {
    .get_info = drv_get_info,
    .open = drv_open,
    .close = drv_close,
    .get_stats = drv_get_stats,
    .probe = drv_probe,
    .get_driver_stats = drv_get_driver_stats,
};

/* ---- main ----------------------------------------------------------------------- */

static int drv_setup(drv_t *d)
{
    mk_err_t e = mk_cap_lookup(d->args.endpoint, &d->ep);
    if (e != MK_OK) {
        mk_log("no endpoint capability named '%s' (--endpoint): %s", d->args.endpoint,
               mk_strerror(e));
        return -1;
    }
    if ((e = mk_ntfn_create(&d->ntfn)) != MK_OK || (e = mk_ntfn_bind(d->ntfn)) != MK_OK) {
        mk_log("cannot set up the notification: %s", mk_strerror(e));
        return -1;
    }
    mk_cap_t death;
    if ((e = mk_cap_mint(d->ntfn, MK_RIGHT_SEND, DRV_SIG_DEATH, &death)) != MK_OK ||
        (e = mk_ep_death_ntfn(d->ep, death)) != MK_OK)
        mk_log("no death notices (%s): a client that dies without close keeps its session",
               mk_strerror(e));
    d->wire = wire_start(&d->args);
    return d->wire ? 0 : -1;
}

static mk_err_t drv_serve(drv_t *d)
{
    mk_msg_t m;
    mk_recv_info_t info;
    mk_cap_t reply = MK_CAP_NULL;
    for (;;) {
        mk_err_t e = mk_reply_recv(d->ep, reply, &m, &info, MK_FOREVER);
        reply = MK_CAP_NULL;
        if (e != MK_OK)
            return e;
        if (info.notification) {
            if (info.badge & DRV_SIG_DEATH)
                drv_reap(d);
            if (info.badge & ~(mk_word_t)DRV_SIG_DEATH)
                wire_kick(d->wire); /* ring signal from the client */
            continue;
        }
        reply = nic_dispatch(&drv_ops, d, &info, &m);
    }
}

int nic_slirp_main(int argc, char **argv)
{
    drv_t *d = calloc(1, sizeof *d);
    if (d == NULL)
        return 1;
    char err[256];
    if (slirp_args_parse(argc, argv, &d->args, err, sizeof err) != 0) {
        mk_log("%s", err);
        free(d);
        return 2;
    }
    if (drv_setup(d) != 0) {
        free(d);
        return 1;
    }
    mk_log("serving the NIC session on '%s' (MAC 52:54:00:12:34:56, MTU %u)", d->args.endpoint,
           SLIRP_NIC_MTU);
    mk_err_t e = drv_serve(d);
    mk_log("stopping: %s", mk_strerror(e));
    if (d->session)
        drv_session_end(d);
    wire_stop(d->wire);
    free(d);
    return e == MK_EDEAD ? 0 : 1;
}

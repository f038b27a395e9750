/*
 * fake_nic.c - the test's NIC driver (see fake_nic.h). It follows the
 * driver side of ferry/nic_region.h honestly (unless told to misbehave):
 * consumer of rx_free and tx_active, producer of rx_active and tx_free,
 * signals netsrv only when netsrv asked (ring_prod_need_signal), and sleeps
 * only after re-arming its own signals (ring_cons_prepare_sleep), so the
 * tests exercise netsrv's signalling both ways.
 */
#include "fake_nic.h"

#include "wire.h"

#include <ferry/nic_region.h>
#include <ferry/ring.h>
#include <nic_server.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MS 1000000ull

const uint8_t fnic_mac[6] = {0x02, 0, 0, 0, 0, 0x01};
const uint8_t peer_mac[6] = {0x02, 0, 0, 0, 0, 0x02};

fnic_t fnic = {.lock = PTHREAD_MUTEX_INITIALIZER, .mtu = 1500, .max_frame = 1514, .link_up = true};

static mk_cap_t root_ntfn; /* the test's capability to ring the driver */

/* Driver-private session state (only the driver task touches it). */
static struct {
    nic_layout_t l;
    ring_region_t data;
    uint8_t *base;
    size_t size;
    mk_cap_t client_signal, my_signal;
    ring_cons_t rx_free, tx_active;
    ring_prod_t rx_active, tx_free;
    uint32_t held[NIC_REGION_BUFS_MAX]; /* offsets of held TX buffers */
} drv;

/* ---- nic.idl ----------------------------------------------------------------------------- */

static int32_t get_info(void *ctx, const mk_recv_info_t *info, nic_info_t *i)
{
    (void)ctx;
    (void)info;
    pthread_mutex_lock(&fnic.lock);
    for (int k = 0; k < 6; k++)
        i->mac = (i->mac << 8) | fnic_mac[k];
    i->mtu = fnic.mtu;
    i->max_frame = fnic.max_frame;
    i->link_up = fnic.link_up;
    pthread_mutex_unlock(&fnic.lock);
    return 0;
}

static int32_t open_session(void *ctx, const mk_recv_info_t *info, mk_cap_t region,
                            mk_cap_t client_signal, uint32_t nbufs, uint32_t buf_size,
                            mk_cap_t *driver_signal, uint32_t *generation)
{
    (void)ctx;
    (void)info;
    pthread_mutex_lock(&fnic.lock);
    bool refuse = fnic.refuse_open || fnic.open;
    pthread_mutex_unlock(&fnic.lock);
    if (refuse || nic_layout(nbufs, buf_size, &drv.l) != 0 ||
        mk_shm_map(region, MK_RIGHT_READ | MK_RIGHT_WRITE, (void **)&drv.base, &drv.size) !=
            MK_OK ||
        drv.size < drv.l.size) {
        mk_cap_delete(region);
        mk_cap_delete(client_signal);
        return refuse ? NIC_EBUSY : NIC_EINVAL;
    }
    drv.data = nic_data_region(&drv.l);
    ring_cons_attach(&drv.rx_free, nic_queue(drv.base, drv.l.rx_free), nbufs, &drv.data,
                     RING_F_ZERO_LEN_OK);
    ring_prod_attach(&drv.rx_active, nic_queue(drv.base, drv.l.rx_active), nbufs);
    ring_cons_attach(&drv.tx_active, nic_queue(drv.base, drv.l.tx_active), nbufs, &drv.data, 0);
    ring_prod_attach(&drv.tx_free, nic_queue(drv.base, drv.l.tx_free), nbufs);
    drv.client_signal = client_signal;
    *driver_signal = drv.my_signal;
    pthread_mutex_lock(&fnic.lock);
    fnic.open = true;
    *generation = ++fnic.opens;
    pthread_mutex_unlock(&fnic.lock);
    return 0;
}

static int32_t close_session(void *ctx, const mk_recv_info_t *info, uint32_t generation)
{
    (void)ctx;
    (void)info;
    (void)generation;
    return 0;
}

static int32_t get_stats(void *ctx, const mk_recv_info_t *info, uint32_t generation, nic_stats_t *s)
{
    (void)ctx;
    (void)info;
    (void)generation;
    (void)s;
    return 0;
}

static const nic_ops_t ops = {
    .get_info = get_info, .open = open_session, .close = close_session, .get_stats = get_stats};

/* ---- The wire ---------------------------------------------------------------------------- */

static void queue_inject(const uint8_t *f, size_t len) /* fnic.lock held */
{
    if (fnic.ninject < FNIC_INJECT && len <= FNIC_FRAME_MAX) {
        fnic.inject[fnic.ninject].len = (uint32_t)len;
        memcpy(fnic.inject[fnic.ninject].data, f, len);
        fnic.ninject++;
    }
}

/* The peer's side of a frame netsrv sent (fnic.lock held). */
static void peer_answer(const uint8_t *f, size_t len)
{
    uint8_t out[FNIC_FRAME_MAX];
    w_arp_info_t arp;
    if (w_parse_arp(f, len, &arp)) {
        if (arp.op == 1 && arp.tpa == W_PEER_IP)
            queue_inject(out, w_arp(out, 2, arp.sha, peer_mac, W_PEER_IP, arp.sha, arp.spa));
        return;
    }
    w_icmp_info_t icmp;
    if (w_parse_icmp_echo(f, len, &icmp) && icmp.type == 8 && icmp.dst == W_PEER_IP &&
        memcmp(f, peer_mac, 6) == 0) {
        size_t n = w_icmp_reply_to(out, f, len, peer_mac);
        if (n)
            queue_inject(out, n);
        return;
    }
    /* IPv6: the peer's link-local address answers NS and echo requests. */
    w_icmp6_info_t i6;
    w_ip6_t peer_ll = w_ip6_linklocal(peer_mac);
    if (!w_parse_icmp6(f, len, &i6))
        return;
    if (i6.msg[0] == 135 && i6.msg_len >= 24 && memcmp(i6.msg + 8, peer_ll.b, 16) == 0)
        queue_inject(out, w_na(out, f + 6, peer_mac, &peer_ll, &i6.src));
    else if (i6.msg[0] == 128 && memcmp(i6.dst.b, peer_ll.b, 16) == 0 &&
             memcmp(f, peer_mac, 6) == 0 && i6.msg_len <= 8 + 1400) {
        uint8_t msg[8 + 1400];
        memcpy(msg, i6.msg, i6.msg_len);
        msg[0] = 129;
        queue_inject(out, w_icmp6(out, f + 6, peer_mac, &peer_ll, &i6.src, 64, msg, i6.msg_len));
    }
}

/* Frames from netsrv: record, answer, hand the buffers back (or hold). */
static void tx_serve(void)
{
    ring_desc_t d;
    ring_err_t err;
    bool returned = false;
    pthread_mutex_lock(&fnic.lock);
    while ((err = ring_cons_dequeue(&drv.tx_active, &d)) != RING_EEMPTY && err != RING_EINDEX) {
        if (err != RING_OK)
            continue;
        fnic_frame_t *fr = &fnic.log[fnic.nsent % FNIC_LOG];
        fr->len = d.len;
        memcpy(fr->data, drv.base + drv.l.tx_data + d.offset, d.len);
        fnic.nsent++;
        if (fnic.respond)
            peer_answer(fr->data, fr->len);
        if (fnic.hold_tx) {
            drv.held[fnic.held++] = d.offset;
        } else {
            ring_prod_enqueue(&drv.tx_free, (ring_desc_t){d.offset, 0});
            returned = true;
        }
    }
    if (fnic.release) {
        for (uint32_t i = 0; i < fnic.held; i++)
            ring_prod_enqueue(&drv.tx_free, (ring_desc_t){drv.held[i], 0});
        returned |= fnic.held > 0;
        fnic.held = 0;
        fnic.release = false;
        fnic.hold_tx = false;
    }
    pthread_mutex_unlock(&fnic.lock);
    ring_cons_publish(&drv.tx_active);
    if (returned) {
        ring_prod_publish(&drv.tx_free);
        if (ring_prod_need_signal(&drv.tx_free))
            mk_signal(drv.client_signal);
    }
}

/* Frames, raw descriptors and index tricks towards netsrv. */
static void rx_serve(void)
{
    bool published = false;
    pthread_mutex_lock(&fnic.lock);
    uint32_t done = 0;
    while (done < fnic.ninject) {
        ring_desc_t d;
        ring_err_t err = ring_cons_dequeue(&drv.rx_free, &d);
        if (err == RING_EEMPTY || err == RING_EINDEX)
            break;
        if (err != RING_OK)
            continue;
        fnic_frame_t *fr = &fnic.inject[done++];
        d.len = fr->len;
        memcpy(drv.base + drv.l.rx_data + d.offset, fr->data, fr->len);
        ring_prod_enqueue(&drv.rx_active, d);
        if (fnic.twice) { /* the same buffer handed back a second time */
            ring_prod_enqueue(&drv.rx_active, d);
            fnic.twice = false;
        }
        published = true;
    }
    memmove(fnic.inject, fnic.inject + done, (fnic.ninject - done) * sizeof fnic.inject[0]);
    fnic.ninject -= done;
    for (uint32_t i = 0; i < fnic.nraw; i++)
        ring_prod_enqueue(&drv.rx_active, (ring_desc_t){fnic.raw[i].offset, fnic.raw[i].len});
    published |= fnic.nraw > 0;
    fnic.nraw = 0;
    bool bad_tail = fnic.bad_tail;
    fnic.bad_tail = false;
    pthread_mutex_unlock(&fnic.lock);
    ring_cons_publish(&drv.rx_free);
    if (published)
        ring_prod_publish(&drv.rx_active);
    if (bad_tail) { /* an impossible tail, straight into shared memory */
        ring_queue_t *q = nic_queue(drv.base, drv.l.rx_active);
        atomic_store(&q->tail, atomic_load(&q->tail) + drv.l.nbufs + 7);
        published = true;
    }
    if (published && ring_prod_need_signal(&drv.rx_active))
        mk_signal(drv.client_signal);
    else if (bad_tail)
        mk_signal(drv.client_signal);
}

/* May the driver sleep? Re-arms the signals it wants (docs/rings.md). */
static bool may_sleep(void)
{
    pthread_mutex_lock(&fnic.lock);
    bool waiting = fnic.ninject > 0 || fnic.nraw > 0 || fnic.release || fnic.bad_tail;
    pthread_mutex_unlock(&fnic.lock);
    if (!ring_cons_prepare_sleep(&drv.tx_active))
        return false;
    if (waiting && !ring_cons_prepare_sleep(&drv.rx_free))
        return false;
    return true;
}

int fnic_main(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    mk_cap_t ep, ntfn;
    if (mk_cap_lookup("nic", &ep) != MK_OK || mk_cap_lookup("nic-ntfn", &ntfn) != MK_OK ||
        mk_ntfn_bind(ntfn) != MK_OK ||
        mk_cap_mint(ntfn, MK_RIGHT_SEND | MK_RIGHT_GRANT, 1, &drv.my_signal) != MK_OK)
        return 10;
    mk_msg_t m;
    mk_recv_info_t info;
    mk_cap_t reply = MK_CAP_NULL;
    for (;;) {
        bool open;
        pthread_mutex_lock(&fnic.lock);
        open = fnic.open;
        pthread_mutex_unlock(&fnic.lock);
        uint64_t timeout = 1000 * MS;
        if (open) {
            tx_serve();
            rx_serve();
            timeout = may_sleep() ? 1000 * MS : MK_NOWAIT;
        }
        mk_err_t e = mk_reply_recv(ep, reply, &m, &info, timeout);
        reply = MK_CAP_NULL;
        if (e == MK_ETIMEDOUT && timeout != MK_NOWAIT && open) {
            uint32_t n = 0;
            mk_word_t bits = 0;
            if (ring_cons_avail(&drv.tx_active, &n) == RING_OK && n > 0 &&
                mk_wait(ntfn, &bits, 200 * MS) == MK_ETIMEDOUT) {
                pthread_mutex_lock(&fnic.lock);
                fnic.lost_wakeups++;
                pthread_mutex_unlock(&fnic.lock);
            }
            continue;
        }
        if (e == MK_ETIMEDOUT)
            continue;
        if (e != MK_OK)
            return 0; /* killed at the end of the test */
        if (info.notification) {
            pthread_mutex_lock(&fnic.lock);
            fnic.signals_in++;
            pthread_mutex_unlock(&fnic.lock);
            continue;
        }
        reply = nic_dispatch(&ops, NULL, &info, &m);
    }
}

/* ---- Test side --------------------------------------------------------------------------- */

mk_cap_t fnic_setup(void)
{
    mk_cap_t ep, task, client;
    if (mk_ep_create(&ep) != MK_OK || mk_ntfn_create(&root_ntfn) != MK_OK ||
        mk_cap_mint(ep, MK_RIGHT_SEND | MK_RIGHT_GRANT, 0, &client) != MK_OK ||
        mk_task_create("fnic", &task) != MK_OK ||
        mk_task_give(task, ep, MK_RIGHT_RECV, 0, "nic", NULL) != MK_OK ||
        mk_task_give(task, root_ntfn, MK_RIGHTS_ALL, 0, "nic-ntfn", NULL) != MK_OK)
        abort();
    char *argv[] = {"fake-nic", NULL};
    if (mk_task_start(task, fnic_main, 1, argv) != MK_OK)
        abort();
    return client;
}

void fnic_kick(void)
{
    mk_signal(root_ntfn);
}

void fnic_inject(const uint8_t *frame, size_t len)
{
    pthread_mutex_lock(&fnic.lock);
    queue_inject(frame, len);
    pthread_mutex_unlock(&fnic.lock);
    fnic_kick();
}

uint32_t fnic_mark(void)
{
    pthread_mutex_lock(&fnic.lock);
    uint32_t n = fnic.nsent;
    pthread_mutex_unlock(&fnic.lock);
    return n;
}

size_t fnic_wait(uint32_t *from, bool (*match)(const uint8_t *f, size_t len, const void *arg),
                 const void *arg, uint64_t timeout_ns, uint8_t *out)
{
    uint64_t deadline = mk_time_ns() + timeout_ns;
    for (;;) {
        pthread_mutex_lock(&fnic.lock);
        if (fnic.nsent - *from > FNIC_LOG)
            *from = fnic.nsent - FNIC_LOG; /* overwritten: skip */
        for (; *from != fnic.nsent; (*from)++) {
            const fnic_frame_t *fr = &fnic.log[*from % FNIC_LOG];
            if (match(fr->data, fr->len, arg)) {
                size_t len = fr->len;
                memcpy(out, fr->data, len);
                (*from)++;
                pthread_mutex_unlock(&fnic.lock);
                return len;
            }
        }
        pthread_mutex_unlock(&fnic.lock);
        if (mk_time_ns() >= deadline)
            return 0;
        usleep(1000);
    }
}

/* ---- Driver death (fnic_start) ------------------------------------------------------------ */

static int fnic_main_counted(int argc, char **argv)
{
    int st = fnic_main(argc, argv);
    pthread_mutex_lock(&fnic.lock);
    fnic.alive--;
    pthread_mutex_unlock(&fnic.lock);
    return st;
}

mk_cap_t fnic_start(mk_cap_t *task)
{
    uint64_t end = mk_time_ns() + 5000 * MS;
    for (;;) {
        pthread_mutex_lock(&fnic.lock);
        uint32_t alive = fnic.alive;
        pthread_mutex_unlock(&fnic.lock);
        if (alive == 0)
            break;
        if (mk_time_ns() >= end)
            abort(); /* the previous driver task never returned */
        usleep(1000);
    }
    pthread_mutex_lock(&fnic.lock);
    fnic.open = false;
    fnic.held = 0;
    fnic.ninject = fnic.nraw = 0;
    fnic.hold_tx = fnic.release = fnic.bad_tail = fnic.twice = false;
    fnic.alive++;
    pthread_mutex_unlock(&fnic.lock);
    memset(&drv, 0, sizeof drv);
    mk_cap_t ep, client;
    if (mk_ep_create(&ep) != MK_OK || mk_ntfn_create(&root_ntfn) != MK_OK ||
        mk_cap_mint(ep, MK_RIGHT_SEND | MK_RIGHT_GRANT, 0, &client) != MK_OK ||
        mk_task_create("fnic", task) != MK_OK ||
        mk_task_give(*task, ep, MK_RIGHT_RECV, 0, "nic", NULL) != MK_OK ||
        mk_task_give(*task, root_ntfn, MK_RIGHTS_ALL, 0, "nic-ntfn", NULL) != MK_OK ||
        mk_cap_delete(ep) != MK_OK) /* the driver task holds the only receive right */
        abort();
    char *argv[] = {"fake-nic", NULL};
    if (mk_task_start(*task, fnic_main_counted, 1, argv) != MK_OK)
        abort();
    return client;
}

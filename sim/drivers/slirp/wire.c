/*
 * wire.c - the wire thread: the only thread that touches libslirp.
 *
 * libslirp is not thread-safe, so one thread owns the Slirp instance and
 * does everything that reaches it: slirp_new and the host forwards, the
 * poll loop (slirp_pollfds_fill / poll / slirp_pollfds_poll), slirp's timers,
 * slirp_input of the client's frames and slirp's send_packet callback. The
 * attached session's rings and buffers belong to this thread too (drv.h).
 *
 * One loop iteration:
 *   1. take a command from the control thread (attach, detach, quit);
 *   2. TX: drain tx_active (bounded), validate, copy, filter, slirp_input,
 *      return the buffers on tx_free;
 *   3. run expired timers;
 *   4. flush: publish the rings, signal the client if it asked;
 *   5. arm tx_active (ring_cons_prepare_sleep) and sleep in poll() on the
 *      eventfd and slirp's sockets until the earliest timer;
 *   6. slirp_pollfds_poll (host sockets -> frames via send_packet), flush.
 * RX frames arrive only through send_packet (during 2, 3 and 6): each is
 * copied into a buffer from rx_free and queued on rx_active, or dropped
 * (rx_dropped) when no buffer is free: the driver never waits for the client.
 */
#include "drv.h"
#include "filter.h"
#include "slirp_net.h"

#include <assert.h>
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <slirp/libslirp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#define WIRE_MAX_TIMERS 8
#define WIRE_CMD_TIMEOUT_S 10  /* the control thread's patience for one command */
#define WIRE_FILTER_LOG_MAX 16 /* filter drops logged per session */

enum wire_cmd { WIRE_CMD_NONE, WIRE_CMD_ATTACH, WIRE_CMD_DETACH, WIRE_CMD_QUIT };
enum wire_state { WIRE_STARTING, WIRE_RUNNING, WIRE_FAILED, WIRE_STOPPED };

/* A slirp timer: either a plain callback (timer_new) or an id that goes
 * back to slirp_handle_timer (timer_new_opaque). */
typedef struct wire_timer {
    bool used;
    bool armed;
    int64_t expire_ms;
    SlirpTimerCb cb;
    SlirpTimerId id;
    bool by_id;
    void *cb_opaque;
} wire_timer_t;

struct wire {
    const slirp_args_t *args;
    int efd; /* eventfd: wire_kick() and commands wake poll() */
    uint32_t tid;

    /* Command slot, shared with the control thread under `lock`. */
    pthread_mutex_t lock;
    pthread_cond_t cond;
    enum wire_cmd cmd;
    drv_session_t *cmd_arg;
    enum wire_state state;

    /* Wire thread only. */
    pthread_t owner; /* the wire thread, for WIRE_ASSERT_OWNER */
    Slirp *slirp;
    drv_session_t *s; /* the attached session, or NULL */
    struct pollfd *fds;
    int nfds, fds_cap;
    wire_timer_t timers[WIRE_MAX_TIMERS];
    uint8_t frame[SLIRP_NIC_MAX_FRAME]; /* private copy of one TX frame */
};

/* Everything that touches libslirp or the attached session runs on the wire
 * thread (libslirp is not thread-safe): checked in debug builds. */
#define WIRE_ASSERT_OWNER(w) assert(pthread_equal(pthread_self(), (w)->owner))

static int64_t now_ms(void)
{
    return (int64_t)(mk_time_ns() / 1000000u);
}

/* ---- RX: slirp -> client ---------------------------------------------------- */

/* slirp's send_packet: one Ethernet frame for the guest. Copy it into a
 * buffer from rx_free and queue it on rx_active (published by rx_flush). */
static ssize_t wire_rx_deliver(const void *buf, size_t len, void *opaque)
{
    wire_t *w = opaque;
    WIRE_ASSERT_OWNER(w);
    drv_session_t *s = w->s;
    if (s == NULL)
        return (ssize_t)len; /* no session: the frame has nowhere to go */
    if (len > SLIRP_NIC_MAX_FRAME || len > s->layout.buf_size || len == 0) {
        drv_count(&s->c.rx_dropped, 1);
        return (ssize_t)len;
    }
    ring_desc_t d;
    ring_err_t e;
    /* Bad descriptors are consumed one by one; at most a queue's worth. */
    for (uint32_t tries = 0; tries <= s->layout.nbufs; tries++) {
        e = ring_cons_dequeue(&s->rx_free, &d);
        if (e == RING_OK || e == RING_EEMPTY || e == RING_EINDEX)
            break;
        drv_count(&s->c.ring_errors, 1); /* malformed rx_free descriptor */
        s->rx_dirty = true;
    }
    if (e != RING_OK) {
        if (e == RING_EINDEX)
            drv_count(&s->c.ring_errors, 1);
        drv_count(&s->c.rx_dropped, 1);
        return (ssize_t)len;
    }
    memcpy(s->base + s->layout.rx_data + d.offset, buf, len);
    d.len = (uint32_t)len;
    s->rx_dirty = true;
    if (ring_prod_enqueue(&s->rx_active, d) != RING_OK) {
        /* Only a hostile client (a buffer lent twice, an impossible head)
         * can fill rx_active; the buffer is lost to it. */
        drv_count(&s->c.ring_errors, 1);
        drv_count(&s->c.rx_dropped, 1);
        return (ssize_t)len;
    }
    drv_count(&s->c.rx_frames, 1);
    drv_count(&s->c.rx_bytes, len);
    return (ssize_t)len;
}

/* Publish what changed (rule 3 of ferry/ring.h: hand back consumed slots of
 * the input queue before publishing the output queue) and signal the client
 * once if either output queue asked for it. */
static void wire_flush(wire_t *w)
{
    drv_session_t *s = w->s;
    if (s == NULL)
        return;
    bool signal = false;
    if (s->rx_dirty) {
        ring_cons_publish(&s->rx_free);
        ring_prod_publish(&s->rx_active);
        signal |= ring_prod_need_signal(&s->rx_active);
        s->rx_dirty = false;
    }
    if (s->tx_dirty) {
        ring_cons_publish(&s->tx_active);
        ring_prod_publish(&s->tx_free);
        signal |= ring_prod_need_signal(&s->tx_free);
        s->tx_dirty = false;
    }
    if (signal) {
        mk_err_t e = mk_signal(s->client_signal);
        if (e != MK_OK && e != MK_EDEAD)
            mk_log("cannot signal the client: %s", mk_strerror(e));
    }
}

/* ---- TX: client -> slirp ---------------------------------------------------- */

static void wire_tx_one(wire_t *w, drv_session_t *s, ring_desc_t d)
{
    if (d.len == 0 || d.len > SLIRP_NIC_MAX_FRAME) {
        drv_count(&s->c.tx_rejected, 1);
        return;
    }
    /* Copy first: the client can rewrite its buffer at any time, the filter
     * and slirp must see the same bytes. */
    memcpy(w->frame, s->base + s->layout.tx_data + d.offset, d.len);
    filter_verdict_t v = filter_frame(w->frame, d.len);
    if (v != FILTER_PASS) {
        drv_count(&s->c.tx_filtered, 1);
        if (s->filter_logged < WIRE_FILTER_LOG_MAX) {
            s->filter_logged++;
            mk_log("session %u: TX frame of %u bytes dropped by the safety filter (%s)%s",
                   s->generation, d.len, filter_verdict_name(v),
                   s->filter_logged == WIRE_FILTER_LOG_MAX ? "; not logging further drops" : "");
        }
        return;
    }
    slirp_input(w->slirp, w->frame, (int)d.len);
    drv_count(&s->c.tx_frames, 1);
    drv_count(&s->c.tx_bytes, d.len);
}

/* Drain tx_active, at most one queue's worth. Returns true if it stopped
 * because of the budget (more may be waiting). */
static bool wire_tx_drain(wire_t *w)
{
    WIRE_ASSERT_OWNER(w);
    drv_session_t *s = w->s;
    if (s == NULL)
        return false;
    for (uint32_t n = 0; n < s->layout.nbufs; n++) {
        ring_desc_t d;
        ring_err_t e = ring_cons_dequeue(&s->tx_active, &d);
        if (e == RING_EEMPTY)
            return false;
        if (e == RING_EINDEX) {
            drv_count(&s->c.ring_errors, 1); /* impossible tail: nothing taken */
            return false;
        }
        s->tx_dirty = true;
        if (e != RING_OK) {
            /* Names no buffer of the region (too long for a buffer, out of
             * the region, misaligned): dropped, nothing to give back. */
            drv_count(&s->c.tx_rejected, 1);
            continue;
        }
        wire_tx_one(w, s, d);
        d.len = 0;
        if (ring_prod_enqueue(&s->tx_free, d) != RING_OK)
            drv_count(&s->c.ring_errors, 1); /* a buffer sent twice, or a bad head */
    }
    return true;
}

/* ---- slirp's timers ------------------------------------------------------------ */

static wire_timer_t *timer_alloc(wire_t *w)
{
    for (int i = 0; i < WIRE_MAX_TIMERS; i++) {
        if (!w->timers[i].used) {
            w->timers[i] = (wire_timer_t){.used = true};
            return &w->timers[i];
        }
    }
    mk_log("slirp asked for more than %d timers; timer refused", WIRE_MAX_TIMERS);
    return NULL;
}

static void *wire_timer_new(SlirpTimerCb cb, void *cb_opaque, void *opaque)
{
    wire_timer_t *t = timer_alloc(opaque);
    if (t) {
        t->cb = cb;
        t->cb_opaque = cb_opaque;
    }
    return t;
}

static void *wire_timer_new_opaque(SlirpTimerId id, void *cb_opaque, void *opaque)
{
    wire_timer_t *t = timer_alloc(opaque);
    if (t) {
        t->by_id = true;
        t->id = id;
        t->cb_opaque = cb_opaque;
    }
    return t;
}

static void wire_timer_free(void *timer, void *opaque)
{
    (void)opaque;
    if (timer)
        *(wire_timer_t *)timer = (wire_timer_t){0};
}

static void wire_timer_mod(void *timer, int64_t expire_ms, void *opaque)
{
    (void)opaque;
    wire_timer_t *t = timer;
    if (t) {
        t->armed = true;
        t->expire_ms = expire_ms;
    }
}

/* Fire every expired timer (a callback may re-arm or free timers). */
static void wire_timers_run(wire_t *w)
{
    int64_t now = now_ms();
    for (int i = 0; i < WIRE_MAX_TIMERS; i++) {
        wire_timer_t *t = &w->timers[i];
        if (!t->used || !t->armed || t->expire_ms > now)
            continue;
        t->armed = false;
        if (t->by_id)
            slirp_handle_timer(w->slirp, t->id, t->cb_opaque);
        else if (t->cb)
            t->cb(t->cb_opaque);
    }
}

/* Milliseconds until the earliest armed timer, UINT32_MAX if none. */
static uint32_t wire_timers_next(wire_t *w)
{
    int64_t now = now_ms();
    int64_t best = INT64_MAX;
    for (int i = 0; i < WIRE_MAX_TIMERS; i++)
        if (w->timers[i].used && w->timers[i].armed && w->timers[i].expire_ms < best)
            best = w->timers[i].expire_ms;
    if (best == INT64_MAX)
        return UINT32_MAX;
    if (best <= now)
        return 0;
    return best - now > INT32_MAX ? INT32_MAX : (uint32_t)(best - now);
}

/* ---- slirp's other callbacks -------------------------------------------------- */

static void wire_guest_error(const char *msg, void *opaque)
{
    (void)opaque;
    mk_log("slirp: guest error: %s", msg);
}

static int64_t wire_clock_ns(void *opaque)
{
    (void)opaque;
    return (int64_t)mk_time_ns();
}

/* We rebuild the poll set every iteration, so these need do nothing. */
static void wire_poll_fd_noop(int fd, void *opaque)
{
    (void)fd;
    (void)opaque;
}

static void wire_notify(void *opaque)
{
    (void)opaque; /* only used by guestfwd, which we do not offer */
}

static int wire_add_poll(int fd, int events, void *opaque)
{
    wire_t *w = opaque;
    if (w->nfds == w->fds_cap) {
        int cap = w->fds_cap ? 2 * w->fds_cap : 16;
        struct pollfd *n = realloc(w->fds, (size_t)cap * sizeof *n);
        if (n == NULL)
            return -1; /* this socket is not polled this round */
        w->fds = n;
        w->fds_cap = cap;
    }
    short ev = 0;
    ev |= (events & SLIRP_POLL_IN) ? POLLIN : 0;
    ev |= (events & SLIRP_POLL_OUT) ? POLLOUT : 0;
    ev |= (events & SLIRP_POLL_PRI) ? POLLPRI : 0;
    ev |= (events & SLIRP_POLL_ERR) ? POLLERR : 0;
    ev |= (events & SLIRP_POLL_HUP) ? POLLHUP : 0;
    w->fds[w->nfds] = (struct pollfd){.fd = fd, .events = ev};
    return w->nfds++;
}

static int wire_get_revents(int idx, void *opaque)
{
    wire_t *w = opaque;
    if (idx < 0 || idx >= w->nfds)
        return 0;
    short r = w->fds[idx].revents;
    int ev = 0;
    ev |= (r & POLLIN) ? SLIRP_POLL_IN : 0;
    ev |= (r & POLLOUT) ? SLIRP_POLL_OUT : 0;
    ev |= (r & POLLPRI) ? SLIRP_POLL_PRI : 0;
    ev |= (r & POLLERR) ? SLIRP_POLL_ERR : 0;
    ev |= (r & POLLHUP) ? SLIRP_POLL_HUP : 0;
    return ev;
}

static const SlirpCb wire_callbacks = {
    .send_packet = wire_rx_deliver,
    .guest_error = wire_guest_error,
    .clock_get_ns = wire_clock_ns,
    .timer_new = wire_timer_new,
    .timer_free = wire_timer_free,
    .timer_mod = wire_timer_mod,
    .register_poll_fd = wire_poll_fd_noop,
    .unregister_poll_fd = wire_poll_fd_noop,
    .notify = wire_notify,
    .timer_new_opaque = wire_timer_new_opaque,
};

/* ---- Slirp instance ----------------------------------------------------------- */

static Slirp *wire_slirp_new(wire_t *w)
{
    SlirpConfig cfg = {
        .version = 4,
        .restricted = 0, /* guest may reach the host alias; filter.c decides what else */
        .in_enabled = true,
        .vnetwork.s_addr = htonl(SLIRP_NET4),
        .vnetmask.s_addr = htonl(SLIRP_MASK4),
        .vhost.s_addr = htonl(SLIRP_HOST4),
        .in6_enabled = true,
        .vprefix_addr6 = {.s6_addr = SLIRP_PREFIX6},
        .vprefix_len = SLIRP_PREFIX6_LEN,
        .vhost6 = {.s6_addr = SLIRP_HOST6},
        .vhostname = "ferry",
        .vdhcp_start.s_addr = htonl(SLIRP_DHCP_START4),
        .vnameserver.s_addr = htonl(SLIRP_DNS4),
        .vnameserver6 = {.s6_addr = SLIRP_DNS6},
        .if_mtu = SLIRP_NIC_MTU,
        .if_mru = SLIRP_NIC_MTU,
        .disable_host_loopback = false, /* the host alias must reach 127.0.0.1 */
        .enable_emu = false,
        .disable_dns = true,   /* no DNS forwarding to the host's resolver */
        .disable_dhcp = false, /* DHCP is answered inside slirp */
    };
    return slirp_new(&cfg, &wire_callbacks, w);
}

static int wire_add_forwards(wire_t *w)
{
    for (int i = 0; i < w->args->nforwards; i++) {
        const slirp_forward_t *f = &w->args->forwards[i];
        int flags = f->udp ? SLIRP_HOSTFWD_UDP : 0;
        if (f->host.ss_family == AF_INET6)
            flags |= SLIRP_HOSTFWD_V6ONLY;
        if (slirp_add_hostxfwd(w->slirp, (const struct sockaddr *)&f->host, f->len,
                               (const struct sockaddr *)&f->guest, f->len, flags) != 0) {
            mk_log("--forward '%s': slirp cannot set it up: %s", f->spec, strerror(errno));
            return -1;
        }
        mk_log("forwarding %s", f->spec);
    }
    return 0;
}

/* ---- The loop ---------------------------------------------------------------- */

static void wire_set_state(wire_t *w, enum wire_state st)
{
    pthread_mutex_lock(&w->lock);
    w->state = st;
    pthread_cond_broadcast(&w->cond);
    pthread_mutex_unlock(&w->lock);
}

/* Carry out a pending command. Returns true on quit. */
static bool wire_take_command(wire_t *w)
{
    pthread_mutex_lock(&w->lock);
    enum wire_cmd cmd = w->cmd;
    if (cmd == WIRE_CMD_ATTACH) {
        w->s = w->cmd_arg;
        w->s->rx_dirty = w->s->tx_dirty = false;
    } else if (cmd == WIRE_CMD_DETACH || cmd == WIRE_CMD_QUIT) {
        wire_flush(w); /* frames already queued still reach the client */
        w->s = NULL;
    }
    if (cmd != WIRE_CMD_NONE) {
        w->cmd = WIRE_CMD_NONE;
        pthread_cond_broadcast(&w->cond);
    }
    pthread_mutex_unlock(&w->lock);
    return cmd == WIRE_CMD_QUIT;
}

static void wire_sleep(wire_t *w, uint32_t timeout_ms)
{
    WIRE_ASSERT_OWNER(w);
    w->nfds = 0;
    wire_add_poll(w->efd, SLIRP_POLL_IN, w);
    slirp_pollfds_fill(w->slirp, &timeout_ms, wire_add_poll, w);
    int ms = timeout_ms == UINT32_MAX ? -1 : timeout_ms > INT_MAX ? INT_MAX : (int)timeout_ms;
    int r = poll(w->fds, (nfds_t)w->nfds, ms);
    if (r > 0 && (w->fds[0].revents & POLLIN)) {
        uint64_t v;
        if (read(w->efd, &v, sizeof v) < 0 && errno != EAGAIN)
            mk_log("eventfd read: %s", strerror(errno));
    }
    slirp_pollfds_poll(w->slirp, r < 0, wire_get_revents, w);
}

static void wire_loop(wire_t *w)
{
    while (!wire_take_command(w)) {
        bool more = wire_tx_drain(w);
        wire_timers_run(w);
        wire_flush(w);
        uint32_t timeout = wire_timers_next(w);
        /* Arm tx_active before sleeping (ferry/ring.h): if frames arrived
         * meanwhile, do not sleep. */
        if (more || (w->s && !ring_cons_prepare_sleep(&w->s->tx_active)))
            timeout = 0;
        wire_sleep(w, timeout);
        wire_flush(w);
    }
}

static void wire_main(void *arg)
{
    wire_t *w = arg;
    w->owner = pthread_self();
    w->slirp = wire_slirp_new(w);
    if (w->slirp == NULL) {
        mk_log("slirp_new failed");
        wire_set_state(w, WIRE_FAILED);
        return;
    }
    if (wire_add_forwards(w) != 0) {
        slirp_cleanup(w->slirp);
        wire_set_state(w, WIRE_FAILED);
        return;
    }
    mk_log("libslirp %s: 10.0.2.0/24 and fec0::/64, host alias 10.0.2.2 / fec0::2 (loopback), "
           "DNS off",
           slirp_version_string());
    wire_set_state(w, WIRE_RUNNING);
    wire_loop(w);
    slirp_cleanup(w->slirp);
    w->slirp = NULL;
    wire_set_state(w, WIRE_STOPPED); /* last touch of w: the control thread frees it */
}

/* ---- Control thread side ----------------------------------------------------- */

void wire_kick(wire_t *w)
{
    uint64_t one = 1;
    /* Fails only if the counter would overflow, i.e. a wake-up is pending. */
    if (write(w->efd, &one, sizeof one) < 0 && errno != EAGAIN)
        mk_log("eventfd write: %s", strerror(errno));
}

static struct timespec deadline_s(int s)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_sec += s;
    return ts;
}

/* Wait (lock held) until pred(w) or the deadline; returns pred(w). */
static bool wait_until(wire_t *w, bool (*pred)(const wire_t *))
{
    struct timespec ts = deadline_s(WIRE_CMD_TIMEOUT_S);
    while (!pred(w))
        if (pthread_cond_timedwait(&w->cond, &w->lock, &ts) == ETIMEDOUT)
            break;
    return pred(w);
}

static bool started(const wire_t *w)
{
    return w->state != WIRE_STARTING;
}

static bool cmd_done(const wire_t *w)
{
    return w->cmd == WIRE_CMD_NONE || w->state != WIRE_RUNNING;
}

static bool stopped(const wire_t *w)
{
    return w->state == WIRE_STOPPED || w->state == WIRE_FAILED;
}

static void wire_free(wire_t *w)
{
    pthread_cond_destroy(&w->cond);
    pthread_mutex_destroy(&w->lock);
    if (w->efd >= 0)
        close(w->efd);
    free(w->fds);
    free(w);
}

wire_t *wire_start(const slirp_args_t *args)
{
    wire_t *w = calloc(1, sizeof *w);
    if (w == NULL)
        return NULL;
    w->args = args;
    w->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&w->cond, &ca);
    pthread_condattr_destroy(&ca);
    pthread_mutex_init(&w->lock, NULL);
    if (w->efd < 0) {
        mk_log("eventfd: %s", strerror(errno));
        wire_free(w);
        return NULL;
    }
    mk_err_t e = mk_thread_create(wire_main, w, &w->tid);
    if (e != MK_OK) {
        mk_log("cannot create the wire thread: %s", mk_strerror(e));
        wire_free(w);
        return NULL;
    }
    pthread_mutex_lock(&w->lock);
    bool ok = wait_until(w, started) && w->state == WIRE_RUNNING;
    bool gone = stopped(w);
    pthread_mutex_unlock(&w->lock);
    if (!ok) {
        if (gone) {
            mk_thread_join(w->tid);
            wire_free(w);
        } /* else: hung in slirp_new; leave it rather than free under it */
        return NULL;
    }
    return w;
}

static int wire_command(wire_t *w, enum wire_cmd cmd, drv_session_t *arg)
{
    pthread_mutex_lock(&w->lock);
    int r = -1;
    if (w->state == WIRE_RUNNING) {
        w->cmd = cmd;
        w->cmd_arg = arg;
        wire_kick(w);
        r = wait_until(w, cmd_done) && w->cmd == WIRE_CMD_NONE ? 0 : -1;
    }
    pthread_mutex_unlock(&w->lock);
    if (r != 0)
        mk_log("the wire thread did not answer (command %d)", (int)cmd);
    return r;
}

int wire_attach(wire_t *w, drv_session_t *s)
{
    return wire_command(w, WIRE_CMD_ATTACH, s);
}

int wire_detach(wire_t *w)
{
    return wire_command(w, WIRE_CMD_DETACH, NULL);
}

void wire_stop(wire_t *w)
{
    if (w == NULL)
        return;
    pthread_mutex_lock(&w->lock);
    if (w->state == WIRE_RUNNING) {
        w->cmd = WIRE_CMD_QUIT;
        wire_kick(w);
    }
    bool done = wait_until(w, stopped);
    pthread_mutex_unlock(&w->lock);
    if (!done) {
        mk_log("the wire thread does not stop; leaving it");
        return;
    }
    /* Fails with MK_EDEAD when the task is being killed; the thread has
     * finished with w anyway (it set WIRE_STOPPED last). */
    (void)mk_thread_join(w->tid);
    wire_free(w);
}

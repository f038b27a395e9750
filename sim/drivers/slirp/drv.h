/*
 * drv.h - private to the slirp driver: the session, the counters, and the
 * interface between its two threads.
 *
 * ==== Threads and what each may touch ======================================
 *
 *  control thread (the task's first thread, driver.c): receives on the
 *    endpoint with mk_reply_recv and serves nic.idl through nic_dispatch();
 *    the driver's notification is bound to it, so a client's ring signal ends
 *    its mk_reply_recv and it forwards it with wire_kick(); a death notice
 *    (the session's client died) ends it too, and this thread then ends the
 *    session as close would. It validates, maps and unmaps regions and
 *    creates and frees drv_session_t, but
 *    between wire_attach() and wire_detach() it touches nothing of the
 *    session except `generation` (constant) and the counters (atomic loads).
 *    It never touches the Slirp instance.
 *
 *  wire thread (wire.c): owns the Slirp instance and everything that calls
 *    into libslirp (slirp_input, slirp_pollfds_fill/poll, timers, host
 *    forwards, slirp's callbacks), plus the attached session's rings and
 *    buffers. It sleeps in poll() on slirp's sockets and an eventfd that
 *    wire_kick() writes; the poll timeout is the earliest slirp timer.
 *
 *  The two meet only in wire.c's command slot (mutex + condition variable:
 *  attach, detach, quit, each waited for by the control thread), the
 *  eventfd, and the counters (relaxed atomics: each is written by the wire
 *  thread only; a reader sees some recent value).
 */
#ifndef FERRY_SLIRP_DRV_H
#define FERRY_SLIRP_DRV_H

#include "args.h"

#include <ferry/mk.h>
#include <ferry/nic_region.h>
#include <ferry/ring.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

/* Per-session counters (nic.stats). Written by the wire thread only. */
typedef struct drv_counters {
    _Atomic uint64_t rx_frames, rx_bytes, rx_dropped;
    _Atomic uint64_t tx_frames, tx_bytes, tx_rejected, tx_filtered;
    _Atomic uint64_t ring_errors;
} drv_counters_t;

static inline void drv_count(_Atomic uint64_t *c, uint64_t n)
{
    /* Relaxed: a statistic, orders nothing; single writer (wire thread). */
    atomic_fetch_add_explicit(c, n, memory_order_relaxed);
}

static inline uint64_t drv_counter(_Atomic uint64_t *c)
{
    return atomic_load_explicit(c, memory_order_relaxed);
}

/* One open NIC session. */
typedef struct drv_session {
    /* Set by the control thread before attach, constant afterwards. */
    uint32_t generation;
    nic_layout_t layout;
    ring_region_t data; /* trusted geometry of each data area */
    uint8_t *base;      /* the region, mapped read-write */
    size_t map_size;
    mk_cap_t region;        /* the client's region capability */
    mk_cap_t client_signal; /* signals the client's notification */
    mk_cap_t driver_signal; /* the copy handed to the client (deleted at close) */
    mk_badge_t owner;       /* badge of the client that opened it (its death ends it) */

    /* Wire thread only, between attach and detach. */
    ring_cons_t rx_free;    /* empty RX buffers from the client */
    ring_prod_t rx_active;  /* RX buffers holding a frame, to the client */
    ring_cons_t tx_active;  /* TX buffers holding a frame, from the client */
    ring_prod_t tx_free;    /* TX buffers done with, to the client */
    bool rx_dirty;          /* rx queues changed since the last flush */
    bool tx_dirty;          /* tx queues changed since the last flush */
    uint32_t filter_logged; /* filter drops logged so far (rate limit) */

    drv_counters_t c;
} drv_session_t;

/* ---- The wire thread (wire.c) ----------------------------------------------- */

typedef struct wire wire_t;

/* Start the wire thread: it creates the Slirp instance and the host
 * forwards. Returns NULL (after logging why) if any of that fails. */
wire_t *wire_start(const slirp_args_t *args);

/* Hand an attached-ready session to the wire thread / take it back; each
 * returns once the wire thread has done it (0), or -1 if it did not answer. */
int wire_attach(wire_t *w, drv_session_t *s);
int wire_detach(wire_t *w);

/* Tell the wire thread that the client signalled (TX work or RX buffers). */
void wire_kick(wire_t *w);

/* Stop the wire thread (detaching any session first) and free it. */
void wire_stop(wire_t *w);

#endif

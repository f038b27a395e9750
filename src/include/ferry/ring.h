/*
 * ferry/ring.h - single-producer/single-consumer descriptor queues in shared
 * memory (sDDF style), used by the NIC session and the vNIC ports.
 *
 * ==== Ownership invariant (everything below relies on it) ==================
 *
 * A ring_queue_t lives in memory shared by exactly two parties: one
 * PRODUCER and one CONSUMER (two tasks, or two threads). Each party calls
 * only the functions of its role, from one thread at a time:
 *
 *   field           written by                      read by
 *   tail            producer only (release)         consumer (acquire)
 *   head            consumer only (release)         producer (acquire)
 *   signal_wanted   consumer sets 1 before sleeping, producer (after a full fence)
 *                   or clears it when it stays awake;
 *                   producer clears it to 0 when it
 *                   decides to signal
 *   slot[i]         producer, while i is outside    consumer, while i is in
 *                   [head, tail) (mod capacity)     [head, tail), copied out once
 *
 *   producer role: ring_prod_*()          consumer role: ring_cons_*()
 *   set-up (before either attaches, by whoever creates the memory):
 *                  ring_queue_init()
 *   anyone, any time: ring_queue_bytes(), ring_capacity_ok(),
 *                  ring_region_*(), ring_desc_check(), ring_strerror()
 *
 * Each party keeps its own index (tail for the producer, head for the
 * consumer) in process-private state (ring_prod_t, ring_cons_t) and only
 * ever WRITES its copy in shared memory: after attaching it never reads it back,
 * so a hostile peer that overwrites it changes nothing. The peer's index is
 * read and validated (0 <= tail - head <= capacity) before use; an
 * impossible value is an error (RING_EINDEX), never trusted. The capacity
 * comes from each party's trusted configuration, never from shared memory.
 *
 * ==== Layout (an ABI: shared by separately built tasks) ====================
 *
 *   offset   0  tail            (u32, own cache line)
 *   offset  64  head            (u32, own cache line)
 *   offset 128  signal_wanted   (u32, own cache line)
 *   offset 192  slot[capacity]  ({u32 offset, u32 len} each)
 *
 * Indices are free-running u32 counters: they wrap at 2^32, never reset;
 * slot = index & (capacity - 1), capacity a power of two; the number of
 * queued descriptors is tail - head (mod 2^32). Descriptors carry byte
 * offsets into a buffer region, never pointers.
 *
 * ==== Use: two queues per direction over one buffer region ==============
 *
 * A direction (e.g. NIC RX) has a region of N buffers and two queues: FREE
 * (empty buffers, from the region's owner to the party that fills them) and
 * ACTIVE (filled buffers, back). Each buffer is at every moment in exactly
 * one place: in a queue or held by one party. With capacity >= N a queue
 * can therefore never be full when an honest party enqueues, PROVIDED each
 * party hands back the slots it consumed (ring_cons_publish on its input
 * queue) no later than it passes those buffers on (ring_prod_publish on its
 * output queue): otherwise a buffer can come round again while its old
 * slot still counts as occupied (the model's BUG_LATE_HEAD). Enqueue still
 * checks and returns RING_EFULL instead of overwriting (a hostile peer can
 * hand back a buffer twice). See docs/rings.md.
 *
 * ==== Memory barriers (all of them; they come from ferry/fence.h) ==========
 *
 *  B1 ring_prod_publish: store-release of tail. Orders the slot writes and
 *     the writes of the buffers' contents before the new tail; pairs with B2.
 *  B2 consumer reads tail with load-acquire (ring_cons_dequeue,
 *     ring_cons_avail, ring_cons_prepare_sleep). Orders the tail read before
 *     the slot and buffer reads; pairs with B1.
 *  B3 ring_cons_publish: store-release of head. Orders the consumer's reads
 *     of the slots before the head that lets the producer reuse them; pairs
 *     with B4.
 *  B4 producer reads head with load-acquire (ring_prod_enqueue,
 *     ring_prod_space). Orders the head read before the slot overwrite;
 *     pairs with B3.
 *  B5 ring_prod_need_signal: full fence between the tail store (B1) and the
 *     read of signal_wanted; pairs with B6.
 *  B6 ring_cons_prepare_sleep: full fence between the store of
 *     signal_wanted = 1 and the re-read of tail; pairs with B5.
 *     B5 + B6: at least one side sees the other's store, so either the
 *     consumer sees the new tail and does not sleep, or the producer sees the
 *     flag and signals (no lost wakeup; model: tests/model/ring_signal.pml).
 *
 * ==== Signalling protocol (the ring itself never calls mk_*) ===============
 *
 *   producer                               consumer
 *   ring_prod_enqueue() x n                while (ring_cons_dequeue(c, &d) == RING_OK)
 *   ring_prod_publish()                        use(d);
 *   if (ring_prod_need_signal())           ring_cons_publish();
 *       mk_signal(consumer's ntfn);        if (ring_cons_prepare_sleep())
 *                                              mk_wait(ntfn, ...);
 *
 * A producer publishes (and checks need_signal) before it sleeps itself; a
 * consumer re-arms with ring_cons_prepare_sleep() before every sleep. The
 * signal may be spurious (the consumer finds nothing), never missing.
 *
 * Thread safety: a ring_prod_t or ring_cons_t is used by one thread at a
 * time (single-threaded by design, like the components that own them).
 */
#ifndef FERRY_RING_H
#define FERRY_RING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <ferry/fence.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- Errors --------------------------------------------------------------- */

typedef int32_t ring_err_t; /* 0 or a negative RING_E* code */

enum ring_error {
    RING_OK = 0,
    RING_EINVAL = -1,    /* bad argument (caller bug): NULL, bad capacity or region */
    RING_EFULL = -2,     /* enqueue: no free slot (nothing was written) */
    RING_EEMPTY = -3,    /* dequeue: nothing published (not a fault) */
    RING_EINDEX = -4,    /* peer's index impossible: tail - head > capacity */
    RING_EZERO = -5,     /* descriptor: length 0 on a queue that forbids it */
    RING_ELENGTH = -6,   /* descriptor: length > buffer size */
    RING_EOVERFLOW = -7, /* descriptor: offset + length wraps around 2^32 */
    RING_EALIGN = -8,    /* descriptor: offset not a multiple of the alignment */
    RING_EBOUNDS = -9,   /* descriptor: buffer [offset, offset + buf_size) not in region */
};
#define RING_NERR 10 /* number of codes, for per-code counters indexed by -err */

/* A short, constant name for an error code. */
const char *ring_strerror(ring_err_t err);

/* ---- Shared layout ---------------------------------------------------------- */

#define RING_CACHELINE 64u
#define RING_CAPACITY_MAX (1u << 24)

/* A descriptor as the caller sees it (process-private copy). */
typedef struct ring_desc {
    uint32_t offset; /* byte offset of the buffer in the region */
    uint32_t len;    /* bytes of data in the buffer (FREE queues: usually 0) */
} ring_desc_t;

/* A descriptor slot in shared memory. Written by the producer, copied out
 * exactly once by the consumer (relaxed atomics: no torn or repeated reads). */
typedef struct ring_slot {
    _Atomic uint32_t offset;
    _Atomic uint32_t len;
} ring_slot_t;

/* The shared queue header followed by its slots. */
typedef struct ring_queue {
    _Atomic uint32_t tail; /* written by the producer only */
    uint8_t pad_tail[RING_CACHELINE - sizeof(uint32_t)];
    _Atomic uint32_t head; /* written by the consumer only */
    uint8_t pad_head[RING_CACHELINE - sizeof(uint32_t)];
    _Atomic uint32_t signal_wanted; /* consumer: 1 = "signal me"; producer clears */
    uint8_t pad_signal[RING_CACHELINE - sizeof(uint32_t)];
    ring_slot_t slot[]; /* capacity entries */
} ring_queue_t;

_Static_assert(sizeof(ring_desc_t) == 8, "ring_desc_t layout");
_Static_assert(sizeof(ring_slot_t) == 8, "ring_slot_t layout");
_Static_assert(offsetof(ring_slot_t, offset) == 0, "ring_slot_t layout");
_Static_assert(offsetof(ring_slot_t, len) == 4, "ring_slot_t layout");
_Static_assert(offsetof(ring_queue_t, tail) == 0, "ring_queue_t layout");
_Static_assert(offsetof(ring_queue_t, head) == RING_CACHELINE, "ring_queue_t layout");
_Static_assert(offsetof(ring_queue_t, signal_wanted) == 2 * RING_CACHELINE, "ring_queue_t layout");
_Static_assert(offsetof(ring_queue_t, slot) == 3 * RING_CACHELINE, "ring_queue_t layout");
_Static_assert(sizeof(ring_queue_t) == 3 * RING_CACHELINE, "ring_queue_t layout");

/* Capacity is a power of two in [1, RING_CAPACITY_MAX]. */
static inline bool ring_capacity_ok(uint32_t capacity)
{
    return capacity != 0 && capacity <= RING_CAPACITY_MAX && (capacity & (capacity - 1)) == 0;
}

/* Bytes of shared memory a queue of `capacity` slots needs (0 if the
 * capacity is not valid). Place queues at RING_CACHELINE-aligned offsets. */
static inline size_t ring_queue_bytes(uint32_t capacity)
{
    if (!ring_capacity_ok(capacity))
        return 0;
    return sizeof(ring_queue_t) + (size_t)capacity * sizeof(ring_slot_t);
}

/* Set-up (before producer and consumer attach): both indices = `start`, no
 * signal wanted, slots zeroed. Any start works (indices are free-running);
 * tests start near UINT32_MAX to exercise the wrap. */
ring_err_t ring_queue_init(ring_queue_t *q, uint32_t capacity, uint32_t start);

/* ---- Buffer regions and descriptor validation ------------------------------ */

/* The buffer region the descriptors point into: `size` bytes holding
 * buffers of `buf_size` bytes at offsets that are multiples of `align`
 * (a power of two; 1 = any). Every party has its own trusted copy. */
typedef struct ring_region {
    uint32_t size;
    uint32_t buf_size;
    uint32_t align;
} ring_region_t;

/* RING_OK if the region is well formed: size > 0, 0 < buf_size <= size,
 * align a power of two. */
ring_err_t ring_region_check(const ring_region_t *r);

/* Number of whole buffers in the region (buffer i at offset i * buf_size). */
static inline uint32_t ring_region_nbufs(const ring_region_t *r)
{
    return r->buf_size != 0 ? r->size / r->buf_size : 0;
}

/* Descriptor validation flags. */
#define RING_F_ZERO_LEN_OK 0x1u /* length 0 is allowed (FREE queues) */

/* Validate a descriptor against a (well formed) region. Checks, in this
 * order, each with its own error:
 *   len == 0 unless RING_F_ZERO_LEN_OK   -> RING_EZERO
 *   len > buf_size                       -> RING_ELENGTH
 *   offset + len wraps around 2^32       -> RING_EOVERFLOW
 *   offset % align != 0                  -> RING_EALIGN
 *   offset + buf_size > size             -> RING_EBOUNDS
 * (computed without overflow). A valid descriptor's whole buffer, and so
 * its data [offset, offset + len), lies inside the region. */
ring_err_t ring_desc_check(const ring_region_t *r, ring_desc_t d, uint32_t flags);

/* The buffer a VALIDATED descriptor names, in a mapping of the region. */
static inline void *ring_desc_buf(void *region_base, ring_desc_t d)
{
    return (uint8_t *)region_base + d.offset;
}

/* ---- Producer role ------------------------------------------------------------ */

/* Process-private producer state. Embed it anywhere; touch the fields only
 * through the functions (tests read the counters). */
typedef struct ring_prod {
    ring_queue_t *q;
    uint32_t mask;              /* capacity - 1 */
    uint32_t tail;              /* private truth; published by ring_prod_publish() */
    uint32_t head_seen;         /* last validated head read from the consumer */
    uint32_t signals;           /* times ring_prod_need_signal() said yes */
    uint32_t errors[RING_NERR]; /* per code, indexed by -err (peer faults only) */
} ring_prod_t;

/* Attach as the producer of `q` (capacity from trusted configuration).
 * Takes the current shared tail and head as the starting point. */
ring_err_t ring_prod_attach(ring_prod_t *p, ring_queue_t *q, uint32_t capacity);

/* Free slots (*space), re-reading the consumer's head. RING_EINDEX (and
 * *space = 0) if the consumer published an impossible head. */
ring_err_t ring_prod_space(ring_prod_t *p, uint32_t *space);

/* Append one descriptor; not visible to the consumer until
 * ring_prod_publish(). RING_EFULL (nothing written) if there is no room,
 * RING_EINDEX if the consumer's head is impossible. The producer does not
 * validate its own descriptors: that is the consumer's job. */
ring_err_t ring_prod_enqueue(ring_prod_t *p, ring_desc_t d);

/* Make everything enqueued so far visible (one release store: B1). */
void ring_prod_publish(ring_prod_t *p);

/* After ring_prod_publish(): true if the consumer asked to be signalled
 * (the flag is cleared); the caller then signals it, e.g. mk_signal(). Call
 * it after every publish, or a sleeping consumer may never wake. (B5) */
bool ring_prod_need_signal(ring_prod_t *p);

/* Set-up by the region's owner: enqueue every buffer of the region (offset
 * i * buf_size, len 0) and publish. RING_EFULL if the queue cannot hold them
 * all (capacity < buffers: the configuration breaks the no-overflow rule),
 * RING_EINVAL for a bad region or a buf_size that is not a multiple of align. */
ring_err_t ring_prod_fill(ring_prod_t *p, const ring_region_t *r);

/* Count of peer faults of kind `err` seen by this producer. */
uint32_t ring_prod_errors(const ring_prod_t *p, ring_err_t err);

/* ---- Consumer role ------------------------------------------------------------ */

/* Process-private consumer state. */
typedef struct ring_cons {
    ring_queue_t *q;
    uint32_t mask;              /* capacity - 1 */
    uint32_t head;              /* private truth; published by ring_cons_publish() */
    uint32_t tail_seen;         /* last validated tail read from the producer */
    uint32_t flags;             /* RING_F_* validation flags */
    ring_region_t region;       /* trusted copy, every descriptor is checked against it */
    uint32_t errors[RING_NERR]; /* per code, indexed by -err (peer faults only) */
} ring_cons_t;

/* Attach as the consumer of `q`; every descriptor will be checked against
 * `region` with `flags` (RING_F_*). Takes the current shared head as the
 * starting point. */
ring_err_t ring_cons_attach(ring_cons_t *c, ring_queue_t *q, uint32_t capacity,
                            const ring_region_t *region, uint32_t flags);

/* Published descriptors not yet dequeued (*n), re-reading the producer's
 * tail (B2). RING_EINDEX (and *n = 0) if the tail is impossible. */
ring_err_t ring_cons_avail(ring_cons_t *c, uint32_t *n);

/* Take the next descriptor: copied out of shared memory once, then
 * validated (ring_desc_check). RING_OK: *out is valid and its buffer now
 * belongs to the caller. RING_EEMPTY: nothing published. RING_EINDEX: the
 * producer's tail is impossible; nothing consumed, head unchanged.
 * Descriptor errors (RING_EZERO ... RING_EBOUNDS): the slot is consumed and
 * dropped, *out is untouched. Peer faults are counted (ring_cons_errors).
 * The slot is handed back to the producer at the next ring_cons_publish(). */
ring_err_t ring_cons_dequeue(ring_cons_t *c, ring_desc_t *out);

/* Hand the dequeued slots back to the producer (one release store: B3). */
void ring_cons_publish(ring_cons_t *c);

/* Before sleeping: ask for a signal, then re-check the queue (B6). true:
 * still empty (or the producer's tail is impossible), the caller may sleep
 * until signalled. false: descriptors arrived, the request is withdrawn,
 * dequeue them. */
bool ring_cons_prepare_sleep(ring_cons_t *c);

/* Count of peer faults of kind `err` seen by this consumer. */
uint32_t ring_cons_errors(const ring_cons_t *c, ring_err_t err);

#ifdef __cplusplus
}
#endif
#endif /* FERRY_RING_H */

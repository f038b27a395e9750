/*
 * ferry/bytering.h - single-producer/single-consumer BYTE queues in shared
 * memory: the data path of a socket session (a stream of bytes for TCP,
 * length-prefixed records for UDP; docs/socket-session.md).
 *
 * ==== Ownership invariant ====================================================
 *
 *   field    written by                     read by
 *   tail     producer only (release, BR1)   consumer (acquire, BR2)
 *   head     consumer only (release, BR3)   producer (acquire, BR4)
 *   data[i]  producer, while i is outside   consumer, while i is in
 *            [head, tail) (mod size)        [head, tail)
 *
 * Each party keeps its own index privately (bytering_prod_t.tail,
 * bytering_cons_t.head) and only writes its copy in shared memory; it never
 * reads it back. The peer's index is validated before use: the number of
 * queued bytes, tail - head (mod 2^32), must be <= size; anything else is
 * BYTERING_EINDEX and the queue is treated as empty (consumer) or full
 * (producer): a hostile peer can stall its own session, never make the
 * other party touch memory outside `data`. The size comes from trusted
 * configuration, never from shared memory.
 *
 * ==== Layout (an ABI) ===============================================================
 *
 *   offset   0  tail  (u32, own cache line)
 *   offset  64  head  (u32, own cache line)
 *   offset 128  data[size]   size a power of two
 *
 * Indices are free-running u32 byte counts; position = index & (size - 1).
 *
 * ==== Barriers (ferry/fence.h) =======================================================
 *
 *  BR1 bytering_prod_publish: store-release of tail: the data bytes are
 *      written before the tail that makes them visible; pairs with BR2.
 *  BR2 the consumer reads tail with load-acquire before reading data.
 *  BR3 bytering_cons_publish: store-release of head: data reads are done
 *      before the space is handed back; pairs with BR4.
 *  BR4 the producer reads head with load-acquire before overwriting data.
 * Signalling is not part of the byte ring: the session uses one doorbell
 * bitmap per direction plus a notification (see the design page).
 */
#ifndef FERRY_BYTERING_H
#define FERRY_BYTERING_H

#include <ferry/fence.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef int32_t bytering_err_t;

enum bytering_error {
    BYTERING_OK = 0,
    BYTERING_EINVAL = -1, /* bad argument: NULL, size not a power of two */
    BYTERING_EINDEX = -2, /* the peer published an impossible index */
    BYTERING_ESPACE = -3, /* not enough space (all-or-nothing writes) */
    BYTERING_EDATA = -4,  /* not enough data (all-or-nothing reads) */
};

#define BYTERING_CACHELINE 64u
#define BYTERING_SIZE_MIN 64u
#define BYTERING_SIZE_MAX (1u << 30)

typedef struct bytering {
    _Atomic uint32_t tail;
    uint8_t pad_tail[BYTERING_CACHELINE - sizeof(uint32_t)];
    _Atomic uint32_t head;
    uint8_t pad_head[BYTERING_CACHELINE - sizeof(uint32_t)];
    uint8_t data[];
} bytering_t;

_Static_assert(sizeof(bytering_t) == 2 * BYTERING_CACHELINE, "bytering_t layout");

static inline bool bytering_size_ok(uint32_t size)
{
    return size >= BYTERING_SIZE_MIN && size <= BYTERING_SIZE_MAX && (size & (size - 1)) == 0;
}

/* Shared bytes for a ring of `size` data bytes (0 if the size is invalid). */
static inline size_t bytering_bytes(uint32_t size)
{
    return bytering_size_ok(size) ? sizeof(bytering_t) + size : 0;
}

/* Set-up, before either party attaches: both indices = start. */
bytering_err_t bytering_init(bytering_t *r, uint32_t size, uint32_t start);

/* Producer (process-private state). */
typedef struct bytering_prod {
    bytering_t *r;
    uint32_t size;
    uint32_t tail;   /* private truth; published by bytering_prod_publish */
    uint32_t errors; /* impossible heads seen */
} bytering_prod_t;

bytering_err_t bytering_prod_attach(bytering_prod_t *p, bytering_t *r, uint32_t size);
/* Free bytes now (re-reads the consumer's head; BR4). */
bytering_err_t bytering_prod_space(bytering_prod_t *p, uint32_t *space);
/* Copy up to len bytes in (as many as fit); *done = bytes copied. Not
 * visible until bytering_prod_publish. */
bytering_err_t bytering_prod_write(bytering_prod_t *p, const void *buf, uint32_t len, uint32_t *done);
/* Copy all len bytes in, or nothing (BYTERING_ESPACE): for records. */
bytering_err_t bytering_prod_write_all(bytering_prod_t *p, const void *buf, uint32_t len);
void bytering_prod_publish(bytering_prod_t *p);

/* Consumer (process-private state). */
typedef struct bytering_cons {
    bytering_t *r;
    uint32_t size;
    uint32_t head;   /* private truth; published by bytering_cons_publish */
    uint32_t errors; /* impossible tails seen */
} bytering_cons_t;

bytering_err_t bytering_cons_attach(bytering_cons_t *c, bytering_t *r, uint32_t size);
/* Bytes ready now (re-reads the producer's tail; BR2). */
bytering_err_t bytering_cons_avail(bytering_cons_t *c, uint32_t *avail);
/* Copy up to len bytes out and consume them; *done = bytes copied. */
bytering_err_t bytering_cons_read(bytering_cons_t *c, void *buf, uint32_t len, uint32_t *done);
/* Copy len bytes starting `off` bytes past the head without consuming, all
 * or nothing (BYTERING_EDATA): to look at a record header first. */
bytering_err_t bytering_cons_peek(bytering_cons_t *c, uint32_t off, void *buf, uint32_t len);
/* Zero-copy read: the contiguous run of ready bytes that starts `off`
 * bytes past the head and ends at the earlier of the tail and the end of
 * the data area. *ptr points into the shared data area and *len (0 if no
 * byte is ready there) says how far; the bytes stay the consumer's until
 * consumed (bytering_cons_skip + publish), so the producer cannot overwrite
 * them meanwhile. BYTERING_EDATA if off is past the ready bytes. */
bytering_err_t bytering_cons_span(bytering_cons_t *c, uint32_t off, const void **ptr, uint32_t *len);
/* Consume n bytes without copying them, all or nothing. */
bytering_err_t bytering_cons_skip(bytering_cons_t *c, uint32_t n);
void bytering_cons_publish(bytering_cons_t *c);

#endif /* FERRY_BYTERING_H */

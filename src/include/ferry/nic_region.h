/*
 * ferry/nic_region.h - the shared region of a NIC session (an ABI).
 *
 * The client (the network stack) creates one shared memory object, lays it
 * out with nic_layout(), writes the header, initialises the four queues
 * (ring_queue_init) and puts every RX buffer on rx_free (ring_prod_fill),
 * then passes the region to the driver in nic.open (src/interfaces/nic.idl).
 *
 *   offset            contents
 *   0                 nic_region_hdr_t (one cache line)
 *   l.rx_free         queue: RX buffers lent to the driver    (client -> driver)
 *   l.rx_active       queue: RX buffers holding a frame       (driver -> client)
 *   l.tx_active       queue: TX buffers holding a frame       (client -> driver)
 *   l.tx_free         queue: TX buffers the driver is done with (driver -> client)
 *   l.rx_data         nbufs RX buffers of buf_size bytes
 *   l.tx_data         nbufs TX buffers of buf_size bytes
 *
 * Queue roles (ferry/ring.h): the client produces rx_free and tx_active and
 * consumes rx_active and tx_free; the driver the other way round. RX
 * descriptors carry offsets into the RX data area, TX descriptors into the
 * TX data area; `len` is the frame length (one whole Ethernet frame per
 * buffer, starting at the buffer's first byte; 0 on the free queues).
 * Every consumer validates every descriptor against its own trusted
 * nic_data_region(): the peer may be hostile.
 *
 * Signals: after publishing, a producer calls ring_prod_need_signal() and,
 * if true, signals the peer's notification (the driver's capability comes
 * back from nic.open, the client's goes in).
 *
 * Capacity: each queue has nbufs slots and each direction has nbufs
 * buffers, so an honest party never finds a queue full (ferry/ring.h).
 */
#ifndef FERRY_NIC_REGION_H
#define FERRY_NIC_REGION_H

#include <ferry/ring.h>
#include <stddef.h>
#include <stdint.h>

#define NIC_REGION_MAGIC 0x3143494eu /* "NIC1" little-endian */
#define NIC_REGION_VERSION 1u

#define NIC_REGION_BUFS_MIN 2u
#define NIC_REGION_BUFS_MAX 4096u  /* = nic.idl BUFS_MAX */
#define NIC_REGION_BUF_MIN 1536u   /* room for a 1514-byte frame */
#define NIC_REGION_BUF_MAX 65536u
#define NIC_REGION_ALIGN 64u       /* buffers start on cache lines */

/* nic.info.features bits. */
#define NIC_FEATURE_NONE 0u

/* The header, written by the client before nic.open; informational for the
 * driver, which trusts only the geometry passed in the call. */
typedef struct nic_region_hdr {
    uint32_t magic;
    uint32_t version;
    uint32_t nbufs;
    uint32_t buf_size;
    uint8_t pad[RING_CACHELINE - 16];
} nic_region_hdr_t;

_Static_assert(sizeof(nic_region_hdr_t) == RING_CACHELINE, "nic_region_hdr_t layout");

/* Byte offsets of everything in the region, for one geometry. */
typedef struct nic_layout {
    uint32_t nbufs;
    uint32_t buf_size;
    size_t rx_free, rx_active, tx_active, tx_free; /* queues */
    size_t rx_data, tx_data;                       /* buffer areas */
    size_t size;                                   /* bytes in all */
} nic_layout_t;

static inline size_t nic_align_up(size_t v, size_t a)
{
    return (v + a - 1) & ~(a - 1);
}

/* Compute the layout for nbufs buffers of buf_size bytes per direction.
 * Returns 0, or -1 for a geometry outside the rules: nbufs a power of two
 * in [NIC_REGION_BUFS_MIN, NIC_REGION_BUFS_MAX], buf_size a multiple of
 * NIC_REGION_ALIGN in [NIC_REGION_BUF_MIN, NIC_REGION_BUF_MAX]. */
static inline int nic_layout(uint32_t nbufs, uint32_t buf_size, nic_layout_t *l)
{
    if (nbufs < NIC_REGION_BUFS_MIN || nbufs > NIC_REGION_BUFS_MAX || (nbufs & (nbufs - 1)) != 0 ||
        buf_size < NIC_REGION_BUF_MIN || buf_size > NIC_REGION_BUF_MAX || buf_size % NIC_REGION_ALIGN != 0)
        return -1;
    size_t q = nic_align_up(ring_queue_bytes(nbufs), RING_CACHELINE);
    size_t data = (size_t)nbufs * buf_size;
    l->nbufs = nbufs;
    l->buf_size = buf_size;
    l->rx_free = sizeof(nic_region_hdr_t);
    l->rx_active = l->rx_free + q;
    l->tx_active = l->rx_active + q;
    l->tx_free = l->tx_active + q;
    l->rx_data = nic_align_up(l->tx_free + q, 4096);
    l->tx_data = l->rx_data + data;
    l->size = l->tx_data + data;
    return 0;
}

/* The data area of one direction, as the ring validation sees it. */
static inline ring_region_t nic_data_region(const nic_layout_t *l)
{
    ring_region_t r = {.size = l->nbufs * l->buf_size, .buf_size = l->buf_size, .align = NIC_REGION_ALIGN};
    return r;
}

static inline ring_queue_t *nic_queue(void *base, size_t off)
{
    return (ring_queue_t *)((uint8_t *)base + off);
}

#endif /* FERRY_NIC_REGION_H */

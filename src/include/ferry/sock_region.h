/*
 * ferry/sock_region.h - the shared region of a socket session (an ABI).
 *
 * The client library creates the region, lays it out with sock_layout(),
 * writes the header, initialises every byte ring (bytering_init) and hands
 * it to netsrv in sock.session_open (src/interfaces/sock.idl). Design and
 * protocol: docs/socket-session.md.
 *
 *   offset          contents                        written by
 *   0               sock_region_hdr_t               client (before open)
 *   l.doorbell      bitmap, 1 bit per socket        client sets, netsrv takes
 *   l.srv_wanted    u32 "signal netsrv"             netsrv sets, client clears
 *   l.ready         bitmap, 1 bit per socket        netsrv sets, client takes
 *   l.cli_wanted    u32 "signal the client"         client sets, netsrv clears
 *   l.slots         sock_slot_t[max_sockets]        netsrv
 *   l.rings         per socket: RX ring, TX ring    RX: netsrv produces;
 *                                                   TX: client produces
 *
 * Doorbell (client -> netsrv): after publishing TX bytes, or consuming RX
 * bytes (which lets netsrv open the TCP window), the client sets the
 * socket's doorbell bit, then sock_need_signal(srv_wanted) tells it whether
 * to signal netsrv's notification. Ready (netsrv -> client) is the mirror
 * image for state changes of a socket (its slot's `events`). A bit only
 * says "look at this socket"; the truth is in the slot and the rings.
 *
 * Barriers (ferry/fence.h):
 *  SB1 sock_bit_set: the bit is set (relaxed RMW) after the ring publish
 *      (a release store), and is followed by the full fence of
 *      sock_need_signal before `wanted` is read; pairs with SB2.
 *  SB2 sock_prepare_sleep: full fence between the store of wanted = 1 and
 *      the re-scan of the bitmap. SB1 + SB2: either the sleeper sees the
 *      bit, or the setter sees `wanted` and signals (as ring.h B5/B6).
 *  SB3 sock_bits_take: the exchange is an acquire RMW, so what the setter
 *      published before setting the bit is visible to the taker.
 */
#ifndef FERRY_SOCK_REGION_H
#define FERRY_SOCK_REGION_H

#include <ferry/bytering.h>
#include <ferry/fence.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SOCK_REGION_MAGIC 0x314b4353u /* "SCK1" little-endian */
#define SOCK_REGION_VERSION 1u
#define SOCK_REGION_SOCKETS_MAX 4096u /* = sock.idl SOCKETS_MAX */
#define SOCK_REGION_CACHELINE 64u

/* sock_slot_t.events: level state, poll(2) bit values. Bytes in the RX
 * ring and space in the TX ring are not events: the rings themselves say
 * so (a reader polls both). netsrv stores events after the ring publishes
 * they follow, so a reader that sees RDHUP or HUP finds every byte before
 * the EOF already in the RX ring. */
#define SOCK_EV_IN 0x001u    /* readable besides ring data: a connection to accept, EOF */
#define SOCK_EV_OUT 0x004u   /* may send: connected (TCP, not shut for writing), always (UDP) */
#define SOCK_EV_ERR 0x008u   /* `error` holds a pending error (SO_ERROR) */
#define SOCK_EV_HUP 0x010u   /* both directions closed, or the connection is gone */
#define SOCK_EV_RDHUP 0x2000u /* the peer closed its sending side (every byte is in the ring) */

/* A datagram in a UDP socket's byte ring (either direction): this header,
 * then `len` payload bytes, then zero padding to a multiple of
 * SOCK_DGRAM_ALIGN. A producer publishes a record whole (header, payload
 * and padding in one publish), so a consumer never sees part of one.
 * TX (client -> netsrv): family 0 = the connected peer; otherwise the
 * destination. RX: the source. `port` in host order; IPv4 addresses in
 * addr[0..3], IPv6 in addr[0..15], network byte order; a dual-stack IPv6
 * socket sees IPv4 peers as ::ffff:a.b.c.d. */
typedef struct sock_dgram_hdr {
    uint16_t len;    /* payload bytes */
    uint16_t family; /* 0, 2 (AF_INET) or 10 (AF_INET6) */
    uint16_t port;
    uint16_t pad;
    uint8_t addr[16];
} sock_dgram_hdr_t;

#define SOCK_DGRAM_ALIGN 8u

_Static_assert(sizeof(sock_dgram_hdr_t) == 24, "sock_dgram_hdr_t layout");

/* Bytes a datagram of `len` payload bytes takes in a ring. */
static inline uint32_t sock_dgram_size(uint32_t len)
{
    return (uint32_t)((sizeof(sock_dgram_hdr_t) + len + SOCK_DGRAM_ALIGN - 1) &
                      ~(size_t)(SOCK_DGRAM_ALIGN - 1));
}

typedef struct sock_region_hdr {
    uint32_t magic;
    uint32_t version;
    uint32_t max_sockets;
    uint32_t ring_size;
    uint8_t pad[SOCK_REGION_CACHELINE - 16];
} sock_region_hdr_t;

/* One socket's state, written by netsrv only. */
typedef struct sock_slot {
    _Atomic uint32_t events; /* SOCK_EV_* */
    _Atomic uint32_t error;  /* pending SO_ERROR (errno value), 0 = none */
    _Atomic uint32_t open;   /* 1 while the socket exists (netsrv's view) */
    uint8_t pad[SOCK_REGION_CACHELINE - 12];
} sock_slot_t;

_Static_assert(sizeof(sock_region_hdr_t) == SOCK_REGION_CACHELINE, "sock_region_hdr_t layout");
_Static_assert(sizeof(sock_slot_t) == SOCK_REGION_CACHELINE, "sock_slot_t layout");

typedef struct sock_layout {
    uint32_t max_sockets;
    uint32_t ring_size;  /* data bytes of each byte ring */
    uint32_t map_words;  /* 64-bit words per bitmap */
    size_t doorbell, srv_wanted, ready, cli_wanted, slots, rings;
    size_t ring_stride;  /* bytes per socket in the ring area (RX + TX) */
    size_t size;         /* bytes in all */
} sock_layout_t;

static inline size_t sock_align_up(size_t v, size_t a)
{
    return (v + a - 1) & ~(a - 1);
}

/* Layout for max_sockets (1..SOCK_REGION_SOCKETS_MAX) sockets with byte
 * rings of ring_size bytes (bytering_size_ok). 0, or -1 if out of range. */
static inline int sock_layout(uint32_t max_sockets, uint32_t ring_size, sock_layout_t *l)
{
    if (max_sockets == 0 || max_sockets > SOCK_REGION_SOCKETS_MAX || !bytering_size_ok(ring_size))
        return -1;
    size_t map = sock_align_up(((size_t)max_sockets + 63) / 64 * 8, SOCK_REGION_CACHELINE);
    l->max_sockets = max_sockets;
    l->ring_size = ring_size;
    l->map_words = (max_sockets + 63) / 64;
    l->doorbell = sizeof(sock_region_hdr_t);
    l->srv_wanted = l->doorbell + map;
    l->ready = l->srv_wanted + SOCK_REGION_CACHELINE;
    l->cli_wanted = l->ready + map;
    l->slots = l->cli_wanted + SOCK_REGION_CACHELINE;
    l->rings = sock_align_up(l->slots + (size_t)max_sockets * sizeof(sock_slot_t), 4096);
    l->ring_stride = 2 * sock_align_up(bytering_bytes(ring_size), SOCK_REGION_CACHELINE);
    l->size = l->rings + (size_t)max_sockets * l->ring_stride;
    return 0;
}

static inline _Atomic uint64_t *sock_map(void *base, size_t off)
{
    return (_Atomic uint64_t *)((uint8_t *)base + off);
}

static inline _Atomic uint32_t *sock_wanted(void *base, size_t off)
{
    return (_Atomic uint32_t *)((uint8_t *)base + off);
}

static inline sock_slot_t *sock_slot(void *base, const sock_layout_t *l, uint32_t i)
{
    return (sock_slot_t *)((uint8_t *)base + l->slots) + i;
}

/* Socket i's receive ring (netsrv -> client) and send ring (client -> netsrv). */
static inline bytering_t *sock_rx_ring(void *base, const sock_layout_t *l, uint32_t i)
{
    return (bytering_t *)((uint8_t *)base + l->rings + (size_t)i * l->ring_stride);
}

static inline bytering_t *sock_tx_ring(void *base, const sock_layout_t *l, uint32_t i)
{
    return (bytering_t *)((uint8_t *)base + l->rings + (size_t)i * l->ring_stride + l->ring_stride / 2);
}

/* Set bit i (i < max_sockets, checked by the caller). SB1. */
static inline void sock_bit_set(_Atomic uint64_t *map, uint32_t i)
{
    atomic_fetch_or_explicit(&map[i / 64], 1ull << (i % 64), memory_order_relaxed);
}

/* Take and clear one word of bits. SB3: acquire pairs with the release
 * publishes the setter made before setting the bits. */
static inline uint64_t sock_bits_take(_Atomic uint64_t *map, uint32_t word)
{
    return atomic_exchange_explicit(&map[word], 0, memory_order_acquire);
}

/* After setting bits: does the peer want a signal? (clears the request) */
static inline bool sock_need_signal(_Atomic uint32_t *wanted)
{
    /* SB1: full fence between the bit set and the read of `wanted`;
     * pairs with SB2 in the sleeper. */
    fence_full();
    if (fence_load_relaxed_u32(wanted) == 0)
        return false;
    return atomic_exchange_explicit(wanted, 0, memory_order_relaxed) != 0;
}

/* Before sleeping: ask for a signal, then re-check the bitmap. true: still
 * nothing, sleep until signalled; false: bits arrived, request withdrawn. */
static inline bool sock_prepare_sleep(_Atomic uint32_t *wanted, _Atomic uint64_t *map, uint32_t words)
{
    fence_store_relaxed_u32(wanted, 1);
    /* SB2: full fence between the store of `wanted` and the re-scan;
     * pairs with SB1. */
    fence_full();
    for (uint32_t w = 0; w < words; w++) {
        if (atomic_load_explicit(&map[w], memory_order_relaxed) != 0) {
            fence_store_relaxed_u32(wanted, 0);
            return false;
        }
    }
    return true;
}

#endif /* FERRY_SOCK_REGION_H */

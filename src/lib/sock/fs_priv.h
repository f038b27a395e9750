/*
 * fs_priv.h - libferrysock's private state, shared by its files:
 *   ferrysock.c  errors, the session, addresses, control calls, options
 *   data.c       send and receive (rings, iovecs, flags, timeouts)
 *   ready.c      ready bits, waiting, fs_poll, epoll
 *
 * Single-threaded by construction: every thread has its own fs_state_t
 * (fs_S, thread-local) and only that thread touches it or its sockets.
 */
#ifndef FERRY_LIB_SOCK_FS_PRIV_H
#define FERRY_LIB_SOCK_FS_PRIV_H

#include <errno.h>
#include <ferry/idl.h>
#include <ferry/mk.h>
#include <ferry/sock_region.h>
#include <ferry/socket.h>
#include <sock_client.h>
#include <stdbool.h>
#include <stdint.h>

#define FS_CALL_TIMEOUT MK_FOREVER
#define FS_EPOLL_MAX 32u /* epoll instances per session */

typedef struct fs_epitem fs_epitem_t;
typedef struct fs_epoll fs_epoll_t;

typedef struct fs_sock {
    uint8_t used;
    uint8_t type; /* FS_SOCK_STREAM / FS_SOCK_DGRAM */
    uint8_t nonblock;
    uint8_t connecting; /* TCP: a non-blocking connect is under way */
    uint8_t connected;  /* TCP: established (by connect or accept); UDP: has a default peer */
    uint8_t listening;
    uint8_t wr_shut; /* shutdown(SHUT_WR) done: sends fail with EPIPE */
    uint8_t linger_wait; /* SO_LINGER on with l_linger > 0: close() waits for netsrv's reply */
    uint16_t family;
    uint64_t rcvtimeo_ns, sndtimeo_ns; /* SO_RCVTIMEO / SO_SNDTIMEO; 0 = wait forever */
    bytering_prod_t tx;
    bytering_cons_t rx;
    fs_epitem_t *watchers; /* epoll items on this socket (one per instance), linked by sock_next */
} fs_sock_t;

typedef struct fs_state {
    int state; /* 0 closed, 1 open, -1 failed */
    char cap_name[32];
    uint32_t max_sockets, ring_size;
    mk_cap_t ep, ntfn, client_signal, server_signal, region;
    uint32_t session;
    uint8_t *base;
    size_t size;
    sock_layout_t l;
    fs_sock_t *socks; /* [max_sockets] */
    /* Readiness (ready.c). Bits taken from the region's ready bitmap are
     * never dropped: each flagged socket's epoll items join their
     * instances' ready lists, and `changed` keeps the bits for fs_poll. */
    uint64_t *changed;   /* [l.map_words]: sockets flagged since fs_poll last looked */
    fs_epoll_t **epolls; /* [FS_EPOLL_MAX]; descriptor = max_sockets + index */
    uint32_t *poll_head; /* [max_sockets]: fs_poll's first entry per socket, or FS_NONE */
    uint32_t *poll_next; /* [poll_cap]: the next entry with the same socket */
    size_t poll_cap;
    struct fs_session_stats st;
} fs_state_t;

#define FS_NONE UINT32_MAX

extern _Thread_local fs_state_t *fs_S;

/* ferrysock.c */
int fs_fail(int e);
int fs_status_fail(int32_t st);
int fs_local_errno(uint32_t linux_no);
fs_state_t *fs_session(void);
fs_sock_t *fs_sock_of(int fd); /* the calling thread's socket fd, or NULL (errno EBADF/ENOTSOCK) */
void fs_addr_out(const sock_addr_t *a, struct fs_sockaddr *addr, fs_socklen_t *len);
int fs_addr_in(const struct fs_sockaddr *sa, fs_socklen_t len, sock_addr_t *a);
void fs_hdr_to_addr(const sock_dgram_hdr_t *h, sock_addr_t *a);
void fs_addr_to_hdr(const sock_addr_t *a, sock_dgram_hdr_t *h);

static inline sock_slot_t *fs_slot_of(int fd)
{
    return sock_slot(fs_S->base, &fs_S->l, (uint32_t)fd);
}

/* A socket's level state (SOCK_EV_*); acquire: the ring bytes published
 * before it are visible. */
static inline uint32_t fs_events_of(int fd)
{
    return atomic_load_explicit(&fs_slot_of(fd)->events, memory_order_acquire);
}

/* A connecting TCP socket becomes connected when netsrv shows it writable. */
static inline void fs_note_connected(fs_sock_t *s, uint32_t events)
{
    if (s->connecting && (events & SOCK_EV_OUT)) {
        s->connecting = 0;
        s->connected = (events & (SOCK_EV_ERR | SOCK_EV_HUP)) == 0;
    }
}

/* The socket's pending error (taken through getsockopt), or 0. */
int fs_take_error(int fd);

/* ready.c */
/* Tell netsrv that socket fd has work (TX data, or RX space). */
void fs_ring_doorbell(int fd);
/* Wait until netsrv flags some socket, or the deadline (MK_FOREVER: none);
 * the bits taken go to epoll and fs_poll (never dropped). 0, ETIMEDOUT, or
 * ENETDOWN when netsrv (or this task) is gone. */
int fs_wait_ready(uint64_t deadline);
/* Readiness as poll bits (FS_POLLIN/OUT/ERR/HUP/RDHUP), unfiltered. */
uint32_t fs_readiness(int fd, fs_sock_t *s);
/* Session state of ready.c: allocate (at open) and free (at close). */
int fs_ready_init(fs_state_t *s);
void fs_ready_free(fs_state_t *s);
/* fd is an epoll descriptor of this thread. */
bool fs_is_epoll(int fd);
/* Close epoll descriptor fd (0), or -1 with errno. */
int fs_epoll_close(int fd);
/* Socket fd is going away: drop it from every epoll set. */
void fs_epoll_forget(int fd);

/* A deadline `ns` from now (0: none, MK_FOREVER). */
static inline uint64_t fs_deadline(uint64_t ns)
{
    return ns == 0 ? MK_FOREVER : mk_time_ns() + ns;
}

#endif /* FERRY_LIB_SOCK_FS_PRIV_H */

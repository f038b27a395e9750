/*
 * ferrysock.c - libferrysock: POSIX-like sockets (ferry/socket.h) on
 * netsrv's socket service (sock.idl + ferry/sock_region.h). Protocol:
 * docs/socket-session.md.
 *
 * One session per thread, opened on first use: the region (created here),
 * a notification of this thread's own, netsrv's signal capability. Control
 * calls go through the generated stubs; data only through the byte rings:
 *  - TCP: a byte stream each way.
 *  - UDP: records (sock_dgram_hdr_t, payload, padding to 8) each way.
 * After publishing into a TX ring (or freeing space in an RX ring) the
 * library sets the socket's doorbell bit and signals netsrv only if it asked
 * (sock_need_signal). Blocking waits use the ready bitmap handshake
 * (sock_prepare_sleep) and mk_wait on the notification.
 *
 * State is per thread (a thread-local pointer to heap state): in the
 * simulator the tasks of one process share an address space, and each of
 * their threads gets its own session; a socket belongs to the thread that
 * made it. Portable (no Linux headers: errno values are translated from the
 * wire's Linux numbers to the local C library's).
 */
#include <errno.h>
#include <ferry/idl.h>
#include <ferry/mk.h>
#include <ferry/sock_region.h>
#include <ferry/socket.h>
#include <sock_client.h>
#include <stdlib.h>
#include <string.h>

typedef struct fs_sock {
    uint8_t used;
    uint8_t type; /* FS_SOCK_STREAM / FS_SOCK_DGRAM */
    uint8_t nonblock;
    uint8_t connecting; /* TCP: a non-blocking connect is under way */
    uint8_t connected;  /* TCP: established (by connect or accept); UDP: has a default peer */
    uint8_t listening;
    uint8_t wr_shut; /* shutdown(SHUT_WR) done: sends fail with EPIPE */
    uint16_t family;
    bytering_prod_t tx;
    bytering_cons_t rx;
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
} fs_state_t;

static _Thread_local fs_state_t *S;

#define CALL_TIMEOUT MK_FOREVER

/* ---- Errors -------------------------------------------------------------------- */

/* Linux errno numbers (the wire) to this C library's values. */
static int local_errno(uint32_t linux_no)
{
    switch (linux_no) {
    case 1: return EPERM;
    case 4: return EINTR;
    case 9: return EBADF;
    case 11: return EAGAIN;
    case 12: return ENOMEM;
    case 13: return EACCES;
    case 22: return EINVAL;
    case 24: return EMFILE;
    case 32: return EPIPE;
    case 89: return EDESTADDRREQ;
    case 90: return EMSGSIZE;
    case 91: return EPROTOTYPE;
    case 92: return ENOPROTOOPT;
    case 93: return EPROTONOSUPPORT;
    case 95: return EOPNOTSUPP;
    case 97: return EAFNOSUPPORT;
    case 98: return EADDRINUSE;
    case 99: return EADDRNOTAVAIL;
    case 101: return ENETUNREACH;
    case 103: return ECONNABORTED;
    case 104: return ECONNRESET;
    case 105: return ENOBUFS;
    case 106: return EISCONN;
    case 107: return ENOTCONN;
    case 110: return ETIMEDOUT;
    case 111: return ECONNREFUSED;
    case 113: return EHOSTUNREACH;
    case 114: return EALREADY;
    case 115: return EINPROGRESS;
    case 116: return ESTALE;
    default: return EIO;
    }
}

static int fail(int e)
{
    errno = e;
    return -1;
}

/* A stub's status: 0, a declared error (errno), or a protocol/kernel
 * failure (EIO; netsrv is gone: ENETDOWN). */
static int status_fail(int32_t st)
{
    if (st >= 0)
        return 0;
    if (st <= -IDL_EUSER)
        return fail(local_errno(idl_error_number(st)));
    return fail(st == MK_EDEAD ? ENETDOWN : EIO);
}

/* ---- Session --------------------------------------------------------------------- */

static fs_state_t *state(void)
{
    if (S == NULL) {
        S = calloc(1, sizeof *S);
        if (S == NULL)
            return NULL;
        strcpy(S->cap_name, "netsrv");
        S->max_sockets = 64;
        S->ring_size = 65536;
    }
    return S;
}

int fs_session_configure(const char *cap_name, uint32_t max_sockets, uint32_t ring_size)
{
    sock_layout_t l;
    fs_state_t *s = state();
    if (s == NULL)
        return fail(ENOMEM);
    if (s->state != 0 || cap_name == NULL || strlen(cap_name) >= sizeof s->cap_name ||
        sock_layout(max_sockets, ring_size, &l) != 0)
        return fail(EINVAL);
    strcpy(s->cap_name, cap_name);
    s->max_sockets = max_sockets;
    s->ring_size = ring_size;
    return 0;
}

static void session_undo(fs_state_t *s)
{
    if (s->base)
        mk_shm_unmap(s->base, s->size);
    if (s->region)
        mk_cap_delete(s->region);
    if (s->client_signal)
        mk_cap_delete(s->client_signal);
    if (s->ntfn)
        mk_cap_delete(s->ntfn);
    free(s->socks);
    s->socks = NULL;
    s->base = NULL;
    s->region = s->client_signal = s->ntfn = MK_CAP_NULL;
}

/* Lay the region out as sock_region.h says: header, every ring at 0. */
static void region_init(fs_state_t *s)
{
    sock_region_hdr_t *h = (sock_region_hdr_t *)s->base;
    h->magic = SOCK_REGION_MAGIC;
    h->version = SOCK_REGION_VERSION;
    h->max_sockets = s->max_sockets;
    h->ring_size = s->ring_size;
    for (uint32_t i = 0; i < s->max_sockets; i++) {
        bytering_init(sock_rx_ring(s->base, &s->l, i), s->ring_size, 0);
        bytering_init(sock_tx_ring(s->base, &s->l, i), s->ring_size, 0);
    }
}

static fs_state_t *session(void)
{
    fs_state_t *s = state();
    if (s == NULL) {
        errno = ENOMEM;
        return NULL;
    }
    if (s->state == 1)
        return s;
    if (s->state < 0) {
        errno = ENETDOWN;
        return NULL;
    }
    s->state = -1;
    void *base;
    if (mk_cap_lookup(s->cap_name, &s->ep) != MK_OK ||
        sock_layout(s->max_sockets, s->ring_size, &s->l) != 0) {
        errno = ENETDOWN;
        return NULL;
    }
    s->socks = calloc(s->max_sockets, sizeof *s->socks);
    if (s->socks == NULL || mk_shm_create(s->l.size, &s->region) != MK_OK ||
        mk_shm_map(s->region, MK_RIGHT_READ | MK_RIGHT_WRITE, &base, &s->size) != MK_OK) {
        session_undo(s);
        errno = ENOMEM;
        return NULL;
    }
    s->base = base;
    region_init(s);
    if (mk_ntfn_create(&s->ntfn) != MK_OK ||
        mk_cap_mint(s->ntfn, MK_RIGHT_SEND | MK_RIGHT_GRANT, 1, &s->client_signal) != MK_OK) {
        session_undo(s);
        errno = ENOMEM;
        return NULL;
    }
    int32_t st = sock_session_open(s->ep, CALL_TIMEOUT, s->region, s->client_signal,
                                   s->max_sockets, s->ring_size, &s->server_signal, &s->session);
    if (st != 0) {
        session_undo(s);
        status_fail(st);
        return NULL;
    }
    s->state = 1;
    return s;
}

int fs_session_close(void)
{
    fs_state_t *s = S;
    if (s == NULL)
        return 0;
    int rc = 0;
    if (s->state == 1) {
        int32_t st = sock_session_close(s->ep, CALL_TIMEOUT, s->session);
        if (st != 0)
            rc = status_fail(st);
        if (s->server_signal)
            mk_cap_delete(s->server_signal);
    }
    session_undo(s);
    free(s);
    S = NULL;
    return rc;
}

static fs_sock_t *sock_of(int fd)
{
    fs_state_t *s = S;
    if (s == NULL || s->state != 1 || fd < 0 || (uint32_t)fd >= s->max_sockets ||
        !s->socks[fd].used) {
        errno = EBADF;
        return NULL;
    }
    return &s->socks[fd];
}

static sock_slot_t *slot_of(int fd)
{
    return sock_slot(S->base, &S->l, (uint32_t)fd);
}

static uint32_t events_of(int fd)
{
    return atomic_load_explicit(&slot_of(fd)->events, memory_order_acquire);
}

/* Tell netsrv that socket fd has work (TX data, or RX space). */
static void ring_doorbell(int fd)
{
    sock_bit_set(sock_map(S->base, S->l.doorbell), (uint32_t)fd);
    if (sock_need_signal(sock_wanted(S->base, S->l.srv_wanted)))
        mk_signal(S->server_signal);
}

/* Wait until netsrv flags some socket, or the deadline (MK_FOREVER: none).
 * Returns 0, ETIMEDOUT, or ENETDOWN when netsrv (or this task) is gone. */
static int wait_ready(uint64_t deadline)
{
    _Atomic uint64_t *ready = sock_map(S->base, S->l.ready);
    if (sock_prepare_sleep(sock_wanted(S->base, S->l.cli_wanted), ready, S->l.map_words)) {
        uint64_t now = mk_time_ns();
        if (deadline != MK_FOREVER && now >= deadline)
            return ETIMEDOUT;
        mk_word_t bits;
        mk_err_t e = mk_wait(S->ntfn, &bits, deadline == MK_FOREVER ? MK_FOREVER : deadline - now);
        if (e == MK_ETIMEDOUT)
            return ETIMEDOUT;
        if (e != MK_OK)
            return ENETDOWN;
    }
    /* The bits only say "look again": callers re-read slots and rings. */
    for (uint32_t w = 0; w < S->l.map_words; w++)
        (void)sock_bits_take(ready, w);
    return 0;
}

/* Block until something changes; -1 with errno if that cannot happen. */
static int block(void)
{
    int e = wait_ready(MK_FOREVER);
    return e ? fail(e) : 0;
}

/* ---- Addresses -------------------------------------------------------------------- */

static int addr_in(const struct fs_sockaddr *sa, fs_socklen_t len, sock_addr_t *a)
{
    if (sa == NULL)
        return fail(EFAULT);
    memset(a, 0, sizeof *a);
    if (len < sizeof(fs_sa_family_t))
        return fail(EINVAL);
    if (sa->sa_family == FS_AF_INET) {
        struct fs_sockaddr_in in;
        if (len < sizeof in)
            return fail(EINVAL);
        memcpy(&in, sa, sizeof in);
        a->family = FS_AF_INET;
        a->port = fs_ntohs(in.sin_port);
        a->lo = fs_ntohl(in.sin_addr.s_addr);
        return 0;
    }
    if (sa->sa_family == FS_AF_INET6) {
        struct fs_sockaddr_in6 in6;
        if (len < sizeof in6)
            return fail(EINVAL);
        memcpy(&in6, sa, sizeof in6);
        a->family = FS_AF_INET6;
        a->port = fs_ntohs(in6.sin6_port);
        a->scope = in6.sin6_scope_id;
        for (int i = 0; i < 8; i++) {
            a->hi = (a->hi << 8) | in6.sin6_addr.s6_addr[i];
            a->lo = (a->lo << 8) | in6.sin6_addr.s6_addr[8 + i];
        }
        return 0;
    }
    if (sa->sa_family == 0) { /* AF_UNSPEC: UDP connect dissolves the association */
        a->family = 0;
        return 0;
    }
    return fail(EAFNOSUPPORT);
}

/* Write a into (addr, *len) as accept/getsockname do: truncated to *len,
 * *len set to the full size. */
static void addr_out(const sock_addr_t *a, struct fs_sockaddr *addr, fs_socklen_t *len)
{
    if (addr == NULL || len == NULL)
        return;
    struct fs_sockaddr_in6 full;
    memset(&full, 0, sizeof full);
    fs_socklen_t size;
    if (a->family == FS_AF_INET) {
        struct fs_sockaddr_in in;
        memset(&in, 0, sizeof in);
        in.sin_family = FS_AF_INET;
        in.sin_port = fs_htons(a->port);
        in.sin_addr.s_addr = fs_htonl((uint32_t)a->lo);
        memcpy(&full, &in, sizeof in);
        size = sizeof in;
    } else {
        full.sin6_family = FS_AF_INET6;
        full.sin6_port = fs_htons(a->port);
        full.sin6_scope_id = a->scope;
        for (int i = 0; i < 8; i++) {
            full.sin6_addr.s6_addr[i] = (uint8_t)(a->hi >> (56 - 8 * i));
            full.sin6_addr.s6_addr[8 + i] = (uint8_t)(a->lo >> (56 - 8 * i));
        }
        size = sizeof full;
    }
    memcpy(addr, &full, *len < size ? *len : size);
    *len = size;
}

static void hdr_to_addr(const sock_dgram_hdr_t *h, sock_addr_t *a)
{
    memset(a, 0, sizeof *a);
    a->family = h->family;
    a->port = h->port;
    if (h->family == FS_AF_INET) {
        for (int i = 0; i < 4; i++)
            a->lo = (a->lo << 8) | h->addr[i];
        return;
    }
    for (int i = 0; i < 8; i++) {
        a->hi = (a->hi << 8) | h->addr[i];
        a->lo = (a->lo << 8) | h->addr[8 + i];
    }
}

static void addr_to_hdr(const sock_addr_t *a, sock_dgram_hdr_t *h)
{
    h->family = a->family;
    h->port = a->port;
    memset(h->addr, 0, sizeof h->addr);
    if (a->family == FS_AF_INET) {
        for (int i = 0; i < 4; i++)
            h->addr[i] = (uint8_t)(a->lo >> (24 - 8 * i));
        return;
    }
    for (int i = 0; i < 8; i++) {
        h->addr[i] = (uint8_t)(a->hi >> (56 - 8 * i));
        h->addr[8 + i] = (uint8_t)(a->lo >> (56 - 8 * i));
    }
}

/* ---- Control calls ------------------------------------------------------------------- */

/* Take socket `id` that netsrv created (socket or accept). */
static int adopt(uint32_t id, int type, int family, int nonblock)
{
    if (id >= S->max_sockets || S->socks[id].used) {
        /* netsrv named a socket that cannot be ours: refuse it. */
        sock_close(S->ep, CALL_TIMEOUT, S->session, id);
        return fail(EIO);
    }
    fs_sock_t *n = &S->socks[id];
    memset(n, 0, sizeof *n);
    n->used = 1;
    n->type = (uint8_t)type;
    n->family = (uint16_t)family;
    n->nonblock = (uint8_t)nonblock;
    bytering_prod_attach(&n->tx, sock_tx_ring(S->base, &S->l, id), S->ring_size);
    bytering_cons_attach(&n->rx, sock_rx_ring(S->base, &S->l, id), S->ring_size);
    return (int)id;
}

int fs_socket(int domain, int type, int protocol)
{
    if (session() == NULL)
        return -1;
    int nonblock = (type & FS_SOCK_NONBLOCK) != 0;
    type &= ~FS_SOCK_NONBLOCK;
    if (domain < 0 || domain > 0xffff || type < 0 || type > 0xffff || protocol < 0 ||
        protocol > 0xffff)
        return fail(EINVAL);
    uint32_t id;
    int32_t st = sock_socket(S->ep, CALL_TIMEOUT, S->session, (uint16_t)domain, (uint16_t)type,
                             (uint16_t)protocol, &id);
    if (st != 0)
        return status_fail(st);
    return adopt(id, type, domain, nonblock);
}

int fs_bind(int fd, const struct fs_sockaddr *addr, fs_socklen_t len)
{
    sock_addr_t a;
    if (sock_of(fd) == NULL || addr_in(addr, len, &a) != 0)
        return -1;
    return status_fail(sock_bind(S->ep, CALL_TIMEOUT, S->session, (uint32_t)fd, &a));
}

int fs_listen(int fd, int backlog)
{
    fs_sock_t *s = sock_of(fd);
    if (s == NULL)
        return -1;
    int32_t st = sock_listen(S->ep, CALL_TIMEOUT, S->session, (uint32_t)fd,
                             backlog < 0 ? 0u : (uint32_t)backlog);
    if (st == 0)
        s->listening = 1;
    return status_fail(st);
}

int fs_accept(int fd, struct fs_sockaddr *addr, fs_socklen_t *len)
{
    fs_sock_t *s = sock_of(fd);
    if (s == NULL)
        return -1;
    uint32_t id;
    sock_addr_t peer;
    int32_t st =
        sock_accept(S->ep, CALL_TIMEOUT, S->session, (uint32_t)fd, s->nonblock, &id, &peer);
    if (st != 0)
        return status_fail(st);
    int nfd = adopt(id, s->type, s->family, 0); /* as on Linux: O_NONBLOCK is not inherited */
    if (nfd >= 0) {
        S->socks[nfd].connected = 1;
        addr_out(&peer, addr, len);
    }
    return nfd;
}

int fs_connect(int fd, const struct fs_sockaddr *addr, fs_socklen_t len)
{
    fs_sock_t *s = sock_of(fd);
    sock_addr_t a;
    if (s == NULL || addr_in(addr, len, &a) != 0)
        return -1;
    if (a.family == 0 && s->type != FS_SOCK_DGRAM)
        return fail(EAFNOSUPPORT);
    int32_t st = sock_connect(S->ep, CALL_TIMEOUT, S->session, (uint32_t)fd, &a, s->nonblock);
    if (st == 0)
        s->connected = a.family != 0;
    else if (st == SOCK_EINPROGRESS)
        s->connecting = 1;
    return status_fail(st);
}

int fs_shutdown(int fd, int how)
{
    fs_sock_t *s = sock_of(fd);
    if (s == NULL)
        return -1;
    if (how < FS_SHUT_RD || how > FS_SHUT_RDWR)
        return fail(EINVAL);
    int32_t st = sock_shutdown(S->ep, CALL_TIMEOUT, S->session, (uint32_t)fd, (uint32_t)how);
    if (st == 0 && how != FS_SHUT_RD)
        s->wr_shut = 1;
    return status_fail(st);
}

int fs_close(int fd)
{
    fs_sock_t *s = sock_of(fd);
    if (s == NULL)
        return -1;
    s->used = 0;
    return status_fail(sock_close(S->ep, CALL_TIMEOUT, S->session, (uint32_t)fd));
}

/* getsockname and getpeername: the same call shape, another stub. */
typedef int32_t (*name_stub_t)(mk_cap_t, uint64_t, uint32_t, uint32_t, sock_addr_t *);

static int get_name(name_stub_t stub, int fd, struct fs_sockaddr *addr, fs_socklen_t *len)
{
    sock_addr_t a;
    if (sock_of(fd) == NULL)
        return -1;
    if (addr == NULL || len == NULL)
        return fail(EFAULT);
    int32_t st = stub(S->ep, CALL_TIMEOUT, S->session, (uint32_t)fd, &a);
    if (st != 0)
        return status_fail(st);
    addr_out(&a, addr, len);
    return 0;
}

int fs_getsockname(int fd, struct fs_sockaddr *addr, fs_socklen_t *len)
{
    return get_name(sock_getsockname, fd, addr, len);
}

int fs_getpeername(int fd, struct fs_sockaddr *addr, fs_socklen_t *len)
{
    return get_name(sock_getpeername, fd, addr, len);
}

int fs_setsockopt(int fd, int level, int name, const void *val, fs_socklen_t len)
{
    if (sock_of(fd) == NULL)
        return -1;
    if (val == NULL)
        return fail(EFAULT);
    int64_t v = 0, v2 = 0;
    if (level == FS_SOL_SOCKET && name == FS_SO_LINGER) {
        struct fs_linger lg;
        if (len < sizeof lg)
            return fail(EINVAL);
        memcpy(&lg, val, sizeof lg);
        v = lg.l_onoff;
        v2 = lg.l_linger;
    } else {
        int iv;
        if (len < sizeof iv)
            return fail(EINVAL);
        memcpy(&iv, val, sizeof iv);
        v = iv;
    }
    return status_fail(
        sock_setsockopt(S->ep, CALL_TIMEOUT, S->session, (uint32_t)fd, level, name, v, v2));
}

int fs_getsockopt(int fd, int level, int name, void *val, fs_socklen_t *len)
{
    if (sock_of(fd) == NULL)
        return -1;
    if (val == NULL || len == NULL)
        return fail(EFAULT);
    int64_t v, v2;
    int32_t st =
        sock_getsockopt(S->ep, CALL_TIMEOUT, S->session, (uint32_t)fd, level, name, &v, &v2);
    if (st != 0)
        return status_fail(st);
    if (level == FS_SOL_SOCKET && name == FS_SO_LINGER) {
        struct fs_linger lg = {.l_onoff = (int)v, .l_linger = (int)v2};
        if (*len < sizeof lg)
            return fail(EINVAL);
        memcpy(val, &lg, sizeof lg);
        *len = sizeof lg;
        return 0;
    }
    int iv = (int)v;
    if (level == FS_SOL_SOCKET && name == FS_SO_ERROR)
        iv = iv ? local_errno((uint32_t)iv) : 0;
    if (*len < sizeof iv)
        return fail(EINVAL);
    memcpy(val, &iv, sizeof iv);
    *len = sizeof iv;
    return 0;
}

int fs_fcntl(int fd, int cmd, int arg)
{
    fs_sock_t *s = sock_of(fd);
    if (s == NULL)
        return -1;
    if (cmd == FS_F_GETFL)
        return s->nonblock ? FS_O_NONBLOCK : 0;
    if (cmd == FS_F_SETFL) {
        s->nonblock = (arg & FS_O_NONBLOCK) != 0;
        return 0;
    }
    return fail(EINVAL);
}

/* ---- Data -------------------------------------------------------------------------- */

/* The socket's pending error (taken), or 0. */
static int take_error(int fd)
{
    if (!(events_of(fd) & SOCK_EV_ERR))
        return 0;
    int64_t v, v2;
    if (sock_getsockopt(S->ep, CALL_TIMEOUT, S->session, (uint32_t)fd, FS_SOL_SOCKET, FS_SO_ERROR,
                        &v, &v2) != 0 ||
        v == 0)
        return 0;
    return local_errno((uint32_t)v);
}

/* A connecting TCP socket becomes connected when netsrv shows it writable. */
static void note_connected(fs_sock_t *s, uint32_t events)
{
    if (s->connecting && (events & SOCK_EV_OUT)) {
        s->connecting = 0;
        s->connected = (events & (SOCK_EV_ERR | SOCK_EV_HUP)) == 0;
    }
}

static fs_ssize_t stream_send(int fd, fs_sock_t *s, const uint8_t *buf, size_t len, bool nonblock)
{
    size_t sent = 0;
    if (s->wr_shut)
        return fail(EPIPE);
    while (sent < len || len == 0) {
        uint32_t events = events_of(fd);
        note_connected(s, events);
        if (events & (SOCK_EV_ERR | SOCK_EV_HUP)) {
            int e = take_error(fd);
            if (sent)
                return (fs_ssize_t)sent;
            return fail(e ? e : EPIPE);
        }
        if (!(events & SOCK_EV_OUT)) {
            if (!s->connecting)
                return sent ? (fs_ssize_t)sent : fail(s->connected ? EPIPE : ENOTCONN);
        } else if (len == 0) {
            return 0;
        } else {
            uint32_t chunk = len - sent > UINT32_MAX ? UINT32_MAX : (uint32_t)(len - sent);
            uint32_t n = 0;
            if (bytering_prod_write(&s->tx, buf + sent, chunk, &n) != BYTERING_OK)
                return fail(EIO); /* netsrv broke the ring */
            if (n) {
                bytering_prod_publish(&s->tx);
                ring_doorbell(fd);
                sent += n;
                continue;
            }
        }
        if (nonblock)
            return sent ? (fs_ssize_t)sent : fail(EAGAIN);
        if (block() != 0)
            return sent ? (fs_ssize_t)sent : -1;
    }
    return (fs_ssize_t)sent;
}

static fs_ssize_t stream_recv(int fd, fs_sock_t *s, uint8_t *buf, size_t len, bool nonblock)
{
    for (;;) {
        uint32_t n = 0;
        uint32_t want = len > UINT32_MAX ? UINT32_MAX : (uint32_t)len;
        /* Flags first, then the ring: netsrv publishes ring bytes before
         * the flags that follow them, so an EOF seen here has every byte
         * before it already in the ring. */
        uint32_t events = events_of(fd);
        if (bytering_cons_read(&s->rx, buf, want, &n) != BYTERING_OK)
            return fail(EIO);
        if (n || len == 0) {
            bytering_cons_publish(&s->rx);
            ring_doorbell(fd); /* space freed: netsrv may open the window */
            return (fs_ssize_t)n;
        }
        note_connected(s, events);
        if (events & SOCK_EV_ERR) {
            int e = take_error(fd);
            if (e)
                return fail(e);
        }
        if (events & (SOCK_EV_RDHUP | SOCK_EV_HUP))
            return 0;
        if (!s->connected && !s->connecting)
            return fail(ENOTCONN);
        if (nonblock)
            return fail(EAGAIN);
        if (block() != 0)
            return -1;
    }
}

static fs_ssize_t dgram_send(int fd, fs_sock_t *s, const uint8_t *buf, size_t len,
                             const sock_addr_t *to, bool nonblock)
{
    sock_dgram_hdr_t h;
    memset(&h, 0, sizeof h);
    if (to != NULL)
        addr_to_hdr(to, &h);
    else if (!s->connected)
        return fail(EDESTADDRREQ);
    if (len > 0xffff || sock_dgram_size((uint32_t)len) > S->ring_size)
        return fail(EMSGSIZE);
    uint32_t total = sock_dgram_size((uint32_t)len);
    h.len = (uint16_t)len;
    static const uint8_t zeros[SOCK_DGRAM_ALIGN];
    for (;;) {
        uint32_t space;
        if (bytering_prod_space(&s->tx, &space) != BYTERING_OK)
            return fail(EIO);
        if (space >= total) {
            bytering_prod_write_all(&s->tx, &h, sizeof h);
            bytering_prod_write_all(&s->tx, buf, (uint32_t)len);
            bytering_prod_write_all(&s->tx, zeros, total - (uint32_t)sizeof h - (uint32_t)len);
            bytering_prod_publish(&s->tx); /* the whole record at once */
            ring_doorbell(fd);
            return (fs_ssize_t)len;
        }
        if (nonblock)
            return fail(EAGAIN);
        if (block() != 0)
            return -1;
    }
}

static fs_ssize_t dgram_recv(int fd, fs_sock_t *s, uint8_t *buf, size_t len, sock_addr_t *from,
                             bool nonblock)
{
    for (;;) {
        sock_dgram_hdr_t h;
        uint32_t events = events_of(fd);
        bytering_err_t e = bytering_cons_peek(&s->rx, 0, &h, sizeof h);
        if (e == BYTERING_OK) {
            uint32_t total = sock_dgram_size(h.len);
            uint32_t avail;
            if (total > S->ring_size || bytering_cons_avail(&s->rx, &avail) != BYTERING_OK ||
                avail < total)
                return fail(EIO); /* a record netsrv could not have written */
            size_t n = h.len < len ? h.len : len; /* the rest is dropped, as UDP does */
            bytering_cons_peek(&s->rx, sizeof h, buf, (uint32_t)n);
            bytering_cons_skip(&s->rx, total);
            bytering_cons_publish(&s->rx);
            ring_doorbell(fd);
            if (from)
                hdr_to_addr(&h, from);
            return (fs_ssize_t)n;
        }
        if (e != BYTERING_EDATA)
            return fail(EIO);
        if (events & SOCK_EV_ERR) {
            int err = take_error(fd);
            if (err)
                return fail(err);
        }
        if (events & SOCK_EV_RDHUP)
            return 0; /* shut down for reading */
        if (nonblock)
            return fail(EAGAIN);
        if (block() != 0)
            return -1;
    }
}

fs_ssize_t fs_send(int fd, const void *buf, size_t len, int flags)
{
    return fs_sendto(fd, buf, len, flags, NULL, 0);
}

fs_ssize_t fs_recv(int fd, void *buf, size_t len, int flags)
{
    return fs_recvfrom(fd, buf, len, flags, NULL, NULL);
}

fs_ssize_t fs_sendto(int fd, const void *buf, size_t len, int flags, const struct fs_sockaddr *to,
                     fs_socklen_t tolen)
{
    fs_sock_t *s = sock_of(fd);
    if (s == NULL)
        return -1;
    if (buf == NULL && len)
        return fail(EFAULT);
    bool nonblock = s->nonblock || (flags & FS_MSG_DONTWAIT);
    if (s->type == FS_SOCK_STREAM) /* `to` is ignored, as on Linux */
        return stream_send(fd, s, buf, len, nonblock);
    sock_addr_t a;
    if (to && addr_in(to, tolen, &a) != 0)
        return -1;
    if (to && a.family != s->family)
        return fail(EAFNOSUPPORT);
    return dgram_send(fd, s, buf, len, to ? &a : NULL, nonblock);
}

fs_ssize_t fs_recvfrom(int fd, void *buf, size_t len, int flags, struct fs_sockaddr *from,
                       fs_socklen_t *fromlen)
{
    fs_sock_t *s = sock_of(fd);
    if (s == NULL)
        return -1;
    if (buf == NULL && len)
        return fail(EFAULT);
    bool nonblock = s->nonblock || (flags & FS_MSG_DONTWAIT);
    if (s->type == FS_SOCK_STREAM) {
        fs_ssize_t n = stream_recv(fd, s, buf, len, nonblock);
        if (n >= 0 && from && fromlen) {
            sock_addr_t a;
            if (sock_getpeername(S->ep, CALL_TIMEOUT, S->session, (uint32_t)fd, &a) == 0)
                addr_out(&a, from, fromlen);
        }
        return n;
    }
    sock_addr_t a = {0};
    fs_ssize_t n = dgram_recv(fd, s, buf, len, &a, nonblock);
    if (n > 0 || (n == 0 && a.family != 0))
        addr_out(&a, from, fromlen);
    return n;
}

/* ---- poll ------------------------------------------------------------------------------ */

static short revents_of(int fd, short want)
{
    fs_state_t *st = S;
    if (fd < 0 || st == NULL || st->state != 1 || (uint32_t)fd >= st->max_sockets ||
        !st->socks[fd].used)
        return FS_POLLNVAL;
    fs_sock_t *s = &st->socks[fd];
    uint32_t ev = events_of(fd);
    note_connected(s, ev);
    short r = 0;
    uint32_t n;
    if ((ev & SOCK_EV_IN) || (bytering_cons_avail(&s->rx, &n) == BYTERING_OK && n))
        r |= FS_POLLIN;
    if ((ev & SOCK_EV_OUT) && !s->wr_shut && bytering_prod_space(&s->tx, &n) == BYTERING_OK &&
        n >= (s->type == FS_SOCK_DGRAM ? sock_dgram_size(1) : 1))
        r |= FS_POLLOUT;
    if (ev & SOCK_EV_RDHUP)
        r |= FS_POLLIN | FS_POLLRDHUP;
    r &= (short)(want | FS_POLLRDHUP);
    if (ev & SOCK_EV_ERR)
        r |= FS_POLLERR;
    if (ev & SOCK_EV_HUP)
        r |= FS_POLLHUP;
    return r;
}

int fs_poll(struct fs_pollfd *fds, unsigned long nfds, int timeout_ms)
{
    if (fds == NULL && nfds)
        return fail(EFAULT);
    uint64_t deadline =
        timeout_ms < 0 ? MK_FOREVER : mk_time_ns() + (uint64_t)timeout_ms * 1000000ull;
    for (;;) {
        int ready = 0;
        for (unsigned long i = 0; i < nfds; i++) {
            fds[i].revents = fds[i].fd < 0 ? 0 : revents_of(fds[i].fd, fds[i].events);
            ready += fds[i].revents != 0;
        }
        if (ready || timeout_ms == 0)
            return ready;
        if (S == NULL || S->state != 1) { /* no socket at all: just the timeout */
            if (timeout_ms > 0)
                mk_sleep_ns((uint64_t)timeout_ms * 1000000ull);
            return 0;
        }
        int e = wait_ready(deadline);
        if (e == ETIMEDOUT)
            return 0;
        if (e)
            return fail(e);
    }
}

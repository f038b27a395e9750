/*
 * ferrysock.c - libferrysock: POSIX-like sockets (ferry/socket.h) on
 * netsrv's socket service (sock.idl + ferry/sock_region.h). Protocol:
 * docs/socket-session.md. This file: errors, the session, addresses,
 * control calls and options; data.c moves bytes, ready.c waits (fs_poll,
 * epoll).
 *
 * One session per thread, opened on first use: the region (created here),
 * a notification of this thread's own, netsrv's signal capability. Control
 * calls go through the generated stubs; data only through the byte rings:
 *  - TCP: a byte stream each way.
 *  - UDP: records (sock_dgram_hdr_t, payload, padding to 8) each way.
 *
 * State is per thread (a thread-local pointer to heap state): in the
 * simulator the tasks of one process share an address space, and each of
 * their threads gets its own session; a socket belongs to the thread that
 * made it. Portable (no Linux headers: errno values are translated from the
 * wire's Linux numbers to the local C library's).
 */
#include "fs_priv.h"

#include <stdlib.h>
#include <string.h>

_Thread_local fs_state_t *fs_S;
#define S fs_S
#define CALL_TIMEOUT FS_CALL_TIMEOUT
#define fail fs_fail
#define status_fail fs_status_fail
#define local_errno fs_local_errno

/* ---- Errors -------------------------------------------------------------------- */

/* Linux errno numbers (the wire) to this C library's values. */
int fs_local_errno(uint32_t linux_no)
{
    switch (linux_no) {
    case 1: return EPERM;
    case 4: return EINTR;
    case 9: return EBADF;
    case 11: return EAGAIN;
    case 12: return ENOMEM;
    case 13: return EACCES;
    case 19: return ENODEV;
    case 22: return EINVAL;
    case 24: return EMFILE;
    case 32: return EPIPE;
    case 33: return EDOM;
    case 71: return EPROTO;
    case 88: return ENOTSOCK;
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

int fs_fail(int e)
{
    errno = e;
    return -1;
}

/* A stub's status: 0, a declared error (errno), or a protocol/kernel
 * failure (EIO; netsrv is gone: ENETDOWN). */
int fs_status_fail(int32_t st)
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
    fs_ready_free(s);
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

fs_state_t *fs_session(void)
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
    if (s->socks == NULL || fs_ready_init(s) != 0 ||
        mk_shm_create(s->l.size, &s->region) != MK_OK ||
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

fs_sock_t *fs_sock_of(int fd)
{
    fs_state_t *s = S;
    if (s == NULL || s->state != 1 || fd < 0 || (uint32_t)fd >= s->max_sockets ||
        !s->socks[fd].used) {
        errno = fs_is_epoll(fd) ? ENOTSOCK : EBADF;
        return NULL;
    }
    return &s->socks[fd];
}
#define sock_of fs_sock_of

/* ---- Addresses -------------------------------------------------------------------- */

int fs_addr_in(const struct fs_sockaddr *sa, fs_socklen_t len, sock_addr_t *a)
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
void fs_addr_out(const sock_addr_t *a, struct fs_sockaddr *addr, fs_socklen_t *len)
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

void fs_hdr_to_addr(const sock_dgram_hdr_t *h, sock_addr_t *a)
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

void fs_addr_to_hdr(const sock_addr_t *a, sock_dgram_hdr_t *h)
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
    if (fs_session() == NULL)
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
    if (sock_of(fd) == NULL || fs_addr_in(addr, len, &a) != 0)
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

/* accept with SO_RCVTIMEO: non-blocking accepts while the listener shows
 * a connection, waits for its ready bit in between, EAGAIN at the deadline
 * (as Linux). netsrv's deferred accept has no timeout of its own. */
static int32_t accept_timed(int fd, uint64_t timeo, uint32_t *id, sock_addr_t *peer)
{
    uint64_t deadline = fs_deadline(timeo);
    for (;;) {
        int32_t st = sock_accept(S->ep, CALL_TIMEOUT, S->session, (uint32_t)fd, true, id, peer);
        if (st != SOCK_EAGAIN)
            return st;
        do {
            int e = fs_wait_ready(deadline);
            if (e == ETIMEDOUT)
                return SOCK_EAGAIN;
            if (e)
                return MK_EDEAD;
        } while (!(fs_events_of(fd) & SOCK_EV_IN));
    }
}

int fs_accept(int fd, struct fs_sockaddr *addr, fs_socklen_t *len)
{
    fs_sock_t *s = sock_of(fd);
    if (s == NULL)
        return -1;
    uint32_t id;
    sock_addr_t peer;
    int32_t st;
    /* Non-blocking with nothing queued: netsrv would say EAGAIN, and its
     * answer to every accept published the listener's events first (a
     * connection arriving sets IN before its ready bit), so the slot tells
     * without a round trip. The loop that accepts until EAGAIN pays one
     * call per connection, not one more per wake-up. */
    if (s->nonblock && s->listening &&
        !(fs_events_of(fd) & (SOCK_EV_IN | SOCK_EV_ERR | SOCK_EV_HUP)))
        return fail(EAGAIN);
    if (!s->nonblock && s->rcvtimeo_ns != 0)
        st = accept_timed(fd, s->rcvtimeo_ns, &id, &peer);
    else
        st = sock_accept(S->ep, CALL_TIMEOUT, S->session, (uint32_t)fd, s->nonblock, &id, &peer);
    if (st != 0)
        return status_fail(st);
    int nfd = adopt(id, s->type, s->family, 0); /* as on Linux: O_NONBLOCK is not inherited */
    if (nfd >= 0) {
        S->socks[nfd].connected = 1;
        S->socks[nfd].rcvtimeo_ns = s->rcvtimeo_ns; /* inherited, as on Linux */
        S->socks[nfd].sndtimeo_ns = s->sndtimeo_ns;
        S->socks[nfd].linger_wait = s->linger_wait; /* netsrv's child inherits SO_LINGER */
        fs_addr_out(&peer, addr, len);
    }
    return nfd;
}

int fs_connect(int fd, const struct fs_sockaddr *addr, fs_socklen_t len)
{
    fs_sock_t *s = sock_of(fd);
    sock_addr_t a;
    if (s == NULL || fs_addr_in(addr, len, &a) != 0)
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
    if (fs_is_epoll(fd))
        return fs_epoll_close(fd);
    fs_sock_t *s = sock_of(fd);
    if (s == NULL)
        return -1;
    fs_epoll_forget(fd); /* as on Linux: a closed socket leaves every epoll set */
    s->used = 0;
    if (s->linger_wait) /* SO_LINGER > 0: the reply comes when the data is acknowledged */
        return status_fail(sock_close(S->ep, CALL_TIMEOUT, S->session, (uint32_t)fd));
    /* Nothing to wait for and nothing that can fail for an open socket of
     * ours: no reply. netsrv has taken the message when the send returns,
     * so every later call finds the close done (sock.idl close_nowait). */
    return status_fail(sock_close_nowait(S->ep, CALL_TIMEOUT, S->session, (uint32_t)fd));
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
    fs_addr_out(&a, addr, len);
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

/* SO_RCVTIMEO / SO_SNDTIMEO live here, not in netsrv: the library does
 * all the waiting. */
static uint64_t *timeo_of(fs_sock_t *s, int level, int name)
{
    if (level != FS_SOL_SOCKET)
        return NULL;
    return name == FS_SO_RCVTIMEO ? &s->rcvtimeo_ns
           : name == FS_SO_SNDTIMEO ? &s->sndtimeo_ns
                                    : NULL;
}

/* A timeout from struct fs_timeval: EDOM for microseconds outside
 * 0..999999 (as Linux) and for negative seconds (Linux takes those as
 * "do not wait" with a warning; here they are refused). 0 = forever. */
static int timeo_set(uint64_t *timeo, const void *val, fs_socklen_t len)
{
    struct fs_timeval tv;
    if (len < sizeof tv)
        return fail(EINVAL);
    memcpy(&tv, val, sizeof tv);
    if (tv.tv_usec < 0 || tv.tv_usec >= 1000000 || tv.tv_sec < 0)
        return fail(EDOM);
    uint64_t sec = (uint64_t)tv.tv_sec;
    if (sec > UINT64_MAX / 1000000000ull / 2) /* beyond any deadline: forever */
        *timeo = 0;
    else
        *timeo = sec * 1000000000ull + (uint64_t)tv.tv_usec * 1000ull;
    return 0;
}

static int timeo_get(uint64_t timeo, void *val, fs_socklen_t *len)
{
    struct fs_timeval tv = {.tv_sec = (long)(timeo / 1000000000ull),
                            .tv_usec = (long)(timeo % 1000000000ull / 1000ull)};
    if (*len < sizeof tv)
        return fail(EINVAL);
    memcpy(val, &tv, sizeof tv);
    *len = sizeof tv;
    return 0;
}

/* ---- Multicast options: values that are not an int ---------------------------- */

static bool is_membership(int level, int name)
{
    return (level == FS_IPPROTO_IP &&
            (name == FS_IP_ADD_MEMBERSHIP || name == FS_IP_DROP_MEMBERSHIP)) ||
           (level == FS_IPPROTO_IPV6 && (name == FS_IPV6_JOIN_GROUP || name == FS_IPV6_LEAVE_GROUP));
}

/* IP_ADD/DROP_MEMBERSHIP (struct fs_ip_mreq, or fs_ip_mreqn as Linux
 * reads it when it is long enough) and IPV6_JOIN/LEAVE_GROUP
 * (fs_ipv6_mreq): sock.idl's membership call. */
static int membership(int fd, int level, int name, const void *val, fs_socklen_t len)
{
    sock_addr_t group = {0}, local = {0};
    uint32_t ifindex = 0;
    bool join = name == FS_IP_ADD_MEMBERSHIP || name == FS_IPV6_JOIN_GROUP;
    if (level == FS_IPPROTO_IP) {
        struct fs_ip_mreqn m = {0};
        if (len < sizeof(struct fs_ip_mreq))
            return fail(EINVAL);
        memcpy(&m, val, len < sizeof m ? sizeof(struct fs_ip_mreq) : sizeof m);
        group.family = local.family = FS_AF_INET;
        group.lo = fs_ntohl(m.imr_multiaddr.s_addr);
        local.lo = fs_ntohl(m.imr_address.s_addr);
        if (m.imr_ifindex < 0)
            return fail(ENODEV);
        ifindex = (uint32_t)m.imr_ifindex;
    } else {
        struct fs_ipv6_mreq m;
        if (len < sizeof m)
            return fail(EINVAL);
        memcpy(&m, val, sizeof m);
        group.family = FS_AF_INET6;
        for (int i = 0; i < 8; i++) {
            group.hi = (group.hi << 8) | m.ipv6mr_multiaddr.s6_addr[i];
            group.lo = (group.lo << 8) | m.ipv6mr_multiaddr.s6_addr[8 + i];
        }
        ifindex = m.ipv6mr_interface;
    }
    return status_fail(sock_membership(S->ep, CALL_TIMEOUT, S->session, (uint32_t)fd, join, &group,
                                       &local, ifindex));
}

/* IP_MULTICAST_IF: struct fs_in_addr, fs_ip_mreq (its imr_interface) or
 * fs_ip_mreqn, as Linux takes them: value = the address (host order),
 * value2 = the interface index. */
static int mcast_if_in(const void *val, fs_socklen_t len, int64_t *v, int64_t *v2)
{
    struct fs_ip_mreqn m = {0};
    if (len >= sizeof m)
        memcpy(&m, val, sizeof m);
    else if (len >= sizeof(struct fs_ip_mreq))
        memcpy(&m, val, sizeof(struct fs_ip_mreq));
    else if (len >= sizeof(struct fs_in_addr))
        memcpy(&m.imr_address, val, sizeof m.imr_address);
    else
        return fail(EINVAL);
    if (m.imr_ifindex < 0)
        return fail(EADDRNOTAVAIL);
    *v = fs_ntohl(m.imr_address.s_addr);
    *v2 = m.imr_ifindex;
    return 0;
}

int fs_setsockopt(int fd, int level, int name, const void *val, fs_socklen_t len)
{
    fs_sock_t *s = sock_of(fd);
    if (s == NULL)
        return -1;
    if (val == NULL)
        return fail(EFAULT);
    uint64_t *timeo = timeo_of(s, level, name);
    if (timeo != NULL)
        return timeo_set(timeo, val, len);
    if (is_membership(level, name))
        return membership(fd, level, name, val, len);
    int64_t v = 0, v2 = 0;
    if (level == FS_SOL_SOCKET && name == FS_SO_LINGER) {
        struct fs_linger lg;
        if (len < sizeof lg)
            return fail(EINVAL);
        memcpy(&lg, val, sizeof lg);
        v = lg.l_onoff;
        v2 = lg.l_linger;
    } else if (level == FS_IPPROTO_IP && name == FS_IP_MULTICAST_IF) {
        if (mcast_if_in(val, len, &v, &v2) != 0)
            return -1;
    } else if (level == FS_IPPROTO_IP && len >= 1 && len < sizeof(int)) {
        v = *(const uint8_t *)val; /* IPPROTO_IP integers may be one byte, as on Linux */
    } else {
        int iv;
        if (len < sizeof iv)
            return fail(EINVAL);
        memcpy(&iv, val, sizeof iv);
        v = iv;
    }
    /* Options netsrv always takes on an open socket of ours: nothing to
     * wait for (sock.idl setsockopt_nowait; netsrv has the message when
     * the send returns, before any later call or doorbell). */
    if ((level == FS_SOL_SOCKET && (name == FS_SO_REUSEADDR || name == FS_SO_KEEPALIVE)) ||
        (level == FS_IPPROTO_TCP && name == FS_TCP_NODELAY && s->type == FS_SOCK_STREAM))
        return status_fail(sock_setsockopt_nowait(S->ep, CALL_TIMEOUT, S->session, (uint32_t)fd,
                                                  level, name, v, v2));
    int32_t st = sock_setsockopt(S->ep, CALL_TIMEOUT, S->session, (uint32_t)fd, level, name, v, v2);
    if (st == 0 && level == FS_SOL_SOCKET && name == FS_SO_LINGER)
        s->linger_wait = v != 0 && v2 > 0; /* close then waits for netsrv's reply */
    return status_fail(st);
}

int fs_getsockopt(int fd, int level, int name, void *val, fs_socklen_t *len)
{
    fs_sock_t *s = sock_of(fd);
    if (s == NULL)
        return -1;
    if (val == NULL || len == NULL)
        return fail(EFAULT);
    uint64_t *timeo = timeo_of(s, level, name);
    if (timeo != NULL)
        return timeo_get(*timeo, val, len);
    if (level == FS_SOL_SOCKET && name == FS_SO_ERROR && !(fs_events_of(fd) & SOCK_EV_ERR)) {
        /* No pending error: netsrv stores it in the slot before it
         * publishes ERR (the events' release), so there is none to take. */
        int zero = 0;
        if (*len < sizeof zero)
            return fail(EINVAL);
        memcpy(val, &zero, sizeof zero);
        *len = sizeof zero;
        return 0;
    }
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
    if (level == FS_IPPROTO_IP && name == FS_IP_MULTICAST_IF) { /* a struct fs_in_addr */
        struct fs_in_addr a = {fs_htonl((uint32_t)v)};
        if (*len < sizeof a)
            return fail(EINVAL);
        memcpy(val, &a, sizeof a);
        *len = sizeof a;
        return 0;
    }
    int iv = (int)v;
    if (level == FS_SOL_SOCKET && name == FS_SO_ERROR)
        iv = iv ? local_errno((uint32_t)iv) : 0;
    if (level == FS_IPPROTO_IP && *len >= 1 && *len < sizeof iv && iv >= 0 && iv <= 255) {
        *(uint8_t *)val = (uint8_t)iv; /* one byte, as Linux gives */
        *len = 1;
        return 0;
    }
    if (*len < sizeof iv)
        return fail(EINVAL);
    memcpy(val, &iv, sizeof iv);
    *len = sizeof iv;
    return 0;
}

int fs_fcntl(int fd, int cmd, int arg)
{
    if (fs_is_epoll(fd)) /* nothing to set: epoll waits take their own timeout */
        return cmd == FS_F_GETFL ? 0 : cmd == FS_F_SETFL ? 0 : fail(EINVAL);
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


int fs_session_stats(struct fs_session_stats *out)
{
    if (out == NULL)
        return fail(EFAULT);
    if (S == NULL)
        memset(out, 0, sizeof *out);
    else
        *out = S->st;
    return 0;
}

/* The socket's pending error (taken), or 0. */
int fs_take_error(int fd)
{
    if (!(fs_events_of(fd) & SOCK_EV_ERR))
        return 0;
    int64_t v, v2;
    if (sock_getsockopt(S->ep, CALL_TIMEOUT, S->session, (uint32_t)fd, FS_SOL_SOCKET, FS_SO_ERROR,
                        &v, &v2) != 0 ||
        v == 0)
        return 0;
    return local_errno((uint32_t)v);
}

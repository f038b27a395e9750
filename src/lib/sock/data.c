/*
 * data.c - libferrysock's data path: bytes between the caller's buffers
 * (iovecs) and a socket's byte rings. TCP: a byte stream each way; UDP:
 * one record (sock_dgram_hdr_t, payload, padding) per datagram. No IPC,
 * except to fetch a pending error (SO_ERROR) and, for fs_recvfrom on TCP,
 * the peer's name.
 *
 * Flags: MSG_DONTWAIT (this call does not wait), MSG_PEEK (leave the data
 * in the ring), MSG_WAITALL (TCP: wait for the whole length unless EOF, an
 * error or the timeout comes first; ignored with MSG_PEEK), MSG_TRUNC
 * (UDP: return the datagram's real length; TCP: consume without copying,
 * as Linux), MSG_NOSIGNAL (there are no signals). MSG_OOB: EOPNOTSUPP; any
 * other bit: EINVAL, before anything is touched.
 *
 * Waiting: fs_wait_ready until the deadline SO_RCVTIMEO / SO_SNDTIMEO
 * gives; past it, EAGAIN, or what was moved so far (as Linux).
 */
#include "fs_priv.h"

#include <string.h>

#define S fs_S
#define fail fs_fail

#define SEND_FLAGS (FS_MSG_DONTWAIT | FS_MSG_NOSIGNAL)
#define RECV_FLAGS (FS_MSG_PEEK | FS_MSG_TRUNC | FS_MSG_DONTWAIT | FS_MSG_WAITALL | FS_MSG_NOSIGNAL)
#define SSIZE_LIMIT ((size_t)-1 >> 1)

/* ---- iovecs ----------------------------------------------------------------------------- */

/* A position in the caller's iovec array. */
typedef struct iocur {
    const struct fs_iovec *v;
    size_t n;   /* iovecs */
    size_t i;   /* the current one */
    size_t off; /* bytes of v[i] already done */
} iocur_t;

/* The rest of the current iovec (empty ones skipped): its length, 0 at the end. */
static size_t cur_piece(iocur_t *c, uint8_t **p)
{
    while (c->i < c->n && c->off == c->v[c->i].iov_len) {
        c->i++;
        c->off = 0;
    }
    if (c->i == c->n)
        return 0;
    uint8_t *base = c->v[c->i].iov_base;
    *p = base != NULL ? base + c->off : NULL; /* NULL: MSG_TRUNC on TCP copies nothing */
    return c->v[c->i].iov_len - c->off;
}

/* Validate an iovec array (at most FS_IOV_MAX, a total that fits
 * fs_ssize_t: EMSGSIZE / EINVAL as Linux; NULL bases with bytes: EFAULT
 * unless nothing will be copied) and sum it. */
static int iov_check(const struct fs_iovec *v, size_t n, bool null_ok, size_t *total)
{
    if (n > FS_IOV_MAX)
        return fail(EMSGSIZE);
    if (n && v == NULL)
        return fail(EFAULT);
    size_t t = 0;
    for (size_t i = 0; i < n; i++) {
        if (v[i].iov_len > SSIZE_LIMIT - t)
            return fail(EINVAL);
        if (v[i].iov_base == NULL && v[i].iov_len && !null_ok)
            return fail(EFAULT);
        t += v[i].iov_len;
    }
    *total = t;
    return 0;
}

/* Copy up to len ready bytes that start `off` bytes past the ring's head
 * into the iovecs (copy false: only count them); nothing is consumed.
 * Returns the bytes taken. */
static size_t ring_copy_out(bytering_cons_t *rx, uint32_t off, uint32_t len, iocur_t *c, bool copy)
{
    uint32_t done = 0;
    uint8_t *p;
    size_t k;
    while (done < len && (k = cur_piece(c, &p)) != 0) {
        uint32_t n = k < len - done ? (uint32_t)k : len - done;
        if (copy && bytering_cons_peek(rx, off + done, p, n) != BYTERING_OK)
            break; /* cannot happen: the bytes were counted ready */
        c->off += n;
        done += n;
    }
    return done;
}

/* Copy the iovecs into the TX ring as far as it has space; *done bytes. */
static int ring_copy_in(bytering_prod_t *tx, iocur_t *c, size_t *done)
{
    uint8_t *p;
    size_t k;
    *done = 0;
    while ((k = cur_piece(c, &p)) != 0) {
        uint32_t want = k > UINT32_MAX ? UINT32_MAX : (uint32_t)k, n = 0;
        if (bytering_prod_write(tx, p, want, &n) != BYTERING_OK)
            return fail(EIO); /* netsrv broke the ring */
        c->off += n;
        *done += n;
        if (n < want)
            break; /* full */
    }
    return 0;
}

/* Nothing to do now: wait for a ready bit (0), or give up (-1, errno):
 * EAGAIN when non-blocking or past the deadline. */
static int wait_more(bool nonblock, uint64_t deadline)
{
    if (nonblock)
        return fail(EAGAIN);
    int e = fs_wait_ready(deadline);
    if (e == ETIMEDOUT)
        return fail(EAGAIN);
    return e ? fail(e) : 0;
}

/* ---- TCP ---------------------------------------------------------------------------------- */

static fs_ssize_t stream_send(int fd, fs_sock_t *s, iocur_t *c, size_t total, bool nonblock,
                              uint64_t deadline)
{
    size_t sent = 0;
    if (s->wr_shut)
        return fail(EPIPE);
    for (;;) {
        uint32_t events = fs_events_of(fd);
        fs_note_connected(s, events);
        if (events & (SOCK_EV_ERR | SOCK_EV_HUP)) {
            int e = fs_take_error(fd);
            if (sent)
                return (fs_ssize_t)sent;
            return fail(e ? e : EPIPE);
        }
        if (!(events & SOCK_EV_OUT)) {
            if (!s->connecting)
                return sent ? (fs_ssize_t)sent : fail(s->connected ? EPIPE : ENOTCONN);
        } else if (total == 0) {
            return 0;
        } else {
            size_t n;
            if (ring_copy_in(&s->tx, c, &n) != 0)
                return -1;
            if (n) {
                bytering_prod_publish(&s->tx);
                fs_ring_doorbell(fd);
                sent += n;
                if (sent == total)
                    return (fs_ssize_t)sent;
                continue;
            }
        }
        if (wait_more(nonblock, deadline) != 0)
            return sent ? (fs_ssize_t)sent : -1;
    }
}

static fs_ssize_t stream_recv(int fd, fs_sock_t *s, iocur_t *c, size_t total, int flags,
                              bool nonblock, uint64_t deadline)
{
    bool peek = flags & FS_MSG_PEEK, copy = !(flags & FS_MSG_TRUNC);
    bool waitall = (flags & FS_MSG_WAITALL) && !peek;
    size_t got = 0;
    if (total == 0)
        return 0;
    for (;;) {
        /* Flags first, then the ring: netsrv publishes ring bytes before
         * the flags that follow them, so an EOF seen here has every byte
         * before it already in the ring. */
        uint32_t events = fs_events_of(fd), avail;
        if (bytering_cons_avail(&s->rx, &avail) != BYTERING_OK)
            return fail(EIO);
        if (avail) {
            uint32_t want = total - got < avail ? (uint32_t)(total - got) : avail;
            uint32_t n = (uint32_t)ring_copy_out(&s->rx, 0, want, c, copy);
            if (!peek) {
                bytering_cons_skip(&s->rx, n);
                bytering_cons_publish(&s->rx);
                fs_ring_doorbell(fd); /* space freed: netsrv may open the window */
            }
            got += n;
            if (got == total || !waitall)
                return (fs_ssize_t)got;
            continue;
        }
        fs_note_connected(s, events);
        bool stop = (events & (SOCK_EV_ERR | SOCK_EV_RDHUP | SOCK_EV_HUP)) ||
                    (!s->connected && !s->connecting);
        if (got && stop) /* a pending error waits for the next call */
            return (fs_ssize_t)got;
        if (events & SOCK_EV_ERR) {
            int e = fs_take_error(fd);
            if (e)
                return fail(e);
        }
        if (events & (SOCK_EV_RDHUP | SOCK_EV_HUP))
            return 0;
        if (!s->connected && !s->connecting)
            return fail(ENOTCONN);
        if (wait_more(nonblock, deadline) != 0)
            return got ? (fs_ssize_t)got : -1;
    }
}

/* ---- UDP ---------------------------------------------------------------------------------- */

static fs_ssize_t dgram_send(int fd, fs_sock_t *s, iocur_t *c, size_t total, const sock_addr_t *to,
                             bool nonblock, uint64_t deadline)
{
    sock_dgram_hdr_t h;
    memset(&h, 0, sizeof h);
    if (to != NULL)
        fs_addr_to_hdr(to, &h);
    else if (!s->connected)
        return fail(EDESTADDRREQ);
    if (total > 0xffff || sock_dgram_size((uint32_t)total) > S->ring_size)
        return fail(EMSGSIZE);
    uint32_t rec = sock_dgram_size((uint32_t)total);
    h.len = (uint16_t)total;
    static const uint8_t zeros[SOCK_DGRAM_ALIGN];
    for (;;) {
        uint32_t space;
        if (bytering_prod_space(&s->tx, &space) != BYTERING_OK)
            return fail(EIO);
        if (space >= rec) {
            size_t n;
            bytering_prod_write_all(&s->tx, &h, sizeof h);
            ring_copy_in(&s->tx, c, &n); /* all of it: the space is there */
            bytering_prod_write_all(&s->tx, zeros, rec - (uint32_t)sizeof h - (uint32_t)total);
            bytering_prod_publish(&s->tx); /* the whole record at once */
            fs_ring_doorbell(fd);
            return (fs_ssize_t)total;
        }
        if (wait_more(nonblock, deadline) != 0)
            return -1;
    }
}

/* One datagram into the iovecs; its source in *from, FS_MSG_TRUNC in
 * *mflags if it was longer than `total` (the rest is dropped, as UDP does). */
static fs_ssize_t dgram_recv(int fd, fs_sock_t *s, iocur_t *c, size_t total, int flags,
                             sock_addr_t *from, int *mflags, bool nonblock, uint64_t deadline)
{
    for (;;) {
        sock_dgram_hdr_t h;
        uint32_t events = fs_events_of(fd);
        bytering_err_t e = bytering_cons_peek(&s->rx, 0, &h, sizeof h);
        if (e == BYTERING_OK) {
            uint32_t rec = sock_dgram_size(h.len), avail;
            if (rec > S->ring_size || bytering_cons_avail(&s->rx, &avail) != BYTERING_OK ||
                avail < rec)
                return fail(EIO); /* a record netsrv could not have written */
            uint32_t want = h.len < total ? h.len : (uint32_t)total;
            size_t n = ring_copy_out(&s->rx, sizeof h, want, c, true);
            if (!(flags & FS_MSG_PEEK)) {
                bytering_cons_skip(&s->rx, rec);
                bytering_cons_publish(&s->rx);
                fs_ring_doorbell(fd);
            }
            fs_hdr_to_addr(&h, from);
            if (h.len > total)
                *mflags |= FS_MSG_TRUNC;
            return (flags & FS_MSG_TRUNC) ? (fs_ssize_t)h.len : (fs_ssize_t)n;
        }
        if (e != BYTERING_EDATA)
            return fail(EIO);
        if (events & SOCK_EV_ERR) {
            int err = fs_take_error(fd);
            if (err)
                return fail(err);
        }
        if (events & SOCK_EV_RDHUP)
            return 0; /* shut down for reading */
        if (wait_more(nonblock, deadline) != 0)
            return -1;
    }
}

/* ---- Calls -------------------------------------------------------------------------------- */

static fs_ssize_t do_send(int fd, const struct fs_iovec *iov, size_t iovlen, int flags,
                          const struct fs_sockaddr *to, fs_socklen_t tolen)
{
    fs_sock_t *s = fs_sock_of(fd);
    size_t total;
    if (s == NULL)
        return -1;
    if (flags & FS_MSG_OOB)
        return fail(EOPNOTSUPP);
    if (flags & ~SEND_FLAGS)
        return fail(EINVAL);
    if (iov_check(iov, iovlen, false, &total) != 0)
        return -1;
    bool nonblock = s->nonblock || (flags & FS_MSG_DONTWAIT);
    uint64_t deadline = fs_deadline(s->sndtimeo_ns);
    iocur_t c = {.v = iov, .n = iovlen};
    if (s->type == FS_SOCK_STREAM) /* `to` is ignored, as on Linux */
        return stream_send(fd, s, &c, total, nonblock, deadline);
    sock_addr_t a;
    if (to && fs_addr_in(to, tolen, &a) != 0)
        return -1;
    if (to && a.family != s->family)
        return fail(EAFNOSUPPORT);
    return dgram_send(fd, s, &c, total, to ? &a : NULL, nonblock, deadline);
}

/* Receive into the iovecs; a UDP source in *from (family 0 for TCP). */
static fs_ssize_t do_recv(int fd, const struct fs_iovec *iov, size_t iovlen, int flags,
                          sock_addr_t *from, int *mflags)
{
    fs_sock_t *s = fs_sock_of(fd);
    size_t total;
    memset(from, 0, sizeof *from);
    *mflags = 0;
    if (s == NULL)
        return -1;
    if (flags & FS_MSG_OOB)
        return fail(EOPNOTSUPP);
    if (flags & ~RECV_FLAGS)
        return fail(EINVAL);
    bool stream = s->type == FS_SOCK_STREAM;
    if (iov_check(iov, iovlen, stream && (flags & FS_MSG_TRUNC), &total) != 0)
        return -1;
    bool nonblock = s->nonblock || (flags & FS_MSG_DONTWAIT);
    uint64_t deadline = fs_deadline(s->rcvtimeo_ns);
    iocur_t c = {.v = iov, .n = iovlen};
    if (stream)
        return stream_recv(fd, s, &c, total, flags, nonblock, deadline);
    return dgram_recv(fd, s, &c, total, flags, from, mflags, nonblock, deadline);
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
    struct fs_iovec v = {.iov_base = (void *)buf, .iov_len = len};
    return do_send(fd, &v, 1, flags, to, tolen);
}

fs_ssize_t fs_recvfrom(int fd, void *buf, size_t len, int flags, struct fs_sockaddr *from,
                       fs_socklen_t *fromlen)
{
    struct fs_iovec v = {.iov_base = buf, .iov_len = len};
    sock_addr_t a;
    int mflags;
    fs_ssize_t n = do_recv(fd, &v, 1, flags, &a, &mflags);
    if (n < 0 || from == NULL || fromlen == NULL)
        return n;
    if (S->socks[fd].type == FS_SOCK_STREAM) { /* the peer's name, as this library always did */
        if (sock_getpeername(S->ep, FS_CALL_TIMEOUT, S->session, (uint32_t)fd, &a) == 0)
            fs_addr_out(&a, from, fromlen);
    } else if (n > 0 || a.family != 0) {
        fs_addr_out(&a, from, fromlen);
    }
    return n;
}

fs_ssize_t fs_sendmsg(int fd, const struct fs_msghdr *msg, int flags)
{
    if (msg == NULL)
        return fail(EFAULT);
    if (msg->msg_controllen != 0) /* no ancillary data is understood */
        return fail(EINVAL);
    /* As Linux: no name, or a name of length 0, means no address. */
    const struct fs_sockaddr *to = msg->msg_name && msg->msg_namelen ? msg->msg_name : NULL;
    return do_send(fd, msg->msg_iov, msg->msg_iovlen, flags, to, msg->msg_namelen);
}

fs_ssize_t fs_recvmsg(int fd, struct fs_msghdr *msg, int flags)
{
    if (msg == NULL)
        return fail(EFAULT);
    sock_addr_t a;
    int mflags;
    fs_ssize_t n = do_recv(fd, msg->msg_iov, msg->msg_iovlen, flags, &a, &mflags);
    if (n < 0)
        return n;
    msg->msg_flags = mflags;
    msg->msg_controllen = 0;
    if (msg->msg_name == NULL)
        return n;
    if (a.family != 0)
        fs_addr_out(&a, msg->msg_name, &msg->msg_namelen);
    else
        msg->msg_namelen = 0; /* TCP: no address, as Linux */
    return n;
}

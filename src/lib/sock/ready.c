/*
 * ready.c - how libferrysock learns that sockets changed, and waits for
 * it: the region's ready bitmap, the session's notification, fs_poll and
 * epoll (docs/socket-session.md, "Readiness").
 *
 * netsrv sets socket i's ready bit whenever the socket changed (its events,
 * bytes published into its RX ring, space freed in its TX ring) and
 * signals the notification if the client asked (sock_region.h). Whoever
 * takes the bits (ready_take: a blocking call waiting in fs_wait_ready,
 * fs_poll, fs_epoll_wait) hands every flagged socket on at once, so no
 * bit is lost between them:
 *  - each epoll item watching the socket joins its instance's ready list
 *    (unless it is on it already, or disarmed by EPOLLONESHOT);
 *  - the bit goes into `changed`, which fs_poll reads after a wake-up.
 * A bit only says "look again": readiness itself is always computed from
 * the slot's events and the rings (fs_readiness), at the moment it is
 * reported. The client's own calls only ever take readiness away (reading
 * a ring empty, filling one, shutdown); an item that is no longer ready
 * leaves the list when epoll looks at it, and comes back with the next bit.
 *
 * Costs: taking bits scans the bitmap's words (max_sockets / 64, at most
 * 64) and then touches only the flagged sockets. A summary word would save
 * that scan, but it would need netsrv to write one more shared word per bit
 * and the scan is at most eight cache lines: not worth an ABI change.
 *
 * Single-threaded (the calling thread's session, fs_priv.h).
 */
#include "fs_priv.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

#define S fs_S
#define fail fs_fail

struct fs_epitem {
    fs_epoll_t *ep;
    int fd;
    uint32_t events;                  /* FS_EPOLL* asked for, with ET / ONESHOT */
    uint64_t data;                    /* the caller's fs_epoll_data_t, all 8 bytes */
    bool queued;                      /* on ep's ready list */
    bool armed;                       /* false after a ONESHOT report, until MOD */
    fs_epitem_t *sock_next;           /* the socket's next watcher */
    fs_epitem_t *rd_prev, *rd_next;   /* ep's ready list */
    fs_epitem_t *all_prev, *all_next; /* every item of ep */
};

struct fs_epoll {
    fs_epitem_t *rd_head, *rd_tail; /* sockets that may be ready, oldest first */
    fs_epitem_t *all;
};

static void item_queue(fs_epitem_t *it);

/* ---- Session state ------------------------------------------------------------------------ */

int fs_ready_init(fs_state_t *s)
{
    s->changed = calloc(s->l.map_words, sizeof *s->changed);
    s->epolls = calloc(FS_EPOLL_MAX, sizeof *s->epolls);
    s->poll_head = malloc(s->max_sockets * sizeof *s->poll_head);
    if (s->changed == NULL || s->epolls == NULL || s->poll_head == NULL)
        return -1;
    for (uint32_t i = 0; i < s->max_sockets; i++)
        s->poll_head[i] = FS_NONE;
    return 0;
}

static void epoll_free(fs_state_t *s, uint32_t k);

void fs_ready_free(fs_state_t *s)
{
    for (uint32_t k = 0; s->epolls != NULL && k < FS_EPOLL_MAX; k++)
        epoll_free(s, k);
    free(s->changed);
    free(s->epolls);
    free(s->poll_head);
    free(s->poll_next);
    s->changed = NULL;
    s->epolls = NULL;
    s->poll_head = s->poll_next = NULL;
    s->poll_cap = 0;
}

/* ---- Ready bits ---------------------------------------------------------------------------- */

void fs_ring_doorbell(int fd)
{
    sock_bit_set(sock_map(S->base, S->l.doorbell), (uint32_t)fd);
    if (sock_need_signal(sock_wanted(S->base, S->l.srv_wanted)))
        mk_signal(S->server_signal);
}

/* Take every ready bit and hand each flagged socket on (the file comment). */
static void ready_take(fs_state_t *s)
{
    _Atomic uint64_t *map = sock_map(s->base, s->l.ready);
    for (uint32_t w = 0; w < s->l.map_words; w++) {
        if (atomic_load_explicit(&map[w], memory_order_relaxed) == 0)
            continue; /* the exchange only for words with bits: no needless writes */
        uint64_t bits = sock_bits_take(map, w); /* SB3: acquire */
        s->changed[w] |= bits;
        while (bits) {
            uint32_t id = w * 64 + (uint32_t)__builtin_ctzll(bits);
            bits &= bits - 1;
            s->st.ready_bits++;
            if (id >= s->max_sockets || !s->socks[id].used)
                continue;
            for (fs_epitem_t *it = s->socks[id].watchers; it != NULL; it = it->sock_next)
                item_queue(it);
        }
    }
}

int fs_wait_ready(uint64_t deadline)
{
    fs_state_t *s = S;
    _Atomic uint64_t *ready = sock_map(s->base, s->l.ready);
    if (sock_prepare_sleep(sock_wanted(s->base, s->l.cli_wanted), ready, s->l.map_words)) {
        uint64_t now = mk_time_ns();
        if (deadline != MK_FOREVER && now >= deadline)
            return ETIMEDOUT;
        mk_word_t bits;
        s->st.waits++;
        mk_err_t e = mk_wait(s->ntfn, &bits, deadline == MK_FOREVER ? MK_FOREVER : deadline - now);
        if (e == MK_ETIMEDOUT)
            return ETIMEDOUT;
        if (e != MK_OK)
            return ENETDOWN;
    }
    ready_take(s);
    return 0;
}

uint32_t fs_readiness(int fd, fs_sock_t *s)
{
    uint32_t ev = fs_events_of(fd), r = 0, n;
    fs_note_connected(s, ev);
    if ((ev & SOCK_EV_IN) || (bytering_cons_avail(&s->rx, &n) == BYTERING_OK && n))
        r |= FS_POLLIN;
    if ((ev & SOCK_EV_OUT) && !s->wr_shut && bytering_prod_space(&s->tx, &n) == BYTERING_OK &&
        n >= (s->type == FS_SOCK_DGRAM ? sock_dgram_size(1) : 1))
        r |= FS_POLLOUT;
    if (ev & SOCK_EV_RDHUP)
        r |= FS_POLLIN | FS_POLLRDHUP;
    if (ev & SOCK_EV_ERR)
        r |= FS_POLLERR;
    if (ev & SOCK_EV_HUP)
        r |= FS_POLLHUP;
    return r;
}

/* ---- poll ---------------------------------------------------------------------------------- */

static short revents_of(fs_state_t *s, int fd, short want)
{
    if (s == NULL || s->state != 1 || (uint32_t)fd >= s->max_sockets || !s->socks[fd].used)
        return FS_POLLNVAL;
    s->st.poll_checks++;
    uint32_t r = fs_readiness(fd, &s->socks[fd]);
    return (short)(r & ((uint16_t)want | FS_POLLERR | FS_POLLHUP));
}

/* Every entry: POSIX wants every revents filled. */
static int poll_scan(fs_state_t *s, struct fs_pollfd *fds, unsigned long nfds)
{
    int ready = 0;
    for (unsigned long i = 0; i < nfds; i++) {
        fds[i].revents = fds[i].fd < 0 ? 0 : revents_of(s, fds[i].fd, fds[i].events);
        ready += fds[i].revents != 0;
    }
    return ready;
}

/* Chain the entries by socket (poll_head, poll_next), so that a wake-up
 * looks only at the entries of the sockets flagged. false without room for
 * the chains: then every wake-up scans every entry, as it always did. */
static bool poll_index(fs_state_t *s, const struct fs_pollfd *fds, unsigned long nfds)
{
    if (nfds >= FS_NONE || nfds > SIZE_MAX / sizeof *s->poll_next)
        return false;
    if (nfds > s->poll_cap) {
        uint32_t *n = realloc(s->poll_next, nfds * sizeof *n);
        if (n == NULL)
            return false;
        s->poll_next = n;
        s->poll_cap = nfds;
    }
    for (unsigned long i = nfds; i-- > 0;) {
        int fd = fds[i].fd;
        if (fd < 0 || (uint32_t)fd >= s->max_sockets)
            continue;
        s->poll_next[i] = s->poll_head[fd];
        s->poll_head[fd] = (uint32_t)i;
    }
    return true;
}

static void poll_unindex(fs_state_t *s, const struct fs_pollfd *fds, unsigned long nfds)
{
    for (unsigned long i = 0; i < nfds; i++)
        if (fds[i].fd >= 0 && (uint32_t)fds[i].fd < s->max_sockets)
            s->poll_head[fds[i].fd] = FS_NONE;
}

/* After a wake-up: the entries of the sockets flagged since `changed` was
 * cleared; returns the new count of entries with revents (from `ready`). */
static int poll_rescan(fs_state_t *s, struct fs_pollfd *fds, int ready)
{
    for (uint32_t w = 0; w < s->l.map_words; w++) {
        uint64_t bits = s->changed[w];
        s->changed[w] = 0;
        while (bits) {
            uint32_t id = w * 64 + (uint32_t)__builtin_ctzll(bits);
            bits &= bits - 1;
            if (id >= s->max_sockets)
                continue;
            for (uint32_t i = s->poll_head[id]; i != FS_NONE; i = s->poll_next[i]) {
                short was = fds[i].revents;
                fds[i].revents = revents_of(s, fds[i].fd, fds[i].events);
                ready += (fds[i].revents != 0) - (was != 0);
            }
        }
    }
    return ready;
}

int fs_poll(struct fs_pollfd *fds, unsigned long nfds, int timeout_ms)
{
    if (fds == NULL && nfds)
        return fail(EFAULT);
    uint64_t deadline =
        timeout_ms < 0 ? MK_FOREVER : mk_time_ns() + (uint64_t)timeout_ms * 1000000ull;
    fs_state_t *s = S;
    bool live = s != NULL && s->state == 1;
    if (live) { /* the scan below covers everything flagged so far */
        ready_take(s);
        memset(s->changed, 0, s->l.map_words * sizeof *s->changed);
    }
    int ready = poll_scan(s, fds, nfds);
    if (ready || timeout_ms == 0)
        return ready;
    if (!live) { /* no socket at all: just the timeout */
        if (timeout_ms > 0)
            mk_sleep_ns((uint64_t)timeout_ms * 1000000ull);
        return 0;
    }
    bool indexed = poll_index(s, fds, nfds);
    int e;
    do {
        e = fs_wait_ready(deadline);
        if (e == 0)
            ready = indexed ? poll_rescan(s, fds, 0) : poll_scan(s, fds, nfds);
    } while (e == 0 && ready == 0);
    if (indexed)
        poll_unindex(s, fds, nfds);
    if (e == ETIMEDOUT)
        return 0;
    return e ? fail(e) : ready;
}

/* ---- epoll: instances and items ------------------------------------------------------------- */

#define EP_EVENTS                                                                          \
    (FS_EPOLLIN | FS_EPOLLPRI | FS_EPOLLOUT | FS_EPOLLERR | FS_EPOLLHUP | FS_EPOLLRDNORM | \
     FS_EPOLLRDBAND | FS_EPOLLWRNORM | FS_EPOLLWRBAND | FS_EPOLLMSG | FS_EPOLLRDHUP)
#define EP_FLAGS (FS_EPOLLEXCLUSIVE | FS_EPOLLWAKEUP | FS_EPOLLONESHOT | FS_EPOLLET)
/* What Linux allows beside EPOLLEXCLUSIVE. */
#define EP_EXCLUSIVE_OK                                                                          \
    (FS_EPOLLIN | FS_EPOLLPRI | FS_EPOLLRDNORM | FS_EPOLLRDBAND | FS_EPOLLOUT | FS_EPOLLWRNORM | \
     FS_EPOLLWRBAND | FS_EPOLLERR | FS_EPOLLHUP | FS_EPOLLWAKEUP | FS_EPOLLET | FS_EPOLLEXCLUSIVE)

/* Epoll descriptors follow the socket ids: max_sockets + index. */
static fs_epoll_t *epoll_at(int fd)
{
    fs_state_t *s = S;
    if (s == NULL || s->state != 1 || fd < 0 || (uint32_t)fd < s->max_sockets)
        return NULL;
    uint32_t k = (uint32_t)fd - s->max_sockets;
    return k < FS_EPOLL_MAX ? s->epolls[k] : NULL;
}

bool fs_is_epoll(int fd)
{
    return epoll_at(fd) != NULL;
}

static void item_queue(fs_epitem_t *it)
{
    fs_epoll_t *ep = it->ep;
    if (it->queued || !it->armed)
        return;
    it->queued = true;
    it->rd_next = NULL;
    it->rd_prev = ep->rd_tail;
    if (ep->rd_tail)
        ep->rd_tail->rd_next = it;
    else
        ep->rd_head = it;
    ep->rd_tail = it;
}

static void item_unqueue(fs_epitem_t *it)
{
    fs_epoll_t *ep = it->ep;
    if (!it->queued)
        return;
    if (it->rd_prev)
        it->rd_prev->rd_next = it->rd_next;
    else
        ep->rd_head = it->rd_next;
    if (it->rd_next)
        it->rd_next->rd_prev = it->rd_prev;
    else
        ep->rd_tail = it->rd_prev;
    it->queued = false;
    it->rd_prev = it->rd_next = NULL;
}

static fs_epitem_t *item_find(fs_sock_t *so, const fs_epoll_t *ep)
{
    fs_epitem_t *it = so->watchers;
    while (it != NULL && it->ep != ep)
        it = it->sock_next;
    return it;
}

static fs_epitem_t *item_new(fs_epoll_t *ep, int fd, fs_sock_t *so)
{
    fs_epitem_t *it = calloc(1, sizeof *it);
    if (it == NULL)
        return NULL;
    it->ep = ep;
    it->fd = fd;
    it->sock_next = so->watchers;
    so->watchers = it;
    it->all_next = ep->all;
    if (ep->all)
        ep->all->all_prev = it;
    ep->all = it;
    return it;
}

static void item_free(fs_state_t *s, fs_epitem_t *it)
{
    fs_epoll_t *ep = it->ep;
    item_unqueue(it);
    fs_epitem_t **p = &s->socks[it->fd].watchers;
    while (*p != it)
        p = &(*p)->sock_next;
    *p = it->sock_next;
    if (it->all_prev)
        it->all_prev->all_next = it->all_next;
    else
        ep->all = it->all_next;
    if (it->all_next)
        it->all_next->all_prev = it->all_prev;
    free(it);
}

static void epoll_free(fs_state_t *s, uint32_t k)
{
    fs_epoll_t *ep = s->epolls[k];
    if (ep == NULL)
        return;
    while (ep->all != NULL)
        item_free(s, ep->all);
    free(ep);
    s->epolls[k] = NULL;
}

int fs_epoll_close(int fd)
{
    if (!fs_is_epoll(fd))
        return fail(EBADF);
    epoll_free(S, (uint32_t)fd - S->max_sockets);
    return 0;
}

void fs_epoll_forget(int fd)
{
    fs_sock_t *so = &S->socks[fd];
    while (so->watchers != NULL)
        item_free(S, so->watchers);
}

/* What the item would report now (0: not ready). */
static uint32_t item_revents(fs_state_t *s, const fs_epitem_t *it)
{
    s->st.epoll_checks++;
    uint32_t r = fs_readiness(it->fd, &s->socks[it->fd]);
    if (r & FS_POLLIN)
        r |= FS_EPOLLRDNORM;
    if (r & FS_POLLOUT)
        r |= FS_EPOLLWRNORM;
    return r & (it->events | FS_EPOLLERR | FS_EPOLLHUP);
}

/* ---- epoll: calls ---------------------------------------------------------------------------- */

int fs_epoll_create1(int flags)
{
    if (flags & ~FS_EPOLL_CLOEXEC)
        return fail(EINVAL);
    fs_state_t *s = fs_session();
    if (s == NULL)
        return -1;
    for (uint32_t k = 0; k < FS_EPOLL_MAX; k++) {
        if (s->epolls[k] != NULL)
            continue;
        s->epolls[k] = calloc(1, sizeof *s->epolls[k]);
        return s->epolls[k] ? (int)(s->max_sockets + k) : fail(ENOMEM);
    }
    return fail(EMFILE);
}

/* Check an ADD/MOD's events: EINVAL for bits Linux does not define and
 * for EPOLLEXCLUSIVE where Linux refuses it. */
static int events_check(int op, uint32_t events)
{
    if (events & ~(uint32_t)(EP_EVENTS | EP_FLAGS))
        return fail(EINVAL);
    if ((events & FS_EPOLLEXCLUSIVE) && (op == FS_EPOLL_CTL_MOD || (events & ~EP_EXCLUSIVE_OK)))
        return fail(EINVAL);
    return 0;
}

/* The errors in Linux's order: EFAULT, EBADF (epfd, then fd), EINVAL,
 * then EEXIST / ENOENT; EPERM for an epoll descriptor as fd (Linux nests
 * instances; Ferry does not). Nothing changes on an error. */
int fs_epoll_ctl(int epfd, int op, int fd, struct fs_epoll_event *event)
{
    if (op != FS_EPOLL_CTL_DEL && event == NULL)
        return fail(EFAULT);
    fs_epoll_t *ep = epoll_at(epfd);
    if (ep == NULL && fs_sock_of(epfd) == NULL)
        return fail(EBADF);
    bool nested = fs_is_epoll(fd);
    fs_sock_t *so = nested ? NULL : fs_sock_of(fd);
    if (!nested && so == NULL)
        return fail(EBADF);
    uint32_t events = op == FS_EPOLL_CTL_DEL ? 0 : event->events;
    if (ep == NULL || fd == epfd ||
        (op != FS_EPOLL_CTL_ADD && op != FS_EPOLL_CTL_MOD && op != FS_EPOLL_CTL_DEL) ||
        events_check(op, events) != 0)
        return fail(EINVAL);
    if (nested)
        return fail(EPERM);
    fs_epitem_t *it = item_find(so, ep);
    if (op == FS_EPOLL_CTL_ADD && it != NULL)
        return fail(EEXIST);
    if (op != FS_EPOLL_CTL_ADD && it == NULL)
        return fail(ENOENT);
    if (op == FS_EPOLL_CTL_DEL) {
        item_free(S, it);
        return 0;
    }
    if (op == FS_EPOLL_CTL_MOD && (it->events & FS_EPOLLEXCLUSIVE))
        return fail(EINVAL); /* as Linux */
    if (it == NULL && (it = item_new(ep, fd, so)) == NULL)
        return fail(ENOMEM);
    it->events = events;
    it->data = event->data.u64;
    it->armed = true;
    /* As Linux: a socket ready now is reported by the next wait, without
     * waiting for a ready bit (a connection accepted with data already in
     * its ring has had none). */
    if (item_revents(S, it))
        item_queue(it);
    return 0;
}

/* Report up to max items from the ready list: each looked at once,
 * readiness computed now; a level-triggered one that is ready goes back at
 * the end of the list (so the next call starts with the others), an
 * edge-triggered one waits for the next ready bit, a oneshot one for MOD.
 * Items not looked at stay in front, in order. */
static int ep_collect(fs_state_t *s, fs_epoll_t *ep, struct fs_epoll_event *out, int max)
{
    fs_epitem_t *it = ep->rd_head, *tail = ep->rd_tail;
    ep->rd_head = ep->rd_tail = NULL;
    int n = 0;
    while (it != NULL && n < max) {
        fs_epitem_t *next = it->rd_next;
        it->queued = false;
        it->rd_prev = it->rd_next = NULL;
        uint32_t r = item_revents(s, it);
        if (r != 0) {
            out[n].events = r;
            out[n].data.u64 = it->data;
            n++;
            if (it->events & FS_EPOLLONESHOT)
                it->armed = false;
            else if (!(it->events & FS_EPOLLET))
                item_queue(it);
        }
        it = next;
    }
    if (it != NULL) { /* it .. tail were not looked at: back in front */
        it->rd_prev = NULL;
        tail->rd_next = ep->rd_head;
        if (ep->rd_head)
            ep->rd_head->rd_prev = tail;
        else
            ep->rd_tail = tail;
        ep->rd_head = it;
    }
    return n;
}

int fs_epoll_wait(int epfd, struct fs_epoll_event *events, int maxevents, int timeout_ms)
{
    fs_epoll_t *ep = epoll_at(epfd);
    if (ep == NULL)
        return fail(fs_sock_of(epfd) != NULL ? EINVAL : EBADF);
    if (maxevents <= 0 || (size_t)maxevents > INT_MAX / sizeof *events)
        return fail(EINVAL);
    if (events == NULL)
        return fail(EFAULT);
    uint64_t deadline =
        timeout_ms < 0 ? MK_FOREVER : mk_time_ns() + (uint64_t)timeout_ms * 1000000ull;
    ready_take(S);
    for (;;) {
        int n = ep_collect(S, ep, events, maxevents);
        if (n || timeout_ms == 0)
            return n;
        int e = fs_wait_ready(deadline); /* takes the bits that woke it */
        if (e == ETIMEDOUT)
            return 0;
        if (e)
            return fail(e);
    }
}

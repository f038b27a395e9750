/*
 * ferry/socket.h - POSIX-like sockets on Ferry's socket service.
 *
 * Applications call fs_socket, fs_bind, ... with fs_* types whose layouts
 * and constants are Linux's (so the native backend hands them to Linux
 * unchanged, and the same application source runs on both systems). On
 * Ferry the calls are served by libferrysock: control through sock.idl calls
 * to netsrv, data through per-socket byte rings in a shared region, readiness
 * through one notification (docs/socket-session.md).
 *
 * Errors: -1 and errno, with the local C library's E* values.
 * Threads: on Ferry each thread that calls the library gets its own session
 * (opened on its first call) and its own sockets; a socket must be used by
 * the thread that made it. One thread per socket, as in most servers here.
 */
#ifndef FERRY_SOCKET_H
#define FERRY_SOCKET_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- Types and constants (Linux values and layouts) -------------------------- */

typedef uint32_t fs_socklen_t;
typedef uint16_t fs_sa_family_t;
typedef long fs_ssize_t;

#define FS_AF_INET 2
#define FS_AF_INET6 10
#define FS_SOCK_STREAM 1
#define FS_SOCK_DGRAM 2
#define FS_SOCK_NONBLOCK 04000 /* or'ed into fs_socket's type, as on Linux */
#define FS_IPPROTO_IP 0
#define FS_IPPROTO_TCP 6
#define FS_IPPROTO_UDP 17
#define FS_IPPROTO_IPV6 41

#define FS_SOL_SOCKET 1
#define FS_SO_REUSEADDR 2
#define FS_SO_ERROR 4
#define FS_SO_SNDBUF 7
#define FS_SO_RCVBUF 8
#define FS_SO_KEEPALIVE 9
#define FS_SO_LINGER 13
#define FS_SO_RCVTIMEO 20 /* struct fs_timeval; kept by libferrysock, never sent to netsrv */
#define FS_SO_SNDTIMEO 21
#define FS_TCP_NODELAY 1
#define FS_IPV6_V6ONLY 26
#define FS_SO_BROADCAST 6 /* a datagram to a broadcast address without it: EACCES in SO_ERROR */
/* IPPROTO_IP. Interface indexes (imr_ifindex, ipv6mr_interface,
 * IPV6_MULTICAST_IF) are netsrv.idl's interface index + 1, as sin6_scope_id. */
#define FS_IP_TOS 1
#define FS_IP_TTL 2
#define FS_IP_MULTICAST_IF 32 /* struct fs_in_addr, fs_ip_mreq or fs_ip_mreqn */
#define FS_IP_MULTICAST_TTL 33
#define FS_IP_MULTICAST_LOOP 34
#define FS_IP_ADD_MEMBERSHIP 35 /* struct fs_ip_mreq or fs_ip_mreqn */
#define FS_IP_DROP_MEMBERSHIP 36
/* IPPROTO_IPV6 */
#define FS_IPV6_UNICAST_HOPS 16
#define FS_IPV6_MULTICAST_IF 17
#define FS_IPV6_MULTICAST_HOPS 18
#define FS_IPV6_MULTICAST_LOOP 19
#define FS_IPV6_JOIN_GROUP 20 /* struct fs_ipv6_mreq */
#define FS_IPV6_LEAVE_GROUP 21

#define FS_SHUT_RD 0
#define FS_SHUT_WR 1
#define FS_SHUT_RDWR 2

#define FS_MSG_OOB 0x01 /* not supported: EOPNOTSUPP */
#define FS_MSG_PEEK 0x02
#define FS_MSG_TRUNC 0x20
#define FS_MSG_DONTWAIT 0x40
#define FS_MSG_WAITALL 0x100
#define FS_MSG_NOSIGNAL 0x4000
#define FS_IOV_MAX 1024 /* most iovecs in one fs_sendmsg/fs_recvmsg, as Linux's UIO_MAXIOV */

#define FS_POLLIN 0x001
#define FS_POLLOUT 0x004
#define FS_POLLERR 0x008
#define FS_POLLHUP 0x010
#define FS_POLLNVAL 0x020
#define FS_POLLRDHUP 0x2000

#define FS_EPOLLIN 0x001u
#define FS_EPOLLPRI 0x002u /* accepted, never reported (no urgent data) */
#define FS_EPOLLOUT 0x004u
#define FS_EPOLLERR 0x008u /* always reported, need not be asked for */
#define FS_EPOLLHUP 0x010u /* always reported, need not be asked for */
#define FS_EPOLLRDNORM 0x040u
#define FS_EPOLLRDBAND 0x080u /* accepted, never reported */
#define FS_EPOLLWRNORM 0x100u
#define FS_EPOLLWRBAND 0x200u /* accepted, never reported */
#define FS_EPOLLMSG 0x400u    /* accepted, never reported */
#define FS_EPOLLRDHUP 0x2000u
#define FS_EPOLLEXCLUSIVE (1u << 28) /* accepted with ADD (one waiter per session anyway) */
#define FS_EPOLLWAKEUP (1u << 29)    /* accepted, no effect */
#define FS_EPOLLONESHOT (1u << 30)
#define FS_EPOLLET (1u << 31)
#define FS_EPOLL_CTL_ADD 1
#define FS_EPOLL_CTL_DEL 2
#define FS_EPOLL_CTL_MOD 3
#define FS_EPOLL_CLOEXEC 02000000 /* accepted, no effect (no exec) */

#define FS_F_GETFL 3
#define FS_F_SETFL 4
#define FS_O_NONBLOCK 04000

struct fs_sockaddr {
    fs_sa_family_t sa_family;
    char sa_data[14];
};

struct fs_in_addr {
    uint32_t s_addr; /* network byte order */
};

struct fs_sockaddr_in {
    fs_sa_family_t sin_family;
    uint16_t sin_port; /* network byte order */
    struct fs_in_addr sin_addr;
    uint8_t sin_zero[8];
};

struct fs_in6_addr {
    uint8_t s6_addr[16];
};

struct fs_ip_mreq {
    struct fs_in_addr imr_multiaddr; /* the group */
    struct fs_in_addr imr_interface; /* an address of the interface; 0.0.0.0: any */
};

struct fs_ip_mreqn {
    struct fs_in_addr imr_multiaddr;
    struct fs_in_addr imr_address;
    int imr_ifindex; /* 0: by imr_address */
};

struct fs_sockaddr_in6 {
    fs_sa_family_t sin6_family;
    uint16_t sin6_port; /* network byte order */
    uint32_t sin6_flowinfo;
    struct fs_in6_addr sin6_addr;
    uint32_t sin6_scope_id;
};

struct fs_ipv6_mreq {
    struct fs_in6_addr ipv6mr_multiaddr;
    unsigned int ipv6mr_interface; /* 0: the default interface */
};

/* As Linux's: 128 bytes, aligned like unsigned long, so that it can be
 * used as any fs_sockaddr_* without misaligned accesses. */
struct fs_sockaddr_storage {
    fs_sa_family_t ss_family;
    char ss_pad[128 - sizeof(fs_sa_family_t) - sizeof(unsigned long)];
    unsigned long ss_align;
};

struct fs_linger {
    int l_onoff;
    int l_linger;
};

struct fs_pollfd {
    int fd;
    short events;
    short revents;
};

/* SO_RCVTIMEO / SO_SNDTIMEO, as Linux's struct timeval (the long-based
 * one: 16 bytes on 64-bit systems, 8 on 32-bit ones). */
struct fs_timeval {
    long tv_sec;
    long tv_usec;
};

/* fs_sendmsg / fs_recvmsg, Linux's struct iovec and struct msghdr. */
struct fs_iovec {
    void *iov_base;
    size_t iov_len;
};

struct fs_msghdr {
    void *msg_name;            /* address (UDP), or NULL */
    fs_socklen_t msg_namelen;  /* in: its size; out (recvmsg): the address's size, 0 for TCP */
    struct fs_iovec *msg_iov;
    size_t msg_iovlen;         /* at most FS_IOV_MAX */
    void *msg_control;         /* ancillary data: none supported (sendmsg: EINVAL) */
    size_t msg_controllen;     /* recvmsg sets it to 0 */
    int msg_flags;             /* recvmsg: FS_MSG_TRUNC if a datagram was longer */
};

/* fs_epoll_wait's events, Linux's epoll_data_t and struct epoll_event: the
 * structure is packed on x86-64 (12 bytes, as Linux declares it there)
 * and naturally aligned elsewhere (16 bytes). */
typedef union fs_epoll_data {
    void *ptr;
    int fd;
    uint32_t u32;
    uint64_t u64;
} fs_epoll_data_t;

#if defined(__x86_64__)
#define FS_EPOLL_PACKED __attribute__((packed))
#else
#define FS_EPOLL_PACKED
#endif

struct fs_epoll_event {
    uint32_t events; /* FS_EPOLL* */
    fs_epoll_data_t data;
} FS_EPOLL_PACKED;

/* Ferry only: what the calling thread's readiness machinery did (counts
 * since its session opened; fs_session_stats). They let tests and tools
 * check what a wait costs without timing it. */
struct fs_session_stats {
    uint64_t ready_bits;   /* ready bits taken from the region (sockets flagged by netsrv) */
    uint64_t waits;        /* sleeps on the session's notification */
    uint64_t poll_checks;  /* fs_poll: entries whose readiness was computed */
    uint64_t epoll_checks; /* epoll: registered sockets whose readiness was computed */
};

_Static_assert(sizeof(struct fs_sockaddr_in) == 16, "Linux layout");
_Static_assert(sizeof(struct fs_sockaddr_in6) == 28, "Linux layout");
_Static_assert(sizeof(struct fs_ip_mreq) == 8 && sizeof(struct fs_ip_mreqn) == 12 &&
                   sizeof(struct fs_ipv6_mreq) == 20,
               "Linux layout");
_Static_assert(sizeof(struct fs_sockaddr_storage) == 128, "Linux layout");
_Static_assert(_Alignof(struct fs_sockaddr_storage) >= _Alignof(struct fs_sockaddr_in6), "alignment");
_Static_assert(sizeof(struct fs_pollfd) == 8, "Linux layout");
_Static_assert(sizeof(struct fs_timeval) == 2 * sizeof(long), "Linux layout");
_Static_assert(sizeof(struct fs_iovec) == 2 * sizeof(void *), "Linux layout");
_Static_assert(sizeof(fs_epoll_data_t) == 8, "Linux layout");
#if defined(__x86_64__)
_Static_assert(sizeof(struct fs_epoll_event) == 12, "Linux layout (packed on x86-64)");
#else
_Static_assert(sizeof(struct fs_epoll_event) == 16, "Linux layout");
#endif

/* Byte order helpers (the fs_sockaddr fields are in network order). */
static inline uint16_t fs_htons(uint16_t v)
{
    const union { uint16_t u; uint8_t b[2]; } probe = {.u = 1};
    return probe.b[0] ? (uint16_t)((v >> 8) | (v << 8)) : v;
}
static inline uint16_t fs_ntohs(uint16_t v) { return fs_htons(v); }
static inline uint32_t fs_htonl(uint32_t v)
{
    const union { uint16_t u; uint8_t b[2]; } probe = {.u = 1};
    return probe.b[0] ? ((v >> 24) | ((v >> 8) & 0xff00u) | ((v << 8) & 0xff0000u) | (v << 24)) : v;
}
static inline uint32_t fs_ntohl(uint32_t v) { return fs_htonl(v); }

/* ---- Calls --------------------------------------------------------------------- */

/* Ferry only (optional, before the calling thread's first socket call):
 * the name of the capability to netsrv's endpoint (default "netsrv"), the
 * session's socket limit (default 64) and the bytes of each socket's ring
 * per direction (a power of two, 64 .. 2^30, default 65536). The ring size
 * bounds SO_RCVBUF/SO_SNDBUF and the largest UDP datagram (ring size - 24).
 * The native backend ignores it. */
int fs_session_configure(const char *cap_name, uint32_t max_sockets, uint32_t ring_size);
/* Ferry only: end the calling thread's session: every socket closed as by
 * fs_close, the session closed in netsrv, the shared region unmapped, the
 * library's state for this thread freed (call it before a thread that used
 * sockets ends; a task that dies without it loses its sockets to netsrv's
 * death notices). The next socket call opens a new session. 0, or -1 with
 * errno if netsrv could not be told (the state is freed all the same). The
 * native backend does nothing. */
int fs_session_close(void);

int fs_socket(int domain, int type, int protocol);
int fs_bind(int fd, const struct fs_sockaddr *addr, fs_socklen_t len);
int fs_listen(int fd, int backlog);
int fs_accept(int fd, struct fs_sockaddr *addr, fs_socklen_t *len);
int fs_connect(int fd, const struct fs_sockaddr *addr, fs_socklen_t len);
fs_ssize_t fs_send(int fd, const void *buf, size_t len, int flags);
fs_ssize_t fs_recv(int fd, void *buf, size_t len, int flags);
fs_ssize_t fs_sendto(int fd, const void *buf, size_t len, int flags, const struct fs_sockaddr *to,
                     fs_socklen_t tolen);
fs_ssize_t fs_recvfrom(int fd, void *buf, size_t len, int flags, struct fs_sockaddr *from,
                       fs_socklen_t *fromlen);
int fs_shutdown(int fd, int how);
int fs_close(int fd);
int fs_getsockname(int fd, struct fs_sockaddr *addr, fs_socklen_t *len);
int fs_getpeername(int fd, struct fs_sockaddr *addr, fs_socklen_t *len);
int fs_setsockopt(int fd, int level, int name, const void *val, fs_socklen_t len);
int fs_getsockopt(int fd, int level, int name, void *val, fs_socklen_t *len);
int fs_fcntl(int fd, int cmd, int arg);
/* Gather/scatter I/O with Linux's layouts. Flags as for fs_send/fs_recv;
 * fs_recvmsg sets msg_flags (FS_MSG_TRUNC: a datagram longer than the
 * buffers, the rest dropped) and msg_namelen (UDP: the source; TCP: 0). */
fs_ssize_t fs_sendmsg(int fd, const struct fs_msghdr *msg, int flags);
fs_ssize_t fs_recvmsg(int fd, struct fs_msghdr *msg, int flags);
/* timeout_ms < 0: forever. Costs O(nfds) once, then per wake-up only the
 * entries whose sockets netsrv flagged. */
int fs_poll(struct fs_pollfd *fds, unsigned long nfds, int timeout_ms);

/* epoll, as on Linux: an instance (a descriptor closed with fs_close) holds
 * a set of sockets with the events wanted and a value to report
 * (fs_epoll_ctl ADD / MOD / DEL); fs_epoll_wait returns up to maxevents
 * ready ones. Level-triggered unless FS_EPOLLET; FS_EPOLLONESHOT disarms a
 * socket after one report until MOD. A socket leaves every set when it is
 * closed. On Ferry a wait costs what the sockets netsrv flagged since the
 * last wait and the ones still level-ready cost, not the size of the set
 * (docs/socket-session.md). Ferry limits: 32 instances per thread (EMFILE);
 * an instance inside another is refused (EPERM); epoll descriptors in
 * fs_poll show FS_POLLNVAL. */
int fs_epoll_create1(int flags);
int fs_epoll_ctl(int epfd, int op, int fd, struct fs_epoll_event *event);
int fs_epoll_wait(int epfd, struct fs_epoll_event *events, int maxevents, int timeout_ms);

/* Ferry only: the calling thread's readiness counters (zeros before its
 * session opens). The native backend fails with ENOSYS. */
int fs_session_stats(struct fs_session_stats *out);

#ifdef __cplusplus
}
#endif
#endif /* FERRY_SOCKET_H */

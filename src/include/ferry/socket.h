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
#define FS_TCP_NODELAY 1
#define FS_IPV6_V6ONLY 26

#define FS_SHUT_RD 0
#define FS_SHUT_WR 1
#define FS_SHUT_RDWR 2

#define FS_MSG_DONTWAIT 0x40
#define FS_MSG_NOSIGNAL 0x4000

#define FS_POLLIN 0x001
#define FS_POLLOUT 0x004
#define FS_POLLERR 0x008
#define FS_POLLHUP 0x010
#define FS_POLLNVAL 0x020
#define FS_POLLRDHUP 0x2000

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

struct fs_sockaddr_in6 {
    fs_sa_family_t sin6_family;
    uint16_t sin6_port; /* network byte order */
    uint32_t sin6_flowinfo;
    struct fs_in6_addr sin6_addr;
    uint32_t sin6_scope_id;
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

_Static_assert(sizeof(struct fs_sockaddr_in) == 16, "Linux layout");
_Static_assert(sizeof(struct fs_sockaddr_in6) == 28, "Linux layout");
_Static_assert(sizeof(struct fs_sockaddr_storage) == 128, "Linux layout");
_Static_assert(_Alignof(struct fs_sockaddr_storage) >= _Alignof(struct fs_sockaddr_in6), "alignment");
_Static_assert(sizeof(struct fs_pollfd) == 8, "Linux layout");

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
/* timeout_ms < 0: forever. */
int fs_poll(struct fs_pollfd *fds, unsigned long nfds, int timeout_ms);

#ifdef __cplusplus
}
#endif
#endif /* FERRY_SOCKET_H */

/*
 * fs_native.c - the native backend of ferry/socket.h: every fs_* call is
 * the Linux call of the same name. The fs_* types have Linux's layouts and
 * constants (checked below), so arguments pass through unchanged. With it,
 * one application source runs on Ferry and on Linux, for the comparison
 * table of the benchmarks.
 */
#include <errno.h>
#include <fcntl.h>
#include <ferry/socket.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stddef.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/uio.h>
#include <unistd.h>

_Static_assert(FS_AF_INET == AF_INET && FS_AF_INET6 == AF_INET6, "constants");
_Static_assert(FS_SOCK_STREAM == SOCK_STREAM && FS_SOCK_DGRAM == SOCK_DGRAM && FS_SOCK_NONBLOCK == SOCK_NONBLOCK, "constants");
_Static_assert(FS_SOL_SOCKET == SOL_SOCKET && FS_SO_REUSEADDR == SO_REUSEADDR && FS_SO_ERROR == SO_ERROR &&
               FS_SO_SNDBUF == SO_SNDBUF && FS_SO_RCVBUF == SO_RCVBUF && FS_SO_LINGER == SO_LINGER &&
               FS_SO_KEEPALIVE == SO_KEEPALIVE, "constants");
_Static_assert(FS_TCP_NODELAY == TCP_NODELAY && FS_IPV6_V6ONLY == IPV6_V6ONLY && FS_IPPROTO_IPV6 == IPPROTO_IPV6 &&
               FS_IPPROTO_TCP == IPPROTO_TCP && FS_IPPROTO_UDP == IPPROTO_UDP, "constants");
_Static_assert(FS_POLLIN == POLLIN && FS_POLLOUT == POLLOUT && FS_POLLERR == POLLERR && FS_POLLHUP == POLLHUP &&
               FS_POLLNVAL == POLLNVAL && FS_POLLRDHUP == POLLRDHUP, "constants");
_Static_assert(FS_MSG_DONTWAIT == MSG_DONTWAIT && FS_MSG_NOSIGNAL == MSG_NOSIGNAL && FS_O_NONBLOCK == O_NONBLOCK &&
               FS_F_GETFL == F_GETFL && FS_F_SETFL == F_SETFL, "constants");
_Static_assert(FS_MSG_OOB == MSG_OOB && FS_MSG_PEEK == MSG_PEEK && FS_MSG_TRUNC == MSG_TRUNC &&
               FS_MSG_WAITALL == MSG_WAITALL && FS_SO_RCVTIMEO == SO_RCVTIMEO && FS_SO_SNDTIMEO == SO_SNDTIMEO,
               "constants");
_Static_assert(FS_EPOLLIN == EPOLLIN && FS_EPOLLPRI == EPOLLPRI && FS_EPOLLOUT == EPOLLOUT && FS_EPOLLERR == EPOLLERR &&
               FS_EPOLLHUP == EPOLLHUP && FS_EPOLLRDNORM == EPOLLRDNORM && FS_EPOLLRDBAND == EPOLLRDBAND &&
               FS_EPOLLWRNORM == EPOLLWRNORM && FS_EPOLLWRBAND == EPOLLWRBAND && FS_EPOLLMSG == EPOLLMSG &&
               FS_EPOLLRDHUP == EPOLLRDHUP && FS_EPOLLEXCLUSIVE == EPOLLEXCLUSIVE && FS_EPOLLWAKEUP == EPOLLWAKEUP &&
               FS_EPOLLONESHOT == EPOLLONESHOT && FS_EPOLLET == (uint32_t)EPOLLET, "constants");
_Static_assert(FS_EPOLL_CTL_ADD == EPOLL_CTL_ADD && FS_EPOLL_CTL_DEL == EPOLL_CTL_DEL &&
               FS_EPOLL_CTL_MOD == EPOLL_CTL_MOD && FS_EPOLL_CLOEXEC == EPOLL_CLOEXEC, "constants");
_Static_assert(sizeof(struct fs_epoll_event) == sizeof(struct epoll_event) &&
               offsetof(struct fs_epoll_event, data) == offsetof(struct epoll_event, data), "layout");
_Static_assert(sizeof(struct fs_timeval) == sizeof(struct timeval) &&
               offsetof(struct fs_timeval, tv_usec) == offsetof(struct timeval, tv_usec), "layout");
_Static_assert(sizeof(struct fs_iovec) == sizeof(struct iovec) &&
               offsetof(struct fs_iovec, iov_len) == offsetof(struct iovec, iov_len), "layout");
_Static_assert(sizeof(struct fs_msghdr) == sizeof(struct msghdr) &&
               offsetof(struct fs_msghdr, msg_namelen) == offsetof(struct msghdr, msg_namelen) &&
               offsetof(struct fs_msghdr, msg_iov) == offsetof(struct msghdr, msg_iov) &&
               offsetof(struct fs_msghdr, msg_iovlen) == offsetof(struct msghdr, msg_iovlen) &&
               offsetof(struct fs_msghdr, msg_control) == offsetof(struct msghdr, msg_control) &&
               offsetof(struct fs_msghdr, msg_controllen) == offsetof(struct msghdr, msg_controllen) &&
               offsetof(struct fs_msghdr, msg_flags) == offsetof(struct msghdr, msg_flags), "layout");
_Static_assert(FS_IOV_MAX == IOV_MAX, "constants");
_Static_assert(FS_SHUT_RD == SHUT_RD && FS_SHUT_WR == SHUT_WR && FS_SHUT_RDWR == SHUT_RDWR, "constants");
_Static_assert(sizeof(struct fs_sockaddr_in) == sizeof(struct sockaddr_in) &&
               offsetof(struct fs_sockaddr_in, sin_port) == offsetof(struct sockaddr_in, sin_port) &&
               offsetof(struct fs_sockaddr_in, sin_addr) == offsetof(struct sockaddr_in, sin_addr), "layout");
_Static_assert(sizeof(struct fs_sockaddr_in6) == sizeof(struct sockaddr_in6) &&
               offsetof(struct fs_sockaddr_in6, sin6_addr) == offsetof(struct sockaddr_in6, sin6_addr) &&
               offsetof(struct fs_sockaddr_in6, sin6_scope_id) == offsetof(struct sockaddr_in6, sin6_scope_id), "layout");
_Static_assert(sizeof(struct fs_pollfd) == sizeof(struct pollfd) && sizeof(struct fs_linger) == sizeof(struct linger),
               "layout");
_Static_assert(sizeof(struct fs_sockaddr_storage) == sizeof(struct sockaddr_storage) &&
               _Alignof(struct fs_sockaddr_storage) == _Alignof(struct sockaddr_storage), "layout");
_Static_assert(sizeof(fs_socklen_t) == sizeof(socklen_t) && sizeof(fs_ssize_t) == sizeof(ssize_t), "layout");

int fs_session_configure(const char *cap_name, uint32_t max_sockets, uint32_t ring_size)
{
    (void)cap_name;
    (void)max_sockets;
    (void)ring_size;
    return 0; /* nothing to configure on Linux */
}

int fs_session_close(void)
{
    return 0; /* sockets are the process's own on Linux */
}

int fs_session_stats(struct fs_session_stats *out)
{
    (void)out;
    errno = ENOSYS; /* Linux keeps no such counters */
    return -1;
}

int fs_socket(int domain, int type, int protocol) { return socket(domain, type | SOCK_CLOEXEC, protocol); }
int fs_bind(int fd, const struct fs_sockaddr *a, fs_socklen_t len) { return bind(fd, (const void *)a, len); }
int fs_listen(int fd, int backlog) { return listen(fd, backlog); }
int fs_accept(int fd, struct fs_sockaddr *a, fs_socklen_t *len) { return accept4(fd, (void *)a, len, SOCK_CLOEXEC); }
int fs_connect(int fd, const struct fs_sockaddr *a, fs_socklen_t len) { return connect(fd, (const void *)a, len); }
fs_ssize_t fs_send(int fd, const void *b, size_t n, int f) { return send(fd, b, n, f | MSG_NOSIGNAL); }
fs_ssize_t fs_recv(int fd, void *b, size_t n, int f) { return recv(fd, b, n, f); }
fs_ssize_t fs_sendto(int fd, const void *b, size_t n, int f, const struct fs_sockaddr *to, fs_socklen_t tl)
{
    return sendto(fd, b, n, f | MSG_NOSIGNAL, (const void *)to, tl);
}
fs_ssize_t fs_recvfrom(int fd, void *b, size_t n, int f, struct fs_sockaddr *from, fs_socklen_t *fl)
{
    return recvfrom(fd, b, n, f, (void *)from, fl);
}
int fs_shutdown(int fd, int how) { return shutdown(fd, how); }
int fs_close(int fd) { return close(fd); }
int fs_getsockname(int fd, struct fs_sockaddr *a, fs_socklen_t *l) { return getsockname(fd, (void *)a, l); }
int fs_getpeername(int fd, struct fs_sockaddr *a, fs_socklen_t *l) { return getpeername(fd, (void *)a, l); }
int fs_setsockopt(int fd, int lv, int nm, const void *v, fs_socklen_t l) { return setsockopt(fd, lv, nm, v, l); }
int fs_getsockopt(int fd, int lv, int nm, void *v, fs_socklen_t *l) { return getsockopt(fd, lv, nm, v, l); }
int fs_fcntl(int fd, int cmd, int arg) { return fcntl(fd, cmd, arg); }
int fs_poll(struct fs_pollfd *fds, unsigned long n, int t) { return poll((struct pollfd *)fds, n, t); }
fs_ssize_t fs_sendmsg(int fd, const struct fs_msghdr *m, int f)
{
    return sendmsg(fd, (const struct msghdr *)(const void *)m, f | MSG_NOSIGNAL);
}
fs_ssize_t fs_recvmsg(int fd, struct fs_msghdr *m, int f) { return recvmsg(fd, (struct msghdr *)(void *)m, f); }
int fs_epoll_create1(int flags) { return epoll_create1(flags | EPOLL_CLOEXEC); }
int fs_epoll_ctl(int epfd, int op, int fd, struct fs_epoll_event *e)
{
    return epoll_ctl(epfd, op, fd, (struct epoll_event *)(void *)e);
}
int fs_epoll_wait(int epfd, struct fs_epoll_event *ev, int max, int t)
{
    return epoll_wait(epfd, (struct epoll_event *)(void *)ev, max, t);
}

/*
 * attach.c - separate Linux processes as tasks.
 *
 * The root process listens on a unix SOCK_SEQPACKET socket. A process calls
 * sim_attach(path, name): it sends HELLO with the name of an external task
 * (created by the root with sim_task_create_external); the root answers with
 * the kernel state's memfd (SCM_RIGHTS) and the index of a fresh thread of
 * that task. From then on the process performs every mk_* call itself on the
 * shared state, exactly like an in-process task. The connection stays open:
 *  - FETCH: the process asks for the fd of a shared memory object; the root
 *    checks that the task holds a capability with the needed rights and sends
 *    a read-write fd, or a read-only one for a read-only capability.
 *  - GIVE: a process that created a shared memory object hands its fd to
 *    the root, which serves it to others.
 *  - End of connection = the process died: the root kills its task, so every
 *    peer waiting on it gets MK_EDEAD.
 */
#include "kstate.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define ATT_MAGIC 0x46525959u
enum { ATT_HELLO = 1, ATT_FETCH, ATT_GIVE, ATT_ACK };

typedef struct att_msg {
    uint32_t magic;
    uint32_t op;
    uint32_t obj;
    uint32_t flags; /* FETCH: 1 = writable */
    int32_t status;
    uint32_t thread;
    uint64_t size;
    char name[K_NAME_LEN];
} att_msg_t;

/* ---- fd passing --------------------------------------------------------------- */

static int att_send(int sock, const att_msg_t *m, int fd)
{
    struct iovec iov = {.iov_base = (void *)m, .iov_len = sizeof *m};
    union {
        char buf[CMSG_SPACE(sizeof(int))];
        struct cmsghdr align;
    } ctl;
    struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
    if (fd >= 0) {
        memset(&ctl, 0, sizeof ctl);
        mh.msg_control = ctl.buf;
        mh.msg_controllen = sizeof ctl.buf;
        struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int));
        memcpy(CMSG_DATA(c), &fd, sizeof fd);
    }
    ssize_t n;
    do
        n = sendmsg(sock, &mh, MSG_NOSIGNAL);
    while (n < 0 && errno == EINTR);
    return n == (ssize_t)sizeof *m ? 0 : -1;
}

/* Receive one message; *fd gets a passed fd or -1. Returns -1 on EOF/error
 * or a malformed message. */
static int att_recv(int sock, att_msg_t *m, int *fd)
{
    struct iovec iov = {.iov_base = m, .iov_len = sizeof *m};
    union {
        char buf[CMSG_SPACE(sizeof(int))];
        struct cmsghdr align;
    } ctl;
    struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.buf,
                        .msg_controllen = sizeof ctl.buf};
    ssize_t n;
    do
        n = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC);
    while (n < 0 && errno == EINTR);
    *fd = -1;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); n > 0 && c; c = CMSG_NXTHDR(&mh, c))
        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS &&
            c->cmsg_len == CMSG_LEN(sizeof(int)))
            memcpy(fd, CMSG_DATA(c), sizeof *fd);
    if (n != (ssize_t)sizeof *m || (mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) || m->magic != ATT_MAGIC) {
        if (*fd >= 0)
            close(*fd);
        *fd = -1;
        return -1;
    }
    m->name[K_NAME_LEN - 1] = '\0';
    return 0;
}

/* ---- Root side -------------------------------------------------------------- */

typedef struct att_conn {
    int sock;
    uint32_t task;
} att_conn_t;

/* Does `task` hold a shared memory capability to obj with `rights`? */
static bool task_holds_shm(uint32_t task, uint32_t obj, uint32_t rights)
{
    k_task_t *tk = &K->tasks[task];
    for (mk_cap_t s = 1; s < K_CSPACE_SLOTS; s++) {
        k_cap_t *c = &tk->cspace[s];
        if (c->type == MK_OBJ_SHM && c->obj == obj && (c->rights & rights) == rights)
            return true;
    }
    return false;
}

static void serve_fetch(att_conn_t *cn, const att_msg_t *m)
{
    bool writable = m->flags & 1;
    uint32_t rights = MK_RIGHT_READ | (writable ? MK_RIGHT_WRITE : 0);
    att_msg_t a = {.magic = ATT_MAGIC, .op = ATT_ACK, .obj = m->obj, .status = MK_ERIGHTS};
    int fd = -1;
    if (m->obj > 0 && m->obj < K_MAX_OBJS) {
        k_lock();
        bool ok = K->tasks[cn->task].state == KT_RUNNING && task_holds_shm(cn->task, m->obj, rights);
        uint32_t gen = K->objs[m->obj].gen;
        k_unlock();
        int rw = ok ? k_shm_fd(m->obj, gen, true) : -1;
        if (rw >= 0 && !writable) {
            /* Reopen read-only: the process can then never write it. */
            char path[64];
            snprintf(path, sizeof path, "/proc/self/fd/%d", rw);
            fd = open(path, O_RDONLY | O_CLOEXEC);
            close(rw);
        } else {
            fd = rw;
        }
        if (ok)
            a.status = fd >= 0 ? MK_OK : MK_EIO;
    }
    att_send(cn->sock, &a, a.status == MK_OK ? fd : -1);
    if (fd >= 0)
        close(fd);
}

static void serve_give(att_conn_t *cn, const att_msg_t *m, int fd)
{
    att_msg_t a = {.magic = ATT_MAGIC, .op = ATT_ACK, .obj = m->obj, .status = MK_EINVAL};
    if (fd >= 0 && m->obj > 0 && m->obj < K_MAX_OBJS) {
        k_lock();
        bool ok = task_holds_shm(cn->task, m->obj, 0);
        uint32_t gen = K->objs[m->obj].gen;
        k_unlock();
        if (ok) {
            k_shm_adopt_fd(m->obj, gen, true, fd);
            fd = -1;
            a.status = MK_OK;
        }
    }
    if (fd >= 0)
        close(fd);
    att_send(cn->sock, &a, -1);
}

static void *conn_thread(void *p)
{
    att_conn_t *cn = p;
    att_msg_t m;
    int fd;
    while (att_recv(cn->sock, &m, &fd) == 0) {
        if (m.op == ATT_FETCH) {
            if (fd >= 0)
                close(fd);
            serve_fetch(cn, &m);
        } else if (m.op == ATT_GIVE) {
            serve_give(cn, &m, fd);
        } else {
            if (fd >= 0)
                close(fd);
            break; /* protocol violation: treat as death */
        }
    }
    k_lock();
    k_task_kill(cn->task, -1, true);
    k_unlock();
    close(cn->sock);
    free(cn);
    return NULL;
}

static void handshake(int sock)
{
    att_msg_t m, a = {.magic = ATT_MAGIC, .op = ATT_ACK, .status = MK_ENOENT};
    int fd;
    if (att_recv(sock, &m, &fd) != 0 || m.op != ATT_HELLO) {
        if (fd >= 0)
            close(fd);
        close(sock);
        return;
    }
    if (fd >= 0)
        close(fd);
    struct ucred cred;
    socklen_t cl = sizeof cred;
    if (getsockopt(sock, SOL_SOCKET, SO_PEERCRED, &cred, &cl) != 0)
        cred.pid = 0;
    uint32_t task = 0, thread = 0;
    k_lock();
    for (uint32_t i = 1; i < K_MAX_TASKS; i++) {
        k_task_t *tk = &K->tasks[i];
        if (tk->state == KT_CREATED && tk->external && strcmp(tk->name, m.name) == 0) {
            thread = k_thread_alloc(i);
            if (thread == 0) {
                a.status = MK_ENOMEM;
                break;
            }
            tk->state = KT_RUNNING;
            tk->pid = cred.pid;
            task = i;
            a.status = MK_OK;
            break;
        }
    }
    k_unlock();
    a.thread = thread;
    a.size = sizeof(k_state_t);
    att_conn_t *cn = task ? malloc(sizeof *cn) : NULL;
    pthread_t pt;
    if (task && (cn == NULL || att_send(sock, &a, k_kernel_fd()) != 0)) {
        k_lock();
        k_task_kill(task, -1, true);
        k_unlock();
        free(cn);
        close(sock);
        return;
    }
    if (!task) {
        att_send(sock, &a, -1);
        close(sock);
        return;
    }
    cn->sock = sock;
    cn->task = task;
    if (pthread_create(&pt, NULL, conn_thread, cn) != 0) {
        k_lock();
        k_task_kill(task, -1, true);
        k_unlock();
        close(sock);
        free(cn);
        return;
    }
    pthread_detach(pt);
}

static void *listen_thread(void *p)
{
    int ls = (int)(intptr_t)p;
    for (;;) {
        int s = accept4(ls, NULL, NULL, SOCK_CLOEXEC);
        if (s < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            break;
        }
        handshake(s);
    }
    return NULL;
}

mk_err_t sim_listen(const char *path)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    if (K == NULL || !k_is_root_process || path == NULL || strlen(path) >= sizeof sa.sun_path)
        return MK_EINVAL;
    strcpy(sa.sun_path, path);
    int s = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
    if (s < 0)
        return MK_EIO;
    unlink(path);
    if (bind(s, (struct sockaddr *)&sa, sizeof sa) != 0 || listen(s, 16) != 0) {
        k_warn("cannot listen on %s: %s", path, strerror(errno));
        close(s);
        return MK_EIO;
    }
    pthread_t pt;
    if (pthread_create(&pt, NULL, listen_thread, (void *)(intptr_t)s) != 0) {
        close(s);
        return MK_EIO;
    }
    pthread_detach(pt);
    return MK_OK;
}

/* ---- Attached side -------------------------------------------------------- */

static int att_sock = -1;
static pthread_mutex_t att_lock = PTHREAD_MUTEX_INITIALIZER;

static int att_request(att_msg_t *m, int send_fd, int *recv_fd)
{
    pthread_mutex_lock(&att_lock);
    int r = -1;
    if (att_sock >= 0 && att_send(att_sock, m, send_fd) == 0 && att_recv(att_sock, m, recv_fd) == 0)
        r = m->status == MK_OK ? 0 : -1;
    pthread_mutex_unlock(&att_lock);
    return r;
}

int k_attach_fetch_fd(uint32_t obj, bool writable)
{
    att_msg_t m = {.magic = ATT_MAGIC, .op = ATT_FETCH, .obj = obj, .flags = writable};
    int fd = -1;
    if (att_request(&m, -1, &fd) != 0) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    return fd;
}

int k_attach_give_fd(uint32_t obj, int fd)
{
    att_msg_t m = {.magic = ATT_MAGIC, .op = ATT_GIVE, .obj = obj};
    int unused = -1;
    int r = att_request(&m, fd, &unused);
    if (unused >= 0)
        close(unused);
    return r;
}

mk_err_t sim_attach(const char *path, const char *name)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    if (K != NULL || path == NULL || strlen(path) >= sizeof sa.sun_path || k_task_check_name(name))
        return MK_EINVAL;
    strcpy(sa.sun_path, path);
    int s = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
    if (s < 0)
        return MK_EIO;
    if (connect(s, (struct sockaddr *)&sa, sizeof sa) != 0) {
        close(s);
        return MK_EIO;
    }
    att_msg_t m = {.magic = ATT_MAGIC, .op = ATT_HELLO};
    strncpy(m.name, name, K_NAME_LEN - 1);
    int fd = -1;
    if (att_send(s, &m, -1) != 0 || att_recv(s, &m, &fd) != 0 || m.status != MK_OK || fd < 0 ||
        m.size != sizeof(k_state_t)) {
        mk_err_t err = m.status != MK_OK && m.magic == ATT_MAGIC ? m.status : MK_EIO;
        if (fd >= 0)
            close(fd);
        close(s);
        return err;
    }
    void *p = mmap(NULL, sizeof(k_state_t), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    close(fd);
    if (p == MAP_FAILED || ((k_state_t *)p)->magic != K_MAGIC || ((k_state_t *)p)->version != K_VERSION) {
        if (p != MAP_FAILED)
            munmap(p, sizeof(k_state_t));
        close(s);
        return MK_EIO;
    }
    K = p;
    att_sock = s;
    k_self = m.thread;
    return MK_OK;
}

/*
 * shm.c - shared memory objects.
 *
 * Each object is a memfd. The process that created the kernel state holds an
 * fd for every object; an attached process asks the simulator for an fd the
 * first time it maps an object (attach.c), and gets a read-only fd when its
 * capability only allows reading, so that even mprotect cannot make a
 * read-only mapping writable.
 *
 * Mappings belong to the task that made them, as on a real kernel: each
 * process records its tasks' mappings, mk_shm_unmap only takes back one of
 * the calling task's own, and when a dead task's last thread has left the
 * kernel (so none of its code can touch them any more) the rest are
 * unmapped (k_shm_reap).
 */
#include "kstate.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define K_SHM_MAX (1ull << 30) /* 1 GiB per object */

/* Process-local fd caches, one for read-write and one for read-only fds,
 * keyed by object index AND generation: an index is reused by later
 * objects, and a stale entry must never map the old object's memory. A
 * read-only capability is served only from the read-only cache (in an
 * attached process, a read-only fd from the root), so a cached writable fd
 * can never make a read-only mapping writable. */
typedef struct fd_entry {
    int fd1; /* fd + 1, 0 = none */
    uint32_t gen;
} fd_entry_t;

static pthread_mutex_t fd_lock = PTHREAD_MUTEX_INITIALIZER;
static fd_entry_t fds[2][K_MAX_OBJS]; /* [writable] */

static void entry_drop(fd_entry_t *e)
{
    if (e->fd1)
        close(e->fd1 - 1);
    e->fd1 = 0;
    e->gen = 0;
}

/* ---- Process-local record of mappings ------------------------------------------ */

typedef struct map_rec {
    void *addr;
    size_t len;
    uint32_t task;
    uint64_t serial; /* the task's incarnation: slots are reused */
} map_rec_t;

static pthread_mutex_t map_lock = PTHREAD_MUTEX_INITIALIZER;
static map_rec_t *maps;
static size_t nmaps, maps_cap;

static bool map_record(void *addr, size_t len, uint32_t task, uint64_t serial)
{
    pthread_mutex_lock(&map_lock);
    bool ok = true;
    if (nmaps == maps_cap) {
        size_t cap = maps_cap ? 2 * maps_cap : 16;
        map_rec_t *m = realloc(maps, cap * sizeof *m);
        if (m) {
            maps = m;
            maps_cap = cap;
        } else {
            ok = false;
        }
    }
    if (ok)
        maps[nmaps++] = (map_rec_t){addr, len, task, serial};
    pthread_mutex_unlock(&map_lock);
    return ok;
}

/* Remove the record of (addr, len) made by (task, serial); false if none. */
static bool map_forget(void *addr, size_t len, uint32_t task, uint64_t serial)
{
    bool found = false;
    pthread_mutex_lock(&map_lock);
    for (size_t i = 0; i < nmaps; i++) {
        map_rec_t *r = &maps[i];
        if (r->addr == addr && r->len == len && r->task == task && r->serial == serial) {
            *r = maps[--nmaps];
            found = true;
            break;
        }
    }
    pthread_mutex_unlock(&map_lock);
    return found;
}

/* Lock held: the record's task is over (its slot freed or reused, or dead
 * with no thread left), so none of its code can touch the mapping. */
static bool task_over(const map_rec_t *r)
{
    const k_task_t *tk = &K->tasks[r->task];
    return tk->serial != r->serial || (tk->state == KT_DEAD && tk->nthreads == 0);
}

/* Lock held: unmap every recorded mapping whose task is over. Runs when a
 * dead task's last thread leaves (k_thread_release) and on every map, which
 * also catches tasks whose last thread was released by another process. */
void k_shm_reap(void)
{
    pthread_mutex_lock(&map_lock);
    for (size_t i = 0; i < nmaps;) {
        if (task_over(&maps[i])) {
            munmap(maps[i].addr, maps[i].len);
            maps[i] = maps[--nmaps];
        } else {
            i++;
        }
    }
    pthread_mutex_unlock(&map_lock);
}

size_t sim_shm_mappings(void)
{
    pthread_mutex_lock(&map_lock);
    size_t n = nmaps;
    pthread_mutex_unlock(&map_lock);
    return n;
}

/* ---- Objects ------------------------------------------------------------------------- */

int k_shm_create_fd(uint64_t size)
{
    int fd = memfd_create("ferry-shm", MFD_CLOEXEC);
    if (fd < 0)
        return -1;
    if (ftruncate(fd, (off_t)size) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

void k_shm_adopt_fd(uint32_t obj, uint32_t gen, bool writable, int fd)
{
    pthread_mutex_lock(&fd_lock);
    fd_entry_t *e = &fds[writable][obj];
    entry_drop(e);
    e->fd1 = fd + 1;
    e->gen = gen;
    pthread_mutex_unlock(&fd_lock);
}

void k_shm_forget(uint32_t obj)
{
    pthread_mutex_lock(&fd_lock);
    entry_drop(&fds[0][obj]);
    entry_drop(&fds[1][obj]);
    pthread_mutex_unlock(&fd_lock);
}

/* A new fd (the caller closes it) for mapping generation `gen` of `obj`,
 * or -1. The root process holds a read-write fd of every object and uses
 * it for both kinds of mapping (it is trusted); an attached process caches
 * what the root sent it, per kind. */
int k_shm_fd(uint32_t obj, uint32_t gen, bool writable)
{
    bool kind = writable || k_is_root_process;
    pthread_mutex_lock(&fd_lock);
    fd_entry_t *e = &fds[kind][obj];
    if (e->fd1 && e->gen != gen)
        entry_drop(e); /* an earlier object in this slot */
    int fd = e->fd1 ? dup(e->fd1 - 1) : -1;
    pthread_mutex_unlock(&fd_lock);
    if (fd >= 0 || k_is_root_process)
        return fd;
    fd = k_attach_fetch_fd(obj, writable);
    if (fd >= 0) {
        int keep = dup(fd); /* later maps of the same object need no round trip */
        if (keep >= 0)
            k_shm_adopt_fd(obj, gen, writable, keep);
    }
    return fd;
}

mk_err_t mk_shm_create(size_t size, mk_cap_t *out)
{
    if (out == NULL || size == 0 || size > K_SHM_MAX)
        return MK_EINVAL;
    long page = sysconf(_SC_PAGESIZE);
    uint64_t rounded = ((uint64_t)size + (uint64_t)page - 1) & ~((uint64_t)page - 1);
    int fd = k_shm_create_fd(rounded);
    if (fd < 0)
        return MK_ENOMEM;
    mk_err_t err;
    k_lock();
    k_thread_t *t = k_current(&err);
    uint32_t o = t ? k_obj_alloc(MK_OBJ_SHM) : 0;
    if (t && o == 0)
        err = MK_ENOMEM;
    uint32_t gen = 0;
    if (o) {
        gen = K->objs[o].gen;
        K->objs[o].u.shm.size = rounded;
        err = k_cap_insert(k_task_of(t), MK_OBJ_SHM, MK_RIGHTS_ALL, o, 0, out);
        if (err)
            K->objs[o].type = MK_OBJ_NONE;
    }
    k_unlock();
    if (err) {
        close(fd);
        return err;
    }
    /* The root process serves every object's fd to attached processes, so an
     * attached creator hands it over before anyone can be given the cap. */
    if (!k_is_root_process && k_attach_give_fd(o, fd) != 0) {
        close(fd);
        mk_cap_delete(*out);
        return MK_EIO;
    }
    k_shm_adopt_fd(o, gen, true, fd);
    return MK_OK;
}

mk_err_t mk_shm_map(mk_cap_t shm, uint32_t rights, void **addr, size_t *size)
{
    if (addr == NULL || (rights != MK_RIGHT_READ && rights != (MK_RIGHT_READ | MK_RIGHT_WRITE)))
        return MK_EINVAL;
    mk_err_t err;
    k_lock();
    k_thread_t *t = k_current(&err);
    k_cap_t *c;
    uint32_t obj = 0, gen = 0, task = 0;
    uint64_t len = 0, serial = 0;
    if (t && (err = k_cap_get(k_task_of(t), shm, MK_OBJ_SHM, rights, &c)) == MK_OK) {
        obj = c->obj;
        gen = K->objs[obj].gen;
        len = K->objs[obj].u.shm.size;
        task = t->task;
        serial = k_task_of(t)->serial;
        k_shm_reap();
    }
    k_unlock();
    if (err)
        return err;
    bool writable = (rights & MK_RIGHT_WRITE) != 0;
    int fd = k_shm_fd(obj, gen, writable);
    if (fd < 0)
        return MK_EIO;
    void *p = mmap(NULL, len, writable ? PROT_READ | PROT_WRITE : PROT_READ, MAP_SHARED, fd, 0);
    close(fd);
    if (p == MAP_FAILED)
        return MK_ENOMEM;
    if (!map_record(p, len, task, serial)) {
        munmap(p, len);
        return MK_ENOMEM;
    }
    *addr = p;
    if (size)
        *size = len;
    return MK_OK;
}

mk_err_t mk_shm_unmap(void *addr, size_t size)
{
    if (addr == NULL || size == 0 || K == NULL || k_self == 0 || k_self >= K_MAX_THREADS)
        return MK_EINVAL;
    /* A thread of a dead task may still give back its own mappings. */
    k_lock();
    const k_thread_t *t = &K->threads[k_self];
    bool known = t->state != KTH_FREE;
    uint32_t task = t->task;
    uint64_t serial = known ? K->tasks[task].serial : 0;
    k_unlock();
    if (!known || !map_forget(addr, size, task, serial))
        return MK_EINVAL; /* not a mapping this task made with mk_shm_map */
    munmap(addr, size);
    return MK_OK;
}

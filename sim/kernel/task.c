/*
 * task.c - tasks and threads: creation, start, exit, death, and the
 * simulator's start-up and shutdown.
 *
 * A task's death (its main returns, mk_task_exit, or its attached process
 * dies) is one kernel operation: every wait that involves the task ends with
 * MK_EDEAD, its capabilities are deleted (which kills endpoints it alone
 * could receive on and answers every reply capability it held with
 * MK_EDEAD), and mk_task_wait returns.
 */
#include "kstate.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

/* Process-local record of host threads started in this process. */
typedef struct host_thread {
    pthread_t pt;
    mk_thread_fn_t fn;
    void *arg;
    mk_task_main_t main;
    int argc;
    char **argv;
} host_thread_t;

static host_thread_t host[K_MAX_THREADS];
static int k_memfd = -1;
bool k_is_root_process; /* this process created the kernel state */

int k_kernel_fd(void) { return k_memfd; }

/* ---- Threads ---------------------------------------------------------------- */

uint32_t k_thread_alloc(uint32_t task)
{
    for (uint32_t i = 1; i < K_MAX_THREADS; i++) {
        k_thread_t *t = &K->threads[i];
        if (t->state != KTH_FREE)
            continue;
        uint64_t gen = t->reply_gen; /* stale reply caps may name this slot */
        memset(t, 0, sizeof *t);
        t->reply_gen = gen;
        t->state = KTH_RUNNING;
        t->task = task;
        K->tasks[task].nthreads++;
        return i;
    }
    return 0;
}

static void task_slot_maybe_free(uint32_t task)
{
    k_task_t *tk = &K->tasks[task];
    if (tk->state == KT_DEAD && tk->nthreads == 0 && tk->obj == 0)
        memset(tk, 0, sizeof *tk);
}

void k_thread_release(k_thread_t *t)
{
    uint32_t task = t->task;
    if (t->bound_ntfn)
        K->objs[t->bound_ntfn].u.ntfn.bound = 0;
    uint64_t gen = t->reply_gen; /* stale reply caps may name this slot */
    memset(t, 0, sizeof *t);     /* state = KTH_FREE */
    t->reply_gen = gen;
    K->tasks[task].nthreads--;
    if (K->tasks[task].nthreads == 0 && K->tasks[task].state == KT_DEAD)
        k_shm_reap(); /* none of its code runs any more */
    task_slot_maybe_free(task);
}

void k_task_obj_gone(uint32_t task)
{
    K->tasks[task].obj = 0;
    /* A task that was never started (or never attached) and that nobody can
     * start any more: it ends here, with the capabilities it was given. */
    if (K->tasks[task].state == KT_CREATED)
        k_task_kill(task, -1, true);
    task_slot_maybe_free(task);
}

static void *thread_entry(void *p)
{
    uint32_t idx = (uint32_t)(uintptr_t)p;
    host_thread_t *h = &host[idx];
    k_self = idx;
    if (h->main) {
        int status = h->main(h->argc, h->argv);
        for (int i = 0; i < h->argc; i++)
            free(h->argv[i]);
        free(h->argv);
        mk_task_exit(status);
    }
    h->fn(h->arg);
    k_lock();
    k_thread_t *t = &K->threads[idx];
    if (t->state == KTH_ZOMBIE || K->tasks[t->task].state == KT_DEAD)
        k_thread_release(t); /* nobody will join a thread of a dead task */
    else
        t->state = KTH_EXITED;
    k_unlock();
    return NULL;
}

mk_err_t mk_thread_create(mk_thread_fn_t fn, void *arg, uint32_t *tid)
{
    if (fn == NULL)
        return MK_EINVAL;
    mk_err_t err;
    k_lock();
    k_thread_t *t = k_current(&err);
    uint32_t idx = t ? k_thread_alloc(t->task) : 0;
    if (t && idx == 0)
        err = MK_ENOMEM;
    k_unlock();
    if (idx == 0)
        return err;
    host[idx] = (host_thread_t){.fn = fn, .arg = arg};
    if (pthread_create(&host[idx].pt, NULL, thread_entry, (void *)(uintptr_t)idx) != 0) {
        k_lock();
        k_thread_release(&K->threads[idx]);
        k_unlock();
        return MK_ENOMEM;
    }
    if (tid)
        *tid = idx;
    return MK_OK;
}

mk_err_t mk_thread_join(uint32_t tid)
{
    mk_err_t err;
    k_lock();
    k_thread_t *t = k_current(&err);
    if (t && (tid == 0 || tid >= K_MAX_THREADS || tid == k_self || host[tid].fn == NULL ||
              K->threads[tid].state == KTH_FREE || K->threads[tid].task != t->task))
        err = MK_EINVAL;
    k_unlock();
    if (err)
        return err;
    pthread_join(host[tid].pt, NULL);
    host[tid].fn = NULL;
    k_lock();
    if (K->threads[tid].state == KTH_EXITED)
        k_thread_release(&K->threads[tid]);
    k_unlock();
    return MK_OK;
}

/* ---- Tasks ------------------------------------------------------------------ */

mk_err_t k_task_check_name(const char *name)
{
    if (name == NULL || name[0] == '\0' || strlen(name) >= K_NAME_LEN)
        return MK_EINVAL;
    return MK_OK;
}

uint32_t k_task_alloc(const char *name, bool external)
{
    for (uint32_t i = 1; i < K_MAX_TASKS; i++) {
        k_task_t *tk = &K->tasks[i];
        if (tk->state != KT_FREE)
            continue;
        memset(tk, 0, sizeof *tk);
        tk->state = KT_CREATED;
        tk->external = external;
        tk->serial = ++K->task_serial;
        strncpy(tk->name, name, K_NAME_LEN - 1);
        return i;
    }
    return 0;
}

static mk_err_t task_create(const char *name, bool external, mk_cap_t *out)
{
    if (out == NULL || k_task_check_name(name))
        return MK_EINVAL;
    mk_err_t err;
    k_lock();
    k_thread_t *t = k_current(&err);
    if (t == NULL)
        goto out;
    uint32_t ti = k_task_alloc(name, external);
    uint32_t o = ti ? k_obj_alloc(MK_OBJ_TASK) : 0;
    if (o == 0) {
        if (ti)
            K->tasks[ti].state = KT_FREE;
        err = MK_ENOMEM;
        goto out;
    }
    K->objs[o].u.task.task = ti;
    K->tasks[ti].obj = o;
    err = k_cap_insert(k_task_of(t), MK_OBJ_TASK, MK_RIGHTS_ALL, o, 0, out);
    if (err) {
        K->objs[o].type = MK_OBJ_NONE;
        K->tasks[ti].state = KT_FREE;
    }
out:
    k_unlock();
    return err;
}

mk_err_t mk_task_create(const char *name, mk_cap_t *task)
{
    return task_create(name, false, task);
}

mk_err_t sim_task_create_external(const char *name, mk_cap_t *task)
{
    return task_create(name, true, task);
}

static mk_err_t task_get(k_thread_t *t, mk_cap_t cap, k_task_t **out)
{
    k_cap_t *c;
    mk_err_t err = k_cap_get(k_task_of(t), cap, MK_OBJ_TASK, 0, &c);
    if (err == MK_OK)
        *out = &K->tasks[K->objs[c->obj].u.task.task];
    return err;
}

mk_err_t mk_task_give(mk_cap_t task, mk_cap_t cap, uint32_t rights, mk_badge_t badge,
                      const char *name, mk_cap_t *slot_in_task)
{
    if ((rights & ~MK_RIGHTS_ALL) || (name && k_task_check_name(name)))
        return MK_EINVAL;
    mk_err_t err;
    k_lock();
    k_thread_t *t = k_current(&err);
    k_task_t *to;
    k_cap_t *c;
    if (t == NULL || (err = task_get(t, task, &to)) ||
        (err = k_cap_get(k_task_of(t), cap, MK_OBJ_NONE, rights, &c)))
        goto out;
    if (to->state == KT_DEAD) {
        err = MK_EDEAD;
        goto out;
    }
    if (c->type == MK_OBJ_REPLY || c->type == MK_OBJ_TASK) {
        err = MK_ETYPE;
        goto out;
    }
    k_name_t *free_name = NULL;
    if (name) {
        for (uint32_t i = 0; i < K_MAX_NAMES; i++) {
            if (to->names[i].slot == 0 && free_name == NULL)
                free_name = &to->names[i];
            if (to->names[i].slot && strcmp(to->names[i].name, name) == 0) {
                err = MK_EBUSY; /* a task's names are unique */
                goto out;
            }
        }
        if (free_name == NULL) {
            err = MK_ENOSPC;
            goto out;
        }
    }
    mk_cap_t slot;
    uint64_t b;
    if ((err = k_badge_for_copy(c, badge, &b)) != MK_OK)
        goto out;
    err = k_cap_insert(to, c->type, rights, c->obj, b, &slot);
    if (err)
        goto out;
    if (free_name) {
        strncpy(free_name->name, name, K_NAME_LEN - 1);
        free_name->slot = slot;
        to->cspace[slot].named = 1; /* its removal clears the name */
    }
    if (slot_in_task)
        *slot_in_task = slot;
out:
    k_unlock();
    return err;
}

mk_err_t mk_task_start(mk_cap_t task, mk_task_main_t main, int argc, char *const argv[])
{
    if (main == NULL || argc < 0 || (argc > 0 && argv == NULL))
        return MK_EINVAL;
    mk_err_t err;
    k_lock();
    k_thread_t *t = k_current(&err);
    k_task_t *to;
    uint32_t idx = 0;
    if (t == NULL || (err = task_get(t, task, &to)))
        goto out;
    if (to->state != KT_CREATED || to->external) {
        err = to->state == KT_DEAD ? MK_EDEAD : MK_EBUSY;
        goto out;
    }
    idx = k_thread_alloc((uint32_t)(to - K->tasks));
    if (idx == 0) {
        err = MK_ENOMEM;
        goto out;
    }
    to->state = KT_RUNNING;
    to->pid = getpid();
out:
    k_unlock();
    if (idx == 0)
        return err;
    char **copy = calloc((size_t)argc + 1, sizeof *copy);
    for (int i = 0; copy && i < argc; i++)
        copy[i] = strdup(argv[i]);
    host[idx] = (host_thread_t){.main = main, .argc = argc, .argv = copy};
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    int r = pthread_create(&host[idx].pt, &attr, thread_entry, (void *)(uintptr_t)idx);
    pthread_attr_destroy(&attr);
    if (r != 0) {
        k_lock();
        k_task_kill(K->threads[idx].task, -1, false);
        k_thread_release(&K->threads[idx]);
        k_unlock();
        return MK_ENOMEM;
    }
    return MK_OK;
}

mk_err_t mk_task_kill(mk_cap_t task, int status)
{
    mk_err_t err;
    k_lock();
    k_thread_t *t = k_current(&err);
    k_task_t *tk;
    if (t && (err = task_get(t, task, &tk)) == MK_OK) {
        uint32_t ti = (uint32_t)(tk - K->tasks);
        if (ti == t->task)
            err = MK_EINVAL; /* a task ends itself with mk_task_exit */
        else if (tk->state == KT_DEAD)
            err = MK_EDEAD;
        else
            k_task_kill(ti, status, false);
    }
    k_unlock();
    return err;
}

mk_err_t mk_task_wait(mk_cap_t task, int *status, uint64_t timeout_ns)
{
    uint64_t deadline = k_deadline(timeout_ns);
    mk_err_t err;
    k_lock();
    k_thread_t *t = k_current(&err);
    k_task_t *tk = NULL;
    if (t)
        err = task_get(t, task, &tk);
    k_unlock();
    if (err)
        return err;
    /* The caller holds the task capability, so the slot is not reused. */
    if (!k_futex_wait(&tk->exited, 0, deadline))
        return MK_ETIMEDOUT;
    if (status)
        *status = tk->exit_status;
    return MK_OK;
}

void k_task_kill(uint32_t task, int status, bool process_gone)
{
    k_task_t *tk = &K->tasks[task];
    if (tk->state == KT_DEAD && process_gone) {
        /* Killed earlier while its process lived: the process has now gone,
         * so its remaining (zombie) thread slots can go too. */
        for (uint32_t i = 1; i < K_MAX_THREADS; i++)
            if (K->threads[i].state != KTH_FREE && K->threads[i].task == task)
                k_thread_release(&K->threads[i]);
        return;
    }
    if (tk->state == KT_DEAD || tk->state == KT_FREE)
        return;
    tk->state = KT_DEAD;
    tk->exit_status = status;
    for (uint32_t i = 1; i < K_MAX_THREADS; i++) {
        k_thread_t *th = &K->threads[i];
        if (th->state == KTH_FREE || th->task != task)
            continue;
        bool blocked = th->state >= KTH_BLOCKED_SEND && th->state <= KTH_BLOCKED_NTFN;
        bool in_reply = th->state == KTH_BLOCKED_REPLY;
        k_cancel_wait(th);
        if (in_reply)
            k_reply_end(th, KR_CALLER_DEAD); /* the server's reply gets MK_EDEAD */
        if (th->bound_ntfn) {
            K->objs[th->bound_ntfn].u.ntfn.bound = 0;
            th->bound_ntfn = 0;
        }
        if (process_gone || th->state == KTH_EXITED || i == k_self) {
            if (i != k_self)
                k_thread_release(th);
            continue;
        }
        if (blocked)
            k_wake(th, MK_EDEAD);
        th->state = KTH_ZOMBIE;
    }
    k_death_notices(tk); /* servers that asked learn which of their clients died */
    for (mk_cap_t s = 1; s < K_CSPACE_SLOTS; s++)
        if (tk->cspace[s].type != MK_OBJ_NONE)
            k_cap_remove(tk, s);
    atomic_store_explicit(&tk->exited, 1, memory_order_release);
    k_futex_wake_all(&tk->exited);
}

void mk_task_exit(int status)
{
    mk_err_t err;
    k_lock();
    k_thread_t *t = k_current(&err);
    if (t == NULL && k_self && K->threads[k_self].state != KTH_FREE)
        t = &K->threads[k_self]; /* already dead: just leave */
    if (t) {
        k_task_kill(t->task, status, false);
        k_thread_release(t);
    }
    k_unlock();
    k_self = 0;
    if (!k_is_root_process)
        exit(status & 0xff);
    pthread_exit(NULL);
}

const char *mk_task_name(void)
{
    if (K == NULL || k_self == 0 || k_self >= K_MAX_THREADS)
        return "?";
    return K->tasks[K->threads[k_self].task].name;
}

/* ---- Simulator start-up and shutdown -------------------------------------- */

static uint64_t spin_from_env(void)
{
    const char *s = getenv("FERRY_SPIN_NS");
    if (s == NULL || *s == '\0')
        return 20000;
    char *end;
    unsigned long long v = strtoull(s, &end, 10);
    return *end == '\0' ? (uint64_t)v : 20000;
}

void k_state_init_local(void)
{
    K->spin_ns = spin_from_env();
}

mk_err_t sim_init(void)
{
    if (K != NULL)
        return MK_EBUSY;
    int fd = memfd_create("ferry-kernel", MFD_CLOEXEC);
    if (fd < 0 || ftruncate(fd, sizeof(k_state_t)) != 0) {
        k_warn("cannot create the kernel state: %s", strerror(errno));
        if (fd >= 0)
            close(fd);
        return MK_EIO;
    }
    void *p = mmap(NULL, sizeof(k_state_t), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED) {
        close(fd);
        return MK_EIO;
    }
    K = p;
    k_memfd = fd;
    k_is_root_process = true;
    K->magic = K_MAGIC;
    K->version = K_VERSION;
    K->size = (uint32_t)sizeof(k_state_t);
    pthread_mutexattr_t ma;
    pthread_mutexattr_init(&ma);
    pthread_mutexattr_setpshared(&ma, PTHREAD_PROCESS_SHARED);
    pthread_mutexattr_setrobust(&ma, PTHREAD_MUTEX_ROBUST);
    pthread_mutex_init(&K->lock, &ma);
    pthread_mutexattr_destroy(&ma);
    k_state_init_local();
    uint32_t root = k_task_alloc("init", false);
    K->tasks[root].state = KT_RUNNING;
    K->tasks[root].pid = getpid();
    k_self = k_thread_alloc(root);
    return MK_OK;
}

void sim_shutdown(void)
{
    if (K == NULL)
        return;
    k_lock();
    uint32_t root = k_self ? K->threads[k_self].task : 0;
    for (uint32_t i = 1; i < K_MAX_TASKS; i++)
        if (i != root)
            k_task_kill(i, -1, false);
    k_unlock();
    /* Give in-process threads, now returning MK_EDEAD, a bounded time to
     * leave before the memory goes away. */
    for (int n = 0; n < 500; n++) {
        uint32_t live = 0;
        k_lock();
        for (uint32_t i = 1; i < K_MAX_THREADS; i++)
            live += K->threads[i].state == KTH_ZOMBIE;
        k_unlock();
        if (live == 0)
            break;
        mk_sleep_ns(2000000);
    }
}

/*
 * kernel.c - the simulator kernel's core: state creation, the big kernel
 * lock, the wait/wake handshake on futexes, wait queues, capabilities, time.
 *
 * Wait/wake handshake (per thread, in shared memory):
 *   waiter (lock held)  : state = BLOCKED_*, wake = 0, queue itself; unlock
 *   waiter              : spin on `wake` for up to its spin budget
 *                         (adaptive, at most spin_ns: see k_block), then
 *                         sleeping = 1; fence(seq_cst); futex_wait(wake, 0)
 *   waker  (lock held)  : fill msg/result; wake = 1 (release);
 *                         fence(seq_cst); if sleeping: futex_wake(wake)
 * The two seq_cst fences make this a Dekker pair: either the waker sees
 * sleeping == 1 and wakes, or the waiter's futex_wait sees wake == 1 and
 * returns at once. No wake-up is lost and a sleeping waiter uses no CPU.
 */
#include "kstate.h"

#include <errno.h>
#include <linux/futex.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

k_state_t *K;
__thread uint32_t k_self;

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__) || defined(__arm__)
    __asm__ __volatile__("yield" ::: "memory");
#endif
}

/* ---- Time ---------------------------------------------------------------- */

uint64_t mk_time_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

void mk_sleep_ns(uint64_t ns)
{
    struct timespec ts = {.tv_sec = (time_t)(ns / 1000000000ull), .tv_nsec = (long)(ns % 1000000000ull)};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

uint64_t k_deadline(uint64_t timeout_ns)
{
    if (timeout_ns == MK_FOREVER)
        return MK_FOREVER;
    uint64_t now = mk_time_ns();
    return timeout_ns > MK_FOREVER - now ? MK_FOREVER - 1 : now + timeout_ns;
}

const char *mk_strerror(mk_err_t err)
{
    switch (err) {
    case MK_OK: return "success";
    case MK_EINVAL: return "invalid argument";
    case MK_ECAP: return "no such capability";
    case MK_ETYPE: return "capability of the wrong type";
    case MK_ERIGHTS: return "capability lacks a right";
    case MK_ETIMEDOUT: return "timed out";
    case MK_EDEAD: return "peer is dead";
    case MK_ECANCELED: return "caller stopped waiting";
    case MK_ENOMEM: return "out of kernel objects or memory";
    case MK_ENOSPC: return "capability space full";
    case MK_EAGAIN: return "would block";
    case MK_ENOENT: return "no capability of that name";
    case MK_EBUSY: return "busy";
    case MK_EIO: return "host error";
    default: return "unknown error";
    }
}

/* ---- The big kernel lock --------------------------------------------------- */

/* CPU the calling thread took the kernel lock on (k_lock), for k_current. */
static __thread int k_lock_cpu_self;

/* The lock is contended: spin (trylock) while its holder runs on another
 * CPU, then sleep in pthread_mutex_lock. Kernel operations hold the lock for
 * well under a microsecond, and a thread woken by an IPC comes back for it
 * while its waker is still leaving the kernel: sleeping there would cost a
 * FUTEX_WAIT here and a FUTEX_WAKE in the holder's unlock. A holder on our
 * own CPU cannot progress while we spin, so then we sleep at once. */
static int lock_contended(int cpu)
{
    uint64_t budget = K->spin_ns, end = 0;
    for (uint32_t n = 0; budget > 0; n++) {
        /* relaxed: a hint only; the mutex itself orders the kernel state. */
        if (atomic_load_explicit(&K->lock_cpu, memory_order_relaxed) == cpu)
            break;
        for (int i = 0; i < 8; i++)
            cpu_relax();
        int r = pthread_mutex_trylock(&K->lock);
        if (r != EBUSY)
            return r;
        if ((n & 15) == 15) {
            uint64_t now = mk_time_ns();
            if (end == 0)
                end = now + budget;
            else if (now >= end)
                break;
        }
    }
    return pthread_mutex_lock(&K->lock);
}

void k_lock(void)
{
    int cpu = sched_getcpu();
    int r = pthread_mutex_trylock(&K->lock);
    if (r == EBUSY)
        r = lock_contended(cpu);
    if (r == EOWNERDEAD) {
        /* A process died inside a kernel operation. Kernel operations keep
         * the state consistent at every point where a host process can be
         * killed only between whole field stores; we accept the state. */
        k_warn("a process died holding the kernel lock; recovered it");
        pthread_mutex_consistent(&K->lock);
    } else if (r != 0) {
        k_warn("kernel lock failed: %s", strerror(r));
        abort();
    }
    /* relaxed: read only as a spin hint by lock_contended. */
    atomic_store_explicit(&K->lock_cpu, cpu, memory_order_relaxed);
    k_lock_cpu_self = cpu;
}

void k_unlock(void)
{
    pthread_mutex_unlock(&K->lock);
}

k_thread_t *k_current(mk_err_t *err)
{
    if (K == NULL || k_self == 0 || k_self >= K_MAX_THREADS) {
        *err = MK_EINVAL; /* not a thread the kernel knows */
        return NULL;
    }
    k_thread_t *t = &K->threads[k_self];
    if (t->state == KTH_FREE) {
        *err = MK_EINVAL;
        return NULL;
    }
    if (t->state == KTH_ZOMBIE || K->tasks[t->task].state == KT_DEAD) {
        *err = MK_EDEAD;
        return NULL;
    }
    *err = MK_OK;
    /* relaxed: a spin hint (worth_spinning), written under the lock. Stored
     * only when it changed, so peers reading it keep their cached copy. */
    if (atomic_load_explicit(&t->cpu, memory_order_relaxed) != k_lock_cpu_self)
        atomic_store_explicit(&t->cpu, k_lock_cpu_self, memory_order_relaxed);
    return t;
}

/* ---- Futex wait/wake --------------------------------------------------------- */

static long futex(_Atomic uint32_t *addr, int op, uint32_t val, const struct timespec *ts, uint32_t mask)
{
    return syscall(SYS_futex, (uint32_t *)addr, op, val, ts, NULL, mask);
}

void k_futex_wake_all(_Atomic uint32_t *addr)
{
    futex(addr, FUTEX_WAKE, INT32_MAX, NULL, 0);
}

/* Wait while *addr == val or until the absolute monotonic deadline.
 * Returns false on timeout. */
bool k_futex_wait(_Atomic uint32_t *addr, uint32_t val, uint64_t deadline)
{
    while (atomic_load_explicit(addr, memory_order_acquire) == val) {
        struct timespec ts, *tsp = NULL;
        if (deadline != MK_FOREVER) {
            if (mk_time_ns() >= deadline)
                return false;
            ts.tv_sec = (time_t)(deadline / 1000000000ull);
            ts.tv_nsec = (long)(deadline % 1000000000ull);
            tsp = &ts;
        }
        /* FUTEX_WAIT_BITSET takes an absolute CLOCK_MONOTONIC deadline. */
        long r = futex(addr, FUTEX_WAIT_BITSET, val, tsp, FUTEX_BITSET_MATCH_ANY);
        if (r != 0 && errno == ETIMEDOUT)
            return atomic_load_explicit(addr, memory_order_acquire) != val;
    }
    return true;
}

/* Spinning only pays when whoever will wake us runs on another CPU: on the
 * same CPU it would just delay that thread. The peer is a best guess kept
 * by the operations (receiver of our call, client we answered, last sender
 * or signaller); 0 = unknown, spin. */
static bool worth_spinning(const k_thread_t *t)
{
    if (t->peer == 0 || t->peer >= K_MAX_THREADS)
        return true;
    int peer_cpu = atomic_load_explicit(&K->threads[t->peer].cpu, memory_order_relaxed);
    return peer_cpu != atomic_load_explicit(&t->cpu, memory_order_relaxed);
}

/* The calling thread's spin budget (ns), adapted to what its waits take:
 * a wait that ends within K->spin_ns (spinning, or asleep but woken that
 * soon) sets it back to K->spin_ns; a longer one halves it, down to 0 (no
 * spinning). A thread whose peer answers in microseconds keeps spinning; one
 * that waits for events far apart (a server between requests, netsrv
 * between packets) soon goes straight to sleep and leaves the CPU to the
 * threads that run; its next short wait brings spinning back. */
static __thread uint64_t spin_budget = UINT64_MAX;

static void spin_learn(uint64_t waited, uint64_t max)
{
    if (waited <= max)
        spin_budget = max;
    else
        spin_budget = spin_budget < max / 16 ? 0 : spin_budget / 2;
}

bool k_block(k_thread_t *t, uint64_t deadline)
{
    uint64_t max = K->spin_ns;
    if (spin_budget > max)
        spin_budget = max;
    uint64_t spin = worth_spinning(t) ? spin_budget : 0;
    k_unlock();
    uint64_t start = max > 0 ? mk_time_ns() : 0;
    if (spin > 0) {
        uint64_t end = start + spin;
        if (end > deadline)
            end = deadline;
        for (;;) {
            for (int i = 0; i < 64; i++) {
                /* acquire: pairs with the waker's release store of `wake`,
                 * so msg/result written before it are visible. */
                if (atomic_load_explicit(&t->wake, memory_order_acquire)) {
                    spin_budget = max;
                    return true;
                }
                cpu_relax();
            }
            if (mk_time_ns() >= end)
                break;
        }
    }
    atomic_store_explicit(&t->woken_at, 0, memory_order_relaxed);
    atomic_store_explicit(&t->sleeping, 1, memory_order_relaxed);
    /* seq_cst: orders the store of `sleeping` before the futex's read of
     * `wake`; pairs with the fence in k_wake (Dekker handshake). */
    atomic_thread_fence(memory_order_seq_cst);
    bool woken = k_futex_wait(&t->wake, 0, deadline);
    atomic_store_explicit(&t->sleeping, 0, memory_order_relaxed);
    if (max > 0) {
        /* woken_at 0: the waker came before it saw us asleep (short). */
        uint64_t at = atomic_load_explicit(&t->woken_at, memory_order_relaxed);
        spin_learn(!woken ? UINT64_MAX : at > start ? at - start : 0, max);
    }
    if (woken)
        return true;
    k_lock();
    if (atomic_load_explicit(&t->wake, memory_order_acquire)) {
        k_unlock(); /* completed while the timeout fired: take the result */
        return true;
    }
    return false;
}

void k_wake(k_thread_t *t, mk_err_t result)
{
    t->result = result;
    t->state = KTH_RUNNING;
    t->wait_obj = 0;
    /* release: publishes msg/result/badge to the waiter's acquire load. */
    atomic_store_explicit(&t->wake, 1, memory_order_release);
    /* seq_cst: orders the store of `wake` before the load of `sleeping`;
     * pairs with the fence in k_block. */
    atomic_thread_fence(memory_order_seq_cst);
    if (atomic_load_explicit(&t->sleeping, memory_order_relaxed)) {
        atomic_store_explicit(&t->woken_at, mk_time_ns(), memory_order_relaxed);
        futex(&t->wake, FUTEX_WAKE, 1, NULL, 0);
    }
}

/* ---- Wait queues (doubly linked through thread indices) ------------------- */

void k_enqueue(k_queue_t *q, k_thread_t *t)
{
    uint32_t i = k_thread_index(t);
    k_set(&t->next, 0);
    k_set(&t->prev, q->tail);
    if (q->tail)
        K->threads[q->tail].next = i;
    else
        q->head = i;
    q->tail = i;
}

void k_dequeue(k_queue_t *q, k_thread_t *t)
{
    if (t->prev)
        K->threads[t->prev].next = t->next;
    else
        q->head = t->next;
    if (t->next)
        K->threads[t->next].prev = t->prev;
    else
        q->tail = t->prev;
    k_set(&t->next, 0);
    k_set(&t->prev, 0);
}

k_thread_t *k_queue_first(k_queue_t *q)
{
    return q->head ? &K->threads[q->head] : NULL;
}

void k_cancel_wait(k_thread_t *t)
{
    k_obj_t *o = t->wait_obj ? &K->objs[t->wait_obj] : NULL; /* not for BLOCKED_REPLY */
    switch (t->state) {
    case KTH_BLOCKED_SEND:
        if (o)
            k_dequeue(&o->u.ep.sendq, t);
        break;
    case KTH_BLOCKED_RECV:
        if (o)
            k_dequeue(&o->u.ep.recvq, t);
        break;
    case KTH_BLOCKED_REPLY:
        k_reply_end(t, KR_CANCELED);
        break;
    case KTH_BLOCKED_NTFN:
        if (o && o->u.ntfn.waiter == k_thread_index(t))
            o->u.ntfn.waiter = 0;
        break;
    default:
        break;
    }
    t->wait_obj = 0;
    t->state = KTH_RUNNING;
}

/* ---- Objects and capabilities --------------------------------------------- */

void k_reply_end(k_thread_t *caller, uint32_t state)
{
    k_cap_t *c = &K->tasks[caller->rcap_task].cspace[caller->rcap_slot];
    if (c->type == MK_OBJ_REPLY && c->obj == k_thread_index(caller) &&
        c->badge == caller->reply_gen)
        c->reply = (uint8_t)state;
}

k_thread_t *k_reply_caller(const k_cap_t *c)
{
    k_thread_t *caller = &K->threads[c->obj];
    if (c->reply != KR_WAITING || caller->state != KTH_BLOCKED_REPLY ||
        caller->reply_gen != c->badge)
        return NULL;
    return caller;
}

uint32_t k_obj_alloc(uint32_t type)
{
    for (uint32_t n = 0; n < K_MAX_OBJS - 1; n++) {
        uint32_t i = 1 + (K->obj_hint + n) % (K_MAX_OBJS - 1);
        if (K->objs[i].type == MK_OBJ_NONE) {
            memset(&K->objs[i], 0, sizeof K->objs[i]);
            K->objs[i].type = (uint16_t)type;
            K->objs[i].gen = ++K->obj_gen;
            K->obj_hint = i;
            return i;
        }
    }
    return 0;
}

mk_err_t k_obj_create(uint32_t type, mk_cap_t *out)
{
    if (out == NULL)
        return MK_EINVAL;
    mk_err_t err;
    k_lock();
    k_thread_t *t = k_current(&err);
    if (t) {
        uint32_t o = k_obj_alloc(type);
        if (o == 0)
            err = MK_ENOMEM;
        else if ((err = k_cap_insert(k_task_of(t), type, MK_RIGHTS_ALL, o, 0, out)))
            K->objs[o].type = MK_OBJ_NONE;
    }
    k_unlock();
    return err;
}

void k_obj_put(uint32_t i)
{
    k_obj_t *o = &K->objs[i];
    if (--o->refs > 0)
        return;
    if (o->type == MK_OBJ_ENDPOINT) {
        k_death_forget(i);
        if (o->u.ep.death_ntfn)
            k_obj_put(o->u.ep.death_ntfn);
    }
    if (o->type == MK_OBJ_SHM)
        k_shm_forget(i);
    if (o->type == MK_OBJ_NOTIFICATION && o->u.ntfn.bound)
        K->threads[o->u.ntfn.bound].bound_ntfn = 0;
    if (o->type == MK_OBJ_TASK)
        k_task_obj_gone(o->u.task.task);
    memset(o, 0, sizeof *o);
}

mk_err_t k_cap_get(k_task_t *task, mk_cap_t slot, uint32_t type, uint32_t rights, k_cap_t **out)
{
    if (slot == MK_CAP_NULL || slot >= K_CSPACE_SLOTS)
        return MK_ECAP;
    k_cap_t *c = &task->cspace[slot];
    if (c->type == MK_OBJ_NONE)
        return MK_ECAP;
    if (type != MK_OBJ_NONE && c->type != type)
        return MK_ETYPE;
    if ((c->rights & rights) != rights)
        return MK_ERIGHTS;
    *out = c;
    return MK_OK;
}

/* The lowest slot that may be free. */
static uint32_t cap_first_free(const k_task_t *task)
{
    return task->free_hint ? task->free_hint : 1;
}

uint32_t k_cap_free_slots(const k_task_t *task, uint32_t want)
{
    uint32_t n = 0;
    for (uint32_t s = cap_first_free(task); s < K_CSPACE_SLOTS && n < want; s++)
        if (task->cspace[s].type == MK_OBJ_NONE)
            n++;
    return n;
}

/* Slots are handed out lowest first. The hint is written only when it
 * moves, so a task whose slots come and go at the same place (a server's
 * reply capabilities) keeps its task header unwritten. */
mk_err_t k_cap_insert(k_task_t *task, uint32_t type, uint32_t rights, uint32_t obj,
                      uint64_t badge, mk_cap_t *out)
{
    for (mk_cap_t s = cap_first_free(task); s < K_CSPACE_SLOTS; s++) {
        k_cap_t *c = &task->cspace[s];
        if (c->type != MK_OBJ_NONE)
            continue;
        if (task->free_hint != s)
            task->free_hint = s;
        c->type = (uint8_t)type;
        c->rights = (uint8_t)rights;
        c->named = 0;
        c->reply = KR_WAITING;
        c->obj = obj;
        c->badge = badge;
        *out = s;
        if (type == MK_OBJ_REPLY)
            return MK_OK; /* reply objects live in their threads: see kstate.h */
        K->objs[obj].refs++;
        if (type == MK_OBJ_ENDPOINT && (rights & MK_RIGHT_RECV))
            K->objs[obj].u.ep.recv_refs++;
        return MK_OK;
    }
    if (task->free_hint != K_CSPACE_SLOTS)
        task->free_hint = K_CSPACE_SLOTS;
    return MK_ENOSPC;
}

void k_cap_remove(k_task_t *task, mk_cap_t slot)
{
    k_cap_t c = task->cspace[slot];
    memset(&task->cspace[slot], 0, sizeof c);
    if (slot < cap_first_free(task))
        task->free_hint = slot;
    for (uint32_t i = 0; c.named && i < K_MAX_NAMES; i++)
        if (task->names[i].slot == slot)
            memset(&task->names[i], 0, sizeof task->names[i]);
    if (c.type == MK_OBJ_REPLY) {
        /* The reply capability is dropped unanswered: the caller learns that
         * no reply will ever come instead of waiting forever. */
        k_thread_t *caller = k_reply_caller(&c);
        if (caller)
            k_wake(caller, MK_EDEAD);
        return;
    }
    k_obj_t *o = &K->objs[c.obj];
    if (c.type == MK_OBJ_ENDPOINT && (c.rights & MK_RIGHT_RECV) && --o->u.ep.recv_refs == 0)
        k_ep_kill(o); /* nobody can receive any more: senders must not hang */
    k_obj_put(c.obj);
}

mk_err_t mk_cap_info(mk_cap_t cap, mk_cap_info_t *info)
{
    if (info == NULL)
        return MK_EINVAL;
    mk_err_t err;
    k_lock();
    k_thread_t *t = k_current(&err);
    k_cap_t *c;
    if (t && (err = k_cap_get(k_task_of(t), cap, MK_OBJ_NONE, 0, &c)) == MK_OK) {
        info->type = c->type;
        info->rights = c->rights;
        info->badge = c->type == MK_OBJ_REPLY ? 0 : c->badge; /* not a generation */
        info->size = c->type == MK_OBJ_SHM ? K->objs[c->obj].u.shm.size : 0;
    }
    k_unlock();
    return err;
}

mk_err_t k_badge_for_copy(const k_cap_t *c, uint64_t badge, uint64_t *out)
{
    if (badge != 0 && c->badge != 0 && badge != c->badge)
        return MK_ERIGHTS;
    *out = badge ? badge : c->badge;
    return MK_OK;
}

mk_err_t mk_cap_mint(mk_cap_t cap, uint32_t rights, mk_badge_t badge, mk_cap_t *out)
{
    if (out == NULL || (rights & ~MK_RIGHTS_ALL))
        return MK_EINVAL;
    mk_err_t err;
    k_lock();
    k_thread_t *t = k_current(&err);
    k_cap_t *c;
    if (t && (err = k_cap_get(k_task_of(t), cap, MK_OBJ_NONE, rights, &c)) == MK_OK) {
        uint64_t b;
        if (c->type == MK_OBJ_REPLY || c->type == MK_OBJ_TASK)
            err = MK_ETYPE; /* one-shot / root-only objects are not copied */
        else if ((err = k_badge_for_copy(c, badge, &b)) == MK_OK)
            err = k_cap_insert(k_task_of(t), c->type, rights, c->obj, b, out);
    }
    k_unlock();
    return err;
}

mk_err_t mk_cap_delete(mk_cap_t cap)
{
    mk_err_t err;
    k_lock();
    k_thread_t *t = k_current(&err);
    k_cap_t *c;
    if (t && (err = k_cap_get(k_task_of(t), cap, MK_OBJ_NONE, 0, &c)) == MK_OK)
        k_cap_remove(k_task_of(t), cap);
    k_unlock();
    return err;
}

mk_err_t mk_cap_lookup(const char *name, mk_cap_t *out)
{
    if (name == NULL || out == NULL)
        return MK_EINVAL;
    mk_err_t err;
    k_lock();
    k_thread_t *t = k_current(&err);
    if (t) {
        err = MK_ENOENT;
        k_task_t *task = k_task_of(t);
        for (uint32_t i = 0; i < K_MAX_NAMES; i++) {
            if (task->names[i].slot && strncmp(task->names[i].name, name, K_NAME_LEN) == 0) {
                *out = task->names[i].slot;
                err = MK_OK;
                break;
            }
        }
    }
    k_unlock();
    return err;
}

/* ---- Diagnostics ----------------------------------------------------------- */

/* A reply object counts while a capability refers to it, as it would in the
 * object table: there is one capability per call. */
uint32_t sim_count_objects(uint32_t type)
{
    uint32_t n = 0;
    k_lock();
    if (type == MK_OBJ_REPLY) {
        for (uint32_t i = 1; i < K_MAX_TASKS; i++)
            for (uint32_t s = 1; K->tasks[i].state != KT_FREE && s < K_CSPACE_SLOTS; s++)
                n += K->tasks[i].cspace[s].type == MK_OBJ_REPLY;
    } else {
        for (uint32_t i = 1; i < K_MAX_OBJS; i++)
            n += K->objs[i].type == type;
    }
    k_unlock();
    return n;
}

uint32_t sim_count_caps(void)
{
    mk_err_t err;
    uint32_t n = 0;
    k_lock();
    k_thread_t *t = k_current(&err);
    if (t)
        for (uint32_t s = 1; s < K_CSPACE_SLOTS; s++)
            n += k_task_of(t)->cspace[s].type != MK_OBJ_NONE;
    k_unlock();
    return n;
}

uint32_t sim_cap_object_index(mk_cap_t cap)
{
    mk_err_t err;
    uint32_t obj = 0;
    k_lock();
    k_thread_t *t = k_current(&err);
    k_cap_t *c;
    if (t && k_cap_get(k_task_of(t), cap, MK_OBJ_NONE, 0, &c) == MK_OK)
        obj = c->obj;
    k_unlock();
    return obj;
}

void sim_set_spin_ns(uint64_t ns)
{
    if (K)
        K->spin_ns = ns;
}

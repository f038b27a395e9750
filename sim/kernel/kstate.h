/*
 * kstate.h - the simulator's kernel state (private to sim/kernel).
 *
 * Everything here lives in ONE process-shared memory object so that separate
 * Linux processes can map it (at different addresses): all references are
 * indices, never pointers. The layout is fixed-size (no allocation inside the
 * kernel) and guarded by `lock`, a robust process-shared mutex: the big
 * kernel lock. Rules:
 *  - Every field is read and written with `lock` held, except
 *    k_thread.wake / k_thread.sleeping (the futex handshake, see kernel.c)
 *    and k_state.lock_cpu (a spin hint, read relaxed by lock waiters).
 *  - Index 0 of the thread and object tables is never used, so 0 means "none".
 *  - Reply objects are not in the object table: each thread has one, in its
 *    k_thread (reply_gen), reused by every call it makes. A reply capability
 *    names the caller's thread (obj) and the call's generation (badge), and
 *    carries the outcome of that call (k_cap.reply). While a caller is
 *    BLOCKED_REPLY, the one reply capability of its current generation is
 *    K->tasks[rcap_task].cspace[rcap_slot], in state KR_WAITING; when the
 *    call ends without a reply (timeout, caller death) that capability is
 *    marked (k_reply_end), so it can never answer a later call.
 *  - A thread's `msg` buffer is written by the kernel operation that
 *    completes the thread's wait, strictly before `wake` is set (release);
 *    the woken thread reads it after seeing `wake` (acquire).
 */
#ifndef FERRY_SIM_KSTATE_H
#define FERRY_SIM_KSTATE_H

#include <ferry/mk.h>
#include <ferry/sim.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>

#define K_MAGIC 0x4b595252454646ull /* "FFERRYK" */
#define K_VERSION 4u

#define K_MAX_TASKS 64
#define K_MAX_THREADS 512
#define K_MAX_OBJS 8192
#define K_CSPACE_SLOTS 1024
#define K_MAX_NAMES 64
#define K_NAME_LEN 32

enum k_task_state { KT_FREE = 0, KT_CREATED, KT_RUNNING, KT_DEAD };

enum k_thread_state {
    KTH_FREE = 0,
    KTH_RUNNING,
    KTH_BLOCKED_SEND,  /* queued on an endpoint's send queue (send or call) */
    KTH_BLOCKED_REPLY, /* call delivered; waiting for its reply (rcap_*) */
    KTH_BLOCKED_RECV,  /* queued on an endpoint's receive queue */
    KTH_BLOCKED_NTFN,  /* waiting on a notification */
    KTH_ZOMBIE,        /* its task died; the host thread has not left yet */
    KTH_EXITED,        /* its function returned; slot kept until mk_thread_join */
};

/* Outcome of a call as its reply capability sees it (k_cap_t.reply). */
enum k_reply_state {
    KR_WAITING = 0, /* the caller waits: the capability answers it */
    KR_CANCELED,    /* the caller stopped waiting, or the call was answered */
    KR_CALLER_DEAD, /* the caller's task died */
};

typedef struct k_cap {
    uint8_t type;   /* enum mk_obj_type; MK_OBJ_NONE = empty slot */
    uint8_t rights; /* MK_RIGHT_* */
    uint8_t named;  /* 1: one of the task's names refers to this slot */
    uint8_t reply;  /* reply capability: enum k_reply_state of its call */
    uint32_t obj;   /* object index; reply capability: the caller's thread */
    uint64_t badge; /* reply capability: the call's generation (reply_gen) */
} k_cap_t;

_Static_assert(sizeof(k_cap_t) == 16, "four capabilities per cache line");
_Static_assert(MK_RIGHTS_ALL <= UINT8_MAX, "rights fit k_cap_t.rights");

typedef struct k_queue {
    uint32_t head, tail; /* thread indices, 0 = empty */
} k_queue_t;

typedef struct k_obj {
    uint16_t type; /* MK_OBJ_*, MK_OBJ_NONE = free */
    uint16_t dead; /* endpoint/notification: owner gone, every use gets MK_EDEAD */
    uint32_t refs; /* capabilities referring to this object */
    uint32_t gen;  /* distinguishes successive objects in this slot (fd caches) */
    union {
        struct {
            k_queue_t sendq, recvq;
            uint32_t recv_refs; /* caps with MK_RIGHT_RECV; 0 after the first = dead */
            uint32_t last_sender, last_receiver; /* spin hints */
            uint32_t death_ntfn;  /* death notices go to this notification (holds a ref), 0 = none */
            uint64_t death_bits;  /* ...signalled with these bits */
        } ep;
        struct {
            uint64_t word;
            uint32_t waiter; /* thread in mk_wait, 0 = none */
            uint32_t bound;  /* thread bound with mk_ntfn_bind, 0 = none */
            uint32_t last_signaller; /* spin hint */
        } ntfn;
        struct {
            uint64_t size;
        } shm;
        struct {
            uint32_t task;
        } task;
    } u;
} __attribute__((aligned(64))) k_obj_t; /* no false sharing between objects */

/* A thread control block. The first cache line is the hand-over line: what
 * a waker writes to complete a wait and the woken thread then reads
 * (wake, result, badge, reply_slot, ..., the head of msg), and what a
 * replier checks (state, reply_gen). The waiter spins on that line alone,
 * so completing a wait with a message without words moves just that line
 * to the waker and back; every 8 words add a line. Fields the thread
 * keeps to itself or that rarely change follow msg, so that the line
 * holding them stays shared; hints there are written only when they
 * change. */
typedef struct k_thread {
    _Atomic uint32_t wake;    /* futex word: 0 waiting, 1 completed */
    _Atomic uint8_t sleeping; /* 1 while (about to be) in FUTEX_WAIT */
    uint8_t state;            /* enum k_thread_state */
    uint8_t notified;         /* receiver: woken by its bound notification */
    uint8_t spare;
    int32_t result;           /* MK_* status handed over with the wake-up */
    mk_cap_t reply_slot;      /* receiver: reply capability created for a call */
    uint64_t badge;           /* sender's badge / notification bits on delivery */
    uint64_t reply_gen;       /* generation of this thread's reply object: +1 per
                               * call; kept when the slot is reused */
    uint32_t wait_obj;        /* endpoint/notification it waits on (0 in BLOCKED_REPLY) */
    uint32_t peer;            /* best guess of the thread that will wake this one */
    mk_msg_t msg;             /* message in transit (see header comment) */
    uint32_t task;
    uint32_t next, prev;      /* links in the queue of `wait_obj` */
    uint32_t is_call;         /* BLOCKED_SEND: a call (1) or a send (0) */
    uint32_t bound_ntfn;      /* notification object bound to this thread, 0 = none */
    _Atomic int32_t cpu;      /* CPU this thread last entered the kernel on */
    uint32_t rcap_task;       /* BLOCKED_REPLY: task holding the reply capability */
    mk_cap_t rcap_slot;       /* BLOCKED_REPLY: its slot there */
    _Atomic uint64_t woken_at; /* time a waker found it asleep (0: did not), for the spin policy */
} __attribute__((aligned(64))) k_thread_t;

_Static_assert(offsetof(k_thread_t, msg) + offsetof(mk_msg_t, mr) == 64,
               "the hand-over line ends with the head of msg");
_Static_assert(sizeof(k_thread_t) % 64 == 0, "TCBs start on a cache line");

typedef struct k_name {
    char name[K_NAME_LEN];
    mk_cap_t slot;
} k_name_t;

typedef struct k_task {
    uint32_t state; /* enum k_task_state */
    uint32_t external; /* 1: a separate process attaches as this task */
    int32_t pid;       /* host process running it */
    int32_t exit_status;
    _Atomic uint32_t exited; /* futex word for mk_task_wait */
    uint32_t nthreads;       /* threads not FREE */
    uint32_t obj;            /* its MK_OBJ_TASK object, 0 = none left */
    uint32_t free_hint;      /* every cspace slot in [1, free_hint) is used; 0 = 1 */
    uint64_t serial;         /* unique per task ever created (k_task_alloc) */
    char name[K_NAME_LEN];
    k_name_t names[K_MAX_NAMES];
    k_cap_t cspace[K_CSPACE_SLOTS] __attribute__((aligned(64)));
} __attribute__((aligned(64))) k_task_t;

_Static_assert(offsetof(k_task_t, cspace) % 64 == 0, "capabilities do not straddle lines");

/* A death notice: a task holding a send capability with `badge` to endpoint
 * `ep` died (mk_ep_death_ntfn / mk_ep_dead_badges). ep == 0: free entry. */
typedef struct k_death {
    uint32_t ep;
    uint32_t pad;
    uint64_t badge;
} k_death_t;

#define K_MAX_DEATHS 1024

typedef struct k_state {
    uint64_t magic;
    uint32_t version;
    uint32_t size;
    pthread_mutex_t lock; /* robust, process-shared: the big kernel lock */
    _Atomic int32_t lock_cpu; /* CPU of the lock's last taker (spin hint, k_lock) */
    uint32_t obj_hint;
    uint32_t obj_gen; /* last generation handed out by k_obj_alloc */
    uint64_t spin_ns;
    uint64_t task_serial; /* last serial handed out by k_task_alloc */
    k_task_t tasks[K_MAX_TASKS];
    k_thread_t threads[K_MAX_THREADS];
    k_obj_t objs[K_MAX_OBJS];
    k_death_t deaths[K_MAX_DEATHS];
    uint32_t deaths_lost; /* notices dropped because the table was full */
} k_state_t;

/* ---- Process-local view (kernel.c) ---------------------------------------- */

extern k_state_t *K;                 /* this process's mapping of the state */
extern __thread uint32_t k_self;     /* calling thread's index, 0 = not a kernel thread */

void k_lock(void);
void k_unlock(void);

/* The calling thread and its task, or NULL when the thread is unknown or its
 * task is dead (the caller returns the error in *err). Lock held. */
k_thread_t *k_current(mk_err_t *err);
static inline k_task_t *k_task_of(const k_thread_t *t) { return &K->tasks[t->task]; }
static inline uint32_t k_thread_index(const k_thread_t *t) { return (uint32_t)(t - K->threads); }

/* Store only when the value changes: a line nobody writes stays shared in
 * every cache that reads it (hints, the queue links of a lone waiter). */
static inline void k_set(uint32_t *field, uint32_t v)
{
    if (*field != v)
        *field = v;
}

/* Capabilities (kernel.c). */
mk_err_t k_cap_get(k_task_t *task, mk_cap_t slot, uint32_t type, uint32_t rights, k_cap_t **out);
mk_err_t k_cap_insert(k_task_t *task, uint32_t type, uint32_t rights, uint32_t obj,
                      uint64_t badge, mk_cap_t *out);
void k_cap_remove(k_task_t *task, mk_cap_t slot);
/* The badge a copy of `c` gets when `badge` is asked for: 0 keeps c's; a
 * badged capability cannot be re-badged (that would forge another client's
 * identity): MK_ERIGHTS unless the same badge is asked for. */
mk_err_t k_badge_for_copy(const k_cap_t *c, uint64_t badge, uint64_t *out);
uint32_t k_cap_free_slots(const k_task_t *task, uint32_t want);
uint32_t k_obj_alloc(uint32_t type);
void k_obj_put(uint32_t obj); /* drop one reference; frees the object at 0 */
/* A new object of `type` (endpoint, notification) with an all-rights
 * capability for the caller. Takes the lock. */
mk_err_t k_obj_create(uint32_t type, mk_cap_t *out);

/* Blocking (kernel.c): the caller set t->state, queued it and reset t->wake
 * with the lock held; k_block drops the lock and waits until woken (returns
 * true, lock NOT held; t->result and t->msg are valid) or until the deadline
 * (returns false with the lock held and t->wake still 0: the caller undoes
 * its wait with k_cancel_wait). */
bool k_block(k_thread_t *t, uint64_t deadline);
bool k_futex_wait(_Atomic uint32_t *addr, uint32_t val, uint64_t deadline);
void k_futex_wake_all(_Atomic uint32_t *addr);
void k_wake(k_thread_t *t, mk_err_t result);
uint64_t k_deadline(uint64_t timeout_ns);

/* Queues. */
void k_enqueue(k_queue_t *q, k_thread_t *t);
void k_dequeue(k_queue_t *q, k_thread_t *t);
k_thread_t *k_queue_first(k_queue_t *q);

/* Undo a blocked thread's wait (timeout or death). Lock held. */
void k_cancel_wait(k_thread_t *t);

/* A call of `caller` ended without a reply: mark its reply capability with
 * `state` (KR_CANCELED / KR_CALLER_DEAD). Lock held. */
void k_reply_end(k_thread_t *caller, uint32_t state);

/* The caller that reply capability `c` still answers, or NULL when its call
 * is over. Lock held. */
k_thread_t *k_reply_caller(const k_cap_t *c);

/* IPC (ipc.c): the endpoint lost its last receiver: flush its queues. */
void k_ep_kill(k_obj_t *ep);

/* Notifications (ntfn.c): OR bits in and wake the waiter or bound
 * receiver. Death notices: queue one for every badged send capability of
 * a dying task's cspace; forget an endpoint's notices. Lock held. */
void k_ntfn_signal(k_obj_t *o, uint64_t bits);
void k_death_notices(k_task_t *dying);
void k_death_forget(uint32_t ep);

/* Task death (task.c). Lock held. */
void k_task_kill(uint32_t task, int status, bool process_gone);
void k_task_obj_gone(uint32_t task);
uint32_t k_task_alloc(const char *name, bool external);
mk_err_t k_task_check_name(const char *name);

/* Threads (task.c). */
uint32_t k_thread_alloc(uint32_t task);
void k_thread_release(k_thread_t *t);
/* Unmap, in this process, the mappings of tasks that are dead with no
 * thread left, or gone (shm.c). Lock held. */
void k_shm_reap(void);

/* Shared memory fds of this process (shm.c). */
int k_shm_fd(uint32_t obj, uint32_t gen, bool writable);
void k_shm_forget(uint32_t obj);
int k_shm_create_fd(uint64_t size);
void k_shm_adopt_fd(uint32_t obj, uint32_t gen, bool writable, int fd);

/* Attach (attach.c). */
int k_attach_fetch_fd(uint32_t obj, bool writable);
int k_attach_give_fd(uint32_t obj, int fd);
int k_kernel_fd(void);
void k_state_init_local(void);
extern bool k_is_root_process;

/* Logging (log.c). */
void k_log_raw(const char *who, const char *fmt, va_list ap);
void k_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif

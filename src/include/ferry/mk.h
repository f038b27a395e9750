/*
 * ferry/mk.h - the microkernel interface.
 *
 * This is the only kernel header portable code (src/) may include. Two
 * backends implement it: sim/ (pthreads, futexes, memfd; a separate Linux
 * process can attach as a task) and target/ (ARMv7-A). Component code never
 * tests which backend it runs on.
 *
 * Model (L4 family, close to seL4):
 *  - A task owns a capability space (cspace): a table of slots. Every kernel
 *    object is reached through a capability (mk_cap_t = slot index in the
 *    caller's cspace). Capabilities carry rights and, for endpoints and
 *    notifications, a badge. A slot the task was not given, a capability of
 *    the wrong type, or one lacking a right gets a clear error and changes
 *    nothing.
 *  - Endpoints: synchronous rendezvous IPC. A message is a tag (label, word
 *    count, capability count) plus up to MK_MSG_WORDS 64-bit message
 *    registers and up to MK_MSG_CAPS capabilities (granted, i.e. copied, into
 *    the receiver's cspace).
 *  - Reply capabilities: mk_recv() of a call hands the server a one-shot reply
 *    capability. It may answer at once (mk_reply_recv) or keep it, serve
 *    others, and answer later (mk_reply): deferred replies.
 *  - Notifications: a 64-bit word of pending bits. mk_signal() ORs the
 *    signalling capability's badge into it; mk_wait() and mk_poll() take and
 *    clear all pending bits. A notification bound to a thread also wakes that
 *    thread from mk_recv() (how a server waits for IPC and ring signals in one
 *    loop).
 *  - Shared memory objects: created with a size, mapped read-only or
 *    read-write, passed to other tasks by capability.
 *  - Time: monotonic nanoseconds. Every blocking call takes a relative
 *    timeout: MK_NOWAIT polls, MK_FOREVER never times out.
 *  - Death: when a task exits (or its process dies), every thread blocked on
 *    it gets MK_EDEAD instead of waiting forever: callers waiting for its
 *    reply, senders queued on endpoints it served, and servers holding reply
 *    capabilities for its calls (their mk_reply gets MK_EDEAD).
 *
 * All functions return mk_err_t: 0 (MK_OK) or a negative MK_E* code.
 * Thread safety: every function may be called from any thread of any task.
 */
#ifndef FERRY_MK_H
#define FERRY_MK_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- Basic types --------------------------------------------------------- */

typedef int32_t mk_err_t;    /* 0 or a negative MK_E* code */
typedef uint32_t mk_cap_t;   /* slot index in the calling task's cspace */
typedef uint64_t mk_badge_t; /* identifies the client behind a capability */
typedef uint64_t mk_word_t;  /* one message register */

#define MK_CAP_NULL ((mk_cap_t)0) /* slot 0 is never valid */

enum mk_error {
    MK_OK = 0,
    MK_EINVAL = -1,     /* malformed argument (bad length, bad flags, NULL) */
    MK_ECAP = -2,       /* slot is empty or out of range for this task */
    MK_ETYPE = -3,      /* capability refers to an object of another type */
    MK_ERIGHTS = -4,    /* capability lacks a right the operation needs */
    MK_ETIMEDOUT = -5,  /* the timeout expired before the operation completed */
    MK_EDEAD = -6,      /* the peer task died, or the endpoint has no receiver left */
    MK_ECANCELED = -7,  /* the caller stopped waiting (timed out) before the reply */
    MK_ENOMEM = -8,     /* kernel object or memory exhausted */
    MK_ENOSPC = -9,     /* receiver's cspace is full */
    MK_EAGAIN = -10,    /* reserved: non-blocking calls report MK_ETIMEDOUT */
    MK_ENOENT = -11,    /* no capability with that name */
    MK_EBUSY = -12,     /* object in use (e.g. notification already bound) */
    MK_EIO = -13,       /* host-level failure in the backend */
};

/* A short, constant, human readable name for an error code. */
const char *mk_strerror(mk_err_t err);

/* ---- Capabilities -------------------------------------------------------- */

enum mk_obj_type {
    MK_OBJ_NONE = 0,
    MK_OBJ_ENDPOINT = 1,
    MK_OBJ_NOTIFICATION = 2,
    MK_OBJ_SHM = 3,
    MK_OBJ_REPLY = 4,
    MK_OBJ_TASK = 5,
};

/* Rights. Their meaning depends on the object type. */
#define MK_RIGHT_SEND 0x01u  /* endpoint: call/send; notification: signal */
#define MK_RIGHT_RECV 0x02u  /* endpoint: recv/reply_recv; notification: wait/poll/bind */
#define MK_RIGHT_READ 0x04u  /* shm: map readable */
#define MK_RIGHT_WRITE 0x08u /* shm: map writable */
#define MK_RIGHT_GRANT 0x10u /* may be passed to another task in a message */
#define MK_RIGHTS_ALL 0x1fu

typedef struct mk_cap_info {
    uint32_t type;    /* enum mk_obj_type */
    uint32_t rights;  /* MK_RIGHT_* */
    mk_badge_t badge; /* 0 = unbadged */
    uint64_t size;    /* shm: object size in bytes; otherwise 0 */
} mk_cap_info_t;

mk_err_t mk_cap_info(mk_cap_t cap, mk_cap_info_t *info);

/* Derive a new capability to the same object with a subset of `cap`'s rights
 * and the given badge (badge 0 keeps the source's badge). Only an unbadged
 * capability can be given a badge: re-badging a badged one (which would
 * forge another client's identity) gets MK_ERIGHTS. */
mk_err_t mk_cap_mint(mk_cap_t cap, uint32_t rights, mk_badge_t badge, mk_cap_t *out);

/* Remove a capability from the caller's cspace. The object lives on while
 * other capabilities refer to it. */
mk_err_t mk_cap_delete(mk_cap_t cap);

/* Look up a capability that the boot configuration (or the task's creator)
 * gave this task under a name. */
mk_err_t mk_cap_lookup(const char *name, mk_cap_t *out);

/* ---- Messages ------------------------------------------------------------ */

#define MK_MSG_WORDS 64 /* message registers: 64 x 8 bytes = 512 bytes */
#define MK_MSG_CAPS 4   /* capabilities per message */
#define MK_MSG_BYTES (MK_MSG_WORDS * sizeof(mk_word_t))

/* A message. The kernel copies `words` message registers and transfers
 * `ncaps` capabilities; the rest of the struct is not looked at. On send,
 * caps[] holds the sender's slots (each needs MK_RIGHT_GRANT); on receipt it
 * holds the receiver's new slots. */
typedef struct mk_msg {
    uint32_t label; /* request: method id; reply: status. Not interpreted. */
    uint16_t words; /* 0..MK_MSG_WORDS */
    uint16_t ncaps; /* 0..MK_MSG_CAPS */
    mk_cap_t caps[MK_MSG_CAPS];
    mk_word_t mr[MK_MSG_WORDS];
} mk_msg_t;

_Static_assert(sizeof(mk_msg_t) == 8 + 4 * MK_MSG_CAPS + 8 * MK_MSG_WORDS, "mk_msg_t layout");

/* ---- Time ---------------------------------------------------------------- */

#define MK_NOWAIT ((uint64_t)0)
#define MK_FOREVER UINT64_MAX

uint64_t mk_time_ns(void); /* monotonic */
void mk_sleep_ns(uint64_t ns);

/* ---- Endpoints (synchronous IPC) ------------------------------------------ */

/* Create an endpoint. The caller gets a capability with all rights; minted
 * copies with MK_RIGHT_SEND and a badge are what clients receive. The
 * endpoint dies when the last capability with MK_RIGHT_RECV to it goes
 * (deleted, or its task died): then every queued and later sender gets
 * MK_EDEAD instead of waiting for a receiver that cannot come. */
mk_err_t mk_ep_create(mk_cap_t *out);

/* What mk_recv tells the server about what arrived. */
typedef struct mk_recv_info {
    mk_badge_t badge;  /* badge of the sender's capability, or the notification bits */
    mk_cap_t reply;    /* one-shot reply capability for a call; MK_CAP_NULL for a send */
    bool notification; /* true: woken by the bound notification, msg untouched */
} mk_recv_info_t;

/* Send `msg` and wait for the reply, which overwrites `msg`. The timeout
 * covers both phases. MK_EDEAD: the server died before replying. */
mk_err_t mk_call(mk_cap_t ep, mk_msg_t *msg, uint64_t timeout_ns);

/* Send `msg` without waiting for a reply (blocks until a receiver takes it
 * or the timeout expires). */
mk_err_t mk_send(mk_cap_t ep, const mk_msg_t *msg, uint64_t timeout_ns);

/* Wait for a message on `ep`, or for a signal of the notification bound to
 * this thread. */
mk_err_t mk_recv(mk_cap_t ep, mk_msg_t *msg, mk_recv_info_t *info, uint64_t timeout_ns);

/* Answer a call through its reply capability (consumed either way). Returns
 * MK_EDEAD if the caller died, MK_ECANCELED if it stopped waiting. A
 * malformed reply (bad word or capability count) returns MK_EINVAL and ends
 * the caller's mk_call with MK_EINVAL. */
mk_err_t mk_reply(mk_cap_t reply, const mk_msg_t *msg);

/* Reply through `reply` (unless MK_CAP_NULL) with `msg`, then wait for the
 * next message into `msg`. A failed reply does not stop the receive: the
 * server loop goes on regardless; the reply status is lost by design (the
 * caller is gone). */
mk_err_t mk_reply_recv(mk_cap_t ep, mk_cap_t reply, mk_msg_t *msg, mk_recv_info_t *info,
                       uint64_t timeout_ns);

/* Death notices. A server that keeps per-client state needs to learn when a
 * client dies. mk_ep_death_ntfn (needs MK_RIGHT_RECV on `ep` and
 * MK_RIGHT_SEND on `ntfn`) registers a notification; from then on, when a
 * task that holds a send capability to `ep` with a non-zero badge dies, the
 * kernel queues that badge and signals `ntfn` (with the badge of the `ntfn`
 * capability given here, 1 if unbadged). mk_ep_dead_badges takes up to `max`
 * queued badges into out[] (*n = how many). ntfn = MK_CAP_NULL unregisters.
 * A badge is queued once even if the task held several such capabilities. */
mk_err_t mk_ep_death_ntfn(mk_cap_t ep, mk_cap_t ntfn);
mk_err_t mk_ep_dead_badges(mk_cap_t ep, mk_badge_t *out, uint32_t max, uint32_t *n);

/* ---- Notifications ------------------------------------------------------- */

mk_err_t mk_ntfn_create(mk_cap_t *out);

/* OR the capability's badge (1 if unbadged) into the notification word. */
mk_err_t mk_signal(mk_cap_t ntfn);

/* Take and clear the pending bits; wait up to timeout_ns while none. */
mk_err_t mk_wait(mk_cap_t ntfn, mk_word_t *bits, uint64_t timeout_ns);

/* Take and clear the pending bits without waiting (*bits may be 0). */
mk_err_t mk_poll(mk_cap_t ntfn, mk_word_t *bits);

/* Bind a notification to the calling thread (needs MK_RIGHT_RECV): its
 * signals then also end this thread's mk_recv. One thread per notification. */
mk_err_t mk_ntfn_bind(mk_cap_t ntfn);
mk_err_t mk_ntfn_unbind(void);

/* ---- Shared memory ------------------------------------------------------- */

/* Create a zero-filled shared memory object of `size` bytes (rounded up to
 * the page size). */
mk_err_t mk_shm_create(size_t size, mk_cap_t *out);

/* Map the object into the calling task. rights: MK_RIGHT_READ, or
 * MK_RIGHT_READ | MK_RIGHT_WRITE; the capability must hold them. A
 * read-only mapping really is read-only: a write faults. */
mk_err_t mk_shm_map(mk_cap_t shm, uint32_t rights, void **addr, size_t *size);
/* Take back a mapping the calling task made: addr and size as mk_shm_map
 * gave them (MK_EINVAL otherwise, and nothing changes). A task's mappings
 * go with it when it dies, once none of its threads runs any more. */
mk_err_t mk_shm_unmap(void *addr, size_t size);

/* ---- Tasks and threads --------------------------------------------------- */

typedef void (*mk_thread_fn_t)(void *arg);
typedef int (*mk_task_main_t)(int argc, char **argv);

/* Create a thread in the calling task. */
mk_err_t mk_thread_create(mk_thread_fn_t fn, void *arg, uint32_t *tid);
/* Wait for a thread of the calling task to finish. */
mk_err_t mk_thread_join(uint32_t tid);

/* Create a task (not yet running). The caller gets a task capability. */
mk_err_t mk_task_create(const char *name, mk_cap_t *task);

/* Copy (mint) one of the caller's capabilities into `task`'s cspace under
 * `name` (may be NULL), with a subset of rights and a badge (0 keeps it;
 * re-badging is refused as for mk_cap_mint). */
mk_err_t mk_task_give(mk_cap_t task, mk_cap_t cap, uint32_t rights, mk_badge_t badge,
                      const char *name, mk_cap_t *slot_in_task);

/* Start the task's first thread running main(argc, argv). argv is copied. */
mk_err_t mk_task_start(mk_cap_t task, mk_task_main_t main, int argc, char *const argv[]);

/* Wait for the task to exit; its exit status is stored in *status. */
mk_err_t mk_task_wait(mk_cap_t task, int *status, uint64_t timeout_ns);

/* End another task (needs its task capability): the same as if it had
 * called mk_task_exit(status). Its threads get MK_EDEAD from every kernel
 * call from then on. MK_EDEAD if it is already dead. */
mk_err_t mk_task_kill(mk_cap_t task, int status);

/* End the calling task: all its threads stop being served, every peer
 * waiting on it gets MK_EDEAD, its capabilities are deleted. */
void mk_task_exit(int status) __attribute__((noreturn));

/* The calling task's name (from the boot configuration). */
const char *mk_task_name(void);

/* ---- Logging ------------------------------------------------------------- */

/* Print one line, prefixed with the calling task's name. */
void mk_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void mk_vlog(const char *fmt, va_list ap);

#ifdef __cplusplus
}
#endif
#endif /* FERRY_MK_H */

/*
 * ferry/sim.h - the host simulator's own interface (not part of the kernel
 * interface; portable code never includes it).
 *
 * The simulator keeps the whole kernel state (tasks, threads, capability
 * spaces, endpoints, notifications, shared-memory objects) in one
 * process-shared memory object, guarded by one robust process-shared mutex
 * (a big kernel lock, as in seL4). Threads block on futexes inside that
 * memory, so a separate Linux process that maps it can take part as a task:
 * sim_attach() performs the unix-socket handshake that hands it the memory
 * and its capabilities.
 */
#ifndef FERRY_SIM_H
#define FERRY_SIM_H

#include <ferry/mk.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Create the kernel state and make the calling thread the first thread of
 * the root task "init". Call once per process before any mk_* call. */
mk_err_t sim_init(void);

/* Stop the system: kills every task but the caller's (their peers get
 * MK_EDEAD) and waits, bounded, for in-process threads to leave the kernel.
 * The kernel state stays mapped (threads that have not left yet may still
 * touch it); sim_init cannot be called again in the same process. */
void sim_shutdown(void);

/* Root task: listen on a unix socket for external processes that attach as
 * tasks created with sim_task_create_external(). */
mk_err_t sim_listen(const char *socket_path);

/* Create a task that a separate Linux process will become by calling
 * sim_attach(socket_path, name). Capabilities are given with mk_task_give. */
mk_err_t sim_task_create_external(const char *name, mk_cap_t *task);

/* In a separate process: attach to a running simulator as the external task
 * `name`; the calling thread becomes that task's first thread. */
mk_err_t sim_attach(const char *socket_path, const char *name);

/* Spin budget (nanoseconds) a waiter busy-polls before it sleeps on its
 * futex. Default 20000; 0 disables spinning. sim_init() reads the initial
 * value from the environment variable FERRY_SPIN_NS; it lives in the shared
 * kernel state, so attached processes use the same budget. */
void sim_set_spin_ns(uint64_t ns);

/* Log sink: every mk_log line goes to this fd (default 2). */
void sim_set_log_fd(int fd);

/* Diagnostics for tests: the number of live kernel objects of a type, and
 * of used slots in the calling task's cspace. */
uint32_t sim_count_objects(uint32_t type);
uint32_t sim_count_caps(void);
/* The kernel object slot a capability of the caller refers to (0 if none):
 * lets tests arrange for an object slot to be reused. */
uint32_t sim_cap_object_index(mk_cap_t cap);
/* The number of shared-memory mappings that tasks of this process hold. */
size_t sim_shm_mappings(void);

#ifdef __cplusplus
}
#endif
#endif

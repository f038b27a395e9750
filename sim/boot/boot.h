/*
 * boot.h - the boot configuration and init (the root task's start-up).
 *
 * A boot configuration (libconfig syntax; see docs/boot-config.md) names the
 * tasks to start, the component each runs with its arguments, and the kernel
 * objects that connect them: endpoints (a server and badged clients),
 * notifications (a waiter and badged signallers) and shared memory objects
 * (mapped read-only or read-write by tasks). boot_load() parses and checks
 * the whole file first and reports the first problem as "FILE:LINE: problem";
 * nothing is created unless the whole configuration is valid.
 */
#ifndef FERRY_SIM_BOOT_H
#define FERRY_SIM_BOOT_H

#include <ferry/mk.h>
#include <stddef.h>

#define BOOT_MAX_TASKS 48
#define BOOT_MAX_OBJS 128
#define BOOT_MAX_USERS 48
#define BOOT_MAX_ARGS 32

typedef struct boot_component {
    const char *name;
    mk_task_main_t main;
    const char *summary;
} boot_component_t;

/* The components this simulator binary can start (registry.c). */
extern const boot_component_t boot_components[];
const boot_component_t *boot_component_find(const char *name);

typedef struct boot_task {
    char name[32];
    char component[32];
    int external; /* started by a separate process through sim_attach */
    int argc;
    char *argv[BOOT_MAX_ARGS + 1];
    mk_task_main_t main;
    mk_cap_t cap; /* after boot_start */
    int exited;   /* after boot_wait_all: 1 once it has exited, with status */
    int status;
} boot_task_t;

enum boot_obj_kind { BOOT_ENDPOINT, BOOT_NOTIFICATION, BOOT_SHM };

typedef struct boot_user {
    int task;         /* index into tasks */
    uint32_t rights;  /* MK_RIGHT_* */
    mk_badge_t badge; /* endpoint clients, notification signallers */
} boot_user_t;

typedef struct boot_obj {
    enum boot_obj_kind kind;
    char name[32];
    uint64_t size; /* shm */
    int nusers;
    boot_user_t users[BOOT_MAX_USERS];
} boot_obj_t;

typedef struct boot_config {
    char path[256];
    char listen[108]; /* unix socket for external tasks, "" = none */
    int ntasks;
    boot_task_t tasks[BOOT_MAX_TASKS];
    int nobjs;
    boot_obj_t objs[BOOT_MAX_OBJS];
} boot_config_t;

/* Parse and check `path`. On failure returns -1 with "FILE:LINE: problem"
 * (or "FILE: problem") in err; nothing else happens. The result is freed
 * with boot_free(). `lookup` finds components by name (ferry-sim passes
 * boot_component_find, the built-in registry). */
int boot_load(const char *path, const boot_component_t *(*lookup)(const char *),
              boot_config_t **out, char *err, size_t errlen);
void boot_free(boot_config_t *cfg);

/* As the root task: create every task and object, give the capabilities,
 * then start the tasks. On failure every task created so far is ended (a
 * task that fails to start stops the ones already started) and the error
 * is returned. */
mk_err_t boot_start(boot_config_t *cfg);

/* Wait until every started (non-external) task has exited or the timeout
 * expires; returns the number still running. */
int boot_wait_all(boot_config_t *cfg, uint64_t timeout_ns);

#endif

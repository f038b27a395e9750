/*
 * ferry-sim - boots a Ferry system in the host simulator.
 *
 * usage: ferry-sim [--check] [--run-for SECONDS] CONFIG
 *        ferry-sim --components | --help
 * Reads the boot configuration, and only if all of it is valid creates the
 * kernel objects and starts the tasks. Stops cleanly on SIGINT/SIGTERM, when
 * --run-for expires, or when every task has exited (exit status 0 only if
 * every task exited with 0).
 */
#include "boot/boot.h"

#include <ferry/sim.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static void usage(FILE *f)
{
    fprintf(f, "usage: ferry-sim [--check] [--run-for SECONDS] CONFIG\n"
               "       ferry-sim --components | --help\n"
               "  --check            check the configuration and exit\n"
               "  --run-for SECONDS  stop the system after SECONDS\n"
               "  --components       list the components this binary can start\n");
}

int main(int argc, char **argv)
{
    const char *path = NULL;
    bool check_only = false;
    double run_for = 0;
    /* Tasks' heaps stay grown, as a task's memory would on the target: the
     * simulator's tasks share the C library's allocator, and by default it
     * hands a thread arena's free top back to the kernel as soon as 128 KiB
     * are free, then takes it again (madvise, page faults). netsrv's lwIP
     * heap (MEM_LIBC_MALLOC) swings by megabytes many times a second under
     * a TCP stream: that churn was a quarter of its time. */
    mallopt(M_TRIM_THRESHOLD, 64 << 20);
    mallopt(M_TOP_PAD, 16 << 20);
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--check") == 0) {
            check_only = true;
        } else if (strcmp(argv[i], "--components") == 0) {
            for (const boot_component_t *c = boot_components; c->name; c++)
                printf("%-16s %s\n", c->name, c->summary);
            return 0;
        } else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            return 0;
        } else if (strcmp(argv[i], "--run-for") == 0 && i + 1 < argc) {
            char *end;
            run_for = strtod(argv[++i], &end);
            if (*end != '\0' || !(run_for > 0)) {
                fprintf(stderr, "ferry-sim: --run-for needs a positive number of seconds, not '%s'\n", argv[i]);
                return 2;
            }
        } else if (argv[i][0] == '-' || path != NULL) {
            fprintf(stderr, "ferry-sim: unexpected argument '%s'\n", argv[i]);
            usage(stderr);
            return 2;
        } else {
            path = argv[i];
        }
    }
    if (path == NULL) {
        usage(stderr);
        return 2;
    }
    char err[512];
    boot_config_t *cfg;
    if (boot_load(path, boot_component_find, &cfg, err, sizeof err) != 0) {
        fprintf(stderr, "ferry-sim: %s\n", err);
        return 1;
    }
    if (check_only) {
        printf("%s: ok (%d tasks, %d objects)\n", path, cfg->ntasks, cfg->nobjs);
        boot_free(cfg);
        return 0;
    }
    /* Signals go to this thread only (sigtimedwait below): block them before
     * any task thread exists so that every thread inherits the mask. */
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGINT);
    sigaddset(&stop, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stop, NULL);
    signal(SIGPIPE, SIG_IGN);
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (sim_init() != MK_OK || boot_start(cfg) != MK_OK) {
        fprintf(stderr, "ferry-sim: boot failed\n");
        sim_shutdown();
        boot_free(cfg);
        return 1;
    }
    mk_log("system up: %d tasks; Ctrl-C stops it", cfg->ntasks);
    uint64_t end = run_for > 0 ? mk_time_ns() + (uint64_t)(run_for * 1e9) : MK_FOREVER;
    /* With only external tasks, their processes come and go: run until
     * stopped. */
    int internal = 0;
    for (int i = 0; i < cfg->ntasks; i++)
        internal += !cfg->tasks[i].external;
    int sig = 0;
    for (;;) {
        struct timespec ts = {.tv_sec = 0, .tv_nsec = 100000000};
        sig = sigtimedwait(&stop, NULL, &ts);
        if (sig > 0)
            break;
        if ((internal > 0 && boot_wait_all(cfg, 0) == 0) || mk_time_ns() >= end) {
            sig = 0;
            break;
        }
    }
    bool all_exited = internal > 0 && boot_wait_all(cfg, 0) == 0;
    mk_log("stopping (%s)", sig == SIGINT ? "SIGINT" : sig == SIGTERM ? "SIGTERM" : all_exited ? "all tasks exited" : "time is up");
    sim_shutdown();
    int rc = 0;
    for (int i = 0; i < cfg->ntasks; i++)
        if (all_exited && !cfg->tasks[i].external && cfg->tasks[i].status != 0) {
            fprintf(stderr, "ferry-sim: task %s exited with status %d\n", cfg->tasks[i].name, cfg->tasks[i].status);
            rc = 1;
        }
    boot_free(cfg);
    return rc;
}

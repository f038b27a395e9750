/*
 * ferry-bench - the foundation benchmark (a program, not a test).
 *
 * Measures the simulator's kernel primitives beside Linux baselines taken in
 * the same run on the same machine, and prints one table:
 *   - IPC null round trip (mk_call / mk_reply_recv, 0 words), same core and
 *     cross core, beside pipe ping-pong, futex ping-pong, and the floor: a
 *     plain cache-line ping-pong (two spinning threads, cross core only).
 *   - Notification wake-up latency (mk_signal -> mk_wait, half a ping-pong)
 *     beside futex wake-up (half a futex ping-pong).
 *   - Ring throughput, descriptors/s through the active and free queues of
 *     ferry/ring.h between two threads, batch 1 and batch 32, beside a pipe
 *     moving the same 8-byte descriptors with the same batching.
 * Each figure is the median of --reps repetitions (min in brackets).
 *
 * usage: ferry-bench [--quick] [--reps N] [--json FILE] [--ipc-only]
 * --ipc-only: only the IPC rows (tools/bench/ferry-benchmark runs those).
 */
#include "bench.h"

#include <errno.h>
#include <ferry/mk.h>
#include <ferry/sim.h>
#include <linux/futex.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#define BENCH_STOP 0xdead

int bench_reps = 7;
long bench_iters = 200000;

/* ---- Helpers ------------------------------------------------------------------ */

/* The CPUs the process may use, read once at start: threads inherit their
 * creator's (pinned) mask, so each pin starts from this one. */
static cpu_set_t cpus_all;

int bench_ncpus(void)
{
    return CPU_COUNT(&cpus_all);
}

/* Pin the calling thread to the n-th CPU the process may run on. */
void bench_pin(int n)
{
    cpu_set_t all = cpus_all, one;
    int seen = 0;
    for (int c = 0; c < CPU_SETSIZE; c++) {
        if (!CPU_ISSET(c, &all))
            continue;
        if (seen++ == n) {
            CPU_ZERO(&one);
            CPU_SET(c, &one);
            pthread_setaffinity_np(pthread_self(), sizeof one, &one);
            return;
        }
    }
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

bench_stat_t bench_run(double (*fn)(void *), void *arg)
{
    double v[64];
    int n = bench_reps > 64 ? 64 : bench_reps;
    for (int i = 0; i < n; i++)
        v[i] = fn(arg);
    qsort(v, (size_t)n, sizeof v[0], cmp_double);
    return (bench_stat_t){.median = v[n / 2], .min = v[0], .max = v[n - 1]};
}

static long futex(_Atomic uint32_t *addr, int op, uint32_t val)
{
    return syscall(SYS_futex, (uint32_t *)addr, op, val, NULL, NULL, 0);
}

/* ---- Ferry: IPC null round trip ------------------------------------------- */

typedef struct ipc_arg {
    int client_cpu, server_cpu;
    mk_cap_t ep;
    long iters;
} ipc_arg_t;

static ipc_arg_t *ipc_cur;

static int ipc_server(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    bench_pin(ipc_cur->server_cpu);
    mk_cap_t ep;
    if (mk_cap_lookup("ep", &ep) != MK_OK)
        return 1;
    mk_msg_t m = {0};
    mk_recv_info_t info;
    mk_cap_t reply = MK_CAP_NULL;
    for (;;) {
        if (mk_reply_recv(ep, reply, &m, &info, MK_FOREVER) != MK_OK || m.label == BENCH_STOP)
            return 0;
        reply = info.reply;
        m.words = 0;
    }
}

static double ipc_once(void *p)
{
    ipc_arg_t *a = p;
    mk_msg_t m = {.label = 1};
    for (long i = 0; i < 1000; i++) /* warm up */
        mk_call(a->ep, &m, MK_FOREVER);
    uint64_t t0 = mk_time_ns();
    for (long i = 0; i < a->iters; i++) {
        m.words = 0;
        if (mk_call(a->ep, &m, MK_FOREVER) != MK_OK) {
            fprintf(stderr, "ferry-bench: call failed\n");
            exit(1);
        }
    }
    return (double)(mk_time_ns() - t0) / (double)a->iters;
}

static bench_stat_t ferry_ipc(int client_cpu, int server_cpu, long iters)
{
    ipc_arg_t a = {.client_cpu = client_cpu, .server_cpu = server_cpu, .iters = iters};
    ipc_cur = &a;
    mk_cap_t ep, task;
    mk_ep_create(&ep);
    mk_task_create("bench-server", &task);
    mk_task_give(task, ep, MK_RIGHT_RECV, 0, "ep", NULL);
    mk_cap_mint(ep, MK_RIGHT_SEND, 1, &a.ep);
    mk_cap_delete(ep);
    char *argv[] = {"bench-server", NULL};
    mk_task_start(task, ipc_server, 1, argv);
    bench_pin(client_cpu);
    bench_stat_t s = bench_run(ipc_once, &a);
    mk_msg_t stop = {.label = BENCH_STOP};
    mk_send(a.ep, &stop, MK_FOREVER);
    mk_task_wait(task, NULL, MK_FOREVER);
    mk_cap_delete(a.ep);
    mk_cap_delete(task);
    return s;
}

/* ---- Ferry: notification wake-up ---------------------------------------------- */

typedef struct ntfn_arg {
    int a_cpu, b_cpu;
    mk_cap_t to_b, from_b_wait; /* a signals to_b, waits from_b_wait */
    mk_cap_t b_wait, b_signal;
    long iters;
    _Atomic int stop;
} ntfn_arg_t;

static void ntfn_partner(void *p)
{
    ntfn_arg_t *a = p;
    bench_pin(a->b_cpu);
    mk_word_t bits;
    while (mk_wait(a->b_wait, &bits, MK_FOREVER) == MK_OK) {
        if (atomic_load(&a->stop))
            break;
        mk_signal(a->b_signal);
    }
}

static double ntfn_once(void *p)
{
    ntfn_arg_t *a = p;
    mk_word_t bits;
    uint64_t t0 = mk_time_ns();
    for (long i = 0; i < a->iters; i++) {
        mk_signal(a->to_b);
        mk_wait(a->from_b_wait, &bits, MK_FOREVER);
    }
    /* Two wake-ups per iteration. */
    return (double)(mk_time_ns() - t0) / (double)a->iters / 2.0;
}

static bench_stat_t ferry_ntfn(int a_cpu, int b_cpu, long iters)
{
    ntfn_arg_t a = {.a_cpu = a_cpu, .b_cpu = b_cpu, .iters = iters};
    mk_cap_t n1, n2;
    mk_ntfn_create(&n1);
    mk_ntfn_create(&n2);
    a.to_b = n1;
    a.b_wait = n1;
    a.b_signal = n2;
    a.from_b_wait = n2;
    uint32_t tid;
    mk_thread_create(ntfn_partner, &a, &tid);
    bench_pin(a_cpu);
    bench_stat_t s = bench_run(ntfn_once, &a);
    atomic_store(&a.stop, 1);
    mk_signal(n1);
    mk_thread_join(tid);
    mk_cap_delete(n1);
    mk_cap_delete(n2);
    return s;
}

/* ---- Linux baselines ------------------------------------------------------------ */

typedef struct base_arg {
    int a_cpu, b_cpu;
    long iters;
    int p1[2], p2[2];           /* pipes */
    _Atomic uint32_t f1, f2;    /* futex words */
    _Atomic uint32_t line;      /* cache-line ping-pong */
    char pad[64];
} base_arg_t;

static void *pipe_partner(void *p)
{
    base_arg_t *a = p;
    bench_pin(a->b_cpu);
    char c;
    while (read(a->p1[0], &c, 1) == 1)
        if (write(a->p2[1], &c, 1) != 1)
            break;
    return NULL;
}

static double pipe_once(void *p)
{
    base_arg_t *a = p;
    char c = 'x';
    uint64_t t0 = mk_time_ns();
    for (long i = 0; i < a->iters; i++)
        if (write(a->p1[1], &c, 1) != 1 || read(a->p2[0], &c, 1) != 1)
            exit(1);
    return (double)(mk_time_ns() - t0) / (double)a->iters;
}

static bench_stat_t linux_pipe(int a_cpu, int b_cpu, long iters)
{
    base_arg_t a = {.a_cpu = a_cpu, .b_cpu = b_cpu, .iters = iters};
    if (pipe(a.p1) || pipe(a.p2))
        exit(1);
    pthread_t t;
    pthread_create(&t, NULL, pipe_partner, &a);
    bench_pin(a_cpu);
    bench_stat_t s = bench_run(pipe_once, &a);
    close(a.p1[1]);
    pthread_join(t, NULL);
    close(a.p1[0]);
    close(a.p2[0]);
    close(a.p2[1]);
    return s;
}

/* Futex ping-pong: each side flips a word 0->1 and wakes; the other waits
 * while it is 0 and resets it. One syscall-level wake-up per direction. */
static void futex_give(_Atomic uint32_t *w)
{
    atomic_store(w, 1);
    futex(w, FUTEX_WAKE_PRIVATE, 1);
}

static void futex_take(_Atomic uint32_t *w)
{
    while (atomic_exchange(w, 0) == 0)
        futex(w, FUTEX_WAIT_PRIVATE, 0);
}

static void *futex_partner(void *p)
{
    base_arg_t *a = p;
    bench_pin(a->b_cpu);
    for (;;) {
        futex_take(&a->f1);
        if (a->iters < 0)
            break;
        futex_give(&a->f2);
    }
    return NULL;
}

static double futex_once(void *p)
{
    base_arg_t *a = p;
    uint64_t t0 = mk_time_ns();
    for (long i = 0; i < a->iters; i++) {
        futex_give(&a->f1);
        futex_take(&a->f2);
    }
    return (double)(mk_time_ns() - t0) / (double)a->iters;
}

static bench_stat_t linux_futex(int a_cpu, int b_cpu, long iters)
{
    base_arg_t a = {.a_cpu = a_cpu, .b_cpu = b_cpu, .iters = iters};
    pthread_t t;
    pthread_create(&t, NULL, futex_partner, &a);
    bench_pin(a_cpu);
    bench_stat_t s = bench_run(futex_once, &a);
    a.iters = -1;
    futex_give(&a.f1);
    pthread_join(t, NULL);
    return s;
}

/* Cache-line ping-pong: the floor for any cross-core handshake. */
static void *line_partner(void *p)
{
    base_arg_t *a = p;
    bench_pin(a->b_cpu);
    for (;;) {
        uint32_t v;
        while ((v = atomic_load_explicit(&a->line, memory_order_acquire)) % 2 == 0)
            ;
        if (v == UINT32_MAX)
            break;
        atomic_store_explicit(&a->line, v + 1, memory_order_release);
    }
    return NULL;
}

static double line_once(void *p)
{
    base_arg_t *a = p;
    uint64_t t0 = mk_time_ns();
    for (long i = 0; i < a->iters; i++) {
        uint32_t v = atomic_load_explicit(&a->line, memory_order_relaxed);
        atomic_store_explicit(&a->line, v + 1, memory_order_release);
        while (atomic_load_explicit(&a->line, memory_order_acquire) == v + 1)
            ;
    }
    return (double)(mk_time_ns() - t0) / (double)a->iters;
}

static bench_stat_t linux_line(int a_cpu, int b_cpu, long iters)
{
    base_arg_t a = {.a_cpu = a_cpu, .b_cpu = b_cpu, .iters = iters};
    pthread_t t;
    pthread_create(&t, NULL, line_partner, &a);
    bench_pin(a_cpu);
    bench_stat_t s = bench_run(line_once, &a);
    atomic_store(&a.line, UINT32_MAX);
    pthread_join(t, NULL);
    return s;
}

/* ---- Report ------------------------------------------------------------------- */

static FILE *json;
static int json_rows;

static void row(const char *test, const char *unit, bench_stat_t ferry, const char *base_name,
                bench_stat_t base, bool lower_better)
{
    double ratio = base.median > 0 ? ferry.median / base.median : 0;
    char f[48], b[48];
    snprintf(f, sizeof f, "%.3g [%.3g]", ferry.median, ferry.min);
    snprintf(b, sizeof b, "%.3g [%.3g]", base.median, base.min);
    printf("%-34s %-22s %-24s %-22s %6.2f  %s\n", test, f, base_name, b, ratio,
           lower_better ? "lower is better" : "higher is better");
    if (json)
        fprintf(json,
                "%s\n  {\"test\": \"%s\", \"unit\": \"%s\", \"ferry_median\": %.6g, \"ferry_min\": %.6g, "
                "\"baseline\": \"%s\", \"baseline_median\": %.6g, \"baseline_min\": %.6g, \"ratio\": %.4g, "
                "\"lower_is_better\": %s}",
                json_rows++ ? "," : "", test, unit, ferry.median, ferry.min, base_name, base.median, base.min,
                ratio, lower_better ? "true" : "false");
}

static void machine(void)
{
    char model[256] = "unknown CPU", line[512];
    FILE *f = fopen("/proc/cpuinfo", "r");
    while (f && fgets(line, sizeof line, f))
        if (strncmp(line, "model name", 10) == 0) {
            char *c = strchr(line, ':');
            if (c) {
                snprintf(model, sizeof model, "%s", c + 2);
                model[strcspn(model, "\n")] = '\0';
            }
            break;
        }
    if (f)
        fclose(f);
    char kernel[256] = "";
    f = fopen("/proc/sys/kernel/osrelease", "r");
    if (f && fgets(kernel, sizeof kernel, f))
        kernel[strcspn(kernel, "\n")] = '\0';
    if (f)
        fclose(f);
    printf("machine: %s, %d CPUs usable, Linux %s\n", model, bench_ncpus(), kernel);
}

/* The notification and ring rows (after the IPC rows). */
static void other_rows(int cross, long it)
{
    if (cross) {
        bench_stat_t nt_x = ferry_ntfn(0, 1, it);
        bench_stat_t fw_x = linux_futex(0, 1, it);
        fw_x.median /= 2;
        fw_x.min /= 2;
        fw_x.max /= 2;
        row("Notification wake-up, cross core", "us", bench_us(nt_x), "futex wake-up", bench_us(fw_x), true);
    }
    bench_stat_t nt_s = ferry_ntfn(0, 0, it / 4);
    bench_stat_t fw_s = linux_futex(0, 0, it / 4);
    fw_s.median /= 2;
    fw_s.min /= 2;
    fw_s.max /= 2;
    row("Notification wake-up, same core", "us", bench_us(nt_s), "futex wake-up", bench_us(fw_s), true);
    bench_rings(row, cross);
}

int main(int argc, char **argv)
{
    const char *json_path = NULL;
    bool ipc_only = false;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--quick") == 0) {
            bench_reps = 3;
            bench_iters = 20000;
        } else if (strcmp(argv[i], "--reps") == 0 && i + 1 < argc) {
            bench_reps = atoi(argv[++i]);
            if (bench_reps < 1 || bench_reps > 64) {
                fprintf(stderr, "ferry-bench: --reps takes 1..64\n");
                return 2;
            }
        } else if (strcmp(argv[i], "--json") == 0 && i + 1 < argc) {
            json_path = argv[++i];
        } else if (strcmp(argv[i], "--ipc-only") == 0) {
            ipc_only = true;
        } else {
            fprintf(stderr, "usage: ferry-bench [--quick] [--reps N] [--json FILE] [--ipc-only]\n");
            return 2;
        }
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (sched_getaffinity(0, sizeof cpus_all, &cpus_all) != 0) {
        CPU_ZERO(&cpus_all);
        CPU_SET(0, &cpus_all);
    }
    if (sim_init() != MK_OK)
        return 1;
    if (json_path && (json = fopen(json_path, "w")) == NULL) {
        fprintf(stderr, "ferry-bench: cannot write %s\n", json_path);
        return 1;
    }
    if (json)
        fprintf(json, "[");
    machine();
    int cross = bench_ncpus() > 1 ? 1 : 0;
    long it = bench_iters;
    printf("figures: median [min] of %d repetitions; times in microseconds unless noted\n\n", bench_reps);
    printf("%-34s %-22s %-24s %-22s %6s\n", "Test", "Ferry", "Linux baseline", "", "Ratio");
    bench_stat_t ipc_same = ferry_ipc(0, 0, it / 4);
    bench_stat_t pipe_same = linux_pipe(0, 0, it / 4);
    bench_stat_t futex_same = linux_futex(0, 0, it / 4);
    row("IPC null round trip, same core", "us", bench_us(ipc_same), "pipe ping-pong", bench_us(pipe_same), true);
    row("", "us", bench_us(ipc_same), "futex ping-pong", bench_us(futex_same), true);
    if (cross) {
        bench_stat_t ipc_x = ferry_ipc(0, 1, it);
        bench_stat_t pipe_x = linux_pipe(0, 1, it / 4);
        bench_stat_t futex_x = linux_futex(0, 1, it);
        bench_stat_t line_x = linux_line(0, 1, it * 5);
        row("IPC null round trip, cross core", "us", bench_us(ipc_x), "pipe ping-pong", bench_us(pipe_x), true);
        row("", "us", bench_us(ipc_x), "futex ping-pong", bench_us(futex_x), true);
        row("", "us", bench_us(ipc_x), "cache-line ping-pong", bench_us(line_x), true);
    }
    if (!ipc_only)
        other_rows(cross, it);
    if (json) {
        fprintf(json, "\n]\n");
        fclose(json);
    }
    sim_shutdown();
    return 0;
}
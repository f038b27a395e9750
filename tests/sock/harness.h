/*
 * harness.h - the socket tests' fixture: netsrv (loopback only) as a task
 * of the simulator, client tasks ("jobs") that run a function of the test
 * with libferrysock, each with its own badge on netsrv's endpoint, and
 * helpers for addresses, patterns and bounded waiting.
 *
 * A job reports through its job_t (same address space): `status` (0 = the
 * function returned 0) and `why` (what failed). Jobs and the test meet
 * through the atomic fields `stage` and `port`. Every wait is bounded.
 */
#ifndef FERRY_TEST_SOCK_HARNESS_H
#define FERRY_TEST_SOCK_HARNESS_H

#include <check.h>
#include <errno.h>
#include <ferry/mk.h>
#include <ferry/sim.h>
#include <ferry/socket.h>
#include <netsrv_client.h>
#include <netsrv_component.h>
#include <sock_client.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MS 1000000ull
#define CALL (10000 * MS)
#define JOBS_MAX 24

typedef struct job job_t;
typedef int (*job_fn_t)(job_t *j);

struct job {
    job_fn_t fn;
    const char *name;
    mk_badge_t badge;
    mk_cap_t task;
    void *arg;
    long param[4];
    _Atomic int stage; /* job <-> test hand-shakes */
    _Atomic int port;  /* a port the job listens on */
    _Atomic int done;
    _Atomic int release; /* set by the test: job_hold() returns */
    int status;
    uint64_t bytes;         /* what it moved (checked) */
    sock_client_stats_t st; /* its counters, as sock.idl's stats gave them (job_stats) */
    char why[256];
};

typedef union addr {
    struct fs_sockaddr sa;
    struct fs_sockaddr_in in;
    struct fs_sockaddr_in6 in6;
} addr_t;

/* Inside a job: fail with a reason unless cond holds. */
#define JCHECK(j, cond, ...)                 \
    do {                                     \
        if (!(cond))                         \
            return jfail((j), __VA_ARGS__);  \
    } while (0)

extern job_t jobs[JOBS_MAX];
extern mk_cap_t h_ep, h_admin, h_netsrv;

/* Byte `i` of stream `k`: no two streams alike, no short period. */
static inline uint8_t pat(uint32_t k, uint64_t i)
{
    uint64_t x = (i >> 3) * 0x9e3779b97f4a7c15ull + k * 0x632be59bd9b4e019ull;
    x ^= x >> 29;
    return (uint8_t)(x >> (8 * (i & 7)));
}

int jfail(job_t *j, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int job_main(int argc, char **argv);
void netsrv_start(const char *const *extra);
void netsrv_stop(void);
job_t *spawn(int i, const char *name, mk_badge_t badge, job_fn_t fn);
void join(job_t *j, uint64_t timeout_ns);
void wait_stage(job_t *j, int stage, uint64_t timeout_ns);
bool job_wait_stage(job_t *other, int stage, uint64_t timeout_ns);
/* Inside a job: stay alive (its sockets and session too) until the test
 * sets j->release (at most 10 s). */
void job_hold(job_t *j);
/* Inside a job: its own counters (sock.idl stats) into j->st. */
bool job_stats(job_t *j);
fs_socklen_t loop_addr(bool v6, uint16_t port, addr_t *a);
fs_socklen_t any_addr(bool v6, uint16_t port, addr_t *a);
uint16_t addr_port(const addr_t *a);
int listen_on(bool v6, uint16_t want, int backlog, uint16_t *port);
int connect_to(bool v6, uint16_t port);
void pat_fill(uint8_t *buf, uint32_t k, uint64_t off, size_t n);
long pat_check(const uint8_t *buf, uint32_t k, uint64_t off, size_t n);
int send_all(int fd, const void *buf, size_t n);
int recv_all(int fd, void *buf, size_t n);
netsrv_sock_stats_t sock_totals(void);
bool client_stats(mk_badge_t badge, netsrv_client_stats_t *out);
uint64_t pool_used(const char *name);

/* Adds test t to tc unless SOCK_TEST names another one (debugging). */
#define SOCK_ADD(tc, t)                                   \
    do {                                                  \
        if (sock_test_selected(#t))                       \
            tcase_add_test(tc, t);                        \
    } while (0)
bool sock_test_selected(const char *name);
/* Runs suite s, each test in its own process (one netsrv, one lwIP per
 * process); the exit status for main. */
int sock_run_suite(Suite *s);

#endif

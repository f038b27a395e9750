/*
 * harness.c - the socket tests' fixture (see harness.h).
 */
#include "harness.h"

job_t jobs[JOBS_MAX];
mk_cap_t h_ep;     /* netsrv's endpoint (all rights; for minting) */
mk_cap_t h_admin;  /* the test's own netsrv.idl client capability */
mk_cap_t h_netsrv; /* netsrv's task */

/* Inside a job: record why and fail. */
int jfail(job_t *j, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(j->why, sizeof j->why, fmt, ap);
    va_end(ap);
    if (n >= 0 && (size_t)n < sizeof j->why - 24)
        snprintf(j->why + n, sizeof j->why - (size_t)n, " (errno %d)", errno);
    return 1;
}


int job_main(int argc, char **argv)
{
    if (argc < 2)
        return 99;
    job_t *j = &jobs[atoi(argv[1])];
    j->status = j->fn(j);
    fs_session_close(); /* whatever the job left open; frees the library's state */
    atomic_store(&j->done, 1);
    return j->status;
}

/* Start netsrv (loopback only) with extra arguments (NULL-terminated). */
void netsrv_start(const char *const *extra)
{
    ck_assert_int_eq(sim_init(), MK_OK);
    ck_assert_int_eq(mk_ep_create(&h_ep), MK_OK);
    ck_assert_int_eq(mk_cap_mint(h_ep, MK_RIGHT_SEND, 1000, &h_admin), MK_OK);
    ck_assert_int_eq(mk_task_create("netsrv", &h_netsrv), MK_OK);
    ck_assert_int_eq(mk_task_give(h_netsrv, h_ep, MK_RIGHT_RECV, 0, "netsrv", NULL), MK_OK);
    char *argv[16] = {"netsrv"};
    int argc = 1;
    for (; extra != NULL && extra[argc - 1] != NULL && argc < 15; argc++)
        argv[argc] = (char *)extra[argc - 1];
    ck_assert_int_eq(mk_task_start(h_netsrv, netsrv_main, argc, argv), MK_OK);
    uint32_t n = 0;
    ck_assert_int_eq(netsrv_get_netif_count(h_admin, CALL, &n), 0);
    memset(jobs, 0, sizeof jobs);
}

void netsrv_stop(void)
{
    sim_shutdown();
}

/* Start job i as task `name` with `badge`, running fn. */
job_t *spawn(int i, const char *name, mk_badge_t badge, job_fn_t fn)
{
    job_t *j = &jobs[i];
    j->fn = fn;
    j->name = name;
    j->badge = badge;
    ck_assert_int_eq(mk_task_create(name, &j->task), MK_OK);
    ck_assert_int_eq(mk_task_give(j->task, h_ep, MK_RIGHT_SEND, badge, "netsrv", NULL), MK_OK);
    char idx[8];
    snprintf(idx, sizeof idx, "%d", i);
    char *argv[] = {"job", idx};
    ck_assert_int_eq(mk_task_start(j->task, job_main, 2, argv), MK_OK);
    return j;
}

/* Wait for a job to end (bounded) and check that it succeeded. */
/* Every job's state, for failure messages. */
static const char *jobs_state(void)
{
    static char buf[1024];
    size_t at = 0;
    buf[0] = '\0';
    for (int i = 0; i < JOBS_MAX && at < sizeof buf - 1; i++)
        if (jobs[i].name != NULL) {
            int n = snprintf(buf + at, sizeof buf - at, " [%s: stage %d%s%s]", jobs[i].name,
                             atomic_load(&jobs[i].stage), atomic_load(&jobs[i].done) ? ", done " : "",
                             jobs[i].why);
            if (n < 0)
                break;
            at += (size_t)n;
        }
    return buf;
}

void join(job_t *j, uint64_t timeout_ns)
{
    int st = -100;
    mk_err_t e = mk_task_wait(j->task, &st, timeout_ns);
    ck_assert_msg(e == MK_OK, "job %s did not end in time (stage %d):%s", j->name,
                  atomic_load(&j->stage), jobs_state());
    ck_assert_msg(st == 0, "job %s failed (status %d): %s", j->name, st, j->why);
}

/* Wait until job j reached `stage` (bounded, in the test thread). */
void wait_stage(job_t *j, int stage, uint64_t timeout_ns)
{
    uint64_t end = mk_time_ns() + timeout_ns;
    while (atomic_load(&j->stage) < stage && !atomic_load(&j->done) && mk_time_ns() < end)
        mk_sleep_ns(1 * MS);
    ck_assert_msg(atomic_load(&j->stage) >= stage, "job %s stuck at stage %d (want %d):%s",
                  j->name, atomic_load(&j->stage), stage, jobs_state());
}

bool job_wait_stage(job_t *other, int stage, uint64_t timeout_ns)
{
    uint64_t end = mk_time_ns() + timeout_ns;
    while (atomic_load(&other->stage) < stage && mk_time_ns() < end)
        mk_sleep_ns(1 * MS);
    return atomic_load(&other->stage) >= stage;
}

void job_hold(job_t *j)
{
    uint64_t end = mk_time_ns() + 10000 * MS;
    while (!atomic_load(&j->release) && mk_time_ns() < end)
        mk_sleep_ns(1 * MS);
}

bool job_stats(job_t *j)
{
    mk_cap_t ep;
    return mk_cap_lookup("netsrv", &ep) == MK_OK && sock_stats(ep, CALL, &j->st) == 0;
}

/* ---- Addresses ------------------------------------------------------------------------------ */


/* 127.0.0.1:port (v6 false) or [::1]:port (v6 true). */
fs_socklen_t loop_addr(bool v6, uint16_t port, addr_t *a)
{
    memset(a, 0, sizeof *a);
    if (!v6) {
        a->in.sin_family = FS_AF_INET;
        a->in.sin_port = fs_htons(port);
        a->in.sin_addr.s_addr = fs_htonl(0x7f000001u);
        return sizeof a->in;
    }
    a->in6.sin6_family = FS_AF_INET6;
    a->in6.sin6_port = fs_htons(port);
    a->in6.sin6_addr.s6_addr[15] = 1;
    return sizeof a->in6;
}

/* The wildcard address of the family. */
fs_socklen_t any_addr(bool v6, uint16_t port, addr_t *a)
{
    fs_socklen_t len = loop_addr(v6, port, a);
    if (v6)
        a->in6.sin6_addr.s6_addr[15] = 0;
    else
        a->in.sin_addr.s_addr = 0;
    return len;
}

uint16_t addr_port(const addr_t *a)
{
    return fs_ntohs(a->sa.sa_family == FS_AF_INET ? a->in.sin_port : a->in6.sin6_port);
}

/* A listening TCP socket on the family's loopback address (port 0: any);
 * its port in *port. -1 on failure. */
int listen_on(bool v6, uint16_t want, int backlog, uint16_t *port)
{
    int fd = fs_socket(v6 ? FS_AF_INET6 : FS_AF_INET, FS_SOCK_STREAM, 0);
    if (fd < 0)
        return -1;
    addr_t a;
    fs_socklen_t len = loop_addr(v6, want, &a);
    if (fs_bind(fd, &a.sa, len) != 0 || fs_listen(fd, backlog) != 0) {
        fs_close(fd);
        return -1;
    }
    len = sizeof a;
    if (fs_getsockname(fd, &a.sa, &len) != 0)
        return -1;
    *port = addr_port(&a);
    return fd;
}

int connect_to(bool v6, uint16_t port)
{
    int fd = fs_socket(v6 ? FS_AF_INET6 : FS_AF_INET, FS_SOCK_STREAM, 0);
    if (fd < 0)
        return -1;
    addr_t a;
    fs_socklen_t len = loop_addr(v6, port, &a);
    if (fs_connect(fd, &a.sa, len) != 0) {
        int e = errno;
        fs_close(fd);
        errno = e;
        return -1;
    }
    return fd;
}

/* ---- Data ----------------------------------------------------------------------------------- */


void pat_fill(uint8_t *buf, uint32_t k, uint64_t off, size_t n)
{
    for (size_t i = 0; i < n; i++)
        buf[i] = pat(k, off + i);
}

/* -1 if buf matches stream k at off, else the first bad index. */
long pat_check(const uint8_t *buf, uint32_t k, uint64_t off, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (buf[i] != pat(k, off + i))
            return (long)i;
    return -1;
}

/* Blocking send of all n bytes. */
int send_all(int fd, const void *buf, size_t n)
{
    size_t done = 0;
    while (done < n) {
        fs_ssize_t k = fs_send(fd, (const uint8_t *)buf + done, n - done, 0);
        if (k <= 0)
            return -1;
        done += (size_t)k;
    }
    return 0;
}

/* Blocking receive of exactly n bytes (-1: error or early EOF). */
int recv_all(int fd, void *buf, size_t n)
{
    size_t done = 0;
    while (done < n) {
        fs_ssize_t k = fs_recv(fd, (uint8_t *)buf + done, n - done, 0);
        if (k <= 0)
            return -1;
        done += (size_t)k;
    }
    return 0;
}

/* ---- netsrv's counters ------------------------------------------------------------------------ */

netsrv_sock_stats_t sock_totals(void)
{
    netsrv_sock_stats_t st;
    ck_assert_int_eq(netsrv_get_sock_stats(h_admin, CALL, &st), 0);
    return st;
}

/* The counters of the client with `badge`; false if netsrv knows none. */
bool client_stats(mk_badge_t badge, netsrv_client_stats_t *out)
{
    uint32_t n = 0;
    ck_assert_int_eq(netsrv_get_client_count(h_admin, CALL, &n), 0);
    for (uint32_t i = 0; i < n; i++) {
        uint64_t b;
        netsrv_client_stats_t st;
        if (netsrv_get_client_stats(h_admin, CALL, i, &b, &st) != 0)
            continue;
        if (b == badge) {
            *out = st;
            return true;
        }
    }
    return false;
}

/* lwIP's pool `name` (e.g. "TCP_PCB"): elements in use. */
uint64_t pool_used(const char *name)
{
    char got[NETSRV_STAT_NAME_MAX + 1];
    netsrv_mem_stats_t st;
    for (uint32_t i = 0; netsrv_get_mem_stats(h_admin, CALL, i, got, &st) == 0; i++)
        if (strcmp(got, name) == 0)
            return st.used;
    ck_abort_msg("no pool %s", name);
    return 0;
}

bool sock_test_selected(const char *name)
{
    const char *only = getenv("SOCK_TEST");
    return only == NULL || strcmp(only, name) == 0;
}

int sock_run_suite(Suite *s)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    SRunner *sr = srunner_create(s);
    srunner_set_fork_status(sr, CK_FORK);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

/*
 * test_sock_slirp.c - the whole path through the slirp NIC driver, from
 * both ends:
 *
 *  - host to Ferry: ferry-sim boots the shipped sim/configs/ferry.cfg (the
 *    two host forwards moved to free ports chosen now, as `tools/ferry run
 *    --http-port/--echo-port` does); curl fetches httpd's page and /stats
 *    (netsrv's live counters: the DHCP address, the socket service and its
 *    clients) from 127.0.0.1; real Linux sockets send 1 MiB on each of four
 *    connections at once to echo and get every byte back; SIGTERM stops
 *    ferry-sim cleanly;
 *  - Ferry to host: a task in the simulator (on libferrysock, through
 *    netsrv and nic-slirp) connects to slirp's host aliases 10.0.2.2 and
 *    fec0::2, which reach a server this test runs on 127.0.0.1 and ::1,
 *    and exchanges 512 KiB each way with it, checked byte for byte.
 *
 * Network safety: the host side listens on loopback only and connects only
 * to 127.0.0.1; the simulator reaches only slirp's host aliases (which map
 * to the host's loopback). Every wait is bounded.
 */
#include <arpa/inet.h>
#include <boot.h>
#include <check.h>
#include <errno.h>
#include <ferry/mk.h>
#include <ferry/sim.h>
#include "slirp_fetcher.h"
#include <netinet/in.h>
#include <netsrv_component.h>
#include <nic_slirp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MS 1000000ull

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}


/* A TCP port on 127.0.0.1 that is free now. */
static uint16_t free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    ck_assert(fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof a) == 0 &&
              getsockname(fd, (struct sockaddr *)&a, &len) == 0);
    close(fd);
    return ntohs(a.sin_port);
}

/* ---- Host to Ferry: ferry-sim with ferry.cfg ---------------------------------------------- */

static pid_t sim_pid;
static char sim_log[64], cfg_path[64];
static uint16_t http_port, echo_port;

/* ferry.cfg with its two host forwards on the given ports. */
static void write_config(void)
{
    const char *src = getenv("FERRY_CFG");
    ck_assert_ptr_nonnull(src);
    FILE *f = fopen(src, "r");
    ck_assert_ptr_nonnull(f);
    static char text[16384];
    size_t n = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    text[n] = '\0';
    char *h = strstr(text, "tcp:127.0.0.1:8080-");
    char *e = strstr(text, "tcp:127.0.0.1:7777-");
    ck_assert_msg(h && e && !strstr(h + 1, "tcp:127.0.0.1:8080-") &&
                      !strstr(e + 1, "tcp:127.0.0.1:7777-"),
                  "ferry.cfg must forward 127.0.0.1:8080 and 127.0.0.1:7777 once each");
    snprintf(cfg_path, sizeof cfg_path, "/tmp/ferry-main-%d.cfg", (int)getpid());
    f = fopen(cfg_path, "w");
    ck_assert_ptr_nonnull(f);
    for (char *p = text; *p; p++) {
        if (p == h) {
            fprintf(f, "tcp:127.0.0.1:%u-", (unsigned)http_port);
            p += strlen("tcp:127.0.0.1:8080-") - 1;
        } else if (p == e) {
            fprintf(f, "tcp:127.0.0.1:%u-", (unsigned)echo_port);
            p += strlen("tcp:127.0.0.1:7777-") - 1;
        } else {
            fputc(*p, f);
        }
    }
    fclose(f);
}

static void start_sim(void)
{
    const char *sim = getenv("FERRY_SIM");
    ck_assert_ptr_nonnull(sim);
    http_port = free_port();
    echo_port = free_port();
    write_config();
    snprintf(sim_log, sizeof sim_log, "/tmp/ferry-main-%d.log", (int)getpid());
    sim_pid = fork();
    ck_assert_int_ge(sim_pid, 0);
    if (sim_pid == 0) {
        FILE *log = freopen(sim_log, "w", stdout);
        if (log == NULL || dup2(fileno(stdout), 2) < 0)
            _exit(127);
        execl(sim, sim, "--run-for", "120", cfg_path, (char *)NULL);
        _exit(127);
    }
}

static void stop_sim(void)
{
    if (sim_pid <= 0)
        return;
    kill(sim_pid, SIGTERM);
    int st = 0;
    uint64_t end = now_ns() + 10000 * MS;
    pid_t r;
    while ((r = waitpid(sim_pid, &st, WNOHANG)) == 0 && now_ns() < end)
        usleep(10000);
    if (r == 0) {
        kill(sim_pid, SIGKILL);
        waitpid(sim_pid, &st, 0);
        ck_abort_msg("ferry-sim did not stop within 10 s of SIGTERM");
    }
    sim_pid = 0;
    unlink(cfg_path);
    ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "ferry-sim ended with status %d", st);
}

static int connect_local(uint16_t port, int timeout_s)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons(port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    struct timeval tv = {.tv_sec = timeout_s};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* GET / with a plain socket until httpd answers 200 (the forward accepts on
 * the host at once; until netsrv has its DHCP address slirp cannot reach
 * it, and the host connection just ends). */
static bool wait_http(uint64_t timeout_ns)
{
    uint64_t end = now_ns() + timeout_ns;
    while (now_ns() < end) {
        int fd = connect_local(http_port, 1);
        if (fd >= 0) {
            const char req[] = "GET / HTTP/1.0\r\n\r\n";
            char buf[64] = "";
            if (write(fd, req, sizeof req - 1) == (ssize_t)(sizeof req - 1) &&
                read(fd, buf, sizeof buf - 1) > 0 && strncmp(buf, "HTTP/1.1 200", 12) == 0) {
                close(fd);
                return true;
            }
            close(fd);
        }
        usleep(100000);
    }
    return false;
}

/* curl URL: the HTTP status; the body in body[] (NUL-terminated). */
static int curl(const char *path, char *body, size_t size)
{
    char url[128], out[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%u%s", (unsigned)http_port, path);
    snprintf(out, sizeof out, "/tmp/ferry-curl-%d.out", (int)getpid());
    int pipefd[2];
    ck_assert_int_eq(pipe(pipefd), 0);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        dup2(pipefd[1], 1);
        close(pipefd[0]);
        execlp("curl", "curl", "-sS", "--max-time", "10", "-o", out, "-w", "%{http_code}", url,
               (char *)NULL);
        _exit(127);
    }
    close(pipefd[1]);
    char code[16] = "";
    ssize_t n = read(pipefd[0], code, sizeof code - 1);
    close(pipefd[0]);
    int st;
    waitpid(pid, &st, 0);
    ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) != 127, "curl is missing (tools/ferry setup)");
    FILE *f = fopen(out, "r");
    size_t got = f ? fread(body, 1, size - 1, f) : 0;
    body[got] = '\0';
    if (f)
        fclose(f);
    unlink(out);
    return n > 0 ? atoi(code) : -1;
}

#define ECHO_CONNS 4
#define ECHO_BYTES (1u << 20)

/* One echo connection from the host: send and read back at once (poll),
 * check every byte. */
static void *echo_conn(void *arg)
{
    uintptr_t k = (uintptr_t)arg;
    int fd = connect_local(echo_port, 10);
    if (fd < 0)
        return (void *)"connect";
    static _Thread_local uint8_t buf[16384];
    uint64_t sent = 0, got = 0;
    uint64_t end = now_ns() + 30000 * MS;
    while (got < ECHO_BYTES && now_ns() < end) {
        struct pollfd p = {.fd = fd, .events = POLLIN | (sent < ECHO_BYTES ? POLLOUT : 0)};
        if (poll(&p, 1, 1000) < 0)
            break;
        if ((p.revents & POLLOUT) && sent < ECHO_BYTES) {
            size_t n = ECHO_BYTES - sent < sizeof buf ? ECHO_BYTES - sent : sizeof buf;
            for (size_t i = 0; i < n; i++)
                buf[i] = pat((uint32_t)k, sent + i);
            ssize_t w = send(fd, buf, n, MSG_DONTWAIT | MSG_NOSIGNAL);
            if (w > 0)
                sent += (uint64_t)w;
        }
        if (p.revents & (POLLIN | POLLHUP | POLLERR)) {
            ssize_t r = recv(fd, buf, sizeof buf, MSG_DONTWAIT);
            if (r == 0 || (r < 0 && errno != EAGAIN)) {
                close(fd);
                return (void *)"connection ended early";
            }
            for (ssize_t i = 0; i < r; i++)
                if (buf[i] != pat((uint32_t)k, got + (uint64_t)i)) {
                    close(fd);
                    return (void *)"data differs";
                }
            if (r > 0)
                got += (uint64_t)r;
        }
    }
    close(fd);
    return got == ECHO_BYTES ? NULL : (void *)"timed out";
}

START_TEST(test_host_to_ferry)
{
    start_sim();
    bool up = wait_http(30000 * MS);
    if (!up)
        stop_sim();
    ck_assert_msg(up, "httpd never answered on 127.0.0.1:%u (log: %s)", (unsigned)http_port,
                  sim_log);
    static char body[32768];
    ck_assert_int_eq(curl("/", body, sizeof body), 200);
    ck_assert_ptr_nonnull(strstr(body, "Served by Ferry"));
    /* Four connections at once to echo, 1 MiB each way each. */
    pthread_t t[ECHO_CONNS];
    for (uintptr_t k = 0; k < ECHO_CONNS; k++)
        pthread_create(&t[k], NULL, echo_conn, (void *)k);
    for (int k = 0; k < ECHO_CONNS; k++) {
        void *why;
        pthread_join(t[k], &why);
        ck_assert_msg(why == NULL, "echo connection %d: %s", k, (const char *)why);
    }
    /* /stats: netsrv's live counters, through netsrv.idl. */
    ck_assert_int_eq(curl("/stats", body, sizeof body), 200);
    ck_assert_msg(strstr(body, "nic0 10.0.2.15/24 gw 10.0.2.2 (DHCP)") != NULL, "%s", body);
    ck_assert_msg(strstr(body, "sockets:") && strstr(body, "client 2:") &&
                      strstr(body, "client 3:") && strstr(body, "httpd: "),
                  "%s", body);
    ck_assert_int_eq(curl("/nothing-here", body, sizeof body), 404);
    stop_sim();
    FILE *f = fopen(sim_log, "r");
    static char log[65536];
    size_t n = f ? fread(log, 1, sizeof log - 1, f) : 0;
    log[n] = '\0';
    if (f)
        fclose(f);
    ck_assert_msg(strstr(log, "stopping (SIGTERM)") != NULL, "%s", log);
    unlink(sim_log);
}
END_TEST

/* ---- Ferry to host: a task reaches the host through 10.0.2.2 / fec0::2 -------------------- */

static struct {
    int listen4, listen6;
    _Atomic int served;
} host;

/* The host's echo server: one thread per connection. */
static void *host_conn(void *arg)
{
    int fd = (int)(intptr_t)arg;
    uint8_t buf[16384];
    ssize_t n;
    while ((n = recv(fd, buf, sizeof buf, 0)) > 0)
        if (send(fd, buf, (size_t)n, MSG_NOSIGNAL) != n)
            break;
    close(fd);
    return NULL;
}

static void *host_accept(void *arg)
{
    (void)arg;
    for (int served = 0; served < 2; served++) {
        struct pollfd p[2] = {{.fd = host.listen4, .events = POLLIN},
                              {.fd = host.listen6, .events = POLLIN}};
        if (poll(p, 2, 60000) <= 0)
            return NULL;
        int fd = accept((p[0].revents & POLLIN) ? host.listen4 : host.listen6, NULL, NULL);
        if (fd < 0)
            return NULL;
        struct timeval tv = {.tv_sec = 20};
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        pthread_t t;
        pthread_create(&t, NULL, host_conn, (void *)(intptr_t)fd);
        pthread_detach(t);
        host.served++;
    }
    return NULL;
}

static void host_listen(void)
{
    host.listen4 = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    ck_assert(bind(host.listen4, (struct sockaddr *)&a, sizeof a) == 0 &&
              getsockname(host.listen4, (struct sockaddr *)&a, &len) == 0 &&
              listen(host.listen4, 4) == 0);
    fetch.port = ntohs(a.sin_port);
    host.listen6 = socket(AF_INET6, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(host.listen6, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
    struct sockaddr_in6 a6 = {.sin6_family = AF_INET6, .sin6_port = htons(fetch.port),
                              .sin6_addr = IN6ADDR_LOOPBACK_INIT};
    ck_assert(bind(host.listen6, (struct sockaddr *)&a6, sizeof a6) == 0 &&
              listen(host.listen6, 4) == 0);
}

static const boot_component_t components[] = {
    {"nic-slirp", nic_slirp_main, "NIC driver on libslirp"},
    {"netsrv", netsrv_main, "network server"},
    {"fetcher", fetcher_main, "socket client of this test"},
    {NULL, NULL, NULL},
};

static const boot_component_t *lookup(const char *name)
{
    for (const boot_component_t *c = components; c->name; c++)
        if (strcmp(c->name, name) == 0)
            return c;
    return NULL;
}

static const char guest_config[] =
    "tasks = (\n"
    "  { name = \"slirp0\"; component = \"nic-slirp\"; args = [ \"--endpoint\", \"nic0\" ]; },\n"
    "  { name = \"netsrv\"; component = \"netsrv\"; args = [ \"--nic\", \"nic0\" ]; },\n"
    "  { name = \"fetcher\"; component = \"fetcher\"; }\n"
    ");\n"
    "endpoints = (\n"
    "  { name = \"nic0\"; server = \"slirp0\"; clients = ( { task = \"netsrv\"; badge = 1; } ); "
    "},\n"
    "  { name = \"netsrv\"; server = \"netsrv\"; clients = ( { task = \"fetcher\"; badge = 2; } ); "
    "}\n"
    ");\n";

START_TEST(test_ferry_to_host)
{
    host_listen();
    pthread_t acceptor;
    pthread_create(&acceptor, NULL, host_accept, NULL);
    char path[64];
    snprintf(path, sizeof path, "/tmp/ferry-fetch-%d.cfg", (int)getpid());
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs(guest_config, f);
    fclose(f);
    ck_assert_int_eq(sim_init(), MK_OK);
    boot_config_t *cfg;
    char err[512] = "";
    ck_assert_msg(boot_load(path, lookup, &cfg, err, sizeof err) == 0, "%s", err);
    unlink(path);
    ck_assert_int_eq(boot_start(cfg), MK_OK);
    int status = -100;
    ck_assert_int_eq(mk_task_wait(cfg->tasks[2].cap, &status, 60000 * MS), MK_OK);
    ck_assert_msg(status == 0, "fetcher failed (%d) at stage %d: %s", status, fetch.stage,
                  fetch.why);
    ck_assert_uint_eq(fetch.got4, FETCH_BYTES);
    ck_assert_uint_eq(fetch.got6, FETCH_BYTES);
    ck_assert_int_eq(host.served, 2);
    boot_free(cfg);
    sim_shutdown();
}
END_TEST

static Suite *slirp_suite(void)
{
    Suite *s = suite_create("sock_slirp");
    TCase *tc = tcase_create("slirp");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_host_to_ferry);
    tcase_add_test(tc, test_ferry_to_host);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    SRunner *sr = srunner_create(slirp_suite());
    srunner_set_fork_status(sr, CK_FORK);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

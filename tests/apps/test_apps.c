/*
 * test_apps.c - proves the demo applications' behaviour from the outside,
 * with real Linux sockets on 127.0.0.1 and ::1: echo returns every byte of
 * large TCP streams and UDP datagrams, serves clients concurrently, refuses
 * bad command lines; httpd answers GET/HEAD with the right status, headers
 * and bodies, keeps connections alive, handles pipelined requests, and
 * refuses hostile requests (path escapes, oversized heads, bad methods)
 * with 4xx without dying.
 *
 * The servers run as the native builds (sim/native: echo-native and
 * httpd-native): the same
 * source as the Ferry components. Ports come from the kernel (bind to 0).
 */
#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "hostnet.h"

static pid_t server_pid;
static int port;

static int connect_to(int family, int p)
{
    for (int tries = 0; tries < 200; tries++) {
        int s = host_connect(family, p, 10);
        if (s >= 0)
            return s;
        usleep(20000); /* the server is still starting */
    }
    ck_abort_msg("cannot connect to port %d", p);
    return -1;
}

static void start(const char *env, const char *const extra[])
{
    const char *exe = getenv(env);
    ck_assert_msg(exe != NULL, "%s not set", env);
    port = host_free_port();
    char ps[16];
    snprintf(ps, sizeof ps, "%d", port);
    server_pid = fork();
    ck_assert_int_ge(server_pid, 0);
    if (server_pid == 0) {
        const char *argv[16] = {exe, "--port", ps, "--quiet"};
        int n = 4;
        for (int i = 0; extra && extra[i] && n < 15; i++)
            argv[n++] = extra[i];
        argv[n] = NULL;
        if (!getenv("FERRY_TEST_VERBOSE"))
            freopen("/dev/null", "w", stderr);
        execv(exe, (char *const *)argv);
        _exit(127);
    }
}

static void stop(void)
{
    if (server_pid > 0) {
        int st;
        ck_assert_msg(waitpid(server_pid, &st, WNOHANG) == 0, "the server died during the test");
        kill(server_pid, SIGTERM);
        waitpid(server_pid, &st, 0);
        server_pid = 0;
    }
}

static void send_all(int s, const void *buf, size_t len)
{
    const char *p = buf;
    while (len) {
        ssize_t n = send(s, p, len, MSG_NOSIGNAL);
        ck_assert_int_gt(n, 0);
        p += n;
        len -= (size_t)n;
    }
}

static size_t recv_n(int s, void *buf, size_t len)
{
    size_t got = 0;
    while (got < len) {
        ssize_t n = recv(s, (char *)buf + got, len - got, 0);
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    return got;
}

/* ---- echo ------------------------------------------------------------------------- */

START_TEST(test_echo_tcp_stream)
{
    start("ECHO_NATIVE", NULL);
    int s = connect_to(_i ? AF_INET6 : AF_INET, port);
    size_t total = 4 << 20;
    uint8_t *out = malloc(total), *in = malloc(total);
    for (size_t i = 0; i < total; i++)
        out[i] = (uint8_t)(i * 31 + (i >> 13));
    /* Send and receive interleaved so neither side's buffers fill up. */
    size_t sent = 0, got = 0;
    while (got < total) {
        struct pollfd p = {.fd = s, .events = (short)(POLLIN | (sent < total ? POLLOUT : 0))};
        ck_assert_int_gt(poll(&p, 1, 10000), 0);
        if ((p.revents & POLLOUT) && sent < total) {
            ssize_t n = send(s, out + sent, total - sent > 65536 ? 65536 : total - sent, MSG_DONTWAIT | MSG_NOSIGNAL);
            if (n > 0)
                sent += (size_t)n;
        }
        if (p.revents & POLLIN) {
            ssize_t n = recv(s, in + got, total - got, MSG_DONTWAIT);
            ck_assert_int_ne(n, 0);
            if (n > 0)
                got += (size_t)n;
        }
    }
    ck_assert(memcmp(in, out, total) == 0);
    close(s);
    free(in);
    free(out);
    stop();
}
END_TEST

START_TEST(test_echo_udp)
{
    start("ECHO_NATIVE", NULL);
    usleep(200000);
    int s = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    struct timeval tv = {.tv_sec = 2};
    setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    int ok = 0;
    for (int i = 0; i < 50; i++) {
        char msg[1200], back[1500];
        int len = snprintf(msg, sizeof msg, "datagram %d", i);
        memset(msg + len, 'a' + i % 26, sizeof msg - (size_t)len);
        sendto(s, msg, (size_t)(len + i * 20), 0, (void *)&a, sizeof a);
        ssize_t n = recv(s, back, sizeof back, 0);
        if (n == len + i * 20 && memcmp(back, msg, (size_t)n) == 0)
            ok++;
    }
    ck_assert_int_ge(ok, 48); /* loopback UDP: at most a stray loss */
    close(s);
    stop();
}
END_TEST

START_TEST(test_echo_many_clients)
{
    const char *extra[] = {"--max-clients", "200", NULL};
    start("ECHO_NATIVE", extra);
    enum { N = 150 };
    int fds[N];
    for (int i = 0; i < N; i++)
        fds[i] = connect_to(AF_INET, port);
    for (int round = 0; round < 3; round++) {
        for (int i = 0; i < N; i++) {
            char msg[32];
            int len = snprintf(msg, sizeof msg, "client %d round %d", i, round);
            send_all(fds[i], msg, (size_t)len);
        }
        for (int i = 0; i < N; i++) {
            char msg[32], back[32];
            int len = snprintf(msg, sizeof msg, "client %d round %d", i, round);
            ck_assert_uint_eq(recv_n(fds[i], back, (size_t)len), (size_t)len);
            ck_assert(memcmp(back, msg, (size_t)len) == 0);
        }
    }
    for (int i = 0; i < N; i++)
        close(fds[i]);
    stop();
}
END_TEST

START_TEST(test_echo_bad_command_line)
{
    const char *exe = getenv("ECHO_NATIVE");
    char cmd[512];
    snprintf(cmd, sizeof cmd, "%s --port 70000 2>/dev/null", exe);
    int st = system(cmd);
    ck_assert(WIFEXITED(st));
    ck_assert_int_eq(WEXITSTATUS(st), 2);
    snprintf(cmd, sizeof cmd, "%s --frobnicate 2>/dev/null", exe);
    st = system(cmd);
    ck_assert_int_eq(WEXITSTATUS(st), 2);
}
END_TEST

/* ---- httpd ------------------------------------------------------------------------ */

static char root[64];

static void make_root(void)
{
    snprintf(root, sizeof root, "/tmp/ferry-httpd-%d", (int)getpid());
    mkdir(root, 0755);
    char p[128];
    snprintf(p, sizeof p, "%s/index.html", root);
    FILE *f = fopen(p, "w");
    fputs("<html>hello from the test root</html>\n", f);
    fclose(f);
    snprintf(p, sizeof p, "%s/big.bin", root);
    f = fopen(p, "w");
    for (int i = 0; i < 3 * 1024 * 1024; i++)
        fputc((i * 7) & 0xff, f);
    fclose(f);
    snprintf(p, sizeof p, "/tmp/ferry-httpd-%d-secret", (int)getpid());
    f = fopen(p, "w");
    fputs("secret\n", f);
    fclose(f);
}

static void clean_root(void)
{
    char cmd[160];
    snprintf(cmd, sizeof cmd, "rm -rf %s %s-secret", root, root);
    ck_assert_int_eq(system(cmd), 0);
}

/* Send a request, read one response: status code, body into buf. */
static int http(int s, const char *req, char *body, size_t bodymax, size_t *bodylen, char *head, size_t headmax)
{
    send_all(s, req, strlen(req));
    char h[4096];
    size_t hl = 0;
    while (hl < sizeof h - 1) {
        ssize_t n = recv(s, h + hl, 1, 0);
        if (n <= 0)
            return -1;
        hl++;
        h[hl] = '\0';
        if (hl >= 4 && strcmp(h + hl - 4, "\r\n\r\n") == 0)
            break;
    }
    if (head)
        snprintf(head, headmax, "%s", h);
    int code = 0;
    sscanf(h, "HTTP/1.1 %d", &code);
    const char *cl = strcasestr(h, "Content-Length:");
    size_t len = cl ? strtoul(cl + 15, NULL, 10) : 0;
    if (strncmp(req, "HEAD", 4) == 0)
        len = 0;
    ck_assert_uint_le(len, bodymax);
    *bodylen = recv_n(s, body, len);
    ck_assert_uint_eq(*bodylen, len);
    return code;
}

START_TEST(test_httpd_files)
{
    make_root();
    const char *extra[] = {"--root", root, NULL};
    start("HTTPD_NATIVE", extra);
    int s = connect_to(AF_INET, port);
    static char body[4 << 20];
    char head[4096];
    size_t len;
    ck_assert_int_eq(http(s, "GET / HTTP/1.1\r\nHost: x\r\n\r\n", body, sizeof body, &len, head, sizeof head), 200);
    ck_assert_ptr_nonnull(strstr(body, "hello from the test root"));
    ck_assert_ptr_nonnull(strcasestr(head, "Content-Type: text/html"));
    ck_assert_ptr_nonnull(strcasestr(head, "Connection: keep-alive"));
    /* Same connection: a 3 MiB file, byte for byte. */
    ck_assert_int_eq(http(s, "GET /big.bin HTTP/1.1\r\n\r\n", body, sizeof body, &len, NULL, 0), 200);
    ck_assert_uint_eq(len, 3 * 1024 * 1024);
    for (size_t i = 0; i < len; i++)
        if ((uint8_t)body[i] != (uint8_t)((i * 7) & 0xff))
            ck_abort_msg("byte %zu differs", i);
    ck_assert_int_eq(http(s, "HEAD /big.bin HTTP/1.1\r\n\r\n", body, sizeof body, &len, head, sizeof head), 200);
    ck_assert_ptr_nonnull(strstr(head, "Content-Length: 3145728"));
    ck_assert_int_eq(http(s, "GET /nope.html HTTP/1.1\r\n\r\n", body, sizeof body, &len, NULL, 0), 404);
    close(s);
    /* Pipelined: two requests in one write, two answers in order. */
    s = connect_to(AF_INET6, port);
    const char *two = "GET /index.html HTTP/1.1\r\n\r\nGET /stats HTTP/1.1\r\n\r\n";
    send_all(s, two, strlen(two));
    ck_assert_int_eq(http(s, "", body, sizeof body, &len, NULL, 0), 200);
    ck_assert_ptr_nonnull(strstr(body, "hello from the test root"));
    ck_assert_int_eq(http(s, "", body, sizeof body, &len, NULL, 0), 200);
    ck_assert_ptr_nonnull(strstr(body, "httpd:"));
    close(s);
    stop();
    clean_root();
}
END_TEST

START_TEST(test_httpd_hostile_requests)
{
    make_root();
    const char *extra[] = {"--root", root, NULL};
    start("HTTPD_NATIVE", extra);
    static char body[1 << 16];
    size_t len;
    char secret[160];
    snprintf(secret, sizeof secret, "GET /../ferry-httpd-%d-secret HTTP/1.1\r\n\r\n", (int)getpid());
    static const struct {
        const char *req;
        int code;
    } cases[] = {
        {"DELETE /index.html HTTP/1.1\r\n\r\n", 405},
        {"GET /a/../../etc/passwd HTTP/1.1\r\n\r\n", 400},
        {"GET /%2e%2e/x\\y HTTP/1.1\r\n\r\n", 400},
        {"GET / SPDY/9\r\n\r\n", 400},
        {"garbage\r\n\r\n", 400},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int s = connect_to(AF_INET, port);
        ck_assert_int_eq(http(s, cases[i].req, body, sizeof body, &len, NULL, 0), cases[i].code);
        char c;
        ck_assert_int_eq(recv(s, &c, 1, 0), 0); /* and the connection closes */
        close(s);
    }
    int s = connect_to(AF_INET, port);
    ck_assert_int_eq(http(s, secret, body, sizeof body, &len, NULL, 0), 400);
    close(s);
    /* A head that never ends within 8 KiB. */
    s = connect_to(AF_INET, port);
    char big[9000];
    memset(big, 'a', sizeof big);
    memcpy(big, "GET / HTTP/1.1\r\nX: ", 19);
    send_all(s, big, sizeof big);
    char resp[64] = "";
    recv_n(s, resp, 12);
    ck_assert_int_eq(strncmp(resp, "HTTP/1.1 431", 12), 0);
    close(s);
    /* A client that connects and leaves mid-request does not hurt. */
    s = connect_to(AF_INET, port);
    send_all(s, "GET /big", 8);
    close(s);
    s = connect_to(AF_INET, port);
    ck_assert_int_eq(http(s, "GET / HTTP/1.0\r\n\r\n", body, sizeof body, &len, NULL, 0), 200);
    close(s);
    stop();
    clean_root();
}
END_TEST

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    Suite *s = suite_create("apps");
    TCase *te = tcase_create("echo");
    tcase_set_timeout(te, 60);
    tcase_add_loop_test(te, test_echo_tcp_stream, 0, 2);
    tcase_add_test(te, test_echo_udp);
    tcase_add_test(te, test_echo_many_clients);
    tcase_add_test(te, test_echo_bad_command_line);
    suite_add_tcase(s, te);
    TCase *th = tcase_create("httpd");
    tcase_set_timeout(th, 60);
    tcase_add_test(th, test_httpd_files);
    tcase_add_test(th, test_httpd_hostile_requests);
    suite_add_tcase(s, th);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}

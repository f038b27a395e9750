/*
 * nperf - network throughput and latency tester on ferry/socket.h, a small
 * netperf/iperf: one program, server and client. The same source runs on
 * Ferry and on native Linux sockets (sim/native: nperf-native), so both
 * systems are measured with the same tool.
 *
 * usage:
 *   nperf server [--port N] [--max-clients N] [--quiet] [SESSION]
 *   nperf client --host ADDR --test T [--port N] [--duration S | --count N]
 *                [--size BYTES] [--conns N] [--wait-ms MS] [--delay-ms MS]
 *                [--hold S] [--keepalive] [--path P] [--json] [SESSION]
 *   SESSION: [--max-sockets N] [--ring-size BYTES] (Ferry's socket session,
 *   fs_session_configure; the native build ignores them)
 * Default port 5301, default --duration 10 (seconds, fractions allowed).
 * --wait-ms: keep retrying a refused control connection (http: a first
 * connection) that long (a client booted beside its server may start
 * before the server listens).
 * --delay-ms: sleep that long before anything else (so that a probe booted
 * beside the client sees the system before the test).
 * A bad command line exits 2; a failed test exits 1.
 *
 * Tests (the client drives, the server serves any number of them at once):
 *   tcp-stream  N connections each send --size-byte messages (default
 *               131072) as fast as they can; result: Mbit/s of payload the
 *               server received, from the first connect until the server
 *               has read every byte (it closes after the client's EOF).
 *               --count N: N messages in all.
 *   udp-stream  N sockets send datagrams of --size bytes (16..65507,
 *               default 1024) unpaced; the server counts them; result:
 *               datagrams/s the server received, plus sent, received and
 *               loss. --count N: N datagrams in all.
 *   tcp-rr      N connections each do request/response transactions of
 *               --size bytes both ways (default 1), one outstanding per
 *               connection; result: transactions/s and latency.
 *   udp-rr      the same over UDP (the server echoes the datagram); a
 *               request unanswered for 1 s counts as lost and the next goes.
 *   tcp-crr     N loops of connect + one transaction + close; result:
 *               connections/s and the latency of the whole sequence.
 *   tcp-hold    open --conns N idle connections (1 .. 65536; at most 128
 *               connecting at once), wait until the server has accepted
 *               every one, log "holding N connections", keep them --hold
 *               seconds (default 1) without traffic, check that the server
 *               still has them all, close. Result: the connections held,
 *               and how long opening them took.
 *   http        not against an nperf server: GET --path (default "/") from
 *               an HTTP/1.1 server (httpd), N connections, one request
 *               outstanding on each; a new connection per request
 *               ("Connection: close"), or with --keepalive one connection
 *               for all of a flow's requests. Every answer must be "200"
 *               with a Content-Length; result: requests/s and latency (of
 *               connect + request + answer without --keepalive).
 * Latency is reported in microseconds: mean, median, p99 (nearest rank),
 * min, max. The client stores at most 2^20 samples per run (a uniform
 * reservoir beyond that); mean, min and max always cover every sample.
 *
 * Output: one human-readable line per result on stdout; with --json, one
 * JSON object per result on stdout instead (one line, for the benchmark
 * harness) and the human line goes to the log. Keys: "test", "value",
 * "unit", "host", "port", "conns", "size", "seconds", then per test:
 * tcp-stream "bytes", "server_bytes"; udp-stream "sent", "received",
 * "lost", "loss_pct", "sent_per_s", "mbit_s", "send_errors"; rr and crr
 * "transactions", "mean_us", "median_us", "p99_us", "min_us", "max_us",
 * and "lost" (udp-rr), "server_transactions" (tcp-rr), "server_conns"
 * (tcp-crr); http the same as rr plus "body_bytes", "keepalive";
 * tcp-hold "held", "open_seconds", "hold_seconds", "server_open" (value =
 * connections held, "seconds" = the time opening them took).
 *
 * ---- Control protocol, version 1 ----------------------------------------
 * Everything goes to the server's one port P: TCP for the control and data
 * connections, UDP for the datagram tests. Lines are ASCII, end in "\n",
 * and are at most 127 bytes; numbers are decimal.
 *
 * Every TCP connection opens with one hello line:
 *   "NPERF1 CTRL <test> <size>"  control connection of a new session. The
 *                                server answers "OK <session>" (a non-zero
 *                                u32) or "ERR <reason>" and closes.
 *   "NPERF1 DATA <session>"      data connection of that session, no
 *                                answer. tcp-stream: the payload follows
 *                                (the server counts and discards it) until
 *                                the client's EOF; the server then closes.
 *                                tcp-rr, tcp-crr: every <size> bytes
 *                                received are one request; the server
 *                                answers each with <size> bytes. An
 *                                unknown session gets "ERR ..." and close.
 * Commands on the control connection, after OK:
 *   "STATS"  -> "RESULT conns=C bytes=B datagrams=D transactions=T open=O"
 *   "END"    -> the same RESULT line, then the server closes: the session
 *               ends. It also ends when the control connection goes. When
 *               a session ends, the server closes its data connections.
 * A tcp-hold session's data connections send nothing after their hello.
 * conns: data connections accepted; bytes: tcp-stream payload bytes;
 * datagrams: udp-stream datagrams (their bytes are not in "bytes");
 * transactions: TCP requests answered; open: data connections still open.
 *
 * UDP: a udp-stream datagram starts with a 16-byte header: "NPRF", then
 * the session, a sequence number and the kind (1 = stream), each a u32 in
 * network byte order; the server counts it for its session. A udp-rr
 * request is bare (its first bytes carry the client's sequence number, so
 * 1-byte requests work) and never starts with "NPRF" if 16 bytes or longer;
 * the server echoes it unchanged while at least one udp-rr session is open
 * (so it is not a reflector for strangers). Datagrams for no live session
 * are dropped.
 * -------------------------------------------------------------------------
 *
 * The server is one thread, one poll loop, every socket non-blocking. It
 * stops reading a request/response connection that does not read its
 * answers (back-pressure). The client is one poll loop over its N flows,
 * with a stall guard: 5 s without progress ends the test with an error.
 */
#include "apps.h"
#include "apputil.h"

#include <errno.h>
#include <ferry/mk.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define NP_PORT 5301
#define NP_LINE_MAX 128
#define NP_SESSIONS 64
#define NP_BUF (256u * 1024u)          /* server scratch; client receive buffer */
#define NP_ZEROS (64u * 1024u)         /* server: source of rr answers */
#define NP_UDP_HDR 16u
#define NP_UDP_MAX 65507u
#define NP_UDP_KIND_STREAM 1u
#define NP_TCP_SIZE_MAX (1024u * 1024u)
#define NP_CONNS_MAX 256u
#define NP_HOLD_MAX 65536u             /* tcp-hold: connections */
#define NP_HOLD_WINDOW 128u            /* tcp-hold: connecting at once */
#define NP_HTTP_HDR_MAX 4096u          /* http: longest response header */
#define NP_PATH_MAX 200u
#define NP_OWED_MAX (1024u * 1024u)    /* unanswered request bytes before the server stops reading */
#define NP_SAMPLES_MAX (1u << 20)
#define NP_MS 1000000ull
#define NP_STALL_NS (5000 * NP_MS)     /* client: no progress for this long = failure */
#define NP_UDP_RR_TIMEOUT_NS (1000 * NP_MS)
#define NP_CTRL_TIMEOUT_MS 5000

static const uint8_t np_magic[4] = {'N', 'P', 'R', 'F'};

/* ---- Tests ------------------------------------------------------------------------ */

enum np_test { NP_TCP_STREAM, NP_UDP_STREAM, NP_TCP_RR, NP_UDP_RR, NP_TCP_CRR, NP_TCP_HOLD, NP_HTTP, NP_TESTS };

/* size_max 0: --size does not apply. served: an nperf server runs it (the
 * control protocol); http talks to an HTTP server instead. */
static const struct {
    const char *name;
    uint32_t size_def, size_min, size_max;
    bool tcp, served;
} np_tests[NP_TESTS] = {
    [NP_TCP_STREAM] = {"tcp-stream", 131072, 1, NP_TCP_SIZE_MAX, true, true},
    [NP_UDP_STREAM] = {"udp-stream", 1024, NP_UDP_HDR, NP_UDP_MAX, false, true},
    [NP_TCP_RR] = {"tcp-rr", 1, 1, NP_TCP_SIZE_MAX, true, true},
    [NP_UDP_RR] = {"udp-rr", 1, 1, NP_UDP_MAX, false, true},
    [NP_TCP_CRR] = {"tcp-crr", 1, 1, NP_TCP_SIZE_MAX, true, true},
    [NP_TCP_HOLD] = {"tcp-hold", 1, 1, 1, true, true},
    [NP_HTTP] = {"http", 0, 0, 0, true, false},
};

static int np_test_find(const char *name)
{
    for (int t = 0; t < NP_TESTS; t++)
        if (strcmp(np_tests[t].name, name) == 0)
            return t;
    return -1;
}

static void np_put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static uint32_t np_get32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void np_nodelay(int fd)
{
    int one = 1;
    fs_setsockopt(fd, FS_IPPROTO_TCP, FS_TCP_NODELAY, &one, sizeof one);
}

/* Ferry's socket session geometry (--max-sockets, --ring-size); 0 = the
 * library's default. The native backend ignores it. */
typedef struct np_session_cfg {
    uint32_t max_sockets, ring_size;
} np_session_cfg_t;

#define NP_SESSION_SOCKETS_DEF 64u
#define NP_SESSION_RING_DEF 65536u

/* Parse one session option at argv[i] (its value at argv[i + 1]): 1 if it
 * was one (i advanced), 0 if not, -1 if its value is bad. */
static int np_session_arg(np_session_cfg_t *sc, int argc, char **argv, int *i)
{
    bool sockets = strcmp(argv[*i], "--max-sockets") == 0, ring = strcmp(argv[*i], "--ring-size") == 0;
    if (!sockets && !ring)
        return 0;
    if (*i + 1 >= argc)
        return -1;
    const char *v = argv[++*i];
    if (sockets)
        return app_parse_u32(v, 1, 4096, &sc->max_sockets) == 0 ? 1 : -1;
    if (app_parse_u32(v, 64, 1u << 30, &sc->ring_size) != 0 || (sc->ring_size & (sc->ring_size - 1)) != 0)
        return -1;
    return 1;
}

/* Before the first socket call. */
static int np_session_apply(const np_session_cfg_t *sc)
{
    if (sc->max_sockets == 0 && sc->ring_size == 0)
        return 0;
    uint32_t n = sc->max_sockets ? sc->max_sockets : NP_SESSION_SOCKETS_DEF;
    uint32_t r = sc->ring_size ? sc->ring_size : NP_SESSION_RING_DEF;
    if (fs_session_configure("netsrv", n, r) != 0) {
        mk_log("cannot configure the socket session (%u sockets, %u-byte rings): %s", (unsigned)n, (unsigned)r,
               strerror(errno));
        return -1;
    }
    return 0;
}

/* ======================================================================== */
/* ---- Server ------------------------------------------------------------------------ */

typedef struct np_session {
    uint32_t id; /* 0: slot free */
    int test;
    uint32_t size;
    uint64_t conns, bytes, datagrams, transactions;
    uint32_t open;
} np_session_t;

typedef enum { NP_C_HELLO, NP_C_CTRL, NP_C_SINK, NP_C_RR } np_kind_t;

typedef struct np_conn {
    int fd;
    np_kind_t kind;
    uint32_t sid;     /* session (its own for a control connection) */
    uint32_t size;    /* request size (rr) */
    uint32_t req_got; /* bytes of the current request received (rr) */
    uint64_t owed;    /* response bytes still to send (rr) */
    uint32_t line_len;
    char line[NP_LINE_MAX];
    uint32_t out_len, out_off; /* a control answer being sent */
    char out[NP_LINE_MAX];
    bool close_after; /* close once `out` is sent */
} np_conn_t;

typedef struct np_server {
    uint32_t port, max_clients;
    bool quiet;
    np_session_cfg_t session;
    int lfd[2], ufd[2]; /* IPv4, IPv6; -1 = none */
    uint32_t nconns;
    np_conn_t **conns;
    struct fs_pollfd *pfd;
    np_session_t sessions[NP_SESSIONS];
    uint32_t next_id, udp_rr_sessions;
    bool sweep; /* a session ended: close its data connections */
    uint8_t *buf;   /* receive scratch */
    uint8_t *zeros; /* the bytes of every rr answer (never another client's data) */
    uint64_t stray_datagrams, echoes;
} np_server_t;

static np_session_t *np_session_find(np_server_t *s, uint32_t id)
{
    for (uint32_t i = 0; id != 0 && i < NP_SESSIONS; i++)
        if (s->sessions[i].id == id)
            return &s->sessions[i];
    return NULL;
}

static np_session_t *np_session_new(np_server_t *s, int test, uint32_t size)
{
    for (uint32_t i = 0; i < NP_SESSIONS; i++) {
        np_session_t *ss = &s->sessions[i];
        if (ss->id != 0)
            continue;
        do
            s->next_id = s->next_id * 1103515245u + 12345u;
        while (s->next_id == 0 || np_session_find(s, s->next_id) != NULL);
        *ss = (np_session_t){.id = s->next_id, .test = test, .size = size};
        if (test == NP_UDP_RR)
            s->udp_rr_sessions++;
        return ss;
    }
    return NULL;
}

static void np_session_end(np_server_t *s, np_session_t *ss)
{
    if (!s->quiet)
        mk_log("session %u %s ends: %llu conns, %llu bytes, %llu datagrams, %llu transactions",
               (unsigned)ss->id, np_tests[ss->test].name, (unsigned long long)ss->conns,
               (unsigned long long)ss->bytes, (unsigned long long)ss->datagrams,
               (unsigned long long)ss->transactions);
    if (ss->test == NP_UDP_RR)
        s->udp_rr_sessions--;
    ss->id = 0;
    s->sweep = true;
}


static void np_conn_close(np_server_t *s, uint32_t i)
{
    np_conn_t *c = s->conns[i];
    np_session_t *ss = np_session_find(s, c->sid);
    if (ss != NULL && c->kind == NP_C_CTRL)
        np_session_end(s, ss);
    else if (ss != NULL && (c->kind == NP_C_SINK || c->kind == NP_C_RR))
        ss->open--;
    fs_close(c->fd);
    free(c);
    s->conns[i] = s->conns[--s->nconns];
}

/* Close the data connections whose session has ended. */
static void np_sweep(np_server_t *s)
{
    s->sweep = false;
    for (uint32_t i = s->nconns; i-- > 0;) {
        np_conn_t *c = s->conns[i];
        if ((c->kind == NP_C_SINK || c->kind == NP_C_RR) && np_session_find(s, c->sid) == NULL)
            np_conn_close(s, i);
    }
}

static void np_conn_answer(np_conn_t *c, bool close_after, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void np_conn_answer(np_conn_t *c, bool close_after, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(c->out, sizeof c->out, fmt, ap);
    va_end(ap);
    c->out_len = n < 0 ? 0 : (uint32_t)n < sizeof c->out ? (uint32_t)n : (uint32_t)sizeof c->out - 1;
    c->out_off = 0;
    c->close_after = close_after;
}

static void np_answer_result(np_conn_t *c, const np_session_t *ss, bool close_after)
{
    np_conn_answer(c, close_after, "RESULT conns=%llu bytes=%llu datagrams=%llu transactions=%llu open=%u\n",
                   (unsigned long long)ss->conns, (unsigned long long)ss->bytes,
                   (unsigned long long)ss->datagrams, (unsigned long long)ss->transactions,
                   (unsigned)ss->open);
}

/* Split `line` at single spaces into at most `max` words (in place); returns
 * how many, max + 1 if there are more. (Not strtok: tasks share a process.) */
static int np_words(char *line, char *w[], int max)
{
    int n = 0;
    for (char *p = line; *p != '\0';) {
        if (n == max)
            return max + 1;
        w[n++] = p;
        char *sp = strchr(p, ' ');
        if (sp == NULL)
            break;
        *sp = '\0';
        p = sp + 1;
    }
    return n;
}

static void np_hello(np_server_t *s, np_conn_t *c)
{
    char *w[5];
    int n = np_words(c->line, w, 4);
    if (n < 3 || strcmp(w[0], "NPERF1") != 0) {
        np_conn_answer(c, true, "ERR bad hello\n");
        return;
    }
    uint32_t v;
    if (strcmp(w[1], "CTRL") == 0 && n == 4) {
        int t = np_test_find(w[2]);
        uint32_t size;
        if (t < 0 || !np_tests[t].served ||
            app_parse_u32(w[3], np_tests[t].size_min, np_tests[t].size_max, &size) != 0) {
            np_conn_answer(c, true, "ERR bad test or size\n");
            return;
        }
        np_session_t *ss = np_session_new(s, t, size);
        if (ss == NULL) {
            np_conn_answer(c, true, "ERR too many sessions\n");
            return;
        }
        c->kind = NP_C_CTRL;
        c->sid = ss->id;
        np_conn_answer(c, false, "OK %u\n", (unsigned)ss->id);
        if (!s->quiet)
            mk_log("session %u: %s, size %u", (unsigned)ss->id, w[2], (unsigned)size);
        return;
    }
    np_session_t *ss = NULL;
    if (strcmp(w[1], "DATA") == 0 && n == 3 && app_parse_u32(w[2], 1, UINT32_MAX, &v) == 0)
        ss = np_session_find(s, v);
    if (ss == NULL || !np_tests[ss->test].tcp) {
        np_conn_answer(c, true, "ERR no such TCP session\n");
        return;
    }
    c->sid = ss->id;
    c->size = ss->size;
    c->kind = ss->test == NP_TCP_STREAM || ss->test == NP_TCP_HOLD ? NP_C_SINK : NP_C_RR;
    if (c->kind == NP_C_RR)
        np_nodelay(c->fd);
    ss->conns++;
    ss->open++;
}

static void np_command(np_server_t *s, np_conn_t *c)
{
    np_session_t *ss = np_session_find(s, c->sid);
    if (ss == NULL) /* cannot happen: the session lives as long as this connection */
        np_conn_answer(c, true, "ERR no session\n");
    else if (strcmp(c->line, "STATS") == 0)
        np_answer_result(c, ss, false);
    else if (strcmp(c->line, "END") == 0)
        np_answer_result(c, ss, true);
    else
        np_conn_answer(c, true, "ERR unknown command\n");
}

/* Take `n` received bytes; false if the connection must go. */
static bool np_conn_feed(np_server_t *s, np_conn_t *c, const uint8_t *p, size_t n)
{
    while (n > 0) {
        if (c->kind == NP_C_HELLO || c->kind == NP_C_CTRL) {
            if (c->out_len != c->out_off || c->close_after)
                return false; /* a command before the last answer went: not this protocol */
            const uint8_t *nl = memchr(p, '\n', n);
            size_t take = nl ? (size_t)(nl - p) + 1 : n;
            if (c->line_len + take > NP_LINE_MAX - 1)
                return false;
            memcpy(c->line + c->line_len, p, take);
            c->line_len += (uint32_t)take;
            p += take;
            n -= take;
            if (nl == NULL)
                return true;
            c->line[c->line_len - 1] = '\0';
            c->line_len = 0;
            if (c->kind == NP_C_HELLO)
                np_hello(s, c);
            else
                np_command(s, c);
            if (c->close_after)
                return true; /* the answer goes out, then the connection closes */
            continue;
        }
        np_session_t *ss = np_session_find(s, c->sid);
        if (ss == NULL)
            return false; /* its session ended */
        if (c->kind == NP_C_SINK) {
            ss->bytes += n;
            return true;
        }
        /* NP_C_RR: every c->size bytes are one request. */
        uint64_t got = c->req_got + (uint64_t)n;
        ss->transactions += got / c->size;
        c->owed += got / c->size * c->size;
        c->req_got = (uint32_t)(got % c->size);
        return true;
    }
    return true;
}

/* Send what is owed; false if the connection must go. */
static bool np_conn_flush(np_server_t *s, np_conn_t *c)
{
    while (c->out_off < c->out_len) {
        fs_ssize_t n = fs_send(c->fd, c->out + c->out_off, c->out_len - c->out_off, FS_MSG_DONTWAIT);
        if (n < 0)
            return errno == EAGAIN;
        c->out_off += (uint32_t)n;
    }
    if (c->close_after)
        return false;
    while (c->owed > 0) {
        size_t len = c->owed < NP_ZEROS ? (size_t)c->owed : NP_ZEROS;
        fs_ssize_t n = fs_send(c->fd, s->zeros, len, FS_MSG_DONTWAIT);
        if (n < 0)
            return errno == EAGAIN;
        c->owed -= (uint64_t)n;
    }
    return true;
}

/* Read what is there (a bounded number of times); false if the connection must go. */
static bool np_conn_read(np_server_t *s, np_conn_t *c)
{
    for (int k = 0; k < 8; k++) {
        size_t want = NP_BUF;
        if (c->kind == NP_C_HELLO || c->kind == NP_C_CTRL)
            want = NP_LINE_MAX; /* a line at a time is plenty */
        fs_ssize_t n = fs_recv(c->fd, s->buf, want, FS_MSG_DONTWAIT);
        if (n == 0)
            return false;
        if (n < 0)
            return errno == EAGAIN;
        if (!np_conn_feed(s, c, s->buf, (size_t)n))
            return false;
        if (c->out_len != c->out_off || c->owed > 0)
            return np_conn_flush(s, c);
    }
    return true;
}

static void np_accept_all(np_server_t *s, int lfd)
{
    for (int k = 0; k < 64; k++) {
        int fd = fs_accept(lfd, NULL, NULL);
        if (fd < 0) {
            if (errno != EAGAIN)
                mk_log("accept: %s", strerror(errno));
            return;
        }
        np_conn_t *c = s->nconns < s->max_clients ? calloc(1, sizeof *c) : NULL;
        if (c == NULL) {
            mk_log("refusing a connection: %u open", (unsigned)s->nconns);
            fs_close(fd);
            continue;
        }
        fs_fcntl(fd, FS_F_SETFL, FS_O_NONBLOCK);
        c->fd = fd;
        c->kind = NP_C_HELLO;
        s->conns[s->nconns++] = c;
    }
}

static void np_udp_serve(np_server_t *s, int fd)
{
    for (int k = 0; k < 512; k++) {
        _Alignas(8) struct fs_sockaddr_storage from;
        fs_socklen_t flen = sizeof from;
        fs_ssize_t n = fs_recvfrom(fd, s->buf, NP_BUF, FS_MSG_DONTWAIT, (struct fs_sockaddr *)&from, &flen);
        if (n < 0)
            return;
        if (n >= (fs_ssize_t)NP_UDP_HDR && memcmp(s->buf, np_magic, 4) == 0) {
            np_session_t *ss = np_session_find(s, np_get32(s->buf + 4));
            if (ss != NULL && ss->test == NP_UDP_STREAM && np_get32(s->buf + 12) == NP_UDP_KIND_STREAM)
                ss->datagrams++;
            else
                s->stray_datagrams++;
        } else if (s->udp_rr_sessions > 0) {
            s->echoes++;
            fs_sendto(fd, s->buf, (size_t)n, FS_MSG_DONTWAIT, (struct fs_sockaddr *)&from, flen);
        } else {
            s->stray_datagrams++;
        }
    }
}

static int np_server_setup(np_server_t *s)
{
    int fams[2] = {FS_AF_INET, FS_AF_INET6};
    if (np_session_apply(&s->session) != 0)
        return -1;
    for (int f = 0; f < 2; f++) {
        s->lfd[f] = app_listen(fams[f], FS_SOCK_STREAM, (uint16_t)s->port, 256);
        s->ufd[f] = app_listen(fams[f], FS_SOCK_DGRAM, (uint16_t)s->port, 0);
        if (s->ufd[f] >= 0) {
            int big = 4 << 20; /* fewer drops under udp-stream floods; the system may cap it */
            fs_setsockopt(s->ufd[f], FS_SOL_SOCKET, FS_SO_RCVBUF, &big, sizeof big);
        }
    }
    /* IPv4 is required; IPv6 is used when the system has it. */
    if (s->lfd[0] < 0 || s->ufd[0] < 0)
        return -1;
    s->conns = calloc(s->max_clients, sizeof *s->conns);
    s->pfd = calloc(s->max_clients + 4, sizeof *s->pfd);
    s->buf = malloc(NP_BUF);
    s->zeros = calloc(1, NP_ZEROS);
    s->next_id = (uint32_t)mk_time_ns();
    return s->conns && s->pfd && s->buf && s->zeros ? 0 : -1;
}

static short np_conn_events(const np_conn_t *c)
{
    if (c->out_off < c->out_len || c->owed > 0)
        return (short)(FS_POLLOUT | (c->owed < NP_OWED_MAX ? FS_POLLIN : 0));
    return FS_POLLIN;
}

static int np_server(np_server_t *s)
{
    if (np_server_setup(s) != 0) {
        mk_log("cannot set up");
        return 1;
    }
    mk_log("serving on port %u (TCP and UDP)", (unsigned)s->port);
    for (;;) {
        int fixed[4] = {s->lfd[0], s->lfd[1], s->ufd[0], s->ufd[1]};
        for (int k = 0; k < 4; k++)
            s->pfd[k] = (struct fs_pollfd){.fd = fixed[k], .events = FS_POLLIN};
        for (uint32_t i = 0; i < s->nconns; i++)
            s->pfd[4 + i] = (struct fs_pollfd){.fd = s->conns[i]->fd, .events = np_conn_events(s->conns[i])};
        uint32_t n = s->nconns;
        if (fs_poll(s->pfd, 4 + n, -1) < 0) {
            if (errno == EINTR)
                continue;
            mk_log("stopping: poll: %s (%llu stray datagrams, %llu udp-rr echoes)", strerror(errno),
                   (unsigned long long)s->stray_datagrams, (unsigned long long)s->echoes);
            return 0;
        }
        /* Connections first, from the end, so that closing (swap with the
         * last) never skips one. */
        for (uint32_t i = n; i-- > 0;) {
            short r = s->pfd[4 + i].revents;
            if (r == 0)
                continue;
            np_conn_t *c = s->conns[i];
            bool keep = (r & FS_POLLNVAL) == 0;
            if (keep && (r & (FS_POLLOUT | FS_POLLERR)))
                keep = np_conn_flush(s, c);
            if (keep && (r & (FS_POLLIN | FS_POLLHUP | FS_POLLERR)) && c->owed < NP_OWED_MAX)
                keep = np_conn_read(s, c);
            if (!keep)
                np_conn_close(s, i);
        }
        if (s->sweep)
            np_sweep(s);
        for (int k = 0; k < 2; k++) {
            if (s->pfd[k].revents)
                np_accept_all(s, s->pfd[k].fd);
            if (s->pfd[2 + k].revents)
                np_udp_serve(s, s->pfd[2 + k].fd);
        }
    }
}

/* ======================================================================== */
/* ---- Client: latency samples ------------------------------------------------------- */

typedef struct np_lat {
    uint32_t *s; /* samples, ns (clamped to 2^32-1) */
    uint32_t n, cap;
    uint64_t count, sum_ns, min_ns, max_ns;
    uint64_t rng;
} np_lat_t;

static void np_lat_add(np_lat_t *l, uint64_t ns)
{
    l->count++;
    l->sum_ns += ns;
    if (l->count == 1 || ns < l->min_ns)
        l->min_ns = ns;
    if (ns > l->max_ns)
        l->max_ns = ns;
    uint32_t v = ns > UINT32_MAX ? UINT32_MAX : (uint32_t)ns;
    if (l->n < l->cap) {
        l->s[l->n++] = v;
        return;
    }
    if (l->cap < NP_SAMPLES_MAX) {
        uint32_t cap = l->cap ? l->cap * 2 : 4096;
        uint32_t *s = realloc(l->s, cap * sizeof *s);
        if (s != NULL) {
            l->s = s;
            l->cap = cap;
            l->s[l->n++] = v;
            return;
        }
    }
    /* Reservoir: keep each of the `count` samples with equal probability. */
    l->rng ^= l->rng << 13;
    l->rng ^= l->rng >> 7;
    l->rng ^= l->rng << 17;
    uint64_t j = l->rng % l->count;
    if (l->n > 0 && j < l->n)
        l->s[j] = v;
}

static int np_cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

typedef struct np_pct {
    double mean, median, p99, min, max; /* microseconds */
} np_pct_t;

static np_pct_t np_lat_summary(np_lat_t *l)
{
    np_pct_t p = {0, 0, 0, 0, 0};
    if (l->count == 0 || l->n == 0)
        return p;
    qsort(l->s, l->n, sizeof *l->s, np_cmp_u32);
    uint64_t n = l->n;
    p.mean = (double)l->sum_ns / (double)l->count / 1e3;
    p.min = (double)l->min_ns / 1e3;
    p.max = (double)l->max_ns / 1e3;
    /* Nearest rank over the (sorted) stored samples. */
    p.median = (double)l->s[(n + 1) / 2 - 1] / 1e3;
    p.p99 = (double)l->s[(n * 99 + 99) / 100 - 1] / 1e3;
    return p;
}

/* ---- Client: state ----------------------------------------------------------------- */

typedef enum { NP_F_CONNECT, NP_F_RUN, NP_F_DRAIN, NP_F_DONE } np_fstate_t;

typedef struct np_flow {
    int fd;
    np_fstate_t state;
    uint32_t off;      /* TCP: bytes of the current unit sent (the unit may start with the hello line) */
    uint32_t resp_got; /* rr, crr: response bytes received */
    bool waiting;      /* udp-rr: a request is out */
    uint32_t seq;      /* udp-rr: sequence number of that request */
    uint64_t t0;       /* start of the current transaction (crr: of the connect) */
    char *hdr;         /* http: the answer's header so far (NP_HTTP_HDR_MAX bytes) */
    uint32_t hdr_len;  /* http: bytes in hdr */
    bool in_body;      /* http: the header is complete, body_left bytes of body follow */
    uint64_t body_left;
} np_flow_t;

typedef struct np_client {
    const char *host;
    int test;
    uint32_t port, size, conns, count, wait_ms;
    uint64_t duration_ns;
    bool use_count, json;
    bool keepalive;        /* http */
    const char *path;      /* http */
    uint64_t hold_ns;      /* tcp-hold */
    uint32_t delay_ms;
    np_session_cfg_t session;
    /* fs_sockaddr_storage is only 2-byte aligned; app_addr() writes an
     * fs_sockaddr_in(6), which needs 4. */
    _Alignas(8) struct fs_sockaddr_storage addr;
    fs_socklen_t alen;

    int ctrl;
    uint32_t sid;
    uint8_t *unit; /* TCP: hello line + `size` payload bytes; UDP: one datagram */
    uint32_t hello_len, unit_len;
    uint8_t *rbuf;
    char *hdrs; /* http: the flows' header buffers */
    np_flow_t *flows;

    uint64_t started, done;    /* units (messages, datagrams, transactions, connections) */
    uint64_t bytes, lost, send_errors, body_bytes;
    uint64_t t_start, deadline, t_end, last_progress;
    np_lat_t lat;
    uint64_t srv_conns, srv_bytes, srv_datagrams, srv_transactions, srv_open;
    uint64_t held_open; /* tcp-hold: the server's open connections after the hold */
} np_client_t;

static bool np_more(np_client_t *c, uint64_t now)
{
    return c->use_count ? c->started < c->count : now < c->deadline;
}

/* ---- Client: control connection ---------------------------------------------------- */

static int np_wait(int fd, short events, int timeout_ms)
{
    struct fs_pollfd p = {.fd = fd, .events = events};
    int r = fs_poll(&p, 1, timeout_ms);
    if (r == 0)
        errno = ETIMEDOUT;
    return r > 0 ? 0 : -1;
}

/* A connected, non-blocking TCP socket to the server, or -1 (errno set). */
static int np_connect_wait(np_client_t *c)
{
    int fd = fs_socket(c->addr.ss_family, FS_SOCK_STREAM | FS_SOCK_NONBLOCK, 0);
    if (fd < 0)
        return -1;
    if (fs_connect(fd, (struct fs_sockaddr *)&c->addr, c->alen) != 0) {
        int err = 0;
        fs_socklen_t el = sizeof err;
        if (errno != EINPROGRESS || np_wait(fd, FS_POLLOUT, NP_CTRL_TIMEOUT_MS) != 0 ||
            fs_getsockopt(fd, FS_SOL_SOCKET, FS_SO_ERROR, &err, &el) != 0 || err != 0) {
            int e = err ? err : errno;
            fs_close(fd);
            errno = e;
            return -1;
        }
    }
    return fd;
}

static int np_ctrl_send(np_client_t *c, const char *line)
{
    size_t len = strlen(line), off = 0;
    while (off < len) {
        fs_ssize_t n = fs_send(c->ctrl, line + off, len - off, FS_MSG_DONTWAIT);
        if (n < 0 && (errno != EAGAIN || np_wait(c->ctrl, FS_POLLOUT, NP_CTRL_TIMEOUT_MS) != 0))
            return -1;
        if (n > 0)
            off += (size_t)n;
    }
    return 0;
}

/* One answer line (without "\n") into line[NP_LINE_MAX]. */
static int np_ctrl_line(np_client_t *c, char *line)
{
    size_t len = 0;
    for (;;) {
        if (np_wait(c->ctrl, FS_POLLIN, NP_CTRL_TIMEOUT_MS) != 0)
            return -1;
        fs_ssize_t n = fs_recv(c->ctrl, line + len, NP_LINE_MAX - 1 - len, FS_MSG_DONTWAIT);
        if (n == 0) {
            errno = ECONNRESET;
            return -1;
        }
        if (n < 0 && errno != EAGAIN)
            return -1;
        if (n > 0)
            len += (size_t)n;
        line[len] = '\0';
        char *nl = strchr(line, '\n');
        if (nl != NULL) {
            *nl = '\0';
            return 0;
        }
        if (len == NP_LINE_MAX - 1) {
            errno = EPROTO;
            return -1;
        }
    }
}

/* A connection to the server, retried while refused for --wait-ms; -1 (logged) if none. */
static int np_connect_retry(np_client_t *c)
{
    uint64_t give_up = mk_time_ns() + (uint64_t)c->wait_ms * 1000000ull;
    int fd = np_connect_wait(c);
    while (fd < 0 && errno == ECONNREFUSED && mk_time_ns() < give_up) {
        mk_sleep_ns(50000000ull); /* the server may not listen yet */
        fd = np_connect_wait(c);
    }
    if (fd < 0)
        mk_log("cannot connect to %s port %u: %s", c->host, (unsigned)c->port, strerror(errno));
    return fd;
}

/* http: with --wait-ms, wait until the server listens. */
static int np_server_wait(np_client_t *c)
{
    if (c->wait_ms == 0)
        return 0;
    int fd = np_connect_retry(c);
    if (fd < 0)
        return -1;
    fs_close(fd);
    return 0;
}

static int np_ctrl_open(np_client_t *c)
{
    c->ctrl = np_connect_retry(c);
    if (c->ctrl < 0)
        return -1;
    char line[NP_LINE_MAX];
    snprintf(line, sizeof line, "NPERF1 CTRL %s %u\n", np_tests[c->test].name, (unsigned)c->size);
    if (np_ctrl_send(c, line) != 0 || np_ctrl_line(c, line) != 0) {
        mk_log("control connection: %s", strerror(errno));
        return -1;
    }
    uint32_t sid;
    if (strncmp(line, "OK ", 3) != 0 || app_parse_u32(line + 3, 1, UINT32_MAX, &sid) != 0) {
        mk_log("the server refused the test: '%s'", line);
        return -1;
    }
    c->sid = sid;
    return 0;
}

/* Ask for the session's counters ("STATS" or "END"). */
static int np_ctrl_result(np_client_t *c, const char *cmd)
{
    char line[NP_LINE_MAX];
    if (np_ctrl_send(c, cmd) != 0 || np_ctrl_line(c, line) != 0) {
        mk_log("control connection: %s", strerror(errno));
        return -1;
    }
    unsigned long long v[5];
    if (sscanf(line, "RESULT conns=%llu bytes=%llu datagrams=%llu transactions=%llu open=%llu", &v[0], &v[1],
               &v[2], &v[3], &v[4]) != 5) {
        mk_log("bad answer from the server: '%s'", line);
        return -1;
    }
    c->srv_conns = v[0];
    c->srv_bytes = v[1];
    c->srv_datagrams = v[2];
    c->srv_transactions = v[3];
    c->srv_open = v[4];
    return 0;
}

/* ---- Client: TCP flows ------------------------------------------------------------- */

static void np_progress(np_client_t *c, uint64_t now)
{
    c->last_progress = now;
}

/* A connection per transaction (tcp-crr, http without --keepalive): the
 * latency then counts from the connect. */
static bool np_reconnects(const np_client_t *c)
{
    return c->test == NP_TCP_CRR || (c->test == NP_HTTP && !c->keepalive);
}

/* Start a unit (message or transaction) on a connected flow. The first unit
 * of a connection was counted in `started` when the connection began. */
static void np_unit_begin(np_client_t *c, np_flow_t *f, bool first, uint64_t now)
{
    if (!first)
        c->started++;
    f->off = first ? 0 : c->hello_len;
    f->resp_got = 0;
    if (!np_reconnects(c))
        f->t0 = now;
}

static int np_flow_connect(np_client_t *c, np_flow_t *f, uint64_t now)
{
    f->fd = fs_socket(c->addr.ss_family, FS_SOCK_STREAM | FS_SOCK_NONBLOCK, 0);
    if (f->fd < 0) {
        mk_log("socket: %s", strerror(errno));
        return -1;
    }
    f->state = NP_F_CONNECT;
    f->t0 = now;
    c->started++; /* its first unit (for crr, the unit is the connection) */
    if (fs_connect(f->fd, (struct fs_sockaddr *)&c->addr, c->alen) != 0 && errno != EINPROGRESS) {
        mk_log("connect: %s", strerror(errno));
        return -1;
    }
    return 0;
}

static void np_flow_finish(np_flow_t *f)
{
    if (f->fd >= 0)
        fs_close(f->fd);
    f->fd = -1;
    f->state = NP_F_DONE;
}

/* Send from the current unit (a bounded number of times, so that the loop
 * sees the clock and the other flows); -1 on failure. */
static int np_flow_send(np_client_t *c, np_flow_t *f, uint64_t now)
{
    for (int k = 0; k < 16 && f->off < c->unit_len; k++) {
        fs_ssize_t n = fs_send(f->fd, c->unit + f->off, c->unit_len - f->off, FS_MSG_DONTWAIT);
        if (n < 0) {
            if (errno == EAGAIN)
                return 0;
            mk_log("send: %s", strerror(errno));
            return -1;
        }
        /* Payload bytes: what was sent past the hello line. */
        uint32_t hl = c->hello_len, before = f->off > hl ? f->off - hl : 0;
        f->off += (uint32_t)n;
        c->bytes += (f->off > hl ? f->off - hl : 0) - before;
        np_progress(c, now);
        if (c->test == NP_TCP_STREAM && f->off == c->unit_len) {
            c->done++;
            now = mk_time_ns(); /* a fast receiver never makes send wait */
            if (!np_more(c, now))
                return 0;
            np_unit_begin(c, f, false, now);
        }
    }
    return 0;
}

/* End a stream flow's sending: EOF to the server, then wait for its close. */
static int np_stream_stop(np_flow_t *f)
{
    if (fs_shutdown(f->fd, FS_SHUT_WR) != 0) {
        mk_log("shutdown: %s", strerror(errno));
        return -1;
    }
    f->state = NP_F_DRAIN;
    return 0;
}

/* A transaction's answer is complete. */
static int np_rr_done(np_client_t *c, np_flow_t *f, uint64_t now)
{
    np_lat_add(&c->lat, now - f->t0);
    c->done++;
    if (np_reconnects(c)) {
        fs_close(f->fd);
        f->fd = -1;
        if (!np_more(c, now)) {
            f->state = NP_F_DONE;
            return 0;
        }
        return np_flow_connect(c, f, now);
    }
    if (!np_more(c, now)) {
        np_flow_finish(f);
        return 0;
    }
    np_unit_begin(c, f, false, now);
    return np_flow_send(c, f, now);
}

/* http: the answer's header is complete in f->hdr (NUL-terminated, `end`
 * at its blank line): check it, take the body bytes that came with it. */
static int np_http_header(np_client_t *c, np_flow_t *f, const char *end)
{
    unsigned status = 0;
    if (strncmp(f->hdr, "HTTP/1.", 7) != 0 || sscanf(f->hdr + 8, " %u", &status) != 1 || status != 200) {
        mk_log("http: the server answered '%.*s'", (int)strcspn(f->hdr, "\r\n"), f->hdr);
        return -1;
    }
    uint64_t len = UINT64_MAX;
    for (const char *l = strstr(f->hdr, "\r\n"); l != NULL && l < end; l = strstr(l + 2, "\r\n")) {
        unsigned long long v;
        if (strncasecmp(l + 2, "Content-Length:", 15) == 0 && sscanf(l + 17, " %llu", &v) == 1)
            len = v;
    }
    uint32_t head = (uint32_t)(end + 4 - f->hdr), extra = f->hdr_len - head;
    if (len == UINT64_MAX || extra > len) {
        mk_log("http: %s", len == UINT64_MAX ? "an answer without Content-Length" : "more bytes than the answer");
        return -1;
    }
    f->in_body = true;
    f->body_left = len - extra;
    c->body_bytes += extra;
    return 0;
}

/* http: read the answer (header, then body) to the request on flow f. */
static int np_http_read(np_client_t *c, np_flow_t *f, uint64_t now)
{
    for (int k = 0; k < 8 && f->state == NP_F_RUN; k++) {
        fs_ssize_t n;
        if (f->in_body)
            n = fs_recv(f->fd, c->rbuf, f->body_left < NP_BUF ? (size_t)f->body_left : NP_BUF, FS_MSG_DONTWAIT);
        else
            n = fs_recv(f->fd, f->hdr + f->hdr_len, NP_HTTP_HDR_MAX - 1 - f->hdr_len, FS_MSG_DONTWAIT);
        if (n < 0 && errno == EAGAIN)
            return 0;
        if (n <= 0) {
            mk_log("http: %s", n < 0 ? strerror(errno) : "the server closed the connection before the answer");
            return -1;
        }
        np_progress(c, now);
        if (f->in_body) {
            f->body_left -= (uint64_t)n;
            c->body_bytes += (uint64_t)n;
        } else {
            f->hdr_len += (uint32_t)n;
            f->hdr[f->hdr_len] = '\0';
            const char *end = strstr(f->hdr, "\r\n\r\n");
            if (end == NULL && f->hdr_len == NP_HTTP_HDR_MAX - 1) {
                mk_log("http: an answer header over %u bytes", (unsigned)NP_HTTP_HDR_MAX);
                return -1;
            }
            if (end == NULL)
                continue;
            if (np_http_header(c, f, end) != 0)
                return -1;
        }
        if (f->in_body && f->body_left == 0) {
            f->in_body = false;
            f->hdr_len = 0;
            return np_rr_done(c, f, now); /* (without keep-alive, f->fd is another socket now) */
        }
    }
    return 0;
}

static int np_tcp_event(np_client_t *c, np_flow_t *f, short rev, uint64_t now)
{
    if (f->state == NP_F_CONNECT) {
        int err = 0;
        fs_socklen_t el = sizeof err;
        if (fs_getsockopt(f->fd, FS_SOL_SOCKET, FS_SO_ERROR, &err, &el) != 0 || err != 0) {
            mk_log("connect: %s", strerror(err ? err : errno));
            return -1;
        }
        f->state = NP_F_RUN;
        if (c->test != NP_TCP_STREAM)
            np_nodelay(f->fd);
        np_unit_begin(c, f, true, now);
        np_progress(c, now);
        return np_flow_send(c, f, now);
    }
    if (rev & FS_POLLOUT) {
        if (np_flow_send(c, f, now) != 0)
            return -1;
        if (c->test == NP_TCP_STREAM && f->off == c->unit_len && np_stream_stop(f) != 0)
            return -1;
    }
    if ((rev & (FS_POLLIN | FS_POLLHUP | FS_POLLERR)) == 0)
        return 0;
    if (c->test == NP_HTTP)
        return np_http_read(c, f, now);
    for (int k = 0; k < 4 && f->state != NP_F_DONE; k++) {
        size_t want = NP_BUF;
        if (f->state == NP_F_RUN && c->test != NP_TCP_STREAM)
            want = c->size - f->resp_got;
        fs_ssize_t n = fs_recv(f->fd, c->rbuf, want, FS_MSG_DONTWAIT);
        if (n < 0 && errno == EAGAIN)
            return 0;
        if (n == 0 && f->state == NP_F_DRAIN) {
            np_progress(c, now);
            np_flow_finish(f);
            return 0;
        }
        if (n <= 0 || f->state != NP_F_RUN || c->test == NP_TCP_STREAM) {
            mk_log("data connection: %s", n < 0 ? strerror(errno) : n == 0 ? "closed by the server" : "unexpected data");
            return -1;
        }
        np_progress(c, now);
        f->resp_got += (uint32_t)n;
        if (f->resp_got == c->size)
            return np_rr_done(c, f, now); /* (crr: f->fd is another socket now) */
    }
    return 0;
}

/* ---- Client: UDP flows ------------------------------------------------------------- */

static int np_udp_send(np_client_t *c, np_flow_t *f, uint64_t now)
{
    fs_ssize_t n = fs_sendto(f->fd, c->unit, c->size, FS_MSG_DONTWAIT, (struct fs_sockaddr *)&c->addr, c->alen);
    (void)now;
    if (n == (fs_ssize_t)c->size)
        return 1;
    if (n < 0 && (errno == EAGAIN || errno == ENOBUFS))
        return 0;
    c->send_errors++;
    if (c->send_errors >= 1000) {
        mk_log("sendto: %s (1000 failures)", n < 0 ? strerror(errno) : "short datagram");
        return -1;
    }
    return 0;
}

static int np_udp_stream_event(np_client_t *c, np_flow_t *f, uint64_t now)
{
    for (int k = 0; k < 64; k++) {
        if (!np_more(c, now)) {
            np_flow_finish(f);
            return 0;
        }
        np_put32(c->unit + 8, (uint32_t)c->started);
        int r = np_udp_send(c, f, now);
        if (r <= 0)
            return r;
        np_progress(c, now);
        c->started++;
        c->done++;
        c->bytes += c->size;
    }
    return 0;
}

/* The request's sequence bytes: the first min(size, 4) bytes of the datagram.
 * Only answers count as progress (a dead path must hit the stall guard). */
static void np_rr_seq(uint32_t seq, uint8_t out[4])
{
    out[0] = (uint8_t)seq;
    out[1] = (uint8_t)(seq >> 8);
    out[2] = (uint8_t)(seq >> 16);
    out[3] = (uint8_t)(seq >> 24);
}

static int np_udp_rr_send(np_client_t *c, np_flow_t *f, uint64_t now)
{
    if (!np_more(c, now)) {
        np_flow_finish(f);
        return 0;
    }
    uint8_t sb[4];
    f->seq++;
    np_rr_seq(f->seq, sb);
    if (c->size >= NP_UDP_HDR && memcmp(sb, np_magic, 4) == 0) /* never look like a stream datagram */
        np_rr_seq(++f->seq, sb);
    memcpy(c->unit, sb, c->size < 4 ? c->size : 4);
    int r = np_udp_send(c, f, now);
    if (r < 0)
        return -1;
    f->t0 = now;
    f->waiting = true; /* even if it was not sent: it then times out as lost */
    c->started++;
    return 0;
}

static int np_udp_rr_event(np_client_t *c, np_flow_t *f, uint64_t now)
{
    for (int k = 0; k < 16; k++) {
        fs_ssize_t n = fs_recvfrom(f->fd, c->rbuf, NP_BUF, FS_MSG_DONTWAIT, NULL, NULL);
        if (n < 0)
            return 0;
        uint8_t sb[4];
        np_rr_seq(f->seq, sb);
        if (!f->waiting || n != (fs_ssize_t)c->size || memcmp(c->rbuf, sb, c->size < 4 ? c->size : 4) != 0)
            continue; /* a late answer to a request counted as lost */
        np_progress(c, now);
        np_lat_add(&c->lat, now - f->t0);
        c->done++;
        f->waiting = false;
        return np_udp_rr_send(c, f, now);
    }
    return 0;
}

/* ---- Client: the loop -------------------------------------------------------------- */

static int np_flows_start(np_client_t *c, uint64_t now)
{
    for (uint32_t i = 0; i < c->conns; i++) {
        np_flow_t *f = &c->flows[i];
        f->fd = -1;
        f->state = NP_F_DONE;
        if (!np_more(c, now))
            continue;
        if (np_tests[c->test].tcp) {
            if (np_flow_connect(c, f, now) != 0)
                return -1;
            continue;
        }
        f->fd = fs_socket(c->addr.ss_family, FS_SOCK_DGRAM | FS_SOCK_NONBLOCK, 0);
        if (f->fd < 0) {
            mk_log("socket: %s", strerror(errno));
            return -1;
        }
        f->state = NP_F_RUN;
        if (c->test == NP_UDP_RR && np_udp_rr_send(c, f, now) != 0)
            return -1;
    }
    return 0;
}

/* Time-driven steps before polling: stop streams at the deadline, time out
 * udp-rr requests. Returns how long poll may sleep (ms). */
static int np_flows_tick(np_client_t *c, uint64_t now, int *err)
{
    uint64_t next = now + 100 * NP_MS;
    if (!c->use_count && c->deadline > now && c->deadline < next)
        next = c->deadline;
    for (uint32_t i = 0; i < c->conns && !*err; i++) {
        np_flow_t *f = &c->flows[i];
        if (f->state != NP_F_RUN)
            continue;
        if (c->test == NP_TCP_STREAM && !c->use_count && !np_more(c, now))
            *err = np_stream_stop(f);
        else if (c->test == NP_UDP_STREAM && !np_more(c, now))
            np_flow_finish(f);
        else if (c->test == NP_UDP_RR && f->waiting) {
            if (now - f->t0 >= NP_UDP_RR_TIMEOUT_NS) {
                c->lost++;
                f->waiting = false;
                *err = np_udp_rr_send(c, f, now);
            } else if (f->t0 + NP_UDP_RR_TIMEOUT_NS < next) {
                next = f->t0 + NP_UDP_RR_TIMEOUT_NS;
            }
        }
    }
    return (int)((next - now + NP_MS - 1) / NP_MS);
}

static short np_flow_events(const np_client_t *c, const np_flow_t *f)
{
    if (f->state == NP_F_CONNECT)
        return FS_POLLOUT;
    if (f->state == NP_F_DRAIN)
        return FS_POLLIN;
    switch (c->test) {
    case NP_TCP_STREAM:
    case NP_UDP_STREAM:
        return FS_POLLOUT;
    case NP_UDP_RR:
        return FS_POLLIN;
    default:
        return f->off < c->unit_len ? FS_POLLOUT : FS_POLLIN;
    }
}

static int np_client_loop(np_client_t *c)
{
    struct fs_pollfd *pfd = calloc(c->conns, sizeof *pfd);
    uint32_t *idx = calloc(c->conns, sizeof *idx);
    int err = pfd && idx ? 0 : -1;
    uint64_t now = mk_time_ns();
    c->t_start = c->last_progress = now;
    c->deadline = now + c->duration_ns;
    if (err == 0)
        err = np_flows_start(c, now);
    while (err == 0) {
        now = mk_time_ns();
        int wait_ms = np_flows_tick(c, now, &err);
        uint32_t n = 0;
        for (uint32_t i = 0; i < c->conns; i++) {
            if (c->flows[i].state == NP_F_DONE)
                continue;
            pfd[n] = (struct fs_pollfd){.fd = c->flows[i].fd, .events = np_flow_events(c, &c->flows[i])};
            idx[n++] = i;
        }
        if (err != 0 || n == 0)
            break;
        if (now - c->last_progress > NP_STALL_NS) {
            mk_log("no progress for %llu s: giving up", (unsigned long long)(NP_STALL_NS / 1000 / NP_MS));
            err = -1;
            break;
        }
        int r = fs_poll(pfd, n, wait_ms);
        if (r < 0 && errno != EINTR) {
            mk_log("poll: %s", strerror(errno));
            err = -1;
        }
        now = mk_time_ns();
        for (uint32_t k = 0; r > 0 && k < n && err == 0; k++) {
            np_flow_t *f = &c->flows[idx[k]];
            short rev = pfd[k].revents;
            if (rev == 0 || f->state == NP_F_DONE)
                continue;
            if (rev & FS_POLLNVAL) {
                mk_log("poll: invalid socket");
                err = -1;
            } else if (np_tests[c->test].tcp) {
                err = np_tcp_event(c, f, rev, now);
            } else if (c->test == NP_UDP_STREAM) {
                err = np_udp_stream_event(c, f, now);
            } else {
                err = np_udp_rr_event(c, f, now);
            }
        }
    }
    c->t_end = mk_time_ns();
    for (uint32_t i = 0; i < c->conns; i++)
        if (c->flows[i].state != NP_F_DONE)
            np_flow_finish(&c->flows[i]);
    free(pfd);
    free(idx);
    return err;
}

/* ---- Client: tcp-hold -------------------------------------------------------------- */

/* A connecting hold flow is connected: check it. */
static int np_hold_connected(np_flow_t *f)
{
    int err = 0;
    fs_socklen_t el = sizeof err;
    if (fs_getsockopt(f->fd, FS_SOL_SOCKET, FS_SO_ERROR, &err, &el) != 0 || err != 0) {
        mk_log("connect: %s", strerror(err ? err : errno));
        return -1;
    }
    f->state = NP_F_RUN;
    f->off = 0;
    return 0;
}

/* Open every connection, at most NP_HOLD_WINDOW connecting at once, and send
 * each its hello line; 0 once all have, -1 on failure. pfd and idx have
 * room for c->conns entries. */
static int np_hold_open(np_client_t *c, struct fs_pollfd *pfd, uint32_t *idx)
{
    uint32_t next = 0, connecting = 0, sent = 0;
    while (sent < c->conns) {
        uint64_t now = mk_time_ns();
        for (; next < c->conns && connecting < NP_HOLD_WINDOW; next++, connecting++)
            if (np_flow_connect(c, &c->flows[next], now) != 0)
                return -1;
        uint32_t n = 0;
        for (uint32_t i = 0; i < next; i++) {
            np_flow_t *f = &c->flows[i];
            if (f->state == NP_F_CONNECT || f->off < c->unit_len) {
                pfd[n] = (struct fs_pollfd){.fd = f->fd, .events = FS_POLLOUT};
                idx[n++] = i;
            }
        }
        if (now - c->last_progress > NP_STALL_NS) {
            mk_log("opening connections: no progress for %llu s (%u of %u open)",
                   (unsigned long long)(NP_STALL_NS / 1000 / NP_MS), (unsigned)sent, (unsigned)c->conns);
            return -1;
        }
        int r = fs_poll(pfd, n, 100);
        if (r < 0 && errno != EINTR) {
            mk_log("poll: %s", strerror(errno));
            return -1;
        }
        now = mk_time_ns();
        for (uint32_t k = 0; r > 0 && k < n; k++) {
            np_flow_t *f = &c->flows[idx[k]];
            if (pfd[k].revents == 0)
                continue;
            if (f->state == NP_F_CONNECT) {
                if (np_hold_connected(f) != 0)
                    return -1;
                connecting--;
                np_progress(c, now);
            }
            if (np_flow_send(c, f, now) != 0)
                return -1;
            if (f->off == c->unit_len) {
                sent++;
                c->done++;
            }
        }
    }
    return 0;
}

/* Wait until the server has every connection (it counts one once it has
 * read its hello); -1 if that stalls. */
static int np_hold_accepted(np_client_t *c)
{
    uint64_t last = 0;
    for (;;) {
        if (np_ctrl_result(c, "STATS\n") != 0)
            return -1;
        uint64_t now = mk_time_ns();
        if (c->srv_open >= c->conns)
            return 0;
        if (c->srv_open != last)
            np_progress(c, now);
        last = c->srv_open;
        if (now - c->last_progress > NP_STALL_NS) {
            mk_log("the server accepted only %llu of %u connections", (unsigned long long)c->srv_open,
                   (unsigned)c->conns);
            return -1;
        }
        mk_sleep_ns(20 * NP_MS);
    }
}

static int np_hold(np_client_t *c)
{
    struct fs_pollfd *pfd = calloc(c->conns, sizeof *pfd);
    uint32_t *idx = calloc(c->conns, sizeof *idx);
    int err = -1;
    for (uint32_t i = 0; i < c->conns; i++)
        c->flows[i] = (np_flow_t){.fd = -1, .state = NP_F_DONE};
    c->t_start = c->last_progress = mk_time_ns();
    if (pfd == NULL || idx == NULL) {
        mk_log("out of memory");
        goto out;
    }
    if (np_hold_open(c, pfd, idx) != 0 || np_hold_accepted(c) != 0)
        goto out;
    c->t_end = mk_time_ns();
    mk_log("holding %u connections for %.1f s", (unsigned)c->conns, (double)c->hold_ns / 1e9);
    for (uint64_t until = mk_time_ns() + c->hold_ns, now; (now = mk_time_ns()) < until;)
        mk_sleep_ns(until - now < 100 * NP_MS ? until - now : 100 * NP_MS);
    if (np_ctrl_result(c, "STATS\n") != 0)
        goto out;
    c->held_open = c->srv_open;
    if (c->srv_open != c->conns) {
        mk_log("after holding, the server has %llu of the %u connections", (unsigned long long)c->srv_open,
               (unsigned)c->conns);
        goto out;
    }
    err = 0;
out:
    for (uint32_t i = 0; i < c->conns; i++)
        if (c->flows[i].fd >= 0)
            np_flow_finish(&c->flows[i]);
    free(pfd);
    free(idx);
    return err;
}

/* ---- Client: results --------------------------------------------------------------- */

typedef struct np_out {
    char human[512], json[768]; /* the result's own part of the line / of the JSON object */
    const char *unit;
    double value;
} np_out_t;

static void np_out_stream(const np_client_t *c, double secs, np_out_t *o)
{
    o->unit = "Mbit/s";
    o->value = (double)c->srv_bytes * 8 / secs / 1e6;
    snprintf(o->human, sizeof o->human, "%.1f Mbit/s (sent %llu bytes, server received %llu)", o->value,
             (unsigned long long)c->bytes, (unsigned long long)c->srv_bytes);
    snprintf(o->json, sizeof o->json, ",\"bytes\":%llu,\"server_bytes\":%llu", (unsigned long long)c->bytes,
             (unsigned long long)c->srv_bytes);
}

static void np_out_udp_stream(const np_client_t *c, double secs, np_out_t *o)
{
    uint64_t sent = c->done, recv = c->srv_datagrams;
    uint64_t lost = recv < sent ? sent - recv : 0;
    double loss = sent ? (double)lost * 100.0 / (double)sent : 0;
    double mbit = (double)recv * c->size * 8 / secs / 1e6;
    o->unit = "datagrams/s";
    o->value = (double)recv / secs;
    snprintf(o->human, sizeof o->human,
             "%.0f datagrams/s received (%.1f Mbit/s); sent %llu (%.0f/s), server received %llu, lost %llu (%.2f%%)",
             o->value, mbit, (unsigned long long)sent, (double)sent / secs, (unsigned long long)recv,
             (unsigned long long)lost, loss);
    snprintf(o->json, sizeof o->json,
             ",\"sent\":%llu,\"received\":%llu,\"lost\":%llu,\"loss_pct\":%.3f,\"sent_per_s\":%.1f,"
             "\"mbit_s\":%.3f,\"send_errors\":%llu",
             (unsigned long long)sent, (unsigned long long)recv, (unsigned long long)lost, loss, (double)sent / secs,
             mbit, (unsigned long long)c->send_errors);
}

static void np_out_rr(np_client_t *c, double secs, np_out_t *o)
{
    np_pct_t p = np_lat_summary(&c->lat);
    o->unit = c->test == NP_TCP_CRR ? "connections/s" : c->test == NP_HTTP ? "requests/s" : "transactions/s";
    o->value = (double)c->lat.count / secs;
    int h = snprintf(o->human, sizeof o->human,
                     "%.1f %s (%llu in all), latency us: mean %.1f median %.1f p99 %.1f min %.1f max %.1f", o->value,
                     o->unit, (unsigned long long)c->lat.count, p.mean, p.median, p.p99, p.min, p.max);
    int j = snprintf(o->json, sizeof o->json,
                     ",\"transactions\":%llu,\"mean_us\":%.3f,\"median_us\":%.3f,\"p99_us\":%.3f,"
                     "\"min_us\":%.3f,\"max_us\":%.3f",
                     (unsigned long long)c->lat.count, p.mean, p.median, p.p99, p.min, p.max);
    if (h < 0 || j < 0 || (size_t)h >= sizeof o->human || (size_t)j >= sizeof o->json)
        return;
    if (c->test == NP_UDP_RR) {
        snprintf(o->human + h, sizeof o->human - (size_t)h, ", %llu lost", (unsigned long long)c->lost);
        snprintf(o->json + j, sizeof o->json - (size_t)j, ",\"lost\":%llu", (unsigned long long)c->lost);
    } else if (c->test == NP_TCP_RR) {
        snprintf(o->json + j, sizeof o->json - (size_t)j, ",\"server_transactions\":%llu",
                 (unsigned long long)c->srv_transactions);
    } else if (c->test == NP_HTTP) {
        snprintf(o->human + h, sizeof o->human - (size_t)h, ", %llu body bytes%s", (unsigned long long)c->body_bytes,
                 c->keepalive ? ", keep-alive" : "");
        snprintf(o->json + j, sizeof o->json - (size_t)j, ",\"body_bytes\":%llu,\"keepalive\":%s",
                 (unsigned long long)c->body_bytes, c->keepalive ? "true" : "false");
    } else {
        snprintf(o->json + j, sizeof o->json - (size_t)j, ",\"server_conns\":%llu", (unsigned long long)c->srv_conns);
    }
}

static void np_out_hold(const np_client_t *c, double secs, np_out_t *o)
{
    o->unit = "connections";
    o->value = (double)c->conns;
    double hold = (double)c->hold_ns / 1e9;
    snprintf(o->human, sizeof o->human, "held %u connections for %.1f s (opened in %.3f s, %.0f/s), server had %llu open",
             (unsigned)c->conns, hold, secs, (double)c->conns / secs, (unsigned long long)c->held_open);
    snprintf(o->json, sizeof o->json, ",\"held\":%u,\"open_seconds\":%.6f,\"hold_seconds\":%.3f,\"server_open\":%llu",
             (unsigned)c->conns, secs, hold, (unsigned long long)c->held_open);
}

static void np_report(np_client_t *c)
{
    double secs = (double)(c->t_end - c->t_start) / 1e9;
    if (secs < 1e-9)
        secs = 1e-9;
    np_out_t o;
    if (c->test == NP_TCP_STREAM)
        np_out_stream(c, secs, &o);
    else if (c->test == NP_TCP_HOLD)
        np_out_hold(c, secs, &o);
    else if (c->test == NP_UDP_STREAM)
        np_out_udp_stream(c, secs, &o);
    else
        np_out_rr(c, secs, &o);
    const char *name = np_tests[c->test].name;
    char head[160];
    snprintf(head, sizeof head, "%s %s port %u, %u conn%s, %u-byte, %.3f s:", name, c->host, (unsigned)c->port,
             (unsigned)c->conns, c->conns == 1 ? "" : "s", (unsigned)c->size, secs);
    if (!c->json) {
        printf("%s %s\n", head, o.human);
    } else {
        mk_log("%s %s", head, o.human);
        printf("{\"test\":\"%s\",\"value\":%.3f,\"unit\":\"%s\",\"host\":\"%s\",\"port\":%u,\"conns\":%u,"
               "\"size\":%u,\"seconds\":%.6f%s}\n",
               name, o.value, o.unit, c->host, (unsigned)c->port, (unsigned)c->conns, (unsigned)c->size, secs,
               o.json);
    }
    fflush(stdout);
}

/* udp-stream: wait (at most 1 s) until the server's count stops moving. */
static int np_udp_settle(np_client_t *c)
{
    uint64_t last = UINT64_MAX;
    for (int k = 0; k < 20; k++) {
        mk_sleep_ns(50 * NP_MS);
        if (np_ctrl_result(c, "STATS\n") != 0)
            return -1;
        if (c->srv_datagrams == last || c->srv_datagrams >= c->done)
            return 0;
        last = c->srv_datagrams;
    }
    return 0;
}

/* The bytes each flow sends: TCP, the hello line of this session followed
 * by `size` payload bytes (only the first unit of a connection sends the
 * hello); UDP, one datagram (udp-stream: header + payload). */
static int np_units_build(np_client_t *c)
{
    if (c->test == NP_HTTP) {
        char req[NP_PATH_MAX + 200];
        bool v6 = strchr(c->host, ':') != NULL;
        int n = snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: %s%s%s:%u\r\nUser-Agent: nperf\r\nConnection: %s\r\n\r\n",
                         c->path, v6 ? "[" : "", c->host, v6 ? "]" : "", (unsigned)c->port,
                         c->keepalive ? "keep-alive" : "close");
        if (n <= 0 || (size_t)n >= sizeof req || (c->unit = malloc((size_t)n)) == NULL)
            return -1;
        memcpy(c->unit, req, (size_t)n);
        c->hello_len = 0;
        c->unit_len = c->size = (uint32_t)n;
        c->hdrs = malloc((size_t)c->conns * NP_HTTP_HDR_MAX);
        for (uint32_t i = 0; c->hdrs && i < c->conns; i++)
            c->flows[i].hdr = c->hdrs + (size_t)i * NP_HTTP_HDR_MAX;
        return c->hdrs ? 0 : -1;
    }
    char hello[NP_LINE_MAX] = "";
    int n = np_tests[c->test].tcp ? snprintf(hello, sizeof hello, "NPERF1 DATA %u\n", (unsigned)c->sid) : 0;
    c->hello_len = (uint32_t)n;
    c->unit_len = c->hello_len + (c->test == NP_TCP_HOLD ? 0 : c->size); /* tcp-hold: the hello only */
    c->unit = malloc(c->unit_len);
    if (c->unit == NULL)
        return -1;
    memcpy(c->unit, hello, c->hello_len);
    for (uint32_t i = 0; i < c->size; i++)
        c->unit[c->hello_len + i] = (uint8_t)('a' + i % 26);
    if (c->test == NP_UDP_STREAM) {
        memcpy(c->unit, np_magic, 4);
        np_put32(c->unit + 4, c->sid);
        np_put32(c->unit + 8, 0);
        np_put32(c->unit + 12, NP_UDP_KIND_STREAM);
    }
    return 0;
}

static int np_client(np_client_t *c)
{
    int ret = 1;
    if (c->delay_ms > 0)
        mk_sleep_ns(c->delay_ms * NP_MS);
    if (np_session_apply(&c->session) != 0)
        return 1;
    bool served = np_tests[c->test].served;
    c->rbuf = malloc(NP_BUF);
    c->flows = calloc(c->conns, sizeof *c->flows);
    c->lat.rng = 0x9e3779b97f4a7c15ull;
    if (c->rbuf == NULL || c->flows == NULL) {
        mk_log("out of memory");
        goto out;
    }
    if (served ? np_ctrl_open(c) != 0 : np_server_wait(c) != 0)
        goto out;
    if (np_units_build(c) != 0) {
        mk_log("out of memory");
        goto out;
    }
    if ((c->test == NP_TCP_HOLD ? np_hold(c) : np_client_loop(c)) != 0)
        goto out;
    if (c->test == NP_UDP_STREAM && np_udp_settle(c) != 0)
        goto out;
    if (served && np_ctrl_result(c, "END\n") != 0)
        goto out;
    np_report(c);
    ret = 0;
out:
    if (c->ctrl >= 0)
        fs_close(c->ctrl);
    free(c->unit);
    free(c->rbuf);
    free(c->hdrs);
    free(c->flows);
    free(c->lat.s);
    return ret;
}

/* ======================================================================== */
/* ---- Command line ------------------------------------------------------------------ */

static int np_usage(const char *why, const char *what)
{
    mk_log("%s%s%s", why, what ? ": " : "", what ? what : "");
    mk_log("usage: nperf server [--port N] [--max-clients N] [--quiet] [SESSION]");
    mk_log("       nperf client --host ADDR --test T [--port N] [--duration S | --count N] [--size BYTES]"
           " [--conns N] [--wait-ms MS] [--delay-ms MS] [--hold S] [--keepalive] [--path P] [--json] [SESSION]");
    mk_log("SESSION (Ferry's socket session; ignored natively): [--max-sockets N] [--ring-size BYTES]");
    mk_log("tests: tcp-stream udp-stream tcp-rr udp-rr tcp-crr tcp-hold http");
    return 2;
}

/* Seconds with up to 9 decimals, 0.001 .. 86400. */
static int np_parse_seconds(const char *s, uint64_t *ns)
{
    uint64_t whole = 0, frac = 0, scale = 1000000000ull;
    const char *p = s;
    if (*p < '0' || *p > '9')
        return -1;
    for (; *p >= '0' && *p <= '9'; p++) {
        whole = whole * 10 + (uint64_t)(*p - '0');
        if (whole > 86400)
            return -1;
    }
    if (*p == '.') {
        p++;
        if (*p < '0' || *p > '9')
            return -1;
        for (; *p >= '0' && *p <= '9'; p++) {
            if (scale == 1)
                return -1;
            scale /= 10;
            frac += (uint64_t)(*p - '0') * scale;
        }
    }
    *ns = whole * 1000000000ull + frac;
    return *p == '\0' && *ns >= NP_MS && *ns <= 86400 * 1000000000ull ? 0 : -1;
}

static int np_server_main(int argc, char **argv)
{
    np_server_t s = {.port = NP_PORT, .max_clients = 1024};
    for (int i = 2; i < argc; i++) {
        if (strcmp(argv[i], "--port") == 0 && i + 1 < argc) {
            if (app_parse_u32(argv[++i], 1, 65535, &s.port))
                return np_usage("bad port", argv[i]);
        } else if (strcmp(argv[i], "--max-clients") == 0 && i + 1 < argc) {
            if (app_parse_u32(argv[++i], 1, 65536, &s.max_clients))
                return np_usage("bad --max-clients", argv[i]);
        } else if (strcmp(argv[i], "--quiet") == 0) {
            s.quiet = true;
        } else {
            int r = np_session_arg(&s.session, argc, argv, &i);
            if (r < 0)
                return np_usage("bad --max-sockets (1 .. 4096) or --ring-size (a power of two, 64 .. 2^30)",
                                argv[i]);
            if (r == 0)
                return np_usage("unknown server argument", argv[i]);
        }
    }
    return np_server(&s);
}

static int np_client_main(int argc, char **argv)
{
    np_client_t c = {.port = NP_PORT, .conns = 1, .duration_ns = 10000 * NP_MS, .test = -1, .ctrl = -1,
                     .path = "/", .hold_ns = 1000 * NP_MS};
    bool have_duration = false, have_size = false, have_path = false, have_hold = false;
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--json") == 0) {
            c.json = true;
            continue;
        }
        if (strcmp(a, "--keepalive") == 0) {
            c.keepalive = true;
            continue;
        }
        int r = np_session_arg(&c.session, argc, argv, &i);
        if (r < 0)
            return np_usage("bad --max-sockets (1 .. 4096) or --ring-size (a power of two, 64 .. 2^30)", a);
        if (r > 0)
            continue;
        if (v == NULL)
            return np_usage("unknown client argument or missing value", a);
        i++;
        if (strcmp(a, "--host") == 0) {
            c.host = v;
        } else if (strcmp(a, "--port") == 0) {
            if (app_parse_u32(v, 1, 65535, &c.port))
                return np_usage("bad port", v);
        } else if (strcmp(a, "--test") == 0) {
            if ((c.test = np_test_find(v)) < 0)
                return np_usage("unknown test", v);
        } else if (strcmp(a, "--duration") == 0) {
            if (np_parse_seconds(v, &c.duration_ns))
                return np_usage("bad --duration (seconds, 0.001 .. 86400)", v);
            have_duration = true;
        } else if (strcmp(a, "--count") == 0) {
            if (app_parse_u32(v, 1, UINT32_MAX, &c.count))
                return np_usage("bad --count", v);
            c.use_count = true;
        } else if (strcmp(a, "--size") == 0) {
            if (app_parse_u32(v, 1, NP_TCP_SIZE_MAX, &c.size))
                return np_usage("bad --size", v);
            have_size = true;
        } else if (strcmp(a, "--conns") == 0) {
            if (app_parse_u32(v, 1, NP_HOLD_MAX, &c.conns))
                return np_usage("bad --conns (1 .. 256; tcp-hold 1 .. 65536)", v);
        } else if (strcmp(a, "--wait-ms") == 0) {
            if (app_parse_u32(v, 0, 600000, &c.wait_ms))
                return np_usage("bad --wait-ms (0 .. 600000)", v);
        } else if (strcmp(a, "--delay-ms") == 0) {
            if (app_parse_u32(v, 0, 600000, &c.delay_ms))
                return np_usage("bad --delay-ms (0 .. 600000)", v);
        } else if (strcmp(a, "--hold") == 0) {
            if (np_parse_seconds(v, &c.hold_ns))
                return np_usage("bad --hold (seconds, 0.001 .. 86400)", v);
            have_hold = true;
        } else if (strcmp(a, "--path") == 0) {
            if (v[0] != '/' || strlen(v) > NP_PATH_MAX || strpbrk(v, " \r\n") != NULL)
                return np_usage("bad --path (starts with '/', at most 200 characters, no spaces)", v);
            c.path = v;
            have_path = true;
        } else {
            return np_usage("unknown client argument", a);
        }
    }
    if (c.host == NULL)
        return np_usage("missing --host", NULL);
    if (c.test < 0)
        return np_usage("missing --test", NULL);
    if (have_duration && c.use_count)
        return np_usage("--duration and --count exclude each other", NULL);
    if (c.test != NP_TCP_HOLD && c.conns > NP_CONNS_MAX)
        return np_usage("bad --conns (1 .. 256; tcp-hold 1 .. 65536)", NULL);
    if (c.test == NP_TCP_HOLD && (have_duration || c.use_count))
        return np_usage("tcp-hold takes --hold, not --duration or --count", NULL);
    if (c.test != NP_TCP_HOLD && have_hold)
        return np_usage("--hold applies to tcp-hold only", NULL);
    if (c.test != NP_HTTP && (have_path || c.keepalive))
        return np_usage("--path and --keepalive apply to http only", NULL);
    if (have_size && np_tests[c.test].size_max == 0)
        return np_usage("--size does not apply to this test", NULL);
    if (!have_size)
        c.size = np_tests[c.test].size_def;
    if (c.size < np_tests[c.test].size_min || c.size > np_tests[c.test].size_max) {
        mk_log("%s: --size must be %u .. %u", np_tests[c.test].name, (unsigned)np_tests[c.test].size_min,
               (unsigned)np_tests[c.test].size_max);
        return np_usage("bad --size for this test", NULL);
    }
    c.alen = app_addr(c.host, (uint16_t)c.port, &c.addr);
    if (c.alen == 0)
        return np_usage("--host is not an IPv4 or IPv6 address", c.host);
    return np_client(&c);
}

int nperf_main(int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "server") == 0)
        return np_server_main(argc, argv);
    if (argc >= 2 && strcmp(argv[1], "client") == 0)
        return np_client_main(argc, argv);
    return np_usage("first argument: server or client", argc >= 2 ? argv[1] : NULL);
}

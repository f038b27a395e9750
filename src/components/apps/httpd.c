/*
 * httpd - a small HTTP/1.1 server on ferry/socket.h: serves files from a
 * directory and /stats (the network server's live counters, from a
 * provider set with httpd_set_stats). GET and HEAD, keep-alive, one epoll
 * set (level-triggered: a turn costs the connections that are ready, not
 * the idle keep-alive ones), non-blocking sockets, files streamed in chunks.
 *
 * usage: httpd [--port N] [--root DIR] [--max-clients N] [--quiet]
 * Requests are parsed strictly: a request line over 2 KiB, headers over
 * 8 KiB, a path with "..", a backslash or a control character, or a method
 * other than GET/HEAD gets its 4xx answer and the connection closes.
 */
#include "apps.h"
#include "apputil.h"

#include <errno.h>
#include <ferry/mk.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define REQ_MAX 8192
#define OUT_MAX 16384
#define HTTPD_EVENTS 64 /* events taken per epoll wait */

/* What an epoll event names (its data.ptr): a listener, or a connection. */
typedef struct watch {
    int fd;
    bool listener;
} watch_t;

typedef struct conn {
    watch_t w;      /* first: an event's watch_t is its connection */
    uint32_t index; /* in httpd_t.conns */
    uint32_t req_len;
    char req[REQ_MAX + 1];
    uint32_t out_len, out_off;
    char out[OUT_MAX];
    FILE *file;     /* body still to stream, or NULL */
    bool close_after;
    uint32_t served;
} conn_t;

typedef struct httpd {
    uint32_t port, max_clients;
    char root[256];
    bool quiet;
    watch_t lst[2]; /* IPv4, IPv6 */
    int ep;
    uint32_t nconns;
    conn_t **conns;
    uint64_t requests, responses[6]; /* by class 1xx..5xx (index 1..5) */
} httpd_t;

static httpd_stats_fn stats_fn;

void httpd_set_stats(httpd_stats_fn fn)
{
    stats_fn = fn;
}

static const char *content_type(const char *path)
{
    static const struct {
        const char *ext, *type;
    } types[] = {{".html", "text/html; charset=utf-8"}, {".htm", "text/html; charset=utf-8"},
                 {".txt", "text/plain; charset=utf-8"}, {".css", "text/css"},
                 {".js", "text/javascript"}, {".json", "application/json"},
                 {".png", "image/png"}, {".jpg", "image/jpeg"}, {".svg", "image/svg+xml"}};
    const char *dot = strrchr(path, '.');
    for (size_t i = 0; dot && i < sizeof types / sizeof types[0]; i++)
        if (strcmp(dot, types[i].ext) == 0)
            return types[i].type;
    return "application/octet-stream";
}

static const char *reason(int code)
{
    switch (code) {
    case 200: return "OK";
    case 400: return "Bad Request";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 414: return "URI Too Long";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    default: return "Unknown";
    }
}

/* Queue a response head (and a small body, unless HEAD). */
static void respond(httpd_t *h, conn_t *c, int code, const char *type, const char *body, size_t body_len,
                    uint64_t file_len, bool head_only)
{
    uint64_t len = body ? body_len : file_len;
    int n = snprintf(c->out, sizeof c->out,
                     "HTTP/1.1 %d %s\r\nServer: ferry-httpd\r\nContent-Type: %s\r\nContent-Length: %llu\r\n"
                     "Connection: %s\r\n\r\n",
                     code, reason(code), type, (unsigned long long)len, c->close_after ? "close" : "keep-alive");
    c->out_len = (uint32_t)n;
    c->out_off = 0;
    if (body && !head_only) {
        size_t room = sizeof c->out - c->out_len;
        size_t k = body_len < room ? body_len : room;
        memcpy(c->out + c->out_len, body, k);
        c->out_len += (uint32_t)k;
    }
    h->responses[code / 100 < 6 ? code / 100 : 5]++;
    c->served++;
}

static void respond_error(httpd_t *h, conn_t *c, int code)
{
    char body[128];
    int n = snprintf(body, sizeof body, "%d %s\n", code, reason(code));
    c->close_after = true;
    respond(h, c, code, "text/plain; charset=utf-8", body, (size_t)n, 0, false);
}

static bool path_ok(const char *p)
{
    if (p[0] != '/')
        return false;
    for (const char *s = p; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == '\\' || *s == 0x7f)
            return false;
    for (const char *s = p; (s = strstr(s, "..")) != NULL; s += 2)
        if ((s == p || s[-1] == '/') && (s[2] == '/' || s[2] == '\0'))
            return false;
    return true;
}

static void serve_stats(httpd_t *h, conn_t *c, bool head_only)
{
    static char text[OUT_MAX - 512];
    int n = -1;
    if (stats_fn)
        n = stats_fn(text, sizeof text);
    if (n < 0)
        n = snprintf(text, sizeof text, "no network server statistics here (native build or netsrv unreachable)\n");
    int m = snprintf(text + n, sizeof text - (size_t)n, "\nhttpd: %llu requests, %llu 2xx, %llu 4xx, %llu 5xx\n",
                     (unsigned long long)h->requests, (unsigned long long)h->responses[2],
                     (unsigned long long)h->responses[4], (unsigned long long)h->responses[5]);
    if (m > 0)
        n += m;
    if ((size_t)n >= sizeof text)
        n = (int)sizeof text - 1;
    respond(h, c, 200, "text/plain; charset=utf-8", text, (size_t)n, 0, head_only);
}

static const char default_page[] =
    "<!doctype html>\n<html><head><title>Ferry</title></head><body>\n"
    "<h1>Served by Ferry</h1>\n<p>This page came through httpd, netsrv (lwIP) and the slirp NIC driver, "
    "all components in the Ferry simulator.</p>\n<p><a href=\"/stats\">Live network server counters</a></p>\n"
    "</body></html>\n";

static void serve_path(httpd_t *h, conn_t *c, const char *path, bool head_only)
{
    if (strcmp(path, "/stats") == 0) {
        serve_stats(h, c, head_only);
        return;
    }
    if (h->root[0] == '\0') {
        if (strcmp(path, "/") == 0 || strcmp(path, "/index.html") == 0)
            respond(h, c, 200, "text/html; charset=utf-8", default_page, sizeof default_page - 1, 0, head_only);
        else
            respond_error(h, c, 404);
        return;
    }
    char file[1024];
    int n = snprintf(file, sizeof file, "%s%s%s", h->root, path, path[strlen(path) - 1] == '/' ? "index.html" : "");
    if (n < 0 || (size_t)n >= sizeof file) {
        respond_error(h, c, 414);
        return;
    }
    FILE *f = fopen(file, "rb");
    long size = -1;
    if (f && fseek(f, 0, SEEK_END) == 0)
        size = ftell(f);
    if (f == NULL || size < 0 || fseek(f, 0, SEEK_SET) != 0) {
        if (f)
            fclose(f);
        respond_error(h, c, errno == EACCES ? 403 : 404);
        return;
    }
    respond(h, c, 200, content_type(file), NULL, 0, (uint64_t)size, head_only);
    if (head_only)
        fclose(f);
    else
        c->file = f;
}

/* A complete request head is in c->req (ends with an empty line). */
static void handle_request(httpd_t *h, conn_t *c)
{
    h->requests++;
    char *eol = strstr(c->req, "\r\n");
    char method[8], path[2048], version[16];
    if (eol == NULL || eol - c->req > 2100) {
        respond_error(h, c, 414);
        return;
    }
    *eol = '\0';
    if (sscanf(c->req, "%7s %2047s %15s", method, path, version) != 3 || strncmp(version, "HTTP/1.", 7) != 0) {
        respond_error(h, c, 400);
        return;
    }
    /* Connection handling: HTTP/1.0 closes unless keep-alive; 1.1 keeps. */
    const char *hdrs = eol + 2;
    bool ka = strcmp(version, "HTTP/1.1") == 0;
    for (const char *l = hdrs; *l && strncmp(l, "\r\n", 2) != 0;) {
        const char *next = strstr(l, "\r\n");
        if (next == NULL)
            break;
        if (strncasecmp(l, "Connection:", 11) == 0) {
            const char *v = l + 11;
            while (*v == ' ')
                v++;
            if (strncasecmp(v, "close", 5) == 0)
                ka = false;
            else if (strncasecmp(v, "keep-alive", 10) == 0)
                ka = true;
        }
        l = next + 2;
    }
    c->close_after = !ka;
    bool head_only = strcmp(method, "HEAD") == 0;
    if (!head_only && strcmp(method, "GET") != 0) {
        respond_error(h, c, 405);
        return;
    }
    char *q = strchr(path, '?');
    if (q)
        *q = '\0';
    if (!path_ok(path)) {
        respond_error(h, c, 400);
        return;
    }
    serve_path(h, c, path, head_only);
}

static void conn_close(httpd_t *h, conn_t *c)
{
    if (c->file)
        fclose(c->file);
    fs_close(c->w.fd); /* leaves the epoll set too */
    conn_t *last = h->conns[--h->nconns];
    h->conns[c->index] = last;
    last->index = c->index;
    free(c);
}

/* Push out what is queued, refilling from the file; false: close. */
static bool conn_write(conn_t *c)
{
    for (;;) {
        if (c->out_off == c->out_len) {
            c->out_off = c->out_len = 0;
            if (c->file) {
                size_t n = fread(c->out, 1, sizeof c->out, c->file);
                if (n == 0) {
                    fclose(c->file);
                    c->file = NULL;
                } else {
                    c->out_len = (uint32_t)n;
                }
            }
            if (c->out_len == 0)
                return !c->close_after;
        }
        fs_ssize_t n = fs_send(c->w.fd, c->out + c->out_off, c->out_len - c->out_off, FS_MSG_DONTWAIT);
        if (n < 0)
            return errno == EAGAIN;
        c->out_off += (uint32_t)n;
    }
}

static bool conn_busy(const conn_t *c)
{
    return c->out_off < c->out_len || c->file != NULL;
}

/* Answer every complete request head in c->req while nothing is pending
 * (pipelining); false: close. */
static bool conn_process(httpd_t *h, conn_t *c)
{
    while (!conn_busy(c)) {
        if (memchr(c->req, '\0', c->req_len)) {
            respond_error(h, c, 400);
        } else {
            char *end = strstr(c->req, "\r\n\r\n");
            if (end == NULL) {
                if (c->req_len < REQ_MAX)
                    return true;
                respond_error(h, c, 431);
            } else {
                uint32_t used = (uint32_t)(end + 4 - c->req);
                end[2] = '\0';
                handle_request(h, c);
                memmove(c->req, c->req + used, c->req_len - used);
                c->req_len -= used;
                c->req[c->req_len] = '\0';
            }
        }
        if (!conn_write(c))
            return false;
    }
    return true;
}

/* Read request bytes and answer what is complete; false: close. */
static bool conn_read(httpd_t *h, conn_t *c)
{
    fs_ssize_t n = fs_recv(c->w.fd, c->req + c->req_len, REQ_MAX - c->req_len, FS_MSG_DONTWAIT);
    if (n == 0 || (n < 0 && errno != EAGAIN))
        return false;
    if (n < 0)
        return true;
    c->req_len += (uint32_t)n;
    c->req[c->req_len] = '\0';
    return conn_process(h, c);
}

/* Interest in a socket (fs_epoll_ctl op ADD or MOD) and its event's name. */
static int watch_set(httpd_t *h, int op, watch_t *w, uint32_t events)
{
    struct fs_epoll_event ev = {.events = events};
    ev.data.u64 = 0;
    ev.data.ptr = w;
    return fs_epoll_ctl(h->ep, op, w->fd, &ev);
}

static uint32_t conn_interest(const conn_t *c)
{
    return conn_busy(c) ? FS_EPOLLOUT : FS_EPOLLIN;
}

static void accept_all(httpd_t *h, int lfd)
{
    for (;;) {
        int fd = fs_accept(lfd, NULL, NULL);
        if (fd < 0)
            return;
        conn_t *c = h->nconns < h->max_clients ? calloc(1, sizeof *c) : NULL;
        if (c == NULL) {
            fs_close(fd);
            continue;
        }
        fs_fcntl(fd, FS_F_SETFL, FS_O_NONBLOCK);
        c->w.fd = fd;
        if (watch_set(h, FS_EPOLL_CTL_ADD, &c->w, FS_EPOLLIN) != 0) {
            fs_close(fd);
            free(c);
            continue;
        }
        c->index = h->nconns;
        h->conns[h->nconns++] = c;
    }
}

/* One connection's event: write what is pending or read, then follow its
 * state (IN while idle, OUT while an answer is pending). */
static void conn_event(httpd_t *h, conn_t *c, uint32_t events)
{
    uint32_t was = conn_interest(c);
    bool keep = (events & FS_EPOLLERR) == 0;
    if (keep)
        keep = conn_busy(c) ? conn_write(c) && conn_process(h, c) : conn_read(h, c);
    if (keep && conn_interest(c) != was)
        keep = watch_set(h, FS_EPOLL_CTL_MOD, &c->w, conn_interest(c)) == 0;
    if (!keep)
        conn_close(h, c);
}

static int usage(const char *bad)
{
    mk_log("usage: httpd [--port N] [--root DIR] [--max-clients N] [--quiet] (bad: '%s')", bad);
    return 2;
}

int httpd_main(int argc, char **argv)
{
    httpd_t h = {.port = 80, .max_clients = 256};
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--port") == 0 && i + 1 < argc) {
            if (app_parse_u32(argv[++i], 1, 65535, &h.port))
                return usage(argv[i]);
        } else if (strcmp(argv[i], "--max-clients") == 0 && i + 1 < argc) {
            if (app_parse_u32(argv[++i], 1, 4096, &h.max_clients))
                return usage(argv[i]);
        } else if (strcmp(argv[i], "--root") == 0 && i + 1 < argc) {
            if (strlen(argv[++i]) >= sizeof h.root || argv[i][0] == '\0')
                return usage(argv[i]);
            strcpy(h.root, argv[i]);
            size_t l = strlen(h.root);
            if (l > 1 && h.root[l - 1] == '/')
                h.root[l - 1] = '\0';
        } else if (strcmp(argv[i], "--quiet") == 0) {
            h.quiet = true;
        } else {
            return usage(argv[i]);
        }
    }
    h.lst[0] = (watch_t){.fd = app_listen(FS_AF_INET, FS_SOCK_STREAM, (uint16_t)h.port, 128), .listener = true};
    h.lst[1] = (watch_t){.fd = app_listen(FS_AF_INET6, FS_SOCK_STREAM, (uint16_t)h.port, 128), .listener = true};
    h.conns = calloc(h.max_clients, sizeof *h.conns);
    h.ep = fs_epoll_create1(0);
    bool ok = h.lst[0].fd >= 0 && h.conns != NULL && h.ep >= 0;
    for (int k = 0; k < 2 && ok; k++) /* IPv6 is used when the system has it */
        ok = h.lst[k].fd < 0 || watch_set(&h, FS_EPOLL_CTL_ADD, &h.lst[k], FS_EPOLLIN) == 0;
    if (!ok) {
        mk_log("cannot set up");
        return 1;
    }
    mk_log("serving http on port %u from %s", (unsigned)h.port, h.root[0] ? h.root : "(built-in page)");
    struct fs_epoll_event ev[HTTPD_EVENTS];
    for (;;) {
        int n = fs_epoll_wait(h.ep, ev, HTTPD_EVENTS, -1);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            mk_log("stopping: epoll_wait: %s (%llu requests served)", strerror(errno),
                   (unsigned long long)h.requests);
            return 0;
        }
        /* Each socket appears once per batch: closing a connection never
         * leaves a later event naming it. */
        for (int i = 0; i < n; i++) {
            watch_t *w = ev[i].data.ptr;
            if (w->listener)
                accept_all(&h, w->fd);
            else
                conn_event(&h, (conn_t *)w, ev[i].events);
        }
    }
}

/*
 * pong.c - demo server: one loop serves the `demo` interface (generated
 * dispatch: every request is decoded and validated before a handler runs)
 * and the doorbell notification bound to this thread.
 */
#include "demo.h"

#include <demo_server.h>
#include <ferry/mk.h>

typedef struct pong {
    const unsigned char *buf; /* read-only mapping of "buffer" */
    size_t size;
    uint64_t served, rejected, doorbells;
} pong_t;

static int32_t pong_checksum(void *ctx, const mk_recv_info_t *info, uint64_t offset, uint64_t length,
                             uint64_t *sum)
{
    pong_t *p = ctx;
    if (offset >= p->size || length > p->size - offset) {
        p->rejected++;
        mk_log("client %llu asked for bytes %llu..%llu of %zu: refused", (unsigned long long)info->badge,
               (unsigned long long)offset, (unsigned long long)(offset + length), p->size);
        return DEMO_ERANGE;
    }
    uint64_t s = 0;
    for (uint64_t i = 0; i < length; i++)
        s += p->buf[offset + i];
    *sum = s;
    p->served++;
    return 0;
}

static int32_t pong_stats(void *ctx, const mk_recv_info_t *info, uint64_t *served, uint64_t *rejected,
                          uint64_t *doorbells)
{
    (void)info;
    pong_t *p = ctx;
    *served = p->served;
    *rejected = p->rejected;
    *doorbells = p->doorbells;
    return 0;
}

static const demo_ops_t pong_ops = {.checksum = pong_checksum, .stats = pong_stats};

int demo_pong_main(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    mk_cap_t ep, shm, bell;
    if (mk_cap_lookup("pingpong", &ep) || mk_cap_lookup("buffer", &shm) || mk_cap_lookup("doorbell", &bell)) {
        mk_log("missing capabilities: the configuration must give pingpong, buffer, doorbell");
        return 1;
    }
    pong_t p = {0};
    mk_err_t e = mk_shm_map(shm, MK_RIGHT_READ, (void **)&p.buf, &p.size);
    if (e == MK_OK)
        e = mk_ntfn_bind(bell);
    if (e != MK_OK) {
        mk_log("cannot set up: %s", mk_strerror(e));
        return 1;
    }
    mk_log("serving the demo interface on pingpong; buffer mapped read-only (%zu bytes)", p.size);
    mk_msg_t m;
    mk_recv_info_t info;
    mk_cap_t reply = MK_CAP_NULL;
    for (;;) {
        e = mk_reply_recv(ep, reply, &m, &info, MK_FOREVER);
        reply = MK_CAP_NULL;
        if (e != MK_OK) {
            mk_log("stopping (%s) after %llu checksums and %llu doorbells", mk_strerror(e),
                   (unsigned long long)p.served, (unsigned long long)p.doorbells);
            return e == MK_EDEAD ? 0 : 1;
        }
        if (info.notification) {
            p.doorbells++;
            mk_log("doorbell rang (bits %#llx)", (unsigned long long)info.badge);
            continue;
        }
        reply = demo_dispatch(&pong_ops, &p, &info, &m);
    }
}

/*
 * pong.c - demo server: one loop serves calls and doorbell signals.
 * Validates every request (label, word count, offset and length inside the
 * read-only buffer) and answers bad ones with label MK_EINVAL.
 */
#include "demo.h"

#include <ferry/mk.h>

int demo_pong_main(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    mk_cap_t ep, shm, bell;
    if (mk_cap_lookup("pingpong", &ep) || mk_cap_lookup("buffer", &shm) || mk_cap_lookup("doorbell", &bell)) {
        mk_log("missing capabilities: the configuration must give pingpong, buffer, doorbell");
        return 1;
    }
    const unsigned char *buf;
    size_t size;
    mk_err_t e = mk_shm_map(shm, MK_RIGHT_READ, (void **)&buf, &size);
    if (e == MK_OK)
        e = mk_ntfn_bind(bell);
    if (e != MK_OK) {
        mk_log("cannot set up: %s", mk_strerror(e));
        return 1;
    }
    mk_log("serving pingpong; buffer mapped read-only (%zu bytes)", size);
    mk_msg_t m;
    mk_recv_info_t info;
    mk_cap_t reply = MK_CAP_NULL;
    unsigned long served = 0, bells = 0;
    for (;;) {
        e = mk_reply_recv(ep, reply, &m, &info, MK_FOREVER);
        reply = MK_CAP_NULL;
        if (e != MK_OK) {
            mk_log("stopping (%s) after %lu calls and %lu doorbells", mk_strerror(e), served, bells);
            return e == MK_EDEAD ? 0 : 1;
        }
        if (info.notification) {
            bells++;
            mk_log("doorbell rang (bits %#llx)", (unsigned long long)info.badge);
            continue;
        }
        reply = info.reply;
        if (m.label != DEMO_LABEL_CHECKSUM || m.words != 2 || m.mr[0] >= size || m.mr[1] > size - m.mr[0]) {
            mk_log("bad request from client %llu: label %u, %u words", (unsigned long long)info.badge, (unsigned)m.label,
                   (unsigned)m.words);
            m = (mk_msg_t){.label = (uint32_t)MK_EINVAL};
            continue;
        }
        uint64_t sum = 0;
        for (uint64_t i = 0; i < m.mr[1]; i++)
            sum += buf[m.mr[0] + i];
        served++;
        m = (mk_msg_t){.label = 0, .words = 1, .mr = {sum}};
    }
}

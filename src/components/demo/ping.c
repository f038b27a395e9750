/*
 * ping.c - demo client: shared memory + call + notification.
 * usage: ping [--count N] [--interval-ms MS] [--bell-every N]
 *   --count 0 (default) runs until the system stops.
 */
#include "demo.h"

#include <demo_client.h>
#include <ferry/mk.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int parse_uint(const char *s, unsigned long *out)
{
    char *end;
    if (s == NULL || *s == '\0')
        return -1;
    *out = strtoul(s, &end, 10);
    return *end == '\0' ? 0 : -1;
}

int demo_ping_main(int argc, char **argv)
{
    unsigned long count = 0, interval_ms = 1000, bell_every = 3;
    for (int i = 1; i < argc; i++) {
        unsigned long *dst = strcmp(argv[i], "--count") == 0         ? &count
                             : strcmp(argv[i], "--interval-ms") == 0 ? &interval_ms
                             : strcmp(argv[i], "--bell-every") == 0  ? &bell_every
                                                                     : NULL;
        if (dst == NULL || i + 1 >= argc || parse_uint(argv[++i], dst) != 0) {
            mk_log("usage: ping [--count N] [--interval-ms MS] [--bell-every N] (bad '%s')", argv[i]);
            return 2;
        }
    }
    mk_cap_t ep, shm, bell;
    if (mk_cap_lookup("pingpong", &ep) || mk_cap_lookup("buffer", &shm) || mk_cap_lookup("doorbell", &bell)) {
        mk_log("missing capabilities: the configuration must give pingpong, buffer, doorbell");
        return 1;
    }
    char *buf;
    size_t size;
    mk_err_t e = mk_shm_map(shm, MK_RIGHT_READ | MK_RIGHT_WRITE, (void **)&buf, &size);
    /* A range outside the buffer is refused by the server, not trusted. */
    uint64_t unused;
    if (e == MK_OK && demo_checksum(ep, 5000000000ull, size - 4, 8, &unused) != DEMO_ERANGE) {
        mk_log("pong accepted a range outside the buffer");
        return 1;
    }
    if (e != MK_OK) {
        mk_log("cannot map buffer: %s", mk_strerror(e));
        return 1;
    }
    mk_log("mapped buffer (%zu bytes, read-write); calling pong every %lu ms", size, interval_ms);
    for (unsigned long n = 1; count == 0 || n <= count; n++) {
        size_t off = (n * 64) % (size - 128);
        int len = snprintf(buf + off, 128, "hello #%lu from %s", n, mk_task_name());
        uint64_t sum = 0;
        for (int i = 0; i < len; i++)
            sum += (unsigned char)buf[off + i];
        uint64_t got = 0;
        uint64_t t0 = mk_time_ns();
        int32_t r = demo_checksum(ep, 5000000000ull, off, (uint64_t)len, &got);
        uint64_t t1 = mk_time_ns();
        if (r != 0) {
            mk_log("call failed: %s; stopping", r < 0 && r > -256 ? mk_strerror(r) : "protocol error");
            return r == MK_EDEAD ? 0 : 1;
        }
        mk_log("wrote \"%.*s\" at offset %zu; pong read it, checksum %llu (%s), round trip %.1f us", len,
               buf + off, off, (unsigned long long)got, got == sum ? "ok" : "MISMATCH",
               (double)(t1 - t0) / 1000.0);
        if (got != sum)
            return 1;
        if (bell_every && n % bell_every == 0) {
            mk_log("ringing the doorbell");
            mk_signal(bell);
        }
        if (count == 0 || n < count)
            mk_sleep_ns((uint64_t)interval_ms * 1000000ull);
    }
    uint64_t served, rejected, bells;
    if (demo_stats(ep, 5000000000ull, &served, &rejected, &bells) == 0)
        mk_log("done; pong served %llu checksums, rejected %llu, heard %llu doorbells",
               (unsigned long long)served, (unsigned long long)rejected, (unsigned long long)bells);
    return 0;
}

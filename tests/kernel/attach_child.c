/*
 * attach_child.c - a separate process that attaches to a running simulator
 * as the external task named on its command line (used by test_kernel.c).
 *
 * usage: attach_child SOCKET TASK MODE
 *   echo                  map "shm", write a pattern 3 times, call "ep" with its sum
 *   call-and-hang         call "ep" once, then make a second call that never returns
 *   serve-once-then-hang  answer one call on "ep" (mr[0] * 2), take the next, hang
 *   stale-cache           map "shm", write "AAAA", drop it, call "ep"; the reply
 *                         brings a new shm object: call back with its first bytes
 * Exit status: 0 success, 2 usage, 3 attach refused, 4.. a step failed.
 */
#include <ferry/mk.h>
#include <ferry/sim.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define MS 1000000ull

static int echo(void)
{
    mk_cap_t ep, shm;
    if (mk_cap_lookup("ep", &ep) || mk_cap_lookup("shm", &shm))
        return 4;
    uint8_t *p;
    size_t size;
    if (mk_shm_map(shm, MK_RIGHT_READ | MK_RIGHT_WRITE, (void **)&p, &size) != MK_OK)
        return 5;
    for (int round = 0; round < 3; round++) {
        mk_word_t sum = 0;
        for (size_t i = 0; i < size; i++) {
            p[i] = (uint8_t)(i * 13 + (size_t)round);
            sum += p[i];
        }
        mk_msg_t m = {.label = 1, .words = 1, .mr = {sum}};
        if (mk_call(ep, &m, 10000 * MS) != MK_OK)
            return 6;
        if (m.mr[0] != sum + 1)
            return 7;
    }
    return 0;
}

static int call_and_hang(void)
{
    mk_cap_t ep;
    if (mk_cap_lookup("ep", &ep))
        return 4;
    mk_msg_t m = {.label = 1};
    if (mk_call(ep, &m, 10000 * MS) != MK_OK)
        return 5;
    mk_call(ep, &m, MK_FOREVER); /* killed in here */
    return 6;
}

static int serve_once_then_hang(void)
{
    mk_cap_t ep;
    if (mk_cap_lookup("ep", &ep))
        return 4;
    mk_msg_t m;
    mk_recv_info_t info;
    if (mk_recv(ep, &m, &info, 10000 * MS) != MK_OK)
        return 5;
    m.mr[0] *= 2;
    if (mk_reply(info.reply, &m) != MK_OK)
        return 6;
    if (mk_recv(ep, &m, &info, 10000 * MS) != MK_OK)
        return 7;
    pause(); /* killed in here, holding the reply */
    return 8;
}

static int stale_cache(void)
{
    mk_cap_t ep, shm;
    if (mk_cap_lookup("ep", &ep) || mk_cap_lookup("shm", &shm))
        return 4;
    char *p;
    size_t size;
    if (mk_shm_map(shm, MK_RIGHT_READ | MK_RIGHT_WRITE, (void **)&p, &size) != MK_OK)
        return 5;
    memcpy(p, "AAAA", 4);
    mk_shm_unmap(p, size);
    if (mk_cap_delete(shm) != MK_OK)
        return 6;
    mk_msg_t m = {.label = 1};
    if (mk_call(ep, &m, 10000 * MS) != MK_OK || m.ncaps != 1)
        return 7;
    /* Read-write: the same kind of mapping as the cached one of X. */
    if (mk_shm_map(m.caps[0], MK_RIGHT_READ | MK_RIGHT_WRITE, (void **)&p, &size) != MK_OK)
        return 8;
    mk_msg_t r = {.label = 2, .words = 1};
    memcpy(&r.mr[0], p, 4);
    return mk_call(ep, &r, 10000 * MS) == MK_OK ? 0 : 9;
}

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: %s SOCKET TASK MODE\n", argv[0]);
        return 2;
    }
    mk_err_t e = sim_attach(argv[1], argv[2]);
    if (e != MK_OK) {
        fprintf(stderr, "attach_child: cannot attach as %s: %s\n", argv[2], mk_strerror(e));
        return 3;
    }
    if (strcmp(argv[3], "echo") == 0)
        return echo();
    if (strcmp(argv[3], "call-and-hang") == 0)
        return call_and_hang();
    if (strcmp(argv[3], "serve-once-then-hang") == 0)
        return serve_once_then_hang();
    if (strcmp(argv[3], "stale-cache") == 0)
        return stale_cache();
    return 2;
}

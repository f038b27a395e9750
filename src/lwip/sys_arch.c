/*
 * sys_arch.c - lwIP's NO_SYS port to the Ferry kernel interface.
 *
 * With NO_SYS=1 lwIP needs only a millisecond clock (sys_now) from the
 * system; time comes from mk_time_ns() in ferry/mk.h, so the same file serves
 * the simulator and the targets. Tests link their own mk_time_ns() to fake
 * the clock.
 *
 * Single-threaded like the rest of lwIP here: only the thread that drives
 * lwIP may call these.
 */
#include <stdint.h>

#include "ferry/mk.h"
#include "lwip/arch.h"
#include "lwip/sys.h"

/* Milliseconds since an arbitrary start; wraps every 49.7 days, which lwIP's
 * timeout code handles (it compares times with TIME_LESS_THAN). */
u32_t sys_now(void)
{
    return (u32_t)(mk_time_ns() / 1000000u);
}

/* xorshift32 seeded from the clock: cheap and good enough to spread local
 * ports and DHCP transaction ids. Not suitable for anything secret. */
static uint32_t rand_state;

uint32_t ferry_lwip_rand(void)
{
    uint32_t x = rand_state;

    if (x == 0) {
        uint64_t t = mk_time_ns();
        x = (uint32_t)(t ^ (t >> 32)) | 1u; /* xorshift must not start at 0 */
    }
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    rand_state = x;
    return x;
}

/*
 * sys_arch.c - lwIP's NO_SYS port to the Ferry kernel interface.
 *
 * With NO_SYS=1 lwIP needs only a millisecond clock (sys_now) from the
 * system; time comes from mk_time_ns() in ferry/mk.h, so the same file serves
 * the simulator and the targets. Tests link their own mk_time_ns() to fake
 * the clock.
 *
 * Single-threaded like the rest of lwIP here: only the thread that drives
 * lwIP may call these. That rule is checked: LWIP_ASSERT_CORE_LOCKED()
 * (lwipopts.h) calls ferry_lwip_assert_core_locked() below.
 */
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>

#include "ferry/mk.h"
#include "lwip/arch.h"
#include "lwip/debug.h"
#include "lwip/err.h"
#include "lwip/stats.h"
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

/* ---- Heap --------------------------------------------------------------------- */

/* lwIP's mem_malloc() with MEM_LIBC_MALLOC: the C library's allocator
 * within MEM_SIZE bytes. lwIP adds the block's size to MEM_STATS "used"
 * after a success and takes it off in mem_free(), so used + size is what
 * the heap would hold; over the budget this fails like a full heap would,
 * and callers (TCP, the socket service's starved list) handle that as they
 * always did. (lwIP leaves MEM_STATS "avail" at 0 with a C library heap;
 * netsrv reports MEM_SIZE there.) */
void *ferry_lwip_malloc(size_t size)
{
    if (size > MEM_SIZE || lwip_stats.mem.used > MEM_SIZE - size)
        return NULL;
    return malloc(size);
}

/* ---- Hooks -------------------------------------------------------------------- */

/* LWIP_HOOK_TCP_INPACKET_PCB: tcp_input() found the PCB of a segment (a
 * connection, a listener or a TIME-WAIT PCB) and has not processed it yet.
 * Whoever drives lwIP may watch (netsrv's socket service does); lwIP goes
 * on with the segment in any case. */
void (*ferry_lwip_tcp_inpacket_fn)(struct tcp_pcb *pcb);

int ferry_lwip_tcp_inpacket(struct tcp_pcb *pcb)
{
    if (ferry_lwip_tcp_inpacket_fn != NULL)
        ferry_lwip_tcp_inpacket_fn(pcb);
    return ERR_OK;
}

/* ---- The one lwIP thread ---------------------------------------------------- */

/* Each thread has its own copy of thread_marker, so its address names the
 * calling thread. This is plain C11 thread storage: pthreads in the
 * simulator, the thread pointer register (TPIDRURO) on ARMv7-A, which the
 * target backend sets per thread. core_owner is the marker address of the
 * thread that claimed lwIP; it never changes afterwards, because lwIP's
 * global state cannot be handed to another thread or initialised twice (in
 * the simulator, in-process tasks share one address space and so one lwIP). */
static _Thread_local char thread_marker;
static _Atomic(const char *) core_owner; /* NULL: unclaimed, check off */

/* The calling thread becomes lwIP's only thread. Returns 1 if it now owns
 * lwIP (or already did), 0 if another thread claimed it first. */
int ferry_lwip_core_claim(void)
{
    const char *expected = NULL;

    if (atomic_compare_exchange_strong(&core_owner, &expected, &thread_marker))
        return 1;
    return expected == &thread_marker;
}

/* LWIP_ASSERT_CORE_LOCKED(): the caller must be the owner. Relaxed load: the
 * owner always sees its own store; a stray thread that raced with the claim
 * and still sees NULL passes this once, which is the best a check without a
 * lock can do (the point is to catch the bug, not to make it safe). */
void ferry_lwip_assert_core_locked(void)
{
    const char *owner = atomic_load_explicit(&core_owner, memory_order_relaxed);

    LWIP_ASSERT("lwIP called from a thread other than the one that claimed it",
                owner == NULL || owner == &thread_marker);
    (void)owner; /* LWIP_NOASSERT builds */
}

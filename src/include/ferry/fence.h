/*
 * ferry/fence.h - the one header for memory barriers and shared-memory
 * atomics.
 *
 * Every barrier and every ordered (or deliberately unordered) access to
 * memory shared with another thread or task goes through this header, so
 * that a reader can find all of them with one grep. Rule for callers: every
 * use carries a comment naming what it orders and the operation on the other
 * side it pairs with.
 *
 * Built on C11 <stdatomic.h>; the compiler emits the right instructions for
 * the target (x86-64: plain loads/stores plus mfence for fence_full();
 * ARMv7-A: dmb ish). Shared words are declared `_Atomic uint32_t`, which is
 * lock-free and has the size and alignment of uint32_t on every supported
 * target (checked below), so it is fit for memory shared between tasks.
 *
 * Vocabulary:
 *  - release store: every load and store the thread did before it is visible
 *    to a thread that reads the stored value with an acquire load.
 *  - acquire load: nothing the thread does after it can be observed to
 *    happen before it.
 *  - full fence: additionally orders earlier stores before later loads (the
 *    "store buffer" case); needed for Dekker-style handshakes such as the
 *    ring signalling protocol (ferry/ring.h), which acquire/release alone do
 *    not give.
 *  - relaxed access: one single, untorn access, no ordering. Used to read a
 *    value from shared memory exactly once ("read once": the compiler may not
 *    re-read it, so a hostile peer cannot change it between check and use).
 */
#ifndef FERRY_FENCE_H
#define FERRY_FENCE_H

#include <stdatomic.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

_Static_assert(ATOMIC_INT_LOCK_FREE == 2, "shared-memory atomics must be lock-free");
_Static_assert(sizeof(_Atomic uint32_t) == sizeof(uint32_t), "_Atomic uint32_t size");
_Static_assert(_Alignof(_Atomic uint32_t) == _Alignof(uint32_t), "_Atomic uint32_t alignment");

/* Loads before the fence are ordered before loads and stores after it. */
static inline void fence_acquire(void)
{
    atomic_thread_fence(memory_order_acquire);
}

/* Loads and stores before the fence are ordered before stores after it. */
static inline void fence_release(void)
{
    atomic_thread_fence(memory_order_release);
}

/* Everything before the fence is ordered before everything after it,
 * including earlier stores before later loads. Two threads that each do
 * "store own flag; fence_full(); load other's flag" cannot both miss the
 * other's store. */
static inline void fence_full(void)
{
    atomic_thread_fence(memory_order_seq_cst);
}

/* Acquire load: pairs with a fence_store_release_u32() of the value read. */
static inline uint32_t fence_load_acquire_u32(const _Atomic uint32_t *p)
{
    return atomic_load_explicit(p, memory_order_acquire);
}

/* Release store: pairs with a fence_load_acquire_u32() that reads `v`. */
static inline void fence_store_release_u32(_Atomic uint32_t *p, uint32_t v)
{
    atomic_store_explicit(p, v, memory_order_release);
}

/* Read once, no ordering (ordering, if needed, comes from a fence next to
 * it). The value is fetched exactly once. */
static inline uint32_t fence_load_relaxed_u32(const _Atomic uint32_t *p)
{
    return atomic_load_explicit(p, memory_order_relaxed);
}

/* Write once, no ordering. */
static inline void fence_store_relaxed_u32(_Atomic uint32_t *p, uint32_t v)
{
    atomic_store_explicit(p, v, memory_order_relaxed);
}

#ifdef __cplusplus
}
#endif
#endif /* FERRY_FENCE_H */

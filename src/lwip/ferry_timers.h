/*
 * ferry_timers.h - what Ferry's timer implementation for lwIP (timers.c)
 * adds to lwIP's own timer API (lwip/timeouts.h: sys_timeout,
 * sys_check_timeouts, sys_timeouts_sleeptime, ...).
 */
#ifndef FERRY_LWIP_TIMERS_H
#define FERRY_LWIP_TIMERS_H

#include "lwip/arch.h"

/* A cyclic timer whose only work is ageing (ARP entries, ND6 lifetimes)
 * runs at multiples of this many milliseconds of sys_now(), catching up the
 * ticks of the whole period at once. Others who wake up while idle can
 * use the same grid to share the wake-up (ferry_timers_grid_ms). */
#define FERRY_TIMERS_AGE_PERIOD_MS 10000u

/* Milliseconds from `now` (sys_now()) to the first multiple of
 * FERRY_TIMERS_AGE_PERIOD_MS that is at least `min_ms` away. */
u32_t ferry_timers_grid_ms(u32_t now, u32_t min_ms);

/* Which of lwIP's cyclic timers (bit i: lwip_cyclic_timers[i]) are running
 * now: at their interval or ageing. For tests and diagnostics. */
u32_t ferry_timers_running(void);

#endif /* FERRY_LWIP_TIMERS_H */

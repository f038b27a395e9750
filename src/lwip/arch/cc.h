/*
 * arch/cc.h - compiler and platform glue for lwIP (included by lwip/arch.h).
 *
 * Identical for the host simulator and the ARM targets: the C library
 * (glibc on the host, newlib on arm-none-eabi) provides <stdint.h>,
 * <inttypes.h>, <stdio.h> and friends, so lwIP's defaults for types and
 * byte order (GCC's __BYTE_ORDER__) are used as they are.
 */
#ifndef FERRY_LWIP_ARCH_CC_H
#define FERRY_LWIP_ARCH_CC_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

/* Diagnostics (LWIP_DEBUGF, stats_display()): x is a parenthesised printf
 * argument list. They go to the C library's stdout, which the backend
 * connects to the task's log. */
#define LWIP_PLATFORM_DIAG(x) \
    do {                      \
        printf x;             \
    } while (0)

/* A failed lwIP assertion is an internal invariant broken: report and end
 * the task (abort() is a fault; init's restart policy decides what next). */
#define LWIP_PLATFORM_ASSERT(x)                                                            \
    do {                                                                                   \
        fprintf(stderr, "lwIP assertion \"%s\" failed at %s:%d\n", x, __FILE__, __LINE__); \
        fflush(NULL);                                                                      \
        abort();                                                                           \
    } while (0)

/* Pseudo-random numbers for LWIP_RAND() (lwipopts.h); sys_arch.c. */
uint32_t ferry_lwip_rand(void);

#endif /* FERRY_LWIP_ARCH_CC_H */

/*
 * lwip-pools - the sizes of lwIP's memory pools as Ferry builds lwIP (the
 * same library and lwipopts.h as netsrv), as one JSON object on stdout:
 *   {"TCP_PCB": {"size": 216, "num": 2112}, ...}
 * size is the bytes one element takes in its pool, num the elements the
 * pool has. netsrv.idl reports how many elements of each pool are in use
 * but not their size; the benchmark (ferry-benchmark) multiplies the two to
 * get the bytes of lwIP's pools a connection uses. Names are those of
 * netsrv.idl's get_mem_stats (lwIP's MEMP_STATS names).
 */
#include <ferry/mk.h>
#include <lwip/memp.h>
#include <lwip/priv/memp_priv.h>
#include <lwip/stats.h>
#include <stdio.h>
#include <time.h>

/* lwIP's port takes its clock from here (nothing runs: only constants are read). */
uint64_t mk_time_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000000000ull + (uint64_t)t.tv_nsec;
}

int main(void)
{
    printf("{");
    for (int i = 0; i < MEMP_MAX; i++) {
        const struct memp_desc *d = memp_pools[i];
        printf("%s\"%s\": {\"size\": %u, \"num\": %u}", i ? ", " : "", d->desc, (unsigned)d->size,
               (unsigned)d->num);
    }
    printf("}\n");
    return 0;
}

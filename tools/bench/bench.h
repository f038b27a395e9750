/* bench.h - shared pieces of ferry-bench. */
#ifndef FERRY_BENCH_H
#define FERRY_BENCH_H

#include <pthread.h>
#include <stdbool.h>

typedef struct bench_stat {
    double median, min, max;
} bench_stat_t;

typedef void (*bench_row_fn)(const char *test, const char *unit, bench_stat_t ferry,
                             const char *base_name, bench_stat_t base, bool lower_better);

extern int bench_reps;
extern long bench_iters;

int bench_ncpus(void);
void bench_pin(int n);
/* Run fn `bench_reps` times; each call returns one figure. */
bench_stat_t bench_run(double (*fn)(void *), void *arg);

/* Nanoseconds to microseconds. */
static inline bench_stat_t bench_us(bench_stat_t s)
{
    return (bench_stat_t){s.median / 1000.0, s.min / 1000.0, s.max / 1000.0};
}

/* Ring throughput rows (rings.c). */
void bench_rings(bench_row_fn row, int cross);

#endif

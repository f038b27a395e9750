/*
 * rings.c - ring throughput: descriptors per second through one direction
 * of a NIC-style queue pair (producer takes FREE buffers, fills, enqueues on
 * ACTIVE; consumer dequeues ACTIVE, returns to FREE), each side sleeping on
 * its notification by the ring's signalling protocol, with batch 1 and 32.
 * Baseline: a pipe moving the same 8-byte descriptors in the same batches.
 */
#include "bench.h"

#include <ferry/mk.h>
#include <ferry/ring.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define NBUFS 256u
#define BUFSZ 2048u

typedef struct rb {
    int prod_cpu, cons_cpu;
    uint32_t batch;
    long total;
    ring_queue_t *freeq, *activeq;
    uint8_t *region;
    ring_region_t reg;
    mk_cap_t prod_ntfn, cons_ntfn; /* each side waits on its own */
    int pfd[2];
} rb_t;

/* Wait for work on `c` by the protocol: ask, re-check, sleep. */
static void rb_sleep(ring_cons_t *c, mk_cap_t ntfn)
{
    mk_word_t bits;
    if (ring_cons_prepare_sleep(c))
        mk_wait(ntfn, &bits, MK_FOREVER);
}

static void rb_consumer(void *p)
{
    rb_t *r = p;
    bench_pin(r->cons_cpu);
    ring_cons_t act;
    ring_prod_t fre;
    ring_cons_attach(&act, r->activeq, NBUFS, &r->reg, 0);
    ring_prod_attach(&fre, r->freeq, NBUFS);
    long got = 0;
    while (got < r->total) {
        ring_desc_t d;
        uint32_t n = 0;
        while (n < r->batch && ring_cons_dequeue(&act, &d) == RING_OK) {
            ((volatile uint8_t *)r->region)[d.offset]; /* touch the data */
            d.len = 0;
            ring_prod_enqueue(&fre, d);
            n++;
        }
        if (n == 0) {
            rb_sleep(&act, r->cons_ntfn);
            continue;
        }
        got += n;
        ring_cons_publish(&act);
        ring_prod_publish(&fre);
        if (ring_prod_need_signal(&fre))
            mk_signal(r->prod_ntfn);
    }
}

static double rb_once(void *p)
{
    rb_t *r = p;
    ring_queue_init(r->freeq, NBUFS, 0);
    ring_queue_init(r->activeq, NBUFS, 0);
    ring_prod_t filler;
    ring_prod_attach(&filler, r->freeq, NBUFS);
    ring_prod_fill(&filler, &r->reg);
    mk_word_t bits;
    mk_poll(r->prod_ntfn, &bits);
    mk_poll(r->cons_ntfn, &bits);
    ring_cons_t fre;
    ring_prod_t act;
    ring_cons_attach(&fre, r->freeq, NBUFS, &r->reg, RING_F_ZERO_LEN_OK);
    ring_prod_attach(&act, r->activeq, NBUFS);
    uint32_t tid;
    uint64_t t0 = mk_time_ns();
    mk_thread_create(rb_consumer, r, &tid);
    long sent = 0;
    while (sent < r->total) {
        ring_desc_t d;
        uint32_t n = 0;
        while (n < r->batch && sent + n < r->total && ring_cons_dequeue(&fre, &d) == RING_OK) {
            r->region[d.offset] = (uint8_t)sent;
            d.len = 64;
            ring_prod_enqueue(&act, d);
            n++;
        }
        if (n == 0) {
            rb_sleep(&fre, r->prod_ntfn);
            continue;
        }
        sent += n;
        ring_cons_publish(&fre);
        ring_prod_publish(&act);
        if (ring_prod_need_signal(&act))
            mk_signal(r->cons_ntfn);
    }
    mk_thread_join(tid);
    return (double)r->total / ((double)(mk_time_ns() - t0) / 1e9);
}

static void *pipe_reader(void *p)
{
    rb_t *r = p;
    bench_pin(r->cons_cpu);
    ring_desc_t d[32];
    long got = 0;
    while (got < r->total) {
        ssize_t n = read(r->pfd[0], d, sizeof(ring_desc_t) * r->batch);
        if (n <= 0)
            break;
        got += n / (ssize_t)sizeof(ring_desc_t);
    }
    return NULL;
}

static double pipe_once(void *p)
{
    rb_t *r = p;
    if (pipe(r->pfd) != 0)
        exit(1);
    pthread_t t;
    uint64_t t0 = mk_time_ns();
    pthread_create(&t, NULL, pipe_reader, r);
    ring_desc_t d[32];
    memset(d, 0, sizeof d);
    for (long sent = 0; sent < r->total; sent += r->batch)
        if (write(r->pfd[1], d, sizeof(ring_desc_t) * r->batch) < 0)
            exit(1);
    pthread_join(t, NULL);
    double rate = (double)r->total / ((double)(mk_time_ns() - t0) / 1e9);
    close(r->pfd[0]);
    close(r->pfd[1]);
    return rate;
}

void bench_rings(bench_row_fn row, int cross)
{
    size_t qb = ring_queue_bytes(NBUFS);
    mk_cap_t shm;
    uint8_t *mem;
    size_t size;
    if (mk_shm_create(2 * qb + NBUFS * BUFSZ, &shm) != MK_OK ||
        mk_shm_map(shm, MK_RIGHT_READ | MK_RIGHT_WRITE, (void **)&mem, &size) != MK_OK) {
        fprintf(stderr, "ferry-bench: cannot set up rings\n");
        return;
    }
    rb_t r = {.prod_cpu = 0, .cons_cpu = cross ? 1 : 0};
    r.freeq = (ring_queue_t *)mem;
    r.activeq = (ring_queue_t *)(mem + qb);
    r.region = mem + 2 * qb;
    r.reg = (ring_region_t){.size = NBUFS * BUFSZ, .buf_size = BUFSZ, .align = 64};
    mk_ntfn_create(&r.prod_ntfn);
    mk_ntfn_create(&r.cons_ntfn);
    bench_pin(0);
    static const uint32_t batches[] = {1, 32};
    for (int i = 0; i < 2; i++) {
        r.batch = batches[i];
        r.total = bench_iters * (r.batch == 1 ? 5 : 25);
        bench_stat_t f = bench_run(rb_once, &r);
        bench_stat_t b = bench_run(pipe_once, &r);
        f = (bench_stat_t){f.median / 1e6, f.min / 1e6, f.max / 1e6};
        b = (bench_stat_t){b.median / 1e6, b.min / 1e6, b.max / 1e6};
        /* min is the slowest run for a rate: report the worst as "min". */
        char name[64];
        snprintf(name, sizeof name, "Ring, Mdesc/s, batch %u, %s", r.batch, cross ? "cross core" : "same core");
        row(name, "Mdesc/s", f, "pipe, same batches", b, false);
    }
    mk_shm_unmap(mem, size);
    mk_cap_delete(shm);
    mk_cap_delete(r.prod_ntfn);
    mk_cap_delete(r.cons_ntfn);
}

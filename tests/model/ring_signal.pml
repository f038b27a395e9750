/*
 * ring_signal.pml - a Promela model of the ring signalling protocol
 * (ferry/ring.h, src/lib/ring/ring.c), checked by spin in the test suite
 * (tests/model/run_spin.sh).
 *
 * What it proves (for every interleaving of the two parties):
 *  - no lost wakeup: a party never sleeps forever while its input queue
 *    holds descriptors (LTL no_lost_wakeup, and no invalid end state: a
 *    party stuck asleep at the end is a deadlock spin reports);
 *  - everything sent is delivered, in order, and both parties finish
 *    (LTL delivered; the drainer asserts each buffer's contents);
 *  - queue invariants: 0 <= tail - head <= capacity at all times (monitor),
 *    an honest enqueue never finds its queue full when capacity >= buffers
 *    (assert), and every buffer is in exactly one place (owner[] asserts).
 *
 * The model: one direction of a session as in the C code. NBUF buffers
 * cycle FREE -> filler -> ACTIVE -> drainer -> FREE; the filler is consumer
 * of FREE and producer of ACTIVE, the drainer the opposite. Each queue's
 * consumer sleeps on its own notification (a sticky bit, like mk_signal /
 * mk_wait). Producers batch nondeterministically (publish now or later, but
 * always before sleeping and at the end). The steps mirror ring.c:
 *   dequeue         = ring_cons_dequeue (tail re-read only when the cached
 *                     one is used up)
 *   enqueue         = ring_prod_enqueue (head re-read only when full)
 *   flush           = ring_cons_publish(in) ; ring_prod_publish(out) ;
 *                     ring_prod_need_signal(out) -> signal
 *   prepare_sleep   = ring_cons_prepare_sleep
 * Spin explores sequentially consistent interleavings; the full fences B5
 * and B6 are what make the hardware behave so for the store-then-load pairs
 * that matter. BUG_NO_FENCE models their absence by letting each load
 * overtake the preceding store (the store-buffer reordering that x86 and
 * ARM both perform), which is exactly what the fences forbid.
 *
 * Deliberately broken variants (spin must find a counterexample for each;
 * the test script checks that it does):
 *   -DBUG_NO_RECHECK  the consumer arms signal_wanted and sleeps without
 *                     re-checking the queue;
 *   -DBUG_NO_FENCE    no full fence between the flag store and the tail
 *                     re-read (consumer) / the tail store and the flag read
 *                     (producer);
 *   -DBUG_LATE_HEAD   a party passes buffers on (publishes the other queue)
 *                     before handing back the slots it consumed: the
 *                     "cannot overflow" argument breaks and an enqueue
 *                     finds its queue full.
 */

/* Sizes (override with spin -D...): */
#ifndef NBUF
#define NBUF 2 /* buffers in the region */
#endif
#ifndef CAP
#define CAP 2 /* queue capacity: >= NBUF, the no-overflow rule */
#endif
#ifndef N
#define N 5 /* descriptors the filler sends (> 2 * NBUF: indices go round) */
#endif

#define FREEQ 0
#define ACTQ 1

/* where a buffer is */
#define IN_FREE 0
#define AT_FILLER 1
#define IN_ACTIVE 2
#define AT_DRAINER 3

/* Shared memory */
byte tail[2];        /* per queue: written by its producer only */
byte head[2];        /* per queue: written by its consumer only */
bit want[2];         /* per queue: signal_wanted */
byte slot[2 * CAP];  /* queue q's slots are slot[q * CAP + i] */
byte data[NBUF];     /* buffer contents: the sequence number */
/* Kernel */
bit ntfn[2];         /* notification of queue q's consumer: pending bit */
/* Bookkeeping for the properties (not part of the protocol) */
byte owner[NBUF];
byte done;

/* ring_cons_dequeue */
inline dequeue(q, myhead, seen, b, got)
{
    if
    :: myhead == seen ->
        seen = tail[q]; /* B2 acquire */
        assert(seen - myhead <= CAP)
    :: else -> skip
    fi;
    if
    :: myhead != seen ->
        b = slot[q * CAP + myhead % CAP];
        myhead++;
        got = true
    :: else -> got = false
    fi
}

/* ring_prod_enqueue */
inline enqueue(q, mytail, hseen, b)
{
    if
    :: mytail - hseen == CAP -> hseen = head[q] /* B4 acquire */
    :: else -> skip
    fi;
    assert(mytail - hseen < CAP); /* never full: capacity >= buffers */
    slot[q * CAP + mytail % CAP] = b;
    mytail++
}

/* ring_cons_publish(in); ring_prod_publish(out); need_signal -> signal */
inline flush(in, myhead, out, mytail, w)
{
#ifdef BUG_LATE_HEAD
    tail[out] = mytail;
    head[in] = myhead;
    w = want[out];
#else
    head[in] = myhead; /* B3 release: slots handed back first */
#ifdef BUG_NO_FENCE
    if
    :: tail[out] = mytail; w = want[out]
    :: w = want[out]; tail[out] = mytail /* flag read overtakes the tail store */
    fi;
#else
    tail[out] = mytail; /* B1 release */
    /* B5 full fence */
    w = want[out];
#endif
#endif
    if
    :: w ->
        want[out] = 0;
        ntfn[out] = 1 /* the caller's mk_signal() */
    :: else -> skip
    fi
}

/* ring_cons_prepare_sleep */
inline prepare_sleep(q, myhead, seen, sleep_ok)
{
    if
    :: myhead != seen -> sleep_ok = false
    :: else ->
#if defined(BUG_NO_RECHECK)
        want[q] = 1;
#elif defined(BUG_NO_FENCE)
        if
        :: want[q] = 1; seen = tail[q]
        :: seen = tail[q]; want[q] = 1 /* re-read overtakes the flag store */
        fi;
#else
        want[q] = 1;
        /* B6 full fence */
        seen = tail[q]; /* B2 acquire */
#endif
        if
        :: seen == myhead -> sleep_ok = true
        :: else ->
            want[q] = 0; /* staying awake: withdraw */
            sleep_ok = false
        fi
    fi
}

/* Consumer of FREE, producer of ACTIVE (a NIC driver on RX). */
proctype filler()
{
    byte fhead = 0, fseen = 0; /* as consumer of FREE */
    byte atail = 0, ahseen = 0; /* as producer of ACTIVE */
    byte seq = 0, b;
    bool got, w, sleep_ok;

    do
    :: seq == N -> break
    :: else ->
        dequeue(FREEQ, fhead, fseen, b, got);
        if
        :: got ->
            assert(owner[b] == IN_FREE);
            owner[b] = AT_FILLER;
            data[b] = seq;
            seq++;
            owner[b] = IN_ACTIVE;
            enqueue(ACTQ, atail, ahseen, b);
            if
            :: flush(FREEQ, fhead, ACTQ, atail, w) /* publish now */
            :: seq < N -> skip /* or batch with the next */
            fi
        :: else ->
            flush(FREEQ, fhead, ACTQ, atail, w); /* publish before sleeping */
            prepare_sleep(FREEQ, fhead, fseen, sleep_ok);
            if
            :: sleep_ok ->
sleep:          atomic { ntfn[FREEQ] == 1 -> ntfn[FREEQ] = 0 } /* mk_wait */
            :: else -> skip
            fi
        fi
    od;
    flush(FREEQ, fhead, ACTQ, atail, w);
    done++
}

/* Consumer of ACTIVE, producer of FREE (netsrv on RX; owns the region). */
proctype drainer()
{
    byte ahead = 0, aseen = 0; /* as consumer of ACTIVE */
    byte ftail = NBUF, fhseen = 0; /* as producer of FREE (filled at set-up) */
    byte expect = 0, b;
    bool got, w, sleep_ok;

    do
    :: expect == N -> break
    :: else ->
        dequeue(ACTQ, ahead, aseen, b, got);
        if
        :: got ->
            assert(owner[b] == IN_ACTIVE);
            owner[b] = AT_DRAINER;
            assert(data[b] == expect); /* in order, contents visible */
            expect++;
            owner[b] = IN_FREE;
            enqueue(FREEQ, ftail, fhseen, b);
            if
            :: flush(ACTQ, ahead, FREEQ, ftail, w)
            :: expect < N -> skip
            fi
        :: else ->
            flush(ACTQ, ahead, FREEQ, ftail, w);
            prepare_sleep(ACTQ, ahead, aseen, sleep_ok);
            if
            :: sleep_ok ->
sleep:          atomic { ntfn[ACTQ] == 1 -> ntfn[ACTQ] = 0 }
            :: else -> skip
            fi
        fi
    od;
    flush(ACTQ, ahead, FREEQ, ftail, w);
    done++
}

/* Queue invariant, checked in every reachable state. */
proctype monitor()
{
end:
    atomic {
        !(tail[FREEQ] >= head[FREEQ] && tail[FREEQ] - head[FREEQ] <= CAP &&
          tail[ACTQ] >= head[ACTQ] && tail[ACTQ] - head[ACTQ] <= CAP) ->
        assert(false)
    }
}

init
{
    atomic {
        /* ring_prod_fill: the region's owner puts every buffer on FREE */
        byte i = 0;
        do
        :: i < NBUF ->
            slot[FREEQ * CAP + i] = i;
            owner[i] = IN_FREE;
            i++
        :: else -> break
        od;
        tail[FREEQ] = NBUF;
        run monitor();
        run filler();
        run drainer()
    }
}

/* Every descriptor is delivered and both parties finish. */
ltl delivered { <> (done == 2) }

/* A party asleep while its input queue holds descriptors wakes up. */
ltl no_lost_wakeup {
    [] (((filler@sleep && tail[FREEQ] != head[FREEQ]) -> <> !(filler@sleep)) &&
        ((drainer@sleep && tail[ACTQ] != head[ACTQ]) -> <> !(drainer@sleep)))
}

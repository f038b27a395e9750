/*
 * ring.c - SPSC descriptor queues in shared memory (see ferry/ring.h for the
 * ownership invariant, the layout and the list of barriers B1..B6).
 *
 * Portable: no libc beyond freestanding headers, no kernel calls.
 */
#include <ferry/fence.h>
#include <ferry/ring.h>

const char *ring_strerror(ring_err_t err)
{
    switch (err) {
    case RING_OK:
        return "ok";
    case RING_EINVAL:
        return "invalid argument";
    case RING_EFULL:
        return "queue full";
    case RING_EEMPTY:
        return "queue empty";
    case RING_EINDEX:
        return "peer index out of range";
    case RING_EZERO:
        return "descriptor length is zero";
    case RING_ELENGTH:
        return "descriptor length exceeds buffer size";
    case RING_EOVERFLOW:
        return "descriptor offset + length overflows";
    case RING_EALIGN:
        return "descriptor offset misaligned";
    case RING_EBOUNDS:
        return "descriptor buffer outside region";
    }
    return "unknown ring error";
}

/* Counters are indexed by -err; anything out of range is not counted. */
static void count_error(uint32_t *errors, ring_err_t err)
{
    if (err < 0 && err > -RING_NERR)
        errors[-err]++;
}

static uint32_t error_count(const uint32_t *errors, ring_err_t err)
{
    return (err < 0 && err > -RING_NERR) ? errors[-err] : 0;
}

static bool queue_ptr_ok(const ring_queue_t *q)
{
    return q != NULL && ((uintptr_t)q & (RING_CACHELINE - 1)) == 0;
}

ring_err_t ring_queue_init(ring_queue_t *q, uint32_t capacity, uint32_t start)
{
    if (!queue_ptr_ok(q) || !ring_capacity_ok(capacity))
        return RING_EINVAL;
    /* Unordered initialising stores; the release store of tail below
     * orders all of them. */
    for (uint32_t i = 0; i < capacity; i++) {
        fence_store_relaxed_u32(&q->slot[i].offset, 0);
        fence_store_relaxed_u32(&q->slot[i].len, 0);
    }
    fence_store_relaxed_u32(&q->signal_wanted, 0);
    fence_store_relaxed_u32(&q->head, start);
    /* Orders the slot, flag and head initialisation before the tail store:
     * a party that acquires this tail (B2/attach) sees an initialised queue.
     * Hand-over to the peers happens later through the kernel (capability
     * transfer), which orders everything anyway. */
    fence_store_release_u32(&q->tail, start);
    return RING_OK;
}

/* ---- Regions and descriptors ------------------------------------------------ */

ring_err_t ring_region_check(const ring_region_t *r)
{
    if (r == NULL || r->size == 0 || r->buf_size == 0 || r->buf_size > r->size)
        return RING_EINVAL;
    if (r->align == 0 || (r->align & (r->align - 1)) != 0)
        return RING_EINVAL;
    return RING_OK;
}

ring_err_t ring_desc_check(const ring_region_t *r, ring_desc_t d, uint32_t flags)
{
    if (d.len == 0 && !(flags & RING_F_ZERO_LEN_OK))
        return RING_EZERO;
    if (d.len > r->buf_size)
        return RING_ELENGTH;
    if (d.offset > UINT32_MAX - d.len) /* offset + len would wrap */
        return RING_EOVERFLOW;
    if ((d.offset & (r->align - 1)) != 0)
        return RING_EALIGN;
    /* buf_size <= size (ring_region_check), so the subtraction cannot wrap;
     * offset <= size - buf_size means offset + buf_size <= size, hence
     * also offset + len <= size. */
    if (d.offset > r->size - r->buf_size)
        return RING_EBOUNDS;
    return RING_OK;
}

/* ---- Producer ------------------------------------------------------------- */

ring_err_t ring_prod_attach(ring_prod_t *p, ring_queue_t *q, uint32_t capacity)
{
    if (p == NULL || !queue_ptr_ok(q) || !ring_capacity_ok(capacity))
        return RING_EINVAL;
    *p = (ring_prod_t){.q = q, .mask = capacity - 1};
    /* Our own index: read once here, never again (we own it from now on). */
    p->tail = fence_load_relaxed_u32(&q->tail);
    /* B4: orders the head read before any slot write; pairs with B3. */
    p->head_seen = fence_load_acquire_u32(&q->head);
    if (p->tail - p->head_seen > capacity) {
        count_error(p->errors, RING_EINDEX);
        return RING_EINDEX;
    }
    return RING_OK;
}

/* Re-read and validate the consumer's head. */
static ring_err_t prod_refresh_head(ring_prod_t *p)
{
    /* B4: orders the head read before our slot writes that follow (we must
     * not overwrite a slot the consumer still reads); pairs with B3. */
    uint32_t head = fence_load_acquire_u32(&p->q->head);
    if (p->tail - head > p->mask + 1) {
        count_error(p->errors, RING_EINDEX);
        return RING_EINDEX;
    }
    p->head_seen = head;
    return RING_OK;
}

ring_err_t ring_prod_space(ring_prod_t *p, uint32_t *space)
{
    ring_err_t err = prod_refresh_head(p);
    *space = err == RING_OK ? p->mask + 1 - (p->tail - p->head_seen) : 0;
    return err;
}

ring_err_t ring_prod_enqueue(ring_prod_t *p, ring_desc_t d)
{
    if (p->tail - p->head_seen == p->mask + 1) {
        ring_err_t err = prod_refresh_head(p);
        if (err != RING_OK)
            return err;
        if (p->tail - p->head_seen == p->mask + 1)
            return RING_EFULL;
    }
    ring_slot_t *s = &p->q->slot[p->tail & p->mask];
    /* No ordering needed here: B1 (publish) orders these before the tail. */
    fence_store_relaxed_u32(&s->offset, d.offset);
    fence_store_relaxed_u32(&s->len, d.len);
    p->tail++;
    return RING_OK;
}

void ring_prod_publish(ring_prod_t *p)
{
    /* B1: orders our slot writes (and the buffer contents the caller wrote)
     * before the new tail; pairs with B2 in the consumer. */
    fence_store_release_u32(&p->q->tail, p->tail);
}

bool ring_prod_need_signal(ring_prod_t *p)
{
    /* B5: orders the tail store of ring_prod_publish() before the flag read
     * below; pairs with B6 in ring_cons_prepare_sleep(). Without it the
     * store could sit in the store buffer while we read a stale flag, and
     * the consumer could meanwhile read the stale tail: both miss. */
    fence_full();
    /* Relaxed: B5 above already orders this read after the tail store. */
    if (fence_load_relaxed_u32(&p->q->signal_wanted) == 0)
        return false;
    /* Clear before the caller signals: the consumer re-arms before its
     * next sleep, and a notification stays pending until taken, so a
     * consumer that re-armed in between still gets this signal. */
    fence_store_relaxed_u32(&p->q->signal_wanted, 0);
    p->signals++;
    return true;
}

ring_err_t ring_prod_fill(ring_prod_t *p, const ring_region_t *r)
{
    if (ring_region_check(r) != RING_OK || (r->buf_size & (r->align - 1)) != 0)
        return RING_EINVAL;
    uint32_t n = ring_region_nbufs(r);
    uint32_t space;
    ring_err_t err = ring_prod_space(p, &space);
    if (err != RING_OK)
        return err;
    if (space < n)
        return RING_EFULL;
    for (uint32_t i = 0; i < n; i++) {
        err = ring_prod_enqueue(p, (ring_desc_t){.offset = i * r->buf_size, .len = 0});
        if (err != RING_OK)
            return err;
    }
    ring_prod_publish(p);
    return RING_OK;
}

uint32_t ring_prod_errors(const ring_prod_t *p, ring_err_t err)
{
    return error_count(p->errors, err);
}

/* ---- Consumer ------------------------------------------------------------- */

ring_err_t ring_cons_attach(ring_cons_t *c, ring_queue_t *q, uint32_t capacity,
                            const ring_region_t *region, uint32_t flags)
{
    if (c == NULL || !queue_ptr_ok(q) || !ring_capacity_ok(capacity) ||
        ring_region_check(region) != RING_OK || (flags & ~RING_F_ZERO_LEN_OK) != 0)
        return RING_EINVAL;
    *c = (ring_cons_t){.q = q, .mask = capacity - 1, .flags = flags, .region = *region};
    /* Our own index: read once here, never again (we own it from now on). */
    c->head = fence_load_relaxed_u32(&q->head);
    c->tail_seen = c->head;
    return RING_OK;
}

/* Re-read and validate the producer's tail. */
static ring_err_t cons_refresh_tail(ring_cons_t *c)
{
    /* B2: orders the tail read before our reads of the slots and buffers
     * it covers; pairs with B1 in ring_prod_publish(). */
    uint32_t tail = fence_load_acquire_u32(&c->q->tail);
    if (tail - c->head > c->mask + 1) {
        count_error(c->errors, RING_EINDEX);
        return RING_EINDEX;
    }
    c->tail_seen = tail;
    return RING_OK;
}

ring_err_t ring_cons_avail(ring_cons_t *c, uint32_t *n)
{
    ring_err_t err = cons_refresh_tail(c);
    *n = err == RING_OK ? c->tail_seen - c->head : 0;
    return err;
}

ring_err_t ring_cons_dequeue(ring_cons_t *c, ring_desc_t *out)
{
    if (c->head == c->tail_seen) {
        ring_err_t err = cons_refresh_tail(c);
        if (err != RING_OK)
            return err;
        if (c->head == c->tail_seen)
            return RING_EEMPTY;
    }
    const ring_slot_t *s = &c->q->slot[c->head & c->mask];
    /* Copy out once (no ordering needed: B2 already ordered the tail read
     * before these); validate only the private copy from here on. */
    ring_desc_t d = {
        .offset = fence_load_relaxed_u32(&s->offset),
        .len = fence_load_relaxed_u32(&s->len),
    };
    c->head++;
    ring_err_t err = ring_desc_check(&c->region, d, c->flags);
    if (err != RING_OK) {
        count_error(c->errors, err);
        return err;
    }
    *out = d;
    return RING_OK;
}

void ring_cons_publish(ring_cons_t *c)
{
    /* B3: orders our slot reads (ring_cons_dequeue) before the head that
     * lets the producer overwrite those slots; pairs with B4. */
    fence_store_release_u32(&c->q->head, c->head);
}

bool ring_cons_prepare_sleep(ring_cons_t *c)
{
    if (c->head != c->tail_seen)
        return false; /* still holding validated, undequeued descriptors */
    /* Relaxed: B6 below orders this store before the tail re-read. */
    fence_store_relaxed_u32(&c->q->signal_wanted, 1);
    /* B6: orders the flag store above before the tail re-read below; pairs
     * with B5 in ring_prod_need_signal(). Either we see the producer's new
     * tail, or it sees our flag and signals. */
    fence_full();
    ring_err_t err = cons_refresh_tail(c); /* B2 inside */
    if (err != RING_OK)
        return true; /* impossible tail: counted; sleep rather than spin */
    if (c->head == c->tail_seen)
        return true;
    /* Staying awake: withdraw the request (saves the producer a signal; a
     * signal that still comes is merely spurious). */
    fence_store_relaxed_u32(&c->q->signal_wanted, 0);
    return false;
}

uint32_t ring_cons_errors(const ring_cons_t *c, ring_err_t err)
{
    return error_count(c->errors, err);
}

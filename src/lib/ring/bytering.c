/*
 * bytering.c - SPSC byte queues (see ferry/bytering.h for the ownership
 * invariant, the layout and the barriers BR1..BR4). Portable.
 */
#include <ferry/bytering.h>
#include <string.h>

static bool ring_ptr_ok(const bytering_t *r)
{
    return r != NULL && ((uintptr_t)r & (BYTERING_CACHELINE - 1)) == 0;
}

bytering_err_t bytering_init(bytering_t *r, uint32_t size, uint32_t start)
{
    if (!ring_ptr_ok(r) || !bytering_size_ok(size))
        return BYTERING_EINVAL;
    fence_store_relaxed_u32(&r->head, start);
    /* BR1-like: the head store and anything the creator wrote come before
     * the tail that a party reads first. */
    fence_store_release_u32(&r->tail, start);
    return BYTERING_OK;
}

/* Copy between a linear buffer and the ring at index `at` (wrapping). */
static void copy_in(bytering_t *r, uint32_t size, uint32_t at, const uint8_t *src, uint32_t len)
{
    uint32_t pos = at & (size - 1);
    uint32_t first = size - pos < len ? size - pos : len;
    memcpy(r->data + pos, src, first);
    memcpy(r->data, src + first, len - first);
}

static void copy_out(const bytering_t *r, uint32_t size, uint32_t at, uint8_t *dst, uint32_t len)
{
    uint32_t pos = at & (size - 1);
    uint32_t first = size - pos < len ? size - pos : len;
    memcpy(dst, r->data + pos, first);
    memcpy(dst + first, r->data, len - first);
}

/* ---- Producer ------------------------------------------------------------------ */

bytering_err_t bytering_prod_attach(bytering_prod_t *p, bytering_t *r, uint32_t size)
{
    if (p == NULL || !ring_ptr_ok(r) || !bytering_size_ok(size))
        return BYTERING_EINVAL;
    p->r = r;
    p->size = size;
    p->tail = fence_load_relaxed_u32(&r->tail);
    p->errors = 0;
    return BYTERING_OK;
}

bytering_err_t bytering_prod_space(bytering_prod_t *p, uint32_t *space)
{
    /* BR4: acquire pairs with the consumer's release of head (BR3): its
     * reads of the bytes before head are done before we overwrite them. */
    uint32_t head = fence_load_acquire_u32(&p->r->head);
    uint32_t used = p->tail - head;
    if (used > p->size) {
        p->errors++;
        *space = 0;
        return BYTERING_EINDEX;
    }
    *space = p->size - used;
    return BYTERING_OK;
}

bytering_err_t bytering_prod_write(bytering_prod_t *p, const void *buf, uint32_t len, uint32_t *done)
{
    uint32_t space;
    *done = 0;
    bytering_err_t err = bytering_prod_space(p, &space);
    if (err)
        return err;
    uint32_t n = len < space ? len : space;
    copy_in(p->r, p->size, p->tail, buf, n);
    p->tail += n;
    *done = n;
    return BYTERING_OK;
}

bytering_err_t bytering_prod_write_all(bytering_prod_t *p, const void *buf, uint32_t len)
{
    uint32_t space;
    bytering_err_t err = bytering_prod_space(p, &space);
    if (err)
        return err;
    if (len > space)
        return BYTERING_ESPACE;
    copy_in(p->r, p->size, p->tail, buf, len);
    p->tail += len;
    return BYTERING_OK;
}

void bytering_prod_publish(bytering_prod_t *p)
{
    /* BR1: release orders the data written above before the new tail. */
    fence_store_release_u32(&p->r->tail, p->tail);
}

/* ---- Consumer ------------------------------------------------------------------ */

bytering_err_t bytering_cons_attach(bytering_cons_t *c, bytering_t *r, uint32_t size)
{
    if (c == NULL || !ring_ptr_ok(r) || !bytering_size_ok(size))
        return BYTERING_EINVAL;
    c->r = r;
    c->size = size;
    c->head = fence_load_relaxed_u32(&r->head);
    c->errors = 0;
    return BYTERING_OK;
}

bytering_err_t bytering_cons_avail(bytering_cons_t *c, uint32_t *avail)
{
    /* BR2: acquire pairs with the producer's release of tail (BR1): the
     * bytes before tail are visible once we see it. */
    uint32_t tail = fence_load_acquire_u32(&c->r->tail);
    uint32_t n = tail - c->head;
    if (n > c->size) {
        c->errors++;
        *avail = 0;
        return BYTERING_EINDEX;
    }
    *avail = n;
    return BYTERING_OK;
}

bytering_err_t bytering_cons_read(bytering_cons_t *c, void *buf, uint32_t len, uint32_t *done)
{
    uint32_t avail;
    *done = 0;
    bytering_err_t err = bytering_cons_avail(c, &avail);
    if (err)
        return err;
    uint32_t n = len < avail ? len : avail;
    copy_out(c->r, c->size, c->head, buf, n);
    c->head += n;
    *done = n;
    return BYTERING_OK;
}

bytering_err_t bytering_cons_peek(bytering_cons_t *c, uint32_t off, void *buf, uint32_t len)
{
    uint32_t avail;
    bytering_err_t err = bytering_cons_avail(c, &avail);
    if (err)
        return err;
    if (off > avail || len > avail - off)
        return BYTERING_EDATA;
    copy_out(c->r, c->size, c->head + off, buf, len);
    return BYTERING_OK;
}

bytering_err_t bytering_cons_span(bytering_cons_t *c, uint32_t off, const void **ptr, uint32_t *len)
{
    uint32_t avail;
    *len = 0;
    bytering_err_t err = bytering_cons_avail(c, &avail);
    if (err)
        return err;
    if (off > avail)
        return BYTERING_EDATA;
    uint32_t pos = (c->head + off) & (c->size - 1);
    uint32_t run = c->size - pos;
    *ptr = c->r->data + pos;
    *len = avail - off < run ? avail - off : run;
    return BYTERING_OK;
}

bytering_err_t bytering_cons_skip(bytering_cons_t *c, uint32_t n)
{
    uint32_t avail;
    bytering_err_t err = bytering_cons_avail(c, &avail);
    if (err)
        return err;
    if (n > avail)
        return BYTERING_EDATA;
    c->head += n;
    return BYTERING_OK;
}

void bytering_cons_publish(bytering_cons_t *c)
{
    /* BR3: release orders our data reads before handing the space back. */
    fence_store_release_u32(&c->r->head, c->head);
}

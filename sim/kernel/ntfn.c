/*
 * ntfn.c - notifications: a word of pending bits per object.
 *
 * mk_signal ORs the signalling capability's badge (1 if unbadged) into the
 * word and, if a thread waits (mk_wait) or the bound thread is blocked in
 * mk_recv, hands it the whole word and clears it. At most one thread waits on
 * a notification at a time (MK_EBUSY for a second one), as in seL4 practice.
 */
#include "kstate.h"

static mk_err_t ntfn_get(k_thread_t *t, mk_cap_t cap, uint32_t right, k_obj_t **o)
{
    k_cap_t *c;
    mk_err_t err = k_cap_get(k_task_of(t), cap, MK_OBJ_NOTIFICATION, right, &c);
    if (err)
        return err;
    *o = &K->objs[c->obj];
    return MK_OK;
}

mk_err_t mk_ntfn_create(mk_cap_t *out)
{
    return k_obj_create(MK_OBJ_NOTIFICATION, out);
}

void k_ntfn_signal(k_obj_t *o, uint64_t bits)
{
    o->u.ntfn.word |= bits;
    if (o->u.ntfn.waiter) {
        k_thread_t *w = &K->threads[o->u.ntfn.waiter];
        w->badge = o->u.ntfn.word;
        o->u.ntfn.word = 0;
        o->u.ntfn.waiter = 0;
        k_wake(w, MK_OK);
    } else if (o->u.ntfn.bound && K->threads[o->u.ntfn.bound].state == KTH_BLOCKED_RECV) {
        k_thread_t *b = &K->threads[o->u.ntfn.bound];
        k_dequeue(&K->objs[b->wait_obj].u.ep.recvq, b);
        b->badge = o->u.ntfn.word;
        b->notified = 1;
        o->u.ntfn.word = 0;
        k_wake(b, MK_OK);
    }
}

mk_err_t mk_signal(mk_cap_t cap)
{
    mk_err_t err;
    k_lock();
    k_thread_t *t = k_current(&err);
    k_cap_t *c;
    if (t == NULL || (err = k_cap_get(k_task_of(t), cap, MK_OBJ_NOTIFICATION, MK_RIGHT_SEND, &c)))
        goto out;
    k_obj_t *o = &K->objs[c->obj];
    k_set(&o->u.ntfn.last_signaller, k_thread_index(t));
    k_ntfn_signal(o, c->badge ? c->badge : 1);
out:
    k_unlock();
    return err;
}

mk_err_t mk_wait(mk_cap_t cap, mk_word_t *bits, uint64_t timeout_ns)
{
    if (bits == NULL)
        return MK_EINVAL;
    uint64_t deadline = k_deadline(timeout_ns);
    mk_err_t err;
    k_lock();
    k_thread_t *t = k_current(&err);
    k_obj_t *o;
    if (t == NULL || (err = ntfn_get(t, cap, MK_RIGHT_RECV, &o)))
        goto out;
    if (o->u.ntfn.word) {
        *bits = o->u.ntfn.word;
        o->u.ntfn.word = 0;
        goto out;
    }
    if (o->u.ntfn.waiter) {
        err = MK_EBUSY;
        goto out;
    }
    if (timeout_ns == MK_NOWAIT) {
        err = MK_ETIMEDOUT;
        goto out;
    }
    atomic_store_explicit(&t->wake, 0, memory_order_relaxed);
    t->state = KTH_BLOCKED_NTFN;
    t->wait_obj = (uint32_t)(o - K->objs);
    k_set(&t->peer, o->u.ntfn.last_signaller);
    o->u.ntfn.waiter = k_thread_index(t);
    if (!k_block(t, deadline)) {
        k_cancel_wait(t);
        err = MK_ETIMEDOUT;
        goto out;
    }
    err = t->result;
    if (err == MK_OK)
        *bits = t->badge;
    return err;
out:
    k_unlock();
    return err;
}

mk_err_t mk_poll(mk_cap_t cap, mk_word_t *bits)
{
    if (bits == NULL)
        return MK_EINVAL;
    mk_err_t err;
    k_lock();
    k_thread_t *t = k_current(&err);
    k_obj_t *o;
    if (t && (err = ntfn_get(t, cap, MK_RIGHT_RECV, &o)) == MK_OK) {
        *bits = o->u.ntfn.word;
        o->u.ntfn.word = 0;
    }
    k_unlock();
    return err;
}

mk_err_t mk_ntfn_bind(mk_cap_t cap)
{
    mk_err_t err;
    k_lock();
    k_thread_t *t = k_current(&err);
    k_obj_t *o;
    if (t && (err = ntfn_get(t, cap, MK_RIGHT_RECV, &o)) == MK_OK) {
        if (o->u.ntfn.bound || t->bound_ntfn) {
            err = MK_EBUSY;
        } else {
            o->u.ntfn.bound = k_thread_index(t);
            t->bound_ntfn = (uint32_t)(o - K->objs);
        }
    }
    k_unlock();
    return err;
}

mk_err_t mk_ntfn_unbind(void)
{
    mk_err_t err;
    k_lock();
    k_thread_t *t = k_current(&err);
    if (t && t->bound_ntfn) {
        K->objs[t->bound_ntfn].u.ntfn.bound = 0;
        t->bound_ntfn = 0;
    }
    k_unlock();
    return err;
}

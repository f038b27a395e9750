/*
 * ipc.c - endpoints: call, send, receive, reply, reply-and-receive.
 *
 * Rendezvous IPC under the kernel lock. A sender finding a waiting receiver
 * transfers the message into the receiver's buffer and wakes it; otherwise it
 * queues itself with its message and the receiver transfers it later. A call
 * then waits on its thread's reply object, under a new generation, whose
 * one-shot capability the receiver gets (kstate.h); the reply (now or later:
 * deferred replies) completes the caller.
 * Capabilities named in a message are checked (MK_RIGHT_GRANT) and copied at
 * the moment of transfer.
 */
#include "kstate.h"

#include <string.h>

static void msg_copy(mk_msg_t *dst, const mk_msg_t *src)
{
    dst->label = src->label;
    dst->words = src->words;
    dst->ncaps = src->ncaps;
    memcpy(dst->caps, src->caps, sizeof dst->caps);
    memcpy(dst->mr, src->mr, (size_t)src->words * sizeof(mk_word_t));
}

static mk_err_t msg_check(const mk_msg_t *m)
{
    if (m == NULL || m->words > MK_MSG_WORDS || m->ncaps > MK_MSG_CAPS)
        return MK_EINVAL;
    return MK_OK;
}

/* Can `from` grant every capability named in `m`? */
static mk_err_t caps_check(k_task_t *from, const mk_msg_t *m)
{
    for (uint32_t i = 0; i < m->ncaps; i++) {
        k_cap_t *c;
        mk_err_t err = k_cap_get(from, m->caps[i], MK_OBJ_NONE, MK_RIGHT_GRANT, &c);
        if (err)
            return err;
        if (c->type == MK_OBJ_REPLY || c->type == MK_OBJ_TASK)
            return MK_ETYPE;
    }
    return MK_OK;
}

/* Move one message from thread s (task of s, message src) to thread r, into
 * dst. For a call, start a new generation of s's reply object, give r its
 * capability in *reply_slot and leave s blocked on it. Nothing changes on
 * failure; the error belongs to the sender. Lock held. */
static mk_err_t transfer(k_thread_t *s, const mk_msg_t *src, bool call, k_thread_t *r,
                         mk_msg_t *dst, mk_cap_t *reply_slot)
{
    k_task_t *st = k_task_of(s), *rt = k_task_of(r);
    mk_err_t err = caps_check(st, src);
    if (err)
        return err;
    uint32_t need = src->ncaps + (call ? 1u : 0u);
    if (k_cap_free_slots(rt, need) < need)
        return MK_ENOSPC;
    *reply_slot = MK_CAP_NULL;
    if (call) {
        s->reply_gen++; /* earlier capabilities of s's reply object are stale */
        k_cap_insert(rt, MK_OBJ_REPLY, 0, k_thread_index(s), s->reply_gen, reply_slot);
        k_set(&s->rcap_task, r->task);
        k_set(&s->rcap_slot, *reply_slot);
        s->state = KTH_BLOCKED_REPLY;
        s->wait_obj = 0;
    }
    mk_msg_t tmp;
    msg_copy(&tmp, src);
    for (uint32_t i = 0; i < src->ncaps; i++) {
        k_cap_t *c = &st->cspace[src->caps[i]];
        k_cap_insert(rt, c->type, c->rights, c->obj, c->badge, &tmp.caps[i]);
    }
    for (uint32_t i = src->ncaps; i < MK_MSG_CAPS; i++)
        tmp.caps[i] = MK_CAP_NULL;
    msg_copy(dst, &tmp);
    return MK_OK;
}

static mk_err_t ep_get(k_thread_t *t, mk_cap_t ep, uint32_t right, k_cap_t **c)
{
    mk_err_t err = k_cap_get(k_task_of(t), ep, MK_OBJ_ENDPOINT, right, c);
    if (err == MK_OK && K->objs[(*c)->obj].dead)
        err = MK_EDEAD;
    return err;
}

void k_ep_kill(k_obj_t *o)
{
    o->dead = 1;
    k_thread_t *t;
    while ((t = k_queue_first(&o->u.ep.sendq)) != NULL) {
        k_dequeue(&o->u.ep.sendq, t);
        k_wake(t, MK_EDEAD);
    }
    while ((t = k_queue_first(&o->u.ep.recvq)) != NULL) {
        k_dequeue(&o->u.ep.recvq, t);
        k_wake(t, MK_EDEAD);
    }
}

mk_err_t mk_ep_create(mk_cap_t *out)
{
    return k_obj_create(MK_OBJ_ENDPOINT, out);
}

static mk_err_t send_common(mk_cap_t ep, mk_msg_t *msg, uint64_t timeout_ns, bool call)
{
    mk_err_t err = msg_check(msg);
    if (err)
        return err;
    uint64_t deadline = k_deadline(timeout_ns);
    k_lock();
    k_thread_t *t = k_current(&err);
    k_cap_t *c;
    if (t == NULL || (err = ep_get(t, ep, MK_RIGHT_SEND, &c)) ||
        (err = caps_check(k_task_of(t), msg)))
        goto out;
    k_obj_t *o = &K->objs[c->obj];
    atomic_store_explicit(&t->wake, 0, memory_order_relaxed);
    k_thread_t *r = k_queue_first(&o->u.ep.recvq);
    if (r) {
        err = transfer(t, msg, call, r, &r->msg, &r->reply_slot);
        if (err)
            goto out;
        r->badge = c->badge;
        r->notified = 0;
        k_set(&t->peer, k_thread_index(r));
        k_set(&r->peer, k_thread_index(t));
        k_set(&o->u.ep.last_sender, k_thread_index(t));
        k_dequeue(&o->u.ep.recvq, r);
        k_wake(r, MK_OK);
        if (!call)
            goto out;
    } else if (timeout_ns == MK_NOWAIT) {
        err = MK_ETIMEDOUT;
        goto out;
    } else {
        msg_copy(&t->msg, msg);
        t->badge = c->badge;
        t->is_call = call;
        t->state = KTH_BLOCKED_SEND;
        t->wait_obj = c->obj;
        k_set(&t->peer, o->u.ep.last_receiver);
        k_enqueue(&o->u.ep.sendq, t);
    }
    if (!k_block(t, deadline)) {
        k_cancel_wait(t);
        err = MK_ETIMEDOUT;
        goto out;
    }
    err = t->result;
    if (call && err == MK_OK)
        msg_copy(msg, &t->msg);
    return err;
out:
    k_unlock();
    return err;
}

mk_err_t mk_call(mk_cap_t ep, mk_msg_t *msg, uint64_t timeout_ns)
{
    return send_common(ep, msg, timeout_ns, true);
}

mk_err_t mk_send(mk_cap_t ep, const mk_msg_t *msg, uint64_t timeout_ns)
{
    /* send_common does not write *msg when call == false. */
    return send_common(ep, (mk_msg_t *)msg, timeout_ns, false);
}

/* Receive with the lock held on entry; returns with it released. */
static mk_err_t recv_locked(k_thread_t *t, mk_cap_t ep, mk_msg_t *msg, mk_recv_info_t *info,
                            uint64_t timeout_ns, uint64_t deadline)
{
    k_cap_t *c;
    mk_err_t err = ep_get(t, ep, MK_RIGHT_RECV, &c);
    if (err)
        goto out;
    k_obj_t *o = &K->objs[c->obj];
    info->reply = MK_CAP_NULL;
    info->notification = false;
    if (t->bound_ntfn && K->objs[t->bound_ntfn].u.ntfn.word) {
        info->badge = K->objs[t->bound_ntfn].u.ntfn.word;
        K->objs[t->bound_ntfn].u.ntfn.word = 0;
        info->notification = true;
        goto out;
    }
    k_thread_t *s;
    while ((s = k_queue_first(&o->u.ep.sendq)) != NULL) {
        bool call = s->is_call;
        err = transfer(s, &s->msg, call, t, msg, &info->reply);
        k_dequeue(&o->u.ep.sendq, s);
        if (err) {
            k_wake(s, err); /* the sender's message was bad: its error, next one */
            err = MK_OK;
            continue;
        }
        info->badge = s->badge;
        k_set(&s->peer, k_thread_index(t));
        k_set(&o->u.ep.last_sender, k_thread_index(s));
        if (!call)
            k_wake(s, MK_OK);
        goto out;
    }
    if (timeout_ns == MK_NOWAIT) {
        err = MK_ETIMEDOUT;
        goto out;
    }
    atomic_store_explicit(&t->wake, 0, memory_order_relaxed);
    t->state = KTH_BLOCKED_RECV;
    t->wait_obj = c->obj;
    t->notified = 0;
    k_set(&o->u.ep.last_receiver, k_thread_index(t));
    if (t->peer == 0)
        t->peer = o->u.ep.last_sender;
    k_enqueue(&o->u.ep.recvq, t);
    if (!k_block(t, deadline)) {
        k_cancel_wait(t);
        err = MK_ETIMEDOUT;
        goto out;
    }
    err = t->result;
    if (err == MK_OK) {
        info->badge = t->badge;
        info->notification = t->notified != 0;
        if (!t->notified) {
            info->reply = t->reply_slot;
            msg_copy(msg, &t->msg);
        }
    }
    return err;
out:
    k_unlock();
    return err;
}

mk_err_t mk_recv(mk_cap_t ep, mk_msg_t *msg, mk_recv_info_t *info, uint64_t timeout_ns)
{
    if (msg == NULL || info == NULL)
        return MK_EINVAL;
    uint64_t deadline = k_deadline(timeout_ns);
    mk_err_t err;
    k_lock();
    k_thread_t *t = k_current(&err);
    if (t == NULL) {
        k_unlock();
        return err;
    }
    return recv_locked(t, ep, msg, info, timeout_ns, deadline);
}

/* Answer through a reply capability; lock held. */
/* A malformed reply message (msg == NULL or bad counts) still consumes the
 * reply capability: the caller's call ends with MK_EINVAL rather than
 * waiting for a reply that will not come. */
static mk_err_t reply_locked(k_thread_t *t, mk_cap_t reply, const mk_msg_t *msg)
{
    k_task_t *task = k_task_of(t);
    k_cap_t *c;
    mk_err_t err = k_cap_get(task, reply, MK_OBJ_REPLY, 0, &c);
    if (err)
        return err;
    k_thread_t *caller = k_reply_caller(c);
    if (c->reply == KR_CALLER_DEAD) {
        err = MK_EDEAD;
    } else if (caller == NULL) {
        err = MK_ECANCELED; /* KR_CANCELED; the generation check is a second guard */
    } else if ((err = msg_check(msg)) != MK_OK) {
        k_wake(caller, err);
    } else {
        mk_cap_t unused;
        err = transfer(t, msg, false, caller, &caller->msg, &unused);
        k_set(&t->peer, c->obj); /* it will probably call again */
        k_wake(caller, err); /* a bad reply still ends the caller's wait */
    }
    c->reply = KR_CANCELED; /* answered: removing the cap wakes nobody */
    k_cap_remove(task, reply);
    return err;
}

mk_err_t mk_reply(mk_cap_t reply, const mk_msg_t *msg)
{
    mk_err_t err;
    k_lock();
    k_thread_t *t = k_current(&err);
    if (t)
        err = reply_locked(t, reply, msg);
    k_unlock();
    return err;
}

mk_err_t mk_reply_recv(mk_cap_t ep, mk_cap_t reply, mk_msg_t *msg, mk_recv_info_t *info,
                       uint64_t timeout_ns)
{
    if (msg == NULL || info == NULL)
        return MK_EINVAL;
    uint64_t deadline = k_deadline(timeout_ns);
    mk_err_t err;
    k_lock();
    k_thread_t *t = k_current(&err);
    if (t == NULL) {
        k_unlock();
        return err;
    }
    if (reply != MK_CAP_NULL)
        (void)reply_locked(t, reply, msg); /* the caller's fate does not stop the server */
    return recv_locked(t, ep, msg, info, timeout_ns, deadline);
}

/* ---- Death notices --------------------------------------------------------- */

void k_death_forget(uint32_t ep)
{
    for (uint32_t i = 0; i < K_MAX_DEATHS; i++)
        if (K->deaths[i].ep == ep)
            memset(&K->deaths[i], 0, sizeof K->deaths[i]);
}

static void death_queue(uint32_t ep, uint64_t badge)
{
    k_death_t *free_entry = NULL;
    for (uint32_t i = 0; i < K_MAX_DEATHS; i++) {
        k_death_t *d = &K->deaths[i];
        if (d->ep == ep && d->badge == badge)
            return; /* already told */
        if (d->ep == 0 && free_entry == NULL)
            free_entry = d;
    }
    if (free_entry == NULL) {
        K->deaths_lost++;
        k_warn("death notice table full: badge %llu of endpoint %u lost", (unsigned long long)badge, ep);
        return;
    }
    free_entry->ep = ep;
    free_entry->badge = badge;
}

void k_death_notices(k_task_t *dying)
{
    for (mk_cap_t s = 1; s < K_CSPACE_SLOTS; s++) {
        const k_cap_t *c = &dying->cspace[s];
        if (c->type != MK_OBJ_ENDPOINT || !(c->rights & MK_RIGHT_SEND) || c->badge == 0)
            continue;
        k_obj_t *ep = &K->objs[c->obj];
        if (ep->dead || ep->u.ep.death_ntfn == 0)
            continue;
        death_queue(c->obj, c->badge);
        k_ntfn_signal(&K->objs[ep->u.ep.death_ntfn], ep->u.ep.death_bits);
    }
}

mk_err_t mk_ep_death_ntfn(mk_cap_t ep, mk_cap_t ntfn)
{
    mk_err_t err;
    k_lock();
    k_thread_t *t = k_current(&err);
    k_cap_t *e, *n = NULL;
    if (t == NULL || (err = ep_get(t, ep, MK_RIGHT_RECV, &e)) ||
        (ntfn != MK_CAP_NULL && (err = k_cap_get(k_task_of(t), ntfn, MK_OBJ_NOTIFICATION, MK_RIGHT_SEND, &n))))
        goto out;
    k_obj_t *o = &K->objs[e->obj];
    if (o->u.ep.death_ntfn)
        k_obj_put(o->u.ep.death_ntfn); /* the endpoint held a reference */
    o->u.ep.death_ntfn = n ? n->obj : 0;
    o->u.ep.death_bits = n ? (n->badge ? n->badge : 1) : 0;
    if (n)
        K->objs[n->obj].refs++;
out:
    k_unlock();
    return err;
}

mk_err_t mk_ep_dead_badges(mk_cap_t ep, mk_badge_t *out, uint32_t max, uint32_t *n)
{
    if (n == NULL || (out == NULL && max > 0))
        return MK_EINVAL;
    mk_err_t err;
    k_lock();
    k_thread_t *t = k_current(&err);
    k_cap_t *e;
    *n = 0;
    if (t && (err = k_cap_get(k_task_of(t), ep, MK_OBJ_ENDPOINT, MK_RIGHT_RECV, &e)) == MK_OK) {
        for (uint32_t i = 0; i < K_MAX_DEATHS && *n < max; i++) {
            if (K->deaths[i].ep != e->obj)
                continue;
            out[(*n)++] = K->deaths[i].badge;
            memset(&K->deaths[i], 0, sizeof K->deaths[i]);
        }
    }
    k_unlock();
    return err;
}

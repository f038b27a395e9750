/*
 * test_kernel.c - proves the simulator's kernel interface (ferry/mk.h):
 * every call works as documented, timeouts expire, capabilities are checked
 * (a wrong slot, type or right gets its error and changes nothing), deferred
 * replies work, a dead peer ends every wait with MK_EDEAD instead of a hang,
 * many clients share one endpoint, and a separate process attaches as a task.
 *
 * Each test runs in its own forked process (Check's fork mode) with a fresh
 * simulator made by the fixture.
 */
#include <check.h>
#include <ferry/mk.h>
#include <ferry/sim.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#define MS 1000000ull

static void setup(void)
{
    ck_assert_int_eq(sim_init(), MK_OK);
}

static void teardown(void)
{
    sim_shutdown();
}

/* Start a task running `main` with the given (cap, rights, badge, name) gifts. */
typedef struct gift {
    mk_cap_t cap;
    uint32_t rights;
    mk_badge_t badge;
    const char *name;
} gift_t;

static mk_cap_t start_task(const char *name, mk_task_main_t main, const gift_t *g, int n, const char *arg)
{
    mk_cap_t task;
    ck_assert_int_eq(mk_task_create(name, &task), MK_OK);
    for (int i = 0; i < n; i++)
        ck_assert_int_eq(mk_task_give(task, g[i].cap, g[i].rights, g[i].badge, g[i].name, NULL), MK_OK);
    char *argv[] = {(char *)name, (char *)arg, NULL};
    ck_assert_int_eq(mk_task_start(task, main, arg ? 2 : 1, argv), MK_OK);
    return task;
}

static mk_cap_t lookup(const char *name)
{
    mk_cap_t c = MK_CAP_NULL;
    if (mk_cap_lookup(name, &c) != MK_OK)
        abort();
    return c;
}

/* ---- A simple server: replies label + 1 and each word * 2, plus badge. --- */

static int echo_server(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    mk_cap_t ep = lookup("ep");
    mk_msg_t m;
    mk_recv_info_t info;
    mk_cap_t reply = MK_CAP_NULL;
    for (;;) {
        mk_err_t e = mk_reply_recv(ep, reply, &m, &info, MK_FOREVER);
        if (e != MK_OK)
            return e == MK_EDEAD ? 0 : 1;
        reply = info.reply;
        if (m.label == 999)
            return 7; /* exit on request, without replying */
        m.label += 1;
        for (unsigned i = 0; i < m.words; i++)
            m.mr[i] *= 2;
        if (m.words < MK_MSG_WORDS)
            m.mr[m.words++] = info.badge;
        m.ncaps = 0;
    }
}

START_TEST(test_call_reply)
{
    mk_cap_t ep, cl;
    ck_assert_int_eq(mk_ep_create(&ep), MK_OK);
    ck_assert_int_eq(mk_cap_mint(ep, MK_RIGHT_SEND, 42, &cl), MK_OK);
    gift_t g[] = {{ep, MK_RIGHT_RECV, 0, "ep"}};
    start_task("server", echo_server, g, 1, NULL);
    for (int round = 0; round < 100; round++) {
        mk_msg_t m = {.label = (uint32_t)round, .words = 3, .mr = {1, 2, (mk_word_t)round}};
        ck_assert_int_eq(mk_call(cl, &m, 5000 * MS), MK_OK);
        ck_assert_uint_eq(m.label, (uint32_t)round + 1);
        ck_assert_uint_eq(m.words, 4);
        ck_assert_uint_eq(m.mr[0], 2);
        ck_assert_uint_eq(m.mr[2], (mk_word_t)round * 2);
        ck_assert_uint_eq(m.mr[3], 42); /* the badge of the client's cap */
    }
    /* Invalid messages are refused before anything happens. */
    mk_msg_t bad = {.words = MK_MSG_WORDS + 1};
    ck_assert_int_eq(mk_call(cl, &bad, 0), MK_EINVAL);
    bad.words = 0;
    bad.ncaps = MK_MSG_CAPS + 1;
    ck_assert_int_eq(mk_call(cl, &bad, 0), MK_EINVAL);
}
END_TEST

START_TEST(test_send_and_recv)
{
    mk_cap_t ep;
    ck_assert_int_eq(mk_ep_create(&ep), MK_OK);
    /* Nobody receiving: a non-blocking send times out at once. */
    mk_msg_t m = {.label = 5, .words = 1, .mr = {77}};
    ck_assert_int_eq(mk_send(ep, &m, MK_NOWAIT), MK_ETIMEDOUT);
    /* A send picked up by a receiver carries no reply capability. */
    mk_cap_t srv_ep;
    ck_assert_int_eq(mk_cap_mint(ep, MK_RIGHT_SEND, 9, &srv_ep), MK_OK);
    ck_assert_int_eq(mk_recv(ep, &m, &(mk_recv_info_t){0}, MK_NOWAIT), MK_ETIMEDOUT);
}
END_TEST

static int one_shot_receiver(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    mk_msg_t m;
    mk_recv_info_t info;
    if (mk_recv(lookup("ep"), &m, &info, 5000 * MS) != MK_OK)
        return 1;
    if (info.reply != MK_CAP_NULL || info.badge != 9 || m.label != 5 || m.mr[0] != 77)
        return 2;
    return 0;
}

START_TEST(test_send_delivered)
{
    mk_cap_t ep, snd;
    ck_assert_int_eq(mk_ep_create(&ep), MK_OK);
    ck_assert_int_eq(mk_cap_mint(ep, MK_RIGHT_SEND, 9, &snd), MK_OK);
    gift_t g[] = {{ep, MK_RIGHT_RECV, 0, "ep"}};
    mk_cap_t task = start_task("rcv", one_shot_receiver, g, 1, NULL);
    mk_msg_t m = {.label = 5, .words = 1, .mr = {77}};
    ck_assert_int_eq(mk_send(snd, &m, 5000 * MS), MK_OK);
    int status = -1;
    ck_assert_int_eq(mk_task_wait(task, &status, 5000 * MS), MK_OK);
    ck_assert_int_eq(status, 0);
}
END_TEST

START_TEST(test_timeouts)
{
    mk_cap_t ep, nt;
    ck_assert_int_eq(mk_ep_create(&ep), MK_OK);
    ck_assert_int_eq(mk_ntfn_create(&nt), MK_OK);
    mk_msg_t m = {0};
    mk_recv_info_t info;
    uint64_t t0 = mk_time_ns();
    ck_assert_int_eq(mk_recv(ep, &m, &info, 30 * MS), MK_ETIMEDOUT);
    ck_assert_uint_ge(mk_time_ns() - t0, 30 * MS);
    t0 = mk_time_ns();
    ck_assert_int_eq(mk_call(ep, &m, 30 * MS), MK_ETIMEDOUT);
    ck_assert_uint_ge(mk_time_ns() - t0, 30 * MS);
    /* The timed-out call left no queued message behind. */
    ck_assert_int_eq(mk_recv(ep, &m, &info, MK_NOWAIT), MK_ETIMEDOUT);
    mk_word_t bits;
    t0 = mk_time_ns();
    ck_assert_int_eq(mk_wait(nt, &bits, 30 * MS), MK_ETIMEDOUT);
    ck_assert_uint_ge(mk_time_ns() - t0, 30 * MS);
    ck_assert_int_eq(mk_wait(nt, &bits, MK_NOWAIT), MK_ETIMEDOUT);
}
END_TEST

/* Receives one call, waits until the caller has timed out, then replies. */
static _Atomic int late_caller_gone;

static int late_replier(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    mk_msg_t m;
    mk_recv_info_t info;
    if (mk_recv(lookup("ep"), &m, &info, 10000 * MS) != MK_OK)
        return 1;
    for (int i = 0; i < 1000 && !atomic_load(&late_caller_gone); i++)
        mk_sleep_ns(10 * MS);
    return mk_reply(info.reply, &m) == MK_ECANCELED ? 0 : 2;
}

/* The call times out while the server holds it (a generous timeout, so that
 * a loaded machine still delivers the call before it expires). */
START_TEST(test_call_timeout_in_reply_phase)
{
    mk_cap_t ep;
    ck_assert_int_eq(mk_ep_create(&ep), MK_OK);
    gift_t g[] = {{ep, MK_RIGHT_RECV, 0, "ep"}};
    mk_cap_t task = start_task("late", late_replier, g, 1, NULL);
    mk_msg_t m = {.label = 1};
    ck_assert_int_eq(mk_call(ep, &m, 1000 * MS), MK_ETIMEDOUT);
    atomic_store(&late_caller_gone, 1);
    int status = -1;
    ck_assert_int_eq(mk_task_wait(task, &status, 15000 * MS), MK_OK);
    ck_assert_int_eq(status, 0); /* the late reply got MK_ECANCELED */
    ck_assert_uint_eq(sim_count_objects(MK_OBJ_REPLY), 0);
}
END_TEST

START_TEST(test_wrong_capabilities)
{
    mk_cap_t ep, nt, shm, send_only, recv_only, ro;
    ck_assert_int_eq(mk_ep_create(&ep), MK_OK);
    ck_assert_int_eq(mk_ntfn_create(&nt), MK_OK);
    ck_assert_int_eq(mk_shm_create(4096, &shm), MK_OK);
    ck_assert_int_eq(mk_cap_mint(ep, MK_RIGHT_SEND, 1, &send_only), MK_OK);
    ck_assert_int_eq(mk_cap_mint(ep, MK_RIGHT_RECV, 0, &recv_only), MK_OK);
    ck_assert_int_eq(mk_cap_mint(shm, MK_RIGHT_READ, 0, &ro), MK_OK);
    uint32_t caps = sim_count_caps();
    uint32_t eps = sim_count_objects(MK_OBJ_ENDPOINT);
    mk_msg_t m = {.label = 1};
    mk_recv_info_t info;
    mk_word_t bits;
    void *p;
    /* Slots never given, out of range, or empty. */
    ck_assert_int_eq(mk_call(MK_CAP_NULL, &m, 0), MK_ECAP);
    ck_assert_int_eq(mk_call(100000, &m, 0), MK_ECAP);
    ck_assert_int_eq(mk_call(900, &m, 0), MK_ECAP);
    ck_assert_int_eq(mk_signal(900), MK_ECAP);
    ck_assert_int_eq(mk_cap_delete(900), MK_ECAP);
    /* Wrong type. */
    ck_assert_int_eq(mk_call(nt, &m, 0), MK_ETYPE);
    ck_assert_int_eq(mk_signal(ep), MK_ETYPE);
    ck_assert_int_eq(mk_shm_map(ep, MK_RIGHT_READ, &p, NULL), MK_ETYPE);
    ck_assert_int_eq(mk_wait(shm, &bits, 0), MK_ETYPE);
    ck_assert_int_eq(mk_reply(ep, &m), MK_ETYPE);
    /* Missing rights. */
    ck_assert_int_eq(mk_call(recv_only, &m, 0), MK_ERIGHTS);
    ck_assert_int_eq(mk_recv(send_only, &m, &info, 0), MK_ERIGHTS);
    ck_assert_int_eq(mk_shm_map(ro, MK_RIGHT_READ | MK_RIGHT_WRITE, &p, NULL), MK_ERIGHTS);
    mk_cap_t more;
    ck_assert_int_eq(mk_cap_mint(send_only, MK_RIGHT_SEND | MK_RIGHT_RECV, 0, &more), MK_ERIGHTS);
    /* A badged capability cannot be re-badged (forging another client). */
    ck_assert_int_eq(mk_cap_mint(send_only, MK_RIGHT_SEND, 2, &more), MK_ERIGHTS);
    mk_cap_t tk;
    ck_assert_int_eq(mk_task_create("victim", &tk), MK_OK);
    ck_assert_int_eq(mk_task_give(tk, send_only, MK_RIGHT_SEND, 3, "x", NULL), MK_ERIGHTS);
    ck_assert_int_eq(mk_cap_delete(tk), MK_OK);
    /* A message naming a capability the sender lacks or may not grant. */
    mk_msg_t withcap = {.label = 1, .ncaps = 1, .caps = {777}};
    ck_assert_int_eq(mk_call(ep, &withcap, 0), MK_ECAP);
    mk_cap_t nogrant;
    ck_assert_int_eq(mk_cap_mint(shm, MK_RIGHT_READ, 0, &nogrant), MK_OK);
    withcap.caps[0] = nogrant;
    ck_assert_int_eq(mk_call(ep, &withcap, 0), MK_ERIGHTS);
    ck_assert_int_eq(mk_cap_delete(nogrant), MK_OK);
    /* Bad arguments. */
    ck_assert_int_eq(mk_shm_map(shm, MK_RIGHT_WRITE, &p, NULL), MK_EINVAL);
    ck_assert_int_eq(mk_shm_create(0, &more), MK_EINVAL);
    ck_assert_int_eq(mk_cap_lookup("nothing", &more), MK_ENOENT);
    /* Nothing changed. */
    ck_assert_uint_eq(sim_count_caps(), caps);
    ck_assert_uint_eq(sim_count_objects(MK_OBJ_ENDPOINT), eps);
    ck_assert_int_eq(mk_recv(ep, &m, &info, MK_NOWAIT), MK_ETIMEDOUT);
}
END_TEST

/* ---- Deferred replies ------------------------------------------------------ */

/* Takes two calls, answers the second first, then the first (deferred). */
static int deferring_server(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    mk_cap_t ep = lookup("ep");
    mk_msg_t a, b;
    mk_recv_info_t ia, ib;
    if (mk_recv(ep, &a, &ia, 5000 * MS) || mk_recv(ep, &b, &ib, 5000 * MS))
        return 1;
    b.mr[0] = 2000 + ib.badge;
    b.words = 1;
    if (mk_reply(ib.reply, &b) != MK_OK)
        return 2;
    mk_sleep_ns(20 * MS);
    a.mr[0] = 1000 + ia.badge;
    a.words = 1;
    if (mk_reply(ia.reply, &a) != MK_OK)
        return 3;
    /* A reply capability is one-shot. */
    return mk_reply(ia.reply, &a) == MK_ECAP ? 0 : 4;
}

typedef struct caller_arg {
    mk_cap_t ep;
    mk_word_t got;
    uint64_t when;
    mk_err_t err;
} caller_arg_t;

static void caller_thread(void *p)
{
    caller_arg_t *c = p;
    mk_msg_t m = {.label = 1};
    c->err = mk_call(c->ep, &m, 5000 * MS);
    c->got = m.mr[0];
    c->when = mk_time_ns();
}

START_TEST(test_deferred_reply)
{
    mk_cap_t ep, c1, c2;
    ck_assert_int_eq(mk_ep_create(&ep), MK_OK);
    ck_assert_int_eq(mk_cap_mint(ep, MK_RIGHT_SEND, 1, &c1), MK_OK);
    ck_assert_int_eq(mk_cap_mint(ep, MK_RIGHT_SEND, 2, &c2), MK_OK);
    gift_t g[] = {{ep, MK_RIGHT_RECV, 0, "ep"}};
    mk_cap_t task = start_task("defer", deferring_server, g, 1, NULL);
    caller_arg_t a = {.ep = c1}, b = {.ep = c2};
    uint32_t ta, tb;
    ck_assert_int_eq(mk_thread_create(caller_thread, &a, &ta), MK_OK);
    mk_sleep_ns(10 * MS); /* a's call is taken first */
    ck_assert_int_eq(mk_thread_create(caller_thread, &b, &tb), MK_OK);
    ck_assert_int_eq(mk_thread_join(ta), MK_OK);
    ck_assert_int_eq(mk_thread_join(tb), MK_OK);
    ck_assert_int_eq(a.err, MK_OK);
    ck_assert_int_eq(b.err, MK_OK);
    ck_assert_uint_eq(a.got, 1001);
    ck_assert_uint_eq(b.got, 2002);
    ck_assert_uint_lt(b.when, a.when); /* b was answered while a waited */
    int status = -1;
    ck_assert_int_eq(mk_task_wait(task, &status, 5000 * MS), MK_OK);
    ck_assert_int_eq(status, 0);
}
END_TEST

/* ---- Notifications --------------------------------------------------------- */

START_TEST(test_notifications)
{
    mk_cap_t nt, b1, b4;
    ck_assert_int_eq(mk_ntfn_create(&nt), MK_OK);
    ck_assert_int_eq(mk_cap_mint(nt, MK_RIGHT_SEND, 0x1, &b1), MK_OK);
    ck_assert_int_eq(mk_cap_mint(nt, MK_RIGHT_SEND, 0x4, &b4), MK_OK);
    mk_word_t bits = 99;
    ck_assert_int_eq(mk_poll(nt, &bits), MK_OK);
    ck_assert_uint_eq(bits, 0);
    ck_assert_int_eq(mk_signal(b1), MK_OK);
    ck_assert_int_eq(mk_signal(b4), MK_OK);
    ck_assert_int_eq(mk_signal(b4), MK_OK);
    ck_assert_int_eq(mk_wait(nt, &bits, 0), MK_OK);
    ck_assert_uint_eq(bits, 0x5);
    ck_assert_int_eq(mk_poll(nt, &bits), MK_OK);
    ck_assert_uint_eq(bits, 0);
    /* A signal-only capability cannot wait. */
    ck_assert_int_eq(mk_wait(b1, &bits, 0), MK_ERIGHTS);
}
END_TEST

static void late_signaller(void *p)
{
    mk_sleep_ns(20 * MS);
    mk_signal(*(mk_cap_t *)p);
}

START_TEST(test_notification_wakes_waiter_and_bound_receiver)
{
    mk_cap_t nt, ep;
    ck_assert_int_eq(mk_ntfn_create(&nt), MK_OK);
    ck_assert_int_eq(mk_ep_create(&ep), MK_OK);
    uint32_t tid;
    mk_word_t bits = 0;
    ck_assert_int_eq(mk_thread_create(late_signaller, &nt, &tid), MK_OK);
    ck_assert_int_eq(mk_wait(nt, &bits, 5000 * MS), MK_OK);
    ck_assert_uint_eq(bits, 1);
    ck_assert_int_eq(mk_thread_join(tid), MK_OK);
    /* Bound: the signal ends mk_recv on an endpoint. */
    ck_assert_int_eq(mk_ntfn_bind(nt), MK_OK);
    ck_assert_int_eq(mk_ntfn_bind(nt), MK_EBUSY);
    ck_assert_int_eq(mk_thread_create(late_signaller, &nt, &tid), MK_OK);
    mk_msg_t m;
    mk_recv_info_t info;
    ck_assert_int_eq(mk_recv(ep, &m, &info, 5000 * MS), MK_OK);
    ck_assert(info.notification);
    ck_assert_uint_eq(info.badge, 1);
    ck_assert_uint_eq(info.reply, MK_CAP_NULL);
    ck_assert_int_eq(mk_thread_join(tid), MK_OK);
    /* Pending bits are delivered by the next mk_recv at once. */
    ck_assert_int_eq(mk_signal(nt), MK_OK);
    ck_assert_int_eq(mk_recv(ep, &m, &info, MK_NOWAIT), MK_OK);
    ck_assert(info.notification);
    ck_assert_int_eq(mk_ntfn_unbind(), MK_OK);
    ck_assert_int_eq(mk_signal(nt), MK_OK);
    ck_assert_int_eq(mk_recv(ep, &m, &info, MK_NOWAIT), MK_ETIMEDOUT);
}
END_TEST

/* ---- Shared memory and capability transfer --------------------------------- */

/* Receives a shm capability in a message, maps it read-only, sums it. */
static int shm_reader(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    mk_msg_t m;
    mk_recv_info_t info;
    if (mk_recv(lookup("ep"), &m, &info, 5000 * MS) != MK_OK || m.ncaps != 1)
        return 1;
    mk_cap_info_t ci;
    if (mk_cap_info(m.caps[0], &ci) != MK_OK || ci.type != MK_OBJ_SHM || ci.rights != (MK_RIGHT_READ | MK_RIGHT_GRANT))
        return 2;
    void *p;
    size_t size;
    if (mk_shm_map(m.caps[0], MK_RIGHT_READ | MK_RIGHT_WRITE, &p, &size) != MK_ERIGHTS)
        return 3;
    if (mk_shm_map(m.caps[0], MK_RIGHT_READ, &p, &size) != MK_OK || size != ci.size)
        return 4;
    mk_word_t sum = 0;
    for (size_t i = 0; i < size; i++)
        sum += ((const uint8_t *)p)[i];
    m.mr[0] = sum;
    m.words = 1;
    m.ncaps = 0;
    mk_shm_unmap(p, size);
    return mk_reply(info.reply, &m) == MK_OK ? 0 : 5;
}

START_TEST(test_shm_and_cap_transfer)
{
    mk_cap_t ep, shm, ro;
    ck_assert_int_eq(mk_ep_create(&ep), MK_OK);
    ck_assert_int_eq(mk_shm_create(10000, &shm), MK_OK);
    mk_cap_info_t ci;
    ck_assert_int_eq(mk_cap_info(shm, &ci), MK_OK);
    ck_assert_uint_ge(ci.size, 10000);
    uint8_t *p;
    size_t size;
    ck_assert_int_eq(mk_shm_map(shm, MK_RIGHT_READ | MK_RIGHT_WRITE, (void **)&p, &size), MK_OK);
    mk_word_t sum = 0;
    for (size_t i = 0; i < size; i++) {
        p[i] = (uint8_t)(i * 7);
        sum += p[i];
    }
    ck_assert_int_eq(mk_cap_mint(shm, MK_RIGHT_READ | MK_RIGHT_GRANT, 0, &ro), MK_OK);
    gift_t g[] = {{ep, MK_RIGHT_RECV, 0, "ep"}};
    mk_cap_t task = start_task("reader", shm_reader, g, 1, NULL);
    mk_msg_t m = {.label = 1, .ncaps = 1, .caps = {ro}};
    ck_assert_int_eq(mk_call(ep, &m, 5000 * MS), MK_OK);
    ck_assert_uint_eq(m.mr[0], sum);
    int status = -1;
    ck_assert_int_eq(mk_task_wait(task, &status, 5000 * MS), MK_OK);
    ck_assert_int_eq(status, 0);
    /* The reader is gone; its copy of the capability went with it. */
    ck_assert_int_eq(mk_cap_delete(ro), MK_OK);
    ck_assert_int_eq(mk_cap_delete(shm), MK_OK);
    ck_assert_uint_eq(sim_count_objects(MK_OBJ_SHM), 0);
}
END_TEST

/* ---- A dead task's mappings go with it --------------------------------------- */

static _Atomic int mapper_spin; /* 1: the mapper keeps reading its mapping */

/* Maps the shm object it is called with, answers with the address and size,
 * then (argv[1] "spin") reads the mapping in a loop without entering the
 * kernel while mapper_spin is set, or (otherwise) blocks in mk_recv. */
static int shm_mapper(int argc, char **argv)
{
    mk_msg_t m;
    mk_recv_info_t info;
    mk_cap_t ep = lookup("ep");
    if (mk_recv(ep, &m, &info, 5000 * MS) != MK_OK || m.ncaps != 1)
        return 1;
    volatile uint8_t *p;
    size_t size;
    if (mk_shm_map(m.caps[0], MK_RIGHT_READ | MK_RIGHT_WRITE, (void **)&p, &size) != MK_OK)
        return 2;
    p[0] = 42;
    m.mr[0] = (mk_word_t)(uintptr_t)p;
    m.mr[1] = size;
    m.words = 2;
    m.ncaps = 0;
    if (mk_reply(info.reply, &m) != MK_OK)
        return 3;
    if (argc > 1 && strcmp(argv[1], "spin") == 0) {
        uint64_t sum = 0;
        while (atomic_load(&mapper_spin)) /* killed meanwhile: the mapping must stay */
            sum += p[0];
        (void)sum;
        mk_cap_t c; /* the next kernel call tells it that it is dead */
        return mk_cap_lookup("ep", &c) == MK_EDEAD ? 0 : 5;
    }
    mk_recv(ep, &m, &info, MK_FOREVER); /* until killed */
    return 4;
}

static bool mapped(const void *addr)
{
    unsigned char v;
    long page = sysconf(_SC_PAGESIZE);
    return mincore((void *)((uintptr_t)addr & ~(uintptr_t)(page - 1)), 1, &v) == 0;
}

/* Waits (bounded) until the process holds `n` mappings. */
static bool mappings_become(size_t n)
{
    for (int i = 0; i < 500 && sim_shm_mappings() != n; i++)
        usleep(10000);
    return sim_shm_mappings() == n;
}

static void *start_mapper(const char *mode, mk_cap_t *task, size_t *size)
{
    mk_cap_t ep, shm;
    ck_assert_int_eq(mk_ep_create(&ep), MK_OK);
    ck_assert_int_eq(mk_shm_create(3 * 4096, &shm), MK_OK);
    gift_t g[] = {{ep, MK_RIGHT_RECV, 0, "ep"}};
    *task = start_task("mapper", shm_mapper, g, 1, mode);
    mk_msg_t m = {.label = 1, .ncaps = 1, .caps = {shm}};
    ck_assert_int_eq(mk_call(ep, &m, 5000 * MS), MK_OK);
    ck_assert_uint_eq(m.words, 2);
    *size = m.mr[1];
    return (void *)(uintptr_t)m.mr[0];
}

START_TEST(test_dead_task_mappings_go)
{
    size_t before = sim_shm_mappings(), size;
    mk_cap_t task;
    uint8_t *p = start_mapper(NULL, &task, &size);
    ck_assert_uint_eq(sim_shm_mappings(), before + 1);
    ck_assert(mapped(p));
    ck_assert_uint_eq(p[0], 42);
    ck_assert_int_eq(mk_task_kill(task, 9), MK_OK);
    ck_assert_int_eq(mk_task_wait(task, NULL, 5000 * MS), MK_OK);
    ck_assert(mappings_become(before));
    ck_assert(!mapped(p));
}
END_TEST

START_TEST(test_dead_task_mappings_stay_while_it_runs)
{
    size_t before = sim_shm_mappings(), size;
    mk_cap_t task;
    atomic_store(&mapper_spin, 1);
    uint8_t *p = start_mapper("spin", &task, &size);
    ck_assert_int_eq(mk_task_kill(task, 9), MK_OK);
    ck_assert_int_eq(mk_task_wait(task, NULL, 5000 * MS), MK_OK);
    usleep(50000); /* its thread still reads the mapping: it must not vanish */
    ck_assert_uint_eq(sim_shm_mappings(), before + 1);
    ck_assert(mapped(p));
    atomic_store(&mapper_spin, 0);
    ck_assert(mappings_become(before));
    ck_assert(!mapped(p));
}
END_TEST

static int foreign_unmapper(int argc, char **argv)
{
    (void)argc;
    void *addr = (void *)(uintptr_t)strtoull(argv[1], NULL, 16);
    return mk_shm_unmap(addr, 4096) == MK_EINVAL ? 0 : 1;
}

START_TEST(test_unmap_only_own_mappings)
{
    mk_cap_t shm;
    ck_assert_int_eq(mk_shm_create(4096, &shm), MK_OK);
    uint8_t *p;
    size_t size;
    ck_assert_int_eq(mk_shm_map(shm, MK_RIGHT_READ | MK_RIGHT_WRITE, (void **)&p, &size), MK_OK);
    size_t n = sim_shm_mappings();
    static uint8_t not_shm[8192];
    ck_assert_int_eq(mk_shm_unmap(NULL, size), MK_EINVAL);
    ck_assert_int_eq(mk_shm_unmap(p, 0), MK_EINVAL);
    ck_assert_int_eq(mk_shm_unmap(p, size + 4096), MK_EINVAL);
    ck_assert_int_eq(mk_shm_unmap(not_shm, 4096), MK_EINVAL);
    char arg[32];
    snprintf(arg, sizeof arg, "%llx", (unsigned long long)(uintptr_t)p);
    mk_cap_t task = start_task("thief", foreign_unmapper, NULL, 0, arg);
    int status = -1;
    ck_assert_int_eq(mk_task_wait(task, &status, 5000 * MS), MK_OK);
    ck_assert_int_eq(status, 0);
    /* Nothing changed: still mapped and recorded. */
    ck_assert_uint_eq(sim_shm_mappings(), n);
    p[0] = 1;
    ck_assert_int_eq(mk_shm_unmap(p, size), MK_OK);
    ck_assert_uint_eq(sim_shm_mappings(), n - 1);
    ck_assert_int_eq(mk_shm_unmap(p, size), MK_EINVAL); /* only once */
}
END_TEST

START_TEST(test_readonly_mapping_faults)
{
    mk_cap_t shm, ro;
    ck_assert_int_eq(mk_shm_create(4096, &shm), MK_OK);
    ck_assert_int_eq(mk_cap_mint(shm, MK_RIGHT_READ, 0, &ro), MK_OK);
    volatile uint8_t *p;
    ck_assert_int_eq(mk_shm_map(ro, MK_RIGHT_READ, (void **)&p, NULL), MK_OK);
    (void)p[0];
    p[0] = 1; /* must raise SIGSEGV */
}
END_TEST

/* ---- Dead peers --------------------------------------------------------------- */

static mk_cap_t server_with_client_cap(mk_task_main_t main, mk_cap_t *client)
{
    mk_cap_t ep;
    ck_assert_int_eq(mk_ep_create(&ep), MK_OK);
    ck_assert_int_eq(mk_cap_mint(ep, MK_RIGHT_SEND, 5, client), MK_OK);
    gift_t g[] = {{ep, MK_RIGHT_RECV, 0, "ep"}};
    mk_cap_t task = start_task("server", main, g, 1, NULL);
    ck_assert_int_eq(mk_cap_delete(ep), MK_OK);
    return task;
}

START_TEST(test_dead_server)
{
    mk_cap_t cl;
    mk_cap_t task = server_with_client_cap(echo_server, &cl);
    mk_msg_t m = {.label = 1, .words = 1, .mr = {3}};
    ck_assert_int_eq(mk_call(cl, &m, 5000 * MS), MK_OK);
    ck_assert_uint_eq(m.mr[0], 6);
    m.label = 999; /* the server takes the call and exits without replying */
    uint64_t t0 = mk_time_ns();
    ck_assert_int_eq(mk_call(cl, &m, 5000 * MS), MK_EDEAD);
    ck_assert_uint_lt(mk_time_ns() - t0, 4000 * MS);
    int status = -1;
    ck_assert_int_eq(mk_task_wait(task, &status, 5000 * MS), MK_OK);
    ck_assert_int_eq(status, 7);
    /* The endpoint died with its only receiver: later calls fail at once. */
    ck_assert_int_eq(mk_call(cl, &m, 5000 * MS), MK_EDEAD);
    ck_assert_uint_eq(sim_count_objects(MK_OBJ_REPLY), 0);
}
END_TEST

/* Never receives; exits after a while. */
static int idle_then_exit(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    mk_sleep_ns(50 * MS);
    return 3;
}

START_TEST(test_dead_server_while_queued)
{
    mk_cap_t cl;
    mk_cap_t task = server_with_client_cap(idle_then_exit, &cl);
    mk_msg_t m = {.label = 1};
    ck_assert_int_eq(mk_call(cl, &m, 5000 * MS), MK_EDEAD);
    int status = -1;
    ck_assert_int_eq(mk_task_wait(task, &status, 5000 * MS), MK_OK);
    ck_assert_int_eq(status, 3);
}
END_TEST

/* A client task whose second thread ends the task while the first is
 * blocked in a call. */
static void exit_soon(void *p)
{
    (void)p;
    mk_sleep_ns(30 * MS);
    mk_task_exit(11);
}

static int dying_client(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    uint32_t tid;
    mk_thread_create(exit_soon, NULL, &tid);
    mk_msg_t m = {.label = 1};
    mk_err_t e = mk_call(lookup("ep"), &m, 5000 * MS);
    /* The task died under us: the call ends with MK_EDEAD. */
    return e == MK_EDEAD ? 0 : 100;
}

START_TEST(test_dead_client)
{
    mk_cap_t ep;
    ck_assert_int_eq(mk_ep_create(&ep), MK_OK);
    gift_t g[] = {{ep, MK_RIGHT_SEND, 8, "ep"}};
    mk_cap_t task = start_task("client", dying_client, g, 1, NULL);
    mk_msg_t m;
    mk_recv_info_t info;
    ck_assert_int_eq(mk_recv(ep, &m, &info, 5000 * MS), MK_OK);
    ck_assert_uint_eq(info.badge, 8);
    int status = -1;
    ck_assert_int_eq(mk_task_wait(task, &status, 5000 * MS), MK_OK);
    ck_assert_int_eq(status, 11);
    /* The server holds a reply for a dead caller. */
    ck_assert_int_eq(mk_reply(info.reply, &m), MK_EDEAD);
    ck_assert_uint_eq(sim_count_objects(MK_OBJ_REPLY), 0);
}
END_TEST

START_TEST(test_malformed_reply_ends_the_call)
{
    /* A reply with too many words: the server gets MK_EINVAL, the reply
     * capability is gone, and the caller's call ends with MK_EINVAL. */
    mk_cap_t ep;
    ck_assert_int_eq(mk_ep_create(&ep), MK_OK);
    for (int variant = 0; variant < 2; variant++) {
        caller_arg_t a = {.ep = ep};
        uint32_t tid;
        ck_assert_int_eq(mk_thread_create(caller_thread, &a, &tid), MK_OK);
        mk_msg_t m;
        mk_recv_info_t info;
        ck_assert_int_eq(mk_recv(ep, &m, &info, 5000 * MS), MK_OK);
        m.words = MK_MSG_WORDS + 1;
        if (variant == 0) {
            ck_assert_int_eq(mk_reply(info.reply, &m), MK_EINVAL);
        } else {
            /* reply-and-receive: the receive still happens (and times out). */
            ck_assert_int_eq(mk_reply_recv(ep, info.reply, &m, &info, 10 * MS), MK_ETIMEDOUT);
        }
        ck_assert_int_eq(mk_thread_join(tid), MK_OK);
        ck_assert_int_eq(a.err, MK_EINVAL);
        ck_assert_uint_eq(sim_count_objects(MK_OBJ_REPLY), 0);
    }
}
END_TEST

START_TEST(test_dropped_reply_cap)
{
    /* A server that deletes a reply capability unanswered: the caller is
     * told, rather than waiting forever. */
    mk_cap_t ep;
    ck_assert_int_eq(mk_ep_create(&ep), MK_OK);
    caller_arg_t a = {.ep = ep};
    uint32_t tid;
    ck_assert_int_eq(mk_thread_create(caller_thread, &a, &tid), MK_OK);
    mk_msg_t m;
    mk_recv_info_t info;
    ck_assert_int_eq(mk_recv(ep, &m, &info, 5000 * MS), MK_OK);
    ck_assert_int_eq(mk_cap_delete(info.reply), MK_OK);
    ck_assert_int_eq(mk_thread_join(tid), MK_OK);
    ck_assert_int_eq(a.err, MK_EDEAD);
}
END_TEST

/* ---- Many clients ------------------------------------------------------------ */

#define NCLIENTS 12
#define NCALLS 2000

static int counting_client(int argc, char **argv)
{
    int id = argc > 1 ? atoi(argv[1]) : 0;
    mk_cap_t ep = lookup("ep");
    for (int i = 0; i < NCALLS; i++) {
        mk_msg_t m = {.label = (uint32_t)id, .words = 2, .mr = {(mk_word_t)id, (mk_word_t)i}};
        if (mk_call(ep, &m, 10000 * MS) != MK_OK)
            return 1;
        if (m.mr[0] != (mk_word_t)id * 2 || m.mr[1] != (mk_word_t)i * 2 || m.mr[2] != (mk_word_t)id + 100)
            return 2; /* someone else's reply */
    }
    return 0;
}

START_TEST(test_many_clients)
{
    mk_cap_t ep;
    ck_assert_int_eq(mk_ep_create(&ep), MK_OK);
    gift_t gs[] = {{ep, MK_RIGHT_RECV, 0, "ep"}};
    mk_cap_t server = start_task("server", echo_server, gs, 1, NULL);
    mk_cap_t tasks[NCLIENTS];
    for (int i = 0; i < NCLIENTS; i++) {
        char name[16], arg[16];
        snprintf(name, sizeof name, "client%d", i);
        snprintf(arg, sizeof arg, "%d", i);
        gift_t g[] = {{ep, MK_RIGHT_SEND, (mk_badge_t)i + 100, "ep"}};
        tasks[i] = start_task(name, counting_client, g, 1, arg);
    }
    for (int i = 0; i < NCLIENTS; i++) {
        int status = -1;
        ck_assert_int_eq(mk_task_wait(tasks[i], &status, 60000 * MS), MK_OK);
        ck_assert_int_eq(status, 0);
    }
    ck_assert_int_eq(mk_cap_delete(ep), MK_OK);
    ck_assert_int_eq(mk_task_wait(server, NULL, 0), MK_ETIMEDOUT); /* still serving nobody */
}
END_TEST

/* ---- Tasks and threads ------------------------------------------------------ */

static void add_one(void *p)
{
    __atomic_fetch_add((int *)p, 1, __ATOMIC_SEQ_CST);
}

START_TEST(test_threads_and_tasks)
{
    int counter = 0;
    uint32_t tids[8];
    for (int i = 0; i < 8; i++)
        ck_assert_int_eq(mk_thread_create(add_one, &counter, &tids[i]), MK_OK);
    for (int i = 0; i < 8; i++)
        ck_assert_int_eq(mk_thread_join(tids[i]), MK_OK);
    ck_assert_int_eq(counter, 8);
    ck_assert_int_eq(mk_thread_join(tids[0]), MK_EINVAL);
    ck_assert_str_eq(mk_task_name(), "init");
    mk_cap_t t;
    ck_assert_int_eq(mk_task_create("", &t), MK_EINVAL);
    ck_assert_int_eq(mk_task_create("a-name-that-is-far-too-long-for-a-task", &t), MK_EINVAL);
    ck_assert_int_eq(mk_task_create("ok", &t), MK_OK);
    mk_cap_t ep;
    ck_assert_int_eq(mk_ep_create(&ep), MK_OK);
    ck_assert_int_eq(mk_task_give(t, ep, MK_RIGHT_SEND, 0, "x", NULL), MK_OK);
    ck_assert_int_eq(mk_task_give(t, ep, MK_RIGHT_SEND, 0, "x", NULL), MK_EBUSY);
    ck_assert_int_eq(mk_task_give(ep, ep, MK_RIGHT_SEND, 0, "y", NULL), MK_ETYPE);
    ck_assert_int_eq(mk_task_start(t, NULL, 0, NULL), MK_EINVAL);
}
END_TEST

/* ---- A separate process attaches as a task --------------------------------- */

static char sock_path[108];

static pid_t spawn_child(const char *mode)
{
    const char *child = getenv("FERRY_ATTACH_CHILD");
    ck_assert_msg(child != NULL, "FERRY_ATTACH_CHILD not set");
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        execl(child, child, sock_path, "ext", mode, (char *)NULL);
        _exit(127);
    }
    return pid;
}

static mk_cap_t external_setup(mk_cap_t *ep, mk_cap_t *shm)
{
    snprintf(sock_path, sizeof sock_path, "/tmp/ferry-test-%d.sock", (int)getpid());
    ck_assert_int_eq(sim_listen(sock_path), MK_OK);
    mk_cap_t task;
    ck_assert_int_eq(sim_task_create_external("ext", &task), MK_OK);
    ck_assert_int_eq(mk_ep_create(ep), MK_OK);
    ck_assert_int_eq(mk_shm_create(65536, shm), MK_OK);
    ck_assert_int_eq(mk_task_give(task, *ep, MK_RIGHT_SEND, 77, "ep", NULL), MK_OK);
    ck_assert_int_eq(mk_task_give(task, *shm, MK_RIGHT_READ | MK_RIGHT_WRITE, 0, "shm", NULL), MK_OK);
    return task;
}

START_TEST(test_attach_process)
{
    mk_cap_t ep, shm;
    mk_cap_t task = external_setup(&ep, &shm);
    uint8_t *p;
    size_t size;
    ck_assert_int_eq(mk_shm_map(shm, MK_RIGHT_READ, (void **)&p, &size), MK_OK);
    pid_t pid = spawn_child("echo");
    /* The child writes a pattern into the shared memory and calls us with
     * its sum; we answer with our own sum of the same memory. */
    for (int round = 0; round < 3; round++) {
        mk_msg_t m;
        mk_recv_info_t info;
        ck_assert_int_eq(mk_recv(ep, &m, &info, 10000 * MS), MK_OK);
        ck_assert_uint_eq(info.badge, 77);
        mk_word_t sum = 0;
        for (size_t i = 0; i < size; i++)
            sum += p[i];
        ck_assert_uint_eq(m.mr[0], sum);
        m.mr[0] = sum + 1;
        ck_assert_int_eq(mk_reply(info.reply, &m), MK_OK);
    }
    int ws;
    ck_assert_int_eq(waitpid(pid, &ws, 0), pid);
    ck_assert(WIFEXITED(ws));
    ck_assert_int_eq(WEXITSTATUS(ws), 0);
    int status = 1;
    ck_assert_int_eq(mk_task_wait(task, &status, 5000 * MS), MK_OK);
    unlink(sock_path);
}
END_TEST

START_TEST(test_attached_client_killed)
{
    mk_cap_t ep, shm;
    mk_cap_t task = external_setup(&ep, &shm);
    pid_t pid = spawn_child("call-and-hang");
    mk_msg_t m;
    mk_recv_info_t info;
    /* Its first call says hello; the second it makes and then hangs in. */
    ck_assert_int_eq(mk_recv(ep, &m, &info, 10000 * MS), MK_OK);
    ck_assert_int_eq(mk_reply(info.reply, &m), MK_OK);
    ck_assert_int_eq(mk_recv(ep, &m, &info, 10000 * MS), MK_OK);
    kill(pid, SIGKILL);
    ck_assert_int_eq(waitpid(pid, NULL, 0), pid);
    ck_assert_int_eq(mk_task_wait(task, NULL, 5000 * MS), MK_OK);
    ck_assert_int_eq(mk_reply(info.reply, &m), MK_EDEAD);
    unlink(sock_path);
}
END_TEST

START_TEST(test_attached_server_killed)
{
    mk_cap_t ep, shm, task;
    snprintf(sock_path, sizeof sock_path, "/tmp/ferry-test-%d.sock", (int)getpid());
    ck_assert_int_eq(sim_listen(sock_path), MK_OK);
    ck_assert_int_eq(sim_task_create_external("ext", &task), MK_OK);
    ck_assert_int_eq(mk_ep_create(&ep), MK_OK);
    ck_assert_int_eq(mk_shm_create(4096, &shm), MK_OK);
    ck_assert_int_eq(mk_task_give(task, ep, MK_RIGHT_RECV, 0, "ep", NULL), MK_OK);
    mk_cap_t cl;
    ck_assert_int_eq(mk_cap_mint(ep, MK_RIGHT_SEND, 3, &cl), MK_OK);
    ck_assert_int_eq(mk_cap_delete(ep), MK_OK);
    pid_t pid = spawn_child("serve-once-then-hang");
    mk_msg_t m = {.label = 1, .words = 1, .mr = {21}};
    ck_assert_int_eq(mk_call(cl, &m, 10000 * MS), MK_OK);
    ck_assert_uint_eq(m.mr[0], 42);
    /* The child takes the next call and hangs; we kill it while we wait. */
    if (fork() == 0) {
        usleep(100000);
        kill(pid, SIGKILL);
        _exit(0);
    }
    m.label = 2;
    ck_assert_int_eq(mk_call(cl, &m, 10000 * MS), MK_EDEAD);
    waitpid(pid, NULL, 0);
    unlink(sock_path);
}
END_TEST

START_TEST(test_attached_fd_cache_is_per_object)
{
    /* An attached process maps object X, which is then freed; a new object
     * Y lands in X's slot. The process must see Y's bytes, never X's. */
    mk_cap_t ep, x;
    mk_cap_t task = external_setup(&ep, &x);
    uint32_t slot = sim_cap_object_index(x);
    ck_assert_uint_ne(slot, 0);
    pid_t pid = spawn_child("stale-cache");
    mk_msg_t m;
    mk_recv_info_t info;
    ck_assert_int_eq(mk_recv(ep, &m, &info, 10000 * MS), MK_OK); /* it wrote AAAA and let go */
    ck_assert_int_eq(mk_cap_delete(x), MK_OK);                   /* X is gone */
    mk_cap_t y = MK_CAP_NULL;
    for (int i = 0; i < 3 * 8192 && y == MK_CAP_NULL; i++) {
        mk_cap_t c;
        ck_assert_int_eq(mk_shm_create(4096, &c), MK_OK);
        if (sim_cap_object_index(c) == slot)
            y = c;
        else
            mk_cap_delete(c);
    }
    ck_assert_msg(y != MK_CAP_NULL, "slot %u was never reused", slot);
    char *p;
    ck_assert_int_eq(mk_shm_map(y, MK_RIGHT_READ | MK_RIGHT_WRITE, (void **)&p, NULL), MK_OK);
    memcpy(p, "BBBB", 4);
    m = (mk_msg_t){.label = 0, .ncaps = 1, .caps = {y}};
    ck_assert_int_eq(mk_reply(info.reply, &m), MK_OK);
    ck_assert_int_eq(mk_recv(ep, &m, &info, 10000 * MS), MK_OK);
    ck_assert_int_eq(memcmp(&m.mr[0], "BBBB", 4), 0);
    ck_assert_int_eq(mk_reply(info.reply, &m), MK_OK);
    int ws;
    ck_assert_int_eq(waitpid(pid, &ws, 0), pid);
    ck_assert_int_eq(WEXITSTATUS(ws), 0);
    ck_assert_int_eq(mk_task_wait(task, NULL, 5000 * MS), MK_OK);
    unlink(sock_path);
}
END_TEST

START_TEST(test_attach_refused)
{
    snprintf(sock_path, sizeof sock_path, "/tmp/ferry-test-%d.sock", (int)getpid());
    ck_assert_int_eq(sim_listen(sock_path), MK_OK);
    /* No external task named "ext": the child's attach fails cleanly. */
    pid_t pid = spawn_child("echo");
    int ws;
    ck_assert_int_eq(waitpid(pid, &ws, 0), pid);
    ck_assert(WIFEXITED(ws));
    ck_assert_int_eq(WEXITSTATUS(ws), 3);
    unlink(sock_path);
}
END_TEST


/* ---- Death notices ------------------------------------------------------------ */

static int quick_exit_client(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    return 0; /* dies at once, holding its badged send capabilities */
}

START_TEST(test_death_notices)
{
    mk_cap_t ep, nt, nt_sig, send_only;
    ck_assert_int_eq(mk_ep_create(&ep), MK_OK);
    ck_assert_int_eq(mk_ntfn_create(&nt), MK_OK);
    ck_assert_int_eq(mk_cap_mint(nt, MK_RIGHT_SEND, 0x10, &nt_sig), MK_OK);
    ck_assert_int_eq(mk_cap_mint(ep, MK_RIGHT_SEND, 0, &send_only), MK_OK);
    /* Rights: RECV on the endpoint, SEND on the notification. */
    ck_assert_int_eq(mk_ep_death_ntfn(send_only, nt_sig), MK_ERIGHTS);
    ck_assert_int_eq(mk_ep_death_ntfn(ep, ep), MK_ETYPE);
    ck_assert_int_eq(mk_ep_death_ntfn(ep, nt_sig), MK_OK);
    mk_badge_t b[8];
    uint32_t n = 99;
    ck_assert_int_eq(mk_ep_dead_badges(ep, b, 8, &n), MK_OK);
    ck_assert_uint_eq(n, 0);
    /* Two clients with badges 5 and 6 die; one unbadged client dies too
     * (not reported: it cannot be told apart). */
    mk_cap_t t5, t6, t0;
    gift_t g5[] = {{ep, MK_RIGHT_SEND, 5, "ep"}, {ep, MK_RIGHT_SEND, 5, "ep2"}};
    gift_t g6[] = {{ep, MK_RIGHT_SEND, 6, "ep"}};
    gift_t g0[] = {{send_only, MK_RIGHT_SEND, 0, "ep"}};
    t5 = start_task("c5", quick_exit_client, g5, 2, NULL);
    t6 = start_task("c6", quick_exit_client, g6, 1, NULL);
    t0 = start_task("c0", quick_exit_client, g0, 1, NULL);
    ck_assert_int_eq(mk_task_wait(t5, NULL, 5000 * MS), MK_OK);
    ck_assert_int_eq(mk_task_wait(t6, NULL, 5000 * MS), MK_OK);
    ck_assert_int_eq(mk_task_wait(t0, NULL, 5000 * MS), MK_OK);
    mk_word_t bits;
    ck_assert_int_eq(mk_wait(nt, &bits, 5000 * MS), MK_OK);
    ck_assert_uint_eq(bits, 0x10);
    ck_assert_int_eq(mk_ep_dead_badges(ep, b, 1, &n), MK_OK);
    ck_assert_uint_eq(n, 1);
    mk_badge_t first = b[0];
    ck_assert_int_eq(mk_ep_dead_badges(ep, b, 8, &n), MK_OK);
    ck_assert_uint_eq(n, 1);
    ck_assert_uint_eq(first + b[0], 11); /* 5 and 6, once each */
    ck_assert_uint_ne(first, b[0]);
    ck_assert_int_eq(mk_ep_dead_badges(ep, b, 8, &n), MK_OK);
    ck_assert_uint_eq(n, 0);
    ck_assert_int_eq(mk_ep_dead_badges(nt, b, 8, &n), MK_ETYPE);
    ck_assert_int_eq(mk_ep_dead_badges(ep, NULL, 8, &n), MK_EINVAL);
    /* Unregistered: a later death is not queued. */
    ck_assert_int_eq(mk_ep_death_ntfn(ep, MK_CAP_NULL), MK_OK);
    gift_t g7[] = {{ep, MK_RIGHT_SEND, 7, "ep"}};
    mk_cap_t t7 = start_task("c7", quick_exit_client, g7, 1, NULL);
    ck_assert_int_eq(mk_task_wait(t7, NULL, 5000 * MS), MK_OK);
    ck_assert_int_eq(mk_ep_dead_badges(ep, b, 8, &n), MK_OK);
    ck_assert_uint_eq(n, 0);
    ck_assert_int_eq(mk_wait(nt, &bits, MK_NOWAIT), MK_ETIMEDOUT);
}
END_TEST

START_TEST(test_attached_process_death_notice)
{
    mk_cap_t ep, shm, nt;
    mk_cap_t task = external_setup(&ep, &shm); /* gives "ext" ep with badge 77 */
    ck_assert_int_eq(mk_ntfn_create(&nt), MK_OK);
    ck_assert_int_eq(mk_ep_death_ntfn(ep, nt), MK_OK);
    pid_t pid = spawn_child("call-and-hang");
    mk_msg_t m;
    mk_recv_info_t info;
    ck_assert_int_eq(mk_recv(ep, &m, &info, 10000 * MS), MK_OK);
    ck_assert_int_eq(mk_reply(info.reply, &m), MK_OK);
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    mk_word_t bits;
    ck_assert_int_eq(mk_wait(nt, &bits, 5000 * MS), MK_OK);
    mk_badge_t b[4];
    uint32_t n;
    ck_assert_int_eq(mk_ep_dead_badges(ep, b, 4, &n), MK_OK);
    ck_assert_uint_eq(n, 1);
    ck_assert_uint_eq(b[0], 77);
    ck_assert_int_eq(mk_task_wait(task, NULL, 5000 * MS), MK_OK);
    unlink(sock_path);
}
END_TEST

static Suite *kernel_suite(void)
{
    Suite *s = suite_create("kernel");
    TCase *tc = tcase_create("ipc");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_call_reply);
    tcase_add_test(tc, test_send_and_recv);
    tcase_add_test(tc, test_send_delivered);
    tcase_add_test(tc, test_timeouts);
    tcase_add_test(tc, test_call_timeout_in_reply_phase);
    tcase_add_test(tc, test_wrong_capabilities);
    tcase_add_test(tc, test_deferred_reply);
    tcase_add_test(tc, test_notifications);
    tcase_add_test(tc, test_notification_wakes_waiter_and_bound_receiver);
    tcase_add_test(tc, test_shm_and_cap_transfer);
    tcase_add_test_raise_signal(tc, test_readonly_mapping_faults, SIGSEGV);
    tcase_add_test(tc, test_dead_server);
    tcase_add_test(tc, test_dead_server_while_queued);
    tcase_add_test(tc, test_dead_client);
    tcase_add_test(tc, test_dropped_reply_cap);
    tcase_add_test(tc, test_malformed_reply_ends_the_call);
    tcase_add_test(tc, test_many_clients);
    tcase_add_test(tc, test_threads_and_tasks);
    tcase_add_test(tc, test_death_notices);
    tcase_add_test(tc, test_dead_task_mappings_go);
    tcase_add_test(tc, test_dead_task_mappings_stay_while_it_runs);
    tcase_add_test(tc, test_unmap_only_own_mappings);
    suite_add_tcase(s, tc);
    TCase *ta = tcase_create("attach");
    tcase_add_checked_fixture(ta, setup, teardown);
    tcase_set_timeout(ta, 60);
    tcase_add_test(ta, test_attach_process);
    tcase_add_test(ta, test_attached_client_killed);
    tcase_add_test(ta, test_attached_server_killed);
    tcase_add_test(ta, test_attach_refused);
    tcase_add_test(ta, test_attached_fd_cache_is_per_object);
    tcase_add_test(ta, test_attached_process_death_notice);
    suite_add_tcase(s, ta);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(kernel_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}

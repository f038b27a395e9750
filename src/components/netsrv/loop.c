/*
 * loop.c - netsrv's event loop: one thread, one blocking call.
 *
 *   for (;;) {
 *       work():  note which NICs signalled; death notices (socket clients)
 *                per NIC: tx_reclaim, rx_drain (at most NETSRV_RX_BUDGET frames)
 *                socket doorbells: RX credit and refill, TX rings -> lwIP
 *                netif_poll_all()        packets lwIP looped back to itself
 *                sys_check_timeouts()    lwIP's timers (TCP, ARP, DHCP, ND6, ping;
 *                                        the NIC drivers' idle probe, nic.c)
 *                signal socket clients with new ready bits (if they asked)
 *                per NIC: flush TX (one publish, at most one signal)
 *                -> how long the thread may sleep:
 *                   0        more RX waiting, looped packets queued, a NIC's
 *                            rx_active filled while re-arming its signal, or a
 *                            socket doorbell rang while re-arming
 *                            (sock_prepare_sleep)
 *                   else     time to lwIP's next timer (sys_timeouts_sleeptime),
 *                            or for ever if there is none
 *       mk_reply_recv(ep, reply, timeout)   answer the last request, then wait for
 *                the next request, a NIC signal (the notification bound to this
 *                thread) or the timeout
 *       probe the NIC drivers if the last probe is 0.5 s old (nic.c)
 *       request -> dispatch by interface hash (netsrv.idl, sock.idl) -> the
 *                reply goes out with the next mk_reply_recv;
 *                deferred methods keep their reply capability instead
 *   }
 *
 * An idle netsrv sleeps for ever: lwIP's cyclic timers run only while they
 * have work (src/lwip/timers.c), and the drivers are probed when the loop
 * wakes anyway, by a timer only every 10 s while nothing happens (nic.c).
 *
 * Nothing in the loop blocks except mk_reply_recv, so a slow client or a
 * stuck driver never stalls the others. The re-arm before sleeping
 * (ring_cons_prepare_sleep) follows docs/rings.md: a frame that arrives
 * between the last drain and the sleep either is seen by the re-check or
 * makes the driver signal, and notification bits are sticky, so no wake-up
 * is lost.
 */
#include "lwip/netif.h"
#include "lwip/timeouts.h"
#include "netsrv_priv.h"

int netsrv_service_add(netsrv_t *s, uint64_t hash, netsrv_dispatch_fn_t dispatch, void *ctx)
{
    if (s->nservices == NETSRV_SERVICES_MAX)
        return -1;
    s->services[s->nservices++] =
        (netsrv_service_t){.hash = hash, .dispatch = dispatch, .ctx = ctx};
    return 0;
}

/* A request goes to the service whose interface hash it carries; anything
 * else gets netsrv.idl's answer to a wrong hash (IDL_EHASH), from the first
 * service's dispatcher. */
static mk_cap_t serve(netsrv_t *s, const mk_recv_info_t *info, mk_msg_t *msg)
{
    if (msg->words > 0)
        for (unsigned i = 0; i < s->nservices; i++)
            if (s->services[i].hash == msg->mr[0])
                return s->services[i].dispatch(s->services[i].ctx, info, msg);
    return s->services[0].dispatch(s->services[0].ctx, info, msg);
}

static void account_signals(netsrv_t *s)
{
    mk_word_t bits = netsrv_sock_signals(s, s->pending);
    s->pending = 0;
    for (unsigned i = 0; i < s->nnics; i++)
        if (bits & ((mk_word_t)1 << i)) {
            s->nics[i]->counters.signals_in++;
            bits &= ~((mk_word_t)1 << i);
        }
    for (; bits != 0; bits &= bits - 1)
        s->loop.stray_signals++;
}

static bool loopback_pending(void)
{
    struct netif *netif;
    NETIF_FOREACH(netif)
    {
        if (netif->loop_first != NULL)
            return true;
    }
    return false;
}

void netsrv_loop_relieve(void)
{
    struct netif *netif;
    NETIF_FOREACH(netif)
    {
        if (netif->loop_cnt_current >= LWIP_LOOPBACK_MAX_PBUFS / 4)
            netif_poll(netif);
    }
}

/* Deliver what lwIP looped back now, for at most `rounds` rounds (each
 * may loop back answers: a local TCP handshake takes three), instead of
 * one round per turn of the loop. */
void netsrv_loop_settle(unsigned rounds)
{
    for (unsigned r = 0; r < rounds && loopback_pending(); r++)
        netif_poll_all();
}

/* Everything that is due; returns how long the loop may then sleep. */
static uint64_t work(netsrv_t *s)
{
    bool busy = false;
    account_signals(s);
    for (unsigned i = 0; i < s->nnics; i++) {
        uint32_t taken = netsrv_nic_poll(s->nics[i]);
        if (taken > s->loop.max_rx_batch)
            s->loop.max_rx_batch = taken;
        busy |= taken == NETSRV_RX_BUDGET;
    }
    busy |= netsrv_sock_work(s);
    netif_poll_all();
    sys_check_timeouts();
    netsrv_sock_flush(s);
    for (unsigned i = 0; i < s->nnics; i++)
        netsrv_nic_flush(s->nics[i]);
    if (busy || loopback_pending())
        return MK_NOWAIT;
    for (unsigned i = 0; i < s->nnics; i++)
        if (!netsrv_nic_prepare_sleep(s->nics[i]))
            return MK_NOWAIT;
    if (!netsrv_sock_prepare_sleep(s))
        return MK_NOWAIT;
    u32_t ms = sys_timeouts_sleeptime();
    return ms == SYS_TIMEOUTS_SLEEPTIME_INFINITE ? MK_FOREVER : (uint64_t)ms * 1000000u;
}

int netsrv_loop_run(netsrv_t *s)
{
    mk_msg_t msg;
    mk_recv_info_t info;
    mk_cap_t reply = MK_CAP_NULL;
    for (;;) {
        uint64_t timeout = work(s);
        s->loop.iterations++;
        if (timeout == MK_FOREVER)
            s->loop.idle_waits++;
        mk_err_t err = mk_reply_recv(s->ep, reply, &msg, &info, timeout);
        reply = MK_CAP_NULL;
        if (err != MK_OK && err != MK_ETIMEDOUT) {
            mk_log("stopping: receive on the service endpoint failed: %s", mk_strerror(err));
            return err == MK_EDEAD ? 0 : 1;
        }
        netsrv_nic_watch(s); /* before a request can see a dead driver's interface */
        if (err == MK_ETIMEDOUT) {
            if (timeout != MK_NOWAIT)
                s->loop.timer_wakeups++;
            continue;
        }
        if (info.notification) {
            s->loop.notifications++;
            s->pending |= info.badge;
            continue;
        }
        s->loop.requests++;
        reply = serve(s, &info, &msg);
    }
}

/*
 * timers.c - lwIP's timers for Ferry (LWIP_TIMERS_CUSTOM, lwipopts.h):
 * one-shot timeouts (sys_timeout) as lwIP's timeouts.c has them, and lwIP's
 * cyclic timers run only while they have work.
 *
 * lwIP's own timeouts.c starts every cyclic timer in lwip_init() and runs it
 * for ever: IGMP and MLD every 100 ms, DHCP every 500 ms, ARP, ND6 and both
 * reassemblies every second, whether or not anything is there to time. A
 * NO_SYS loop that sleeps until the next timer (netsrv) then wakes 10-20
 * times a second with nothing to do. Here each cyclic timer has a test of
 * whether its handler would change anything, read from lwIP's own state,
 * and runs only while it would:
 *
 *   handler        runs at its interval while              ages only (slowly) while
 *   tcp_tmr        active or TIME-WAIT PCBs exist (lwIP's own rule)
 *   ip_reass_tmr   IPv4 fragments wait for reassembly
 *   etharp_tmr     ARP sent a request within its last       stable entries exist
 *                  ARP_MAXPENDING ticks (pending entries,
 *                  re-requests)
 *   dhcp_coarse    a lease is timed (T0, T1, T2)
 *   dhcp_fine      a request or an ARP check waits
 *   igmp_tmr       a group's report delay runs
 *   nd6_tmr        address resolution, unreachability      reachable neighbours, routers,
 *                  probes, DAD, router solicitations       prefixes, address lifetimes
 *   ip6_reass_tmr  IPv6 fragments wait for reassembly
 *   mld6_tmr       a group's report delay runs
 *   any other      always, as in lwIP
 *
 * Ageing. ARP entries live 5 minutes, a reachable neighbour 30 s, prefixes,
 * routers and SLAAC addresses minutes to days: counting those down needs no
 * tick per second. While that is all a timer has to do, it fires every
 * FERRY_TIMERS_AGE_PERIOD_MS (10 s) and calls its handler once per interval
 * that passed, so every age moves as in lwIP, in steps of 10 s instead of
 * 1 s (an entry may expire up to 10 s early or late). The handler is safe
 * to call several times in a row only while nothing but ageing is due (a
 * pending ARP entry would send its retries at once and expire early), so
 * when work appears during a period the ticks that period owes are kept and
 * paid when only ageing is left again. Ageing timers fire on multiples of
 * 10 s of sys_now(), so ARP and ND6 share their wake-ups.
 *
 * ARP keeps its table private, and lwIP offers no view of pending entries,
 * only of stable ones (etharp_get_entry). Every pending entry starts with a
 * request, and every re-request of a stable entry is a request too: both
 * count in lwIP's etharp.xmit statistic (or in etharp.memerr if no pbuf
 * could be had). So a change in those counts marks ARP busy for
 * ARP_MAXPENDING ticks, by which time a pending entry has resolved or been
 * freed and a re-requesting one is stable again. Replies count too, which
 * only costs a few ticks more than needed.
 *
 * When the test runs. Every sys_timeouts_sleeptime() (the loop is about to
 * sleep: whatever lwIP did this turn is done) and in sys_check_timeouts()
 * at most once per millisecond (a loop that never sleeps still starts the
 * timers work needs: a TCP retransmission, a DHCP retry). A timer running
 * at its interval is tested again when it fires (so it stops one interval
 * after its work is gone); an ageing or stopped one at every test.
 *
 * Timing as in lwIP: a timer fires every interval while it runs, and late
 * firings do not pile up (an overloaded loop skips ticks, as lwIP's cyclic
 * timers do). lwIP's timer phase has no relation to when work appears (a
 * delay of n ticks lasts between n - 1 and n intervals); here a stopped
 * timer starts one interval after its work appears, within that range.
 *
 * Single-threaded, as all of lwIP here: every entry point checks
 * LWIP_ASSERT_CORE_LOCKED(). MEMP_NUM_SYS_TIMEOUT bounds the one-shot
 * timeouts; the cyclic timers have their own slots.
 */
#include <stdbool.h>
#include <string.h>

#include "lwip/opt.h"

#include "ferry_timers.h"
#include "lwip/def.h"
#include "lwip/dhcp.h"
#include "lwip/etharp.h"
#include "lwip/igmp.h"
#include "lwip/ip4_frag.h"
#include "lwip/ip6_frag.h"
#include "lwip/memp.h"
#include "lwip/mld6.h"
#include "lwip/nd6.h"
#include "lwip/netif.h"
#include "lwip/pbuf.h"
#include "lwip/priv/nd6_priv.h"
#include "lwip/priv/tcp_priv.h"
#include "lwip/prot/dhcp.h"
#include "lwip/stats.h"
#include "lwip/sys.h"
#include "lwip/timeouts.h"
#include "netif/ppp/ppp_opts.h" /* PPP_NUM_TIMEOUTS, in LWIP_NUM_SYS_TIMEOUT_INTERNAL */

#if !LWIP_TIMERS || !LWIP_TIMERS_CUSTOM || !NO_SYS
#error "timers.c is lwIP's timer implementation for NO_SYS with LWIP_TIMERS_CUSTOM (lwipopts.h)"
#endif
#if !MEMP_STATS
#error "timers.c tells from MEMP_STATS whether fragments wait for reassembly"
#endif
#if LWIP_IPV4 && LWIP_ARP && !ETHARP_STATS
#error "timers.c tells from ETHARP_STATS whether ARP sent requests"
#endif

/* a is earlier than b, on sys_now()'s wrapping millisecond clock */
static bool before(u32_t a, u32_t b)
{
    return (s32_t)(a - b) < 0;
}

/* ---- One-shot timeouts and the list ----------------------------------------------------- */

/* Every armed timer, one-shot or cyclic, sorted by time (equal times in the
 * order they were added). */
static struct sys_timeo *next_timeout;
static struct sys_timeo pool[MEMP_NUM_SYS_TIMEOUT];
static struct sys_timeo *pool_free;

static void list_insert(struct sys_timeo *t)
{
    struct sys_timeo **pp = &next_timeout;
    while (*pp != NULL && !before(t->time, (*pp)->time))
        pp = &(*pp)->next;
    t->next = *pp;
    *pp = t;
}

static void list_remove(struct sys_timeo *t)
{
    for (struct sys_timeo **pp = &next_timeout; *pp != NULL; pp = &(*pp)->next)
        if (*pp == t) {
            *pp = t->next;
            return;
        }
}

#if LWIP_DEBUG_TIMERNAMES
void sys_timeout_debug(u32_t msecs, sys_timeout_handler handler, void *arg, const char *handler_name)
#else
void sys_timeout(u32_t msecs, sys_timeout_handler handler, void *arg)
#endif
{
    LWIP_ASSERT_CORE_LOCKED();
    LWIP_ASSERT("Timeout time too long, max is LWIP_UINT32_MAX/4 msecs",
                msecs <= (LWIP_UINT32_MAX / 4));
    struct sys_timeo *t = pool_free;
    LWIP_ASSERT("sys_timeout: no free timeout (MEMP_NUM_SYS_TIMEOUT)", t != NULL);
    if (t == NULL)
        return;
    pool_free = t->next;
    t->h = handler;
    t->arg = arg;
    t->time = sys_now() + msecs;
#if LWIP_DEBUG_TIMERNAMES
    t->handler_name = handler_name;
#endif
    list_insert(t);
}

/* Cancel the first pending timeout with this handler and argument. */
void sys_untimeout(sys_timeout_handler handler, void *arg)
{
    LWIP_ASSERT_CORE_LOCKED();
    for (struct sys_timeo **pp = &next_timeout; *pp != NULL; pp = &(*pp)->next) {
        struct sys_timeo *t = *pp;
        if (t->h == handler && t->arg == arg) {
            *pp = t->next;
            t->next = pool_free;
            pool_free = t;
            return;
        }
    }
}

/* ---- What each cyclic timer has to do --------------------------------------------------- */

typedef enum need {
    NEED_NONE, /* the handler would change nothing */
    NEED_AGE,  /* it would only count down ages and lifetimes */
    NEED_WORK, /* it has to run at its interval */
} need_t;

#if LWIP_TCP
static need_t tcp_need(void)
{
    return tcp_active_pcbs != NULL || tcp_tw_pcbs != NULL ? NEED_WORK : NEED_NONE;
}
#endif

#if LWIP_IPV4 && IP_REASSEMBLY
static need_t ip_reass_need(void)
{
    return lwip_stats.memp[MEMP_REASSDATA]->used > 0 ? NEED_WORK : NEED_NONE;
}
#endif

#if LWIP_IPV4 && LWIP_ARP
/* etharp.c's ARP_MAXPENDING (private there): a pending entry is retried at
 * every tick and freed at its fifth. */
#define ARP_PENDING_TICKS 5u

static u32_t arp_seen; /* ARP's requests (and failures to send one) when last looked at */
static u32_t arp_busy; /* ticks that may still find a pending or re-requesting entry */

static void arp_look(void)
{
    u32_t sent = (u32_t)(lwip_stats.etharp.xmit + lwip_stats.etharp.memerr);
    if (sent != arp_seen) {
        arp_seen = sent;
        arp_busy = ARP_PENDING_TICKS;
    }
}

static need_t arp_need(void)
{
    arp_look();
    if (arp_busy > 0)
        return NEED_WORK;
    for (size_t i = 0; i < ARP_TABLE_SIZE; i++) {
        ip4_addr_t *ip;
        struct netif *netif;
        struct eth_addr *eth;
        if (etharp_get_entry(i, &ip, &netif, &eth))
            return NEED_AGE; /* stable: expires after ARP_MAXAGE ticks */
    }
    return NEED_NONE;
}

/* etharp_tmr, one tick. The requests it sends itself retry pending entries
 * that are already counted as busy. */
static void arp_tick(void)
{
    arp_look();
    etharp_tmr();
    arp_seen = (u32_t)(lwip_stats.etharp.xmit + lwip_stats.etharp.memerr);
    if (arp_busy > 0)
        arp_busy--;
}
#endif

#if LWIP_IPV4 && LWIP_DHCP
static need_t dhcp_coarse_need(void)
{
    struct netif *netif;
    NETIF_FOREACH(netif)
    {
        const struct dhcp *dhcp = netif_dhcp_data(netif);
        if (dhcp != NULL && dhcp->state != DHCP_STATE_OFF &&
            (dhcp->t0_timeout != 0 || dhcp->t1_renew_time != 0 || dhcp->t2_rebind_time != 0))
            return NEED_WORK;
    }
    return NEED_NONE;
}

static need_t dhcp_fine_need(void)
{
    struct netif *netif;
    NETIF_FOREACH(netif)
    {
        const struct dhcp *dhcp = netif_dhcp_data(netif);
        if (dhcp != NULL && dhcp->request_timeout != 0)
            return NEED_WORK;
    }
    return NEED_NONE;
}
#endif

#if LWIP_IPV4 && LWIP_IGMP
static need_t igmp_need(void)
{
    struct netif *netif;
    NETIF_FOREACH(netif)
    {
        for (const struct igmp_group *g = netif_igmp_data(netif); g != NULL; g = g->next)
            if (g->timer > 0)
                return NEED_WORK;
    }
    return NEED_NONE;
}
#endif

#if LWIP_IPV6 && LWIP_IPV6_MLD
static need_t mld6_need(void)
{
    struct netif *netif;
    NETIF_FOREACH(netif)
    {
        for (const struct mld_group *g = netif_mld6_data(netif); g != NULL; g = g->next)
            if (g->timer > 0)
                return NEED_WORK;
    }
    return NEED_NONE;
}
#endif

#if LWIP_IPV6 && LWIP_IPV6_REASS
static need_t ip6_reass_need(void)
{
    return lwip_stats.memp[MEMP_IP6_REASSDATA]->used > 0 ? NEED_WORK : NEED_NONE;
}
#endif

#if LWIP_IPV6
/* What nd6_tmr would do to one of our addresses. */
static need_t nd6_addr_need(const struct netif *netif, s8_t i)
{
    u8_t state = netif_ip6_addr_state(netif, i);
    if (ip6_addr_istentative(state)) /* DAD: a solicitation per tick, then valid */
        return (state & IP6_ADDR_TENTATIVE_COUNT_MASK) >= LWIP_IPV6_DUP_DETECT_ATTEMPTS ||
                       (netif_is_up(netif) && netif_is_link_up(netif))
                   ? NEED_WORK
                   : NEED_NONE;
#if LWIP_IPV6_ADDRESS_LIFETIMES
    if (!ip6_addr_isinvalid(state) && !netif_ip6_addr_isstatic(netif, i)) {
        u32_t valid = netif_ip6_addr_valid_life(netif, i), pref = netif_ip6_addr_pref_life(netif, i);
        if (pref == 0 && ip6_addr_ispreferred(state))
            return NEED_WORK; /* deprecated at the next tick */
        if (!ip6_addr_life_isinfinite(valid) || !ip6_addr_life_isinfinite(pref))
            return NEED_AGE;
    }
#endif
    return NEED_NONE;
}

/* Neighbours that are STALE and the destination cache only count their age
 * (nd6_tmr's stale_time and age) to pick which entry to reuse when the
 * cache is full; a clock that stops for all of them keeps their order, so
 * they need no tick. */
static need_t nd6_need(void)
{
    need_t need = NEED_NONE;
    for (int i = 0; i < LWIP_ND6_NUM_NEIGHBORS; i++)
        switch (neighbor_cache[i].state) {
        case ND6_INCOMPLETE:
        case ND6_DELAY:
        case ND6_PROBE:
            return NEED_WORK;
        case ND6_REACHABLE:
            if (neighbor_cache[i].q != NULL)
                return NEED_WORK; /* packets left to send */
            need = NEED_AGE;      /* becomes stale after its reachable time */
            break;
        default:
            break;
        }
    for (int i = 0; i < LWIP_ND6_NUM_ROUTERS; i++)
        if (default_router_list[i].neighbor_entry != NULL)
            need = NEED_AGE;
    for (int i = 0; i < LWIP_ND6_NUM_PREFIXES; i++)
        if (prefix_list[i].netif != NULL)
            need = NEED_AGE;
    struct netif *netif;
    NETIF_FOREACH(netif)
    {
#if LWIP_IPV6_SEND_ROUTER_SOLICIT
        u8_t first = netif_ip6_addr_state(netif, 0);
        if (netif->rs_count > 0 && netif_is_up(netif) && netif_is_link_up(netif) &&
            !ip6_addr_isinvalid(first) && !ip6_addr_isduplicated(first))
            return NEED_WORK; /* router solicitations to send */
#endif
        for (s8_t i = 0; i < LWIP_IPV6_NUM_ADDRESSES; i++) {
            need_t a = nd6_addr_need(netif, i);
            if (a == NEED_WORK)
                return NEED_WORK;
            if (a == NEED_AGE)
                need = NEED_AGE;
        }
    }
    return need;
}
#endif

/* The cyclic timers this file knows, by lwIP's handler. */
typedef struct known {
    lwip_cyclic_timer_handler handler;
    need_t (*need)(void);
    void (*tick)(void); /* NULL: the handler itself */
    bool ages;          /* may run in ageing mode */
} known_t;

static const known_t known[] = {
#if LWIP_TCP
    {tcp_tmr, tcp_need, NULL, false},
#endif
#if LWIP_IPV4 && IP_REASSEMBLY
    {ip_reass_tmr, ip_reass_need, NULL, false},
#endif
#if LWIP_IPV4 && LWIP_ARP
    {etharp_tmr, arp_need, arp_tick, true},
#endif
#if LWIP_IPV4 && LWIP_DHCP
    {dhcp_coarse_tmr, dhcp_coarse_need, NULL, false},
    {dhcp_fine_tmr, dhcp_fine_need, NULL, false},
#endif
#if LWIP_IPV4 && LWIP_IGMP
    {igmp_tmr, igmp_need, NULL, false},
#endif
#if LWIP_IPV6
    {nd6_tmr, nd6_need, NULL, true},
#endif
#if LWIP_IPV6 && LWIP_IPV6_REASS
    {ip6_reass_tmr, ip6_reass_need, NULL, false},
#endif
#if LWIP_IPV6 && LWIP_IPV6_MLD
    {mld6_tmr, mld6_need, NULL, false},
#endif
};

/* ---- Cyclic timers on demand ------------------------------------------------------------ */

typedef enum run_mode {
    MODE_OFF, /* nothing to do */
    MODE_RUN, /* fires every interval */
    MODE_AGE, /* fires every FERRY_TIMERS_AGE_PERIOD_MS, one tick per interval passed */
} run_mode_t;

typedef struct cyclic {
    const struct lwip_cyclic_timer *lwip; /* interval and handler */
    const known_t *known;                 /* NULL: unknown to this file, always runs */
    run_mode_t mode;
    u32_t last; /* time of the last tick paid: ticks fall on last + k * interval */
    u32_t owed; /* ticks that passed while ageing and are not paid yet */
    struct sys_timeo node; /* in next_timeout unless MODE_OFF */
} cyclic_t;

/* LWIP_NUM_SYS_TIMEOUT_INTERNAL counts lwIP's cyclic timers (and a few
 * one-shot ones of PPP, which Ferry does not build). */
static cyclic_t cyclics[LWIP_NUM_SYS_TIMEOUT_INTERNAL];
static int ncyclics;
static u32_t last_look; /* sys_now() of the last look from sys_check_timeouts */

static need_t need_of(const cyclic_t *c)
{
    return c->known != NULL ? c->known->need() : NEED_WORK;
}

static void tick(const cyclic_t *c)
{
    if (c->known != NULL && c->known->tick != NULL)
        c->known->tick();
    else
        c->lwip->handler();
}

/* Call the handler for `n` ticks in a row, as long as only ageing is due
 * (asked again before every call after the first). Returns the ticks it
 * could not pay. */
static u32_t pay(const cyclic_t *c, u32_t n)
{
    for (u32_t i = 0; i < n; i++) {
        if (i > 0 && need_of(c) == NEED_WORK)
            return n - i;
        tick(c);
    }
    return 0;
}

static void cyclic_fire(void *arg);

static void arm(cyclic_t *c, run_mode_t mode, u32_t time)
{
    c->mode = mode;
    c->node.time = time;
    c->node.h = cyclic_fire;
    c->node.arg = c;
    list_insert(&c->node);
}

u32_t ferry_timers_grid_ms(u32_t now, u32_t min_ms)
{
    u32_t r = (now + min_ms) % FERRY_TIMERS_AGE_PERIOD_MS;
    return min_ms + (r != 0 ? FERRY_TIMERS_AGE_PERIOD_MS - r : 0);
}

/* Age from `c->last` on: the next firing on the grid, at least one interval on. */
static void arm_ageing(cyclic_t *c)
{
    arm(c, MODE_AGE, c->last + ferry_timers_grid_ms(c->last, c->lwip->interval_ms));
}

/* Work appeared while ageing: the ticks the period owes so far wait; the
 * timer goes on at its interval, on the same tick grid. */
static void age_to_run(cyclic_t *c, u32_t now)
{
    u32_t interval = c->lwip->interval_ms;
    u32_t ticks = before(c->last, now) ? (now - c->last) / interval : 0;
    c->owed += ticks;
    c->last += ticks * interval;
    arm(c, MODE_RUN, c->last + interval);
}

static void cyclic_fire(void *arg)
{
    cyclic_t *c = arg;
    u32_t due = c->node.time, interval = c->lwip->interval_ms;
    need_t need;
    if (c->mode == MODE_AGE) {
        u32_t ticks = (due - c->last) / interval;
        c->last += ticks * interval;
        if (need_of(c) == NEED_WORK) {
            /* Work came up since the last look: this tick now, the rest later. */
            c->owed += ticks > 0 ? ticks - 1 : 0;
            tick(c);
            arm(c, MODE_RUN, c->last + interval);
            return;
        }
        c->owed = pay(c, ticks + c->owed);
    } else {
        tick(c);
        c->last = due;
    }
    need = need_of(c);
    if (need == NEED_AGE && !(c->known != NULL && c->known->ages))
        need = NEED_WORK;
    if (need == NEED_AGE && c->owed > 0)
        c->owed = pay(c, c->owed); /* only ageing is left: safe to catch up */
    if (need == NEED_AGE && c->owed == 0) {
        arm_ageing(c);
    } else if (need != NEED_NONE) {
        u32_t now = sys_now(), next = c->last + interval;
        if (before(next, now)) { /* late (the loop was busy): skip, as lwIP does */
            c->last = now;
            next = now + interval;
        }
        arm(c, MODE_RUN, next);
    } else {
        c->mode = MODE_OFF;
        c->owed = 0;
    }
}

/* Start the timers that have work, move ageing ones to their interval when
 * work appears, stop ageing ones with nothing left. */
static void look(u32_t now)
{
    for (int i = 0; i < ncyclics; i++) {
        cyclic_t *c = &cyclics[i];
        if (c->mode == MODE_RUN)
            continue; /* looked at when it fires */
        need_t need = need_of(c);
        bool ages = c->known != NULL && c->known->ages;
        if (c->mode == MODE_OFF) {
            if (need == NEED_NONE)
                continue;
            c->last = now;
            if (need == NEED_AGE && ages)
                arm_ageing(c);
            else
                arm(c, MODE_RUN, now + c->lwip->interval_ms);
        } else if (need == NEED_WORK) {
            list_remove(&c->node);
            age_to_run(c, now);
        } else if (need == NEED_NONE) {
            list_remove(&c->node);
            c->mode = MODE_OFF;
            c->owed = 0;
        }
    }
}

u32_t ferry_timers_running(void)
{
    u32_t bits = 0;
    for (int i = 0; i < ncyclics && i < 32; i++)
        if (cyclics[i].mode != MODE_OFF)
            bits |= 1u << i;
    return bits;
}

/* ---- lwIP's timer API ------------------------------------------------------------------- */

/* From lwip_init(). */
void sys_timeouts_init(void)
{
    next_timeout = NULL;
    pool_free = NULL;
    for (int i = MEMP_NUM_SYS_TIMEOUT - 1; i >= 0; i--) {
        pool[i].next = pool_free;
        pool_free = &pool[i];
    }
    LWIP_ASSERT("more cyclic timers than LWIP_NUM_SYS_TIMEOUT_INTERNAL",
                lwip_num_cyclic_timers <= (int)LWIP_ARRAYSIZE(cyclics));
    ncyclics = 0;
    for (int i = 0; i < lwip_num_cyclic_timers && i < (int)LWIP_ARRAYSIZE(cyclics); i++) {
        cyclic_t *c = &cyclics[ncyclics++];
        memset(c, 0, sizeof *c);
        c->lwip = &lwip_cyclic_timers[i];
        for (size_t k = 0; k < LWIP_ARRAYSIZE(known); k++)
            if (known[k].handler == c->lwip->handler)
                c->known = &known[k];
    }
#if LWIP_IPV4 && LWIP_ARP
    arp_seen = (u32_t)(lwip_stats.etharp.xmit + lwip_stats.etharp.memerr);
    arp_busy = 0;
#endif
    /* The first sys_check_timeouts() or sys_timeouts_sleeptime() looks at
     * what needs a timer, after the caller has finished setting lwIP up. */
    last_look = sys_now() - 1;
}

/* Run every timer that is due now, earliest first; timers that handlers add
 * and that are due already run too. */
void sys_check_timeouts(void)
{
    LWIP_ASSERT_CORE_LOCKED();
    u32_t now = sys_now();
    if (now != last_look) {
        last_look = now;
        look(now);
    }
    for (;;) {
        PBUF_CHECK_FREE_OOSEQ();
        struct sys_timeo *t = next_timeout;
        if (t == NULL || before(now, t->time))
            return;
        next_timeout = t->next;
        sys_timeout_handler handler = t->h;
        void *arg = t->arg;
        if (handler != cyclic_fire) { /* a one-shot timeout: its slot is free again */
            t->next = pool_free;
            pool_free = t;
        }
        if (handler != NULL)
            handler(arg);
    }
}

/* Milliseconds until the next timer is due (0: one is due now), or
 * SYS_TIMEOUTS_SLEEPTIME_INFINITE when no timer runs. Called just before the
 * loop sleeps, so it first starts whatever this turn's work needs. */
u32_t sys_timeouts_sleeptime(void)
{
    LWIP_ASSERT_CORE_LOCKED();
    u32_t now = sys_now();
    look(now);
    if (next_timeout == NULL)
        return SYS_TIMEOUTS_SLEEPTIME_INFINITE;
    if (!before(now, next_timeout->time))
        return 0;
    return next_timeout->time - now;
}

/* Shift every timer so that the earliest is due now (after a long time
 * without sys_check_timeouts, e.g. a suspend), as lwIP's version does. */
void sys_restart_timeouts(void)
{
    LWIP_ASSERT_CORE_LOCKED();
    if (next_timeout == NULL)
        return;
    u32_t shift = sys_now() - next_timeout->time;
    for (struct sys_timeo *t = next_timeout; t != NULL; t = t->next)
        t->time += shift;
    for (int i = 0; i < ncyclics; i++)
        cyclics[i].last += shift;
}

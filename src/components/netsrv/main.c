/*
 * main.c - netsrv's start-up: check the arguments, claim lwIP for this
 * thread, bring up lwIP and the NIC sessions, register the services, run
 * the event loop (loop.c).
 *
 * lwIP keeps global state, so there is one netsrv per address space. On a
 * microkernel every task has its own; in the simulator, in-process tasks
 * share one, and a second netsrv there is refused (ferry_lwip_core_claim).
 * A NIC whose session cannot be opened is logged and left out; netsrv runs
 * with the others (and always with its loopback interface).
 */
#include <string.h>

#include "lwip/init.h"
#include "lwip/netif.h"
#include "netsrv_priv.h"

static netsrv_t server;
static netsrv_nic_t nic_storage[NETSRV_NICS_MAX];

static struct netif *find_loopif(void)
{
    struct netif *netif;
    NETIF_FOREACH(netif)
    {
        if (netif->name[0] == 'l' && netif->name[1] == 'o')
            return netif;
    }
    return NULL;
}

/* Kernel objects: the service endpoint and the notification NICs signal. */
static int kernel_setup(netsrv_t *s)
{
    mk_err_t e = mk_cap_lookup(s->cfg.ep_name, &s->ep);
    if (e != MK_OK) {
        mk_log("no capability '%s' (%s): the boot configuration must make netsrv the server of "
               "that endpoint",
               s->cfg.ep_name, mk_strerror(e));
        return -1;
    }
    e = mk_ntfn_create(&s->ntfn);
    if (e == MK_OK)
        e = mk_ntfn_bind(s->ntfn);
    if (e != MK_OK) {
        mk_log("cannot create and bind the notification: %s", mk_strerror(e));
        return -1;
    }
    return 0;
}

int netsrv_main(int argc, char **argv)
{
    static netsrv_config_t cfg; /* parsed before the state is touched */
    char err[200];
    if (netsrv_config_parse(&cfg, argc, argv, err, sizeof err) != 0) {
        mk_log("%s", err);
        mk_log("%s", netsrv_usage);
        return 2;
    }
    if (!ferry_lwip_core_claim()) {
        mk_log("lwIP is already in use by another task in this address space (one netsrv per "
               "address space)");
        return 1;
    }
    netsrv_t *s = &server;
    memset(s, 0, sizeof *s);
    s->cfg = cfg;
    s->start_ns = mk_time_ns();
    if (kernel_setup(s) != 0)
        return 1;
    lwip_init();
    s->loopif = find_loopif();
    s->loopif->rs_count = 0; /* no router to solicit on lo (nor a timer for it) */
    netsrv_events_init();
    if (netsrv_ping_init(s) != 0)
        return 1;
    for (unsigned i = 0; i < s->cfg.nnics; i++) {
        netsrv_nic_t *n = &nic_storage[s->nnics];
        if (netsrv_nic_open(s, n, &s->cfg.nics[i], s->nnics) == 0)
            s->nics[s->nnics++] = n;
        else
            mk_log("%s: left out", s->cfg.nics[i].name);
    }
    netsrv_service_add(s, NETSRV_HASH, netsrv_control_dispatch, s);
    if (netsrv_sock_init(s) != 0)
        return 1;
    mk_log("serving netsrv.idl and sock.idl on '%s': %u of %u NICs open, loopback 127.0.0.1 and "
           "::1",
           s->cfg.ep_name, s->nnics, s->cfg.nnics);
    return netsrv_loop_run(s);
}

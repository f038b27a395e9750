/*
 * registry.c - the components this simulator binary can start, by name.
 * Add a component: link its library into ferry-sim and add a line here.
 */
#include "boot.h"

#include <apps.h>
#include <demo.h>
#include <netsrv_component.h>
#include <nic_slirp.h>
#include <string.h>

const boot_component_t boot_components[] = {
    {"demo-ping", demo_ping_main, "foundation demo client (IPC, shared memory, notification)"},
    {"demo-pong", demo_pong_main, "foundation demo server"},
    {"nic-slirp", nic_slirp_main, "NIC driver on libslirp (user-mode network, host loopback only)"},
    {"netsrv", netsrv_main, "network server: lwIP in one event loop, one netif per NIC session"},
    {"nperf", nperf_main, "throughput/latency tester, server or client (tcp/udp stream, rr, crr)"},
    {"ping", ping_main, "ICMP/ICMPv6 echo through netsrv.idl's ping (--netsrv NAME, default netsrv)"},
    {"echo", echo_main, "TCP and UDP echo server (RFC 862) on ferry/socket.h"},
    {"httpd", httpd_ferry_main, "HTTP server: built-in page or --root DIR, /stats with netsrv's counters"},
    {"netmem", netmem_main, "netsrv's memory (lwIP heap and pools, clients) as JSON lines (benchmark probe)"},
    {NULL, NULL, NULL},
};

const boot_component_t *boot_component_find(const char *name)
{
    for (const boot_component_t *c = boot_components; c->name; c++)
        if (strcmp(c->name, name) == 0)
            return c;
    return NULL;
}

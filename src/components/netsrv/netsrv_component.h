/*
 * netsrv_component.h - the network server component: lwIP (NO_SYS=1, raw API) in one
 * event loop, one lwIP netif per NIC session. Reference: docs/netsrv.md.
 *
 * usage: netsrv [--ep NAME] [--hostname NAME]
 *               [--nic NAME [--ip dhcp|off|A.B.C.D/NN] [--gw A.B.C.D]
 *                           [--ip6 slaac|link-local|off] [--bufs N] [--buf-size N]]...
 *
 * Capabilities (from the boot configuration): the service endpoint NAME
 * (default "netsrv", receive right) on which it serves netsrv.idl, and for
 * each --nic NAME a send capability to that NIC driver's endpoint (nic.idl).
 * Exit status: 2 for bad arguments, 1 if it cannot start, 0 when its
 * endpoint dies.
 */
#ifndef FERRY_NETSRV_COMPONENT_H
#define FERRY_NETSRV_COMPONENT_H

int netsrv_main(int argc, char **argv);

#endif /* FERRY_NETSRV_COMPONENT_H */

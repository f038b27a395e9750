/*
 * nic_slirp.h - the simulator's NIC driver on libslirp: serves the NIC
 * session (src/interfaces/nic.idl, ferry/nic_region.h) and puts the frames on
 * a user-mode network (libslirp) whose only way out is the host's loopback.
 *
 * Component "nic-slirp" (sim/boot/registry.c). Capabilities: an endpoint to
 * receive on, by default under the name "nic" (--endpoint NAME). Arguments:
 *   --endpoint NAME       the endpoint's capability name (default "nic")
 *   --forward SPEC        host port forward, repeatable:
 *                         tcp|udp:HOSTADDR:PORT-GUESTADDR:PORT, e.g.
 *                         tcp:127.0.0.1:8080-10.0.2.15:80 or
 *                         tcp:[::1]:8080-[fec0::15]:80; the host address
 *                         must be loopback
 * A bad argument makes the component exit with status 2 and a message naming
 * it. Protocol, threads and the network safety policy: docs/nic-session.md.
 */
#ifndef FERRY_NIC_SLIRP_H
#define FERRY_NIC_SLIRP_H

int nic_slirp_main(int argc, char **argv);

#endif

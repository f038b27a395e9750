/*
 * filter.h - the network safety policy of the slirp driver: which frames
 * from the client may reach libslirp.
 *
 * libslirp turns a guest's IP packet to an address outside its virtual
 * network into a real host socket to that address (NAT), so every frame is
 * checked here, on the driver's private copy, BEFORE slirp_input() sees it.
 * What passes (everything else is dropped and counted in tx_filtered):
 *
 *   ARP          well-formed Ethernet/IPv4 requests and replies (answered
 *                inside slirp, never leave it)
 *   IPv4         to 10.0.2.2, the host alias (slirp maps it to 127.0.0.1):
 *                TCP, UDP, ICMP; not TCP/UDP port 53 (a resolver on the
 *                host's loopback would forward to the outside world)
 *                to 255.255.255.255: unfragmented UDP to port 67 (DHCP,
 *                answered inside slirp)
 *   IPv6         to fec0::2, the host alias (slirp maps it to ::1): TCP,
 *                UDP, ICMPv6; not port 53
 *                to ff02::/16 or fe80::/10: ICMPv6 neighbour discovery
 *                (types 133..137), and UDP to ff02::1:2 port 547 (DHCPv6,
 *                answered inside slirp)
 *
 * Dropped among others: slirp's DNS forwarder 10.0.2.3 / fec0::3, every
 * other address of the virtual networks (slirp 4.7 would send those to the
 * real address), multicast, IPv6 extension headers, other EtherTypes.
 *
 * Pure function, no state: single-threaded use is not required.
 */
#ifndef FERRY_SLIRP_FILTER_H
#define FERRY_SLIRP_FILTER_H

#include <stddef.h>
#include <stdint.h>

typedef enum filter_verdict {
    FILTER_PASS = 0,
    FILTER_MALFORMED, /* too short, or headers inconsistent with the frame */
    FILTER_ETHERTYPE, /* not ARP, IPv4 or IPv6 */
    FILTER_DEST,      /* destination address not allowed */
    FILTER_PROTO,     /* protocol (or ICMPv6 type) not allowed to that destination */
    FILTER_PORT,      /* port not allowed (DNS; broadcast other than DHCP) */
    FILTER_FRAGMENT,  /* fragment to a broadcast address */
    FILTER_NVERDICTS
} filter_verdict_t;

/* Decide about one Ethernet frame of `len` bytes (no FCS). */
filter_verdict_t filter_frame(const uint8_t *frame, size_t len);

/* A short constant name for a verdict, for logs. */
const char *filter_verdict_name(filter_verdict_t v);

#endif

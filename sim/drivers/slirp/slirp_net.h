/*
 * slirp_net.h - the virtual network the slirp driver offers, in one place:
 * the SlirpConfig (wire.c), the safety filter (filter.c), the argument
 * checks (args.c) and nic.get_info all use these values.
 *
 *   IPv4  10.0.2.0/24   host alias 10.0.2.2 (= host loopback), DHCP from
 *                       10.0.2.15, DNS 10.0.2.3 (disabled and filtered)
 *   IPv6  fec0::/64     host alias fec0::2 (= ::1), DNS fec0::3 (disabled)
 */
#ifndef FERRY_SLIRP_NET_H
#define FERRY_SLIRP_NET_H

#include <stdint.h>

/* IPv4 addresses in host byte order. */
#define SLIRP_NET4 0x0a000200u        /* 10.0.2.0 */
#define SLIRP_MASK4 0xffffff00u       /* /24 */
#define SLIRP_HOST4 0x0a000202u       /* 10.0.2.2: the host alias */
#define SLIRP_DNS4 0x0a000203u        /* 10.0.2.3: slirp's DNS forwarder (disabled) */
#define SLIRP_DHCP_START4 0x0a00020fu /* 10.0.2.15: first DHCP lease */

/* IPv6 (initialisers of uint8_t[16]): prefix fec0::/64, host alias fec0::2,
 * DNS fec0::3. */
#define SLIRP_PREFIX6_LEN 64
/* clang-format off */
#define SLIRP_PREFIX6 {0xfe, 0xc0}
#define SLIRP_HOST6 {0xfe, 0xc0, [15] = 2}
#define SLIRP_DNS6 {0xfe, 0xc0, [15] = 3}
/* clang-format on */

/* The device (nic.get_info). */
#define SLIRP_NIC_MAC 0x525400123456ull /* 52:54:00:12:34:56 */
#define SLIRP_NIC_MTU 1500u
#define SLIRP_NIC_MAX_FRAME 1514u /* 14-byte Ethernet header + MTU */

#endif

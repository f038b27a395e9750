/*
 * lwipopts.h - Ferry's lwIP configuration.
 *
 * One file for every build: the host simulator and the ARM targets compile
 * lwIP with exactly these options (src/lwip/meson.build), so what the tests
 * see is what runs on hardware. Anything not set here keeps lwIP's default
 * from lwip/opt.h.
 *
 * Model: NO_SYS=1. lwIP is driven by one thread (netsrv's event loop) through
 * the raw (callback) API; no sockets, no netconn, no tcpip thread, no
 * locking. Every lwIP call must come from that thread.
 */
#ifndef FERRY_LWIPOPTS_H
#define FERRY_LWIPOPTS_H

/* ---- System model ---------------------------------------------------------- */

#define NO_SYS 1               /* no OS abstraction: one thread polls */
#define LWIP_TIMERS 1          /* sys_check_timeouts() runs lwIP's timers */
#define SYS_LIGHTWEIGHT_PROT 0 /* single-threaded: no critical sections */
#define LWIP_SOCKET 0          /* raw API only */
#define LWIP_NETCONN 0
#define LWIP_NETIF_API 0
#define LWIP_CALLBACK_API 1 /* tcp_recv()/tcp_sent()/... callbacks */

/* One thread, checked: every lwIP entry point runs LWIP_ASSERT_CORE_LOCKED(),
 * which here asserts that the caller is the thread that claimed lwIP with
 * ferry_lwip_core_claim() (netsrv's event loop, before lwip_init()). Until a
 * thread claims it (tests that drive lwIP directly), the check is off.
 * Implemented in sys_arch.c. */
#ifndef __ASSEMBLER__
int ferry_lwip_core_claim(void);
void ferry_lwip_assert_core_locked(void);
#endif
#define LWIP_ASSERT_CORE_LOCKED() ferry_lwip_assert_core_locked()

/* ---- Timers ---------------------------------------------------------------- */

/* Ferry's timer implementation (src/lwip/timers.c) instead of lwIP's
 * timeouts.c: lwIP's cyclic timers (IGMP and MLD every 100 ms, ARP, ND6,
 * reassembly, DHCP) run only while they have work, so an idle netsrv sleeps
 * instead of waking 10-20 times a second. sys_timeout() and friends work
 * as in lwIP; MEMP_NUM_SYS_TIMEOUT (below) bounds the one-shot timeouts. */
#define LWIP_TIMERS_CUSTOM 1

/* ---- Memory ---------------------------------------------------------------- */

/* 8, not 4: the same heap layout on 32-bit ARM and 64-bit hosts, and u64_t
 * fields in pool elements stay naturally aligned on both. */
#define MEM_ALIGNMENT 8
#define MEMP_MEM_MALLOC 0 /* static pools, so MEMP_STATS count them */
/* Heap for PBUF_RAM: TCP data netsrv's socket service copies out of the
 * send rings (tcp_write with TCP_WRITE_FLAG_COPY), packets looped back to
 * local applications (a second copy of each), UDP datagrams. The socket
 * service lets send data take at most half of it and makes a socket wait
 * (the starved list) when that half is in use.
 *
 * The heap is the C library's allocator behind a budget of MEM_SIZE bytes
 * (ferry_lwip_malloc() in sys_arch.c refuses what would exceed it), not
 * lwIP's own mem.c: that one is first-fit over one address-ordered free
 * list, and with megabytes of segments in flight the list fragments into
 * thousands of holes that every allocation walks (56% of netsrv's time
 * with 8 TCP streams). MEM_STATS still count every byte (lwIP keeps each
 * block's size in front of it), so "used" is the budget's fill. */
#define MEM_LIBC_MALLOC 1
#define MEM_SIZE (4 * 1024 * 1024)
#ifndef __ASSEMBLER__
#include <stddef.h>
void *ferry_lwip_malloc(size_t size);
#endif
#define mem_clib_malloc ferry_lwip_malloc

#define MEMP_NUM_PBUF 64 /* PBUF_ROM/PBUF_REF headers */
#define MEMP_NUM_RAW_PCB 8
/* Sockets: the socket service gives each TCP/UDP socket one PCB, and
 * applications on the same netsrv connect to each other over loopback, so
 * a local connection takes two. The TCP pool holds 10,000 local
 * connections at once (both ends in this netsrv), the PCBs netsrv lets
 * stay in TIME-WAIT (FERRY_TCP_TIME_WAIT_MAX, below), and 64 for control
 * connections and PCBs half open or closing. The pools are static: a TCP
 * PCB takes 288 bytes of the pool on a 64-bit host, 224 on 32-bit ARM, so
 * this one is 6.1 MB (4.7 MB on ARM; 2,112 PCBs took 0.6 MB). */
#define MEMP_NUM_UDP_PCB 64
#define MEMP_NUM_TCP_PCB (2 * 10000 + FERRY_TCP_TIME_WAIT_MAX + 64)
#define MEMP_NUM_TCP_PCB_LISTEN 64
#define MEMP_NUM_TCP_SEG 4096
#define MEMP_NUM_REASSDATA 16
#define MEMP_NUM_FRAG_PBUF 32
#define MEMP_NUM_ARP_QUEUE 32
/* lwIP's own cyclic timers plus room for timeouts the server adds. */
#define MEMP_NUM_SYS_TIMEOUT (LWIP_NUM_SYS_TIMEOUT_INTERNAL + 8)
#define PBUF_POOL_SIZE 256
/* Pool pbufs carry frames from NICs: one Ethernet frame each (lwIP would
 * size them by TCP_MSS, which only loopback uses in full). */
#define PBUF_POOL_BUFSIZE LWIP_MEM_ALIGN_SIZE(FERRY_ETH_MSS + 40 + 20 + 14)

/* ---- Link layer ------------------------------------------------------------ */

#define LWIP_ETHERNET 1
#define LWIP_ARP 1
#define ARP_TABLE_SIZE 32
#define ARP_QUEUEING 1
#define ETHARP_SUPPORT_STATIC_ENTRIES 1
#define LWIP_NETIF_STATUS_CALLBACK 1
#define LWIP_NETIF_LINK_CALLBACK 1
#define LWIP_NETIF_EXT_STATUS_CALLBACK 1 /* netsrv logs link, DHCP and SLAAC events */
#define LWIP_NETIF_HOSTNAME 1          /* sent in DHCP requests */
#define LWIP_CHECKSUM_CTRL_PER_NETIF 1 /* drivers with offload may skip checksums */

/* Loopback: lwIP's own "lo" netif (127.0.0.1/8 and ::1), and packets to a
 * netif's own address are looped back. With NO_SYS, looped packets are
 * delivered by netif_poll()/netif_poll_all() from the event loop. */
#define LWIP_HAVE_LOOPIF 1
#define LWIP_NETIF_LOOPBACK 1
/* Bound the queue of looped packets. Local applications (the socket
 * service) can have a thousand connections: one timer run sends a delayed
 * ACK on each, all into this queue at once, and a packet over the limit is
 * dropped (TCP recovers only by retransmission, seconds later). The copies
 * live in the heap (MEM_SIZE), which bounds the memory anyway. */
#define LWIP_LOOPBACK_MAX_PBUFS 4096

/* ---- IPv4 ------------------------------------------------------------------ */

#define LWIP_IPV4 1
#define IP_FORWARD 0 /* netsrv routes between ports itself */
#define IP_REASSEMBLY 1
#define IP_REASS_MAX_PBUFS 64 /* a 64 KiB datagram is 45 fragments at MTU 1500 */
#define IP_FRAG 1
#define LWIP_ICMP 1
#define LWIP_RAW 1 /* raw PCBs: ping */
#define LWIP_DHCP 1
#define LWIP_AUTOIP 0
/* IP multicast for the socket service (IP_ADD_MEMBERSHIP & co.): IGMP on
 * every netif that carries NETIF_FLAG_IGMP, lwIP's loopback included, so
 * local applications can use groups without a NIC. */
#define LWIP_IGMP 1
#define LWIP_LOOPIF_MULTICAST 1
#define MEMP_NUM_IGMP_GROUP 64 /* per netif: all-systems, plus the groups joined */
/* Broadcast only from sockets with SO_BROADCAST (SOF_BROADCAST; lwIP's own
 * DHCP sets it); receiving broadcasts needs nothing, as on Linux. */
#define IP_SOF_BROADCAST 1
#define IP_SOF_BROADCAST_RECV 0
#define LWIP_DNS 0

/* ---- IPv6 ------------------------------------------------------------------ */

#define LWIP_IPV6 1
#define LWIP_ICMP6 1
#define LWIP_IPV6_MLD 1        /* needed for ND6 solicited-node groups */
/* Per netif: a solicited-node group for each of its addresses, plus the
 * groups sockets join (IPV6_JOIN_GROUP). */
#define MEMP_NUM_MLD6_GROUP 64
#define LWIP_IPV6_AUTOCONFIG 1 /* SLAAC; ND6 is always on with IPv6 */
#define LWIP_IPV6_FRAG 1
#define LWIP_IPV6_REASS 1
/* Reassembly bookkeeping does not fit in the 8-byte fragment header with
 * 64-bit pointers (host); copy the header aside on every target alike. */
#define IPV6_FRAG_COPYHEADER 1
#define LWIP_IPV6_DHCP6 0
#define LWIP_ND6_QUEUEING 1

/* ---- UDP and TCP ----------------------------------------------------------- */

#define LWIP_UDP 1
#define LWIP_TCP 1
/* The MSS lwIP offers and accepts: it takes the MTU of the netif a
 * connection leaves by off it (MSS option and send MSS both, RFC 879), so
 * Ethernet NICs (MTU 1500) get 1460. Only the loopback netif, which lwIP
 * gives no MTU, uses all of it: local connections between applications on
 * this netsrv send 16,000-byte segments (Linux's loopback MTU was 16,436
 * for the same reason, and is 64 KiB now), so a local stream costs a
 * tenth of the per-segment work (allocations, headers, tcp_input, wake-
 * ups) of 1460-byte ones: 8 local streams 5.2 -> 16+ Gbit/s. Not more:
 * lwIP's sanity check wants 4 MSS below 64 KiB - TCP_SNDLOWAT. */
#define TCP_MSS 16000
#define FERRY_ETH_MSS 1460 /* TCP over Ethernet (MTU 1500), IPv4 */
/* Window scaling (RFC 7323): windows up to TCP_WND when the peer scales
 * too, else 65535. netsrv's socket service caps each connection's window
 * at its SO_RCVBUF (at most the socket's ring) and starts it there, so a
 * large TCP_WND is only offered to sockets whose rings take it. Scale 3
 * (8-byte units) reaches 512 KiB - 8 and keeps the smallest SO_RCVBUF
 * (64 bytes) a non-zero window. TCP_WND stays within the PBUF_POOL sanity
 * check (PBUF_POOL_SIZE x 1462 bytes): a full window from a NIC sits in
 * pool pbufs. */
#define LWIP_WND_SCALE 1
#define TCP_RCV_SCALE 3
#define TCP_WND (256 * 1024)
/* Send side alike: what one connection may have in lwIP unacknowledged
 * (the socket service bounds it further by SO_SNDBUF and half the heap).
 * 4 segments per Ethernet MSS of buffer (small writes), 719 in all: within
 * MEMP_NUM_TCP_SEG, as lwIP's sanity check wants. */
#define TCP_SND_BUF (256 * 1024)
#define TCP_SND_QUEUELEN ((4 * TCP_SND_BUF + FERRY_ETH_MSS - 1) / FERRY_ETH_MSS)
/* A small write waiting for more (Nagle) gets room for an Ethernet
 * segment's worth to grow in, not a loopback one's 16,000 bytes of heap. */
#define TCP_OVERSIZE FERRY_ETH_MSS
/* The sockets API's "writable" mark (unused by the raw API); lwIP's sanity
 * check wants it below 64 KiB - 4 MSS. */
#define TCP_SNDLOWAT 1024
#define TCP_LISTEN_BACKLOG 1
/* TIME-WAIT: lwIP keeps a PCB 2 x TCP_MSL (lwIP's default MSL, 60 s: two
 * minutes, RFC 793's figure; Linux keeps one minute) after an active
 * close, and frees one early only when the pool runs dry. With a pool for
 * 10,000 connections a connection-rate load would fill it with TIME-WAIT
 * PCBs: each holds one of the 16,384 ephemeral ports (0xc000-0xffff) and
 * lengthens the list every SYN and every new port searches. netsrv keeps
 * at most this many and recycles the oldest beyond (as Linux's
 * tcp_max_tw_buckets; sock_tcp.c): 1,024 is the full two minutes for up to
 * 8.5 connections ending per second, and leaves the ports to 10,000 open
 * connections. TCP_MSL stays: the bound already caps TIME-WAIT's memory
 * and lookups, and a shorter MSL would only weaken TIME-WAIT towards
 * peers on a real network, where a lost last ACK or an old duplicate
 * segment is possible. */
#define FERRY_TCP_TIME_WAIT_MAX 1024
/* Every segment lwIP takes for a connection goes past the socket service
 * first (sock_tcp.c): a window update may let out data lwIP holds back. */
#define LWIP_HOOK_TCP_INPACKET_PCB(pcb, hdr, optlen, opt1len, opt2, p) ferry_lwip_tcp_inpacket(pcb)
#ifndef __ASSEMBLER__
struct tcp_pcb;
int ferry_lwip_tcp_inpacket(struct tcp_pcb *pcb);
extern void (*ferry_lwip_tcp_inpacket_fn)(struct tcp_pcb *pcb);
#endif
#define LWIP_TCP_KEEPALIVE 1
#define SO_REUSE 1 /* rebind a listening port after a restart */
/* A multicast or broadcast datagram goes to every UDP socket bound to its
 * port (all of them have SO_REUSEADDR, or they could not share the port),
 * as on Linux, not to the first only. */
#define SO_REUSE_RXTOALL 1
/* IP_MULTICAST_TTL, IP_MULTICAST_LOOP and their IPv6 counterparts. */
#define LWIP_MULTICAST_TX_OPTIONS 1
#define TCP_QUEUE_OOSEQ 1

/* ---- Randomness ------------------------------------------------------------ */

/* Local port randomisation, DHCP transaction ids, MLD delays. Not for
 * secrets: see ferry_lwip_rand() in sys_arch.c. */
#define LWIP_RAND() ferry_lwip_rand()

/* ---- Statistics ------------------------------------------------------------ */

/* Counters for every protocol and every pool: httpd serves them, and the
 * tests use MEM/MEMP counters to prove nothing leaked. */
#define LWIP_STATS 1
#define LWIP_STATS_DISPLAY 1
#define LWIP_STATS_LARGE 1 /* 32-bit counters: 16-bit ones wrap within seconds under load */
#define LINK_STATS 1
#define ETHARP_STATS 1
#define IP_STATS 1
#define IPFRAG_STATS 1
#define ICMP_STATS 1
#define UDP_STATS 1
#define TCP_STATS 1
#define MEM_STATS 1
#define MEMP_STATS 1
#define IP6_STATS 1
#define ICMP6_STATS 1
#define IP6_FRAG_STATS 1
#define MLD6_STATS 1
#define ND6_STATS 1

/* ---- Debugging ------------------------------------------------------------- */

/* Assertions stay on in every build (LWIP_NOASSERT unset): a failed one
 * ends the task, and init's restart policy takes over. */
#define LWIP_DBG_TYPES_ON LWIP_DBG_OFF

#endif /* FERRY_LWIPOPTS_H */

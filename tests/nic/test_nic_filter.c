/*
 * test_nic_filter.c - proves the slirp driver's network safety filter and
 * its command line, without slirp or the kernel:
 *  - what the policy lets through (ARP, DHCP to broadcast, TCP/UDP/ICMP to
 *    the host alias, IPv6 neighbour discovery, DHCPv6) and everything it must
 *    drop (documentation/TEST-NET addresses standing for the outside world,
 *    the DNS forwarder, other addresses of the virtual network, multicast,
 *    port 53, fragments to broadcast, extension headers, other EtherTypes),
 *    each with its reason;
 *  - every truncation of an allowed frame is refused, and random frames in
 *    exact-size heap buffers never make it read out of bounds (ASan) or let
 *    through a frame whose destination is not allowed;
 *  - --forward and the other arguments: good specifications parse, each bad
 *    one is refused with a message naming it.
 */
#include "frames.h"

#include <args.h>
#include <arpa/inet.h>
#include <check.h>
#include <filter.h>
#include <stdlib.h>
#include <string.h>

#define HOST4 FR_IP4(10, 0, 2, 2)
#define GUEST4 FR_IP4(10, 0, 2, 15)
#define TESTNET FR_IP4(192, 0, 2, 1) /* TEST-NET-1: stands for "outside" */

static const uint8_t host6[16] = {0xfe, 0xc0, [15] = 2};
static const uint8_t dns6[16] = {0xfe, 0xc0, [15] = 3};
static const uint8_t other6[16] = {0xfe, 0xc0, [15] = 0x15};
static const uint8_t guest6[16] = {0xfe, 0xc0, [15] = 0x16};
static const uint8_t doc6[16] = {0x20, 0x01, 0x0d, 0xb8, [15] = 1}; /* 2001:db8::1 */
static const uint8_t ll_router6[16] = {0xfe, 0x80, [15] = 2};
static const uint8_t snm6[16] = {0xff, 0x02, [11] = 1, [12] = 0xff, [15] = 2}; /* ff02::1:ff00:2 */
static const uint8_t allnodes6[16] = {0xff, 0x02, [15] = 1};
static const uint8_t dhcp6[16] = {0xff, 0x02, [13] = 1, [15] = 2};
static const uint8_t mac_host[6] = {0x52, 0x55, 0x0a, 0x00, 0x02, 0x02};

static uint8_t f[2048];

/* Run the filter on an exact-size heap copy, so ASan sees any overread. */
static filter_verdict_t verdict(const uint8_t *frame, size_t len)
{
    uint8_t *copy = malloc(len ? len : 1);
    ck_assert_ptr_nonnull(copy);
    memcpy(copy, frame, len);
    filter_verdict_t v = filter_frame(copy, len);
    free(copy);
    return v;
}

START_TEST(test_allowed)
{
    size_t n = fr_arp_request(f, GUEST4, HOST4);
    ck_assert_int_eq(verdict(f, n), FILTER_PASS);
    n = fr_arp_reply(f, mac_host, HOST4, GUEST4);
    ck_assert_int_eq(verdict(f, n), FILTER_PASS);
    n = fr_dhcp_discover(f, 42);
    ck_assert_int_eq(verdict(f, n), FILTER_PASS);
    n = fr_icmp4_echo(f, mac_host, GUEST4, HOST4, 1, 1, 16);
    ck_assert_int_eq(verdict(f, n), FILTER_PASS);
    n = fr_tcp4_syn(f, mac_host, GUEST4, 40000, HOST4, 8080);
    ck_assert_int_eq(verdict(f, n), FILTER_PASS);
    n = fr_udp4(f, mac_host, GUEST4, 40000, HOST4, 7, "x", 1);
    ck_assert_int_eq(verdict(f, n), FILTER_PASS);
    n = fr_udp4(f, mac_host, GUEST4, 68, HOST4, 67, "x", 1); /* DHCP renew, unicast */
    ck_assert_int_eq(verdict(f, n), FILTER_PASS);
    n = fr_udp6(f, mac_host, guest6, 40000, host6, 7, 4);
    ck_assert_int_eq(verdict(f, n), FILTER_PASS);
    n = fr_icmp6(f, mac_host, guest6, host6, 128); /* echo request to the host alias */
    ck_assert_int_eq(verdict(f, n), FILTER_PASS);
    for (uint8_t t = 133; t <= 137; t++) {
        n = fr_icmp6(f, fr_mac_bcast, guest6, snm6, t);
        ck_assert_int_eq(verdict(f, n), FILTER_PASS);
        n = fr_icmp6(f, mac_host, guest6, ll_router6, t);
        ck_assert_int_eq(verdict(f, n), FILTER_PASS);
    }
    n = fr_udp6(f, fr_mac_bcast, guest6, 546, dhcp6, 547, 4);
    ck_assert_int_eq(verdict(f, n), FILTER_PASS);
    /* Ethernet padding after the IP packet is fine. */
    n = fr_udp4(f, mac_host, GUEST4, 40000, HOST4, 7, "x", 1);
    ck_assert_int_eq(verdict(f, n + 10), FILTER_PASS);
}
END_TEST

START_TEST(test_dropped_ipv4)
{
    size_t n = fr_udp4(f, mac_host, GUEST4, 40000, TESTNET, 9, "x", 1);
    ck_assert_int_eq(verdict(f, n), FILTER_DEST);
    n = fr_tcp4_syn(f, mac_host, GUEST4, 40000, TESTNET, 80);
    ck_assert_int_eq(verdict(f, n), FILTER_DEST);
    n = fr_icmp4_echo(f, mac_host, GUEST4, TESTNET, 1, 1, 8);
    ck_assert_int_eq(verdict(f, n), FILTER_DEST);
    /* slirp's DNS forwarder, other virtual addresses, subnet broadcast, multicast */
    n = fr_udp4(f, mac_host, GUEST4, 40000, FR_IP4(10, 0, 2, 3), 53, "x", 1);
    ck_assert_int_eq(verdict(f, n), FILTER_DEST);
    n = fr_icmp4_echo(f, mac_host, GUEST4, FR_IP4(10, 0, 2, 77), 1, 1, 8);
    ck_assert_int_eq(verdict(f, n), FILTER_DEST);
    n = fr_udp4(f, fr_mac_bcast, GUEST4, 40000, FR_IP4(10, 0, 2, 255), 9, "x", 1);
    ck_assert_int_eq(verdict(f, n), FILTER_DEST);
    n = fr_udp4(f, fr_mac_bcast, GUEST4, 5353, FR_IP4(224, 0, 0, 251), 5353, "x", 1);
    ck_assert_int_eq(verdict(f, n), FILTER_DEST);
    /* DNS through the host alias (a loopback resolver forwards outside) */
    n = fr_udp4(f, mac_host, GUEST4, 40000, HOST4, 53, "x", 1);
    ck_assert_int_eq(verdict(f, n), FILTER_PORT);
    n = fr_tcp4_syn(f, mac_host, GUEST4, 40000, HOST4, 53);
    ck_assert_int_eq(verdict(f, n), FILTER_PORT);
    /* Broadcast: only DHCP, only UDP, never fragments */
    n = fr_udp4(f, fr_mac_bcast, GUEST4, 137, 0xffffffffu, 137, "x", 1);
    ck_assert_int_eq(verdict(f, n), FILTER_PORT);
    n = fr_tcp4_syn(f, fr_mac_bcast, GUEST4, 40000, 0xffffffffu, 67);
    ck_assert_int_eq(verdict(f, n), FILTER_PROTO);
    n = fr_dhcp_discover(f, 1);
    f[FR_ETH_HLEN + 6] = 0x20; /* more fragments */
    ck_assert_int_eq(verdict(f, n), FILTER_FRAGMENT);
    f[FR_ETH_HLEN + 6] = 0x00;
    f[FR_ETH_HLEN + 7] = 0x10; /* offset 16 * 8 */
    ck_assert_int_eq(verdict(f, n), FILTER_FRAGMENT);
    /* Other IP protocols to the host alias (GRE) */
    n = fr_udp4(f, mac_host, GUEST4, 1, HOST4, 1, "xxxx", 4);
    f[FR_ETH_HLEN + 9] = 47;
    ck_assert_int_eq(verdict(f, n), FILTER_PROTO);
    /* A later fragment to the host alias passes (its ports were in the first),
     * a first fragment too short to hold the ports does not. */
    n = fr_udp4(f, mac_host, GUEST4, 1, HOST4, 7, "xxxxxxxx", 8);
    f[FR_ETH_HLEN + 7] = 0x01;
    ck_assert_int_eq(verdict(f, n), FILTER_PASS);
    n = fr_ipv4(f, mac_host, GUEST4, HOST4, 17, 2);
    f[FR_ETH_HLEN + 6] = 0x20;
    ck_assert_int_eq(verdict(f, n), FILTER_MALFORMED);
}
END_TEST

START_TEST(test_dropped_ipv6_and_other)
{
    size_t n = fr_udp6(f, mac_host, guest6, 40000, doc6, 9, 4);
    ck_assert_int_eq(verdict(f, n), FILTER_DEST);
    n = fr_udp6(f, mac_host, guest6, 40000, dns6, 53, 4);
    ck_assert_int_eq(verdict(f, n), FILTER_DEST);
    n = fr_udp6(f, mac_host, guest6, 40000, other6, 9, 4);
    ck_assert_int_eq(verdict(f, n), FILTER_DEST);
    n = fr_udp6(f, mac_host, guest6, 40000, host6, 53, 4);
    ck_assert_int_eq(verdict(f, n), FILTER_PORT);
    n = fr_udp6(f, fr_mac_bcast, guest6, 40000, allnodes6, 9, 4); /* slirp: -> ::1 */
    ck_assert_int_eq(verdict(f, n), FILTER_PROTO);
    n = fr_udp6(f, mac_host, guest6, 40000, ll_router6, 9, 4); /* host socket to fe80::2 */
    ck_assert_int_eq(verdict(f, n), FILTER_PROTO);
    n = fr_udp6(f, fr_mac_bcast, guest6, 546, dhcp6, 548, 4);
    ck_assert_int_eq(verdict(f, n), FILTER_PORT);
    n = fr_icmp6(f, fr_mac_bcast, guest6, allnodes6, 128); /* echo to all nodes */
    ck_assert_int_eq(verdict(f, n), FILTER_PROTO);
    n = fr_icmp6(f, mac_host, guest6, doc6, 128);
    ck_assert_int_eq(verdict(f, n), FILTER_DEST);
    n = fr_icmp6(f, fr_mac_bcast, guest6, snm6, 143); /* MLDv2 report */
    ck_assert_int_eq(verdict(f, n), FILTER_PROTO);
    n = fr_udp6(f, mac_host, guest6, 40000, host6, 7, 4);
    f[FR_ETH_HLEN + 6] = 0; /* hop-by-hop extension header */
    ck_assert_int_eq(verdict(f, n), FILTER_PROTO);
    /* Other EtherTypes: VLAN, NC-SI (slirp answers it), PPPoE */
    uint16_t types[] = {0x8100, 0x88f8, 0x8863, 0x0000, 0xffff};
    for (unsigned i = 0; i < sizeof types / sizeof types[0]; i++) {
        n = fr_arp_request(f, GUEST4, HOST4);
        fr_put16(f + 12, types[i]);
        ck_assert_int_eq(verdict(f, n), FILTER_ETHERTYPE);
    }
    /* Malformed headers */
    n = fr_arp_request(f, GUEST4, HOST4);
    f[FR_ETH_HLEN + 7] = 9; /* ARP opcode */
    ck_assert_int_eq(verdict(f, n), FILTER_MALFORMED);
    n = fr_udp4(f, mac_host, GUEST4, 1, HOST4, 7, "x", 1);
    f[FR_ETH_HLEN] = 0x44; /* IHL 16 bytes */
    ck_assert_int_eq(verdict(f, n), FILTER_MALFORMED);
    f[FR_ETH_HLEN] = 0x65; /* version 6 in an IPv4 frame */
    ck_assert_int_eq(verdict(f, n), FILTER_MALFORMED);
    n = fr_udp4(f, mac_host, GUEST4, 1, HOST4, 7, "x", 1);
    fr_put16(f + FR_ETH_HLEN + 2, 2000); /* total length beyond the frame */
    ck_assert_int_eq(verdict(f, n), FILTER_MALFORMED);
    n = fr_udp6(f, mac_host, guest6, 1, host6, 7, 4);
    fr_put16(f + FR_ETH_HLEN + 4, 100); /* payload length beyond the frame */
    ck_assert_int_eq(verdict(f, n), FILTER_MALFORMED);
    ck_assert_int_eq(filter_frame(NULL, 60), FILTER_MALFORMED);
    ck_assert_str_eq(filter_verdict_name(FILTER_DEST), "destination");
    ck_assert_str_eq(filter_verdict_name((filter_verdict_t)99), "?");
}
END_TEST

/* Every proper prefix of an allowed frame is refused (no partial header is
 * ever taken for a whole one). */
START_TEST(test_truncations)
{
    uint8_t frames[8][400];
    size_t len[8];
    len[0] = fr_arp_request(frames[0], GUEST4, HOST4);
    len[1] = fr_dhcp_discover(frames[1], 7);
    len[2] = fr_icmp4_echo(frames[2], mac_host, GUEST4, HOST4, 1, 1, 16);
    len[3] = fr_tcp4_syn(frames[3], mac_host, GUEST4, 40000, HOST4, 8080);
    len[4] = fr_udp6(frames[4], mac_host, guest6, 40000, host6, 7, 4);
    len[5] = fr_icmp6(frames[5], fr_mac_bcast, guest6, snm6, 135);
    len[6] = fr_udp6(frames[6], fr_mac_bcast, guest6, 546, dhcp6, 547, 4);
    len[7] = fr_udp4(frames[7], mac_host, GUEST4, 40000, HOST4, 7, "x", 1);
    for (int i = 0; i < 8; i++) {
        ck_assert_int_eq(verdict(frames[i], len[i]), FILTER_PASS);
        for (size_t cut = 0; cut < len[i]; cut++)
            ck_assert_int_ne(verdict(frames[i], cut), FILTER_PASS);
    }
}
END_TEST

/* Is this frame's destination one the policy may let through? */
static int dest_allowed(const uint8_t *fr, size_t len)
{
    uint16_t type = fr_get16(fr + 12);
    if (type == 0x0806)
        return 1;
    if (type == 0x0800) {
        uint32_t dst = fr_get32(fr + FR_ETH_HLEN + 16);
        return dst == HOST4 || dst == 0xffffffffu;
    }
    if (type == 0x86dd && len >= FR_ETH_HLEN + 40) {
        const uint8_t *d = fr + FR_ETH_HLEN + 24;
        return memcmp(d, host6, 16) == 0 || (d[0] == 0xff && d[1] == 0x02) ||
               (d[0] == 0xfe && (d[1] & 0xc0) == 0x80);
    }
    return 0;
}

START_TEST(test_random_frames)
{
    unsigned seed = 12345;
    uint8_t base[4][400];
    size_t blen[4];
    blen[0] = fr_udp4(base[0], mac_host, GUEST4, 40000, HOST4, 7, "xxxxxxxx", 8);
    blen[1] = fr_dhcp_discover(base[1], 9);
    blen[2] = fr_udp6(base[2], mac_host, guest6, 40000, host6, 7, 8);
    blen[3] = fr_arp_request(base[3], GUEST4, HOST4);
    int passed = 0;
    for (int i = 0; i < 200000; i++) {
        int k = rand_r(&seed) % 4;
        size_t len = blen[k];
        memcpy(f, base[k], len);
        int flips = 1 + rand_r(&seed) % 4;
        for (int j = 0; j < flips; j++)
            f[(size_t)rand_r(&seed) % len] ^= (uint8_t)(1u << (rand_r(&seed) % 8));
        if (rand_r(&seed) % 4 == 0)
            len = (size_t)rand_r(&seed) % (len + 1);
        filter_verdict_t v = verdict(f, len);
        ck_assert_int_lt(v, FILTER_NVERDICTS);
        if (v == FILTER_PASS) {
            passed++;
            ck_assert_msg(dest_allowed(f, len), "frame %d passed with a forbidden destination", i);
        }
    }
    ck_assert_int_gt(passed, 0);
}
END_TEST

/* ---- Arguments ------------------------------------------------------------------ */

START_TEST(test_forward_good)
{
    slirp_forward_t fw;
    char err[256];
    ck_assert_int_eq(slirp_forward_parse("tcp:127.0.0.1:8080-10.0.2.15:80", &fw, err, sizeof err),
                     0);
    ck_assert(!fw.udp);
    const struct sockaddr_in *h = (const struct sockaddr_in *)&fw.host;
    const struct sockaddr_in *g = (const struct sockaddr_in *)&fw.guest;
    ck_assert_int_eq(h->sin_family, AF_INET);
    ck_assert_uint_eq(ntohl(h->sin_addr.s_addr), FR_IP4(127, 0, 0, 1));
    ck_assert_uint_eq(ntohs(h->sin_port), 8080);
    ck_assert_uint_eq(ntohl(g->sin_addr.s_addr), GUEST4);
    ck_assert_uint_eq(ntohs(g->sin_port), 80);
    ck_assert_uint_eq(fw.len, sizeof(struct sockaddr_in));
    ck_assert_int_eq(slirp_forward_parse("udp:127.1.2.3:5353-10.0.2.20:53", &fw, err, sizeof err),
                     0);
    ck_assert(fw.udp);
    ck_assert_int_eq(slirp_forward_parse("tcp:[::1]:8080-[fec0::15]:80", &fw, err, sizeof err), 0);
    const struct sockaddr_in6 *g6 = (const struct sockaddr_in6 *)&fw.guest;
    ck_assert_int_eq(g6->sin6_family, AF_INET6);
    ck_assert_mem_eq(g6->sin6_addr.s6_addr, other6, 16);
    ck_assert_uint_eq(ntohs(g6->sin6_port), 80);
    ck_assert_uint_eq(fw.len, sizeof(struct sockaddr_in6));
    ck_assert_str_eq(fw.spec, "tcp:[::1]:8080-[fec0::15]:80");
}
END_TEST

START_TEST(test_forward_bad)
{
    static const char *const bad[] = {
        "tcp:0.0.0.0:8080-10.0.2.15:80",   /* not loopback: would listen on the network */
        "tcp:192.0.2.1:8080-10.0.2.15:80", /* not loopback */
        "tcp:[::]:8080-[fec0::15]:80",     /* not loopback */
        "tcp:[2001:db8::1]:80-[fec0::15]:80",
        "sctp:127.0.0.1:8080-10.0.2.15:80", /* protocol */
        "127.0.0.1:8080-10.0.2.15:80",
        "tcp:127.0.0.1:8080",           /* no guest side */
        "tcp:127.0.0.1:0-10.0.2.15:80", /* ports */
        "tcp:127.0.0.1:70000-10.0.2.15:80",
        "tcp:127.0.0.1:80-10.0.2.15:",
        "tcp:127.0.0.1:80x-10.0.2.15:80",
        "tcp:127.0.0.1:8080-10.0.2.2:80",   /* guest: the host alias */
        "tcp:127.0.0.1:8080-10.0.2.3:80",   /* guest: the DNS address */
        "tcp:127.0.0.1:8080-10.0.2.255:80", /* guest: broadcast */
        "tcp:127.0.0.1:8080-10.0.3.15:80",  /* guest: outside the network */
        "tcp:127.0.0.1:8080-[fec0::15]:80", /* families differ */
        "tcp:[::1]:8080-[fec0::2]:80",      /* guest: the IPv6 host alias */
        "tcp:[::1]:8080-[fec1::15]:80",     /* guest: outside the prefix */
        "tcp:[::1:8080-[fec0::15]:80",      /* brackets */
        "tcp:localhost:8080-10.0.2.15:80",  /* names are not resolved */
        "",
    };
    for (unsigned i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        slirp_forward_t fw;
        char err[256] = "";
        ck_assert_msg(slirp_forward_parse(bad[i], &fw, err, sizeof err) == -1, "accepted %s",
                      bad[i]);
        ck_assert_msg(strstr(err, "--forward") != NULL, "message '%s'", err);
        ck_assert_msg(strstr(err, bad[i]) != NULL, "message '%s' does not name '%s'", err, bad[i]);
    }
}
END_TEST

START_TEST(test_args)
{
    slirp_args_t a;
    char err[256];
    char *ok[] = {"nic-slirp",
                  "--endpoint",
                  "uplink",
                  "--forward",
                  "tcp:127.0.0.1:1-10.0.2.15:80",
                  "--forward",
                  "udp:[::1]:2-[fec0::15]:7",
                  NULL};
    ck_assert_int_eq(slirp_args_parse(7, ok, &a, err, sizeof err), 0);
    ck_assert_str_eq(a.endpoint, "uplink");
    ck_assert_int_eq(a.nforwards, 2);
    char *none[] = {"nic-slirp", NULL};
    ck_assert_int_eq(slirp_args_parse(1, none, &a, err, sizeof err), 0);
    ck_assert_str_eq(a.endpoint, "nic");
    ck_assert_int_eq(a.nforwards, 0);

    char *unknown[] = {"nic-slirp", "--bogus", NULL};
    ck_assert_int_eq(slirp_args_parse(2, unknown, &a, err, sizeof err), -1);
    ck_assert_ptr_nonnull(strstr(err, "--bogus"));
    char *missing[] = {"nic-slirp", "--forward", NULL};
    ck_assert_int_eq(slirp_args_parse(2, missing, &a, err, sizeof err), -1);
    ck_assert_ptr_nonnull(strstr(err, "--forward"));
    char *empty[] = {"nic-slirp", "--endpoint", "", NULL};
    ck_assert_int_eq(slirp_args_parse(3, empty, &a, err, sizeof err), -1);
    ck_assert_ptr_nonnull(strstr(err, "--endpoint"));
    char *bad[] = {"nic-slirp", "--forward", "tcp:0.0.0.0:1-10.0.2.15:80", NULL};
    ck_assert_int_eq(slirp_args_parse(3, bad, &a, err, sizeof err), -1);
    ck_assert_ptr_nonnull(strstr(err, "tcp:0.0.0.0:1-10.0.2.15:80"));

    char *many[2 + 2 * (SLIRP_ARGS_MAX_FORWARDS + 1)];
    int n = 0;
    many[n++] = "nic-slirp";
    for (int i = 0; i <= SLIRP_ARGS_MAX_FORWARDS; i++) {
        many[n++] = "--forward";
        many[n++] = "tcp:127.0.0.1:1-10.0.2.15:80";
    }
    many[n] = NULL;
    ck_assert_int_eq(slirp_args_parse(n, many, &a, err, sizeof err), -1);
    ck_assert_ptr_nonnull(strstr(err, "more than"));
}
END_TEST

static Suite *nic_filter_suite(void)
{
    Suite *s = suite_create("nic_filter");
    TCase *tc = tcase_create("filter");
    tcase_add_test(tc, test_allowed);
    tcase_add_test(tc, test_dropped_ipv4);
    tcase_add_test(tc, test_dropped_ipv6_and_other);
    tcase_add_test(tc, test_truncations);
    tcase_add_test(tc, test_random_frames);
    tcase_set_timeout(tc, 60);
    suite_add_tcase(s, tc);
    TCase *ta = tcase_create("args");
    tcase_add_test(ta, test_forward_good);
    tcase_add_test(ta, test_forward_bad);
    tcase_add_test(ta, test_args);
    suite_add_tcase(s, ta);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(nic_filter_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

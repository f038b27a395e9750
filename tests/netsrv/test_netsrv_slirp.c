/*
 * test_netsrv_slirp.c - netsrv on the real NIC driver (nic-slirp), booted
 * from a boot configuration as ferry-sim would, with a probe task as
 * netsrv.idl client:
 *
 *  - the shipped sim/configs/netsrv.cfg is a valid configuration;
 *  - netsrv gets 10.0.2.15/24 with gateway 10.0.2.2 from slirp's DHCP
 *    server and reports the lease (IF_DHCP | IF_DHCP_BOUND);
 *  - it pings slirp's host alias 10.0.2.2 (every request answered);
 *  - it configures an IPv6 address in fec0::/64 by SLAAC from slirp's
 *    router advertisements and pings fec0::2 (slirp's IPv6 host alias);
 *  - the session's counters moved and no ring fault was seen.
 *
 * Network safety: the only destinations are slirp's host aliases (which
 * map to the host's loopback); the configuration has no host forward, so
 * nothing listens on the host either.
 */
#include <boot.h>
#include <check.h>
#include <ferry/mk.h>
#include <ferry/sim.h>
#include <netsrv_client.h>
#include <netsrv_component.h>
#include <nic_slirp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MS 1000000ull
#define CALL (5000 * MS)

/* ---- The probe: a client task of netsrv -------------------------------------------------- */

static struct probe_result {
    int stage; /* how far it got */
    netsrv_netif_info_t ni;
    netsrv_counters_t c;
    netsrv_ping_result_t ping4, ping6;
    uint64_t ip6_hi, ip6_lo;
} res;

/* Wait until interface 0 holds a DHCP lease (10 s). */
static int wait_dhcp(mk_cap_t srv)
{
    char name[NETSRV_NAME_MAX + 1];
    for (int i = 0; i < 500; i++) {
        if (netsrv_get_netif(srv, CALL, 0, name, &res.ni, &res.c) != 0)
            return -1;
        if (res.ni.flags & NETSRV_IF_DHCP_BOUND)
            return 0;
        mk_sleep_ns(20 * MS);
    }
    return -1;
}

/* Wait for a preferred address in fec0::/64 (10 s). */
static int wait_slaac(mk_cap_t srv)
{
    for (int i = 0; i < 500; i++) {
        netsrv_ip6_addr_t a[NETSRV_IP6_ADDRS];
        uint32_t n = 0;
        if (netsrv_get_netif_ip6(srv, CALL, 0, a, &n) != 0)
            return -1;
        for (uint32_t k = 0; k < n; k++)
            if (a[k].hi == 0xfec0000000000000ull && a[k].state == NETSRV_IP6_PREFERRED) {
                res.ip6_hi = a[k].hi;
                res.ip6_lo = a[k].lo;
                return 0;
            }
        mk_sleep_ns(20 * MS);
    }
    return -1;
}

static int probe_main(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    mk_cap_t srv;
    if (mk_cap_lookup("netsrv", &srv) != MK_OK)
        return 1;
    res.stage = 1;
    if (wait_dhcp(srv) != 0)
        return 2;
    res.stage = 2;
    netsrv_addr_t host = {.family = NETSRV_AF_INET, .lo = 0x0a000202u}; /* 10.0.2.2 */
    if (netsrv_ping(srv, CALL, &host, 3, 56, 50, 2000, &res.ping4) != 0)
        return 3;
    res.stage = 3;
    if (wait_slaac(srv) != 0)
        return 4;
    res.stage = 4;
    netsrv_addr_t host6 = {.family = NETSRV_AF_INET6, .hi = 0xfec0000000000000ull, .lo = 2};
    if (netsrv_ping(srv, CALL, &host6, 3, 56, 50, 2000, &res.ping6) != 0)
        return 5;
    res.stage = 5;
    char name[NETSRV_NAME_MAX + 1];
    if (netsrv_get_netif(srv, CALL, 0, name, &res.ni, &res.c) != 0)
        return 6;
    res.stage = 6;
    return 0;
}

static const boot_component_t components[] = {
    {"nic-slirp", nic_slirp_main, "NIC driver on libslirp"},
    {"netsrv", netsrv_main, "network server"},
    {"probe", probe_main, "netsrv.idl client of this test"},
    {NULL, NULL, NULL},
};

static const boot_component_t *lookup(const char *name)
{
    for (const boot_component_t *c = components; c->name; c++)
        if (strcmp(c->name, name) == 0)
            return c;
    return NULL;
}

/* ---- Tests ------------------------------------------------------------------------------- */

START_TEST(test_shipped_config)
{
    const char *path = getenv("FERRY_NETSRV_CFG");
    ck_assert_ptr_nonnull(path);
    ck_assert_int_eq(sim_init(), MK_OK);
    boot_config_t *cfg;
    char err[512] = "";
    ck_assert_msg(boot_load(path, lookup, &cfg, err, sizeof err) == 0, "%s", err);
    ck_assert_int_eq(cfg->ntasks, 2);
    boot_free(cfg);
    sim_shutdown();
}
END_TEST

static const char config[] =
    "tasks = (\n"
    "  { name = \"slirp0\"; component = \"nic-slirp\"; args = [ \"--endpoint\", \"nic0\" ]; },\n"
    "  { name = \"netsrv\"; component = \"netsrv\"; args = [ \"--nic\", \"nic0\" ]; },\n"
    "  { name = \"probe\"; component = \"probe\"; }\n"
    ");\n"
    "endpoints = (\n"
    "  { name = \"nic0\"; server = \"slirp0\"; clients = ( { task = \"netsrv\"; badge = 1; } ); "
    "},\n"
    "  { name = \"netsrv\"; server = \"netsrv\"; clients = ( { task = \"probe\"; badge = 2; } ); "
    "}\n"
    ");\n";

START_TEST(test_dhcp_and_ping)
{
    char path[64];
    snprintf(path, sizeof path, "/tmp/ferry-netsrv-%d.cfg", (int)getpid());
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs(config, f);
    fclose(f);
    ck_assert_int_eq(sim_init(), MK_OK);
    boot_config_t *cfg;
    char err[512] = "";
    ck_assert_msg(boot_load(path, lookup, &cfg, err, sizeof err) == 0, "%s", err);
    unlink(path);
    ck_assert_int_eq(boot_start(cfg), MK_OK);
    int status = -100;
    ck_assert_int_eq(mk_task_wait(cfg->tasks[2].cap, &status, 60000 * MS), MK_OK);
    ck_assert_msg(status == 0, "probe failed with %d at stage %d", status, res.stage);

    ck_assert_uint_eq(res.ni.ipv4_addr, 0x0a00020fu); /* 10.0.2.15 */
    ck_assert_uint_eq(res.ni.ipv4_mask, 0xffffff00u);
    ck_assert_uint_eq(res.ni.ipv4_gw, 0x0a000202u);
    ck_assert_uint_eq(res.ni.flags & (NETSRV_IF_DHCP | NETSRV_IF_DHCP_BOUND | NETSRV_IF_LINK_UP),
                      NETSRV_IF_DHCP | NETSRV_IF_DHCP_BOUND | NETSRV_IF_LINK_UP);
    ck_assert_uint_eq(res.ni.mac, 0x525400123456ull);
    ck_assert_uint_eq(res.ping4.transmitted, 3);
    ck_assert_uint_eq(res.ping4.received, 3);
    ck_assert_uint_eq(res.ping6.transmitted, 3);
    ck_assert_uint_eq(res.ping6.received, 3);
    ck_assert_uint_eq(res.ip6_lo, 0x505400fffe123456ull); /* EUI-64 of the MAC */
    ck_assert_uint_ge(res.c.rx_packets, 8);
    ck_assert_uint_ge(res.c.tx_packets, 8);
    ck_assert_uint_eq(res.c.ring_errors, 0);
    ck_assert_uint_eq(res.c.rx_errors, 0);
    ck_assert_uint_eq(res.c.tx_drops, 0);
    boot_free(cfg);
    sim_shutdown();
}
END_TEST

static Suite *netsrv_slirp_suite(void)
{
    Suite *s = suite_create("netsrv_slirp");
    TCase *tc = tcase_create("netsrv_slirp");
    tcase_set_timeout(tc, 90);
    tcase_add_test(tc, test_shipped_config);
    tcase_add_test(tc, test_dhcp_and_ping);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(netsrv_slirp_suite());
    srunner_set_fork_status(sr, CK_FORK); /* one netsrv (one lwIP) per process */
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

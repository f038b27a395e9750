/*
 * test_regions.c - proves the shared-region layouts of the NIC session
 * (ferry/nic_region.h) and the socket session (ferry/sock_region.h): the
 * geometry rules refuse what they must; parts never overlap, are aligned
 * and fit inside the computed size for every accepted geometry; the socket
 * session's bitmaps and signal handshake behave (take clears, a sleeper
 * that asked for a signal is told to sleep only while no bit is set).
 */
#include <check.h>
#include <ferry/nic_region.h>
#include <ferry/sock_region.h>
#include <stdlib.h>

static void no_overlap(size_t a, size_t alen, size_t b, size_t blen)
{
    ck_assert_msg(a + alen <= b || b + blen <= a, "[%zu,+%zu) overlaps [%zu,+%zu)", a, alen, b, blen);
}

START_TEST(test_nic_layout)
{
    nic_layout_t l;
    ck_assert_int_eq(nic_layout(1, 2048, &l), -1);
    ck_assert_int_eq(nic_layout(3, 2048, &l), -1);
    ck_assert_int_eq(nic_layout(8192, 2048, &l), -1);
    ck_assert_int_eq(nic_layout(64, 1000, &l), -1);
    ck_assert_int_eq(nic_layout(64, 2050, &l), -1);
    ck_assert_int_eq(nic_layout(64, 131072, &l), -1);
    for (uint32_t n = NIC_REGION_BUFS_MIN; n <= NIC_REGION_BUFS_MAX; n *= 2) {
        for (uint32_t b = NIC_REGION_BUF_MIN; b <= NIC_REGION_BUF_MAX; b *= 2) {
            ck_assert_int_eq(nic_layout(n, b, &l), 0);
            size_t q = ring_queue_bytes(n), data = (size_t)n * b;
            size_t parts[][2] = {{0, sizeof(nic_region_hdr_t)}, {l.rx_free, q}, {l.rx_active, q},
                                 {l.tx_active, q}, {l.tx_free, q}, {l.rx_data, data}, {l.tx_data, data}};
            for (int i = 0; i < 7; i++) {
                ck_assert_uint_le(parts[i][0] + parts[i][1], l.size);
                ck_assert_uint_eq(parts[i][0] % RING_CACHELINE, 0);
                for (int j = i + 1; j < 7; j++)
                    no_overlap(parts[i][0], parts[i][1], parts[j][0], parts[j][1]);
            }
            ring_region_t r = nic_data_region(&l);
            ck_assert_int_eq(ring_region_check(&r), RING_OK);
            ck_assert_uint_eq(ring_region_nbufs(&r), n);
        }
    }
}
END_TEST

START_TEST(test_sock_layout)
{
    sock_layout_t l;
    ck_assert_int_eq(sock_layout(0, 4096, &l), -1);
    ck_assert_int_eq(sock_layout(SOCK_REGION_SOCKETS_MAX + 1, 4096, &l), -1);
    ck_assert_int_eq(sock_layout(16, 1000, &l), -1);
    static const uint32_t counts[] = {1, 63, 64, 65, 1000, SOCK_REGION_SOCKETS_MAX};
    for (unsigned c = 0; c < sizeof counts / sizeof counts[0]; c++) {
        for (uint32_t rs = BYTERING_SIZE_MIN; rs <= (1u << 20); rs *= 4) {
            uint32_t n = counts[c];
            ck_assert_int_eq(sock_layout(n, rs, &l), 0);
            size_t map = l.map_words * 8u;
            ck_assert_uint_ge(map * 8, n);
            size_t parts[][2] = {{0, sizeof(sock_region_hdr_t)}, {l.doorbell, map}, {l.srv_wanted, 4},
                                 {l.ready, map}, {l.cli_wanted, 4}, {l.slots, n * sizeof(sock_slot_t)},
                                 {l.rings, (size_t)n * l.ring_stride}};
            for (int i = 0; i < 7; i++) {
                ck_assert_uint_le(parts[i][0] + parts[i][1], l.size);
                ck_assert_uint_eq(parts[i][0] % SOCK_REGION_CACHELINE, 0);
                for (int j = i + 1; j < 7; j++)
                    no_overlap(parts[i][0], parts[i][1], parts[j][0], parts[j][1]);
            }
            /* The last socket's TX ring ends inside the region. */
            uint8_t *base = (uint8_t *)(uintptr_t)0x10000; /* offsets only, never dereferenced */
            size_t end = (size_t)((uint8_t *)sock_tx_ring(base, &l, n - 1) - base) + bytering_bytes(rs);
            ck_assert_uint_le(end, l.size);
            ck_assert_uint_ge((size_t)((uint8_t *)sock_tx_ring(base, &l, 0) - base),
                              (size_t)((uint8_t *)sock_rx_ring(base, &l, 0) - base) + bytering_bytes(rs));
        }
    }
}
END_TEST

START_TEST(test_sock_bits_and_sleep)
{
    sock_layout_t l;
    ck_assert_int_eq(sock_layout(130, 4096, &l), 0);
    void *base = aligned_alloc(4096, sock_align_up(l.size, 4096));
    ck_assert_ptr_nonnull(base);
    _Atomic uint64_t *map = sock_map(base, l.doorbell);
    _Atomic uint32_t *wanted = sock_wanted(base, l.srv_wanted);
    for (uint32_t w = 0; w < l.map_words; w++)
        atomic_store(&map[w], 0);
    atomic_store(wanted, 0);
    /* Nothing set: the sleeper may sleep, and has asked for a signal. */
    ck_assert(sock_prepare_sleep(wanted, map, l.map_words));
    ck_assert_uint_eq(atomic_load(wanted), 1);
    /* The setter sees the request once. */
    sock_bit_set(map, 129);
    ck_assert(sock_need_signal(wanted));
    ck_assert(!sock_need_signal(wanted));
    /* A bit already set: do not sleep, and withdraw the request. */
    ck_assert(!sock_prepare_sleep(wanted, map, l.map_words));
    ck_assert_uint_eq(atomic_load(wanted), 0);
    sock_bit_set(map, 0);
    sock_bit_set(map, 64);
    ck_assert_uint_eq(sock_bits_take(map, 0), 1);
    ck_assert_uint_eq(sock_bits_take(map, 1), 1);
    ck_assert_uint_eq(sock_bits_take(map, 2), 2);
    ck_assert_uint_eq(sock_bits_take(map, 2), 0);
    free(base);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("regions");
    TCase *tc = tcase_create("layouts");
    tcase_add_test(tc, test_nic_layout);
    tcase_add_test(tc, test_sock_layout);
    tcase_add_test(tc, test_sock_bits_and_sleep);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}

/*
 * test_bytering.c - proves the byte ring (ferry/bytering.h): bytes come out
 * in order and intact across the wrap of the buffer and of the u32
 * indices; partial and all-or-nothing operations do what they say; a
 * zero-copy spans stop at the end of the data area; a
 * hostile peer's impossible index is refused and counted without any access
 * outside the data area (the ring sits in an exact-size heap block, so ASan
 * would see one); two threads stream 64 MiB through a small ring with every
 * byte checked.
 */
#include <check.h>
#include <ferry/bytering.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

static bytering_t *make(uint32_t size, uint32_t start)
{
    bytering_t *r = aligned_alloc(BYTERING_CACHELINE, bytering_bytes(size));
    ck_assert_ptr_nonnull(r);
    ck_assert_int_eq(bytering_init(r, size, start), BYTERING_OK);
    return r;
}

START_TEST(test_bad_arguments)
{
    bytering_t *r = make(64, 0);
    bytering_prod_t p;
    bytering_cons_t c;
    ck_assert_int_eq(bytering_init(r, 100, 0), BYTERING_EINVAL);
    ck_assert_int_eq(bytering_init(r, 32, 0), BYTERING_EINVAL);
    ck_assert_int_eq(bytering_init((bytering_t *)((char *)r + 8), 64, 0), BYTERING_EINVAL);
    ck_assert_int_eq(bytering_prod_attach(&p, r, 96), BYTERING_EINVAL);
    ck_assert_int_eq(bytering_cons_attach(&c, NULL, 64), BYTERING_EINVAL);
    ck_assert_uint_eq(bytering_bytes(65), 0);
    ck_assert_uint_eq(bytering_bytes(64), 128 + 64);
    free(r);
}
END_TEST

START_TEST(test_stream_across_both_wraps)
{
    /* Indices start 100 bytes before 2^32: they wrap during the test. */
    bytering_t *r = make(64, UINT32_MAX - 99);
    bytering_prod_t p;
    bytering_cons_t c;
    ck_assert_int_eq(bytering_prod_attach(&p, r, 64), BYTERING_OK);
    ck_assert_int_eq(bytering_cons_attach(&c, r, 64), BYTERING_OK);
    uint8_t in[300], out[300];
    for (int i = 0; i < 300; i++)
        in[i] = (uint8_t)(i * 7 + 3);
    uint32_t sent = 0, got = 0, n;
    for (int round = 0; round < 100 && got < 300; round++) {
        uint32_t chunk = 1 + (uint32_t)round % 23;
        if (sent < 300) {
            ck_assert_int_eq(bytering_prod_write(&p, in + sent, chunk > 300 - sent ? 300 - sent : chunk, &n), BYTERING_OK);
            sent += n;
            bytering_prod_publish(&p);
        }
        ck_assert_int_eq(bytering_cons_read(&c, out + got, 1 + (uint32_t)round % 17, &n), BYTERING_OK);
        got += n;
        bytering_cons_publish(&c);
    }
    uint32_t avail;
    while (got < 300) {
        ck_assert_int_eq(bytering_cons_read(&c, out + got, 300 - got, &n), BYTERING_OK);
        ck_assert_uint_gt(n, 0);
        got += n;
        bytering_cons_publish(&c);
        if (sent < 300) {
            ck_assert_int_eq(bytering_prod_write(&p, in + sent, 300 - sent, &n), BYTERING_OK);
            sent += n;
            bytering_prod_publish(&p);
        }
    }
    ck_assert_mem_eq(in, out, 300);
    ck_assert_int_eq(bytering_cons_avail(&c, &avail), BYTERING_OK);
    ck_assert_uint_eq(avail, 0);
    ck_assert_uint_lt(atomic_load(&r->tail), 300); /* it did wrap */
    free(r);
}
END_TEST

START_TEST(test_partial_and_all_or_nothing)
{
    bytering_t *r = make(64, 0);
    bytering_prod_t p;
    bytering_cons_t c;
    bytering_prod_attach(&p, r, 64);
    bytering_cons_attach(&c, r, 64);
    uint8_t buf[100];
    memset(buf, 0xab, sizeof buf);
    uint32_t n, space;
    ck_assert_int_eq(bytering_prod_write(&p, buf, 100, &n), BYTERING_OK);
    ck_assert_uint_eq(n, 64); /* as many as fit */
    ck_assert_int_eq(bytering_prod_space(&p, &space), BYTERING_OK);
    ck_assert_uint_eq(space, 0);
    ck_assert_int_eq(bytering_prod_write_all(&p, buf, 1), BYTERING_ESPACE);
    /* Not published yet: the consumer sees nothing. */
    ck_assert_int_eq(bytering_cons_avail(&c, &n), BYTERING_OK);
    ck_assert_uint_eq(n, 0);
    bytering_prod_publish(&p);
    uint32_t hdr;
    ck_assert_int_eq(bytering_cons_peek(&c, 60, &hdr, 4), BYTERING_OK);
    ck_assert_int_eq(bytering_cons_peek(&c, 61, &hdr, 4), BYTERING_EDATA);
    ck_assert_int_eq(bytering_cons_peek(&c, UINT32_MAX, &hdr, 4), BYTERING_EDATA);
    ck_assert_int_eq(bytering_cons_skip(&c, 65), BYTERING_EDATA);
    ck_assert_int_eq(bytering_cons_skip(&c, 40), BYTERING_OK);
    /* Space comes back only when the consumer publishes. */
    ck_assert_int_eq(bytering_prod_space(&p, &space), BYTERING_OK);
    ck_assert_uint_eq(space, 0);
    bytering_cons_publish(&c);
    ck_assert_int_eq(bytering_prod_space(&p, &space), BYTERING_OK);
    ck_assert_uint_eq(space, 40);
    ck_assert_int_eq(bytering_prod_write_all(&p, buf, 40), BYTERING_OK);
    free(r);
}
END_TEST

/* bytering_cons_span: contiguous runs up to the end of the data area, then
 * from its start; consuming them with skip hands the space back. */
START_TEST(test_span)
{
    bytering_t *r = make(64, 40); /* positions 40..63, then 0.. */
    bytering_prod_t p;
    bytering_cons_t c;
    bytering_prod_attach(&p, r, 64);
    bytering_cons_attach(&c, r, 64);
    const void *ptr;
    uint32_t len, n;
    ck_assert_int_eq(bytering_cons_span(&c, 0, &ptr, &len), BYTERING_OK);
    ck_assert_uint_eq(len, 0);
    uint8_t in[50];
    for (int i = 0; i < 50; i++)
        in[i] = (uint8_t)(i + 1);
    ck_assert_int_eq(bytering_prod_write(&p, in, 50, &n), BYTERING_OK);
    bytering_prod_publish(&p);
    ck_assert_int_eq(bytering_cons_span(&c, 0, &ptr, &len), BYTERING_OK);
    ck_assert_uint_eq(len, 24); /* up to the end of the data area */
    ck_assert_ptr_eq(ptr, r->data + 40);
    ck_assert_mem_eq(ptr, in, 24);
    ck_assert_int_eq(bytering_cons_span(&c, 24, &ptr, &len), BYTERING_OK);
    ck_assert_uint_eq(len, 26); /* the rest, from the start */
    ck_assert_ptr_eq(ptr, r->data);
    ck_assert_mem_eq(ptr, in + 24, 26);
    ck_assert_int_eq(bytering_cons_span(&c, 10, &ptr, &len), BYTERING_OK);
    ck_assert_uint_eq(len, 14);
    ck_assert_int_eq(bytering_cons_span(&c, 50, &ptr, &len), BYTERING_OK);
    ck_assert_uint_eq(len, 0);
    ck_assert_int_eq(bytering_cons_span(&c, 51, &ptr, &len), BYTERING_EDATA);
    ck_assert_int_eq(bytering_cons_skip(&c, 50), BYTERING_OK);
    bytering_cons_publish(&c);
    uint32_t space;
    ck_assert_int_eq(bytering_prod_space(&p, &space), BYTERING_OK);
    ck_assert_uint_eq(space, 64);
    /* An impossible tail: nothing to read, counted. */
    atomic_store(&r->tail, c.head + 65);
    ck_assert_int_eq(bytering_cons_span(&c, 0, &ptr, &len), BYTERING_EINDEX);
    ck_assert_uint_eq(len, 0);
    ck_assert_uint_eq(c.errors, 1);
    free(r);
}
END_TEST

START_TEST(test_hostile_indices)
{
    bytering_t *r = make(64, 1000);
    bytering_prod_t p;
    bytering_cons_t c;
    bytering_prod_attach(&p, r, 64);
    bytering_cons_attach(&c, r, 64);
    uint8_t buf[256];
    uint32_t n;
    /* A producer claims more bytes than the ring holds. */
    atomic_store(&r->tail, 1000 + 65);
    ck_assert_int_eq(bytering_cons_avail(&c, &n), BYTERING_EINDEX);
    ck_assert_uint_eq(n, 0);
    ck_assert_int_eq(bytering_cons_read(&c, buf, sizeof buf, &n), BYTERING_EINDEX);
    ck_assert_uint_eq(n, 0);
    ck_assert_int_eq(bytering_cons_peek(&c, 0, buf, 8), BYTERING_EINDEX);
    ck_assert_int_eq(bytering_cons_skip(&c, 1), BYTERING_EINDEX);
    atomic_store(&r->tail, 1000 - 1); /* behind the head */
    ck_assert_int_eq(bytering_cons_avail(&c, &n), BYTERING_EINDEX);
    ck_assert_uint_eq(c.errors, 5); /* avail, read, peek, skip, avail */
    ck_assert_uint_eq(c.head, 1000); /* nothing consumed */
    /* A consumer claims to have read what was never written. */
    atomic_store(&r->tail, 1000);
    atomic_store(&r->head, 1000 + 5);
    ck_assert_int_eq(bytering_prod_write(&p, buf, 10, &n), BYTERING_EINDEX);
    ck_assert_uint_eq(n, 0);
    ck_assert_int_eq(bytering_prod_write_all(&p, buf, 10), BYTERING_EINDEX);
    ck_assert_uint_eq(p.errors, 2);
    /* Once the peer behaves again, so does the ring. */
    atomic_store(&r->head, 1000);
    ck_assert_int_eq(bytering_prod_write(&p, buf, 10, &n), BYTERING_OK);
    ck_assert_uint_eq(n, 10);
    free(r);
}
END_TEST

#define STREAM (64u << 20)

static uint8_t pattern(uint32_t i)
{
    return (uint8_t)((i * 2654435761u) >> 24);
}

static void *producer(void *arg)
{
    bytering_prod_t *p = arg;
    uint8_t buf[777];
    uint32_t sent = 0;
    while (sent < STREAM) {
        uint32_t len = STREAM - sent < sizeof buf ? STREAM - sent : (uint32_t)sizeof buf;
        for (uint32_t i = 0; i < len; i++)
            buf[i] = pattern(sent + i);
        uint32_t off = 0, n;
        while (off < len) {
            if (bytering_prod_write(p, buf + off, len - off, &n) != BYTERING_OK)
                return NULL;
            off += n;
            bytering_prod_publish(p);
            if (n == 0)
                sched_yield();
        }
        sent += len;
    }
    return p;
}

START_TEST(test_two_threads)
{
    bytering_t *r = make(4096, UINT32_MAX - 5000);
    bytering_prod_t p;
    bytering_cons_t c;
    bytering_prod_attach(&p, r, 4096);
    bytering_cons_attach(&c, r, 4096);
    pthread_t t;
    ck_assert_int_eq(pthread_create(&t, NULL, producer, &p), 0);
    uint8_t buf[1000];
    uint32_t got = 0, n;
    uint64_t spins = 0;
    while (got < STREAM && spins < 2000000000ull) {
        ck_assert_int_eq(bytering_cons_read(&c, buf, sizeof buf, &n), BYTERING_OK);
        for (uint32_t i = 0; i < n; i++)
            if (buf[i] != pattern(got + i))
                ck_abort_msg("byte %u is wrong", got + i);
        got += n;
        bytering_cons_publish(&c);
        if (n == 0) {
            spins++;
            sched_yield();
        }
    }
    void *res;
    pthread_join(t, &res);
    ck_assert_ptr_eq(res, &p);
    ck_assert_uint_eq(got, STREAM);
    free(r);
}
END_TEST

static Suite *bytering_suite(void)
{
    Suite *s = suite_create("bytering");
    TCase *tc = tcase_create("bytering");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_bad_arguments);
    tcase_add_test(tc, test_stream_across_both_wraps);
    tcase_add_test(tc, test_partial_and_all_or_nothing);
    tcase_add_test(tc, test_span);
    tcase_add_test(tc, test_hostile_indices);
    tcase_add_test(tc, test_two_threads);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(bytering_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}

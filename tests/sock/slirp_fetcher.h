/*
 * slirp_fetcher.h - the in-simulator client of test_sock_slirp.c.
 */
#ifndef FERRY_TEST_SLIRP_FETCHER_H
#define FERRY_TEST_SLIRP_FETCHER_H

#include <stdbool.h>
#include <stdint.h>

#define FETCH_BYTES (512u * 1024)

/* Byte i of stream k (both ends use it). */
static inline uint8_t pat(uint32_t k, uint64_t i)
{
    uint64_t x = (i >> 3) * 0x9e3779b97f4a7c15ull + k * 0x632be59bd9b4e019ull;
    x ^= x >> 29;
    return (uint8_t)(x >> (8 * (i & 7)));
}

typedef struct fetch {
    uint16_t port; /* the host's echo server (set by the test) */
    int stage;
    uint64_t got4, got6;
    char why[128];
} fetch_t;

extern fetch_t fetch;

/* The component: 10.0.2.2:port, then [fec0::2]:port, FETCH_BYTES each way,
 * checked. 0, or the stage that failed (fetch.why says why). */
int fetcher_main(int argc, char **argv);

#endif

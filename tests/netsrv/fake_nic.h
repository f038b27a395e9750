/*
 * fake_nic.h - a NIC driver written for the netsrv tests. It serves nic.idl
 * (generated dispatch, nic_server_dep) as a task in the simulator, like a
 * real driver, and "plays the wire": every frame netsrv sends is recorded
 * for the test; optionally a peer at W_PEER_IP answers ARP and ICMP echo;
 * the test injects frames, raw (hostile) descriptors and an impossible tail
 * towards netsrv, and can make the driver hold its TX buffers.
 *
 * The test thread and the driver task share `fnic` (same address space),
 * guarded by fnic.lock; after a change the test rings the driver's
 * notification (fnic_kick).
 */
#ifndef FERRY_TEST_NETSRV_FAKE_NIC_H
#define FERRY_TEST_NETSRV_FAKE_NIC_H

#include <ferry/mk.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define FNIC_FRAME_MAX 2048u
#define FNIC_LOG 1024u   /* frames netsrv sent, kept (ring) */
#define FNIC_INJECT 128u /* frames waiting to go to netsrv */
#define FNIC_RAW 16u

#define W_NETSRV_IP W_IP4(10, 0, 0, 1)
#define W_PEER_IP W_IP4(10, 0, 0, 2)
#define W_SILENT_IP W_IP4(10, 0, 0, 3) /* nobody answers */

extern const uint8_t fnic_mac[6]; /* the NIC's (netsrv's) MAC: 02:00:00:00:00:01 */
extern const uint8_t peer_mac[6]; /* the peer on the wire:   02:00:00:00:00:02 */

typedef struct fnic_frame {
    uint32_t len;
    uint8_t data[FNIC_FRAME_MAX];
} fnic_frame_t;

typedef struct fnic {
    pthread_mutex_t lock;
    /* configuration (set before netsrv opens the session) */
    uint32_t mtu, max_frame;
    bool link_up;
    bool refuse_open; /* answer open with EBUSY */
    /* the session */
    bool open;
    uint32_t opens;
    /* behaviour */
    bool respond;  /* the peer answers ARP for W_PEER_IP and echo requests to it */
    bool hold_tx;  /* keep TX buffers instead of returning them */
    bool release;  /* return all held TX buffers at the next turn */
    bool bad_tail; /* publish an impossible rx_active tail once */
    bool twice;    /* put the next injected frame's buffer on rx_active twice */
    /* towards netsrv */
    fnic_frame_t inject[FNIC_INJECT];
    uint32_t ninject;
    struct {
        uint32_t offset, len;
    } raw[FNIC_RAW];
    uint32_t nraw;
    /* from netsrv */
    fnic_frame_t log[FNIC_LOG];
    uint32_t nsent; /* frames ever sent; frame i is log[i % FNIC_LOG] */
    uint32_t held;  /* TX buffers held now */
    uint32_t signals_in;
    uint32_t lost_wakeups; /* woke by timeout while netsrv had published TX and no signal came */
    uint32_t alive;        /* driver tasks started by fnic_start whose main has not returned */
} fnic_t;

extern fnic_t fnic;

/* The driver task: capabilities "nic" (endpoint, receive) and "nic-ntfn"
 * (its notification, all rights). */
int fnic_main(int argc, char **argv);

/* Test side (root task). fnic_setup creates the endpoint and notification,
 * starts the driver and returns a send capability to its endpoint (to give
 * netsrv). */
mk_cap_t fnic_setup(void);
void fnic_kick(void);
void fnic_inject(const uint8_t *frame, size_t len);
uint32_t fnic_mark(void);
/* Wait up to timeout_ns for a frame sent at or after `*from` that `match`
 * accepts; copies it to out (FNIC_FRAME_MAX bytes) and advances *from past
 * it. Returns its length, or 0 on timeout. */
size_t fnic_wait(uint32_t *from, bool (*match)(const uint8_t *f, size_t len, const void *arg),
                 const void *arg, uint64_t timeout_ns, uint8_t *out);

/* For the driver-death tests: like fnic_setup, but the test keeps no
 * receive capability to the endpoint (so it dies with the driver task) and
 * gets the driver's task capability in *task (to kill it). Called again
 * after that task died, it waits (bounded) until the old task's main has
 * returned, resets the session state (fnic.open, held buffers, queued
 * frames; the log of sent frames stays) and starts a new driver task on a
 * new endpoint. Returns a send capability (unbadged) to the new endpoint. */
mk_cap_t fnic_start(mk_cap_t *task);

#endif /* FERRY_TEST_NETSRV_FAKE_NIC_H */

/*
 * args.h - the slirp driver's command line (nic_slirp.h lists the options).
 * Parsing is pure (no slirp, no kernel), so the tests check it directly.
 */
#ifndef FERRY_SLIRP_ARGS_H
#define FERRY_SLIRP_ARGS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

#define SLIRP_ARGS_MAX_FORWARDS 16

/* One host port forward: connections (TCP) or datagrams (UDP) to `host`
 * on the host are forwarded by slirp to `guest` on the virtual network. */
typedef struct slirp_forward {
    bool udp;
    struct sockaddr_storage host;  /* AF_INET 127.0.0.0/8 or AF_INET6 ::1 */
    struct sockaddr_storage guest; /* same family, inside the virtual network */
    socklen_t len;                 /* of either address */
    char spec[128];                /* as given, for messages */
} slirp_forward_t;

typedef struct slirp_args {
    const char *endpoint; /* capability name of the endpoint ("nic") */
    int nforwards;
    slirp_forward_t forwards[SLIRP_ARGS_MAX_FORWARDS];
} slirp_args_t;

/* Parse argv[1..argc-1]. Returns 0, or -1 with a message naming the
 * offending argument in err. */
int slirp_args_parse(int argc, char **argv, slirp_args_t *out, char *err, size_t errlen);

/* Parse one forward specification (the value of --forward). */
int slirp_forward_parse(const char *spec, slirp_forward_t *out, char *err, size_t errlen);

#endif

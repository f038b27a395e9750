/*
 * apputil.h - small helpers shared by the demo applications (echo, httpd,
 * nperf, ping): argument parsing and socket set-up on ferry/socket.h, so
 * the same source builds for Ferry and for native Linux sockets.
 */
#ifndef FERRY_APPUTIL_H
#define FERRY_APPUTIL_H

#include <ferry/socket.h>
#include <stdbool.h>
#include <stdint.h>

/* Parse a decimal number in [min, max]; 0 on success, -1 otherwise. */
int app_parse_u32(const char *s, uint32_t min, uint32_t max, uint32_t *out);

/* A bound (and, for TCP, listening) socket on the wildcard address of
 * `family` at `port`, non-blocking; -1 (logged) on failure. IPv6 sockets
 * are IPv6-only so that an IPv4 socket can share the port. */
int app_listen(int family, int type, uint16_t port, int backlog);

/* Fill `ss` with address text "A.B.C.D" or an IPv6 literal plus port;
 * returns the address length, or 0 if the text is not an address. */
fs_socklen_t app_addr(const char *text, uint16_t port, struct fs_sockaddr_storage *ss);

/* "A.B.C.D:port" / "[v6]:port" of an address, for logs. */
const char *app_addr_str(const struct fs_sockaddr *sa, char *buf, unsigned len);

#endif

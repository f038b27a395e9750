/*
 * demo.h - the foundation demo: two components that exchange IPC, shared
 * memory and notifications and say what they do.
 *
 * ping writes a line into the shared buffer "buffer" (read-write for ping,
 * read-only for pong), calls pong's `demo` interface (src/interfaces/demo.idl)
 * over the endpoint "pingpong" with the offset and length, and every
 * --bell-every rounds rings the notification "doorbell". pong serves the
 * interface through the generated dispatch (checksum of the bytes it reads)
 * and, in the same loop, wakes for the doorbell through a bound notification.
 */
#ifndef FERRY_DEMO_H
#define FERRY_DEMO_H

int demo_ping_main(int argc, char **argv);
int demo_pong_main(int argc, char **argv);

#endif

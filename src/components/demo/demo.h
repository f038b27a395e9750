/*
 * demo.h - the foundation demo: two components that exchange IPC, shared
 * memory and notifications and say what they do.
 *
 * ping writes a line into the shared buffer "buffer" (read-write for ping,
 * read-only for pong), calls pong over the endpoint "pingpong" with the
 * offset and length, and every --bell-every rounds rings the notification
 * "doorbell". pong serves calls (checksum of the bytes it reads) and, in the
 * same loop, wakes for the doorbell through a bound notification.
 */
#ifndef FERRY_DEMO_H
#define FERRY_DEMO_H

/* Labels of the demo protocol on "pingpong". */
#define DEMO_LABEL_CHECKSUM 1 /* mr[0] = offset, mr[1] = length -> mr[0] = sum */

int demo_ping_main(int argc, char **argv);
int demo_pong_main(int argc, char **argv);

#endif

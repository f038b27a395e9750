/*
 * apps.h - entry points of the demo applications (each but ping also
 * builds as a native Linux program: sim/native/).
 */
#ifndef FERRY_APPS_H
#define FERRY_APPS_H

#include <stddef.h>

int echo_main(int argc, char **argv);
int httpd_main(int argc, char **argv);
int nperf_main(int argc, char **argv);
/* Ferry only (netsrv.idl's ping): not in the native builds. */
int ping_main(int argc, char **argv);
/* Ferry only: httpd with /stats showing netsrv's counters (netstats.c). */
int httpd_ferry_main(int argc, char **argv);
/* Ferry only: netsrv's memory as JSON lines, the benchmark's probe (netmem.c). */
int netmem_main(int argc, char **argv);

/* httpd's /stats page: a provider writes plain text into buf (at most len
 * bytes, NUL-terminated) and returns its length, or -1. Ferry builds set
 * one that reads netsrv's counters; without one, /stats says so. */
typedef int (*httpd_stats_fn)(char *buf, size_t len);
void httpd_set_stats(httpd_stats_fn fn);

#endif

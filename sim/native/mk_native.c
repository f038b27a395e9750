/*
 * mk_native.c - the few kernel-interface calls an application uses besides
 * sockets (logging, time), for the native Linux build of the applications.
 * Not a kernel: no IPC, no capabilities.
 */
#include <ferry/logline.h>
#include <ferry/mk.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const char *native_name = "app";

void mk_native_set_name(const char *name);
void mk_native_set_name(const char *name)
{
    native_name = name;
}

const char *mk_task_name(void)
{
    return native_name;
}

uint64_t mk_time_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

void mk_sleep_ns(uint64_t ns)
{
    struct timespec ts = {.tv_sec = (time_t)(ns / 1000000000ull), .tv_nsec = (long)(ns % 1000000000ull)};
    nanosleep(&ts, NULL);
}

void mk_vlog(const char *fmt, va_list ap)
{
    ferry_log_line(2, native_name, fmt, ap);
}

void mk_log(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    mk_vlog(fmt, ap);
    va_end(ap);
}

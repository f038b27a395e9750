/*
 * log.c - component logging: every line carries the task's name.
 */
#include "kstate.h"

#include <ferry/logline.h>

#include <stdio.h>
#include <string.h>
#include <unistd.h>

static int log_fd = 2;

void sim_set_log_fd(int fd)
{
    log_fd = fd;
}

void k_log_raw(const char *who, const char *fmt, va_list ap)
{
    ferry_log_line(log_fd, who, fmt, ap);
}

void mk_vlog(const char *fmt, va_list ap)
{
    k_log_raw(mk_task_name(), fmt, ap);
}

void mk_log(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    mk_vlog(fmt, ap);
    va_end(ap);
}

void k_warn(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    k_log_raw("kernel", fmt, ap);
    va_end(ap);
}

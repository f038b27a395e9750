/*
 * log.c - component logging: every line carries the task's name.
 */
#include "kstate.h"

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
    char line[1024];
    int n = snprintf(line, sizeof line, "[%s] ", who);
    int m = vsnprintf(line + n, sizeof line - (size_t)n - 1, fmt, ap);
    size_t len = (size_t)n + (m < 0 ? 0 : (size_t)m);
    if (len > sizeof line - 2)
        len = sizeof line - 2;
    while (len > 0 && line[len - 1] == '\n')
        len--;
    line[len++] = '\n';
    /* One write per line: lines from concurrent tasks never interleave. */
    ssize_t w = write(log_fd, line, len);
    (void)w;
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

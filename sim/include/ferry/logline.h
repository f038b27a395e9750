/*
 * ferry/logline.h - how the simulator (and the native application build)
 * formats one log line: "[who] text\n", trailing newlines folded, cut to
 * the buffer. Written with one write() so concurrent lines never interleave.
 */
#ifndef FERRY_LOGLINE_H
#define FERRY_LOGLINE_H

#include <stdarg.h>
#include <stdio.h>
#include <unistd.h>

static inline void ferry_log_line(int fd, const char *who, const char *fmt, va_list ap)
{
    char line[1024];
    int n = snprintf(line, sizeof line, "[%s] ", who);
    if (n < 0 || (size_t)n >= sizeof line - 2)
        n = 0;
    int m = vsnprintf(line + n, sizeof line - (size_t)n - 1, fmt, ap);
    size_t len = (size_t)n + (m < 0 ? 0 : (size_t)m);
    if (len > sizeof line - 2)
        len = sizeof line - 2;
    while (len > 0 && line[len - 1] == '\n')
        len--;
    line[len++] = '\n';
    ssize_t w = write(fd, line, len);
    (void)w;
}

#endif

/*
 * app_main.c - main() of a demo application built as a native Linux
 * program (APP_NAME and APP_MAIN come from the build): the same source as
 * the Ferry component, on Linux sockets.
 */
#include <apps.h>
#include <signal.h>

void mk_native_set_name(const char *name);

int main(int argc, char **argv)
{
    signal(SIGPIPE, SIG_IGN);
    mk_native_set_name(APP_NAME);
    return APP_MAIN(argc, argv);
}

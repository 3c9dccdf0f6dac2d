/* readiness.c: systemd's notify protocol through libsystemd's sd_notify, its
 * documented client: READY=1, STATUS=, STOPPING=1 and WATCHDOG=1. A failure to
 * notify is no reason to stop serving, so results are not checked. */
#include "readiness.h"

#include <stdarg.h>
#include <stdio.h>
#include <systemd/sd-daemon.h>

void df_readiness_status(const char *fmt, ...)
{
    char status[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(status, sizeof(status), fmt, ap);
    va_end(ap);
    (void)sd_notifyf(0, "STATUS=%s", status);
}

void df_readiness_ready(const char *status)
{
    (void)sd_notifyf(0, "READY=1\nSTATUS=%s", status);
}

void df_readiness_stopping(const char *status)
{
    (void)sd_notifyf(0, "STOPPING=1\nSTATUS=%s", status);
}

uint64_t df_readiness_watchdog_usec(void)
{
    uint64_t usec = 0;
    return sd_watchdog_enabled(0, &usec) > 0 ? usec : 0;
}

void df_readiness_alive(void)
{
    (void)sd_notify(0, "WATCHDOG=1");
}

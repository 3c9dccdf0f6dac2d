/* readiness.h: what dealflowd tells its service manager through systemd's
 * notify protocol: that it is ready, what it is doing, that it is stopping,
 * and that its loop is alive. Without $NOTIFY_SOCKET every call does nothing. */
#ifndef DF_READINESS_H
#define DF_READINESS_H

#include <stdint.h>

/* Says what the daemon does now (STATUS=, one line for `systemctl status`). */
void df_readiness_status(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* READY=1 with a status: the log is folded back and the sockets are bound. */
void df_readiness_ready(const char *status);
/* STOPPING=1 with a status: a signal came and the daemon drains. */
void df_readiness_stopping(const char *status);
/* The watchdog interval the service manager asks for (WatchdogSec=), in
 * microseconds, or 0 when it asks for none. */
uint64_t df_readiness_watchdog_usec(void);
/* WATCHDOG=1: the loop still turns. */
void df_readiness_alive(void);

#endif

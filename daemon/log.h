/* log.h: the daemon's log lines on stderr, and its clock. */
#ifndef DF_LOG_H
#define DF_LOG_H

#include <stdint.h>

/* Milliseconds since the Unix epoch. */
int64_t df_now_ms(void);

/* Logs a line on stderr, prefixed with the UTC time and `dealflowd: `. */
void df_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif

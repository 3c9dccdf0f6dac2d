/* errors.h: failing with a dealflow error code and a message. The codes and
 * their wire names are dealflow.h's. */
#ifndef DF_ERRORS_H
#define DF_ERRORS_H

#include "dealflow.h"

/* Sets err (when not NULL) and returns code. */
int df_fail(df_error *err, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#endif

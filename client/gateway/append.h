/* append.h: the events of a request appended through the daemon's `append` and answered as
 * POST /v1/events answers, for the routes that take events (events in and hooks in). */
#ifndef DF_GW_APPEND_H
#define DF_GW_APPEND_H

#include <stddef.h>

#include "dealflow.h"
#include "reads.h"

/* Appends events (a msgpack array of n >= 1 events) through c, and answers 200 with
 * {"results": [...]}, one per event as `append` gives it ({"seq", "dup"} or {"error",
 * "message"}), or the daemon's error with its status when the batch was not taken. */
void gw_append_answer(df_client *c, const df_bytes *events, size_t n, gw_answer *out);

#endif

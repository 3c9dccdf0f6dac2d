/* events.h: request bodies of POST /v1/events (one event, a JSON array of events, or NDJSON)
 * into the msgpack array of contract events that df_append takes. Pure: no I/O. */
#ifndef DF_GW_EVENTS_H
#define DF_GW_EVENTS_H

#include <stddef.h>

#include <jansson.h>

#include "dealflow.h"

/* Events in one request at most: what one `append` takes. */
#define GW_EVENTS_MAX 10000

/* A body of one event, a JSON array of events, or NDJSON, into a msgpack
 * array of events ready for df_append; 0, or -1 with why (400). */
int gw_events_from_body(const char *body, size_t len, df_bytes *events_out, size_t *count,
                        char *err, size_t cap);
/* The same from an already parsed JSON array (what gw_hook_map gives). */
int gw_events_from_json(const json_t *array, df_bytes *events_out, size_t *count, char *err,
                        size_t cap);

#endif

/* fuzz_gateway_body.c: request bodies of the gateway's POST /v1/events (one event, a JSON array,
 * NDJSON) into events: whatever the bytes, the body is refused with a reason or becomes one valid
 * msgpack array of exactly as many event maps as it says. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "events.h"

#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    df_bytes events = {0};
    size_t count = 0;
    char err[256] = "";
    if (gw_events_from_body((const char *)data, size, &events, &count, err, sizeof err) < 0) {
        REQUIRE(events.data == NULL && count == 0);
        REQUIRE(err[0] != '\0');
        return 0;
    }
    REQUIRE(count >= 1 && count <= GW_EVENTS_MAX);
    msgpack_zone zone;
    msgpack_zone_init(&zone, 4096);
    msgpack_object obj;
    df_error derr;
    REQUIRE(df_msgpack_unpack(events.data, events.len, &zone, &obj, &derr) == 0);
    REQUIRE(obj.type == MSGPACK_OBJECT_ARRAY && obj.via.array.size == count);
    for (uint32_t i = 0; i < obj.via.array.size; i++)
        REQUIRE(obj.via.array.ptr[i].type == MSGPACK_OBJECT_MAP);
    msgpack_zone_destroy(&zone);
    free(events.data);
    return 0;
}

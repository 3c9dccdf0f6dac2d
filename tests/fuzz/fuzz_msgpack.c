/* fuzz_msgpack.c: the codec's guard in front of the msgpack-c unpacker on
 * raw bytes: df_msgpack_check, and on what it accepts the span readers,
 * df_msgpack_unpack and df_msgpack_unpack_checked, which must agree with it. */
#include <stdio.h>
#include <stdlib.h>

#include "codec.h"

/* A broken agreement between the codec's readers: a bug, reported as a crash. */
#include "fuzz.h"

static const char *const keys[] = {"op", "events", "id", "type", "deal", "at", "", "seq"};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *buf = (const char *)data;
    df_error err;
    size_t skipped = df_msgpack_skip(buf, size);
    REQUIRE(skipped <= size);
    if (df_msgpack_check(buf, size, &err) != 0) {
        REQUIRE(err.code == DF_EBAD_REQUEST);
        msgpack_zone zone;
        msgpack_object obj;
        msgpack_zone_init(&zone, 1024);
        REQUIRE(df_msgpack_unpack(buf, size, &zone, &obj, NULL) == DF_EBAD_REQUEST);
        msgpack_zone_destroy(&zone);
        return 0;
    }
    /* checked bytes are one whole object */
    REQUIRE(skipped == size);

    uint32_t count = 0;
    size_t header;
    bool is_array = df_msgpack_array_header(buf, size, &count, &header);
    if (is_array) {
        REQUIRE(header <= size);
        const char *p = buf + header, *end = buf + size;
        for (uint32_t i = 0; i < count; i++) {
            size_t n = df_msgpack_skip(p, (size_t)(end - p));
            REQUIRE(n > 0);
            /* an element of checked bytes unpacks without a second check,
             * as the writer unpacks ingest's events */
            msgpack_zone element_zone;
            msgpack_object element;
            msgpack_zone_init(&element_zone, 1024);
            REQUIRE(df_msgpack_unpack_checked(p, n, &element_zone, &element, NULL) == 0);
            msgpack_zone_destroy(&element_zone);
            p += n;
        }
        REQUIRE(p == end);
    }
    for (size_t k = 0; k < sizeof(keys) / sizeof(keys[0]); k++) {
        const char *value;
        size_t value_len;
        if (df_msgpack_map_find(buf, size, keys[k], &value, &value_len)) {
            REQUIRE(value >= buf && value_len > 0 && value + value_len <= buf + size);
            REQUIRE(df_msgpack_skip(value, value_len) == value_len);
            /* the typed readers the client uses on replies and notifications */
            uint64_t as_uint;
            int64_t as_int;
            bool as_bool;
            const char *str;
            uint32_t str_len;
            if (df_msgpack_read_str(value, value_len, &str, &str_len))
                REQUIRE(str >= value && str + str_len <= value + value_len);
            (void)df_msgpack_read_uint(value, value_len, &as_uint);
            (void)df_msgpack_read_int(value, value_len, &as_int);
            (void)df_msgpack_read_bool(value, value_len, &as_bool);
            (void)df_msgpack_is_nil(value, value_len);
        }
        const char *first;
        size_t rest_len;
        uint32_t elements;
        if (df_msgpack_map_array(buf, size, keys[k], &first, &rest_len, &elements))
            REQUIRE(first >= buf && first + rest_len <= buf + size);
    }

    msgpack_zone zone;
    msgpack_object obj;
    msgpack_zone_init(&zone, 1024);
    REQUIRE(df_msgpack_unpack(buf, size, &zone, &obj, &err) == 0);
    REQUIRE(df_msgpack_unpack_checked(buf, size, &zone, &obj, &err) == 0);
    REQUIRE(is_array == (obj.type == MSGPACK_OBJECT_ARRAY));
    if (is_array)
        REQUIRE(obj.via.array.size == count);
    /* the request getters on whatever came in */
    df_str s;
    uint64_t u;
    int64_t i;
    bool b, bad = false;
    df_get_str(&obj, "op", &s, &bad);
    df_get_uint(&obj, "after", &u, &bad);
    df_get_int(&obj, "at", &i, &bad);
    df_get_bool(&obj, "stale", &b, &bad);
    msgpack_zone_destroy(&zone);
    return 0;
}

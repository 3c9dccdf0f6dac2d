/* outbox.c: the pure parts of webhooks out: a notification's JSON body, the retry schedule, and the
 * name and text of an endpoint's position file. */
#include "outbox.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <msgpack.h>
#include <sodium.h>

#include "cli.h"
#include "codec.h"

char *gw_outbox_body(const char *topic, const char *body, size_t body_len, size_t *len)
{
    msgpack_zone zone;
    if (!msgpack_zone_init(&zone, 2048))
        return NULL;
    msgpack_object map;
    char *text = NULL;
    if (df_msgpack_unpack(body, body_len, &zone, &map, NULL) == 0 &&
        map.type == MSGPACK_OBJECT_MAP) {
        json_t *object = json_from_msgpack(&map);
        json_t *name = json_string(topic);
        if (object && name && json_object_set_new(object, "topic", name) == 0) {
            name = NULL;
            text = json_dumps(object, JSON_COMPACT | JSON_REAL_PRECISION(17));
        }
        json_decref(name);
        json_decref(object);
    }
    msgpack_zone_destroy(&zone);
    if (text && len)
        *len = strlen(text);
    return text;
}

int64_t gw_outbox_backoff_ms(uint32_t retry, uint32_t random)
{
    int64_t wait = GW_BACKOFF_FIRST_MS;
    for (uint32_t i = 1; i < retry && wait < GW_BACKOFF_MAX_MS; i++)
        wait *= 2;
    if (wait > GW_BACKOFF_MAX_MS)
        wait = GW_BACKOFF_MAX_MS;
    return wait - (int64_t)((uint64_t)(wait / 10) * random >> 32);
}

void gw_outbox_state_name(const char *url, const char *topics, char out[GW_STATE_NAME_MAX])
{
    unsigned char hash[16];
    crypto_generichash_state state;
    crypto_generichash_init(&state, NULL, 0, sizeof hash);
    /* the NUL between them keeps ("ab", "c") apart from ("a", "bc") */
    crypto_generichash_update(&state, (const unsigned char *)url, strlen(url) + 1);
    crypto_generichash_update(&state, (const unsigned char *)topics, strlen(topics));
    crypto_generichash_final(&state, hash, sizeof hash);
    char hex[2 * sizeof hash + 1];
    sodium_bin2hex(hex, sizeof hex, hash, sizeof hash);
    snprintf(out, GW_STATE_NAME_MAX, "endpoint-%s.pos", hex);
}

size_t gw_outbox_position_format(uint64_t seq, char out[GW_POSITION_TEXT_MAX])
{
    return (size_t)snprintf(out, GW_POSITION_TEXT_MAX, "%" PRIu64 "\n", seq);
}

bool gw_outbox_position_parse(const char *text, size_t len, uint64_t *seq)
{
    if (len < 2 || len > 21 || text[len - 1] != '\n' || (text[0] == '0' && len > 2))
        return false;
    uint64_t value = 0;
    for (size_t i = 0; i + 1 < len; i++) {
        if (text[i] < '0' || text[i] > '9')
            return false;
        unsigned digit = (unsigned)(text[i] - '0');
        if (value > (UINT64_MAX - digit) / 10)
            return false;
        value = value * 10 + digit;
    }
    *seq = value;
    return true;
}

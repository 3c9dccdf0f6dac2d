/* fuzz_event.c: events as producers send them, alone (ingest) or as the
 * `events` of an append request: checked, unpacked, decoded, and each one
 * accepted recorded as the writer records it, then read back as the log is
 * read: the recorded form must decode to the same event. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"

#include "fuzz.h"

#define SEQ  42
#define RECV 1700000000000LL

static msgpack_zone zone, recorded_zone;
static msgpack_sbuffer recorded;
static df_event sent, back; /* large */

static bool same_str(df_str a, df_str b)
{
    return a.len == b.len && (a.len == 0 || memcmp(a.ptr, b.ptr, a.len) == 0);
}

static bool same_num(df_num a, df_num b)
{
    if (a.kind != b.kind)
        return false;
    if (a.kind == DF_NUM_INT)
        return a.i == b.i;
    /* the same bits: a NaN amount must come back a NaN */
    return a.kind != DF_NUM_FLOAT || memcmp(&a.f, &b.f, sizeof(a.f)) == 0;
}

/* Every field the fold reads, as sent and as read back from the log. */
static void require_same_event(const df_event *a, const df_event *b)
{
    REQUIRE(a->type == b->type);
    REQUIRE(same_str(a->id, b->id));
    REQUIRE(same_str(a->deal, b->deal));
    REQUIRE(same_str(a->pipeline, b->pipeline));
    REQUIRE(b->has_at && b->at == (a->has_at ? a->at : RECV));
    REQUIRE(!b->has_expect); /* the log keeps no `expect` */
    REQUIRE(b->seq == SEQ && b->recv == RECV);
    REQUIRE(same_str(a->stage, b->stage));
    REQUIRE(same_str(a->reason, b->reason));
    REQUIRE(same_str(a->kind, b->kind));
    REQUIRE(same_str(a->actor, b->actor));
    REQUIRE(same_str(a->note, b->note));
    REQUIRE(a->amount_set == b->amount_set && same_num(a->amount, b->amount));
    REQUIRE(a->owner_set == b->owner_set && same_str(a->owner, b->owner));
    REQUIRE(a->name_set == b->name_set && same_str(a->name, b->name));
    REQUIRE(a->product_set == b->product_set && same_str(a->product, b->product));
    REQUIRE(a->close_date_set == b->close_date_set && a->close_date == b->close_date);
    REQUIRE(a->nstages == b->nstages);
    for (int i = 0; i < a->nstages; i++) {
        const df_stage_spec *x = &a->stages[i], *y = &b->stages[i];
        REQUIRE(same_str(x->name, y->name) && x->probability == y->probability &&
                x->rot_days == y->rot_days && x->outcome == y->outcome);
    }
}

/* One event map, raw[0..len) (checked bytes), as the writer takes it. */
static void take_event(const char *raw, size_t len)
{
    msgpack_object obj;
    df_error err;
    msgpack_zone_clear(&zone);
    if (df_msgpack_unpack(raw, len, &zone, &obj, &err) != 0)
        return;
    if (df_event_decode(&obj, &sent, &err) != 0) {
        REQUIRE(err.code == DF_EBAD_REQUEST);
        return;
    }
    msgpack_sbuffer_clear(&recorded);
    REQUIRE(df_event_record(raw, len, SEQ, RECV, !sent.has_at, &recorded) == 0);
    /* the recorded form adds six objects; a frame near the node limit may
     * not come back in one check */
    msgpack_zone_clear(&recorded_zone);
    if (df_msgpack_unpack(recorded.data, recorded.size, &recorded_zone, &obj, &err) != 0) {
        REQUIRE(len > DF_MAX_NODES / 2);
        return;
    }
    REQUIRE(df_recorded_decode(&obj, &back, &err) == 0);
    require_same_event(&sent, &back);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *buf = (const char *)data;
    static bool ready;
    if (!ready) {
        msgpack_zone_init(&zone, 4096);
        msgpack_zone_init(&recorded_zone, 4096);
        msgpack_sbuffer_init(&recorded);
        ready = true;
    }
    df_error err;
    if (df_msgpack_check(buf, size, &err) != 0)
        return 0;

    /* an ingest frame is one event; an append request holds an array of them */
    const char *events = buf;
    size_t events_len = size, header;
    uint32_t count;
    bool append = df_msgpack_map_find(buf, size, "events", &events, &events_len);
    if (append || !df_msgpack_array_header(buf, size, &count, &header))
        take_event(buf, size);
    if (!df_msgpack_array_header(events, events_len, &count, &header))
        return 0;
    const char *p = events + header, *end = events + events_len;
    for (uint32_t i = 0; i < count && p < end; i++) {
        size_t n = df_msgpack_skip(p, (size_t)(end - p));
        REQUIRE(n > 0);
        take_event(p, n);
        p += n;
    }
    return 0;
}

/* test_hostile_api.c: hostile requests on the api socket: fixed, of wrong types, random, in broken
 * envelopes; one reply each, in bounded memory. */
#include "hostile.h"

/* ---- fixed hostile requests ---- */

/* {op: ping, x: <depth nested containers>} */
static int submit_nested(int levels, bool maps)
{
    msgpack_sbuffer sb;
    msgpack_packer pk;
    sb_start(&sb, &pk);
    msgpack_pack_map(&pk, 2);
    pk_str(&pk, "op");
    pk_str(&pk, "ping");
    pk_str(&pk, "x");
    for (int i = 1; i < levels; i++) {
        if (maps) {
            msgpack_pack_map(&pk, 1);
            pk_str(&pk, "k");
        } else {
            msgpack_pack_array(&pk, 1);
        }
    }
    msgpack_pack_nil(&pk);
    /* the request map is level 1 */
    return submit_sb(maps ? "nested maps" : "nested arrays", levels <= 16 ? "ok" : "bad_request",
                     &sb);
}

/* A ping map of n pairs in all: `op` where given, then distinct 2-byte keys. */
static void submit_wide(const char *what, uint32_t n, int op_at, bool duplicate)
{
    msgpack_sbuffer sb;
    msgpack_packer pk;
    sb_start(&sb, &pk);
    msgpack_pack_map(&pk, n);
    for (uint32_t i = 0; i < n; i++) {
        if ((int)i == op_at) {
            pk_str(&pk, "op");
            pk_str(&pk, "ping");
            continue;
        }
        char key[2] = {(char)(0x80 | (i >> 8)), (char)(i & 0xff)};
        if (duplicate && i == n - 1)
            key[0] = (char)0x80, key[1] = 1;
        msgpack_pack_str_with_body(&pk, key, 2);
        msgpack_pack_nil(&pk);
    }
    submit_sb(what, op_at >= 0 ? "ok" : "bad_request", &sb);
}

/* An append whose single event carries n - 4 extra keys besides its own four. */
static void submit_wide_event(uint32_t n, bool duplicate)
{
    msgpack_sbuffer sb;
    msgpack_packer pk;
    sb_start(&sb, &pk);
    msgpack_pack_map(&pk, 2);
    pk_str(&pk, "op");
    pk_str(&pk, "append");
    pk_str(&pk, "events");
    msgpack_pack_array(&pk, 1);
    msgpack_pack_map(&pk, n);
    pk_str(&pk, "id");
    pk_str(&pk, duplicate ? "wide-dup" : "wide-1");
    pk_str(&pk, "type");
    pk_str(&pk, "activity");
    pk_str(&pk, "deal");
    pk_str(&pk, "wide");
    pk_str(&pk, "kind");
    pk_str(&pk, "note");
    for (uint32_t i = 4; i < n; i++) {
        char key[2] = {(char)(0x80 | (i >> 8)), (char)(i & 0xff)};
        if (duplicate && i == n - 1)
            key[0] = (char)0x80, key[1] = 4;
        msgpack_pack_str_with_body(&pk, key, 2);
        msgpack_pack_true(&pk);
    }
    int idx =
        submit_sb(duplicate ? "event of 60000 keys, one twice" : "event of 60000 keys", "ok", &sb);
    if (idx >= 0)
        pend[idx].events = 1;
}

/* {op: ping, pad: <str>} of exactly `size` bytes. */
static void submit_sized(const char *what, size_t size, const char *expect)
{
    msgpack_sbuffer sb;
    msgpack_packer pk;
    sb_start(&sb, &pk);
    msgpack_pack_map(&pk, 2);
    pk_str(&pk, "op");
    pk_str(&pk, "ping");
    pk_str(&pk, "pad");
    size_t pad = size - sb.size - 5; /* str32 header */
    char *bytes = calloc(1, pad);
    msgpack_pack_str(&pk, (uint32_t)pad);
    msgpack_pack_str_body(&pk, bytes, pad);
    free(bytes);
    CHECK(sb.size == size);
    submit_sb(what, expect, &sb);
}

/* {op: ping, x: [nil * n]}: 5 + n objects. */
static void submit_objects(size_t n)
{
    msgpack_sbuffer sb;
    msgpack_packer pk;
    sb_start(&sb, &pk);
    msgpack_pack_map(&pk, 2);
    pk_str(&pk, "op");
    pk_str(&pk, "ping");
    pk_str(&pk, "x");
    msgpack_pack_array(&pk, n);
    for (size_t i = 0; i < n; i++)
        msgpack_pack_nil(&pk);
    submit_sb(5 + n <= 200000 ? "200000 objects" : "200001 objects",
              5 + n <= 200000 ? "ok" : "bad_request", &sb);
}

/* {op: ping, x: <raw bytes>} and the raw bytes alone. */
static void submit_raw_value(const char *what, const void *bytes, size_t len)
{
    msgpack_sbuffer sb;
    msgpack_packer pk;
    sb_start(&sb, &pk);
    msgpack_pack_map(&pk, 2);
    pk_str(&pk, "op");
    pk_str(&pk, "ping");
    pk_str(&pk, "x");
    sb_raw(&sb, bytes, len);
    submit_sb(what, "bad_request", &sb);
    submit(what, "bad_request", 0, bytes, len);
}

/* events: an array of n copies of one raw element. */
static void submit_events_of(const char *what, uint32_t n, const char *element, size_t len,
                             const char *expect)
{
    msgpack_sbuffer sb;
    msgpack_packer pk;
    sb_start(&sb, &pk);
    msgpack_pack_map(&pk, 2);
    pk_str(&pk, "op");
    pk_str(&pk, "append");
    pk_str(&pk, "events");
    msgpack_pack_array(&pk, n);
    for (uint32_t i = 0; i < n; i++)
        sb_raw(&sb, element, len);
    submit_sb(what, expect, &sb);
}

/* A request given as text, and the reply it must get. */
typedef struct text_case {
    const char *what;
    const char *expect;
    const char *text;
} text_case;

/* A request given as bytes (after `extra` envelope frames), and the reply it must get. */
typedef struct bytes_case {
    const char *what;
    const char *expect;
    const char *bytes;
    size_t len;
    int extra;
} bytes_case;

/* A value that is broken on its own: sent as {op: ping, x: <it>} and alone, both bad_request. */
typedef struct value_case {
    const char *what;
    const char *bytes;
    size_t len;
} value_case;

static const bytes_case fixed_bytes[] = {
    {"empty body", "bad_request", "", 0, 0},
    {"empty body, extra frames", "bad_request", "", 0, 3},
    {"op as bin", "bad_request", "\x81\xa2op\xc4\x04ping", 10, 0},
    {"trailing byte", "bad_request", "\x81\xa2op\xa4ping\x00", 10, 0},
    {"str32 op of 4 GiB", "bad_request", "\x81\xa2op\xdb\xff\xff\xff\xffping", 13, 0},
    {"map of 4 billion pairs", "bad_request", "\xdf\xff\xff\xff\xff\xa2op\xa4ping", 13, 0},
};

static const text_case fixed_texts[] = {
    {"metrics", "ok", "{op: metrics}"},
    {"unknown op", "unknown_op", "{op: 'drop tables'}"},
    {"op with a NUL", "unknown_op", "{op: 'ping\\0'}"},
    {"op not a str", "bad_request", "{op: 7}"},
    {"op nil", "bad_request", "{op: nil}"},
    {"no op", "bad_request", "{deal: keep}"},
    {"not a map", "bad_request", "[ping]"},
    {"int key", "bad_request", "{op: ping, 1: 2}"},
    /* append: the events array itself */
    {"events absent", "bad_request", "{op: append}"},
    {"events nil", "bad_request", "{op: append, events: nil}"},
    {"events empty", "bad_request", "{op: append, events: []}"},
    {"events a map", "bad_request", "{op: append, events: {id: x}}"},
    {"events of strings", "bad_request", "{op: append, events: [a, b]}"},
    {"an event and an int", "bad_request",
     "{op: append, events: [{id: mix-1, type: activity, deal: mix, kind: x}, 5]}"},
};

static const value_case broken_values[] = {
    {"array of 4 billion", "\xdd\xff\xff\xff\xff\xc0", 6},
    {"map of 4 billion", "\xdf\xff\xff\xff\xff\xa1k\xc0", 8},
    {"str32 of 4 GiB", "\xdb\xff\xff\xff\xffping", 9},
    {"bin32 of 4 GiB", "\xc6\xff\xff\xff\xff\x01", 6},
    {"ext32 of 4 GiB", "\xc9\xff\xff\xff\xff\x01\x02", 7},
    {"array16 of 65535", "\xdc\xff\xff\xc0\xc0", 5},
    {"map16 of 65535", "\xde\xff\xff\xa1k\xc0", 6},
    {"reserved byte", "\xc1", 1},
    {"truncated float", "\xcb\x00\x00", 3},
};

#define COUNT(array) (sizeof(array) / sizeof((array)[0]))

static void test_fixed_requests(void)
{
    int first = npend;
    for (size_t i = 0; i < COUNT(fixed_bytes); i++) {
        const bytes_case *c = &fixed_bytes[i];
        submit(c->what, c->expect, c->extra, c->bytes, c->len);
    }
    for (size_t i = 0; i < COUNT(fixed_texts); i++)
        submit_text(fixed_texts[i].what, fixed_texts[i].expect, fixed_texts[i].text);
    for (size_t i = 0; i < COUNT(broken_values); i++)
        submit_raw_value(broken_values[i].what, broken_values[i].bytes, broken_values[i].len);

    for (int levels = 14; levels <= 18; levels++) {
        submit_nested(levels, false);
        submit_nested(levels, true);
    }
    submit_nested(200, false);
    static char deep[10000];
    memset(deep, 0x91, sizeof deep - 1);
    deep[sizeof deep - 1] = (char)0xc0;
    submit("10000 nested arrays", "bad_request", 0, deep, sizeof deep);

    submit_wide("map of 60000 keys", 60000, 0, false);
    submit_wide("map of 60000 keys, op last", 60000, 59999, false);
    submit_wide("map of 60000 keys, no op", 60000, -1, false);
    submit_wide_event(60000, false);
    submit_wide_event(60000, true);
    submit_objects(199995);
    submit_objects(199996);
    submit_sized("body of exactly --max-message", MAX_MESSAGE, "ok");
    submit_sized("body one byte over", MAX_MESSAGE + 1, "too_large");
    submit_sized("body twice over", 2 * MAX_MESSAGE, "too_large");

    submit_events_of("10001 events", 10001, "\xc0", 1, "bad_request");
    submit_events_of("events not maps", 3, "\x07", 1, "bad_request");
    int idx = submit_text("append with bad events", "ok",
                          "{op: append, events: [{id: bad-1, type: stage, deal: fx, stage: "
                          "nowhere}, {id: bad-2, type: stage, deal: fx, stage: lead, seq: 1}, "
                          "{id: bad-3, type: pipeline, pipeline: p, stages: [], expect: 0}, "
                          "{id: '', type: activity, deal: fx, kind: x}, {id: bad-5, type: "
                          "activity, deal: fx, kind: x, amount: nil, at: 1.5}]}");
    if (idx >= 0)
        pend[idx].events = 5;
    collect(first);
}

/* ---- requests with keys of the wrong type or range ---- */

enum key_kind { K_DEAL, K_NAME, K_INT, K_UINT, K_LIMIT, K_BOOL, K_STATUS, K_CURSOR, K_IDLE };

typedef struct key_spec {
    const char *op;
    const char *key;
    int kind;
} key_spec;

static const key_spec keys[] = {
    {"deal", "deal", K_DEAL},      {"deal", "now", K_INT},        {"deal", "as_of", K_INT},
    {"history", "deal", K_DEAL},   {"history", "after", K_UINT},  {"history", "limit", K_LIMIT},
    {"list", "pipeline", K_NAME},  {"list", "stage", K_NAME},     {"list", "owner", K_NAME},
    {"list", "status", K_STATUS},  {"list", "stale", K_BOOL},     {"list", "idle_days", K_IDLE},
    {"list", "now", K_INT},        {"list", "limit", K_LIMIT},    {"list", "cursor", K_CURSOR},
    {"board", "pipeline", K_NAME}, {"board", "now", K_INT},       {"replay", "after", K_UINT},
    {"replay", "limit", K_LIMIT},  {"rejected", "after", K_UINT}, {"rejected", "limit", K_LIMIT},
};

enum value_kind {
    V_TRUE,
    V_NEG,
    V_MIN,
    V_UMAX,
    V_FLOAT,
    V_NAN,
    V_STR,
    V_BIN,
    V_EXT,
    V_ARRAY,
    V_MAP,
    V_ZERO,
    V_10001,
    V_2P32,
    V_EMPTY,
    V_129,
    V_IDLE_OVER,
    V_COUNT
};

static bool wrong_for(int kind, int value)
{
    switch (kind) {
    case K_DEAL:
        return value != V_STR;
    case K_NAME: /* any str filters, the empty one filters nothing */
        return value != V_STR && value != V_EMPTY && value != V_129;
    case K_INT:
        return value != V_NEG && value != V_MIN && value != V_ZERO && value != V_10001 &&
               value != V_2P32 && value != V_IDLE_OVER;
    case K_UINT:
        return value != V_UMAX && value != V_ZERO && value != V_10001 && value != V_2P32 &&
               value != V_IDLE_OVER;
    case K_LIMIT: /* none of the values is in 1..10000 */
        return true;
    case K_BOOL:
        return value != V_TRUE;
    case K_STATUS:
        return value != V_EMPTY;
    case K_CURSOR:
        return value != V_EMPTY;
    case K_IDLE:
        return value != V_ZERO && value != V_10001;
    default:
        return false;
    }
}

static void pack_value(msgpack_packer *pk, int value)
{
    static char long_str[129];
    memset(long_str, 'a', sizeof long_str);
    switch (value) {
    case V_TRUE:
        msgpack_pack_true(pk);
        break;
    case V_NEG:
        msgpack_pack_int64(pk, -1);
        break;
    case V_MIN:
        msgpack_pack_int64(pk, INT64_MIN);
        break;
    case V_UMAX:
        msgpack_pack_uint64(pk, UINT64_MAX);
        break;
    case V_FLOAT:
        msgpack_pack_double(pk, 1.5);
        break;
    case V_NAN:
        msgpack_pack_double(pk, NAN);
        break;
    case V_STR:
        pk_str(pk, "x");
        break;
    case V_BIN:
        msgpack_pack_bin_with_body(pk, "keep", 4);
        break;
    case V_EXT:
        msgpack_pack_ext_with_body(pk, "keep", 4, 5);
        break;
    case V_ARRAY:
        msgpack_pack_array(pk, 1);
        pk_str(pk, "keep");
        break;
    case V_MAP:
        msgpack_pack_map(pk, 1);
        pk_str(pk, "keep");
        pk_str(pk, "keep");
        break;
    case V_ZERO:
        msgpack_pack_uint64(pk, 0);
        break;
    case V_10001:
        msgpack_pack_uint64(pk, 10001);
        break;
    case V_2P32:
        msgpack_pack_uint64(pk, 1ULL << 32);
        break;
    case V_EMPTY:
        msgpack_pack_str_with_body(pk, "", 0);
        break;
    case V_129:
        msgpack_pack_str_with_body(pk, long_str, sizeof long_str);
        break;
    default:
        msgpack_pack_uint64(pk, 1000001);
        break;
    }
}

static void submit_wrong_type(void)
{
    const key_spec *k;
    int value;
    do {
        k = &keys[below(sizeof keys / sizeof keys[0])];
        value = (int)below(V_COUNT);
    } while (!wrong_for(k->kind, value));
    msgpack_sbuffer sb;
    msgpack_packer pk;
    sb_start(&sb, &pk);
    bool needs_deal = strcmp(k->key, "deal") != 0 &&
                      (strcmp(k->op, "deal") == 0 || strcmp(k->op, "history") == 0);
    msgpack_pack_map(&pk, needs_deal ? 3 : 2);
    pk_str(&pk, "op");
    pk_str(&pk, k->op);
    if (needs_deal) {
        pk_str(&pk, "deal");
        pk_str(&pk, "keep");
    }
    pk_str(&pk, k->key);
    pack_value(&pk, value);
    submit_sb(k->key, "bad_request", &sb);
}

/* ---- valid requests and their mutations ---- */

static void template_text(char *out, size_t cap, int n)
{
    int id = npend;
    switch (n % 16) {
    case 0:
        snprintf(out, cap, "{op: ping}");
        break;
    case 1:
        snprintf(out, cap, "{op: stats}");
        break;
    case 2:
        snprintf(out, cap, "{op: deal, deal: keep, now: %lld}", T0);
        break;
    case 3:
        snprintf(out, cap, "{op: deal, deal: keep, as_of: %lld}", T0 + 1);
        break;
    case 4:
        snprintf(out, cap, "{op: history, deal: keep, after: 1, limit: 5}");
        break;
    case 5:
        snprintf(out, cap,
                 "{op: list, pipeline: default, stage: lead, owner: ana, status: open, stale: "
                 "false, idle_days: 3, now: %lld, limit: 10}",
                 T0);
        break;
    case 6:
        snprintf(out, cap, "{op: list, cursor: '6b656570', limit: 2}");
        break;
    case 7:
        snprintf(out, cap, "{op: board, pipeline: rot, now: %lld}", T0);
        break;
    case 8:
        snprintf(out, cap, "{op: replay, after: 0, limit: 3}");
        break;
    case 9:
        snprintf(out, cap, "{op: rejected, after: 0, limit: 3}");
        break;
    case 10:
        snprintf(out, cap,
                 "{op: append, events: [{id: fz-%d-s, type: stage, deal: fz-%d, stage: lead, at: "
                 "%lld, amount: 5, owner: ana}]}",
                 id, id % 97, T0 + id);
        break;
    case 11:
        snprintf(out, cap,
                 "{op: append, events: [{id: fz-%d-a, type: activity, deal: fz-%d, kind: call, "
                 "note: hi}, {id: fz-%d-u, type: update, deal: fz-%d, amount: 2.5, name: n, "
                 "product: p, close_date: %lld, expect: 9}]}",
                 id, id % 97, id, id % 97, T0);
        break;
    case 12:
        snprintf(out, cap,
                 "{op: append, events: [{id: fz-%d-p, type: pipeline, pipeline: fzp-%d, stages: "
                 "[{name: a, probability: 5, rot_days: 1}, {name: b, probability: 100, outcome: "
                 "won}]}]}",
                 id, id % 5);
        break;
    case 13:
        snprintf(out, cap,
                 "{op: append, events: [{id: fz-%d-m, type: stage, deal: fz-%d, pipeline: fzp-%d, "
                 "stage: b, reason: r, amount: -3, owner: nil}]}",
                 id, id % 97, id % 5);
        break;
    case 14:
        snprintf(out, cap, "{op: list, pipeline: rot, stage: fresh, limit: 1, now: %lld}", T0);
        break;
    default:
        snprintf(out, cap, "{op: history, deal: fz-%d, limit: 2}", id % 97);
        break;
    }
}

static char *find_bytes(char *hay, size_t len, const char *needle)
{
    size_t n = strlen(needle);
    for (size_t i = 0; i + n <= len; i++)
        if (memcmp(hay + i, needle, n) == 0)
            return hay + i;
    return NULL;
}

/* A cursor: even-length hex of up to 128 bytes, sometimes broken. */
static void random_cursor(char *out)
{
    static const char hex[] = "0123456789abcdef";
    size_t len = 2 * (1 + below(130));
    for (size_t i = 0; i < len; i++)
        out[i] = hex[below(16)];
    out[len] = '\0';
    switch (below(6)) {
    case 0:
        out[len - 1] = '\0'; /* odd */
        break;
    case 1:
        out[below((uint32_t)len)] = 'g';
        break;
    case 2:
        out[below((uint32_t)len)] = 'A';
        break;
    default:
        break;
    }
}

static bool valid_cursor(const char *c)
{
    size_t len = strlen(c);
    if (len == 0 || len % 2 || len > 256)
        return false;
    for (size_t i = 0; i < len; i++)
        if (!((c[i] >= '0' && c[i] <= '9') || (c[i] >= 'a' && c[i] <= 'f')))
            return false;
    return true;
}

static void submit_random_valid(void)
{
    char text[600];
    char cursor[300];
    switch (below(6)) {
    case 0:
        random_cursor(cursor);
        snprintf(text, sizeof text, "{op: list, cursor: '%s', limit: %u}", cursor,
                 1 + below(10000));
        submit_text("list with a random cursor", valid_cursor(cursor) ? "ok" : "bad_request", text);
        break;
    case 1:
        snprintf(text, sizeof text, "{op: replay, after: %" PRIu64 ", limit: %u}",
                 below(2) ? rnd() : below(100), 1 + below(10000));
        submit_text("replay", "ok", text);
        break;
    case 2:
        snprintf(text, sizeof text, "{op: rejected, after: %" PRIu64 ", limit: %u}", rnd(),
                 1 + below(10000));
        submit_text("rejected", "ok", text);
        break;
    case 3:
        snprintf(text, sizeof text, "{op: history, deal: keep, after: %u, limit: %u}", below(20),
                 1 + below(10000));
        submit_text("history", "ok", text);
        break;
    case 4:
        snprintf(text, sizeof text, "{op: deal, deal: 'nobody-%u\\0'}", below(1000));
        submit_text("deal with a NUL", "not_found", text);
        break;
    default:
        snprintf(text, sizeof text, "{op: list, status: %s, stale: %s, idle_days: %u, now: %lld}",
                 below(2) ? "won" : "lost", below(2) ? "true" : "false", below(1000001),
                 (long long)(T0 + (int64_t)below(1000) * DAY));
        submit_text("list with filters", "ok", text);
        break;
    }
}

/* One random request; `extra` envelope frames. */
static void submit_random(void)
{
    int extra = below(8) == 0 ? 1 + (int)below(6) : 0;
    msgpack_sbuffer sb;
    char text[800];
    uint32_t kind = below(16);
    if (kind < 3) {
        /* random bytes, sometimes after a map header so that they reach deeper */
        msgpack_sbuffer_init(&sb);
        size_t len = below(8) == 0 ? below(3000) : below(40);
        if (below(3) == 0)
            msgpack_sbuffer_write(&sb, "\x82\xa2op\xa4ping", 8);
        for (size_t i = 0; i < len; i++) {
            char byte = (char)below(256);
            msgpack_sbuffer_write(&sb, &byte, 1);
        }
        submit("random bytes", expected_by_form(sb.data, sb.size), extra, sb.data, sb.size);
        msgpack_sbuffer_destroy(&sb);
    } else if (kind < 8) {
        template_text(text, sizeof text, (int)below(16));
        CHECK(it_encode(&sb, "%s", text));
        /* appends: mutate the events only, so that the op stays an append */
        char *events = strstr(text, "events") ? find_bytes(sb.data, sb.size, "events") : NULL;
        mutate(&sb, events ? (size_t)(events - sb.data) + 6 : 0);
        int idx =
            submit("mutated request", expected_by_form(sb.data, sb.size), extra, sb.data, sb.size);
        uint32_t count;
        size_t header;
        const char *value;
        size_t value_len;
        /* a well-formed append answers one result per event */
        if (idx >= 0 && events && df_msgpack_check(sb.data, sb.size, NULL) == 0 &&
            df_msgpack_map_find(sb.data, sb.size, "events", &value, &value_len) &&
            df_msgpack_array_header(value, value_len, &count, &header))
            pend[idx].events = (int)count;
        msgpack_sbuffer_destroy(&sb);
    } else if (kind < 11) {
        submit_wrong_type();
    } else if (kind < 14) {
        submit_random_valid();
    } else {
        template_text(text, sizeof text, (int)below(16));
        CHECK(it_encode(&sb, "%s", text));
        int idx = submit("valid request", NULL, extra, sb.data, sb.size);
        if (idx >= 0 && strstr(text, "append"))
            pend[idx].expect = "ok";
        else if (idx >= 0)
            pend[idx].expect = expected_by_form(sb.data, sb.size);
        msgpack_sbuffer_destroy(&sb);
    }
}

static void test_random_requests(void)
{
    int64_t deadline = mono_ms() + FUZZ_BUDGET_MS;
    int sent = 0;
    while (sent < FUZZ_REQUESTS && mono_ms() < deadline && alive()) {
        int first = npend;
        for (int i = 0; i < WINDOW && sent < FUZZ_REQUESTS; i++, sent++)
            submit_random();
        collect(first);
    }
    printf("random requests: %d sent\n", sent);
}

/* ---- envelopes the daemon must not answer, other sockets, oversized frames ---- */

static bool wait_message(void *socket, int timeout_ms)
{
    int64_t deadline = mono_ms() + timeout_ms;
    while (mono_ms() < deadline && alive()) {
        zmq_pollitem_t item = {socket, 0, ZMQ_POLLIN, 0};
        if (zmq_poll(&item, 1, 100) > 0)
            return true;
    }
    return false;
}

/* Receives one message; returns its frame count and copies its last frame. */
static int receive_last(void *socket, char *body, size_t cap, size_t *len)
{
    int frames = 0;
    int more = 1;
    while (more) {
        zmq_msg_t msg;
        zmq_msg_init(&msg);
        if (zmq_msg_recv(&msg, socket, 0) < 0) {
            zmq_msg_close(&msg);
            return frames;
        }
        frames++;
        more = zmq_msg_more(&msg);
        if (!more) {
            *len = zmq_msg_size(&msg) < cap ? zmq_msg_size(&msg) : cap;
            memcpy(body, zmq_msg_data(&msg), *len);
        }
        zmq_msg_close(&msg);
    }
    return frames;
}

static void test_envelopes(void)
{
    msgpack_sbuffer ping;
    CHECK(it_encode(&ping, "{op: ping}"));
    char body[512];
    size_t len = 0;

    /* a body alone, without any frame of the client's */
    void *bare = it_socket(ZMQ_DEALER, D.api);
    CHECK(zmq_send(bare, "\xc1", 1, 0) == 1);
    CHECK(wait_message(bare, REPLY_TIMEOUT_MS));
    CHECK_INT(receive_last(bare, body, sizeof body, &len), 1);
    CHECK_STR(it_err(it_unpack_keep(body, len)), "bad_request");

    /* more than 16 frames before the body: discarded unanswered; the ping
     * after it is answered, and nothing else comes */
    for (int i = 0; i < 20; i++)
        CHECK(zmq_send(bare, "f", 1, ZMQ_SNDMORE) == 1);
    CHECK(zmq_send(bare, ping.data, ping.size, 0) == (int)ping.size);
    CHECK(zmq_send(bare, "x", 1, ZMQ_SNDMORE) == 1);
    CHECK(zmq_send(bare, ping.data, ping.size, 0) == (int)ping.size);
    CHECK(wait_message(bare, REPLY_TIMEOUT_MS));
    CHECK_INT(receive_last(bare, body, sizeof body, &len), 2);
    CHECK(it_ok(it_unpack_keep(body, len)));
    /* exactly 16 frames before the body are still an envelope */
    for (int i = 0; i < 15; i++)
        CHECK(zmq_send(bare, "g", 1, ZMQ_SNDMORE) == 1);
    CHECK(zmq_send(bare, ping.data, ping.size, 0) == (int)ping.size);
    CHECK(wait_message(bare, REPLY_TIMEOUT_MS));
    CHECK_INT(receive_last(bare, body, sizeof body, &len), 16);
    CHECK(it_ok(it_unpack_keep(body, len)));
    zmq_pollitem_t item = {bare, 0, ZMQ_POLLIN, 0};
    CHECK(zmq_poll(&item, 1, 0) == 0);

    /* a frame of the envelope over the limit is refused like a body would be
     * (the reply still carries the envelope back) */
    char *wide = calloc(1, MAX_MESSAGE + 1);
    CHECK(zmq_send(bare, wide, MAX_MESSAGE + 1, ZMQ_SNDMORE) == MAX_MESSAGE + 1);
    CHECK(zmq_send(bare, ping.data, ping.size, 0) == (int)ping.size);
    CHECK(wait_message(bare, REPLY_TIMEOUT_MS));
    CHECK_INT(receive_last(bare, body, sizeof body, &len), 2);
    CHECK_STR(it_err(it_unpack_keep(body, len)), "too_large");
    free(wide);
    it_close(bare);

    /* a REQ peer: garbage, then a request */
    void *req = it_socket(ZMQ_REQ, D.api);
    CHECK(zmq_send(req, "\xdd\xff\xff\xff\xff", 5, 0) == 5);
    CHECK(wait_message(req, REPLY_TIMEOUT_MS));
    CHECK_INT(receive_last(req, body, sizeof body, &len), 1);
    CHECK_STR(it_err(it_unpack_keep(body, len)), "bad_request");
    CHECK(zmq_send(req, ping.data, ping.size, 0) == (int)ping.size);
    CHECK(wait_message(req, REPLY_TIMEOUT_MS));
    CHECK_INT(receive_last(req, body, sizeof body, &len), 1);
    CHECK(it_ok(it_unpack_keep(body, len)));
    it_close(req);

    /* far over the limit: ZeroMQ drops that peer, nobody else notices */
    void *huge = it_socket(ZMQ_DEALER, D.api);
    char *big = calloc(1, FAR_OVER);
    big[0] = (char)0x81;
    CHECK(zmq_send(huge, big, FAR_OVER, 0) == FAR_OVER);
    free(big);
    for (int i = 0; i < 3; i++)
        CHECK(it_ok(call_text("ok", "{op: ping}")));
    it_close(huge);
    msgpack_sbuffer_destroy(&ping);
}

static const df_test tests[] = {
    {"fixed_requests", test_fixed_requests},
    {"random_requests", test_random_requests},
    {"envelopes", test_envelopes},
    {"memory_bounded", test_memory_bounded},
    {"keep", check_keep},
    {NULL, NULL},
};

int main(int argc, char **argv)
{
    static const df_fixture fixture = {
        .setup = hostile_start, .teardown = hostile_stop, .ready = alive};
    int64_t start = mono_ms();
    int status = df_test_main(argc, argv, tests, &fixture);
    printf("hostile api: %lld ms\n", (long long)(mono_ms() - start));
    return status;
}

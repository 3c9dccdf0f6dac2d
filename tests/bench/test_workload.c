/* test_workload.c: checks the benchmark workload: deterministic, valid, shaped as documented. */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "codec.h"
#include "workload.h"

#define START_MS 1700000000000LL

static const char *const default_stages[] = {"lead",        "qualified", "meeting", "proposal",
                                             "negotiation", "won",       "lost"};

static int stage_index(df_str stage)
{
    for (int i = 0; i < 7; i++)
        if (df_str_eq(stage, default_stages[i]))
            return i;
    return -1;
}

/* Returns the number after the one-letter prefix of an id such as "d42" or "e7", or UINT64_MAX. */
static uint64_t id_number(df_str id)
{
    if (id.len < 2 || id.len > 21)
        return UINT64_MAX;
    uint64_t n = 0;
    for (uint32_t i = 1; i < id.len; i++) {
        if (id.ptr[i] < '0' || id.ptr[i] > '9')
            return UINT64_MAX;
        n = n * 10 + (uint64_t)(id.ptr[i] - '0');
    }
    return n;
}

static uint64_t fnv1a(const char *bytes, size_t len, uint64_t hash)
{
    for (size_t i = 0; i < len; i++)
        hash = (hash ^ (unsigned char)bytes[i]) * 0x100000001b3ULL;
    return hash;
}

/* An open-addressing set of event ids, each with the hash of its bytes. */
typedef struct id_set {
    uint64_t *keys; /* hash of the id, 0 = empty */
    uint64_t *bytes_hash;
    size_t cap;
} id_set;

static void id_set_init(id_set *set, size_t cap)
{
    set->cap = cap;
    set->keys = calloc(cap, sizeof *set->keys);
    set->bytes_hash = calloc(cap, sizeof *set->bytes_hash);
}

static void id_set_destroy(id_set *set)
{
    free(set->keys);
    free(set->bytes_hash);
}

/* Returns the slot of the id, and whether it was there already. */
static size_t id_set_find(id_set *set, df_str id, bool *found)
{
    uint64_t key = fnv1a(id.ptr, id.len, 0xcbf29ce484222325ULL) | 1;
    size_t i = key % set->cap;
    while (set->keys[i] && set->keys[i] != key)
        i = (i + 1) % set->cap;
    *found = set->keys[i] == key;
    set->keys[i] = key;
    return i;
}

static void test_same_seed_same_bytes(void)
{
    wl_workload *a = wl_new(7, 5000, START_MS);
    wl_workload *b = wl_new(7, 5000, START_MS);
    wl_workload *other = wl_new(8, 5000, START_MS);
    msgpack_sbuffer sa, sb, so;
    msgpack_sbuffer_init(&sa);
    msgpack_sbuffer_init(&sb);
    msgpack_sbuffer_init(&so);
    int events = 0, differing = 0;
    bool more_a = true, more_b = true;
    while (events < 50000) {
        more_a = wl_next(a, &sa);
        more_b = wl_next(b, &sb);
        if (!more_a || !more_b)
            break;
        if (wl_next(other, &so) && (so.size != sa.size || memcmp(so.data, sa.data, sa.size)))
            differing++;
        if (sa.size != sb.size || memcmp(sa.data, sb.data, sa.size) != 0) {
            CHECK(!"same seed gave different bytes");
            break;
        }
        msgpack_sbuffer_clear(&sa);
        msgpack_sbuffer_clear(&sb);
        msgpack_sbuffer_clear(&so);
        events++;
    }
    CHECK_INT(events, 50000);
    CHECK(more_a == more_b);
    CHECK(differing > events / 2);
    wl_counts ca = wl_counts_get(a), cb = wl_counts_get(b);
    CHECK_INT(ca.sent, cb.sent);
    CHECK_INT(ca.distinct, cb.distinct);
    CHECK_INT(ca.duplicates, cb.duplicates);
    CHECK_INT(ca.bytes, cb.bytes);
    msgpack_sbuffer_destroy(&sa);
    msgpack_sbuffer_destroy(&sb);
    msgpack_sbuffer_destroy(&so);
    wl_free(a);
    wl_free(b);
    wl_free(other);
}

/* What test_stream_shape saw, beyond the generator's own counters. */
typedef struct observed {
    uint64_t events, distinct, duplicates, late, bytes, invalid;
    uint64_t stage, activity, update, regressions, won, lost, unknown_stage;
} observed;

/* Decodes one event exactly as the daemon would and records what it is. */
static void observe(const char *buf, size_t len, id_set *ids, int *last_stage, uint64_t deals,
                    int64_t *max_at, observed *seen)
{
    df_error err;
    msgpack_zone zone;
    msgpack_zone_init(&zone, 1024);
    msgpack_object obj;
    static df_event ev;
    if (df_msgpack_check(buf, len, &err) != 0 || df_msgpack_unpack(buf, len, &zone, &obj, &err) ||
        obj.type != MSGPACK_OBJECT_MAP || df_event_decode(&obj, &ev, &err) != 0) {
        if (seen->invalid++ == 0)
            fprintf(stderr, "invalid event: %s\n", err.message);
        msgpack_zone_destroy(&zone);
        return;
    }
    seen->events++;
    seen->bytes += len;
    bool found;
    size_t slot = id_set_find(ids, ev.id, &found);
    uint64_t bytes_hash = fnv1a(buf, len, 0xcbf29ce484222325ULL);
    if (found) {
        seen->duplicates++;
        CHECK(ids->bytes_hash[slot] == bytes_hash);
        msgpack_zone_destroy(&zone);
        return;
    }
    ids->bytes_hash[slot] = bytes_hash;
    seen->distinct++;
    CHECK(ev.has_at);
    if (ev.at < *max_at)
        seen->late++;
    else
        *max_at = ev.at;
    CHECK(ev.deal.len >= 2 && ev.deal.ptr[0] == 'd');
    uint64_t deal = id_number(ev.deal);
    CHECK(deal < deals);
    if (ev.type == DF_EV_STAGE) {
        seen->stage++;
        int stage = stage_index(ev.stage);
        if (stage < 0)
            seen->unknown_stage++;
        else if (deal < deals) {
            if (last_stage[deal] >= 0 && stage < last_stage[deal])
                seen->regressions++;
            last_stage[deal] = stage;
            seen->won += stage == 5;
            seen->lost += stage == 6;
        }
    } else if (ev.type == DF_EV_ACTIVITY) {
        seen->activity++;
        CHECK(ev.kind.len > 0 && ev.actor.len > 0);
    } else if (ev.type == DF_EV_UPDATE) {
        seen->update++;
        CHECK(ev.amount_set == DF_SET || ev.owner_set == DF_SET);
    } else {
        CHECK(!"unexpected event type");
    }
    msgpack_zone_destroy(&zone);
}

static void test_stream_shape(void)
{
    enum { DEALS = 12000, MAX_EVENTS = 400000 };
    wl_workload *w = wl_new(42, DEALS, START_MS);
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    id_set ids;
    id_set_init(&ids, 1 << 19);
    int *last_stage = malloc(DEALS * sizeof *last_stage);
    for (int i = 0; i < DEALS; i++)
        last_stage[i] = -1;
    observed seen = {0};
    int64_t max_at = 0;
    for (int i = 0; i < MAX_EVENTS && wl_next(w, &sb); i++) {
        observe(sb.data, sb.size, &ids, last_stage, DEALS, &max_at, &seen);
        msgpack_sbuffer_clear(&sb);
    }
    wl_counts c = wl_counts_get(w);
    CHECK_INT(seen.invalid, 0);
    CHECK_INT(seen.unknown_stage, 0);
    CHECK(c.sent > 10 * DEALS && c.sent < MAX_EVENTS);
    CHECK_INT(seen.events, c.sent);
    CHECK_INT(seen.distinct, c.distinct);
    CHECK_INT(seen.duplicates, c.duplicates);
    CHECK_INT(seen.late, c.late);
    CHECK_INT(seen.bytes, c.bytes);
    CHECK_INT(seen.stage, c.stage);
    CHECK_INT(seen.activity, c.activity);
    CHECK_INT(seen.update, c.update);
    double average = (double)c.bytes / (double)c.sent;
    double dup_share = (double)c.duplicates / (double)c.sent;
    double late_share = (double)c.late / (double)c.distinct;
    printf("%llu events, %.1f bytes each, %.2f%% duplicates, %.2f%% late, %llu deals begun, "
           "%llu regressions, %llu won, %llu lost\n",
           (unsigned long long)c.sent, average, dup_share * 100, late_share * 100,
           (unsigned long long)c.deals_started, (unsigned long long)seen.regressions,
           (unsigned long long)seen.won, (unsigned long long)seen.lost);
    CHECK(average > 65 && average < 85);
    CHECK(dup_share > 0.0035 && dup_share < 0.0065);
    CHECK(late_share > 0.0075 && late_share < 0.0125);
    CHECK(c.activity > c.stage);
    CHECK(c.update > c.sent / 100);
    CHECK(seen.regressions > 100);
    CHECK(seen.won > 100 && seen.lost > 100);
    CHECK_INT(c.deals_started, DEALS);
    free(last_stage);
    id_set_destroy(&ids);
    msgpack_sbuffer_destroy(&sb);
    wl_free(w);
}

static void test_runs_its_course(void)
{
    enum { DEALS = 300 };
    wl_workload *w = wl_new(3, DEALS, START_MS);
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    int events = 0;
    uint64_t highest_id = 0;
    static df_event ev;
    while (events < 100000 && wl_next(w, &sb)) {
        df_error err;
        msgpack_zone zone;
        msgpack_zone_init(&zone, 1024);
        msgpack_object obj;
        if (df_msgpack_check(sb.data, sb.size, &err) == 0 &&
            df_msgpack_unpack(sb.data, sb.size, &zone, &obj, &err) == 0 &&
            df_event_decode(&obj, &ev, &err) == 0) {
            uint64_t id = id_number(ev.id);
            if (id > highest_id)
                highest_id = id;
        } else {
            CHECK(!"invalid event");
        }
        msgpack_zone_destroy(&zone);
        msgpack_sbuffer_clear(&sb);
        events++;
    }
    CHECK(events < 100000);
    CHECK(!wl_next(w, &sb));
    CHECK_INT(sb.size, 0);
    wl_counts c = wl_counts_get(w);
    CHECK_INT(c.sent, events);
    CHECK_INT(c.deals_started, DEALS);
    CHECK(c.distinct > 8 * DEALS);
    CHECK_INT(c.distinct, c.stage + c.activity + c.update);
    /* every event held back to arrive late has been sent by the end */
    CHECK_INT(c.distinct, highest_id);
    msgpack_sbuffer_destroy(&sb);
    wl_free(w);
}

static const df_test tests[] = {
    {"same_seed_same_bytes", test_same_seed_same_bytes},
    {"stream_shape", test_stream_shape},
    {"runs_its_course", test_runs_its_course},
    {NULL, NULL},
};

int main(int argc, char **argv)
{
    return df_test_main(argc, argv, tests, NULL);
}

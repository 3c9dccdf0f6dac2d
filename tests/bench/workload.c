/* workload.c: generates the benchmark's deterministic stream of pipeline events. */
#include "workload.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define HOUR_MS (3600LL * 1000)
#define DAY_MS  (24 * HOUR_MS)

/* Stages of the default pipeline, in order; the last two close a deal. */
enum { LEAD, QUALIFIED, MEETING, PROPOSAL, NEGOTIATION, WON, LOST, NO_STAGE = 255 };
static const char *const stage_names[] = {"lead",        "qualified", "meeting", "proposal",
                                          "negotiation", "won",       "lost"};

static const char *const people[] = {"anna",  "boris", "chen", "dana",  "elif", "farid",
                                     "greta", "hugo",  "ines", "jonas", "kai",  "lena",
                                     "mateo", "nora",  "omar", "priya"};
#define PEOPLE (sizeof people / sizeof people[0])
static const char *const kinds[] = {"call", "email", "meeting", "note"};
static const char *const loss_reasons[] = {"price", "timing", "competitor", "no budget"};
static const char *const notes[] = {"follow up", "sent deck", "asked for pricing",
                                    "left voicemail"};

/* Per-mille chances; they decide the shape of the stream. */
#define LATE_PERMILLE     10  /* an event is held back hours to days */
#define DUP_PER_10000     50  /* an event is sent a second time */
#define SILENT_PERMILLE   20  /* after an event, a deal goes quiet for good */
#define UPDATE_PERMILLE   80  /* a step is an update */
#define ACTIVITY_PERMILLE 780 /* a step is an activity while the deal has some left */
#define NOTE_PERMILLE     250 /* an activity carries a note */
#define LOST_PERMILLE     110 /* a stage move is a loss */
#define REGRESS_PERMILLE  90  /* a stage move goes back one stage */
#define WON_PERMILLE      650 /* leaving negotiation forward is a win */

typedef struct deal_state {
    uint64_t index;
    int64_t amount;
    uint8_t stage;
    uint8_t owner;
    uint8_t activities_left;
} deal_state;

enum { TYPE_STAGE, TYPE_ACTIVITY, TYPE_UPDATE };

typedef struct held_event {
    char *bytes;
    uint32_t len;
    uint8_t type;
    bool duplicate;
    int64_t at;
} held_event;

enum { ENTRY_NEW_DEAL, ENTRY_DEAL, ENTRY_HELD };

/* Something due at `time`; `order` breaks ties so the stream never depends on heap internals. */
typedef struct entry {
    int64_t time;
    uint64_t order;
    uint32_t slot;
    uint8_t kind;
} entry;

struct wl_workload {
    uint64_t rng;
    uint64_t deals;
    uint64_t next_deal;
    uint64_t next_order;
    uint64_t next_event_id;
    int64_t max_at_sent;

    entry *heap;
    size_t heap_len, heap_cap;

    deal_state *deal_pool;
    uint32_t *deal_free;
    size_t deal_cap, deal_free_len, deal_used;

    held_event *held_pool;
    uint32_t *held_free;
    size_t held_cap, held_free_len, held_used;

    msgpack_sbuffer scratch;
    wl_counts counts;
};

static uint64_t splitmix64(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static uint64_t rand_below(wl_workload *w, uint64_t n)
{
    return splitmix64(&w->rng) % n;
}

static bool chance_permille(wl_workload *w, unsigned permille)
{
    return rand_below(w, 1000) < permille;
}

static int64_t rand_between(wl_workload *w, int64_t lo, int64_t hi)
{
    return lo + (int64_t)rand_below(w, (uint64_t)(hi - lo + 1));
}

static bool entry_before(const entry *a, const entry *b)
{
    return a->time < b->time || (a->time == b->time && a->order < b->order);
}

/* The generator is a test tool: running out of memory ends the program. */
static void *xrealloc(void *ptr, size_t size)
{
    void *grown = realloc(ptr, size);
    if (!grown) {
        fprintf(stderr, "workload: out of memory\n");
        abort();
    }
    return grown;
}

static void heap_push(wl_workload *w, int64_t time, uint8_t kind, uint32_t slot)
{
    if (w->heap_len == w->heap_cap) {
        w->heap_cap = w->heap_cap ? w->heap_cap * 2 : 1024;
        w->heap = xrealloc(w->heap, w->heap_cap * sizeof *w->heap);
    }
    entry e = {.time = time, .order = w->next_order++, .slot = slot, .kind = kind};
    size_t i = w->heap_len++;
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!entry_before(&e, &w->heap[parent]))
            break;
        w->heap[i] = w->heap[parent];
        i = parent;
    }
    w->heap[i] = e;
}

static entry heap_pop(wl_workload *w)
{
    entry top = w->heap[0];
    entry last = w->heap[--w->heap_len];
    size_t i = 0, n = w->heap_len;
    for (;;) {
        size_t child = 2 * i + 1;
        if (child >= n)
            break;
        if (child + 1 < n && entry_before(&w->heap[child + 1], &w->heap[child]))
            child++;
        if (!entry_before(&w->heap[child], &last))
            break;
        w->heap[i] = w->heap[child];
        i = child;
    }
    if (n > 0)
        w->heap[i] = last;
    return top;
}

/* Returns a free slot index of a pool, growing it. */
static uint32_t pool_take(void **pool, size_t elem_size, uint32_t **free_list, size_t *cap,
                          size_t *free_len, size_t *used)
{
    if (*free_len > 0)
        return (*free_list)[--*free_len];
    if (*used == *cap) {
        *cap = *cap ? *cap * 2 : 1024;
        *pool = xrealloc(*pool, *cap * elem_size);
        *free_list = xrealloc(*free_list, *cap * sizeof **free_list);
    }
    return (uint32_t)(*used)++;
}

static uint32_t deal_take(wl_workload *w)
{
    return pool_take((void **)&w->deal_pool, sizeof *w->deal_pool, &w->deal_free, &w->deal_cap,
                     &w->deal_free_len, &w->deal_used);
}

static uint32_t held_take(wl_workload *w)
{
    return pool_take((void **)&w->held_pool, sizeof *w->held_pool, &w->held_free, &w->held_cap,
                     &w->held_free_len, &w->held_used);
}

int wl_deal_id(uint64_t index, char *buf, size_t size)
{
    return snprintf(buf, size, "d%llu", (unsigned long long)index);
}

static void pack_cstr(msgpack_packer *pk, const char *s)
{
    size_t len = strlen(s);
    msgpack_pack_str(pk, len);
    msgpack_pack_str_body(pk, s, len);
}

static void pack_kv_str(msgpack_packer *pk, const char *key, const char *value)
{
    pack_cstr(pk, key);
    pack_cstr(pk, value);
}

/* Packs the keys every event starts with: id, type, deal, at. */
static void pack_head(wl_workload *w, msgpack_packer *pk, size_t nkeys, const char *type,
                      const deal_state *d, int64_t at)
{
    char buf[32];
    msgpack_pack_map(pk, nkeys);
    snprintf(buf, sizeof buf, "e%llu", (unsigned long long)++w->next_event_id);
    pack_kv_str(pk, "id", buf);
    pack_kv_str(pk, "type", type);
    wl_deal_id(d->index, buf, sizeof buf);
    pack_kv_str(pk, "deal", buf);
    pack_cstr(pk, "at");
    msgpack_pack_int64(pk, at);
}

static void pack_amount(wl_workload *w, msgpack_packer *pk, int64_t amount)
{
    pack_cstr(pk, "amount");
    if (chance_permille(w, 50))
        msgpack_pack_double(pk, (double)amount + 0.5);
    else
        msgpack_pack_int64(pk, amount);
}

static void pack_stage(wl_workload *w, msgpack_packer *pk, deal_state *d, int64_t at, uint8_t stage)
{
    bool first = d->stage == NO_STAGE;
    bool lost = stage == LOST;
    pack_head(w, pk, 5 + (first ? 2 : 0) + (lost ? 1 : 0), "stage", d, at);
    pack_kv_str(pk, "stage", stage_names[stage]);
    if (first) {
        pack_amount(w, pk, d->amount);
        pack_kv_str(pk, "owner", people[d->owner]);
    }
    if (lost)
        pack_kv_str(pk, "reason", loss_reasons[rand_below(w, 4)]);
    d->stage = stage;
}

static void pack_activity(wl_workload *w, msgpack_packer *pk, deal_state *d, int64_t at)
{
    bool noted = chance_permille(w, NOTE_PERMILLE);
    pack_head(w, pk, 6 + (noted ? 1 : 0), "activity", d, at);
    pack_kv_str(pk, "kind", kinds[rand_below(w, 4)]);
    const char *actor = chance_permille(w, 800) ? people[d->owner] : people[rand_below(w, PEOPLE)];
    pack_kv_str(pk, "actor", actor);
    if (noted)
        pack_kv_str(pk, "note", notes[rand_below(w, 4)]);
    d->activities_left--;
}

static void pack_update(wl_workload *w, msgpack_packer *pk, deal_state *d, int64_t at)
{
    pack_head(w, pk, 5, "update", d, at);
    if (chance_permille(w, 600)) {
        d->amount = d->amount / 10 * rand_between(w, 8, 13);
        pack_amount(w, pk, d->amount);
    } else {
        d->owner = (uint8_t)rand_below(w, PEOPLE);
        pack_kv_str(pk, "owner", people[d->owner]);
    }
}

/* The deal's next stage move: forward, back one, or lost. */
static uint8_t next_stage(wl_workload *w, const deal_state *d)
{
    if (chance_permille(w, LOST_PERMILLE))
        return LOST;
    if (d->stage > LEAD && chance_permille(w, REGRESS_PERMILLE))
        return d->stage - 1;
    if (d->stage == NEGOTIATION)
        return chance_permille(w, WON_PERMILLE) ? WON : LOST;
    return d->stage + 1;
}

/* Packs the deal's next event into the scratch buffer and returns its TYPE_. */
static uint8_t generate(wl_workload *w, deal_state *d, int64_t at)
{
    msgpack_sbuffer_clear(&w->scratch);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &w->scratch, msgpack_sbuffer_write);
    if (d->stage == NO_STAGE) {
        pack_stage(w, &pk, d, at, LEAD);
        return TYPE_STAGE;
    }
    if (d->activities_left > 0 && chance_permille(w, ACTIVITY_PERMILLE)) {
        pack_activity(w, &pk, d, at);
        return TYPE_ACTIVITY;
    }
    if (chance_permille(w, UPDATE_PERMILLE)) {
        pack_update(w, &pk, d, at);
        return TYPE_UPDATE;
    }
    pack_stage(w, &pk, d, at, next_stage(w, d));
    return TYPE_STAGE;
}

/* Keeps a copy of an event to send when the stream reaches `release`. */
static void hold(wl_workload *w, const char *bytes, size_t len, uint8_t type, int64_t at,
                 int64_t release, bool duplicate)
{
    uint32_t slot = held_take(w);
    held_event *h = &w->held_pool[slot];
    h->bytes = xrealloc(NULL, len);
    memcpy(h->bytes, bytes, len);
    h->len = (uint32_t)len;
    h->type = type;
    h->at = at;
    h->duplicate = duplicate;
    heap_push(w, release, ENTRY_HELD, slot);
}

/* Sends one event: appends it to out, counts it, and maybe plans its second sending. */
static void emit(wl_workload *w, msgpack_sbuffer *out, const char *bytes, size_t len, uint8_t type,
                 int64_t at, int64_t now, bool duplicate)
{
    msgpack_sbuffer_write(out, bytes, len);
    w->counts.sent++;
    w->counts.bytes += len;
    if (duplicate) {
        w->counts.duplicates++;
        return;
    }
    w->counts.distinct++;
    if (type == TYPE_STAGE)
        w->counts.stage++;
    else if (type == TYPE_ACTIVITY)
        w->counts.activity++;
    else
        w->counts.update++;
    if (at < w->max_at_sent)
        w->counts.late++;
    else
        w->max_at_sent = at;
    if (rand_below(w, 10000) < DUP_PER_10000)
        hold(w, bytes, len, type, at, now + rand_between(w, 1000, 2 * HOUR_MS), true);
}

wl_workload *wl_new(uint64_t seed, uint64_t deals, int64_t start_ms)
{
    wl_workload *w = calloc(1, sizeof *w);
    if (!w)
        return NULL;
    w->rng = seed;
    w->deals = deals ? deals : 1;
    msgpack_sbuffer_init(&w->scratch);
    heap_push(w, start_ms, ENTRY_NEW_DEAL, 0);
    return w;
}

void wl_free(wl_workload *w)
{
    if (!w)
        return;
    for (size_t i = 0; i < w->heap_len; i++)
        if (w->heap[i].kind == ENTRY_HELD)
            free(w->held_pool[w->heap[i].slot].bytes);
    free(w->heap);
    free(w->deal_pool);
    free(w->deal_free);
    free(w->held_pool);
    free(w->held_free);
    msgpack_sbuffer_destroy(&w->scratch);
    free(w);
}

static void start_deal(wl_workload *w, int64_t now)
{
    uint32_t slot = deal_take(w);
    deal_state *d = &w->deal_pool[slot];
    d->index = w->next_deal++;
    d->amount = rand_between(w, 10, 2000) * 100;
    d->stage = NO_STAGE;
    d->owner = (uint8_t)rand_below(w, PEOPLE);
    d->activities_left = (uint8_t)rand_between(w, 6, 18);
    heap_push(w, now, ENTRY_DEAL, slot);
    if (w->next_deal < w->deals)
        heap_push(w, now + rand_between(w, 10000, 50000), ENTRY_NEW_DEAL, 0);
    w->counts.deals_started = w->next_deal;
}

bool wl_next(wl_workload *w, msgpack_sbuffer *out)
{
    while (w->heap_len > 0) {
        entry e = heap_pop(w);
        if (e.kind == ENTRY_NEW_DEAL) {
            start_deal(w, e.time);
            continue;
        }
        if (e.kind == ENTRY_HELD) {
            held_event *h = &w->held_pool[e.slot];
            emit(w, out, h->bytes, h->len, h->type, h->at, e.time, h->duplicate);
            free(h->bytes);
            w->held_free[w->held_free_len++] = e.slot;
            return true;
        }
        deal_state *d = &w->deal_pool[e.slot];
        uint8_t type = generate(w, d, e.time);
        bool late = chance_permille(w, LATE_PERMILLE);
        if (late)
            hold(w, w->scratch.data, w->scratch.size, type, e.time,
                 e.time + rand_between(w, 2 * HOUR_MS, 3 * DAY_MS), false);
        else
            emit(w, out, w->scratch.data, w->scratch.size, type, e.time, e.time, false);
        bool closed = d->stage == WON || d->stage == LOST;
        if (closed || chance_permille(w, SILENT_PERMILLE))
            w->deal_free[w->deal_free_len++] = e.slot;
        else
            heap_push(w, e.time + rand_between(w, HOUR_MS, 72 * HOUR_MS), ENTRY_DEAL, e.slot);
        if (!late)
            return true;
    }
    return false;
}

wl_counts wl_counts_get(const wl_workload *w)
{
    return w->counts;
}

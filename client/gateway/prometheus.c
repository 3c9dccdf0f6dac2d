/* prometheus.c: the Prometheus text exposition format (0.0.4) of the
 * daemon's `stats` and the gateway's own counters (prometheus.h). The stats
 * bytes come from the network: every value is checked before it is shown,
 * and what does not fit is left out rather than shown wrong. */
#include "prometheus.h"

#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <msgpack.h>

#include "reader.h"

/* A growing text; after a failed allocation it only remembers the failure. */
typedef struct text {
    char *ptr;
    size_t len, cap;
    bool failed;
} text;

static void put(text *t, const char *s, size_t n)
{
    if (t->failed)
        return;
    if (t->len + n + 1 > t->cap) {
        size_t cap = t->cap ? t->cap : 4096;
        while (cap < t->len + n + 1)
            cap *= 2;
        char *p = realloc(t->ptr, cap);
        if (!p) {
            t->failed = true;
            return;
        }
        t->ptr = p;
        t->cap = cap;
    }
    memcpy(t->ptr + t->len, s, n);
    t->len += n;
    t->ptr[t->len] = '\0';
}

static void puts_(text *t, const char *s)
{
    put(t, s, strlen(s));
}

static void putf(text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void putf(text *t, const char *fmt, ...)
{
    char buf[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof(buf)) {
        /* every caller formats numbers and names of bounded length */
        t->failed = true;
        return;
    }
    put(t, buf, (size_t)n);
}

/* A label value, escaped as the format says: backslash, double quote and
 * line feed. */
static void put_label_value(text *t, const char *s)
{
    put(t, "\"", 1);
    for (const char *p = s ? s : ""; *p; p++) {
        if (*p == '\\')
            put(t, "\\\\", 2);
        else if (*p == '"')
            put(t, "\\\"", 2);
        else if (*p == '\n')
            put(t, "\\n", 2);
        else
            put(t, p, 1);
    }
    put(t, "\"", 1);
}

/* A whole number of units divided by 10^digits, exactly, without trailing
 * zeros: 50 µs in seconds is "0.00005", 2500 ms is "2.5". */
static void put_scaled(text *t, bool negative, uint64_t units, int digits)
{
    uint64_t scale = 1;
    for (int i = 0; i < digits; i++)
        scale *= 10;
    uint64_t frac = units % scale;
    char fraction[24] = "";
    if (frac) {
        /* the digits after the point, right to left, then less the zeros at the end */
        fraction[0] = '.';
        for (int i = digits; i >= 1; i--, frac /= 10)
            fraction[i] = (char)('0' + frac % 10);
        size_t n = (size_t)digits + 1;
        while (fraction[n - 1] == '0')
            n--;
        fraction[n] = '\0';
    }
    putf(t, "%s%" PRIu64 "%s", negative ? "-" : "", units / scale, fraction);
}

static void put_float(text *t, double v)
{
    if (isnan(v))
        puts_(t, "NaN");
    else if (isinf(v))
        puts_(t, v > 0 ? "+Inf" : "-Inf");
    else {
        /* the shortest text that reads back as the same double */
        char buf[32];
        for (int precision = 15; precision <= 17; precision++) {
            snprintf(buf, sizeof(buf), "%.*g", precision, v);
            if (strtod(buf, NULL) == v)
                break;
        }
        puts_(t, buf);
    }
}

/* A numeric msgpack value, divided by 10^digits. False for anything else. */
static bool put_number(text *t, const msgpack_object *o, int digits)
{
    switch (o->type) {
    case MSGPACK_OBJECT_POSITIVE_INTEGER:
        put_scaled(t, false, o->via.u64, digits);
        return true;
    case MSGPACK_OBJECT_NEGATIVE_INTEGER:
        /* the magnitude of INT64_MIN fits in a uint64_t */
        put_scaled(t, true, (uint64_t)(-(o->via.i64 + 1)) + 1, digits);
        return true;
    case MSGPACK_OBJECT_FLOAT32:
    case MSGPACK_OBJECT_FLOAT64:
        put_float(t, o->via.f64 / pow(10, digits));
        return true;
    default:
        return false;
    }
}

static bool is_number(const msgpack_object *o)
{
    return o->type == MSGPACK_OBJECT_POSITIVE_INTEGER ||
           o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER || o->type == MSGPACK_OBJECT_FLOAT32 ||
           o->type == MSGPACK_OBJECT_FLOAT64;
}

static void put_family(text *t, const char *name, const char *type, const char *help)
{
    putf(t, "# HELP %s ", name);
    puts_(t, help); /* ours: no backslash nor line feed to escape */
    putf(t, "\n# TYPE %s %s\n", name, type);
}

/* ---- family names, so that no two families share a sample name ---- */

#define NAME_MAX_LEN 128
/* Keys of stats shown beyond the known ones, at most (a reply that holds
 * more is not one this daemon gives). */
#define OTHER_KEYS_MAX 256

typedef struct names {
    char (*list)[NAME_MAX_LEN];
    size_t count, cap;
} names;

static const char *const SAMPLE_SUFFIXES[] = {"",     "_total", "_bucket",
                                              "_sum", "_count", "_created"};
#define NSUFFIXES (sizeof(SAMPLE_SUFFIXES) / sizeof(SAMPLE_SUFFIXES[0]))

static bool equal_with_suffix(const char *a, const char *b, const char *suffix)
{
    size_t n = strlen(b);
    return strncmp(a, b, n) == 0 && strcmp(a + n, suffix) == 0;
}

/* Whether a family of this name could give a sample name another gives. */
static bool name_taken(const names *ns, const char *name)
{
    for (size_t i = 0; i < ns->count; i++)
        for (size_t s = 0; s < NSUFFIXES; s++)
            if (equal_with_suffix(name, ns->list[i], SAMPLE_SUFFIXES[s]) ||
                equal_with_suffix(ns->list[i], name, SAMPLE_SUFFIXES[s]))
                return true;
    return false;
}

/* Records a family's name; false when it cannot be recorded or is taken. */
static bool name_claim(names *ns, const char *name, text *t)
{
    if (strlen(name) >= NAME_MAX_LEN || name_taken(ns, name))
        return false;
    if (ns->count == ns->cap) {
        size_t cap = ns->cap ? 2 * ns->cap : 64;
        void *p = realloc(ns->list, cap * sizeof(ns->list[0]));
        if (!p) {
            t->failed = true;
            return false;
        }
        ns->list = p;
        ns->cap = cap;
    }
    snprintf(ns->list[ns->count++], NAME_MAX_LEN, "%s", name);
    return true;
}

/* ---- the daemon's stats ---- */

typedef struct known_stat {
    const char *key;
    const char *name;
    const char *type;
    int digits; /* the value is in units of 10^-digits of the name's unit */
    const char *help;
} known_stat;

static const known_stat KNOWN_STATS[] = {
    {"events", "dealflow_events_total", "counter", 0, "Events recorded, ever."},
    {"duplicates", "dealflow_duplicates_total", "counter", 0,
     "Events not recorded because their id was, ever."},
    {"rejected", "dealflow_rejected_total", "counter", 0, "Items in the rejected store, ever."},
    {"deals", "dealflow_deals", "gauge", 0, "Deals known."},
    {"last_seq", "dealflow_last_seq", "gauge", 0, "The last recorded seq."},
    {"flushed_seq", "dealflow_flushed_seq", "gauge", 0,
     "The seq up to which the store's derived records cover the log."},
    {"commits", "dealflow_commits_total", "counter", 0,
     "Batch write transactions committed since the daemon started."},
    {"flushes", "dealflow_flushes_total", "counter", 0,
     "Flush transactions committed since the daemon started."},
    {"notifications", "dealflow_notifications_total", "counter", 0,
     "deal.moved notifications published since the daemon started."},
    {"stale_notifications", "dealflow_stale_notifications_total", "counter", 0,
     "deal.stale notifications published since the daemon started."},
    {"pending", "dealflow_pending_items", "gauge", 0,
     "Items received and waiting for the next write transaction."},
    {"uptime_ms", "dealflow_uptime_seconds", "gauge", 3, "Time since the daemon started."},
    {"db_bytes", "dealflow_db_bytes", "gauge", 0, "Bytes the LMDB data file occupies on disk."},
    {"disk_free_bytes", "dealflow_disk_free_bytes", "gauge", 0,
     "Bytes free on the data directory's filesystem."},
    {"map_bytes", "dealflow_map_bytes", "gauge", 0, "The store's map size."},
    {"map_used_bytes", "dealflow_map_used_bytes", "gauge", 0, "Bytes of the store's map in use."},
    {"store_full", "dealflow_store_full", "gauge", 0,
     "1 while the disk or the map is full and writes are stopped."},
    {"lost", "dealflow_lost_total", "counter", 0,
     "Ingest events neither recorded nor kept as rejected since the daemon started."},
};
#define NKNOWN_STATS (sizeof(KNOWN_STATS) / sizeof(KNOWN_STATS[0]))

typedef struct known_histogram {
    const char *key;
    const char *name;
    const char *help;
} known_histogram;

static const known_histogram KNOWN_HISTOGRAMS[] = {
    {"commit_latency", "dealflow_commit_latency_seconds",
     "Time LMDB took to commit a batch's write transaction, its fsync included."},
    {"append_latency", "dealflow_append_latency_seconds",
     "Time from an append request's arrival to its acknowledgement."},
};
#define NKNOWN_HISTOGRAMS (sizeof(KNOWN_HISTOGRAMS) / sizeof(KNOWN_HISTOGRAMS[0]))

static bool key_is(const msgpack_object *k, const char *s)
{
    size_t n = strlen(s);
    return k->type == MSGPACK_OBJECT_STR && k->via.str.size == n &&
           memcmp(k->via.str.ptr, s, n) == 0;
}

/* The value of the first entry with this key, or NULL. */
static const msgpack_object *map_get(const msgpack_object *map, const char *key)
{
    if (map->type != MSGPACK_OBJECT_MAP)
        return NULL;
    for (uint32_t i = 0; i < map->via.map.size; i++)
        if (key_is(&map->via.map.ptr[i].key, key))
            return &map->via.map.ptr[i].val;
    return NULL;
}

/* Whether entry i is the first with its key (a later one is not shown). */
static bool first_of_key(const msgpack_object *map, uint32_t i)
{
    const msgpack_object *k = &map->via.map.ptr[i].key;
    for (uint32_t j = 0; j < i; j++) {
        const msgpack_object *other = &map->via.map.ptr[j].key;
        if (other->type == MSGPACK_OBJECT_STR && k->via.str.size == other->via.str.size &&
            memcmp(k->via.str.ptr, other->via.str.ptr, k->via.str.size) == 0)
            return false;
    }
    return true;
}

/* A latency histogram as `stats` packs it: {buckets: [[le_us, count], ...],
 * count, sum_us}, with bounds rising and counts cumulative up to count. */
static bool histogram_valid(const msgpack_object *h)
{
    const msgpack_object *buckets = map_get(h, "buckets"), *count = map_get(h, "count"),
                         *sum = map_get(h, "sum_us");
    if (!buckets || !count || !sum || buckets->type != MSGPACK_OBJECT_ARRAY ||
        count->type != MSGPACK_OBJECT_POSITIVE_INTEGER ||
        sum->type != MSGPACK_OBJECT_POSITIVE_INTEGER)
        return false;
    uint64_t last_le = 0, last_count = 0;
    for (uint32_t i = 0; i < buckets->via.array.size; i++) {
        const msgpack_object *pair = &buckets->via.array.ptr[i];
        if (pair->type != MSGPACK_OBJECT_ARRAY || pair->via.array.size != 2 ||
            pair->via.array.ptr[0].type != MSGPACK_OBJECT_POSITIVE_INTEGER ||
            pair->via.array.ptr[1].type != MSGPACK_OBJECT_POSITIVE_INTEGER)
            return false;
        uint64_t le = pair->via.array.ptr[0].via.u64, c = pair->via.array.ptr[1].via.u64;
        if ((i > 0 && le <= last_le) || c < last_count || c > count->via.u64)
            return false;
        last_le = le;
        last_count = c;
    }
    return true;
}

static void put_histogram(text *t, const char *name, const char *help, const msgpack_object *h)
{
    const msgpack_object *buckets = map_get(h, "buckets");
    put_family(t, name, "histogram", help);
    for (uint32_t i = 0; i < buckets->via.array.size; i++) {
        const msgpack_object *pair = buckets->via.array.ptr[i].via.array.ptr;
        putf(t, "%s_bucket{le=\"", name);
        put_scaled(t, false, pair[0].via.u64, 6);
        putf(t, "\"} %" PRIu64 "\n", pair[1].via.u64);
    }
    putf(t, "%s_bucket{le=\"+Inf\"} %" PRIu64 "\n", name, map_get(h, "count")->via.u64);
    putf(t, "%s_sum ", name);
    put_scaled(t, false, map_get(h, "sum_us")->via.u64, 6);
    putf(t, "\n%s_count %" PRIu64 "\n", name, map_get(h, "count")->via.u64);
}

static void put_scalar(text *t, const char *name, const char *type, const char *help,
                       const msgpack_object *v, int digits)
{
    put_family(t, name, type, help);
    putf(t, "%s ", name);
    put_number(t, v, digits);
    puts_(t, "\n");
}

static bool ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

/* A key this gateway does not know (a newer daemon's): a number as a gauge
 * (`_ms` in seconds), a latency histogram in seconds; anything else, or a
 * name another family gives, is left out. */
static void put_other_stat(text *t, names *ns, const msgpack_object *k, const msgpack_object *v)
{
    char name[NAME_MAX_LEN];
    const char *prefix = "dealflow_";
    size_t n = strlen(prefix);
    if (k->type != MSGPACK_OBJECT_STR || k->via.str.size == 0 ||
        k->via.str.size + n + sizeof("_seconds") > sizeof(name))
        return;
    memcpy(name, prefix, n);
    for (uint32_t i = 0; i < k->via.str.size; i++) {
        char c = k->via.str.ptr[i];
        bool word = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
        name[n++] = word ? c : '_';
    }
    name[n] = '\0';
    char help[NAME_MAX_LEN + 32];
    snprintf(help, sizeof(help), "The daemon's stats key %s.", name + strlen(prefix));
    if (v->type == MSGPACK_OBJECT_MAP) {
        if (!histogram_valid(v))
            return;
        strcat(name, "_seconds");
        if (name_claim(ns, name, t))
            put_histogram(t, name, help, v);
        return;
    }
    if (!is_number(v))
        return;
    int digits = 0;
    if (ends_with(name, "_ms")) {
        strcpy(name + strlen(name) - 3, "_seconds");
        digits = 3;
    }
    if (name_claim(ns, name, t))
        put_scalar(t, name, "gauge", help, v, digits);
}

static void put_stats(text *t, names *ns, const msgpack_object *stats)
{
    for (size_t i = 0; i < NKNOWN_STATS; i++) {
        const known_stat *s = &KNOWN_STATS[i];
        const msgpack_object *v = map_get(stats, s->key);
        bool counter = strcmp(s->type, "counter") == 0;
        /* a counter is a count: never negative, never a fraction */
        if (!v || (counter ? v->type != MSGPACK_OBJECT_POSITIVE_INTEGER : !is_number(v)))
            continue;
        if (name_claim(ns, s->name, t))
            put_scalar(t, s->name, s->type, s->help, v, s->digits);
    }
    for (size_t i = 0; i < NKNOWN_HISTOGRAMS; i++) {
        const known_histogram *h = &KNOWN_HISTOGRAMS[i];
        const msgpack_object *v = map_get(stats, h->key);
        if (v && histogram_valid(v) && name_claim(ns, h->name, t))
            put_histogram(t, h->name, h->help, v);
    }
    size_t others = 0;
    for (uint32_t i = 0; i < stats->via.map.size && others < OTHER_KEYS_MAX; i++) {
        const msgpack_object *k = &stats->via.map.ptr[i].key;
        bool known = key_is(k, "ok");
        for (size_t j = 0; j < NKNOWN_STATS && !known; j++)
            known = key_is(k, KNOWN_STATS[j].key);
        for (size_t j = 0; j < NKNOWN_HISTOGRAMS && !known; j++)
            known = key_is(k, KNOWN_HISTOGRAMS[j].key);
        if (known || k->type != MSGPACK_OBJECT_STR || !first_of_key(stats, i))
            continue;
        others++;
        put_other_stat(t, ns, k, &stats->via.map.ptr[i].val);
    }
}

/* ---- the gateway's own ---- */

static bool same_text(const char *a, const char *b)
{
    return strcmp(a ? a : "", b ? b : "") == 0;
}

static void put_routes(text *t, const gw_route_count *routes, size_t n)
{
    const char *name = "dealflow_gateway_http_requests_total";
    put_family(t, name, "counter", "HTTP requests the gateway answered, by route and status.");
    for (size_t i = 0; i < n; i++) {
        bool seen = false;
        for (size_t j = 0; j < i && !seen; j++)
            seen =
                routes[j].status == routes[i].status && same_text(routes[j].route, routes[i].route);
        if (seen)
            continue;
        uint64_t count = 0;
        for (size_t j = i; j < n; j++)
            if (routes[j].status == routes[i].status && same_text(routes[j].route, routes[i].route))
                count += routes[j].count;
        putf(t, "%s{route=", name);
        put_label_value(t, routes[i].route);
        putf(t, ",status=\"%d\"} %" PRIu64 "\n", routes[i].status, count);
    }
}

enum delivery_figure { DELIVERED, RETRIES, FAILURES, LAG, FAILING };

static uint64_t delivery_figure(const gw_delivery_state *s, enum delivery_figure f)
{
    switch (f) {
    case DELIVERED:
        return s->delivered;
    case RETRIES:
        return s->retries;
    case FAILURES:
        return s->failures;
    case LAG:
        return s->daemon_seq > s->position ? s->daemon_seq - s->position : 0;
    case FAILING:
        return s->failing;
    }
    return 0;
}

static void put_deliveries(text *t, const gw_delivery_state *d, size_t n)
{
    static const struct {
        enum delivery_figure figure;
        const char *name, *type, *help;
    } families[] = {
        {DELIVERED, "dealflow_gateway_webhook_deliveries_total", "counter",
         "Notifications a webhook endpoint took."},
        {RETRIES, "dealflow_gateway_webhook_retries_total", "counter",
         "Delivery attempts after a first that failed."},
        {FAILURES, "dealflow_gateway_webhook_failures_total", "counter",
         "Delivery attempts that failed."},
        {LAG, "dealflow_gateway_webhook_lag_events", "gauge",
         "Seqs the daemon has that the endpoint was not yet given."},
        {FAILING, "dealflow_gateway_webhook_failing", "gauge",
         "1 while the last delivery attempt to the endpoint failed."},
    };
    for (size_t f = 0; f < sizeof(families) / sizeof(families[0]); f++) {
        enum delivery_figure figure = families[f].figure;
        bool worst = figure == LAG || figure == FAILING;
        put_family(t, families[f].name, families[f].type, families[f].help);
        for (size_t i = 0; i < n; i++) {
            bool seen = false;
            for (size_t j = 0; j < i && !seen; j++)
                seen = same_text(d[j].url, d[i].url);
            if (seen)
                continue;
            uint64_t value = 0;
            for (size_t j = i; j < n; j++) {
                if (!same_text(d[j].url, d[i].url))
                    continue;
                uint64_t v = delivery_figure(&d[j], figure);
                value = worst ? (v > value ? v : value) : value + v;
            }
            putf(t, "%s{url=", families[f].name);
            put_label_value(t, d[i].url);
            putf(t, "} %" PRIu64 "\n", value);
        }
    }
}

int gw_prometheus_render(const void *stats, size_t stats_len, const gw_route_count *routes,
                         size_t nroutes, const gw_delivery_state *deliveries, size_t ndeliveries,
                         char **text_out, size_t *len_out)
{
    text t = {0};
    names ns = {0};
    msgpack_zone zone;
    msgpack_object reply = {.type = MSGPACK_OBJECT_NIL};
    df_error err;
    bool up = false;
    if (!msgpack_zone_init(&zone, 4096))
        return -1;
    if (stats && stats_len > 0 && df_msgpack_unpack(stats, stats_len, &zone, &reply, &err) == 0) {
        const msgpack_object *ok = map_get(&reply, "ok");
        up = ok && ok->type == MSGPACK_OBJECT_BOOLEAN && ok->via.boolean;
    }
    put_family(&t, "dealflow_gateway_daemon_up", "gauge",
               "1 when the daemon answered stats for this scrape, else 0.");
    putf(&t, "dealflow_gateway_daemon_up %d\n", up ? 1 : 0);
    name_claim(&ns, "dealflow_gateway_daemon_up", &t);
    name_claim(&ns, "dealflow_gateway_http_requests", &t);
    name_claim(&ns, "dealflow_gateway_webhook_deliveries", &t);
    name_claim(&ns, "dealflow_gateway_webhook_retries", &t);
    name_claim(&ns, "dealflow_gateway_webhook_failures", &t);
    name_claim(&ns, "dealflow_gateway_webhook_lag_events", &t);
    name_claim(&ns, "dealflow_gateway_webhook_failing", &t);
    if (up)
        put_stats(&t, &ns, &reply);
    put_routes(&t, routes, nroutes);
    put_deliveries(&t, deliveries, ndeliveries);
    msgpack_zone_destroy(&zone);
    free(ns.list);
    if (!t.failed && !t.ptr)
        puts_(&t, "");
    if (t.failed) {
        free(t.ptr);
        return -1;
    }
    *text_out = t.ptr;
    *len_out = t.len;
    return 0;
}

/* histogram.h: latency histograms with fixed bounds in microseconds, as
 * `stats` reports them (commit_latency, append_latency). One thread observes
 * and another reads, so every count is a relaxed atomic: a reader may see an
 * observation's bucket before its sum, never a torn count. */
#ifndef DF_HISTOGRAM_H
#define DF_HISTOGRAM_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

/* The upper bounds (inclusive) of the buckets, in microseconds: from 50 µs
 * to 10 s, about three to a decade, so that both an fsync on fast storage
 * and an append that waited behind a large ingest batch fall inside. */
#define DF_HISTOGRAM_BOUNDS 17
extern const uint64_t df_histogram_bounds_us[DF_HISTOGRAM_BOUNDS];

typedef struct df_histogram {
    /* per bucket (not cumulative); the last slot is over the largest bound */
    atomic_uint_least64_t counts[DF_HISTOGRAM_BOUNDS + 1];
    atomic_uint_least64_t sum_us;
} df_histogram;

/* What a reader packs: cumulative counts as Prometheus takes them. */
typedef struct df_histogram_snapshot {
    uint64_t le[DF_HISTOGRAM_BOUNDS]; /* observations <= df_histogram_bounds_us[i] */
    uint64_t count;                   /* every observation, the +Inf bucket */
    uint64_t sum_us;
} df_histogram_snapshot;

/* A zeroed df_histogram is empty; this makes one so. */
void df_histogram_init(df_histogram *h);
void df_histogram_observe(df_histogram *h, uint64_t us);
/* The counts read so far; count is the sum of the buckets read, so that the
 * snapshot is always a valid histogram. */
df_histogram_snapshot df_histogram_read(const df_histogram *h);

#endif

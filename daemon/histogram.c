/* histogram.c: latency histograms with fixed bounds (histogram.h). */
#include "histogram.h"

const uint64_t df_histogram_bounds_us[DF_HISTOGRAM_BOUNDS] = {
    50,    100,    250,    500,    1000,    2500,    5000,    10000,    25000,
    50000, 100000, 250000, 500000, 1000000, 2500000, 5000000, 10000000,
};

void df_histogram_init(df_histogram *h)
{
    for (size_t i = 0; i <= DF_HISTOGRAM_BOUNDS; i++)
        atomic_init(&h->counts[i], 0);
    atomic_init(&h->sum_us, 0);
}

static size_t bucket_of(uint64_t us)
{
    size_t lo = 0, hi = DF_HISTOGRAM_BOUNDS;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (us <= df_histogram_bounds_us[mid])
            hi = mid;
        else
            lo = mid + 1;
    }
    return lo;
}

void df_histogram_observe(df_histogram *h, uint64_t us)
{
    atomic_fetch_add_explicit(&h->counts[bucket_of(us)], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&h->sum_us, us, memory_order_relaxed);
}

df_histogram_snapshot df_histogram_read(const df_histogram *h)
{
    df_histogram_snapshot s = {.count = 0};
    uint64_t below = 0;
    for (size_t i = 0; i <= DF_HISTOGRAM_BOUNDS; i++) {
        below += atomic_load_explicit(&h->counts[i], memory_order_relaxed);
        if (i < DF_HISTOGRAM_BOUNDS)
            s.le[i] = below;
    }
    s.count = below;
    s.sum_us = atomic_load_explicit(&h->sum_us, memory_order_relaxed);
    return s;
}

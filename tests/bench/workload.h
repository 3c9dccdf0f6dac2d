/* workload.h: a deterministic stream of sales-pipeline events for the benchmark and its tests. */
#ifndef DF_WORKLOAD_H
#define DF_WORKLOAD_H

#include <stdbool.h>
#include <stdint.h>

#include <msgpack.h>

/* Deals move through the default pipeline (lead .. negotiation, then won or
 * lost) with dropouts and regressions, about eight activities each, a few
 * updates, interleaved in event time as a real stream would be. About 1% of
 * events arrive late (hours to days after their `at`) and about 0.5% are
 * sent a second time with the same bytes. The same seed always gives the
 * same bytes. */
typedef struct wl_workload wl_workload;

typedef struct wl_counts {
    uint64_t sent;       /* events returned by wl_next, duplicates included */
    uint64_t distinct;   /* events with an id not sent before */
    uint64_t duplicates; /* second sendings of an id */
    uint64_t late;       /* distinct events whose `at` is older than an `at` already sent */
    uint64_t stage;      /* distinct events per type */
    uint64_t activity;
    uint64_t update;
    uint64_t bytes;         /* bytes of all events returned, duplicates included */
    uint64_t deals_started; /* deals d0 .. d<n-1> have had their first event generated */
} wl_counts;

/* Returns a workload of `deals` deals (at least 1) whose first deal starts at
 * start_ms, or NULL when out of memory. */
wl_workload *wl_new(uint64_t seed, uint64_t deals, int64_t start_ms);

void wl_free(wl_workload *w);

/* Appends the next event (one msgpack map) to out. Returns false, appending
 * nothing, when every deal has run its course. */
bool wl_next(wl_workload *w, msgpack_sbuffer *out);

/* Counters of everything wl_next has returned so far. */
wl_counts wl_counts_get(const wl_workload *w);

/* Writes the id of deal number `index` ("d<index>") to buf and returns its length. */
int wl_deal_id(uint64_t index, char *buf, size_t size);

#endif

/* descriptors.h: the daemon's file descriptors. Every api, ingest and notify
 * connection takes one; at the limit ZeroMQ cannot accept a new peer (its
 * I/O thread retries, busy, until one closes), so the limit is raised at
 * start and the log says when the open descriptors near it. */
#ifndef DF_DESCRIPTORS_H
#define DF_DESCRIPTORS_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/resource.h>

/* What the daemon knows of its descriptor limit, and whether it warned. */
typedef struct df_descriptor_watch {
    rlim_t limit; /* 0: unknown, nothing is checked */
    bool near;
    int64_t warned_ms;
} df_descriptor_watch;

/* Raises the soft RLIMIT_NOFILE to the hard limit, and logs the limit. */
void df_descriptors_raise(df_descriptor_watch *watch);

/* Counts the open descriptors (call it now and then, from one thread): logs
 * when they pass 90% of the limit, at most once a minute while they stay
 * there, and once when they are back under 80%. */
void df_descriptors_check(df_descriptor_watch *watch);

#endif

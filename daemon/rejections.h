/* rejections.h: refused events summarised in the log, at most one line every
 * DF_REJECTIONS_EVERY_MS: how many were refused over ingest and over append
 * since the last line, and the first reason. A producer that sends only
 * broken events cannot flood the log, and an operator still sees why. */
#ifndef DF_REJECTIONS_H
#define DF_REJECTIONS_H

#include <stdbool.h>
#include <stdint.h>

#include "batch.h"

#define DF_REJECTIONS_EVERY_MS 10000

typedef struct df_rejections {
    uint64_t ingest, appends;        /* refused since the last line */
    int64_t last_line_ms;            /* when the last line was logged */
    char first[DF_MESSAGE_MAX + 32]; /* the first reason since the last line */
} df_rejections;

/* Counts the refused events of a batch the writer handed back. */
void df_rejections_note(df_rejections *r, const df_batch *done);
/* Logs the summary when something was refused and the last line is old
 * enough, or at once when `now` says so (shutdown). */
void df_rejections_log(df_rejections *r, int64_t now_ms, bool now);

#endif

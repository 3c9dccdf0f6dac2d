/* rejections.c: the rate-limited log line that summarises refused events. */
#include "rejections.h"

#include <stdio.h>

#include "dealflow.h"
#include "log.h"

void df_rejections_note(df_rejections *r, const df_batch *done)
{
    /* a batch that failed whole is logged as such by the loop */
    if (done->failure)
        return;
    for (size_t i = 0; i < done->count; i++) {
        const df_item *it = &done->items[i];
        if (!it->error)
            continue;
        if (r->ingest + r->appends == 0) {
            const char *message = df_batch_text(done, it->message);
            snprintf(r->first, sizeof(r->first), "%s%s%s", df_error_name(it->error),
                     *message ? ": " : "", message);
        }
        if (it->request)
            r->appends++;
        else
            r->ingest++;
    }
}

void df_rejections_log(df_rejections *r, int64_t now_ms, bool now)
{
    if (r->ingest + r->appends == 0 || (!now && now_ms - r->last_line_ms < DF_REJECTIONS_EVERY_MS))
        return;
    df_log("refused %llu events since the last such line (%llu over ingest, %llu appends); "
           "the first: %s",
           (unsigned long long)(r->ingest + r->appends), (unsigned long long)r->ingest,
           (unsigned long long)r->appends, r->first);
    r->ingest = r->appends = 0;
    r->last_line_ms = now_ms;
}

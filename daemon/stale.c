/* stale.c: rotting deals (see stale.h). A spell is found once: by the look
 * whose window holds the moment it went stale, or, when it went stale before
 * the last look, as the change that began it is flushed. */
#include "stale.h"

#include <string.h>

bool df_stale_spell(const df_deal *d, const df_pipelines *pl, int64_t *since, int *rot_days)
{
    int outcome;
    if (!d->has_stage)
        return false;
    df_deal_stage_info(d, pl, &outcome, NULL, rot_days);
    if (outcome != DF_OPEN || *rot_days < 0)
        return false;
    *since = df_deal_idle_since(d);
    return true;
}

bool df_stale_on_arrival(const df_deal *before, const df_deal *after, const df_pipelines *pl,
                         int64_t looked, int64_t *since)
{
    int64_t before_since, limit;
    int rot, before_rot;
    if (!df_stale_spell(after, pl, since, &rot))
        return false;
    if (before && df_stale_spell(before, pl, &before_since, &before_rot) &&
        before_since == *since && df_name_same(&before->stage, &after->stage) &&
        df_str_same(df_deal_pipeline(before), df_deal_pipeline(after)))
        return false; /* the same spell */
    return !__builtin_add_overflow(*since, (int64_t)rot * DF_DAY_MS, &limit) && limit <= looked;
}

typedef struct scan {
    df_stale_found found;
    void *ctx;
    df_str pipeline;
    const df_name *stage;
} scan;

static int each_idle(void *ctx, const char *deal, size_t len, int64_t idle_since)
{
    scan *s = ctx;
    df_name id;
    df_name_set(&id, deal, len);
    s->found(s->ctx, &id, s->pipeline, s->stage, idle_since);
    return 0;
}

int df_stale_scan(df_store *st, MDB_txn *txn, const df_pipelines *pl, int64_t looked, int64_t now,
                  df_stale_found found, void *ctx)
{
    int rc = 0;
    for (int i = 0; rc == 0 && i < pl->count; i++) {
        const df_pipeline *p = &pl->items[i];
        for (int j = 0; rc == 0 && j < p->nstages; j++) {
            const df_stage_def *def = &p->stages[j];
            int64_t rot = (int64_t)def->rot_days * DF_DAY_MS, after, until;
            if (def->outcome != DF_OPEN || def->rot_days < 0 ||
                __builtin_sub_overflow(looked, rot, &after) ||
                __builtin_sub_overflow(now, rot, &until))
                continue;
            scan s = {found, ctx, {p->name.s, p->name.len}, &def->name};
            rc = df_store_idle_scan(st, txn, s.pipeline, (df_str){def->name.s, def->name.len},
                                    after, until, each_idle, &s);
        }
    }
    return rc;
}

/* apply.c: admitting an event and deciding how it is folded (see apply.h). */
#include "apply.h"

/* Whether a late event can wait for the refold at the end of the batch. It
 * can when it cannot move the deal: a stage event before the event that
 * moved the deal into its current stage (that event, and every stage event
 * after it, names that stage), or an activity or update; and it names no
 * other pipeline. One refold then serves every such event of the deal,
 * where a history sent newest first would otherwise refold it for each. */
static bool refold_can_wait(const df_deal *d, const df_event *ev)
{
    if (ev->pipeline.len > 0 && !df_str_same(ev->pipeline, df_deal_pipeline(d)))
        return false;
    return ev->type != DF_EV_STAGE || (d->has_stage && ev->at < d->stage_since);
}

static bool admitted(const df_pipelines *pl, const df_deal *before, const df_event *ev,
                     df_error *err)
{
    uint64_t version = before ? before->version : 0;
    if (ev->has_expect && ev->expect != version) {
        df_fail(err, DF_ECONFLICT, "deal `%.*s` is at version %llu, not %llu", (int)ev->deal.len,
                ev->deal.ptr, (unsigned long long)version, (unsigned long long)ev->expect);
        return false;
    }
    return df_check_event(pl, before ? &before->pipeline : NULL, ev, err) == 0;
}

df_apply_result df_apply(const df_pipelines *pl, const df_deal *before, bool refold_waits,
                         const df_event *ev, df_deal *after, df_error *err)
{
    if (!admitted(pl, before, ev, err))
        return DF_APPLY_REFUSED;
    return df_apply_fold(pl, before, refold_waits, ev, after);
}

df_apply_result df_apply_fold(const df_pipelines *pl, const df_deal *before, bool refold_waits,
                              const df_event *ev, df_deal *after)
{
    if (before)
        df_deal_copy(after, before);
    else
        df_deal_init(after, ev->deal.ptr, ev->deal.len);
    bool late = before && !df_fold_in_order(after, ev);
    if (late && refold_can_wait(after, ev)) {
        if (!refold_waits && df_fold_late(after, ev))
            return DF_APPLY_FOLDED;
        /* what the refold will set; the rest of the state waits for it */
        after->version++;
        if (ev->at < after->created)
            after->created = ev->at;
        return DF_APPLY_WAITS;
    }
    if (refold_waits || (late && !df_fold_late(after, ev)))
        return DF_APPLY_REFOLD;
    if (!late)
        df_fold_apply(after, ev, pl);
    return DF_APPLY_FOLDED;
}

bool df_apply_pipeline_admitted(const df_pipelines *pl, const df_event *ev, df_error *err)
{
    if (ev->has_expect) {
        df_fail(err, DF_EBAD_REQUEST, "`expect` applies to deal events, not to pipeline events");
        return false;
    }
    if (!df_pipelines_find(pl, ev->pipeline.ptr, ev->pipeline.len) &&
        pl->count >= DF_MAX_PIPELINES) {
        df_fail(err, DF_EBAD_REQUEST, "at most %d pipelines can be defined", DF_MAX_PIPELINES);
        return false;
    }
    return true;
}

void df_apply_keep_stage_as_moved(const df_deal *before, df_deal *after)
{
    if (before->has_stage && after->has_stage && before->stage_since == after->stage_since &&
        df_name_same(&before->stage, &after->stage) &&
        df_name_same(&before->pipeline, &after->pipeline)) {
        after->stage_outcome = before->stage_outcome;
        after->stage_probability = before->stage_probability;
    }
}

bool df_apply_moved(const df_deal *before, const df_deal *after)
{
    if (!after->has_stage)
        return false;
    return !before || !before->has_stage || !df_name_same(&before->stage, &after->stage);
}

void df_apply_move(const df_pipelines *pl, const df_deal *before, const df_deal *after, df_move *m)
{
    int probability, rot_days;
    df_str pipeline = df_deal_pipeline(after);
    m->at = after->stage_since;
    m->deal = after->deal;
    df_name_set(&m->pipeline, pipeline.ptr, pipeline.len);
    m->has_from = before && before->has_stage;
    if (m->has_from)
        m->from = before->stage;
    m->to = after->stage;
    m->amount = after->amount;
    m->has_owner = after->has_owner;
    m->owner = after->owner;
    df_deal_stage_info(after, pl, &m->status, &probability, &rot_days);
}

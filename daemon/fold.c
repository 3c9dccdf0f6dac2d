/* fold.c: pipelines, and folding a deal's events into its state as of a given moment. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fold.h"

/* Times come from the network, so differences and sums saturate instead of
 * overflowing. */
static int64_t saturating_sub(int64_t a, int64_t b)
{
    if (b < 0 && a > INT64_MAX + b)
        return INT64_MAX;
    if (b > 0 && a < INT64_MIN + b)
        return INT64_MIN;
    return a - b;
}

static int64_t saturating_add(int64_t a, int64_t b)
{
    if (b > 0 && a > INT64_MAX - b)
        return INT64_MAX;
    if (b < 0 && a < INT64_MIN - b)
        return INT64_MIN;
    return a + b;
}

bool df_name_eq(const df_name *n, const char *s, size_t len)
{
    return n->len == len && (len == 0 || memcmp(n->s, s, len) == 0);
}

bool df_name_same(const df_name *a, const df_name *b)
{
    return df_name_eq(a, b->s, b->len);
}

bool df_str_same(df_str a, df_str b)
{
    return a.len == b.len && (a.len == 0 || memcmp(a.ptr, b.ptr, a.len) == 0);
}

df_str df_deal_pipeline(const df_deal *d)
{
    if (d->pipeline.len == 0)
        return (df_str){DF_DEFAULT_PIPELINE, sizeof DF_DEFAULT_PIPELINE - 1};
    return (df_str){d->pipeline.s, d->pipeline.len};
}

int64_t df_deal_idle_since(const df_deal *d)
{
    if (d->has_stage && d->has_activity)
        return d->stage_since > d->last_activity ? d->stage_since : d->last_activity;
    if (d->has_stage)
        return d->stage_since;
    if (d->has_activity)
        return d->last_activity;
    return d->created;
}

void df_name_set(df_name *n, const char *s, size_t len)
{
    if (len > DF_MAX_NAME)
        len = DF_MAX_NAME;
    if (len > 0)
        memcpy(n->s, s, len);
    n->len = (uint8_t)len;
}

static void text_set(df_text *t, const char *s, size_t len)
{
    if (len > DF_MAX_TEXT)
        len = DF_MAX_TEXT;
    if (len > 0)
        memcpy(t->s, s, len);
    t->len = (uint8_t)len;
}

static void stage_def_set(df_stage_def *def, const char *name, int probability, int rot_days,
                          int outcome)
{
    df_name_set(&def->name, name, strlen(name));
    def->probability = probability;
    def->rot_days = rot_days;
    def->outcome = outcome;
}

void df_pipelines_init(df_pipelines *pl)
{
    df_pipeline *p = &pl->items[0];
    pl->count = 1;
    df_name_set(&p->name, DF_DEFAULT_PIPELINE, strlen(DF_DEFAULT_PIPELINE));
    stage_def_set(&p->stages[0], "lead", 10, -1, DF_OPEN);
    stage_def_set(&p->stages[1], "qualified", 20, -1, DF_OPEN);
    stage_def_set(&p->stages[2], "meeting", 40, -1, DF_OPEN);
    stage_def_set(&p->stages[3], "proposal", 60, -1, DF_OPEN);
    stage_def_set(&p->stages[4], "negotiation", 80, -1, DF_OPEN);
    stage_def_set(&p->stages[5], "won", 100, -1, DF_WON);
    stage_def_set(&p->stages[6], "lost", 0, -1, DF_LOST);
    p->nstages = 7;
}

const df_pipeline *df_pipelines_find(const df_pipelines *pl, const char *name, size_t len)
{
    for (int i = 0; i < pl->count; i++) {
        if (df_name_eq(&pl->items[i].name, name, len))
            return &pl->items[i];
    }
    return NULL;
}

const df_stage_def *df_pipeline_stage(const df_pipeline *p, const char *name, size_t len,
                                      int *index)
{
    for (int i = 0; i < p->nstages; i++) {
        if (df_name_eq(&p->stages[i].name, name, len)) {
            if (index)
                *index = i;
            return &p->stages[i];
        }
    }
    return NULL;
}

int df_pipelines_apply(df_pipelines *pl, const df_event *ev, df_error *err)
{
    if (ev->pipeline.len == 0)
        return df_fail(err, DF_EBAD_REQUEST, "a pipeline event needs `pipeline`");
    df_pipeline *p = (df_pipeline *)df_pipelines_find(pl, ev->pipeline.ptr, ev->pipeline.len);
    if (!p) {
        if (pl->count >= DF_MAX_PIPELINES)
            return df_fail(err, DF_EBAD_REQUEST, "at most %d pipelines can be defined",
                           DF_MAX_PIPELINES);
        p = &pl->items[pl->count++];
        df_name_set(&p->name, ev->pipeline.ptr, ev->pipeline.len);
    }
    int nstages = ev->nstages;
    if (nstages < 0)
        nstages = 0;
    if (nstages > DF_MAX_STAGES)
        nstages = DF_MAX_STAGES;
    for (int i = 0; i < nstages; i++) {
        const df_stage_spec *spec = &ev->stages[i];
        df_stage_def *def = &p->stages[i];
        df_name_set(&def->name, spec->name.ptr, spec->name.len);
        def->probability = spec->probability;
        def->rot_days = spec->rot_days < 0 ? -1 : spec->rot_days;
        def->outcome = spec->outcome;
    }
    p->nstages = nstages;
    return 0;
}

/* The pipeline a deal is in: its own, `default` when none was named. */
static const df_pipeline *find_deal_pipeline(const df_pipelines *pl, const df_name *name)
{
    if (name && name->len > 0)
        return df_pipelines_find(pl, name->s, name->len);
    return df_pipelines_find(pl, DF_DEFAULT_PIPELINE, strlen(DF_DEFAULT_PIPELINE));
}

int df_check_event(const df_pipelines *pl, const df_name *deal_pipeline, const df_event *ev,
                   df_error *err)
{
    if (ev->type == DF_EV_PIPELINE)
        return 0;
    const df_pipeline *p;
    if (ev->pipeline.len > 0) {
        p = df_pipelines_find(pl, ev->pipeline.ptr, ev->pipeline.len);
        if (!p)
            return df_fail(err, DF_EUNKNOWN_PIPELINE, "pipeline `%.*s` is not defined",
                           (int)ev->pipeline.len, ev->pipeline.ptr);
    } else {
        p = find_deal_pipeline(pl, deal_pipeline);
    }
    if (ev->type != DF_EV_STAGE)
        return 0;
    if (p && df_pipeline_stage(p, ev->stage.ptr, ev->stage.len, NULL))
        return 0;
    const char *pipeline_name = DF_DEFAULT_PIPELINE;
    int pipeline_len = (int)strlen(DF_DEFAULT_PIPELINE);
    if (ev->pipeline.len > 0) {
        pipeline_name = ev->pipeline.ptr;
        pipeline_len = (int)ev->pipeline.len;
    } else if (deal_pipeline && deal_pipeline->len > 0) {
        pipeline_name = deal_pipeline->s;
        pipeline_len = deal_pipeline->len;
    }
    return df_fail(err, DF_EUNKNOWN_STAGE, "stage `%.*s` is not in pipeline `%.*s`",
                   (int)ev->stage.len, ev->stage.ptr, pipeline_len, pipeline_name);
}

void df_deal_init(df_deal *d, const char *id, size_t len)
{
    /* stage_times past nstage_times is never read: leave it */
    memset(d, 0, offsetof(df_deal, stage_times));
    df_name_set(&d->deal, id, len);
    /* a value nothing has set yet is taken by any event, whatever its time */
    d->amount_pos.at = d->owner_pos.at = d->name_pos.at = d->product_pos.at = d->close_date_pos.at =
        d->source_pos.at = INT64_MIN;
}

void df_deal_copy(df_deal *dst, const df_deal *src)
{
    memcpy(dst, src, offsetof(df_deal, stage_times));
    memcpy(dst->stage_times, src->stage_times,
           (size_t)src->nstage_times * sizeof(src->stage_times[0]));
}

bool df_fold_in_order(const df_deal *d, const df_event *ev)
{
    if (d->version == 0)
        return true;
    return ev->at > d->last_at || (ev->at == d->last_at && ev->seq > d->last_seq);
}

/* Returns the entry for that stage, creating it when there is room; NULL
 * when a deal has already visited more distinct stages than the list holds. */
static df_stage_time *stage_time_entry(df_stage_time *times, int *count, const df_name *stage)
{
    for (int i = 0; i < *count; i++) {
        if (df_name_eq(&times[i].stage, stage->s, stage->len))
            return &times[i];
    }
    if (*count >= DF_MAX_STAGES)
        return NULL;
    df_stage_time *entry = &times[(*count)++];
    entry->stage = *stage;
    entry->ms = 0;
    return entry;
}

static void add_stage_time(df_stage_time *times, int *count, const df_name *stage, int64_t ms)
{
    df_stage_time *entry = stage_time_entry(times, count, stage);
    if (entry)
        entry->ms = saturating_add(entry->ms, ms);
}

/* Whether an event at pos that gives a value replaces the one set at *last;
 * when it does, pos becomes the value's position. */
static bool takes(df_presence set, df_pos pos, df_pos *last)
{
    if (set == DF_ABSENT)
        return false;
    if (pos.at < last->at || (pos.at == last->at && pos.seq < last->seq))
        return false;
    *last = pos;
    return true;
}

static void apply_amount(df_deal *d, df_presence set, df_num amount, df_pos pos)
{
    if (!takes(set, pos, &d->amount_pos))
        return;
    d->amount = set == DF_SET ? amount : (df_num){.kind = DF_NUM_NONE};
}

static void apply_owner(df_deal *d, df_presence set, df_str owner, df_pos pos)
{
    if (!takes(set, pos, &d->owner_pos))
        return;
    d->has_owner = set == DF_SET;
    if (set == DF_SET)
        df_name_set(&d->owner, owner.ptr, owner.len);
    else
        d->owner.len = 0;
}

static void apply_source(df_deal *d, df_presence set, df_str source, df_pos pos)
{
    if (!takes(set, pos, &d->source_pos))
        return;
    d->has_source = set == DF_SET;
    if (set == DF_SET)
        df_name_set(&d->source, source.ptr, source.len);
    else
        d->source.len = 0;
}

/* Keeps the first DF_MAX_REASON bytes of a reason, up to a NUL, without
 * cutting a UTF-8 character. */
static void set_reason(df_deal *d, df_str reason)
{
    size_t len = reason.len;
    const char *nul = len ? memchr(reason.ptr, 0, len) : NULL;
    if (nul)
        len = (size_t)(nul - reason.ptr);
    if (len > DF_MAX_REASON) {
        len = DF_MAX_REASON;
        while (len > 0 && ((uint8_t)reason.ptr[len] & 0xC0) == 0x80)
            len--;
    }
    d->has_reason = len > 0;
    df_name_set(&d->reason, reason.ptr, len);
}

static void apply_text(bool *has, df_text *text, df_presence set, df_str value, df_pos pos,
                       df_pos *last)
{
    if (!takes(set, pos, last))
        return;
    *has = set == DF_SET;
    if (set == DF_SET)
        text_set(text, value.ptr, value.len);
    else
        text->len = 0;
}

static void apply_update(df_deal *d, const df_event *ev, df_pos pos)
{
    apply_amount(d, ev->amount_set, ev->amount, pos);
    apply_owner(d, ev->owner_set, ev->owner, pos);
    apply_text(&d->has_name, &d->name, ev->name_set, ev->name, pos, &d->name_pos);
    apply_text(&d->has_product, &d->product, ev->product_set, ev->product, pos, &d->product_pos);
    apply_source(d, ev->source_set, ev->source, pos);
    if (takes(ev->close_date_set, pos, &d->close_date_pos)) {
        if (ev->close_date_set == DF_SET && d->has_close_date && ev->close_date > d->close_date &&
            d->pushes < UINT32_MAX)
            d->pushes++;
        d->has_close_date = ev->close_date_set == DF_SET;
        d->close_date = d->has_close_date ? ev->close_date : 0;
    }
}

static void apply_activity(df_deal *d, const df_event *ev)
{
    d->activities++;
    if (!d->has_activity || ev->at > d->last_activity)
        d->last_activity = ev->at;
    d->has_activity = true;
}

/* Counts a move as a regression or a reopening. Positions are those of the
 * pipeline as it is when the move is folded; a move between pipelines is
 * neither. */
static void count_backward_move(df_deal *d, const df_pipeline *p, bool same_pipeline, int to_index,
                                int to_outcome)
{
    if (!d->has_stage || to_outcome != DF_OPEN)
        return;
    if (d->stage_outcome != DF_OPEN) {
        if (d->reopened < UINT32_MAX)
            d->reopened++;
        return;
    }
    int from_index = -1;
    if (p && same_pipeline && to_index >= 0 &&
        df_pipeline_stage(p, d->stage.s, d->stage.len, &from_index) && to_index < from_index &&
        d->regressions < UINT32_MAX)
        d->regressions++;
}

static void apply_stage(df_deal *d, const df_event *ev, const df_pipelines *pl, bool same_pipeline)
{
    if (d->has_stage && df_name_eq(&d->stage, ev->stage.ptr, ev->stage.len)) {
        if (ev->reason.len > 0)
            set_reason(d, ev->reason);
        return;
    }
    /* The log is never refused once recorded: a stage its pipeline no longer
     * has still moves the deal, as an open stage with probability 0. */
    const df_pipeline *p = find_deal_pipeline(pl, &d->pipeline);
    int to_index = -1;
    const df_stage_def *def =
        p ? df_pipeline_stage(p, ev->stage.ptr, ev->stage.len, &to_index) : NULL;
    int outcome = def ? def->outcome : DF_OPEN;
    count_backward_move(d, p, same_pipeline, def ? to_index : -1, outcome);
    if (d->has_stage)
        add_stage_time(d->stage_times, &d->nstage_times, &d->stage,
                       saturating_sub(ev->at, d->stage_since));
    if (d->has_stage && d->stage_outcome == DF_OPEN) {
        d->has_last_open = true;
        d->last_open = d->stage;
    }
    d->has_reason = false;
    d->reason.len = 0;
    set_reason(d, ev->reason);
    d->has_stage = true;
    df_name_set(&d->stage, ev->stage.ptr, ev->stage.len);
    d->stage_since = ev->at;
    d->stage_outcome = outcome;
    d->stage_probability = def ? def->probability : 0;
}

void df_fold_apply(df_deal *d, const df_event *ev, const df_pipelines *pl)
{
    if (d->version == 0 || ev->at < d->created)
        d->created = ev->at;
    d->version++;
    d->last_at = ev->at;
    d->last_seq = ev->seq;
    bool same_pipeline = true;
    if (ev->type != DF_EV_PIPELINE && ev->pipeline.len > 0) {
        same_pipeline = df_str_same(df_deal_pipeline(d), ev->pipeline);
        df_name_set(&d->pipeline, ev->pipeline.ptr, ev->pipeline.len);
    }

    df_pos pos = {ev->at, ev->seq};
    switch (ev->type) {
    case DF_EV_STAGE:
        apply_stage(d, ev, pl, same_pipeline);
        apply_amount(d, ev->amount_set, ev->amount, pos);
        apply_owner(d, ev->owner_set, ev->owner, pos);
        apply_source(d, ev->source_set, ev->source, pos);
        break;
    case DF_EV_ACTIVITY:
        apply_activity(d, ev);
        break;
    case DF_EV_UPDATE:
        apply_update(d, ev, pos);
        break;
    case DF_EV_PIPELINE:
    case DF_EV_REDACTION:
        break;
    }
}

bool df_fold_late(df_deal *d, const df_event *ev)
{
    /* how many times close_date was pushed depends on the order of its values */
    if (d->version == 0 || ev->type == DF_EV_STAGE || ev->type == DF_EV_PIPELINE ||
        ev->pipeline.len > 0 || ev->close_date_set != DF_ABSENT)
        return false;
    if (ev->at < d->created)
        d->created = ev->at;
    d->version++;
    if (ev->type == DF_EV_ACTIVITY)
        apply_activity(d, ev);
    else
        apply_update(d, ev, (df_pos){ev->at, ev->seq});
    return true;
}

static int compare_events(const void *a, const void *b)
{
    const df_event *x = a, *y = b;
    if (x->at != y->at)
        return x->at < y->at ? -1 : 1;
    if (x->seq != y->seq)
        return x->seq < y->seq ? -1 : 1;
    return 0;
}

void df_fold_sort(df_event *events, size_t count)
{
    if (count > 1)
        qsort(events, count, sizeof *events, compare_events);
}

void df_deal_stage_info(const df_deal *d, const df_pipelines *pl, int *outcome, int *probability,
                        int *rot_days)
{
    int stage_outcome = DF_OPEN, stage_probability = 0, stage_rot_days = -1;
    if (d->has_stage) {
        const df_pipeline *p = find_deal_pipeline(pl, &d->pipeline);
        const df_stage_def *def = p ? df_pipeline_stage(p, d->stage.s, d->stage.len, NULL) : NULL;
        if (def) {
            stage_outcome = def->outcome;
            stage_probability = def->probability;
            stage_rot_days = def->rot_days;
        } else {
            stage_outcome = d->stage_outcome;
            stage_probability = d->stage_probability;
        }
    }
    if (outcome)
        *outcome = stage_outcome;
    if (probability)
        *probability = stage_probability;
    if (rot_days)
        *rot_days = stage_rot_days;
}

int64_t df_days_between(int64_t since, int64_t now)
{
    int64_t elapsed = saturating_sub(now, since);
    /* floor division of a negative span is negative, which clamps to 0 */
    return elapsed <= 0 ? 0 : elapsed / DF_DAY_MS;
}

void df_deal_view_at(const df_deal *d, int64_t now, const df_pipelines *pl, df_deal_view *out)
{
    memset(out, 0, sizeof *out);
    df_deal_stage_info(d, pl, &out->status, &out->probability, &out->rot_days);

    out->has_days_in_stage = d->has_stage;
    if (d->has_stage)
        out->days_in_stage = df_days_between(d->stage_since, now);
    out->has_days_since_activity = d->has_activity;
    if (d->has_activity)
        out->days_since_activity = df_days_between(d->last_activity, now);

    out->idle_since = df_deal_idle_since(d);

    out->stale = d->has_stage && out->status == DF_OPEN && out->rot_days >= 0 &&
                 saturating_sub(now, out->idle_since) >= (int64_t)out->rot_days * DF_DAY_MS;

    out->nstage_times = d->nstage_times;
    memcpy(out->stage_times, d->stage_times, sizeof out->stage_times);
    if (d->has_stage) {
        int64_t current_visit = saturating_sub(now, d->stage_since);
        add_stage_time(out->stage_times, &out->nstage_times, &d->stage,
                       current_visit < 0 ? 0 : current_visit);
    }
}

/* fold.h: the pure core of dealflow: pipelines, folding a deal's events into
 * its state, and what that state means at a given moment (days in stage,
 * staleness, time in stage). No I/O, no allocation. */
#ifndef DF_FOLD_H
#define DF_FOLD_H

#include <stdbool.h>
#include <stdint.h>

#include "codec.h"

/* A bounded string owned by a struct (not NUL-terminated; len 0 = empty). */
typedef struct df_name {
    uint8_t len;
    char s[DF_MAX_NAME];
} df_name;

typedef struct df_text {
    uint8_t len;
    char s[DF_MAX_TEXT];
} df_text;

/* Names are equal when their bytes are: the one comparison of names. */
bool df_name_eq(const df_name *n, const char *s, size_t len);
bool df_name_same(const df_name *a, const df_name *b);
bool df_str_same(df_str a, df_str b);
void df_name_set(df_name *n, const char *s, size_t len); /* truncates at DF_MAX_NAME */

/* A loss reason is counted by its first bytes (up to a NUL, cut at a
 * character boundary): it is part of aggregate row keys (metrics.h). */
#define DF_MAX_REASON 100

typedef struct df_stage_def {
    df_name name;
    int probability; /* 0..100 */
    int rot_days;    /* -1: never rots */
    int outcome;     /* df_outcome */
} df_stage_def;

typedef struct df_pipeline {
    df_name name;
    int nstages;
    df_stage_def stages[DF_MAX_STAGES];
} df_pipeline;

#define DF_MAX_PIPELINES 256

/* The pipeline of a deal or stage event that names none. */
#define DF_DEFAULT_PIPELINE "default"

/* Every pipeline the store knows, in the order they were first defined. */
typedef struct df_pipelines {
    int count;
    df_pipeline items[DF_MAX_PIPELINES];
} df_pipelines;

/* Fills pl with the built-in pipeline `default`: lead 10, qualified 20,
 * meeting 40, proposal 60, negotiation 80, won 100 (won), lost 0 (lost). */
void df_pipelines_init(df_pipelines *pl);

/* Returns the pipeline with that name, or NULL. */
const df_pipeline *df_pipelines_find(const df_pipelines *pl, const char *name, size_t len);

/* Returns the stage of p with that name, or NULL; *index gets its position
 * in pipeline order when index is not NULL. */
const df_stage_def *df_pipeline_stage(const df_pipeline *p, const char *name, size_t len,
                                      int *index);

/* Defines or replaces the pipeline a `pipeline` event names. Returns 0, or
 * DF_EBAD_REQUEST when DF_MAX_PIPELINES are already defined. */
int df_pipelines_apply(df_pipelines *pl, const df_event *ev, df_error *err);

/* The stage and pipeline a stage event moves its deal to, given the deal's
 * pipeline when it arrives (NULL for a new deal): the pipeline the event
 * names, else the deal's, else `default`. Returns 0, DF_EUNKNOWN_PIPELINE or
 * DF_EUNKNOWN_STAGE with a message. */
int df_check_event(const df_pipelines *pl, const df_name *deal_pipeline, const df_event *ev,
                   df_error *err);

/* Where an event stands in a deal's fold order. */
typedef struct df_pos {
    int64_t at;
    uint64_t seq;
} df_pos;

typedef struct df_stage_time {
    df_name stage;
    int64_t ms;
} df_stage_time;

/* A deal: the fold of its recorded events in (at, seq) order. */
typedef struct df_deal {
    df_name deal;
    df_name pipeline; /* empty: `default` */
    bool has_stage;
    df_name stage;
    int64_t stage_since;
    int stage_outcome;     /* outcome of the stage when the deal moved there */
    int stage_probability; /* probability of the stage when the deal moved there */
    bool has_activity;
    int64_t last_activity;
    int64_t created;
    df_num amount;
    bool has_owner;
    df_name owner;
    bool has_name;
    df_text name;
    bool has_product;
    df_text product;
    bool has_close_date;
    int64_t close_date;
    uint64_t activities;
    uint64_t version;
    uint32_t regressions; /* moves to an earlier open stage of the same pipeline */
    uint32_t reopened;    /* moves from a won or lost stage to an open one */
    uint32_t pushes;      /* times close_date was moved later */
    /* where the fold stands: an event after (last_at, last_seq) can be applied */
    int64_t last_at;
    uint64_t last_seq;
    /* the events that last set each value, so that a late event changes a
     * value only when it comes after them */
    df_pos amount_pos, owner_pos, name_pos, product_pos, close_date_pos;
    bool has_source;
    df_name source;
    df_pos source_pos;
    /* the open stage the deal was in last before its current stage, as its
     * outcome was when the deal moved there: where a lost deal was lost from */
    bool has_last_open;
    df_name last_open;
    /* `reason` of the stage event that moved the deal into its current stage,
     * or of a later one naming that stage again; at most DF_MAX_REASON bytes */
    bool has_reason;
    df_name reason;
    /* ms spent in each stage over finished visits; the current visit is not in it */
    int nstage_times;
    df_stage_time stage_times[DF_MAX_STAGES];
} df_deal;

/* The pipeline a deal is in: its own, else DF_DEFAULT_PIPELINE. */
df_str df_deal_pipeline(const df_deal *d);

/* Since when a deal is idle: the later of its move into its stage and its
 * last activity; a deal with neither, since it was created. */
int64_t df_deal_idle_since(const df_deal *d);

/* Starts an empty deal (version 0) with that id. */
void df_deal_init(df_deal *d, const char *id, size_t len);

/* Copies a deal, without the unused part of its stage_times. */
void df_deal_copy(df_deal *dst, const df_deal *src);

/* True when ev comes after every event folded into d in (at, seq) order, so
 * that df_fold_apply can take it; false means the deal must be refolded. */
bool df_fold_in_order(const df_deal *d, const df_event *ev);

/* Folds one event into d; ev must come after every event already folded
 * in (at, seq) order. Stage events whose stage is unknown to pl still move
 * the deal (probability 0, outcome open): the log is never refused after
 * it was recorded. */
void df_fold_apply(df_deal *d, const df_event *ev, const df_pipelines *pl);

/* Folds an event that comes before some already folded, when its place in
 * the order does not matter (an activity, an update: counts, extremes, and
 * values it set later than anything else did). Returns false, changing
 * nothing, for a stage event or one naming a pipeline: those need a refold. */
bool df_fold_late(df_deal *d, const df_event *ev);

/* Sorts events by (at, seq). */
void df_fold_sort(df_event *events, size_t count);

/* What a deal looks like at `now`. */
typedef struct df_deal_view {
    int status; /* df_outcome of the current stage */
    int probability;
    bool has_days_in_stage;
    int64_t days_in_stage;
    bool has_days_since_activity;
    int64_t days_since_activity;
    bool stale;
    int rot_days;       /* -1 when the current stage never rots */
    int64_t idle_since; /* max(stage_since, last_activity), else created */
    int nstage_times;
    df_stage_time stage_times[DF_MAX_STAGES]; /* current visit counted up to now */
} df_deal_view;

/* The outcome and probability of d's current stage: from its pipeline in pl
 * when the stage still exists there, else as they were when it moved. */
void df_deal_stage_info(const df_deal *d, const df_pipelines *pl, int *outcome, int *probability,
                        int *rot_days);

void df_deal_view_at(const df_deal *d, int64_t now, const df_pipelines *pl, df_deal_view *out);

/* floor((now - since) / day), never below 0. */
int64_t df_days_between(int64_t since, int64_t now);

#endif

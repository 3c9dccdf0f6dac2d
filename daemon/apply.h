/* apply.h: what becomes of a decoded event: whether it is admitted, and how
 * it changes its deal (folded now, folded by the refold at the end of the
 * batch, or refolded now), and whether it moved the deal. Pure: the caller
 * loads the deal, records the event and runs the refold (refold.h). */
#ifndef DF_APPLY_H
#define DF_APPLY_H

#include <stdbool.h>

#include "fold.h"
#include "move.h"

typedef enum df_apply_result {
    DF_APPLY_REFUSED, /* err says why; nothing is recorded */
    DF_APPLY_FOLDED,  /* *after is the deal with the event folded in */
    DF_APPLY_WAITS,   /* late: a refold at the end of the batch folds it; *after
                         has the version and created that refold gives */
    DF_APPLY_REFOLD,  /* the deal must be refolded now (with every event of it) */
} df_apply_result;

/* Decides what the deal event ev does to its deal, whose state before it is
 * *before (NULL: a deal with no event yet), given whether a refold already
 * waits for the deal at the end of the batch. ev must carry its seq and at
 * as they will be recorded. Fills *after, but for DF_APPLY_REFUSED (whose
 * code and message go to err); for DF_APPLY_REFOLD it is the deal before,
 * whose id the refold starts from. */
df_apply_result df_apply(const df_pipelines *pl, const df_deal *before, bool refold_waits,
                         const df_event *ev, df_deal *after, df_error *err);

/* df_apply for a recorded event, which is folded whatever it is (the log is
 * never refused after it was recorded): never DF_APPLY_REFUSED. */
df_apply_result df_apply_fold(const df_pipelines *pl, const df_deal *before, bool refold_waits,
                              const df_event *ev, df_deal *after);

/* Whether a pipeline event can be recorded: it takes no `expect`, and
 * defines a new pipeline only while fewer than DF_MAX_PIPELINES are. */
bool df_apply_pipeline_admitted(const df_pipelines *pl, const df_event *ev, df_error *err);

/* A refold folds every event with today's pipelines. While the deal stays
 * in the same visit of the same stage, what that stage was when the deal
 * moved there (its outcome and probability, which matter once a `pipeline`
 * event removed it) is kept from *before. */
void df_apply_keep_stage_as_moved(const df_deal *before, df_deal *after);

/* Whether the deal moved from *before (NULL: new) to *after: it has a stage
 * now, and had none or another. */
bool df_apply_moved(const df_deal *before, const df_deal *after);

/* Fills the deal.moved notification of that move, all but seq and prev. */
void df_apply_move(const df_pipelines *pl, const df_deal *before, const df_deal *after, df_move *m);

#endif

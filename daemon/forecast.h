/* forecast.h: the arithmetic of `forecast`, `calibration` and the periods of
 * a metrics series, with no I/O: the calendar periods, what one deal adds to
 * the rows behind forecast and calibration, and the figures read back.
 *
 * Rows, under the same pipeline and scope prefix as metrics.h's:
 *   K day stage NUL outcome     open deals by the day of their close_date, full sums
 *   L at stage NUL outcome      the same by the exact close_date
 *   R day outcome stage NUL     closed deals by the day they closed, one row
 *                               per stage they have been in, count only
 *   Q at outcome name NUL ...   the same by the exact time they closed: the
 *                               stages they have been in, as many to a row
 *                               as fit in a key, count only
 * `outcome` is the stage's outcome when the deal moved there: K and L rows
 * are of deals whose stage was open then (or that have no stage), R and Q
 * rows of deals whose stage was won or lost. Weighted figures apply the
 * probability the stage has when they are read, as the board does. Open
 * deals without a close_date add no row (most deals have none, and a row
 * each would be kept for nothing): they are the open deals of the C rows
 * (metrics.h) less those of every K row. */
#ifndef DF_FORECAST_H
#define DF_FORECAST_H

#include <stdbool.h>
#include <stdint.h>

#include "metrics.h"

/* Periods a forecast or a metrics series may have. */
#define DF_MAX_PERIODS 120

typedef enum df_period_kind {
    DF_PERIOD_WEEK,    /* ISO weeks: Monday 00:00 UTC to the next Monday */
    DF_PERIOD_MONTH,   /* calendar months, UTC */
    DF_PERIOD_QUARTER, /* January, April, July and October to the next, UTC */
} df_period_kind;

/* Reads "week", "month" or "quarter". */
bool df_period_parse(const char *s, size_t len, df_period_kind *out);
/* The first ms of the period t falls in, and of the period after the one
 * starting at start (saturating at the ends of time). */
int64_t df_period_start(df_period_kind by, int64_t t);
int64_t df_period_next(df_period_kind by, int64_t start);

typedef struct df_period {
    int64_t start, end; /* [start, end): the calendar period cut to the window */
} df_period;

/* The calendar periods that overlap [from, to), each cut to it, into out
 * (max entries). Returns how many, or -1 when there would be more than max. */
int df_periods_make(df_period_kind by, int64_t from, int64_t to, df_period *out, int max);

/* The K, L, R and Q rows deal d adds under prefix (visited: the stages it
 * has been in, sorted as for V rows), times sign. */
void df_forecast_contribute(const df_deal *d, const df_key *prefix, const df_name *const *visited,
                            int nvisited, int sign, df_row_each add, void *ctx);
/* Whether two states of a deal add the same K, L, R and Q rows, given that
 * they add the same metrics rows. */
bool df_forecast_same(const df_deal *a, const df_deal *b);

/* ---- forecast figures ---- */

typedef struct df_forecast_cell {
    df_sums sums;
    double weighted;
} df_forecast_cell;

/* The open deals without a close_date: by stage, those of the C rows and
 * those of the K rows (or L rows) of every day. */
typedef struct df_no_date {
    int n;
    struct {
        df_name stage; /* empty: no stage */
        df_sums all, dated;
    } rows[2 * DF_MAX_STAGES + 1];
} df_no_date;

typedef struct df_forecast {
    const df_pipeline *pipeline;
    int nperiods;
    df_period periods[DF_MAX_PERIODS];
    df_forecast_cell open[DF_MAX_PERIODS]; /* open deals closing in each period */
    df_sums won[DF_MAX_PERIODS];           /* deals won in each period */
    df_forecast_cell overdue, no_date;
    df_no_date no_date_rows; /* room for computing no_date */
} df_forecast;

/* Adds a K or L row (key at the kind byte) to cell when its deals are open
 * as the pipeline now defines their stage. Returns false when malformed. */
bool df_forecast_add_open(const df_pipeline *p, df_forecast_cell *cell, const uint8_t *key,
                          size_t len, const df_sums *s);
/* Whether a C row (key at the kind byte) is of won deals as the pipeline
 * now defines their stage: then its stage, outcome when moved and day. */
bool df_forecast_won_row(const df_pipeline *p, const uint8_t *key, size_t len, size_t *head_len,
                         int *moved_outcome, int64_t *day);
/* The period whose window holds t, or -1. */
int df_forecast_period_of(const df_forecast *fc, int64_t t);

/* Adds a C row, or a K or L row (keys at the kind byte), of deals open as the
 * pipeline now defines their stage and open when they moved there. Return
 * false when malformed. */
bool df_no_date_add_current(const df_pipeline *p, df_no_date *nd, const uint8_t *key, size_t len,
                            const df_sums *s);
bool df_no_date_add_dated(const df_pipeline *p, df_no_date *nd, const uint8_t *key, size_t len,
                          const df_sums *s);
/* The open deals of the C rows less the dated ones, weighted as K rows are. */
void df_no_date_result(const df_pipeline *p, const df_no_date *nd, df_forecast_cell *out);

/* ---- calibration figures ---- */

typedef struct df_calibration {
    const df_pipeline *pipeline;
    uint64_t reached[DF_MAX_STAGES]; /* closed deals that have been in each stage */
    uint64_t won[DF_MAX_STAGES];     /* of them, those won */
} df_calibration;

/* Adds an R or Q row (key at the kind byte). Returns false when malformed. */
bool df_calibration_add_row(df_calibration *c, const uint8_t *key, size_t len, const df_sums *s);

#endif

/* metrics.h: the arithmetic of pipeline figures, with no I/O: what one deal
 * adds to the aggregates behind `board` and `metrics`, and the figures
 * computed back from those aggregates.
 *
 * Aggregates are sums of per-deal contributions. When a deal changes, what
 * its old state added is taken away and what its new state adds is added, so
 * late events, regressions and reopenings are exact by construction. A
 * contribution does not depend on pipeline definitions (it keeps stage names
 * and what the stage was when the deal moved), so a `pipeline` event that
 * replaces stages never needs the aggregates rebuilt: the figures apply the
 * definitions when they are computed.
 *
 * Rows are keyed pipeline NUL, scope (`A` for every deal, `O` owner NUL for
 * one owner's, `P` product NUL for one product's, `S` source NUL for one
 * source's), then a kind:
 *   C stage NUL outcome day     deals now in a stage, by the day they moved there
 *   E stage NUL outcome at      closed deals, by the exact time they closed
 *   T stage                     deals that have been in a stage, and their finished visits
 *   V name NUL name NUL ...     deals by the set of stages they have been in
 *   I stage NUL day             (scope A only) deals in a stage, by the day they went idle
 *   N day                       deals by the day they were created
 *   M at                        deals by the exact time they were created
 *   F day from NUL reason NUL   lost deals, by the day they were lost, the open stage
 *                               they were lost from and the reason (both may be empty)
 *   G at from NUL reason NUL    the same by the exact time they were lost
 * `outcome` is the stage's outcome when the deal moved there; F and G rows
 * are of deals whose stage was lost when they moved there. Whole days of a
 * window read the day rows (C, N, F), the days it cuts the exact ones (E, M,
 * G). N, M, F and G rows hold a count only.
 *
 * Rows are rolled up so that a span of time reads few of them. Each kind
 * keyed by day (C, I, N, F, and forecast.h's K and R) has month rows, and
 * each kind keyed by an exact time (E, M, G, and forecast.h's L and Q) hour
 * rows, under its letter in lower case (c, i, n, f, k, r; e, m, g, l, q):
 * the sum of its rows of one UTC calendar month, or of one hour, keyed as
 * the row of the first day or ms of it. Owners' scopes have no hour rows:
 * there are many owners, each with a small share of the deals, so a day of
 * one owner's exact rows is short to read, and hour rows of every owner
 * would cost more bytes (about 13 per event in the bench) than they save
 * time. A flush writes them with the rows
 * (deltas.c), so that reads take the whole months of a span from month
 * rows, its other days from day rows, the whole hours of the days it cuts
 * from hour rows, and only the hours it cuts from exact rows: a figure reads
 * a few rows per month of history, not per day, nor per deal.
 * A deal has a P scope only when its product is at most DF_MAX_NAME bytes
 * without NUL, so that keys stay within a store key. */
#ifndef DF_METRICS_H
#define DF_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "calendar.h"
#include "fold.h"
#include "keys.h"

/* Times in sums are kept relative to 2020-01-01, far from overflow. */
#define DF_AGG_EPOCH 1577836800000LL

/* A sum of integers wide enough that no store's deals can overflow it. A
 * store is one memory map, so it holds fewer than 2^63 deals; per deal an
 * amount is at most DF_AMOUNT_MAX (2^53) in magnitude, amount x probability
 * 2^60, a time or a difference of two times less than 2^64, and the sums stay
 * below 2^127. Adding wraps (modulo 2^128) rather than overflows, so that a
 * damaged stored row cannot make it undefined. */
typedef __int128 df_wide;

typedef struct df_sums {
    int64_t count;
    df_wide amount_int;   /* amounts given as integers */
    double amount_float;  /* amounts given as floats */
    int64_t float_count;  /* deals whose amount is a float */
    df_wide weighted_int; /* integer amounts x probability when the deal moved */
    double weighted_float;
    df_wide since_sum; /* stage_since - DF_AGG_EPOCH */
    df_wide cycle_sum; /* stage_since - created */
    df_wide ms_sum;    /* T rows: ms of finished visits */
} df_sums;

/* Adds sign * add to *sum: the sums of deals. Once no deal with a float
 * amount is left in them, their float sums are set to 0, so that rounding
 * does not linger. */
void df_sums_add(df_sums *sum, const df_sums *add, int sign);
/* The same for changes of sums, which keep their float sums whatever
 * float_count comes to: a deal whose float amount changed while it stayed
 * in a row changes the row's float sums and not its float_count. */
void df_sums_add_change(df_sums *sum, const df_sums *add, int sign);
bool df_sums_zero(const df_sums *s);

enum { DF_AGG_KEY_MAX = 511 };
/* V keys hold a set of stage names and can be longer than a store key. */
enum { DF_AGG_LOGICAL_KEY_MAX = DF_KEY_MAX };

/* Called for a row; returns non-zero to stop. */
typedef int (*df_agg_each)(void *ctx, const uint8_t *key, size_t len, const df_sums *sums);

/* Calls add(ctx, key, len, sums) for every row deal d contributes to, with
 * the sums multiplied by sign (+1 to add it, -1 to take it away). */
typedef void (*df_row_each)(void *ctx, const uint8_t *key, size_t len, const df_sums *sums);
void df_deal_contribute(const df_deal *d, int sign, df_row_each add, void *ctx);

/* For the modules that add rows of their own kinds (forecast.c): a deal's
 * amount and amount x probability into s, and a row's sums handed to add,
 * taken away when sign is negative. */
void df_sums_set_amount(df_sums *s, const df_deal *d, int probability);
void df_row_emit(df_row_each add, void *ctx, const df_key *k, df_sums s, int sign);

/* Only the I row of a deal (df_deal_contribute adds it too). */
void df_deal_contribute_idle(const df_deal *d, int sign, df_row_each add, void *ctx);
/* Whether two states of a deal add the same rows but for the I row, and
 * whether they add the same I row: most changes are an activity, which
 * moves nothing else. */
bool df_contribution_same_but_idle(const df_deal *a, const df_deal *b);
bool df_same_idle(const df_deal *a, const df_deal *b);

/* The prefix of the rows of one pipeline's deals, of one owner's when
 * owner is not NULL (names of at most DF_MAX_NAME bytes: out holds
 * DF_AGG_KEY_MAX). Returns its length. */
size_t df_agg_prefix(uint8_t *out, df_str pipeline, const df_str *owner);

/* Which deals a figure covers: every deal of the pipeline, or one owner's,
 * product's or source's. */
typedef enum df_agg_scope {
    DF_SCOPE_ALL = 'A',
    DF_SCOPE_OWNER = 'O',
    DF_SCOPE_PRODUCT = 'P',
    DF_SCOPE_SOURCE = 'S',
} df_agg_scope;
/* The same for any scope (value is ignored for DF_SCOPE_ALL). */
size_t df_agg_scope_prefix(uint8_t *out, df_str pipeline, df_agg_scope scope, df_str value);
/* Whether a product can name a scope: at most DF_MAX_NAME bytes, no NUL. */
bool df_agg_product_scoped(const char *product, size_t len);

/* ---- how rows are stored ----
 * A row is stored under its key, except a V row: its names can be longer
 * than a store key, so it is stored under its head (up to and with the V)
 * and a hash of its names, and its value holds the names after the sums.
 * Another set of names with the same hash takes the next hash, up to
 * DF_AGG_PROBES of them; so that probing finds them, V rows are never
 * deleted (an emptied one stays, with count 0). */
enum { DF_AGG_PROBES = 64 };

typedef struct df_agg_slot {
    uint8_t key[DF_AGG_KEY_MAX];
    size_t len;
    const uint8_t *names; /* a V row's names (in the row's key), which its value
                             holds after the sums; NULL for other rows */
    size_t names_len;
} df_agg_slot;

/* Where the row of (key, len) is stored: at its probe-th hash for a V row,
 * other rows having only probe 0. False when the key is malformed or too
 * long to store. */
bool df_agg_slot_at(df_agg_slot *s, const uint8_t *key, size_t len, int probe);

/* The key a stored row has for df_figures_add_row's callers: the stored key,
 * or for a V row its head followed by names, the bytes its value holds after
 * the sums, written to buf (DF_AGG_LOGICAL_KEY_MAX bytes). Sets *row_len.
 * NULL when the row is not one to read: an emptied V row, or one whose names
 * do not fit. */
const uint8_t *df_agg_row_key(const uint8_t *key, size_t len, const df_sums *sums,
                              const uint8_t *names, size_t names_len, uint8_t *buf,
                              size_t *row_len);

/* The month row a day row adds to, or the hour row an exact row adds to
 * (the top comment): false when key is neither. */
bool df_agg_rollup_row(const uint8_t *key, size_t len, df_key *out);
/* Whether the rows of a scope have hour rows (the top comment). */
bool df_agg_scope_has_hours(df_agg_scope scope);
/* Whether a kind byte is of month or hour rows, and the kind they roll up. */
bool df_agg_rollup_kind(uint8_t kind);
uint8_t df_agg_rolled_kind(uint8_t rollup_kind);
/* The first ms of the hour t falls in (saturating at the start of time). */
int64_t df_hour_of(int64_t t);
#define DF_HOUR_MS 3600000LL

/* The first day of a day's UTC calendar month, and of the month after it
 * (days since 1970-01-01, calendar.h). */
int64_t df_month_first_day(int64_t day);
int64_t df_month_next_day(int64_t day);

/* The day a time falls on, and its first ms (saturating at the ends of time). */
int64_t df_day_of(int64_t t);
int64_t df_day_start(int64_t day);

/* ---- the figures ---- */

typedef struct df_stage_figures {
    df_name stage;
    bool removed;       /* deals still sit in it, but the pipeline no longer has it */
    int outcome;        /* now: the pipeline's, or what it was when the deals moved */
    int probability;    /* -1 for a removed stage */
    int rot_days;       /* -1: never rots */
    df_sums now_in;     /* deals now in the stage */
    double in_stage_ms; /* their (now - stage_since), never below 0 (see add_current) */
    double weighted;    /* sum of amount x probability / 100 */
    uint64_t stale;     /* filled by the caller from I rows and the idle index */
    uint64_t visited;   /* deals that have been in it */
    double visit_ms;    /* their time in it, current visits counted up to now */
    uint64_t reached;   /* deals that reached it, for conversion */
    uint64_t lost_from; /* lost deals whose last open stage was this one */
    df_sums won, lost;  /* closed in it within the window */
} df_stage_figures;

/* Distinct loss reasons a metrics reply names; losses of further reasons
 * count under DF_OTHER_REASONS. */
#define DF_MAX_LOSS_REASONS   256
#define DF_UNSPECIFIED_REASON "unspecified"
#define DF_OTHER_REASONS      "other"

typedef struct df_figures {
    const df_pipeline *pipeline;
    int64_t now;
    bool has_from, has_to;
    int64_t from, to; /* the window closed deals count in: [from, to) */
    int nstages;      /* the pipeline's stages, then up to as many other names
                         (removed stages, stages of other pipelines deals visited);
                         rows of further names are left out */
    df_stage_figures stages[2 * DF_MAX_STAGES];
    bool stale_unknown; /* stale counts are kept for every deal only */
    df_sums open;       /* open deals, those without a stage included */
    double open_weighted;
    df_sums won, lost; /* within the window */
    uint64_t created;  /* deals created within the window */
    int nreasons;      /* loss reasons within the window, in the order first read */
    struct {
        df_name reason; /* empty: unspecified */
        uint64_t count;
    } reasons[DF_MAX_LOSS_REASONS];
    uint64_t other_reasons; /* losses of further reasons */
} df_figures;

void df_figures_init(df_figures *f, const df_pipeline *p, int64_t now);

/* Adds one row under the prefix (key starts at the kind byte; a V row's key
 * holds its names). Returns false when the row is malformed. For a C
 * row of a closed stage whose day the window cuts, *needs_entries is set:
 * the caller then adds that day's E rows inside the window with
 * df_figures_add_closed, and the C row adds everything but the closed
 * counts. */
bool df_figures_add_row(df_figures *f, const uint8_t *key, size_t len, const df_sums *s,
                        bool *needs_entries);
/* Whether C rows of the days [first_day, end_day) may be added as one row
 * (their month row) with the first day's key: every one of them is before
 * now's day, and they are all inside the window or all outside it. */
bool df_figures_days_alike(const df_figures *f, int64_t first_day, int64_t end_day);
/* The window within one day, [*lo, *hi), for E rows. */
void df_figures_day_window(const df_figures *f, int64_t day, int64_t *lo, int64_t *hi);
/* Adds an E row the window holds. */
bool df_figures_add_closed(df_figures *f, const uint8_t *key, size_t len, const df_sums *s);
/* Adds a count-only row of the window (N or M: created deals; F or G: lost
 * deals by stage and reason), its key starting at the kind byte. The
 * caller reads the day rows of whole days and the exact rows of cut ones.
 * Returns false when the row is malformed. */
bool df_figures_add_windowed(df_figures *f, const uint8_t *key, size_t len, const df_sums *s);
/* Stage figures for a stage name, NULL when unknown. */
df_stage_figures *df_figures_stage(df_figures *f, const char *name, size_t len);

/* The metrics the contract defines, from the figures. A value is NAN when
 * it is nil. */
typedef struct df_conversion {
    int from, to; /* indexes in df_figures.stages */
    double rate;
} df_conversion;

typedef struct df_metrics {
    uint64_t won, lost;
    double win_rate, avg_cycle_days, velocity;
    uint64_t open;
    df_num open_amount;
    double weighted;
    df_num won_amount, lost_amount; /* within the window */
    double avg_won_amount;          /* NAN when no deal was won */
    uint64_t created;
    int nconversions;
    df_conversion conversions[DF_MAX_STAGES];
} df_metrics;

void df_metrics_compute(const df_figures *f, df_metrics *m);

/* Sum of amounts as the wire shows it: an int while every amount is one and
 * the sum fits in an int64, else a float. */
df_num df_sums_amount(const df_sums *s);

#endif

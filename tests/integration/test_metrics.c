/* test_metrics.c: `metrics` and `board` against tables worked out by hand: a
 * dozen deals with late events, a regression, a reopened deal, deals in a
 * removed stage, two owners and time windows. */
#include <math.h>
#include <stdarg.h>
#include <string.h>

#include "check.h"
#include "harness.h"

#define T0  IT_T0 /* not on a day boundary, so windows cut days */
#define DAY IT_DAY
#define NOW (T0 + 20 * DAY)

static it_daemon D;

/* Sends one stage event of deal `deal` at T0 + days. */
static void stage(const char *deal, const char *stage_name, double days, const char *extra)
{
    static int n;
    int64_t at = T0 + (int64_t)(days * DAY);
    CHECK(it_append(&D, "{id: 'm-%d', type: stage, deal: %s, stage: %s, at: %lld%s%s}", ++n, deal,
                    stage_name, (long long)at, extra ? ", " : "", extra ? extra : "") > 0);
}

/* The pipeline `sales` with its stages; v1 has `demo`, v2 does not. */
static void define_sales(int version)
{
    CHECK(it_append(&D,
                    "{id: 'sales-v%d', type: pipeline, pipeline: sales, stages: ["
                    "{name: new, probability: 10, rot_days: 3},"
                    "%s"
                    "{name: proposal, probability: 70},"
                    "{name: won, probability: 100, outcome: won},"
                    "{name: lost, probability: 0, outcome: lost}]}",
                    version,
                    version == 1 ? "{name: demo, probability: 40, rot_days: 5}," : "") > 0);
}

/* The dozen deals of the hand-computed tables (see the comments below). */
static void send_deals(void)
{
    define_sales(1);
    /* D1 al 100: new 0, demo 1d, proposal 3d, won 5d */
    stage("d1", "new", 0, "pipeline: sales, owner: al, amount: 100");
    stage("d1", "demo", 1, NULL);
    stage("d1", "proposal", 3, NULL);
    stage("d1", "won", 5, NULL);
    /* D2 al 200: new 0, lost 4d, then demo 2d arrives late */
    stage("d2", "new", 0, "pipeline: sales, owner: al, amount: 200");
    stage("d2", "lost", 4, "reason: budget");
    stage("d2", "demo", 2, NULL);
    /* D3 bo 300: new 1d, proposal 2d, won 6d */
    stage("d3", "new", 1, "pipeline: sales, owner: bo, amount: 300");
    stage("d3", "proposal", 2, NULL);
    stage("d3", "won", 6, NULL);
    /* D4 bo 400: new 0, demo 1d, proposal 2d, demo 3d (a regression) */
    stage("d4", "new", 0, "pipeline: sales, owner: bo, amount: 400");
    stage("d4", "demo", 1, NULL);
    stage("d4", "proposal", 2, NULL);
    stage("d4", "demo", 3, NULL);
    /* D5 al 500: new 0, won 1d, proposal 2d (reopened) */
    stage("d5", "new", 0, "pipeline: sales, owner: al, amount: 500");
    stage("d5", "won", 1, NULL);
    stage("d5", "proposal", 2, NULL);
    /* D6 bo 50: new 2d, a call at 4d */
    stage("d6", "new", 2, "pipeline: sales, owner: bo, amount: 50");
    CHECK(it_append(&D, "{id: m-call, type: activity, deal: d6, kind: call, at: %lld}",
                    (long long)(T0 + 4 * DAY)) > 0);
    /* D7 al 1000, newest first: won 10d, then new 0 and demo 4d arrive late */
    stage("d7", "won", 10, "pipeline: sales, owner: al, amount: 1000");
    stage("d7", "new", 0, NULL);
    stage("d7", "demo", 4, NULL);
    /* D8 bo 80: new 0, demo 1d (a stage v2 removes) */
    stage("d8", "new", 0, "pipeline: sales, owner: bo, amount: 80");
    stage("d8", "demo", 1, NULL);
    /* D9 al, no amount: new 0, lost 1d */
    stage("d9", "new", 0, "pipeline: sales, owner: al");
    stage("d9", "lost", 1, NULL);
    /* D10 bo 700.5: new 0, proposal 1d, won 2d */
    stage("d10", "new", 0, "pipeline: sales, owner: bo, amount: 700.5");
    stage("d10", "proposal", 1, NULL);
    stage("d10", "won", 2, NULL);
    /* D11 al 60: new 0; close date pushed once */
    stage("d11", "new", 0, "pipeline: sales, owner: al, amount: 60");
    CHECK(it_append(&D,
                    "{id: m-cd1, type: update, deal: d11, close_date: %lld, at: %lld},"
                    "{id: m-cd2, type: update, deal: d11, close_date: %lld, at: %lld}",
                    (long long)(T0 + 30 * DAY), (long long)(T0 + DAY), (long long)(T0 + 40 * DAY),
                    (long long)(T0 + 2 * DAY)) > 0);
    /* D12: no stage yet, no owner, no amount: open */
    CHECK(it_append(
              &D, "{id: m-d12, type: activity, deal: d12, pipeline: sales, kind: email, at: %lld}",
              (long long)T0) > 0);
    /* v2: `demo` is gone; D4 and D8 stay in it */
    define_sales(2);
}

static const msgpack_object *find_key(const msgpack_object *map, const char *key)
{
    return it_get(map, key);
}

static void check_conversion(const msgpack_object *conversion, uint32_t i, const char *from,
                             const char *to, double rate)
{
    const msgpack_object *c = it_at(conversion, i);
    CHECK_STR(it_str(c, "from"), from);
    CHECK_STR(it_str(c, "to"), to);
    if (isnan(rate))
        CHECK(it_is_nil(c, "rate"));
    else
        CHECK_NUM(it_num(c, "rate"), rate);
}

/* A map of exactly these keys and counts: name, count, ..., NULL. */
static void check_counts(const msgpack_object *map, ...)
{
    va_list ap;
    uint32_t n = 0;
    va_start(ap, map);
    for (const char *key; (key = va_arg(ap, const char *)) != NULL; n++) {
        int count = va_arg(ap, int);
        CHECK(it_get(map, key) != NULL);
        CHECK_INT(it_int(map, key), count);
    }
    va_end(ap);
    CHECK_INT(it_len(map), n);
}

static void test_all_deals(void)
{
    const msgpack_object *m = it_call(&D, "{op: metrics, pipeline: sales, now: %lld}", NOW);
    CHECK(it_ok(m));
    static const char *const keys[] = {"ok",
                                       "won",
                                       "lost",
                                       "win_rate",
                                       "avg_cycle_days",
                                       "avg_days_in_stage",
                                       "conversion",
                                       "open",
                                       "open_amount",
                                       "weighted",
                                       "velocity",
                                       "created",
                                       "won_amount",
                                       "lost_amount",
                                       "avg_won_amount",
                                       "lost_from",
                                       "loss_reasons",
                                       NULL};
    CHECK(it_has_keys(m, keys));
    /* won: d1 d3 d7 d10; lost: d2 d9 */
    CHECK_INT(it_int(m, "won"), 4);
    CHECK_INT(it_int(m, "lost"), 2);
    CHECK_NUM(it_num(m, "win_rate"), 4.0 / 6);
    /* cycles 5, 5, 10, 2 days */
    CHECK_NUM(it_num(m, "avg_cycle_days"), 22.0 / 4);
    /* open: d4 d5 d6 d8 d11 d12 */
    CHECK_INT(it_int(m, "open"), 6);
    CHECK_INT(it_int(m, "open_amount"), 400 + 500 + 50 + 80 + 60);
    /* demo (removed) keeps 40%: 160 + 32; proposal 70%: 350; new 10%: 5 + 6 */
    CHECK_NUM(it_num(m, "weighted"), 160 + 32 + 350 + 5 + 6);
    /* 6 open x mean won 2100.5 / 4 x 4/6 / 5.5 days */
    CHECK_NUM(it_num(m, "velocity"), 6 * (2100.5 / 4) * (4.0 / 6) / 5.5);
    /* won d1 100, d3 300, d7 1000, d10 700.5; lost d2 200, d9 nil */
    CHECK_NUM(it_num(m, "won_amount"), 2100.5);
    CHECK_INT(it_int(m, "lost_amount"), 200);
    CHECK_NUM(it_num(m, "avg_won_amount"), 2100.5 / 4);
    CHECK_INT(it_int(m, "created"), 12);
    /* d2 was lost from demo (its late demo at 2d came before the loss),
     * removed since; d9 from new, without a reason */
    check_counts(it_get(m, "lost_from"), "new", 1, "proposal", 0, "demo", 1, NULL);
    check_counts(it_get(m, "loss_reasons"), "budget", 1, "unspecified", 1, NULL);

    const msgpack_object *days = find_key(m, "avg_days_in_stage");
    CHECK_INT(it_len(days), 5);
    /* new: 1 2 1 1 1 18 4 1 1 1 20 over 11 deals */
    CHECK_NUM(it_num(days, "new"), 51.0 / 11);
    /* demo: d1 2, d2 2, d4 1 + 17, d7 6, d8 19 */
    CHECK_NUM(it_num(days, "demo"), 47.0 / 5);
    /* proposal: d1 2, d3 4, d4 1, d5 18, d10 1 */
    CHECK_NUM(it_num(days, "proposal"), 26.0 / 5);
    /* won: d1 15, d3 14, d5 1, d7 10, d10 18 */
    CHECK_NUM(it_num(days, "won"), 58.0 / 5);
    /* lost: d2 16, d9 19 */
    CHECK_NUM(it_num(days, "lost"), 35.0 / 2);

    /* v2's open stages new, proposal, then won. Reached new: all 11 with a
     * stage; proposal: d1 d3 d4 d5 d7 d10 (d7 and d5 through won); won: d1
     * d3 d5 d7 d10. */
    const msgpack_object *conversion = find_key(m, "conversion");
    CHECK_INT(it_len(conversion), 2);
    check_conversion(conversion, 0, "new", "proposal", 6.0 / 11);
    check_conversion(conversion, 1, "proposal", "won", 5.0 / 6);
}

static void test_owners(void)
{
    /* al: d1 d2 d5 d7 d9 d11 */
    const msgpack_object *m =
        it_call(&D, "{op: metrics, pipeline: sales, owner: al, now: %lld}", NOW);
    CHECK_INT(it_int(m, "won"), 2);
    CHECK_INT(it_int(m, "lost"), 2);
    CHECK_NUM(it_num(m, "win_rate"), 0.5);
    CHECK_NUM(it_num(m, "avg_cycle_days"), 7.5);
    CHECK_INT(it_int(m, "open"), 2);
    CHECK_INT(it_int(m, "open_amount"), 560);
    CHECK_NUM(it_num(m, "weighted"), 356);
    CHECK_NUM(it_num(m, "velocity"), 2 * 550 * 0.5 / 7.5);
    CHECK_NUM(it_num(find_key(m, "avg_days_in_stage"), "lost"), 35.0 / 2);
    check_conversion(find_key(m, "conversion"), 0, "new", "proposal", 3.0 / 6);
    CHECK_INT(it_int(m, "won_amount"), 1100);
    CHECK_INT(it_int(m, "lost_amount"), 200);
    CHECK_NUM(it_num(m, "avg_won_amount"), 550);
    CHECK_INT(it_int(m, "created"), 6);
    check_counts(it_get(m, "lost_from"), "new", 1, "proposal", 0, "demo", 1, NULL);
    check_counts(it_get(m, "loss_reasons"), "budget", 1, "unspecified", 1, NULL);

    /* bo: d3 d4 d6 d8 d10 (d12 has no owner) */
    m = it_call(&D, "{op: metrics, pipeline: sales, owner: bo, now: %lld}", NOW);
    CHECK_INT(it_int(m, "won"), 2);
    CHECK_INT(it_int(m, "lost"), 0);
    CHECK_NUM(it_num(m, "win_rate"), 1.0);
    CHECK_NUM(it_num(m, "avg_cycle_days"), 3.5);
    CHECK_INT(it_int(m, "open"), 3);
    CHECK_INT(it_int(m, "open_amount"), 530);
    CHECK_NUM(it_num(m, "weighted"), 197);
    CHECK(it_len(find_key(m, "avg_days_in_stage")) == 4); /* never lost */
    CHECK_NUM(it_num(m, "won_amount"), 1000.5);
    CHECK_INT(it_int(m, "lost_amount"), 0);
    CHECK_INT(it_int(m, "created"), 5);
    check_counts(it_get(m, "lost_from"), "new", 0, "proposal", 0, NULL);
    check_counts(it_get(m, "loss_reasons"), NULL);

    /* an owner with no deals */
    m = it_call(&D, "{op: metrics, pipeline: sales, owner: nobody, now: %lld}", NOW);
    CHECK(it_ok(m));
    CHECK_INT(it_int(m, "won"), 0);
    CHECK(it_is_nil(m, "win_rate"));
    CHECK(it_is_nil(m, "avg_cycle_days"));
    CHECK(it_is_nil(m, "velocity"));
    CHECK_INT(it_int(m, "open"), 0);
    CHECK_INT(it_len(find_key(m, "avg_days_in_stage")), 0);
    check_conversion(find_key(m, "conversion"), 0, "new", "proposal", NAN);
    CHECK(it_is_nil(m, "avg_won_amount"));
    CHECK_INT(it_int(m, "won_amount"), 0);
    CHECK_INT(it_int(m, "created"), 0);
}

static void test_windows(void)
{
    /* [4d, 6d): d1 won at 5d, d2 lost at 4d; d3 won at exactly 6d is out */
    const msgpack_object *m =
        it_call(&D, "{op: metrics, pipeline: sales, now: %lld, from: %lld, to: %lld}", NOW,
                (long long)(T0 + 4 * DAY), (long long)(T0 + 6 * DAY));
    CHECK_INT(it_int(m, "won"), 1);
    CHECK_INT(it_int(m, "lost"), 1);
    CHECK_NUM(it_num(m, "win_rate"), 0.5);
    CHECK_NUM(it_num(m, "avg_cycle_days"), 5.0);
    CHECK_INT(it_int(m, "won_amount"), 100);
    CHECK_INT(it_int(m, "lost_amount"), 200);
    CHECK_NUM(it_num(m, "avg_won_amount"), 100);
    CHECK_INT(it_int(m, "created"), 0); /* all before 4d */
    check_counts(it_get(m, "lost_from"), "new", 0, "proposal", 0, "demo", 1, NULL);
    check_counts(it_get(m, "loss_reasons"), "budget", 1, NULL);
    /* open figures ignore the window */
    CHECK_INT(it_int(m, "open"), 6);
    CHECK_NUM(it_num(m, "velocity"), 6 * 100.0 * 0.5 / 5.0);

    /* one ms after d1 closed: d3 (6d) and d7 (10d) */
    m = it_call(&D, "{op: metrics, pipeline: sales, now: %lld, from: %lld}", NOW,
                (long long)(T0 + 5 * DAY + 1));
    CHECK_INT(it_int(m, "won"), 2);
    CHECK_INT(it_int(m, "lost"), 0);
    CHECK_NUM(it_num(m, "avg_cycle_days"), 7.5);

    /* before 2d: d9 lost at 1d; with to = d10's close (2d) exactly it is out */
    m = it_call(&D, "{op: metrics, pipeline: sales, now: %lld, to: %lld}", NOW,
                (long long)(T0 + 2 * DAY));
    CHECK_INT(it_int(m, "won"), 0);
    CHECK_INT(it_int(m, "lost"), 1);
    check_counts(it_get(m, "lost_from"), "new", 1, "proposal", 0, NULL);
    check_counts(it_get(m, "loss_reasons"), "unspecified", 1, NULL);
    CHECK_INT(it_int(m, "created"), 11); /* all but d6, created at 2d */
    m = it_call(&D, "{op: metrics, pipeline: sales, now: %lld, to: %lld}", NOW,
                (long long)(T0 + 2 * DAY + 1));
    CHECK_INT(it_int(m, "won"), 1);

    /* created: d3 at 1d, d6 at 2d; windows that cut days */
    m = it_call(&D, "{op: metrics, pipeline: sales, now: %lld, from: %lld, to: %lld}", NOW,
                (long long)(T0 + DAY), (long long)(T0 + 2 * DAY + 1));
    CHECK_INT(it_int(m, "created"), 2);
    m = it_call(&D, "{op: metrics, pipeline: sales, now: %lld, from: %lld, to: %lld}", NOW,
                (long long)(T0 + DAY + 1), (long long)(T0 + 2 * DAY + 1));
    CHECK_INT(it_int(m, "created"), 1);
    m = it_call(&D, "{op: metrics, pipeline: sales, now: %lld, from: %lld}", NOW,
                (long long)(T0 + 2 * DAY));
    CHECK_INT(it_int(m, "created"), 1);

    /* an empty window */
    m = it_call(&D, "{op: metrics, pipeline: sales, now: %lld, from: %lld, to: %lld}", NOW,
                (long long)(T0 + 6 * DAY), (long long)(T0 + 4 * DAY));
    CHECK_INT(it_int(m, "won"), 0);
    CHECK_INT(it_int(m, "lost"), 0);
    CHECK(it_is_nil(m, "win_rate"));
}

static void check_stage(const msgpack_object *entry, const char *stage_name, int64_t count,
                        double amount, double weighted, double avg_days, int64_t stale,
                        bool removed)
{
    CHECK_STR(it_str(entry, "stage"), stage_name);
    CHECK_INT(it_int(entry, "count"), count);
    CHECK_NUM(it_num(entry, "amount"), amount);
    CHECK_NUM(it_num(entry, "weighted"), weighted);
    if (isnan(avg_days)) /* a closed stage */
        CHECK(it_is_nil(entry, "avg_days_in_stage"));
    else
        CHECK_NUM(it_num(entry, "avg_days_in_stage"), avg_days);
    CHECK_INT(it_int(entry, "stale"), stale);
    CHECK_INT(it_bool(entry, "removed"), removed);
}

static void test_board(void)
{
    const msgpack_object *b = it_call(&D, "{op: board, pipeline: sales, now: %lld}", NOW);
    const msgpack_object *stages = it_get(b, "stages");
    CHECK_INT(it_len(stages), 5);
    /* new: d6 (since 2d, idle since its call at 4d), d11 (since 0); both past 3 days */
    check_stage(it_at(stages, 0), "new", 2, 110, 11, (18 + 20) / 2.0, 2, false);
    check_stage(it_at(stages, 1), "proposal", 1, 500, 350, 18, 0, false);
    /* closed stages have no days in stage: (15 + 14 + 10 + 18) / 4 and (16 + 19) / 2
     * would be days since closing */
    check_stage(it_at(stages, 2), "won", 4, 2100.5, 2100.5, NAN, 0, false);
    check_stage(it_at(stages, 3), "lost", 2, 200, 0, NAN, 0, false);
    /* totals: d12 (no stage) is open with no amount */
    const msgpack_object *totals = it_get(b, "totals");
    CHECK_INT(it_int(totals, "count"), 12);
    CHECK_NUM(it_num(totals, "amount"), 110 + 500 + 2100.5 + 200 + 480);
    CHECK_NUM(it_num(totals, "weighted"), 11 + 350 + 2100.5 + 192);
    CHECK_INT(it_int(totals, "open"), 6);
    CHECK_INT(it_int(totals, "open_amount"), 110 + 500 + 480);
    CHECK_INT(it_int(totals, "won"), 4);
    CHECK_NUM(it_num(totals, "won_amount"), 2100.5);
    CHECK_INT(it_int(totals, "lost"), 2);
    CHECK_INT(it_int(totals, "lost_amount"), 200);
    /* demo, gone from the pipeline: d4 (since 3d), d8 (since 1d), at 40% */
    check_stage(it_at(stages, 4), "demo", 2, 480, 192, (17 + 19) / 2.0, 0, true);

    /* d6 is stale from 7d (4d + 3), d11 from 3d */
    b = it_call(&D, "{op: board, pipeline: sales, now: %lld}", (long long)(T0 + 5 * DAY));
    CHECK_INT(it_int(it_at(it_get(b, "stages"), 0), "stale"), 1);
    b = it_call(&D, "{op: board, pipeline: sales, now: %lld}", (long long)(T0 + 7 * DAY));
    CHECK_INT(it_int(it_at(it_get(b, "stages"), 0), "stale"), 2);
    b = it_call(&D, "{op: board, pipeline: sales, now: %lld}", (long long)(T0 + 7 * DAY - 1));
    CHECK_INT(it_int(it_at(it_get(b, "stages"), 0), "stale"), 1);

    /* a moment before a deal moved gives it 0 days in stage, never fewer:
     * at 1.5d d6 (new since 2d) counts 0 and d11 (since 0) 1.5 */
    b = it_call(&D, "{op: board, pipeline: sales, now: %lld}", (long long)(T0 + 3 * DAY / 2));
    check_stage(it_at(it_get(b, "stages"), 0), "new", 2, 110, 11, 1.5 / 2, 0, false);
    /* d4 and d8 moved to demo at 3d and 1d: before both, 0 days */
    b = it_call(&D, "{op: board, pipeline: sales, now: %lld}", (long long)(T0 - DAY));
    check_stage(it_at(it_get(b, "stages"), 4), "demo", 2, 480, 192, 0, 0, true);
}

static void test_deal_counters(void)
{
    const msgpack_object *r = it_call(&D, "{op: deal, deal: d4, now: %lld}", NOW);
    CHECK_INT(it_int(it_get(r, "deal"), "regressions"), 1);
    CHECK_INT(it_int(it_get(r, "deal"), "reopened"), 0);
    r = it_call(&D, "{op: deal, deal: d5, now: %lld}", NOW);
    CHECK_INT(it_int(it_get(r, "deal"), "reopened"), 1);
    CHECK_INT(it_int(it_get(r, "deal"), "regressions"), 0);
    r = it_call(&D, "{op: deal, deal: d11, now: %lld}", NOW);
    CHECK_INT(it_int(it_get(r, "deal"), "pushes"), 1);
    /* d2's late demo: it moved back from nothing; no regression */
    r = it_call(&D, "{op: deal, deal: d2, now: %lld}", NOW);
    CHECK_INT(it_int(it_get(r, "deal"), "regressions"), 0);
}

/* A late event changes a deal's past, and the figures change with it. */
static void test_late_event_changes_figures(void)
{
    /* d9 was lost at 1d; a late `won` at 0.5d puts a won visit before that:
     * it stays lost, but it has now reached new, proposal and won. */
    stage("d9", "won", 0.5, NULL);
    const msgpack_object *m = it_call(&D, "{op: metrics, pipeline: sales, now: %lld}", NOW);
    CHECK_INT(it_int(m, "lost"), 2);
    const msgpack_object *conversion = it_get(m, "conversion");
    check_conversion(conversion, 0, "new", "proposal", 7.0 / 11);
    check_conversion(conversion, 1, "proposal", "won", 6.0 / 7);
    /* d9: new [0, 0.5d), won [0.5d, 1d), lost since 1d */
    CHECK_NUM(it_num(it_get(m, "avg_days_in_stage"), "won"), 58.5 / 6);
    CHECK_NUM(it_num(it_get(m, "avg_days_in_stage"), "new"), 50.5 / 11);

    /* a call makes d11 fresh again: only the stale count changes */
    const msgpack_object *before = it_call(&D, "{op: metrics, pipeline: sales, now: %lld}", NOW);
    CHECK(it_append(&D, "{id: m-call-2, type: activity, deal: d11, kind: call, at: %lld}",
                    (long long)(NOW - DAY)) > 0);
    const msgpack_object *b = it_call(&D, "{op: board, pipeline: sales, now: %lld}", NOW);
    CHECK_INT(it_int(it_at(it_get(b, "stages"), 0), "stale"), 1);
    CHECK_INT(it_int(it_at(it_get(b, "stages"), 0), "count"), 2);
    CHECK(it_equal(it_call(&D, "{op: metrics, pipeline: sales, now: %lld}", NOW), before));

    /* a late stage event of d8, which sits in the removed demo: it stays there
     * at the 40% it had when it moved, though the deal was folded again */
    stage("d8", "won", 0.5, NULL);
    b = it_call(&D, "{op: board, pipeline: sales, now: %lld}", NOW);
    check_stage(it_at(it_get(b, "stages"), 4), "demo", 2, 480, 192, (17 + 19) / 2.0, 0, true);

    /* a move that closes a deal inside the window */
    stage("d11", "won", 4.5, NULL);
    m = it_call(&D, "{op: metrics, pipeline: sales, now: %lld, from: %lld, to: %lld}", NOW,
                (long long)(T0 + 4 * DAY), (long long)(T0 + 6 * DAY));
    CHECK_INT(it_int(m, "won"), 2);
    CHECK_INT(it_int(m, "open"), 5);
}

/* Losses in a pipeline of their own: a lost deal reopened and lost again, a
 * late stage before a loss, a regression, a loss with no open stage before
 * it, a stage removed after deals were lost from it; and the product and
 * source scopes. */
static void define_loss(bool with_b)
{
    CHECK(it_append(&D,
                    "{id: 'loss-v%d', type: pipeline, pipeline: loss, stages: ["
                    "{name: a, probability: 10},%s"
                    "{name: won, probability: 100, outcome: won},"
                    "{name: lost, probability: 0, outcome: lost},"
                    "{name: dead, probability: 0, outcome: lost}]}",
                    with_b ? 1 : 2, with_b ? "{name: b, probability: 50}," : "") > 0);
}

static const msgpack_object *loss_metrics(const char *extra, double from_days, double to_days)
{
    return it_call(&D, "{op: metrics, pipeline: loss, now: %lld, from: %lld, to: %lld%s%s}", NOW,
                   (long long)(T0 + (int64_t)(from_days * DAY)),
                   (long long)(T0 + (int64_t)(to_days * DAY)), extra ? ", " : "",
                   extra ? extra : "");
}

static void test_losses(void)
{
    define_loss(true);
    /* L1 10 (p1, web): a 0, b 1d, lost 2d (price), reopened b 3d, lost 4d (timing) */
    stage("l1", "a", 0, "pipeline: loss, amount: 10");
    CHECK(it_append(&D, "{id: l1-u, type: update, deal: l1, product: p1, source: web, at: %lld}",
                    (long long)T0) > 0);
    stage("l1", "b", 1, NULL);
    stage("l1", "lost", 2, "reason: price");
    stage("l1", "b", 3, NULL);
    stage("l1", "lost", 4, "reason: timing");
    /* L2 20 (p1, web): a 0, lost 1d (price); b at 0.5d arrives late */
    stage("l2", "a", 0, "pipeline: loss, amount: 20, source: web");
    CHECK(it_append(&D, "{id: l2-u, type: update, deal: l2, product: p1, at: %lld}",
                    (long long)T0) > 0);
    stage("l2", "lost", 1, "reason: price");
    stage("l2", "b", 0.5, NULL);
    /* L3 30: a 0, dead 2.5d, no reason */
    stage("l3", "a", 0, "pipeline: loss, amount: 30");
    stage("l3", "dead", 2.5, NULL);
    /* L4 40: a 0, b 1d, a 1.5d (a regression), lost 3d with an empty reason */
    stage("l4", "a", 0, "pipeline: loss, amount: 40");
    stage("l4", "b", 1, NULL);
    stage("l4", "a", 1.5, NULL);
    stage("l4", "lost", 3, "reason: ''");
    /* L5 50: created lost at 2d (price), from no open stage */
    stage("l5", "lost", 2, "pipeline: loss, amount: 50, reason: price");

    const msgpack_object *m = it_call(&D, "{op: metrics, pipeline: loss, now: %lld}", NOW);
    CHECK_INT(it_int(m, "lost"), 5);
    CHECK_INT(it_int(m, "lost_amount"), 150);
    CHECK_INT(it_int(m, "won_amount"), 0);
    CHECK(it_is_nil(m, "avg_won_amount"));
    CHECK_INT(it_int(m, "created"), 5);
    check_counts(it_get(m, "lost_from"), "a", 2, "b", 2, NULL);
    check_counts(it_get(m, "loss_reasons"), "timing", 1, "price", 2, "unspecified", 2, NULL);

    /* windows that cut days: [2d, 3d) holds L5 (2d) and L3 (2.5d) */
    m = loss_metrics(NULL, 2, 3);
    CHECK_INT(it_int(m, "lost"), 2);
    CHECK_INT(it_int(m, "lost_amount"), 80);
    check_counts(it_get(m, "lost_from"), "a", 1, "b", 0, NULL);
    check_counts(it_get(m, "loss_reasons"), "price", 1, "unspecified", 1, NULL);
    CHECK_INT(it_int(m, "created"), 1);
    /* [2d + 1 ms, 4d + 1 ms): L3, L4, L1 */
    m = it_call(&D, "{op: metrics, pipeline: loss, now: %lld, from: %lld, to: %lld}", NOW,
                (long long)(T0 + 2 * DAY + 1), (long long)(T0 + 4 * DAY + 1));
    check_counts(it_get(m, "lost_from"), "a", 2, "b", 1, NULL);
    check_counts(it_get(m, "loss_reasons"), "unspecified", 2, "timing", 1, NULL);
    CHECK_INT(it_int(m, "created"), 0);

    /* the product and source scopes: L1 and L2 */
    m = it_call(&D, "{op: metrics, pipeline: loss, now: %lld, product: p1}", NOW);
    CHECK_INT(it_int(m, "lost"), 2);
    CHECK_INT(it_int(m, "lost_amount"), 30);
    CHECK_INT(it_int(m, "created"), 2);
    check_counts(it_get(m, "lost_from"), "a", 0, "b", 2, NULL);
    check_counts(it_get(m, "loss_reasons"), "timing", 1, "price", 1, NULL);
    CHECK(it_equal(it_call(&D, "{op: metrics, pipeline: loss, now: %lld, source: web}", NOW), m));
    m = it_call(&D, "{op: metrics, pipeline: loss, now: %lld, source: none}", NOW);
    CHECK_INT(it_int(m, "lost"), 0);
    CHECK_ERR(it_call(&D, "{op: metrics, pipeline: loss, owner: al, product: p1}"), "bad_request");
    CHECK_ERR(it_call(&D, "{op: board, pipeline: loss, source: web, product: p1}"), "bad_request");
    CHECK_ERR(it_call(&D, "{op: metrics, pipeline: loss, product: 5}"), "bad_request");

    const msgpack_object *b =
        it_call(&D, "{op: board, pipeline: loss, now: %lld, product: p1}", NOW);
    CHECK(it_ok(b));
    const msgpack_object *totals = it_get(b, "totals");
    CHECK_INT(it_int(totals, "lost"), 2);
    CHECK_INT(it_int(totals, "lost_amount"), 30);
    CHECK_INT(it_int(totals, "open"), 0);
    CHECK(it_is_nil(it_at(it_get(b, "stages"), 0), "stale")); /* kept for every deal only */
    b = it_call(&D, "{op: board, pipeline: loss, now: %lld}", NOW);
    totals = it_get(b, "totals");
    CHECK_INT(it_int(totals, "count"), 5);
    CHECK_INT(it_int(totals, "lost_amount"), 150);
    CHECK_INT(it_int(it_at(it_get(b, "stages"), 0), "stale"), 0);

    /* b removed: deals lost from it still count there */
    define_loss(false);
    m = it_call(&D, "{op: metrics, pipeline: loss, now: %lld}", NOW);
    check_counts(it_get(m, "lost_from"), "a", 2, "b", 2, NULL);
    CHECK_INT(it_int(m, "lost"), 5);

    /* L1 reopened once more: no longer lost, nor counted where it was lost from */
    stage("l1", "a", 5, NULL);
    m = it_call(&D, "{op: metrics, pipeline: loss, now: %lld}", NOW);
    check_counts(it_get(m, "lost_from"), "a", 2, "b", 1, NULL);
    check_counts(it_get(m, "loss_reasons"), "price", 2, "unspecified", 2, NULL);
    CHECK_INT(it_int(m, "lost_amount"), 140);
}

static bool start_daemon(void)
{
    if (!it_setup(&D, NULL))
        return false;
    send_deals();
    return true;
}

static void stop_daemon(void)
{
    it_teardown(&D);
}

/* The same figures after a restart, from the stored aggregates. */
static void test_after_restart(void)
{
    CHECK_INT(it_stop(&D), 0);
    CHECK(it_restart(&D));
    test_all_deals();
    test_board();
}

static const df_test tests[] = {
    {"all_deals", test_all_deals},
    {"owners", test_owners},
    {"windows", test_windows},
    {"board", test_board},
    {"deal_counters", test_deal_counters},
    {"after_restart", test_after_restart},
    {"late_event_changes_figures", test_late_event_changes_figures},
    {"losses", test_losses},
    {NULL, NULL},
};

int main(int argc, char **argv)
{
    static const df_fixture fixture = {.setup = start_daemon, .teardown = stop_daemon};
    return df_test_main(argc, argv, tests, &fixture);
}

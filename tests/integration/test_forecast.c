/* test_forecast.c: `forecast`, `calibration` and the `series` of `metrics`
 * against tables worked out by hand: a dozen deals with late events, a
 * regression, a reopened deal, a removed stage, a close_date changed by an
 * update, and windows that cut days. */
#include <math.h>
#include <string.h>

#include "check.h"
#include "harness.h"

#define T0   IT_T0 /* Tuesday 2023-11-14 22:13:20 UTC: windows from it cut a day */
#define DAY  IT_DAY
#define HOUR (DAY / 24)
#define NOW  (T0 + 20 * DAY) /* Monday 2023-12-04 22:13:20 */

/* Midnights, UTC. */
#define OCT1  1696118400000LL
#define NOV1  1698796800000LL
#define NOV20 1700438400000LL
#define DEC1  1701388800000LL
#define DEC3  1701561600000LL
#define DEC4  1701648000000LL
#define DEC10 1702166400000LL
#define DEC11 1702252800000LL
#define DEC15 1702598400000LL
#define DEC20 1703030400000LL
#define JAN1  1704067200000LL
#define JAN5  1704412800000LL
#define JAN20 1705708800000LL
#define FEB1  1706745600000LL
#define FEB2  1706832000000LL
#define MAR1  1709251200000LL
#define APR1  1711929600000LL
#define JUL1  1719792000000LL

static it_daemon D;

static void stage(const char *deal, const char *stage_name, int64_t at, const char *extra)
{
    static int n;
    CHECK(it_append(&D, "{id: 'f-%d', type: stage, deal: %s, stage: %s, at: %lld%s%s}", ++n, deal,
                    stage_name, (long long)at, extra ? ", " : "", extra ? extra : "") > 0);
}

static void close_on(const char *deal, int64_t close_date, int64_t at)
{
    static int n;
    CHECK(it_append(&D, "{id: 'c-%d', type: update, deal: %s, close_date: %lld, at: %lld}", ++n,
                    deal, (long long)close_date, (long long)at) > 0);
}

static void define_sales(int version)
{
    CHECK(it_append(&D,
                    "{id: 'fsales-v%d', type: pipeline, pipeline: sales, stages: ["
                    "{name: new, probability: 10},"
                    "%s"
                    "{name: proposal, probability: 70},"
                    "{name: won, probability: 100, outcome: won},"
                    "{name: lost, probability: 0, outcome: lost}]}",
                    version, version == 1 ? "{name: demo, probability: 40}," : "") > 0);
}

static void send_deals(void)
{
    define_sales(1);
    /* f1 al 100, new, closes Dec 10 12:00 */
    stage("f1", "new", T0, "pipeline: sales, owner: al, amount: 100");
    close_on("f1", DEC10 + 12 * HOUR, T0);
    /* f2 bo 200, proposal, closes Jan 5 */
    stage("f2", "new", T0, "pipeline: sales, owner: bo, amount: 200");
    stage("f2", "proposal", T0 + DAY, NULL);
    close_on("f2", JAN5, T0);
    /* f3 bo 300, demo (which v2 removes: it keeps 40%), closes Jan 20 */
    stage("f3", "demo", T0, "pipeline: sales, owner: bo, amount: 300");
    close_on("f3", JAN20, T0);
    /* f4 bo 50, new; close_date Feb 2, then an older update to Dec 20
     * arrives late and changes nothing */
    stage("f4", "new", T0, "pipeline: sales, owner: bo, amount: 50");
    close_on("f4", FEB2, T0 + 2 * DAY);
    close_on("f4", DEC20, T0 + DAY);
    /* f5 bo 1000: new, proposal, won at T0 + 5d (Nov 19); closes Nov 25 */
    stage("f5", "new", T0, "pipeline: sales, owner: bo, amount: 1000");
    stage("f5", "proposal", T0 + 2 * DAY, NULL);
    stage("f5", "won", T0 + 5 * DAY, NULL);
    close_on("f5", NOV20 + 5 * DAY, T0);
    /* f6 al 500: won at T0 + 1d, reopened to proposal at 2d; closes Dec 3 */
    stage("f6", "new", T0, "pipeline: sales, owner: al, amount: 500");
    stage("f6", "won", T0 + DAY, NULL);
    stage("f6", "proposal", T0 + 2 * DAY, NULL);
    close_on("f6", DEC3, T0);
    /* f7 bo 80: proposal, then new (a regression); no close_date */
    stage("f7", "proposal", T0, "pipeline: sales, owner: bo, amount: 80");
    stage("f7", "new", T0 + 3 * DAY, NULL);
    /* f8 40: no stage; closes Dec 4 10:00, before now on now's day */
    CHECK(it_append(&D,
                    "{id: f8-u, type: update, deal: f8, pipeline: sales, amount: 40, "
                    "close_date: %lld, at: %lld}",
                    (long long)(DEC4 + 10 * HOUR), (long long)T0) > 0);
    /* f9 al 70: new, created Dec 1; closes Dec 4 23:00, after now */
    stage("f9", "new", T0 + 17 * DAY, "pipeline: sales, owner: al, amount: 70");
    close_on("f9", DEC4 + 23 * HOUR, T0 + 17 * DAY);
    /* f10 bo 250: new at T0 - 3d, won at T0 - 1h (the day T0 cuts) */
    stage("f10", "new", T0 - 3 * DAY, "pipeline: sales, owner: bo, amount: 250");
    stage("f10", "won", T0 - HOUR, NULL);
    /* f11 bo 90: new, demo, lost at T0 + 4d */
    stage("f11", "new", T0, "pipeline: sales, owner: bo, amount: 90");
    stage("f11", "demo", T0 + DAY, NULL);
    stage("f11", "lost", T0 + 4 * DAY, "reason: price");
    /* f12 bo 150: won at T0 + 6d arrives first, new and proposal late */
    stage("f12", "won", T0 + 6 * DAY, "pipeline: sales, owner: bo, amount: 150");
    stage("f12", "new", T0 + 2 * DAY, NULL);
    stage("f12", "proposal", T0 + 3 * DAY, NULL);
    /* f13 bo 60: new, proposal, new (a regression), lost at T0 + 3d */
    stage("f13", "new", T0, "pipeline: sales, owner: bo, amount: 60");
    stage("f13", "proposal", T0 + DAY, NULL);
    stage("f13", "new", T0 + 2 * DAY, NULL);
    stage("f13", "lost", T0 + 3 * DAY, NULL);
    define_sales(2);
}

static void check_period(const msgpack_object *periods, uint32_t i, int64_t start, int64_t end,
                         int count, double amount, double weighted, int won_count,
                         double won_amount)
{
    const msgpack_object *p = it_at(periods, i);
    static const char *const keys[] = {"start",    "end",       "count",      "amount",
                                       "weighted", "won_count", "won_amount", NULL};
    CHECK(it_has_keys(p, keys));
    CHECK_INT(it_int(p, "start"), start);
    CHECK_INT(it_int(p, "end"), end);
    CHECK_INT(it_int(p, "count"), count);
    CHECK_NUM(it_num(p, "amount"), amount);
    CHECK_NUM(it_num(p, "weighted"), weighted);
    CHECK_INT(it_int(p, "won_count"), won_count);
    CHECK_NUM(it_num(p, "won_amount"), won_amount);
}

static void check_cell(const msgpack_object *reply, const char *key, int count, double amount,
                       double weighted)
{
    const msgpack_object *c = it_get(reply, key);
    CHECK(c != NULL);
    CHECK_INT(it_len(c), 3);
    CHECK_INT(it_int(c, "count"), count);
    CHECK_NUM(it_num(c, "amount"), amount);
    CHECK_NUM(it_num(c, "weighted"), weighted);
}

static void test_forecast_by_month(void)
{
    const msgpack_object *r =
        it_call(&D, "{op: forecast, pipeline: sales, by: month, from: %lld, to: %lld, now: %lld}",
                NOV1, MAR1, NOW);
    CHECK(it_ok(r));
    static const char *const keys[] = {"ok", "periods", "overdue", "no_date", NULL};
    CHECK(it_has_keys(r, keys));
    const msgpack_object *periods = it_get(r, "periods");
    CHECK_INT(it_len(periods), 4);
    /* Nov: no open deal closes; won f5 1000, f10 250, f12 150 */
    check_period(periods, 0, NOV1, DEC1, 0, 0, 0, 3, 1400);
    /* Dec: f1 100 x 10%, f6 500 x 70%, f8 40 (no stage), f9 70 x 10% */
    check_period(periods, 1, DEC1, JAN1, 4, 710, 10 + 350 + 0 + 7, 0, 0);
    /* Jan: f2 200 x 70%, f3 300 x 40% (demo, removed) */
    check_period(periods, 2, JAN1, FEB1, 2, 500, 140 + 120, 0, 0);
    /* Feb: f4 50 x 10% (its late older update changed nothing) */
    check_period(periods, 3, FEB1, MAR1, 1, 50, 5, 0, 0);
    /* overdue: f6 (Dec 3), f8 (Dec 4 10:00, before now on its day) */
    check_cell(r, "overdue", 2, 540, 350);
    check_cell(r, "no_date", 1, 80, 8); /* f7 */
}

/* A window from T0 cuts its first day: f10, won an hour before, is out. */
static void test_forecast_cut_window(void)
{
    const msgpack_object *r = it_call(
        &D, "{op: forecast, pipeline: sales, from: %lld, to: %lld, now: %lld}", T0, MAR1, NOW);
    CHECK(it_ok(r));
    const msgpack_object *periods = it_get(r, "periods");
    CHECK_INT(it_len(periods), 4);
    check_period(periods, 0, T0, DEC1, 0, 0, 0, 2, 1150);
    check_period(periods, 1, DEC1, JAN1, 4, 710, 367, 0, 0);

    /* by week, Dec 1 to Dec 15: weeks start on Monday (Dec 4, Dec 11) */
    r = it_call(&D, "{op: forecast, pipeline: sales, by: week, from: %lld, to: %lld, now: %lld}",
                DEC1, DEC15, NOW);
    CHECK(it_ok(r));
    periods = it_get(r, "periods");
    CHECK_INT(it_len(periods), 3);
    check_period(periods, 0, DEC1, DEC4, 1, 500, 350, 0, 0);         /* f6 */
    check_period(periods, 1, DEC4, DEC11, 3, 210, 0 + 7 + 10, 0, 0); /* f8 f9 f1 */
    check_period(periods, 2, DEC11, DEC15, 0, 0, 0, 0, 0);

    /* a window that ends within a day: Dec 4 to Dec 4 22:00 holds f8 only */
    r = it_call(&D, "{op: forecast, pipeline: sales, by: week, from: %lld, to: %lld, now: %lld}",
                DEC4, DEC4 + 22 * HOUR, NOW);
    CHECK(it_ok(r));
    periods = it_get(r, "periods");
    CHECK_INT(it_len(periods), 1);
    check_period(periods, 0, DEC4, DEC4 + 22 * HOUR, 1, 40, 0, 0, 0);
}

/* Without from and to: the period now falls in and the two after it. */
static void test_forecast_defaults_and_filters(void)
{
    const msgpack_object *r =
        it_call(&D, "{op: forecast, pipeline: sales, by: quarter, now: %lld}", NOW);
    CHECK(it_ok(r));
    const msgpack_object *periods = it_get(r, "periods");
    CHECK_INT(it_len(periods), 3);
    check_period(periods, 0, OCT1, JAN1, 4, 710, 367, 3, 1400);
    check_period(periods, 1, JAN1, APR1, 3, 550, 265, 0, 0);
    check_period(periods, 2, APR1, JUL1, 0, 0, 0, 0, 0);

    r = it_call(&D, "{op: forecast, pipeline: sales, now: %lld}", NOW);
    CHECK(it_ok(r));
    periods = it_get(r, "periods");
    CHECK_INT(it_len(periods), 3);
    check_period(periods, 0, DEC1, JAN1, 4, 710, 367, 0, 0);
    check_period(periods, 2, FEB1, MAR1, 1, 50, 5, 0, 0);

    /* al: f1 and f6 in Dec, f9 too; no_date none */
    r = it_call(&D, "{op: forecast, pipeline: sales, owner: al, now: %lld}", NOW);
    CHECK(it_ok(r));
    check_period(it_get(r, "periods"), 0, DEC1, JAN1, 3, 670, 367, 0, 0);
    check_cell(r, "overdue", 1, 500, 350);
    check_cell(r, "no_date", 0, 0, 0);
}

static void test_forecast_refusals(void)
{
    CHECK_STR(it_err(it_call(&D, "{op: forecast, by: day}")), "bad_request");
    CHECK_STR(it_err(it_call(&D, "{op: forecast, by: week, from: %lld, to: %lld}", NOV1,
                             NOV1 + 121 * 7 * DAY)),
              "bad_request");
    CHECK(it_ok(
        it_call(&D, "{op: forecast, by: week, from: %lld, to: %lld}", NOV1, NOV1 + 119 * 7 * DAY)));
    CHECK_STR(it_err(it_call(&D, "{op: forecast, pipeline: nope}")), "unknown_pipeline");
    CHECK_STR(it_err(it_call(&D, "{op: forecast, owner: al, source: web}")), "bad_request");
    const msgpack_object *r = it_call(&D, "{op: forecast, from: %lld, to: %lld}", MAR1, NOV1);
    CHECK(it_ok(r));
    CHECK_INT(it_len(it_get(r, "periods")), 0);
    /* as_of is refused, not answered with today's figures */
    static const char *const ops[] = {"forecast", "board", "metrics"};
    for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++) {
        r = it_call(&D, "{op: %s, as_of: %lld}", ops[i], NOV1);
        CHECK_STR(it_err(r), "bad_request");
        const char *message = it_str(r, "message");
        CHECK(message && strstr(message, "as_of") && strstr(message, ops[i]));
    }
}

static void check_stage(const msgpack_object *stages, uint32_t i, const char *name, int configured,
                        int reached, int won)
{
    const msgpack_object *s = it_at(stages, i);
    static const char *const keys[] = {"stage", "configured", "reached", "won", "actual", NULL};
    CHECK(it_has_keys(s, keys));
    CHECK_STR(it_str(s, "stage"), name);
    CHECK_INT(it_int(s, "configured"), configured);
    CHECK_INT(it_int(s, "reached"), reached);
    CHECK_INT(it_int(s, "won"), won);
    if (reached == 0)
        CHECK(it_is_nil(s, "actual"));
    else
        CHECK_NUM(it_num(s, "actual"), (double)won / reached);
}

static void test_calibration(void)
{
    /* closed: f5 won {new proposal won}, f10 won {new won}, f11 lost {new
     * demo lost}, f12 won {new proposal won}, f13 lost {new proposal lost};
     * f6 reopened and is open; demo is removed */
    const msgpack_object *r = it_call(&D, "{op: calibration, pipeline: sales}");
    CHECK(it_ok(r));
    const msgpack_object *stages = it_get(r, "stages");
    CHECK_INT(it_len(stages), 4);
    check_stage(stages, 0, "new", 10, 5, 3);
    check_stage(stages, 1, "proposal", 70, 3, 2);
    check_stage(stages, 2, "won", 100, 3, 3);
    check_stage(stages, 3, "lost", 0, 2, 0);

    /* [T0, T0 + 5d + 1h): f13 (3d), f11 (4d), f5 (5d); f10 is before T0 */
    r = it_call(&D, "{op: calibration, pipeline: sales, from: %lld, to: %lld}", T0,
                T0 + 5 * DAY + HOUR);
    stages = it_get(r, "stages");
    check_stage(stages, 0, "new", 10, 3, 1);
    check_stage(stages, 1, "proposal", 70, 2, 1);
    check_stage(stages, 2, "won", 100, 1, 1);
    check_stage(stages, 3, "lost", 0, 2, 0);

    /* ending at T0 + 5d leaves f5 out, to the ms */
    r = it_call(&D, "{op: calibration, pipeline: sales, from: %lld, to: %lld}", T0, T0 + 5 * DAY);
    stages = it_get(r, "stages");
    check_stage(stages, 0, "new", 10, 2, 0);
    check_stage(stages, 2, "won", 100, 0, 0);

    /* al has no closed deal */
    r = it_call(&D, "{op: calibration, pipeline: sales, owner: al}");
    check_stage(it_get(r, "stages"), 0, "new", 10, 0, 0);
    CHECK_STR(it_err(it_call(&D, "{op: calibration, pipeline: nope}")), "unknown_pipeline");
}

static void test_series(void)
{
    const msgpack_object *m =
        it_call(&D, "{op: metrics, pipeline: sales, by: month, from: %lld, to: %lld, now: %lld}",
                NOV1, JAN1, NOW);
    CHECK(it_ok(m));
    const msgpack_object *series = it_get(m, "series");
    CHECK_INT(it_len(series), 2);
    const msgpack_object *nov = it_at(series, 0), *dec = it_at(series, 1);
    static const char *const keys[] = {
        "start",          "end",          "won",        "lost",        "win_rate",
        "avg_cycle_days", "created",      "won_amount", "lost_amount", "avg_won_amount",
        "lost_from",      "loss_reasons", NULL};
    CHECK(it_has_keys(nov, keys));
    CHECK_INT(it_int(nov, "start"), NOV1);
    CHECK_INT(it_int(nov, "end"), DEC1);
    CHECK_INT(it_int(nov, "won"), 3);
    CHECK_INT(it_int(nov, "lost"), 2);
    CHECK_NUM(it_num(nov, "win_rate"), 3.0 / 5);
    /* cycles: f5 5d, f10 3d - 1h, f12 4d (created by its late new) */
    CHECK_NUM(it_num(nov, "avg_cycle_days"), (5 + 3 - 1.0 / 24 + 4) / 3);
    CHECK_INT(it_int(nov, "created"), 12);
    CHECK_INT(it_int(nov, "won_amount"), 1400);
    CHECK_INT(it_int(nov, "lost_amount"), 150);
    CHECK_INT(it_int(it_get(nov, "loss_reasons"), "price"), 1);
    CHECK_INT(it_int(it_get(nov, "loss_reasons"), "unspecified"), 1);
    CHECK_INT(it_int(it_get(nov, "lost_from"), "demo"), 1);
    CHECK_INT(it_int(it_get(nov, "lost_from"), "new"), 1); /* f13, after its regression */
    CHECK_INT(it_int(it_get(nov, "lost_from"), "proposal"), 0);
    CHECK_INT(it_int(dec, "start"), DEC1);
    CHECK_INT(it_int(dec, "end"), JAN1);
    CHECK_INT(it_int(dec, "won"), 0);
    CHECK(it_is_nil(dec, "win_rate"));
    CHECK_INT(it_int(dec, "created"), 1); /* f9 */
    /* the whole window's figures are still there */
    CHECK_INT(it_int(m, "won"), 3);
    CHECK_INT(it_int(m, "created"), 13);

    /* weeks cut by a window from T0 to T0 + 7d: [T0, Nov 20), [Nov 20, T0 + 7d) */
    m = it_call(&D, "{op: metrics, pipeline: sales, by: week, from: %lld, to: %lld, now: %lld}", T0,
                T0 + 7 * DAY, NOW);
    series = it_get(m, "series");
    CHECK_INT(it_len(series), 2);
    CHECK_INT(it_int(it_at(series, 0), "start"), T0);
    CHECK_INT(it_int(it_at(series, 0), "end"), NOV20);
    CHECK_INT(it_int(it_at(series, 0), "won"), 1); /* f5; f10 is before T0 */
    CHECK_INT(it_int(it_at(series, 0), "lost"), 2);
    CHECK_INT(it_int(it_at(series, 1), "end"), T0 + 7 * DAY);
    CHECK_INT(it_int(it_at(series, 1), "won"), 1); /* f12 */

    /* no series without by */
    m = it_call(&D, "{op: metrics, pipeline: sales, from: %lld, to: %lld}", NOV1, JAN1);
    CHECK(it_get(m, "series") == NULL);
    CHECK_STR(it_err(it_call(&D, "{op: metrics, by: month, from: %lld}", NOV1)), "bad_request");
    CHECK_STR(it_err(it_call(&D, "{op: metrics, by: month}")), "bad_request");
    CHECK_STR(it_err(it_call(&D, "{op: metrics, by: year, from: 0, to: 1}")), "bad_request");
    CHECK_STR(it_err(it_call(&D, "{op: metrics, by: week, from: %lld, to: %lld}", NOV1,
                             NOV1 + 121 * 7 * DAY)),
              "bad_request");
}

/* A change of close_date after the figures were read moves the deal. */
static void test_close_date_moves(void)
{
    close_on("f1", JAN5 + HOUR, T0 + 10 * DAY);
    const msgpack_object *r = it_call(
        &D, "{op: forecast, pipeline: sales, from: %lld, to: %lld, now: %lld}", DEC1, FEB1, NOW);
    const msgpack_object *periods = it_get(r, "periods");
    check_period(periods, 0, DEC1, JAN1, 3, 610, 357, 0, 0);
    check_period(periods, 1, JAN1, FEB1, 3, 600, 270, 0, 0);
    close_on("f1", DEC10 + 12 * HOUR, T0 + 11 * DAY);
}

static void test_after_restart(void)
{
    CHECK_INT(it_stop(&D), 0);
    CHECK(it_restart(&D));
    test_forecast_by_month();
    test_calibration();
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

static const df_test tests[] = {
    {"forecast_by_month", test_forecast_by_month},
    {"forecast_cut_window", test_forecast_cut_window},
    {"forecast_defaults_and_filters", test_forecast_defaults_and_filters},
    {"forecast_refusals", test_forecast_refusals},
    {"calibration", test_calibration},
    {"series", test_series},
    {"close_date_moves", test_close_date_moves},
    {"after_restart", test_after_restart},
    {NULL, NULL},
};

int main(int argc, char **argv)
{
    static const df_fixture fixture = {.setup = start_daemon, .teardown = stop_daemon};
    return df_test_main(argc, argv, tests, &fixture);
}

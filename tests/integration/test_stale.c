/* test_stale.c: rotting deals: the `stale` flag over simulated time, and
 * deal.stale notifications, once per stale spell, by the daemon's clock. */
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

#include "check.h"
#include "harness.h"

#define DAY                IT_DAY
#define RECEIVE_TIMEOUT_MS 20000

static it_daemon D;
static void *sub;

static int64_t wall_ms(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

/* `rot` (and `sim`, the same for deals whose notifications the test does
 * not follow): fresh rots after 1 day, instant after 0, slow never; won and lost
 * never count as stale. */
static void define(const char *pipeline)
{
    CHECK(it_append(&D,
                    "{id: '%s-def', type: pipeline, pipeline: %s, stages: ["
                    "{name: fresh, probability: 10, rot_days: 1},"
                    "{name: instant, probability: 20, rot_days: 0},"
                    "{name: slow, probability: 30},"
                    "{name: won, probability: 100, rot_days: 1, outcome: won},"
                    "{name: lost, probability: 0, rot_days: 1, outcome: lost}]}",
                    pipeline, pipeline) > 0);
}

/* The next deal.stale notification, checked against what is expected. */
static void expect_stale(const char *deal, const char *stage, int64_t since, int64_t idle_days)
{
    const char *topic = NULL;
    const msgpack_object *n = it_sub_recv(sub, RECEIVE_TIMEOUT_MS, &topic);
    CHECK(n != NULL);
    if (!n) {
        fprintf(stderr, "no deal.stale for %s within %d ms\n", deal, RECEIVE_TIMEOUT_MS);
        return;
    }
    char want_topic[128];
    snprintf(want_topic, sizeof(want_topic), "deal.stale.rot.%s", stage);
    static const char *const keys[] = {"deal", "pipeline", "stage", "since", "idle_days", NULL};
    CHECK(it_has_keys(n, keys));
    CHECK_STR(topic, want_topic);
    CHECK_STR(it_str(n, "deal"), deal);
    CHECK_STR(it_str(n, "pipeline"), "rot");
    CHECK_STR(it_str(n, "stage"), stage);
    CHECK_INT(it_int(n, "since"), since);
    CHECK_INT(it_int(n, "idle_days"), idle_days);
}

/* The stale flag as `now` moves: a spell begins when the deal has been
 * idle for rot_days, ends with an activity or a move, and begins again. */
static void test_stale_over_time(void)
{
    const int64_t t0 = IT_T0;
    CHECK(it_append(&D, "{id: st-1, type: stage, deal: t1, pipeline: sim, stage: fresh, at: %lld}",
                    (long long)t0) > 0);
    struct {
        int64_t now;
        int stale;
    } steps[] = {{t0, 0}, {t0 + DAY - 1, 0}, {t0 + DAY, 1}, {t0 + 5 * DAY, 1}};
    for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
        const msgpack_object *r =
            it_call(&D, "{op: deal, deal: t1, now: %lld}", (long long)steps[i].now);
        CHECK_INT(it_bool(it_get(r, "deal"), "stale"), steps[i].stale);
    }
    /* a call at 2d ends the spell; the next one begins at 3d */
    CHECK(it_append(&D, "{id: st-2, type: activity, deal: t1, kind: call, at: %lld}",
                    (long long)(t0 + 2 * DAY)) > 0);
    int64_t nows[] = {t0 + 2 * DAY, t0 + 3 * DAY - 1, t0 + 3 * DAY};
    int want[] = {0, 0, 1};
    for (int i = 0; i < 3; i++) {
        const msgpack_object *r =
            it_call(&D, "{op: deal, deal: t1, now: %lld}", (long long)nows[i]);
        CHECK_INT(it_bool(it_get(r, "deal"), "stale"), want[i]);
        r = it_call(&D, "{op: list, pipeline: sim, stale: true, now: %lld}", (long long)nows[i]);
        CHECK_INT(it_len(it_get(r, "deals")), want[i]);
    }
    /* a move to a stage that never rots ends it for good; won never rots */
    CHECK(it_append(&D, "{id: st-3, type: stage, deal: t1, stage: slow, at: %lld}",
                    (long long)(t0 + 4 * DAY)) > 0);
    const msgpack_object *r =
        it_call(&D, "{op: deal, deal: t1, now: %lld}", (long long)(t0 + 50 * DAY));
    CHECK_INT(it_bool(it_get(r, "deal"), "stale"), 0);
    CHECK(it_append(&D, "{id: st-4, type: stage, deal: t1, stage: won, at: %lld}",
                    (long long)(t0 + 5 * DAY)) > 0);
    r = it_call(&D, "{op: deal, deal: t1, now: %lld}", (long long)(t0 + 50 * DAY));
    CHECK_INT(it_bool(it_get(r, "deal"), "stale"), 0);
}

static void test_notifications(void)
{
    int64_t now = wall_ms();
    /* s1 moved to fresh two days ago: stale on arrival */
    int64_t s1_since = now - 2 * DAY;
    CHECK(it_append(&D, "{id: sn-1, type: stage, deal: s1, pipeline: rot, stage: fresh, at: %lld}",
                    (long long)s1_since) > 0);
    expect_stale("s1", "fresh", s1_since, 2);

    /* a change that keeps the spell: nothing; a call 1.5 days ago begins a new
     * spell, already stale */
    CHECK(it_append(&D, "{id: sn-2, type: update, deal: s1, amount: 5, at: %lld}",
                    (long long)(now - DAY)) > 0);
    CHECK(it_append(&D, "{id: sn-3, type: activity, deal: s1, kind: call, at: %lld}",
                    (long long)(now - DAY - DAY / 2)) > 0);
    expect_stale("s1", "fresh", now - DAY - DAY / 2, 1);

    /* closed deals and deals in stages that never rot: nothing */
    CHECK(it_append(&D,
                    "{id: sn-4, type: stage, deal: s2, pipeline: rot, stage: lost, at: %lld},"
                    "{id: sn-5, type: stage, deal: s3, pipeline: rot, stage: slow, at: %lld},"
                    "{id: sn-6, type: stage, deal: s4, pipeline: rot, stage: fresh, at: %lld},"
                    "{id: sn-7, type: stage, deal: s4, stage: won, at: %lld}",
                    (long long)(now - 9 * DAY), (long long)(now - 9 * DAY),
                    (long long)(now - 9 * DAY), (long long)(now - 8 * DAY)) > 0);
    /* a call now ends s1's spell */
    CHECK(it_append(&D, "{id: sn-8, type: activity, deal: s1, kind: email, at: %lld}",
                    (long long)now) > 0);

    /* s5 goes stale by the clock, a second from now, found by the timer */
    int64_t s5_since = wall_ms() + 1000;
    CHECK(it_append(&D,
                    "{id: sn-9, type: stage, deal: s5, pipeline: rot, stage: instant, at: %lld}",
                    (long long)s5_since) > 0);
    expect_stale("s5", "instant", s5_since, 0);
    /* the next notification is s6's: nothing came for s1..s4 meanwhile, and
     * s5 is not reported twice */
    int64_t s6_since = wall_ms() + 500;
    CHECK(it_append(&D,
                    "{id: sn-10, type: stage, deal: s6, pipeline: rot, stage: instant, at: %lld}",
                    (long long)s6_since) > 0);
    expect_stale("s6", "instant", s6_since, 0);
    CHECK(it_stat(&D, "stale_notifications") >= 4);
}

/* After a restart the daemon goes on from where it looked last: a deal that
 * went stale while it was down is reported, one reported before is not. */
static void test_restart(void)
{
    int64_t soon = wall_ms() + 1500;
    CHECK(it_append(&D,
                    "{id: sr-1, type: stage, deal: r1, pipeline: rot, stage: instant, at: %lld}",
                    (long long)soon) > 0);
    CHECK_INT(it_stop(&D), 0);
    /* poll the clock until r1 has gone stale */
    while (wall_ms() <= soon + 10)
        usleep(10000);
    CHECK(it_restart(&D));
    it_sub_close(sub);
    sub = it_sub_open(&D, "deal.stale.rot.");
    expect_stale("r1", "instant", soon, 0);
}

/* A rebuild (here after --compact dropped the derived state) folds every
 * deal again as if new: the spells reported before are not reported again,
 * so the next notification is that of a deal that goes stale after it. */
static void test_rebuild(void)
{
    char out[512];
    CHECK_INT(it_stop(&D), 0);
    CHECK_INT(it_run_tool(&D, "--compact", out, sizeof out), 0);
    CHECK(it_restart(&D));
    it_sub_close(sub);
    sub = it_sub_open(&D, "deal.stale.rot.");
    int64_t soon = wall_ms() + 500;
    CHECK(it_append(&D,
                    "{id: sb-1, type: stage, deal: b1, pipeline: rot, stage: instant, at: %lld}",
                    (long long)soon) > 0);
    expect_stale("b1", "instant", soon, 0);
}

static bool start_daemon(void)
{
    if (!it_setup(&D, NULL))
        return false;
    sub = it_sub_open(&D, "deal.stale.rot.");
    CHECK(sub != NULL);
    define("rot");
    define("sim");
    return true;
}

static void stop_daemon(void)
{
    it_sub_close(sub);
    it_teardown(&D);
}

static const df_test tests[] = {
    {"stale_over_time", test_stale_over_time},
    {"notifications", test_notifications},
    {"restart", test_restart},
    {"rebuild", test_rebuild},
    {NULL, NULL},
};

int main(int argc, char **argv)
{
    static const df_fixture fixture = {.setup = start_daemon, .teardown = stop_daemon};
    return df_test_main(argc, argv, tests, &fixture);
}

/* test_api.c: every api op of the contract, asserted on the real daemon's replies. */
#include <stdlib.h>
#include <string.h>

#include <zmq.h>

#include "check.h"
#include "harness.h"

#define T0         IT_T0
#define DAY        IT_DAY
#define HOUR       IT_HOUR
#define BULK_DEALS 250

static it_daemon D;

static const char *const DEAL_KEYS[] = {
    "deal",        "pipeline",      "stage",         "status",
    "stage_since", "days_in_stage", "last_activity", "days_since_activity",
    "created",     "amount",        "owner",         "name",
    "product",     "close_date",    "probability",   "activities",
    "version",     "time_in_stage", "stale",         "regressions",
    "reopened",    "pushes",        "source",        NULL,
};

static bool is_float(const msgpack_object *o)
{
    return o && (o->type == MSGPACK_OBJECT_FLOAT64 || o->type == MSGPACK_OBJECT_FLOAT32);
}

static bool is_uint(const msgpack_object *o)
{
    return o && o->type == MSGPACK_OBJECT_POSITIVE_INTEGER;
}

/* The deal object of a `deal` reply, after checking the reply is ok. */
static const msgpack_object *deal_at(const char *deal, int64_t now)
{
    const msgpack_object *r = it_call(&D, "{op: deal, deal: %s, now: %lld}", deal, (long long)now);
    if (!it_ok(r)) {
        fprintf(stderr, "deal %s: ", deal);
        msgpack_object_print(stderr, *r);
        fprintf(stderr, "\n");
    }
    return it_get(r, "deal");
}

static void test_ping(void)
{
    const msgpack_object *r = it_call(&D, "{op: ping}");
    CHECK(it_ok(r));
    CHECK_STR(it_str(r, "version"), "0.1.0");
    CHECK_INT(it_int(r, "last_seq"), 0);
    CHECK(is_uint(it_get(r, "last_seq")));
}

static void test_append_results(void)
{
    const msgpack_object *r = it_call(
        &D, "{op: append, events: [{id: ap-1, type: stage, deal: ap, stage: lead, at: %lld}]}", T0);
    CHECK(it_ok(r));
    CHECK_INT(it_len(it_get(r, "results")), 1);
    CHECK_RESULT(it_at(it_get(r, "results"), 0), 1, false);

    /* Duplicates inside one batch, and errors that do not stop the others. */
    r = it_call(&D,
                "{op: append, events: ["
                "{id: ap-2, type: stage, deal: ap, stage: qualified, at: %lld},"
                "{id: ap-2, type: stage, deal: ap, stage: qualified, at: %lld},"
                "{type: stage, deal: ap, stage: lead},"
                "{id: ap-x1, type: bogus, deal: ap},"
                "{id: ap-x2, type: stage, deal: ap, stage: nowhere},"
                "{id: ap-x3, type: stage, deal: ap, stage: lead, pipeline: nopipe},"
                "{id: ap-x4, type: activity, deal: ap, kind: call, seq: 9},"
                "{id: ap-x5, type: activity, deal: ap, kind: call, recv: 9},"
                "{id: ap-x6, type: activity, deal: ap},"
                "{id: ap-x7, type: stage, stage: lead},"
                "{id: '', type: activity, deal: ap, kind: call},"
                "{id: ap-x8, type: activity, deal: ap, kind: call, at: 'yesterday'},"
                "{id: ap-x9, type: stage, deal: ap, stage: lead, amount: 'lots'},"
                "{id: ap-3, type: activity, deal: ap, kind: note, at: %lld}"
                "]}",
                T0 + DAY, T0 + DAY, T0 + 2 * DAY);
    CHECK(it_ok(r));
    const msgpack_object *results = it_get(r, "results");
    CHECK_INT(it_len(results), 14);
    CHECK_RESULT(it_at(results, 0), 2, false);
    CHECK_RESULT(it_at(results, 1), 2, true);
    CHECK_RESULT_ERR(it_at(results, 2), "bad_request");
    CHECK_RESULT_ERR(it_at(results, 3), "bad_request");
    CHECK_RESULT_ERR(it_at(results, 4), "unknown_stage");
    CHECK_RESULT_ERR(it_at(results, 5), "unknown_pipeline");
    CHECK_RESULT_ERR(it_at(results, 6), "bad_request");
    CHECK_RESULT_ERR(it_at(results, 7), "bad_request");
    CHECK_RESULT_ERR(it_at(results, 8), "bad_request");
    CHECK_RESULT_ERR(it_at(results, 9), "bad_request");
    CHECK_RESULT_ERR(it_at(results, 10), "bad_request");
    CHECK_RESULT_ERR(it_at(results, 11), "bad_request");
    CHECK_RESULT_ERR(it_at(results, 12), "bad_request");
    CHECK_RESULT(it_at(results, 13), 3, false);

    /* A later batch: duplicates answer the original seq, whatever they carry now. */
    r = it_call(&D,
                "{op: append, events: ["
                "{id: ap-1, type: stage, deal: ap, stage: won, at: %lld},"
                "{id: ap-2, type: stage, deal: ap, stage: qualified, at: %lld},"
                "{id: ap-x2, type: activity, deal: ap, kind: call, at: %lld}"
                "]}",
                T0 + 5 * DAY, T0 + DAY, T0 + 3 * DAY);
    results = it_get(r, "results");
    CHECK_INT(it_len(results), 3);
    CHECK_RESULT(it_at(results, 0), 1, true);
    CHECK_RESULT(it_at(results, 1), 2, true);
    /* an id whose event was refused is still free */
    CHECK_RESULT(it_at(results, 2), 4, false);

    const msgpack_object *deal = deal_at("ap", T0 + 6 * DAY);
    CHECK_STR(it_str(deal, "stage"), "qualified");
    CHECK_INT(it_int(deal, "version"), 4);
    CHECK_INT(it_int(deal, "activities"), 2);
    CHECK_INT(it_last_seq(&D), 4);

    /* Request-level errors record nothing. */
    CHECK_ERR(it_call(&D, "{op: append}"), "bad_request");
    CHECK_ERR(it_call(&D, "{op: append, events: []}"), "bad_request");
    CHECK_ERR(it_call(&D, "{op: append, events: 'x'}"), "bad_request");
    it_buf many = {0};
    for (int i = 0; i < 10001; i++)
        it_buf_add(&many, "%s{id: big-%d, type: activity, deal: big, kind: k}", i ? "," : "", i);
    CHECK_ERR(it_call(&D, "{op: append, events: [%s]}", it_buf_get(&many)), "bad_request");
    it_buf_free(&many);
    CHECK_INT(it_last_seq(&D), 4);
    CHECK_ERR(it_call(&D, "{op: deal, deal: big}"), "not_found");
}

static void test_expect(void)
{
    int64_t first =
        it_append(&D, "{id: ex-1, type: stage, deal: ex, stage: lead, at: %lld, expect: 0}", T0);
    CHECK(first > 0);
    const msgpack_object *r =
        it_call(&D,
                "{op: append, events: [{id: ex-2, type: activity, deal: ex, kind: call, expect: 0},"
                "{id: ex-3, type: activity, deal: ex, kind: call, expect: 5},"
                "{id: ex-4, type: activity, deal: ex, kind: call, at: %lld, expect: 1},"
                "{id: ex-5, type: activity, deal: ex, kind: call, expect: 1},"
                "{id: ex-1, type: stage, deal: ex, stage: lead, at: %lld, expect: 0},"
                "{id: ex-6, type: stage, deal: ex2, stage: lead, at: %lld, expect: 0},"
                "{id: ex-7, type: activity, deal: ex2, kind: call, at: %lld, expect: 1},"
                "{id: ex-8, type: activity, deal: ex2, kind: call, expect: -1}]}",
                T0 + 1, T0, T0, T0 + 1);
    const msgpack_object *results = it_get(r, "results");
    CHECK_INT(it_len(results), 8);
    CHECK_RESULT_ERR(it_at(results, 0), "conflict");
    CHECK_RESULT_ERR(it_at(results, 1), "conflict");
    CHECK_RESULT(it_at(results, 2), first + 1, false);
    CHECK_RESULT_ERR(it_at(results, 3), "conflict");
    /* a duplicate id wins over expect */
    CHECK_RESULT(it_at(results, 4), first, true);
    /* within one batch, the version before an event counts the ones before it */
    CHECK_RESULT(it_at(results, 5), first + 2, false);
    CHECK_RESULT(it_at(results, 6), first + 3, false);
    CHECK_RESULT_ERR(it_at(results, 7), "bad_request");

    /* an id refused for a conflict is still free */
    int64_t again = it_append(
        &D, "{id: ex-2, type: activity, deal: ex, kind: call, at: %lld, expect: 2}", T0 + 2);
    CHECK_INT(again, first + 4);
    CHECK_INT(it_int(deal_at("ex", T0 + DAY), "version"), 3);

    /* expect is checked, then stripped from the recorded event */
    r = it_call(&D, "{op: history, deal: ex}");
    const msgpack_object *events = it_get(r, "events");
    CHECK_INT(it_len(events), 3);
    for (uint32_t i = 0; i < 3; i++)
        CHECK(it_get(it_at(events, i), "expect") == NULL);
}

/* `source` is set by stage and update events like owner; list filters on
 * product and source */
static void test_source(void)
{
    CHECK(it_append(&D,
                    "{id: src-1, type: stage, deal: src-a, stage: lead, at: %lld, source: web},"
                    "{id: src-2, type: update, deal: src-a, at: %lld, product: Gadgets},"
                    "{id: src-3, type: stage, deal: src-b, stage: lead, at: %lld, source: web},"
                    "{id: src-4, type: update, deal: src-b, at: %lld, source: referral, "
                    "product: Gadgets}",
                    T0, T0 + HOUR, T0, T0 + HOUR) > 0);
    const msgpack_object *deal = deal_at("src-a", T0 + DAY);
    CHECK_STR(it_str(deal, "source"), "web");
    CHECK_STR(it_str(deal_at("src-b", T0 + DAY), "source"), "referral");
    const msgpack_object *r = it_call(&D, "{op: list, product: Gadgets, source: web}");
    CHECK(it_ok(r));
    CHECK_INT(it_len(it_get(r, "deals")), 1);
    CHECK_STR(it_str(it_at(it_get(r, "deals"), 0), "deal"), "src-a");
    r = it_call(&D, "{op: list, product: Gadgets}");
    CHECK_INT(it_len(it_get(r, "deals")), 2);
    r = it_call(&D, "{op: list, source: nowhere}");
    CHECK_INT(it_len(it_get(r, "deals")), 0);
    CHECK_ERR(it_call(&D, "{op: list, source: 5}"), "bad_request");

    r = it_call(&D,
                "{op: append, events: ["
                "{id: src-x1, type: update, deal: src-a, source: ''},"
                "{id: src-x2, type: stage, deal: src-a, stage: lead, source: 7},"
                "{id: src-5, type: update, deal: src-a, source: nil, at: %lld}]}",
                T0 + 2 * HOUR);
    const msgpack_object *results = it_get(r, "results");
    CHECK_RESULT_ERR(it_at(results, 0), "bad_request");
    CHECK_RESULT_ERR(it_at(results, 1), "bad_request");
    CHECK(it_is_nil(deal_at("src-a", T0 + DAY), "source"));
}

static void test_deal_object(void)
{
    CHECK(it_append(&D,
                    "{id: acme-1, type: stage, deal: acme, stage: lead, at: %lld, amount: 1000, "
                    "owner: alice},"
                    "{id: acme-2, type: update, deal: acme, at: %lld, name: 'Acme Corp', product: "
                    "Widgets, close_date: %lld},"
                    "{id: acme-3, type: activity, deal: acme, kind: call, actor: bob, at: %lld}",
                    T0, T0 + HOUR, T0 + 30 * DAY, T0 + 2 * DAY) > 0);
    CHECK(it_append(&D,
                    "{id: acme-4, type: stage, deal: acme, stage: qualified, at: %lld, amount: "
                    "2000},"
                    "{id: acme-5, type: activity, deal: acme, kind: email, at: %lld},"
                    "{id: acme-6, type: stage, deal: acme, stage: qualified, at: %lld, amount: "
                    "2500.5},"
                    "{id: acme-7, type: update, deal: acme, owner: carol, at: %lld}",
                    T0 + 3 * DAY, T0 + 4 * DAY, T0 + 5 * DAY, T0 + 6 * DAY) > 0);

    int64_t now = T0 + 10 * DAY + 5 * HOUR;
    const msgpack_object *deal = deal_at("acme", now);
    CHECK(it_has_keys(deal, DEAL_KEYS));
    CHECK_STR(it_str(deal, "deal"), "acme");
    CHECK_STR(it_str(deal, "pipeline"), "default");
    CHECK_STR(it_str(deal, "stage"), "qualified");
    CHECK_STR(it_str(deal, "status"), "open");
    /* the repeated stage event at T0+5d does not reset stage_since */
    CHECK_INT(it_int(deal, "stage_since"), T0 + 3 * DAY);
    CHECK_INT(it_int(deal, "days_in_stage"), 7);
    CHECK_INT(it_int(deal, "last_activity"), T0 + 4 * DAY);
    CHECK_INT(it_int(deal, "days_since_activity"), 6);
    CHECK_INT(it_int(deal, "created"), T0);
    CHECK(is_float(it_get(deal, "amount")));
    CHECK_NUM(it_num(deal, "amount"), 2500.5);
    CHECK_STR(it_str(deal, "owner"), "carol");
    CHECK_STR(it_str(deal, "name"), "Acme Corp");
    CHECK_STR(it_str(deal, "product"), "Widgets");
    CHECK_INT(it_int(deal, "close_date"), T0 + 30 * DAY);
    CHECK_INT(it_int(deal, "probability"), 20);
    CHECK_INT(it_int(deal, "activities"), 2);
    CHECK_INT(it_int(deal, "version"), 7);
    const msgpack_object *time_in_stage = it_get(deal, "time_in_stage");
    CHECK_INT(it_len(time_in_stage), 2);
    CHECK_INT(it_int(time_in_stage, "lead"), 3 * DAY);
    CHECK_INT(it_int(time_in_stage, "qualified"), 7 * DAY + 5 * HOUR);
    CHECK_INT(it_bool(deal, "stale"), 0);

    /* never below 0 when now is before the stage and the activity */
    deal = deal_at("acme", T0 + DAY);
    CHECK_INT(it_int(deal, "days_in_stage"), 0);
    CHECK_INT(it_int(deal, "days_since_activity"), 0);

    /* without now: the daemon's clock */
    int64_t before = it_wall_ms();
    deal = it_get(it_call(&D, "{op: deal, deal: acme}"), "deal");
    int64_t after = it_wall_ms();
    int64_t days = it_int(deal, "days_in_stage");
    CHECK(days >= (before - (T0 + 3 * DAY)) / DAY && days <= (after - (T0 + 3 * DAY)) / DAY);

    /* as_of: only events at or before it count; now defaults to it */
    const msgpack_object *r =
        it_call(&D, "{op: deal, deal: acme, as_of: %lld}", (long long)(T0 + 2 * DAY));
    CHECK(it_ok(r));
    deal = it_get(r, "deal");
    CHECK(it_has_keys(deal, DEAL_KEYS));
    CHECK_STR(it_str(deal, "stage"), "lead");
    CHECK_INT(it_int(deal, "stage_since"), T0);
    CHECK_INT(it_int(deal, "days_in_stage"), 2);
    CHECK_INT(it_int(deal, "probability"), 10);
    CHECK_INT(it_int(deal, "version"), 3);
    CHECK_INT(it_int(deal, "activities"), 1);
    CHECK_INT(it_int(deal, "last_activity"), T0 + 2 * DAY);
    CHECK_INT(it_int(deal, "days_since_activity"), 0);
    CHECK(it_get(deal, "amount") &&
          it_get(deal, "amount")->type == MSGPACK_OBJECT_POSITIVE_INTEGER);
    CHECK_INT(it_int(deal, "amount"), 1000);
    CHECK_STR(it_str(deal, "owner"), "alice");
    CHECK_STR(it_str(deal, "name"), "Acme Corp");
    CHECK(it_same(it_get(deal, "time_in_stage"), "{lead: %lld}", 2 * DAY));
    r = it_call(&D, "{op: deal, deal: acme, as_of: %lld, now: %lld}", T0 + 2 * DAY,
                T0 + 3 * DAY + 1);
    CHECK_INT(it_int(it_get(r, "deal"), "days_in_stage"), 3);
    CHECK_ERR(it_call(&D, "{op: deal, deal: acme, as_of: %lld}", T0 - 1), "not_found");
    CHECK_ERR(it_call(&D, "{op: deal, deal: no-such-deal}"), "not_found");
    CHECK_ERR(it_call(&D, "{op: deal}"), "bad_request");
    CHECK_ERR(it_call(&D, "{op: deal, deal: acme, now: 'soon'}"), "bad_request");

    /* before the first stage event */
    CHECK(it_append(&D,
                    "{id: pre-1, type: update, deal: pre, at: %lld, name: Pre, amount: 5},"
                    "{id: pre-2, type: activity, deal: pre, kind: call, at: %lld}",
                    T0, T0 + DAY) > 0);
    deal = deal_at("pre", T0 + 2 * DAY);
    CHECK(it_has_keys(deal, DEAL_KEYS));
    CHECK(it_is_nil(deal, "stage"));
    CHECK_STR(it_str(deal, "status"), "open");
    CHECK(it_is_nil(deal, "probability"));
    CHECK(it_is_nil(deal, "stage_since"));
    CHECK(it_is_nil(deal, "days_in_stage"));
    CHECK(it_is_nil(deal, "owner"));
    CHECK(it_is_nil(deal, "product"));
    CHECK(it_is_nil(deal, "close_date"));
    CHECK_STR(it_str(deal, "pipeline"), "default");
    CHECK_INT(it_int(deal, "amount"), 5);
    CHECK_INT(it_int(deal, "created"), T0);
    CHECK_INT(it_int(deal, "last_activity"), T0 + DAY);
    CHECK_INT(it_int(deal, "days_since_activity"), 1);
    CHECK_INT(it_len(it_get(deal, "time_in_stage")), 0);
    CHECK_INT(it_bool(deal, "stale"), 0);
    CHECK_INT(it_int(deal, "version"), 2);

    /* no activity */
    deal = deal_at("ap", T0 + 6 * DAY);
    CHECK_INT(it_int(deal, "last_activity"), T0 + 3 * DAY);
    CHECK(it_append(&D, "{id: na-1, type: stage, deal: na, stage: meeting, at: %lld}", T0) > 0);
    deal = deal_at("na", T0 + DAY);
    CHECK(it_is_nil(deal, "last_activity"));
    CHECK(it_is_nil(deal, "days_since_activity"));
    CHECK_INT(it_int(deal, "probability"), 40);
}

static void test_late_events(void)
{
    CHECK(it_append(&D, "{id: late-1, type: stage, deal: late, stage: lead, at: %lld}", T0) > 0);
    CHECK(it_append(&D,
                    "{id: late-2, type: stage, deal: late, stage: proposal, at: %lld, amount: "
                    "300}",
                    T0 + 4 * DAY) > 0);
    /* arrive after the proposal, happened before it */
    CHECK(it_append(&D, "{id: late-3, type: stage, deal: late, stage: qualified, at: %lld}",
                    T0 + 2 * DAY) > 0);
    CHECK(it_append(&D, "{id: late-4, type: update, deal: late, amount: 5, at: %lld}", T0 + DAY) >
          0);
    CHECK(it_append(&D, "{id: late-5, type: activity, deal: late, kind: note, at: %lld}",
                    T0 - DAY) > 0);

    const msgpack_object *deal = deal_at("late", T0 + 5 * DAY);
    CHECK_STR(it_str(deal, "stage"), "proposal");
    CHECK_INT(it_int(deal, "stage_since"), T0 + 4 * DAY);
    CHECK_INT(it_int(deal, "days_in_stage"), 1);
    CHECK_INT(it_int(deal, "probability"), 60);
    CHECK_INT(it_int(deal, "amount"), 300);
    CHECK_INT(it_int(deal, "created"), T0 - DAY);
    CHECK_INT(it_int(deal, "last_activity"), T0 - DAY);
    CHECK_INT(it_int(deal, "days_since_activity"), 6);
    CHECK_INT(it_int(deal, "version"), 5);
    const msgpack_object *time_in_stage = it_get(deal, "time_in_stage");
    CHECK_INT(it_len(time_in_stage), 3);
    CHECK_INT(it_int(time_in_stage, "lead"), 2 * DAY);
    CHECK_INT(it_int(time_in_stage, "qualified"), 2 * DAY);
    CHECK_INT(it_int(time_in_stage, "proposal"), DAY);

    /* as_of between the late events: the state as it was then */
    const msgpack_object *r = it_call(&D, "{op: deal, deal: late, as_of: %lld}", T0 + 3 * DAY);
    deal = it_get(r, "deal");
    CHECK_STR(it_str(deal, "stage"), "qualified");
    CHECK_INT(it_int(deal, "stage_since"), T0 + 2 * DAY);
    CHECK_INT(it_int(deal, "amount"), 5);

    /* the same `at`: seq decides */
    CHECK(it_append(&D,
                    "{id: tie-1, type: stage, deal: tie, stage: proposal, at: %lld},"
                    "{id: tie-2, type: stage, deal: tie, stage: lead, at: %lld}",
                    T0, T0) > 0);
    CHECK_STR(it_str(deal_at("tie", T0 + DAY), "stage"), "lead");
}

static void test_pipelines_and_stale(void)
{
    CHECK(it_append(&D, "{id: pl-sales, type: pipeline, pipeline: sales, stages: ["
                        "{name: new, probability: 10, rot_days: 3},"
                        "{name: demo, probability: 50, rot_days: 2},"
                        "{name: closed, probability: 100, outcome: won},"
                        "{name: dead, probability: 0, outcome: lost, rot_days: 1}]}") > 0);
    CHECK(it_append(&D,
                    "{id: sa-1, type: stage, deal: s-a, pipeline: sales, stage: new, at: %lld},"
                    "{id: sb-1, type: stage, deal: s-b, pipeline: sales, stage: new, at: %lld},"
                    "{id: sb-2, type: activity, deal: s-b, kind: call, at: %lld},"
                    "{id: sc-1, type: stage, deal: s-c, pipeline: sales, stage: closed, at: %lld},"
                    "{id: sd-1, type: stage, deal: s-d, pipeline: sales, stage: demo, at: %lld},"
                    "{id: se-1, type: stage, deal: s-e, pipeline: sales, stage: dead, at: %lld}",
                    T0, T0, T0 + 2 * DAY, T0, T0 + DAY, T0) > 0);
    int64_t now = T0 + 3 * DAY;
    const msgpack_object *deal = deal_at("s-a", now);
    CHECK_STR(it_str(deal, "pipeline"), "sales");
    CHECK_INT(it_int(deal, "probability"), 10);
    CHECK_INT(it_bool(deal, "stale"), 1);
    CHECK_INT(it_bool(deal_at("s-a", now - 1), "stale"), 0);
    CHECK_INT(it_bool(deal_at("s-b", now), "stale"), 0);
    CHECK_INT(it_bool(deal_at("s-b", T0 + 5 * DAY), "stale"), 1);
    deal = deal_at("s-c", now);
    CHECK_STR(it_str(deal, "status"), "won");
    CHECK_INT(it_int(deal, "probability"), 100);
    CHECK_INT(it_bool(deal, "stale"), 0);
    deal = deal_at("s-d", now);
    CHECK_INT(it_bool(deal, "stale"), 1);
    CHECK_INT(it_int(deal, "probability"), 50);
    deal = deal_at("s-e", now);
    CHECK_STR(it_str(deal, "status"), "lost");
    CHECK_INT(it_bool(deal, "stale"), 0);
    /* stages of the default pipeline have no rot_days */
    CHECK_INT(it_bool(deal_at("na", T0 + 400 * DAY), "stale"), 0);

    /* a deal moves between pipelines; stages are looked up where the event says */
    CHECK(it_append(&D,
                    "{id: mv-1, type: stage, deal: mover, stage: lead, at: %lld},"
                    "{id: mv-2, type: stage, deal: mover, pipeline: sales, stage: demo, at: %lld},"
                    "{id: mv-3, type: activity, deal: mover, kind: call, at: %lld}",
                    T0, T0 + DAY, T0 + 2 * DAY) > 0);
    deal = deal_at("mover", now);
    CHECK_STR(it_str(deal, "pipeline"), "sales");
    CHECK_STR(it_str(deal, "stage"), "demo");
    CHECK_INT(it_int(deal, "probability"), 50);
    const msgpack_object *r =
        it_call(&D,
                "{op: append, events: [{id: mv-4, type: stage, deal: mover, stage: qualified},"
                "{id: mv-5, type: stage, deal: brand-new, stage: new},"
                "{id: mv-6, type: stage, deal: mover, stage: new, at: %lld}]}",
                T0 + 2 * DAY);
    CHECK_RESULT_ERR(it_at(it_get(r, "results"), 0), "unknown_stage");
    CHECK_RESULT_ERR(it_at(it_get(r, "results"), 1), "unknown_stage");
    CHECK(it_int(it_at(it_get(r, "results"), 2), "seq") > 0);

    /* bad pipeline definitions */
    r = it_call(&D, "{op: append, events: ["
                    "{id: pl-bad1, type: pipeline, pipeline: p1},"
                    "{id: pl-bad2, type: pipeline, pipeline: p2, stages: [{name: a}]},"
                    "{id: pl-bad3, type: pipeline, pipeline: p3, stages: [{name: a, probability: "
                    "101}]},"
                    "{id: pl-bad4, type: pipeline, stages: [{name: a, probability: 1}]},"
                    "{id: pl-bad5, type: pipeline, pipeline: p5, stages: [{name: a, probability: "
                    "1, outcome: maybe}]}]}");
    for (uint32_t i = 0; i < 5; i++)
        CHECK_RESULT_ERR(it_at(it_get(r, "results"), i), "bad_request");
}

static void test_history(void)
{
    int64_t first = it_append(
        &D, "{id: h-1, type: stage, deal: hist, stage: lead, at: %lld, reason: none_yet}", T0);
    int64_t before = it_wall_ms();
    int64_t second = it_append(&D, "{id: h-2, type: activity, deal: hist, kind: call, actor: bob, "
                                   "note: 'hello there', x_extra: {nested: [1, 2.5, nil, true, "
                                   "-7], s: 'x'}, tags: [a, b]}");
    int64_t after = it_wall_ms();
    const msgpack_object *r =
        it_call(&D,
                "{op: append, events: [{id: h-3, type: activity, deal: hist, kind: k, at: %lld},"
                "{id: h-other, type: activity, deal: other, kind: k, at: %lld},"
                "{id: h-4, type: activity, deal: hist, kind: k, at: %lld},"
                "{id: h-5, type: activity, deal: hist, kind: k, at: %lld},"
                "{id: h-6, type: activity, deal: hist, kind: k, at: %lld}]}",
                T0 + 1, T0 + 1, T0 + 2, T0 + 3, T0 - 5);
    CHECK(it_ok(r));

    r = it_call(&D, "{op: history, deal: hist}");
    CHECK(it_ok(r));
    const msgpack_object *events = it_get(r, "events");
    CHECK_INT(it_len(events), 6);
    static const char *const ids[] = {"h-1", "h-2", "h-3", "h-4", "h-5", "h-6"};
    int64_t previous = 0;
    for (uint32_t i = 0; i < 6; i++) {
        const msgpack_object *event = it_at(events, i);
        CHECK_STR(it_str(event, "id"), ids[i]);
        CHECK(it_int(event, "seq") > previous);
        previous = it_int(event, "seq");
        CHECK(it_int(event, "recv") != IT_NONE);
    }
    const msgpack_object *e1 = it_at(events, 0);
    static const char *const keys1[] = {"id",     "type", "deal", "stage", "at",
                                        "reason", "seq",  "recv", NULL};
    CHECK(it_has_keys(e1, keys1));
    CHECK_INT(it_int(e1, "seq"), first);
    CHECK_INT(it_int(e1, "at"), T0);
    CHECK_STR(it_str(e1, "reason"), "none_yet");

    const msgpack_object *e2 = it_at(events, 1);
    static const char *const keys2[] = {"id",      "type", "deal", "kind", "actor", "note",
                                        "x_extra", "tags", "seq",  "recv", "at",    NULL};
    CHECK(it_has_keys(e2, keys2));
    CHECK_INT(it_int(e2, "seq"), second);
    CHECK_STR(it_str(e2, "note"), "hello there");
    CHECK(it_same(it_get(e2, "x_extra"), "{nested: [1, 2.5, nil, true, -7], s: 'x'}"));
    CHECK(it_same(it_get(e2, "tags"), "[a, b]"));
    int64_t recv = it_int(e2, "recv");
    CHECK_INT(it_int(e2, "at"), recv);
    CHECK(recv >= before && recv <= after);

    /* replay gives the same recorded event */
    r = it_call(&D, "{op: replay, after: %lld, limit: 1}", (long long)(second - 1));
    CHECK(it_equal(it_at(it_get(r, "events"), 0), e2));

    /* after and limit */
    r = it_call(&D, "{op: history, deal: hist, after: %lld, limit: 2}", (long long)second);
    events = it_get(r, "events");
    CHECK_INT(it_len(events), 2);
    CHECK_STR(it_str(it_at(events, 0), "id"), "h-3");
    CHECK_STR(it_str(it_at(events, 1), "id"), "h-4");
    r = it_call(&D, "{op: history, deal: hist, after: %lld}",
                (long long)it_int(it_at(events, 1), "seq"));
    CHECK_INT(it_len(it_get(r, "events")), 2);
    CHECK_ERR(it_call(&D, "{op: history, deal: hist, limit: 10001}"), "bad_request");
    CHECK_ERR(it_call(&D, "{op: history, deal: nobody}"), "not_found");
    CHECK_ERR(it_call(&D, "{op: history}"), "bad_request");
}

static const char *const BULK_STAGES[] = {"a", "b", "w", "l"};

static bool bulk_stale(int i)
{
    return i % 4 == 0 && i % 8 != 0;
}

/* Appends the bulk pipeline's deals: stage by i % 4, owner by parity, an
 * activity after `now` on every eighth. */
static void make_bulk_deals(void)
{
    CHECK(it_append(&D, "{id: pl-bulk, type: pipeline, pipeline: bulk, stages: ["
                        "{name: a, probability: 10, rot_days: 1}, {name: b, probability: 50},"
                        "{name: w, probability: 100, outcome: won},"
                        "{name: l, probability: 0, outcome: lost}]}") > 0);
    it_buf events = {0};
    for (int i = 0; i < BULK_DEALS; i++) {
        it_buf_add(&events,
                   "%s{id: bulk-e%03d, type: stage, deal: bulk-%03d, pipeline: bulk, stage: %s, "
                   "owner: %s, amount: %d, at: %lld}",
                   i ? "," : "", i, i, BULK_STAGES[i % 4], i % 2 ? "ben" : "ann", i,
                   T0 + i * 1000LL);
        if (i % 8 == 0)
            it_buf_add(&events,
                       ",{id: bulk-a%03d, type: activity, deal: bulk-%03d, kind: call, "
                       "at: %lld}",
                       i, i, T0 + 5 * DAY);
    }
    const msgpack_object *r = it_call(&D, "{op: append, events: [%s]}", it_buf_get(&events));
    it_buf_free(&events);
    const msgpack_object *results = it_get(r, "results");
    CHECK_INT(it_len(results), BULK_DEALS + BULK_DEALS / 8 + 1);
    bool all = true;
    for (long i = 0; i < it_len(results); i++)
        all = all && it_int(it_at(results, (uint32_t)i), "seq") > 0;
    CHECK(all);
}

/* Lists with the filters, paging with the limit; returns the number of
 * deals seen, marking bulk deals in seen[] and checking the order. */
static int list_all(const char *filters, int limit, int seen[BULK_DEALS], int *pages)
{
    int total = 0;
    char cursor[600] = "nil";
    char previous[200] = "";
    *pages = 0;
    for (int page = 0; page < 1000; page++) {
        const msgpack_object *r =
            it_call(&D, "{op: list, now: %lld, limit: %d, cursor: %s %s %s}", T0 + 3 * DAY, limit,
                    cursor, filters[0] ? "," : "", filters);
        if (!it_ok(r)) {
            fprintf(stderr, "list {%s} page %d: ", filters, page);
            msgpack_object_print(stderr, *r);
            fprintf(stderr, "\n");
            CHECK(it_ok(r));
            break;
        }
        (*pages)++;
        const msgpack_object *deals = it_get(r, "deals");
        CHECK(it_len(deals) >= 0 && it_len(deals) <= limit);
        for (long i = 0; i < it_len(deals); i++) {
            const msgpack_object *deal = it_at(deals, (uint32_t)i);
            const char *id = it_str(deal, "deal");
            if (!id) {
                CHECK(id != NULL);
                continue;
            }
            CHECK(it_has_keys(deal, DEAL_KEYS));
            /* ordered by id, bytewise */
            if (strcmp(previous, id) >= 0)
                fprintf(stderr, "list order: %s after %s\n", id, previous);
            CHECK(strcmp(previous, id) < 0);
            snprintf(previous, sizeof previous, "%s", id);
            int n;
            if (sscanf(id, "bulk-%d", &n) == 1 && n >= 0 && n < BULK_DEALS)
                seen[n]++;
            total++;
        }
        const msgpack_object *next = it_get(r, "cursor");
        if (!next || next->type == MSGPACK_OBJECT_NIL) {
            CHECK(next != NULL);
            break;
        }
        CHECK(next->type == MSGPACK_OBJECT_STR);
        const char *text = it_text(next);
        if (!text || strlen(text) > 500 || strchr(text, '\'')) {
            CHECK(!"cursor is a short str");
            break;
        }
        snprintf(cursor, sizeof cursor, "'%s'", text);
        it_release();
    }
    return total;
}

typedef bool (*bulk_filter)(int i);

static bool in_stage_a(int i)
{
    return i % 4 == 0;
}
static bool in_stage_b(int i)
{
    return i % 4 == 1;
}
static bool owned_by_ann(int i)
{
    return i % 2 == 0;
}
static bool is_won(int i)
{
    return i % 4 == 2;
}
static bool is_lost(int i)
{
    return i % 4 == 3;
}
static bool is_open(int i)
{
    return i % 4 < 2;
}
static bool not_stale(int i)
{
    return !bulk_stale(i);
}
static bool idle_two_days(int i)
{
    return i % 8 != 0;
}
static bool every(int i)
{
    (void)i;
    return true;
}
static bool none(int i)
{
    (void)i;
    return false;
}

static void test_list(void)
{
    make_bulk_deals();

    int seen[BULK_DEALS];
    int pages = 0;
    memset(seen, 0, sizeof seen);
    int total = list_all("pipeline: bulk", 100, seen, &pages);
    CHECK_INT(total, BULK_DEALS);
    CHECK(pages >= 3);
    int once = 0;
    for (int i = 0; i < BULK_DEALS; i++)
        once += seen[i] == 1;
    CHECK_INT(once, BULK_DEALS);
    const msgpack_object *r = it_call(&D, "{op: list, pipeline: bulk, limit: 100}");
    CHECK_INT(it_len(it_get(r, "deals")), 100);
    r = it_call(&D, "{op: list, pipeline: bulk}");
    CHECK_INT(it_len(it_get(r, "deals")), 100);
    r = it_call(&D, "{op: list, pipeline: bulk, limit: 10000}");
    CHECK_INT(it_len(it_get(r, "deals")), BULK_DEALS);
    CHECK(it_is_nil(r, "cursor"));

    /* every deal, no filter: as many as stats counts */
    memset(seen, 0, sizeof seen);
    total = list_all("", 100, seen, &pages);
    CHECK_INT(total, it_stat(&D, "deals"));
    once = 0;
    for (int i = 0; i < BULK_DEALS; i++)
        once += seen[i] == 1;
    CHECK_INT(once, BULK_DEALS);

    static const struct {
        const char *filters;
        bulk_filter expected;
    } cases[] = {
        {"pipeline: bulk, stage: a", in_stage_a},
        {"stage: b", in_stage_b},
        {"pipeline: bulk, owner: ann", owned_by_ann},
        {"pipeline: bulk, status: won", is_won},
        {"pipeline: bulk, status: lost", is_lost},
        {"pipeline: bulk, status: open", is_open},
        {"pipeline: bulk, stale: true", bulk_stale},
        {"pipeline: bulk, stale: false", not_stale},
        {"pipeline: bulk, idle_days: 2", idle_two_days},
        {"pipeline: bulk, idle_days: 4", none},
        {"pipeline: bulk, stage: a, owner: ann", in_stage_a},
        {"pipeline: bulk, status: won, owner: ben", none},
        {"pipeline: bulk, stage: nope", none},
        {"pipeline: nosuchpipeline", none},
        {"owner: nobody", none},
        {"pipeline: bulk", every},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        memset(seen, 0, sizeof seen);
        int count = list_all(cases[c].filters, 37, seen, &pages);
        int expected = 0, right = 0;
        for (int i = 0; i < BULK_DEALS; i++) {
            expected += cases[c].expected(i);
            right += seen[i] == (cases[c].expected(i) ? 1 : 0);
        }
        if (count != expected || right != BULK_DEALS)
            fprintf(stderr, "list {%s}: %d deals, expected %d\n", cases[c].filters, count,
                    expected);
        CHECK_INT(count, expected);
        CHECK_INT(right, BULK_DEALS);
    }

    /* a status that is none of the three is a mistake worth saying, not an empty page */
    r = it_call(&D, "{op: list, pipeline: bulk, status: bogus}");
    CHECK_STR(it_err(r), "bad_request");

    /* idle_days falls back on created for a deal with no stage and no activity */
    CHECK(it_append(&D, "{id: uo-1, type: update, deal: uo, owner: uo_owner, at: %lld}", T0) > 0);
    r = it_call(&D, "{op: list, owner: uo_owner, idle_days: 2, now: %lld}", T0 + 3 * DAY);
    CHECK_INT(it_len(it_get(r, "deals")), 1);
    r = it_call(&D, "{op: list, owner: uo_owner, idle_days: 4, now: %lld}", T0 + 3 * DAY);
    CHECK_INT(it_len(it_get(r, "deals")), 0);
    CHECK(it_is_nil(r, "cursor"));

    /* a listed deal is the same object `deal` answers */
    r = it_call(&D, "{op: list, pipeline: bulk, owner: ben, limit: 1, now: %lld}", T0 + 3 * DAY);
    const msgpack_object *listed = it_at(it_get(r, "deals"), 0);
    CHECK_STR(it_str(listed, "deal"), "bulk-001");
    CHECK(it_equal(listed, deal_at("bulk-001", T0 + 3 * DAY)));

    CHECK_ERR(it_call(&D, "{op: list, limit: 10001}"), "bad_request");
    CHECK_ERR(it_call(&D, "{op: list, stale: 3}"), "bad_request");
    CHECK_ERR(it_call(&D, "{op: list, pipeline: 5}"), "bad_request");
}

static void check_board_stage(const msgpack_object *entry, const char *stage, int64_t count,
                              double amount, double weighted, double avg_days, int64_t stale)
{
    static const char *const keys[] = {
        "stage", "count", "amount", "weighted", "avg_days_in_stage", "stale", "removed", NULL};
    CHECK(it_has_keys(entry, keys));
    CHECK_INT(it_bool(entry, "removed"), 0);
    CHECK_STR(it_str(entry, "stage"), stage);
    CHECK_INT(it_int(entry, "count"), count);
    CHECK_NUM(it_num(entry, "amount"), amount);
    CHECK_NUM(it_num(entry, "weighted"), weighted);
    if (avg_days < 0) { /* a closed stage: no days in stage */
        CHECK(it_is_nil(entry, "avg_days_in_stage"));
    } else {
        CHECK(is_float(it_get(entry, "avg_days_in_stage")));
        CHECK_NUM(it_num(entry, "avg_days_in_stage"), avg_days);
    }
    CHECK_INT(it_int(entry, "stale"), stale);
}

static void test_board(void)
{
    CHECK(it_append(&D, "{id: pl-brd, type: pipeline, pipeline: brd, stages: ["
                        "{name: s1, probability: 25, rot_days: 2}, {name: s2, probability: 50},"
                        "{name: won, probability: 100, outcome: won},"
                        "{name: lost, probability: 0, outcome: lost}]}") > 0);
    CHECK(it_append(&D,
                    "{id: b1, type: stage, deal: b1, pipeline: brd, stage: s1, at: %lld, amount: "
                    "100},"
                    "{id: b2, type: stage, deal: b2, pipeline: brd, stage: s1, at: %lld, amount: "
                    "200.5},"
                    "{id: b3, type: stage, deal: b3, pipeline: brd, stage: s1, at: %lld},"
                    "{id: b4, type: stage, deal: b4, pipeline: brd, stage: s2, at: %lld, amount: "
                    "1000},"
                    "{id: b5, type: stage, deal: b5, pipeline: brd, stage: won, at: %lld, amount: "
                    "50}",
                    T0, T0 + DAY, T0 + 2 * DAY, T0, T0) > 0);
    const msgpack_object *r = it_call(&D, "{op: board, pipeline: brd, now: %lld}", T0 + 3 * DAY);
    CHECK(it_ok(r));
    const msgpack_object *stages = it_get(r, "stages");
    CHECK_INT(it_len(stages), 4);
    check_board_stage(it_at(stages, 0), "s1", 3, 300.5, 75.125, 2.0, 2);
    check_board_stage(it_at(stages, 1), "s2", 1, 1000, 500, 3.0, 0);
    check_board_stage(it_at(stages, 2), "won", 1, 50, 50, -1, 0);
    check_board_stage(it_at(stages, 3), "lost", 0, 0, 0, -1, 0);

    /* a deal leaves s1: the board follows */
    CHECK(it_append(&D, "{id: b1-won, type: stage, deal: b1, stage: won, at: %lld}", T0 + 2 * DAY) >
          0);
    r = it_call(&D, "{op: board, pipeline: brd, now: %lld}", T0 + 3 * DAY);
    stages = it_get(r, "stages");
    check_board_stage(it_at(stages, 0), "s1", 2, 200.5, 50.125, 1.5, 1);
    check_board_stage(it_at(stages, 2), "won", 2, 150, 150, -1, 0);

    /* the default pipeline, in its order */
    r = it_call(&D, "{op: board, now: %lld}", T0 + 3 * DAY);
    CHECK(it_ok(r));
    stages = it_get(r, "stages");
    static const char *const defaults[] = {"lead",        "qualified", "meeting", "proposal",
                                           "negotiation", "won",       "lost"};
    CHECK_INT(it_len(stages), 7);
    for (uint32_t i = 0; i < 7; i++)
        CHECK_STR(it_str(it_at(stages, i), "stage"), defaults[i]);
    CHECK_ERR(it_call(&D, "{op: board, pipeline: nosuchpipeline}"), "unknown_pipeline");
}

static void test_replay(void)
{
    int64_t last = it_last_seq(&D);
    CHECK(last > 300);
    const msgpack_object *r = it_call(&D, "{op: replay, limit: 5}");
    CHECK(it_ok(r));
    CHECK_INT(it_int(r, "last_seq"), last);
    const msgpack_object *events = it_get(r, "events");
    CHECK_INT(it_len(events), 5);
    for (uint32_t i = 0; i < 5; i++)
        CHECK_INT(it_int(it_at(events, i), "seq"), i + 1);
    CHECK_STR(it_str(it_at(events, 0), "id"), "ap-1");
    r = it_call(&D, "{op: replay, after: 5, limit: 5}");
    CHECK_INT(it_int(it_at(it_get(r, "events"), 0), "seq"), 6);

    /* everything, gap-free, each event with seq, recv and at */
    int64_t expected = 1;
    bool complete = true;
    for (int page = 0; page < 100 && expected <= last; page++) {
        r = it_call(&D, "{op: replay, after: %lld, limit: 100}", (long long)(expected - 1));
        events = it_get(r, "events");
        if (it_len(events) <= 0) {
            complete = false;
            break;
        }
        for (long i = 0; i < it_len(events); i++) {
            const msgpack_object *event = it_at(events, (uint32_t)i);
            complete = complete && it_int(event, "seq") == expected &&
                       it_int(event, "recv") != IT_NONE && it_int(event, "at") != IT_NONE &&
                       it_str(event, "id") != NULL;
            expected++;
        }
        it_release();
    }
    CHECK(complete);
    CHECK_INT(expected, last + 1);
    r = it_call(&D, "{op: replay, after: %lld}", (long long)last);
    CHECK(it_ok(r));
    CHECK_INT(it_len(it_get(r, "events")), 0);
    CHECK_INT(it_int(r, "last_seq"), last);
    r = it_call(&D, "{op: replay, limit: 10000}");
    CHECK_INT(it_len(it_get(r, "events")), last < 10000 ? last : 10000);
    it_release();
    CHECK_ERR(it_call(&D, "{op: replay, limit: 10001}"), "bad_request");
    CHECK_ERR(it_call(&D, "{op: replay, after: 'x'}"), "bad_request");
}

static void test_rejected(void)
{
    static const char garbage[] = "\xc1 not msgpack";
    static const char int_keys[] = "\x81\x01\x02";
    CHECK(it_push_raw(&D, garbage, sizeof garbage - 1));
    CHECK(it_push_raw(&D, int_keys, sizeof int_keys - 1));
    msgpack_sbuffer bad;
    CHECK(it_encode(&bad, "{id: rj-1, type: bogus, deal: rj}"));
    CHECK(it_push_raw(&D, bad.data, bad.size));
    CHECK(it_wait_stat(&D, "rejected", 3));

    const msgpack_object *r = it_call(&D, "{op: rejected}");
    CHECK(it_ok(r));
    const msgpack_object *items = it_get(r, "items");
    CHECK_INT(it_len(items), 3);
    static const char *const keys[] = {"id", "recv", "error", "message", "raw", NULL};
    const void *raws[] = {garbage, int_keys, bad.data};
    size_t sizes[] = {sizeof garbage - 1, sizeof int_keys - 1, bad.size};
    int64_t previous = 0;
    for (uint32_t i = 0; i < 3; i++) {
        const msgpack_object *item = it_at(items, i);
        CHECK(it_has_keys(item, keys));
        CHECK(it_int(item, "id") > previous);
        previous = it_int(item, "id");
        CHECK_STR(it_str(item, "error"), "bad_request");
        CHECK(it_int(item, "recv") > T0);
        const msgpack_object *raw = it_get(item, "raw");
        CHECK(raw && raw->type == MSGPACK_OBJECT_BIN && raw->via.bin.size == sizes[i] &&
              memcmp(raw->via.bin.ptr, raws[i], sizes[i]) == 0);
    }
    int64_t first_id = it_int(it_at(items, 0), "id");
    r = it_call(&D, "{op: rejected, after: %lld, limit: 1}", (long long)first_id);
    CHECK_INT(it_len(it_get(r, "items")), 1);
    CHECK_INT(it_int(it_at(it_get(r, "items"), 0), "id"), it_int(it_at(items, 1), "id"));
    r = it_call(&D, "{op: rejected, after: %lld}", (long long)previous);
    CHECK_INT(it_len(it_get(r, "items")), 0);
    msgpack_sbuffer_destroy(&bad);
    CHECK_ERR(it_call(&D, "{op: rejected, limit: 10001}"), "bad_request");
}

static void test_stats(void)
{
    const msgpack_object *r = it_call(&D, "{op: stats}");
    CHECK(it_ok(r));
    static const char *const keys[] = {
        "events",        "duplicates", "rejected",  "deals",    "last_seq", "commits",
        "notifications", "pending",    "uptime_ms", "db_bytes", NULL};
    for (int i = 0; keys[i]; i++) {
        if (!is_uint(it_get(r, keys[i])))
            fprintf(stderr, "stats.%s is not a uint\n", keys[i]);
        CHECK(is_uint(it_get(r, keys[i])));
    }
    int64_t last = it_last_seq(&D);
    CHECK_INT(it_int(r, "events"), last);
    CHECK_INT(it_int(r, "last_seq"), last);
    CHECK_INT(it_int(r, "rejected"), 3);
    CHECK_INT(it_int(r, "pending"), 0);
    CHECK(it_int(r, "commits") >= 1);
    CHECK(it_int(r, "notifications") >= 1);
    CHECK(it_int(r, "db_bytes") > 0);
    CHECK(it_int(r, "deals") > BULK_DEALS);
}

/* A latency histogram of `stats`: {buckets: [[le_us, count], ...], count,
 * sum_us}, bounds rising, counts cumulative and within count. */
static void check_histogram(const msgpack_object *stats, const char *key)
{
    const msgpack_object *h = it_get(stats, key), *buckets = it_get(h, "buckets");
    CHECK(h && h->type == MSGPACK_OBJECT_MAP && h->via.map.size == 3);
    CHECK(is_uint(it_get(h, "count")));
    CHECK(is_uint(it_get(h, "sum_us")));
    CHECK(it_len(buckets) >= 10);
    int64_t last_le = 0, last_count = 0;
    for (long i = 0; i < it_len(buckets); i++) {
        const msgpack_object *pair = it_at(buckets, (uint32_t)i);
        CHECK_INT(it_len(pair), 2);
        CHECK(is_uint(it_at(pair, 0)) && is_uint(it_at(pair, 1)));
        int64_t le = (int64_t)it_at(pair, 0)->via.u64, count = (int64_t)it_at(pair, 1)->via.u64;
        CHECK(le > last_le);
        CHECK(count >= last_count);
        last_le = le;
        last_count = count;
    }
    CHECK(last_count <= it_int(h, "count"));
}

static int64_t histogram_count(const msgpack_object *stats, const char *key)
{
    return it_int(it_get(stats, key), "count");
}

/* Each acknowledged append counts once in append_latency, each commit of a
 * batch once in commit_latency. */
static void test_stats_latency(void)
{
    const msgpack_object *before = it_call(&D, "{op: stats}");
    CHECK(it_ok(before));
    check_histogram(before, "commit_latency");
    check_histogram(before, "append_latency");
    CHECK_INT(histogram_count(before, "commit_latency"), it_int(before, "commits"));
    for (int i = 0; i < 5; i++)
        CHECK(it_append(&D, "{id: lat-%d, type: stage, deal: lat-%d, stage: lead, at: %lld}", i, i,
                        T0) > 0);
    const msgpack_object *after = it_call(&D, "{op: stats}");
    CHECK(it_ok(after));
    check_histogram(after, "commit_latency");
    check_histogram(after, "append_latency");
    CHECK_INT(histogram_count(after, "append_latency"),
              histogram_count(before, "append_latency") + 5);
    CHECK_INT(histogram_count(after, "commit_latency"), it_int(after, "commits"));
    CHECK(it_int(after, "commits") >= it_int(before, "commits") + 5);
    /* each append waited for a commit with its fsync: time was counted */
    CHECK(it_int(it_get(after, "append_latency"), "sum_us") >
          it_int(it_get(before, "append_latency"), "sum_us"));
    CHECK(it_int(it_get(after, "commit_latency"), "sum_us") >=
          it_int(it_get(before, "commit_latency"), "sum_us"));
}

static void send_raw_frames(void *socket, const char *const *frames, const size_t *sizes, int n)
{
    for (int i = 0; i < n; i++)
        zmq_send(socket, frames[i], sizes[i], i + 1 < n ? ZMQ_SNDMORE : 0);
}

static bool wait_in(void *socket)
{
    zmq_pollitem_t item = {socket, 0, ZMQ_POLLIN, 0};
    return zmq_poll(&item, 1, 20000) == 1;
}

static void test_bad_requests(void)
{
    CHECK_ERR(it_call(&D, "{op: nosuchop}"), "unknown_op");
    static const char garbage[] = "\xc1\xc1 garbage";
    CHECK_ERR(it_call_raw(&D, garbage, sizeof garbage - 1), "bad_request");
    CHECK_ERR(it_call_raw(&D, "", 0), "bad_request");
    CHECK_ERR(it_call_raw(&D, "\xdd\xff\xff\xff\xff", 5), "bad_request");
    CHECK_ERR(it_call_raw(&D, "\x82\xa2op", 4), "bad_request");
    CHECK_ERR(it_call(&D, "[ping]"), "bad_request");
    CHECK_ERR(it_call(&D, "'ping'"), "bad_request");
    CHECK_ERR(it_call(&D, "{}"), "bad_request");
    CHECK_ERR(it_call(&D, "{op: 5}"), "bad_request");
    CHECK_ERR(it_call(&D, "{op: ping, 1: 2}"), "bad_request");
    CHECK_ERR(it_call(&D, "{op: ping, x: {1: 2}}"), "bad_request");
    it_buf deep = {0};
    it_buf_add(&deep, "{op: ping, x: ");
    for (int i = 0; i < 40; i++)
        it_buf_add(&deep, "[");
    for (int i = 0; i < 40; i++)
        it_buf_add(&deep, "]");
    it_buf_add(&deep, "}");
    CHECK_ERR(it_call(&D, "%s", it_buf_get(&deep)), "bad_request");
    it_buf_free(&deep);
    CHECK_ERR(it_call(&D, "{op: metrics, pipeline: nosuchpipeline}"), "unknown_pipeline");
    CHECK_ERR(it_call(&D, "{op: metrics, from: soon}"), "bad_request");
    CHECK_ERR(it_call(&D, "{op: metrics, owner: 7}"), "bad_request");

    /* a frame over --max-message (1 MiB) */
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 2);
    it_pack(&pk, "op");
    it_pack(&pk, "ping");
    it_pack(&pk, "pad");
    size_t pad = 1 << 20;
    char *zeros = calloc(1, pad);
    msgpack_pack_bin_with_body(&pk, zeros, pad);
    free(zeros);
    CHECK_ERR(it_call_raw(&D, sb.data, sb.size), "too_large");
    msgpack_sbuffer_destroy(&sb);

    /* the daemon goes on */
    CHECK(it_ok(it_call(&D, "{op: ping}")));
}

static void test_clients(void)
{
    msgpack_sbuffer ping;
    CHECK(it_encode(&ping, "{op: ping}"));

    /* a REQ client */
    void *req = it_socket(ZMQ_REQ, D.api);
    CHECK(zmq_send(req, ping.data, ping.size, 0) == (int)ping.size);
    CHECK(wait_in(req));
    char reply[4096];
    int n = zmq_recv(req, reply, sizeof reply, ZMQ_DONTWAIT);
    CHECK(n > 0 && n < (int)sizeof reply);
    if (n > 0 && n < (int)sizeof reply)
        CHECK(it_ok(it_unpack_keep(reply, (size_t)n)));
    it_close(req);

    /* a DEALER with more envelope than the delimiter gets it all back */
    void *dealer = it_socket(ZMQ_DEALER, D.api);
    const char *frames[] = {"tag-1", "", ping.data};
    size_t sizes[] = {5, 0, ping.size};
    send_raw_frames(dealer, frames, sizes, 3);
    CHECK(wait_in(dealer));
    char part[4096];
    int got[3] = {-1, -1, -1};
    int count = 0;
    int more = 1;
    while (more && count < 3) {
        got[count] = zmq_recv(dealer, part, sizeof part, ZMQ_DONTWAIT);
        if (count == 0)
            CHECK(got[0] == 5 && memcmp(part, "tag-1", 5) == 0);
        if (count == 2 && got[2] > 0 && got[2] < (int)sizeof part)
            CHECK(it_ok(it_unpack_keep(part, (size_t)got[2])));
        count++;
        size_t size = sizeof more;
        zmq_getsockopt(dealer, ZMQ_RCVMORE, &more, &size);
    }
    CHECK_INT(count, 3);
    CHECK_INT(got[1], 0);
    CHECK(!more);
    it_close(dealer);
    msgpack_sbuffer_destroy(&ping);
}

/* A long history sent newest first (every event late) ends exactly as the
 * same history sent in order, and moves the deal once: its first event to
 * arrive is its last stage. Each late stage event used to refold the whole
 * deal; 20 000 of them now take one refold per batch. */
static void test_history_newest_first(void)
{
    enum { EVENTS = 20000, BATCH = 1000 };
    static const char *const stages[] = {"lead", "qualified", "meeting", "proposal"};
    int64_t moves_before = it_stat(&D, "notifications");
    for (int order = 0; order < 2; order++) {
        const char *deal = order ? "newest-first" : "oldest-first";
        for (int start = 0; start < EVENTS; start += BATCH) {
            it_buf t = {0};
            it_buf_add(&t, "{op: append, events: [");
            for (int k = 0; k < BATCH; k++) {
                int i = order ? EVENTS - 1 - (start + k) : start + k;
                int64_t at = T0 + (int64_t)i * IT_HOUR;
                it_buf_add(&t, "%s{id: '%s-%d', deal: %s, pipeline: default, at: %lld, ",
                           k ? "," : "", deal, i, deal, (long long)at);
                if (i % 3 == 0)
                    it_buf_add(&t, "type: stage, stage: %s, amount: %d}", stages[(i / 3) % 4], i);
                else
                    it_buf_add(&t, "type: activity, kind: call}");
            }
            it_buf_add(&t, "]}");
            const msgpack_object *r = it_call(&D, "%s", it_buf_get(&t));
            it_buf_free(&t);
            CHECK_INT(it_len(it_get(r, "results")), BATCH);
            it_release();
        }
    }
    const msgpack_object *a = it_get(it_call(&D, "{op: deal, deal: oldest-first, now: %lld}",
                                             (long long)(T0 + EVENTS * IT_HOUR)),
                                     "deal");
    const msgpack_object *b = it_get(it_call(&D, "{op: deal, deal: newest-first, now: %lld}",
                                             (long long)(T0 + EVENTS * IT_HOUR)),
                                     "deal");
    static const char *const same[] = {
        "stage",         "stage_since", "created",  "amount",        "version", "activities",
        "last_activity", "regressions", "reopened", "time_in_stage", NULL};
    for (int i = 0; same[i]; i++) {
        bool equal = it_equal(it_get(a, same[i]), it_get(b, same[i]));
        if (!equal)
            fprintf(stderr, "newest first, `%s` differs\n", same[i]);
        CHECK(equal);
    }
    CHECK_INT(it_int(b, "version"), EVENTS);
    /* oldest first moves at every stage event; newest first only once */
    CHECK_INT(it_stat(&D, "notifications") - moves_before, (EVENTS + 2) / 3 + 1);
}

/* The first refold of a daemon's life finds no event at all (as_of before
 * every event): not_found, and the daemon goes on. A daemon of its own, so
 * that the refolder has nothing allocated yet. */
static void test_as_of_before_everything(void)
{
    static it_daemon fresh;
    if (!it_start(&fresh, NULL)) {
        CHECK(!"a second dealflowd started");
        it_cleanup(&fresh);
        return;
    }
    CHECK(it_append(&fresh, "{id: first-1, type: stage, deal: first, stage: lead, at: %lld}", T0) >
          0);
    CHECK_ERR(it_call(&fresh, "{op: deal, deal: first, as_of: %lld}", T0 - 1), "not_found");
    CHECK(it_ok(it_call(&fresh, "{op: ping}")));
    CHECK_INT(it_stop(&fresh), 0);
    it_cleanup(&fresh);
}

static bool start_daemon(void)
{
    return it_setup(&D, NULL);
}

static void stop_daemon(void)
{
    it_teardown(&D);
}

static const df_test tests[] = {
    {"ping", test_ping},
    {"append_results", test_append_results},
    {"expect", test_expect},
    {"deal_object", test_deal_object},
    {"source", test_source},
    {"late_events", test_late_events},
    {"pipelines_and_stale", test_pipelines_and_stale},
    {"history", test_history},
    {"list", test_list},
    {"board", test_board},
    {"replay", test_replay},
    {"rejected", test_rejected},
    {"stats", test_stats},
    {"bad_requests", test_bad_requests},
    {"clients", test_clients},
    {"history_newest_first", test_history_newest_first},
    {"as_of_before_everything", test_as_of_before_everything},
    {"stats_latency", test_stats_latency},
    {NULL, NULL},
};

int main(int argc, char **argv)
{
    static const df_fixture fixture = {.setup = start_daemon, .teardown = stop_daemon};
    return df_test_main(argc, argv, tests, &fixture);
}

/* test_delivery.c: webhooks out against the real daemon and HTTP receivers in this process:
 * order and signatures, endpoints that fail or are down, restarts on the same state
 * directory, topics, and a failing endpoint beside a healthy one. */
#define _GNU_SOURCE
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "delivery.h"
#include "harness.h"
#include "webhook_receiver.h"
#include "outbox.h"

#define DEADLINE_MS 30000

static it_daemon D;
static int next_id;

/* ---- HTTP receivers of the deliveries ---- */

static bool receiver_start(gw_receiver *r, const char *secret, int status)
{
    bool ok = gw_receiver_start(r, secret, status);
    CHECK(ok);
    return ok;
}

/* The receiver took exactly these seqs, in this order, all signed right. */
static void check_received(gw_receiver *r, const int64_t *seqs, int n, const char *topic)
{
    int accepted = gw_receiver_accepted(r);
    CHECK_INT(accepted, n);
    for (int i = 0; i < n && i < accepted; i++) {
        gw_received got = gw_receiver_accepted_at(r, i);
        if (got.seq != seqs[i])
            fprintf(stderr, "delivery %d: seq %lld, expected %lld\n", i, (long long)got.seq,
                    (long long)seqs[i]);
        CHECK(got.seq == seqs[i]);
        if (topic)
            CHECK_STR(got.topic, topic);
    }
    CHECK_INT(gw_receiver_bad_signatures(r), 0);
    CHECK_INT(gw_receiver_bad_content_types(r), 0);
}

/* ---- polling with deadlines ---- */

static bool wait_accepted(gw_receiver *r, int n)
{
    return gw_receiver_wait_accepted(r, n, DEADLINE_MS);
}

static gw_delivery_state state_of(gw_delivery *d, size_t i)
{
    gw_delivery_state states[8] = {0};
    size_t n = gw_delivery_states(d, states, 8);
    CHECK(i < n);
    return states[i];
}

/* Waits until endpoint i's state satisfies what: "position" >= seq, "failures" >= seq. */
static bool wait_state(gw_delivery *d, size_t i, const char *what, uint64_t at_least)
{
    int64_t deadline = it_mono_ms() + DEADLINE_MS;
    for (;;) {
        gw_delivery_state s = state_of(d, i);
        uint64_t v = strcmp(what, "position") == 0   ? s.position
                     : strcmp(what, "failures") == 0 ? s.failures
                                                     : s.daemon_seq;
        if (v >= at_least)
            return true;
        if (it_mono_ms() >= deadline) {
            fprintf(stderr, "endpoint %zu: %s is %llu, expected at least %llu\n", i, what,
                    (unsigned long long)v, (unsigned long long)at_least);
            return false;
        }
        it_pause_briefly();
    }
}

/* ---- events ---- */

/* A new deal's first stage: one deal.moved. Returns its seq. */
static int64_t move_new_deal(const char *stage)
{
    int id = ++next_id;
    int64_t seq = it_append(&D, "{id: e-%d, type: stage, deal: deal-%d, stage: %s, at: %lld}", id,
                            id, stage, IT_T0 + id);
    CHECK(seq > 0);
    return seq;
}

static int64_t move_deal(int deal, const char *stage)
{
    int id = ++next_id;
    int64_t seq = it_append(&D, "{id: e-%d, type: stage, deal: deal-%d, stage: %s, at: %lld}", id,
                            deal, stage, IT_T0 + id);
    CHECK(seq > 0);
    return seq;
}

static df_client_options daemon_options(void)
{
    return (df_client_options){.api = D.api, .ingest = D.ingest, .notify = D.notify};
}

static void state_dir(char *out, size_t cap, const char *name)
{
    snprintf(out, cap, "%s/gateway-%s", D.dir, name);
}

/* Starts delivery for new endpoints and waits until each has found the
 * daemon's end (a move made first, so that there is one). */
static gw_delivery *start_fresh(const gw_webhook *hooks, size_t n, const char *dir)
{
    int64_t marker = move_new_deal("lead");
    df_client_options opt = daemon_options();
    gw_delivery *d = NULL;
    char err[256] = "";
    int rc = gw_delivery_start(&d, &opt, hooks, n, dir, err, sizeof err);
    if (rc != 0)
        fprintf(stderr, "gw_delivery_start: %s\n", err);
    CHECK_INT(rc, 0);
    for (size_t i = 0; d && i < n; i++)
        CHECK(wait_state(d, i, "position", (uint64_t)marker));
    return d;
}

/* ---- the tests ---- */

static void test_in_seq_order_and_signed(void)
{
    gw_receiver r;
    if (!receiver_start(&r, "order-secret", 200))
        return;
    char dir[IT_PATH_MAX];
    state_dir(dir, sizeof dir, "order");
    gw_webhook hook = {r.url, "deal.moved.", "order-secret"};
    gw_delivery *d = start_fresh(&hook, 1, dir);
    int64_t seqs[30];
    for (int i = 0; i < 30; i += 3) {
        int deal = next_id + 1;
        seqs[i] = move_new_deal("lead");
        seqs[i + 1] = move_deal(deal, "qualified");
        seqs[i + 2] = move_deal(deal, "proposal");
    }
    CHECK(wait_accepted(&r, 30));
    check_received(&r, seqs, 30, NULL);
    CHECK_STR(gw_receiver_accepted_at(&r, 0).topic, "deal.moved.default.lead");
    CHECK_STR(gw_receiver_accepted_at(&r, 1).topic, "deal.moved.default.qualified");
    gw_delivery_state s = state_of(d, 0);
    CHECK_INT(s.delivered, 30);
    CHECK_INT(s.failures, 0);
    CHECK(!s.failing);
    CHECK(s.position == (uint64_t)seqs[29]);
    CHECK_STR(s.url, r.url);
    gw_delivery_stop(d);
    gw_receiver_stop(&r);
}

static void test_held_while_failing_or_down(void)
{
    gw_receiver r;
    if (!receiver_start(&r, "held-secret", 500))
        return;
    char dir[IT_PATH_MAX];
    state_dir(dir, sizeof dir, "held");
    gw_webhook hook = {r.url, "deal.moved.", "held-secret"};
    gw_delivery *d = start_fresh(&hook, 1, dir);
    int64_t seqs[10];
    for (int i = 0; i < 5; i++)
        seqs[i] = move_new_deal("lead");
    CHECK(wait_state(d, 0, "failures", 3));
    CHECK(wait_state(d, 0, "daemon_seq", (uint64_t)seqs[4])); /* the lag is known */
    gw_delivery_state s = state_of(d, 0);
    CHECK(s.failing);
    CHECK_INT(s.delivered, 0);
    CHECK(s.retries >= 2);
    CHECK(s.position < (uint64_t)seqs[0]);
    CHECK_INT(gw_receiver_accepted(&r), 0);

    gw_receiver_set_status(&r, 200);
    CHECK(wait_accepted(&r, 5));
    CHECK(wait_state(d, 0, "position", (uint64_t)seqs[4]));
    CHECK(!state_of(d, 0).failing);

    /* down: nothing listens on the port */
    gw_receiver_down(&r);
    uint64_t failures = state_of(d, 0).failures;
    for (int i = 5; i < 10; i++)
        seqs[i] = move_new_deal("qualified");
    CHECK(wait_state(d, 0, "failures", failures + 2));
    CHECK(state_of(d, 0).failing);
    CHECK(gw_receiver_listen(&r));
    CHECK(wait_accepted(&r, 10));
    check_received(&r, seqs, 10, NULL);
    CHECK(wait_state(d, 0, "position", (uint64_t)seqs[9]));
    s = state_of(d, 0);
    CHECK_INT(s.delivered, 10);
    CHECK(!s.failing);
    CHECK(s.daemon_seq == s.position);
    gw_delivery_stop(d);
    gw_receiver_stop(&r);
}

static void test_restart_neither_skips_nor_repeats(void)
{
    gw_receiver r;
    if (!receiver_start(&r, "restart-secret", 200))
        return;
    char dir[IT_PATH_MAX];
    state_dir(dir, sizeof dir, "restart");
    gw_webhook hook = {r.url, "deal.moved.", "restart-secret"};
    df_client_options opt = daemon_options();
    char err[256];
    gw_delivery *d = start_fresh(&hook, 1, dir);
    int64_t seqs[9];
    for (int i = 0; i < 3; i++)
        seqs[i] = move_new_deal("lead");
    CHECK(wait_accepted(&r, 3));
    CHECK(wait_state(d, 0, "position", (uint64_t)seqs[2]));
    gw_delivery_stop(d);

    /* moves while the gateway is stopped come after the restart */
    for (int i = 3; i < 6; i++)
        seqs[i] = move_new_deal("lead");
    d = NULL;
    CHECK_INT(gw_delivery_start(&d, &opt, &hook, 1, dir, err, sizeof err), 0);
    CHECK(state_of(d, 0).position == (uint64_t)seqs[2]); /* read back before any delivery */
    CHECK(wait_accepted(&r, 6));
    CHECK(wait_state(d, 0, "position", (uint64_t)seqs[5]));

    /* a stop in the middle of retrying: the refused one comes again, once */
    gw_receiver_set_status(&r, 503);
    seqs[6] = move_new_deal("lead");
    CHECK(wait_state(d, 0, "failures", 1));
    int64_t started = it_mono_ms();
    gw_delivery_stop(d);
    int64_t took = it_mono_ms() - started;
    if (took >= 3000)
        fprintf(stderr, "gw_delivery_stop took %lld ms\n", (long long)took);
    CHECK(took < 3000);
    gw_receiver_set_status(&r, 200);
    seqs[7] = move_new_deal("lead");
    seqs[8] = move_new_deal("lead");
    d = NULL;
    CHECK_INT(gw_delivery_start(&d, &opt, &hook, 1, dir, err, sizeof err), 0);
    CHECK(wait_accepted(&r, 9));
    CHECK(wait_state(d, 0, "position", (uint64_t)seqs[8]));
    check_received(&r, seqs, 9, "deal.moved.default.lead");
    gw_delivery_stop(d);
    gw_receiver_stop(&r);
}

static void test_topics_filter(void)
{
    gw_receiver won, all;
    if (!receiver_start(&won, "won-secret", 200))
        return;
    if (!receiver_start(&all, "all-secret", 200)) {
        gw_receiver_stop(&won);
        return;
    }
    gw_webhook hooks[] = {{won.url, "deal.moved.default.won", "won-secret"},
                          {all.url, "deal.", "all-secret"}};
    /* no state directory: from the daemon's end */
    gw_delivery *d = start_fresh(hooks, 2, NULL);
    int64_t seqs[6], won_seqs[2];
    int a = next_id + 1;
    seqs[0] = move_new_deal("lead");
    int b = next_id + 1;
    seqs[1] = move_new_deal("lead");
    seqs[2] = won_seqs[0] = move_deal(a, "won");
    seqs[3] = move_deal(b, "qualified");
    seqs[4] = won_seqs[1] = move_deal(b, "won");
    seqs[5] = move_new_deal("qualified");
    CHECK(wait_accepted(&all, 6));
    CHECK(wait_accepted(&won, 2));
    check_received(&all, seqs, 6, NULL);
    check_received(&won, won_seqs, 2, "deal.moved.default.won");
    CHECK_STR(gw_receiver_accepted_at(&all, 3).topic, "deal.moved.default.qualified");
    gw_delivery_stop(d);
    gw_receiver_stop(&won);
    gw_receiver_stop(&all);
}

static void test_failing_endpoint_does_not_delay_others(void)
{
    gw_receiver bad, good;
    if (!receiver_start(&bad, "bad-secret", 500))
        return;
    if (!receiver_start(&good, "good-secret", 200)) {
        gw_receiver_stop(&bad);
        return;
    }
    char dir[IT_PATH_MAX];
    state_dir(dir, sizeof dir, "pair");
    gw_webhook hooks[] = {{bad.url, "deal.moved.", "bad-secret"},
                          {good.url, "deal.moved.", "good-secret"}};
    gw_delivery *d = start_fresh(hooks, 2, dir);
    int64_t seqs[20];
    for (int i = 0; i < 20; i++)
        seqs[i] = move_new_deal("lead");
    CHECK(wait_accepted(&good, 20));
    check_received(&good, seqs, 20, NULL);
    gw_delivery_state s = state_of(d, 0);
    CHECK(s.failing);
    CHECK(s.failures >= 1);
    CHECK_INT(s.delivered, 0);
    CHECK_INT(gw_receiver_accepted(&bad), 0);
    CHECK_INT(state_of(d, 1).delivered, 20);
    CHECK(!state_of(d, 1).failing);
    int64_t started = it_mono_ms();
    gw_delivery_stop(d);
    CHECK(it_mono_ms() - started < 3000);
    gw_receiver_stop(&bad);
    gw_receiver_stop(&good);
}

static void test_daemon_restart_is_followed(void)
{
    gw_receiver r;
    if (!receiver_start(&r, "daemon-secret", 200))
        return;
    char dir[IT_PATH_MAX];
    state_dir(dir, sizeof dir, "daemon");
    gw_webhook hook = {r.url, "deal.moved.", "daemon-secret"};
    gw_delivery *d = start_fresh(&hook, 1, dir);
    int64_t seqs[6];
    for (int i = 0; i < 2; i++)
        seqs[i] = move_new_deal("lead");
    CHECK(wait_accepted(&r, 2));
    CHECK_INT(it_stop(&D), 0);
    CHECK(it_restart(&D));
    /* what the subscription misses while it reconnects is repaired from `moves` */
    for (int i = 2; i < 6; i++)
        seqs[i] = move_new_deal("lead");
    CHECK(wait_accepted(&r, 6));
    check_received(&r, seqs, 6, NULL);
    gw_delivery_stop(d);
    gw_receiver_stop(&r);
}

static void test_bad_entries_are_refused(void)
{
    df_client_options opt = daemon_options();
    gw_delivery *d = (gw_delivery *)&opt; /* set to NULL on failure */
    char err[256] = "";
    gw_webhook ftp = {"ftp://127.0.0.1/x", "", "k"};
    CHECK_INT(gw_delivery_start(&d, &opt, &ftp, 1, NULL, err, sizeof err), -1);
    CHECK(d == NULL);
    CHECK(strstr(err, "http") != NULL);
    gw_webhook unsigned_hook = {"http://127.0.0.1:1/x", "", ""};
    CHECK_INT(gw_delivery_start(&d, &opt, &unsigned_hook, 1, NULL, err, sizeof err), -1);
    CHECK(strstr(err, "secret") != NULL);
    gw_webhook twice[] = {{"http://127.0.0.1:1/x", "deal.", "k"},
                          {"http://127.0.0.1:1/x", "deal.", "j"}};
    CHECK_INT(gw_delivery_start(&d, &opt, twice, 2, NULL, err, sizeof err), -1);
    CHECK(strstr(err, "same url") != NULL);

    /* a position file that is not one is an error, not a replay from the start */
    char dir[IT_PATH_MAX];
    state_dir(dir, sizeof dir, "broken");
    gw_webhook hook = {"http://127.0.0.1:1/x", "deal.", "k"};
    CHECK_INT(gw_delivery_start(&d, &opt, &hook, 1, dir, err, sizeof err), 0);
    gw_delivery_stop(d);
    char name[GW_STATE_NAME_MAX], path[IT_PATH_MAX + GW_STATE_NAME_MAX];
    gw_outbox_state_name(hook.url, hook.topics, name);
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    CHECK(f != NULL);
    if (f) {
        fputs("garbage\n", f);
        fclose(f);
    }
    CHECK_INT(gw_delivery_start(&d, &opt, &hook, 1, dir, err, sizeof err), -1);
    CHECK(strstr(err, "not a position") != NULL);
}

static bool setup(void)
{
    if (sodium_init() < 0)
        return false;
    return it_setup(&D, NULL);
}

static void teardown(void)
{
    it_teardown(&D);
}

static const df_test tests[] = {
    {"in_seq_order_and_signed", test_in_seq_order_and_signed},
    {"held_while_failing_or_down", test_held_while_failing_or_down},
    {"restart_neither_skips_nor_repeats", test_restart_neither_skips_nor_repeats},
    {"topics_filter", test_topics_filter},
    {"failing_endpoint_does_not_delay_others", test_failing_endpoint_does_not_delay_others},
    {"daemon_restart_is_followed", test_daemon_restart_is_followed},
    {"bad_entries_are_refused", test_bad_entries_are_refused},
    {NULL, NULL},
};

int main(int argc, char **argv)
{
    static const df_fixture fixture = {setup, teardown, NULL};
    return df_test_main(argc, argv, tests, &fixture);
}

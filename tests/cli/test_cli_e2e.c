/* test_cli_e2e.c: the dealflow command end to end against the real daemon: outputs and exit
 * statuses. */
#include <fcntl.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "cli_run.h"

static it_daemon daemon_;

#define RUN_CLI(input, ...) CLI(&daemon_, (input), __VA_ARGS__)

static void test_usage_and_ping(void)
{
    cli_result r = RUN_CLI(NULL, "ping");
    CHECK_STATUS(r, 0);
    CHECK(cli_has(r.out, "dealflowd 0.1.0"));
    cli_result_free(&r);
    r = RUN_CLI(NULL, "--json", "ping");
    CHECK_STATUS(r, 0);
    CHECK(cli_has(r.out, "\"version\":\"0.1.0\""));
    cli_result_free(&r);
    /* Nothing listens on port 1: unreachable, said on stderr, exit 3. */
    r = RUN_CLI(NULL, "--api", "tcp://127.0.0.1:1", "--timeout", "100", "--attempts", "1", "ping");
    CHECK_STATUS(r, 3);
    CHECK(cli_has(r.err, "unreachable"));
    CHECK_STR(r.out, "");
    cli_result_free(&r);
    r = RUN_CLI(NULL, "frobnicate");
    CHECK_STATUS(r, 2);
    cli_result_free(&r);
    r = RUN_CLI(NULL, "deal");
    CHECK_STATUS(r, 2);
    cli_result_free(&r);
    r = RUN_CLI(NULL, "board", "--now", "yesterday-ish");
    CHECK_STATUS(r, 2);
    cli_result_free(&r);
    r = RUN_CLI(NULL, "--version");
    CHECK_STATUS(r, 0);
    CHECK(cli_has(r.out, "dealflow 0.1.0"));
    cli_result_free(&r);
    r = RUN_CLI(NULL, "--help");
    CHECK_STATUS(r, 0);
    CHECK(cli_has(r.out, "Exit status"));
    cli_result_free(&r);
    static const char *const commands[] = {
        "send",   "import",   "deal",   "history",  "list",        "replay",
        "board",  "metrics",  "tail",   "stats",    "rejected",    "ping",
        "keygen", "pipeline", "losses", "forecast", "calibration", NULL};
    for (int i = 0; commands[i]; i++) {
        r = RUN_CLI(NULL, commands[i], "--help");
        CHECK_STATUS(r, 0);
        CHECK(cli_has(r.out, "usage: dealflow"));
        cli_result_free(&r);
    }
}

static void test_send(void)
{
    const char *e1 = "{\"id\":\"s-1\",\"type\":\"stage\",\"deal\":\"acme\",\"stage\":\"lead\","
                     "\"amount\":12000,\"owner\":\"ana\",\"at\":1700000000000}";
    const char *e2 = "{\"id\":\"s-2\",\"type\":\"update\",\"deal\":\"acme\",\"amount\":12000.5,"
                     "\"at\":1700003600000}";
    const char *e3 = "{\"id\":\"s-3\",\"type\":\"stage\",\"deal\":\"acme\",\"stage\":\"signed\"}";
    int64_t before = it_stat(&daemon_, "events");
    cli_result r = RUN_CLI(NULL, "send", e1, e2, e3);
    CHECK_STATUS(r, 1);
    CHECK(cli_has(r.out, "2 recorded, 0 duplicates, 1 refused"));
    CHECK(cli_has(r.err, "event 3 (s-3) refused: unknown_stage"));
    cli_result_free(&r);
    CHECK_INT(it_stat(&daemon_, "events"), before + 2);
    /* Again: duplicates, nothing recorded twice. */
    r = RUN_CLI(NULL, "send", e1, e2);
    CHECK_STATUS(r, 0);
    CHECK(cli_has(r.out, "0 recorded, 2 duplicates, 0 refused"));
    cli_result_free(&r);
    CHECK_INT(it_stat(&daemon_, "events"), before + 2);
    /* times written as dates are sent as ms; a string that is no time sends nothing */
    r = RUN_CLI(NULL, "send",
                "{\"id\":\"s-iso\",\"type\":\"stage\",\"deal\":\"iso\",\"stage\":\"lead\","
                "\"at\":\"2023-11-14T22:13:20Z\"}",
                "{\"id\":\"s-iso2\",\"type\":\"update\",\"deal\":\"iso\","
                "\"close_date\":\"2024-01-31\"}");
    CHECK_STATUS(r, 0);
    cli_result_free(&r);
    const msgpack_object *iso = it_call(&daemon_, "{op: deal, deal: iso}");
    CHECK_INT(it_int(it_get(iso, "deal"), "created"), 1700000000000LL);
    CHECK_INT(it_int(it_get(iso, "deal"), "close_date"), 1706659200000LL);
    r = RUN_CLI(NULL, "send",
                "{\"id\":\"s-bad\",\"type\":\"stage\",\"deal\":\"iso\",\"stage\":\"lead\","
                "\"at\":\"yesterday\"}");
    CHECK_STATUS(r, 2);
    CHECK(cli_has(r.err, "not a time"));
    cli_result_free(&r);
    /* NDJSON on stdin, per-event results as NDJSON with --json. */
    char input[1024];
    snprintf(input, sizeof input,
             "%s\n%s\n{\"id\":\"s-4\",\"type\":\"activity\",\"deal\":"
             "\"acme\",\"kind\":\"call\",\"at\":1700007200000}\n",
             e1, e3);
    r = RUN_CLI(input, "send", "--json");
    CHECK_STATUS(r, 1);
    json_t *lines = cli_ndjson(r.out);
    CHECK_INT(json_array_size(lines), 3);
    CHECK(json_is_true(json_object_get(json_array_get(lines, 0), "dup")));
    CHECK_STR(json_string_value(json_object_get(json_array_get(lines, 1), "error")),
              "unknown_stage");
    CHECK(json_is_false(json_object_get(json_array_get(lines, 2), "dup")));
    CHECK(json_integer_value(json_object_get(json_array_get(lines, 2), "seq")) > 0);
    json_decref(lines);
    cli_result_free(&r);
    /* Malformed input sends nothing. */
    before = it_stat(&daemon_, "events");
    r = RUN_CLI("{\"id\":\"s-5\",\"type\":\"activity\",\"deal\":\"acme\",\"kind\":\"x\"}\n{oops\n",
                "send");
    CHECK_STATUS(r, 2);
    CHECK(cli_has(r.err, "not JSON"));
    cli_result_free(&r);
    CHECK_INT(it_stat(&daemon_, "events"), before);
    /* Ints stay ints and floats floats on the way in and out. */
    r = RUN_CLI(NULL, "--json", "history", "acme");
    CHECK_STATUS(r, 0);
    CHECK(cli_has(r.out, "\"amount\":12000,"));
    CHECK(cli_has(r.out, "\"amount\":12000.5"));
    cli_result_free(&r);
    /* Fire and forget over ingest. */
    int64_t last = it_last_seq(&daemon_);
    r = RUN_CLI("{\"id\":\"s-6\",\"type\":\"activity\",\"deal\":\"acme\",\"kind\":\"email\"}",
                "send", "--no-ack");
    CHECK_STATUS(r, 0);
    CHECK(cli_has(r.out, "1 event published"));
    cli_result_free(&r);
    CHECK(it_wait_seq(&daemon_, last + 1));
}

/* An import interrupted with Ctrl-C finishes its batch and stops (exit
 * 130); run again, it records the rest and nothing twice. */
static void test_import_interrupted(void)
{
    enum { ROWS = 100000 };
    char path[IT_PATH_MAX + 32], out_path[IT_PATH_MAX + 32];
    snprintf(path, sizeof path, "%s/big.ndjson", daemon_.dir);
    snprintf(out_path, sizeof out_path, "%s/big.out", daemon_.dir);
    FILE *f = fopen(path, "w");
    CHECK(f != NULL);
    if (!f)
        return;
    for (int i = 0; i < ROWS; i++)
        fprintf(f,
                "{\"id\":\"big-%d\",\"type\":\"activity\",\"deal\":\"big-%d\","
                "\"kind\":\"call\",\"at\":%lld}\n",
                i, i % 1000, IT_T0 + i);
    fclose(f);
    int64_t before = it_stat(&daemon_, "events");
    pid_t pid =
        cli_spawn(&daemon_, out_path, (const char *const[]){"import", path, "--batch", "50", NULL});
    CHECK(pid > 0);
    /* interrupt once some batches are on disk */
    int64_t deadline = it_wall_ms() + 60000;
    while (it_stat(&daemon_, "events") < before + 500 && it_wall_ms() < deadline &&
           cli_wait(pid, 1) == -1)
        ;
    kill(pid, SIGINT);
    int status = cli_wait(pid, 60000);
    int64_t recorded = it_stat(&daemon_, "events") - before;
    if (status == 0)
        fprintf(stderr, "note: the import ended before it was interrupted\n");
    else
        CHECK_INT(status, 130);
    CHECK(recorded > 0 && recorded <= ROWS);
    /* again: the rest is recorded, what was is a duplicate */
    cli_result r = RUN_CLI(NULL, "--json", "import", path);
    CHECK_STATUS(r, 0);
    json_t *sum = json_loads(r.out, 0, NULL);
    CHECK_INT(json_integer_value(json_object_get(sum, "rows")), ROWS);
    CHECK_INT(json_integer_value(json_object_get(sum, "duplicates")), recorded);
    CHECK_INT(json_integer_value(json_object_get(sum, "recorded")), ROWS - recorded);
    json_decref(sum);
    cli_result_free(&r);
    CHECK_INT(it_stat(&daemon_, "events"), before + ROWS);
}

static void test_import(void)
{
    char path[IT_PATH_MAX + 32];
    snprintf(path, sizeof path, "%s/events.ndjson", daemon_.dir);
    char text[8192];
    size_t n = 0;
    for (int i = 0; i < 5; i++)
        n += (size_t)snprintf(text + n, sizeof text - n,
                              "{\"id\":\"imp-%d\",\"type\":\"stage\",\"deal\":\"imp-deal-%d\","
                              "\"stage\":\"qualified\",\"at\":%lld}\n",
                              i, i, IT_T0 + i * IT_DAY);
    n += (size_t)snprintf(text + n, sizeof text - n, "not json\n");
    cli_write_file(path, text);
    cli_result r = RUN_CLI(NULL, "--json", "import", path);
    CHECK_STATUS(r, 1);
    json_t *s = json_loads(r.out, 0, NULL);
    CHECK_INT(json_integer_value(json_object_get(s, "rows")), 6);
    CHECK_INT(json_integer_value(json_object_get(s, "recorded")), 5);
    CHECK_INT(json_integer_value(json_object_get(s, "refused")), 1);
    CHECK(json_object_get(json_object_get(s, "errors"), "bad_json") != NULL);
    json_decref(s);
    cli_result_free(&r);
    int64_t deals = it_stat(&daemon_, "deals"), events = it_stat(&daemon_, "events");
    r = RUN_CLI(NULL, "import", path);
    CHECK_STATUS(r, 1);
    CHECK(cli_has(r.out, "6 rows: 0 recorded, 5 duplicates, 1 refused"));
    CHECK(cli_has(r.out, "bad_json: 1, first: line 6"));
    cli_result_free(&r);
    CHECK_INT(it_stat(&daemon_, "deals"), deals);
    CHECK_INT(it_stat(&daemon_, "events"), events);

    /* CSV through a column mapping, quotes and a bad date included. */
    snprintf(path, sizeof path, "%s/leads.csv", daemon_.dir);
    cli_write_file(path, "ref,when,value,who\n"
                         "c1,31-01-2024,100,\"Smith, Ann\"\n"
                         "c2,01-02-2024,250.5,\n"
                         "c3,31-02-2024,7,bob\n"
                         "c4,,8,bob\n");
    const char *mapping[] = {"import",      path,           "--id",     "csv-{ref}", "--deal",
                             "deal-{ref}",  "--stage",      "meeting",  "--at",      "when",
                             "--at-format", "%d-%m-%Y",     "--amount", "value",     "--owner",
                             "{who}",       "--skip-empty", "when",     NULL};
    r = cli_run(&daemon_, NULL, mapping);
    CHECK_STATUS(r, 1);
    CHECK(cli_has(r.out, "4 rows: 2 recorded, 0 duplicates, 1 refused, 1 skipped"));
    CHECK(cli_has(r.out, "bad_row: 1, first: line 4: at `31-02-2024` does not match %d-%m-%Y"));
    cli_result_free(&r);
    r = cli_run(&daemon_, NULL, mapping);
    CHECK(cli_has(r.out, "4 rows: 0 recorded, 2 duplicates, 1 refused, 1 skipped"));
    cli_result_free(&r);
    r = RUN_CLI(NULL, "--json", "deal", "deal-c1");
    CHECK_STATUS(r, 0);
    json_t *d = json_loads(r.out, 0, NULL);
    CHECK_STR(json_string_value(json_object_get(d, "stage")), "meeting");
    CHECK_STR(json_string_value(json_object_get(d, "owner")), "Smith, Ann");
    CHECK(json_is_integer(json_object_get(d, "amount")));
    CHECK_INT(json_integer_value(json_object_get(d, "stage_since")), 1706659200000LL);
    json_decref(d);
    cli_result_free(&r);
    r = RUN_CLI(NULL, "--json", "deal", "deal-c2");
    d = json_loads(r.out, 0, NULL);
    CHECK(json_is_real(json_object_get(d, "amount")));
    CHECK(json_is_null(json_object_get(d, "owner")));
    json_decref(d);
    cli_result_free(&r);
    /* A mapping naming a column that is not there is a usage error. */
    r = RUN_CLI(NULL, "import", path, "--id", "x-{nope}", "--deal", "{ref}", "--stage", "lead");
    CHECK_STATUS(r, 2);
    CHECK(cli_has(r.err, "no column `nope`"));
    cli_result_free(&r);
    r = RUN_CLI(NULL, "import", path, "--deal", "{ref}", "--stage", "lead");
    CHECK_STATUS(r, 2);
    CHECK(cli_has(r.err, "needs --id"));
    cli_result_free(&r);
}

static void test_history_and_deal(void)
{
    /* An auditor's deal: a move, a late call, an amount change. */
    CHECK(it_append(&daemon_,
                    "{id: 'h-1', type: stage, deal: audit, stage: lead, at: %lld, owner: ana},"
                    "{id: 'h-2', type: stage, deal: audit, stage: proposal, at: %lld, amount: 900},"
                    "{id: 'h-3', type: activity, deal: audit, kind: call, actor: ana, at: %lld},"
                    "{id: 'h-4', type: update, deal: audit, amount: nil, at: %lld}",
                    IT_T0, IT_T0 + 2 * IT_DAY, IT_T0 + IT_DAY, IT_T0 + 3 * IT_DAY) > 0);
    cli_result r = RUN_CLI(NULL, "history", "audit");
    CHECK_STATUS(r, 0);
    CHECK(cli_has(r.out, "seq"));
    CHECK(cli_has(r.out, "what happened"));
    CHECK(cli_has(r.out, "2023-11-14T22:13:20Z"));
    CHECK(cli_has(r.out, "moved to lead, owner ana"));
    CHECK(cli_has(r.out, "moved to proposal, amount 900"));
    CHECK(cli_has(r.out, "call by ana (late: happened before an earlier event)"));
    CHECK(cli_has(r.out, "updated, amount cleared"));
    CHECK_INT(cli_count_lines(r.out), 5);
    cli_result_free(&r);
    r = RUN_CLI(NULL, "--json", "history", "audit");
    json_t *lines = cli_ndjson(r.out);
    CHECK_INT(json_array_size(lines), 4);
    CHECK_STR(json_string_value(json_object_get(json_array_get(lines, 2), "id")), "h-3");
    CHECK(json_is_integer(json_object_get(json_array_get(lines, 2), "recv")));
    json_decref(lines);
    cli_result_free(&r);
    r = RUN_CLI(NULL, "history", "nobody");
    CHECK_STATUS(r, 1);
    CHECK(cli_has(r.err, "not_found"));
    cli_result_free(&r);

    r = RUN_CLI(NULL, "deal", "audit", "--now", "2023-11-20");
    CHECK_STATUS(r, 0);
    CHECK(cli_has(r.out, "stage                proposal"));
    CHECK(cli_has(r.out, "stage_since          2023-11-16T22:13:20Z"));
    cli_result_free(&r);
    /* As it stood on its second day: still a lead. */
    r = RUN_CLI(NULL, "--json", "deal", "audit", "--as-of", "1700086400000");
    CHECK_STATUS(r, 0);
    json_t *d = json_loads(r.out, 0, NULL);
    CHECK_STR(json_string_value(json_object_get(d, "stage")), "lead");
    json_decref(d);
    cli_result_free(&r);
    r = RUN_CLI(NULL, "deal", "nobody");
    CHECK_STATUS(r, 1);
    CHECK_STR(r.out, "");
    cli_result_free(&r);
}

static void test_list_replay_stats(void)
{
    /* 250 deals in one stage: more than two pages of the daemon's default. */
    it_buf events = {0};
    for (int i = 0; i < 250; i++)
        it_buf_add(&events, "%s{id: 'l-%d', type: stage, deal: 'many-%03d', stage: negotiation}",
                   i ? "," : "", i, i);
    CHECK(it_append(&daemon_, "%s", it_buf_get(&events)) > 0);
    it_buf_free(&events);
    cli_result r = RUN_CLI(NULL, "--json", "list", "--stage", "negotiation");
    CHECK_STATUS(r, 0);
    CHECK_INT(cli_count_lines(r.out), 250);
    cli_result_free(&r);
    r = RUN_CLI(NULL, "list", "--stage", "negotiation", "--owner", "nobody");
    CHECK_STATUS(r, 0);
    CHECK(cli_has(r.out, "0 deals"));
    cli_result_free(&r);
    int64_t last = it_last_seq(&daemon_);
    char after[32];
    snprintf(after, sizeof after, "%lld", (long long)(last - 3));
    r = RUN_CLI(NULL, "--json", "replay", "--after", after);
    CHECK_STATUS(r, 0);
    CHECK_INT(cli_count_lines(r.out), 3);
    cli_result_free(&r);
    r = RUN_CLI(NULL, "replay");
    CHECK_STATUS(r, 0);
    CHECK_INT(cli_count_lines(r.out), last + 1);
    cli_result_free(&r);
    r = RUN_CLI(NULL, "stats");
    CHECK_STATUS(r, 0);
    CHECK(cli_has(r.out, "events"));
    CHECK(cli_has(r.out, "duplicates"));
    cli_result_free(&r);
    /* A rejected ingest frame: raw comes back as base64. */
    CHECK(it_push_raw(&daemon_, "\xc1", 1));
    CHECK(it_wait_stat(&daemon_, "rejected", 1));
    r = RUN_CLI(NULL, "--json", "rejected");
    CHECK_STATUS(r, 0);
    CHECK(cli_has(r.out, "\"raw\":\"wQ==\""));
    cli_result_free(&r);
    r = RUN_CLI(NULL, "rejected");
    CHECK(cli_has(r.out, "raw (base64, 1 bytes): wQ=="));
    cli_result_free(&r);
}

static void test_board_and_metrics(void)
{
    CHECK(it_append(&daemon_,
                    "{id: 'p-def', type: pipeline, pipeline: trial, stages: ["
                    "{name: a, probability: 10}, {name: b, probability: 50}, "
                    "{name: done, probability: 100, outcome: won}]},"
                    "{id: 'p-1', type: stage, deal: t1, pipeline: trial, stage: b, amount: 300},"
                    "{id: 'p-2', type: stage, deal: t2, pipeline: trial, stage: a, amount: 100},"
                    "{id: 'p-3', type: pipeline, pipeline: trial, stages: ["
                    "{name: a, probability: 10}, {name: done, probability: 100, outcome: won}]}") >
          0);
    cli_result r = RUN_CLI(NULL, "board", "--pipeline", "trial", "--now", "2024-01-31");
    CHECK_STATUS(r, 0);
    CHECK(cli_has(r.out, "pipeline trial"));
    CHECK(cli_has(r.out, "b (removed)"));
    CHECK(cli_has(r.out, "count"));
    CHECK(cli_has(r.out, "##############################")); /* b has the largest amount */
    CHECK(strchr(r.out, '\033') == NULL);                    /* not a terminal: plain text */
    cli_result_free(&r);
    r = RUN_CLI(NULL, "--json", "board", "--pipeline", "trial");
    CHECK_STATUS(r, 0);
    json_t *b = json_loads(r.out, 0, NULL);
    json_t *stages = json_object_get(b, "stages");
    CHECK_INT(json_array_size(stages), 3);
    CHECK_STR(json_string_value(json_object_get(json_array_get(stages, 2), "stage")), "b");
    CHECK(json_is_true(json_object_get(json_array_get(stages, 2), "removed")));
    json_decref(b);
    cli_result_free(&r);
    r = RUN_CLI(NULL, "board", "--pipeline", "nope");
    CHECK_STATUS(r, 1);
    CHECK(cli_has(r.err, "unknown_pipeline"));
    cli_result_free(&r);
    r = RUN_CLI(NULL, "metrics", "--pipeline", "trial", "--from", "2020-01-01", "--to", "now");
    CHECK_STATUS(r, 0);
    CHECK(cli_has(r.out, "win rate"));
    CHECK(cli_has(r.out, "open                   2"));
    cli_result_free(&r);
    r = RUN_CLI(NULL, "--json", "metrics");
    CHECK_STATUS(r, 0);
    CHECK(cli_has(r.out, "\"conversion\":"));
    cli_result_free(&r);
}

/* forecast, calibration and metrics --by, on deals of their own source */
static void test_outlook(void)
{
    CHECK(it_append(&daemon_,
                    "{id: 'ol-1', type: stage, deal: ol1, stage: proposal, amount: 100, "
                    "source: outlook, at: 1700000000000},"
                    "{id: 'ol-2', type: update, deal: ol1, close_date: 1702166400000, "
                    "at: 1700000000000},"
                    "{id: 'ol-3', type: stage, deal: ol2, stage: lead, amount: 50, "
                    "source: outlook, at: 1700000000000},"
                    "{id: 'ol-4', type: stage, deal: ol2, stage: won, at: 1700400000000}") > 0);
    cli_result r = RUN_CLI(NULL, "forecast", "--source", "outlook", "--from", "2023-11-01", "--to",
                           "2024-01-01", "--now", "2023-11-20");
    CHECK_STATUS(r, 0);
    CHECK(cli_has(r.out, "forecast of pipeline default"));
    /* December: ol1, 100 x 60%, the whole bar */
    CHECK(cli_has(r.out, "2023-12-01            ##############################       1 "));
    CHECK(cli_has(r.out, "60.00"));
    CHECK(cli_has(r.out, "overdue"));
    cli_result_free(&r);
    r = RUN_CLI(NULL, "--json", "forecast", "--source", "outlook", "--by", "quarter", "--now",
                "2023-11-20");
    CHECK_STATUS(r, 0);
    json_t *f = json_loads(r.out, 0, NULL);
    json_t *periods = json_object_get(f, "periods");
    CHECK_INT(json_array_size(periods), 3);
    CHECK_INT(json_integer_value(json_object_get(json_array_get(periods, 0), "won_count")), 1);
    CHECK_INT(json_integer_value(json_object_get(json_array_get(periods, 0), "count")), 1);
    json_decref(f);
    cli_result_free(&r);
    r = RUN_CLI(NULL, "forecast", "--by", "fortnight");
    CHECK_STATUS(r, 1);
    CHECK(cli_has(r.err, "bad_request"));
    cli_result_free(&r);

    r = RUN_CLI(NULL, "calibration", "--source", "outlook");
    CHECK_STATUS(r, 0);
    CHECK(cli_has(r.out, "calibration of pipeline default"));
    CHECK(cli_has(r.out, "lead                             10%         1         1    100.0%"));
    CHECK(cli_has(r.out, "proposal                         60%         0         0         -"));
    cli_result_free(&r);
    r = RUN_CLI(NULL, "--json", "calibration", "--source", "outlook", "--from", "2024-01-01");
    CHECK_STATUS(r, 0);
    CHECK(cli_has(r.out, "\"reached\":0"));
    CHECK(strstr(r.out, "\"reached\":1") == NULL);
    cli_result_free(&r);

    r = RUN_CLI(NULL, "metrics", "--source", "outlook", "--by", "month", "--from", "2023-11-01",
                "--to", "2024-01-01");
    CHECK_STATUS(r, 0);
    CHECK(cli_has(r.out, "win rate"));
    CHECK(cli_has(r.out, "trend\n"));
    CHECK(cli_has(r.out, "2023-11-01                 1       0    100.0%"));
    CHECK(cli_has(r.out, "2023-12-01                 0       0         -"));
    cli_result_free(&r);
    r = RUN_CLI(NULL, "--json", "metrics", "--by", "week", "--from", "2023-11-01", "--to",
                "2023-12-01");
    CHECK_STATUS(r, 0);
    CHECK(cli_has(r.out, "\"series\":[{"));
    cli_result_free(&r);
    r = RUN_CLI(NULL, "metrics", "--by", "month");
    CHECK_STATUS(r, 1);
    CHECK(cli_has(r.err, "bad_request"));
    cli_result_free(&r);
}

static void test_losses(void)
{
    CHECK(it_append(&daemon_, "{id: 'ls-1', type: stage, deal: ls1, stage: meeting, amount: 10, "
                              "source: web},"
                              "{id: 'ls-2', type: stage, deal: ls1, stage: lost, reason: price},"
                              "{id: 'ls-3', type: stage, deal: ls2, stage: lead, amount: 5},"
                              "{id: 'ls-4', type: stage, deal: ls2, stage: lost}") > 0);
    cli_result r = RUN_CLI(NULL, "losses");
    CHECK_STATUS(r, 0);
    CHECK(cli_has(r.out, "losses of pipeline default"));
    CHECK(cli_has(r.out, "  meeting"));
    CHECK(cli_has(r.out, "  price "));
    CHECK(cli_has(r.out, "  unspecified "));
    cli_result_free(&r);
    r = RUN_CLI(NULL, "--json", "losses", "--source", "web");
    CHECK_STATUS(r, 0);
    json_t *m = json_loads(r.out, 0, NULL);
    CHECK_INT(json_integer_value(json_object_get(json_object_get(m, "lost_from"), "meeting")), 1);
    CHECK_INT(json_integer_value(json_object_get(json_object_get(m, "loss_reasons"), "price")), 1);
    CHECK(json_object_get(json_object_get(m, "loss_reasons"), "unspecified") == NULL);
    json_decref(m);
    cli_result_free(&r);
    r = RUN_CLI(NULL, "losses", "--owner", "x", "--product", "y");
    CHECK_STATUS(r, 1);
    CHECK(cli_has(r.err, "bad_request"));
    cli_result_free(&r);
    r = RUN_CLI(NULL, "--json", "list", "--source", "web");
    CHECK_STATUS(r, 0);
    CHECK(cli_has(r.out, "\"deal\":\"ls1\""));
    CHECK(!cli_has(r.out, "\"deal\":\"ls2\""));
    cli_result_free(&r);
    r = RUN_CLI(NULL, "board", "--source", "web");
    CHECK_STATUS(r, 0);
    CHECK(cli_has(r.out, "pipeline default"));
    cli_result_free(&r);
}

/* A move event for deal name into stage. */
static void move(const char *deal, const char *stage)
{
    CHECK(it_append(&daemon_, "{id: '%s-%s', type: stage, deal: '%s', stage: %s}", deal, stage,
                    deal, stage) > 0);
}

static void test_tail(void)
{
    move("tail-a", "lead");
    int64_t first = it_last_seq(&daemon_);
    move("tail-a", "qualified");
    move("tail-b", "lead");
    char out_path[IT_PATH_MAX + 16], from[32];
    snprintf(out_path, sizeof out_path, "%s/tail.out", daemon_.dir);
    snprintf(from, sizeof from, "%lld", (long long)first);
    /* From `first`: the two moves after it were missed, and come first, repaired. */
    pid_t pid =
        cli_spawn(&daemon_, out_path,
                  (const char *const[]){"--json", "tail", "--from", from, "--count", "6", NULL});
    CHECK(pid > 0);
    int64_t deadline = it_wall_ms() + 60000;
    char *text = NULL;
    while (it_wall_ms() < deadline) {
        free(text);
        text = cli_read_file(out_path);
        if (cli_count_lines(text) >= 2)
            break;
        CHECK(cli_wait(pid, 5) == -1);
    }
    CHECK_INT(cli_count_lines(text), 2);
    /* Live moves until it has seen six; a move published before its
     * subscription was live is repaired when the next one shows the gap. */
    int status = -1;
    for (int i = 0; status == -1 && it_wall_ms() < deadline; i++) {
        char deal[32];
        snprintf(deal, sizeof deal, "tail-live-%d", i);
        move(deal, "lead");
        status = cli_wait(pid, 500);
    }
    if (status == -1) {
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
    }
    CHECK_INT(status, 0);
    free(text);
    text = cli_read_file(out_path);
    json_t *lines = cli_ndjson(text);
    CHECK_INT(json_array_size(lines), 6);
    for (size_t i = 0; i < json_array_size(lines); i++) {
        json_t *l = json_array_get(lines, i);
        CHECK_INT(json_integer_value(json_object_get(l, "seq")), first + 1 + (int64_t)i);
        CHECK(json_string_value(json_object_get(l, "topic")) != NULL);
        if (i < 2)
            CHECK(json_is_true(json_object_get(l, "repaired")));
    }
    CHECK_STR(json_string_value(json_object_get(json_array_get(lines, 0), "to")), "qualified");
    CHECK_STR(json_string_value(json_object_get(json_array_get(lines, 0), "from")), "lead");
    json_decref(lines);
    free(text);

    /* Text lines: one per move. */
    snprintf(from, sizeof from, "%lld", (long long)first - 1);
    cli_result r = RUN_CLI(NULL, "tail", "--from", from, "--count", "2");
    CHECK_STATUS(r, 0);
    CHECK(cli_has(r.out, "tail-a  (new) -> lead  (default, open"));
    CHECK(cli_has(r.out, "tail-a  lead -> qualified"));
    CHECK(cli_has(r.out, "catch-up"));
    CHECK_INT(cli_count_lines(r.out), 2);
    cli_result_free(&r);
}

static void test_pipeline(void)
{
    cli_result r =
        RUN_CLI(NULL, "pipeline", "define", "--name", "cli-sales", "--stage", "new:10:7", "--stage",
                "demo:50", "--stage=signed:100::won", "--stage", "dropped:0:-:lost");
    CHECK_STATUS(r, 0);
    CHECK(cli_has(r.out, "pipeline cli-sales defined"));
    CHECK(cli_has(r.out, "  new                          10%         7  open\n"));
    CHECK(cli_has(r.out, "  signed                      100%         -  won\n"));
    cli_result_free(&r);
    r = RUN_CLI(NULL, "pipeline");
    CHECK_STATUS(r, 0);
    CHECK(cli_has(r.out, "pipeline default\n"));
    CHECK(cli_has(r.out, "pipeline cli-sales\n"));
    cli_result_free(&r);
    r = RUN_CLI(NULL, "--json", "pipeline", "show", "cli-sales");
    CHECK_STATUS(r, 0);
    json_t *reply = json_loads(r.out, 0, NULL);
    json_t *p = json_array_get(json_object_get(reply, "pipelines"), 0);
    CHECK_STR(json_string_value(json_object_get(p, "name")), "cli-sales");
    json_t *stages = json_object_get(p, "stages");
    CHECK_INT(json_array_size(stages), 4);
    CHECK_INT(json_integer_value(json_object_get(json_array_get(stages, 0), "rot_days")), 7);
    CHECK(json_is_null(json_object_get(json_array_get(stages, 1), "rot_days")));
    CHECK_STR(json_string_value(json_object_get(json_array_get(stages, 3), "outcome")), "lost");
    json_decref(reply);
    cli_result_free(&r);
    /* a pipeline that is not defined: the defined ones are named */
    const char *const *asks[] = {
        (const char *const[]){"pipeline", "show", "nope", NULL},
        (const char *const[]){"board", "--pipeline", "nope", NULL},
        (const char *const[]){"metrics", "--pipeline", "nope", NULL},
        (const char *const[]){"list", "--pipeline", "nope", NULL},
    };
    for (size_t i = 0; i < sizeof asks / sizeof asks[0]; i++) {
        r = cli_run(&daemon_, NULL, asks[i]);
        CHECK_STATUS(r, i == 3 ? 0 : 1);
        CHECK(cli_has(r.err, "`nope` is not defined"));
        CHECK(cli_has(r.err, "the defined pipelines are: default,"));
        CHECK(cli_has(r.err, "cli-sales"));
        cli_result_free(&r);
    }
    char path[IT_PATH_MAX + 32];
    snprintf(path, sizeof path, "%s/pipeline.json", daemon_.dir);
    cli_write_file(path,
                   "{\"pipeline\":\"cli-file\",\"stages\":[{\"name\":\"a\",\"probability\":5,"
                   "\"rot_days\":3},{\"name\":\"b\",\"probability\":100,\"outcome\":\"won\"}]}");
    r = RUN_CLI(NULL, "pipeline", "define", "--file", path, "--id", "cli-file-1");
    CHECK_STATUS(r, 0);
    CHECK(cli_has(r.out, "  a                             5%         3  open\n"));
    cli_result_free(&r);
    r = RUN_CLI(NULL, "pipeline", "define", "--file", path, "--id", "cli-file-1");
    CHECK_STATUS(r, 0);
    CHECK(cli_has(r.out, "was defined by that id"));
    cli_result_free(&r);
    r = RUN_CLI(NULL, "pipeline", "define", "--name", "x", "--stage", "a:101");
    CHECK_STATUS(r, 2);
    cli_result_free(&r);
    r = RUN_CLI(NULL, "pipeline", "define", "--file", "/nonexistent/p.json");
    CHECK_STATUS(r, 2);
    CHECK(cli_has(r.err, "No such file or directory"));
    cli_result_free(&r);
}

/* Runs dealflow with stdout into a pipe that is closed after the first line,
 * as `dealflow ... | head -1` does; its exit status, and stderr in err_path. */
static int run_into_short_pipe(const char *const *args, const char *err_path)
{
    int fds[2];
    CHECK(pipe(fds) == 0);
    pid_t pid = fork();
    if (pid == 0) {
        int err = open(err_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        int null = open("/dev/null", O_RDONLY);
        dup2(null, 0);
        dup2(fds[1], 1);
        dup2(err, 2);
        close(fds[0]);
        setenv("DEALFLOW_API", daemon_.api, 1);
        int n = 0;
        while (args[n])
            n++;
        const char *argv[16] = {DEALFLOW_BIN};
        for (int i = 0; i < n && i < 14; i++)
            argv[i + 1] = args[i];
        execv(DEALFLOW_BIN, (char *const *)argv);
        _exit(127);
    }
    close(fds[1]);
    char c;
    while (read(fds[0], &c, 1) == 1 && c != '\n') {
    }
    close(fds[0]);
    return cli_wait(pid, 60000);
}

static void test_small_things(void)
{
    /* singular nouns for one */
    CHECK(it_append(&daemon_, "{id: solo-1, type: stage, deal: solo, stage: lead, owner: solo}") >
          0);
    cli_result r = RUN_CLI(NULL, "list", "--owner", "solo");
    CHECK_STATUS(r, 0);
    CHECK(cli_has(r.out, "\n1 deal\n"));
    cli_result_free(&r);
    /* stats: the values in one column, right-aligned */
    r = RUN_CLI(NULL, "stats");
    CHECK_STATUS(r, 0);
    const char *events = strstr(r.out, "events "), *stale = strstr(r.out, "stale_notifications ");
    CHECK(events && stale);
    if (events && stale)
        CHECK_INT((int)(strchr(events, '\n') - events), (int)(strchr(stale, '\n') - stale));
    cli_result_free(&r);
    /* a reader that goes away is no error */
    char err_path[IT_PATH_MAX + 16];
    snprintf(err_path, sizeof err_path, "%s/pipe.err", daemon_.dir);
    CHECK_INT(run_into_short_pipe((const char *const[]){"--json", "replay", NULL}, err_path), 0);
    char *err = cli_read_file(err_path);
    CHECK_STR(err, "");
    free(err);
    CHECK_INT(run_into_short_pipe((const char *const[]){"replay", NULL}, err_path), 0);
    /* localhost is the loopback address */
    const char *port = strrchr(daemon_.api, ':');
    char api[64];
    snprintf(api, sizeof api, "tcp://localhost%s", port ? port : ":0");
    r = RUN_CLI(NULL, "--api", api, "ping");
    CHECK_STATUS(r, 0);
    CHECK(cli_has(r.out, "dealflowd 0.1.0"));
    cli_result_free(&r);
    /* ping says a daemon is down within a second (and a bit for the start) */
    int64_t start = it_wall_ms();
    r = RUN_CLI(NULL, "--api", "tcp://127.0.0.1:1", "ping");
    CHECK_STATUS(r, 3);
    CHECK(it_wall_ms() - start < 1500);
    cli_result_free(&r);
    /* an unreadable file says why */
    r = RUN_CLI(NULL, "send", "--file", "/nonexistent/events.ndjson");
    CHECK_STATUS(r, 2);
    CHECK(cli_has(r.err, "/nonexistent/events.ndjson: No such file or directory"));
    cli_result_free(&r);
}

static void test_import_where_map_dry_run(void)
{
    char path[IT_PATH_MAX + 32];
    snprintf(path, sizeof path, "%s/opps.csv", daemon_.dir);
    cli_write_file(path, "opp,state,closed,value\n"
                         "o1,Won,2024-02-01,100\n"
                         "o2,Lost,2024-02-02,200\n"
                         "o3,Engaging,,300\n"
                         "o4,Won,2024-02-04,400\n");
    const char *const dry[] = {"import",
                               path,
                               "--dry-run",
                               "--id",
                               "opp-{opp}-closed",
                               "--deal",
                               "opp-{opp}",
                               "--stage",
                               "{state}",
                               "--map",
                               "state=Won:won,Lost:lost",
                               "--where",
                               "state=Won,Lost",
                               "--at",
                               "closed",
                               "--amount",
                               "value",
                               NULL};
    int64_t before = it_last_seq(&daemon_);
    cli_result r = cli_run(&daemon_, NULL, dry);
    CHECK_STATUS(r, 0);
    json_t *lines = cli_ndjson(r.out);
    CHECK_INT(json_array_size(lines), 3);
    CHECK_STR(json_string_value(json_object_get(json_array_get(lines, 0), "stage")), "won");
    CHECK_STR(json_string_value(json_object_get(json_array_get(lines, 1), "stage")), "lost");
    CHECK_STR(json_string_value(json_object_get(json_array_get(lines, 2), "id")), "opp-o4-closed");
    CHECK_INT(json_integer_value(json_object_get(json_array_get(lines, 2), "amount")), 400);
    json_decref(lines);
    CHECK(cli_has(r.err, "4 rows: 3 events printed, nothing sent, 0 refused, 1 skipped"));
    CHECK_INT(it_last_seq(&daemon_), before);
    cli_result_free(&r);
    /* with --json the summary on stderr is one JSON object; stdout keeps the events */
    const char *dry_json[sizeof dry / sizeof dry[0] + 1] = {"--json"};
    memcpy(dry_json + 1, dry, sizeof dry);
    r = cli_run(&daemon_, NULL, dry_json);
    CHECK_STATUS(r, 0);
    lines = cli_ndjson(r.out);
    CHECK_INT(json_array_size(lines), 3);
    json_decref(lines);
    json_t *summary = json_loads(r.err, 0, NULL);
    CHECK(json_is_object(summary));
    CHECK_INT(json_integer_value(json_object_get(summary, "rows")), 4);
    CHECK_INT(json_integer_value(json_object_get(summary, "printed")), 3);
    CHECK_INT(json_integer_value(json_object_get(summary, "refused")), 0);
    CHECK_INT(json_integer_value(json_object_get(summary, "skipped")), 1);
    CHECK(json_is_true(json_object_get(summary, "dry_run")));
    CHECK(json_object_size(json_object_get(summary, "errors")) == 0);
    json_decref(summary);
    CHECK_INT(it_last_seq(&daemon_), before);
    cli_result_free(&r);
    /* the same without --dry-run records them */
    const char *const real[] = {
        "import",  path,      "--id",  "opp-{opp}-closed",        "--deal",  "opp-{opp}",
        "--stage", "{state}", "--map", "state=Won:won,Lost:lost", "--where", "state=Won,Lost",
        "--at",    "closed",  NULL};
    r = cli_run(&daemon_, NULL, real);
    CHECK_STATUS(r, 0);
    CHECK(cli_has(r.out, "4 rows: 3 recorded, 0 duplicates, 0 refused, 1 skipped"));
    cli_result_free(&r);
    r = RUN_CLI(NULL, "--json", "deal", "opp-o2");
    CHECK_STATUS(r, 0);
    CHECK(cli_has(r.out, "\"stage\":\"lost\""));
    cli_result_free(&r);
    r = RUN_CLI(NULL, "import", path, "--id", "x", "--deal", "y", "--where", "nope=1");
    CHECK_STATUS(r, 2);
    CHECK(cli_has(r.err, "no column `nope`"));
    cli_result_free(&r);
}

/* --source goes into the stage and update events that read it, and is refused for the others. */
static void test_import_source(void)
{
    char path[IT_PATH_MAX + 32];
    snprintf(path, sizeof path, "%s/sources.csv", daemon_.dir);
    cli_write_file(path, "ref,channel,state,day,closed\n"
                         "s1,web,lead,2024-03-01,\n"
                         "s2,referral,lead,2024-03-02,2024-03-09\n"
                         "s3,,lead,2024-03-03,\n");
    cli_result r = RUN_CLI(NULL, "--json", "import", path, "--id", "src-{ref}", "--deal",
                           "deal-src-{ref}", "--stage", "{state}", "--at", "day", "--source",
                           "{channel}", "--also", "src-{ref}-won:won:closed");
    CHECK_STATUS(r, 0);
    CHECK(cli_has(r.out, "\"recorded\":4"));
    cli_result_free(&r);
    r = RUN_CLI(NULL, "--json", "deal", "deal-src-s1");
    CHECK(cli_has(r.out, "\"source\":\"web\""));
    cli_result_free(&r);
    /* the --also event carries the first one's source; an empty one is left out */
    r = RUN_CLI(NULL, "--json", "metrics", "--source", "referral");
    CHECK_STATUS(r, 0);
    CHECK(cli_has(r.out, "\"won\":1"));
    cli_result_free(&r);
    r = RUN_CLI(NULL, "--json", "deal", "deal-src-s3");
    CHECK(cli_has(r.out, "\"source\":null"));
    cli_result_free(&r);
    /* an update sets it */
    snprintf(path, sizeof path, "%s/sources-later.csv", daemon_.dir);
    cli_write_file(path, "ref,channel\ns3,partner\n");
    r = RUN_CLI(NULL, "import", path, "--type", "update", "--id", "src-{ref}-update", "--deal",
                "deal-src-{ref}", "--source", "{channel}");
    CHECK_STATUS(r, 0);
    CHECK(cli_has(r.out, "1 rows: 1 recorded"));
    cli_result_free(&r);
    r = RUN_CLI(NULL, "--json", "deal", "deal-src-s3");
    CHECK(cli_has(r.out, "\"source\":\"partner\""));
    cli_result_free(&r);
    /* an activity does not read it */
    int64_t before = it_last_seq(&daemon_);
    r = RUN_CLI(NULL, "import", path, "--type", "activity", "--id", "src-{ref}-call", "--deal",
                "deal-src-{ref}", "--kind", "call", "--source", "{channel}");
    CHECK_STATUS(r, 2);
    CHECK(cli_has(r.err, "--source: a activity event does not read it"));
    CHECK_INT(it_last_seq(&daemon_), before);
    cli_result_free(&r);
}

static bool start_daemon(void)
{
    signal(SIGPIPE, SIG_IGN);
    if (it_start(&daemon_, NULL))
        return true;
    fprintf(stderr, "cannot start dealflowd\n");
    CHECK(!"dealflowd started");
    return false;
}

static void stop_daemon(void)
{
    if (df_checks_failed)
        it_print_log(&daemon_);
    it_cleanup(&daemon_);
    CHECK_INT(it_done(), 0);
}

/* The first line of text, at most 40 characters, into out. */
static const char *key_line(const char *text, char out[41])
{
    size_t len = strcspn(text, "\n");
    snprintf(out, 41, "%.*s", (int)(len > 40 ? 40 : len), text);
    return out;
}

static mode_t file_mode(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? st.st_mode & 07777 : 0;
}

/* keygen writes a secret key file only its owner reads, prints its public key
 * (and --public prints it back), never overwrites a key unless --force; the
 * key options and the environment reach the library, which refuses bad keys. */
static void test_keygen(void)
{
    char dir[] = "/tmp/df-cli-keys-XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    char path[256], json_path[256], open_path[256];
    snprintf(path, sizeof path, "%s/client.key", dir);
    snprintf(json_path, sizeof json_path, "%s/json.key", dir);
    snprintf(open_path, sizeof open_path, "%s/open.key", dir);

    cli_result r = RUN_CLI(NULL, "keygen", "--out", path);
    CHECK_STATUS(r, 0);
    char public_key[41], again[41], secret_key[41];
    key_line(r.out, public_key);
    CHECK_INT(strlen(r.out), 41);
    CHECK_INT(file_mode(path), 0600);
    char *text = cli_read_file(path);
    key_line(text, secret_key);
    CHECK_INT(strlen(secret_key), 40);
    CHECK(strcmp(secret_key, public_key) != 0);
    char comment[64];
    snprintf(comment, sizeof comment, "\n# public %s\n", public_key);
    CHECK(cli_has(text, comment));
    cli_result_free(&r);

    r = RUN_CLI(NULL, "keygen", "--public", path);
    CHECK_STATUS(r, 0);
    CHECK_STR(key_line(r.out, again), public_key);
    cli_result_free(&r);

    /* an existing key stays, unless --force */
    r = RUN_CLI(NULL, "keygen", "--out", path);
    CHECK_STATUS(r, 1);
    CHECK(cli_has(r.err, "exists"));
    cli_result_free(&r);
    char *unchanged = cli_read_file(path);
    CHECK_STR(unchanged, text);
    free(unchanged);
    r = RUN_CLI(NULL, "keygen", "--out", path, "--force");
    CHECK_STATUS(r, 0);
    CHECK(strcmp(key_line(r.out, again), public_key) != 0);
    CHECK_INT(file_mode(path), 0600);
    cli_result_free(&r);
    r = RUN_CLI(NULL, "keygen", "--public", path);
    CHECK_STATUS(r, 0);
    CHECK_STR(key_line(r.out, public_key), again);
    cli_result_free(&r);
    free(text);

    r = RUN_CLI(NULL, "--json", "keygen", "--out", json_path);
    CHECK_STATUS(r, 0);
    json_t *j = json_loads(r.out, 0, NULL);
    CHECK(j != NULL && json_is_string(json_object_get(j, "public")) &&
          strlen(json_string_value(json_object_get(j, "public"))) == 40);
    CHECK(j != NULL && json_is_string(json_object_get(j, "file")) &&
          strcmp(json_string_value(json_object_get(j, "file")), json_path) == 0);
    json_decref(j);
    cli_result_free(&r);

    r = RUN_CLI(NULL, "keygen", "--public", open_path);
    CHECK_STATUS(r, 2);
    CHECK(cli_has(r.err, "open.key"));
    cli_result_free(&r);

    /* keys on the command line, before or after the command */
    r = RUN_CLI(NULL, "--server-key", "not-a-key", "--key-file", path, "ping");
    CHECK_STATUS(r, 4);
    CHECK(cli_has(r.err, "Z85"));
    cli_result_free(&r);
    text = cli_read_file(path);
    FILE *f = fopen(open_path, "w");
    CHECK(f != NULL);
    if (f) {
        fputs(text, f);
        fclose(f);
    }
    free(text);
    chmod(open_path, 0644);
    r = RUN_CLI(NULL, "ping", "--server-key", public_key, "--key-file", open_path);
    CHECK_STATUS(r, 4);
    CHECK(cli_has(r.err, "too open"));
    cli_result_free(&r);
    /* keygen --public reads a key file by the same rule: owner only, comments before the key */
    r = RUN_CLI(NULL, "keygen", "--public", open_path);
    CHECK_STATUS(r, 2);
    CHECK(cli_has(r.err, "too open"));
    cli_result_free(&r);
    text = cli_read_file(path);
    char commented[256];
    snprintf(commented, sizeof commented, "# made by hand\n\n%s", text ? text : "");
    free(text);
    cli_write_file(open_path, commented);
    chmod(open_path, 0600);
    r = RUN_CLI(NULL, "keygen", "--public", open_path);
    CHECK_STATUS(r, 0);
    CHECK_STR(key_line(r.out, again), public_key);
    cli_result_free(&r);
    /* and from the environment: a CURVE client gets nothing from a plain daemon */
    setenv("DEALFLOW_SERVER_KEY", public_key, 1);
    setenv("DEALFLOW_KEY_FILE", path, 1);
    r = RUN_CLI(NULL, "ping", "--timeout", "200", "--attempts", "1");
    CHECK_STATUS(r, 3);
    CHECK(cli_has(r.err, "CURVE"));
    cli_result_free(&r);
    /* an empty option turns the environment's keys off */
    r = RUN_CLI(NULL, "ping", "--server-key=", "--key-file=");
    CHECK_STATUS(r, 0);
    cli_result_free(&r);
    unsetenv("DEALFLOW_SERVER_KEY");
    unsetenv("DEALFLOW_KEY_FILE");

    unlink(path);
    unlink(json_path);
    unlink(open_path);
    rmdir(dir);
}

/* redact: the fields go from the deal's events, said as text or JSON; an
 * unknown deal is refused (exit 1), a redact without a reason is a usage
 * error (exit 2). */
static void test_redact(void)
{
    CHECK(it_append(&daemon_, "{id: cr-1, type: stage, deal: cr-text, stage: lead, owner: ana}") >
          0);
    CHECK(it_append(&daemon_, "{id: cr-2, type: update, deal: cr-text, name: Acme}") > 0);
    CHECK(it_append(&daemon_, "{id: cr-3, type: stage, deal: cr-json, stage: lead, owner: ana}") >
          0);
    CHECK(it_append(&daemon_, "{id: cr-4, type: update, deal: cr-json, name: Acme}") > 0);
    cli_result r = RUN_CLI(NULL, "redact", "cr-text", "--field", "owner", "--field=name",
                           "--reason", "erasure request");
    CHECK_STATUS(r, 0);
    CHECK(cli_has(r.out, "redacted 2 events of cr-text (seq "));
    cli_result_free(&r);
    const msgpack_object *deal = it_get(it_call(&daemon_, "{op: deal, deal: cr-text}"), "deal");
    CHECK(it_is_nil(deal, "name"));
    const char *owner = it_str(deal, "owner");
    CHECK(owner != NULL && strncmp(owner, "owner-", 6) == 0);

    int64_t last = it_last_seq(&daemon_);
    r = RUN_CLI(NULL, "--json", "redact", "cr-json", "--fields", "owner,name", "--reason", "gdpr");
    CHECK_STATUS(r, 0);
    json_t *j = json_loads(r.out, 0, NULL);
    CHECK(j != NULL);
    CHECK_INT(json_integer_value(json_object_get(j, "seq")), last + 1);
    CHECK_INT(json_integer_value(json_object_get(j, "redacted")), 2);
    CHECK_INT(json_object_size(j), 2);
    json_decref(j);
    cli_result_free(&r);

    r = RUN_CLI(NULL, "redact", "cr-nobody", "--field", "name", "--reason", "gdpr");
    CHECK_STATUS(r, 1);
    CHECK(cli_has(r.err, "not_found"));
    CHECK_STR(r.out, "");
    cli_result_free(&r);
    r = RUN_CLI(NULL, "redact", "cr-text", "--field", "stage", "--reason", "gdpr");
    CHECK_STATUS(r, 1);
    CHECK(cli_has(r.err, "bad_request"));
    cli_result_free(&r);
    r = RUN_CLI(NULL, "redact", "cr-text", "--field", "name");
    CHECK_STATUS(r, 2);
    cli_result_free(&r);
    r = RUN_CLI(NULL, "redact", "--help");
    CHECK_STATUS(r, 0);
    CHECK(cli_has(r.out, "usage: dealflow redact"));
    cli_result_free(&r);
    r = RUN_CLI(NULL, "--help");
    CHECK(cli_has(r.out, "  redact DEAL"));
    cli_result_free(&r);
}

static const df_test tests[] = {
    {"usage_and_ping", test_usage_and_ping},
    {"send", test_send},
    {"import", test_import},
    {"import_interrupted", test_import_interrupted},
    {"history_and_deal", test_history_and_deal},
    {"list_replay_stats", test_list_replay_stats},
    {"board_and_metrics", test_board_and_metrics},
    {"losses", test_losses},
    {"outlook", test_outlook},
    {"tail", test_tail},
    {"pipeline", test_pipeline},
    {"small_things", test_small_things},
    {"import_where_map_dry_run", test_import_where_map_dry_run},
    {"keygen", test_keygen},
    {"redact", test_redact},
    {"import_source", test_import_source},
    {NULL, NULL},
};

int main(int argc, char **argv)
{
    static const df_fixture fixture = {.setup = start_daemon, .teardown = stop_daemon};
    return df_test_main(argc, argv, tests, &fixture);
}

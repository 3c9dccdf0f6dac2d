/* show.c: the read commands that print what the daemon holds: deal, history, list, replay, stats,
 * rejected, board and metrics. */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "codec.h"

#define TEXT_SHOWN 64

static const char *time_text(const msgpack_object *map, const char *key, char *buf)
{
    int64_t ms;
    if (!mp_int(map, key, &ms))
        return "-";
    return time_format(ms, buf);
}

/* ---- deal ---- */

static const char deal_help[] =
    "usage: dealflow deal DEAL [--now T] [--as-of T]\n"
    "\n"
    "Shows the deal's current state: stage, status, time in each stage,\n"
    "amount, owner, staleness. --as-of T shows it as it stood at T (only\n"
    "events that happened by then count); --now T computes days as of T.\n"
    "Exit status 1 when the deal is not known.\n";

static void print_deal(const msgpack_object *d)
{
    static const char *const order[] = {"deal",
                                        "pipeline",
                                        "stage",
                                        "status",
                                        "probability",
                                        "amount",
                                        "owner",
                                        "name",
                                        "product",
                                        "source",
                                        "close_date",
                                        "created",
                                        "stage_since",
                                        "days_in_stage",
                                        "last_activity",
                                        "days_since_activity",
                                        "activities",
                                        "version",
                                        "stale",
                                        "regressions",
                                        "reopened",
                                        "pushes",
                                        NULL};
    static const char *const times[] = {"close_date", "created", "stage_since", "last_activity",
                                        NULL};
    for (int i = 0; order[i]; i++) {
        const msgpack_object *v = mp_get(d, order[i]);
        /* a source is shown when the deal has one, so that deals without
         * read as they always did */
        if (!v || (strcmp(order[i], "source") == 0 && v->type == MSGPACK_OBJECT_NIL))
            continue;
        char buf[TIME_TEXT_MAX + TEXT_SHOWN];
        const char *text = "-";
        bool is_time = false;
        for (int t = 0; times[t]; t++)
            is_time = is_time || strcmp(times[t], order[i]) == 0;
        if (v->type == MSGPACK_OBJECT_STR)
            text = mp_str(d, order[i], buf, sizeof buf);
        else if (v->type == MSGPACK_OBJECT_BOOLEAN)
            text = v->via.boolean ? "yes" : "no";
        else if (is_time)
            text = time_text(d, order[i], buf);
        else
            text = mp_num_text(v, buf, sizeof buf);
        printf("%-20s %s\n", order[i], text);
    }
    const msgpack_object *tis = mp_get(d, "time_in_stage");
    if (tis && tis->type == MSGPACK_OBJECT_MAP && tis->via.map.size > 0) {
        printf("time in stage\n");
        for (uint32_t i = 0; i < tis->via.map.size; i++) {
            const msgpack_object *k = &tis->via.map.ptr[i].key;
            const msgpack_object *v = &tis->via.map.ptr[i].val;
            char name[TEXT_SHOWN + 1];
            df_printable(k->type == MSGPACK_OBJECT_STR ? k->via.str.ptr : "",
                         k->type == MSGPACK_OBJECT_STR ? k->via.str.size : 0, name, sizeof name);
            double ms = v->type == MSGPACK_OBJECT_POSITIVE_INTEGER ? (double)v->via.u64 : 0;
            printf("  %-18s %.1f days\n", name, ms / (double)DF_DAY_MS);
        }
    }
}

int cmd_deal(cli *g, int argc, char **argv)
{
    const char *now = NULL, *as_of = NULL;
    const cli_opt opts[] = {{"--now", true, &now}, {"--as-of", true, &as_of}, {NULL, false, NULL}};
    const char *pos[1];
    int rc = cli_parse(g, "deal", deal_help, argc, argv, opts, pos, 1, 1, NULL);
    if (rc)
        return rc < 0 ? EXIT_OK : rc;
    int64_t now_ms, as_of_ms;
    if ((now && !cli_time_opt("deal", "--now", now, &now_ms)) ||
        (as_of && !cli_time_opt("deal", "--as-of", as_of, &as_of_ms)))
        return EXIT_USAGE;
    cli_reply r;
    cli_reply_init(&r);
    rc = df_get_deal(cli_client(g), pos[0], now ? &now_ms : NULL, as_of ? &as_of_ms : NULL,
                     &r.bytes, &r.err);
    rc = cli_reply_take(g, "deal", rc, &r);
    if (rc == 0) {
        const msgpack_object *d = mp_get(&r.obj, "deal");
        if (g->json)
            json_print_line(stdout, d ? d : &r.obj);
        else
            print_deal(d);
    }
    cli_reply_free(&r);
    return rc;
}

/* ---- history and replay: recorded events ---- */

/* What an event did, in words. */
static void describe(const msgpack_object *e, char *out, size_t cap)
{
    char type[16], a[TEXT_SHOWN + 1], b[TEXT_SHOWN + 1], c[TEXT_SHOWN + 1], num[40];
    mp_str(e, "type", type, sizeof type);
    size_t n = 0;
#define ADD(...)                                                                                   \
    do {                                                                                           \
        if (n < cap)                                                                               \
            n += (size_t)snprintf(out + n, cap - n, __VA_ARGS__);                                  \
    } while (0)
    out[0] = '\0';
    if (strcmp(type, "stage") == 0) {
        ADD("moved to %s", mp_str(e, "stage", a, sizeof a));
        if (mp_get(e, "pipeline"))
            ADD(" in pipeline %s", mp_str(e, "pipeline", b, sizeof b));
    } else if (strcmp(type, "activity") == 0) {
        ADD("%s", mp_str(e, "kind", a, sizeof a));
        if (mp_get(e, "actor"))
            ADD(" by %s", mp_str(e, "actor", b, sizeof b));
        if (mp_get(e, "note"))
            ADD(": %s", mp_str(e, "note", c, sizeof c));
    } else if (strcmp(type, "update") == 0) {
        ADD("updated");
    } else if (strcmp(type, "pipeline") == 0) {
        ADD("pipeline %s defined:", mp_str(e, "pipeline", a, sizeof a));
        const msgpack_object *stages = mp_get(e, "stages");
        for (uint32_t i = 0;
             stages && stages->type == MSGPACK_OBJECT_ARRAY && i < stages->via.array.size && i < 16;
             i++) {
            int64_t p = 0;
            mp_int(&stages->via.array.ptr[i], "probability", &p);
            ADD(" %s %lld%%", mp_str(&stages->via.array.ptr[i], "name", b, sizeof b), (long long)p);
        }
        return;
    } else {
        ADD("%s", type);
    }
    /* Values a stage or update event sets; nil clears. */
    static const char *const keys[] = {"amount",     "owner",  "name",   "product",
                                       "close_date", "reason", "source", NULL};
    for (int i = 0; keys[i]; i++) {
        const msgpack_object *v = mp_get(e, keys[i]);
        if (!v)
            continue;
        if (v->type == MSGPACK_OBJECT_NIL)
            ADD(", %s cleared", keys[i]);
        else if (v->type == MSGPACK_OBJECT_STR)
            ADD(", %s %s", keys[i], mp_str(e, keys[i], a, sizeof a));
        else if (strcmp(keys[i], "close_date") == 0)
            ADD(", close_date %s", time_text(e, keys[i], num));
        else
            ADD(", %s %s", keys[i], mp_num_text(v, num, sizeof num));
    }
#undef ADD
}

typedef struct event_table {
    bool json;
    bool with_deal;
    int64_t max_at;
    size_t rows;
} event_table;

static void print_event(event_table *t, const msgpack_object *e)
{
    if (t->json) {
        json_print_line(stdout, e);
        t->rows++;
        return;
    }
    if (t->rows == 0) {
        if (t->with_deal)
            printf("%8s  %-24s  %-24s  %-20s  %-8s  %s\n", "seq", "at", "recv", "deal", "type",
                   "what happened");
        else
            printf("%8s  %-24s  %-24s  %-8s  %s\n", "seq", "at", "recv", "type", "what happened");
    }
    int64_t seq = 0, at = 0;
    mp_int(e, "seq", &seq);
    bool late = mp_int(e, "at", &at) && t->rows > 0 && at < t->max_at;
    if (t->rows == 0 || at > t->max_at)
        t->max_at = at;
    char at_text[TIME_TEXT_MAX], recv_text[TIME_TEXT_MAX], type[16], deal[TEXT_SHOWN + 1],
        what[512];
    time_text(e, "at", at_text);
    describe(e, what, sizeof what);
    if (t->with_deal)
        printf("%8lld  %-24s  %-24s  %-20s  %-8s  %s%s\n", (long long)seq,
               time_text(e, "at", at_text), time_text(e, "recv", recv_text),
               mp_str(e, "deal", deal, sizeof deal), mp_str(e, "type", type, sizeof type), what,
               late ? " (late: happened before an earlier event)" : "");
    else
        printf("%8lld  %-24s  %-24s  %-8s  %s%s\n", (long long)seq, time_text(e, "at", at_text),
               time_text(e, "recv", recv_text), mp_str(e, "type", type, sizeof type), what,
               late ? " (late: happened before an earlier event)" : "");
    t->rows++;
}

/* Prints with fn every item of the iterator that an open call gave (it
 * returned opened, and why in *err); frees the iterator. */
static int drain(cli *g, const char *what, int opened, df_iter *it, df_error *err,
                 void (*fn)(void *, const msgpack_object *), void *ctx)
{
    int got = cli_check(g, what, opened, err);
    if (got != 0) {
        df_iter_free(it);
        return got;
    }
    const char *item;
    size_t len;
    msgpack_zone zone;
    msgpack_zone_init(&zone, 4096);
    while ((got = df_iter_next(it, &item, &len, err)) == 1) {
        msgpack_object obj;
        msgpack_zone_clear(&zone);
        if (df_msgpack_unpack(item, len, &zone, &obj, err) < 0) {
            got = DF_EINTERNAL;
            break;
        }
        fn(ctx, &obj);
        if (ferror(stdout))
            break; /* the reader went away (a pipe into head): nothing to print for */
    }
    msgpack_zone_destroy(&zone);
    df_iter_free(it);
    if (got < 0)
        return cli_fail(what, got, err);
    return 0;
}

/* Parses a command that takes npos positionals and --after N. Returns 0 with
 * *after (0 when not given), -1 after --help, or EXIT_USAGE. */
static int parse_after(cli *g, const char *name, const char *help, int argc, char **argv,
                       const char **pos, int npos, uint64_t *after)
{
    const char *text = NULL;
    const cli_opt opts[] = {{"--after", true, &text}, {NULL, false, NULL}};
    int rc = cli_parse(g, name, help, argc, argv, opts, pos, npos, npos, NULL);
    *after = 0;
    if (rc == 0 && text && !cli_uint_opt(name, "--after", text, after))
        rc = EXIT_USAGE;
    return rc;
}

static void print_event_cb(void *ctx, const msgpack_object *e)
{
    print_event(ctx, e);
}

static const char history_help[] =
    "usage: dealflow history DEAL [--after SEQ]\n"
    "\n"
    "The deal's recorded events in the order they were recorded, as an auditor\n"
    "reads them: seq | at (when it happened) | recv (when the daemon received\n"
    "it) | type | what happened. An event that happened before one recorded\n"
    "earlier is marked late: the deal's state places it where its time puts it.\n"
    "With --json, each recorded event as one JSON line (NDJSON).\n"
    "Exit status 1 when the deal is not known.\n";

int cmd_history(cli *g, int argc, char **argv)
{
    const char *pos[1];
    uint64_t after;
    int rc = parse_after(g, "history", history_help, argc, argv, pos, 1, &after);
    if (rc)
        return rc < 0 ? EXIT_OK : rc;
    df_iter *it = NULL;
    df_error err = {0};
    rc = df_history_open(cli_client(g), pos[0], after, &it, &err);
    event_table t = {.json = g->json};
    return drain(g, "history", rc, it, &err, print_event_cb, &t);
}

static const char replay_help[] =
    "usage: dealflow replay [--after SEQ]\n"
    "\n"
    "Every recorded event with a seq above SEQ (default 0), in seq order, as\n"
    "a table or (--json) NDJSON, page after page up to the last recorded seq.\n";

int cmd_replay(cli *g, int argc, char **argv)
{
    uint64_t after;
    int rc = parse_after(g, "replay", replay_help, argc, argv, NULL, 0, &after);
    if (rc)
        return rc < 0 ? EXIT_OK : rc;
    df_iter *it = NULL;
    df_error err = {0};
    rc = df_replay_open(cli_client(g), after, &it, &err);
    event_table t = {.json = g->json, .with_deal = true};
    return drain(g, "replay", rc, it, &err, print_event_cb, &t);
}

/* ---- list ---- */

static const char list_help[] =
    "usage: dealflow list [--pipeline P] [--stage S] [--owner O] [--status open|won|lost]\n"
    "                     [--product X] [--source S] [--stale] [--idle-days N] [--now T]\n"
    "\n"
    "Deals matching every filter given, ordered by deal id, every page.\n"
    "--stale: only stale deals; --idle-days N: nothing happened for N days.\n"
    "A table, or (--json) one deal object per line.\n";

typedef struct list_state {
    bool json;
    size_t rows;
} list_state;

static void print_list_row(void *ctx, const msgpack_object *d)
{
    list_state *st = ctx;
    if (st->json) {
        json_print_line(stdout, d);
        st->rows++;
        return;
    }
    if (st->rows++ == 0)
        printf("%-32s  %-12s  %-14s  %-6s  %6s  %14s  %-16s  %s\n", "deal", "pipeline", "stage",
               "status", "days", "amount", "owner", "stale");
    char deal[TEXT_SHOWN + 1], pipeline[TEXT_SHOWN + 1], stage[TEXT_SHOWN + 1], status[16],
        days[24], amount[40], owner[TEXT_SHOWN + 1];
    const msgpack_object *stale = mp_get(d, "stale");
    mp_str(d, "stage", stage, sizeof stage);
    mp_str(d, "owner", owner, sizeof owner);
    printf("%-32s  %-12s  %-14s  %-6s  %6s  %14s  %-16s  %s\n",
           mp_str(d, "deal", deal, sizeof deal), mp_str(d, "pipeline", pipeline, sizeof pipeline),
           stage[0] ? stage : "-", mp_str(d, "status", status, sizeof status),
           mp_num_text(mp_get(d, "days_in_stage"), days, sizeof days),
           mp_num_text(mp_get(d, "amount"), amount, sizeof amount), owner[0] ? owner : "-",
           stale && stale->type == MSGPACK_OBJECT_BOOLEAN && stale->via.boolean ? "stale" : "");
}

int cmd_list(cli *g, int argc, char **argv)
{
    const char *stale = NULL, *idle = NULL, *now = NULL;
    df_list_filters f = {0};
    const char *product = NULL, *source = NULL;
    const cli_opt opts[] = {
        {"--pipeline", true, &f.pipeline},
        {"--stage", true, &f.stage},
        {"--owner", true, &f.owner},
        {"--product", true, &product},
        {"--source", true, &source},
        {"--status", true, &f.status},
        {"--stale", false, &stale},
        {"--idle-days", true, &idle},
        {"--now", true, &now},
        {NULL, false, NULL},
    };
    int rc = cli_parse(g, "list", list_help, argc, argv, opts, NULL, 0, 0, NULL);
    if (rc)
        return rc < 0 ? EXIT_OK : rc;
    uint64_t idle_days;
    int64_t now_ms;
    if ((idle && !cli_uint_opt("list", "--idle-days", idle, &idle_days)) ||
        (now && !cli_time_opt("list", "--now", now, &now_ms)))
        return EXIT_USAGE;
    f.stale = stale != NULL;
    f.idle_days = idle ? &idle_days : NULL;
    f.now = now ? &now_ms : NULL;
    df_iter *it = NULL;
    df_error err = {0};
    if (product || source) {
        /* the library's filter struct has no product or source */
        cli_figures_args a = {.pipeline = f.pipeline,
                              .owner = f.owner,
                              .product = product,
                              .source = source,
                              .stage = f.stage,
                              .status = f.status,
                              .now = f.now,
                              .stale = f.stale,
                              .idle_days = f.idle_days};
        rc = cli_list_open(g, &a, &it, &err);
    } else {
        rc = df_list_open_filters(cli_client(g), &f, &it, &err);
    }
    list_state st = {.json = g->json};
    rc = drain(g, "list", rc, it, &err, print_list_row, &st);
    if (rc == 0 && !g->json)
        printf("%zu deal%s\n", st.rows, st.rows == 1 ? "" : "s");
    if (rc == 0 && st.rows == 0 && f.pipeline && g->client) {
        /* no deal: say so when it is because the pipeline does not exist */
        cli_reply p;
        cli_reply_init(&p);
        if (df_get_pipelines(g->client, f.pipeline, &p.bytes, &p.err) == DF_EUNKNOWN_PIPELINE) {
            fprintf(stderr, "dealflow list: pipeline `%s` is not defined\n", f.pipeline);
            cli_pipeline_hint(g);
        }
        cli_reply_free(&p);
    }
    return rc;
}

/* ---- stats, rejected ---- */

static const char stats_help[] = "usage: dealflow stats\n"
                                 "The daemon's counters: events, duplicates, rejected, deals,\n"
                                 "last_seq, commits, notifications, pending, uptime, db size.\n";

int cmd_stats(cli *g, int argc, char **argv)
{
    int rc = cli_parse(g, "stats", stats_help, argc, argv, NULL, NULL, 0, 0, NULL);
    if (rc)
        return rc < 0 ? EXIT_OK : rc;
    cli_reply r;
    cli_reply_init(&r);
    rc = cli_reply_take(g, "stats", df_get_stats(cli_client(g), &r.bytes, &r.err), &r);
    if (rc == 0 && g->json) {
        json_print_line(stdout, &r.obj);
    } else if (rc == 0) {
        /* two passes: the columns are as wide as the widest key and value */
        int key_width = 0, num_width = 0;
        for (int pass = 0; pass < 2; pass++) {
            for (uint32_t i = 0; i < r.obj.via.map.size; i++) {
                const msgpack_object *k = &r.obj.via.map.ptr[i].key;
                char key[TEXT_SHOWN + 1], num[40];
                df_printable(k->type == MSGPACK_OBJECT_STR ? k->via.str.ptr : "",
                             k->type == MSGPACK_OBJECT_STR ? k->via.str.size : 0, key, sizeof key);
                if (strcmp(key, "ok") == 0)
                    continue;
                mp_num_text(&r.obj.via.map.ptr[i].val, num, sizeof num);
                if (pass == 0) {
                    key_width = (int)strlen(key) > key_width ? (int)strlen(key) : key_width;
                    num_width = (int)strlen(num) > num_width ? (int)strlen(num) : num_width;
                } else {
                    printf("%-*s  %*s\n", key_width, key, num_width, num);
                }
            }
        }
    }
    cli_reply_free(&r);
    return rc;
}

static const char rejected_help[] =
    "usage: dealflow rejected [--after ID]\n"
    "\n"
    "What ingest could not record, oldest first: id, when it was received,\n"
    "the error and why. `raw`, the bytes as received, is printed as base64;\n"
    "when those bytes are msgpack, their JSON form follows. With --json one\n"
    "item per line, raw as a base64 string.\n";

typedef struct rejected_state {
    bool json;
    size_t shown;
} rejected_state;

static void print_rejected(void *ctx, const msgpack_object *item)
{
    rejected_state *st = ctx;
    st->shown++;
    if (st->json) {
        json_print_line(stdout, item);
        return;
    }
    int64_t id = 0;
    mp_int(item, "id", &id);
    char recv[TIME_TEXT_MAX], error[32], message[DF_MESSAGE_MAX];
    printf("#%lld  %s  %s: %s\n", (long long)id, time_text(item, "recv", recv),
           mp_str(item, "error", error, sizeof error),
           mp_str(item, "message", message, sizeof message));
    const msgpack_object *raw = mp_get(item, "raw");
    if (!raw || raw->type != MSGPACK_OBJECT_BIN)
        return;
    char *b64 = base64_encode(raw->via.bin.ptr, raw->via.bin.size);
    printf("    raw (base64, %u bytes): %s\n", raw->via.bin.size, b64 ? b64 : "?");
    free(b64);
    msgpack_zone inner;
    msgpack_zone_init(&inner, 1024);
    msgpack_object decoded;
    df_error err;
    if (raw->via.bin.size > 0 &&
        df_msgpack_unpack(raw->via.bin.ptr, raw->via.bin.size, &inner, &decoded, &err) == 0) {
        printf("    as JSON: ");
        json_print_line(stdout, &decoded);
    }
    msgpack_zone_destroy(&inner);
}

int cmd_rejected(cli *g, int argc, char **argv)
{
    uint64_t after;
    int rc = parse_after(g, "rejected", rejected_help, argc, argv, NULL, 0, &after);
    if (rc)
        return rc < 0 ? EXIT_OK : rc;
    df_iter *it = NULL;
    df_error err = {0};
    rc = df_rejected_open(cli_client(g), after, &it, &err);
    rejected_state st = {.json = g->json};
    rc = drain(g, "rejected", rc, it, &err, print_rejected, &st);
    if (rc == 0 && !g->json)
        printf("%zu rejected item%s\n", st.shown, st.shown == 1 ? "" : "s");
    return rc;
}

/* ---- board, metrics ---- */

static const char board_help[] =
    "usage: dealflow board [--pipeline P] [--owner O | --product X | --source S] [--now T]\n"
    "\n"
    "One row per stage, in pipeline order: a bar proportional to the amount\n"
    "(to the count when no deal has an amount), count, amount, weighted\n"
    "amount, average days in stage, stale deals. Stages a pipeline event\n"
    "removed while deals still sit in them are marked (removed). --owner,\n"
    "--product or --source (one of them) shows only those deals. Colour when\n"
    "stdout is a terminal; --json prints the daemon's reply.\n";

int cmd_board(cli *g, int argc, char **argv)
{
    const char *pipeline = NULL, *now = NULL, *owner = NULL, *product = NULL, *source = NULL;
    const cli_opt opts[] = {{"--pipeline", true, &pipeline}, {"--now", true, &now},
                            {"--owner", true, &owner},       {"--product", true, &product},
                            {"--source", true, &source},     {NULL, false, NULL}};
    int rc = cli_parse(g, "board", board_help, argc, argv, opts, NULL, 0, 0, NULL);
    if (rc)
        return rc < 0 ? EXIT_OK : rc;
    int64_t now_ms;
    if (now && !cli_time_opt("board", "--now", now, &now_ms))
        return EXIT_USAGE;
    cli_reply r;
    cli_reply_init(&r);
    if (owner || product || source) {
        cli_figures_args a = {.pipeline = pipeline,
                              .owner = owner,
                              .product = product,
                              .source = source,
                              .now = now ? &now_ms : NULL};
        rc = cli_figures_request(g, "board", &a, &r);
    } else {
        rc = df_get_board(cli_client(g), pipeline, now ? &now_ms : NULL, &r.bytes, &r.err);
        rc = cli_reply_take(g, "board", rc, &r);
    }
    if (rc != 0 && r.err.code == DF_EUNKNOWN_PIPELINE)
        cli_pipeline_hint(g);
    if (rc == 0 && g->json) {
        json_print_line(stdout, &r.obj);
    } else if (rc == 0) {
        render_opts ro = {.colour = isatty(STDOUT_FILENO) && !getenv("NO_COLOR"), .bar_width = 30};
        if (board_render(stdout, &r.obj, pipeline ? pipeline : "default", &ro) < 0) {
            fprintf(stderr, "dealflow board: the reply is not a board\n");
            rc = EXIT_FAILED;
        }
    }
    cli_reply_free(&r);
    return rc;
}

static const char metrics_help[] =
    "usage: dealflow metrics [--pipeline P] [--owner O | --product X | --source S]\n"
    "                        [--from T] [--to T] [--now T] [--by week|month|quarter]\n"
    "\n"
    "The pipeline's figures: won, lost, win rate, average cycle, open deals\n"
    "and amounts, velocity, average days in each stage and stage-to-stage\n"
    "conversion. --from/--to restrict the closed deals counted to those\n"
    "closed in [from, to). With --by (and both --from and --to), a trend table\n"
    "follows: the window's figures for each UTC calendar period (ISO weeks\n"
    "from Monday, months or quarters). A table, or (--json) the daemon's reply.\n";

int cmd_metrics(cli *g, int argc, char **argv)
{
    const char *now = NULL, *from = NULL, *to = NULL;
    const char *product = NULL, *source = NULL, *by = NULL;
    df_metrics_request q = {0};
    const cli_opt opts[] = {{"--pipeline", true, &q.pipeline},
                            {"--owner", true, &q.owner},
                            {"--product", true, &product},
                            {"--source", true, &source},
                            {"--from", true, &from},
                            {"--to", true, &to},
                            {"--now", true, &now},
                            {"--by", true, &by},
                            {NULL, false, NULL}};
    int rc = cli_parse(g, "metrics", metrics_help, argc, argv, opts, NULL, 0, 0, NULL);
    if (rc)
        return rc < 0 ? EXIT_OK : rc;
    const char *const flags[] = {"--now", "--from", "--to"};
    const char *const given[] = {now, from, to};
    int64_t ms[3];
    const int64_t **times[] = {&q.now, &q.from, &q.to};
    for (int i = 0; i < 3; i++) {
        if (!given[i])
            continue;
        if (!cli_time_opt("metrics", flags[i], given[i], &ms[i]))
            return EXIT_USAGE;
        *times[i] = &ms[i];
    }
    cli_reply r;
    cli_reply_init(&r);
    if (product || source || by) {
        cli_figures_args a = {.pipeline = q.pipeline,
                              .owner = q.owner,
                              .product = product,
                              .source = source,
                              .now = q.now,
                              .from = q.from,
                              .to = q.to,
                              .by = by};
        rc = cli_figures_request(g, "metrics", &a, &r);
    } else {
        rc = cli_reply_take(g, "metrics", df_get_metrics(cli_client(g), &q, &r.bytes, &r.err), &r);
    }
    if (rc != 0 && r.err.code == DF_EUNKNOWN_PIPELINE)
        cli_pipeline_hint(g);
    if (rc == 0 && g->json)
        json_print_line(stdout, &r.obj);
    else if (rc == 0 && metrics_render(stdout, &r.obj, q.pipeline ? q.pipeline : "default") < 0)
        rc = EXIT_FAILED;
    else if (rc == 0 && by && series_render(stdout, &r.obj) < 0)
        rc = EXIT_FAILED;
    cli_reply_free(&r);
    return rc;
}

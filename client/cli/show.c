/* show.c: the read commands that print what the daemon holds: deal, history, list, replay, stats,
 * rejected, board and metrics. */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "codec.h"

#define TEXT_SHOWN 64

/* A request map built key by key. */
typedef struct request {
    msgpack_sbuffer buf;
    msgpack_packer pk;
    int keys;
    msgpack_sbuffer body;
    msgpack_packer body_pk;
} request;

static void req_init(request *r, const char *op)
{
    msgpack_sbuffer_init(&r->buf);
    msgpack_packer_init(&r->pk, &r->buf, msgpack_sbuffer_write);
    msgpack_sbuffer_init(&r->body);
    msgpack_packer_init(&r->body_pk, &r->body, msgpack_sbuffer_write);
    r->keys = 0;
    if (op) {
        df_pack_cstr(&r->body_pk, "op");
        df_pack_cstr(&r->body_pk, op);
        r->keys++;
    }
}

static void req_str(request *r, const char *key, const char *value)
{
    if (!value)
        return;
    df_pack_cstr(&r->body_pk, key);
    df_pack_cstr(&r->body_pk, value);
    r->keys++;
}

static void req_int(request *r, const char *key, int64_t value)
{
    df_pack_cstr(&r->body_pk, key);
    msgpack_pack_int64(&r->body_pk, value);
    r->keys++;
}

static void req_bool(request *r, const char *key, bool value)
{
    df_pack_cstr(&r->body_pk, key);
    if (value)
        msgpack_pack_true(&r->body_pk);
    else
        msgpack_pack_false(&r->body_pk);
    r->keys++;
}

/* The finished map. */
static const msgpack_sbuffer *req_done(request *r)
{
    r->buf.size = 0;
    msgpack_pack_map(&r->pk, (uint32_t)r->keys);
    msgpack_sbuffer_write(&r->buf, r->body.data, r->body.size);
    return &r->buf;
}

static void req_free(request *r)
{
    msgpack_sbuffer_destroy(&r->buf);
    msgpack_sbuffer_destroy(&r->body);
}

/* Runs a request; on success obj holds the reply until reply is freed. */
static int call(cli *g, const char *what, request *r, df_bytes *reply, msgpack_zone *zone,
                msgpack_object *obj)
{
    int rc = cli_call(g, what, req_done(r), reply, zone, obj);
    req_free(r);
    return rc;
}

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
    static const char *const order[] = {
        "deal",       "pipeline",    "stage",         "status",        "probability",
        "amount",     "owner",       "name",          "product",       "close_date",
        "created",    "stage_since", "days_in_stage", "last_activity", "days_since_activity",
        "activities", "version",     "stale",         "regressions",   "reopened",
        "pushes",     NULL};
    static const char *const times[] = {"close_date", "created", "stage_since", "last_activity",
                                        NULL};
    for (int i = 0; order[i]; i++) {
        const msgpack_object *v = mp_get(d, order[i]);
        if (!v)
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
    request r;
    req_init(&r, "deal");
    req_str(&r, "deal", pos[0]);
    int64_t t;
    if (now) {
        if (!cli_time_opt("deal", "--now", now, &t)) {
            req_free(&r);
            return EXIT_USAGE;
        }
        req_int(&r, "now", t);
    }
    if (as_of) {
        if (!cli_time_opt("deal", "--as-of", as_of, &t)) {
            req_free(&r);
            return EXIT_USAGE;
        }
        req_int(&r, "as_of", t);
    }
    df_bytes reply;
    msgpack_zone zone;
    msgpack_zone_init(&zone, 4096);
    msgpack_object obj;
    rc = call(g, "deal", &r, &reply, &zone, &obj);
    if (rc == 0) {
        const msgpack_object *d = mp_get(&obj, "deal");
        if (g->json)
            json_print_line(stdout, d ? d : &obj);
        else
            print_deal(d);
        df_bytes_free(&reply);
    }
    msgpack_zone_destroy(&zone);
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
    static const char *const keys[] = {"amount",     "owner",  "name", "product",
                                       "close_date", "reason", NULL};
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

/* Prints every item of an iterator with fn. */
static int drain(df_iter *it, const char *what, void (*fn)(void *, const msgpack_object *),
                 void *ctx)
{
    const char *item;
    size_t len;
    df_error err = {0};
    int got;
    msgpack_zone zone;
    msgpack_zone_init(&zone, 4096);
    while ((got = df_iter_next(it, &item, &len, &err)) == 1) {
        msgpack_object obj;
        msgpack_zone_clear(&zone);
        if (df_msgpack_unpack(item, len, &zone, &obj, &err) < 0) {
            got = DF_EINTERNAL;
            break;
        }
        fn(ctx, &obj);
    }
    msgpack_zone_destroy(&zone);
    df_iter_free(it);
    if (got < 0)
        return cli_fail(what, got, &err);
    return 0;
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
    const char *after = NULL;
    const cli_opt opts[] = {{"--after", true, &after}, {NULL, false, NULL}};
    const char *pos[1];
    int rc = cli_parse(g, "history", history_help, argc, argv, opts, pos, 1, 1, NULL);
    if (rc)
        return rc < 0 ? EXIT_OK : rc;
    uint64_t from = 0;
    if (after && !cli_uint_opt("history", "--after", after, &from))
        return EXIT_USAGE;
    df_client *c = cli_client(g);
    if (!c)
        return EXIT_FAILED;
    df_iter *it;
    df_error err = {0};
    rc = df_history_open(c, pos[0], from, &it, &err);
    if (rc < 0)
        return cli_fail("history", rc, &err);
    event_table t = {.json = g->json};
    return drain(it, "history", print_event_cb, &t);
}

static const char replay_help[] =
    "usage: dealflow replay [--after SEQ]\n"
    "\n"
    "Every recorded event with a seq above SEQ (default 0), in seq order, as\n"
    "a table or (--json) NDJSON, page after page up to the last recorded seq.\n";

int cmd_replay(cli *g, int argc, char **argv)
{
    const char *after = NULL;
    const cli_opt opts[] = {{"--after", true, &after}, {NULL, false, NULL}};
    int rc = cli_parse(g, "replay", replay_help, argc, argv, opts, NULL, 0, 0, NULL);
    if (rc)
        return rc < 0 ? EXIT_OK : rc;
    uint64_t from = 0;
    if (after && !cli_uint_opt("replay", "--after", after, &from))
        return EXIT_USAGE;
    df_client *c = cli_client(g);
    if (!c)
        return EXIT_FAILED;
    df_iter *it;
    df_error err = {0};
    rc = df_replay_open(c, from, &it, &err);
    if (rc < 0)
        return cli_fail("replay", rc, &err);
    event_table t = {.json = g->json, .with_deal = true};
    return drain(it, "replay", print_event_cb, &t);
}

/* ---- list ---- */

static const char list_help[] =
    "usage: dealflow list [--pipeline P] [--stage S] [--owner O] [--status open|won|lost]\n"
    "                     [--stale] [--idle-days N] [--now T]\n"
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
    const char *pipeline = NULL, *stage = NULL, *owner = NULL, *status = NULL, *stale = NULL,
               *idle = NULL, *now = NULL;
    const cli_opt opts[] = {
        {"--pipeline", true, &pipeline}, {"--stage", true, &stage},  {"--owner", true, &owner},
        {"--status", true, &status},     {"--stale", false, &stale}, {"--idle-days", true, &idle},
        {"--now", true, &now},           {NULL, false, NULL},
    };
    int rc = cli_parse(g, "list", list_help, argc, argv, opts, NULL, 0, 0, NULL);
    if (rc)
        return rc < 0 ? EXIT_OK : rc;
    request r;
    req_init(&r, NULL);
    req_str(&r, "pipeline", pipeline);
    req_str(&r, "stage", stage);
    req_str(&r, "owner", owner);
    req_str(&r, "status", status);
    if (stale)
        req_bool(&r, "stale", true);
    uint64_t n;
    int64_t t;
    if ((idle && !cli_uint_opt("list", "--idle-days", idle, &n)) ||
        (now && !cli_time_opt("list", "--now", now, &t))) {
        req_free(&r);
        return EXIT_USAGE;
    }
    if (idle)
        req_int(&r, "idle_days", (int64_t)n);
    if (now)
        req_int(&r, "now", t);
    const msgpack_sbuffer *filters = req_done(&r);
    df_client *c = cli_client(g);
    df_iter *it = NULL;
    df_error err = {0};
    rc = c ? df_list_open(c, filters->data, filters->size, &it, &err) : DF_EINTERNAL;
    req_free(&r);
    if (rc < 0)
        return cli_fail("list", rc, &err);
    list_state st = {.json = g->json};
    rc = drain(it, "list", print_list_row, &st);
    if (rc == 0 && !g->json)
        printf("%zu deals\n", st.rows);
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
    request r;
    req_init(&r, "stats");
    df_bytes reply;
    msgpack_zone zone;
    msgpack_zone_init(&zone, 1024);
    msgpack_object obj;
    rc = call(g, "stats", &r, &reply, &zone, &obj);
    if (rc == 0) {
        if (g->json) {
            json_print_line(stdout, &obj);
        } else {
            for (uint32_t i = 0; i < obj.via.map.size; i++) {
                const msgpack_object *k = &obj.via.map.ptr[i].key;
                char key[TEXT_SHOWN + 1], num[40];
                df_printable(k->type == MSGPACK_OBJECT_STR ? k->via.str.ptr : "",
                             k->type == MSGPACK_OBJECT_STR ? k->via.str.size : 0, key, sizeof key);
                if (strcmp(key, "ok") == 0)
                    continue;
                printf("%-16s %s\n", key, mp_num_text(&obj.via.map.ptr[i].val, num, sizeof num));
            }
        }
        df_bytes_free(&reply);
    }
    msgpack_zone_destroy(&zone);
    return rc;
}

static const char rejected_help[] =
    "usage: dealflow rejected [--after ID]\n"
    "\n"
    "What ingest could not record, oldest first: id, when it was received,\n"
    "the error and why. `raw`, the bytes as received, is printed as base64;\n"
    "when those bytes are msgpack, their JSON form follows. With --json one\n"
    "item per line, raw as a base64 string.\n";

int cmd_rejected(cli *g, int argc, char **argv)
{
    const char *after = NULL;
    const cli_opt opts[] = {{"--after", true, &after}, {NULL, false, NULL}};
    int rc = cli_parse(g, "rejected", rejected_help, argc, argv, opts, NULL, 0, 0, NULL);
    if (rc)
        return rc < 0 ? EXIT_OK : rc;
    uint64_t from = 0;
    if (after && !cli_uint_opt("rejected", "--after", after, &from))
        return EXIT_USAGE;
    size_t shown = 0;
    for (;;) {
        request r;
        req_init(&r, "rejected");
        req_int(&r, "after", (int64_t)from);
        req_int(&r, "limit", 1000);
        df_bytes reply;
        msgpack_zone zone;
        msgpack_zone_init(&zone, 4096);
        msgpack_object obj;
        rc = call(g, "rejected", &r, &reply, &zone, &obj);
        if (rc) {
            msgpack_zone_destroy(&zone);
            return rc;
        }
        const msgpack_object *items = mp_get(&obj, "items");
        uint32_t n = items && items->type == MSGPACK_OBJECT_ARRAY ? items->via.array.size : 0;
        for (uint32_t i = 0; i < n; i++) {
            const msgpack_object *it = &items->via.array.ptr[i];
            int64_t id = 0;
            mp_int(it, "id", &id);
            from = (uint64_t)id;
            shown++;
            if (g->json) {
                json_print_line(stdout, it);
                continue;
            }
            char recv[TIME_TEXT_MAX], error[32], message[DF_MESSAGE_MAX];
            printf("#%lld  %s  %s: %s\n", (long long)id, time_text(it, "recv", recv),
                   mp_str(it, "error", error, sizeof error),
                   mp_str(it, "message", message, sizeof message));
            const msgpack_object *raw = mp_get(it, "raw");
            if (raw && raw->type == MSGPACK_OBJECT_BIN) {
                char *b64 = base64_encode(raw->via.bin.ptr, raw->via.bin.size);
                printf("    raw (base64, %u bytes): %s\n", raw->via.bin.size, b64 ? b64 : "?");
                free(b64);
                msgpack_zone inner;
                msgpack_zone_init(&inner, 1024);
                msgpack_object decoded;
                df_error err;
                if (raw->via.bin.size > 0 && df_msgpack_unpack(raw->via.bin.ptr, raw->via.bin.size,
                                                               &inner, &decoded, &err) == 0) {
                    printf("    as JSON: ");
                    json_print_line(stdout, &decoded);
                }
                msgpack_zone_destroy(&inner);
            }
        }
        df_bytes_free(&reply);
        msgpack_zone_destroy(&zone);
        if (n == 0) /* a page can end short of 1000 at the daemon's byte cap */
            break;
    }
    if (!g->json)
        printf("%zu rejected items\n", shown);
    return EXIT_OK;
}

/* ---- board, metrics ---- */

static const char board_help[] =
    "usage: dealflow board [--pipeline P] [--now T]\n"
    "\n"
    "One row per stage, in pipeline order: a bar proportional to the amount\n"
    "(to the count when no deal has an amount), count, amount, weighted\n"
    "amount, average days in stage, stale deals. Stages a pipeline event\n"
    "removed while deals still sit in them are marked (removed). Colour when\n"
    "stdout is a terminal; --json prints the daemon's reply.\n";

int cmd_board(cli *g, int argc, char **argv)
{
    const char *pipeline = NULL, *now = NULL;
    const cli_opt opts[] = {
        {"--pipeline", true, &pipeline}, {"--now", true, &now}, {NULL, false, NULL}};
    int rc = cli_parse(g, "board", board_help, argc, argv, opts, NULL, 0, 0, NULL);
    if (rc)
        return rc < 0 ? EXIT_OK : rc;
    int64_t t;
    if (now && !cli_time_opt("board", "--now", now, &t))
        return EXIT_USAGE;
    request r;
    req_init(&r, "board");
    req_str(&r, "pipeline", pipeline);
    if (now)
        req_int(&r, "now", t);
    df_bytes reply;
    msgpack_zone zone;
    msgpack_zone_init(&zone, 4096);
    msgpack_object obj;
    rc = call(g, "board", &r, &reply, &zone, &obj);
    if (rc == 0) {
        if (g->json) {
            json_print_line(stdout, &obj);
        } else {
            render_opts ro = {.colour = isatty(STDOUT_FILENO) && !getenv("NO_COLOR"),
                              .bar_width = 30};
            if (board_render(stdout, &obj, pipeline ? pipeline : "default", &ro) < 0) {
                fprintf(stderr, "dealflow board: the reply is not a board\n");
                rc = EXIT_FAILED;
            }
        }
        df_bytes_free(&reply);
    }
    msgpack_zone_destroy(&zone);
    return rc;
}

static const char metrics_help[] =
    "usage: dealflow metrics [--pipeline P] [--owner O] [--from T] [--to T] [--now T]\n"
    "\n"
    "The pipeline's figures: won, lost, win rate, average cycle, open deals\n"
    "and amounts, velocity, average days in each stage and stage-to-stage\n"
    "conversion. --from/--to restrict the closed deals counted to those\n"
    "closed in [from, to). A table, or (--json) the daemon's reply.\n";

int cmd_metrics(cli *g, int argc, char **argv)
{
    const char *pipeline = NULL, *owner = NULL, *from = NULL, *to = NULL, *now = NULL;
    const cli_opt opts[] = {{"--pipeline", true, &pipeline}, {"--owner", true, &owner},
                            {"--from", true, &from},         {"--to", true, &to},
                            {"--now", true, &now},           {NULL, false, NULL}};
    int rc = cli_parse(g, "metrics", metrics_help, argc, argv, opts, NULL, 0, 0, NULL);
    if (rc)
        return rc < 0 ? EXIT_OK : rc;
    request r;
    req_init(&r, "metrics");
    req_str(&r, "pipeline", pipeline);
    req_str(&r, "owner", owner);
    const char *times[] = {now, from, to};
    const char *keys[] = {"now", "from", "to"};
    for (int i = 0; i < 3; i++) {
        int64_t t;
        if (!times[i])
            continue;
        char flag[16];
        snprintf(flag, sizeof flag, "--%s", keys[i]);
        if (!cli_time_opt("metrics", flag, times[i], &t)) {
            req_free(&r);
            return EXIT_USAGE;
        }
        req_int(&r, keys[i], t);
    }
    df_bytes reply;
    msgpack_zone zone;
    msgpack_zone_init(&zone, 4096);
    msgpack_object obj;
    rc = call(g, "metrics", &r, &reply, &zone, &obj);
    if (rc == 0) {
        if (g->json)
            json_print_line(stdout, &obj);
        else if (metrics_render(stdout, &obj, pipeline ? pipeline : "default") < 0)
            rc = EXIT_FAILED;
        df_bytes_free(&reply);
    }
    msgpack_zone_destroy(&zone);
    return rc;
}

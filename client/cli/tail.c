/* tail.c: the tail command: follows deal moves (and stale deals) live, with gap repair, one line
 * each. */
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "codec.h"

static const char tail_help[] =
    "usage: dealflow tail [--from SEQ] [--pipeline P] [--count N]\n"
    "\n"
    "Follows deal moves as they happen, one line each:\n"
    "  SEQ  AT  DEAL  FROM -> TO  (PIPELINE, STATUS, amount A, owner O)\n"
    "and stale deals (`stale DEAL in PIPELINE/STAGE since T, idle N days`).\n"
    "\n"
    "options:\n"
    "  --from SEQ    first print every recorded move after SEQ (marked `catch-up`),\n"
    "                then live ones: 0 replays every move from the first; to\n"
    "                resume, pass the last SEQ printed. Without it: live moves only.\n"
    "  --pipeline P  only moves and stale deals of pipeline P\n"
    "  --count N     stop after N moves (stale deals do not count)\n"
    "\n"
    "Moves missed while the subscriber lagged are fetched from the daemon and\n"
    "printed in order (marked `repaired`), so none is lost or repeated.\n"
    "With --json, one JSON object per line: the notification's body plus\n"
    "`topic`, `repaired` (fetched rather than received live) and `catch_up`\n"
    "(printed before the first live move because of --from). Runs until\n"
    "interrupted (exit 0).\n";

static volatile sig_atomic_t stop_requested;

static void on_signal(int sig)
{
    (void)sig;
    stop_requested = 1;
}

static void print_text(const df_notification *n, const msgpack_object *body, bool catch_up)
{
    char deal[129], pipeline[129], a[129], b[129], status[16], at[TIME_TEXT_MAX], num[40];
    int64_t t;
    if (strncmp(n->topic, "deal.moved.", 11) == 0) {
        const msgpack_object *from = mp_get(body, "from");
        mp_str(body, "from", a, sizeof a);
        char owner[129];
        mp_str(body, "owner", owner, sizeof owner);
        printf("%llu  %s  %s  %s -> %s  (%s, %s, amount %s, owner %s)%s\n",
               (unsigned long long)n->seq, mp_int(body, "at", &t) ? time_format(t, at) : "-",
               mp_str(body, "deal", deal, sizeof deal),
               from && from->type == MSGPACK_OBJECT_STR ? a : "(new)",
               mp_str(body, "to", b, sizeof b), mp_str(body, "pipeline", pipeline, sizeof pipeline),
               mp_str(body, "status", status, sizeof status),
               mp_num_text(mp_get(body, "amount"), num, sizeof num), owner[0] ? owner : "-",
               catch_up      ? "  catch-up"
               : n->repaired ? "  repaired"
                             : "");
    } else if (strncmp(n->topic, "deal.stale.", 11) == 0) {
        int64_t idle = 0;
        mp_int(body, "idle_days", &idle);
        printf(
            "stale %s in %s/%s since %s, idle %lld days\n", mp_str(body, "deal", deal, sizeof deal),
            mp_str(body, "pipeline", pipeline, sizeof pipeline), mp_str(body, "stage", a, sizeof a),
            mp_int(body, "since", &t) ? time_format(t, at) : "-", (long long)idle);
    } else {
        char topic[129];
        df_printable(n->topic, strlen(n->topic), topic, sizeof topic);
        printf("%s\n", topic);
    }
}

int cmd_tail(cli *g, int argc, char **argv)
{
    const char *from = NULL, *pipeline = NULL, *count = NULL;
    const cli_opt opts[] = {{"--from", true, &from},
                            {"--pipeline", true, &pipeline},
                            {"--count", true, &count},
                            {NULL, false, NULL}};
    int rc = cli_parse(g, "tail", tail_help, argc, argv, opts, NULL, 0, 0, NULL);
    if (rc)
        return rc < 0 ? EXIT_OK : rc;
    uint64_t from_seq = 0, max_moves = 0;
    if ((from && !cli_uint_opt("tail", "--from", from, &from_seq)) ||
        (count && !cli_uint_opt("tail", "--count", count, &max_moves)))
        return EXIT_USAGE;
    df_subscription *sub = NULL;
    df_error err = {0};
    df_client *c = cli_client(g);
    rc = from ? df_subscribe_after(c, "deal.", from_seq, &sub, &err)
              : df_subscribe(c, "deal.", 0, &sub, &err);
    rc = cli_check(g, "tail", rc, &err);
    if (rc)
        return rc;
    struct sigaction sa = {0};
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    uint64_t moves = 0;
    bool waiting = false;
    /* with --from, the moves fetched before the first live one are the
     * catch-up the user asked for, not a repair of a gap */
    bool catching_up = from != NULL;
    msgpack_zone zone;
    msgpack_zone_init(&zone, 2048);
    rc = EXIT_OK;
    while (!stop_requested && (max_moves == 0 || moves < max_moves)) {
        df_notification n;
        /* A short wait so a signal is noticed even when the library retries
         * an interrupted poll. */
        int got = df_subscription_next(sub, 200, &n, &err);
        if (got == 0)
            continue;
        if (got == DF_EUNREACHABLE && !stop_requested) {
            /* the daemon is away while a gap is repaired: the repair goes
             * on where it stopped once it is back, so nothing is skipped */
            if (!waiting)
                fprintf(stderr, "dealflow tail: %s; waiting for the daemon\n", err.message);
            waiting = true;
            continue;
        }
        if (got < 0) {
            if (stop_requested)
                break;
            rc = cli_fail("tail", got, &err);
            break;
        }
        if (waiting)
            fprintf(stderr, "dealflow tail: the daemon answers again\n");
        waiting = false;
        msgpack_object body;
        msgpack_zone_clear(&zone);
        if (df_msgpack_unpack(n.body, n.body_len, &zone, &body, &err) < 0)
            continue; /* not ours to judge: the library delivered it, we cannot print it */
        bool moved = strncmp(n.topic, "deal.moved.", 11) == 0;
        if (moved && !n.repaired)
            catching_up = false;
        bool catch_up = moved && catching_up;
        if (pipeline) {
            char p[129];
            if (strcmp(mp_str(&body, "pipeline", p, sizeof p), pipeline) != 0)
                continue;
        }
        if (g->json) {
            json_t *line = json_from_msgpack(&body);
            if (line && json_is_object(line)) {
                json_t *out = json_object();
                json_object_set_new(out, "topic", json_string(n.topic));
                json_object_update(out, line);
                json_object_set_new(out, "repaired", json_boolean(n.repaired));
                json_object_set_new(out, "catch_up", json_boolean(catch_up));
                json_print_value(stdout, out);
                json_decref(out);
            }
            json_decref(line);
        } else {
            print_text(&n, &body, catch_up);
        }
        fflush(stdout);
        moves += moved;
    }
    msgpack_zone_destroy(&zone);
    df_subscription_close(sub);
    return rc;
}

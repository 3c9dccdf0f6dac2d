/* figures.c: `dealflow losses`, `forecast` and `calibration`, and the figures
 * requests (board, metrics, forecast, calibration, list) with every filter,
 * through the library. */
#include <stdlib.h>
#include <string.h>

#include "cli.h"

int cli_figures_request(cli *g, const char *op, const cli_figures_args *a, cli_reply *r)
{
    df_figures_request q = {.size = sizeof q,
                            .pipeline = a->pipeline,
                            .owner = a->owner,
                            .product = a->product,
                            .source = a->source,
                            .now = a->now,
                            .from = a->from,
                            .to = a->to,
                            .by = a->by};
    int rc = df_get_figures(cli_client(g), op, &q, &r->bytes, &r->err);
    return cli_reply_take(g, op, rc, r);
}

int cli_list_open(cli *g, const cli_figures_args *a, df_iter **it, df_error *err)
{
    df_list_query q = {.size = sizeof q,
                       .pipeline = a->pipeline,
                       .stage = a->stage,
                       .owner = a->owner,
                       .product = a->product,
                       .source = a->source,
                       .status = a->status,
                       .stale = a->stale,
                       .idle_days = a->idle_days,
                       .now = a->now};
    return df_list_open_query(cli_client(g), &q, it, err);
}

static const char losses_help[] =
    "usage: dealflow losses [--pipeline P] [--owner O | --product X | --source S]\n"
    "                       [--from T] [--to T] [--now T]\n"
    "\n"
    "Where and why deals are lost: for each open stage, the lost deals whose\n"
    "last open stage before the loss was that one, then the lost deals by the\n"
    "reason their loss gave (\"unspecified\" when none). --from/--to count the\n"
    "deals lost in [from, to). A table, or (--json) the daemon's metrics reply.\n";

int cmd_losses(cli *g, int argc, char **argv)
{
    const char *now = NULL, *from = NULL, *to = NULL;
    cli_figures_args a = {0};
    const cli_opt opts[] = {{"--pipeline", true, &a.pipeline},
                            {"--owner", true, &a.owner},
                            {"--product", true, &a.product},
                            {"--source", true, &a.source},
                            {"--from", true, &from},
                            {"--to", true, &to},
                            {"--now", true, &now},
                            {NULL, false, NULL}};
    int rc = cli_parse(g, "losses", losses_help, argc, argv, opts, NULL, 0, 0, NULL);
    if (rc)
        return rc < 0 ? EXIT_OK : rc;
    const char *const flags[] = {"--now", "--from", "--to"};
    const char *const given[] = {now, from, to};
    int64_t ms[3];
    const int64_t **times[] = {&a.now, &a.from, &a.to};
    for (int i = 0; i < 3; i++) {
        if (!given[i])
            continue;
        if (!cli_time_opt("losses", flags[i], given[i], &ms[i]))
            return EXIT_USAGE;
        *times[i] = &ms[i];
    }
    cli_reply r;
    cli_reply_init(&r);
    rc = cli_figures_request(g, "metrics", &a, &r);
    if (rc != 0 && r.err.code == DF_EUNKNOWN_PIPELINE)
        cli_pipeline_hint(g);
    if (rc == 0 && g->json)
        json_print_line(stdout, &r.obj);
    else if (rc == 0 && losses_render(stdout, &r.obj, a.pipeline ? a.pipeline : "default") < 0)
        rc = EXIT_FAILED;
    cli_reply_free(&r);
    return rc;
}

/* The options forecast and calibration share; ms holds the times. */
static int parse_figures(cli *g, const char *command, const char *help, int argc, char **argv,
                         bool with_by, cli_figures_args *a, int64_t ms[3])
{
    const char *now = NULL, *from = NULL, *to = NULL;
    const cli_opt opts[] = {{"--pipeline", true, &a->pipeline},
                            {"--owner", true, &a->owner},
                            {"--product", true, &a->product},
                            {"--source", true, &a->source},
                            {"--from", true, &from},
                            {"--to", true, &to},
                            /* calibration ends the list here */
                            {with_by ? "--now" : NULL, true, &now},
                            {with_by ? "--by" : NULL, true, &a->by},
                            {NULL, false, NULL}};
    int rc = cli_parse(g, command, help, argc, argv, opts, NULL, 0, 0, NULL);
    if (rc)
        return rc;
    const char *const flags[] = {"--now", "--from", "--to"};
    const char *const given[] = {now, from, to};
    const int64_t **times[] = {&a->now, &a->from, &a->to};
    for (int i = 0; i < 3; i++) {
        if (!given[i])
            continue;
        if (!cli_time_opt(command, flags[i], given[i], &ms[i]))
            return EXIT_USAGE;
        *times[i] = &ms[i];
    }
    return 0;
}

/* Sends op and prints the reply: JSON, or render's table. */
static int show_figures(cli *g, const char *op, const cli_figures_args *a,
                        int (*render)(FILE *, const msgpack_object *, const char *))
{
    cli_reply r;
    cli_reply_init(&r);
    int rc = cli_figures_request(g, op, a, &r);
    if (rc != 0 && r.err.code == DF_EUNKNOWN_PIPELINE)
        cli_pipeline_hint(g);
    if (rc == 0 && g->json)
        json_print_line(stdout, &r.obj);
    else if (rc == 0 && render(stdout, &r.obj, a->pipeline ? a->pipeline : "default") < 0) {
        fprintf(stderr, "dealflow %s: the reply is not a %s reply\n", op, op);
        rc = EXIT_FAILED;
    }
    cli_reply_free(&r);
    return rc;
}

static const char forecast_help[] =
    "usage: dealflow forecast [--pipeline P] [--owner O | --product X | --source S]\n"
    "                         [--by week|month|quarter] [--from T] [--to T] [--now T]\n"
    "\n"
    "What will close, and when: for each UTC calendar period (ISO weeks from\n"
    "Monday, months or quarters; month by default) the open deals whose\n"
    "close_date falls in it, their amount and weighted amount (a bar), and the\n"
    "deals won in it; then the overdue deals (close_date before now) and those\n"
    "without a close_date. Without --from, the period now falls in; without\n"
    "--to, three periods. A table, or (--json) the daemon's reply.\n";

int cmd_forecast(cli *g, int argc, char **argv)
{
    cli_figures_args a = {0};
    int64_t ms[3];
    int rc = parse_figures(g, "forecast", forecast_help, argc, argv, true, &a, ms);
    if (rc)
        return rc < 0 ? EXIT_OK : rc;
    return show_figures(g, "forecast", &a, forecast_render);
}

static const char calibration_help[] =
    "usage: dealflow calibration [--pipeline P] [--owner O | --product X | --source S]\n"
    "                            [--from T] [--to T]\n"
    "\n"
    "Whether the stages' probabilities are true: for each stage, its configured\n"
    "probability against the share of the closed deals that were in it and\n"
    "were won. --from/--to count the deals closed in [from, to). A table, or\n"
    "(--json) the daemon's reply.\n";

int cmd_calibration(cli *g, int argc, char **argv)
{
    cli_figures_args a = {0};
    int64_t ms[3];
    int rc = parse_figures(g, "calibration", calibration_help, argc, argv, false, &a, ms);
    if (rc)
        return rc < 0 ? EXIT_OK : rc;
    return show_figures(g, "calibration", &a, calibration_render);
}

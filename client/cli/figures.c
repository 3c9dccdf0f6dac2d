/* figures.c: `dealflow losses`, and the figures requests (board, metrics, list) that filter on
 * product or source, which the library's request structs do not carry. */
#include <stdlib.h>
#include <string.h>

#include "cli.h"

/* Packs {op, pipeline?, owner?, product?, source?, ...}: only the keys given. */
static void pack_figures(msgpack_sbuffer *sb, const char *op, const cli_figures_args *a)
{
    const char *const names[] = {"pipeline", "owner", "product", "source", "stage", "status"};
    const char *const values[] = {a->pipeline, a->owner, a->product,
                                  a->source,   a->stage, a->status};
    const char *const time_names[] = {"now", "from", "to"};
    const int64_t *const times[] = {a->now, a->from, a->to};
    size_t n = 1;
    for (size_t i = 0; i < 6; i++)
        n += values[i] != NULL;
    for (size_t i = 0; i < 3; i++)
        n += times[i] != NULL;
    n += a->stale + (a->idle_days != NULL);
    msgpack_packer pk;
    msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, op ? n : n - 1);
    if (op) {
        msgpack_pack_str_with_body(&pk, "op", 2);
        msgpack_pack_str_with_body(&pk, op, strlen(op));
    }
    for (size_t i = 0; i < 6; i++) {
        if (!values[i])
            continue;
        msgpack_pack_str_with_body(&pk, names[i], strlen(names[i]));
        msgpack_pack_str_with_body(&pk, values[i], strlen(values[i]));
    }
    for (size_t i = 0; i < 3; i++) {
        if (!times[i])
            continue;
        msgpack_pack_str_with_body(&pk, time_names[i], strlen(time_names[i]));
        msgpack_pack_int64(&pk, *times[i]);
    }
    if (a->stale) {
        msgpack_pack_str_with_body(&pk, "stale", 5);
        msgpack_pack_true(&pk);
    }
    if (a->idle_days) {
        msgpack_pack_str_with_body(&pk, "idle_days", 9);
        msgpack_pack_uint64(&pk, *a->idle_days);
    }
}

int cli_figures_request(cli *g, const char *op, const cli_figures_args *a, cli_reply *r)
{
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    pack_figures(&sb, op, a);
    int rc = df_request(cli_client(g), sb.data, sb.size, &r->bytes, &r->err);
    msgpack_sbuffer_destroy(&sb);
    return cli_reply_take(g, op, rc, r);
}

int cli_list_open(cli *g, const cli_figures_args *a, df_iter **it, df_error *err)
{
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    pack_figures(&sb, NULL, a);
    int rc = df_list_open(cli_client(g), sb.data, sb.size, it, err);
    msgpack_sbuffer_destroy(&sb);
    return rc;
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

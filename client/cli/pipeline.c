/* pipeline.c: the pipeline command: lists the defined pipelines with their stages, shows one, and
 * defines one from a JSON file or from flags by sending a `pipeline` event. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "codec.h"

static const char pipeline_help[] =
    "usage: dealflow pipeline [list]\n"
    "       dealflow pipeline show NAME\n"
    "       dealflow pipeline define --file FILE.json [--id ID]\n"
    "       dealflow pipeline define --name NAME --stage NAME:PROB[:ROT_DAYS[:won|lost]]...\n"
    "                                [--id ID]\n"
    "\n"
    "list (the default) prints every defined pipeline with its stages in order:\n"
    "probability of winning from the stage, days after which an idle deal in it\n"
    "rots (- never), and outcome (open, won, lost). show prints one.\n"
    "\n"
    "define sends a `pipeline` event, which defines the pipeline or replaces all\n"
    "its stages (it needs the admin role when the daemon has keys):\n"
    "  --file FILE.json  the event as JSON: {\"pipeline\": NAME, \"stages\": [{\"name\":\n"
    "                    S, \"probability\": 0..100, \"rot_days\": N, \"outcome\":\n"
    "                    \"won\"}, ...]}; `type` and `id` may be given too\n"
    "  --name NAME       the pipeline, with its stages as --stage, in order:\n"
    "  --stage SPEC      NAME:PROB, NAME:PROB:ROT_DAYS or NAME:PROB:ROT_DAYS:OUTCOME\n"
    "                    (ROT_DAYS empty or - for never; OUTCOME open, won or lost)\n"
    "  --id ID           the event's id (default pipeline-NAME-MS, MS the time now)\n"
    "Then it prints the pipeline as the daemon now has it. With --json, the\n"
    "daemon's `pipelines` reply.\n";

#define MAX_STAGE_FLAGS 64
#define NAME_SHOWN      129 /* a name of 128 bytes and its NUL */

/* Prints the pipelines of a `pipelines` reply as tables. */
static void print_pipelines(const msgpack_object *reply)
{
    const msgpack_object *all = mp_get(reply, "pipelines");
    if (!all || all->type != MSGPACK_OBJECT_ARRAY)
        return;
    for (uint32_t i = 0; i < all->via.array.size; i++) {
        const msgpack_object *p = &all->via.array.ptr[i];
        const msgpack_object *stages = mp_get(p, "stages");
        char name[NAME_SHOWN], stage[NAME_SHOWN], outcome[16], rot[24];
        if (i > 0)
            printf("\n");
        printf("pipeline %s\n", mp_str(p, "name", name, sizeof name));
        printf("  %-20s %11s %9s  %s\n", "stage", "probability", "rot days", "outcome");
        for (uint32_t k = 0;
             stages && stages->type == MSGPACK_OBJECT_ARRAY && k < stages->via.array.size; k++) {
            const msgpack_object *s = &stages->via.array.ptr[k];
            int64_t prob = 0, rot_days;
            mp_int(s, "probability", &prob);
            if (mp_int(s, "rot_days", &rot_days))
                snprintf(rot, sizeof rot, "%lld", (long long)rot_days);
            else
                snprintf(rot, sizeof rot, "-");
            printf("  %-20s %10lld%% %9s  %s\n", mp_str(s, "name", stage, sizeof stage),
                   (long long)prob, rot, mp_str(s, "outcome", outcome, sizeof outcome));
        }
    }
}

static int show_pipelines(cli *g, const char *what, const char *name)
{
    cli_reply r;
    cli_reply_init(&r);
    int rc = cli_reply_take(g, what, df_get_pipelines(cli_client(g), name, &r.bytes, &r.err), &r);
    if (rc == 0 && g->json)
        json_print_line(stdout, &r.obj);
    else if (rc == 0)
        print_pipelines(&r.obj);
    else if (r.err.code == DF_EUNKNOWN_PIPELINE)
        cli_pipeline_hint(g);
    cli_reply_free(&r);
    return rc;
}

void cli_pipeline_hint(cli *g)
{
    cli_reply r;
    cli_reply_init(&r);
    int rc = df_get_pipelines(g->client, NULL, &r.bytes, &r.err);
    if (rc >= 0 && df_msgpack_unpack(r.bytes.data, r.bytes.len, &r.zone, &r.obj, &r.err) == 0) {
        const msgpack_object *all = mp_get(&r.obj, "pipelines");
        if (all && all->type == MSGPACK_OBJECT_ARRAY) {
            fprintf(stderr, "dealflow: the defined pipelines are:");
            for (uint32_t i = 0; i < all->via.array.size; i++) {
                char name[NAME_SHOWN];
                fprintf(stderr, "%s %s", i ? "," : "",
                        mp_str(&all->via.array.ptr[i], "name", name, sizeof name));
            }
            fprintf(stderr, " (dealflow pipeline lists their stages)\n");
        }
    }
    cli_reply_free(&r);
}

/* Parses NAME:PROB[:ROT_DAYS[:OUTCOME]] into a stage object. */
static json_t *parse_stage(const char *spec)
{
    char buf[512];
    if (strlen(spec) >= sizeof buf)
        return NULL;
    strcpy(buf, spec);
    char *parts[4] = {0};
    int n = 0;
    for (char *p = buf; n < 4;) {
        parts[n++] = p;
        char *colon = strchr(p, ':');
        if (!colon)
            break;
        *colon = '\0';
        p = colon + 1;
    }
    if (n < 2 || parts[0][0] == '\0' || (n == 4 && strchr(parts[3], ':')))
        return NULL;
    char *end;
    errno = 0;
    long prob = strtol(parts[1], &end, 10);
    if (parts[1][0] < '0' || parts[1][0] > '9' || *end || prob > 100)
        return NULL;
    json_t *stage = json_pack("{s:s, s:I}", "name", parts[0], "probability", (json_int_t)prob);
    if (n >= 3 && parts[2][0] != '\0' && strcmp(parts[2], "-") != 0) {
        long rot = strtol(parts[2], &end, 10);
        if (parts[2][0] < '0' || parts[2][0] > '9' || *end || rot > 1000000) {
            json_decref(stage);
            return NULL;
        }
        json_object_set_new(stage, "rot_days", json_integer(rot));
    }
    if (n == 4) {
        if (strcmp(parts[3], "open") != 0 && strcmp(parts[3], "won") != 0 &&
            strcmp(parts[3], "lost") != 0) {
            json_decref(stage);
            return NULL;
        }
        json_object_set_new(stage, "outcome", json_string(parts[3]));
    }
    return stage;
}

/* The pipeline event --file or the flags describe, or NULL after saying why. */
static json_t *event_of(const char *file, const char *name, const char **specs, int nspecs,
                        const char *id)
{
    json_t *event;
    if (file) {
        json_error_t jerr;
        FILE *in = strcmp(file, "-") == 0 ? stdin : fopen(file, "rb");
        if (!in) {
            fprintf(stderr, "dealflow pipeline: cannot open %s: %s\n", file, strerror(errno));
            return NULL;
        }
        event = json_loadf(in, 0, &jerr);
        if (in != stdin)
            fclose(in);
        if (!event) {
            fprintf(stderr, "dealflow pipeline: %s:%d: %s\n", file, jerr.line, jerr.text);
            return NULL;
        }
        if (!json_is_object(event)) {
            fprintf(stderr, "dealflow pipeline: %s holds no JSON object\n", file);
            json_decref(event);
            return NULL;
        }
        const char *type = json_string_value(json_object_get(event, "type"));
        if (type && strcmp(type, "pipeline") != 0) {
            fprintf(stderr, "dealflow pipeline: %s is a `%s` event, not a `pipeline` one\n", file,
                    type);
            json_decref(event);
            return NULL;
        }
        if (!json_is_string(json_object_get(event, "pipeline"))) {
            fprintf(stderr, "dealflow pipeline: %s names no `pipeline`\n", file);
            json_decref(event);
            return NULL;
        }
    } else {
        json_t *stages = json_array();
        for (int i = 0; i < nspecs; i++) {
            json_t *stage = parse_stage(specs[i]);
            if (!stage) {
                json_decref(stages);
                cli_usage("pipeline",
                          "--stage `%s` is not NAME:PROB[:ROT_DAYS[:won|lost]] (PROB 0..100)",
                          specs[i]);
                return NULL;
            }
            json_array_append_new(stages, stage);
        }
        event = json_pack("{s:s, s:o}", "pipeline", name, "stages", stages);
    }
    json_object_set_new(event, "type", json_string("pipeline"));
    if (id) {
        json_object_set_new(event, "id", json_string(id));
    } else if (!json_is_string(json_object_get(event, "id"))) {
        char made[256];
        snprintf(made, sizeof made, "pipeline-%.128s-%lld",
                 json_string_value(json_object_get(event, "pipeline")), (long long)time_now_ms());
        json_object_set_new(event, "id", json_string(made));
    }
    return event;
}

static int define_pipeline(cli *g, json_t *event)
{
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_array(&pk, 1);
    json_to_msgpack(&pk, event);
    df_append_result result = {0};
    df_error err = {0};
    int rc = cli_check(g, "pipeline define",
                       df_append(cli_client(g), sb.data, sb.size, &result, 1, &err), &err);
    msgpack_sbuffer_destroy(&sb);
    if (rc)
        return rc;
    const char *name = json_string_value(json_object_get(event, "pipeline"));
    if (result.error) {
        fprintf(stderr, "dealflow pipeline define: %s: %s%s%s\n", name, df_error_name(result.error),
                result.message[0] ? ": " : "", result.message);
        return EXIT_REFUSED;
    }
    if (!g->json)
        printf("pipeline %s %s (seq %llu)\n\n", name,
               result.dup ? "was defined by that id" : "defined", (unsigned long long)result.seq);
    return show_pipelines(g, "pipeline define", name);
}

int cmd_pipeline(cli *g, int argc, char **argv)
{
    const char *file = NULL, *name = NULL, *id = NULL, *stage = NULL;
    const char *specs[MAX_STAGE_FLAGS];
    int nspecs = 0;
    /* --stage repeats: take each occurrence before the common parser, which
     * keeps the last value of an option */
    char **rest = calloc((size_t)argc + 1, sizeof *rest);
    if (!rest)
        return EXIT_FAILED;
    int nrest = 0;
    for (int i = 0; i < argc; i++) {
        if (i > 0 && strcmp(argv[i], "--stage") == 0 && i + 1 < argc) {
            if (nspecs == MAX_STAGE_FLAGS) {
                free(rest);
                return cli_usage("pipeline", "at most %d --stage", MAX_STAGE_FLAGS);
            }
            specs[nspecs++] = argv[++i];
        } else if (i > 0 && strncmp(argv[i], "--stage=", 8) == 0) {
            if (nspecs == MAX_STAGE_FLAGS) {
                free(rest);
                return cli_usage("pipeline", "at most %d --stage", MAX_STAGE_FLAGS);
            }
            specs[nspecs++] = argv[i] + 8;
        } else {
            rest[nrest++] = argv[i];
        }
    }
    const cli_opt opts[] = {{"--file", true, &file},
                            {"--name", true, &name},
                            {"--id", true, &id},
                            {"--stage", true, &stage},
                            {NULL, false, NULL}};
    const char *pos[2] = {0};
    int npos = 0;
    int rc = cli_parse(g, "pipeline", pipeline_help, nrest, rest, opts, pos, 0, 2, &npos);
    free(rest);
    if (rc)
        return rc < 0 ? EXIT_OK : rc;
    const char *sub = npos > 0 ? pos[0] : "list";
    if (strcmp(sub, "list") == 0 || strcmp(sub, "show") == 0) {
        if (file || name || id || nspecs)
            return cli_usage("pipeline", "--file, --name, --stage and --id are for define");
        if (strcmp(sub, "show") == 0 && npos != 2)
            return cli_usage("pipeline", "show needs the pipeline's NAME");
        if (strcmp(sub, "list") == 0 && npos != 1 && npos != 0)
            return cli_usage("pipeline", "list takes no NAME (show NAME shows one)");
        return show_pipelines(g, "pipeline", npos == 2 ? pos[1] : NULL);
    }
    if (strcmp(sub, "define") != 0)
        return cli_usage("pipeline", "unknown subcommand `%s` (list, show or define)", sub);
    if (npos != 1)
        return cli_usage("pipeline", "define takes no argument besides its options");
    if (!file == !name)
        return cli_usage("pipeline", "define needs --file FILE.json, or --name and --stage");
    if (file && nspecs)
        return cli_usage("pipeline", "--stage goes with --name, not --file");
    if (name && nspecs == 0)
        return cli_usage("pipeline", "--name needs its stages, as --stage NAME:PROB...");
    json_t *event = event_of(file, name, specs, nspecs, id);
    if (!event)
        return EXIT_USAGE;
    rc = define_pipeline(g, event);
    json_decref(event);
    return rc;
}

/* main.c: the dealflow command: global options, the table of commands, errors and exit statuses,
 * and ping. */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "codec.h"
#include "version.h"

static const char usage_text[] =
    "usage: dealflow [GLOBAL OPTIONS] COMMAND [OPTIONS] [ARGS]\n"
    "\n"
    "Talks to a dealflowd daemon: sends and imports deal events, shows deals,\n"
    "their history and the pipeline, and follows deal moves live.\n"
    "\n"
    "commands:\n"
    "  send [EVENT...]        send events (JSON or NDJSON) from arguments, --file or stdin\n"
    "  import FILE            import NDJSON or CSV (with a column mapping), idempotently\n"
    "  deal DEAL              show a deal\n"
    "  history DEAL           the deal's recorded events, as an auditor reads them\n"
    "  list                   deals matching filters (every page)\n"
    "  replay                 every recorded event, in seq order\n"
    "  board                  the pipeline's stages: count, amount, weighted, days, stale\n"
    "  metrics                win rate, cycle time, conversion, velocity\n"
    "  losses                 where deals are lost from, and why\n"
    "  forecast               what will close, and when, by week, month or quarter\n"
    "  calibration            stages' configured probabilities against outcomes\n"
    "  pipeline               list, show or define pipelines and their stages\n"
    "  tail                   follow deal moves live (with gap repair)\n"
    "  stats                  the daemon's counters\n"
    "  rejected               what ingest could not record\n"
    "  redact DEAL            remove personal values from a deal's events (erasure)\n"
    "  ping                   check that the daemon answers\n"
    "  keygen                 make a CURVE key pair (or print a key file's public key)\n"
    "\n"
    "global options (also accepted after the command):\n"
    "  --api EP        api endpoint ($DEALFLOW_API, default " DF_DEFAULT_API_ENDPOINT ")\n"
    "  --ingest EP     ingest endpoint ($DEALFLOW_INGEST, default " DF_DEFAULT_INGEST_ENDPOINT ")\n"
    "  --notify EP     notify endpoint ($DEALFLOW_NOTIFY, default " DF_DEFAULT_NOTIFY_ENDPOINT ")\n"
    "  --server-key K  the daemon's CURVE public key, Z85 or a file ($DEALFLOW_SERVER_KEY)\n"
    "  --key-file F    this client's CURVE secret key file ($DEALFLOW_KEY_FILE)\n"
    "  --json          print JSON only on stdout (NDJSON for streams)\n"
    "  --timeout MS    how long one attempt of a request waits (default 3000; ping 450)\n"
    "  --attempts N    attempts before the daemon counts as unreachable (default 5; ping 2)\n"
    "  --help, --version\n"
    "\n"
    "Times: ms since the epoch, 2024-01-31 (UTC midnight), 2024-01-31T10:00:00Z, or now.\n"
    "Exit status: 0 done; 1 something refused or not found; 2 usage or unreadable input;\n"
    "3 daemon unreachable; 4 the daemon or the command failed; 130 interrupted.\n"
    "`dealflow COMMAND --help` describes a command; man dealflow says more.\n";

/* ping's own defaults: 2 x 450 ms, so that a daemon that is down is said
 * to be within a second */
#define PING_TIMEOUT_MS    450
#define PING_TIMEOUT_TEXT  "450"
#define PING_ATTEMPTS      2
#define PING_ATTEMPTS_TEXT "2"

typedef struct command {
    const char *name;
    cli_command_fn run;
} command;

static const command commands[] = {
    {"send", cmd_send},       {"import", cmd_import},     {"deal", cmd_deal},
    {"history", cmd_history}, {"list", cmd_list},         {"replay", cmd_replay},
    {"board", cmd_board},     {"metrics", cmd_metrics},   {"losses", cmd_losses},
    {"tail", cmd_tail},       {"stats", cmd_stats},       {"rejected", cmd_rejected},
    {"ping", cmd_ping},       {"keygen", cmd_keygen},     {"pipeline", cmd_pipeline},
    {"redact", cmd_redact},   {"forecast", cmd_forecast}, {"calibration", cmd_calibration},
};

int cli_usage(const char *command_name, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "dealflow%s%s: ", command_name ? " " : "", command_name ? command_name : "");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n(see dealflow %s--help)\n", command_name ? "COMMAND " : "");
    va_end(ap);
    return EXIT_USAGE;
}

int cli_fail(const char *what, int code, const df_error *err)
{
    const char *message = err && err->message[0] ? err->message : "";
    if (code == DF_EUNREACHABLE) {
        fprintf(stderr, "dealflow: %s: the daemon is unreachable%s%s\n", what,
                message[0] ? ": " : "", message);
        return EXIT_UNREACHABLE;
    }
    fprintf(stderr, "dealflow: %s: %s%s%s\n", what, df_error_name(code), message[0] ? ": " : "",
            message);
    switch (code) {
    case DF_EUNAVAILABLE:
    case DF_EINTERNAL:
        return EXIT_FAILED;
    default:
        return EXIT_REFUSED;
    }
}

df_client *cli_client(cli *g)
{
    if (g->client)
        return g->client;
    df_client_options opt = {
        .api = g->api,
        .ingest = g->ingest,
        .notify = g->notify,
        .timeout_ms = g->timeout_ms,
        .attempts = g->attempts,
        .server_key = g->server_key,
        .key_file = g->key_file,
    };
    df_error err = {0};
    int rc = df_client_open(&g->client, &opt, &err);
    if (rc < 0) {
        fprintf(stderr, "dealflow: cannot open the client: %s\n", err.message);
        g->client = NULL;
    }
    return g->client;
}

int cli_check(cli *g, const char *what, int rc, const df_error *err)
{
    if (g->client == NULL)
        return EXIT_FAILED;
    return rc < 0 ? cli_fail(what, rc, err) : 0;
}

void cli_reply_init(cli_reply *r)
{
    r->bytes = (df_bytes){0};
    r->err = (df_error){0};
    msgpack_zone_init(&r->zone, 4096);
}

int cli_reply_take(cli *g, const char *what, int rc, cli_reply *r)
{
    rc = cli_check(g, what, rc, &r->err);
    if (rc != 0)
        return rc;
    if (df_msgpack_unpack(r->bytes.data, r->bytes.len, &r->zone, &r->obj, &r->err) < 0) {
        fprintf(stderr, "dealflow: %s: malformed reply: %s\n", what, r->err.message);
        return EXIT_FAILED;
    }
    return 0;
}

void cli_reply_free(cli_reply *r)
{
    df_bytes_free(&r->bytes);
    msgpack_zone_destroy(&r->zone);
}

static const cli_opt *find_opt(const cli_opt *opts, const char *name, size_t len)
{
    for (const cli_opt *o = opts; o && o->name; o++)
        if (strlen(o->name) == len && strncmp(o->name, name, len) == 0)
            return o;
    return NULL;
}

int cli_parse(cli *g, const char *command_name, const char *help, int argc, char **argv,
              const cli_opt *opts, const char **pos, int min_pos, int max_pos, int *npos)
{
    const char *timeout = NULL, *attempts = NULL, *json = NULL, *want_help = NULL;
    const cli_opt globals[] = {
        {"--api", true, &g->api},
        {"--ingest", true, &g->ingest},
        {"--notify", true, &g->notify},
        {"--json", false, &json},
        {"--server-key", true, &g->server_key},
        {"--key-file", true, &g->key_file},
        {"--timeout", true, &timeout},
        {"--attempts", true, &attempts},
        {"--help", false, &want_help},
        {NULL, false, NULL},
    };
    int n = 0;
    bool only_positional = false;
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (!only_positional && strcmp(arg, "--") == 0) {
            only_positional = true;
            continue;
        }
        if (!only_positional && strcmp(arg, "-h") == 0) {
            want_help = "";
            continue;
        }
        if (!only_positional && strncmp(arg, "--", 2) == 0) {
            const char *eq = strchr(arg, '=');
            size_t len = eq ? (size_t)(eq - arg) : strlen(arg);
            const cli_opt *o = find_opt(opts, arg, len);
            if (!o)
                o = find_opt(globals, arg, len);
            if (!o)
                return cli_usage(command_name, "unknown option %.*s", (int)len, arg);
            if (o->has_value) {
                if (eq) {
                    *o->value = eq + 1;
                } else if (i + 1 < argc) {
                    *o->value = argv[++i];
                } else {
                    return cli_usage(command_name, "%s needs a value", o->name);
                }
            } else {
                if (eq)
                    return cli_usage(command_name, "%s takes no value", o->name);
                *o->value = "";
            }
            continue;
        }
        if (n >= max_pos)
            return cli_usage(command_name, "unexpected argument `%s`", arg);
        pos[n++] = arg;
    }
    if (want_help) {
        fputs(help, stdout);
        return -1;
    }
    if (json)
        g->json = true;
    uint64_t v;
    if (timeout) {
        if (!cli_uint_opt(command_name, "--timeout", timeout, &v) || v == 0 || v > 3600000)
            return cli_usage(command_name, "--timeout takes 1..3600000 ms");
        g->timeout_ms = (int)v;
    }
    if (attempts) {
        if (!cli_uint_opt(command_name, "--attempts", attempts, &v) || v == 0 || v > 1000)
            return cli_usage(command_name, "--attempts takes 1..1000");
        g->attempts = (int)v;
    }
    if (n < min_pos)
        return cli_usage(command_name, "missing argument");
    if (npos)
        *npos = n;
    return 0;
}

bool cli_time_opt(const char *command_name, const char *flag, const char *value, int64_t *ms)
{
    if (time_parse(value, ms))
        return true;
    cli_usage(command_name, "%s `%s` is not a time (ms, 2024-01-31, 2024-01-31T10:00:00Z or now)",
              flag, value);
    return false;
}

bool cli_uint_opt(const char *command_name, const char *flag, const char *value, uint64_t *out)
{
    char *end;
    if (value[0] < '0' || value[0] > '9')
        goto bad;
    unsigned long long v = strtoull(value, &end, 10);
    if (*end != '\0')
        goto bad;
    *out = v;
    return true;
bad:
    cli_usage(command_name, "%s `%s` is not a non-negative integer", flag, value);
    return false;
}

int cmd_ping(cli *g, int argc, char **argv)
{
    static const char help[] =
        "usage: dealflow ping\n"
        "Asks the daemon for its version and last recorded seq. It says the daemon\n"
        "is unreachable (exit 3) within a second: unless --timeout or --attempts\n"
        "say otherwise, it makes " PING_ATTEMPTS_TEXT " attempts of " PING_TIMEOUT_TEXT " ms.\n";
    int rc = cli_parse(g, "ping", help, argc, argv, NULL, NULL, 0, 0, NULL);
    if (rc)
        return rc < 0 ? EXIT_OK : rc;
    /* a check wants a quick answer, not the patience other requests get */
    if (g->timeout_ms == 0)
        g->timeout_ms = PING_TIMEOUT_MS;
    if (g->attempts == 0)
        g->attempts = PING_ATTEMPTS;
    cli_reply r;
    cli_reply_init(&r);
    rc = cli_reply_take(g, "ping", df_ping(cli_client(g), &r.bytes, &r.err), &r);
    if (rc == 0) {
        if (g->json) {
            json_print_line(stdout, &r.obj);
        } else {
            char version[32];
            int64_t last = 0;
            mp_int(&r.obj, "last_seq", &last);
            printf("dealflowd %s at %s, last seq %lld\n",
                   mp_str(&r.obj, "version", version, sizeof version),
                   g->api ? g->api
                          : (getenv("DEALFLOW_API") ? getenv("DEALFLOW_API")
                                                    : DF_DEFAULT_API_ENDPOINT),
                   (long long)last);
        }
    }
    cli_reply_free(&r);
    return rc;
}

/* The reader of a pipe on stdout has gone (`dealflow replay | head`): as
 * for a program killed by SIGPIPE, that is no failure to report. */
static bool stdout_reader_gone(void)
{
    struct pollfd p = {.fd = STDOUT_FILENO, .events = POLLOUT};
    return errno == EPIPE || (poll(&p, 1, 0) == 1 && (p.revents & POLLERR));
}

int main(int argc, char **argv)
{
    cli g = {0};
    signal(SIGPIPE, SIG_IGN);
    int i = 1;
    /* Global options before the command; cli_parse takes them after it too. */
    for (; i < argc; i++) {
        const char *arg = argv[i];
        if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
            fputs(usage_text, stdout);
            return EXIT_OK;
        }
        if (strcmp(arg, "--version") == 0) {
            printf("dealflow %s\n", DF_VERSION);
            return EXIT_OK;
        }
        if (strcmp(arg, "--json") == 0) {
            g.json = true;
            continue;
        }
        const char *names[] = {"--api",      "--ingest",     "--notify",  "--timeout",
                               "--attempts", "--server-key", "--key-file"};
        const char **slots[] = {&g.api, &g.ingest,     &g.notify,  NULL,
                                NULL,   &g.server_key, &g.key_file};
        bool matched = false;
        for (size_t k = 0; k < sizeof names / sizeof names[0] && !matched; k++) {
            size_t len = strlen(names[k]);
            const char *value = NULL;
            if (strcmp(arg, names[k]) == 0) {
                if (i + 1 >= argc)
                    return cli_usage(NULL, "%s needs a value", names[k]);
                value = argv[++i];
            } else if (strncmp(arg, names[k], len) == 0 && arg[len] == '=') {
                value = arg + len + 1;
            } else {
                continue;
            }
            matched = true;
            if (slots[k]) {
                *slots[k] = value;
            } else {
                uint64_t v;
                if (!cli_uint_opt(NULL, names[k], value, &v) || v == 0 || v > 3600000)
                    return cli_usage(NULL, "%s takes a positive integer", names[k]);
                if (k == 3)
                    g.timeout_ms = (int)v;
                else
                    g.attempts = (int)(v > 1000 ? 1000 : v);
            }
        }
        if (matched)
            continue;
        if (arg[0] == '-')
            return cli_usage(NULL, "unknown option %s", arg);
        break;
    }
    if (i >= argc) {
        fputs(usage_text, stderr);
        return EXIT_USAGE;
    }
    const command *cmd = NULL;
    for (size_t k = 0; k < sizeof commands / sizeof commands[0]; k++)
        if (strcmp(commands[k].name, argv[i]) == 0)
            cmd = &commands[k];
    if (!cmd)
        return cli_usage(NULL, "unknown command `%s`", argv[i]);
    int rc = cmd->run(&g, argc - i, argv + i);
    errno = 0;
    if ((fflush(stdout) != 0 || ferror(stdout)) && rc == EXIT_OK && !stdout_reader_gone()) {
        fprintf(stderr, "dealflow: writing the output failed%s%s\n", errno ? ": " : "",
                errno ? strerror(errno) : "");
        rc = EXIT_FAILED;
    }
    if (g.client)
        df_client_close(g.client);
    return rc;
}

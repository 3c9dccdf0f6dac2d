/* main.c: dealflow-gateway, the HTTP gateway to dealflowd: flags, environment and the config
 * file, then serving and delivering webhooks until SIGTERM or SIGINT. */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "dealflow.h"
#include "delivery.h"
#include "server.h"

enum { EXIT_CANNOT_START = 1, EXIT_USAGE_ERROR = 2 };

static const char help[] =
    "usage: dealflow-gateway --config FILE [--listen HOST:PORT] [options]\n"
    "\n"
    "Lets HTTP systems reach dealflowd: events in (POST /v1/events), other\n"
    "systems' webhooks through the config's `hooks` (POST /v1/hooks/NAME, signed),\n"
    "reads (GET /v1/deals/ID, /v1/deals/ID/history, /v1/board, /v1/metrics),\n"
    "GET /healthz and GET /metrics (Prometheus), each but /healthz, /metrics and\n"
    "signed hooks with Authorization: Bearer TOKEN; and webhooks out: the daemon's\n"
    "notifications POSTed, signed, to the config's `webhooks`, their state in\n"
    "GET /v1/webhooks.\n"
    "\n"
    "  --config FILE      the JSON config file (tokens, limits, daemon, ...)\n"
    "  --listen HOST:PORT where to serve (config `listen`, default " GW_DEFAULT_LISTEN ")\n"
    "  --api EP           the daemon's api endpoint ($DEALFLOW_API, config daemon.api,\n"
    "                     default " DF_DEFAULT_API_ENDPOINT ")\n"
    "  --ingest EP        ingest endpoint ($DEALFLOW_INGEST, config daemon.ingest)\n"
    "  --notify EP        notify endpoint ($DEALFLOW_NOTIFY, config daemon.notify)\n"
    "  --server-key K     the daemon's CURVE public key, Z85 or a file ($DEALFLOW_SERVER_KEY)\n"
    "  --key-file F       this client's CURVE secret key file ($DEALFLOW_KEY_FILE)\n"
    "  --state-dir DIR    where state is kept (config `state_dir`)\n"
    "  --help             this text\n"
    "  --version          the version\n"
    "\n"
    "A flag wins over the environment, which wins over the config file.\n"
    "Exit status: 0 after SIGTERM or SIGINT; 1 when it cannot start (it says\n"
    "why); 2 on a usage error.\n";

typedef struct flags {
    const char *config, *listen, *api, *ingest, *notify, *server_key, *key_file, *state_dir;
} flags;

static int usage(const char *what, const char *arg)
{
    fprintf(stderr, "dealflow-gateway: %s %s\n(dealflow-gateway --help says how to use it)\n", what,
            arg);
    return EXIT_USAGE_ERROR;
}

/* Parses argv into f; 0, -1 after --help or --version, or EXIT_USAGE_ERROR. */
static int parse_flags(int argc, char **argv, flags *f)
{
    struct {
        const char *name;
        const char **value;
    } const table[] = {
        {"--config", &f->config},     {"--listen", &f->listen},
        {"--api", &f->api},           {"--ingest", &f->ingest},
        {"--notify", &f->notify},     {"--server-key", &f->server_key},
        {"--key-file", &f->key_file}, {"--state-dir", &f->state_dir},
    };
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
            fputs(help, stdout);
            return -1;
        }
        if (strcmp(arg, "--version") == 0) {
            printf("dealflow-gateway %s\n", df_version());
            return -1;
        }
        size_t t = 0, n = sizeof table / sizeof *table;
        const char *value = NULL;
        for (; t < n; t++) {
            size_t len = strlen(table[t].name);
            if (strncmp(arg, table[t].name, len) != 0)
                continue;
            if (arg[len] == '=') {
                value = arg + len + 1;
                break;
            }
            if (arg[len] == '\0') {
                if (i + 1 == argc)
                    return usage("a value is needed after", arg);
                value = argv[++i];
                break;
            }
        }
        if (t == n)
            return usage(arg[0] == '-' ? "unknown option" : "unexpected argument", arg);
        *table[t].value = value;
    }
    if (!f->config)
        return usage("the config file with the tokens is required:", "--config FILE");
    return 0;
}

/* The flag, else the environment's DEALFLOW_name, else the config's. */
static const char *pick(const char *flag, const char *env, const char *config)
{
    if (flag)
        return flag;
    const char *from_env = getenv(env);
    return from_env ? from_env : config;
}

/* Starts a worker for each of the config's webhooks (none without them) and logs it; 0, or -1
 * after saying why. */
static int start_delivery(gw_delivery **out, const gw_config *config,
                          const df_client_options *daemon)
{
    *out = NULL;
    if (config->nwebhooks == 0)
        return 0;
    gw_webhook *hooks = calloc(config->nwebhooks, sizeof *hooks);
    if (!hooks) {
        fprintf(stderr, "dealflow-gateway: webhooks: out of memory\n");
        return -1;
    }
    for (size_t i = 0; i < config->nwebhooks; i++)
        hooks[i] = (gw_webhook){config->webhooks[i].url, config->webhooks[i].topics,
                                config->webhooks[i].secret};
    char err[GW_ERROR_MAX];
    int rc = gw_delivery_start(out, daemon, hooks, config->nwebhooks, config->state_dir, err,
                               sizeof err);
    free(hooks);
    if (rc < 0) {
        fprintf(stderr, "dealflow-gateway: %s: webhooks: %s\n", config->path, err);
        return -1;
    }
    fprintf(stderr, "dealflow-gateway: delivering webhooks to %zu endpoint%s, %s%s\n",
            config->nwebhooks, config->nwebhooks == 1 ? "" : "s",
            config->state_dir ? "positions kept in " : "no state_dir: positions not kept",
            config->state_dir ? config->state_dir : "");
    return 0;
}

int main(int argc, char **argv)
{
    flags f = {0};
    int rc = parse_flags(argc, argv, &f);
    if (rc)
        return rc < 0 ? 0 : rc;
    gw_config config;
    char err[GW_ERROR_MAX];
    if (gw_config_load(&config, f.config, err, sizeof err) < 0) {
        fprintf(stderr, "dealflow-gateway: %s\n", err);
        return EXIT_CANNOT_START;
    }
    if (f.state_dir)
        config.state_dir = f.state_dir;
    df_client_options daemon = {
        .api = pick(f.api, "DEALFLOW_API", config.api),
        .ingest = pick(f.ingest, "DEALFLOW_INGEST", config.ingest),
        .notify = pick(f.notify, "DEALFLOW_NOTIFY", config.notify),
        .server_key = pick(f.server_key, "DEALFLOW_SERVER_KEY", config.server_key),
        .key_file = pick(f.key_file, "DEALFLOW_KEY_FILE", config.key_file),
        .timeout_ms = config.timeout_ms,
        .attempts = config.attempts,
    };
    /* the endpoints and keys are checked now, so that a mistake stops the start */
    df_client *probe = NULL;
    df_error derr = {0};
    if (df_client_open(&probe, &daemon, &derr) < 0) {
        fprintf(stderr, "dealflow-gateway: the daemon's endpoints or keys: %s\n", derr.message);
        gw_config_free(&config);
        return EXIT_CANNOT_START;
    }
    df_client_close(probe);

    /* the server's threads inherit this mask, so the signals come to sigwait */
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGTERM);
    sigaddset(&stop, SIGINT);
    pthread_sigmask(SIG_BLOCK, &stop, NULL);
    signal(SIGPIPE, SIG_IGN);

    gw_delivery *delivery = NULL;
    if (start_delivery(&delivery, &config, &daemon) < 0) {
        gw_config_free(&config);
        return EXIT_CANNOT_START;
    }
    const char *listen_on = f.listen ? f.listen : config.listen;
    gw_server *server = NULL;
    if (gw_server_start(&server, &config, &daemon, delivery, listen_on, err, sizeof err) < 0) {
        fprintf(stderr, "dealflow-gateway: %s\n", err);
        gw_delivery_stop(delivery);
        gw_config_free(&config);
        return EXIT_CANNOT_START;
    }
    fprintf(stderr, "dealflow-gateway %s: listening on %s (port %u), daemon api %s\n", df_version(),
            listen_on, gw_server_port(server),
            daemon.api
                ? daemon.api
                : (getenv("DEALFLOW_API") ? getenv("DEALFLOW_API") : DF_DEFAULT_API_ENDPOINT));
    int sig = 0;
    sigwait(&stop, &sig);
    fprintf(stderr, "dealflow-gateway: %s, stopping\n", sig == SIGINT ? "SIGINT" : "SIGTERM");
    gw_server_stop(server);
    /* after the server, which reads the delivery's states until it stops */
    gw_delivery_stop(delivery);
    gw_config_free(&config);
    return 0;
}

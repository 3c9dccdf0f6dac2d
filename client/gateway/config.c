/* config.c: the gateway's JSON config file. Everything is checked before the gateway starts, and
 * a key it does not know is refused, so that a typo cannot silently turn something off; each
 * message names the file, the key and what is wrong. */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#define CONFIG_MAX_BYTES (16u << 20)

/* Where a message is about: the file and the key's path in it. */
typedef struct checker {
    const char *path;
    char *err;
    size_t cap;
} checker;

static int bad(const checker *k, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int bad(const checker *k, const char *key, const char *fmt, ...)
{
    if (!k->err || k->cap == 0)
        return -1;
    int n = snprintf(k->err, k->cap, "%s: `%s` ", k->path, key);
    if (n < 0 || (size_t)n >= k->cap)
        return -1;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(k->err + n, k->cap - (size_t)n, fmt, ap);
    va_end(ap);
    return -1;
}

/* Refuses keys of obj not in allowed (NULL-terminated); key names obj. */
static int only_keys(const checker *k, const json_t *obj, const char *key,
                     const char *const *allowed, const char *listed)
{
    const char *name;
    json_t *value;
    json_object_foreach((json_t *)obj, name, value)
    {
        bool known = false;
        for (size_t i = 0; allowed[i] && !known; i++)
            known = strcmp(allowed[i], name) == 0;
        if (!known) {
            char where[128];
            snprintf(where, sizeof where, "%s%s%s", key, key[0] ? "." : "", name);
            return bad(k, where, "is not a key the gateway knows (%s)", listed);
        }
    }
    return 0;
}

/* An optional string: NULL when absent; -1 when present and not a non-empty string. */
static int opt_string(const checker *k, const json_t *obj, const char *name, const char *where,
                      const char **out)
{
    const json_t *v = json_object_get(obj, name);
    *out = NULL;
    if (!v)
        return 0;
    if (!json_is_string(v) || json_string_length(v) == 0 ||
        strlen(json_string_value(v)) != json_string_length(v))
        return bad(k, where, "must be a non-empty string");
    *out = json_string_value(v);
    return 0;
}

/* An optional integer in [min, max]; *out keeps its default when absent. */
static int opt_int(const checker *k, const json_t *obj, const char *name, const char *where,
                   long long min, long long max, long long *out)
{
    const json_t *v = json_object_get(obj, name);
    if (!v)
        return 0;
    if (!json_is_integer(v) || json_integer_value(v) < min || json_integer_value(v) > max)
        return bad(k, where, "must be an integer from %lld to %lld", min, max);
    *out = json_integer_value(v);
    return 0;
}

static int check_listen(const checker *k, const char *listen)
{
    const char *colon = strrchr(listen, ':');
    if (!colon || colon == listen)
        return bad(k, "listen", "is \"%s\", not HOST:PORT", listen);
    char *end;
    errno = 0;
    long port = strtol(colon + 1, &end, 10);
    if (colon[1] == '\0' || *end != '\0' || errno || port < 0 || port > 65535)
        return bad(k, "listen", "is \"%s\": the port must be a number from 0 to 65535", listen);
    return 0;
}

static int read_daemon(gw_config *c, const checker *k, const json_t *d)
{
    static const char *const keys[] = {"api",      "ingest",     "notify",   "server_key",
                                       "key_file", "timeout_ms", "attempts", NULL};
    if (!json_is_object(d))
        return bad(k, "daemon", "must be an object");
    if (only_keys(k, d, "daemon", keys,
                  "api, ingest, notify, server_key, key_file, timeout_ms, attempts") < 0)
        return -1;
    long long timeout_ms = 0, attempts = 0;
    if (opt_string(k, d, "api", "daemon.api", &c->api) < 0 ||
        opt_string(k, d, "ingest", "daemon.ingest", &c->ingest) < 0 ||
        opt_string(k, d, "notify", "daemon.notify", &c->notify) < 0 ||
        opt_string(k, d, "server_key", "daemon.server_key", &c->server_key) < 0 ||
        opt_string(k, d, "key_file", "daemon.key_file", &c->key_file) < 0 ||
        opt_int(k, d, "timeout_ms", "daemon.timeout_ms", 1, 600000, &timeout_ms) < 0 ||
        opt_int(k, d, "attempts", "daemon.attempts", 1, 100, &attempts) < 0)
        return -1;
    c->timeout_ms = (int)timeout_ms;
    c->attempts = (int)attempts;
    return 0;
}

const char *gw_role_name(gw_role role)
{
    switch (role) {
    case GW_ROLE_PRODUCER:
        return "producer";
    case GW_ROLE_READER:
        return "reader";
    case GW_ROLE_ADMIN:
        return "admin";
    }
    return "?";
}

bool gw_role_allows(gw_role held, gw_role needed)
{
    return held == GW_ROLE_ADMIN || held == needed;
}

static void hash_token(const char *token, size_t len, unsigned char out[GW_TOKEN_HASH_BYTES])
{
    crypto_generichash(out, GW_TOKEN_HASH_BYTES, (const unsigned char *)token, len, NULL, 0);
}

static int read_tokens(gw_config *c, const checker *k, const json_t *tokens)
{
    static const char *const keys[] = {"token", "role", "name", NULL};
    if (!json_is_array(tokens) || json_array_size(tokens) == 0)
        return bad(k, "tokens", "must be a non-empty array of {\"token\", \"role\", \"name\"}");
    c->ntokens = json_array_size(tokens);
    c->tokens = calloc(c->ntokens, sizeof *c->tokens);
    if (!c->tokens)
        return bad(k, "tokens", "cannot be read: out of memory");
    for (size_t i = 0; i < c->ntokens; i++) {
        const json_t *t = json_array_get(tokens, i);
        char where[64], key[80];
        snprintf(where, sizeof where, "tokens[%zu]", i);
        if (!json_is_object(t))
            return bad(k, where, "must be an object {\"token\", \"role\", \"name\"}");
        if (only_keys(k, t, where, keys, "token, role, name") < 0)
            return -1;
        const char *token, *role;
        snprintf(key, sizeof key, "%s.token", where);
        if (opt_string(k, t, "token", key, &token) < 0)
            return -1;
        if (!token)
            return bad(k, key, "is missing");
        snprintf(key, sizeof key, "%s.name", where);
        if (opt_string(k, t, "name", key, &c->tokens[i].name) < 0)
            return -1;
        snprintf(key, sizeof key, "%s.role", where);
        if (opt_string(k, t, "role", key, &role) < 0)
            return -1;
        if (!role)
            return bad(k, key, "is missing (producer, reader or admin)");
        if (strcmp(role, "producer") == 0)
            c->tokens[i].role = GW_ROLE_PRODUCER;
        else if (strcmp(role, "reader") == 0)
            c->tokens[i].role = GW_ROLE_READER;
        else if (strcmp(role, "admin") == 0)
            c->tokens[i].role = GW_ROLE_ADMIN;
        else
            return bad(k, key, "is \"%s\", not producer, reader or admin", role);
        hash_token(token, strlen(token), c->tokens[i].hash);
        for (size_t j = 0; j < i; j++)
            if (memcmp(c->tokens[j].hash, c->tokens[i].hash, GW_TOKEN_HASH_BYTES) == 0) {
                snprintf(key, sizeof key, "%s.token", where);
                return bad(k, key, "is the same as tokens[%zu].token: each must be its own", j);
            }
    }
    return 0;
}

static int read_webhooks(gw_config *c, const checker *k, const json_t *hooks)
{
    static const char *const keys[] = {"url", "topics", "secret", NULL};
    if (!json_is_array(hooks))
        return bad(k, "webhooks", "must be an array of {\"url\", \"topics\", \"secret\"}");
    c->nwebhooks = json_array_size(hooks);
    c->webhooks = c->nwebhooks ? calloc(c->nwebhooks, sizeof *c->webhooks) : NULL;
    if (c->nwebhooks && !c->webhooks)
        return bad(k, "webhooks", "cannot be read: out of memory");
    for (size_t i = 0; i < c->nwebhooks; i++) {
        const json_t *h = json_array_get(hooks, i);
        gw_config_webhook *w = &c->webhooks[i];
        char where[64], key[80];
        snprintf(where, sizeof where, "webhooks[%zu]", i);
        if (!json_is_object(h))
            return bad(k, where, "must be an object {\"url\", \"topics\", \"secret\"}");
        if (only_keys(k, h, where, keys, "url, topics, secret") < 0)
            return -1;
        snprintf(key, sizeof key, "%s.url", where);
        if (opt_string(k, h, "url", key, &w->url) < 0)
            return -1;
        if (!w->url)
            return bad(k, key, "is missing");
        if (strncmp(w->url, "http://", 7) != 0 && strncmp(w->url, "https://", 8) != 0)
            return bad(k, key, "is \"%s\", not an http:// or https:// URL", w->url);
        const json_t *topics = json_object_get(h, "topics");
        snprintf(key, sizeof key, "%s.topics", where);
        if (topics && !json_is_string(topics))
            return bad(k, key, "must be a string: a topic prefix such as \"deal.moved.\"");
        w->topics = topics ? json_string_value(topics) : "";
        snprintf(key, sizeof key, "%s.secret", where);
        if (opt_string(k, h, "secret", key, &w->secret) < 0)
            return -1;
        /* an unsigned delivery could not be told from a forged one */
        if (!w->secret)
            return bad(k, key,
                       "is missing: each delivery is signed with it (X-Dealflow-Signature), "
                       "so that the receiver can check it came from this gateway");
    }
    return 0;
}

static int read_hooks(gw_config *c, const checker *k, const json_t *hooks)
{
    if (!json_is_object(hooks))
        return bad(k, "hooks", "must be an object of NAME: mapping");
    const char *name;
    json_t *spec;
    json_object_foreach((json_t *)hooks, name, spec)
    {
        char where[160];
        snprintf(where, sizeof where, "hooks.%.120s", name);
        size_t len = strlen(name);
        if (len == 0 || len > 64 ||
            strspn(name, "abcdefghijklmnopqrstuvwxyz"
                         "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-") != len)
            return bad(k, where, "is not a hook name: 1 to 64 of A-Z a-z 0-9 _ -");
        if (!json_is_object(spec))
            return bad(k, where, "must be an object (a mapping)");
    }
    c->hooks = hooks;
    size_t n = json_object_size(hooks);
    c->compiled_hooks = n ? calloc(n, sizeof *c->compiled_hooks) : NULL;
    if (n && !c->compiled_hooks)
        return bad(k, "hooks", "cannot be read: out of memory");
    /* compiled now, so that a mapping's mistake stops the start instead of a request */
    json_object_foreach((json_t *)hooks, name, spec)
    {
        char where[160], why[GW_ERROR_MAX];
        snprintf(where, sizeof where, "hooks.%.120s", name);
        gw_hook *h = gw_hook_compile(name, spec, why, sizeof why);
        if (!h)
            return bad(k, where, "is not a mapping the gateway can use: %s", why);
        const char *signature = json_string_value(json_object_get(spec, "signature"));
        c->compiled_hooks[c->nhooks++] = (gw_config_hook){
            .name = name,
            .hook = h,
            .signed_by_sender = !signature || strcmp(signature, "none") != 0,
        };
    }
    return 0;
}

static int read_limits(gw_config *c, const checker *k, const json_t *l)
{
    static const char *const keys[] = {"body_bytes", "connections", "timeout_s", "threads", NULL};
    if (!json_is_object(l))
        return bad(k, "limits", "must be an object");
    if (only_keys(k, l, "limits", keys, "body_bytes, connections, timeout_s, threads") < 0)
        return -1;
    long long body = GW_DEFAULT_BODY_BYTES, conns = GW_DEFAULT_CONNECTIONS,
              timeout = GW_DEFAULT_TIMEOUT_S, threads = GW_DEFAULT_THREADS;
    if (opt_int(k, l, "body_bytes", "limits.body_bytes", 1, 256LL << 20, &body) < 0 ||
        opt_int(k, l, "connections", "limits.connections", 1, 1000000, &conns) < 0 ||
        opt_int(k, l, "timeout_s", "limits.timeout_s", 1, 86400, &timeout) < 0 ||
        opt_int(k, l, "threads", "limits.threads", 1, 64, &threads) < 0)
        return -1;
    c->body_bytes = (size_t)body;
    c->connections = (unsigned)conns;
    c->timeout_s = (unsigned)timeout;
    c->threads = (unsigned)threads;
    return 0;
}

static int read_root(gw_config *c, const checker *k)
{
    static const char *const keys[] = {"listen", "daemon",    "tokens", "webhooks",
                                       "hooks",  "state_dir", "limits", "metrics_token_required",
                                       NULL};
    const json_t *root = c->root;
    if (!json_is_object(root))
        return bad(k, "(top level)", "must be a JSON object");
    if (only_keys(k, root, "", keys,
                  "listen, daemon, tokens, webhooks, hooks, state_dir, limits, "
                  "metrics_token_required") < 0)
        return -1;
    c->body_bytes = GW_DEFAULT_BODY_BYTES;
    c->connections = GW_DEFAULT_CONNECTIONS;
    c->timeout_s = GW_DEFAULT_TIMEOUT_S;
    c->threads = GW_DEFAULT_THREADS;
    c->listen = GW_DEFAULT_LISTEN;
    const char *listen = NULL;
    if (opt_string(k, root, "listen", "listen", &listen) < 0 ||
        (listen && check_listen(k, listen) < 0))
        return -1;
    if (listen)
        c->listen = listen;
    const json_t *v;
    if (!(v = json_object_get(root, "tokens")))
        return bad(k, "tokens", "is missing: without a token nobody may use the gateway");
    if (read_tokens(c, k, v) < 0)
        return -1;
    if ((v = json_object_get(root, "daemon")) && read_daemon(c, k, v) < 0)
        return -1;
    if ((v = json_object_get(root, "webhooks")) && read_webhooks(c, k, v) < 0)
        return -1;
    if ((v = json_object_get(root, "hooks")) && read_hooks(c, k, v) < 0)
        return -1;
    if ((v = json_object_get(root, "limits")) && read_limits(c, k, v) < 0)
        return -1;
    if ((v = json_object_get(root, "metrics_token_required"))) {
        if (!json_is_boolean(v))
            return bad(k, "metrics_token_required", "must be true or false");
        c->metrics_token_required = json_is_true(v);
    }
    return opt_string(k, root, "state_dir", "state_dir", &c->state_dir);
}

int gw_config_parse(gw_config *c, const char *text, size_t len, const char *path, char *err,
                    size_t cap)
{
    memset(c, 0, sizeof *c);
    c->path = path;
    checker k = {.path = path, .err = err, .cap = cap};
    if (sodium_init() < 0) {
        snprintf(err, cap, "%s: cannot be read: libsodium does not start", path);
        return -1;
    }
    json_error_t jerr;
    c->root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!c->root) {
        snprintf(err, cap, "%s:%d:%d: not JSON: %s", path, jerr.line, jerr.column, jerr.text);
        return -1;
    }
    if (read_root(c, &k) < 0) {
        gw_config_free(c);
        return -1;
    }
    return 0;
}

int gw_config_load(gw_config *c, const char *path, char *err, size_t cap)
{
    memset(c, 0, sizeof *c);
    FILE *in = fopen(path, "rb");
    if (!in) {
        snprintf(err, cap, "%s: cannot be opened: %s", path, strerror(errno));
        return -1;
    }
    size_t size = 0, got;
    char *text = NULL;
    do {
        char *grown = realloc(text, size + 65536);
        if (!grown) {
            free(text);
            fclose(in);
            snprintf(err, cap, "%s: cannot be read: out of memory", path);
            return -1;
        }
        text = grown;
        got = fread(text + size, 1, 65536, in);
        size += got;
    } while (got > 0 && size <= CONFIG_MAX_BYTES);
    int failed = ferror(in), why = errno;
    fclose(in);
    int rc = -1;
    if (failed)
        snprintf(err, cap, "%s: cannot be read: %s", path, strerror(why));
    else if (size > CONFIG_MAX_BYTES)
        snprintf(err, cap, "%s: is over %u MiB, too large for a config file", path,
                 CONFIG_MAX_BYTES >> 20);
    else
        rc = gw_config_parse(c, text, size, path, err, cap);
    free(text);
    return rc;
}

void gw_config_free(gw_config *c)
{
    free(c->tokens);
    free(c->webhooks);
    for (size_t i = 0; i < c->nhooks; i++)
        gw_hook_free(c->compiled_hooks[i].hook);
    free(c->compiled_hooks);
    json_decref(c->root);
    memset(c, 0, sizeof *c);
}

const gw_token *gw_token_find(const gw_config *c, const char *token, size_t len)
{
    unsigned char hash[GW_TOKEN_HASH_BYTES];
    hash_token(token, len, hash);
    const gw_token *found = NULL;
    /* every entry is compared, so that the time taken says nothing of which matched */
    for (size_t i = 0; i < c->ntokens; i++)
        if (sodium_memcmp(hash, c->tokens[i].hash, GW_TOKEN_HASH_BYTES) == 0)
            found = &c->tokens[i];
    return found;
}

const gw_config_hook *gw_config_hook_find(const gw_config *c, const char *name, size_t len)
{
    for (size_t i = 0; i < c->nhooks; i++)
        if (strlen(c->compiled_hooks[i].name) == len &&
            memcmp(c->compiled_hooks[i].name, name, len) == 0)
            return &c->compiled_hooks[i];
    return NULL;
}

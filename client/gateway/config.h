/* config.h: the gateway's JSON config file, checked as a whole and read into gw_config, and the
 * tokens it lists, looked up in constant time. */
#ifndef DF_GW_CONFIG_H
#define DF_GW_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "mapping.h"

#define GW_DEFAULT_LISTEN      "127.0.0.1:7780"
#define GW_DEFAULT_BODY_BYTES  (1024 * 1024)
#define GW_DEFAULT_CONNECTIONS 1024
#define GW_DEFAULT_TIMEOUT_S   30
#define GW_DEFAULT_THREADS     4 /* each may wait for the daemon's fsync */
#define GW_TOKEN_HASH_BYTES    32
#define GW_ERROR_MAX           512

/* The daemon's roles: what a token may do. */
typedef enum gw_role {
    GW_ROLE_PRODUCER = 1, /* POST events and hooks */
    GW_ROLE_READER = 2,   /* GET reads */
    GW_ROLE_ADMIN = 3,    /* both */
} gw_role;

typedef struct gw_token {
    unsigned char hash[GW_TOKEN_HASH_BYTES]; /* of the token; the token itself is not kept */
    gw_role role;
    const char *name; /* into the config's JSON */
} gw_token;

/* One entry of `webhooks`, pointing into the config's JSON. */
typedef struct gw_config_webhook {
    const char *url, *topics, *secret;
} gw_config_webhook;

/* One entry of `hooks`, compiled when the config is read. */
typedef struct gw_config_hook {
    const char *name; /* into the config's JSON */
    gw_hook *hook;
    /* its signature (generic, hubspot-v3, basic) is what proves the sender; with `none` the
     * request needs a producer token instead */
    bool signed_by_sender;
} gw_config_hook;

/* The config; every string points into root, which lives as long as the config. */
typedef struct gw_config {
    json_t *root;
    const char *path;
    const char *listen; /* HOST:PORT */
    /* `daemon`: each NULL when not given */
    const char *api, *ingest, *notify, *server_key, *key_file;
    int timeout_ms, attempts; /* of one daemon request; 0: the library's */
    gw_token *tokens;
    size_t ntokens;
    gw_config_webhook *webhooks;
    size_t nwebhooks;
    const json_t *hooks;            /* `hooks`: name -> mapping object, or NULL */
    gw_config_hook *compiled_hooks; /* each of `hooks`, compiled */
    size_t nhooks;
    const char *state_dir;
    size_t body_bytes;
    unsigned connections;
    unsigned timeout_s;
    unsigned threads;            /* serving HTTP, each with its own client of the daemon */
    bool metrics_token_required; /* GET /metrics needs a reader token */
} gw_config;

/* Reads and checks the file at path. 0, or -1 with why in err (the file, the
 * key and what is wrong with it). */
int gw_config_load(gw_config *c, const char *path, char *err, size_t cap);
/* The same from JSON text; path only names it in messages. */
int gw_config_parse(gw_config *c, const char *text, size_t len, const char *path, char *err,
                    size_t cap);
void gw_config_free(gw_config *c);

/* The hook named name (len bytes, not NUL-terminated); NULL when there is none. */
const gw_config_hook *gw_config_hook_find(const gw_config *c, const char *name, size_t len);

/* Whether "producer", "reader" or "admin" may do what needs role `needed`. */
bool gw_role_allows(gw_role held, gw_role needed);
const char *gw_role_name(gw_role role);

/* The token's entry, compared in constant time over every configured token;
 * NULL when none matches. */
const gw_token *gw_token_find(const gw_config *c, const char *token, size_t len);

#endif

/* mapping.h: a hook of the gateway: another system's webhook payload turned into contract events
 * by a mapping from the config (JSON paths, templates, value maps, cases per item), and the
 * request's signature checked first. Pure: no I/O. client/gateway/README.md says what a mapping
 * may hold. */
#ifndef GW_MAPPING_H
#define GW_MAPPING_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

/* A payload gives at most this many events (the most one append takes). */
#define GW_HOOK_MAX_ITEMS 10000

typedef struct gw_hook gw_hook; /* one compiled hooks.NAME entry */

/* Compiles a hook's config object; on failure returns NULL and writes why, naming the hook and
 * the key ("hooks.NAME.event.stage: ..."). */
gw_hook *gw_hook_compile(const char *name, const json_t *spec, char *err, size_t cap);
void gw_hook_free(gw_hook *h);

/* A header of the request, case-insensitive name; NULL when absent. */
typedef const char *(*gw_header_fn)(void *ctx, const char *name);

typedef struct gw_hook_request {
    const char *method; /* "POST" */
    const char *url;    /* the full URL as the sender signed it, if known, else the path */
    const char *body;
    size_t body_len;
    gw_header_fn header;
    void *header_ctx;
    int64_t now_ms; /* for timestamp windows */
} gw_hook_request;

/* 0, or -1 with why (a signature that does not match, a stale timestamp). */
int gw_hook_verify(const gw_hook *h, const gw_hook_request *r, char *err, size_t cap);

/* The events the payload gives, as a JSON array of event objects in the contract's JSON form
 * (what POST /v1/events accepts; times as ms); NULL with why when the payload does not fit the
 * mapping. An array with no event is a payload whose every item a case skips. */
json_t *gw_hook_map(const gw_hook *h, const char *body, size_t len, char *err, size_t cap);

#endif

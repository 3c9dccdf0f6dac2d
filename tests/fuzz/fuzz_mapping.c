/* fuzz_mapping.c: hostile webhooks through the gateway's hooks: the bytes as a payload of each
 * example mapping of examples/, as a hook's mapping compiled and applied to the example payloads
 * and to itself, and as the headers each signature kind reads. A mapping gives an array of event
 * objects with an id and a type, or a reason; it never crashes or leaks. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mapping.h"
#include "signature.h"

#include "fuzz.h"

#define NOW_MS 1717236060000LL

static const struct {
    const char *config, *name, *payload;
} examples[] = {
    {"hubspot-deals.json", "hubspot", "hubspot-deal-payload.json"},
    {"pipedrive-deals.json", "pipedrive", "pipedrive-deal-payload.json"},
};
#define NEXAMPLES (sizeof examples / sizeof examples[0])

static gw_hook *hooks[NEXAMPLES];
static char *payloads[NEXAMPLES];
static size_t payload_lens[NEXAMPLES];

static char *read_example(const char *file, size_t *len)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", EXAMPLES_DIR, file);
    FILE *f = fopen(path, "rb");
    REQUIRE(f);
    char *text = malloc(1 << 20);
    REQUIRE(text);
    *len = fread(text, 1, 1 << 20, f);
    fclose(f);
    return text;
}

static void load_examples(void)
{
    for (size_t i = 0; i < NEXAMPLES; i++) {
        size_t len;
        char *text = read_example(examples[i].config, &len);
        json_t *config = json_loadb(text, len, 0, NULL);
        free(text);
        char err[256];
        hooks[i] = gw_hook_compile(
            examples[i].name, json_object_get(json_object_get(config, "hooks"), examples[i].name),
            err, sizeof err);
        json_decref(config);
        REQUIRE(hooks[i]);
        payloads[i] = read_example(examples[i].payload, &payload_lens[i]);
    }
}

/* What a mapping gives: events, each an object with a string id and type, or a reason. */
static void check_mapped(json_t *events, const char *err)
{
    if (!events) {
        REQUIRE(err[0] != '\0');
        return;
    }
    REQUIRE(json_is_array(events));
    REQUIRE(json_array_size(events) <= GW_HOOK_MAX_ITEMS);
    size_t i;
    json_t *event;
    json_array_foreach(events, i, event)
    {
        REQUIRE(json_is_object(event));
        REQUIRE(json_string_length(json_object_get(event, "id")) > 0);
        REQUIRE(json_is_string(json_object_get(event, "type")));
        REQUIRE(!json_object_get(event, "seq") && !json_object_get(event, "recv"));
    }
    /* what goes on to the daemon must print as JSON */
    char *text = json_dumps(events, JSON_COMPACT);
    REQUIRE(text);
    free(text);
    json_decref(events);
}

static void map(const gw_hook *h, const char *body, size_t len)
{
    char err[256] = "";
    check_mapped(gw_hook_map(h, body, len, err, sizeof err), err);
}

static const char *header_text;

static const char *any_header(void *ctx, const char *name)
{
    (void)ctx;
    (void)name;
    return header_text;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!hooks[0])
        load_examples();
    const char *body = (const char *)data;
    for (size_t i = 0; i < NEXAMPLES; i++)
        map(hooks[i], body, size);

    /* the bytes as headers: each signature kind reads them */
    char *text = malloc(size + 1);
    REQUIRE(text);
    memcpy(text, data, size);
    text[size] = '\0';
    char err[256];
    gw_signature_check_generic("k", body, size, text, err, sizeof err);
    gw_signature_check_hubspot_v3("k", "POST", text, body, size, text, text, NOW_MS, err,
                                  sizeof err);
    gw_signature_check_basic("u", "p", text, err, sizeof err);
    header_text = text;
    gw_hook_request r = {"POST", text, body, size, any_header, NULL, NOW_MS};
    for (size_t i = 0; i < NEXAMPLES; i++)
        gw_hook_verify(hooks[i], &r, err, sizeof err);

    /* the bytes as a hook's mapping */
    json_t *spec = json_loadb(body, size, 0, NULL);
    if (spec) {
        err[0] = '\0';
        gw_hook *h = gw_hook_compile("fuzz", spec, err, sizeof err);
        if (h) {
            for (size_t i = 0; i < NEXAMPLES; i++)
                map(h, payloads[i], payload_lens[i]);
            map(h, body, size);
            gw_hook_verify(h, &r, err, sizeof err);
            gw_hook_free(h);
        } else {
            REQUIRE(strncmp(err, "hooks.fuzz", 10) == 0);
        }
        json_decref(spec);
    }
    free(text);
    return 0;
}

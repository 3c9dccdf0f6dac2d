/* test_mapping.c: the gateway's hooks: the example mappings of examples/ applied to their sample
 * payloads give exactly the events they should, signatures are checked (good, bad, stale), and
 * mappings and payloads that do not fit are refused with a reason that names where. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <sodium.h>

#include "check.h"
#include "mapping.h"
#include "signature.h"

#define NOW_MS 1717236060000LL

/* ---- helpers ---- */

static json_t *load_json(const char *file)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", EXAMPLES_DIR, file);
    json_error_t jerr;
    json_t *v = json_load_file(path, 0, &jerr);
    if (!v)
        fprintf(stderr, "%s: %s (line %d)\n", path, jerr.text, jerr.line);
    return v;
}

static char *load_text(const char *file, size_t *len)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", EXAMPLES_DIR, file);
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    char *text = malloc(1 << 20);
    *len = text ? fread(text, 1, 1 << 20, f) : 0;
    fclose(f);
    return text;
}

/* The hook NAME of an example config snippet. */
static gw_hook *example_hook(const char *file, const char *name)
{
    json_t *config = load_json(file);
    char err[256] = "";
    gw_hook *h = gw_hook_compile(name, json_object_get(json_object_get(config, "hooks"), name), err,
                                 sizeof err);
    if (!h)
        fprintf(stderr, "%s: %s\n", file, err);
    json_decref(config);
    return h;
}

static gw_hook *hook_from(const char *name, const char *spec_text, char *err, size_t cap)
{
    json_error_t jerr;
    json_t *spec = json_loads(spec_text, 0, &jerr);
    if (!spec) {
        fprintf(stderr, "bad test spec: %s\n", jerr.text);
        return NULL;
    }
    gw_hook *h = gw_hook_compile(name, spec, err, cap);
    json_decref(spec);
    return h;
}

/* Whether mapping body gives exactly the events of expected (JSON text). */
static bool maps_to(const gw_hook *h, const char *body, const char *expected)
{
    char err[256] = "";
    json_t *got = gw_hook_map(h, body, strlen(body), err, sizeof err);
    json_t *want = json_loads(expected, 0, NULL);
    bool same = got && want && json_equal(got, want);
    if (!same) {
        char *text = got ? json_dumps(got, JSON_COMPACT) : NULL;
        fprintf(stderr, "got %s (%s)\nwanted %s\n", text ? text : "NULL", err, expected);
        free(text);
    }
    json_decref(got);
    json_decref(want);
    return same;
}

/* Whether mapping body fails with a reason that holds reason. */
static bool refused(const gw_hook *h, const char *body, const char *reason)
{
    char err[256] = "";
    json_t *got = gw_hook_map(h, body, strlen(body), err, sizeof err);
    bool ok = !got && strstr(err, reason);
    if (!ok)
        fprintf(stderr, "wanted a refusal with \"%s\", got \"%s\"%s\n", reason, err,
                got ? " and events" : "");
    json_decref(got);
    return ok;
}

static bool compile_refused(const char *spec, const char *reason)
{
    char err[256] = "";
    gw_hook *h = hook_from("h", spec, err, sizeof err);
    bool ok = !h && strcmp(err, reason) == 0;
    if (!ok)
        fprintf(stderr, "spec %s\n  wanted \"%s\"\n  got    \"%s\"\n", spec, reason, err);
    gw_hook_free(h);
    return ok;
}

typedef struct headers {
    const char *names[4];
    const char *values[4];
} headers;

static const char *header_of(void *ctx, const char *name)
{
    const headers *hs = ctx;
    for (int i = 0; i < 4 && hs->names[i]; i++)
        if (strcasecmp(hs->names[i], name) == 0)
            return hs->values[i];
    return NULL;
}

static int verify(const gw_hook *h, const char *url, const char *body, headers *hs, int64_t now,
                  char *err, size_t cap)
{
    gw_hook_request r = {"POST", url, body, strlen(body), header_of, hs, now};
    err[0] = '\0';
    return gw_hook_verify(h, &r, err, cap);
}

/* base64 of HMAC-SHA256(secret, text), as HubSpot signs. */
static void hubspot_sign(const char *secret, const char *text, char out[64])
{
    unsigned char mac[crypto_auth_hmacsha256_BYTES];
    crypto_auth_hmacsha256_state st;
    crypto_auth_hmacsha256_init(&st, (const unsigned char *)secret, strlen(secret));
    crypto_auth_hmacsha256_update(&st, (const unsigned char *)text, strlen(text));
    crypto_auth_hmacsha256_final(&st, mac);
    sodium_bin2base64(out, 64, mac, sizeof mac, sodium_base64_VARIANT_ORIGINAL);
}

/* ---- the examples ---- */

static void hubspot_example(void)
{
    gw_hook *h = example_hook("hubspot-deals.json", "hubspot");
    CHECK(h != NULL);
    size_t len = 0;
    char *body = load_text("hubspot-deal-payload.json", &len);
    CHECK(body != NULL);
    if (!h || !body)
        goto out;
    body[len] = '\0';
    /* the deal.creation notification falls to the last case, which skips it */
    CHECK(maps_to(h, body,
                  "[{\"id\": \"hubspot-18045012-dealstage-1717236000000\", \"type\": \"stage\","
                  "  \"deal\": \"hubspot-18045012\", \"at\": 1717236000000, \"stage\": "
                  "\"qualified\"},"
                  " {\"id\": \"hubspot-18045012-amount-1717236000250\", \"type\": \"update\","
                  "  \"deal\": \"hubspot-18045012\", \"at\": 1717236000250, \"amount\": 12500.5},"
                  " {\"id\": \"hubspot-18045977-dealstage-1717239600000\", \"type\": \"stage\","
                  "  \"deal\": \"hubspot-18045977\", \"at\": 1717239600000, \"stage\": \"won\"},"
                  " {\"id\": \"hubspot-18045977-closedate-1717239600100\", \"type\": \"update\","
                  "  \"deal\": \"hubspot-18045977\", \"at\": 1717239600100,"
                  "  \"close_date\": 1719792000000}]"));
out:
    free(body);
    gw_hook_free(h);
}

/* The example payload with changes: data and previous replaced, meta's action set. */
static char *pipedrive_variant(const char *action, const char *data_changes, const char *previous)
{
    json_t *p = load_json("pipedrive-deal-payload.json");
    if (!p)
        return NULL;
    json_object_set_new(json_object_get(p, "meta"), "action", json_string(action));
    json_t *changes = json_loads(data_changes, 0, NULL);
    json_object_update(json_object_get(p, "data"), changes);
    json_decref(changes);
    json_object_set_new(p, "previous", json_loads(previous, JSON_DECODE_ANY, NULL));
    char *text = json_dumps(p, JSON_COMPACT);
    json_decref(p);
    return text;
}

static void pipedrive_example(void)
{
    gw_hook *h = example_hook("pipedrive-deals.json", "pipedrive");
    CHECK(h != NULL);
    size_t len = 0;
    char *body = load_text("pipedrive-deal-payload.json", &len);
    CHECK(body != NULL);
    if (!h || !body)
        goto out;
    body[len] = '\0';
    /* a move from stage 3 to 4 */
    CHECK(maps_to(h, body,
                  "[{\"id\": \"pipedrive-0f5d2a6c-8b41-4c3e-a1f9-7e2d4b6c8a10\", \"type\": "
                  "\"stage\", \"deal\": \"pipedrive-746\", \"at\": 1727447128412,"
                  "  \"stage\": \"proposal\", \"amount\": 24000, \"owner\": "
                  "\"pipedrive-user-18487521\"}]"));
out:
    free(body);
    gw_hook_free(h);
}

static void pipedrive_variants(void)
{
    gw_hook *h = example_hook("pipedrive-deals.json", "pipedrive");
    CHECK(h != NULL);
    if (!h)
        return;
    const char *id = "\"id\": \"pipedrive-0f5d2a6c-8b41-4c3e-a1f9-7e2d4b6c8a10\", "
                     "\"deal\": \"pipedrive-746\", \"at\": 1727447128412";
    char expected[1024];
    char *won = pipedrive_variant("change", "{\"status\": \"won\"}", "{\"status\": \"open\"}");
    snprintf(expected, sizeof expected,
             "[{%s, \"type\": \"stage\", \"stage\": \"won\", \"amount\": 24000}]", id);
    CHECK(won && maps_to(h, won, expected));
    char *lost = pipedrive_variant("change", "{\"status\": \"lost\", \"lost_reason\": \"Price\"}",
                                   "{\"status\": \"open\"}");
    snprintf(expected, sizeof expected,
             "[{%s, \"type\": \"stage\", \"stage\": \"lost\", \"reason\": \"Price\"}]", id);
    CHECK(lost && maps_to(h, lost, expected));
    /* a new deal: previous is null; a stage id no map knows passes as it is */
    char *created = pipedrive_variant("create", "{\"stage_id\": 1}", "null");
    snprintf(expected, sizeof expected,
             "[{%s, \"type\": \"stage\", \"stage\": \"lead\", \"amount\": 24000, "
             "\"owner\": \"pipedrive-user-18487521\", \"name\": \"Acme Corp rollout\", "
             "\"close_date\": 1730332800000}]",
             id);
    CHECK(created && maps_to(h, created, expected));
    char *renamed =
        pipedrive_variant("change", "{\"value\": 25000.5, \"expected_close_date\": null}",
                          "{\"title\": \"Acme\", \"value\": 24000}");
    snprintf(expected, sizeof expected,
             "[{%s, \"type\": \"update\", \"amount\": 25000.5, "
             "\"owner\": \"pipedrive-user-18487521\", \"name\": \"Acme Corp rollout\"}]",
             id);
    CHECK(renamed && maps_to(h, renamed, expected));
    char *unknown_stage = pipedrive_variant("change", "{\"stage_id\": 42}", "{\"stage_id\": 4}");
    snprintf(expected, sizeof expected,
             "[{%s, \"type\": \"stage\", \"stage\": \"42\", \"amount\": 24000, "
             "\"owner\": \"pipedrive-user-18487521\"}]",
             id);
    CHECK(unknown_stage && maps_to(h, unknown_stage, expected));
    char *deleted = pipedrive_variant("delete", "{}", "null");
    CHECK(deleted && maps_to(h, deleted, "[]"));
    free(won);
    free(lost);
    free(created);
    free(renamed);
    free(unknown_stage);
    free(deleted);
    gw_hook_free(h);
}

/* ---- signatures ---- */

static void hubspot_signature(void)
{
    gw_hook *h = example_hook("hubspot-deals.json", "hubspot");
    CHECK(h != NULL);
    if (!h)
        return;
    const char *secret = "replace-with-the-client-secret-of-the-hubspot-app";
    const char *url = "https://gateway.example.com/v1/hooks/hubspot";
    const char *body = "[{\"objectId\":1}]";
    char ts[32], text[512], sig[64], err[256];
    snprintf(ts, sizeof ts, "%lld", NOW_MS - 1000);
    snprintf(text, sizeof text, "POST%s%s%s", url, body, ts);
    hubspot_sign(secret, text, sig);
    headers hs = {{"x-hubspot-signature-v3", "X-HubSpot-Request-Timestamp"}, {sig, ts}};
    /* the hook's url is what HubSpot signed, whatever path the request arrived at */
    CHECK_INT(verify(h, "/v1/hooks/hubspot", body, &hs, NOW_MS, err, sizeof err), 0);
    CHECK_INT(verify(h, "/v1/hooks/hubspot", "[{\"objectId\":2}]", &hs, NOW_MS, err, sizeof err),
              -1);
    CHECK_STR(err, "X-HubSpot-Signature-v3 does not match the request");
    /* stale, and too far ahead */
    CHECK_INT(verify(h, url, body, &hs, NOW_MS - 1000 + 5 * 60000, err, sizeof err), 0);
    CHECK_INT(verify(h, url, body, &hs, NOW_MS - 1000 - 5 * 60000, err, sizeof err), 0);
    CHECK_INT(verify(h, url, body, &hs, NOW_MS - 1000 + 5 * 60000 + 1, err, sizeof err), -1);
    CHECK_STR(err, "X-HubSpot-Request-Timestamp is over 5 minutes from now");
    CHECK_INT(verify(h, url, body, &hs, NOW_MS - 6 * 60000, err, sizeof err), -1);
    CHECK_STR(err, "X-HubSpot-Request-Timestamp is over 5 minutes from now");
    hs.values[1] = "17172360x0000";
    CHECK_INT(verify(h, url, body, &hs, NOW_MS, err, sizeof err), -1);
    CHECK_STR(err, "X-HubSpot-Request-Timestamp is not a time in ms");
    hs.values[1] = ts;
    hs.values[0] = "bm90IGEgbWFj";
    CHECK_INT(verify(h, url, body, &hs, NOW_MS, err, sizeof err), -1);
    CHECK_STR(err, "X-HubSpot-Signature-v3 is not the base64 of 32 bytes");
    headers none = {{NULL}, {NULL}};
    CHECK_INT(verify(h, url, body, &none, NOW_MS, err, sizeof err), -1);
    CHECK_STR(err, "no X-HubSpot-Signature-v3 header");
    gw_hook_free(h);

    /* without a url in the hook, the request's; the characters HubSpot decodes are decoded */
    h = hook_from("hs",
                  "{\"signature\": \"hubspot-v3\", \"secret\": \"s3cret\", "
                  "\"event\": {\"id\": \"$.id\", \"type\": \"update\", \"deal\": \"$.d\"}}",
                  err, sizeof err);
    CHECK(h != NULL);
    snprintf(text, sizeof text, "POSThttps://h.example/in?to=a:b@c,d%%20e%s%s", body, ts);
    hubspot_sign("s3cret", text, sig);
    headers signed_query = {{"X-HubSpot-Signature-v3", "X-HubSpot-Request-Timestamp"}, {sig, ts}};
    CHECK_INT(verify(h, "https://h.example/in?to=a%3Ab%40c%2cd%20e", body, &signed_query, NOW_MS,
                     err, sizeof err),
              0);
    CHECK_INT(verify(h, "https://h.example/in?to=a%3Ab%40c%2cd+e", body, &signed_query, NOW_MS, err,
                     sizeof err),
              -1);
    gw_hook_free(h);
}

static void generic_signature(void)
{
    char err[256];
    gw_hook *h = hook_from("g",
                           "{\"signature\": \"generic\", \"secret\": \"Jefe\", "
                           "\"event\": {\"id\": \"$.id\", \"type\": \"update\", \"deal\": "
                           "\"$.d\"}}",
                           err, sizeof err);
    CHECK(h != NULL);
    if (!h)
        return;
    const char *body = "what do ya want for nothing?";
    /* RFC 4231, test case 2 */
    const char *hex = "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843";
    char sig[GW_SIGNATURE_MAX];
    gw_signature_sign("Jefe", body, strlen(body), sig);
    CHECK_STR(sig, hex);
    headers hs = {{"X-Signature"}, {hex}};
    CHECK_INT(verify(h, "/v1/hooks/g", body, &hs, NOW_MS, err, sizeof err), 0);
    hs.values[0] = "SHA256=5BDCC146BF60754E6A042426089575C75A003F089D2739839DEC58B964EC3843";
    CHECK_INT(verify(h, "/v1/hooks/g", body, &hs, NOW_MS, err, sizeof err), 0);
    CHECK_INT(
        verify(h, "/v1/hooks/g", "what do ya want for nothing!", &hs, NOW_MS, err, sizeof err), -1);
    CHECK_STR(err, "X-Signature does not match the body");
    hs.values[0] = "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec384";
    CHECK_INT(verify(h, "/v1/hooks/g", body, &hs, NOW_MS, err, sizeof err), -1);
    CHECK_STR(err, "X-Signature is not sha256= and 64 hex digits");
    hs.values[0] = "sha1=5bdcc146bf60754e6a042426089575c75a003f08";
    CHECK_INT(verify(h, "/v1/hooks/g", body, &hs, NOW_MS, err, sizeof err), -1);
    CHECK_STR(err, "X-Signature is not sha256=HEX");
    headers none = {{NULL}, {NULL}};
    CHECK_INT(verify(h, "/v1/hooks/g", body, &none, NOW_MS, err, sizeof err), -1);
    CHECK_STR(err, "no X-Signature header");
    gw_hook_free(h);
}

static void basic_signature(void)
{
    gw_hook *h = example_hook("pipedrive-deals.json", "pipedrive");
    CHECK(h != NULL);
    if (!h)
        return;
    const char *pair = "dealflow:replace-with-a-long-random-password";
    char b64[128], header[160], err[256];
    sodium_bin2base64(b64, sizeof b64, (const unsigned char *)pair, strlen(pair),
                      sodium_base64_VARIANT_ORIGINAL);
    snprintf(header, sizeof header, "Basic %s", b64);
    headers hs = {{"authorization"}, {header}};
    CHECK_INT(verify(h, "/v1/hooks/pipedrive", "{}", &hs, NOW_MS, err, sizeof err), 0);
    const char *wrong = "dealflow:replace-with-a-long-random-passwore";
    sodium_bin2base64(b64, sizeof b64, (const unsigned char *)wrong, strlen(wrong),
                      sodium_base64_VARIANT_ORIGINAL);
    snprintf(header, sizeof header, "basic %s", b64);
    CHECK_INT(verify(h, "/v1/hooks/pipedrive", "{}", &hs, NOW_MS, err, sizeof err), -1);
    CHECK_STR(err, "Authorization does not give the hook's user and password");
    hs.values[0] = "Bearer s3cret";
    CHECK_INT(verify(h, "/v1/hooks/pipedrive", "{}", &hs, NOW_MS, err, sizeof err), -1);
    CHECK_STR(err, "Authorization is not Basic");
    hs.values[0] = "Basic !!!";
    CHECK_INT(verify(h, "/v1/hooks/pipedrive", "{}", &hs, NOW_MS, err, sizeof err), -1);
    CHECK_STR(err, "Authorization is not Basic and base64");
    headers none = {{NULL}, {NULL}};
    CHECK_INT(verify(h, "/v1/hooks/pipedrive", "{}", &none, NOW_MS, err, sizeof err), -1);
    CHECK_STR(err, "no Authorization header");
    gw_hook_free(h);
}

/* ---- mappings of every kind ---- */

static void value_sources(void)
{
    char err[256] = "";
    gw_hook *h = hook_from(
        "v",
        "{\"signature\": \"none\", \"items\": \"$.results\", \"event\": {"
        "  \"id\": \"crm-{n}-{{x}}-{flag}-{ratio}\","
        "  \"type\": {\"path\": \"$.kind\", \"map\": {\"moved\": \"stage\"}, \"default\": "
        "\"update\"},"
        "  \"deal\": \"$.deal[1].id\","
        "  \"stage\": {\"path\": \"$.stage\", \"map\": {\"closedwon\": \"won\", \"gone\": null}},"
        "  \"owner\": \"$.owner\","
        "  \"source\": {\"value\": \"$not-a-path\"},"
        "  \"priority\": 3,"
        "  \"at\": \"$.when\","
        "  \"note\": \"by {who.name}\""
        "}}",
        err, sizeof err);
    CHECK(h != NULL);
    if (!h) {
        fprintf(stderr, "%s\n", err);
        return;
    }
    CHECK(maps_to(h,
                  "{\"results\": ["
                  " {\"n\": 1, \"flag\": true, \"ratio\": 0.5, \"kind\": \"moved\","
                  "  \"deal\": [{}, {\"id\": 77}], \"stage\": \"closedwon\", \"owner\": \"\","
                  "  \"when\": \"2024-06-01T10:00:00+02:00\"},"
                  " {\"n\": 2, \"flag\": false, \"ratio\": 2, \"kind\": \"other\","
                  "  \"deal\": [{}, {\"id\": \"d2\"}], \"stage\": \"gone\", \"when\": 5,"
                  "  \"who\": {\"name\": \"Ann\"}}]}",
                  "[{\"id\": \"crm-1-{x}-true-0.5\", \"type\": \"stage\", \"deal\": \"77\","
                  "  \"stage\": \"won\", \"source\": \"$not-a-path\", \"priority\": 3,"
                  "  \"at\": 1717228800000},"
                  " {\"id\": \"crm-2-{x}-false-2\", \"type\": \"update\", \"deal\": \"d2\","
                  "  \"source\": \"$not-a-path\", \"priority\": 3, \"at\": 5,"
                  "  \"note\": \"by Ann\"}]"));
    /* "" is nothing, in a template too */
    CHECK(refused(h, "{\"results\": [{\"n\": \"\", \"kind\": \"x\", \"deal\": [0, {\"id\": 1}]}]}",
                  "items[0]: no `id`: `crm-{n}-{{x}}-{flag}-{ratio}` gives nothing"));
    /* an empty list of items is no events */
    CHECK(maps_to(h, "{\"results\": []}", "[]"));
    gw_hook_free(h);
}

static void cases_and_conditions(void)
{
    char err[256] = "";
    gw_hook *h = hook_from(
        "c",
        "{\"signature\": \"none\", \"items\": \"$\", \"cases\": ["
        " {\"when\": {\"$.k\": 1, \"$.gone\": null}, \"event\": "
        "   {\"id\": \"a{i}\", \"type\": \"activity\", \"deal\": \"$.d\", \"kind\": \"call\"}},"
        " {\"when\": {\"$.k\": [\"2\", 3]}, \"event\": "
        "   {\"id\": \"b{i}\", \"type\": \"update\", \"deal\": \"$.d\"}},"
        " {\"when\": {\"$.x\": {\"exists\": false}}, \"skip\": true},"
        " {\"event\": {\"id\": \"c{i}\", \"type\": \"update\", \"deal\": \"$.d\", \"amount\": "
        "\"$.x\"}}]}",
        err, sizeof err);
    CHECK(h != NULL);
    if (!h) {
        fprintf(stderr, "%s\n", err);
        return;
    }
    CHECK(maps_to(h,
                  "[{\"i\": 1, \"k\": \"1\", \"d\": \"D\"},"
                  " {\"i\": 2, \"k\": 1, \"gone\": 0, \"d\": \"D\"},"
                  " {\"i\": 3, \"k\": 3.0, \"d\": \"D\"},"
                  " {\"i\": 4, \"k\": 4, \"d\": \"D\", \"x\": \"12\"},"
                  " {\"i\": 5, \"d\": \"D\", \"x\": null},"
                  " {\"i\": 7, \"d\": \"D\", \"x\": \"\"},"
                  " {\"i\": 6, \"d\": \"D\", \"x\": \"-7.25\"}]",
                  "[{\"id\": \"a1\", \"type\": \"activity\", \"deal\": \"D\", \"kind\": \"call\"},"
                  " {\"id\": \"b3\", \"type\": \"update\", \"deal\": \"D\"},"
                  " {\"id\": \"c4\", \"type\": \"update\", \"deal\": \"D\", \"amount\": 12},"
                  " {\"id\": \"c6\", \"type\": \"update\", \"deal\": \"D\", \"amount\": -7.25}]"));
    gw_hook_free(h);

    /* no case fits */
    h = hook_from("c",
                  "{\"signature\": \"none\", \"cases\": [{\"when\": {\"$.k\": 1}, \"event\": "
                  "{\"id\": \"$.i\", \"type\": \"update\", \"deal\": \"$.d\"}}]}",
                  err, sizeof err);
    CHECK(h != NULL);
    if (h)
        CHECK(refused(h, "{\"k\": 2}", "the payload: no case of the hook fits it"));
    gw_hook_free(h);
}

static void payloads_that_do_not_fit(void)
{
    gw_hook *hub = example_hook("hubspot-deals.json", "hubspot");
    gw_hook *pipe = example_hook("pipedrive-deals.json", "pipedrive");
    CHECK(hub && pipe);
    if (!hub || !pipe)
        goto out;
    CHECK(refused(hub, "[{\"objectId\": 1,", "the payload: not JSON"));
    CHECK(refused(hub, "", "the payload: not JSON"));
    CHECK(refused(hub, "{\"objectId\": 1}", "the payload: the items are not an array"));
    CHECK(refused(hub, "[{\"a\": 1, \"a\": 2}]", "not JSON"));
    CHECK(refused(hub,
                  "[{\"subscriptionType\": \"deal.propertyChange\", \"propertyName\": "
                  "\"dealstage\", \"propertyValue\": \"closedwon\", \"occurredAt\": 1}]",
                  "items[0]: no `id`: `hubspot-{objectId}-{propertyName}-{occurredAt}` gives "
                  "nothing"));
    CHECK(refused(hub,
                  "[{\"subscriptionType\": \"deal.creation\"}, {\"subscriptionType\": "
                  "\"deal.propertyChange\", \"propertyName\": \"amount\", \"propertyValue\": "
                  "\"lots\", \"objectId\": 5, \"occurredAt\": 1}]",
                  "items[1]: `amount` from `$.propertyValue` is not a number"));
    CHECK(refused(hub,
                  "[{\"subscriptionType\": \"deal.propertyChange\", \"propertyName\": \"amount\","
                  " \"propertyValue\": \"0x1A\", \"objectId\": 5, \"occurredAt\": 1}]",
                  "items[0]: `amount` from `$.propertyValue` is not a number"));
    CHECK(refused(hub,
                  "[{\"subscriptionType\": \"deal.propertyChange\", \"propertyName\": "
                  "\"closedate\", \"propertyValue\": \"tomorrow\", \"objectId\": 5, "
                  "\"occurredAt\": 1}]",
                  "items[0]: `close_date` from `$.propertyValue` is not a time in ms or ISO 8601"));
    CHECK(refused(hub,
                  "[{\"subscriptionType\": \"deal.propertyChange\", \"propertyName\": "
                  "\"dealstage\", \"propertyValue\": \"closedwon\", \"objectId\": {\"a\": 1}, "
                  "\"occurredAt\": 1}]",
                  "items[0]: `id` from `hubspot-{objectId}-{propertyName}-{occurredAt}`: a part "
                  "is an object or an array"));
    CHECK(refused(hub,
                  "[{\"subscriptionType\": \"deal.propertyChange\", \"propertyName\": "
                  "\"dealname\", \"propertyValue\": [1], \"objectId\": 5, \"occurredAt\": 1}]",
                  "items[0]: `name` from `$.propertyValue` is an object or an array, not text"));
    char *bad_time = pipedrive_variant("change", "{}", "{\"stage_id\": 3}");
    json_t *p = json_loads(bad_time, 0, NULL);
    json_object_set_new(json_object_get(p, "meta"), "timestamp", json_string("now"));
    free(bad_time);
    bad_time = json_dumps(p, JSON_COMPACT);
    json_decref(p);
    CHECK(refused(pipe, bad_time,
                  "the payload: `at` from `$.meta.timestamp` is not a time in ms or ISO 8601"));
    free(bad_time);
    char *no_stage = pipedrive_variant("change", "{\"stage_id\": null}", "{\"stage_id\": 3}");
    CHECK(no_stage && maps_to(pipe, no_stage,
                              "[{\"id\": \"pipedrive-0f5d2a6c-8b41-4c3e-a1f9-7e2d4b6c8a10\", "
                              "\"type\": \"update\", \"deal\": \"pipedrive-746\", \"at\": "
                              "1727447128412, \"amount\": 24000, \"owner\": "
                              "\"pipedrive-user-18487521\", \"name\": \"Acme Corp rollout\", "
                              "\"close_date\": 1730332800000}]"));
    free(no_stage);
    /* what is no deal at all falls to the example's last case, which skips it */
    CHECK(maps_to(pipe, "[1, 2]", "[]"));
out:
    gw_hook_free(hub);
    gw_hook_free(pipe);
}

static void too_many_items(void)
{
    char err[256] = "";
    gw_hook *h = hook_from("many",
                           "{\"signature\": \"none\", \"items\": \"$\", \"event\": {\"id\": "
                           "\"$.i\", \"type\": \"update\", \"deal\": \"d\"}}",
                           err, sizeof err);
    CHECK(h != NULL);
    size_t n = GW_HOOK_MAX_ITEMS + 1;
    char *body = malloc(n * 2 + 2);
    if (h && body) {
        body[0] = '[';
        for (size_t i = 0; i < n; i++) {
            body[1 + 2 * i] = '1';
            body[2 + 2 * i] = i + 1 < n ? ',' : ']';
        }
        body[1 + 2 * n] = '\0';
        CHECK(refused(h, body, "the payload: 10001 items, over the 10000 one request takes"));
    }
    free(body);
    gw_hook_free(h);
}

static void mappings_that_do_not_compile(void)
{
    const char *event = "\"event\": {\"id\": \"$.i\", \"type\": \"update\", \"deal\": \"$.d\"}";
    char spec[512];
    CHECK(compile_refused("[]", "hooks.h: must be an object with `signature` and `event` or "
                                "`cases`"));
    snprintf(spec, sizeof spec, "{%s}", event);
    CHECK(compile_refused(spec, "hooks.h.signature: must be one of generic, hubspot-v3, basic "
                                "or none"));
    snprintf(spec, sizeof spec, "{\"signature\": \"generic\", %s}", event);
    CHECK(compile_refused(spec, "hooks.h.secret: is needed by signature generic"));
    snprintf(spec, sizeof spec, "{\"signature\": \"none\", \"secret\": \"k\", %s}", event);
    CHECK(compile_refused(spec, "hooks.h.secret: is unused by signature none"));
    snprintf(spec, sizeof spec, "{\"signature\": \"basic\", \"user\": \"u\", %s}", event);
    CHECK(compile_refused(spec,
                          "hooks.h.password: is needed by signature basic (user and password)"));
    snprintf(spec, sizeof spec,
             "{\"signature\": \"generic\", \"secret\": \"k\", \"url\": \"u\", %s}", event);
    CHECK(compile_refused(spec, "hooks.h.url: is used only by signature hubspot-v3"));
    snprintf(spec, sizeof spec, "{\"signature\": \"none\", \"itmes\": \"$\", %s}", event);
    CHECK(compile_refused(spec, "hooks.h: unknown key `itmes` (signature, secret, user, password, "
                                "url, items, event, cases)"));
    snprintf(spec, sizeof spec, "{\"signature\": \"none\", \"items\": \"results\", %s}", event);
    CHECK(compile_refused(spec, "hooks.h.items: must be a path such as $ or $.results"));
    CHECK(compile_refused("{\"signature\": \"none\"}",
                          "hooks.h: needs `event` or `cases`, not both"));
    CHECK(compile_refused("{\"signature\": \"none\", \"event\": {\"type\": \"update\", \"deal\": "
                          "\"d\"}}",
                          "hooks.h.event: no `id`: every event needs one (e.g. "
                          "\"crm-{eventId}\")"));
    CHECK(compile_refused("{\"signature\": \"none\", \"event\": {\"id\": \"$.a..b\", \"type\": "
                          "\"update\", \"deal\": \"d\"}}",
                          "hooks.h.event.id: `$.a..b` is not a path such as $.a.b[0].c"));
    CHECK(compile_refused("{\"signature\": \"none\", \"event\": {\"id\": \"x-{a\", \"type\": "
                          "\"update\", \"deal\": \"d\"}}",
                          "hooks.h.event.id: `{` without `}` in `x-{a`"));
    CHECK(compile_refused("{\"signature\": \"none\", \"event\": {\"id\": \"i\", \"type\": "
                          "\"sale\", \"deal\": \"d\"}}",
                          "hooks.h.event.type: must be stage, activity, update or pipeline"));
    CHECK(compile_refused("{\"signature\": \"none\", \"event\": {\"id\": \"i\", \"type\": "
                          "\"stage\", \"deal\": \"d\"}}",
                          "hooks.h.event: no `stage`: a stage event needs one"));
    CHECK(compile_refused("{\"signature\": \"none\", \"event\": {\"id\": \"i\", \"type\": "
                          "\"update\", \"deal\": \"d\", \"seq\": 1}}",
                          "hooks.h.event.seq: `seq` is not a key an event may carry"));
    CHECK(compile_refused("{\"signature\": \"none\", \"event\": {\"id\": \"i\", \"type\": "
                          "\"update\", \"deal\": {\"path\": \"$.d\", \"mapp\": {}}}}",
                          "hooks.h.event.deal: unknown key `mapp` (path, template, value, map, "
                          "default)"));
    CHECK(compile_refused("{\"signature\": \"none\", \"event\": {\"id\": \"i\", \"type\": "
                          "\"update\", \"deal\": {\"path\": \"$.d\", \"map\": []}}}",
                          "hooks.h.event.deal: `map` must be an object of text to value"));
    CHECK(compile_refused("{\"signature\": \"none\", \"cases\": [{\"skip\": true}, {\"when\": "
                          "{\"k\": 1}, \"skip\": true}]}",
                          "hooks.h.cases[1].when.k: `k` is not a path such as $.a.b[0].c"));
    CHECK(compile_refused("{\"signature\": \"none\", \"cases\": [{\"when\": {\"$.k\": "
                          "{\"exist\": true}}, \"skip\": true}]}",
                          "hooks.h.cases[0].when.$.k: an object condition is {\"exists\": true or "
                          "false}"));
    CHECK(compile_refused("{\"signature\": \"none\", \"cases\": [{\"skip\": false}]}",
                          "hooks.h.cases[0]: `skip` can only be true"));
    CHECK(compile_refused("{\"signature\": \"none\", \"cases\": []}",
                          "hooks.h.cases: must be a non-empty array"));
}

int main(int argc, char **argv)
{
    if (sodium_init() < 0)
        return 1;
    static const df_test tests[] = {
        {"hubspot_example", hubspot_example},
        {"pipedrive_example", pipedrive_example},
        {"pipedrive_variants", pipedrive_variants},
        {"hubspot_signature", hubspot_signature},
        {"generic_signature", generic_signature},
        {"basic_signature", basic_signature},
        {"value_sources", value_sources},
        {"cases_and_conditions", cases_and_conditions},
        {"payloads_that_do_not_fit", payloads_that_do_not_fit},
        {"too_many_items", too_many_items},
        {"mappings_that_do_not_compile", mappings_that_do_not_compile},
        {NULL, NULL},
    };
    return df_test_main(argc, argv, tests, NULL);
}

/* test_gateway_pure.c: the gateway's pure parts: request bodies into events (the three forms,
 * times, what is refused), the config file's checks and tokens, and the JSON of the webhooks'
 * delivery state. */
#include <stdlib.h>
#include <string.h>

#include <msgpack.h>

#include "check.h"
#include "codec.h"
#include "config.h"
#include "events.h"
#include "webhook_state.h"

/* The events of a body, unpacked into zone; their count, or -1 when refused (why in err). */
static long events_of(const char *body, msgpack_zone *zone, msgpack_object *out, char *err,
                      size_t cap)
{
    df_bytes b = {0};
    size_t n = 0;
    if (gw_events_from_body(body, strlen(body), &b, &n, err, cap) < 0) {
        CHECK(b.data == NULL);
        return -1;
    }
    df_error derr;
    /* the zone's objects point into the bytes: they are kept in the zone */
    char *kept = msgpack_zone_malloc(zone, b.len);
    memcpy(kept, b.data, b.len);
    free(b.data); /* as df_bytes_free does */
    CHECK_INT(df_msgpack_unpack(kept, b.len, zone, out, &derr), 0);
    CHECK(out->type == MSGPACK_OBJECT_ARRAY);
    CHECK_INT(out->via.array.size, n);
    return (long)n;
}

static const msgpack_object *get(const msgpack_object *map, const char *key)
{
    for (uint32_t i = 0; map->type == MSGPACK_OBJECT_MAP && i < map->via.map.size; i++) {
        const msgpack_object *k = &map->via.map.ptr[i].key;
        if (k->type == MSGPACK_OBJECT_STR && k->via.str.size == strlen(key) &&
            memcmp(k->via.str.ptr, key, k->via.str.size) == 0)
            return &map->via.map.ptr[i].val;
    }
    return NULL;
}

static void test_three_forms(void)
{
    msgpack_zone zone;
    msgpack_zone_init(&zone, 4096);
    msgpack_object o;
    char err[256];
    CHECK_INT(events_of("{\"id\":\"a\",\"type\":\"stage\",\"deal\":\"d\",\"stage\":\"lead\"}",
                        &zone, &o, err, sizeof err),
              1);
    CHECK_INT(
        events_of("[{\"id\":\"a\"},{\"id\":\"b\"},{\"id\":\"c\"}]", &zone, &o, err, sizeof err), 3);
    CHECK_INT(events_of("{\"id\":\"a\"}\n{\"id\":\"b\"}\r\n\n{\"id\":\"c\"}\n", &zone, &o, err,
                        sizeof err),
              3);
    const msgpack_object *id = get(&o.via.array.ptr[2], "id");
    CHECK(id && id->type == MSGPACK_OBJECT_STR && id->via.str.size == 1 &&
          id->via.str.ptr[0] == 'c');
    msgpack_zone_destroy(&zone);
}

static void test_types_and_times(void)
{
    msgpack_zone zone;
    msgpack_zone_init(&zone, 4096);
    msgpack_object o;
    char err[256];
    CHECK_INT(events_of("{\"id\":\"a\",\"amount\":12000,\"p\":1.5,\"at\":\"2024-01-31T10:00:00Z\","
                        "\"close_date\":\"2024-02-01\",\"x\":null,\"y\":true}",
                        &zone, &o, err, sizeof err),
              1);
    const msgpack_object *e = &o.via.array.ptr[0];
    CHECK(get(e, "amount")->type == MSGPACK_OBJECT_POSITIVE_INTEGER);
    CHECK_INT(get(e, "amount")->via.u64, 12000);
    CHECK(get(e, "p")->type == MSGPACK_OBJECT_FLOAT64);
    CHECK_INT(get(e, "at")->via.u64, 1706695200000LL);
    CHECK_INT(get(e, "close_date")->via.u64, 1706745600000LL);
    CHECK(get(e, "x")->type == MSGPACK_OBJECT_NIL);
    CHECK(get(e, "y")->type == MSGPACK_OBJECT_BOOLEAN);
    CHECK_INT(events_of("{\"id\":\"a\",\"at\":1700000000000}", &zone, &o, err, sizeof err), 1);
    CHECK_INT(get(&o.via.array.ptr[0], "at")->via.u64, 1700000000000LL);
    msgpack_zone_destroy(&zone);
}

static void test_refused(void)
{
    static const char *const bodies[] = {
        "",
        "   \n",
        "[]",
        "{\"id\":",
        "{\"id\":\"a\"} x",
        "[1]",
        "\"event\"",
        "42",
        "[{\"id\":\"a\"}, [ {\"id\":\"b\"} ]]",
        "{\"id\":\"a\",\"at\":\"yesterday\"}",
        "{\"id\":\"a\",\"id\":\"b\"}",
        "{\"id\":\"a\",\"amount\":99999999999999999999999}",
        NULL,
    };
    for (int i = 0; bodies[i]; i++) {
        msgpack_zone zone;
        msgpack_zone_init(&zone, 1024);
        msgpack_object o;
        char err[256] = "";
        long n = events_of(bodies[i], &zone, &o, err, sizeof err);
        if (n != -1)
            fprintf(stderr, "body %d was taken: %s\n", i, bodies[i]);
        CHECK_INT(n, -1);
        CHECK(err[0] != '\0');
        msgpack_zone_destroy(&zone);
    }
}

static void test_too_many(void)
{
    size_t n = GW_EVENTS_MAX + 1, len = n * 3 + 2;
    char *body = malloc(len + 1);
    size_t o = 0;
    body[o++] = '[';
    for (size_t i = 0; i < n; i++) {
        memcpy(body + o, i ? ",{}" : "{}", i ? 3 : 2);
        o += i ? 3 : 2;
    }
    body[o++] = ']';
    body[o] = '\0';
    df_bytes b = {0};
    size_t count;
    char err[256];
    CHECK_INT(gw_events_from_body(body, o, &b, &count, err, sizeof err), -1);
    CHECK(strstr(err, "more than") != NULL);
    free(body);
}

static void test_from_json(void)
{
    json_t *array = json_loads("[{\"id\":\"a\",\"at\":\"2024-01-31\"},{\"id\":\"b\"}]", 0, NULL);
    df_bytes b = {0};
    size_t n = 0;
    char err[256];
    CHECK_INT(gw_events_from_json(array, &b, &n, err, sizeof err), 0);
    CHECK_INT(n, 2);
    /* the caller's JSON is left as it was */
    CHECK(json_is_string(json_object_get(json_array_get(array, 0), "at")));
    free(b.data); /* as df_bytes_free does */
    json_t *object = json_object();
    CHECK_INT(gw_events_from_json(object, &b, &n, err, sizeof err), -1);
    json_decref(object);
    json_decref(array);
}

/* The config's message for text, or "" when it is taken. */
static const char *config_error(const char *text)
{
    static char err[GW_ERROR_MAX];
    gw_config c;
    err[0] = '\0';
    if (gw_config_parse(&c, text, strlen(text), "gw.json", err, sizeof err) == 0)
        gw_config_free(&c);
    return err;
}

static void test_hooks_compiled(void)
{
    gw_config c;
    char err[GW_ERROR_MAX];
    const char *text =
        "{\"tokens\": [{\"token\": \"x\", \"role\": \"producer\"}], \"hooks\": {"
        "\"signed\": {\"signature\": \"generic\", \"secret\": \"k\", \"event\": "
        "{\"id\": \"$.id\", \"type\": \"stage\", \"deal\": \"$.deal\", \"stage\": \"lead\"}},"
        "\"open\": {\"signature\": \"none\", \"event\": "
        "{\"id\": \"$.id\", \"type\": \"stage\", \"deal\": \"$.deal\", \"stage\": \"lead\"}}}}";
    CHECK_INT(gw_config_parse(&c, text, strlen(text), "gw.json", err, sizeof err), 0);
    CHECK_INT(c.nhooks, 2);
    const gw_config_hook *h = gw_config_hook_find(&c, "signed", 6);
    CHECK(h && h->hook && h->signed_by_sender);
    h = gw_config_hook_find(&c, "openX", 4);
    CHECK(h && h->hook && !h->signed_by_sender);
    CHECK(gw_config_hook_find(&c, "ope", 3) == NULL);
    CHECK(gw_config_hook_find(&c, "unknown", 7) == NULL);
    gw_config_free(&c);
}

static void test_config(void)
{
    gw_config c;
    char err[GW_ERROR_MAX];
    const char *text =
        "{\"tokens\": [{\"token\": \"s3cret\", \"role\": \"producer\", \"name\": \"p\"},"
        "{\"token\": \"r3ad\", \"role\": \"reader\"}],"
        "\"limits\": {\"body_bytes\": 100}, \"listen\": \"0.0.0.0:8080\","
        "\"daemon\": {\"api\": \"tcp://127.0.0.1:1\", \"timeout_ms\": 500}}";
    CHECK_INT(gw_config_parse(&c, text, strlen(text), "gw.json", err, sizeof err), 0);
    CHECK_INT(c.ntokens, 2);
    CHECK_INT(c.body_bytes, 100);
    CHECK_INT(c.connections, GW_DEFAULT_CONNECTIONS);
    CHECK_STR(c.listen, "0.0.0.0:8080");
    CHECK_STR(c.api, "tcp://127.0.0.1:1");
    CHECK_INT(c.timeout_ms, 500);
    const gw_token *t = gw_token_find(&c, "s3cret", 6);
    CHECK(t && t->role == GW_ROLE_PRODUCER);
    CHECK_STR(t ? t->name : NULL, "p");
    t = gw_token_find(&c, "r3ad", 4);
    CHECK(t && t->role == GW_ROLE_READER);
    CHECK(gw_token_find(&c, "s3cre", 5) == NULL);
    CHECK(gw_token_find(&c, "", 0) == NULL);
    gw_config_free(&c);

    CHECK(gw_role_allows(GW_ROLE_ADMIN, GW_ROLE_PRODUCER));
    CHECK(gw_role_allows(GW_ROLE_ADMIN, GW_ROLE_READER));
    CHECK(!gw_role_allows(GW_ROLE_READER, GW_ROLE_PRODUCER));
    CHECK(!gw_role_allows(GW_ROLE_PRODUCER, GW_ROLE_READER));

    CHECK(strstr(config_error("{}"), "`tokens` is missing") != NULL);
    CHECK(strstr(config_error("{\"tokens\": []}"), "`tokens` must be") != NULL);
    CHECK(strstr(config_error("{\"tokens\": [{\"token\": \"x\", \"role\": \"boss\"}]}"),
                 "`tokens[0].role` is \"boss\", not producer, reader or admin") != NULL);
    CHECK(strstr(config_error("{\"tokens\": [{\"role\": \"reader\"}]}"),
                 "`tokens[0].token` is missing") != NULL);
    CHECK(strstr(config_error(
                     "{\"tokens\": [{\"token\": \"x\", \"role\": \"reader\"}], \"limit\": {}}"),
                 "`limit` is not a key the gateway knows") != NULL);
    CHECK(strstr(config_error("{\"tokens\": [{\"token\": \"x\", \"role\": \"reader\"}], "
                              "\"limits\": {\"body_bytes\": -1}}"),
                 "`limits.body_bytes` must be an integer") != NULL);
    CHECK(strstr(config_error("{\"tokens\": [{\"token\": \"x\", \"role\": \"reader\"}], "
                              "\"listen\": \"localhost\"}"),
                 "`listen` is \"localhost\", not HOST:PORT") != NULL);
    CHECK(strstr(config_error("{\"tokens\": [{\"token\": \"x\", \"role\": \"reader\"}, "
                              "{\"token\": \"x\", \"role\": \"admin\"}]}"),
                 "`tokens[1].token` is the same as tokens[0].token") != NULL);
    CHECK(strstr(config_error("{\"tokens\": [{\"token\": \"x\", \"role\": \"reader\"}], "
                              "\"webhooks\": [{\"url\": \"ftp://x\"}]}"),
                 "`webhooks[0].url` is \"ftp://x\"") != NULL);
    CHECK(strstr(config_error("{\"tokens\": [{\"token\": \"x\", \"role\": \"reader\"}], "
                              "\"webhooks\": [{\"url\": \"http://x/\", \"topics\": \"deal.\"}]}"),
                 "`webhooks[0].secret` is missing") != NULL);
    CHECK(strstr(config_error("{\"tokens\": [{\"token\": \"x\", \"role\": \"reader\"}], "
                              "\"webhooks\": [{\"url\": \"http://x/\", \"secret\": \"\"}]}"),
                 "`webhooks[0].secret` must be a non-empty string") != NULL);
    CHECK(strstr(config_error("{\"tokens\": [{\"token\": \"x\", \"role\": \"reader\"}], "
                              "\"daemon\": {\"apl\": \"tcp://x:1\"}}"),
                 "`daemon.apl` is not a key") != NULL);
    CHECK(strstr(config_error("{\"tokens\": [{\"token\": \"x\", \"role\": \"reader\"}], "
                              "\"hooks\": {\"a b\": {}}}"),
                 "is not a hook name") != NULL);
    CHECK(strstr(config_error("{\"tokens\": "), "gw.json:1:") != NULL);
    CHECK(strstr(config_error("{\"tokens\": [{\"token\": \"x\", \"role\": \"reader\"}], "
                              "\"hooks\": {\"crm\": {\"signature\": \"none\", \"event\": "
                              "{\"id\": \"$.id\", \"type\": \"stage\", \"deal\": \"d\"}}}}"),
                 "`hooks.crm` is not a mapping the gateway can use: hooks.crm") != NULL);

    CHECK_INT(gw_config_load(&c, "/nonexistent/gw.json", err, sizeof err), -1);
    CHECK(strstr(err, "/nonexistent/gw.json: cannot be opened") != NULL);
}

static const char *public_url(const char *url)
{
    static char out[256];
    gw_webhook_public_url(url, out, sizeof out);
    return out;
}

static void test_webhook_state(void)
{
    CHECK_STR(public_url("https://hooks.example.com/a/b"), "https://hooks.example.com/a/b");
    CHECK_STR(public_url("https://user:pw@hooks.example.com:8443/a?token=t#x"),
              "https://hooks.example.com:8443/a");
    CHECK_STR(public_url("http://u:p@ss@host/p@th"), "http://host/p@th");
    CHECK_STR(public_url("http://host?key=k"), "http://host");
    CHECK_STR(public_url(""), "");
    char small[8];
    gw_webhook_public_url("http://example.com/", small, sizeof small);
    CHECK_STR(small, "http://");

    gw_delivery_state states[2] = {
        {.url = "http://a:b@x/h?k=1",
         .delivered = 7,
         .retries = 3,
         .failures = 4,
         .position = 40,
         .daemon_seq = 45,
         .failing = true},
        {.url = "https://y/h", .delivered = 1, .position = 9, .daemon_seq = 0},
    };
    const char *topics[2] = {"deal.moved.", ""};
    json_t *j = gw_webhook_state_json(states, topics, 2);
    CHECK(j != NULL);
    json_t *list = json_object_get(j, "webhooks");
    CHECK_INT(json_array_size(list), 2);
    json_t *a = json_array_get(list, 0), *b = json_array_get(list, 1);
    CHECK_STR(json_string_value(json_object_get(a, "url")), "http://x/h");
    CHECK_STR(json_string_value(json_object_get(a, "topics")), "deal.moved.");
    CHECK_INT(json_integer_value(json_object_get(a, "delivered")), 7);
    CHECK_INT(json_integer_value(json_object_get(a, "retries")), 3);
    CHECK_INT(json_integer_value(json_object_get(a, "failures")), 4);
    CHECK_INT(json_integer_value(json_object_get(a, "position")), 40);
    CHECK_INT(json_integer_value(json_object_get(a, "daemon_seq")), 45);
    CHECK_INT(json_integer_value(json_object_get(a, "lag")), 5);
    CHECK(json_is_true(json_object_get(a, "failing")));
    CHECK_STR(json_string_value(json_object_get(b, "topics")), "");
    CHECK_INT(json_integer_value(json_object_get(b, "lag")), 0); /* the daemon's end not known */
    CHECK(json_is_false(json_object_get(b, "failing")));
    json_decref(j);

    j = gw_webhook_state_json(NULL, NULL, 0);
    CHECK_INT(json_array_size(json_object_get(j, "webhooks")), 0);
    json_decref(j);
}

int main(int argc, char **argv)
{
    static const df_test tests[] = {
        {"three_forms", test_three_forms},
        {"types_and_times", test_types_and_times},
        {"refused", test_refused},
        {"too_many", test_too_many},
        {"from_json", test_from_json},
        {"config", test_config},
        {"hooks_compiled", test_hooks_compiled},
        {"webhook_state", test_webhook_state},
        {NULL, NULL},
    };
    return df_test_main(argc, argv, tests, NULL);
}

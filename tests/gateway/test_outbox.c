/* test_outbox.c: the pure parts of webhooks out: bodies, signatures, the backoff schedule
 * and position files, without any I/O. */
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <msgpack.h>
#include <sodium.h>

#include "check.h"
#include "outbox.h"
#include "signature.h"

static void test_body_is_the_map_with_topic(void)
{
    msgpack_sbuffer buf;
    msgpack_sbuffer_init(&buf);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &buf, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 4);
    msgpack_pack_str_with_body(&pk, "seq", 3);
    msgpack_pack_uint64(&pk, 42);
    msgpack_pack_str_with_body(&pk, "deal", 4);
    msgpack_pack_str_with_body(&pk, "d-\xc3\xa9", 4);
    msgpack_pack_str_with_body(&pk, "from", 4);
    msgpack_pack_nil(&pk);
    msgpack_pack_str_with_body(&pk, "amount", 6);
    msgpack_pack_double(&pk, 1.5);
    size_t len = 0;
    char *body = gw_outbox_body("deal.moved.default.lead", buf.data, buf.size, &len);
    CHECK(body != NULL);
    CHECK_INT(len, body ? strlen(body) : 0);
    json_error_t error;
    json_t *o = body ? json_loads(body, 0, &error) : NULL;
    CHECK(json_is_object(o));
    CHECK_INT(json_integer_value(json_object_get(o, "seq")), 42);
    CHECK_STR(json_string_value(json_object_get(o, "deal")), "d-\xc3\xa9");
    CHECK(json_is_null(json_object_get(o, "from")));
    CHECK(json_real_value(json_object_get(o, "amount")) == 1.5);
    CHECK_STR(json_string_value(json_object_get(o, "topic")), "deal.moved.default.lead");
    CHECK_INT(json_object_size(o), 5);
    CHECK(body && strchr(body, ' ') == NULL && strchr(body, '\n') == NULL); /* compact */
    json_decref(o);
    free(body);

    /* the same notification gives the same bytes, so that a retry carries the same signature */
    char *again = gw_outbox_body("deal.moved.default.lead", buf.data, buf.size, NULL);
    body = gw_outbox_body("deal.moved.default.lead", buf.data, buf.size, NULL);
    CHECK(again && body && strcmp(again, body) == 0);
    free(again);
    free(body);

    /* trailing bytes, a cut map, and what is not a map give nothing */
    msgpack_pack_nil(&pk);
    CHECK(gw_outbox_body("t", buf.data, buf.size, NULL) == NULL);
    CHECK(gw_outbox_body("t", buf.data, 5, NULL) == NULL);
    CHECK(gw_outbox_body("t", "\x93\x01\x02\x03", 4, NULL) == NULL);
    CHECK(gw_outbox_body("t", "", 0, NULL) == NULL);
    msgpack_sbuffer_destroy(&buf);
}

static void test_body_replaces_a_topic_key(void)
{
    /* {"topic": 1} */
    char *body = gw_outbox_body("deal.stale.default.lead", "\x81\xa5topic\x01", 8, NULL);
    CHECK_STR(body, "{\"topic\":\"deal.stale.default.lead\"}");
    free(body);
}

static void test_signature_is_hmac_sha256_hex(void)
{
    /* RFC 4231, test case 2 */
    char sig[GW_SIGNATURE_MAX];
    const char *data = "what do ya want for nothing?";
    gw_signature_sign("Jefe", data, strlen(data), sig);
    CHECK_STR(sig, "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
    /* RFC 4231, test case 6: a key longer than the block */
    char key[132];
    memset(key, 0xaa, 131);
    key[131] = '\0';
    data = "Test Using Larger Than Block-Size Key - Hash Key First";
    gw_signature_sign(key, data, strlen(data), sig);
    CHECK_STR(sig, "sha256=60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54");
}

static void test_backoff_doubles_to_the_cap_with_jitter(void)
{
    CHECK_INT(gw_outbox_backoff_ms(1, 0), 250);
    CHECK_INT(gw_outbox_backoff_ms(2, 0), 500);
    CHECK_INT(gw_outbox_backoff_ms(3, 0), 1000);
    CHECK_INT(gw_outbox_backoff_ms(8, 0), 30000); /* 32 s, capped */
    CHECK_INT(gw_outbox_backoff_ms(9, 0), 30000);
    CHECK_INT(gw_outbox_backoff_ms(UINT32_MAX, 0), 30000);
    CHECK_INT(gw_outbox_backoff_ms(0, 0), 250);
    /* the jitter takes off at most a tenth */
    CHECK_INT(gw_outbox_backoff_ms(1, UINT32_MAX), 226);
    CHECK_INT(gw_outbox_backoff_ms(UINT32_MAX, UINT32_MAX), 27001);
    CHECK_INT(gw_outbox_backoff_ms(2, 1u << 31), 475);
    int64_t before = 0;
    for (uint32_t retry = 1; retry < 20; retry++) {
        int64_t wait = gw_outbox_backoff_ms(retry, 0);
        CHECK(wait >= before);
        before = wait;
    }
}

static void test_state_name_hashes_url_and_topics(void)
{
    char a[GW_STATE_NAME_MAX], b[GW_STATE_NAME_MAX], c[GW_STATE_NAME_MAX];
    gw_outbox_state_name("http://x/ab", "c", a);
    gw_outbox_state_name("http://x/a", "bc", b);
    gw_outbox_state_name("http://x/ab", "c", c);
    CHECK(strcmp(a, b) != 0);
    CHECK_STR(a, c);
    CHECK_INT(strlen(a), GW_STATE_NAME_MAX - 1);
    CHECK(strncmp(a, "endpoint-", 9) == 0);
    CHECK(strcmp(a + strlen(a) - 4, ".pos") == 0);
    CHECK(strspn(a + 9, "0123456789abcdef") == 32);
}

static void test_position_text_round_trips(void)
{
    char text[GW_POSITION_TEXT_MAX];
    uint64_t seq = 7;
    size_t len = gw_outbox_position_format(0, text);
    CHECK(gw_outbox_position_parse(text, len, &seq));
    CHECK_INT(seq, 0);
    len = gw_outbox_position_format(UINT64_MAX, text);
    CHECK_STR(text, "18446744073709551615\n");
    CHECK(gw_outbox_position_parse(text, len, &seq));
    CHECK(seq == UINT64_MAX);
    CHECK(gw_outbox_position_parse("123\n", 4, &seq));
    CHECK_INT(seq, 123);

    static const char *const bad[] = {"",
                                      "\n",
                                      "12",
                                      "012\n",
                                      "1x\n",
                                      "-1\n",
                                      " 1\n",
                                      "1\n\n",
                                      "18446744073709551616\n",
                                      "99999999999999999999\n",
                                      NULL};
    for (size_t i = 0; bad[i]; i++) {
        seq = 7;
        if (gw_outbox_position_parse(bad[i], strlen(bad[i]), &seq))
            fprintf(stderr, "\"%s\" was taken\n", bad[i]);
        CHECK(seq == 7);
    }
}

/* Random and cut bytes: never a crash, and a body only for a whole map, as JSON. */
static void test_random_bytes_are_survived(void)
{
    unsigned char seed[randombytes_SEEDBYTES] = {7};
    unsigned char bytes[64];
    int bodies = 0;
    for (int i = 0; i < 20000; i++) {
        seed[1] = (unsigned char)i;
        seed[2] = (unsigned char)(i >> 8);
        randombytes_buf_deterministic(bytes, sizeof bytes, seed);
        size_t len = bytes[0] % sizeof bytes;
        if (i % 2)
            bytes[1] = (unsigned char)(0x80 | (bytes[1] & 0x0f)); /* often a fixmap */
        char *body = gw_outbox_body("t", (const char *)bytes + 1, len, NULL);
        if (body) {
            bodies++;
            /* jansson reads no \u0000 in a key, which is JSON all the same */
            json_t *o = json_loads(body, JSON_ALLOW_NUL, NULL);
            CHECK(json_is_object(o) || strstr(body, "\\u0000") != NULL);
            json_decref(o);
        }
        free(body);
        uint64_t seq = 0;
        if (gw_outbox_position_parse((const char *)bytes + 1, len, &seq)) {
            char text[GW_POSITION_TEXT_MAX];
            CHECK_INT(gw_outbox_position_format(seq, text), len);
        }
    }
    CHECK(bodies > 0);
}

static const df_test tests[] = {
    {"body_is_the_map_with_topic", test_body_is_the_map_with_topic},
    {"body_replaces_a_topic_key", test_body_replaces_a_topic_key},
    {"signature_is_hmac_sha256_hex", test_signature_is_hmac_sha256_hex},
    {"backoff_doubles_to_the_cap_with_jitter", test_backoff_doubles_to_the_cap_with_jitter},
    {"state_name_hashes_url_and_topics", test_state_name_hashes_url_and_topics},
    {"position_text_round_trips", test_position_text_round_trips},
    {"random_bytes_are_survived", test_random_bytes_are_survived},
    {NULL, NULL},
};

int main(int argc, char **argv)
{
    if (sodium_init() < 0)
        return 1;
    return df_test_main(argc, argv, tests, NULL);
}

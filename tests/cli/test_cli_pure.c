/* test_cli_pure.c: unit tests of the dealflow command's pure parts: times, CSV, JSON <-> msgpack,
 * board and metrics rendering. */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "cli.h"

static void test_times(void)
{
    int64_t ms = 0;
    CHECK(time_parse("1700000000000", &ms));
    CHECK_INT(ms, 1700000000000LL);
    CHECK(time_parse("-5", &ms));
    CHECK_INT(ms, -5);
    CHECK(time_parse("1970-01-02", &ms));
    CHECK_INT(ms, 86400000);
    CHECK(time_parse("2024-01-31", &ms));
    CHECK_INT(ms, 1706659200000LL);
    CHECK(time_parse("2024-01-31T10:00:00Z", &ms));
    CHECK_INT(ms, 1706695200000LL);
    CHECK(time_parse("2024-01-31T10:00Z", &ms));
    CHECK_INT(ms, 1706695200000LL);
    CHECK(time_parse("2024-01-31T12:00:00+02:00", &ms));
    CHECK_INT(ms, 1706695200000LL);
    CHECK(time_parse("2024-01-31T10:00:00.250Z", &ms));
    CHECK_INT(ms, 1706695200250LL);
    CHECK(time_parse("2024-02-29", &ms));
    CHECK(!time_parse("2023-02-29", &ms));
    CHECK(!time_parse("2024-13-01", &ms));
    CHECK(!time_parse("2024-01-31T25:00Z", &ms));
    CHECK(!time_parse("yesterday", &ms));
    CHECK(!time_parse("", &ms));
    CHECK(!time_parse("12x", &ms));
    CHECK(!time_parse("99999999999999999999999", &ms));
    CHECK(time_parse_format("01-02-2018", 10, "%d-%m-%Y", &ms));
    CHECK_INT(ms, 1517443200000LL);
    CHECK(time_parse_format("26-02-2018 19:58", 16, "%d-%m-%Y %H:%M", &ms));
    CHECK_INT(ms, 1519675080000LL);
    CHECK(!time_parse_format("26-02-2018", 10, "%d-%m-%Y %H:%M", &ms));
    CHECK(!time_parse_format("31-02-2018", 10, "%d-%m-%Y", &ms));
    CHECK(!time_parse_format("01-02-2018x", 11, "%d-%m-%Y", &ms));
    char buf[TIME_TEXT_MAX];
    CHECK_STR(time_format(1706695200000LL, buf), "2024-01-31T10:00:00Z");
    CHECK_STR(time_format(1706695200250LL, buf), "2024-01-31T10:00:00.250Z");
    CHECK_STR(time_format(-1, buf), "1969-12-31T23:59:59.999Z");
    CHECK_STR(time_format(0, buf), "1970-01-01T00:00:00Z");
    /* Round trip over a range of days, leap years included. */
    for (int64_t t = -800 * 86400000LL; t < 20000 * 86400000LL; t += 86400000LL * 7 + 1234) {
        int64_t back = 0;
        CHECK(time_parse(time_format(t, buf), &back) && back == t);
    }
}

/* Parses CSV text and joins its rows as "a|b;c|d;". */
static char *csv_rows(const char *text, int *rc)
{
    FILE *f = fmemopen((void *)text, strlen(text), "r");
    csv_reader *r = csv_open(f);
    static char out[1024];
    size_t n = 0;
    char **fields;
    size_t *lens, count;
    out[0] = '\0';
    while ((*rc = csv_next(r, &fields, &lens, &count)) == 1) {
        for (size_t i = 0; i < count; i++)
            n += (size_t)snprintf(out + n, sizeof out - n, "%s%s", i ? "|" : "", fields[i]);
        n += (size_t)snprintf(out + n, sizeof out - n, ";");
    }
    csv_close(r);
    fclose(f);
    return out;
}

static void test_csv(void)
{
    int rc;
    CHECK_STR(csv_rows("a,b\n1,2\n", &rc), "a|b;1|2;");
    CHECK_INT(rc, 0);
    CHECK_STR(csv_rows("a,b\r\n1,2", &rc), "a|b;1|2;");
    CHECK_STR(csv_rows("a,\"b,c\",\"say \"\"hi\"\"\"\n", &rc), "a|b,c|say \"hi\";");
    CHECK_STR(csv_rows("\"multi\nline\",x\n\n,\n", &rc), "multi\nline|x;|;");
    CHECK_INT(rc, 0);
    csv_rows("a,\"open\n", &rc);
    CHECK_INT(rc, -1);
    csv_rows("a,\"x\"y\n", &rc);
    CHECK_INT(rc, -1);
    csv_rows("a,b\"c\n", &rc);
    CHECK_INT(rc, -1);
    /* Line numbers count from the start of the row. */
    FILE *f = fmemopen((void *)"h\n\"a\nb\"\nc\n", 10, "r");
    csv_reader *r = csv_open(f);
    char **fields;
    size_t *lens, count;
    CHECK_INT(csv_next(r, &fields, &lens, &count), 1);
    CHECK_INT(csv_line(r), 1);
    CHECK_INT(csv_next(r, &fields, &lens, &count), 1);
    CHECK_INT(csv_line(r), 2);
    CHECK_INT(lens[0], 3);
    CHECK_INT(csv_next(r, &fields, &lens, &count), 1);
    CHECK_INT(csv_line(r), 4);
    csv_close(r);
    fclose(f);
    /* A field with an embedded NUL keeps its length. */
    f = fmemopen((void *)"a\0b,c\n", 6, "r");
    r = csv_open(f);
    CHECK_INT(csv_next(r, &fields, &lens, &count), 1);
    CHECK_INT(lens[0], 3);
    csv_close(r);
    fclose(f);
}

/* JSON text -> msgpack -> JSON text. */
static char *round_trip(const char *json, msgpack_sbuffer *out)
{
    json_error_t jerr;
    json_t *v = json_loads(json, JSON_DECODE_ANY, &jerr);
    msgpack_sbuffer_init(out);
    msgpack_packer pk;
    msgpack_packer_init(&pk, out, msgpack_sbuffer_write);
    json_to_msgpack(&pk, v);
    json_decref(v);
    msgpack_unpacked up;
    msgpack_unpacked_init(&up);
    msgpack_unpack_next(&up, out->data, out->size, NULL);
    json_t *back = json_from_msgpack(&up.data);
    char *text = json_dumps(back, JSON_ENCODE_ANY | JSON_COMPACT);
    json_decref(back);
    msgpack_unpacked_destroy(&up);
    return text;
}

static void test_json(void)
{
    msgpack_sbuffer buf;
    char *text = round_trip("{\"id\":\"e1\",\"amount\":12000,\"f\":12000.5,\"n\":null,\"b\":true,"
                            "\"a\":[1,-2,\"x\"]}",
                            &buf);
    CHECK_STR(text, "{\"id\":\"e1\",\"amount\":12000,\"f\":12000.5,\"n\":null,\"b\":true,"
                    "\"a\":[1,-2,\"x\"]}");
    /* Ints stay ints, floats floats, and key order is kept: bytes are exact. */
    const unsigned char expect[] = {0x86, 0xa2, 'i', 'd', 0xa2, 'e',  '1',  0xa6, 'a',
                                    'm',  'o',  'u', 'n', 't',  0xcd, 0x2e, 0xe0};
    CHECK(buf.size > sizeof expect && memcmp(buf.data, expect, sizeof expect) == 0);
    free(text);
    msgpack_sbuffer_destroy(&buf);
    text = round_trip("12000.0", &buf);
    CHECK_INT((unsigned char)buf.data[0], 0xcb); /* float64 */
    free(text);
    msgpack_sbuffer_destroy(&buf);

    /* msgpack -> JSON: bin as base64, a uint beyond int64 as a string, bad UTF-8 replaced. */
    msgpack_sbuffer_init(&buf);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &buf, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 4);
    msgpack_pack_str_with_body(&pk, "raw", 3);
    msgpack_pack_bin_with_body(&pk, "\x81\xa1\x61\x01", 4);
    msgpack_pack_str_with_body(&pk, "big", 3);
    msgpack_pack_uint64(&pk, UINT64_MAX);
    msgpack_pack_str_with_body(&pk, "bad", 3);
    msgpack_pack_str_with_body(&pk, "a\xff", 2);
    msgpack_pack_str_with_body(&pk, "nan", 3);
    msgpack_pack_double(&pk, 0.0 / 0.0);
    msgpack_unpacked up;
    msgpack_unpacked_init(&up);
    msgpack_unpack_next(&up, buf.data, buf.size, NULL);
    json_t *j = json_from_msgpack(&up.data);
    text = json_dumps(j, JSON_COMPACT);
    CHECK_STR(text,
              "{\"raw\":\"gaFhAQ==\",\"big\":\"18446744073709551615\",\"bad\":\"a\xef\xbf\xbd\","
              "\"nan\":null}");
    free(text);
    json_decref(j);
    msgpack_unpacked_destroy(&up);
    msgpack_sbuffer_destroy(&buf);

    char *b64 = base64_encode("", 0);
    CHECK_STR(b64, "");
    free(b64);
    b64 = base64_encode("foob", 4);
    CHECK_STR(b64, "Zm9vYg==");
    free(b64);
}

/* Unpacks JSON text into a msgpack object living in zone. */
static msgpack_object from_json(const char *json, msgpack_sbuffer *buf, msgpack_zone *zone)
{
    json_t *v = json_loads(json, 0, NULL);
    msgpack_sbuffer_init(buf);
    msgpack_packer pk;
    msgpack_packer_init(&pk, buf, msgpack_sbuffer_write);
    json_to_msgpack(&pk, v);
    json_decref(v);
    msgpack_object obj;
    msgpack_unpack(buf->data, buf->size, NULL, zone, &obj);
    return obj;
}

static char *render(const char *json, bool colour, bool metrics)
{
    static char out[8192];
    msgpack_sbuffer buf;
    msgpack_zone zone;
    msgpack_zone_init(&zone, 1024);
    msgpack_object obj = from_json(json, &buf, &zone);
    FILE *f = fmemopen(out, sizeof out, "w");
    render_opts ro = {.colour = colour, .bar_width = 10};
    int rc = metrics ? metrics_render(f, &obj, "default") : board_render(f, &obj, "default", &ro);
    fclose(f);
    msgpack_zone_destroy(&zone);
    msgpack_sbuffer_destroy(&buf);
    return rc == 0 ? out : NULL;
}

static char *render_losses(const char *json)
{
    static char out[4096];
    msgpack_sbuffer buf;
    msgpack_zone zone;
    msgpack_zone_init(&zone, 1024);
    msgpack_object obj = from_json(json, &buf, &zone);
    FILE *f = fmemopen(out, sizeof out, "w");
    int rc = losses_render(f, &obj, "default");
    fclose(f);
    msgpack_zone_destroy(&zone);
    msgpack_sbuffer_destroy(&buf);
    return rc == 0 ? out : NULL;
}

static int count_lines(const char *text);

/* Renders a reply with one of outlook.c's renderers. */
static char *render_outlook(const char *json, int which)
{
    static char out[8192];
    msgpack_sbuffer buf;
    msgpack_zone zone;
    msgpack_zone_init(&zone, 1024);
    msgpack_object obj = from_json(json, &buf, &zone);
    FILE *f = fmemopen(out, sizeof out, "w");
    int rc = which == 0   ? forecast_render(f, &obj, "default")
             : which == 1 ? calibration_render(f, &obj, "default")
                          : series_render(f, &obj);
    fclose(f);
    msgpack_zone_destroy(&zone);
    msgpack_sbuffer_destroy(&buf);
    return rc == 0 ? out : NULL;
}

static void test_outlook(void)
{
    char *text = render_outlook(
        "{\"ok\":true,\"periods\":["
        "{\"start\":1701388800000,\"end\":1704067200000,\"count\":4,\"amount\":710,"
        "\"weighted\":367.0,\"won_count\":0,\"won_amount\":0},"
        "{\"start\":1704067200000,\"end\":1706745600000,\"count\":2,\"amount\":500.5,"
        "\"weighted\":183.5,\"won_count\":1,\"won_amount\":20}],"
        "\"overdue\":{\"count\":2,\"amount\":540,\"weighted\":350.0},"
        "\"no_date\":{\"count\":1,\"amount\":80,\"weighted\":8.0}}",
        0);
    CHECK(text != NULL);
    if (text) {
        CHECK(strstr(text, "forecast of pipeline default  (bar: weighted)\n") != NULL);
        /* the largest weighted fills the bar, half of it half */
        CHECK(strstr(text, "2023-12-01            ##############################       4 ") !=
              NULL);
        CHECK(strstr(text, "2024-01-01            ###############                      2 ") !=
              NULL);
        CHECK(strstr(text, "500.50") != NULL && strstr(text, "367.00") != NULL);
        CHECK(strstr(text, "overdue ") != NULL && strstr(text, "no close date ") != NULL);
        CHECK_INT(count_lines(text), 6);
    }
    CHECK(render_outlook("{\"periods\":[]}", 0) == NULL); /* no overdue */
    CHECK(render_outlook("{\"periods\":[1]}", 0) == NULL);

    text = render_outlook("{\"stages\":[{\"stage\":\"lead\",\"configured\":10,\"reached\":5,"
                          "\"won\":3,\"actual\":0.6},{\"stage\":\"won\",\"configured\":100,"
                          "\"reached\":0,\"won\":0,\"actual\":null}]}",
                          1);
    CHECK(text != NULL);
    if (text) {
        CHECK(strstr(text, "calibration of pipeline default\n") != NULL);
        CHECK(
            strstr(text, "lead                             10%         5         3     60.0%\n") !=
            NULL);
        CHECK(
            strstr(text, "won                             100%         0         0         -\n") !=
            NULL);
    }
    CHECK(render_outlook("{\"ok\":true}", 1) == NULL);

    text = render_outlook("{\"series\":[{\"start\":1698796800000,\"end\":1701388800000,"
                          "\"won\":3,\"lost\":2,\"win_rate\":0.6,\"avg_cycle_days\":4.0,"
                          "\"won_amount\":1400,\"lost_amount\":150,\"created\":12},"
                          "{\"start\":1700000000000,\"end\":1701388800000,\"won\":0,\"lost\":0,"
                          "\"win_rate\":null,\"avg_cycle_days\":null,\"won_amount\":0,"
                          "\"lost_amount\":0,\"created\":1}]}",
                          2);
    CHECK(text != NULL);
    if (text) {
        CHECK(
            strstr(text,
                   "2023-11-01                 3       2     60.0%         4.0            1400 ") !=
            NULL);
        /* a start that is not midnight shows its time */
        CHECK(strstr(text, "2023-11-14T22:13:20Z       0       0         -           -") != NULL);
    }
    CHECK(render_outlook("{\"won\":1}", 2) == NULL);
}

static int count_lines(const char *text)
{
    int n = 0;
    for (; *text; text++)
        n += *text == '\n';
    return n;
}

static void test_board(void)
{
    const char *reply = "{\"ok\":true,\"stages\":["
                        "{\"stage\":\"lead\",\"count\":4,\"amount\":1000,\"weighted\":100.0,"
                        "\"avg_days_in_stage\":2.5,\"stale\":0,\"removed\":false},"
                        "{\"stage\":\"won\",\"count\":1,\"amount\":500,\"weighted\":500.0,"
                        "\"avg_days_in_stage\":0.0,\"stale\":0,\"removed\":false},"
                        "{\"stage\":\"demo\",\"count\":2,\"amount\":0,\"weighted\":0.0,"
                        "\"avg_days_in_stage\":1.0,\"stale\":2,\"removed\":true}]}";
    char *text = render(reply, false, false);
    CHECK(text != NULL);
    if (!text)
        return;
    CHECK(strstr(text, "lead            ##########") !=
          NULL); /* the biggest amount fills the bar */
    CHECK(strstr(text, "won             #####     ") != NULL); /* half of it, half the bar */
    CHECK(strstr(text, "demo (removed)") != NULL);
    CHECK(strstr(text, "1000") != NULL && strstr(text, "2.5") != NULL);
    /* the total amount is shown as the rows are: an int while every amount is */
    CHECK(strstr(text, " 1500 ") != NULL && strstr(text, "1500.00") == NULL);
    CHECK(strchr(text, '\033') == NULL); /* plain text without a terminal */
    CHECK_INT(count_lines(text), 6);
    text = render(reply, true, false);
    CHECK(text && strstr(text, "\033[") != NULL);
    /* Without amounts the bar shows counts. */
    text = render("{\"stages\":[{\"stage\":\"lead\",\"count\":8,\"amount\":0,\"weighted\":0.0,"
                  "\"avg_days_in_stage\":0.0,\"stale\":0},{\"stage\":\"won\",\"count\":2,"
                  "\"amount\":0,\"weighted\":0.0,\"avg_days_in_stage\":0.0,\"stale\":0}]}",
                  false, false);
    CHECK(text && strstr(text, "(bar: count)") && strstr(text, "won    ###       "));
    text = render("{\"stages\":[{\"stage\":\"lead\",\"count\":1,\"amount\":2.5,\"weighted\":0.25,"
                  "\"avg_days_in_stage\":0.0,\"stale\":0},{\"stage\":\"won\",\"count\":1,"
                  "\"amount\":2,\"weighted\":2.0,\"avg_days_in_stage\":0.0,\"stale\":0}]}",
                  false, false);
    CHECK(text && strstr(text, "4.50") != NULL);
    CHECK(render("{\"ok\":true}", false, false) == NULL);
    CHECK(render("{\"stages\":[1]}", false, false) == NULL);
    /* a closed stage's days, and a filtered board's stale counts, are nil: "-" */
    text = render("{\"stages\":[{\"stage\":\"won\",\"count\":2,\"amount\":5,\"weighted\":5.0,"
                  "\"avg_days_in_stage\":null,\"stale\":null,\"removed\":false}]}",
                  false, false);
    CHECK(text && strstr(text, "5.00         -       -\n") != NULL);

    /* losses: the stages in pipeline order, the reasons largest first */
    text = render_losses("{\"ok\":true,\"lost\":5,\"lost_amount\":150,"
                         "\"lost_from\":{\"a\":1,\"b\":3,\"gone\":0},"
                         "\"loss_reasons\":{\"price\":1,\"unspecified\":3,\"timing\":1}}");
    CHECK(text != NULL);
    if (text) {
        CHECK(strstr(text, "losses of pipeline default\n") != NULL);
        CHECK(strstr(text, "lost amount            150\n") != NULL);
        CHECK(strstr(text, "  a                                   1   25.0%\n"
                           "  b                                   3   75.0%\n"
                           "  gone                                0    0.0%\n") != NULL);
        CHECK(strstr(text, "  unspecified                         3   60.0%\n"
                           "  price                               1   20.0%\n"
                           "  timing                              1   20.0%\n") != NULL);
    }
    CHECK(render_losses("{\"ok\":true,\"won\":1}") == NULL);

    text = render("{\"ok\":true,\"won\":3,\"lost\":1,\"win_rate\":0.75,\"avg_cycle_days\":12.5,"
                  "\"avg_days_in_stage\":{\"lead\":3.25},\"conversion\":[{\"from\":\"lead\","
                  "\"to\":\"qualified\",\"rate\":0.5},{\"from\":\"qualified\",\"to\":\"won\","
                  "\"rate\":null}],\"open\":5,\"open_amount\":1000,\"weighted\":150.0,"
                  "\"velocity\":null}",
                  false, true);
    CHECK(text != NULL);
    if (text) {
        CHECK(strstr(text, "win rate               75.0%") != NULL);
        CHECK(strstr(text, "avg cycle (days)       12.50") != NULL);
        CHECK(strstr(text, "velocity (per day)     -") != NULL);
        CHECK(strstr(text, "lead -> qualified              50.0%") != NULL);
        CHECK(strstr(text, "qualified -> won               -") != NULL);
        CHECK(strstr(text, "  lead                 3.2") != NULL);
    }
}

/* metrics as text: the amounts of won and lost deals where the daemon
 * answers them, and no line for them from a daemon that does not. */
static void test_metrics(void)
{
    char *text = render("{\"won\":3,\"lost\":1,\"win_rate\":0.75,\"avg_cycle_days\":12.5,"
                        "\"won_amount\":900,\"avg_won_amount\":300.0,\"lost_amount\":50,"
                        "\"created\":6,\"open\":2,\"open_amount\":400,\"weighted\":120.0,"
                        "\"velocity\":75.0}",
                        false, true);
    CHECK(text != NULL);
    if (text) {
        CHECK(strstr(text, "metrics of pipeline default\n") != NULL);
        CHECK(strstr(text, "win rate               75.0%\n") != NULL);
        CHECK(strstr(text, "won amount             900\n") != NULL);
        CHECK(strstr(text, "avg won amount         300.00\n") != NULL);
        CHECK(strstr(text, "lost amount            50\n") != NULL);
        CHECK(strstr(text, "created                6\n") != NULL);
    }
    text = render("{\"won\":3,\"lost\":1,\"win_rate\":0.75,\"open\":2}", false, true);
    CHECK(text != NULL);
    if (text) {
        CHECK(strstr(text, "won                    3\n") != NULL);
        CHECK(strstr(text, "won amount") == NULL);
        CHECK(strstr(text, "created") == NULL);
    }
}

static const df_test tests[] = {
    {"metrics", test_metrics}, {"outlook", test_outlook}, {"times", test_times}, {"csv", test_csv},
    {"json", test_json},       {"board", test_board},     {NULL, NULL},
};

int main(int argc, char **argv)
{
    return df_test_main(argc, argv, tests, NULL);
}

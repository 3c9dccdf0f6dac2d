/* test_codec.c: unit tests of the wire codec: the msgpack checker on hostile
 * bytes, event decoding and its rules, recording, request getters and reply packing. */
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "codec.h"

/* ---- a JSON-like notation for test events --------------------------------
 * objects, arrays, 'str' or "str" (escapes \0 \\ \' \"), integers, floats
 * (with '.' or 'e'; a trailing 'f' packs a float32), nan, inf, true, false,
 * null, b'..' (bin) and x'..' (ext type 7). */

typedef struct text_parser {
    const char *s;
} text_parser;

static void pack_text_value(text_parser *tp, msgpack_packer *pk);

static void text_fail(const text_parser *tp, const char *why)
{
    fprintf(stderr, "test notation: %s at \"%.20s\"\n", why, tp->s);
    abort();
}

static void skip_space(text_parser *tp)
{
    while (*tp->s == ' ' || *tp->s == '\n')
        tp->s++;
}

/* Reads a quoted string into out (at least strlen of the remaining text). */
static size_t read_quoted(text_parser *tp, char *out)
{
    char quote = *tp->s++;
    size_t n = 0;
    while (*tp->s != quote) {
        if (*tp->s == '\0')
            text_fail(tp, "unterminated string");
        if (*tp->s == '\\') {
            tp->s++;
            out[n++] = *tp->s == '0' ? '\0' : *tp->s;
            tp->s++;
            continue;
        }
        out[n++] = *tp->s++;
    }
    tp->s++;
    return n;
}

static void pack_text_container(text_parser *tp, msgpack_packer *pk, bool is_map)
{
    msgpack_sbuffer body;
    msgpack_packer body_pk;
    size_t count = 0;
    char close = is_map ? '}' : ']';

    msgpack_sbuffer_init(&body);
    msgpack_packer_init(&body_pk, &body, msgpack_sbuffer_write);
    tp->s++;
    skip_space(tp);
    while (*tp->s != close) {
        pack_text_value(tp, &body_pk);
        skip_space(tp);
        if (is_map) {
            if (*tp->s++ != ':')
                text_fail(tp, "expected ':'");
            pack_text_value(tp, &body_pk);
            skip_space(tp);
        }
        count++;
        if (*tp->s == ',')
            tp->s++;
        else if (*tp->s != close)
            text_fail(tp, "expected ',' or a closing bracket");
        skip_space(tp);
    }
    tp->s++;
    if (is_map)
        msgpack_pack_map(pk, count);
    else
        msgpack_pack_array(pk, count);
    if (body.size > 0)
        pk->callback(pk->data, body.data, body.size);
    msgpack_sbuffer_destroy(&body);
}

static bool take_word(text_parser *tp, const char *word)
{
    size_t n = strlen(word);
    if (strncmp(tp->s, word, n) != 0)
        return false;
    tp->s += n;
    return true;
}

static void pack_text_value(text_parser *tp, msgpack_packer *pk)
{
    skip_space(tp);
    char c = *tp->s;
    if (c == '{' || c == '[') {
        pack_text_container(tp, pk, c == '{');
    } else if (c == '\'' || c == '"' || ((c == 'b' || c == 'x') && tp->s[1] == '\'')) {
        if (c == 'b' || c == 'x')
            tp->s++;
        char *bytes = malloc(strlen(tp->s) + 1);
        size_t n = read_quoted(tp, bytes);
        if (c == 'b') {
            msgpack_pack_bin_with_body(pk, bytes, n);
        } else if (c == 'x') {
            msgpack_pack_ext(pk, n, 7);
            msgpack_pack_ext_body(pk, bytes, n);
        } else {
            msgpack_pack_str_with_body(pk, bytes, n);
        }
        free(bytes);
    } else if (take_word(tp, "null")) {
        msgpack_pack_nil(pk);
    } else if (take_word(tp, "true")) {
        msgpack_pack_true(pk);
    } else if (take_word(tp, "false")) {
        msgpack_pack_false(pk);
    } else if (take_word(tp, "nan")) {
        msgpack_pack_double(pk, NAN);
    } else if (take_word(tp, "-inf")) {
        msgpack_pack_double(pk, -INFINITY);
    } else if (take_word(tp, "inf")) {
        msgpack_pack_double(pk, INFINITY);
    } else if (c == '-' || (c >= '0' && c <= '9')) {
        const char *start = tp->s;
        bool is_float = false;
        tp->s++;
        while ((*tp->s >= '0' && *tp->s <= '9') || *tp->s == '.' || *tp->s == 'e' ||
               *tp->s == '-') {
            if (*tp->s == '.' || *tp->s == 'e')
                is_float = true;
            tp->s++;
        }
        if (*tp->s == 'f') {
            tp->s++;
            msgpack_pack_float(pk, strtof(start, NULL));
        } else if (is_float) {
            msgpack_pack_double(pk, strtod(start, NULL));
        } else if (c == '-') {
            msgpack_pack_int64(pk, strtoll(start, NULL, 10));
        } else {
            msgpack_pack_uint64(pk, strtoull(start, NULL, 10));
        }
    } else {
        text_fail(tp, "unexpected character");
    }
}

/* Packs the notation into a fresh sbuffer. */
static void encode(const char *text, msgpack_sbuffer *out)
{
    text_parser tp = {text};
    msgpack_packer pk;
    msgpack_sbuffer_init(out);
    msgpack_packer_init(&pk, out, msgpack_sbuffer_write);
    pack_text_value(&tp, &pk);
    skip_space(&tp);
    if (*tp.s != '\0')
        text_fail(&tp, "text after the value");
}

/* printf into a static buffer: for events with long strings. */
static const char *fmt(const char *format, ...) __attribute__((format(printf, 1, 2)));
static const char *fmt(const char *format, ...)
{
    static char buf[8192];
    va_list ap;
    va_start(ap, format);
    vsnprintf(buf, sizeof buf, format, ap);
    va_end(ap);
    return buf;
}

/* n copies of c, NUL-terminated (n < 1024). */
static const char *repeat(char c, size_t n)
{
    static char bufs[4][1024];
    static int next;
    char *buf = bufs[next++ % 4];
    memset(buf, c, n);
    buf[n] = '\0';
    return buf;
}

/* One frame through the whole path: check, unpack, decode. */
typedef struct frame {
    msgpack_sbuffer sb;
    msgpack_zone zone;
    msgpack_object obj;
    df_event ev;
    df_error err;
} frame;

static int frame_decode(frame *f, const char *text)
{
    int rc;
    encode(text, &f->sb);
    msgpack_zone_init(&f->zone, 4096);
    memset(&f->err, 0, sizeof f->err);
    rc = df_msgpack_check(f->sb.data, f->sb.size, &f->err);
    if (rc == 0)
        rc = df_msgpack_unpack(f->sb.data, f->sb.size, &f->zone, &f->obj, &f->err);
    if (rc == 0)
        rc = df_event_decode(&f->obj, &f->ev, &f->err);
    return rc;
}

static void frame_free(frame *f)
{
    msgpack_zone_destroy(&f->zone);
    msgpack_sbuffer_destroy(&f->sb);
}

static bool str_is(df_str s, const char *expected)
{
    return df_str_eq(s, expected);
}

static bool points_into(df_str s, const msgpack_sbuffer *sb)
{
    return s.ptr >= sb->data && s.ptr + s.len <= sb->data + sb->size;
}

/* ---- errors ------------------------------------------------------------- */

static void test_error_names(void)
{
    static const char *const names[] = {
        "bad_request",      "unknown_op", "not_found", "conflict",    "unknown_stage",
        "unknown_pipeline", "too_large",  "forbidden", "unavailable", "internal"};
    for (int i = 0; i < 10; i++) {
        CHECK_STR(df_error_name(-(i + 1)), names[i]);
        CHECK_INT(df_error_from_name(names[i], strlen(names[i])), -(i + 1));
    }
    CHECK_INT(DF_EBAD_REQUEST, -1);
    CHECK_INT(DF_EINTERNAL, -10);
    CHECK_STR(df_error_name(DF_EUNREACHABLE), "unreachable");
    CHECK_INT(df_error_from_name("unreachable", 11), DF_EINTERNAL); /* not a wire name */
    CHECK_STR(df_error_name(DF_ECORRUPT), "corrupt");
    CHECK_INT(df_error_from_name("corrupt", 7), DF_ECORRUPT);
    CHECK_INT(DF_ECORRUPT, -12);
    CHECK_STR(df_error_name(-13), "internal");
    CHECK_STR(df_error_name(5), "internal");
    CHECK_INT(df_error_from_name("nope", 4), DF_EINTERNAL);
    CHECK_INT(df_error_from_name("bad_request", 3), DF_EINTERNAL);
    CHECK_INT(df_error_from_name("not_found_x", 9), DF_ENOT_FOUND);
    CHECK_INT(df_error_from_name(NULL, 0), DF_EINTERNAL);
}

static void test_fail_and_small_helpers(void)
{
    df_error err;
    CHECK_INT(df_fail(&err, DF_ECONFLICT, "deal %s at version %d", "d1", 3), DF_ECONFLICT);
    CHECK_INT(err.code, DF_ECONFLICT);
    CHECK_STR(err.message, "deal d1 at version 3");
    CHECK_INT(df_fail(NULL, DF_ENOT_FOUND, "x"), DF_ENOT_FOUND);
    CHECK_INT(df_fail(&err, DF_EBAD_REQUEST, "%s", repeat('m', 500)), DF_EBAD_REQUEST);
    CHECK_INT(strlen(err.message), DF_MESSAGE_MAX - 1);

    df_str s = {"lead", 4};
    CHECK(df_str_eq(s, "lead"));
    CHECK(!df_str_eq(s, "lea"));
    CHECK(!df_str_eq(s, "leads"));
    df_str empty = {NULL, 0};
    CHECK(df_str_eq(empty, ""));

    df_num n = {DF_NUM_INT, 42, 0};
    CHECK(df_num_value(n) == 42.0);
    n.kind = DF_NUM_FLOAT;
    n.f = 2.5;
    CHECK(df_num_value(n) == 2.5);
    n.kind = DF_NUM_NONE;
    CHECK(df_num_value(n) == 0.0);

    CHECK_STR(df_outcome_name(DF_OPEN), "open");
    CHECK_STR(df_outcome_name(DF_WON), "won");
    CHECK_STR(df_outcome_name(DF_LOST), "lost");
}

/* ---- decoding good events ------------------------------------------------ */

static void test_decode_stage(void)
{
    frame f;
    CHECK_INT(frame_decode(&f, "{'id':'e1','type':'stage','deal':'d1','stage':'proposal',"
                               "'at':1700000000000,'pipeline':'enterprise','amount':12000,"
                               "'owner':'ana','reason':'price','expect':3,'custom':[1,2]}"),
              0);
    CHECK_INT(f.ev.type, DF_EV_STAGE);
    CHECK(str_is(f.ev.id, "e1"));
    CHECK(str_is(f.ev.deal, "d1"));
    CHECK(str_is(f.ev.stage, "proposal"));
    CHECK(str_is(f.ev.pipeline, "enterprise"));
    CHECK(str_is(f.ev.reason, "price"));
    CHECK(f.ev.has_at);
    CHECK_INT(f.ev.at, 1700000000000LL);
    CHECK(f.ev.has_expect);
    CHECK_INT(f.ev.expect, 3);
    CHECK_INT(f.ev.amount_set, DF_SET);
    CHECK_INT(f.ev.amount.kind, DF_NUM_INT);
    CHECK_INT(f.ev.amount.i, 12000);
    CHECK_INT(f.ev.owner_set, DF_SET);
    CHECK(str_is(f.ev.owner, "ana"));
    CHECK_INT(f.ev.name_set, DF_ABSENT);
    CHECK_INT(f.ev.close_date_set, DF_ABSENT);
    CHECK_INT(f.ev.nstages, 0);
    CHECK(points_into(f.ev.id, &f.sb));
    CHECK(points_into(f.ev.deal, &f.sb));
    CHECK(points_into(f.ev.stage, &f.sb));
    CHECK(points_into(f.ev.owner, &f.sb));
    frame_free(&f);

    /* the minimum; a negative `at`; float and clearing amounts; nil owner */
    CHECK_INT(frame_decode(&f, "{'type':'stage','stage':'lead','deal':'d','id':'x','at':-5,"
                               "'amount':99.5,'owner':null}"),
              0);
    CHECK(!f.ev.has_expect);
    CHECK(f.ev.has_at);
    CHECK_INT(f.ev.at, -5);
    CHECK_INT(f.ev.pipeline.len, 0);
    CHECK_INT(f.ev.reason.len, 0);
    CHECK_INT(f.ev.amount_set, DF_SET);
    CHECK_INT(f.ev.amount.kind, DF_NUM_FLOAT);
    CHECK(f.ev.amount.f == 99.5);
    CHECK_INT(f.ev.owner_set, DF_NIL);
    frame_free(&f);

    CHECK_INT(frame_decode(&f, "{'id':'x','type':'stage','deal':'d','stage':'lead',"
                               "'amount':null,'at':9223372036854775807}"),
              0);
    CHECK_INT(f.ev.amount_set, DF_NIL);
    CHECK_INT(f.ev.amount.kind, DF_NUM_NONE);
    CHECK_INT(f.ev.at, INT64_MAX);
    CHECK_INT(f.ev.owner_set, DF_ABSENT);
    CHECK(f.ev.has_at);
    frame_free(&f);

    CHECK_INT(frame_decode(&f, "{'id':'x','type':'stage','deal':'d','stage':'lead',"
                               "'amount':-250,'at':0,'expect':0}"),
              0);
    CHECK_INT(f.ev.amount.kind, DF_NUM_INT);
    CHECK_INT(f.ev.amount.i, -250);
    CHECK(f.ev.has_at);
    CHECK_INT(f.ev.at, 0);
    CHECK(f.ev.has_expect);
    CHECK_INT(f.ev.expect, 0);
    frame_free(&f);

    CHECK_INT(frame_decode(&f, "{'id':'x','type':'stage','deal':'d','stage':'lead',"
                               "'amount':2.5f}"),
              0);
    CHECK_INT(f.ev.amount.kind, DF_NUM_FLOAT);
    CHECK(f.ev.amount.f == 2.5);
    frame_free(&f);

    /* keys of other types are kept, not read; limits are inclusive */
    CHECK_INT(frame_decode(&f, fmt("{'id':'%s','type':'stage','deal':'%s','stage':'%s',"
                                   "'kind':5,'name':[],'stages':null,'close_date':'x'}",
                                   repeat('i', 128), repeat('d', 128), repeat('s', 128))),
              0);
    CHECK_INT(f.ev.id.len, 128);
    CHECK_INT(f.ev.deal.len, 128);
    CHECK_INT(f.ev.stage.len, 128);
    CHECK_INT(f.ev.kind.len, 0);
    CHECK_INT(f.ev.name_set, DF_ABSENT);
    CHECK_INT(f.ev.close_date_set, DF_ABSENT);
    frame_free(&f);

    /* ids may hold any byte; names may not hold NUL */
    CHECK_INT(frame_decode(&f, "{'id':'a\\0b','type':'stage','deal':'\\0','stage':'lead'}"), 0);
    CHECK_INT(f.ev.id.len, 3);
    CHECK_INT(f.ev.deal.len, 1);
    frame_free(&f);
}

static void test_decode_activity(void)
{
    frame f;
    CHECK_INT(frame_decode(&f, "{'id':'a1','type':'activity','deal':'d1','kind':'call',"
                               "'actor':'bo','note':'','at':5,'amount':'ignored'}"),
              0);
    CHECK_INT(f.ev.type, DF_EV_ACTIVITY);
    CHECK(str_is(f.ev.kind, "call"));
    CHECK(str_is(f.ev.actor, "bo"));
    CHECK_INT(f.ev.note.len, 0);
    CHECK_INT(f.ev.amount_set, DF_ABSENT);
    frame_free(&f);

    CHECK_INT(frame_decode(&f, fmt("{'id':'a1','type':'activity','deal':'d1','kind':'%s'}",
                                   repeat('k', 64))),
              0);
    CHECK_INT(f.ev.kind.len, 64);
    CHECK_INT(f.ev.actor.len, 0);
    CHECK(!f.ev.has_at);
    frame_free(&f);
}

static void test_decode_update(void)
{
    frame f;
    CHECK_INT(frame_decode(&f, "{'id':'u1','type':'update','deal':'d1','amount':5000,"
                               "'owner':'cy','name':'Big deal','product':'Pro',"
                               "'close_date':1710000000000}"),
              0);
    CHECK_INT(f.ev.type, DF_EV_UPDATE);
    CHECK_INT(f.ev.amount_set, DF_SET);
    CHECK_INT(f.ev.amount.i, 5000);
    CHECK_INT(f.ev.owner_set, DF_SET);
    CHECK(str_is(f.ev.owner, "cy"));
    CHECK_INT(f.ev.name_set, DF_SET);
    CHECK(str_is(f.ev.name, "Big deal"));
    CHECK_INT(f.ev.product_set, DF_SET);
    CHECK(str_is(f.ev.product, "Pro"));
    CHECK_INT(f.ev.close_date_set, DF_SET);
    CHECK_INT(f.ev.close_date, 1710000000000LL);
    frame_free(&f);

    CHECK_INT(frame_decode(&f, "{'id':'u2','type':'update','deal':'d1','amount':null,"
                               "'owner':null,'name':null,'product':null,'close_date':null}"),
              0);
    CHECK_INT(f.ev.amount_set, DF_NIL);
    CHECK_INT(f.ev.owner_set, DF_NIL);
    CHECK_INT(f.ev.name_set, DF_NIL);
    CHECK_INT(f.ev.product_set, DF_NIL);
    CHECK_INT(f.ev.close_date_set, DF_NIL);
    frame_free(&f);

    CHECK_INT(frame_decode(&f, fmt("{'id':'u3','type':'update','deal':'d1','name':'',"
                                   "'product':'%s','close_date':-1}",
                                   repeat('p', 255))),
              0);
    CHECK_INT(f.ev.name_set, DF_SET);
    CHECK_INT(f.ev.name.len, 0);
    CHECK_INT(f.ev.product.len, 255);
    CHECK_INT(f.ev.close_date, -1);
    frame_free(&f);

    /* an update that sets nothing is valid and changes nothing */
    CHECK_INT(frame_decode(&f, "{'id':'u4','type':'update','deal':'d1'}"), 0);
    CHECK_INT(f.ev.amount_set, DF_ABSENT);
    frame_free(&f);
}

static void test_decode_pipeline(void)
{
    frame f;
    CHECK_INT(frame_decode(&f, "{'id':'p1','type':'pipeline','pipeline':'smb','stages':["
                               "{'name':'new','probability':5,'rot_days':7},"
                               "{'name':'demo','probability':50,'rot_days':null,'color':'red'},"
                               "{'name':'won','probability':100,'outcome':'won'},"
                               "{'name':'lost','probability':0,'outcome':'lost','rot_days':0},"
                               "{'outcome':'open','probability':30,'name':'stalled'}]}"),
              0);
    CHECK_INT(f.ev.type, DF_EV_PIPELINE);
    CHECK(str_is(f.ev.pipeline, "smb"));
    CHECK_INT(f.ev.deal.len, 0);
    CHECK_INT(f.ev.nstages, 5);
    CHECK(str_is(f.ev.stages[0].name, "new"));
    CHECK_INT(f.ev.stages[0].probability, 5);
    CHECK_INT(f.ev.stages[0].rot_days, 7);
    CHECK_INT(f.ev.stages[0].outcome, DF_OPEN);
    CHECK(str_is(f.ev.stages[1].name, "demo"));
    CHECK_INT(f.ev.stages[1].rot_days, -1);
    CHECK_INT(f.ev.stages[2].outcome, DF_WON);
    CHECK_INT(f.ev.stages[2].rot_days, -1);
    CHECK_INT(f.ev.stages[2].probability, 100);
    CHECK_INT(f.ev.stages[3].outcome, DF_LOST);
    CHECK_INT(f.ev.stages[3].rot_days, 0);
    CHECK(str_is(f.ev.stages[4].name, "stalled"));
    CHECK_INT(f.ev.stages[4].outcome, DF_OPEN);
    CHECK(points_into(f.ev.stages[4].name, &f.sb));
    frame_free(&f);

    /* a deal key on a pipeline event is kept, not read */
    CHECK_INT(frame_decode(&f, "{'id':'p2','type':'pipeline','pipeline':'x','deal':5,"
                               "'stages':[{'name':'a','probability':0}]}"),
              0);
    CHECK_INT(f.ev.deal.len, 0);
    CHECK_INT(f.ev.nstages, 1);
    frame_free(&f);

    /* 64 stages are allowed */
    char text[8192];
    size_t n = (size_t)snprintf(text, sizeof text,
                                "{'id':'p3','type':'pipeline','pipeline':'big','stages':[");
    for (int i = 0; i < DF_MAX_STAGES; i++)
        n += (size_t)snprintf(text + n, sizeof text - n, "%s{'name':'s%d','probability':%d}",
                              i ? "," : "", i, i % 101);
    snprintf(text + n, sizeof text - n, "]}");
    CHECK_INT(frame_decode(&f, text), 0);
    CHECK_INT(f.ev.nstages, DF_MAX_STAGES);
    CHECK(str_is(f.ev.stages[63].name, "s63"));
    frame_free(&f);
}

/* ---- decoding bad events --------------------------------------------------- */

static void expect_rejected(const char *text, const char *in_message, int line)
{
    frame f;
    int rc = frame_decode(&f, text);
    if (rc == DF_EBAD_REQUEST && f.err.code == DF_EBAD_REQUEST &&
        strstr(f.err.message, in_message) != NULL) {
        df_checks_passed++;
    } else {
        df_checks_failed++;
        fprintf(stderr, "%s:%d: %.120s\n  gave %d \"%s\", expected bad_request naming \"%s\"\n",
                __FILE__, line, text, rc, f.err.message, in_message);
    }
    frame_free(&f);
}

#define REJECTED(text, in_message) expect_rejected((text), (in_message), __LINE__)

#define STAGE_EV    "'id':'e','type':'stage','deal':'d','stage':'lead'"
#define ACTIVITY_EV "'id':'e','type':'activity','deal':'d','kind':'call'"
#define UPDATE_EV   "'id':'e','type':'update','deal':'d'"
#define PIPELINE_EV "'id':'e','type':'pipeline','pipeline':'p'"

static void test_decode_rejects_common(void)
{
    REJECTED("['id']", "must be a map");
    REJECTED("{'type':'stage','deal':'d','stage':'lead'}", "`id` is required");
    REJECTED("{'id':'','type':'stage','deal':'d','stage':'lead'}", "`id` must be a string");
    REJECTED(fmt("{'id':'%s','type':'stage','deal':'d','stage':'lead'}", repeat('i', 129)),
             "`id` must be a string of 1..128 bytes");
    REJECTED("{'id':5,'type':'stage','deal':'d','stage':'lead'}", "`id`");
    REJECTED("{'id':b'e','type':'stage','deal':'d','stage':'lead'}", "`id`");
    REJECTED("{'id':null,'type':'stage','deal':'d','stage':'lead'}", "`id`");
    REJECTED("{'id':'redaction/7','type':'stage','deal':'d','stage':'lead'}",
             "ids starting with `redaction/` are the daemon's own");
    REJECTED("{'id':'e','deal':'d','stage':'lead'}", "`type` is required");
    REJECTED("{'id':'e','type':'stag','deal':'d','stage':'lead'}", "`type` must be");
    REJECTED("{'id':'e','type':'Stage','deal':'d','stage':'lead'}", "`type` must be");
    REJECTED("{'id':'e','type':'stages','deal':'d','stage':'lead'}", "`type` must be");
    REJECTED("{'id':'e','type':5,'deal':'d','stage':'lead'}", "`type` must be");
    REJECTED("{'id':'e','type':'stage','stage':'lead'}", "`deal` is required");
    REJECTED("{'id':'e','type':'activity','kind':'call'}", "`deal` is required");
    REJECTED("{'id':'e','type':'update'}", "`deal` is required");
    REJECTED("{'id':'e','type':'stage','deal':'','stage':'lead'}", "`deal` must be");
    REJECTED("{'id':'e','type':'stage','deal':null,'stage':'lead'}", "`deal` must be");
    REJECTED(fmt("{'id':'e','type':'stage','deal':'%s','stage':'lead'}", repeat('d', 129)),
             "`deal` must be a string of 1..128 bytes");
    REJECTED("{" STAGE_EV ",'at':1.5}", "`at` must be an integer");
    REJECTED("{" STAGE_EV ",'at':'1700000000000'}", "`at`");
    REJECTED("{" STAGE_EV ",'at':9223372036854775808}", "`at`");
    REJECTED("{" STAGE_EV ",'at':null}", "`at`");
    REJECTED("{" STAGE_EV ",'pipeline':''}", "`pipeline` must be a string of 1..128");
    REJECTED("{" STAGE_EV ",'pipeline':'a\\0b'}", "`pipeline`");
    REJECTED(fmt("{" STAGE_EV ",'pipeline':'%s'}", repeat('p', 129)), "`pipeline`");
    REJECTED("{" STAGE_EV ",'pipeline':7}", "`pipeline`");
    REJECTED("{" STAGE_EV ",'expect':-1}", "`expect` must be an integer >= 0");
    REJECTED("{" STAGE_EV ",'expect':1.0}", "`expect`");
    REJECTED("{" STAGE_EV ",'expect':'0'}", "`expect`");
    REJECTED("{" STAGE_EV ",'seq':1}", "`seq` is reserved");
    REJECTED("{" STAGE_EV ",'recv':1}", "`recv` is reserved");
    REJECTED("{" STAGE_EV ",'by':'me'}", "`by` is reserved");
    REJECTED("{" PIPELINE_EV ",'stages':[{'name':'a','probability':1}],'seq':null}",
             "`seq` is reserved");
    REJECTED("{" STAGE_EV ",'id':'again'}", "`id` twice");
    REJECTED("{" STAGE_EV ",'stage':'lead'}", "`stage` twice");
    REJECTED("{" STAGE_EV ",'x':1,'y':2,'x':3}", "`x` twice");
    /* many keys: duplicates are found by sorting */
    char text[4096];
    size_t n = (size_t)snprintf(text, sizeof text, "{" STAGE_EV);
    for (int i = 0; i < 40; i++)
        n += (size_t)snprintf(text + n, sizeof text - n, ",'k%d':%d", i, i);
    snprintf(text + n, sizeof text - n, ",'k17':0}");
    REJECTED(text, "`k17` twice");
    text[n] = '}';
    text[n + 1] = '\0';
    frame f;
    CHECK_INT(frame_decode(&f, text), 0);
    frame_free(&f);
    /* a key shown in a message is made printable */
    REJECTED("{" STAGE_EV ",'\\0\\0':1,'\\0\\0':2}", "`??` twice");
}

/* msgpack-c unpacks an empty str with a NULL pointer: two empty keys must
 * be compared without handing it to memcmp, whether the keys are few
 * (compared pairwise) or many (sorted). The first frame is what fuzzing sent
 * to the ingest socket. */
static void test_decode_empty_keys(void)
{
    static const char fuzzed[] = "\x82\xa0\xa0\xa0\x7f";
    msgpack_zone zone;
    msgpack_object obj;
    df_event ev;
    df_error err;
    msgpack_zone_init(&zone, 1024);
    CHECK_INT(df_msgpack_unpack(fuzzed, sizeof fuzzed - 1, &zone, &obj, &err), 0);
    CHECK_INT(df_event_decode(&obj, &ev, &err), DF_EBAD_REQUEST);
    CHECK(strstr(err.message, "the key `` twice") != NULL);
    msgpack_zone_destroy(&zone);

    REJECTED("{" STAGE_EV ",'':1,'':2}", "the key `` twice");
    REJECTED("{" PIPELINE_EV ",'stages':[{'name':'a','probability':1,'':1,'':2}]}",
             "`stages[0]` has the key `` twice");

    /* msgpack-c leaves an empty str NULL only until it has read another
     * str, and a map of more keys than are compared pairwise starts with a
     * map 16 header: objects built by hand show the sorted path */
    static const char *const fields[] = {"id", "e", "type", "stage", "deal", "d", "stage", "lead"};
    msgpack_object_kv kv[24];
    char names[18][4];
    msgpack_object map = {.type = MSGPACK_OBJECT_MAP, .via.map = {.size = 24, .ptr = kv}};
    memset(kv, 0, sizeof kv);
    for (int i = 0; i < 24; i++) {
        kv[i].key.type = MSGPACK_OBJECT_STR;
        kv[i].val.type = MSGPACK_OBJECT_POSITIVE_INTEGER;
        if (i < 4) {
            kv[i].key.via.str =
                (msgpack_object_str){(uint32_t)strlen(fields[2 * i]), fields[2 * i]};
            kv[i].val.type = MSGPACK_OBJECT_STR;
            kv[i].val.via.str =
                (msgpack_object_str){(uint32_t)strlen(fields[2 * i + 1]), fields[2 * i + 1]};
        } else if (i > 4 && i < 23) {
            snprintf(names[i - 5], sizeof names[i - 5], "k%d", i - 5);
            kv[i].key.via.str = (msgpack_object_str){(uint32_t)strlen(names[i - 5]), names[i - 5]};
        } /* else an empty key with a NULL ptr */
    }
    CHECK_INT(df_event_decode(&map, &ev, &err), DF_EBAD_REQUEST);
    CHECK(strstr(err.message, "the key `` twice") != NULL);
    CHECK(df_map_get(&map, "") == &kv[4].val);

    /* an empty str comes out of the getters as "", which callers may copy from */
    map.via.map.size = 5;
    kv[4].key.via.str = (msgpack_object_str){6, "reason"};
    kv[4].val.type = MSGPACK_OBJECT_STR;
    CHECK_INT(df_event_decode(&map, &ev, &err), 0);
    CHECK(ev.reason.len == 0 && ev.reason.ptr != NULL);
    df_str reason = {NULL, 0};
    CHECK(df_get_str(&map, "reason", &reason, NULL) && reason.len == 0 && reason.ptr != NULL);
}

static void test_decode_rejects_by_type(void)
{
    REJECTED("{'id':'e','type':'stage','deal':'d'}", "`stage` is required");
    REJECTED("{'id':'e','type':'stage','deal':'d','stage':''}", "`stage` must be a string");
    REJECTED("{'id':'e','type':'stage','deal':'d','stage':'le\\0ad'}", "`stage`");
    REJECTED(fmt("{'id':'e','type':'stage','deal':'d','stage':'%s'}", repeat('s', 129)), "`stage`");
    REJECTED("{'id':'e','type':'stage','deal':'d','stage':null}", "`stage`");
    REJECTED("{" STAGE_EV ",'amount':'100'}", "`amount` must be an integer, a finite float");
    REJECTED("{" STAGE_EV ",'amount':nan}", "`amount`");
    REJECTED("{" STAGE_EV ",'amount':inf}", "`amount`");
    REJECTED("{" STAGE_EV ",'amount':-inf}", "`amount`");
    REJECTED("{" STAGE_EV ",'amount':true}", "`amount`");
    REJECTED("{" STAGE_EV ",'amount':18446744073709551615}", "`amount`");
    /* beyond 2^53 the sums could not stay exact */
    REJECTED("{" STAGE_EV ",'amount':9007199254740993}", "`amount` must be within");
    REJECTED("{" STAGE_EV ",'amount':-9007199254740993}", "`amount` must be within");
    REJECTED("{" STAGE_EV ",'amount':9223372036854775807}", "`amount` must be within");
    REJECTED("{" STAGE_EV ",'amount':1e300}", "`amount` must be within");
    REJECTED("{'id':'e','type':'update','deal':'d','amount':-9007199254740994.0}",
             "`amount` must be within");
    REJECTED("{" STAGE_EV ",'owner':''}", "`owner` must be a string of 1..128");
    REJECTED("{" STAGE_EV ",'owner':'a\\0'}", "`owner`");
    REJECTED("{" STAGE_EV ",'owner':3}", "`owner`");
    REJECTED(fmt("{" STAGE_EV ",'owner':'%s'}", repeat('o', 129)), "`owner`");
    REJECTED("{" STAGE_EV ",'reason':5}", "`reason` must be a string");
    REJECTED("{" STAGE_EV ",'reason':null}", "`reason`");

    REJECTED("{'id':'e','type':'activity','deal':'d'}", "`kind` is required");
    REJECTED("{'id':'e','type':'activity','deal':'d','kind':''}", "`kind` must be a string");
    REJECTED(fmt("{'id':'e','type':'activity','deal':'d','kind':'%s'}", repeat('k', 65)),
             "`kind` must be a string of 1..64 bytes");
    REJECTED("{'id':'e','type':'activity','deal':'d','kind':1}", "`kind`");
    REJECTED("{" ACTIVITY_EV ",'actor':5}", "`actor` must be a string");
    REJECTED("{" ACTIVITY_EV ",'note':[]}", "`note` must be a string");

    REJECTED("{" UPDATE_EV ",'amount':{}}", "`amount`");
    REJECTED("{" UPDATE_EV ",'owner':''}", "`owner`");
    REJECTED(fmt("{" UPDATE_EV ",'name':'%s'}", repeat('n', 256)),
             "`name` must be a string of at most 255 bytes");
    REJECTED("{" UPDATE_EV ",'name':5}", "`name`");
    REJECTED(fmt("{" UPDATE_EV ",'product':'%s'}", repeat('p', 256)), "`product`");
    REJECTED("{" UPDATE_EV ",'close_date':'2024-01-01'}", "`close_date` must be an integer");
    REJECTED("{" UPDATE_EV ",'close_date':1.5}", "`close_date`");
    REJECTED("{" UPDATE_EV ",'close_date':9223372036854775808}", "`close_date`");

    REJECTED("{'id':'e','type':'pipeline','stages':[{'name':'a','probability':1}]}",
             "`pipeline` is required");
    REJECTED("{" PIPELINE_EV "}", "`stages` is required");
    REJECTED("{" PIPELINE_EV ",'stages':[]}", "`stages` must be an array of 1..64");
    REJECTED("{" PIPELINE_EV ",'stages':{}}", "`stages`");
    REJECTED("{" PIPELINE_EV ",'stages':null}", "`stages`");
    REJECTED("{" PIPELINE_EV ",'stages':[5]}", "`stages[0]` must be a map");
    REJECTED("{" PIPELINE_EV ",'stages':[{'probability':1}]}", "`stages[0].name` is required");
    REJECTED("{" PIPELINE_EV ",'stages':[{'name':'','probability':1}]}", "`stages[0].name`");
    REJECTED("{" PIPELINE_EV ",'stages':[{'name':'a\\0','probability':1}]}", "`stages[0].name`");
    REJECTED(fmt("{" PIPELINE_EV ",'stages':[{'name':'%s','probability':1}]}", repeat('n', 129)),
             "`stages[0].name`");
    REJECTED("{" PIPELINE_EV ",'stages':[{'name':'a','probability':1},{'name':'b'}]}",
             "`stages[1].probability` is required");
    REJECTED("{" PIPELINE_EV ",'stages':[{'name':'a','probability':101}]}",
             "`stages[0].probability` must be an integer 0..100");
    REJECTED("{" PIPELINE_EV ",'stages':[{'name':'a','probability':-1}]}", "probability");
    REJECTED("{" PIPELINE_EV ",'stages':[{'name':'a','probability':50.0}]}", "probability");
    REJECTED("{" PIPELINE_EV ",'stages':[{'name':'a','probability':null}]}", "probability");
    REJECTED("{" PIPELINE_EV ",'stages':[{'name':'a','probability':1,'rot_days':-1}]}",
             "`stages[0].rot_days` must be an integer >= 0");
    REJECTED("{" PIPELINE_EV ",'stages':[{'name':'a','probability':1,'rot_days':1.5}]}",
             "rot_days");
    REJECTED("{" PIPELINE_EV ",'stages':[{'name':'a','probability':1,'rot_days':'7'}]}",
             "rot_days");
    REJECTED("{" PIPELINE_EV ",'stages':[{'name':'a','probability':1,'outcome':'maybe'}]}",
             "`stages[0].outcome` must be");
    REJECTED("{" PIPELINE_EV ",'stages':[{'name':'a','probability':1,'outcome':'WON'}]}",
             "outcome");
    REJECTED("{" PIPELINE_EV ",'stages':[{'name':'a','probability':1,'outcome':null}]}", "outcome");
    REJECTED("{" PIPELINE_EV ",'stages':[{'name':'a','probability':1},{'name':'b',"
             "'probability':2},{'name':'a','probability':3}]}",
             "`stages[2].name` repeats the stage `a`");
    REJECTED("{" PIPELINE_EV ",'stages':[{'name':'a','probability':1,'name':'b'}]}",
             "`stages[0]` has the key `name` twice");
    REJECTED("{" PIPELINE_EV ",'stages':[{'name':'a','probability':1,'c':1,'c':2}]}",
             "`stages[0]` has the key `c` twice");

    char text[8192];
    size_t n = (size_t)snprintf(text, sizeof text, "{" PIPELINE_EV ",'stages':[");
    for (int i = 0; i <= DF_MAX_STAGES; i++)
        n += (size_t)snprintf(text + n, sizeof text - n, "%s{'name':'s%d','probability':1}",
                              i ? "," : "", i);
    snprintf(text + n, sizeof text - n, "]}");
    REJECTED(text, "`stages` must be an array of 1..64");
}

/* Decoding an object that did not come through the checker. */
static void test_decode_unchecked_object(void)
{
    static const char non_str_key[] = "\x82\xa2id\xa1x\x01\x02";
    msgpack_zone zone;
    msgpack_object obj;
    size_t off = 0;
    df_event ev;
    df_error err;

    msgpack_zone_init(&zone, 256);
    CHECK_INT(msgpack_unpack(non_str_key, sizeof non_str_key - 1, &off, &zone, &obj),
              MSGPACK_UNPACK_SUCCESS);
    CHECK_INT(df_event_decode(&obj, &ev, &err), DF_EBAD_REQUEST);
    CHECK(strstr(err.message, "keys must be strings") != NULL);
    CHECK_INT(df_event_decode(NULL, &ev, &err), DF_EBAD_REQUEST);
    msgpack_zone_destroy(&zone);
}

/* ---- the checker -------------------------------------------------------------- */

static int check_bytes(const void *bytes, size_t len)
{
    df_error err;
    memset(&err, 0, sizeof err);
    int rc = df_msgpack_check(bytes, len, &err);
    if (rc != 0)
        CHECK(err.code == DF_EBAD_REQUEST && err.message[0] != '\0');
    return rc;
}

#define CHECK_BYTES(lit) check_bytes((lit), sizeof(lit) - 1)

/* Every msgpack format, as one value each. */
static const struct {
    const char *bytes;
    size_t len;
} formats[] = {
#define F(lit)                                                                                     \
    {                                                                                              \
        lit, sizeof(lit) - 1                                                                       \
    }
    F("\x00"),
    F("\x7f"),
    F("\xe0"),
    F("\xff"),
    F("\x80"),
    F("\x90"),
    F("\xa0"),
    F("\xa3"
      "abc"),
    F("\xc0"),
    F("\xc2"),
    F("\xc3"),
    F("\xc4\x02xy"),
    F("\xc5\x00\x02xy"),
    F("\xc6\x00\x00\x00\x02xy"),
    F("\xc7\x02\x05xy"),
    F("\xc8\x00\x02\x05xy"),
    F("\xc9\x00\x00\x00\x02\x05xy"),
    F("\xca\x3f\xc0\x00\x00"),
    F("\xcb\x3f\xf8\x00\x00\x00\x00\x00\x00"),
    F("\xcc\xff"),
    F("\xcd\xff\xff"),
    F("\xce\xff\xff\xff\xff"),
    F("\xcf\xff\xff\xff\xff\xff\xff\xff\xff"),
    F("\xd0\x80"),
    F("\xd1\x80\x00"),
    F("\xd2\x80\x00\x00\x00"),
    F("\xd3\x80\x00\x00\x00\x00\x00\x00\x00"),
    F("\xd4\x05x"),
    F("\xd5\x05xy"),
    F("\xd6\x05wxyz"),
    F("\xd7\x05"
      "abcdefgh"),
    F("\xd8\x05"
      "abcdefghijklmnop"),
    F("\xd9\x02xy"),
    F("\xda\x00\x02xy"),
    F("\xdb\x00\x00\x00\x02xy"),
    F("\xdc\x00\x01\xc0"),
    F("\xdd\x00\x00\x00\x01\xc0"),
    F("\xde\x00\x01\xa1k\xc0"),
    F("\xdf\x00\x00\x00\x01\xa1k\xc0"),
    F("\x82\xa1k\x92\x01\xc3\xd9\x01z\x81\xa0\x90"),
#undef F
};

static void test_check_every_format(void)
{
    for (size_t i = 0; i < sizeof formats / sizeof formats[0]; i++) {
        const char *bytes = formats[i].bytes;
        size_t len = formats[i].len;
        char wrapped[64];
        msgpack_zone zone;
        msgpack_object obj;
        df_error err;

        CHECK_INT(check_bytes(bytes, len), 0);
        CHECK_INT(df_msgpack_skip(bytes, len), len);
        for (size_t cut = 0; cut < len; cut++) {
            CHECK_INT(check_bytes(bytes, cut), DF_EBAD_REQUEST);
            CHECK_INT(df_msgpack_skip(bytes, cut), 0);
        }
        /* as the value of a map, followed by another pair */
        wrapped[0] = (char)0x82;
        wrapped[1] = (char)0xa1;
        wrapped[2] = 'v';
        memcpy(wrapped + 3, bytes, len);
        memcpy(wrapped + 3 + len, "\xa1w\x01", 3);
        CHECK_INT(check_bytes(wrapped, len + 6), 0);
        CHECK_INT(df_msgpack_skip(wrapped + 3, len + 3), len);
        msgpack_zone_init(&zone, 256);
        CHECK_INT(df_msgpack_unpack(wrapped, len + 6, &zone, &obj, &err), 0);
        CHECK_INT(obj.type, MSGPACK_OBJECT_MAP);
        CHECK_INT(obj.via.map.size, 2);
        msgpack_zone_destroy(&zone);
        /* and with a byte too many */
        CHECK_INT(check_bytes(wrapped, len + 7), DF_EBAD_REQUEST);
    }
}

static void test_check_hostile(void)
{
    CHECK_INT(check_bytes("", 0), DF_EBAD_REQUEST);
    CHECK_INT(check_bytes(NULL, 0), DF_EBAD_REQUEST);
    /* counts that the bytes cannot hold: the unpacker would allocate them */
    CHECK_INT(CHECK_BYTES("\xdd\xff\xff\xff\xff"), DF_EBAD_REQUEST);
    CHECK_INT(CHECK_BYTES("\xdf\xff\xff\xff\xff"), DF_EBAD_REQUEST);
    CHECK_INT(CHECK_BYTES("\xdc\xff\xff"), DF_EBAD_REQUEST);
    CHECK_INT(CHECK_BYTES("\xde\xff\xff"), DF_EBAD_REQUEST);
    CHECK_INT(CHECK_BYTES("\x92\xc0\xdd\x00\x00\x00\x02\xc0"), DF_EBAD_REQUEST);
    CHECK_INT(CHECK_BYTES("\x91\xdd\x00\x00\x00\x02\xc0\xc0"), 0);
    /* a map's pairs need two bytes each */
    CHECK_INT(CHECK_BYTES("\x82\xa1k\xc0\xa1j"), DF_EBAD_REQUEST);
    CHECK_INT(CHECK_BYTES("\x81\xa1k"), DF_EBAD_REQUEST);
    /* open containers all need their bytes, not only the innermost */
    CHECK_INT(CHECK_BYTES("\x93\x92\xc0\xc0\xc0"), DF_EBAD_REQUEST);
    /* lengths past the end */
    CHECK_INT(CHECK_BYTES("\xdb\xff\xff\xff\xff"
                          "abc"),
              DF_EBAD_REQUEST);
    CHECK_INT(CHECK_BYTES("\xc6\xff\xff\xff\xff"
                          "abc"),
              DF_EBAD_REQUEST);
    CHECK_INT(CHECK_BYTES("\xc9\xff\xff\xff\xff\x01"
                          "abc"),
              DF_EBAD_REQUEST);
    CHECK_INT(CHECK_BYTES("\x81\xdb\xff\xff\xff\xff\xc0"), DF_EBAD_REQUEST);
    CHECK_INT(CHECK_BYTES("\xa5"
                          "abcd"),
              DF_EBAD_REQUEST);
    /* the reserved byte */
    CHECK_INT(CHECK_BYTES("\xc1"), DF_EBAD_REQUEST);
    CHECK_INT(CHECK_BYTES("\x91\xc1"), DF_EBAD_REQUEST);
    CHECK_INT(CHECK_BYTES("\x81\xa1k\xc1"), DF_EBAD_REQUEST);
    /* one object, nothing after it */
    CHECK_INT(CHECK_BYTES("\xc0\xc0"), DF_EBAD_REQUEST);
    CHECK_INT(CHECK_BYTES("\x80\x80"), DF_EBAD_REQUEST);
    CHECK_INT(CHECK_BYTES("\x91\x01\x02"), DF_EBAD_REQUEST);
    /* map keys are strings at every depth */
    CHECK_INT(CHECK_BYTES("\x81\x01\x02"), DF_EBAD_REQUEST);
    CHECK_INT(CHECK_BYTES("\x81\xc4\x01k\x02"), DF_EBAD_REQUEST);
    CHECK_INT(CHECK_BYTES("\x81\xc0\x02"), DF_EBAD_REQUEST);
    CHECK_INT(CHECK_BYTES("\x81\x90\x02"), DF_EBAD_REQUEST);
    CHECK_INT(CHECK_BYTES("\x81\x80\x02"), DF_EBAD_REQUEST);
    CHECK_INT(CHECK_BYTES("\x81\xa1k\x81\xa1j\x81\x05\x06"), DF_EBAD_REQUEST);
    CHECK_INT(CHECK_BYTES("\x91\x81\xa1k\x92\x00\x81\xcc\x01\x02"), DF_EBAD_REQUEST);
    CHECK_INT(CHECK_BYTES("\x82\xa1k\x01\x02\x03"), DF_EBAD_REQUEST);
    CHECK_INT(CHECK_BYTES("\x82\xa1k\x01\xa1j\x03"), 0);
    /* values of any type are fine, also as map values */
    CHECK_INT(CHECK_BYTES("\x81\xa1k\x81\xa1j\x81\xa0\x06"), 0);
}

static void test_check_depth(void)
{
    unsigned char bytes[128];
    for (int depth = 1; depth <= 100; depth++) {
        memset(bytes, 0x91, (size_t)depth);
        bytes[depth] = 0xc0;
        CHECK_INT(check_bytes(bytes, (size_t)depth + 1),
                  depth <= DF_MAX_DEPTH ? 0 : DF_EBAD_REQUEST);
        /* skip has no depth limit and no stack */
        CHECK_INT(df_msgpack_skip((const char *)bytes, (size_t)depth + 1), depth + 1);
        /* an empty container is a level too */
        bytes[depth] = 0x90;
        CHECK_INT(check_bytes(bytes, (size_t)depth + 1),
                  depth < DF_MAX_DEPTH ? 0 : DF_EBAD_REQUEST);
    }
    /* maps count as levels like arrays */
    size_t n = 0;
    for (int i = 0; i < DF_MAX_DEPTH; i++) {
        bytes[n++] = 0x81;
        bytes[n++] = 0xa1;
        bytes[n++] = 'k';
    }
    bytes[n++] = 0xc0;
    CHECK_INT(check_bytes(bytes, n), 0);
    bytes[n - 1] = 0x91;
    bytes[n++] = 0xc0;
    CHECK_INT(check_bytes(bytes, n), DF_EBAD_REQUEST);
    /* going back up frees the level */
    static const char siblings[] = "\x92\x91\x91\x91\xc0\x91\x91\x91\xc0";
    CHECK_INT(CHECK_BYTES(siblings), 0);
    df_error err;
    memset(bytes, 0x91, 100);
    bytes[100] = 0xc0;
    CHECK_INT(df_msgpack_check((const char *)bytes, 101, &err), DF_EBAD_REQUEST);
    CHECK(strstr(err.message, "deeper") != NULL);
}

/* An array of `count` nils (array32 header), optionally inside a fixarray. */
static size_t make_nil_array(char *buf, uint32_t count, bool nested)
{
    size_t n = 0;
    if (nested)
        buf[n++] = (char)0x91;
    buf[n++] = (char)0xdd;
    buf[n++] = (char)(count >> 24);
    buf[n++] = (char)(count >> 16);
    buf[n++] = (char)(count >> 8);
    buf[n++] = (char)count;
    memset(buf + n, 0xc0, count);
    return n + count;
}

static void test_check_node_limit(void)
{
    char *buf = malloc(300010);
    df_error err;
    size_t len;

    len = make_nil_array(buf, 300000, false);
    CHECK_INT(df_msgpack_check(buf, len, &err), DF_EBAD_REQUEST);
    CHECK(strstr(err.message, "objects") != NULL);
    len = make_nil_array(buf, 300000, true);
    CHECK_INT(df_msgpack_check(buf, len, &err), DF_EBAD_REQUEST);
    /* the array itself and its elements: DF_MAX_NODES in all is the most */
    len = make_nil_array(buf, DF_MAX_NODES - 1, false);
    CHECK_INT(df_msgpack_check(buf, len, &err), 0);
    len = make_nil_array(buf, DF_MAX_NODES, false);
    CHECK_INT(df_msgpack_check(buf, len, &err), DF_EBAD_REQUEST);
    len = make_nil_array(buf, DF_MAX_NODES - 1, true);
    CHECK_INT(df_msgpack_check(buf, len, &err), DF_EBAD_REQUEST);
    /* spread over many small arrays: counted as they come */
    len = 0;
    buf[len++] = (char)0xdc;
    buf[len++] = (char)(40000 >> 8);
    buf[len++] = (char)(40000 & 0xff);
    for (int i = 0; i < 40000; i++) {
        buf[len++] = (char)0x93;
        memset(buf + len, 0xc0, 3);
        len += 3;
    }
    CHECK_INT(df_msgpack_check(buf, len, &err), 0);
    CHECK_INT(df_msgpack_skip(buf, len), len);
    buf[1] = (char)(60000 >> 8);
    buf[2] = (char)(60000 & 0xff);
    for (int i = 40000; i < 60000; i++) {
        buf[len++] = (char)0x93;
        memset(buf + len, 0xc0, 3);
        len += 3;
    }
    CHECK_INT(df_msgpack_check(buf, len, &err), DF_EBAD_REQUEST);
    free(buf);
}

static void test_skip(void)
{
    CHECK_INT(df_msgpack_skip("\xc0\xc0", 2), 1);
    CHECK_INT(df_msgpack_skip("\x92\x01\x02\x03", 4), 3);
    CHECK_INT(df_msgpack_skip("\x81\xa1k\x91\x05", 5), 5);
    CHECK_INT(df_msgpack_skip("\xdd\xff\xff\xff\xff", 5), 0);
    CHECK_INT(df_msgpack_skip("\xdf\xff\xff\xff\xff", 5), 0);
    CHECK_INT(df_msgpack_skip("\xdb\xff\xff\xff\xff"
                              "ab",
                              7),
              0);
    CHECK_INT(df_msgpack_skip("\xc1", 1), 0);
    CHECK_INT(df_msgpack_skip("\x91\xc1", 2), 0);
    CHECK_INT(df_msgpack_skip("", 0), 0);
    CHECK_INT(df_msgpack_skip(NULL, 5), 0);
}

static void test_truncated_event(void)
{
    msgpack_sbuffer sb;
    encode("{'id':'e1','type':'stage','deal':'d1','stage':'proposal','at':1700000000000,"
           "'amount':1.5,'owner':'ana','meta':{'tags':['a','b'],'n':-70000,'bin':b'xyz'}}",
           &sb);
    CHECK_INT(check_bytes(sb.data, sb.size), 0);
    for (size_t cut = 0; cut < sb.size; cut++) {
        CHECK_INT(check_bytes(sb.data, cut), DF_EBAD_REQUEST);
        CHECK_INT(df_msgpack_skip(sb.data, cut), 0);
    }
    /* a truncated copy in its own allocation, so that ASan sees any overread */
    for (size_t cut = 0; cut < sb.size; cut++) {
        char *copy = malloc(cut + 1);
        memcpy(copy, sb.data, cut);
        CHECK_INT(check_bytes(copy, cut), DF_EBAD_REQUEST);
        free(copy);
    }
    msgpack_sbuffer_destroy(&sb);
}

/* ---- unpacking -------------------------------------------------------------- */

static void test_unpack(void)
{
    msgpack_sbuffer sb;
    msgpack_zone zone;
    msgpack_object obj;
    df_error err;

    encode("{'id':'e1','list':[1,'two',{'three':3}]}", &sb);
    msgpack_zone_init(&zone, 1024);
    CHECK_INT(df_msgpack_unpack(sb.data, sb.size, &zone, &obj, &err), 0);
    CHECK_INT(obj.type, MSGPACK_OBJECT_MAP);
    CHECK_INT(obj.via.map.size, 2);
    const msgpack_object *id = df_map_get(&obj, "id");
    CHECK(id != NULL && id->type == MSGPACK_OBJECT_STR);
    if (id != NULL)
        CHECK(id->via.str.ptr >= sb.data && id->via.str.ptr < sb.data + sb.size);
    /* unpack refuses what the checker refuses */
    CHECK_INT(df_msgpack_unpack(sb.data, sb.size - 1, &zone, &obj, &err), DF_EBAD_REQUEST);
    CHECK_INT(df_msgpack_unpack("\xdd\xff\xff\xff\xff", 5, &zone, &obj, &err), DF_EBAD_REQUEST);
    CHECK_INT(df_msgpack_unpack("\xc0\xc0", 2, &zone, &obj, &err), DF_EBAD_REQUEST);
    msgpack_zone_destroy(&zone);
    msgpack_sbuffer_destroy(&sb);
}

/* ---- recording ---------------------------------------------------------------- */

/* Header length of the raw map at buf and its pair count. */
static size_t raw_map_header(const char *buf, uint32_t *count)
{
    unsigned char b = (unsigned char)buf[0];
    const unsigned char *u = (const unsigned char *)buf;
    if (b >= 0x80 && b <= 0x8f) {
        *count = b & 0x0f;
        return 1;
    }
    if (b == 0xde) {
        *count = (uint32_t)u[1] << 8 | u[2];
        return 3;
    }
    if (b == 0xdf) {
        *count = (uint32_t)u[1] << 24 | (uint32_t)u[2] << 16 | (uint32_t)u[3] << 8 | u[4];
        return 5;
    }
    *count = 0;
    return 0;
}

/* The raw bytes of the value of `key` in the raw map buf[0..len), or NULL. */
static const char *raw_value(const char *buf, size_t len, const char *key, size_t *value_len)
{
    uint32_t count;
    size_t pos = raw_map_header(buf, &count);
    size_t key_len = strlen(key);
    for (uint32_t i = 0; i < count && pos > 0; i++) {
        size_t klen = df_msgpack_skip(buf + pos, len - pos);
        size_t vlen = df_msgpack_skip(buf + pos + klen, len - pos - klen);
        if (klen == key_len + 1 && memcmp(buf + pos + 1, key, key_len) == 0) {
            *value_len = vlen;
            return buf + pos + klen;
        }
        pos += klen + vlen;
    }
    return NULL;
}

/* Every key of the original but `expect` is in the record with the same bytes. */
static void check_record_keeps(const msgpack_sbuffer *original, const char *rec, size_t rec_len)
{
    uint32_t count;
    size_t pos = raw_map_header(original->data, &count);
    for (uint32_t i = 0; i < count; i++) {
        size_t klen = df_msgpack_skip(original->data + pos, original->size - pos);
        size_t vlen = df_msgpack_skip(original->data + pos + klen, original->size - pos - klen);
        char key[64];
        size_t recorded_len = 0;
        memcpy(key, original->data + pos + 1, klen - 1);
        key[klen - 1] = '\0';
        const char *recorded = raw_value(rec, rec_len, key, &recorded_len);
        if (strcmp(key, "expect") == 0) {
            CHECK(recorded == NULL);
        } else {
            CHECK(recorded != NULL && recorded_len == vlen &&
                  memcmp(recorded, original->data + pos + klen, vlen) == 0);
        }
        pos += klen + vlen;
    }
}

static void test_record(void)
{
    msgpack_sbuffer sb, out;
    msgpack_zone zone;
    msgpack_object obj;
    df_error err;
    uint64_t u = 0;
    int64_t i = 0;
    bool bad = false;

    encode("{'id':'e1','type':'stage','deal':'d1','expect':4,'stage':'won','amount':1.25,"
           "'f32':2.5f,'meta':{'tags':['a',null,true],'n':-70000},'bin':b'\\0\\0',"
           "'ext':x'abc','big':18446744073709551615}",
           &sb);
    msgpack_sbuffer_init(&out);
    msgpack_sbuffer_write(&out, "zz", 2);
    CHECK_INT(df_event_record(sb.data, sb.size, 42, 1700000000123LL, true, &out), 0);
    CHECK(memcmp(out.data, "zz", 2) == 0);
    const char *rec = out.data + 2;
    size_t rec_len = out.size - 2;
    CHECK_INT(check_bytes(rec, rec_len), 0);
    check_record_keeps(&sb, rec, rec_len);
    msgpack_zone_init(&zone, 1024);
    CHECK_INT(df_msgpack_unpack(rec, rec_len, &zone, &obj, &err), 0);
    CHECK_INT(obj.via.map.size, 11 - 1 + 3);
    CHECK(df_get_uint(&obj, "seq", &u, &bad) && u == 42);
    CHECK(df_get_int(&obj, "recv", &i, &bad) && i == 1700000000123LL);
    CHECK(df_get_int(&obj, "at", &i, &bad) && i == 1700000000123LL);
    CHECK(df_map_get(&obj, "expect") == NULL);
    CHECK(!bad);
    /* the recorded keys come in the sender's order, then seq, recv, at */
    CHECK_INT(obj.via.map.ptr[0].key.via.str.size, 2);
    CHECK(memcmp(obj.via.map.ptr[3].key.via.str.ptr, "stage", 5) == 0);
    CHECK(memcmp(obj.via.map.ptr[10].key.via.str.ptr, "seq", 3) == 0);
    CHECK(memcmp(obj.via.map.ptr[12].key.via.str.ptr, "at", 2) == 0);
    msgpack_zone_destroy(&zone);

    /* appended again, with `at` given by the sender: no `at` added */
    size_t second = out.size;
    msgpack_sbuffer_destroy(&sb);
    encode("{'at':-1,'id':'e2','type':'activity','deal':'d1','kind':'call'}", &sb);
    CHECK_INT(df_event_record(sb.data, sb.size, UINT64_MAX, -7, false, &out), 0);
    CHECK_INT(check_bytes(out.data + second, out.size - second), 0);
    check_record_keeps(&sb, out.data + second, out.size - second);
    msgpack_zone_init(&zone, 1024);
    CHECK_INT(df_msgpack_unpack(out.data + second, out.size - second, &zone, &obj, &err), 0);
    CHECK_INT(obj.via.map.size, 7);
    CHECK(df_get_uint(&obj, "seq", &u, &bad) && u == UINT64_MAX);
    CHECK(df_get_int(&obj, "recv", &i, &bad) && i == -7);
    CHECK(df_get_int(&obj, "at", &i, &bad) && i == -1);
    msgpack_zone_destroy(&zone);

    /* `expect` first or last */
    static const char *const placements[] = {
        "{'expect':0,'id':'e','type':'update','deal':'d'}",
        "{'id':'e','type':'update','deal':'d','expect':0}",
        "{'expect':0}",
        "{}",
    };
    for (size_t k = 0; k < sizeof placements / sizeof placements[0]; k++) {
        msgpack_sbuffer_destroy(&sb);
        encode(placements[k], &sb);
        size_t start = out.size;
        CHECK_INT(df_event_record(sb.data, sb.size, 1, 2, true, &out), 0);
        CHECK_INT(check_bytes(out.data + start, out.size - start), 0);
        check_record_keeps(&sb, out.data + start, out.size - start);
        msgpack_zone_init(&zone, 1024);
        CHECK_INT(df_msgpack_unpack(out.data + start, out.size - start, &zone, &obj, &err), 0);
        CHECK(df_map_get(&obj, "expect") == NULL);
        CHECK(df_get_int(&obj, "at", &i, &bad) && i == 2);
        msgpack_zone_destroy(&zone);
    }

    /* a map that grows past 15 pairs gets a map16 header */
    msgpack_sbuffer_destroy(&sb);
    encode("{'a':1,'b':2,'c':3,'d':4,'e':5,'f':6,'g':7,'h':8,'i':9,'j':10,'k':11,'l':12,"
           "'m':13,'n':14,'o':15}",
           &sb);
    size_t start = out.size;
    CHECK_INT(df_event_record(sb.data, sb.size, 1, 2, false, &out), 0);
    CHECK_INT((unsigned char)out.data[start], 0xde);
    CHECK_INT(check_bytes(out.data + start, out.size - start), 0);
    check_record_keeps(&sb, out.data + start, out.size - start);

    /* what cannot be recorded leaves out as it was */
    static const char *const refused[] = {
        "{'id':'e','seq':1}",
        "{'id':'e','recv':1}",
        "{'id':'e','at':5}",
        "{'id':'e','by':'me'}",
        "{'expect':1,'expect':2}",
        "['id']",
        "'id'",
    };
    for (size_t k = 0; k < sizeof refused / sizeof refused[0]; k++) {
        msgpack_sbuffer_destroy(&sb);
        encode(refused[k], &sb);
        size_t before = out.size;
        CHECK_INT(df_event_record(sb.data, sb.size, 1, 2, true, &out), DF_EBAD_REQUEST);
        CHECK_INT(out.size, before);
    }
    size_t before = out.size;
    CHECK_INT(df_event_record("\x82\xa1k\x01", 4, 1, 2, true, &out), DF_EBAD_REQUEST);
    CHECK_INT(df_event_record("\x81\x01\x02", 3, 1, 2, true, &out), DF_EBAD_REQUEST);
    CHECK_INT(df_event_record("\x81\xa1k\x01\xc0", 5, 1, 2, true, &out), DF_EBAD_REQUEST);
    CHECK_INT(df_event_record("\xdf\xff\xff\xff\xff", 5, 1, 2, true, &out), DF_EBAD_REQUEST);
    CHECK_INT(df_event_record("", 0, 1, 2, true, &out), DF_EBAD_REQUEST);
    CHECK_INT(out.size, before);

    /* with a key, the sender's name follows recv */
    msgpack_sbuffer_destroy(&sb);
    encode("{'id':'e','type':'activity','deal':'d','kind':'call'}", &sb);
    before = out.size;
    CHECK_INT(df_event_record_by(sb.data, sb.size, 7, 8, true, (df_str){"prod-1", 6}, &out), 0);
    {
        df_str by;
        df_event ev;
        msgpack_zone_init(&zone, 1024);
        CHECK_INT(df_msgpack_unpack(out.data + before, out.size - before, &zone, &obj, &err), 0);
        CHECK_INT(obj.via.map.size, 4 + 4);
        CHECK(df_get_str(&obj, "by", &by, &bad) && df_str_eq(by, "prod-1"));
        CHECK_INT(df_recorded_decode(&obj, &ev, &err), 0);
        msgpack_zone_destroy(&zone);
    }

    msgpack_sbuffer_destroy(&sb);
    msgpack_sbuffer_destroy(&out);
}

static void test_raw_helpers(void)
{
    uint32_t count = 0;
    size_t header = 0;
    CHECK(df_msgpack_array_header("\x92\x01\x02", 3, &count, &header));
    CHECK_INT(count, 2);
    CHECK_INT(header, 1);
    CHECK(df_msgpack_array_header("\xdc\x01\x00", 3, &count, &header));
    CHECK_INT(count, 256);
    CHECK_INT(header, 3);
    CHECK(df_msgpack_array_header("\xdd\x00\x01\x00\x00\xc0", 6, &count, &header));
    CHECK_INT(count, 65536);
    CHECK_INT(header, 5);
    CHECK(!df_msgpack_array_header("\x81\xa1k\xc0", 4, &count, &header));
    CHECK(!df_msgpack_array_header("\xdc\x00", 2, &count, &header));
    CHECK(!df_msgpack_array_header("\xc1", 1, &count, &header));
    CHECK(!df_msgpack_array_header("", 0, &count, &header));

    msgpack_sbuffer req, events;
    const char *value = NULL;
    size_t value_len = 0;
    encode("{'op':'append','nested':{'events':1},'events':[{'id':'e1'},{'id':'e2'}],'x':1}", &req);
    encode("[{'id':'e1'},{'id':'e2'}]", &events);
    CHECK(df_msgpack_map_find(req.data, req.size, "events", &value, &value_len));
    CHECK(value_len == events.size && memcmp(value, events.data, events.size) == 0);
    CHECK(df_msgpack_map_find(req.data, req.size, "op", &value, &value_len));
    CHECK(value_len == 7 && memcmp(value,
                                   "\xa6"
                                   "append",
                                   7) == 0);
    CHECK(df_msgpack_map_find(req.data, req.size, "x", &value, &value_len));
    CHECK(value_len == 1 && value[0] == 1);
    CHECK(!df_msgpack_map_find(req.data, req.size, "event", &value, &value_len));
    CHECK(!df_msgpack_map_find(req.data, req.size, "", &value, &value_len));
    CHECK(!df_msgpack_map_find(events.data, events.size, "id", &value, &value_len));
    /* a truncated map: found up to where it is intact */
    CHECK(df_msgpack_map_find(req.data, req.size - 2, "op", &value, &value_len));
    CHECK(!df_msgpack_map_find(req.data, req.size - 2, "x", &value, &value_len));
    CHECK(!df_msgpack_map_find("\x81\x01\x02", 3, "k", &value, &value_len));
    CHECK(!df_msgpack_map_find("\xdf\xff\xff\xff\xff", 5, "k", &value, &value_len));
    msgpack_sbuffer_destroy(&req);
    msgpack_sbuffer_destroy(&events);
}

static bool head_is(const char *buf, size_t len, df_msgpack_type type, uint32_t count,
                    size_t header_size, size_t size)
{
    df_msgpack_header h;
    return df_msgpack_head(buf, len, &h) && h.type == type && h.count == count &&
           h.header_size == header_size && h.size == size;
}

static void test_reader(void)
{
    CHECK(head_is("\x05", 1, DF_MSGPACK_UINT, 0, 1, 1));
    CHECK(head_is("\xe0", 1, DF_MSGPACK_INT, 0, 1, 1));
    CHECK(head_is("\xcd\x01\x00", 3, DF_MSGPACK_UINT, 0, 3, 3));
    CHECK(head_is("\xd3\0\0\0\0\0\0\0\0", 9, DF_MSGPACK_INT, 0, 9, 9));
    CHECK(head_is("\xc0", 1, DF_MSGPACK_NIL, 0, 1, 1));
    CHECK(head_is("\xc3", 1, DF_MSGPACK_BOOL, 0, 1, 1));
    CHECK(head_is("\xca\0\0\0\0", 5, DF_MSGPACK_FLOAT, 0, 5, 5));
    CHECK(head_is("\xa3"
                  "abc",
                  4, DF_MSGPACK_STR, 3, 1, 4));
    CHECK(head_is("\xd9\x03"
                  "abcdef",
                  8, DF_MSGPACK_STR, 3, 2, 5));
    CHECK(head_is("\xc4\x02\x01\x02", 4, DF_MSGPACK_BIN, 2, 2, 4));
    CHECK(head_is("\xc7\x01\x07\x01", 4, DF_MSGPACK_EXT, 1, 3, 4));
    CHECK(head_is("\xd5\x07\x01\x02", 4, DF_MSGPACK_EXT, 2, 2, 4));
    CHECK(head_is("\x92\x01", 2, DF_MSGPACK_ARRAY, 2, 1, 1));
    CHECK(head_is("\xdd\x00\x01\x00\x00", 5, DF_MSGPACK_ARRAY, 65536, 5, 5));
    CHECK(head_is("\xde\x00\x02", 3, DF_MSGPACK_MAP, 2, 3, 3));
    df_msgpack_header h;
    CHECK(!df_msgpack_head("", 0, &h));
    CHECK(!df_msgpack_head(NULL, 4, &h));
    CHECK(!df_msgpack_head("\xc1", 1, &h));
    CHECK(!df_msgpack_head("\xa3"
                           "ab",
                           3, &h));
    CHECK(!df_msgpack_head("\xd5\x07\x01", 3, &h));
    CHECK(!df_msgpack_head("\xde\x00", 2, &h));
    CHECK(df_msgpack_is_map("\x80", 1) && !df_msgpack_is_map("\x90", 1));
    CHECK(df_msgpack_is_map("\xdf\0\0\0\0", 5) && !df_msgpack_is_map("\xdf\0\0", 3));
    CHECK(df_msgpack_is_array("\xdc\0\0", 3) && !df_msgpack_is_array("\x80", 1));
    CHECK(!df_msgpack_is_map("", 0) && !df_msgpack_is_array("", 0));

    uint64_t u = 0;
    CHECK(df_msgpack_read_uint("\x7f", 1, &u) && u == 127);
    CHECK(df_msgpack_read_uint("\xcd\x01\x00", 3, &u) && u == 256);
    CHECK(df_msgpack_read_uint("\xcf\xff\xff\xff\xff\xff\xff\xff\xff", 9, &u) && u == UINT64_MAX);
    CHECK(df_msgpack_read_uint("\xd0\x05", 2, &u) && u == 5); /* signed encoding, >= 0 */
    CHECK(!df_msgpack_read_uint("\xd0\xff", 2, &u));
    CHECK(!df_msgpack_read_uint("\xe0", 1, &u));
    CHECK(!df_msgpack_read_uint("\xcd\x01", 2, &u));
    CHECK(!df_msgpack_read_uint("\xa1x", 2, &u));
    CHECK(!df_msgpack_read_uint("", 0, &u));

    int64_t i = 0;
    CHECK(df_msgpack_read_int("\x05", 1, &i) && i == 5);
    CHECK(df_msgpack_read_int("\xff", 1, &i) && i == -1);
    CHECK(df_msgpack_read_int("\xe0", 1, &i) && i == -32);
    CHECK(df_msgpack_read_int("\xd0\x80", 2, &i) && i == -128);
    CHECK(df_msgpack_read_int("\xd1\xff\xfe", 3, &i) && i == -2);
    CHECK(df_msgpack_read_int("\xd2\x7f\xff\xff\xff", 5, &i) && i == INT32_MAX);
    CHECK(df_msgpack_read_int("\xd3\x80\0\0\0\0\0\0\0", 9, &i) && i == INT64_MIN);
    CHECK(df_msgpack_read_int("\xd3\x7f\xff\xff\xff\xff\xff\xff\xff", 9, &i) && i == INT64_MAX);
    CHECK(df_msgpack_read_int("\xcf\x7f\xff\xff\xff\xff\xff\xff\xff", 9, &i) && i == INT64_MAX);
    CHECK(!df_msgpack_read_int("\xcf\x80\0\0\0\0\0\0\0", 9, &i));
    CHECK(!df_msgpack_read_int("\xd3\x80\0\0", 4, &i));
    CHECK(!df_msgpack_read_int("\xcb\0\0\0\0\0\0\0\0", 9, &i));

    bool b = false;
    CHECK(df_msgpack_read_bool("\xc3", 1, &b) && b);
    CHECK(df_msgpack_read_bool("\xc2", 1, &b) && !b);
    CHECK(!df_msgpack_read_bool("\xc0", 1, &b) && !df_msgpack_read_bool("", 0, &b));
    CHECK(df_msgpack_is_nil("\xc0", 1) && !df_msgpack_is_nil("\xc2", 1));
    CHECK(!df_msgpack_is_nil("", 0));

    const char *str = NULL;
    uint32_t str_len = 0;
    CHECK(df_msgpack_read_str("\xa2hi", 3, &str, &str_len) && str_len == 2 &&
          memcmp(str, "hi", 2) == 0);
    CHECK(df_msgpack_read_str("\xda\x00\x01z", 4, &str, &str_len) && str_len == 1 && *str == 'z');
    CHECK(df_msgpack_read_str("\xa0", 1, &str, &str_len) && str_len == 0);
    CHECK(!df_msgpack_read_str("\xa2h", 2, &str, &str_len));
    CHECK(!df_msgpack_read_str("\xc4\x01z", 3, &str, &str_len));

    msgpack_sbuffer sb;
    encode("{'u':300,'n':-3,'t':true,'s':'str','a':[1,2,3],'nil':null}", &sb);
    const char *first = NULL;
    size_t rest = 0;
    uint32_t count = 0;
    CHECK(df_msgpack_map_uint(sb.data, sb.size, "u", &u) && u == 300);
    CHECK(!df_msgpack_map_uint(sb.data, sb.size, "n", &u));
    CHECK(df_msgpack_map_int(sb.data, sb.size, "n", &i) && i == -3);
    CHECK(df_msgpack_map_bool(sb.data, sb.size, "t", &b) && b);
    CHECK(!df_msgpack_map_bool(sb.data, sb.size, "nil", &b));
    CHECK(df_msgpack_map_str(sb.data, sb.size, "s", &str, &str_len) && str_len == 3 &&
          memcmp(str, "str", 3) == 0);
    CHECK(!df_msgpack_map_str(sb.data, sb.size, "missing", &str, &str_len));
    CHECK(df_msgpack_map_array(sb.data, sb.size, "a", &first, &rest, &count) && count == 3 &&
          rest == 3 && first[0] == 1 && first[2] == 3);
    CHECK(!df_msgpack_map_array(sb.data, sb.size, "s", &first, &rest, &count));
    msgpack_sbuffer_destroy(&sb);
}

static void test_recorded_decode(void)
{
    msgpack_sbuffer sb, out;
    msgpack_zone zone;
    msgpack_object obj;
    df_event ev;
    df_error err;

    encode("{'id':'e1','type':'stage','deal':'d1','stage':'lead','expect':0,'amount':3}", &sb);
    msgpack_sbuffer_init(&out);
    msgpack_zone_init(&zone, 1024);
    CHECK_INT(df_event_record(sb.data, sb.size, 17, 1700000000000LL, true, &out), 0);
    CHECK_INT(df_msgpack_unpack(out.data, out.size, &zone, &obj, &err), 0);
    CHECK_INT(df_recorded_decode(&obj, &ev, &err), 0);
    CHECK_INT(ev.type, DF_EV_STAGE);
    CHECK(str_is(ev.id, "e1"));
    CHECK(str_is(ev.stage, "lead"));
    CHECK_INT(ev.amount.i, 3);
    CHECK_INT(ev.seq, 17);
    CHECK_INT(ev.recv, 1700000000000LL);
    CHECK(ev.has_at);
    CHECK_INT(ev.at, 1700000000000LL);
    CHECK(!ev.has_expect);
    /* a recorded event is not one a sender may send */
    CHECK_INT(df_event_decode(&obj, &ev, &err), DF_EBAD_REQUEST);
    CHECK(strstr(err.message, "`seq` is reserved") != NULL);

    /* the log keeps an amount recorded before it was bounded */
    msgpack_sbuffer_destroy(&sb);
    msgpack_sbuffer_clear(&out);
    encode("{'id':'e2','type':'update','deal':'d1','amount':9223372036854775807}", &sb);
    CHECK_INT(df_event_record(sb.data, sb.size, 19, 1700000000000LL, true, &out), 0);
    CHECK_INT(df_msgpack_unpack(out.data, out.size, &zone, &obj, &err), 0);
    CHECK_INT(df_recorded_decode(&obj, &ev, &err), 0);
    CHECK_INT(ev.amount.i, INT64_MAX);

    /* the sender's `at` stays */
    msgpack_sbuffer_destroy(&sb);
    msgpack_sbuffer_clear(&out);
    encode("{'id':'p','type':'pipeline','pipeline':'x','at':5,"
           "'stages':[{'name':'a','probability':1}]}",
           &sb);
    CHECK_INT(df_event_record(sb.data, sb.size, 18, 99, false, &out), 0);
    CHECK_INT(df_msgpack_unpack(out.data, out.size, &zone, &obj, &err), 0);
    CHECK_INT(df_recorded_decode(&obj, &ev, &err), 0);
    CHECK_INT(ev.at, 5);
    CHECK_INT(ev.recv, 99);
    CHECK_INT(ev.seq, 18);
    CHECK_INT(ev.nstages, 1);
    msgpack_zone_destroy(&zone);

    /* seq, recv and at are all needed, and still checked */
    static const char *const broken[] = {
        "{'id':'e','type':'update','deal':'d','recv':1,'at':1}",
        "{'id':'e','type':'update','deal':'d','seq':1,'at':1}",
        "{'id':'e','type':'update','deal':'d','seq':1,'recv':1}",
        "{'id':'e','type':'update','deal':'d','seq':-1,'recv':1,'at':1}",
        "{'id':'e','type':'update','deal':'d','seq':1,'recv':'1','at':1}",
        "{'id':'e','type':'update','deal':'d','seq':1,'recv':1,'at':1.5}",
        "{'id':'e','type':'update','deal':'','seq':1,'recv':1,'at':1}",
    };
    for (size_t k = 0; k < sizeof broken / sizeof broken[0]; k++) {
        frame f;
        encode(broken[k], &f.sb);
        msgpack_zone_init(&f.zone, 1024);
        CHECK_INT(df_msgpack_unpack(f.sb.data, f.sb.size, &f.zone, &f.obj, &f.err), 0);
        CHECK_INT(df_recorded_decode(&f.obj, &f.ev, &f.err), DF_EBAD_REQUEST);
        frame_free(&f);
    }
    msgpack_sbuffer_destroy(&sb);
    msgpack_sbuffer_destroy(&out);
}

/* ---- request getters and reply packing ------------------------------------------- */

static void test_getters(void)
{
    msgpack_sbuffer sb;
    msgpack_zone zone;
    msgpack_object obj;
    df_error err;
    df_str s = {NULL, 0};
    uint64_t u = 0;
    int64_t i = 0;
    bool b = false, bad = false;

    encode("{'s':'text','u':5,'n':-5,'big':18446744073709551615,'max':9223372036854775807,"
           "'t':true,'nil':null,'f':1.5,'':'empty key'}",
           &sb);
    msgpack_zone_init(&zone, 1024);
    CHECK_INT(df_msgpack_unpack(sb.data, sb.size, &zone, &obj, &err), 0);

    CHECK(df_map_get(&obj, "s") != NULL);
    CHECK(df_map_get(&obj, "nil") == NULL);
    CHECK(df_map_get(&obj, "missing") == NULL);
    CHECK(df_map_get(&obj, "") != NULL);
    CHECK(df_map_get(&obj, "tt") == NULL);
    CHECK(df_map_get(&obj.via.map.ptr[0].val, "s") == NULL); /* not a map */

    CHECK(df_get_str(&obj, "s", &s, &bad) && str_is(s, "text") && !bad);
    CHECK(!df_get_str(&obj, "nil", &s, &bad) && !bad);
    CHECK(!df_get_str(&obj, "missing", &s, &bad) && !bad);
    CHECK(!df_get_str(&obj, "u", &s, &bad) && bad);

    bad = false;
    CHECK(df_get_uint(&obj, "u", &u, &bad) && u == 5 && !bad);
    CHECK(df_get_uint(&obj, "big", &u, &bad) && u == UINT64_MAX && !bad);
    CHECK(!df_get_uint(&obj, "nil", &u, &bad) && !bad);
    CHECK(!df_get_uint(&obj, "n", &u, &bad) && bad);
    bad = false;
    CHECK(!df_get_uint(&obj, "f", &u, &bad) && bad);
    bad = false;
    CHECK(!df_get_uint(&obj, "s", &u, &bad) && bad);

    bad = false;
    CHECK(df_get_int(&obj, "n", &i, &bad) && i == -5 && !bad);
    CHECK(df_get_int(&obj, "u", &i, &bad) && i == 5 && !bad);
    CHECK(df_get_int(&obj, "max", &i, &bad) && i == INT64_MAX && !bad);
    CHECK(!df_get_int(&obj, "missing", &i, &bad) && !bad);
    CHECK(!df_get_int(&obj, "big", &i, &bad) && bad);
    bad = false;
    CHECK(!df_get_int(&obj, "f", &i, &bad) && bad);

    bad = false;
    CHECK(df_get_bool(&obj, "t", &b, &bad) && b && !bad);
    CHECK(!df_get_bool(&obj, "nil", &b, &bad) && !bad);
    CHECK(!df_get_bool(&obj, "u", &b, &bad) && bad);

    /* bad may be NULL */
    CHECK(!df_get_bool(&obj, "u", &b, NULL));
    CHECK(!df_get_str(&obj, "u", &s, NULL));

    msgpack_zone_destroy(&zone);
    msgpack_sbuffer_destroy(&sb);
}

static void test_packing(void)
{
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_zone zone;
    msgpack_object obj;
    df_error err;
    df_str s = {NULL, 0};
    bool b = true, bad = false;
    uint64_t u = 0;
    int64_t i = 0;

    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    df_pack_error(&pk, DF_EUNKNOWN_STAGE, "stage `x` is not in pipeline `default`");
    msgpack_zone_init(&zone, 1024);
    CHECK_INT(df_msgpack_unpack(sb.data, sb.size, &zone, &obj, &err), 0);
    CHECK_INT(obj.via.map.size, 3);
    CHECK(df_get_bool(&obj, "ok", &b, &bad) && !b);
    CHECK(df_get_str(&obj, "error", &s, &bad) && str_is(s, "unknown_stage"));
    CHECK(df_get_str(&obj, "message", &s, &bad) &&
          str_is(s, "stage `x` is not in pipeline `default`"));
    CHECK(!bad);
    msgpack_zone_destroy(&zone);

    msgpack_sbuffer_clear(&sb);
    msgpack_pack_map(&pk, 6);
    df_pack_cstr(&pk, "i");
    df_pack_num(&pk, (df_num){DF_NUM_INT, -12, 0});
    df_pack_cstr(&pk, "f");
    df_pack_num(&pk, (df_num){DF_NUM_FLOAT, 0, 0.25});
    df_pack_cstr(&pk, "none");
    df_pack_num(&pk, (df_num){DF_NUM_NONE, 0, 0});
    df_pack_str(&pk, "part of this", 4);
    df_pack_str(&pk, NULL, 0);
    df_pack_cstr(&pk, "u");
    df_pack_num(&pk, (df_num){DF_NUM_INT, 7, 0});
    df_pack_cstr(&pk, "null");
    df_pack_cstr(&pk, NULL);
    msgpack_zone_init(&zone, 1024);
    CHECK_INT(df_msgpack_unpack(sb.data, sb.size, &zone, &obj, &err), 0);
    CHECK(df_get_int(&obj, "i", &i, &bad) && i == -12);
    const msgpack_object *f = df_map_get(&obj, "f");
    CHECK(f != NULL && f->type == MSGPACK_OBJECT_FLOAT64 && f->via.f64 == 0.25);
    CHECK(df_map_get(&obj, "none") == NULL);
    CHECK(obj.via.map.ptr[2].val.type == MSGPACK_OBJECT_NIL);
    CHECK(df_get_str(&obj, "part", &s, &bad) && s.len == 0);
    CHECK(df_get_uint(&obj, "u", &u, &bad) && u == 7);
    CHECK(df_get_str(&obj, "null", &s, &bad) && s.len == 0);
    CHECK(!bad);
    msgpack_zone_destroy(&zone);
    msgpack_sbuffer_destroy(&sb);
}

/* ---- random mutations --------------------------------------------------------- */

static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;

static uint64_t rng_next(void)
{
    uint64_t x = rng_state;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    rng_state = x;
    return x;
}

static size_t rng_below(size_t n)
{
    return n == 0 ? 0 : (size_t)(rng_next() % n);
}

static const unsigned char interesting[] = {
    0x00, 0x7f, 0x80, 0x8f, 0x90, 0x9f, 0xa0, 0xbf, 0xc0, 0xc1, 0xc4, 0xc7, 0xca, 0xcb, 0xcf,
    0xd3, 0xd4, 0xd8, 0xd9, 0xdb, 0xdc, 0xdd, 0xde, 0xdf, 0xe0, 0xff, 0x01, 0x10, 0x20, 0x64};

static size_t mutate(unsigned char *buf, size_t len, size_t cap)
{
    int edits = 1 + (int)rng_below(4);
    for (int e = 0; e < edits; e++) {
        size_t at = rng_below(len);
        switch (rng_below(7)) {
        case 0:
            if (len > 0)
                buf[at] = (unsigned char)rng_next();
            break;
        case 1:
            if (len > 0)
                buf[at] ^= (unsigned char)(1u << rng_below(8));
            break;
        case 2:
            if (len > 0)
                buf[at] = interesting[rng_below(sizeof interesting)];
            break;
        case 3:
            if (len < cap) {
                memmove(buf + at + 1, buf + at, len - at);
                buf[at] = interesting[rng_below(sizeof interesting)];
                len++;
            }
            break;
        case 4:
            if (len > 0) {
                memmove(buf + at, buf + at + 1, len - at - 1);
                len--;
            }
            break;
        case 5:
            len = rng_below(len + 1);
            break;
        default:
            if (len > 0 && at + 1 < len) {
                /* a small count or length becomes a huge one */
                buf[at] = 0xff;
                buf[at + 1] = 0xff;
            }
            break;
        }
    }
    return len;
}

static void test_mutations(void)
{
    static const char *const seeds[] = {
        "{'id':'e1','type':'stage','deal':'d1','stage':'proposal','at':1700000000000,"
        "'amount':1.5,'owner':'ana','reason':'x','expect':2,'meta':{'a':[1,2,3]}}",
        "{'id':'a1','type':'activity','deal':'d1','kind':'call','actor':'bo','note':'hi'}",
        "{'id':'u1','type':'update','deal':'d1','amount':null,'owner':'o','name':'n',"
        "'product':'p','close_date':-1,'bin':b'xy','ext':x'z'}",
        "{'id':'p1','type':'pipeline','pipeline':'smb','stages':[{'name':'a','probability':5,"
        "'rot_days':7},{'name':'b','probability':100,'outcome':'won'},"
        "{'name':'c','probability':0,'outcome':'lost','rot_days':null}]}",
        "[{'id':'e1','type':'stage','deal':'d','stage':'s'},{'id':'e2','type':'activity',"
        "'deal':'d','kind':'k'}]",
    };
    enum { ROUNDS = 20000, SLACK = 64 };
    msgpack_sbuffer base[sizeof seeds / sizeof seeds[0]];
    size_t nseeds = sizeof seeds / sizeof seeds[0];
    int passed_check = 0, decoded = 0, recorded = 0;
    msgpack_sbuffer out;
    msgpack_zone zone;

    for (size_t k = 0; k < nseeds; k++)
        encode(seeds[k], &base[k]);
    msgpack_sbuffer_init(&out);
    msgpack_zone_init(&zone, 4096);
    for (int round = 0; round < ROUNDS; round++) {
        const msgpack_sbuffer *from = &base[rng_below(nseeds)];
        size_t cap = from->size + SLACK;
        unsigned char *buf = malloc(cap);
        memcpy(buf, from->data, from->size);
        size_t len = mutate(buf, from->size, cap);
        /* exactly len bytes in their own allocation: ASan catches any overread */
        char *frame_bytes = malloc(len > 0 ? len : 1);
        memcpy(frame_bytes, buf, len);
        free(buf);

        df_error err;
        msgpack_object obj;
        size_t skipped = df_msgpack_skip(frame_bytes, len);
        CHECK(skipped <= len);
        if (df_msgpack_check(frame_bytes, len, &err) == 0) {
            passed_check++;
            CHECK_INT(skipped, len);
            msgpack_zone_clear(&zone);
            CHECK_INT(df_msgpack_unpack(frame_bytes, len, &zone, &obj, &err), 0);
            const msgpack_object *items = &obj;
            uint32_t count = 1;
            if (obj.type == MSGPACK_OBJECT_ARRAY) {
                items = obj.via.array.ptr;
                count = obj.via.array.size;
            }
            for (uint32_t i = 0; i < count; i++) {
                df_event ev;
                if (df_event_decode(&items[i], &ev, &err) != 0) {
                    CHECK_INT(err.code, DF_EBAD_REQUEST);
                    continue;
                }
                decoded++;
                if (items != &obj)
                    continue;
                size_t start = out.size;
                CHECK_INT(df_event_record(frame_bytes, len, 9, 10, !ev.has_at, &out), 0);
                CHECK_INT(df_msgpack_check(out.data + start, out.size - start, &err), 0);
                msgpack_object rec;
                df_event again;
                CHECK_INT(df_msgpack_unpack(out.data + start, out.size - start, &zone, &rec, &err),
                          0);
                CHECK_INT(df_recorded_decode(&rec, &again, &err), 0);
                CHECK(again.seq == 9 && again.recv == 10 && again.type == ev.type);
                CHECK(again.id.len == ev.id.len && again.nstages == ev.nstages);
                recorded++;
                msgpack_sbuffer_clear(&out);
            }
        } else {
            CHECK_INT(err.code, DF_EBAD_REQUEST);
        }
        free(frame_bytes);
    }
    /* the loop reached every stage of the path */
    CHECK(passed_check > 1000);
    CHECK(decoded > 100);
    CHECK(recorded > 100);
    msgpack_zone_destroy(&zone);
    msgpack_sbuffer_destroy(&out);
    for (size_t k = 0; k < nseeds; k++)
        msgpack_sbuffer_destroy(&base[k]);
}

/* Strings the daemon keeps and sends back must be UTF-8 that every client
 * can decode: malformed sequences are refused, any well-formed text taken. */
static int decode_with_deal(const char *deal, size_t len)
{
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_zone zone;
    msgpack_object obj;
    df_event ev;
    df_error err;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 4);
    df_pack_cstr(&pk, "id");
    df_pack_cstr(&pk, "e");
    df_pack_cstr(&pk, "type");
    df_pack_cstr(&pk, "stage");
    df_pack_cstr(&pk, "deal");
    df_pack_str(&pk, deal, len);
    df_pack_cstr(&pk, "stage");
    df_pack_cstr(&pk, "lead");
    msgpack_zone_init(&zone, 1024);
    int rc = df_msgpack_check(sb.data, sb.size, &err);
    if (rc == 0)
        rc = df_msgpack_unpack(sb.data, sb.size, &zone, &obj, &err);
    if (rc == 0)
        rc = df_event_decode(&obj, &ev, &err);
    msgpack_zone_destroy(&zone);
    msgpack_sbuffer_destroy(&sb);
    return rc;
}

static void test_utf8(void)
{
    static const struct {
        const char *bytes;
        bool valid;
    } cases[] = {
        {"plain", true},
        {"caf\xc3\xa9", true},       /* e acute */
        {"\xe2\x82\xac", true},      /* euro sign */
        {"\xf0\x9f\x93\x88", true},  /* a chart, four bytes */
        {"\xff", false},             /* never in UTF-8 */
        {"\xc3", false},             /* cut short */
        {"\xc0\x80", false},         /* overlong NUL */
        {"\xe0\x80\x80", false},     /* overlong */
        {"\xed\xa0\x80", false},     /* a surrogate */
        {"\xf4\x90\x80\x80", false}, /* past U+10FFFF */
        {"ok\x80", false},           /* a stray continuation byte */
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        size_t len = strlen(cases[i].bytes);
        CHECK(df_utf8_valid(cases[i].bytes, len) == cases[i].valid);
        CHECK_INT(decode_with_deal(cases[i].bytes, len), cases[i].valid ? 0 : DF_EBAD_REQUEST);
    }
}

/* A message cut at its limit never ends inside a UTF-8 character. */
static void test_message_cut_at_a_character(void)
{
    char name[400];
    df_error err;
    for (size_t pad = 0; pad < 4; pad++) {
        memset(name, 'a', pad);
        size_t n = pad;
        while (n + 2 < sizeof name - 1) {
            name[n++] = (char)0xc3; /* e acute, two bytes */
            name[n++] = (char)0xa9;
        }
        name[n] = '\0';
        df_fail(&err, DF_EBAD_REQUEST, "%s", name);
        CHECK(strlen(err.message) >= sizeof err.message - 3);
        CHECK(df_utf8_valid(err.message, strlen(err.message)));
    }
}

static const df_test tests[] = {
    {"error_names", test_error_names},
    {"fail_and_small_helpers", test_fail_and_small_helpers},
    {"decode_stage", test_decode_stage},
    {"decode_activity", test_decode_activity},
    {"decode_update", test_decode_update},
    {"decode_pipeline", test_decode_pipeline},
    {"decode_rejects_common", test_decode_rejects_common},
    {"decode_empty_keys", test_decode_empty_keys},
    {"decode_rejects_by_type", test_decode_rejects_by_type},
    {"decode_unchecked_object", test_decode_unchecked_object},
    {"check_every_format", test_check_every_format},
    {"check_hostile", test_check_hostile},
    {"check_depth", test_check_depth},
    {"check_node_limit", test_check_node_limit},
    {"skip", test_skip},
    {"truncated_event", test_truncated_event},
    {"unpack", test_unpack},
    {"record", test_record},
    {"raw_helpers", test_raw_helpers},
    {"reader", test_reader},
    {"recorded_decode", test_recorded_decode},
    {"getters", test_getters},
    {"packing", test_packing},
    {"mutations", test_mutations},
    {"utf8", test_utf8},
    {"message_cut_at_a_character", test_message_cut_at_a_character},
    {NULL, NULL},
};

int main(int argc, char **argv)
{
    return df_test_main(argc, argv, tests, NULL);
}

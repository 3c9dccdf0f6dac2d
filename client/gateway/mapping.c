/* mapping.c: compiling a hook's mapping from the config, checking a request's signature with it,
 * and applying it to a payload: JSON paths, {path} templates, constants and value maps give each
 * key of an event, and the first case whose conditions an item meets picks the event it gives. */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "mapping.h"
#include "signature.h"

#define PATH_MAX_STEPS     32
#define TEMPLATE_MAX_PARTS 32
/* A key's text from a template; the contract's strings are far shorter. */
#define TEXT_MAX 1024
#define NUM_TEXT 40

/* One step of a JSON path: an object's key, or an array's index when key is NULL. */
typedef struct step {
    char *key;
    size_t index;
} step;

typedef struct path {
    step *steps;
    size_t n;
} path;

/* A part of a template: literal text, or the text of the value at a path when literal is NULL. */
typedef struct part {
    char *literal;
    size_t len;
    path path;
} part;

typedef enum { SOURCE_CONSTANT, SOURCE_PATH, SOURCE_TEMPLATE } source_kind;

/* Where one key of an event comes from, and what becomes of it. */
typedef struct value {
    source_kind kind;
    json_t *constant;
    path path;
    part *parts;
    size_t nparts;
    json_t *map;      /* an object of text -> value, or NULL */
    json_t *fallback; /* "default", or NULL */
    char *text;       /* as the config writes it, for messages */
} value;

typedef struct field {
    char *key;
    value value;
} field;

typedef enum { WHEN_EQUALS, WHEN_ONE_OF, WHEN_EXISTS } when_kind;

typedef struct condition {
    path path;
    when_kind kind;
    json_t *expected; /* a scalar or null (equals), an array of them (one of) */
    bool exists;
} condition;

typedef struct mapping_case {
    condition *when;
    size_t nwhen;
    bool skip;
    field *fields;
    size_t nfields;
} mapping_case;

typedef enum {
    SIGNATURE_NONE,
    SIGNATURE_GENERIC,
    SIGNATURE_HUBSPOT_V3,
    SIGNATURE_BASIC
} signature_kind;

struct gw_hook {
    char *name;
    signature_kind signature;
    char *secret, *user, *password, *url;
    bool has_items;
    path items;
    mapping_case *cases;
    size_t ncases;
};

/* What compiling writes its errors through: "hooks.NAME.WHERE: why". */
typedef struct compiler {
    const char *name;
    char *err;
    size_t cap;
} compiler;

static int bad(const compiler *c, const char *where, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int bad(const compiler *c, const char *where, const char *fmt, ...)
{
    if (!c->err || !c->cap)
        return -1;
    int n = snprintf(c->err, c->cap, "hooks.%s%s%s: ", c->name, *where ? "." : "", where);
    if (n >= 0 && (size_t)n < c->cap) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(c->err + n, c->cap - (size_t)n, fmt, ap);
        va_end(ap);
    }
    return -1;
}

static void *zalloc(size_t n, size_t size)
{
    return calloc(n ? n : 1, size);
}

/* ---- paths ---- */

static void path_free(path *p)
{
    for (size_t i = 0; i < p->n; i++)
        free(p->steps[i].key);
    free(p->steps);
    *p = (path){0};
}

/* Parses $, $.a.b, $.a[0].b. false when it is none of these or memory ran out. */
static bool path_parse(const char *text, path *out)
{
    *out = (path){0};
    if (text[0] != '$')
        return false;
    out->steps = zalloc(PATH_MAX_STEPS, sizeof(step));
    if (!out->steps)
        return false;
    const char *p = text + 1;
    while (*p) {
        if (out->n == PATH_MAX_STEPS)
            goto fail;
        step *s = &out->steps[out->n];
        if (*p == '.') {
            const char *q = ++p;
            while (*q && *q != '.' && *q != '[')
                q++;
            if (q == p)
                goto fail;
            s->key = strndup(p, (size_t)(q - p));
            if (!s->key)
                goto fail;
            p = q;
        } else if (*p == '[') {
            size_t index = 0, digits = 0;
            for (p++; *p >= '0' && *p <= '9' && digits < 9; p++, digits++)
                index = index * 10 + (size_t)(*p - '0');
            if (digits == 0 || *p != ']')
                goto fail;
            p++;
            s->index = index;
        } else {
            goto fail;
        }
        out->n++;
    }
    return true;
fail:
    path_free(out);
    return false;
}

/* The value at p in root; NULL when absent. */
static const json_t *path_get(const path *p, const json_t *root)
{
    const json_t *v = root;
    for (size_t i = 0; v && i < p->n; i++) {
        const step *s = &p->steps[i];
        if (s->key)
            v = json_is_object(v) ? json_object_get(v, s->key) : NULL;
        else
            v = json_is_array(v) ? json_array_get(v, s->index) : NULL;
    }
    return v;
}

/* ---- values ---- */

/* The text of a scalar: 1 with *text (into v or num), 0 for null or absent, -1 for an object or
 * an array. */
static int scalar_text(const json_t *v, char num[NUM_TEXT], const char **text, size_t *len)
{
    if (!v || json_is_null(v))
        return 0;
    switch (json_typeof(v)) {
    case JSON_STRING:
        *text = json_string_value(v);
        *len = json_string_length(v);
        return 1;
    case JSON_INTEGER:
        *len = (size_t)snprintf(num, NUM_TEXT, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        break;
    case JSON_REAL: {
        /* the shortest of two precisions that reads back the same */
        double d = json_real_value(v);
        *len = (size_t)snprintf(num, NUM_TEXT, "%.15g", d);
        if (strtod(num, NULL) != d)
            *len = (size_t)snprintf(num, NUM_TEXT, "%.17g", d);
        break;
    }
    case JSON_TRUE:
    case JSON_FALSE:
        *len = (size_t)snprintf(num, NUM_TEXT, "%s", json_is_true(v) ? "true" : "false");
        break;
    default:
        return -1;
    }
    *text = num;
    return 1;
}

static bool same_text(const json_t *a, const json_t *b)
{
    char na[NUM_TEXT], nb[NUM_TEXT];
    const char *ta, *tb;
    size_t la, lb;
    return scalar_text(a, na, &ta, &la) == 1 && scalar_text(b, nb, &tb, &lb) == 1 && la == lb &&
           memcmp(ta, tb, la) == 0;
}

static void value_free(value *v)
{
    json_decref(v->constant);
    path_free(&v->path);
    for (size_t i = 0; i < v->nparts; i++) {
        free(v->parts[i].literal);
        path_free(&v->parts[i].path);
    }
    free(v->parts);
    json_decref(v->map);
    json_decref(v->fallback);
    free(v->text);
    *v = (value){0};
}

static int template_compile(const compiler *c, const char *where, const char *text, value *v)
{
    v->kind = SOURCE_TEMPLATE;
    v->parts = zalloc(TEMPLATE_MAX_PARTS, sizeof(part));
    if (!v->parts)
        return bad(c, where, "out of memory");
    const char *p = text;
    while (*p) {
        if (v->nparts == TEMPLATE_MAX_PARTS)
            return bad(c, where, "`%s` has more than %d parts", text, TEMPLATE_MAX_PARTS);
        part *pt = &v->parts[v->nparts];
        if (p[0] == '{' && p[1] != '{') {
            const char *close = strchr(p, '}');
            if (!close)
                return bad(c, where, "`{` without `}` in `%s`", text);
            size_t n = (size_t)(close - p - 1);
            char inner[TEXT_MAX];
            /* {objectId} reads as $.objectId, {[0].x} as $[0].x, {$.a} as written */
            const char *prefix = n && p[1] == '$' ? "" : n && p[1] == '[' ? "$" : "$.";
            if (n == 0 || n + 3 > sizeof inner)
                return bad(c, where, "an empty or overlong `{}` in `%s`", text);
            snprintf(inner, sizeof inner, "%s%.*s", prefix, (int)n, p + 1);
            if (!path_parse(inner, &pt->path))
                return bad(c, where, "`{%.*s}` is not a path such as {a.b[0].c}", (int)n, p + 1);
            v->nparts++;
            p = close + 1;
            continue;
        }
        /* literal text up to the next single brace; {{ and }} stand for one */
        const char *from = p;
        if ((p[0] == '{' && p[1] == '{') || (p[0] == '}' && p[1] == '}')) {
            pt->len = 1;
            p += 2;
        } else {
            while (*p && *p != '{' && !(p[0] == '}' && p[1] == '}'))
                p++;
            pt->len = (size_t)(p - from);
        }
        pt->literal = strndup(from, pt->len);
        if (!pt->literal)
            return bad(c, where, "out of memory");
        v->nparts++;
    }
    return 0;
}

static bool scalar_or_null(const json_t *v)
{
    return json_is_string(v) || json_is_number(v) || json_is_boolean(v) || json_is_null(v);
}

static int value_compile(const compiler *c, const char *where, const json_t *spec, value *v)
{
    const json_t *source = spec;
    const char *as = NULL; /* "path" or "template" when the object form says which */
    if (json_is_object(spec)) {
        const char *key;
        json_t *item;
        int sources = 0;
        json_object_foreach((json_t *)spec, key, item)
        {
            if (strcmp(key, "path") == 0 || strcmp(key, "template") == 0 ||
                strcmp(key, "value") == 0) {
                sources++;
                source = item;
                as = key;
            } else if (strcmp(key, "map") != 0 && strcmp(key, "default") != 0) {
                return bad(c, where, "unknown key `%s` (path, template, value, map, default)", key);
            }
        }
        if (sources != 1)
            return bad(c, where, "needs one of `path`, `template` or `value`");
        const json_t *map = json_object_get(spec, "map");
        if (map) {
            if (!json_is_object(map))
                return bad(c, where, "`map` must be an object of text to value");
            v->map = json_incref((json_t *)map);
        }
        const json_t *fallback = json_object_get(spec, "default");
        if (fallback && !json_is_null(fallback))
            v->fallback = json_incref((json_t *)fallback);
        if (strcmp(as, "value") == 0) {
            if (json_is_null(source))
                return bad(c, where, "null: leave the key out instead");
        } else if (!json_is_string(source)) {
            return bad(c, where, "`%s` must be a string", as);
        }
    }
    if (json_is_null(source))
        return bad(c, where, "null: leave the key out instead");
    v->text = json_is_string(source) ? strdup(json_string_value(source))
                                     : json_dumps(source, JSON_ENCODE_ANY | JSON_COMPACT);
    if (!v->text)
        return bad(c, where, "out of memory");
    if (json_is_string(source) && (!as || strcmp(as, "value") != 0)) {
        const char *text = json_string_value(source);
        bool is_path = as ? strcmp(as, "path") == 0 : text[0] == '$';
        if (is_path) {
            v->kind = SOURCE_PATH;
            if (!path_parse(text, &v->path))
                return bad(c, where, "`%s` is not a path such as $.a.b[0].c", text);
            return 0;
        }
        if (as || strchr(text, '{') || strstr(text, "}}"))
            return template_compile(c, where, text, v);
    }
    v->kind = SOURCE_CONSTANT;
    v->constant = json_incref((json_t *)source);
    return 0;
}

/* ---- events ---- */

static const char *const event_types[] = {"stage", "activity", "update", "pipeline", NULL};
/* The key each type cannot do without, besides id and type. */
static const char *const type_needs[] = {"stage", "kind", NULL, "pipeline", NULL};
static const char *const text_keys[] = {"id",    "deal",    "type",   "stage", "pipeline",
                                        "owner", "reason",  "kind",   "actor", "note",
                                        "name",  "product", "source", NULL};

static bool listed(const char *const *list, const char *s)
{
    for (size_t i = 0; list[i]; i++)
        if (strcmp(list[i], s) == 0)
            return true;
    return false;
}

static int type_index(const char *type)
{
    for (int i = 0; event_types[i]; i++)
        if (strcmp(event_types[i], type) == 0)
            return i;
    return -1;
}

static void case_free(mapping_case *mc)
{
    for (size_t i = 0; i < mc->nwhen; i++) {
        path_free(&mc->when[i].path);
        json_decref(mc->when[i].expected);
    }
    free(mc->when);
    for (size_t i = 0; i < mc->nfields; i++) {
        free(mc->fields[i].key);
        value_free(&mc->fields[i].value);
    }
    free(mc->fields);
}

static int event_compile(const compiler *c, const char *where, const json_t *spec, mapping_case *mc)
{
    if (!json_is_object(spec))
        return bad(c, where, "must be an object of event key to path, template or value");
    mc->fields = zalloc(json_object_size(spec), sizeof(field));
    if (!mc->fields)
        return bad(c, where, "out of memory");
    const char *key;
    json_t *item;
    json_object_foreach((json_t *)spec, key, item)
    {
        char at[256];
        snprintf(at, sizeof at, "%s.%s", where, key);
        if (!*key || strcmp(key, "seq") == 0 || strcmp(key, "recv") == 0)
            return bad(c, at, "`%s` is not a key an event may carry", key);
        field *f = &mc->fields[mc->nfields++];
        f->key = strdup(key);
        if (!f->key)
            return bad(c, at, "out of memory");
        if (value_compile(c, at, item, &f->value) != 0)
            return -1;
        const json_t *k = f->value.constant;
        if (strcmp(key, "type") == 0 && f->value.kind == SOURCE_CONSTANT && !f->value.map &&
            (!json_is_string(k) || type_index(json_string_value(k)) < 0))
            return bad(c, at, "must be stage, activity, update or pipeline");
    }
    const json_t *type = json_object_get(spec, "type");
    if (!json_object_get(spec, "id"))
        return bad(c, where, "no `id`: every event needs one (e.g. \"crm-{eventId}\")");
    if (!type)
        return bad(c, where, "no `type` (stage, activity, update or pipeline)");
    int t = json_is_string(type) ? type_index(json_string_value(type)) : -1;
    if (t >= 0 && t != 3 && !json_object_get(spec, "deal"))
        return bad(c, where, "no `deal`: a %s event needs one", event_types[t]);
    if (t >= 0 && type_needs[t] && !json_object_get(spec, type_needs[t]))
        return bad(c, where, "no `%s`: a %s event needs one", type_needs[t], event_types[t]);
    return 0;
}

static int when_compile(const compiler *c, const char *where, const json_t *spec, mapping_case *mc)
{
    if (!json_is_object(spec))
        return bad(c, where, "must be an object of path to condition");
    mc->when = zalloc(json_object_size(spec), sizeof(condition));
    if (!mc->when)
        return bad(c, where, "out of memory");
    const char *key;
    json_t *item;
    json_object_foreach((json_t *)spec, key, item)
    {
        char at[256];
        snprintf(at, sizeof at, "%s.%s", where, key);
        condition *cond = &mc->when[mc->nwhen++];
        if (!path_parse(key, &cond->path))
            return bad(c, at, "`%s` is not a path such as $.a.b[0].c", key);
        if (json_is_object(item)) {
            const json_t *exists = json_object_get(item, "exists");
            if (json_object_size(item) != 1 || !json_is_boolean(exists))
                return bad(c, at, "an object condition is {\"exists\": true or false}");
            cond->kind = WHEN_EXISTS;
            cond->exists = json_is_true(exists);
        } else if (json_is_array(item)) {
            size_t i;
            json_t *one;
            json_array_foreach(item, i, one)
            {
                if (!scalar_or_null(one) || json_is_null(one))
                    return bad(c, at, "one of: the list holds only strings, numbers, booleans");
            }
            cond->kind = WHEN_ONE_OF;
            cond->expected = json_incref(item);
        } else {
            cond->kind = WHEN_EQUALS;
            cond->expected = json_incref(item);
        }
    }
    return 0;
}

static bool when_holds(const condition *cond, const json_t *item)
{
    const json_t *got = path_get(&cond->path, item);
    bool present = got && !json_is_null(got) && !(json_is_string(got) && !json_string_length(got));
    switch (cond->kind) {
    case WHEN_EXISTS:
        return present == cond->exists;
    case WHEN_EQUALS:
        return json_is_null(cond->expected) ? !present : present && same_text(got, cond->expected);
    case WHEN_ONE_OF: {
        size_t i;
        json_t *one;
        json_array_foreach(cond->expected, i, one)
        {
            if (present && same_text(got, one))
                return true;
        }
        return false;
    }
    }
    return false;
}

static int case_compile(const compiler *c, size_t index, const json_t *spec, mapping_case *mc)
{
    char where[64];
    snprintf(where, sizeof where, "cases[%zu]", index);
    if (!json_is_object(spec))
        return bad(c, where, "must be an object with `when` and `event` or `skip`");
    const char *key;
    json_t *item;
    json_object_foreach((json_t *)spec, key, item)
    {
        if (strcmp(key, "when") != 0 && strcmp(key, "event") != 0 && strcmp(key, "skip") != 0)
            return bad(c, where, "unknown key `%s` (when, event, skip)", key);
    }
    const json_t *when = json_object_get(spec, "when"), *event = json_object_get(spec, "event"),
                 *skip = json_object_get(spec, "skip");
    char at[80];
    snprintf(at, sizeof at, "%s.when", where);
    if (when && when_compile(c, at, when, mc) != 0)
        return -1;
    if (skip && !json_is_true(skip))
        return bad(c, where, "`skip` can only be true");
    if (!event == !skip)
        return bad(c, where, "needs `event` or `skip`: true, not both");
    mc->skip = skip != NULL;
    snprintf(at, sizeof at, "%s.event", where);
    return event ? event_compile(c, at, event, mc) : 0;
}

/* ---- the hook ---- */

void gw_hook_free(gw_hook *h)
{
    if (!h)
        return;
    free(h->name);
    free(h->secret);
    free(h->user);
    free(h->password);
    free(h->url);
    path_free(&h->items);
    for (size_t i = 0; i < h->ncases; i++)
        case_free(&h->cases[i]);
    free(h->cases);
    free(h);
}

static int text_key(const compiler *c, const json_t *spec, const char *key, char **out)
{
    const json_t *v = json_object_get(spec, key);
    if (!v)
        return 0;
    if (!json_is_string(v) || json_string_length(v) == 0 ||
        strlen(json_string_value(v)) != json_string_length(v))
        return bad(c, key, "must be a non-empty string");
    *out = strdup(json_string_value(v));
    return *out ? 0 : bad(c, key, "out of memory");
}

static int hook_compile(const compiler *c, const json_t *spec, gw_hook *h)
{
    static const char *const keys[] = {"signature", "secret", "user",  "password", "url",
                                       "items",     "event",  "cases", NULL};
    if (!json_is_object(spec))
        return bad(c, "", "must be an object with `signature` and `event` or `cases`");
    const char *key;
    json_t *item;
    json_object_foreach((json_t *)spec, key, item)
    {
        if (!listed(keys, key))
            return bad(c, "",
                       "unknown key `%s` (signature, secret, user, password, url, items, "
                       "event, cases)",
                       key);
    }
    const json_t *sig = json_object_get(spec, "signature");
    static const char *const kinds[] = {"none", "generic", "hubspot-v3", "basic", NULL};
    int kind = -1;
    for (int i = 0; json_is_string(sig) && kinds[i]; i++)
        if (strcmp(json_string_value(sig), kinds[i]) == 0)
            kind = i;
    if (kind < 0)
        return bad(c, "signature", "must be one of generic, hubspot-v3, basic or none");
    h->signature = (signature_kind)kind;
    if (text_key(c, spec, "secret", &h->secret) || text_key(c, spec, "user", &h->user) ||
        text_key(c, spec, "password", &h->password) || text_key(c, spec, "url", &h->url))
        return -1;
    bool hmac = h->signature == SIGNATURE_GENERIC || h->signature == SIGNATURE_HUBSPOT_V3;
    if (hmac != (h->secret != NULL))
        return bad(c, "secret", hmac ? "is needed by signature %s" : "is unused by signature %s",
                   kinds[kind]);
    bool basic = h->signature == SIGNATURE_BASIC;
    if (basic != (h->user != NULL) || basic != (h->password != NULL))
        return bad(c, basic && h->user ? "password" : "user",
                   basic ? "is needed by signature basic (user and password)"
                         : "is used only by signature basic");
    if (h->url && h->signature != SIGNATURE_HUBSPOT_V3)
        return bad(c, "url", "is used only by signature hubspot-v3");
    const json_t *items = json_object_get(spec, "items");
    if (items) {
        if (!json_is_string(items) || !path_parse(json_string_value(items), &h->items))
            return bad(c, "items", "must be a path such as $ or $.results");
        h->has_items = true;
    }
    const json_t *event = json_object_get(spec, "event"), *cases = json_object_get(spec, "cases");
    if (!event == !cases)
        return bad(c, "", "needs `event` or `cases`, not both");
    if (event) {
        h->cases = zalloc(1, sizeof(mapping_case));
        if (!h->cases)
            return bad(c, "event", "out of memory");
        h->ncases = 1;
        return event_compile(c, "event", event, &h->cases[0]);
    }
    if (!json_is_array(cases) || json_array_size(cases) == 0)
        return bad(c, "cases", "must be a non-empty array");
    h->cases = zalloc(json_array_size(cases), sizeof(mapping_case));
    if (!h->cases)
        return bad(c, "cases", "out of memory");
    for (size_t i = 0; i < json_array_size(cases); i++) {
        h->ncases++;
        if (case_compile(c, i, json_array_get(cases, i), &h->cases[i]) != 0)
            return -1;
    }
    return 0;
}

gw_hook *gw_hook_compile(const char *name, const json_t *spec, char *err, size_t cap)
{
    compiler c = {name, err, cap};
    gw_hook *h = zalloc(1, sizeof *h);
    if (!h || !(h->name = strdup(name))) {
        free(h);
        bad(&c, "", "out of memory");
        return NULL;
    }
    if (hook_compile(&c, spec, h) != 0) {
        gw_hook_free(h);
        return NULL;
    }
    return h;
}

int gw_hook_verify(const gw_hook *h, const gw_hook_request *r, char *err, size_t cap)
{
#define HEADER(name) (r->header ? r->header(r->header_ctx, (name)) : NULL)
    switch (h->signature) {
    case SIGNATURE_NONE:
        return 0;
    case SIGNATURE_GENERIC:
        return gw_signature_check_generic(h->secret, r->body, r->body_len, HEADER("X-Signature"),
                                          err, cap);
    case SIGNATURE_HUBSPOT_V3:
        return gw_signature_check_hubspot_v3(h->secret, r->method, h->url ? h->url : r->url,
                                             r->body, r->body_len, HEADER("X-HubSpot-Signature-v3"),
                                             HEADER("X-HubSpot-Request-Timestamp"), r->now_ms, err,
                                             cap);
    case SIGNATURE_BASIC:
        return gw_signature_check_basic(h->user, h->password, HEADER("Authorization"), err, cap);
    }
#undef HEADER
    snprintf(err, cap, "no signature kind");
    return -1;
}

/* ---- applying a mapping ---- */

/* Where an error of mapping happened, for the message. */
typedef struct mapper {
    char *err;
    size_t cap;
    char item[32]; /* "items[3]" or "the payload" */
} mapper;

static int wrong(const mapper *m, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int wrong(const mapper *m, const char *fmt, ...)
{
    if (!m->err || !m->cap)
        return -1;
    int n = snprintf(m->err, m->cap, "%s: ", m->item);
    if (n >= 0 && (size_t)n < m->cap) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(m->err + n, m->cap - (size_t)n, fmt, ap);
        va_end(ap);
    }
    return -1;
}

/* 1 with *out a new reference, 0 when the template gives nothing, -1 after an error. */
static int template_eval(const mapper *m, const field *f, const json_t *item, json_t **out)
{
    char text[TEXT_MAX];
    size_t len = 0;
    for (size_t i = 0; i < f->value.nparts; i++) {
        const part *pt = &f->value.parts[i];
        const char *s = pt->literal;
        size_t n = pt->len;
        char num[NUM_TEXT];
        if (!s) {
            int got = scalar_text(path_get(&pt->path, item), num, &s, &n);
            if (got == 0 || (got > 0 && n == 0))
                return 0;
            if (got < 0)
                return wrong(m, "`%s` from `%s`: a part is an object or an array", f->key,
                             f->value.text);
        }
        if (len + n >= sizeof text)
            return wrong(m, "`%s` from `%s` is over %d bytes", f->key, f->value.text, TEXT_MAX);
        memcpy(text + len, s, n);
        len += n;
    }
    if (len == 0)
        return 0;
    *out = json_stringn(text, len);
    return *out ? 1 : wrong(m, "`%s` from `%s` is not text", f->key, f->value.text);
}

/* Puts v in the form the contract gives key: text for the string keys, ms for times, a number
 * for amount. 1 with *out a new reference, 0 for nothing, -1 after an error. Takes v. */
static int shape(const mapper *m, const field *f, json_t *v, json_t **out)
{
    const char *key = f->key;
    char num[NUM_TEXT];
    const char *text = NULL;
    size_t len = 0;
    int got = scalar_text(v, num, &text, &len);
    if (got >= 0 && json_is_string(v) && len == 0)
        got = 0; /* "" counts as absent, as an empty CSV column does for import */
    if (got == 0) {
        json_decref(v);
        return 0;
    }
    if (listed(text_keys, key)) {
        if (got < 0) {
            json_decref(v);
            return wrong(m, "`%s` from `%s` is an object or an array, not text", key,
                         f->value.text);
        }
        *out = json_is_string(v) ? v : json_stringn(text, len);
        if (*out != v)
            json_decref(v);
        return *out ? 1 : wrong(m, "out of memory");
    }
    bool time = strcmp(key, "at") == 0 || strcmp(key, "close_date") == 0;
    if (!time && strcmp(key, "amount") != 0) {
        *out = v; /* a key the contract does not read is kept as it is */
        return 1;
    }
    json_t *shaped = NULL;
    if (json_is_integer(v)) {
        shaped = json_incref(v);
    } else if (json_is_real(v) && !time) {
        shaped = json_incref(v);
    } else if (json_is_real(v)) {
        double d = json_real_value(v);
        if (d == floor(d) && fabs(d) < 9.0e15)
            shaped = json_integer((json_int_t)d);
    } else if (json_is_string(v) && time) {
        int64_t ms;
        if (strcmp(text, "now") != 0 && strlen(text) == len && time_parse(text, &ms))
            shaped = json_integer(ms);
    } else if (json_is_string(v) && strspn(text, "0123456789+-.eE") == len) {
        /* decimal text only: strtod alone would also read hex, inf and nan */
        char *end;
        errno = 0;
        long long i = strtoll(text, &end, 10);
        if (*end == '\0' && errno == 0 && end != text) {
            shaped = json_integer(i);
        } else {
            double d = strtod(text, &end);
            if (*end == '\0' && end != text && isfinite(d))
                shaped = json_real(d);
        }
    }
    json_decref(v);
    if (!shaped)
        return wrong(m, "`%s` from `%s` is not %s", key, f->value.text,
                     time ? "a time in ms or ISO 8601" : "a number");
    *out = shaped;
    return 1;
}

/* The value of one key for item: 1 with *out a new reference, 0 for nothing, -1 after an error. */
static int field_eval(const mapper *m, const field *f, const json_t *item, json_t **out)
{
    const value *v = &f->value;
    json_t *got = NULL;
    int rc = 1;
    switch (v->kind) {
    case SOURCE_CONSTANT:
        got = json_incref(v->constant);
        break;
    case SOURCE_PATH:
        got = json_incref((json_t *)path_get(&v->path, item));
        if (json_is_null(got) || (json_is_string(got) && json_string_length(got) == 0)) {
            json_decref(got);
            got = NULL;
        }
        rc = got ? 1 : 0;
        break;
    case SOURCE_TEMPLATE:
        rc = template_eval(m, f, item, &got);
        break;
    }
    if (rc < 0)
        return -1;
    if (got && v->map) {
        char num[NUM_TEXT];
        const char *text;
        size_t len;
        if (scalar_text(got, num, &text, &len) < 0) {
            json_decref(got);
            return wrong(m, "`%s` from `%s` is an object or an array, which no map maps", f->key,
                         v->text);
        }
        json_t *mapped = strlen(text) == len ? json_object_get(v->map, text) : NULL;
        if (mapped || v->fallback) {
            json_decref(got);
            got = json_incref(mapped ? mapped : v->fallback);
            if (json_is_null(got)) {
                json_decref(got);
                got = NULL;
            }
        }
    }
    if (!got && v->fallback)
        got = json_incref(v->fallback);
    if (!got)
        return 0;
    return shape(m, f, got, out);
}

static json_t *event_build(const mapper *m, const mapping_case *mc, const json_t *item)
{
    json_t *event = json_object();
    if (!event) {
        wrong(m, "out of memory");
        return NULL;
    }
    for (size_t i = 0; i < mc->nfields; i++) {
        json_t *v = NULL;
        int rc = field_eval(m, &mc->fields[i], item, &v);
        if (rc < 0 || (rc > 0 && json_object_set_new(event, mc->fields[i].key, v) != 0)) {
            if (rc > 0)
                wrong(m, "out of memory");
            json_decref(event);
            return NULL;
        }
    }
    const char *type = json_string_value(json_object_get(event, "type"));
    int t = type ? type_index(type) : -1;
    const char *missing = !json_object_get(event, "id")                             ? "id"
                          : t < 0                                                   ? "type"
                          : t != 3 && !json_object_get(event, "deal")               ? "deal"
                          : type_needs[t] && !json_object_get(event, type_needs[t]) ? type_needs[t]
                                                                                    : NULL;
    if (missing) {
        const char *from = "";
        for (size_t i = 0; i < mc->nfields; i++)
            if (strcmp(mc->fields[i].key, missing) == 0)
                from = mc->fields[i].value.text;
        if (t < 0 && type)
            wrong(m, "type `%s` from `%s` is not stage, activity, update or pipeline", type, from);
        else
            wrong(m, "no `%s`%s%s%s", missing, *from ? ": `" : "", from,
                  *from ? "` gives nothing" : "");
        json_decref(event);
        return NULL;
    }
    return event;
}

static const mapping_case *case_for(const gw_hook *h, const json_t *item)
{
    for (size_t i = 0; i < h->ncases; i++) {
        const mapping_case *mc = &h->cases[i];
        bool holds = true;
        for (size_t w = 0; holds && w < mc->nwhen; w++)
            holds = when_holds(&mc->when[w], item);
        if (holds)
            return mc;
    }
    return NULL;
}

json_t *gw_hook_map(const gw_hook *h, const char *body, size_t len, char *err, size_t cap)
{
    mapper m = {err, cap, "the payload"};
    if (err && cap)
        err[0] = '\0';
    json_error_t jerr;
    json_t *root = json_loadb(body ? body : "", body ? len : 0, JSON_REJECT_DUPLICATES, &jerr);
    if (!root) {
        wrong(&m, "not JSON: %s at byte %d", jerr.text, jerr.position);
        return NULL;
    }
    const json_t *items = root;
    size_t n = 1;
    if (h->has_items) {
        items = path_get(&h->items, root);
        if (!json_is_array(items)) {
            wrong(&m, "the items are not an array");
            json_decref(root);
            return NULL;
        }
        n = json_array_size(items);
        if (n > GW_HOOK_MAX_ITEMS) {
            wrong(&m, "%zu items, over the %d one request takes", n, GW_HOOK_MAX_ITEMS);
            json_decref(root);
            return NULL;
        }
    }
    json_t *events = json_array();
    for (size_t i = 0; events && i < n; i++) {
        const json_t *item = h->has_items ? json_array_get(items, i) : root;
        if (h->has_items)
            snprintf(m.item, sizeof m.item, "items[%zu]", i);
        const mapping_case *mc = case_for(h, item);
        if (!mc) {
            wrong(&m, "no case of the hook fits it");
            json_decref(events);
            events = NULL;
            break;
        }
        if (mc->skip)
            continue;
        json_t *event = event_build(&m, mc, item);
        if (!event || json_array_append_new(events, event) != 0) {
            json_decref(events);
            events = NULL;
        }
    }
    if (!events && err && cap && !*err)
        snprintf(err, cap, "out of memory");
    json_decref(root);
    return events;
}

/* clients.c: the clients file's text into the set of keys the daemon admits: a role, a public
 * key and a name a line, blank lines and # comments, each key and each name listed once. */
#include "clients.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "keyfile.h"

/* Splits s at blanks into up to max words; returns how many (max + 1 when
 * there are more). A word that starts with # starts a comment, but only
 * where a key cannot be (Z85 uses #): before the first word (a line that
 * is a comment) and after the last. */
static int split_words(char *s, char **words, int max)
{
    int n = 0;
    for (char *p = s;;) {
        while (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n')
            p++;
        if (!*p || (*p == '#' && (n == 0 || n == max)))
            return n;
        if (n == max)
            return max + 1;
        words[n++] = p;
        while (*p && *p != ' ' && *p != '\t' && *p != '\r' && *p != '\n')
            p++;
        if (*p)
            *p++ = '\0';
    }
}

static int compare_keys(const void *a, const void *b)
{
    return memcmp(((const df_client_entry *)a)->key, ((const df_client_entry *)b)->key, 32);
}

static bool parse_role(const char *s, unsigned *roles)
{
    if (strcmp(s, "producer") == 0)
        *roles = DF_ROLE_PRODUCER;
    else if (strcmp(s, "reader") == 0)
        *roles = DF_ROLE_READER;
    else if (strcmp(s, "admin") == 0)
        *roles = DF_ROLE_ADMIN;
    else
        return false;
    return true;
}

static bool printable_name(const char *s)
{
    size_t len = strlen(s);
    if (len == 0 || len > DF_AUTH_NAME_MAX)
        return false;
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)s[i] < 0x21 || (unsigned char)s[i] == 0x7f)
            return false;
    return true;
}

/* Parses one line (NUL-terminated, changed in place) into *c; false with why set. A line
 * with no words (blank, or a comment) sets *empty. */
static bool parse_line(char *line, const char *file, unsigned lineno, df_client_entry *c,
                       bool *empty, char *why, size_t why_len)
{
    char *words[3];
    int n = split_words(line, words, 3);
    *empty = n == 0;
    if (n == 0)
        return true;
    if (n != 3) {
        snprintf(why, why_len, "%s:%u: expected ROLE PUBLIC_KEY NAME", file, lineno);
        return false;
    }
    if (!parse_role(words[0], &c->roles)) {
        snprintf(why, why_len, "%s:%u: the role must be producer, reader or admin", file, lineno);
        return false;
    }
    if (!df_key_z85_decode(words[1], strlen(words[1]), c->key)) {
        snprintf(why, why_len, "%s:%u: the public key must be 40 characters of Z85", file, lineno);
        return false;
    }
    if (!printable_name(words[2])) {
        snprintf(why, why_len, "%s:%u: the name must be 1..%d printable characters", file, lineno,
                 DF_AUTH_NAME_MAX);
        return false;
    }
    strcpy(c->name, words[2]);
    return true;
}

bool df_clients_parse(const char *text, size_t len, const char *file, df_client_set *out, char *why,
                      size_t why_len)
{
    df_client_set set = {NULL, 0};
    size_t cap = 0;
    const char *p = text, *end = text + len;
    for (unsigned lineno = 1; p < end; lineno++) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
        char line[DF_CLIENTS_LINE_MAX + 1];
        if (n > DF_CLIENTS_LINE_MAX) {
            snprintf(why, why_len, "%s:%u: the line is too long", file, lineno);
            goto fail;
        }
        if (memchr(p, '\0', n)) {
            snprintf(why, why_len, "%s:%u: the line holds a NUL byte", file, lineno);
            goto fail;
        }
        memcpy(line, p, n);
        line[n] = '\0';
        p = nl ? nl + 1 : end;
        df_client_entry c = {0};
        bool empty;
        if (!parse_line(line, file, lineno, &c, &empty, why, why_len))
            goto fail;
        if (empty)
            continue;
        for (size_t i = 0; i < set.count; i++) {
            if (memcmp(set.items[i].key, c.key, 32) == 0 ||
                strcmp(set.items[i].name, c.name) == 0) {
                snprintf(why, why_len, "%s:%u: the key or the name `%s` is listed twice", file,
                         lineno, c.name);
                goto fail;
            }
        }
        if (set.count == cap) {
            size_t ncap = cap ? 2 * cap : 16;
            df_client_entry *items = realloc(set.items, ncap * sizeof(*items));
            if (!items) {
                snprintf(why, why_len, "out of memory reading %s", file);
                goto fail;
            }
            set.items = items;
            cap = ncap;
        }
        set.items[set.count++] = c;
    }
    if (set.count)
        qsort(set.items, set.count, sizeof(df_client_entry), compare_keys);
    *out = set;
    return true;
fail:
    free(set.items);
    return false;
}

const df_client_entry *df_clients_find(const df_client_set *set, const uint8_t key[32])
{
    df_client_entry probe;
    memcpy(probe.key, key, 32);
    return set->count
               ? bsearch(&probe, set->items, set->count, sizeof(df_client_entry), compare_keys)
               : NULL;
}

void df_clients_free(df_client_set *set)
{
    free(set->items);
    set->items = NULL;
    set->count = 0;
}

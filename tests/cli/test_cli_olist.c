/* test_cli_olist.c: imports the Olist marketing funnel (8000 leads, 842 won) with `dealflow import`
 * twice and checks the board and deals against figures computed from the CSV files here. */
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "check.h"
#include "cli_run.h"

#define MAX_LEADS 9000
#define MAX_WON   1000
#define ID_LEN    32

typedef struct lead {
    char id[ID_LEN + 1];
    long long at; /* first contact, ms */
} lead;

typedef struct won {
    char id[ID_LEN + 1];
    char owner[ID_LEN + 1];
    long long at;
} won;

static lead leads[MAX_LEADS];
static won wins[MAX_WON];
static int nleads, nwins;

/* ms of a UTC date, by the C library rather than the command's own code. */
static long long utc_ms(int y, int mo, int d, int h, int mi)
{
    struct tm tm = {
        .tm_year = y - 1900, .tm_mon = mo - 1, .tm_mday = d, .tm_hour = h, .tm_min = mi};
    return (long long)timegm(&tm) * 1000;
}

/* The files have no quoted fields: a plain split is enough here. */
static int split(char *line, char **fields, int max)
{
    int n = 0;
    line[strcspn(line, "\r\n")] = '\0';
    for (char *p = line; n < max;) {
        fields[n++] = p;
        char *comma = strchr(p, ',');
        if (!comma)
            break;
        *comma = '\0';
        p = comma + 1;
    }
    return n;
}

/* A field longer than the test expects means the data set is not the one it
 * was written for: refused rather than cut short. */
static bool copy_field(char *dst, size_t size, const char *field)
{
    size_t len = strlen(field);
    if (len >= size)
        return false;
    memcpy(dst, field, len + 1);
    return true;
}

static bool read_data(const char *leads_path, const char *won_path)
{
    char line[1024];
    char *f[16];
    FILE *in = fopen(leads_path, "r");
    if (!in || !fgets(line, sizeof line, in))
        return false;
    while (fgets(line, sizeof line, in) && nleads < MAX_LEADS) {
        int d, m, y;
        if (split(line, f, 16) < 2 || sscanf(f[1], "%d-%d-%d", &d, &m, &y) != 3)
            return false;
        if (!copy_field(leads[nleads].id, sizeof leads[nleads].id, f[0]))
            return false;
        leads[nleads++].at = utc_ms(y, m, d, 0, 0);
    }
    fclose(in);
    in = fopen(won_path, "r");
    if (!in || !fgets(line, sizeof line, in))
        return false;
    while (fgets(line, sizeof line, in) && nwins < MAX_WON) {
        int d, m, y, h, mi;
        if (split(line, f, 16) < 5 || sscanf(f[4], "%d-%d-%d %d:%d", &d, &m, &y, &h, &mi) != 5)
            return false;
        if (!copy_field(wins[nwins].id, sizeof wins[nwins].id, f[0]) ||
            !copy_field(wins[nwins].owner, sizeof wins[nwins].owner, f[3]))
            return false;
        wins[nwins++].at = utc_ms(y, m, d, h, mi);
    }
    fclose(in);
    return true;
}

static const lead *find_lead(const char *id)
{
    for (int i = 0; i < nleads; i++)
        if (strcmp(leads[i].id, id) == 0)
            return &leads[i];
    return NULL;
}

static json_t *import_json(it_daemon *d, const char *const *args)
{
    cli_result r = cli_run(d, NULL, args);
    CHECK_INT(r.status, 0);
    if (r.status != 0)
        fprintf(stderr, "stdout:\n%s\nstderr:\n%s\n", r.out, r.err);
    json_t *summary = json_loads(r.out, 0, NULL);
    cli_result_free(&r);
    return summary;
}

static long long get_int(json_t *o, const char *key)
{
    return (long long)json_integer_value(json_object_get(o, key));
}

static char leads_path[1024], won_path[1024];
static int expect_won, expect_lead;
static it_daemon D;

static bool read_files_and_start(void)
{
    signal(SIGPIPE, SIG_IGN);
    snprintf(leads_path, sizeof leads_path, "%s/olist-marketing-qualified-leads.csv",
             cli_data_dir());
    snprintf(won_path, sizeof won_path, "%s/olist-closed-deals.csv", cli_data_dir());
    CHECK(read_data(leads_path, won_path));
    CHECK_INT(nleads, 8000);
    CHECK_INT(nwins, 842);

    /* What the board must say: a won deal whose won_date comes before its
     * first contact folds to `lead` (event time decides), the others to `won`. */
    expect_won = 0;
    for (int i = 0; i < nwins; i++) {
        const lead *l = find_lead(wins[i].id);
        CHECK(l != NULL);
        if (l && wins[i].at >= l->at)
            expect_won++;
    }
    expect_lead = nleads - expect_won;

    if (!it_start(&D, NULL)) {
        CHECK(!"dealflowd started");
        return false;
    }
    return true;
}

static void stop_daemon(void)
{
    it_cleanup(&D);
    CHECK_INT(it_done(), 0);
}

/* Both files, imported twice: the second time every row is a duplicate. */
static void test_import_twice(void)
{
    const char *const import_leads[] = {
        "--json",   "import",  leads_path, "--id", "lead-{mql_id}",      "--deal",
        "{mql_id}", "--stage", "lead",     "--at", "first_contact_date", "--at-format",
        "%d-%m-%Y", NULL};
    const char *const import_won[] = {
        "--json",         "import",  won_path,  "--id", "won-{mql_id}", "--deal",
        "{mql_id}",       "--stage", "won",     "--at", "won_date",     "--at-format",
        "%d-%m-%Y %H:%M", "--owner", "{sr_id}", NULL};
    for (int round = 0; round < 2; round++) {
        json_t *s = import_json(&D, import_leads);
        CHECK_INT(get_int(s, "rows"), 8000);
        CHECK_INT(get_int(s, "recorded"), round == 0 ? 8000 : 0);
        CHECK_INT(get_int(s, "duplicates"), round == 0 ? 0 : 8000);
        CHECK_INT(get_int(s, "refused"), 0);
        json_decref(s);
        s = import_json(&D, import_won);
        CHECK_INT(get_int(s, "rows"), 842);
        CHECK_INT(get_int(s, "recorded"), round == 0 ? 842 : 0);
        CHECK_INT(get_int(s, "duplicates"), round == 0 ? 0 : 842);
        json_decref(s);
    }
    CHECK_INT(it_stat(&D, "events"), 8842);
    CHECK_INT(it_stat(&D, "deals"), 8000);
}

static void test_board(void)
{
    cli_result r = CLI(&D, NULL, "--json", "board");
    CHECK_INT(r.status, 0);
    json_t *board = json_loads(r.out, 0, NULL);
    json_t *stages = json_object_get(board, "stages");
    long long counts[2] = {-1, -1};
    for (size_t i = 0; i < json_array_size(stages); i++) {
        json_t *st = json_array_get(stages, i);
        const char *name = json_string_value(json_object_get(st, "stage"));
        if (name && strcmp(name, "lead") == 0)
            counts[0] = get_int(st, "count");
        if (name && strcmp(name, "won") == 0)
            counts[1] = get_int(st, "count");
    }
    CHECK_INT(counts[0], expect_lead);
    CHECK_INT(counts[1], expect_won);
    json_decref(board);
    cli_result_free(&r);
    r = CLI(&D, NULL, "board");
    CHECK_INT(r.status, 0);
    char row[64];
    snprintf(row, sizeof row, "%8d", expect_won);
    CHECK(strstr(r.out, "won") && strstr(r.out, row));
    cli_result_free(&r);
}

static void test_deals(void)
{
    /* A few deals, checked against the files: the first and last won, every
     * won deal that folds back to lead, and a lead never won. */
    cli_result r;
    for (int i = 0; i < nwins; i++) {
        const lead *l = find_lead(wins[i].id);
        bool folds_to_lead = l && wins[i].at < l->at;
        if (i != 0 && i != nwins - 1 && !folds_to_lead)
            continue;
        r = CLI(&D, NULL, "--json", "deal", wins[i].id);
        CHECK_INT(r.status, 0);
        json_t *deal = json_loads(r.out, 0, NULL);
        CHECK_STR(json_string_value(json_object_get(deal, "stage")),
                  folds_to_lead ? "lead" : "won");
        CHECK_STR(json_string_value(json_object_get(deal, "owner")), wins[i].owner);
        CHECK_INT(get_int(deal, "stage_since"), folds_to_lead ? l->at : wins[i].at);
        CHECK_INT(get_int(deal, "created"), l && l->at < wins[i].at ? l->at : wins[i].at);
        CHECK_INT(get_int(deal, "version"), 2);
        json_decref(deal);
        cli_result_free(&r);
    }
    for (int i = 0; i < nleads; i++) {
        bool is_won = false;
        for (int w = 0; w < nwins && !is_won; w++)
            is_won = strcmp(wins[w].id, leads[i].id) == 0;
        if (is_won)
            continue;
        r = CLI(&D, NULL, "--json", "deal", leads[i].id);
        json_t *deal = json_loads(r.out, 0, NULL);
        CHECK_STR(json_string_value(json_object_get(deal, "stage")), "lead");
        CHECK_STR(json_string_value(json_object_get(deal, "status")), "open");
        CHECK_INT(get_int(deal, "stage_since"), leads[i].at);
        CHECK(json_is_null(json_object_get(deal, "owner")));
        json_decref(deal);
        cli_result_free(&r);
        r = CLI(&D, NULL, "history", leads[i].id);
        CHECK_INT(r.status, 0);
        CHECK_INT(cli_count_lines(r.out), 2);
        cli_result_free(&r);
        break;
    }
}

static void test_metrics(void)
{
    /* The won deals in the pipeline, by status. */
    cli_result r = CLI(&D, NULL, "--json", "metrics");
    CHECK_INT(r.status, 0);
    json_t *m = json_loads(r.out, 0, NULL);
    CHECK_INT(get_int(m, "won"), expect_won);
    CHECK_INT(get_int(m, "open"), expect_lead);
    json_decref(m);
    cli_result_free(&r);
}

static const df_test tests[] = {
    {"import_twice", test_import_twice}, {"board", test_board}, {"deals", test_deals},
    {"metrics", test_metrics},           {NULL, NULL},
};

int main(int argc, char **argv)
{
    static const df_fixture fixture = {.setup = read_files_and_start, .teardown = stop_daemon};
    return df_test_main(argc, argv, tests, &fixture);
}

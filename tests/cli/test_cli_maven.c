/* test_cli_maven.c: imports the Maven CRM sales pipeline (8800 opportunities) with one `dealflow
 * import`, an engaging and a closing event per row, then each deal's product with a second, and
 * checks the board, metrics, losses, the quarterly series, the figures by product, forecast and
 * calibration against figures computed from the CSV file here. */
#include <jansson.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "check.h"
#include "cli_run.h"

#define DAY_MS       86400000.0
#define MAX_QUARTERS 16
#define MAX_PRODUCTS 16

static char csv_path[1024];
static it_daemon D;

/* What the file says, counted here rather than by the command. */
static int rows, engaging, won, lost, prospecting;
static double won_cycle_days; /* summed over won rows */
static long long won_amount;

/* The deals of a calendar quarter (those closed in it, and created in it) or of a product. */
typedef struct tally {
    int won, lost, open, created;
    long long won_amount, lost_amount;
    double won_cycle_days;
} tally;

/* UTC calendar quarters from the one the first engage date falls in to the one of the last close
 * date, numbered year * 4 + quarter of the year. */
static int first_quarter = -1, last_quarter = -1;
static tally quarters[MAX_QUARTERS];
static struct product {
    char name[64];
    tally t;
} products[MAX_PRODUCTS];
static int nproducts;

/* ms of a UTC date, by the C library rather than the command's own code. */
static bool date_ms(const char *text, long long *ms)
{
    int y, mo, d;
    if (sscanf(text, "%d-%d-%d", &y, &mo, &d) != 3)
        return false;
    struct tm tm = {.tm_year = y - 1900, .tm_mon = mo - 1, .tm_mday = d};
    *ms = (long long)timegm(&tm) * 1000;
    return true;
}

static int quarter_of(long long ms)
{
    time_t secs = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&secs, &tm);
    return (tm.tm_year + 1900) * 4 + tm.tm_mon / 3;
}

static long long quarter_start_ms(int quarter)
{
    struct tm tm = {.tm_year = quarter / 4 - 1900, .tm_mon = quarter % 4 * 3, .tm_mday = 1};
    return (long long)timegm(&tm) * 1000;
}

static struct product *product_named(const char *name)
{
    for (int i = 0; i < nproducts; i++)
        if (strcmp(products[i].name, name) == 0)
            return &products[i];
    if (nproducts == MAX_PRODUCTS || strlen(name) >= sizeof products[0].name)
        return NULL;
    snprintf(products[nproducts].name, sizeof products[0].name, "%s", name);
    return &products[nproducts++];
}

/* Counts a deal engaged at engaged and, unless closed is negative, won or lost at closed. */
static bool count_deal(const char *product, long long engaged, long long closed, bool is_won,
                       long long amount)
{
    struct product *p = product_named(product);
    int created_q = quarter_of(engaged) - first_quarter;
    if (!p || created_q < 0 || created_q >= MAX_QUARTERS)
        return false;
    quarters[created_q].created++;
    p->t.created++;
    if (closed < 0) {
        p->t.open++;
        return true;
    }
    int closed_q = quarter_of(closed) - first_quarter;
    if (closed_q < 0 || closed_q >= MAX_QUARTERS)
        return false;
    tally *per[2] = {&quarters[closed_q], &p->t};
    for (int i = 0; i < 2; i++) {
        if (is_won) {
            per[i]->won++;
            per[i]->won_amount += amount;
            per[i]->won_cycle_days += (double)(closed - engaged) / DAY_MS;
        } else {
            per[i]->lost++;
            per[i]->lost_amount += amount;
        }
    }
    return true;
}

/* The file has no quoted fields: a plain split, keeping empty fields. */
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

/* opportunity_id,sales_agent,product,account,deal_stage,engage_date,close_date,close_value:
 * the counts, the range of quarters, then (tally) each deal in its quarters and product. */
static bool read_data(FILE *in, bool tally_deals)
{
    char line[1024];
    char *f[16];
    if (!fgets(line, sizeof line, in) || strncmp(line, "opportunity_id,", 15) != 0)
        return false;
    while (fgets(line, sizeof line, in)) {
        if (split(line, f, 16) != 8)
            return false;
        rows++;
        const char *stage = f[4];
        long long engaged, closed;
        if (strcmp(stage, "Prospecting") == 0) {
            prospecting++;
            continue;
        }
        if (!date_ms(f[5], &engaged))
            return false;
        if (first_quarter < 0 || quarter_of(engaged) < first_quarter)
            first_quarter = quarter_of(engaged);
        if (strcmp(stage, "Engaging") == 0) {
            engaging++;
            if (tally_deals && !count_deal(f[2], engaged, -1, false, 0))
                return false;
            continue;
        }
        if (!date_ms(f[6], &closed) || closed < engaged)
            return false;
        if (quarter_of(closed) > last_quarter)
            last_quarter = quarter_of(closed);
        char *end;
        long long amount = strtoll(f[7], &end, 10);
        if (*f[7] == '\0' || *end != '\0')
            return false;
        bool is_won = strcmp(stage, "Won") == 0;
        if (is_won) {
            won++;
            won_cycle_days += (double)(closed - engaged) / DAY_MS;
            won_amount += amount;
        } else if (strcmp(stage, "Lost") == 0) {
            lost++;
        } else {
            return false;
        }
        if (tally_deals && !count_deal(f[2], engaged, closed, is_won, amount))
            return false;
    }
    return true;
}

static bool read_file_and_start(void)
{
    signal(SIGPIPE, SIG_IGN);
    snprintf(csv_path, sizeof csv_path, "%s/maven-crm-sales-pipeline.csv", cli_data_dir());
    FILE *in = fopen(csv_path, "r");
    CHECK(in != NULL);
    if (!in)
        return false;
    /* Once for the range of quarters, once more to count each deal in it. */
    CHECK(read_data(in, false));
    CHECK(last_quarter >= first_quarter && last_quarter - first_quarter < MAX_QUARTERS);
    rewind(in);
    rows = engaging = won = lost = prospecting = 0;
    won_cycle_days = 0;
    won_amount = 0;
    CHECK(read_data(in, true));
    fclose(in);
    CHECK_INT(rows, 8800);
    CHECK(won > 0 && lost > 0 && engaging > 0);
    CHECK(nproducts > 1);
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

static long long get_int(json_t *o, const char *key)
{
    return (long long)json_integer_value(json_object_get(o, key));
}

/* The pipeline the file's stages live in, then the file in one command. */
static void test_import(void)
{
    cli_result r =
        CLI(&D, NULL, "pipeline", "define", "--name", "maven", "--id", "pipeline-maven", "--stage",
            "engaging:50", "--stage", "won:100:-:won", "--stage", "lost:0:-:lost");
    CHECK_INT(r.status, 0);
    cli_result_free(&r);
    r = CLI(&D, NULL, "--json", "import", csv_path, "--id", "{opportunity_id}-engaged", "--deal",
            "{opportunity_id}", "--pipeline", "maven", "--stage", "engaging", "--at", "engage_date",
            "--owner", "{sales_agent}", "--amount", "close_value", "--where",
            "deal_stage=Engaging,Won,Lost", "--map", "deal_stage=Won:won,Lost:lost", "--also",
            "{opportunity_id}-closed:{deal_stage}:close_date");
    CHECK_INT(r.status, 0);
    if (r.status != 0)
        fprintf(stderr, "stdout:\n%s\nstderr:\n%s\n", r.out, r.err);
    json_t *s = json_loads(r.out, 0, NULL);
    CHECK_INT(get_int(s, "rows"), rows);
    CHECK_INT(get_int(s, "skipped"), prospecting);
    CHECK_INT(get_int(s, "recorded"), engaging + 2 * (won + lost));
    CHECK_INT(get_int(s, "refused"), 0);
    json_decref(s);
    cli_result_free(&r);
    CHECK_INT(it_stat(&D, "deals"), engaging + won + lost);
}

static void test_board(void)
{
    cli_result r = CLI(&D, NULL, "--json", "board", "--pipeline", "maven");
    CHECK_INT(r.status, 0);
    json_t *board = json_loads(r.out, 0, NULL);
    json_t *stages = json_object_get(board, "stages");
    static const char *const names[3] = {"engaging", "won", "lost"};
    long long counts[3] = {-1, -1, -1};
    for (size_t i = 0; i < json_array_size(stages); i++) {
        json_t *st = json_array_get(stages, i);
        const char *name = json_string_value(json_object_get(st, "stage"));
        for (int k = 0; k < 3; k++)
            if (name && strcmp(name, names[k]) == 0)
                counts[k] = get_int(st, "count");
    }
    CHECK_INT(counts[0], engaging);
    CHECK_INT(counts[1], won);
    CHECK_INT(counts[2], lost);
    json_decref(board);
    cli_result_free(&r);
}

static void test_metrics(void)
{
    cli_result r = CLI(&D, NULL, "--json", "metrics", "--pipeline", "maven");
    CHECK_INT(r.status, 0);
    json_t *m = json_loads(r.out, 0, NULL);
    CHECK_INT(get_int(m, "won"), won);
    CHECK_INT(get_int(m, "lost"), lost);
    CHECK_INT(get_int(m, "open"), engaging);
    double win_rate = json_real_value(json_object_get(m, "win_rate"));
    double cycle = json_real_value(json_object_get(m, "avg_cycle_days"));
    CHECK(fabs(win_rate - (double)won / (double)(won + lost)) < 1e-9);
    CHECK(fabs(cycle - won_cycle_days / won) < 1e-6);
    if (fabs(cycle - won_cycle_days / won) >= 1e-6)
        fprintf(stderr, "avg_cycle_days %f, the file says %f\n", cycle, won_cycle_days / won);
    json_decref(m);
    cli_result_free(&r);
}

/* Each deal's product, which only update events set: a second import of the same rows. */
static void test_import_products(void)
{
    cli_result r = CLI(&D, NULL, "--json", "import", csv_path, "--type", "update", "--id",
                       "{opportunity_id}-product", "--deal", "{opportunity_id}", "--pipeline",
                       "maven", "--product", "{product}", "--at", "engage_date", "--where",
                       "deal_stage=Engaging,Won,Lost");
    CHECK_STATUS(r, 0);
    json_t *s = json_loads(r.out, 0, NULL);
    CHECK_INT(get_int(s, "recorded"), engaging + won + lost);
    CHECK_INT(get_int(s, "refused"), 0);
    json_decref(s);
    cli_result_free(&r);
    CHECK_INT(it_stat(&D, "deals"), engaging + won + lost);
}

/* The daemon's JSON answer to a command that must succeed; NULL (a failed check) else. */
static json_t *answer(const char *const *args)
{
    cli_result r = cli_run(&D, NULL, args);
    CHECK_STATUS(r, 0);
    json_t *o = r.status == 0 ? json_loads(r.out, 0, NULL) : NULL;
    CHECK(o != NULL);
    cli_result_free(&r);
    return o;
}

static void same_int(json_t *o, const char *key, long long want, const char *what)
{
    json_t *v = json_object_get(o, key);
    CHECK(json_is_integer(v));
    CHECK_INT(json_integer_value(v), want);
    if (!json_is_integer(v) || json_integer_value(v) != want)
        fprintf(stderr, "  %s: %s is %lld, the file says %lld\n", what, key,
                (long long)json_integer_value(v), want);
}

/* A float of the reply against the file's quotient, nil when the file's divisor is 0. */
static void same_ratio(json_t *o, const char *key, double dividend, double divisor, double eps,
                       const char *what)
{
    json_t *v = json_object_get(o, key);
    if (divisor == 0) {
        CHECK(json_is_null(v));
        return;
    }
    double want = dividend / divisor;
    CHECK(json_is_number(v) && fabs(json_number_value(v) - want) < eps);
    if (!json_is_number(v) || fabs(json_number_value(v) - want) >= eps)
        fprintf(stderr, "  %s: %s is %f, the file says %f\n", what, key, json_number_value(v),
                want);
}

/* The window's figures of a metrics reply (or one entry of its series) against the file's. The
 * file's only open stage is engaging and it gives no reason for a loss. */
static void check_closed(json_t *m, const tally *t, const char *what)
{
    same_int(m, "won", t->won, what);
    same_int(m, "lost", t->lost, what);
    same_int(m, "created", t->created, what);
    same_int(m, "won_amount", t->won_amount, what);
    same_int(m, "lost_amount", t->lost_amount, what);
    same_ratio(m, "win_rate", t->won, t->won + t->lost, 1e-9, what);
    same_ratio(m, "avg_won_amount", (double)t->won_amount, t->won, 1e-6, what);
    same_ratio(m, "avg_cycle_days", t->won_cycle_days, t->won, 1e-6, what);
    json_t *from = json_object_get(m, "lost_from");
    CHECK_INT(json_object_size(from), 1);
    same_int(from, "engaging", t->lost, what);
    json_t *reasons = json_object_get(m, "loss_reasons");
    CHECK_INT(json_object_size(reasons), t->lost > 0 ? 1 : 0);
    if (t->lost > 0)
        same_int(reasons, "unspecified", t->lost, what);
}

static void all_deals(tally *t)
{
    *t = (tally){.won = won, .lost = lost, .open = engaging, .won_amount = won_amount};
    for (int q = 0; q <= last_quarter - first_quarter; q++) {
        t->created += quarters[q].created;
        t->lost_amount += quarters[q].lost_amount;
        t->won_cycle_days += quarters[q].won_cycle_days;
    }
}

/* Where deals are lost: every loss is from engaging, the file's only open stage. */
static void test_losses(void)
{
    json_t *m = answer((const char *const[]){"--json", "losses", "--pipeline", "maven", NULL});
    tally t;
    all_deals(&t);
    check_closed(m, &t, "losses");
    json_decref(m);
}

static void text_ms(char out[24], long long ms)
{
    snprintf(out, 24, "%lld", ms);
}

/* Won amounts and losses by the quarter of the close date, created by that of the engage date. */
static void test_quarters(void)
{
    char from[24], to[24];
    text_ms(from, quarter_start_ms(first_quarter));
    text_ms(to, quarter_start_ms(last_quarter + 1));
    json_t *m = answer((const char *const[]){"--json", "metrics", "--pipeline", "maven", "--by",
                                             "quarter", "--from", from, "--to", to, NULL});
    json_t *series = json_object_get(m, "series");
    int n = last_quarter - first_quarter + 1;
    CHECK_INT(json_array_size(series), n);
    for (int q = 0; q < n && q < (int)json_array_size(series); q++) {
        json_t *p = json_array_get(series, (size_t)q);
        char what[32];
        snprintf(what, sizeof what, "%d Q%d", (first_quarter + q) / 4, (first_quarter + q) % 4 + 1);
        same_int(p, "start", quarter_start_ms(first_quarter + q), what);
        same_int(p, "end", quarter_start_ms(first_quarter + q + 1), what);
        check_closed(p, &quarters[q], what);
    }
    json_decref(m);
}

/* The figures of each product's deals. */
static void test_products(void)
{
    for (int i = 0; i < nproducts; i++) {
        const struct product *p = &products[i];
        json_t *m = answer((const char *const[]){"--json", "metrics", "--pipeline", "maven",
                                                 "--product", p->name, NULL});
        check_closed(m, &p->t, p->name);
        same_int(m, "open", p->t.open, p->name);
        json_decref(m);
    }
}

/* The file gives open deals neither a close date nor an amount: they are all without a date and
 * weigh nothing; what it allows is the deals won in each quarter, overall and by product. */
static void check_forecast(const char *product, const tally *t, bool by_quarter)
{
    char from[24], to[24];
    text_ms(from, quarter_start_ms(first_quarter));
    text_ms(to, quarter_start_ms(last_quarter + 1));
    const char *args[16] = {"--json", "forecast", "--pipeline", "maven", "--by",  "quarter",
                            "--from", from,       "--to",       to,      "--now", to};
    if (product) {
        args[12] = "--product";
        args[13] = product;
    }
    json_t *f = answer(args);
    const char *what = product ? product : "forecast";
    json_t *periods = json_object_get(f, "periods");
    int n = last_quarter - first_quarter + 1;
    CHECK_INT(json_array_size(periods), n);
    long long won_count = 0, won_sum = 0;
    for (int q = 0; q < n && q < (int)json_array_size(periods); q++) {
        json_t *p = json_array_get(periods, (size_t)q);
        same_int(p, "start", quarter_start_ms(first_quarter + q), what);
        same_int(p, "count", 0, what);
        same_int(p, "amount", 0, what);
        if (by_quarter) {
            same_int(p, "won_count", quarters[q].won, what);
            same_int(p, "won_amount", quarters[q].won_amount, what);
        }
        won_count += json_integer_value(json_object_get(p, "won_count"));
        won_sum += json_integer_value(json_object_get(p, "won_amount"));
    }
    CHECK_INT(won_count, t->won);
    CHECK_INT(won_sum, t->won_amount);
    same_int(json_object_get(f, "overdue"), "count", 0, what);
    same_int(json_object_get(f, "no_date"), "count", t->open, what);
    same_int(json_object_get(f, "no_date"), "amount", 0, what);
    json_decref(f);
}

static void test_forecast(void)
{
    tally t;
    all_deals(&t);
    check_forecast(NULL, &t, true);
    for (int i = 0; i < nproducts; i++)
        check_forecast(products[i].name, &products[i].t, false);
}

/* Every closed deal was engaging, so engaging's actual share is the win rate of the deals that
 * closed; the won and lost stages are reached by their own deals only. */
static void check_calibration(const char *const *args, const tally *t, const char *what)
{
    json_t *c = answer(args);
    json_t *stages = json_object_get(c, "stages");
    CHECK_INT(json_array_size(stages), 3);
    static const char *const names[3] = {"engaging", "won", "lost"};
    const int configured[3] = {50, 100, 0};
    const int reached[3] = {t->won + t->lost, t->won, t->lost};
    const int of_them_won[3] = {t->won, t->won, 0};
    for (size_t i = 0; i < 3 && i < json_array_size(stages); i++) {
        json_t *st = json_array_get(stages, i);
        CHECK_STR(json_string_value(json_object_get(st, "stage")), names[i]);
        same_int(st, "configured", configured[i], what);
        same_int(st, "reached", reached[i], what);
        same_int(st, "won", of_them_won[i], what);
        same_ratio(st, "actual", of_them_won[i], reached[i], 1e-9, what);
    }
    json_decref(c);
}

static void test_calibration(void)
{
    tally t;
    all_deals(&t);
    check_calibration((const char *const[]){"--json", "calibration", "--pipeline", "maven", NULL},
                      &t, "calibration");
    for (int q = 0; q <= last_quarter - first_quarter; q++) {
        char from[24], to[24], what[32];
        text_ms(from, quarter_start_ms(first_quarter + q));
        text_ms(to, quarter_start_ms(first_quarter + q + 1));
        snprintf(what, sizeof what, "%d Q%d", (first_quarter + q) / 4, (first_quarter + q) % 4 + 1);
        check_calibration((const char *const[]){"--json", "calibration", "--pipeline", "maven",
                                                "--from", from, "--to", to, NULL},
                          &quarters[q], what);
    }
    for (int i = 0; i < nproducts; i++)
        check_calibration((const char *const[]){"--json", "calibration", "--pipeline", "maven",
                                                "--product", products[i].name, NULL},
                          &products[i].t, products[i].name);
}

/* A key the type does not read is refused before anything is sent. */
static void test_unread_key_refused(void)
{
    cli_result r = CLI(&D, NULL, "import", csv_path, "--id", "x-{opportunity_id}", "--deal",
                       "{opportunity_id}", "--stage", "engaging", "--product", "{product}");
    CHECK_INT(r.status, 2);
    CHECK(strstr(r.err, "--product") != NULL);
    cli_result_free(&r);
    CHECK_INT(it_stat(&D, "deals"), engaging + won + lost);
}

static const df_test tests[] = {
    {"import", test_import},
    {"import_products", test_import_products},
    {"board", test_board},
    {"metrics", test_metrics},
    {"losses", test_losses},
    {"quarters", test_quarters},
    {"products", test_products},
    {"forecast", test_forecast},
    {"calibration", test_calibration},
    {"unread_key_refused", test_unread_key_refused},
    {NULL, NULL},
};

int main(int argc, char **argv)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/maven-crm-sales-pipeline.csv", cli_data_dir());
    FILE *in = fopen(path, "r");
    if (!in) {
        printf("cli_maven skipped: no %s (set DF_TEST_DATA)\n", path);
        return 77;
    }
    fclose(in);
    static const df_fixture fixture = {.setup = read_file_and_start, .teardown = stop_daemon};
    return df_test_main(argc, argv, tests, &fixture);
}

/* test_cli_maven.c: imports the Maven CRM sales pipeline (8800 opportunities) with one `dealflow
 * import`, an engaging and a closing event per row, and checks the board and metrics against
 * figures computed from the CSV file here. */
#include <jansson.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "check.h"
#include "cli_run.h"

#define DAY_MS 86400000.0

static char csv_path[1024];
static it_daemon D;

/* What the file says, counted here rather than by the command. */
static int rows, engaging, won, lost, prospecting;
static double won_cycle_days; /* summed over won rows */

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

/* opportunity_id,sales_agent,product,account,deal_stage,engage_date,close_date,close_value */
static bool read_data(FILE *in)
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
        if (strcmp(stage, "Engaging") == 0) {
            engaging++;
            continue;
        }
        if (!date_ms(f[6], &closed) || closed < engaged)
            return false;
        if (strcmp(stage, "Won") == 0) {
            won++;
            won_cycle_days += (double)(closed - engaged) / DAY_MS;
        } else if (strcmp(stage, "Lost") == 0) {
            lost++;
        } else {
            return false;
        }
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
    CHECK(read_data(in));
    fclose(in);
    CHECK_INT(rows, 8800);
    CHECK(won > 0 && lost > 0 && engaging > 0);
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
    {"board", test_board},
    {"metrics", test_metrics},
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

/* test_cli_tour.c: runs the commands of README's "A short tour", as written there, from the top
 * of the source tree against a real daemon, and checks their exit statuses and what they print. */
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "cli_run.h"

#ifndef TOUR_SOURCE_DIR
#error "TOUR_SOURCE_DIR must name the source tree"
#endif
#ifndef TOUR_DEALFLOW
#error "TOUR_DEALFLOW must name the dealflow binary"
#endif

#define MAX_COMMANDS 32
#define MAX_COMMAND  2048

/* What one command of the tour must print: every needle on stdout. A
 * command is matched by its start, so the table says which commands the
 * tour has; one it does not know fails the test. */
typedef struct expectation {
    const char *starts;
    const char *needles[6];
} expectation;

static const expectation expected[] = {
    {"dealflow ping", {"dealflowd ", "last seq 0"}},
    {"dealflow send --file examples/pipeline.json", {"1 recorded, 0 duplicates, 0 refused"}},
    {"dealflow pipeline define --file examples/pipeline.json", {"default", "proposal"}},
    {"dealflow send '{", {"2 recorded, 0 duplicates, 0 refused"}},
    {"dealflow send --file examples/events.ndjson", {"22 recorded, 0 duplicates, 0 refused"}},
    {"dealflow import examples/leads.csv", {"5 rows: 5 recorded, 0 duplicates, 0 refused"}},
    {"dealflow board", {"pipeline default", "proposal", "stale", "total"}},
    {"dealflow metrics --owner dana", {"win rate", "50.0%", "conversion"}},
    {"dealflow list --stage proposal --stale", {"hooli", "umbrella", "2 deals"}},
    {"dealflow history acme", {"moved to qualified", "call by dana"}},
    {"dealflow replay --after 0 --json", {"\"id\":\"evt-1\"", "\"id\":\"globex-7\""}},
    {"dealflow pipeline", {"default", "proposal"}},
    /* every move the tour made: acme, 18 in events.ndjson, 5 leads */
    {"dealflow tail --from 0",
     {"acme  (new) -> qualified", "globex  negotiation -> won", "mql-0005  (new) -> lead",
      "catch-up"}},
};

#define TOUR_MOVES 24

static it_daemon D;
static char commands[MAX_COMMANDS][MAX_COMMAND];
static int ncommands;

/* The tour's commands: the indented lines of the section that start with
 * `dealflow`, with their continuation lines. */
static bool read_tour(void)
{
    char path[1024], line[MAX_COMMAND];
    snprintf(path, sizeof path, "%s/README.md", TOUR_SOURCE_DIR);
    FILE *in = fopen(path, "r");
    if (!in)
        return false;
    bool in_tour = false, continued = false;
    while (fgets(line, sizeof line, in)) {
        if (strncmp(line, "## ", 3) == 0) {
            in_tour = strcmp(line, "## A short tour\n") == 0;
            continue;
        }
        if (!in_tour)
            continue;
        line[strcspn(line, "\n")] = '\0';
        char *text = line;
        if (strncmp(text, "    ", 4) != 0) {
            continued = false;
            continue;
        }
        while (*text == ' ')
            text++;
        if (!continued && strncmp(text, "dealflow ", 9) != 0 && strcmp(text, "dealflow") != 0)
            continue;
        if (!continued) {
            if (ncommands == MAX_COMMANDS)
                return false;
            ncommands++;
        }
        char *cmd = commands[ncommands - 1];
        size_t len = strlen(text);
        continued = len > 0 && text[len - 1] == '\\';
        if (continued)
            text[--len] = '\0';
        if (strlen(cmd) + len + 2 > MAX_COMMAND)
            return false;
        if (cmd[0])
            strcat(cmd, " ");
        strcat(cmd, text);
    }
    fclose(in);
    return ncommands > 0;
}

static const expectation *expectation_of(const char *command)
{
    const expectation *best = NULL;
    for (size_t i = 0; i < sizeof expected / sizeof expected[0]; i++)
        if (strncmp(command, expected[i].starts, strlen(expected[i].starts)) == 0 &&
            (!best || strlen(expected[i].starts) > strlen(best->starts)))
            best = &expected[i];
    return best;
}

/* Runs one line of the tour through sh, in the source tree, with `dealflow`
 * the built command (the tour's alias, which sh would not expand). */
static cli_result run_tour_command(const char *command)
{
    char script[MAX_COMMAND + 256];
    snprintf(script, sizeof script, "dealflow() { \"%s\" \"$@\"; }\n%s", TOUR_DEALFLOW, command);
    char out_path[IT_PATH_MAX + 16], err_path[IT_PATH_MAX + 16];
    snprintf(out_path, sizeof out_path, "%s/tour.out", D.dir);
    snprintf(err_path, sizeof err_path, "%s/tour.err", D.dir);
    cli_result r = {.status = -1};
    pid_t pid = fork();
    if (pid == 0) {
        int null = open("/dev/null", O_RDONLY);
        int out = open(out_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        int err = open(err_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        if (null < 0 || out < 0 || err < 0 || chdir(TOUR_SOURCE_DIR) != 0)
            _exit(127);
        dup2(null, 0);
        dup2(out, 1);
        dup2(err, 2);
        setenv("DEALFLOW_API", D.api, 1);
        setenv("DEALFLOW_INGEST", D.ingest, 1);
        setenv("DEALFLOW_NOTIFY", D.notify, 1);
        execl("/bin/sh", "sh", "-c", script, (char *)NULL);
        _exit(127);
    }
    if (pid > 0) {
        r.status = cli_wait(pid, 60000);
        if (r.status == -1) {
            kill(pid, SIGKILL);
            waitpid(pid, NULL, 0);
        }
    }
    r.out = cli_read_file(out_path);
    r.err = cli_read_file(err_path);
    return r;
}

static void test_tour(void)
{
    CHECK(read_tour());
    for (int i = 0; i < ncommands; i++) {
        char command[MAX_COMMAND + 32];
        memcpy(command, commands[i], MAX_COMMAND);
        const expectation *e = expectation_of(command);
        if (!e) {
            fprintf(stderr, "the tour has a command this test does not know: %s\n", command);
            CHECK(e != NULL);
            continue;
        }
        /* tail runs until interrupted: here it stops once it has caught up */
        if (strncmp(command, "dealflow tail", 13) == 0) {
            char count[32];
            snprintf(count, sizeof count, " --count %d", TOUR_MOVES);
            strcat(command, count);
        }
        cli_result r = run_tour_command(command);
        bool fine = r.status == 0;
        for (int k = 0; k < 6 && e->needles[k]; k++)
            fine = fine && strstr(r.out, e->needles[k]) != NULL;
        if (!fine)
            fprintf(stderr, "--- %s\n--- status %d\n--- stdout:\n%s--- stderr:\n%s---\n", command,
                    r.status, r.out, r.err);
        CHECK_INT(r.status, 0);
        CHECK(fine);
        if (strncmp(command, "dealflow tail", 13) == 0) {
            int moves = 0;
            for (const char *p = r.out; (p = strstr(p, " -> ")) != NULL; p++)
                moves++;
            CHECK_INT(moves, TOUR_MOVES);
        }
        cli_result_free(&r);
    }
}

static bool start_daemon(void)
{
    signal(SIGPIPE, SIG_IGN);
    if (it_start(&D, NULL))
        return true;
    CHECK(!"dealflowd started");
    return false;
}

static void stop_daemon(void)
{
    it_cleanup(&D);
    CHECK_INT(it_done(), 0);
}

static const df_test tests[] = {
    {"tour", test_tour},
    {NULL, NULL},
};

int main(int argc, char **argv)
{
    static const df_fixture fixture = {.setup = start_daemon, .teardown = stop_daemon};
    return df_test_main(argc, argv, tests, &fixture);
}

/* redact.c: the redact command: removes personal values from a deal's recorded events, for
 * an erasure request, and says how many events it changed. */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

#define FIELDS_MAX 64 /* the daemon's limit, so that more is a usage error here */

static const char redact_help[] =
    "usage: dealflow redact DEAL --field NAME [--field NAME ...] --reason TEXT\n"
    "       dealflow redact DEAL --fields NAME,NAME,... --reason TEXT\n"
    "\n"
    "Removes the values of the named fields from every recorded event of the\n"
    "deal, for the reason given (kept in the deal's history as a redaction).\n"
    "A field is name, owner, actor, note or a key of the sender's own; an\n"
    "owner becomes its pseudonym (owner- and 16 hex digits), so figures per\n"
    "owner stay as they were. With client keys, only an admin key may redact.\n"
    "Prints `redacted N events of DEAL (seq S)`, or {\"seq\":S,\"redacted\":N}\n"
    "with --json. Exit status 1 when the deal is not known or a field may not\n"
    "be redacted.\n";

/* The field names given, pointing into argv or into the copies of --fields. */
typedef struct field_list {
    const char *names[FIELDS_MAX];
    size_t count;
    char *copies[FIELDS_MAX]; /* each --fields value, split in place */
    size_t ncopies;
} field_list;

static int add_field(field_list *f, const char *name)
{
    if (name[0] == '\0')
        return cli_usage("redact", "a field name is empty");
    if (f->count == FIELDS_MAX)
        return cli_usage("redact", "at most %d fields", FIELDS_MAX);
    f->names[f->count++] = name;
    return 0;
}

static int add_field_list(field_list *f, const char *text)
{
    if (f->ncopies == FIELDS_MAX)
        return cli_usage("redact", "at most %d fields", FIELDS_MAX);
    char *copy = strdup(text);
    if (copy == NULL) {
        fprintf(stderr, "dealflow: redact: out of memory\n");
        return EXIT_FAILED;
    }
    f->copies[f->ncopies++] = copy;
    for (char *name = copy;;) {
        char *comma = strchr(name, ',');
        if (comma != NULL)
            *comma = '\0';
        int rc = add_field(f, name);
        if (rc != 0 || comma == NULL)
            return rc;
        name = comma + 1;
    }
}

static void field_list_free(field_list *f)
{
    for (size_t i = 0; i < f->ncopies; i++)
        free(f->copies[i]);
}

/* The value of the option opt (`--field`) at argv[*i], as `--field NAME` or
 * `--field=NAME`; NULL when argv[*i] is another argument. *i moves past a
 * separate value; *missing says the option came without one. */
static const char *option_value(const char *opt, int argc, char **argv, int *i, bool *missing)
{
    size_t len = strlen(opt);
    const char *arg = argv[*i];
    if (strncmp(arg, opt, len) != 0)
        return NULL;
    if (arg[len] == '=')
        return arg + len + 1;
    if (arg[len] != '\0')
        return NULL;
    if (*i + 1 >= argc) {
        *missing = true;
        return NULL;
    }
    return argv[++*i];
}

/* Options whose value is a separate argument, so that a value such as
 * `--reason --field` is not taken for a field. */
static bool takes_value(const char *arg)
{
    static const char *const with_value[] = {"--reason",     "--api",      "--ingest",
                                             "--notify",     "--timeout",  "--attempts",
                                             "--server-key", "--key-file", NULL};
    for (int k = 0; with_value[k]; k++)
        if (strcmp(arg, with_value[k]) == 0)
            return true;
    return false;
}

/* Takes the repeatable --field and --fields out of argv into f (cli_parse
 * keeps one value per option) and leaves the rest in rest[0..*nrest). */
static int take_fields(int argc, char **argv, field_list *f, char **rest, int *nrest)
{
    int n = 0;
    bool only_positional = false;
    for (int i = 0; i < argc; i++) {
        char *arg = argv[i];
        bool missing = false;
        const char *value = NULL;
        if (i > 0 && !only_positional) {
            if (strcmp(arg, "--") == 0) {
                only_positional = true;
            } else if ((value = option_value("--fields", argc, argv, &i, &missing)) != NULL) {
                int rc = add_field_list(f, value);
                if (rc != 0)
                    return rc;
                continue;
            } else if (!missing &&
                       (value = option_value("--field", argc, argv, &i, &missing)) != NULL) {
                int rc = add_field(f, value);
                if (rc != 0)
                    return rc;
                continue;
            } else if (takes_value(arg) && i + 1 < argc) {
                rest[n++] = argv[i++];
                arg = argv[i];
            }
            if (missing)
                return cli_usage("redact", "%s needs a value", arg);
        }
        rest[n++] = arg;
    }
    *nrest = n;
    return 0;
}

int cmd_redact(cli *g, int argc, char **argv)
{
    field_list fields = {.count = 0, .ncopies = 0};
    char **rest = calloc((size_t)argc + 1, sizeof *rest);
    if (rest == NULL) {
        fprintf(stderr, "dealflow: redact: out of memory\n");
        return EXIT_FAILED;
    }
    int nrest = 0;
    const char *reason = NULL;
    const cli_opt opts[] = {{"--reason", true, &reason}, {NULL, false, NULL}};
    const char *pos[1];
    int rc = take_fields(argc, argv, &fields, rest, &nrest);
    if (rc == 0)
        rc = cli_parse(g, "redact", redact_help, nrest, rest, opts, pos, 1, 1, NULL);
    if (rc < 0) {
        rc = EXIT_OK;
    } else if (rc == 0 && fields.count == 0) {
        rc = cli_usage("redact", "name the fields to redact with --field or --fields");
    } else if (rc == 0 && (reason == NULL || reason[0] == '\0')) {
        rc = cli_usage("redact", "give the --reason for the redaction");
    } else if (rc == 0) {
        uint64_t seq = 0, redacted = 0;
        df_error err = {0};
        int got = df_redact(cli_client(g), pos[0], fields.names, fields.count, reason, &seq,
                            &redacted, &err);
        rc = cli_check(g, "redact", got, &err);
        if (rc == 0 && g->json)
            printf("{\"seq\":%" PRIu64 ",\"redacted\":%" PRIu64 "}\n", seq, redacted);
        else if (rc == 0)
            printf("redacted %" PRIu64 " events of %s (seq %" PRIu64 ")\n", redacted, pos[0], seq);
    }
    field_list_free(&fields);
    free(rest);
    return rc;
}

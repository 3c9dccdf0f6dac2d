/* prometheus_parse.c: /metrics text through python3-prometheus-client's parser, as JSON. */
#include "prometheus_parse.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The interpreter that has the parser; NULL when none has. */
static const char *python;

static const char PARSE_SCRIPT[] =
    "import json, sys\n"
    "from prometheus_client.parser import text_string_to_metric_families\n"
    "out = {'families': {}, 'duplicates': [], 'samples': []}\n"
    "with open(sys.argv[1], encoding='utf-8') as f:\n"
    "    text = f.read()\n"
    "for fam in text_string_to_metric_families(text):\n"
    "    if fam.name in out['families']:\n"
    "        out['duplicates'].append(fam.name)\n"
    "    out['families'][fam.name] = fam.type\n"
    "    for s in fam.samples:\n"
    "        out['samples'].append([s.name, s.labels, s.value])\n"
    "print(json.dumps(out))\n";

bool pp_find_python(void)
{
    static const char *const candidates[] = {"/usr/bin/python3", "python3"};
    for (size_t i = 0; i < sizeof candidates / sizeof *candidates; i++) {
        char cmd[256];
        snprintf(cmd, sizeof cmd, "%s -c 'import prometheus_client.parser' >/dev/null 2>&1",
                 candidates[i]);
        if (system(cmd) == 0) {
            python = candidates[i];
            return true;
        }
    }
    return false;
}

static bool write_file(const char *path, const char *data, size_t len)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return false;
    bool ok = fwrite(data, 1, len, f) == len;
    return fclose(f) == 0 && ok;
}

json_t *pp_parse(const char *text, size_t len, const char *dir)
{
    char text_path[4200], script_path[4200], out_path[4200], cmd[3 * 4200 + 32];
    snprintf(text_path, sizeof text_path, "%s/metrics.txt", dir);
    snprintf(script_path, sizeof script_path, "%s/parse.py", dir);
    snprintf(out_path, sizeof out_path, "%s/metrics.json", dir);
    json_t *parsed = NULL;
    if (python && write_file(text_path, text, len) &&
        write_file(script_path, PARSE_SCRIPT, strlen(PARSE_SCRIPT))) {
        snprintf(cmd, sizeof cmd, "%s %s %s > %s", python, script_path, text_path, out_path);
        json_error_t jerr;
        if (system(cmd) == 0)
            parsed = json_load_file(out_path, 0, &jerr);
    }
    unlink(text_path);
    unlink(script_path);
    unlink(out_path);
    return parsed;
}

const char *pp_family_type(const json_t *parsed, const char *name)
{
    return json_string_value(json_object_get(json_object_get(parsed, "families"), name));
}

double pp_sample(const json_t *parsed, const char *name, ...)
{
    const char *want[16];
    size_t nwant = 0;
    va_list ap;
    va_start(ap, name);
    for (const char *s; nwant < 16 && (s = va_arg(ap, const char *));)
        want[nwant++] = s;
    va_end(ap);
    size_t i;
    json_t *s;
    json_array_foreach(json_object_get(parsed, "samples"), i, s)
    {
        const json_t *labels = json_array_get(s, 1);
        if (strcmp(json_string_value(json_array_get(s, 0)), name) != 0 ||
            json_object_size(labels) != nwant / 2)
            continue;
        bool match = true;
        for (size_t l = 0; l + 1 < nwant && match; l += 2) {
            const char *v = json_string_value(json_object_get(labels, want[l]));
            match = v && strcmp(v, want[l + 1]) == 0;
        }
        if (match)
            return json_number_value(json_array_get(s, 2));
    }
    return NAN;
}

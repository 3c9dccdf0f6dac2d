/* prometheus_parse.h: the gateway's /metrics text read back by the reference parser
 * (python3-prometheus-client), so that the tests check what a Prometheus server would read. */
#ifndef DF_TEST_PROMETHEUS_PARSE_H
#define DF_TEST_PROMETHEUS_PARSE_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

/* Whether a python3 with prometheus_client is here (it is then the one used). */
bool pp_find_python(void);

/* The text as the parser reads it: {"families": {name: type}, "duplicates": [names of families
 * given twice], "samples": [[name, labels, value]]}, or NULL when it refused the text. dir is a
 * directory for the files the parser reads and writes. */
json_t *pp_parse(const char *text, size_t len, const char *dir);

/* The type of a family, or NULL. */
const char *pp_family_type(const json_t *parsed, const char *name);

/* The value of the sample with this name and exactly these labels (NULL-ended name, value
 * pairs), or NAN when there is none. */
double pp_sample(const json_t *parsed, const char *name, ...);

#endif

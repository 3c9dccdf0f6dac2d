/* fuzz_csv.c: hostile CSV through the reader of dealflow import: every row's fields lie in
 * the row, each NUL-terminated at its length, never more than the limit, the rows' lines in
 * order; a malformed file ends in an error that says why, and reading on stays at the error. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0; /* fmemopen wants a buffer */
    FILE *in = fmemopen((void *)data, size, "rb");
    REQUIRE(in != NULL);
    csv_reader *r = csv_open(in);
    REQUIRE(r != NULL);
    char **fields;
    size_t *lens, count;
    long last_line = 0;
    size_t bytes_seen = 0;
    int got;
    while ((got = csv_next(r, &fields, &lens, &count)) == 1) {
        REQUIRE(count >= 1 && count <= CSV_MAX_FIELDS);
        REQUIRE(csv_line(r) > last_line);
        last_line = csv_line(r);
        REQUIRE(csv_offset(r) >= 0 && (size_t)csv_offset(r) <= size);
        for (size_t i = 0; i < count; i++) {
            REQUIRE(lens[i] <= size && fields[i][lens[i]] == '\0');
            for (size_t j = 0; j < lens[i]; j++)
                bytes_seen += (unsigned char)fields[i][j] != 0;
        }
    }
    REQUIRE(bytes_seen <= size);
    if (got < 0) {
        REQUIRE(strncmp(csv_error(r), "line ", 5) == 0);
        REQUIRE(csv_next(r, &fields, &lens, &count) == -1);
    } else {
        REQUIRE(got == 0 && csv_next(r, &fields, &lens, &count) == 0);
    }
    csv_close(r);
    fclose(in);
    return 0;
}

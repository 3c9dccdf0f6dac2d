/* fuzz.h: what every harness shares: the entry point libFuzzer calls, and
 * REQUIRE, which stops the run on a broken property (an abort is what the
 * fuzzer reports, in any build). */
#ifndef DF_FUZZ_H
#define DF_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#define REQUIRE(cond)                                                                              \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: %s\n", __FILE__, __LINE__, #cond);                             \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#endif

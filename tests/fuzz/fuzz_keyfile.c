/* fuzz_keyfile.c: hostile CURVE key files through the one rule that the daemon, libdealflow
 * and dealflow keygen read them by: the bytes as a key file's text and as a Z85 key. A key
 * found encodes back to Z85 that is found again alone; a refusal names a line of the text. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "keyfile.h"

#include "fuzz.h"

/* Lines in text[0..len), the last one counted without its end of line. */
static unsigned count_lines(const char *text, size_t len)
{
    unsigned lines = len > 0;
    for (size_t i = 0; i + 1 < len; i++)
        lines += text[i] == '\n';
    return lines;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *text = (const char *)data;
    df_key_text t;
    df_key_text_status status = df_key_text_parse(text, size, &t);
    char z85[DF_KEY_Z85_LEN + 1];
    if (status == DF_KEY_TEXT_OK) {
        REQUIRE(t.line >= 1 && t.line <= count_lines(text, size));
        df_key_z85_encode(t.key, z85);
        df_key_text again;
        REQUIRE(df_key_text_parse(z85, DF_KEY_Z85_LEN, &again) == DF_KEY_TEXT_OK);
        REQUIRE(memcmp(again.key, t.key, DF_KEY_BYTES) == 0 && !again.has_public);
    } else if (status == DF_KEY_TEXT_MALFORMED) {
        REQUIRE(t.line >= 1 && t.line <= count_lines(text, size));
    } else {
        REQUIRE(status == DF_KEY_TEXT_NONE);
    }
    uint8_t key[DF_KEY_BYTES];
    if (df_key_z85_decode(text, size, key)) {
        df_key_z85_encode(key, z85);
        REQUIRE(size == DF_KEY_Z85_LEN && memcmp(z85, text, size) == 0);
    }
    return 0;
}

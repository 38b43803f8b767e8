/*
 * fuzz_cb_scanbody.c: libFuzzer target for the SCAN reply body reader (protocols/cb_scanbody.h).
 *
 * The input is a body. If the reader accepts it, every item is read back (exactly `count`,
 * each view inside the input), re-encoded with the writer, which must reproduce the input
 * byte for byte (the encoding is canonical). A rejection must be CB_ERR_MALFORMED. Anything
 * else abort()s; ASan catches a read past the input.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cb_err.h"
#include "cb_scanbody.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint8_t fuzz_out[1 << 20];

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    cb_scanbody_reader r;
    uint32_t count = 0;
    int rc = cb_scanbody_reader_init(&r, data, size, &count);
    if (rc == CB_ERR_MALFORMED) {
        return 0;
    }
    if (rc != CB_ERR_OK || size > sizeof fuzz_out) {
        abort();
    }
    cb_scanbody_writer w;
    if (cb_scanbody_writer_init(&w, fuzz_out, sizeof fuzz_out) != CB_ERR_OK) {
        abort();
    }
    cb_scanbody_item it;
    uint32_t seen = 0;
    while ((rc = cb_scanbody_next(&r, &it)) == CB_ERR_OK) {
        if (it.key < data || it.key + it.key_len + it.value_len > data + size ||
            cb_scanbody_put(&w, &it) != CB_ERR_OK) {
            abort();
        }
        seen++;
    }
    size_t len = cb_scanbody_finish(&w);
    if (rc != CB_ERR_NOT_FOUND || seen != count || len != size || memcmp(fuzz_out, data, size)) {
        abort();
    }
    return 0;
}

/*
 * fuzz_cb_trace.c: libFuzzer target for the trace readers (scenarios/cb_trace.h).
 *
 * The first input byte picks the format (byte % 3: twitter, libcachesim_csv,
 * oracle_general), the second the speed (1 + byte % 8 times real time); the rest is the
 * trace, plain or zstd, read with cb_trace_open_memory until the end or an error. Every
 * record must keep the reader's promises: a known operation, a key that is either an id or
 * 1..250 bytes, timestamps that never go backwards; an error must come with a message and
 * stay sticky. ASan and UBSan do the rest.
 */
#include <stdint.h>
#include <stdlib.h>

#include "cb_err.h"
#include "cb_frame.h"
#include "cb_trace.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fuzz_check(const cb_trace_record *rec, uint64_t index, uint64_t last_ns)
{
    if (rec->index != index || rec->timestamp_ns < last_ns || !cb_op_valid(rec->op)) {
        abort();
    }
    if (rec->key_is_id ? rec->key_len != 0 : rec->key_len == 0 || rec->key_len > CB_KEY_BYTES_MAX) {
        abort();
    }
    if (rec->fill_on_miss && rec->op != CB_OP_GET) {
        abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2) {
        return 0;
    }
    static const cb_trace_format formats[] = {CB_TRACE_TWITTER, CB_TRACE_LIBCACHESIM_CSV,
                                              CB_TRACE_ORACLE_GENERAL};
    char err[256];
    cb_trace *t = NULL;
    uint64_t speed = 1000000u * (1u + data[1] % 8u);
    if (cb_trace_open_memory("fuzz", data + 2, size - 2, formats[data[0] % 3], speed, &t, err,
                             sizeof err) != CB_ERR_OK) {
        abort(); /* only a bad format, a bad speed or no memory fail to open */
    }
    cb_trace_record rec;
    uint64_t n = 0, last_ns = 0;
    int rc;
    while ((rc = cb_trace_next(t, &rec)) == 1) {
        fuzz_check(&rec, n, last_ns);
        last_ns = rec.timestamp_ns;
        n++;
    }
    if ((rc < 0) != (cb_trace_error(t)[0] != '\0') || cb_trace_next(t, &rec) != rc) {
        abort();
    }
    cb_trace_close(t);
    return 0;
}

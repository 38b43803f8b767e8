/*
 * fuzz_cb_udp.c: libFuzzer target for the UDP header decoder and reassembly
 * (protocols/cb_udp.h).
 *
 * The input is a sequence of datagrams, each prefixed by a 2-byte big-endian length (a
 * length past the end takes the rest). Each is decoded as a header, checked as a server
 * request and fed to a reassembler with a 4 KiB limit. Properties: the header re-encodes to
 * the input's first 8 bytes; an accepted request has sequence 0, total 1, reserved 0 and a
 * non-empty payload inside the datagram; reassembly offsets stay within the limit and the
 * whole reply equals what was copied; a reply split into datagrams and reassembled comes back
 * byte for byte. Anything else abort()s; ASan catches a read past the input.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cb_err.h"
#include "cb_udp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_REPLY_MAX 4096u

static uint8_t fuzz_reply[FUZZ_REPLY_MAX];

static void fuzz_one(cb_udp_reasm *r, const uint8_t *d, size_t n)
{
    cb_udp_header h;
    int rc = cb_udp_header_decode(d, n, &h);
    if (rc != CB_ERR_OK) {
        if (n >= CB_UDP_HEADER_BYTES) {
            abort();
        }
        return;
    }
    uint8_t again[CB_UDP_HEADER_BYTES];
    cb_udp_header_encode(&h, again);
    if (memcmp(again, d, sizeof again) != 0) {
        abort();
    }
    const uint8_t *p;
    size_t plen;
    if (cb_udp_request_parse(d, n, &h, &p, &plen) == CB_ERR_OK &&
        (h.seq != 0 || h.total != 1 || h.reserved != 0 || plen == 0 || p != d + 8 ||
         plen != n - 8)) {
        abort();
    }
    size_t at = 0, len = n - CB_UDP_HEADER_BYTES;
    rc = cb_udp_reasm_add(r, &h, len, FUZZ_REPLY_MAX, &at);
    if (rc == CB_UDP_REASM_PART || rc == CB_UDP_REASM_DONE) {
        if (at + len > FUZZ_REPLY_MAX || at + len != r->len) {
            abort();
        }
        memcpy(fuzz_reply + at, d + CB_UDP_HEADER_BYTES, len);
    } else if (rc != CB_UDP_REASM_SINGLE && rc != CB_ERR_MALFORMED) {
        abort();
    }
}

/* Split `data` as a reply into small datagrams and reassemble it. */
static void fuzz_split(const uint8_t *data, size_t size)
{
    size_t dgram = CB_UDP_HEADER_BYTES + 1 + (size > 0 ? data[0] % 64 : 0);
    size_t count = cb_udp_reply_count(size, dgram);
    if ((size == 0) != (count == 0) || size > FUZZ_REPLY_MAX) {
        if (size <= FUZZ_REPLY_MAX) {
            abort();
        }
        return;
    }
    if (count == 0) {
        return;
    }
    cb_udp_reasm r;
    memset(&r, 0, sizeof r);
    int last = 0;
    for (size_t seq = 0; seq < count; seq++) {
        uint8_t head[CB_UDP_HEADER_BYTES];
        size_t off, n, at = 0;
        if (cb_udp_reply_datagram(77, size, dgram, seq, head, &off, &n) != CB_ERR_OK) {
            abort();
        }
        cb_udp_header h;
        if (cb_udp_header_decode(head, sizeof head, &h) != CB_ERR_OK) {
            abort();
        }
        last = cb_udp_reasm_add(&r, &h, n, FUZZ_REPLY_MAX, &at);
        if (last == CB_UDP_REASM_SINGLE) {
            return; /* one datagram: nothing to reassemble */
        }
        if (last < 0 || at != off) {
            abort();
        }
        memcpy(fuzz_reply + at, data + off, n);
    }
    if (last != CB_UDP_REASM_DONE || r.len != size || memcmp(fuzz_reply, data, size) != 0) {
        abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    cb_udp_reasm r;
    memset(&r, 0, sizeof r);
    size_t i = 0;
    while (i + 2 <= size) {
        size_t n = (size_t)data[i] << 8 | data[i + 1];
        i += 2;
        n = n < size - i ? n : size - i;
        fuzz_one(&r, data + i, n);
        i += n;
    }
    fuzz_split(data, size);
    return 0;
}

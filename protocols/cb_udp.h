/*
 * cb_udp.h: memcached's UDP framing, sans-IO (docs/real.md §6).
 *
 * Every datagram starts with an 8-byte header: request id, sequence number, total datagrams,
 * reserved — each a big-endian 16-bit integer (memcached's doc/protocol.txt, "UDP protocol").
 * A request is one datagram (sequence 0, total 1, reserved 0). A reply is cut into datagrams
 * of at most `datagram_bytes` (header included) carrying the request id, numbered 0..n-1.
 *
 * Used by the server driver (real/cb_serve.c: request check, reply splitting) and the replay
 * client (real/cb_realworld.c: request header, reply reassembly). Nothing here allocates;
 * every function is total over hostile input.
 */
#ifndef CB_UDP_H
#define CB_UDP_H

#include <stddef.h>
#include <stdint.h>

#define CB_UDP_HEADER_BYTES 8u
/* memcached's UDP_MAX_PAYLOAD_SIZE: keeps a datagram under a 1500-byte Ethernet MTU. */
#define CB_UDP_DATAGRAM_BYTES 1400u

typedef struct cb_udp_header {
    uint16_t request_id;
    uint16_t seq;   /* this datagram's number, 0..total-1 */
    uint16_t total; /* datagrams in the message */
    uint16_t reserved;
} cb_udp_header;

/* Write `h` into out[0..CB_UDP_HEADER_BYTES). */
void cb_udp_header_encode(const cb_udp_header *h, uint8_t *out);

/* Read the header at the start of buf[0..buf_len). Returns CB_ERR_OK, or CB_ERR_MALFORMED
 * when buf_len < CB_UDP_HEADER_BYTES (*h untouched). */
int cb_udp_header_decode(const uint8_t *buf, size_t buf_len, cb_udp_header *h);

/*
 * A request datagram as a server accepts it: a header with sequence 0, total 1, reserved 0,
 * and a payload of at least one byte. Returns CB_ERR_OK with *h, *payload (a view into buf)
 * and *payload_len set; CB_ERR_MALFORMED for anything else (too short, empty payload, a
 * multi-datagram request, a reserved field set), which the server drops and counts.
 */
int cb_udp_request_parse(const uint8_t *buf, size_t buf_len, cb_udp_header *h,
                         const uint8_t **payload, size_t *payload_len);

/* The datagrams a reply of reply_len bytes needs with datagrams of datagram_bytes (header
 * included); 0 when reply_len is 0, datagram_bytes <= CB_UDP_HEADER_BYTES, or more than
 * UINT16_MAX datagrams would be needed (the reply cannot be sent). */
size_t cb_udp_reply_count(size_t reply_len, size_t datagram_bytes);

/*
 * Datagram `seq` of a reply of reply_len bytes to request_id (seq < cb_udp_reply_count()):
 * its header goes to head[0..CB_UDP_HEADER_BYTES), and the reply bytes it carries are
 * reply[*offset .. *offset + *len). Returns CB_ERR_OK, or CB_ERR_INVALID when seq is out of
 * range (nothing written).
 */
int cb_udp_reply_datagram(uint16_t request_id, size_t reply_len, size_t datagram_bytes, size_t seq,
                          uint8_t *head, size_t *offset, size_t *len);

/* Client-side reassembly of a reply spread over datagrams; zero-filled to start. */
typedef struct cb_udp_reasm {
    uint16_t request_id;
    uint16_t next_seq; /* the sequence number expected next */
    uint16_t total;    /* 0: no reply under way */
    size_t len;        /* payload bytes collected so far */
} cb_udp_reasm;

enum {
    CB_UDP_REASM_SINGLE = 1, /* a whole reply in this one datagram: use its payload as is */
    CB_UDP_REASM_PART = 2,   /* copy the payload to offset *at; more datagrams to come */
    CB_UDP_REASM_DONE = 3    /* copy the payload to offset *at; the reply is r->len bytes */
};

/*
 * One reply datagram with header *h and payload_len payload bytes, for a reply of at most
 * len_max bytes. Datagrams must come in order (0, 1, .., total-1) with one request id and
 * total. Returns CB_UDP_REASM_* (see above), or CB_ERR_MALFORMED when the datagram does not
 * continue the reply under way (lost, reordered, another request's, total 0, or the reply
 * would exceed len_max): the reply under way is abandoned and the caller's timer retries.
 */
int cb_udp_reasm_add(cb_udp_reasm *r, const cb_udp_header *h, size_t payload_len, size_t len_max,
                     size_t *at);

#endif

/* cb_udp.c: memcached's UDP framing; see cb_udp.h for the contract. */
#include "cb_udp.h"

#include "cb_err.h"

static uint16_t udp_be16(const uint8_t *p)
{
    return (uint16_t)((p[0] << 8) | p[1]);
}

static void udp_put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

void cb_udp_header_encode(const cb_udp_header *h, uint8_t *out)
{
    udp_put16(out, h->request_id);
    udp_put16(out + 2, h->seq);
    udp_put16(out + 4, h->total);
    udp_put16(out + 6, h->reserved);
}

int cb_udp_header_decode(const uint8_t *buf, size_t buf_len, cb_udp_header *h)
{
    if (buf == NULL || buf_len < CB_UDP_HEADER_BYTES) {
        return CB_ERR_MALFORMED;
    }
    h->request_id = udp_be16(buf);
    h->seq = udp_be16(buf + 2);
    h->total = udp_be16(buf + 4);
    h->reserved = udp_be16(buf + 6);
    return CB_ERR_OK;
}

int cb_udp_request_parse(const uint8_t *buf, size_t buf_len, cb_udp_header *h,
                         const uint8_t **payload, size_t *payload_len)
{
    cb_udp_header t;
    if (cb_udp_header_decode(buf, buf_len, &t) != CB_ERR_OK || buf_len == CB_UDP_HEADER_BYTES ||
        t.seq != 0 || t.total != 1 || t.reserved != 0) {
        return CB_ERR_MALFORMED;
    }
    *h = t;
    *payload = buf + CB_UDP_HEADER_BYTES;
    *payload_len = buf_len - CB_UDP_HEADER_BYTES;
    return CB_ERR_OK;
}

size_t cb_udp_reply_count(size_t reply_len, size_t datagram_bytes)
{
    if (reply_len == 0 || datagram_bytes <= CB_UDP_HEADER_BYTES) {
        return 0;
    }
    size_t per = datagram_bytes - CB_UDP_HEADER_BYTES;
    size_t count = reply_len / per + (reply_len % per != 0);
    return count <= UINT16_MAX ? count : 0;
}

int cb_udp_reply_datagram(uint16_t request_id, size_t reply_len, size_t datagram_bytes, size_t seq,
                          uint8_t *head, size_t *offset, size_t *len)
{
    size_t count = cb_udp_reply_count(reply_len, datagram_bytes);
    if (seq >= count) {
        return CB_ERR_INVALID;
    }
    size_t per = datagram_bytes - CB_UDP_HEADER_BYTES;
    cb_udp_header h = {request_id, (uint16_t)seq, (uint16_t)count, 0};
    cb_udp_header_encode(&h, head);
    *offset = seq * per;
    *len = reply_len - *offset < per ? reply_len - *offset : per;
    return CB_ERR_OK;
}

int cb_udp_reasm_add(cb_udp_reasm *r, const cb_udp_header *h, size_t payload_len, size_t len_max,
                     size_t *at)
{
    if (h->total == 1 && h->seq == 0) {
        r->total = 0; /* a whole reply: whatever was under way is abandoned */
        return payload_len <= len_max ? CB_UDP_REASM_SINGLE : CB_ERR_MALFORMED;
    }
    if (h->seq == 0) {
        r->request_id = h->request_id;
        r->total = h->total;
        r->next_seq = 0;
        r->len = 0;
    }
    if (h->total == 0 || r->total == 0 || h->total != r->total || h->seq != r->next_seq ||
        h->request_id != r->request_id || payload_len > len_max - r->len) {
        r->total = 0;
        return CB_ERR_MALFORMED;
    }
    *at = r->len;
    r->len += payload_len;
    r->next_seq++;
    if (r->next_seq < r->total) {
        return CB_UDP_REASM_PART;
    }
    r->total = 0;
    return CB_UDP_REASM_DONE;
}

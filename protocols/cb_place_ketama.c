/*
 * cb_place_ketama.c: the ketama ring, compatible with libmemcached 1.1's weighted ketama
 * (MEMCACHED_BEHAVIOR_KETAMA_WEIGHTED: src/libmemcached/hosts.cc, update_continuum) and
 * twemproxy's `distribution: ketama` with `hash: md5` (nc_ketama.c).
 *
 * For each node, in list order: points = floor(pct * P/4 * N + 1e-10) * 4 in IEEE single
 * precision, where pct = weight / total weight (both as float), P the points per server
 * (160) and N the node count. Each group of 4 points is one MD5 of "name-i" (i from 0), read
 * as four little-endian 32-bit values. The ring is sorted by (value, list position). A key
 * hashes to the first 4 bytes of MD5(key), little-endian, and belongs to the first point
 * whose value is >= the hash, wrapping to the first point.
 *
 * Names: libmemcached hashes "host-i" when the port is its default 11211 and "host:port-i"
 * otherwise; twemproxy always hashes its server name ("host:port" unless named). A node name
 * "host:port" whose port equals config.ketama_default_port is therefore hashed without it.
 *
 * Floating point: the point count is the one float computation in placement, kept because
 * libmemcached and twemproxy compute it in float and exactly that rounding decides how many
 * points a server gets (e.g. 156 instead of 160 for some N). Every step is a single IEEE-754
 * binary32 operation (correctly rounded, identical on every platform with FLT_EVAL_METHOD 0:
 * x86-64 SSE, aarch64), each in its own statement so no compiler may fuse them into an FMA.
 */
#include "cb_place_internal.h"

#include <assert.h>
#include <float.h>
#include <math.h>
#include <nettle/md5.h>
#include <stdio.h>
#include <string.h>

_Static_assert(FLT_EVAL_METHOD == 0, "ketama point counts need plain binary32 arithmetic");

size_t place_ketama_ring_cap(const cb_placement_config *config)
{
    /* Float rounding can give a node one group of 4 more than its exact share. */
    return (size_t)config->nodes_max * (config->ketama_points + 4u);
}

/* libmemcached's per-server point count, step by step in binary32 (see the file comment);
 * with config.ketama_integer_points, floor(weight * points/4 * N / total) * 4 exactly. */
static uint32_t ketama_points_for(const cb_placement *p, uint32_t weight, uint64_t weight_total)
{
    uint32_t points = p->config.ketama_points;
    uint32_t node_count = p->count;
    if (p->config.ketama_integer_points) {
        return (uint32_t)((uint64_t)weight * (points / 4) * node_count / weight_total) * 4u;
    }
    float pct = (float)weight / (float)weight_total;
    float scaled = pct * (float)points;
    scaled = scaled / 4.0f;
    scaled = scaled * (float)node_count;
    scaled = scaled + 0.0000000001f;
    float groups = floorf(scaled);
    return (uint32_t)groups * 4u;
}

/* The string hashed for point group `i` of node `pos`; returns its length. */
static size_t ketama_point_name(const cb_placement *p, uint32_t pos, uint32_t i, char *buf,
                                size_t buf_cap)
{
    const char *name = place_name(p, pos);
    size_t len = p->nodes[pos].name_len;
    if (p->config.ketama_default_port != 0) {
        char suffix[16];
        int s = snprintf(suffix, sizeof(suffix), ":%u", p->config.ketama_default_port);
        assert(s > 0 && (size_t)s < sizeof(suffix));
        size_t slen = (size_t)s;
        if (len > slen && memcmp(name + len - slen, suffix, slen) == 0) {
            len -= slen;
        }
    }
    int n = snprintf(buf, buf_cap, "%.*s-%u", (int)len, name, i);
    assert(n > 0 && (size_t)n < buf_cap);
    return (size_t)n;
}

static void ketama_md5(const void *buf, size_t len, uint8_t digest[MD5_DIGEST_SIZE])
{
    struct md5_ctx ctx;
    md5_init(&ctx);
    md5_update(&ctx, len, buf);
    md5_digest(&ctx, MD5_DIGEST_SIZE, digest);
}

static uint32_t ketama_le32(const uint8_t *b)
{
    return (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
}

/* Stable LSD radix sort of the ring by value, 4 passes of 8 bits; ties keep list order. */
static void ketama_sort(cb_placement *p)
{
    place_point *src = p->ring;
    place_point *dst = p->ring_scratch;
    for (unsigned shift = 0; shift < 32; shift += 8) {
        size_t start[257] = {0};
        for (size_t i = 0; i < p->ring_count; i++) {
            start[((src[i].value >> shift) & 0xffu) + 1]++;
        }
        for (size_t b = 1; b <= 256; b++) {
            start[b] += start[b - 1];
        }
        for (size_t i = 0; i < p->ring_count; i++) {
            dst[start[(src[i].value >> shift) & 0xffu]++] = src[i];
        }
        place_point *t = src;
        src = dst;
        dst = t;
    }
    /* An even number of passes leaves the result in p->ring. */
    assert(src == p->ring);
}

void place_ketama_build(cb_placement *p)
{
    uint64_t weight_total = 0;
    for (uint32_t i = 0; i < p->count; i++) {
        weight_total += p->nodes[i].weight;
    }
    p->ring_count = 0;
    for (uint32_t pos = 0; pos < p->count; pos++) {
        uint32_t points = ketama_points_for(p, p->nodes[pos].weight, weight_total);
        for (uint32_t g = 0; g < points / 4 && p->ring_count + 4 <= p->ring_cap; g++) {
            char buf[PLACE_NAME_STRIDE + 16];
            uint8_t digest[MD5_DIGEST_SIZE];
            size_t len = ketama_point_name(p, pos, g, buf, sizeof(buf));
            ketama_md5(buf, len, digest);
            for (unsigned k = 0; k < 4; k++) {
                p->ring[p->ring_count].value = ketama_le32(digest + 4 * k);
                p->ring[p->ring_count].node = pos;
                p->ring_count++;
            }
        }
    }
    ketama_sort(p);
}

/* The first point whose value is >= hash, or the ring's size when there is none. */
static size_t ketama_search(const cb_placement *p, uint32_t hash)
{
    size_t lo = 0, hi = p->ring_count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (p->ring[mid].value < hash) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return lo;
}

size_t place_ketama_lookup(const cb_placement *p, const uint8_t *key, size_t key_len, uint32_t *out,
                           size_t cap)
{
    if (p->ring_count == 0) {
        return 0;
    }
    uint8_t digest[MD5_DIGEST_SIZE];
    ketama_md5(key, key_len, digest);
    size_t at = ketama_search(p, ketama_le32(digest));
    /* Walk clockwise from the key's point: the next distinct up nodes are the replicas. */
    size_t n = 0;
    for (size_t step = 0; step < p->ring_count && n < cap; step++) {
        size_t i = at + step;
        if (i >= p->ring_count) {
            i -= p->ring_count;
        }
        uint32_t pos = p->ring[i].node;
        if (p->nodes[pos].up) {
            place_out_push(p, out, &n, pos);
        }
    }
    return n;
}

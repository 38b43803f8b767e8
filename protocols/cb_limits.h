/*
 * cb_limits.h: every limit an untrusted length meets, in one place, each with its reason.
 */
#ifndef CB_LIMITS_H
#define CB_LIMITS_H

#include <stdint.h>

/* memcached's KEY_MAX_LENGTH; clients everywhere assume it, so a key beyond it is an error. */
#define CB_KEY_BYTES_MAX 250u

/* Default largest value a server accepts: memcached's default item size limit (-I 1m). */
#define CB_VALUE_BYTES_MAX_DEFAULT (1024u * 1024u)

/*
 * Largest value_bytes_max a configuration may set. 128 MiB is memcached's own ceiling for
 * -I; it also keeps every frame length well inside uint32_t and size_t arithmetic.
 */
#define CB_VALUE_BYTES_LIMIT (128u * 1024u * 1024u)

/* Longest decimal number accepted for incr/decr values: UINT64_MAX has 20 digits. */
#define CB_NUMBER_DIGITS_MAX 20u

/*
 * Placement (cb_placement.h). Nodes: a cache tier bigger than this is beyond what one
 * simulation models (DESIGN: ~10^4 hosts in all), and cb_placement_new() checks ids and
 * names for duplicates pairwise. Jump's integer arithmetic equals the reference double
 * arithmetic only below 2^20 buckets (cb_placement.c), far above this.
 */
#define CB_PLACEMENT_NODES_MAX 16384u

/* Node weights: rendezvous compares weight * (-log2 u) in 64 bits, with the log in 32.32
 * fixed point (< 2^39); a weight below 2^16 keeps the product below 2^55. */
#define CB_PLACEMENT_WEIGHT_MAX 65535u

/* A node name: a 253-byte DNS name, ':' and a 5-digit port, plus IPv6 brackets. */
#define CB_PLACEMENT_NAME_BYTES_MAX 261u

/* Longest preference list one lookup returns: replicas plus failover spares. Lookup keeps
 * its working set on the stack, sized by this. */
#define CB_PLACEMENT_LIST_MAX 16u

/* Ketama points per server at equal weights (libmemcached: 160); bounds the ring's memory. */
#define CB_PLACEMENT_KETAMA_POINTS_MAX 1024u

/* Largest maglev table: the largest prime below 2^24 (64 MiB of uint32_t entries). */
#define CB_PLACEMENT_MAGLEV_TABLE_MAX 16777213u

_Static_assert(CB_KEY_BYTES_MAX <= 255u, "key length must fit the frame's one-byte field");
_Static_assert(CB_VALUE_BYTES_MAX_DEFAULT <= CB_VALUE_BYTES_LIMIT, "default within the limit");
_Static_assert(CB_VALUE_BYTES_LIMIT < UINT32_MAX / 2, "frame lengths fit uint32_t");

_Static_assert(CB_PLACEMENT_NODES_MAX < (1u << 20), "jump stays exact");
_Static_assert(CB_PLACEMENT_KETAMA_POINTS_MAX % 4 == 0, "4 points per MD5 digest");

#endif

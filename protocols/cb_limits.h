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

_Static_assert(CB_KEY_BYTES_MAX <= 255u, "key length must fit the frame's one-byte field");
_Static_assert(CB_VALUE_BYTES_MAX_DEFAULT <= CB_VALUE_BYTES_LIMIT, "default within the limit");
_Static_assert(CB_VALUE_BYTES_LIMIT < UINT32_MAX / 2, "frame lengths fit uint32_t");

#endif

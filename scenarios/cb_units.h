/*
 * cb_units.h: strict parsers and exact formatters for the units users write in scenario files.
 *
 * A scenario says `5ms`, `1.5s`, `64KiB`, `1Gbps`, `2%`, `0.99`, `20000/s`. Each parser here
 * turns one such text into an integer in the base unit (nanoseconds, bytes, bits per second,
 * parts per million, millionths) by reading the decimal digits exactly: `0.1s` is exactly
 * 100000000 ns, never a float rounded to the nearest integer. A value that is finer than the
 * base unit (`1.5B`, `0.1ns`), that overflows 64 bits, that has no unit or an unknown one,
 * or that has anything else around it, is an error, and `err` receives one line saying what
 * was expected ("no unit: expected a duration like 5ms or 1.5s (units: ns us ms s m h)").
 *
 * Grammar shared by all numbers: digits, optionally `.` and more digits (`.5` and `5.` are
 * errors), then optional blanks, then the unit. At most 40 characters; no exponent, no sign
 * (except cb_units_parse_decimal), no digit separators.
 *
 * Every formatter writes the shortest text in the largest unit that represents the value
 * exactly, so that parsing what a formatter wrote gives back the same integer (the scenario
 * --explain round trip relies on it).
 *
 * All functions are pure: no allocation, no global state. Parsers return CB_ERR_OK, or
 * CB_ERR_INVALID (garbage, missing or unknown unit, too many decimals) or CB_ERR_TOO_LARGE
 * (does not fit the output type); on error *out is untouched and `err` (if err_cap > 0)
 * holds a NUL-terminated message, cut to err_cap bytes. `text` must be NUL-terminated.
 */
#ifndef CB_UNITS_H
#define CB_UNITS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Flags for cb_units_parse_duration and cb_units_parse_size. */
enum {
    /* A bare number (`1500`) is taken in the base unit (ns, bytes) instead of an error. */
    CB_UNITS_BARE_OK = 1u << 0,
};

/* Longest text a parser looks at; longer input is an error, so digit loops stay bounded. */
#define CB_UNITS_TEXT_BYTES_MAX 40u

/* Enough for every formatter's output (a 20-digit number, a decimal point, a unit). */
#define CB_UNITS_FORMAT_BYTES 48u

/* Durations: ns us ms s m h (minutes, hours) -> nanoseconds. */
int cb_units_parse_duration(const char *text, unsigned flags, uint64_t *out_ns, char *err,
                            size_t err_cap);

/* Sizes: B, KB/kB MB GB TB (powers of 1000), KiB MiB GiB TiB (powers of 1024) -> bytes. */
int cb_units_parse_size(const char *text, unsigned flags, uint64_t *out_bytes, char *err,
                        size_t err_cap);

/* Bandwidth: bps Kbps/kbps Mbps Gbps Tbps (bits) and Bps KBps/kBps MBps GBps (bytes, x8)
 * -> bits per second. */
int cb_units_parse_bandwidth(const char *text, uint64_t *out_bps, char *err, size_t err_cap);

/* A fraction: `2%`, `0.5%` or a plain ratio `0.02` -> parts per million (2% = 20000).
 * Values above 100% parse (the caller's range check decides); above UINT32_MAX ppm is
 * CB_ERR_TOO_LARGE. */
int cb_units_parse_fraction(const char *text, uint32_t *out_ppm, char *err, size_t err_cap);

/* A plain whole number (`10000`), no unit. */
int cb_units_parse_uint(const char *text, uint64_t *out, char *err, size_t err_cap);

/* A decimal number with an optional sign and at most 6 decimal places (`0.99`, `-1.5`,
 * `214.476`) -> millionths (0.99 -> 990000), within INT64_MIN..INT64_MAX. */
int cb_units_parse_decimal(const char *text, int64_t *out_micro, char *err, size_t err_cap);

/* A boolean: true/false, yes/no, on/off (any letter case). */
int cb_units_parse_bool(const char *text, bool *out, char *err, size_t err_cap);

/* An operation rate: a number with an optional k/M/G multiplier, a `/`, then a time unit:
 * `20000/s`, `20k/s`, `1.5M/m`, `3/ms` -> operations per second, which must come out as a
 * whole number (`1/m` is an error: 1/60 per second). */
int cb_units_parse_rate(const char *text, uint64_t *out_per_s, char *err, size_t err_cap);

/*
 * Formatters: write the value into `out` (NUL-terminated; out_cap >= CB_UNITS_FORMAT_BYTES
 * always suffices) and return the length written, or -1 if out_cap is too small (out then
 * holds a cut string when out_cap > 0).
 */
int cb_units_format_duration(uint64_t ns, char *out, size_t out_cap);   /* "1500ms", "0s" */
int cb_units_format_size(uint64_t bytes, char *out, size_t out_cap);    /* "64MiB", "1500B" */
int cb_units_format_bandwidth(uint64_t bps, char *out, size_t out_cap); /* "10Gbps" */
int cb_units_format_percent(uint32_t ppm, char *out, size_t out_cap);   /* "0.5%" */
int cb_units_format_ratio(uint32_t ppm, char *out, size_t out_cap);     /* "0.08" */
int cb_units_format_decimal(int64_t micro, char *out, size_t out_cap);  /* "-1.5", "3" */
int cb_units_format_uint(uint64_t value, char *out, size_t out_cap);    /* "10000" */
int cb_units_format_bool(bool value, char *out, size_t out_cap);        /* "true" */
int cb_units_format_rate(uint64_t per_s, char *out, size_t out_cap);    /* "20000/s" */

#endif

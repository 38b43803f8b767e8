/*
 * cb_units.c: exact decimal parsing of user units, and the formatters that undo it; see
 * cb_units.h.
 *
 * A number is read as its whole part and its fraction digits (both integers, overflow
 * checked digit by digit), then scaled by the unit's multiplier with integer arithmetic
 * only: whole * mult + frac * mult / 10^digits, where the second term must be exact.
 */
#include "cb_units.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "cb_err.h"

/* 10^18 is the largest power of ten below UINT64_MAX: fractions keep at most 18 digits. */
#define UNITS_FRAC_DIGITS_MAX 18u

typedef struct units_num {
    uint64_t whole;
    uint64_t frac;        /* the fraction digits as an integer, trailing zeros dropped */
    unsigned frac_digits; /* digits in `frac` */
    bool negative;
    const char *rest; /* what follows the number, blanks skipped */
} units_num;

typedef struct units_unit {
    const char *name;
    uint64_t mult;
} units_unit;

static const units_unit units_durations[] = {
    {"ns", 1ull},          {"us", 1000ull},         {"ms", 1000000ull}, {"s", 1000000000ull},
    {"m", 60000000000ull}, {"h", 3600000000000ull}, {NULL, 0},
};

static const units_unit units_sizes[] = {
    {"B", 1ull},           {"KB", 1000ull},          {"kB", 1000ull},     {"MB", 1000000ull},
    {"GB", 1000000000ull}, {"TB", 1000000000000ull}, {"KiB", 1ull << 10}, {"MiB", 1ull << 20},
    {"GiB", 1ull << 30},   {"TiB", 1ull << 40},      {NULL, 0},
};

static const units_unit units_bandwidths[] = {
    {"bps", 1ull},        {"Kbps", 1000ull},       {"kbps", 1000ull},
    {"Mbps", 1000000ull}, {"Gbps", 1000000000ull}, {"Tbps", 1000000000000ull},
    {"Bps", 8ull},        {"KBps", 8000ull},       {"kBps", 8000ull},
    {"MBps", 8000000ull}, {"GBps", 8000000000ull}, {NULL, 0},
};

/* Per-unit operation counts in one second, for rates; "m" and "h" divide instead. */
static const units_unit units_rate_per[] = {
    {"s", 1ull},
    {"ms", 1000ull},
    {"us", 1000000ull},
    {NULL, 0},
};

static const char units_expect_duration[] =
    "expected a duration like 5ms or 1.5s (units: ns us ms s m h)";
static const char units_expect_size[] =
    "expected a size like 64KiB or 1.5MB (units: B KB MB GB TB KiB MiB GiB TiB)";
static const char units_expect_bandwidth[] =
    "expected a bandwidth like 1Gbps or 100Mbps (units: bps Kbps Mbps Gbps Tbps; Bps KBps "
    "MBps GBps for bytes)";
static const char units_expect_fraction[] =
    "expected a percentage like 2% or 0.5%, or a ratio like 0.02";
static const char units_expect_uint[] = "expected a whole number like 1000";
static const char units_expect_decimal[] =
    "expected a number like 0.99 or -1.5 (at most 6 decimal places)";
static const char units_expect_bool[] = "expected true or false (or yes/no, on/off)";
static const char units_expect_rate[] =
    "expected a rate like 20000/s or 20k/s (per s, ms, us, m or h)";

static int units_fail(char *err, size_t err_cap, int rc, const char *problem, const char *expected)
{
    if (err_cap > 0) {
        (void)snprintf(err, err_cap, "%s: %s", problem, expected); /* cut is fine */
    }
    return rc;
}

static bool units_is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* Append one digit to *acc; false on overflow. */
static bool units_push_digit(uint64_t *acc, char c)
{
    uint64_t d = (uint64_t)(c - '0');
    if (*acc > (UINT64_MAX - d) / 10u) {
        return false;
    }
    *acc = *acc * 10u + d;
    return true;
}

/* The fraction digits [p, end): trailing zeros dropped, at most 18 left. */
static int units_read_fraction(const char *p, const char *end, units_num *n)
{
    while (end > p && end[-1] == '0') {
        end--;
    }
    if ((size_t)(end - p) > UNITS_FRAC_DIGITS_MAX) {
        return CB_ERR_INVALID;
    }
    n->frac = 0;
    n->frac_digits = (unsigned)(end - p);
    for (; p < end; p++) {
        (void)units_push_digit(&n->frac, *p); /* at most 18 digits: cannot overflow */
    }
    return CB_ERR_OK;
}

/* Read `[sign] digits [. digits] blanks`. Returns OK, INVALID or TOO_LARGE. */
static int units_read_number(const char *text, bool sign_ok, units_num *n)
{
    const char *p = text;
    memset(n, 0, sizeof *n);
    if (strnlen(text, CB_UNITS_TEXT_BYTES_MAX + 1) > CB_UNITS_TEXT_BYTES_MAX) {
        return CB_ERR_INVALID;
    }
    if (sign_ok && (*p == '-' || *p == '+')) {
        n->negative = *p == '-';
        p++;
    }
    if (!units_is_digit(*p)) {
        return CB_ERR_INVALID;
    }
    for (; units_is_digit(*p); p++) {
        if (!units_push_digit(&n->whole, *p)) {
            return CB_ERR_TOO_LARGE;
        }
    }
    if (*p == '.') {
        const char *start = ++p;
        while (units_is_digit(*p)) {
            p++;
        }
        if (p == start || units_read_fraction(start, p, n) != CB_ERR_OK) {
            return CB_ERR_INVALID;
        }
    }
    while (*p == ' ' || *p == '\t') {
        p++;
    }
    n->rest = p;
    return CB_ERR_OK;
}

static uint64_t units_gcd(uint64_t a, uint64_t b)
{
    while (b != 0) {
        uint64_t t = a % b;
        a = b;
        b = t;
    }
    return a;
}

/* *out = n * mult exactly. INVALID when the fraction is finer than 1/mult, else TOO_LARGE. */
static int units_scale(const units_num *n, uint64_t mult, uint64_t *out)
{
    if (mult != 0 && n->whole > UINT64_MAX / mult) {
        return CB_ERR_TOO_LARGE;
    }
    uint64_t value = n->whole * mult;
    if (n->frac_digits > 0) {
        uint64_t pow10 = 1;
        for (unsigned i = 0; i < n->frac_digits; i++) {
            pow10 *= 10u;
        }
        uint64_t g = units_gcd(mult, pow10);
        if (g == 0 || n->frac % (pow10 / g) != 0) {
            return CB_ERR_INVALID;
        }
        /* frac / (pow10 / g) < g, so the product is below mult: no overflow. */
        uint64_t part = n->frac / (pow10 / g) * (mult / g);
        if (value > UINT64_MAX - part) {
            return CB_ERR_TOO_LARGE;
        }
        value += part;
    }
    *out = value;
    return CB_ERR_OK;
}

static const units_unit *units_find(const units_unit *table, const char *name)
{
    for (const units_unit *u = table; u->name != NULL; u++) {
        if (strcmp(u->name, name) == 0) {
            return u;
        }
    }
    return NULL;
}

/* The shared path of durations, sizes and bandwidths. `base` names the smallest unit. */
static int units_parse_with(const char *text, unsigned flags, const units_unit *table,
                            const char *expected, const char *base, uint64_t *out, char *err,
                            size_t err_cap)
{
    units_num n;
    char problem[96];
    int rc = units_read_number(text, false, &n);
    if (rc == CB_ERR_TOO_LARGE) {
        return units_fail(err, err_cap, rc, "too large", expected);
    }
    if (rc != CB_ERR_OK) {
        return units_fail(err, err_cap, rc, "not a number", expected);
    }
    uint64_t mult = 1;
    if (*n.rest == '\0') {
        if (!(flags & CB_UNITS_BARE_OK)) {
            return units_fail(err, err_cap, CB_ERR_INVALID, "no unit", expected);
        }
    } else {
        const units_unit *u = units_find(table, n.rest);
        if (u == NULL) {
            (void)snprintf(problem, sizeof problem, "unknown unit '%s'", n.rest);
            return units_fail(err, err_cap, CB_ERR_INVALID, problem, expected);
        }
        mult = u->mult;
    }
    rc = units_scale(&n, mult, out);
    if (rc == CB_ERR_TOO_LARGE) {
        return units_fail(err, err_cap, rc, "too large", expected);
    }
    if (rc != CB_ERR_OK) {
        (void)snprintf(problem, sizeof problem, "finer than 1%s", base);
        return units_fail(err, err_cap, rc, problem, expected);
    }
    return CB_ERR_OK;
}

int cb_units_parse_duration(const char *text, unsigned flags, uint64_t *out_ns, char *err,
                            size_t err_cap)
{
    return units_parse_with(text, flags, units_durations, units_expect_duration, "ns", out_ns, err,
                            err_cap);
}

int cb_units_parse_size(const char *text, unsigned flags, uint64_t *out_bytes, char *err,
                        size_t err_cap)
{
    return units_parse_with(text, flags, units_sizes, units_expect_size, "B", out_bytes, err,
                            err_cap);
}

int cb_units_parse_bandwidth(const char *text, uint64_t *out_bps, char *err, size_t err_cap)
{
    return units_parse_with(text, 0, units_bandwidths, units_expect_bandwidth, "bps", out_bps, err,
                            err_cap);
}

int cb_units_parse_fraction(const char *text, uint32_t *out_ppm, char *err, size_t err_cap)
{
    char problem[96];
    uint64_t ppm;
    units_num n;
    int rc = units_read_number(text, false, &n);
    if (rc != CB_ERR_OK) {
        return units_fail(err, err_cap, rc, rc == CB_ERR_TOO_LARGE ? "too large" : "not a number",
                          units_expect_fraction);
    }
    /* A bare number is a ratio (0.02 = 20000 ppm); with '%' it is a percentage. */
    uint64_t mult = 1000000u;
    if (strcmp(n.rest, "%") == 0) {
        mult = 10000u;
    } else if (*n.rest != '\0') {
        (void)snprintf(problem, sizeof problem, "unknown unit '%s'", n.rest);
        return units_fail(err, err_cap, CB_ERR_INVALID, problem, units_expect_fraction);
    }
    rc = units_scale(&n, mult, &ppm);
    if (rc == CB_ERR_OK && ppm > UINT32_MAX) {
        rc = CB_ERR_TOO_LARGE;
    }
    if (rc != CB_ERR_OK) {
        return units_fail(err, err_cap, rc,
                          rc == CB_ERR_TOO_LARGE ? "too large" : "finer than 1ppm (0.0001%)",
                          units_expect_fraction);
    }
    *out_ppm = (uint32_t)ppm;
    return CB_ERR_OK;
}

int cb_units_parse_uint(const char *text, uint64_t *out, char *err, size_t err_cap)
{
    units_num n;
    int rc = units_read_number(text, false, &n);
    if (rc == CB_ERR_TOO_LARGE) {
        return units_fail(err, err_cap, rc, "too large", units_expect_uint);
    }
    if (rc != CB_ERR_OK || *n.rest != '\0' || n.frac_digits > 0 || strchr(text, '.')) {
        return units_fail(err, err_cap, CB_ERR_INVALID, "not a whole number", units_expect_uint);
    }
    *out = n.whole;
    return CB_ERR_OK;
}

int cb_units_parse_decimal(const char *text, int64_t *out_micro, char *err, size_t err_cap)
{
    units_num n;
    uint64_t mag;
    int rc = units_read_number(text, true, &n);
    if (rc == CB_ERR_OK && *n.rest != '\0') {
        rc = CB_ERR_INVALID;
    }
    if (rc == CB_ERR_OK) {
        rc = units_scale(&n, 1000000ull, &mag);
    }
    if (rc == CB_ERR_OK && mag > (uint64_t)INT64_MAX + (n.negative ? 1u : 0u)) {
        rc = CB_ERR_TOO_LARGE;
    }
    if (rc == CB_ERR_TOO_LARGE) {
        return units_fail(err, err_cap, rc, "too large", units_expect_decimal);
    }
    if (rc != CB_ERR_OK) {
        return units_fail(err, err_cap, rc, "not a number", units_expect_decimal);
    }
    if (n.negative) {
        /* -(mag - 1) - 1 reaches INT64_MIN without overflowing. */
        *out_micro = mag == 0 ? 0 : -(int64_t)(mag - 1u) - 1;
    } else {
        *out_micro = (int64_t)mag;
    }
    return CB_ERR_OK;
}

static bool units_equal_nocase(const char *a, const char *b)
{
    for (; *a != '\0' && *b != '\0'; a++, b++) {
        char ca = (*a >= 'A' && *a <= 'Z') ? (char)(*a - 'A' + 'a') : *a;
        if (ca != *b) {
            return false;
        }
    }
    return *a == '\0' && *b == '\0';
}

int cb_units_parse_bool(const char *text, bool *out, char *err, size_t err_cap)
{
    static const char *const yes[] = {"true", "yes", "on"};
    static const char *const no[] = {"false", "no", "off"};
    for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++) {
        if (units_equal_nocase(text, yes[i])) {
            *out = true;
            return CB_ERR_OK;
        }
        if (units_equal_nocase(text, no[i])) {
            *out = false;
            return CB_ERR_OK;
        }
    }
    return units_fail(err, err_cap, CB_ERR_INVALID, "not a boolean", units_expect_bool);
}

/* Split "<count>[k|M|G]/<unit>": the count's multiplier and the unit's per-second factor. */
static int units_rate_unit(const char *rest, uint64_t *mult, uint64_t *div)
{
    *mult = 1;
    *div = 1;
    if (*rest == 'k' || *rest == 'M' || *rest == 'G') {
        *mult = *rest == 'k' ? 1000ull : *rest == 'M' ? 1000000ull : 1000000000ull;
        rest++;
    }
    if (*rest++ != '/') {
        return CB_ERR_INVALID;
    }
    const units_unit *u = units_find(units_rate_per, rest);
    if (u != NULL) {
        *mult = *mult * u->mult; /* at most 10^9 * 10^6: fits */
        return CB_ERR_OK;
    }
    if (strcmp(rest, "m") == 0 || strcmp(rest, "h") == 0) {
        *div = rest[0] == 'm' ? 60u : 3600u;
        return CB_ERR_OK;
    }
    return CB_ERR_INVALID;
}

int cb_units_parse_rate(const char *text, uint64_t *out_per_s, char *err, size_t err_cap)
{
    units_num n;
    uint64_t mult, div, per_unit;
    int rc = units_read_number(text, false, &n);
    if (rc == CB_ERR_OK && units_rate_unit(n.rest, &mult, &div) != CB_ERR_OK) {
        return units_fail(err, err_cap, CB_ERR_INVALID, "no '/s' or unknown unit",
                          units_expect_rate);
    }
    if (rc == CB_ERR_OK) {
        rc = units_scale(&n, mult, &per_unit);
        if (rc == CB_ERR_INVALID) {
            return units_fail(err, err_cap, rc, "not a whole number per second", units_expect_rate);
        }
    }
    if (rc == CB_ERR_TOO_LARGE) {
        return units_fail(err, err_cap, rc, "too large", units_expect_rate);
    }
    if (rc != CB_ERR_OK) {
        return units_fail(err, err_cap, rc, "not a number", units_expect_rate);
    }
    if (per_unit % div != 0) {
        return units_fail(err, err_cap, CB_ERR_INVALID, "not a whole number per second",
                          units_expect_rate);
    }
    *out_per_s = per_unit / div;
    return CB_ERR_OK;
}

/* snprintf's result as the formatters' contract: the length, or -1 if it did not fit. */
static int units_result(int n, size_t out_cap)
{
    return n < 0 || (size_t)n >= out_cap ? -1 : n;
}

/* The value in the largest unit of `table` (listed smallest first) that divides it. */
static int units_format_largest(uint64_t value, const units_unit *table, size_t count, char *out,
                                size_t out_cap)
{
    size_t best = 0;
    for (size_t i = 0; i < count; i++) {
        if (value % table[i].mult == 0 && value / table[i].mult <= value / table[best].mult) {
            best = i;
        }
    }
    int n = snprintf(out, out_cap, "%" PRIu64 "%s", value / table[best].mult, table[best].name);
    return units_result(n, out_cap);
}

int cb_units_format_duration(uint64_t ns, char *out, size_t out_cap)
{
    if (ns == 0) {
        return units_result(snprintf(out, out_cap, "0s"), out_cap);
    }
    return units_format_largest(ns, units_durations, 6, out, out_cap);
}

int cb_units_format_size(uint64_t bytes, char *out, size_t out_cap)
{
    /* B KB MB GB TB KiB MiB GiB TiB, skipping the "kB" spelling: the smallest number wins. */
    static const units_unit sizes[] = {
        {"B", 1ull},           {"KB", 1000ull},          {"MB", 1000000ull},
        {"GB", 1000000000ull}, {"TB", 1000000000000ull}, {"KiB", 1ull << 10},
        {"MiB", 1ull << 20},   {"GiB", 1ull << 30},      {"TiB", 1ull << 40},
    };
    if (bytes == 0) {
        return units_result(snprintf(out, out_cap, "0B"), out_cap);
    }
    return units_format_largest(bytes, sizes, sizeof sizes / sizeof sizes[0], out, out_cap);
}

int cb_units_format_bandwidth(uint64_t bps, char *out, size_t out_cap)
{
    static const units_unit bits[] = {
        {"bps", 1ull},           {"Kbps", 1000ull},          {"Mbps", 1000000ull},
        {"Gbps", 1000000000ull}, {"Tbps", 1000000000000ull},
    };
    if (bps == 0) {
        return units_result(snprintf(out, out_cap, "0bps"), out_cap);
    }
    return units_format_largest(bps, bits, sizeof bits / sizeof bits[0], out, out_cap);
}

/* whole.frac with `digits` fraction digits, trailing zeros (and a bare point) dropped. */
static int units_format_fixed(const char *sign, uint64_t value, uint64_t scale, unsigned digits,
                              const char *suffix, char *out, size_t out_cap)
{
    uint64_t frac = value % scale;
    if (frac == 0) {
        return units_result(snprintf(out, out_cap, "%s%" PRIu64 "%s", sign, value / scale, suffix),
                            out_cap);
    }
    while (frac % 10u == 0) {
        frac /= 10u;
        digits--;
    }
    int n = snprintf(out, out_cap, "%s%" PRIu64 ".%0*" PRIu64 "%s", sign, value / scale,
                     (int)digits, frac, suffix);
    return units_result(n, out_cap);
}

int cb_units_format_percent(uint32_t ppm, char *out, size_t out_cap)
{
    return units_format_fixed("", ppm, 10000u, 4, "%", out, out_cap);
}

int cb_units_format_ratio(uint32_t ppm, char *out, size_t out_cap)
{
    return units_format_fixed("", ppm, 1000000u, 6, "", out, out_cap);
}

int cb_units_format_decimal(int64_t micro, char *out, size_t out_cap)
{
    /* The magnitude as unsigned, which also covers INT64_MIN. */
    uint64_t mag = micro < 0 ? (uint64_t)(-(micro + 1)) + 1u : (uint64_t)micro;
    return units_format_fixed(micro < 0 ? "-" : "", mag, 1000000u, 6, "", out, out_cap);
}

int cb_units_format_uint(uint64_t value, char *out, size_t out_cap)
{
    return units_result(snprintf(out, out_cap, "%" PRIu64, value), out_cap);
}

int cb_units_format_bool(bool value, char *out, size_t out_cap)
{
    return units_result(snprintf(out, out_cap, "%s", value ? "true" : "false"), out_cap);
}

int cb_units_format_rate(uint64_t per_s, char *out, size_t out_cap)
{
    return units_result(snprintf(out, out_cap, "%" PRIu64 "/s", per_s), out_cap);
}

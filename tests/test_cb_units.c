/* test_cb_units.c: every unit, good and bad, exact values, messages, format round trips. */
#include <string.h>

#include "cb_err.h"
#include "cb_test.h"
#include "cb_units.h"

typedef struct units_case {
    const char *text;
    int rc;          /* expected return */
    uint64_t value;  /* expected value when rc == CB_ERR_OK */
    const char *msg; /* expected error message (prefix) when rc != OK, or NULL */
} units_case;

#define OKV(t, v)                                                                                  \
    {                                                                                              \
        t, CB_ERR_OK, v, NULL                                                                      \
    }
#define BAD(t, rc, m)                                                                              \
    {                                                                                              \
        t, CB_ERR_##rc, 0, m                                                                       \
    }
#define NS_S 1000000000ull

static void units_check(const char *kind, const units_case *c, int rc, uint64_t got,
                        const char *err)
{
    if (rc != c->rc || (rc == CB_ERR_OK && got != c->value) ||
        (c->msg != NULL && strncmp(err, c->msg, strlen(c->msg)) != 0)) {
        printf("\n  %s '%s': rc %d (want %d), value %" PRIu64 " (want %" PRIu64 "), err '%s'\n",
               kind, c->text, rc, c->rc, got, c->value, err);
        CU_FAIL("units case");
    }
}

static const char dur_expect[] = "expected a duration like 5ms or 1.5s (units: ns us ms s m h)";

static void test_units_duration(void)
{
    static const units_case cases[] = {
        OKV("5ms", 5000000),
        OKV("1.5s", 1500000000),
        OKV("30s", 30 * NS_S),
        OKV("1ns", 1),
        OKV("2us", 2000),
        OKV("0.1s", 100000000),
        OKV("1.5m", 90 * NS_S),
        OKV("2h", 7200 * NS_S),
        OKV("0s", 0),
        OKV("5 ms", 5000000),
        OKV("1.000000000000000000000000s", NS_S),
        OKV("18446744073709551615ns", UINT64_MAX),
        BAD("5", INVALID, "no unit: expected a duration like 5ms"),
        BAD("5sec", INVALID, "unknown unit 'sec'"),
        BAD("5MS", INVALID, "unknown unit 'MS'"),
        BAD("", INVALID, "not a number"),
        BAD("ms", INVALID, "not a number"),
        BAD("-5ms", INVALID, "not a number"),
        BAD(".5s", INVALID, "not a number"),
        BAD("5.s", INVALID, "not a number"),
        BAD("1e3ms", INVALID, "unknown unit 'e3ms'"),
        BAD("0.5ns", INVALID, "finer than 1ns"),
        BAD("1.0000000001s", INVALID, "finer than 1ns"),
        BAD("18446744073709551616ns", TOO_LARGE, "too large"),
        BAD("18446744074s", TOO_LARGE, "too large"),
        BAD("99999999999999999999999h", TOO_LARGE, "too large"),
        BAD("1.2345678901234567891s", INVALID, "not a number"),
        BAD(" 5ms", INVALID, "not a number"),
        BAD("5ms5", INVALID, "unknown unit 'ms5'"),
        BAD("00000000000000000000000000000000000000005ms", INVALID, "not a number"),
    };
    char err[160];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        uint64_t v = 0;
        err[0] = '\0';
        int rc = cb_units_parse_duration(cases[i].text, 0, &v, err, sizeof err);
        units_check("duration", &cases[i], rc, v, err);
    }
    /* The whole message, once. */
    uint64_t v = 0;
    CU_ASSERT_EQUAL(cb_units_parse_duration("5", 0, &v, err, sizeof err), CB_ERR_INVALID);
    CU_ASSERT_STRING_EQUAL(err, "no unit: expected a duration like 5ms or 1.5s (units: ns us ms "
                                "s m h)");
    CU_ASSERT_EQUAL(strlen(dur_expect) + 9, strlen(err));
    /* A bare number is nanoseconds only when the caller says so. */
    CU_ASSERT_EQUAL(cb_units_parse_duration("1500", CB_UNITS_BARE_OK, &v, err, sizeof err),
                    CB_ERR_OK);
    CU_ASSERT_EQUAL(v, 1500);
}

static void test_units_size(void)
{
    static const units_case cases[] = {
        OKV("64KiB", 65536),
        OKV("1.5MB", 1500000),
        OKV("1KB", 1000),
        OKV("1kB", 1000),
        OKV("2GB", 2000000000),
        OKV("1TB", 1000000000000ull),
        OKV("1MiB", 1048576),
        OKV("1.5KiB", 1536),
        OKV("3GiB", 3ull << 30),
        OKV("1TiB", 1ull << 40),
        OKV("100B", 100),
        OKV("0B", 0),
        BAD("100", INVALID, "no unit: expected a size like 64KiB"),
        BAD("1.5B", INVALID, "finer than 1B"),
        BAD("0.1KiB", INVALID, "finer than 1B"),
        BAD("1kib", INVALID, "unknown unit 'kib'"),
        BAD("1b", INVALID, "unknown unit 'b'"),
        BAD("16777216TiB", TOO_LARGE, "too large"),
        BAD("MiB", INVALID, "not a number"),
    };
    char err[160];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        uint64_t v = 0;
        int rc = cb_units_parse_size(cases[i].text, 0, &v, err, sizeof err);
        units_check("size", &cases[i], rc, v, err);
    }
    uint64_t v = 0;
    CU_ASSERT_EQUAL(cb_units_parse_size("1500", CB_UNITS_BARE_OK, &v, err, sizeof err), CB_ERR_OK);
    CU_ASSERT_EQUAL(v, 1500);
}

static void test_units_bandwidth(void)
{
    static const units_case cases[] = {
        OKV("1Gbps", 1000000000),
        OKV("100Mbps", 100000000),
        OKV("1.5Kbps", 1500),
        OKV("1kbps", 1000),
        OKV("10bps", 10),
        OKV("1Tbps", 1000000000000ull),
        OKV("1Bps", 8),
        OKV("1KBps", 8000),
        OKV("1kBps", 8000),
        OKV("2MBps", 16000000),
        OKV("1GBps", 8000000000ull),
        OKV("0.125Bps", 1),
        BAD("1G", INVALID, "unknown unit 'G'"),
        BAD("1000", INVALID, "no unit: expected a bandwidth like 1Gbps"),
        BAD("1.5bps", INVALID, "finer than 1bps"),
        BAD("1gbps", INVALID, "unknown unit 'gbps'"),
        BAD("99999999999Tbps", TOO_LARGE, "too large"),
    };
    char err[200];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        uint64_t v = 0;
        int rc = cb_units_parse_bandwidth(cases[i].text, &v, err, sizeof err);
        units_check("bandwidth", &cases[i], rc, v, err);
    }
}

static void test_units_fraction(void)
{
    static const units_case cases[] = {
        OKV("2%", 20000),
        OKV("0.5%", 5000),
        OKV("100%", 1000000),
        OKV("0%", 0),
        OKV("0.0001%", 1),
        OKV("0.99", 990000),
        OKV("0.02", 20000),
        OKV("1", 1000000),
        OKV("0", 0),
        OKV("0.000001", 1),
        OKV("150%", 1500000),
        BAD("0.00001%", INVALID, "finer than 1ppm"),
        BAD("0.0000001", INVALID, "finer than 1ppm"),
        BAD("2 percent", INVALID, "unknown unit 'percent'"),
        BAD("%", INVALID, "not a number"),
        BAD("5000", TOO_LARGE, "too large"),
        BAD("-1%", INVALID, "not a number"),
    };
    char err[160];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        uint32_t v = 0;
        int rc = cb_units_parse_fraction(cases[i].text, &v, err, sizeof err);
        units_check("fraction", &cases[i], rc, v, err);
    }
    uint32_t v = 0;
    CU_ASSERT_EQUAL(cb_units_parse_fraction("2 percent", &v, err, sizeof err), CB_ERR_INVALID);
    CU_ASSERT_STRING_EQUAL(err, "unknown unit 'percent': expected a percentage like 2% or 0.5%, "
                                "or a ratio like 0.02");
}

static void test_units_uint(void)
{
    static const units_case cases[] = {
        OKV("0", 0),
        OKV("10000", 10000),
        OKV("18446744073709551615", UINT64_MAX),
        BAD("18446744073709551616", TOO_LARGE, "too large: expected a whole number like 1000"),
        BAD("1.5", INVALID, "not a whole number"),
        BAD("1.0", INVALID, "not a whole number"),
        BAD("10k", INVALID, "not a whole number"),
        BAD("1e6", INVALID, "not a whole number"),
        BAD("-1", INVALID, "not a whole number"),
        BAD("", INVALID, "not a whole number"),
        BAD("1 000", INVALID, "not a whole number"),
    };
    char err[160];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        uint64_t v = 0;
        int rc = cb_units_parse_uint(cases[i].text, &v, err, sizeof err);
        units_check("uint", &cases[i], rc, v, err);
    }
}

static void test_units_decimal(void)
{
    static const struct {
        const char *text;
        int rc;
        int64_t value;
    } cases[] = {
        {"0.99", CB_ERR_OK, 990000},
        {"1", CB_ERR_OK, 1000000},
        {"-1.5", CB_ERR_OK, -1500000},
        {"+2", CB_ERR_OK, 2000000},
        {"214.476", CB_ERR_OK, 214476000},
        {"0.348238", CB_ERR_OK, 348238},
        {"-0", CB_ERR_OK, 0},
        {"9223372036854.775807", CB_ERR_OK, INT64_MAX},
        {"-9223372036854.775808", CB_ERR_OK, INT64_MIN},
        {"9223372036854.775808", CB_ERR_TOO_LARGE, 0},
        {"0.0000001", CB_ERR_INVALID, 0},
        {"1.5x", CB_ERR_INVALID, 0},
        {"--1", CB_ERR_INVALID, 0},
        {"", CB_ERR_INVALID, 0},
    };
    char err[160];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int64_t v = 0;
        int rc = cb_units_parse_decimal(cases[i].text, &v, err, sizeof err);
        if (rc != cases[i].rc || (rc == CB_ERR_OK && v != cases[i].value)) {
            printf("\n  decimal '%s': rc %d, value %" PRId64 "\n", cases[i].text, rc, v);
            CU_FAIL("decimal case");
        }
    }
}

static void test_units_bool(void)
{
    static const char *const yes[] = {"true", "yes", "on", "TRUE", "Yes"};
    static const char *const no[] = {"false", "no", "off", "OFF"};
    static const char *const bad[] = {"1", "0", "y", "", "truee", "t"};
    char err[160];
    bool v;
    for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++) {
        v = false;
        CU_ASSERT_EQUAL(cb_units_parse_bool(yes[i], &v, err, sizeof err), CB_ERR_OK);
        CU_ASSERT_TRUE(v);
    }
    for (size_t i = 0; i < sizeof no / sizeof no[0]; i++) {
        v = true;
        CU_ASSERT_EQUAL(cb_units_parse_bool(no[i], &v, err, sizeof err), CB_ERR_OK);
        CU_ASSERT_FALSE(v);
    }
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        CU_ASSERT_EQUAL(cb_units_parse_bool(bad[i], &v, err, sizeof err), CB_ERR_INVALID);
    }
    CU_ASSERT_STRING_EQUAL(err, "not a boolean: expected true or false (or yes/no, on/off)");
}

static void test_units_rate(void)
{
    static const units_case cases[] = {
        OKV("20000/s", 20000),
        OKV("20k/s", 20000),
        OKV("1.5M/s", 1500000),
        OKV("3/ms", 3000),
        OKV("1/us", 1000000),
        OKV("120/m", 2),
        OKV("7200/h", 2),
        OKV("2G/s", 2000000000),
        BAD("1/m", INVALID, "not a whole number per second"),
        BAD("0.5/s", INVALID, "not a whole number per second"),
        BAD("20000", INVALID, "no '/s' or unknown unit"),
        BAD("20000/sec", INVALID, "no '/s' or unknown unit"),
        BAD("20K/s", INVALID, "no '/s' or unknown unit"),
        BAD("99999999999999999999/s", TOO_LARGE, "too large"),
        BAD("99999999999999G/s", TOO_LARGE, "too large"),
    };
    char err[160];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        uint64_t v = 0;
        int rc = cb_units_parse_rate(cases[i].text, &v, err, sizeof err);
        units_check("rate", &cases[i], rc, v, err);
    }
}

static void test_units_format(void)
{
    static const struct {
        int (*fn)(uint64_t, char *, size_t);
        uint64_t value;
        const char *text;
    } cases[] = {
        {cb_units_format_duration, 0, "0s"},
        {cb_units_format_duration, 1500000000, "1500ms"},
        {cb_units_format_duration, 90 * NS_S, "90s"},
        {cb_units_format_duration, 120 * NS_S, "2m"},
        {cb_units_format_duration, 7200 * NS_S, "2h"},
        {cb_units_format_duration, 100000, "100us"},
        {cb_units_format_duration, 1, "1ns"},
        {cb_units_format_size, 0, "0B"},
        {cb_units_format_size, 65536, "64KiB"},
        {cb_units_format_size, 1000000, "1MB"},
        {cb_units_format_size, 1500, "1500B"},
        {cb_units_format_size, 1ull << 40, "1TiB"},
        {cb_units_format_bandwidth, 10000000000ull, "10Gbps"},
        {cb_units_format_bandwidth, 1500, "1500bps"},
        {cb_units_format_bandwidth, 0, "0bps"},
        {cb_units_format_rate, 20000, "20000/s"},
        {cb_units_format_uint, UINT64_MAX, "18446744073709551615"},
    };
    char out[CB_UNITS_FORMAT_BYTES];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        CU_ASSERT_EQUAL(cases[i].fn(cases[i].value, out, sizeof out), (int)strlen(cases[i].text));
        CU_ASSERT_STRING_EQUAL(out, cases[i].text);
    }
    CU_ASSERT_EQUAL(cb_units_format_percent(5000, out, sizeof out), 4);
    CU_ASSERT_STRING_EQUAL(out, "0.5%");
    (void)cb_units_format_percent(1, out, sizeof out);
    CU_ASSERT_STRING_EQUAL(out, "0.0001%");
    (void)cb_units_format_ratio(80000, out, sizeof out);
    CU_ASSERT_STRING_EQUAL(out, "0.08");
    (void)cb_units_format_decimal(-1500000, out, sizeof out);
    CU_ASSERT_STRING_EQUAL(out, "-1.5");
    (void)cb_units_format_decimal(INT64_MIN, out, sizeof out);
    CU_ASSERT_STRING_EQUAL(out, "-9223372036854.775808");
    (void)cb_units_format_bool(true, out, sizeof out);
    CU_ASSERT_STRING_EQUAL(out, "true");
    CU_ASSERT_EQUAL(cb_units_format_duration(1500000000, out, 4), -1);
}

/* Property: format then parse gives the same integer, for seeded random values. */
static void test_units_round_trip(void)
{
    uint64_t x = cb_test_seed();
    char out[CB_UNITS_FORMAT_BYTES], err[160];
    for (int i = 0; i < 20000; i++) {
        x = x * 6364136223846793005ull + 1442695040888963407ull;
        uint64_t v = x >> (x % 64), back = 0;
        uint32_t ppm = (uint32_t)(x >> 40), ppm_back = 0;
        int64_t s = (int64_t)x, s_back = 0;
        CU_ASSERT_FATAL(cb_units_format_duration(v, out, sizeof out) > 0);
        CU_ASSERT_FATAL(cb_units_parse_duration(out, 0, &back, err, sizeof err) == CB_ERR_OK);
        CU_ASSERT_EQUAL_FATAL(back, v);
        CU_ASSERT_FATAL(cb_units_format_size(v, out, sizeof out) > 0);
        CU_ASSERT_FATAL(cb_units_parse_size(out, 0, &back, err, sizeof err) == CB_ERR_OK);
        CU_ASSERT_EQUAL_FATAL(back, v);
        CU_ASSERT_FATAL(cb_units_format_bandwidth(v, out, sizeof out) > 0);
        CU_ASSERT_FATAL(cb_units_parse_bandwidth(out, &back, err, sizeof err) == CB_ERR_OK);
        CU_ASSERT_EQUAL_FATAL(back, v);
        CU_ASSERT_FATAL(cb_units_format_percent(ppm, out, sizeof out) > 0);
        CU_ASSERT_FATAL(cb_units_parse_fraction(out, &ppm_back, err, sizeof err) == CB_ERR_OK);
        CU_ASSERT_EQUAL_FATAL(ppm_back, ppm);
        CU_ASSERT_FATAL(cb_units_format_ratio(ppm, out, sizeof out) > 0);
        CU_ASSERT_FATAL(cb_units_parse_fraction(out, &ppm_back, err, sizeof err) == CB_ERR_OK);
        CU_ASSERT_EQUAL_FATAL(ppm_back, ppm);
        CU_ASSERT_FATAL(cb_units_format_decimal(s, out, sizeof out) > 0);
        CU_ASSERT_FATAL(cb_units_parse_decimal(out, &s_back, err, sizeof err) == CB_ERR_OK);
        CU_ASSERT_EQUAL_FATAL(s_back, s);
    }
}

/* Error messages are cut to err_cap, always NUL-terminated; err_cap 0 writes nothing. */
static void test_units_err_cap(void)
{
    char err[8];
    uint64_t v;
    memset(err, 'x', sizeof err);
    CU_ASSERT_EQUAL(cb_units_parse_duration("5", 0, &v, err, sizeof err), CB_ERR_INVALID);
    CU_ASSERT_STRING_EQUAL(err, "no unit");
    CU_ASSERT_EQUAL(cb_units_parse_duration("5", 0, &v, NULL, 0), CB_ERR_INVALID);
}

static const cb_test_case cases[] = {
    {"duration", test_units_duration},   {"size", test_units_size},
    {"bandwidth", test_units_bandwidth}, {"fraction", test_units_fraction},
    {"uint", test_units_uint},           {"decimal", test_units_decimal},
    {"bool", test_units_bool},           {"rate", test_units_rate},
    {"format", test_units_format},       {"round_trip", test_units_round_trip},
    {"err_cap", test_units_err_cap},     {NULL, NULL},
};

CB_TEST_MAIN("cb_units", cases)

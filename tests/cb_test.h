/*
 * cb_test.h: the harness every CUnit suite uses.
 *
 * A suite is a table of {name, function} ending with {NULL, NULL}; CB_TEST_MAIN registers it,
 * runs it in CUnit's verbose basic mode (which prints the Run Summary CI reads), and exits
 * non-zero when any assertion failed. CUnit's CU_basic_run_tests() returns success even when
 * assertions fail (PITFALLS.md), so we count failures ourselves.
 *
 * Seeds: property tests draw their seed from cb_test_seed(), which is CB_TEST_SEED from the
 * environment when set, else a fixed default, and is printed so a failure can be replayed:
 *     CB_TEST_SEED=1234 ctest -R cb_store -V
 */
#ifndef CB_TEST_H
#define CB_TEST_H

#include <CUnit/Basic.h>
#include <CUnit/CUnit.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

typedef struct cb_test_case {
    const char *name;
    void (*fn)(void);
} cb_test_case;

/* The seed for property tests (see above); printed once per suite. */
static inline uint64_t cb_test_seed(void)
{
    const char *env = getenv("CB_TEST_SEED");
    if (env != NULL && *env != '\0') {
        return strtoull(env, NULL, 0);
    }
    return 0x5eed2026ull;
}

static inline int cb_test_run(const char *suite_name, const cb_test_case *cases)
{
    if (CU_initialize_registry() != CUE_SUCCESS) {
        fprintf(stderr, "%s: CUnit: %s\n", suite_name, CU_get_error_msg());
        return 2;
    }
    CU_pSuite suite = CU_add_suite(suite_name, NULL, NULL);
    if (suite == NULL) {
        fprintf(stderr, "%s: CUnit: %s\n", suite_name, CU_get_error_msg());
        CU_cleanup_registry();
        return 2;
    }
    for (const cb_test_case *c = cases; c->name != NULL; c++) {
        if (CU_add_test(suite, c->name, c->fn) == NULL) {
            fprintf(stderr, "%s: CUnit: %s\n", suite_name, CU_get_error_msg());
            CU_cleanup_registry();
            return 2;
        }
    }
    printf("%s: seed %" PRIu64 " (replay with CB_TEST_SEED=%" PRIu64 ")\n", suite_name,
           cb_test_seed(), cb_test_seed());
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_ErrorCode rc = CU_basic_run_tests();
    unsigned failures = CU_get_number_of_failures();
    unsigned tests_failed = CU_get_number_of_tests_failed();
    CU_cleanup_registry();
    if (rc != CUE_SUCCESS) {
        fprintf(stderr, "%s: CUnit error %d\n", suite_name, (int)rc);
        return 2;
    }
    if (failures > 0 || tests_failed > 0) {
        fprintf(stderr, "%s: %u assertion(s) failed in %u test(s)\n", suite_name, failures,
                tests_failed);
        return 1;
    }
    return 0;
}

#define CB_TEST_MAIN(suite_name, cases)                                                            \
    int main(void)                                                                                 \
    {                                                                                              \
        return cb_test_run(suite_name, cases);                                                     \
    }

#endif

/*
 * cb_test_guard.h: a guard page for decoder tests.
 *
 * Two pages, the second PROT_NONE: bytes placed with cb_test_guard_place end exactly at the
 * end of the first page, so a decoder that reads one byte past its input faults (under
 * ASan or not). Include after cb_test.h; the suite must define _DEFAULT_SOURCE (MAP_ANONYMOUS)
 * before any system header.
 */
#ifndef CB_TEST_GUARD_H
#define CB_TEST_GUARD_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "cb_test.h"

typedef struct cb_test_guard {
    uint8_t *base;
    size_t page;
} cb_test_guard;

static inline void cb_test_guard_init(cb_test_guard *g)
{
    long page = sysconf(_SC_PAGESIZE);
    CU_ASSERT_FATAL(page > 0);
    g->page = (size_t)page;
    void *p = mmap(NULL, 2 * g->page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CU_ASSERT_FATAL(p != MAP_FAILED);
    g->base = p;
    CU_ASSERT_FATAL(mprotect(g->base + g->page, g->page, PROT_NONE) == 0);
}

static inline void cb_test_guard_free(cb_test_guard *g)
{
    CU_ASSERT(munmap(g->base, 2 * g->page) == 0);
}

/* Copy bytes so that their last byte is the last readable one; returns where they start. */
static inline const uint8_t *cb_test_guard_place(cb_test_guard *g, const uint8_t *bytes,
                                                 size_t len)
{
    CU_ASSERT_FATAL(len <= g->page);
    uint8_t *at = g->base + g->page - len;
    if (len > 0) {
        memcpy(at, bytes, len);
    }
    return at;
}

#endif

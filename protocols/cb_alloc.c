/* cb_alloc.c: the default allocator and the failing allocator used by OOM tests. */
#include "cb_alloc.h"

#include <stdlib.h>

static void *alloc_std_malloc(size_t size, void *user_data)
{
    (void)user_data;
    return malloc(size);
}

static void alloc_std_free(void *ptr, void *user_data)
{
    (void)user_data;
    free(ptr);
}

static void *alloc_std_calloc(size_t nmemb, size_t size, void *user_data)
{
    (void)user_data;
    return calloc(nmemb, size);
}

static const cb_alloc alloc_std = {NULL, alloc_std_malloc, alloc_std_free, alloc_std_calloc};

const cb_alloc *cb_alloc_default(void)
{
    return &alloc_std;
}

void *cb_alloc_malloc(const cb_alloc *a, size_t size)
{
    if (a == NULL) {
        a = &alloc_std;
    }
    if (size == 0) {
        return NULL;
    }
    return a->malloc(size, a->user_data);
}

void *cb_alloc_calloc(const cb_alloc *a, size_t nmemb, size_t size)
{
    if (a == NULL) {
        a = &alloc_std;
    }
    if (nmemb == 0 || size == 0 || nmemb > SIZE_MAX / size) {
        return NULL;
    }
    return a->calloc(nmemb, size, a->user_data);
}

void cb_alloc_free(const cb_alloc *a, void *ptr)
{
    if (ptr == NULL) {
        return;
    }
    if (a == NULL) {
        a = &alloc_std;
    }
    a->free(ptr, a->user_data);
}

static int alloc_failing_should_fail(cb_alloc_failing *f)
{
    uint64_t n = f->calls++;
    if (n < f->fail_at || f->fail_count == 0) {
        return 0;
    }
    if (f->fail_count != UINT64_MAX) {
        f->fail_count--;
    }
    return 1;
}

static void *alloc_failing_malloc(size_t size, void *user_data)
{
    cb_alloc_failing *f = user_data;
    if (alloc_failing_should_fail(f)) {
        return NULL;
    }
    void *p = malloc(size);
    f->live += p != NULL;
    return p;
}

static void alloc_failing_free(void *ptr, void *user_data)
{
    cb_alloc_failing *f = user_data;
    f->live--;
    free(ptr);
}

static void *alloc_failing_calloc(size_t nmemb, size_t size, void *user_data)
{
    cb_alloc_failing *f = user_data;
    if (alloc_failing_should_fail(f)) {
        return NULL;
    }
    void *p = calloc(nmemb, size);
    f->live += p != NULL;
    return p;
}

void cb_alloc_failing_init(cb_alloc_failing *f, uint64_t fail_at, uint64_t fail_count)
{
    f->alloc.user_data = f;
    f->alloc.malloc = alloc_failing_malloc;
    f->alloc.free = alloc_failing_free;
    f->alloc.calloc = alloc_failing_calloc;
    f->fail_at = fail_at;
    f->fail_count = fail_count;
    f->calls = 0;
    f->live = 0;
}

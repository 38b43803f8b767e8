/*
 * cb_alloc.h: the allocator every protocols/ module takes, modelled on ngtcp2_mem.
 *
 * Modules never call malloc directly: they call cb_alloc_malloc(a, n) and friends on the
 * cb_alloc the caller passed at init. Tests pass cb_alloc_failing to make the Nth allocation
 * fail and check that every failure returns CB_ERR_NOMEM cleanly, without leaking.
 */
#ifndef CB_ALLOC_H
#define CB_ALLOC_H

#include <stddef.h>
#include <stdint.h>

typedef struct cb_alloc {
    void *user_data;
    void *(*malloc)(size_t size, void *user_data);
    void (*free)(void *ptr, void *user_data);
    void *(*calloc)(size_t nmemb, size_t size, void *user_data);
} cb_alloc;

/* The process allocator (malloc/free/calloc). Never NULL; the struct is immutable. */
const cb_alloc *cb_alloc_default(void);

/* NULL `a` means cb_alloc_default(). Return NULL on failure (or for size 0 / overflow). */
void *cb_alloc_malloc(const cb_alloc *a, size_t size);
void *cb_alloc_calloc(const cb_alloc *a, size_t nmemb, size_t size);
/* Freeing NULL is a no-op. */
void cb_alloc_free(const cb_alloc *a, void *ptr);

/*
 * A test allocator that fails: allocations numbered fail_at, fail_at+1, ... (counting from 0)
 * return NULL while `fail_count` is non-zero (fail_count = UINT64_MAX: fail all from fail_at).
 * `calls` counts every malloc/calloc attempt and `live` the blocks not yet freed.
 * Embed one, call cb_alloc_failing_init, and pass &f->alloc.
 */
typedef struct cb_alloc_failing {
    cb_alloc alloc;
    uint64_t fail_at;
    uint64_t fail_count;
    uint64_t calls;
    int64_t live;
} cb_alloc_failing;

void cb_alloc_failing_init(cb_alloc_failing *f, uint64_t fail_at, uint64_t fail_count);

#endif

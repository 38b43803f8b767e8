/*
 * test_cb_outbox.c: the fixed-capacity action queue of the sans-IO machines.
 *
 * FIFO order across the ring's wraparound, FULL at capacity, the payload arena (reserve,
 * unreserve, reuse once everything is drained), popping in place, and clean NOMEM from init.
 */
#include <string.h>

#include "cb_err.h"
#include "cb_outbox.h"
#include "cb_test.h"

static cb_action outbox_action(uint32_t peer)
{
    cb_action a;
    memset(&a, 0, sizeof a);
    a.kind = CB_ACTION_SEND;
    a.peer = peer;
    return a;
}

static void test_outbox_init_rejects_zero_capacity(void)
{
    cb_outbox ob;
    CU_ASSERT_EQUAL(cb_outbox_init(&ob, 0, 16, NULL), CB_ERR_INVALID);
    CU_ASSERT_PTR_NULL(ob.actions);
    CU_ASSERT_EQUAL(cb_outbox_init(&ob, 4, 0, NULL), CB_ERR_INVALID);
    CU_ASSERT_PTR_NULL(ob.arena);
    cb_outbox_free(&ob, NULL); /* zero-filled: a no-op */
}

static void test_outbox_fifo_and_full(void)
{
    cb_outbox ob;
    CU_ASSERT_EQUAL_FATAL(cb_outbox_init(&ob, 4, 64, NULL), CB_ERR_OK);
    for (uint32_t i = 0; i < 4; i++) {
        cb_action a = outbox_action(i);
        CU_ASSERT_EQUAL(cb_outbox_push(&ob, &a), CB_ERR_OK);
    }
    CU_ASSERT_FALSE(cb_outbox_has_room(&ob, 0));
    cb_action extra = outbox_action(99);
    CU_ASSERT_EQUAL(cb_outbox_push(&ob, &extra), CB_ERR_FULL);
    cb_action out[8];
    CU_ASSERT_EQUAL(cb_outbox_drain(&ob, out, 8), 4);
    for (uint32_t i = 0; i < 4; i++) {
        CU_ASSERT_EQUAL(out[i].peer, i);
    }
    CU_ASSERT_EQUAL(cb_outbox_drain(&ob, out, 8), 0);
    CU_ASSERT_TRUE(cb_outbox_has_room(&ob, 64));
    cb_outbox_free(&ob, NULL);
}

/* Partial drains move head around the ring many times; order never breaks. */
static void test_outbox_wraparound(void)
{
    cb_outbox ob;
    CU_ASSERT_EQUAL_FATAL(cb_outbox_init(&ob, 3, 64, NULL), CB_ERR_OK);
    uint32_t next_push = 0, next_pop = 0;
    for (int round = 0; round < 20; round++) {
        while (cb_outbox_has_room(&ob, 0)) {
            cb_action a = outbox_action(next_push++);
            CU_ASSERT_EQUAL(cb_outbox_push(&ob, &a), CB_ERR_OK);
        }
        cb_action out[2];
        size_t n = cb_outbox_drain(&ob, out, (size_t)(round % 2) + 1);
        CU_ASSERT_EQUAL(n, (size_t)(round % 2) + 1);
        for (size_t i = 0; i < n; i++) {
            CU_ASSERT_EQUAL(out[i].peer, next_pop++);
        }
    }
    cb_action out[3];
    size_t n = cb_outbox_drain(&ob, out, 3);
    for (size_t i = 0; i < n; i++) {
        CU_ASSERT_EQUAL(out[i].peer, next_pop++);
    }
    CU_ASSERT_EQUAL(next_pop, next_push);
    cb_outbox_free(&ob, NULL);
}

static void test_outbox_arena_reserve_unreserve(void)
{
    cb_outbox ob;
    CU_ASSERT_EQUAL_FATAL(cb_outbox_init(&ob, 4, 100, NULL), CB_ERR_OK);
    uint8_t *a = cb_outbox_reserve(&ob, 30);
    CU_ASSERT_PTR_EQUAL(a, ob.arena);
    uint8_t *b = cb_outbox_reserve(&ob, 50);
    CU_ASSERT_PTR_EQUAL(b, ob.arena + 30);
    CU_ASSERT_PTR_NULL(cb_outbox_reserve(&ob, 21)); /* 80 + 21 > 100: nothing reserved */
    CU_ASSERT_EQUAL(ob.arena_used, 80);
    cb_outbox_unreserve(&ob, 50);
    CU_ASSERT_PTR_EQUAL(cb_outbox_reserve(&ob, 70), ob.arena + 30); /* the same bytes again */
    CU_ASSERT_FALSE(cb_outbox_has_room(&ob, 1));
    CU_ASSERT_PTR_NULL(cb_outbox_reserve(&ob, 1));
    cb_outbox_free(&ob, NULL);
}

/* Once drained, the arena is reused from its start, and payloads stay readable until then. */
static void test_outbox_arena_reset_after_drain(void)
{
    cb_outbox ob;
    CU_ASSERT_EQUAL_FATAL(cb_outbox_init(&ob, 4, 100, NULL), CB_ERR_OK);
    uint8_t *p = cb_outbox_reserve(&ob, 90);
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    memset(p, 0xAB, 90);
    cb_action a = outbox_action(1);
    a.data = p;
    a.data_len = 90;
    CU_ASSERT_EQUAL(cb_outbox_push(&ob, &a), CB_ERR_OK);
    CU_ASSERT_FALSE(cb_outbox_has_room(&ob, 20));
    cb_action out[4];
    CU_ASSERT_EQUAL(cb_outbox_drain(&ob, out, 4), 1);
    CU_ASSERT_EQUAL(out[0].data[89], 0xAB); /* still readable after the drain */
    CU_ASSERT_TRUE(cb_outbox_has_room(&ob, 100));
    /*
     * An action without payload (an event) pushed after the drain must not make the old,
     * drained payload count again: the whole arena is free.
     */
    cb_action ev = outbox_action(2);
    ev.kind = CB_ACTION_EVENT;
    CU_ASSERT_EQUAL(cb_outbox_push(&ob, &ev), CB_ERR_OK);
    CU_ASSERT_TRUE(cb_outbox_has_room(&ob, 99));
    CU_ASSERT_PTR_EQUAL(cb_outbox_reserve(&ob, 99), ob.arena);
    cb_outbox_free(&ob, NULL);
}

/* Pop: FIFO without copies; the popped action's slot and payload survive pushes until the
 * next pop, which (finding nothing) frees the ring and the arena. */
static void test_outbox_pop(void)
{
    cb_outbox ob;
    CU_ASSERT_EQUAL_FATAL(cb_outbox_init(&ob, 3, 64, NULL), CB_ERR_OK);
    for (uint32_t i = 0; i < 2; i++) {
        uint8_t *p = cb_outbox_reserve(&ob, 8);
        CU_ASSERT_PTR_NOT_NULL_FATAL(p);
        memset(p, (int)(0xA0 + i), 8);
        cb_action a = outbox_action(i);
        a.data = p;
        a.data_len = 8;
        CU_ASSERT_EQUAL(cb_outbox_push(&ob, &a), CB_ERR_OK);
    }
    const cb_action *first = cb_outbox_pop(&ob);
    CU_ASSERT_PTR_NOT_NULL_FATAL(first);
    CU_ASSERT_EQUAL(first->peer, 0);
    /* Held: one slot queued, one popped, one free; pushing fills the free one only. */
    cb_action a = outbox_action(7);
    CU_ASSERT_TRUE(cb_outbox_has_room(&ob, 0));
    CU_ASSERT_EQUAL(cb_outbox_push(&ob, &a), CB_ERR_OK);
    CU_ASSERT_FALSE(cb_outbox_has_room(&ob, 0));
    CU_ASSERT_EQUAL(cb_outbox_push(&ob, &a), CB_ERR_FULL);
    CU_ASSERT_PTR_NULL(cb_outbox_send(&ob, 9, 4));
    CU_ASSERT_EQUAL(first->peer, 0);
    CU_ASSERT_EQUAL(first->data[7], 0xA0);
    const cb_action *second = cb_outbox_pop(&ob);
    CU_ASSERT_PTR_NOT_NULL_FATAL(second);
    CU_ASSERT_EQUAL(second->peer, 1);
    CU_ASSERT_EQUAL(second->data[0], 0xA1);
    /* The last action popped: its payload stays while new ones are reserved after it. */
    const cb_action *third = cb_outbox_pop(&ob);
    CU_ASSERT_PTR_NOT_NULL_FATAL(third);
    CU_ASSERT_EQUAL(third->peer, 7);
    uint8_t *later = cb_outbox_reserve(&ob, 8);
    CU_ASSERT_PTR_NOT_NULL_FATAL(later);
    CU_ASSERT(later >= second->data + second->data_len);
    cb_outbox_unreserve(&ob, 8);
    CU_ASSERT_PTR_NULL(cb_outbox_pop(&ob));
    CU_ASSERT_TRUE(cb_outbox_has_room_n(&ob, 3, 64)); /* all of it free again */
    CU_ASSERT_PTR_EQUAL(cb_outbox_reserve(&ob, 64), ob.arena);
    cb_outbox_free(&ob, NULL);
}

/* Two reservations made while the outbox is empty both stay valid. */
static void test_outbox_two_reservations_when_empty(void)
{
    cb_outbox ob;
    CU_ASSERT_EQUAL_FATAL(cb_outbox_init(&ob, 4, 100, NULL), CB_ERR_OK);
    uint8_t *a = cb_outbox_reserve(&ob, 10);
    uint8_t *b = cb_outbox_reserve(&ob, 10);
    CU_ASSERT_PTR_NOT_NULL(a);
    CU_ASSERT_PTR_EQUAL(b, a + 10);
    cb_outbox_free(&ob, NULL);
}

static void test_outbox_init_nomem(void)
{
    for (uint64_t n = 0;; n++) {
        cb_alloc_failing f;
        cb_alloc_failing_init(&f, n, 1);
        cb_outbox ob;
        int rc = cb_outbox_init(&ob, 8, 128, &f.alloc);
        if (rc == CB_ERR_OK) {
            CU_ASSERT_EQUAL(n, 2); /* two allocations: actions, arena */
            cb_outbox_free(&ob, &f.alloc);
            CU_ASSERT_EQUAL(f.live, 0);
            break;
        }
        CU_ASSERT_EQUAL(rc, CB_ERR_NOMEM);
        CU_ASSERT_EQUAL(f.live, 0);
        CU_ASSERT_PTR_NULL(ob.actions);
        CU_ASSERT_PTR_NULL(ob.arena);
        cb_outbox_free(&ob, &f.alloc);
        CU_ASSERT_FATAL(n < 10);
    }
}

static void test_outbox_names(void)
{
    CU_ASSERT_STRING_EQUAL(cb_outcome_name(CB_OUTCOME_NOT_STORED), "not_stored");
    CU_ASSERT_STRING_EQUAL(cb_outcome_name(0), "unknown");
    CU_ASSERT_STRING_EQUAL(cb_event_name(CB_EVENT_LATE_REPLY), "late_reply");
    CU_ASSERT_STRING_EQUAL(cb_event_name(2), "unknown");
}

static const cb_test_case tests[] = {
    {"init_rejects_zero_capacity", test_outbox_init_rejects_zero_capacity},
    {"fifo_and_full", test_outbox_fifo_and_full},
    {"wraparound", test_outbox_wraparound},
    {"arena_reserve_unreserve", test_outbox_arena_reserve_unreserve},
    {"arena_reset_after_drain", test_outbox_arena_reset_after_drain},
    {"two_reservations_when_empty", test_outbox_two_reservations_when_empty},
    {"pop", test_outbox_pop},
    {"init_nomem", test_outbox_init_nomem},
    {"names", test_outbox_names},
    {NULL, NULL},
};

CB_TEST_MAIN("cb_outbox", tests)

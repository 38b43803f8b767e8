/* cb_outbox.c: the fixed-capacity action queue of the sans-IO machines; see cb_outbox.h. */
#include "cb_outbox.h"

#include <assert.h>
#include <string.h>

#include "cb_err.h"

const char *cb_outcome_name(int outcome)
{
    switch (outcome) {
#define CB_OUTCOME_TEXT(name, code, text)                                                          \
    case code:                                                                                     \
        return text;
        CB_OUTCOME_LIST(CB_OUTCOME_TEXT)
#undef CB_OUTCOME_TEXT
    default:
        return "unknown";
    }
}

const char *cb_event_name(int event)
{
    switch (event) {
#define CB_EVENT_TEXT(name, code, text)                                                            \
    case code:                                                                                     \
        return text;
        CB_EVENT_LIST(CB_EVENT_TEXT)
#undef CB_EVENT_TEXT
    default:
        return "unknown";
    }
}

int cb_outbox_init(cb_outbox *ob, size_t action_cap, size_t arena_cap, const cb_alloc *alloc)
{
    memset(ob, 0, sizeof *ob);
    if (action_cap == 0 || arena_cap == 0) {
        return CB_ERR_INVALID;
    }
    ob->actions = cb_alloc_calloc(alloc, action_cap, sizeof ob->actions[0]);
    if (ob->actions == NULL) {
        return CB_ERR_NOMEM;
    }
    ob->arena = cb_alloc_malloc(alloc, arena_cap);
    if (ob->arena == NULL) {
        goto out_free_actions;
    }
    ob->action_cap = action_cap;
    ob->arena_cap = arena_cap;
    return CB_ERR_OK;

out_free_actions:
    cb_alloc_free(alloc, ob->actions);
    ob->actions = NULL;
    return CB_ERR_NOMEM;
}

void cb_outbox_free(cb_outbox *ob, const cb_alloc *alloc)
{
    cb_alloc_free(alloc, ob->actions);
    cb_alloc_free(alloc, ob->arena);
    memset(ob, 0, sizeof *ob);
}

int cb_outbox_has_room(const cb_outbox *ob, size_t bytes)
{
    return cb_outbox_has_room_n(ob, 1, bytes);
}

int cb_outbox_has_room_n(const cb_outbox *ob, size_t actions, size_t bytes)
{
    return ob->action_cap - ob->count - ob->popped >= actions &&
           ob->arena_cap - ob->arena_used >= bytes;
}

uint8_t *cb_outbox_reserve(cb_outbox *ob, size_t len)
{
    assert(ob->arena_used <= ob->arena_cap);
    if (ob->arena_cap - ob->arena_used < len) {
        return NULL;
    }
    uint8_t *p = ob->arena + ob->arena_used;
    ob->arena_used += len;
    return p;
}

void cb_outbox_unreserve(cb_outbox *ob, size_t len)
{
    assert(len <= ob->arena_used);
    ob->arena_used -= len;
}

int cb_outbox_push(cb_outbox *ob, const cb_action *a)
{
    if (ob->count + ob->popped == ob->action_cap) {
        return CB_ERR_FULL;
    }
    size_t tail = (ob->head + ob->count) % ob->action_cap;
    ob->actions[tail] = *a;
    ob->count++;
    return CB_ERR_OK;
}

uint8_t *cb_outbox_send(cb_outbox *ob, uint32_t peer, size_t len)
{
    if (ob->arena_cap - ob->arena_used < len) {
        return NULL;
    }
    uint8_t *p = ob->arena + ob->arena_used;
    if (ob->count > 0) {
        cb_action *last = &ob->actions[(ob->head + ob->count - 1) % ob->action_cap];
        if (last->kind == CB_ACTION_SEND && last->peer == peer &&
            last->data + last->data_len == p) {
            ob->arena_used += len;
            last->data_len += len;
            return p;
        }
    }
    if (ob->count + ob->popped == ob->action_cap) {
        return NULL;
    }
    cb_action a;
    memset(&a, 0, sizeof a);
    a.kind = CB_ACTION_SEND;
    a.peer = peer;
    a.data = p;
    a.data_len = len;
    ob->arena_used += len;
    int rc = cb_outbox_push(ob, &a);
    assert(rc == CB_ERR_OK); /* a free slot was checked above */
    (void)rc;
    return p;
}

size_t cb_outbox_drain(cb_outbox *ob, cb_action *out, size_t out_cap)
{
    size_t n = 0;
    while (n < out_cap && ob->count > 0) {
        out[n++] = ob->actions[ob->head];
        ob->head = (ob->head + 1) % ob->action_cap;
        ob->count--;
    }
    ob->popped = 0;
    if (ob->count == 0) {
        /*
         * Everything drained: no queued action references the arena any more, so the next
         * reserve starts again at its beginning (drained payloads stay readable until then).
         * Resetting here rather than in reserve keeps has_room exact when an action without
         * payload is pushed first, and keeps two reservations made while empty apart.
         */
        ob->arena_used = 0;
        ob->head = 0;
    }
    return n;
}

const cb_action *cb_outbox_pop(cb_outbox *ob)
{
    if (ob->count == 0) {
        /* The caller is done with the last action popped: as after a drain, start over. */
        ob->popped = 0;
        ob->arena_used = 0;
        ob->head = 0;
        return NULL;
    }
    const cb_action *a = &ob->actions[ob->head];
    ob->head = (ob->head + 1) % ob->action_cap;
    ob->count--;
    ob->popped = 1;
    return a;
}

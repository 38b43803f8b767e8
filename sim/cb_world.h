/*
 * cb_world.h: the hooks every world (cb_memworld, cb_sgworld) drives a workload through.
 *
 * A world owns the machines, the network and the clock; the hooks are the application: they
 * say what each client sends next and receive its outcomes. The same hooks (sim/cb_runner)
 * run a scenario on either world.
 *
 * Contract:
 *   - `next` is asked whenever client `client` has room (fewer than outstanding_max
 *     requests, or router operations, in flight) and its wake time has come. It returns 1
 *     with *op and *server filled (op's views need only last until the world submits it; with
 *     replication the server is ignored and the router picks replicas by key), or 0 with
 *     *wake_ns set to when to ask again (UINT64_MAX: after one of this client's completions,
 *     or never). A time not after now means now + 1 ns.
 *   - `complete` gets exactly one completion per operation (the router's, with replication).
 *     The value view is valid during the call. For GET, SET and DELETE that a server
 *     answered, `number` is the item version read or written (0: unversioned): the runner
 *     logs it with a digest of the value (docs/results.md, requests.version/value_digest).
 *   - `event` (optional) gets every machine event (`node` is the world node id; router events
 *     carry the client's node id) and, in worlds with a fault timeline, each fault applied.
 *   - `action` (optional) sees every action any machine emitted, in order (for traces).
 * Hooks run inside the world's steps: they must not call back into the world (nor, in
 * cb_sgworld, into SimGrid).
 */
#ifndef CB_WORLD_H
#define CB_WORLD_H

#include <stdint.h>

#include "cb_client.h"
#include "cb_outbox.h"

typedef struct cb_world_hooks {
    void *user;
    int (*next)(void *user, uint32_t client, uint64_t now_ns, cb_client_op *op, uint32_t *server,
                uint64_t *wake_ns);
    void (*complete)(void *user, uint32_t client, const cb_completion *c);
    void (*event)(void *user, uint32_t node, const cb_event *e, uint64_t now_ns);
    void (*action)(void *user, uint32_t node, const cb_action *a, uint64_t now_ns);
} cb_world_hooks;

#endif

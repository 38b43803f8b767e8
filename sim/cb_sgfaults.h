/*
 * cb_sgfaults.h: a plan's [faults] timeline as cb_sgworld fault entries.
 *
 * `cachebed run` turns the scenario's timeline (cb_fault, with node patterns such as
 * `client*`) into the driver's entries (cb_sgworld_fault, one node each):
 *   - crash, recover, link: one entry per node the pattern matches, servers first, then
 *     clients, each in index order;
 *   - partition: one entry whose groups give each node its group (1-based; 0 for nodes that
 *     no pattern names, which reach every node);
 *   - heal: one entry.
 * Entries keep the plan's order (time, then file order). Each carries its scenario line as a
 * label ("12s partition {client*} | {server0}"), which the events table shows as detail.
 * With the queue transport the broker is the world's last node (id S+C, cb_sgworld.h), and
 * `broker` (or a pattern matching it) names it.
 */
#ifndef CB_SGFAULTS_H
#define CB_SGFAULTS_H

#include <stddef.h>
#include <stdint.h>

#include "cb_scenario.h"
#include "cb_sgworld.h"

/* Bytes of one label, NUL included (cb_fault_format's bound). */
#define CB_SGFAULTS_LABEL_BYTES 256u

typedef struct cb_sgfaults {
    cb_sgworld_fault *items; /* count entries, pointing into groups and labels */
    size_t count;
    uint8_t *groups; /* node_count bytes per partition */
    char *labels;    /* CB_SGFAULTS_LABEL_BYTES per plan fault */
} cb_sgfaults;

/*
 * Fill *out (which need not be initialised) from plan's faults, for a world of
 * plan->servers.count servers and plan->clients.count clients (node ids as cb_sgworld's).
 * Returns CB_ERR_OK (release with cb_sgfaults_free; a plan without faults gives count 0 and
 * no allocation) or CB_ERR_NOMEM (nothing held).
 */
int cb_sgfaults_from_plan(const cb_plan *plan, cb_sgfaults *out);

/* Release what cb_sgfaults_from_plan allocated and zero *f. A zeroed struct is a no-op. */
void cb_sgfaults_free(cb_sgfaults *f);

#endif

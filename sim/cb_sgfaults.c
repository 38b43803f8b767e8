/* cb_sgfaults.c: a plan's fault timeline as cb_sgworld entries; see cb_sgfaults.h. */
#include "cb_sgfaults.h"

#include <stdlib.h>
#include <string.h>

#include "cb_err.h"

/* Node `id` of the world (servers 0..S-1, then clients, then the queue transport's broker)
 * matches `pattern`? */
static int sgfaults_matches(const cb_plan *plan, const char *pattern, uint32_t id)
{
    uint32_t servers = plan->servers.count;
    if (id == servers + plan->clients.count) {
        return cb_plan_node_matches(pattern, CB_NODE_BROKER, 0);
    }
    return id < servers ? cb_plan_node_matches(pattern, CB_NODE_SERVER, id)
                        : cb_plan_node_matches(pattern, CB_NODE_CLIENT, id - servers);
}

/* Entries plan fault `f` becomes. */
static size_t sgfaults_entries(const cb_plan *plan, const cb_fault *f, uint32_t nodes)
{
    if (f->kind == CB_FAULT_PARTITION || f->kind == CB_FAULT_HEAL) {
        return 1;
    }
    size_t n = 0;
    for (uint32_t id = 0; id < nodes; id++) {
        n += (size_t)sgfaults_matches(plan, f->patterns[0], id);
    }
    return n;
}

static void sgfaults_groups(const cb_plan *plan, const cb_fault *f, uint32_t nodes, uint8_t *out)
{
    for (uint32_t id = 0; id < nodes; id++) {
        out[id] = 0;
        for (uint32_t i = 0; i < f->pattern_count; i++) {
            if (sgfaults_matches(plan, f->patterns[i], id)) {
                out[id] = (uint8_t)(f->group[i] + 1u);
                break;
            }
        }
    }
}

/* The entry for node `id` (crash, recover, link) or for the whole network. */
static cb_sgworld_fault sgfaults_entry(const cb_fault *f, uint32_t id, const char *label)
{
    static const uint8_t kinds[] = {
        [CB_FAULT_CRASH] = CB_SGWORLD_FAULT_CRASH,
        [CB_FAULT_RECOVER] = CB_SGWORLD_FAULT_RECOVER,
        [CB_FAULT_PARTITION] = CB_SGWORLD_FAULT_PARTITION,
        [CB_FAULT_HEAL] = CB_SGWORLD_FAULT_HEAL,
        [CB_FAULT_LINK] = CB_SGWORLD_FAULT_LINK,
    };
    cb_sgworld_fault e;
    memset(&e, 0, sizeof e);
    e.at_ns = f->at_ns;
    e.kind = kinds[f->kind];
    e.node = id;
    e.label = label;
    /* The scenario's CB_FAULT_LINK_* bits are the driver's CB_SGWORLD_LINK_* bits. */
    e.link_set = f->link_set;
    e.latency_ns = f->latency_ns;
    e.jitter_ns = f->jitter_ns;
    e.bandwidth_bps = f->bandwidth_bps;
    e.loss_ppm = f->loss_ppm;
    return e;
}

_Static_assert((unsigned)CB_FAULT_LINK_LATENCY == (unsigned)CB_SGWORLD_LINK_LATENCY &&
                   (unsigned)CB_FAULT_LINK_JITTER == (unsigned)CB_SGWORLD_LINK_JITTER &&
                   (unsigned)CB_FAULT_LINK_BANDWIDTH == (unsigned)CB_SGWORLD_LINK_BANDWIDTH &&
                   (unsigned)CB_FAULT_LINK_LOSS == (unsigned)CB_SGWORLD_LINK_LOSS,
               "link bits are shared");

/* Append plan fault `f`'s entries; *next_group is where its partition groups go. */
static void sgfaults_add(const cb_plan *plan, const cb_fault *f, uint32_t nodes, cb_sgfaults *out,
                         uint8_t **next_group, const char *label)
{
    if (f->kind == CB_FAULT_PARTITION || f->kind == CB_FAULT_HEAL) {
        cb_sgworld_fault e = sgfaults_entry(f, CB_SGWORLD_NODE_NONE, label);
        if (f->kind == CB_FAULT_PARTITION) {
            sgfaults_groups(plan, f, nodes, *next_group);
            e.groups = *next_group;
            *next_group += nodes;
        }
        out->items[out->count++] = e;
        return;
    }
    for (uint32_t id = 0; id < nodes; id++) {
        if (sgfaults_matches(plan, f->patterns[0], id)) {
            out->items[out->count++] = sgfaults_entry(f, id, label);
        }
    }
}

int cb_sgfaults_from_plan(const cb_plan *plan, cb_sgfaults *out)
{
    memset(out, 0, sizeof *out);
    uint32_t nodes =
        plan->servers.count + plan->clients.count + (plan->transport.kind == CB_TRANSPORT_QUEUE);
    size_t entries = 0, partitions = 0;
    for (size_t i = 0; i < plan->fault_count; i++) {
        entries += sgfaults_entries(plan, &plan->faults[i], nodes);
        partitions += plan->faults[i].kind == CB_FAULT_PARTITION;
    }
    if (plan->fault_count == 0) {
        return CB_ERR_OK;
    }
    out->items = calloc(entries > 0 ? entries : 1, sizeof out->items[0]);
    out->groups = calloc(partitions > 0 ? partitions * nodes : 1, 1);
    out->labels = calloc(plan->fault_count, CB_SGFAULTS_LABEL_BYTES);
    if (out->items == NULL || out->groups == NULL || out->labels == NULL) {
        cb_sgfaults_free(out);
        return CB_ERR_NOMEM;
    }
    uint8_t *next_group = out->groups;
    for (size_t i = 0; i < plan->fault_count; i++) {
        char *label = out->labels + i * CB_SGFAULTS_LABEL_BYTES;
        cb_fault_format(&plan->faults[i], label, CB_SGFAULTS_LABEL_BYTES);
        sgfaults_add(plan, &plan->faults[i], nodes, out, &next_group, label);
    }
    return CB_ERR_OK;
}

void cb_sgfaults_free(cb_sgfaults *f)
{
    free(f->items);
    free(f->groups);
    free(f->labels);
    memset(f, 0, sizeof *f);
}

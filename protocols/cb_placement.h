/*
 * cb_placement.h: which servers hold a key — one interface over five placement strategies.
 *
 * A placement is built from an ordered node list (id, name, weight) and answers, for a key,
 * an ordered preference list of up to R distinct nodes: the primary first, then the nodes
 * each strategy would choose next. Nodes marked down stay in the list but are skipped, so
 * their keys go to their next choice and come back when the node is marked up. The client
 * and replication machines use the list for replicas and failover; docs/placement.md
 * describes each strategy, its replica order and its measured behaviour.
 *
 * Strategies (key hash: seeded XXH3-64 of the key, except ketama, which uses MD5):
 *   modulo      slot = hash mod (sum of weights), node = the one owning the slot; replicas
 *               are the next nodes in list order. Moves most keys on any change (baseline).
 *   ketama      libmemcached/twemproxy weighted ketama: 160 points per server scaled by
 *               weight, 4 points per MD5 of "name-i"; replicas walk the ring clockwise.
 *   rendezvous  weighted highest random weight (logarithmic method, integer-only);
 *               replicas are the next highest scores.
 *   jump        Lamping & Veach 2014 over the list positions; equal weights only; replicas
 *               by rehashing the key. Removing a node other than the last moves ~2/N keys.
 *   maglev      Eisenbud et al. 2016, weighted, prime table size; replicas are the next
 *               distinct nodes in the lookup table.
 *
 * Determinism: the answers are a pure function of the config (seed, sizes), the node list
 * in order and the up/down marks. Two placements built through different sequences of add
 * and remove that end with the same list and marks answer the same. No clock, no global
 * state; ketama's point count is the one use of floating point (see cb_place_ketama.c).
 *
 * Memory: everything is allocated by cb_placement_new(), sized for config->nodes_max nodes;
 * add, remove, mark and lookup never allocate. Lookup does not modify the placement, so
 * several threads may look up concurrently while nobody changes it.
 */
#ifndef CB_PLACEMENT_H
#define CB_PLACEMENT_H

#include "cb_alloc.h"
#include "cb_limits.h"

#include <stddef.h>
#include <stdint.h>

typedef enum cb_placement_strategy {
    CB_PLACEMENT_MODULO = 0,
    CB_PLACEMENT_KETAMA = 1,
    CB_PLACEMENT_RENDEZVOUS = 2,
    CB_PLACEMENT_JUMP = 3,
    CB_PLACEMENT_MAGLEV = 4,
} cb_placement_strategy;

#define CB_PLACEMENT_STRATEGY_COUNT 5

/* One node of the list given to cb_placement_new() or cb_placement_add(). */
typedef struct cb_placement_node {
    uint32_t id;      /* the caller's node id; unique in the list */
    uint32_t weight;  /* 1 .. CB_PLACEMENT_WEIGHT_MAX; jump needs all weights equal */
    const char *name; /* NUL-terminated, unique, <= CB_PLACEMENT_NAME_BYTES_MAX bytes; copied.
                       * "host:port" as the client names the server (ketama hashes it into
                       * its points). NULL means the decimal id. */
} cb_placement_node;

typedef struct cb_placement_config {
    uint64_t seed;          /* key and node hash seed (all strategies but ketama) */
    uint32_t nodes_max;     /* capacity: the list never grows beyond it; 0 = 2 * initial count,
                             * at least 16 */
    uint32_t ketama_points; /* points per server at equal weights, multiple of 4 */
    uint32_t ketama_default_port;   /* a name ending ":<this port>" hashes without it ("host-i",
                                     * as libmemcached); 0: never strip (twemproxy) */
    uint32_t ketama_integer_points; /* 0: libmemcached's float point count (compatible; some N
                                     * give 156 points, and adding a node can move every
                                     * server's count by 4); 1: exact integer share */
    uint32_t maglev_table_size;     /* prime M, nodes_max <= M <= CB_PLACEMENT_MAGLEV_TABLE_MAX */
} cb_placement_config;

typedef struct cb_placement cb_placement;

/* Fill `config` with the defaults: seed 0, nodes_max 0, 160 ketama points, default port
 * 11211, maglev table 65537. */
void cb_placement_config_default(cb_placement_config *config);

/* "modulo", "ketama", "rendezvous", "jump", "maglev"; "?" for a value not in the enum. */
const char *cb_placement_strategy_name(cb_placement_strategy strategy);

/* Parse a strategy name (as above). Returns 0, or CB_ERR_INVALID for an unknown name. */
int cb_placement_strategy_from_name(const char *name, cb_placement_strategy *out);

/*
 * Build a placement over `nodes[0 .. node_count)`, all marked up. `alloc` NULL means the
 * default allocator. On success stores the placement in *out and returns 0. Errors:
 * CB_ERR_INVALID (unknown strategy, node_count > nodes_max or > CB_PLACEMENT_NODES_MAX,
 * duplicate id or name, weight 0 or over the maximum, unequal weights for jump, ketama_points
 * not a positive multiple of 4 or over CB_PLACEMENT_KETAMA_POINTS_MAX, maglev_table_size not
 * prime or out of range), CB_ERR_TOO_LARGE (a name over CB_PLACEMENT_NAME_BYTES_MAX),
 * CB_ERR_NOMEM. On error *out is untouched and nothing is leaked. node_count may be 0.
 */
int cb_placement_new(cb_placement_strategy strategy, const cb_placement_config *config,
                     const cb_placement_node *nodes, size_t node_count, const cb_alloc *alloc,
                     cb_placement **out);

/* Free the placement and everything it owns. NULL is a no-op. */
void cb_placement_del(cb_placement *p);

/*
 * The preference list for a key: writes up to min(out_cap, CB_PLACEMENT_LIST_MAX) distinct
 * node ids to `out_nodes`, primary first, skipping nodes marked down, and returns how many
 * (0 when no node is up or out_cap is 0). Never allocates; does not modify `p`.
 * Errors: CB_ERR_KEY_TOO_LONG (key_len > CB_KEY_BYTES_MAX).
 */
int cb_placement_lookup(const cb_placement *p, const uint8_t *key, size_t key_len,
                        uint32_t *out_nodes, size_t out_cap);

/*
 * Append a node (marked up) to the end of the list and rebuild. Returns 0, CB_ERR_FULL (the
 * list holds nodes_max nodes), or the node errors of cb_placement_new(); on error the
 * placement is unchanged.
 */
int cb_placement_add(cb_placement *p, const cb_placement_node *node);

/*
 * Remove node `id`: the last node of the list takes its position (so jump only renumbers one
 * bucket), then rebuild. Returns 0 or CB_ERR_NOT_FOUND.
 */
int cb_placement_remove(cb_placement *p, uint32_t id);

/* Mark node `id` down (skipped by lookup) or up again; marking twice is harmless. No rebuild:
 * only keys whose list included the node change. Return 0 or CB_ERR_NOT_FOUND. */
int cb_placement_mark_down(cb_placement *p, uint32_t id);
int cb_placement_mark_up(cb_placement *p, uint32_t id);

/* 1 if node `id` is up, 0 if down, CB_ERR_NOT_FOUND if not in the list. */
int cb_placement_is_up(const cb_placement *p, uint32_t id);

/* Nodes in the list, and those of them marked up. */
size_t cb_placement_node_count(const cb_placement *p);
size_t cb_placement_up_count(const cb_placement *p);

/* The node list, in order: the id of position `pos` (< node_count). */
uint32_t cb_placement_node_id_at(const cb_placement *p, size_t pos);

cb_placement_strategy cb_placement_strategy_of(const cb_placement *p);

#endif

/* cb_sgsetup.c: SimGrid options and platform for cb_sgworld; see cb_sgsetup.h. */
#include "cb_sgsetup.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <simgrid/engine.h>
#include <simgrid/host.h>
#include <xbt/log.h>

#include "cb_err.h"
#include "cb_sgshim.h"

/* SimGrid runs one simulation per process; this is the process-wide guard. */
static int sgsetup_used;

/* Beyond about 32k actors the stack guard pages exhaust vm.max_map_count
 * (SIMGRID-NOTES.md §5); one actor per node (cb_sgworld), plus a master. */
#define SGSETUP_GUARDLESS_NODES 30000u

int cb_sgsetup_used(void)
{
    return sgsetup_used;
}

uint64_t cb_sgsetup_now_ns(void)
{
    return (uint64_t)llround(simgrid_get_clock() * 1e9);
}

double cb_sgsetup_seconds(uint64_t ns)
{
    return (double)ns / 1e9;
}

/* Whether the fault timeline changes a link's latency during the run. SimGrid 3.32's lazy
 * network updates (the default) mishandle a latency change under a message still in its
 * latency phase: the message stalls until the next change to the link (seen in
 * tests/test_cb_sgfaults.c). Full updates do not; they cost more per message, so only runs
 * that need them pay for them. */
static int sgsetup_changes_latency(const cb_sgworld_config *cfg)
{
    for (size_t i = 0; i < cfg->fault_count; i++) {
        if (cfg->faults[i].kind == CB_SGWORLD_FAULT_LINK &&
            (cfg->faults[i].link_set & CB_SGWORLD_LINK_LATENCY)) {
            return 1;
        }
    }
    return 0;
}

static void sgsetup_init_simgrid(const cb_sgworld_config *cfg, uint32_t nodes)
{
    char factory[96];
    char thres[96];
    char thres_log[96];
    const char *f = cfg->context_factory != NULL ? cfg->context_factory : "raw";
    const char *t = cfg->log_threshold != NULL ? cfg->log_threshold : "critical";
    snprintf(factory, sizeof factory, "--cfg=contexts/factory:%s", f);
    snprintf(thres, sizeof thres, "--log=root.thres:%s", t);
    snprintf(thres_log, sizeof thres_log, "root.threshold:%s", t);
    /* Before simgrid_init too, so its own "Configuration change" lines obey it. */
    xbt_log_control_set(thres_log);
    char arg0[] = "cachebed-sim";
    char model[] = "--cfg=network/model:CM02";     /* LV08 multiplies latency by 13 */
    char gamma[] = "--cfg=network/TCP-gamma:0";    /* no TCP window cap on flows */
    char cross[] = "--cfg=network/crosstraffic:0"; /* no 5% reverse ACK flow */
    char guard[] = "--cfg=contexts/guard-size:0";
    char full[] = "--cfg=network/optim:Full";
    char *argv[] = {arg0, model, gamma, cross, factory, thres, NULL, NULL, NULL};
    int argc = 6;
    if (nodes > SGSETUP_GUARDLESS_NODES) {
        argv[argc++] = guard;
    }
    if (sgsetup_changes_latency(cfg)) {
        argv[argc++] = full;
    }
    simgrid_init(&argc, argv);
}

/* The extra nodes after the clients (cb_sgworld.h): the queue transport's broker, then the
 * warm resyncer. */
static uint32_t sgsetup_has_broker(const cb_sgworld_config *cfg)
{
    return cfg->transport == CB_SGWORLD_QUEUE;
}

static uint32_t sgsetup_has_resync(const cb_sgworld_config *cfg)
{
    return cfg->resync == CB_RESYNC_WARM;
}

/* Node i's host name in a platform with named hosts: server<i>, client<j>, then broker
 * and resync. */
static void sgsetup_node_name(const cb_sgworld_config *cfg, uint32_t i, char *out, size_t cap)
{
    uint32_t base = cfg->server_count + cfg->client_count;
    if (i < cfg->server_count) {
        snprintf(out, cap, "server%u", i);
    } else if (i < base) {
        snprintf(out, cap, "client%u", i - cfg->server_count);
    } else {
        snprintf(out, cap, "%s", i == base && sgsetup_has_broker(cfg) ? "broker" : "resync");
    }
}

/* What the nodes are, for an error message: "servers, clients[, broker][, resyncer]". */
static const char *sgsetup_node_kinds(const cb_sgworld_config *cfg)
{
    static const char *const kinds[] = {"servers, clients", "servers, clients, broker",
                                        "servers, clients, resyncer",
                                        "servers, clients, broker, resyncer"};
    return kinds[sgsetup_has_broker(cfg) + 2u * sgsetup_has_resync(cfg)];
}

/*
 * Map the nodes onto the loaded platform's hosts. If it has a host named "server0", every
 * node takes the host of its name (server<i>, client<j>; the queue transport's broker
 * "broker", which must exist; the resyncer "resync", or client0's host when there is none).
 * Else the nodes take the hosts in name order (sg_host_list is sorted by name): servers,
 * then clients, then the broker, then the resyncer.
 */
static int sgsetup_map_hosts(const cb_sgworld_config *cfg, uint32_t nodes, sg_host_t *hosts,
                             char *err, size_t cap)
{
    char name[32];
    if (sg_host_by_name("server0") != NULL) {
        for (uint32_t i = 0; i < nodes; i++) {
            sgsetup_node_name(cfg, i, name, sizeof name);
            hosts[i] = sg_host_by_name(name);
            if (hosts[i] == NULL && strcmp(name, "resync") == 0) {
                hosts[i] = hosts[cfg->server_count]; /* no "resync" host: client0's */
            }
            if (hosts[i] == NULL) {
                snprintf(err, cap, "it names its hosts server0.., but has no host '%s'", name);
                return -1;
            }
        }
        return 0;
    }
    size_t count = sg_host_count();
    if (count < nodes) {
        snprintf(err, cap, "it has %zu hosts, the scenario needs %u (%s)", count, nodes,
                 sgsetup_node_kinds(cfg));
        return -1;
    }
    sg_host_t *all = sg_host_list();
    for (uint32_t i = 0; i < nodes; i++) {
        hosts[i] = all[i];
    }
    free(all);
    return 0;
}

/* Load cfg->platform and map the nodes onto it (messages on stderr). */
static int sgsetup_user_platform(const cb_sgworld_config *cfg, uint32_t nodes, sg_host_t *hosts)
{
    char err[512];
    FILE *f = fopen(cfg->platform, "r");
    if (f == NULL) {
        fprintf(stderr, "cachebed: platform %s: %s\n", cfg->platform, strerror(errno));
        return CB_ERR_INVALID;
    }
    fclose(f);
    if (cb_sgshim_load_platform(cfg->platform, err, sizeof err) != 0 ||
        sgsetup_map_hosts(cfg, nodes, hosts, err, sizeof err) != 0) {
        fprintf(stderr, "cachebed: platform %s: %s\n", cfg->platform, err);
        return CB_ERR_INVALID;
    }
    /* Clients (and the resyncer) talk to servers: every such pair needs a route. With the
     * queue transport every node talks to the broker only (the resyncer too). */
    uint32_t base = cfg->server_count + cfg->client_count;
    int bad = sgsetup_has_broker(cfg)
                  ? cb_sgshim_check_routes(hosts, nodes, hosts + base, 1, err, sizeof err)
                  : cb_sgshim_check_routes(hosts + cfg->server_count, nodes - cfg->server_count,
                                           hosts, cfg->server_count, err, sizeof err);
    if (bad != 0) {
        fprintf(stderr, "cachebed: platform %s: %s\n", cfg->platform, err);
        return CB_ERR_INVALID;
    }
    return CB_ERR_OK;
}

int cb_sgsetup_begin(const cb_sgworld_config *cfg, sg_host_t *hosts_out)
{
    if (sgsetup_used) {
        fprintf(stderr, "cachebed: SimGrid runs one simulation per process and cannot be reset; "
                        "run each simulation in its own process (fork a child per run)\n");
        return CB_ERR_INVALID;
    }
    sgsetup_used = 1;
    /* The queue transport's broker and resync = warm's resyncer are one more node each,
     * after the clients, in that order (cb_sgworld.h). */
    uint32_t nodes =
        cfg->server_count + cfg->client_count + sgsetup_has_broker(cfg) + sgsetup_has_resync(cfg);
    sgsetup_init_simgrid(cfg, nodes);
    if (cfg->platform != NULL) {
        return sgsetup_user_platform(cfg, nodes, hosts_out);
    }
    /* One link per host on each side of the star: half the one-way latency each. */
    double link_latency_s = cb_sgsetup_seconds(cfg->latency_ns) / 2.0;
    double link_Bps = (double)cfg->bandwidth_bps / 8.0;
    if (cb_sgshim_build_star(nodes, link_latency_s, link_Bps, hosts_out) != 0) {
        return CB_ERR_INVALID;
    }
    return CB_ERR_OK;
}

/* cb_sgsetup.c: SimGrid options and platform for cb_sgworld; see cb_sgsetup.h. */
#include "cb_sgsetup.h"

#include <math.h>
#include <stdio.h>

#include <simgrid/engine.h>
#include <xbt/log.h>

#include "cb_err.h"
#include "cb_sgshim.h"

/* SimGrid runs one simulation per process; this is the process-wide guard. */
static int sgsetup_used;

/* Beyond about 32k actors the stack guard pages exhaust vm.max_map_count
 * (SIMGRID-NOTES.md §5); one actor per node (cb_sgworld), plus a master and a controller. */
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

int cb_sgsetup_begin(const cb_sgworld_config *cfg, sg_host_t *hosts_out)
{
    if (sgsetup_used) {
        fprintf(stderr, "cachebed: SimGrid runs one simulation per process and cannot be reset; "
                        "run each simulation in its own process (fork a child per run)\n");
        return CB_ERR_INVALID;
    }
    sgsetup_used = 1;
    uint32_t nodes = cfg->server_count + cfg->client_count;
    sgsetup_init_simgrid(cfg, nodes);
    /* One link per host on each side of the star: half the one-way latency each. */
    double link_latency_s = cb_sgsetup_seconds(cfg->latency_ns) / 2.0;
    double link_Bps = (double)cfg->bandwidth_bps / 8.0;
    if (cb_sgshim_build_star(nodes, link_latency_s, link_Bps, hosts_out) != 0) {
        return CB_ERR_INVALID;
    }
    return CB_ERR_OK;
}

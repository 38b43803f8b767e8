/*
 * cb_sgsetup.h: SimGrid initialisation and the star platform for a cb_sgworld_config.
 *
 * Shared by cb_sgworld.c and the bare-SimGrid half of `cachebed bench sim`, so that the
 * benchmark's baseline runs on exactly the model and platform the driver uses. It owns the
 * one-simulation-per-process guard: SimGrid cannot reset its clock or build a second
 * platform (SIMGRID-NOTES.md §6), so the second cb_sgsetup_begin in a process fails.
 */
#ifndef CB_SGSETUP_H
#define CB_SGSETUP_H

#include <stdint.h>

#include <simgrid/forward.h>

#include "cb_sgworld.h"

/*
 * Initialise SimGrid with our own argv — network/model:CM02, network/TCP-gamma:0,
 * network/crosstraffic:0, the config's context factory and log threshold — and build the
 * star of cb_sgshim_build_star with server_count + client_count hosts (+1 for the queue
 * transport's broker, +1 for the resyncer with resync = warm), each link with
 * latency latency_ns / 2 and bandwidth bandwidth_bps / 8 bytes/s. hosts_out has room for
 * one host per node. Returns CB_ERR_OK, or CB_ERR_INVALID (message on stderr) when
 * SimGrid was already initialised in this process or the platform could not be built.
 */
int cb_sgsetup_begin(const cb_sgworld_config *cfg, sg_host_t *hosts_out);

/* 1 once cb_sgsetup_begin was called in this process (whatever it returned), else 0. */
int cb_sgsetup_used(void);

/* SimGrid's clock in nanoseconds, rounded to the nearest (simgrid_get_clock() is in
 * seconds; a double holds nanoseconds exactly up to about 10^7 simulated seconds). */
uint64_t cb_sgsetup_now_ns(void);

/* Nanoseconds to SimGrid seconds. */
double cb_sgsetup_seconds(uint64_t ns);

#endif

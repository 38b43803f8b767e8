/*
 * test_cb_sgplatform.c: cb_sgworld on a user's SimGrid platform XML (cfg.platform).
 *
 * - the bundled scenarios/platforms/two_racks.xml (hosts named server0..3, client0..3;
 *   140 us one way between the racks, the 1 Gbit/s uplink the bottleneck): nodes map onto
 *   the hosts of their names, and an unloaded GET takes 2 x 140 us + transmission;
 * - the queue transport on two_racks.xml: the broker maps onto host `broker` (in the core
 *   zone, 40 us from the servers, 140 us from the clients), so a GET takes 2 x (140 + 40)
 *   us + two service times + transmission; with warm resync too, the resyncer takes host
 *   `resync`, or client0's when the file has none;
 * - a platform whose hosts have other names: nodes take the hosts in name order, servers
 *   first, then the broker, then the resyncer (seen in the latency: each host has its own
 *   link latency);
 * - refusals, each before any message: too few hosts, a missing file, a malformed file, a
 *   client with no route to a server, a link latency fault (the star's links are gone).
 * Every simulation runs in a forked child (one SimGrid run per process).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cb_err.h"
#include "cb_sgworld.h"
#include "cb_test.h"
#include "cb_test_fork.h"
#include "cb_test_repl.h"

#define PL_GETS       21u
#define PL_SERVICE_NS 10000u /* the broker's time per delivery (the scenarios' default) */

typedef struct pl_arg {
    const char *path;
    uint32_t servers, clients;
    int latency_fault;
    int queue;  /* the queue transport */
    int resync; /* warm resync (with a router, R = 1) */
} pl_arg;

typedef struct pl_result {
    int rc;
    uint32_t done;
    uint64_t latency_ns[PL_GETS];
    uint64_t request_bytes, reply_bytes;
    cb_sgworld_stats stats;
} pl_result;

static const uint8_t pl_key[] = "p";
static uint32_t pl_client0; /* client 0's node id in the child */

/* Client 0 only: PL_GETS GETs of a missing key to server 0, one at a time. */
static int pl_next(void *user, uint32_t client, uint64_t now_ns, cb_client_op *op,
                   uint32_t *server, uint64_t *wake_ns)
{
    pl_result *r = user;
    static uint32_t submitted;
    (void)now_ns;
    if (client != 0 || submitted >= PL_GETS) {
        *wake_ns = UINT64_MAX;
        return 0;
    }
    (void)r;
    op->op = CB_OP_GET;
    op->key = pl_key;
    op->key_len = 1;
    op->user_data = submitted++;
    *server = 0;
    return 1;
}

static void pl_complete(void *user, uint32_t client, const cb_completion *c)
{
    pl_result *r = user;
    (void)client;
    if (c->user_data < PL_GETS && c->outcome == CB_OUTCOME_MISS) {
        r->latency_ns[c->user_data] = c->complete_ns - c->issue_ns;
        r->done++;
    }
}

static void pl_action(void *user, uint32_t node, const cb_action *a, uint64_t now_ns)
{
    pl_result *r = user;
    (void)now_ns;
    if (a->kind == CB_ACTION_SEND && node <= pl_client0) { /* a server's reply, client0's request */
        *(node < pl_client0 ? &r->reply_bytes : &r->request_bytes) = a->data_len;
    }
}

static void pl_child(const void *varg, void *result)
{
    const pl_arg *arg = varg;
    pl_result *r = result;
    cb_sgworld_config cfg = cb_sgworld_config_default();
    cfg.context_factory = CB_TEST_SG_FACTORY;
    cfg.server_count = arg->servers;
    cfg.client_count = arg->clients;
    cfg.client.outstanding_max = 1;
    cfg.platform = arg->path;
    pl_client0 = arg->servers;
    cb_router_config rc = cb_router_config_default();
    rc.replicas = 1;
    cb_placement *p = arg->resync ? cb_test_placement(arg->servers) : NULL;
    if (arg->queue) {
        cfg.transport = CB_SGWORLD_QUEUE;
        cfg.broker = cb_broker_config_default();
        cfg.broker.service_ns = PL_SERVICE_NS;
    }
    if (arg->resync) {
        cfg.router = &rc;
        cfg.placement = p;
        cfg.resync = CB_RESYNC_WARM;
    }
    cb_sgworld_fault f = {.at_ns = 1000000,
                          .kind = CB_SGWORLD_FAULT_LINK,
                          .node = 0,
                          .link_set = CB_SGWORLD_LINK_LATENCY,
                          .latency_ns = 1000000};
    if (arg->latency_fault) {
        cfg.faults = &f;
        cfg.fault_count = 1;
    }
    cb_world_hooks hooks = {r, pl_next, pl_complete, NULL, pl_action};
    r->rc = arg->resync && p == NULL ? CB_ERR_NOMEM
                                     : cb_sgworld_run(&cfg, &hooks, UINT64_MAX, &r->stats);
    cb_placement_del(p);
}

static pl_result pl_run_with(const char *path, uint32_t servers, uint32_t clients,
                             int latency_fault, int queue, int resync)
{
    pl_arg arg = {path, servers, clients, latency_fault, queue, resync};
    pl_result r;
    CU_ASSERT_EQUAL_FATAL(cb_test_fork(pl_child, &arg, &r, sizeof r), 0);
    return r;
}

static pl_result pl_run(const char *path, uint32_t servers, uint32_t clients, int latency_fault)
{
    return pl_run_with(path, servers, clients, latency_fault, 0, 0);
}

/* 2 x one-way + transmission at the bottleneck (wire bytes: frames + 78 B each). */
static uint64_t pl_expect(const pl_result *r, uint64_t one_way_ns, uint64_t ns_per_byte)
{
    return 2 * one_way_ns + (r->request_bytes + 78 + r->reply_bytes + 78) * ns_per_byte;
}

static int pl_near(uint64_t got, uint64_t want)
{
    uint64_t d = got > want ? got - want : want - got;
    return d <= 2;
}

static void test_two_racks_maps_by_name(void)
{
    pl_result r = pl_run(CB_SOURCE_DIR "/scenarios/platforms/two_racks.xml", 4, 4, 0);
    CU_ASSERT_EQUAL_FATAL(r.rc, CB_ERR_OK);
    CU_ASSERT_EQUAL(r.done, PL_GETS);
    /* The first GET also sets up the connection; the others: 2 x 140 us + bytes at the
     * 1 Gbit/s uplink (8 ns/B). */
    uint64_t want = pl_expect(&r, 140000, 8);
    printf("\n    two_racks: GET %llu ns (2 x 140 us + %llu B x 8 ns = %llu), first %llu ns ",
           (unsigned long long)r.latency_ns[1],
           (unsigned long long)(r.request_bytes + r.reply_bytes + 156), (unsigned long long)want,
           (unsigned long long)r.latency_ns[0]);
    for (uint32_t i = 1; i < PL_GETS; i++) {
        CU_ASSERT(pl_near(r.latency_ns[i], want));
    }
    CU_ASSERT(r.latency_ns[0] > want + 2 * 140000);
}

/*
 * Queue transport: 2 x (one way client <-> broker + broker <-> server) + two service times
 * + transmission, each leg at its bottleneck, in tenths of ns per byte (as in
 * test_cb_sgqueue.c): on the client's leg the client's ACK of the previous reply (28 B),
 * the request's envelope (28 B + frame) and the reply's; on the server's leg the request's
 * envelope, then the server's ACK coalesced with its reply's envelope; each message with
 * 78 B of TCP/IP and Ethernet headers.
 */
static uint64_t pl_expect_queue(const pl_result *r, uint64_t client_broker_ns,
                                uint64_t broker_server_ns, uint64_t client_tenths,
                                uint64_t server_tenths)
{
    uint64_t req = 28 + r->request_bytes, rep = 28 + r->reply_bytes, ack = 28, pkt = 78;
    uint64_t client_leg = (ack + pkt) + (req + pkt) + (rep + pkt);
    uint64_t server_leg = (req + pkt) + (ack + rep + pkt);
    return 2 * (client_broker_ns + broker_server_ns) + 2 * PL_SERVICE_NS +
           (client_leg * client_tenths + server_leg * server_tenths) / 10;
}

/* Within 1%, and in fact to SimGrid's 1 ns precision. */
static int pl_near_queue(uint64_t got, uint64_t want)
{
    uint64_t d = got > want ? got - want : want - got;
    return d * 100 <= want && d <= 4;
}

static void test_two_racks_queue_broker_host(void)
{
    const char *path = CB_SOURCE_DIR "/scenarios/platforms/two_racks.xml";
    for (int resync = 0; resync < 2; resync++) {
        pl_result r = pl_run_with(path, 4, 4, 0, 1, resync);
        CU_ASSERT_EQUAL_FATAL(r.rc, CB_ERR_OK);
        CU_ASSERT_EQUAL(r.done, PL_GETS);
        /* client0 -> broker 140 us (through the 1 Gbit/s uplink, 8 ns/B), broker -> server
         * 40 us (10 Gbit/s, 0.8 ns/B). */
        uint64_t want = pl_expect_queue(&r, 140000, 40000, 80, 8);
        printf("\n    two_racks queue%s: GET %llu ns (2 x (140 + 40) us + 2 x 10 us + tx = "
               "%llu) ",
               resync ? " + warm resync" : "", (unsigned long long)r.latency_ns[1],
               (unsigned long long)want);
        for (uint32_t i = 1; i < PL_GETS; i++) {
            CU_ASSERT(pl_near_queue(r.latency_ns[i], want));
        }
        CU_ASSERT(r.stats.broker.delivered >= 2 * PL_GETS);
    }
}

/* Write a platform of `n` hosts named "x<letter>" in a Full zone, each with its own link of
 * latency (i + 1) x 100 us, and a route between every pair: one-way a->b = lat a + lat b. */
static void pl_write_hosts(const char *path, uint32_t n)
{
    FILE *f = fopen(path, "w");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    fprintf(f, "<?xml version='1.0'?>\n<!DOCTYPE platform SYSTEM "
               "\"https://simgrid.org/simgrid.dtd\">\n<platform version=\"4.1\">\n"
               "<zone id=\"z\" routing=\"Full\">\n");
    /* Created in reverse name order, so a creation-order mapping would differ. */
    for (uint32_t i = n; i-- > 0;) {
        fprintf(f, "<host id=\"x%c\" speed=\"1Gf\"/>\n", 'a' + i);
        fprintf(f, "<link id=\"l%c\" bandwidth=\"1Gbps\" latency=\"%uus\" "
                   "sharing_policy=\"SPLITDUPLEX\"/>\n", 'a' + i, (i + 1) * 100);
    }
    for (uint32_t i = 0; i < n; i++) {
        for (uint32_t j = i + 1; j < n; j++) {
            fprintf(f, "<route src=\"x%c\" dst=\"x%c\"><link_ctn id=\"l%c\" direction=\"UP\"/>"
                       "<link_ctn id=\"l%c\" direction=\"DOWN\"/></route>\n",
                    'a' + i, 'a' + j, 'a' + i, 'a' + j);
        }
    }
    fprintf(f, "</zone>\n</platform>\n");
    fclose(f);
}

static void test_hosts_in_name_order(void)
{
    char path[] = "/tmp/cb_sgplatform_XXXXXX";
    int fd = mkstemp(path);
    CU_ASSERT_FATAL(fd >= 0);
    close(fd);
    pl_write_hosts(path, 4);
    /* 2 servers, 2 clients: server0 = xa (100 us), client0 = xc (300 us). */
    pl_result r = pl_run(path, 2, 2, 0);
    CU_ASSERT_EQUAL_FATAL(r.rc, CB_ERR_OK);
    CU_ASSERT_EQUAL(r.done, PL_GETS);
    uint64_t want = pl_expect(&r, 400000, 8);
    printf("\n    name order: GET %llu ns (server0 on xa, client0 on xc: 2 x 400 us + tx = %llu) ",
           (unsigned long long)r.latency_ns[1], (unsigned long long)want);
    CU_ASSERT(pl_near(r.latency_ns[1], want));
    /* 3 servers, 2 clients need 5 hosts: refused, before any message. */
    r = pl_run(path, 3, 2, 0);
    CU_ASSERT_EQUAL(r.rc, CB_ERR_INVALID);
    CU_ASSERT_EQUAL(r.stats.messages_sent, 0);
    /* Queue: 2 servers (xa, xb), 1 client (xc), the broker on xd: client -> broker
     * 300 + 400 us, broker -> server0 400 + 100 us, every link 1 Gbit/s. */
    r = pl_run_with(path, 2, 1, 0, 1, 0);
    CU_ASSERT_EQUAL_FATAL(r.rc, CB_ERR_OK);
    want = pl_expect_queue(&r, 700000, 500000, 80, 80);
    printf("\n    name order, queue: GET %llu ns (broker on xd: 2 x (700 + 500) us + 2 x 10 us "
           "+ tx = %llu) ",
           (unsigned long long)r.latency_ns[1], (unsigned long long)want);
    CU_ASSERT(pl_near_queue(r.latency_ns[1], want));
    /* ... and warm resync: the resyncer needs a fifth host. */
    r = pl_run_with(path, 2, 1, 0, 1, 1);
    CU_ASSERT_EQUAL(r.rc, CB_ERR_INVALID);
    CU_ASSERT_EQUAL(r.stats.messages_sent, 0);
    pl_write_hosts(path, 5);
    r = pl_run_with(path, 2, 1, 0, 1, 1);
    CU_ASSERT_EQUAL(r.rc, CB_ERR_OK);
    CU_ASSERT_EQUAL(r.done, PL_GETS);
    unlink(path);
}

static void test_bad_platforms_refused(void)
{
    char path[] = "/tmp/cb_sgplatform_XXXXXX";
    int fd = mkstemp(path);
    CU_ASSERT_FATAL(fd >= 0);
    close(fd);
    pl_result r = pl_run("/nonexistent/platform.xml", 1, 1, 0);
    CU_ASSERT_EQUAL(r.rc, CB_ERR_INVALID);
    FILE *f = fopen(path, "w");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    fprintf(f, "<?xml version='1.0'?>\n<!DOCTYPE platform SYSTEM \"https://simgrid.org/simgrid.dtd\">\n"
               "<platform version=\"4.1\"><zone id=\"z\" routing=\"Full\">"
               "<host id=\"a\" speed=\"1Gf\"/><bogus/></zone></platform>\n");
    fclose(f);
    r = pl_run(path, 1, 1, 0);
    CU_ASSERT_EQUAL(r.rc, CB_ERR_INVALID);
    /* Two racks whose switches are not attached to their racks' stars: no route from a to b.
     * SimGrid throws for that (std::out_of_range) and the shim catches it. (In a Full zone
     * with a route missing, SimGrid 3.32 dereferences it instead: that cannot be checked,
     * see docs/scenarios.md.) */
    f = fopen(path, "w");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    fprintf(f, "<?xml version='1.0'?>\n<!DOCTYPE platform SYSTEM \"https://simgrid.org/simgrid.dtd\">\n"
               "<platform version=\"4.1\"><zone id=\"w\" routing=\"Full\">\n");
    for (char z = 'a'; z <= 'b'; z++) {
        fprintf(f, "<zone id=\"r%c\" routing=\"Cluster\"><host id=\"%c\" speed=\"1Gf\"/>"
                   "<router id=\"s%c\"/><link id=\"l%c\" bandwidth=\"1Gbps\" latency=\"1us\" "
                   "sharing_policy=\"SPLITDUPLEX\"/><host_link id=\"%c\" up=\"l%c_UP\" "
                   "down=\"l%c_DOWN\"/></zone>\n", z, z, z, z, z, z, z);
    }
    fprintf(f, "<link id=\"u\" bandwidth=\"1Gbps\" latency=\"1us\"/><zoneRoute src=\"ra\" "
               "dst=\"rb\" gw_src=\"sa\" gw_dst=\"sb\"><link_ctn id=\"u\"/></zoneRoute>"
               "</zone></platform>\n");
    fclose(f);
    r = pl_run(path, 1, 1, 0);
    CU_ASSERT_EQUAL(r.rc, CB_ERR_INVALID);
    unlink(path);
    /* A link latency change has no star link to change. */
    r = pl_run(CB_SOURCE_DIR "/scenarios/platforms/two_racks.xml", 4, 4, 1);
    CU_ASSERT_EQUAL(r.rc, CB_ERR_INVALID);
}

static const cb_test_case tests[] = {
    {"two_racks_maps_by_name", test_two_racks_maps_by_name},
    {"two_racks_queue_broker_host", test_two_racks_queue_broker_host},
    {"hosts_in_name_order", test_hosts_in_name_order},
    {"bad_platforms_refused", test_bad_platforms_refused},
    {NULL, NULL},
};

CB_TEST_MAIN("cb_sgplatform", tests)

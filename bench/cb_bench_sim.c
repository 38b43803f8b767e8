/*
 * cb_bench_sim.c: `cachebed bench sim` — the SimGrid driver's speed against bare SimGrid.
 *
 * Two children, one simulation each (SimGrid runs one per process):
 *   - driver: cb_sgworld_run with C clients and S servers over TCP; client c sends all its
 *     requests to server c % S, one at a time, alternating SET and GET of a 16-byte key (16
 *     keys per client, cycling) with a 100-byte value (so every GET hits);
 *   - bare: the same platform and options (cb_sgsetup_begin), one actor per client and per
 *     server, the same number of request/reply ping-pongs with the same simulated sizes
 *     (frame bytes + TCP/IP/Ethernet headers), and no protocol machine.
 * Each child reports wall seconds, simulated seconds and its peak RSS; the figure to drive
 * up is the driver's simulated requests per wall second over the bare rate.
 */
#include "cb_bench.h"
#include "cb_bench_child.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <simgrid/actor.h>
#include <simgrid/comm.h>
#include <simgrid/engine.h>
#include <simgrid/mailbox.h>

#include "cb_err.h"
#include "cb_sgsetup.h"
#include "cb_sgshim.h"
#include "cb_sgworld.h"

#define BENCH_KEY_BYTES   16u
#define BENCH_VALUE_BYTES 100u
#define BENCH_HEADER      40u /* cb_frame header (docs/protocol.md §2) */
/* Keys cycle, so the stores stay small and the run measures the driver, not store growth. */
#define BENCH_KEYS_PER_CLIENT 16u
#define BENCH_CASES_MAX       8u

typedef struct bench_opts {
    uint32_t clients;
    uint32_t case_clients[BENCH_CASES_MAX]; /* --clients 1000,10000: one case each */
    uint32_t case_count;
    uint32_t servers;
    uint64_t requests;
    uint64_t per_client;
    uint64_t seed;
    const char *factory;
    const char *only;  /* "driver" or "bare" to run one half (for profiling), else NULL */
    int bare_detached; /* --bare detached: the old detached-comm baseline */
    uint32_t rounds;   /* --rounds R: R runs of each, alternating which goes first */
} bench_opts;

typedef struct bench_result {
    int rc;
    double wall_s;
    double cpu_s; /* user + system: robust when other processes share the cores */
    double sim_s;
    uint64_t requests;
    long max_rss_kib;
} bench_result;

static cb_sgworld_config bench_config(const bench_opts *o)
{
    cb_sgworld_config cfg = cb_sgworld_config_default();
    cfg.server_count = o->servers;
    cfg.client_count = o->clients;
    cfg.client.outstanding_max = 1;
    /* Values are 100 B: a 4 KiB limit keeps each machine's buffers small (the defaults size
     * them for 1 MiB values, which multiplies the memory a node touches). */
    cfg.client.value_bytes_max = 4096;
    cfg.server.store.value_bytes_max = 4096;
    cfg.context_factory = o->factory;
    cfg.seed = o->seed;
    return cfg;
}

/* Request i of a client: even = SET, odd = GET of the same key. Frame sizes of each. */
static uint64_t bench_request_bytes(uint64_t i)
{
    return BENCH_HEADER + BENCH_KEY_BYTES + (i % 2 == 0 ? BENCH_VALUE_BYTES : 0);
}

static uint64_t bench_reply_bytes(uint64_t i)
{
    return BENCH_HEADER + (i % 2 == 0 ? 0 : BENCH_VALUE_BYTES);
}

/* "k" + 7 digits of the client + "-" + 7 digits of the pair: 16 bytes (snprintf is slow). */
static void bench_key(uint8_t *out, uint64_t client, uint64_t pair)
{
    out[0] = 'k';
    out[8] = '-';
    for (int d = 7; d >= 1; d--) {
        out[d] = (uint8_t)('0' + client % 10);
        out[d + 8] = (uint8_t)('0' + pair % 10);
        client /= 10;
        pair /= 10;
    }
}

/* ---- the driver ----------------------------------------------------------------------- */

typedef struct bench_driver {
    const bench_opts *o;
    uint64_t *sent; /* per client */
    uint64_t completed;
    uint64_t bad;
    uint8_t key[BENCH_KEY_BYTES]; /* the key of the op being submitted */
} bench_driver;

static int bench_next(void *user, uint32_t client, uint64_t now_ns, cb_client_op *op,
                      uint32_t *server, uint64_t *wake_ns)
{
    bench_driver *d = user;
    (void)now_ns;
    uint64_t i = d->sent[client];
    if (i == d->o->per_client) {
        *wake_ns = UINT64_MAX; /* done: the client is idle once its last reply is in */
        return 0;
    }
    static const uint8_t value[BENCH_VALUE_BYTES];
    bench_key(d->key, client, i / 2 % BENCH_KEYS_PER_CLIENT);
    op->op = i % 2 == 0 ? CB_OP_SET : CB_OP_GET;
    op->key = d->key; /* needs to last only until the world submits the op */
    op->key_len = BENCH_KEY_BYTES;
    op->value = i % 2 == 0 ? value : NULL;
    op->value_len = i % 2 == 0 ? BENCH_VALUE_BYTES : 0;
    *server = client % d->o->servers;
    d->sent[client]++;
    return 1;
}

static void bench_complete(void *user, uint32_t client, const cb_completion *c)
{
    bench_driver *d = user;
    (void)client;
    d->completed++;
    d->bad += c->outcome != CB_OUTCOME_STORED && c->outcome != CB_OUTCOME_HIT;
}

static void bench_driver_child(const bench_opts *o, bench_result *r)
{
    bench_driver d = {o, calloc(o->clients, sizeof(uint64_t)), 0, 0, {0}};
    if (d.sent == NULL) {
        r->rc = CB_ERR_NOMEM;
        return;
    }
    cb_sgworld_config cfg = bench_config(o);
    cb_world_hooks hooks = {&d, bench_next, bench_complete, NULL, NULL};
    cb_sgworld_stats st;
    double t0 = cb_bench_now_s();
    r->rc = cb_sgworld_run(&cfg, &hooks, UINT64_MAX, &st);
    r->wall_s = cb_bench_now_s() - t0;
    r->sim_s = (double)st.end_ns / 1e9;
    r->requests = d.completed;
    if (r->rc == CB_ERR_OK && d.bad > 0) {
        r->rc = CB_ERR_INVALID;
    }
    free(d.sent);
}

/* ---- bare SimGrid ----------------------------------------------------------------------- */

typedef struct bare_msg {
    uint32_t src;
    uint32_t seq;
} bare_msg;

typedef struct bare_world {
    const bench_opts *o;
    cb_sgworld_config cfg;
    sg_mailbox_t *mailboxes;
    cb_sgshim_port **ports; /* --bare port */
    uint64_t completed;
    uint32_t clients_left; /* --bare port: clients still running */
    double end_s;          /* when the last client finished */
} bare_world;

static bare_world bare; /* actors reach it through their node index in the actor data */

/* The detached form (put_init + detach, one malloc'd message each): the driver's form before
 * ports, kept for comparison (--bare detached). */
static void bare_send_detached(uint32_t src, uint32_t dst, uint32_t seq, uint64_t frame_bytes)
{
    bare_msg *m = malloc(sizeof *m);
    if (m == NULL) {
        abort(); /* a benchmark: no recovery */
    }
    m->src = src;
    m->seq = seq;
    long bytes = (long)cb_sgworld_wire_bytes(&bare.cfg, frame_bytes);
    sg_comm_detach(sg_mailbox_put_init(bare.mailboxes[dst], m, bytes), free);
}

static void bare_client_detached(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    uint32_t node = (uint32_t)(uintptr_t)sg_actor_self_get_data();
    uint32_t server = (node - bare.o->servers) % bare.o->servers;
    for (uint64_t i = 0; i < bare.o->per_client; i++) {
        bare_send_detached(node, server, (uint32_t)i, bench_request_bytes(i));
        void *reply = NULL;
        if (sg_comm_wait(sg_mailbox_get_async(bare.mailboxes[node], &reply)) == SG_OK) {
            free(reply);
            bare.completed++;
        }
    }
}

static void bare_server_detached(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    uint32_t node = (uint32_t)(uintptr_t)sg_actor_self_get_data();
    sg_actor_daemonize(sg_actor_self());
    for (;;) {
        void *p = NULL;
        if (sg_comm_wait(sg_mailbox_get_async(bare.mailboxes[node], &p)) == SG_OK) {
            bare_msg *m = p;
            bare_send_detached(node, m->src, m->seq, bench_reply_bytes(m->seq));
            free(m);
        }
    }
}

/* The port form (cb_sgshim_port, as the driver): kept sends and one wait-any, and no
 * allocation at all: the message is its (source, sequence) pair packed into the pointer. */
/* The stop message: bare_pack never makes it (its values are at least 1). */
#define BARE_STOP ((void *)(uintptr_t)UINT64_MAX)

static void *bare_pack(uint32_t src, uint32_t seq)
{
    return (void *)(uintptr_t)((((uint64_t)seq << 32) | src) + 1u);
}

static void bare_unpack(void *p, uint32_t *src, uint32_t *seq)
{
    uint64_t v = (uint64_t)(uintptr_t)p - 1u;
    *src = (uint32_t)v;
    *seq = (uint32_t)(v >> 32);
}

static void bare_port_send(cb_sgshim_port *port, uint32_t src, uint32_t dst, uint32_t seq,
                           uint64_t frame_bytes)
{
    uint64_t bytes = cb_sgworld_wire_bytes(&bare.cfg, frame_bytes);
    if (cb_sgshim_port_send(port, bare.mailboxes[dst], bare_pack(src, seq), bytes) != 0) {
        abort();
    }
}

static void bare_client_port(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    uint32_t node = (uint32_t)(uintptr_t)sg_actor_self_get_data();
    uint32_t server = (node - bare.o->servers) % bare.o->servers;
    cb_sgshim_port *port = bare.ports[node];
    for (uint64_t i = 0; i < bare.o->per_client; i++) {
        bare_port_send(port, node, server, (uint32_t)i, bench_request_bytes(i));
        void *reply = NULL;
        if (cb_sgshim_port_wait(port, -1.0, -1.0, &reply) == 1) {
            bare.completed++;
        }
    }
    /* The last client stops the servers, which return instead of being killed as daemons,
     * as cb_sgworld's nodes do (its sg_master_main says why). */
    if (--bare.clients_left == 0) {
        bare.end_s = simgrid_get_clock();
        for (uint32_t s = 0; s < bare.o->servers; s++) {
            sg_comm_detach(sg_mailbox_put_init(bare.mailboxes[s], BARE_STOP, 1), NULL);
        }
    }
}

static void bare_server_port(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    uint32_t node = (uint32_t)(uintptr_t)sg_actor_self_get_data();
    cb_sgshim_port *port = bare.ports[node];
    for (;;) {
        void *p = NULL;
        if (cb_sgshim_port_wait(port, -1.0, -1.0, &p) == 1) {
            if (p == BARE_STOP) {
                return;
            }
            uint32_t src;
            uint32_t seq;
            bare_unpack(p, &src, &seq);
            bare_port_send(port, node, src, seq, bench_reply_bytes(seq));
        }
    }
}

static int bare_start(uint32_t nodes, sg_host_t *hosts)
{
    char name[32];
    for (uint32_t i = 0; i < nodes; i++) {
        snprintf(name, sizeof name, "m%u", i);
        bare.mailboxes[i] = sg_mailbox_by_name(name);
        snprintf(name, sizeof name, "n%u", i);
        sg_actor_t a = sg_actor_init(name, hosts[i]);
        sg_actor_set_data(a, (void *)(uintptr_t)i);
        if (bare.o->bare_detached) {
            sg_actor_start(a, i < bare.o->servers ? bare_server_detached : bare_client_detached, 0,
                           NULL);
        } else {
            bare.ports[i] = cb_sgshim_port_new(bare.mailboxes[i]);
            if (bare.ports[i] == NULL) {
                return CB_ERR_NOMEM;
            }
            sg_actor_start(a, i < bare.o->servers ? bare_server_port : bare_client_port, 0, NULL);
        }
        cb_sgshim_set_receiver(bare.mailboxes[i], a); /* eager, as cb_sgworld does */
    }
    return CB_ERR_OK;
}

static void bench_bare_child(const bench_opts *o, bench_result *r)
{
    bare.o = o;
    bare.cfg = bench_config(o);
    uint32_t nodes = o->servers + o->clients;
    sg_host_t *hosts = calloc(nodes, sizeof hosts[0]);
    bare.mailboxes = calloc(nodes, sizeof bare.mailboxes[0]);
    bare.ports = calloc(nodes, sizeof bare.ports[0]);
    double t0 = cb_bench_now_s();
    r->rc = hosts == NULL || bare.mailboxes == NULL || bare.ports == NULL
                ? CB_ERR_NOMEM
                : cb_sgsetup_begin(&bare.cfg, hosts);
    bare.clients_left = o->clients;
    if (r->rc == CB_ERR_OK) {
        r->rc = bare_start(nodes, hosts);
    }
    if (r->rc == CB_ERR_OK) {
        simgrid_run();
    }
    r->wall_s = cb_bench_now_s() - t0;
    r->sim_s = bare.end_s > 0 ? bare.end_s : simgrid_get_clock();
    r->requests = bare.completed;
    for (uint32_t i = 0; bare.ports != NULL && i < nodes; i++) {
        cb_sgshim_port_del(bare.ports[i]);
    }
    free(hosts);
    free(bare.mailboxes);
    free(bare.ports);
}

/* ---- harness ---------------------------------------------------------------------------- */

typedef struct bench_child_arg {
    const bench_opts *o;
    void (*fn)(const bench_opts *, bench_result *);
} bench_child_arg;

static void bench_child_main(void *arg, void *out)
{
    const bench_child_arg *a = arg;
    bench_result *r = out;
    memset(r, 0, sizeof *r);
    a->fn(a->o, r);
}

static int bench_fork(const bench_opts *o, void (*fn)(const bench_opts *, bench_result *),
                      bench_result *r)
{
    bench_child_arg a = {o, fn};
    cb_bench_usage u;
    if (cb_bench_child(bench_child_main, &a, r, sizeof *r, &u) != 0) {
        return -1;
    }
    r->cpu_s = u.cpu_s;
    r->max_rss_kib = u.max_rss_kib;
    return 0;
}

static void bench_print(const char *name, const bench_result *r)
{
    printf("  %-6s  wall %6.2f s  cpu %6.2f s  %8.0f req/s (wall)  simulated %.3f s  "
           "peak RSS %6.1f MiB\n",
           name, r->wall_s, r->cpu_s, (double)r->requests / r->wall_s, r->sim_s,
           (double)r->max_rss_kib / 1024.0);
}

static int bench_parse(int argc, char **argv, bench_opts *o)
{
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (v == NULL && strcmp(a, "--help") != 0) {
            fprintf(stderr, "cachebed bench sim: '%s' needs a value\n", a);
            return -1;
        }
        if (strcmp(a, "--clients") == 0) {
            o->case_count = 0;
            for (const char *c = v;;) {
                char *end = NULL;
                unsigned long n = strtoul(c, &end, 10);
                if (end == c || n > UINT32_MAX || o->case_count == BENCH_CASES_MAX ||
                    (*end != '\0' && *end != ',')) {
                    fprintf(stderr, "cachebed bench sim: bad --clients '%s'\n", v);
                    return -1;
                }
                o->case_clients[o->case_count++] = (uint32_t)n;
                if (*end == '\0') {
                    break;
                }
                c = end + 1;
            }
        } else if (strcmp(a, "--servers") == 0) {
            o->servers = (uint32_t)strtoul(v, NULL, 10);
        } else if (strcmp(a, "--requests") == 0) {
            o->requests = strtoull(v, NULL, 10);
        } else if (strcmp(a, "--seed") == 0) {
            o->seed = strtoull(v, NULL, 0);
        } else if (strcmp(a, "--factory") == 0) {
            o->factory = v;
        } else if (strcmp(a, "--rounds") == 0) {
            unsigned long r = strtoul(v, NULL, 10);
            if (r == 0 || r > 100) {
                fprintf(stderr, "cachebed bench sim: --rounds takes 1..100\n");
                return -1;
            }
            o->rounds = (uint32_t)r;
        } else if (strcmp(a, "--only") == 0) {
            o->only = v;
        } else if (strcmp(a, "--bare") == 0 &&
                   (strcmp(v, "port") == 0 || strcmp(v, "detached") == 0)) {
            o->bare_detached = strcmp(v, "detached") == 0;
        } else {
            fprintf(stderr, "cachebed bench sim: unknown option '%s'\n", a);
            return -1;
        }
        i++;
    }
    for (uint32_t i = 0; i < o->case_count; i++) {
        if (o->case_clients[i] == 0 || o->servers == 0 || o->requests < o->case_clients[i]) {
            fprintf(stderr,
                    "cachebed bench sim: need clients, servers >= 1, requests >= clients\n");
            return -1;
        }
    }
    return 0;
}

static int bench_cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* The driver's rate over the bare one's, by wall or cpu time. */
static double bench_ratio(const bench_result *drv, const bench_result *base, int by_cpu)
{
    double td = by_cpu ? drv->cpu_s : drv->wall_s, tb = by_cpu ? base->cpu_s : base->wall_s;
    return ((double)drv->requests / td) / ((double)base->requests / tb);
}

/* Run one half (the driver or bare SimGrid) and print it; 0, or 1 when it failed. */
static int bench_half(const bench_opts *o, int driver, bench_result *r)
{
    memset(r, 0, sizeof *r);
    if (bench_fork(o, driver ? bench_driver_child : bench_bare_child, r) != 0 ||
        r->rc != CB_ERR_OK) {
        if (driver) {
            fprintf(stderr, "cachebed bench sim: the driver run failed (%s)\n", cb_strerror(r->rc));
        } else {
            fprintf(stderr, "cachebed bench sim: the bare SimGrid run failed\n");
        }
        return 1;
    }
    bench_print(driver ? "driver" : "bare", r);
    return 0;
}

/*
 * One case: the driver, then bare SimGrid, then their ratio. With rounds > 1, each round runs
 * both, the driver first in odd rounds and bare SimGrid first in even ones (so a drift in the
 * machine's speed favours neither), and the median of the per-round ratios closes the case:
 * this VM's speed moves by 20-40% from one minute to the next.
 */
static int bench_case(bench_opts o)
{
    o.per_client = o.requests / o.clients;
    printf("bench sim: %u clients, %u servers, %llu requests (%llu per client, one at a time), "
           "tcp, 0.5 ms one way, 1 Gbit/s, %s contexts, %s\n",
           o.clients, o.servers, (unsigned long long)(o.per_client * o.clients),
           (unsigned long long)o.per_client, o.factory, cb_bench_malloc_name());
    int want_drv = o.only == NULL || strcmp(o.only, "driver") == 0;
    int want_bare = o.only == NULL || strcmp(o.only, "bare") == 0;
    double wall_ratio[100], cpu_ratio[100];
    for (uint32_t round = 0; round < o.rounds; round++) {
        bench_result drv, bare_r;
        int drv_first = round % 2 == 0;
        if (o.rounds > 1) {
            printf(" round %u (%s first)\n", round + 1, drv_first ? "driver" : "bare");
        }
        for (int k = 0; k < 2; k++) {
            int driver = k == 0 ? drv_first : !drv_first;
            if ((driver ? want_drv : want_bare) &&
                bench_half(&o, driver, driver ? &drv : &bare_r) != 0) {
                return 1;
            }
        }
        if (!want_drv || !want_bare) {
            continue;
        }
        wall_ratio[round] = bench_ratio(&drv, &bare_r, 0);
        cpu_ratio[round] = bench_ratio(&drv, &bare_r, 1);
        printf("  driver/bare rate: %.2f by wall time, %.2f by cpu time (goal >= 0.80); "
               "simulated end: driver %.6f s, bare %.6f s\n",
               wall_ratio[round], cpu_ratio[round], drv.sim_s, bare_r.sim_s);
    }
    if (want_drv && want_bare && o.rounds > 1) {
        qsort(wall_ratio, o.rounds, sizeof wall_ratio[0], bench_cmp_double);
        qsort(cpu_ratio, o.rounds, sizeof cpu_ratio[0], bench_cmp_double);
        uint32_t m = o.rounds / 2;
        double wall_med = o.rounds % 2 ? wall_ratio[m] : (wall_ratio[m - 1] + wall_ratio[m]) / 2;
        double cpu_med = o.rounds % 2 ? cpu_ratio[m] : (cpu_ratio[m - 1] + cpu_ratio[m]) / 2;
        printf("  median driver/bare rate over %u rounds: %.2f by wall time (%.2f-%.2f), %.2f by "
               "cpu time (%.2f-%.2f)\n",
               o.rounds, wall_med, wall_ratio[0], wall_ratio[o.rounds - 1], cpu_med, cpu_ratio[0],
               cpu_ratio[o.rounds - 1]);
    }
    return 0;
}

int cb_bench_sim(int argc, char **argv)
{
    bench_opts o = {1000, {1000}, 1, 100, 1000000, 0, 1, "raw", NULL, 0, 1};
    if (bench_parse(argc, argv, &o) != 0) {
        return 2;
    }
    for (uint32_t i = 0; i < o.case_count; i++) {
        o.clients = o.case_clients[i];
        int rc = bench_case(o);
        if (rc != 0) {
            return rc;
        }
    }
    return 0;
}

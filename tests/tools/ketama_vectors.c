/*
 * ketama_vectors.c: derive ketama key -> server vectors from the real libmemcached client,
 * for tests/test_cb_placement.c (which reads the committed tests/data/ketama_vectors.txt and
 * needs nothing from libmemcached itself).
 *
 * Not built by CMake. It was run on Debian 12 with libmemcached-dev 1.1.4-1:
 *     cc -std=c11 -O2 -o /tmp/ketama_vectors tests/tools/ketama_vectors.c \
 *         $(pkg-config --cflags --libs libmemcached)
 *     /tmp/ketama_vectors > tests/data/ketama_vectors.txt
 *
 * libmemcached is set up as a weighted-ketama client (MEMCACHED_BEHAVIOR_KETAMA_WEIGHTED: MD5
 * key hash, 160 points per server scaled by weight, 4 points per MD5 digest), the mode that
 * matches last.fm's libketama and twemproxy's `distribution: ketama` with `hash: md5`.
 * memcached_generate_hash() gives the server index (dispatch_host) without any network.
 *
 * Output: for each server set, a line "set NAME", one line per server
 * "server HOST PORT WEIGHT" (in libmemcached's list order, which is the index), then one
 * line per key "key KEY INDEX", then "end".
 */
#include <libmemcached/memcached.h>
#include <stdio.h>
#include <string.h>

typedef struct server {
    const char *host;
    in_port_t port;
    uint32_t weight;
} server;

static int emit_set(const char *name, const server *servers, size_t count, int keys)
{
    memcached_st *memc = memcached_create(NULL);
    if (memc == NULL) {
        return -1;
    }
    if (memcached_behavior_set(memc, MEMCACHED_BEHAVIOR_KETAMA_WEIGHTED, 1) != MEMCACHED_SUCCESS) {
        memcached_free(memc);
        return -1;
    }
    printf("set %s\n", name);
    for (size_t i = 0; i < count; i++) {
        if (memcached_server_add_with_weight(memc, servers[i].host, servers[i].port,
                                             servers[i].weight) != MEMCACHED_SUCCESS) {
            memcached_free(memc);
            return -1;
        }
        printf("server %s %u %u\n", servers[i].host, (unsigned)servers[i].port, servers[i].weight);
    }
    for (int k = 0; k < keys; k++) {
        char key[64];
        int len = snprintf(key, sizeof(key), "key:%d", k);
        uint32_t idx = memcached_generate_hash(memc, key, (size_t)len);
        printf("key %s %u\n", key, idx);
    }
    printf("end\n");
    memcached_free(memc);
    return 0;
}

int main(void)
{
    /* Four servers of equal weight on non-default ports: points from "host:port-i". */
    static const server equal[] = {
        {"10.0.0.1", 11212, 1},
        {"10.0.0.2", 11212, 1},
        {"10.0.0.3", 11213, 1},
        {"10.0.0.4", 11214, 1},
    };
    /* Mixed weights, and two servers on the default port 11211: points from "host-i". */
    static const server weighted[] = {
        {"cache-a.example", 11211, 1},
        {"cache-b.example", 11211, 2},
        {"127.0.0.1", 22122, 1},
        {"127.0.0.1", 22123, 3},
    };
    /* Five servers: 160 * 5 / 5 is computed in float by libmemcached, check the rounding. */
    static const server five[] = {
        {"192.168.1.10", 11211, 1}, {"192.168.1.11", 11211, 1}, {"192.168.1.12", 11211, 1},
        {"192.168.1.13", 11211, 1}, {"192.168.1.14", 11211, 1},
    };
    if (emit_set("equal", equal, 4, 1000) != 0 || emit_set("weighted", weighted, 4, 1000) != 0 ||
        emit_set("five", five, 5, 1000) != 0) {
        fprintf(stderr, "ketama_vectors: libmemcached call failed\n");
        return 1;
    }
    return 0;
}

/* cb_udp_peers.c: the bounded UDP peer table; see cb_udp_peers.h. */
#include "cb_udp_peers.h"

#include <netinet/in.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#define PEERS_KEY_BYTES 24u
#define PEERS_NONE      UINT32_MAX

typedef struct peers_entry {
    uint8_t key[PEERS_KEY_BYTES]; /* family, 0, port(2), scope id(4), address(16) */
    uint64_t hash;
    uint32_t prev, next; /* the LRU list: prev is more recent */
} peers_entry;

struct cb_udp_peers {
    uint32_t cap, count, mask;
    uint32_t head, tail; /* most and least recently seen */
    peers_entry *entries;
    uint32_t *index; /* mask + 1 buckets: slot + 1, 0 empty */
    uint8_t hash_key[crypto_shorthash_KEYBYTES];
};

int cb_udp_peers_new(uint32_t cap, cb_udp_peers **out)
{
    *out = NULL;
    if (cap == 0 || cap > CB_UDP_PEERS_MAX || sodium_init() < 0) {
        return -1;
    }
    uint32_t buckets = 2;
    while (buckets < 2u * cap) {
        buckets *= 2;
    }
    cb_udp_peers *p = calloc(1, sizeof *p);
    if (p == NULL) {
        return -1;
    }
    p->entries = calloc(cap, sizeof p->entries[0]);
    p->index = calloc(buckets, sizeof p->index[0]);
    if (p->entries == NULL || p->index == NULL) {
        cb_udp_peers_del(p);
        return -1;
    }
    p->cap = cap;
    p->mask = buckets - 1;
    p->head = p->tail = PEERS_NONE;
    randombytes_buf(p->hash_key, sizeof p->hash_key);
    *out = p;
    return 0;
}

void cb_udp_peers_del(cb_udp_peers *p)
{
    if (p != NULL) {
        free(p->entries);
        free(p->index);
        free(p);
    }
}

/* The address as a fixed-size key (zero-padded, so equal peers compare equal bytewise). */
static void peers_key(const struct sockaddr *addr, socklen_t len, uint8_t key[PEERS_KEY_BYTES])
{
    memset(key, 0, PEERS_KEY_BYTES);
    key[0] = (uint8_t)addr->sa_family;
    if (addr->sa_family == AF_INET && len >= (socklen_t)sizeof(struct sockaddr_in)) {
        const struct sockaddr_in *a = (const struct sockaddr_in *)addr;
        memcpy(key + 2, &a->sin_port, 2);
        memcpy(key + 8, &a->sin_addr, 4);
    } else if (addr->sa_family == AF_INET6 && len >= (socklen_t)sizeof(struct sockaddr_in6)) {
        const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)addr;
        memcpy(key + 2, &a->sin6_port, 2);
        memcpy(key + 4, &a->sin6_scope_id, 4);
        memcpy(key + 8, &a->sin6_addr, 16);
    }
}

static uint32_t peers_home(const cb_udp_peers *p, uint64_t hash)
{
    return (uint32_t)hash & p->mask;
}

static void peers_unlink(cb_udp_peers *p, uint32_t slot)
{
    peers_entry *e = &p->entries[slot];
    if (e->prev != PEERS_NONE) {
        p->entries[e->prev].next = e->next;
    } else {
        p->head = e->next;
    }
    if (e->next != PEERS_NONE) {
        p->entries[e->next].prev = e->prev;
    } else {
        p->tail = e->prev;
    }
}

static void peers_push_front(cb_udp_peers *p, uint32_t slot)
{
    peers_entry *e = &p->entries[slot];
    e->prev = PEERS_NONE;
    e->next = p->head;
    if (p->head != PEERS_NONE) {
        p->entries[p->head].prev = slot;
    }
    p->head = slot;
    if (p->tail == PEERS_NONE) {
        p->tail = slot;
    }
}

/* Remove `slot`'s bucket by backward shift: later entries of the probe run move up. */
static void peers_index_remove(cb_udp_peers *p, uint32_t slot)
{
    uint32_t i = peers_home(p, p->entries[slot].hash);
    while (p->index[i] != slot + 1) {
        i = (i + 1) & p->mask; /* present: the loop ends */
    }
    for (uint32_t j = (i + 1) & p->mask; p->index[j] != 0; j = (j + 1) & p->mask) {
        uint32_t home = peers_home(p, p->entries[p->index[j] - 1].hash);
        /* j's entry may fill hole i unless its home lies cyclically in (i, j]. */
        int stays = i <= j ? (home > i && home <= j) : (home > i || home <= j);
        if (!stays) {
            p->index[i] = p->index[j];
            i = j;
        }
    }
    p->index[i] = 0;
}

uint32_t cb_udp_peers_get(cb_udp_peers *p, const struct sockaddr *addr, socklen_t addr_len,
                          int *added, int *evicted)
{
    uint8_t key[PEERS_KEY_BYTES];
    peers_key(addr, addr_len, key);
    uint8_t h8[crypto_shorthash_BYTES];
    (void)crypto_shorthash(h8, key, sizeof key, p->hash_key);
    uint64_t hash;
    memcpy(&hash, h8, sizeof hash);
    *added = *evicted = 0;
    uint32_t i = peers_home(p, hash);
    for (; p->index[i] != 0; i = (i + 1) & p->mask) {
        uint32_t slot = p->index[i] - 1;
        peers_entry *e = &p->entries[slot];
        if (e->hash == hash && memcmp(e->key, key, sizeof key) == 0) {
            if (p->head != slot) {
                peers_unlink(p, slot);
                peers_push_front(p, slot);
            }
            return slot;
        }
    }
    uint32_t slot;
    if (p->count < p->cap) {
        slot = p->count++;
    } else {
        slot = p->tail;
        peers_unlink(p, slot);
        peers_index_remove(p, slot);
        *evicted = 1;
        /* The removal may have shifted entries into the run: find a free bucket again. */
        for (i = peers_home(p, hash); p->index[i] != 0; i = (i + 1) & p->mask) {
        }
    }
    peers_entry *e = &p->entries[slot];
    memcpy(e->key, key, sizeof key);
    e->hash = hash;
    p->index[i] = slot + 1;
    peers_push_front(p, slot);
    *added = 1;
    return slot;
}

uint32_t cb_udp_peers_count(const cb_udp_peers *p)
{
    return p->count;
}

uint32_t cb_udp_peers_cap(const cb_udp_peers *p)
{
    return p->cap;
}

size_t cb_udp_peers_bytes(const cb_udp_peers *p)
{
    return sizeof *p + (size_t)p->cap * sizeof p->entries[0] +
           ((size_t)p->mask + 1) * sizeof p->index[0];
}

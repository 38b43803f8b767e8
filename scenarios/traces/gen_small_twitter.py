#!/usr/bin/env python3
"""gen_small_twitter.py: write a small synthetic cache trace in the Twitter cache-trace format.

Regenerate the shipped trace (byte for byte: the generator is seeded and uses only
random.random-based draws, stable across Python 3 versions):

    python3 scenarios/traces/gen_small_twitter.py \
        | zstd -19 -q -o scenarios/traces/small_twitter.csv.zst

Format (github.com/twitter/cache-trace): one request per line,
    timestamp,anonymized key,key size,value size,client id,operation,TTL
Timestamps here are seconds with a millisecond fraction (cachebed accepts a fraction; the
published traces have whole seconds, so their requests of one second arrive together).

What it models, loosely after Yang et al., "A large scale analysis of hundreds of in-memory
cache clusters at Twitter" (OSDI 2020):
  - key popularity Zipf(1.0) over 3000 keys; anonymized keys of 16..40 characters;
  - look-aside use: each client GETs a key and, on a miss, SETs it right after (the trace
    tracks which keys are cached, ignoring evictions and expiry);
  - a few deletes (2%) and counters (incr, 1%);
  - value sizes log-normal with a median near 230 bytes (the paper's median), capped at 64 KiB;
    each key keeps its size, so the trace is self-consistent;
  - TTLs from a small set (10 min, 1 h, 1 day);
  - three client ids (1, 2, 3) sending 50%, 30% and 20% of the requests;
  - Poisson arrivals at 250 requests per second for 4000 records (about 16 s).
"""
import bisect
import math
import random
import string
import sys

SEED = 20240501
KEYS = 3000
ALPHA = 1.0
RECORDS = 4000
RATE_PER_S = 250.0
CLIENTS = [(1, 0.5), (2, 0.3), (3, 0.2)]
TTLS = [600, 3600, 86400]
VALUE_CAP = 65536


def main():
    rng = random.Random(SEED)
    weights = [1.0 / (rank ** ALPHA) for rank in range(1, KEYS + 1)]
    total = sum(weights)
    cdf, acc = [], 0.0
    for w in weights:
        acc += w / total
        cdf.append(acc)
    alphabet = string.ascii_letters + string.digits + "_-"
    names = []
    for _ in range(KEYS):
        length = 16 + int(rng.random() * 25)
        names.append("".join(alphabet[int(rng.random() * len(alphabet))] for _ in range(length)))
    sizes = [max(1, min(VALUE_CAP, int(math.exp(math.log(230) + 1.0 * rng.gauss(0, 1)))))
             for _ in range(KEYS)]
    ttls = [TTLS[int(rng.random() * len(TTLS))] for _ in range(KEYS)]
    cached = set()
    out = sys.stdout
    t, n = 0.0, 0
    while n < RECORDS:
        t += rng.expovariate(RATE_PER_S)
        ms = int(t * 1000)
        stamp = "%d.%03d" % (ms // 1000, ms % 1000)
        k = min(bisect.bisect_left(cdf, rng.random()), KEYS - 1)
        u = rng.random()
        client = CLIENTS[-1][0]
        for cid, share in CLIENTS:
            if u < share:
                client = cid
                break
            u -= share
        name, size, ttl = names[k], sizes[k], ttls[k]
        r = rng.random()
        if r < 0.02:
            out.write("%s,%s,%d,0,%d,delete,0\n" % (stamp, name, len(name), client))
            cached.discard(k)
            n += 1
            continue
        if r < 0.03:
            out.write("%s,%s,%d,0,%d,incr,0\n" % (stamp, name, len(name), client))
            n += 1
            continue
        hit = k in cached
        out.write("%s,%s,%d,%d,%d,get,0\n" % (stamp, name, len(name), size if hit else 0, client))
        n += 1
        if not hit and n < RECORDS:
            out.write("%s,%s,%d,%d,%d,set,%d\n" % (stamp, name, len(name), size, client, ttl))
            cached.add(k)
            n += 1


if __name__ == "__main__":
    main()

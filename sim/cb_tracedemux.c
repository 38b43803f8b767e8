/* cb_tracedemux.c: one trace, many clients, bounded buffering; see cb_tracedemux.h. */
#include "cb_tracedemux.h"

#include <stdlib.h>

#include "cb_err.h"

#define DEMUX_NONE UINT32_MAX

typedef struct demux_queue {
    uint32_t head, tail; /* pool indexes; DEMUX_NONE when empty */
} demux_queue;

struct cb_tracedemux {
    cb_trace *trace;
    uint32_t client_count;
    uint64_t record_limit;
    uint64_t read;
    cb_trace_record *pool; /* buffered_max records */
    uint32_t *link;        /* next record in the same queue, or in the free list */
    uint32_t free_head;
    demux_queue *queues;   /* one per client */
    cb_trace_record ahead; /* read, but its client's turn has not come and the pool is full */
    int have_ahead;
    int status; /* 1 while the trace has records; then 0 (ended) or a cb_err */
};

int cb_tracedemux_new(cb_trace *trace, uint32_t client_count, uint32_t buffered_max,
                      uint64_t record_limit, cb_tracedemux **out)
{
    *out = NULL;
    if (trace == NULL || client_count == 0 || buffered_max == 0 || buffered_max == DEMUX_NONE) {
        return CB_ERR_INVALID;
    }
    cb_tracedemux *d = calloc(1, sizeof *d);
    if (d == NULL) {
        return CB_ERR_NOMEM;
    }
    d->pool = calloc(buffered_max, sizeof d->pool[0]);
    d->link = calloc(buffered_max, sizeof d->link[0]);
    d->queues = calloc(client_count, sizeof d->queues[0]);
    if (d->pool == NULL || d->link == NULL || d->queues == NULL) {
        cb_tracedemux_del(d);
        return CB_ERR_NOMEM;
    }
    for (uint32_t i = 0; i < buffered_max; i++) {
        d->link[i] = i + 1 < buffered_max ? i + 1 : DEMUX_NONE;
    }
    for (uint32_t c = 0; c < client_count; c++) {
        d->queues[c] = (demux_queue){DEMUX_NONE, DEMUX_NONE};
    }
    d->trace = trace;
    d->client_count = client_count;
    d->record_limit = record_limit;
    d->status = 1;
    *out = d;
    return CB_ERR_OK;
}

void cb_tracedemux_del(cb_tracedemux *d)
{
    if (d == NULL) {
        return;
    }
    free(d->pool);
    free(d->link);
    free(d->queues);
    free(d);
}

uint64_t cb_tracedemux_read(const cb_tracedemux *d)
{
    return d->read;
}

static int demux_pop(cb_tracedemux *d, uint32_t client, cb_trace_record *rec)
{
    demux_queue *q = &d->queues[client];
    uint32_t i = q->head;
    if (i == DEMUX_NONE) {
        return 0;
    }
    *rec = d->pool[i];
    q->head = d->link[i];
    if (q->head == DEMUX_NONE) {
        q->tail = DEMUX_NONE;
    }
    d->link[i] = d->free_head;
    d->free_head = i;
    return 1;
}

/* Park d->ahead in its client's queue; 0 when the pool is full. */
static int demux_park(cb_tracedemux *d, uint32_t owner)
{
    uint32_t i = d->free_head;
    if (i == DEMUX_NONE) {
        return 0;
    }
    d->free_head = d->link[i];
    d->pool[i] = d->ahead;
    d->link[i] = DEMUX_NONE;
    demux_queue *q = &d->queues[owner];
    if (q->tail == DEMUX_NONE) {
        q->head = i;
    } else {
        d->link[q->tail] = i;
    }
    q->tail = i;
    d->have_ahead = 0;
    return 1;
}

int cb_tracedemux_next(cb_tracedemux *d, uint32_t client, cb_trace_record *rec)
{
    if (demux_pop(d, client, rec)) {
        return CB_TRACEDEMUX_RECORD;
    }
    for (;;) {
        if (!d->have_ahead) {
            if (d->status == 1 && d->record_limit > 0 && d->read >= d->record_limit) {
                d->status = 0;
            }
            if (d->status == 1) {
                int rc = cb_trace_next(d->trace, &d->ahead);
                d->status = rc == 1 ? 1 : rc;
                d->read += rc == 1;
                d->have_ahead = rc == 1;
            }
            if (d->status != 1) {
                return d->status; /* CB_TRACEDEMUX_END or the error */
            }
        }
        uint32_t owner = (uint32_t)(d->ahead.client_id % d->client_count);
        if (owner == client) {
            *rec = d->ahead;
            d->have_ahead = 0;
            return CB_TRACEDEMUX_RECORD;
        }
        if (!demux_park(d, owner)) {
            return CB_TRACEDEMUX_WAIT;
        }
    }
}

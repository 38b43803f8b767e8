/*
 * cb_tracedemux.h: deal one interleaved trace out to the clients that replay it.
 *
 * A trace is one file whose records belong to many clients: record r goes to client
 * r.client_id % client_count (formats without client ids number records 0, 1, 2..., which
 * deals them round-robin). The demultiplexer reads the trace once, in order, and hands each
 * client the subsequence of its records, in trace order. Records read ahead for clients that
 * have not asked yet wait in one shared pool of `buffered_max` records, so memory stays
 * bounded whatever the trace's size (about 300 bytes a record).
 *
 * When the pool is full and the asking client's next record is still further in the file, the
 * client must wait (CB_TRACEDEMUX_WAIT) until the clients whose records fill the pool take
 * them; the runner asks again a little later. Reading the trace once per client instead
 * would need no pool but would decompress and parse the whole file client_count times.
 */
#ifndef CB_TRACEDEMUX_H
#define CB_TRACEDEMUX_H

#include <stdint.h>

#include "cb_trace.h"

typedef struct cb_tracedemux cb_tracedemux;

enum {
    CB_TRACEDEMUX_END = 0,    /* no more records for this client */
    CB_TRACEDEMUX_RECORD = 1, /* *rec holds the client's next record */
    CB_TRACEDEMUX_WAIT = 2,   /* the pool is full: ask again after other clients took some */
};

/*
 * Deal `trace` (not owned; it must outlive the demultiplexer) to client_count >= 1 clients,
 * buffering at most buffered_max >= 1 records, and stop after record_limit records in all
 * (0: no limit). Returns CB_ERR_OK with *out set, CB_ERR_INVALID or CB_ERR_NOMEM.
 */
int cb_tracedemux_new(cb_trace *trace, uint32_t client_count, uint32_t buffered_max,
                      uint64_t record_limit, cb_tracedemux **out);
void cb_tracedemux_del(cb_tracedemux *d);

/*
 * The next record of `client` (< client_count). Returns CB_TRACEDEMUX_RECORD, _WAIT, _END,
 * or the trace's error (a negative cb_err; cb_trace_error() has the message) once the
 * client's buffered records are used up. The trace's end or error is sticky.
 */
int cb_tracedemux_next(cb_tracedemux *d, uint32_t client, cb_trace_record *rec);

/* Records read from the trace so far (dealt or buffered). */
uint64_t cb_tracedemux_read(const cb_tracedemux *d);

#endif

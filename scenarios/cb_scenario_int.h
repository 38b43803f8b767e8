/*
 * cb_scenario_int.h: what the three parts of the scenario loader share (not installed, not
 * for other modules): the schema table (cb_scenario_schema.c), the fault grammar
 * (cb_scenario_faults.c) and the loader itself (cb_scenario.c).
 */
#ifndef CB_SCENARIO_INT_H
#define CB_SCENARIO_INT_H

#include <stddef.h>
#include <stdint.h>

#include "cb_scenario.h"

typedef enum {
    SCEN_SEC_SCENARIO,
    SCEN_SEC_NETWORK,
    SCEN_SEC_SERVERS,
    SCEN_SEC_CLIENTS,
    SCEN_SEC_PLACEMENT,
    SCEN_SEC_TRANSPORT,
    SCEN_SEC_BROKER,
    SCEN_SEC_WORKLOAD,
    SCEN_SEC_FAULTS,
    SCEN_SEC_COUNT,
} scen_section;

typedef enum {
    SCEN_T_NAME,      /* [A-Za-z0-9_.-]{1,64} */
    SCEN_T_PATH,      /* any text, may be empty */
    SCEN_T_UINT,      /* cb_units_parse_uint */
    SCEN_T_DURATION,  /* ns */
    SCEN_T_SIZE,      /* bytes */
    SCEN_T_BANDWIDTH, /* bits per second */
    SCEN_T_FRACTION,  /* ppm */
    SCEN_T_DECIMAL,   /* millionths, signed */
    SCEN_T_ENUM,      /* index into choices */
    SCEN_T_RATE,      /* per second */
    SCEN_T_MIX,       /* cb_plan_mix */
    SCEN_T_FAULT,     /* [faults] at: a list */
} scen_type;

enum {
    SCEN_F_BARE_OK = 1u << 0,  /* a number without unit is in the base unit */
    SCEN_F_POW2 = 1u << 1,     /* 0 or a power of two */
    SCEN_F_REQUIRED = 1u << 2, /* must be set in the file */
    /* must be set in the file whenever it applies (no usable default) */
    SCEN_F_REQUIRED_IF_APPLIES = 1u << 3,
};

/* Why a key does not apply to `plan` ("applies only with key_dist = zipf"), or NULL. */
typedef const char *(*scen_applies_fn)(const cb_plan *plan);

typedef struct scen_key {
    scen_section section;
    const char *name;
    scen_type type;
    size_t offset; /* of the field in cb_plan */
    size_t width;  /* of the field: 4 or 8 (strings: the array size) */
    const char *def;
    uint64_t min, max;          /* unsigned types, in the base unit */
    int64_t smin, smax;         /* SCEN_T_DECIMAL */
    const char *const *choices; /* SCEN_T_ENUM: names in enum order, NULL-terminated */
    unsigned flags;
    scen_applies_fn not_applicable;
    uint32_t server_bit;  /* per-server keys: the CB_PLAN_SERVER_* bit, else 0 */
    size_t server_offset; /* per-server keys: the field in cb_plan_server */
    const char *doc;
} scen_key;

/* A parsed value before it is stored. */
typedef struct scen_value {
    uint64_t u;
    int64_t s;
    cb_plan_mix mix;
    const char *text; /* NAME, PATH: a view of the input */
} scen_value;

#define SCEN_KEYS_MAX  96u
#define SCEN_ERR_BYTES 200u

extern const char *const scen_section_names[SCEN_SEC_COUNT];

/* The schema: scen_key_count() entries, in section order then documentation order. */
const scen_key *scen_keys(void);
size_t scen_key_count(void);
/* The key named `name` in `section`, or NULL. */
const scen_key *scen_key_find(scen_section section, const char *name);

/* Parse `text` for key `k` and check its range. Returns CB_ERR_OK or an error with a
 * message in err ("out of range: 20s is more than 10s"). */
int scen_value_parse(const scen_key *k, const char *text, scen_value *v, char *err, size_t err_cap);
/* Store a parsed value into the plan field (`base` = the plan, or a cb_plan_server with
 * `per_server` set). */
void scen_value_store(const scen_key *k, const scen_value *v, void *base, bool per_server);
/* Format the field of `k` in `plan` (or in `server`) as file text. */
void scen_value_format(const scen_key *k, const cb_plan *plan, const cb_plan_server *server,
                       char *out, size_t out_cap);
/* Fill every field of `plan` that the schema covers with its default. */
void scen_plan_defaults(cb_plan *plan);

/* Faults (cb_scenario_faults.c). Parse one `at` value; message in err on failure. */
int scen_fault_parse(const char *text, cb_fault *fault, char *err, size_t err_cap);
/* Format a fault as the text of an `at` value. */
void scen_fault_format(const cb_fault *fault, char *out, size_t out_cap);
/* Check a parsed fault against the plan's nodes; a message in err on failure. */
int scen_fault_check(const cb_fault *fault, const cb_plan *plan, char *err, size_t err_cap);

/* Levenshtein distance, capped: returns at most `cap` + 1. */
size_t scen_edit_distance(const char *a, const char *b, size_t cap);

#endif

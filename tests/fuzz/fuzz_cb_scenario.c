/*
 * fuzz_cb_scenario.c: libFuzzer target for the scenario loader (scenarios/cb_scenario.h).
 *
 * The input is a scenario file's bytes, loaded with cb_scenario_load_string (any bytes,
 * not NUL-terminated). Whatever it holds, the load must return OK or INVALID (or NOMEM)
 * without crashing or leaking; an OK plan must survive the --explain round trip: its
 * explain output loads back into an equal plan. ASan and LeakSanitizer do the rest.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "cb_err.h"
#include "cb_scenario.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fuzz_round_trip(const cb_plan *plan)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    if (f == NULL) {
        abort();
    }
    if (cb_plan_explain(plan, f) != 0) {
        abort();
    }
    fclose(f);
    cb_plan again;
    cb_diag diag;
    if (cb_scenario_load_string("explain.ini", text, len, &again, &diag) != CB_ERR_OK) {
        cb_diag_print(&diag, stderr);
        abort();
    }
    if (!cb_plan_equal(plan, &again)) {
        abort();
    }
    cb_plan_free(&again);
    free(text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static cb_diag diag; /* 20 KiB: kept off the stack; reset by every load */
    cb_plan plan;
    int rc = cb_scenario_load_string("fuzz.ini", (const char *)data, size, &plan, &diag);
    if (rc == CB_ERR_OK) {
        if (diag.count != 0) {
            abort();
        }
        fuzz_round_trip(&plan);
        cb_plan_free(&plan);
    } else if (rc != CB_ERR_INVALID && rc != CB_ERR_NOMEM) {
        abort();
    } else if (diag.count == 0 || plan.faults != NULL || plan.servers.each != NULL) {
        abort();
    }
    return 0;
}

/*
 * cb_scenario_faults.c: the [faults] timeline grammar — one `at = TIME EVENT` value into a
 * cb_fault, back to text, and checked against the plan's nodes. docs/scenarios.md "Faults".
 *
 *   at = 5s crash server2
 *   at = 9s recover server2
 *   at = 12s partition {client*, server0} | {server1, server2}
 *   at = 15s heal
 *   at = 20s link server1 latency=5ms loss=2%
 *
 * A node pattern is a node name (server<i>, client<i>, broker) or a prefix of one ending in
 * `*` (`client*`, `server1*`, `*`). Allowing `*` only at the end keeps every question about
 * patterns O(1): whether one matches an existing node, and whether two overlap (one
 * prefix contains the other), without enumerating 10^4 nodes.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "cb_err.h"
#include "cb_scenario_int.h"
#include "cb_units.h"

static const char *const fault_kind_names[] = {"crash", "recover", "partition", "heal", "link"};
static const char *const fault_kind_names_of_node[] = {"server", "client", "broker"};

static const char fault_expect_node[] =
    "expected server<i>, client<i>, broker, or a prefix ending in * like client*";

/* ---- node patterns ---- */

static bool fault_all_digits(const char *s)
{
    if (*s == '\0') {
        return false;
    }
    for (; *s != '\0'; s++) {
        if (*s < '0' || *s > '9') {
            return false;
        }
    }
    return true;
}

/* Digits without a leading zero (except "0" itself). */
static bool fault_index_digits(const char *s)
{
    return fault_all_digits(s) && (s[0] != '0' || s[1] == '\0');
}

/* A prefix `q` (the pattern without its `*`) that some node name of any shape starts with. */
static bool fault_prefix_ok(const char *q)
{
    size_t len = strlen(q);
    for (int k = 0; k < 3; k++) {
        const char *kind = fault_kind_names_of_node[k];
        size_t klen = strlen(kind);
        if (len <= klen && strncmp(q, kind, len) == 0) {
            return true;
        }
        if (k < 2 && len > klen && strncmp(q, kind, klen) == 0 && fault_index_digits(q + klen)) {
            return true;
        }
    }
    return false;
}

/* Check a pattern's shape (not whether its nodes exist) and copy it into `out`. */
static int fault_pattern_parse(const char *text, size_t len, char *out, char *err, size_t err_cap)
{
    char q[CB_NODE_PATTERN_BYTES];
    if (len == 0 || len >= CB_NODE_PATTERN_BYTES) {
        (void)snprintf(err, err_cap, "bad node name '%.*s': %s", (int)(len > 40 ? 40 : len), text,
                       fault_expect_node);
        return CB_ERR_INVALID;
    }
    memcpy(q, text, len);
    q[len] = '\0';
    bool star = q[len - 1] == '*';
    if (star) {
        q[len - 1] = '\0';
    }
    bool ok = strchr(q, '*') == NULL &&
              (star ? fault_prefix_ok(q)
                    : strcmp(q, "broker") == 0 ||
                          (strncmp(q, "server", 6) == 0 && fault_index_digits(q + 6)) ||
                          (strncmp(q, "client", 6) == 0 && fault_index_digits(q + 6)));
    if (!ok) {
        (void)snprintf(err, err_cap, "bad node name '%.*s': %s", (int)len, text, fault_expect_node);
        return CB_ERR_INVALID;
    }
    memcpy(out, text, len);
    out[len] = '\0';
    return CB_ERR_OK;
}

static bool fault_name_matches(const char *pattern, const char *name)
{
    size_t len = strlen(pattern);
    if (len > 0 && pattern[len - 1] == '*') {
        return strncmp(name, pattern, len - 1) == 0;
    }
    return strcmp(name, pattern) == 0;
}

bool cb_plan_node_matches(const char *pattern, cb_node_kind kind, uint32_t index)
{
    char name[CB_NODE_PATTERN_BYTES + 8];
    if (kind == CB_NODE_BROKER) {
        (void)snprintf(name, sizeof name, "broker");
    } else {
        (void)snprintf(name, sizeof name, "%s%" PRIu32, fault_kind_names_of_node[kind], index);
    }
    return fault_name_matches(pattern, name);
}

/* Whether some node of `kind` (count nodes) matches the prefix `q` (q ends a star pattern,
 * or is a whole name when `exact`). Indices have no leading zeros, so the smallest index
 * whose name starts with kind+D is D itself. */
static bool fault_kind_has(const char *q, bool exact, const char *kind, uint64_t count)
{
    size_t len = strlen(q), klen = strlen(kind);
    if (count == 0) {
        return false;
    }
    if (!exact && len <= klen) {
        return strncmp(q, kind, len) == 0;
    }
    if (len <= klen || strncmp(q, kind, klen) != 0 || !fault_index_digits(q + klen)) {
        return false;
    }
    uint64_t index = 0;
    for (const char *p = q + klen; *p != '\0'; p++) {
        index = index * 10u + (uint64_t)(*p - '0'); /* at most 9 digits: no overflow */
    }
    return index < count;
}

static bool fault_pattern_exists(const char *pattern, const cb_plan *plan)
{
    char q[CB_NODE_PATTERN_BYTES];
    size_t len = strnlen(pattern, CB_NODE_PATTERN_BYTES - 1);
    bool exact = len == 0 || pattern[len - 1] != '*';
    memcpy(q, pattern, len);
    q[exact ? len : len - 1] = '\0';
    bool broker = plan->transport.kind == CB_TRANSPORT_QUEUE;
    return fault_kind_has(q, exact, "server", plan->servers.count) ||
           fault_kind_has(q, exact, "client", plan->clients.count) ||
           (broker && (exact ? strcmp(q, "broker") == 0 : strncmp(q, "broker", strlen(q)) == 0));
}

/* Two existing patterns share a node when one's prefix contains the other's. */
static bool fault_patterns_overlap(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    bool sa = la > 0 && a[la - 1] == '*', sb = lb > 0 && b[lb - 1] == '*';
    if (!sa && !sb) {
        return strcmp(a, b) == 0;
    }
    if (sa && !sb) {
        return strncmp(a, b, la - 1) == 0;
    }
    if (!sa && sb) {
        return strncmp(a, b, lb - 1) == 0;
    }
    size_t shorter = la < lb ? la : lb;
    return strncmp(a, b, shorter - 1) == 0;
}

/* ---- parsing ---- */

static const char *fault_skip_blanks(const char *p)
{
    return p + strspn(p, " \t");
}

/* The next blank-separated token: [*tok, *tok + *len); returns what follows. */
static const char *fault_token(const char *p, const char **tok, size_t *len)
{
    p = fault_skip_blanks(p);
    *tok = p;
    *len = strcspn(p, " \t");
    return p + *len;
}

static int fault_parse_target(const char *rest, cb_fault *f, bool more_ok, const char **after,
                              char *err, size_t err_cap)
{
    const char *tok;
    size_t len;
    rest = fault_token(rest, &tok, &len);
    if (len == 0) {
        (void)snprintf(err, err_cap, "'%s' needs a node: %s", fault_kind_names[f->kind],
                       fault_expect_node);
        return CB_ERR_INVALID;
    }
    if (fault_pattern_parse(tok, len, f->patterns[0], err, err_cap) != CB_ERR_OK) {
        return CB_ERR_INVALID;
    }
    f->pattern_count = 1;
    rest = fault_skip_blanks(rest);
    if (!more_ok && *rest != '\0') {
        (void)snprintf(err, err_cap, "unexpected '%.40s' after '%s %s'", rest,
                       fault_kind_names[f->kind], f->patterns[0]);
        return CB_ERR_INVALID;
    }
    *after = rest;
    return CB_ERR_OK;
}

static const char fault_expect_link[] =
    "expected link settings like latency=5ms jitter=1ms bandwidth=1Gbps loss=2%";

/* One `name=value` setting of a link event. */
static int fault_link_setting(const char *tok, size_t len, cb_fault *f, char *err, size_t err_cap)
{
    static const char *const names[] = {"latency", "jitter", "bandwidth", "loss"};
    char text[CB_SCENARIO_LINE_BYTES_MAX + 1], unit_err[SCEN_ERR_BYTES];
    memcpy(text, tok, len);
    text[len] = '\0';
    char *eq = strchr(text, '=');
    for (unsigned i = 0; eq != NULL && i < 4; i++) {
        if ((size_t)(eq - text) != strlen(names[i]) || strncmp(text, names[i], strlen(names[i]))) {
            continue;
        }
        if (f->link_set & (1u << i)) {
            (void)snprintf(err, err_cap, "link setting '%s' given twice", names[i]);
            return CB_ERR_INVALID;
        }
        f->link_set |= 1u << i;
        int rc =
            i == 0   ? cb_units_parse_duration(eq + 1, 0, &f->latency_ns, unit_err, SCEN_ERR_BYTES)
            : i == 1 ? cb_units_parse_duration(eq + 1, 0, &f->jitter_ns, unit_err, SCEN_ERR_BYTES)
            : i == 2 ? cb_units_parse_bandwidth(eq + 1, &f->bandwidth_bps, unit_err, SCEN_ERR_BYTES)
                     : cb_units_parse_fraction(eq + 1, &f->loss_ppm, unit_err, SCEN_ERR_BYTES);
        if (rc == CB_ERR_OK && i == 3 && f->loss_ppm > 1000000u) {
            (void)snprintf(unit_err, sizeof unit_err, "loss is at most 100%%");
            rc = CB_ERR_INVALID;
        }
        if (rc != CB_ERR_OK) {
            (void)snprintf(err, err_cap, "bad link %s '%s': %s", names[i], eq + 1, unit_err);
        }
        return rc;
    }
    (void)snprintf(err, err_cap, "bad link setting '%.40s': %s", text, fault_expect_link);
    return CB_ERR_INVALID;
}

static int fault_parse_link(const char *rest, cb_fault *f, char *err, size_t err_cap)
{
    if (fault_parse_target(rest, f, true, &rest, err, err_cap) != CB_ERR_OK) {
        return CB_ERR_INVALID;
    }
    while (*rest != '\0') {
        const char *tok;
        size_t len;
        rest = fault_skip_blanks(fault_token(rest, &tok, &len));
        if (fault_link_setting(tok, len, f, err, err_cap) != CB_ERR_OK) {
            return CB_ERR_INVALID;
        }
    }
    if (f->link_set == 0) {
        (void)snprintf(err, err_cap, "'link %s' changes nothing: %s", f->patterns[0],
                       fault_expect_link);
        return CB_ERR_INVALID;
    }
    return CB_ERR_OK;
}

static const char fault_expect_partition[] =
    "expected groups like 'partition {client*, server0} | {server1, server2}'";

/* One `{a, b, ...}` group at *p; advances *p past the closing brace. */
static int fault_parse_group(const char **p, cb_fault *f, char *err, size_t err_cap)
{
    const char *s = fault_skip_blanks(*p);
    if (*s++ != '{') {
        (void)snprintf(err, err_cap, "missing '{': %s", fault_expect_partition);
        return CB_ERR_INVALID;
    }
    for (;;) {
        s = fault_skip_blanks(s);
        size_t len = strcspn(s, " \t,{}|");
        if (f->pattern_count >= CB_FAULT_PATTERNS_MAX) {
            (void)snprintf(err, err_cap, "more than %u nodes in one partition",
                           CB_FAULT_PATTERNS_MAX);
            return CB_ERR_INVALID;
        }
        if (fault_pattern_parse(s, len, f->patterns[f->pattern_count], err, err_cap) != CB_ERR_OK) {
            return CB_ERR_INVALID;
        }
        f->group[f->pattern_count++] = (uint8_t)f->group_count;
        s = fault_skip_blanks(s + len);
        if (*s == '}') {
            *p = s + 1;
            f->group_count++;
            return CB_ERR_OK;
        }
        if (*s++ != ',') {
            (void)snprintf(err, err_cap, "missing ',' or '}': %s", fault_expect_partition);
            return CB_ERR_INVALID;
        }
    }
}

static int fault_parse_partition(const char *rest, cb_fault *f, char *err, size_t err_cap)
{
    for (;;) {
        if (fault_parse_group(&rest, f, err, err_cap) != CB_ERR_OK) {
            return CB_ERR_INVALID;
        }
        rest = fault_skip_blanks(rest);
        if (*rest == '\0') {
            break;
        }
        if (*rest++ != '|') {
            (void)snprintf(err, err_cap, "missing '|' between groups: %s", fault_expect_partition);
            return CB_ERR_INVALID;
        }
    }
    if (f->group_count < 2) {
        (void)snprintf(err, err_cap, "a partition needs two groups or more: %s",
                       fault_expect_partition);
        return CB_ERR_INVALID;
    }
    return CB_ERR_OK;
}

static int fault_parse_kind(const char *tok, size_t len, cb_fault *f, char *err, size_t err_cap)
{
    size_t best = 5, best_dist = 3;
    char word[24];
    (void)snprintf(word, sizeof word, "%.*s", (int)(len < 20 ? len : 20), tok);
    for (size_t i = 0; i < 5; i++) {
        if (len == strlen(fault_kind_names[i]) && strncmp(tok, fault_kind_names[i], len) == 0) {
            f->kind = (cb_fault_kind)i;
            return CB_ERR_OK;
        }
        size_t d = scen_edit_distance(word, fault_kind_names[i], 2);
        if (d < best_dist) {
            best = i;
            best_dist = d;
        }
    }
    if (best < 5) {
        (void)snprintf(err, err_cap,
                       "unknown event '%s' (did you mean '%s'?): expected crash, recover, "
                       "partition, heal or link",
                       word, fault_kind_names[best]);
    } else {
        (void)snprintf(err, err_cap,
                       "unknown event '%s': expected crash, recover, partition, heal or link",
                       word);
    }
    return CB_ERR_INVALID;
}

int scen_fault_parse(const char *text, cb_fault *f, char *err, size_t err_cap)
{
    char when[CB_UNITS_TEXT_BYTES_MAX + 1], unit_err[SCEN_ERR_BYTES];
    const char *tok;
    size_t len;
    memset(f, 0, sizeof *f);
    const char *rest = fault_token(text, &tok, &len);
    (void)snprintf(when, sizeof when, "%.*s", (int)(len < sizeof when - 1 ? len : sizeof when - 1),
                   tok);
    if (len == 0 || len >= sizeof when ||
        cb_units_parse_duration(when, 0, &f->at_ns, unit_err, sizeof unit_err) != CB_ERR_OK) {
        (void)snprintf(err, err_cap, "bad time '%s': expected 'TIME EVENT' like '5s crash server2'",
                       when);
        return CB_ERR_INVALID;
    }
    rest = fault_token(rest, &tok, &len);
    if (len == 0) {
        (void)snprintf(err, err_cap,
                       "no event after the time: expected crash, recover, "
                       "partition, heal or link");
        return CB_ERR_INVALID;
    }
    if (fault_parse_kind(tok, len, f, err, err_cap) != CB_ERR_OK) {
        return CB_ERR_INVALID;
    }
    switch (f->kind) {
    case CB_FAULT_CRASH:
    case CB_FAULT_RECOVER:
        return fault_parse_target(rest, f, false, &rest, err, err_cap);
    case CB_FAULT_LINK:
        return fault_parse_link(rest, f, err, err_cap);
    case CB_FAULT_PARTITION:
        return fault_parse_partition(rest, f, err, err_cap);
    case CB_FAULT_HEAL:
        break;
    }
    rest = fault_skip_blanks(rest);
    if (*rest != '\0') {
        (void)snprintf(err, err_cap, "unexpected '%.40s' after 'heal'", rest);
        return CB_ERR_INVALID;
    }
    return CB_ERR_OK;
}

/* ---- checking against the plan ---- */

static void fault_nodes_doc(const cb_plan *plan, char *out, size_t out_cap)
{
    (void)snprintf(out, out_cap,
                   "nodes are server0..server%" PRIu32 ", client0..client%" PRIu32 "%s",
                   plan->servers.count - 1, plan->clients.count - 1,
                   plan->transport.kind == CB_TRANSPORT_QUEUE
                       ? ", broker"
                       : "; broker exists only with [transport] kind = queue");
}

int scen_fault_check(const cb_fault *f, const cb_plan *plan, char *err, size_t err_cap)
{
    char nodes[160];
    for (uint32_t i = 0; i < f->pattern_count && i < CB_FAULT_PATTERNS_MAX; i++) {
        if (!fault_pattern_exists(f->patterns[i], plan)) {
            fault_nodes_doc(plan, nodes, sizeof nodes);
            (void)snprintf(err, err_cap, "no node matches '%s' (%s)", f->patterns[i], nodes);
            return CB_ERR_INVALID;
        }
    }
    for (uint32_t i = 0; f->kind == CB_FAULT_PARTITION && i < f->pattern_count; i++) {
        for (uint32_t j = i + 1; j < f->pattern_count; j++) {
            if (f->group[i] != f->group[j] &&
                fault_patterns_overlap(f->patterns[i], f->patterns[j])) {
                (void)snprintf(err, err_cap,
                               "'%s' and '%s' overlap: a node cannot be in two groups",
                               f->patterns[i], f->patterns[j]);
                return CB_ERR_INVALID;
            }
        }
    }
    if (plan->scenario.duration_ns != 0 && f->at_ns > plan->scenario.duration_ns) {
        char at[CB_UNITS_FORMAT_BYTES], end[CB_UNITS_FORMAT_BYTES];
        (void)cb_units_format_duration(f->at_ns, at, sizeof at);
        (void)cb_units_format_duration(plan->scenario.duration_ns, end, sizeof end);
        (void)snprintf(err, err_cap, "at %s is after the end of the run ([scenario] duration = %s)",
                       at, end);
        return CB_ERR_INVALID;
    }
    return CB_ERR_OK;
}

/* ---- formatting ---- */

static size_t fault_format_groups(const cb_fault *f, bool compact, char *out, size_t out_cap)
{
    size_t used = 0;
    for (uint32_t i = 0; i < f->pattern_count && used < out_cap; i++) {
        bool first = i == 0 || f->group[i] != f->group[i - 1];
        bool last = i + 1 == f->pattern_count || f->group[i + 1] != f->group[i];
        const char *pre = !first   ? (compact ? "," : ", ")
                          : i == 0 ? "{"
                                   : (compact ? "|{" : " | {");
        int n =
            snprintf(out + used, out_cap - used, "%s%s%s", pre, f->patterns[i], last ? "}" : "");
        used += n > 0 ? (size_t)n : 0;
    }
    return used;
}

static void fault_format_link(const cb_fault *f, char *out, size_t out_cap)
{
    char v[CB_UNITS_FORMAT_BYTES];
    size_t used = strlen(out);
    if (f->link_set & CB_FAULT_LINK_LATENCY) {
        (void)cb_units_format_duration(f->latency_ns, v, sizeof v);
        used += (size_t)snprintf(out + used, out_cap - used, " latency=%s", v);
    }
    if ((f->link_set & CB_FAULT_LINK_JITTER) && used < out_cap) {
        (void)cb_units_format_duration(f->jitter_ns, v, sizeof v);
        used += (size_t)snprintf(out + used, out_cap - used, " jitter=%s", v);
    }
    if ((f->link_set & CB_FAULT_LINK_BANDWIDTH) && used < out_cap) {
        (void)cb_units_format_bandwidth(f->bandwidth_bps, v, sizeof v);
        used += (size_t)snprintf(out + used, out_cap - used, " bandwidth=%s", v);
    }
    if ((f->link_set & CB_FAULT_LINK_LOSS) && used < out_cap) {
        (void)cb_units_format_percent(f->loss_ppm, v, sizeof v);
        (void)snprintf(out + used, out_cap - used, " loss=%s", v);
    }
}

void scen_fault_format(const cb_fault *f, char *out, size_t out_cap)
{
    char at[CB_UNITS_FORMAT_BYTES];
    (void)cb_units_format_duration(f->at_ns, at, sizeof at);
    int n = snprintf(out, out_cap, "%s %s", at, fault_kind_names[f->kind]);
    size_t used = n > 0 ? (size_t)n : 0;
    if (used >= out_cap) {
        return;
    }
    if (f->kind == CB_FAULT_PARTITION) {
        /* "at = " + the text must fit a line; the compact form is never longer than the
         * input it was parsed from. */
        out[used++] = ' ';
        size_t room = CB_SCENARIO_LINE_BYTES_MAX - 5 - used;
        if (fault_format_groups(f, false, out + used, out_cap - used) > room) {
            (void)fault_format_groups(f, true, out + used, out_cap - used);
        }
    } else if (f->kind != CB_FAULT_HEAL) {
        (void)snprintf(out + used, out_cap - used, " %s", f->patterns[0]);
        if (f->kind == CB_FAULT_LINK) {
            fault_format_link(f, out, out_cap);
        }
    }
}

void cb_fault_format(const cb_fault *fault, char *out, size_t out_cap)
{
    if (out_cap > 0) {
        out[0] = '\0';
        scen_fault_format(fault, out, out_cap);
    }
}

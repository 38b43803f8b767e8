/*
 * cb_report_doc.c: the report as a list of blocks (headings, paragraphs, plots, tables),
 * written out twice: index.html (self-contained: inline style and script, images beside it)
 * and report.md. Text is stored plain and escaped for each format when written.
 */
#include "cb_report_int.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

/* ---- strings --------------------------------------------------------------------------------- */

void report_str_add(report_str *s, const char *p, size_t n)
{
    if (s->nomem) {
        return;
    }
    if (s->cap - s->len <= n) {
        size_t cap = s->cap > 0 ? s->cap : 64;
        while (cap - s->len <= n) {
            cap *= 2;
        }
        char *data = realloc(s->data, cap);
        if (data == NULL) {
            s->nomem = 1;
            return;
        }
        s->data = data;
        s->cap = cap;
    }
    memcpy(s->data + s->len, p, n);
    s->len += n;
    s->data[s->len] = '\0';
}

static void report_str_vprintf(report_str *s, const char *fmt, va_list ap)
{
    va_list again;
    va_copy(again, ap);
    char tmp[256];
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    if (n < 0) {
        s->nomem = 1;
    } else if ((size_t)n < sizeof tmp) {
        report_str_add(s, tmp, (size_t)n);
    } else {
        char *big = malloc((size_t)n + 1);
        if (big == NULL) {
            s->nomem = 1;
        } else {
            vsnprintf(big, (size_t)n + 1, fmt, again);
            report_str_add(s, big, (size_t)n);
            free(big);
        }
    }
    va_end(again);
}

void report_str_printf(report_str *s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    report_str_vprintf(s, fmt, ap);
    va_end(ap);
}

const char *report_str_get(const report_str *s)
{
    return s->len > 0 ? s->data : "";
}

char *report_str_take(report_str *s)
{
    char *out = NULL;
    if (!s->nomem) {
        out = s->len > 0 ? s->data : calloc(1, 1);
        if (s->len > 0) {
            s->data = NULL;
        }
    }
    report_str_free(s);
    return out;
}

void report_str_free(report_str *s)
{
    free(s->data);
    *s = (report_str){0};
}

char *report_sprintf(const char *fmt, ...)
{
    report_str s = {0};
    va_list ap;
    va_start(ap, fmt);
    report_str_vprintf(&s, fmt, ap);
    va_end(ap);
    return report_str_take(&s);
}

/* ---- blocks ---------------------------------------------------------------------------------- */

static int report_push_block(report_ctx *ctx, report_block *b)
{
    if (ctx->block_count == ctx->block_cap) {
        size_t cap = ctx->block_cap > 0 ? 2 * ctx->block_cap : 32;
        report_block *blocks = realloc(ctx->blocks, cap * sizeof *blocks);
        if (blocks == NULL) {
            return report_fail(ctx, "building the report: out of memory");
        }
        ctx->blocks = blocks;
        ctx->block_cap = cap;
    }
    ctx->blocks[ctx->block_count++] = *b;
    return CB_REPORT_OK;
}

static char *report_dup_or_null(const char *s, int *nomem)
{
    if (s == NULL) {
        return NULL;
    }
    char *copy = report_sprintf("%s", s);
    *nomem |= copy == NULL;
    return copy;
}

static void report_block_free(report_block *b)
{
    free(b->text);
    free(b->name);
    free(b->caption);
    free(b->error);
    report_table_free(b->table);
}

/* Push a block made of copies of the strings; the block owns `table`. */
static int report_add_block(report_ctx *ctx, report_block_kind kind, int level, const char *text,
                            const char *name, const char *caption, const char *error,
                            report_table *table)
{
    int nomem = 0;
    report_block b = {kind,
                      level,
                      report_dup_or_null(text, &nomem),
                      report_dup_or_null(name, &nomem),
                      report_dup_or_null(caption, &nomem),
                      report_dup_or_null(error, &nomem),
                      table};
    if (nomem || report_push_block(ctx, &b) != CB_REPORT_OK) {
        report_block_free(&b);
        return report_fail(ctx, "building the report: out of memory");
    }
    return CB_REPORT_OK;
}

int report_add_heading(report_ctx *ctx, int level, const char *anchor, const char *text)
{
    return report_add_block(ctx, REPORT_BLOCK_HEADING, level, text, anchor, NULL, NULL, NULL);
}

int report_add_text(report_ctx *ctx, const char *fmt, ...)
{
    report_str s = {0};
    va_list ap;
    va_start(ap, fmt);
    report_str_vprintf(&s, fmt, ap);
    va_end(ap);
    char *text = report_str_take(&s);
    if (text == NULL) {
        return report_fail(ctx, "building the report: out of memory");
    }
    int rc = report_add_block(ctx, REPORT_BLOCK_TEXT, 0, text, NULL, NULL, NULL, NULL);
    free(text);
    return rc;
}

int report_add_plot(report_ctx *ctx, const char *name, const char *title, const char *caption,
                    const char *error)
{
    return report_add_block(ctx, REPORT_BLOCK_PLOT, 0, title, name, caption, error, NULL);
}

int report_add_table(report_ctx *ctx, report_table *t, const char *caption)
{
    if (t == NULL) {
        return report_fail(ctx, "building a table: out of memory");
    }
    return report_add_block(ctx, REPORT_BLOCK_TABLE, 0, caption, NULL, NULL, NULL, t);
}

void report_free_blocks(report_ctx *ctx)
{
    for (size_t i = 0; i < ctx->block_count; i++) {
        report_block_free(&ctx->blocks[i]);
    }
    free(ctx->blocks);
    ctx->blocks = NULL;
    ctx->block_count = 0;
    ctx->block_cap = 0;
}

/* ---- tables ---------------------------------------------------------------------------------- */

report_table *report_table_new(size_t cols)
{
    report_table *t = calloc(1, sizeof *t);
    if (t == NULL) {
        return NULL;
    }
    t->cols = cols;
    t->align = calloc(cols, 1);
    if (t->align == NULL) {
        free(t);
        return NULL;
    }
    return t;
}

int report_table_add_row(report_table *t, const char *const *cells)
{
    size_t n = (t->rows + 1) * t->cols;
    char **grown = realloc(t->cells, n * sizeof *grown);
    if (grown == NULL) {
        return -1;
    }
    t->cells = grown;
    unsigned char *bold = realloc(t->bold, n);
    if (bold == NULL) {
        return -1;
    }
    t->bold = bold;
    int nomem = 0;
    for (size_t c = 0; c < t->cols; c++) {
        t->cells[t->rows * t->cols + c] = report_dup_or_null(cells[c] ? cells[c] : "", &nomem);
        t->bold[t->rows * t->cols + c] = 0;
    }
    t->rows++;
    return nomem ? -1 : 0;
}

void report_table_free(report_table *t)
{
    if (t == NULL) {
        return;
    }
    for (size_t i = 0; i < t->rows * t->cols; i++) {
        free(t->cells[i]);
    }
    free(t->cells);
    free(t->bold);
    free(t->align);
    free(t);
}

/* ---- HTML ------------------------------------------------------------------------------------ */

static void report_html_text(FILE *f, const char *s)
{
    for (; *s != '\0'; s++) {
        switch (*s) {
        case '&':
            fputs("&amp;", f);
            break;
        case '<':
            fputs("&lt;", f);
            break;
        case '>':
            fputs("&gt;", f);
            break;
        case '"':
            fputs("&quot;", f);
            break;
        default:
            fputc(*s, f);
        }
    }
}

static const char report_html_head[] =
    "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
    "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
    "<title>cachebed report</title>\n<style>\n"
    "body{font-family:system-ui,-apple-system,\"DejaVu Sans\",sans-serif;margin:2em auto;"
    "max-width:1100px;padding:0 1em;color:#222;line-height:1.45}\n"
    "h1{margin-bottom:.2em}h2{border-bottom:1px solid #ccc;padding-bottom:.2em;margin-top:2em}\n"
    "table{border-collapse:collapse;margin:1em 0;font-size:.9em}\n"
    "caption{text-align:left;font-weight:600;padding:.3em 0}\n"
    "th,td{border:1px solid #ccc;padding:.25em .6em;vertical-align:top}\n"
    "th{background:#f3f3f3}td.num{text-align:right;font-variant-numeric:tabular-nums}\n"
    "td strong{color:#0a5d00}\n"
    "figure{margin:1.5em 0}figure img{max-width:100%;height:auto;border:1px solid #eee}\n"
    "figcaption{font-size:.9em;color:#444}.files a{margin-right:.8em}\n"
    ".error{color:#a00;font-weight:600}nav ul{columns:2}\n"
    "</style>\n</head>\n";

/*
 * Sets body[data-images] to "ok N" once every image (each <img> and each PNG link) has
 * loaded with a non-zero natural width, or to "broken" and the failing files: the headless
 * browser test reads it, and a person can too (the page says it at the bottom).
 */
static const char report_html_script[] =
    "<p id=\"image-status\"></p>\n<script>\n(function () {\n"
    "  var bad = [], total = 0, left = 0;\n"
    "  function finish() {\n"
    "    var s = bad.length ? 'broken ' + bad.join(' ') : 'ok ' + total;\n"
    "    document.body.setAttribute('data-images', s);\n"
    "    document.getElementById('image-status').textContent = 'Images: ' + s;\n"
    "  }\n"
    "  function settle(src, ok) { if (!ok) bad.push(src); if (--left === 0) finish(); }\n"
    "  function watch(src) {\n"
    "    total++; left++;\n"
    "    var img = new Image();\n"
    "    img.onload = function () { settle(src, img.naturalWidth > 0); };\n"
    "    img.onerror = function () { settle(src, false); };\n"
    "    img.src = src;\n"
    "  }\n"
    "  var list = document.querySelectorAll('img, a[data-image]');\n"
    "  for (var i = 0; i < list.length; i++)\n"
    "    watch(list[i].getAttribute(list[i].tagName === 'IMG' ? 'src' : 'href'));\n"
    "  if (total === 0) finish();\n"
    "})();\n</script>\n";

static void report_html_table(FILE *f, const report_table *t, const char *caption)
{
    fputs("<table>\n", f);
    if (caption != NULL) {
        fputs("<caption>", f);
        report_html_text(f, caption);
        fputs("</caption>\n", f);
    }
    for (size_t r = 0; r < t->rows; r++) {
        fputs(r == 0 ? "<thead><tr>" : "<tr>", f);
        for (size_t c = 0; c < t->cols; c++) {
            size_t i = r * t->cols + c;
            fputs(r == 0 ? "<th>" : (t->align[c] ? "<td class=\"num\">" : "<td>"), f);
            fputs(t->bold[i] ? "<strong>" : "", f);
            report_html_text(f, t->cells[i]);
            fputs(t->bold[i] ? "</strong>" : "", f);
            fputs(r == 0 ? "</th>" : "</td>", f);
        }
        fputs(r == 0 ? "</tr></thead>\n<tbody>\n" : "</tr>\n", f);
    }
    fputs("</tbody></table>\n", f);
}

static void report_html_plot(FILE *f, const report_block *b)
{
    fprintf(f, "<figure id=\"plot-%s\">\n", b->name);
    if (b->error == NULL) {
        fprintf(f, "<img src=\"%s.svg\" alt=\"", b->name);
        report_html_text(f, b->text);
        fputs("\">\n", f);
    } else {
        fputs("<p class=\"error\">Not rendered: ", f);
        report_html_text(f, b->error);
        fputs("</p>\n", f);
    }
    fputs("<figcaption><strong>", f);
    report_html_text(f, b->text);
    fputs(".</strong> ", f);
    report_html_text(f, b->caption != NULL ? b->caption : "");
    fputs("<br><span class=\"files\">", f);
    if (b->error == NULL) {
        fprintf(f, "<a href=\"%s.svg\">SVG</a><a href=\"%s.png\" data-image>PNG</a>", b->name,
                b->name);
    }
    fprintf(f, "<a href=\"%s.gp\">gnuplot script</a><a href=\"%s.dat\">data</a>", b->name, b->name);
    fputs("</span></figcaption>\n</figure>\n", f);
}

static void report_html_contents(FILE *f, const report_ctx *ctx)
{
    fputs("<nav><ul>\n", f);
    for (size_t i = 0; i < ctx->block_count; i++) {
        const report_block *b = &ctx->blocks[i];
        if (b->kind == REPORT_BLOCK_HEADING && b->level == 2 && b->name != NULL) {
            fprintf(f, "<li><a href=\"#%s\">", b->name);
            report_html_text(f, b->text);
            fputs("</a></li>\n", f);
        }
    }
    fputs("</ul></nav>\n", f);
}

static void report_html_block(FILE *f, const report_block *b)
{
    switch (b->kind) {
    case REPORT_BLOCK_HEADING:
        fprintf(f, "<h%d", b->level);
        if (b->name != NULL) {
            fprintf(f, " id=\"%s\"", b->name);
        }
        fputs(">", f);
        report_html_text(f, b->text);
        fprintf(f, "</h%d>\n", b->level);
        break;
    case REPORT_BLOCK_TEXT:
        fputs("<p>", f);
        report_html_text(f, b->text);
        fputs("</p>\n", f);
        break;
    case REPORT_BLOCK_PLOT:
        report_html_plot(f, b);
        break;
    case REPORT_BLOCK_TABLE:
        report_html_table(f, b->table, b->text);
        break;
    }
}

int report_write_html(report_ctx *ctx)
{
    FILE *f = report_fopen(ctx, "index.html");
    if (f == NULL) {
        return CB_REPORT_ERROR;
    }
    fputs(report_html_head, f);
    fputs("<body data-images=\"pending\">\n<h1>cachebed report</h1>\n<p>Database <code>", f);
    report_html_text(f, ctx->db_path);
    fprintf(f,
            "</code>: %zu run(s) in %zu group(s). Definitions of every plot and table: "
            "docs/report.md in the cachebed sources.</p>\n",
            ctx->run_count, ctx->group_count);
    report_html_contents(f, ctx);
    for (size_t i = 0; i < ctx->block_count; i++) {
        report_html_block(f, &ctx->blocks[i]);
    }
    fputs(report_html_script, f);
    fputs("</body>\n</html>\n", f);
    return report_fclose(ctx, f, "index.html");
}

/* ---- Markdown -------------------------------------------------------------------------------- */

/* Backslash-escape what Markdown would read as markup; a newline becomes a space. */
static void report_md_text(FILE *f, const char *s)
{
    for (; *s != '\0'; s++) {
        if (strchr("\\`*_[]<>|#", *s) != NULL) {
            fputc('\\', f);
        }
        fputc(*s == '\n' ? ' ' : *s, f);
    }
}

static void report_md_table(FILE *f, const report_table *t, const char *caption)
{
    if (caption != NULL) {
        fputs("\n**", f);
        report_md_text(f, caption);
        fputs("**\n", f);
    }
    fputs("\n", f);
    for (size_t r = 0; r < t->rows; r++) {
        fputs("|", f);
        for (size_t c = 0; c < t->cols; c++) {
            size_t i = r * t->cols + c;
            fputs(t->bold[i] ? " **" : " ", f);
            report_md_text(f, t->cells[i]);
            fputs(t->bold[i] ? "** |" : " |", f);
        }
        fputs("\n", f);
        if (r == 0) {
            fputs("|", f);
            for (size_t c = 0; c < t->cols; c++) {
                fputs(t->align[c] ? " ---: |" : " --- |", f);
            }
            fputs("\n", f);
        }
    }
}

static void report_md_block(FILE *f, const report_block *b)
{
    switch (b->kind) {
    case REPORT_BLOCK_HEADING:
        fprintf(f, "\n%s ", b->level == 2 ? "##" : "###");
        report_md_text(f, b->text);
        fputs("\n", f);
        break;
    case REPORT_BLOCK_TEXT:
        fputs("\n", f);
        report_md_text(f, b->text);
        fputs("\n", f);
        break;
    case REPORT_BLOCK_PLOT:
        if (b->error == NULL) {
            fputs("\n![", f);
            report_md_text(f, b->text);
            fprintf(f, "](%s.svg)\n", b->name);
        } else {
            fputs("\nNot rendered: ", f);
            report_md_text(f, b->error);
            fputs("\n", f);
        }
        fputs("\n*", f);
        report_md_text(f, b->text);
        fputs(".* ", f);
        report_md_text(f, b->caption != NULL ? b->caption : "");
        fprintf(f, " [SVG](%s.svg) · [PNG](%s.png) · [gnuplot script](%s.gp) · [data](%s.dat)\n",
                b->name, b->name, b->name, b->name);
        break;
    case REPORT_BLOCK_TABLE:
        report_md_table(f, b->table, b->text);
        break;
    }
}

int report_write_markdown(report_ctx *ctx)
{
    FILE *f = report_fopen(ctx, "report.md");
    if (f == NULL) {
        return CB_REPORT_ERROR;
    }
    fputs("# cachebed report\n\nDatabase `", f);
    fputs(ctx->db_path, f);
    fprintf(f,
            "`: %zu run(s) in %zu group(s). Definitions: docs/report.md in the cachebed "
            "sources.\n",
            ctx->run_count, ctx->group_count);
    for (size_t i = 0; i < ctx->block_count; i++) {
        report_md_block(f, &ctx->blocks[i]);
    }
    return report_fclose(ctx, f, "report.md");
}

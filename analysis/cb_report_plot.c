/*
 * cb_report_plot.c: a plot's files and its rendering. Each plot NAME is NAME.dat (data, with
 * a header naming its columns) and NAME.gp, a script that renders both NAME.svg and NAME.png
 * when run in the report directory; the report runs `gnuplot NAME.gp` there itself, with
 * fork and exec (no shell sees a path), and checks its exit status and the images.
 */
#include "cb_report_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

/* How much of gnuplot's error output a failure message quotes. */
#define REPORT_GNUPLOT_ERR_BYTES 600

int report_fail(report_ctx *ctx, const char *fmt, ...)
{
    if (!ctx->failed) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(ctx->err, sizeof ctx->err, fmt, ap);
        va_end(ap);
        ctx->failed = 1;
    }
    return CB_REPORT_ERROR;
}

FILE *report_fopen(report_ctx *ctx, const char *name)
{
    char *path = report_sprintf("%s/%s", ctx->dir, name);
    if (path == NULL) {
        report_fail(ctx, "%s: out of memory", name);
        return NULL;
    }
    FILE *f = fopen(path, "w");
    if (f == NULL) {
        report_fail(ctx, "%s: %s", path, strerror(errno));
    }
    free(path);
    return f;
}

int report_fclose(report_ctx *ctx, FILE *f, const char *name)
{
    if (f == NULL) {
        return CB_REPORT_OK;
    }
    int bad = ferror(f);
    int saved = errno;
    if (fclose(f) != 0 && !bad) {
        bad = 1;
        saved = errno;
    }
    if (bad) {
        return report_fail(ctx, "%s/%s: write failed: %s", ctx->dir, name, strerror(saved));
    }
    return CB_REPORT_OK;
}

/* Longest title or legend entry drawn in a plot; longer ones are cut with an ellipsis (the
 * tables beside the plot keep the whole text). 72 bytes fit a legend of the default size. */
#define REPORT_GP_STRING_BYTES_MAX 72u

void report_gp_string(FILE *f, const char *s)
{
    size_t len = strlen(s), cut = len;
    if (len > REPORT_GP_STRING_BYTES_MAX) {
        cut = REPORT_GP_STRING_BYTES_MAX - 3;
        while (cut > 0 && ((unsigned char)s[cut] & 0xC0) == 0x80) {
            cut--; /* never split a UTF-8 sequence */
        }
    }
    fputc('\'', f);
    for (size_t i = 0; i < cut; i++) {
        if (s[i] == '\'') {
            fputs("''", f);
        } else if ((unsigned char)s[i] >= 0x20) {
            fputc(s[i], f);
        }
    }
    if (cut < len) {
        fputs("\xe2\x80\xa6", f); /* … */
    }
    fputc('\'', f);
}

void report_dat_string(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s != '\0'; s++) {
        if (*s == '"') {
            fputc('\'', f);
        } else if ((unsigned char)*s >= 0x20) {
            fputc(*s, f);
        }
    }
    fputc('"', f);
}

/*
 * The script renders itself twice, SVG then PNG, from one body: a researcher edits the body
 * once. noenhanced: labels hold user text (scenario names, parameter values) whose _ and ^
 * must not become subscripts.
 */
static void report_gp_preamble(FILE *gp, const char *name, const char *title, int width, int height)
{
    fputs("# ", gp);
    fputs(title, gp);
    fprintf(gp,
            "\n# Written by `cachebed report`. Restyle: edit this file, then run in this "
            "directory\n#     gnuplot %s.gp\n# which rewrites %s.svg and %s.png. The data "
            "is %s.dat (columns named in its header).\n"
            "do for [fmt in \"svg png\"] {\n"
            "if (fmt eq \"svg\") {\n"
            "    set terminal svg size %d,%d noenhanced font \"DejaVu Sans,12\" "
            "background rgb \"white\"\n"
            "} else {\n"
            "    set terminal pngcairo size %d,%d noenhanced font \"DejaVu Sans,10\" "
            "background rgb \"white\"\n"
            "}\n"
            "set output \"%s.\".fmt\nreset\n"
            "set encoding utf8\nset datafile missing NaN\n"
            "set grid lc rgb \"#dddddd\"\nset key noautotitle\n",
            name, name, name, name, width, height, width, height, name);
}

int report_plot_open(report_ctx *ctx, report_plot *p, const char *name, const char *title,
                     int width, int height)
{
    *p = (report_plot){0};
    snprintf(p->name, sizeof p->name, "%s", name);
    char file[sizeof p->name + 8];
    snprintf(file, sizeof file, "%s.gp", p->name);
    p->gp = report_fopen(ctx, file);
    snprintf(file, sizeof file, "%s.dat", p->name);
    p->dat = p->gp != NULL ? report_fopen(ctx, file) : NULL;
    if (p->dat == NULL) {
        if (p->gp != NULL) {
            fclose(p->gp);
        }
        p->gp = NULL;
        return CB_REPORT_ERROR;
    }
    report_gp_preamble(p->gp, p->name, title, width, height);
    fprintf(p->dat, "# %s\n", title);
    return CB_REPORT_OK;
}

/* In the child: run `gnuplot SCRIPT` in `dir`, stderr into err_fd. Only async-signal-safe
 * calls between fork and exec. */
static void report_exec_gnuplot(const char *gnuplot, const char *dir, const char *script,
                                int err_fd)
{
    static const char cannot_chdir[] = "cannot enter the report directory\n";
    static const char cannot_exec[] = "cannot run the gnuplot program (is gnuplot-nox "
                                      "installed and on PATH?)\n";
    int devnull = open("/dev/null", O_RDWR);
    if (devnull >= 0) {
        dup2(devnull, STDIN_FILENO);
        dup2(devnull, STDOUT_FILENO);
    }
    dup2(err_fd, STDERR_FILENO);
    if (chdir(dir) != 0) {
        ssize_t ignored = write(STDERR_FILENO, cannot_chdir, sizeof cannot_chdir - 1);
        (void)ignored; /* nothing more to do: the exit status says it failed */
        _exit(126);
    }
    char *const argv[] = {(char *)gnuplot, (char *)script, NULL};
    execvp(gnuplot, argv);
    ssize_t ignored = write(STDERR_FILENO, cannot_exec, sizeof cannot_exec - 1);
    (void)ignored; /* as above */
    _exit(127);
}

/* Read the child's error output until EOF, keeping the first bytes of it. */
static void report_drain(int fd, char *out, size_t cap)
{
    size_t len = 0;
    char buf[512];
    for (;;) {
        ssize_t n = read(fd, buf, sizeof buf);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            break;
        }
        size_t take = (size_t)n < cap - 1 - len ? (size_t)n : cap - 1 - len;
        memcpy(out + len, buf, take);
        len += take;
    }
    out[len] = '\0';
}

/*
 * Run gnuplot on NAME.gp; 0 when it exited 0, else -1 with what went wrong in `why`
 * (its exit status or signal and the start of its error output).
 */
static int report_run_gnuplot(report_ctx *ctx, const char *name, char *why, size_t why_cap)
{
    char script[80];
    snprintf(script, sizeof script, "%s.gp", name);
    int fds[2];
    if (pipe(fds) != 0) {
        snprintf(why, why_cap, "pipe: %s", strerror(errno));
        return -1;
    }
    fflush(NULL); /* the child must not flush our buffers a second time */
    pid_t pid = fork();
    if (pid == 0) {
        close(fds[0]);
        report_exec_gnuplot(ctx->gnuplot, ctx->dir, script, fds[1]);
    }
    close(fds[1]);
    if (pid < 0) {
        close(fds[0]);
        snprintf(why, why_cap, "fork: %s", strerror(errno));
        return -1;
    }
    char err[REPORT_GNUPLOT_ERR_BYTES];
    report_drain(fds[0], err, sizeof err);
    close(fds[0]);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
        return 0;
    }
    if (WIFSIGNALED(status)) {
        snprintf(why, why_cap, "%s killed by signal %d: %s", ctx->gnuplot, WTERMSIG(status), err);
    } else {
        snprintf(why, why_cap, "%s exited with status %d: %s", ctx->gnuplot, WEXITSTATUS(status),
                 err);
    }
    return -1;
}

/* Did gnuplot write a non-empty NAME.EXT? */
static int report_image_exists(const report_ctx *ctx, const char *name, const char *ext)
{
    char *path = report_sprintf("%s/%s.%s", ctx->dir, name, ext);
    struct stat sb;
    int ok = path != NULL && stat(path, &sb) == 0 && S_ISREG(sb.st_mode) && sb.st_size > 0;
    free(path);
    return ok;
}

int report_plot_close(report_ctx *ctx, report_plot *p, const char *title, const char *caption)
{
    fputs("unset output\n}\n", p->gp);
    char file[sizeof p->name + 8];
    snprintf(file, sizeof file, "%s.gp", p->name);
    int rc = report_fclose(ctx, p->gp, file);
    snprintf(file, sizeof file, "%s.dat", p->name);
    rc = report_fclose(ctx, p->dat, file) != CB_REPORT_OK ? CB_REPORT_ERROR : rc;
    p->gp = NULL;
    p->dat = NULL;
    if (rc != CB_REPORT_OK) {
        return rc;
    }
    ctx->res.plots++;
    char why[REPORT_GNUPLOT_ERR_BYTES + 200] = "";
    if (report_run_gnuplot(ctx, p->name, why, sizeof why) == 0) {
        if (report_image_exists(ctx, p->name, "svg") && report_image_exists(ctx, p->name, "png")) {
            ctx->res.plots_rendered++;
        } else {
            snprintf(why, sizeof why, "gnuplot exited 0 but wrote no %s.svg or %s.png", p->name,
                     p->name);
        }
    }
    /* Strip the trailing newline gnuplot ends its messages with. */
    size_t len = strlen(why);
    while (len > 0 && (why[len - 1] == '\n' || why[len - 1] == ' ')) {
        why[--len] = '\0';
    }
    if (why[0] != '\0' && ctx->render_err[0] == '\0') {
        snprintf(ctx->render_err, sizeof ctx->render_err, "%s.gp: %s", p->name, why);
    }
    return report_add_plot(ctx, p->name, title, caption, why[0] != '\0' ? why : NULL);
}

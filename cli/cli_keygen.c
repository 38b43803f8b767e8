/*
 * cli_keygen.c: `cachebed keygen PATH` writes a seal key file; cb_cli_load_key reads one.
 *
 * The format is docs/protocol.md §6.4: 64 lower-case hex digits and a newline, from the OS
 * RNG (libsodium's randombytes_buf), in a new file of mode 0600. Loading is strict: a
 * regular file of 64 or 65 bytes that cb_seal_key_parse accepts; a file group or others can
 * read gets a warning.
 */
#include "cb_cli.h"

#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cb_err.h"
#include "cb_seal.h"

#define KEYGEN_FILE_BYTES (2u * CB_SEAL_KEY_BYTES + 1u)

const char cb_cli_keygen_help[] =
    "usage: cachebed keygen PATH\n"
    "       cachebed keygen --check PATH\n"
    "\n"
    "Writes a new 32-byte key for sealed frames (XChaCha20-Poly1305, docs/protocol.md §6)\n"
    "to PATH as 64 hex digits and a newline, from the operating system's random generator.\n"
    "The file is created with mode 0600 and never overwritten: an existing PATH is an\n"
    "error. --check loads PATH as every cachebed command does (64 hex digits, optional\n"
    "newline, nothing else) and warns if group or others can read it.\n"
    "Exit status: 0 ok, 1 failed (PATH exists, I/O error, bad key file), 2 bad usage.\n";

/* Write all of buf to fd; 0 or -1 (errno set). */
static int keygen_write_all(int fd, const char *buf, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, buf, len);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            return -1;
        }
        buf += n;
        len -= (size_t)n;
    }
    return 0;
}

static int keygen_write(const char *path)
{
    cb_seal_key key;
    char text[KEYGEN_FILE_BYTES];
    randombytes_buf(key.bytes, sizeof key.bytes);
    long len = cb_seal_key_format(&key, text, sizeof text);
    cb_seal_key_wipe(&key);
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0) {
        sodium_memzero(text, sizeof text);
        fprintf(stderr, "cachebed keygen: %s: %s%s\n", path, strerror(errno),
                errno == EEXIST ? " (refusing to overwrite a key)" : "");
        return CB_CLI_EXIT_FAILED;
    }
    /* The umask can only narrow 0600, but make the mode exact whatever it is. */
    int rc = fchmod(fd, S_IRUSR | S_IWUSR);
    if (rc == 0) {
        rc = keygen_write_all(fd, text, (size_t)len);
    }
    if (rc == 0) {
        rc = fsync(fd);
    }
    sodium_memzero(text, sizeof text);
    int saved = errno;
    if (close(fd) != 0 && rc == 0) {
        rc = -1;
        saved = errno;
    }
    if (rc != 0) {
        fprintf(stderr, "cachebed keygen: %s: %s\n", path, strerror(saved));
        (void)unlink(path); /* do not leave a partial key behind */
        return CB_CLI_EXIT_FAILED;
    }
    return CB_CLI_EXIT_OK;
}

/* Read the whole small file behind fd into buf (cap bytes); its length, or -1. */
static ssize_t keygen_read_all(int fd, char *buf, size_t cap)
{
    size_t len = 0;
    while (len < cap) {
        ssize_t n = read(fd, buf + len, cap - len);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            return -1;
        }
        if (n == 0) {
            break;
        }
        len += (size_t)n;
    }
    return (ssize_t)len;
}

/* Check what fstat says about a key file; 0 if usable (warnings go to `warn`). */
static int keygen_check_stat(const char *path, const struct stat *st, FILE *warn)
{
    if (!S_ISREG(st->st_mode)) {
        fprintf(stderr, "cachebed: key file %s: not a regular file\n", path);
        return -1;
    }
    if (st->st_size != 2 * CB_SEAL_KEY_BYTES && st->st_size != KEYGEN_FILE_BYTES) {
        fprintf(stderr, "cachebed: key file %s: %lld bytes, want 64 hex digits (+ newline)\n", path,
                (long long)st->st_size);
        return -1;
    }
    if ((st->st_mode & (S_IRWXG | S_IRWXO)) != 0 && warn != NULL) {
        fprintf(warn,
                "cachebed: warning: key file %s has mode %04o: group or others can "
                "read it (chmod 600 %s)\n",
                path, (unsigned)(st->st_mode & 07777), path);
    }
    return 0;
}

int cb_cli_load_key(const char *path, cb_seal_key *out, FILE *warn)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        fprintf(stderr, "cachebed: key file %s: %s\n", path, strerror(errno));
        return -1;
    }
    struct stat st;
    char text[KEYGEN_FILE_BYTES + 1];
    ssize_t len = -1;
    if (fstat(fd, &st) == 0 && keygen_check_stat(path, &st, warn) == 0) {
        len = keygen_read_all(fd, text, sizeof text);
    }
    close(fd);
    int rc = len >= 0 ? cb_seal_key_parse(text, (size_t)len, out) : CB_ERR_INVALID;
    sodium_memzero(text, sizeof text);
    if (len >= 0 && rc != CB_ERR_OK) {
        fprintf(stderr, "cachebed: key file %s: not 64 hex digits and an optional newline\n", path);
    }
    return rc == CB_ERR_OK ? 0 : -1;
}

int cb_cli_keygen(const cb_cli_verb *verb, int argc, char **argv)
{
    (void)verb;
    int check = argc == 2 && strcmp(argv[0], "--check") == 0;
    if (!check && (argc != 1 || argv[0][0] == '-')) {
        fputs(cb_cli_keygen_help, stderr);
        return CB_CLI_EXIT_USAGE;
    }
    if (cb_seal_global_init() != CB_ERR_OK) {
        fprintf(stderr, "cachebed keygen: libsodium failed to initialise\n");
        return CB_CLI_EXIT_FAILED;
    }
    if (!check) {
        return keygen_write(argv[0]);
    }
    cb_seal_key key;
    int rc = cb_cli_load_key(argv[1], &key, stderr);
    cb_seal_key_wipe(&key);
    if (rc != 0) {
        return CB_CLI_EXIT_FAILED;
    }
    printf("%s: a valid key\n", argv[1]);
    return CB_CLI_EXIT_OK;
}

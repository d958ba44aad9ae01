/*
 * tests/fuzz/driver.c — replay a fuzz target's corpus, then mutate it.
 *
 * A main() for builds without libFuzzer (gcc, make check): every file in
 * the target's seed corpus (FUZZ_CORPUS_DIR, or the directories given as
 * arguments) goes through LLVMFuzzerTestOneInput once, then a bounded
 * number of deterministic pseudo-random mutations of those seeds (bit
 * flips, byte changes, insertions, deletions, truncations, duplicated
 * ranges, splices of two seeds) do.  The generator has a fixed seed, so a
 * failure repeats; the run stops after FUZZ_RUNS inputs (default 20000)
 * or FUZZ_SECONDS seconds (default 5), whichever comes first.  A crash is
 * the failure: the sanitizers (or an abort) end the process, and the input
 * being run is written to fuzz-crash-<target>.bin in the current
 * directory first (from a signal handler, or the sanitizers' death
 * callback) so it can be replayed: `fuzz-<target> DIR` runs the files of
 * DIR instead of the corpus.
 */
#include "config.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define FUZZ_MAX_LEN 65536

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct fuzz_seed {
	uint8_t *data;
	size_t len;
};

static struct fuzz_seed *fuzz_seeds;
static size_t fuzz_nseeds;
static uint64_t fuzz_state = 0x9e3779b97f4a7c15ULL;
static const char *fuzz_name = "target";
/* The input being run and where to save it if it crashes. */
static const uint8_t *fuzz_current;
static size_t fuzz_current_len;
static char fuzz_crash_path[256];

/* Provided by ASan/UBSan when linked in (gcc and clang). */
void __sanitizer_set_death_callback(void (*callback)(void))
	__attribute__((weak));

static uint64_t
fuzz_rand(void)
{
	/* xorshift64* */
	fuzz_state ^= fuzz_state >> 12;
	fuzz_state ^= fuzz_state << 25;
	fuzz_state ^= fuzz_state >> 27;
	return fuzz_state * 0x2545f4914f6cdd1dULL;
}

static size_t
fuzz_below(size_t n)
{
	return n == 0 ? 0 : (size_t)(fuzz_rand() % n);
}

static void
fuzz_add_seed(const uint8_t *data, size_t len)
{
	fuzz_seeds = realloc(fuzz_seeds,
			     (fuzz_nseeds + 1) * sizeof(*fuzz_seeds));
	if (fuzz_seeds == NULL)
		abort();
	fuzz_seeds[fuzz_nseeds].data = malloc(len + 1);
	if (fuzz_seeds[fuzz_nseeds].data == NULL)
		abort();
	if (len > 0)
		memcpy(fuzz_seeds[fuzz_nseeds].data, data, len);
	fuzz_seeds[fuzz_nseeds].len = len;
	fuzz_nseeds++;
}

static int
fuzz_name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Load every regular file of dir, in name order (deterministic runs). */
static void
fuzz_load_dir(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	char **names = NULL;
	size_t n = 0;

	if (d == NULL) {
		fprintf(stderr, "fuzz: cannot open corpus %s\n", dir);
		exit(1);
	}
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.')
			continue;
		names = realloc(names, (n + 1) * sizeof(*names));
		if (names == NULL || (names[n] = strdup(e->d_name)) == NULL)
			abort();
		n++;
	}
	closedir(d);
	if (n > 0)
		qsort(names, n, sizeof(*names), fuzz_name_cmp);
	for (size_t i = 0; i < n; i++) {
		char path[4096];
		uint8_t *buf = malloc(FUZZ_MAX_LEN);
		size_t len;
		FILE *f;

		snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
		f = fopen(path, "rb");
		if (buf == NULL)
			abort();
		if (f != NULL) {
			len = fread(buf, 1, FUZZ_MAX_LEN, f);
			fclose(f);
			fuzz_add_seed(buf, len);
		}
		free(buf);
		free(names[i]);
	}
	free(names);
}

/* Write the input being run to fuzz_crash_path (async-signal-safe). */
static void
fuzz_save_current(void)
{
	int fd;

	if (fuzz_current == NULL)
		return;
	fd = open(fuzz_crash_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd < 0)
		return;
	if (write(fd, fuzz_current, fuzz_current_len) < 0) {
		/* nothing more to do while dying */
	}
	close(fd);
	fuzz_current = NULL;
}

static void
fuzz_on_signal(int sig)
{
	fuzz_save_current();
	signal(sig, SIG_DFL);
	raise(sig);
}

/* Run one input from an exact-size heap copy (ASan sees overreads). */
static void
fuzz_run(const uint8_t *data, size_t len)
{
	uint8_t *copy = malloc(len + 1);

	if (copy == NULL)
		abort();
	if (len > 0)
		memcpy(copy, data, len);
	fuzz_current = copy;
	fuzz_current_len = len;
	LLVMFuzzerTestOneInput(copy, len);
	fuzz_current = NULL;
	free(copy);
}

static const uint8_t fuzz_special[] = {
	0x00, 0x01, 0x7f, 0x80, 0xff, 0xfe, '\r', '\n', ' ', '\t', '"', '\\',
	'<', '>', '(', ')', '{', '}', '[', ']', '=', ';', ':', ',', '.', '@',
	'%', '+', '-', '*', '&', '0', '9', 'A', 'z', '\'', '/', '?', 0xc3,
	0xed, 0xf4,
};

/* A byte for an edit: half the time one that parsers look for. */
static uint8_t
fuzz_byte(void)
{
	if (fuzz_below(2) != 0)
		return fuzz_special[fuzz_below(sizeof(fuzz_special))];
	return (uint8_t)fuzz_rand();
}

/* Apply 1-4 random edits to buf (len bytes, room for FUZZ_MAX_LEN). */
static size_t
fuzz_mutate(uint8_t *buf, size_t len)
{
	unsigned edits = 1 + (unsigned)fuzz_below(4);

	for (unsigned i = 0; i < edits; i++) {
		size_t pos = fuzz_below(len + 1), n;
		const struct fuzz_seed *other;

		switch (fuzz_below(9)) {
		case 0: /* flip a bit */
			if (len > 0)
				buf[fuzz_below(len)] ^=
					(uint8_t)(1u << fuzz_below(8));
			break;
		case 1: /* a special or random byte */
		case 2:
			if (len > 0)
				buf[fuzz_below(len)] = fuzz_byte();
			break;
		case 3: /* insert 1-8 bytes */
			n = 1 + fuzz_below(8);
			if (len + n > FUZZ_MAX_LEN)
				break;
			memmove(buf + pos + n, buf + pos, len - pos);
			for (size_t j = 0; j < n; j++)
				buf[pos + j] = fuzz_byte();
			len += n;
			break;
		case 4: /* delete a range */
			if (pos >= len)
				break;
			n = 1 + fuzz_below(len - pos < 16 ? len - pos : 16);
			memmove(buf + pos, buf + pos + n, len - pos - n);
			len -= n;
			break;
		case 5: /* truncate */
			len = pos;
			break;
		case 6: /* duplicate a range (repetition, long runs) */
			if (pos >= len)
				break;
			n = 1 + fuzz_below(len - pos);
			{
				unsigned times = 1 + (unsigned)fuzz_below(64);

				for (unsigned t = 0; t < times &&
				     len + n <= FUZZ_MAX_LEN; t++) {
					memmove(buf + pos + n, buf + pos,
						len - pos);
					len += n;
				}
			}
			break;
		case 7: /* splice: our head, another seed's tail */
			other = &fuzz_seeds[fuzz_below(fuzz_nseeds)];
			n = fuzz_below(other->len + 1);
			if (pos + other->len - n > FUZZ_MAX_LEN)
				break;
			memcpy(buf + pos, other->data + n, other->len - n);
			len = pos + other->len - n;
			break;
		default: /* insert a piece of another seed */
			other = &fuzz_seeds[fuzz_below(fuzz_nseeds)];
			if (other->len == 0)
				break;
			{
				size_t from = fuzz_below(other->len);

				n = 1 + fuzz_below(other->len - from);
				if (len + n > FUZZ_MAX_LEN)
					break;
				memmove(buf + pos + n, buf + pos, len - pos);
				memcpy(buf + pos, other->data + from, n);
				len += n;
			}
			break;
		}
	}
	return len;
}

static long
fuzz_env(const char *name, long def)
{
	const char *v = getenv(name);

	return v != NULL && *v != '\0' ? strtol(v, NULL, 10) : def;
}

int
main(int argc, char **argv)
{
	long runs = fuzz_env("FUZZ_RUNS", 20000);
	long seconds = fuzz_env("FUZZ_SECONDS", 5);
	uint8_t *buf = malloc(FUZZ_MAX_LEN);
	time_t start = time(NULL);
	long done = 0;
	const char *slash = strrchr(argv[0], '/');

	fuzz_name = slash != NULL ? slash + 1 : argv[0];
	if (buf == NULL)
		abort();
	snprintf(fuzz_crash_path, sizeof(fuzz_crash_path),
		 "fuzz-crash-%s.bin", fuzz_name);
	signal(SIGABRT, fuzz_on_signal);
	signal(SIGSEGV, fuzz_on_signal);
	signal(SIGBUS, fuzz_on_signal);
	signal(SIGFPE, fuzz_on_signal);
	if (__sanitizer_set_death_callback != NULL)
		__sanitizer_set_death_callback(fuzz_save_current);
	if (argc > 1) {
		for (int i = 1; i < argc; i++)
			fuzz_load_dir(argv[i]);
	} else {
		fuzz_load_dir(FUZZ_CORPUS_DIR);
	}
	if (fuzz_nseeds == 0)
		fuzz_add_seed((const uint8_t *)"", 0);

	/* TAP, as make check reads it: a crash leaves a test without "ok" */
	printf("1..2\n");
	fflush(stdout);
	for (size_t i = 0; i < fuzz_nseeds; i++)
		fuzz_run(fuzz_seeds[i].data, fuzz_seeds[i].len);
	printf("ok 1 - %s: %zu corpus inputs\n", fuzz_name, fuzz_nseeds);
	fflush(stdout);
	for (; done < runs; done++) {
		const struct fuzz_seed *s;
		size_t len;

		if ((done & 255) == 0 && time(NULL) - start >= seconds)
			break;
		s = &fuzz_seeds[fuzz_below(fuzz_nseeds)];
		memcpy(buf, s->data, s->len);
		len = fuzz_mutate(buf, s->len);
		fuzz_run(buf, len);
	}
	printf("ok 2 - %s: %ld mutated inputs\n", fuzz_name, done);
	for (size_t i = 0; i < fuzz_nseeds; i++)
		free(fuzz_seeds[i].data);
	free(fuzz_seeds);
	free(buf);
	return 0;
}

/*
 * tests/store/deliver-loop.c — drives the store's public delivery API
 * with a real loop and configuration, for the crash test
 * (tests/integration/test_store_crash.py) and the benchmark
 * (bench/store.py).  Not installed.
 *
 *   deliver-loop deliver -c CONFIG -s SPOOL_DIR [-n COUNT] [-j PARALLEL]
 *                [-b BYTES] [-f FIRST] [-m] ACCOUNT...
 *     Keeps PARALLEL deliveries outstanding until COUNT (0: forever)
 *     have succeeded.  Delivery i goes to ACCOUNT[i % n] or, with -m, to
 *     every ACCOUNT at once.  Its Message-ID is <SEQ@deliver-loop> with
 *     SEQ = FIRST + i; "ok SEQ" is printed (and flushed) only after the
 *     delivery reported success.  At the end: "done N SECONDS".
 *
 *   deliver-loop check -c CONFIG ACCOUNT...
 *     Prints "msg ACCOUNT MESSAGE-ID" for every message and runs
 *     ts__store_check_counts; exits 1 on a problem.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kernel/boot.h"
#include "kernel/store/store-private.h"

struct loop_state {
	struct ts_kernel k;
	uv_loop_t loop;
	const char *spool_dir;
	char **accounts;
	size_t account_count;
	bool multi;
	size_t body_bytes;
	unsigned long long first, next, count, done, outstanding;
	unsigned parallel;
	int failed;
	uint64_t start_ms;
};

struct one {
	struct loop_state *st;
	unsigned long long seq;
	char *path;
};

static void loop_start_one(struct loop_state *st);

/* Write a message of about body_bytes to a new spool file. */
static char *
loop_write_spool(struct loop_state *st, unsigned long long seq)
{
	char *path = ts_xasprintf("%s/%llu.eml", st->spool_dir, seq);
	FILE *f = fopen(path, "w");
	if (f == NULL) {
		fprintf(stderr, "%s: %s\n", path, strerror(errno));
		exit(1);
	}
	fprintf(f,
		"From: loop@example.net\r\nTo: rcpt@example.org\r\n"
		"Subject: delivery %llu\r\nMessage-ID: <%llu@deliver-loop>\r\n"
		"\r\n",
		seq, seq);
	static const char line[] =
		"The quick brown fox jumps over the lazy dog 0123456789.\r\n";
	for (size_t n = 0; n < st->body_bytes; n += sizeof(line) - 1)
		fputs(line, f);
	if (fclose(f) != 0) {
		fprintf(stderr, "%s: %s\n", path, strerror(errno));
		exit(1);
	}
	return path;
}

static void
loop_delivered(int status, const uint32_t *uids, size_t count, void *arg)
{
	struct one *o = arg;
	struct loop_state *st = o->st;
	(void)uids;
	(void)count;
	st->outstanding--;
	/* The store keeps its own links: the spool file can go. */
	unlink(o->path);
	if (status != 0) {
		fprintf(stderr, "delivery %llu failed: %s\n", o->seq,
			ts_strerror(status));
		st->failed = 1;
	} else {
		st->done++;
		printf("ok %llu\n", o->seq);
		fflush(stdout);
	}
	free(o->path);
	free(o);
	if (!st->failed)
		loop_start_one(st);
}

static void
loop_start_one(struct loop_state *st)
{
	while (st->outstanding < st->parallel &&
	       (st->count == 0 || st->next - st->first < st->count)) {
		struct one *o = ts_xcalloc(1, sizeof(*o));
		o->st = st;
		o->seq = st->next++;
		o->path = loop_write_spool(st, o->seq);
		struct ts_delivery_target t[64];
		size_t n = 0;
		if (st->multi) {
			for (size_t i = 0; i < st->account_count && i < 64; i++)
				t[n++] = (struct ts_delivery_target){
					.account = st->accounts[i]
				};
		} else {
			t[n++] = (struct ts_delivery_target){
				.account =
					st->accounts[o->seq % st->account_count]
			};
		}
		int rc = ts_store_deliver(&st->k.kctx, o->path, NULL, t, n,
					  loop_delivered, o);
		if (rc != 0) {
			fprintf(stderr, "ts_store_deliver: %s\n",
				ts_strerror(rc));
			exit(1);
		}
		st->outstanding++;
	}
}

static int
loop_check(struct loop_state *st)
{
	const struct ts_cfg_sect *core = ts_cfg_find(st->k.cfg, "core", NULL);
	const char *data_dir = ts_cfg_str(core, "data_dir");
	int ret = 0;
	for (size_t i = 0; i < st->account_count; i++) {
		sqlite3 *db;
		char *error = NULL;
		if (ts__store_db_open(data_dir, st->accounts[i], &db, &error) !=
		    0) {
			fprintf(stderr, "%s: %s\n", st->accounts[i], error);
			free(error);
			return 1;
		}
		sqlite3_stmt *s;
		if (sqlite3_prepare_v2(db,
				       "SELECT message_id FROM messages"
				       " ORDER BY id",
				       -1, &s, NULL) != SQLITE_OK) {
			ts__store_db_close(&db);
			return 1;
		}
		while (sqlite3_step(s) == SQLITE_ROW)
			printf("msg %s %s\n", st->accounts[i],
			       (const char *)sqlite3_column_text(s, 0));
		sqlite3_finalize(s);
		char *problems = NULL;
		if (ts__store_check_counts(db, &problems) != 0) {
			fprintf(stderr, "%s: %s", st->accounts[i],
				problems != NULL ? problems : "error\n");
			ret = 1;
		}
		free(problems);
		ts__store_db_close(&db);
	}
	return ret;
}

static int
usage(void)
{
	fprintf(stderr,
		"usage: deliver-loop deliver -c CONFIG -s SPOOL_DIR [-n COUNT]"
		" [-j PARALLEL] [-b BYTES] [-f FIRST] [-m] ACCOUNT...\n"
		"       deliver-loop check -c CONFIG ACCOUNT...\n");
	return 2;
}

int
main(int argc, char **argv)
{
	static struct loop_state st;
	const char *config = NULL;
	int opt;
	if (argc < 2)
		return usage();
	const char *mode = argv[1];
	st.parallel = 16;
	st.body_bytes = 1024;
	optind = 2;
	while ((opt = getopt(argc, argv, "c:s:n:j:b:f:m")) != -1) {
		switch (opt) {
		case 'c':
			config = optarg;
			break;
		case 's':
			st.spool_dir = optarg;
			break;
		case 'n':
			st.count = strtoull(optarg, NULL, 10);
			break;
		case 'j':
			st.parallel = (unsigned)strtoul(optarg, NULL, 10);
			break;
		case 'b':
			st.body_bytes = strtoull(optarg, NULL, 10);
			break;
		case 'f':
			st.first = strtoull(optarg, NULL, 10);
			break;
		case 'm':
			st.multi = true;
			break;
		default:
			return usage();
		}
	}
	if (config == NULL || optind >= argc || st.parallel == 0)
		return usage();
	st.accounts = argv + optind;
	st.account_count = (size_t)(argc - optind);
	uv_loop_init(&st.loop);
	if (ts__boot_kernel(&st.k, &st.loop, config, false, TS_LOG_WARN) != 0)
		return 1;
	int ret;
	if (strcmp(mode, "check") == 0) {
		ret = loop_check(&st);
	} else if (strcmp(mode, "deliver") == 0 && st.spool_dir != NULL) {
		st.next = st.first;
		st.start_ms = uv_hrtime() / 1000000;
		loop_start_one(&st);
		uv_run(&st.loop, UV_RUN_DEFAULT);
		double secs =
			(double)(uv_hrtime() / 1000000 - st.start_ms) / 1000.0;
		printf("done %llu %.3f\n", st.done, secs);
		ret = st.failed;
	} else {
		ret = usage();
	}
	ts__stores_free(&st.k);
	ts__boot_teardown(&st.k);
	uv_run(&st.loop, UV_RUN_DEFAULT);
	uv_loop_close(&st.loop);
	return ret;
}

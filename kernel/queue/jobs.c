/*
 * kernel/queue/jobs.c — the queue index's job runner.
 *
 * The queue has one SQLite connection.  Jobs (add a message, load a
 * delivery, record results) are queued on the loop and run on the work
 * pool one batch at a time: every job waiting when a batch starts runs in
 * it, inside one transaction, each under its own savepoint so one failing
 * job does not take the others down.  If any job of the batch wrote a
 * message file, one syncfs of the data directory's file system precedes
 * the commit, so a committed row always has its durable file (the store's
 * group commit, applied to the queue).  Files to remove go after the
 * commit.  Done callbacks run on the loop, in job order.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kernel/queue/queue-private.h"

struct ts_qjob {
	ts__qjob_fn fn;
	ts__qjob_done_fn done;
	void *arg;
	bool sync;
	int status;
	struct ts_qjob *next;
};

struct ts__qjobs {
	struct ts_kernel *kernel;
	sqlite3 *db;
	char *data_dir;
	struct ts_qjob *waiting, **waiting_tail;
	struct ts_qjob *running; /* the batch on the pool, or NULL */
	bool in_flight;
};

struct ts__qjobs *
ts__qjobs_new(struct ts_kernel *k, sqlite3 *db, const char *data_dir)
{
	struct ts__qjobs *q = ts_xcalloc(1, sizeof(*q));
	q->kernel = k;
	q->db = db;
	q->data_dir = ts_xstrdup(data_dir);
	q->waiting_tail = &q->waiting;
	return q;
}

void
ts__qjob_unlink_later(struct ts__qjob_env *env, char *path)
{
	env->unlink_later = ts_xrealloc(env->unlink_later,
					(env->unlink_count + 1) *
						sizeof(*env->unlink_later));
	env->unlink_later[env->unlink_count++] = path;
}

static bool
ts_qjobs_exec(sqlite3 *db, const char *sql)
{
	return sqlite3_exec(db, sql, NULL, NULL, NULL) == SQLITE_OK;
}

/* syncfs of the file system holding dir: covers every file and dir. */
static int
ts_qjobs_syncfs(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return TS_E_IO;
	int rc = syncfs(fd) != 0 ? TS_E_IO : 0;
	close(fd);
	return rc;
}

/* On a pool thread: run the batch in one transaction. */
static void
ts_qjobs_work(void *arg)
{
	struct ts__qjobs *q = arg;
	struct ts__qjob_env env = { .db = q->db, .data_dir = q->data_dir };
	bool sync = false;
	if (!ts_qjobs_exec(q->db, "BEGIN IMMEDIATE")) {
		for (struct ts_qjob *j = q->running; j != NULL; j = j->next)
			j->status = TS_E_IO;
		return;
	}
	for (struct ts_qjob *j = q->running; j != NULL; j = j->next) {
		size_t unlinks = env.unlink_count;
		(void)ts_qjobs_exec(q->db, "SAVEPOINT job");
		j->status = j->fn(&env, j->arg);
		if (j->status == 0) {
			(void)ts_qjobs_exec(q->db, "RELEASE job");
			sync |= j->sync;
		} else {
			(void)ts_qjobs_exec(q->db, "ROLLBACK TO job");
			(void)ts_qjobs_exec(q->db, "RELEASE job");
			/* A failed job's removals are not to happen. */
			while (env.unlink_count > unlinks)
				free(env.unlink_later[--env.unlink_count]);
		}
	}
	int rc = 0;
	if (sync) {
		char *dir = ts_xasprintf("%s/queue/msg", q->data_dir);
		rc = ts_qjobs_syncfs(dir);
		free(dir);
	}
	if (rc == 0 && !ts_qjobs_exec(q->db, "COMMIT"))
		rc = TS_E_IO;
	if (rc != 0) {
		(void)ts_qjobs_exec(q->db, "ROLLBACK");
		for (struct ts_qjob *j = q->running; j != NULL; j = j->next)
			if (j->status == 0)
				j->status = rc;
	} else {
		for (size_t i = 0; i < env.unlink_count; i++)
			(void)unlink(env.unlink_later[i]);
	}
	for (size_t i = 0; i < env.unlink_count; i++)
		free(env.unlink_later[i]);
	free(env.unlink_later);
}

static void ts_qjobs_kick(struct ts__qjobs *q);

static void
ts_qjobs_done(void *arg, int status)
{
	struct ts__qjobs *q = arg;
	struct ts_qjob *batch = q->running;
	q->running = NULL;
	q->in_flight = false;
	while (batch != NULL) {
		struct ts_qjob *j = batch;
		batch = j->next;
		if (status != 0 && j->status == 0)
			j->status = TS_E_IO; /* the work was cancelled */
		if (j->done != NULL)
			j->done(j->status, j->arg);
		free(j);
	}
	ts_qjobs_kick(q);
}

/* Start the next batch when none is running. */
static void
ts_qjobs_kick(struct ts__qjobs *q)
{
	if (q->in_flight || q->waiting == NULL)
		return;
	q->running = q->waiting;
	q->waiting = NULL;
	q->waiting_tail = &q->waiting;
	q->in_flight = true;
	if (ts_work_submit(&q->kernel->kctx, ts_qjobs_work, ts_qjobs_done,
			   q) != 0) {
		for (struct ts_qjob *j = q->running; j != NULL; j = j->next)
			j->status = TS_E_STATE;
		ts_qjobs_done(q, TS_E_STATE);
	}
}

void
ts__qjobs_add(struct ts__qjobs *q, ts__qjob_fn fn, ts__qjob_done_fn done,
	      void *arg, bool sync)
{
	struct ts_qjob *j = ts_xcalloc(1, sizeof(*j));
	j->fn = fn;
	j->done = done;
	j->arg = arg;
	j->sync = sync;
	*q->waiting_tail = j;
	q->waiting_tail = &j->next;
	ts_qjobs_kick(q);
}

bool
ts__qjobs_busy(const struct ts__qjobs *q)
{
	return q->in_flight || q->waiting != NULL;
}

void
ts__qjobs_free(struct ts__qjobs **qp)
{
	struct ts__qjobs *q = *qp;
	if (q == NULL)
		return;
	*qp = NULL;
	ts__queue_db_close(&q->db);
	free(q->data_dir);
	free(q);
}

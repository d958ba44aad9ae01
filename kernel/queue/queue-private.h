/*
 * kernel/queue/queue-private.h — what the outbound queue's files share.
 *
 * db.c owns the SQLite index and the message files (blocking code, run on
 * the work pool through the serial job runner in jobs.c); queue.c keeps
 * the in-memory schedule on the loop and starts deliveries; delivery.c
 * is the struct ts_delivery a transport sees; dsn.c writes delivery
 * status notifications.  Layout under [core] data_dir:
 *
 *   queue/index.db        messages, recipients (WAL, synchronous=FULL)
 *   queue/msg/<id>        one file per queued message (the spool file,
 *                         linked or copied), removed when it is done
 */
#ifndef TS_QUEUE_PRIVATE_H
#define TS_QUEUE_PRIVATE_H

#include <sqlite3.h>

#include "kernel/kernel.h"

/* Recipient status in the index. */
enum ts__qrcpt_status {
	TS__QRCPT_QUEUED = 0,
	TS__QRCPT_DELIVERED = 1,
	TS__QRCPT_FAILED = 2,
};

/* Settings of the [queue] section. */
struct ts__queue_settings {
	uint64_t retry_first_ms; /* first retry delay; doubles each time */
	uint64_t retry_max_ms;   /* longest delay between attempts */
	uint64_t give_up_ms;     /* age at which temporary failures end */
	uint64_t delay_notice_ms; /* age of a delay DSN; 0: never */
	unsigned max_deliveries; /* deliveries in flight at once */
};

void ts__queue_settings_read(const struct ts_cfg *cfg,
			     struct ts__queue_settings *set_r);

/* One schedulable entry: a message's pending recipients at one domain. */
struct ts__qentry {
	int64_t msg_id;
	char *domain;
	unsigned attempts;  /* attempts made so far */
	int64_t next_ms;    /* unix milliseconds of the next attempt */
	int64_t created_ms; /* when the message was queued */
	bool hold;
	bool busy; /* a delivery (or its bookkeeping) is under way */
	/* schedule.c's links; meaningless in copies */
	size_t heap_index;
	struct ts__qentry *hash_next, *all_prev, *all_next;
};

/* --- schedule.c (the loop) ----------------------------------------------- */

/* The schedule: every entry, by message id and by next attempt time. */
struct ts__qsched {
	struct ts__qentry **buckets; /* hash on msg_id; chains by hash_next */
	size_t bucket_count;	     /* a power of two, or 0 */
	struct ts__qentry **heap;    /* eligible (not busy, not held) */
	size_t heap_count, heap_size;
	struct ts__qentry *all; /* every entry, by all_next */
	size_t count;
};

/*
 * The entry of (msg_id, domain), or with domain NULL the first entry of
 * msg_id; NULL if none.
 */
struct ts__qentry *ts__qsched_find(const struct ts__qsched *s, int64_t msg_id,
				   const char *domain);
/*
 * Take a copy of src into the schedule (not busy), or, when its twin is
 * there, move the twin's next attempt earlier if src's is.  Returns the
 * entry, owned by the schedule.
 */
struct ts__qentry *ts__qsched_add(struct ts__qsched *s,
				  const struct ts__qentry *src);
/* Take e out and free it. */
void ts__qsched_remove(struct ts__qsched *s, struct ts__qentry *e);
/* e's next_ms, hold or busy changed: put it where it now belongs. */
void ts__qsched_update(struct ts__qsched *s, struct ts__qentry *e);
/* The eligible entry with the earliest next attempt, or NULL. */
struct ts__qentry *ts__qsched_next(const struct ts__qsched *s);
/* Free every entry and the tables; s is then empty and reusable. */
void ts__qsched_free(struct ts__qsched *s);

/* --- db.c (blocking; pool threads, or the loop at start-up only) --------- */

/* Open (creating) DATA_DIR/queue/index.db; removes orphan files. */
int ts__queue_db_open(const char *data_dir, sqlite3 **db_r, char **error_r);
void ts__queue_db_close(sqlite3 **db);

/* Every entry with queued recipients; the caller frees with _free. */
int ts__queue_db_entries(sqlite3 *db, struct ts__qentry **entries_r,
			 size_t *count_r);
void ts__queue_entries_free(struct ts__qentry *entries, size_t count);

/* What ts_queue_add stores. */
struct ts__qnew {
	struct ts_txn_mail mail;
	const char *account;
	const char *message_id;
	bool tls_optional;
	const char *prefix;
	size_t prefix_len;
	const char *spool_path;
	uint64_t size;
	const struct ts_txn_rcpt *const *rcpts;
	size_t rcpt_count;
	int64_t now_ms;
};

/*
 * Insert a message and its recipients and link (or copy) its file to
 * queue/msg/<id>.  Inside the caller's transaction; the caller syncs the
 * file system before committing.  Returns 0 with *id_r.
 */
int ts__queue_db_add(sqlite3 *db, const char *data_dir,
		     const struct ts__qnew *m, int64_t *id_r, char **error_r);

/* A delivery's message and pending recipients (loaded for an attempt). */
struct ts__qload {
	int64_t msg_id;
	char *sender, *localpart, *domain_of_sender, *envid;
	char *account, *message_id;
	int ret, body;
	bool smtputf8, requiretls, tls_optional;
	int requiretls_override; /* -1 default, 0 no, 1 yes */
	uint64_t size;
	int64_t created_ms;
	char *prefix; /* header lines sent before the file */
	size_t prefix_len;
	struct ts_txn_rcpt *rcpts;
	int64_t *rcpt_ids;
	bool *delay_notified; /* per recipient: a delay DSN went out */
	size_t rcpt_count;
};

int ts__queue_db_load(sqlite3 *db, int64_t msg_id, const char *domain,
		      struct ts__qload *l_r);
void ts__queue_load_clear(struct ts__qload *l);

/* Path of a queued message's file (the caller frees). */
char *ts__queue_msg_path(const char *data_dir, int64_t msg_id);
/* Read a queued message's prefix (malloc'd) and open its file. */
int ts__queue_db_open_message(sqlite3 *db, const char *data_dir,
			      int64_t msg_id, int *fd_r, char **prefix_r,
			      size_t *prefix_len_r);

/* One recipient's outcome of an attempt, to record. */
struct ts__qresult {
	int64_t rcpt_id;
	int code; /* 2xx, 4xx, 5xx */
	char *enhanced, *text, *remote;
	enum ts__qrcpt_status status; /* decided by the caller */
	int64_t next_ms;
	bool delay_notice; /* a delay DSN covers it now */
};

/*
 * Record results (attempts + 1 for every recipient), and delete the
 * message's row once no recipient is queued: *done_r then says the
 * caller must remove its file after the commit (ts__qjob_unlink_later).
 */
int ts__queue_db_record(sqlite3 *db, const char *data_dir, int64_t msg_id,
			const struct ts__qresult *results, size_t count,
			bool *done_r);

/* --- queue.c and delivery.c ---------------------------------------------- */

/* A recipient's result as a transport reported it. */
struct ts__qoutcome {
	bool set;
	int code;
	char *enhanced, *text, *remote;
};

struct ts_delivery {
	struct ts__queue *queue;
	struct ts__qentry *entry;
	char *id; /* msg_id as text */
	struct ts__qload load;
	struct ts_txn_mail mail; /* views into load */
	struct ts__qoutcome *outcomes; /* one per load.rcpt */
	const struct ts_transport *transport;
	struct ts_ctx *transport_ctx;
	char *instance;
	void *data;
	struct ts_hook_run *route_run; /* queue_route hooks under way */
	/* ts_delivery_note_tls: what the last host offered */
	bool tls_noted, tls_starttls, tls_requiretls;
	char *tls_host;
	bool started; /* the transport's start ran */
	/* tls-policy.c: the combined outbound_tls_policy, its hooks */
	struct ts__tls_policy *policy;
	struct ts_delivery *next; /* the queue's list of live deliveries */
};

/*
 * tls-policy.c: stop the delivery's outbound_tls_policy hooks (its
 * callback will not run) and free the policy; at finish and free.
 */
void ts__delivery_policy_end(struct ts_delivery *d);

struct ts__queue {
	struct ts_kernel *kernel;
	struct ts__queue_settings set;
	char *data_dir;
	char *hostname;
	struct ts__qjobs *jobs;
	struct ts__qsched sched; /* entries stay put while in flight */
	unsigned in_flight;
	struct ts_timer *timer;
	struct ts_delivery *deliveries;
	bool stopping;
};

/* Wall-clock unix milliseconds. */
int64_t ts__queue_now_ms(void);

/* delivery.c: end a delivery: record results, DSNs, reschedule. */
void ts__delivery_new(struct ts__queue *q, struct ts__qentry *e,
		      struct ts__qload *load);
void ts__delivery_free(struct ts_delivery *d);

/* queue.c: start what is due now (after an admin's change). */
void ts__queue_reschedule(struct ts__queue *q);
/*
 * queue.c: take a dropped message's entry out of the schedule, cancelling
 * its delivery; false when its delivery is being recorded (the record
 * finds the message gone and removes the entry then).
 */
bool ts__queue_drop_entry(struct ts__queue *q, struct ts__qentry *e);

/* queue.c: the entry is settled (d's bookkeeping done); schedule again. */
void ts__queue_entry_done(struct ts__queue *q, struct ts__qentry *e,
			  bool gone);

/* dsn.c: write DSN files for a delivery's final or delayed recipients. */
struct ts__dsn_rcpt {
	const struct ts_txn_rcpt *rcpt;
	const struct ts__qoutcome *outcome;
	bool failed; /* failed for good; else delayed */
};

/*
 * Compose a delivery status notification (RFC 3464) about `rcpts` of the
 * message in `load`, for `account`, into a new file under DATA_DIR/queue/;
 * blocks (pool thread).  Returns 0 with *path_r (the caller removes the file after
 * delivering it), or TS_E_IO.
 */
int ts__dsn_write(const char *data_dir, const char *hostname,
		  sqlite3 *db, const struct ts__qload *load,
		  const struct ts__dsn_rcpt *rcpts, size_t count,
		  int64_t retry_until_ms, const char *account, char **path_r);

/* The account a DSN file name (queue/dsn-TAG-HEX.eml) is for, or NULL. */
char *ts__dsn_file_account(const char *name);

/* delivery.c: deliver a written DSN file (path taken) to account. */
void ts__dsn_deliver(struct ts__queue *q, char *path, const char *account);

/* Record what domain's server offered (recipient_domain_tls). */
int ts__queue_db_note_tls(sqlite3 *db, const char *account,
			  const char *domain, const char *host, bool starttls,
			  bool requiretls, int64_t now_ms);

/* --- jobs.c: one SQLite connection, serial jobs, group commit ----------- */

struct ts__qjobs;

/* What a job sees while its batch runs on a pool thread. */
struct ts__qjob_env {
	sqlite3 *db;
	const char *data_dir;
	char **unlink_later; /* removed after a successful commit */
	size_t unlink_count;
};

/* Remove `path` (taken) once the batch has committed. */
void ts__qjob_unlink_later(struct ts__qjob_env *env, char *path);

/* Runs on a pool thread inside a transaction; returns 0 or TS_E_*. */
typedef int (*ts__qjob_fn)(struct ts__qjob_env *env, void *arg);
/* Runs on the loop with the job's status (a failed commit fails all). */
typedef void (*ts__qjob_done_fn)(int status, void *arg);

struct ts__qjobs *ts__qjobs_new(struct ts_kernel *k, sqlite3 *db,
				const char *data_dir);
/*
 * Queue a job; jobs run one batch at a time, each batch in one
 * transaction; `sync` jobs make the batch syncfs the data directory's
 * file system before its commit.
 */
void ts__qjobs_add(struct ts__qjobs *q, ts__qjob_fn fn, ts__qjob_done_fn done,
		   void *arg, bool sync);
/* True while a batch is running or waiting. */
bool ts__qjobs_busy(const struct ts__qjobs *q);
/* Free; only when not busy.  Closes the database. */
void ts__qjobs_free(struct ts__qjobs **q);

#endif

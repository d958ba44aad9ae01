/*
 * tessera/work.h — the work pool and timers.
 *
 * The event loop must never block.  Blocking or heavy work (SQLite, fsync,
 * RSA, classifying a large message) goes to the pool: `work` runs on a
 * pool thread, then `done` runs on the loop thread.  Timers fire on the
 * loop thread.
 */
#ifndef TESSERA_WORK_H
#define TESSERA_WORK_H

#include <tessera/common.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Runs on a pool thread: touch only what `arg` owns; no kernel calls. */
typedef void (*ts_work_fn)(void *arg);
/*
 * Runs on the loop thread afterwards.  status is 0, or TS_E_STATE when the
 * work was dropped before it started because tessera is shutting down.
 */
typedef void (*ts_work_done_fn)(void *arg, int status);

/* Queue work.  Returns 0, or TS_E_STATE during shutdown (done not called). */
int ts_work_submit(struct ts_ctx *ctx, ts_work_fn work, ts_work_done_fn done,
		   void *arg);

struct ts_timer;
typedef void (*ts_timer_fn)(struct ts_timer *timer, void *arg);

/* A stopped timer; free it with ts_timer_free. */
struct ts_timer *ts_timer_new(struct ts_ctx *ctx, ts_timer_fn fn, void *arg);
/*
 * (Re)start: fire after timeout_ms, then every repeat_ms (0: once).
 * Restarting a running timer moves it.
 */
void ts_timer_start(struct ts_timer *timer, uint64_t timeout_ms,
		    uint64_t repeat_ms);
void ts_timer_stop(struct ts_timer *timer);
bool ts_timer_active(const struct ts_timer *timer);
/*
 * Stop and release (the memory goes once the loop has closed the handle);
 * sets *timer to NULL.  Safe inside the timer's own callback.
 */
void ts_timer_free(struct ts_timer **timer);

#ifdef __cplusplus
}
#endif
#endif

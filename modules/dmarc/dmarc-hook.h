/*
 * modules/dmarc/dmarc-hook.h — the module's settings and its hooks.
 */
#ifndef DMARC_HOOK_H
#define DMARC_HOOK_H

#include <stdint.h>

#include <tessera/hook.h>

/* What a failing message's disposition turns into. */
enum dmarc_action {
	DMARC_ACTION_IGNORE,
	DMARC_ACTION_QUARANTINE, /* deliver to quarantine_mailbox */
	DMARC_ACTION_REJECT, /* 550 5.7.1 */
	DMARC_ACTION_TEMPFAIL, /* temperror only: 451 4.7.1 */
};

/* [module dmarc], read at init and reload (ts_ctx_data). */
struct dmarc_settings {
	enum dmarc_action reject_action; /* for p=reject */
	enum dmarc_action quarantine_action; /* for p=quarantine */
	enum dmarc_action temperror_action; /* IGNORE or TEMPFAIL */
	char *quarantine_mailbox;
	uint64_t timeout_ms;
	unsigned max_queries;
	/* aggregate reports (report-hook.c) */
	char *report_address; /* NULL: off */
	uint64_t report_max_size;
	char *report_dir; /* DATA_DIR/dmarc/reports */
};

/* smtp_data, after spf and dkim have attached their results. */
int dmarc_data_hook(struct ts_hook_call *call);

/* deliver_local: a quarantined message goes to quarantine_mailbox. */
int dmarc_deliver_hook(struct ts_hook_call *call);

#endif

/*
 * modules/spf/spf-hook.h — the module's settings and its smtp_mail hook.
 */
#ifndef SPF_HOOK_H
#define SPF_HOOK_H

#include <stdbool.h>
#include <stdint.h>

#include <tessera/hook.h>

enum spf_action {
	SPF_ACTION_IGNORE,
	SPF_ACTION_REJECT,
	SPF_ACTION_TEMPFAIL,
};

/* [module spf], read at init and reload (ts_ctx_data). */
struct spf_settings {
	char *hostname; /* [core] hostname: receiver= and %{r} */
	enum spf_action fail_action, softfail_action, temperror_action;
	enum spf_action helo_fail_action; /* HELO identity fail (2.3) */
	bool check_helo;
	unsigned max_dns, max_void;
	uint64_t timeout_ms;
};

/* The smtp_mail hook (PARALLEL): check HELO and MAIL FROM. */
int spf_mail_hook(struct ts_hook_call *call);

#endif

/*
 * kernel/config-private.h — what kernel/config.c (the snapshot model and
 * its typed access) and kernel/config-parse.c (reading the ini files)
 * share: the two helpers the parser borrows from the model.
 *
 * The snapshot structs themselves are in kernel/kernel.h, because the boot
 * code and the tests read them too.  Nothing but the two config files
 * includes this.
 */
#ifndef TESSERA_CONFIG_PRIVATE_H
#define TESSERA_CONFIG_PRIVATE_H

#include <stdarg.h>

#include "kernel/kernel.h"

/*
 * Record an error on cfg: "where: message", or just the message when
 * where is NULL.  Used by ts__cfg_error, ts_cfg_error and the parser's
 * `file:line` errors.
 */
void ts__cfg_verror(struct ts_cfg *cfg, const char *where, const char *fmt,
		    va_list ap);

/*
 * The entry of key as written in s (defaults are not entries), or NULL.
 * Not const, so the parser can override a value from an earlier file.
 */
struct ts__cfg_entry *ts__cfg_entry_find(const struct ts_cfg_sect *s,
					 const char *key);

#endif

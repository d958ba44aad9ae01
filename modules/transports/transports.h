/*
 * modules/transports/transports.h — what the files of the transports
 * module share: its settings (transports.c) and the "direct" transport
 * (direct.c), which uses the pure target selection (mx.c) and the pure
 * SMTP client (client.c).  Nothing here is visible outside the module.
 */
#ifndef TRANSPORTS_TRANSPORTS_H
#define TRANSPORTS_TRANSPORTS_H

#include <tessera/tessera.h>
#include <tessera/queue.h>

#include "mx.h"

/* The module's settings, rebuilt on reload. */
struct tr_settings {
	char *helo_name;
	unsigned direct_port;
	uint64_t connect_timeout_ms;
	uint64_t command_timeout_ms;
	uint64_t data_timeout_ms;
	enum tr_family family;
	bool starttls;
	char *tls_ca_file; /* NULL: the system's trust store */
};

/* The settings in force (ctx is the module's). */
const struct tr_settings *tr_settings(const struct ts_ctx *ctx);

/* The "direct" transport service (direct.c). */
extern const struct ts_transport tr_direct_transport;

#endif

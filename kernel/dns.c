/*
 * kernel/dns.c — placeholder until the resolver lands.
 */
#include "config.h"

#include "kernel/dns.h"

const struct ts_cfg_key ts__dns_keys[] = {
	{ .name = NULL },
};

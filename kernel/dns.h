/*
 * kernel/dns.h — the kernel side of the asynchronous resolver (dns.c).
 */
#ifndef TESSERA_KERNEL_DNS_H
#define TESSERA_KERNEL_DNS_H

#include "kernel/kernel.h"

/* Keys of the [dns] section. */
extern const struct ts_cfg_key ts__dns_keys[];

#endif

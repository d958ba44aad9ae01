/*
 * tessera/tessera.h — everything a tessera module may use.
 *
 * Include this one header; build with
 *   cc -shared -fPIC $(pkg-config --cflags tessera-plugin) mod.c -o mod.so
 * See doc/plugin-guide.md.
 */
#ifndef TESSERA_TESSERA_H
#define TESSERA_TESSERA_H

#include <tessera/common.h>
#include <tessera/config.h>
#include <tessera/module.h>
#include <tessera/log.h>
#include <tessera/hook.h>
#include <tessera/service.h>
#include <tessera/work.h>
#include <tessera/conn.h>
#include <tessera/tls.h>
#include <tessera/dns.h>
#include <tessera/store.h>
#include <tessera/sasl.h>
#include <tessera/mime.h>
#include <tessera/cli.h>
#include <tessera/txn.h>
#include <tessera/queue.h>

#endif

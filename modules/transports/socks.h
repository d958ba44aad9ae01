/*
 * modules/transports/socks.h — SOCKS5 (RFC 1928) as pure encoders and
 * decoders, for the "socks" transport: direct delivery whose TCP
 * connections go through a proxy.  No authentication method is offered
 * (method 0x00, "no authentication required"); the request is CONNECT
 * to a numeric IPv4 or IPv6 address.  direct.c moves the bytes; the
 * tests (tests/test-socks.c) check the encodings.
 */
#ifndef TRANSPORTS_SOCKS_H
#define TRANSPORTS_SOCKS_H

#include <stddef.h>
#include <stdint.h>

/* Longest request: VER CMD RSV ATYP + 16 address bytes + 2 port bytes. */
#define TR_SOCKS5_REQUEST_MAX 22
/* Bytes of the reply to read first: VER REP RSV ATYP + 1 address byte. */
#define TR_SOCKS5_REPLY_HEAD 5

/* The client's greeting: version 5, one method, "no authentication". */
size_t tr_socks5_greeting(uint8_t out[3]);

/*
 * Check the proxy's method selection (2 bytes).  0, or TS_E_INVAL with
 * *why_r (a static text): wrong version, or no acceptable method (0xFF).
 */
int tr_socks5_method_reply(const uint8_t *buf, size_t len, const char **why_r);

/*
 * A CONNECT request to the numeric address `addr` (IPv4 or IPv6) and
 * `port`, into out (TR_SOCKS5_REQUEST_MAX bytes); *len_r its length.
 * 0, or TS_E_INVAL when addr is not a numeric address.
 */
int tr_socks5_connect_request(const char *addr, unsigned port, uint8_t *out,
			      size_t *len_r);

/*
 * Check the first TR_SOCKS5_REPLY_HEAD bytes of the reply: 0 with
 * *rest_r, the bytes still to read (rest of the bound address and the
 * port), or TS_E_INVAL with *why_r: a malformed reply, or the proxy's
 * refusal in words ("connection refused", "host unreachable", …).
 */
int tr_socks5_reply(const uint8_t *buf, size_t len, size_t *rest_r,
		    const char **why_r);

#endif

/*
 * modules/transports/socks.c — the bytes of a SOCKS5 CONNECT (RFC 1928
 * sections 3 to 6), without a socket: see socks.h.  direct.c sends
 * what these build and hands them what the proxy answers.
 */
#include "config.h"

#include <arpa/inet.h>
#include <string.h>

#include <tessera/common.h>

#include "socks.h"

size_t
tr_socks5_greeting(uint8_t out[3])
{
	out[0] = 5; /* VER */
	out[1] = 1; /* NMETHODS */
	out[2] = 0; /* NO AUTHENTICATION REQUIRED */
	return 3;
}

int
tr_socks5_method_reply(const uint8_t *buf, size_t len, const char **why_r)
{
	if (len != 2 || buf[0] != 5) {
		*why_r = "not a SOCKS5 proxy (bad method selection)";
		return TS_E_INVAL;
	}
	if (buf[1] != 0) {
		*why_r = "the SOCKS5 proxy requires authentication";
		return TS_E_INVAL;
	}
	return 0;
}

int
tr_socks5_connect_request(const char *addr, unsigned port, uint8_t *out,
			  size_t *len_r)
{
	uint8_t a[16];
	size_t n;
	out[0] = 5; /* VER */
	out[1] = 1; /* CMD: CONNECT */
	out[2] = 0; /* RSV */
	if (inet_pton(AF_INET, addr, a) == 1) {
		out[3] = 1; /* ATYP: IPv4 */
		n = 4;
	} else if (inet_pton(AF_INET6, addr, a) == 1) {
		out[3] = 4; /* ATYP: IPv6 */
		n = 16;
	} else {
		return TS_E_INVAL;
	}
	if (port == 0 || port > 65535)
		return TS_E_INVAL;
	memcpy(out + 4, a, n);
	out[4 + n] = (uint8_t)(port >> 8);
	out[5 + n] = (uint8_t)(port & 0xff);
	*len_r = 6 + n;
	return 0;
}

/* RFC 1928 section 6, the REP field. */
static const char *
tr_socks5_rep_text(uint8_t rep)
{
	switch (rep) {
	case 1:
		return "SOCKS5 proxy: general failure";
	case 2:
		return "SOCKS5 proxy: connection not allowed by ruleset";
	case 3:
		return "SOCKS5 proxy: network unreachable";
	case 4:
		return "SOCKS5 proxy: host unreachable";
	case 5:
		return "SOCKS5 proxy: connection refused";
	case 6:
		return "SOCKS5 proxy: TTL expired";
	case 7:
		return "SOCKS5 proxy: command not supported";
	case 8:
		return "SOCKS5 proxy: address type not supported";
	default:
		return "SOCKS5 proxy: unknown error";
	}
}

int
tr_socks5_reply(const uint8_t *buf, size_t len, size_t *rest_r,
		const char **why_r)
{
	if (len != TR_SOCKS5_REPLY_HEAD || buf[0] != 5 || buf[2] != 0) {
		*why_r = "malformed SOCKS5 reply";
		return TS_E_INVAL;
	}
	if (buf[1] != 0) {
		*why_r = tr_socks5_rep_text(buf[1]);
		return TS_E_INVAL;
	}
	switch (buf[3]) {
	case 1: /* IPv4: 4 address bytes, one read */
		*rest_r = 3 + 2;
		return 0;
	case 4: /* IPv6 */
		*rest_r = 15 + 2;
		return 0;
	case 3: /* a name: its length byte was the one read */
		if (buf[4] == 0)
			break;
		*rest_r = (size_t)buf[4] + 2;
		return 0;
	default:
		break;
	}
	*why_r = "malformed SOCKS5 reply (address type)";
	return TS_E_INVAL;
}

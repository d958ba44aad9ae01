/*
 * modules/transports/tests/test-socks.c — SOCKS5 (RFC 1928) encodings
 * (socks.c): greeting, method selection, CONNECT requests for IPv4 and
 * IPv6, and replies — success with each bound-address type, every
 * refusal code, and malformed answers.
 */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <tessera/common.h>

#include "../socks.h"

static void
test_greeting_and_method(void **state)
{
	(void)state;
	uint8_t g[3];
	assert_int_equal(tr_socks5_greeting(g), 3);
	assert_memory_equal(g, "\x05\x01\x00", 3);
	const char *why = NULL;
	assert_int_equal(
		tr_socks5_method_reply((const uint8_t *)"\x05\x00", 2, &why),
		0);
	assert_int_equal(
		tr_socks5_method_reply((const uint8_t *)"\x05\xff", 2, &why),
		TS_E_INVAL);
	assert_string_equal(why, "the SOCKS5 proxy requires authentication");
	assert_int_equal(
		tr_socks5_method_reply((const uint8_t *)"\x04\x00", 2, &why),
		TS_E_INVAL);
	assert_string_equal(why, "not a SOCKS5 proxy (bad method selection)");
	assert_int_equal(
		tr_socks5_method_reply((const uint8_t *)"\x05", 1, &why),
		TS_E_INVAL);
}

static void
test_connect_request(void **state)
{
	(void)state;
	uint8_t out[TR_SOCKS5_REQUEST_MAX];
	size_t len;
	assert_int_equal(tr_socks5_connect_request("192.0.2.7", 25, out, &len),
			 0);
	assert_int_equal(len, 10);
	assert_memory_equal(out, "\x05\x01\x00\x01\xc0\x00\x02\x07\x00\x19",
			    10);
	assert_int_equal(
		tr_socks5_connect_request("2001:db8::1", 2525, out, &len), 0);
	assert_int_equal(len, 22);
	assert_memory_equal(out,
			    "\x05\x01\x00\x04"
			    "\x20\x01\x0d\xb8\x00\x00\x00\x00"
			    "\x00\x00\x00\x00\x00\x00\x00\x01"
			    "\x09\xdd",
			    22);
	assert_int_equal(
		tr_socks5_connect_request("mx.example.org", 25, out, &len),
		TS_E_INVAL);
	assert_int_equal(tr_socks5_connect_request("192.0.2.7", 0, out, &len),
			 TS_E_INVAL);
	assert_int_equal(
		tr_socks5_connect_request("192.0.2.7", 65536, out, &len),
		TS_E_INVAL);
}

static void
test_reply(void **state)
{
	(void)state;
	size_t rest = 0;
	const char *why = NULL;
	assert_int_equal(
		tr_socks5_reply((const uint8_t *)"\x05\x00\x00\x01\x7f", 5,
				&rest, &why),
		0);
	assert_int_equal(rest, 5);
	assert_int_equal(
		tr_socks5_reply((const uint8_t *)"\x05\x00\x00\x04\x20", 5,
				&rest, &why),
		0);
	assert_int_equal(rest, 17);
	assert_int_equal(
		tr_socks5_reply((const uint8_t *)"\x05\x00\x00\x03\x09", 5,
				&rest, &why),
		0);
	assert_int_equal(rest, 11);
	static const char *const texts[] = {
		NULL,
		"SOCKS5 proxy: general failure",
		"SOCKS5 proxy: connection not allowed by ruleset",
		"SOCKS5 proxy: network unreachable",
		"SOCKS5 proxy: host unreachable",
		"SOCKS5 proxy: connection refused",
		"SOCKS5 proxy: TTL expired",
		"SOCKS5 proxy: command not supported",
		"SOCKS5 proxy: address type not supported",
		"SOCKS5 proxy: unknown error",
	};
	for (uint8_t rep = 1; rep <= 9; rep++) {
		uint8_t b[5] = { 5, rep, 0, 1, 0 };
		assert_int_equal(tr_socks5_reply(b, 5, &rest, &why),
				 TS_E_INVAL);
		assert_string_equal(why, texts[rep]);
	}
	static const uint8_t bad[][5] = {
		{ 4, 0, 0, 1, 0 }, /* version */
		{ 5, 0, 1, 1, 0 }, /* reserved */
		{ 5, 0, 0, 2, 0 }, /* address type */
		{ 5, 0, 0, 3, 0 }, /* empty name */
	};
	for (size_t i = 0; i < 4; i++) {
		why = NULL;
		assert_int_equal(tr_socks5_reply(bad[i], 5, &rest, &why),
				 TS_E_INVAL);
		assert_non_null(why);
	}
	assert_int_equal(tr_socks5_reply(bad[0], 4, &rest, &why), TS_E_INVAL);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_greeting_and_method),
		cmocka_unit_test(test_connect_request),
		cmocka_unit_test(test_reply),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

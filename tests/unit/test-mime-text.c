/*
 * tests/unit/test-mime-text.c — the text side of the kernel MIME library:
 * header-field iteration and unfolding, address lists, RFC 2047 encoded
 * words, Content-Type parameters with RFC 2231, the quoted-printable and
 * base64 stream decoders split at every byte, the text decoder, case
 * folding and SEARCH over messages in memory and in a file.
 */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include <tessera/mime.h>

#define L(s) s "\r\n"
#define E_ACUTE "\xc3\xa9" /* é */
#define EURO "\xe2\x82\xac" /* € */

/* --- header fields -------------------------------------------------------- */

static void
test_header_iter(void **state)
{
	(void)state;
	static const char hdr[] =
		L("Subject: one") L(" two") "X-LF: bare\n" L("no colon here")
			L("From:x@y") L("Empty:") L("Name With Space : v") L("")
				L("body: not a field");
	struct ts_mime_header_iter it;
	struct ts_mime_field f;
	const char *names[] = { "Subject", "X-LF", "From", "Empty",
				"Name With Space" };
	const char *values[] = { " one\r\n two", " bare", "x@y", "", " v" };
	size_t n = 0;

	ts_mime_header_init(&it, hdr, strlen(hdr));
	while (ts_mime_header_next(&it, &f)) {
		assert_true(n < 5);
		assert_int_equal(f.name_len, strlen(names[n]));
		assert_memory_equal(f.name, names[n], f.name_len);
		assert_int_equal(f.value_len, strlen(values[n]));
		assert_memory_equal(f.value, values[n], f.value_len);
		n++;
	}
	assert_int_equal(n, 5);
	assert_string_equal(hdr + it.pos, L("body: not a field"));
	assert_false(ts_mime_header_next(&it, &f));

	/* Field offsets, case-insensitive names, no empty line at all. */
	static const char h2[] = "A: 1\r\nb:2";
	ts_mime_header_init(&it, h2, strlen(h2));
	assert_true(ts_mime_header_next(&it, &f));
	assert_int_equal(f.start, 0);
	assert_int_equal(f.end, 6);
	assert_true(ts_mime_field_is(&f, "a"));
	assert_true(ts_mime_header_next(&it, &f));
	assert_true(ts_mime_field_is(&f, "B"));
	assert_false(ts_mime_field_is(&f, "BB"));
	assert_int_equal(f.end, strlen(h2));
	assert_false(ts_mime_header_next(&it, &f));
	assert_int_equal(it.pos, strlen(h2));

	/* HEADER.FIELDS and HEADER.FIELDS.NOT. */
	static const char h3[] = L("Subject: a") L("  folded") L("To: x@y")
		L("subject: again") "From: last";
	const char *only[] = { "SUBJECT", "from" };
	struct ts_mime_buf out = { 0 };
	ts_mime_header_filter(h3, strlen(h3), only, 2, false, &out);
	assert_string_equal(out.data,
			    L("Subject: a") L("  folded") L("subject: again")
				    L("From: last") L(""));
	out.len = 0;
	ts_mime_header_filter(h3, strlen(h3), only, 2, true, &out);
	assert_string_equal(out.data, L("To: x@y") L(""));
	out.len = 0;
	ts_mime_header_filter("", 0, only, 2, true, &out);
	assert_string_equal(out.data, L(""));
	ts_mime_buf_free(&out);

	size_t len;
	char *u = ts_mime_unfold(" a\r\n  b\n\tc  \r\n", 14, &len);
	assert_string_equal(u, "a  b\tc");
	assert_int_equal(len, 6);
	free(u);
	u = ts_mime_unfold("", 0, NULL);
	assert_string_equal(u, "");
	free(u);
}

/* --- addresses
 * ------------------------------------------------------------------ */

/* A list rendered "kind|name|route|mailbox|domain|invalid;" per element. */
static char *
render(const char *value)
{
	struct ts_mime_address *list =
		ts_mime_address_parse(value, strlen(value));
	struct ts_mime_buf b = { 0 };
	ts_mime_buf_add(&b, "", 0);
	for (struct ts_mime_address *a = list; a != NULL; a = a->next) {
		char *s = NULL;
		if (asprintf(&s, "%d|%s|%s|%s|%s|%d;", (int)a->kind,
			     a->name ? a->name : "-", a->route ? a->route : "-",
			     a->mailbox ? a->mailbox : "-",
			     a->domain ? a->domain : "-", a->invalid) < 0)
			fail();
		ts_mime_buf_add(&b, s, strlen(s));
		free(s);
	}
	ts_mime_address_free(&list);
	assert_null(list);
	return b.data;
}

static void
expect_addresses(const char *value, const char *want)
{
	char *got = render(value);
	assert_string_equal(got, want);
	free(got);
}

static void
test_addresses(void **state)
{
	(void)state;
	expect_addresses("a@b.example", "0|-|-|a|b.example|0;");
	expect_addresses("Alice <alice@example.com>",
			 "0|Alice|-|alice|example.com|0;");
	expect_addresses("\"Doe, J.\" <j@x>, k@y (Kay)",
			 "0|Doe, J.|-|j|x|0;0|Kay|-|k|y|0;");
	expect_addresses("John Q. Public <jqp@example.com>",
			 "0|John Q. Public|-|jqp|example.com|0;");
	expect_addresses("<@a.example,@b.example:u@c.example>",
			 "0|-|@a.example,@b.example|u|c.example|0;");
	expect_addresses("\"quoted local\"@example.com",
			 "0|-|-|quoted local|example.com|0;");
	expect_addresses("u@[192.0.2.1]", "0|-|-|u|[192.0.2.1]|0;");
	expect_addresses("Group: a@x, b@y;, c@z",
			 "1|-|-|Group|-|0;0|-|-|a|x|0;0|-|-|b|y|0;"
			 "2|-|-|-|-|0;0|-|-|c|z|0;");
	expect_addresses("empty:;", "1|-|-|empty|-|0;2|-|-|-|-|0;");
	expect_addresses("unclosed: a@x", "1|-|-|unclosed|-|0;0|-|-|a|x|0;"
					  "2|-|-|-|-|0;");
	/* Breakage. */
	expect_addresses("", "");
	expect_addresses(" , ,, ", "");
	expect_addresses("(just a comment)", "");
	expect_addresses("nodomain", "0|-|-|nodomain||1;");
	expect_addresses("two words", "0|-|-|two words||1;");
	expect_addresses("Name <unclosed@example.com",
			 "0|Name|-|unclosed|example.com|1;");
	expect_addresses("<>", "0|-|-|||0;");
	expect_addresses("a@", "0|-|-|a||1;");
	expect_addresses("Bad, Name <x@y>", "0|-|-|Bad||1;0|Name|-|x|y|0;");
	expect_addresses("\"unterminated <a@b>",
			 "0|-|-|unterminated <a@b>||1;");
	expect_addresses("a@b; c@d", "0|-|-|a|b|0;0|-|-|c|d|0;");
	expect_addresses("=?utf-8?q?Andr=C3=A9?= <andre@example.fr>",
			 "0|=?utf-8?q?Andr=C3=A9?=|-|andre|example.fr|0;");
	expect_addresses("first.last@sub.example.com",
			 "0|-|-|first.last|sub.example.com|0;");

	/* Nothing hostile crashes or grows without bound. */
	static const char junk[] = "<<<>>>@@@,,,;;;:::\"\"\"((()))[[[]]]\\";
	char buf[64];
	for (size_t len = 0; len <= strlen(junk); len++)
		for (size_t off = 0; off + len <= strlen(junk); off++) {
			memcpy(buf, junk + off, len);
			struct ts_mime_address *l =
				ts_mime_address_parse(buf, len);
			ts_mime_address_free(&l);
		}
	struct ts_mime_buf many = { 0 };
	for (int i = 0; i < 3000; i++)
		ts_mime_buf_add(&many, "a@b,", 4);
	struct ts_mime_address *l = ts_mime_address_parse(many.data, many.len);
	size_t count = 0;
	for (struct ts_mime_address *a = l; a != NULL; a = a->next)
		count++;
	assert_int_equal(count, TS_MIME_MAX_ADDRESSES);
	ts_mime_address_free(&l);
	ts_mime_buf_free(&many);
}

/* --- RFC 2047
 * ------------------------------------------------------------------- */

static void
expect_words(const char *in, const char *want)
{
	size_t len;
	char *got = ts_mime_decode_words(in, strlen(in), &len);
	assert_string_equal(got, want);
	assert_int_equal(len, strlen(want));
	free(got);
}

static void
test_encoded_words(void **state)
{
	(void)state;
	expect_words("plain text", "plain text");
	expect_words("=?UTF-8?Q?caf=C3=A9?=", "caf" E_ACUTE);
	expect_words("=?utf-8?b?Y2Fmw6k=?=", "caf" E_ACUTE);
	expect_words("=?ISO-8859-1?Q?a=E9_b?=", "a" E_ACUTE " b");
	/* Adjacent words: the white space between them goes. */
	expect_words("=?UTF-8?Q?a?= =?UTF-8?Q?b?=", "ab");
	expect_words("=?UTF-8?Q?a?=\r\n\t=?UTF-8?Q?b?=", "ab");
	/* A character split between two words. */
	expect_words("=?UTF-8?B?4oI=?= =?UTF-8?B?rA==?=", EURO);
	/* Different charsets next to each other. */
	expect_words("=?iso-8859-1?q?=E9?= =?utf-8?q?=C3=A9?=",
		     E_ACUTE E_ACUTE);
	/* Text between words stays, with its spaces. */
	expect_words("Re: =?UTF-8?Q?x?= and =?UTF-8?Q?y?=!", "Re: x and y!");
	/* Language suffix (RFC 2231 section 5). */
	expect_words("=?UTF-8*en?Q?hi?=", "hi");
	/* Malformed or unknown: left as written. */
	expect_words("=?UTF-8?X?abc?=", "=?UTF-8?X?abc?=");
	expect_words("=?UTF-8?Q?no end", "=?UTF-8?Q?no end");
	expect_words("=?no-such-charset?Q?x?=", "=?no-such-charset?Q?x?=");
	expect_words("=??Q?x?=", "=??Q?x?=");
	expect_words("=?UTF-8?Q?sp ace?=", "=?UTF-8?Q?sp ace?=");
	/* Bad bytes inside a word become U+FFFD; outside, they stay. */
	expect_words("=?UTF-8?Q?=FF?=", "\xef\xbf\xbd");
	expect_words("raw \xff", "raw \xff");
	expect_words("=?utf-8?b?***?=", "=?utf-8?b?***?=");
	expect_words("raw UTF-8 " E_ACUTE, "raw UTF-8 " E_ACUTE);
	/* Q "=" not followed by hex stays. */
	expect_words("=?UTF-8?Q?a=Zb?=", "a=Zb");
	/* Windows-1252 for Latin-1: the euro sign at 0x80. */
	expect_words("=?iso-8859-1?q?=80?=", EURO);

	struct ts_mime_buf b = { 0 };
	assert_false(ts_mime_charset_to_utf8("x-unknown", "a", 1, &b));
	assert_int_equal(b.len, 0);
	assert_true(ts_mime_charset_to_utf8("koi8-r", "\xc1", 1, &b));
	assert_string_equal(b.data, "\xd0\xb0"); /* а */
	ts_mime_buf_free(&b);
}

/* --- Content-Type parameters
 * --------------------------------------------------- */

static void
test_params(void **state)
{
	(void)state;
	static const char ct[] =
		"Application/X-Thing ; name*0*=utf-8'de'%E2%82%AC; "
		"name*1*=%20rates; name*2=\" 100%\"; plain=\"a \\\"q\\\"\"; "
		"bad; =novalue; filename=\"=?UTF-8?Q?caf=C3=A9?=.txt\"; "
		"lone*=''abc; x=unquoted value  ";
	char *type, *subtype;
	struct ts_mime_param *p;
	size_t n;

	ts_mime_content_type_parse(ct, strlen(ct), &type, &subtype, &p, &n);
	assert_string_equal(type, "Application");
	assert_string_equal(subtype, "X-Thing");
	assert_int_equal(n, 5);
	assert_string_equal(p[0].name, "name*");
	assert_string_equal(p[0].raw_value, "utf-8'de'%E2%82%AC%20rates 100%");
	assert_string_equal(p[0].value, EURO " rates 100%");
	assert_string_equal(p[0].language, "de");
	assert_string_equal(p[1].name, "plain");
	assert_string_equal(p[1].value, "a \"q\"");
	assert_string_equal(p[2].name, "filename");
	assert_string_equal(p[2].raw_value, "=?UTF-8?Q?caf=C3=A9?=.txt");
	assert_string_equal(p[2].value, "caf" E_ACUTE ".txt");
	assert_string_equal(p[3].name, "lone*");
	assert_string_equal(p[3].value, "abc");
	assert_null(p[3].language);
	assert_string_equal(p[4].value, "unquoted value");
	assert_string_equal(ts_mime_param_get(p, n, "NAME"),
			    EURO " rates 100%");
	assert_string_equal(ts_mime_param_get(p, n, "x"), "unquoted value");
	assert_null(ts_mime_param_get(p, n, "nam"));
	ts_mime_params_free(p, n);
	free(type);
	free(subtype);

	/* Unusable types. */
	static const char *const bad[] = {
		"", "text", "text/", "/plain", "text/plain junk", "te xt/plain"
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		ts_mime_content_type_parse(bad[i], strlen(bad[i]), &type,
					   &subtype, &p, &n);
		assert_null(type);
		assert_null(subtype);
		assert_int_equal(n, 0);
	}
	/* RFC 2045's own example: a comment after the value. */
	static const char ct3[] = "text/plain; charset=us-ascii (Plain text)";
	ts_mime_content_type_parse(ct3, strlen(ct3), &type, &subtype, &p, &n);
	assert_int_equal(n, 1);
	assert_string_equal(p[0].value, "us-ascii");
	ts_mime_params_free(p, n);
	free(type);
	free(subtype);

	/* Disposition: one token. */
	ts_mime_content_type_parse("attachment;filename=a.txt", 25, &type, NULL,
				   &p, &n);
	assert_string_equal(type, "attachment");
	assert_int_equal(n, 1);
	assert_string_equal(p[0].value, "a.txt");
	ts_mime_params_free(p, n);
	free(type);

	/* An unknown RFC 2231 charset keeps the bytes (made valid UTF-8). */
	static const char ct2[] = "text/plain; t*=x-nope''%41%FF";
	ts_mime_content_type_parse(ct2, strlen(ct2), &type, &subtype, &p, &n);
	assert_string_equal(p[0].value, "A\xef\xbf\xbd");
	ts_mime_params_free(p, n);
	free(type);
	free(subtype);
}

/* --- stream decoders ------------------------------------------------------ */

typedef void (*decode_fn)(const char *in, size_t len, size_t split,
			  struct ts_mime_buf *out);

static void
qp_split(const char *in, size_t len, size_t split, struct ts_mime_buf *out)
{
	struct ts_mime_qp qp = { 0 };
	ts_mime_qp_decode(&qp, in, split, out);
	ts_mime_qp_decode(&qp, in + split, len - split, out);
	ts_mime_qp_finish(&qp, out);
}

static void
b64_split(const char *in, size_t len, size_t split, struct ts_mime_buf *out)
{
	struct ts_mime_base64 b = { 0 };
	ts_mime_base64_decode(&b, in, split, out);
	ts_mime_base64_decode(&b, in + split, len - split, out);
	ts_mime_base64_finish(&b, out);
}

/* Decode in with every split into two chunks, and byte by byte. */
static void
expect_decoded(decode_fn fn, const char *in, const char *want, size_t wlen)
{
	size_t len = strlen(in);
	for (size_t split = 0; split <= len; split++) {
		struct ts_mime_buf out = { 0 };
		fn(in, len, split, &out);
		assert_int_equal(out.len, wlen);
		assert_memory_equal(out.data, want, wlen);
		ts_mime_buf_free(&out);
	}
}

static void
expect_qp_bytewise(const char *in, const char *want)
{
	struct ts_mime_qp qp = { 0 };
	struct ts_mime_buf out = { 0 };
	for (size_t i = 0; in[i] != '\0'; i++)
		ts_mime_qp_decode(&qp, in + i, 1, &out);
	ts_mime_qp_finish(&qp, &out);
	assert_string_equal(out.data, want);
	ts_mime_buf_free(&out);
}

#define QP(in, want)                                              \
	do {                                                      \
		expect_decoded(qp_split, in, want, strlen(want)); \
		expect_qp_bytewise(in, want);                     \
	} while (0)

static void
test_qp(void **state)
{
	(void)state;
	QP("plain", "plain");
	QP("caf=C3=A9", "caf" E_ACUTE);
	QP("lower=c3=a9", "lower" E_ACUTE);
	QP("soft=\r\nbreak", "softbreak");
	QP("soft=\nbreak", "softbreak");
	QP("soft= \t\r\nbreak", "softbreak");
	QP("trailing   \r\nspace\t\n", "trailing\r\nspace\n");
	QP("keep  inner  space", "keep  inner  space");
	QP("a=3", "a=3");
	QP("=ZZ=4x=", "=ZZ=4x");
	QP("= x", "= x");
	QP("end=", "end");
	QP("x =3D y", "x = y");
	QP("cr\ronly", "cr\ronly");
	QP("==41", "=A");
	QP("a \r", "a");
	/* A white-space run longer than the decoder holds goes through. */
	char in[300], want[300];
	memset(in, ' ', 200);
	strcpy(in + 200, "x\r\n");
	memset(want, ' ', 200);
	strcpy(want + 200, "x\r\n");
	QP(in, want);
}

static void
test_base64(void **state)
{
	(void)state;
	expect_decoded(b64_split, "aGVsbG8=", "hello", 5);
	expect_decoded(b64_split, "aGVs\r\nbG8gd29y\r\nbGQ=\r\n", "hello world",
		       11);
	expect_decoded(b64_split, "aGVsbG8", "hello", 5);
	expect_decoded(b64_split, "aG!V*sb G8=", "hello", 5);
	expect_decoded(b64_split, "YQ==Yg==", "ab", 2);
	expect_decoded(b64_split, "AP8A", "\0\xff\0", 3);
	expect_decoded(b64_split, "", "", 0);
	expect_decoded(b64_split, "====", "", 0);
	expect_decoded(b64_split, "Y", "", 0);

	/* Long input through the internal block buffer. */
	struct ts_mime_buf in = { 0 }, out = { 0 };
	for (int i = 0; i < 1000; i++)
		ts_mime_buf_add(&in, "QUJD", 4);
	struct ts_mime_base64 b = { 0 };
	ts_mime_base64_decode(&b, in.data, in.len, &out);
	ts_mime_base64_finish(&b, &out);
	assert_int_equal(out.len, 3000);
	assert_memory_equal(out.data + 2997, "ABC", 3);
	ts_mime_buf_free(&in);
	ts_mime_buf_free(&out);
}

/* A part with the given encoding and charset, as the parser makes it. */
static struct ts_mime_message *
text_part(const char *cte, const char *charset)
{
	char *hdr = NULL;
	if (asprintf(&hdr,
		     "Content-Type: text/plain%s%s\r\n"
		     "Content-Transfer-Encoding: %s\r\n\r\n",
		     charset ? "; charset=" : "", charset ? charset : "",
		     cte) < 0)
		fail();
	struct ts_mime_message *msg =
		ts_mime_parse_buffer(hdr, strlen(hdr), NULL);
	free(hdr);
	return msg;
}

static void
expect_text(const char *cte, const char *charset, const char *body,
	    const char *want)
{
	struct ts_mime_message *msg = text_part(cte, charset);
	size_t len = strlen(body);
	for (size_t chunk = 1; chunk <= len + 1; chunk++) {
		struct ts_mime_text_decoder *d =
			ts_mime_text_decoder_new(msg->root);
		struct ts_mime_buf out = { 0 };
		for (size_t i = 0; i < len; i += chunk)
			ts_mime_text_decoder_feed(
				d, body + i, len - i < chunk ? len - i : chunk,
				&out);
		ts_mime_text_decoder_finish(&d, &out);
		assert_null(d);
		assert_string_equal(out.data, want);
		ts_mime_buf_free(&out);
	}
	ts_mime_message_free(&msg);
}

static void
test_text_decoder(void **state)
{
	(void)state;
	expect_text("7bit", NULL, "plain\r\n", "plain\r\n");
	expect_text("8bit", "utf-8", "caf" E_ACUTE " " EURO,
		    "caf" E_ACUTE " " EURO);
	expect_text("quoted-printable", "iso-8859-1", "caf=E9 =80",
		    "caf" E_ACUTE " " EURO);
	expect_text("base64", "utf-8",
		    "4oKsIOKCrCDigqw=", EURO " " EURO " " EURO);
	expect_text("BASE64", "UTF-8", "4oKs\r\nIA==", EURO " ");
	expect_text("8bit", "utf-8", "bad \xff byte", "bad \xef\xbf\xbd byte");
	expect_text("8bit", "utf-8", "cut \xe2\x82",
		    "cut \xef\xbf\xbd\xef\xbf\xbd");
	expect_text("8bit", "x-unknown-charset", "as utf-8 " E_ACUTE,
		    "as utf-8 " E_ACUTE);
	expect_text("8bit", "shift_jis", "\x82\xa0", "\xe3\x81\x82"); /* あ */
	expect_text("x-uuencode", "utf-8", "as is=41", "as is=41");
	expect_text("7bit", "iso-2022-jp", "\x1b$B$\"\x1b(B!", "\xe3\x81\x82!");
}

static void
test_binary_decoder(void **state)
{
	(void)state;
	static const char m[] = L("Content-Type: multipart/mixed; boundary=z")
		L("") L("--z") L("Content-Transfer-Encoding: base64") L("") L(
			"AP8=") L("--z")
			L("Content-Transfer-Encoding: Quoted-Printable") L("")
				L("=FF=00x") L("--z")
					L("Content-Transfer-Encoding: x-custom")
						L("") L("raw") L("--z--");
	struct ts_mime_message *msg = ts_mime_parse_buffer(m, strlen(m), NULL);
	const struct ts_mime_part *p = msg->root->children;
	static const char *const want[] = { "\0\xff", "\xff\0x", "raw" };
	static const size_t wlen[] = { 2, 3, 3 };
	static const bool known[] = { true, true, false };
	for (int i = 0; i < 3; i++, p = p->next) {
		struct ts_mime_text_decoder *d = ts_mime_binary_decoder_new(p);
		struct ts_mime_buf out = { 0 };
		ts_mime_text_decoder_feed(d, m + p->body_start,
					  (size_t)p->body_size, &out);
		ts_mime_text_decoder_finish(&d, &out);
		assert_int_equal(out.len, wlen[i]);
		assert_memory_equal(out.data, want[i], wlen[i]);
		assert_int_equal(ts_mime_encoding_known(p), known[i]);
		ts_mime_buf_free(&out);
	}
	assert_true(ts_mime_encoding_known(msg->root));
	ts_mime_message_free(&msg);
}

/* --- search
 * --------------------------------------------------------------------- */

static void
test_matcher(void **state)
{
	(void)state;
	assert_true(ts_mime_contains("Hello World", 11, "WORLD", 5));
	assert_true(ts_mime_contains("hello", 5, "", 0));
	assert_false(ts_mime_contains("hello", 5, "world", 5));
	assert_true(ts_mime_contains("CAF\xc3\x89!", 6, "caf" E_ACUTE, 5));
	/* Cyrillic, Greek (final sigma), Latin Extended-A. */
	assert_true(ts_mime_contains("\xd0\x9f\xd0\xa0\xd0\x98\xd0\x92\xd0\x95"
				     "\xd0\xa2",
				     12, "\xd0\xbf\xd1\x80\xd0\xb8", 6));
	assert_true(ts_mime_contains(
		"\xce\xa3\xce\x9f\xce\xa6\xce\x9f\xce\xa3", 10,
		"\xcf\x83\xce\xbf\xcf\x86\xce\xbf\xcf\x82", 10));
	assert_true(ts_mime_contains("\xc5\x81\xc3\x93\xc5\xbb", 6,
				     "\xc5\x82\xc3\xb3\xc5\xbc", 6));
	assert_false(ts_mime_contains("abc", 3, "abcd", 4));

	/* Across chunks split at every byte, UTF-8 sequences included. */
	static const char hay[] = "xx Gr\xc3\x9c\xc3\x9f"
				  "E yy";
	static const char needle[] = "gr\xc3\xbc\xc3\x9f"
				     "e";
	size_t len = strlen(hay);
	for (size_t split = 0; split <= len; split++) {
		struct ts_mime_matcher *m =
			ts_mime_matcher_new(needle, strlen(needle));
		bool a = ts_mime_matcher_feed(m, hay, split);
		bool b = ts_mime_matcher_feed(m, hay + split, len - split);
		assert_false(a && split < 9);
		assert_true(b);
		ts_mime_matcher_reset(m);
		assert_false(ts_mime_matcher_feed(m, "nothing", 7));
		ts_mime_matcher_free(&m);
		assert_null(m);
	}
	struct ts_mime_matcher *m = ts_mime_matcher_new("abc", 3);
	for (const char *p = "xxabxabc"; *p != '\0'; p++)
		ts_mime_matcher_feed(m, p, 1);
	assert_true(ts_mime_matcher_feed(m, "", 0));
	ts_mime_matcher_free(&m);
}

/* One message line per source line: clang-format would reflow them. */
/* clang-format off */
static const char search_msg[] =
	L("Subject: =?UTF-8?Q?Caf=C3=A9_menu?=")
	L("From: Chef <chef@example.com>")
	L("Content-Type: multipart/mixed; boundary=s")
	L("")
	L("preamble words")
	L("--s")
	L("Content-Type: text/plain; charset=iso-8859-1")
	L("Content-Transfer-Encoding: quoted-printable")
	L("")
	L("Cr=E8me br=FBl=")
	L("=E9e tonight")
	L("--s")
	L("Content-Type: text/html; charset=utf-8")
	L("Content-Transfer-Encoding: base64")
	L("")
	L("PGI+Q2hvY29sYXRlPC9iPg==")
	L("--s")
	L("Content-Type: application/octet-stream")
	L("")
	L("binaryneedle")
	L("--s")
	L("Content-Type: message/rfc822")
	L("")
	L("Subject: =?utf-8?b?w4lDTEFJUg==?=")
	L("")
	L("inner body text")
	L("--s--")
	L("epilogue words");
/* clang-format on */

static void
expect_search(const struct ts_mime_message *msg, int fd,
	      enum ts_mime_search_scope scope, const char *needle, bool want)
{
	bool got = ts_mime_search(msg, search_msg, strlen(search_msg), scope,
				  needle, strlen(needle));
	if (got != want)
		print_error("search %s scope %d\n", needle, (int)scope);
	assert_int_equal(got, want);
	/* The same from a file, with the first 20 bytes as the prefix. */
	int rc = ts_mime_search_fd(msg, search_msg, 20, fd, scope, needle,
				   strlen(needle));
	assert_int_equal(rc, want ? 1 : 0);
}

static void
test_search(void **state)
{
	(void)state;
	struct ts_mime_message *msg =
		ts_mime_parse_buffer(search_msg, strlen(search_msg), NULL);
	char path[] = "/tmp/test-mime-text-XXXXXX";
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	unlink(path);
	size_t len = strlen(search_msg);
	assert_int_equal(write(fd, search_msg + 20, len - 20),
			 (ssize_t)(len - 20));

	const enum ts_mime_search_scope B = TS_MIME_SEARCH_BODY,
					T = TS_MIME_SEARCH_TEXT;
	/* Decoded quoted-printable Latin-1, a soft break inside a word. */
	expect_search(msg, fd, B,
		      "CR\xc3\x88ME BR\xc3\x9bL\xc3\x89"
		      "E",
		      true);
	expect_search(msg, fd, B, "=E8", false);
	/* Decoded base64 (HTML is searched as text). */
	expect_search(msg, fd, B, "chocolate", true);
	/* Not in non-text parts, the preamble or the epilogue. */
	expect_search(msg, fd, B, "binaryneedle", false);
	expect_search(msg, fd, B, "preamble", false);
	expect_search(msg, fd, B, "epilogue", false);
	/* The top-level header only for TEXT, decoded. */
	expect_search(msg, fd, B, "caf\xc3\xa9 menu", false);
	expect_search(msg, fd, T, "caf\xc3\xa9 menu", true);
	expect_search(msg, fd, T, "chef@EXAMPLE", true);
	/* An attached message: its header and body are part of BODY. */
	expect_search(msg, fd, B,
		      "\xc3\xa9"
		      "clair",
		      true);
	expect_search(msg, fd, B, "INNER BODY", true);
	/* No match across part boundaries. */
	expect_search(msg, fd, B, "tonight<b>", false);
	expect_search(msg, fd, B, "", true);

	/* A read error is reported. */
	assert_int_equal(ts_mime_search_fd(msg, search_msg, 20, -1,
					   TS_MIME_SEARCH_BODY, "zz", 2),
			 TS_E_IO);
	close(fd);
	ts_mime_message_free(&msg);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_header_iter),
		cmocka_unit_test(test_addresses),
		cmocka_unit_test(test_encoded_words),
		cmocka_unit_test(test_params),
		cmocka_unit_test(test_qp),
		cmocka_unit_test(test_base64),
		cmocka_unit_test(test_text_decoder),
		cmocka_unit_test(test_binary_decoder),
		cmocka_unit_test(test_matcher),
		cmocka_unit_test(test_search),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

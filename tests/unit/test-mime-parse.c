/*
 * tests/unit/test-mime-parse.c — the MIME tree builder and section lookup
 * (kernel/mime/parse.c, section.c): exact offsets, sizes and line counts,
 * IMAP section ranges, the same tree whatever the chunking (memory, every
 * small chunk size, a file read in 64 KiB chunks with boundaries and
 * header lines straddling the chunk edges), each limit's defined outcome,
 * and a mutation run over malformed input checking the tree's invariants.
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

/* One message line per source line: clang-format would reflow them. */
/* clang-format off */
static const char nested[] =
	L("From: a@example.com")
	L("Subject: nested")
	L("Content-Type: multipart/mixed; boundary=\"b1\"")
	L("")
	L("preamble")
	L("--b1")
	L("Content-Type: text/plain")
	L("")
	L("one")
	L("--b1")
	L("Content-Type: message/rfc822")
	L("")
	L("Subject: inner")
	L("Content-Type: multipart/alternative; boundary=b2")
	L("")
	L("--b2")
	L("")
	L("alt one")
	L("--b2")
	L("Content-Type: text/html")
	L("")
	L("<i>alt two</i>")
	L("--b2--")
	L("--b1")
	L("Content-Type: application/octet-stream")
	L("")
	L("AAAA")
	L("--b1--")
	L("epilogue");
/* clang-format on */

/* Offset of the n-th (1-based) occurrence of needle in hay. */
static uint64_t
offset_of(const char *hay, const char *needle, int n)
{
	const char *p = hay;
	for (;;) {
		p = strstr(p, needle);
		assert_non_null(p);
		if (--n == 0)
			return (uint64_t)(p - hay);
		p++;
	}
}

static const struct ts_mime_part *
child(const struct ts_mime_part *p, unsigned int n)
{
	const struct ts_mime_part *c = p->children;
	while (c != NULL && --n > 0)
		c = c->next;
	assert_non_null(c);
	return c;
}

static void
test_offsets(void **state)
{
	(void)state;
	struct ts_mime_message *msg =
		ts_mime_parse_buffer(nested, strlen(nested), NULL);
	const struct ts_mime_part *root = msg->root;

	assert_int_equal(msg->size, strlen(nested));
	assert_int_equal(msg->nparts, 7);
	assert_false(msg->truncated);
	assert_int_equal(root->kind, TS_MIME_PART_MULTIPART);
	assert_true(root->is_message);
	assert_int_equal(root->nchildren, 3);
	assert_int_equal(root->header_start, 0);
	assert_int_equal(root->body_start, offset_of(nested, "preamble", 1));
	assert_int_equal(root->body_end, strlen(nested));
	assert_string_equal(root->envelope->subject, "nested");

	const struct ts_mime_part *p1 = child(root, 1);
	assert_int_equal(p1->header_start,
			 offset_of(nested, "Content-Type: text/plain", 1));
	assert_int_equal(p1->body_start, offset_of(nested, "one\r\n", 1));
	assert_int_equal(p1->body_size, 3);
	assert_int_equal(p1->body_lines,
			 0); /* its line end is the boundary's */
	assert_false(p1->is_message);
	assert_null(p1->envelope);

	const struct ts_mime_part *p2 = child(root, 2);
	assert_int_equal(p2->kind, TS_MIME_PART_MESSAGE);
	assert_int_equal(p2->nchildren, 1);
	const struct ts_mime_part *m = p2->children;
	assert_true(m->is_message);
	assert_int_equal(m->header_start, p2->body_start);
	assert_int_equal(m->header_start,
			 offset_of(nested, "Subject: inner", 1));
	assert_int_equal(m->body_end, p2->body_end);
	assert_int_equal(p2->body_end,
			 offset_of(nested, "\r\n--b1\r\nContent-Type: app", 1));
	assert_string_equal(m->envelope->subject, "inner");
	assert_int_equal(m->kind, TS_MIME_PART_MULTIPART);
	const struct ts_mime_part *a2 = child(m, 2);
	assert_true(ts_mime_part_is(a2, "TEXT", "html"));
	assert_int_equal(a2->body_start, offset_of(nested, "<i>", 1));
	assert_int_equal(a2->body_size, strlen("<i>alt two</i>"));
	assert_int_equal(a2->body_lines, 0);
	assert_int_equal(a2->depth, 3);

	const struct ts_mime_part *p3 = child(root, 3);
	assert_int_equal(p3->body_start, offset_of(nested, "AAAA", 1));
	assert_int_equal(p3->body_size, 4);
	ts_mime_message_free(&msg);
	assert_null(msg);
}

/* The bytes of a section, as a string the caller frees; NULL if absent. */
static char *
section_text(const struct ts_mime_message *msg, const char *data,
	     const char *spec, int *rc_r)
{
	struct ts_mime_section sec;
	int rc = ts_mime_section_find(msg, spec, &sec);
	if (rc_r != NULL)
		*rc_r = rc;
	if (rc != 0)
		return NULL;
	assert_true(sec.start <= sec.end);
	assert_true(sec.end <= msg->size);
	return strndup(data + sec.start, (size_t)(sec.end - sec.start));
}

static void
expect_section(const struct ts_mime_message *msg, const char *data,
	       const char *spec, const char *want)
{
	int rc;
	char *got = section_text(msg, data, spec, &rc);
	if (want == NULL) {
		assert_int_equal(rc, TS_E_NOTFOUND);
		return;
	}
	assert_int_equal(rc, 0);
	assert_string_equal(got, want);
	free(got);
}

static void
test_sections(void **state)
{
	(void)state;
	struct ts_mime_message *msg =
		ts_mime_parse_buffer(nested, strlen(nested), NULL);

	expect_section(msg, nested, "", nested);
	expect_section(msg, nested, "1", "one");
	expect_section(msg, nested, "1.MIME",
		       L("Content-Type: text/plain") L(""));
	expect_section(
		msg, nested, "2.HEADER",
		L("Subject: inner")
			L("Content-Type: multipart/alternative; boundary=b2")
				L(""));
	expect_section(
		msg, nested, "2.header.fields",
		L("Subject: inner")
			L("Content-Type: multipart/alternative; boundary=b2")
				L(""));
	expect_section(msg, nested, "2.1", "alt one");
	expect_section(msg, nested, "2.2", "<i>alt two</i>");
	expect_section(msg, nested, "2.2.MIME",
		       L("Content-Type: text/html") L(""));
	expect_section(msg, nested, "2.TEXT",
		       L("--b2") L("") L("alt one") L("--b2")
			       L("Content-Type: text/html") L("")
				       L("<i>alt two</i>") "--b2--");
	expect_section(msg, nested, "3", "AAAA");
	expect_section(msg, nested, "4", NULL);
	expect_section(msg, nested, "2.3", NULL);
	expect_section(msg, nested, "1.1", NULL);
	expect_section(msg, nested, "1.HEADER", NULL);
	expect_section(msg, nested, "2.1.1", NULL);
	char *h = section_text(msg, nested, "HEADER", NULL);
	assert_non_null(strstr(h, "Subject: nested"));
	assert_int_equal(strlen(h), offset_of(nested, "preamble", 1));
	free(h);
	char *t = section_text(msg, nested, "TEXT", NULL);
	assert_true(strncmp(t, "preamble", 8) == 0);
	free(t);

	struct ts_mime_section sec;
	static const char *const bad[] = {
		"0",	   "1.", ".1",	   "1..2",	    "01", "1.X", "MIME",
		"HEADERS", "1 ", "TEXT.1", "99999999999999"
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(ts_mime_section_find(msg, bad[i], &sec),
				 TS_E_INVAL);
	assert_int_equal(ts_mime_section_find(msg, "2.HEADER.FIELDS.NOT", &sec),
			 0);
	assert_int_equal(sec.kind, TS_MIME_SECTION_HEADER_FIELDS_NOT);
	assert_int_equal(ts_mime_section_find(msg, "3", &sec), 0);
	assert_int_equal(sec.kind, TS_MIME_SECTION_BODY);
	assert_true(ts_mime_part_is(sec.part, "application", "octet-stream"));
	ts_mime_message_free(&msg);

	/* A non-multipart message: part 1 is its body. */
	static const char single[] = L("Subject: s") L("") L("text");
	msg = ts_mime_parse_buffer(single, strlen(single), NULL);
	expect_section(msg, single, "1", L("text"));
	expect_section(msg, single, "1.MIME", L("Subject: s") L(""));
	expect_section(msg, single, "TEXT", L("text"));
	expect_section(msg, single, "2", NULL);
	expect_section(msg, single, "1.1", NULL);
	ts_mime_message_free(&msg);

	/* A top-level message/rfc822: 1 is the inner message, 1.1 its body. */
	static const char wrapped[] = L("Content-Type: message/rfc822") L("")
		L("Subject: in") L("") L("deep");
	msg = ts_mime_parse_buffer(wrapped, strlen(wrapped), NULL);
	expect_section(msg, wrapped, "1", L("Subject: in") L("") L("deep"));
	expect_section(msg, wrapped, "1.HEADER", L("Subject: in") L(""));
	expect_section(msg, wrapped, "1.TEXT", L("deep"));
	expect_section(msg, wrapped, "1.1", L("deep"));
	ts_mime_message_free(&msg);
}

/* --- tree comparison ------------------------------------------------------ */

static void
dump_part(const struct ts_mime_part *p, char **out, size_t *len)
{
	FILE *f = open_memstream(out, len);
	char *inner = NULL;
	size_t ilen = 0;
	fprintf(f, "(%s/%s k%d %llu %llu %llu s%llu l%llu m%d", p->type,
		p->subtype, (int)p->kind, (unsigned long long)p->header_start,
		(unsigned long long)p->body_start,
		(unsigned long long)p->body_end,
		(unsigned long long)p->body_size,
		(unsigned long long)p->body_lines, p->is_message);
	for (size_t k = 0; k < p->nparams; k++)
		fprintf(f, " %s=%s", p->params[k].name, p->params[k].value);
	for (const struct ts_mime_part *c = p->children; c != NULL;
	     c = c->next) {
		dump_part(c, &inner, &ilen);
		fputs(inner, f);
		free(inner);
	}
	fputs(")", f);
	fclose(f);
}

static char *
dump(const struct ts_mime_message *msg)
{
	char *s;
	size_t len;
	dump_part(msg->root, &s, &len);
	return s;
}

/* Parse data in chunks of size chunk through the incremental API. */
static struct ts_mime_message *
parse_chunked(const char *data, size_t len, size_t chunk,
	      const struct ts_mime_limits *lim)
{
	struct ts_mime_parser *p = ts_mime_parser_new(lim);
	for (size_t i = 0; i < len; i += chunk)
		ts_mime_parser_feed(p, data + i,
				    len - i < chunk ? len - i : chunk);
	return ts_mime_parser_finish(&p);
}

static const char *const samples[] = {
	nested,
	L("Content-Type: multipart/mixed; boundary=x") L("") L("--x") L("")
		L("a") L("--x") "Content-Type: text/plain\r\n\r\nb\r\n",
	"Subject: lf only\n\nbody\n",
	"no header line at all",
	"",
	"\r\n",
	L("Content-Type: multipart/mixed; boundary=\"a b\"") L("") L("--a b  ")
		L("") L("x") L("--a b--  "),
};

static void
test_chunking(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(samples) / sizeof(samples[0]); i++) {
		const char *data = samples[i];
		size_t len = strlen(data);
		struct ts_mime_message *ref =
			ts_mime_parse_buffer(data, len, NULL);
		char *want = dump(ref);
		for (size_t chunk = 1; chunk <= 23; chunk++) {
			struct ts_mime_message *msg =
				parse_chunked(data, len, chunk, NULL);
			char *got = dump(msg);
			assert_string_equal(got, want);
			free(got);
			ts_mime_message_free(&msg);
		}
		free(want);
		ts_mime_message_free(&ref);
	}
}

/*
 * A message of about 300 KiB whose boundary lines and header lines sit
 * across the 64 KiB read boundaries of ts_mime_parse_fd.
 */
static char *
big_message(size_t *len_r)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	fputs(L("Subject: big") L("Content-Type: multipart/mixed; "
				  "boundary=\"=_boundary_=\"") L(""),
	      f);
	for (int part = 0; part < 4; part++) {
		fflush(f);
		/* Fill so that the next boundary straddles 64 KiB * (part+1).
		 */
		size_t target = 65536 * (size_t)(part + 1) - 5 - (size_t)part;
		fputs(L("--=_boundary_=") L("Content-Type: text/plain;")
			      L("  charset=utf-8") L(""),
		      f);
		fflush(f);
		while (len + 80 < target) {
			fputs(L("0123456789012345678901234567890123456789012345"
				"6789012345678901234567890123"),
			      f);
			fflush(f);
		}
		while (len + 2 < target) {
			fputc('y', f);
			fflush(f);
		}
		fputs("\r\n", f);
	}
	fputs(L("--=_boundary_=--"), f);
	fclose(f);
	*len_r = len;
	return buf;
}

static struct ts_mime_message *
parse_file(const char *data, size_t len, size_t prefix_len,
	   const struct ts_mime_limits *lim)
{
	char path[] = "/tmp/test-mime-parse-XXXXXX";
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	unlink(path);
	assert_int_equal(write(fd, data + prefix_len, len - prefix_len),
			 (ssize_t)(len - prefix_len));
	assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
	struct ts_mime_message *msg = NULL;
	const char *error = NULL;
	assert_int_equal(
		ts_mime_parse_fd(data, prefix_len, fd, lim, &msg, &error), 0);
	close(fd);
	return msg;
}

static void
test_fd(void **state)
{
	(void)state;
	size_t len;
	char *data = big_message(&len);
	struct ts_mime_message *ref = ts_mime_parse_buffer(data, len, NULL);
	char *want = dump(ref);

	assert_int_equal(ref->root->nchildren, 4);
	for (const struct ts_mime_part *c = ref->root->children; c != NULL;
	     c = c->next) {
		assert_true(ts_mime_part_is(c, "text", "plain"));
		assert_string_equal(
			ts_mime_param_get(c->params, c->nparams, "charset"),
			"utf-8");
		assert_true(c->body_size > 60000);
	}
	/* Default 64 KiB chunks, then odd sizes; with and without a prefix. */
	static const size_t chunks[] = { 0, 4093, 65537, 1 << 20 };
	static const size_t prefixes[] = { 0, 14, 65540 };
	for (size_t i = 0; i < 4; i++)
		for (size_t j = 0; j < 3; j++) {
			struct ts_mime_limits lim = { .chunk_size = chunks[i] };
			struct ts_mime_message *msg =
				parse_file(data, len, prefixes[j], &lim);
			char *got = dump(msg);
			assert_string_equal(got, want);
			free(got);
			ts_mime_message_free(&msg);
		}
	free(want);
	ts_mime_message_free(&ref);
	free(data);

	/* A read error. */
	struct ts_mime_message *msg = NULL;
	const char *error = NULL;
	assert_int_equal(ts_mime_parse_fd("x", 1, -1, NULL, &msg, &error),
			 TS_E_IO);
	assert_null(msg);
	assert_non_null(error);
}

/* --- limits --------------------------------------------------------------- */

static void
add(struct ts_mime_buf *b, const char *s)
{
	ts_mime_buf_add(b, s, strlen(s));
}

static void
test_limits(void **state)
{
	(void)state;
	/* A header past the limit: later fields ignored, offsets exact. */
	struct ts_mime_buf b = { 0 };
	add(&b, L("Subject: first"));
	for (int i = 0; i < 200; i++)
		add(&b,
		    L("X-Filler: 0123456789012345678901234567890123456789"));
	const char *tail = L("Content-Type: text/html") L("") L("body");
	add(&b, tail);
	struct ts_mime_limits lim = { .max_header_size = 4096 };
	struct ts_mime_message *msg = ts_mime_parse_buffer(b.data, b.len, &lim);
	assert_string_equal(msg->root->envelope->subject, "first");
	assert_true(ts_mime_part_is(msg->root, "text", "plain"));
	assert_true(msg->root->content_type_default);
	assert_int_equal(msg->root->body_start, b.len - 6);
	assert_int_equal(msg->root->body_size, 6);
	ts_mime_message_free(&msg);
	ts_mime_buf_free(&b);

	/* A 2 MB line without LF in a body does not hide the boundary. */
	add(&b, L("Content-Type: multipart/mixed; boundary=q") L("") L("--q")
			L(""));
	char *junk = malloc(2000000);
	memset(junk, 'j', 2000000);
	ts_mime_buf_add(&b, junk, 2000000);
	free(junk);
	add(&b, L("") L("--q") L("") L("z") L("--q--"));
	msg = ts_mime_parse_buffer(b.data, b.len, NULL);
	assert_int_equal(msg->root->nchildren, 2);
	assert_int_equal(msg->root->children->body_size, 2000000);
	assert_int_equal(msg->root->children->body_lines, 0);
	assert_int_equal(msg->root->children->next->body_size, 1);
	ts_mime_message_free(&msg);
	ts_mime_buf_free(&b);

	/* Transport padding longer than what a line keeps. */
	add(&b, L("Content-Type: multipart/mixed; boundary=q") L("") "--q");
	for (int i = 0; i < 3000; i++)
		add(&b, " ");
	add(&b, L("") L("") L("padded") L("--q--"));
	msg = ts_mime_parse_buffer(b.data, b.len, NULL);
	assert_int_equal(msg->root->nchildren, 1);
	assert_int_equal(msg->root->children->body_size, 6);
	ts_mime_message_free(&msg);
	ts_mime_buf_free(&b);

	/* 10000 parts against the default limit of 5000. */
	add(&b, L("Content-Type: multipart/mixed; boundary=q") L(""));
	for (int i = 0; i < 10000; i++)
		add(&b, L("--q") L("") L("p"));
	msg = ts_mime_parse_buffer(b.data, b.len, NULL);
	assert_true(msg->truncated);
	assert_int_equal(msg->nparts, 5000);
	assert_int_equal(msg->root->nchildren, 4999);
	assert_int_equal(msg->root->body_end, b.len);
	ts_mime_message_free(&msg);
	ts_mime_buf_free(&b);

	/* 200 nested message/rfc822 against the default depth of 50. */
	for (int i = 0; i < 200; i++)
		add(&b, L("Content-Type: message/rfc822") L(""));
	add(&b, L("") L("innermost"));
	msg = ts_mime_parse_buffer(b.data, b.len, NULL);
	assert_true(msg->truncated);
	const struct ts_mime_part *p = msg->root;
	unsigned int depth = 0;
	while (p->children != NULL) {
		p = p->children;
		depth++;
	}
	assert_int_equal(depth, 50);
	assert_int_equal(p->kind, TS_MIME_PART_LEAF);
	assert_int_equal(p->body_end, b.len);
	ts_mime_message_free(&msg);
	ts_mime_buf_free(&b);
}

/* --- malformed input ------------------------------------------------------ */

static void
check_invariants(const struct ts_mime_message *msg,
		 const struct ts_mime_part *p, unsigned int *count)
{
	(*count)++;
	assert_true(p->header_start <= p->body_start);
	assert_true(p->body_start <= p->body_end);
	assert_true(p->body_end <= msg->size);
	assert_int_equal(p->body_size, p->body_end - p->body_start);
	assert_true(p->body_lines <= p->body_size);
	assert_non_null(p->type);
	assert_non_null(p->subtype);
	assert_true(p->is_message == (p->envelope != NULL));
	unsigned int n = 0;
	uint64_t prev_end = p->body_start;
	for (const struct ts_mime_part *c = p->children; c != NULL;
	     c = c->next) {
		n++;
		assert_ptr_equal(c->parent, p);
		assert_true(c->header_start >= prev_end);
		assert_true(c->body_end <= p->body_end);
		prev_end = c->body_end;
		check_invariants(msg, c, count);
	}
	assert_int_equal(n, p->nchildren);
	if (p->kind == TS_MIME_PART_MESSAGE)
		assert_int_equal(n, 1);
	if (p->kind == TS_MIME_PART_LEAF)
		assert_int_equal(n, 0);
}

static void
test_mutations(void **state)
{
	(void)state;
	uint32_t seed = 12345;
	size_t base_len = strlen(nested);
	char *buf = malloc(base_len + 64);
	static const char inserts[] = "-\r\n:;=\"\\()<>@,x\t ";

	for (int round = 0; round < 3000; round++) {
		memcpy(buf, nested, base_len);
		size_t len = base_len;
		int edits = 1 + round % 8;
		for (int e = 0; e < edits && len > 1; e++) {
			seed = seed * 1103515245 + 12345;
			size_t at = (seed >> 8) % len;
			seed = seed * 1103515245 + 12345;
			switch ((seed >> 16) % 4) {
			case 0: /* flip a byte */
				buf[at] = (char)(seed >> 3);
				break;
			case 1: /* delete a byte */
				memmove(buf + at, buf + at + 1, len - at - 1);
				len--;
				break;
			case 2: /* insert a special */
				if (len < base_len + 60) {
					memmove(buf + at + 1, buf + at,
						len - at);
					buf[at] =
						inserts[(seed >> 20) %
							(sizeof(inserts) - 1)];
					len++;
				}
				break;
			default: /* truncate */
				len = at + 1;
				break;
			}
		}
		struct ts_mime_limits lim = { .max_depth = 1 + round % 4,
					      .max_parts = 2 + round % 9 };
		struct ts_mime_message *msg =
			parse_chunked(buf, len, 1 + round % 13, &lim);
		struct ts_mime_message *ref =
			ts_mime_parse_buffer(buf, len, &lim);
		unsigned int count = 0;
		assert_int_equal(msg->size, len);
		check_invariants(msg, msg->root, &count);
		assert_int_equal(count, msg->nparts);
		assert_true(count <= lim.max_parts);
		char *a = dump(msg), *b = dump(ref);
		assert_string_equal(a, b);
		free(a);
		free(b);
		/* Every numbered part resolves. */
		struct ts_mime_section sec;
		static const char *const specs[] = { "1",	 "2",
						     "1.1",	 "2.1",
						     "2.2.MIME", "2.HEADER",
						     "TEXT",	 "" };
		for (size_t k = 0; k < sizeof(specs) / sizeof(specs[0]); k++) {
			int rc = ts_mime_section_find(msg, specs[k], &sec);
			assert_true(rc == 0 || rc == TS_E_NOTFOUND);
			if (rc == 0)
				assert_true(sec.start <= sec.end &&
					    sec.end <= len);
		}
		ts_mime_message_free(&msg);
		ts_mime_message_free(&ref);
	}
	free(buf);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_offsets),
		cmocka_unit_test(test_sections),
		cmocka_unit_test(test_chunking),
		cmocka_unit_test(test_fd),
		cmocka_unit_test(test_limits),
		cmocka_unit_test(test_mutations),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

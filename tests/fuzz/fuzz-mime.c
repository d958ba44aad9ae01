/*
 * tests/fuzz/fuzz-mime.c — fuzz the kernel MIME library.
 *
 * The input is a message: parsed whole (ts_mime_parse_buffer, default and
 * small limits) and incrementally in odd-sized chunks; every part's body
 * goes through the text and binary decoders, a few IMAP section specs are
 * resolved, and a body search runs.  Every header field of the top-level
 * header is unfolded, RFC 2047-decoded, parsed as an address list and as
 * a Content-Type value.
 */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <tessera/mime.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
fuzz_mime_part(const struct ts_mime_part *p, const uint8_t *data, size_t size)
{
	struct ts_mime_buf out = { 0 };
	struct ts_mime_text_decoder *d;

	if (p->body_start > p->body_end || p->body_end > size ||
	    p->header_start > p->body_start)
		abort(); /* offsets must stay inside the stream */
	d = ts_mime_text_decoder_new(p);
	ts_mime_text_decoder_feed(d, data + p->body_start,
				  p->body_end - p->body_start, &out);
	ts_mime_text_decoder_finish(&d, &out);
	(void)ts_mime_encoding_known(p);
	d = ts_mime_binary_decoder_new(p);
	ts_mime_text_decoder_feed(d, data + p->body_start,
				  p->body_end - p->body_start, &out);
	ts_mime_text_decoder_finish(&d, &out);
	ts_mime_buf_free(&out);
	for (const struct ts_mime_part *c = p->children; c != NULL; c = c->next)
		fuzz_mime_part(c, data, size);
}

static void
fuzz_mime_header(const uint8_t *data, size_t size)
{
	struct ts_mime_header_iter it;
	struct ts_mime_field f;

	ts_mime_header_init(&it, (const char *)data, size);
	while (ts_mime_header_next(&it, &f)) {
		size_t len;
		char *v = ts_mime_unfold(f.value, f.value_len, &len);
		char *w, *type = NULL, *subtype = NULL;
		struct ts_mime_address *list;
		struct ts_mime_param *params = NULL;
		size_t nparams = 0;

		w = ts_mime_decode_words(v, len, NULL);
		free(w);
		list = ts_mime_address_parse(v, len);
		ts_mime_address_free(&list);
		ts_mime_content_type_parse(v, len, &type, &subtype, &params,
					   &nparams);
		free(type);
		free(subtype);
		ts_mime_params_free(params, nparams);
		free(v);
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const specs[] = { "1", "1.2", "2.1.MIME", "TEXT",
					     "HEADER", "1.HEADER", "3.2.1.1" };
	struct ts_mime_limits small = { .max_depth = 4, .max_parts = 20 };
	struct ts_mime_message *msg;
	struct ts_mime_parser *parser;
	size_t pos = 0, step = 1;

	msg = ts_mime_parse_buffer(data, size, NULL);
	if (msg->root != NULL)
		fuzz_mime_part(msg->root, data, size);
	for (size_t i = 0; i < sizeof(specs) / sizeof(specs[0]); i++) {
		struct ts_mime_section sec;

		if (ts_mime_section_find(msg, specs[i], &sec) == 0 &&
		    (sec.start > sec.end || sec.end > size))
			abort();
	}
	(void)ts_mime_search(msg, data, size, TS_MIME_SEARCH_TEXT, "b\xc3\xa4r",
			     4);
	ts_mime_message_free(&msg);

	msg = ts_mime_parse_buffer(data, size, &small);
	ts_mime_message_free(&msg);

	/* incremental, chunks of 1, 2, 4, ... bytes */
	parser = ts_mime_parser_new(NULL);
	while (pos < size) {
		size_t n = size - pos < step ? size - pos : step;

		ts_mime_parser_feed(parser, data + pos, n);
		pos += n;
		step = step < 4096 ? step * 2 + 1 : 1;
	}
	msg = ts_mime_parser_finish(&parser);
	if (msg->root != NULL)
		fuzz_mime_part(msg->root, data, size);
	ts_mime_message_free(&msg);

	fuzz_mime_header(data, size);
	return 0;
}

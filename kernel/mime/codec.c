/*
 * kernel/mime/codec.c — the MIME transfer encodings decoded as streams
 * (quoted-printable, base64) and the text decoder built on them, which
 * turns a text part's raw body into UTF-8 for SEARCH, the junk filter and
 * webmail.
 *
 * Every decoder takes its input in chunks that may split anything (an
 * "=XX" escape, a base64 quantum, a multibyte character) and holds back
 * at most a few bytes between calls.  Decoding is lenient: mail in the
 * wild breaks every rule, and a reader wants the text anyway.
 */
#include "config.h"

#include <errno.h>
#include <iconv.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "kernel/mime/mime-private.h"
#include "kernel/sasl/sasl-private.h"

/* --- quoted-printable ----------------------------------------------------- */

static int
codec_hex(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

static void codec_qp_byte(struct ts_mime_qp *qp, char c,
			  struct ts_mime_buf *out);

/* Give up on what is held: "=" is literal; re-read the bytes after it. */
static void
codec_qp_release(struct ts_mime_qp *qp, struct ts_mime_buf *out)
{
	char held[sizeof(qp->pending)];
	size_t n = qp->npending;

	memcpy(held, qp->pending, n);
	qp->npending = 0;
	if (n == 0)
		return;
	if (held[0] != '=') {
		ts_mime_buf_add(out, held, n);
		return;
	}
	ts_mime_buf_add(out, "=", 1);
	for (size_t k = 1; k < n; k++)
		codec_qp_byte(qp, held[k], out);
}

/*
 * One byte of quoted-printable.  qp->pending holds either "=" and what
 * follows it until an escape, a soft line break ("=" [white space] line
 * end) or a stray "=" can be told apart, or a run of white space (and a
 * CR) that is dropped when a line end follows (RFC 2045 section 6.7 rule
 * 3).  A run longer than the buffer is let through as it is.
 */
static void
codec_qp_byte(struct ts_mime_qp *qp, char c, struct ts_mime_buf *out)
{
	if (qp->npending > 0 && qp->pending[0] == '=') {
		if (qp->npending == 1) {
			if (c == '\n') {
				qp->npending = 0; /* soft break */
				return;
			}
			if (codec_hex(c) >= 0 || ts__mime_is_wsp(c) ||
			    c == '\r') {
				qp->pending[qp->npending++] = c;
				return;
			}
			codec_qp_release(qp, out);
			codec_qp_byte(qp, c, out);
			return;
		}
		if (codec_hex(qp->pending[1]) >= 0) {
			int h2 = codec_hex(c);
			if (h2 >= 0) {
				char b = (char)(codec_hex(qp->pending[1]) << 4 |
						h2);
				qp->npending = 0;
				ts_mime_buf_add(out, &b, 1);
				return;
			}
			codec_qp_release(qp, out);
			codec_qp_byte(qp, c, out);
			return;
		}
		/* "=" and white space/CR so far: a soft break if LF comes. */
		if (c == '\n') {
			qp->npending = 0;
			return;
		}
		if ((ts__mime_is_wsp(c) || c == '\r') &&
		    qp->npending < sizeof(qp->pending)) {
			qp->pending[qp->npending++] = c;
			return;
		}
		codec_qp_release(qp, out);
		codec_qp_byte(qp, c, out);
		return;
	}
	if (qp->npending > 0) {
		/* Held white space, perhaps ending in CR. */
		bool cr = qp->pending[qp->npending - 1] == '\r';
		if (c == '\n') {
			qp->npending = 0;
			ts_mime_buf_add(out, cr ? "\r\n" : "\n", cr ? 2 : 1);
			return;
		}
		if (!cr && (ts__mime_is_wsp(c) || c == '\r') &&
		    qp->npending < sizeof(qp->pending)) {
			qp->pending[qp->npending++] = c;
			return;
		}
		codec_qp_release(qp, out);
	}
	if (c == '=' || ts__mime_is_wsp(c)) {
		qp->pending[qp->npending++] = c;
		return;
	}
	ts_mime_buf_add(out, &c, 1);
}

void
ts_mime_qp_decode(struct ts_mime_qp *qp, const char *in, size_t len,
		  struct ts_mime_buf *out)
{
	size_t i = 0;

	while (i < len) {
		/* Runs of plain bytes go out in one piece. */
		if (qp->npending == 0) {
			size_t j = i;
			while (j < len && in[j] != '=' && in[j] != ' ' &&
			       in[j] != '\t')
				j++;
			ts_mime_buf_add(out, in + i, j - i);
			i = j;
			if (i == len)
				break;
		}
		codec_qp_byte(qp, in[i], out);
		i++;
	}
	ts_mime_buf_add(out, "", 0);
}

void
ts_mime_qp_finish(struct ts_mime_qp *qp, struct ts_mime_buf *out)
{
	if (qp->npending > 0 && qp->pending[0] == '=') {
		/* "=" [white space] at the very end: a soft break. */
		bool soft = true;
		for (size_t k = 1; k < qp->npending; k++)
			if (!ts__mime_is_wsp(qp->pending[k]) &&
			    qp->pending[k] != '\r')
				soft = false;
		if (!soft)
			codec_qp_release(qp, out);
	}
	/* White space at the very end is trailing white space: dropped. */
	qp->npending = 0;
	ts_mime_buf_add(out, "", 0);
}

/* --- base64 --------------------------------------------------------------- */

/* Emit what the characters of an incomplete quantum complete. */
static void
codec_base64_flush(struct ts_mime_base64 *b, struct ts_mime_buf *out)
{
	unsigned int n = b->nbits_chars;
	uint32_t w = b->bits << (6 * (4 - n));
	char bytes[3] = { (char)(w >> 16), (char)(w >> 8), (char)w };
	if (n >= 2)
		ts_mime_buf_add(out, bytes, n - 1);
	b->bits = 0;
	b->nbits_chars = 0;
}

void
ts_mime_base64_decode(struct ts_mime_base64 *b, const char *in, size_t len,
		      struct ts_mime_buf *out)
{
	char block[768];
	size_t nblock = 0;

	for (size_t i = 0; i < len; i++) {
		if (in[i] == '=') {
			if (b->nbits_chars > 0) {
				ts_mime_buf_add(out, block, nblock);
				nblock = 0;
				codec_base64_flush(b, out);
			}
			continue;
		}
		int v = ts__base64_value(in[i]);
		if (v < 0)
			continue;
		b->bits = b->bits << 6 | (uint32_t)v;
		if (++b->nbits_chars < 4)
			continue;
		block[nblock++] = (char)(b->bits >> 16);
		block[nblock++] = (char)(b->bits >> 8);
		block[nblock++] = (char)b->bits;
		b->bits = 0;
		b->nbits_chars = 0;
		if (nblock == sizeof(block)) {
			ts_mime_buf_add(out, block, nblock);
			nblock = 0;
		}
	}
	ts_mime_buf_add(out, block, nblock);
}

void
ts_mime_base64_finish(struct ts_mime_base64 *b, struct ts_mime_buf *out)
{
	codec_base64_flush(b, out);
	ts_mime_buf_add(out, "", 0);
}

/* --- text decoder --------------------------------------------------------- */

enum codec_cte { CODEC_IDENTITY, CODEC_QP, CODEC_BASE64 };

struct ts_mime_text_decoder {
	enum codec_cte cte;
	struct ts_mime_qp qp;
	struct ts_mime_base64 b64;
	/* Without a converter the text is (taken as) UTF-8. */
	iconv_t cd;
	bool have_cd;
	bool binary; /* no charset step at all */
	char tail[16]; /* an incomplete character held back */
	size_t ntail;
	struct ts_mime_buf raw; /* transfer-decoded, not yet converted */
};

bool
ts_mime_encoding_known(const struct ts_mime_part *part)
{
	static const char *const known[] = { "7bit", "8bit", "binary",
					     "quoted-printable", "base64" };
	if (part->encoding == NULL)
		return true;
	for (size_t k = 0; k < sizeof(known) / sizeof(known[0]); k++)
		if (strcasecmp(part->encoding, known[k]) == 0)
			return true;
	return false;
}

static struct ts_mime_text_decoder *
codec_decoder_new(const struct ts_mime_part *part)
{
	struct ts_mime_text_decoder *d = ts_xcalloc(1, sizeof(*d));
	const char *enc = part->encoding;
	if (enc != NULL && strcasecmp(enc, "quoted-printable") == 0)
		d->cte = CODEC_QP;
	else if (enc != NULL && strcasecmp(enc, "base64") == 0)
		d->cte = CODEC_BASE64;
	return d;
}

struct ts_mime_text_decoder *
ts_mime_binary_decoder_new(const struct ts_mime_part *part)
{
	struct ts_mime_text_decoder *d = codec_decoder_new(part);
	d->binary = true;
	return d;
}

struct ts_mime_text_decoder *
ts_mime_text_decoder_new(const struct ts_mime_part *part)
{
	struct ts_mime_text_decoder *d = codec_decoder_new(part);
	const char *cs =
		ts_mime_param_get(part->params, part->nparams, "charset");
	if (cs != NULL && strcasecmp(cs, "utf-8") != 0 &&
	    strcasecmp(cs, "utf8") != 0 && strcasecmp(cs, "us-ascii") != 0) {
		const char *from = cs;
		if (strcasecmp(cs, "iso-8859-1") == 0 ||
		    strcasecmp(cs, "latin1") == 0)
			from = "WINDOWS-1252";
		d->cd = iconv_open("UTF-8", from);
		d->have_cd = d->cd != (iconv_t)-1;
	}
	return d;
}

/* Convert d->tail + in to UTF-8, holding back an incomplete character. */
static void
codec_convert(struct ts_mime_text_decoder *d, const char *in, size_t len,
	      bool final, struct ts_mime_buf *out)
{
	if (d->binary) {
		ts_mime_buf_add(out, in, len);
		return;
	}
	struct ts_mime_buf all = { 0 };
	ts_mime_buf_add(&all, d->tail, d->ntail);
	ts_mime_buf_add(&all, in, len);
	d->ntail = 0;

	if (!d->have_cd) {
		size_t keep =
			ts__mime_add_valid_utf8(out, all.data, all.len, !final);
		memcpy(d->tail, all.data + all.len - keep, keep);
		d->ntail = keep;
		ts_mime_buf_free(&all);
		return;
	}
	char tmp[1024];
	char *ip = all.data;
	size_t il = all.len;
	while (il > 0) {
		char *op = tmp;
		size_t ol = sizeof(tmp);
		size_t r = iconv(d->cd, &ip, &il, &op, &ol);
		ts_mime_buf_add(out, tmp, (size_t)(op - tmp));
		if (r != (size_t)-1 || errno == E2BIG)
			continue;
		if (errno == EINVAL && !final && il < sizeof(d->tail)) {
			memcpy(d->tail, ip, il);
			d->ntail = il;
			break;
		}
		ts_mime_buf_add(out, "\xef\xbf\xbd", 3);
		ip++;
		il--;
	}
	ts_mime_buf_free(&all);
}

void
ts_mime_text_decoder_feed(struct ts_mime_text_decoder *d, const void *in,
			  size_t len, struct ts_mime_buf *out)
{
	switch (d->cte) {
	case CODEC_IDENTITY:
		codec_convert(d, in, len, false, out);
		return;
	case CODEC_QP:
		ts_mime_qp_decode(&d->qp, in, len, &d->raw);
		break;
	case CODEC_BASE64:
		ts_mime_base64_decode(&d->b64, in, len, &d->raw);
		break;
	}
	codec_convert(d, d->raw.data, d->raw.len, false, out);
	d->raw.len = 0;
}

void
ts_mime_text_decoder_finish(struct ts_mime_text_decoder **dp,
			    struct ts_mime_buf *out)
{
	struct ts_mime_text_decoder *d = *dp;
	if (d == NULL)
		return;
	*dp = NULL;
	if (d->cte == CODEC_QP)
		ts_mime_qp_finish(&d->qp, &d->raw);
	else if (d->cte == CODEC_BASE64)
		ts_mime_base64_finish(&d->b64, &d->raw);
	codec_convert(d, d->raw.data, d->raw.len, true, out);
	if (d->have_cd)
		iconv_close(d->cd);
	ts_mime_buf_free(&d->raw);
	ts_mime_buf_add(out, "", 0);
	free(d);
}

/*
 * kernel/store/md5.c — MD5 (RFC 1321) whose chaining state can be saved
 * and resumed, and the CRAM-MD5 secrets built on it.
 *
 * A CRAM-MD5 server never needs the password: HMAC-MD5 (RFC 2104) starts
 * both of its hashes with one block derived from the key, so MD5's state
 * after that block (the "inner" and "outer" states) is all it keeps
 * (RFC 2195 section 4 suggests exactly this).  GnuTLS does not expose
 * MD5's intermediate state, hence this small implementation, written from
 * the RFC and tested against its vectors and against GnuTLS's HMAC-MD5.
 * It is not a general-purpose hash: nothing else should use MD5.
 */
#include "config.h"

#include <string.h>

#include "kernel/store/md5.h"

/* T[i] = floor(2^32 * |sin(i + 1)|), RFC 1321 section 3.4. */
static const uint32_t md5_t[64] = {
	0xd76aa478, 0xe8c7b756, 0x242070db, 0xc1bdceee, 0xf57c0faf, 0x4787c62a,
	0xa8304613, 0xfd469501, 0x698098d8, 0x8b44f7af, 0xffff5bb1, 0x895cd7be,
	0x6b901122, 0xfd987193, 0xa679438e, 0x49b40821, 0xf61e2562, 0xc040b340,
	0x265e5a51, 0xe9b6c7aa, 0xd62f105d, 0x02441453, 0xd8a1e681, 0xe7d3fbc8,
	0x21e1cde6, 0xc33707d6, 0xf4d50d87, 0x455a14ed, 0xa9e3e905, 0xfcefa3f8,
	0x676f02d9, 0x8d2a4c8a, 0xfffa3942, 0x8771f681, 0x6d9d6122, 0xfde5380c,
	0xa4beea44, 0x4bdecfa9, 0xf6bb4b60, 0xbebfbc70, 0x289b7ec6, 0xeaa127fa,
	0xd4ef3085, 0x04881d05, 0xd9d4d039, 0xe6db99e5, 0x1fa27cf8, 0xc4ac5665,
	0xf4292244, 0x432aff97, 0xab9423a7, 0xfc93a039, 0x655b59c3, 0x8f0ccc92,
	0xffeff47d, 0x85845dd1, 0x6fa87e4f, 0xfe2ce6e0, 0xa3014314, 0x4e0811a1,
	0xf7537e82, 0xbd3af235, 0x2ad7d2bb, 0xeb86d391,
};

/* Left-rotation amounts, four per round. */
static const unsigned md5_shift[4][4] = {
	{ 7, 12, 17, 22 },
	{ 5, 9, 14, 20 },
	{ 4, 11, 16, 23 },
	{ 6, 10, 15, 21 },
};

static uint32_t
md5_rotl(uint32_t x, unsigned n)
{
	return (x << n) | (x >> (32 - n));
}

static uint32_t
md5_load_le(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[3] << 24;
}

static void
md5_store_le(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
	p[2] = (uint8_t)(v >> 16);
	p[3] = (uint8_t)(v >> 24);
}

/* Process one 64-byte block into state (RFC 1321 section 3.4). */
static void
md5_compress(uint32_t state[4], const uint8_t block[TS__MD5_BLOCK])
{
	uint32_t x[16];
	uint32_t a = state[0], b = state[1], c = state[2], d = state[3];

	for (int i = 0; i < 16; i++)
		x[i] = md5_load_le(block + 4 * i);
	for (unsigned i = 0; i < 64; i++) {
		unsigned round = i / 16, k;
		uint32_t f;
		switch (round) {
		case 0: /* F(X,Y,Z) = XY v not(X) Z */
			f = (b & c) | (~b & d);
			k = i;
			break;
		case 1: /* G(X,Y,Z) = XZ v Y not(Z) */
			f = (b & d) | (c & ~d);
			k = (5 * i + 1) % 16;
			break;
		case 2: /* H(X,Y,Z) = X xor Y xor Z */
			f = b ^ c ^ d;
			k = (3 * i + 5) % 16;
			break;
		default: /* I(X,Y,Z) = Y xor (X v not(Z)) */
			f = c ^ (b | ~d);
			k = (7 * i) % 16;
			break;
		}
		uint32_t t = a + f + x[k] + md5_t[i];
		a = d;
		d = c;
		c = b;
		b = b + md5_rotl(t, md5_shift[round][i % 4]);
	}
	state[0] += a;
	state[1] += b;
	state[2] += c;
	state[3] += d;
}

void
ts__md5_init(struct ts__md5 *md)
{
	static const uint32_t initial[4] = { 0x67452301, 0xefcdab89, 0x98badcfe,
					     0x10325476 };
	ts__md5_resume(md, initial, 0);
}

void
ts__md5_resume(struct ts__md5 *md, const uint32_t state[4], uint64_t length)
{
	memcpy(md->state, state, sizeof(md->state));
	md->length = length;
	md->buf_len = 0;
}

void
ts__md5_update(struct ts__md5 *md, const void *data, size_t len)
{
	const uint8_t *p = data;

	md->length += len;
	if (md->buf_len > 0) {
		size_t take = TS__MD5_BLOCK - md->buf_len;
		if (take > len)
			take = len;
		memcpy(md->buf + md->buf_len, p, take);
		md->buf_len += take;
		p += take;
		len -= take;
		if (md->buf_len < TS__MD5_BLOCK)
			return;
		md5_compress(md->state, md->buf);
		md->buf_len = 0;
	}
	for (; len >= TS__MD5_BLOCK; p += TS__MD5_BLOCK, len -= TS__MD5_BLOCK)
		md5_compress(md->state, p);
	memcpy(md->buf, p, len);
	md->buf_len = len;
}

void
ts__md5_final(struct ts__md5 *md, uint8_t digest[TS__MD5_DIGEST])
{
	/* A 1 bit, zeros up to 56 mod 64, then the bit length (LE). */
	uint64_t bits = md->length * 8;
	uint8_t pad[TS__MD5_BLOCK + 8] = { 0x80 };
	size_t pad_len = (md->buf_len < 56 ? 56 : 120) - md->buf_len;

	for (int i = 0; i < 8; i++)
		pad[pad_len + (size_t)i] = (uint8_t)(bits >> (8 * i));
	ts__md5_update(md, pad, pad_len + 8);
	for (int i = 0; i < 4; i++)
		md5_store_le(digest + 4 * i, md->state[i]);
	explicit_bzero(md, sizeof(*md));
}

void
ts__md5(const void *data, size_t len, uint8_t digest[TS__MD5_DIGEST])
{
	struct ts__md5 md;

	ts__md5_init(&md);
	ts__md5_update(&md, data, len);
	ts__md5_final(&md, digest);
}

void
ts__cram_md5_states(const void *key, size_t key_len, uint32_t inner[4],
		    uint32_t outer[4])
{
	uint8_t k[TS__MD5_BLOCK] = { 0 };
	uint8_t block[TS__MD5_BLOCK];
	struct ts__md5 md;

	if (key_len > TS__MD5_BLOCK)
		ts__md5(key, key_len, k);
	else if (key_len > 0)
		memcpy(k, key, key_len);

	ts__md5_init(&md);
	for (int i = 0; i < TS__MD5_BLOCK; i++)
		block[i] = k[i] ^ 0x36;
	md5_compress(md.state, block);
	memcpy(inner, md.state, sizeof(md.state));

	ts__md5_init(&md);
	for (int i = 0; i < TS__MD5_BLOCK; i++)
		block[i] = k[i] ^ 0x5c;
	md5_compress(md.state, block);
	memcpy(outer, md.state, sizeof(md.state));

	/* The key and its pads are password material. */
	explicit_bzero(k, sizeof(k));
	explicit_bzero(block, sizeof(block));
	explicit_bzero(&md, sizeof(md));
}

void
ts__cram_md5_hmac(const uint32_t inner[4], const uint32_t outer[4],
		  const void *msg, size_t len, uint8_t digest[TS__MD5_DIGEST])
{
	struct ts__md5 md;
	uint8_t inner_digest[TS__MD5_DIGEST];

	ts__md5_resume(&md, inner, TS__MD5_BLOCK);
	ts__md5_update(&md, msg, len);
	ts__md5_final(&md, inner_digest);
	ts__md5_resume(&md, outer, TS__MD5_BLOCK);
	ts__md5_update(&md, inner_digest, sizeof(inner_digest));
	ts__md5_final(&md, digest);
}

void
ts__md5_state_pack(const uint32_t state[4], uint8_t out[16])
{
	for (int i = 0; i < 4; i++)
		md5_store_le(out + 4 * i, state[i]);
}

void
ts__md5_state_unpack(const uint8_t in[16], uint32_t state[4])
{
	for (int i = 0; i < 4; i++)
		state[i] = md5_load_le(in + 4 * i);
}

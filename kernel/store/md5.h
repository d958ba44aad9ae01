/*
 * kernel/store/md5.h — MD5 (RFC 1321) with access to its chaining state,
 * and the HMAC-MD5 pad states CRAM-MD5 (RFC 2195) keeps instead of a
 * password (md5.c).
 *
 * GnuTLS computes MD5 but never shows the state between blocks, and a
 * CRAM-MD5 secret is exactly that state after one block.  MD5 is broken
 * for collisions; this exists only for CRAM-MD5, never as a general hash.
 */
#ifndef TESSERA_STORE_MD5_H
#define TESSERA_STORE_MD5_H

#include <stddef.h>
#include <stdint.h>

#define TS__MD5_BLOCK 64
#define TS__MD5_DIGEST 16

/* A running MD5 computation. */
struct ts__md5 {
	uint32_t state[4]; /* A, B, C, D */
	uint64_t length; /* bytes hashed so far */
	uint8_t buf[TS__MD5_BLOCK];
	size_t buf_len;
};

void ts__md5_init(struct ts__md5 *md);
/*
 * Continue from a chaining state saved after `length` bytes (a multiple of
 * 64): what an HMAC pad state is.
 */
void ts__md5_resume(struct ts__md5 *md, const uint32_t state[4],
		    uint64_t length);
void ts__md5_update(struct ts__md5 *md, const void *data, size_t len);
/* Pad, write the digest, and wipe md. */
void ts__md5_final(struct ts__md5 *md, uint8_t digest[TS__MD5_DIGEST]);
/* One-shot digest. */
void ts__md5(const void *data, size_t len, uint8_t digest[TS__MD5_DIGEST]);

/*
 * The HMAC-MD5 states for `key` (RFC 2104): MD5's chaining state after
 * the single block key XOR ipad (inner) and key XOR opad (outer), the key
 * first replaced by its MD5 digest when longer than 64 bytes.
 */
void ts__cram_md5_states(const void *key, size_t key_len, uint32_t inner[4],
			 uint32_t outer[4]);
/*
 * HMAC-MD5(key, msg) from the two states alone: what a CRAM-MD5 server
 * compares the client's digest with.
 */
void ts__cram_md5_hmac(const uint32_t inner[4], const uint32_t outer[4],
		       const void *msg, size_t len,
		       uint8_t digest[TS__MD5_DIGEST]);

/* Serialise a state as 16 bytes (each word little-endian) and back. */
void ts__md5_state_pack(const uint32_t state[4], uint8_t out[16]);
void ts__md5_state_unpack(const uint8_t in[16], uint32_t state[4]);

#endif

/*
 * modules/dmarc/align.c — the Author Domain(s) and domain comparisons.
 *
 * Finds the RFC5322.From domains of a message header with the kernel's
 * header and address parsers (tessera/mime.h), turns U-labels into
 * A-labels (RFC 9989, "Extract Author Domain") and compares domains for
 * identifier alignment: strict is equality, relaxed needs the Organizational
 * Domains that eval.c finds with tree walks.  Nothing here does DNS.
 */
#include "config.h"

#include <idn2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <tessera/common.h>
#include <tessera/mime.h>

#include "dmarc.h"

const char *
dmarc_domain_normalize(const char *domain, char *buf)
{
	char tmp[DMARC_NAME_MAX + 1];
	size_t n = domain != NULL ? strlen(domain) : 0, label = 0;
	bool ascii = true;

	if (n == 0 || n > DMARC_NAME_MAX)
		return NULL;
	memcpy(tmp, domain, n + 1);
	if (tmp[n - 1] == '.')
		tmp[--n] = '\0';
	if (n == 0)
		return NULL;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)tmp[i] >= 0x80)
			ascii = false;
	if (!ascii) {
		char *out = NULL;

		/* RFC 9989 "Extract Author Domain": U-labels to A-labels */
		if (idn2_to_ascii_8z(tmp, &out,
				     IDN2_NFC_INPUT | IDN2_NONTRANSITIONAL) !=
			    IDN2_OK ||
		    out == NULL || strlen(out) >= DMARC_NAME_MAX) {
			free(out);
			return NULL;
		}
		snprintf(tmp, sizeof(tmp), "%s", out);
		free(out);
		n = strlen(tmp);
	}
	if (n >= DMARC_NAME_MAX)
		return NULL;
	for (size_t i = 0; i <= n; i++) {
		char c = tmp[i];

		if (c == '.' || c == '\0') {
			if (label == 0 || label > 63)
				return NULL;
			label = 0;
			buf[i] = c;
			continue;
		}
		if (c >= 'A' && c <= 'Z')
			c = (char)(c - 'A' + 'a');
		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		      c == '-' || c == '_'))
			return NULL;
		buf[i] = c;
		label++;
	}
	return buf;
}

bool
dmarc_domain_equal(const char *a, const char *b)
{
	return a != NULL && b != NULL && strcasecmp(a, b) == 0;
}

bool
dmarc_domain_within(const char *domain, const char *parent)
{
	size_t n, p;

	if (domain == NULL || parent == NULL || parent[0] == '\0')
		return false;
	n = strlen(domain);
	p = strlen(parent);
	if (n == p)
		return strcasecmp(domain, parent) == 0;
	return n > p && domain[n - p - 1] == '.' &&
	       strcasecmp(domain + n - p, parent) == 0;
}

static void
dmarc_from_add(struct dmarc_from *from, const char *domain)
{
	for (size_t i = 0; i < from->count; i++)
		if (strcmp(from->domains[i], domain) == 0)
			return;
	if (from->count == DMARC_FROM_MAX) {
		from->too_many = true;
		return;
	}
	from->domains[from->count++] = ts_xstrdup(domain);
}

void
dmarc_from_parse(const char *data, size_t len, struct dmarc_from *from)
{
	struct ts_mime_header_iter it;
	struct ts_mime_field f;

	memset(from, 0, sizeof(*from));
	ts_mime_header_init(&it, data, len);
	while (ts_mime_header_next(&it, &f)) {
		struct ts_mime_address *list;

		if (!ts_mime_field_is(&f, "From"))
			continue;
		from->fields++;
		list = ts_mime_address_parse(f.value, f.value_len);
		for (struct ts_mime_address *a = list; a != NULL; a = a->next) {
			char buf[DMARC_NAME_MAX];

			if (a->kind != TS_MIME_ADDRESS_MAILBOX)
				continue;
			from->addresses++;
			if (dmarc_domain_normalize(a->domain, buf) == NULL)
				from->bad_domain = true;
			else
				dmarc_from_add(from, buf);
		}
		ts_mime_address_free(&list);
	}
}

void
dmarc_from_clear(struct dmarc_from *from)
{
	for (size_t i = 0; i < from->count; i++)
		free(from->domains[i]);
	memset(from, 0, sizeof(*from));
}

/*
 * modules/dmarc/discover.c — RFC 9989's DNS tree walk.
 *
 * A walk asks for _dmarc.NAME at the starting domain, then — when the
 * name has 8 labels or more — at its last 7 labels, then one label less
 * each time up to the top-level label, so never more than 8 queries.  At
 * each name the TXT records that are not DMARC records are dropped and
 * several DMARC records are all discarded (step 2/7).  A policy walk
 * ("DMARC Policy Discovery") stops at the first record; an Organizational
 * Domain walk
 * ("Organizational Domain Discovery") goes on until a record says psd=n, or
 * psd=y above the start, and then picks the Organizational Domain from what it
 * found.  No Public Suffix List is involved.
 *
 * This file only says what to ask and interprets answers; eval.c does the
 * asking (with a cache, so that walks sharing names share queries).
 */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "dmarc.h"

unsigned
dmarc_label_count(const char *domain)
{
	unsigned n = 0;

	if (domain == NULL || domain[0] == '\0')
		return 0;
	for (n = 1; *domain != '\0'; domain++)
		if (*domain == '.')
			n++;
	return n;
}

/* The suffix of domain made of its last `keep` labels (keep >= 1). */
static const char *
dmarc_suffix(const char *domain, unsigned keep)
{
	unsigned n = dmarc_label_count(domain);
	const char *p = domain;

	while (n > keep) {
		p = strchr(p, '.');
		if (p == NULL)
			return domain;
		p++;
		n--;
	}
	return p;
}

void
dmarc_lookup_from_answer(const struct ts_dns_answer *a,
			 struct dmarc_lookup *out)
{
	memset(out, 0, sizeof(*out));
	out->status = DMARC_LOOKUP_NONE;
	if (a->security == TS_DNS_BOGUS || a->status == TS_DNS_TEMPFAIL) {
		out->status = DMARC_LOOKUP_TEMPFAIL;
		return;
	}
	if (a->status != TS_DNS_OK)
		return; /* NXDOMAIN, NODATA; PERMFAIL: nothing to be had */
	for (size_t i = 0; i < a->count; i++) {
		struct dmarc_record rec;

		if (dmarc_record_parse(a->records[i].u.txt.text,
				       a->records[i].u.txt.len, &rec) != 0)
			continue;
		if (out->dmarc_records++ == 0)
			out->rec = rec;
	}
	/* tree walk step 2: several DMARC records are all discarded */
	if (out->dmarc_records == 1)
		out->status = DMARC_LOOKUP_FOUND;
	else
		memset(&out->rec, 0, sizeof(out->rec));
}

void
dmarc_walk_init(struct dmarc_walk *w, const char *domain,
		enum dmarc_walk_mode mode)
{
	memset(w, 0, sizeof(*w));
	w->mode = mode;
	snprintf(w->start, sizeof(w->start), "%s", domain);
	snprintf(w->target, sizeof(w->target), "%s", w->start);
	w->done = w->start[0] == '\0';
}

const char *
dmarc_walk_next(struct dmarc_walk *w)
{
	if (w->done)
		return NULL;
	snprintf(w->qname, sizeof(w->qname), "_dmarc.%s", w->target);
	return w->qname;
}

void
dmarc_walk_feed(struct dmarc_walk *w, const struct dmarc_lookup *l)
{
	unsigned labels;

	if (w->done)
		return;
	w->steps++;
	if (l->status == DMARC_LOOKUP_TEMPFAIL) {
		w->temperror = true;
		w->done = true;
		return;
	}
	if (l->status == DMARC_LOOKUP_FOUND &&
	    w->found_count < DMARC_WALK_MAX) {
		struct dmarc_found *f = &w->found[w->found_count++];

		snprintf(f->domain, sizeof(f->domain), "%s", w->target);
		f->rec = l->rec;
		if (w->mode == DMARC_WALK_POLICY) {
			w->done = true;
			return;
		}
		/* step 2: psd=n stops at once; step 7: psd=y above it */
		if (l->rec.psd == DMARC_PSD_N ||
		    (l->rec.psd == DMARC_PSD_Y &&
		     strcmp(w->target, w->start) != 0)) {
			w->done = true;
			return;
		}
	}
	labels = dmarc_label_count(w->target);
	if (labels <= 1 || w->steps >= DMARC_WALK_MAX) {
		w->done = true;
		return;
	}
	/* step 5: a long name goes straight to its last 7 labels */
	if (w->steps == 1 && labels >= 8)
		labels = 8;
	memmove(w->target, dmarc_suffix(w->target, labels - 1),
		strlen(dmarc_suffix(w->target, labels - 1)) + 1);
}

const char *
dmarc_walk_org(const struct dmarc_walk *w, char *buf)
{
	/* the found records run from the longest name to the shortest */
	for (size_t i = 0; i < w->found_count; i++) {
		const struct dmarc_found *f = &w->found[i];

		if (f->rec.psd == DMARC_PSD_N) {
			snprintf(buf, DMARC_NAME_MAX, "%s", f->domain);
			return buf;
		}
		if (f->rec.psd == DMARC_PSD_Y &&
		    strcmp(f->domain, w->start) != 0) {
			unsigned n = dmarc_label_count(f->domain) + 1;

			snprintf(buf, DMARC_NAME_MAX, "%s",
				 dmarc_suffix(w->start, n));
			return buf;
		}
	}
	if (w->found_count > 0)
		snprintf(buf, DMARC_NAME_MAX, "%s",
			 w->found[w->found_count - 1].domain);
	else
		snprintf(buf, DMARC_NAME_MAX, "%s", w->start);
	return buf;
}

/*
 * table.c: the column-aligned tables palyractl prints for people
 * (approvals list, approvals grants, usage, budget list).
 *
 * Runs in palyractl. Cells are copied with control bytes replaced by '?',
 * so server text cannot act on a terminal, and each column is as wide as
 * its widest cell; rows are kept until the table is printed.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"

struct ctl_table {
	size_t ncols;
	char *align; /* 'l' or 'r' per column */
	size_t *width;
	char **cells; /* rows * ncols, the header first */
	size_t nrows;
	size_t cap;
};

static char *
clean_copy(const char *s)
{
	char *out, *p;

	if ((out = strdup(s != NULL ? s : "")) == NULL)
		return NULL;
	for (p = out; *p != '\0'; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			*p = '?';
	return out;
}

struct ctl_table *
ctl_table_new(size_t ncols, const char *align, const char *const *header)
{
	struct ctl_table *t;

	if ((t = calloc(1, sizeof(*t))) == NULL)
		return NULL;
	t->ncols = ncols;
	if ((t->align = strdup(align)) == NULL || strlen(align) != ncols ||
	    (t->width = calloc(ncols, sizeof(*t->width))) == NULL ||
	    ctl_table_add(t, header) < 0) {
		ctl_table_free(t);
		return NULL;
	}
	return t;
}

int
ctl_table_add(struct ctl_table *t, const char *const *row)
{
	char **grown;
	size_t i, len;

	if (t->nrows == t->cap) {
		t->cap = t->cap == 0 ? 16 : t->cap * 2;
		if ((grown = reallocarray(
			 t->cells, t->cap * t->ncols, sizeof(*grown))) == NULL)
			return -1;
		t->cells = grown;
	}
	for (i = 0; i < t->ncols; i++) {
		if ((t->cells[t->nrows * t->ncols + i] = clean_copy(row[i])) ==
		    NULL) {
			while (i-- > 0)
				free(t->cells[t->nrows * t->ncols + i]);
			return -1;
		}
		if ((len = strlen(row[i] != NULL ? row[i] : "")) > t->width[i])
			t->width[i] = len;
	}
	t->nrows++;
	return 0;
}

void
ctl_table_print(const struct ctl_table *t, FILE *f)
{
	const char *cell;
	size_t r, c;
	int pad;

	for (r = 0; r < t->nrows; r++) {
		for (c = 0; c < t->ncols; c++) {
			cell = t->cells[r * t->ncols + c];
			pad = (int)(t->width[c] - strlen(cell));
			if (t->align[c] == 'r')
				fprintf(f, "%*s%s", pad, "", cell);
			else if (c + 1 < t->ncols)
				fprintf(f, "%s%*s", cell, pad, "");
			else
				fputs(cell, f);
			fputs(c + 1 < t->ncols ? "  " : "\n", f);
		}
	}
}

void
ctl_table_free(struct ctl_table *t)
{
	size_t i;

	if (t == NULL)
		return;
	for (i = 0; i < t->nrows * t->ncols; i++)
		free(t->cells[i]);
	free(t->cells);
	free(t->width);
	free(t->align);
	free(t);
}

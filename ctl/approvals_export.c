/*
 * approvals_export.c: `palyractl approvals export` and `approvals
 * verify-export`: an approval export (ApprovalsService ExportApprovals)
 * written to stdout or a file and checked line by line as it comes, and
 * the offline check of an export file (export_verify.c).
 *
 * Runs in palyractl as the invoking user. export writes stdout, or a file
 * that appears whole or not at all (a temporary file renamed after fsync);
 * verify-export only reads its file and needs no daemon. Every line is
 * bounded (CTL_EXPORT_LINE_MAX). Both draw a progress line on stderr when
 * it is a terminal (progress.c).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "ctl.h"
#include "grpc_status.h"
#include "palyra/v1/gateway.pb-c.h"

#define APPROVALS "/palyra.v1.ApprovalsService/"

int
ctl_approvals_verify_export(const struct ctl_ctx *ctx, const char *path)
{
	struct ctl_export_verifier v;
	struct ctl_progress p;
	FILE *f;
	char *line = NULL, hex[65];
	size_t cap = 0;
	ssize_t n;
	int rc = 0;

	if ((f = fopen(path, "r")) == NULL) {
		fprintf(stderr, "palyractl: %s: %s\n", path, strerror(errno));
		return CTL_EXIT_FAIL;
	}
	ctl_export_verifier_init(&v);
	ctl_progress_start(&p, ctx->json, "approvals verify-export");
	while (rc == 0 && (n = getline(&line, &cap, f)) != -1) {
		ctl_progress_update(&p, v.line, "lines");
		if (n > 0 && line[n - 1] == '\n')
			n--;
		if ((size_t)n > CTL_EXPORT_LINE_MAX) {
			v.line++;
			rc = ctl_export_verifier_fail(
			    &v, "line longer than 4 MiB");
			break;
		}
		rc = ctl_export_verifier_line(&v, line, (size_t)n);
	}
	ctl_progress_end(&p);
	if (rc == 0 && ferror(f)) {
		fprintf(stderr, "palyractl: %s: %s\n", path, strerror(errno));
		free(line);
		fclose(f);
		return CTL_EXIT_FAIL;
	}
	free(line);
	fclose(f);
	if (rc == 0)
		rc = ctl_export_verifier_finish(&v);
	if (rc < 0) {
		fprintf(stderr, "%s:%s\n", path, v.error);
		return CTL_EXIT_FAIL;
	}
	ctl_hex(v.chain, 32, hex);
	if (ctx->json)
		ctl_print_json(json_pack("{s:b, s:I, s:s}", "ok", 1,
		    "records", (json_int_t)v.count, "chain", hex));
	else
		printf("ok: %llu records, chain %s\n",
		    (unsigned long long)v.count, hex);
	return CTL_EXIT_OK;
}

/* approvals export: chunks of whole lines, written and verified as they
 * come. */
struct export_call {
	FILE *out;
	struct ctl_export_verifier v;
	char *pending; /* a line not yet complete */
	size_t pending_len;
	int bad; /* undecodable, or write error */
	int verify_failed;
	struct ctl_progress progress;
};

static int
export_line(struct export_call *ec, const char *line, size_t len)
{
	if (fwrite(line, 1, len, ec->out) != len ||
	    fputc('\n', ec->out) == EOF) {
		ec->bad = 1;
		return -1;
	}
	if (!ec->verify_failed &&
	    ctl_export_verifier_line(&ec->v, line, len) < 0)
		ec->verify_failed = 1;
	ctl_progress_update(&ec->progress, ec->v.line, "lines");
	return 0;
}

static int
export_msg(const uint8_t *msg, size_t len, void *arg)
{
	struct export_call *ec = arg;
	Palyra__V1__ExportChunk *chunk;
	const char *p, *nl;
	size_t n, left;
	char *grown;

	if ((chunk = palyra__v1__export_chunk__unpack(NULL, len, msg)) ==
	    NULL) {
		ec->bad = 1;
		return -1;
	}
	p = (const char *)chunk->ndjson.data;
	left = chunk->ndjson.len;
	while (left > 0) {
		if ((nl = memchr(p, '\n', left)) == NULL) {
			/* The rest of a line: kept until its newline. */
			if (ec->pending_len + left > CTL_EXPORT_LINE_MAX) {
				ec->bad = 1;
				goto fail;
			}
			if ((grown = realloc(ec->pending,
				 ec->pending_len + left)) == NULL) {
				ec->bad = 1;
				goto fail;
			}
			ec->pending = grown;
			memcpy(ec->pending + ec->pending_len, p, left);
			ec->pending_len += left;
			break;
		}
		n = (size_t)(nl - p);
		if (ec->pending_len > 0) {
			if (ec->pending_len + n > CTL_EXPORT_LINE_MAX ||
			    (grown = realloc(ec->pending,
				 ec->pending_len + n + 1)) == NULL) {
				ec->bad = 1;
				goto fail;
			}
			ec->pending = grown;
			memcpy(ec->pending + ec->pending_len, p, n);
			if (export_line(ec, ec->pending, ec->pending_len + n) <
			    0)
				goto fail;
			ec->pending_len = 0;
		} else if (export_line(ec, p, n) < 0)
			goto fail;
		p = nl + 1;
		left -= n + 1;
	}
	palyra__v1__export_chunk__free_unpacked(chunk, NULL);
	return 0;
fail:
	palyra__v1__export_chunk__free_unpacked(chunk, NULL);
	return -1;
}

int
ctl_approvals_export(const struct ctl_ctx *ctx, const char *output,
    int64_t since_ms, const char *token)
{
	Palyra__V1__ExportApprovalsRequest req =
	    PALYRA__V1__EXPORT_APPROVALS_REQUEST__INIT;
	struct ctl_grpc_result res;
	struct export_call ec;
	char tmp[4096], hex[65];
	uint8_t *buf;
	size_t len;
	int fd = -1, called, ok = 0;

	memset(&ec, 0, sizeof(ec));
	ctl_export_verifier_init(&ec.v);
	ec.out = stdout;
	if (output != NULL) {
		/* A file appears whole or not at all. */
		if ((size_t)snprintf(tmp, sizeof(tmp), "%s.XXXXXX",
			output) >= sizeof(tmp)) {
			fprintf(stderr, "palyractl: approvals export: file "
					"name too long\n");
			return CTL_EXIT_FAIL;
		}
		if ((fd = mkstemp(tmp)) < 0 || fchmod(fd, 0644) < 0 ||
		    (ec.out = fdopen(fd, "w")) == NULL) {
			fprintf(stderr, "palyractl: approvals export: %s: %s\n",
			    output, strerror(errno));
			if (fd >= 0) {
				close(fd);
				unlink(tmp);
			}
			return CTL_EXIT_FAIL;
		}
	}
	req.since_unix_ms = since_ms;
	len = palyra__v1__export_approvals_request__get_packed_size(&req);
	if ((buf = malloc(len > 0 ? len : 1)) == NULL)
		goto out;
	palyra__v1__export_approvals_request__pack(&req, buf);
	/* Not over exported lines on the same terminal. */
	ctl_progress_start(&ec.progress, ctx->json || (output == NULL &&
	    isatty(STDOUT_FILENO)), "approvals export");
	ctl_progress_update(&ec.progress, 0, "lines");
	called = ctl_grpc_call(ctx, APPROVALS "ExportApprovals", token, buf,
	    len, export_msg, &ec, &res);
	ctl_progress_end(&ec.progress);
	free(buf);
	if (called < 0 || res.transport_error)
		fprintf(stderr, "palyractl: approvals export failed: %s\n",
		    ec.bad ? "undecodable or unwritable export" : res.error);
	else if (res.grpc_status != 0)
		fprintf(stderr, "palyractl: approvals export failed: %s: %s\n",
		    grpc_status_name(res.grpc_status), res.grpc_message);
	else if (ec.pending_len > 0)
		fprintf(stderr, "palyractl: approvals export failed: the "
				"export ended inside a line\n");
	else if (ec.verify_failed || ctl_export_verifier_finish(&ec.v) < 0)
		fprintf(stderr,
		    "palyractl: approvals export: the export "
		    "does not verify: line %s\n",
		    ec.v.error);
	else if (fflush(ec.out) != 0 ||
		 (output != NULL && fsync(fileno(ec.out)) != 0))
		fprintf(stderr, "palyractl: approvals export: %s: %s\n",
		    output != NULL ? output : "stdout", strerror(errno));
	else
		ok = 1;
out:
	free(ec.pending);
	if (output != NULL) {
		if (fclose(ec.out) != 0)
			ok = 0;
		if (ok && rename(tmp, output) < 0) {
			fprintf(stderr, "palyractl: approvals export: %s: %s\n",
			    output, strerror(errno));
			ok = 0;
		}
		if (!ok)
			unlink(tmp);
	}
	if (ok && (output != NULL || ctx->verbose)) {
		ctl_hex(ec.v.chain, 32, hex);
		fprintf(stderr, "exported %llu records, chain %s\n",
		    (unsigned long long)ec.v.count, hex);
	}
	return ok ? CTL_EXIT_OK : CTL_EXIT_FAIL;
}

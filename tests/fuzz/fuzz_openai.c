/*
 * fuzz_openai.c: libFuzzer target for the OpenAI Chat Completions response
 * stream of palyra-worker (worker/openai.c, worker/proto.c) behind the SSE
 * parser, and for its error bodies: see provider_stream.h.
 * Runs in the fuzzer only; touches nothing but memory.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>

#include <jansson.h>

#include "../../worker/openai.c"
#include "../../worker/proto.c"

#define FUZZ_PROTO wrk_openai_proto
#include "provider_stream.h"

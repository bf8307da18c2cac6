/*
 * runevent.h: facts about palyra.v1.RunEvent shared by every process.
 */
#ifndef PALYRA_RUNEVENT_H
#define PALYRA_RUNEVENT_H

#include "palyra/v1/gateway.pb-c.h"

/*
 * The name of ev's kind ("status", "token", "final", "usage", "error",
 * "note", "tool_call", "tool_result", "input"): the journal's events.kind
 * column and the console's SSE event names. NULL for an event without a
 * known kind.
 */
const char	*run_event_kind(const Palyra__V1__RunEvent *ev);

#endif

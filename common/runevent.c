/*
 * runevent.c: the kind names of palyra.v1.RunEvent (runevent.h).
 */
#include <stddef.h>

#include "runevent.h"

const char *
run_event_kind(const Palyra__V1__RunEvent *ev)
{
	switch (ev->event_case) {
	case PALYRA__V1__RUN_EVENT__EVENT_STATUS:
		return "status";
	case PALYRA__V1__RUN_EVENT__EVENT_TOKEN:
		return "token";
	case PALYRA__V1__RUN_EVENT__EVENT_FINAL:
		return "final";
	case PALYRA__V1__RUN_EVENT__EVENT_USAGE:
		return "usage";
	case PALYRA__V1__RUN_EVENT__EVENT_ERROR:
		return "error";
	case PALYRA__V1__RUN_EVENT__EVENT_NOTE:
		return "note";
	case PALYRA__V1__RUN_EVENT__EVENT_TOOL_CALL:
		return "tool_call";
	case PALYRA__V1__RUN_EVENT__EVENT_TOOL_RESULT:
		return "tool_result";
	case PALYRA__V1__RUN_EVENT__EVENT_INPUT:
		return "input";
	case PALYRA__V1__RUN_EVENT__EVENT_APPROVAL_REQUEST:
		return "approval_request";
	case PALYRA__V1__RUN_EVENT__EVENT_APPROVAL_DECIDED:
		return "approval_decided";
	case PALYRA__V1__RUN_EVENT__EVENT_BUDGET_WARNING:
		return "budget_warning";
	default:
		return NULL;
	}
}

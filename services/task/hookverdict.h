/* hookverdict.h — what a webhook receiver's HTTP status means for the attempt:
 * 2xx delivered; 408, 429 and 5xx transient (retried); every other status, redirects
 * included (they are never followed), a permanent refusal. */
#ifndef FP_HOOKVERDICT_H
#define FP_HOOKVERDICT_H

#include "kind.h"

/* The verdict for a final HTTP status (100..599; anything else is a REJECT). */
fp_task_verdict fp_hookverdict_of_status(long status);

#endif

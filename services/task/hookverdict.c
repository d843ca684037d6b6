/* hookverdict.c — see hookverdict.h. */
#include "hookverdict.h"

fp_task_verdict fp_hookverdict_of_status(long status)
{
    if (status >= 200 && status <= 299)
        return FP_TASK_DONE;
    if (status == 408 || status == 429 || (status >= 500 && status <= 599))
        return FP_TASK_RETRY;
    return FP_TASK_REJECT;
}

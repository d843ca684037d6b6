/* hookrecv.h — tests/fakes/hook_receiver.py run by a test: start it on a free port,
 * script its answers, read what it recorded. Every helper fails the test on error. */
#ifndef FP_HOOKRECV_H
#define FP_HOOKRECV_H

#include <cjson/cJSON.h>
#include <sys/types.h>

typedef struct hr_receiver {
    pid_t pid;
    int port;
    char url[128];           /* http://127.0.0.1:<port> */
    char *secret_path;       /* the key file it verifies with, or NULL */
} hr_receiver;

/* Starts a receiver that verifies signatures made with secret (NULL: it checks none),
 * and waits (up to 20 s) until it listens. */
void hr_start(hr_receiver *r, const char *secret);

/* Stops it and removes its key file. */
void hr_stop(hr_receiver *r);

/* POSTs a script (see hook_receiver.py: {"next": [...]}, {"id":..., ...}, {"fail_percent":...}). */
void hr_script(const hr_receiver *r, const char *json);

/* Its records, {"requests": [...]}, and its counters (caller deletes). */
cJSON *hr_requests(const hr_receiver *r);
cJSON *hr_stats(const hr_receiver *r);

/* The integer member name of obj, failing the test when there is none. */
int hr_int(const cJSON *obj, const char *name);

#endif

/* hookrecv.c — see hookrecv.h. */
#include "hookrecv.h"

#include <criterion/criterion.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "testkit.h"

void hr_start(hr_receiver *r, const char *secret)
{
    char script[512];
    int fds[2];
    memset(r, 0, sizeof *r);
    snprintf(script, sizeof script, "%s/tests/fakes/hook_receiver.py", FP_SOURCE_DIR);
    if (secret)
        r->secret_path = tk_write_temp(secret);
    cr_assert_eq(pipe(fds), 0);
    pid_t parent = getpid();
    r->pid = fork();
    cr_assert_geq(r->pid, 0);
    if (r->pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);   /* never outlives a crashed test */
        if (getppid() != parent)
            _exit(127);
        dup2(fds[1], 1);
        close(fds[0]);
        close(fds[1]);
        if (r->secret_path)
            execl("/usr/bin/python3", "python3", script, "--port", "0", "--secret-file",
                  r->secret_path, (char *)NULL);
        else
            execl("/usr/bin/python3", "python3", script, "--port", "0", (char *)NULL);
        _exit(127);
    }
    close(fds[1]);
    char line[256] = "";
    size_t n = 0;
    struct pollfd p = {.fd = fds[0], .events = POLLIN};
    double until = tk_now() + 20;
    while (!strchr(line, '\n') && n < sizeof line - 1 && tk_now() < until) {
        if (poll(&p, 1, 200) <= 0)
            continue;
        ssize_t got = read(fds[0], line + n, sizeof line - 1 - n);
        if (got <= 0)
            break;
        n += (size_t)got;
        line[n] = '\0';
    }
    close(fds[0]);
    cr_assert(sscanf(line, "hook receiver listening on 127.0.0.1:%d", &r->port) == 1,
              "the hook receiver did not start: '%s'", line);
    snprintf(r->url, sizeof r->url, "http://127.0.0.1:%d", r->port);
}

void hr_stop(hr_receiver *r)
{
    if (r->pid > 0) {
        kill(r->pid, SIGKILL);
        waitpid(r->pid, NULL, 0);
        r->pid = 0;
    }
    if (r->secret_path) {
        unlink(r->secret_path);
        free(r->secret_path);
        r->secret_path = NULL;
    }
}

void hr_script(const hr_receiver *r, const char *json)
{
    char url[256], *body = NULL;
    snprintf(url, sizeof url, "%s/_control/script", r->url);
    long status = tk_http(url, json, &body);
    cr_assert_eq(status, 200, "script %s: HTTP %ld %s", json, status, body ? body : "");
    free(body);
}

/* GETs a control path and parses the answer. */
static cJSON *get_json(const hr_receiver *r, const char *path)
{
    char *body = NULL;
    long status = tk_http_get(r->port, path, &body);
    cr_assert_eq(status, 200, "GET %s: HTTP %ld", path, status);
    cJSON *doc = cJSON_Parse(body);
    cr_assert_not_null(doc, "GET %s: not JSON: %s", path, body);
    free(body);
    return doc;
}

cJSON *hr_requests(const hr_receiver *r)
{
    return get_json(r, "/_control/requests");
}

cJSON *hr_stats(const hr_receiver *r)
{
    return get_json(r, "/_control/stats");
}

int hr_int(const cJSON *obj, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, name);
    cr_assert(cJSON_IsNumber(v), "no number %s in %s", name, cJSON_PrintUnformatted(obj));
    return v->valueint;
}

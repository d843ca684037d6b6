/* fp-bench-mark-ready NAMESPACE SECONDS — plays the kubelet for the operator
 * benchmark: watches the ingest and consumer pods of NAMESPACE and marks each one that
 * is not Ready yet as Running and Ready through pods/status, until SECONDS have passed
 * or SIGTERM. Prints how many pods it marked. Uses the operator's own client and
 * informer, so it costs the apiserver one watch, not repeated lists. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "informer.h"
#include "kube_client.h"
#include "shutdown.h"

static kube_conn *writer;
static const char *ns;
static long marked;

static int is_ready(const cJSON *pod)
{
    const cJSON *c;
    cJSON_ArrayForEach(c, cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(pod, "status"), "conditions")) {
        const char *type = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(c, "type"));
        const char *st = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(c, "status"));
        if (type && st && !strcmp(type, "Ready") && !strcmp(st, "True"))
            return 1;
    }
    return 0;
}

static void on_pod(void *ctx, op_event_type type, const cJSON *pod)
{
    (void)ctx;
    const char *name = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(pod, "metadata"), "name"));
    if (type == OP_EV_DELETED || !name || is_ready(pod))
        return;
    char path[512];
    snprintf(path, sizeof path, "/api/v1/namespaces/%s/pods/%s/status", ns, name);
    const char *patch = "{\"status\":{\"phase\":\"Running\",\"conditions\":[{\"type\":\"Ready\",\"status\":\"True\"}]}}";
    fp_error err = {0};
    if (kube_request(writer, "PATCH", path, "application/merge-patch+json", patch, NULL, NULL, &err) == 0)
        marked++;
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: fp-bench-mark-ready NAMESPACE SECONDS\n");
        return 2;
    }
    ns = argv[1];
    long seconds = atol(argv[2]);
    fp_shutdown_install();
    fp_error err = {0};
    kube_config *cfg = kube_config_load(NULL, NULL, &err);
    kube_client *c = cfg ? kube_client_new(cfg, &err) : NULL;
    writer = c ? kube_conn_new(c, 30000, &err) : NULL;
    char path[256];
    snprintf(path, sizeof path, "/api/v1/namespaces/%s/pods", ns);
    static const char *const strip[] = {"spec", NULL};
    op_informer_config ic = {.name = "pods", .path = path, .label_selector = "app.kubernetes.io/component in (ingest,consumer)",
                             .strip = strip, .fn = on_pod};
    op_informer *inf = writer ? op_informer_start(c, &ic, &err) : NULL;
    if (!inf) {
        fprintf(stderr, "fp-bench-mark-ready: %s\n", err.msg);
        kube_conn_free(writer);
        kube_client_free(c);
        return 1;
    }
    for (long i = 0; i < seconds * 10 && !fp_shutdown_requested(); i++)
        fp_shutdown_sleep(100);
    op_informer_stop(inf);
    printf("%ld\n", marked);
    kube_conn_free(writer);
    kube_client_free(c);
    return 0;
}

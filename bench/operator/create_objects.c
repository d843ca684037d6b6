/* fp-bench-create NAMESPACE COUNT THREADS — the reference of the operator benchmark:
 * creates COUNT ConfigMaps in NAMESPACE from THREADS threads over the same Kubernetes
 * client the operator uses, as fast as the apiserver takes them. Prints the seconds. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "kube_client.h"

static kube_client *client;
static const char *ns;
static long count, threads, failures;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

static void *creator(void *arg)
{
    long id = (long)arg;
    fp_error err = {0};
    kube_conn *k = kube_conn_new(client, 30000, &err);
    char path[256], body[256];
    snprintf(path, sizeof path, "/api/v1/namespaces/%s/configmaps", ns);
    for (long i = id; k && i < count; i += threads) {
        snprintf(body, sizeof body, "{\"metadata\":{\"name\":\"ref-%ld\"},\"data\":{\"a\":\"b\"}}", i);
        if (kube_request(k, "POST", path, "application/json", body, NULL, NULL, &err) < 0) {
            pthread_mutex_lock(&lock);
            failures++;
            pthread_mutex_unlock(&lock);
        }
    }
    kube_conn_free(k);
    return NULL;
}

int main(int argc, char **argv)
{
    if (argc != 4 || (count = atol(argv[2])) <= 0 || (threads = atol(argv[3])) <= 0 || threads > 64) {
        fprintf(stderr, "usage: fp-bench-create NAMESPACE COUNT THREADS(1-64)\n");
        return 2;
    }
    ns = argv[1];
    fp_error err = {0};
    kube_config *cfg = kube_config_load(NULL, NULL, &err);
    if (!cfg || !(client = kube_client_new(cfg, &err))) {
        fprintf(stderr, "fp-bench-create: %s\n", err.msg);
        return 1;
    }
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    pthread_t t[64];
    for (long i = 0; i < threads; i++)
        pthread_create(&t[i], NULL, creator, (void *)i);
    for (long i = 0; i < threads; i++)
        pthread_join(t[i], NULL);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    kube_client_free(client);
    if (failures) {
        fprintf(stderr, "fp-bench-create: %ld of %ld creates failed\n", failures, count);
        return 1;
    }
    printf("%.3f\n", (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
    return 0;
}

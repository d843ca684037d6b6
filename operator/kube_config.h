/* kube_config.h — where the Kubernetes API is and how to authenticate: from a
 * kubeconfig file (current-context or a named one) or from the in-cluster service
 * account. Certificates and keys are kept in memory, never written to disk. */
#ifndef KUBE_CONFIG_H
#define KUBE_CONFIG_H

#include <stddef.h>

#include "error.h"

#define KUBE_CONFIG_MAX_FILE (1024 * 1024)
#define KUBE_SA_DIR "/var/run/secrets/kubernetes.io/serviceaccount"

typedef struct kube_blob {
    char *data;     /* PEM bytes, NULL when absent */
    size_t len;
} kube_blob;

typedef struct kube_config {
    char *server;       /* https://host:port, no trailing slash */
    kube_blob ca;       /* certificate authority; absent: system trust store */
    kube_blob cert;     /* client certificate */
    kube_blob key;      /* client key */
    char *token;        /* bearer token given inline */
    char *token_file;   /* bearer token re-read from this file (service accounts rotate) */
    char *ns;           /* namespace of the context / the pod; "default" when unknown */
    int insecure;       /* insecure-skip-tls-verify */
} kube_config;

/* Loads a kubeconfig file; context NULL or "" means current-context. NULL with *err
 * naming the file, context or field that is wrong. Relative file references are
 * resolved against the kubeconfig's directory. */
kube_config *kube_config_from_kubeconfig(const char *path, const char *context, fp_error *err);

/* Loads the in-cluster configuration from KUBERNETES_SERVICE_HOST/PORT and the
 * service-account directory sa_dir (KUBE_SA_DIR in a pod). */
kube_config *kube_config_in_cluster(const char *sa_dir, fp_error *err);

/* The usual order: the kubeconfig path if given, else $KUBECONFIG, else in-cluster. */
kube_config *kube_config_load(const char *kubeconfig, const char *context, fp_error *err);

void kube_config_free(kube_config *c);   /* NULL is fine */

/* Reads a whole small file (at most max bytes) into a NUL-terminated allocation. */
char *kube_read_file(const char *path, size_t max, size_t *len, fp_error *err);

#endif

/* shared.c — see shared.h. */
#include "shared.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "jsonb.h"
#include "names.h"
#include "podspec.h"
#include "spec.h"

const op_shared_type op_shared_types[OP_SHARED_COUNT] = {
    [OP_SHARED_CONFIGMAP] = {OP_CHILD_CONFIGMAP, OP_SHARED_FORMS},
    [OP_SHARED_INGEST_DEPLOYMENT] = {OP_CHILD_INGEST_DEPLOYMENT, OP_SHARED_INGEST},
    [OP_SHARED_INGEST_SERVICE] = {OP_CHILD_INGEST_SERVICE, OP_SHARED_INGEST},
    [OP_SHARED_INGEST_PDB] = {OP_CHILD_INGEST_PDB, OP_SHARED_INGEST},
    [OP_SHARED_CONSUMER_DEPLOYMENT] = {OP_CHILD_CONSUMER_DEPLOYMENT, OP_SHARED_CONSUMER},
    [OP_SHARED_CONSUMER_PDB] = {OP_CHILD_CONSUMER_PDB, OP_SHARED_CONSUMER},
    [OP_SHARED_FLUSH_CRONJOB] = {OP_CHILD_FLUSH_CRONJOB, OP_SHARED_FLUSH},
};

#define MAX_BODY_BYTES 16777216   /* the CRD's bound of spec.ingest.maxBodyBytes: each form's own applies */

void op_shared_set_init(op_shared_set *s, const char *ns)
{
    memset(s, 0, sizeof *s);
    snprintf(s->ns, sizeof s->ns, "%s", ns);
    op_shared_group(ns, s->group, sizeof s->group);
}

void op_shared_set_clear(op_shared_set *s)
{
    for (size_t i = 0; i < s->n; i++) {
        free(s->m[i].name);
        free(s->m[i].form);
        free(s->m[i].secret);
        free(s->m[i].key);
    }
    free(s->m);
    s->m = NULL;
    s->n = s->cap = s->n_in = 0;
}

int op_shared_set_add(op_shared_set *s, const char *name, const char *form, const char *secret, const char *key)
{
    if (s->n == s->cap) {
        size_t cap = s->cap ? 2 * s->cap : 16;
        op_shared_member *m = realloc(s->m, cap * sizeof *m);
        if (!m)
            return FP_ENOMEM;
        s->m = m;
        s->cap = cap;
    }
    op_shared_member *m = &s->m[s->n];
    *m = (op_shared_member){strdup(name), strdup(form), strdup(secret), strdup(key)};
    if (!m->name || !m->form || !m->secret || !m->key) {
        free(m->name);
        free(m->form);
        free(m->secret);
        free(m->key);
        return FP_ENOMEM;
    }
    s->n++;
    return 0;
}

static int by_name(const void *a, const void *b)
{
    return strcmp(((const op_shared_member *)a)->name, ((const op_shared_member *)b)->name);
}

void op_shared_set_fit(op_shared_set *s)
{
    if (s->n > 1)
        qsort(s->m, s->n, sizeof *s->m, by_name);
    size_t used = 0;
    for (s->n_in = 0; s->n_in < s->n; s->n_in++) {
        size_t need = strlen(s->m[s->n_in].name) + 5 + strlen(s->m[s->n_in].form);
        if (used + need > OP_SHARED_DATA_MAX)
            break;
        used += need;
    }
}

int op_shared_group(const char *ns, char *out, size_t outsz)
{
    return fp_names_group(ns, OP_SHARED_NAME, out, outsz);
}

char *op_shared_form(const op_pipeline *p, int with_sheets)
{
    cJSON *form = cJSON_Parse(p->compiled_form), *item;
    cJSON *sh = cJSON_CreateObject();
    if (!form || !sh) {
        cJSON_Delete(form);
        cJSON_Delete(sh);
        return NULL;
    }
    cJSON_AddItemToObject(form, "shared", sh);
    op_jb_str(sh, "group", p->shared_group);
    op_jb_str(sh, "dedicatedGroup", p->group);
    op_jb_str(sh, "dlqTopic", p->dlq_topic);
    cJSON *ingest = op_jb_obj(sh, "ingest");
    op_jb_num(ingest, "maxBodyBytes", (double)p->max_body_bytes);
    if (cJSON_GetArraySize(p->allowed_origins) > 0)
        cJSON_AddItemToObject(ingest, "allowedOrigins", cJSON_Duplicate(p->allowed_origins, 1));
    if (!with_sheets) {
        char *text = cJSON_PrintUnformatted(form);
        cJSON_Delete(form);
        return text;
    }
    cJSON *sheets = op_jb_obj(sh, "sheets");
    cJSON *ids = op_jb_arr(sheets, "spreadsheetIds");
    cJSON_AddItemToArray(ids, cJSON_CreateString(p->spreadsheet_id));
    cJSON_ArrayForEach(item, p->more_spreadsheets)
        if (cJSON_IsString(item))
            cJSON_AddItemToArray(ids, cJSON_CreateString(item->valuestring));
    op_jb_str(sheets, "sheet", p->sheet);
    op_jb_num(sheets, "batchRows", p->batch_rows);
    char cred[512];
    snprintf(cred, sizeof cred, "%s/%s", p->google_credentials.name, p->google_credentials.key);
    op_jb_str(sheets, "credentials", cred);
    char *text = cJSON_PrintUnformatted(form);
    cJSON_Delete(form);
    return text;
}

static void labels(cJSON *o, const char *component, int selector_only)
{
    char name[64];
    snprintf(name, sizeof name, "formpipe-%s", component);
    op_jb_str(o, "app.kubernetes.io/name", name);
    op_jb_str(o, "app.kubernetes.io/instance", OP_SHARED_NAME);
    op_jb_str(o, "app.kubernetes.io/component", component);
    if (selector_only)
        return;
    op_jb_str(o, "app.kubernetes.io/part-of", "formpipe");
    op_jb_str(o, "app.kubernetes.io/managed-by", "formpipe-operator");
    op_jb_str(o, OP_SHARED_LABEL, "true");
}

/* apiVersion, kind, metadata (name, namespace, labels; no owner). */
static cJSON *skeleton(const op_shared_set *s, op_shared_kind kind, const char *component)
{
    const op_child_type *t = &op_child_types[op_shared_types[kind].like];
    cJSON *o = cJSON_CreateObject();
    op_jb_str(o, "apiVersion", t->api_version);
    op_jb_str(o, "kind", t->kind);
    cJSON *md = op_jb_obj(o, "metadata");
    op_jb_str(md, "name", op_shared_types[kind].name);
    op_jb_str(md, "namespace", s->ns);
    labels(op_jb_obj(md, "labels"), component, 0);
    return o;
}

/* The operator's defaults as the pipeline-shaped settings op_child_kafka_settings and
 * op_child_redis_settings read (shared pods use only the defaults). */
static op_pipeline default_settings(const op_defaults *d)
{
    return (op_pipeline){
        .kafka_bootstrap = d->kafka_bootstrap, .kafka_config = d->kafka_config, .kafka_ca = d->kafka_ca,
        .redis_sentinels = d->redis_sentinels, .redis_master = d->redis_master,
        .redis_min_replicas_ack = d->redis_min_replicas_ack, .redis_password = d->redis_password,
        .redis_tls_ca = d->redis_tls_ca, .redis_tls_client = d->redis_tls_client,
    };
}

/* The pod of a shared workload: op_child_pod, the forms volume (the whole ConfigMap, so
 * the kubelet's updates reach running pods), the component's default pod settings. */
static void pod(cJSON *tmd, cJSON *podspec, op_pod_component component, const char *image, const op_defaults *d,
                op_pod_parts *pp)
{
    const char *container = op_pod_component_names[component];
    op_child_pod(podspec, container, image, d, pp);
    cJSON *settings = op_podspec_for(component, d->pods, NULL, NULL);
    cJSON *selector = cJSON_CreateObject();
    labels(selector, container, 1);
    op_podspec_apply(settings, tmd, podspec, pp->container, selector);
    cJSON_Delete(selector);
    cJSON_Delete(settings);
    cJSON *v = op_jb_push_obj(pp->volumes);
    op_jb_str(v, "name", "forms");
    op_jb_str(op_jb_obj(v, "configMap"), "name", OP_SHARED_FORMS);
    cJSON *m = op_jb_push_obj(pp->mounts);
    op_jb_str(m, "name", "forms");
    op_jb_str(m, "mountPath", OP_SHARED_FORMS_DIR);
    op_jb_flag(m, "readOnly", 1);
    op_jb_argf(pp->args, "--forms-dir=%s", OP_SHARED_FORMS_DIR);
}

/* spec (replicas, selector) and the template's metadata of a Deployment; returns the pod spec. */
static cJSON *deployment(cJSON *o, const char *component, int replicas, cJSON **tmd)
{
    cJSON *spec = op_jb_obj(o, "spec");
    op_jb_num(spec, "replicas", replicas);
    op_jb_num(spec, "revisionHistoryLimit", 3);
    labels(op_jb_obj(op_jb_obj(spec, "selector"), "matchLabels"), component, 1);
    cJSON *tmpl = op_jb_obj(spec, "template");
    *tmd = op_jb_obj(tmpl, "metadata");
    labels(op_jb_obj(*tmd, "labels"), component, 0);
    return op_jb_obj(tmpl, "spec");
}

static cJSON *build_configmap(const op_shared_set *s)
{
    cJSON *o = skeleton(s, OP_SHARED_CONFIGMAP, "forms");
    cJSON *data = op_jb_obj(o, "data");
    size_t in_len = 1, out_len = 1;
    for (size_t i = 0; i < s->n; i++)
        *(i < s->n_in ? &in_len : &out_len) += strlen(s->m[i].name) + 1;
    char *in = calloc(1, in_len), *out = calloc(1, out_len);
    for (size_t i = 0; in && out && i < s->n; i++) {
        char *list = i < s->n_in ? in : out;
        if (*list)
            strcat(list, ",");
        strcat(list, s->m[i].name);
        if (i < s->n_in) {
            char key[128];
            snprintf(key, sizeof key, "%s.json", s->m[i].name);
            op_jb_str(data, key, s->m[i].form);
        }
    }
    cJSON *ann = op_jb_obj(cJSON_GetObjectItemCaseSensitive(o, "metadata"), "annotations");
    if (in && out) {
        op_jb_str(ann, OP_SHARED_MEMBERS_ANNOTATION, in);
        op_jb_str(ann, OP_SHARED_LEFT_OUT_ANNOTATION, out);
    } else {   /* out of memory */
        cJSON_Delete(o);
        o = NULL;
    }
    free(in);
    free(out);
    return o;
}

static cJSON *build_ingest(const op_shared_set *s, const op_defaults *d, const op_shared_config *cfg)
{
    cJSON *o = skeleton(s, OP_SHARED_INGEST_DEPLOYMENT, "ingest"), *tmd;
    cJSON *ps = deployment(o, "ingest", cfg->ingest_replicas, &tmd);
    op_pod_parts pp;
    pod(tmd, ps, OP_POD_INGEST, d->image_ingest, d, &pp);
    op_jb_argf(pp.args, "--port=%d", OP_CHILD_INGEST_PORT);
    op_jb_argf(pp.args, "--max-body-bytes=%d", MAX_BODY_BYTES);
    op_jb_argf(pp.args, "--rate-limit=%lld", cfg->ingest_rate_limit);
    op_jb_argf(pp.args, "--rate-burst=%lld", cfg->ingest_rate_burst);
    op_child_ingest_common(&pp, 0, d);
    op_pipeline def = default_settings(d);
    op_child_kafka_settings(&pp, &def, NULL);
    op_child_served_port(pp.container, "http", OP_CHILD_INGEST_PORT);
    op_child_admin_port(pp.container);
    return o;
}

static cJSON *build_service(const op_shared_set *s)
{
    cJSON *o = skeleton(s, OP_SHARED_INGEST_SERVICE, "ingest");
    cJSON *spec = op_jb_obj(o, "spec");
    op_jb_str(spec, "type", "ClusterIP");
    labels(op_jb_obj(spec, "selector"), "ingest", 1);
    cJSON *port = op_jb_push_obj(op_jb_arr(spec, "ports"));
    op_jb_str(port, "name", "http");
    op_jb_num(port, "port", 80);
    op_jb_str(port, "targetPort", "http");
    op_jb_str(port, "protocol", "TCP");
    return o;
}

static cJSON *build_pdb(const op_shared_set *s, op_shared_kind kind, const char *component)
{
    cJSON *o = skeleton(s, kind, component);
    cJSON *spec = op_jb_obj(o, "spec");
    op_jb_num(spec, "maxUnavailable", 1);
    labels(op_jb_obj(op_jb_obj(spec, "selector"), "matchLabels"), component, 1);
    return o;
}

static cJSON *build_consumer(const op_shared_set *s, const op_defaults *d)
{
    cJSON *o = skeleton(s, OP_SHARED_CONSUMER_DEPLOYMENT, "consumer"), *tmd;
    cJSON *ps = deployment(o, "consumer", s->consumer_replicas, &tmd);
    op_pod_parts pp;
    pod(tmd, ps, OP_POD_CONSUMER, d->image_consumer, d, &pp);
    op_jb_argf(pp.args, "--group=%s", s->group);
    op_jb_argf(pp.args, "--admin-port=%d", OP_CHILD_ADMIN_PORT);
    op_pipeline def = default_settings(d);
    op_child_kafka_settings(&pp, &def, NULL);
    op_child_redis_settings(&pp, &def);
    op_child_served_port(pp.container, "admin", OP_CHILD_ADMIN_PORT);
    return o;
}

/* The members' Google credentials, one projected volume: each distinct Secret at
 * <dir>/<secret>/, with the keys the members name. */
static void credentials_volume(const op_shared_set *s, cJSON *volumes, cJSON *mounts)
{
    cJSON *v = op_jb_push_obj(volumes);
    op_jb_str(v, "name", "credentials");
    cJSON *proj = op_jb_obj(v, "projected");
    op_jb_num(proj, "defaultMode", 0440);
    cJSON *sources = op_jb_arr(proj, "sources");
    for (size_t i = 0; i < s->n_in; i++) {
        size_t first = i;   /* the first member naming this Secret carries every key of it */
        for (size_t j = 0; j < i && first == i; j++)
            if (strcmp(s->m[j].secret, s->m[i].secret) == 0)
                first = j;
        if (first != i)
            continue;
        cJSON *secret = op_jb_obj(op_jb_push_obj(sources), "secret");
        op_jb_str(secret, "name", s->m[i].secret);
        cJSON *items = op_jb_arr(secret, "items");
        for (size_t j = i; j < s->n_in; j++) {
            if (strcmp(s->m[j].secret, s->m[i].secret) != 0)
                continue;
            int seen = 0;
            for (size_t k = i; k < j && !seen; k++)
                seen = strcmp(s->m[k].secret, s->m[j].secret) == 0 && strcmp(s->m[k].key, s->m[j].key) == 0;
            if (seen)
                continue;
            cJSON *item = op_jb_push_obj(items);
            char path[512];
            snprintf(path, sizeof path, "%s/%s", s->m[j].secret, s->m[j].key);
            op_jb_str(item, "key", s->m[j].key);
            op_jb_str(item, "path", path);
        }
    }
    cJSON *m = op_jb_push_obj(mounts);
    op_jb_str(m, "name", "credentials");
    op_jb_str(m, "mountPath", OP_SHARED_CREDENTIALS_DIR);
    op_jb_flag(m, "readOnly", 1);
}

static cJSON *build_cronjob(const op_shared_set *s, const op_defaults *d, const op_shared_config *cfg)
{
    cJSON *o = skeleton(s, OP_SHARED_FLUSH_CRONJOB, "flush");
    cJSON *spec = op_jb_obj(o, "spec");
    op_jb_str(spec, "schedule", cfg->flush_schedule);
    op_jb_str(spec, "concurrencyPolicy", "Forbid");
    op_jb_flag(spec, "suspend", s->suspended);
    op_jb_str(op_jb_obj(cJSON_GetObjectItemCaseSensitive(o, "metadata"), "annotations"), OP_SHARED_IDLE_ANNOTATION,
              s->suspended ? "true" : "false");
    op_jb_num(spec, "startingDeadlineSeconds", 60);
    op_jb_num(spec, "successfulJobsHistoryLimit", 3);
    op_jb_num(spec, "failedJobsHistoryLimit", 3);
    cJSON *jobspec = op_jb_obj(op_jb_obj(spec, "jobTemplate"), "spec");
    op_jb_num(jobspec, "backoffLimit", 1);
    op_jb_num(jobspec, "activeDeadlineSeconds", (double)cfg->flush_deadline_s);
    cJSON *tmpl = op_jb_obj(jobspec, "template");
    cJSON *tmd = op_jb_obj(tmpl, "metadata");
    labels(op_jb_obj(tmd, "labels"), "flush", 0);
    cJSON *podspec = op_jb_obj(tmpl, "spec");
    op_jb_str(podspec, "restartPolicy", "Never");
    op_pod_parts pp;
    pod(tmd, podspec, OP_POD_FLUSH, d->image_flush, d, &pp);
    op_jb_argf(pp.args, "--credentials-dir=%s", OP_SHARED_CREDENTIALS_DIR);
    op_jb_argf(pp.args, "--writes-per-minute=%d", cfg->flush_writes_per_minute);
    op_jb_argf(pp.args, "--termination-log=%s", "/dev/termination-log");
    op_jb_str(pp.container, "terminationMessagePath", "/dev/termination-log");
    op_jb_str(pp.container, "terminationMessagePolicy", "FallbackToLogsOnError");
    long long deadline = cfg->flush_deadline_s;
    op_jb_argf(pp.args, "--max-run-time=%llds", deadline > 60 ? deadline - 30 : deadline / 2);
    op_child_sheets_api_args(pp.args, d->sheets_api_url);
    credentials_volume(s, pp.volumes, pp.mounts);
    op_pipeline def = default_settings(d);
    op_child_redis_settings(&pp, &def);
    return o;
}

cJSON *op_shared_build(const op_shared_set *s, const op_defaults *d, const op_shared_config *cfg, op_shared_kind kind)
{
    switch (kind) {
    case OP_SHARED_CONFIGMAP: return build_configmap(s);
    case OP_SHARED_INGEST_DEPLOYMENT: return build_ingest(s, d, cfg);
    case OP_SHARED_INGEST_SERVICE: return build_service(s);
    case OP_SHARED_INGEST_PDB: return build_pdb(s, kind, "ingest");
    case OP_SHARED_CONSUMER_DEPLOYMENT: return build_consumer(s, d);
    case OP_SHARED_CONSUMER_PDB: return build_pdb(s, kind, "consumer");
    case OP_SHARED_FLUSH_CRONJOB: return build_cronjob(s, d, cfg);
    default: return NULL;
    }
}

int op_shared_owned(const cJSON *o)
{
    const cJSON *l = op_spec_member(op_spec_member(o, "metadata"), "labels");
    return strcmp(op_spec_str(l, OP_SHARED_LABEL, ""), "true") == 0 &&
           strcmp(op_spec_str(l, "app.kubernetes.io/managed-by", ""), "formpipe-operator") == 0;
}

int op_shared_idle(const cJSON *cronjob)
{
    const cJSON *a = op_spec_member(op_spec_member(cronjob, "metadata"), "annotations");
    return strcmp(op_spec_str(a, OP_SHARED_IDLE_ANNOTATION, ""), "true") == 0;
}

const char *op_shared_list_next(const char **at, size_t *len)
{
    const char *item = *at;
    if (!item || !*item)
        return NULL;
    const char *end = strchr(item, ',');
    *len = end ? (size_t)(end - item) : strlen(item);
    *at = end ? end + 1 : item + *len;
    return item;
}

int op_shared_listed(const char *list, const char *name)
{
    size_t n = strlen(name), len;
    for (const char *item; (item = op_shared_list_next(&list, &len));)
        if (len == n && memcmp(item, name, n) == 0)
            return 1;
    return 0;
}

/* Appends to out the names of the entries of list a that list b lacks (a left-out
 * entry's name without its '-'), each once. 0, or FP_ENOMEM. */
static int add_missing(fp_buf *out, const char *a, const char *b)
{
    size_t len;
    for (const char *item; (item = op_shared_list_next(&a, &len));) {
        char entry[160];
        snprintf(entry, sizeof entry, "%.*s", (int)len, item);
        const char *name = entry[0] == '-' ? entry + 1 : entry;
        if (*name && !op_shared_listed(b, entry) && !op_shared_listed(out->data, name) &&
            fp_buf_printf(out, "%s%s", out->len ? "," : "", name) < 0)
            return FP_ENOMEM;
    }
    return 0;
}

int op_shared_listing_changes(const char *before, const char *after, char **out)
{
    fp_buf b;
    fp_buf_init(&b, (size_t)1 << 24);
    int rc = add_missing(&b, after, before);
    if (rc == 0)
        rc = add_missing(&b, before, after);
    *out = rc == 0 ? fp_buf_take(&b) : NULL;
    fp_buf_free(&b);
    return *out ? 0 : FP_ENOMEM;
}

int op_shared_membership(const cJSON *configmap, const char *name)
{
    const cJSON *ann = op_spec_member(op_spec_member(configmap, "metadata"), "annotations");
    if (op_shared_listed(op_spec_str(ann, OP_SHARED_MEMBERS_ANNOTATION, NULL), name))
        return 1;
    return op_shared_listed(op_spec_str(ann, OP_SHARED_LEFT_OUT_ANNOTATION, NULL), name) ? -1 : 0;
}

/* The children of a dedicated pipeline, by the parts they serve. */
#define INGEST_PART ((1u << OP_CHILD_CONFIGMAP) | (1u << OP_CHILD_INGEST_DEPLOYMENT) | (1u << OP_CHILD_INGEST_SERVICE) | \
                     (1u << OP_CHILD_INGEST_PDB) | (1u << OP_CHILD_INGEST_HPA))
#define CONSUMER_PART ((1u << OP_CHILD_CONSUMER_DEPLOYMENT) | (1u << OP_CHILD_CONSUMER_PDB))
#define FLUSH_PART (1u << OP_CHILD_FLUSH_CRONJOB)
#define INGRESS (1u << OP_CHILD_INGEST_INGRESS)

void op_shared_plan(const op_mode_facts *f, op_mode_plan *out)
{
    const unsigned all = INGEST_PART | CONSUMER_PART | FLUSH_PART | INGRESS;
    const unsigned draining = f->own_ingest_draining ? INGEST_PART : 0;
    if (!f->want_shared && !f->now_shared) {
        *out = (op_mode_plan){all, 0, 0, 0, "Dedicated"};
    } else if (f->want_shared && f->now_shared) {
        *out = (op_mode_plan){INGRESS | draining, 1, 1, 1, "Shared"};
    } else if (f->want_shared) {   /* Dedicated -> Shared */
        if (!f->in_forms)
            *out = (op_mode_plan){all, 0, 0, 0, "SwitchingToShared"};
        else if (!f->delay_passed || !f->shared_ingest_ok)
            *out = (op_mode_plan){INGEST_PART | INGRESS, 0, 1, 0, "SwitchingToShared"};
        else
            *out = (op_mode_plan){INGRESS | draining, 1, 1, 1, "Shared"};
    } else {                       /* Shared -> Dedicated */
        if (!f->dedicated_ingest_ok)
            *out = (op_mode_plan){all, 1, 0, 1, "SwitchingToDedicated"};
        else
            *out = (op_mode_plan){all, 0, 0, 0, "Dedicated"};
    }
}

/* Smoke test against the real kube-apiserver of scripts/testenv, with libcurl and
 * the kubeconfig's CA and bearer token: create a CustomResourceDefinition, wait until
 * it is Established, create a custom object, read it back, delete both. */
#include <cjson/cJSON.h>
#include <criterion/criterion.h>
#include <curl/curl.h>
#include <unistd.h>

#include "buf.h"
#include "testkit.h"

#define CRD_NAME "smoketests.smoke.formpipe.io"
#define CRD_PATH "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"
#define OBJ_PATH "/apis/smoke.formpipe.io/v1/namespaces/default/smoketests"

static CURL *curl;
static char *token;
static const char *server, *ca_file;

static size_t on_body(char *p, size_t size, size_t n, void *userdata)
{
    return fp_buf_add(userdata, p, size * n) == 0 ? size * n : 0;
}

/* Sends one request; returns the HTTP status and leaves the body in *out (freed by
 * caller). A transport failure fails the test with curl's message. */
static long kube(const char *method, const char *path, const char *body, char **out)
{
    char url[512], auth[4200];
    fp_buf resp;
    fp_buf_init(&resp, 4 << 20);
    snprintf(url, sizeof url, "%s%s", server, path);
    snprintf(auth, sizeof auth, "Authorization: Bearer %s", token);
    struct curl_slist *h = curl_slist_append(NULL, auth);
    h = curl_slist_append(h, "Content-Type: application/json");
    h = curl_slist_append(h, "Accept: application/json");
    curl_easy_reset(curl);
    curl_easy_setopt(curl, CURLOPT_URL, url);
    curl_easy_setopt(curl, CURLOPT_CAINFO, ca_file);
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT, 30L);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, &resp);
    if (body)
        curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body);
    CURLcode rc = curl_easy_perform(curl);
    curl_slist_free_all(h);
    cr_assert_eq(rc, CURLE_OK, "%s %s: %s", method, url, curl_easy_strerror(rc));
    long status = 0;
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
    *out = fp_buf_take(&resp);
    return status;
}

static void expect(const char *method, const char *path, const char *body, long want, cJSON **json)
{
    char *out;
    long status = kube(method, path, body, &out);
    cr_assert_eq(status, want, "%s %s: HTTP %ld, want %ld: %s", method, path, status, want, out);
    if (json) {
        *json = cJSON_Parse(out);
        cr_assert_not_null(*json, "%s %s: response is not JSON: %s", method, path, out);
    }
    free(out);
}

static int crd_established(void)
{
    char *out;
    int ok = 0;
    if (kube("GET", CRD_PATH "/" CRD_NAME, NULL, &out) == 200) {
        cJSON *j = cJSON_Parse(out);
        cJSON *conds = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(j, "status"), "conditions");
        cJSON *c;
        cJSON_ArrayForEach(c, conds) {
            const char *type = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(c, "type"));
            const char *st = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(c, "status"));
            if (type && st && !strcmp(type, "Established") && !strcmp(st, "True"))
                ok = 1;
        }
        cJSON_Delete(j);
    }
    free(out);
    return ok;
}

/* Deletes the CRD if a crashed earlier run left it, and waits until it is gone. */
static void remove_leftover_crd(void)
{
    char *out;
    long st = kube("DELETE", CRD_PATH "/" CRD_NAME, NULL, &out);
    free(out);
    if (st == 404)
        return;
    double deadline = tk_now() + 60;
    while (tk_now() < deadline) {
        st = kube("GET", CRD_PATH "/" CRD_NAME, NULL, &out);
        free(out);
        if (st == 404)
            return;
        usleep(200 * 1000);
    }
    cr_assert_fail("leftover CRD %s was not removed within 60 s", CRD_NAME);
}

static const char *crd_json =
    "{\"apiVersion\":\"apiextensions.k8s.io/v1\",\"kind\":\"CustomResourceDefinition\","
    "\"metadata\":{\"name\":\"" CRD_NAME "\"},"
    "\"spec\":{\"group\":\"smoke.formpipe.io\",\"scope\":\"Namespaced\","
    "\"names\":{\"plural\":\"smoketests\",\"singular\":\"smoketest\",\"kind\":\"SmokeTest\"},"
    "\"versions\":[{\"name\":\"v1\",\"served\":true,\"storage\":true,"
    "\"schema\":{\"openAPIV3Schema\":{\"type\":\"object\",\"properties\":{"
    "\"spec\":{\"type\":\"object\",\"properties\":{"
    "\"message\":{\"type\":\"string\"},\"count\":{\"type\":\"integer\",\"minimum\":0}}}}}}}]}}";

Test(kube, crd_and_custom_object_round_trip, .timeout = 180)
{
    server = tk_env("FORMPIPE_TEST_KUBE_SERVER");
    ca_file = tk_env("FORMPIPE_TEST_KUBE_CA_FILE");
    token = tk_read_file(tk_env("FORMPIPE_TEST_KUBE_TOKEN_FILE"));
    curl_global_init(CURL_GLOBAL_DEFAULT);
    curl = curl_easy_init();

    remove_leftover_crd();
    expect("POST", CRD_PATH, crd_json, 201, NULL);
    double deadline = tk_now() + 60;
    while (!crd_established() && tk_now() < deadline)
        usleep(200 * 1000);
    cr_assert(crd_established(), "CRD not Established within 60 s");

    /* The new REST endpoint can lag Established by a moment. */
    const char *obj = "{\"apiVersion\":\"smoke.formpipe.io/v1\",\"kind\":\"SmokeTest\","
                      "\"metadata\":{\"name\":\"hello\"},\"spec\":{\"message\":\"hi from C\",\"count\":3}}";
    char *out;
    long st = 0;
    deadline = tk_now() + 30;
    while ((st = kube("POST", OBJ_PATH, obj, &out)) == 404 && tk_now() < deadline) {
        free(out);
        usleep(200 * 1000);
    }
    cr_assert_eq(st, 201, "create custom object: HTTP %ld: %s", st, out);
    free(out);

    cJSON *got;
    expect("GET", OBJ_PATH "/hello", NULL, 200, &got);
    cJSON *spec = cJSON_GetObjectItemCaseSensitive(got, "spec");
    cr_assert_str_eq(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(spec, "message")), "hi from C");
    cr_assert_eq(cJSON_GetObjectItemCaseSensitive(spec, "count")->valueint, 3);
    const char *uid = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(got, "metadata"), "uid"));
    cr_assert(uid && *uid, "the server assigned a uid");
    cJSON_Delete(got);

    /* Schema validation is the server's: a negative count is refused with 422. */
    cJSON *status;
    expect("POST", OBJ_PATH,
           "{\"apiVersion\":\"smoke.formpipe.io/v1\",\"kind\":\"SmokeTest\","
           "\"metadata\":{\"name\":\"bad\"},\"spec\":{\"count\":-1}}", 422, &status);
    cr_assert_str_eq(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(status, "reason")), "Invalid");
    cJSON_Delete(status);

    expect("DELETE", OBJ_PATH "/hello", NULL, 200, NULL);
    expect("GET", OBJ_PATH "/hello", NULL, 404, NULL);
    expect("DELETE", CRD_PATH "/" CRD_NAME, NULL, 200, NULL);

    curl_easy_cleanup(curl);
    curl_global_cleanup();
    free(token);
}

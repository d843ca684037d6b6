/* The form as a person uses it: Debian's chromium, driven by playwright-core
 * (tests/browser/submit_form.js), opens GET /forms/<name> of a formpipe-ingest running
 * against the real Kafka, finds the fields by their labels, is stopped by the browser
 * on a value the form's pattern refuses, submits a correct one, sees the confirmation
 * page, and the event with the typed values is on the topic under the partition key. */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "event.h"
#include "testkit.h"

static char name[64], topic[128], *form_path;
static tk_proc ingest;
static int port;

static void setup(void)
{
    char form[1400];
    tk_unique(name, sizeof name, "web");
    snprintf(topic, sizeof topic, "forms.tests.%s", name);
    snprintf(form, sizeof form,
             "{\"name\":\"%s\",\"namespace\":\"tests\",\"generation\":1,\"partitionKey\":\"roll\","
             "\"title\":\"Student data\",\"fields\":["
             "{\"name\":\"name\",\"label\":\"Full name\",\"type\":\"string\",\"required\":true,\"minLength\":5},"
             "{\"name\":\"roll\",\"label\":\"Roll number\",\"type\":\"string\",\"required\":true,\"pattern\":\"^[0-9]{1,10}$\"},"
             "{\"name\":\"university\",\"label\":\"University\",\"type\":\"string\",\"required\":true},"
             "{\"name\":\"cgpa\",\"label\":\"CGPA\",\"type\":\"number\",\"minimum\":0,\"maximum\":10},"
             "{\"name\":\"gender\",\"label\":\"Gender\",\"type\":\"enum\",\"values\":[\"F\",\"M\",\"X\"]},"
             "{\"name\":\"age\",\"label\":\"Age\",\"type\":\"integer\",\"minimum\":15,\"maximum\":100},"
             "{\"name\":\"email\",\"label\":\"E-mail\",\"type\":\"email\",\"required\":true},"
             "{\"name\":\"mobile\",\"label\":\"Mobile\",\"type\":\"phone\"}]}", name);
    form_path = tk_write_temp(form);
    tk_topic_create(topic, 3);
    port = tk_start_ingest(&ingest, form_path, "/readyz", NULL);
}

static void teardown(void)
{
    cr_assert_eq(tk_stop(&ingest, SIGTERM, 30), 0, "clean exit on SIGTERM");
    tk_topic_delete(topic);
    unlink(form_path);
    free(form_path);
}

TestSuite(browser, .init = setup, .fini = teardown, .timeout = 240);

Test(browser, a_person_fills_in_the_form_page_and_the_event_is_in_kafka)
{
    char *pw = NULL, *out = NULL;
    int rc = tk_sh(&pw, "'%s/tests/browser/install' 2>/tmp/fp-playwright-install.log", FP_SOURCE_DIR);
    cr_assert_eq(rc, 0, "playwright-core installs (see /tmp/fp-playwright-install.log)");
    pw[strcspn(pw, "\n")] = '\0';
    rc = tk_sh(&out, "node '%s/tests/browser/submit_form.js' '%s' 'http://127.0.0.1:%d/forms/%s'", FP_SOURCE_DIR,
               pw, port, name);
    free(pw);
    cr_assert_eq(rc, 0, "the browser run succeeds: %s", out);
    cJSON *r = cJSON_Parse(strrchr(out, '{') ? strrchr(out, '{') : out);
    cr_assert(r, "the browser run reports JSON: %s", out);
    cr_expect_eq(cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(r, "status")), 200, "GET /forms/%s is a page", name);
    cr_expect(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(r, "blocked")), "the browser refuses a roll number off the pattern");
    cr_expect_eq(cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(r, "answer")), 202, "the post is accepted");
    cr_expect_str_eq(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(r, "heading")), "Thank you");
    const char *id = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(r, "id"));
    cr_assert(id && strlen(id) == 26, "the confirmation shows the submission id: %s", out);

    rd_kafka_t *reader = tk_kafka_reader(topic);
    int found = 0;
    double deadline = tk_now() + 30;
    while (!found && tk_now() < deadline) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(reader, 500);
        if (m && !m->err) {
            fp_event ev = {0};
            fp_error err = {0};
            if (fp_event_parse(m->payload, m->len, &ev, &err) == 0 && !strcmp(ev.id, id)) {
                found = 1;
                cr_expect_eq(m->key_len, 4, "keyed by the roll number");
                cr_expect(m->key && !memcmp(m->key, "1815", 4), "keyed by the roll number");
                cJSON *doc = cJSON_ParseWithLength(m->payload, m->len);
                char *data = cJSON_PrintUnformatted(cJSON_GetObjectItemCaseSensitive(doc, "data"));
                cJSON_Delete(doc);
                cr_expect_str_eq(data, "{\"name\":\"Ada Lovelace\",\"roll\":\"1815\",\"university\":\"University of London\","
                                       "\"cgpa\":9.5,\"gender\":\"F\",\"age\":27,\"email\":\"ada@example.com\"}",
                                 "typed, in field order");
                free(data);
            }
            fp_event_clear(&ev);
        }
        if (m)
            rd_kafka_message_destroy(m);
    }
    rd_kafka_consumer_close(reader);
    rd_kafka_destroy(reader);
    cr_assert(found, "the event %s is on %s", id, topic);
    cJSON_Delete(r);
    free(out);
}

# bench/lib.sh — sourced by every bench/*/run from the repository root: installs the
# packages, builds the release configuration, starts the test environment and loads its
# settings (FORMPIPE_*, versions, ports). kafka_tool runs one of Kafka's own tools.

# FP_BENCH_SKIP_UP=1: the packages, the build and the environment are there already
# (a shared machine where the environment belongs to someone else).
if [ -z "${FP_BENCH_SKIP_UP:-}" ]; then
  scripts/install-deps
  cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
  cmake --build build -j"$(nproc)" >/dev/null
  scripts/testenv up >/dev/null
fi
eval "$(scripts/testenv env)"
. scripts/testenv.d/versions.sh
. scripts/testenv.d/ports.sh

# kafka_tool CLASS ARGS...: e.g. kafka_tool org.apache.kafka.tools.TopicCommand --list
kafka_tool() {
  java -cp "$FP_CACHE/kafka-$KAFKA_VERSION/libs/*" -Dlog4j2.configurationFile="$FORMPIPE_TESTENV_DIR/kafka/log4j2.properties" \
    "$1" --bootstrap-server "$FORMPIPE_KAFKA_BOOTSTRAP" "${@:2}"
}

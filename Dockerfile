# Container images of the five formpipe binaries, one multi-stage file:
#   docker build --target formpipe-operator -t formpipe/formpipe-operator:0.1.0 .
# (likewise formpipe-ingest, formpipe-consumer, formpipe-flush, formpipe-task). formpipe-dlq (list, show
# and re-drive dead letters) ships in the consumer's image: `kubectl exec` into a consumer
# pod runs it with the pipeline's Kafka address and client config at hand, and it links
# a subset of the consumer's libraries (libcjson1, librdkafka1). The runtime images hold
# the binary and exactly the shared libraries it links (tests/integration/
# test_packaging.sh compares each list with `objdump -p` of the built binary), run as
# user 65532 and need no shell. Base: Debian 12, the distribution the code is built
# and tested on.

FROM debian:12 AS build
RUN apt-get update && apt-get install -y --no-install-recommends \
      build-essential cmake pkg-config libcjson-dev libyaml-dev librdkafka-dev libhiredis-dev \
      libcurl4-openssl-dev libwebsockets-dev libev-dev libpcre2-dev libssl-dev libcriterion-dev \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY CMakeLists.txt ./
COPY services services
COPY operator operator
COPY tests tests
COPY bench bench
RUN cmake -S . -B /build -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    && cmake --build /build -j"$(nproc)" --target formpipe-operator formpipe-ingest formpipe-consumer formpipe-flush formpipe-dlq formpipe-task \
    && strip /build/bin/formpipe-*

FROM debian:12-slim AS runtime
RUN echo 'formpipe:x:65532:65532::/nonexistent:/usr/sbin/nologin' >>/etc/passwd \
    && echo 'formpipe:x:65532:' >>/etc/group
USER 65532:65532

FROM runtime AS formpipe-operator
USER root
# runtime-libs formpipe-operator: ca-certificates libcjson1 libcurl4 libhiredis0.14 libpcre2-8-0 librdkafka1 libssl3 libwebsockets17 libyaml-0-2
RUN apt-get update && apt-get install -y --no-install-recommends \
      ca-certificates libcjson1 libcurl4 libhiredis0.14 libpcre2-8-0 librdkafka1 libssl3 libwebsockets17 libyaml-0-2 \
    && rm -rf /var/lib/apt/lists/*
COPY --from=build /build/bin/formpipe-operator /usr/local/bin/formpipe-operator
USER 65532:65532
EXPOSE 8081
ENTRYPOINT ["/usr/local/bin/formpipe-operator"]

FROM runtime AS formpipe-ingest
USER root
# runtime-libs formpipe-ingest: libcjson1 libev4 libpcre2-8-0 librdkafka1 libssl3 libwebsockets17
# runtime-plugins formpipe-ingest: libwebsockets-evlib-ev (lws loads its libev event loop at run time)
RUN apt-get update && apt-get install -y --no-install-recommends \
      libcjson1 libev4 libpcre2-8-0 librdkafka1 libssl3 libwebsockets17 libwebsockets-evlib-ev \
    && rm -rf /var/lib/apt/lists/*
COPY --from=build /build/bin/formpipe-ingest /usr/local/bin/formpipe-ingest
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/formpipe-ingest"]

FROM runtime AS formpipe-consumer
USER root
# runtime-libs formpipe-consumer: libcjson1 libhiredis0.14 librdkafka1 libssl3 libwebsockets17
RUN apt-get update && apt-get install -y --no-install-recommends \
      libcjson1 libhiredis0.14 librdkafka1 libssl3 libwebsockets17 \
    && rm -rf /var/lib/apt/lists/*
COPY --from=build /build/bin/formpipe-consumer /usr/local/bin/formpipe-consumer
COPY --from=build /build/bin/formpipe-dlq /usr/local/bin/formpipe-dlq
USER 65532:65532
EXPOSE 9090
ENTRYPOINT ["/usr/local/bin/formpipe-consumer"]

FROM runtime AS formpipe-flush
USER root
# runtime-libs formpipe-flush: ca-certificates libcjson1 libcurl4 libhiredis0.14 libssl3
RUN apt-get update && apt-get install -y --no-install-recommends \
      ca-certificates libcjson1 libcurl4 libhiredis0.14 libssl3 \
    && rm -rf /var/lib/apt/lists/*
COPY --from=build /build/bin/formpipe-flush /usr/local/bin/formpipe-flush
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/formpipe-flush"]

FROM runtime AS formpipe-task
USER root
# runtime-libs formpipe-task: ca-certificates libcjson1 libcurl4 libhiredis0.14 librdkafka1 libssl3 libwebsockets17
RUN apt-get update && apt-get install -y --no-install-recommends \
      ca-certificates libcjson1 libcurl4 libhiredis0.14 librdkafka1 libssl3 libwebsockets17 \
    && rm -rf /var/lib/apt/lists/*
COPY --from=build /build/bin/formpipe-task /usr/local/bin/formpipe-task
USER 65532:65532
EXPOSE 9090
ENTRYPOINT ["/usr/local/bin/formpipe-task"]

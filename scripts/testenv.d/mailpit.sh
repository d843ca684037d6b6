# Mailpit (github.com/axllent/mailpit, a real SMTP server with an HTTP API), built from
# the Go module proxy and cached by version. Sourced by scripts/testenv.
#
# SMTP on 127.0.0.1:$MAILPIT_SMTP_PORT requires STARTTLS (a certificate for 127.0.0.1 and
# localhost from a CA generated per environment: $STATE/mailpit/ca.crt) and AUTH
# (user formpipe, the password in $STATE/mailpit/password). Recipients outside
# example.org/.com/.net are refused with 550 (the tests' 5xx); chaos is enabled so a
# test can make Mailpit answer 4xx through PUT /api/v1/chaos. A second one, mailpit-tls,
# speaks implicit TLS (smtps://) on $MAILPIT_TLS_SMTP_PORT with the same certificate and
# AUTH, its API on $MAILPIT_TLS_HTTP_PORT.

mailpit_dir() { echo "$FP_CACHE/mailpit-$MAILPIT_VERSION-$(fp_recipe_key build_mailpit)"; }
mailpit_smtp_url() { echo "smtp://127.0.0.1:$MAILPIT_SMTP_PORT"; }
mailpit_api_url() { echo "http://127.0.0.1:$MAILPIT_HTTP_PORT"; }
mailpit_smtps_url() { echo "smtps://127.0.0.1:$MAILPIT_TLS_SMTP_PORT"; }
mailpit_tls_api_url() { echo "http://127.0.0.1:$MAILPIT_TLS_HTTP_PORT"; }

build_mailpit() {
  local dest; dest=$(mailpit_dir)
  [ -x "$dest/bin/mailpit" ] && return 0
  fp_progress "building mailpit $MAILPIT_VERSION with go install"
  local work=$FP_CACHE/.build-mailpit-$MAILPIT_VERSION
  rm -rf "$work"; mkdir -p "$work/bin"
  GOFLAGS= GOBIN="$work/bin" fp_with_heartbeat "mailpit" \
    go install -trimpath -ldflags=-s "github.com/axllent/mailpit@$MAILPIT_VERSION" ||
    { fp_progress "mailpit build failed"; return 1; }
  rm -rf "$dest"; mv "$work" "$dest"
}

# The CA, the server certificate and the SMTP password, once per environment.
mailpit_secrets() {
  local d=$STATE/mailpit
  [ -s "$d/server.key" ] && [ -s "$d/auth" ] && return 0
  mkdir -p "$d"
  (
    set -euo pipefail
    cd "$d"
    openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=formpipe testenv mail CA" \
      -keyout ca.key -out ca.crt 2>/dev/null
    openssl req -newkey rsa:2048 -nodes -subj "/CN=127.0.0.1" -keyout server.key -out server.csr 2>/dev/null
    printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n' >server.ext
    openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 3650 \
      -extfile server.ext -out server.crt 2>/dev/null
    head -c 18 /dev/urandom | base64 | tr -d '/+=' >password
    printf 'formpipe:%s\n' "$(openssl passwd -apr1 "$(cat password)")" >auth
    chmod 600 ca.key server.key password auth
  )
}

# mailpit_start NAME SMTP_PORT HTTP_PORT TLS_FLAG: one Mailpit (TLS_FLAG: --smtp-require-starttls
# or --smtp-require-tls for implicit TLS), its own store.
mailpit_start() {
  local name=$1 smtp=$2 http=$3 tls=$4 d=$STATE/mailpit
  proc_pid "$name" >/dev/null && return 0
  require_free_port "$name" "$smtp" && require_free_port "$name" "$http" || return 1
  start_proc "$name" "$(mailpit_dir)/bin/mailpit" \
    --smtp "127.0.0.1:$smtp" --listen "127.0.0.1:$http" \
    --database "$d/$name.db" --max 0 --disable-version-check --smtp-disable-rdns \
    --smtp-tls-cert "$d/server.crt" --smtp-tls-key "$d/server.key" "$tls" \
    --smtp-auth-file "$d/auth" --smtp-allowed-recipients '@example\.(org|com|net)$' \
    --enable-chaos
  wait_until 30 "$name" curl -fsS "http://127.0.0.1:$http/api/v1/info" || { fail_with_log "$name"; return 1; }
}

mailpit_up() {
  mailpit_secrets || { echo "testenv: cannot make mailpit's certificate" >&2; return 1; }
  fp_progress "starting mailpit"
  mailpit_start mailpit "$MAILPIT_SMTP_PORT" "$MAILPIT_HTTP_PORT" --smtp-require-starttls &&
    mailpit_start mailpit-tls "$MAILPIT_TLS_SMTP_PORT" "$MAILPIT_TLS_HTTP_PORT" --smtp-require-tls || return 1
  fp_progress "mailpit ready: SMTP $(mailpit_smtp_url) and $(mailpit_smtps_url), APIs $(mailpit_api_url) and $(mailpit_tls_api_url)"
}


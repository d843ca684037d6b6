# One private CA per test environment and server certificates it signs, for the servers
# that speak TLS in tests (Kafka's SSL listeners, Redis's TLS ports). Sourced by
# scripts/testenv. Files: $STATE/pki/ca.crt (what clients trust), NAME.crt / NAME.key.
# Another CA ($STATE/pki/other-ca.crt) signs nothing: clients that trust it must refuse.

# pki_ca: creates the CA and the untrusted one once per environment. Servers start side
# by side, so every step holds $STATE/pki/.lock.
pki_ca() {
  local d=$STATE/pki
  [ -s "$d/ca.crt" ] && [ -s "$d/other-ca.crt" ] && return 0
  mkdir -p "$d"
  (
    set -euo pipefail
    exec 9>"$d/.lock"
    flock 9
    cd "$d"
    [ -s ca.crt ] && [ -s other-ca.crt ] && exit 0
    umask 077
    openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=formpipe testenv CA" \
      -keyout ca.key -out ca.crt 2>/dev/null
    openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=formpipe testenv other CA" \
      -keyout other-ca.key -out other-ca.crt 2>/dev/null
    chmod 644 ca.crt other-ca.crt
  )
}

# pki_cert NAME: a certificate for 127.0.0.1 / localhost (server and client use), signed by
# the CA; kept while it exists.
pki_cert() {
  local d=$STATE/pki name=$1
  pki_ca || return 1
  [ -s "$d/$name.crt" ] && return 0
  (
    set -euo pipefail
    exec 9>"$d/.lock"
    flock 9
    cd "$d"
    [ -s "$name.crt" ] && exit 0
    umask 077
    openssl req -newkey rsa:2048 -nodes -subj "/CN=$name" -keyout "$name.key" -out "$name.csr" 2>/dev/null
    printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth,clientAuth\n' >"$name.ext"
    openssl x509 -req -in "$name.csr" -CA ca.crt -CAkey ca.key -CAcreateserial -days 3650 \
      -extfile "$name.ext" -out "$name.crt" 2>/dev/null
    rm -f "$name.csr" "$name.ext"
    chmod 644 "$name.crt"
  )
}

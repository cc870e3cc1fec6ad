# Shared by the CI scripts that run the server binary: a free loopback port, and waiting for
# the server to be ready (its log printed and the script failed if it never is).

free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

wait_ready() { # port, log file
  for _ in $(seq 1 60); do
    curl -fs "http://127.0.0.1:$1/readyz" >/dev/null 2>&1 && return 0
    sleep 0.5
  done
  cat "$2" >&2
  echo "FATAL: the server did not become ready" >&2
  return 1
}

#!/usr/bin/env bash
# Sets up every real host the tests run besides ComfyUI 0.3.75 (which dev/setup.sh does):
# ComfyUI 0.33.0, AUTOMATIC1111 1.10.1 and Forge Classic; and the torch build's venv. Each set-up is idempotent and locked
# (dev/hosts.sh), so this can run while the same set-ups are started by the test targets.
#
#   dev/setup_hosts.sh               in the foreground
#   dev/setup_hosts.sh --background  detached, log in $HOSTS_DIR/setup.log: `make test` starts it
#                                    first, so that the downloads (several GB of torch wheels)
#                                    overlap with the Rust builds; the test targets then wait for
#                                    their host's lock, and report any failure themselves
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source=dev/hosts.sh
source dev/hosts.sh

if [ "${1:-}" = --background ]; then
    mkdir -p "$HOSTS_DIR"
    nohup setsid bash "$0" >"$HOSTS_DIR/setup.log" 2>&1 </dev/null &
    echo "setup-hosts: started in the background (log: $HOSTS_DIR/setup.log)"
    exit 0
fi
rc=0
bash dev/setup_comfyui_latest.sh || rc=1
bash dev/setup_webui.sh all || rc=1
# Not a host, but the same kind of download: the torch build's venv (torch 2.13, ~3 GB).
bash dev/setup_torch.sh --venv-only || rc=1
exit $rc

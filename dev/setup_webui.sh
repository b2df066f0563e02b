#!/usr/bin/env bash
# Sets up the real webuis the tests in tests/webui/ run: AUTOMATIC1111 1.10.1 and Forge Classic
# (Haoming02/sd-webui-forge-classic, branch classic, 1f95d717), headless on CPU, from the
# code-only snapshots in the host sources (dev/hosts.sh) plus PyPI only (no GitHub, no HF).
#
#   bash dev/setup_webui.sh [a1111|forge-classic|all]      (default: all)
#
# Idempotent: every phase is skipped when its result is there, so a warm run takes seconds.
#   $HOSTS_DIR/a1111-1.10.1/stable-diffusion-webui/   webui + repositories/* (tarballs)
#   $HOSTS_DIR/a1111-1.10.1/venv/                     Python 3.10, torch 2.1.2, the lock's pins
#   $HOSTS_DIR/a1111-1.10.1/hf-home/                  offline CLIP tokenizer/config (HF layout)
#   $HOSTS_DIR/forge-classic/sd-webui-forge-classic/  webui + its three repositories
#   $HOSTS_DIR/forge-classic/venv/                    Python 3.10, torch 2.6.0, the lock's pins
# Each webui gets the tiny SD1.5 checkpoint its loader accepts (models/Stable-diffusion/
# tiny-sd15.safetensors), its text encoder's final LayerNorm given a bias (dev/tiny_clip_bias.py:
# without one the webuis' emphasis divides 0 by 0 for some prompts on some CPUs). The venv is
# keyed by its lock file's hash (venv/.<name>-<hash>): a changed lock re-runs pip, with pip's own
# cache kept between runs.
# The extension itself is NOT installed here: tests/webui/ git-clones this repository into
# extensions/ and runs its install.py the webui's way at every test session.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=hosts.sh
source "$HERE/hosts.sh"

WHICH=${1:-all}
case "$WHICH" in a1111 | forge-classic | all) ;; *)
    echo "usage: dev/setup_webui.sh [a1111|forge-classic|all]" >&2
    exit 2
    ;;
esac
T0=$(date +%s)
say() { echo "setup_webui [$(($(date +%s) - T0))s] $*"; }

# untar TARBALL DIR: unpack into DIR (the tarballs hold one top-level folder each).
untar() { tar -xzf "$1" -C "$2"; }

# venv_with DEST STAMPNAME LOCK PIP-ARGS...: DEST/venv with the packages, once per lock hash.
venv_with() {
    local dest=$1 name=$2 lock=$3
    shift 3
    local py
    py=$(host_python 3.10)
    [ -x "$dest/venv/bin/python" ] || "$py" -m venv "$dest/venv"
    local stamp
    stamp="$dest/venv/.$name-$(sha256sum "$lock" | cut -c1-12)"
    if [ ! -f "$stamp" ]; then
        say "$name: pip install (cold: ~2.5 GB of torch + nvidia wheels, minutes)"
        "$dest/venv/bin/python" -m pip install -q "pip<24.1" "wheel<0.46"
        "$dest/venv/bin/python" -m pip install -q -c "$lock" "$@"
        touch "$stamp"
    fi
}

setup_a1111() {
    local dest="$HOSTS_DIR/a1111-1.10.1" tarball lock tiny clip
    local webui="$dest/stable-diffusion-webui"
    tarball=$(host_source webui/stable-diffusion-webui-v1.10.1.tar.gz)
    lock=$(host_source webui/a1111-1.10.1-cpu-lock.txt)
    tiny=$(host_source webui/make_tiny_sd15_a1111.py)
    clip=$(host_source webui/pip-openai-CLIP-d50d76da.tar.gz)
    mkdir -p "$dest"
    host_lock a1111-1.10.1  # a set-up started in the background finishes first
    say "a1111: sources"
    [ -f "$webui/webui.py" ] || untar "$tarball" "$dest"
    mkdir -p "$webui/repositories"
    # The five repositories launch_utils would git-clone (paths.py asserts the first; sgm
    # and k-diffusion are imported by the samplers and SDXL code; BLIP and assets optional).
    local t top
    for t in "$HOST_SOURCES"/webui/repositories-*.tar.gz; do
        top=$(basename "$t" .tar.gz | sed -E 's/^repositories-//; s/-[0-9a-f]{8}$//')
        [ -d "$webui/repositories/$top" ] || untar "$t" "$webui/repositories"
    done
    # torch 2.1.2 is launch_utils' default, from PyPI (CUDA build; runs on CPU). openai CLIP
    # (k_diffusion imports it) is built without isolation: its setup.py needs pkg_resources.
    venv_with "$dest" a1111 "$lock" torch==2.1.2 torchvision==0.16.2 \
        -r "$webui/requirements_versions.txt"
    if ! "$dest/venv/bin/python" -c "import clip" 2>/dev/null; then
        "$dest/venv/bin/python" -m pip install -q --no-build-isolation --no-deps "$clip"
    fi
    local ckpt="$webui/models/Stable-diffusion/tiny-sd15.safetensors"
    if [ ! -f "$ckpt" ] || [ ! -f "$dest/hf-home/hub/models--openai--clip-vit-large-patch14/refs/main" ]; then
        say "a1111: tiny checkpoint + offline CLIP tokenizer"
        "$dest/venv/bin/python" "$tiny" --out "$ckpt" --hf-home "$dest/hf-home"
    fi
    "$dest/venv/bin/python" "$HERE/tiny_clip_bias.py" "$ckpt"
    say "a1111: ready in $dest"
}

setup_forge_classic() {
    local dest="$HOSTS_DIR/forge-classic" tarball lock tiny
    local webui="$dest/sd-webui-forge-classic"
    tarball=$(host_source webui/sd-webui-forge-classic-1f95d717.tar.gz)
    lock=$(host_source webui/forge-classic-1f95d717-cpu-lock.txt)
    # Forge detects the UNet from the state dict (SD15 needs 320 channels) and builds the VAE
    # from SD's fixed config, so it takes the ComfyUI-layout tiny checkpoint, not A1111's.
    tiny=$(host_source comfyui-ci/make_tiny_sd15.py)
    mkdir -p "$dest"
    host_lock forge-classic  # a set-up started in the background finishes first
    say "forge-classic: sources"
    [ -f "$webui/webui.py" ] || untar "$tarball" "$dest"
    mkdir -p "$webui/repositories"
    # Forge Classic clones only these three (k-diffusion is vendored, no BLIP).
    local top t
    for top in stable-diffusion-stability-ai generative-models stable-diffusion-webui-assets; do
        if [ ! -d "$webui/repositories/$top" ]; then
            for t in "$HOST_SOURCES/webui/repositories-$top-"*.tar.gz; do
                untar "$(host_source "webui/$(basename "$t")")" "$webui/repositories"
            done
        fi
    done
    venv_with "$dest" forge-classic "$lock" torch==2.6.0 torchvision==0.21.0 \
        -r "$webui/requirements.txt"
    local ckpt="$webui/models/Stable-diffusion/tiny-sd15.safetensors"
    if [ ! -f "$ckpt" ]; then
        say "forge-classic: tiny checkpoint"
        "$dest/venv/bin/python" "$tiny" --out "$ckpt"
    fi
    "$dest/venv/bin/python" "$HERE/tiny_clip_bias.py" "$ckpt"
    say "forge-classic: ready in $dest"
}

case "$WHICH" in
a1111) setup_a1111 ;;
forge-classic) setup_forge_classic ;;
all)
    setup_a1111
    setup_forge_classic
    ;;
esac
say "done"

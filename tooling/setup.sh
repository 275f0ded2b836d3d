#!/usr/bin/env bash
# Installs what a fresh machine lacks, then the workspace: Debian's chromium (its SwiftShader Vulkan
# driver gives Dawn a WebGPU adapter without a GPU; the browser tests drive it) and libvulkan1,
# pnpm through corepack, and the npm packages.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -e /usr/lib/chromium/vk_swiftshader_icd.json ] || ! ldconfig -p | grep -q libvulkan.so.1; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium libvulkan1 >/dev/null
  else
    echo "setup: chromium and libvulkan1 are missing; install them with: sudo apt-get install -y chromium libvulkan1" >&2
    exit 1
  fi
fi

# corepack's signature check fails against this registry's metadata; the pinned version still applies.
export COREPACK_INTEGRITY_KEYS=0
if ! command -v pnpm >/dev/null 2>&1 || [ "$(pnpm --version 2>/dev/null)" != "$(node -p "require('./package.json').packageManager.split('@')[1]")" ]; then
  corepack enable
  corepack prepare "$(node -p "require('./package.json').packageManager")" --activate >/dev/null
fi

# onnxruntime-node's install script downloads CUDA binaries; its CPU binaries ship in the package.
export ONNXRUNTIME_NODE_INSTALL=skip
pnpm install --frozen-lockfile --reporter=append-only | tail -n 3

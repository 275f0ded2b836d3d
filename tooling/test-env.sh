#!/usr/bin/env bash
# Runs a command with the environment the WebGPU tests need on a machine without a GPU: Dawn finds
# Chromium's SwiftShader Vulkan driver. A hardware adapter, when present, is used where asked for.
export VK_ICD_FILENAMES="${VK_ICD_FILENAMES:-/usr/lib/chromium/vk_swiftshader_icd.json}"
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-/tmp}"
exec "$@"

#!/usr/bin/env bash
# Installs everything Witness needs to build, run and test on a fresh Debian 12 machine (as root):
# the C libraries and tools (xorriso, FFmpeg, clang for bindgen), Chromium for the browser tests,
# CJK fonts, a Rust toolchain when none is present, and bagit.py in /opt/witness-tools.
set -euo pipefail

if [ "$(id -u)" -ne 0 ]; then
  echo "setup-debian.sh: run as root (it installs Debian packages)" >&2
  exit 1
fi

export DEBIAN_FRONTEND=noninteractive
packages=(
  build-essential pkg-config clang libclang-dev
  xorriso
  ffmpeg libavformat-dev libavcodec-dev libavutil-dev libavfilter-dev libavdevice-dev
  libswscale-dev libswresample-dev
  python3 python3-venv
  chromium fonts-noto-cjk
  # Disc faces: the Chinese font embedded in label PDFs (TrueType outlines).
  fonts-wqy-zenhei
  poppler-utils
  # The stand-in NVR's RTSP server (gst-rtsp-server through Debian's python3) and the fonts
  # its recordings burn the clock with; nginx-light is the baseline of the Range benchmark.
  python3-gi gir1.2-gst-rtsp-server-1.0 gstreamer1.0-plugins-base gstreamer1.0-plugins-good
  gstreamer1.0-plugins-bad fonts-dejavu-core nginx-light
  ca-certificates curl git
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# Debian 12's own rustc is too old for the dependencies; use rustup's stable toolchain.
if ! command -v cargo >/dev/null 2>&1; then
  if [ -x "$HOME/.cargo/bin/cargo" ]; then
    echo "cargo is in $HOME/.cargo/bin: add it to PATH (source \$HOME/.cargo/env)"
  else
    curl -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal --component rustfmt,clippy
  fi
fi

# bagit.py (the Library of Congress validator) checks every disc in the tests; Debian 12 has no
# package of it, so it lives in its own virtualenv built on Debian's python3 (whose hashlib has SM3).
if [ ! -x /opt/witness-tools/bin/bagit.py ]; then
  /usr/bin/python3 -m venv /opt/witness-tools
  /opt/witness-tools/bin/pip install -q bagit==1.9.0
fi
echo "setup-debian.sh: done"

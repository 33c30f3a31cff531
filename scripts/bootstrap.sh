#!/usr/bin/env bash
# Installs what HomeSec needs on a fresh Debian/Ubuntu machine: uv, the locked Python
# environment, ffmpeg, and (with --test) the Postgres, Mosquitto and strace binaries the
# tests run.
set -euo pipefail
cd "$(dirname "$0")/.."

want_test_services=0
[[ "${1:-}" == "--test" ]] && want_test_services=1

apt_install() {
  local sudo=""
  [[ $(id -u) -ne 0 ]] && sudo="sudo"
  if [[ ! -f /var/lib/apt/lists/.homesec-updated ]]; then
    $sudo apt-get update -qq && $sudo touch /var/lib/apt/lists/.homesec-updated
  fi
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

if ! python3 -m uv --version >/dev/null 2>&1 && ! command -v uv >/dev/null 2>&1; then
  echo "bootstrap: installing uv" >&2
  python3 -m pip install --quiet uv
fi
UV="uv"
command -v uv >/dev/null 2>&1 || UV="python3 -m uv"

if ! command -v ffmpeg >/dev/null 2>&1 || ! command -v ffprobe >/dev/null 2>&1; then
  echo "bootstrap: installing ffmpeg" >&2
  apt_install ffmpeg
fi

if [[ $want_test_services -eq 1 ]]; then
  command -v mosquitto >/dev/null 2>&1 || [[ -x /usr/sbin/mosquitto ]] || apt_install mosquitto
  # The local-first test watches every connection and file write of `homesec run`.
  [[ -x /usr/bin/strace ]] || apt_install strace
  if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
    apt_install postgresql
  fi
  # The systemd unit in docs/deploy/ is checked by `systemd-analyze verify`.
  command -v systemd-analyze >/dev/null 2>&1 || apt_install systemd
  # Browser tests of the web UI drive Debian's Chromium.
  command -v chromium >/dev/null 2>&1 || apt_install chromium
  # RTSP camera tests serve looping footage with GStreamer's RTSP server (../shared/tools).
  if ! /usr/bin/python3 -c "import gi; gi.require_version('GstRtspServer', '1.0')" 2>/dev/null; then
    apt_install python3-gi python3-gst-1.0 gir1.2-gst-rtsp-server-1.0 gstreamer1.0-rtsp \
      gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-plugins-bad \
      gstreamer1.0-plugins-ugly gstreamer1.0-libav
  fi
fi

$UV sync --locked --quiet

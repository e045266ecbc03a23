#!/usr/bin/python3
"""RTSP playback server of the stand-in NVR (gst-rtsp-server from Debian's packages).

Serves Hikvision-style playback URLs such as
  rtsp://127.0.0.1:PORT/Streaming/tracks/101?starttime=20261129T080000Z&endtime=20261129T081000Z&token=T
from the recorded segments listed in a JSON file the Rust side of the stand-in writes (and may
rewrite between requests to switch quirks on). For every request the segments overlapping the
window are cut and joined with FFmpeg's concat demuxer, keeping recording gaps as jumps in the
timestamps, and the result is streamed as H.264 over RTP. The stream runs as fast as the client
reads (like ONVIF's "Rate-Control: no"), so a ten-minute pull takes seconds.

Quirks (keys of "quirks" in the JSON file):
  z_is_local: times marked Z are read as local time (UTC+8), as some Hikvision firmware does
  past_end_seconds: keep streaming this many seconds past the requested end
  stop_fraction: stop after this fraction of the requested window (a stream dying halfway)
  realtime: send in real time, as an NVR without "Rate-Control: no" does (slow pulls)
  rtsp_refused: refuse every Hikvision playback (the ISAPI download still works)
Tokens: "token" is the Unix time after which the URI has expired (503 once it has).

Dahua playback URLs are served too, from the same recordings:
  rtsp://USER:PASSWORD@127.0.0.1:DAHUA_PORT/cam/playback?channel=1&starttime=2026_11_29_08_00_00&endtime=2026_11_29_08_10_00
with the NVR's zone-less wall time (UTC, or UTC+8 with z_is_local) and the channel counted from
1, on DAHUA_PORT. As on a real Dahua NVR it asks for RTSP Digest authentication with the
"login" of the JSON file; the Hikvision mounts stay open.

Usage: rtsp_server.py PORT CONFIG.json WORKDIR [DAHUA_PORT]
       rtsp_server.py download CONFIG.json PLAYBACK_URI OUT.ts   (ISAPI's download, one file)
"""

import calendar
import json
import os
import subprocess
import sys
import time
import urllib.parse

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstBase", "1.0")
gi.require_version("GstRtsp", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstBase, GstRtsp, GstRtspServer  # noqa: E402

LOCAL_OFFSET = 8 * 3600
DAHUA_PLAYBACK = "/cam/playback"


def parse_time(text, z_is_local, layout="%Y%m%dT%H%M%SZ"):
    """Hikvision's compact ISO 8601 (20261129T080000Z), or another layout, as Unix seconds."""
    seconds = calendar.timegm(time.strptime(text, layout))
    return seconds - LOCAL_OFFSET if z_is_local else seconds


def hikvision_window(path, query, z_is_local):
    """Track and window of /Streaming/tracks/101?starttime=…&endtime=…&token=T."""
    token = float(query["token"][0])
    if time.time() > token:
        raise ValueError("playback URI expired")
    track = path.rstrip("/").rsplit("/", 1)[-1]
    start = parse_time(query["starttime"][0], z_is_local)
    return track, start, parse_time(query["endtime"][0], z_is_local)


def dahua_window(query, z_is_local):
    """Track and window of /cam/playback?channel=1&starttime=2026_11_29_08_00_00&endtime=…"""
    channel = int(query["channel"][0])
    if channel < 1:
        raise ValueError("cam/playback channels count from 1")
    layout = "%Y_%m_%d_%H_%M_%S"
    start = parse_time(query["starttime"][0], z_is_local, layout)
    return f"{channel}01", start, parse_time(query["endtime"][0], z_is_local, layout)


def serve_dahua(port, config, config_path, workdir):
    """Dahua's cam/playback on its own port, behind RTSP Digest authentication as on a real NVR.

    A server of its own because gst-rtsp-server answers a factory an anonymous client may not use
    with 404, never with a challenge; the Hikvision mounts stay open on theirs. Its own work
    folder keeps its session counts apart from theirs.
    """
    dahua_dir = os.path.join(workdir, "dahua")
    os.makedirs(dahua_dir, exist_ok=True)
    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(port)
    playback = Playback(config_path, dahua_dir)
    server.get_mount_points().add_factory(DAHUA_PLAYBACK, playback)
    auth = GstRtspServer.RTSPAuth()
    auth.set_supported_methods(GstRtsp.RTSPAuthMethod.DIGEST)
    auth.set_realm("Login to 7K0A2F9PAZ00000")
    login = GstRtspServer.RTSPToken()
    login.set_string("media.factory.role", "user")
    auth.add_digest(config["login"]["user"], config["login"]["password"], login)
    server.set_auth(auth)
    permit(playback, "user")
    if server.attach(None) == 0:
        sys.exit(f"rtsp_server: cannot listen on 127.0.0.1:{port}")
    return server


def permit(factory, role):
    """Lets holders of `role` use `factory` (gst-rtsp-server checks this once auth is on)."""
    permissions = GstRtspServer.RTSPPermissions()
    permissions.add_role(role)
    permissions.add_permission_for_role(role, "media.factory.access", True)
    permissions.add_permission_for_role(role, "media.factory.construct", True)
    factory.set_permissions(permissions)


class Playback(GstRtspServer.RTSPMediaFactory):
    def __init__(self, config_path, workdir):
        super().__init__()
        self.config_path = config_path
        self.workdir = workdir
        self.counter = 0
        self.active = 0
        self.most = 0
        self.realtime = False
        self.set_shared(False)
        self.connect("media-configure", self.on_configure)

    def on_configure(self, factory, media):
        if not self.realtime:
            keep_off_the_clock(factory, media)
        self.count_session(+1)
        media.connect("unprepared", lambda _media: self.count_session(-1))

    def count_session(self, change):
        """Keeps the most playback sessions open at once in `sessions.json`, for the tests of
        per-NVR connection limits."""
        self.active += change
        self.most = max(self.most, self.active)
        path = os.path.join(self.workdir, "sessions.json")
        with open(path + ".tmp", "w", encoding="utf-8") as f:
            json.dump({"active": self.active, "most": self.most}, f)
        os.replace(path + ".tmp", path)

    def do_create_element(self, url):
        try:
            return self.build(url)
        except Exception as error:  # a bad request must not take the server down
            print(f"rtsp_server: {url.abspath}?{url.query}: {error}", file=sys.stderr, flush=True)
            return None

    def build(self, url):
        with open(self.config_path, encoding="utf-8") as f:
            config = json.load(f)
        quirks = config.get("quirks", {})
        # Read by on_configure, which runs right after this for the same media.
        self.realtime = quirks.get("realtime", False)
        query = urllib.parse.parse_qs(url.query or "")
        dahua = url.abspath.rstrip("/") == DAHUA_PLAYBACK
        if quirks.get("rtsp_refused", False) and not dahua:
            raise ValueError("RTSP playback refused (quirk rtsp_refused)")
        track, start, stop = requested_window(config, url.abspath, query)
        self.counter += 1
        base = os.path.join(self.workdir, f"request-{os.getpid()}-{self.counter}")
        cut(config, track, start, stop, base + ".mkv")
        return Gst.parse_launch(
            f"( filesrc location={base}.mkv ! matroskademux ! h264parse config-interval=-1 "
            "! rtph264pay name=pay0 pt=96 config-interval=-1 )"
        )


def requested_window(config, path, query):
    """Track, start and where the NVR stops sending (quirks applied) of a playback URL."""
    quirks = config.get("quirks", {})
    z_is_local = quirks.get("z_is_local", False)
    if path.rstrip("/") == DAHUA_PLAYBACK:
        track, start, end = dahua_window(query, z_is_local)
    else:
        track, start, end = hikvision_window(path, query, z_is_local)
    if end <= start:
        raise ValueError("empty window")
    stop = end + quirks.get("past_end_seconds", 0)
    if "stop_fraction" in quirks:
        stop = start + (end - start) * quirks["stop_fraction"]
    return track, start, stop


def cut(config, track, start, stop, out):
    """Joins the track's recordings from start to stop into `out` (container from its name)."""
    segments = sorted(
        (s for s in config["channels"].get(track, []) if s["end"] > start and s["start"] < stop),
        key=lambda s: s["start"],
    )
    if not segments:
        raise ValueError("nothing recorded in the window")
    lines = ["ffconcat version 1.0"]
    for i, segment in enumerate(segments):
        inpoint = max(start, segment["start"]) - segment["start"]
        outpoint = min(stop, segment["end"]) - segment["start"]
        lines.append("file '%s'" % segment["path"].replace("'", "'\\''"))
        lines.append(f"inpoint {inpoint}")
        lines.append(f"outpoint {outpoint}")
        if i + 1 < len(segments):
            # The next file starts where its recording started: the gap stays a gap.
            lines.append(f"duration {segments[i + 1]['start'] - max(start, segment['start'])}")
    with open(out + ".txt", "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
    subprocess.run(
        ["ffmpeg", "-v", "error", "-y", "-f", "concat", "-safe", "0", "-i", out + ".txt",
         "-c", "copy", out],
        check=True,
    )


def download(config_path, playback_uri, out):
    """ISAPI's /ContentMgmt/download: the window of a playback URI as one file (MPEG-TS)."""
    with open(config_path, encoding="utf-8") as f:
        config = json.load(f)
    url = urllib.parse.urlsplit(playback_uri)
    track, start, stop = requested_window(config, url.path, urllib.parse.parse_qs(url.query))
    cut(config, track, start, stop, out)


def keep_off_the_clock(_factory, media):
    """Sends as fast as the client reads, like ONVIF's "Rate-Control: no".

    FFmpeg cannot send that header, and gst-rtsp-server 1.22 switches its network sinks back to
    clock-synchronised (real-time) sending when a client plays; every sink is held at sync=false.
    """
    def hold(sink, _pspec=None):
        if sink.get_property("sync"):
            sink.set_property("sync", False)

    def added(_pipeline, _bin, element):
        if isinstance(element, GstBase.BaseSink):
            hold(element)
            element.connect("notify::sync", hold)

    media.get_element().get_parent().connect("deep-element-added", added)


def main():
    if sys.argv[1] == "download":
        try:
            download(sys.argv[2], sys.argv[3], sys.argv[4])
        except (ValueError, KeyError) as error:
            sys.exit(f"rtsp_server: download refused: {error}")
        return
    port, config_path, workdir = sys.argv[1], sys.argv[2], sys.argv[3]
    dahua_port = sys.argv[4] if len(sys.argv) > 4 else None
    Gst.init(None)
    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(port)
    with open(config_path, encoding="utf-8") as f:
        config = json.load(f)
    playback = Playback(config_path, workdir)
    for track in config["channels"].keys():
        server.get_mount_points().add_factory(f"/Streaming/tracks/{track}", playback)
    if server.attach(None) == 0:
        sys.exit(f"rtsp_server: cannot listen on 127.0.0.1:{port}")
    # Kept referenced for as long as the main loop runs.
    dahua = serve_dahua(dahua_port, config, config_path, workdir) if dahua_port else None
    print(f"listening {server.get_bound_port()}", flush=True)
    GLib.MainLoop().run()
    del dahua


if __name__ == "__main__":
    main()

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
Tokens: "token" is the Unix time after which the URI has expired (503 once it has).

Usage: rtsp_server.py PORT CONFIG.json WORKDIR
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
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstBase, GstRtspServer  # noqa: E402

LOCAL_OFFSET = 8 * 3600


def parse_time(text, z_is_local):
    """Hikvision's compact ISO 8601 (20261129T080000Z) as Unix seconds."""
    seconds = calendar.timegm(time.strptime(text, "%Y%m%dT%H%M%SZ"))
    return seconds - LOCAL_OFFSET if z_is_local else seconds


class Playback(GstRtspServer.RTSPMediaFactory):
    def __init__(self, config_path, workdir):
        super().__init__()
        self.config_path = config_path
        self.workdir = workdir
        self.counter = 0
        self.realtime = False
        self.set_shared(False)
        self.connect("media-configure", self.on_configure)

    def on_configure(self, factory, media):
        if not self.realtime:
            keep_off_the_clock(factory, media)

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
        z_is_local = quirks.get("z_is_local", False)
        track = url.abspath.rstrip("/").rsplit("/", 1)[-1]
        query = urllib.parse.parse_qs(url.query or "")
        token = float(query["token"][0])
        if time.time() > token:
            raise ValueError("playback URI expired")
        start = parse_time(query["starttime"][0], z_is_local)
        end = parse_time(query["endtime"][0], z_is_local)
        if end <= start:
            raise ValueError("empty window")
        stop = end + quirks.get("past_end_seconds", 0)
        if "stop_fraction" in quirks:
            stop = start + (end - start) * quirks["stop_fraction"]
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
        self.counter += 1
        base = os.path.join(self.workdir, f"request-{os.getpid()}-{self.counter}")
        with open(base + ".txt", "w", encoding="utf-8") as f:
            f.write("\n".join(lines) + "\n")
        subprocess.run(
            ["ffmpeg", "-v", "error", "-y", "-f", "concat", "-safe", "0", "-i", base + ".txt",
             "-c", "copy", base + ".mkv"],
            check=True,
        )
        return Gst.parse_launch(
            f"( filesrc location={base}.mkv ! matroskademux ! h264parse config-interval=-1 "
            "! rtph264pay name=pay0 pt=96 config-interval=-1 )"
        )


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
    port, config_path, workdir = sys.argv[1], sys.argv[2], sys.argv[3]
    Gst.init(None)
    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(port)
    with open(config_path, encoding="utf-8") as f:
        tracks = json.load(f)["channels"].keys()
    playback = Playback(config_path, workdir)
    for track in tracks:
        server.get_mount_points().add_factory(f"/Streaming/tracks/{track}", playback)
    if server.attach(None) == 0:
        sys.exit(f"rtsp_server: cannot listen on 127.0.0.1:{port}")
    print(f"listening {server.get_bound_port()}", flush=True)
    GLib.MainLoop().run()


if __name__ == "__main__":
    main()

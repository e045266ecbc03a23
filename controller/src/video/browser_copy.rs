//! Browser copies of pulled video whose codec Chromium cannot play.
//!
//! Debian's Chromium plays H.264, VP8, VP9 and AV1 in MP4 but not H.265/HEVC (it has no
//! software HEVC decoder; `canPlayType('video/mp4; codecs="hvc1…"')` answers ""), and many
//! NVRs record H.265. The archived original stays exactly as pulled; beside it the replay page
//! gets `pull-N.browser.mp4`: every frame decoded and encoded again as H.264 (libx264, the
//! encoder of Debian's libavcodec) with the same timestamps, so gaps stay gaps and the copy
//! plays in step with the room's other channels. The copy is written to a hidden partial name
//! and renamed when complete.

use std::path::{Path, PathBuf};

use ffmpeg::format::Pixel;
use ffmpeg::software::scaling;
use ffmpeg::{codec, decoder, encoder, format, frame, media, Dictionary, Packet, Rational};
use ffmpeg_next as ffmpeg;

use crate::error::Result;
use crate::{bail, err};

/// Codecs (FFmpeg names) Debian's Chromium plays in MP4 without help.
const PLAYABLE: [&str; 4] = ["h264", "vp8", "vp9", "av1"];
/// The encoder of browser copies.
const ENCODER: &str = "libx264";

/// Whether video in `codec` needs a browser copy.
pub fn needed(codec: &str) -> bool {
    !PLAYABLE.contains(&codec)
}

/// Where the browser copy of `original` (`pull-7.mp4`) is kept: `pull-7.browser.mp4`.
pub fn path_for(original: &Path) -> PathBuf {
    original.with_extension("browser.mp4")
}

/// What a finished browser copy holds.
#[derive(Debug, Clone, PartialEq)]
pub struct BrowserCopy {
    pub path: PathBuf,
    pub frames: u64,
    pub codec: String,
}

fn ff(step: &'static str) -> impl FnOnce(ffmpeg::Error) -> crate::error::Error {
    move |cause| err!(Internal, "浏览器副本 (browser copy) while {step}: {cause}")
}

/// Decodes `original` and encodes it as H.264 into [`path_for`]`(original)`. Blocking: run it
/// on a blocking thread.
pub fn make(original: &Path) -> Result<BrowserCopy> {
    ffmpeg::init().map_err(ff("initialising FFmpeg"))?;
    let Some(codec) = encoder::find_by_name(ENCODER) else {
        bail!(
            FailedPrecondition,
            "FFmpeg 缺少 H.264 编码器 libx264，无法生成浏览器可播放的副本 (the H.264 encoder \
             libx264 is missing from FFmpeg's libavcodec; install Debian's libavcodec59, which \
             has it)"
        );
    };
    let target = path_for(original);
    let name = target
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| err!(Internal, "browser copy path {}", target.display()))?;
    let partial = target.with_file_name(format!(".{name}.partial"));
    let result = transcode(original, &partial, codec);
    match result {
        Ok(frames) => {
            std::fs::File::open(&partial)
                .and_then(|f| f.sync_all())
                .and_then(|()| std::fs::rename(&partial, &target))
                .map_err(|e| crate::error::io_error(target.display(), e))?;
            Ok(BrowserCopy {
                path: target,
                frames,
                codec: "h264".into(),
            })
        }
        Err(e) => {
            let _ = std::fs::remove_file(&partial);
            Err(e)
        }
    }
}

/// The encoder's side: the muxer and the time bases packets move between.
struct Sink {
    output: format::context::Output,
    encoder_time_base: Rational,
    stream_time_base: Rational,
    frames: u64,
}

impl Sink {
    /// Moves every packet the encoder has ready into the muxer.
    fn drain(&mut self, encoder: &mut encoder::video::Encoder) -> Result<()> {
        let mut packet = Packet::empty();
        loop {
            match encoder.receive_packet(&mut packet) {
                Ok(()) => {
                    packet.set_stream(0);
                    packet.rescale_ts(self.encoder_time_base, self.stream_time_base);
                    packet
                        .write_interleaved(&mut self.output)
                        .map_err(ff("writing a packet"))?;
                    self.frames += 1;
                }
                Err(ffmpeg::Error::Other {
                    errno: ffmpeg::error::EAGAIN,
                })
                | Err(ffmpeg::Error::Eof) => return Ok(()),
                Err(cause) => return Err(ff("receiving a packet from the encoder")(cause)),
            }
        }
    }
}

/// The decoder's side: decoded pictures, converted to 4:2:0 8-bit when needed (10-bit HEVC).
struct Pictures {
    decoder: decoder::Video,
    scaler: Option<scaling::Context>,
}

impl Pictures {
    /// Encodes every picture the decoder has ready.
    fn drain(&mut self, encoder: &mut encoder::video::Encoder, sink: &mut Sink) -> Result<()> {
        let mut decoded = frame::Video::empty();
        while self.decoder.receive_frame(&mut decoded).is_ok() {
            let pts = decoded.timestamp();
            let mut picture = match self.scaler.as_mut() {
                Some(scaler) => {
                    let mut converted = frame::Video::empty();
                    scaler
                        .run(&decoded, &mut converted)
                        .map_err(ff("converting a picture to 8-bit 4:2:0"))?;
                    converted
                }
                None => decoded.clone(),
            };
            picture.set_pts(pts);
            picture.set_kind(ffmpeg::picture::Type::None);
            encoder
                .send_frame(&picture)
                .map_err(ff("sending a picture to the encoder"))?;
            sink.drain(encoder)?;
        }
        Ok(())
    }
}

fn transcode(original: &Path, partial: &Path, codec: ffmpeg::Codec) -> Result<u64> {
    let mut input = format::input(&original).map_err(ff("opening the original"))?;
    let (index, time_base, parameters, frame_rate) = {
        let stream = input
            .streams()
            .best(media::Type::Video)
            .ok_or_else(|| err!(Internal, "{} has no video stream", original.display()))?;
        (
            stream.index(),
            stream.time_base(),
            stream.parameters(),
            stream.avg_frame_rate(),
        )
    };
    let decoder = codec::context::Context::from_parameters(parameters)
        .and_then(|c| c.decoder().video())
        .map_err(ff("opening the decoder"))?;
    let (width, height) = (decoder.width(), decoder.height());
    let scaler = if decoder.format() == Pixel::YUV420P {
        None
    } else {
        Some(
            scaling::Context::get(
                decoder.format(),
                width,
                height,
                Pixel::YUV420P,
                width,
                height,
                scaling::Flags::BILINEAR,
            )
            .map_err(ff("preparing the pixel format conversion"))?,
        )
    };

    let path = partial
        .to_str()
        .ok_or_else(|| err!(Internal, "browser copy path is not UTF-8"))?;
    let mut output =
        format::output_as(&format!("file:{path}"), "mp4").map_err(ff("opening the MP4 muxer"))?;
    let global_header = output
        .format()
        .flags()
        .contains(format::Flags::GLOBAL_HEADER);
    let mut encoder = codec::context::Context::new_with_codec(codec)
        .encoder()
        .video()
        .map_err(ff("making the encoder"))?;
    encoder.set_width(width);
    encoder.set_height(height);
    encoder.set_format(Pixel::YUV420P);
    // The original's time base: timestamps, gaps included, pass through unchanged.
    encoder.set_time_base(time_base);
    if frame_rate.numerator() > 0 && frame_rate.denominator() > 0 {
        encoder.set_frame_rate(Some(frame_rate));
        // A key frame every two seconds or so: the player seeks anywhere quickly.
        let gop = (2 * frame_rate.numerator() / frame_rate.denominator()).clamp(1, 250);
        encoder.set_gop(gop as u32);
    }
    // Without B-frames every picture's decoding time is its display time: the copy's timeline
    // starts at its first picture in any player, with no edit list to honour.
    encoder.set_max_b_frames(0);
    if global_header {
        encoder.set_flags(codec::Flags::GLOBAL_HEADER);
    }
    let mut options = Dictionary::new();
    options.set("preset", "veryfast");
    options.set("crf", "23");
    let mut encoder = encoder
        .open_as_with(codec, options)
        .map_err(ff("opening the encoder"))?;
    {
        let mut stream = output
            .add_stream(codec)
            .map_err(ff("adding the video stream"))?;
        stream.set_parameters(&encoder);
        stream.set_time_base(time_base);
    }
    let mut faststart = Dictionary::new();
    faststart.set("movflags", "+faststart");
    output
        .write_header_with(faststart)
        .map_err(ff("writing the MP4 header"))?;
    let stream_time_base = output.stream(0).map(|s| s.time_base()).unwrap_or(time_base);
    let mut sink = Sink {
        output,
        encoder_time_base: time_base,
        stream_time_base,
        frames: 0,
    };
    let mut pictures = Pictures { decoder, scaler };
    for (stream, packet) in input.packets() {
        if stream.index() != index {
            continue;
        }
        pictures
            .decoder
            .send_packet(&packet)
            .map_err(ff("decoding the original"))?;
        pictures.drain(&mut encoder, &mut sink)?;
    }
    pictures
        .decoder
        .send_eof()
        .map_err(ff("flushing the decoder"))?;
    pictures.drain(&mut encoder, &mut sink)?;
    encoder.send_eof().map_err(ff("flushing the encoder"))?;
    sink.drain(&mut encoder)?;
    // With faststart this also moves the index in front of the media data.
    sink.output
        .write_trailer()
        .map_err(ff("writing the MP4 trailer"))?;
    Ok(sink.frames)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_codecs_chromium_cannot_play_need_a_copy() {
        assert!(needed("hevc"));
        assert!(needed("mpeg4"));
        for playable in ["h264", "vp9", "av1"] {
            assert!(!needed(playable), "{playable}");
        }
        assert_eq!(
            path_for(Path::new("/data/video/3/pull-7.mp4")),
            Path::new("/data/video/3/pull-7.browser.mp4")
        );
    }
}

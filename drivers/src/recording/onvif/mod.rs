//! ONVIF Profile G recorders: SOAP 1.2 with a WS-Security UsernameToken to find the recording
//! of a channel and what it holds, then the replay stream over RTSP through a loopback relay
//! that adds ONVIF's replay headers (FFmpeg cannot send them).
//!
//! The calls, in order:
//! 1. device service `GetSystemDateAndTime` (unauthenticated: tokens are then dated by the
//!    device's clock, which it checks them against) and `GetServices`: where the Recording,
//!    Search and Replay services live;
//! 2. Recording service `GetRecordings`: channel N is the N-th recording in the order the
//!    recorder lists them (NVRs list one recording per channel, in channel order);
//! 3. Search service `GetRecordingInformation`: the span its video track holds data for
//!    (`DataFrom`–`DataTo`, or `EarliestRecording`–`LatestRecording` without track data).
//!    ONVIF gives only these outer bounds, so gaps inside are found from the packets alone;
//! 4. Replay service `GetReplayUri` (RTP unicast over RTSP, i.e. interleaved on TCP);
//! 5. RTSP through [`relay::Relay`] (which also answers RTSP Digest with the same login): PLAY
//!    carries `Require: onvif-replay`, `Range: clock=<window start>-<window end>` and
//!    `Rate-Control: no`.

pub mod relay;
pub mod rtsp;
pub mod soap;

use std::time::Duration;

use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use super::remux;
use super::{
    check_window, PullProgress, PullReport, PullRequest, RecordedSegment, RecordingError,
    RecordingSource, TimeWindow,
};
use soap::{Caller, Element};

pub const DEVICE_WSDL: &str = "http://www.onvif.org/ver10/device/wsdl";
pub const RECORDING_WSDL: &str = "http://www.onvif.org/ver10/recording/wsdl";
pub const SEARCH_WSDL: &str = "http://www.onvif.org/ver10/search/wsdl";
pub const REPLAY_WSDL: &str = "http://www.onvif.org/ver10/replay/wsdl";
pub const SCHEMA: &str = "http://www.onvif.org/ver10/schema";

/// Where the three services of a Profile G recorder are.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Services {
    recording: String,
    search: String,
    replay: String,
}

/// An ONVIF Profile G recorder (NVR) reached at its device service.
#[derive(Debug, Clone)]
pub struct OnvifRecorder {
    /// The device service URL (`http://host[:port]/onvif/device_service`).
    device_url: String,
    caller: Caller,
}

impl OnvifRecorder {
    /// `url` is the device service, or just `http://host[:port]`, in which case the
    /// conventional `/onvif/device_service` path is used.
    pub fn new(url: &str, user: &str, password: &str) -> OnvifRecorder {
        let url = url.trim_end_matches('/');
        let has_path = url
            .split_once("://")
            .is_some_and(|(_, rest)| rest.contains('/'));
        let device_url = if has_path {
            url.to_string()
        } else {
            format!("{url}/onvif/device_service")
        };
        OnvifRecorder {
            device_url,
            caller: Caller::new(user, password, Duration::from_secs(15)),
        }
    }

    fn services(&self) -> Result<Services, RecordingError> {
        self.caller.sync_clock(&self.device_url)?;
        let response = self.caller.call(
            &self.device_url,
            &format!("{DEVICE_WSDL}/GetServices"),
            &format!(
                r#"<tds:GetServices xmlns:tds="{DEVICE_WSDL}"><tds:IncludeCapability>false</tds:IncludeCapability></tds:GetServices>"#
            ),
        )?;
        let find = |namespace: &str, what: &str| {
            response
                .children_named("Service")
                .find(|s| {
                    s.child("Namespace")
                        .is_some_and(|n| n.text.trim() == namespace)
                })
                .map(|s| s.required_text(&["XAddr"]).map(str::to_string))
                .unwrap_or_else(|| {
                    Err(RecordingError::BadReply(format!(
                        "设备没有 ONVIF {what} 服务，不是 Profile G 录像机 (GetServices lists no \
                         {namespace}: not a Profile G recorder)"
                    )))
                })
        };
        Ok(Services {
            recording: find(RECORDING_WSDL, "Recording")?,
            search: find(SEARCH_WSDL, "Search")?,
            replay: find(REPLAY_WSDL, "Replay")?,
        })
    }

    /// The recording token of `channel` (the channel-th recording listed), if there is one.
    fn recording_token(
        &self,
        services: &Services,
        channel: u32,
    ) -> Result<Option<String>, RecordingError> {
        let response = self.caller.call(
            &services.recording,
            &format!("{RECORDING_WSDL}/GetRecordings"),
            &format!(r#"<trc:GetRecordings xmlns:trc="{RECORDING_WSDL}"/>"#),
        )?;
        let Some(item) = response
            .children_named("RecordingItem")
            .nth(channel as usize - 1)
        else {
            return Ok(None);
        };
        Ok(Some(item.required_text(&["RecordingToken"])?.to_string()))
    }

    /// What the recording holds: the span of its video track's data, if any.
    fn recorded_span(
        &self,
        services: &Services,
        token: &str,
    ) -> Result<Option<TimeWindow>, RecordingError> {
        let response = self.caller.call(
            &services.search,
            &format!("{SEARCH_WSDL}/GetRecordingInformation"),
            &format!(
                r#"<tse:GetRecordingInformation xmlns:tse="{SEARCH_WSDL}"><tse:RecordingToken>{}</tse:RecordingToken></tse:GetRecordingInformation>"#,
                quick_xml::escape::escape(token)
            ),
        )?;
        recorded_span(response.required(&["RecordingInformation"])?)
    }

    fn replay_uri(&self, services: &Services, token: &str) -> Result<String, RecordingError> {
        let response = self.caller.call(
            &services.replay,
            &format!("{REPLAY_WSDL}/GetReplayUri"),
            &format!(
                r#"<trp:GetReplayUri xmlns:trp="{REPLAY_WSDL}" xmlns:tt="{SCHEMA}"><trp:StreamSetup><tt:Stream>RTP-Unicast</tt:Stream><tt:Transport><tt:Protocol>RTSP</tt:Protocol></tt:Transport></trp:StreamSetup><trp:RecordingToken>{}</trp:RecordingToken></trp:GetReplayUri>"#,
                quick_xml::escape::escape(token)
            ),
        )?;
        Ok(response.required_text(&["Uri"])?.to_string())
    }
}

/// The span of a `RecordingInformation`: its video tracks' `DataFrom`–`DataTo`, else the
/// recording's `EarliestRecording`–`LatestRecording`; `None` when it holds nothing.
fn recorded_span(information: &Element) -> Result<Option<TimeWindow>, RecordingError> {
    let mut span: Option<TimeWindow> = None;
    for track in information.children_named("Track") {
        let is_video = track
            .child("TrackType")
            .is_some_and(|t| t.text.trim() == "Video");
        if !is_video {
            continue;
        }
        let (Some(from), Some(to)) = (track.child("DataFrom"), track.child("DataTo")) else {
            continue;
        };
        let track_span = TimeWindow {
            start: onvif_time(&from.text)?,
            end: onvif_time(&to.text)?,
        };
        span = Some(match span {
            None => track_span,
            Some(s) => TimeWindow {
                start: s.start.min(track_span.start),
                end: s.end.max(track_span.end),
            },
        });
    }
    if span.is_none() {
        if let (Some(from), Some(to)) = (
            information.child("EarliestRecording"),
            information.child("LatestRecording"),
        ) {
            span = Some(TimeWindow {
                start: onvif_time(&from.text)?,
                end: onvif_time(&to.text)?,
            });
        }
    }
    Ok(span.filter(|s| s.end > s.start))
}

/// An `xs:dateTime` as ONVIF writes it (UTC, `Z`, maybe with fractions).
fn onvif_time(text: &str) -> Result<OffsetDateTime, RecordingError> {
    OffsetDateTime::parse(text.trim(), &Rfc3339).map_err(|_| {
        RecordingError::BadReply(format!("ONVIF 时间格式不对 (bad xs:dateTime) {text:?}"))
    })
}

impl RecordingSource for OnvifRecorder {
    fn search(
        &self,
        channel: u32,
        window: TimeWindow,
    ) -> Result<Vec<RecordedSegment>, RecordingError> {
        super::check_channel(channel)?;
        let services = self.services()?;
        let Some(token) = self.recording_token(&services, channel)? else {
            tracing::warn!(
                channel,
                "the ONVIF recorder lists no recording for this channel"
            );
            return Ok(Vec::new());
        };
        let Some(span) = self.recorded_span(&services, &token)? else {
            return Ok(Vec::new());
        };
        if !span.overlaps(&window) {
            return Ok(Vec::new());
        }
        Ok(vec![RecordedSegment {
            span,
            playback_uri: self.replay_uri(&services, &token)?,
        }])
    }

    fn pull(
        &self,
        request: &PullRequest<'_>,
        progress: &mut dyn FnMut(PullProgress),
    ) -> Result<PullReport, RecordingError> {
        check_window(request.window, request.now)?;
        let partial = remux::partial_path(request.output)?;
        let segments = self.search(request.channel, request.window)?;
        let Some(first) = segments.first() else {
            return Err(RecordingError::NothingRecorded {
                channel: request.channel,
                window: request.window.to_string(),
            });
        };
        let relay = relay::Relay::start(
            &first.playback_uri,
            request.window,
            Some((&self.caller.user, &self.caller.password)),
        )?;
        let outcome = remux::pull_window(relay.url(), request, &segments, &partial, progress);
        let refusal = relay.refusal();
        drop(relay);
        let outcome = match (outcome, refusal) {
            // FFmpeg reports a refused request only as "5XX"/"4XX"; the relay saw which.
            (Err(RecordingError::Ffmpeg { .. }), Some(line)) if line.contains(" 401 ") => {
                Err(RecordingError::Unauthorized(first.playback_uri.clone()))
            }
            (Err(RecordingError::Ffmpeg { .. }), Some(line)) => Err(RecordingError::BadReply(
                format!("录像机拒绝了回放请求 (the recorder refused the replay request): {line}"),
            )),
            (outcome, _) => outcome,
        };
        match outcome {
            Ok(Ok(report)) => {
                remux::finish(&partial, request.output)?;
                Ok(report)
            }
            Ok(Err(e)) | Err(e) => {
                let _ = std::fs::remove_file(&partial);
                Err(e)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn device_url_defaults_to_the_conventional_path() {
        let r = OnvifRecorder::new("http://10.0.0.5:8080/", "u", "p");
        assert_eq!(r.device_url, "http://10.0.0.5:8080/onvif/device_service");
        let r = OnvifRecorder::new("http://10.0.0.5/onvif/device_service", "u", "p");
        assert_eq!(r.device_url, "http://10.0.0.5/onvif/device_service");
    }

    #[test]
    fn recording_information_spans_come_from_video_tracks() {
        let xml = r#"<tse:RecordingInformation xmlns:tse="http://www.onvif.org/ver10/search/wsdl" xmlns:tt="http://www.onvif.org/ver10/schema">
<tt:RecordingToken>REC_CH01</tt:RecordingToken>
<tt:EarliestRecording>2026-11-19T23:00:00Z</tt:EarliestRecording><tt:LatestRecording>2026-11-20T01:00:00Z</tt:LatestRecording>
<tt:Track><tt:TrackToken>AUDIO001</tt:TrackToken><tt:TrackType>Audio</tt:TrackType><tt:DataFrom>2026-11-19T22:00:00Z</tt:DataFrom><tt:DataTo>2026-11-20T02:00:00Z</tt:DataTo></tt:Track>
<tt:Track><tt:TrackToken>VIDEO001</tt:TrackToken><tt:TrackType>Video</tt:TrackType><tt:DataFrom>2026-11-19T23:59:00.5Z</tt:DataFrom><tt:DataTo>2026-11-20T00:11:40Z</tt:DataTo></tt:Track>
</tse:RecordingInformation>"#;
        let info = soap::parse(xml).unwrap();
        assert_eq!(
            recorded_span(&info).unwrap(),
            Some(TimeWindow {
                start: datetime!(2026-11-19 23:59:00.5 UTC),
                end: datetime!(2026-11-20 00:11:40 UTC),
            })
        );
        // Without track data, the recording's outer bounds.
        let bare = soap::parse(
            r#"<RecordingInformation><EarliestRecording>2026-11-19T23:00:00Z</EarliestRecording><LatestRecording>2026-11-20T01:00:00Z</LatestRecording></RecordingInformation>"#,
        )
        .unwrap();
        assert_eq!(
            recorded_span(&bare).unwrap().map(|s| s.length()),
            Some(Duration::from_secs(7200))
        );
        let empty = soap::parse("<RecordingInformation/>").unwrap();
        assert_eq!(recorded_span(&empty).unwrap(), None);
        let garbage = soap::parse(
            "<RecordingInformation><EarliestRecording>yesterday</EarliestRecording><LatestRecording>x</LatestRecording></RecordingInformation>",
        )
        .unwrap();
        assert!(recorded_span(&garbage).is_err());
    }
}

//! Cameras at the gate: one snapshot per badge. V4L2 capture (MJPEG, the format every USB
//! camera sold for gates delivers) when built with the `v4l2` feature; the image-file fake
//! serves the tests and gates without a camera.

use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum CameraError {
    #[error("camera I/O on {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{0} is not supported yet")]
    NotSupported(String),
}

/// A camera that takes a still (JPEG bytes).
pub trait Camera: Send {
    fn snapshot(&mut self) -> Result<Vec<u8>, CameraError>;
}

/// A camera that "takes" the same image file each time (read anew, so a test can swap it).
#[derive(Debug, Clone)]
pub struct FileCamera {
    path: PathBuf,
}

impl FileCamera {
    pub fn new(path: &Path) -> FileCamera {
        FileCamera {
            path: path.to_path_buf(),
        }
    }
}

impl Camera for FileCamera {
    fn snapshot(&mut self) -> Result<Vec<u8>, CameraError> {
        std::fs::read(&self.path).map_err(|source| CameraError::Io {
            path: self.path.clone(),
            source,
        })
    }
}

/// No camera at this gate: badges are recorded without a snapshot.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoCamera;

impl Camera for NoCamera {
    fn snapshot(&mut self) -> Result<Vec<u8>, CameraError> {
        Err(CameraError::NotSupported(
            "a gate without a camera taking a snapshot".into(),
        ))
    }
}

/// Opens a V4L2 device for MJPEG stills. Built without the `v4l2` feature, says so at run time.
#[cfg(not(feature = "v4l2"))]
pub fn open_v4l2(device: &Path) -> Result<Box<dyn Camera>, CameraError> {
    Err(CameraError::NotSupported(format!(
        "V4L2 capture from {} in a build without the v4l2 feature",
        device.display()
    )))
}

/// Opens a V4L2 device for MJPEG stills.
#[cfg(feature = "v4l2")]
pub fn open_v4l2(device: &Path) -> Result<Box<dyn Camera>, CameraError> {
    Ok(Box::new(v4l2::V4l2Camera::open(device)?))
}

#[cfg(feature = "v4l2")]
mod v4l2 {
    //! V4L2 capture: the stream stays open between badges, so a snapshot is the next frame
    //! (tens of milliseconds), not a device open and auto-exposure settling (a second or more).

    use std::path::{Path, PathBuf};

    use v4l::buffer::Type;
    use v4l::io::mmap::Stream;
    use v4l::io::traits::CaptureStream;
    use v4l::video::Capture;
    use v4l::{Device, FourCC};

    use super::{Camera, CameraError};

    /// Frames dropped after (re)opening: the first frames of a USB camera are dark.
    const WARM_UP_FRAMES: usize = 5;
    /// How long to wait for a frame before the camera counts as gone.
    const FRAME_TIMEOUT_MS: u64 = 2000;

    pub struct V4l2Camera {
        path: PathBuf,
        stream: Option<Stream<'static>>,
    }

    fn io(path: &Path, source: std::io::Error) -> CameraError {
        CameraError::Io {
            path: path.to_path_buf(),
            source,
        }
    }

    fn open_stream(path: &Path) -> Result<Stream<'static>, CameraError> {
        let device = Device::with_path(path).map_err(|e| io(path, e))?;
        let mut format = device.format().map_err(|e| io(path, e))?;
        format.fourcc = FourCC::new(b"MJPG");
        let format = device.set_format(&format).map_err(|e| io(path, e))?;
        if format.fourcc != FourCC::new(b"MJPG") {
            return Err(CameraError::NotSupported(format!(
                "camera {} without MJPEG output (it offers {})",
                path.display(),
                format.fourcc
            )));
        }
        let mut stream =
            Stream::with_buffers(&device, Type::VideoCapture, 4).map_err(|e| io(path, e))?;
        stream.set_timeout(std::time::Duration::from_millis(FRAME_TIMEOUT_MS));
        for _ in 0..WARM_UP_FRAMES {
            stream.next().map_err(|e| io(path, e))?;
        }
        Ok(stream)
    }

    impl V4l2Camera {
        /// Opens the camera; one that is missing or failing now is logged and tried again at
        /// each badge (a gate without its camera still decides, its events lack a snapshot).
        pub fn open(path: &Path) -> Result<V4l2Camera, CameraError> {
            let stream = match open_stream(path) {
                Ok(stream) => {
                    tracing::info!(camera = %path.display(), "V4L2 camera ready (MJPEG)");
                    Some(stream)
                }
                Err(e) => {
                    tracing::error!(camera = %path.display(), error = %e, "camera unavailable; retrying at each badge");
                    None
                }
            };
            Ok(V4l2Camera {
                path: path.to_path_buf(),
                stream,
            })
        }
    }

    impl Camera for V4l2Camera {
        fn snapshot(&mut self) -> Result<Vec<u8>, CameraError> {
            // A camera unplugged and plugged back is reopened at the next badge.
            if self.stream.is_none() {
                self.stream = Some(open_stream(&self.path)?);
            }
            let stream = self.stream.as_mut().ok_or_else(|| {
                CameraError::NotSupported("a camera stream that failed to open".into())
            })?;
            match stream.next() {
                Ok((frame, meta)) => {
                    let used = (meta.bytesused as usize).min(frame.len());
                    Ok(frame[..used].to_vec())
                }
                Err(e) => {
                    self.stream = None;
                    Err(io(&self.path, e))
                }
            }
        }
    }
}

#[cfg(all(test, feature = "v4l2"))]
mod tests {
    use super::*;

    #[test]
    fn a_missing_or_wrong_device_is_an_error_at_the_badge_not_a_crash() {
        let dir = tempfile::tempdir().unwrap();
        let not_a_camera = dir.path().join("video0");
        std::fs::write(&not_a_camera, b"not a V4L2 device").unwrap();
        for path in [dir.path().join("video9"), not_a_camera] {
            let mut camera = open_v4l2(&path).expect("the gate starts without its camera");
            let error = camera.snapshot().unwrap_err().to_string();
            assert!(error.contains(&path.display().to_string()), "{error}");
        }
    }
}

//! Cameras at the gate: one snapshot per badge. V4L2 capture is planned (not supported yet);
//! the image-file fake serves the tests and gates without a camera.

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

/// Opens a V4L2 device. The `v4l` crate is not in our build yet, so this says so at run time.
pub fn open_v4l2(device: &Path) -> Result<Box<dyn Camera>, CameraError> {
    Err(CameraError::NotSupported(format!(
        "V4L2 capture from {}",
        device.display()
    )))
}

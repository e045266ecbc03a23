//! What a kept copy must still hold when it is re-read years later: the payload files (and
//! parts of split files) with the digests the catalog recorded when the copy was made.

use std::collections::BTreeMap;

use crate::catalog::DiscRow;
use crate::digest::Digests;
use crate::error::Result;
use crate::package as pkg;
use crate::verify::Expected;

use super::{steps, Engine};

/// The payload (`data/…`) a copy holds: a disc its volume's files and parts, a disk copy every
/// file of the package whole. Tag files are not in the catalog (they were written from it), so
/// a re-read checks the payload only.
pub async fn expected_payload(engine: &Engine, disc: &DiscRow) -> Result<Vec<Expected>> {
    let files = pkg::package_files(&engine.pool, disc.job_id).await?;
    if disc.kind == "disk" {
        return Ok(files
            .iter()
            .map(|f| Expected {
                path: format!("data/{}", f.rel_path),
                size: f.size as u64,
                digests: Digests {
                    sha256: f.sha256.clone(),
                    sm3: f.sm3.clone(),
                },
            })
            .collect());
    }
    let parts = pkg::file_parts(&engine.pool, disc.job_id).await?;
    let volume = steps::volumes(engine, disc.job_id)
        .await?
        .into_iter()
        .find(|v| v.set_index == disc.set_index)
        .ok_or_else(|| {
            crate::err!(
                NotFound,
                "作业 {} 没有第 {} 张光盘的分卷记录",
                disc.job_id,
                disc.set_index
            )
        })?;
    let by_id: BTreeMap<i64, &pkg::PackageFile> = files.iter().map(|f| (f.id, f)).collect();
    Ok(steps::volume_payload(&volume.items()?, &by_id, &parts)?
        .into_iter()
        .map(|p| Expected {
            path: p.bag_path,
            size: p.size,
            digests: p.digests,
        })
        .collect())
}

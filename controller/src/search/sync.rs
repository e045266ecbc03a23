//! From the catalog to search items: a project, its files (with their extracted text), its
//! discs and disk copies; and the fingerprint that tells whether the index still reflects the
//! catalog.
//!
//! The catalog has no columns for tenderer, agency, winning bidder or bidders yet; they are
//! taken from the project's files: bidders from the `投标文件/NN-<投标人>/` folders, the others
//! from lines like `招标人：…` in its documents. Video items take room and channel from the
//! `评标录像/<房间>-<通道>.mp4` names; the catalog has no time windows yet. Experts come from
//! the expert draws, by name and evaluation window only: their ID numbers never reach the index.

use std::path::Path;

use sqlx::SqlitePool;
use witness_schemas::api::{Category, CopyKind, DiscStatus, SourceKind};
use witness_schemas::search::ItemKind;

use super::extract;
use super::schema::ItemDoc;
use crate::catalog::{self, ProjectRow, SourceRow};
use crate::error::Result;

/// A summary of the catalog that changes whenever anything the index shows changes: counts,
/// largest ids and the latest change of projects, files, jobs and discs.
pub async fn fingerprint(pool: &SqlitePool) -> Result<String> {
    let (fingerprint,): (String,) = sqlx::query_as(
        "SELECT
            'p' || (SELECT COUNT(*) FROM projects) || '/' || (SELECT COALESCE(MAX(id), 0) FROM projects)
            || '/' || (SELECT COALESCE(group_concat(status || ':' || n), '') FROM
                (SELECT status, COUNT(*) AS n FROM projects GROUP BY status ORDER BY status))
            || ' f' || (SELECT COUNT(*) FROM source_files)
            || '/' || (SELECT COALESCE(MAX(id), 0) FROM source_files)
            || ' j' || (SELECT COUNT(*) FROM jobs) || '/' || (SELECT COALESCE(MAX(updated_at), '') FROM jobs)
            || ' d' || (SELECT COUNT(*) FROM discs) || '/' || (SELECT COALESCE(MAX(id), 0) FROM discs)
            || '/' || (SELECT COALESCE(group_concat(status || ':' || n), '') FROM
                (SELECT status, COUNT(*) AS n FROM discs GROUP BY status ORDER BY status))
            || '/' || (SELECT COALESCE(MAX(verified_at), '') FROM discs)
            || ' e' || (SELECT COUNT(*) FROM expert_draws)
            || '/' || (SELECT COALESCE(MAX(id), 0) FROM expert_draws)
            || ' s' || (SELECT COUNT(*) FROM discs WHERE shelf <> '')
            || '/' || (SELECT COALESCE(SUM(length(shelf) * id), 0) FROM discs)
            || ' v' || (SELECT COUNT(*) FROM video_pulls WHERE status = 'done')
            || '/' || (SELECT COALESCE(MAX(updated_at), '') FROM video_pulls)
            || ' i' || (SELECT COUNT(*) FROM inspections)
            || '/' || (SELECT COALESCE(MAX(finished_at), '') FROM inspections)",
    )
    .fetch_one(pool)
    .await?;
    Ok(fingerprint)
}

pub async fn project_ids(pool: &SqlitePool) -> Result<Vec<i64>> {
    let rows: Vec<(i64,)> = sqlx::query_as("SELECT id FROM projects ORDER BY id")
        .fetch_all(pool)
        .await?;
    Ok(rows.into_iter().map(|r| r.0).collect())
}

/// The project a disc belongs to.
pub async fn disc_project(pool: &SqlitePool, disc_id: i64) -> Result<Option<i64>> {
    let row: Option<(i64,)> = sqlx::query_as(
        "SELECT j.project_id FROM discs d JOIN jobs j ON j.id = d.job_id WHERE d.id = ?",
    )
    .bind(disc_id)
    .fetch_optional(pool)
    .await?;
    Ok(row.map(|r| r.0))
}

/// Everything the index needs of one project, read from the catalog (file text comes later,
/// off the async threads).
pub struct ProjectData {
    pub project: ProjectRow,
    pub sources: Vec<SourceRow>,
    pub discs: Vec<witness_schemas::api::Disc>,
    /// Finished video pulls by the source they became: rel_path → (pull id, room, channel,
    /// window start, window end, gaps as JSON).
    pub pulls: std::collections::HashMap<String, VideoPull>,
    /// Experts drawn for the project: (draw id, name, window start, window end).
    pub experts: Vec<(i64, String, String, String)>,
}

/// A finished pull of an NVR channel, as the search item of its video shows it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct VideoPull {
    pub id: i64,
    pub rel_path: String,
    pub room: String,
    pub channel: i64,
    pub label: String,
    pub window_start: String,
    pub window_end: String,
    pub gaps: String,
}

/// None when the project no longer exists (its items are then only removed).
pub async fn load(pool: &SqlitePool, project_id: i64) -> Result<Option<ProjectData>> {
    let project = match catalog::project_by_id(pool, project_id).await {
        Ok(p) => p,
        Err(e) if e.kind == crate::error::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    Ok(Some(ProjectData {
        sources: catalog::source_rows(pool, project_id).await?,
        discs: catalog::list_discs(pool, Some(project_id)).await?,
        pulls: sqlx::query_as::<_, VideoPull>(
            "SELECT id, rel_path, room, channel, label, window_start, window_end, gaps \
             FROM video_pulls WHERE project_id = ? AND status = 'done' AND rel_path IS NOT NULL",
        )
        .bind(project_id)
        .fetch_all(pool)
        .await?
        .into_iter()
        .map(|p| (p.rel_path.clone(), p))
        .collect(),
        experts: sqlx::query_as(
            "SELECT id, name, window_start, window_end FROM expert_draws \
             WHERE project_id = ? ORDER BY window_start, id",
        )
        .bind(project_id)
        .fetch_all(pool)
        .await?,
        project,
    }))
}

/// The project of a job.
pub async fn job_project(pool: &SqlitePool, job_id: i64) -> Result<Option<i64>> {
    let row: Option<(i64,)> = sqlx::query_as("SELECT project_id FROM jobs WHERE id = ?")
        .bind(job_id)
        .fetch_optional(pool)
        .await?;
    Ok(row.map(|r| r.0))
}

pub fn project_link(number: &str) -> String {
    format!("/#/projects/{}", url_segment(number))
}

fn url_segment(text: &str) -> String {
    let mut out = String::new();
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Values of labelled lines (`招标人：兰考县交通运输局`) in a document.
fn labelled(text: &str, labels: &[&str]) -> Vec<String> {
    let mut out = Vec::new();
    for line in text.lines() {
        for label in labels {
            if let Some(rest) = line.trim().strip_prefix(label) {
                if let Some(value) = rest.strip_prefix('：').or_else(|| rest.strip_prefix(':')) {
                    let value = value.trim();
                    if !value.is_empty()
                        && value.chars().count() <= 60
                        && !out.iter().any(|v| v == value)
                    {
                        out.push(value.to_string());
                    }
                }
            }
        }
    }
    out
}

/// The bidder of a file under `投标文件/NN-<投标人>/`.
fn bidder_of(rel_path: &str) -> Option<String> {
    let mut parts = rel_path.split('/');
    while let Some(part) = parts.next() {
        if part == "投标文件" {
            let folder = parts.next()?;
            parts.next()?; // a file directly in 投标文件/ names no bidder
            let name = folder
                .trim_start_matches(|c: char| c.is_ascii_digit())
                .trim_start_matches(['-', '_', ' ', '.']);
            return (!name.is_empty()).then(|| name.to_string());
        }
    }
    None
}

fn item_kind(kind: SourceKind) -> ItemKind {
    match kind {
        SourceKind::Document => ItemKind::Document,
        SourceKind::Video => ItemKind::Video,
        SourceKind::Audio => ItemKind::Audio,
        SourceKind::Other => ItemKind::Other,
    }
}

fn disc_status_zh(status: DiscStatus) -> &'static str {
    match status {
        DiscStatus::Writing => "刻录中",
        DiscStatus::Written => "待校验",
        DiscStatus::Verified => "已校验",
        DiscStatus::Rejected => "已作废",
    }
}

/// Builds the items of one project; reads and extracts its files (blocking).
pub fn items(data: &ProjectData) -> Vec<ItemDoc> {
    let project = &data.project;
    let category = project.category();
    let date: String = project.opening.chars().take(10).collect();
    let link = project_link(&project.number);
    let context = format!(
        "{} {} {} {} {}",
        project.number,
        project.name,
        category.label_zh(),
        date,
        date.get(..4).map(|y| format!("{y}年")).unwrap_or_default()
    );
    let base = ItemDoc {
        project_id: project.id,
        project_number: project.number.clone(),
        project_name: project.name.clone(),
        category: category.as_str().to_string(),
        date: date.clone(),
        context: context.clone(),
        item_link: link.clone(),
        ..ItemDoc::default()
    };
    let mut items = Vec::new();
    let mut bidders: Vec<String> = Vec::new();
    let mut tenderers = Vec::new();
    let mut agencies = Vec::new();
    let mut winners = Vec::new();
    for source in &data.sources {
        let kind = catalog::parse_source_kind(&source.kind);
        let file_name = source
            .rel_path
            .rsplit('/')
            .next()
            .unwrap_or(&source.rel_path);
        let mut body = String::new();
        if let Some(bidder) = bidder_of(&source.rel_path) {
            if !bidders.contains(&bidder) {
                bidders.push(bidder.clone());
            }
            body.push_str(&format!("投标人：{bidder}\n"));
        }
        if kind == SourceKind::Video {
            let stem = file_name
                .rsplit_once('.')
                .map(|(s, _)| s)
                .unwrap_or(file_name);
            if let Some((room, channel)) = stem.rsplit_once('-') {
                body.push_str(&format!("房间：{room} 通道：{channel}\n"));
            }
        }
        if let Some(text) = extract::extract_text(Path::new(&source.origin), file_name) {
            tenderers.extend(labelled(&text, &["招标人", "采购人", "出让人", "转让方"]));
            agencies.extend(labelled(
                &text,
                &["招标代理机构", "代理机构", "采购代理机构"],
            ));
            winners.extend(labelled(
                &text,
                &["中标人", "推荐中标候选人", "第一中标候选人", "成交供应商"],
            ));
            body.push_str(&text);
        }
        // A pulled video opens in the player at its window, which its text names.
        let mut item_link = base.item_link.clone();
        if let Some(pull) = data.pulls.get(&source.rel_path) {
            let minute = |t: &str| t.get(..16).unwrap_or(t).replace('T', " ");
            let gaps = serde_json::from_str::<Vec<serde_json::Value>>(&pull.gaps)
                .map(|g| g.len())
                .unwrap_or(0);
            body.push_str(&format!(
                "房间：{} 通道：{} {}\n录像时段：{} 至 {}，{}\n",
                pull.room,
                pull.channel,
                pull.label,
                minute(&pull.window_start),
                minute(&pull.window_end),
                if gaps == 0 {
                    "无缺失".to_string()
                } else {
                    format!("缺失 {gaps} 段")
                }
            ));
            item_link = format!(
                "/video.html?project={}&pull={}&t=0",
                url_segment(&project.number),
                pull.id
            );
        }
        items.push(ItemDoc {
            id: format!("file:{}", source.id),
            kind: Some(item_kind(kind)),
            title: source.rel_path.clone(),
            body,
            codes: source.rel_path.clone(),
            item_link,
            ..base.clone()
        });
    }
    for disc in &data.discs {
        let (kind, label) = match disc.kind {
            CopyKind::Optical => (
                ItemKind::Disc,
                format!(
                    "光盘 {} 第 {}/{} 张",
                    disc.volume_id,
                    disc.set_index + 1,
                    disc.set_count
                ),
            ),
            CopyKind::Disk => (ItemKind::DiskCopy, format!("硬盘副本 {}", disc.volume_id)),
        };
        // Where the archivist keeps it (shelf, cabinet, box), not the file it was written to.
        let shelf = if disc.shelf.trim().is_empty() {
            "未登记存放位置".to_string()
        } else {
            disc.shelf.clone()
        };
        let inspection = match (&disc.inspection_result, &disc.inspected_at) {
            (Some(result), at) => {
                let at = at.as_deref().unwrap_or_default();
                format!(
                    "复检：{} {}",
                    if result == "passed" {
                        "通过"
                    } else {
                        "未通过"
                    },
                    at.get(..10).unwrap_or(at)
                )
            }
            (None, _) => "复检：尚未复检".to_string(),
        };
        items.push(ItemDoc {
            id: format!("disc:{}", disc.id),
            kind: Some(kind),
            title: label,
            body: format!(
                "介质：{} 存放位置：{shelf} 状态：{} {inspection} 作业 {}",
                disc.medium,
                disc_status_zh(disc.status),
                disc.job_id
            ),
            codes: format!("{} {}", disc.volume_id, disc.medium),
            location: Some(shelf),
            item_link: "/#/discs".to_string(),
            ..base.clone()
        });
    }
    for (id, name, start, end) in &data.experts {
        let day = |t: &str| t.get(..16).unwrap_or(t).replace('T', " ");
        items.push(ItemDoc {
            id: format!("expert:{id}"),
            kind: Some(ItemKind::Expert),
            title: name.clone(),
            body: format!("评标专家 {name}\n评标时间：{} 至 {}", day(start), day(end)),
            ..base.clone()
        });
    }
    let dedup = |mut v: Vec<String>| {
        let mut seen = Vec::new();
        v.retain(|x| {
            let new = !seen.contains(x);
            seen.push(x.clone());
            new
        });
        v.join("、")
    };
    let mut body = format!("{} {}\n", category.label_zh(), status_zh(&project.status));
    for (label, values) in [
        ("招标人", dedup(tenderers)),
        ("代理机构", dedup(agencies)),
        ("中标人", dedup(winners)),
        ("投标人", bidders.join("、")),
    ] {
        if !values.is_empty() {
            body.push_str(&format!("{label}：{values}\n"));
        }
    }
    items.insert(
        0,
        ItemDoc {
            id: format!("project:{}", project.number),
            kind: Some(ItemKind::Project),
            title: project.name.clone(),
            body,
            context: format!("{} {} {}", project.number, category.label_zh(), date),
            codes: project.number.clone(),
            ..base
        },
    );
    items
}

fn status_zh(status: &str) -> &'static str {
    match status {
        "archiving" => "归档中",
        "archived" => "已归档",
        "failed" => "归档失败",
        _ => "已登记",
    }
}

/// Category code from a code or its Chinese name.
pub fn parse_category(text: &str) -> Option<Category> {
    Category::parse(text).or_else(|| Category::ALL.into_iter().find(|c| c.label_zh() == text))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bidders_and_labelled_values_are_found() {
        assert_eq!(
            bidder_of("投标文件/02-河南宏达建设工程有限公司/商务标.pdf").as_deref(),
            Some("河南宏达建设工程有限公司")
        );
        assert_eq!(bidder_of("投标文件/说明.txt"), None);
        assert_eq!(
            labelled(
                "项目\n招标人：兰考县交通运输局\n招标人: 兰考县交通运输局\n",
                &["招标人"]
            ),
            ["兰考县交通运输局"]
        );
    }
}

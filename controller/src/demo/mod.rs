//! `witness serve --demo`: seeds a few realistic trading projects with generated documents and
//! short generated evaluation videos, so a newcomer can press 一键备份 at once.

pub mod video;

use std::path::Path;

use witness_schemas::api::{Category, NewProject};

use crate::catalog;
use crate::error::{io_error, Result};
use crate::jobs::Engine;

struct DemoProject {
    number: &'static str,
    name: &'static str,
    category: Category,
    opening: &'static str,
    tenderer: &'static str,
    bidders: &'static [&'static str],
}

const PROJECTS: &[DemoProject] = &[
    DemoProject {
        number: "LKGC-2026-0318",
        name: "兰考县2026年农村公路提质改造工程施工（第一标段）",
        category: Category::Construction,
        opening: "2026-03-18T09:30:00+08:00",
        tenderer: "兰考县交通运输局",
        bidders: &[
            "河南路桥建设集团有限公司",
            "开封市公路工程有限公司",
            "中原交通建设有限公司",
        ],
    },
    DemoProject {
        number: "LKCG-2026-0042",
        name: "兰考县人民医院医疗设备采购项目",
        category: Category::Procurement,
        opening: "2026-05-12T10:00:00+08:00",
        tenderer: "兰考县人民医院",
        bidders: &["河南康达医疗器械有限公司", "郑州华信医疗科技有限公司"],
    },
    DemoProject {
        number: "LKTD-2026-0007",
        name: "兰考县城东片区2026-07号地块国有建设用地使用权挂牌出让",
        category: Category::Land,
        opening: "2026-07-20T15:00:00+08:00",
        tenderer: "兰考县自然资源局",
        bidders: &["兰考县城投置业有限公司"],
    },
];

/// Seeds the demo projects unless the catalog already has projects (a restart keeps its data).
pub async fn seed(engine: &Engine) -> Result<()> {
    if !catalog::list_projects(&engine.pool).await?.is_empty() {
        tracing::info!("catalog already has projects; demo data not seeded again");
        return Ok(());
    }
    let root = engine.settings.data_dir.join("demo-sources");
    for project in PROJECTS {
        let dir = root.join(project.number);
        let dir_for_files = dir.clone();
        tokio::task::spawn_blocking(move || write_files(project, &dir_for_files))
            .await
            .map_err(|e| crate::err!(Internal, "demo generator failed: {e}"))??;
        let new = NewProject {
            number: project.number.into(),
            name: project.name.into(),
            category: project.category,
            opening: project.opening.into(),
        };
        catalog::create_project(&engine.pool, &new, engine.clock.now()).await?;
        let paths: Vec<String> = std::fs::read_dir(&dir)
            .map_err(|e| io_error(dir.display(), e))?
            .filter_map(|e| e.ok())
            .map(|e| e.path().display().to_string())
            .collect();
        catalog::add_sources(
            &engine.pool,
            &engine.source_policy(),
            project.number,
            &paths,
            engine.clock.now(),
        )
        .await?;
    }
    tracing::info!(projects = PROJECTS.len(), "demo projects seeded");
    Ok(())
}

fn write(path: &Path, text: &str) -> Result<()> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(|e| io_error(parent.display(), e))?;
    }
    std::fs::write(path, text).map_err(|e| io_error(path.display(), e))
}

fn write_files(project: &DemoProject, dir: &Path) -> Result<()> {
    let category = project.category.label_zh();
    write(
        &dir.join("招标文件").join(format!("{}-招标文件.txt", project.number)),
        &format!(
            "{}\n招标文件\n\n项目编号：{}\n项目类别：{category}\n招标人：{}\n开标时间：{}\n\n第一章 招标公告\n……\n",
            project.name, project.number, project.tenderer, project.opening
        ),
    )?;
    for (i, bidder) in project.bidders.iter().enumerate() {
        write(
            &dir.join("投标文件")
                .join(format!("{:02}-{bidder}", i + 1))
                .join("商务标.txt"),
            &format!(
                "投标人：{bidder}\n项目：{}（{}）\n投标报价：详见报价一览表\n",
                project.name, project.number
            ),
        )?;
    }
    let mut record = String::from("序号,投标人,投标报价（元）,工期（日历天）,投标保证金\n");
    for (i, bidder) in project.bidders.iter().enumerate() {
        record.push_str(&format!(
            "{},{bidder},{},{} ,已缴纳\n",
            i + 1,
            12_345_678 - i as u64 * 234_567,
            180 + i * 10
        ));
    }
    write(&dir.join("开标记录表.csv"), &record)?;
    write(
        &dir.join("评标报告.html"),
        &format!(
            "<!doctype html><meta charset=utf-8><title>评标报告</title><h1>{} 评标报告</h1><p>项目编号：{}</p><p>推荐中标候选人：{}</p>",
            project.name,
            project.number,
            project.bidders.first().unwrap_or(&"")
        ),
    )?;
    let video_dir = dir.join("评标录像");
    std::fs::create_dir_all(&video_dir).map_err(|e| io_error(video_dir.display(), e))?;
    for room in ["评标室1-通道01", "开标室-通道01"] {
        video::write_demo_video(&video_dir.join(format!("{room}.mp4")), 5, 320, 240)
            .map_err(|e| crate::err!(Internal, "生成演示录像：{e}"))?;
    }
    Ok(())
}

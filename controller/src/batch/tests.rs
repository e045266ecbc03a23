//! Batch import tests: a sheet with bad rows gets exact per-row, per-column errors; a dry run
//! stores nothing; the valid rows become projects, sources and jobs; the template reads back.

use rust_xlsxwriter::Workbook;
use time::macros::datetime;
use witness_schemas::schedule::RowError;

use super::*;
use crate::schedule::tests::engine_with;

/// A sheet with the template's header and these rows (cells as text, "" for empty).
fn sheet(rows: &[[&str; 7]]) -> Vec<u8> {
    let mut workbook = Workbook::new();
    let sheet = workbook.add_worksheet();
    sheet.set_name(SHEET).unwrap();
    for (col, (title, _)) in COLUMNS.iter().enumerate() {
        sheet.write_string(0, col as u16, *title).unwrap();
    }
    for (r, row) in rows.iter().enumerate() {
        for (c, value) in row.iter().enumerate() {
            if !value.is_empty() {
                sheet.write_string(r as u32 + 1, c as u16, *value).unwrap();
            }
        }
    }
    workbook.save_to_buffer().unwrap()
}

fn error(row: u32, column: &str, message: &str) -> RowError {
    RowError {
        row,
        column: column.into(),
        message: message.into(),
    }
}

#[tokio::test]
async fn bad_rows_get_exact_errors_and_only_valid_rows_are_stored() {
    let (dir, engine, _clock) = engine_with(
        datetime!(2027-04-01 09:00 +8),
        "[archive]\nsource_roots = [\"{dir}/incoming\"]\n",
    )
    .await;
    let incoming = dir.path().join("incoming");
    for name in ["道路改造", "空文件夹"] {
        std::fs::create_dir_all(incoming.join(name)).unwrap();
    }
    std::fs::write(incoming.join("道路改造/评标报告.pdf"), b"%PDF-1.4 report").unwrap();
    let outside = dir.path().join("elsewhere");
    std::fs::create_dir_all(&outside).unwrap();
    std::fs::write(outside.join("a.txt"), b"a").unwrap();
    crate::catalog::create_project(
        &engine.pool,
        &NewProject {
            number: "GC-2027-050".into(),
            name: "已登记的项目".into(),
            category: Category::Construction,
            opening: "2027-03-01T09:00:00+08:00".into(),
        },
        engine.clock.now(),
    )
    .await
    .unwrap();
    let good = incoming.join("道路改造").display().to_string();
    let empty = incoming.join("空文件夹").display().to_string();
    let outside = outside.display().to_string();
    let bytes = sheet(&[
        [
            "GC-2027-051",
            "城区道路改造",
            "工程建设",
            "2027-03-18 09:30",
            &good,
            "2",
            "7",
        ],
        ["", "缺编号的项目", "政府采购", "2027-03-19", &good, "", ""],
        [
            "GC-2027-052",
            "日期写错的项目",
            "工程建设",
            "2027-02-30",
            &good,
            "",
            "",
        ],
        [
            "GC-2027-053",
            "类别写错的项目",
            "水利工程",
            "2027/3/20",
            &good,
            "",
            "",
        ],
        [
            "GC-2027-051",
            "重复编号的项目",
            "土地使用权",
            "2027-03-21",
            &good,
            "",
            "",
        ],
        [
            "GC-2027-050",
            "已存在的项目",
            "矿业权",
            "2027-03-22",
            &good,
            "",
            "",
        ],
        [
            "GC-2027-054",
            "源文件夹在外面",
            "国有产权",
            "2027-03-23",
            &outside,
            "",
            "12",
        ],
        [
            "GC-2027-055",
            "空的源文件夹",
            "政府采购",
            "2027-03-24",
            &empty,
            "9",
            "",
        ],
        ["", "", "", "", "", "", ""],
    ]);
    let report = import(&engine, bytes.clone(), true).await.unwrap();
    let roots = format!("{}/incoming", dir.path().display());
    let expected = vec![
        error(3, "项目编号", "项目编号不能为空"),
        error(
            4,
            "开标日期",
            "开标日期「2027-02-30」无效：应为 2026-03-18 或 2026-03-18 09:30（北京时间）",
        ),
        error(
            5,
            "项目类别",
            "未知的项目类别「水利工程」，可选：工程建设、政府采购、土地使用权、矿业权、国有产权",
        ),
        error(6, "项目编号", "项目编号 GC-2027-051 与第 2 行重复"),
        error(7, "项目编号", "项目编号 GC-2027-050 已存在于目录中"),
        error(
            8,
            "源文件夹",
            &format!("源路径 {outside} 不在允许的导入目录内（[archive] source_roots：{roots}）"),
        ),
        error(8, "优先级", "优先级「12」无效：应为 0–9 的整数"),
        error(9, "源文件夹", &format!("源文件夹 {empty} 中没有文件")),
        error(9, "光盘份数", "光盘份数「9」无效：应为 0–5 的整数"),
    ];
    assert_eq!(report.errors, expected);
    assert_eq!((report.rows, report.valid_rows), (8, 1));
    assert!(report.dry_run && report.results.is_empty());
    let projects: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM projects")
        .fetch_one(&engine.pool)
        .await
        .unwrap();
    assert_eq!(projects, 1, "a dry run stores nothing");

    let report = import(&engine, bytes, false).await.unwrap();
    assert_eq!(report.errors, expected);
    assert_eq!(report.results.len(), 1);
    let job = report.results[0]
        .job
        .as_ref()
        .expect("a job for the valid row");
    assert_eq!((job.priority, job.origin.as_str()), (7, "batch"));
    let project = crate::catalog::project(&engine.pool, "GC-2027-051")
        .await
        .unwrap();
    assert_eq!(project.opening, "2027-03-18T09:30:00+08:00");
    assert_eq!(project.file_count, 1);
    let copies: (i64, i64) =
        sqlx::query_as("SELECT copies_optical, copies_disk FROM jobs WHERE id = ?")
            .bind(job.id)
            .fetch_one(&engine.pool)
            .await
            .unwrap();
    assert_eq!(copies, (2, 1));
    for number in ["GC-2027-052", "GC-2027-053", "GC-2027-054", "GC-2027-055"] {
        assert!(
            crate::catalog::project(&engine.pool, number).await.is_err(),
            "{number} was stored"
        );
    }
}

#[tokio::test]
async fn the_template_reads_back_and_its_example_row_is_checked_like_any_other() {
    let (_dir, engine, _clock) = engine_with(datetime!(2027-04-01 09:00 +8), "").await;
    let bytes = template().unwrap();
    let report = import(&engine, bytes, true).await.unwrap();
    assert_eq!(report.rows, 1);
    // The example's folder does not exist on this machine; everything else in it is valid.
    assert_eq!(report.errors.len(), 1, "{:?}", report.errors);
    assert_eq!(report.errors[0].row, 2);
    assert_eq!(report.errors[0].column, "源文件夹");
}

#[tokio::test]
async fn a_sheet_without_the_template_header_is_refused_as_a_whole() {
    let (_dir, engine, _clock) = engine_with(datetime!(2027-04-01 09:00 +8), "").await;
    let mut workbook = Workbook::new();
    let sheet = workbook.add_worksheet();
    sheet.write_string(0, 0, "编号").unwrap();
    sheet.write_string(1, 0, "X-1").unwrap();
    let error = import(&engine, workbook.save_to_buffer().unwrap(), true)
        .await
        .unwrap_err();
    assert!(
        error
            .message
            .starts_with("第 1 行缺少表头：项目编号、项目名称"),
        "{error}"
    );
    let error = import(&engine, b"not a zip".to_vec(), true)
        .await
        .unwrap_err();
    assert!(error.message.contains("不是有效的 .xlsx 工作簿"), "{error}");
}

/// kill -9 after the import's transaction committed but before its jobs were made: the rows
/// left in `batch_pending` get their job at the next tick, exactly once.
#[tokio::test]
async fn rows_stored_before_a_crash_get_their_job_once() {
    let (dir, engine, _clock) = engine_with(datetime!(2027-04-01 09:00 +8), "").await;
    crate::schedule::tests::add_project(
        &engine,
        dir.path(),
        "GC-2027-060",
        "2027-03-30T09:00:00+08:00",
    )
    .await;
    sqlx::query("INSERT INTO batch_pending (project_id, priority, copies_optical, created_at) VALUES (1, 2, NULL, '2027-04-01T09:00:00+08:00')")
        .execute(&engine.pool)
        .await
        .unwrap();
    crate::schedule::tick(&engine).await.unwrap();
    crate::schedule::tick(&engine).await.unwrap();
    let jobs: Vec<(i64, String)> = sqlx::query_as("SELECT priority, origin FROM jobs")
        .fetch_all(&engine.pool)
        .await
        .unwrap();
    assert_eq!(jobs, [(2, "batch".to_string())]);
    // The job was made but the crash came before the row was cleared: no second job.
    sqlx::query("INSERT INTO batch_pending (project_id, priority, copies_optical, created_at) VALUES (1, 2, NULL, '2027-04-01T09:00:00+08:00')")
        .execute(&engine.pool)
        .await
        .unwrap();
    let results = finish_pending(&engine, &[]).await.unwrap();
    assert_eq!(results.len(), 1);
    assert!(results[0].job.is_some());
    let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM jobs")
        .fetch_one(&engine.pool)
        .await
        .unwrap();
    let left: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM batch_pending")
        .fetch_one(&engine.pool)
        .await
        .unwrap();
    assert_eq!((count, left), (1, 0));
}

//! Search relevance, data-driven: the projects and queries of `testdata/search/fixture.toml`
//! go through the real catalog, file extraction and index; each query's first results must be
//! exactly the expected ones. Also: the index follows catalog changes within a second, a
//! restart after changes it missed rebuilds it, and FTS5 trigrams miss two-character words.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Deserialize;
use time::OffsetDateTime;
use witness_controller::search::baseline::Fts5Index;
use witness_controller::search::{sync, SearchService};
use witness_controller::{catalog, db};
use witness_schemas::api::{Category, NewProject};
use witness_schemas::search::{SearchHit, SearchQuery};

#[derive(Debug, Deserialize)]
struct Fixture {
    project: Vec<FixtureProject>,
    query: Vec<FixtureQuery>,
}

#[derive(Debug, Deserialize)]
struct FixtureProject {
    number: String,
    name: String,
    category: String,
    opening: String,
    files: Vec<FixtureFile>,
}

#[derive(Debug, Deserialize)]
struct FixtureFile {
    path: String,
    text: Option<String>,
    rows: Option<Vec<Vec<String>>>,
}

#[derive(Debug, Deserialize)]
struct FixtureQuery {
    why: String,
    q: String,
    year: Option<i32>,
    category: Option<String>,
    kind: Option<String>,
    top: Vec<String>,
    /// The expected first results tie (same kind of item, same words): any order.
    #[serde(default)]
    unordered: bool,
}

fn fixture() -> Fixture {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/search/fixture.toml");
    toml::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

fn write_file(path: &Path, file: &FixtureFile) {
    use std::io::Write;
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    if let Some(rows) = &file.rows {
        let mut workbook = rust_xlsxwriter::Workbook::new();
        let sheet = workbook.add_worksheet();
        for (r, row) in rows.iter().enumerate() {
            for (c, cell) in row.iter().enumerate() {
                sheet.write_string(r as u32, c as u16, cell).unwrap();
            }
        }
        workbook.save(path).unwrap();
        return;
    }
    let text = file.text.as_deref().unwrap_or_default();
    if file.path.ends_with(".docx") {
        let mut zip = zip::ZipWriter::new(std::fs::File::create(path).unwrap());
        zip.start_file(
            "word/document.xml",
            zip::write::SimpleFileOptions::default(),
        )
        .unwrap();
        let paragraphs: String = text
            .lines()
            .map(|l| format!("<w:p><w:r><w:t>{l}</w:t></w:r></w:p>"))
            .collect();
        write!(
            zip,
            "<w:document><w:body>{paragraphs}</w:body></w:document>"
        )
        .unwrap();
        zip.finish().unwrap();
    } else {
        std::fs::write(path, text).unwrap();
    }
}

/// A catalog in `dir/data` holding the fixture's projects and files (sources under
/// `dir/sources`, outside the data folder as the source policy wants).
async fn catalog_with(dir: &Path, projects: &[FixtureProject]) -> sqlx::SqlitePool {
    std::fs::create_dir_all(dir.join("data")).unwrap();
    let pool = db::open(&dir.join("data")).await.unwrap();
    for project in projects {
        add_project(&pool, dir, project).await;
    }
    pool
}

async fn add_project(pool: &sqlx::SqlitePool, dir: &Path, project: &FixtureProject) {
    let new = NewProject {
        number: project.number.clone(),
        name: project.name.clone(),
        category: Category::parse(&project.category).unwrap(),
        opening: project.opening.clone(),
    };
    catalog::create_project(pool, &new, OffsetDateTime::now_utc())
        .await
        .unwrap();
    let root = dir.join("sources").join(&project.number);
    for file in &project.files {
        write_file(&root.join(&file.path), file);
    }
    let mut paths: Vec<String> = std::fs::read_dir(&root)
        .unwrap()
        .map(|e| e.unwrap().path().display().to_string())
        .collect();
    paths.sort();
    // `source add` of a folder stores its files under the folder's name; the fixture's paths
    // are the contents of each top-level entry, so add the entries one by one.
    let policy = catalog::SourcePolicy {
        data_dir: dir.join("data"),
        roots: vec![dir.join("sources")],
    };
    catalog::add_sources(
        pool,
        &policy,
        &project.number,
        &paths,
        OffsetDateTime::now_utc(),
    )
    .await
    .unwrap();
}

async fn wait_current(service: &SearchService) {
    let started = Instant::now();
    while !service.is_current().await.unwrap() {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "index never caught up"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// How a hit is named in the fixture.
fn key(hit: &SearchHit) -> String {
    if hit.id.starts_with("project:") {
        return hit.id.clone();
    }
    let title: String = hit.title.iter().map(|p| p.text.as_str()).collect();
    format!("{}/{}", hit.project_number, title)
}

async fn keys(service: &SearchService, request: SearchQuery) -> Vec<String> {
    let results = service.search(request).await.unwrap();
    results.hits.iter().map(key).collect()
}

/// The index of a fresh data folder holding the whole fixture.
async fn fixture_service(
    dir: &Path,
    projects: &[FixtureProject],
) -> (sqlx::SqlitePool, Arc<SearchService>) {
    let pool = catalog_with(dir, projects).await;
    let service = SearchService::start(&pool, &dir.join("data"))
        .await
        .unwrap();
    wait_current(&service).await;
    (pool, service)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fixture_queries_rank_the_expected_items_first() {
    let dir = tempfile::tempdir().unwrap();
    let (_pool, service) = fixture_service(dir.path(), &fixture().project).await;
    let mut failures = Vec::new();
    for case in fixture().query {
        let request = SearchQuery {
            q: case.q.clone(),
            year: case.year,
            category: case.category.clone(),
            kind: case.kind.clone(),
            ..SearchQuery::default()
        };
        let results = service.search(request).await.unwrap();
        let actual: Vec<String> = results.hits.iter().map(key).collect();
        let scores: Vec<String> = results
            .hits
            .iter()
            .map(|h| format!("{:.2}", h.score))
            .collect();
        let mut head: Vec<String> = actual.iter().take(case.top.len()).cloned().collect();
        let mut expected = case.top.clone();
        if case.unordered {
            head.sort();
            expected.sort();
        }
        if head != expected {
            failures.push(format!(
                "「{}」 ({})\n  expected {:?}\n  actual   {:?}\n  scores   {:?}",
                case.q, case.why, case.top, actual, scores
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn results_carry_marks_facets_and_links() {
    let dir = tempfile::tempdir().unwrap();
    let (_pool, service) = fixture_service(dir.path(), &fixture().project).await;
    let results = service
        .search(SearchQuery {
            q: "兰考 道路".into(),
            ..SearchQuery::default()
        })
        .await
        .unwrap();
    let top = &results.hits[0];
    assert_eq!(top.project_link, "/#/projects/LKGC-2019-0521");
    let marked: Vec<&str> = top
        .title
        .iter()
        .filter(|p| p.hit)
        .map(|p| p.text.as_str())
        .collect();
    assert_eq!(marked, ["兰考", "道路"]);
    let years: Vec<(String, u64)> = results
        .facets
        .year
        .iter()
        .map(|c| (c.value.clone(), c.count))
        .collect();
    assert_eq!(
        years.iter().map(|y| y.0.as_str()).collect::<Vec<_>>(),
        ["2020", "2019"]
    );
    assert!(results
        .facets
        .kind
        .iter()
        .any(|c| c.value == "project" && c.count == 3));
    let ranged = service
        .search(SearchQuery {
            q: "兰考".into(),
            from: Some("2019-06-01".into()),
            to: Some("2019-12-31".into()),
            kind: Some("project".into()),
            ..SearchQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(
        ranged.hits.iter().map(key).collect::<Vec<_>>(),
        ["project:LKGC-2019-0902"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_index_follows_the_catalog_within_a_second_and_after_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    let mut fixture = fixture();
    let later = fixture.project.pop().unwrap();
    let (pool, service) = fixture_service(dir.path(), &fixture.project).await;
    let query = || SearchQuery {
        q: "祥符区".into(),
        kind: Some("project".into()),
        ..SearchQuery::default()
    };
    assert!(keys(&service, query()).await.is_empty());

    // A project registered while the daemon runs is found within a second.
    let started = Instant::now();
    add_project(&pool, dir.path(), &later).await;
    loop {
        if keys(&service, query()).await == ["project:KFTD-2021-0066"] {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "not indexed within a second"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    // The daemon stops; the catalog changes behind the index's back (as when the daemon died
    // between the catalog's commit and the index's); the next start sees the fingerprints differ
    // and rebuilds.
    SearchService::stop(&pool);
    drop(service);
    sqlx::query("UPDATE projects SET name = '开封市祥符区国有建设用地使用权拍卖出让' WHERE number = 'KFTD-2021-0066'")
        .execute(&pool)
        .await
        .unwrap();
    sqlx::query("UPDATE projects SET status = 'archived' WHERE number = 'KFTD-2021-0066'")
        .execute(&pool)
        .await
        .unwrap();
    let started = Instant::now();
    let service = loop {
        // The stopped service's writer lets go of the index lock as its task ends.
        match SearchService::start(&pool, &dir.path().join("data")).await {
            Ok(service) => break service,
            Err(e) if started.elapsed() < Duration::from_secs(10) => {
                let _ = e;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => panic!("restart: {e}"),
        }
    };
    wait_current(&service).await;
    let hits = keys(
        &service,
        SearchQuery {
            q: "拍卖".into(),
            kind: Some("project".into()),
            ..SearchQuery::default()
        },
    )
    .await;
    assert_eq!(hits, ["project:KFTD-2021-0066"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fts5_trigrams_miss_two_character_words_that_the_index_finds() {
    let dir = tempfile::tempdir().unwrap();
    let (pool, service) = fixture_service(dir.path(), &fixture().project).await;
    let fts = Fts5Index::create(&dir.path().join("fts5.db"))
        .await
        .unwrap();
    let version = fts.sqlite_version().await.unwrap();
    let numbers: Vec<u32> = version.split('.').map(|p| p.parse().unwrap()).collect();
    assert!(
        numbers[0] == 3 && numbers[1] >= 34,
        "trigram needs SQLite 3.34, bundled is {version}"
    );
    for id in sync::project_ids(&pool).await.unwrap() {
        let data = sync::load(&pool, id).await.unwrap().unwrap();
        fts.add(&sync::items(&data)).await.unwrap();
    }
    for word in ["监理", "医院", "沥青", "道路"] {
        assert_eq!(fts.count(word).await.unwrap(), 0, "{word}");
        let found = service
            .search(SearchQuery {
                q: word.into(),
                ..SearchQuery::default()
            })
            .await
            .unwrap();
        assert!(found.total > 0, "{word}");
    }
    // Three characters and more, trigrams do find.
    assert_eq!(fts.count("监理招").await.unwrap(), 1);
}

#[test]
fn the_fixture_names_only_files_it_has() {
    let fixture = fixture();
    let mut known: Vec<String> = Vec::new();
    for project in &fixture.project {
        known.push(format!("project:{}", project.number));
        for file in &project.files {
            known.push(format!("{}/{}", project.number, file.path));
        }
    }
    for case in &fixture.query {
        for expected in &case.top {
            assert!(known.contains(expected), "{}: unknown {expected}", case.why);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drawn_experts_are_found_by_name_never_by_id_number() {
    let dir = tempfile::tempdir().unwrap();
    let (pool, service) = fixture_service(dir.path(), &fixture().project).await;
    let id_number = "410222198001011230";
    witness_controller::gates::add_draw(
        &pool,
        "LKGC-2019-0521",
        &witness_schemas::gate::NewDraw {
            id_number: id_number.into(),
            name: "司马相如".into(),
            window_start: "2019-05-21T09:00:00+08:00".into(),
            window_end: "2019-05-21T17:30:00+08:00".into(),
        },
        "test",
        OffsetDateTime::now_utc(),
    )
    .await
    .unwrap();
    let query = |q: &str| SearchQuery {
        q: q.into(),
        kind: Some("expert".into()),
        ..SearchQuery::default()
    };
    let started = Instant::now();
    loop {
        if keys(&service, query("司马")).await == ["LKGC-2019-0521/司马相如"] {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "the draw was not indexed within a second"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let results = service.search(query("司马相如")).await.unwrap();
    let snippet: String = results.hits[0]
        .snippet
        .iter()
        .map(|p| p.text.as_str())
        .collect();
    assert!(snippet.contains("2019-05-21 09:00"), "{snippet}");
    // Neither the whole ID number nor a fragment of it finds anything, of any kind.
    for q in [id_number, "41022219800101", "1230"] {
        let hits = service
            .search(SearchQuery {
                q: q.into(),
                ..SearchQuery::default()
            })
            .await
            .unwrap();
        assert_eq!(
            hits.total,
            0,
            "{q} found {:?}",
            hits.hits.iter().map(key).collect::<Vec<_>>()
        );
    }
}

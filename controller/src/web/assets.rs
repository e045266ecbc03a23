//! The browser UI's files (`web/`), embedded into the binary: one table, one handler. The pages
//! are public; the data they show comes from the authenticated API.

use axum::http::header;
use axum::routing::get;
use axum::Router;

const HTML: &str = "text/html; charset=utf-8";
const JS: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";

/// Path, content type and content of every file of the UI.
const ASSETS: &[(&str, &str, &str)] = &[
    ("/", HTML, include_str!("../../../web/index.html")),
    ("/app.js", JS, include_str!("../../../web/app.js")),
    ("/nav.js", JS, include_str!("../../../web/nav.js")),
    ("/page.js", JS, include_str!("../../../web/page.js")),
    ("/style.css", CSS, include_str!("../../../web/style.css")),
    (
        "/schedules.js",
        JS,
        include_str!("../../../web/schedules.js"),
    ),
    (
        "/search.html",
        HTML,
        include_str!("../../../web/search.html"),
    ),
    ("/search.js", JS, include_str!("../../../web/search.js")),
    (
        "/clearing.html",
        HTML,
        include_str!("../../../web/clearing.html"),
    ),
    ("/clearing.js", JS, include_str!("../../../web/clearing.js")),
    ("/gates.html", HTML, include_str!("../../../web/gates.html")),
    ("/gates.js", JS, include_str!("../../../web/gates.js")),
    (
        "/integrations.html",
        HTML,
        include_str!("../../../web/integrations.html"),
    ),
    (
        "/integrations.js",
        JS,
        include_str!("../../../web/integrations.js"),
    ),
    ("/subject.js", JS, include_str!("../../../web/subject.js")),
    ("/video.html", HTML, include_str!("../../../web/video.html")),
    ("/video.js", JS, include_str!("../../../web/video.js")),
    ("/upload.js", JS, include_str!("../../../web/upload.js")),
    (
        "/results.html",
        HTML,
        include_str!("../../../web/results.html"),
    ),
    ("/results.js", JS, include_str!("../../../web/results.js")),
];

/// A route per file.
pub fn routes<S: Clone + Send + Sync + 'static>() -> Router<S> {
    ASSETS
        .iter()
        .fold(Router::new(), |router, &(path, content_type, body)| {
            router.route(
                path,
                get(move || async move { ([(header::CONTENT_TYPE, content_type)], body) }),
            )
        })
}

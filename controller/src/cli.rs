//! The command-line client: every subcommand but `serve` talks to the daemon's API.

use std::time::Duration;

use anyhow::{anyhow, bail, Context};
use serde::de::DeserializeOwned;
use witness_schemas::api::{
    AddSources, ApiError, Category, Disc, Job, JobStatus, NewProject, Project, SourceFile,
};

/// A client of one daemon.
pub struct Client {
    base: String,
    http: reqwest::Client,
    /// The API token sent as `Authorization: Bearer`.
    token: Option<String>,
}

impl Client {
    pub fn new(server: &str) -> Client {
        Client {
            base: server.trim_end_matches('/').to_string(),
            http: reqwest::Client::new(),
            token: None,
        }
    }

    pub fn with_token(mut self, token: Option<String>) -> Client {
        self.token = token;
        self
    }

    async fn send<T: DeserializeOwned>(
        &self,
        request: reqwest::RequestBuilder,
    ) -> anyhow::Result<T> {
        let bytes = self.bytes(request).await?;
        serde_json::from_slice(&bytes).with_context(|| {
            format!(
                "服务应答不是预期的 JSON：{}",
                String::from_utf8_lossy(&bytes)
            )
        })
    }

    /// Sends a request and returns the body of a 2xx answer; any other answer is an error
    /// carrying the API's message.
    async fn bytes(&self, request: reqwest::RequestBuilder) -> anyhow::Result<Vec<u8>> {
        let request = match &self.token {
            Some(token) => request.bearer_auth(token),
            None => request,
        };
        let response = request.send().await.map_err(|e| {
            anyhow!(
                "无法连接到 Witness 服务 {}（服务未启动？用 --server 或 WITNESS_SERVER 指定）：{e}",
                self.base
            )
        })?;
        let status = response.status();
        let bytes = response.bytes().await.context("读取服务应答")?;
        if !status.is_success() {
            if let Ok(error) = serde_json::from_slice::<ApiError>(&bytes) {
                bail!(
                    "{}（{}，HTTP {}）",
                    error.message,
                    error.kind,
                    status.as_u16()
                );
            }
            bail!(
                "服务返回 HTTP {}：{}",
                status.as_u16(),
                String::from_utf8_lossy(&bytes)
            );
        }
        Ok(bytes.to_vec())
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// GET of any API path, answered with JSON.
    pub async fn get_json<T: DeserializeOwned>(&self, path: &str) -> anyhow::Result<T> {
        self.send(self.http.get(self.url(path))).await
    }

    /// POST without a body to any API path, answered with JSON.
    pub async fn post_json<T: DeserializeOwned>(&self, path: &str) -> anyhow::Result<T> {
        self.send(self.http.post(self.url(path))).await
    }

    pub async fn add_project(&self, new: &NewProject) -> anyhow::Result<Project> {
        self.send(self.http.post(self.url("/api/projects")).json(new))
            .await
    }

    pub async fn projects(&self) -> anyhow::Result<Vec<Project>> {
        self.send(self.http.get(self.url("/api/projects"))).await
    }

    pub async fn add_sources(
        &self,
        number: &str,
        paths: Vec<String>,
    ) -> anyhow::Result<Vec<SourceFile>> {
        self.send(
            self.http
                .post(self.url(&format!("/api/projects/{}/sources", encode(number))))
                .json(&AddSources { paths }),
        )
        .await
    }

    /// Records a project's 统一交易标识码 and section (what the platforms know it by).
    pub async fn put_trade_codes(
        &self,
        number: &str,
        unified_deal_code: &str,
        bid_section_code: &str,
    ) -> anyhow::Result<witness_schemas::integration::TradeCodes> {
        self.send(
            self.http
                .put(self.url(&format!("/api/projects/{}/trade-codes", encode(number))))
                .json(&witness_schemas::integration::TradeCodes {
                    unified_deal_code: unified_deal_code.to_string(),
                    bid_section_code: bid_section_code.to_string(),
                }),
        )
        .await
    }

    pub async fn backup(&self, number: &str) -> anyhow::Result<Job> {
        self.send(
            self.http
                .post(self.url(&format!("/api/projects/{}/backup", encode(number)))),
        )
        .await
    }

    pub async fn job(&self, id: i64) -> anyhow::Result<Job> {
        self.send(self.http.get(self.url(&format!("/api/jobs/{id}"))))
            .await
    }

    pub async fn jobs(&self) -> anyhow::Result<Vec<Job>> {
        self.send(self.http.get(self.url("/api/jobs"))).await
    }

    pub async fn discs(&self) -> anyhow::Result<Vec<Disc>> {
        self.send(self.http.get(self.url("/api/discs"))).await
    }

    /// A request with a JSON body (POST, PUT…) to any API path, answered with JSON.
    pub async fn send_json<B: serde::Serialize, T: DeserializeOwned>(
        &self,
        method: reqwest::Method,
        path: &str,
        body: &B,
    ) -> anyhow::Result<T> {
        self.send(self.http.request(method, self.url(path)).json(body))
            .await
    }

    /// A request with raw bytes as its body, answered with JSON.
    pub async fn post_bytes<T: DeserializeOwned>(
        &self,
        path: &str,
        content_type: &str,
        bytes: Vec<u8>,
    ) -> anyhow::Result<T> {
        self.send(
            self.http
                .post(self.url(path))
                .header(reqwest::header::CONTENT_TYPE, content_type)
                .body(bytes),
        )
        .await
    }

    /// DELETE of any API path; success is any 2xx answer.
    pub async fn delete(&self, path: &str) -> anyhow::Result<()> {
        self.bytes(self.http.delete(self.url(path))).await.map(drop)
    }

    /// GET of a file (a template, a report): its bytes.
    pub async fn get_bytes(&self, path: &str) -> anyhow::Result<Vec<u8>> {
        self.bytes(self.http.get(self.url(path))).await
    }
}

/// Percent-encodes one path segment (project numbers may hold Chinese or `#`).
pub fn encode(segment: &str) -> String {
    let mut out = String::new();
    for byte in segment.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

pub fn parse_category(text: &str) -> anyhow::Result<Category> {
    Category::parse(text).ok_or_else(|| {
        anyhow!(
            "未知的项目类别 {text:?}；可选：{}",
            Category::ALL
                .iter()
                .map(|c| format!("{}（{}）", c.as_str(), c.label_zh()))
                .collect::<Vec<_>>()
                .join("、")
        )
    })
}

pub fn print_json<T: serde::Serialize>(value: &T) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

pub fn print_projects(projects: &[Project]) {
    println!(
        "{:<20} {:<12} {:<26} {:>6} {:>12}  名称",
        "项目编号", "类别", "开标时间", "文件", "字节"
    );
    for p in projects {
        println!(
            "{:<20} {:<12} {:<26} {:>6} {:>12}  {}",
            p.number,
            p.category.as_str(),
            p.opening,
            p.file_count,
            p.total_bytes,
            p.name
        );
    }
}

pub fn print_jobs(jobs: &[Job]) {
    println!(
        "{:>5} {:<20} {:<10} {:<8} {:>9}  消息",
        "作业", "项目编号", "状态", "步骤", "已校验"
    );
    for j in jobs {
        println!(
            "{:>5} {:<20} {:<10} {:<8} {:>4}/{:<4}  {}{}",
            j.id,
            j.project_number,
            format!("{:?}", j.status).to_lowercase(),
            j.step.as_str(),
            j.copies_verified,
            j.copies_expected,
            j.message,
            j.error
                .as_ref()
                .map(|e| format!(" — {e}"))
                .unwrap_or_default()
        );
    }
}

pub fn print_discs(discs: &[Disc]) {
    println!(
        "{:>5} {:<20} {:>5} {:<8} {:<10} {:<9}  位置",
        "编号", "项目编号", "卷", "类型", "介质", "状态"
    );
    for d in discs {
        println!(
            "{:>5} {:<20} {:>2}/{:<2} {:<8} {:<10} {:<9}  {}{}",
            d.id,
            d.project_number,
            d.set_index,
            d.set_count,
            format!("{:?}", d.kind).to_lowercase(),
            d.medium,
            format!("{:?}", d.status).to_lowercase(),
            d.location,
            d.error
                .as_ref()
                .map(|e| format!(" — {e}"))
                .unwrap_or_default()
        );
    }
}

/// Follows a job until it ends, printing progress; Ok only when every copy is verified.
pub async fn wait(client: &Client, id: i64) -> anyhow::Result<Job> {
    let mut last = String::new();
    loop {
        let job = client.job(id).await?;
        let percent = if job.total_bytes > 0 {
            job.done_bytes as f64 * 100.0 / job.total_bytes as f64
        } else {
            0.0
        };
        let line = format!(
            "作业 {} [{}] {:5.1}% {} （已校验 {}/{}）",
            job.id,
            job.step.as_str(),
            percent,
            job.message,
            job.copies_verified,
            job.copies_expected
        );
        if line != last {
            eprintln!("{line}");
            last = line;
        }
        match job.status {
            JobStatus::Succeeded if job.copies_verified >= job.copies_expected => return Ok(job),
            JobStatus::Succeeded => bail!(
                "作业 {} 结束，但只有 {}/{} 份副本通过校验",
                job.id,
                job.copies_verified,
                job.copies_expected
            ),
            JobStatus::Failed => bail!("作业 {} 失败：{}", job.id, job.error.unwrap_or_default()),
            _ => tokio::time::sleep(Duration::from_millis(500)).await,
        }
    }
}

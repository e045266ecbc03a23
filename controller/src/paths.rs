//! Validation of names that come from outside: project numbers and file paths inside a package.

use crate::bail;
use crate::error::Result;

/// Where the project's audit-log export sits inside every package's `data/`. The folder
/// `_witness` is reserved for what Witness itself adds.
pub const AUDIT_EXPORT: &str = "_witness/审计日志.csv";
const RESERVED_FOLDER: &str = "_witness";

/// Checks a relative path for a file inside a package (`data/<path>`): `/`-separated, no empty,
/// `.` or `..` segment, not absolute, no backslash or control characters, sane lengths.
/// Returns it normalised (no leading or trailing slash).
pub fn check_rel_path(path: &str) -> Result<String> {
    if path.is_empty() {
        bail!(InvalidArgument, "文件路径为空 (empty file path)");
    }
    if path.starts_with('/') {
        bail!(
            InvalidArgument,
            "文件路径不能是绝对路径: {path:?} (absolute paths are not allowed)"
        );
    }
    if path.contains('\\') {
        bail!(
            InvalidArgument,
            "文件路径不能含反斜杠: {path:?} (use / to separate folders)"
        );
    }
    if path.chars().any(char::is_control) {
        bail!(InvalidArgument, "文件路径含控制字符: {path:?}");
    }
    if path.len() > 1024 {
        bail!(
            InvalidArgument,
            "文件路径过长 ({} 字节，最多 1024)",
            path.len()
        );
    }
    if path.split('/').next() == Some(RESERVED_FOLDER) {
        bail!(
            InvalidArgument,
            "文件夹 {RESERVED_FOLDER}/ 为系统保留，不能存放项目文件: {path:?}"
        );
    }
    for segment in path.split('/') {
        match segment {
            "" => bail!(InvalidArgument, "文件路径含空的目录名: {path:?}"),
            "." | ".." => {
                bail!(
                    InvalidArgument,
                    "文件路径不能含 . 或 .. : {path:?} (path traversal is not allowed)"
                )
            }
            s if s.len() > 255 => bail!(InvalidArgument, "文件名过长 (最多 255 字节): {s:?}"),
            _ => {}
        }
    }
    Ok(path.to_string())
}

/// Checks a project number (项目编号): it names folders on disk copies, so it must be one safe
/// path segment.
pub fn check_project_number(number: &str) -> Result<()> {
    let trimmed = number.trim();
    if trimmed.is_empty() {
        bail!(
            InvalidArgument,
            "项目编号不能为空 (project number is empty)"
        );
    }
    if trimmed != number {
        bail!(InvalidArgument, "项目编号首尾不能有空格: {number:?}");
    }
    if number.chars().count() > 64 {
        bail!(InvalidArgument, "项目编号过长 (最多 64 个字符): {number:?}");
    }
    if number.starts_with('.')
        || number.contains(['/', '\\'])
        || number.chars().any(char::is_control)
    {
        bail!(
            InvalidArgument,
            "项目编号含不允许的字符 (/ \\ 开头的 . 或控制字符): {number:?}"
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn good_paths_pass() {
        assert_eq!(
            check_rel_path("投标文件/第1册 商务标.pdf").unwrap(),
            "投标文件/第1册 商务标.pdf"
        );
    }

    #[test]
    fn traversal_and_absolute_paths_are_refused() {
        for bad in [
            "_witness/x.csv",
            "../etc/passwd",
            "/etc/passwd",
            "a/../../b",
            "a//b",
            "a\\b",
            "./a",
            "",
            "a/\u{7}",
        ] {
            let err = check_rel_path(bad).unwrap_err();
            assert_eq!(
                err.kind,
                crate::error::ErrorKind::InvalidArgument,
                "{bad:?}"
            );
        }
    }

    #[test]
    fn project_numbers() {
        check_project_number("LKGC-2026-0318").unwrap();
        check_project_number("豫兰考工〔2026〕12号").unwrap();
        for bad in ["", " A", "a/b", "..", ".hidden", "a\nb"] {
            assert!(check_project_number(bad).is_err(), "{bad:?}");
        }
    }
}

//! Who may do what: roles, the one permission table, passwords, sessions and API tokens.
//! `web::guard` applies it to every request; this module knows no HTTP.

pub mod accounts;

use witness_schemas::auth::Role;

/// An authenticated caller.
#[derive(Debug, Clone)]
pub struct Principal {
    pub username: String,
    pub role: Role,
    pub via: Via,
}

/// How the caller proved who it is.
#[derive(Debug, Clone)]
pub enum Via {
    /// The browser's session cookie; state-changing requests must carry its CSRF token.
    Session {
        id_hash: String,
        csrf_token: String,
        must_change_password: bool,
    },
    /// An API token (CLI, gates, integrations).
    Token { id: i64 },
}

/// Who may call a route: nobody needs to log in for `Public`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    Public,
    /// Any logged-in caller, whatever the role.
    AnyRole,
    Roles(&'static [Role]),
}

/// One row of the permission table.
#[derive(Debug, Clone, Copy)]
pub struct Permission {
    pub method: &'static str,
    /// The route pattern exactly as the router declares it.
    pub path: &'static str,
    pub access: Access,
}

const STAFF: &[Role] = &[Role::Admin, Role::Archivist, Role::Auditor, Role::Operator];
const ARCHIVE_WRITERS: &[Role] = &[Role::Admin, Role::Archivist];
const AUDIT_READERS: &[Role] = &[Role::Admin, Role::Auditor];
const ADMIN: &[Role] = &[Role::Admin];
const GATE: &[Role] = &[Role::Gate];
const GATE_READERS: &[Role] = &[Role::Admin, Role::Archivist, Role::Auditor];

/// The permission table: every API route, and who may call it. A route missing here is refused
/// to everyone (the guard fails closed), and a test checks the table against the router.
pub const PERMISSIONS: &[Permission] = &[
    Permission {
        method: "GET",
        path: "/api/openapi.json",
        access: Access::Public,
    },
    Permission {
        method: "POST",
        path: "/api/login",
        access: Access::Public,
    },
    Permission {
        method: "POST",
        path: "/api/logout",
        access: Access::AnyRole,
    },
    Permission {
        method: "GET",
        path: "/api/session",
        access: Access::AnyRole,
    },
    Permission {
        method: "POST",
        path: "/api/account/password",
        access: Access::AnyRole,
    },
    Permission {
        method: "GET",
        path: "/api/projects",
        access: Access::Roles(STAFF),
    },
    Permission {
        method: "POST",
        path: "/api/projects",
        access: Access::Roles(ARCHIVE_WRITERS),
    },
    Permission {
        method: "GET",
        path: "/api/projects/{number}",
        access: Access::Roles(STAFF),
    },
    Permission {
        method: "POST",
        path: "/api/projects/{number}/sources",
        access: Access::Roles(ARCHIVE_WRITERS),
    },
    Permission {
        method: "PUT",
        path: "/api/projects/{number}/files/{*rel_path}",
        access: Access::Roles(ARCHIVE_WRITERS),
    },
    Permission {
        method: "POST",
        path: "/api/projects/{number}/backup",
        access: Access::Roles(ARCHIVE_WRITERS),
    },
    Permission {
        method: "GET",
        path: "/api/jobs",
        access: Access::Roles(STAFF),
    },
    Permission {
        method: "GET",
        path: "/api/jobs/{id}",
        access: Access::Roles(STAFF),
    },
    Permission {
        method: "GET",
        path: "/api/discs",
        access: Access::Roles(STAFF),
    },
    // Disc faces (盘面): every staff role may look at them; printing one is archive work.
    Permission {
        method: "GET",
        path: "/api/projects/{number}/label-preview",
        access: Access::Roles(STAFF),
    },
    Permission {
        method: "GET",
        path: "/api/discs/{id}/label",
        access: Access::Roles(STAFF),
    },
    Permission {
        method: "POST",
        path: "/api/discs/{id}/print",
        access: Access::Roles(ARCHIVE_WRITERS),
    },
    Permission {
        method: "GET",
        path: "/api/printers",
        access: Access::Roles(STAFF),
    },
    Permission {
        method: "GET",
        path: "/api/drives",
        access: Access::Roles(STAFF),
    },
    Permission {
        method: "GET",
        path: "/api/drives/{name}/events",
        access: Access::Roles(STAFF),
    },
    // Only an administrator decides that a drive which kept failing discs may burn again.
    Permission {
        method: "POST",
        path: "/api/drives/{name}/return-to-service",
        access: Access::Roles(ADMIN),
    },
    Permission {
        method: "GET",
        path: "/api/alerts",
        access: Access::Roles(STAFF),
    },
    Permission {
        method: "GET",
        path: "/api/autoloader",
        access: Access::Roles(STAFF),
    },
    Permission {
        method: "POST",
        path: "/api/autoloader/clear-jam",
        access: Access::Roles(ADMIN),
    },
    // Clearing (清标): a stateless run on JSON bills, a run on a project's uploaded files that
    // stores its reports in the project, and the download of those reports.
    Permission {
        method: "POST",
        path: "/api/clearing/run",
        access: Access::Roles(STAFF),
    },
    Permission {
        method: "POST",
        path: "/api/projects/{number}/clearing",
        access: Access::Roles(ARCHIVE_WRITERS),
    },
    Permission {
        method: "GET",
        path: "/api/projects/{number}/clearing/reports/{file}",
        access: Access::Roles(STAFF),
    },
    // Search (搜索): every staff role may search (auditors included, read-only); rebuilding
    // the index is archive work.
    Permission {
        method: "GET",
        path: "/api/search",
        access: Access::Roles(STAFF),
    },
    Permission {
        method: "POST",
        path: "/api/search/reindex",
        access: Access::Roles(ARCHIVE_WRITERS),
    },
    Permission {
        method: "GET",
        path: "/api/users",
        access: Access::Roles(ADMIN),
    },
    Permission {
        method: "POST",
        path: "/api/users",
        access: Access::Roles(ADMIN),
    },
    Permission {
        method: "GET",
        path: "/api/tokens",
        access: Access::Roles(ADMIN),
    },
    Permission {
        method: "POST",
        path: "/api/tokens",
        access: Access::Roles(ADMIN),
    },
    Permission {
        method: "DELETE",
        path: "/api/tokens/{id}",
        access: Access::Roles(ADMIN),
    },
    Permission {
        method: "GET",
        path: "/api/audit",
        access: Access::Roles(AUDIT_READERS),
    },
    Permission {
        method: "GET",
        path: "/api/audit/verify",
        access: Access::Roles(AUDIT_READERS),
    },
    // Gates (门禁): a gate token fetches its list and syncs its events; draws and the registry
    // are kept by admins and archivists; auditors read. Full ID numbers: see gates::web.
    Permission {
        method: "GET",
        path: "/api/gate/list",
        access: Access::Roles(GATE),
    },
    Permission {
        method: "POST",
        path: "/api/gate/events",
        access: Access::Roles(GATE),
    },
    Permission {
        method: "GET",
        path: "/api/gates",
        access: Access::Roles(GATE_READERS),
    },
    Permission {
        method: "POST",
        path: "/api/gates",
        access: Access::Roles(ARCHIVE_WRITERS),
    },
    Permission {
        method: "GET",
        path: "/api/projects/{number}/draws",
        access: Access::Roles(GATE_READERS),
    },
    Permission {
        method: "POST",
        path: "/api/projects/{number}/draws",
        access: Access::Roles(ARCHIVE_WRITERS),
    },
    Permission {
        method: "GET",
        path: "/api/projects/{number}/gate-events",
        access: Access::Roles(GATE_READERS),
    },
    Permission {
        method: "GET",
        path: "/api/gate-events/{id}/snapshot",
        access: Access::Roles(GATE_READERS),
    },
    // Integrations (对接, issue 9): staff who keep the archive read the queues and reports and
    // record trade codes and evaluation results; only admins retry messages by hand.
    Permission {
        method: "GET",
        path: "/api/integrations",
        access: Access::Roles(GATE_READERS),
    },
    Permission {
        method: "GET",
        path: "/api/integrations/{target}/messages",
        access: Access::Roles(GATE_READERS),
    },
    Permission {
        method: "POST",
        path: "/api/integrations/messages/{id}/retry",
        access: Access::Roles(ADMIN),
    },
    Permission {
        method: "POST",
        path: "/api/integrations/{target}/draw-requests",
        access: Access::Roles(ARCHIVE_WRITERS),
    },
    // The supervision platform's data sets and the finance bureau's stages: listed for the
    // readers; a project's data set is extracted again by those who correct the data.
    Permission {
        method: "GET",
        path: "/api/integrations/{target}/data-sets",
        access: Access::Roles(GATE_READERS),
    },
    Permission {
        method: "POST",
        path: "/api/integrations/{target}/extractions",
        access: Access::Roles(ARCHIVE_WRITERS),
    },
    Permission {
        method: "GET",
        path: "/api/integrations/{target}/reports",
        access: Access::Roles(GATE_READERS),
    },
    Permission {
        method: "GET",
        path: "/api/integrations/{target}/reports/{day}",
        access: Access::Roles(GATE_READERS),
    },
    Permission {
        method: "POST",
        path: "/api/integrations/{target}/reports/{day}",
        access: Access::Roles(ARCHIVE_WRITERS),
    },
    Permission {
        method: "GET",
        path: "/api/projects/{number}/trade-codes",
        access: Access::Roles(GATE_READERS),
    },
    Permission {
        method: "PUT",
        path: "/api/projects/{number}/trade-codes",
        access: Access::Roles(ARCHIVE_WRITERS),
    },
    Permission {
        method: "POST",
        path: "/api/projects/{number}/evaluation-records",
        access: Access::Roles(ARCHIVE_WRITERS),
    },
    // The market-subject library (主体库): archivists and admins record subject facts for it;
    // the staff who read the integrations ask it about subjects and scan their QR codes.
    Permission {
        method: "POST",
        path: "/api/integrations/market_subject_library/records",
        access: Access::Roles(ARCHIVE_WRITERS),
    },
    Permission {
        method: "GET",
        path: "/api/integrations/market_subject_library/records",
        access: Access::Roles(GATE_READERS),
    },
    Permission {
        method: "GET",
        path: "/api/integrations/market_subject_library/legal-persons/{code}",
        access: Access::Roles(GATE_READERS),
    },
    Permission {
        method: "GET",
        path: "/api/integrations/market_subject_library/legal-persons/{code}/qr",
        access: Access::Roles(GATE_READERS),
    },
    Permission {
        method: "POST",
        path: "/api/integrations/market_subject_library/qr-scans",
        access: Access::Roles(GATE_READERS),
    },
    // SMS notices (短信通知) to a project's registered bidders.
    Permission {
        method: "GET",
        path: "/api/projects/{number}/bidders",
        access: Access::Roles(GATE_READERS),
    },
    Permission {
        method: "POST",
        path: "/api/projects/{number}/bidders",
        access: Access::Roles(ARCHIVE_WRITERS),
    },
    Permission {
        method: "POST",
        path: "/api/projects/{number}/sms-notices",
        access: Access::Roles(ARCHIVE_WRITERS),
    },
    // SMS delivery reports: read like the queues; a resend after a failed report is a new
    // message, so only admins (as for manual retries).
    Permission {
        method: "GET",
        path: "/api/integrations/sms/deliveries",
        access: Access::Roles(GATE_READERS),
    },
    Permission {
        method: "POST",
        path: "/api/integrations/sms/messages/{id}/resend",
        access: Access::Roles(ADMIN),
    },
    // Schedules, batch import, select-and-burn and re-inspection: archivists and admins act
    // (a batch import or a schedule makes jobs like 一键备份); every staff role reads.
    Permission {
        method: "GET",
        path: "/api/schedules",
        access: Access::Roles(STAFF),
    },
    Permission {
        method: "POST",
        path: "/api/schedules",
        access: Access::Roles(ARCHIVE_WRITERS),
    },
    Permission {
        method: "GET",
        path: "/api/schedules/{id}",
        access: Access::Roles(STAFF),
    },
    Permission {
        method: "PUT",
        path: "/api/schedules/{id}",
        access: Access::Roles(ARCHIVE_WRITERS),
    },
    Permission {
        method: "DELETE",
        path: "/api/schedules/{id}",
        access: Access::Roles(ARCHIVE_WRITERS),
    },
    Permission {
        method: "GET",
        path: "/api/schedules/{id}/runs",
        access: Access::Roles(STAFF),
    },
    Permission {
        method: "POST",
        path: "/api/backups",
        access: Access::Roles(ARCHIVE_WRITERS),
    },
    Permission {
        method: "GET",
        path: "/api/batch/template.xlsx",
        access: Access::Roles(STAFF),
    },
    Permission {
        method: "POST",
        path: "/api/batch/import",
        access: Access::Roles(ARCHIVE_WRITERS),
    },
    Permission {
        method: "PUT",
        path: "/api/discs/{id}/shelf",
        access: Access::Roles(ARCHIVE_WRITERS),
    },
    Permission {
        method: "POST",
        path: "/api/discs/{id}/inspect",
        access: Access::Roles(ARCHIVE_WRITERS),
    },
    Permission {
        method: "GET",
        path: "/api/inspections",
        access: Access::Roles(STAFF),
    },
    Permission {
        method: "GET",
        path: "/api/inspections/due",
        access: Access::Roles(STAFF),
    },
    // Evaluation video (issue 4): staff watch, archivists map rooms and pull.
    Permission {
        method: "GET",
        path: "/api/projects/{number}/video/channels",
        access: Access::Roles(STAFF),
    },
    Permission {
        method: "PUT",
        path: "/api/projects/{number}/video/channels",
        access: Access::Roles(ARCHIVE_WRITERS),
    },
    Permission {
        method: "GET",
        path: "/api/projects/{number}/video/pulls",
        access: Access::Roles(STAFF),
    },
    Permission {
        method: "POST",
        path: "/api/projects/{number}/video/pulls",
        access: Access::Roles(ARCHIVE_WRITERS),
    },
    Permission {
        method: "GET",
        path: "/api/video/pulls/{id}/file",
        access: Access::Roles(STAFF),
    },
    Permission {
        method: "GET",
        path: "/api/video/nvrs",
        access: Access::Roles(STAFF),
    },
    Permission {
        method: "GET",
        path: "/api/projects/{number}/recordings/uploads",
        access: Access::Roles(STAFF),
    },
    Permission {
        method: "POST",
        path: "/api/projects/{number}/recordings/uploads",
        access: Access::Roles(ARCHIVE_WRITERS),
    },
    Permission {
        method: "GET",
        path: "/api/recordings/uploads/{id}",
        access: Access::Roles(STAFF),
    },
    Permission {
        method: "PUT",
        path: "/api/recordings/uploads/{id}",
        access: Access::Roles(ARCHIVE_WRITERS),
    },
    // The catch-all that answers 404 for unknown API paths.
    Permission {
        method: "GET",
        path: "/api/{*rest}",
        access: Access::Public,
    },
    Permission {
        method: "POST",
        path: "/api/{*rest}",
        access: Access::Public,
    },
    Permission {
        method: "PUT",
        path: "/api/{*rest}",
        access: Access::Public,
    },
    Permission {
        method: "DELETE",
        path: "/api/{*rest}",
        access: Access::Public,
    },
];

/// Looks a route up in the table.
pub fn permission(method: &str, path: &str) -> Option<&'static Permission> {
    PERMISSIONS
        .iter()
        .find(|p| p.method == method && p.path == path)
}

impl Access {
    pub fn allows(&self, role: Role) -> bool {
        match self {
            Access::Public | Access::AnyRole => true,
            Access::Roles(roles) => roles.contains(&role),
        }
    }
}

/// Masks an 18-character resident ID number (PIPL): region and check digit stay, the birth date
/// and sequence do not (`410225********123X`).
pub fn mask_id_number(id: &str) -> String {
    // One rule for the controller and the gate agent, kept in schemas where both can use it.
    witness_schemas::gate::mask_id_number(id)
}

/// Masks every full resident ID number standing alone in free text (a log line, a file name):
/// 17 digits and a digit or `X`, not part of a longer run of digits.
pub fn mask_id_numbers_in(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < chars.len() {
        let is_id = i + 18 <= chars.len()
            && (i == 0 || !chars[i - 1].is_ascii_digit())
            && chars[i..i + 17].iter().all(char::is_ascii_digit)
            && (chars[i + 17].is_ascii_digit() || chars[i + 17] == 'X' || chars[i + 17] == 'x')
            && !matches!(chars.get(i + 18), Some(c) if c.is_ascii_digit());
        if is_id {
            out.push_str(&mask_id_number(
                &chars[i..i + 18].iter().collect::<String>(),
            ));
            i += 18;
        } else {
            out.push(chars[i]);
            i += 1;
        }
    }
    out
}

/// Masks a mobile number: `138****5678`.
pub fn mask_phone(phone: &str) -> String {
    let chars: Vec<char> = phone.chars().collect();
    if chars.len() < 7 {
        return "*".repeat(chars.len());
    }
    let head: String = chars[..3].iter().collect();
    let tail: String = chars[chars.len() - 4..].iter().collect();
    format!("{head}{}{tail}", "*".repeat(chars.len() - 7))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_has_no_duplicate_routes() {
        for (i, a) in PERMISSIONS.iter().enumerate() {
            for b in &PERMISSIONS[i + 1..] {
                assert!(
                    !(a.method == b.method && a.path == b.path),
                    "{} {} twice",
                    a.method,
                    a.path
                );
            }
        }
    }

    #[test]
    fn personal_data_is_masked() {
        assert_eq!(mask_id_number("41022519800101123X"), "410225********123X");
        assert_eq!(mask_phone("13812345678"), "138****5678");
        assert_eq!(
            mask_id_numbers_in("path=专家/41022519800101123X.txt size=1234567890123456789"),
            "path=专家/410225********123X.txt size=1234567890123456789"
        );
    }
}

//! JSON bodies of the accounts, tokens, session and audit-log API.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// What a caller may do; one permission table in the controller maps routes to roles.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// 系统管理员: devices, users, tokens, integrations.
    Admin,
    /// 档案管理员: projects, backups, schedules, batches, disc locations.
    Archivist,
    /// 监管/审计: read-only search, replay, the audit log, reports.
    Auditor,
    /// 清标操作员: the clearing engine.
    Operator,
    /// A gate agent (machine identity).
    Gate,
    /// A provincial platform integration (machine identity).
    Integration,
}

impl Role {
    pub const ALL: [Role; 6] = [
        Role::Admin,
        Role::Archivist,
        Role::Auditor,
        Role::Operator,
        Role::Gate,
        Role::Integration,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Archivist => "archivist",
            Role::Auditor => "auditor",
            Role::Operator => "operator",
            Role::Gate => "gate",
            Role::Integration => "integration",
        }
    }

    pub fn label_zh(self) -> &'static str {
        match self {
            Role::Admin => "系统管理员",
            Role::Archivist => "档案管理员",
            Role::Auditor => "监管审计",
            Role::Operator => "清标操作员",
            Role::Gate => "门禁代理",
            Role::Integration => "平台对接",
        }
    }

    pub fn parse(text: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == text)
    }

    /// Machine identities authenticate with tokens only, never with a password.
    pub fn is_machine(self) -> bool {
        matches!(self, Role::Gate | Role::Integration)
    }
}

/// Body of `POST /api/login`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct LoginRequest {
    pub username: String,
    pub password: String,
}

/// Who is calling; `GET /api/session` and the answer to a login.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SessionInfo {
    pub username: String,
    pub role: Role,
    /// Send it back as the `X-CSRF-Token` header on every state-changing request made with the
    /// session cookie. Absent for token callers.
    pub csrf_token: Option<String>,
    pub expires_at: Option<String>,
    /// The first admin must replace the one-time password before doing anything else.
    pub must_change_password: bool,
}

/// Body of `POST /api/account/password`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ChangePassword {
    pub old_password: String,
    pub new_password: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct User {
    pub id: i64,
    pub username: String,
    pub role: Role,
    pub locked_until: Option<String>,
    pub disabled: bool,
    pub created_at: String,
}

/// Body of `POST /api/users`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct NewUser {
    pub username: String,
    pub role: Role,
    pub password: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ApiToken {
    pub id: i64,
    pub name: String,
    pub role: Role,
    /// The first characters of the token, to recognise it; the token itself is never shown again.
    pub prefix: String,
    pub created_by: String,
    pub created_at: String,
    pub revoked_at: Option<String>,
    pub last_used_at: Option<String>,
}

/// Body of `POST /api/tokens`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct NewToken {
    pub name: String,
    pub role: Role,
}

/// The answer to `POST /api/tokens`: the only time the secret is shown.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CreatedToken {
    pub token: ApiToken,
    pub secret: String,
}

/// One record of the audit log.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AuditEntry {
    pub id: i64,
    pub at: String,
    pub actor: String,
    pub role: String,
    pub action: String,
    pub target: String,
    pub project_number: Option<String>,
    pub source: String,
    pub result: String,
    pub prev_hash: String,
    pub hash: String,
}

/// The result of checking the audit chain.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AuditVerification {
    pub records: i64,
    /// The id of the first record whose hash does not match, if any.
    pub first_broken: Option<i64>,
    pub message: String,
}

//! Profiles of the two files Alibaba Cloud's tools keep credentials in:
//!
//! * the CLI's `~/.aliyun/config.json` (`aliyun configure`): `{"current": …, "profiles": [{
//!   "name", "mode", …}]}` with the modes `AK`, `StsToken`, `RamRoleArn`, `EcsRamRole`, `OIDC`
//!   and `ChainableRamRoleArn` (other modes, e.g. `CloudSSO` or `External`, are refused by
//!   name);
//! * the SDKs' INI credentials file, `~/.alibabacloud/credentials` or
//!   `ALIBABA_CLOUD_CREDENTIALS_FILE`: one section per profile with a `type` of `access_key`,
//!   `sts`, `ram_role_arn`, `ecs_ram_role` or `oidc_role_arn`.
//!
//! Field names are the ones of "Manage access credentials" of the Python SDK V2
//! (<https://alibabacloud.com/help/en/sdk/developer-reference/v2-manage-python-access-credentials>)
//! and of the CLI's "Configure credentials". Errors name the file, the profile and the field,
//! never a value.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::{Credentials, sts::DEFAULT_DURATION_SECONDS};
use crate::eci::Error;

/// How deep `ChainableRamRoleArn` may chain `source_profile`s (a loop ends here).
const MAX_CHAIN: usize = 5;

/// Which of the two formats a file is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Format {
    /// The CLI's `config.json`.
    CliJson,
    /// The SDKs' INI file.
    Ini,
}

/// A profile of a file.
#[derive(Debug, Clone)]
pub(crate) struct ProfileRef {
    pub path: PathBuf,
    /// The profile's name; for the CLI file, `None` means its `current` profile.
    pub name: Option<String>,
    pub format: Format,
}

/// A role to assume, as a profile names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RoleSpec {
    pub role_arn: String,
    pub session_name: Option<String>,
    pub external_id: Option<String>,
    pub duration_seconds: u32,
}

/// What a profile says the credentials are.
#[derive(Debug, Clone)]
pub(crate) enum ProfileCredentials {
    /// An AccessKey pair, with an STS token for `sts`/`StsToken`.
    Static(Credentials),
    /// `ram_role_arn` / `RamRoleArn` / `ChainableRamRoleArn`: assume `role` with `base`.
    AssumeRole {
        base: Box<ProfileCredentials>,
        role: RoleSpec,
    },
    /// `ecs_ram_role` / `EcsRamRole`.
    EcsRole { role_name: Option<String> },
    /// `oidc_role_arn` / `OIDC`.
    Oidc {
        role_arn: String,
        provider_arn: String,
        token_file: PathBuf,
        session_name: Option<String>,
    },
}

impl ProfileRef {
    /// A short name for logs: `profile 'default' of /root/.aliyun/config.json`.
    pub(crate) fn describe(&self) -> String {
        let name = self
            .name
            .as_deref()
            .or((self.format == Format::Ini).then_some("default"));
        match name {
            Some(name) => format!("profile '{name}' of {}", self.path.display()),
            None => format!("current profile of {}", self.path.display()),
        }
    }

    /// Reads and interprets the profile.
    pub(crate) fn load(&self) -> Result<ProfileCredentials, Error> {
        let text =
            std::fs::read_to_string(&self.path).map_err(|source| Error::CredentialsFile {
                path: self.path.clone(),
                source,
            })?;
        match self.format {
            Format::CliJson => cli_profile(&text, &self.path, self.name.as_deref(), 0),
            Format::Ini => {
                ini_profile(&text, &self.path, self.name.as_deref().unwrap_or("default"))
            }
        }
    }

    /// Reads the profile again, which must still hold an AccessKey (re-read for rotation).
    pub(crate) fn read_static(&self) -> Result<Credentials, Error> {
        match self.load()? {
            ProfileCredentials::Static(credentials) => Ok(credentials),
            _ => Err(Error::CredentialsConfig(format!(
                "{} no longer holds an AccessKey; restart the node to use its new mode",
                self.describe()
            ))),
        }
    }
}

fn config_error(path: &Path, profile: &str, what: impl std::fmt::Display) -> Error {
    Error::CredentialsConfig(format!("profile '{profile}' of {}: {what}", path.display()))
}

// === the CLI's config.json ===

#[derive(Deserialize)]
struct CliConfig {
    #[serde(default)]
    current: String,
    #[serde(default)]
    profiles: Vec<CliProfile>,
}

/// One profile of `config.json`. Not `Debug`: it holds secrets.
#[derive(Deserialize, Default)]
#[serde(default)]
struct CliProfile {
    name: String,
    mode: String,
    access_key_id: String,
    access_key_secret: String,
    sts_token: String,
    ram_role_name: String,
    ram_role_arn: String,
    ram_session_name: String,
    source_profile: String,
    oidc_provider_arn: String,
    oidc_token_file: String,
    external_id: String,
    expired_seconds: u32,
}

fn cli_profile(
    text: &str,
    path: &Path,
    name: Option<&str>,
    depth: usize,
) -> Result<ProfileCredentials, Error> {
    let config: CliConfig = serde_json::from_str(text).map_err(|e| {
        Error::CredentialsConfig(format!(
            "{} is not the CLI's config.json: {:?} error at line {}",
            path.display(),
            e.classify(),
            e.line()
        ))
    })?;
    let name = match name {
        Some(name) => name.to_owned(),
        None if !config.current.is_empty() => config.current.clone(),
        None => "default".to_owned(),
    };
    let profile = config
        .profiles
        .iter()
        .find(|p| p.name == name)
        .ok_or_else(|| config_error(path, &name, "no such profile"))?;
    let required = |field: &'static str, value: &str| {
        (!value.trim().is_empty())
            .then(|| value.trim().to_owned())
            .ok_or_else(|| config_error(path, &name, format!("{field} is not set")))
    };
    let optional = |value: &str| (!value.trim().is_empty()).then(|| value.trim().to_owned());
    let access_key = || {
        Ok::<_, Error>(Credentials::new(
            required("access_key_id", &profile.access_key_id)?,
            required("access_key_secret", &profile.access_key_secret)?,
            None,
        ))
    };
    let role = || {
        Ok::<_, Error>(RoleSpec {
            role_arn: required("ram_role_arn", &profile.ram_role_arn)?,
            session_name: optional(&profile.ram_session_name),
            external_id: optional(&profile.external_id),
            duration_seconds: match profile.expired_seconds {
                0 => DEFAULT_DURATION_SECONDS,
                s => s,
            },
        })
    };
    match profile.mode.as_str() {
        "" | "AK" => Ok(ProfileCredentials::Static(access_key()?)),
        "StsToken" => Ok(ProfileCredentials::Static(Credentials::new(
            required("access_key_id", &profile.access_key_id)?,
            required("access_key_secret", &profile.access_key_secret)?,
            Some(required("sts_token", &profile.sts_token)?),
        ))),
        "RamRoleArn" => Ok(ProfileCredentials::AssumeRole {
            base: Box::new(ProfileCredentials::Static(access_key()?)),
            role: role()?,
        }),
        "ChainableRamRoleArn" => {
            if depth >= MAX_CHAIN {
                return Err(config_error(
                    path,
                    &name,
                    format!("source_profile chains more than {MAX_CHAIN} profiles"),
                ));
            }
            let source = required("source_profile", &profile.source_profile)?;
            let base = cli_profile(text, path, Some(&source), depth + 1)?;
            Ok(ProfileCredentials::AssumeRole {
                base: Box::new(base),
                role: role()?,
            })
        }
        "EcsRamRole" => Ok(ProfileCredentials::EcsRole {
            role_name: optional(&profile.ram_role_name),
        }),
        "OIDC" => Ok(ProfileCredentials::Oidc {
            role_arn: required("ram_role_arn", &profile.ram_role_arn)?,
            provider_arn: required("oidc_provider_arn", &profile.oidc_provider_arn)?,
            token_file: required("oidc_token_file", &profile.oidc_token_file)?.into(),
            session_name: optional(&profile.ram_session_name),
        }),
        other => Err(config_error(
            path,
            &name,
            format!(
                "mode {other:?} is not supported here (AK, StsToken, RamRoleArn, ChainableRamRoleArn, EcsRamRole and OIDC are)"
            ),
        )),
    }
}

// === the SDKs' INI file ===

fn ini_profile(text: &str, path: &Path, name: &str) -> Result<ProfileCredentials, Error> {
    let ini = ini::Ini::load_from_str(text).map_err(|e| {
        Error::CredentialsConfig(format!(
            "{} is not an INI credentials file (line {}, column {})",
            path.display(),
            e.line,
            e.col
        ))
    })?;
    let section = ini
        .section(Some(name))
        .ok_or_else(|| config_error(path, name, "no such profile"))?;
    let get = |key: &str| {
        section
            .get(key)
            .map(|v| v.trim().trim_matches('"').to_owned())
            .filter(|v| !v.is_empty())
    };
    let required = |key: &'static str| {
        get(key).ok_or_else(|| config_error(path, name, format!("{key} is not set")))
    };
    if get("enable").is_some_and(|v| v.eq_ignore_ascii_case("false")) {
        return Err(config_error(path, name, "the profile has enable = false"));
    }
    let access_key = || {
        Ok::<_, Error>(Credentials::new(
            required("access_key_id")?,
            required("access_key_secret")?,
            None,
        ))
    };
    let kind = get("type").unwrap_or_else(|| "access_key".to_owned());
    match kind.as_str() {
        "access_key" => Ok(ProfileCredentials::Static(access_key()?)),
        "sts" => Ok(ProfileCredentials::Static(Credentials::new(
            required("access_key_id")?,
            required("access_key_secret")?,
            Some(required("security_token")?),
        ))),
        "ram_role_arn" => Ok(ProfileCredentials::AssumeRole {
            base: Box::new(ProfileCredentials::Static(access_key()?)),
            role: RoleSpec {
                role_arn: required("role_arn")?,
                session_name: get("role_session_name"),
                external_id: get("external_id"),
                duration_seconds: DEFAULT_DURATION_SECONDS,
            },
        }),
        "ecs_ram_role" => Ok(ProfileCredentials::EcsRole {
            role_name: get("role_name"),
        }),
        "oidc_role_arn" => Ok(ProfileCredentials::Oidc {
            role_arn: required("role_arn")?,
            provider_arn: required("oidc_provider_arn")?,
            token_file: required("oidc_token_file_path")?.into(),
            session_name: get("role_session_name"),
        }),
        other => Err(config_error(
            path,
            name,
            format!(
                "type {other:?} is not supported here (access_key, sts, ram_role_arn, ecs_ram_role and oidc_role_arn are)"
            ),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cli(text: &str, name: Option<&str>) -> Result<ProfileCredentials, Error> {
        cli_profile(text, Path::new("/x/config.json"), name, 0)
    }

    const CLI: &str = r#"{
      "current": "dev",
      "profiles": [
        {"name": "dev", "mode": "AK", "access_key_id": "LTAIdev", "access_key_secret": "dev-secret", "region_id": "cn-hangzhou"},
        {"name": "sts", "mode": "StsToken", "access_key_id": "STS.a", "access_key_secret": "s", "sts_token": "tok"},
        {"name": "role", "mode": "RamRoleArn", "access_key_id": "LTAIr", "access_key_secret": "rs", "ram_role_arn": "acs:ram::1:role/r", "ram_session_name": "me", "expired_seconds": 900},
        {"name": "chain", "mode": "ChainableRamRoleArn", "source_profile": "role", "ram_role_arn": "acs:ram::1:role/second"},
        {"name": "loop", "mode": "ChainableRamRoleArn", "source_profile": "loop", "ram_role_arn": "acs:ram::1:role/l"},
        {"name": "ecs", "mode": "EcsRamRole", "ram_role_name": "worker"},
        {"name": "rrsa", "mode": "OIDC", "ram_role_arn": "acs:ram::1:role/o", "oidc_provider_arn": "acs:ram::1:oidc-provider/p", "oidc_token_file": "/var/run/t"},
        {"name": "sso", "mode": "CloudSSO"},
        {"name": "half", "mode": "AK", "access_key_id": "LTAIhalf", "access_key_secret": "half-secret-value"}
      ]
    }"#;

    #[test]
    fn cli_profiles_by_mode() {
        let ProfileCredentials::Static(c) = cli(CLI, None).expect("current") else {
            panic!("AK is static")
        };
        assert_eq!(c.access_key_id(), "LTAIdev");
        let ProfileCredentials::Static(c) = cli(CLI, Some("sts")).expect("sts") else {
            panic!("StsToken is static")
        };
        assert_eq!(c.security_token(), Some("tok"));
        let ProfileCredentials::AssumeRole { role, .. } = cli(CLI, Some("role")).expect("role")
        else {
            panic!("RamRoleArn assumes a role")
        };
        assert_eq!(role.role_arn, "acs:ram::1:role/r");
        assert_eq!(role.session_name.as_deref(), Some("me"));
        assert_eq!(role.duration_seconds, 900);
        let ProfileCredentials::AssumeRole { base, role } = cli(CLI, Some("chain")).expect("chain")
        else {
            panic!("chainable")
        };
        assert_eq!(role.role_arn, "acs:ram::1:role/second");
        assert!(matches!(*base, ProfileCredentials::AssumeRole { .. }));
        assert!(matches!(
            cli(CLI, Some("ecs")).expect("ecs"),
            ProfileCredentials::EcsRole { role_name: Some(r) } if r == "worker"
        ));
        assert!(matches!(
            cli(CLI, Some("rrsa")).expect("oidc"),
            ProfileCredentials::Oidc { .. }
        ));
    }

    #[test]
    fn cli_errors_name_the_profile_and_field_never_a_value() {
        for (name, expected) in [
            ("nope", "no such profile"),
            ("sso", "CloudSSO"),
            ("loop", "chains more than"),
        ] {
            let err = cli(CLI, Some(name)).expect_err(name).to_string();
            assert!(err.contains(expected) && err.contains(name), "{err}");
        }
        let text = CLI.replace(
            r#""access_key_secret": "half-secret-value""#,
            r#""access_key_secret": """#,
        );
        let err = cli(&text, Some("half")).expect_err("half").to_string();
        assert!(err.contains("access_key_secret is not set"), "{err}");
        let err = cli("{not json", None).expect_err("json").to_string();
        assert!(err.contains("config.json"), "{err}");
    }

    const INI: &str = "
[default]
type = access_key
access_key_id = LTAIini
access_key_secret = ini-secret

[sts]
type = sts
access_key_id = STS.x
access_key_secret = s
security_token = t

[role]
type = ram_role_arn
access_key_id = LTAIr
access_key_secret = rs
role_arn = acs:ram::1:role/r
role_session_name = node

[ecs]
type = ecs_ram_role
role_name = worker

[oidc]
type = oidc_role_arn
role_arn = acs:ram::1:role/o
oidc_provider_arn = acs:ram::1:oidc-provider/p
oidc_token_file_path = /var/run/t

[bearer]
type = bearer
bearer_token = b

[partial]
type = sts
access_key_id = STS.y
access_key_secret = sts-secret-value
";

    fn ini(name: &str) -> Result<ProfileCredentials, Error> {
        ini_profile(INI, Path::new("/x/credentials"), name)
    }

    #[test]
    fn ini_profiles_by_type() {
        let ProfileCredentials::Static(c) = ini("default").expect("default") else {
            panic!("access_key is static")
        };
        assert_eq!((c.access_key_id(), c.secret()), ("LTAIini", "ini-secret"));
        let ProfileCredentials::Static(c) = ini("sts").expect("sts") else {
            panic!("sts is static")
        };
        assert_eq!(c.security_token(), Some("t"));
        assert!(
            matches!(ini("role").expect("role"), ProfileCredentials::AssumeRole { role, .. } if role.session_name.as_deref() == Some("node"))
        );
        assert!(
            matches!(ini("ecs").expect("ecs"), ProfileCredentials::EcsRole { role_name: Some(r) } if r == "worker")
        );
        assert!(
            matches!(ini("oidc").expect("oidc"), ProfileCredentials::Oidc { token_file, .. } if token_file == Path::new("/var/run/t"))
        );
        let err = ini("bearer").expect_err("bearer").to_string();
        assert!(err.contains("\"bearer\" is not supported"), "{err}");
        let err = ini("partial").expect_err("partial").to_string();
        assert!(err.contains("security_token is not set"), "{err}");
        assert!(!err.contains("sts-secret-value"), "{err}");
        assert!(ini("missing").is_err());
    }
}

//! The default credential chain: where the node finds its credentials when none are given
//! explicitly, in the order of Alibaba Cloud's credentials SDKs ("Manage access credentials",
//! default credential chain, Python SDK V2:
//! <https://alibabacloud.com/help/en/sdk/developer-reference/v2-manage-python-access-credentials>):
//!
//! 0. a mounted Secret directory, when `--credentials-dir` names one (this node's addition);
//! 1. the environment: `ALIBABA_CLOUD_ACCESS_KEY_ID` + `_SECRET` (+ `ALIBABA_CLOUD_SECURITY_TOKEN`);
//! 2. RRSA: `ALIBABA_CLOUD_ROLE_ARN` + `ALIBABA_CLOUD_OIDC_PROVIDER_ARN` +
//!    `ALIBABA_CLOUD_OIDC_TOKEN_FILE` (all three, or it is an error naming the missing ones);
//! 3. the CLI's `~/.aliyun/config.json`, profile `ALIBABA_CLOUD_PROFILE` or its `current`
//!    (skipped with `ALIBABA_CLOUD_CLI_PROFILE_DISABLED=true`);
//! 4. the INI file `ALIBABA_CLOUD_CREDENTIALS_FILE` or `~/.alibabacloud/credentials`, profile
//!    `ALIBABA_CLOUD_PROFILE` or `default`;
//! 5. the ECS instance RAM role: `ALIBABA_CLOUD_ECS_METADATA` names it; without the name the
//!    metadata service is asked only when the caller allows discovery (`--cloud aliyun`), so a
//!    laptop never sends a request to `100.100.100.200` by surprise.
//!
//! On top of whichever is found, `--assume-role-arn` assumes a RAM role with STS `AssumeRole`.
//! The first source found is used; later ones are not consulted (a broken source is an error,
//! not a reason to try the next: a typo must not silently select other credentials).

use std::path::PathBuf;

use reqwest::Url;

use super::{
    Credentials, ENV_ACCESS_KEY_ID, ENV_ACCESS_KEY_SECRET, Env,
    metadata::{DEFAULT_METADATA_ENDPOINT, EcsRole},
    profile::{Format, ProfileCredentials, ProfileRef},
    provider::{FileSource, Net, Provider, Source},
    sts::{DEFAULT_DURATION_SECONDS, DEFAULT_STS_ENDPOINT, OidcRole, RoleArn},
};
use crate::eci::Error;

/// RRSA: the role to assume.
pub const ENV_ROLE_ARN: &str = "ALIBABA_CLOUD_ROLE_ARN";
/// RRSA: the OIDC identity provider of the cluster.
pub const ENV_OIDC_PROVIDER_ARN: &str = "ALIBABA_CLOUD_OIDC_PROVIDER_ARN";
/// RRSA: the projected service-account token.
pub const ENV_OIDC_TOKEN_FILE: &str = "ALIBABA_CLOUD_OIDC_TOKEN_FILE";
/// The session name of an assumed role.
pub const ENV_ROLE_SESSION_NAME: &str = "ALIBABA_CLOUD_ROLE_SESSION_NAME";
/// The profile of the CLI file or the INI file.
pub const ENV_PROFILE: &str = "ALIBABA_CLOUD_PROFILE";
/// Turns the CLI file off.
pub const ENV_CLI_PROFILE_DISABLED: &str = "ALIBABA_CLOUD_CLI_PROFILE_DISABLED";
/// The INI credentials file.
pub const ENV_CREDENTIALS_FILE: &str = "ALIBABA_CLOUD_CREDENTIALS_FILE";
/// The ECS instance's RAM role name.
pub const ENV_ECS_METADATA: &str = "ALIBABA_CLOUD_ECS_METADATA";
/// Turns the metadata service off.
pub const ENV_ECS_METADATA_DISABLED: &str = "ALIBABA_CLOUD_ECS_METADATA_DISABLED";
/// Refuses IMDSv1 (requests without a token).
pub const ENV_IMDSV1_DISABLED: &str = "ALIBABA_CLOUD_IMDSV1_DISABLED";
/// The STS region: `sts.<region>.aliyuncs.com` instead of `sts.aliyuncs.com`.
pub const ENV_STS_REGION: &str = "ALIBABA_CLOUD_STS_REGION";
/// With an STS region: its VPC endpoint, `sts-vpc.<region>.aliyuncs.com`.
pub const ENV_VPC_ENDPOINT_ENABLED: &str = "ALIBABA_CLOUD_VPC_ENDPOINT_ENABLED";
/// The STS endpoint host or URL (ACK's pod-identity webhook sets it).
pub const ENV_STS_ENDPOINT: &str = "ALIBABA_CLOUD_STS_ENDPOINT";

/// The session name when none is configured.
pub const DEFAULT_SESSION_NAME: &str = "eci-virtual-kubelet";

/// What the chain takes besides the environment.
#[derive(Debug, Clone, Default)]
pub struct ChainSettings {
    /// A directory holding `access-key-id`, `access-key-secret` (a mounted Secret): first.
    pub credentials_dir: Option<PathBuf>,
    /// A RAM role to assume with whatever the chain found.
    pub assume_role_arn: Option<String>,
    /// The session name of assumed roles (else `ALIBABA_CLOUD_ROLE_SESSION_NAME`, else
    /// [`DEFAULT_SESSION_NAME`]).
    pub role_session_name: Option<String>,
    /// The STS endpoint (else from `ALIBABA_CLOUD_STS_REGION`, else `sts.aliyuncs.com`).
    pub sts_endpoint: Option<String>,
    /// The ECS metadata service (else `http://100.100.100.200/`).
    pub ecs_metadata_endpoint: Option<String>,
    /// Ask the metadata service for the instance's role when nothing else was found.
    pub discover_ecs_role: bool,
    /// CA certificates (DER) trusted besides the system's, for an `https` STS endpoint.
    pub extra_root_certificates: Vec<Vec<u8>>,
}

/// The first source of the chain that is configured, or `None` when there is none.
///
/// # Errors
/// [`Error::CredentialsConfig`] / [`Error::MissingCredential`] for a source that is configured
/// but incomplete or unreadable; [`Error::InvalidEndpoint`] for a bad endpoint setting.
pub fn default_chain(env: &impl Env, settings: &ChainSettings) -> Result<Option<Provider>, Error> {
    let var = |name: &str| {
        env.var(name)
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    };
    let flag = |name: &str| var(name).is_some_and(|v| v.eq_ignore_ascii_case("true") || v == "1");
    // Built only for the sources that call STS or the metadata service.
    let network = || net(env, settings);
    let session = settings
        .role_session_name
        .clone()
        .or_else(|| var(ENV_ROLE_SESSION_NAME))
        .unwrap_or_else(|| DEFAULT_SESSION_NAME.to_owned());
    let home = var("HOME").map(PathBuf::from);

    let found = if let Some(dir) = &settings.credentials_dir {
        Some(Provider::new(
            format!("credentials directory {}", dir.display()),
            Source::File(FileSource::Dir(dir.clone())),
            None,
        ))
    } else if var(ENV_ACCESS_KEY_ID).is_some() || var(ENV_ACCESS_KEY_SECRET).is_some() {
        Some(Provider::new(
            format!("environment ({ENV_ACCESS_KEY_ID})"),
            Source::Static(Credentials::from_env(env)?),
            None,
        ))
    } else if let Some(oidc) = oidc_from_env(&var, &session)? {
        Some(Provider::new(
            format!("RRSA (AssumeRoleWithOIDC, role {})", oidc.role_arn),
            Source::Oidc(oidc),
            Some(network()?),
        ))
    } else if let Some(at) = profile_file(&var, &flag, home.as_deref())? {
        let what = at.load()?;
        let network = match what {
            ProfileCredentials::Static(_) => None,
            _ => Some(network()?),
        };
        Some(from_profile(
            &at,
            what,
            &session,
            network.as_ref(),
            flag(ENV_IMDSV1_DISABLED),
        ))
    } else if let Some(role) = var(ENV_ECS_METADATA).filter(|_| !flag(ENV_ECS_METADATA_DISABLED)) {
        Some(ecs_role(
            Some(role),
            flag(ENV_IMDSV1_DISABLED),
            Some(network()?),
            None,
        ))
    } else if settings.discover_ecs_role && !flag(ENV_ECS_METADATA_DISABLED) {
        Some(ecs_role(
            None,
            flag(ENV_IMDSV1_DISABLED),
            Some(network()?),
            None,
        ))
    } else {
        None
    };
    Ok(match (found, &settings.assume_role_arn) {
        (Some(base), Some(role_arn)) => Some(assume(
            base,
            RoleArn {
                role_arn: role_arn.clone(),
                session_name: session,
                external_id: None,
                duration_seconds: DEFAULT_DURATION_SECONDS,
            },
            Some(network()?),
        )),
        (found, _) => found,
    })
}

fn net(env: &impl Env, settings: &ChainSettings) -> Result<Net, Error> {
    let var = |name: &str| {
        env.var(name)
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    };
    let vpc =
        var(ENV_VPC_ENDPOINT_ENABLED).is_some_and(|v| v.eq_ignore_ascii_case("true") || v == "1");
    // A bare host (as the SDKs take it) is an https endpoint.
    let from_env = var(ENV_STS_ENDPOINT).map(|e| {
        if e.contains("://") {
            e
        } else {
            format!("https://{e}/")
        }
    });
    let sts = match settings.sts_endpoint.clone().or(from_env) {
        Some(url) => url,
        None => match var(ENV_STS_REGION) {
            Some(region) if vpc => {
                format!("https://sts-vpc.{}.aliyuncs.com/", region.trim())
            }
            Some(region) => format!("https://sts.{}.aliyuncs.com/", region.trim()),
            None => DEFAULT_STS_ENDPOINT.to_owned(),
        },
    };
    let metadata = settings
        .ecs_metadata_endpoint
        .clone()
        .unwrap_or_else(|| DEFAULT_METADATA_ENDPOINT.to_owned());
    let parse = |url: &str| {
        let parsed = Url::parse(url).map_err(|_| Error::InvalidEndpoint {
            endpoint: url.to_owned(),
            reason: "not a URL",
        })?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(Error::InvalidEndpoint {
                endpoint: url.to_owned(),
                reason: "must be an http:// or https:// URL",
            });
        }
        Ok(parsed)
    };
    let sts = parse(&sts)?;
    let metadata = parse(&metadata)?;
    let http = reqwest::Client::builder()
        .tls_backend_preconfigured(crate::eci::client::tls_config(
            sts.scheme() == "https",
            &settings.extra_root_certificates,
        )?)
        .timeout(std::time::Duration::from_secs(30))
        .connect_timeout(std::time::Duration::from_secs(10))
        .user_agent(format!("eci-virtual-kubelet/{}", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(Error::HttpClient)?;
    Ok(Net {
        http,
        sts,
        metadata,
    })
}

fn oidc_from_env(
    var: &impl Fn(&str) -> Option<String>,
    session: &str,
) -> Result<Option<OidcRole>, Error> {
    let names = [ENV_ROLE_ARN, ENV_OIDC_PROVIDER_ARN, ENV_OIDC_TOKEN_FILE];
    let values: Vec<Option<String>> = names.iter().map(|n| var(n)).collect();
    match values.as_slice() {
        [Some(role_arn), Some(provider_arn), Some(token_file)] => Ok(Some(OidcRole {
            role_arn: role_arn.clone(),
            provider_arn: provider_arn.clone(),
            token_file: token_file.into(),
            session_name: session.to_owned(),
            duration_seconds: DEFAULT_DURATION_SECONDS,
        })),
        // ALIBABA_CLOUD_ROLE_ARN alone is not RRSA (the CLI reads it for other modes too).
        [_, None, None] => Ok(None),
        _ => {
            let missing: Vec<&str> = names
                .iter()
                .zip(&values)
                .filter(|(_, v)| v.is_none())
                .map(|(n, _)| *n)
                .collect();
            Err(Error::CredentialsConfig(format!(
                "RRSA needs {}, {} and {} together; {} not set",
                names[0],
                names[1],
                names[2],
                missing.join(" and ")
            )))
        }
    }
}

/// The profile file the chain uses: the CLI's when present, else the INI file.
fn profile_file(
    var: &impl Fn(&str) -> Option<String>,
    flag: &impl Fn(&str) -> bool,
    home: Option<&std::path::Path>,
) -> Result<Option<ProfileRef>, Error> {
    let profile = var(ENV_PROFILE);
    if !flag(ENV_CLI_PROFILE_DISABLED)
        && let Some(home) = home
    {
        let path = home.join(".aliyun").join("config.json");
        if path.is_file() {
            return Ok(Some(ProfileRef {
                path,
                name: profile,
                format: Format::CliJson,
            }));
        }
    }
    if let Some(file) = var(ENV_CREDENTIALS_FILE) {
        let path = PathBuf::from(file);
        if !path.is_file() {
            return Err(Error::CredentialsConfig(format!(
                "{ENV_CREDENTIALS_FILE} names {}, which is not a file",
                path.display()
            )));
        }
        return Ok(Some(ProfileRef {
            path,
            name: profile,
            format: Format::Ini,
        }));
    }
    if let Some(home) = home {
        let path = home.join(".alibabacloud").join("credentials");
        if path.is_file() {
            return Ok(Some(ProfileRef {
                path,
                name: profile,
                format: Format::Ini,
            }));
        }
    }
    Ok(None)
}

/// The provider of a profile; `net` is given for every profile but an AccessKey's.
fn from_profile(
    at: &ProfileRef,
    what: ProfileCredentials,
    session: &str,
    net: Option<&Net>,
    imdsv1_disabled: bool,
) -> Provider {
    let name = at.describe();
    match what {
        ProfileCredentials::Static(_) => {
            Provider::new(name, Source::File(FileSource::Profile(at.clone())), None)
        }
        ProfileCredentials::AssumeRole { base, role } => {
            let base = match *base {
                // The AccessKey of a role profile is read once (a rotated key takes a restart);
                // a chained role is its own provider.
                ProfileCredentials::Static(credentials) => Provider::new(
                    format!("AccessKey of {name}"),
                    Source::Static(credentials),
                    None,
                ),
                other => from_profile(at, other, session, net, imdsv1_disabled),
            };
            assume(
                base,
                RoleArn {
                    role_arn: role.role_arn,
                    session_name: role.session_name.unwrap_or_else(|| session.to_owned()),
                    external_id: role.external_id,
                    duration_seconds: role.duration_seconds,
                },
                net.cloned(),
            )
        }
        ProfileCredentials::EcsRole { role_name } => {
            ecs_role(role_name, imdsv1_disabled, net.cloned(), Some(&name))
        }
        ProfileCredentials::Oidc {
            role_arn,
            provider_arn,
            token_file,
            session_name,
        } => Provider::new(
            format!("RRSA (AssumeRoleWithOIDC, role {role_arn}) from {name}"),
            Source::Oidc(OidcRole {
                role_arn,
                provider_arn,
                token_file,
                session_name: session_name.unwrap_or_else(|| session.to_owned()),
                duration_seconds: DEFAULT_DURATION_SECONDS,
            }),
            net.cloned(),
        ),
    }
}

fn ecs_role(
    role_name: Option<String>,
    imdsv1_disabled: bool,
    net: Option<Net>,
    from: Option<&str>,
) -> Provider {
    let mut name = match &role_name {
        Some(role) => format!("ECS instance RAM role {role}"),
        None => "ECS instance RAM role (named by the metadata service)".to_owned(),
    };
    if let Some(from) = from {
        name = format!("{name} from {from}");
    }
    Provider::new(
        name,
        Source::EcsRole(EcsRole {
            role_name,
            imdsv1_disabled,
        }),
        net,
    )
}

fn assume(base: Provider, role: RoleArn, net: Option<Net>) -> Provider {
    Provider::new(
        format!("AssumeRole {} with {}", role.role_arn, base.describe()),
        Source::AssumeRole { base, role },
        net,
    )
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use crate::eci::credentials::env;

    fn found(vars: &HashMap<String, String>, settings: &ChainSettings) -> Option<String> {
        default_chain(vars, settings)
            .expect("chain")
            .map(|p| p.describe().to_owned())
    }

    #[test]
    fn the_first_configured_source_wins_in_the_sdks_order() {
        let home = tempfile::tempdir().expect("tempdir");
        let home_s = home.path().display().to_string();
        let none = ChainSettings::default();
        // Nothing at all: no source (the node then runs the emulator).
        assert_eq!(found(&env(&[("HOME", &home_s)]), &none), None);

        // The INI file under HOME.
        std::fs::create_dir_all(home.path().join(".alibabacloud")).expect("mkdir");
        std::fs::write(
            home.path().join(".alibabacloud/credentials"),
            "[default]\naccess_key_id = LTAIini\naccess_key_secret = s\n",
        )
        .expect("write");
        let described = found(&env(&[("HOME", &home_s)]), &none).expect("ini");
        assert!(
            described.starts_with("profile 'default' of "),
            "{described}"
        );

        // The CLI's config.json comes before it.
        std::fs::create_dir_all(home.path().join(".aliyun")).expect("mkdir");
        std::fs::write(
            home.path().join(".aliyun/config.json"),
            r#"{"current":"p","profiles":[{"name":"p","mode":"EcsRamRole","ram_role_name":"r"}]}"#,
        )
        .expect("write");
        let described = found(&env(&[("HOME", &home_s)]), &none).expect("cli");
        assert!(
            described.starts_with("ECS instance RAM role r from current profile of"),
            "{described}"
        );
        // …unless turned off.
        let described = found(
            &env(&[("HOME", &home_s), (ENV_CLI_PROFILE_DISABLED, "true")]),
            &none,
        )
        .expect("ini again");
        assert!(
            described.starts_with("profile 'default' of "),
            "{described}"
        );

        // RRSA before the files.
        let rrsa = [
            ("HOME", home_s.as_str()),
            (ENV_ROLE_ARN, "acs:ram::1:role/r"),
            (ENV_OIDC_PROVIDER_ARN, "acs:ram::1:oidc-provider/p"),
            (ENV_OIDC_TOKEN_FILE, "/var/run/t"),
        ];
        let described = found(&env(&rrsa), &none).expect("rrsa");
        assert_eq!(
            described,
            "RRSA (AssumeRoleWithOIDC, role acs:ram::1:role/r)"
        );

        // The environment's AccessKey before RRSA, and a named directory before everything.
        let mut with_key = rrsa.to_vec();
        with_key.extend([(ENV_ACCESS_KEY_ID, "LTAIenv"), (ENV_ACCESS_KEY_SECRET, "s")]);
        assert_eq!(
            found(&env(&with_key), &none).as_deref(),
            Some("environment (ALIBABA_CLOUD_ACCESS_KEY_ID)")
        );
        let dir = ChainSettings {
            credentials_dir: Some("/etc/eci".into()),
            ..ChainSettings::default()
        };
        assert_eq!(
            found(&env(&with_key), &dir).as_deref(),
            Some("credentials directory /etc/eci")
        );

        // A role assumed on top of whatever was found.
        let assume = ChainSettings {
            assume_role_arn: Some("acs:ram::1:role/top".into()),
            ..ChainSettings::default()
        };
        assert_eq!(
            found(&env(&with_key), &assume).as_deref(),
            Some("AssumeRole acs:ram::1:role/top with environment (ALIBABA_CLOUD_ACCESS_KEY_ID)")
        );
    }

    #[test]
    fn the_metadata_service_is_asked_only_when_named_or_allowed() {
        let home = tempfile::tempdir().expect("tempdir");
        let home_s = home.path().display().to_string();
        let vars = env(&[("HOME", &home_s)]);
        assert_eq!(found(&vars, &ChainSettings::default()), None);
        let discover = ChainSettings {
            discover_ecs_role: true,
            ..ChainSettings::default()
        };
        assert_eq!(
            found(&vars, &discover).as_deref(),
            Some("ECS instance RAM role (named by the metadata service)")
        );
        let named = env(&[("HOME", &home_s), (ENV_ECS_METADATA, "worker")]);
        assert_eq!(
            found(&named, &ChainSettings::default()).as_deref(),
            Some("ECS instance RAM role worker")
        );
        let disabled = env(&[("HOME", &home_s), (ENV_ECS_METADATA_DISABLED, "true")]);
        assert_eq!(found(&disabled, &discover), None);
    }

    #[test]
    fn a_broken_source_is_an_error_naming_what_is_missing() {
        let half = env(&[
            (ENV_ROLE_ARN, "acs:ram::1:role/r"),
            (ENV_OIDC_TOKEN_FILE, "/t"),
        ]);
        let err = default_chain(&half, &ChainSettings::default())
            .expect_err("partial RRSA")
            .to_string();
        assert!(err.contains(ENV_OIDC_PROVIDER_ARN), "{err}");
        let file = env(&[(ENV_CREDENTIALS_FILE, "/nonexistent/credentials")]);
        let err = default_chain(&file, &ChainSettings::default())
            .expect_err("missing file")
            .to_string();
        assert!(err.contains("/nonexistent/credentials"), "{err}");
        let key = env(&[(ENV_ACCESS_KEY_ID, "LTAIonly")]);
        assert!(default_chain(&key, &ChainSettings::default()).is_err());
        // Only the role ARN is not RRSA (the CLI reads it for other modes).
        let home = tempfile::tempdir().expect("tempdir");
        let role_only = env(&[
            (ENV_ROLE_ARN, "acs:ram::1:role/r"),
            ("HOME", &home.path().display().to_string()),
        ]);
        assert!(
            default_chain(&role_only, &ChainSettings::default())
                .expect("no source")
                .is_none()
        );
    }

    #[test]
    fn sts_endpoint_follows_region_and_vpc_settings() {
        let sts_of = |pairs: &[(&str, &str)]| {
            net(&env(pairs), &ChainSettings::default())
                .expect("net")
                .sts
                .to_string()
        };
        assert_eq!(sts_of(&[]), DEFAULT_STS_ENDPOINT);
        assert_eq!(
            sts_of(&[(ENV_STS_REGION, "cn-hangzhou")]),
            "https://sts.cn-hangzhou.aliyuncs.com/"
        );
        assert_eq!(
            sts_of(&[
                (ENV_STS_REGION, "cn-hangzhou"),
                (ENV_VPC_ENDPOINT_ENABLED, "true")
            ]),
            "https://sts-vpc.cn-hangzhou.aliyuncs.com/"
        );
        assert_eq!(
            sts_of(&[(ENV_STS_ENDPOINT, "sts-vpc.cn-beijing.aliyuncs.com")]),
            "https://sts-vpc.cn-beijing.aliyuncs.com/"
        );
    }
}

use clap::{CommandFactory as _, Parser as _};

use super::*;
use crate::config::Runtime;

fn emulator(argv: &[&str]) -> EmulatorArgs {
    let mut full = vec!["eci-vk", "emulator", "--access-key-id", "a"];
    full.extend_from_slice(argv);
    match Cli::try_parse_from(full).expect("valid flags").command {
        Command::Emulator(args) => *args,
        other => panic!("not the emulator command: {other:?}"),
    }
}

#[test]
fn emulator_flags_parse_and_debug_hides_the_secret() {
    let cli = Cli::try_parse_from([
        "eci-vk",
        "emulator",
        "--listen",
        "127.0.0.1:0",
        "--access-key-id",
        "id",
        "--access-key-secret-file",
        "/run/secrets/emulator",
        "--runtime",
        "simulated",
        "--data-dir",
        "/tmp/x",
        "--image-cache-quota",
        "300",
    ])
    .expect("valid flags");
    let Command::Emulator(args) = cli.command else {
        panic!("not the emulator command");
    };
    assert_eq!(args.runtime, Runtime::Simulated);
    assert_eq!(
        args.access_key_secret_file.as_deref(),
        Some(std::path::Path::new("/run/secrets/emulator"))
    );
    assert_eq!(args.image_cache_quota, 300);

    let args = emulator(&["--registry-bandwidth", "8MiB/s"]);
    assert_eq!(args.runtime, Runtime::Runc, "runc is the default");
    assert_eq!(args.image_cache_quota, 50, "ECI's default quota");
    let config = agent::local_agent_config(&args.agent_options, None).expect("valid options");
    assert_eq!(
        config.bandwidth.map(|b| b.bytes_per_second()),
        Some(8 << 20)
    );
    assert!(config.scratch, "no data dir: a scratch directory");
    let again = agent::local_agent_config(&args.agent_options, None).expect("valid options");
    assert_ne!(
        config.data_dir, again.data_dir,
        "a scratch directory's name cannot be guessed"
    );

    let base = ["eci-vk", "emulator", "--access-key-id", "a"];
    let with = |extra: &[&str]| {
        let mut argv = base.to_vec();
        argv.extend_from_slice(extra);
        Cli::try_parse_from(argv)
    };
    assert!(with(&["--runtime", "docker"]).is_err());
    assert!(
        with(&["--image-cache-quota", "0"]).is_err(),
        "a quota of no caches is not an account"
    );
}

#[test]
fn the_emulator_secret_is_never_a_flag() {
    let refused = Cli::try_parse_from([
        "eci-vk",
        "emulator",
        "--access-key-id",
        "a",
        "--access-key-secret",
        "b",
    ]);
    assert!(refused.is_err(), "a secret on the command line");

    let env = |value: &'static str| {
        move |name: &str| (name == "ALIBABA_CLOUD_ACCESS_KEY_SECRET").then(|| value.to_owned())
    };
    let secret = emulator::access_key_secret(None, env("from-env")).expect("from the environment");
    assert_eq!(secret, "from-env");
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("secret");
    std::fs::write(&file, "from-file\n").expect("write");
    let secret = emulator::access_key_secret(Some(&file), env("from-env")).expect("from the file");
    assert_eq!(secret, "from-file", "the file wins, without its newline");
    let missing = emulator::access_key_secret(None, |_: &str| None).expect_err("no secret");
    assert!(
        matches!(&missing, Failure::Usage(line) if line.contains("ALIBABA_CLOUD_ACCESS_KEY_SECRET") && line.contains("--access-key-secret-file")),
        "{missing:?}"
    );
    let unreadable = emulator::access_key_secret(Some(&dir.path().join("absent")), env("x"));
    assert!(matches!(unreadable, Err(Failure::Usage(_))));
}

#[test]
fn fault_flags_parse_and_are_checked() {
    let args = emulator(&[]);
    assert_eq!(args.fault_rate, 0.0, "no faults by default");
    assert_eq!(
        args.fault_kinds,
        ["5xx", "throttling", "slow", "applied-then-timeout"]
    );
    assert_eq!(args.fault_slow_ms, 3000);
    let args = emulator(&[
        "--fault-rate",
        "0.25",
        "--fault-seed",
        "7",
        "--fault-kinds",
        "5xx,applied-then-timeout",
        "--fault-file",
        "/tmp/rate",
    ]);
    assert_eq!(args.fault_rate, 0.25);
    assert_eq!(args.fault_seed, Some(7));
    assert_eq!(args.fault_kinds, ["5xx", "applied-then-timeout"]);
    let base = ["eci-vk", "emulator", "--access-key-id", "a"];
    for bad in [
        &["--fault-rate", "1.5"][..],
        &["--fault-rate", "-0.1"],
        &["--fault-kinds", "5xx,meteor"],
    ] {
        let mut argv = base.to_vec();
        argv.extend_from_slice(bad);
        assert!(Cli::try_parse_from(argv).is_err(), "{bad:?}");
    }
}

#[test]
fn bad_agent_options_are_usage_errors_naming_flag_and_variable() {
    let args = emulator(&["--registry-bandwidth", "fast"]);
    let failure = agent::local_agent_config(&args.agent_options, None).expect_err("bad bandwidth");
    let Failure::Usage(line) = failure else {
        panic!("not a usage error: {failure:?}");
    };
    assert!(
        line.contains("--registry-bandwidth") && line.contains("VK_REGISTRY_BANDWIDTH"),
        "{line}"
    );
    let args = emulator(&["--platform", "not a platform"]);
    let failure = agent::local_agent_config(&args.agent_options, None).expect_err("bad platform");
    assert!(
        matches!(&failure, Failure::Usage(line) if line.contains("VK_PLATFORM")),
        "{failure:?}"
    );
}

/// The README promises that every flag also reads an environment variable.
#[test]
fn every_flag_of_every_subcommand_reads_an_environment_variable() {
    let cli = Cli::command();
    let mut missing = Vec::new();
    let mut seen = 0;
    let mut check = |command: &clap::Command, path: &str| {
        for arg in command.get_arguments() {
            let id = arg.get_id().as_str();
            if matches!(id, "help" | "version") || arg.is_positional() {
                continue;
            }
            seen += 1;
            if arg.get_env().is_none() {
                missing.push(format!("{path} --{}", arg.get_long().unwrap_or(id)));
            }
        }
    };
    check(&cli, "eci-vk");
    for sub in cli.get_subcommands() {
        check(sub, &format!("eci-vk {}", sub.get_name()));
    }
    assert!(seen > 40, "only {seen} flags seen: the walk is broken");
    assert!(missing.is_empty(), "flags without a variable: {missing:?}");
}

/// The same promise as the user reads it: in each subcommand's `--help`, every option but
/// `--help`/`--version` shows the variable it reads (`[env: …]`).
#[test]
fn every_option_in_every_help_text_names_its_variable() {
    let cli = Cli::command();
    let mut checked = 0;
    let mut missing = Vec::new();
    for sub in cli.get_subcommands() {
        let help = sub.clone().render_long_help().to_string();
        // An option's block starts with a line `  -x, --name …` or `      --name …` and runs
        // to the next such line.
        let mut blocks: Vec<(String, String)> = Vec::new();
        for line in help.lines() {
            let trimmed = line.trim_start();
            let starts = line.starts_with("  ")
                && (trimmed.starts_with("--")
                    || (trimmed.starts_with('-') && trimmed.get(2..4) == Some(", ")));
            if starts {
                let name = trimmed
                    .split_whitespace()
                    .find(|w| w.starts_with("--"))
                    .unwrap_or(trimmed)
                    .trim_end_matches(',')
                    .to_owned();
                blocks.push((name, line.to_owned()));
            } else if let Some((_, text)) = blocks.last_mut() {
                text.push('\n');
                text.push_str(line);
            }
        }
        for (name, text) in blocks {
            if matches!(name.as_str(), "--help" | "--version") {
                continue;
            }
            checked += 1;
            if !text.contains("[env: ") {
                missing.push(format!("eci-vk {} {name}", sub.get_name()));
            }
        }
    }
    assert!(
        checked > 40,
        "only {checked} options found in the help texts"
    );
    assert!(
        missing.is_empty(),
        "options whose --help names no variable: {missing:?}"
    );
}

/// One prefix for ours; kubectl's and Alibaba Cloud's own names for theirs.
#[test]
fn every_variable_has_the_one_prefix_or_an_ecosystem_name() {
    let cli = Cli::command();
    let foreign = [
        crate::config::env::ENV_KUBECONFIG,
        crate::config::env::ENV_ACCESS_KEY_ID,
        crate::config::env::ENV_ACCESS_KEY_SECRET,
    ];
    for sub in cli.get_subcommands() {
        for arg in sub.get_arguments() {
            let Some(env) = arg.get_env().and_then(|e| e.to_str()) else {
                continue;
            };
            assert!(
                env.starts_with("VK_") || foreign.contains(&env),
                "{} --{:?}: {env}",
                sub.get_name(),
                arg.get_long()
            );
        }
    }
}

#[test]
fn log_format_is_accepted_after_any_subcommand() {
    let cli = Cli::try_parse_from(["eci-vk", "crd", "--log-format", "json"]).expect("global flag");
    assert_eq!(cli.log_format, LogFormat::Json);
    let cli = Cli::try_parse_from(["eci-vk", "run", "--log-format", "text"]).expect("global flag");
    assert_eq!(cli.log_format, LogFormat::Text);
}

#[test]
fn variables_of_the_old_agent_prefix_are_named_with_their_new_names() {
    let names = [
        "PATH",
        "ECI_AGENT_REGISTRY_BANDWIDTH",
        "VK_BRIDGE",
        "ECI_AGENT_RUNC",
    ]
    .map(std::ffi::OsString::from);
    assert_eq!(
        renamed_variables(names.into_iter()),
        [
            (
                "ECI_AGENT_REGISTRY_BANDWIDTH".to_owned(),
                "VK_REGISTRY_BANDWIDTH".to_owned()
            ),
            ("ECI_AGENT_RUNC".to_owned(), "VK_RUNC".to_owned()),
        ]
    );
    for (_, new) in renamed_variables(
        [
            "ECI_AGENT_PLAIN_HTTP_REGISTRIES",
            "ECI_AGENT_INSECURE_REGISTRIES",
            "ECI_AGENT_REGISTRY_CA_FILE",
        ]
        .map(std::ffi::OsString::from)
        .into_iter(),
    ) {
        let known = [
            crate::config::env::ENV_PLAIN_HTTP_REGISTRIES,
            crate::config::env::ENV_INSECURE_REGISTRIES,
            crate::config::env::ENV_REGISTRY_CA_FILE,
        ];
        assert!(
            known.contains(&new.as_str()),
            "{new} is not a variable of ours"
        );
    }
}

/// Boolean variables take the spellings people write in env files (`1`, `yes`, `on`).
#[test]
fn boolean_flags_accept_the_usual_spellings() {
    // Switches (`--no-throttle`) take a value only from their variable, which clap reads with
    // the same boolish parser as these.
    let Command::Run(run) = Cli::try_parse_from(["eci-vk", "run", "--kubelet-auth", "0"])
        .expect("a boolish value")
        .command
    else {
        panic!("not run");
    };
    assert!(!run.kubelet_auth);
}

#[tokio::test]
async fn an_agent_on_tcp_without_a_token_is_bad_input_naming_the_flag() {
    let address: crate::config::AgentAddress = "tcp://127.0.0.1:0".parse().expect("valid");
    let Err(Failure::Usage(line)) = agent::bind(&address, None).await else {
        panic!("TCP without a token must be refused as bad input");
    };
    assert!(line.contains("--auth-token-file"), "{line}");
    assert!(line.contains("VK_AGENT_AUTH_TOKEN_FILE"), "{line}");

    let Err(Failure::Usage(line)) = emulator::remote_agent(&address, None) else {
        panic!("an emulator without the token of a TCP agent must be refused");
    };
    assert!(line.contains("--agent-token-file"), "{line}");
    let socket: crate::config::AgentAddress =
        "unix:///run/eci-vk/agent.sock".parse().expect("valid");
    assert!(
        emulator::remote_agent(&socket, None).is_ok(),
        "a socket needs no token"
    );
}

#[test]
fn token_files_are_read_trimmed_and_never_echoed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let empty = dir.path().join("empty");
    std::fs::write(&empty, "\n").expect("write");
    let Err(Failure::Usage(line)) = agent::read_token_file(&empty, "--auth-token-file", "VK_X")
    else {
        panic!("an empty token file is bad input");
    };
    assert!(
        line.contains("--auth-token-file") && line.contains("empty"),
        "{line}"
    );
    let bad = dir.path().join("bad");
    std::fs::write(&bad, "top secret\n").expect("write");
    let Err(Failure::Usage(line)) = agent::read_token_file(&bad, "--auth-token-file", "VK_X")
    else {
        panic!("a token with a space is bad input");
    };
    assert!(!line.contains("secret"), "{line}");
    let good = dir.path().join("good");
    std::fs::write(&good, "s3cret\n").expect("write");
    assert!(agent::read_token_file(&good, "--auth-token-file", "VK_X").is_ok());
}

#[test]
fn the_agent_token_file_needs_an_agent_and_a_bare_agent_address_is_refused() {
    let base = ["eci-vk", "emulator", "--access-key-id", "a"];
    let mut argv = base.to_vec();
    argv.extend(["--agent-token-file", "/tmp/token"]);
    assert!(
        Cli::try_parse_from(&argv).is_err(),
        "a token file without --agent"
    );
    let mut argv = base.to_vec();
    argv.extend(["--agent", "127.0.0.1:7000"]);
    let error = Cli::try_parse_from(&argv).expect_err("a bare address");
    assert!(
        error.to_string().contains("tcp://127.0.0.1:7000"),
        "{error}"
    );
    let args = emulator(&[
        "--agent",
        "tcp://127.0.0.1:7000",
        "--agent-token-file",
        "/t",
    ]);
    assert_eq!(
        args.agent_token_file.as_deref(),
        Some(std::path::Path::new("/t"))
    );
    let Command::Agent(args) = Cli::try_parse_from(["eci-vk", "agent"])
        .expect("defaults")
        .command
    else {
        panic!("not the agent command");
    };
    assert_eq!(args.listen.to_string(), crate::config::DEFAULT_AGENT_SOCKET);
}

//! Leader election (`src/election.rs`) against the real API server: candidates whose clocks
//! disagree by hours, and a leader cut off from the API server, never give two leaders at once.

use std::{
    net::SocketAddr,
    sync::Arc,
    time::{Duration, Instant},
};

use anyhow::{Context, Result, ensure};
use eci_vk::election::{Campaign, ElectionConfig, Elector, Leadership};
use tokio::{net::TcpListener, sync::watch};

use crate::support::{
    Ground,
    ground::Namespace,
    harness::{Phase, Test},
};

/// The test's lease, and the time between attempts.
const LEASE: Duration = Duration::from_secs(4);
const RETRY: Duration = Duration::from_millis(250);

pub fn tests() -> Vec<Test> {
    vec![Test {
        name: "election::skewed_clocks_and_a_partitioned_leader_never_overlap",
        phase: Phase::WithCrd,
        run: skewed_clocks_and_a_partitioned_leader_never_overlap,
    }]
}

/// A TCP proxy to the API server that can be cut: while cut, connections stay open but
/// nothing crosses them (a partition, not a refusal), and new ones are held the same way.
struct Partition {
    addr: SocketAddr,
    cut: watch::Sender<bool>,
}

impl Partition {
    async fn start(upstream: SocketAddr) -> Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let (cut, _) = watch::channel(false);
        let cut_rx = cut.subscribe();
        tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                let mut cut = cut_rx.clone();
                tokio::spawn(async move {
                    let is_cut = *cut.borrow();
                    if is_cut {
                        // Held, unanswered, until the partition heals; then dropped.
                        let _ = cut.wait_for(|c| !*c).await;
                        return;
                    }
                    let Ok(mut server) = tokio::net::TcpStream::connect(upstream).await else {
                        return;
                    };
                    let partitioned = tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => false,
                        changed = cut.wait_for(|c| *c) => changed.is_ok(),
                    };
                    if partitioned {
                        // Stop forwarding, keep both ends open until healed.
                        let _ = cut.wait_for(|c| !*c).await;
                    }
                });
            }
        });
        Ok(Self { addr, cut })
    }

    fn set_cut(&self, cut: bool) {
        self.cut.send_replace(cut);
    }
}

/// A kube client of the ground's admin kubeconfig, optionally through `via`.
async fn client(ground: &Ground, via: Option<SocketAddr>) -> Result<kube::Client> {
    let raw = kube::config::Kubeconfig::read_from(&ground.kubeconfig)?;
    let mut config =
        kube::Config::from_custom_kubeconfig(raw, &kube::config::KubeConfigOptions::default())
            .await?;
    if let Some(addr) = via {
        // Same host (the serving certificate is for 127.0.0.1), another port.
        config.cluster_url = format!("https://{addr}").parse()?;
    }
    config.read_timeout = Some(Duration::from_secs(30));
    Ok(kube::Client::try_from(config)?)
}

fn upstream(ground: &Ground) -> Result<SocketAddr> {
    let raw = kube::config::Kubeconfig::read_from(&ground.kubeconfig)?;
    let server = raw
        .clusters
        .first()
        .and_then(|c| c.cluster.as_ref())
        .and_then(|c| c.server.clone())
        .context("no server in the kubeconfig")?;
    let authority = server
        .trim_start_matches("https://")
        .trim_end_matches('/')
        .to_owned();
    Ok(authority.parse()?)
}

/// Samples both candidates' "may I write now" every few milliseconds until `until` says stop;
/// fails the moment both may.
async fn watch_overlap(
    a: &Leadership,
    b: &Leadership,
    until: impl Fn(&Leadership, &Leadership) -> bool,
    limit: Duration,
) -> Result<()> {
    let started = Instant::now();
    loop {
        let (ha, hb) = (a.holds_now(), b.holds_now());
        ensure!(!(ha && hb), "both candidates may write at once");
        if until(a, b) {
            return Ok(());
        }
        ensure!(
            started.elapsed() < limit,
            "not reached within {limit:?} (a leads: {}, b leads: {})",
            a.is_leading(),
            b.is_leading()
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

fn skewed_clocks_and_a_partitioned_leader_never_overlap(
    ground: &Ground,
    ns: &Namespace,
) -> Result<()> {
    let namespace = ns.name.clone();
    ground.runtime.block_on(async move {
        let partition = Partition::start(upstream(ground)?).await?;
        let timing = |identity: &str| ElectionConfig {
            lease_duration: LEASE,
            renew_deadline: Duration::from_secs(3),
            retry_period: RETRY,
            ..ElectionConfig::new(&namespace, "skew", identity)
        };
        let hour = jiff::SignedDuration::from_hours(1);
        // a: an hour behind, through the partition; b: an hour ahead, direct. A follower that
        // compared renewTime with its own clock would take a's live lease at once.
        let a = Elector::with_wall_clock(
            client(ground, Some(partition.addr)).await?,
            timing("a"),
            Arc::new(move || jiff::Timestamp::now() - hour),
        );
        let b = Elector::with_wall_clock(
            client(ground, None).await?,
            timing("b"),
            Arc::new(move || jiff::Timestamp::now() + hour),
        );
        let (campaign_a, lead_a) = Campaign::new(a);
        let (campaign_b, lead_b) = Campaign::new(b);
        let (stop_a, stopped_a) = tokio::sync::oneshot::channel::<()>();
        let (stop_b, stopped_b) = tokio::sync::oneshot::channel::<()>();
        let run_a = tokio::spawn(campaign_a.run(async move {
            let _ = stopped_a.await;
        }));
        let mut waiting = lead_a.clone();
        tokio::time::timeout(Duration::from_secs(10), waiting.acquired())
            .await
            .context("a never led")?;
        let run_b = tokio::spawn(campaign_b.run(async move {
            let _ = stopped_b.await;
        }));

        // Two lease durations with clocks two hours apart: b stands by.
        let calm = Instant::now();
        watch_overlap(
            &lead_a,
            &lead_b,
            |_, _| calm.elapsed() > LEASE * 2,
            Duration::from_secs(20),
        )
        .await?;
        ensure!(
            lead_a.is_leading() && !lead_b.is_leading(),
            "b took a live lease (its clock is two hours ahead of a's)"
        );

        // Partition a: it must stop acting before b starts.
        let cut = Instant::now();
        partition.set_cut(true);
        watch_overlap(
            &lead_a,
            &lead_b,
            |_, b| b.is_leading(),
            Duration::from_secs(15),
        )
        .await?;
        let takeover = cut.elapsed();
        ensure!(
            !lead_a.is_leading() && !lead_a.holds_now(),
            "a still leads after b took over"
        );
        eprintln!(
            "[election] partitioned leader replaced after {:.2} s (lease 4 s, renew deadline 3 s)",
            takeover.as_secs_f64()
        );
        // b times the lease from when it saw a's last renewal, which may come up to an attempt
        // (and a poll) before the cut.
        ensure!(
            takeover >= LEASE - RETRY * 2,
            "b took over {takeover:?} after the cut, before a lease duration"
        );

        // Heal: a campaigns again and finds b's term running.
        partition.set_cut(false);
        let healed = Instant::now();
        watch_overlap(
            &lead_a,
            &lead_b,
            |_, _| healed.elapsed() > Duration::from_secs(5),
            Duration::from_secs(10),
        )
        .await?;
        ensure!(
            lead_b.is_leading() && !lead_a.is_leading(),
            "after the partition healed, a took the lease back from a live b"
        );

        // b stops cleanly: it releases, and a takes over within a few attempts, not a lease.
        let released = Instant::now();
        let _ = stop_b.send(());
        run_b.await?;
        watch_overlap(
            &lead_a,
            &lead_b,
            |a, _| a.is_leading(),
            Duration::from_secs(10),
        )
        .await?;
        ensure!(
            released.elapsed() < Duration::from_secs(2),
            "a took {:?} to follow a released lease",
            released.elapsed()
        );
        let _ = stop_a.send(());
        run_a.await?;
        Ok(())
    })
}

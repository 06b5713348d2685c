//! `chatico-load`: the ChatiCO load tool. Run `chatico-load --help`, or `chatico-load
//! <scenario> --help` for what a scenario measures. BENCHMARKS.md has the exact commands.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use chatico_benches::load::chatico::Server;
use chatico_benches::load::otp::OtpLog;
use chatico_benches::load::{Common, LoadError, Report, fanout, idle, net, persist, resync, typing};
use clap::{Args, Parser, Subcommand, ValueEnum};

/// Drives a running ChatiCO server (and the raw WebSocket broadcast bound,
/// `chatico-raw-server`) with real WebSocket clients, logged in through the real OTP flow
/// (`POST /v1/auth/otp`, the code read from the server's OTP log, `POST /v1/auth/verify`),
/// and reports each figure as the median, min and max of several runs: a table on stdout,
/// and JSON with `--json`.
///
/// Only loopback targets (127.0.0.0/8, ::1) are accepted. Every run is bounded in time.
/// The server must let a load test log in many users: start `chatico-bench-server` (the
/// real gateway, engine and store with raised OTP and request rate limits, OTP codes
/// written to --otp-log).
#[derive(Parser, Debug)]
#[command(name = "chatico-load", version, about, long_about)]
struct Cli {
    /// Base URL of the ChatiCO server (the gateway's routes are under `<url>/v1`).
    #[arg(long, global = true, default_value = "http://127.0.0.1:8080")]
    url: String,
    /// Another node of the same cluster (repeat for each): fanout connects member k of each
    /// group to node k mod N (--url is node 0) and reports the latency across nodes apart;
    /// logins and REST calls stay on --url.
    #[arg(long = "node-url", global = true)]
    node_urls: Vec<String>,
    /// The server's OTP log: the file its development SMS sender writes codes to
    /// (`chatico-bench-server --otp-log`). Needed for every scenario that logs in.
    #[arg(long, global = true)]
    otp_log: Option<PathBuf>,
    /// Digits of an OTP code (the server's `auth.otp_length`).
    #[arg(long, global = true, default_value_t = 6)]
    otp_digits: usize,
    /// URL of the raw broadcast bound (`chatico-raw-server`), e.g. ws://127.0.0.1:9100.
    #[arg(long, global = true)]
    raw_url: Option<String>,
    /// Which servers to load (idle and fanout; the other scenarios have no raw counterpart).
    #[arg(long, global = true, value_enum, default_value_t = Which::Both)]
    target: Which,
    /// Client source addresses 127.0.0.1..=127.0.0.N (each has ~28k ephemeral ports; 100k
    /// connections need at least 4).
    #[arg(long, global = true, default_value_t = 1)]
    source_addrs: usize,
    /// Logins and handshakes in flight at once during setup.
    #[arg(long, global = true, default_value_t = 64)]
    concurrency: usize,
    /// Measured runs; each figure is reported as median, min and max over them.
    #[arg(long, global = true, default_value_t = 3)]
    runs: usize,
    /// Text size of every message, in bytes (at least 33: the timing marker).
    #[arg(long, global = true, default_value_t = 100)]
    payload_bytes: usize,
    /// Pid of the ChatiCO server (for its memory); found from the listening port if absent.
    #[arg(long, global = true)]
    server_pid: Option<u32>,
    /// Pid of the raw bound; found from the listening port if absent.
    #[arg(long, global = true)]
    raw_pid: Option<u32>,
    /// Also write the report as JSON to this file.
    #[arg(long, global = true)]
    json: Option<PathBuf>,
    #[command(subcommand)]
    scenario: Scenario,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum Which {
    Chatico,
    Raw,
    Both,
}

#[derive(Subcommand, Debug)]
enum Scenario {
    /// Idle connections and server memory per connection.
    ///
    /// Logs in --connections users, reads the server's RSS, opens one authenticated (and
    /// subscribed) WebSocket per user, reads the RSS again after 2 s, holds them for --hold
    /// seconds (answering heartbeats) and reports connections held and (RSS delta) /
    /// connections. With --target both the raw bound gets the same number of plain
    /// connections. Raises this process's open-file limit to the hard limit; 100k
    /// connections need a hard limit above 100k on both processes and --source-addrs 4 or
    /// more. Target: 100k connections at <= 4 KiB each. Run against a fresh server with
    /// --runs 1 (an allocator keeps freed memory, so a second run in the same server
    /// measures less).
    Idle(IdleArgs),
    /// Fan-out: deliveries/s at the highest sustained rate, latency at half of it.
    ///
    /// --groups groups of --group-size members (one connection each); --senders-per-group
    /// members of each group send --payload-bytes texts. Phase 1 (closed loop): every sender
    /// keeps --window messages in flight; deliveries/s (message frames received by all
    /// members, the sender's echo included) over --measure seconds after --warmup is the max
    /// rate. Phase 2 (open loop): senders send on a fixed schedule at half of phase 1's send
    /// rate; send -> receive latency p50/p99/p99.9 from the scheduled send time. With
    /// --target both each run measures ChatiCO then the raw bound with the same shapes and
    /// reports ratio_chatico_to_raw. Targets: ratio >= 0.8; p50 <= 1 ms, p99 <= 5 ms.
    Fanout(FanoutArgs),
    /// Persisted sends/s end to end (acknowledged after the store committed).
    ///
    /// --pairs direct conversations, both members connected; one member per pair keeps
    /// --window sends in flight; a send counts when its ack arrives. Start the server on the
    /// store to measure and pass --store as its label. Targets: SQLite >= 50k/s,
    /// Postgres >= 30k/s.
    Persist(PersistArgs),
    /// Reconnect + resync of a client that missed --missed messages, p50/p99.
    ///
    /// The receiver subscribes, keeps its cursor and disconnects; its peer sends --missed
    /// messages (all acknowledged); then the receiver reconnects (TCP, WebSocket handshake
    /// with its token), subscribes from the cursor, and reads every missed message and the
    /// caught-up cursor. --iterations samples per run. Target: p99 <= 20 ms.
    Resync(ResyncArgs),
    /// Typing indicator latency p50/p99.
    ///
    /// --pairs direct conversations side by side; in each one member sends typing frames
    /// (true/false alternately), one at a time, and the other receives the typing event.
    /// One sample: send -> the peer receives it. Reference: p50 <= 1 ms, p99 <= 5 ms.
    Typing(TypingArgs),
    /// Merges JSON reports of one scenario (e.g. idle runs against freshly started servers)
    /// into one: every run together, median/min/max over all of them.
    Merge(MergeArgs),
}

#[derive(Args, Debug)]
struct MergeArgs {
    /// JSON reports written with --json.
    files: Vec<PathBuf>,
}

#[derive(Args, Debug)]
struct IdleArgs {
    #[arg(long, default_value_t = 10_000)]
    connections: usize,
    /// Seconds to hold the connections open.
    #[arg(long, default_value_t = 10)]
    hold: u64,
    /// Do not subscribe (authenticated but not receiving live events).
    #[arg(long)]
    no_subscribe: bool,
}

#[derive(Args, Debug)]
struct FanoutArgs {
    #[arg(long, default_value_t = 10)]
    group_size: usize,
    /// Number of groups (default: 1000 connections in all).
    #[arg(long)]
    groups: Option<usize>,
    #[arg(long, default_value_t = 1)]
    senders_per_group: usize,
    /// Messages each sender keeps in flight in the max-rate phase.
    #[arg(long, default_value_t = 16)]
    window: u32,
    /// Seconds of warm-up before each measured window.
    #[arg(long, default_value_t = 2.0)]
    warmup: f64,
    /// Seconds measured in each phase.
    #[arg(long, default_value_t = 5.0)]
    measure: f64,
    /// Load of the latency phase, as a fraction of the max send rate (the target is stated
    /// at 0.5; lower values show the latency of a lightly loaded server).
    #[arg(long, default_value_t = 0.5)]
    latency_load: f64,
}

#[derive(Args, Debug)]
struct PersistArgs {
    #[arg(long, default_value_t = 50)]
    pairs: usize,
    #[arg(long, default_value_t = 16)]
    window: u32,
    #[arg(long, default_value_t = 2.0)]
    warmup: f64,
    #[arg(long, default_value_t = 5.0)]
    measure: f64,
    /// Label of the store the server runs on (sqlite and postgres select their targets).
    #[arg(long, default_value = "memory")]
    store: String,
}

#[derive(Args, Debug)]
struct ResyncArgs {
    #[arg(long, default_value_t = 100)]
    missed: usize,
    /// Samples per run.
    #[arg(long, default_value_t = 50)]
    iterations: usize,
}

#[derive(Args, Debug)]
struct TypingArgs {
    #[arg(long, default_value_t = 20)]
    pairs: usize,
    /// Samples per pair per run.
    #[arg(long, default_value_t = 100)]
    iterations: usize,
}

fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s.clamp(0.0, 3600.0))
}

fn merge(files: &[PathBuf]) -> Result<Report, LoadError> {
    let mut reports = Vec::new();
    for f in files {
        let text = std::fs::read_to_string(f).map_err(|e| LoadError::Usage(format!("{}: {e}", f.display())))?;
        reports.push(serde_json::from_str(&text).map_err(|e| LoadError::Usage(format!("{}: {e}", f.display())))?);
    }
    Report::merge(reports).ok_or_else(|| LoadError::Usage("merge: no reports given".into()))
}

async fn main_inner(cli: Cli) -> Result<Report, LoadError> {
    if let Scenario::Merge(m) = &cli.scenario {
        return merge(&m.files);
    }
    if cli.payload_bytes < 33 {
        return Err(LoadError::Usage("--payload-bytes must be at least 33".into()));
    }
    net::raise_fd_limit();
    let want_chatico = cli.target != Which::Raw;
    let want_raw = cli.target != Which::Chatico && cli.raw_url.is_some();
    let server = match (
        &cli.otp_log,
        want_chatico || !matches!(cli.scenario, Scenario::Idle(_) | Scenario::Fanout(_)),
    ) {
        (Some(path), true) => {
            let otp = OtpLog::follow(path.clone(), cli.otp_digits)?;
            Some(Arc::new(Server::new(&cli.url, otp)?.with_nodes(&cli.node_urls)?))
        }
        (None, true) => {
            return Err(LoadError::Usage(
                "--otp-log is needed to log users in to ChatiCO (or use --target raw)".into(),
            ));
        }
        _ => None,
    };
    if let Some(raw) = &cli.raw_url {
        net::loopback_addr(raw)?;
    }
    let common = Common {
        server,
        raw_url: cli.raw_url.clone(),
        sources: net::Sources::loopback(cli.source_addrs),
        concurrency: cli.concurrency,
        runs: cli.runs.max(1),
        server_pid: cli.server_pid,
        raw_pid: cli.raw_pid,
        payload_bytes: cli.payload_bytes,
    };
    match cli.scenario {
        Scenario::Idle(a) => {
            idle::run(
                &common,
                &idle::IdleParams {
                    connections: a.connections,
                    hold: Duration::from_secs(a.hold),
                    subscribe: !a.no_subscribe,
                    chatico: want_chatico,
                    raw: want_raw,
                },
            )
            .await
        }
        Scenario::Fanout(a) => {
            let groups = a.groups.unwrap_or((1000 / a.group_size.max(1)).max(1));
            fanout::run(
                &common,
                &fanout::FanoutParams {
                    group_size: a.group_size,
                    groups,
                    senders_per_group: a.senders_per_group,
                    window: a.window.max(1),
                    warmup: secs(a.warmup),
                    measure: secs(a.measure.max(0.1)),
                    latency_load: a.latency_load.clamp(0.001, 1.0),
                    chatico: want_chatico,
                    raw: want_raw,
                },
            )
            .await
        }
        Scenario::Persist(a) => {
            persist::run(
                &common,
                &persist::PersistParams {
                    pairs: a.pairs.max(1),
                    window: a.window.max(1),
                    warmup: secs(a.warmup),
                    measure: secs(a.measure.max(0.1)),
                    store: a.store,
                },
            )
            .await
        }
        Scenario::Resync(a) => {
            resync::run(
                &common,
                &resync::ResyncParams {
                    missed: a.missed,
                    iterations: a.iterations.max(1),
                },
            )
            .await
        }
        Scenario::Merge(_) => Err(LoadError::Usage("merge is handled above".into())),
        Scenario::Typing(a) => {
            typing::run(
                &common,
                &typing::TypingParams {
                    pairs: a.pairs.max(1),
                    iterations: a.iterations.max(1),
                },
            )
            .await
        }
    }
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let json = cli.json.clone();
    let rt = match chatico_benches::init(None) {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("chatico-load: runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match rt.block_on(main_inner(cli)) {
        Ok(report) => {
            print!("{}", report.table());
            if let Some(path) = json
                && let Err(e) = std::fs::write(&path, report.to_json())
            {
                eprintln!("chatico-load: writing {}: {e}", path.display());
                return std::process::ExitCode::FAILURE;
            }
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("chatico-load: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

//! The example server binary, started as a user would: a fresh data directory, console SMS.
//! Logs in by reading the code from its output, chats over the WebSocket, restarts with the
//! same JWT secret, and shuts down gracefully on SIGTERM (WebSockets closed with 1001).

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use chatico_test_support::process::{ServerProcess, unique_suffix};
use chatico_test_support::{Ws, text_of};
use futures::StreamExt;
use reqwest::Method;
use serde_json::json;

/// The example server on a fresh port over `data_dir` (the shared harness: console lines,
/// OTP codes from them).
fn start(data_dir: &std::path::Path) -> ServerProcess {
    let args = vec!["--data-dir".to_owned(), data_dir.to_string_lossy().into_owned()];
    ServerProcess::start(std::path::Path::new(env!("CARGO_BIN_EXE_chatico-server")), &args)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_example_server_runs_from_nothing_and_shuts_down_gracefully() {
    let data_dir = std::env::temp_dir().join(format!("chatico-server-test-{}", unique_suffix()));
    let mut srv = start(&data_dir);
    let secret_path = data_dir.join("jwt-secret");
    let secret = std::fs::read_to_string(&secret_path).expect("the secret was generated");
    assert_eq!(secret.trim().len(), 64);

    let index = srv.api.http.get(srv.api.url("/")).send().await.expect("index");
    assert!(index.text().await.expect("html").contains("ChatiCO"));
    let alice = srv.login("+15550001001").await;
    let bob = srv.login("+15550001002").await;
    let conv = srv.api.open_direct(&alice, &bob).await;

    // Bob on the WebSocket (browser-like: an allowed origin, the token in the first frame).
    let origin = format!("http://127.0.0.1:{}", srv.addr.rsplit(':').next().expect("port"));
    let mut ws = Ws::open(&format!("ws://{}/v1/ws", srv.addr), None, Some(&origin))
        .await
        .expect("ws");
    ws.auth(&bob.token).await;
    // A subscription without `since` starts from now: it is in place (the caught-up
    // checkpoint) before anything is sent, or the message may precede it.
    ws.subscribe(None).await;
    srv.api.send_text(&conv, &alice, "hello", "hello bob").await;
    let got = ws.event(|e| e["kind"]["type"] == "message").await;
    assert_eq!(text_of(&got), "hello bob");

    // SIGTERM: the socket is closed with 1001 and the process exits cleanly.
    srv.signal("-TERM");
    let (code, _) = ws.close_code().await;
    assert_eq!(code, 1001);
    drop(ws);
    let status = srv.child.wait().expect("exit");
    assert!(status.success(), "{status}");

    // A restart keeps the secret.
    let srv2 = start(&data_dir);
    assert_eq!(std::fs::read_to_string(&secret_path).expect("secret"), secret);
    drop(srv2);
    let _ = std::fs::remove_dir_all(&data_dir);
}

/// A WebSocket to the server (no `Origin`: a native client), authenticated by the first
/// frame when `token` is given, and read up to its `ready` frame.
async fn open_socket(addr: &str, token: Option<&str>) -> Ws {
    let mut ws = Ws::open(&format!("ws://{addr}/v1/ws"), None, None).await.expect("ws");
    if let Some(token) = token {
        ws.auth(token).await;
    }
    ws
}

/// Ctrl-C (SIGINT) with several sockets open, signed-in and not yet signed-in: every one
/// gets a 1001 close frame before the process exits (none a bare TCP close).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctrl_c_sends_every_open_websocket_its_1001() {
    let data_dir = std::env::temp_dir().join(format!("chatico-server-test-{}", unique_suffix()));
    let mut srv = start(&data_dir);
    let token = srv.login("+15550001003").await.token;
    let mut sockets = Vec::new();
    for _ in 0..6 {
        sockets.push(open_socket(&srv.addr, Some(&token)).await);
    }
    for _ in 0..2 {
        sockets.push(open_socket(&srv.addr, None).await);
    }
    srv.signal("-INT");
    for (i, ws) in sockets.iter_mut().enumerate() {
        let (code, _) = ws.close_code().await;
        assert_eq!(code, 1001, "socket {i}");
        // Reading on sends the client's close reply, so the server need not wait for it.
        let _ = tokio::time::timeout(Duration::from_secs(5), ws.stream.next()).await;
    }
    drop(sockets);
    let status = srv.child.wait().expect("exit");
    assert!(status.success(), "{status}");
    let _ = std::fs::remove_dir_all(&data_dir);
}

/// Logs written to a pipe carry no ANSI colour codes: the documented `DEVELOPMENT MODE`
/// line is found by grep as plain text.
#[tokio::test]
async fn piped_logs_have_no_colour_codes() {
    let data_dir = std::env::temp_dir().join(format!("chatico-server-test-{}", unique_suffix()));
    let srv = start(&data_dir);
    let phone = "+15550001004";
    let (status, _) = srv
        .api
        .call(Method::POST, "/v1/auth/otp", None, Some(json!({ "phone": phone })))
        .await;
    assert_eq!(status, 200);
    let line = srv.wait_line(|l| l.contains("DEVELOPMENT MODE") && l.contains(phone));
    assert!(!line.contains('\u{1b}'), "escape codes in a piped log line: {line:?}");
    assert!(line.contains(" WARN "), "{line:?}");
    assert!(line.contains("DEVELOPMENT MODE: SMS not sent"), "{line:?}");
    drop(srv);
    let _ = std::fs::remove_dir_all(&data_dir);
}

/// APNs and FCM are configured from files named by flags or environment variables (like
/// Twilio's credentials); a key that cannot be used stops the server at start with a clear
/// error. The keys are throwaway test keys (`chatico-transport/tests/testdata`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn push_credentials_come_from_flags_and_environment() {
    let dir = std::env::temp_dir().join(format!("chatico-server-push-{}", unique_suffix()));
    std::fs::create_dir_all(&dir).expect("dir");
    let apns_key = dir.join("AuthKey_ABC123DEFG.p8");
    std::fs::write(
        &apns_key,
        include_str!("../../../chatico-transport/tests/testdata/apns-test-key.p8"),
    )
    .expect("p8");
    let fcm_key = dir.join("service-account.json");
    let sa = json!({
        "type": "service_account",
        "project_id": "demo-project",
        "private_key_id": "0123456789abcdef",
        "private_key": include_str!("../../../chatico-transport/tests/testdata/fcm-test-key.pem"),
        "client_email": "push@demo-project.iam.gserviceaccount.com",
        "token_uri": "https://oauth2.example.invalid/token",
    });
    std::fs::write(&fcm_key, sa.to_string()).expect("json");

    let run = |extra: &[(&str, &std::path::Path)]| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_chatico-server"));
        cmd.args(["--addr", "127.0.0.1:0", "--data-dir"])
            .arg(dir.join("data"))
            .args(["--apns-key-id", "ABC123DEFG"])
            .env("APNS_TEAM_ID", "DEF123GHIJ")
            .env("CHATICO_LOG", "info")
            .env("NO_COLOR", "1")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in extra {
            cmd.env(k, v);
        }
        cmd.spawn().expect("spawn chatico-server")
    };
    let mut child = run(&[("APNS_KEY_FILE", &apns_key), ("FCM_SERVICE_ACCOUNT_FILE", &fcm_key)]);
    let out = child.stdout.take().expect("stdout");
    let mut seen = Vec::new();
    for line in BufReader::new(out).lines().map_while(Result::ok) {
        let done = line.contains("listening on http://");
        seen.push(line);
        if done {
            break;
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    let log = seen.join("\n");
    assert!(log.contains("push: APNs") && log.contains("push: FCM"), "{log}");
    assert!(!log.contains("BEGIN PRIVATE KEY"), "keys are never logged");

    // A file that is not a key: the server refuses to start and says why.
    let bad = dir.join("not-a-key.p8");
    std::fs::write(&bad, "nope").expect("bad");
    let out = run(&[("APNS_KEY_FILE", &bad)]).wait_with_output().expect("run");
    assert!(!out.status.success());
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("apns"), "{text}");
    let _ = std::fs::remove_dir_all(&dir);
}

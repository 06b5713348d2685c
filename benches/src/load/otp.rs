//! Where the load tool reads OTP codes: the log of a server running a development SMS
//! sender (the bench server's `--otp-log` file, or the log of a server using the console
//! SMS sender). The tool follows the file from its end, as `tail -f` does, and keeps the
//! last code seen for each phone.

use std::collections::HashMap;
use std::io::{Read, Seek, SeekFrom};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Notify;

use super::LoadError;

/// Extracts `(phone, code)` from one log line: the first `+` followed by 8 to 15 digits is
/// the phone, and the first run of exactly `digits` digits after it is the code. Matches the
/// bench server's lines and the console SMS sender's (plain or JSON logs).
pub fn parse_line(line: &str, digits: usize) -> Option<(String, String)> {
    let b = line.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'+' {
            let run = b[i + 1..].iter().take_while(|c| c.is_ascii_digit()).count();
            if (8..=15).contains(&run) {
                let phone = &line[i..i + 1 + run];
                let mut j = i + 1 + run;
                while j < b.len() {
                    if b[j].is_ascii_digit() {
                        let run = b[j..].iter().take_while(|c| c.is_ascii_digit()).count();
                        if run == digits {
                            return Some((phone.to_owned(), line[j..j + run].to_owned()));
                        }
                        j += run;
                    } else {
                        j += 1;
                    }
                }
                return None;
            }
            i += 1 + run;
        } else {
            i += 1;
        }
    }
    None
}

#[derive(Default)]
struct Codes {
    map: Mutex<HashMap<String, String>>,
    changed: Notify,
}

/// Follows an OTP log file in a background thread.
#[derive(Clone)]
pub struct OtpLog {
    codes: Arc<Codes>,
    stop: Arc<std::sync::atomic::AtomicBool>,
}

impl OtpLog {
    /// Starts following `path` from its current end (codes already in it are ignored).
    pub fn follow(path: PathBuf, digits: usize) -> Result<OtpLog, LoadError> {
        let mut file =
            std::fs::File::open(&path).map_err(|e| LoadError::Usage(format!("--otp-log {}: {e}", path.display())))?;
        file.seek(SeekFrom::End(0))
            .map_err(|e| LoadError::Io(format!("seek {}: {e}", path.display())))?;
        let codes = Arc::new(Codes::default());
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (c, s) = (codes.clone(), stop.clone());
        std::thread::Builder::new()
            .name("otp-log".into())
            .spawn(move || {
                let mut pending = Vec::new();
                let mut buf = vec![0u8; 64 * 1024];
                while !s.load(std::sync::atomic::Ordering::Relaxed) {
                    match file.read(&mut buf) {
                        Ok(0) | Err(_) => std::thread::sleep(Duration::from_millis(2)),
                        Ok(n) => {
                            pending.extend_from_slice(&buf[..n]);
                            let mut found = false;
                            while let Some(nl) = pending.iter().position(|&b| b == b'\n') {
                                let line: Vec<u8> = pending.drain(..=nl).collect();
                                if let Some((phone, code)) = parse_line(&String::from_utf8_lossy(&line), digits) {
                                    c.map.lock().unwrap_or_else(|e| e.into_inner()).insert(phone, code);
                                    found = true;
                                }
                            }
                            if found {
                                c.changed.notify_waiters();
                            }
                        }
                    }
                }
            })
            .map_err(|e| LoadError::Io(format!("otp log thread: {e}")))?;
        Ok(OtpLog { codes, stop })
    }

    /// The code sent to `phone`, waiting for it at most `patience`. The code is consumed.
    pub async fn code_for(&self, phone: &str, patience: Duration) -> Result<String, LoadError> {
        let deadline = tokio::time::Instant::now() + patience;
        loop {
            let changed = self.codes.changed.notified();
            if let Some(code) = self.codes.map.lock().unwrap_or_else(|e| e.into_inner()).remove(phone) {
                return Ok(code);
            }
            // A short poll as well: a notification may fall between the check and the wait.
            let wait = tokio::time::timeout(Duration::from_millis(20), changed);
            if tokio::time::Instant::now() >= deadline {
                return Err(LoadError::Setup(format!(
                    "no OTP code for {phone} appeared in the OTP log (is --otp-log the server's log?)"
                )));
            }
            let _ = wait.await;
        }
    }
}

impl Drop for OtpLog {
    fn drop(&mut self) {
        if Arc::strong_count(&self.stop) == 1 {
            self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_found_in_bench_and_console_log_lines() {
        assert_eq!(
            parse_line(
                "DEVELOPMENT MODE (bench) SMS to +19123456000001: Your ChatiCO code is 042917. It expires in 5 minutes.",
                6
            ),
            Some(("+19123456000001".into(), "042917".into()))
        );
        let console = r#"2026-11-24T02:08:00.123456Z  WARN chatico::sms::console: DEVELOPMENT MODE: SMS not sent, logged instead to=+15005550006 body=Your ChatiCO code is 424242. It expires in 5 minutes."#;
        assert_eq!(parse_line(console, 6), Some(("+15005550006".into(), "424242".into())));
        let json = r#"{"timestamp":"2026","level":"WARN","fields":{"to":"+15005550006","body":"Your ChatiCO code is 12345678."}}"#;
        assert_eq!(parse_line(json, 8), Some(("+15005550006".into(), "12345678".into())));
        assert_eq!(parse_line("no phone here 123456", 6), None);
        assert_eq!(parse_line("+1234 too short then 123456", 6), None);
        assert_eq!(parse_line("to +15005550006 but no code", 6), None);
    }

    #[tokio::test]
    async fn a_followed_log_yields_codes_written_after_it_started() {
        let dir = std::env::temp_dir().join(format!("chatico-otp-{}", rand::random::<u64>()));
        std::fs::write(&dir, "SMS to +15550000001: code 111111\n").expect("write");
        let log = OtpLog::follow(dir.clone(), 6).expect("follow");
        {
            use std::io::Write;
            let mut f = std::fs::OpenOptions::new().append(true).open(&dir).expect("open");
            writeln!(f, "SMS to +15550000002: code 222222").expect("append");
        }
        assert_eq!(
            log.code_for("+15550000002", Duration::from_secs(10))
                .await
                .expect("code"),
            "222222"
        );
        // Lines from before the tool started are not used.
        assert!(log.code_for("+15550000001", Duration::from_millis(100)).await.is_err());
        let _ = std::fs::remove_file(&dir);
    }
}

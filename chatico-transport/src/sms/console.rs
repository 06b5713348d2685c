use async_trait::async_trait;
use chatico_core::Result;
use chatico_core::ids::Phone;
use chatico_core::ports::SmsSender;

/// Development SMS sender: nothing is sent; the message (with the code in it) is written to
/// the log as a `WARN` event on target `chatico::sms::console`, marked DEVELOPMENT MODE.
///
/// Never use it in production: anyone who reads the logs can sign in as anyone.
#[derive(Debug, Clone, Copy, Default)]
pub struct ConsoleSmsSender;

impl ConsoleSmsSender {
    /// A sender that logs each SMS instead of sending it.
    pub fn new() -> Self {
        ConsoleSmsSender
    }
}

#[cfg_attr(target_family = "wasm", async_trait(?Send))]
#[cfg_attr(not(target_family = "wasm"), async_trait)]
impl SmsSender for ConsoleSmsSender {
    async fn send(&self, to: &Phone, body: &str) -> Result<()> {
        tracing::warn!(
            target: "chatico::sms::console",
            to = %to,
            body = %body,
            "DEVELOPMENT MODE: SMS not sent, logged instead (configure a real SMS sender for production)"
        );
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::sync::{Arc, Mutex};

    #[derive(Clone, Default)]
    struct Capture(Arc<Mutex<Vec<u8>>>);
    impl Write for Capture {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().expect("lock").extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[tokio::test]
    async fn console_sender_logs_the_message_marked_as_development_mode() {
        let capture = Capture::default();
        let writer = capture.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .finish();
        let _guard = tracing::subscriber::set_default(subscriber);
        let to = Phone::parse("+15005550006").expect("phone");
        ConsoleSmsSender::new()
            .send(&to, "Your ChatiCO code is 424242")
            .await
            .expect("sent");
        let out = String::from_utf8(capture.0.lock().expect("lock").clone()).expect("utf8");
        assert!(out.contains("DEVELOPMENT MODE"), "{out}");
        assert!(out.contains("+15005550006"), "{out}");
        assert!(out.contains("Your ChatiCO code is 424242"), "{out}");
        assert!(out.contains("WARN"), "{out}");
    }
}

//! An SMS sender that keeps every message, so tests can read OTP codes (shared by the
//! gateway and client test binaries through `#[path]`).

use std::sync::Mutex;

use async_trait::async_trait;
use chatico_core::ids::Phone;
use chatico_core::ports::SmsSender;

#[derive(Default)]
pub struct RecordingSms {
    sent: Mutex<Vec<(String, String)>>,
}

#[async_trait]
impl SmsSender for RecordingSms {
    async fn send(&self, to: &Phone, body: &str) -> chatico_core::Result<()> {
        self.sent
            .lock()
            .expect("sms lock")
            .push((to.as_str().to_owned(), body.to_owned()));
        Ok(())
    }
}

impl RecordingSms {
    /// The digits of the last code sent to `phone`.
    pub fn code_for(&self, phone: &str) -> String {
        let sent = self.sent.lock().expect("sms lock");
        let (_, body) = sent
            .iter()
            .rev()
            .find(|(to, _)| to == phone)
            .unwrap_or_else(|| panic!("no SMS to {phone}"));
        body.split(|c: char| !c.is_ascii_digit())
            .find(|w| w.len() == 6)
            .unwrap_or_else(|| panic!("no code in {body:?}"))
            .to_owned()
    }
}

//! An SMS sender that keeps every message, so tests can read OTP codes.

use std::sync::Mutex;

use async_trait::async_trait;
use chatico_core::ids::Phone;
use chatico_core::ports::SmsSender;

/// Records every SMS instead of sending it; [`RecordingSms::code_for`] reads the code back.
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
    /// The digits of the last code sent to `phone`; panics if none was sent.
    pub fn code_for(&self, phone: &str) -> String {
        let sent = self.sent.lock().expect("sms lock");
        let (_, body) = sent
            .iter()
            .rev()
            .find(|(to, _)| to == phone)
            .unwrap_or_else(|| panic!("no SMS to {phone}"));
        code_in(body)
    }
}

/// The six-digit code in an SMS text or a log line that quotes one; panics if there is none.
pub fn code_in(text: &str) -> String {
    text.split(|c: char| !c.is_ascii_digit())
        .find(|w| w.len() == 6)
        .unwrap_or_else(|| panic!("no code in {text:?}"))
        .to_owned()
}

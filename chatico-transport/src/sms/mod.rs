//! SMS senders and provider-owned OTP verifiers, behind the core ports
//! [`SmsSender`](chatico_core::ports::SmsSender) and
//! [`OtpVerifier`](chatico_core::ports::OtpVerifier).
//!
//! - [`ConsoleSmsSender`]: development only; the message goes to the log, nothing is sent.
//! - [`TwilioMessagesSender`] (feature `twilio`): Twilio Programmable Messaging. The core
//!   generates the code, keeps its keyed hash in its OTP cache and sends the text through
//!   this sender.
//! - [`TwilioVerify`] (feature `twilio`): Twilio Verify, which generates, delivers and checks
//!   the code itself; it replaces the core's own verifier, not the sender.
//!
//! Twilio failures map to core errors: 429 → `rate_limited` (with `Retry-After` when given),
//! a 4xx about the number → `invalid_input` on field `phone`, 5xx and timeouts →
//! `unavailable` after bounded retries with exponential backoff; rejected credentials and
//! other 4xx → `internal` (a configuration problem, logged, never shown to users).

mod console;
pub use console::ConsoleSmsSender;

#[cfg(feature = "twilio")]
mod twilio;
pub use chatico_core::retry::RetryPolicy;
#[cfg(feature = "twilio")]
pub use twilio::{
    MessagesFrom, TWILIO_API_BASE, TWILIO_VERIFY_BASE, TwilioAuth, TwilioMessagesConfig, TwilioMessagesSender,
    TwilioOptions, TwilioVerify, TwilioVerifyConfig,
};

/// `+15005550006` → `+1******0006`: enough to correlate logs, not enough to leak numbers.
pub fn mask_phone(phone: &str) -> String {
    let n = phone.chars().count();
    phone
        .chars()
        .enumerate()
        .map(|(i, c)| if i < 2 || i + 4 >= n { c } else { '*' })
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn phones_are_masked_in_logs() {
        assert_eq!(super::mask_phone("+15005550006"), "+1******0006");
        assert_eq!(super::mask_phone("+4412"), "+4412");
    }
}

import { useState } from "preact/hooks";
import type { ChaticoError } from "chatico-wasm";
import { client, login } from "./store";

function message(e: unknown): string {
  const err = e as ChaticoError;
  if (err?.code === "unauthorized") return "That code is not right. Check it and try again.";
  if (err?.code === "rate_limited") return `Too many attempts. Try again in ${Math.ceil((err.retry_after_ms ?? 1000) / 1000)} s.`;
  if (err?.code === "invalid_input") return err.message;
  if (err?.code === "unavailable") return "The server cannot be reached right now.";
  return err?.message ?? String(e);
}

export function Login(props: { onDone: () => void }) {
  const [phone, setPhone] = useState("");
  const [code, setCode] = useState("");
  const [step, setStep] = useState<"phone" | "code">("phone");
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState("");

  async function sendCode(e: Event) {
    e.preventDefault();
    setBusy(true);
    setError("");
    try {
      await client.requestOtp(phone.trim());
      setStep("code");
    } catch (err) {
      setError(message(err));
    } finally {
      setBusy(false);
    }
  }

  async function verify(e: Event) {
    e.preventDefault();
    setBusy(true);
    setError("");
    try {
      await login(phone.trim(), code.trim());
      props.onDone();
    } catch (err) {
      setError(message(err));
    } finally {
      setBusy(false);
    }
  }

  return (
    <div class="login">
      <div class="login-band" />
      <form class="login-card" onSubmit={step === "phone" ? sendCode : verify} data-testid="login-form">
        <div class="brand">
          <svg viewBox="0 0 32 32" width="44" height="44"><circle cx="16" cy="16" r="15" fill="#008069" /><path d="M9 11h14v9H14l-5 4z" fill="#fff" /></svg>
          <h1>ChatiCO</h1>
        </div>
        {step === "phone" ? (
          <>
            <h2>Sign in with your phone</h2>
            <p class="muted">We will text you a 6-digit code.</p>
            <label class="field">
              <span>Phone number</span>
              <input
                data-testid="phone"
                type="tel"
                inputMode="tel"
                autoComplete="tel"
                placeholder="+1 415 555 0100"
                value={phone}
                onInput={(e) => setPhone((e.target as HTMLInputElement).value)}
                required
              />
            </label>
            <button class="primary" disabled={busy || !phone.trim()} data-testid="send-code">
              {busy ? "Sending…" : "Send code"}
            </button>
          </>
        ) : (
          <>
            <h2>Enter the code</h2>
            <p class="muted">
              Sent to <b>{phone}</b>. On a development server the code is printed on the server's console.
            </p>
            <label class="field">
              <span>Code</span>
              <input
                data-testid="code"
                inputMode="numeric"
                autoComplete="one-time-code"
                placeholder="123456"
                maxLength={8}
                value={code}
                onInput={(e) => setCode((e.target as HTMLInputElement).value)}
                required
              />
            </label>
            <button class="primary" disabled={busy || !code.trim()} data-testid="verify">
              {busy ? "Checking…" : "Sign in"}
            </button>
            <button type="button" class="link" onClick={() => setStep("phone")}>
              Use another number
            </button>
          </>
        )}
        {error ? (
          <p class="error" role="alert" data-testid="login-error">
            {error}
          </p>
        ) : null}
      </form>
    </div>
  );
}

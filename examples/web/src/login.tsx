import { useEffect, useState } from "preact/hooks";
import type { ChaticoError } from "chatico-wasm";
import { client, login } from "./store";
import { humanError } from "./ui";

/** The server takes five wrong guesses for one code; the fifth ends it (PROTOCOL.md §2). */
const MAX_GUESSES = 5;
const TOO_MANY = "Too many wrong attempts: this code no longer works. Ask for a new code.";

function message(e: unknown): string {
  const err = e as ChaticoError;
  if (err?.code === "unauthorized") return "That code is not right. Check it and try again.";
  return humanError(e);
}

export function Login(props: { onDone: () => void }) {
  const [phone, setPhone] = useState("");
  const [code, setCode] = useState("");
  const [name, setName] = useState("");
  const [step, setStep] = useState<"phone" | "code" | "name">("phone");
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState("");
  const [wrong, setWrong] = useState(0);
  const [resendAt, setResendAt] = useState(0);
  const [now, setNow] = useState(Date.now());

  useEffect(() => {
    if (resendAt <= now) return;
    const t = window.setTimeout(() => setNow(Date.now()), 250);
    return () => window.clearTimeout(t);
  }, [resendAt, now]);

  async function requestCode() {
    setBusy(true);
    setError("");
    try {
      const r = await client.requestOtp(phone.trim());
      setResendAt(Date.now() + r.resend_after_ms);
      setNow(Date.now());
      setWrong(0);
      setCode("");
      setStep("code");
    } catch (err) {
      setError(message(err));
    } finally {
      setBusy(false);
    }
  }

  async function sendCode(e: Event) {
    e.preventDefault();
    await requestCode();
  }

  async function verify(e: Event) {
    e.preventDefault();
    if (wrong >= MAX_GUESSES) {
      setError(TOO_MANY);
      return;
    }
    setBusy(true);
    setError("");
    try {
      const isNew = await login(phone.trim(), code.trim());
      if (isNew) setStep("name");
      else props.onDone();
    } catch (err) {
      if ((err as ChaticoError)?.code === "unauthorized") {
        const n = wrong + 1;
        setWrong(n);
        setError(n >= MAX_GUESSES ? TOO_MANY : `That code is not right. ${MAX_GUESSES - n} ${MAX_GUESSES - n === 1 ? "try" : "tries"} left.`);
      } else {
        setError(message(err));
      }
    } finally {
      setBusy(false);
    }
  }

  async function saveName(e: Event) {
    e.preventDefault();
    setBusy(true);
    setError("");
    try {
      await client.updateProfile({ display_name: name.trim() });
      props.onDone();
    } catch (err) {
      setError(message(err));
    } finally {
      setBusy(false);
    }
  }

  const wait = Math.max(0, Math.ceil((resendAt - now) / 1000));
  const used = wrong >= MAX_GUESSES;
  return (
    <div class="login">
      <div class="login-band" />
      <form class="login-card" onSubmit={step === "phone" ? sendCode : step === "code" ? verify : saveName} data-testid="login-form">
        <div class="brand">
          <svg viewBox="0 0 32 32" width="44" height="44" aria-hidden="true"><circle cx="16" cy="16" r="15" fill="#008069" /><path d="M9 11h14v9H14l-5 4z" fill="#fff" /></svg>
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
        ) : step === "code" ? (
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
            <button class="primary" disabled={busy || !code.trim() || used} data-testid="verify">
              {busy ? "Checking…" : "Sign in"}
            </button>
            <button type="button" class="link" disabled={busy || wait > 0} onClick={requestCode} data-testid="resend">
              {wait > 0 ? `Resend code in ${wait} s` : "Resend code"}
            </button>
            <button type="button" class="link" onClick={() => setStep("phone")}>
              Use another number
            </button>
          </>
        ) : (
          <>
            <h2>What's your name?</h2>
            <p class="muted">People you chat with will see it. You can change it later in your profile.</p>
            <label class="field">
              <span>Your name</span>
              <input data-testid="welcome-name" value={name} maxLength={64} autoFocus onInput={(e) => setName((e.target as HTMLInputElement).value)} required />
            </label>
            <button class="primary" disabled={busy || !name.trim()} data-testid="welcome-save">
              Continue
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

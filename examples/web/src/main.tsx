// The ChatiCO demo: a chat app on the WASM client SDK (chatico-wasm), served by the example
// server. Everything it shows comes from the SDK's local view; every action is an SDK call.
import { render } from "preact";
import { useEffect, useState } from "preact/hooks";
import { boot, client, inactive, subscribe, takeOver } from "./store";
import { Login } from "./login";
import { Shell } from "./shell";
import "./styles.css";

function useRender(): void {
  const [, set] = useState(0);
  useEffect(() => subscribe(() => set((n) => n + 1)), []);
}

function App(props: { loggedIn: boolean }) {
  useRender();
  const [loggedIn, setLoggedIn] = useState(props.loggedIn);
  const state = client.connectionState();
  useEffect(() => {
    if (state.state === "logged_out") setLoggedIn(false);
  }, [state.state]);
  if (loggedIn && inactive) {
    return (
      <div class="welcome other-tab" data-testid="other-tab">
        <h2>ChatiCO is open in another tab</h2>
        <p>Only one tab at a time can use your session.</p>
        <button class="primary" data-testid="use-here" onClick={() => void takeOver()} autoFocus>
          Use here
        </button>
      </div>
    );
  }
  return loggedIn ? <Shell onLogout={() => setLoggedIn(false)} /> : <Login onDone={() => setLoggedIn(true)} />;
}

// Typing indicators and "last seen" age with time: redraw every second.
async function main() {
  const root = document.getElementById("app")!;
  try {
    const loggedIn = await boot();
    render(<App loggedIn={loggedIn} />, root);
  } catch (e) {
    root.innerHTML = `<div class="boot error">Could not start: ${String(e)}</div>`;
  }
}

void main();

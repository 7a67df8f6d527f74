//! A headless Chromium driven over the DevTools protocol on a pipe
//! (`--remote-debugging-pipe`: JSON messages ending in a NUL byte, read
//! from the browser's fd 4, written to its fd 3). No port, no WebSocket,
//! no crate: `sh` maps the child's stdin/stdout onto fds 3 and 4.
//!
//! A visit records what the page did: console errors, uncaught
//! exceptions, log entries at level error, and every request for a URL
//! that is not the page's own file.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{channel, Receiver};
use std::time::Duration;

use serde_json::{json, Value};

/// Longest wait for one answer: only a guard against a hung browser
/// (nothing is timed).
const PATIENCE: Duration = Duration::from_secs(120);

/// A Chromium executable: `ACTFORGE_CHROMIUM`, else the first of the
/// usual names on PATH.
pub fn find() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("ACTFORGE_CHROMIUM") {
        return Some(PathBuf::from(p));
    }
    let path = std::env::var_os("PATH")?;
    [
        "chromium",
        "chromium-browser",
        "google-chrome",
        "google-chrome-stable",
    ]
    .iter()
    .flat_map(|name| std::env::split_paths(&path).map(move |d| d.join(name)))
    .find(|p| p.is_file())
}

pub struct Browser {
    child: Child,
    to: ChildStdin,
    from: Receiver<Value>,
    next: u64,
    session: String,
    events: Vec<Value>,
    profile: PathBuf,
}

/// What one page did while it loaded, and its screenshot.
pub struct Visit {
    pub png: Vec<u8>,
    pub errors: Vec<String>,
    pub requests: Vec<String>,
}

impl Browser {
    /// Start Chromium with a fresh profile and open one tab of `width` ×
    /// `height` CSS pixels.
    pub fn launch(exe: &Path, width: u32, height: u32) -> Browser {
        let profile = std::env::temp_dir().join(format!(
            "actforge-chromium-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos()
        ));
        std::fs::create_dir_all(&profile).unwrap();
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(r#"exec "$0" "$@" 3<&0 4>&1 </dev/null >/dev/null"#)
            .arg(exe)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--remote-debugging-pipe",
            ])
            .arg(format!("--user-data-dir={}", profile.display()))
            .arg(format!("--window-size={width},{height}"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", exe.display()));
        let to = child.stdin.take().unwrap();
        let mut out = child.stdout.take().unwrap();
        let (tx, from) = channel();
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            let mut chunk = [0u8; 1 << 16];
            while let Ok(n) = out.read(&mut chunk) {
                if n == 0 {
                    break;
                }
                buf.extend_from_slice(&chunk[..n]);
                while let Some(end) = buf.iter().position(|&b| b == 0) {
                    let msg: Vec<u8> = buf.drain(..=end).collect();
                    let Ok(v) = serde_json::from_slice(&msg[..end]) else {
                        continue;
                    };
                    if tx.send(v).is_err() {
                        return;
                    }
                }
            }
        });
        let mut b = Browser {
            child,
            to,
            from,
            next: 0,
            session: String::new(),
            events: Vec::new(),
            profile,
        };
        let target = b.call("Target.createTarget", json!({"url": "about:blank"}), false);
        let attached = b.call(
            "Target.attachToTarget",
            json!({"targetId": target["targetId"], "flatten": true}),
            false,
        );
        b.session = attached["sessionId"].as_str().unwrap().to_string();
        for domain in ["Runtime", "Log", "Network", "Page"] {
            b.call(&format!("{domain}.enable"), json!({}), true);
        }
        b.call(
            "Emulation.setDeviceMetricsOverride",
            json!({"width": width, "height": height, "deviceScaleFactor": 1, "mobile": false}),
            true,
        );
        b
    }

    fn recv(&mut self, waiting_for: &str) -> Value {
        self.from.recv_timeout(PATIENCE).unwrap_or_else(|e| {
            panic!("Chromium sent nothing while waiting for {waiting_for}: {e}")
        })
    }

    /// Send a command (to the tab when `tab`) and return its result;
    /// events that arrive meanwhile are kept.
    pub fn call(&mut self, method: &str, params: Value, tab: bool) -> Value {
        self.next += 1;
        let mut msg = json!({"id": self.next, "method": method, "params": params});
        if tab {
            msg["sessionId"] = json!(self.session);
        }
        let mut bytes = serde_json::to_vec(&msg).unwrap();
        bytes.push(0);
        self.to.write_all(&bytes).unwrap();
        self.to.flush().unwrap();
        loop {
            let v = self.recv(method);
            if v["id"] == json!(self.next) {
                if let Some(e) = v.get("error") {
                    panic!("{method}: {e}");
                }
                return v["result"].clone();
            }
            self.events.push(v);
        }
    }

    /// Load `file`, wait for its load event, screenshot the viewport.
    pub fn visit(&mut self, file: &Path) -> Visit {
        self.events.clear();
        let url = format!("file://{}", file.canonicalize().unwrap().display());
        self.call("Page.navigate", json!({"url": url}), true);
        while !self
            .events
            .iter()
            .any(|e| e["method"] == "Page.loadEventFired")
        {
            let v = self.recv("Page.loadEventFired");
            self.events.push(v);
        }
        let shot = self.call("Page.captureScreenshot", json!({"format": "png"}), true);
        let png = base64(shot["data"].as_str().unwrap());
        // Anything the page logged after its load event arrives before
        // this answer.
        self.eval("1");
        Visit {
            png,
            errors: self.errors(),
            requests: self.requests(&url),
        }
    }

    /// Turn the page's own scripts off or on (DevTools' evaluation still
    /// works), for the next visit.
    pub fn scripts(&mut self, on: bool) {
        self.call(
            "Emulation.setScriptExecutionDisabled",
            json!({"value": !on}),
            true,
        );
    }

    /// The value of a JavaScript expression in the tab.
    pub fn eval(&mut self, expr: &str) -> Value {
        let r = self.call(
            "Runtime.evaluate",
            json!({"expression": expr, "returnByValue": true}),
            true,
        );
        if let Some(e) = r.get("exceptionDetails") {
            panic!("{expr}: {e}");
        }
        r["result"]["value"].clone()
    }

    fn errors(&self) -> Vec<String> {
        let mut out = Vec::new();
        for e in &self.events {
            let p = &e["params"];
            match e["method"].as_str().unwrap_or("") {
                "Runtime.consoleAPICalled" if p["type"] == "error" || p["type"] == "assert" => {
                    out.push(format!("console.{}: {}", p["type"], p["args"]))
                }
                "Runtime.exceptionThrown" => {
                    out.push(format!("exception: {}", p["exceptionDetails"]))
                }
                "Log.entryAdded" if p["entry"]["level"] == "error" => {
                    out.push(format!("log: {}", p["entry"]))
                }
                _ => {}
            }
        }
        out
    }

    fn requests(&self, page: &str) -> Vec<String> {
        self.events
            .iter()
            .filter(|e| e["method"] == "Network.requestWillBeSent")
            .filter_map(|e| e["params"]["request"]["url"].as_str())
            .filter(|u| *u != page && !u.starts_with("data:") && !u.starts_with("about:"))
            .map(String::from)
            .collect()
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        self.next += 1;
        let msg = json!({"id": self.next, "method": "Browser.close", "params": {}});
        let mut bytes = serde_json::to_vec(&msg).unwrap();
        bytes.push(0);
        let _ = self.to.write_all(&bytes);
        // Closing tears the browser down; wait for it, then kill what is left.
        let _ = self.from.recv_timeout(Duration::from_secs(10));
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}

/// Standard base64 (the screenshot).
fn base64(text: &str) -> Vec<u8> {
    let value = |c: u8| -> u32 {
        match c {
            b'A'..=b'Z' => (c - b'A') as u32,
            b'a'..=b'z' => (c - b'a') as u32 + 26,
            b'0'..=b'9' => (c - b'0') as u32 + 52,
            b'+' => 62,
            b'/' => 63,
            _ => panic!("not base64: {c}"),
        }
    };
    let bytes: Vec<u8> = text.bytes().filter(|&c| c != b'=').collect();
    let mut out = Vec::with_capacity(bytes.len() * 3 / 4);
    for chunk in bytes.chunks(4) {
        let mut acc = 0u32;
        for (i, &c) in chunk.iter().enumerate() {
            acc |= value(c) << (18 - 6 * i);
        }
        let n = chunk.len() * 6 / 8;
        for i in 0..n {
            out.push((acc >> (16 - 8 * i)) as u8);
        }
    }
    out
}

/// Share of pixels unlike the most common colour, and the number of
/// distinct colours, of a PNG.
pub fn ink(png: &[u8]) -> (f64, usize, (u32, u32)) {
    let decoder = png::Decoder::new(png);
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).unwrap();
    let channels = info.color_type.samples();
    let mut counts = std::collections::HashMap::new();
    for px in buf[..info.buffer_size()].chunks(channels) {
        *counts.entry(px.to_vec()).or_insert(0usize) += 1;
    }
    let total: usize = counts.values().sum();
    let top = counts.values().copied().max().unwrap_or(0);
    (
        1.0 - top as f64 / total.max(1) as f64,
        counts.len(),
        (info.width, info.height),
    )
}

#[test]
fn base64_decodes() {
    assert_eq!(base64("aGVsbG8="), b"hello");
    assert_eq!(base64("aGk="), b"hi");
    assert_eq!(base64("YWJj"), b"abc");
}

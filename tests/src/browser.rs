//! A real headless browser for the dashboard tests: Debian's `chromium`, driven over
//! WebDriver by `chromedriver` (package `chromium-driver`) through `fantoccini`.
//!
//! chromedriver listens on a port of its own choosing on loopback (`--port=0`; the port is
//! read from its first line of output). Chromium runs headless with a fresh profile in a
//! temporary directory and without the background services that would reach out to the
//! network. Both processes (chromedriver's whole process group) are killed when the
//! [`Browser`] is dropped.

use std::io::{BufRead as _, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::elements::Element;
use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;

use crate::{installed, within};

/// How often the waits here look again.
const POLL: Duration = Duration::from_millis(50);

const WHY: &str = "the dashboard tests drive a real browser";
const INSTALL: &str = "apt install chromium chromium-driver";

/// A headless Chromium and its driver.
#[derive(Debug)]
pub struct Browser {
    /// The WebDriver session.
    pub client: Client,
    driver: Child,
    _profile: tempfile::TempDir,
}

impl Browser {
    /// Starts chromedriver and a headless Chromium session (1280×900).
    ///
    /// # Panics
    /// With a clear message when `chromium` or `chromedriver` is not installed
    /// (`apt install chromium chromium-driver`), or when either does not start.
    pub async fn start() -> Self {
        let chromium = installed("chromium", WHY, INSTALL);
        let driver_path = installed("chromedriver", WHY, INSTALL);
        let mut command = Command::new(driver_path);
        // Its own process group, which the browser it starts joins: dropping the Browser
        // kills them all, leaving no Chromium behind.
        #[cfg(unix)]
        std::os::unix::process::CommandExt::process_group(&mut command, 0);
        let mut driver = command
            .arg("--port=0")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver");
        let stdout = driver.stdout.take().expect("chromedriver stdout");
        let port = tokio::task::spawn_blocking(move || driver_port(stdout));
        let port = within("chromedriver starts", port).await.expect("join");
        let profile = tempfile::tempdir().expect("profile dir");
        let client = within("a browser session opens", async {
            ClientBuilder::new(HttpConnector::new())
                .capabilities(capabilities(&chromium, profile.path()))
                .connect(&format!("http://127.0.0.1:{port}"))
                .await
                .expect("WebDriver session")
        })
        .await;
        Self {
            client,
            driver,
            _profile: profile,
        }
    }

    /// Opens `url` (a page load, as typing it in the address bar).
    pub async fn open(&self, url: &str) {
        within(&format!("{url} loads"), self.client.goto(url))
            .await
            .expect("navigate");
    }

    /// The first element matching `css` once there is one.
    pub async fn wait(&self, css: &str) -> Element {
        within(&format!("an element {css:?} appears"), async {
            loop {
                if let Ok(e) = self.client.find(Locator::Css(css)).await {
                    return e;
                }
                tokio::time::sleep(POLL).await;
            }
        })
        .await
    }

    /// Waits until `css` matches an element whose attribute `attr` satisfies `ok`; returns
    /// that attribute's value.
    pub async fn wait_attr(&self, css: &str, attr: &str, ok: impl Fn(&str) -> bool) -> String {
        within(&format!("{css:?} with a fitting {attr}"), async {
            loop {
                if let Ok(e) = self.client.find(Locator::Css(css)).await {
                    if let Ok(Some(v)) = e.attr(attr).await {
                        if ok(&v) {
                            return v;
                        }
                    }
                }
                tokio::time::sleep(POLL).await;
            }
        })
        .await
    }

    /// Waits until the text of the first element matching `css` satisfies `ok`.
    pub async fn wait_text(&self, css: &str, ok: impl Fn(&str) -> bool) -> String {
        within(&format!("{css:?} with the expected text"), async {
            loop {
                if let Ok(e) = self.client.find(Locator::Css(css)).await {
                    if let Ok(t) = e.text().await {
                        if ok(&t) {
                            return t;
                        }
                    }
                }
                tokio::time::sleep(POLL).await;
            }
        })
        .await
    }

    /// Clicks the first element matching `css`.
    pub async fn click(&self, css: &str) {
        let e = self.wait(css).await;
        e.click().await.expect("click");
    }

    /// Whether any element matches `css` now.
    pub async fn has(&self, css: &str) -> bool {
        let found = self.client.find_all(Locator::Css(css)).await;
        found.is_ok_and(|v| !v.is_empty())
    }

    /// Runs `script` in the page and returns what it returns.
    pub async fn eval(&self, script: &str) -> serde_json::Value {
        self.client
            .execute(script, Vec::new())
            .await
            .expect("script runs")
    }

    /// A PNG of the window.
    pub async fn screenshot(&self) -> Vec<u8> {
        self.client.screenshot().await.expect("screenshot")
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        #[cfg(unix)]
        {
            let group = format!("-{}", self.driver.id());
            let _ = Command::new("kill").args(["-KILL", "--", &group]).status();
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

/// The `goog:chromeOptions` for a headless, offline, throw-away Chromium.
fn capabilities(chromium: &Path, profile: &Path) -> fantoccini::wd::Capabilities {
    let args = [
        "--headless=new".to_string(),
        "--no-sandbox".into(),
        "--disable-gpu".into(),
        "--disable-dev-shm-usage".into(),
        "--no-first-run".into(),
        "--disable-background-networking".into(),
        "--disable-component-update".into(),
        "--disable-sync".into(),
        "--disable-extensions".into(),
        "--window-size=1280,900".into(),
        format!("--user-data-dir={}", profile.display()),
    ];
    let caps = serde_json::json!({
        "browserName": "chrome",
        "goog:chromeOptions": { "binary": chromium, "args": args },
    });
    match caps {
        serde_json::Value::Object(map) => map,
        _ => unreachable!("a JSON object"),
    }
}

/// Reads chromedriver's output until it says which port it listens on.
fn driver_port(stdout: std::process::ChildStdout) -> u16 {
    let lines = BufReader::new(stdout).lines();
    for line in lines.map_while(Result::ok) {
        if let Some(rest) = line.split("started successfully on port ").nth(1) {
            let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
            return digits.parse().expect("a port number");
        }
    }
    panic!("chromedriver exited before it was ready");
}

//! The labelling page in a real browser: headless Chromium driven through WebDriver (chromedriver, fantoccini).
//!
//! Needs Debian's `chromium` and `chromium-driver` (`apt-get install -y chromium chromium-driver`; `.ci/run`
//! installs them on CI). Without them these tests FAIL with a message saying so; set `REBEL_SKIP_BROWSER=1` to
//! skip them instead.

mod common;
mod label_support;

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::actions::{InputSource, KeyAction, KeyActions};
use fantoccini::key::Key;
use fantoccini::{Client, ClientBuilder, Locator};
use label_support::{true_returns, Server};
use rebel_agents::preferences::PreferenceDataset;
use serde_json::json;

fn which(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")?.to_str()?.split(':').map(|d| PathBuf::from(d).join(name)).find(|p| p.is_file())
}

/// Chromium and chromedriver, or `None` when REBEL_SKIP_BROWSER=1 and one is missing (panics otherwise).
fn browser_tools() -> Option<(PathBuf, PathBuf)> {
    let chromium = which("chromium").or_else(|| which("chromium-browser"));
    let driver = which("chromedriver");
    match (chromium, driver) {
        (Some(c), Some(d)) => Some((c, d)),
        _ if std::env::var("REBEL_SKIP_BROWSER").as_deref() == Ok("1") => {
            eprintln!("REBEL_SKIP_BROWSER=1 and chromium/chromedriver are missing: browser test skipped");
            None
        }
        _ => panic!(
            "the browser tests need headless Chromium and chromedriver on PATH: \
             `apt-get install -y chromium chromium-driver` (or set REBEL_SKIP_BROWSER=1 to skip them)"
        ),
    }
}

/// A chromedriver process on a free port.
struct Driver {
    child: Child,
    url: String,
    chromium: PathBuf,
    profiles: Vec<tempfile::TempDir>,
}

impl Driver {
    fn start(chromium: PathBuf, driver: PathBuf) -> Driver {
        let port = label_support::fixed_port();
        let child = Command::new(driver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver");
        let t0 = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(t0.elapsed() < Duration::from_secs(20), "chromedriver did not listen on port {port}");
            std::thread::sleep(Duration::from_millis(50));
        }
        Driver { child, url: format!("http://127.0.0.1:{port}"), chromium, profiles: vec![] }
    }

    /// A new browser session (its own Chromium with a fresh profile).
    async fn session(&mut self) -> Client {
        let profile = tempfile::tempdir().unwrap();
        let args = vec![
            "--headless".to_string(),
            "--no-sandbox".into(),
            "--disable-gpu".into(),
            "--disable-quic".into(),
            "--no-first-run".into(),
            "--disable-background-networking".into(),
            "--disable-component-update".into(),
            "--disable-sync".into(),
            "--disable-dev-shm-usage".into(),
            "--window-size=1200,800".into(),
            format!("--user-data-dir={}", profile.path().display()),
        ];
        self.profiles.push(profile);
        let caps = json!({"goog:chromeOptions": {"binary": self.chromium, "args": args}});
        let serde_json::Value::Object(caps) = caps else { unreachable!() };
        ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(caps)
            .connect(&self.url)
            .await
            .expect("a WebDriver session with headless Chromium")
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The page's `data-pair` once it shows a pair other than `prev` (or "done") and is not busy.
async fn shown_pair(c: &Client, prev: &str) -> String {
    let t0 = Instant::now();
    loop {
        let body = c.find(Locator::Css("body")).await.unwrap();
        let pair = body.attr("data-pair").await.unwrap().unwrap_or_default();
        let busy = body.attr("data-busy").await.unwrap().unwrap_or_default();
        if !pair.is_empty() && pair != prev && busy == "0" {
            return pair;
        }
        assert!(t0.elapsed() < Duration::from_secs(20), "the page still shows pair '{pair}' (busy {busy})");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The page's `data-pair` now, or "" while it is busy.
async fn current(c: &Client) -> String {
    let body = c.find(Locator::Css("body")).await.unwrap();
    if body.attr("data-busy").await.unwrap().as_deref() != Some("0") {
        return String::new();
    }
    body.attr("data-pair").await.unwrap().unwrap_or_default()
}

async fn press(c: &Client, key: char) {
    let keys = KeyActions::new("keyboard".into()).then(KeyAction::Down { value: key }).then(KeyAction::Up { value: key });
    c.perform_actions(keys).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_labeller_answers_20_pairs_by_true_return_and_rm_train_accepts_the_file() {
    let Some((chromium, driver)) = browser_tools() else { return };
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("human.safetensors");
    let s = Server::start(&out, &["--policy", "random", "--pairs", "20", "--segment-len", "10", "--test-hook"]);
    let returns = true_returns(&s).await;
    let mut d = Driver::start(chromium, driver);
    let c = d.session().await;
    c.goto(&s.page()).await.unwrap();
    let mut prev = String::new();
    let mut expected = vec![None; 20];
    for k in 0..20 {
        let pair: usize = shown_pair(&c, &prev).await.parse().expect("a pair id");
        assert!(expected[pair].is_none(), "pair {pair} shown twice");
        let (ra, rb) = returns[pair];
        let left = ra > rb;
        expected[pair] = Some(if left { 1.0f32 } else { 0.0 });
        if k % 3 == 2 {
            // the keyboard: ← / →
            press(&c, if left { Key::Left.into() } else { Key::Right.into() }).await;
        } else {
            c.find(Locator::Id(if left { "left" } else { "right" })).await.unwrap().click().await.unwrap();
        }
        prev = pair.to_string();
    }
    assert_eq!(shown_pair(&c, &prev).await, "done");
    let counter = c.find(Locator::Id("counter")).await.unwrap().text().await.unwrap();
    assert!(counter.contains("20 answered") && counter.contains("0 left of 20"), "{counter}");
    c.close().await.unwrap();

    let ds = PreferenceDataset::load(&out).unwrap();
    let expected: Vec<f32> = expected.into_iter().map(|e| e.expect("every pair answered")).collect();
    assert_eq!(ds.labels(), expected, "the dataset holds exactly the 20 answers, in pair order");
    assert_eq!(ds.meta.queries, 20);
    for (p, (ra, rb)) in ds.pairs.iter().zip(&returns) {
        // the same pieces (up to the last bit lost in the hook's JSON)
        assert!((p.a.true_return() - ra).abs() < 1e-9 && (p.b.true_return() - rb).abs() < 1e-9);
    }
    let model = dir.path().join("rm.safetensors");
    let o = common::swimmer(&[
        "rm", "train", "--prefs", out.to_str().unwrap(), "--out", model.to_str().unwrap(),
        "--members", "1", "--epochs", "5",
    ]);
    assert!(o.status.success(), "rm train refused the labels: {}", common::stderr(&o));
    assert!(model.is_file());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_browser_sessions_at_once_never_get_the_same_pair() {
    let Some((chromium, driver)) = browser_tools() else { return };
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("two.safetensors");
    let s = Server::start(&out, &["--policy", "random", "--pairs", "8", "--segment-len", "10"]);
    let mut d = Driver::start(chromium, driver);
    let (c1, c2) = (d.session().await, d.session().await);
    c1.goto(&s.page()).await.unwrap();
    c2.goto(&s.page()).await.unwrap();
    let (mut p1, mut p2) = (shown_pair(&c1, "").await, shown_pair(&c2, "").await);
    assert_ne!(p1, p2, "two labellers see the same pair at once");
    let (mut seen1, mut seen2) = (vec![p1.clone()], vec![p2.clone()]);
    // answer in turns until both pages are done; a page whose remaining pairs are all with the other labeller
    // shows "wait" and polls
    let t0 = Instant::now();
    while p1 != "done" || p2 != "done" {
        assert!(t0.elapsed() < Duration::from_secs(60), "the pages did not finish: {p1}, {p2}");
        for (c, p, seen, button) in [(&c1, &mut p1, &mut seen1, "left"), (&c2, &mut p2, &mut seen2, "right")] {
            if *p == "wait" {
                let now = current(c).await;
                if now != "wait" && !now.is_empty() {
                    *p = now;
                    seen.push(p.clone());
                }
            } else if *p != "done" {
                c.find(Locator::Id(button)).await.unwrap().click().await.unwrap();
                *p = shown_pair(c, p).await;
                seen.push(p.clone());
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let ids = |v: &Vec<String>| v.iter().filter(|p| p.parse::<usize>().is_ok()).cloned().collect::<Vec<_>>();
    let (a, b) = (ids(&seen1), ids(&seen2));
    let (sa, sb): (BTreeSet<_>, BTreeSet<_>) = (a.iter().cloned().collect(), b.iter().cloned().collect());
    assert_eq!(sa.len(), a.len(), "a session got a pair twice: {a:?}");
    assert!(sa.is_disjoint(&sb), "served to both: {a:?} and {b:?}");
    assert_eq!(sa.len() + sb.len(), 8);
    c1.close().await.unwrap();
    c2.close().await.unwrap();
    let ds = PreferenceDataset::load(&out).unwrap();
    assert_eq!(ds.len(), 8);
    assert_eq!(ds.labels().iter().filter(|l| **l == 1.0).count(), a.len());
}

/// `experiment --teacher page` on a fixed port: the page opened once follows the rounds. After round 0's last
/// answer it says done, the server goes away while REBEL trains, and round 1's pairs appear on the same page.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_follows_an_experiments_rounds() {
    let Some((chromium, driver)) = browser_tools() else { return };
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("exp");
    let port = label_support::fixed_port().to_string();
    let mut args = vec![
        "experiment", "--out", out.to_str().unwrap(), "--query", "entropy", "--rounds", "2", "--labels-per-round", "3",
        "--teacher", "page", "--port", &port, "--test-hook", "--set", "train.env_steps=4000", "--set", "query.pool_factor=2",
    ];
    args.extend_from_slice(common::TINY_EXPERIMENT);
    let mut s = Server::start_swimmer(&args);
    let mut d = Driver::start(chromium, driver);
    let c = d.session().await;
    c.goto(&s.page()).await.unwrap();
    for round in 0..2 {
        let returns = true_returns(&s).await;
        let mut prev = String::new();
        for _ in 0..3 {
            // round 1's first pair comes after REBEL's part of round 0: the page polls for it
            let t0 = Instant::now();
            let pair = loop {
                let p = current(&c).await;
                if !p.is_empty() && p != prev && p != "done" && p != "wait" {
                    break p;
                }
                assert!(t0.elapsed() < Duration::from_secs(180), "round {round}: the page shows '{p}'");
                tokio::time::sleep(Duration::from_millis(50)).await;
            };
            let (ra, rb) = returns[pair.parse::<usize>().unwrap()];
            c.find(Locator::Id(if ra > rb { "left" } else { "right" })).await.unwrap().click().await.unwrap();
            prev = pair;
        }
        assert_eq!(shown_pair(&c, &prev).await, "done", "round {round} ends with its last answer");
        if round == 0 {
            assert!(s.wait_listening(), "round 1 serves its pairs");
        }
    }
    let (ok, stdout) = s.finish();
    assert!(ok, "{stdout}");
    c.close().await.unwrap();
    let e: serde_json::Value = serde_json::from_slice(&std::fs::read(out.join("experiment.json")).unwrap()).unwrap();
    assert_eq!(e["rounds"][1]["labels_total"], 6);
    assert_eq!(PreferenceDataset::load(out.join("prefs.safetensors")).unwrap().len(), 6);
}

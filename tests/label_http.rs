//! The labelling server over plain HTTP: refused requests (4xx, nothing changes), undo, the token, `kill -9`
//! in the middle of labelling (every acknowledged label is in the dataset file) and resuming after it.

mod common;
mod label_support;

use std::collections::BTreeMap;
use std::path::Path;

use label_support::{get, post, true_returns, Server};
use rebel_agents::preferences::PreferenceDataset;
use rebel_label::{pairs_path, PairFile};
use serde_json::{json, Value};

/// Which pair (by id) each dataset pair is, matched on piece a's observations against the session's pair file.
fn dataset_by_pair(out: &Path) -> BTreeMap<usize, f32> {
    let pairs = PairFile::load(&pairs_path(out)).unwrap();
    let ds = PreferenceDataset::load(out).unwrap();
    ds.pairs
        .iter()
        .map(|p| {
            let id = pairs.pairs.iter().position(|c| c.a.obs == p.a.obs && c.b.obs == p.b.obs).expect("a known pair");
            (id, p.label)
        })
        .collect()
}

async fn status(s: &Server) -> Value {
    get(&s.url("/api/status", "")).await.1["counts"].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_get_4xx_and_change_nothing_undo_withdraws() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("prefs.safetensors");
    let s = Server::start(&out, &["--policy", "random", "--pairs", "4", "--segment-len", "8", "--token", "sekrit-123"]);
    assert_eq!(s.query, "?token=sekrit-123");
    // token: missing or wrong → 401, also for the page
    let no_token = format!("{}/api/next?labeller=x", s.base);
    assert_eq!(get(&no_token).await.0, 401);
    assert_eq!(get(&format!("{no_token}&token=sekrit-124")).await.0, 401);
    assert_eq!(get(&format!("{}/", s.base)).await.0, 401);
    let (st, page) = super_get_text(&s.page()).await;
    assert_eq!(st, 200);
    assert!(page.contains("Which clip is better?"));
    // the test hook is off
    assert_eq!(get(&s.url("/api/test/returns", "")).await.0, 404);

    let (st, n) = get(&s.url("/api/next", "labeller=x")).await;
    assert_eq!(st, 200, "{n}");
    let (pair, lease) = (n["pair"].as_u64().unwrap(), n["lease"].as_str().unwrap().to_string());
    assert_eq!(n["a"].as_array().unwrap().len(), 9, "8 steps → 9 frames");
    assert!(!n["a"][0]["c"].as_array().unwrap().is_empty(), "the frames hold capsules");
    let answer = s.url("/api/answer", "");
    let ok = json!({"pair": pair, "lease": lease, "value": "left", "labeller": "x"});
    let mut bad = vec![];
    bad.push((404, json!({"pair": 99, "lease": lease, "value": "left", "labeller": "x"})));
    bad.push((400, json!({"pair": pair, "lease": lease, "value": "better", "labeller": "x"})));
    bad.push((400, json!({"pair": pair, "lease": lease, "value": "left"})));
    bad.push((400, json!({"pair": pair, "lease": lease, "value": "left", "labeller": "x y"})));
    bad.push((400, json!({"pair": -1, "lease": lease, "value": "left", "labeller": "x"})));
    bad.push((400, json!({"pair": pair, "value": "left", "labeller": "x"})));
    bad.push((409, json!({"pair": pair, "lease": "0123", "value": "left", "labeller": "x"})));
    bad.push((409, json!({"pair": (pair + 1) % 4, "lease": lease, "value": "left", "labeller": "x"})));
    for (code, body) in &bad {
        let (st, v) = post(&answer, body).await;
        assert_eq!(st, *code, "{body} → {v}");
        assert!(v["error"].as_str().is_some_and(|e| !e.is_empty()), "{v}");
    }
    assert_eq!(post(&answer, &Value::String("left".into())).await.0, 400);
    assert_eq!(label_support::http("POST", &answer, Some("{not json")).await.unwrap().0, 400);
    assert_eq!(status(&s).await["given"], 0, "refused requests change nothing");
    assert!(!out.exists());

    let (st, v) = post(&answer, &ok).await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["undo_pair"], pair);
    assert_eq!(dataset_by_pair(&out), BTreeMap::from([(pair as usize, 1.0)]));
    // a replay: 409, names the recorded answer, changes nothing
    let (st, v) = post(&answer, &json!({"pair": pair, "lease": lease, "value": "right", "labeller": "x"})).await;
    assert_eq!((st, v["answered"].as_str()), (409, Some("left")));
    assert_eq!(dataset_by_pair(&out), BTreeMap::from([(pair as usize, 1.0)]));

    // undo: must name the labeller's last answer; a replayed undo is refused
    let undo = s.url("/api/undo", "");
    assert_eq!(post(&undo, &json!({"pair": pair, "labeller": "y"})).await.0, 409);
    assert_eq!(post(&undo, &json!({"pair": 7, "labeller": "x"})).await.0, 404);
    let (st, u) = post(&undo, &json!({"pair": pair, "labeller": "x"})).await;
    assert_eq!((st, u["pair"].as_u64()), (200, Some(pair)), "{u}");
    assert_eq!(post(&undo, &json!({"pair": pair, "labeller": "x"})).await.0, 409);
    assert!(!out.exists(), "no label left");
    assert_eq!(status(&s).await["given"], 0);
    // the withdrawn pair is answered again with the new lease
    let again = json!({"pair": pair, "lease": u["lease"], "value": "equal", "labeller": "x"});
    assert_eq!(post(&answer, &again).await.0, 200);
    assert_eq!(dataset_by_pair(&out), BTreeMap::from([(pair as usize, 0.5)]));
}

async fn super_get_text(url: &str) -> (u16, String) {
    use http_body_util::BodyExt;
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<http_body_util::Empty<hyper::body::Bytes>>();
    let r = client.get(url.parse().unwrap()).await.unwrap();
    let st = r.status().as_u16();
    let b = r.into_body().collect().await.unwrap().to_bytes();
    (st, String::from_utf8_lossy(&b).into_owned())
}

#[test]
fn a_public_host_needs_a_token() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("p.safetensors");
    let o = common::swimmer(&["label", "serve", "--policy", "random", "--host", "0.0.0.0", "--out", out.to_str().unwrap()]);
    assert!(!o.status.success());
    let e = common::stderr(&o);
    assert!(e.contains("--token"), "{e}");
    let o = common::swimmer(&["label", "serve", "--from-pairs", out.to_str().unwrap(), "--out", out.to_str().unwrap()]);
    assert!(!o.status.success());
    assert!(common::stderr(&o).contains("cannot read pair file"), "{}", common::stderr(&o));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_mid_labelling_keeps_every_acknowledged_label_and_restart_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("prefs.safetensors");
    let args = ["--policy", "random", "--pairs", "24", "--segment-len", "8", "--seed", "3", "--test-hook"];
    let mut s = Server::start(&out, &args);
    let returns = true_returns(&s).await;
    assert_eq!(returns.len(), 24);
    // two labellers answer as fast as they can, concurrently; the server is killed once 6 answers are acknowledged
    let acked = std::sync::Arc::new(std::sync::Mutex::new(BTreeMap::<usize, String>::new()));
    let mut tasks = vec![];
    for who in ["p", "q"] {
        let (next, answer, acked) = (s.url("/api/next", &format!("labeller={who}")), s.url("/api/answer", ""), acked.clone());
        tasks.push(tokio::spawn(async move {
            for k in 0.. {
                let Ok((200, n)) = label_support::http("GET", &next, None).await else { return };
                let Some(pair) = n["pair"].as_u64() else { return };
                let value = ["left", "right", "equal", "skip"][(pair as usize + k) % 4];
                let body = json!({"pair": pair, "lease": n["lease"], "value": value, "labeller": who}).to_string();
                match label_support::http("POST", &answer, Some(&body)).await {
                    Ok((200, _)) => {
                        acked.lock().unwrap().insert(pair as usize, value.to_string());
                    }
                    _ => return,
                }
            }
        }));
    }
    while acked.lock().unwrap().len() < 6 {
        tokio::time::sleep(std::time::Duration::from_millis(1)).await;
    }
    s.kill9();
    for t in tasks {
        t.await.unwrap();
    }
    let acked = acked.lock().unwrap().clone();
    assert!(acked.len() >= 6 && acked.len() < 24, "{acked:?}");
    let label = |v: &str| match v {
        "left" => Some(1.0f32),
        "right" => Some(0.0),
        "equal" => Some(0.5),
        _ => None,
    };
    let in_file = dataset_by_pair(&out);
    for (pair, v) in &acked {
        match label(v) {
            Some(l) => assert_eq!(in_file.get(pair), Some(&l), "acknowledged label of pair {pair} lost: {in_file:?}"),
            None => assert!(!in_file.contains_key(pair), "a can't-tell answer is not a label"),
        }
    }
    // at most the one answer in flight at the kill may be recorded without its acknowledgement
    let extra = in_file.keys().filter(|p| !acked.contains_key(p)).count();
    assert!(extra <= 1, "{in_file:?} vs {acked:?}");

    // restart: the answered pairs are not served again; the rest are, and the file ends with every label
    let s = Server::start(&out, &args);
    let before = status(&s).await;
    assert!(before["given"].as_u64().unwrap() as usize >= acked.len());
    let mut served = vec![];
    loop {
        let (_, n) = get(&s.url("/api/next", "labeller=r")).await;
        let Some(pair) = n["pair"].as_u64() else { break };
        assert!(!acked.contains_key(&(pair as usize)), "pair {pair} was answered before the kill");
        served.push(pair as usize);
        let (ra, rb) = returns[pair as usize];
        let v = if ra > rb { "left" } else { "right" };
        let (st, r) = post(&s.url("/api/answer", ""), &json!({"pair": pair, "lease": n["lease"], "value": v, "labeller": "r"})).await;
        assert_eq!(st, 200, "{r}");
    }
    assert_eq!(served.len() as u64, 24 - before["given"].as_u64().unwrap());
    let c = status(&s).await;
    assert_eq!((c["given"].as_u64(), c["left"].as_u64()), (Some(24), Some(0)));
    let ds = PreferenceDataset::load(&out).unwrap();
    assert_eq!(ds.meta.queries, 24);
    assert_eq!(ds.len() as u64, c["labelled"].as_u64().unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_while_labelling_refuses_clearly_and_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("prefs.safetensors");
    let args = ["--policy", "random", "--pairs", "24", "--segment-len", "8", "--seed", "5"];
    let answer = |s: &Server| {
        let (next, post_to) = (s.url("/api/next", "labeller=d"), s.url("/api/answer", ""));
        async move {
            let (_, n) = get(&next).await;
            let body = json!({"pair": n["pair"], "lease": n["lease"], "value": "left", "labeller": "d"});
            post(&post_to, &body).await
        }
    };
    // six labels on a disk with room
    let mut s = Server::start(&out, &args);
    for _ in 0..6 {
        assert_eq!(answer(&s).await.0, 200);
    }
    s.kill9();
    let six = std::fs::read(&out).unwrap();
    let journal = dir.path().join("prefs.safetensors.journal");
    let per_label = six.len() as u64 / 6;

    // the dataset file can no longer grow: the 7th answer is journalled, the rewrite fails clearly
    let mut s = Server::start_limited(&out, &args, Some(six.len() as u64 + per_label / 2));
    let (code, body) = answer(&s).await;
    assert_eq!(code, 500, "{body}");
    let msg = body.to_string();
    assert!(msg.contains("File too large") && msg.contains("free space") && msg.contains("in the journal"), "{msg}");
    assert!(std::fs::read(&out).unwrap() == six, "the previous dataset is intact");
    s.kill9();

    // a restart with room writes the 7th label into the dataset
    let mut s = Server::start(&out, &args);
    assert_eq!(dataset_by_pair(&out).len(), 7);
    s.kill9();

    // now the journal cannot grow either: the answer is refused and not recorded
    let j = std::fs::metadata(&journal).unwrap().len();
    let mut s = Server::start_limited(&out, &args, Some(j + 8));
    let (code, body) = answer(&s).await;
    assert_eq!(code, 500, "{body}");
    assert!(body.to_string().contains("could not be recorded"), "{body}");
    assert_eq!(std::fs::metadata(&journal).unwrap().len(), j, "no partial line left in the journal");
    s.kill9();

    // room again: the 7 acknowledged labels are all there, the refused one is not, and labelling goes on
    let s = Server::start(&out, &args);
    assert_eq!(status(&s).await["given"], 7);
    assert_eq!(dataset_by_pair(&out).len(), 7);
    assert_eq!(answer(&s).await.0, 200);
    assert_eq!(dataset_by_pair(&out).len(), 8);
}

/// Answers up to `n` of the pairs the server `s` leases to labeller `who`, each by the higher true return
/// (`returns`), the first `skips` of them "can't tell"; returns `pair → label` of the labelled ones.
async fn answer_by_return(s: &Server, returns: &[(f64, f64)], n: usize, skips: usize, who: &str) -> BTreeMap<usize, f32> {
    let mut labels = BTreeMap::new();
    for k in 0..n {
        let (st, q) = get(&s.url("/api/next", &format!("labeller={who}"))).await;
        assert_eq!(st, 200, "{q}");
        let Some(pair) = q["pair"].as_u64() else { break };
        let (ra, rb) = returns[pair as usize];
        let (v, l) = if k < skips { ("skip", None) } else if ra > rb { ("left", Some(1.0)) } else { ("right", Some(0.0)) };
        let (st, r) = post(&s.url("/api/answer", ""), &json!({"pair": pair, "lease": q["lease"], "value": v, "labeller": who})).await;
        assert_eq!(st, 200, "{r}");
        if let Some(l) = l {
            labels.insert(pair as usize, l);
        }
    }
    labels
}

/// `experiment --teacher page`: each round serves its top-ranked pairs on the page until every one is answered
/// (here by HTTP requests that pick the higher true return); a `kill -9` in the middle of round 0 loses no answer
/// and the same command continues the round; "can't tell" gives no label; a rerun of the finished experiment asks
/// nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn experiment_rounds_ask_a_person_on_the_page_and_a_killed_round_continues() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("exp");
    let mut args = vec![
        "experiment", "--out", out.to_str().unwrap(), "--query", "disagreement", "--rounds", "2", "--labels-per-round", "4",
        "--teacher", "page", "--port", "0", "--test-hook", "--set", "train.env_steps=4000", "--set", "query.pool_factor=3",
    ];
    args.extend_from_slice(common::TINY_EXPERIMENT);
    let mut s = Server::start_swimmer(&args);
    let r0 = true_returns(&s).await;
    assert_eq!(r0.len(), 4, "the round's K pairs are served");
    let mut want0 = answer_by_return(&s, &r0, 2, 0, "a").await;
    s.kill9();
    let ds0 = out.join("round0/prefs.safetensors");
    assert_eq!(dataset_by_pair(&ds0), want0, "every acknowledged answer is in the round's dataset after kill -9");

    let mut s = Server::start_swimmer(&args);
    let c = status(&s).await;
    assert_eq!((c["given"].as_u64(), c["left"].as_u64()), (Some(2), Some(2)), "the round continues: {c}");
    assert_eq!(true_returns(&s).await, r0, "same pairs after the restart");
    want0.extend(answer_by_return(&s, &r0, 2, 1, "b").await);
    assert!(s.wait_listening(), "round 1 serves its pairs");
    let r1 = true_returns(&s).await;
    assert_eq!(r1.len(), 4);
    let want1 = answer_by_return(&s, &r1, 4, 0, "a").await;
    let (ok, stdout) = s.finish();
    assert!(ok, "{stdout}");
    assert_eq!(dataset_by_pair(&ds0), want0);
    assert_eq!(dataset_by_pair(&out.join("round1/prefs.safetensors")), want1);
    let e: Value = serde_json::from_slice(&std::fs::read(out.join("experiment.json")).unwrap()).unwrap();
    assert_eq!(e["query"]["teacher"], "page");
    let rounds = e["rounds"].as_array().unwrap();
    assert_eq!((rounds[0]["labels"].as_u64(), rounds[0]["queries"].as_u64()), (Some(3), Some(4)), "one can't tell");
    assert_eq!((rounds[1]["labels_total"].as_u64(), rounds[1]["mode"].as_str()), (Some(7), Some("disagreement")));
    assert_eq!(PreferenceDataset::load(out.join("prefs.safetensors")).unwrap().len(), 7);

    // the finished experiment rerun: every round's labels are reused, no page is served
    let o = common::swimmer(&args);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(!String::from_utf8_lossy(&o.stdout).contains("listening on"));
    // the page teacher needs rounds
    let o = common::swimmer(&["experiment", "--out", dir.path().join("f").to_str().unwrap(), "--teacher", "page"]);
    assert!(!o.status.success() && String::from_utf8_lossy(&o.stderr).contains("--query uniform"), "{o:?}");
}

//! `curves`: learning curves of any runs, grouped into named series, as PNG and SVG.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::Args;

use rebel_agents::compare::{mean_band, plot_curves, read_run};
use rebel_agents::plot::Series;

/// `curves`: eval true return against env steps, the mean over each series' runs with its 95 %
/// bootstrap band.
#[derive(Args, Debug, Clone)]
pub struct CurvesArgs {
    /// The PNG to write (an SVG is written next to it).
    #[arg(long)]
    pub out: PathBuf,
    /// Figure title.
    #[arg(long, default_value = "eval true return")]
    pub title: String,
    /// Series as `NAME=DIR[,DIR...]`: run directories (holding `metrics.jsonl`), or experiment folders
    /// (their `rebel/` run is used). Repeatable.
    #[arg(long = "series", value_name = "NAME=DIRS", required = true)]
    pub series: Vec<String>,
}

/// Runs `curves`; prints the final mean of each series, the last line JSON.
pub fn curves_cmd(a: &CurvesArgs) -> Result<()> {
    let mut series = Vec::new();
    let mut finals = serde_json::Map::new();
    for s in &a.series {
        let (name, dirs) = s.split_once('=').with_context(|| format!("--series takes NAME=DIR[,DIR...], got {s:?}"))?;
        let mut curves = Vec::new();
        for d in dirs.split(',').filter(|d| !d.is_empty()) {
            let mut dir = PathBuf::from(d);
            if !dir.join("metrics.jsonl").is_file() && dir.join("rebel/metrics.jsonl").is_file() {
                dir = dir.join("rebel");
            }
            if !dir.join("metrics.jsonl").is_file() {
                bail!("{}: no metrics.jsonl (give a run directory or an experiment folder)", dir.display());
            }
            let r = read_run(name, 0, &dir).map_err(|e| anyhow::anyhow!(e))?;
            if r.curve.points.is_empty() {
                bail!("{}: metrics.jsonl holds no evaluation", dir.display());
            }
            curves.push(r.curve);
        }
        if curves.is_empty() {
            bail!("series {name:?} names no run directory");
        }
        let refs: Vec<_> = curves.iter().collect();
        let points = mean_band(&refs, 2000);
        finals.insert(name.to_string(), serde_json::json!({"runs": curves.len(), "final_mean": points.last().map(|p| p.mean)}));
        println!("{name}: {} runs, final mean {:.1}", curves.len(), points.last().map(|p| p.mean).unwrap_or(f64::NAN));
        series.push(Series { name: name.to_string(), points });
    }
    plot_curves(&a.out, &series, &a.title, 900, 560)?;
    println!("wrote {} and {}", a.out.display(), a.out.with_extension("svg").display());
    println!("{}", serde_json::Value::Object(finals));
    Ok(())
}

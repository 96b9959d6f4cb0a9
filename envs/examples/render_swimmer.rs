//! Renders one Swimmer-v5 episode driven by a fixed travelling-wave gait to a PNG of the last
//! state and an animated GIF (every 4th step).
//!
//! `cargo run -p rebel-envs --release --example render_swimmer -- [OUT_DIR] [STEPS]`
//! (defaults: `.` and 300).

use rebel_envs::render::{save_png, GifRecorder};
use rebel_envs::{make, EnvConfig};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let out = std::path::PathBuf::from(args.next().unwrap_or_else(|| ".".into()));
    let steps: usize = args.next().map(|s| s.parse()).transpose()?.unwrap_or(300);
    let mut env = make("Swimmer-v5", &EnvConfig::new())?;
    env.reset(Some(0))?;
    let mut gif = GifRecorder::new(320, 240, env.dt(), 4)?;
    let mut ret = 0.0;
    for t in 0..steps {
        let phase = t as f32 * env.dt() as f32 * 2.0 * std::f32::consts::PI;
        let action = [phase.sin(), (phase - 1.5).sin()];
        let s = env.step(&action)?;
        ret += s.reward;
        gif.push(&env.planar_scene().expect("planar"))?;
        if s.terminated || s.truncated {
            break;
        }
    }
    save_png(out.join("swimmer.png"), &env.planar_scene().expect("planar"), 320, 240)?;
    let frames = gif.frames();
    gif.finish(out.join("swimmer.gif"))?;
    println!("return {ret:.3}; wrote swimmer.png and swimmer.gif ({frames} frames) to {}", out.display());
    Ok(())
}

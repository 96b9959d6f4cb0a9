//! Top-down pictures of planar environments ([`PlanarScene`]): RGB buffers, PNG files and
//! animated GIFs.
//!
//! | what            | how it is drawn                                                                |
//! |-----------------|--------------------------------------------------------------------------------|
//! | camera          | centred on `scene.focus`; the image width spans `2 * view_half_width` metres   |
//! | axes            | world x to the right, world y up; pixels are square                            |
//! | background      | light grey with a grid fixed in the world (lines every 1, 2 or 5 × 10^k m, about 8 per width) and darker lines on x = 0 and y = 0, so that motion of the body against the world is visible |
//! | capsules        | filled blue, the first one (the head) darker, with a dark outline; anti-aliased |
//! | markers         | filled red discs                                                               |
//!
//! Image buffers are row-major RGB, `height` rows of `width` pixels, top row first. Files are
//! written to a temporary name beside the target and renamed into place, so a reader never sees
//! a half-written file; I/O errors are [`EnvError::Io`] naming the path.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::env::PlanarScene;
use crate::error::EnvError;

const BACKGROUND: [f32; 3] = [240.0, 240.0, 235.0];
const GRID: [f32; 3] = [200.0, 200.0, 195.0];
const AXIS: [f32; 3] = [150.0, 150.0, 145.0];
const BODY: [f32; 3] = [60.0, 130.0, 210.0];
const HEAD: [f32; 3] = [30.0, 80.0, 170.0];
const OUTLINE: [f32; 3] = [20.0, 40.0, 80.0];
const MARKER: [f32; 3] = [215.0, 50.0, 40.0];

/// Pixel-to-world mapping of one picture.
struct Camera {
    /// Pixels per metre.
    scale: f64,
    focus: [f64; 2],
    half_w: f64,
    half_h: f64,
}

impl Camera {
    fn new(scene: &PlanarScene, width: u32, height: u32) -> Self {
        // A degenerate window would divide by zero: fall back to one metre.
        let vhw =
            if scene.view_half_width.is_finite() && scene.view_half_width > 0.0 { scene.view_half_width } else { 1.0 };
        let focus = if scene.focus.iter().all(|f| f.is_finite()) { scene.focus } else { [0.0, 0.0] };
        Camera { scale: width as f64 / (2.0 * vhw), focus, half_w: width as f64 / 2.0, half_h: height as f64 / 2.0 }
    }

    /// World coordinates of the centre of pixel (column `px`, row `py`).
    fn world(&self, px: usize, py: usize) -> [f64; 2] {
        [
            self.focus[0] + (px as f64 + 0.5 - self.half_w) / self.scale,
            self.focus[1] - (py as f64 + 0.5 - self.half_h) / self.scale,
        ]
    }

    /// Continuous pixel coordinates (column, row) of a world point.
    fn pixel(&self, w: [f64; 2]) -> [f64; 2] {
        [(w[0] - self.focus[0]) * self.scale + self.half_w, self.half_h - (w[1] - self.focus[1]) * self.scale]
    }
}

/// Grid spacing in metres: 1, 2 or 5 × 10^k, the smallest with at most 8 lines across the width.
fn grid_step(view_width_m: f64) -> f64 {
    let raw = view_width_m / 8.0;
    let base = 10f64.powf(raw.log10().floor());
    [1.0, 2.0, 5.0, 10.0].iter().map(|m| m * base).find(|s| *s >= raw).unwrap_or(10.0 * base)
}

fn blend(px: &mut [f32], c: [f32; 3], alpha: f32) {
    if alpha <= 0.0 {
        return;
    }
    let a = alpha.min(1.0);
    for k in 0..3 {
        px[k] += (c[k] - px[k]) * a;
    }
}

/// Distance from `p` to the segment `a`–`b`.
fn dist_to_segment(p: [f64; 2], a: [f64; 2], b: [f64; 2]) -> f64 {
    let (dx, dy) = (b[0] - a[0], b[1] - a[1]);
    let len2 = dx * dx + dy * dy;
    let t = if len2 > 0.0 { (((p[0] - a[0]) * dx + (p[1] - a[1]) * dy) / len2).clamp(0.0, 1.0) } else { 0.0 };
    let (cx, cy) = (a[0] + t * dx - p[0], a[1] + t * dy - p[1]);
    (cx * cx + cy * cy).sqrt()
}

/// Draws a capsule (disc when `a == b`) with fill `fill` and an outline `outline_px` wide.
#[allow(clippy::too_many_arguments)]
fn draw_capsule(
    img: &mut [f32],
    cam: &Camera,
    width: usize,
    height: usize,
    a: [f64; 2],
    b: [f64; 2],
    radius: f64,
    fill: [f32; 3],
    outline_px: f64,
) {
    if !(a.iter().chain(&b).all(|v| v.is_finite()) && radius.is_finite() && radius > 0.0) {
        return;
    }
    let (pa, pb) = (cam.pixel(a), cam.pixel(b));
    let r_px = radius * cam.scale + 1.0;
    let x0 = (pa[0].min(pb[0]) - r_px).floor().max(0.0);
    let x1 = (pa[0].max(pb[0]) + r_px).ceil().min(width as f64);
    let y0 = (pa[1].min(pb[1]) - r_px).floor().max(0.0);
    let y1 = (pa[1].max(pb[1]) + r_px).ceil().min(height as f64);
    if x0 >= x1 || y0 >= y1 {
        return;
    }
    for py in y0 as usize..y1 as usize {
        for px in x0 as usize..x1 as usize {
            let sd = (dist_to_segment(cam.world(px, py), a, b) - radius) * cam.scale;
            let coverage = (0.5 - sd).clamp(0.0, 1.0) as f32;
            if coverage <= 0.0 {
                continue;
            }
            let mut c = fill;
            if outline_px > 0.0 {
                let t = (sd + outline_px + 0.5).clamp(0.0, 1.0) as f32;
                for k in 0..3 {
                    c[k] += (OUTLINE[k] - c[k]) * t;
                }
            }
            let i = (py * width + px) * 3;
            blend(&mut img[i..i + 3], c, coverage);
        }
    }
}

/// A top-down picture of `scene`, `width` × `height` pixels, row-major RGB (`[height * width * 3]`,
/// top row first). Empty when either size is 0.
pub fn render_rgb(scene: &PlanarScene, width: u32, height: u32) -> Vec<u8> {
    let (w, h) = (width as usize, height as usize);
    if w == 0 || h == 0 {
        return Vec::new();
    }
    let cam = Camera::new(scene, width, height);
    let step = grid_step(width as f64 / cam.scale);
    let mut img = vec![0f32; w * h * 3];
    // Background and grid: coverage of a 1-pixel line falls off linearly with the distance.
    let line_alpha = |coord: f64, px_per_m: f64, spacing: f64| -> f32 {
        let d = (coord / spacing - (coord / spacing).round()).abs() * spacing * px_per_m;
        (1.0 - d).clamp(0.0, 1.0) as f32
    };
    let xs: Vec<[f32; 2]> = (0..w)
        .map(|px| cam.world(px, 0)[0])
        .map(|x| [line_alpha(x, cam.scale, step), line_alpha(x, cam.scale, 1e12)])
        .collect();
    for py in 0..h {
        let y = cam.world(0, py)[1];
        let (gy, ay) = (line_alpha(y, cam.scale, step), line_alpha(y, cam.scale, 1e12));
        for (px, [gx, ax]) in xs.iter().enumerate() {
            let i = (py * w + px) * 3;
            let p = &mut img[i..i + 3];
            p.copy_from_slice(&BACKGROUND);
            blend(p, GRID, gx.max(gy));
            blend(p, AXIS, ax.max(ay));
        }
    }
    let outline = (cam.scale * 0.01).clamp(0.75, 2.0);
    for (k, c) in scene.capsules.iter().enumerate() {
        draw_capsule(&mut img, &cam, w, h, c.a, c.b, c.radius, if k == 0 { HEAD } else { BODY }, outline);
    }
    for m in &scene.markers {
        draw_capsule(&mut img, &cam, w, h, [m[0], m[1]], [m[0], m[1]], m[2], MARKER, 0.0);
    }
    img.iter().map(|v| v.round().clamp(0.0, 255.0) as u8).collect()
}

fn io_err(path: &Path, what: &str, e: impl std::fmt::Display) -> EnvError {
    EnvError::Io(format!("{what} {}: {e}", path.display()))
}

/// Writes `bytes` to `path` through a temporary file in the same folder and a rename.
fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), EnvError> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let name = path.file_name().ok_or_else(|| io_err(path, "writing", "the path has no file name"))?;
    let tmp: PathBuf = path.with_file_name(format!(
        ".{}.tmp-{}-{}",
        name.to_string_lossy(),
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    if let Err(e) = std::fs::write(&tmp, bytes) {
        let _ = std::fs::remove_file(&tmp);
        return Err(io_err(path, "writing", e));
    }
    std::fs::rename(&tmp, path).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        io_err(path, "renaming into place", e)
    })
}

/// Refuses a picture size with a side of 0 or over `max` pixels, naming the range.
pub fn check_size(width: u32, height: u32, max: u32) -> Result<(), EnvError> {
    if width == 0 || height == 0 || width > max || height > max {
        return Err(EnvError::BadOption {
            env: "render".into(),
            key: "width/height".into(),
            msg: format!("{width}x{height}: each must be in [1, {max}]"),
        });
    }
    Ok(())
}

/// Encodes an RGB buffer (`[height * width * 3]`) as PNG bytes.
pub fn encode_png(rgb: &[u8], width: u32, height: u32) -> Result<Vec<u8>, EnvError> {
    check_size(width, height, u32::MAX >> 1)?;
    if rgb.len() != width as usize * height as usize * 3 {
        return Err(EnvError::BadOption {
            env: "render".into(),
            key: "rgb".into(),
            msg: format!("{} bytes for a {width}x{height} RGB image", rgb.len()),
        });
    }
    let mut out = Vec::new();
    let enc_err = |e: png::EncodingError| EnvError::Io(format!("PNG encoding failed: {e}"));
    let mut enc = png::Encoder::new(&mut out, width, height);
    enc.set_color(png::ColorType::Rgb);
    enc.set_depth(png::BitDepth::Eight);
    let mut writer = enc.write_header().map_err(enc_err)?;
    writer.write_image_data(rgb).map_err(enc_err)?;
    writer.finish().map_err(enc_err)?;
    Ok(out)
}

/// Renders `scene` at `width` × `height` and writes it to `path` as PNG (atomically).
pub fn save_png(path: impl AsRef<Path>, scene: &PlanarScene, width: u32, height: u32) -> Result<(), EnvError> {
    check_size(width, height, u32::MAX >> 1)?;
    let bytes = encode_png(&render_rgb(scene, width, height), width, height)?;
    write_atomic(path.as_ref(), &bytes)
}

/// Records an animated GIF, one frame every `every`-th pushed scene, played at the environment's
/// speed: each frame lasts `dt * every` seconds, rounded to GIF's centiseconds and at least 0.02 s
/// (browsers slow anything shorter down; at very small `dt * every` the GIF plays slower than real
/// time). Frames are encoded as they come, so memory stays small; the file is written by
/// [`GifRecorder::finish`].
pub struct GifRecorder {
    width: u16,
    height: u16,
    every: usize,
    delay_cs: u16,
    /// Scenes to skip before the next frame.
    until_next: usize,
    frames: usize,
    encoder: gif::Encoder<Vec<u8>>,
}

impl GifRecorder {
    /// A recorder of `width` × `height` frames (each in `[1, 65535]`) for an environment with step
    /// `dt` seconds, keeping every `every`-th scene (`every >= 1`; the first scene is always kept).
    pub fn new(width: u32, height: u32, dt: f64, every: usize) -> Result<Self, EnvError> {
        check_size(width, height, u16::MAX as u32)?;
        if every == 0 {
            return Err(EnvError::BadOption { env: "render".into(), key: "every".into(), msg: "must be >= 1".into() });
        }
        if !(dt.is_finite() && dt > 0.0) {
            return Err(EnvError::BadOption {
                env: "render".into(),
                key: "dt".into(),
                msg: format!("must be > 0, got {dt}"),
            });
        }
        let delay_cs = (dt * every as f64 * 100.0).round().clamp(2.0, u16::MAX as f64) as u16;
        let gif_err = |e: gif::EncodingError| EnvError::Io(format!("GIF encoding failed: {e}"));
        let mut encoder = gif::Encoder::new(Vec::new(), width as u16, height as u16, &[]).map_err(gif_err)?;
        encoder.set_repeat(gif::Repeat::Infinite).map_err(gif_err)?;
        Ok(GifRecorder {
            width: width as u16,
            height: height as u16,
            every,
            delay_cs,
            until_next: 0,
            frames: 0,
            encoder,
        })
    }

    /// Offers a scene; it becomes a frame if it is the 0th, `every`-th, `2*every`-th, … offered.
    /// Returns whether it was recorded.
    pub fn push(&mut self, scene: &PlanarScene) -> Result<bool, EnvError> {
        let keep = self.until_next == 0;
        self.until_next = if keep { self.every - 1 } else { self.until_next - 1 };
        if keep {
            self.push_frame(scene)?;
        }
        Ok(keep)
    }

    /// Records `scene` as a frame regardless of `every`.
    pub fn push_frame(&mut self, scene: &PlanarScene) -> Result<(), EnvError> {
        let rgb = render_rgb(scene, self.width as u32, self.height as u32);
        let mut frame = gif::Frame::from_rgb_speed(self.width, self.height, &rgb, 10);
        frame.delay = self.delay_cs;
        self.encoder.write_frame(&frame).map_err(|e| EnvError::Io(format!("GIF encoding failed: {e}")))?;
        self.frames += 1;
        Ok(())
    }

    /// Frames recorded so far.
    pub fn frames(&self) -> usize {
        self.frames
    }

    /// Duration of each frame, in centiseconds.
    pub fn delay_centiseconds(&self) -> u16 {
        self.delay_cs
    }

    /// Writes the GIF to `path` (atomically). At least one frame is needed.
    pub fn finish(self, path: impl AsRef<Path>) -> Result<(), EnvError> {
        let path = path.as_ref();
        if self.frames == 0 {
            return Err(io_err(path, "writing", "no frames were recorded"));
        }
        let bytes = self.encoder.into_inner().map_err(|e| io_err(path, "encoding", e))?;
        write_atomic(path, &bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::env::Capsule2;

    fn scratch_dir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("rebel-envs-render-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    fn px(img: &[u8], w: u32, x: u32, y: u32) -> [u8; 3] {
        let i = ((y * w + x) * 3) as usize;
        [img[i], img[i + 1], img[i + 2]]
    }

    fn scene(capsules: Vec<Capsule2>, focus: [f64; 2]) -> PlanarScene {
        PlanarScene { capsules, markers: vec![], focus, view_half_width: 2.0 }
    }

    #[test]
    fn grid_steps_are_round_numbers() {
        assert_eq!(grid_step(4.0), 0.5);
        assert_eq!(grid_step(8.0), 1.0);
        assert_eq!(grid_step(10.0), 2.0);
        assert_eq!(grid_step(0.3), 0.05);
    }

    #[test]
    fn capsules_land_where_the_world_says() {
        // Window x in [-2, 2] around focus (0, 0) on 200 px: 50 px per metre; height 100 px: y in [-1, 1].
        let right = Capsule2 { a: [1.0, 0.0], b: [1.5, 0.0], radius: 0.2 };
        let up = Capsule2 { a: [0.0, 0.5], b: [0.0, 0.7], radius: 0.1 };
        let img = render_rgb(&scene(vec![right, up], [0.0, 0.0]), 200, 100);
        assert_eq!(img.len(), 200 * 100 * 3);
        // Centre of the first capsule (x = 1.25, y = 0) is pixel (162.5, 50): head colour.
        assert_eq!(px(&img, 200, 162, 49), HEAD.map(|v| v as u8));
        // The second capsule (y = 0.6) is in the upper half, drawn in body colour.
        assert_eq!(px(&img, 200, 100, 20), BODY.map(|v| v as u8));
        // Its mirror image below the centre is background.
        assert_eq!(px(&img, 200, 110, 79), BACKGROUND.map(|v| v as u8));
        // Anti-aliasing: a marker disc of radius 7.5 px at (-1.25, -0.75), i.e. pixel (37.5, 137.5)
        // of a 200 x 200 image, has a ring of partly covered pixels between marker and background.
        let mut with_marker = scene(vec![], [0.0, 0.0]);
        with_marker.markers.push([-1.25, -0.75, 0.15]);
        let img = render_rgb(&with_marker, 200, 200);
        assert_eq!(px(&img, 200, 37, 137), MARKER.map(|v| v as u8));
        let edge = (27..48)
            .flat_map(|x| (127..148).map(move |y| (x, y)))
            .filter(|&(x, y)| (60..230).contains(&px(&img, 200, x, y)[1]))
            .count();
        assert!(edge >= 16, "only {edge} anti-aliased edge pixels");
    }

    #[test]
    fn grid_moves_with_the_world_not_the_camera() {
        let body = |dx: f64| vec![Capsule2 { a: [0.1 + dx, 0.2], b: [0.6 + dx, -0.1], radius: 0.1 }];
        let a = render_rgb(&scene(body(0.0), [0.3, 0.0]), 120, 80);
        // Camera and body shifted together by a non-grid distance: the background differs.
        let b = render_rgb(&scene(body(0.13), [0.43, 0.0]), 120, 80);
        assert_ne!(a, b);
        let differing = a.iter().zip(&b).filter(|(x, y)| x.abs_diff(**y) > 8).count();
        assert!(differing > 100, "only {differing} channels differ");
        // Shifted by exactly one grid step (0.5 m for a 4 m window), away from the world axes: the
        // same picture up to rounding.
        let c = render_rgb(&scene(body(3.0), [3.25, 0.0]), 120, 80);
        let d = render_rgb(&scene(body(3.5), [3.75, 0.0]), 120, 80);
        let max_diff = c.iter().zip(&d).map(|(x, y)| x.abs_diff(*y)).max().unwrap();
        assert!(max_diff <= 1, "max difference {max_diff}");
    }

    #[test]
    fn png_has_width_and_height_in_the_right_order() {
        let dir = scratch_dir("png");
        let path = dir.join("frame.png");
        let s = PlanarScene {
            capsules: vec![Capsule2 { a: [0.0, 0.0], b: [0.5, 0.0], radius: 0.1 }],
            markers: vec![[1.0, 0.5, 0.05]],
            focus: [0.2, 0.0],
            view_half_width: 1.5,
        };
        save_png(&path, &s, 64, 40).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
        assert_eq!(&bytes[12..16], b"IHDR");
        assert_eq!(u32::from_be_bytes(bytes[16..20].try_into().unwrap()), 64);
        assert_eq!(u32::from_be_bytes(bytes[20..24].try_into().unwrap()), 40);
        // Decoded pixels equal the rendered buffer.
        let mut dec = png::Decoder::new(std::fs::File::open(&path).unwrap()).read_info().unwrap();
        let mut buf = vec![0; dec.output_buffer_size()];
        let info = dec.next_frame(&mut buf).unwrap();
        assert_eq!((info.width, info.height, info.color_type), (64, 40, png::ColorType::Rgb));
        assert_eq!(&buf[..info.buffer_size()], &render_rgb(&s, 64, 40)[..]);
        // No temporary files are left behind.
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 1);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn io_errors_name_the_path() {
        let dir = scratch_dir("ioerr");
        let path = dir.join("missing-folder").join("x.png");
        match save_png(&path, &PlanarScene::default(), 8, 8) {
            Err(EnvError::Io(msg)) => assert!(msg.contains("missing-folder"), "{msg}"),
            other => panic!("expected Io error, got {other:?}"),
        }
        assert!(matches!(save_png(dir.join("y.png"), &PlanarScene::default(), 0, 8), Err(EnvError::BadOption { .. })));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn gif_keeps_every_kth_frame_with_env_timing() {
        let dir = scratch_dir("gif");
        let path = dir.join("episode.gif");
        // dt 0.04 s, every 3rd step: 12 cs per frame.
        let mut rec = GifRecorder::new(48, 32, 0.04, 3).unwrap();
        assert_eq!(rec.delay_centiseconds(), 12);
        let kept: Vec<bool> = (0..10)
            .map(|t| {
                let x = t as f64 * 0.1;
                rec.push(&scene(vec![Capsule2 { a: [x, 0.0], b: [x + 0.3, 0.0], radius: 0.1 }], [x, 0.0])).unwrap()
            })
            .collect();
        assert_eq!(kept, [true, false, false, true, false, false, true, false, false, true]);
        assert_eq!(rec.frames(), 4);
        rec.finish(&path).unwrap();
        let mut opts = gif::DecodeOptions::new();
        opts.set_color_output(gif::ColorOutput::RGBA);
        let mut dec = opts.read_info(std::fs::File::open(&path).unwrap()).unwrap();
        assert_eq!((dec.width(), dec.height()), (48, 32));
        let mut n = 0;
        while let Some(f) = dec.read_next_frame().unwrap() {
            assert_eq!(f.delay, 12);
            assert_eq!((f.width, f.height), (48, 32));
            n += 1;
        }
        assert_eq!(n, 4);
        // No frames: an error naming the file, and nothing written.
        let empty = GifRecorder::new(8, 8, 0.01, 1).unwrap();
        assert!(matches!(empty.finish(dir.join("empty.gif")), Err(EnvError::Io(m)) if m.contains("empty.gif")));
        assert!(!dir.join("empty.gif").exists());
        assert!(matches!(GifRecorder::new(8, 8, 0.01, 0), Err(EnvError::BadOption { .. })));
        assert!(matches!(GifRecorder::new(70000, 8, 0.01, 1), Err(EnvError::BadOption { .. })));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn swimmer_renders_a_visible_body() {
        let mut env = crate::registry::make("Swimmer-v5", &crate::config::EnvConfig::new()).unwrap();
        env.reset(Some(0)).unwrap();
        let s = env.planar_scene().expect("the swimmer is planar");
        let img = render_rgb(&s, 96, 64);
        let body = img.chunks(3).filter(|p| p[2] as u16 > p[0] as u16 + 60).count();
        assert!(body > 30, "only {body} body pixels");
    }
}

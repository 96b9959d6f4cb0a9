//! Learning curves with confidence bands, drawn with `plotters`, as PNG and SVG.
//!
//! Each [`Series`] is a mean line with a shaded band between a lower and an upper value per point (e.g. mean
//! ± one standard error over seeds); a series of a single point (an offline result, a reference policy) is a
//! dashed horizontal line across the whole width. Text uses DejaVu Sans (a 29 KB Latin/Greek subset shipped in
//! `agents/assets/fonts`, licence alongside), registered with `plotters::style::register_font` at the first
//! plot: no system font is needed. The PNG is rendered into memory, encoded by
//! [`rebel_envs::render::encode_png`] and, like the SVG, written with [`crate::io::write_atomic`].

use std::path::Path;
use std::sync::OnceLock;

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::{register_font, FontStyle, RGBColor};

/// The shipped font (DejaVu Sans subset).
pub const FONT_BYTES: &[u8] = include_bytes!("../assets/fonts/DejaVuSans-subset.ttf");
/// The family name the font is registered under (plotters' default family, so every text uses it).
const FONT: &str = "sans-serif";

/// One point of a curve: position, mean and the band around it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BandPoint {
    /// Abscissa (e.g. env steps).
    pub x: f64,
    /// The line's value.
    pub mean: f64,
    /// Lower edge of the band.
    pub lower: f64,
    /// Upper edge of the band.
    pub upper: f64,
}

/// A named curve.
#[derive(Clone, Debug, PartialEq)]
pub struct Series {
    /// Legend text.
    pub name: String,
    /// Points in increasing x; one point = a dashed horizontal line.
    pub points: Vec<BandPoint>,
}

/// Titles and size of a figure.
#[derive(Clone, Debug, PartialEq)]
pub struct Figure {
    /// Title above the plot.
    pub title: String,
    /// x-axis label.
    pub x_label: String,
    /// y-axis label.
    pub y_label: String,
    /// Size in pixels (PNG) or user units (SVG).
    pub width: u32,
    /// See `width`.
    pub height: u32,
}

/// What can go wrong drawing or writing a plot.
#[derive(Debug, thiserror::Error)]
pub enum PlotError {
    /// Nothing to draw, or a size of zero.
    #[error("cannot plot: {0}")]
    Input(String),
    /// The drawing library failed.
    #[error("drawing failed: {0}")]
    Draw(String),
    /// Writing the file failed.
    #[error("cannot write the plot: {0}")]
    Io(#[from] crate::io::WriteError),
}

/// Twelve distinguishable colours (matplotlib's tab10 and two more).
const PALETTE: [RGBColor; 16] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
    RGBColor(0, 0, 0),
    RGBColor(120, 60, 0),
    RGBColor(0, 90, 50),
    RGBColor(100, 0, 140),
    RGBColor(255, 200, 0),
    RGBColor(0, 60, 160),
];

fn ensure_font() -> Result<(), PlotError> {
    static REGISTERED: OnceLock<bool> = OnceLock::new();
    let ok = *REGISTERED.get_or_init(|| register_font(FONT, FontStyle::Normal, FONT_BYTES).is_ok());
    if ok {
        Ok(())
    } else {
        Err(PlotError::Draw("the shipped font agents/assets/fonts/DejaVuSans-subset.ttf does not parse".into()))
    }
}

/// Short axis label: 1.5M, 250K, 40, 0.25.
pub fn si(x: f64) -> String {
    let a = x.abs();
    let trim = |v: f64, suffix: &str| {
        let s = format!("{v:.1}");
        format!("{}{suffix}", s.trim_end_matches(".0"))
    };
    if a >= 1e6 {
        trim(x / 1e6, "M")
    } else if a >= 1e3 {
        trim(x / 1e3, "K")
    } else if a >= 10.0 || a == 0.0 {
        format!("{x:.0}")
    } else {
        let s = format!("{x:.2}");
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    }
}

/// x range `[0, max x]` and y range (finite band edges and means, padded by 5%) of the series.
fn ranges(series: &[Series]) -> Result<((f64, f64), (f64, f64)), PlotError> {
    let pts = || series.iter().flat_map(|s| s.points.iter());
    let x_max = pts().map(|p| p.x).filter(|v| v.is_finite()).fold(0.0f64, f64::max).max(1.0);
    let ys: Vec<f64> = pts().flat_map(|p| [p.lower, p.mean, p.upper]).filter(|v| v.is_finite()).collect();
    if ys.is_empty() {
        return Err(PlotError::Input("no series has a finite value".into()));
    }
    let (lo, hi) = ys.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &y| (a.min(y), b.max(y)));
    let pad = ((hi - lo) * 0.05).max(1.0);
    Ok(((0.0, x_max), (lo - pad, hi + pad)))
}

/// Runs of consecutive points whose fields are all finite (a NaN splits a curve rather than ending it).
fn finite_runs(points: &[BandPoint]) -> Vec<&[BandPoint]> {
    points
        .split(|p| ![p.x, p.mean, p.lower, p.upper].iter().all(|v| v.is_finite()))
        .filter(|r| !r.is_empty())
        .collect()
}

fn draw_err(e: impl std::fmt::Display) -> PlotError {
    PlotError::Draw(e.to_string())
}

/// Draws the figure on any plotters backend.
fn draw<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, series: &[Series], fig: &Figure) -> Result<(), PlotError> {
    let ((x0, x1), (y0, y1)) = ranges(series)?;
    root.fill(&WHITE).map_err(draw_err)?;
    let mut chart = ChartBuilder::on(root)
        .caption(&fig.title, (FONT, 18))
        .margin(14)
        .x_label_area_size(44)
        .y_label_area_size(64)
        .build_cartesian_2d(x0..x1, y0..y1)
        .map_err(draw_err)?;
    chart
        .configure_mesh()
        .x_desc(&fig.x_label)
        .y_desc(&fig.y_label)
        .x_label_formatter(&|x| si(*x))
        .y_label_formatter(&|y| si(*y))
        .label_style((FONT, 13))
        .axis_desc_style((FONT, 15))
        .light_line_style(RGBColor(238, 238, 238))
        .bold_line_style(RGBColor(215, 215, 215))
        .draw()
        .map_err(draw_err)?;
    // bands first, so that no band covers a line
    for (i, s) in series.iter().enumerate() {
        let c = PALETTE[i % PALETTE.len()];
        for run in finite_runs(&s.points).into_iter().filter(|r| r.len() >= 2) {
            let edge: Vec<(f64, f64)> =
                run.iter().map(|p| (p.x, p.upper)).chain(run.iter().rev().map(|p| (p.x, p.lower))).collect();
            chart.draw_series(std::iter::once(Polygon::new(edge, c.mix(0.18).filled()))).map_err(draw_err)?;
        }
    }
    for (i, s) in series.iter().enumerate() {
        let c = PALETTE[i % PALETTE.len()];
        let style = c.stroke_width(2);
        let drawn = match s.points.as_slice() {
            [p] if p.mean.is_finite() => chart
                .draw_series(DashedLineSeries::new([(x0, p.mean), (x1, p.mean)], 8, 5, style))
                .map_err(draw_err)?,
            _ => {
                let mut last = None;
                for run in finite_runs(&s.points) {
                    last = Some(
                        chart.draw_series(LineSeries::new(run.iter().map(|p| (p.x, p.mean)), style)).map_err(draw_err)?,
                    );
                }
                match last {
                    Some(a) => a,
                    None => continue,
                }
            }
        };
        let dashed = s.points.len() == 1;
        drawn.label(s.name.as_str()).legend(move |(x, y)| {
            let end = if dashed { x + 9 } else { x + 20 };
            PathElement::new(vec![(x, y), (end, y)], style)
        });
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.85))
        .border_style(RGBColor(150, 150, 150))
        .label_font((FONT, 13))
        .draw()
        .map_err(draw_err)?;
    root.present().map_err(draw_err)
}

/// Draws `series` into a PNG at `png` and, if given, an SVG at `svg` (module docs).
pub fn learning_curves(png: &Path, svg: Option<&Path>, series: &[Series], fig: &Figure) -> Result<(), PlotError> {
    if fig.width < 100 || fig.height < 100 {
        return Err(PlotError::Input(format!("a figure of {}×{} is too small (at least 100×100)", fig.width, fig.height)));
    }
    ensure_font()?;
    let mut rgb = vec![255u8; fig.width as usize * fig.height as usize * 3];
    {
        let root = BitMapBackend::with_buffer(&mut rgb, (fig.width, fig.height)).into_drawing_area();
        draw(&root, series, fig)?;
    }
    let bytes = rebel_envs::render::encode_png(&rgb, fig.width, fig.height).map_err(draw_err)?;
    crate::io::write_atomic(png, &bytes)?;
    if let Some(svg) = svg {
        let mut text = String::new();
        {
            let root = SVGBackend::with_string(&mut text, (fig.width, fig.height)).into_drawing_area();
            draw(&root, series, fig)?;
        }
        crate::io::write_atomic(svg, text.as_bytes())?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn curve(name: &str, pts: &[(f64, f64, f64)]) -> Series {
        Series {
            name: name.into(),
            points: pts.iter().map(|&(x, m, e)| BandPoint { x, mean: m, lower: m - e, upper: m + e }).collect(),
        }
    }

    fn fig() -> Figure {
        Figure { title: "t".into(), x_label: "env steps".into(), y_label: "return".into(), width: 400, height: 300 }
    }

    #[test]
    fn si_labels() {
        assert_eq!(si(1_500_000.0), "1.5M");
        assert_eq!(si(250_000.0), "250K");
        assert_eq!(si(40.0), "40");
        assert_eq!(si(0.0), "0");
        assert_eq!(si(-2_000.0), "-2K");
        assert_eq!(si(0.25), "0.25");
    }

    #[test]
    fn every_character_of_the_labels_has_a_glyph() {
        use ab_glyph::{Font, FontRef};
        let font = FontRef::try_from_slice(FONT_BYTES).unwrap();
        let names = crate::compare::default_rows().into_iter().map(|r| r.name);
        let text = ["reference", "env steps", "eval true return", "Swimmer-v5 : mean and s.e. over 3 seeds", "±−×σβγη"];
        for s in names.chain(text.iter().map(|s| s.to_string())) {
            for ch in s.chars() {
                assert_ne!(font.glyph_id(ch).0, 0, "no glyph for {ch:?} in {s}");
            }
        }
    }

    #[test]
    fn ranges_cover_the_bands_and_ignore_non_finite_values() {
        let s = [curve("a", &[(0.0, 10.0, 2.0), (100.0, 20.0, 5.0), (200.0, f64::NAN, 1.0)]), curve("ref", &[(0.0, 50.0, 0.0)])];
        let ((x0, x1), (y0, y1)) = ranges(&s).unwrap();
        assert_eq!((x0, x1), (0.0, 200.0));
        // finite values span 8 .. 50; padding 5% of 42 = 2.1
        assert!((y0 - 5.9).abs() < 1e-9 && (y1 - 52.1).abs() < 1e-9, "{y0} {y1}");
        assert_eq!(finite_runs(&s[0].points).len(), 1);
        assert!(matches!(ranges(&[curve("n", &[(0.0, f64::NAN, 0.0)])]), Err(PlotError::Input(_))));
    }

    #[test]
    fn png_and_svg_show_the_band_lines_and_text() {
        let dir = tempfile::tempdir().unwrap();
        let (png, svg) = (dir.path().join("c.png"), dir.path().join("c.svg"));
        let s = [curve("rebel", &[(0.0, 0.0, 5.0), (1e5, 100.0, 10.0), (2e5, 150.0, 8.0)]), curve("reference", &[(0.0, 120.0, 0.0)])];
        learning_curves(&png, Some(&svg), &s, &fig()).unwrap();
        // to look at the figure: REBEL_KEEP_PLOT=/some/folder cargo test -p rebel-agents plot::
        if let Some(keep) = std::env::var_os("REBEL_KEEP_PLOT") {
            for f in [&png, &svg] {
                std::fs::copy(f, std::path::Path::new(&keep).join(f.file_name().unwrap())).unwrap();
            }
        }
        let bytes = std::fs::read(&png).unwrap();
        let decoder = png::Decoder::new(std::io::Cursor::new(bytes));
        let mut reader = decoder.read_info().unwrap();
        let mut buf = vec![0; reader.output_buffer_size()];
        let info = reader.next_frame(&mut buf).unwrap();
        assert_eq!((info.width, info.height), (400, 300));
        let px: Vec<[u8; 3]> = buf[..info.buffer_size()].chunks(3).map(|c| [c[0], c[1], c[2]]).collect();
        let [r, g, b] = [PALETTE[0].0, PALETTE[0].1, PALETTE[0].2];
        assert!(px.iter().filter(|p| **p == [r, g, b]).count() > 50, "the first series' line is drawn");
        // the band: the palette colour at 18% over white
        let tint = |c: u8| (255.0 - 0.18 * (255.0 - c as f64)).round() as i32;
        let near = |p: &[u8; 3]| (p[0] as i32 - tint(r)).abs() <= 2 && (p[1] as i32 - tint(g)).abs() <= 2 && (p[2] as i32 - tint(b)).abs() <= 2;
        assert!(px.iter().filter(|p| near(p)).count() > 200, "the band is shaded");
        // text is rasterised (dark anti-aliased pixels well away from the lines' colours)
        assert!(px.iter().filter(|p| p[0] < 90 && p[1] < 90 && p[2] < 90).count() > 100);
        let text = std::fs::read_to_string(&svg).unwrap();
        assert!(text.starts_with("<svg") && text.contains("rebel") && text.contains("reference") && text.contains("<polygon"));
        assert!(text.contains("stroke-dasharray") || text.matches("<polyline").count() + text.matches("<line").count() > 3);
    }

    #[test]
    fn bad_input_is_an_error_not_a_panic() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.png");
        assert!(matches!(learning_curves(&p, None, &[], &fig()), Err(PlotError::Input(_))));
        let tiny = Figure { width: 10, ..fig() };
        assert!(matches!(learning_curves(&p, None, &[curve("a", &[(0.0, 1.0, 0.0)])], &tiny), Err(PlotError::Input(_))));
        assert!(!p.exists());
    }
}

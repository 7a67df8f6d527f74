//! Plots of an activation and its derivative (SVG or PNG, by extension).
//!
//! Text needs a TrueType font: `ACTFORGE_FONT` names one, otherwise
//! common system locations are tried. Without any font the plot is drawn
//! without labels and [`PlotOutcome::missing_font`] says so.

use std::path::Path;

use plotters::coord::ranged1d::{DefaultFormatting, KeyPointHint};
use plotters::prelude::*;

use super::axis::{pow2_scale, Ticks};
use super::render::{ensure_font, to_file, DrawResult, Picture};
use crate::error::{Error, Result, Setting};

/// Most sample points one plot takes (the image is 900 pixels wide).
pub const MAX_SAMPLES: usize = 100_000;

/// Most labelled ticks per axis.
const MAX_TICKS: usize = 10;

/// What to draw.
pub struct PlotSpec<'a> {
    pub title: &'a str,
    pub lo: f64,
    pub hi: f64,
    pub samples: usize,
}

#[derive(Debug, Default)]
pub struct PlotOutcome {
    /// Sampled points where f or f' was not finite (left as gaps).
    pub nonfinite: usize,
    /// Drawn without text because no font was found.
    pub missing_font: bool,
}

/// A usage error unless `lo < hi`, both finite, and `2 ≤ samples ≤`
/// [`MAX_SAMPLES`].
pub fn check_spec(spec: &PlotSpec) -> Result<()> {
    if !(spec.lo < spec.hi && spec.lo.is_finite() && spec.hi.is_finite()) {
        return Err(Error::setting(format!(
            "{} {},{}: need finite LO < HI",
            Setting::Range,
            spec.lo,
            spec.hi
        )));
    }
    if !(2..=MAX_SAMPLES).contains(&spec.samples) {
        return Err(Error::setting(format!(
            "{} {}: a plot takes 2 to {MAX_SAMPLES} sample points",
            Setting::Samples,
            spec.samples
        )));
    }
    Ok(())
}

/// Draw the samples `(x, f(x), f'(x))` (x ascending, within the spec's
/// range) to `out` (`.svg` or `.png`).
pub fn plot(pts: &[(f64, f64, f64)], spec: &PlotSpec, out: &Path) -> Result<PlotOutcome> {
    check_spec(spec)?;
    let mut outcome = PlotOutcome {
        nonfinite: pts
            .iter()
            .filter(|p| !p.1.is_finite() || !p.2.is_finite())
            .count(),
        ..Default::default()
    };
    // Text layout needs glyph metrics in both formats.
    let text = ensure_font();
    outcome.missing_font = !text;
    let curve = Curve { pts, spec, text };
    to_file(&curve, (900, 560), out)?;
    Ok(outcome)
}

/// An activation and its derivative, as [`plot`] draws them.
struct Curve<'a> {
    pts: &'a [(f64, f64, f64)],
    spec: &'a PlotSpec<'a>,
    text: bool,
}

impl Picture for Curve<'_> {
    fn draw<DB: DrawingBackend>(&self, root: DrawingArea<DB, plotters::coord::Shift>) -> DrawResult
    where
        DB::ErrorType: 'static,
    {
        draw(root, self.pts, self.spec, self.text)
    }
}

/// One axis in plotters' coordinates: the range divided by a power of two
/// (exact, and differences stay finite), with our own bounded ticks, so
/// that plotters' tick search (which loops forever on ranges wider than
/// `f64::MAX` or too narrow for their magnitude) never runs.
#[derive(Clone)]
struct ScaledAxis {
    lo: f64,
    hi: f64,
    scale: f64,
    ticks: Ticks,
    fine: Ticks,
}

impl ScaledAxis {
    fn new(lo: f64, hi: f64) -> ScaledAxis {
        ScaledAxis {
            lo,
            hi,
            scale: pow2_scale(lo, hi),
            ticks: Ticks::new(lo, hi, MAX_TICKS),
            fine: Ticks::new(lo, hi, 5 * MAX_TICKS),
        }
    }

    /// The label of a scaled coordinate.
    fn label(&self, scaled: f64) -> String {
        self.ticks.label(scaled * self.scale)
    }
}

impl Ranged for ScaledAxis {
    type FormatOption = DefaultFormatting;
    type ValueType = f64;

    fn map(&self, v: &f64, limit: (i32, i32)) -> i32 {
        let r = self.range();
        let t = (v - r.start) / (r.end - r.start);
        let t = if t.is_finite() {
            t.clamp(-1.0, 2.0)
        } else {
            0.0
        };
        limit.0 + ((limit.1 - limit.0) as f64 * t).round() as i32
    }

    fn key_points<H: KeyPointHint>(&self, hint: H) -> Vec<f64> {
        let t = if hint.weight().allow_light_points() {
            &self.fine
        } else {
            &self.ticks
        };
        t.values.iter().map(|v| v / self.scale).collect()
    }

    fn range(&self) -> std::ops::Range<f64> {
        self.lo / self.scale..self.hi / self.scale
    }
}

fn draw<DB: DrawingBackend>(
    root: DrawingArea<DB, plotters::coord::Shift>,
    pts: &[(f64, f64, f64)],
    spec: &PlotSpec,
    text: bool,
) -> DrawResult
where
    DB::ErrorType: 'static,
{
    let err = |e: DrawingAreaErrorKind<DB::ErrorType>| e.to_string();
    root.fill(&WHITE).map_err(err)?;
    let (ylo, yhi) = y_range(pts);
    let (xa, ya) = (ScaledAxis::new(spec.lo, spec.hi), ScaledAxis::new(ylo, yhi));
    let mut builder = ChartBuilder::on(&root);
    builder
        .margin(16)
        .x_label_area_size(if text { 36 } else { 8 })
        .y_label_area_size(if text { 72 } else { 8 });
    if text {
        builder.caption(spec.title, ("sans-serif", 20));
    }
    let mut chart = builder
        .build_cartesian_2d(xa.clone(), ya.clone())
        .map_err(err)?;
    let mut mesh = chart.configure_mesh();
    let (xl, yl) = (|v: &f64| xa.label(*v), |v: &f64| ya.label(*v));
    mesh.light_line_style(RGBColor(235, 235, 235))
        .x_label_formatter(&xl)
        .y_label_formatter(&yl);
    if !text {
        mesh.disable_x_axis().disable_y_axis();
    }
    mesh.draw().map_err(err)?;
    let blue = RGBColor(31, 119, 180);
    let orange = RGBColor(255, 127, 14);
    for (k, (color, name)) in [(blue, "f(x)"), (orange, "f'(x)")].into_iter().enumerate() {
        let mut first = true;
        for seg in segments(pts, k, ylo, yhi) {
            let seg = seg.into_iter().map(|(x, y)| (x / xa.scale, y / ya.scale));
            let series = chart
                .draw_series(LineSeries::new(seg, color.stroke_width(2)))
                .map_err(err)?;
            if first && text {
                series.label(name).legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(2))
                });
            }
            first = false;
        }
    }
    if text {
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .draw()
            .map_err(err)?;
    }
    root.present().map_err(err)
}

/// One bar of [`bar_chart`].
#[derive(Clone, Debug, PartialEq)]
pub struct Bar {
    pub label: String,
    pub millis: f64,
    /// Bars of a group share a colour: `fused`, `composed`, `builtin`, or
    /// anything else (grey).
    pub group: String,
}

/// A horizontal bar chart (milliseconds, one bar per row), to `.png` or
/// `.svg`.
pub fn bar_chart(rows: &[Bar], title: &str, out: &Path) -> Result<()> {
    let size = (900, 120 + 28 * rows.len() as u32);
    let text = ensure_font();
    to_file(&Bars { rows, title, text }, size, out)
}

/// The rows of [`bar_chart`].
struct Bars<'a> {
    rows: &'a [Bar],
    title: &'a str,
    text: bool,
}

impl Picture for Bars<'_> {
    fn draw<DB: DrawingBackend>(&self, root: DrawingArea<DB, plotters::coord::Shift>) -> DrawResult
    where
        DB::ErrorType: 'static,
    {
        draw_bars(root, self.rows, self.title, self.text)
    }
}

fn draw_bars<DB: DrawingBackend>(
    root: DrawingArea<DB, plotters::coord::Shift>,
    rows: &[Bar],
    title: &str,
    text: bool,
) -> DrawResult
where
    DB::ErrorType: 'static,
{
    let err = |e: DrawingAreaErrorKind<DB::ErrorType>| e.to_string();
    root.fill(&WHITE).map_err(err)?;
    let max = rows
        .iter()
        .map(|r| r.millis)
        .fold(0.0f64, f64::max)
        .max(1e-6)
        * 1.1;
    let n = rows.len().max(1);
    let mut builder = ChartBuilder::on(&root);
    builder
        .margin(12)
        .x_label_area_size(if text { 32 } else { 6 })
        .y_label_area_size(if text { 190 } else { 6 });
    if text {
        builder.caption(title, ("sans-serif", 16));
    }
    let mut chart = builder
        .build_cartesian_2d(0.0..max, (0..n).into_segmented())
        .map_err(err)?;
    let labels: Vec<String> = rows.iter().map(|r| r.label.clone()).collect();
    let label = |v: &SegmentValue<usize>| match v {
        SegmentValue::CenterOf(i) => labels.get(*i).cloned().unwrap_or_default(),
        _ => String::new(),
    };
    let mut mesh = chart.configure_mesh();
    mesh.disable_y_mesh().x_desc("milliseconds");
    if text {
        mesh.y_label_formatter(&label);
    } else {
        mesh.disable_x_axis().disable_y_axis();
    }
    mesh.draw().map_err(err)?;
    let colour = |group: &str| match group {
        "fused" => RGBColor(31, 119, 180),
        "composed" => RGBColor(255, 127, 14),
        "builtin" => RGBColor(44, 160, 44),
        _ => RGBColor(127, 127, 127),
    };
    chart
        .draw_series(rows.iter().enumerate().map(|(i, r)| {
            let c = colour(&r.group);
            Rectangle::new(
                [
                    (0.0, SegmentValue::Exact(i)),
                    (r.millis, SegmentValue::Exact(i + 1)),
                ],
                c.filled(),
            )
        }))
        .map_err(err)?;
    root.present().map_err(err)
}

/// Runs of finite, in-range points of series `k` (0: f, 1: f').
fn segments(pts: &[(f64, f64, f64)], k: usize, lo: f64, hi: f64) -> Vec<Vec<(f64, f64)>> {
    let mut out = vec![Vec::new()];
    for p in pts {
        let y = if k == 0 { p.1 } else { p.2 };
        if y.is_finite() && y >= lo && y <= hi {
            out.last_mut().expect("nonempty").push((p.0, y));
        } else if !out.last().expect("nonempty").is_empty() {
            out.push(Vec::new());
        }
    }
    out.retain(|s| !s.is_empty());
    out
}

/// A finite y range, `lo < hi`, that shows the shape: the 1st–99th percentile of finite
/// values, padded, so a single spike does not flatten everything.
fn y_range(pts: &[(f64, f64, f64)]) -> (f64, f64) {
    let mut ys: Vec<f64> = pts
        .iter()
        .flat_map(|p| [p.1, p.2])
        .filter(|v| v.is_finite())
        .collect();
    if ys.is_empty() {
        return (-1.0, 1.0);
    }
    ys.sort_by(f64::total_cmp);
    let q = |f: f64| ys[((ys.len() - 1) as f64 * f).round() as usize];
    let (lo, hi) = (q(0.01).min(0.0), q(0.99).max(0.0));
    // 8 % of the width on each side, computed without overflow.
    let pad = ((hi / 2.0 - lo / 2.0) * 0.16).max(1e-3);
    ((lo - pad).max(-f64::MAX), (hi + pad).min(f64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_without_any_font_when_text_is_off() {
        let pts: Vec<(f64, f64, f64)> = super::super::axis::grid(-3.0, 3.0, 50)
            .map(|x| (x, x.tanh(), 1.0 - x.tanh().powi(2)))
            .collect();
        let spec = PlotSpec {
            title: "t",
            lo: -3.0,
            hi: 3.0,
            samples: 50,
        };
        let mut svg = String::new();
        let area = SVGBackend::with_string(&mut svg, (300, 200)).into_drawing_area();
        draw(area, &pts, &spec, false).unwrap();
        assert!(svg.contains("<polyline") && !svg.contains("<text"), "{svg}");
    }

    #[test]
    fn segments_break_at_gaps() {
        let pts = [
            (0.0, 1.0, 0.0),
            (1.0, f64::NAN, 0.0),
            (2.0, 2.0, 0.0),
            (3.0, 3.0, 0.0),
        ];
        let s = segments(&pts, 0, -10.0, 10.0);
        assert_eq!(s.len(), 2);
        assert_eq!(s[1], vec![(2.0, 2.0), (3.0, 3.0)]);
    }

    #[test]
    fn y_range_ignores_spikes() {
        let mut pts: Vec<(f64, f64, f64)> =
            (0..1000).map(|i| (i as f64, (i % 7) as f64, 0.0)).collect();
        pts[500].1 = 1e9;
        let (lo, hi) = y_range(&pts);
        assert!(lo < 0.0 && hi < 10.0, "{lo}..{hi}");
    }
}

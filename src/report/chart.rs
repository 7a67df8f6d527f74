//! Charts from plain numbers: line charts with optional bands (learning
//! curves over seeds, fitness over generations, activations next to GELU)
//! and scatter plots (Pareto fronts). Knows no formula, model or search:
//! callers sample and aggregate, this module draws.

use std::path::Path;

use plotters::prelude::*;

use super::html::Svg;
use super::render::{ensure_font, to_file, to_svg, DrawResult, Picture};
use crate::error::Result;

/// One line, with an optional band around it (`(x, lo, hi)`), e.g. the
/// mean over seeds and a 95% interval.
#[derive(Clone, Debug, Default)]
pub struct Series {
    pub label: String,
    pub points: Vec<(f64, f64)>,
    pub band: Vec<(f64, f64, f64)>,
    /// Draw dashed (for reference curves such as GELU).
    pub dashed: bool,
}

/// Axis titles and the chart's caption.
#[derive(Clone, Debug, Default)]
pub struct Axes {
    pub title: String,
    pub x: String,
    pub y: String,
    /// Logarithmic y axis (losses, perplexities); values ≤ 0 are dropped.
    pub log_y: bool,
}

/// A point of a scatter plot; `highlight` points are drawn filled and
/// joined by a line in x order (a Pareto front).
#[derive(Clone, Debug)]
pub struct Dot {
    pub x: f64,
    pub y: f64,
    pub highlight: bool,
}

const PALETTE: [RGBColor; 8] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
];

/// Draw `series` to `out` (`.png` or `.svg`). Non-finite points are left
/// out (the line breaks there).
pub fn line_chart(series: &[Series], axes: &Axes, out: &Path) -> Result<()> {
    let text = ensure_font();
    to_file(&Lines { series, axes, text }, (900, 560), out)
}

/// Draw a scatter plot to `out` (`.png` or `.svg`).
pub fn scatter(dots: &[Dot], axes: &Axes, out: &Path) -> Result<()> {
    let text = ensure_font();
    to_file(&Dots { dots, axes, text }, (900, 560), out)
}

/// [`line_chart`] as an SVG to inline in a page, `size` pixels; with
/// `text` off (thumbnails) or without a font, no caption, labels or legend.
pub fn line_svg(series: &[Series], axes: &Axes, size: (u32, u32), text: bool) -> Result<Svg> {
    let text = text && ensure_font();
    let svg = to_svg(&Lines { series, axes, text }, size, &axes.title)?;
    Ok(Svg::from_plotters(svg))
}

/// [`scatter`] as an SVG to inline in a page.
pub fn scatter_svg(dots: &[Dot], axes: &Axes, size: (u32, u32)) -> Result<Svg> {
    let text = ensure_font();
    let svg = to_svg(&Dots { dots, axes, text }, size, &axes.title)?;
    Ok(Svg::from_plotters(svg))
}

/// The lines of [`line_chart`] and [`line_svg`].
struct Lines<'a> {
    series: &'a [Series],
    axes: &'a Axes,
    text: bool,
}

impl Picture for Lines<'_> {
    fn draw<DB: DrawingBackend>(&self, root: DrawingArea<DB, plotters::coord::Shift>) -> DrawResult
    where
        DB::ErrorType: 'static,
    {
        draw_lines(root, self.series, self.axes, self.text)
    }
}

/// The dots of [`scatter`] and [`scatter_svg`].
struct Dots<'a> {
    dots: &'a [Dot],
    axes: &'a Axes,
    text: bool,
}

impl Picture for Dots<'_> {
    fn draw<DB: DrawingBackend>(&self, root: DrawingArea<DB, plotters::coord::Shift>) -> DrawResult
    where
        DB::ErrorType: 'static,
    {
        draw_dots(root, self.dots, self.axes, self.text)
    }
}

fn usable(axes: &Axes, y: f64) -> bool {
    y.is_finite() && (!axes.log_y || y > 0.0)
}

/// Largest magnitude an axis reaches: its span, and plotters' tick search
/// over it, stay finite (a span near f64::MAX overflows and the search
/// never ends).
const AXIS_MAX: f64 = 1e300;

/// The padded range of the finite values, never empty, within
/// ±[`AXIS_MAX`] (and above the smallest normal number on a log axis).
fn range(values: impl Iterator<Item = f64>, log: bool) -> (f64, f64) {
    let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
    for v in values.filter(|v| v.is_finite() && (!log || *v > 0.0)) {
        lo = lo.min(v);
        hi = hi.max(v);
    }
    if lo > hi {
        return if log { (0.1, 10.0) } else { (0.0, 1.0) };
    }
    if log {
        let lo = (lo / 1.15).clamp(f64::MIN_POSITIVE, AXIS_MAX / 10.0);
        let hi = (hi * 1.15).clamp(lo * 10.0, AXIS_MAX);
        return (lo, hi);
    }
    let (lo, hi) = (lo.clamp(-AXIS_MAX, AXIS_MAX), hi.clamp(-AXIS_MAX, AXIS_MAX));
    let pad = ((hi - lo) * 0.06)
        .max(hi.abs().max(lo.abs()) * 1e-6)
        .max(1e-9);
    (lo - pad, hi + pad)
}

/// Runs of consecutive usable points.
fn runs(points: &[(f64, f64)], axes: &Axes) -> Vec<Vec<(f64, f64)>> {
    let mut out: Vec<Vec<(f64, f64)>> = vec![Vec::new()];
    for &(x, y) in points {
        if x.is_finite() && usable(axes, y) {
            out.last_mut().expect("nonempty").push((x, y));
        } else if !out.last().expect("nonempty").is_empty() {
            out.push(Vec::new());
        }
    }
    out.retain(|r| !r.is_empty());
    out
}

fn draw_lines<DB: DrawingBackend>(
    root: DrawingArea<DB, plotters::coord::Shift>,
    series: &[Series],
    axes: &Axes,
    text: bool,
) -> DrawResult
where
    DB::ErrorType: 'static,
{
    let err = |e: DrawingAreaErrorKind<DB::ErrorType>| e.to_string();
    root.fill(&WHITE).map_err(err)?;
    let xs = series.iter().flat_map(|s| {
        s.points
            .iter()
            .map(|p| p.0)
            .chain(s.band.iter().map(|b| b.0))
    });
    let (xlo, xhi) = range(xs, false);
    let ys = series.iter().flat_map(|s| {
        s.points
            .iter()
            .map(|p| p.1)
            .chain(s.band.iter().flat_map(|b| [b.1, b.2]))
    });
    let (ylo, yhi) = range(ys, axes.log_y);
    let mut builder = ChartBuilder::on(&root);
    builder
        .margin(16)
        .x_label_area_size(if text { 40 } else { 8 })
        .y_label_area_size(if text { 64 } else { 8 });
    if text {
        builder.caption(&axes.title, ("sans-serif", 20));
    }
    if axes.log_y {
        let mut chart = builder
            .build_cartesian_2d(xlo..xhi, (ylo..yhi).log_scale())
            .map_err(err)?;
        mesh(&mut chart.configure_mesh(), axes, text)
            .draw()
            .map_err(err)?;
        draw_series_on(&mut chart, series, axes, text).map_err(err)?;
        legend(&mut chart, text).map_err(err)?;
    } else {
        let mut chart = builder
            .build_cartesian_2d(xlo..xhi, ylo..yhi)
            .map_err(err)?;
        mesh(&mut chart.configure_mesh(), axes, text)
            .draw()
            .map_err(err)?;
        draw_series_on(&mut chart, series, axes, text).map_err(err)?;
        legend(&mut chart, text).map_err(err)?;
    }
    root.present().map_err(err)
}

fn mesh<'a, 'b, DB: DrawingBackend, X, Y>(
    m: &'b mut plotters::chart::MeshStyle<'a, 'b, X, Y, DB>,
    axes: &'b Axes,
    text: bool,
) -> &'b mut plotters::chart::MeshStyle<'a, 'b, X, Y, DB>
where
    X: plotters::coord::ranged1d::Ranged<ValueType = f64>
        + plotters::coord::ranged1d::ValueFormatter<f64>,
    Y: plotters::coord::ranged1d::Ranged<ValueType = f64>
        + plotters::coord::ranged1d::ValueFormatter<f64>,
{
    m.light_line_style(RGBColor(235, 235, 235));
    if text {
        m.x_desc(axes.x.as_str()).y_desc(axes.y.as_str());
    } else {
        m.disable_x_axis().disable_y_axis();
    }
    m
}

fn draw_series_on<DB, X, Y>(
    chart: &mut ChartContext<'_, DB, Cartesian2d<X, Y>>,
    series: &[Series],
    axes: &Axes,
    text: bool,
) -> std::result::Result<(), DrawingAreaErrorKind<DB::ErrorType>>
where
    DB: DrawingBackend,
    X: plotters::coord::ranged1d::Ranged<ValueType = f64>,
    Y: plotters::coord::ranged1d::Ranged<ValueType = f64>,
{
    for (i, s) in series.iter().enumerate() {
        let colour = PALETTE[i % PALETTE.len()];
        let band: Vec<(f64, f64, f64)> = s
            .band
            .iter()
            .copied()
            .filter(|b| b.0.is_finite() && usable(axes, b.1) && usable(axes, b.2))
            .collect();
        if band.len() >= 2 {
            let mut outline: Vec<(f64, f64)> = band.iter().map(|b| (b.0, b.2)).collect();
            outline.extend(band.iter().rev().map(|b| (b.0, b.1)));
            chart.draw_series(std::iter::once(Polygon::new(outline, colour.mix(0.18))))?;
        }
        let mut first = true;
        for run in runs(&s.points, axes) {
            let style = colour.stroke_width(2);
            let drawn = if s.dashed {
                chart.draw_series(DashedLineSeries::new(run, 8, 5, style))?
            } else {
                chart.draw_series(LineSeries::new(run, style))?
            };
            if first && text && !s.label.is_empty() {
                drawn.label(s.label.clone()).legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 18, y)], colour.stroke_width(2))
                });
            }
            first = false;
        }
    }
    Ok(())
}

fn legend<'a, DB, X, Y>(
    chart: &mut ChartContext<'a, DB, Cartesian2d<X, Y>>,
    text: bool,
) -> std::result::Result<(), DrawingAreaErrorKind<DB::ErrorType>>
where
    DB: DrawingBackend + 'a,
    DB::ErrorType: 'static,
    X: plotters::coord::ranged1d::Ranged<ValueType = f64>,
    Y: plotters::coord::ranged1d::Ranged<ValueType = f64>,
{
    if !text {
        return Ok(());
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()
}

fn draw_dots<DB: DrawingBackend>(
    root: DrawingArea<DB, plotters::coord::Shift>,
    dots: &[Dot],
    axes: &Axes,
    text: bool,
) -> DrawResult
where
    DB::ErrorType: 'static,
{
    let err = |e: DrawingAreaErrorKind<DB::ErrorType>| e.to_string();
    root.fill(&WHITE).map_err(err)?;
    let finite: Vec<&Dot> = dots
        .iter()
        .filter(|d| d.x.is_finite() && d.y.is_finite())
        .collect();
    let (xlo, xhi) = range(finite.iter().map(|d| d.x), false);
    let (ylo, yhi) = range(finite.iter().map(|d| d.y), false);
    let mut builder = ChartBuilder::on(&root);
    builder
        .margin(16)
        .x_label_area_size(if text { 40 } else { 8 })
        .y_label_area_size(if text { 64 } else { 8 });
    if text {
        builder.caption(&axes.title, ("sans-serif", 20));
    }
    let mut chart = builder
        .build_cartesian_2d(xlo..xhi, ylo..yhi)
        .map_err(err)?;
    mesh(&mut chart.configure_mesh(), axes, text)
        .draw()
        .map_err(err)?;
    let grey = RGBColor(150, 150, 150);
    let blue = PALETTE[0];
    chart
        .draw_series(
            finite
                .iter()
                .filter(|d| !d.highlight)
                .map(|d| Circle::new((d.x, d.y), 3, grey.mix(0.6).filled())),
        )
        .map_err(err)?;
    let mut front: Vec<(f64, f64)> = finite
        .iter()
        .filter(|d| d.highlight)
        .map(|d| (d.x, d.y))
        .collect();
    front.sort_by(|a, b| a.0.total_cmp(&b.0));
    chart
        .draw_series(LineSeries::new(front.clone(), blue.stroke_width(2)))
        .map_err(err)?;
    chart
        .draw_series(front.iter().map(|&p| Circle::new(p, 5, blue.filled())))
        .map_err(err)?;
    root.present().map_err(err)
}

#[cfg(test)]
mod tests {
    #[test]
    fn extreme_values_draw_and_return() {
        // Spans that overflow f64, values next to f64::MAX, a spread below
        // one ulp: every chart must come back (plotters' own tick search
        // can loop on such ranges).
        let dir = std::env::temp_dir().join(format!("actforge-chart-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let cases: [&[f64]; 4] = [
            &[-1e308, 1e308],
            &[f64::MAX, f64::MAX / 2.0],
            &[1e300, 1e300 * (1.0 + f64::EPSILON)],
            &[f64::MIN_POSITIVE, 5e-324],
        ];
        for (k, ys) in cases.iter().enumerate() {
            for log_y in [false, true] {
                let series = [Series {
                    label: "s".into(),
                    points: ys.iter().enumerate().map(|(i, &y)| (i as f64, y)).collect(),
                    band: Vec::new(),
                    dashed: false,
                }];
                let axes = Axes {
                    log_y,
                    ..Axes::default()
                };
                line_chart(&series, &axes, &dir.join(format!("c{k}{log_y}.svg"))).unwrap();
            }
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    use super::*;

    fn svg_of(series: &[Series], axes: &Axes) -> String {
        let mut svg = String::new();
        {
            let area = SVGBackend::with_string(&mut svg, (400, 300)).into_drawing_area();
            draw_lines(area, series, axes, false).unwrap();
        }
        svg
    }

    #[test]
    fn lines_break_at_non_finite_points_and_bands_are_drawn() {
        let s = Series {
            label: "a".into(),
            points: vec![(0.0, 1.0), (1.0, f64::NAN), (2.0, 2.0), (3.0, 2.5)],
            band: vec![(0.0, 0.5, 1.5), (2.0, 1.5, 2.5), (3.0, 2.0, 3.0)],
            dashed: false,
        };
        let svg = svg_of(&[s], &Axes::default());
        // One polyline for the run of two finite points (a lone point draws
        // no visible segment) and one polygon for the band.
        assert!(svg.contains("<polyline"), "{svg}");
        assert!(svg.contains("<polygon"), "{svg}");
    }

    #[test]
    fn log_axes_drop_non_positive_values() {
        let s = Series {
            label: "loss".into(),
            points: vec![(0.0, 0.0), (1.0, 10.0), (2.0, 5.0), (3.0, 2.0)],
            ..Default::default()
        };
        let axes = Axes {
            log_y: true,
            ..Default::default()
        };
        let svg = svg_of(&[s], &axes);
        assert!(svg.contains("<polyline"), "{svg}");
    }

    #[test]
    fn empty_inputs_still_draw() {
        svg_of(&[], &Axes::default());
        let mut svg = String::new();
        let area = SVGBackend::with_string(&mut svg, (400, 300)).into_drawing_area();
        draw_dots(area, &[], &Axes::default(), false).unwrap();
    }

    #[test]
    fn ranges_are_padded_and_never_empty() {
        let (lo, hi) = range([2.0, 2.0].into_iter(), false);
        assert!(lo < 2.0 && hi > 2.0);
        let (lo, hi) = range([f64::NAN].into_iter(), false);
        assert!(lo < hi);
        let (lo, hi) = range([-1.0, 0.0, 4.0].into_iter(), true);
        assert!(lo > 0.0 && hi > 4.0);
    }
}

//! Charts: line panels side by side (the report's curves) and any other [`Chart`], rendered to SVG or PNG
//! with the embedded DejaVu Sans, so no system fonts are needed. Renderers are pure: data in, bytes out.

use anyhow::{Result, anyhow};
use plotters::coord::Shift;
use plotters::prelude::*;

/// Something that draws itself on any plotters backend.
pub trait Chart {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<()>;
}

impl Chart for [Panel] {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<()> {
        draw_panels(root, self)
    }
}

impl Chart for Vec<Panel> {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<()> {
        draw_panels(root, self)
    }
}

/// A plotters error as an anyhow error.
pub fn drawing_error<DB: DrawingBackend>(e: DrawingAreaErrorKind<DB::ErrorType>) -> anyhow::Error {
    anyhow!("drawing chart: {e:?}")
}

/// One line on a chart.
pub struct Series {
    pub label: String,
    pub points: Vec<(f64, f64)>,
    pub color: RGBColor,
    /// A shaded band around the line, (x, low, high) per point (e.g. ±1 std over seeds); empty for none.
    pub band: Vec<(f64, f64, f64)>,
}

/// One chart panel: a title, a y-axis label and its lines, against epoch.
pub struct Panel {
    pub title: String,
    pub y_label: &'static str,
    pub series: Vec<Series>,
    pub legend: SeriesLabelPosition,
}

/// Tableau 10: distinguishable, colour-blind-friendly line colours.
pub const COLORS: [RGBColor; 10] = [
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
];

/// Draws `panels` side by side on any plotters backend.
fn draw_panels<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, panels: &[Panel]) -> Result<()> {
    let err = drawing_error::<DB>;
    root.fill(&WHITE).map_err(err)?;
    let areas = root.split_evenly((1, panels.len().max(1)));
    for (panel, area) in panels.iter().zip(&areas) {
        let (x_max, (y_min, y_max)) = extent(panel);
        let pad = ((y_max - y_min) * 0.05).max(1e-4);
        let mut chart = ChartBuilder::on(area)
            .caption(&panel.title, ("sans-serif", 18))
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(60)
            .build_cartesian_2d(1.0..x_max.max(2.0), (y_min - pad)..(y_max + pad))
            .map_err(err)?;
        chart
            .configure_mesh()
            .x_desc("epoch")
            .x_labels((x_max as usize).clamp(2, 12))
            .x_label_formatter(&|x| format!("{x:.0}"))
            .y_desc(panel.y_label)
            .label_style(("sans-serif", 12))
            .draw()
            .map_err(err)?;
        for s in &panel.series {
            draw_series(&mut chart, s)?;
        }
        draw_legend(&mut chart, panel.legend.clone())?;
    }
    root.present().map_err(err)?;
    Ok(())
}

/// The largest x and the (min, max) of the finite y values of a panel's series ((0, 1) when none is).
fn extent(panel: &Panel) -> (f64, (f64, f64)) {
    let all = || {
        (panel.series.iter())
            .flat_map(|s| s.points.iter())
            .filter(|p| p.1.is_finite())
    };
    let x_max = all().map(|p| p.0).fold(1.0f64, f64::max);
    let (lo, hi) = all().fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), p| {
        (lo.min(p.1), hi.max(p.1))
    });
    (x_max, if lo.is_finite() { (lo, hi) } else { (0.0, 1.0) })
}

type Cartesian<'a, DB> = ChartContext<
    'a,
    DB,
    Cartesian2d<plotters::coord::types::RangedCoordf64, plotters::coord::types::RangedCoordf64>,
>;

/// The legend of every labelled series, at `position`, on a light box.
fn draw_legend<'a, DB: DrawingBackend + 'a>(
    chart: &mut Cartesian<'a, DB>,
    position: SeriesLabelPosition,
) -> Result<()> {
    chart
        .configure_series_labels()
        .position(position)
        .label_font(("sans-serif", 12))
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK.mix(0.4))
        .draw()
        .map_err(drawing_error::<DB>)
}

/// One series: its band (shaded), its line with a legend entry, and a dot where it has a single point (a
/// line needs two: a one-epoch run).
fn draw_series<DB: DrawingBackend>(chart: &mut Cartesian<DB>, s: &Series) -> Result<()> {
    let err = drawing_error::<DB>;
    let color = s.color;
    if !s.band.is_empty() {
        let outline: Vec<(f64, f64)> = (s.band.iter().map(|b| (b.0, b.2)))
            .chain(s.band.iter().rev().map(|b| (b.0, b.1)))
            .collect();
        chart
            .draw_series(std::iter::once(Polygon::new(outline, color.mix(0.15))))
            .map_err(err)?;
    }
    let finite: Vec<(f64, f64)> = s
        .points
        .iter()
        .copied()
        .filter(|p| p.1.is_finite())
        .collect();
    chart
        .draw_series(LineSeries::new(
            finite.iter().copied(),
            color.stroke_width(2),
        ))
        .map_err(err)?
        .label(s.label.as_str())
        .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(2)));
    if finite.len() == 1 {
        let dots = finite
            .into_iter()
            .map(|p| Circle::new(p, 4, color.filled()));
        chart.draw_series(dots).map_err(err)?;
    }
    Ok(())
}

/// The chart as an SVG document.
pub fn render_svg(chart: &(impl Chart + ?Sized), size: (u32, u32)) -> Result<String> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, size).into_drawing_area();
        register_font();
        chart.draw(&root)?;
    }
    Ok(svg)
}

/// The chart as PNG bytes.
pub fn render_png(chart: &(impl Chart + ?Sized), size: (u32, u32)) -> Result<Vec<u8>> {
    let mut rgb = vec![0u8; (size.0 * size.1 * 3) as usize];
    {
        let root = BitMapBackend::with_buffer(&mut rgb, size).into_drawing_area();
        register_font();
        chart.draw(&root)?;
    }
    let image = image::RgbImage::from_raw(size.0, size.1, rgb).expect("buffer of the image's size");
    let mut png = std::io::Cursor::new(vec![]);
    image.write_to(&mut png, image::ImageFormat::Png)?;
    Ok(png.into_inner())
}

/// Text is laid out (and, in PNGs, drawn) with the embedded DejaVu Sans, so no system fonts are needed.
fn register_font() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let bytes: &'static [u8] = include_bytes!("../../../assets/fonts/DejaVuSans.ttf");
        if plotters::style::register_font("sans-serif", FontStyle::Normal, bytes).is_err() {
            unreachable!("the embedded DejaVu Sans is a valid font");
        }
    });
}

/// One x–y chart with any x: lines, or dots only (a scatter, one dot per point), on a linear or a log₁₀
/// x axis (drawn at log₁₀ x, labelled in x). Learning rates against loss or accuracy, or trials against
/// the expected best.
pub struct Plot {
    pub title: String,
    pub x_label: &'static str,
    pub y_label: &'static str,
    pub log_x: bool,
    /// Dots at every point instead of lines.
    pub dots: bool,
    pub series: Vec<Series>,
    /// Where the legend goes: where the data leave room.
    pub legend: SeriesLabelPosition,
}

impl Chart for Plot {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<()> {
        let err = drawing_error::<DB>;
        root.fill(&WHITE).map_err(err)?;
        let x = |v: f64| if self.log_x { v.log10() } else { v };
        let series: Vec<Series> = (self.series.iter())
            .map(|s| Series {
                label: s.label.clone(),
                points: s.points.iter().map(|p| (x(p.0), p.1)).collect(),
                color: s.color,
                band: s.band.iter().map(|b| (x(b.0), b.1, b.2)).collect(),
            })
            .collect();
        let finite = || {
            (series.iter().flat_map(|s| s.points.iter()))
                .filter(|p| p.0.is_finite() && p.1.is_finite())
        };
        let range = |f: fn(&(f64, f64)) -> f64| {
            let (lo, hi) = finite()
                .map(f)
                .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
                    (lo.min(v), hi.max(v))
                });
            let (lo, hi) = if lo.is_finite() { (lo, hi) } else { (0.0, 1.0) };
            let pad = ((hi - lo) * 0.05).max(1e-4);
            (lo - pad)..(hi + pad)
        };
        let mut chart = ChartBuilder::on(root)
            .caption(&self.title, ("sans-serif", 18))
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(60)
            .build_cartesian_2d(range(|p| p.0), range(|p| p.1))
            .map_err(err)?;
        let log_x = self.log_x;
        chart
            .configure_mesh()
            .x_desc(self.x_label)
            .y_desc(self.y_label)
            .x_label_formatter(&|v| match log_x {
                true => format!("{:.0e}", 10f64.powf(*v)),
                false => format!("{v}"),
            })
            .label_style(("sans-serif", 12))
            .draw()
            .map_err(err)?;
        for s in &series {
            if self.dots {
                let color = s.color;
                let dots = (s.points.iter().copied())
                    .filter(|p| p.0.is_finite() && p.1.is_finite())
                    .map(move |p| Circle::new(p, 3, color.filled()));
                chart
                    .draw_series(dots)
                    .map_err(err)?
                    .label(s.label.as_str())
                    .legend(move |(x, y)| Circle::new((x + 9, y), 3, color.filled()));
            } else {
                draw_series(&mut chart, s)?;
            }
        }
        draw_legend(&mut chart, self.legend.clone())?;
        root.present().map_err(err)?;
        Ok(())
    }
}

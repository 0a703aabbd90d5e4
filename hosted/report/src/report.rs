//! What a benchmark hands back, and its SVG plots (plotters, SVG backend
//! only: the SVG's text is real text, so no font files are needed).

use plotters::coord::Shift;
use plotters::coord::ranged1d::{AsRangedCoord, ValueFormatter};
use plotters::prelude::*;
use serde_json::Value;

use crate::stats::Summary;

pub use plotters::chart::SeriesLabelPosition;

/// A benchmark's results: the table to print, the numbers for the JSON
/// file (the caller adds the machine and the command), and the SVG plot.
pub struct Report {
    pub table: String,
    pub json: Value,
    pub plot: String,
}

/// One horizontal bar: a median with its p10–p90 whisker.
pub struct Bar {
    pub label: String,
    pub value: Summary,
}

/// A line over ring depths, core counts or any positive x, drawn on a log2 axis.
pub struct Series {
    pub label: String,
    pub points: Vec<(f64, Summary)>,
}

/// A panel: its caption, and for line panels the y axis's name.
pub struct Panel<T> {
    pub caption: &'static str,
    pub y_axis: &'static str,
    pub content: Vec<T>,
}

const WIDTH: u32 = 1000;
const BAR_HEIGHT: u32 = 22;
const PANEL_CHROME: u32 = 90;
const LINE_PANEL_HEIGHT: u32 = 420;
const COLORS: [RGBColor; 6] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
];

fn draw_error(error: impl std::fmt::Debug) -> String {
    format!("cannot draw the plot: {error:?}")
}

/// Bar panels stacked vertically, each with a reference line at 1.
pub fn bar_panels(panels: [Panel<Bar>; 2]) -> Result<String, String> {
    let heights = panels
        .each_ref()
        .map(|panel| panel.content.len() as u32 * BAR_HEIGHT + PANEL_CHROME);
    let mut svg = String::new();
    {
        let root =
            SVGBackend::with_string(&mut svg, (WIDTH, heights.iter().sum())).into_drawing_area();
        root.fill(&WHITE).map_err(draw_error)?;
        let (top, bottom) = root.split_vertically(heights[0]);
        for (area, panel) in [top, bottom].iter().zip(&panels) {
            draw_bars(area, panel).map_err(draw_error)?;
        }
        root.present().map_err(draw_error)?;
    }
    Ok(svg)
}

fn draw_bars<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    panel: &Panel<Bar>,
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    let bars = &panel.content;
    // A log axis: the ratios span from about 1 (URPC) to about 1000 (pipes).
    let low = bars.iter().map(|bar| bar.value.p10).fold(1.0, f64::min) / 1.5;
    let high = bars.iter().map(|bar| bar.value.p90).fold(1.0, f64::max) * 1.5;
    let last = bars.len() as i32 - 1;
    let mut chart = ChartBuilder::on(area)
        .caption(panel.caption, ("sans-serif", 16))
        .margin(8)
        .x_label_area_size(30)
        .y_label_area_size(250)
        .build_cartesian_2d((low..high).log_scale(), (0..last).into_segmented())?;
    chart
        .configure_mesh()
        .disable_y_mesh()
        .y_labels(bars.len())
        .y_label_formatter(&|segment| match segment {
            SegmentValue::CenterOf(index) | SegmentValue::Exact(index) => bars
                .get(usize::try_from(last - index).unwrap_or(usize::MAX))
                .map_or_else(String::new, |bar| bar.label.clone()),
            SegmentValue::Last => String::new(),
        })
        .x_desc(panel.y_axis)
        .draw()?;
    for (index, bar) in bars.iter().enumerate() {
        // The first bar on top.
        let row = last - index as i32;
        let (bottom, top) = (
            SegmentValue::Exact(row),
            if row == last {
                SegmentValue::Last
            } else {
                SegmentValue::Exact(row + 1)
            },
        );
        let color = COLORS[index % 2];
        chart.draw_series([Rectangle::new(
            [(low, bottom), (bar.value.median, top)],
            color.mix(0.7).filled(),
        )])?;
        let middle = SegmentValue::CenterOf(row);
        chart.draw_series([PathElement::new(
            [(bar.value.p10, middle.clone()), (bar.value.p90, middle)],
            BLACK,
        )])?;
    }
    chart.draw_series([PathElement::new(
        [(1.0, SegmentValue::Exact(0)), (1.0, SegmentValue::Last)],
        RED.stroke_width(2),
    )])?;
    Ok(())
}

/// How line panels draw their axes and legend.
#[derive(Debug, Clone)]
pub struct Axes<'a> {
    /// The x axis's name; x is drawn on a log2 axis.
    pub x: &'a str,
    /// A log10 y axis, for values that span orders of magnitude.
    pub log_y: bool,
    /// Where the legend goes: where the lines are not.
    pub legend: SeriesLabelPosition,
}

/// The ring-depth sweep's two line panels, side by side.
pub fn line_panels(panels: [Panel<Series>; 2]) -> Result<String, String> {
    let axes = Axes {
        x: "ring depth (slots)",
        log_y: false,
        legend: SeriesLabelPosition::MiddleRight,
    };
    line_grid(&axes, &panels)
}

/// Line panels, two to a row.
pub fn line_grid(axes: &Axes<'_>, panels: &[Panel<Series>]) -> Result<String, String> {
    let rows = panels.len().div_ceil(2);
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, rows as u32 * LINE_PANEL_HEIGHT))
            .into_drawing_area();
        root.fill(&WHITE).map_err(draw_error)?;
        for (area, panel) in root.split_evenly((rows, 2)).iter().zip(panels) {
            let values = || {
                panel
                    .content
                    .iter()
                    .flat_map(|series| &series.points)
                    .map(|(_, value)| value)
            };
            let high = values().map(|value| value.p90).fold(0.0, f64::max) * 1.1;
            if axes.log_y {
                let low = values().map(|value| value.p10).fold(high, f64::min) / 1.1;
                draw_lines(area, panel, axes, (low..high).log_scale())
            } else {
                draw_lines(area, panel, axes, 0.0..high)
            }
            .map_err(draw_error)?;
        }
        root.present().map_err(draw_error)?;
    }
    Ok(svg)
}

fn draw_lines<DB: DrawingBackend, Y>(
    area: &DrawingArea<DB, Shift>,
    panel: &Panel<Series>,
    axes: &Axes<'_>,
    y_range: Y,
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>>
where
    Y: AsRangedCoord<Value = f64>,
    Y::CoordDescType: ValueFormatter<f64>,
{
    let points = || panel.content.iter().flat_map(|series| &series.points);
    let x_max = points().map(|(x, _)| x.log2()).fold(0.0, f64::max);
    let mut chart = ChartBuilder::on(area)
        .caption(panel.caption, ("sans-serif", 16))
        .margin(10)
        .x_label_area_size(35)
        .y_label_area_size(50)
        .build_cartesian_2d(-0.3..x_max + 0.3, y_range)?;
    chart
        .configure_mesh()
        .x_labels(x_max as usize + 1)
        .x_label_formatter(&|log: &f64| format!("{}", 2f64.powf(log.round())))
        .x_desc(axes.x)
        .y_desc(panel.y_axis)
        .draw()?;
    for (index, series) in panel.content.iter().enumerate() {
        let color = COLORS[index % COLORS.len()];
        let line = series
            .points
            .iter()
            .map(|(x, value)| (x.log2(), value.median));
        chart
            .draw_series(LineSeries::new(line, color.stroke_width(2)))?
            .label(series.label.as_str())
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 20, y)], color.stroke_width(2)));
        for (x, value) in &series.points {
            chart.draw_series([PathElement::new(
                [(x.log2(), value.p10), (x.log2(), value.p90)],
                color,
            )])?;
        }
    }
    chart
        .configure_series_labels()
        .position(axes.legend.clone())
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()?;
    Ok(())
}
